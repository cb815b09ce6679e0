/*
 * test_config.c -- Check suite for config.c: the defaults, the file syntax
 * (comments, quoting, whitespace, limits), every kind of error and its
 * "FILE:LINE: KEY: reason" cause, each key's range and checker, environment
 * overrides and the REDIS_URL alias, cross-key validation, config_dump
 * reloading to the same values, and the shipped etc/fastauth.conf.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "config/config.h"
#include "core/ratespec.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"

static struct config *cfg;
static char *cause;

static void
setup(void)
{
	cfg = config_new();
	cause = NULL;
}

static void
teardown(void)
{
	config_free(cfg);
	free(cause);
	cfg = NULL;
	cause = NULL;
}

/* Load text as the file "t.conf". */
static int
load(const char *text)
{
	free(cause);
	cause = NULL;
	return config_load_buffer(cfg, "t.conf", text, strlen(text), &cause);
}

/* Loading text must fail with exactly want as the cause. */
static void
load_fails(const char *text, const char *want)
{
	ck_assert_msg(load(text) == FA_ERR, "accepted \"%s\"", text);
	ck_assert_ptr_nonnull(cause);
	ck_assert_str_eq(cause, want);
}

/* Setting key to value must fail (with a "key: " cause) or succeed. */
static int
set(const char *key, const char *value)
{
	char *c = NULL;
	int rc = config_set(cfg, key, value, &c);

	if (rc != FA_OK) {
		ck_assert_ptr_nonnull(c);
		ck_assert_msg(strncmp(c, key, strlen(key)) == 0 &&
		    c[strlen(key)] == ':', "cause \"%s\"", c);
	}
	free(c);
	return rc;
}

