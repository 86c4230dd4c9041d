/* The images/ view: one file per image in the block cache, named by content
 * (see cache_entry_name), readable lazily like the catalog's image files. VMs
 * use these paths as their base image, so a catalog update that points a tag
 * at a new build never changes the bytes under an existing VM. */
#ifndef NIDO_FS_IMAGES_H
#define NIDO_FS_IMAGES_H

#include <limits.h>
#include <stdint.h>

#include "fetch/cache.h"

struct cached_entry {
	char name[256];			/* e.g. "ubuntu-24.04-0533b065.qcow2" */
	char id[160];			/* cache directory name */
	char tag[160];
	char url[4096];
	char checksum_type[8];
	char checksum[129];
	char disk_name[16];		/* "disk.qcow2" or "disk.raw" */
	char file[PATH_MAX];		/* the complete file, or the partial data file */
	uint64_t size;			/* image size */
	int complete;			/* the file has its final name: read it directly */
};

/* Calls fn for every cache entry with a readable meta file; stops early when fn
 * returns non-zero and returns that value. */
int images_each(int (*fn)(const struct cached_entry *e, void *arg), void *arg);

/* Finds the entry called name among cache entries and, for images not cached
 * yet, the lazy entries of the catalog (fs.lock held). -ENOENT if none. */
int images_find(const char *name, struct cached_entry *e);

/* Opens an entry through the block cache; fs.lock held. */
int images_open(const struct cached_entry *e, struct cached_image **out);

#endif
