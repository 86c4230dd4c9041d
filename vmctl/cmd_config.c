/* `nido config [KEY [VALUE]]`: shows or changes the configuration file that
 * the daemon shows as MOUNTPOINT/config. */
#include "vmctl/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fetch/files.h"
#include "fetch/log.h"

static int show_all(struct nido_ctx *ctx)
{
	const char *const *keys = config_keys();
	char value[CONFIG_TEXT_MAX], *text;
	cJSON *o;

	if (!ctx->json) {
		text = config_format(&ctx->cfg);
		if (!text)
			return fail("out of memory");
		fputs(text, stdout);
		free(text);
		return 0;
	}
	o = cJSON_CreateObject();
	for (size_t i = 0; keys[i]; i++) {
		config_get(&ctx->cfg, keys[i], value, sizeof(value));
		cJSON_AddStringToObject(o, keys[i], value);
	}
	return print_json(o);
}

/* Warns when the image key names a tag the catalog does not resolve: the
 * value is kept (the catalog may change), but a later mkdir would fail. */
static void warn_unknown_image(struct nido_ctx *ctx, const char *key)
{
	char quoted[ARG_QUOTE_MAX];
	struct catalog *cat;

	if (strcmp(key, "image") != 0 || !(cat = ctx_catalog(ctx)))
		return;
	if (!catalog_resolve(cat, ctx->cfg.image))
		fprintf(stderr, "nido: warning: image %s is not in the catalog %s; 'mkdir vms/NAME' "
			"will fail until it is (see 'nido image list')\n",
			log_escape(ctx->cfg.image, quoted, sizeof(quoted)), cat->source);
}

int cmd_config(struct nido_ctx *ctx, int argc, char **argv)
{
	char value[CONFIG_TEXT_MAX], err[512], quoted[ARG_QUOTE_MAX];
	int rc;

	if (argc == 0)
		return show_all(ctx);
	if (argc == 1) {
		if (config_get(&ctx->cfg, argv[0], value, sizeof(value)) < 0)
			return fail("unknown configuration key '%s'; run 'nido config' to list them",
				    log_escape(argv[0], quoted, sizeof(quoted)));
		if (ctx->json)
			return print_json(cJSON_CreateString(value));
		printf("%s\n", value);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "usage: nido config [KEY [VALUE]] [--json]\n");
		return 2;
	}
	if (config_set(&ctx->cfg, argv[0], argv[1], err, sizeof(err)) < 0)
		return fail("%s; nothing changed", err);
	warn_unknown_image(ctx, argv[0]);
	mkdir_p(ctx->home, 0700);
	if ((rc = config_save(ctx->config_path, &ctx->cfg)) < 0)
		return fail("%s: cannot write: %s", ctx->config_path, strerror(-rc));
	return 0;
}
