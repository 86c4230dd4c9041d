/* HTTP range requests with libcurl; see http.h. */
#include "fetch/http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#define HTTP_MAX_REDIRECTS 5
#define HTTP_CONNECT_TIMEOUT 15L

struct http_conn {
	CURL *curl;
	int (*cancelled)(void *arg);
	void *cancel_arg;
};

/* State of one transfer, shared by the header and body callbacks. */
struct transfer {
	struct http_conn *conn;
	struct http_answer *ans;
	http_sink_fn sink;
	void *arg;
	int headers_checked;
	int range_seen;
	uint64_t range_first, range_last, range_total;
	uint64_t content_length;
	int sink_rc;
	char err[256];
};

int http_url_supported(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Rejects a URL without an http or https scheme before libcurl receives it,
 * because libcurl would guess a scheme and look the first word up as a host. */
static int check_scheme(const char *url, char *err, size_t errlen)
{
	if (http_url_supported(url))
		return 0;
	snprintf(err, errlen, "not an http or https URL");
	return -EINVAL;
}

int http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static long stall_seconds(void)
{
	const char *env = getenv("NIDO_STALL_TIMEOUT");
	long v = env ? strtol(env, NULL, 10) : 0;

	return v > 0 ? v : 30;
}

struct http_conn *http_conn_new(const char *ca_file)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c || !(c->curl = curl_easy_init())) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c->curl, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRECTS);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* A second guard behind check_scheme: a URL without a scheme gets https. */
	curl_easy_setopt(c->curl, CURLOPT_DEFAULT_PROTOCOL, "https");
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, stall_seconds());
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Larger pieces mean fewer sink calls (each a locked pwrite) per request. */
	curl_easy_setopt(c->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "nidofs/" NIDO_VERSION);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file && ca_file[0])
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca_file);
	return c;
}

void http_conn_free(struct http_conn *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_conn *c = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return c->cancelled(c->cancel_arg);
}

void http_conn_set_cancel(struct http_conn *c, int (*cancelled)(void *arg), void *arg)
{
	c->cancelled = cancelled;
	c->cancel_arg = arg;
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, cancelled ? on_progress : NULL);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, cancelled ? 0L : 1L);
}

int http_parse_content_range(const char *value, uint64_t *first, uint64_t *last, uint64_t *total)
{
	char tail[32];
	uint64_t a, b, t = 0;
	int n = 0;

	while (isspace((unsigned char)*value))
		value++;
	if (strncasecmp(value, "bytes ", 6) != 0)
		return -EINVAL;
	if (sscanf(value + 6, "%" SCNu64 "-%" SCNu64 "/%n", &a, &b, &n) != 2 || n == 0)
		return -EINVAL;
	if (value[6 + n] != '*') {
		if (sscanf(value + 6 + n, "%" SCNu64 "%31s", &t, tail) != 1 || b >= t)
			return -EINVAL;
	}
	if (a > b || !isdigit((unsigned char)value[6]))
		return -EINVAL;
	*first = a;
	*last = b;
	*total = t;
	return 0;
}

static void copy_header_value(char *dst, size_t len, const char *value, size_t vlen)
{
	while (vlen > 0 && isspace((unsigned char)*value)) {
		value++;
		vlen--;
	}
	while (vlen > 0 && isspace((unsigned char)value[vlen - 1]))
		vlen--;
	if (vlen >= len)
		vlen = 0; /* an oversized validator is useless: treat as absent */
	memcpy(dst, value, vlen);
	dst[vlen] = '\0';
}

static int header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
	size_t nlen = strlen(name);

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return 0;
	*value = line + nlen + 1;
	*vlen = len - nlen - 1;
	return 1;
}

