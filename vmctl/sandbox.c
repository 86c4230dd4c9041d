/* The check that -sandbox works with -daemonize; see sandbox.h. */
#include "vmctl/sandbox.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/qemu.h"
#include "vmctl/qmp.h"
#include "vmctl/spawn.h"
#include "vmctl/verdict.h"
#include "vmctl/vmproc.h"

#define CHECK_START_MS 10000
#define CHECK_QUIT_MS 5000

/* Ends the daemonized QEMU of the check: QMP quit, then SIGKILL. */
static void stop_check_qemu(const char *sock, const char *pidfile)
{
	char err[256];
	pid_t pid;
	int pidfd;

	if (vmproc_open(pidfile, &pidfd, &pid) < 0)
		return;
	if (qmp_run(sock, "quit", CHECK_QUIT_MS, err, sizeof(err)) < 0 ||
	    vmproc_wait_exit(pidfd, CHECK_QUIT_MS) < 0) {
		log_warnx("sandbox check: QEMU %d did not quit, killing it", (int)pid);
		vmproc_signal(pidfd, SIGKILL);
		vmproc_wait_exit(pidfd, CHECK_QUIT_MS);
	}
	close(pidfd);
}

/* Starts QEMU with the sandbox and -daemonize in dir, then ends it. Returns 1
 * when it ran, 0 when it failed (the reason is set), or -errno when the check
 * itself could not run. */
static int run_check(const char *qemu, const char *dir, char *reason, size_t len)
{
	char sock[128], escaped[256], chardev[320], pidfile[128];
	const char *argv[] = {
		qemu, "-machine", "none", "-nodefaults", "-no-user-config", "-display", "none",
		"-sandbox", QEMU_SANDBOX_OPTS, "-chardev", chardev,
		"-mon", "chardev=qmp,mode=control", "-pidfile", pidfile, "-daemonize", NULL,
	};
	int rc;

	snprintf(sock, sizeof(sock), "%s/qmp.sock", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", dir);
	rc = qemu_escape_commas(sock, escaped, sizeof(escaped));
	if (rc < 0)
		return rc;
	snprintf(chardev, sizeof(chardev), "socket,id=qmp,path=%s,server=on,wait=off", escaped);
	rc = spawn_run(argv, -1, -1, CHECK_START_MS, reason, len);
	stop_check_qemu(sock, pidfile);
	unlink(sock);
	unlink(pidfile);
	if (rc == -EIO)
		return 0;
	return rc < 0 ? rc : 1;
}

static int check_sandbox(const char *qemu, char *reason, size_t len)
{
	char dir[] = "/tmp/nido-sandbox-XXXXXX";
	int rc;

	if (!mkdtemp(dir)) {
		rc = -errno;
		snprintf(reason, len, "cannot create a directory in /tmp: %s", strerror(-rc));
		return rc;
	}
	rc = run_check(qemu, dir, reason, len);
	rmdir(dir);
	return rc;
}

int sandbox_usable(const char *home)
{
	char qemu[PATH_MAX], key[PATH_MAX + 128], path[PATH_MAX], reason[512] = "";
	int rc, save_rc;

	rc = spawn_find_program(QEMU_SYSTEM, qemu, sizeof(qemu));
	if (rc == 0)
		rc = verdict_key(qemu, key, sizeof(key));
	if (rc == 0)
		rc = path_join(path, sizeof(path), home, "sandbox-verdict");
	if (rc < 0) {
		log_warnx("sandbox check: cannot examine %s: %s", QEMU_SYSTEM, strerror(-rc));
		return 0;
	}
	rc = verdict_load(path, key, reason, sizeof(reason));
	if (rc >= 0)
		return rc;
	rc = check_sandbox(qemu, reason, sizeof(reason));
	if (rc < 0) {
		log_warnx("sandbox check: %s; starting VMs without -sandbox", reason);
		return 0;
	}
	if (rc == 0)
		log_warnx("sandbox check: QEMU cannot run with -sandbox %s: %s; starting VMs without it",
			  QEMU_SANDBOX_OPTS, reason);
	save_rc = verdict_save(path, key, rc, rc ? "" : reason);
	if (save_rc < 0)
		log_warnx("%s: cannot save the sandbox verdict: %s", path, strerror(-save_rc));
	return rc;
}
