/* The readiness of a guest: whether its SSH server responds on the forwarded
 * port, and the `ready` file of its VM directory, which the daemon's watcher
 * writes while QEMU runs and which every stop removes (stop.c). */
#include "vmctl/vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch/files.h"
#include "vmctl/deadline.h"
#include "vmctl/vmdir.h"

int vm_ssh_answers(unsigned port, int wait_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char banner[4];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok = 0;

	if (fd < 0)
		return 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    poll_until(fd, POLLIN, monotonic_ms() + wait_ms) == 0 && read(fd, banner, 4) == 4)
		ok = memcmp(banner, "SSH-", 4) == 0;
	close(fd);
	return ok;
}

/* Writes the file while holding a shared lock on the VM directory. A stop
 * holds the lock exclusively from before QEMU ends until after it removes
 * the file, so a write either lands before the stop, which then removes it,
 * or finds the lock taken or QEMU gone and writes nothing. */
int vm_ready_write(const char *home, const char *name, const char *text)
{
	char vmdir[PATH_MAX], path[PATH_MAX];
	int fd, rc;

	rc = vmdir_path(home, name, vmdir, sizeof(vmdir));
	if (rc == 0)
		rc = vmdir_file(vmdir, "ready", path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(vmdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return rc;
	}
	rc = vm_running(home, name);
	if (rc == 0)
		rc = -ESRCH;
	else if (rc > 0)
		rc = write_file_atomic(path, text, strlen(text), 0644);
	close(fd);
	return rc;
}
