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
#include "fs/fs.h"

static void entry_name(struct cached_entry *e, const char *format)
{
	char tag[160];
	char *colon;

	snprintf(tag, sizeof(tag), "%s", e->tag);
	colon = strchr(tag, ':');
	if (colon)
		*colon = '-';
	/* The id's digest part keeps two builds of one tag apart. */
	snprintf(e->name, sizeof(e->name), "%s-%.8s.%s", tag, strchr(e->id, '-') ? strchr(e->id, '-') + 1 : e->id,
		 format);
}

static int read_entry(const char *id, struct cached_entry *e)
{
	char path[PATH_MAX], *text;
	const cJSON *tag, *size, *url, *disk;
	const char *format = "qcow2";
	size_t len;
	cJSON *m;

	memset(e, 0, sizeof(*e));
	if (snprintf(path, sizeof(path), "%s/%s/meta", cache_dir(fs.cache), id) >= (int)sizeof(path) ||
	    read_file(path, 65536, &text, &len) < 0)
		return -ENOENT;
	m = cJSON_ParseWithLength(text, len);
	free(text);
	tag = cJSON_GetObjectItem(m, "tag");
	size = cJSON_GetObjectItem(m, "size");
	url = cJSON_GetObjectItem(m, "url");
	if (!cJSON_IsString(tag) || !cJSON_IsNumber(size) || !cJSON_IsString(url)) {
		cJSON_Delete(m);
		return -ENOENT;
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->tag, sizeof(e->tag), "%s", tag->valuestring);
	e->size = (uint64_t)size->valuedouble;
	e->verified = cJSON_IsTrue(cJSON_GetObjectItem(m, "verified"));
	disk = cJSON_GetObjectItem(m, "disk");
	if (cJSON_IsString(disk) && strcmp(disk->valuestring, "disk.raw") == 0)
		format = "raw";
	snprintf(e->file, sizeof(e->file), "%s/%s/disk.%s", cache_dir(fs.cache), id, format);
	if (access(e->file, F_OK) != 0)
		snprintf(e->file, sizeof(e->file), "%s/%s/data", cache_dir(fs.cache), id);
	entry_name(e, format);
	cJSON_Delete(m);
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

int images_find(const char *name, struct cached_entry *e)
{
	struct find_arg f = { name, e };

	return images_each(match_entry, &f) == 1 ? 0 : -ENOENT;
}
