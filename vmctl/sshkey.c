/* Finding or creating the SSH key pair for VMs; see sshkey.h. */
#include "vmctl/sshkey.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/spawn.h"

#define KEYGEN_TIMEOUT_MS 30000

static const char *const user_keys[] = { "id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub" };

static int valid_type(const char *type, size_t len)
{
	static const char *const prefixes[] = { "ssh-", "ecdsa-", "sk-" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (len > strlen(prefixes[i]) && strncmp(type, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

int sshkey_valid_public(const char *line)
{
	const char *blob, *p;
	size_t blob_len;

	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	blob = strchr(line, ' ');
	if (!blob || !valid_type(line, (size_t)(blob - line)))
		return 0;
	blob++;
	blob_len = strcspn(blob, " ");
	if (blob_len < 16)
		return 0;
	for (p = blob; p < blob + blob_len; p++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", *p))
			return 0;
	return 1;
}

/* Reads the first line of the public key file at path into key. */
static int read_public(const char *path, struct ssh_key *key, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = read_file(path, SSH_PUBLIC_KEY_MAX - 1, &text, &len);

	if (rc < 0) {
		snprintf(err, errlen, "SSH public key %s: cannot read: %s", path,
			 rc == -EFBIG ? "larger than 16 KiB" : strerror(-rc));
		return rc;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if (!sshkey_valid_public(text)) {
		snprintf(err, errlen, "SSH public key %s: not an OpenSSH public key line", path);
		free(text);
		return -EINVAL;
	}
	snprintf(key->public_key, sizeof(key->public_key), "%s", text);
	free(text);
	return 0;
}

static const char *user_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && home[0] == '/')
		return home;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

/* Resolves cfg->ssh_key into the paths of the public and private key. */
static int configured_paths(const char *setting, char *pub, char *priv, size_t len)
{
	const char *home = user_home();
	char path[PATH_MAX];
	size_t n;
	int rc;

	if (strncmp(setting, "~/", 2) == 0) {
		if (!home)
			return -ENOENT;
		rc = path_join(path, sizeof(path), home, setting + 2);
	} else if (setting[0] == '/') {
		rc = snprintf(path, sizeof(path), "%s", setting) < (int)sizeof(path) ? 0 : -ENAMETOOLONG;
	} else {
		return -EINVAL;
	}
	if (rc < 0)
		return rc;
	n = strlen(path);
	if (n > 4 && strcmp(path + n - 4, ".pub") == 0) {
		snprintf(pub, len, "%s", path);
		snprintf(priv, len, "%.*s", (int)(n - 4), path);
		return 0;
	}
	snprintf(priv, len, "%s", path);
	return snprintf(pub, len, "%s.pub", path) < (int)len ? 0 : -ENAMETOOLONG;
}

static int use_configured(const char *setting, struct ssh_key *key, char *err, size_t errlen)
{
	char pub[PATH_MAX];
	int rc = configured_paths(setting, pub, key->private_path, sizeof(pub));

	if (rc < 0) {
		snprintf(err, errlen, "ssh_key %s: %s", setting, rc == -EINVAL
			 ? "invalid path: expected an absolute path or one starting with ~/"
			 : strerror(-rc));
		return rc;
	}
	return read_public(pub, key, err, errlen);
}

/* Uses the user's own key from ~/.ssh; -ENOENT when there is none. */
static int use_user_key(struct ssh_key *key, char *err, size_t errlen)
{
	const char *home = user_home();
	char dir[PATH_MAX], pub[PATH_MAX];

	if (!home || path_join(dir, sizeof(dir), home, ".ssh") < 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(user_keys) / sizeof(user_keys[0]); i++) {
		if (path_join(pub, sizeof(pub), dir, user_keys[i]) < 0 || access(pub, F_OK) < 0)
			continue;
		snprintf(key->private_path, sizeof(key->private_path), "%.*s",
			 (int)(strlen(pub) - 4), pub);
		return read_public(pub, key, err, errlen);
	}
	return -ENOENT;
}

static int generate_key(const char *priv, char *err, size_t errlen)
{
	const char *argv[] = { "ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-C", "nido",
			       "-f", priv, NULL };
	char why[512];
	int rc;

	log_info("ssh key: creating %s", priv);
	rc = spawn_run(argv, -1, -1, KEYGEN_TIMEOUT_MS, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "cannot create the SSH key %s: %s", priv, why);
		return rc;
	}
	if (chmod(priv, 0600) < 0) {
		rc = -errno;
		snprintf(err, errlen, "SSH key %s: chmod 0600: %s", priv, strerror(-rc));
		return rc;
	}
	return 0;
}

/* Writes the public key of the private key priv to pub (ssh-keygen -y). */
static int derive_public(const char *priv, const char *pub, char *err, size_t errlen)
{
	const char *argv[] = { "ssh-keygen", "-y", "-f", priv, NULL };
	char tmp[PATH_MAX], why[512];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", pub) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(-rc));
		return rc;
	}
	rc = spawn_run(argv, fd, -1, KEYGEN_TIMEOUT_MS, why, sizeof(why));
	close(fd);
	if (rc == 0 && rename(tmp, pub) < 0) {
		rc = -errno;
		snprintf(why, sizeof(why), "rename to %s: %s", pub, strerror(-rc));
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot write the public key of %s: %s", priv, why);
		unlink(tmp);
	}
	return rc;
}

/* Uses <home>/id_ed25519, creating it under <home>/id_ed25519.lock so that
 * two VMs created at once do not both run ssh-keygen on the same file. */
static int use_own_key(const char *home, struct ssh_key *key, char *err, size_t errlen)
{
	char real[PATH_MAX], pub[PATH_MAX], lock[PATH_MAX];
	int fd, rc;

	/* The `ssh` file of each VM names the private key, so make it absolute. */
	if (!realpath(home, real)) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot resolve: %s", home, strerror(-rc));
		return rc;
	}
	home = real;
	if (path_join(key->private_path, sizeof(key->private_path), home, "id_ed25519") < 0 ||
	    path_join(pub, sizeof(pub), home, "id_ed25519.pub") < 0 ||
	    path_join(lock, sizeof(lock), home, "id_ed25519.lock") < 0) {
		snprintf(err, errlen, "%s: path too long for the SSH key", home);
		return -ENAMETOOLONG;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot lock: %s", lock, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = 0;
	if (access(key->private_path, F_OK) < 0) {
		/* A public key without its private key is of no use for logging in. */
		unlink(pub);
		rc = generate_key(key->private_path, err, errlen);
	} else if (access(pub, F_OK) < 0) {
		rc = derive_public(key->private_path, pub, err, errlen);
	}
	close(fd);
	return rc < 0 ? rc : read_public(pub, key, err, errlen);
}

int sshkey_find(const char *home, const struct nido_config *cfg, struct ssh_key *key,
		char *err, size_t errlen)
{
	int rc;

	if (cfg->ssh_key[0])
		return use_configured(cfg->ssh_key, key, err, errlen);
	rc = use_user_key(key, err, errlen);
	if (rc != -ENOENT)
		return rc;
	return use_own_key(home, key, err, errlen);
}
