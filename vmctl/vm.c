/* Creating, starting and listing VMs: the entry points of vm.h that set up a
 * VM directory. Stopping and destroying are in stop.c, status in status.c. */
#include "vmctl/vm.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/boot.h"
#include "vmctl/qemu.h"
#include "vmctl/qmp.h"
#include "vmctl/rebase.h"
#include "vmctl/seed.h"
#include "vmctl/spawn.h"
#include "vmctl/sshkey.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

#define QEMU_IMG_TIMEOUT_MS 120000

int vm_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > VM_NAME_MAX || name[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

static int has_control_chars(const char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return 1;
	return 0;
}

/* Checks what the config parser cannot, because spec->cfg may come from code. */
static int validate_spec(const struct vm_spec *spec, char *err, size_t errlen)
{
	const struct nido_config *cfg = &spec->cfg;
	const char *problem = NULL;

	if (!spec->name || !vm_name_valid(spec->name))
		problem = "name: expected 1 to 63 letters, digits or '-', not starting with '-'";
	else if (!spec->backing || spec->backing[0] != '/' || has_control_chars(spec->backing))
		problem = "backing image: expected an absolute path";
	else if (!spec->backing_format || (strcmp(spec->backing_format, "qcow2") && strcmp(spec->backing_format, "raw")))
		problem = "backing format: expected qcow2 or raw";
	else if (!spec->tag || !spec->tag[0] || has_control_chars(spec->tag) || strlen(spec->tag) >= sizeof(cfg->image))
		problem = "image tag: expected a short line of text";
	else if (!seed_valid_user(cfg->user))
		problem = "user: expected [a-z_][a-z0-9_-]*, at most 32 characters, not root";
	else if (cfg->memory_mb < 64 || cfg->cpus < 1 || cfg->stop_timeout < 1)
		problem = "memory, cpus or stop_timeout: expected at least 64 MiB, 1 CPU and 1 second";
	else if (cfg->port_min < 1024 || cfg->port_min > cfg->port_max || cfg->port_max > 65535)
		problem = "port range: expected MIN-MAX with 1024 <= MIN <= MAX <= 65535";
	else if (spec->user_data && spec->user_data_len > SEED_USER_DATA_MAX)
		problem = "user-data: larger than 1 MiB";
	if (!problem)
		return 0;
	/* An invalid name is not printed, since it may contain control characters. */
	if (spec->name && vm_name_valid(spec->name))
		snprintf(err, errlen, "vm %s: invalid %s", spec->name, problem);
	else
		snprintf(err, errlen, "invalid VM %s", problem);
	return -EINVAL;
}

/* Creates <home>/vms/NAME; -EEXIST when it exists. The QMP socket path is
 * checked first because a home too deep for sun_path fails every VM. */
static int make_vm_dir(const char *home, const char *name, char *vmdir, size_t len,
		       char *err, size_t errlen)
{
	char root[PATH_MAX], sock[PATH_MAX];
	int rc;

	rc = mkdir_p(home, 0700);
	if (rc == 0)
		rc = vmdir_root(home, root, sizeof(root));
	if (rc == 0)
		rc = mkdir_p(root, 0700);
	if (rc == 0)
		rc = vmdir_path(home, name, vmdir, len);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot create the VM directory under %s: %s", name, home, strerror(-rc));
		return rc;
	}
	if (vmdir_file(vmdir, "qmp.sock", sock, sizeof(sock)) < 0 || qmp_check_socket_path(sock) < 0) {
		snprintf(err, errlen, "vm %s: the QMP socket path %s/qmp.sock is longer than a unix "
			 "socket allows (107 bytes); set NIDO_HOME to a shorter directory", name, vmdir);
		return -ENAMETOOLONG;
	}
	if (mkdir(vmdir, 0700) < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			snprintf(err, errlen, "vm %s: already exists", name);
		else
			snprintf(err, errlen, "vm %s: cannot create %s: %s", name, vmdir, strerror(-rc));
		return rc;
	}
	return 0;
}

