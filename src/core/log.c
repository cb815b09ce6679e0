/*
 * log.c -- the operational log. It owns the destination and the level: one
 * process-wide setting, written once at start-up (and on SIGHUP) before the
 * worker threads read it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int		 log_syslog;
static enum log_level	 log_level = LOG_LEVEL_INFO;
static char		 log_ident[32] = "fastauth";

void
log_open(const char *ident, int to_syslog, enum log_level level)
{
	snprintf(log_ident, sizeof log_ident, "%s", ident);
	log_level = level;
	if (to_syslog && !log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!to_syslog && log_syslog)
		closelog();
	log_syslog = to_syslog;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_level_parse(const char *s)
{
	static const char *names[] = { "err", "warn", "info", "debug" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level <= log_level;
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *tag[] = { "error", "warning", "info", "debug" };
	char msg[1024];

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (log_syslog)
		syslog(prio[level], "%s", msg);
	else {
		char ts[32];
		time_t now = time(NULL);
		struct tm tm;

		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
		/* One write per line so lines of several processes don't interleave. */
		dprintf(STDERR_FILENO, "%s %s[%ld]: %s: %s\n", ts, log_ident,
		    (long)getpid(), tag[level], msg);
	}
}

#define LOG_FN(name, level)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vwrite(level, fmt, ap);			\
	va_end(ap);					\
}
LOG_FN(log_err, LOG_LEVEL_ERR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
