/* The QEMU process of a VM. QEMU runs with -daemonize, so it is not our child:
 * it is found through its pidfile, recognised by its command line, signalled
 * through a pidfd and waited for by polling that pidfd (Linux 5.3 or later). */
#ifndef NIDO_VMPROC_H
#define NIDO_VMPROC_H

#include <sys/types.h>

/* Returns 1 when process pid is alive and its command line contains
 * "-pidfile" followed by exactly pidfile, 0 when it is not (or is gone), or
 * -errno when /proc cannot be read. A stale pidfile whose pid now belongs to
 * another program therefore never matches. */
int vmproc_is_qemu_of(pid_t pid, const char *pidfile);

/* Reads pidfile and stores the pid of the live QEMU that wrote it in *pid, or
 * 0 when there is none (no file, an empty or malformed one, a stale pid, a
 * pid of another program). Returns 0, or -errno for an unreadable pidfile. */
int vmproc_find(const char *pidfile, pid_t *pid);

/* Opens a pidfd for the live QEMU of pidfile and stores it in *pidfd (the
 * caller closes it) and the pid in *pid. The command line is checked after
 * the pidfd is open, so the pidfd cannot refer to a later process that reused
 * the pid. Returns 0, -ESRCH when no such QEMU runs, or -errno. */
int vmproc_open(const char *pidfile, int *pidfd, pid_t *pid);

/* Sends sig to the process of pidfd; 0 or -errno (-ESRCH once it has exited). */
int vmproc_signal(int pidfd, int sig);

/* Waits up to timeout_ms for the process of pidfd to exit.
 * Returns 0 once it has exited, -ETIMEDOUT or -errno. */
int vmproc_wait_exit(int pidfd, int timeout_ms);

#endif
