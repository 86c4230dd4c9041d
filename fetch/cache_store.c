/* The block cache's files: meta, map and data of one image, durability of
 * fetched blocks, and the checksum check of a complete image. See cache.h for
 * the layout on disk. */
#include "fetch/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "fetch/files.h"
#include "fetch/log.h"

#define META_FORMAT 1

void cache_set_error(struct cached_image *img, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(img->last_error, sizeof(img->last_error), fmt, ap);
	va_end(ap);
}

static int img_path(const struct cached_image *img, const char *name, char *buf, size_t len)
{
	return path_join(buf, len, img->dir, name);
}

int store_save_meta(struct cached_image *img)
{
	char path[PATH_MAX];
	struct stat st;
	cJSON *m = cJSON_CreateObject();
	char *text;
	int rc;

	if (!m)
		return -ENOMEM;
	cJSON_AddNumberToObject(m, "format", META_FORMAT);
	cJSON_AddStringToObject(m, "tag", img->tag);
	cJSON_AddStringToObject(m, "url", img->url);
	cJSON_AddStringToObject(m, "disk", img->disk_name);
	cJSON_AddNumberToObject(m, "size", (double)img->size);
	cJSON_AddNumberToObject(m, "block_size", CACHE_BLOCK_SIZE);
	cJSON_AddStringToObject(m, "etag", img->val.etag);
	cJSON_AddStringToObject(m, "last_modified", img->val.last_modified);
	cJSON_AddStringToObject(m, "checksum_type", img->checksum_type);
	cJSON_AddStringToObject(m, "checksum", img->checksum);
	cJSON_AddBoolToObject(m, "verified", img->verified);
	cJSON_AddBoolToObject(m, "final", img->final);
	if (img->final && fstat(img->data_fd, &st) == 0)
		cJSON_AddNumberToObject(m, "final_mtime_ns",
					(double)st.st_mtim.tv_sec * 1e9 + (double)st.st_mtim.tv_nsec);
	text = cJSON_Print(m);
	cJSON_Delete(m);
	if (!text)
		return -ENOMEM;
	if ((rc = img_path(img, "meta", path, sizeof(path))) == 0)
		rc = write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}

