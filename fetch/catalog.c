/* Catalog parsing and validation with cJSON; tag and alias resolution. */
#include "fetch/catalog.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/files.h"
#include "fetch/json_nul.h"
#include "fetch/log.h"

/* Larger than any disk image a catalog could sensibly list (16 TiB). */
#define CATALOG_SIZE_MAX (16ull << 40)
#define CATALOG_URL_MAX 4096
#define CATALOG_LIST_MAX 1024
/* Room for a rejected name in a message, escaped by log_escape. */
#define CATALOG_QUOTE_MAX 160
#define CATALOG_NUL_REASON "a string or member name contains a NUL character (\\u0000)"

static void add_problem(struct catalog *cat, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_problem(struct catalog *cat, const char *fmt, ...)
{
	char **grown;
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	grown = realloc(cat->problems, (cat->nproblems + 1) * sizeof(*grown));
	if (!grown) {
		free(msg);
		return;
	}
	cat->problems = grown;
	cat->problems[cat->nproblems++] = msg;
}

int catalog_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CATALOG_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	if (s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._+-", s[i]))
			return 0;
	return 1;
}

static int url_valid(const char *url)
{
	size_t len = strlen(url);

	if (len == 0 || len > CATALOG_URL_MAX)
		return 0;
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return 0;
	return 1;
}

/* Copies a string member; absent or null gives "", another type fails. */
static int dup_member(const cJSON *obj, const char *key, char **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!item || cJSON_IsNull(item))
		*out = strdup("");
	else if (cJSON_IsString(item))
		*out = strdup(item->valuestring);
	else
		return -EINVAL;
	return *out ? 0 : -ENOMEM;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int dup_list(const cJSON *obj, const char *key, char ***out, size_t *count)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
	const cJSON *item;
	size_t n = 0;
	char **list;

	*out = NULL;
	*count = 0;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > CATALOG_LIST_MAX)
		return -EINVAL;
	list = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	cJSON_ArrayForEach(item, arr) {
		if (!cJSON_IsString(item) || !(list[n] = strdup(item->valuestring))) {
			free_list(list, n);
			return cJSON_IsString(item) ? -ENOMEM : -EINVAL;
		}
		n++;
	}
	*out = list;
	*count = n;
	return 0;
}

/* Replaces control characters with spaces in a field that info files and
 * listings print on one line, so that its text cannot forge another line. */
static void blank_controls(char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			*text = ' ';
}

static void version_clear(struct cat_version *v)
{
	char **fields[] = { &v->version, &v->arch, &v->url, &v->checksum_type, &v->checksum,
			    &v->format, &v->checksum_url, &v->checksum_regex, &v->ssh_user,
			    &v->ssh_password, &v->kernel_url, &v->initrd_url, &v->cmdline };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
	free_list(v->aliases, v->naliases);
	free_list(v->part_urls, v->nparts);
	v->aliases = v->part_urls = NULL;
	v->naliases = v->nparts = 0;
}

static int read_size(const cJSON *obj, uint64_t *size)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "size_bytes");

	*size = 0;
	if (!item || cJSON_IsNull(item))
		return 0;
	/* cJSON stores numbers as double: exact for every integer below 2^53. */
	if (!cJSON_IsNumber(item) || item->valuedouble < 0 ||
	    item->valuedouble > (double)CATALOG_SIZE_MAX || item->valuedouble != (double)(uint64_t)item->valuedouble)
		return -ERANGE;
	*size = (uint64_t)item->valuedouble;
	return 0;
}

static int read_version_fields(const cJSON *obj, struct cat_version *v)
{
	struct { const char *key; char **field; } strs[] = {
		{ "version", &v->version }, { "arch", &v->arch }, { "url", &v->url },
		{ "checksum_type", &v->checksum_type }, { "checksum", &v->checksum },
		{ "format", &v->format }, { "checksum_url", &v->checksum_url },
		{ "checksum_regex", &v->checksum_regex }, { "ssh_user", &v->ssh_user },
		{ "ssh_password", &v->ssh_password }, { "kernel_url", &v->kernel_url },
		{ "initrd_url", &v->initrd_url }, { "cmdline", &v->cmdline },
	};
	int rc;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((rc = dup_member(obj, strs[i].key, strs[i].field)) < 0)
			return rc;
	if ((rc = dup_list(obj, "aliases", &v->aliases, &v->naliases)) < 0)
		return rc;
	if ((rc = dup_list(obj, "part_urls", &v->part_urls, &v->nparts)) < 0)
		return rc;
	blank_controls(v->arch);
	return read_size(obj, &v->size);
}

