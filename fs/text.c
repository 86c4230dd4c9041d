/* The `info` file of a catalog entry: the entry's fields and its cache state
 * in plain words. */
#include "fs/text.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/cache.h"
#include "fetch/packed.h"
#include "fs/fs.h"

#define REFUSALS_MAX 32

/* Refusal reasons by cache id, newest last; guarded by refusal_lock. */
static pthread_mutex_t refusal_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char id[160];
	char reason[512];
} refusals[REFUSALS_MAX];
static int nrefusals;

void text_note_refusal(const struct cat_version *v, const char *reason)
{
	char id[160];
	int slot;

	cache_image_id(v, id, sizeof(id));
	pthread_mutex_lock(&refusal_lock);
	for (slot = 0; slot < nrefusals && strcmp(refusals[slot].id, id) != 0; slot++)
		;
	if (slot == nrefusals)
		slot = nrefusals < REFUSALS_MAX ? nrefusals++ : REFUSALS_MAX - 1;
	snprintf(refusals[slot].id, sizeof(refusals[slot].id), "%s", id);
	snprintf(refusals[slot].reason, sizeof(refusals[slot].reason), "%s", reason);
	pthread_mutex_unlock(&refusal_lock);
}

static void refusal_line(FILE *f, const struct cat_version *v)
{
	char id[160];

	cache_image_id(v, id, sizeof(id));
	pthread_mutex_lock(&refusal_lock);
	for (int i = 0; i < nrefusals; i++)
		if (strcmp(refusals[i].id, id) == 0)
			fprintf(f, "refused for VMs: %s\n", refusals[i].reason);
	pthread_mutex_unlock(&refusal_lock);
}

static void cache_lines(FILE *f, const struct cat_version *v)
{
	struct cached_image *img;
	struct cache_info info;
	char err[512];
	uint64_t cached;

	if (!cat_version_lazy(v)) {
		char path[PATH_MAX], state[512];

		if (cache_complete_path(fs.cache, v, path, sizeof(path)) == 0)
			fprintf(f, "cache: packed entry, pulled, verified and unpacked\n");
		else if (packed_describe(v, state, sizeof(state)) == 0)
			fprintf(f, "cache: packed entry (compressed or split), pulled whole before use: %s\n", state);
		else
			fprintf(f, "cache: packed entry (compressed or split), pulled whole on first use; not pulled yet\n");
		return;
	}
	cached = cache_cached_bytes(fs.cache, v);
	if (cached == 0 && !cache_is_open(fs.cache, v)) {
		fprintf(f, "cache: nothing cached yet\n");
		return;
	}
	if (cache_get(fs.cache, v, &img, err, sizeof(err)) < 0) {
		fprintf(f, "cache: %s\n", err);
		return;
	}
	cache_image_info(img, &info);
	cache_put(img);
	fprintf(f, "cache: %" PRIu64 " of %" PRIu64 " bytes (%.1f%%), %s\n", info.cached, info.size,
		info.size ? 100.0 * (double)info.cached / (double)info.size : 0.0, info.state);
	fprintf(f, "requests: %" PRIu64 " (%" PRIu64 " bytes fetched since the mount)\n", info.requests,
		info.fetched);
	if (info.last_error[0])
		fprintf(f, "last error: %s\n", info.last_error);
}

char *text_version_info(const struct cat_version *v, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	fprintf(f, "tag: %s:%s\n", v->image->name, v->version);
	if (v->naliases) {
		fprintf(f, "aliases:");
		for (size_t i = 0; i < v->naliases; i++)
			fprintf(f, " %s", v->aliases[i]);
		fprintf(f, "\n");
	}
	fprintf(f, "description: %s\n", v->image->description);
	fprintf(f, "registry: %s\n", v->image->registry);
	fprintf(f, "arch: %s\nformat: %s\nsize: %" PRIu64 " bytes\n", v->arch, v->format, v->size);
	fprintf(f, "url: %s\n", v->url);
	if (v->checksum[0])
		fprintf(f, "checksum: %s:%s\n", v->checksum_type, v->checksum);
	else
		fprintf(f, "checksum: none in the catalog (WARNING: the image cannot be verified)\n");
	cache_lines(f, v);
	refusal_line(f, v);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}
