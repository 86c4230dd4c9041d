/* The texts of the NoCloud seed: meta-data, the default user-data and the
 * MIME multipart with the user's own; see seed.h. Files are in seed_files.c. */
#include "vmctl/seed.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "vmctl/sshkey.h"

#define BASE64_LINE 57		/* input bytes per 76-character base64 line */

int seed_valid_user(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 32 || !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return strcmp(name, "root") != 0;
}

int seed_new_instance_id(const char *name, char *buf, size_t len)
{
	unsigned char bytes[8];
	ssize_t n;
	int used;

	do
		n = getrandom(bytes, sizeof(bytes), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(bytes))
		return n < 0 ? -errno : -EIO;
	used = snprintf(buf, len, "%s-", name);
	if (used < 0 || (size_t)used + 2 * sizeof(bytes) >= len)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < sizeof(bytes); i++)
		snprintf(buf + used + 2 * i, 3, "%02x", bytes[i]);
	return 0;
}

/* Prints json on one line: cJSON's formatted output indents with tabs,
 * which YAML parsers such as PyYAML (used by cloud-init) reject. */
static char *print_json(cJSON *json)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;

	cJSON_Delete(json);
	if (!text)
		errno = ENOMEM;
	return text;
}

char *seed_meta_data(const char *name, const char *instance_id)
{
	cJSON *meta = cJSON_CreateObject();

	if (meta && (!cJSON_AddStringToObject(meta, "instance-id", instance_id) ||
		     !cJSON_AddStringToObject(meta, "local-hostname", name))) {
		cJSON_Delete(meta);
		meta = NULL;
	}
	return print_json(meta);
}

static cJSON *default_user(const char *user, const char *public_key)
{
	cJSON *entry = cJSON_CreateObject();
	cJSON *keys;

	if (!entry || !cJSON_AddStringToObject(entry, "name", user) ||
	    !cJSON_AddStringToObject(entry, "sudo", "ALL=(ALL) NOPASSWD:ALL") ||
	    !cJSON_AddStringToObject(entry, "shell", "/bin/bash") ||
	    /* No password is ever set, and none can be used to log in. */
	    !cJSON_AddTrueToObject(entry, "lock_passwd"))
		goto fail;
	keys = cJSON_CreateStringArray(&public_key, 1);
	if (!keys || !cJSON_AddItemToObject(entry, "ssh_authorized_keys", keys)) {
		cJSON_Delete(keys);
		goto fail;
	}
	return entry;
fail:
	cJSON_Delete(entry);
	return NULL;
}

char *seed_default_user_data(const char *user, const char *public_key)
{
	cJSON *config, *users, *entry;
	char *json, *text;

	if (!seed_valid_user(user) || !sshkey_valid_public(public_key)) {
		errno = EINVAL;
		return NULL;
	}
	config = cJSON_CreateObject();
	users = cJSON_AddArrayToObject(config, "users");
	entry = users ? default_user(user, public_key) : NULL;
	if (!entry || !cJSON_AddItemToArray(users, entry)) {
		cJSON_Delete(entry);
		cJSON_Delete(config);
		errno = ENOMEM;
		return NULL;
	}
	json = print_json(config);
	if (!json)
		return NULL;
	if (asprintf(&text, "#cloud-config\n%s\n", json) < 0) {
		text = NULL;
		errno = ENOMEM;
	}
	free(json);
	return text;
}

struct part_type {
	const char *start;
	const char *type;
};

/* Longer starts come before their prefixes ("#include-once" before "#include"). */
static const struct part_type part_types[] = {
	{ "#include-once", "text/x-include-once-url" },
	{ "#include", "text/x-include-url" },
	{ "#cloud-config-archive", "text/cloud-config-archive" },
	{ "#cloud-config-jsonp", "text/cloud-config-jsonp" },
	{ "#cloud-config", "text/cloud-config" },
	{ "#cloud-boothook", "text/cloud-boothook" },
	{ "#part-handler", "text/part-handler" },
	{ "#upstart-job", "text/upstart-job" },
	{ "## template: jinja", "text/jinja2" },
	{ "#!", "text/x-shellscript" },
};

const char *seed_part_type(const char *data, size_t len)
{
	if (len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b)
		return "application/gzip";
	/* cloud-init compares case-insensitively after leading white space. */
	while (len > 0 && isspace((unsigned char)*data)) {
		data++;
		len--;
	}
	for (size_t i = 0; i < sizeof(part_types) / sizeof(part_types[0]); i++) {
		size_t n = strlen(part_types[i].start);

		if (len >= n && strncasecmp(data, part_types[i].start, n) == 0)
			return part_types[i].type;
	}
	return "text/plain";
}

/* A growing NUL-terminated buffer; the first failure sticks in error. */
struct text {
	char *data;
	size_t len, cap;
	int error;
};

static void text_add(struct text *t, const void *data, size_t len)
{
	size_t cap;
	char *grown;

	if (t->error)
		return;
	if (t->len + len + 1 > t->cap) {
		cap = t->cap ? t->cap : 4096;
		while (cap < t->len + len + 1)
			cap *= 2;
		grown = realloc(t->data, cap);
		if (!grown) {
			t->error = -ENOMEM;
			return;
		}
		t->data = grown;
		t->cap = cap;
	}
	memcpy(t->data + t->len, data, len);
	t->len += len;
	t->data[t->len] = '\0';
}

