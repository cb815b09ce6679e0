/*
 * test_audit.c -- Check suite for audit.c: every line written is one valid
 * JSON object (parsed back with jansson) with the time, type, severity and
 * identity fields; hostile values cannot break or forge a line; field names
 * off the allow-list are refused; values and lines are bounded; threads and
 * processes writing at once produce only whole lines; audit_reopen follows
 * log rotation; random hostile input always gives one valid, bounded line.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "core/audit.h"
#include "core/buf.h"
#include "core/fastauth.h"

static char	dir[64];
static char	path[128];

static void
setup(void)
{
	char *cause = NULL;

	umask(022);
	snprintf(dir, sizeof dir, "/tmp/test_audit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/audit.log", dir);
	ck_assert_msg(audit_open(path, &cause) == FA_OK, "%s", cause);
}

static void
teardown(void)
{
	char cmd[160];

	audit_close();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The file's lines, each parsed; *n set. Fails the test on a bad line. */
static json_t **
read_lines(const char *file, size_t *n)
{
	FILE		*f = fopen(file, "r");
	json_t		**v = NULL;
	char		*line = NULL;
	size_t		 cap = 0, count = 0;
	ssize_t		 len;
	json_error_t	 err;

	ck_assert_ptr_nonnull(f);
	while ((len = getline(&line, &cap, f)) > 0) {
		ck_assert_msg(line[len - 1] == '\n', "unterminated line [%s]", line);
		ck_assert_int_le(len, AUDIT_LINE_MAX);
		v = realloc(v, (count + 1) * sizeof *v);
		ck_assert_ptr_nonnull(v);
		v[count] = json_loadb(line, (size_t)len - 1, 0, &err);
		ck_assert_msg(v[count] != NULL, "not JSON (%s): [%s]", err.text, line);
		ck_assert(json_is_object(v[count]));
		count++;
	}
	free(line);
	fclose(f);
	*n = count;
	return v;
}

static void
free_lines(json_t **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

START_TEST(test_basic)
{
	json_t		**v;
	size_t		 n;
	struct stat	 sb;
	struct tm	 tm;
	const char	*t, *rest;
	time_t		 when;

	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING,
	    "192.0.2.7", "webapp", "alice",
	    AUDIT_FIELDS({ "reason", "bad_password" }, { "failures", "3" })), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_TOKEN_FAMILY_REVOKED, AUDIT_CRITICAL,
	    "2001:db8::1", "mobile", NULL, AUDIT_NOFIELDS), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_ACCOUNT_UNLOCKED, AUDIT_INFO,
	    NULL, NULL, "bob", AUDIT_FIELDS({ "actor", "fastauthctl" })), FA_OK);

	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 3);

	ck_assert_str_eq(str(v[0], "type"), "login_failure");
	ck_assert_str_eq(str(v[0], "severity"), "warning");
	ck_assert_str_eq(str(v[0], "remote_addr"), "192.0.2.7");
	ck_assert_str_eq(str(v[0], "client_id"), "webapp");
	ck_assert_str_eq(str(v[0], "username"), "alice");
	ck_assert_str_eq(str(v[0], "reason"), "bad_password");
	ck_assert_str_eq(str(v[0], "failures"), "3");
	ck_assert_int_eq(json_integer_value(json_object_get(v[0], "pid")), getpid());
	ck_assert_ptr_null(json_object_get(v[0], "truncated"));
	ck_assert_ptr_null(json_object_get(v[0], "invalid_fields"));
	ck_assert_uint_eq(json_object_size(v[0]), 9);

	/* RFC 3339 UTC with milliseconds, and now. */
	t = str(v[0], "time");
	ck_assert_uint_eq(strlen(t), 24);
	memset(&tm, 0, sizeof tm);
	rest = strptime(t, "%Y-%m-%dT%H:%M:%S", &tm);
	ck_assert_ptr_nonnull(rest);
	ck_assert(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' &&
	    rest[2] >= '0' && rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' &&
	    rest[4] == 'Z' && rest[5] == '\0');
	when = timegm(&tm);
	ck_assert_int_le(labs((long)(when - time(NULL))), 5);

	/* Unknown parties are left out, not written as "" or null. */
	ck_assert_str_eq(str(v[1], "type"), "token_family_revoked");
	ck_assert_str_eq(str(v[1], "severity"), "critical");
	ck_assert_ptr_null(json_object_get(v[1], "username"));
	ck_assert_str_eq(str(v[2], "severity"), "info");
	ck_assert_ptr_null(json_object_get(v[2], "remote_addr"));
	ck_assert_ptr_null(json_object_get(v[2], "client_id"));
	ck_assert_str_eq(str(v[2], "username"), "bob");
	free_lines(v, n);

	ck_assert_str_eq(audit_type_name(AUDIT_REFRESH_TOKEN_REUSE),
	    "refresh_token_reuse");
	ck_assert_str_eq(audit_type_name(AUDIT_CLIENT_AUTH_FAILURE),
	    "client_auth_failure");
	ck_assert_str_eq(audit_type_name(AUDIT_ACCOUNT_LOCKED), "account_locked");
	ck_assert_ptr_null(audit_type_name(AUDIT_TYPE_COUNT));
}
END_TEST

