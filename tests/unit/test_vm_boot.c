/* Boots a real VM through vm.h: the tiny test image from
 * tests/images/build-tiny.sh (or $NIDO_TINY_IMAGE) under TCG with restricted
 * networking. Checks the seed markers on the serial console, the overlay's
 * backing file, power-down, restart, a guest that powers itself off, and
 * that destroy leaves no process and no directory. Takes about 30 s. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch/config.h"
#include "fetch/files.h"
#include "tests/unit/unit.h"
#include "vmctl/deadline.h"
#include "vmctl/spawn.h"
#include "vmctl/vm.h"
#include "vmctl/vmproc.h"

#define BOOT_WAIT_MS 90000

static char home[64], vmdir[PATH_MAX], pidfile[PATH_MAX], image[PATH_MAX];

/* Reads a file of the VM directory into a malloc'd string; "" when missing. */
static char *vm_file(const char *file)
{
	char path[PATH_MAX], *text = NULL;

	snprintf(path, sizeof(path), "%s/%s", vmdir, file);
	if (read_file(path, 1 << 20, &text, NULL) < 0)
		text = strdup("");
	return text;
}

/* Waits until console.log contains marker; returns 1 when it does. */
static int wait_console(const char *marker, int timeout_ms)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	int found = 0;

	while (!found && ms_left(deadline) > 0) {
		char *console = vm_file("console.log");

		found = strstr(console, marker) != NULL;
		free(console);
		if (!found)
			sleep_ms(200);
	}
	return found;
}

static int wait_state(enum vm_run_state state, int timeout_ms)
{
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct vm_status st;

	while (ms_left(deadline) > 0) {
		if (vm_status(home, "tiny", &st) == 0 && st.state == state)
			return 1;
		sleep_ms(200);
	}
	return 0;
}

/* Finds the tiny image: $NIDO_TINY_IMAGE, else the output of build-tiny.sh. */
static int find_image(void)
{
	const char *argv[] = { "bash", "tests/images/build-tiny.sh", NULL };
	const char *env = getenv("NIDO_TINY_IMAGE");
	char err[512];
	int fd, rc;
	ssize_t n;

	if (env && *env) {
		snprintf(image, sizeof(image), "%s", env);
		return 0;
	}
	fd = memfd_create("tiny-path", MFD_CLOEXEC);
	rc = spawn_run(argv, fd, -1, 600000, err, sizeof(err));
	n = pread(fd, image, sizeof(image) - 1, 0);
	close(fd);
	if (rc < 0 || n <= 0) {
		printf("# build-tiny.sh failed: %s\n", err);
		return -1;
	}
	image[n] = '\0';
	image[strcspn(image, "\n")] = '\0';
	return 0;
}

