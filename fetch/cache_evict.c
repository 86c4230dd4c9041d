/* The block cache's size limits: a maximum size and a floor of free space on
 * its file system, kept by evicting whole images, least recently written
 * first, never one that a VM uses or that a reader or another process has
 * open. Every writer into the cache (lazy fetches, `nido image pull`, packed
 * pulls) makes room here before it writes. */
#include "fetch/cache_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/files.h"
#include "fetch/log.h"

/* At most this many entries that cannot be evicted are named in a refusal. */
#define REFUSAL_NAMES 4

/* One cache entry that eviction could remove. */
struct candidate {
	char id[160];
	char tag[160];		/* from its meta, else the id */
	time_t written;		/* modification time of its meta */
	uint64_t bytes;		/* space its files take */
	const char *busy;	/* why it cannot be evicted, or NULL */
};

struct candidates {
	struct candidate *entries;
	size_t count, cap;
};

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

/* Sums the space the cache's files take; c->room_lock held. */
static void count_usage(struct cache *c)
{
	__atomic_store_n(&c->usage, dir_usage(c->dir), __ATOMIC_RELAXED);
	c->counted_at = time(NULL);
}

void cache_recount(struct cache *c)
{
	pthread_mutex_lock(&c->room_lock);
	count_usage(c);
	pthread_mutex_unlock(&c->room_lock);
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
	cache_recount(c);
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

static int vm_uses(struct cache *c, const char *id)
{
	int (*in_use)(const char *, void *);
	void *arg;

	pthread_mutex_lock(&c->lock);
	in_use = c->in_use;
	arg = c->in_use_arg;
	pthread_mutex_unlock(&c->lock);
	return in_use && in_use(id, arg);
}

int cache_evict(struct cache *c, const char *id, char *err, size_t errlen)
{
	char dir[PATH_MAX], lock[PATH_MAX];
	uint64_t freed;
	int fd, rc;

	if (path_join(dir, sizeof(dir), c->dir, id) < 0 || path_join(lock, sizeof(lock), dir, "lock") < 0)
		return -ENAMETOOLONG;
	rc = vm_uses(c, id) ? -EBUSY : 0;
	if (rc == 0) {
		pthread_mutex_lock(&c->lock);
		rc = close_entry(c, id);
		pthread_mutex_unlock(&c->lock);
	}
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

/* Returns why entry id cannot be evicted now, or NULL when it can. An entry
 * this process has open without a reader counts as free: eviction closes it. */
static const char *entry_busy(struct cache *c, const char *id)
{
	char dir[PATH_MAX], lock[PATH_MAX];
	int open_here = 0, busy = 0, fd;

	if (vm_uses(c, id))
		return "used by a VM";
	pthread_mutex_lock(&c->lock);
	for (struct cached_image *img = c->images; img && !open_here; img = img->next)
		if (strcmp(img->id, id) == 0) {
			open_here = 1;
			busy = img->refs > 0;
		}
	pthread_mutex_unlock(&c->lock);
	if (open_here)
		return busy ? "open" : NULL;
	/* The lock is taken by the daemon for every entry it has open, by a
	 * pull while it runs, and shared by every reader of a packed disk. */
	if (path_join(dir, sizeof(dir), c->dir, id) < 0 || path_join(lock, sizeof(lock), dir, "lock") < 0)
		return "open";
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	busy = flock(fd, LOCK_EX | LOCK_NB) < 0;
	close(fd);
	return busy ? "open" : NULL;
}

static void read_tag(const char *meta, const char *id, char *tag, size_t len)
{
	char *text;
	size_t n;
	cJSON *m = NULL, *item;

	if (read_file(meta, 65536, &text, &n) == 0) {
		m = cJSON_ParseWithLength(text, n);
		free(text);
	}
	item = cJSON_GetObjectItem(m, "tag");
	snprintf(tag, len, "%s", cJSON_IsString(item) ? item->valuestring : id);
	cJSON_Delete(m);
}

static int add_candidate(struct candidates *list, struct cache *c, const char *id, time_t written,
			 const char *meta)
{
	struct candidate *e;

	if (list->count == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		struct candidate *grown = realloc(list->entries, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		list->entries = grown;
		list->cap = cap;
	}
	e = &list->entries[list->count++];
	snprintf(e->id, sizeof(e->id), "%s", id);
	read_tag(meta, id, e->tag, sizeof(e->tag));
	e->written = written;
	e->bytes = 0;
	e->busy = entry_busy(c, id);
	return 0;
}

static int by_written(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	return x->written < y->written ? -1 : x->written > y->written;
}

/* Lists the entries other than keep, least recently written first. Only
 * entries with a meta file count: one without is a packed pull in progress
 * or left by an interrupted one. */
static int list_candidates(struct cache *c, const char *keep, struct candidates *list)
{
	char meta[PATH_MAX], dir[PATH_MAX];
	struct dirent *d;
	struct stat st;
	DIR *dh = opendir(c->dir);
	int rc = 0;

	if (!dh)
		return -errno;
	while (rc == 0 && (d = readdir(dh))) {
		if (d->d_name[0] == '.' || strcmp(d->d_name, keep) == 0)
			continue;
		if (path_join(dir, sizeof(dir), c->dir, d->d_name) < 0 ||
		    path_join(meta, sizeof(meta), dir, "meta") < 0 || stat(meta, &st) < 0)
			continue;
		rc = add_candidate(list, c, d->d_name, st.st_mtime, meta);
		if (rc == 0)
			list->entries[list->count - 1].bytes = dir_usage(dir);
	}
	closedir(dh);
	if (list->count > 1)
		qsort(list->entries, list->count, sizeof(*list->entries), by_written);
	return rc;
}

static uint64_t free_bytes(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
}

/* The limits in force and the state they are measured against. */
struct room {
	uint64_t max_bytes, min_free;	/* 0: no limit */
	uint64_t need;			/* bytes about to be written */
	uint64_t usage, free;		/* bytes in the cache, bytes free on its file system */
};

/* The action of room_for when room is missing. */
enum room_action { ROOM_CHECK, ROOM_EVICT, ROOM_CLAIM };

static void measure(struct cache *c, struct room *r)
{
	r->usage = __atomic_load_n(&c->usage, __ATOMIC_RELAXED) + __atomic_load_n(&c->claimed, __ATOMIC_RELAXED);
	r->free = r->min_free ? free_bytes(c->dir) : UINT64_MAX;
}

/* Returns how many bytes must be freed before need more fit; 0 when they fit. */
static uint64_t shortfall(const struct room *r)
{
	uint64_t over_max = 0, under_free = 0;

	if (r->max_bytes && r->usage + r->need > r->max_bytes)
		over_max = r->usage + r->need - r->max_bytes;
	if (r->min_free && r->free < r->min_free + r->need)
		under_free = r->min_free + r->need - r->free;
	return over_max > under_free ? over_max : under_free;
}

/* Writes n bytes as "512 KiB", "8.0 MiB" or "1.5 GiB". */
static void format_bytes(uint64_t n, char *buf, size_t len)
{
	if (n < 1024 * 1024)
		snprintf(buf, len, "%" PRIu64 " KiB", (n + 1023) / 1024);
	else if (n < 1024ull * 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024));
	else
		snprintf(buf, len, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
}

/* Appends "; cannot evict a:1 (used by a VM), b:2 (open)" or the like. */
static void describe_candidates(const struct candidates *list, uint64_t freeable, char *buf, size_t len)
{
	size_t used = strlen(buf), named = 0, busy = 0;
	char size[32];

	for (size_t i = 0; i < list->count; i++) {
		const struct candidate *e = &list->entries[i];

		if (!e->busy)
			continue;
		if (named < REFUSAL_NAMES) {
			snprintf(buf + used, len - used, "%s%s (%s)", named ? ", " : "; cannot evict ", e->tag, e->busy);
			used = strlen(buf);
			named++;
		}
		busy++;
	}
	if (busy > named)
		snprintf(buf + used, len - used, " and %zu more", busy - named);
	used = strlen(buf);
	if (list->count == 0) {
		snprintf(buf + used, len - used, "; no other image is cached");
	} else if (freeable > 0) {
		format_bytes(freeable, size, sizeof(size));
		snprintf(buf + used, len - used, "; evicting every other image frees only %s", size);
	}
}

static void describe_refusal(const struct room *r, const struct candidates *list, uint64_t freeable,
			     char *err, size_t errlen)
{
	char need[32], usage[32], max[32], free_now[32], min_free[32];
	size_t used;

	format_bytes(r->need, need, sizeof(need));
	format_bytes(r->usage, usage, sizeof(usage));
	format_bytes(r->max_bytes, max, sizeof(max));
	snprintf(err, errlen, "cache limit reached: %s more needed", need);
	used = strlen(err);
	if (r->max_bytes)
		snprintf(err + used, errlen - used, ", the cache uses %s of cache_max %s", usage, max);
	used = strlen(err);
	if (r->min_free) {
		format_bytes(r->free, free_now, sizeof(free_now));
		format_bytes(r->min_free, min_free, sizeof(min_free));
		snprintf(err + used, errlen - used, ", %s is free of which cache_min_free keeps %s",
			 free_now, min_free);
	}
	describe_candidates(list, freeable, err, errlen);
}

/* Evicts candidates, oldest first, until need fits; evicts nothing when even
 * every free candidate would not make enough room, or for ROOM_CHECK.
 * c->room_lock held. */
static int evict_for(struct cache *c, struct room *r, const struct candidates *list, enum room_action action,
		     char *err, size_t errlen)
{
	uint64_t freeable = 0;
	char why[256];

	for (size_t i = 0; i < list->count; i++)
		if (!list->entries[i].busy)
			freeable += list->entries[i].bytes;
	if (freeable < shortfall(r)) {
		describe_refusal(r, list, freeable, err, errlen);
		return -ENOSPC;
	}
	if (action == ROOM_CHECK)
		return 0;
	for (size_t i = 0; i < list->count && shortfall(r) > 0; i++) {
		if (list->entries[i].busy)
			continue;
		/* A failure here is a reader or VM that came since the listing. */
		if (cache_evict(c, list->entries[i].id, why, sizeof(why)) < 0)
			log_debug("cache: %s not evicted: %s", list->entries[i].id, why);
		measure(c, r);
	}
	if (shortfall(r) > 0) {
		describe_refusal(r, list, 0, err, errlen);
		return -ENOSPC;
	}
	return 0;
}

/* Makes room for need more bytes, checks that it could, or makes it and
 * keeps it claimed (ROOM_CLAIM). */
static int room_for(struct cache *c, const char *keep, uint64_t need, enum room_action action,
		    char *err, size_t errlen)
{
	struct candidates list = { 0 };
	struct room r = { .need = need };
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	r.max_bytes = c->max_bytes;
	r.min_free = c->min_free;
	pthread_mutex_unlock(&c->lock);
	if (!r.max_bytes && !r.min_free) {
		if (action == ROOM_CLAIM)
			__atomic_add_fetch(&c->claimed, need, __ATOMIC_RELAXED);
		return 0;
	}
	pthread_mutex_lock(&c->room_lock);
	/* Another process (a pull, `nido image rm`) may have changed the
	 * cache: count it again about once a second. */
	if (time(NULL) != c->counted_at)
		count_usage(c);
	measure(c, &r);
	if (shortfall(&r) > 0) {
		count_usage(c);
		measure(c, &r);
	}
	if (shortfall(&r) > 0)
		rc = list_candidates(c, keep, &list);
	if (rc < 0)
		snprintf(err, errlen, "cannot list the image cache %s: %s", c->dir, strerror(-rc));
	else if (shortfall(&r) > 0)
		rc = evict_for(c, &r, &list, action, err, errlen);
	if (rc == 0 && action == ROOM_CLAIM)
		__atomic_add_fetch(&c->claimed, need, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->room_lock);
	free(list.entries);
	return rc;
}

int cache_make_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen)
{
	return room_for(c, keep, need, ROOM_EVICT, err, errlen);
}

int cache_check_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen)
{
	return room_for(c, keep, need, ROOM_CHECK, err, errlen);
}

int cache_claim_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen)
{
	return room_for(c, keep, need, ROOM_CLAIM, err, errlen);
}

void cache_release_room(struct cache *c, uint64_t bytes)
{
	__atomic_sub_fetch(&c->claimed, bytes, __ATOMIC_RELAXED);
}

int cache_reserve(struct cache *c, const char *keep, uint64_t *room, uint64_t len, char *err, size_t errlen)
{
	int rc;

	if (*room < len) {
		uint64_t step = (len - *room + CACHE_BLOCK_SIZE - 1) / CACHE_BLOCK_SIZE * CACHE_BLOCK_SIZE;

		if ((rc = cache_make_room(c, keep, step, err, errlen)) < 0)
			return rc;
		*room += step;
	}
	*room -= len;
	__atomic_add_fetch(&c->usage, len, __ATOMIC_RELAXED);
	return 0;
}
