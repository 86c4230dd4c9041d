/* File helpers shared by every part: the state directory, atomic writes, bounded reads. */
#ifndef NIDO_FILES_H
#define NIDO_FILES_H

#include <stddef.h>
#include <sys/types.h>

/* Returns the state directory: $NIDO_HOME, else $HOME/.nido (static storage). */
const char *nido_home(void);

/* Joins a and b with one '/' into buf; -ENAMETOOLONG if it does not fit. */
int path_join(char *buf, size_t len, const char *a, const char *b);

/* Creates dir and its parents with `mode`; an existing directory is fine. */
int mkdir_p(const char *dir, mode_t mode);

/* Writes data to a temporary file beside path, syncs it and renames it over path. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Reads a whole file of at most max bytes into a malloc'd, NUL-terminated buffer.
 * -EFBIG when the file is larger. */
int read_file(const char *path, size_t max, char **out, size_t *outlen);

/* Removes a directory tree without following symbolic links. */
int remove_tree(const char *path);

#endif
