/* Unit tests of the pure parts of vmctl: VM names, comma escaping, the QEMU
 * command line, the seed's meta-data and user-data (parsed back as MIME and
 * JSON), and the ssh login command. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "tests/unit/unit.h"
#include "vmctl/boot.h"
#include "vmctl/qemu.h"
#include "vmctl/seed.h"
#include "vmctl/sshkey.h"
#include "vmctl/vm.h"

#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq5c2V0ZXN0a2V5MDEyMzQ1Njc4OWFiY2RlZg test@host"

static const char *text_or_empty(const char *text)
{
	return text ? text : "";
}

static void test_names(void)
{
	static const char *const good[] = { "a", "web", "web-1", "A9", "x-" };
	static const char *const bad[] = {
		"", "-web", "a,b", "a/b", "a b", "..", ".", "a.b", "a\nb", "a\x01", "a_b", "a\x7f", "é",
	};
	char name[80];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(name, sizeof(name), "name %s is valid", good[i]);
		CHECK(name, vm_name_valid(good[i]) == 1);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(name, sizeof(name), "name #%zu is invalid", i);
		CHECK(name, vm_name_valid(bad[i]) == 0);
	}
	memset(name, 'a', 63);
	name[63] = '\0';
	CHECK("name of 63 characters is valid", vm_name_valid(name) == 1);
	name[63] = 'a';
	name[64] = '\0';
	CHECK("name of 64 characters is invalid", vm_name_valid(name) == 0);
}

static void test_escape_commas(void)
{
	char out[32];

	CHECK("escape without commas", qemu_escape_commas("/a/b", out, sizeof(out)) == 0);
	CHECK("escape without commas copies", strcmp(out, "/a/b") == 0);
	CHECK("escape one comma", qemu_escape_commas("/a,b", out, sizeof(out)) == 0);
	CHECK("escape one comma doubles it", strcmp(out, "/a,,b") == 0);
	CHECK("escape many commas", qemu_escape_commas(",,x,", out, sizeof(out)) == 0);
	CHECK("escape many commas doubles each", strcmp(out, ",,,,x,,") == 0);
	CHECK("escape exact fit", qemu_escape_commas("a,b", out, 5) == 0);
	CHECK("escape exact fit output", strcmp(out, "a,,b") == 0);
	CHECK("escape one byte short", qemu_escape_commas("a,b", out, 4) == -ENAMETOOLONG);
	CHECK("escape into empty buffer", qemu_escape_commas("", out, 0) == -ENAMETOOLONG);
}

/* Splits a QEMU option string the way QEMU does, where ",," is a literal
 * comma. Stores the value of key in value and returns the number of options. */
static int parse_options(const char *text, const char *key, char *value, size_t len)
{
	char current[512];
	size_t used = 0;
	int count = 0;

	value[0] = '\0';
	for (const char *p = text;; p++) {
		if (*p == ',' && p[1] == ',') {
			current[used++] = ',';
			p++;
			continue;
		}
		if (*p == ',' || *p == '\0') {
			current[used] = '\0';
			count++;
			if (strncmp(current, key, strlen(key)) == 0 && current[strlen(key)] == '=')
				snprintf(value, len, "%s", current + strlen(key) + 1);
			used = 0;
			if (*p == '\0')
				return count;
			continue;
		}
		if (used + 1 < sizeof(current))
			current[used++] = *p;
	}
}

/* Returns the argument after the n-th (from 0) occurrence of option, or NULL. */
static const char *option_value(const struct qemu_argv *args, const char *option, int n)
{
	for (size_t i = 0; i + 1 < args->argc; i++)
		if (strcmp(args->argv[i], option) == 0 && n-- == 0)
			return args->argv[i + 1];
	return NULL;
}

static int has_arg(const struct qemu_argv *args, const char *arg)
{
	for (size_t i = 0; i < args->argc; i++)
		if (strcmp(args->argv[i], arg) == 0)
			return 1;
	return 0;
}

