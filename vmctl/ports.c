/* Choosing SSH forward ports; see ports.h. */
#include "vmctl/ports.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch/config.h"
#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/vm.h"
#include "vmctl/vmdir.h"

#define PORT_COUNT 65536

int ports_lock(const char *home, int *fd)
{
	char path[PATH_MAX];
	int lock_fd, rc;

	rc = path_join(path, sizeof(path), home, "ports.lock");
	if (rc < 0)
		return rc;
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0)
		return -errno;
	while (flock(lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			close(lock_fd);
			return rc;
		}
	}
	*fd = lock_fd;
	return 0;
}

void ports_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int ports_bindable(unsigned port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd, rc, on = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* QEMU binds a forward on a port whose last connection is in TIME_WAIT
	 * (seen with QEMU 7.2 and libslirp 4.7), so the test bind must too, or a
	 * VM would lose its port for a minute after an SSH session closed. A
	 * port where a socket listens still fails with EADDRINUSE. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 ? 1 : -errno;
	close(fd);
	if (rc == -EADDRINUSE || rc == -EACCES)
		return 0;
	return rc;
}

/* Marks the port recorded in the config of VM directory name as excluded. */
static void mark_recorded(const char *root, const char *name, unsigned char *excluded)
{
	struct nido_config cfg;
	char path[PATH_MAX], err[512];

	if (snprintf(path, sizeof(path), "%s/%s/config", root, name) >= (int)sizeof(path))
		return;
	config_defaults(&cfg);
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		log_warnx("vm %s: port choice ignores its config: %s", name, err);
		return;
	}
	if (cfg.ssh_port > 0 && cfg.ssh_port < PORT_COUNT)
		excluded[cfg.ssh_port] = 1;
}

/* Marks the ports recorded by every VM except self as excluded. */
static int mark_recorded_ports(const char *home, const char *self, unsigned char *excluded)
{
	char root[PATH_MAX];
	struct dirent *entry;
	DIR *dir;
	int rc;

	rc = vmdir_root(home, root, sizeof(root));
	if (rc < 0)
		return rc;
	dir = opendir(root);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((entry = readdir(dir)))
		if (vm_name_valid(entry->d_name) && strcmp(entry->d_name, self) != 0)
			mark_recorded(root, entry->d_name, excluded);
	closedir(dir);
	return 0;
}

int ports_choose(const char *home, const char *self, unsigned min, unsigned max,
		 unsigned after, unsigned *port)
{
	unsigned char *excluded;
	unsigned count, candidate, i;
	int rc;

	if (min == 0 || min > max || max >= PORT_COUNT)
		return -EINVAL;
	excluded = calloc(PORT_COUNT, 1);
	if (!excluded)
		return -ENOMEM;
	rc = mark_recorded_ports(home, self, excluded);
	count = max - min + 1;
	candidate = after >= min && after <= max ? after - min + 1 : 0;
	for (i = 0; rc == 0 && i < count; i++, candidate++) {
		unsigned p = min + candidate % count;

		if (excluded[p])
			continue;
		rc = ports_bindable(p);
		if (rc == 1) {
			*port = p;
			break;
		}
	}
	free(excluded);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : -EADDRNOTAVAIL;
}
