/* `nido spawn NAME --image TAG ...`: creates and boots a VM in one step, with
 * its own user-data and resources, without a first boot on the defaults. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/seed.h"
#include "vmctl/inspect.h"
#include "vmctl/vm.h"

struct spawn_args {
	const char *name, *image, *user_data, *memory, *cpus, *ssh_key;
	int yes;
};

static int parse_args(int argc, char **argv, struct spawn_args *a)
{
	struct { const char *flag; const char **dst; } flags[] = {
		{ "--image", &a->image }, { "--user-data", &a->user_data }, { "--memory", &a->memory },
		{ "--cpus", &a->cpus }, { "--ssh-key", &a->ssh_key },
	};
	char quoted[ARG_QUOTE_MAX];

	for (int i = 0; i < argc; i++) {
		size_t k;

		if (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0) {
			if (a->yes)
				return fail("--yes given twice");
			a->yes = 1;
			continue;
		}
		for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
			if (strcmp(argv[i], flags[k].flag) == 0)
				break;
		if (k == sizeof(flags) / sizeof(flags[0])) {
			if (argv[i][0] == '-' || a->name)
				return fail("unexpected argument '%s'",
					    log_escape(argv[i], quoted, sizeof(quoted)));
			a->name = argv[i];
			continue;
		}
		if (*flags[k].dst)
			return fail("%s given twice", flags[k].flag);
		if (i + 1 >= argc)
			return fail("%s needs a value", flags[k].flag);
		*flags[k].dst = argv[++i];
	}
	if (!a->name)
		return fail("missing VM name; usage: nido spawn NAME --image TAG [--user-data FILE] "
			    "[--memory MB] [--cpus N] [--ssh-key FILE] [--yes]");
	return 0;
}

/* Applies the flags over the configuration, with the configuration's checks. */
static int apply_args(struct nido_ctx *ctx, const struct spawn_args *a, struct nido_config *cfg)
{
	const char *keys[] = { "image", "memory", "cpus", "ssh_key" };
	const char *values[] = { a->image, a->memory, a->cpus, a->ssh_key };
	char err[512];

	*cfg = ctx->cfg;
	for (size_t i = 0; i < 4; i++)
		if (values[i] && config_set(cfg, keys[i], values[i], err, sizeof(err)) < 0)
			return fail("%s", err);
	cfg->ssh_port = 0;
	return 0;
}

static int ask_pull(const char *tag, unsigned long long size, int yes)
{
	char answer[16] = "", human[32];

	if (yes)
		return 1;
	if (!isatty(STDIN_FILENO))
		return 0;
	format_size(size, human, sizeof(human));
	fprintf(stderr, "Image %s is not downloaded (%s) and no nidofs mount can read it lazily.\n"
			"Pull it now? [y/N] ", tag, human);
	if (!fgets(answer, sizeof(answer), stdin))
		return 0;
	return answer[0] == 'y' || answer[0] == 'Y';
}

/* Picks the base image path: the verified cache file, else the mount, else a pull. */
static int find_backing(struct nido_ctx *ctx, const struct cat_version *v, int yes, char *buf, size_t len)
{
	char dir[4096], mnt[4096], tag[160];

	path_join(dir, sizeof(dir), ctx->home, "images");
	if (cache_complete_path_in(dir, v, buf, len) == 0)
		return 0;
	if (cat_version_lazy(v) && find_mount(ctx->home, mnt, sizeof(mnt)) == 0) {
		mount_image_path(mnt, v, buf, len);
		return 0;
	}
	cat_version_tag(v, tag, sizeof(tag));
	if (!ask_pull(tag, v->size, yes))
		return fail("image %s is not downloaded: run 'nido image pull %s', mount nidofs, or pass --yes",
			    tag, tag);
	if (pull_image(ctx, v) != 0)
		return 1;
	if (cache_complete_path_in(dir, v, buf, len) == 0)
		return 0;
	return fail("image %s: pulled but not complete", tag);
}

static int read_user_data(const char *path, char **out, size_t *len)
{
	int rc = read_file(path, SEED_USER_DATA_MAX, out, len);
	char quoted[ARG_QUOTE_MAX];

	log_escape(path, quoted, sizeof(quoted));
	if (rc == -EFBIG)
		return fail("%s: user-data larger than %d bytes", quoted, SEED_USER_DATA_MAX);
	if (rc < 0)
		return fail("%s: cannot read user-data: %s", quoted, strerror(-rc));
	if (memchr(*out, '\0', *len)) {
		free(*out);
		return fail("%s: user-data is binary; expected text", quoted);
	}
	return 0;
}

int cmd_spawn(struct nido_ctx *ctx, int argc, char **argv)
{
	struct spawn_args a = { 0 };
	struct vm_spec spec = { 0 };
	const struct cat_version *v;
	char backing[4096], err[1024] = "", *user_data = NULL;
	size_t ud_len = 0;
	int rc;

	if (parse_args(argc, argv, &a) || apply_args(ctx, &a, &spec.cfg))
		return 1;
	if (!vm_name_valid(a.name))
		return fail("invalid VM name '%s': use 1-63 letters, digits and '-', not starting with '-'",
			    log_escape(a.name, err, sizeof(err)));
	if (!(v = ctx_resolve(ctx, spec.cfg.image)))
		return 1;
	if (!cat_version_arch_ok(v))
		return fail("image %s is built for %s; VMs here run x86_64 guests", spec.cfg.image, v->arch);
	if (a.user_data && read_user_data(a.user_data, &user_data, &ud_len))
		return 1;
	if (find_backing(ctx, v, a.yes, backing, sizeof(backing))) {
		free(user_data);
		return 1;
	}
	if (image_inspect(backing, v->format, err, sizeof(err)) < 0) {
		free(user_data);
		return fail("image %s: %s", spec.cfg.image, err);
	}
	spec.name = a.name;
	spec.tag = spec.cfg.image;
	spec.backing = backing;
	spec.backing_format = v->format;
	spec.user_data = user_data;
	spec.user_data_len = ud_len;
	rc = vm_create(ctx->home, &spec, err, sizeof(err));
	free(user_data);
	/* err starts with "vm NAME:" already. */
	if (rc < 0 && err[0])
		return fail("%s", err);
	if (rc < 0)
		return fail("vm %s: cannot create: %s", a.name, strerror(-rc));
	printf("%s: started from %s\n", a.name, spec.cfg.image);
	return 0;
}