static void sha256_hex(const char *text, char *hex)
{
	unsigned char digest[32];
	unsigned int len = 0;

	EVP_Digest(text, strlen(text), digest, &len, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static void check_seed_markers(const char *label)
{
	char *seed = vm_file("seed/user-data"), *meta = vm_file("meta-data"), *console = vm_file("console.log");
	char marker[256], hex[65], *id;

	sha256_hex(seed, hex);
	snprintf(marker, sizeof(marker), "NIDO-USERDATA-SHA256 %s", hex);
	CHECK(label, strstr(console, marker) != NULL);
	id = strstr(meta, "\"instance-id\":\"");
	if (id) {
		id += strlen("\"instance-id\":\"");
		id[strcspn(id, "\"")] = '\0';
	}
	snprintf(marker, sizeof(marker), "NIDO-INSTANCE-ID %s", id ? id : "?");
	CHECK("guest sees the instance-id", strstr(console, marker) != NULL);
	CHECK("guest gets the VM name as hostname", strstr(console, "NIDO-HOSTNAME tiny") != NULL);
	free(seed);
	free(meta);
	free(console);
}

static void check_overlay(void)
{
	char disk[PATH_MAX], info[4096] = "", err[512], want[PATH_MAX + 32];
	const char *argv[] = { "qemu-img", "info", "-U", disk, NULL };
	int fd = memfd_create("qemu-img-info", MFD_CLOEXEC);
	ssize_t n;

	snprintf(disk, sizeof(disk), "%s/disk.qcow2", vmdir);
	CHECK("qemu-img info runs", spawn_run(argv, fd, -1, 30000, err, sizeof(err)) == 0);
	n = pread(fd, info, sizeof(info) - 1, 0);
	info[n > 0 ? n : 0] = '\0';
	close(fd);
	snprintf(want, sizeof(want), "backing file: %s\n", image);
	CHECK("overlay has the backing file", strstr(info, want) != NULL);
	CHECK("overlay records the backing format", strstr(info, "backing file format: qcow2") != NULL);
}

static int qemu_cmdline_has(pid_t pid, const char *text)
{
	char path[64], cmdline[8192];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* /proc files report size 0, so read until the end. */
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		if (cmdline[i] == '\0')
			cmdline[i] = ' ';
	cmdline[n] = '\0';
	return strstr(cmdline, text) != NULL;
}

static int create_vm(void)
{
	const char *user_data = "#cloud-config\nruncmd: []\n";
	struct vm_spec spec = { .name = "tiny", .tag = "tiny:test", .backing = image, .backing_format = "qcow2",
				.user_data = user_data, .user_data_len = strlen(user_data) };
	char err[1024];
	int rc;

	config_defaults(&spec.cfg);
	spec.cfg.network = NET_RESTRICTED;
	spec.cfg.accel = ACCEL_TCG;
	spec.cfg.memory_mb = 256;
	spec.cfg.stop_timeout = 20;
	rc = vm_create(home, &spec, err, sizeof(err));
	if (rc < 0)
		printf("# vm_create: %s\n", err);
	return rc;
}

static void test_first_boot(void)
{
	struct vm_status st;
	char *ssh;

	CHECK("vm created", create_vm() == 0);
	CHECK("status after create", vm_status(home, "tiny", &st) == 0);
	CHECK("status running", st.state == VM_RUNNING);
	CHECK("status has the QEMU pid", st.pid > 0);
	CHECK("status accel tcg", strcmp(st.accel, "tcg") == 0);
	CHECK("QEMU runs with restricted network", qemu_cmdline_has(st.pid, "restrict=on"));
	ssh = vm_file("ssh");
	CHECK("ssh file names the key", strncmp(ssh, "ssh -i /", 8) == 0);
	CHECK("ssh file names the user", strstr(ssh, " vmuser@127.0.0.1\n") != NULL);
	free(ssh);
	check_overlay();
	CHECK("guest idles", wait_console("NIDO-TINY-IDLE", BOOT_WAIT_MS));
	check_seed_markers("guest sees the multipart user-data");
}

static void test_stop_start(void)
{
	char err[1024], *meta_before = vm_file("meta-data"), *meta_after;
	struct vm_status st;
	pid_t old;

	vm_status(home, "tiny", &st);
	old = st.pid;
	CHECK("power-down stop", vm_stop(home, "tiny", 0, err, sizeof(err)) == 0);
	CHECK("guest saw the power button", wait_console("NIDO-TINY-ACPI-POWEROFF", 1000));
	CHECK("QEMU gone after stop", vmproc_is_qemu_of(old, pidfile) == 0);
	CHECK("status after stop", vm_status(home, "tiny", &st) == 0);
	CHECK("status stopped", st.state == VM_STOPPED);
	CHECK("stopped VM has no pid", st.pid == 0);
	CHECK("restart", vm_start(home, "tiny", err, sizeof(err)) == 0);
	CHECK("second start rejected", vm_start(home, "tiny", err, sizeof(err)) == -EALREADY);
	snprintf(err, sizeof(err), "%s/console.log.1", vmdir);
	CHECK("previous console kept", access(err, F_OK) == 0);
	CHECK("guest idles again", wait_console("NIDO-TINY-IDLE", BOOT_WAIT_MS));
	meta_after = vm_file("meta-data");
	CHECK("same user-data keeps the instance-id", strcmp(meta_before, meta_after) == 0);
	check_seed_markers("guest sees the same user-data");
	free(meta_before);
	free(meta_after);
}

static void test_guest_poweroff(void)
{
	const char *user_data = "#cloud-config\nnido-test: poweroff\n";
	char err[1024];

	CHECK("edit while running rejected", vm_edit_file(home, "tiny", "user-data", user_data, strlen(user_data),
							   err, sizeof(err)) == -EBUSY);
	CHECK("forced stop", vm_stop(home, "tiny", 1, err, sizeof(err)) == 0);
	CHECK("edit while stopped", vm_edit_file(home, "tiny", "user-data", user_data, strlen(user_data),
						  err, sizeof(err)) == 0);
	CHECK("start with poweroff user-data", vm_start(home, "tiny", err, sizeof(err)) == 0);
	CHECK("guest powers itself off", wait_console("NIDO-TINY-POWEROFF", BOOT_WAIT_MS));
	check_seed_markers("guest sees the edited user-data");
	CHECK("status stopped after guest power-off", wait_state(VM_STOPPED, 10000));
}

static void test_destroy(void)
{
	char err[1024];
	struct vm_status st;
	pid_t pid;

	CHECK("start before destroy", vm_start(home, "tiny", err, sizeof(err)) == 0);
	vm_status(home, "tiny", &st);
	pid = st.pid;
	CHECK("running before destroy", pid > 0);
	CHECK("destroy", vm_destroy(home, "tiny", err, sizeof(err)) == 0);
	CHECK("destroy removes the directory", access(vmdir, F_OK) < 0);
	CHECK("destroy leaves no QEMU", vmproc_is_qemu_of(pid, pidfile) == 0);
}

int main(void)
{
	char err[1024];

	if (find_image() < 0) {
		printf("ok vm boot # skip: no tiny image\n");
		return 0;
	}
	snprintf(home, sizeof(home), "/tmp/nido-boot-XXXXXX");
	if (!mkdtemp(home)) {
		perror("mkdtemp");
		return 1;
	}
	/* No ~/.ssh keys: the VM gets a key pair made in the home directory. */
	setenv("HOME", home, 1);
	snprintf(vmdir, sizeof(vmdir), "%s/vms/tiny", home);
	snprintf(pidfile, sizeof(pidfile), "%s/qemu.pid", vmdir);
	test_first_boot();
	test_stop_start();
	test_guest_poweroff();
	test_destroy();
	vm_destroy(home, "tiny", err, sizeof(err));
	remove_tree(home);
	return unit_exit();
}
