/* Pulling and unpacking packed catalog entries; see packed.h. */
#include "fetch/packed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "fetch/cache.h"
#include "fetch/clock.h"
#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"

#define PACKED_MAX 32
#define READ_CHUNK (1u << 20)
#define CANCEL_POLL_MS 200		/* how often a waiting caller checks its cancel check */

struct pull_state {
	char id[160];
	int running;
	uint64_t bytes;		/* downloaded or unpacked so far */
	char phase[32];		/* "downloading", "unpacking", "failed", "done" */
	char error[512];
};

/* One pull by one thread: where it writes, the room it has made in the
 * cache for that, and the check that abandons it. */
struct pull {
	struct cache *cache;
	const struct cat_version *v;
	char id[160], dir[4096], tag[160];
	struct pull_state *state;
	int (*cancelled)(void);
	uint64_t room;			/* made in the cache but not written yet */
	char room_err[512];		/* why room could not be made */
};

static pthread_mutex_t packed_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t packed_cond = PTHREAD_COND_INITIALIZER;
static struct pull_state pulls[PACKED_MAX];	/* guarded by packed_lock */

static struct pull_state *find_pull(const char *id, int create)
{
	struct pull_state *free_slot = NULL;

	for (int i = 0; i < PACKED_MAX; i++) {
		if (strcmp(pulls[i].id, id) == 0)
			return &pulls[i];
		if (!pulls[i].id[0] && !free_slot)
			free_slot = &pulls[i];
	}
	if (create && free_slot)
		snprintf(free_slot->id, sizeof(free_slot->id), "%s", id);
	return create ? free_slot : NULL;
}

static void set_phase(struct pull_state *p, const char *phase, uint64_t bytes)
{
	pthread_mutex_lock(&packed_lock);
	snprintf(p->phase, sizeof(p->phase), "%s", phase);
	p->bytes = bytes;
	pthread_mutex_unlock(&packed_lock);
}

static const char *part_url(const struct cat_version *v, size_t i)
{
	return v->nparts ? v->part_urls[i] : v->url;
}

static int take_room(struct pull *pl, uint64_t len)
{
	return cache_reserve(pl->cache, pl->id, &pl->room, len, pl->room_err, sizeof(pl->room_err));
}

static int take_room_hook(void *arg, size_t len)
{
	return take_room(arg, len);
}

static int cancelled_hook(void *arg)
{
	struct pull *pl = arg;

	return pl->cancelled && pl->cancelled();
}

/* Sums the bytes already downloaded, complete pieces and partial ones. */
static uint64_t downloaded_bytes(const struct pull *pl)
{
	size_t nparts = pl->v->nparts ? pl->v->nparts : 1;
	char path[4200];
	uint64_t total = 0;
	struct stat st;

	for (size_t i = 0; i < nparts; i++) {
		snprintf(path, sizeof(path), "%s/part.%zu", pl->dir, i);
		if (stat(path, &st) == 0) {
			total += (uint64_t)st.st_size;
			continue;
		}
		snprintf(path, sizeof(path), "%s/part.%zu.partial", pl->dir, i);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	return total;
}

/* Makes room for the rest of the download before any of it is fetched, when
 * the catalog gives its size; pieces are counted as they arrive in any case.
 * The disk is unpacked beside the download and is at least about as large
 * as its compressed form. So a pull for which the two cannot fit fails here,
 * before anything is evicted or fetched.
 * NOTE: the real size of the disk is known only when unpacking starts, so
 * images evicted for the download stay evicted when a larger disk then
 * does not fit. */
static int room_for_download(struct pull *pl)
{
	uint64_t have = downloaded_bytes(pl), rest;
	char why[sizeof(pl->room_err)];

	if (pl->v->size <= have)
		return 0;
	rest = pl->v->size - have;
	if (cache_check_room(pl->cache, pl->id, rest + pl->v->size, why, sizeof(why)) < 0) {
		snprintf(pl->room_err, sizeof(pl->room_err), "no room for the download and its unpacked disk: %s",
			 why);
		return -ENOSPC;
	}
	return cache_make_room(pl->cache, pl->id, rest, pl->room_err, sizeof(pl->room_err));
}

/* Downloads every piece that is not complete yet, resuming partial ones. */
static int download_parts(struct pull *pl, char *err, size_t errlen)
{
	const struct http_download_hooks hooks = { take_room_hook, cancelled_hook, pl };
	const struct cat_version *v = pl->v;
	size_t nparts = v->nparts ? v->nparts : 1;
	const char *ca_file = cache_ca_file(pl->cache);
	char done[4200], partial[4200];
	uint64_t total = 0;
	struct stat st;

	for (size_t i = 0; i < nparts; i++) {
		int fd, rc;

		snprintf(done, sizeof(done), "%s/part.%zu", pl->dir, i);
		snprintf(partial, sizeof(partial), "%s/part.%zu.partial", pl->dir, i);
		if (stat(done, &st) == 0) {
			total += (uint64_t)st.st_size;
			continue;
		}
		fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || fstat(fd, &st) < 0) {
			snprintf(err, errlen, "cannot write %s: %s", partial, strerror(errno));
			return -errno;
		}
		set_phase(pl->state, "downloading", total + (uint64_t)st.st_size);
		rc = http_download(part_url(v, i), ca_file, fd, (uint64_t)st.st_size, &hooks, err, errlen);
		if (rc == -ERANGE && ftruncate(fd, 0) == 0)
			rc = http_download(part_url(v, i), ca_file, fd, 0, &hooks, err, errlen);
		if (rc == 0 && (fsync(fd) < 0 || fstat(fd, &st) < 0))
			rc = -errno;
		close(fd);
		if (rc < 0)
			return rc;
		if (rename(partial, done) < 0)
			return -errno;
		total += (uint64_t)st.st_size;
	}
	return 0;
}

