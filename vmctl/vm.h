/* VM control: the state directory of each VM under <home>/vms/NAME, its qcow2
 * overlay, its cloud-init seed and its QEMU process. Used by the FUSE daemon
 * (mkdir/rmdir/ctl in vms/) and by the `nido` command; both see the same state
 * because everything lives on disk.
 *
 * A VM directory holds: config (struct nido_config text, with ssh_port set),
 * image (the tag), disk.qcow2 (overlay), seed.iso, user-data, meta-data,
 * console.log, qemu.log (QEMU's stderr), qemu.pid, qmp.sock, ssh (login command),
 * state (the last recorded state). */
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
 * then SIGKILL. With force, skips the power-down. Returns once QEMU has exited. */
int vm_stop(const char *home, const char *name, int force, char *err, size_t errlen);

/* Stops the VM (forced) and removes its directory. */
int vm_destroy(const char *home, const char *name, char *err, size_t errlen);

int vm_status(const char *home, const char *name, struct vm_status *st);

/* Formats st as one line, e.g. "running (tcg: kvm unusable: ...)". */
void vm_status_format(const struct vm_status *st, char *buf, size_t len);

/* Lists VM names (malloc'd array of malloc'd strings; free with vm_list_free). */
int vm_list(const char *home, char ***names, size_t *count);
void vm_list_free(char **names, size_t count);

/* Replaces a VM's `config` or `user-data` with text, only while the VM is
 * stopped and only when the text is valid; a new user-data gets a new
 * instance-id and seed. -EBUSY while running, -EINVAL with the cause in err. */
int vm_edit_file(const char *home, const char *name, const char *file, const char *text,
		 size_t len, char *err, size_t errlen);

#endif