static void parse_header(struct transfer *t, const char *line, size_t len)
{
	struct http_answer *ans = t->ans;
	char buf[128];
	const char *value;
	size_t vlen;

	/* A new status line (after a redirect or 100) starts a new response. */
	if (len > 5 && strncasecmp(line, "HTTP/", 5) == 0) {
		memset(&ans->v, 0, sizeof(ans->v));
		t->range_seen = 0;
		t->content_length = 0;
		ans->retry_after = 0;
		return;
	}
	if (header_is(line, len, "ETag", &value, &vlen))
		copy_header_value(ans->v.etag, sizeof(ans->v.etag), value, vlen);
	else if (header_is(line, len, "Last-Modified", &value, &vlen))
		copy_header_value(ans->v.last_modified, sizeof(ans->v.last_modified), value, vlen);
	else if (header_is(line, len, "Content-Range", &value, &vlen)) {
		copy_header_value(buf, sizeof(buf), value, vlen);
		t->range_seen = http_parse_content_range(buf, &t->range_first, &t->range_last,
							 &t->range_total) == 0 ? 1 : -1;
	} else if (header_is(line, len, "Content-Length", &value, &vlen)) {
		copy_header_value(buf, sizeof(buf), value, vlen);
		t->content_length = strtoull(buf, NULL, 10);
	} else if (header_is(line, len, "Retry-After", &value, &vlen)) {
		copy_header_value(buf, sizeof(buf), value, vlen);
		ans->retry_after = strtod(buf, NULL);
	}
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	parse_header(arg, data, size * nmemb);
	return size * nmemb;
}

/* Decides, at the first body byte, where the body goes. Returns -1 to abort. */
static int check_answer(struct transfer *t)
{
	struct http_answer *ans = t->ans;

	curl_easy_getinfo(t->conn->curl, CURLINFO_RESPONSE_CODE, &ans->status);
	t->headers_checked = 1;
	if (ans->status == 206) {
		if (t->range_seen != 1) {
			snprintf(t->err, sizeof(t->err), "206 answer with a missing or malformed Content-Range");
			return -1;
		}
		ans->start = t->range_first;
		ans->v.size = t->range_total;
	} else if (ans->status == 200) {
		ans->start = 0;
		ans->v.size = t->content_length;
	}
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	struct http_answer *ans = t->ans;
	size_t len = size * nmemb;

	if (!t->headers_checked && check_answer(t) < 0)
		return 0;
	if (ans->status != 200 && ans->status != 206)
		return len; /* error bodies are read and dropped */
	if (ans->status == 206 && ans->start + ans->received + len > t->range_last + 1) {
		snprintf(t->err, sizeof(t->err), "206 body longer than its Content-Range");
		return 0;
	}
	t->sink_rc = t->sink(t->arg, ans, ans->start + ans->received, data, len);
	if (t->sink_rc < 0)
		return 0;
	ans->received += len;
	return len;
}

static int finish_transfer(struct transfer *t, CURLcode res, char *err, size_t errlen)
{
	struct http_answer *ans = t->ans;

	if (res != CURLE_OK) {
		if (t->err[0])
			snprintf(err, errlen, "%s", t->err);
		else if (t->sink_rc < 0)
			snprintf(err, errlen, "storing the data failed: %s", strerror(-t->sink_rc));
		else
			snprintf(err, errlen, "%s", curl_easy_strerror(res));
		if (t->sink_rc < 0)
			return t->sink_rc;
		if (res == CURLE_ABORTED_BY_CALLBACK)
			return -ECANCELED;
		return res == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	curl_easy_getinfo(t->conn->curl, CURLINFO_RESPONSE_CODE, &ans->status);
	if (ans->status == 206 && ans->received != t->range_last - t->range_first + 1) {
		snprintf(err, errlen, "206 body of %" PRIu64 " bytes, Content-Range promised %" PRIu64,
			 ans->received, t->range_last - t->range_first + 1);
		return -EIO;
	}
	return 0;
}

int http_get_range(struct http_conn *c, const char *url, uint64_t off, uint64_t len,
		   const char *if_range, http_sink_fn sink, void *arg, struct http_answer *ans,
		   char *err, size_t errlen)
{
	struct transfer t = { .conn = c, .ans = ans, .sink = sink, .arg = arg };
	struct curl_slist *headers = NULL;
	char range[64], hdr[300];
	CURLcode res;
	int rc;

	memset(ans, 0, sizeof(*ans));
	if ((rc = check_scheme(url, err, errlen)) < 0)
		return rc;
	snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, off, off + len - 1);
	if (if_range && if_range[0]) {
		snprintf(hdr, sizeof(hdr), "If-Range: %s", if_range);
		headers = curl_slist_append(headers, hdr);
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->curl, CURLOPT_RANGE, range);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &t);
	res = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	return finish_transfer(&t, res, err, errlen);
}