START_TEST(test_injection)
{
	static const char *evil[] = {
		"alice\",\"type\":\"account_unlocked",
		"alice\"}\n{\"type\":\"account_unlocked\",\"severity\":\"info\"}",
		"bob\r\nFeb  1 00:00:00 host fastauth: forged",
		"tab\there\\back\\slash\x01\x1f\x7f",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xe2\x80\xa8 line sep",
		"</script><script>alert(1)</script>",
	};
	json_t	**v;
	size_t	 n, i;

	for (i = 0; i < sizeof evil / sizeof evil[0]; i++)
		ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING,
		    evil[i], evil[i], evil[i],
		    AUDIT_FIELDS({ "reason", evil[i] })), FA_OK);
	/* Invalid UTF-8 becomes U+FFFD rather than invalid JSON. */
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "x\xff\xc3(y\xed\xa0\x80z", AUDIT_NOFIELDS), FA_OK);

	v = read_lines(path, &n);
	ck_assert_uint_eq(n, sizeof evil / sizeof evil[0] + 1);
	for (i = 0; i < n - 1; i++) {
		ck_assert_str_eq(str(v[i], "type"), "login_failure");
		ck_assert_str_eq(str(v[i], "severity"), "warning");
		ck_assert_str_eq(str(v[i], "username"), evil[i]);
		ck_assert_str_eq(str(v[i], "client_id"), evil[i]);
		ck_assert_str_eq(str(v[i], "remote_addr"), evil[i]);
		ck_assert_str_eq(str(v[i], "reason"), evil[i]);
	}
	ck_assert_str_eq(str(v[n - 1], "username"),
	    "x\xef\xbf\xbd\xef\xbf\xbd(y\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
	free_lines(v, n);
}
END_TEST

