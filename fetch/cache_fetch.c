/* The block cache's fetch workers: a queue of block runs, each fetched with one
 * range request, retried with backoff, its bytes placed at the offsets the response states. */
#include "fetch/cache_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/clock.h"
#include "fetch/log.h"
#include "fetch/origin.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000
#define RETRY_AFTER_MAX 30.0
#define WHOLE_CLAIM_STEP (1u << 20)	/* room claimed at a time by a whole-file response */

/* One attempt at a job, as seen by the sink. */
struct attempt {
	struct fetch_job *job;
	int checked;			/* first body byte seen */
	int whole;			/* this attempt streams the whole file */
	int sent_etag;			/* If-Range carried an ETag */
	int no_room;			/* the cache limits stopped a whole-file response */
	char err[512];
};

/* Puts a job at the end of the queue, or, when a reader waits for it, after
 * the other such jobs and before all readahead; c->lock held. */
static void enqueue(struct cache *c, struct fetch_job *job, int urgent)
{
	struct fetch_job **at = urgent ? (c->urgent_tail ? &c->urgent_tail->next : &c->jobs)
				       : (c->jobs_tail ? &c->jobs_tail->next : &c->jobs);

	job->next = *at;
	*at = job;
	if (!job->next)
		c->jobs_tail = job;
	if (urgent)
		c->urgent_tail = job;
}

void cache_queue_missing(struct cached_image *img, uint64_t first, uint64_t last, int urgent)
{
	struct cache *c = img->cache;
	uint64_t i = first;

	if (last >= img->nblocks)
		last = img->nblocks - 1;
	while (i <= last) {
		struct fetch_job *job;
		uint64_t n = 0;

		if (img->state[i] != BLOCK_MISSING) {
			i++;
			continue;
		}
		while (i + n <= last && n < CACHE_JOB_BLOCKS && img->state[i + n] == BLOCK_MISSING)
			img->state[i + n++] = BLOCK_PENDING;
		job = calloc(1, sizeof(*job));
		if (!job) {
			for (uint64_t k = 0; k < n; k++)
				img->state[i + k] = BLOCK_MISSING;
			return;
		}
		job->img = img;
		job->first = i;
		job->count = n;
		job->epoch = img->epoch;
		job->done_to = i * CACHE_BLOCK_SIZE;
		pthread_mutex_lock(&c->lock);
		img->refs++;
		enqueue(c, job, urgent);
		pthread_cond_signal(&c->job_cond);
		pthread_mutex_unlock(&c->lock);
		i += n;
	}
}

/* Marks blocks wholly inside [start, end) present and counts them into the
 * cache's usage; returns the bytes counted. img->lock held. */
static uint64_t mark_covered(struct cached_image *img, uint64_t start, uint64_t end)
{
	uint64_t b = (start + CACHE_BLOCK_SIZE - 1) / CACHE_BLOCK_SIZE, counted = 0;

	for (; b < img->nblocks; b++) {
		uint64_t bend = (b + 1) * CACHE_BLOCK_SIZE;

		if (bend > img->size)
			bend = img->size;
		if (bend > end)
			break;
		if (img->state[b] == BLOCK_MISSING || img->state[b] == BLOCK_PENDING) {
			img->state[b] = BLOCK_PRESENT;
			img->present++;
			img->undurable++;
			counted += bend - b * CACHE_BLOCK_SIZE;
		}
	}
	if (counted) {
		__atomic_add_fetch(&img->cache->usage, counted, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&img->cond); /* wakes readers only when a block is new */
	}
	return counted;
}

/* Judges a 200 to a ranged request: the file changed (its blocks are dropped,
 * -ESTALE), the origin's ETags are unreliable (-EAGAIN, ask again with
 * Last-Modified), or the server has no range support (0). img->lock held. */
static int judge_full_answer(struct attempt *a, const struct http_validators *v)
{
	struct cached_image *img = a->job->img;
	int etag_same = strcmp(v->etag, img->val.etag) == 0;
	int lm_same = strcmp(v->last_modified, img->val.last_modified) == 0;

	if (!img->val.etag[0] && !img->val.last_modified[0])
		return 0; /* nothing recorded yet: nothing to compare */
	if (a->sent_etag && lm_same && img->val.last_modified[0]) {
		origin_distrust_etag(img->url, etag_same ? "answers 200 to If-Range with a matching ETag"
							 : "gives a different ETag for an unchanged file");
		snprintf(a->err, sizeof(a->err), "ETag not usable for If-Range");
		return -EAGAIN;
	}
	if (lm_same && (etag_same || !origin_etag_trusted(img->url)))
		return 0;
	store_discard(img, "remote file changed (new validators)");
	snprintf(a->err, sizeof(a->err), "remote file changed");
	return -ESTALE;
}

