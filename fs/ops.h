/* The FUSE operations table of the daemon. */
#ifndef NIDO_FS_OPS_H
#define NIDO_FS_OPS_H

#include <fuse.h>

extern const struct fuse_operations nido_ops;

/* Opens the block cache and starts its threads; called after daemonizing. */
int fs_start_workers(void);

#endif
