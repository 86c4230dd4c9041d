/* Runs external programs (QEMU, qemu-img, xorriso, ssh-keygen) from an argv
 * array with fork and exec, never through a shell. The child gets stdin from
 * /dev/null and closes every descriptor above 2 with close_range(2) before
 * exec (it fails rather than exec without that), so /dev/fuse, curl sockets
 * and lock files cannot leak into a long-lived QEMU. */
#ifndef NIDO_SPAWN_H
#define NIDO_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* Finds name in $PATH (or /usr/local/bin:/usr/bin:/bin when PATH is unset)
 * and writes the executable's path into buf. A name containing '/' is used
 * as it is. Returns 0, -ENOENT when not found, or -ENAMETOOLONG. */
int spawn_find_program(const char *name, char *buf, size_t len);

/* Starts argv[0] (looked up with spawn_find_program) with stdout on out_fd
 * and stderr on err_fd, where -1 means /dev/null. Stores the child's pid in
 * *pid. Returns 0, -ENOENT when the program is not found, or the -errno of a
 * failed fork or exec. The caller reaps the child (spawn_wait). */
int spawn_start(const char *const argv[], int out_fd, int err_fd, pid_t *pid);

/* Waits up to timeout_ms for the child pid to exit, reaps it and stores its
 * wait status in *status. A pidfd ends the wait as soon as the child exits.
 * Where pidfd_open fails, it checks every 8 ms at most. On timeout
 * kills the child with SIGKILL, reaps it and returns -ETIMEDOUT. */
int spawn_wait(pid_t pid, int timeout_ms, int *status);

/* Runs argv and waits up to timeout_ms for it to exit. stdout goes to out_fd
 * and stderr to err_fd (-1: /dev/null for stdout, captured for stderr).
 * Returns 0 when the program exits with status 0. Otherwise writes the
 * outcome into err, such as "qemu-img: exit status 1: <last two lines of
 * captured stderr>",
 * and returns -EIO, -ETIMEDOUT, -ENOENT or another -errno. */
int spawn_run(const char *const argv[], int out_fd, int err_fd, int timeout_ms,
	      char *err, size_t errlen);

/* Describes a wait status as "exit status N" or "killed by signal N (name)". */
void spawn_describe_status(int status, char *buf, size_t len);

/* Copies the last count (at most 8) non-empty lines of the file open on fd
 * into buf, in file order and joined by "; ", reading at most the file's
 * last 4 KiB. Control characters become '?'. buf is empty when there is no
 * such line. Returns 0 or -errno. */
int spawn_last_lines(int fd, int count, char *buf, size_t len);

#endif