/* Decides at the first body byte whether the response can be used; img->lock held. */
static int check_first_bytes(struct attempt *a, const struct http_answer *ans)
{
	struct cached_image *img = a->job->img;
	const struct http_validators *v = &ans->v;

	a->checked = 1;
	if (ans->v.size && ans->v.size != img->size) {
		snprintf(a->err, sizeof(a->err), "server reports %" PRIu64 " bytes, catalog says %" PRIu64,
			 ans->v.size, img->size);
		return -EPROTO;
	}
	if (ans->status == 200) {
		int rc = judge_full_answer(a, v);

		if (rc < 0)
			return rc;
	}
	if (!img->val.etag[0] && !img->val.last_modified[0]) {
		img->val = *v;
		img->val.size = img->size;
		store_save_meta(img);
	}
	if (ans->status == 200) {
		if (img->whole_job)
			return -EALREADY; /* another job already streams the whole file */
		img->whole_job = a->whole = 1;
		log_info("%s: server ignores range requests; fetching the whole file in order", img->tag);
	}
	return 0;
}

/* Marks the blocks a response completed: its own bytes, joined to what earlier
 * responses of the job wrote when they touch (a short 206 and its rest).
 * Returns the bytes of the blocks marked. */
static uint64_t mark_answer(struct fetch_job *job, uint64_t ans_start, uint64_t offset, uint64_t end)
{
	uint64_t job_start = job->first * CACHE_BLOCK_SIZE;
	uint64_t from = ans_start;
	uint64_t block_of_offset = offset - offset % CACHE_BLOCK_SIZE;

	if (ans_start <= job->done_to) {
		if (end > job->done_to)
			job->done_to = end;
		from = ans_start < job_start ? ans_start : job_start;
		end = job->done_to;
	}
	/* Blocks ending before this piece were marked by earlier calls. */
	if (block_of_offset > from)
		from = block_of_offset;
	return mark_covered(job->img, from, end);
}

/* Claims room for a whole-file response as it streams past the job's blocks. */
static int claim_more(struct attempt *a, size_t len)
{
	struct fetch_job *job = a->job;
	uint64_t step = len > WHOLE_CLAIM_STEP ? len : WHOLE_CLAIM_STEP;
	int rc = cache_claim_room(job->img->cache, job->img->id, step, a->err, sizeof(a->err));

	if (rc == 0)
		job->claimed += step;
	else
		a->no_room = 1;
	return rc;
}

/* Gives back the room held for blocks that mark_covered has just counted
 * into the usage, so that no byte is counted twice or not at all. */
static void release_counted(struct fetch_job *job, uint64_t counted)
{
	uint64_t bytes = counted < job->claimed ? counted : job->claimed;

	cache_release_room(job->img->cache, bytes);
	job->claimed -= bytes;
}

/* Writes a piece of a response without img->lock, so that readers and other
 * workers can go on meanwhile. img->writers keeps store_discard from resetting
 * the file during the write. The caller marks blocks only if no discard came
 * in between. */
static int write_piece(struct cached_image *img, const void *data, size_t len, uint64_t offset)
{
	ssize_t n;
	int rc;

	img->writers++;
	pthread_mutex_unlock(&img->lock);
	n = pwrite(img->data_fd, data, len, (off_t)offset);
	rc = 0;
	if (n < 0)
		rc = -errno;
	else if (n != (ssize_t)len)
		rc = -EIO;
	pthread_mutex_lock(&img->lock);
	if (--img->writers == 0)
		pthread_cond_broadcast(&img->cond);
	return rc;
}

static int sink(void *arg, const struct http_answer *ans, uint64_t offset, const void *data, size_t len)
{
	struct attempt *a = arg;
	struct cached_image *img = a->job->img;
	uint64_t counted = 0;
	int rc = 0;

	if (a->whole && a->job->claimed < len && (rc = claim_more(a, len)) < 0)
		return rc;
	pthread_mutex_lock(&img->lock);
	if (a->job->epoch != img->epoch)
		rc = -ESTALE;
	else if (!a->checked)
		rc = check_first_bytes(a, ans);
	if (rc == 0 && (offset > img->size || len > img->size - offset)) {
		snprintf(a->err, sizeof(a->err), "answer reaches past the end of the file");
		rc = -EPROTO;
	}
	if (rc == 0)
		rc = write_piece(img, data, len, offset);
	if (rc == 0 && a->job->epoch != img->epoch)
		rc = -ESTALE;
	if (rc == 0) {
		img->fetched += len;
		counted = mark_answer(a->job, ans->start, offset, offset + len);
	}
	pthread_mutex_unlock(&img->lock);
	release_counted(a->job, counted);
	return rc;
}

