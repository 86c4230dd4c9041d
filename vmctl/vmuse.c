/* The cached images that VMs use; see vmuse.h. */
#include "vmctl/vmuse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmctl/vm.h"

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int qcow2_backing_name(const char *path, char *buf, size_t len)
{
	unsigned char hdr[20];
	uint64_t off;
	uint32_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, "QFI\xfb", 4) != 0) {
		close(fd);
		return -EINVAL;
	}
	off = be64(hdr + 8);
	size = be32(hdr + 16);
	if (off == 0 || size == 0) {
		close(fd);
		return -ENOENT;
	}
	if (size >= len || size > 1023) {
		close(fd);
		return -ENAMETOOLONG;
	}
	n = pread(fd, buf, size, (off_t)off);
	close(fd);
	if (n != (ssize_t)size)
		return -EIO;
	buf[size] = '\0';
	return 0;
}

static int backing_matches(const char *backing, const char *id)
{
	char dir_part[200], entry_part[32];
	const char *digest = strchr(id, '-');

	snprintf(dir_part, sizeof(dir_part), "/%s/", id);
	if (strstr(backing, dir_part))
		return 1;
	if (!digest)
		return 0;
	snprintf(entry_part, sizeof(entry_part), "-%.8s.", digest + 1);
	return strstr(backing, "/images/") && strstr(backing, entry_part) != NULL;
}

int vm_reads_through(const char *home, const char *name, const char *mnt)
{
	char overlay[4096], backing[1024];
	struct vm_status st;
	size_t len = strlen(mnt);

	if (vm_status(home, name, &st) < 0 || st.state == VM_STOPPED)
		return 0;
	if (snprintf(overlay, sizeof(overlay), "%s/vms/%s/disk.qcow2", home, name) >= (int)sizeof(overlay) ||
	    qcow2_backing_name(overlay, backing, sizeof(backing)) < 0)
		return 0;
	return strncmp(backing, mnt, len) == 0 && backing[len] == '/';
}

int vm_uses_image(const char *home, const char *id)
{
	char **names, path[4096], backing[1024];
	size_t count;
	int used = 0;

	if (vm_list(home, &names, &count) < 0)
		return 1; /* unknown: keep the image */
	for (size_t i = 0; i < count && !used; i++) {
		if (snprintf(path, sizeof(path), "%s/vms/%s/disk.qcow2", home, names[i]) >= (int)sizeof(path))
			continue;
		if (qcow2_backing_name(path, backing, sizeof(backing)) == 0)
			used = backing_matches(backing, id);
	}
	vm_list_free(names, count);
	return used;
}
