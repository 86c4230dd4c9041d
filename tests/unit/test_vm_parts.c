/* Unit tests of the vmctl parts that touch the system but start no VM:
 * running programs, finding a VM's QEMU by its pidfile, the QMP client with a
 * fake server, cached verdicts, the state file, port choice, SSH keys and the
 * seed ISO. They also call the vm.h entry points on VM directories made by
 * hand. Files go to a private directory under /tmp, removed at the end.
 * Needs ssh-keygen and xorriso. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetch/config.h"
#include "fetch/files.h"
#include "tests/unit/unit.h"
#include "vmctl/ports.h"
#include "vmctl/qmp.h"
#include "vmctl/seed.h"
#include "vmctl/seed_iso.h"
#include "vmctl/spawn.h"
#include "vmctl/sshkey.h"
#include "vmctl/verdict.h"
#include "vmctl/vm.h"
#include "vmctl/vmdir.h"
#include "vmctl/vmproc.h"

static char tmp[64];

static void path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmp, name);
}

/* Reads what a program wrote to a memfd, NUL-terminated. */
static void read_memfd(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

static void test_spawn(void)
{
	const char *ok[] = { "true", NULL }, *fails[] = { "false", NULL };
	const char *missing[] = { "nido-no-such-program", NULL };
	const char *slow[] = { "sleep", "5", NULL };
	const char *noisy[] = { "sh", "-c", "echo first >&2; echo last words >&2; exit 3", NULL };
	char err[256], out[256];
	int status = -1;
	pid_t pid;

	CHECK("spawn true succeeds", spawn_run(ok, -1, -1, 5000, err, sizeof(err)) == 0);
	CHECK("spawn false fails", spawn_run(fails, -1, -1, 5000, err, sizeof(err)) == -EIO);
	CHECK("spawn false message", strstr(err, "exit status 1") != NULL);
	CHECK("spawn missing program", spawn_run(missing, -1, -1, 5000, err, sizeof(err)) == -ENOENT);
	CHECK("spawn missing program message", strstr(err, "not found") != NULL);
	CHECK("spawn timeout", spawn_run(slow, -1, -1, 100, err, sizeof(err)) == -ETIMEDOUT);
	CHECK("spawn timeout message", strstr(err, "timed out") != NULL);
	CHECK("spawn failure with stderr", spawn_run(noisy, -1, -1, 5000, err, sizeof(err)) == -EIO);
	CHECK("spawn quotes the last stderr lines", strcmp(err, "sh: exit status 3: first; last words") == 0);
	CHECK("find program in PATH", spawn_find_program("sh", out, sizeof(out)) == 0);
	CHECK("found program path is absolute", out[0] == '/');

	/* A child that has exited before the wait starts is a zombie, so its
	 * pidfd is readable at once. */
	CHECK("spawn start false", spawn_start(fails, -1, -1, &pid) == 0);
	usleep(200000);
	CHECK("wait for an exited child", spawn_wait(pid, 5000, &status) == 0);
	CHECK("exited child reaped normally", WIFEXITED(status));
	CHECK("exited child status 1", WEXITSTATUS(status) == 1);
	CHECK("exited child already reaped", waitpid(pid, NULL, WNOHANG) == -1);
	CHECK("exited child no longer ours", errno == ECHILD);
}

static void test_spawn_descriptors(void)
{
	const char *list[] = { "ls", "/proc/self/fd", NULL };
	const char *input[] = { "readlink", "/proc/self/fd/0", NULL };
	char err[256], out[256];
	int leak, fd;

	/* A descriptor without O_CLOEXEC, as a library might leave one. */
	leak = open("/dev/null", O_RDONLY);
	fd = memfd_create("test-out", MFD_CLOEXEC);
	CHECK("spawn ls of fds runs", spawn_run(list, fd, -1, 5000, err, sizeof(err)) == 0);
	read_memfd(fd, out, sizeof(out));
	/* ls itself opens descriptor 3 for the directory it lists. */
	CHECK("child has only descriptors 0 to 3", strcmp(out, "0\n1\n2\n3\n") == 0);
	close(fd);
	fd = memfd_create("test-in", MFD_CLOEXEC);
	CHECK("spawn readlink runs", spawn_run(input, fd, -1, 5000, err, sizeof(err)) == 0);
	read_memfd(fd, out, sizeof(out));
	CHECK("child stdin is /dev/null", strcmp(out, "/dev/null\n") == 0);
	close(fd);
	close(leak);
}

static void test_last_line(void)
{
	char line[16];
	int fd = memfd_create("test-lines", MFD_CLOEXEC);

	CHECK("last line of empty file", spawn_last_lines(fd, 1, line, sizeof(line)) == 0);
	CHECK("empty file has no last line", line[0] == '\0');
	write(fd, "one\ntwo\x01\n\n", 10);
	CHECK("last line read", spawn_last_lines(fd, 1, line, sizeof(line)) == 0);
	CHECK("last non-empty line, cleaned", strcmp(line, "two?") == 0);
	CHECK("last two lines read", spawn_last_lines(fd, 2, line, sizeof(line)) == 0);
	CHECK("last two lines joined", strcmp(line, "one; two?") == 0);
	close(fd);
}

static void test_vmproc(void)
{
	char pidfile[PATH_MAX], other[PATH_MAX], text[32];
	const char *argv[] = { "sh", "-c", "sleep 30", "-pidfile", pidfile, NULL };
	pid_t child, found = 0, opened = 0;
	int pidfd = -1;

	path_in_tmp(pidfile, sizeof(pidfile), "qemu.pid");
	path_in_tmp(other, sizeof(other), "other.pid");
	CHECK("missing pidfile read", vmproc_find(pidfile, &found) == 0);
	CHECK("missing pidfile means not running", found == 0);
	CHECK("start stand-in process", spawn_start(argv, -1, -1, &child) == 0);
	CHECK("stand-in recognised", vmproc_is_qemu_of(child, pidfile) == 1);
	CHECK("other pidfile not recognised", vmproc_is_qemu_of(child, other) == 0);
	CHECK("own process not recognised", vmproc_is_qemu_of(getpid(), pidfile) == 0);
	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	write_file_atomic(pidfile, text, strlen(text), 0600);
	CHECK("stale pidfile read", vmproc_find(pidfile, &found) == 0);
	CHECK("stale pidfile of another program ignored", found == 0);
	CHECK("stale pidfile cannot be opened", vmproc_open(pidfile, &pidfd, &opened) == -ESRCH);
	write_file_atomic(pidfile, "garbage", 7, 0600);
	CHECK("malformed pidfile read", vmproc_find(pidfile, &found) == 0);
	CHECK("malformed pidfile means not running", found == 0);
	snprintf(text, sizeof(text), "%d\n", (int)child);
	write_file_atomic(pidfile, text, strlen(text), 0600);
	CHECK("pidfile of the stand-in read", vmproc_find(pidfile, &found) == 0);
	CHECK("pidfile of the stand-in found", found == child);
	CHECK("stand-in opened", vmproc_open(pidfile, &pidfd, &opened) == 0);
	CHECK("opened pid is the stand-in", opened == child);
	CHECK("still running", vmproc_wait_exit(pidfd, 50) == -ETIMEDOUT);
	CHECK("signal delivered", vmproc_signal(pidfd, SIGKILL) == 0);
	CHECK("exit seen", vmproc_wait_exit(pidfd, 5000) == 0);
	waitpid(child, NULL, 0);
	CHECK("exited process not recognised", vmproc_is_qemu_of(child, pidfile) == 0);
	close(pidfd);
	unlink(pidfile);
}

/* A fake QMP server: greets, accepts qmp_capabilities, sends an event before
 * the query-status reply, and replies to any other command with an error. */
static void *fake_qmp(void *arg)
{
	int listener = *(int *)arg, fd;
	char buf[4096];
	ssize_t n;

	fd = accept(listener, NULL, NULL);
	if (fd < 0)
		return NULL;
	dprintf(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	while ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		if (strstr(buf, "qmp_capabilities"))
			dprintf(fd, "{\"return\": {}}\r\n");
		else if (strstr(buf, "query-status"))
			dprintf(fd, "{\"event\": \"RESET\", \"data\": {}}\r\n"
				    "{\"return\": {\"status\": \"internal-error\", \"running\": false}}\r\n");
		else
			dprintf(fd, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such command\"}}\r\n");
	}
	close(fd);
	return NULL;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_qmp(void)
{
	char sock[PATH_MAX], status[32], err[256], long_path[200];
	pthread_t thread;
	int listener;

	path_in_tmp(sock, sizeof(sock), "qmp.sock");
	listener = listen_unix(sock);
	CHECK("fake QMP server listens", listener >= 0);
	pthread_create(&thread, NULL, fake_qmp, &listener);
	CHECK("query-status through events", qmp_query_status(sock, status, sizeof(status), 2000, err,
							       sizeof(err)) == 0);
	CHECK("query-status run state", strcmp(status, "internal-error") == 0);
	pthread_join(thread, NULL);
	pthread_create(&thread, NULL, fake_qmp, &listener);
	CHECK("error reply reported", qmp_run(sock, "bogus", 2000, err, sizeof(err)) == -EIO);
	CHECK("error reply class", strstr(err, "CommandNotFound") != NULL);
	CHECK("error reply description", strstr(err, "no such command") != NULL);
	pthread_join(thread, NULL);
	close(listener);
	unlink(sock);
	CHECK("no server, connection refused", qmp_run(sock, "quit", 500, err, sizeof(err)) == -ENOENT);
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	CHECK("socket path too long", qmp_check_socket_path(long_path) == -ENAMETOOLONG);
	CHECK("connect with too long a path", qmp_run(long_path, "quit", 500, err, sizeof(err)) == -ENAMETOOLONG);
}

static void test_verdict(void)
{
	char path[PATH_MAX], key[PATH_MAX + 128], reason[128];

	path_in_tmp(path, sizeof(path), "kvm-verdict");
	CHECK("verdict key for sh", verdict_key("/bin/sh", key, sizeof(key)) == 0);
	CHECK("verdict key names the binary", strstr(key, "/bin/sh") != NULL);
	CHECK("missing verdict", verdict_load(path, key, reason, sizeof(reason)) == -ENOENT);
	CHECK("save bad verdict", verdict_save(path, key, 0, "internal-error\nsecond line") == 0);
	CHECK("load bad verdict", verdict_load(path, key, reason, sizeof(reason)) == 0);
	CHECK("bad verdict reason on one line", strcmp(reason, "internal-error?second line") == 0);
	CHECK("other key makes it stale", verdict_load(path, "other key", reason, sizeof(reason)) == -ENOENT);
	CHECK("save good verdict", verdict_save(path, key, 1, "") == 0);
	CHECK("load good verdict", verdict_load(path, key, reason, sizeof(reason)) == 1);
	CHECK("good verdict has no reason", reason[0] == '\0');
	write_file_atomic(path, "junk\n", 5, 0600);
	CHECK("malformed verdict ignored", verdict_load(path, key, reason, sizeof(reason)) == -ENOENT);
	unlink(path);
}

static void test_state_file(void)
{
	struct vm_record rec = { .state = VM_FAILED }, back;

	CHECK("missing state loaded", vmdir_load_state(tmp, &back) == 0);
	CHECK("missing state is stopped", back.state == VM_STOPPED);
	CHECK("missing state has no detail", back.detail[0] == '\0');
	snprintf(rec.accel, sizeof(rec.accel), "tcg");
	snprintf(rec.detail, sizeof(rec.detail), "vm x: QEMU failed = yes\nline two");
	CHECK("state saved", vmdir_save_state(tmp, &rec) == 0);
	CHECK("state loaded", vmdir_load_state(tmp, &back) == 0);
	CHECK("state round trip", back.state == VM_FAILED);
	CHECK("accel round trip", strcmp(back.accel, "tcg") == 0);
	CHECK("detail stays one line", strcmp(back.detail, "vm x: QEMU failed = yes?line two") == 0);
}

static void test_ports(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char dir[PATH_MAX], config[PATH_MAX];
	struct nido_config cfg;
	socklen_t len = sizeof(addr);
	unsigned busy, port = 0;
	int fd, lock_fd = -1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	listen(fd, 1);
	getsockname(fd, (struct sockaddr *)&addr, &len);
	busy = ntohs(addr.sin_port);
	CHECK("port in use not bindable", ports_bindable(busy) == 0);

	/* Another VM records busy + 1. */
	path_in_tmp(dir, sizeof(dir), "vms/other");
	mkdir_p(dir, 0700);
	snprintf(config, sizeof(config), "%s/config", dir);
	config_defaults(&cfg);
	cfg.ssh_port = busy + 1;
	config_save(config, &cfg);
	CHECK("ports lock taken", ports_lock(tmp, &lock_fd) == 0);
	CHECK("choice from the start", ports_choose(tmp, "self", busy, busy + 3, 0, &port) == 0);
	CHECK("choice skips busy and recorded ports", port == busy + 2);
	CHECK("choice for the recording VM", ports_choose(tmp, "other", busy + 1, busy + 1, 0, &port) == 0);
	CHECK("the VM itself may keep its port", port == busy + 1);
	CHECK("choice after a port", ports_choose(tmp, "self", busy, busy + 3, busy + 2, &port) == 0);
	CHECK("choice takes the next port", port == busy + 3);
	CHECK("choice after the last port", ports_choose(tmp, "self", busy, busy + 3, busy + 3, &port) == 0);
	CHECK("choice wraps around", port == busy + 2);
	CHECK("no free port", ports_choose(tmp, "self", busy, busy + 1, 0, &port) == -EADDRNOTAVAIL);
	ports_unlock(lock_fd);
	close(fd);
}

static void test_ssh_keys(void)
{
	const char *rsa_line = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@box\n";
	char home[PATH_MAX], dir[PATH_MAX], pub[PATH_MAX], err[512];
	struct nido_config cfg;
	struct ssh_key *key = malloc(sizeof(*key));
	struct stat st;

	path_in_tmp(home, sizeof(home), "home");
	path_in_tmp(dir, sizeof(dir), "home/.ssh");
	mkdir_p(dir, 0700);
	setenv("HOME", home, 1);
	config_defaults(&cfg);
	CHECK("own key created", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == 0);
	CHECK("own public key valid", sshkey_valid_public(key->public_key));
	CHECK("own private key in home", strstr(key->private_path, "/id_ed25519") != NULL);
	CHECK("own private key exists", stat(key->private_path, &st) == 0);
	CHECK("own private key is 0600", (st.st_mode & 0777) == 0600);
	path_in_tmp(pub, sizeof(pub), "id_ed25519.pub");
	unlink(pub);
	CHECK("own key without public key", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == 0);
	CHECK("missing public key derived again", access(pub, F_OK) == 0);

	snprintf(pub, sizeof(pub), "%s/id_rsa.pub", dir);
	write_file_atomic(pub, rsa_line, strlen(rsa_line), 0644);
	CHECK("user key found", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == 0);
	CHECK("user key text", strcmp(key->public_key, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@box") == 0);
	snprintf(cfg.ssh_key, sizeof(cfg.ssh_key), "~/.ssh/id_rsa");
	CHECK("configured key found", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == 0);
	CHECK("configured private key path", strcmp(key->private_path + strlen(key->private_path) - 12,
						    "/.ssh/id_rsa") == 0);
	snprintf(cfg.ssh_key, sizeof(cfg.ssh_key), "%s/missing.pub", dir);
	CHECK("configured key missing", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == -ENOENT);
	CHECK("missing key named in the error", strstr(err, "missing.pub") != NULL);
	snprintf(cfg.ssh_key, sizeof(cfg.ssh_key), "relative.pub");
	CHECK("relative key path rejected", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == -EINVAL);
	write_file_atomic(pub, "not a key\n", 10, 0644);
	snprintf(cfg.ssh_key, sizeof(cfg.ssh_key), "%s", pub);
	CHECK("file that is no key rejected", sshkey_find(tmp, &cfg, key, err, sizeof(err)) == -EINVAL);
	free(key);
}

/* Reads <tmp>/vm/<file> into a static buffer; empty when missing. */
static const char *vm_text(const char *file)
{
	static char text[8192];
	char path[PATH_MAX], *data;
	size_t len;

	snprintf(path, sizeof(path), "%s/vm/%s", tmp, file);
	text[0] = '\0';
	if (read_file(path, sizeof(text) - 1, &data, &len) == 0) {
		memcpy(text, data, len + 1);
		free(data);
	}
	return text;
}

/* Extracts the seed ISO with xorriso and compares each file with seed/. */
static int iso_matches_seed(const char *vmdir)
{
	char iso[PATH_MAX], out[PATH_MAX], err[256], *a, *b;
	const char *argv[] = { "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", out, NULL };
	static const char *const files[] = { "user-data", "meta-data" };
	size_t alen, blen;
	int same = 1;

	snprintf(iso, sizeof(iso), "%s/seed.iso", vmdir);
	snprintf(out, sizeof(out), "%s/extracted", tmp);
	remove_tree(out);
	if (spawn_run(argv, -1, -1, 30000, err, sizeof(err)) < 0)
		return 0;
	for (size_t i = 0; i < 2; i++) {
		char x[PATH_MAX], y[PATH_MAX];

		snprintf(x, sizeof(x), "%s/%s", out, files[i]);
		snprintf(y, sizeof(y), "%s/seed/%s", vmdir, files[i]);
		if (read_file(x, 1 << 20, &a, &alen) < 0)
			return 0;
		if (read_file(y, 1 << 20, &b, &blen) < 0) {
			free(a);
			return 0;
		}
		same = same && alen == blen && memcmp(a, b, alen) == 0;
		free(a);
		free(b);
	}
	remove_tree(out);
	return same;
}

/* Reads the ISO 9660 volume identifier (bytes 40-71 of sector 16). */
static void iso_label(const char *vmdir, char *label, size_t len)
{
	char path[PATH_MAX], raw[33] = "";
	int fd;

	snprintf(path, sizeof(path), "%s/seed.iso", vmdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		pread(fd, raw, 32, 16 * 2048 + 40);
		close(fd);
	}
	raw[strcspn(raw, " ")] = '\0';
	snprintf(label, len, "%s", raw);
}

/* Runs xorriso on the image at iso with read_fs ("nojoliet" reads the Rock
 * Ridge tree, "norock" the Joliet tree) and the given action, and copies its
 * stdout into out. Returns the spawn_run result. */
static int run_xorriso(const char *iso, const char *read_fs, const char *action, const char *arg1,
		       const char *arg2, char *out, size_t outlen)
{
	const char *argv[] = { "xorriso", "-osirrox", "on", "-read_fs", read_fs, "-indev", iso,
			       action, arg1, arg2, NULL };
	char err[512];
	int fd = memfd_create("xorriso-out", MFD_CLOEXEC), rc;

	out[0] = '\0';
	if (fd < 0)
		return -errno;
	rc = spawn_run(argv, fd, -1, 30000, err, sizeof(err));
	read_memfd(fd, out, outlen);
	close(fd);
	return rc;
}

/* Returns 1 when <dir>/<name> contains exactly the len bytes of data. */
static int file_equals(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX], *text;
	size_t got;
	int same;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file(path, 1 << 20, &text, &got) < 0)
		return 0;
	same = got == len && memcmp(text, data, len) == 0;
	free(text);
	return same;
}

/* Extracts the tree that read_fs selects and compares both files. */
static void check_iso_tree(const char *iso, const char *read_fs, const struct seed_iso_file *files)
{
	char dir[PATH_MAX], out[4096], name[128];

	snprintf(dir, sizeof(dir), "%s/extract-%s", tmp, read_fs);
	snprintf(name, sizeof(name), "seed iso %s tree extracted", read_fs);
	CHECK(name, run_xorriso(iso, read_fs, "-extract", "/", dir, out, sizeof(out)) == 0);
	for (size_t i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "seed iso %s tree: %s bytes", read_fs, files[i].name);
		CHECK(name, file_equals(dir, files[i].name, files[i].data, files[i].len));
	}
	remove_tree(dir);
}

static void test_seed_iso(void)
{
	static const char meta[] = "{\"instance-id\":\"web-0123456789abcdef\",\"local-hostname\":\"web\"}";
	unsigned char user[5000];
	const struct seed_iso_file files[] = {
		{ "user-data", user, sizeof(user) },
		{ "meta-data", meta, strlen(meta) },
	};
	const struct seed_iso_file twice[] = { files[0], files[0] };
	char iso[PATH_MAX], err[512], out[4096];
	void *image = NULL;
	size_t len = 0;

	/* Every byte value, over more than two 2 KiB sectors. */
	for (size_t i = 0; i < sizeof(user); i++)
		user[i] = (unsigned char)(i * 7);
	CHECK("seed iso built", seed_iso_build(files, 2, &image, &len, err, sizeof(err)) == 0);
	CHECK("seed iso not empty", len > 0);
	CHECK("seed iso size in whole sectors", len % 2048 == 0);
	path_in_tmp(iso, sizeof(iso), "seed-test.iso");
	CHECK("seed iso image returned", image != NULL);
	CHECK("seed iso written", image && write_file_atomic(iso, image, len, 0600) == 0);
	free(image);

	CHECK("seed iso pvd read", run_xorriso(iso, "any", "-pvd_info", "--", "--", out, sizeof(out)) == 0);
	CHECK("seed iso volume id is cidata", strstr(out, "Volume Id    : cidata\n") != NULL);
	CHECK("seed iso rock ridge listed", run_xorriso(iso, "nojoliet", "-lsl", "/", "--", out, sizeof(out)) == 0);
	CHECK("seed iso rock ridge user-data mode", strstr(out, "-rw-------    1 0        0            5000 ") != NULL);
	CHECK("seed iso rock ridge user-data name", strstr(out, "'user-data'\n") != NULL);
	CHECK("seed iso rock ridge meta-data name", strstr(out, "'meta-data'\n") != NULL);
	check_iso_tree(iso, "nojoliet", files);
	check_iso_tree(iso, "norock", files);
	unlink(iso);

	image = NULL;
	CHECK("seed iso duplicate name fails", seed_iso_build(twice, 2, &image, &len, err, sizeof(err)) == -EIO);
	CHECK("seed iso duplicate name message", strstr(err, "cannot add user-data") != NULL);
	CHECK("seed iso failure returns no image", image == NULL);
}

static void test_seed_files(void)
{
	const char *key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq5c2V0ZXN0a2V5MDEyMzQ1Njc4OWFiY2RlZg t";
	char vmdir[PATH_MAX], path[PATH_MAX], err[512], id[128], label[40];
	struct stat st;

	path_in_tmp(vmdir, sizeof(vmdir), "vm");
	mkdir_p(vmdir, 0700);
	snprintf(path, sizeof(path), "%s/user-data", vmdir);
	write_file_atomic(path, "", 0, 0600);
	CHECK("seed built", seed_refresh(vmdir, "web", "dev", key, err, sizeof(err)) == 0);
	CHECK("seed user-data is the default", strncmp(vm_text("seed/user-data"), "#cloud-config\n{", 15) == 0);
	snprintf(path, sizeof(path), "%s/meta-data", vmdir);
	CHECK("meta-data exists", lstat(path, &st) == 0);
	CHECK("meta-data is a link", S_ISLNK(st.st_mode));
	snprintf(id, sizeof(id), "%s", vm_text("meta-data"));
	CHECK("meta-data readable through the link", strstr(id, "\"instance-id\":\"web-") != NULL);
	iso_label(vmdir, label, sizeof(label));
	CHECK("iso volume label is cidata", strcmp(label, "cidata") == 0);
	CHECK("iso holds the seed files", iso_matches_seed(vmdir));

	CHECK("refresh of a current seed", seed_refresh(vmdir, "web", "dev", key, err, sizeof(err)) == 0);
	CHECK("unchanged seed keeps the instance-id", strcmp(vm_text("meta-data"), id) == 0);
	snprintf(path, sizeof(path), "%s/seed.iso", vmdir);
	unlink(path);
	CHECK("refresh without iso", seed_refresh(vmdir, "web", "dev", key, err, sizeof(err)) == 0);
	CHECK("missing iso rebuilt", access(path, F_OK) == 0);
	CHECK("rebuilt iso keeps the instance-id", strcmp(vm_text("meta-data"), id) == 0);

	snprintf(path, sizeof(path), "%s/user-data", vmdir);
	write_file_atomic(path, "#cloud-config\nnido-test: poweroff\n", 34, 0600);
	CHECK("changed user-data rebuilds", seed_refresh(vmdir, "web", "dev", key, err, sizeof(err)) == 0);
	CHECK("changed user-data, new instance-id", strcmp(vm_text("meta-data"), id) != 0);
	CHECK("seed user-data is multipart", strncmp(vm_text("seed/user-data"), "Content-Type: multipart/mixed", 29) == 0);
	CHECK("iso follows the change", iso_matches_seed(vmdir));
	snprintf(id, sizeof(id), "%s", vm_text("meta-data"));
	CHECK("refresh for another user", seed_refresh(vmdir, "web", "ops", key, err, sizeof(err)) == 0);
	CHECK("other user, new instance-id", strcmp(vm_text("meta-data"), id) != 0);
	CHECK("invalid user rejected", seed_refresh(vmdir, "web", "root", key, err, sizeof(err)) == -EINVAL);
	CHECK("invalid user named in the error", strstr(err, "invalid user name") != NULL);
}

/* Writes <home>/vms/<name>/<file>. */
static void put_vm_file(const char *home, const char *name, const char *file, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vms/%s", home, name);
	mkdir_p(path, 0700);
	snprintf(path, sizeof(path), "%s/vms/%s/%s", home, name, file);
	write_file_atomic(path, text, strlen(text), 0600);
}

/* The vm.h entry points on VM directories made by hand, with no QEMU. */
static void test_vm_directories(void)
{
	char home[PATH_MAX], path[PATH_MAX], err[512], line[700];
	const char *config = "user = dev\nssh_key = /nonexistent/key.pub\nstop_timeout = 1\n";
	struct vm_status st;
	size_t count = 0;
	char **names = NULL;

	path_in_tmp(home, sizeof(home), "opshome");
	mkdir_p(home, 0700);
	CHECK("list without vms", vm_list(home, &names, &count) == 0);
	CHECK("list without vms is empty", count == 0);
	put_vm_file(home, "beta", "config", config);
	put_vm_file(home, "alpha", "config", config);
	put_vm_file(home, "bad,name", "config", config);
	snprintf(path, sizeof(path), "%s/vms/gamma", home);
	write_file_atomic(path, "", 0, 0600);
	CHECK("list of VMs", vm_list(home, &names, &count) == 0);
	CHECK("list finds VM directories", count == 2);
	CHECK("list is sorted, first", count > 0 && strcmp(names[0], "alpha") == 0);
	CHECK("list is sorted, second", count > 1 && strcmp(names[1], "beta") == 0);
	vm_list_free(names, count);

	CHECK("status of missing VM", vm_status(home, "nope", &st) == -ENOENT);
	CHECK("status of invalid name", vm_status(home, "a/b", &st) == -EINVAL);
	CHECK("status without state", vm_status(home, "alpha", &st) == 0);
	CHECK("status without state is stopped", st.state == VM_STOPPED);
	CHECK("stopped VM has no pid", st.pid == 0);
	put_vm_file(home, "alpha", "state", "state = failed\naccel = tcg\ndetail = vm alpha: QEMU failed to start: x\n");
	CHECK("status after failed start", vm_status(home, "alpha", &st) == 0);
	CHECK("failed start reported", st.state == VM_FAILED);
	vm_status_format(&st, line, sizeof(line));
	CHECK("failed status formatted", strcmp(line, "failed (vm alpha: QEMU failed to start: x)") == 0);
	put_vm_file(home, "alpha", "state", "state = booting\naccel = tcg\ndetail = \n");
	CHECK("status of an abandoned start", vm_status(home, "alpha", &st) == 0);
	CHECK("booting without a start in progress is stopped", st.state == VM_STOPPED);
	put_vm_file(home, "alpha", "qemu.pid", "1\n");
	CHECK("status with a pidfile of pid 1", vm_status(home, "alpha", &st) == 0);
	CHECK("pidfile of another program is not the VM", st.pid == 0);
	CHECK("VM with a stale pidfile is stopped", st.state == VM_STOPPED);

	CHECK("start of missing VM", vm_start(home, "nope", err, sizeof(err)) == -ENOENT);
	CHECK("start of missing VM message", strstr(err, "not found") != NULL);
	CHECK("stop of stopped VM", vm_stop(home, "alpha", 0, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/vms/alpha/qemu.pid", home);
	CHECK("stop removes a stale pidfile", access(path, F_OK) < 0);
	CHECK("edit of another file rejected", vm_edit_file(home, "alpha", "image", "x", 1, err, sizeof(err)) == -EPERM);
	CHECK("edit with invalid config rejected", vm_edit_file(home, "alpha", "config", "memory = 1\n", 11, err,
								 sizeof(err)) == -EINVAL);
	CHECK("invalid config message", strstr(err, "invalid config") != NULL);
	CHECK("edit with missing key rejected", vm_edit_file(home, "alpha", "config", config, strlen(config), err,
							      sizeof(err)) == -EINVAL);
	CHECK("missing key message", strstr(err, "key.pub") != NULL);
	CHECK("edit of missing VM", vm_edit_file(home, "nope", "config", "", 0, err, sizeof(err)) == -ENOENT);
	CHECK("destroy of stopped VM", vm_destroy(home, "beta", err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/vms/beta", home);
	CHECK("destroy removes the directory", access(path, F_OK) < 0);
	CHECK("destroy of missing VM", vm_destroy(home, "beta", err, sizeof(err)) == -ENOENT);
}

static void test_create_rejects(void)
{
	struct vm_spec spec = { .name = "web", .tag = "tiny:1", .backing = "/nonexistent.qcow2",
				.backing_format = "qcow2" };
	const char *rsa_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@box\n";
	char home[PATH_MAX], path[PATH_MAX], err[512];

	path_in_tmp(home, sizeof(home), "createhome");
	config_defaults(&spec.cfg);
	path_in_tmp(spec.cfg.ssh_key, sizeof(spec.cfg.ssh_key), "create-key.pub");
	write_file_atomic(spec.cfg.ssh_key, rsa_key, strlen(rsa_key), 0644);
	spec.name = "-web";
	CHECK("create with invalid name", vm_create(home, &spec, err, sizeof(err)) == -EINVAL);
	CHECK("invalid name message", strstr(err, "invalid VM name") != NULL);
	spec.name = "web";
	spec.backing_format = "vmdk";
	CHECK("create with unknown format", vm_create(home, &spec, err, sizeof(err)) == -EINVAL);
	CHECK("unknown format message", strstr(err, "backing format") != NULL);
	spec.backing_format = "qcow2";
	spec.backing = "relative.qcow2";
	CHECK("create with relative backing", vm_create(home, &spec, err, sizeof(err)) == -EINVAL);
	spec.backing = "/nonexistent.qcow2";
	snprintf(spec.cfg.user, sizeof(spec.cfg.user), "root");
	CHECK("create with user root", vm_create(home, &spec, err, sizeof(err)) == -EINVAL);
	snprintf(spec.cfg.user, sizeof(spec.cfg.user), "dev");
	CHECK("create with missing backing fails", vm_create(home, &spec, err, sizeof(err)) == -EIO);
	CHECK("missing backing message names the VM", strstr(err, "vm web: cannot create the overlay") != NULL);
	CHECK("missing backing message names the file", strstr(err, "/nonexistent.qcow2") != NULL);
	snprintf(path, sizeof(path), "%s/vms/web", home);
	CHECK("failed create leaves no directory", access(path, F_OK) < 0);
	put_vm_file(home, "web", "config", "");
	CHECK("create of existing VM", vm_create(home, &spec, err, sizeof(err)) == -EEXIST);
	CHECK("existing VM message", strstr(err, "already exists") != NULL);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/nido-test-vm-XXXXXX");
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_spawn();
	test_spawn_descriptors();
	test_last_line();
	test_vmproc();
	test_qmp();
	test_verdict();
	test_state_file();
	test_ports();
	test_ssh_keys();
	test_seed_iso();
	test_seed_files();
	test_vm_directories();
	test_create_rejects();
	remove_tree(tmp);
	return unit_exit();
}
