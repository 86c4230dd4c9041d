/* `nido image pull`: fills the image cache, through the daemon's mount when
 * one runs (so both share one owner of the cache), else directly and within
 * the cache limits of the configuration. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/packed.h"
#include "vmctl/vmuse.h"

#define PULL_CHUNK (4u << 20)

struct progress {
	const char *tag;
	struct timespec start;
	unsigned long long start_bytes;
	int tty;
	time_t last;
};

static double elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Draws "tag  [====    ]  45%  270 MB / 600 MB  12.3 MB/s  ETA 27s" on a terminal. */
static void show(struct progress *p, unsigned long long done, unsigned long long total, int final)
{
	char bar[31], a[32], b[32];
	double secs = elapsed(&p->start), rate;
	int filled;

	if (!p->tty || (!final && time(NULL) == p->last))
		return;
	p->last = time(NULL);
	rate = secs > 0 ? (double)(done - p->start_bytes) / secs : 0;
	filled = total ? (int)(30.0 * (double)done / (double)total) : 0;
	memset(bar, ' ', 30);
	memset(bar, '=', (size_t)filled);
	bar[30] = '\0';
	format_size(done, a, sizeof(a));
	format_size(total, b, sizeof(b));
	fprintf(stderr, "\r%s [%s] %3d%% %s / %s %.1f MB/s", p->tag, bar,
		total ? (int)(100.0 * (double)done / (double)total) : 0, a, b, rate / 1e6);
	if (rate > 0 && done < total)
		fprintf(stderr, " ETA %.0fs ", (double)(total - done) / rate);
	else
		fprintf(stderr, "         ");
	if (final)
		fputc('\n', stderr);
}

static int pull_through_mount(const char *path, const struct cat_version *v, struct progress *p)
{
	char *buf = malloc(PULL_CHUNK);
	unsigned long long done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return fail("%s: cannot open: %s", path, strerror(errno));
	}
	while ((n = read(fd, buf, PULL_CHUNK)) > 0) {
		done += (unsigned long long)n;
		show(p, done, v->size, 0);
	}
	show(p, done, v->size, 1);
	close(fd);
	free(buf);
	if (n < 0)
		return fail("%s: read failed at offset %llu: %s; run the pull again to resume, or see %s/info",
			    p->tag, done, strerror(errno), path);
	return 0;
}

static void on_progress(void *arg, const struct cache_info *info)
{
	show(arg, info->cached, info->size, 0);
}

static int image_in_use(const char *id, void *arg)
{
	const struct nido_ctx *ctx = arg;

	return vm_uses_image(ctx->home, id);
}

/* Opens the image cache with the limits of the configuration, which this
 * process keeps for what it writes. Close with cache_close. */
static int open_cache(struct nido_ctx *ctx, struct cache **out)
{
	char dir[4096];
	int rc;

	path_join(dir, sizeof(dir), ctx->home, "images");
	if ((rc = cache_open(dir, ctx->cfg.ca_file, out)) < 0)
		return fail("%s: cannot open the image cache: %s", dir, strerror(-rc));
	cache_set_limits(*out, ctx->cfg.cache_max, ctx->cfg.cache_min_free, image_in_use, ctx);
	return 0;
}

/* Makes room for the whole rest of the image before fetching any of it, so a
 * pull that cannot fit fails at once and evicts nothing. */
static int room_for_image(struct cache *cache, const struct cat_version *v, const char *tag)
{
	char id[160], err[1024];
	uint64_t cached = cache_cached_bytes(cache, v);

	cache_image_id(v, id, sizeof(id));
	if (cached >= v->size || cache_make_room(cache, id, v->size - cached, err, sizeof(err)) == 0)
		return 0;
	return fail("%s: %s", tag, err);
}

static int pull_direct(struct nido_ctx *ctx, const struct cat_version *v, struct progress *p)
{
	struct cache *cache;
	struct cached_image *img;
	struct cache_info info;
	char err[1024];
	int rc;

	if (open_cache(ctx, &cache) != 0)
		return 1;
	if (room_for_image(cache, v, p->tag) != 0) {
		cache_close(cache);
		return 1;
	}
	if ((rc = cache_get(cache, v, &img, err, sizeof(err))) < 0) {
		cache_close(cache);
		return fail("%s", err);
	}
	cache_image_info(img, &info);
	p->start_bytes = info.cached;
	rc = cache_pull(img, on_progress, p);
	cache_image_info(img, &info);
	show(p, info.cached, info.size, 1);
	cache_put(img);
	cache_close(cache);
	if (rc < 0)
		return fail("%s: pull failed: %s", p->tag, info.last_error[0] ? info.last_error : strerror(-rc));
	return 0;
}

/* Packed entries are pulled whole, checked and unpacked; a running daemon and
 * this command share the work through the entry's lock file. */
static int pull_packed(struct nido_ctx *ctx, const struct cat_version *v, const char *tag)
{
	struct cache *cache;
	char path[4096], err[1024];
	int rc;

	if (open_cache(ctx, &cache) != 0)
		return 1;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "%s: downloading and unpacking the whole entry...\n", tag);
	rc = packed_ensure(cache, v, NULL, path, sizeof(path), err, sizeof(err));
	cache_close(cache);
	if (rc < 0)
		return fail("%s: %s", tag, err);
	printf("%s: pulled, %s, unpacked to %s\n", tag,
	       v->checksum[0] ? "checksum verified" : "not verified (the catalog gives no checksum)", path);
	return 0;
}

/* Waits for the daemon's checksum check of a pulled image; 0 once verified. */
static int wait_verified(struct nido_ctx *ctx, const struct cat_version *v)
{
	char dir[4096], path[4096];
	long limit_ms = 30000 + (long)(v->size / (50u << 20)) * 1000;

	path_join(dir, sizeof(dir), ctx->home, "images");
	for (long waited = 0; waited < limit_ms; waited += 100) {
		if (cache_complete_path_in(dir, v, path, sizeof(path)) == 0)
			return 0;
		usleep(100000);
	}
	return -ETIMEDOUT;
}

int pull_image(struct nido_ctx *ctx, const struct cat_version *v)
{
	struct progress p = { .tty = isatty(STDERR_FILENO) };
	char tag[160], mnt[4096], path[4096];
	int rc;

	cat_version_tag(v, tag, sizeof(tag));
	p.tag = tag;
	clock_gettime(CLOCK_MONOTONIC, &p.start);
	if (!cat_version_lazy(v))
		return pull_packed(ctx, v, tag);
	if (find_mount(ctx->home, mnt, sizeof(mnt)) == 0) {
		snprintf(path, sizeof(path), "%s/catalog/%s/%s/%s", mnt, v->image->name, v->version,
			 cat_version_disk_name(v));
		rc = pull_through_mount(path, v, &p);
		if (rc == 0 && v->checksum[0] && wait_verified(ctx, v) < 0)
			return fail("%s: downloaded, but the checksum check did not pass; see %s/catalog/%s/%s/info",
				    tag, mnt, v->image->name, v->version);
	} else {
		rc = pull_direct(ctx, v, &p);
	}
	if (rc != 0)
		return rc;
	printf("%s: pulled, %s\n", tag,
	       v->checksum[0] ? "checksum verified" : "not verified (the catalog gives no checksum)");
	return 0;
}
