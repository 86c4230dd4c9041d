/* HTTP range requests with libcurl. Each response's bytes are handed to a sink
 * at the file offsets the response states (Content-Range for 206, 0 onwards for
 * 200), never at the offsets that were asked for. */
#ifndef NIDO_HTTP_H
#define NIDO_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct http_validators {
	char etag[256];
	char last_modified[64];
	uint64_t size;			/* total file size; 0 when unknown */
};

struct http_answer {
	long status;
	uint64_t start;			/* offset of the first body byte */
	uint64_t received;		/* body bytes handed to the sink */
	struct http_validators v;	/* validators the answer carried */
	double retry_after;		/* seconds from Retry-After, or 0 */
};

/* Receives body bytes for [offset, offset + len). A negative return aborts the
 * transfer with that -errno. */
typedef int (*http_sink_fn)(void *arg, const struct http_answer *ans, uint64_t offset,
			    const void *data, size_t len);

struct http_conn;

int http_global_init(void);

/* Returns 1 when url starts with http:// or https:// (any case), else 0. The
 * request functions below reject every other URL with -EINVAL before any
 * network traffic. */
int http_url_supported(const char *url);

/* One connection handle, reused across requests (keep-alive); one per thread. */
struct http_conn *http_conn_new(const char *ca_file);
void http_conn_free(struct http_conn *c);

/* Sets a check that libcurl runs about once a second during each transfer on
 * c, stalled ones included. When it returns 1, the transfer ends with -ECANCELED. */
void http_conn_set_cancel(struct http_conn *c, int (*cancelled)(void *arg), void *arg);

/* GETs bytes [off, off + len) of url. if_range, when non-empty, is sent as
 * If-Range. Returns 0 when the transfer completed (any status: check
 * ans->status), -ETIMEDOUT for a stalled transfer, -ECANCELED when the
 * connection's cancel check returned 1, or -EIO with the cause in err
 * (connection, TLS, malformed Content-Range, body shorter than promised). */
int http_get_range(struct http_conn *c, const char *url, uint64_t off, uint64_t len,
		   const char *if_range, http_sink_fn sink, void *arg, struct http_answer *ans,
		   char *err, size_t errlen);

/* Fetches a whole small document (catalog, checksum list) into a malloc'd,
 * NUL-terminated buffer; at most max bytes. */
int http_get_document(const char *url, const char *ca_file, size_t max, char **out, size_t *outlen,
		      char *err, size_t errlen);

/* Optional callbacks of http_download. before_write runs before each piece of
 * the body is written, with its length; a negative return ends the transfer
 * with that -errno. cancelled is the check of http_conn_set_cancel. */
struct http_download_hooks {
	int (*before_write)(void *arg, size_t len);
	int (*cancelled)(void *arg);
	void *arg;
};

/* Appends the whole file at url to fd, asking for the bytes from resume_from
 * on. -ERANGE when the server cannot resume (the caller starts again); hooks
 * may be NULL. */
int http_download(const char *url, const char *ca_file, int fd, uint64_t resume_from,
		  const struct http_download_hooks *hooks, char *err, size_t errlen);

/* Writes the URL's scheme and host (no user info, path or query) into buf, for logs. */
void http_url_host(const char *url, char *buf, size_t len);

/* Parses "bytes a-b/total" ("*" total allowed); returns -EINVAL when malformed. */
int http_parse_content_range(const char *value, uint64_t *first, uint64_t *last, uint64_t *total);

#endif