static int hex_valid(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Checks one version; returns NULL when valid, else the reason. */
static const char *version_problem(struct cat_version *v)
{
	if (!catalog_name_valid(v->version))
		return "invalid version: use 1-64 of [A-Za-z0-9._+-], not starting with '.' or '-'";
	if (strcmp(v->format, "qcow2") != 0 && strcmp(v->format, "raw") != 0)
		return "invalid format: expected qcow2 or raw";
	/* Beside part_urls, url may be empty; info files and nido show it. */
	if ((v->nparts == 0 || v->url[0]) && !url_valid(v->url))
		return "invalid url: expected an http or https URL";
	for (size_t i = 0; i < v->nparts; i++)
		if (!url_valid(v->part_urls[i]))
			return "invalid part_urls entry: expected an http or https URL";
	if (v->size == 0 && v->nparts == 0 && cat_version_lazy(v))
		return "missing size_bytes";
	if (strcmp(v->checksum_type, "sha256") == 0 && !hex_valid(v->checksum, 64))
		return "invalid checksum: expected 64 hex digits for sha256";
	if (strcmp(v->checksum_type, "sha512") == 0 && !hex_valid(v->checksum, 128))
		return "invalid checksum: expected 128 hex digits for sha512";
	if (v->checksum_type[0] && strcmp(v->checksum_type, "sha256") && strcmp(v->checksum_type, "sha512"))
		return "invalid checksum_type: expected sha256, sha512 or empty";
	if (!v->checksum_type[0] && v->checksum[0])
		return "checksum given without checksum_type";
	for (char *p = v->checksum; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return NULL;
}

static void parse_version(struct catalog *cat, const struct json_nul *nul, struct cat_image *img,
			  const cJSON *obj)
{
	struct cat_version *v = &img->versions[img->nversions];
	const char *why = NULL;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "version");
	char quoted[CATALOG_QUOTE_MAX];

	memset(v, 0, sizeof(*v));
	if (!cJSON_IsObject(obj))
		why = "not an object";
	else if (json_nul_within(nul, obj, NULL))
		why = CATALOG_NUL_REASON;
	else if (read_version_fields(obj, v) < 0)
		why = "a field has the wrong type or size_bytes is out of range";
	else if (!(why = version_problem(v)) && catalog_version(img, v->version))
		why = "duplicate version";
	if (why) {
		add_problem(cat, "%s:%s: entry rejected: %s", img->name,
			    cJSON_IsString(name) ? log_escape(name->valuestring, quoted, sizeof(quoted)) : "?",
			    why);
		version_clear(v);
		return;
	}
	v->image = img;
	img->nversions++;
}

static void image_clear(struct cat_image *img)
{
	for (size_t i = 0; i < img->nversions; i++)
		version_clear(&img->versions[i]);
	for (size_t i = 0; i < img->naliases; i++)
		free(img->aliases[i].name);
	free(img->versions);
	free(img->aliases);
	free(img->name);
	free(img->registry);
	free(img->description);
	free(img->homepage);
	free(img->ssh_user);
	free(img->ssh_password);
	memset(img, 0, sizeof(*img));
}

static const struct cat_alias *find_alias(const struct cat_image *img, const char *name)
{
	for (size_t i = 0; i < img->naliases; i++)
		if (strcmp(img->aliases[i].name, name) == 0)
			return &img->aliases[i];
	return NULL;
}

/* Adds or updates one alias; where several versions claim it, the highest
 * wins, and of equal ones the first listed. Returns 0, 1 for an invalid
 * alias (reported in cat->problems) or -ENOMEM. */
static int claim_alias(struct catalog *cat, struct cat_image *img, struct cat_version *v,
		       const char *alias)
{
	struct cat_alias *a, *grown;
	char quoted[CATALOG_QUOTE_MAX];

	if (!catalog_name_valid(alias)) {
		add_problem(cat, "%s:%s: alias rejected: invalid name '%s'", img->name, v->version,
			    log_escape(alias, quoted, sizeof(quoted)));
		return 1;
	}
	if (catalog_version(img, alias))
		return 0; /* an alias equal to a version name adds nothing */
	for (size_t i = 0; i < img->naliases; i++) {
		a = &img->aliases[i];
		if (strcmp(a->name, alias) != 0)
			continue;
		if (version_compare(v->version, a->target->version) > 0)
			a->target = v;
		return 0;
	}
	grown = realloc(img->aliases, (img->naliases + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	img->aliases = grown;
	a = &img->aliases[img->naliases];
	if (!(a->name = strdup(alias)))
		return -ENOMEM;
	a->target = v;
	img->naliases++;
	return 0;
}

/* Returns 1 after reporting that v claims an alias that another version of
 * the image won in claim_alias, else 0. */
static int reject_lost_alias(struct catalog *cat, struct cat_image *img, struct cat_version *v,
			     const char *alias)
{
	const struct cat_alias *a = find_alias(img, alias);

	if (!a || a->target == v)
		return 0;
	add_problem(cat, "%s:%s: alias '%s' rejected: also claimed by %s:%s, which keeps it",
		    img->name, v->version, alias, img->name, a->target->version);
	return 1;
}

typedef int alias_check_fn(struct catalog *cat, struct cat_image *img, struct cat_version *v,
			   const char *alias);

/* Runs check on each alias of v and drops those it returns 1 for. A dropped
 * alias leaves v->aliases, because the entry's info file lists them and a
 * name with a newline would forge a line there. Moved and freed slots are
 * set to NULL so that an error return leaves a list that free_list can free. */
static int filter_aliases(struct catalog *cat, struct cat_image *img, struct cat_version *v,
			  alias_check_fn *check)
{
	size_t kept = 0;

	for (size_t j = 0; j < v->naliases; j++) {
		int rc = check(cat, img, v, v->aliases[j]);

		if (rc < 0)
			return rc;
		if (rc > 0) {
			free(v->aliases[j]);
			v->aliases[j] = NULL;
			continue;
		}
		if (kept != j) {
			v->aliases[kept] = v->aliases[j];
			v->aliases[j] = NULL;
		}
		kept++;
	}
	v->naliases = kept;
	return 0;
}

/* Every version claims its aliases before any losing claim is rejected, so
 * that the winner does not depend on the order of the versions. */
static int resolve_aliases(struct catalog *cat, struct cat_image *img)
{
	int rc;

	for (size_t i = 0; i < img->nversions; i++)
		if ((rc = filter_aliases(cat, img, &img->versions[i], claim_alias)) < 0)
			return rc;
	for (size_t i = 0; i < img->nversions; i++)
		if ((rc = filter_aliases(cat, img, &img->versions[i], reject_lost_alias)) < 0)
			return rc;
	return 0;
}

static int read_image_fields(const cJSON *obj, struct cat_image *img)
{
	struct { const char *key; char **field; } strs[] = {
		{ "name", &img->name }, { "registry", &img->registry },
		{ "description", &img->description }, { "homepage", &img->homepage },
		{ "ssh_user", &img->ssh_user }, { "ssh_password", &img->ssh_password },
	};
	int rc;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		if ((rc = dup_member(obj, strs[i].key, strs[i].field)) < 0)
			return rc;
	blank_controls(img->registry);
	blank_controls(img->description);
	return 0;
}

/* Checks an image object whose fields were read into img; returns NULL
 * when it is usable, else the reason. A NUL inside its versions list rejects only the
 * version that contains it. */
static const char *image_problem(const struct catalog *cat, const struct json_nul *nul,
				 const cJSON *obj, const cJSON *versions, const struct cat_image *img)
{
	if (json_nul_within(nul, obj, versions))
		return CATALOG_NUL_REASON;
	if (!catalog_name_valid(img->name))
		return "missing or invalid name";
	if (catalog_image(cat, img->name))
		return "duplicate image name";
	if (!cJSON_IsArray(versions) || cJSON_GetArraySize(versions) > CATALOG_LIST_MAX)
		return "versions is not a list of at most 1024 entries";
	return NULL;
}

/* FNV-1a: spreads image names over the slots of cat->by_name. */
static size_t name_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)h;
}

/* Returns the slot that contains name, or the empty slot where it would go. */
static size_t name_slot(const struct catalog *cat, const char *name)
{
	size_t mask = cat->by_name_slots - 1, slot = name_hash(name) & mask;

	while (cat->by_name[slot] && strcmp(cat->images[cat->by_name[slot] - 1].name, name) != 0)
		slot = (slot + 1) & mask;
	return slot;
}

static int parse_image(struct catalog *cat, const struct json_nul *nul, const cJSON *obj)
{
	struct cat_image *img = &cat->images[cat->nimages];
	const cJSON *versions = cJSON_GetObjectItemCaseSensitive(obj, "versions");
	const char *why;
	const cJSON *item;
	char quoted[CATALOG_QUOTE_MAX];
	int rc = 0;

	memset(img, 0, sizeof(*img));
	if (!cJSON_IsObject(obj))
		why = "not an object";
	else if ((rc = read_image_fields(obj, img)) < 0)
		why = "a field has the wrong type";
	else
		why = image_problem(cat, nul, obj, versions, img);
	if (rc == -ENOMEM) {
		image_clear(img);
		return rc;
	}
	if (why) {
		add_problem(cat, "image %s: entry rejected: %s",
			    img->name && img->name[0] ? log_escape(img->name, quoted, sizeof(quoted)) : "?",
			    why);
		image_clear(img);
		return 0;
	}
	img->versions = calloc((size_t)cJSON_GetArraySize(versions) + 1, sizeof(*img->versions));
	if (!img->versions) {
		image_clear(img);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(item, versions)
		parse_version(cat, nul, img, item);
	cat->by_name[name_slot(cat, img->name)] = ++cat->nimages;
	return resolve_aliases(cat, img);
}

static void describe_position(const char *text, const char *at, const char *source,
			      char *err, size_t errlen)
{
	int line = 1, col = 1;

	for (const char *p = text; at && p < at; p++) {
		col = *p == '\n' ? 1 : col + 1;
		line += *p == '\n';
	}
	snprintf(err, errlen, "%s: invalid JSON at line %d, column %d", source, line, col);
}

static int parse_document(struct catalog *cat, const struct json_nul *nul, const cJSON *root,
			  char *err, size_t errlen)
{
	const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
	const cJSON *item;
	int rc;

	if (!cJSON_IsObject(root) || !cJSON_IsArray(images) ||
	    cJSON_GetArraySize(images) > 100000) {
		snprintf(err, errlen, "%s: not a catalog: expected an object with an images list",
			 cat->source);
		return -EINVAL;
	}
	if (dup_member(root, "schema_version", &cat->schema_version) < 0 ||
	    dup_member(root, "updated_at", &cat->updated_at) < 0) {
		snprintf(err, errlen, "%s: not a catalog: schema_version and updated_at must be strings",
			 cat->source);
		return -EINVAL;
	}
	if (json_nul_within(nul, root, images)) {
		snprintf(err, errlen, "%s: not a catalog: outside the images list, %s", cat->source,
			 CATALOG_NUL_REASON);
		return -EINVAL;
	}
	cat->images = calloc((size_t)cJSON_GetArraySize(images) + 1, sizeof(*cat->images));
	for (cat->by_name_slots = 4; cat->by_name_slots <= 2 * (size_t)cJSON_GetArraySize(images);)
		cat->by_name_slots *= 2;
	cat->by_name = calloc(cat->by_name_slots, sizeof(*cat->by_name));
	if (!cat->images || !cat->by_name)
		return -ENOMEM;
	cJSON_ArrayForEach(item, images)
		if ((rc = parse_image(cat, nul, item)) < 0)
			return rc;
	return 0;
}

int catalog_parse(const char *text, size_t len, const char *source, struct catalog **out,
		  char *err, size_t errlen)
{
	struct catalog *cat = calloc(1, sizeof(*cat));
	struct json_nul nul = { NULL, 0 };
	const char *end = NULL;
	cJSON *root;
	int rc;

	if (!cat || !(cat->source = strdup(source))) {
		free(cat);
		return -ENOMEM;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root) {
		describe_position(text, end ? end : cJSON_GetErrorPtr(), source, err, errlen);
		catalog_free(cat);
		return -EINVAL;
	}
	/* On success cJSON sets end to where the document ends. */
	rc = json_nul_find(text, end ? (size_t)(end - text) : len, root, &nul);
	if (rc == 0)
		rc = parse_document(cat, &nul, root, err, errlen);
	json_nul_free(&nul);
	cJSON_Delete(root);
	if (rc < 0) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", source);
		else if (rc == -EPROTO)
			snprintf(err, errlen, "%s: cannot match the JSON strings to the parsed document "
				 "while looking for NUL characters", source);
		catalog_free(cat);
		return rc;
	}
	*out = cat;
	return 0;
}

int catalog_load_file(const char *path, struct catalog **out, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = read_file(path, CATALOG_MAX_FILE, &text, &len);

	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot read catalog: %s", path, strerror(-rc));
		return rc;
	}
	rc = catalog_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

void catalog_free(struct catalog *cat)
{
	if (!cat)
		return;
	for (size_t i = 0; i < cat->nimages; i++)
		image_clear(&cat->images[i]);
	free_list(cat->problems, cat->nproblems);
	free(cat->images);
	free(cat->by_name);
	free(cat->source);
	free(cat->schema_version);
	free(cat->updated_at);
	free(cat);
}

const struct cat_image *catalog_image(const struct catalog *cat, const char *name)
{
	size_t slot;

	if (!cat->by_name)
		return NULL;
	slot = name_slot(cat, name);
	return cat->by_name[slot] ? &cat->images[cat->by_name[slot] - 1] : NULL;
}

const struct cat_version *catalog_version(const struct cat_image *img, const char *version)
{
	for (size_t i = 0; i < img->nversions; i++)
		if (strcmp(img->versions[i].version, version) == 0)
			return &img->versions[i];
	return NULL;
}

static const struct cat_version *latest_version(const struct cat_image *img)
{
	const struct cat_version *best = NULL;

	for (size_t i = 0; i < img->nversions; i++)
		if (!best || version_compare(img->versions[i].version, best->version) > 0)
			best = &img->versions[i];
	return best;
}

const struct cat_version *catalog_resolve(const struct catalog *cat, const char *tag)
{
	char name[CATALOG_NAME_MAX + 1];
	const char *colon = strchr(tag, ':');
	const char *ref = colon ? colon + 1 : "latest";
	size_t nlen = colon ? (size_t)(colon - tag) : strlen(tag);
	const struct cat_image *img;
	const struct cat_version *v;

	if (nlen == 0 || nlen > CATALOG_NAME_MAX || !catalog_name_valid(ref)) {
		errno = EINVAL;
		return NULL;
	}
	memcpy(name, tag, nlen);
	name[nlen] = '\0';
	if (!catalog_name_valid(name)) {
		errno = EINVAL;
		return NULL;
	}
	img = catalog_image(cat, name);
	if (!img) {
		errno = ENOENT;
		return NULL;
	}
	if ((v = catalog_version(img, ref)))
		return v;
	for (size_t i = 0; i < img->naliases; i++)
		if (strcmp(img->aliases[i].name, ref) == 0)
			return img->aliases[i].target;
	if (!colon && (v = latest_version(img)))
		return v;
	errno = ENOENT;
	return NULL;
}

int version_compare(const char *a, const char *b)
{
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			const char *ea = a, *eb = b;

			while (*a == '0' && isdigit((unsigned char)a[1]))
				a++;
			while (*b == '0' && isdigit((unsigned char)b[1]))
				b++;
			for (ea = a; isdigit((unsigned char)*ea); ea++)
				;
			for (eb = b; isdigit((unsigned char)*eb); eb++)
				;
			if (ea - a != eb - b)
				return ea - a < eb - b ? -1 : 1;
			for (; a < ea; a++, b++)
				if (*a != *b)
					return *a < *b ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return *a ? 1 : *b ? -1 : 0;
}

/* Names ending like these hold a compressed or archived disk, not the disk. */
static int url_is_packed(const char *url)
{
	static const char *const suffixes[] = { ".xz", ".gz", ".zst", ".bz2", ".tar", ".zip", ".tgz" };
	size_t len = strlen(url);
	const char *q = strpbrk(url, "?#");

	if (q)
		len = (size_t)(q - url);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t slen = strlen(suffixes[i]);

		if (len >= slen && strncasecmp(url + len - slen, suffixes[i], slen) == 0)
			return 1;
	}
	return 0;
}

int cat_version_lazy(const struct cat_version *v)
{
	return v->nparts == 0 && !url_is_packed(v->url);
}

void catalog_default_path(char *buf, size_t len)
{
	char exe[4096];
	ssize_t n;

	snprintf(buf, len, "%s/catalog.json", getenv("NIDO_DATADIR") ? getenv("NIDO_DATADIR") : NIDO_DATADIR);
	if (access(buf, R_OK) == 0)
		return;
	/* Not installed: the programs run from build/ in the source tree. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(buf, len, "%s/../fetch/default-catalog.json", exe);
}

int cat_version_arch_ok(const struct cat_version *v)
{
	return !v->arch[0] || strcmp(v->arch, "amd64") == 0 || strcmp(v->arch, "x86_64") == 0;
}

void cat_version_tag(const struct cat_version *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s", v->image->name, v->version);
}

const char *cat_version_disk_name(const struct cat_version *v)
{
	return strcmp(v->format, "raw") == 0 ? "disk.raw" : "disk.qcow2";
}