static void test_qemu_argv(void)
{
	struct qemu_spec spec = {
		.name = "web", .vmdir = "/tmp/x,format=raw,if=none/vms/web", .memory_mb = 512,
		.cpus = 2, .ssh_port = 50022, .network = NET_RESTRICTED, .kvm = 0, .sandbox = 1,
	};
	struct qemu_argv args;
	const char *drive;
	char value[512];
	int drives = 0;

	CHECK("argv builds", qemu_build_argv(&spec, &args) == 0);
	CHECK("argv starts with qemu-system-x86_64", strcmp(args.argv[0], QEMU_SYSTEM) == 0);
	CHECK("argv ends with NULL", args.argv[args.argc] == NULL);
	CHECK("argv names the process", strcmp(text_or_empty(option_value(&args, "-name", 0)),
					       "web,process=nido-web") == 0);
	CHECK("argv uses tcg", strcmp(option_value(&args, "-machine", 0), "q35,accel=tcg") == 0);
	CHECK("argv uses cpu max with tcg", strcmp(option_value(&args, "-cpu", 0), "max") == 0);
	CHECK("argv memory", strcmp(option_value(&args, "-m", 0), "512") == 0);
	CHECK("argv cpus", strcmp(option_value(&args, "-smp", 0), "2") == 0);
	CHECK("argv has -nodefaults", has_arg(&args, "-nodefaults"));
	CHECK("argv has -no-user-config", has_arg(&args, "-no-user-config"));
	CHECK("argv has -daemonize", has_arg(&args, "-daemonize"));
	for (int i = 0; (drive = option_value(&args, "-drive", i)); i++) {
		drives++;
		parse_options(drive, "format", value, sizeof(value));
		CHECK("every drive has a format", value[0] != '\0');
		CHECK("every drive has four or five options", parse_options(drive, "x", value, sizeof(value)) >= 3);
	}
	CHECK("argv has two drives", drives == 2);
	drive = option_value(&args, "-drive", 0);
	parse_options(drive, "file", value, sizeof(value));
	CHECK("disk path survives commas", strcmp(value, "/tmp/x,format=raw,if=none/vms/web/disk.qcow2") == 0);
	parse_options(drive, "format", value, sizeof(value));
	CHECK("disk format stays qcow2", strcmp(value, "qcow2") == 0);
	CHECK("disk has three options", parse_options(drive, "if", value, sizeof(value)) == 3);
	CHECK("disk is virtio", strcmp(value, "virtio") == 0);
	drive = option_value(&args, "-drive", 1);
	parse_options(drive, "format", value, sizeof(value));
	CHECK("seed format raw", strcmp(value, "raw") == 0);
	parse_options(drive, "readonly", value, sizeof(value));
	CHECK("seed read-only", strcmp(value, "on") == 0);
	parse_options(option_value(&args, "-netdev", 0), "restrict", value, sizeof(value));
	CHECK("restricted network has restrict=on", strcmp(value, "on") == 0);
	parse_options(option_value(&args, "-netdev", 0), "hostfwd", value, sizeof(value));
	CHECK("ssh forward on 127.0.0.1", strcmp(value, "tcp:127.0.0.1:50022-:22") == 0);
	parse_options(option_value(&args, "-chardev", 1), "path", value, sizeof(value));
	CHECK("qmp socket path survives commas", strcmp(value, "/tmp/x,format=raw,if=none/vms/web/qmp.sock") == 0);
	parse_options(option_value(&args, "-chardev", 0), "path", value, sizeof(value));
	CHECK("console path survives commas", strcmp(value, "/tmp/x,format=raw,if=none/vms/web/console.log") == 0);
	CHECK("serial goes to the console chardev", strcmp(option_value(&args, "-serial", 0), "chardev:console") == 0);
	CHECK("qmp monitor in control mode", strcmp(option_value(&args, "-mon", 0), "chardev=qmp,mode=control") == 0);
	CHECK("pidfile is a plain path", strcmp(option_value(&args, "-pidfile", 0),
						"/tmp/x,format=raw,if=none/vms/web/qemu.pid") == 0);
	CHECK("sandbox when asked", strcmp(text_or_empty(option_value(&args, "-sandbox", 0)), QEMU_SANDBOX_OPTS) == 0);
	qemu_argv_free(&args);
	CHECK("argv free resets the count", args.argc == 0);
	CHECK("argv free ends the array", args.argv[0] == NULL);
	qemu_argv_free(&args);
}

