/* The SSH key pair that VMs accept: the configured ssh_key, else the user's
 * first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub and id_rsa.pub, else a key
 * pair that nido creates once as <home>/id_ed25519 with ssh-keygen. */
#ifndef NIDO_SSHKEY_H
#define NIDO_SSHKEY_H

#include <limits.h>
#include <stddef.h>

#include "fetch/config.h"

#define SSH_PUBLIC_KEY_MAX 16384

struct ssh_key {
	char private_path[PATH_MAX];		/* for `ssh -i`; may be absent when an agent holds the key */
	char public_key[SSH_PUBLIC_KEY_MAX];	/* one line without its newline */
};

/* Returns 1 when line looks like an OpenSSH public key: a type such as
 * ssh-ed25519, ecdsa-sha2-nistp256 or sk-ssh-ed25519@openssh.com, a base64
 * blob, an optional comment, and no control characters. */
int sshkey_valid_public(const char *line);

/* Finds or creates the key pair for cfg and stores it in *key. cfg->ssh_key
 * may name the public key (ending in .pub) or the private key, as an
 * absolute path or one starting with "~/". Returns 0, or -errno with the
 * cause in err: -ENOENT for a missing key file, -EINVAL for a file that is
 * not a public key, or the failure of ssh-keygen. */
int sshkey_find(const char *home, const struct nido_config *cfg, struct ssh_key *key,
		char *err, size_t errlen);

#endif
