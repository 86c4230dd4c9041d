/* Base image inspection with libqcow and the qcow2 header; see inspect.h. */
#include "vmctl/inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libqcow.h>

#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)

/* Signatures of image formats that a "raw" entry must not contain. */
static const struct {
	const char *magic;
	size_t len, offset;
	const char *name;
} formats[] = {
	{ "QFI\xfb", 4, 0, "qcow2" },
	{ "KDMV", 4, 0, "vmdk" },
	{ "conectix", 8, 0, "vhd" },
	{ "vhdxfile", 8, 0, "vhdx" },
	{ "QED\0", 4, 0, "qed" },
	{ "\x7f\x10\xda\xbe", 4, 64, "vdi" },
	{ "LUKS\xba\xbe", 6, 0, "luks" },
};

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static const char *detect_format(const unsigned char *hdr, size_t len)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].offset + formats[i].len <= len &&
		    memcmp(hdr + formats[i].offset, formats[i].magic, formats[i].len) == 0)
			return formats[i].name;
	return NULL;
}

/* Checks with libqcow that the image opens, is not encrypted and has no backing file. */
static int check_with_libqcow(const char *path, char *err, size_t errlen)
{
	libqcow_file_t *file = NULL;
	libqcow_error_t *error = NULL;
	uint32_t method = 0;
	size_t backing = 0;
	int rc = 0;

	if (libqcow_file_initialize(&file, &error) != 1 ||
	    libqcow_file_open(file, path, LIBQCOW_OPEN_READ, &error) != 1) {
		char msg[256] = "";

		if (error)
			libqcow_error_sprint(error, msg, sizeof(msg));
		snprintf(err, errlen, "not a readable qcow2 image: %s", msg[0] ? msg : "libqcow failed");
		rc = -EINVAL;
	} else if (libqcow_file_get_encryption_method(file, &method, &error) != 1 ||
		   method != LIBQCOW_ENCRYPTION_METHOD_NONE) {
		snprintf(err, errlen, "encrypted qcow2 image (method %u): refused", method);
		rc = -EINVAL;
	} else if (libqcow_file_get_utf8_backing_filename_size(file, &backing, &error) == 1 && backing > 1) {
		snprintf(err, errlen, "qcow2 image names a backing file: refused");
		rc = -EINVAL;
	}
	if (file) {
		libqcow_file_close(file, NULL);
		libqcow_file_free(&file, NULL);
	}
	libqcow_error_free(&error);
	return rc;
}

/* Checks the header fields libqcow does not report, such as the external data file feature of version 3. */
static int check_qcow2_header(const unsigned char *hdr, size_t len, char *err, size_t errlen)
{
	uint32_t version = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];

	if (version < 2 || version > 3) {
		snprintf(err, errlen, "qcow2 version %u is not supported", version);
		return -EINVAL;
	}
	if (version == 3 && len >= 80 && (be64(hdr + 72) & QCOW2_INCOMPAT_DATA_FILE)) {
		snprintf(err, errlen, "qcow2 image uses an external data file: refused");
		return -EINVAL;
	}
	if (be64(hdr + 8) != 0) {
		snprintf(err, errlen, "qcow2 image names a backing file: refused");
		return -EINVAL;
	}
	if (hdr[32] || hdr[33] || hdr[34] || hdr[35]) {
		snprintf(err, errlen, "encrypted qcow2 image: refused");
		return -EINVAL;
	}
	return 0;
}

int image_inspect(const char *path, const char *format, char *err, size_t errlen)
{
	unsigned char hdr[512];
	const char *found;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	found = detect_format(hdr, (size_t)n);
	if (strcmp(format, "raw") == 0) {
		if (!found)
			return 0;
		snprintf(err, errlen, "the catalog says raw, but the image is %s: refused", found);
		return -EINVAL;
	}
	if (!found || strcmp(found, "qcow2") != 0) {
		snprintf(err, errlen, "the catalog says qcow2, but the image is %s: refused", found ? found : "not qcow2");
		return -EINVAL;
	}
	if (n < 104 || check_qcow2_header(hdr, (size_t)n, err, errlen) < 0) {
		if (n < 104)
			snprintf(err, errlen, "qcow2 header is truncated");
		return -EINVAL;
	}
	return check_with_libqcow(path, err, errlen);
}