static void test_qemu_argv_variants(void)
{
	struct qemu_spec spec = {
		.name = "db", .vmdir = "/srv/nido/vms/db", .memory_mb = 1024, .cpus = 1,
		.ssh_port = 2222, .network = NET_OPEN, .kvm = 1, .sandbox = 0,
	};
	char long_dir[200], value[256];
	struct qemu_argv args;

	CHECK("kvm argv builds", qemu_build_argv(&spec, &args) == 0);
	CHECK("kvm machine", strcmp(option_value(&args, "-machine", 0), "q35,accel=kvm") == 0);
	CHECK("kvm uses cpu host", strcmp(option_value(&args, "-cpu", 0), "host") == 0);
	parse_options(option_value(&args, "-netdev", 0), "restrict", value, sizeof(value));
	CHECK("open network has no restrict", value[0] == '\0');
	CHECK("no sandbox unless asked", option_value(&args, "-sandbox", 0) == NULL);
	qemu_argv_free(&args);

	memset(long_dir, 'd', sizeof(long_dir) - 1);
	long_dir[0] = '/';
	long_dir[sizeof(long_dir) - 1] = '\0';
	spec.vmdir = long_dir;
	CHECK("socket path longer than sun_path rejected", qemu_build_argv(&spec, &args) == -ENAMETOOLONG);
	spec.vmdir = "/srv/nido/vms/db";
	spec.name = "bad,name";
	CHECK("invalid name rejected", qemu_build_argv(&spec, &args) == -EINVAL);
	spec.name = "db";
	spec.vmdir = "relative/db";
	CHECK("relative directory rejected", qemu_build_argv(&spec, &args) == -EINVAL);
}

static void test_meta_data(void)
{
	char id1[SEED_INSTANCE_ID_MAX], id2[SEED_INSTANCE_ID_MAX];
	const cJSON *field;
	char *text;
	cJSON *json;
	size_t i;

	CHECK("instance id made", seed_new_instance_id("web", id1, sizeof(id1)) == 0);
	CHECK("second instance id made", seed_new_instance_id("web", id2, sizeof(id2)) == 0);
	CHECK("instance id starts with the name", strncmp(id1, "web-", 4) == 0);
	CHECK("instance id has 16 more digits", strlen(id1) == 20);
	for (i = 4; id1[i] && isxdigit((unsigned char)id1[i]); i++)
		;
	CHECK("instance id suffix is hex", i == 20);
	CHECK("instance ids differ", strcmp(id1, id2) != 0);
	CHECK("instance id buffer too small", seed_new_instance_id("web", id2, 12) == -ENAMETOOLONG);

	text = seed_meta_data("web", id1);
	json = text ? cJSON_Parse(text) : NULL;
	CHECK("meta-data is JSON", json != NULL);
	field = cJSON_GetObjectItemCaseSensitive(json, "instance-id");
	CHECK("meta-data instance-id", strcmp(text_or_empty(cJSON_GetStringValue(field)), id1) == 0);
	field = cJSON_GetObjectItemCaseSensitive(json, "local-hostname");
	CHECK("meta-data local-hostname", strcmp(text_or_empty(cJSON_GetStringValue(field)), "web") == 0);
	CHECK("meta-data has no newline", !strchr(text_or_empty(text), '\n'));
	CHECK("meta-data has no tab", !strchr(text_or_empty(text), '\t'));
	cJSON_Delete(json);
	free(text);
}

/* Parses the JSON after "#cloud-config\n" and checks the users entry. */
static void check_default_config(const char *label, const char *text, size_t len)
{
	const char head[] = "#cloud-config\n";
	const cJSON *users, *user, *keys;
	char name[128];
	cJSON *json;

	snprintf(name, sizeof(name), "%s starts with #cloud-config", label);
	CHECK(name, strncmp(text, head, len < strlen(head) ? len : strlen(head)) == 0);
	if (len <= strlen(head))
		return;
	snprintf(name, sizeof(name), "%s has no tab", label);
	CHECK(name, !memchr(text, '\t', len));
	json = cJSON_ParseWithLength(text + strlen(head), len - strlen(head));
	snprintf(name, sizeof(name), "%s is JSON", label);
	CHECK(name, json != NULL);
	users = cJSON_GetObjectItemCaseSensitive(json, "users");
	user = cJSON_GetArrayItem(users, 0);
	keys = cJSON_GetObjectItemCaseSensitive(user, "ssh_authorized_keys");
	snprintf(name, sizeof(name), "%s has one user", label);
	CHECK(name, cJSON_GetArraySize(users) == 1);
	snprintf(name, sizeof(name), "%s user name", label);
	CHECK(name, strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(user, "name")), "dev") == 0);
	snprintf(name, sizeof(name), "%s sudo without password", label);
	CHECK(name, strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(user, "sudo")),
			   "ALL=(ALL) NOPASSWD:ALL") == 0);
	snprintf(name, sizeof(name), "%s shell", label);
	CHECK(name, strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(user, "shell")), "/bin/bash") == 0);
	snprintf(name, sizeof(name), "%s ssh key", label);
	CHECK(name, cJSON_GetArraySize(keys) == 1);
	snprintf(name, sizeof(name), "%s ssh key text", label);
	CHECK(name, strcmp(text_or_empty(cJSON_GetStringValue(cJSON_GetArrayItem(keys, 0))), KEY) == 0);
	snprintf(name, sizeof(name), "%s sets no passwd", label);
	CHECK(name, !cJSON_GetObjectItemCaseSensitive(user, "passwd"));
	snprintf(name, sizeof(name), "%s sets no plain_text_passwd", label);
	CHECK(name, !cJSON_GetObjectItemCaseSensitive(user, "plain_text_passwd"));
	snprintf(name, sizeof(name), "%s locks the password", label);
	CHECK(name, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(user, "lock_passwd")));
	cJSON_Delete(json);
}

