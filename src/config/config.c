/*
 * config.c -- fastauth configuration: built-in defaults, then a redis.conf
 * style file, then FASTAUTH_<KEY> environment variables.
 *
 * Every key is one row of config_keys: its name, where it lives in struct
 * config, its default written as file text, and its range or checker. The
 * defaults go through the same parser as the file, the environment and
 * config_dump's output, so there is one definition of what a value means;
 * adding a key is adding a field and a row. A struct config owns its strings.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "core/cidr.h"
#include "core/ratespec.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define CONFIG_LINE_MAX	4096		/* bytes per line, without the newline */
#define CONFIG_FILE_MAX	(1024 * 1024)	/* bytes per file */
#define CONFIG_SHOW_MAX	64		/* bytes of a bad key shown in a cause */

/* How a value is stored: chosen from the field's C type by _Generic. */
enum config_storage {
	CONFIG_STRING,		/* char *, owned; NULL = unset */
	CONFIG_INT,		/* int */
	CONFIG_LONG,		/* long */
	CONFIG_LLONG,		/* long long */
	CONFIG_SIZE,		/* size_t */
};

#define CONFIG_ZERO_OK	0x01	/* 0 is accepted besides [min, max] ("off") */
#define CONFIG_SUFFIX	0x02	/* k kb m mb g gb multipliers, as redis.conf */
#define CONFIG_UNSET_OK	0x04	/* "" leaves the string unset (NULL) */
#define CONFIG_SECRET	0x08	/* may embed a password: config_dump hides it */

struct config_key {
	const char		*name;		/* file key; FASTAUTH_<NAME> in the environment */
	enum config_storage	 storage;
	size_t			 off;		/* offsetof(struct config, field) */
	const char		*def;		/* default as file text; NULL = unset */
	long long		 min, max;	/* numbers: accepted range */
	int			 flags;		/* CONFIG_* above */
	/* strings: check (and normalise in place); NULL or the reason */
	const char		*(*check)(char *);
	/* enumerations: names indexed by stored value, NULL-terminated */
	const char *const	*names;
	/* enumerations: name to value, -1 if unknown; NULL = search names */
	int			(*parse)(const char *);
};

static const char *config_check_issuer(char *);
static const char *config_check_listen(char *);
static const char *config_check_instance(char *);
static const char *config_check_redis_url(char *);
static const char *config_check_prefix(char *);
static const char *config_check_path(char *);
static const char *config_check_audit(char *);
static const char *config_check_ratelimit(char *);
static const char *config_check_sentinels(char *);
static const char *config_check_cidrs(char *);

static const char *const config_log_levels[] = {
	"err", "warn", "info", "debug", NULL	/* enum log_level order */
};
static const char *const config_log_targets[] = { "stderr", "syslog", NULL };
static const char *const config_fastcgi_roles[] = {
	"both", "responder", "authorizer", NULL	/* enum config_roles order */
};

#define CONFIG_FIELD(f) (((struct config *)0)->f)
#define CONFIG_STORAGE(f) _Generic(CONFIG_FIELD(f),			\
	char *: CONFIG_STRING, int: CONFIG_INT, long: CONFIG_LONG,	\
	long long: CONFIG_LLONG, size_t: CONFIG_SIZE)
#define CONFIG_STR(f, d, chk, fl) { .name = #f,				\
	.storage = CONFIG_STORAGE(f), .off = offsetof(struct config, f),\
	.def = d, .check = chk, .flags = fl }
#define CONFIG_NUM(f, d, lo, hi, fl) { .name = #f,			\
	.storage = CONFIG_STORAGE(f), .off = offsetof(struct config, f),\
	.def = d, .min = lo, .max = hi, .flags = fl }
#define CONFIG_ENUM(n, f, d, nm, fn) { .name = n,			\
	.storage = CONFIG_STORAGE(f), .off = offsetof(struct config, f),\
	.def = d, .names = nm, .parse = fn }

