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
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"

#define PACKED_MAX 32
#define READ_CHUNK (1u << 20)

struct pull_state {
	char id[160];
	int running;
	uint64_t bytes;		/* downloaded or unpacked so far */
	char phase[32];		/* "downloading", "unpacking", "failed", "done" */
	char error[256];
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

/* Downloads every piece that is not complete yet, resuming partial ones. */
static int download_parts(const char *dir, const struct cat_version *v, const char *ca_file,
			  struct pull_state *p, char *err, size_t errlen)
{
	size_t nparts = v->nparts ? v->nparts : 1;
	char done[4200], partial[4200];
	uint64_t total = 0;
	struct stat st;

	for (size_t i = 0; i < nparts; i++) {
		int fd, rc;

		snprintf(done, sizeof(done), "%s/part.%zu", dir, i);
		snprintf(partial, sizeof(partial), "%s/part.%zu.partial", dir, i);
		if (stat(done, &st) == 0) {
			total += (uint64_t)st.st_size;
			continue;
		}
		fd = open(partial, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || fstat(fd, &st) < 0) {
			snprintf(err, errlen, "cannot write %s: %s", partial, strerror(errno));
			return -errno;
		}
		set_phase(p, "downloading", total + (uint64_t)st.st_size);
		rc = http_download(part_url(v, i), ca_file, fd, (uint64_t)st.st_size, err, errlen);
		if (rc == -ERANGE && ftruncate(fd, 0) == 0)
			rc = http_download(part_url(v, i), ca_file, fd, 0, err, errlen);
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

static int copy_entry(struct archive *a, int out, struct pull_state *p, EVP_MD_CTX *ctx)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	uint64_t written = 0;
	int rc;

	while ((rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if (pwrite(out, buf, size, off) != (ssize_t)size)
			return -errno;
		EVP_DigestUpdate(ctx, buf, size);
		written += size;
		set_phase(p, "unpacking", written);
	}
	return rc == ARCHIVE_EOF ? 0 : -EIO;
}

/* Unpacks the download into <dir>/unpacking; hex receives the disk's digest. */
static int unpack(const char *dir, const struct cat_version *v, struct pull_state *p, char *hex,
		  size_t hexlen, char *err, size_t errlen)
{
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
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		rc = out < 0 ? -errno : copy_entry(a, out, p, ctx);
		if (rc == 0 && fsync(out) < 0)
			rc = -errno;
		break;
	}
	if (rc == 0)
		rc = hex_digest(ctx, hex, hexlen);
done:
	if (rc < 0)
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

/* Checks, unpacks and renames the disk into place; the parts are then removed. */
static int finish(const char *dir, const struct cat_version *v, struct pull_state *p, char *err, size_t errlen)
{
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "", from[4200], to[4200];
	int download_ok = !v->checksum[0] || download_matches(dir, v);
	struct stat st;
	int rc = unpack(dir, v, p, hex, sizeof(hex), err, errlen);

	if (rc < 0)
		return rc;
	if (!download_ok && strcmp(hex, v->checksum) != 0) {
		snprintf(err, errlen, "%s mismatch: neither the download nor the unpacked disk has %.16s...",
			 v->checksum_type, v->checksum);
		remove_parts(dir, v);
		return -EIO;
	}
	snprintf(from, sizeof(from), "%s/unpacking", dir);
	snprintf(to, sizeof(to), "%s/%s", dir, cat_version_disk_name(v));
	if (stat(from, &st) < 0 || rename(from, to) < 0 || write_meta(dir, v, (uint64_t)st.st_size) < 0) {
		snprintf(err, errlen, "cannot store the unpacked disk in %s: %s", dir, strerror(errno));
		return -EIO;
	}
	remove_parts(dir, v);
	return 0;
}

static int pull_locked(const char *dir, const struct cat_version *v, const char *ca_file,
		       struct pull_state *p, char *err, size_t errlen)
{
	char lock[4200];
	int fd, rc;

	if ((rc = mkdir_p(dir, 0755)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	snprintf(lock, sizeof(lock), "%s/lock", dir);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	/* Another process may have finished the pull while this one waited. */
	snprintf(lock, sizeof(lock), "%s/%s", dir, cat_version_disk_name(v));
	if (access(lock, R_OK) == 0) {
		close(fd);
		return 0;
	}
	rc = download_parts(dir, v, ca_file, p, err, errlen);
	if (rc == 0)
		rc = finish(dir, v, p, err, errlen);
	close(fd);
	return rc;
}

int packed_ensure(const char *cache_dir, const struct cat_version *v, const char *ca_file,
		  char *path, size_t len, char *err, size_t errlen)
{
	char id[160], dir[4096], tag[160];
	struct pull_state *p;
	int rc;

	cache_image_id(v, id, sizeof(id));
	snprintf(dir, sizeof(dir), "%s/%s", cache_dir, id);
	snprintf(path, len, "%s/%s", dir, cat_version_disk_name(v));
	if (access(path, R_OK) == 0)
		return 0;
	cat_version_tag(v, tag, sizeof(tag));
	pthread_mutex_lock(&packed_lock);
	p = find_pull(id, 1);
	while (p && p->running)
		pthread_cond_wait(&packed_cond, &packed_lock);
	if (!p || access(path, R_OK) == 0) {
		pthread_mutex_unlock(&packed_lock);
		snprintf(err, errlen, "%s: too many pulls at once", tag);
		return p ? 0 : -EAGAIN;
	}
	p->running = 1;
	p->error[0] = '\0';
	pthread_mutex_unlock(&packed_lock);

	log_info("%s: packed entry: pulling it whole before use", tag);
	rc = pull_locked(dir, v, ca_file, p, err, errlen);
	if (rc < 0)
		log_warnx("%s: pull of the packed entry failed: %s", tag, err);
	else
		log_info("%s: pulled, verified and unpacked into %s", tag, path);
	pthread_mutex_lock(&packed_lock);
	p->running = 0;
	snprintf(p->phase, sizeof(p->phase), "%s", rc < 0 ? "failed" : "done");
	snprintf(p->error, sizeof(p->error), "%s", rc < 0 ? err : "");
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
