/* Moving a VM's base image from the mount to the cache: a VM created while its
 * image was fetched lazily through the mount has the mount's content-named
 * images/ entry as backing file; once the cache holds the verified image, the
 * overlay is pointed at the cache file so that the VM runs without the mount. */
#ifndef NIDO_REBASE_H
#define NIDO_REBASE_H

#include <stddef.h>

/* Rewrites the overlay's backing file name (qemu-img rebase -u) when its
 * verified cache file exists; only while the VM is stopped. Returns 1 when it
 * rebased, 0 when nothing was to do, or -errno with the cause in err. */
int vm_prefer_cached_base(const char *home, const char *vmdir, char *err, size_t errlen);

/* Checks that the base image of VM name can be opened. Returns 0, or -ENOENT
 * with a message in err on how to make it available again (mount
 * nidofs, or pull tag, the image the VM was made from). */
int vm_check_base(const char *name, const char *vmdir, const char *tag, char *err, size_t errlen);

#endif
