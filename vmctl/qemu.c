/* The QEMU command line of a VM; see qemu.h. */
#include "vmctl/qemu.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/files.h"
#include "vmctl/qmp.h"
#include "vmctl/vm.h"

int qemu_escape_commas(const char *text, char *out, size_t len)
{
	size_t used = 0;

	for (; *text; text++) {
		size_t need = *text == ',' ? 2 : 1;

		if (used + need >= len)
			return -ENAMETOOLONG;
		out[used++] = *text;
		if (*text == ',')
			out[used++] = ',';
	}
	if (len == 0)
		return -ENAMETOOLONG;
	out[used] = '\0';
	return 0;
}

void qemu_argv_free(struct qemu_argv *args)
{
	for (size_t i = 0; i < args->argc; i++)
		free(args->argv[i]);
	args->argc = 0;
	args->argv[0] = NULL;
	args->error = 0;
}

/* Appends one formatted argument. The first failure is kept in args->error
 * and later calls do nothing, so a builder checks once at its end. */
static void add_arg(struct qemu_argv *args, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_arg(struct qemu_argv *args, const char *fmt, ...)
{
	va_list ap;
	char *arg;
	int n;

	if (args->error)
		return;
	if (args->argc >= QEMU_ARGV_MAX) {
		args->error = -E2BIG;
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&arg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		args->error = -ENOMEM;
		return;
	}
	args->argv[args->argc++] = arg;
	args->argv[args->argc] = NULL;
}

/* Writes <vmdir>/<file> with its commas doubled into out. */
static int escaped_file(const struct qemu_spec *spec, const char *file, char *out, size_t len)
{
	char path[PATH_MAX];
	int rc = path_join(path, sizeof(path), spec->vmdir, file);

	return rc < 0 ? rc : qemu_escape_commas(path, out, len);
}

static void add_machine(const struct qemu_spec *spec, struct qemu_argv *args)
{
	add_arg(args, "%s", QEMU_SYSTEM);
	add_arg(args, "-name");
	add_arg(args, "%s,process=nido-%s", spec->name, spec->name);
	add_arg(args, "-machine");
	add_arg(args, "q35,accel=%s", spec->kvm ? "kvm" : "tcg");
	/* TCG's "max" model offers the x86-64-v2 features that some current
	 * distributions require, which the default qemu64 model lacks. */
	add_arg(args, "-cpu");
	add_arg(args, "%s", spec->kvm ? "host" : "max");
	add_arg(args, "-m");
	add_arg(args, "%u", spec->memory_mb);
	add_arg(args, "-smp");
	add_arg(args, "%u", spec->cpus);
	add_arg(args, "-nodefaults");
	add_arg(args, "-no-user-config");
	add_arg(args, "-display");
	add_arg(args, "none");
}

static int add_devices(const struct qemu_spec *spec, struct qemu_argv *args)
{
	char disk[2 * PATH_MAX], seed[2 * PATH_MAX];
	int rc;

	rc = escaped_file(spec, "disk.qcow2", disk, sizeof(disk));
	if (rc == 0)
		rc = escaped_file(spec, "seed.iso", seed, sizeof(seed));
	if (rc < 0)
		return rc;
	add_arg(args, "-drive");
	add_arg(args, "file=%s,format=qcow2,if=virtio", disk);
	add_arg(args, "-drive");
	add_arg(args, "file=%s,format=raw,if=virtio,readonly=on", seed);
	add_arg(args, "-netdev");
	add_arg(args, "user,id=net0,hostfwd=tcp:127.0.0.1:%u-:22%s", spec->ssh_port,
		      spec->network == NET_RESTRICTED ? ",restrict=on" : "");
	add_arg(args, "-device");
	add_arg(args, "virtio-net-pci,netdev=net0");
	/* Entropy from the host, so that first boot does not stall on key generation. */
	add_arg(args, "-device");
	add_arg(args, "virtio-rng-pci");
	return args->error;
}

static int add_control(const struct qemu_spec *spec, struct qemu_argv *args)
{
	char console[2 * PATH_MAX], qmp[2 * PATH_MAX], socket_path[PATH_MAX], pidfile[PATH_MAX];
	int rc;

	rc = path_join(socket_path, sizeof(socket_path), spec->vmdir, "qmp.sock");
	if (rc == 0)
		rc = qmp_check_socket_path(socket_path);
	if (rc == 0)
		rc = qemu_escape_commas(socket_path, qmp, sizeof(qmp));
	if (rc == 0)
		rc = escaped_file(spec, "console.log", console, sizeof(console));
	/* -pidfile takes a plain path, not an option string, so it is not escaped. */
	if (rc == 0)
		rc = path_join(pidfile, sizeof(pidfile), spec->vmdir, "qemu.pid");
	if (rc < 0)
		return rc;
	add_arg(args, "-chardev");
	add_arg(args, "file,id=console,path=%s", console);
	add_arg(args, "-serial");
	add_arg(args, "chardev:console");
	add_arg(args, "-chardev");
	add_arg(args, "socket,id=qmp,path=%s,server=on,wait=off", qmp);
	add_arg(args, "-mon");
	add_arg(args, "chardev=qmp,mode=control");
	add_arg(args, "-pidfile");
	add_arg(args, "%s", pidfile);
	add_arg(args, "-daemonize");
	if (spec->sandbox) {
		add_arg(args, "-sandbox");
		add_arg(args, "%s", QEMU_SANDBOX_OPTS);
	}
	return args->error;
}

int qemu_build_argv(const struct qemu_spec *spec, struct qemu_argv *args)
{
	int rc;

	args->argc = 0;
	args->argv[0] = NULL;
	args->error = 0;
	if (!vm_name_valid(spec->name) || spec->vmdir[0] != '/' || spec->memory_mb == 0 ||
	    spec->cpus == 0 || spec->ssh_port == 0 || spec->ssh_port > 65535)
		return -EINVAL;
	add_machine(spec, args);
	rc = add_devices(spec, args);
	if (rc == 0)
		rc = add_control(spec, args);
	if (rc < 0)
		qemu_argv_free(args);
	return rc;
}