START_TEST(test_fields)
{
	struct audit_field	many[AUDIT_FIELDS_MAX + 3];
	json_t			**v;
	char			*dump;
	size_t			 n, i;

	/* Names that would carry a secret are not on the list. */
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, "a", "c",
	    "u", AUDIT_FIELDS({ "reason", "bad_password" },
	    { "password", "hunter2" }, { "secret", "s3cr3t" },
	    { "refresh_token", "rt-value" }, { "message", "free text" },
	    { "username", "mallory" }, { "type", "account_unlocked" },
	    { "Reason", "case" }, { "", "empty" }, { NULL, "null key" },
	    { "reason", "duplicate" }, { "scope", NULL })), FA_ERR);
	ck_assert_int_eq(audit_event(AUDIT_CLIENT_AUTH_FAILURE, AUDIT_WARNING,
	    "a", "c", NULL, NULL, 2), FA_ERR);

	for (i = 0; i < sizeof many / sizeof many[0]; i++) {
		many[i].key = i == 0 ? "reason" : i == 1 ? "grant_type" : "count";
		many[i].value = "v";
	}
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_INFO, NULL, NULL,
	    NULL, many, sizeof many / sizeof many[0]), FA_ERR);

	/* Every allowed name goes through. */
	ck_assert_int_eq(audit_event(AUDIT_REFRESH_TOKEN_REUSE, AUDIT_CRITICAL,
	    "a", "c", "u", AUDIT_FIELDS({ "reason", "1" }, { "grant_type", "2" },
	    { "endpoint", "3" }, { "family_id", "4" }, { "subject", "5" },
	    { "jti", "6" }, { "scope", "7" }, { "failures", "8" },
	    { "lock_seconds", "9" }, { "until", "10" }, { "request_id", "11" },
	    { "user_agent", "12" }, { "actor", "13" }, { "method", "14" },
	    { "key_id", "15" }, { "count", "16" })), FA_OK);

	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(str(v[0], "reason"), "bad_password");
	ck_assert_str_eq(str(v[0], "username"), "u");
	ck_assert_str_eq(str(v[0], "type"), "login_failure");
	ck_assert_ptr_null(json_object_get(v[0], "password"));
	ck_assert_ptr_null(json_object_get(v[0], "secret"));
	ck_assert_ptr_null(json_object_get(v[0], "refresh_token"));
	ck_assert_ptr_null(json_object_get(v[0], "message"));
	ck_assert_ptr_null(json_object_get(v[0], "scope"));	/* NULL value */
	ck_assert_int_eq(json_integer_value(json_object_get(v[0],
	    "invalid_fields")), 10);
	dump = json_dumps(v[0], 0);
	ck_assert_ptr_null(strstr(dump, "hunter2"));
	free(dump);
	ck_assert_int_eq(json_integer_value(json_object_get(v[1],
	    "invalid_fields")), 2);
	/* AUDIT_FIELDS_MAX fields at most; the same name twice is refused. */
	ck_assert_int_eq(json_integer_value(json_object_get(v[2],
	    "invalid_fields")), (AUDIT_FIELDS_MAX - 3) + 3);
	ck_assert_str_eq(str(v[2], "count"), "v");
	ck_assert_uint_eq(json_object_size(v[3]), 7 + 16);
	ck_assert_ptr_null(json_object_get(v[3], "invalid_fields"));
	free_lines(v, n);
}
END_TEST

START_TEST(test_bad_enums)
{
	struct buf	b = BUF_INIT;
	struct stat	sb;

	ck_assert_int_eq(audit_event(AUDIT_TYPE_COUNT, AUDIT_INFO, NULL, NULL,
	    NULL, AUDIT_NOFIELDS), FA_ERR);
	ck_assert_int_eq(audit_event((enum audit_type)-1, AUDIT_INFO, NULL, NULL,
	    NULL, AUDIT_NOFIELDS), FA_ERR);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, (enum audit_severity)3,
	    NULL, NULL, NULL, AUDIT_NOFIELDS), FA_ERR);
	ck_assert_int_eq(audit_format(&b, AUDIT_TYPE_COUNT, AUDIT_INFO, NULL, NULL,
	    NULL, AUDIT_NOFIELDS), FA_ERR);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);	/* nothing written */
	buf_free(&b);
}
END_TEST

