/* The state directory of one VM, <home>/vms/NAME: the paths of its files, the
 * lock that serialises operations on it, and its state file.
 *
 * The state file ("state") contains `key = value` lines:
 *   state  = stopped | booting | running | failed
 *   accel  = kvm | tcg        (the accelerator of the last start)
 *   detail = one line          (failure reason or KVM fallback note)
 * Unknown keys are ignored, so later versions may add some. */
#ifndef NIDO_VMDIR_H
#define NIDO_VMDIR_H

#include <stddef.h>

#include "fetch/config.h"
#include "vmctl/vm.h"

struct vm_record {
	enum vm_run_state state;
	char accel[16];
	char detail[512];
};

/* Writes the directory of all VMs, <home>/vms, into buf. home is resolved
 * with realpath(3) so that the daemon and the nido command build the same
 * paths, which the pidfile check in /proc compares byte for byte.
 * Returns 0, -ENOENT when home does not exist, or -ENAMETOOLONG. */
int vmdir_root(const char *home, char *buf, size_t len);

/* Writes <home>/vms/NAME into buf, with home resolved as in vmdir_root. */
int vmdir_path(const char *home, const char *name, char *buf, size_t len);

/* Writes <vmdir>/<file> into buf; -ENAMETOOLONG when it does not fit. */
int vmdir_file(const char *vmdir, const char *file, char *buf, size_t len);

/* Takes an exclusive flock(2) on the VM directory, waiting for other holders,
 * and stores the descriptor to pass to vmdir_unlock in *fd. */
int vmdir_lock(const char *vmdir, int *fd);
void vmdir_unlock(int fd);

/* Checks name, then opens and locks the directory of the existing VM name
 * (as vmdir_lock) and writes its path into vmdir. Returns 0, -EINVAL for an
 * invalid name, -ENOENT when the VM does not exist, or -errno, with the cause
 * in err. */
int vmdir_lock_existing(const char *home, const char *name, char *vmdir, size_t len, int *lock_fd,
			char *err, size_t errlen);

/* Loads <vmdir>/config over the defaults. A VM directory without a config is
 * broken, so a missing file is an error here (-ENOENT), with the cause in err. */
int vmdir_load_config(const char *vmdir, const char *name, struct nido_config *cfg,
		      char *err, size_t errlen);

/* Loads the state file; a missing file yields VM_STOPPED with no detail.
 * Returns 0, -EBADMSG for an unknown state, or -errno. */
int vmdir_load_state(const char *vmdir, struct vm_record *rec);

/* Writes the state file atomically. Control characters in the detail are
 * replaced by '?', so that it stays one line. */
int vmdir_save_state(const char *vmdir, const struct vm_record *rec);

/* Returns the state's name as written in the state file and in status lines. */
const char *vmdir_state_name(enum vm_run_state state);

#endif
