/* Unit tests of catalog parsing, validation, alias and tag resolution. */
#include <errno.h>
#include <string.h>

#include "fetch/catalog.h"
#include "tests/unit/unit.h"

#define SHA_A "0533b0655c32e68b31d792ecd6ccfca95abdbc536c4446874fe0513bd4140ffe"
#define NUL_REASON "a string or member name contains a NUL character (\\u0000)"

static const char good[] =
	"{\"schema_version\":\"1\",\"updated_at\":\"x\",\"unknown\":1,\"images\":[\n"
	" {\"name\":\"alpine\",\"registry\":\"official\",\"description\":\"d\",\"versions\":[\n"
	"  {\"version\":\"3.20\",\"aliases\":[\"3.20\",\"latest\"],\"url\":\"https://a/x.qcow2\","
	"   \"checksum_type\":\"sha256\",\"checksum\":\"" SHA_A "\",\"size_bytes\":100,\"format\":\"qcow2\"},\n"
	"  {\"version\":\"3.21\",\"aliases\":[\"latest\",\"edge\"],\"url\":\"https://a/y.qcow2\","
	"   \"checksum_type\":\"\",\"checksum\":\"\",\"size_bytes\":200,\"format\":\"raw\"},\n"
	"  {\"version\":\"3.9\",\"aliases\":[\"latest\"],\"url\":\"https://a/z.qcow2\","
	"   \"checksum_type\":\"\",\"checksum\":\"\",\"size_bytes\":300,\"format\":\"qcow2\"},\n"
	"  {\"version\":\"../etc\",\"url\":\"https://a/b\",\"size_bytes\":1,\"format\":\"qcow2\"},\n"
	"  {\"version\":\"9\",\"url\":\"file:///etc/passwd\",\"size_bytes\":1,\"format\":\"qcow2\"},\n"
	"  {\"version\":\"8\",\"url\":\"https://a/k.tar.xz\",\"size_bytes\":1,\"format\":\"raw\"},\n"
	"  {\"version\":\"7\",\"url\":\"https://a/b\",\"checksum_type\":\"sha256\",\"checksum\":\"abc\","
	"   \"size_bytes\":1,\"format\":\"qcow2\"}\n"
	" ]}]}";

/* Returns 1 when cat->problems has exactly this message. */
static int has_problem(const struct catalog *cat, const char *message)
{
	for (size_t i = 0; i < cat->nproblems; i++)
		if (strcmp(cat->problems[i], message) == 0)
			return 1;
	return 0;
}

static void test_parse(void)
{
	struct catalog *cat = NULL;
	const struct cat_image *img;
	char err[256];
	int rc = catalog_parse(good, sizeof(good) - 1, "good.json", &cat, err, sizeof(err));

	CHECK("catalog parses", rc == 0);
	CHECK("catalog returned", cat != NULL);
	if (!cat)
		return;
	img = catalog_image(cat, "alpine");
	CHECK("image found", img != NULL);
	CHECK("valid versions kept", img && img->nversions == 4);
	CHECK("bad entries and lost aliases reported one by one", cat->nproblems == 5);
	CHECK("path escape rejected", img && !catalog_version(img, "../etc"));
	CHECK("file url rejected", img && !catalog_version(img, "9"));
	CHECK("short checksum rejected", img && !catalog_version(img, "7"));
	CHECK("size read", img && catalog_version(img, "3.21")->size == 200);
	CHECK("packed entry kept", img && catalog_version(img, "8") != NULL);
	CHECK("packed entry is not lazy", img && !cat_version_lazy(catalog_version(img, "8")));
	CHECK("plain entry is lazy", img && cat_version_lazy(catalog_version(img, "3.20")));
	catalog_free(cat);
}

static void test_alias_collisions(void)
{
	struct catalog *cat = NULL;
	const struct cat_version *v;
	char err[256];

	if (catalog_parse(good, sizeof(good) - 1, "good.json", &cat, err, sizeof(err)) < 0)
		return;
	CHECK("lost alias of a lower version reported",
	      has_problem(cat, "alpine:3.20: alias 'latest' rejected: also claimed by alpine:3.21, which keeps it"));
	CHECK("lost alias of a version listed later reported",
	      has_problem(cat, "alpine:3.9: alias 'latest' rejected: also claimed by alpine:3.21, which keeps it"));
	v = catalog_version(&cat->images[0], "3.20");
	CHECK("loser version found", v != NULL);
	CHECK("loser's list lost the alias", v && v->naliases == 1);
	CHECK("loser's list keeps the rest", v && strcmp(v->aliases[0], "3.20") == 0);
	v = catalog_version(&cat->images[0], "3.21");
	CHECK("winner version found", v != NULL);
	CHECK("winner keeps its aliases", v && v->naliases == 2);
	CHECK("loser is kept", catalog_resolve(cat, "alpine:3.9") != NULL);
	catalog_free(cat);
}

