/* The FUSE callbacks: each resolves its path to a node (fs.h) and hands back
 * -errno on failure, so one failed call never takes the mount down. */
#include "fs/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "fetch/packed.h"
#include "fs/fs.h"
#include "fs/handle.h"
#include "fs/images.h"
#include "fs/text.h"
#include "fs/vmfs.h"
#include "vmctl/seed.h"
#include "vmctl/vm.h"


static void stat_dir(struct stat *st, mode_t mode)
{
	st->st_mode = S_IFDIR | mode;
	st->st_nlink = 2;
}

static void stat_file(struct stat *st, mode_t mode, uint64_t size, uint64_t allocated)
{
	st->st_mode = S_IFREG | mode;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((allocated + 511) / 512);
}

/* The root config file: the file in the state directory, or the defaults. */
static char *config_text(size_t *len)
{
	struct nido_config cfg;
	char path[PATH_MAX], err[512], *text;

	fs_config_path(path, sizeof(path));
	if (read_file(path, CONFIG_MAX_FILE, &text, len) == 0)
		return text;
	config_defaults(&cfg);
	config_load(path, &cfg, err, sizeof(err));
	text = config_format(&cfg);
	*len = text ? strlen(text) : 0;
	return text;
}

/* A packed entry shows its download size until it is unpacked. */
static int stat_disk(const struct cat_version *v, struct stat *st)
{
	char path[PATH_MAX];
	struct stat real;

	if (!cat_version_lazy(v) && cache_complete_path(fs.cache, v, path, sizeof(path)) == 0 &&
	    stat(path, &real) == 0) {
		stat_file(st, 0444, (uint64_t)real.st_size, (uint64_t)real.st_blocks * 512);
		return 0;
	}
	stat_file(st, 0444, v->size, cache_cached_bytes(fs.cache, v));
	return 0;
}

static int stat_node(const struct node *n, struct stat *st)
{
	size_t len = 0;
	char *text;

	switch (n->kind) {
	case NODE_ROOT: case NODE_CATALOG: case NODE_IMAGE: case NODE_VERSION:
		stat_dir(st, 0555);
		return 0;
	case NODE_IMAGES: /* writable so that `rm images/ENTRY` evicts */
	case NODE_VMS:
		stat_dir(st, 0755);
		return 0;
	case NODE_VM:
		stat_dir(st, 0700);
		return 0;
	case NODE_ALIAS:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(n->alias->target->version);
		return 0;
	case NODE_DISK:
		return stat_disk(n->ver, st);
	case NODE_INFO:
		text = text_version_info(n->ver, &len);
		free(text);
		stat_file(st, 0444, len, len);
		return 0;
	case NODE_CONFIG:
		text = config_text(&len);
		free(text);
		stat_file(st, 0644, len, len);
		return 0;
	case NODE_CACHED: {
		struct cached_entry e;
		struct stat real;

		if (images_find(n->name, &e) < 0)
			return -ENOENT;
		if (stat(e.file, &real) < 0)
			real.st_blocks = 0; /* listed in the catalog, nothing cached yet */
		stat_file(st, 0444, e.size, (uint64_t)real.st_blocks * 512);
		return 0;
	}
	case NODE_VM_FILE:
		return vmfs_getattr(n->vm, n->name, st);
	case NODE_NONE:
		break;
	}
	return -ENOENT;
}

/* Fills st for path; fs.lock held for reading. */
static int stat_path(const char *path, struct stat *st)
{
	struct node n;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = tree_resolve(path, &n);
	if (rc == 0)
		rc = stat_node(&n, st);
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	if (!st->st_mtime)
		st->st_mtime = st->st_ctime = st->st_atime = fs.started;
	return rc;
}

static int nido_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int rc;

	(void)fi;
	fs_catalog_refresh(0);
	pthread_rwlock_rdlock(&fs.lock);
	rc = stat_path(path, st);
	pthread_rwlock_unlock(&fs.lock);
	return rc;
}

