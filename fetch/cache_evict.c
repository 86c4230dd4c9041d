/* The block cache's size limits: a maximum size and a floor of free space on
 * its file system, kept by evicting whole images, least recently written
 * first, never one that a reader holds open or a VM uses. */
#include "fetch/cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"

static uint64_t dir_usage(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *d;
	struct stat st;
	uint64_t total = 0;
	DIR *dh = opendir(dir);

	if (!dh)
		return 0;
	while ((d = readdir(dh))) {
		if (d->d_name[0] == '.' || path_join(path, sizeof(path), dir, d->d_name) < 0)
			continue;
		if (lstat(path, &st) < 0)
			continue;
		total += S_ISDIR(st.st_mode) ? dir_usage(path) : (uint64_t)st.st_blocks * 512;
	}
	closedir(dh);
	return total;
}

void cache_set_limits(struct cache *c, uint64_t max_bytes, uint64_t min_free,
		      int (*in_use)(const char *id, void *arg), void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->max_bytes = max_bytes;
	c->min_free = min_free;
	c->in_use = in_use;
	c->in_use_arg = arg;
	pthread_mutex_unlock(&c->lock);
	__atomic_store_n(&c->usage, dir_usage(c->dir), __ATOMIC_RELAXED);
}

/* Removes an open entry from the list when no reader or job holds a reference; c->lock held. */
void cache_set_change_hook(struct cache *c, void (*changed)(const char *id, void *arg), void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->changed = changed;
	c->changed_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

void cache_changed(struct cache *c, const char *id)
{
	pthread_mutex_lock(&c->lock);
	if (c->changed)
		c->changed(id, c->changed_arg);
	pthread_mutex_unlock(&c->lock);
}

static int close_entry(struct cache *c, const char *id)
{
	struct cached_image **pp = &c->images;

	for (; *pp; pp = &(*pp)->next) {
		struct cached_image *img = *pp;

		if (strcmp(img->id, id) != 0)
			continue;
		if (img->refs > 0)
			return -EBUSY;
		*pp = img->next;
		cache_image_free(img);
		return 0;
	}
	return 0;
}

int cache_evict(struct cache *c, const char *id, char *err, size_t errlen)
{
	char dir[PATH_MAX], lock[PATH_MAX];
	uint64_t freed;
	int fd, rc;

	if (path_join(dir, sizeof(dir), c->dir, id) < 0 || path_join(lock, sizeof(lock), dir, "lock") < 0)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&c->lock);
	rc = c->in_use && c->in_use(id, c->in_use_arg) ? -EBUSY : close_entry(c, id);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		snprintf(err, errlen, "cache entry %s is in use by a VM or an open file", id);
		return rc;
	}
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		snprintf(err, errlen, "cache entry %s is in use by another process", id);
		return -EBUSY;
	}
	freed = dir_usage(dir);
	rc = remove_tree(dir);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		snprintf(err, errlen, "cannot remove %s: %s", dir, strerror(-rc));
		return rc;
	}
	__atomic_sub_fetch(&c->usage, freed < c->usage ? freed : c->usage, __ATOMIC_RELAXED);
	log_info("cache: evicted %s (%" PRIu64 " bytes)", id, freed);
	cache_changed(c, id);
	return 0;
}

static uint64_t free_bytes(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
}

static int over_limits(struct cache *c, uint64_t need)
{
	uint64_t usage = __atomic_load_n(&c->usage, __ATOMIC_RELAXED);

	if (c->max_bytes && usage + need > c->max_bytes)
		return 1;
	return c->min_free && free_bytes(c->dir) < c->min_free + need;
}

/* Finds the least recently written entry other than keep; 0 or -ENOENT. */
static int oldest_entry(struct cache *c, const char *keep, const char *skip, char *id, size_t len)
{
	char path[PATH_MAX];
	struct dirent *d;
	struct stat st;
	time_t best = 0;
	DIR *dh = opendir(c->dir);

	if (!dh)
		return -ENOENT;
	id[0] = '\0';
	while ((d = readdir(dh))) {
		if (d->d_name[0] == '.' || strcmp(d->d_name, keep) == 0 || strstr(skip, d->d_name))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s/meta", c->dir, d->d_name) >= (int)sizeof(path) ||
		    stat(path, &st) < 0)
			continue;
		if (!id[0] || st.st_mtime < best) {
			best = st.st_mtime;
			snprintf(id, len, "%s", d->d_name);
		}
	}
	closedir(dh);
	return id[0] ? 0 : -ENOENT;
}

int cache_make_room(struct cache *c, const struct cached_image *img, uint64_t need, char *err, size_t errlen)
{
	char id[160], busy[4096] = "", why[256];

	while (over_limits(c, need)) {
		if (oldest_entry(c, img->id, busy, id, sizeof(id)) < 0) {
			snprintf(err, errlen, "cache limit reached (cache_max %" PRIu64 ", cache_min_free %" PRIu64
				 "); nothing left that can be evicted", c->max_bytes, c->min_free);
			return -ENOSPC;
		}
		if (cache_evict(c, id, why, sizeof(why)) < 0 &&
		    strlen(busy) + strlen(id) + 2 < sizeof(busy)) {
			strcat(busy, id);
			strcat(busy, " ");
		}
	}
	return 0;
}