static void test_alias_tie(void)
{
	static const char text[] =
		"{\"images\":[{\"name\":\"t\",\"versions\":["
		"{\"version\":\"1.00\",\"aliases\":[\"x\"],\"url\":\"http://a/1\",\"size_bytes\":1,\"format\":\"raw\"},"
		"{\"version\":\"1.0\",\"aliases\":[\"x\"],\"url\":\"http://a/2\",\"size_bytes\":1,\"format\":\"raw\"}]}]}";
	struct catalog *cat = NULL;
	const struct cat_version *v;
	char err[256];

	CHECK("tie catalog parses", catalog_parse(text, sizeof(text) - 1, "tie", &cat, err, sizeof(err)) == 0);
	if (!cat)
		return;
	v = catalog_resolve(cat, "t:x");
	CHECK("tied alias resolves", v != NULL);
	CHECK("tied alias: the first listed keeps it", v && strcmp(v->version, "1.00") == 0);
	CHECK("the second claim is reported",
	      has_problem(cat, "t:1.0: alias 'x' rejected: also claimed by t:1.00, which keeps it"));
	catalog_free(cat);
}

/* A string literal and its length, raw NUL bytes included. */
#define LIT(s) s, sizeof(s) - 1

/* Parses a catalog of the image "n" with a good version "1", then the
 * version objects in version, then the image objects in image. Both are JSON
 * text of the given length, with a leading comma when not empty. */
static int parse_spliced(const char *version, size_t vlen, const char *image, size_t ilen,
			 struct catalog **cat, char *err, size_t errlen)
{
	static const char head[] = "{\"images\":[{\"name\":\"n\",\"versions\":[{\"version\":\"1\","
				   "\"url\":\"http://a/1\",\"size_bytes\":1,\"format\":\"raw\"}";
	char text[4096];
	size_t n = 0;

	if (sizeof(head) + vlen + ilen + 8 > sizeof(text))
		return -1;
	memcpy(text, head, sizeof(head) - 1);
	n += sizeof(head) - 1;
	memcpy(text + n, version, vlen);
	n += vlen;
	memcpy(text + n, "]}", 2);
	n += 2;
	memcpy(text + n, image, ilen);
	n += ilen;
	memcpy(text + n, "]}", 2);
	n += 2;
	return catalog_parse(text, n, "nul.json", cat, err, errlen);
}

/* One case of an entry with a NUL: where it is and the expected message. */
struct nul_case {
	const char *name;
	const char *version;
	size_t vlen;
	const char *image;
	size_t ilen;
	const char *expect;
};

#define GOOD_V(fields) ",{" fields "\"url\":\"http://a/2\",\"size_bytes\":1,\"format\":\"raw\"}"
#define GOOD_I(fields) ",{" fields "\"versions\":[]}"

static const struct nul_case nul_cases[] = {
	{ "version name with \\u0000", LIT(GOOD_V("\"version\":\"2\\u0000/../x\",")), "", 0,
	  "n:2: entry rejected: " NUL_REASON },
	{ "version name with a raw NUL", LIT(GOOD_V("\"version\":\"2\0/../x\",")), "", 0,
	  "n:2: entry rejected: " NUL_REASON },
	{ "member name with \\u0000", LIT(GOOD_V("\"version\":\"3\",\"url\\u0000x\":\"file:///etc/passwd\",")), "", 0,
	  "n:3: entry rejected: " NUL_REASON },
	{ "unknown member with \\u0000", LIT(GOOD_V("\"version\":\"4\",\"note\":[\"a\\u0000\"],")), "", 0,
	  "n:4: entry rejected: " NUL_REASON },
	{ "alias with \\u0000", LIT(GOOD_V("\"version\":\"5\",\"aliases\":[\"ok\\u0000../x\"],")), "", 0,
	  "n:5: entry rejected: " NUL_REASON },
	{ "image name with \\u0000", "", 0, LIT(GOOD_I("\"name\":\"abc\\u0000../x\",")),
	  "image abc: entry rejected: " NUL_REASON },
	{ "image name starting with \\u0000", "", 0, LIT(GOOD_I("\"name\":\"\\u0000x\",")),
	  "image ?: entry rejected: " NUL_REASON },
	{ "description with a raw NUL", "", 0, LIT(GOOD_I("\"name\":\"d\",\"description\":\"a\0b\",")),
	  "image d: entry rejected: " NUL_REASON },
	{ "member name of an image with \\u0000", "", 0, LIT(GOOD_I("\"name\":\"e\",\"name\\u0000\":\"f\",")),
	  "image e: entry rejected: " NUL_REASON },
};

static void test_nul(void)
{
	struct catalog *cat;
	char err[256], name[128];

	for (size_t i = 0; i < sizeof(nul_cases) / sizeof(nul_cases[0]); i++) {
		const struct nul_case *c = &nul_cases[i];
		int rc;

		cat = NULL;
		rc = parse_spliced(c->version, c->vlen, c->image, c->ilen, &cat, err, sizeof(err));
		snprintf(name, sizeof(name), "%s: catalog parses", c->name);
		CHECK(name, rc == 0);
		if (rc != 0)
			continue;
		snprintf(name, sizeof(name), "%s: rejected with its message", c->name);
		CHECK(name, has_problem(cat, c->expect));
		snprintf(name, sizeof(name), "%s: nothing else rejected", c->name);
		CHECK(name, cat->nproblems == 1);
		snprintf(name, sizeof(name), "%s: the good version stays", c->name);
		CHECK(name, catalog_resolve(cat, "n:1") != NULL);
		snprintf(name, sizeof(name), "%s: no other image", c->name);
		CHECK(name, cat->nimages == 1);
		snprintf(name, sizeof(name), "%s: no other version", c->name);
		CHECK(name, cat->images[0].nversions == 1);
		catalog_free(cat);
	}
}