static void test_default_user_data(void)
{
	char *text = seed_default_user_data("dev", KEY), *out;
	size_t len;

	CHECK("default user-data made", text != NULL);
	if (text)
		check_default_config("default user-data", text, strlen(text));
	free(text);
	errno = 0;
	CHECK("user root rejected", seed_default_user_data("root", KEY) == NULL);
	CHECK("user root sets EINVAL", errno == EINVAL);
	CHECK("user with space rejected", seed_default_user_data("a b", KEY) == NULL);
	CHECK("user with capital rejected", seed_default_user_data("Dev", KEY) == NULL);
	CHECK("bad key rejected", seed_default_user_data("dev", "not a key") == NULL);
	CHECK("key with newline rejected", seed_default_user_data("dev", KEY "\nssh-rsa AAAA") == NULL);
	out = NULL;
	CHECK("seed user-data without user part", seed_user_data("dev", KEY, NULL, 0, &out, &len) == 0);
	CHECK("seed user-data is the default alone", strncmp(text_or_empty(out), "#cloud-config\n{", 15) == 0);
	CHECK("seed user-data length", len == strlen(text_or_empty(out)));
	free(out);
}

struct mime_part {
	char type[128];
	char encoding[32];
	char merge[128];
	char *body;
	size_t len;
};

/* Returns the value of header name in the header block (lines until a blank one). */
static void header_value(const char *headers, size_t len, const char *name, char *out, size_t outlen)
{
	const char *line = headers, *end = headers + len, *eol;
	size_t n = strlen(name);

	out[0] = '\0';
	for (; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > n + 1 && strncasecmp(line, name, n) == 0 && line[n] == ':') {
			snprintf(out, outlen, "%.*s", (int)(eol - line - n - 2), line + n + 2);
			return;
		}
	}
}

static char *decode_base64(const char *text, size_t len, size_t *outlen)
{
	char *clean = malloc(len + 1), *out;
	size_t n = 0, pad = 0;
	int decoded;

	for (size_t i = 0; i < len; i++)
		if (text[i] != '\n')
			clean[n++] = text[i];
	out = malloc(n + 1);
	decoded = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)clean, (int)n);
	while (n > 0 && clean[n - 1] == '=' && pad < 2) {
		pad++;
		n--;
	}
	free(clean);
	*outlen = decoded < 0 ? 0 : (size_t)decoded - pad;
	return out;
}

/* Splits a multipart/mixed message into at most max parts; returns the count. */
static int parse_multipart(const char *msg, size_t len, struct mime_part *parts, int max)
{
	char type[256], delim[128];
	const char *b, *pos, *end = msg + len, *next, *blank;
	int count = 0;

	blank = memmem(msg, len, "\n\n", 2);
	if (!blank)
		return -1;
	header_value(msg, (size_t)(blank - msg), "Content-Type", type, sizeof(type));
	b = strstr(type, "boundary=\"");
	if (strncmp(type, "multipart/mixed;", 16) != 0 || !b)
		return -1;
	snprintf(delim, sizeof(delim), "\n--%.*s", (int)strcspn(b + 10, "\""), b + 10);
	pos = memmem(blank + 1, (size_t)(end - blank - 1), delim + 1, strlen(delim) - 1);
	while (pos && count < max) {
		pos += strlen(delim) - 1;
		if (strncmp(pos, "--", 2) == 0)
			break;
		pos++;
		blank = memmem(pos, (size_t)(end - pos), "\n\n", 2);
		next = memmem(pos, (size_t)(end - pos), delim, strlen(delim));
		if (!blank || !next || blank > next)
			return -1;
		header_value(pos, (size_t)(blank - pos), "Content-Type", parts[count].type, sizeof(parts[count].type));
		header_value(pos, (size_t)(blank - pos), "Content-Transfer-Encoding", parts[count].encoding,
			     sizeof(parts[count].encoding));
		header_value(pos, (size_t)(blank - pos), "Merge-Type", parts[count].merge, sizeof(parts[count].merge));
		parts[count].len = (size_t)(next - blank - 2);
		if (strcmp(parts[count].encoding, "base64") == 0)
			parts[count].body = decode_base64(blank + 2, parts[count].len, &parts[count].len);
		else
			parts[count].body = strndup(blank + 2, parts[count].len);
		count++;
		pos = next + 1;
	}
	return count;
}