/* The If-Range value: a strong ETag, else Last-Modified, else none. */
static int if_range_value(const struct cached_image *img, char *buf, size_t len)
{
	int etag = img->val.etag[0] && strncmp(img->val.etag, "W/", 2) != 0 && origin_etag_trusted(img->url);

	snprintf(buf, len, "%s", etag ? img->val.etag : img->val.last_modified);
	return etag;
}

static int status_retryable(long status)
{
	return status == 429 || status == 408 || (status >= 500 && status <= 599);
}

/* Runs one request for the job's still pending blocks. Returns 0 when done,
 * -EAGAIN to retry (with *delay_ms set), or another -errno to give up. */
static int fetch_once(struct http_conn *conn, struct fetch_job *job, char *err, size_t errlen,
		      unsigned *delay_ms)
{
	struct cached_image *img = job->img;
	struct attempt a = { .job = job };
	struct http_answer ans;
	uint64_t off = job->first * CACHE_BLOCK_SIZE, end = (job->first + job->count) * CACHE_BLOCK_SIZE;
	char if_range[256];
	int rc;

	if (end > img->size)
		end = img->size;
	pthread_mutex_lock(&img->lock);
	/* Skip blocks that another answer already filled (after a short 206, say). */
	while (off < end && img->state[off / CACHE_BLOCK_SIZE] >= BLOCK_PRESENT)
		off += CACHE_BLOCK_SIZE;
	while (end > off && img->state[(end - 1) / CACHE_BLOCK_SIZE] >= BLOCK_PRESENT)
		end = (end - 1) / CACHE_BLOCK_SIZE * CACHE_BLOCK_SIZE;
	a.sent_etag = if_range_value(img, if_range, sizeof(if_range));
	img->requests++;
	pthread_mutex_unlock(&img->lock);
	if (job->done_to > off && job->done_to < end)
		off = job->done_to; /* the rest of a short answer */
	if (off >= end)
		return 0;

	rc = http_get_range(conn, img->url, off, end - off, if_range, sink, &a, &ans, err, errlen);
	pthread_mutex_lock(&img->lock);
	if (a.whole)
		img->whole_job = 0;
	pthread_mutex_unlock(&img->lock);
	if (a.err[0])
		snprintf(err, errlen, "%s", a.err);
	if (rc == -ESTALE || rc == -EALREADY)
		return rc;
	if (a.no_room)
		return -ENOSPC;
	if (rc == -EPROTO || rc == -ETIMEDOUT || rc == -ECANCELED)
		return rc;
	if (rc < 0 && a.sent_etag && !origin_etag_trusted(img->url))
		*delay_ms = 0; /* ask again at once, with Last-Modified */
	if (rc < 0)
		return -EAGAIN;
	if (ans.status != 200 && ans.status != 206) {
		snprintf(err, errlen, "HTTP status %ld", ans.status);
		if (ans.retry_after > 0)
			*delay_ms = (unsigned)(1000 * (ans.retry_after < RETRY_AFTER_MAX ? ans.retry_after : RETRY_AFTER_MAX));
		return status_retryable(ans.status) ? -EAGAIN : -EIO;
	}
	return 0;
}

static int job_done(struct fetch_job *job)
{
	struct cached_image *img = job->img;
	int done = 1;

	pthread_mutex_lock(&img->lock);
	for (uint64_t i = job->first; i < job->first + job->count; i++)
		done &= img->state[i] >= BLOCK_PRESENT;
	pthread_mutex_unlock(&img->lock);
	return done;
}

/* Returns the job's pending blocks to missing and wakes readers with the error. */
static void fail_job(struct fetch_job *job, const char *why)
{
	struct cached_image *img = job->img;

	pthread_mutex_lock(&img->lock);
	if (job->epoch == img->epoch)
		for (uint64_t i = job->first; i < job->first + job->count; i++)
			if (img->state[i] == BLOCK_PENDING)
				img->state[i] = BLOCK_MISSING;
	cache_set_error(img, "offset %" PRIu64 ": %s", job->first * CACHE_BLOCK_SIZE, why);
	img->fail_gen++;
	pthread_cond_broadcast(&img->cond);
	pthread_mutex_unlock(&img->lock);
}

/* Waits while another job streams the whole file (a server without ranges). */
static void wait_whole_stream(struct cached_image *img)
{
	pthread_mutex_lock(&img->lock);
	while (img->whole_job)
		pthread_cond_wait(&img->cond, &img->lock);
	pthread_mutex_unlock(&img->lock);
}

/* Sleeps ms milliseconds, or less when the cache starts closing. flush_cond
 * is only ever broadcast, so waiting on it takes no wakeup from another thread. */