START_TEST(test_truncate)
{
	char	*big = malloc(10001), *eacute = malloc(2001), *euro = malloc(3001);
	json_t	**v;
	size_t	 n, i;

	memset(big, 'a', 10000);
	big[10000] = '\0';
	for (i = 0; i < 1000; i++)
		memcpy(eacute + 2 * i, "\xc3\xa9", 2);
	eacute[2000] = '\0';
	for (i = 0; i < 1000; i++)
		memcpy(euro + 3 * i, "\xe2\x82\xac", 3);
	euro[3000] = '\0';

	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, "a",
	    "c", big, AUDIT_NOFIELDS), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, "a",
	    "c", eacute, AUDIT_FIELDS({ "user_agent", euro })), FA_OK);
	/* Exactly the bound is not a truncation. */
	big[AUDIT_VALUE_MAX] = '\0';
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, "a",
	    "c", big, AUDIT_NOFIELDS), FA_OK);

	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(strlen(str(v[0], "username")), AUDIT_VALUE_MAX);
	ck_assert(json_is_true(json_object_get(v[0], "truncated")));
	/* Cut on a character boundary: 128 x 2 bytes, 85 x 3 bytes. */
	ck_assert_uint_eq(strlen(str(v[1], "username")), 256);
	ck_assert_int_eq(strncmp(str(v[1], "username"), eacute, 256), 0);
	ck_assert_uint_eq(strlen(str(v[1], "user_agent")), 255);
	ck_assert_int_eq(strncmp(str(v[1], "user_agent"), euro, 255), 0);
	ck_assert(json_is_true(json_object_get(v[1], "truncated")));
	ck_assert_uint_eq(strlen(str(v[2], "username")), AUDIT_VALUE_MAX);
	ck_assert_ptr_null(json_object_get(v[2], "truncated"));
	free_lines(v, n);
	free(big);
	free(eacute);
	free(euro);
}
END_TEST

START_TEST(test_line_bound)
{
	static const char *keys[AUDIT_FIELDS_MAX] = { "reason", "grant_type",
	    "endpoint", "family_id", "subject", "jti", "scope", "failures",
	    "lock_seconds", "until", "request_id", "user_agent", "actor",
	    "method", "key_id", "count" };
	struct audit_field	 f[AUDIT_FIELDS_MAX];
	struct buf		 b = BUF_INIT;
	char			 ctl[AUDIT_VALUE_MAX + 1], quote[AUDIT_VALUE_MAX + 1];
	json_t			*o, **v;
	json_error_t		 err;
	size_t			 i, n;

	/* Control bytes escape to six characters each: the worst case. */
	memset(ctl, 1, AUDIT_VALUE_MAX);
	ctl[AUDIT_VALUE_MAX] = '\0';
	memset(quote, '"', AUDIT_VALUE_MAX);
	quote[AUDIT_VALUE_MAX] = '\0';
	for (i = 0; i < AUDIT_FIELDS_MAX; i++) {
		f[i].key = keys[i];
		f[i].value = i % 2 ? ctl : quote;
	}
	ck_assert_int_eq(audit_format(&b, AUDIT_LOGIN_FAILURE, AUDIT_WARNING, ctl,
	    quote, ctl, f, AUDIT_FIELDS_MAX), FA_OK);
	ck_assert_uint_le(b.len, AUDIT_LINE_MAX);
	ck_assert_uint_ge(b.len, AUDIT_LINE_MAX - 200);	/* filled, not emptied */
	ck_assert_int_eq(b.data[b.len - 1], '\n');
	ck_assert_ptr_eq(memchr(b.data, '\n', b.len), b.data + b.len - 1);
	o = json_loadb(b.data, b.len - 1, 0, &err);
	ck_assert_msg(o != NULL, "%s", err.text);
	ck_assert(json_is_true(json_object_get(o, "truncated")));
	/* Who comes first and survives whole. */
	ck_assert_str_eq(str(o, "remote_addr"), ctl);
	ck_assert_str_eq(str(o, "client_id"), quote);
	ck_assert_str_eq(str(o, "username"), ctl);
	json_decref(o);
	buf_free(&b);

	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, ctl,
	    quote, ctl, f, AUDIT_FIELDS_MAX), FA_OK);
	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 1);
	free_lines(v, n);
}
END_TEST

