/* Invalidation of the kernel's names, attributes and pages for paths whose
 * bytes or meaning changed behind it; see inval.c. */
#ifndef NIDO_FS_INVAL_H
#define NIDO_FS_INVAL_H

#include "fetch/catalog.h"

/* Starts and stops the thread that serves inval_image_changed. */
int inval_start(void);
void inval_stop(void);

/* Invalidates every path of the catalog old, after a reload. */
void inval_catalog(const struct catalog *old);

/* Invalidates the kernel's attributes of vms/<vm>/<file>, a file the daemon
 * has just removed, so that the next stat queries the daemon again. Safe to
 * call from a request handler that holds no daemon lock. */
void inval_vm_file(const char *vm, const char *file);

/* The block cache's change hook: queues the invalidation of the paths of
 * image id and returns at once (it is called with cache locks held). */
void inval_image_changed(const char *id, void *arg);

#endif
