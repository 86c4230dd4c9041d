/* The files of the NoCloud seed: <vmdir>/seed/, seed.iso built with libisofs,
 * the meta-data link and the user-data copy; see seed.h. */
#include "vmctl/seed.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/files.h"
#include "vmctl/seed_iso.h"

static int write_seed_dir(const char *dir, const char *user_data, size_t user_data_len,
			  const char *meta_data, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(-rc));
		return rc;
	}
	rc = path_join(path, sizeof(path), dir, "user-data");
	if (rc == 0)
		rc = write_file_atomic(path, user_data, user_data_len, 0600);
	if (rc == 0)
		rc = path_join(path, sizeof(path), dir, "meta-data");
	if (rc == 0)
		rc = write_file_atomic(path, meta_data, strlen(meta_data), 0600);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-rc));
	return rc;
}

int seed_write_iso(const char *vmdir, const char *user_data, size_t user_data_len,
		   const char *meta_data, char *err, size_t errlen)
{
	const struct seed_iso_file files[] = {
		{ "user-data", user_data, user_data_len },
		{ "meta-data", meta_data, strlen(meta_data) },
	};
	char dir[PATH_MAX], iso[PATH_MAX], why[512];
	size_t len = 0;
	void *image = NULL;
	int rc;

	if (path_join(dir, sizeof(dir), vmdir, "seed") < 0 ||
	    path_join(iso, sizeof(iso), vmdir, "seed.iso") < 0) {
		snprintf(err, errlen, "%s: path too long for the seed", vmdir);
		return -ENAMETOOLONG;
	}
	rc = write_seed_dir(dir, user_data, user_data_len, meta_data, err, errlen);
	if (rc < 0)
		return rc;
	rc = seed_iso_build(files, sizeof(files) / sizeof(files[0]), &image, &len, why, sizeof(why));
	if (rc == 0) {
		rc = write_file_atomic(iso, image, len, 0600);
		if (rc < 0)
			snprintf(why, sizeof(why), "cannot write it: %s", strerror(-rc));
	}
	free(image);
	if (rc < 0)
		snprintf(err, errlen, "seed %s: cannot build the ISO: %s", iso, why);
	return rc;
}

/* Reads <dir>/<file> into *out; a missing file leaves *out NULL. */
static int read_optional(const char *dir, const char *file, size_t max, char **out, size_t *len)
{
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	*len = 0;
	rc = path_join(path, sizeof(path), dir, file);
	if (rc == 0)
		rc = read_file(path, max, out, len);
	return rc == -ENOENT ? 0 : rc;
}

static int iso_exists(const char *vmdir)
{
	char iso[PATH_MAX];

	return path_join(iso, sizeof(iso), vmdir, "seed.iso") == 0 && access(iso, F_OK) == 0;
}

/* Makes <vmdir>/meta-data a symbolic link to seed/meta-data, so that the
 * meta-data sits beside user-data, where the VM directory layout lists it. */
static int link_meta_data(const char *vmdir, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	rc = path_join(path, sizeof(path), vmdir, "meta-data");
	if (rc == 0 && symlink("seed/meta-data", path) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot link %s/meta-data: %s", name, vmdir, strerror(-rc));
	return rc;
}

static int rebuild(const char *vmdir, const char *name, const char *user_data, size_t len,
		   int new_instance, char *err, size_t errlen)
{
	char id[SEED_INSTANCE_ID_MAX], dir[PATH_MAX], *meta = NULL;
	size_t meta_len;
	int rc;

	rc = path_join(dir, sizeof(dir), vmdir, "seed");
	if (rc == 0 && !new_instance)
		rc = read_optional(dir, "meta-data", 4096, &meta, &meta_len);
	if (rc == 0 && !meta) {
		rc = seed_new_instance_id(name, id, sizeof(id));
		meta = rc == 0 ? seed_meta_data(name, id) : NULL;
		if (rc == 0 && !meta)
			rc = -errno;
	}
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot write the seed meta-data: %s", name, strerror(-rc));
		return rc;
	}
	rc = seed_write_iso(vmdir, user_data, len, meta, err, errlen);
	free(meta);
	if (rc == 0)
		rc = link_meta_data(vmdir, name, err, errlen);
	return rc;
}

/* Writes the default user-data to <vmdir>/user-data when it differs. */
static int mirror_default(const char *vmdir, const char *name, const char *mine, size_t mine_len,
			  const char *text, size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int rc;

	if (mine_len == len && memcmp(mine, text, len) == 0)
		return 0;
	rc = path_join(path, sizeof(path), vmdir, "user-data");
	if (rc == 0)
		rc = write_file_atomic(path, text, len, 0600);
	if (rc < 0)
		snprintf(err, errlen, "vm %s: cannot write %s/user-data: %s", name, vmdir, strerror(-rc));
	return rc;
}

int seed_refresh(const char *vmdir, const char *name, const char *user, const char *public_key,
		 char *err, size_t errlen)
{
	char *mine = NULL, *old = NULL, *combined = NULL, dir[PATH_MAX];
	size_t mine_len = 0, old_len = 0, combined_len = 0;
	int own, changed, rc;

	rc = read_optional(vmdir, "user-data", SEED_USER_DATA_MAX, &mine, &mine_len);
	if (rc == 0)
		rc = path_join(dir, sizeof(dir), vmdir, "seed");
	if (rc == 0)
		rc = read_optional(dir, "user-data", 2 * SEED_USER_DATA_MAX, &old, &old_len);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot read its user-data: %s", name,
			 rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
		goto out;
	}
	/* Empty user-data, or the unchanged copy of the previous seed's user-data,
	 * means the user has given none of their own. */
	own = mine_len > 0 && !(old && old_len == mine_len && memcmp(old, mine, mine_len) == 0);
	rc = seed_user_data(user, public_key, own ? mine : NULL, mine_len, &combined, &combined_len);
	if (rc < 0) {
		snprintf(err, errlen, "vm %s: cannot build the seed user-data: %s", name,
			 rc == -EINVAL ? "invalid user name or SSH public key" : strerror(-rc));
		goto out;
	}
	changed = !old || old_len != combined_len || memcmp(old, combined, combined_len) != 0;
	if (changed || !iso_exists(vmdir))
		rc = rebuild(vmdir, name, combined, combined_len, changed, err, errlen);
	if (rc == 0 && !own)
		rc = mirror_default(vmdir, name, mine, mine_len, combined, combined_len, err, errlen);
out:
	free(mine);
	free(old);
	free(combined);
	return rc;
}
