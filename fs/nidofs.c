/* nidofs: the FUSE daemon's entry point. Parses options, loads configuration
 * and catalog, and runs the FUSE loop (ops.c). */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"
#include "fs/fs.h"
#include "fs/inval.h"
#include "fs/ops.h"
#include "fs/watch.h"
#include "vmctl/vm.h"
#include "vmctl/vmuse.h"

struct fs_state fs = { .lock = PTHREAD_RWLOCK_INITIALIZER };

struct options {
	char *catalog;
	char *home;
	char *source;		/* mount(8) passes a source before the mount point */
	int show_help, show_version, check, foreground, debug;
	char *mountpoint;
};

enum { KEY_HELP, KEY_VERSION, KEY_CHECK, KEY_FOREGROUND, KEY_DEBUG };

static const struct fuse_opt option_spec[] = {
	{ "catalog=%s", offsetof(struct options, catalog), 0 },
	{ "home=%s", offsetof(struct options, home), 0 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("--check", KEY_CHECK),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END
};

/* Idle FUSE worker threads kept for the next burst of requests. */
#define FS_IDLE_THREADS "10"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: nidofs [-f] [-d] [-s] [-o OPTION[,OPTION...]] [SOURCE] MOUNTPOINT\n"
		"       nidofs --check [-o catalog=FILE_OR_URL]\n"
		"       nidofs -h | --version\n"
		"\n"
		"Shows a catalog of VM cloud images as files; `mkdir MOUNTPOINT/vms/NAME` boots a VM.\n"
		"\n"
		"  -f                    stay in the foreground and log to stderr\n"
		"  -d, -o debug          foreground with debug logging (and FUSE tracing)\n"
		"  -s                    single-threaded FUSE loop\n"
		"  -o catalog=FILE|URL   catalog to show instead of <home>/catalog.json\n"
		"  -o home=DIR           state directory instead of $NIDO_HOME or ~/.nido\n"
		"  -o allow_other        let other users see the mount (needs user_allow_other)\n"
		"  --check               validate catalog and configuration, then exit\n"
		"  -h, --help            show this help\n"
		"  -V, --version         show the version\n"
		"\n"
		"State directory: $NIDO_HOME, else ~/.nido. Other -o options are passed to FUSE.\n");
}

static int option_proc(void *data, const char *arg, int key, struct fuse_args *args)
{
	struct options *o = data;

	(void)args;
	switch (key) {
	case KEY_HELP: o->show_help = 1; return 0;
	case KEY_VERSION: o->show_version = 1; return 0;
	case KEY_CHECK: o->check = 1; return 0;
	case KEY_FOREGROUND: o->foreground = 1; return 1;
	case KEY_DEBUG: o->debug = o->foreground = 1; return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (o->source) {
			fprintf(stderr, "nidofs: unexpected argument '%s'\n", arg);
			return -1;
		}
		if (o->mountpoint)
			o->source = o->mountpoint; /* "nidofs SOURCE MOUNTPOINT" from mount.fuse3 */
		o->mountpoint = strdup(arg);
		return 0;
	default:
		return 1;
	}
}

/* Records the mount for the `nido` command: "PID MOUNTPOINT", then
 * "catalog SOURCE" so that nido shows the catalog this mount shows. */
static void record_mount(void)
{
	char path[PATH_MAX], line[2 * PATH_MAX + 64];

	path_join(path, sizeof(path), fs.home, "mount");
	snprintf(line, sizeof(line), "%d %s\ncatalog %s\n", (int)getpid(), fs.mountpoint,
		 fs.catalog_src[0] ? fs.catalog_src : fs.catalog_path);
	if (write_file_atomic(path, line, strlen(line), 0644) < 0)
		log_warn("%s: cannot record the mount", path);
}

/* Takes the state directory for this daemon: an exclusive lock on
 * <home>/mount.lock, held for the daemon's life (the descriptor survives the
 * fork into the background and closes on exec), so that two daemons never
 * share one state directory. Fails with a message naming the running mount. */
static int lock_state(void)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	int fd, err;

	path_join(path, sizeof(path), fs.home, "mount.lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0; /* fd stays open until the daemon exits */
	err = errno;
	if (fd >= 0)
		close(fd);
	if (err != EWOULDBLOCK) {
		fprintf(stderr, "nidofs: %s: cannot lock the state directory: %s\n", path, strerror(err));
		return -1;
	}
	path_join(path, sizeof(path), fs.home, "mount");
	if (read_file(path, 4096, &text, &len) == 0)
		text[strcspn(text, "\n")] = '\0';
	fprintf(stderr, "nidofs: %s is in use by another nidofs (pid and mount point: %s); "
		"unmount it first, e.g. with 'nido umount'\n", fs.home, text ? text : "unknown");
	free(text);
	return -1;
}

static void forget_mount(void)
{
	char path[PATH_MAX];

	path_join(path, sizeof(path), fs.home, "mount");
	unlink(path);
}

static int image_in_use(const char *id, void *arg)
{
	(void)arg;
	return vm_uses_image(fs.home, id);
}

/* Names the VMs that lose their base image with this mount. */
static void warn_orphaned_vms(void)
{
	char **names;
	size_t count;

	if (vm_list(fs.home, &names, &count) < 0)
		return;
	for (size_t i = 0; i < count; i++)
		if (vm_reads_through(fs.home, names[i], fs.mountpoint))
			log_warnx("vms/%s: its base image was read through %s, which is gone; stop and start "
				  "it after the next mount", names[i], fs.mountpoint);
	vm_list_free(names, count);
}

