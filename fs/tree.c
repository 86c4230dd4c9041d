/* Path resolution for the tree described in fs.h. */
#include "fs/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fetch/files.h"
#include "fs/images.h"
#include "fs/vmfs.h"
#include "vmctl/vm.h"

/* Splits the next component of *path into buf; returns its length or -1. */
static int next_part(const char **path, char *buf, size_t len)
{
	const char *p = *path;
	size_t n;

	while (*p == '/')
		p++;
	n = strcspn(p, "/");
	if (n == 0 || n >= len)
		return n == 0 ? 0 : -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	*path = p + n;
	return (int)n;
}

static int resolve_catalog(const char *rest, struct node *n)
{
	char part[256];
	int len;

	n->kind = NODE_CATALOG;
	if ((len = next_part(&rest, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if (!(n->img = catalog_image(fs.cat, part)))
		return -ENOENT;
	n->kind = NODE_IMAGE;
	if ((len = next_part(&rest, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if ((n->ver = catalog_version(n->img, part))) {
		n->kind = NODE_VERSION;
	} else {
		for (size_t i = 0; i < n->img->naliases && !n->alias; i++)
			if (strcmp(n->img->aliases[i].name, part) == 0)
				n->alias = &n->img->aliases[i];
		if (!n->alias)
			return -ENOENT;
		n->kind = NODE_ALIAS;
		return next_part(&rest, part, sizeof(part)) == 0 ? 0 : -ENOTDIR;
	}
	if ((len = next_part(&rest, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if (strcmp(part, cat_version_disk_name(n->ver)) == 0)
		n->kind = NODE_DISK;
	else if (strcmp(part, "info") == 0)
		n->kind = NODE_INFO;
	else
		return -ENOENT;
	return next_part(&rest, part, sizeof(part)) == 0 ? 0 : -ENOTDIR;
}

static int resolve_vms(const char *rest, struct node *n)
{
	char part[256], dir[PATH_MAX];
	struct stat st;
	int len;

	n->kind = NODE_VMS;
	if ((len = next_part(&rest, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if (!vm_name_valid(part))
		return -ENOENT;
	snprintf(n->vm, sizeof(n->vm), "%s", part);
	if (snprintf(dir, sizeof(dir), "%s/vms/%s", fs.home, part) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return -ENOENT;
	n->kind = NODE_VM;
	if ((len = next_part(&rest, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if (!vmfs_file_exists(n->vm, part))
		return -ENOENT;
	n->kind = NODE_VM_FILE;
	snprintf(n->name, sizeof(n->name), "%s", part);
	return next_part(&rest, part, sizeof(part)) == 0 ? 0 : -ENOTDIR;
}

int tree_resolve(const char *path, struct node *n)
{
	char part[256];
	int len;

	memset(n, 0, sizeof(*n));
	n->kind = NODE_ROOT;
	if ((len = next_part(&path, part, sizeof(part))) <= 0)
		return len < 0 ? -ENOENT : 0;
	if (strcmp(part, "catalog") == 0)
		return resolve_catalog(path, n);
	if (strcmp(part, "vms") == 0)
		return resolve_vms(path, n);
	if (strcmp(part, "config") == 0) {
		n->kind = NODE_CONFIG;
		return next_part(&path, part, sizeof(part)) == 0 ? 0 : -ENOTDIR;
	}
	if (strcmp(part, "images") == 0) {
		n->kind = NODE_IMAGES;
		if ((len = next_part(&path, part, sizeof(part))) <= 0)
			return len < 0 ? -ENOENT : 0;
		if (images_find(part, NULL) < 0)
			return -ENOENT;
		n->kind = NODE_CACHED;
		snprintf(n->name, sizeof(n->name), "%s", part);
		return next_part(&path, part, sizeof(part)) == 0 ? 0 : -ENOTDIR;
	}
	return -ENOENT;
}