static int nido_readlink(const char *path, char *buf, size_t size)
{
	struct node n;
	int rc;

	pthread_rwlock_rdlock(&fs.lock);
	rc = tree_resolve(path, &n);
	if (rc == 0 && n.kind != NODE_ALIAS)
		rc = -EINVAL;
	if (rc == 0)
		snprintf(buf, size, "%s", n.alias->target->version);
	pthread_rwlock_unlock(&fs.lock);
	return rc;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	const char *dir;		/* with attributes (readdirplus): the directory's path */
};

/* Adds one name to a listing. In the catalog it adds the name's attributes
 * too when the kernel requests them, so `ls -l` needs no lookup per name.
 * fs.lock held. */
static int fill_name(void *arg, const char *name)
{
	struct fill_ctx *ctx = arg;
	char path[PATH_MAX];
	struct stat st;

	if (ctx->dir && snprintf(path, sizeof(path), "%s/%s", ctx->dir, name) < (int)sizeof(path) &&
	    stat_path(path, &st) == 0)
		return ctx->filler(ctx->buf, name, &st, 0, FUSE_FILL_DIR_PLUS);
	return ctx->filler(ctx->buf, name, NULL, 0, 0);
}

static int fill_cached(const struct cached_entry *e, void *arg)
{
	fill_name(arg, e->name);
	return 0;
}

static int fill_vms(struct fill_ctx *ctx)
{
	char **names;
	size_t count;
	int rc = vm_list(fs.home, &names, &count);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < count; i++)
		fill_name(ctx, names[i]);
	vm_list_free(names, count);
	return 0;
}

static int list_node(const struct node *n, struct fill_ctx *ctx)
{
	switch (n->kind) {
	case NODE_ROOT:
		fill_name(ctx, "catalog");
		fill_name(ctx, "images");
		fill_name(ctx, "vms");
		fill_name(ctx, "config");
		return 0;
	case NODE_CATALOG:
		for (size_t i = 0; i < fs.cat->nimages; i++)
			fill_name(ctx, fs.cat->images[i].name);
		return 0;
	case NODE_IMAGE:
		for (size_t i = 0; i < n->img->nversions; i++)
			fill_name(ctx, n->img->versions[i].version);
		for (size_t i = 0; i < n->img->naliases; i++)
			fill_name(ctx, n->img->aliases[i].name);
		return 0;
	case NODE_VERSION:
		fill_name(ctx, cat_version_disk_name(n->ver));
		fill_name(ctx, "info");
		return 0;
	case NODE_IMAGES:
		return images_each(fill_cached, ctx);
	case NODE_VMS:
		return fill_vms(ctx);
	case NODE_VM:
		return vmfs_list(n->vm, fill_name, ctx);
	default:
		return -ENOTDIR;
	}
}

static int nido_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill_ctx ctx = { buf, filler, NULL };
	struct node n;
	int rc;

	(void)off;
	(void)fi;
	fs_catalog_refresh(0);
	pthread_rwlock_rdlock(&fs.lock);
	rc = tree_resolve(path, &n);
	if (rc == 0 && (flags & FUSE_READDIR_PLUS) &&
	    (n.kind == NODE_CATALOG || n.kind == NODE_IMAGE || n.kind == NODE_VERSION))
		ctx.dir = strcmp(path, "/") == 0 ? "" : path;
	if (rc == 0) {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		rc = list_node(&n, &ctx);
	}
	pthread_rwlock_unlock(&fs.lock);
	return rc;
}

/* Resolves path under a read lock of fs.lock held only for the lookup. */
static int resolve_once(const char *path, struct node *n)
{
	int rc;

	pthread_rwlock_rdlock(&fs.lock);
	rc = tree_resolve(path, n);
	pthread_rwlock_unlock(&fs.lock);
	return rc;
}

/* Lets the kernel keep the listings of catalog folders, because they change
 * only with a catalog reload, which invalidates them (inval.c). Other folders
 * are listed again at each open. */