static void backoff_sleep(struct cache *c, unsigned ms)
{
	struct timespec until = realtime_after_ms((long)ms);

	pthread_mutex_lock(&c->lock);
	while (!c->stopping && pthread_cond_timedwait(&c->flush_cond, &c->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->lock);
}

/* Fetches the job's blocks, with retries; returns 0 or -errno with the cause in err. */
static int fetch_job_blocks(struct http_conn *conn, struct fetch_job *job, const char *host,
			    char *err, size_t errlen)
{
	struct cached_image *img = job->img;
	unsigned backoff = BACKOFF_FIRST_MS;
	int rc = -EIO, stalls = 0;
	uint64_t rounds = 0;

	for (int attempt = 1; attempt <= CACHE_ATTEMPTS; attempt++) {
		unsigned delay = backoff;

		uint64_t before = job->done_to;

		err[0] = '\0';
		rc = fetch_once(conn, job, err, errlen, &delay);
		if (rc == 0 && !job_done(job)) {
			/* A short answer: ask for the rest, at once and without
			 * counting an attempt when it brought new bytes. */
			if (job->done_to > before && rounds++ < job->count * 16) {
				attempt--;
				continue;
			}
			rc = -EAGAIN;
		}
		if (rc == -EALREADY) {
			wait_whole_stream(img);
			continue;
		}
		if (rc == 0 || rc == -ESTALE)
			break;
		log_debug("%s: offset %" PRIu64 ": %s: %s (attempt %d)", img->tag,
			  job->first * CACHE_BLOCK_SIZE, host, err, attempt);
		/* A stall already cost a whole low-speed timeout: retry it once only. */
		if (rc == -ETIMEDOUT && ++stalls < CACHE_STALL_ATTEMPTS)
			rc = -EAGAIN;
		if (rc != -EAGAIN || attempt == CACHE_ATTEMPTS)
			break;
		backoff_sleep(img->cache, delay);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return rc;
}

/* Holds room for the job's blocks while it runs, so that the workers
 * together never take the cache past its limits. */
static void run_job(struct http_conn *conn, struct fetch_job *job)
{
	struct cached_image *img = job->img;
	char err[512] = "";
	char host[256];
	int rc;

	http_url_host(img->url, host, sizeof(host));
	rc = cache_claim_room(img->cache, img->id, job->count * CACHE_BLOCK_SIZE, err, sizeof(err));
	if (rc < 0) {
		log_warnx("%s: cannot fetch offset %" PRIu64 ": %s", img->tag, job->first * CACHE_BLOCK_SIZE, err);
		fail_job(job, err);
		return;
	}
	job->claimed = job->count * CACHE_BLOCK_SIZE;
	rc = fetch_job_blocks(conn, job, host, err, sizeof(err));
	cache_release_room(img->cache, job->claimed);
	job->claimed = 0;
	if (rc == -ESTALE)
		return; /* the blocks were discarded; readers queue them again */
	if (rc == -ECANCELED) {
		fail_job(job, "the cache is closing");
		return;
	}
	if (rc < 0) {
		log_warnx("%s: fetch of offset %" PRIu64 " from %s failed: %s", img->tag,
			  job->first * CACHE_BLOCK_SIZE, host, err[0] ? err : strerror(-rc));
		fail_job(job, err[0] ? err : strerror(-rc));
	}
}

/* Ends a transfer, stalled or not, once cache_close has begun. */
static int transfer_cancelled(void *arg)
{
	return cache_stopping(arg);
}

static void *worker_main(void *arg)
{
	struct cache *c = arg;
	struct http_conn *conn = http_conn_new(c->ca_file);

	if (conn)
		http_conn_set_cancel(conn, transfer_cancelled, c);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct fetch_job *job;

		while (!c->jobs && !c->stopping)
			pthread_cond_wait(&c->job_cond, &c->lock);
		if (c->stopping)
			break;
		job = c->jobs;
		c->jobs = job->next;
		if (!c->jobs)
			c->jobs_tail = NULL;
		if (c->urgent_tail == job)
			c->urgent_tail = NULL;
		pthread_mutex_unlock(&c->lock);

		if (conn)
			run_job(conn, job);
		else
			fail_job(job, "cannot create an HTTP handle");
		pthread_mutex_lock(&job->img->lock);
		store_maybe_verify(job->img);
		pthread_mutex_unlock(&job->img->lock);
		cache_put(job->img);
		free(job);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	http_conn_free(conn);
	return NULL;
}

int cache_start_workers(struct cache *c)
{
	for (int i = 0; i < CACHE_WORKERS; i++)
		if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0)
			return -EAGAIN;
	if (pthread_create(&c->flusher, NULL, store_flusher_main, c) != 0)
		return -EAGAIN;
	return 0;
}

void cache_stop_workers(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = 1;
	pthread_cond_broadcast(&c->job_cond);
	pthread_cond_broadcast(&c->flush_cond);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < CACHE_WORKERS; i++)
		pthread_join(c->workers[i], NULL);
	pthread_join(c->flusher, NULL);
}
