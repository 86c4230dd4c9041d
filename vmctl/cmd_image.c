/* `nido image list|pull|update|info|rm`: the catalog and the image cache. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"
#include "vmctl/vm.h"
#include "vmctl/vmuse.h"

/* The first alias that resolves to v and differs from its version, or NULL. */
static const char *display_alias(const struct cat_version *v)
{
	const struct cat_image *img = v->image;

	for (size_t i = 0; i < v->naliases; i++)
		for (size_t j = 0; j < img->naliases; j++)
			if (strcmp(img->aliases[j].name, v->aliases[i]) == 0 && img->aliases[j].target == v)
				return v->aliases[i];
	return NULL;
}

/* The widest tag, so that the columns line up. */
static int tag_width(const struct catalog *cat)
{
	char tag[160];
	int width = 12;

	for (size_t i = 0; i < cat->nimages; i++)
		for (size_t k = 0; k < cat->images[i].nversions; k++) {
			cat_version_tag(&cat->images[i].versions[k], tag, sizeof(tag));
			if ((int)strlen(tag) > width)
				width = (int)strlen(tag);
		}
	return width;
}

static void print_registry(const struct catalog *cat, const char *registry, int *printed)
{
	char tag[160], size[32], alias[80];
	int width = tag_width(cat);

	for (size_t i = 0; i < cat->nimages; i++) {
		const struct cat_image *img = &cat->images[i];

		if (strcmp(img->registry, registry) != 0)
			continue;
		if (!(*printed)++) {
			for (const char *p = registry; *p; p++)
				putchar(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
			printf(":\n");
		}
		for (size_t k = 0; k < img->nversions; k++) {
			const struct cat_version *v = &img->versions[k];
			const char *a = display_alias(v);

			cat_version_tag(v, tag, sizeof(tag));
			/* Not one snprintf with an empty format, which clang -Wformat-zero-length rejects. */
			if (a)
				snprintf(alias, sizeof(alias), "(%s)", a);
			else
				alias[0] = '\0';
			format_size(v->size, size, sizeof(size));
			printf("  %-*s %-12s %8s\n", width, tag, alias, v->size ? size : "?");
		}
	}
}

static cJSON *version_json(const struct cat_version *v, struct cache *cache)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *aliases = cJSON_AddArrayToObject(o, "aliases");
	char tag[160], path[4096];

	cat_version_tag(v, tag, sizeof(tag));
	cJSON_AddStringToObject(o, "tag", tag);
	cJSON_AddStringToObject(o, "name", v->image->name);
	cJSON_AddStringToObject(o, "version", v->version);
	cJSON_AddStringToObject(o, "registry", v->image->registry);
	for (size_t i = 0; i < v->naliases; i++)
		cJSON_AddItemToArray(aliases, cJSON_CreateString(v->aliases[i]));
	cJSON_AddNumberToObject(o, "size_bytes", (double)v->size);
	cJSON_AddStringToObject(o, "format", v->format);
	cJSON_AddStringToObject(o, "arch", v->arch);
	cJSON_AddStringToObject(o, "url", v->url);
	cJSON_AddStringToObject(o, "checksum_type", v->checksum_type);
	cJSON_AddStringToObject(o, "checksum", v->checksum);
	if (cache) {
		cJSON_AddNumberToObject(o, "cached_bytes", (double)cache_cached_bytes(cache, v));
		cJSON_AddBoolToObject(o, "complete", cache_complete_path(cache, v, path, sizeof(path)) == 0);
	}
	return o;
}

static int image_list(struct nido_ctx *ctx)
{
	struct catalog *cat = ctx_catalog(ctx);
	int printed_official = 0, printed_nido = 0;

	if (!cat)
		return 1;
	if (ctx->json) {
		cJSON *arr = cJSON_CreateArray();

		for (size_t i = 0; i < cat->nimages; i++)
			for (size_t k = 0; k < cat->images[i].nversions; k++)
				cJSON_AddItemToArray(arr, version_json(&cat->images[i].versions[k], NULL));
		return print_json(arr);
	}
	print_registry(cat, "official", &printed_official);
	print_registry(cat, "nido", &printed_nido);
	for (size_t i = 0; i < cat->nimages; i++) {
		int printed = 0, seen = 0;
		const char *r = cat->images[i].registry;

		for (size_t j = 0; j < i; j++)
			seen |= strcmp(cat->images[j].registry, r) == 0;
		if (!seen && strcmp(r, "official") != 0 && strcmp(r, "nido") != 0)
			print_registry(cat, r, &printed);
	}
	return 0;
}

/* Reads the catalog text from source: an http or https URL, or the path of
 * an existing file. Anything else is rejected before any network traffic,
 * because a bare name such as mycat.json must not turn into a host lookup.
 * Prints the error and returns 1, or returns 0 with a malloc'd *text. */
static int read_catalog_source(struct nido_ctx *ctx, const char *source, const char *shown,
			       char **text, size_t *len)
{
	char err[1024];
	int rc;

	if (http_url_supported(source)) {
		rc = http_get_document(source, ctx->cfg.ca_file, CATALOG_MAX_FILE, text, len, err, sizeof(err));
		if (rc < 0)
			return fail("image update: %s: cannot fetch the catalog: %s", shown, err);
		return 0;
	}
	if (access(source, F_OK) != 0)
		return fail("image update: %s: not an http or https URL and no such file", shown);
	rc = read_file(source, CATALOG_MAX_FILE, text, len);
	if (rc < 0)
		return fail("image update: %s: cannot read the catalog: %s", shown, strerror(-rc));
	return 0;
}

