/* The QEMU command line of a VM. Pure: builds strings and starts nothing, so
 * unit tests can check it whole. Every path that goes into a QEMU option
 * string has its commas doubled, which QEMU reads as one literal comma, so a
 * state directory whose path contains a comma works and injects no option. */
#ifndef NIDO_QEMU_H
#define NIDO_QEMU_H

#include <stddef.h>

#include "fetch/config.h"

#define QEMU_SYSTEM "qemu-system-x86_64"
#define QEMU_IMG "qemu-img"

/* The -sandbox value. spawn=deny and elevateprivileges=deny are left out
 * because they break -daemonize. Tried by hand with QEMU 7.2 (Debian 12):
 * with spawn=deny QEMU dies of SIGSYS, and with elevateprivileges=deny it
 * exits with status 1 and no message. */
#define QEMU_SANDBOX_OPTS "on,obsolete=deny,resourcecontrol=deny"

struct qemu_spec {
	const char *name;	/* a name that vm_name_valid accepts */
	const char *vmdir;	/* absolute path of the VM directory */
	unsigned memory_mb;
	unsigned cpus;
	unsigned ssh_port;	/* host side of the SSH forward on 127.0.0.1 */
	enum net_mode network;	/* NET_RESTRICTED adds restrict=on */
	int kvm;		/* 1: accel=kvm with -cpu host; 0: TCG with -cpu max */
	int sandbox;		/* 1: add -sandbox QEMU_SANDBOX_OPTS */
};

#define QEMU_ARGV_MAX 64

struct qemu_argv {
	size_t argc;
	char *argv[QEMU_ARGV_MAX + 1];	/* NULL-terminated, each malloc'd */
	int error;			/* first failure while building; 0 when none */
};

/* Copies text into out with every ',' doubled. Returns 0 or -ENAMETOOLONG
 * when the result and its terminating NUL do not fit in len bytes. */
int qemu_escape_commas(const char *text, char *out, size_t len);

/* Builds the command line that starts the VM daemonized, with the files of
 * the VM directory: disk.qcow2, seed.iso, console.log, qmp.sock, qemu.pid.
 * Returns 0, -EINVAL for an invalid name or values, -ENAMETOOLONG when the
 * QMP socket path does not fit in sun_path, or -ENOMEM. On success the caller
 * frees args with qemu_argv_free. */
int qemu_build_argv(const struct qemu_spec *spec, struct qemu_argv *args);

/* Frees the strings of args and empties it; safe to call twice. */
void qemu_argv_free(struct qemu_argv *args);

#endif
