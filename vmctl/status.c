/* The status of a VM: vm_status and vm_status_format of vm.h. A live QEMU is
 * asked for its run state over QMP. The guest counts as running once its SSH
 * server answers on the forwarded port, and as booting before that. */
#include "vmctl/vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmctl/qmp.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

#define STATUS_QMP_TIMEOUT_MS 1000
#define SSH_BANNER_TIMEOUT_MS 300

/* Returns 1 when an SSH server greets on 127.0.0.1:port within the timeout.
 * QEMU's user-mode network accepts the connection itself and closes it when
 * the guest does not listen, so only the "SSH-" banner proves the guest is up. */
static int ssh_answers(unsigned port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct pollfd pfd = { .events = POLLIN };
	char banner[4];
	ssize_t n = -1;
	int fd;

	if (port == 0 || port > 65535)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		pfd.fd = fd;
		if (poll(&pfd, 1, SSH_BANNER_TIMEOUT_MS) == 1)
			n = recv(fd, banner, sizeof(banner), 0);
	}
	close(fd);
	return n == (ssize_t)sizeof(banner) && memcmp(banner, "SSH-", 4) == 0;
}

/* Fills st for a live QEMU from its QMP run state. */
static void live_status(const char *vmdir, struct vm_status *st)
{
	char sock[PATH_MAX], run_state[64], err[256];

	st->state = VM_BOOTING;
	if (vmdir_file(vmdir, "qmp.sock", sock, sizeof(sock)) < 0 ||
	    qmp_query_status(sock, run_state, sizeof(run_state), STATUS_QMP_TIMEOUT_MS, err, sizeof(err)) < 0)
		/* Another QMP client may hold the socket; the port check still works. */
		snprintf(run_state, sizeof(run_state), "running");
	if (strcmp(run_state, "internal-error") == 0 || strcmp(run_state, "guest-panicked") == 0 ||
	    strcmp(run_state, "io-error") == 0 || strcmp(run_state, "shutdown") == 0) {
		st->state = VM_FAILED;
		snprintf(st->detail, sizeof(st->detail), "QEMU reports the guest stopped: %s", run_state);
		return;
	}
	if (strcmp(run_state, "running") != 0) {
		snprintf(st->detail, sizeof(st->detail), "QEMU run state: %s", run_state);
		return;
	}
	if (ssh_answers(st->ssh_port))
		st->state = VM_RUNNING;
}

int vm_status(const char *home, const char *name, struct vm_status *st)
{
	struct vm_record rec;
	struct nido_config cfg;
	char vmdir[PATH_MAX], pidfile[PATH_MAX], err[512];
	int rc;

	memset(st, 0, sizeof(*st));
	if (!vm_name_valid(name))
		return -EINVAL;
	rc = vmdir_path(home, name, vmdir, sizeof(vmdir));
	if (rc == 0 && access(vmdir, F_OK) < 0)
		rc = -errno;
	if (rc == 0)
		rc = vmdir_load_state(vmdir, &rec);
	if (rc == 0)
		rc = vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile));
	if (rc == 0)
		rc = vmproc_find(pidfile, &st->pid);
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
	/* QEMU is gone: stopped, by request or because the guest powered off,
	 * unless the last start failed. */
	st->state = rec.state == VM_FAILED ? VM_FAILED : VM_STOPPED;
	if (st->state == VM_FAILED)
		snprintf(st->detail, sizeof(st->detail), "%s", rec.detail);
	return 0;
}

void vm_status_format(const struct vm_status *st, char *buf, size_t len)
{
	const char *state = vmdir_state_name(st->state);

	if (st->detail[0])
		snprintf(buf, len, "%s (%s)", state, st->detail);
	else
		snprintf(buf, len, "%s", state);
}