static const struct config_key config_keys[] = {
	CONFIG_STR(issuer, "http://127.0.0.1:8080", config_check_issuer, 0),
	CONFIG_STR(listen, NULL, config_check_listen, CONFIG_UNSET_OK),
	CONFIG_NUM(processes, "2", 1, 256, 0),
	CONFIG_NUM(threads, "4", 1, 256, 0),
	CONFIG_STR(instance, "default", config_check_instance, 0),
	CONFIG_ENUM("log_level", log_level, "info", config_log_levels,
	    log_level_parse),
	CONFIG_ENUM("log_target", log_syslog, "stderr", config_log_targets, NULL),
	CONFIG_NUM(drain_timeout_ms, "10000", 100, 600000, 0),
	CONFIG_STR(redis_url, "redis://127.0.0.1:6379/0", config_check_redis_url,
	    CONFIG_SECRET),
	CONFIG_STR(redis_prefix, "fastauth:", config_check_prefix, 0),
	CONFIG_NUM(redis_connect_timeout_ms, "250", 1, 60000, 0),
	CONFIG_NUM(redis_command_timeout_ms, "500", 1, 60000, 0),
	CONFIG_NUM(redis_backoff_min_ms, "100", 1, 60000, 0),
	CONFIG_NUM(redis_backoff_max_ms, "5000", 1, 600000, 0),
	CONFIG_STR(kek_file, SYSCONFDIR "/fastauth/kek", config_check_path, 0),
	CONFIG_NUM(access_token_ttl, "3600", 1, 86400, 0),
	CONFIG_NUM(key_rotate_after, "86400", 60, 31536000, CONFIG_ZERO_OK),
	/* NIST SP 800-38D: fewer than 2^32 seals per key with random nonces. */
	CONFIG_NUM(key_rotate_after_seals, "1073741824", 1000, 4294967295LL, 0),
	CONFIG_NUM(key_refresh_interval, "5", 1, 3600, 0),
	CONFIG_NUM(max_body_size, "16384", 1024, 16777216, CONFIG_SUFFIX),
	CONFIG_NUM(max_form_params, "32", 1, 1024, 0),
	CONFIG_NUM(discovery_max_age, "3600", 0, 604800, 0),
	CONFIG_NUM(argon2_memory_kib, "19456", 8, 4194304, 0),
	CONFIG_NUM(argon2_iterations, "2", 1, 16, 0),
	CONFIG_NUM(argon2_parallelism, "1", 1, 8, 0),
	CONFIG_NUM(password_max_length, "1024", 16, 65536, 0),
	CONFIG_NUM(argon2_max_concurrent, "0", 1, 256, CONFIG_ZERO_OK),
	CONFIG_NUM(argon2_wait_ms, "2000", 0, 60000, 0),
	CONFIG_NUM(refresh_token_idle_ttl, "1209600", 60, 31536000, 0),
	CONFIG_NUM(refresh_token_absolute_ttl, "2592000", 60, 31536000, 0),
	CONFIG_NUM(refresh_token_grace, "0", 0, 300, 0),
	CONFIG_NUM(login_max_failures, "5", 1, 1000, 0),
	CONFIG_NUM(login_failure_window, "900", 1, 86400, 0),
	CONFIG_NUM(login_lock_seconds, "900", 1, 86400, 0),
	CONFIG_NUM(login_delay_base_ms, "250", 0, 60000, 0),
	CONFIG_NUM(login_delay_max_ms, "4000", 0, 600000, 0),
	CONFIG_NUM(login_max_failures_per_address, "100", 1, 100000, 0),
	CONFIG_STR(audit_log, "syslog", config_check_audit, 0),
	CONFIG_NUM(shm_ratelimit_entries, "524288", 8, 67108864, 0),
	CONFIG_NUM(shm_cache_entries, "16384", 8, 16777216, 0),
	CONFIG_NUM(shm_cache_value_max, "512", 64, 65536, 0),
	CONFIG_NUM(cache_client_ttl, "60", 1, 86400, 0),
	CONFIG_NUM(cache_negative_ttl, "2", 1, 3600, 0),
	CONFIG_NUM(cache_revocation_ttl, "300", 1, 86400, 0),
	CONFIG_STR(ratelimit_token, "1000/1s burst 2000 by client", config_check_ratelimit, 0),
	CONFIG_STR(ratelimit_introspect, "50000/1s burst 100000 by client", config_check_ratelimit, 0),
	CONFIG_STR(ratelimit_revoke, "1000/1s burst 2000 by client", config_check_ratelimit, 0),
	CONFIG_STR(ratelimit_userinfo, "500/1s burst 1000 by address", config_check_ratelimit, 0),
	CONFIG_STR(ratelimit_login, "30/60s burst 30 by address", config_check_ratelimit, 0),
	/* the FastCGI Authorizer role (endpoints/ep_authorizer.c) */
	CONFIG_ENUM("fastcgi_roles", fastcgi_roles, "both", config_fastcgi_roles, NULL),
	CONFIG_STR(ratelimit_authorizer, "50000/1s burst 100000 by client",
	    config_check_ratelimit, 0),
	/* resilience (fastauth(8), "Running Redis") */
	CONFIG_STR(redis_sentinels, NULL, config_check_sentinels, CONFIG_UNSET_OK),
	CONFIG_STR(redis_master_name, "mymaster", config_check_prefix, 0),
	CONFIG_NUM(redis_breaker_failures, "5", 1, 1000, CONFIG_ZERO_OK),
	CONFIG_NUM(redis_breaker_window, "10", 1, 3600, 0),
	CONFIG_NUM(redis_breaker_cooldown, "2", 1, 3600, 0),
	CONFIG_NUM(redis_read_retries, "2", 0, 5, 0),
	CONFIG_NUM(redis_wait_replicas, "0", 0, 16, 0),
	CONFIG_NUM(redis_wait_timeout, "100", 1, 60000, 0),
	CONFIG_NUM(revocation_grace, "0", 0, 300, 0),
	CONFIG_NUM(listen_backlog, "1024", 16, 65535, 0),
	/* observability: metrics slots, GET /metrics access, anomaly detection */
	CONFIG_NUM(shm_metrics_slots, "64", 1, 4096, 0),
	CONFIG_NUM(shm_anomaly_entries, "4096", 16, 1048576, 0),
	CONFIG_STR(metrics_allow, "127.0.0.1/32 ::1/128", config_check_cidrs,
	    CONFIG_UNSET_OK),
	CONFIG_STR(metrics_token_file, NULL, config_check_path, CONFIG_UNSET_OK),
	CONFIG_NUM(anomaly_window, "60", 1, 3600, 0),
	CONFIG_NUM(anomaly_invalid_tokens, "100", 1, 10000000, CONFIG_ZERO_OK),
	CONFIG_NUM(anomaly_client_auth_failures, "30", 1, 10000000, CONFIG_ZERO_OK),
	CONFIG_NUM(anomaly_login_failures, "30", 1, 10000000, CONFIG_ZERO_OK),
	CONFIG_NUM(anomaly_suspect_seconds, "600", 1, 86400, 0),
	CONFIG_STR(anomaly_throttle, "off", config_check_ratelimit, 0),
	CONFIG_NUM(latency_anomaly_factor, "4", 2, 1000, CONFIG_ZERO_OK),
	CONFIG_NUM(latency_anomaly_floor_ms, "50", 0, 60000, 0),
	CONFIG_NUM(latency_anomaly_min_requests, "50", 1, 10000000, 0),
	CONFIG_NUM(latency_anomaly_interval, "10", 1, 3600, 0),
	/* batch introspection (an extension: POST .../introspect/batch) */
	CONFIG_NUM(introspect_batch_max, "100", 1, 10000, 0),
	/* delayed 429s (server/tarpit.c) */
	CONFIG_NUM(ratelimit_tarpit_ms, "500", 1, 60000, CONFIG_ZERO_OK),
	CONFIG_NUM(ratelimit_tarpit_max, "256", 1, 65536, 0),
};
#define CONFIG_NKEYS (sizeof config_keys / sizeof config_keys[0])

