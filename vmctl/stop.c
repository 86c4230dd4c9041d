/* Stopping and destroying VMs: vm_stop and vm_destroy of vm.h. QEMU is asked
 * to power the guest off (ACPI), then to quit, then killed, and each step
 * waits for QEMU's exit through a pidfd. */
#include "vmctl/vm.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/qmp.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

#define QMP_TIMEOUT_MS 5000
#define QUIT_WAIT_MS 10000
#define KILL_WAIT_MS 10000

/* Sends command over QMP and waits up to wait_ms for QEMU to exit.
 * Returns 1 when QEMU has exited, else 0. */
static int ask_and_wait(const char *name, const char *sock, const char *command, int pidfd, int wait_ms)
{
	char err[512];
	int rc;

	rc = qmp_run(sock, command, QMP_TIMEOUT_MS, err, sizeof(err));
	/* QEMU may close the socket on quit before its reply arrives. */
	if (rc < 0 && vmproc_wait_exit(pidfd, 0) == 0)
		return 1;
	if (rc < 0) {
		log_warnx("vm %s: %s", name, err);
		return 0;
	}
	return vmproc_wait_exit(pidfd, wait_ms) == 0;
}

/* Ends the QEMU of pidfd: power-down (unless force), quit, then SIGKILL. */
static int end_qemu(const char *name, const char *vmdir, int pidfd, unsigned stop_timeout,
		    int force, char *err, size_t errlen)
{
	char sock[PATH_MAX];
	int rc;

	rc = vmdir_file(vmdir, "qmp.sock", sock, sizeof(sock));
	if (rc < 0)
		sock[0] = '\0';
	if (!force && sock[0] && ask_and_wait(name, sock, "system_powerdown", pidfd, (int)stop_timeout * 1000)) {
		log_info("vm %s: powered off", name);
		return 0;
	}
	if (sock[0] && ask_and_wait(name, sock, "quit", pidfd, QUIT_WAIT_MS)) {
		log_info("vm %s: QEMU quit%s", name, force ? "" : " after the power-down timed out");
		return 0;
	}
	rc = vmproc_signal(pidfd, SIGKILL);
	if (rc == -ESRCH || (rc == 0 && vmproc_wait_exit(pidfd, KILL_WAIT_MS) == 0)) {
		log_warnx("vm %s: QEMU killed because it did not quit", name);
		return 0;
	}
	if (rc == 0)
		rc = -ETIMEDOUT;
	snprintf(err, errlen, "vm %s: QEMU did not exit after SIGKILL: %s", name, strerror(-rc));
	return rc;
}

/* Removes the files of a QEMU that did not exit cleanly and the ready file,
 * and records the state. */
static void record_stopped(const char *name, const char *vmdir)
{
	struct vm_record rec;
	char path[PATH_MAX];
	int rc;

	if (vmdir_file(vmdir, "qemu.pid", path, sizeof(path)) == 0)
		unlink(path);
	if (vmdir_file(vmdir, "qmp.sock", path, sizeof(path)) == 0)
		unlink(path);
	if (vmdir_file(vmdir, "ready", path, sizeof(path)) == 0)
		unlink(path);
	if (vmdir_load_state(vmdir, &rec) < 0)
		memset(&rec, 0, sizeof(rec));
	rec.state = VM_STOPPED;
	rec.detail[0] = '\0';
	rc = vmdir_save_state(vmdir, &rec);
	if (rc < 0)
		log_warnx("vm %s: cannot record state stopped: %s", name, strerror(-rc));
}

static int stop_locked(const char *name, const char *vmdir, int force, char *err, size_t errlen)
{
	struct nido_config cfg;
	char pidfile[PATH_MAX], why[512];
	pid_t pid;
	int pidfd, rc;

	rc = vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile));
	if (rc == 0)
		rc = vmproc_open(pidfile, &pidfd, &pid);
	if (rc == -ESRCH) {
		record_stopped(name, vmdir);
		return 0;
	}
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot find its QEMU: %s", name, strerror(-rc));
		return rc;
	}
	/* Without a readable config, the default timeout still allows a power-down. */
	if (vmdir_load_config(vmdir, name, &cfg, why, sizeof(why)) < 0) {
		log_warnx("%s; stopping with the default stop_timeout", why);
		config_defaults(&cfg);
	}
	rc = end_qemu(name, vmdir, pidfd, cfg.stop_timeout, force, err, errlen);
	close(pidfd);
	if (rc == 0)
		record_stopped(name, vmdir);
	return rc;
}

int vm_stop(const char *home, const char *name, int force, char *err, size_t errlen)
{
	char vmdir[PATH_MAX];
	int lock_fd, rc;

	rc = vmdir_lock_existing(home, name, vmdir, sizeof(vmdir), &lock_fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = stop_locked(name, vmdir, force, err, errlen);
	vmdir_unlock(lock_fd);
	return rc;
}

int vm_destroy(const char *home, const char *name, char *err, size_t errlen)
{
	char vmdir[PATH_MAX];
	int lock_fd, rc;

	rc = vmdir_lock_existing(home, name, vmdir, sizeof(vmdir), &lock_fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = stop_locked(name, vmdir, 1, err, errlen);
	if (rc == 0) {
		rc = remove_tree(vmdir);
		if (rc < 0)
			snprintf(err, errlen, "vm %s: cannot remove %s: %s", name, vmdir, strerror(-rc));
		else
			log_info("vm %s: destroyed", name);
	}
	vmdir_unlock(lock_fd);
	return rc;
}