/* Reads the pieces in order as one stream, for hashing and for libarchive. */
struct part_reader {
	const char *dir;
	size_t nparts, index;
	int fd;
	char *buf;
};

static ssize_t part_read(struct archive *a, void *arg, const void **out)
{
	struct part_reader *r = arg;
	char path[4200];
	ssize_t n;

	(void)a;
	for (;;) {
		if (r->fd < 0) {
			if (r->index >= r->nparts)
				return 0;
			snprintf(path, sizeof(path), "%s/part.%zu", r->dir, r->index++);
			if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				return -1;
		}
		n = read(r->fd, r->buf, READ_CHUNK);
		if (n != 0) {
			*out = r->buf;
			return n;
		}
		close(r->fd);
		r->fd = -1;
	}
}

static int reader_init(struct part_reader *r, const char *dir, const struct cat_version *v)
{
	r->dir = dir;
	r->nparts = v->nparts ? v->nparts : 1;
	r->index = 0;
	r->fd = -1;
	r->buf = malloc(READ_CHUNK);
	return r->buf ? 0 : -ENOMEM;
}

static void reader_free(struct part_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->buf = NULL;
}

static int hex_digest(EVP_MD_CTX *ctx, char *hex, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!EVP_DigestFinal_ex(ctx, digest, &dlen))
		return -EIO;
	for (unsigned int i = 0; i < dlen && 2 * i + 2 < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

static const EVP_MD *digest_of(const struct cat_version *v)
{
	return strcmp(v->checksum_type, "sha512") == 0 ? EVP_sha512() : EVP_sha256();
}

/* Returns 1 when the downloaded stream matches the catalog checksum. */
static int download_matches(const char *dir, const struct cat_version *v)
{
	struct part_reader r = { .fd = -1 };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	const void *data;
	ssize_t n;
	int ok = 0;

	if (ctx && reader_init(&r, dir, v) == 0 && EVP_DigestInit_ex(ctx, digest_of(v), NULL)) {
		while ((n = part_read(NULL, &r, &data)) > 0)
			EVP_DigestUpdate(ctx, data, (size_t)n);
		ok = n == 0 && hex_digest(ctx, hex, sizeof(hex)) == 0 && strcmp(hex, v->checksum) == 0;
		reader_free(&r);
	}
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Picks the disk inside an archive: the first file named like a disk image,
 * else the first regular file. The raw format gives one entry, the stream. */
static int is_disk_name(const char *name)
{
	static const char *const ext[] = { ".raw", ".img", ".qcow2", ".qcow" };
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
		if (len >= strlen(ext[i]) && strcmp(name + len - strlen(ext[i]), ext[i]) == 0)
			return 1;
	return strcmp(name, "data") == 0;
}

/* Copies the disk out of the archive; the download and the disk both take
 * room in the cache until the download is removed. */
static int copy_entry(struct pull *pl, struct archive *a, int out, EVP_MD_CTX *ctx)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	uint64_t written = 0;
	int rc;

	while ((rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if ((rc = take_room(pl, size)) < 0)
			return rc;
		if (pwrite(out, buf, size, off) != (ssize_t)size)
			return -errno;
		EVP_DigestUpdate(ctx, buf, size);
		written += size;
		set_phase(pl->state, "unpacking", written);
	}
	return rc == ARCHIVE_EOF ? 0 : -EIO;
}

/* Makes room for the disk at once when the archive states its size (tar
 * does, a bare compressed stream does not). */
static int room_for_disk(struct pull *pl, struct archive_entry *entry)
{
	if (!archive_entry_size_is_set(entry) || archive_entry_size(entry) <= 0)
		return 0;
	return cache_make_room(pl->cache, pl->id, (uint64_t)archive_entry_size(entry), pl->room_err,
			       sizeof(pl->room_err));
}

/* Unpacks the download into <dir>/unpacking; hex receives the disk's digest. */
static int unpack(struct pull *pl, char *hex, size_t hexlen, char *err, size_t errlen)
{
	const char *dir = pl->dir;
	const struct cat_version *v = pl->v;
	struct archive *a = archive_read_new();
	struct archive_entry *entry;
	struct part_reader r = { .fd = -1 };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char path[4200];
	int out = -1, rc = -EIO;

	snprintf(path, sizeof(path), "%s/unpacking", dir);
	if (!a || !ctx || reader_init(&r, dir, v) < 0 || !EVP_DigestInit_ex(ctx, digest_of(v), NULL))
		goto done;
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_zip(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, &r, NULL, part_read, NULL) != ARCHIVE_OK)
		goto done;
	while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(entry);

		if (archive_entry_filetype(entry) != AE_IFREG || !is_disk_name(name ? name : ""))
			continue;
		if ((rc = room_for_disk(pl, entry)) < 0)
			break;
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		rc = out < 0 ? -errno : copy_entry(pl, a, out, ctx);
		if (rc == 0 && fsync(out) < 0)
			rc = -errno;
		break;
	}
	if (rc == 0)
		rc = hex_digest(ctx, hex, hexlen);
done:
	if (rc == -ENOSPC && pl->room_err[0])
		snprintf(err, errlen, "%s", pl->room_err);
	else if (rc < 0)
		snprintf(err, errlen, "cannot unpack: %s", a && archive_error_string(a) ? archive_error_string(a) :
			 out < 0 ? "no disk image found in the download" : strerror(-rc));
	if (out >= 0)
		close(out);
	if (a)
		archive_read_free(a);
	reader_free(&r);
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Writes the meta file that lists the entry in the images/ view. */
static int write_meta(const char *dir, const struct cat_version *v, uint64_t size)
{
	char path[4200], tag[160], *text;
	cJSON *m = cJSON_CreateObject();
	int rc;

	cat_version_tag(v, tag, sizeof(tag));
	cJSON_AddNumberToObject(m, "format", 1);
	cJSON_AddStringToObject(m, "tag", tag);
	cJSON_AddStringToObject(m, "url", v->nparts ? v->part_urls[0] : v->url);
	cJSON_AddStringToObject(m, "disk", cat_version_disk_name(v));
	cJSON_AddNumberToObject(m, "size", (double)size);
	cJSON_AddStringToObject(m, "checksum_type", v->checksum_type);
	cJSON_AddStringToObject(m, "checksum", v->checksum);
	cJSON_AddBoolToObject(m, "verified", v->checksum[0] != '\0');
	cJSON_AddBoolToObject(m, "final", 1);
	cJSON_AddBoolToObject(m, "packed", 1);
	text = cJSON_Print(m);
	cJSON_Delete(m);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/meta", dir);
	rc = write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}

static void remove_parts(const char *dir, const struct cat_version *v)
{
	char path[4200];

	for (size_t i = 0; i < (v->nparts ? v->nparts : 1); i++) {
		snprintf(path, sizeof(path), "%s/part.%zu", dir, i);
		unlink(path);
	}
}

/* Removes every file a pull writes except the lock: the pieces, complete and
 * partial, and the disk being unpacked. */
static void remove_pull_files(const struct pull *pl)
{
	char path[4200];

	remove_parts(pl->dir, pl->v);
	for (size_t i = 0; i < (pl->v->nparts ? pl->v->nparts : 1); i++) {
		snprintf(path, sizeof(path), "%s/part.%zu.partial", pl->dir, i);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/unpacking", pl->dir);
	unlink(path);
}

/* Checks, unpacks and renames the disk into place; the parts are then removed. */
static int finish(struct pull *pl, char *err, size_t errlen)
{
	const struct cat_version *v = pl->v;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "", from[4200], to[4200];
	int download_ok = !v->checksum[0] || download_matches(pl->dir, v);
	struct stat st;
	int rc = unpack(pl, hex, sizeof(hex), err, errlen);

	snprintf(from, sizeof(from), "%s/unpacking", pl->dir);
	if (rc < 0) {
		unlink(from);
		return rc;
	}
	if (!download_ok && strcmp(hex, v->checksum) != 0) {
		snprintf(err, errlen, "%s mismatch: neither the download nor the unpacked disk has %.16s...",
			 v->checksum_type, v->checksum);
		remove_pull_files(pl);
		return -EIO;
	}
	snprintf(to, sizeof(to), "%s/%s", pl->dir, cat_version_disk_name(v));
	if (stat(from, &st) < 0 || rename(from, to) < 0 || write_meta(pl->dir, v, (uint64_t)st.st_size) < 0) {
		snprintf(err, errlen, "cannot store the unpacked disk in %s: %s", pl->dir, strerror(errno));
		return -EIO;
	}
	remove_parts(pl->dir, v);
	return 0;
}

/* Downloads and unpacks the entry. A pull that the cache limits stop leaves
 * nothing of itself: an entry without its disk cannot be evicted, so its
 * pieces would hold their room until the next pull of the same entry. */
static int download_and_finish(struct pull *pl, char *err, size_t errlen)
{
	int rc = room_for_download(pl);

	if (rc == 0)
		rc = download_parts(pl, err, errlen);
	if (rc == 0)
		rc = finish(pl, err, errlen);
	if (rc == -ENOSPC && pl->room_err[0]) {
		snprintf(err, errlen, "%s", pl->room_err);
		remove_pull_files(pl);
	}
	cache_recount(pl->cache);
	return rc;
}

static int pull_locked(struct pull *pl, char *err, size_t errlen)
{
	char lock[4200];
	int fd, rc;

	if ((rc = mkdir_p(pl->dir, 0755)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", pl->dir, strerror(-rc));
		return rc;
	}
	snprintf(lock, sizeof(lock), "%s/lock", pl->dir);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	/* Another process may have finished the pull while this one waited. */
	snprintf(lock, sizeof(lock), "%s/%s", pl->dir, cat_version_disk_name(pl->v));
	rc = access(lock, R_OK) == 0 ? 0 : download_and_finish(pl, err, errlen);
	close(fd);
	return rc;
}

/* Waits for another thread's pull of the same entry; packed_lock held.
 * -EINTR when the caller's request is cancelled meanwhile. */
static int wait_other_pull(struct pull *pl)
{
	struct timespec until;

	while (pl->state->running) {
		if (pl->cancelled && pl->cancelled())
			return -EINTR;
		until = realtime_after_ms(CANCEL_POLL_MS);
		pthread_cond_timedwait(&packed_cond, &packed_lock, &until);
	}
	return 0;
}

static void pull_init(struct pull *pl, struct cache *c, const struct cat_version *v, int (*cancelled)(void))
{
	memset(pl, 0, sizeof(*pl));
	pl->cache = c;
	pl->v = v;
	pl->cancelled = cancelled;
	cache_image_id(v, pl->id, sizeof(pl->id));
	snprintf(pl->dir, sizeof(pl->dir), "%s/%s", cache_dir(c), pl->id);
	cat_version_tag(v, pl->tag, sizeof(pl->tag));
}

int packed_ensure(struct cache *c, const struct cat_version *v, int (*cancelled)(void),
		  char *path, size_t len, char *err, size_t errlen)
{
	struct pull pl;
	int rc;

	pull_init(&pl, c, v, cancelled);
	snprintf(path, len, "%s/%s", pl.dir, cat_version_disk_name(v));
	if (access(path, R_OK) == 0)
		return 0;
	pthread_mutex_lock(&packed_lock);
	pl.state = find_pull(pl.id, 1);
	if (!pl.state) {
		pthread_mutex_unlock(&packed_lock);
		snprintf(err, errlen, "too many pulls at once");
		return -EAGAIN;
	}
	if ((rc = wait_other_pull(&pl)) < 0 || access(path, R_OK) == 0) {
		pthread_mutex_unlock(&packed_lock);
		if (rc < 0)
			snprintf(err, errlen, "cancelled while another request pulls the entry");
		return rc;
	}
	pl.state->running = 1;
	pl.state->error[0] = '\0';
	pthread_mutex_unlock(&packed_lock);

	log_info("%s: packed entry: pulling it whole before use", pl.tag);
	rc = pull_locked(&pl, err, errlen);
	if (rc == 0)
		log_info("%s: pulled, verified and unpacked into %s", pl.tag, path);
	pthread_mutex_lock(&packed_lock);
	pl.state->running = 0;
	snprintf(pl.state->phase, sizeof(pl.state->phase), "%s", rc < 0 ? "failed" : "done");
	snprintf(pl.state->error, sizeof(pl.state->error), "%s", rc < 0 ? err : "");
	pthread_cond_broadcast(&packed_cond);
	pthread_mutex_unlock(&packed_lock);
	return rc;
}

int packed_describe(const struct cat_version *v, char *buf, size_t len)
{
	struct pull_state *p;
	char id[160];
	int rc = -ENOENT;

	cache_image_id(v, id, sizeof(id));
	pthread_mutex_lock(&packed_lock);
	p = find_pull(id, 0);
	if (p && p->phase[0]) {
		if (p->error[0])
			snprintf(buf, len, "%s: %s", p->phase, p->error);
		else
			snprintf(buf, len, "%s, %" PRIu64 " bytes so far", p->phase, p->bytes);
		rc = 0;
	}
	pthread_mutex_unlock(&packed_lock);
	return rc;
}