/* --- values ------------------------------------------------------------- */

/* Free a string value of key k, wiping it first if it may hold a password. */
static void
config_free_string(const struct config_key *k, char *s)
{
	if (s != NULL && (k->flags & CONFIG_SECRET))
		explicit_bzero(s, strlen(s));
	free(s);
}

static void *
config_field(const struct config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->off;
}

static void
config_store_num(struct config *cfg, const struct config_key *k, long long v)
{
	void *p = config_field(cfg, k);

	/* v is within the key's range, which fits the field's type. */
	switch (k->storage) {
	case CONFIG_INT:
		*(int *)p = (int)v;
		break;
	case CONFIG_LONG:
		*(long *)p = (long)v;
		break;
	case CONFIG_LLONG:
		*(long long *)p = v;
		break;
	case CONFIG_SIZE:
		*(size_t *)p = (size_t)v;
		break;
	case CONFIG_STRING:
		abort();
	}
}

static long long
config_load_num(const struct config *cfg, const struct config_key *k)
{
	const void *p = config_field(cfg, k);

	switch (k->storage) {
	case CONFIG_INT:
		return *(const int *)p;
	case CONFIG_LONG:
		return *(const long *)p;
	case CONFIG_LLONG:
		return *(const long long *)p;
	case CONFIG_SIZE:
		return (long long)*(const size_t *)p;
	case CONFIG_STRING:
		break;
	}
	abort();
}

