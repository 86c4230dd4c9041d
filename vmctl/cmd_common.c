/* Shared parts of the `nido` command; see cmd.h. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"

int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("nido: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static void catalog_path(const struct nido_ctx *ctx, char *buf, size_t len)
{
	path_join(buf, len, ctx->home, "catalog.json");
	if (access(buf, F_OK) != 0)
		catalog_default_path(buf, len);
}

/* The catalog source a running daemon recorded; -ENOENT when none runs. */
static int mount_catalog(const char *home, char *buf, size_t len)
{
	char mnt[PATH_MAX], path[PATH_MAX], *text, *line;
	size_t n;

	if (find_mount(home, mnt, sizeof(mnt)) < 0)
		return -ENOENT;
	path_join(path, sizeof(path), home, "mount");
	if (read_file(path, 3 * PATH_MAX, &text, &n) < 0)
		return -ENOENT;
	line = strstr(text, "\ncatalog ");
	if (line) {
		line += strlen("\ncatalog ");
		line[strcspn(line, "\n")] = '\0';
		snprintf(buf, len, "%s", line);
	}
	free(text);
	return line && buf[0] ? 0 : -ENOENT;
}

static int load_url(struct nido_ctx *ctx, const char *url, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = http_get_document(url, ctx->cfg.ca_file, CATALOG_MAX_FILE, &text, &len, err, errlen);

	if (rc < 0)
		return rc;
	rc = catalog_parse(text, len, url, &ctx->cat, err, errlen);
	free(text);
	return rc;
}

struct catalog *ctx_catalog(struct nido_ctx *ctx)
{
	char path[PATH_MAX], err[1024];
	int rc;

	if (ctx->cat)
		return ctx->cat;
	if (mount_catalog(ctx->home, path, sizeof(path)) < 0)
		catalog_path(ctx, path, sizeof(path));
	if (strstr(path, "://"))
		rc = load_url(ctx, path, err, sizeof(err));
	else
		rc = catalog_load_file(path, &ctx->cat, err, sizeof(err));
	if (rc < 0) {
		fail("%s", err);
		return NULL;
	}
	return ctx->cat;
}

const struct cat_version *ctx_resolve(struct nido_ctx *ctx, const char *tag)
{
	const struct cat_version *v;
	char quoted[ARG_QUOTE_MAX];

	if (!ctx_catalog(ctx))
		return NULL;
	v = catalog_resolve(ctx->cat, tag);
	if (!v)
		fail("image %s: %s; see 'nido image list'", log_escape(tag, quoted, sizeof(quoted)),
		     errno == EINVAL ? "invalid tag (expected NAME:VERSION or NAME:ALIAS)" : "not in the catalog");
	return v;
}

int find_mount(const char *home, char *buf, size_t len)
{
	char path[PATH_MAX], *text, *space, *nl;
	struct stat st, parent;
	size_t n;
	int pid;

	path_join(path, sizeof(path), home, "mount");
	if (read_file(path, PATH_MAX + 32, &text, &n) < 0)
		return -ENOENT;
	pid = atoi(text);
	space = strchr(text, ' ');
	nl = space ? strchr(space, '\n') : NULL;
	if (nl)
		*nl = '\0';
	/* A stale record (daemon gone) or a mount point that is not mounted is ignored. */
	if (pid <= 0 || !space || kill(pid, 0) < 0 || stat(space + 1, &st) < 0 ||
	    snprintf(path, sizeof(path), "%s/..", space + 1) >= (int)sizeof(path) ||
	    stat(path, &parent) < 0 || st.st_dev == parent.st_dev) {
		free(text);
		return -ENOENT;
	}
	snprintf(buf, len, "%s", space + 1);
	free(text);
	return 0;
}

void mount_image_path(const char *mnt, const struct cat_version *v, char *buf, size_t len)
{
	char entry[256];

	cache_version_entry_name(v, entry, sizeof(entry));
	snprintf(buf, len, "%s/images/%s", mnt, entry);
}

int take_json_flag(struct nido_ctx *ctx, int argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") != 0) {
			argv[out++] = argv[i];
			continue;
		}
		if (ctx->json) {
			fail("--json given twice");
			return -1;
		}
		ctx->json = 1;
	}
	argv[out] = NULL;
	return out;
}

void format_size(unsigned long long bytes, char *buf, size_t len)
{
	if (bytes >= 10ull * 1000 * 1000 * 1000)
		snprintf(buf, len, "%llu GB", bytes / 1000000000ull);
	else if (bytes >= 1000ull * 1000)
		snprintf(buf, len, "%llu MB", (bytes + 500000) / 1000000ull);
	else
		snprintf(buf, len, "%llu KB", (bytes + 500) / 1000ull);
}

int print_json(cJSON *root)
{
	char *text = root ? cJSON_Print(root) : NULL;

	cJSON_Delete(root);
	if (!text)
		return fail("out of memory");
	printf("%s\n", text);
	free(text);
	return 0;
}
