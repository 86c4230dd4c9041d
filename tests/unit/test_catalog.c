/* Unit tests of catalog parsing, validation, alias and tag resolution. */
#include <errno.h>
#include <string.h>

#include "fetch/catalog.h"
#include "tests/unit/unit.h"

#define SHA_A "0533b0655c32e68b31d792ecd6ccfca95abdbc536c4446874fe0513bd4140ffe"

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
	CHECK("bad entries reported one by one", cat->nproblems == 3);
	CHECK("path escape rejected", img && !catalog_version(img, "../etc"));
	CHECK("file url rejected", img && !catalog_version(img, "9"));
	CHECK("short checksum rejected", img && !catalog_version(img, "7"));
	CHECK("size read", img && catalog_version(img, "3.21")->size == 200);
	CHECK("packed entry kept", img && catalog_version(img, "8") != NULL);
	CHECK("packed entry is not lazy", img && !cat_version_lazy(catalog_version(img, "8")));
	CHECK("plain entry is lazy", img && cat_version_lazy(catalog_version(img, "3.20")));
	catalog_free(cat);
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
	      cat->nimages == 5 && cat->nproblems == 0);
	if (cat) {
		const struct cat_version *v = catalog_resolve(cat, "alpine:latest");

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
	test_resolve();
	test_errors();
	test_versions();
	return unit_exit();
}