static int write_in_vm(const char *vmdir, const char *file, const void *data, size_t len,
		       const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc = vmdir_file(vmdir, file, path, sizeof(path));

	if (rc == 0)
		rc = write_file_atomic(path, data, len, 0600);
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot write %s/%s: %s", name, vmdir, file, strerror(-rc));
	return rc;
}

/* Writes the image tag, the user's own user-data and the config. The config
 * gets its SSH port when QEMU starts. */
static int write_vm_files(const char *vmdir, const struct vm_spec *spec, struct nido_config *cfg,
			  char *err, size_t errlen)
{
	char tag[sizeof(cfg->image) + 1], path[PATH_MAX];
	int rc;

	*cfg = spec->cfg;
	snprintf(cfg->image, sizeof(cfg->image), "%s", spec->tag);
	cfg->ssh_port = 0;
	snprintf(tag, sizeof(tag), "%s\n", spec->tag);
	rc = write_in_vm(vmdir, "image", tag, strlen(tag), spec->name, err, errlen);
	/* An empty user-data file stands for none, and can be edited later. */
	if (rc == 0)
		rc = write_in_vm(vmdir, "user-data", spec->user_data ? spec->user_data : "",
				 spec->user_data ? spec->user_data_len : 0, spec->name, err, errlen);
	if (rc < 0)
		return rc;
	rc = vmdir_file(vmdir, "config", path, sizeof(path));
	if (rc == 0)
		rc = config_save(path, cfg);
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot write %s/config: %s", spec->name, vmdir, strerror(-rc));
	return rc;
}

/* Creates disk.qcow2 on top of the backing image with qemu-img. -b and -F
 * take plain values, so the paths are not comma-escaped. */
static int create_overlay(const char *vmdir, const struct vm_spec *spec, char *err, size_t errlen)
{
	char disk[PATH_MAX], why[512];
	const char *argv[] = { QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", spec->backing_format,
			       "-b", spec->backing, disk, NULL };
	int rc;

	rc = vmdir_file(vmdir, "disk.qcow2", disk, sizeof(disk));
	if (rc == 0)
		rc = spawn_run(argv, -1, -1, QEMU_IMG_TIMEOUT_MS, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", strerror(-rc));
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot create the overlay on %s: %s", spec->name,
			 spec->backing, why);
	return rc;
}

static int prepare_and_boot(const char *home, const char *vmdir, const struct vm_spec *spec,
			    char *err, size_t errlen)
{
	struct nido_config cfg;
	struct ssh_key *key;
	int rc;

	key = malloc(sizeof(*key));
	if (!key) {
		snprintf(err, errlen, "vm %s: out of memory", spec->name);
		return -ENOMEM;
	}
	rc = write_vm_files(vmdir, spec, &cfg, err, errlen);
	if (rc == 0)
		rc = sshkey_find(home, &cfg, key, err, errlen);
	if (rc == 0)
		rc = create_overlay(vmdir, spec, err, errlen);
	if (rc == 0)
		rc = seed_refresh(vmdir, spec->name, cfg.user, key->public_key, err, errlen);
	if (rc == 0)
		rc = boot_vm(home, spec->name, vmdir, &cfg, key->private_path, err, errlen);
	free(key);
	return rc;
}

int vm_create(const char *home, const struct vm_spec *spec, char *err, size_t errlen)
{
	char vmdir[PATH_MAX];
	int lock_fd, rc, rm_rc;

	rc = validate_spec(spec, err, errlen);
	if (rc == 0)
		rc = make_vm_dir(home, spec->name, vmdir, sizeof(vmdir), err, errlen);
	if (rc < 0)
		return rc;
	rc = vmdir_lock(vmdir, &lock_fd);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot lock %s: %s", spec->name, vmdir, strerror(-rc));
		rmdir(vmdir);
		return rc;
	}
	log_info("vm %s: creating from %s", spec->name, spec->tag);
	rc = prepare_and_boot(home, vmdir, spec, err, errlen);
	if (rc < 0) {
		/* boot_vm leaves no QEMU behind, so removing the files undoes it all. */
		rm_rc = remove_tree(vmdir);
		if (rm_rc < 0)
			log_warnx("vm %s: cannot remove %s after the failed create: %s", spec->name,
				  vmdir, strerror(-rm_rc));
	}
	vmdir_unlock(lock_fd);
	return rc;
}

