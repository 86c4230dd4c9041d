/* libFuzzer harness for catalog_parse. Any bytes must either fail with a
 * message or give a catalog that passes the checks the FUSE tree and the VM
 * code rely on. Names are usable as one path component, tags resolve back to
 * their version, and messages and shown text stay on one line. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/catalog.h"

/* The replay test in tests/unit includes this file under another name. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void catalog_fail(const char *problem, const char *value)
{
	fprintf(stderr, "fuzz_catalog: %s: '%s'\n", problem, value);
	abort();
}

static void catalog_check_line(const char *problem, const char *text)
{
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			catalog_fail(problem, text);
}

static void catalog_check_version(const struct catalog *cat, const struct cat_image *img,
				  const struct cat_version *v)
{
	char tag[2 * CATALOG_NAME_MAX + 2];

	if (!catalog_name_valid(v->version))
		catalog_fail("accepted version with an invalid name", v->version);
	if (strcmp(v->format, "qcow2") != 0 && strcmp(v->format, "raw") != 0)
		catalog_fail("accepted version with an invalid format", v->format);
	if (v->image != img)
		catalog_fail("version not linked to its image", v->version);
	catalog_check_line("arch shown with a control character", v->arch);
	for (size_t k = 0; k < v->naliases; k++)
		if (!catalog_name_valid(v->aliases[k]))
			catalog_fail("invalid alias kept in the version's list", v->aliases[k]);
	snprintf(tag, sizeof(tag), "%s:%s", img->name, v->version);
	if (catalog_resolve(cat, tag) != v)
		catalog_fail("tag does not resolve to its version", tag);
	(void)cat_version_lazy(v);
	(void)cat_version_arch_ok(v);
	(void)cat_version_disk_name(v);
}

static void catalog_check(const struct catalog *cat)
{
	char tag[2 * CATALOG_NAME_MAX + 2];

	for (size_t i = 0; i < cat->nproblems; i++)
		catalog_check_line("problem message with a control character", cat->problems[i]);
	for (size_t i = 0; i < cat->nimages; i++) {
		const struct cat_image *img = &cat->images[i];

		if (!catalog_name_valid(img->name))
			catalog_fail("accepted image with an invalid name", img->name);
		if (catalog_image(cat, img->name) != img)
			catalog_fail("image name listed twice", img->name);
		catalog_check_line("description shown with a control character", img->description);
		catalog_check_line("registry shown with a control character", img->registry);
		for (size_t j = 0; j < img->nversions; j++)
			catalog_check_version(cat, img, &img->versions[j]);
		for (size_t j = 0; j < img->naliases; j++) {
			const struct cat_alias *a = &img->aliases[j];

			if (!catalog_name_valid(a->name) || a->target->image != img)
				catalog_fail("alias invalid or pointing to another image", a->name);
			snprintf(tag, sizeof(tag), "%s:%s", img->name, a->name);
			if (catalog_resolve(cat, tag) != a->target)
				catalog_fail("alias does not resolve to its target", tag);
		}
		(void)catalog_resolve(cat, img->name);
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct catalog *cat = NULL;
	char err[512] = "";
	int rc;

	/* catalog_parse takes a length, so the bytes get no terminating NUL:
	 * a read past the end shows up under AddressSanitizer. */
	rc = catalog_parse((const char *)data, size, "fuzz", &cat, err, sizeof(err));
	if (rc < 0) {
		if (!err[0] && rc != -ENOMEM)
			catalog_fail("failed without a message", "");
		/* The NUL scan of fetch/json_nul.c found other strings than cJSON. */
		if (rc == -EPROTO)
			catalog_fail("JSON strings do not match the parsed document", err);
		return 0;
	}
	catalog_check(cat);
	catalog_free(cat);
	return 0;
}
