/* The cached images that VMs use, read from each overlay's backing file name. */
#ifndef NIDO_VMUSE_H
#define NIDO_VMUSE_H

#include <stddef.h>

/* Reads the backing file name from a qcow2 header; -EINVAL if not qcow2,
 * -ENOENT when it names none. */
int qcow2_backing_name(const char *path, char *buf, size_t len);

/* Returns 1 when a VM under home has a base image from the cache entry id:
 * its backing file is <cache>/<id>/... or a content-named images/ entry
 * ending in -<first 8 digest digits of id>.FORMAT. */
int vm_uses_image(const char *home, const char *id);

/* Returns 1 when the VM name is running and its base image is inside mnt. */
int vm_reads_through(const char *home, const char *name, const char *mnt);

#endif
