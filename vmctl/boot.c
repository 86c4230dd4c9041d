/* Starting a VM's QEMU; see boot.h. */
#include "vmctl/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/accel.h"
#include "vmctl/ports.h"
#include "vmctl/qemu.h"
#include "vmctl/sandbox.h"
#include "vmctl/spawn.h"
#include "vmctl/vm.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

#define PORT_ATTEMPTS 3

/* The inputs of one start, besides the config. */
struct boot {
	const char *home, *name, *vmdir, *private_key;
	struct nido_config *cfg;
	struct accel_choice accel;
	int sandbox;
};

static int needs_quotes(const char *text)
{
	for (; *text; text++)
		if (!((*text >= 'a' && *text <= 'z') || (*text >= 'A' && *text <= 'Z') ||
		      (*text >= '0' && *text <= '9') || strchr("/._-+@%:,=", *text)))
			return 1;
	return 0;
}

/* Writes text single-quoted for the shell, with each ' written as '\''. */
static int quote_for_shell(const char *text, char *buf, size_t len)
{
	size_t used = 0;

	if (len < 3)
		return -ENAMETOOLONG;
	buf[used++] = '\'';
	for (; *text; text++) {
		const char *piece = *text == '\'' ? "'\\''" : NULL;
		size_t n = piece ? 4 : 1;

		if (used + n + 2 > len)
			return -ENAMETOOLONG;
		if (piece)
			memcpy(buf + used, piece, n);
		else
			buf[used] = *text;
		used += n;
	}
	buf[used++] = '\'';
	buf[used] = '\0';
	return 0;
}

int boot_ssh_command(const char *private_key, unsigned port, const char *user,
		     char *buf, size_t len)
{
	char key[4 * PATH_MAX + 3];
	int n, rc = 0;

	if (needs_quotes(private_key))
		rc = quote_for_shell(private_key, key, sizeof(key));
	else
		snprintf(key, sizeof(key), "%s", private_key);
	if (rc < 0)
		return rc;
	n = snprintf(buf, len, "ssh -i %s -p %u -o StrictHostKeyChecking=no "
		     "-o UserKnownHostsFile=/dev/null %s@127.0.0.1\n", key, port, user);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Saves the config with the chosen port and the matching `ssh` file. */
static int save_port(const struct boot *b, char *err, size_t errlen)
{
	char path[PATH_MAX], command[5 * PATH_MAX];
	int rc;

	rc = vmdir_file(b->vmdir, "config", path, sizeof(path));
	if (rc == 0)
		rc = config_save(path, b->cfg);
	if (rc == 0)
		rc = boot_ssh_command(b->private_key, b->cfg->ssh_port, b->cfg->user, command, sizeof(command));
	if (rc == 0)
		rc = vmdir_file(b->vmdir, "ssh", path, sizeof(path));
	if (rc == 0)
		rc = write_file_atomic(path, command, strlen(command), 0644);
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot save the config and ssh file: %s", b->name, strerror(-rc));
	return rc;
}

/* Removes what a previous QEMU left and keeps the previous console log. */
static int prepare_files(const struct boot *b, int *log_fd)
{
	char path[PATH_MAX], old[PATH_MAX];
	int rc;

	rc = vmdir_file(b->vmdir, "console.log", path, sizeof(path));
	if (rc == 0)
		rc = vmdir_file(b->vmdir, "console.log.1", old, sizeof(old));
	if (rc < 0)
		return rc;
	if (rename(path, old) < 0 && errno != ENOENT)
		return -errno;
	if (vmdir_file(b->vmdir, "qmp.sock", path, sizeof(path)) == 0)
		unlink(path);
	if (vmdir_file(b->vmdir, "qemu.pid", path, sizeof(path)) == 0)
		unlink(path);
	rc = vmdir_file(b->vmdir, "qemu.log", path, sizeof(path));
	if (rc < 0)
		return rc;
	*log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	return *log_fd < 0 ? -errno : 0;
}

/* Kills a daemonized QEMU that outlived a failed or timed-out start. */
static void kill_leftover(const char *vmdir)
{
	char pidfile[PATH_MAX];
	pid_t pid;
	int pidfd;

	if (vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile)) < 0 ||
	    vmproc_open(pidfile, &pidfd, &pid) < 0)
		return;
	log_warnx("%s: killing QEMU %d left by a failed start", vmdir, (int)pid);
	vmproc_signal(pidfd, SIGKILL);
	vmproc_wait_exit(pidfd, 5000);
	close(pidfd);
}