START_TEST(test_not_open)
{
	char *cause = NULL;

	audit_close();
	errno = 0;
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "u", AUDIT_NOFIELDS), FA_ERR);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(audit_reopen(&cause), FA_OK);	/* nothing to reopen */

	ck_assert_int_eq(audit_open("", &cause), FA_ERR);
	ck_assert_ptr_nonnull(cause);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(audit_open(NULL, &cause), FA_ERR);
	free(cause);
	cause = NULL;

	/* A failed open keeps the earlier destination. */
	ck_assert_int_eq(audit_open(path, &cause), FA_OK);
	ck_assert_int_eq(audit_open("/nonexistent/dir/audit.log", &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "No such file"));
	free(cause);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "u", AUDIT_NOFIELDS), FA_OK);

	/* syslog (authpriv): nothing to read back here, but it must not fail. */
	ck_assert_int_eq(audit_open("syslog", &cause), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_ACCOUNT_LOCKED, AUDIT_WARNING,
	    "192.0.2.1", NULL, "u", AUDIT_FIELDS({ "lock_seconds", "300" })), FA_OK);
	ck_assert_int_eq(audit_reopen(&cause), FA_OK);
	ck_assert_int_eq(audit_open(path, &cause), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "u2", AUDIT_NOFIELDS), FA_OK);
	{
		json_t **v;
		size_t n;

		v = read_lines(path, &n);
		ck_assert_uint_eq(n, 2);
		ck_assert_str_eq(str(v[1], "username"), "u2");
		free_lines(v, n);
	}
}
END_TEST

#define CONC_THREADS	4
#define CONC_PROCS	3
#define CONC_EVENTS	300

static void *
conc_thread(void *arg)
{
	char	 user[1200];
	long	 id = (long)(intptr_t)arg, i;

	/* Long lines (escaped quotes) make interleaving likely if it can happen. */
	memset(user, '"', sizeof user - 1);
	user[sizeof user - 1] = '\0';
	for (i = 0; i < CONC_EVENTS; i++) {
		char seq[32];

		snprintf(seq, sizeof seq, "%ld-%ld", id, i);
		if (audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, "198.51.100.9",
		    "client", user, AUDIT_FIELDS({ "request_id", seq },
		    { "user_agent", user }, { "scope", user })) != FA_OK)
			return (void *)1;
	}
	return NULL;
}

/* CONC_THREADS threads of CONC_EVENTS events each; 0 if all went well. */
static int
conc_run(long base)
{
	pthread_t	t[CONC_THREADS];
	void		*ret;
	int		 i, bad = 0;

	for (i = 0; i < CONC_THREADS; i++)
		if (pthread_create(&t[i], NULL, conc_thread,
		    (void *)(intptr_t)(base + i)) != 0)
			return 1;
	for (i = 0; i < CONC_THREADS; i++) {
		pthread_join(t[i], &ret);
		bad |= ret != NULL;
	}
	return bad;
}

START_TEST(test_concurrent)
{
	pid_t	 pid[CONC_PROCS];
	json_t	**v;
	size_t	 n, i;
	int	 p, status;
	char	 seen[(CONC_PROCS + 1) * CONC_THREADS][CONC_EVENTS];
	long	 a, b;

	memset(seen, 0, sizeof seen);
	for (p = 0; p < CONC_PROCS; p++) {
		pid[p] = fork();
		ck_assert_int_ge(pid[p], 0);
		if (pid[p] == 0) {
			/*
			 * The first children share the parent's open file; the
			 * last opens the path itself, as another responder would.
			 */
			if (p == CONC_PROCS - 1 && audit_open(path, NULL) != FA_OK)
				_exit(2);
			_exit(conc_run((long)(p + 1) * CONC_THREADS));
		}
	}
	ck_assert_int_eq(conc_run(0), 0);
	for (p = 0; p < CONC_PROCS; p++) {
		ck_assert_int_eq(waitpid(pid[p], &status, 0), pid[p]);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}

	v = read_lines(path, &n);
	ck_assert_uint_eq(n, (CONC_PROCS + 1) * CONC_THREADS * CONC_EVENTS);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(sscanf(str(v[i], "request_id"), "%ld-%ld", &a, &b), 2);
		ck_assert(a >= 0 && a < (CONC_PROCS + 1) * CONC_THREADS);
		ck_assert(b >= 0 && b < CONC_EVENTS);
		ck_assert_int_eq(seen[a][b], 0);
		seen[a][b] = 1;
		ck_assert_uint_eq(strlen(str(v[i], "username")), AUDIT_VALUE_MAX);
	}
	free_lines(v, n);
}
END_TEST