/*
 * Parse a decimal integer, strictly: an optional '-', digits, and (with
 * CONFIG_SUFFIX) one multiplier, nothing else. FA_OK, or FA_ERR with *reason.
 */
static int
config_parse_num(const char *s, int flags, long long *out, const char **reason)
{
	static const struct {
		const char	*suffix;
		long long	 mult;
	} mults[] = {
		/* redis.conf: "1k" is 1000 bytes, "1kb" is 1024. */
		{ "k", 1000LL }, { "kb", 1024LL },
		{ "m", 1000LL * 1000 }, { "mb", 1024LL * 1024 },
		{ "g", 1000LL * 1000 * 1000 }, { "gb", 1024LL * 1024 * 1024 },
	};
	const char *p = s;
	long long v = 0;
	int neg = 0;
	size_t i;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (!isdigit((unsigned char)*p))
		goto notnum;
	for (; isdigit((unsigned char)*p); p++) {
		int d = *p - '0';

		if (v > (LLONG_MAX - d) / 10)
			goto range;
		v = v * 10 + d;
	}
	if (*p != '\0') {
		if (!(flags & CONFIG_SUFFIX))
			goto notnum;
		for (i = 0; i < sizeof mults / sizeof mults[0]; i++)
			if (strcasecmp(p, mults[i].suffix) == 0)
				break;
		if (i == sizeof mults / sizeof mults[0])
			goto notnum;
		if (v > LLONG_MAX / mults[i].mult)
			goto range;
		v *= mults[i].mult;
	}
	*out = neg ? -v : v;
	return FA_OK;

notnum:
	*reason = (flags & CONFIG_SUFFIX) ?
	    "not a size (an integer, optionally with k, kb, m, mb, g or gb)" :
	    "not an integer";
	return FA_ERR;
range:
	*reason = "out of range";
	return FA_ERR;
}

/*
 * Set key k from text. NULL on success, else the reason (caller frees); the
 * field keeps its old value on failure.
 */
static char *
config_apply(struct config *cfg, const struct config_key *k, const char *value)
{
	const char *reason = NULL;
	long long v;
	size_t i;

	if (k->names != NULL) {
		int e = k->parse != NULL ? k->parse(value) : -1;

		for (i = 0; k->parse == NULL && k->names[i] != NULL; i++)
			if (strcmp(value, k->names[i]) == 0)
				e = (int)i;
		if (e < 0) {
			struct buf b = BUF_INIT;

			buf_puts(&b, "must be one of");
			for (i = 0; k->names[i] != NULL; i++)
				buf_printf(&b, "%s %s", i == 0 ? "" : ",",
				    k->names[i]);
			return b.data;
		}
		config_store_num(cfg, k, e);
		return NULL;
	}

	if (k->storage == CONFIG_STRING) {
		char **field = config_field(cfg, k), *copy;
		const unsigned char *p;

		if (*value == '\0' && (k->flags & CONFIG_UNSET_OK)) {
			config_free_string(k, *field);
			*field = NULL;
			return NULL;
		}
		/* config_dump writes one line per key; paths need no controls. */
		for (p = (const unsigned char *)value; *p != '\0'; p++)
			if (*p < 0x20 || *p == 0x7f)
				return xstrdup("contains a control character");
		copy = xstrdup(value);
		if (k->check != NULL && (reason = k->check(copy)) != NULL) {
			config_free_string(k, copy);
			return xstrdup(reason);
		}
		config_free_string(k, *field);
		*field = copy;
		return NULL;
	}

	if (config_parse_num(value, k->flags, &v, &reason) != FA_OK)
		return xstrdup(reason);
	if ((v < k->min || v > k->max) && !(v == 0 && (k->flags & CONFIG_ZERO_OK)))
		return xasprintf("out of range (%lld to %lld%s)", k->min, k->max,
		    (k->flags & CONFIG_ZERO_OK) ? ", or 0" : "");
	config_store_num(cfg, k, v);
	return NULL;
}

/* --- string checkers: NULL if fine, else why not ------------------------- */

