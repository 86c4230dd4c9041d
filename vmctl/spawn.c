/* Runs external programs from an argv array; see spawn.h. */
#include "vmctl/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmctl/deadline.h"
#include "vmctl/vmproc.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define TAIL_BYTES 4096

static int is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int spawn_find_program(const char *name, char *buf, size_t len)
{
	const char *dirs = getenv("PATH");
	const char *dir, *end;
	int n;

	if (strchr(name, '/')) {
		n = snprintf(buf, len, "%s", name);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	if (!dirs || !*dirs)
		dirs = DEFAULT_PATH;
	for (dir = dirs; *dir; dir = *end ? end + 1 : end) {
		end = strchrnul(dir, ':');
		/* Relative entries, such as the empty one for the current
		 * directory, are skipped: a daemon's working directory is no place
		 * to find QEMU. */
		if (dir[0] != '/')
			continue;
		n = snprintf(buf, len, "%.*s/%s", (int)(end - dir), dir, name);
		if (n < 0 || (size_t)n >= len)
			continue;
		if (is_executable(buf))
			return 0;
	}
	return -ENOENT;
}

/* Runs in the child between fork and exec, so it calls only async-signal-safe
 * functions. Writes errno to the report pipe when it cannot exec. */
static void __attribute__((noreturn))
child_exec(const char *path, const char *const argv[], int in_fd, int out_fd, int err_fd, int report_fd)
{
	int fds[3] = { in_fd, out_fd, err_fd };
	struct sigaction dfl;
	sigset_t none;
	int e, i, moved;

	/* Copies above 9 first, so that dup2 onto 0-3 cannot overwrite a source. */
	for (i = 0; i < 3; i++) {
		moved = fcntl(fds[i], F_DUPFD, 10);
		if (moved < 0)
			goto fail;
		fds[i] = moved;
	}
	moved = fcntl(report_fd, F_DUPFD_CLOEXEC, 10);
	if (moved < 0)
		goto fail;
	report_fd = moved;
	for (i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			goto fail;
	if (dup3(report_fd, 3, O_CLOEXEC) < 0)
		goto fail;
	report_fd = 3;
	/* Descriptor 3 is the report pipe, closed by exec through O_CLOEXEC. */
	if (close_range(4, ~0U, 0) < 0)
		goto fail;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		sigaction(i, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execv(path, (char *const *)argv);
fail:
	e = errno;
	if (write(report_fd, &e, sizeof(e)) < 0)
		e = 0;
	_exit(127);
}

/* Reads the errno that child_exec reports; 0 when exec succeeded. */
static int read_exec_report(int fd)
{
	ssize_t n;
	int e = 0;

	do
		n = read(fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

int spawn_start(const char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
	char path[PATH_MAX];
	int report[2], devnull, e, rc;
	pid_t child;

	rc = spawn_find_program(argv[0], path, sizeof(path));
	if (rc < 0)
		return rc;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -errno;
	if (pipe2(report, O_CLOEXEC) < 0) {
		rc = -errno;
		close(devnull);
		return rc;
	}
	child = fork();
	if (child == 0)
		child_exec(path, argv, devnull, out_fd >= 0 ? out_fd : devnull,
			   err_fd >= 0 ? err_fd : devnull, report[1]);
	e = errno;
	close(report[1]);
	close(devnull);
	if (child < 0) {
		close(report[0]);
		return -e;
	}
	e = read_exec_report(report[0]);
	close(report[0]);
	if (e) {
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		return -e;
	}
	*pid = child;
	return 0;
}

/* Reaps pid, which has exited or been killed. */
static void reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/* Waits for pid by polling a pidfd, which becomes readable the moment the
 * child exits. Returns 0 once it has exited (not yet reaped), -ETIMEDOUT, or
 * another -errno, such as -ENOSYS where pidfd_open is missing (Linux before
 * 5.3, and valgrind 3.19). */
static int wait_with_pidfd(pid_t pid, int timeout_ms)
{
	int pidfd = pidfd_open(pid, 0);
	int rc;

	if (pidfd < 0)
		return -errno;
	rc = vmproc_wait_exit(pidfd, timeout_ms);
	close(pidfd);
	return rc;
}

/* Waits for pid with waitpid(WNOHANG) and sleeps of 1 to 8 ms, for systems
 * without pidfd_open. Returns 0 with *status set once it has exited and been
 * reaped, -ETIMEDOUT or -errno. */
static int wait_by_polling(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	int step = 1;
	pid_t done;

	for (;;) {
		done = waitpid(pid, status, WNOHANG);
		if (done == pid)
			return 0;
		if (done < 0 && errno != EINTR)
			return -errno;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
		sleep_ms(step < ms_left(deadline) ? step : ms_left(deadline));
		if (step < 8)
			step *= 2;
	}
}

int spawn_wait(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	int rc = wait_with_pidfd(pid, timeout_ms);

	if (rc == 0) {
		reap(pid, status);
		return 0;
	}
	/* Without a pidfd (-ENOSYS, or -EMFILE when out of descriptors) the
	 * wait goes on by polling until the same deadline. */
	if (rc != -ETIMEDOUT)
		rc = wait_by_polling(pid, ms_left(deadline), status);
	if (rc != -ETIMEDOUT)
		return rc;
	kill(pid, SIGKILL);
	reap(pid, status);
	return -ETIMEDOUT;
}

void spawn_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status %#x", (unsigned)status);
}

/* Finds the start and end of the last non-empty line of text[0..*end) and
 * moves *end to that line's start. Returns 0 when there is no such line. */
static int previous_line(const char *text, size_t *end, size_t *start)
{
	size_t e = *end, s;

	while (e > 0 && (text[e - 1] == '\n' || text[e - 1] == '\r' || text[e - 1] == ' '))
		e--;
	if (e == 0)
		return 0;
	s = e;
	while (s > 0 && text[s - 1] != '\n')
		s--;
	*start = s;
	*end = e;
	return 1;
}

/* Copies text[start..end) to buf at *used, with control characters replaced
 * by '?' so that it is safe in one-line messages. */
static void append_clean(char *buf, size_t len, size_t *used, const char *text, size_t start, size_t end)
{
	for (size_t i = start; i < end && *used + 1 < len; i++)
		buf[(*used)++] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
	buf[*used] = '\0';
}

int spawn_last_lines(int fd, int count, char *buf, size_t len)
{
	size_t starts[8], ends[8], end, used = 0;
	char tail[TAIL_BYTES];
	struct stat st;
	off_t from;
	ssize_t n;
	int found = 0;

	if (len == 0)
		return -EINVAL;
	buf[0] = '\0';
	if (fstat(fd, &st) < 0)
		return -errno;
	from = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
	n = pread(fd, tail, sizeof(tail), from);
	if (n < 0)
		return -errno;
	end = (size_t)n;
	while (found < count && found < 8 && previous_line(tail, &end, &starts[found])) {
		ends[found] = end;
		end = starts[found++];
	}
	while (found-- > 0) {
		append_clean(buf, len, &used, tail, starts[found], ends[found]);
		if (found > 0)
			append_clean(buf, len, &used, "; ", 0, 2);
	}
	return 0;
}

/* Writes the outcome of a run that did not succeed into err. */
static void describe_failure(const char *prog, int rc, int status, int capture_fd,
			     int timeout_ms, char *err, size_t errlen)
{
	char how[96], line[384] = "";

	if (rc == -ENOENT) {
		snprintf(err, errlen, "%s: program not found in PATH", prog);
		return;
	}
	if (rc == -ETIMEDOUT)
		snprintf(how, sizeof(how), "timed out after %d ms", timeout_ms);
	else if (rc < 0)
		snprintf(how, sizeof(how), "cannot run: %s", strerror(-rc));
	else
		spawn_describe_status(status, how, sizeof(how));
	if (capture_fd >= 0)
		spawn_last_lines(capture_fd, 2, line, sizeof(line));
	snprintf(err, errlen, "%s: %s%s%s", prog, how, line[0] ? ": " : "", line);
}

int spawn_run(const char *const argv[], int out_fd, int err_fd, int timeout_ms,
	      char *err, size_t errlen)
{
	int capture = -1, status = 0, rc;
	pid_t pid;

	if (err_fd < 0) {
		capture = memfd_create("nido-stderr", MFD_CLOEXEC);
		if (capture < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot create a buffer for stderr: %s",
				 argv[0], strerror(-rc));
			return rc;
		}
		err_fd = capture;
	}
	rc = spawn_start(argv, out_fd, err_fd, &pid);
	if (rc == 0)
		rc = spawn_wait(pid, timeout_ms, &status);
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = -EIO;
	if (rc < 0)
		describe_failure(argv[0], rc == -EIO ? 0 : rc, status, capture, timeout_ms, err, errlen);
	if (capture >= 0)
		close(capture);
	return rc;
}
