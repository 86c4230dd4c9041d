/* nido: the command-line interface of the original Nido tool, on the same
 * state directory as the nidofs daemon. One table drives dispatch and usage. */
#include <stdio.h>
#include <string.h>

#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"
#include "vmctl/cmd.h"

struct command {
	const char *name;
	int (*run)(struct nido_ctx *ctx, int argc, char **argv);
	const char *usage;
	int json;		/* takes --json */
};

static const struct command commands[] = {
	{ "image", cmd_image,
	  "image list [--json] | pull TAG | update [URL | FILE] | info TAG [--json] | rm TAG", 1 },
	{ "spawn", cmd_spawn,
	  "spawn NAME [--image TAG] [--user-data FILE] [--memory MB] [--cpus N] [--ssh-key FILE] [-y|--yes]", 0 },
	{ "ls", cmd_ls, "ls [--json]", 1 },
	{ "info", cmd_info, "info NAME [--json]", 1 },
	{ "start", cmd_start, "start NAME", 0 },
	{ "stop", cmd_stop, "stop NAME [--force]", 0 },
	{ "rm", cmd_rm, "rm NAME", 0 },
	{ "ssh", cmd_ssh, "ssh NAME [COMMAND...]", 0 },
	{ "config", cmd_config, "config [KEY [VALUE]] [--json]", 1 },
	{ "umount", cmd_umount, "umount [--stop-vms]", 0 },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: nido COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  nido %s\n", commands[i].usage);
	fprintf(out, "  nido -h | --help | -V | --version\n\n"
		     "State directory: $NIDO_HOME, else ~/.nido. See nido(1).\n");
}

int main(int argc, char **argv)
{
	struct nido_ctx ctx = { 0 };
	char err[1024];

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("nido %s\n", NIDO_VERSION);
		return 0;
	}
	log_init("nido", 0, LOG_LEVEL_WARN);
	http_global_init();
	ctx.home = nido_home();
	path_join(ctx.config_path, sizeof(ctx.config_path), ctx.home, "config");
	config_defaults(&ctx.cfg);
	if (config_load(ctx.config_path, &ctx.cfg, err, sizeof(err)) < 0)
		return fail("%s", err);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		int rest = argc - 2, rc;

		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* Arguments after `ssh NAME` are the remote command's, --json included. */
		if (commands[i].run != cmd_ssh)
			rest = take_json_flag(&ctx, rest, argv + 2);
		if (rest < 0)
			return 2;
		rc = commands[i].run(&ctx, rest, argv + 2);
		catalog_free(ctx.cat);
		return rc;
	}
	fprintf(stderr, "nido: unknown command '%s'; run 'nido help' to list the commands\n",
		log_escape(argv[1], err, ARG_QUOTE_MAX));
	return 2;
}