static void test_nul_not_found(void)
{
	struct catalog *cat = NULL;
	char err[256] = "";
	int rc;

	/* An escaped backslash followed by u0000 is text, not a NUL. */
	rc = parse_spliced(LIT(GOOD_V("\"version\":\"2\",\"cmdline\":\"a\\\\u0000\",")), "", 0,
			   &cat, err, sizeof(err));
	CHECK("escaped backslash before u0000: parses", rc == 0);
	if (rc == 0) {
		CHECK("escaped backslash before u0000: accepted", cat->nproblems == 0);
		CHECK("escaped backslash before u0000: kept as text",
		      strcmp(catalog_resolve(cat, "n:2")->cmdline, "a\\u0000") == 0);
		catalog_free(cat);
	}
	cat = NULL;
	rc = catalog_parse(LIT("{\"schema_version\":\"1\\u0000\",\"images\":[]}"), "root.json", &cat,
			   err, sizeof(err));
	CHECK("NUL outside the images list: document rejected", rc == -EINVAL);
	CHECK("NUL outside the images list: message",
	      strcmp(err, "root.json: not a catalog: outside the images list, " NUL_REASON) == 0);
}

static void test_resolve(void)
{
	struct catalog *cat = NULL;
	char err[256];
	const struct cat_version *v;

	if (catalog_parse(good, sizeof(good) - 1, "good.json", &cat, err, sizeof(err)) < 0)
		return;
	v = catalog_resolve(cat, "alpine:3.20");
	CHECK("tag by version resolves", v != NULL);
	CHECK("tag by version is 3.20", v && strcmp(v->version, "3.20") == 0);
	v = catalog_resolve(cat, "alpine:latest");
	CHECK("shared alias goes to the highest version", v && strcmp(v->version, "3.21") == 0);
	v = catalog_resolve(cat, "alpine:edge");
	CHECK("tag by alias", v && strcmp(v->version, "3.21") == 0);
	v = catalog_resolve(cat, "alpine");
	CHECK("bare name means latest", v && strcmp(v->version, "3.21") == 0);
	errno = 0;
	CHECK("unknown tag", !catalog_resolve(cat, "alpine:1") && errno == ENOENT);
	errno = 0;
	CHECK("malformed tag", !catalog_resolve(cat, "alpine:../x") && errno == EINVAL);
	CHECK("unknown image", !catalog_resolve(cat, "nope:1"));
	catalog_free(cat);
}

static void test_errors(void)
{
	struct catalog *cat = NULL;
	char err[256] = "";
	const char bad[] = "{\"images\": [\n  {\"name\": \"x\",\n   oops}]}";

	CHECK("invalid JSON rejected", catalog_parse(bad, sizeof(bad) - 1, "bad.json", &cat, err, sizeof(err)) == -EINVAL);
	CHECK("error names the file", strstr(err, "bad.json") != NULL);
	CHECK("error names the line", strstr(err, "line 3") != NULL);
	CHECK("not a catalog rejected", catalog_parse("[1]", 3, "arr.json", &cat, err, sizeof(err)) == -EINVAL);
	CHECK("load of the shipped catalog",
	      catalog_load_file("fetch/default-catalog.json", &cat, err, sizeof(err)) == 0 &&
	      cat->nimages == 5);
	if (cat) {
		const struct cat_version *v = catalog_resolve(cat, "alpine:latest");

		CHECK("shipped catalog: one problem", cat->nproblems == 1);
		CHECK("shipped catalog: alpine:3.20 loses latest",
		      has_problem(cat, "alpine:3.20: alias 'latest' rejected: also claimed by alpine:3.21, which keeps it"));
		CHECK("shipped alpine:latest is 3.21", v && strcmp(v->version, "3.21") == 0);
		CHECK("shipped ubuntu:noble", catalog_resolve(cat, "ubuntu:noble") != NULL);
		catalog_free(cat);
	}
}

static void test_versions(void)
{
	CHECK("numeric order", version_compare("3.9", "3.21") < 0);
	CHECK("equal", version_compare("24.04", "24.04") == 0);
	CHECK("leading zeros", version_compare("24.04", "24.4") == 0);
	CHECK("longer wins", version_compare("1.0.1", "1.0") > 0);
	CHECK("names", catalog_name_valid("noble") && !catalog_name_valid("..") &&
	      !catalog_name_valid("a/b") && !catalog_name_valid("") && !catalog_name_valid("-x"));
}

int main(void)
{
	test_parse();
	test_alias_collisions();
	test_alias_tie();
	test_nul();
	test_nul_not_found();
	test_resolve();
	test_errors();
	test_versions();
	return unit_exit();
}
