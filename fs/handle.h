/* Open-file handles of the daemon, stored in fuse_file_info.fh. */
#ifndef NIDO_FS_HANDLE_H
#define NIDO_FS_HANDLE_H

#include <stddef.h>

#include "fetch/cache.h"

enum handle_kind {
	HANDLE_FD,		/* a file in the state directory, read with pread */
	HANDLE_TEXT,		/* text generated at open */
	HANDLE_IMAGE,		/* an image read through the block cache */
	HANDLE_EDIT,		/* a file replaced as a whole when closed (config) */
	HANDLE_CTL,		/* a VM's control file */
};

struct handle {
	enum handle_kind kind;
	int fd;
	int lock_fd;		/* HANDLE_FD of a packed disk: a shared lock on its entry */
	char *text;		/* HANDLE_TEXT; HANDLE_EDIT and HANDLE_CTL: bytes written */
	size_t len;
	int dirty;		/* HANDLE_EDIT: written since open */
	int rejected;		/* HANDLE_EDIT: -errno of the first failed write, then nothing is saved */
	struct cached_image *img;
	char vm[64];		/* HANDLE_EDIT of a VM file, HANDLE_CTL */
	char target[4096];	/* HANDLE_EDIT: the file replaced on close */
};

struct handle *handle_new(enum handle_kind kind);
void handle_free(struct handle *h);

/* Appends data at off to h->text, growing it; -EFBIG past max bytes. */
int handle_write(struct handle *h, const char *data, size_t size, off_t off, size_t max);

#endif
