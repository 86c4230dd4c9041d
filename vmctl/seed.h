/* The NoCloud seed that cloud-init reads on first boot: an ISO 9660 image
 * with Rock Ridge and Joliet, volume label "cidata", holding user-data and
 * meta-data. meta-data is JSON, which YAML parsers accept:
 *   {"instance-id":"<name>-<16 hex digits>","local-hostname":"<name>"}
 * The default user-data is "#cloud-config\n" and one line of JSON creating
 * the user with sudo rights and the SSH key, and no password. When the user
 * gives their own user-data, the seed's user-data is a MIME multipart with
 * the default part first and the user's part second. Both parts carry a
 * Merge-Type header so that cloud-init appends lists such as users and
 * runcmd instead of letting the second part replace them.
 *
 * Files: <vmdir>/seed/user-data and <vmdir>/seed/meta-data are exactly what
 * the guest reads, and <vmdir>/seed.iso is built from that directory. */
#ifndef NIDO_SEED_H
#define NIDO_SEED_H

#include <stddef.h>

#define SEED_USER_DATA_MAX (1024 * 1024)
#define SEED_INSTANCE_ID_MAX 96
#define SEED_MERGE_TYPE "list(append)+dict(no_replace,recurse_list)+str()"

/* Returns 1 when name is a user name that useradd and cloud-init accept:
 * [a-z_][a-z0-9_-]*, at most 32 characters, and not root. */
int seed_valid_user(const char *name);

/* Writes a fresh instance id, "<name>-<16 hex digits from getrandom>". */
int seed_new_instance_id(const char *name, char *buf, size_t len);

/* Returns the meta-data text (malloc'd, caller frees), or NULL with errno. */
char *seed_meta_data(const char *name, const char *instance_id);

/* Returns the default user-data (malloc'd, caller frees), or NULL with errno
 * EINVAL for an invalid user name or public key. */
char *seed_default_user_data(const char *user, const char *public_key);

/* Returns the MIME type that cloud-init gives data by its start, e.g.
 * text/cloud-config for "#cloud-config", text/x-shellscript for "#!",
 * application/gzip for gzip data, and text/plain (cloud-init then decides)
 * for anything else. */
const char *seed_part_type(const char *data, size_t len);

/* Builds the seed's user-data into *out (malloc'd, caller frees) and its
 * length into *outlen: the default user-data alone when user_data is NULL,
 * else the MIME multipart. The output depends only on the inputs, so
 * comparing it with the previous seed shows whether user-data changed.
 * Returns 0, -EINVAL (bad user, key, or user-data over SEED_USER_DATA_MAX)
 * or -ENOMEM. */
int seed_user_data(const char *user, const char *public_key, const char *user_data,
		   size_t user_data_len, char **out, size_t *outlen);

/* Writes user-data and meta-data into <vmdir>/seed/ and builds
 * <vmdir>/seed.iso from the same bytes with libisofs (see seed_iso.h),
 * written to a temporary file and renamed into place. Returns 0 or -errno
 * with the cause in err. */
int seed_write_iso(const char *vmdir, const char *user_data, size_t user_data_len,
		   const char *meta_data, char *err, size_t errlen);

/* Brings the seed of the VM name up to date with <vmdir>/user-data, user and
 * public_key. An empty file, or one still equal to the previous seed's
 * default user-data, means the user has given none of their own. Then the
 * seed gets the default user-data alone, and the file becomes a copy of it
 * for the user to read and edit. Otherwise the seed gets the multipart of the
 * default and the file. When the seed's user-data changes, it is written
 * with a fresh instance-id and seed.iso is rebuilt. A missing seed.iso is
 * rebuilt with the same instance-id. Returns 0 or -errno with the cause in
 * err. */
int seed_refresh(const char *vmdir, const char *name, const char *user, const char *public_key,
		 char *err, size_t errlen);

#endif
