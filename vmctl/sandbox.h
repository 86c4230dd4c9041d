/* Whether this QEMU's seccomp sandbox (-sandbox QEMU_SANDBOX_OPTS) works
 * together with -daemonize. A QEMU built without seccomp rejects -sandbox,
 * so a daemonized QEMU with no machine is started once per kernel and QEMU
 * binary to find out; the verdict is cached in <home>/sandbox-verdict. */
#ifndef NIDO_SANDBOX_H
#define NIDO_SANDBOX_H

/* Returns 1 when VMs can run with -sandbox, else 0. Never fails: when the
 * check cannot run, it logs why and returns 0, so the VM starts without the
 * sandbox rather than not at all. */
int sandbox_usable(const char *home);

#endif
