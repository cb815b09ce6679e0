/*
 * log.h -- operational log (stderr or syslog daemon facility). Never pass a
 * secret, a token or a password to these functions.
 */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Choose the destination: to_syslog 0 = stderr, 1 = syslog(LOG_DAEMON) as ident. */
void	log_open(const char *ident, int to_syslog, enum log_level level);
void	log_set_level(enum log_level);
/* Parse "err|warn|info|debug"; -1 if unknown. */
int	log_level_parse(const char *);
int	log_enabled(enum log_level);
void	log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
