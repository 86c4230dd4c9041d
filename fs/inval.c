/* Invalidation of what the kernel caches (names, attributes, pages) for paths
 * whose bytes or meaning changed: after a catalog reload, when the block
 * cache discards or evicts an image, and when a VM's ready file is removed. Image invalidations run on a thread of
 * their own, because the kernel waits for pages under read, whose requests
 * may need the very locks held where the change is noticed. */
#include "fs/inval.h"

#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fetch/log.h"
#include "fs/fs.h"

#define PENDING_MAX 16

static pthread_t thread;
static int running, stopping, overflow;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static char pending[PENDING_MAX][160];
static size_t npending;

/* Invalidates TOP followed by up to three components (NULL ends them). */
static void invalidate(const char *top, const char *a, const char *b, const char *c)
{
	const char *parts[] = { a, b, c };
	char path[PATH_MAX];
	size_t len = (size_t)snprintf(path, sizeof(path), "%s", top);

	for (size_t i = 0; i < 3 && parts[i]; i++) {
		int n = snprintf(path + len, sizeof(path) - len, "/%s", parts[i]);

		if (n < 0 || (size_t)n >= sizeof(path) - len)
			return;
		len += (size_t)n;
	}
	fuse_invalidate_path(fs.fuse, path); /* ENOENT: nothing cached for it */
}

void inval_catalog(const struct catalog *old)
{
	if (!fs.fuse)
		return;
	invalidate("/catalog", NULL, NULL, NULL);
	for (size_t i = 0; i < old->nimages; i++) {
		const struct cat_image *img = &old->images[i];

		invalidate("/catalog", img->name, NULL, NULL);
		for (size_t j = 0; j < img->naliases; j++)
			invalidate("/catalog", img->name, img->aliases[j].name, NULL);
		for (size_t j = 0; j < img->nversions; j++) {
			const struct cat_version *v = &img->versions[j];

			invalidate("/catalog", img->name, v->version, NULL);
			invalidate("/catalog", img->name, v->version, cat_version_disk_name(v));
			invalidate("/catalog", img->name, v->version, "info");
		}
	}
}

void inval_vm_file(const char *vm, const char *file)
{
	if (fs.fuse)
		invalidate("/vms", vm, file, NULL);
}

/* Invalidates the catalog and images/ paths of the image id, or of every
 * image when id is NULL. Takes fs.lock for reading. */
static void invalidate_image(const char *id)
{
	char vid[160], tag[512], entry[256];

	pthread_rwlock_rdlock(&fs.lock);
	for (size_t i = 0; fs.cat && i < fs.cat->nimages; i++) {
		const struct cat_image *img = &fs.cat->images[i];

		for (size_t j = 0; j < img->nversions; j++) {
			const struct cat_version *v = &img->versions[j];

			cache_image_id(v, vid, sizeof(vid));
			if (id && strcmp(vid, id) != 0)
				continue;
			snprintf(tag, sizeof(tag), "%s:%s", img->name, v->version);
			cache_entry_name(tag, vid, cat_version_disk_name(v), entry, sizeof(entry));
			invalidate("/catalog", img->name, v->version, cat_version_disk_name(v));
			invalidate("/images", entry, NULL, NULL);
		}
	}
	pthread_rwlock_unlock(&fs.lock);
}

static void *inval_main(void *arg)
{
	char id[160];
	int all;

	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		if (!npending && !overflow) {
			pthread_cond_wait(&cond, &lock);
			continue;
		}
		all = overflow;
		overflow = 0;
		if (!all)
			snprintf(id, sizeof(id), "%s", pending[--npending]);
		else
			npending = 0;
		pthread_mutex_unlock(&lock);
		invalidate_image(all ? NULL : id);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void inval_image_changed(const char *id, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < npending; i++)
		if (strcmp(pending[i], id) == 0)
			goto out;
	if (npending < PENDING_MAX && strlen(id) < sizeof(pending[0]))
		snprintf(pending[npending++], sizeof(pending[0]), "%s", id);
	else
		overflow = 1;
	pthread_cond_signal(&cond);
out:
	pthread_mutex_unlock(&lock);
}

int inval_start(void)
{
	int rc = pthread_create(&thread, NULL, inval_main, NULL);

	if (rc != 0) {
		log_error("cannot start the invalidation thread: %s", strerror(rc));
		return -rc;
	}
	running = 1;
	return 0;
}

void inval_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = 0;
}
