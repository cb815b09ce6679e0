/*
 * audit.c -- the security event log: formats an event as one bounded JSON
 * line and writes it to syslog (authpriv) or to an append-only file.
 *
 * It owns the destination (audit_dest: syslog, a file descriptor and its path,
 * or nothing), guarded by audit_lock; formatting happens outside the lock.
 *
 * Files: every process of the host may append to the same file, so a line is
 * written with one write(2) on an O_APPEND descriptor, which Linux performs as
 * one append under the inode lock: lines of several processes never
 * interleave. A line is bounded (AUDIT_LINE_MAX) for the same reason and so
 * that syslog daemons do not cut it.
 *
 * Syslog: openlog() is process-wide and log.c owns it (facility daemon for the
 * operational log), so we never call it: each message names LOG_AUTHPRIV in
 * its priority instead, which overrides the default facility for that message
 * only. The ident is whatever log.c opened ("fastauth"), or the program name;
 * the line carries the pid itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "core/json.h"
#include "core/xmalloc.h"

/* Room kept at the end of a line for ,"invalid_fields":NN,"truncated":true}\n */
#define AUDIT_TAIL	64

enum audit_kind { AUDIT_NONE, AUDIT_SYSLOG, AUDIT_FILE };

static pthread_mutex_t	audit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t	audit_once = PTHREAD_ONCE_INIT;
static struct {
	enum audit_kind	 kind;
	int		 fd;		/* AUDIT_FILE: O_APPEND descriptor */
	char		*path;		/* AUDIT_FILE: for audit_reopen */
} audit_dest = { AUDIT_NONE, -1, NULL };	/* guarded by audit_lock */

static const char *audit_type_names[AUDIT_TYPE_COUNT] = {
	[AUDIT_LOGIN_FAILURE] =		"login_failure",
	[AUDIT_ACCOUNT_LOCKED] =	"account_locked",
	[AUDIT_ACCOUNT_UNLOCKED] =	"account_unlocked",
	[AUDIT_REFRESH_TOKEN_REUSE] =	"refresh_token_reuse",
	[AUDIT_TOKEN_FAMILY_REVOKED] =	"token_family_revoked",
	[AUDIT_CLIENT_AUTH_FAILURE] =	"client_auth_failure",
	[AUDIT_USER_TOKENS_REVOKED] =	"user_tokens_revoked",
	[AUDIT_PASSWORD_CHANGED] =	"password_changed",
	[AUDIT_TOKEN_GUESSING_SUSPECTED] = "token_guessing_suspected",
	[AUDIT_CREDENTIAL_STUFFING_SUSPECTED] = "credential_stuffing_suspected",
	[AUDIT_LATENCY_ANOMALY] =	"latency_anomaly",
};

_Static_assert(AUDIT_TYPE_COUNT <= AUDIT_TYPES_MAX, "too many event types");

/* Told of every event (metrics); set once at start, read per event. */
static void (*_Atomic audit_observer)(enum audit_type, enum audit_severity);

static const char *audit_severity_names[] = { "info", "warning", "critical" };
static const int audit_severity_prio[] = { LOG_INFO, LOG_WARNING, LOG_CRIT };

/*
 * Extra field names. Each one names something that is never a secret: adding
 * "password", "secret", "token" or "code" here is the mistake this list exists
 * to prevent (a family_id or jti is an identifier, not the token).
 */
static const char *audit_keys[] = {
	"reason", "grant_type", "endpoint", "family_id", "subject", "jti",
	"scope", "failures", "lock_seconds", "until", "request_id",
	"user_agent", "actor", "method", "key_id", "count", "window_seconds",
	"p95_ms", "baseline_ms",
};

/*
 * A fork while another thread writes would leave the child's lock held for
 * good; holding it across fork() keeps it consistent in both processes.
 */
static void
audit_atfork_prepare(void)
{
	pthread_mutex_lock(&audit_lock);
}

static void
audit_atfork_release(void)
{
	pthread_mutex_unlock(&audit_lock);
}

static void
audit_init(void)
{
	pthread_atfork(audit_atfork_prepare, audit_atfork_release,
	    audit_atfork_release);
}

void
audit_set_observer(void (*fn)(enum audit_type, enum audit_severity))
{
	atomic_store(&audit_observer, fn);
}

const char *
audit_type_name(enum audit_type type)
{
	if ((unsigned)type >= AUDIT_TYPE_COUNT)
		return NULL;
	return audit_type_names[type];
}

static int
audit_key_allowed(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof audit_keys / sizeof audit_keys[0]; i++)
		if (strcmp(key, audit_keys[i]) == 0)
			return 1;
	return 0;
}

