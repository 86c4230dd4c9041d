/* The NoCloud seed image built in memory with libisofs: ISO 9660 level 1
 * with Rock Ridge and Joliet, volume id "cidata", and regular files in its
 * root directory only. Each file has mode 0600 and owner 0:0 in Rock Ridge,
 * so that only root in the guest reads it. */
#ifndef NIDO_SEED_ISO_H
#define NIDO_SEED_ISO_H

#include <stddef.h>

#define SEED_ISO_LABEL "cidata"

struct seed_iso_file {
	const char *name;	/* a name in the root directory, such as "user-data" */
	const void *data;
	size_t len;
};

/* Builds the image of files[0..count) into *out (malloc'd, caller frees) and
 * its size into *outlen. Returns 0, or -ENOMEM or -EIO with the cause in
 * err. Safe to call from several threads, because builds run one at a time. */
int seed_iso_build(const struct seed_iso_file *files, size_t count, void **out, size_t *outlen,
		   char *err, size_t errlen);

#endif
