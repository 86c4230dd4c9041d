/* KVM probe and accelerator choice; see accel.h. */
#include "vmctl/accel.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/deadline.h"
#include "vmctl/qemu.h"
#include "vmctl/qmp.h"
#include "vmctl/spawn.h"
#include "vmctl/verdict.h"
#include "vmctl/vmproc.h"

#define PROBE_CONNECT_MS 10000	/* for QEMU to open its QMP socket */
#define PROBE_RUN_MS 1000	/* for SeaBIOS to run under KVM before the status query */
#define PROBE_QUERY_MS 3000

struct probe {
	char dir[64];
	char sock[128];
	int err_fd;		/* QEMU's stderr, a memfd */
	int pidfd;		/* readable once QEMU exits, or -1 where pidfd_open failed */
	pid_t pid;		/* 0 once reaped */
	int status;		/* wait status once reaped */
};

/* Reaps the probe QEMU if it has exited; returns 1 when it has. */
static int probe_exited(struct probe *p)
{
	if (p->pid > 0 && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
		p->pid = 0;
	return p->pid == 0;
}

/* Sleeps for ms, or less when the probe QEMU exits first. A QEMU that
 * cannot run KVM guests exits early (about 30 ms after the start on a host
 * whose KVM rejects an MSR write), so waking on its exit gives the verdict
 * sooner than a fixed sleep. */
static void probe_pause(struct probe *p, int ms)
{
	if (p->pidfd >= 0)
		vmproc_wait_exit(p->pidfd, ms);
	else
		sleep_ms(ms);
}

static void describe_exit(struct probe *p, char *reason, size_t len)
{
	char how[96], line[300];

	spawn_describe_status(p->status, how, sizeof(how));
	spawn_last_lines(p->err_fd, 2, line, sizeof(line));
	snprintf(reason, len, "QEMU %s%s%s", how, line[0] ? ": " : "", line);
}

static int probe_start(struct probe *p, const char *qemu)
{
	char escaped[256], chardev[sizeof(escaped) + 64];
	const char *argv[] = {
		qemu, "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "64",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-chardev", chardev, "-mon", "chardev=qmp,mode=control", NULL,
	};
	int rc;

	rc = qemu_escape_commas(p->sock, escaped, sizeof(escaped));
	if (rc < 0)
		return rc;
	snprintf(chardev, sizeof(chardev), "socket,id=qmp,path=%s,server=on,wait=off", escaped);
	p->err_fd = memfd_create("nido-kvm-probe", MFD_CLOEXEC);
	if (p->err_fd < 0)
		return -errno;
	rc = spawn_start(argv, -1, p->err_fd, &p->pid);
	if (rc == 0)
		p->pidfd = pidfd_open(p->pid, 0);
	return rc;
}

/* Connects to the probe's QMP socket, retrying until QEMU has created it.
 * Returns 0, 1 when QEMU exited first, or -ETIMEDOUT. */
static int probe_connect(struct probe *p, struct qmp_conn *conn)
{
	int64_t deadline = monotonic_ms() + PROBE_CONNECT_MS;
	char err[256];

	while (ms_left(deadline) > 0) {
		if (probe_exited(p))
			return 1;
		if (qmp_connect(conn, p->sock, 500, err, sizeof(err)) == 0)
			return 0;
		probe_pause(p, 50);
	}
	return -ETIMEDOUT;
}

/* Waits up to timeout_ms for the probe QEMU to exit; returns 1 when it has. */
static int probe_exited_within(struct probe *p, int timeout_ms)
{
	int64_t deadline = monotonic_ms() + timeout_ms;

	while (!probe_exited(p)) {
		if (ms_left(deadline) == 0)
			return 0;
		probe_pause(p, ms_left(deadline) < 20 ? ms_left(deadline) : 20);
	}
	return 1;
}

/* Turns the query-status reply into a verdict: 1 when the guest runs. */
static int verdict_from_status(const cJSON *ret, char *reason, size_t len)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(ret, "status");

	if (!cJSON_IsString(status)) {
		snprintf(reason, len, "QMP query-status returned no status");
		return -EBADMSG;
	}
	if (strcmp(status->valuestring, "running") == 0)
		return 1;
	snprintf(reason, len, "%s", status->valuestring);
	return 0;
}

