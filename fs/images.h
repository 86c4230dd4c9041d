/* The images/ view: one file per image entry in the block cache directory. */
#ifndef NIDO_FS_IMAGES_H
#define NIDO_FS_IMAGES_H

#include <stdint.h>
#include <limits.h>

struct cached_entry {
	char name[256];			/* e.g. "ubuntu-24.04-0533b065.qcow2" */
	char id[160];			/* cache directory name */
	char tag[160];
	char file[PATH_MAX];		/* the verified file, or the partial data file */
	uint64_t size;			/* image size from meta */
	int verified;
};

/* Calls fn for every cache entry with a readable meta file; stops early when fn
 * returns non-zero and returns that value. */
int images_each(int (*fn)(const struct cached_entry *e, void *arg), void *arg);

/* Finds the entry called name; fills e when not NULL. -ENOENT if none. */
int images_find(const char *name, struct cached_entry *e);

#endif