static const char *
config_check_issuer(char *s)
{
	char *host, *end;
	size_t n;

	if (strncasecmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return "must be an absolute http:// or https:// URL";
	if (strpbrk(s, "?#") != NULL)
		return "must not have a query or fragment";
	if (strchr(s, ' ') != NULL)
		return "must not contain spaces";
	end = host + strcspn(host, "/");
	if (end == host)
		return "has no host";
	if (memchr(host, '@', (size_t)(end - host)) != NULL)
		return "must not contain user information";
	/* Endpoint URLs are issuer + "/token": keep one slash between. */
	for (n = strlen(s); n > (size_t)(end - s) && s[n - 1] == '/'; n--)
		s[n - 1] = '\0';
	return NULL;
}

static const char *
config_check_listen(char *s)
{
	char *colon, *p;
	long port = 0;

	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/')
			return "unix socket path must be absolute";
		/* sizeof(struct sockaddr_un.sun_path) is 108 on Linux. */
		if (strlen(s + 5) > 107)
			return "unix socket path longer than 107 bytes";
		return NULL;
	}
	if (strchr(s, ' ') != NULL)
		return "must not contain spaces";
	if ((colon = strrchr(s, ':')) == NULL)
		return "must be unix:/path or host:port";
	if (colon == s)
		return "has no host";
	if (*s == '[' ? colon[-1] != ']' || colon - s < 3 :
	    memchr(s, ':', (size_t)(colon - s)) != NULL)
		return "an IPv6 address must be in brackets: [::1]:port";
	if (colon[1] == '\0')
		return "has no port";
	for (p = colon + 1; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return "port is not a number";
		if ((port = port * 10 + (*p - '0')) > 65535)
			return "port out of range (1 to 65535)";
	}
	if (port == 0)
		return "port out of range (1 to 65535)";
	return NULL;
}

static const char *
config_check_instance(char *s)
{
	size_t n = strlen(s);

	/* It names the shared memory segment (/fastauth.<instance>) and logs. */
	if (n < 1 || n > 32 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return "must be 1 to 32 characters of A-Z a-z 0-9 _ -";
	return NULL;
}

static const char *
config_check_redis_url(char *s)
{
	if (strchr(s, ' ') != NULL)
		return "must not contain spaces";
	if (strncmp(s, "redis://", 8) == 0)
		return s[8] == '\0' ? "has no host" : NULL;
	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '\0' ? "has no path" : NULL;
	return "must start with redis:// or unix:";
}

static const char *
config_check_prefix(char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64 || strchr(s, ' ') != NULL)
		return "must be 1 to 64 characters without spaces";
	return NULL;
}

static const char *
config_check_path(char *s)
{
	return *s == '\0' ? "must not be empty" : NULL;
}

/* A parser's allocated cause as a check's static reason (cause is freed). */
static const char *
config_cause(char *cause)
{
	static char why[200];

	snprintf(why, sizeof why, "%s", cause != NULL ? cause : "invalid");
	free(cause);
	return why;
}

static const char *
config_check_ratelimit(char *s)
{
	struct ratespec spec;
	char *cause = NULL;

	return ratespec_parse(s, &spec, &cause) == FA_OK ? NULL : config_cause(cause);
}

/* host:port[,host:port...]; [v6]:port allowed; at most 16. */
static const char *
config_check_sentinels(char *s)
{
	const char *p = s, *end, *colon;
	int n = 0;

	while (*p != '\0') {
		end = p + strcspn(p, ",");
		colon = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ':')
				colon = q;
		if (colon == NULL || colon == p || colon + 1 == end ||
		    (size_t)(end - colon - 1) != strspn(colon + 1, "0123456789") ||
		    end - colon - 1 > 5 || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
			return "must be a comma-separated list of host:port";
		if (memchr(p, ' ', (size_t)(end - p)) != NULL)
			return "must not contain spaces";
		if (++n > 16)
			return "at most 16 sentinels";
		p = *end == ',' ? end + 1 : end;
	}
	return n == 0 ? "must name at least one sentinel" : NULL;
}

static const char *
config_check_cidrs(char *s)
{
	struct cidr_list l;
	char *cause = NULL;

	return cidr_list_parse(s, &l, &cause) == FA_OK ? NULL : config_cause(cause);
}

static const char *
config_check_audit(char *s)
{
	if (strcmp(s, "syslog") == 0)
		return NULL;
	return *s == '/' ? NULL : "must be \"syslog\" or an absolute file path";
}

/* --- the public interface ------------------------------------------------- */

static const struct config_key *
config_find(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (strlen(config_keys[i].name) == n &&
		    memcmp(config_keys[i].name, name, n) == 0)
			return &config_keys[i];
	return NULL;
}