int fs_start_workers(void)
{
	struct nido_config cfg;
	char path[PATH_MAX], err[512];
	int rc;

	config_defaults(&cfg);
	fs_config_path(path, sizeof(path));
	if (config_load(path, &cfg, err, sizeof(err)) < 0)
		log_warnx("%s", err);
	path_join(path, sizeof(path), fs.home, "images");
	rc = cache_open(path, cfg.ca_file, &fs.cache);
	if (rc < 0) {
		log_error("%s: cannot open the image cache: %s", path, strerror(-rc));
		return rc;
	}
	cache_set_limits(fs.cache, cfg.cache_max, cfg.cache_min_free, image_in_use, NULL);
	if (inval_start() == 0)
		cache_set_change_hook(fs.cache, inval_image_changed, NULL);
	if (watch_start() < 0)
		log_warnx("cannot start the readiness watcher; vms/*/ready will not appear");
	record_mount();
	log_info("mounted on %s (state in %s, catalog %s)", fs.mountpoint, fs.home, fs.cat->source);
	return 0;
}

/* Validates configuration and catalog and prints a one-line verdict. */
static int check_only(void)
{
	struct nido_config cfg;
	char path[PATH_MAX], err[512];

	config_defaults(&cfg);
	fs_config_path(path, sizeof(path));
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "nidofs: %s\n", err);
		return 1;
	}
	if (fs_catalog_refresh(1) < 0)
		return 1;
	printf("ok: %s: %zu images, %zu entries or aliases rejected; configuration %s %s\n", fs.cat->source,
	       fs.cat->nimages, fs.cat->nproblems, path,
	       access(path, F_OK) == 0 ? "valid" : "missing, so the defaults apply");
	return 0;
}

static int prepare_state(struct options *o)
{
	char *abs;

	if (o->home)
		setenv("NIDO_HOME", o->home, 1);
	snprintf(fs.home, sizeof(fs.home), "%s", nido_home());
	if (mkdir_p(fs.home, 0700) < 0 || !(abs = realpath(fs.home, NULL))) {
		fprintf(stderr, "nidofs: %s: cannot create the state directory: %s\n", fs.home, strerror(errno));
		return -1;
	}
	snprintf(fs.home, sizeof(fs.home), "%s", abs);
	free(abs);
	if (o->catalog) {
		abs = strstr(o->catalog, "://") ? NULL : realpath(o->catalog, NULL);
		snprintf(fs.catalog_src, sizeof(fs.catalog_src), "%s", abs ? abs : o->catalog);
		free(abs);
	}
	fs.uid = getuid();
	fs.gid = getgid();
	fs.started = time(NULL);
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { 0 };
	char *abs = NULL;
	int rc;

	if (fuse_opt_parse(&args, &o, option_spec, option_proc) < 0) {
		rc = 2;
		goto out;
	}
	if (o.show_help || o.show_version) {
		if (o.show_help)
			usage(stdout);
		else
			printf("nidofs %s (libfuse %s)\n", NIDO_VERSION, fuse_pkgversion());
		rc = 0;
		goto out;
	}
	log_init("nidofs", !o.foreground && !o.check, o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (http_global_init() < 0 || prepare_state(&o) < 0) {
		rc = 1;
		goto out;
	}
	if (o.check) {
		rc = check_only();
		goto out;
	}
	if (!o.mountpoint) {
		usage(stderr);
		rc = 2;
		goto out;
	}
	if (!(abs = realpath(o.mountpoint, NULL))) {
		fprintf(stderr, "nidofs: %s: invalid mount point: %s\n", o.mountpoint, strerror(errno));
		rc = 1;
		goto out;
	}
	snprintf(fs.mountpoint, sizeof(fs.mountpoint), "%s", abs);
	if (lock_state() < 0) {
		rc = 1;
		goto out;
	}
	if (fs_catalog_refresh(1) < 0) {
		fprintf(stderr, "nidofs: cannot load the catalog; see the message above\n");
		rc = 1;
		goto out;
	}
	fuse_opt_add_arg(&args, abs);
	fuse_opt_add_arg(&args, "-odefault_permissions,fsname=nidofs,subtype=nidofs");
	/* Without max_idle_threads, libfuse 3.14's fuse_main prints "Ignoring
	 * invalid max threads value 4294967295" at each mount (seen on Debian 12).
	 * Set first in the list, so that the user's own -o value still wins. */
	fuse_opt_insert_arg(&args, 1, "-omax_idle_threads=" FS_IDLE_THREADS);
	rc = fuse_main(args.argc, args.argv, &nido_ops, NULL);
	forget_mount();
	warn_orphaned_vms();
	watch_stop();
	cache_set_change_hook(fs.cache, NULL, NULL);
	inval_stop();
	cache_close(fs.cache);
out:
	/* Every exit frees what the option parser allocated, so that
	 * LeakSanitizer in `make check-asan` reports only real leaks. */
	catalog_free(fs.cat);
	fs.cat = NULL;
	free(abs);
	fuse_opt_free_args(&args);
	free(o.mountpoint);
	free(o.source);
	free(o.catalog);
	free(o.home);
	return rc;
}
