/* Cached verdicts about this host that are slow to reach and stay true until
 * the kernel or the QEMU binary changes, such as whether KVM guests run. Each
 * verdict is a small file under <home>:
 *   nido-verdict 1
 *   key <kernel release> <QEMU path> <device>:<inode>:<size>:<mtime>
 *   verdict good | bad
 *   reason <one line; empty when good>
 * A new kernel or an upgraded QEMU changes the key, which makes the verdict
 * stale, so the caller probes again. */
#ifndef NIDO_VERDICT_H
#define NIDO_VERDICT_H

#include <stddef.h>

/* Writes the key for the running kernel and the QEMU binary at qemu_path.
 * Returns 0 or -errno when the binary cannot be examined. */
int verdict_key(const char *qemu_path, char *key, size_t len);

/* Loads the verdict at path. Returns 1 for good, 0 for bad (the reason goes
 * to reason), -ENOENT when the file is missing, malformed or has another
 * key, or another -errno. */
int verdict_load(const char *path, const char *key, char *reason, size_t len);

/* Writes a verdict atomically. */
int verdict_save(const char *path, const char *key, int good, const char *reason);

#endif