static int nido_opendir(const char *path, struct fuse_file_info *fi)
{
	struct node n;
	int rc = resolve_once(path, &n);

	if (rc < 0)
		return rc;
	fi->cache_readdir = fi->keep_cache =
		n.kind == NODE_CATALOG || n.kind == NODE_IMAGE || n.kind == NODE_VERSION;
	return 0;
}

/* Takes a shared lock on the lock file beside a packed entry's disk, so that
 * eviction, which needs the lock exclusively, leaves the disk while it is open. */
static int lock_packed(const char *disk, struct handle *h)
{
	char lock[PATH_MAX];
	const char *slash = strrchr(disk, '/');

	if (!slash || snprintf(lock, sizeof(lock), "%.*s/lock", (int)(slash - disk), disk) >= (int)sizeof(lock))
		return -ENAMETOOLONG;
	h->lock_fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (h->lock_fd < 0 || flock(h->lock_fd, LOCK_SH) < 0)
		return -errno;
	return 0;
}

/* Opens a packed entry's disk, pulling and unpacking it first (this waits). */
static int open_packed(const struct cat_version *v, struct handle **out)
{
	struct handle *h = handle_new(HANDLE_FD);
	char path[PATH_MAX], err[512] = "";
	int rc;

	if (!h)
		return -ENOMEM;
	rc = packed_ensure(fs.cache, v, fs_request_cancelled, path, sizeof(path), err, sizeof(err));
	if (rc == 0)
		rc = lock_packed(path, h);
	if (rc == 0 && (h->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = -errno;
	if (rc == -ECANCELED || rc == -EINTR)
		snprintf(err, sizeof(err), "request interrupted");
	else if (rc < 0 && !err[0])
		snprintf(err, sizeof(err), "%s", strerror(-rc));
	if (rc < 0) {
		log_warnx("%s:%s: cannot open the packed entry: %s", v->image->name, v->version, err);
		handle_free(h);
		if (rc == -ECANCELED)
			return -EINTR;
		return rc == -ENOENT ? -EIO : rc;
	}
	*out = h;
	return 0;
}

static int open_image(const struct node *n, struct handle **out)
{
	struct handle *h;
	char err[512];
	int rc;

	if (!cat_version_lazy(n->ver))
		return open_packed(n->ver, out);
	if (!(h = handle_new(HANDLE_IMAGE)))
		return -ENOMEM;
	rc = cache_get(fs.cache, n->ver, &h->img, err, sizeof(err));
	if (rc < 0) {
		log_warnx("%s", err);
		handle_free(h);
		return rc == -EOPNOTSUPP ? -EIO : rc;
	}
	*out = h;
	return 0;
}

/* Takes ownership of text; len is read after the text was made. */
static int open_text(char *text, const size_t *len, struct handle **out)
{
	struct handle *h;

	if (!text)
		return -ENOMEM;
	h = handle_new(HANDLE_TEXT);
	if (!h) {
		free(text);
		return -ENOMEM;
	}
	h->text = text;
	h->len = *len;
	*out = h;
	return 0;
}

static int open_config(int flags, struct handle **out)
{
	struct handle *h;
	size_t len = 0;

	if ((flags & O_ACCMODE) == O_RDONLY)
		return open_text(config_text(&len), &len, out);
	h = handle_new(HANDLE_EDIT);
	if (!h)
		return -ENOMEM;
	fs_config_path(h->target, sizeof(h->target));
	if (!(flags & O_TRUNC))
		h->text = config_text(&h->len);
	else
		h->dirty = 1; /* `: > config` empties the file even without a write */
	*out = h;
	return 0;
}

static int open_cached(const struct node *n, struct handle **out)
{
	struct cached_entry e;
	struct handle *h;
	int rc;

	if (images_find(n->name, &e) < 0)
		return -ENOENT;
	h = handle_new(e.complete ? HANDLE_FD : HANDLE_IMAGE);
	if (!h)
		return -ENOMEM;
	if (e.complete)
		rc = (h->fd = open(e.file, O_RDONLY | O_CLOEXEC)) < 0 ? -errno : 0;
	else
		rc = images_open(&e, &h->img);
	if (rc < 0) {
		handle_free(h);
		return rc == -EOPNOTSUPP ? -EIO : rc;
	}
	*out = h;
	return 0;
}

static int open_node(const struct node *n, int flags, struct handle **out)
{
	size_t len = 0;

	if (n->kind != NODE_CONFIG && n->kind != NODE_VM_FILE && (flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	switch (n->kind) {
	case NODE_DISK:
		return open_image(n, out);
	case NODE_INFO:
		return open_text(text_version_info(n->ver, &len), &len, out);
	case NODE_CONFIG:
		return open_config(flags, out);
	case NODE_CACHED:
		return open_cached(n, out);
	case NODE_VM_FILE:
		return vmfs_open(n->vm, n->name, flags, out);
	default:
		return -EISDIR;
	}
}

/* Returns 1 when the bytes behind h can no longer change: a complete image
 * with its final name (checked against its checksum where it has one). */
static int bytes_fixed(const struct handle *h)
{
	struct cache_info info;

	if (h->kind == HANDLE_FD)
		return 1;
	if (h->kind != HANDLE_IMAGE)
		return 0;
	cache_image_info(h->img, &info);
	return info.final;
}

/* Sets how the kernel caches a file's pages. Image files keep their pages
 * across opens once their bytes are fixed, and inval.c drops them when the
 * cache discards or evicts the image or a reload points the path elsewhere.
 * Before that, each open drops them, so that a new open never mixes bytes
 * from before a change of the remote file. Other files bypass the page cache. */
static void set_caching(const struct node *n, const struct handle *h, struct fuse_file_info *fi)
{
	int image = n->kind == NODE_CACHED || n->kind == NODE_DISK;

	fi->direct_io = !image;
	fi->keep_cache = image && bytes_fixed(h);
}

static int nido_open(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = NULL;
	struct node n;
	int rc;

	pthread_rwlock_rdlock(&fs.lock);
	rc = tree_resolve(path, &n);
	if (rc == 0)
		rc = open_node(&n, fi->flags, &h);
	if (rc == 0)
		set_caching(&n, h, fi);
	pthread_rwlock_unlock(&fs.lock);
	if (rc < 0)
		return rc;
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

/* Returns 1 when the thread that sent a request has exited or is a zombie.
 * The kernel sends readahead as background requests, which get no INTERRUPT
 * when their reader dies, and keeps the pages locked until the daemon replies. */
static int requester_gone(pid_t tid)
{
	char path[64], stat[512];
	const char *end;
	ssize_t n;
	int fd;

	if (tid <= 0)
		return 0; /* in another PID namespace: unknown */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	stat[n] = '\0';
	/* The state follows the command name, which is in parentheses. */
	end = strrchr(stat, ')');
	return end && end[1] == ' ' && (end[2] == 'Z' || end[2] == 'X');
}

int fs_request_cancelled(void)
{
	struct fuse_context *ctx = fuse_get_context();

	if (fuse_interrupted())
		return 1;
	if (!ctx || !ctx->fuse)
		return 0;
	return fuse_session_exited(fuse_get_session(ctx->fuse)) || requester_gone(ctx->pid);
}

static struct handle *fh(const struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static int read_image(struct handle *h, char *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = cache_read(h->img, buf + done, size - done, (uint64_t)off + done, fs_request_cancelled);

		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int)done;
}

static int nido_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = fh(fi);
	ssize_t n;

	(void)path;
	switch (h->kind) {
	case HANDLE_IMAGE:
		return read_image(h, buf, size, off);
	case HANDLE_FD:
		n = pread(h->fd, buf, size, off);
		return n < 0 ? -errno : (int)n;
	case HANDLE_TEXT:
	case HANDLE_EDIT:
		if ((size_t)off >= h->len)
			return 0;
		if (size > h->len - (size_t)off)
			size = h->len - (size_t)off;
		memcpy(buf, h->text + off, size);
		return (int)size;
	default:
		return -EBADF;
	}
}

/* Replies to a read of an image or state file with its file descriptor, so
 * that libfuse can splice the bytes to the kernel without copying them
 * through the daemon. Generated text is sent from memory. */
static int nido_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	struct handle *h = fh(fi);
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	int fd = h->kind == HANDLE_FD ? h->fd : -EBADF;
	int n;

	if (!bv)
		return -ENOMEM;
	if (h->kind == HANDLE_IMAGE)
		fd = cache_read_fd(h->img, (uint64_t)off, &size, fs_request_cancelled);
	if (fd >= 0) {
		*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT(size);
		bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv->buf[0].fd = fd;
		bv->buf[0].pos = off;
		*bufp = bv;
		return 0;
	}
	if (h->kind == HANDLE_IMAGE || !(bv->buf[0].mem = malloc(size ? size : 1))) {
		free(bv);
		return h->kind == HANDLE_IMAGE ? fd : -ENOMEM;
	}
	n = nido_read(path, bv->buf[0].mem, size, off, fi);
	if (n < 0) {
		free(bv->buf[0].mem);
		free(bv);
		return n;
	}
	void *mem = bv->buf[0].mem;

	*bv = (struct fuse_bufvec)FUSE_BUFVEC_INIT((size_t)n);
	bv->buf[0].mem = mem;
	*bufp = bv;
	return 0;
}

/* Rejects a configuration edit as soon as one complete line is invalid. */
static int check_config_lines(const struct handle *h)
{
	struct nido_config cfg;
	const char *end = h->text ? memrchr(h->text, '\n', h->len) : NULL;
	char err[512];

	if (!end)
		return 0;
	config_defaults(&cfg);
	if (config_parse(&cfg, h->text, (size_t)(end - h->text), err, sizeof(err)) < 0) {
		log_warnx("%s: edit rejected: %s", h->target, err);
		return -EINVAL;
	}
	return 0;
}

static int nido_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct handle *h = fh(fi);
	int is_config, rc;

	(void)path;
	if (h->kind == HANDLE_CTL)
		return vmfs_write_ctl(h, buf, size);
	if (h->kind != HANDLE_EDIT)
		return -EBADF;
	if (h->rejected)
		return h->rejected;
	is_config = strcmp(strrchr(h->target, '/'), "/config") == 0;
	rc = handle_write(h, buf, size, off, is_config ? CONFIG_MAX_FILE : SEED_USER_DATA_MAX);
	if (rc >= 0 && is_config && check_config_lines(h) < 0)
		rc = -EINVAL;
	/* Nothing of a rejected edit is saved: after a write past the size
	 * limit, the bytes before it would save a file cut short. */
	if (rc < 0)
		h->rejected = rc;
	return rc;
}

static int save_root_config(struct handle *h)
{
	struct nido_config cfg;
	char err[512];

	config_defaults(&cfg);
	if (config_parse(&cfg, h->text ? h->text : "", h->len, err, sizeof(err)) < 0) {
		log_warnx("%s: edit rejected: %s", h->target, err);
		return -EINVAL;
	}
	return write_file_atomic(h->target, h->text ? h->text : "", h->len, 0644);
}

/* Saves edits at flush so that close() reports a rejected edit. */
static int nido_flush(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = fh(fi);
	int rc = 0;

	(void)path;
	if (h->kind != HANDLE_EDIT || !h->dirty || h->rejected)
		return 0;
	rc = h->vm[0] ? vmfs_release(h) : save_root_config(h);
	h->dirty = 0;
	return rc;
}

static int nido_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	handle_free(fh(fi));
	return 0;
}

static int nido_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct handle *h = fi ? fh(fi) : NULL;

	(void)path;
	if (h && h->kind == HANDLE_EDIT && size >= 0 && (size_t)size <= h->len) {
		h->len = (size_t)size;
		h->dirty = 1;
		return 0;
	}
	/* Truncation without an open handle (O_TRUNC, `: > file`) is applied when written. */
	return size == 0 ? 0 : -EPERM;
}

