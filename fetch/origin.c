/* Per-origin facts; see origin.h. A small fixed table: a mount talks to few origins. */
#include "fetch/origin.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fetch/http.h"
#include "fetch/log.h"

#define ORIGIN_MAX 64

static pthread_mutex_t origin_lock = PTHREAD_MUTEX_INITIALIZER;
static char distrusted[ORIGIN_MAX][256];	/* guarded by origin_lock */
static int ndistrusted;				/* guarded by origin_lock */

static int find(const char *host)
{
	for (int i = 0; i < ndistrusted; i++)
		if (strcmp(distrusted[i], host) == 0)
			return i;
	return -1;
}

int origin_etag_trusted(const char *url)
{
	char host[256];
	int found;

	http_url_host(url, host, sizeof(host));
	pthread_mutex_lock(&origin_lock);
	found = find(host);
	pthread_mutex_unlock(&origin_lock);
	return found < 0;
}

void origin_distrust_etag(const char *url, const char *why)
{
	char host[256];

	http_url_host(url, host, sizeof(host));
	pthread_mutex_lock(&origin_lock);
	if (find(host) < 0 && ndistrusted < ORIGIN_MAX) {
		snprintf(distrusted[ndistrusted++], sizeof(distrusted[0]), "%s", host);
		log_warnx("%s: %s; no longer using its ETags, checking Last-Modified, size and checksum instead",
			  host, why);
	}
	pthread_mutex_unlock(&origin_lock);
}
