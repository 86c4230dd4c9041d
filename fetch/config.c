/* The `key = value` configuration file: defaults, parsing, validation and
 * formatting, driven by one table of keys. */
#include "fetch/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/files.h"
#include "fetch/log.h"

#define DEFAULT_CATALOG_URL \
	"https://raw.githubusercontent.com/Josepavese/nido/main/registry/images.json"

enum key_type { KEY_TEXT, KEY_UINT, KEY_BYTES, KEY_PORTS, KEY_NET, KEY_ACCEL, KEY_USER };

struct config_key {
	const char *name;
	enum key_type type;
	size_t offset;
	size_t size;		/* KEY_TEXT and KEY_USER: buffer size */
	uint64_t min, max;	/* KEY_UINT: inclusive bounds */
};

#define TEXT(n, f) { n, KEY_TEXT, offsetof(struct nido_config, f), sizeof(((struct nido_config *)0)->f), 0, 0 }
#define UINT(n, f, lo, hi) { n, KEY_UINT, offsetof(struct nido_config, f), 0, lo, hi }

static const struct config_key keys[] = {
	TEXT("image", image),
	UINT("memory", memory_mb, 64, 1024 * 1024),
	UINT("cpus", cpus, 1, 256),
	{ "user", KEY_USER, offsetof(struct nido_config, user), sizeof(((struct nido_config *)0)->user), 0, 0 },
	TEXT("ssh_key", ssh_key),
	{ "port_range", KEY_PORTS, 0, 0, 0, 0 },
	UINT("ssh_port", ssh_port, 0, 65535),
	{ "network", KEY_NET, 0, 0, 0, 0 },
	{ "accel", KEY_ACCEL, 0, 0, 0, 0 },
	TEXT("catalog_url", catalog_url),
	TEXT("ca_file", ca_file),
	UINT("stop_timeout", stop_timeout, 1, 3600),
	{ "cache_max", KEY_BYTES, offsetof(struct nido_config, cache_max), 0, 0, 0 },
	{ "cache_min_free", KEY_BYTES, offsetof(struct nido_config, cache_min_free), 0, 0, 0 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void config_defaults(struct nido_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->image, sizeof(cfg->image), "ubuntu:24.04");
	cfg->memory_mb = 1024;
	cfg->cpus = 1;
	snprintf(cfg->user, sizeof(cfg->user), "vmuser");
	cfg->port_min = 50022;
	cfg->port_max = 50999;
	cfg->network = NET_OPEN;
	cfg->accel = ACCEL_AUTO;
	snprintf(cfg->catalog_url, sizeof(cfg->catalog_url), "%s", DEFAULT_CATALOG_URL);
	cfg->stop_timeout = 30;
}

const char *const *config_keys(void)
{
	static const char *names[NKEYS + 1];

	for (size_t i = 0; i < NKEYS; i++)
		names[i] = keys[i].name;
	return names;
}

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Accepts a byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_bytes(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	char num[32];
	size_t len = strlen(s);
	const char *u;
	uint64_t v;
	int shift = 0;

	if (len == 0 || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, len + 1);
	u = strchr(units, toupper((unsigned char)num[len - 1]));
	if (u && num[len - 1] != '\0') {
		shift = 10 * (int)(u - units + 1);
		num[len - 1] = '\0';
	}
	if (parse_u64(num, &v) < 0 || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* A user name cloud-init and useradd accept: [a-z_][a-z0-9_-]*, at most 32 characters. */
static int valid_user(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 32 || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return strcmp(s, "root") != 0;
}

static int set_text(const struct config_key *k, struct nido_config *cfg, const char *value)
{
	char *field = (char *)cfg + k->offset;

	if (strlen(value) >= k->size)
		return -EINVAL;
	for (const char *p = value; *p; p++)
		if (iscntrl((unsigned char)*p))
			return -EINVAL;
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

static int set_ports(struct nido_config *cfg, const char *value)
{
	unsigned lo, hi;
	char extra;

	if (sscanf(value, "%u-%u%c", &lo, &hi, &extra) != 2 || lo < 1024 || hi > 65535 || lo > hi)
		return -EINVAL;
	cfg->port_min = lo;
	cfg->port_max = hi;
	return 0;
}

static int set_value(const struct config_key *k, struct nido_config *cfg, const char *value)
{
	uint64_t v;

	switch (k->type) {
	case KEY_TEXT:
		return set_text(k, cfg, value);
	case KEY_USER:
		return valid_user(value) ? set_text(k, cfg, value) : -EINVAL;
	case KEY_UINT:
		if (parse_u64(value, &v) < 0 || v < k->min || v > k->max)
			return -EINVAL;
		*(unsigned *)((char *)cfg + k->offset) = (unsigned)v;
		return 0;
	case KEY_BYTES:
		if (parse_bytes(value, &v) < 0)
			return -EINVAL;
		*(uint64_t *)((char *)cfg + k->offset) = v;
		return 0;
	case KEY_PORTS:
		return set_ports(cfg, value);
	case KEY_NET:
		if (strcmp(value, "open") && strcmp(value, "restricted"))
			return -EINVAL;
		cfg->network = strcmp(value, "open") == 0 ? NET_OPEN : NET_RESTRICTED;
		return 0;
	case KEY_ACCEL:
		if (!strcmp(value, "auto"))
			cfg->accel = ACCEL_AUTO;
		else if (!strcmp(value, "kvm"))
			cfg->accel = ACCEL_KVM;
		else if (!strcmp(value, "tcg"))
			cfg->accel = ACCEL_TCG;
		else
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static const char *expected_form(const struct config_key *k)
{
	switch (k->type) {
	case KEY_UINT: return "a whole number in range";
	case KEY_BYTES: return "a byte count such as 20G";
	case KEY_PORTS: return "MIN-MAX with 1024 <= MIN <= MAX <= 65535";
	case KEY_NET: return "open or restricted";
	case KEY_ACCEL: return "auto, kvm or tcg";
	case KEY_USER: return "a user name of [a-z_][a-z0-9_-]*, at most 32 characters, not root";
	default: return "text without control characters";
	}
}

int config_set(struct nido_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	const struct config_key *k = find_key(key);

	if (!k) {
		char quoted[160];

		/* The key comes from the file, and the message goes to a log or a terminal. */
		snprintf(err, errlen, "unknown configuration key '%s'",
			 log_escape(key, quoted, sizeof(quoted)));
		return -ENOENT;
	}
	if (set_value(k, cfg, value) < 0) {
		if (k->type == KEY_UINT)
			snprintf(err, errlen, "invalid value for %s: expected a whole number from %" PRIu64
				 " to %" PRIu64, key, k->min, k->max);
		else
			snprintf(err, errlen, "invalid value for %s: expected %s", key, expected_form(k));
		return -EINVAL;
	}
	return 0;
}

int config_get(const struct nido_config *cfg, const char *key, char *buf, size_t len)
{
	static const char *const net[] = { "open", "restricted" };
	static const char *const accel[] = { "auto", "kvm", "tcg" };
	const struct config_key *k = find_key(key);
	const char *base = (const char *)cfg;

	if (!k)
		return -ENOENT;
	switch (k->type) {
	case KEY_TEXT:
	case KEY_USER:
		snprintf(buf, len, "%s", base + k->offset);
		break;
	case KEY_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)(base + k->offset));
		break;
	case KEY_BYTES:
		snprintf(buf, len, "%" PRIu64, *(const uint64_t *)(base + k->offset));
		break;
	case KEY_PORTS:
		snprintf(buf, len, "%u-%u", cfg->port_min, cfg->port_max);
		break;
	case KEY_NET:
		snprintf(buf, len, "%s", net[cfg->network]);
		break;
	case KEY_ACCEL:
		snprintf(buf, len, "%s", accel[cfg->accel]);
		break;
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int parse_line(struct nido_config *cfg, char *line, int lineno, char *err, size_t errlen)
{
	char msg[512];
	char *eq, *key, *value;
	int rc;

	line = trim(line);
	if (*line == '\0' || *line == '#')
		return 0;
	eq = strchr(line, '=');
	if (!eq) {
		snprintf(err, errlen, "line %d: expected 'key = value'", lineno);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	rc = config_set(cfg, key, value, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "line %d: %s", lineno, msg);
		return -EINVAL;
	}
	return 0;
}

int config_parse(struct nido_config *cfg, const char *text, size_t len, char *err, size_t errlen)
{
	struct nido_config next = *cfg;
	char *copy, *line, *nl;
	int lineno = 0, rc = 0;

	if (len > CONFIG_MAX_FILE || memchr(text, '\0', len)) {
		snprintf(err, errlen, "configuration is not text of at most %d bytes", CONFIG_MAX_FILE);
		return -EINVAL;
	}
	copy = strndup(text, len);
	if (!copy)
		return -ENOMEM;
	for (line = copy; line && rc == 0; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		rc = parse_line(&next, line, ++lineno, err, errlen);
	}
	free(copy);
	if (rc == 0)
		*cfg = next;
	return rc;
}

char *config_format(const struct nido_config *cfg)
{
	size_t cap = 4096, used = 0;
	char *out = malloc(cap);
	char value[CONFIG_TEXT_MAX];

	if (!out)
		return NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		int n;

		config_get(cfg, keys[i].name, value, sizeof(value));
		n = snprintf(out + used, cap - used, "%s = %s\n", keys[i].name, value);
		if (n < 0 || (size_t)n >= cap - used) {
			free(out);
			errno = EOVERFLOW;
			return NULL;
		}
		used += (size_t)n;
	}
	return out;
}

int config_load(const char *path, struct nido_config *cfg, char *err, size_t errlen)
{
	char msg[512], *text;
	size_t len;
	int rc = read_file(path, CONFIG_MAX_FILE, &text, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	rc = config_parse(cfg, text, len, msg, sizeof(msg));
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, msg);
	return rc;
}

int config_save(const char *path, const struct nido_config *cfg)
{
	char *text = config_format(cfg);
	int rc;

	if (!text)
		return -errno;
	rc = write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	return rc;
}
