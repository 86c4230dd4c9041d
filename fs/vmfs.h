/* The vms/ part of the tree: VM directories, their files, mkdir and rmdir. */
#ifndef NIDO_FS_VMFS_H
#define NIDO_FS_VMFS_H

#include <sys/stat.h>

#include "fs/handle.h"

typedef int (*name_fill_fn)(void *buf, const char *name);

int vmfs_file_exists(const char *vm, const char *file);
int vmfs_list(const char *vm, name_fill_fn fill, void *buf);
int vmfs_getattr(const char *vm, const char *file, struct stat *st);
int vmfs_open(const char *vm, const char *file, int flags, struct handle **out);
/* Applies what was written to a VM file when it is closed. */
int vmfs_release(struct handle *h);
int vmfs_write_ctl(struct handle *h, const char *data, size_t size);

int vmfs_create(const char *name);
int vmfs_remove(const char *name);

#endif
