/* The source of the daemon's catalog (-o catalog, <home>/catalog.json, or
 * the installed default) and reloading it when its file changes. */
#include "fs/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/http.h"
#include "fetch/log.h"
#include "fs/inval.h"

void fs_config_path(char *buf, size_t len)
{
	path_join(buf, len, fs.home, "config");
}

/* Picks the catalog file; empty when the source is a URL. */
static void catalog_file(char *buf, size_t len)
{
	if (fs.catalog_src[0]) {
		snprintf(buf, len, "%s", http_url_supported(fs.catalog_src) ? "" : fs.catalog_src);
		return;
	}
	path_join(buf, len, fs.home, "catalog.json");
	if (access(buf, F_OK) != 0)
		catalog_default_path(buf, len);
}

static int load_url(struct catalog **cat, char *err, size_t errlen)
{
	struct nido_config cfg;
	char path[PATH_MAX], cerr[512], *text;
	size_t len;
	int rc;

	config_defaults(&cfg);
	fs_config_path(path, sizeof(path));
	config_load(path, &cfg, cerr, sizeof(cerr));
	rc = http_get_document(fs.catalog_src, cfg.ca_file, CATALOG_MAX_FILE, &text, &len, cerr, sizeof(cerr));
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot fetch catalog: %s", fs.catalog_src, cerr);
		return rc;
	}
	rc = catalog_parse(text, len, fs.catalog_src, cat, err, errlen);
	free(text);
	return rc;
}

static void log_problems(const struct catalog *cat)
{
	for (size_t i = 0; i < cat->nproblems; i++)
		log_warnx("catalog %s: %s", cat->source, cat->problems[i]);
}

int fs_catalog_refresh(int force)
{
	char path[PATH_MAX], err[1024];
	struct catalog *cat = NULL, *old;
	struct stat st = { 0 };
	time_t now = time(NULL);
	int rc;

	catalog_file(path, sizeof(path));
	if (!force) {
		if (!path[0] || now == fs.catalog_checked)
			return 0;
		fs.catalog_checked = now;
		if (stat(path, &st) < 0 || (strcmp(path, fs.catalog_path) == 0 &&
		    st.st_mtim.tv_sec == fs.catalog_mtime.tv_sec && st.st_mtim.tv_nsec == fs.catalog_mtime.tv_nsec))
			return 0;
	}
	rc = path[0] ? catalog_load_file(path, &cat, err, sizeof(err)) : load_url(&cat, err, sizeof(err));
	if (rc < 0) {
		log_error("%s", err);
		return rc;
	}
	if (path[0])
		stat(path, &st);
	log_problems(cat);
	pthread_rwlock_wrlock(&fs.lock);
	old = fs.cat;
	fs.cat = cat;
	snprintf(fs.catalog_path, sizeof(fs.catalog_path), "%s", path);
	fs.catalog_mtime = st.st_mtim;
	pthread_rwlock_unlock(&fs.lock);
	if (old) {
		log_info("catalog reloaded from %s", cat->source);
		inval_catalog(old);
	}
	catalog_free(old);
	return 0;
}
