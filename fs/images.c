/* The images/ view: lists the block cache's entries by reading their meta files. */
#include "fs/images.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "fs/fs.h"

static void meta_text(const cJSON *m, const char *key, char *buf, size_t len)
{
	const cJSON *item = cJSON_GetObjectItem(m, key);

	snprintf(buf, len, "%s", cJSON_IsString(item) ? item->valuestring : "");
}

static int read_entry(const char *id, struct cached_entry *e)
{
	char path[PATH_MAX], *text;
	const cJSON *size;
	size_t len;
	cJSON *m;

	memset(e, 0, sizeof(*e));
	if (snprintf(path, sizeof(path), "%s/%s/meta", cache_dir(fs.cache), id) >= (int)sizeof(path) ||
	    read_file(path, 65536, &text, &len) < 0)
		return -ENOENT;
	m = cJSON_ParseWithLength(text, len);
	free(text);
	size = cJSON_GetObjectItem(m, "size");
	meta_text(m, "tag", e->tag, sizeof(e->tag));
	meta_text(m, "url", e->url, sizeof(e->url));
	meta_text(m, "checksum_type", e->checksum_type, sizeof(e->checksum_type));
	meta_text(m, "checksum", e->checksum, sizeof(e->checksum));
	meta_text(m, "disk", e->disk_name, sizeof(e->disk_name));
	e->complete = cJSON_IsTrue(cJSON_GetObjectItem(m, "final")) || cJSON_IsTrue(cJSON_GetObjectItem(m, "verified"));
	e->size = cJSON_IsNumber(size) ? (uint64_t)size->valuedouble : 0;
	cJSON_Delete(m);
	if (!e->tag[0] || !e->url[0] || !e->size ||
	    (strcmp(e->disk_name, "disk.raw") != 0 && strcmp(e->disk_name, "disk.qcow2") != 0))
		return -ENOENT;
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->file, sizeof(e->file), "%s/%s/%s", cache_dir(fs.cache), id, e->disk_name);
	if (access(e->file, F_OK) != 0)
		snprintf(e->file, sizeof(e->file), "%s/%s/data", cache_dir(fs.cache), id);
	cache_entry_name(e->tag, e->id, e->disk_name, e->name, sizeof(e->name));
	return 0;
}

int images_each(int (*fn)(const struct cached_entry *e, void *arg), void *arg)
{
	struct cached_entry e;
	struct dirent *d;
	DIR *dir = opendir(cache_dir(fs.cache));
	int rc = 0;

	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while (rc == 0 && (d = readdir(dir))) {
		if (d->d_name[0] == '.' || read_entry(d->d_name, &e) < 0)
			continue;
		rc = fn(&e, arg);
	}
	closedir(dir);
	return rc;
}

struct find_arg {
	const char *name;
	struct cached_entry *out;
};

static int match_entry(const struct cached_entry *e, void *arg)
{
	struct find_arg *f = arg;

	if (strcmp(e->name, f->name) != 0)
		return 0;
	if (f->out)
		*f->out = *e;
	return 1;
}

/* Fills e from a lazy catalog version whose entry name is name. */
static int find_in_catalog(const char *name, struct cached_entry *e)
{
	char entry[256];

	for (size_t i = 0; i < fs.cat->nimages; i++) {
		const struct cat_image *img = &fs.cat->images[i];

		for (size_t k = 0; k < img->nversions; k++) {
			const struct cat_version *v = &img->versions[k];

			if (!cat_version_lazy(v))
				continue;
			cache_version_entry_name(v, entry, sizeof(entry));
			if (strcmp(entry, name) != 0)
				continue;
			if (e) {
				memset(e, 0, sizeof(*e));
				snprintf(e->name, sizeof(e->name), "%s", entry);
				cache_image_id(v, e->id, sizeof(e->id));
				cat_version_tag(v, e->tag, sizeof(e->tag));
				snprintf(e->url, sizeof(e->url), "%s", v->url);
				snprintf(e->checksum_type, sizeof(e->checksum_type), "%s", v->checksum_type);
				snprintf(e->checksum, sizeof(e->checksum), "%s", v->checksum);
				snprintf(e->disk_name, sizeof(e->disk_name), "%s", cat_version_disk_name(v));
				e->size = v->size;
			}
			return 0;
		}
	}
	return -ENOENT;
}

int images_find(const char *name, struct cached_entry *e)
{
	struct cached_entry tmp;
	struct find_arg f = { name, e ? e : &tmp };

	if (images_each(match_entry, &f) == 1)
		return 0;
	return find_in_catalog(name, e);
}

int images_open(const struct cached_entry *e, struct cached_image **out)
{
	struct cat_image img = { 0 };
	struct cat_version v = { 0 };
	char name[160], version[160], format[8], err[512];
	const char *colon = strchr(e->tag, ':');
	int rc;

	/* A version rebuilt from the entry: it stays readable when the catalog
	 * no longer lists this build. */
	snprintf(name, sizeof(name), "%.*s", colon ? (int)(colon - e->tag) : 0, e->tag);
	snprintf(version, sizeof(version), "%s", colon ? colon + 1 : e->tag);
	snprintf(format, sizeof(format), "%s", strchr(e->disk_name, '.') + 1);
	img.name = name;
	v.image = &img;
	v.version = version;
	v.url = (char *)e->url;
	v.checksum_type = (char *)e->checksum_type;
	v.checksum = (char *)e->checksum;
	v.format = format;
	v.size = e->size;
	rc = cache_get(fs.cache, &v, out, err, sizeof(err));
	if (rc < 0)
		log_warnx("images/%s: %s", e->name, err);
	return rc;
}
