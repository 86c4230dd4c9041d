/* Logging to stderr or syslog, with levels; see log.h. */
#include "fetch/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *log_ident = "nido";
static int log_to_syslog;
static enum log_level log_max = LOG_LEVEL_INFO;

void log_init(const char *ident, int use_syslog, enum log_level max_level)
{
	log_ident = ident;
	log_to_syslog = use_syslog;
	log_max = max_level;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int log_debug_enabled(void)
{
	return log_max >= LOG_LEVEL_DEBUG;
}

/* The format attribute lets clang's -Wformat-nonliteral accept the vsnprintf below. */
static void log_emit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_emit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info", "debug" };
	char msg[2048];

	if (level > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_to_syslog)
		syslog(prio[level], "%s%s%s", msg, suffix ? ": " : "", suffix ? suffix : "");
	else
		fprintf(stderr, "%s: %s: %s%s%s\n", log_ident, name[level], msg,
			suffix ? ": " : "", suffix ? suffix : "");
}

#define LOG_BODY(level, suffix)                 \
	do {                                    \
		va_list ap;                     \
		va_start(ap, fmt);              \
		log_emit(level, suffix, fmt, ap); \
		va_end(ap);                     \
	} while (0)

void log_error(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_ERROR, NULL); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARN, NULL); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_INFO, NULL); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_DEBUG, NULL); }

void log_warn(const char *fmt, ...)
{
	const char *cause = strerror(errno);

	LOG_BODY(LOG_LEVEL_WARN, cause);
}

static size_t escaped_width(char c)
{
	unsigned char byte = (unsigned char)c;

	return byte >= 0x20 && byte < 0x7f && byte != '\\' ? 1 : 4;
}

const char *log_escape(const char *text, char *buf, size_t len)
{
	static const char cut[] = "...";
	size_t total = 0, used = 0, room;

	if (len < sizeof(cut) + 4)
		return "?";
	for (const char *p = text; *p; p++)
		total += escaped_width(*p);
	/* The whole text when it fits, else what fits before the "...". */
	room = total < len ? len - 1 : len - sizeof(cut);
	for (; *text && used + escaped_width(*text) <= room; text++) {
		if (escaped_width(*text) == 1)
			buf[used++] = *text;
		else
			used += (size_t)snprintf(buf + used, len - used, "\\x%02x", (unsigned char)*text);
	}
	if (*text)
		memcpy(buf + used, cut, sizeof(cut));
	else
		buf[used] = '\0';
	return buf;
}