static int image_update(struct nido_ctx *ctx, int argc, char **argv)
{
	const char *source = argc > 0 ? argv[0] : ctx->cfg.catalog_url;
	struct catalog *cat = NULL;
	char path[4096], err[1024], shown[ARG_QUOTE_MAX], *text;
	size_t len;
	int rc;

	/* The source may come from the command line: messages show it escaped. */
	log_escape(source, shown, sizeof(shown));
	if (read_catalog_source(ctx, source, shown, &text, &len))
		return 1;
	rc = catalog_parse(text, len, shown, &cat, err, sizeof(err));
	if (rc == 0 && cat->nimages == 0) {
		snprintf(err, sizeof(err), "%s: catalog lists no usable image", shown);
		rc = -EINVAL;
	}
	if (rc < 0) {
		free(text);
		catalog_free(cat);
		return fail("%s; the current catalog is unchanged", err);
	}
	for (size_t i = 0; i < cat->nproblems; i++)
		fprintf(stderr, "nido: warning: %s: %s\n", shown, cat->problems[i]);
	mkdir_p(ctx->home, 0700);
	path_join(path, sizeof(path), ctx->home, "catalog.json");
	rc = write_file_atomic(path, text, len, 0644);
	free(text);
	if (rc < 0) {
		catalog_free(cat);
		return fail("%s: cannot write: %s", path, strerror(-rc));
	}
	printf("catalog updated: %zu images from %s\n", cat->nimages, shown);
	catalog_free(cat);
	return 0;
}

static int image_info(struct nido_ctx *ctx, const char *tag)
{
	const struct cat_version *v = ctx_resolve(ctx, tag);
	struct cache *cache = NULL;
	char dir[4096], size[32];
	cJSON *o;
	int rc;

	if (!v)
		return 1;
	path_join(dir, sizeof(dir), ctx->home, "images");
	if ((rc = cache_open(dir, ctx->cfg.ca_file, &cache)) < 0)
		return fail("%s: cannot open the image cache: %s", dir, strerror(-rc));
	o = version_json(v, cache);
	cache_close(cache);
	if (ctx->json)
		return print_json(o);
	format_size(v->size, size, sizeof(size));
	printf("tag:          %s\n", cJSON_GetObjectItem(o, "tag")->valuestring);
	printf("description:  %s\n", v->image->description);
	printf("registry:     %s\n", v->image->registry);
	printf("format:       %s, %s\n", v->format, v->arch);
	printf("size:         %s (%.0f bytes)\n", size, (double)v->size);
	printf("url:          %s\n", v->url);
	printf("checksum:     %s%s%s\n", v->checksum_type, v->checksum[0] ? ":" : "none", v->checksum);
	printf("cached:       %.0f bytes%s\n", cJSON_GetObjectItem(o, "cached_bytes")->valuedouble,
	       cJSON_IsTrue(cJSON_GetObjectItem(o, "complete")) ? " (complete, verified)" : "");
	cJSON_Delete(o);
	return 0;
}

static int image_pull(struct nido_ctx *ctx, const char *tag)
{
	const struct cat_version *v = ctx_resolve(ctx, tag);

	return v ? pull_image(ctx, v) : 1;
}

static int image_rm(struct nido_ctx *ctx, const char *tag)
{
	const struct cat_version *v = ctx_resolve(ctx, tag);
	char id[160], dir[4096], lock[4096];
	int fd, rc;

	if (!v)
		return 1;
	cache_image_id(v, id, sizeof(id));
	snprintf(dir, sizeof(dir), "%s/images/%s", ctx->home, id);
	if (access(dir, F_OK) != 0)
		return fail("image %s: not cached", tag);
	if (vm_uses_image(ctx->home, id))
		return fail("image %s: in use by a VM; remove the VM first", tag);
	snprintf(lock, sizeof(lock), "%s/lock", dir);
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return fail("image %s: in use by the nidofs daemon or a pull", tag);
	}
	rc = remove_tree(dir);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return fail("image %s: cannot remove %s: %s", tag, dir, strerror(-rc));
	printf("removed %s\n", tag);
	return 0;
}

static const char *const image_usages[][2] = {
	{ "list", "image list [--json]" },
	{ "pull", "image pull TAG" },
	{ "update", "image update [URL | FILE]" },
	{ "info", "image info TAG [--json]" },
	{ "rm", "image rm TAG" },
};

#define NIMAGE_USAGES (sizeof(image_usages) / sizeof(image_usages[0]))

/* Prints the usage of subcommand sub, every usage when sub is empty, or one
 * line naming an unknown subcommand; returns exit status 2. */
static int image_usage(const char *sub)
{
	char quoted[ARG_QUOTE_MAX];

	for (size_t i = 0; i < NIMAGE_USAGES; i++) {
		if (strcmp(sub, image_usages[i][0]) == 0) {
			fprintf(stderr, "usage: nido %s\n", image_usages[i][1]);
			return 2;
		}
	}
	if (sub[0]) {
		fail("unknown image command '%s'; expected list, pull, update, info or rm",
		     log_escape(sub, quoted, sizeof(quoted)));
		return 2;
	}
	for (size_t i = 0; i < NIMAGE_USAGES; i++)
		fprintf(stderr, "%s nido %s\n", i == 0 ? "usage:" : "      ", image_usages[i][1]);
	return 2;
}

int cmd_image(struct nido_ctx *ctx, int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : "";

	if (strcmp(sub, "list") == 0 && argc == 1)
		return image_list(ctx);
	if (strcmp(sub, "update") == 0 && argc <= 2)
		return image_update(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "pull") == 0 && argc == 2)
		return image_pull(ctx, argv[1]);
	if (strcmp(sub, "info") == 0 && argc == 2)
		return image_info(ctx, argv[1]);
	if (strcmp(sub, "rm") == 0 && argc == 2)
		return image_rm(ctx, argv[1]);
	return image_usage(sub);
}