START_TEST(test_reopen)
{
	char	 rotated[160], moved[160], *cause = NULL;
	json_t	**v;
	size_t	 n;

	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "A", AUDIT_NOFIELDS), FA_OK);
	/* logrotate renames the file; writes follow it until we reopen. */
	snprintf(rotated, sizeof rotated, "%s.1", path);
	ck_assert_int_eq(rename(path, rotated), 0);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "B", AUDIT_NOFIELDS), FA_OK);
	ck_assert_int_eq(audit_reopen(&cause), FA_OK);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "C", AUDIT_NOFIELDS), FA_OK);

	v = read_lines(rotated, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(str(v[0], "username"), "A");
	ck_assert_str_eq(str(v[1], "username"), "B");
	free_lines(v, n);
	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(str(v[0], "username"), "C");
	free_lines(v, n);

	/* A reopen that fails keeps writing to the file it had. */
	snprintf(moved, sizeof moved, "%s.moved", dir);
	ck_assert_int_eq(rename(dir, moved), 0);
	ck_assert_int_eq(audit_reopen(&cause), FA_ERR);
	ck_assert_ptr_nonnull(cause);
	free(cause);
	ck_assert_int_eq(audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, NULL,
	    NULL, "D", AUDIT_NOFIELDS), FA_OK);
	ck_assert_int_eq(rename(moved, dir), 0);
	v = read_lines(path, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(str(v[1], "username"), "D");
	free_lines(v, n);
}
END_TEST

/* xorshift64*: reproducible random input. */
static uint64_t
rnd(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 2685821657736338717ULL;
}

START_TEST(test_random)
{
	static const char *keys[] = { "reason", "scope", "jti", "user_agent",
	    "password", "token", "", "count" };
	static char		 val[8][1500];
	struct audit_field	 f[8];
	struct buf		 b = BUF_INIT;
	uint64_t		 st = 42;
	json_t			*o;
	json_error_t		 err;
	size_t			 i, k, len, nf;

	for (i = 0; i < 3000; i++) {
		for (k = 0; k < 8; k++) {
			size_t j;

			len = rnd(&st) % sizeof val[k];
			for (j = 0; j < len; j++)
				/* bias towards quotes, backslashes, controls, UTF-8 leads */
				val[k][j] = (char)(rnd(&st) % 3 == 0 ?
				    "\"\\\n\r\x01\xc3\xe2\xf0\x80\xff"[rnd(&st) % 10] :
				    (int)(rnd(&st) & 0xff));
			val[k][len] = '\0';
			f[k].key = keys[rnd(&st) % 8];
			f[k].value = val[k];
		}
		nf = rnd(&st) % 6;
		buf_reset(&b);
		audit_format(&b, (enum audit_type)(rnd(&st) % AUDIT_TYPE_COUNT),
		    (enum audit_severity)(rnd(&st) % 3), val[5], val[6], val[7],
		    f, nf);
		ck_assert_uint_le(b.len, AUDIT_LINE_MAX);
		ck_assert_ptr_eq(memchr(b.data, '\n', b.len), b.data + b.len - 1);
		o = json_loadb(b.data, b.len - 1, 0, &err);
		ck_assert_msg(o != NULL, "%s: %s", err.text, b.data);
		ck_assert_ptr_nonnull(json_object_get(o, "type"));
		json_decref(o);
	}
	buf_free(&b);
}
END_TEST

static Suite *
audit_suite(void)
{
	Suite	*s = suite_create("audit");
	TCase	*tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);	/* valgrind */
	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_injection);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_bad_enums);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_line_bound);
	tcase_add_test(tc, test_not_open);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(audit_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
