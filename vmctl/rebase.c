/* Pointing a stopped VM's overlay at the verified cache file; see rebase.h. */
#include "vmctl/rebase.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fetch/log.h"
#include "vmctl/spawn.h"
#include "vmctl/vmuse.h"

#define REBASE_TIMEOUT_MS 60000

/* From ".../images/NAME-VERSION-1234abcd.qcow2" takes "1234abcd" and "qcow2". */
static int parse_entry(const char *backing, char *digest8, char *format, size_t flen)
{
	const char *images = strstr(backing, "/images/");
	const char *dot = strrchr(backing, '.');

	if (!images || !dot || dot - backing < 9 || dot[-9] != '-')
		return -EINVAL;
	memcpy(digest8, dot - 8, 8);
	digest8[8] = '\0';
	snprintf(format, flen, "%s", dot + 1);
	return strcmp(format, "qcow2") == 0 || strcmp(format, "raw") == 0 ? 0 : -EINVAL;
}

/* Finds <home>/images/<type>-<digest...>/disk.FORMAT for the digest prefix. */
static int find_cached(const char *home, const char *digest8, const char *format, char *buf, size_t len)
{
	char dir[4096];
	struct dirent *d;
	DIR *dh;
	int rc = -ENOENT;

	snprintf(dir, sizeof(dir), "%s/images", home);
	if (!(dh = opendir(dir)))
		return -ENOENT;
	while (rc < 0 && (d = readdir(dh))) {
		const char *dash = strchr(d->d_name, '-');

		if (!dash || strncmp(dash + 1, digest8, 8) != 0)
			continue;
		snprintf(buf, len, "%s/%s/disk.%s", dir, d->d_name, format);
		if (access(buf, R_OK) == 0)
			rc = 0;
	}
	closedir(dh);
	return rc;
}

int vm_prefer_cached_base(const char *home, const char *vmdir, char *err, size_t errlen)
{
	char overlay[4096], backing[1024], digest8[9], format[8], cached[4096];
	const char *argv[10];
	int rc;

	snprintf(overlay, sizeof(overlay), "%s/disk.qcow2", vmdir);
	if (qcow2_backing_name(overlay, backing, sizeof(backing)) < 0 ||
	    parse_entry(backing, digest8, format, sizeof(format)) < 0 ||
	    find_cached(home, digest8, format, cached, sizeof(cached)) < 0 || strcmp(cached, backing) == 0)
		return 0;
	argv[0] = "qemu-img";
	argv[1] = "rebase";
	argv[2] = "-u";
	argv[3] = "-F";
	argv[4] = format;
	argv[5] = "-b";
	argv[6] = cached;
	argv[7] = overlay;
	argv[8] = NULL;
	rc = spawn_run(argv, -1, -1, REBASE_TIMEOUT_MS, err, errlen);
	if (rc < 0)
		return rc;
	log_info("%s: base image now read from the cache: %s", vmdir, cached);
	return 1;
}

int vm_check_base(const char *name, const char *vmdir, const char *tag, char *err, size_t errlen)
{
	char overlay[4096], backing[1024];

	snprintf(overlay, sizeof(overlay), "%s/disk.qcow2", vmdir);
	if (qcow2_backing_name(overlay, backing, sizeof(backing)) < 0 || access(backing, R_OK) == 0)
		return 0; /* QEMU reports an unreadable overlay itself */
	snprintf(err, errlen, "vm %s: base image %s cannot be opened: %s; if it is read through a "
		 "nidofs mount, mount it again, else run 'nido image pull %s' and start again",
		 name, backing, strerror(errno), tag);
	return -ENOENT;
}