/* Write text to a fresh temporary file; returns its path (caller frees). */
static char *
tmpfile_with(const char *text, size_t len)
{
	char *path = strdup("/tmp/test_config.XXXXXX");
	int fd = mkstemp(path);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(defaults)
{
	ck_assert_str_eq(cfg->issuer, "http://127.0.0.1:8080");
	ck_assert_ptr_null(cfg->listen);
	ck_assert_int_eq(cfg->processes, 2);
	ck_assert_int_eq(cfg->threads, 4);
	ck_assert_str_eq(cfg->instance, "default");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_int_eq(cfg->log_syslog, 0);
	ck_assert_int_eq(cfg->drain_timeout_ms, 10000);
	ck_assert_str_eq(cfg->redis_url, "redis://127.0.0.1:6379/0");
	ck_assert_str_eq(cfg->redis_prefix, "fastauth:");
	ck_assert_int_eq(cfg->redis_connect_timeout_ms, 250);
	ck_assert_int_eq(cfg->redis_command_timeout_ms, 500);
	ck_assert_int_eq(cfg->redis_backoff_min_ms, 100);
	ck_assert_int_eq(cfg->redis_backoff_max_ms, 5000);
	ck_assert_str_eq(cfg->kek_file, SYSCONFDIR "/fastauth/kek");
	ck_assert_int_eq(cfg->access_token_ttl, 3600);
	ck_assert_int_eq(cfg->key_rotate_after, 86400);
	ck_assert(cfg->key_rotate_after_seals == 1073741824LL);
	ck_assert_int_eq(cfg->key_refresh_interval, 5);
	ck_assert_uint_eq(cfg->max_body_size, 16384);
	ck_assert_int_eq(cfg->max_form_params, 32);
	ck_assert_int_eq(cfg->discovery_max_age, 3600);
	ck_assert_int_eq(cfg->argon2_memory_kib, 19456);
	ck_assert_int_eq(cfg->argon2_iterations, 2);
	ck_assert_int_eq(cfg->argon2_parallelism, 1);
	ck_assert_uint_eq(cfg->password_max_length, 1024);
	ck_assert_int_eq(cfg->argon2_max_concurrent, 0);
	ck_assert_int_eq(cfg->argon2_wait_ms, 2000);
	ck_assert_int_eq(cfg->refresh_token_idle_ttl, 1209600);
	ck_assert_int_eq(cfg->refresh_token_absolute_ttl, 2592000);
	ck_assert_int_eq(cfg->refresh_token_grace, 0);
	ck_assert_int_eq(cfg->login_max_failures, 5);
	ck_assert_int_eq(cfg->login_lock_seconds, 900);
	ck_assert_str_eq(cfg->audit_log, "syslog");
	ck_assert_int_eq(config_validate(cfg, &cause), FA_OK);
	config_free(NULL);
}
END_TEST

START_TEST(key_names)
{
	static const char *want[] = {
		"issuer", "listen", "processes", "threads", "instance",
		"log_level", "log_target", "drain_timeout_ms", "redis_url",
		"redis_prefix", "redis_connect_timeout_ms",
		"redis_command_timeout_ms", "redis_backoff_min_ms",
		"redis_backoff_max_ms", "kek_file", "access_token_ttl",
		"key_rotate_after", "key_rotate_after_seals",
		"key_refresh_interval", "max_body_size", "max_form_params",
		"discovery_max_age", "argon2_memory_kib", "argon2_iterations",
		"argon2_parallelism", "password_max_length",
		"argon2_max_concurrent", "argon2_wait_ms",
		"refresh_token_idle_ttl", "refresh_token_absolute_ttl",
		"refresh_token_grace", "login_max_failures",
		"login_failure_window", "login_lock_seconds",
		"login_delay_base_ms", "login_delay_max_ms",
		"login_max_failures_per_address", "audit_log",
		"shm_ratelimit_entries", "shm_cache_entries", "shm_cache_value_max",
		"cache_client_ttl", "cache_negative_ttl", "cache_revocation_ttl",
		"ratelimit_token", "ratelimit_introspect", "ratelimit_revoke",
		"ratelimit_userinfo", "ratelimit_login",
		"fastcgi_roles", "ratelimit_authorizer",
		"redis_sentinels", "redis_master_name", "redis_breaker_failures",
		"redis_breaker_window", "redis_breaker_cooldown",
		"redis_read_retries", "redis_wait_replicas", "redis_wait_timeout",
		"revocation_grace", "listen_backlog",
		"shm_metrics_slots", "shm_anomaly_entries", "metrics_allow",
		"metrics_token_file", "anomaly_window", "anomaly_invalid_tokens",
		"anomaly_client_auth_failures", "anomaly_login_failures",
		"anomaly_suspect_seconds", "anomaly_throttle",
		"latency_anomaly_factor", "latency_anomaly_floor_ms",
		"latency_anomaly_min_requests", "latency_anomaly_interval",
		"introspect_batch_max", "ratelimit_tarpit_ms", "ratelimit_tarpit_max",
	};
	size_t i;

	for (i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_str_eq(config_key_name(i), want[i]);
	ck_assert_ptr_null(config_key_name(i));
	ck_assert_ptr_null(config_key_name(SIZE_MAX));
}
END_TEST

START_TEST(file_parse)
{
	ck_assert_int_eq(load(
	    "# fastauth\n"
	    "\n"
	    "issuer https://auth.example.com/\n"
	    "   threads    8   \n"
	    "\t# an indented comment\n"
	    "processes\t3\r\n"
	    "log_level debug\n"
	    "log_target syslog\n"
	    "   \t  \n"
	    "listen unix:/run/fastauth/fastauth.sock\n"
	    "key_rotate_after 0\n"
	    "discovery_max_age 0\n"
	    "redis_prefix fa:test:"), FA_OK);	/* no final newline */
	ck_assert_ptr_null(cause);
	ck_assert_str_eq(cfg->issuer, "https://auth.example.com");
	ck_assert_int_eq(cfg->threads, 8);
	ck_assert_int_eq(cfg->processes, 3);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg->log_syslog, 1);
	ck_assert_str_eq(cfg->listen, "unix:/run/fastauth/fastauth.sock");
	ck_assert_int_eq(cfg->key_rotate_after, 0);
	ck_assert_int_eq(cfg->discovery_max_age, 0);
	ck_assert_str_eq(cfg->redis_prefix, "fa:test:");
	/* Untouched keys keep their defaults. */
	ck_assert_int_eq(cfg->max_form_params, 32);
	ck_assert_int_eq(load(""), FA_OK);
	ck_assert_int_eq(load("\n\n# only comments\n"), FA_OK);
}
END_TEST

START_TEST(quoted_values)
{
	ck_assert_int_eq(load("kek_file \"/etc/fast auth/k\\\"e\\\\y\"  \n"
	    "threads \"6\"\n"
	    "instance \"blue-1\"\n"
	    "listen \"\"\n"), FA_OK);
	ck_assert_str_eq(cfg->kek_file, "/etc/fast auth/k\"e\\y");
	ck_assert_int_eq(cfg->threads, 6);
	ck_assert_str_eq(cfg->instance, "blue-1");
	ck_assert_ptr_null(cfg->listen);
	/* A '#' inside quotes is data. */
	ck_assert_int_eq(load("redis_prefix \"fa#1:\""), FA_OK);
	ck_assert_str_eq(cfg->redis_prefix, "fa#1:");

	load_fails("threads 4\nkek_file \"/a\\nb\"\n",
	    "t.conf:2: kek_file: bad escape in quoted value (only \\\" and \\\\)");
	load_fails("kek_file \"/a", "t.conf:1: kek_file: unterminated quoted value");
	load_fails("kek_file \"/a\\\"", "t.conf:1: kek_file: unterminated quoted value");
	load_fails("kek_file \"/a\" x", "t.conf:1: kek_file: unexpected text after "
	    "the value (quote values with spaces)");
	load_fails("kek_file /a b", "t.conf:1: kek_file: unexpected text after "
	    "the value (quote values with spaces)");
	load_fails("threads 4 # four", "t.conf:1: threads: unexpected text after "
	    "the value (quote values with spaces)");
	load_fails("kek_file \"\"", "t.conf:1: kek_file: must not be empty");
}
END_TEST

START_TEST(errors_name_file_line_key)
{
	load_fails("threads 4\n\n# c\nbogus 1\n", "t.conf:4: bogus: unknown key");
	load_fails("threads 4\nprocesses 2\nthreads 5\n",
	    "t.conf:3: threads: repeated key");
	load_fails("threads\n", "t.conf:1: threads: missing value");
	load_fails("# x\n  threads   \t\n", "t.conf:2: threads: missing value");
	load_fails("threads four\n", "t.conf:1: threads: not an integer");
	load_fails("threads 0\n", "t.conf:1: threads: out of range (1 to 256)");
	load_fails("x\ny\nthreads 257\n",
	    "t.conf:1: x: unknown key");
	load_fails("\n\nprocesses 1000\n",
	    "t.conf:3: processes: out of range (1 to 256)");
	load_fails("log_level loud\n",
	    "t.conf:1: log_level: must be one of err, warn, info, debug");
	load_fails("log_target file\n",
	    "t.conf:1: log_target: must be one of stderr, syslog");
	load_fails("Threads 4\n", "t.conf:1: Threads: unknown key");
	/* Unprintable bytes of a bad key are not echoed. */
	load_fails("th\x1b[2Jreads 4\n", "t.conf:1: th?[2Jreads: unknown key");
}
END_TEST

START_TEST(file_limits)
{
	char *line, *text;
	size_t n = 4096;

	/* 4096 bytes is the longest line. */
	line = malloc(n + 32);
	memset(line, ' ', n + 31);
	memcpy(line, "threads 7", 9);
	line[n] = '\0';
	ck_assert_int_eq(load(line), FA_OK);
	ck_assert_int_eq(cfg->threads, 7);
	config_free(cfg);
	cfg = config_new();
	line[n] = ' ';
	line[n + 1] = '\0';
	load_fails(line, "t.conf:1: line longer than 4096 bytes");
	free(line);

	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_buffer(cfg, "n.conf", "threads 4\n\0x", 12,
	    &cause), FA_ERR);
	ck_assert_str_eq(cause, "n.conf:2: NUL byte");
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_buffer(cfg, "n.conf", "threads 4\0", 10,
	    &cause), FA_ERR);
	ck_assert_str_eq(cause, "n.conf:1: NUL byte");

	/* A file over 1 MiB is refused whole. */
	text = malloc(1024 * 1024 + 2);
	memset(text, '\n', 1024 * 1024 + 1);
	line = tmpfile_with(text, 1024 * 1024 + 1);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_file(cfg, line, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "larger than"));
	unlink(line);
	free(line);
	line = tmpfile_with(text, 1024 * 1024);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_file(cfg, line, &cause), FA_OK);
	unlink(line);
	free(line);
	free(text);
}
END_TEST

