/* The vms/ part of the tree: each VM directory shows files of the VM's state
 * directory (<home>/vms/NAME), a generated `state`, and a write-only `ctl`. */
#include "fs/vmfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "fetch/packed.h"
#include "fs/fs.h"
#include "fs/inval.h"
#include "fs/text.h"
#include "vmctl/inspect.h"
#include "vmctl/seed.h"
#include "vmctl/vm.h"

enum vm_file_kind { VMF_STATE, VMF_READ, VMF_EDIT, VMF_CTL };

struct vm_file {
	const char *name;	/* name in the mount */
	const char *backing;	/* name in the state directory */
	enum vm_file_kind kind;
	int optional;		/* shown only while the backing file exists */
};

static const struct vm_file vm_files[] = {
	{ "state", NULL, VMF_STATE, 0 },
	{ "ctl", NULL, VMF_CTL, 0 },
	{ "console", "console.log", VMF_READ, 0 },
	{ "qemu.log", "qemu.log", VMF_READ, 1 },
	{ "ssh", "ssh", VMF_READ, 0 },
	{ "config", "config", VMF_EDIT, 0 },
	{ "image", "image", VMF_READ, 0 },
	{ "user-data", "user-data", VMF_EDIT, 0 },
	{ "meta-data", "meta-data", VMF_READ, 0 },
	{ "disk.qcow2", "disk.qcow2", VMF_READ, 0 },
	{ "ready", "ready", VMF_READ, 1 },
};

#define NFILES (sizeof(vm_files) / sizeof(vm_files[0]))

static int vm_path(const char *vm, const char *file, char *buf, size_t len)
{
	int n = file ? snprintf(buf, len, "%s/vms/%s/%s", fs.home, vm, file)
		     : snprintf(buf, len, "%s/vms/%s", fs.home, vm);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static const struct vm_file *find_file(const char *vm, const char *name)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < NFILES; i++) {
		if (strcmp(vm_files[i].name, name) != 0)
			continue;
		if (vm_files[i].optional &&
		    (vm_path(vm, vm_files[i].backing, path, sizeof(path)) < 0 || access(path, F_OK) < 0))
			return NULL;
		return &vm_files[i];
	}
	return NULL;
}

int vmfs_file_exists(const char *vm, const char *file)
{
	return find_file(vm, file) != NULL;
}

int vmfs_list(const char *vm, name_fill_fn fill, void *buf)
{
	for (size_t i = 0; i < NFILES; i++)
		if (find_file(vm, vm_files[i].name))
			fill(buf, vm_files[i].name);
	return 0;
}

static char *state_text(const char *vm, size_t *len)
{
	struct vm_status st;
	char line[700];
	int rc = vm_status(fs.home, vm, &st);

	if (rc < 0)
		snprintf(line, sizeof(line), "unknown: %s\n", strerror(-rc));
	else {
		vm_status_format(&st, line, sizeof(line) - 1);
		strcat(line, "\n");
	}
	*len = strlen(line);
	return strdup(line);
}

