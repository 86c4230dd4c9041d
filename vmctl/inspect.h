/* Inspection of a base image before QEMU opens it: the content must be the
 * format the catalog claims, and a qcow2 image must not name a backing file
 * or an external data file, nor be encrypted. Each of those would make QEMU
 * read a host file or ask for a key that the catalog's author chose. */
#ifndef NIDO_INSPECT_H
#define NIDO_INSPECT_H

#include <stddef.h>

/* Checks the image at path against format ("qcow2" or "raw"). Returns 0, or
 * -EINVAL (refused, the reason in err) or another -errno (unreadable). */
int image_inspect(const char *path, const char *format, char *err, size_t errlen);

#endif
