/* A small client for the QEMU Machine Protocol (QMP) over a unix socket:
 * connect, read the greeting, leave capabilities negotiation mode, then run
 * commands without arguments (query-status, system_powerdown, quit). Replies
 * are newline-delimited JSON, parsed with cJSON. */
#ifndef NIDO_QMP_H
#define NIDO_QMP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define QMP_LINE_MAX 16384

struct qmp_conn {
	int fd;			/* -1 when closed */
	size_t len;		/* bytes received but not yet parsed */
	char buf[QMP_LINE_MAX];
};

/* Returns 0 when path fits in sockaddr_un.sun_path, else -ENAMETOOLONG. */
int qmp_check_socket_path(const char *path);

/* Connects to the QMP socket at path, reads the greeting and sends
 * qmp_capabilities, all within timeout_ms. Returns 0 or -errno with the
 * cause in err; conn is closed on failure. */
int qmp_connect(struct qmp_conn *conn, const char *path, int timeout_ms, char *err, size_t errlen);

/* Executes command without arguments and waits up to timeout_ms for its
 * reply, skipping events. When ret is not NULL, stores the reply's "return"
 * member there, which the caller frees with cJSON_Delete. Returns 0, -EIO for
 * an error reply (its class and description go to err), or another -errno. */
int qmp_execute(struct qmp_conn *conn, const char *command, cJSON **ret, int timeout_ms,
		char *err, size_t errlen);

/* Closes the connection; safe to call twice. */
void qmp_close(struct qmp_conn *conn);

/* Connects, executes command and closes, all within timeout_ms. */
int qmp_run(const char *path, const char *command, int timeout_ms, char *err, size_t errlen);

/* Runs query-status and copies the run state (e.g. "running",
 * "internal-error", "guest-panicked") into status. */
int qmp_query_status(const char *path, char *status, size_t len, int timeout_ms,
		     char *err, size_t errlen);

#endif
