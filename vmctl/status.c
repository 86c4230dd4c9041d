/* The status of a VM: vm_status and vm_status_format of vm.h. A live QEMU is
 * asked for its run state over QMP; without one, the state file
 * distinguishes a failed start from a stopped VM. */
#include "vmctl/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vmctl/qmp.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

#define STATUS_QMP_TIMEOUT_MS 1000

/* Returns 1 while another process holds the VM directory's lock, which
 * vm_create and vm_start hold until QEMU has daemonized. */
static int operation_running(const char *vmdir)
{
	int fd = open(vmdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), busy;

	if (fd < 0)
		return 0;
	busy = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

/* Refines st for a live QEMU with its QMP run state. A failed query leaves
 * the VM running, because another QMP client may hold the socket. */
static void live_status(const char *vmdir, struct vm_status *st)
{
	char sock[PATH_MAX], run_state[64], err[256];

	st->state = VM_RUNNING;
	if (vmdir_file(vmdir, "qmp.sock", sock, sizeof(sock)) < 0 ||
	    qmp_query_status(sock, run_state, sizeof(run_state), STATUS_QMP_TIMEOUT_MS, err, sizeof(err)) < 0)
		return;
	if (strcmp(run_state, "internal-error") == 0 || strcmp(run_state, "guest-panicked") == 0 ||
	    strcmp(run_state, "io-error") == 0 || strcmp(run_state, "shutdown") == 0) {
		st->state = VM_FAILED;
		snprintf(st->detail, sizeof(st->detail), "QEMU reports the guest stopped: %s", run_state);
	} else if (strcmp(run_state, "prelaunch") == 0 || strcmp(run_state, "inmigrate") == 0) {
		st->state = VM_BOOTING;
	} else if (strcmp(run_state, "running") != 0) {
		snprintf(st->detail, sizeof(st->detail), "QEMU run state: %s", run_state);
	}
}

/* Finds the VM's folder (vmdir, PATH_MAX bytes) and the PID of its QEMU, 0
 * when none runs; -EINVAL for an invalid name, -ENOENT for no such VM. */
static int find_qemu(const char *home, const char *name, char *vmdir, pid_t *pid)
{
	char pidfile[PATH_MAX];
	int rc;

	*pid = 0;
	if (!vm_name_valid(name))
		return -EINVAL;
	rc = vmdir_path(home, name, vmdir, PATH_MAX);
	if (rc == 0 && access(vmdir, F_OK) < 0)
		rc = -errno;
	if (rc == 0)
		rc = vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile));
	if (rc == 0)
		rc = vmproc_find(pidfile, pid);
	return rc;
}

int vm_status(const char *home, const char *name, struct vm_status *st)
{
	struct vm_record rec;
	struct nido_config cfg;
	char vmdir[PATH_MAX], err[512];
	int rc;

	memset(st, 0, sizeof(*st));
	rc = find_qemu(home, name, vmdir, &st->pid);
	if (rc == 0)
		rc = vmdir_load_state(vmdir, &rec);
	if (rc < 0)
		return rc;
	if (vmdir_load_config(vmdir, name, &cfg, err, sizeof(err)) == 0)
		st->ssh_port = cfg.ssh_port;
	if (st->pid > 0) {
		snprintf(st->accel, sizeof(st->accel), "%s", rec.accel);
		snprintf(st->detail, sizeof(st->detail), "%s", rec.detail);
		live_status(vmdir, st);
		return 0;
	}
	/* No QEMU: a start in progress, a failed start, or stopped (by request
	 * or because the guest powered off). A "booting" record without a start
	 * in progress is left by a process that died while starting QEMU. */
	if (rec.state == VM_BOOTING && operation_running(vmdir))
		st->state = VM_BOOTING;
	else
		st->state = rec.state == VM_FAILED ? VM_FAILED : VM_STOPPED;
	if (st->state == VM_FAILED)
		snprintf(st->detail, sizeof(st->detail), "%s", rec.detail);
	return 0;
}

int vm_running(const char *home, const char *name)
{
	char vmdir[PATH_MAX];
	pid_t pid = 0;
	int rc = find_qemu(home, name, vmdir, &pid);

	return rc < 0 ? rc : pid > 0;
}

void vm_status_format(const struct vm_status *st, char *buf, size_t len)
{
	const char *state = vmdir_state_name(st->state);

	if (st->detail[0])
		snprintf(buf, len, "%s (%s)", state, st->detail);
	else
		snprintf(buf, len, "%s", state);
}
