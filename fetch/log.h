/* Logging shared by every part: stderr in the foreground, syslog in the background.
 * Messages are lower case and start with their subject ("ubuntu:24.04: block 12: ..."). */
#ifndef NIDO_LOG_H
#define NIDO_LOG_H

#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Selects the destination and the most verbose level printed; call once at start. */
void log_init(const char *ident, int use_syslog, enum log_level max_level);
int log_debug_enabled(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)"; log_warnx prints the message alone. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies text into buf for a message, with every byte outside printable
 * ASCII, and the backslash, written as \xNN, so that a name taken from a
 * catalog or a command line cannot start a new log line or send terminal
 * escapes. Text that does not fit is cut and ends in "...". Returns buf, or
 * "?" when len is below 8. */
const char *log_escape(const char *text, char *buf, size_t len);

#endif
