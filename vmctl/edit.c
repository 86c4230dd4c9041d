/* Editing a stopped VM's config or user-data: vm_edit_file of vm.h. */
#include "vmctl/vm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/seed.h"
#include "vmctl/sshkey.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

/* Returns -EBUSY with err set while the VM's QEMU runs. */
static int check_stopped(const char *name, const char *vmdir, char *err, size_t errlen)
{
	char pidfile[PATH_MAX];
	pid_t pid = 0;
	int rc;

	rc = vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile));
	if (rc == 0)
		rc = vmproc_find(pidfile, &pid);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot read %s: %s", name, pidfile, strerror(-rc));
		return rc;
	}
	if (pid > 0) {
		snprintf(err, errlen, "vm %s: running (QEMU pid %d); stop it before editing", name, (int)pid);
		return -EBUSY;
	}
	return 0;
}

/* Checks a new config: it must parse and name a usable SSH key. */
static int check_config(const char *home, const char *name, const char *text, size_t len,
			struct nido_config *cfg, struct ssh_key *key, char *err, size_t errlen)
{
	char why[512];
	int rc;

	config_defaults(cfg);
	rc = config_parse(cfg, text, len, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: invalid config: %s", name, why);
		return -EINVAL;
	}
	rc = sshkey_find(home, cfg, key, err, errlen);
	return rc == -ENOENT ? -EINVAL : rc;
}

static int write_vm_file(const char *name, const char *vmdir, const char *file, const char *text,
			 size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc = vmdir_file(vmdir, file, path, sizeof(path));

	if (rc == 0)
		rc = write_file_atomic(path, text, len, 0600);
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot write %s/%s: %s", name, vmdir, file, strerror(-rc));
	return rc;
}

static int edit_locked(const char *home, const char *name, const char *vmdir, const char *file,
		       const char *text, size_t len, struct ssh_key *key, char *err, size_t errlen)
{
	struct nido_config cfg;
	int rc;

	if (strcmp(file, "config") == 0) {
		rc = check_config(home, name, text, len, &cfg, key, err, errlen);
	} else if (strcmp(file, "user-data") == 0) {
		rc = vmdir_load_config(vmdir, name, &cfg, err, errlen);
		if (rc == 0 && len > SEED_USER_DATA_MAX) {
			snprintf(err, errlen, "vm %s: user-data is larger than 1 MiB", name);
			rc = -EINVAL;
		}
		if (rc == 0)
			rc = sshkey_find(home, &cfg, key, err, errlen);
	} else {
		snprintf(err, errlen, "vm %s: %s cannot be edited; only config and user-data can", name, file);
		return -EPERM;
	}
	if (rc == 0)
		rc = write_vm_file(name, vmdir, file, text, len, err, errlen);
	if (rc == 0)
		rc = seed_refresh(vmdir, name, cfg.user, key->public_key, err, errlen);
	return rc;
}

int vm_edit_file(const char *home, const char *name, const char *file, const char *text, size_t len,
		 char *err, size_t errlen)
{
	char vmdir[PATH_MAX];
	struct ssh_key *key;
	int lock_fd, rc;

	rc = vmdir_lock_existing(home, name, vmdir, sizeof(vmdir), &lock_fd, err, errlen);
	if (rc < 0)
		return rc;
	key = malloc(sizeof(*key));
	rc = key ? check_stopped(name, vmdir, err, errlen) : -ENOMEM;
	if (rc == -ENOMEM)
		snprintf(err, errlen, "vm %s: out of memory", name);
	if (rc == 0)
		rc = edit_locked(home, name, vmdir, file, text, len, key, err, errlen);
	if (rc == 0)
		log_info("vm %s: %s replaced", name, file);
	free(key);
	vmdir_unlock(lock_fd);
	return rc;
}