/* Copy up to CONFIG_SHOW_MAX bytes of untrusted text for a cause: no controls. */
static void
config_show(const char *s, size_t n, char out[CONFIG_SHOW_MAX + 4])
{
	size_t i;

	for (i = 0; i < n && i < CONFIG_SHOW_MAX; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (n > CONFIG_SHOW_MAX) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

struct config *
config_new(void)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		char *reason;

		if (config_keys[i].def == NULL)
			continue;
		/* A default that does not parse is a bug in the table. */
		if ((reason = config_apply(cfg, &config_keys[i],
		    config_keys[i].def)) != NULL) {
			fprintf(stderr, "config: default of %s: %s\n",
			    config_keys[i].name, reason);
			abort();
		}
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].storage == CONFIG_STRING)
			config_free_string(&config_keys[i],
			    *(char **)config_field(cfg, &config_keys[i]));
	free(cfg);
}

int
config_set(struct config *cfg, const char *key, const char *value,
    char **cause)
{
	const struct config_key *k = config_find(key, strlen(key));
	char *reason;

	if (k == NULL) {
		*cause = xasprintf("%s: unknown key", key);
		return FA_ERR;
	}
	if ((reason = config_apply(cfg, k, value)) != NULL) {
		*cause = xasprintf("%s: %s", key, reason);
		free(reason);
		return FA_ERR;
	}
	return FA_OK;
}

static int
config_isspace(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Take the value starting at p (line end at end) into out (end - p + 1
 * bytes): a double-quoted string with \" and \\, or a run of non-blanks;
 * only blanks may follow. NULL, or the reason it is malformed.
 */
static const char *
config_value(const char *p, const char *end, char *out)
{
	if (*p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\') {
				if (++p == end)
					break;
				if (*p != '"' && *p != '\\')
					return "bad escape in quoted value (only \\\" and \\\\)";
			}
			*out++ = *p;
		}
		if (p == end)
			return "unterminated quoted value";
		p++;
	} else {
		while (p < end && !config_isspace(*p))
			*out++ = *p++;
	}
	*out = '\0';
	while (p < end && config_isspace(*p))
		p++;
	if (p != end)
		return "unexpected text after the value (quote values with spaces)";
	return NULL;
}

int
config_load_buffer(struct config *cfg, const char *name, const char *data,
    size_t len, char **cause)
{
	char seen[CONFIG_NKEYS], show[CONFIG_SHOW_MAX + 4];
	char value[CONFIG_LINE_MAX + 1];	/* may hold a Redis password */
	size_t pos = 0, lineno = 0;
	int rc = FA_ERR;

	memset(seen, 0, sizeof seen);
	while (pos < len) {
		const char *line = data + pos, *eol, *p, *end, *key, *why;
		const struct config_key *k;
		size_t linelen, keylen;
		char *reason;

		lineno++;
		eol = memchr(line, '\n', len - pos);
		linelen = eol != NULL ? (size_t)(eol - line) : len - pos;
		pos += linelen + (eol != NULL);
		if (linelen > CONFIG_LINE_MAX) {
			*cause = xasprintf("%s:%zu: line longer than %d bytes",
			    name, lineno, CONFIG_LINE_MAX);
			goto out;
		}
		if (memchr(line, '\0', linelen) != NULL) {
			*cause = xasprintf("%s:%zu: NUL byte", name, lineno);
			goto out;
		}
		end = line + linelen;
		for (p = line; p < end && config_isspace(*p); p++)
			;
		if (p == end || *p == '#')
			continue;

		for (key = p; p < end && !config_isspace(*p); p++)
			;
		keylen = (size_t)(p - key);
		config_show(key, keylen, show);
		if ((k = config_find(key, keylen)) == NULL) {
			*cause = xasprintf("%s:%zu: %s: unknown key", name,
			    lineno, show);
			goto out;
		}
		if (seen[k - config_keys]) {
			*cause = xasprintf("%s:%zu: %s: repeated key", name,
			    lineno, show);
			goto out;
		}
		seen[k - config_keys] = 1;

		while (p < end && config_isspace(*p))
			p++;
		if (p == end) {
			*cause = xasprintf("%s:%zu: %s: missing value", name,
			    lineno, show);
			goto out;
		}
		if ((why = config_value(p, end, value)) != NULL) {
			*cause = xasprintf("%s:%zu: %s: %s", name, lineno, show,
			    why);
			goto out;
		}
		if ((reason = config_apply(cfg, k, value)) != NULL) {
			*cause = xasprintf("%s:%zu: %s: %s", name, lineno, show,
			    reason);
			free(reason);
			goto out;
		}
	}
	rc = FA_OK;
out:
	explicit_bzero(value, sizeof value);
	return rc;
}