static void text_addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_addf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char *piece;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&piece, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->error = -ENOMEM;
		return;
	}
	text_add(t, piece, (size_t)n);
	free(piece);
}

/* Returns 1 when data can go into a part as it is: printable ASCII, tabs and
 * newlines only, without the boundary. Anything else is sent as base64,
 * because Python's email parser (cloud-init) mangles non-ASCII 8-bit text
 * and would drop the carriage returns of CRLF lines. */
static int sendable_as_is(const char *data, size_t len, const char *boundary)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c != '\n' && c != '\t' && (c < 0x20 || c >= 0x7f))
			return 0;
	}
	return !memmem(data, len, boundary, strlen(boundary));
}

static void add_base64(struct text *t, const char *data, size_t len)
{
	unsigned char line[4 * BASE64_LINE / 3 + 4];
	size_t off, n;
	int out;

	for (off = 0; off < len; off += n) {
		n = len - off < BASE64_LINE ? len - off : BASE64_LINE;
		out = EVP_EncodeBlock(line, (const unsigned char *)data + off, (int)n);
		text_add(t, line, (size_t)out);
		text_add(t, "\n", 1);
	}
}

/* Appends one part. The newline after the body belongs to the boundary line
 * that follows, so the body reads back byte for byte. */
static void add_part(struct text *t, const char *boundary, const char *type,
		     const char *filename, const char *data, size_t len)
{
	int as_is = sendable_as_is(data, len, boundary);

	text_addf(t, "--%s\n", boundary);
	text_addf(t, "Content-Type: %s%s\n", type,
		  strncmp(type, "text/", 5) == 0 ? "; charset=\"utf-8\"" : "");
	text_addf(t, "MIME-Version: 1.0\n");
	text_addf(t, "Content-Transfer-Encoding: %s\n", as_is ? "7bit" : "base64");
	text_addf(t, "Merge-Type: %s\n", SEED_MERGE_TYPE);
	text_addf(t, "Content-Disposition: attachment; filename=\"%s\"\n\n", filename);
	if (as_is) {
		text_add(t, data, len);
		text_add(t, "\n", 1);
	} else {
		add_base64(t, data, len);
	}
}

/* Returns 1 when data is itself a MIME message, as cloud-init decides: a
 * "MIME-Version:" header in its first 4096 bytes. */
static int is_mime(const char *data, size_t len)
{
	static const char header[] = "mime-version:";
	size_t n = len < 4096 ? len : 4096;

	for (size_t i = 0; i + sizeof(header) - 1 <= n; i++)
		if (strncasecmp(data + i, header, sizeof(header) - 1) == 0)
			return 1;
	return 0;
}

/* Derives the boundary from a SHA-256 of both parts, so that the same inputs
 * always give the same user-data and the boundary never occurs in them. */
static int make_boundary(const char *base, const char *user_data, size_t len, char *buf, size_t buflen)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, base, strlen(base) + 1) &&
	     EVP_DigestUpdate(ctx, user_data, len) &&
	     EVP_DigestFinal_ex(ctx, digest, &digest_len);
	EVP_MD_CTX_free(ctx);
	if (!ok || digest_len < 16 || buflen < sizeof("nido-boundary-") + 32)
		return -EIO;
	snprintf(buf, buflen, "nido-boundary-");
	for (unsigned int i = 0; i < 16; i++)
		snprintf(buf + strlen("nido-boundary-") + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

static int build_multipart(const char *base, const char *user_data, size_t len,
			   char **out, size_t *outlen)
{
	struct text t = { 0 };
	char boundary[64];
	int rc = make_boundary(base, user_data, len, boundary, sizeof(boundary));

	if (rc < 0)
		return rc;
	if (memmem(user_data, len, boundary, strlen(boundary)))
		return -EINVAL;
	text_addf(&t, "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n", boundary);
	add_part(&t, boundary, "text/cloud-config", "nido-default.cfg", base, strlen(base));
	if (is_mime(user_data, len)) {
		/* A MIME message is a valid part as it is: its headers become the part's. */
		text_addf(&t, "--%s\n", boundary);
		text_add(&t, user_data, len);
		text_add(&t, "\n", 1);
	} else {
		add_part(&t, boundary, seed_part_type(user_data, len), "user-data", user_data, len);
	}
	text_addf(&t, "--%s--\n", boundary);
	if (t.error) {
		free(t.data);
		return t.error;
	}
	*out = t.data;
	*outlen = t.len;
	return 0;
}

int seed_user_data(const char *user, const char *public_key, const char *user_data,
		   size_t user_data_len, char **out, size_t *outlen)
{
	char *base;
	int rc;

	if (user_data && user_data_len > SEED_USER_DATA_MAX)
		return -EINVAL;
	base = seed_default_user_data(user, public_key);
	if (!base)
		return -errno;
	if (!user_data) {
		*out = base;
		*outlen = strlen(base);
		return 0;
	}
	rc = build_multipart(base, user_data, user_data_len, out, outlen);
	free(base);
	return rc;
}