static void free_parts(struct mime_part *parts, int count)
{
	for (int i = 0; i < count; i++)
		free(parts[i].body);
}

static void check_two_parts(const char *label, const char *user_data, const char *type, const char *encoding)
{
	struct mime_part parts[4] = { 0 };
	char *out = NULL, name[128];
	size_t len = 0;
	int count;

	snprintf(name, sizeof(name), "%s: multipart built", label);
	CHECK(name, seed_user_data("dev", KEY, user_data, strlen(user_data), &out, &len) == 0);
	count = out ? parse_multipart(out, len, parts, 4) : -1;
	snprintf(name, sizeof(name), "%s: two parts", label);
	CHECK(name, count == 2);
	if (count == 2) {
		snprintf(name, sizeof(name), "%s: default part first", label);
		CHECK(name, strncmp(parts[0].type, "text/cloud-config", 17) == 0);
		check_default_config(label, parts[0].body, parts[0].len);
		snprintf(name, sizeof(name), "%s: user part type", label);
		CHECK(name, strncmp(parts[1].type, type, strlen(type)) == 0);
		snprintf(name, sizeof(name), "%s: user part encoding", label);
		CHECK(name, strcmp(parts[1].encoding, encoding) == 0);
		snprintf(name, sizeof(name), "%s: user part reads back", label);
		CHECK(name, parts[1].len == strlen(user_data));
		snprintf(name, sizeof(name), "%s: user part bytes", label);
		CHECK(name, memcmp(parts[1].body, user_data, parts[1].len) == 0);
		snprintf(name, sizeof(name), "%s: merge type on default part", label);
		CHECK(name, strcmp(parts[0].merge, SEED_MERGE_TYPE) == 0);
		snprintf(name, sizeof(name), "%s: merge type on user part", label);
		CHECK(name, strcmp(parts[1].merge, SEED_MERGE_TYPE) == 0);
	}
	free_parts(parts, count);
	free(out);
}

static void test_multipart(void)
{
	const char *config = "#cloud-config\nruncmd:\n  - [touch, /tmp/x]\n";
	char *a = NULL, *b = NULL, *c = NULL;
	size_t alen = 0, blen = 0, clen = 0;

	check_two_parts("cloud-config", config, "text/cloud-config", "7bit");
	check_two_parts("shell script", "#!/bin/sh\necho hi\n", "text/x-shellscript", "7bit");
	check_two_parts("no trailing newline", "#cloud-config\nnido-test: poweroff", "text/cloud-config", "7bit");
	check_two_parts("utf-8 text", "#cloud-config\nwrite_files:\n  - content: \"caf\xc3\xa9\"\n",
			"text/cloud-config", "base64");
	check_two_parts("crlf lines", "#cloud-config\r\nruncmd: []\r\n", "text/cloud-config", "base64");
	check_two_parts("unknown type", "hello\n", "text/plain", "7bit");
	check_two_parts("line like a boundary", "#!/bin/sh\n--nido-boundary-\n", "text/x-shellscript", "7bit");

	CHECK("first build", seed_user_data("dev", KEY, config, strlen(config), &a, &alen) == 0);
	CHECK("second build", seed_user_data("dev", KEY, config, strlen(config), &b, &blen) == 0);
	CHECK("build of other input", seed_user_data("dev", KEY, "#!/bin/sh\n", 10, &c, &clen) == 0);
	CHECK("same input, same length", alen == blen);
	CHECK("same input, same bytes", a && b && memcmp(a, b, alen) == 0);
	CHECK("other input, other output", a && c && (clen != alen || memcmp(a, c, alen) != 0));
	free(a);
	free(b);
	free(c);
	CHECK("user-data over the limit rejected", seed_user_data("dev", KEY, config, SEED_USER_DATA_MAX + 1,
								  &a, &alen) == -EINVAL);
}

