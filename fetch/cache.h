/* The block cache: images fetched lazily by HTTP range requests into
 * <home>/images/<id>/, where <id> names the content (the catalog checksum, or
 * the URL when there is none). Shared by the FUSE daemon and `nido image pull`;
 * one process at a time owns an image (an flock on the file `lock` in its directory).
 *
 * On disk, per image (format 1):
 *   meta         JSON: url, tag, size, block_size, validators (etag,
 *                last_modified), checksum, verified; written atomically.
 *   data         the image, sparse, while incomplete or unverified.
 *   map          one byte per block: 1 once the block's bytes are durable.
 *   disk.qcow2 / disk.raw   the complete image, renamed from data after its checksum
 *                matched (or, when the catalog gives none, once complete).
 * A block is marked in map only after fdatasync of data has returned, so a
 * crash never leaves a block marked with bytes that were not written. */
#ifndef NIDO_CACHE_H
#define NIDO_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fetch/catalog.h"

#define CACHE_BLOCK_SIZE (64u * 1024)

struct cache;
struct cached_image;

struct cache_info {
	uint64_t size;			/* image size in bytes */
	uint64_t cached;		/* bytes of blocks present */
	int complete;			/* every block present */
	int verified;			/* checksum matched (or: no checksum to check) */
	int final;			/* complete and given its final name: bytes fixed */
	uint64_t requests, fetched;	/* HTTP requests made and body bytes received */
	char state[64];			/* "partial", "verifying", "verified", ... */
	char last_error[512];
};

/* Opens the cache rooted at dir (created if missing) with its fetch workers. */
int cache_open(const char *dir, const char *ca_file, struct cache **out);
void cache_close(struct cache *c);

/* Writes the directory name of an image's cache entry, e.g. "sha256-<hex>". */
void cache_image_id(const struct cat_version *v, char *buf, size_t len);

/* Writes the name of an entry in the images/ view: "NAME-VERSION-<8 hex of
 * the id>.FORMAT". The id part keeps two builds of one tag apart, so a VM
 * whose base image is named this way never reads another build's bytes. */
void cache_entry_name(const char *tag, const char *id, const char *disk_name, char *buf, size_t len);
void cache_version_entry_name(const struct cat_version *v, char *buf, size_t len);

/* Opens (or returns the already open) cache entry of a catalog version; counted
 * references, release with cache_put. -EBUSY when another process owns it. */
int cache_get(struct cache *c, const struct cat_version *v, struct cached_image **out,
	      char *err, size_t errlen);
void cache_put(struct cached_image *img);

/* Reads bytes through the cache, fetching missing blocks; returns the byte
 * count or -errno (-EIO with the cause logged and kept in last_error).
 * cancelled, when given, is checked every 100 ms while the read waits for
 * blocks, and the read ends with -EINTR once it returns 1. */
ssize_t cache_read(struct cached_image *img, void *buf, size_t size, uint64_t off, int (*cancelled)(void));

/* Waits as cache_read until [off, off + *size) is cached, after cutting *size
 * at the end of the image, and returns the file descriptor to read those bytes
 * from at off (owned by the cache), or a negative errno. */
int cache_read_fd(struct cached_image *img, uint64_t off, size_t *size, int (*cancelled)(void));

/* Fetches every missing block; progress, when given, is called about once a second. */
int cache_pull(struct cached_image *img, void (*progress)(void *arg, const struct cache_info *),
	       void *arg);

void cache_image_info(struct cached_image *img, struct cache_info *info);

/* Bytes present for a version without opening it (from the files on disk). */
uint64_t cache_cached_bytes(struct cache *c, const struct cat_version *v);

/* Returns 1 when this process has the version's cache entry open. */
int cache_is_open(struct cache *c, const struct cat_version *v);

/* Path of the verified image file if the version is completely cached, else -ENOENT. */
int cache_complete_path(struct cache *c, const struct cat_version *v, char *buf, size_t len);
/* The same for the cache rooted at dir, without opening it. */
int cache_complete_path_in(const char *dir, const struct cat_version *v, char *buf, size_t len);

const char *cache_dir(const struct cache *c);
/* The CA file given to cache_open, "" for the system's store. */
const char *cache_ca_file(const struct cache *c);

/* Sets the size limits (bytes, 0 for none) and the callback that reports whether
 * a VM uses an entry (by id), which then is never evicted. */
void cache_set_limits(struct cache *c, uint64_t max_bytes, uint64_t min_free,
		      int (*in_use)(const char *id, void *arg), void *arg);

/* Removes one entry; -EBUSY when a VM uses it or it is open, with the cause in err. */
int cache_evict(struct cache *c, const char *id, char *err, size_t errlen);

/* Sets the function called with an entry's id when its cached bytes are
 * discarded or evicted, so that copies of them elsewhere (the kernel's page
 * cache) can be dropped. It is called with cache locks held: it must not
 * block or call into the cache. NULL removes it. */
void cache_set_change_hook(struct cache *c, void (*changed)(const char *id, void *arg), void *arg);

/* Makes room for need more bytes in entry keep by evicting the least recently
 * written other entries that no VM uses and no process has open. When the limits
 * cannot be kept even so, evicts nothing and returns -ENOSPC with the limit,
 * the sizes and the entries that could not be evicted in err. */
int cache_make_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen);
/* Checks, evicting nothing, that cache_make_room could make room for need. */
int cache_check_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen);

/* Counts len bytes that entry keep is about to write outside the block store
 * (a packed pull), making room a block ahead of them. *room carries the room
 * made but not written yet from one call to the next, starting at 0.
 * -ENOSPC as cache_make_room. */
int cache_reserve(struct cache *c, const char *keep, uint64_t *room, uint64_t len, char *err, size_t errlen);

/* Sums the cache's usage from its files again, after files were removed
 * behind the counter's back. */
void cache_recount(struct cache *c);

#endif