struct document {
	char *buf;
	size_t len, max;
};

static size_t on_document(char *data, size_t size, size_t nmemb, void *arg)
{
	struct document *d = arg;
	size_t len = size * nmemb;
	char *grown;

	if (d->len + len > d->max)
		return 0;
	grown = realloc(d->buf, d->len + len + 1);
	if (!grown)
		return 0;
	d->buf = grown;
	memcpy(d->buf + d->len, data, len);
	d->len += len;
	d->buf[d->len] = '\0';
	return len;
}

int http_get_document(const char *url, const char *ca_file, size_t max, char **out, size_t *outlen,
		      char *err, size_t errlen)
{
	struct http_conn *c;
	struct document d = { .max = max };
	CURLcode res;
	long status = 0;
	int rc;

	if ((rc = check_scheme(url, err, errlen)) < 0)
		return rc;
	if (!(c = http_conn_new(ca_file)))
		return -ENOMEM;
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_document);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &d);
	res = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	http_conn_free(c);
	if (res != CURLE_OK || status != 200) {
		if (res != CURLE_OK)
			snprintf(err, errlen, "%s", d.len >= max ? "document too large" : curl_easy_strerror(res));
		else
			snprintf(err, errlen, "HTTP status %ld", status);
		free(d.buf);
		return -EIO;
	}
	*out = d.buf ? d.buf : strdup("");
	*outlen = d.len;
	return *out ? 0 : -ENOMEM;
}

void http_url_host(const char *url, char *buf, size_t len)
{
	const char *start = strstr(url, "://");
	const char *at, *end;

	start = start ? start + 3 : url;
	end = start + strcspn(start, "/?#");
	at = memchr(start, '@', (size_t)(end - start));
	if (at)
		start = at + 1;
	snprintf(buf, len, "%.*s", (int)(end - start), start);
}

struct file_sink {
	int fd;
	uint64_t written;
	int rc;
	const struct http_download_hooks *hooks;
};

static size_t on_file(char *data, size_t size, size_t nmemb, void *arg)
{
	struct file_sink *f = arg;
	size_t len = size * nmemb, done = 0;

	if (f->hooks && f->hooks->before_write && (f->rc = f->hooks->before_write(f->hooks->arg, len)) < 0)
		return 0;
	while (done < len) {
		ssize_t n = write(f->fd, data + done, len - done);

		if (n < 0) {
			f->rc = -errno;
			return 0;
		}
		done += (size_t)n;
	}
	f->written += len;
	return len;
}

int http_download(const char *url, const char *ca_file, int fd, uint64_t resume_from,
		  const struct http_download_hooks *hooks, char *err, size_t errlen)
{
	struct http_conn *c;
	struct file_sink f = { .fd = fd, .hooks = hooks };
	long status = 0;
	CURLcode res;
	int rc;

	if ((rc = check_scheme(url, err, errlen)) < 0)
		return rc;
	if (!(c = http_conn_new(ca_file)))
		return -ENOMEM;
	if (hooks && hooks->cancelled)
		http_conn_set_cancel(c, hooks->cancelled, hooks->arg);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)resume_from);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_file);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c->curl, CURLOPT_FAILONERROR, 1L);
	res = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	http_conn_free(c);
	if (f.rc < 0) {
		snprintf(err, errlen, "cannot write the download: %s", strerror(-f.rc));
		return f.rc;
	}
	if (res == CURLE_RANGE_ERROR || (resume_from > 0 && status == 200)) {
		snprintf(err, errlen, "server cannot resume; start again");
		return -ERANGE;
	}
	if (res == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "download cancelled");
		return -ECANCELED;
	}
	if (res != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(res));
		return res == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	return 0;
}
