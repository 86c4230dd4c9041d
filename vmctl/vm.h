/* VM control: the state directory of each VM under <home>/vms/NAME, its qcow2
 * overlay, its cloud-init seed and its QEMU process. Used by the FUSE daemon
 * (mkdir/rmdir/ctl in vms/) and by the `nido` command; both see the same state
 * because everything lives on disk.
 *
 * A VM directory contains:
 *   config       struct nido_config text, with ssh_port set
 *   image        the catalog tag
 *   disk.qcow2   the overlay on the backing image
 *   user-data    the user's own user-data; when they gave none, a copy of the
 *                default user-data, which they can edit
 *   seed/        the user-data and meta-data that the guest reads
 *   seed.iso     the NoCloud seed built from seed/
 *   meta-data    a symbolic link to seed/meta-data
 *   console.log  the serial console (console.log.1: the boot before)
 *   qemu.log     QEMU's stderr until it daemonizes
 *   qemu.pid, qmp.sock
 *   ssh          the login command
 *   state        the last recorded state (see vmdir.h)
 *   ready        written by the daemon once the guest's SSH server responds,
 *                removed by every stop (see vm_ready_write)
 * Operations on one VM are serialised by a flock on its directory, and
 * vm_status takes no lock.
 *
 * Under <home> the part also keeps ports.lock, kvm-verdict, sandbox-verdict
 * and, when the user has no SSH key, id_ed25519 and id_ed25519.pub.
 *
 * Needs qemu-system-x86_64, qemu-img and ssh-keygen in PATH, and
 * Linux 5.9 or later (close_range, pidfd). */
#ifndef NIDO_VM_H
#define NIDO_VM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fetch/config.h"

#define VM_NAME_MAX 63

struct vm_spec {
	const char *name;
	struct nido_config cfg;		/* memory, cpus, user, ssh_key, ports, network, accel */
	const char *tag;		/* catalog tag, recorded for display */
	const char *backing;		/* absolute path QEMU opens as the read-only base image */
	const char *backing_format;	/* "qcow2" or "raw": always passed to QEMU and qemu-img */
	const char *user_data;		/* the user's own user-data, or NULL for the default only */
	size_t user_data_len;
};

enum vm_run_state { VM_STOPPED, VM_BOOTING, VM_RUNNING, VM_FAILED };

struct vm_status {
	enum vm_run_state state;
	pid_t pid;			/* QEMU's pid when alive, else 0 */
	unsigned ssh_port;
	char accel[16];			/* "kvm" or "tcg" for the running QEMU */
	char detail[512];		/* e.g. the failure reason or the KVM fallback note */
};

/* Returns 1 when name is a valid VM name: letters, digits and '-', 1 to 63
 * characters, not starting with '-'. */
int vm_name_valid(const char *name);

/* Creates <home>/vms/NAME and boots it. All or nothing: on any failure no file,
 * port or process of the VM is left and the cause is in err.
 * -EEXIST, -EINVAL (bad name or values), -EIO or another -errno. */
int vm_create(const char *home, const struct vm_spec *spec, char *err, size_t errlen);

/* Starts a stopped VM again with its recorded config; -EALREADY if running. */
int vm_start(const char *home, const char *name, char *err, size_t errlen);

/* Stops a VM: ACPI power-down, then QMP quit after the config's stop_timeout,
 * then SIGKILL. With force, skips the power-down. Returns once QEMU has exited;
 * a VM that is already stopped returns 0. */
int vm_stop(const char *home, const char *name, int force, char *err, size_t errlen);

/* Stops the VM (forced) and removes its directory. */
int vm_destroy(const char *home, const char *name, char *err, size_t errlen);

/* Fills st with one of four states. booting: a start is in progress.
 * running: QEMU runs, though the guest may still be booting. stopped: stopped
 * by request, or the guest powered off. failed: the last start failed, or
 * QEMU reports an internal error or a guest panic. A live QEMU is asked over
 * QMP, so the call can take up to about 1 s. Takes no lock. Returns 0,
 * -EINVAL for an invalid name, -ENOENT when the VM does not exist, or -errno. */
int vm_status(const char *home, const char *name, struct vm_status *st);

/* Returns 1 while the QEMU of VM name runs, else 0; -EINVAL for an invalid
 * name, -ENOENT when the VM does not exist, or -errno. Reads only the pidfile
 * and /proc, so it is cheaper than vm_status. Takes no lock. */
int vm_running(const char *home, const char *name);

/* Returns 1 when an SSH server sends its banner on 127.0.0.1:port within
 * wait_ms milliseconds, else 0. QEMU accepts connections on a forwarded port
 * itself, so a connect alone proves nothing. */
int vm_ssh_answers(unsigned port, int wait_ms);

/* Writes text as <home>/vms/NAME/ready, only while the VM's QEMU runs and no
 * other operation (such as a stop) holds the VM directory's lock. Returns 0,
 * -EBUSY while the lock is held, -ESRCH when QEMU does not run, or -errno. */
int vm_ready_write(const char *home, const char *name, const char *text);

/* Formats st as one line, e.g. "running (tcg: kvm unusable: ...)". */
void vm_status_format(const struct vm_status *st, char *buf, size_t len);

/* Replaces a VM's `config` or `user-data` with text, only while the VM is
 * stopped and only when the text is valid: a config must parse and name a
 * usable SSH key, user-data must be at most 1 MiB. Edited user-data is the
 * user's own, which the guest gets after the default user-data; empty text
 * restores the default alone. Then rebuilds the seed; when its user-data
 * changed, the guest gets a fresh instance-id, so cloud-init runs again at
 * the next vm_start.
 * Returns 0, -EBUSY while QEMU runs, -EINVAL for invalid text, -EPERM for any
 * other file, -ENOENT when the VM does not exist, or -errno, with the cause
 * in err. */
int vm_edit_file(const char *home, const char *name, const char *file, const char *text, size_t len,
		 char *err, size_t errlen);

/* Lists VM names, sorted (malloc'd array of malloc'd strings; free with
 * vm_list_free). A missing <home>/vms gives an empty list. */
int vm_list(const char *home, char ***names, size_t *count);
void vm_list_free(char **names, size_t count);

#endif
