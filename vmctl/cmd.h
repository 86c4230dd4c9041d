/* Shared parts of the `nido` command: the command table, option parsing,
 * and access to the catalog, configuration and mount that the daemon uses. */
#ifndef NIDO_CMD_H
#define NIDO_CMD_H

#include <limits.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "fetch/catalog.h"
#include "fetch/config.h"

struct nido_ctx {
	const char *home;
	struct nido_config cfg;
	char config_path[PATH_MAX];
	struct catalog *cat;	/* loaded on first use by ctx_catalog */
	int json;		/* --json given */
};

/* Room for one command-line value in a message, escaped by log_escape so
 * that control characters in it cannot start a line or move the cursor. */
#define ARG_QUOTE_MAX 160

/* Prints "nido: MESSAGE" to stderr and returns exit status 1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads the catalog a running daemon shows, else the one it would show;
 * NULL after printing why. */
struct catalog *ctx_catalog(struct nido_ctx *ctx);

/* Resolves a tag or prints why not. */
const struct cat_version *ctx_resolve(struct nido_ctx *ctx, const char *tag);

/* Writes the active mount point into buf; -ENOENT when no daemon runs. */
int find_mount(const char *home, char *buf, size_t len);

/* Path of a version's content-named image file inside a mount (images/). */
void mount_image_path(const char *mnt, const struct cat_version *v, char *buf, size_t len);

/* Takes "--json" out of argv (anywhere); returns the new argc, or -1 after
 * printing an error when it is given twice. */
int take_json_flag(struct nido_ctx *ctx, int argc, char **argv);

/* Prints root as indented JSON on stdout and frees it; 0, or 1 after a message. */
int print_json(cJSON *root);

/* Formats bytes as "600 MB" style text. */
void format_size(unsigned long long bytes, char *buf, size_t len);

int cmd_image(struct nido_ctx *ctx, int argc, char **argv);
int cmd_spawn(struct nido_ctx *ctx, int argc, char **argv);
int cmd_ls(struct nido_ctx *ctx, int argc, char **argv);
int cmd_info(struct nido_ctx *ctx, int argc, char **argv);
int cmd_start(struct nido_ctx *ctx, int argc, char **argv);
int cmd_stop(struct nido_ctx *ctx, int argc, char **argv);
int cmd_rm(struct nido_ctx *ctx, int argc, char **argv);
int cmd_ssh(struct nido_ctx *ctx, int argc, char **argv);
int cmd_config(struct nido_ctx *ctx, int argc, char **argv);
int cmd_umount(struct nido_ctx *ctx, int argc, char **argv);

/* Pulls an image into the cache (through the mount when one runs). */
int pull_image(struct nido_ctx *ctx, const struct cat_version *v);

#endif