START_TEST(load_file)
{
	const char text[] = "threads 9\nlog_level warn\n";
	char *path = tmpfile_with(text, sizeof text - 1), *want;

	ck_assert_int_eq(config_load_file(cfg, path, &cause), FA_OK);
	ck_assert_int_eq(cfg->threads, 9);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_WARN);
	unlink(path);
	ck_assert_int_eq(config_load_file(cfg, path, &cause), FA_ERR);
	want = NULL;
	ck_assert_int_ge(asprintf(&want, "%s: No such file or directory", path), 0);
	ck_assert_str_eq(cause, want);
	free(want);
	free(path);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_file(cfg, "/tmp", &cause), FA_ERR);
	ck_assert_str_eq(cause, "/tmp: not a regular file");

	/* Causes from a file name the file. */
	path = tmpfile_with("threads 1\nthreads 2\n", 20);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(config_load_file(cfg, path, &cause), FA_ERR);
	want = NULL;
	ck_assert_int_ge(asprintf(&want, "%s:2: threads: repeated key", path), 0);
	ck_assert_str_eq(cause, want);
	free(want);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(integers_strict)
{
	static const char *bad[] = {
		"", "4x", "x4", "+4", " 4", "4 ", "0x10", "4.0", "-", "4k",
		"99999999999999999999999", "--1",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(set("threads", bad[i]) == FA_ERR, "accepted \"%s\"",
		    bad[i]);
	ck_assert_int_eq(set("threads", "-1"), FA_ERR);
	ck_assert_int_eq(set("threads", "007"), FA_OK);
	ck_assert_int_eq(cfg->threads, 7);
	ck_assert_int_eq(cfg->threads, 7);	/* failures left it alone */
	ck_assert_int_eq(set("threads", "256"), FA_OK);
	ck_assert_int_eq(set("threads", "1"), FA_OK);
	ck_assert_int_eq(set("threads", "257"), FA_ERR);
	ck_assert_int_eq(cfg->threads, 1);
}
END_TEST

START_TEST(ranges)
{
	ck_assert_int_eq(set("key_rotate_after", "0"), FA_OK);
	ck_assert_int_eq(set("key_rotate_after", "59"), FA_ERR);
	ck_assert_int_eq(set("key_rotate_after", "60"), FA_OK);
	ck_assert_int_eq(set("key_rotate_after", "31536000"), FA_OK);
	ck_assert_int_eq(set("key_rotate_after", "31536001"), FA_ERR);
	ck_assert_int_eq(set("key_rotate_after_seals", "4294967295"), FA_OK);
	ck_assert(cfg->key_rotate_after_seals == 4294967295LL);
	ck_assert_int_eq(set("key_rotate_after_seals", "4294967296"), FA_ERR);
	ck_assert_int_eq(set("key_rotate_after_seals", "999"), FA_ERR);
	ck_assert_int_eq(set("drain_timeout_ms", "99"), FA_ERR);
	ck_assert_int_eq(set("drain_timeout_ms", "600000"), FA_OK);
	ck_assert_int_eq(set("redis_backoff_max_ms", "600001"), FA_ERR);
	ck_assert_int_eq(set("access_token_ttl", "86401"), FA_ERR);
	ck_assert_int_eq(set("access_token_ttl", "0"), FA_ERR);
	ck_assert_int_eq(set("max_form_params", "1025"), FA_ERR);
	ck_assert_int_eq(set("discovery_max_age", "604801"), FA_ERR);
	ck_assert_int_eq(set("key_refresh_interval", "3601"), FA_ERR);
	ck_assert_int_eq(set("redis_connect_timeout_ms", "60001"), FA_ERR);
	ck_assert_int_eq(set("nosuchkey", "1"), FA_ERR);
	ck_assert_int_eq(config_set(cfg, "key_rotate_after", "1", &cause), FA_ERR);
	ck_assert_str_eq(cause,
	    "key_rotate_after: out of range (60 to 31536000, or 0)");
}
END_TEST

START_TEST(size_suffixes)
{
	ck_assert_int_eq(load("max_body_size 16k"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 16000);
	ck_assert_int_eq(set("max_body_size", "16kb"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 16384);
	ck_assert_int_eq(set("max_body_size", "16KB"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 16384);
	ck_assert_int_eq(set("max_body_size", "1m"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 1000000);
	ck_assert_int_eq(set("max_body_size", "16mb"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 16777216);
	ck_assert_int_eq(set("max_body_size", "2048"), FA_OK);
	ck_assert_uint_eq(cfg->max_body_size, 2048);
	ck_assert_int_eq(set("max_body_size", "17mb"), FA_ERR);
	ck_assert_int_eq(set("max_body_size", "1gb"), FA_ERR);
	ck_assert_int_eq(set("max_body_size", "1k"), FA_ERR);	/* < 1024 */
	ck_assert_int_eq(set("max_body_size", "16 k"), FA_ERR);
	ck_assert_int_eq(set("max_body_size", "16kbb"), FA_ERR);
	ck_assert_int_eq(set("max_body_size", "k"), FA_ERR);
	ck_assert_int_eq(set("max_body_size", "99999999999999999gb"), FA_ERR);
	ck_assert_uint_eq(cfg->max_body_size, 2048);
	load_fails("max_body_size 16x", "t.conf:1: max_body_size: not a size "
	    "(an integer, optionally with k, kb, m, mb, g or gb)");
	/* Suffixes belong to sizes only. */
	ck_assert_int_eq(set("max_form_params", "1k"), FA_ERR);
}
END_TEST

/* Rate-limit policies: the grammar of core/ratespec.c, errors name the key. */
START_TEST(ratelimit_policies)
{
	struct ratespec rs;
	char *why = NULL;

	ck_assert_int_eq(set("ratelimit_token", "off"), FA_OK);
	ck_assert_int_eq(set("ratelimit_token", "10/1s"), FA_OK);
	ck_assert_int_eq(set("ratelimit_token", "10/1m burst 3 by username cluster"), FA_OK);
	ck_assert_int_eq(set("ratelimit_login", "5/24h by address"), FA_OK);
	ck_assert_int_eq(set("ratelimit_token", ""), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "0/1s"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/0"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/25h"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/1s burst"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/1s burst 0"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/1s by ip"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10/1s clusters"), FA_ERR);
	ck_assert_int_eq(set("ratelimit_token", "10 per second"), FA_ERR);
	ck_assert_str_eq(cfg->ratelimit_token, "10/1m burst 3 by username cluster");

	ck_assert_int_eq(ratespec_parse("30/2m burst 7 by address cluster", &rs, &why), FA_OK);
	ck_assert_int_eq(rs.enabled, 1);
	ck_assert_uint_eq(rs.rate, 30);
	ck_assert_uint_eq(rs.period_s, 120);
	ck_assert_uint_eq(rs.burst, 7);
	ck_assert_int_eq(rs.by, RATESPEC_BY_ADDRESS);
	ck_assert_int_eq(rs.cluster, 1);
	ck_assert_int_eq(ratespec_parse("8/1h", &rs, &why), FA_OK);
	ck_assert_uint_eq(rs.burst, 8);		/* burst defaults to the rate */
	ck_assert_int_eq(rs.by, RATESPEC_BY_CLIENT);
	ck_assert_int_eq(ratespec_parse("off", &rs, &why), FA_OK);
	ck_assert_int_eq(rs.enabled, 0);
	ck_assert_int_eq(ratespec_parse("1/1s junk", &rs, &why), FA_ERR);
	ck_assert_ptr_nonnull(why);
	free(why);
}
END_TEST

START_TEST(string_checks)
{
	ck_assert_int_eq(set("issuer", "https://a.example/tenant/"), FA_OK);
	ck_assert_str_eq(cfg->issuer, "https://a.example/tenant");
	ck_assert_int_eq(set("issuer", "HTTP://a.example:8443///"), FA_OK);
	ck_assert_str_eq(cfg->issuer, "HTTP://a.example:8443");
	ck_assert_int_eq(set("issuer", "https://a.example/?x=1"), FA_ERR);
	ck_assert_int_eq(set("issuer", "https://a.example/#f"), FA_ERR);
	ck_assert_int_eq(set("issuer", "ftp://a.example"), FA_ERR);
	ck_assert_int_eq(set("issuer", "a.example"), FA_ERR);
	ck_assert_int_eq(set("issuer", "https://"), FA_ERR);
	ck_assert_int_eq(set("issuer", "https:///path"), FA_ERR);
	ck_assert_int_eq(set("issuer", "https://u:p@a.example"), FA_ERR);
	ck_assert_int_eq(set("issuer", ""), FA_ERR);
	ck_assert_str_eq(cfg->issuer, "HTTP://a.example:8443");

	ck_assert_int_eq(set("listen", "127.0.0.1:9000"), FA_OK);
	ck_assert_int_eq(set("listen", "[::1]:9000"), FA_OK);
	ck_assert_int_eq(set("listen", "localhost:65535"), FA_OK);
	ck_assert_int_eq(set("listen", "unix:/run/fa.sock"), FA_OK);
	ck_assert_str_eq(cfg->listen, "unix:/run/fa.sock");
	ck_assert_int_eq(set("listen", "unix:run/fa.sock"), FA_ERR);
	ck_assert_int_eq(set("listen", "127.0.0.1"), FA_ERR);
	ck_assert_int_eq(set("listen", "127.0.0.1:0"), FA_ERR);
	ck_assert_int_eq(set("listen", "127.0.0.1:65536"), FA_ERR);
	ck_assert_int_eq(set("listen", "127.0.0.1:80x"), FA_ERR);
	ck_assert_int_eq(set("listen", ":80"), FA_ERR);
	ck_assert_int_eq(set("listen", "::1:80"), FA_ERR);
	ck_assert_int_eq(set("listen", "[]:80"), FA_ERR);
	ck_assert_int_eq(set("listen", "host:"), FA_ERR);
	ck_assert_int_eq(set("listen", ""), FA_OK);
	ck_assert_ptr_null(cfg->listen);

	ck_assert_int_eq(set("instance", "A-z_09"), FA_OK);
	ck_assert_int_eq(set("instance", "12345678901234567890123456789012"),
	    FA_OK);
	ck_assert_int_eq(set("instance", "123456789012345678901234567890123"),
	    FA_ERR);
	ck_assert_int_eq(set("instance", "a.b"), FA_ERR);
	ck_assert_int_eq(set("instance", "a/b"), FA_ERR);
	ck_assert_int_eq(set("instance", ""), FA_ERR);

	ck_assert_int_eq(set("redis_url", "redis://:pw@10.0.0.1:6380/2"), FA_OK);
	ck_assert_int_eq(set("redis_url", "unix:/run/redis.sock?db=1"), FA_OK);
	ck_assert_int_eq(set("redis_url", "http://x"), FA_ERR);
	ck_assert_int_eq(set("redis_url", "redis://"), FA_ERR);
	ck_assert_int_eq(set("redis_url", "redis://a b"), FA_ERR);

	ck_assert_int_eq(set("redis_prefix", "x"), FA_OK);
	ck_assert_int_eq(set("redis_prefix", ""), FA_ERR);
	ck_assert_int_eq(set("redis_prefix", "a b"), FA_ERR);
	ck_assert_int_eq(set("redis_prefix", "0123456789012345678901234567890123"
	    "456789012345678901234567890123"), FA_OK);	/* 64 */
	ck_assert_int_eq(set("redis_prefix", "0123456789012345678901234567890123"
	    "4567890123456789012345678901234"), FA_ERR);

	/* No control characters in any string: config_dump writes lines. */
	ck_assert_int_eq(set("kek_file", "/etc/a\nb"), FA_ERR);
	ck_assert_int_eq(set("kek_file", "/etc/a\tb"), FA_ERR);
	ck_assert_int_eq(set("kek_file", "relative/kek"), FA_OK);

	ck_assert_int_eq(set("log_level", "err"), FA_OK);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_ERR);
	ck_assert_int_eq(set("log_level", "INFO"), FA_ERR);
	ck_assert_int_eq(set("log_target", "stderr"), FA_OK);
	ck_assert_int_eq(cfg->log_syslog, 0);
}
END_TEST

START_TEST(env_overrides_file)
{
	char *env[] = {
		"PATH=/bin", "FASTAUTH_THREADS=12", "FASTAUTH_CONF=/x.conf",
		"FASTAUTH_LOG_LEVEL=debug", "HOME=/root", "NOEQUALS", NULL,
	};

	ck_assert_int_eq(load("threads 3\nprocesses 5\nlog_level err\n"), FA_OK);
	ck_assert_int_eq(config_load_env(cfg, env, &cause), FA_OK);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(cfg->threads, 12);
	ck_assert_int_eq(cfg->processes, 5);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
}
END_TEST

START_TEST(env_every_key)
{
	char name[64], *env[2] = { name, NULL };
	const char *k;
	size_t i, j;

	/* Every key has its FASTAUTH_<KEY>; a bad value names the variable. */
	for (i = 0; (k = config_key_name(i)) != NULL; i++) {
		j = (size_t)snprintf(name, sizeof name, "FASTAUTH_");
		for (; *k != '\0'; k++)
			name[j++] = (char)(*k >= 'a' && *k <= 'z' ? *k - 32 : *k);
		snprintf(name + j, sizeof name - j, "=%s", "\x01");
		free(cause);
		cause = NULL;
		ck_assert_int_eq(config_load_env(cfg, env, &cause), FA_ERR);
		name[j] = '\0';
		ck_assert_msg(strncmp(cause, "environment: ", 13) == 0 &&
		    strncmp(cause + 13, name, j) == 0 && cause[13 + j] == ':',
		    "cause \"%s\"", cause);
		ck_assert_ptr_null(strstr(cause, "unknown"));
	}
}
END_TEST

START_TEST(env_errors)
{
	char *unknown[] = { "FASTAUTH_THREDS=4", NULL };
	char *lower[] = { "FASTAUTH_threads=4", NULL };
	char *bad[] = { "FASTAUTH_THREADS=0", NULL };
	char *empty[] = { "FASTAUTH_THREADS=", NULL };
	char *listen[] = { "FASTAUTH_LISTEN=", NULL };

	ck_assert_int_eq(config_load_env(cfg, unknown, &cause), FA_ERR);
	ck_assert_str_eq(cause, "environment: FASTAUTH_THREDS: unknown variable");
	free(cause);
	ck_assert_int_eq(config_load_env(cfg, lower, &cause), FA_ERR);
	ck_assert_str_eq(cause, "environment: FASTAUTH_threads: unknown variable");
	free(cause);
	ck_assert_int_eq(config_load_env(cfg, bad, &cause), FA_ERR);
	ck_assert_str_eq(cause,
	    "environment: FASTAUTH_THREADS: out of range (1 to 256)");
	free(cause);
	ck_assert_int_eq(config_load_env(cfg, empty, &cause), FA_ERR);
	ck_assert_str_eq(cause, "environment: FASTAUTH_THREADS: not an integer");
	free(cause);
	cause = NULL;
	/* An empty FASTAUTH_LISTEN unsets a listen set by the file. */
	ck_assert_int_eq(load("listen 127.0.0.1:9000"), FA_OK);
	ck_assert_int_eq(config_load_env(cfg, listen, &cause), FA_OK);
	ck_assert_ptr_null(cfg->listen);
}
END_TEST

START_TEST(env_redis_url_alias)
{
	char *alias[] = { "REDIS_URL=redis://alias:1/1", NULL };
	char *both[] = { "REDIS_URL=redis://alias:1/1",
	    "FASTAUTH_REDIS_URL=redis://mine:2/2", NULL };
	char *both_rev[] = { "FASTAUTH_REDIS_URL=redis://mine:2/2",
	    "REDIS_URL=redis://alias:1/1", NULL };
	char *bad_alias[] = { "REDIS_URL=http://x", NULL };
	char *bad_alias_shadowed[] = { "REDIS_URL=http://x",
	    "FASTAUTH_REDIS_URL=redis://mine:2/2", NULL };

	ck_assert_int_eq(load("redis_url redis://file:3/3"), FA_OK);
	ck_assert_int_eq(config_load_env(cfg, alias, &cause), FA_OK);
	ck_assert_str_eq(cfg->redis_url, "redis://alias:1/1");
	ck_assert_int_eq(config_load_env(cfg, both, &cause), FA_OK);
	ck_assert_str_eq(cfg->redis_url, "redis://mine:2/2");
	ck_assert_int_eq(set("redis_url", "redis://file:3/3"), FA_OK);
	ck_assert_int_eq(config_load_env(cfg, both_rev, &cause), FA_OK);
	ck_assert_str_eq(cfg->redis_url, "redis://mine:2/2");
	ck_assert_int_eq(config_load_env(cfg, bad_alias_shadowed, &cause), FA_OK);
	ck_assert_int_eq(config_load_env(cfg, bad_alias, &cause), FA_ERR);
	ck_assert_str_eq(cause,
	    "environment: REDIS_URL: must start with redis:// or unix:");
}
END_TEST

START_TEST(env_process_environment)
{
	setenv("FASTAUTH_MAX_FORM_PARAMS", "64", 1);
	ck_assert_int_eq(config_load_env(cfg, NULL, &cause), FA_OK);
	unsetenv("FASTAUTH_MAX_FORM_PARAMS");
	ck_assert_int_eq(cfg->max_form_params, 64);
}
END_TEST

/* What the Authorizer hands a protected script is not configuration. */
START_TEST(env_request_variables)
{
	char *env[] = { "FASTAUTH_SUB=alice", "FASTAUTH_CLIENT_ID=web",
	    "FASTAUTH_SCOPE=read write", "FASTAUTH_EXP=1700000000",
	    "FASTAUTH_REQUIRED_SCOPE=admin", "FASTAUTH_THREADS=7", NULL };
	char *near[] = { "FASTAUTH_SUBJECT=alice", NULL };

	ck_assert_int_eq(config_load_env(cfg, env, &cause), FA_OK);
	ck_assert_int_eq(cfg->threads, 7);
	ck_assert_int_eq(config_load_env(cfg, near, &cause), FA_ERR);
	ck_assert_str_eq(cause, "environment: FASTAUTH_SUBJECT: unknown variable");
}
END_TEST

START_TEST(validate)
{
	ck_assert_int_eq(set("redis_backoff_min_ms", "6000"), FA_OK);
	ck_assert_int_eq(config_validate(cfg, &cause), FA_ERR);
	ck_assert_str_eq(cause, "redis_backoff_min_ms (6000) is greater than "
	    "redis_backoff_max_ms (5000)");
	free(cause);
	cause = NULL;
	ck_assert_int_eq(set("redis_backoff_max_ms", "6000"), FA_OK);
	ck_assert_int_eq(config_validate(cfg, &cause), FA_OK);

	ck_assert_int_eq(set("key_rotate_after", "60"), FA_OK);
	ck_assert_int_eq(set("key_refresh_interval", "60"), FA_OK);
	ck_assert_int_eq(config_validate(cfg, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "key_refresh_interval"));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(set("key_rotate_after", "0"), FA_OK);
	ck_assert_int_eq(config_validate(cfg, &cause), FA_OK);
}
END_TEST

/* Every field of a and b is equal. */
static void
config_eq(const struct config *a, const struct config *b)
{
	struct buf da = BUF_INIT, db = BUF_INIT;

	ck_assert_str_eq(a->issuer, b->issuer);
	ck_assert(a->listen == NULL ? b->listen == NULL :
	    b->listen != NULL && strcmp(a->listen, b->listen) == 0);
	ck_assert_int_eq(a->processes, b->processes);
	ck_assert_int_eq(a->threads, b->threads);
	ck_assert_str_eq(a->instance, b->instance);
	ck_assert_int_eq(a->log_level, b->log_level);
	ck_assert_int_eq(a->log_syslog, b->log_syslog);
	ck_assert_int_eq(a->drain_timeout_ms, b->drain_timeout_ms);
	ck_assert_str_eq(a->redis_url, b->redis_url);
	ck_assert_str_eq(a->redis_prefix, b->redis_prefix);
	ck_assert_int_eq(a->redis_connect_timeout_ms, b->redis_connect_timeout_ms);
	ck_assert_int_eq(a->redis_command_timeout_ms, b->redis_command_timeout_ms);
	ck_assert_int_eq(a->redis_backoff_min_ms, b->redis_backoff_min_ms);
	ck_assert_int_eq(a->redis_backoff_max_ms, b->redis_backoff_max_ms);
	ck_assert_str_eq(a->kek_file, b->kek_file);
	ck_assert_int_eq(a->access_token_ttl, b->access_token_ttl);
	ck_assert_int_eq(a->key_rotate_after, b->key_rotate_after);
	ck_assert(a->key_rotate_after_seals == b->key_rotate_after_seals);
	ck_assert_int_eq(a->key_refresh_interval, b->key_refresh_interval);
	ck_assert_uint_eq(a->max_body_size, b->max_body_size);
	ck_assert_int_eq(a->max_form_params, b->max_form_params);
	ck_assert_int_eq(a->discovery_max_age, b->discovery_max_age);
	config_dump(a, &da);
	config_dump(b, &db);
	ck_assert_str_eq(da.data, db.data);
	buf_free(&da);
	buf_free(&db);
}

/* Dump c, load the dump over fresh defaults, compare. */
static void
dump_reload(const struct config *c)
{
	struct buf b = BUF_INIT;
	struct config *again = config_new();
	char *why = NULL;

	config_dump(c, &b);
	ck_assert_msg(config_load_buffer(again, "dump", b.data, b.len, &why) ==
	    FA_OK, "%s", why ? why : "");
	config_eq(c, again);
	buf_free(&b);
	config_free(again);
}

START_TEST(dump_reloads)
{
	struct buf b = BUF_INIT;
	const char *k;
	size_t i;

	dump_reload(cfg);	/* the defaults, listen unset */

	ck_assert_int_eq(load(
	    "issuer https://auth.example.com/x\n"
	    "listen \"[::1]:9000\"\n"
	    "processes 7\nthreads 9\ninstance blue\n"
	    "log_level warn\nlog_target syslog\n"
	    "drain_timeout_ms 2000\n"
	    "redis_url unix:/run/redis/redis.sock?db=3\n"
	    "redis_prefix \"fa:\\\"q\\\\\"\n"
	    "redis_connect_timeout_ms 11\nredis_command_timeout_ms 12\n"
	    "redis_backoff_min_ms 13\nredis_backoff_max_ms 14\n"
	    "kek_file \"/etc/fast auth/k\\\\\\\"ek\"\n"
	    "access_token_ttl 600\nkey_rotate_after 0\n"
	    "key_rotate_after_seals 4294967295\nkey_refresh_interval 60\n"
	    "max_body_size 1mb\nmax_form_params 1024\ndiscovery_max_age 0\n"),
	    FA_OK);
	ck_assert_str_eq(cfg->redis_prefix, "fa:\"q\\");
	ck_assert_str_eq(cfg->kek_file, "/etc/fast auth/k\\\"ek");
	dump_reload(cfg);

	/* Every key appears in the dump. */
	config_dump(cfg, &b);
	for (i = 0; (k = config_key_name(i)) != NULL; i++) {
		char want[64];

		snprintf(want, sizeof want, "\n%s ", k);
		ck_assert_msg(strstr(b.data, want) != NULL, "%s missing", k);
	}
	buf_free(&b);
}
END_TEST

START_TEST(dump_hides_redis_password)
{
	struct buf b = BUF_INIT;

	ck_assert_int_eq(set("redis_url", "redis://:hunter2@10.0.0.1:6379/0"),
	    FA_OK);
	config_dump(cfg, &b);
	ck_assert_ptr_null(strstr(b.data, "hunter2"));
	ck_assert_ptr_nonnull(strstr(b.data, "# redis_url"));
	/* Still loadable. */
	config_free(cfg);
	cfg = config_new();
	ck_assert_int_eq(config_load_buffer(cfg, "dump", b.data, b.len, &cause),
	    FA_OK);
	buf_free(&b);
}
END_TEST

/* Read a whole file under $top_srcdir into a malloc'd string. */
static char *
read_doc(const char *rel)
{
	const char *top = getenv("top_srcdir");
	char *path, *text;
	FILE *f;
	long n;

	ck_assert_int_ge(asprintf(&path, "%s/%s", top ? top : ".", rel), 0);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	free(path);
	return text;
}

/*
 * Every key the code knows is documented in fastauth.conf(5) and in the
 * sample file, and the man page documents no key the code does not know.
 */
START_TEST(keys_documented)
{
	char *man = read_doc("man/fastauth.conf.5");
	char *sample = read_doc("etc/fastauth.conf");
	char want[128], *p;
	size_t i;

	for (i = 0; config_key_name(i) != NULL; i++) {
		snprintf(want, sizeof want, "\n.It Ic %s ", config_key_name(i));
		ck_assert_msg(strstr(man, want) != NULL,
		    "key %s missing from man/fastauth.conf.5", config_key_name(i));
		snprintf(want, sizeof want, "\n%s ", config_key_name(i));
		p = strstr(sample, want);
		if (p == NULL) {
			snprintf(want, sizeof want, "\n# %s ", config_key_name(i));
			p = strstr(sample, want);
		}
		ck_assert_msg(p != NULL, "key %s missing from etc/fastauth.conf",
		    config_key_name(i));
	}
	/* The reverse: each ".It Ic key" in the key list names a known key. */
	for (p = man; (p = strstr(p, "\n.It Ic ")) != NULL; p++) {
		char name[64];
		size_t j, known = 0;

		if (sscanf(p + 8, "%63[a-z0-9_]", name) != 1)
			continue;
		for (j = 0; config_key_name(j) != NULL; j++)
			if (strcmp(config_key_name(j), name) == 0)
				known = 1;
		ck_assert_msg(known, "man/fastauth.conf.5 documents unknown key %s", name);
	}
	free(man);
	free(sample);
}
END_TEST

/* The line config_dump writes for key, without the newline (malloc'd). */
static char *
dump_line(const struct config *c, const char *key)
{
	struct buf b = BUF_INIT;
	char want[96], *p, *e, *line;

	config_dump(c, &b);
	snprintf(want, sizeof want, "\n%s ", key);
	p = strstr(b.data, want);
	ck_assert_msg(p != NULL, "%s missing from config_dump", key);
	p++;
	e = strchr(p, '\n');
	line = strndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
	buf_free(&b);
	return line;
}

/*
 * Whether the value text, written as "key value" in a file, sets key to its
 * built-in default. Documentation names the packaged paths (/etc/...): they
 * are moved to this build's SYSCONFDIR first. NULL text means "unset".
 */
static int
is_default(const char *key, const char *text, char **shown)
{
	struct config *def = config_new(), *c = config_new();
	struct buf f = BUF_INIT;
	char *want, *got, *err = NULL;
	const char *t = text != NULL ? text : "";
	int same;

	buf_printf(&f, "%s \"", key);
	if (strncmp(t, "/etc/", 5) == 0) {
		buf_puts(&f, SYSCONFDIR "/");
		t += 5;
	}
	for (; *t != '\0'; t++) {
		if (*t == '"' || *t == '\\')
			buf_putc(&f, '\\');
		buf_putc(&f, *t);
	}
	buf_puts(&f, "\"\n");
	want = dump_line(def, key);
	if (config_load_buffer(c, "doc", f.data, f.len, &err) != FA_OK) {
		*shown = err;
		same = 0;
	} else {
		got = dump_line(c, key);
		same = strcmp(got, want) == 0;
		*shown = xasprintf("\"%s\" gives \"%s\", the built-in default is \"%s\"",
		    text != NULL ? text : "(unset)", got, want);
		free(got);
	}
	free(want);
	buf_free(&f);
	config_free(c);
	config_free(def);
	return same;
}

/*
 * The entry of key in fastauth.conf(5), from ".It Ic key " to the next
 * ".It" or ".El" (malloc'd); fails the test if there is none.
 */
static char *
man_entry(const char *man, const char *key)
{
	char want[96];
	const char *p, *e, *el;

	snprintf(want, sizeof want, "\n.It Ic %s ", key);
	p = strstr(man, want);
	ck_assert_msg(p != NULL, "key %s missing from man/fastauth.conf.5", key);
	p++;
	e = strstr(p, "\n.It ");
	el = strstr(p, "\n.El");
	if (e == NULL || (el != NULL && el < e))
		e = el;
	ck_assert_ptr_nonnull(e);
	return strndup(p, (size_t)(e - p));
}

/*
 * The default an entry documents, as file text (malloc'd), or NULL for
 * "Default: unset". Two forms: "Default: 2." on the line, or "Default:"
 * followed by a macro line such as ".Ql http://127.0.0.1:8080 .".
 */
static char *
man_default(const char *entry, const char *key, int *unset)
{
	const char *p = strstr(entry, "Default:"), *e;
	char *v;
	size_t n;

	ck_assert_msg(p != NULL, "fastauth.conf(5): %s has no \"Default:\"", key);
	p += strlen("Default:");
	*unset = 0;
	if (*p == '\n') {
		/* ".Ql value ." : skip the macro name. */
		p++;
		ck_assert_msg(*p == '.', "fastauth.conf(5): %s: Default: then no macro line", key);
		p = strchr(p, ' ');
		ck_assert_ptr_nonnull(p);
	}
	while (*p == ' ')
		p++;
	e = strchr(p, '\n');
	n = e != NULL ? (size_t)(e - p) : strlen(p);
	if (strncmp(p, "unset", 5) == 0) {
		*unset = 1;
		return NULL;
	}
	/* The sentence's full stop: "2." or ".Ql x ." */
	if (n >= 2 && p[n - 1] == '.' && p[n - 2] == ' ')
		n -= 2;
	else if (n >= 1 && p[n - 1] == '.')
		n -= 1;
	v = strndup(p, n);
	/* mdoc's zero-width escape, as in ".Ql fastauth:\&" */
	while ((e = strstr(v, "\\&")) != NULL)
		memmove(v + (e - v), e + 2, strlen(e + 2) + 1);
	return v;
}

/*
 * fastauth.conf(5) gives every key a type placeholder, its environment
 * variable and a default that is the code's; the sample file's commented
 * "# key value" lines and "default V.)" remarks show the code's default too
 * (except for a key without a default, whose line is an example).
 */
START_TEST(defaults_documented)
{
	char *man = read_doc("man/fastauth.conf.5");
	char *sample = read_doc("etc/fastauth.conf");
	size_t i;

	for (i = 0; config_key_name(i) != NULL; i++) {
		const char *key = config_key_name(i);
		char *entry = man_entry(man, key), *doc, *shown = NULL, *p, *e;
		char want[128], first[160], *line = NULL;
		size_t j, n;
		int unset;

		/* ".It Ic key Ar type" or ".It Ic key Cm word | word" */
		snprintf(first, sizeof first, ".It Ic %s ", key);
		p = entry + strlen(first);
		ck_assert_msg(strncmp(p, "Ar ", 3) == 0 || strncmp(p, "Cm ", 3) == 0,
		    "fastauth.conf(5): %s has no type (.It Ic %s Ar type)", key, key);

		/* ".Ev FASTAUTH_KEY", not a longer name */
		n = (size_t)snprintf(want, sizeof want, ".Ev FASTAUTH_");
		for (j = 0; key[j] != '\0' && n + 1 < sizeof want; j++)
			want[n++] = (char)toupper((unsigned char)key[j]);
		want[n] = '\0';
		p = strstr(entry, want);
		ck_assert_msg(p != NULL && (p[strlen(want)] == '\n' ||
		    p[strlen(want)] == ' '), "fastauth.conf(5): %s does not name %s",
		    key, want + 4);

		doc = man_default(entry, key, &unset);
		ck_assert_msg(is_default(key, doc, &shown),
		    "fastauth.conf(5) documents the default of %s: %s", key, shown);
		free(shown);

		/* The sample's "key value" or "# key value" line. */
		snprintf(want, sizeof want, "\n# %s ", key);
		if ((p = strstr(sample, want)) == NULL) {
			snprintf(want, sizeof want, "\n%s ", key);
			p = strstr(sample, want);
		}
		ck_assert_ptr_nonnull(p);
		if (!unset) {
			char *text;
			struct config *c = config_new();
			char *err = NULL;

			e = strchr(p + strlen(want), '\n');
			line = strndup(p + strlen(want), e != NULL ?
			    (size_t)(e - p) - strlen(want) : strlen(p + strlen(want)));
			ck_assert_int_ge(asprintf(&text, "%s %s\n", key, line), 0);
			ck_assert_msg(config_load_buffer(c, "sample", text, strlen(text),
			    &err) == FA_OK, "etc/fastauth.conf: %s", err ? err : "");
			if (strncmp(line, "/etc/", 5) != 0) {
				char *got = dump_line(c, key), *def;
				struct config *d = config_new();

				def = dump_line(d, key);
				ck_assert_msg(strcmp(got, def) == 0,
				    "etc/fastauth.conf shows \"%s %s\", the default is \"%s\"",
				    key, line, def);
				free(got);
				free(def);
				config_free(d);
			}
			config_free(c);
			free(text);
			free(line);

			/* A "default V.)" remark in the comment paragraph above. */
			{
				const char *para = p, *q;
				struct buf prose = BUF_INIT;

				/* Back to the blank line before the paragraph. */
				while (para > sample && !(para[0] == '\n' && para[-1] == '\n'))
					para--;
				/* q: the newline before each line; p: the one before the key's. */
				for (q = para; q < p; q = e) {
					const char *l = q + 1;

					e = strchr(l, '\n');
					if (e == NULL || e > p)
						break;
					if (strncmp(l, "# ", 2) == 0) {
						buf_putc(&prose, ' ');
						buf_append(&prose, l + 2, (size_t)(e - l - 2));
					}
				}
				buf_putc(&prose, '\0');
				if ((q = strstr(prose.data, "; default ")) != NULL) {
					char *dv;

					q += strlen("; default ");
					e = strstr(q, ".)");
					ck_assert_ptr_nonnull(e);
					dv = strndup(q, (size_t)(e - q));
					ck_assert_msg(is_default(key, dv, &shown),
					    "etc/fastauth.conf says \"default %s\" for %s: %s",
					    dv, key, shown);
					free(shown);
					free(dv);
				}
				buf_free(&prose);
			}
		}
		free(doc);
		free(entry);
	}
	free(man);
	free(sample);
}
END_TEST

START_TEST(sample_file_loads)
{
	const char *top = getenv("top_srcdir");
	char *path = NULL;
	struct config *def = config_new();

	ck_assert_int_ge(asprintf(&path, "%s/etc/fastauth.conf",
	    top != NULL ? top : "."), 0);
	ck_assert_msg(config_load_file(cfg, path, &cause) == FA_OK, "%s",
	    cause ? cause : "");
	ck_assert_int_eq(config_validate(cfg, &cause), FA_OK);
	/*
	 * The sample's active lines are the defaults, so it documents them;
	 * but it names the packaged KEK path, whatever --sysconfdir was.
	 */
	ck_assert_str_eq(cfg->kek_file, "/etc/fastauth/kek");
	ck_assert_int_eq(config_set(def, "kek_file", "/etc/fastauth/kek",
	    &cause), FA_OK);
	config_eq(cfg, def);
	config_free(def);
	free(path);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, key_names);
	tcase_add_test(tc, file_parse);
	tcase_add_test(tc, quoted_values);
	tcase_add_test(tc, errors_name_file_line_key);
	tcase_add_test(tc, file_limits);
	tcase_add_test(tc, load_file);
	tcase_add_test(tc, integers_strict);
	tcase_add_test(tc, ranges);
	tcase_add_test(tc, size_suffixes);
	tcase_add_test(tc, string_checks);
	tcase_add_test(tc, env_overrides_file);
	tcase_add_test(tc, env_every_key);
	tcase_add_test(tc, env_errors);
	tcase_add_test(tc, env_redis_url_alias);
	tcase_add_test(tc, env_process_environment);
	tcase_add_test(tc, env_request_variables);
	tcase_add_test(tc, validate);
	tcase_add_test(tc, dump_reloads);
	tcase_add_test(tc, dump_hides_redis_password);
	tcase_add_test(tc, sample_file_loads);
	tcase_add_test(tc, keys_documented);
	tcase_add_test(tc, defaults_documented);
	tcase_add_test(tc, ratelimit_policies);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
