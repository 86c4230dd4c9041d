/* Text shown by the daemon: the `info` file of a catalog entry. */
#ifndef NIDO_FS_TEXT_H
#define NIDO_FS_TEXT_H

#include <stddef.h>

#include "fetch/catalog.h"

/* Remembers why a version's image was refused, for its `info` file. */
void text_note_refusal(const struct cat_version *v, const char *reason);

/* Returns the description of a version (malloc'd) and its length; NULL on ENOMEM. */
char *text_version_info(const struct cat_version *v, size_t *len);

#endif