static int start_locked(const char *home, const char *name, const char *vmdir, char *err, size_t errlen)
{
	struct nido_config cfg;
	struct ssh_key *key;
	char pidfile[PATH_MAX];
	pid_t pid;
	int rc;

	rc = vmdir_file(vmdir, "qemu.pid", pidfile, sizeof(pidfile));
	if (rc == 0)
		rc = vmproc_find(pidfile, &pid);
	if (rc == 0 && pid > 0) {
		snprintf(err, errlen, "vm %s: already running (QEMU pid %d)", name, (int)pid);
		return -EALREADY;
	}
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot read %s: %s", name, pidfile, strerror(-rc));
		return rc;
	}
	rc = vmdir_load_config(vmdir, name, &cfg, err, errlen);
	if (rc < 0)
		return rc;
	/* A fully cached base image frees the VM from the mount. */
	if (vm_prefer_cached_base(home, vmdir, err, errlen) < 0)
		log_warnx("vm %s: base image stays on the mount: %s", name, err);
	rc = vm_check_base(name, vmdir, cfg.image, err, errlen);
	if (rc < 0)
		return rc;
	key = malloc(sizeof(*key));
	if (!key) {
		snprintf(err, errlen, "vm %s: out of memory", name);
		return -ENOMEM;
	}
	rc = sshkey_find(home, &cfg, key, err, errlen);
	if (rc == 0)
		rc = seed_refresh(vmdir, name, cfg.user, key->public_key, err, errlen);
	if (rc == 0)
		rc = boot_vm(home, name, vmdir, &cfg, key->private_path, err, errlen);
	free(key);
	return rc;
}

int vm_start(const char *home, const char *name, char *err, size_t errlen)
{
	char vmdir[PATH_MAX];
	int lock_fd, rc;

	rc = vmdir_lock_existing(home, name, vmdir, sizeof(vmdir), &lock_fd, err, errlen);
	if (rc < 0)
		return rc;
	rc = start_locked(home, name, vmdir, err, errlen);
	vmdir_unlock(lock_fd);
	return rc;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_directory(const char *root, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	return path_join(path, sizeof(path), root, name) == 0 && lstat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

static int append_name(char ***names, size_t *count, size_t *cap, const char *name)
{
	char **grown;

	if (*count == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		grown = realloc(*names, *cap * sizeof(**names));
		if (!grown)
			return -ENOMEM;
		*names = grown;
	}
	(*names)[*count] = strdup(name);
	if (!(*names)[*count])
		return -ENOMEM;
	(*count)++;
	return 0;
}

int vm_list(const char *home, char ***names, size_t *count)
{
	char root[PATH_MAX], **found = NULL;
	size_t n = 0, cap = 0;
	struct dirent *entry;
	DIR *dir;
	int rc;

	rc = vmdir_root(home, root, sizeof(root));
	dir = rc == 0 ? opendir(root) : NULL;
	if (!dir) {
		rc = rc < 0 ? rc : -errno;
		if (rc != -ENOENT)
			return rc;
		*names = NULL;
		*count = 0;
		return 0;
	}
	while (rc == 0 && (entry = readdir(dir)))
		if (vm_name_valid(entry->d_name) && is_directory(root, entry->d_name))
			rc = append_name(&found, &n, &cap, entry->d_name);
	closedir(dir);
	if (rc < 0) {
		vm_list_free(found, n);
		return rc;
	}
	/* found is NULL when the directory has no VM, and qsort requires a valid pointer. */
	if (n > 0)
		qsort(found, n, sizeof(*found), compare_names);
	*names = found;
	*count = n;
	return 0;
}

void vm_list_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}