/* Reads the last line of qemu.log for the error message. */
static void last_log_line(const char *vmdir, char *line, size_t len)
{
	char path[PATH_MAX];
	int fd;

	line[0] = '\0';
	if (vmdir_file(vmdir, "qemu.log", path, sizeof(path)) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	spawn_last_lines(fd, 1, line, len);
	close(fd);
}

/* Runs QEMU once with the port in b->cfg; returns 0, or -errno with err. */
static int run_qemu(const struct boot *b, char *err, size_t errlen)
{
	struct qemu_spec spec = {
		.name = b->name,
		.vmdir = b->vmdir,
		.memory_mb = b->cfg->memory_mb,
		.cpus = b->cfg->cpus,
		.ssh_port = b->cfg->ssh_port,
		.network = b->cfg->network,
		.kvm = b->accel.kvm,
		.sandbox = b->sandbox,
	};
	struct qemu_argv args;
	char why[512], line[384];
	int log_fd = -1, rc;

	rc = qemu_build_argv(&spec, &args);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot build the QEMU command line: %s", b->name, strerror(-rc));
		return rc;
	}
	rc = prepare_files(b, &log_fd);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot prepare %s: %s", b->name, b->vmdir, strerror(-rc));
		goto out;
	}
	rc = spawn_run((const char *const *)args.argv, log_fd, log_fd, BOOT_DAEMONIZE_TIMEOUT_MS,
		       why, sizeof(why));
	if (rc < 0) {
		kill_leftover(b->vmdir);
		last_log_line(b->vmdir, line, sizeof(line));
		snprintf(err, errlen, "vm %s: QEMU failed to start: %s", b->name, line[0] ? line : why);
	}
out:
	if (log_fd >= 0)
		close(log_fd);
	qemu_argv_free(&args);
	return rc;
}

/* Chooses the port and runs QEMU, trying another port when the chosen one
 * was taken by another program between the test bind and QEMU's bind. */
static int start_with_port(struct boot *b, char *err, size_t errlen)
{
	unsigned port, recorded = b->cfg->ssh_port;
	int attempt, rc;

	/* Starting the search just before the recorded port keeps it when free. */
	rc = ports_choose(b->home, b->name, b->cfg->port_min, b->cfg->port_max,
			  recorded ? recorded - 1 : 0, &port);
	for (attempt = 1; rc == 0; attempt++) {
		b->cfg->ssh_port = port;
		rc = save_port(b, err, errlen);
		if (rc < 0)
			return rc;
		rc = run_qemu(b, err, errlen);
		if (rc == 0 || attempt == PORT_ATTEMPTS || ports_bindable(port) != 0)
			return rc;
		log_warnx("vm %s: port %u was taken while QEMU started, trying another", b->name, port);
		rc = ports_choose(b->home, b->name, b->cfg->port_min, b->cfg->port_max, port, &port);
	}
	snprintf(err, errlen, "vm %s: no free SSH port in %u-%u: %s", b->name, b->cfg->port_min,
		 b->cfg->port_max, rc == -EADDRNOTAVAIL ? "all are in use" : strerror(-rc));
	return rc;
}

static void record_state(const struct boot *b, enum vm_run_state state, const char *detail)
{
	struct vm_record rec = { .state = state };
	int rc;

	snprintf(rec.accel, sizeof(rec.accel), "%s", b->accel.name);
	snprintf(rec.detail, sizeof(rec.detail), "%s", detail);
	rc = vmdir_save_state(b->vmdir, &rec);
	if (rc < 0)
		log_warnx("vm %s: cannot record state %s: %s", b->name, vmdir_state_name(state), strerror(-rc));
}

/* Records the outcome: running, with the note on why auto chose TCG, or
 * failed with the error. */
static void record_outcome(const struct boot *b, int rc, const char *err)
{
	char note[sizeof(b->accel.note) + 16] = "";

	if (rc < 0) {
		record_state(b, VM_FAILED, err);
		return;
	}
	if (b->accel.note[0])
		snprintf(note, sizeof(note), "%s: %s", b->accel.name, b->accel.note);
	record_state(b, VM_RUNNING, note);
}

int boot_vm(const char *home, const char *name, const char *vmdir, struct nido_config *cfg,
	    const char *private_key, char *err, size_t errlen)
{
	struct boot b = {
		.home = home, .name = name, .vmdir = vmdir, .private_key = private_key, .cfg = cfg,
	};
	int lock_fd, rc;

	record_state(&b, VM_BOOTING, "");
	accel_choose(home, cfg->accel, &b.accel);
	b.sandbox = sandbox_usable(home);
	rc = ports_lock(home, &lock_fd);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot lock %s/ports.lock: %s", name, home, strerror(-rc));
	} else {
		rc = start_with_port(&b, err, errlen);
		ports_unlock(lock_fd);
	}
	record_outcome(&b, rc, err);
	if (rc == 0)
		log_info("vm %s: started with %s on ssh port %u%s%s", name, b.accel.name, cfg->ssh_port,
			 b.accel.note[0] ? "; reason: " : "", b.accel.note);
	return rc;
}
