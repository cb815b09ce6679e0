/*
 * audit.h -- security events (failed logins, locks, token-family revocations,
 * failed client authentication), one JSON object per line, to syslog facility
 * authpriv or to a file shared by every process of the host.
 *
 * There is no free-form message: an event is a type from a fixed list, a
 * severity, who (address, client id, username) and extra fields whose names
 * come from a fixed list (audit.c) of things that are never secrets. Every
 * value is cut to AUDIT_VALUE_MAX bytes and JSON-escaped, and a line is at
 * most AUDIT_LINE_MAX bytes, so input cannot forge or break a line.
 */
#ifndef AUDIT_H
#define AUDIT_H

#include <stddef.h>

struct buf;

#define AUDIT_VALUE_MAX	256	/* bytes of one value kept, before escaping */
#define AUDIT_LINE_MAX	4096	/* bytes of one line, newline included */
#define AUDIT_FIELDS_MAX 16	/* extra fields of one event */

/* Event types; the names in the log are these without AUDIT_, in lower case. */
enum audit_type {
	AUDIT_LOGIN_FAILURE,		/* wrong password, unknown user, locked */
	AUDIT_ACCOUNT_LOCKED,		/* too many failures: temporary lock */
	AUDIT_ACCOUNT_UNLOCKED,		/* lock expired or lifted by an admin */
	AUDIT_REFRESH_TOKEN_REUSE,	/* a rotated refresh token came back */
	AUDIT_TOKEN_FAMILY_REVOKED,	/* a refresh token family was revoked */
	AUDIT_CLIENT_AUTH_FAILURE,	/* wrong or unknown client credentials */
	AUDIT_USER_TOKENS_REVOKED,	/* every token of a user made inactive */
	AUDIT_PASSWORD_CHANGED,		/* set by the admin CLI or a rehash policy */
	AUDIT_TOKEN_GUESSING_SUSPECTED,	/* one address: many invalid tokens */
	AUDIT_CREDENTIAL_STUFFING_SUSPECTED, /* one address: many failed logins or client auths */
	AUDIT_LATENCY_ANOMALY,		/* an endpoint's p95 far above its baseline */
	AUDIT_TYPE_COUNT
};
#define AUDIT_TYPES_MAX	16	/* metrics keep room for this many types */

enum audit_severity {
	AUDIT_INFO,
	AUDIT_WARNING,
	AUDIT_CRITICAL
};

/*
 * An extra field. key must be on the allow-list (reason, grant_type, endpoint,
 * family_id, subject, jti, scope, failures, lock_seconds, until, request_id,
 * user_agent, actor, method, key_id, count, window_seconds, p95_ms,
 * baseline_ms); value is any bytes up to a NUL.
 */
struct audit_field {
	const char	*key;
	const char	*value;
};

/*
 * Pass extra fields as AUDIT_FIELDS({"reason", "bad_password"}, {...}), or
 * AUDIT_NOFIELDS: the array and its count without counting by hand.
 */
#define AUDIT_FIELDS(...)						\
	(const struct audit_field[]){ __VA_ARGS__ },			\
	sizeof((const struct audit_field[]){ __VA_ARGS__ }) /		\
	    sizeof(struct audit_field)
#define AUDIT_NOFIELDS	NULL, 0

/*
 * Send events to dest: "syslog" (facility authpriv) or the path of a file,
 * created with mode 0640 and appended to. Replaces any earlier destination.
 * FA_OK, or FA_ERR and *cause (caller frees); the earlier destination stays.
 */
int	audit_open(const char *dest, char **cause);
/*
 * Open the file again by its path (after log rotation moved it). A no-op for
 * syslog. Not async-signal-safe: call it from the main loop, not a handler.
 * FA_OK, or FA_ERR and *cause (caller frees), and the old file stays in use.
 */
int	audit_reopen(char **cause);
/* Stop writing events; later events fail with FA_ERR until audit_open. */
void	audit_close(void);

/*
 * Write one event. remote_addr, client_id and username may be NULL (unknown).
 * FA_OK; FA_ERR if no destination is open, the write failed, or type,
 * severity or a field is invalid: an invalid field is left out (its name
 * counted in "invalid_fields") and the rest of the event is still written.
 */
int	audit_event(enum audit_type, enum audit_severity, const char *remote_addr,
	    const char *client_id, const char *username,
	    const struct audit_field *fields, size_t nfields);

/*
 * Append the event's line (with its newline) to b as audit_event would write
 * it, time taken now; for tests and fuzzing. FA_OK, or FA_ERR as audit_event
 * for invalid input (the line is appended all the same, unless type or
 * severity is out of range).
 */
int	audit_format(struct buf *b, enum audit_type, enum audit_severity,
	    const char *remote_addr, const char *client_id, const char *username,
	    const struct audit_field *fields, size_t nfields);

/*
 * Have fn called with the type and severity of every event audit_event is
 * asked to write (valid type and severity), before it is written: metrics
 * count them. NULL stops it. fn must be thread-safe and must not log events.
 */
void	audit_set_observer(void (*fn)(enum audit_type, enum audit_severity));

/* The log name of a type ("login_failure"), or NULL if out of range. */
const char *audit_type_name(enum audit_type);

#endif