static int nido_mkdir(const char *path, mode_t mode)
{
	const char *name = strrchr(path, '/') + 1;

	(void)mode;
	if (strncmp(path, "/vms/", 5) != 0 || strchr(path + 5, '/'))
		return -EPERM;
	return vmfs_create(name);
}

/* Resolves a path for an operation that does not keep the catalog locked. */
static int nido_rmdir(const char *path)
{
	struct node n;
	int rc = resolve_once(path, &n);

	if (rc < 0)
		return rc;
	if (n.kind != NODE_VM)
		return -EPERM;
	return vmfs_remove(n.vm);
}

/* `rm images/ENTRY` frees the entry's space unless a VM uses it. */
static int evict_cached(const char *name)
{
	struct cached_entry e;
	char err[512];
	int rc;

	pthread_rwlock_rdlock(&fs.lock);
	rc = images_find(name, &e);
	pthread_rwlock_unlock(&fs.lock);
	if (rc < 0)
		return rc;
	rc = cache_evict(fs.cache, e.id, err, sizeof(err));
	if (rc < 0)
		log_warnx("images/%s: cannot remove: %s", name, err);
	return rc;
}

/* Files inside a VM directory go away with the directory; unlinking one
 * succeeds without effect so that `rm -rf vms/NAME` reaches the rmdir. */