static void test_nested_mime(void)
{
	const char *mime = "Content-Type: multipart/mixed; boundary=\"inner\"\nMIME-Version: 1.0\n\n"
			   "--inner\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho in\n--inner--\n";
	struct mime_part parts[4] = { 0 };
	char *out = NULL;
	size_t len = 0;
	int count;

	CHECK("mime user-data accepted", seed_user_data("dev", KEY, mime, strlen(mime), &out, &len) == 0);
	count = out ? parse_multipart(out, len, parts, 4) : -1;
	CHECK("mime user-data gives two parts", count == 2);
	CHECK("mime user-data nested as second part", strncmp(parts[1].type, "multipart/mixed", 15) == 0);
	free_parts(parts, count);
	free(out);
}

static void test_part_types(void)
{
	static const struct { const char *data, *type; } cases[] = {
		{ "#cloud-config\n", "text/cloud-config" },
		{ "  #Cloud-Config\n", "text/cloud-config" },
		{ "#cloud-config-archive\n", "text/cloud-config-archive" },
		{ "#!/bin/bash\n", "text/x-shellscript" },
		{ "#include\nhttp://x\n", "text/x-include-url" },
		{ "#include-once\n", "text/x-include-once-url" },
		{ "#cloud-boothook\n", "text/cloud-boothook" },
		{ "#part-handler\n", "text/part-handler" },
		{ "## template: jinja\n", "text/jinja2" },
		{ "\x1f\x8b\x08", "application/gzip" },
		{ "plain\n", "text/plain" },
	};
	char name[96];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(name, sizeof(name), "part type %s", cases[i].type);
		CHECK(name, strcmp(seed_part_type(cases[i].data, strlen(cases[i].data)), cases[i].type) == 0);
	}
}

static void test_users_and_keys(void)
{
	CHECK("user dev valid", seed_valid_user("dev"));
	CHECK("user _svc-1 valid", seed_valid_user("_svc-1"));
	CHECK("user root invalid", !seed_valid_user("root"));
	CHECK("user empty invalid", !seed_valid_user(""));
	CHECK("user 1dev invalid", !seed_valid_user("1dev"));
	CHECK("user of 33 characters invalid", !seed_valid_user("abcdefghijklmnopqrstuvwxyzabcdefg"));
	CHECK("ed25519 key valid", sshkey_valid_public(KEY));
	CHECK("ecdsa key valid", sshkey_valid_public("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY="));
	CHECK("key without blob invalid", !sshkey_valid_public("ssh-ed25519"));
	CHECK("key of unknown type invalid", !sshkey_valid_public("rsa AAAAC3NzaC1lZDI1NTE5AAAA"));
	CHECK("key with bad blob invalid", !sshkey_valid_public("ssh-rsa AAAA$$$$AAAAAAAAAAAAAAAA"));
	CHECK("key with control character invalid", !sshkey_valid_public(KEY "\r"));
}

static void test_ssh_command(void)
{
	char buf[512];

	CHECK("ssh command plain", boot_ssh_command("/home/u/.ssh/id_ed25519", 50022, "dev", buf, sizeof(buf)) == 0);
	CHECK("ssh command plain text", strcmp(buf, "ssh -i /home/u/.ssh/id_ed25519 -p 50022 -o StrictHostKeyChecking=no "
						"-o UserKnownHostsFile=/dev/null dev@127.0.0.1\n") == 0);
	CHECK("ssh command with space", boot_ssh_command("/home/u v/key", 2222, "dev", buf, sizeof(buf)) == 0);
	CHECK("ssh command quotes spaces", strncmp(buf, "ssh -i '/home/u v/key' -p 2222 ", 31) == 0);
	CHECK("ssh command with quote", boot_ssh_command("/a'b", 2222, "dev", buf, sizeof(buf)) == 0);
	CHECK("ssh command quotes quotes", strncmp(buf, "ssh -i '/a'\\''b' -p", 19) == 0);
	CHECK("ssh command too long", boot_ssh_command("/k", 2222, "dev", buf, 20) == -ENAMETOOLONG);
}

int main(void)
{
	test_names();
	test_escape_commas();
	test_qemu_argv();
	test_qemu_argv_variants();
	test_meta_data();
	test_default_user_data();
	test_multipart();
	test_nested_mime();
	test_part_types();
	test_users_and_keys();
	test_ssh_command();
	return unit_exit();
}
