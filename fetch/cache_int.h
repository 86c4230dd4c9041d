/* Internal state of the block cache, shared by cache.c (lookups and reads),
 * cache_fetch.c (fetch workers) and cache_store.c (files, durability, checksum). */
#ifndef NIDO_CACHE_INT_H
#define NIDO_CACHE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "fetch/cache.h"
#include "fetch/http.h"

#define CACHE_WORKERS 4
#define CACHE_JOB_BLOCKS 64		/* at most 4 MiB per request */
#define CACHE_READAHEAD_MAX 32		/* blocks: 2 MiB */
#define CACHE_READAHEAD_START 16	/* blocks read in order before readahead starts */
#define CACHE_READAHEAD_SLACK (512u * 1024) /* bytes a read may jump and stay in order */
#define CACHE_ATTEMPTS 5
#define CACHE_STALL_ATTEMPTS 2

enum block_state { BLOCK_MISSING, BLOCK_PENDING, BLOCK_PRESENT, BLOCK_DURABLE };

struct fetch_job {
	struct cached_image *img;
	uint64_t first, count;		/* blocks */
	uint64_t epoch;			/* img->epoch when queued */
	uint64_t done_to;		/* bytes from the job's start to here are written */
	uint64_t claimed;		/* cache room held for bytes not written yet */
	struct fetch_job *next;
};

struct cached_image {
	struct cache *cache;
	char id[160], dir[PATH_MAX], tag[160], url[4096];
	char checksum_type[8], checksum[129], disk_name[16];
	uint64_t size, nblocks;
	int lock_fd, data_fd, map_fd;
	int refs;			/* guarded by cache->lock */
	struct cached_image *next;	/* guarded by cache->lock */

	pthread_mutex_t lock;		/* guards everything below */
	pthread_cond_t cond;		/* broadcast on any block or state change */
	unsigned writers;		/* sinks writing to data_fd without the lock */
	uint8_t *state;			/* enum block_state per block */
	uint64_t present;		/* blocks PRESENT or DURABLE */
	uint64_t undurable;		/* blocks PRESENT */
	struct http_validators val;	/* recorded at first contact */
	uint64_t epoch;			/* bumped when the blocks are discarded */
	uint64_t fail_gen;		/* bumped when a fetch gives up */
	int whole_job;			/* a job streams the whole file (no range support) */
	uint64_t ra_next, ra_run;	/* sequential read detection: end, bytes in order */
	uint64_t ra_ahead;		/* first block past the readahead queued */
	int final;			/* the file has its final name (disk.*) */
	int verified, verifying, verify_failures;
	uint64_t requests, fetched;
	char last_error[512];
	char note[256];			/* e.g. "remote file changed; old blocks discarded" */
};

struct cache {
	char dir[PATH_MAX];
	char ca_file[PATH_MAX];
	pthread_mutex_t lock;		/* guards images, jobs, stopping */
	pthread_cond_t job_cond;
	struct cached_image *images;
	struct fetch_job *jobs, *jobs_tail;
	struct fetch_job *urgent_tail;	/* last job a reader waits for; they come first */
	int stopping;
	pthread_t workers[CACHE_WORKERS];
	pthread_t flusher;
	pthread_cond_t flush_cond;	/* also broadcast when a verify thread ends */
	int verifiers;			/* running verify threads; guarded by lock */
	uint64_t max_bytes, min_free;	/* guarded by lock; 0: no limit */
	int (*in_use)(const char *id, void *arg);	/* guarded by lock */
	void *in_use_arg;
	void (*changed)(const char *id, void *arg);	/* guarded by lock */
	void *changed_arg;
	uint64_t usage;			/* bytes on disk; atomic */
	uint64_t claimed;		/* room fetch jobs hold for bytes not written yet; atomic */
	pthread_mutex_t room_lock;	/* one eviction at a time; guards counted_at */
	time_t counted_at;		/* when usage was last summed from the files */
};

/* cache.c */
void cache_image_free(struct cached_image *img);
/* Returns 1 once cache_close has begun; takes cache->lock. */
int cache_stopping(struct cache *c);

/* cache_evict.c: makes room for need more bytes as cache_make_room does and
 * holds it, counted with the usage, until cache_release_room gives it back. */
int cache_claim_room(struct cache *c, const char *keep, uint64_t need, char *err, size_t errlen);
void cache_release_room(struct cache *c, uint64_t bytes);

/* cache_fetch.c */
int cache_start_workers(struct cache *c);
void cache_stop_workers(struct cache *c);
/* Queues runs of missing blocks in [first, last]; img->lock held. */
/* cache_evict.c: calls the change hook for id; takes c->lock. */
void cache_changed(struct cache *c, const char *id);

void cache_queue_missing(struct cached_image *img, uint64_t first, uint64_t last, int urgent);

/* cache_store.c */
int store_open(struct cached_image *img, const struct cat_version *v, char *err, size_t errlen);
void store_close(struct cached_image *img);
int store_save_meta(struct cached_image *img);
/* Makes PRESENT blocks durable and marks them in map; takes img->lock itself. */
int store_flush(struct cached_image *img);
/* Drops every block (remote file changed or checksum mismatch); img->lock held. */
void store_discard(struct cached_image *img, const char *why);
/* Starts the checksum check once every block is present; img->lock held. */
void store_maybe_verify(struct cached_image *img);
void *store_flusher_main(void *arg);

void cache_set_error(struct cached_image *img, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
