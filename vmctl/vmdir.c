/* Paths, lock and state file of a VM directory; see vmdir.h. */
#include "vmctl/vmdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fetch/config.h"
#include "fetch/files.h"

#define STATE_FILE_MAX 4096

static const char *const state_names[] = {
	[VM_STOPPED] = "stopped",
	[VM_BOOTING] = "booting",
	[VM_RUNNING] = "running",
	[VM_FAILED] = "failed",
};

const char *vmdir_state_name(enum vm_run_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

int vmdir_root(const char *home, char *buf, size_t len)
{
	char real[PATH_MAX];

	if (!realpath(home, real))
		return -errno;
	return path_join(buf, len, real, "vms");
}

int vmdir_path(const char *home, const char *name, char *buf, size_t len)
{
	char root[PATH_MAX];
	int rc = vmdir_root(home, root, sizeof(root));

	if (rc < 0)
		return rc;
	return path_join(buf, len, root, name);
}

int vmdir_file(const char *vmdir, const char *file, char *buf, size_t len)
{
	return path_join(buf, len, vmdir, file);
}

int vmdir_lock(const char *vmdir, int *fd)
{
	int dirfd = open(vmdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd < 0)
		return -errno;
	while (flock(dirfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int rc = -errno;

			close(dirfd);
			return rc;
		}
	}
	*fd = dirfd;
	return 0;
}

void vmdir_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int parse_state(const char *value, enum vm_run_state *state)
{
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++) {
		if (strcmp(value, state_names[i]) == 0) {
			*state = (enum vm_run_state)i;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Applies one `key = value` line to rec; blank and unknown lines are skipped. */
static int parse_state_line(char *line, struct vm_record *rec)
{
	char *eq = strstr(line, " = ");

	if (!eq)
		return 0;
	*eq = '\0';
	if (strcmp(line, "state") == 0)
		return parse_state(eq + 3, &rec->state);
	if (strcmp(line, "accel") == 0)
		snprintf(rec->accel, sizeof(rec->accel), "%s", eq + 3);
	else if (strcmp(line, "detail") == 0)
		snprintf(rec->detail, sizeof(rec->detail), "%s", eq + 3);
	return 0;
}

int vmdir_load_state(const char *vmdir, struct vm_record *rec)
{
	struct vm_record next = { .state = VM_STOPPED };
	char path[PATH_MAX], *text, *line, *save = NULL;
	int rc;

	rc = vmdir_file(vmdir, "state", path, sizeof(path));
	if (rc < 0)
		return rc;
	rc = read_file(path, STATE_FILE_MAX, &text, NULL);
	if (rc == -ENOENT) {
		*rec = next;
		return 0;
	}
	if (rc < 0)
		return rc;
	for (line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save))
		rc = parse_state_line(line, &next);
	free(text);
	if (rc == 0)
		*rec = next;
	return rc;
}

static void copy_one_line(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

int vmdir_save_state(const char *vmdir, const struct vm_record *rec)
{
	char path[PATH_MAX], accel[sizeof(rec->accel)], detail[sizeof(rec->detail)];
	char text[STATE_FILE_MAX];
	int rc, n;

	rc = vmdir_file(vmdir, "state", path, sizeof(path));
	if (rc < 0)
		return rc;
	copy_one_line(accel, sizeof(accel), rec->accel);
	copy_one_line(detail, sizeof(detail), rec->detail);
	n = snprintf(text, sizeof(text), "state = %s\naccel = %s\ndetail = %s\n",
		     vmdir_state_name(rec->state), accel, detail);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EOVERFLOW;
	return write_file_atomic(path, text, (size_t)n, 0600);
}

int vmdir_load_config(const char *vmdir, const char *name, struct nido_config *cfg,
			  char *err, size_t errlen)
{
	char path[PATH_MAX], why[512];
	int rc;

	config_defaults(cfg);
	rc = vmdir_file(vmdir, "config", path, sizeof(path));
	if (rc == 0 && access(path, F_OK) < 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot read %s/config: %s", name, vmdir, strerror(-rc));
		return rc;
	}
	rc = config_load(path, cfg, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "vm %s: %s", name, why);
	return rc;
}

int vmdir_lock_existing(const char *home, const char *name, char *vmdir, size_t len, int *lock_fd,
			 char *err, size_t errlen)
{
	int rc;

	if (!vm_name_valid(name)) {
		snprintf(err, errlen, "vm name '%s' is invalid: expected 1 to 63 letters, digits or '-', "
			 "not starting with '-'", name);
		return -EINVAL;
	}
	rc = vmdir_path(home, name, vmdir, len);
	if (rc == 0)
		rc = vmdir_lock(vmdir, lock_fd);
	if (rc == -ENOENT)
		snprintf(err, errlen, "vm %s: not found", name);
	else if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot lock its directory: %s", name, strerror(-rc));
	return rc;
}
