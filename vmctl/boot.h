/* Starting the QEMU of a prepared VM directory (overlay and seed in place),
 * shared by vm_create and vm_start. */
#ifndef NIDO_BOOT_H
#define NIDO_BOOT_H

#include <stddef.h>

#include "fetch/config.h"

/* How long QEMU may take to daemonize. It opens the backing image, which can
 * sit in the FUSE mount and need a fetch over HTTP first. */
#define BOOT_DAEMONIZE_TIMEOUT_MS 120000

/* Starts the VM name in vmdir. Chooses the accelerator and, under the ports
 * lock, the SSH port (the recorded cfg->ssh_port when it is still free);
 * saves the config with that port and the `ssh` login command using
 * private_key; rotates console.log to console.log.1; runs QEMU with
 * -daemonize, trying the next port when another program took the chosen
 * one meanwhile; and records the state. Call with the VM directory locked
 * and no QEMU of this VM running. Returns 0, or -errno with the cause in err
 * (also recorded as state "failed"). */
int boot_vm(const char *home, const char *name, const char *vmdir, struct nido_config *cfg,
	    const char *private_key, char *err, size_t errlen);

/* Writes the login command for the VM into buf: ssh -i KEY -p PORT
 * -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null USER@127.0.0.1
 * KEY is quoted for the shell when it contains anything but letters, digits
 * and "/._-+@%:,=". */
int boot_ssh_command(const char *private_key, unsigned port, const char *user,
		     char *buf, size_t len);

#endif