/*
 * The longest prefix of s (n bytes) that does not end inside a UTF-8
 * sequence, so that a cut never turns a character into U+FFFD.
 */
static size_t
audit_utf8_cut(const char *s, size_t n)
{
	size_t	cut = n, back;
	unsigned char c;

	for (back = 0; back < 4 && cut > 0; back++) {
		c = (unsigned char)s[cut - 1];
		if (c < 0x80)
			return cut;
		if (c >= 0xc0) {
			/* s[cut-1] leads a sequence of want bytes, back of them present */
			size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

			return want == back + 1 ? n : cut - 1;
		}
		cut--;
	}
	return n;	/* not UTF-8 here: json_quote replaces it anyway */
}

/* Set frag to ,"key":"value" with the first n bytes of value. */
static void
audit_frag(struct buf *frag, const char *key, const char *value, size_t n)
{
	buf_reset(frag);
	buf_putc(frag, ',');
	json_quote(frag, key, strlen(key));
	buf_putc(frag, ':');
	json_quote(frag, value, n);
}

/*
 * Append ,"key":"value" to b, the value cut to AUDIT_VALUE_MAX bytes and then
 * to what fits in room bytes of b (escaped). 1 if cut or left out (no room
 * even for an empty value), else 0.
 */
static int
audit_put(struct buf *b, const char *key, const char *value, size_t room)
{
	struct buf	frag = BUF_INIT;
	size_t		n, lo, hi, mid;
	int		cut = 0;

	n = strnlen(value, AUDIT_VALUE_MAX + 1);
	if (n > AUDIT_VALUE_MAX) {
		n = audit_utf8_cut(value, AUDIT_VALUE_MAX);
		cut = 1;
	}
	audit_frag(&frag, key, value, n);
	if (frag.len > room) {
		/* Escaping may grow a byte sixfold: find the longest prefix that fits. */
		cut = 1;
		lo = 0;
		hi = n;
		while (lo < hi) {
			mid = (lo + hi + 1) / 2;
			audit_frag(&frag, key, value, audit_utf8_cut(value, mid));
			if (frag.len <= room)
				lo = mid;
			else
				hi = mid - 1;
		}
		audit_frag(&frag, key, value, audit_utf8_cut(value, lo));
	}
	if (frag.len <= room)
		buf_append(b, frag.data, frag.len);
	buf_free(&frag);
	return cut;
}

int
audit_format(struct buf *b, enum audit_type type, enum audit_severity sev,
    const char *remote_addr, const char *client_id, const char *username,
    const struct audit_field *fields, size_t nfields)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 when[40];
	const char	*who[3][2] = {
		{ "remote_addr", remote_addr },
		{ "client_id", client_id },
		{ "username", username },
	};
	size_t		 start = b->len, i, j, room, invalid = 0;
	int		 truncated = 0, dup;

	if ((unsigned)type >= AUDIT_TYPE_COUNT ||
	    (unsigned)sev > AUDIT_CRITICAL)
		return FA_ERR;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		when[0] = '\0';
	/* RFC 3339, UTC, milliseconds: what SIEMs parse without a format hint. */
	buf_printf(b, "{\"time\":\"%s.%03ldZ\",\"type\":\"%s\",\"severity\":\"%s\","
	    "\"pid\":%ld", when, ts.tv_nsec / 1000000, audit_type_names[type],
	    audit_severity_names[sev], (long)getpid());

	/* The line so far is short and fixed; the rest shares what is left. */
	if (fields == NULL) {
		invalid = nfields;
		nfields = 0;
	}
	for (i = 0; i < 3 || i - 3 < nfields; i++) {
		const char *key, *value;

		if (i < 3) {
			key = who[i][0];
			value = who[i][1];
		} else {
			if (i - 3 >= AUDIT_FIELDS_MAX) {
				invalid += nfields - (i - 3);
				break;
			}
			key = fields[i - 3].key;
			value = fields[i - 3].value;
			dup = 0;
			for (j = 3; j < i && key != NULL; j++)
				if (fields[j - 3].key != NULL &&
				    strcmp(fields[j - 3].key, key) == 0)
					dup = 1;
			/* A repeated name would make the object ambiguous. */
			if (key == NULL || !audit_key_allowed(key) || dup) {
				invalid++;
				continue;
			}
		}
		if (value == NULL)
			continue;
		room = AUDIT_LINE_MAX - AUDIT_TAIL - (b->len - start);
		truncated |= audit_put(b, key, value, room);
	}
	if (invalid)
		buf_printf(b, ",\"invalid_fields\":%zu", invalid);
	if (truncated)
		buf_puts(b, ",\"truncated\":true");
	buf_puts(b, "}\n");
	return invalid ? FA_ERR : FA_OK;
}

