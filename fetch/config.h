/* The configuration file: `key = value` lines, shared by the daemon, the `nido`
 * command and each VM (a VM's own copy lives in its state directory).
 * Owns struct nido_config and the file format; see nidofs(5) for the keys. */
#ifndef NIDO_CONFIG_H
#define NIDO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum net_mode { NET_OPEN, NET_RESTRICTED };
enum accel_mode { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };

#define CONFIG_TEXT_MAX 1024

struct nido_config {
	char image[256];		/* tag that `mkdir vms/NAME` boots */
	unsigned memory_mb;
	unsigned cpus;
	char user[33];			/* default guest user */
	char ssh_key[CONFIG_TEXT_MAX];	/* public key file; empty: find or create one */
	unsigned port_min, port_max;	/* range for SSH forwards on 127.0.0.1 */
	unsigned ssh_port;		/* a VM's own forward; 0 in the global file */
	enum net_mode network;
	enum accel_mode accel;
	char catalog_url[CONFIG_TEXT_MAX];
	char ca_file[CONFIG_TEXT_MAX];	/* extra CA bundle for HTTPS; empty: system store */
	unsigned stop_timeout;		/* seconds from ACPI power-down to a forced quit */
	uint64_t cache_max;		/* bytes; 0: no limit */
	uint64_t cache_min_free;	/* bytes kept free on the cache's file system */
};

#define CONFIG_MAX_FILE (64 * 1024)

void config_defaults(struct nido_config *cfg);

/* Parses `text` over `cfg`. On error, writes a message naming the line and
 * returns -EINVAL; `cfg` is then unchanged. */
int config_parse(struct nido_config *cfg, const char *text, size_t len, char *err, size_t errlen);

/* Sets one key from its text form; -ENOENT for an unknown key, -EINVAL for a bad value. */
int config_set(struct nido_config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Writes the text form of one key into buf; -ENOENT for an unknown key. */
int config_get(const struct nido_config *cfg, const char *key, char *buf, size_t len);

/* Returns the whole file text (malloc'd, caller frees), or NULL with errno set. */
char *config_format(const struct nido_config *cfg);

/* Loads `path` over the defaults; a missing file is not an error. */
int config_load(const char *path, struct nido_config *cfg, char *err, size_t errlen);

/* Writes `cfg` to `path` atomically. */
int config_save(const char *path, const struct nido_config *cfg);

/* Names of all keys, NULL-terminated (for listings and completion). */
const char *const *config_keys(void);

#endif
