/* libFuzzer harness for image_inspect. The bytes are written to a temporary
 * file and inspected as qcow2 and as raw. Whatever the content, inspection
 * must return without a crash or a read out of bounds, and it may accept only
 * what QEMU can open without reading another file or asking for a key. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmctl/inspect.h"

/* The replay test in tests/unit includes this file under another name. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static char inspect_path[64];
static int inspect_fd = -1;

static void inspect_fail(const char *problem)
{
	fprintf(stderr, "fuzz_inspect: %s\n", problem);
	abort();
}

/* One file per process, rewritten for each input. It is unlinked at once and
 * opened through /proc/self/fd, so a crash leaves no file behind. */
static void inspect_write(const uint8_t *data, size_t size)
{
	if (inspect_fd < 0) {
		char tmp[] = "/tmp/nido-fuzz-XXXXXX";

		inspect_fd = mkstemp(tmp);
		if (inspect_fd < 0)
			inspect_fail("cannot create a temporary file in /tmp");
		unlink(tmp);
		snprintf(inspect_path, sizeof(inspect_path), "/proc/self/fd/%d", inspect_fd);
	}
	if (ftruncate(inspect_fd, 0) < 0 ||
	    (size > 0 && pwrite(inspect_fd, data, size, 0) != (ssize_t)size))
		inspect_fail("cannot write the temporary file");
}

static uint64_t inspect_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* An accepted qcow2 image names no backing file, no data file, no encryption. */
static void inspect_check_qcow2(const uint8_t *data, size_t size)
{
	if (size < 104 || memcmp(data, "QFI\xfb", 4) != 0)
		inspect_fail("accepted as qcow2 without a qcow2 header");
	if (inspect_be(data + 4, 4) != 2 && inspect_be(data + 4, 4) != 3)
		inspect_fail("accepted a qcow2 version other than 2 or 3");
	if (inspect_be(data + 8, 8) != 0)
		inspect_fail("accepted a qcow2 image with a backing file");
	if (inspect_be(data + 32, 4) != 0)
		inspect_fail("accepted an encrypted qcow2 image");
	if (inspect_be(data + 4, 4) == 3 && (inspect_be(data + 72, 8) & 4))
		inspect_fail("accepted a qcow2 image with an external data file");
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char err[512];

	inspect_write(data, size);
	err[0] = '\0';
	if (image_inspect(inspect_path, "qcow2", err, sizeof(err)) == 0)
		inspect_check_qcow2(data, size);
	else if (!err[0])
		inspect_fail("qcow2 refused without a reason");
	err[0] = '\0';
	if (image_inspect(inspect_path, "raw", err, sizeof(err)) == 0) {
		if (size >= 4 && memcmp(data, "QFI\xfb", 4) == 0)
			inspect_fail("accepted a qcow2 image as raw");
	} else if (!err[0]) {
		inspect_fail("raw refused without a reason");
	}
	return 0;
}
