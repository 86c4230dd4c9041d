/* The block cache: opening image entries and reading through them; see cache.h. */
#include "fetch/cache_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch/clock.h"
#include "fetch/files.h"
#include "fetch/log.h"

/* A reader waits at most this long for its blocks; fetches give up sooner. */
#define READ_WAIT_MAX_S 600
/* A reader with a cancel check looks at it this often while it waits. */
#define CANCEL_POLL_MS 100

int cache_open(const char *dir, const char *ca_file, struct cache **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	snprintf(c->ca_file, sizeof(c->ca_file), "%s", ca_file ? ca_file : "");
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->room_lock, NULL);
	pthread_cond_init(&c->job_cond, NULL);
	pthread_cond_init(&c->flush_cond, NULL);
	if ((rc = mkdir_p(dir, 0755)) < 0 || (rc = cache_start_workers(c)) < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cache_image_free(struct cached_image *img)
{
	store_close(img);
	pthread_mutex_destroy(&img->lock);
	pthread_cond_destroy(&img->cond);
	free(img->state);
	free(img);
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	cache_stop_workers(c);
	/* A verify thread is detached and uses its image to the end, so the
	 * images are freed only after every one has seen c->stopping and ended. */
	pthread_mutex_lock(&c->lock);
	while (c->verifiers > 0)
		pthread_cond_wait(&c->flush_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	while (c->images) {
		struct cached_image *img = c->images;

		c->images = img->next;
		cache_image_free(img);
	}
	free(c);
}

int cache_stopping(struct cache *c)
{
	int stopping;

	pthread_mutex_lock(&c->lock);
	stopping = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return stopping;
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

const char *cache_ca_file(const struct cache *c)
{
	return c->ca_file;
}

void cache_image_id(const struct cat_version *v, char *buf, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char hex[65] = "";

	if (v->checksum[0]) {
		/* sha512 ids keep 64 hex digits: unique enough, and shorter paths. */
		snprintf(buf, len, "%s-%.64s", v->checksum_type, v->checksum);
		return;
	}
	EVP_Digest(v->url, strlen(v->url), digest, &dlen, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 16 && i < dlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	snprintf(buf, len, "url-%s", hex);
}

void cache_entry_name(const char *tag, const char *id, const char *disk_name, char *buf, size_t len)
{
	const char *colon = strchr(tag, ':');
	const char *digest = strchr(id, '-');
	const char *ext = strchr(disk_name, '.');

	snprintf(buf, len, "%.*s-%s-%.8s%s", colon ? (int)(colon - tag) : (int)strlen(tag), tag,
		 colon ? colon + 1 : "", digest ? digest + 1 : id, ext ? ext : "");
}

void cache_version_entry_name(const struct cat_version *v, char *buf, size_t len)
{
	char tag[160], id[160];

	cat_version_tag(v, tag, sizeof(tag));
	cache_image_id(v, id, sizeof(id));
	cache_entry_name(tag, id, cat_version_disk_name(v), buf, len);
}

static struct cached_image *image_new(struct cache *c, const struct cat_version *v)
{
	struct cached_image *img = calloc(1, sizeof(*img));

	if (!img)
		return NULL;
	img->cache = c;
	cache_image_id(v, img->id, sizeof(img->id));
	path_join(img->dir, sizeof(img->dir), c->dir, img->id);
	cat_version_tag(v, img->tag, sizeof(img->tag));
	snprintf(img->url, sizeof(img->url), "%s", v->url);
	snprintf(img->checksum_type, sizeof(img->checksum_type), "%s", v->checksum_type);
	snprintf(img->checksum, sizeof(img->checksum), "%s", v->checksum);
	snprintf(img->disk_name, sizeof(img->disk_name), "%s", cat_version_disk_name(v));
	img->size = v->size;
	img->nblocks = (v->size + CACHE_BLOCK_SIZE - 1) / CACHE_BLOCK_SIZE;
	img->state = calloc(img->nblocks ? img->nblocks : 1, 1);
	pthread_mutex_init(&img->lock, NULL);
	pthread_cond_init(&img->cond, NULL);
	if (!img->state) {
		free(img);
		return NULL;
	}
	return img;
}

int cache_get(struct cache *c, const struct cat_version *v, struct cached_image **out,
	      char *err, size_t errlen)
{
	struct cached_image *img;
	char id[160];
	int rc;

	if (!cat_version_lazy(v) || v->size == 0) {
		snprintf(err, errlen, "%s:%s: entry is not a disk image that can be read by range",
			 v->image->name, v->version);
		return -EOPNOTSUPP;
	}
	cache_image_id(v, id, sizeof(id));
	pthread_mutex_lock(&c->lock);
	for (img = c->images; img; img = img->next)
		if (strcmp(img->id, id) == 0 && img->size == v->size)
			break;
	if (img) {
		img->refs++;
		pthread_mutex_unlock(&c->lock);
		*out = img;
		return 0;
	}
	img = image_new(c, v);
	if (!img) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	rc = store_open(img, v, err, errlen);
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		cache_image_free(img);
		return rc;
	}
	img->refs = 1;
	img->next = c->images;
	c->images = img;
	pthread_mutex_unlock(&c->lock);
	*out = img;
	return 0;
}

/* Entries stay open until cache_close, so that a reopen costs nothing. */
void cache_put(struct cached_image *img)
{
	if (!img)
		return;
	pthread_mutex_lock(&img->cache->lock);
	img->refs--;
	pthread_mutex_unlock(&img->cache->lock);
}

/* Returns 1 when a read at off continues the current stream: the kernel sends
 * the parts of one large read in parallel, so they may arrive out of order. */
static int in_stream(const struct cached_image *img, uint64_t off)
{
	return img->ra_next != 0 && off + CACHE_READAHEAD_SLACK >= img->ra_next &&
	       off <= img->ra_next + CACHE_READAHEAD_SLACK;
}

/* Queues what [first, last] misses, first in line. For a reader that has read
 * CACHE_READAHEAD_START blocks in order, it also keeps as many blocks again
 * (at most CACHE_READAHEAD_MAX) queued beyond them, behind the reads others
 * wait for, topped up in runs of at least half that window so that requests
 * stay large; img->lock held. */
static void queue_with_readahead(struct cached_image *img, uint64_t off, size_t size,
				 uint64_t first, uint64_t last)
{
	uint64_t window, from;

	if (!in_stream(img, off)) {
		img->ra_run = img->ra_ahead = 0;
		img->ra_next = off + size;
	} else if (off + size > img->ra_next) {
		img->ra_run += off + size - img->ra_next;
		img->ra_next = off + size;
	}
	cache_queue_missing(img, first, last, 1);
	window = img->ra_run / CACHE_BLOCK_SIZE;
	if (window < CACHE_READAHEAD_START)
		return;
	if (window > CACHE_READAHEAD_MAX)
		window = CACHE_READAHEAD_MAX;
	from = img->ra_ahead > last + 1 ? img->ra_ahead : last + 1;
	if (from > last + window / 2)
		return;
	cache_queue_missing(img, from, last + window, 0);
	img->ra_ahead = last + window + 1;
}

static int blocks_present(const struct cached_image *img, uint64_t first, uint64_t last, int *failed)
{
	int all = 1;

	*failed = 0;
	for (uint64_t b = first; b <= last; b++) {
		all &= img->state[b] >= BLOCK_PRESENT;
		*failed |= img->state[b] == BLOCK_MISSING;
	}
	return all;
}

/* Returns the earlier of deadline and CANCEL_POLL_MS from now. */
static struct timespec poll_until(const struct timespec *deadline)
{
	struct timespec t = realtime_after_ms(CANCEL_POLL_MS);

	if (t.tv_sec > deadline->tv_sec || (t.tv_sec == deadline->tv_sec && t.tv_nsec > deadline->tv_nsec))
		return *deadline;
	return t;
}

/* Waits until [first, last] is present; img->lock held. The fetch that a
 * cancelled reader leaves goes on, for the next reader of those blocks. */
static int wait_blocks(struct cached_image *img, uint64_t off, size_t size, uint64_t first, uint64_t last,
		       int (*cancelled)(void))
{
	struct timespec deadline, until;
	uint64_t gen = img->fail_gen;
	int missing;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += READ_WAIT_MAX_S;
	queue_with_readahead(img, off, size, first, last);
	while (!blocks_present(img, first, last, &missing)) {
		if (missing && img->fail_gen != gen)
			return -EIO;
		if (missing)
			cache_queue_missing(img, first, last, 1); /* discarded meanwhile */
		if (cancelled && cancelled())
			return -EINTR;
		until = cancelled ? poll_until(&deadline) : deadline;
		if (pthread_cond_timedwait(&img->cond, &img->lock, &until) == ETIMEDOUT &&
		    until.tv_sec == deadline.tv_sec && until.tv_nsec == deadline.tv_nsec) {
			cache_set_error(img, "offset %" PRIu64 ": no data after %d s", off, READ_WAIT_MAX_S);
			return -EIO;
		}
	}
	return 0;
}

int cache_read_fd(struct cached_image *img, uint64_t off, size_t *size, int (*cancelled)(void))
{
	uint64_t first, last;
	int rc;

	if (off >= img->size)
		*size = 0;
	else if (*size > img->size - off)
		*size = (size_t)(img->size - off);
	if (*size == 0)
		return img->data_fd;
	first = off / CACHE_BLOCK_SIZE;
	last = (off + *size - 1) / CACHE_BLOCK_SIZE;
	pthread_mutex_lock(&img->lock);
	rc = wait_blocks(img, off, *size, first, last, cancelled);
	pthread_mutex_unlock(&img->lock);
	if (rc < 0) {
		log_debug("%s: read of %zu bytes at offset %" PRIu64 " failed: %s", img->tag, *size, off,
			  rc == -EINTR ? "request interrupted" : img->last_error);
		return rc;
	}
	return img->data_fd;
}

ssize_t cache_read(struct cached_image *img, void *buf, size_t size, uint64_t off, int (*cancelled)(void))
{
	int fd = cache_read_fd(img, off, &size, cancelled);
	ssize_t n;

	if (fd < 0 || size == 0)
		return fd < 0 ? fd : 0;
	n = pread(fd, buf, size, (off_t)off);
	return n < 0 ? -errno : n;
}

void cache_image_info(struct cached_image *img, struct cache_info *info)
{
	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&img->lock);
	info->size = img->size;
	info->cached = img->present * (uint64_t)CACHE_BLOCK_SIZE;
	if (info->cached > img->size)
		info->cached = img->size;
	info->complete = img->present == img->nblocks;
	info->verified = img->verified;
	info->final = img->final;
	info->requests = img->requests;
	info->fetched = img->fetched;
	if (img->verified)
		snprintf(info->state, sizeof(info->state), "complete, verified");
	else if (img->verifying)
		snprintf(info->state, sizeof(info->state), "complete, checksum check running");
	else if (img->final)
		snprintf(info->state, sizeof(info->state), "complete, not verified (no checksum)");
	else
		snprintf(info->state, sizeof(info->state), "partial");
	if (img->last_error[0])
		snprintf(info->last_error, sizeof(info->last_error), "%s", img->last_error);
	else if (img->note[0])
		snprintf(info->last_error, sizeof(info->last_error), "%s", img->note);
	pthread_mutex_unlock(&img->lock);
}

int cache_pull(struct cached_image *img, void (*progress)(void *arg, const struct cache_info *),
	       void *arg)
{
	const uint64_t step = 64ull * CACHE_BLOCK_SIZE;
	struct cache_info info;
	char *buf = malloc(step);

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < img->size; off += step) {
		ssize_t n = cache_read(img, buf, step, off, NULL);

		if (n < 0) {
			free(buf);
			return (int)n;
		}
		if (progress) {
			cache_image_info(img, &info);
			progress(arg, &info);
		}
	}
	free(buf);
	/* Wait for the checksum check that the last block started. */
	pthread_mutex_lock(&img->lock);
	store_maybe_verify(img);
	while (img->verifying)
		pthread_cond_wait(&img->cond, &img->lock);
	pthread_mutex_unlock(&img->lock);
	cache_image_info(img, &info);
	if (progress)
		progress(arg, &info);
	return img->checksum[0] && !info.verified ? -EIO : 0;
}

/* Counts allocated blocks of the file, which can exceed the image size by
 * the file system's last block, so the count is clamped to the size. */
uint64_t cache_cached_bytes(struct cache *c, const struct cat_version *v)
{
	char id[160], path[PATH_MAX];
	struct stat st;
	uint64_t bytes = 0;

	cache_image_id(v, id, sizeof(id));
	if (snprintf(path, sizeof(path), "%s/%s/%s", c->dir, id, cat_version_disk_name(v)) < (int)sizeof(path) &&
	    stat(path, &st) == 0)
		bytes = (uint64_t)st.st_blocks * 512;
	else if (snprintf(path, sizeof(path), "%s/%s/data", c->dir, id) < (int)sizeof(path) &&
		 stat(path, &st) == 0)
		bytes = (uint64_t)st.st_blocks * 512;
	return v->size && bytes > v->size ? v->size : bytes;
}

int cache_is_open(struct cache *c, const struct cat_version *v)
{
	char id[160];
	int found = 0;

	cache_image_id(v, id, sizeof(id));
	pthread_mutex_lock(&c->lock);
	for (struct cached_image *img = c->images; img && !found; img = img->next)
		found = strcmp(img->id, id) == 0;
	pthread_mutex_unlock(&c->lock);
	return found;
}

int cache_complete_path_in(const char *dir, const struct cat_version *v, char *buf, size_t len)
{
	char id[160];

	cache_image_id(v, id, sizeof(id));
	if (snprintf(buf, len, "%s/%s/%s", dir, id, cat_version_disk_name(v)) >= (int)len)
		return -ENAMETOOLONG;
	return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}

int cache_complete_path(struct cache *c, const struct cat_version *v, char *buf, size_t len)
{
	return cache_complete_path_in(c->dir, v, buf, len);
}