/* Runs the probe QEMU; returns 1 good, 0 bad (reason set) or -errno. */
static int probe_run(struct probe *p, const char *qemu, char *reason, size_t len)
{
	struct qmp_conn conn = { .fd = -1 };
	cJSON *ret = NULL;
	char err[256] = "";
	int rc;

	rc = probe_start(p, qemu);
	if (rc < 0) {
		snprintf(reason, len, "cannot start %s: %s", qemu, strerror(-rc));
		return rc;
	}
	rc = probe_connect(p, &conn);
	if (rc == -ETIMEDOUT) {
		snprintf(reason, len, "QEMU did not open its QMP socket within %d ms", PROBE_CONNECT_MS);
		return rc;
	}
	if (rc == 0) {
		sleep_ms(PROBE_RUN_MS);
		rc = qmp_execute(&conn, "query-status", &ret, PROBE_QUERY_MS, err, sizeof(err));
		qmp_close(&conn);
	}
	/* A QMP failure is usually QEMU dying, so give its exit a moment. */
	if (probe_exited_within(p, rc == 0 ? 0 : 2000)) {
		cJSON_Delete(ret);
		describe_exit(p, reason, len);
		return 0;
	}
	if (rc < 0) {
		snprintf(reason, len, "%s", err);
		return rc;
	}
	rc = verdict_from_status(ret, reason, len);
	cJSON_Delete(ret);
	return rc;
}

static void probe_cleanup(struct probe *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
	if (p->err_fd >= 0)
		close(p->err_fd);
	p->err_fd = -1;
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	unlink(p->sock);
	rmdir(p->dir);
}

/* Probes KVM with a throwaway QEMU; the socket lives in a private directory
 * under /tmp because sun_path is short. */
static int probe_kvm(const char *qemu, char *reason, size_t len)
{
	struct probe p = { .err_fd = -1, .pidfd = -1 };
	int rc;

	snprintf(p.dir, sizeof(p.dir), "/tmp/nido-kvm-XXXXXX");
	if (!mkdtemp(p.dir)) {
		rc = -errno;
		snprintf(reason, len, "cannot create a directory for the KVM probe in /tmp: %s", strerror(-rc));
		return rc;
	}
	snprintf(p.sock, sizeof(p.sock), "%s/qmp.sock", p.dir);
	rc = probe_run(&p, qemu, reason, len);
	probe_cleanup(&p);
	return rc;
}

int accel_kvm_usable(const char *home, char *reason, size_t len)
{
	char qemu[PATH_MAX], key[PATH_MAX + 128], path[PATH_MAX];
	int rc, save_rc;

	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		snprintf(reason, len, "/dev/kvm: %s", strerror(errno));
		return 0;
	}
	rc = spawn_find_program(QEMU_SYSTEM, qemu, sizeof(qemu));
	if (rc < 0) {
		snprintf(reason, len, "%s: program not found in PATH", QEMU_SYSTEM);
		return rc;
	}
	rc = verdict_key(qemu, key, sizeof(key));
	if (rc == 0)
		rc = path_join(path, sizeof(path), home, "kvm-verdict");
	if (rc < 0) {
		snprintf(reason, len, "cannot build the KVM verdict key: %s", strerror(-rc));
		return rc;
	}
	rc = verdict_load(path, key, reason, len);
	if (rc >= 0)
		return rc;
	log_info("kvm: probing whether KVM guests run with %s", qemu);
	rc = probe_kvm(qemu, reason, len);
	if (rc < 0)
		return rc;
	if (rc)
		log_info("kvm: usable");
	else
		log_info("kvm: unusable: %s", reason);
	save_rc = verdict_save(path, key, rc, rc ? "" : reason);
	if (save_rc < 0) {
		errno = -save_rc;
		log_warn("%s: cannot save the KVM verdict", path);
	}
	return rc;
}

void accel_choose(const char *home, enum accel_mode mode, struct accel_choice *out)
{
	char reason[sizeof(out->note) - 32];
	int usable;

	memset(out, 0, sizeof(*out));
	if (mode == ACCEL_AUTO) {
		usable = accel_kvm_usable(home, reason, sizeof(reason));
		if (usable == 1)
			mode = ACCEL_KVM;
		else
			snprintf(out->note, sizeof(out->note), "kvm unusable: %s%s",
				 usable < 0 ? "probe failed: " : "", reason);
	}
	out->kvm = mode == ACCEL_KVM;
	snprintf(out->name, sizeof(out->name), "%s", out->kvm ? "kvm" : "tcg");
}