/* write(2) all of it; a short write (disk full) is retried for the rest. */
static int
audit_write(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return FA_ERR;
		}
		p += w;
		n -= (size_t)w;
	}
	return FA_OK;
}

int
audit_event(enum audit_type type, enum audit_severity sev,
    const char *remote_addr, const char *client_id, const char *username,
    const struct audit_field *fields, size_t nfields)
{
	struct buf	line = BUF_INIT;
	int		rc, wrc = FA_ERR, saved;
	void		(*observe)(enum audit_type, enum audit_severity);

	if ((unsigned)type >= AUDIT_TYPE_COUNT || (unsigned)sev > AUDIT_CRITICAL)
		return FA_ERR;
	if ((observe = atomic_load(&audit_observer)) != NULL)
		observe(type, sev);
	rc = audit_format(&line, type, sev, remote_addr, client_id, username,
	    fields, nfields);
	pthread_mutex_lock(&audit_lock);
	switch (audit_dest.kind) {
	case AUDIT_SYSLOG:
		/* The newline is ours, not syslog's: leave it out. */
		line.data[line.len - 1] = '\0';
		syslog(LOG_AUTHPRIV | audit_severity_prio[sev], "%s", line.data);
		wrc = FA_OK;
		break;
	case AUDIT_FILE:
		wrc = audit_write(audit_dest.fd, line.data, line.len);
		break;
	case AUDIT_NONE:
		errno = EBADF;
		break;
	}
	saved = errno;
	pthread_mutex_unlock(&audit_lock);
	buf_free(&line);
	errno = saved;
	return wrc != FA_OK ? wrc : rc;
}

/* Open path for appending events. The descriptor, or -1 and *cause. */
static int
audit_open_file(const char *path, char **cause)
{
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0 && cause != NULL)
		*cause = xasprintf("audit log %s: %s", path, strerror(errno));
	return fd;
}

int
audit_open(const char *dest, char **cause)
{
	enum audit_kind	 kind;
	char		*path = NULL;
	int		 fd = -1, oldfd;

	pthread_once(&audit_once, audit_init);
	if (dest == NULL || *dest == '\0') {
		if (cause != NULL)
			*cause = xstrdup("audit log: no destination");
		return FA_ERR;
	}
	if (strcmp(dest, "syslog") == 0)
		kind = AUDIT_SYSLOG;
	else {
		kind = AUDIT_FILE;
		if ((fd = audit_open_file(dest, cause)) < 0)
			return FA_ERR;
		path = xstrdup(dest);
	}
	pthread_mutex_lock(&audit_lock);
	oldfd = audit_dest.fd;
	free(audit_dest.path);
	audit_dest.kind = kind;
	audit_dest.fd = fd;
	audit_dest.path = path;
	pthread_mutex_unlock(&audit_lock);
	if (oldfd >= 0)
		close(oldfd);
	return FA_OK;
}

int
audit_reopen(char **cause)
{
	char	*path = NULL;
	int	 fd = -1, oldfd = -1, rc = FA_ERR;

	pthread_mutex_lock(&audit_lock);
	if (audit_dest.kind == AUDIT_FILE)
		path = xstrdup(audit_dest.path);
	pthread_mutex_unlock(&audit_lock);
	if (path == NULL)
		return FA_OK;
	/* Opened outside the lock: a slow file system must not stall writers. */
	if ((fd = audit_open_file(path, cause)) < 0)
		goto out;
	pthread_mutex_lock(&audit_lock);
	/* audit_open or audit_close may have run meanwhile: keep theirs. */
	if (audit_dest.kind == AUDIT_FILE && strcmp(audit_dest.path, path) == 0) {
		oldfd = audit_dest.fd;
		audit_dest.fd = fd;
		fd = -1;
	}
	pthread_mutex_unlock(&audit_lock);
	rc = FA_OK;
out:
	if (fd >= 0)
		close(fd);
	if (oldfd >= 0)
		close(oldfd);
	free(path);
	return rc;
}

void
audit_close(void)
{
	int oldfd;

	pthread_mutex_lock(&audit_lock);
	oldfd = audit_dest.fd;
	free(audit_dest.path);
	audit_dest.kind = AUDIT_NONE;
	audit_dest.fd = -1;
	audit_dest.path = NULL;
	pthread_mutex_unlock(&audit_lock);
	if (oldfd >= 0)
		close(oldfd);
}
