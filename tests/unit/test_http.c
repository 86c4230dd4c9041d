/* Unit tests of the scheme check of the HTTP layer: a URL without an http
 * or https scheme is rejected before libcurl runs, so no name in it is ever
 * looked up as a host. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fetch/http.h"
#include "tests/unit/unit.h"

static int discard(void *arg, const struct http_answer *ans, uint64_t offset, const void *data, size_t len)
{
	(void)arg;
	(void)ans;
	(void)offset;
	(void)data;
	(void)len;
	return 0;
}

int main(void)
{
	struct http_answer ans;
	struct http_conn *conn;
	char err[256] = "", *text = NULL;
	size_t len;
	int fd;

	http_global_init();
	CHECK("http:// is supported", http_url_supported("http://127.0.0.1/catalog.json"));
	CHECK("HTTPS:// in capitals is supported", http_url_supported("HTTPS://127.0.0.1/catalog.json"));
	CHECK("a bare file name is not supported", !http_url_supported("mycat.json"));
	CHECK("file:// is not supported", !http_url_supported("file:///etc/hostname"));
	CHECK("ftp:// is not supported", !http_url_supported("ftp://127.0.0.1/catalog.json"));

	CHECK("document without a scheme: -EINVAL",
	      http_get_document("mycat.json", NULL, 4096, &text, &len, err, sizeof(err)) == -EINVAL);
	CHECK("document without a scheme: the message names the cause",
	      strcmp(err, "not an http or https URL") == 0);
	CHECK("document of file://: -EINVAL",
	      http_get_document("file:///etc/hostname", NULL, 4096, &text, &len, err, sizeof(err)) == -EINVAL);
	CHECK("document of file://: no text", text == NULL);

	conn = http_conn_new(NULL);
	CHECK("range without a scheme: -EINVAL",
	      conn && http_get_range(conn, "mycat.json", 0, 10, NULL, discard, NULL, &ans, err, sizeof(err)) == -EINVAL);
	http_conn_free(conn);

	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK("download of ftp://: -EINVAL",
	      http_download("ftp://127.0.0.1/disk.img", NULL, fd, 0, NULL, err, sizeof(err)) == -EINVAL);
	close(fd);
	return unit_exit();
}