/* Reads the meta file; returns it parsed, or NULL when absent or unusable. */
static cJSON *load_meta(struct cached_image *img)
{
	char path[PATH_MAX], *text;
	size_t len;
	cJSON *m, *size, *bs, *fmt;

	if (img_path(img, "meta", path, sizeof(path)) < 0 || read_file(path, 65536, &text, &len) < 0)
		return NULL;
	m = cJSON_ParseWithLength(text, len);
	free(text);
	size = cJSON_GetObjectItem(m, "size");
	bs = cJSON_GetObjectItem(m, "block_size");
	fmt = cJSON_GetObjectItem(m, "format");
	if (!cJSON_IsNumber(size) || !cJSON_IsNumber(bs) || !cJSON_IsNumber(fmt) ||
	    (uint64_t)size->valuedouble != img->size || bs->valuedouble != CACHE_BLOCK_SIZE ||
	    fmt->valuedouble != META_FORMAT) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

static void meta_string(const cJSON *m, const char *key, char *buf, size_t len)
{
	const cJSON *item = cJSON_GetObjectItem(m, key);

	snprintf(buf, len, "%s", cJSON_IsString(item) ? item->valuestring : "");
}

static int open_in_dir(struct cached_image *img, const char *name, int flags)
{
	char path[PATH_MAX];
	int fd;

	if (img_path(img, name, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	fd = open(path, flags | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

/* Opens the complete file when it is still the one that was completed. */
static int open_verified(struct cached_image *img, const cJSON *m)
{
	const cJSON *mtime = cJSON_GetObjectItem(m, "final_mtime_ns");
	struct stat st;
	int fd;

	if (!cJSON_IsTrue(cJSON_GetObjectItem(m, "final")) || !cJSON_IsNumber(mtime))
		return -ENOENT;
	fd = open_in_dir(img, img->disk_name, O_RDONLY);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != img->size ||
	    (double)st.st_mtim.tv_sec * 1e9 + (double)st.st_mtim.tv_nsec != mtime->valuedouble) {
		log_warnx("%s: cached image %s changed since it was verified; checking it again",
			  img->tag, img->disk_name);
		close(fd);
		return -ESTALE;
	}
	return fd;
}

static int load_map(struct cached_image *img)
{
	ssize_t n = pread(img->map_fd, img->state, img->nblocks, 0);

	if (n < 0)
		return -errno;
	for (uint64_t i = 0; i < img->nblocks; i++) {
		img->state[i] = (i < (uint64_t)n && img->state[i] == 1) ? BLOCK_DURABLE : BLOCK_MISSING;
		img->present += img->state[i] == BLOCK_DURABLE;
	}
	return 0;
}

/* The state of the data file at open. */
enum data_origin { DATA_PARTIAL, DATA_NEW, DATA_COMPLETE };

/* Opens data. A final file that no meta vouches for (after a crash between
 * its rename and the meta, or one changed behind the daemon's back) is
 * renamed back and checked again as complete. A new data file, or one of the
 * wrong size, starts empty whatever the map marks. */
static int open_data(struct cached_image *img, enum data_origin *origin)
{
	char final[PATH_MAX], data[PATH_MAX];
	struct stat st;
	int created;

	if (img_path(img, img->disk_name, final, sizeof(final)) < 0 || img_path(img, "data", data, sizeof(data)) < 0)
		return -ENAMETOOLONG;
	*origin = DATA_PARTIAL;
	if (access(data, F_OK) != 0 && access(final, F_OK) == 0) {
		if (rename(final, data) < 0)
			return -errno;
		*origin = DATA_COMPLETE;
	}
	created = access(data, F_OK) != 0;
	img->data_fd = open_in_dir(img, "data", O_RDWR | O_CREAT);
	if (img->data_fd < 0)
		return img->data_fd;
	if (fstat(img->data_fd, &st) < 0)
		return -errno;
	if (created || st.st_size == 0) {
		*origin = DATA_NEW;
	} else if ((uint64_t)st.st_size != img->size) {
		log_warnx("%s: cache file has %jd bytes, expected %" PRIu64 "; discarding its blocks",
			  img->tag, (intmax_t)st.st_size, img->size);
		*origin = DATA_NEW;
		if (ftruncate(img->data_fd, 0) < 0)
			return -errno;
	}
	return ftruncate(img->data_fd, (off_t)img->size) < 0 ? -errno : 0;
}

static void mark_all(struct cached_image *img, enum block_state state)
{
	memset(img->state, state, img->nblocks);
	img->present = state == BLOCK_MISSING ? 0 : img->nblocks;
}

static int open_files(struct cached_image *img, cJSON *m)
{
	enum data_origin origin;
	int fd = m ? open_verified(img, m) : -ENOENT;
	int rc;

	if (fd >= 0) {
		img->data_fd = fd;
		img->final = 1;
		img->verified = cJSON_IsTrue(cJSON_GetObjectItem(m, "verified"));
		mark_all(img, BLOCK_DURABLE);
		return 0;
	}
	if ((img->map_fd = open_in_dir(img, "map", O_RDWR | O_CREAT)) < 0)
		return img->map_fd;
	if ((rc = open_data(img, &origin)) < 0)
		return rc;
	if (origin == DATA_COMPLETE) {
		mark_all(img, BLOCK_DURABLE); /* it was complete when renamed; checked again */
		return 0;
	}
	if (origin == DATA_NEW || !m) {
		mark_all(img, BLOCK_MISSING);
		return ftruncate(img->map_fd, 0) < 0 ? -errno : 0;
	}
	return load_map(img);
}

static int take_lock(struct cached_image *img, char *err, size_t errlen)
{
	img->lock_fd = open_in_dir(img, "lock", O_RDWR | O_CREAT);
	if (img->lock_fd < 0) {
		snprintf(err, errlen, "%s: cannot open cache lock in %s: %s", img->tag, img->dir,
			 strerror(-img->lock_fd));
		return img->lock_fd;
	}
	if (flock(img->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "%s: cache entry %s is in use by another process", img->tag, img->id);
		return -EBUSY;
	}
	return 0;
}

int store_open(struct cached_image *img, const struct cat_version *v, char *err, size_t errlen)
{
	cJSON *m;
	int rc;

	(void)v;
	img->lock_fd = img->data_fd = img->map_fd = -1;
	if ((rc = mkdir_p(img->dir, 0755)) < 0) {
		snprintf(err, errlen, "%s: cannot create %s: %s", img->tag, img->dir, strerror(-rc));
		return rc;
	}
	if ((rc = take_lock(img, err, errlen)) < 0)
		return rc;
	m = load_meta(img);
	if (m) {
		meta_string(m, "etag", img->val.etag, sizeof(img->val.etag));
		meta_string(m, "last_modified", img->val.last_modified, sizeof(img->val.last_modified));
	}
	rc = open_files(img, m);
	cJSON_Delete(m);
	if (rc == 0)
		rc = store_save_meta(img);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot open cache files in %s: %s", img->tag, img->dir,
			 strerror(-rc));
	return rc;
}

void store_close(struct cached_image *img)
{
	if (img->data_fd >= 0)
		store_flush(img);
	if (img->data_fd >= 0)
		close(img->data_fd);
	if (img->map_fd >= 0)
		close(img->map_fd);
	if (img->lock_fd >= 0)
		close(img->lock_fd);
	img->data_fd = img->map_fd = img->lock_fd = -1;
}

/* Writes the map from the states; img->lock held. Only DURABLE blocks are 1. */
static int write_map(struct cached_image *img)
{
	uint8_t *buf = malloc(img->nblocks);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < img->nblocks; i++)
		buf[i] = img->state[i] == BLOCK_DURABLE;
	n = pwrite(img->map_fd, buf, img->nblocks, 0);
	free(buf);
	return n == (ssize_t)img->nblocks ? 0 : -EIO;
}

int store_flush(struct cached_image *img)
{
	uint64_t *batch, count = 0, epoch;
	int rc = 0;

	pthread_mutex_lock(&img->lock);
	if (img->undurable == 0 || img->map_fd < 0) {
		pthread_mutex_unlock(&img->lock);
		return 0;
	}
	batch = malloc(img->undurable * sizeof(*batch));
	for (uint64_t i = 0; batch && i < img->nblocks && count < img->undurable; i++)
		if (img->state[i] == BLOCK_PRESENT)
			batch[count++] = i;
	epoch = img->epoch;
	pthread_mutex_unlock(&img->lock);
	if (!batch)
		return -ENOMEM;

	/* The data must be on disk before any map byte marks it present. */
	if (fdatasync(img->data_fd) < 0)
		rc = -errno;
	pthread_mutex_lock(&img->lock);
	if (rc == 0 && epoch == img->epoch) {
		for (uint64_t i = 0; i < count; i++)
			if (img->state[batch[i]] == BLOCK_PRESENT) {
				img->state[batch[i]] = BLOCK_DURABLE;
				img->undurable--;
			}
		rc = write_map(img);
	}
	pthread_mutex_unlock(&img->lock);
	free(batch);
	if (rc < 0)
		log_warnx("%s: cannot make cached blocks durable: %s", img->tag, strerror(-rc));
	return rc;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

void store_discard(struct cached_image *img, const char *why)
{
	log_warnx("%s: %s; discarding %" PRIu64 " cached blocks", img->tag, why, img->present);
	snprintf(img->note, sizeof(img->note), "%s; cached blocks were discarded", why);
	img->epoch++;
	/* Writers that passed the epoch check finish before the file is reset;
	 * they see the new epoch afterwards and mark nothing. */
	while (img->writers)
		pthread_cond_wait(&img->cond, &img->lock);
	__atomic_sub_fetch(&img->cache->usage, min_u64(img->present * CACHE_BLOCK_SIZE, img->cache->usage),
			   __ATOMIC_RELAXED);
	memset(img->state, BLOCK_MISSING, img->nblocks);
	img->present = img->undurable = 0;
	img->verified = img->final = 0;
	/* The zeroed map must be on disk before new bytes land in the data file. */
	if (write_map(img) < 0 || fdatasync(img->map_fd) < 0)
		log_warn("%s: cannot reset the block map", img->tag);
	if (ftruncate(img->data_fd, 0) < 0 || ftruncate(img->data_fd, (off_t)img->size) < 0)
		log_warn("%s: cannot reset the cache file", img->tag);
	memset(&img->val, 0, sizeof(img->val));
	store_save_meta(img);
	cache_changed(img->cache, img->id);
	pthread_cond_broadcast(&img->cond);
}