int vmfs_getattr(const char *vm, const char *file, struct stat *st)
{
	const struct vm_file *f = find_file(vm, file);
	char path[PATH_MAX];
	struct stat real;
	size_t len;
	char *text;

	if (!f)
		return -ENOENT;
	st->st_mode = S_IFREG | (f->kind == VMF_CTL ? 0200 : f->kind == VMF_EDIT ? 0600 : 0400);
	st->st_nlink = 1;
	if (f->kind == VMF_STATE) {
		text = state_text(vm, &len);
		st->st_size = text ? (off_t)len : 0;
		free(text);
		return 0;
	}
	if (f->kind == VMF_CTL)
		return 0;
	if (vm_path(vm, f->backing, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if (stat(path, &real) < 0)
		return errno == ENOENT ? 0 : -errno; /* e.g. no console output yet */
	st->st_size = real.st_size;
	st->st_blocks = real.st_blocks;
	st->st_mtim = real.st_mtim;
	st->st_ctim = real.st_ctim;
	st->st_atim = real.st_atim;
	return 0;
}

int vmfs_open(const char *vm, const char *file, int flags, struct handle **out)
{
	const struct vm_file *f = find_file(vm, file);
	int acc = flags & O_ACCMODE;
	char path[PATH_MAX];
	struct handle *h;

	if (!f)
		return -ENOENT;
	if ((f->kind == VMF_CTL && acc != O_WRONLY) || ((f->kind == VMF_READ || f->kind == VMF_STATE) && acc != O_RDONLY))
		return -EACCES;
	if (vm_path(vm, f->backing, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	/* Rejected here and again at close, because a shell ignores the result
	 * of close(2), so `echo ... > config` would otherwise seem to succeed. */
	if (f->kind == VMF_EDIT && acc != O_RDONLY && vm_running(fs.home, vm) == 1) {
		log_warnx("vms/%s/%s: not opened for writing: the VM is running; stop it before editing",
			  vm, file);
		return -EBUSY;
	}
	h = handle_new(f->kind == VMF_STATE ? HANDLE_TEXT : f->kind == VMF_CTL ? HANDLE_CTL :
		       acc == O_RDONLY ? HANDLE_FD : HANDLE_EDIT);
	if (!h)
		return -ENOMEM;
	snprintf(h->vm, sizeof(h->vm), "%s", vm);
	if (h->kind == HANDLE_TEXT && !(h->text = state_text(vm, &h->len))) {
		handle_free(h);
		return -ENOMEM;
	}
	if (h->kind == HANDLE_FD && (h->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int rc = -errno;

		handle_free(h);
		return rc;
	}
	if (h->kind == HANDLE_EDIT) {
		snprintf(h->target, sizeof(h->target), "%s", path);
		if (flags & O_TRUNC)
			h->dirty = 1; /* `: > user-data` empties the file even without a write */
		else if (read_file(path, SEED_USER_DATA_MAX, &h->text, &h->len) < 0)
			h->len = 0;
	}
	*out = h;
	return 0;
}

/* Saves an edited VM file: only while the VM is stopped, and only when valid. */
int vmfs_release(struct handle *h)
{
	const char *file = strrchr(h->target, '/') + 1;
	char err[512] = "";
	int rc;

	if (!h->dirty)
		return 0;
	rc = vm_edit_file(fs.home, h->vm, file, h->text ? h->text : "", h->len, err, sizeof(err));
	if (rc < 0)
		log_warnx("vms/%s/%s: edit rejected: %s", h->vm, file, err);
	return rc;
}

int vmfs_write_ctl(struct handle *h, const char *data, size_t size)
{
	char cmd[32], err[512] = "";
	size_t n = size;
	int rc;

	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == ' '))
		n--;
	if (n == 0 || n >= sizeof(cmd))
		return -EINVAL;
	memcpy(cmd, data, n);
	cmd[n] = '\0';
	if (strcmp(cmd, "start") == 0)
		rc = vm_start(fs.home, h->vm, err, sizeof(err));
	else if (strcmp(cmd, "stop") == 0)
		rc = vm_stop(fs.home, h->vm, 0, err, sizeof(err));
	else if (strcmp(cmd, "kill") == 0)
		rc = vm_stop(fs.home, h->vm, 1, err, sizeof(err));
	else if (strcmp(cmd, "restart") == 0) {
		rc = vm_stop(fs.home, h->vm, 0, err, sizeof(err));
		if (rc == 0)
			rc = vm_start(fs.home, h->vm, err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "unknown command '%s': expected start, stop, restart or kill", cmd);
		rc = -EINVAL;
	}
	/* vm_stop removed the ready file; the kernel may still hold its attributes. */
	if (strcmp(cmd, "start") != 0)
		inval_vm_file(h->vm, "ready");
	if (rc < 0) {
		log_warnx("vms/%s/ctl: %s failed: %s", h->vm, cmd, err);
		return rc;
	}
	return (int)size;
}

/* The path QEMU opens as the base image: the verified cache file when the
 * image is complete, else its content-named entry in images/ (read lazily). */
static int backing_path(const struct cat_version *v, char *buf, size_t len)
{
	char entry[256], err[512];
	int rc;

	if (!cat_version_lazy(v)) {
		rc = packed_ensure(fs.cache, v, fs_request_cancelled, buf, len, err, sizeof(err));
		if (rc < 0)
			log_warnx("%s:%s: %s", v->image->name, v->version, err);
		return rc == -ECANCELED ? -EINTR : rc;
	}
	if (cache_complete_path(fs.cache, v, buf, len) == 0)
		return 0;
	cache_version_entry_name(v, entry, sizeof(entry));
	if (snprintf(buf, len, "%s/images/%s", fs.mountpoint, entry) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

/* Finds, checks and inspects the base image of v; fs.lock held for reading. */
static int prepare_backing(const struct cat_version *v, const char *tag, char *backing, size_t len,
			   char *err, size_t errlen)
{
	int rc;

	if (!cat_version_arch_ok(v)) {
		snprintf(err, errlen, "image %s is built for %s; VMs here run x86_64 guests", tag, v->arch);
		return -EINVAL;
	}
	if ((rc = backing_path(v, backing, len)) < 0) {
		snprintf(err, errlen, "image %s: no usable base image: %s", tag, strerror(-rc));
		return rc;
	}
	if ((rc = image_inspect(backing, v->format, err, errlen)) < 0)
		text_note_refusal(v, err);
	return rc;
}

/* The catalog stays read-locked while the VM is made: a reload waits, reads
 * go on (glibc's rwlock prefers readers). */
static int create_from_config(const char *name, const struct nido_config *cfg, char *err, size_t errlen)
{
	const struct cat_version *v;
	struct vm_spec spec = { .name = name, .cfg = *cfg, .tag = cfg->image };
	char backing[PATH_MAX];
	int rc;

	pthread_rwlock_rdlock(&fs.lock);
	v = catalog_resolve(fs.cat, cfg->image);
	if (!v) {
		snprintf(err, errlen, "image %s: %s in catalog %s", cfg->image,
			 errno == EINVAL ? "invalid tag" : "not found", fs.cat->source);
		rc = -ENOENT;
	} else if ((rc = prepare_backing(v, cfg->image, backing, sizeof(backing), err, errlen)) == 0) {
		spec.backing = backing;
		spec.backing_format = v->format;
		rc = vm_create(fs.home, &spec, err, errlen);
	}
	pthread_rwlock_unlock(&fs.lock);
	return rc;
}

int vmfs_create(const char *name)
{
	struct nido_config cfg;
	char path[PATH_MAX], err[1024] = "";
	int rc;

	if (!vm_name_valid(name)) {
		char quoted[160];

		log_warnx("vms/%s: invalid VM name: use 1-63 letters, digits and '-', not starting with '-'",
			  log_escape(name, quoted, sizeof(quoted)));
		return -EINVAL;
	}
	config_defaults(&cfg);
	fs_config_path(path, sizeof(path));
	if ((rc = config_load(path, &cfg, err, sizeof(err))) < 0) {
		log_warnx("vms/%s: cannot create: %s", name, err);
		return -EINVAL;
	}
	rc = create_from_config(name, &cfg, err, sizeof(err));
	if (rc < 0)
		log_warnx("vms/%s: cannot create: %s", name, err);
	else
		log_info("vms/%s: created from %s", name, cfg.image);
	return rc;
}

int vmfs_remove(const char *name)
{
	char err[1024] = "";
	int rc = vm_destroy(fs.home, name, err, sizeof(err));

	if (rc < 0)
		log_warnx("vms/%s: cannot remove: %s", name, err);
	else
		log_info("vms/%s: removed", name);
	return rc;
}
