/* Finding, checking, signalling and waiting for a VM's QEMU; see vmproc.h. */
#include "vmctl/vmproc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "vmctl/deadline.h"

#define CMDLINE_MAX (256 * 1024)

/* Reads /proc/PID/cmdline into a malloc'd buffer; a zombie or a kernel thread
 * has an empty one. Returns 0, -ESRCH when the process is gone, or -errno. */
static int read_cmdline(pid_t pid, char **out, size_t *outlen)
{
	char path[64], *buf;
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	buf = malloc(CMDLINE_MAX);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < CMDLINE_MAX) {
		n = read(fd, buf + len, CMDLINE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int vmproc_is_qemu_of(pid_t pid, const char *pidfile)
{
	const char *arg, *next, *end;
	size_t len = 0;
	char *cmdline = NULL;
	int rc, found = 0;

	if (pid <= 0)
		return 0;
	rc = read_cmdline(pid, &cmdline, &len);
	if (rc == -ESRCH)
		return 0;
	if (rc < 0)
		return rc;
	end = cmdline + len;
	for (arg = cmdline; arg < end && !found; arg = next) {
		next = memchr(arg, '\0', (size_t)(end - arg));
		if (!next)
			break;
		next++;
		if (strcmp(arg, "-pidfile") == 0 && next < end && memchr(next, '\0', (size_t)(end - next)))
			found = strcmp(next, pidfile) == 0;
	}
	free(cmdline);
	return found;
}

static int read_pid(const char *pidfile, pid_t *pid)
{
	char text[32], *end;
	ssize_t n;
	long value;
	int fd;

	fd = open(pidfile, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	text[n] = '\0';
	errno = 0;
	value = strtol(text, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno || end == text || *end || value <= 0 || value > INT_MAX)
		return -EBADMSG;
	*pid = (pid_t)value;
	return 0;
}

int vmproc_find(const char *pidfile, pid_t *pid)
{
	pid_t found = 0;
	int rc;

	*pid = 0;
	rc = read_pid(pidfile, &found);
	/* A malformed pidfile may be one that QEMU has created but not yet
	 * written; either way no QEMU can be found through it. */
	if (rc == -ENOENT || rc == -EBADMSG)
		return 0;
	if (rc < 0)
		return rc;
	rc = vmproc_is_qemu_of(found, pidfile);
	if (rc < 0)
		return rc;
	if (rc == 1)
		*pid = found;
	return 0;
}

int vmproc_open(const char *pidfile, int *pidfd, pid_t *pid)
{
	pid_t found = 0;
	int fd, rc;

	rc = vmproc_find(pidfile, &found);
	if (rc < 0)
		return rc;
	if (found == 0)
		return -ESRCH;
	fd = pidfd_open(found, 0);
	if (fd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	rc = vmproc_is_qemu_of(found, pidfile);
	if (rc != 1) {
		close(fd);
		return rc < 0 ? rc : -ESRCH;
	}
	*pidfd = fd;
	*pid = found;
	return 0;
}

int vmproc_signal(int pidfd, int sig)
{
	return pidfd_send_signal(pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int vmproc_wait_exit(int pidfd, int timeout_ms)
{
	return poll_until(pidfd, POLLIN, monotonic_ms() + timeout_ms);
}
