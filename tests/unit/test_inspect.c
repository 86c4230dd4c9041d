/* Unit tests of base image inspection, on images made with qemu-img. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/unit.h"
#include "vmctl/inspect.h"

static char dir[] = "/tmp/nido-inspect.XXXXXX";

static void make(const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
	if (system(full) != 0)
		printf("# setup failed: %s\n", cmd);
}

/* Runs image_inspect and checks the outcome and that the reason names want. */
static void expect(const char *name, const char *file, const char *format, int ok, const char *want)
{
	char path[512], err[512] = "";
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	rc = image_inspect(path, format, err, sizeof(err));
	if (ok)
		CHECK(name, rc == 0);
	else
		CHECK(name, rc < 0 && strstr(err, want));
	if (!ok && rc < 0)
		printf("# %s: %s\n", name, err);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	make("qemu-img create -f qcow2 plain.qcow2 16M");
	make("qemu-img create -f qcow2 -o compat=0.10 v2.qcow2 16M");
	make("qemu-img create -f raw plain.raw 16M");
	make("qemu-img create -f qcow2 -F raw -b /etc/passwd backed.qcow2 16M");
	make("qemu-img create -f qcow2 -o data_file=ext.raw datafile.qcow2 16M");
	make("qemu-img create -f qcow2 --object secret,id=s0,data=x -o encrypt.format=aes,encrypt.key-secret=s0 aes.qcow2 16M");
	make("qemu-img create -f vmdk disk.vmdk 16M");
	make("head -c 4096 /dev/urandom > random.bin");
	make("head -c 50 plain.qcow2 > truncated.qcow2");

	expect("plain qcow2 accepted", "plain.qcow2", "qcow2", 1, NULL);
	expect("qcow2 version 2 accepted", "v2.qcow2", "qcow2", 1, NULL);
	expect("plain raw accepted", "plain.raw", "raw", 1, NULL);
	expect("qcow2 with a backing file refused", "backed.qcow2", "qcow2", 0, "backing file");
	expect("qcow2 with an external data file refused", "datafile.qcow2", "qcow2", 0, "external data file");
	expect("encrypted qcow2 refused", "aes.qcow2", "qcow2", 0, "encrypted");
	expect("raw claimed as qcow2 refused", "plain.raw", "qcow2", 0, "not qcow2");
	expect("qcow2 claimed as raw refused", "plain.qcow2", "raw", 0, "image is qcow2");
	expect("vmdk claimed as raw refused", "disk.vmdk", "raw", 0, "image is vmdk");
	expect("vmdk claimed as qcow2 refused", "disk.vmdk", "qcow2", 0, "image is vmdk");
	expect("random bytes claimed as qcow2 refused", "random.bin", "qcow2", 0, "not qcow2");
	expect("truncated qcow2 refused", "truncated.qcow2", "qcow2", 0, "truncated");
	expect("missing file is an error", "none.qcow2", "qcow2", 0, "cannot open");
	make("rm -f *");
	rmdir(dir);
	return unit_exit();
}
