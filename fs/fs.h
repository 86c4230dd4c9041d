/* The FUSE daemon's shared state and the tree it shows:
 *   /config                       the configuration file (read and write)
 *   /catalog/NAME/VERSION/disk.*  an image, read lazily through the block cache
 *   /catalog/NAME/VERSION/info    a description of the entry and its cache state
 *   /catalog/NAME/ALIAS           symlink to VERSION
 *   /images/ENTRY                 what the cache holds, one file per image
 *   /vms/NAME/...                 one directory per VM (see vmfs.c) */
#ifndef NIDO_FS_H
#define NIDO_FS_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fetch/cache.h"
#include "fetch/catalog.h"
#include "fetch/config.h"

struct fuse;

struct fs_state {
	char home[PATH_MAX];		/* state directory, absolute */
	char mountpoint[PATH_MAX];	/* absolute */
	char catalog_src[PATH_MAX];	/* -o catalog, or empty */
	char catalog_path[PATH_MAX];	/* file the catalog was read from; empty for a URL */
	struct timespec catalog_mtime;
	time_t catalog_checked;
	pthread_rwlock_t lock;		/* guards cat: read lock for every lookup */
	struct catalog *cat;
	struct cache *cache;
	uid_t uid;
	gid_t gid;
	time_t started;
	struct fuse *fuse;		/* set once mounted, for invalidations */
};

/* Seconds the kernel may keep names and attributes without asking. */
#define FS_CACHE_TIMEOUT 1.0

extern struct fs_state fs;

enum node_kind {
	NODE_NONE, NODE_ROOT, NODE_CONFIG, NODE_CATALOG, NODE_IMAGE, NODE_VERSION, NODE_ALIAS,
	NODE_DISK, NODE_INFO, NODE_IMAGES, NODE_CACHED, NODE_VMS, NODE_VM, NODE_VM_FILE,
};

struct node {
	enum node_kind kind;
	const struct cat_image *img;	/* valid while fs.lock is held */
	const struct cat_version *ver;
	const struct cat_alias *alias;
	char name[256];			/* VM name, cached entry or VM file name */
	char vm[64];
};

/* Resolves a path into a node; fs.lock must be held for reading.
 * Returns 0, -ENOENT or -EINVAL. */
int tree_resolve(const char *path, struct node *n);

/* Loads or reloads the catalog when its file changed; takes fs.lock itself. */
int fs_catalog_refresh(int force);

/* Writes the path of the configuration file into buf. */
void fs_config_path(char *buf, size_t len);

/* Returns 1 when the FUSE request this thread serves was interrupted (its
 * caller got a signal), its caller has exited, or the mount is going away,
 * so a wait should end. */
int fs_request_cancelled(void);

#endif