static int nido_unlink(const char *path)
{
	struct node n;
	int rc = resolve_once(path, &n);

	if (rc < 0)
		return rc;
	if (n.kind == NODE_CACHED)
		return evict_cached(n.name);
	return n.kind == NODE_VM_FILE ? 0 : -EPERM;
}

/* Names and attributes stay valid in the kernel for FS_CACHE_TIMEOUT seconds,
 * which saves a request per path component and per read. A catalog reload
 * invalidates what it changes (fs_catalog_refresh). New names show at once
 * (no negative caching). Page-cache validity is decided at open (keep_cache),
 * so reads do not ask for attributes again (no auto_inval_data). Alias
 * symlinks are cached too; a reload invalidates them with the rest. */
static void *nido_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 0;
	cfg->attr_timeout = FS_CACHE_TIMEOUT;
	cfg->entry_timeout = FS_CACHE_TIMEOUT;
	cfg->negative_timeout = 0;
	conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want |= FUSE_CAP_CACHE_SYMLINKS & conn->capable;
	conn->want |= (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE) & conn->capable;
	fs.fuse = fuse_get_context()->fuse;
	/* With asynchronous direct I/O the kernel sends an O_DIRECT read as
	 * background requests and waits for them uninterruptibly. It sends no
	 * INTERRUPT, so even SIGKILL cannot end the reader until the fetch
	 * gives up (fuse_direct_IO in Linux fs/fuse/file.c; seen on 6.18).
	 * Synchronous requests can be interrupted, and a read returns EINTR
	 * at once after an interrupt (fs_request_cancelled). */
	conn->want &= ~FUSE_CAP_ASYNC_DIO;
	if (fs_start_workers() < 0)
		log_error("cannot start the fetch workers");
	return NULL;
}

const struct fuse_operations nido_ops = {
	.init = nido_init,
	.getattr = nido_getattr,
	.readlink = nido_readlink,
	.opendir = nido_opendir,
	.readdir = nido_readdir,
	.open = nido_open,
	.read = nido_read,
	.read_buf = nido_read_buf,
	.write = nido_write,
	.flush = nido_flush,
	.release = nido_release,
	.truncate = nido_truncate,
	.mkdir = nido_mkdir,
	.rmdir = nido_rmdir,
	.unlink = nido_unlink,
};
