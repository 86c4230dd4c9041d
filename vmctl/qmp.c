/* QMP client over a unix socket; see qmp.h. */
#include "vmctl/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmctl/deadline.h"

int qmp_check_socket_path(const char *path)
{
	struct sockaddr_un addr;

	return strlen(path) < sizeof(addr.sun_path) ? 0 : -ENAMETOOLONG;
}

void qmp_close(struct qmp_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
	conn->len = 0;
}

static int open_socket(struct qmp_conn *conn, const char *path, int64_t deadline)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	conn->fd = -1;
	conn->len = 0;
	if (qmp_check_socket_path(path) < 0)
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, path, strlen(path) + 1);
	conn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (conn->fd < 0)
		return -errno;
	/* A full listen backlog returns EAGAIN on a non-blocking unix socket. */
	while (connect(conn->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return 0;
}

static int send_all(struct qmp_conn *conn, const char *text, int64_t deadline)
{
	size_t len = strlen(text), done = 0;
	ssize_t n;
	int rc;

	while (done < len) {
		n = send(conn->fd, text + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			rc = poll_until(conn->fd, POLLOUT, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Reads one newline-terminated message and parses it into *msg. */
static int read_message(struct qmp_conn *conn, cJSON **msg, int64_t deadline)
{
	char *nl;
	size_t line_len;
	ssize_t n;
	int rc;

	while (!(nl = memchr(conn->buf, '\n', conn->len))) {
		if (conn->len == sizeof(conn->buf))
			return -EMSGSIZE;
		rc = poll_until(conn->fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
		n = recv(conn->fd, conn->buf + conn->len, sizeof(conn->buf) - conn->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		conn->len += (size_t)n;
	}
	line_len = (size_t)(nl - conn->buf);
	*msg = cJSON_ParseWithLength(conn->buf, line_len);
	conn->len -= line_len + 1;
	memmove(conn->buf, nl + 1, conn->len);
	return *msg ? 0 : -EBADMSG;
}

/* Copies an error reply's class and description into err. */
static void describe_error(const cJSON *error, const char *command, char *err, size_t errlen)
{
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(error, "class");
	const cJSON *desc = cJSON_GetObjectItemCaseSensitive(error, "desc");

	snprintf(err, errlen, "QMP %s failed: %s: %s", command,
		 cJSON_IsString(cls) ? cls->valuestring : "unknown class",
		 cJSON_IsString(desc) ? desc->valuestring : "no description");
}

/* Reads messages until a reply (return or error) arrives; events are skipped. */
static int read_reply(struct qmp_conn *conn, const char *command, cJSON **ret,
		      int64_t deadline, char *err, size_t errlen)
{
	cJSON *msg, *item;
	int rc;

	for (;;) {
		rc = read_message(conn, &msg, deadline);
		if (rc == -ETIMEDOUT) {
			snprintf(err, errlen, "QMP %s: no reply in time", command);
			return rc;
		}
		if (rc < 0) {
			snprintf(err, errlen, "QMP %s: no reply: %s", command, strerror(-rc));
			return rc;
		}
		item = cJSON_GetObjectItemCaseSensitive(msg, "return");
		if (item) {
			if (ret)
				*ret = cJSON_DetachItemViaPointer(msg, item);
			cJSON_Delete(msg);
			return 0;
		}
		item = cJSON_GetObjectItemCaseSensitive(msg, "error");
		if (item) {
			describe_error(item, command, err, errlen);
			cJSON_Delete(msg);
			return -EIO;
		}
		cJSON_Delete(msg);
	}
}

static int execute_until(struct qmp_conn *conn, const char *command, cJSON **ret,
			 int64_t deadline, char *err, size_t errlen)
{
	char request[128];
	int rc;

	if (snprintf(request, sizeof(request), "{\"execute\": \"%s\"}\n", command) >= (int)sizeof(request))
		return -ENAMETOOLONG;
	rc = send_all(conn, request, deadline);
	if (rc < 0) {
		snprintf(err, errlen, "QMP %s: cannot send: %s", command, strerror(-rc));
		return rc;
	}
	return read_reply(conn, command, ret, deadline, err, errlen);
}

int qmp_execute(struct qmp_conn *conn, const char *command, cJSON **ret, int timeout_ms,
		char *err, size_t errlen)
{
	return execute_until(conn, command, ret, monotonic_ms() + timeout_ms, err, errlen);
}

static int read_greeting(struct qmp_conn *conn, int64_t deadline)
{
	cJSON *msg;
	int rc = read_message(conn, &msg, deadline);

	if (rc < 0)
		return rc;
	rc = cJSON_GetObjectItemCaseSensitive(msg, "QMP") ? 0 : -EPROTO;
	cJSON_Delete(msg);
	return rc;
}

int qmp_connect(struct qmp_conn *conn, const char *path, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	int rc;

	rc = open_socket(conn, path, deadline);
	if (rc < 0) {
		snprintf(err, errlen, "QMP socket %s: cannot connect: %s", path, strerror(-rc));
		goto fail;
	}
	rc = read_greeting(conn, deadline);
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "QMP socket %s: no greeting within %d ms", path, timeout_ms);
		goto fail;
	}
	if (rc < 0) {
		snprintf(err, errlen, "QMP socket %s: no greeting: %s", path, strerror(-rc));
		goto fail;
	}
	rc = execute_until(conn, "qmp_capabilities", NULL, deadline, err, errlen);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	qmp_close(conn);
	return rc;
}

int qmp_run(const char *path, const char *command, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct qmp_conn conn;
	int rc;

	rc = qmp_connect(&conn, path, timeout_ms, err, errlen);
	if (rc < 0)
		return rc;
	rc = execute_until(&conn, command, NULL, deadline, err, errlen);
	qmp_close(&conn);
	return rc;
}

int qmp_query_status(const char *path, char *status, size_t len, int timeout_ms,
		     char *err, size_t errlen)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct qmp_conn conn;
	const cJSON *field;
	cJSON *ret = NULL;
	int rc;

	rc = qmp_connect(&conn, path, timeout_ms, err, errlen);
	if (rc < 0)
		return rc;
	rc = execute_until(&conn, "query-status", &ret, deadline, err, errlen);
	qmp_close(&conn);
	if (rc < 0)
		return rc;
	field = cJSON_GetObjectItemCaseSensitive(ret, "status");
	if (!cJSON_IsString(field)) {
		snprintf(err, errlen, "QMP query-status: reply has no status string");
		rc = -EBADMSG;
	} else {
		snprintf(status, len, "%s", field->valuestring);
	}
	cJSON_Delete(ret);
	return rc;
}