int
config_load_file(struct config *cfg, const char *path, char **cause)
{
	struct buf b = BUF_INIT;
	struct stat st;
	ssize_t n;
	int fd, rc = FA_ERR, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("%s: fstat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = xasprintf("%s: not a regular file", path);
		goto out;
	}
	/* Read to EOF rather than trusting st_size, which may change under us. */
	for (;;) {
		char *dst = buf_reserve(&b, 65536);

		if ((n = read(fd, dst, 65536)) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		buf_commit(&b, (size_t)n);
		if (b.len > CONFIG_FILE_MAX) {
			*cause = xasprintf("%s: larger than %d bytes", path,
			    CONFIG_FILE_MAX);
			goto out;
		}
	}
	rc = config_load_buffer(cfg, path, b.data, b.len, cause);
out:
	saved = errno;
	if (fd != -1)
		close(fd);
	buf_wipe(&b);	/* the text may hold a Redis password */
	errno = saved;
	return rc;
}

/*
 * The variables fastauth's Authorizer gives protected applications, and the
 * one a web server gives the Authorizer (ep_authorizer.h). They are request
 * variables, not configuration: a protected CGI script that runs fastauthctl
 * has them in its environment, and must not be refused for it.
 */
static int
config_request_variable(const char *name, size_t len)
{
	static const char *const vars[] = {
		"FASTAUTH_SUB", "FASTAUTH_CLIENT_ID", "FASTAUTH_SCOPE",
		"FASTAUTH_EXP", "FASTAUTH_REQUIRED_SCOPE",
	};
	size_t i;

	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (strlen(vars[i]) == len && memcmp(vars[i], name, len) == 0)
			return 1;
	return 0;
}

int
config_load_env(struct config *cfg, char **envp, char **cause)
{
	static const char prefix[] = "FASTAUTH_";
	const size_t plen = sizeof prefix - 1;
	char show[CONFIG_SHOW_MAX + 4], *reason;
	const struct config_key *k;
	int have_fa_redis = 0;
	char **e;

	if (envp == NULL)
		envp = environ;
	/* REDIS_URL (Heroku, Docker conventions) yields to FASTAUTH_REDIS_URL. */
	for (e = envp; *e != NULL; e++)
		if (strncmp(*e, "FASTAUTH_REDIS_URL=", 19) == 0)
			have_fa_redis = 1;

	for (e = envp; *e != NULL; e++) {
		const char *eq = strchr(*e, '='), *sfx;
		size_t namelen, i;

		if (eq == NULL)
			continue;
		namelen = (size_t)(eq - *e);
		config_show(*e, namelen, show);
		if (namelen == 9 && strncmp(*e, "REDIS_URL", 9) == 0) {
			if (have_fa_redis)
				continue;
			k = config_find("redis_url", 9);
		} else {
			if (namelen < plen || strncmp(*e, prefix, plen) != 0)
				continue;
			sfx = *e + plen;
			if (namelen - plen == 4 && strncmp(sfx, "CONF", 4) == 0)
				continue;	/* the file's path, for the caller */
			if (config_request_variable(*e, namelen))
				continue;
			for (k = NULL, i = 0; k == NULL && i < CONFIG_NKEYS; i++) {
				const char *kn = config_keys[i].name;
				size_t j;

				if (strlen(kn) != namelen - plen)
					continue;
				for (j = 0; j < namelen - plen; j++)
					if (sfx[j] != toupper((unsigned char)kn[j]))
						break;
				if (j == namelen - plen)
					k = &config_keys[i];
			}
			if (k == NULL) {
				*cause = xasprintf("environment: %s: unknown "
				    "variable", show);
				return FA_ERR;
			}
		}
		if ((reason = config_apply(cfg, k, eq + 1)) != NULL) {
			*cause = xasprintf("environment: %s: %s", show, reason);
			free(reason);
			return FA_ERR;
		}
	}
	return FA_OK;
}

int
config_validate(const struct config *cfg, char **cause)
{
	if (cfg->redis_backoff_min_ms > cfg->redis_backoff_max_ms) {
		*cause = xasprintf("redis_backoff_min_ms (%ld) is greater than "
		    "redis_backoff_max_ms (%ld)", cfg->redis_backoff_min_ms,
		    cfg->redis_backoff_max_ms);
		return FA_ERR;
	}
	/*
	 * A process seals with the newest key it has loaded; if it reloads
	 * less often than keys rotate it keeps sealing with retired keys.
	 */
	if (cfg->key_rotate_after != 0 &&
	    cfg->key_refresh_interval >= cfg->key_rotate_after) {
		*cause = xasprintf("key_refresh_interval (%ld) must be shorter "
		    "than key_rotate_after (%ld)", cfg->key_refresh_interval,
		    cfg->key_rotate_after);
		return FA_ERR;
	}
	if (cfg->login_delay_base_ms > cfg->login_delay_max_ms) {
		*cause = xasprintf("login_delay_base_ms (%ld) is greater than "
		    "login_delay_max_ms (%ld)", cfg->login_delay_base_ms,
		    cfg->login_delay_max_ms);
		return FA_ERR;
	}
	if (cfg->refresh_token_idle_ttl > cfg->refresh_token_absolute_ttl) {
		*cause = xasprintf("refresh_token_idle_ttl (%ld) is longer than "
		    "refresh_token_absolute_ttl (%ld)", cfg->refresh_token_idle_ttl,
		    cfg->refresh_token_absolute_ttl);
		return FA_ERR;
	}
	if (cfg->redis_wait_replicas > 0 &&
	    cfg->redis_wait_timeout >= cfg->redis_command_timeout_ms) {
		*cause = xasprintf("redis_wait_timeout (%ld) must be shorter than "
		    "redis_command_timeout_ms (%ld)", cfg->redis_wait_timeout,
		    cfg->redis_command_timeout_ms);
		return FA_ERR;
	}
	if (cfg->redis_sentinels != NULL && cfg->redis_url != NULL &&
	    strncmp(cfg->redis_url, "redis://", 8) != 0) {
		*cause = xstrdup("redis_sentinels needs a redis:// redis_url (its "
		    "password and db are used, its host is replaced by the master's)");
		return FA_ERR;
	}
	if (cfg->issuer == NULL || cfg->redis_url == NULL ||
	    cfg->redis_prefix == NULL || cfg->instance == NULL ||
	    cfg->kek_file == NULL) {
		*cause = xstrdup("a required string is unset");
		return FA_ERR;
	}
	return FA_OK;
}

const char *
config_key_name(size_t i)
{
	return i < CONFIG_NKEYS ? config_keys[i].name : NULL;
}

/* A URL with user information or a password parameter carries a secret. */
static int
config_has_secret(const char *s)
{
	return strchr(s, '@') != NULL || strstr(s, "password") != NULL;
}

void
config_dump(const struct config *cfg, struct buf *b)
{
	size_t i;

	buf_puts(b, "# fastauth configuration: every key and its value\n");
	for (i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		const char *s;

		if (k->names != NULL) {
			long long v = config_load_num(cfg, k), j;

			for (j = 0; j < v && k->names[j] != NULL; j++)
				;
			/* A value set behind our back is shown, not indexed. */
			if (v >= 0 && k->names[j] != NULL)
				buf_printf(b, "%s %s\n", k->name, k->names[v]);
			else
				buf_printf(b, "# %s %lld is not valid\n",
				    k->name, v);
		} else if (k->storage != CONFIG_STRING)
			buf_printf(b, "%s %lld\n", k->name, config_load_num(cfg, k));
		else if ((s = *(char **)config_field(cfg, k)) == NULL)
			buf_printf(b, "%s \"\"\n", k->name);
		else if ((k->flags & CONFIG_SECRET) && config_has_secret(s))
			buf_printf(b, "# %s not shown: it holds a password\n",
			    k->name);
		else {
			buf_printf(b, "%s \"", k->name);
			for (; *s != '\0'; s++) {
				if (*s == '"' || *s == '\\')
					buf_putc(b, '\\');
				buf_putc(b, *s);
			}
			buf_puts(b, "\"\n");
		}
	}
}

struct config *
config_load(const char *path, int must_exist, char **cause)
{
	struct config *cfg = config_new();

	if (path != NULL && (must_exist || access(path, F_OK) == 0) &&
	    config_load_file(cfg, path, cause) != FA_OK)
		goto fail;
	if (config_load_env(cfg, NULL, cause) != FA_OK)
		goto fail;
	if (config_validate(cfg, cause) != FA_OK)
		goto fail;
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}
