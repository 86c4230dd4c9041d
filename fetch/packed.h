/* Catalog entries whose download is not the disk itself: part_urls pieces of
 * one compressed stream, or a compressed or archived disk (.tar.xz, .zst, .gz
 * and so on). They cannot be read by range, so the first use downloads them
 * whole into the cache entry's directory, checks the catalog checksum (of the
 * download, or else of the unpacked disk), unpacks them with libarchive, and
 * only then renames the disk to its final name (disk.raw or disk.qcow2).
 *
 * Files in <cache>/<id>/: part.N.partial while downloading piece N, part.N
 * when complete, unpacking while unpacking, then the disk and its meta. */
#ifndef NIDO_PACKED_H
#define NIDO_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "fetch/cache.h"
#include "fetch/catalog.h"

/* Makes sure the entry is pulled, unpacked and verified in the cache c, and
 * writes the disk's path into path. Concurrent callers for one entry wait for
 * the one pull. The download and the unpacked disk count against the cache
 * limits while they exist: -ENOSPC, with nothing of the pull left behind,
 * when room cannot be made for them. cancelled, when given, is checked about
 * every 200 ms, and once a second during a transfer. When it returns 1, the
 * call ends with -EINTR while it waits for another caller's pull, or with
 * -ECANCELED during its own pull, which a later call resumes. Other errors:
 * -EIO or another -errno, with the cause in err. */
int packed_ensure(struct cache *c, const struct cat_version *v, int (*cancelled)(void),
		  char *path, size_t len, char *err, size_t errlen);

/* Describes a pull in progress in this process ("downloading 12 MB of 200 MB",
 * "unpacking", "failed: ..."); returns 0, or -ENOENT when none ran. */
int packed_describe(const struct cat_version *v, char *buf, size_t len);

#endif
