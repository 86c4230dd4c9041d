/* Text shown by the daemon: the `info` file of a catalog entry. */
#ifndef NIDO_FS_TEXT_H
#define NIDO_FS_TEXT_H

#include <stddef.h>

#include "fetch/catalog.h"

/* Returns the description of a version (malloc'd) and its length; NULL on ENOMEM. */
char *text_version_info(const struct cat_version *v, size_t *len);

#endif
