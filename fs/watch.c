/* The readiness watcher; see watch.h. */
#include "fs/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch/files.h"
#include "fetch/log.h"
#include "fs/fs.h"
#include "fs/inval.h"
#include "vmctl/vm.h"

#define WATCH_INTERVAL_MS 1000
#define BANNER_WAIT_MS 700
#define CONSOLE_TAIL 65536

static pthread_t watcher;
static int watching;
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;

/* Returns 1 when the console shows cloud-init's final message. */
static int cloud_init_done(const char *vmdir)
{
	char path[PATH_MAX], *buf;
	struct stat st;
	ssize_t n;
	int fd, done = 0;

	snprintf(path, sizeof(path), "%s/console.log", vmdir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	buf = malloc(CONSOLE_TAIL + 1);
	if (buf && fstat(fd, &st) == 0) {
		off_t from = st.st_size > CONSOLE_TAIL ? st.st_size - CONSOLE_TAIL : 0;

		n = pread(fd, buf, CONSOLE_TAIL, from);
		if (n > 0) {
			buf[n] = '\0';
			done = memmem(buf, (size_t)n, "Cloud-init v.", 13) && strstr(buf, "finished at");
		}
	}
	free(buf);
	close(fd);
	return done;
}

/* Writes the ready file through vm_ready_write, which writes nothing once a
 * stop has begun, so a file written here never outlives the VM's QEMU. */
static int write_ready(const char *name, int cloud_init)
{
	const char *text = cloud_init ? "ssh: up\ncloud-init: done\n" : "ssh: up\ncloud-init: not finished yet\n";
	int rc = vm_ready_write(fs.home, name, text);

	if (rc < 0 && rc != -EBUSY && rc != -ESRCH)
		log_warnx("vms/%s/ready: cannot write: %s", name, strerror(-rc));
	return rc;
}

/* Removes the ready file and drops the kernel's cached entry for it, so that
 * the mount stops showing it at once. */
static void remove_ready(const char *name, const char *path)
{
	if (unlink(path) == 0)
		inval_vm_file(name, "ready");
}

static void check_vm(const char *name)
{
	char vmdir[PATH_MAX], ready[PATH_MAX], pidfile[PATH_MAX], cfgpath[PATH_MAX], err[256], *text = NULL;
	struct stat rst, pst;
	struct nido_config cfg;
	struct vm_status st;
	size_t len;

	snprintf(vmdir, sizeof(vmdir), "%s/vms/%s", fs.home, name);
	snprintf(ready, sizeof(ready), "%s/ready", vmdir);
	snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", vmdir);
	snprintf(cfgpath, sizeof(cfgpath), "%s/config", vmdir);
	if (vm_status(fs.home, name, &st) < 0 || st.state != VM_RUNNING) {
		remove_ready(name, ready);
		return;
	}
	/* A file older than this boot's pidfile belongs to the previous boot. */
	if (stat(ready, &rst) == 0 && stat(pidfile, &pst) == 0 && rst.st_mtime < pst.st_mtime)
		remove_ready(name, ready);
	if (read_file(ready, 256, &text, &len) == 0) {
		if (strstr(text, "not finished") && cloud_init_done(vmdir))
			write_ready(name, 1);
		free(text);
		return;
	}
	config_defaults(&cfg);
	if (config_load(cfgpath, &cfg, err, sizeof(err)) < 0 || !cfg.ssh_port)
		return;
	if (vm_ssh_answers(cfg.ssh_port, BANNER_WAIT_MS) && write_ready(name, cloud_init_done(vmdir)) == 0)
		log_info("vms/%s: ready: the SSH server responds on 127.0.0.1:%u", name, cfg.ssh_port);
}

static void *watch_main(void *arg)
{
	struct timespec deadline;
	char **names;
	size_t count;

	(void)arg;
	pthread_mutex_lock(&watch_lock);
	while (watching) {
		pthread_mutex_unlock(&watch_lock);
		if (vm_list(fs.home, &names, &count) == 0) {
			for (size_t i = 0; i < count; i++)
				check_vm(names[i]);
			vm_list_free(names, count);
		}
		pthread_mutex_lock(&watch_lock);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += WATCH_INTERVAL_MS / 1000;
		if (watching)
			pthread_cond_timedwait(&watch_cond, &watch_lock, &deadline);
	}
	pthread_mutex_unlock(&watch_lock);
	return NULL;
}

int watch_start(void)
{
	watching = 1;
	if (pthread_create(&watcher, NULL, watch_main, NULL) != 0) {
		watching = 0;
		return -EAGAIN;
	}
	return 0;
}

void watch_stop(void)
{
	pthread_mutex_lock(&watch_lock);
	if (!watching) {
		pthread_mutex_unlock(&watch_lock);
		return;
	}
	watching = 0;
	pthread_cond_broadcast(&watch_cond);
	pthread_mutex_unlock(&watch_lock);
	pthread_join(watcher, NULL);
}
