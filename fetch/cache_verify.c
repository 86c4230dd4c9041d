/* The checksum check of a completely cached image, and the background thread
 * that makes fetched blocks durable about once a second. */
#include "fetch/cache_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch/files.h"
#include "fetch/log.h"

#define VERIFY_CHUNK (1u << 20)

/* Hashes the data file into hex; returns 0, -ECANCELED when the cache is
 * closing (cache_close waits for this thread), or -errno. */
static int hash_file(struct cache *c, int fd, const char *type, uint64_t size,
		     char *hex, size_t hexlen)
{
	const EVP_MD *md = strcmp(type, "sha512") == 0 ? EVP_sha512() : EVP_sha256();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char *buf = malloc(VERIFY_CHUNK);
	uint64_t off = 0;
	int rc = 0;

	if (!ctx || !buf || !EVP_DigestInit_ex(ctx, md, NULL))
		rc = -ENOMEM;
	while (rc == 0 && off < size) {
		ssize_t n = pread(fd, buf, VERIFY_CHUNK, (off_t)off);

		if (cache_stopping(c))
			rc = -ECANCELED;
		else if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
			rc = -EIO;
		off += n > 0 ? (uint64_t)n : 0;
	}
	if (rc == 0 && !EVP_DigestFinal_ex(ctx, digest, &dlen))
		rc = -EIO;
	for (unsigned int i = 0; rc == 0 && i < dlen && 2 * i + 2 < hexlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

static void finish_verify(struct cached_image *img, int rc, const char *hex)
{
	char from[PATH_MAX], to[PATH_MAX], why[400];

	if (rc < 0) {
		cache_set_error(img, "checksum check failed: %s", strerror(-rc));
		return;
	}
	if (img->checksum[0] && strcmp(hex, img->checksum) != 0) {
		img->verify_failures++;
		snprintf(why, sizeof(why), "%s mismatch: expected %.16s..., got %.16s...",
			 img->checksum_type, img->checksum, hex);
		cache_set_error(img, "%s", why);
		store_discard(img, why);
		return;
	}
	if (path_join(from, sizeof(from), img->dir, "data") == 0 &&
	    path_join(to, sizeof(to), img->dir, img->disk_name) == 0 && rename(from, to) < 0) {
		cache_set_error(img, "cannot rename verified image to %s: %s", to, strerror(errno));
		return;
	}
	img->final = 1;
	img->verified = img->checksum[0] != '\0';
	img->last_error[0] = '\0';
	/* The meta that vouches for the final file is saved before the map goes. */
	if (store_save_meta(img) == 0 && path_join(from, sizeof(from), img->dir, "map") == 0)
		unlink(from);
	if (img->verified)
		log_info("%s: complete and verified (%s)", img->tag, img->checksum_type);
	else
		log_warnx("%s: complete, but not verified: the catalog gives no checksum", img->tag);
}

static void *verify_main(void *arg)
{
	struct cached_image *img = arg;
	struct cache *c = img->cache;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	uint64_t epoch;
	int rc;

	store_flush(img);
	pthread_mutex_lock(&img->lock);
	epoch = img->epoch;
	pthread_mutex_unlock(&img->lock);
	rc = img->checksum[0] ? hash_file(c, img->data_fd, img->checksum_type, img->size, hex, sizeof(hex)) : 0;
	pthread_mutex_lock(&img->lock);
	if (epoch == img->epoch)
		finish_verify(img, rc, hex);
	img->verifying = 0;
	pthread_cond_broadcast(&img->cond);
	pthread_mutex_unlock(&img->lock);

	/* The last use of img: cache_close frees it once verifiers is 0. */
	pthread_mutex_lock(&c->lock);
	img->refs--;
	c->verifiers--;
	pthread_cond_broadcast(&c->flush_cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void store_maybe_verify(struct cached_image *img)
{
	pthread_attr_t attr;
	pthread_t tid;

	if (img->present != img->nblocks || img->final || img->verifying)
		return;
	pthread_mutex_lock(&img->cache->lock);
	img->refs++; /* both dropped by verify_main */
	img->cache->verifiers++;
	pthread_mutex_unlock(&img->cache->lock);
	img->verifying = 1;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, verify_main, img) != 0) {
		img->verifying = 0;
		cache_set_error(img, "cannot start the checksum check");
		pthread_mutex_lock(&img->cache->lock);
		img->refs--;
		img->cache->verifiers--;
		pthread_mutex_unlock(&img->cache->lock);
	}
	pthread_attr_destroy(&attr);
}

void *store_flusher_main(void *arg)
{
	struct cache *c = arg;
	struct timespec deadline;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 1;
		pthread_cond_timedwait(&c->flush_cond, &c->lock, &deadline);
		for (struct cached_image *img = c->images; img; img = img->next) {
			img->refs++;
			pthread_mutex_unlock(&c->lock);
			store_flush(img);
			pthread_mutex_lock(&c->lock);
			img->refs--;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}
