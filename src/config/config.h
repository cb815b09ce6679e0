/*
 * config.h -- fastauth configuration: defaults, then the file
 * (/etc/fastauth/fastauth.conf or -c FILE), then FASTAUTH_<KEY> environment
 * variables (REDIS_URL is an alias of FASTAUTH_REDIS_URL).
 *
 * File syntax, as redis.conf: one "key value" per line, '#' starts a comment
 * line, a value may be double-quoted (with \" and \\ escapes). An unknown key,
 * a repeated key or a bad value is an error naming file, line and key.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>

struct buf;

struct config {
	/* service */
	char	*issuer;		/* issuer URL, no trailing slash; endpoint URLs derive from it */
	char	*listen;		/* standalone: "unix:/path" or "host:port"; NULL = spawned */
	int	 processes;		/* standalone worker processes */
	int	 threads;		/* request threads per process */
	char	*instance;		/* instance name (shared memory, logs) */
	int	 log_level;		/* enum log_level */
	int	 log_syslog;		/* 1 = syslog, 0 = stderr */
	long	 drain_timeout_ms;	/* SIGTERM: how long in-flight requests may take */
	/* redis */
	char	*redis_url;		/* redis://[:password@]host[:port][/db] or unix:/path[?db=N] */
	char	*redis_prefix;		/* key prefix, "fastauth:" */
	long	 redis_connect_timeout_ms;
	long	 redis_command_timeout_ms;
	long	 redis_backoff_min_ms;	/* first reconnect delay; doubles with jitter */
	long	 redis_backoff_max_ms;
	/* keys and tokens */
	char	*kek_file;		/* key-encryption key, mode 0600 */
	long	 access_token_ttl;	/* seconds */
	long	 key_rotate_after;	/* seconds; 0 = only by seal count or by hand */
	long long key_rotate_after_seals; /* < 2^32 (NIST SP 800-38D, random nonces) */
	long	 key_refresh_interval;	/* seconds between key-list reloads */
	/* requests */
	size_t	 max_body_size;		/* bytes; larger bodies get 413 */
	int	 max_form_params;	/* parameters per form body */
	long	 discovery_max_age;	/* seconds, Cache-Control of the metadata */
	/* users and passwords */
	long	 argon2_memory_kib;	/* Argon2id m */
	int	 argon2_iterations;	/* Argon2id t */
	int	 argon2_parallelism;	/* Argon2id p */
	size_t	 password_max_length;	/* bytes; longer passwords get 400, no hash */
	int	 argon2_max_concurrent;	/* host-wide hashes at once; 0 = number of cores */
	long	 argon2_wait_ms;	/* wait for a slot before 503 */
	long	 refresh_token_idle_ttl;	/* seconds without use before a refresh token dies */
	long	 refresh_token_absolute_ttl;	/* seconds from the login, whatever the use */
	long	 refresh_token_grace;	/* seconds a just-rotated token may be repeated once */
	int	 login_max_failures;	/* per username, within login_failure_window */
	long	 login_failure_window;	/* seconds */
	long	 login_lock_seconds;	/* temporary lock after login_max_failures */
	long	 login_delay_base_ms;	/* progressive delay: base * 2^(failures-1) */
	long	 login_delay_max_ms;
	int	 login_max_failures_per_address; /* per client address, same window */
	char	*audit_log;		/* "syslog" (authpriv) or a file path */
	/* shared memory (one segment per instance and host) */
	long	 shm_ratelimit_entries;	/* limiter slots */
	long	 shm_cache_entries;	/* L1 cache slots */
	long	 shm_cache_value_max;	/* bytes of one cached value */
	/* L1 cache lifetimes, seconds */
	long	 cache_client_ttl;	/* a client record */
	long	 cache_negative_ttl;	/* "no such client" */
	long	 cache_revocation_ttl;	/* "not revoked" (while the mirror is in sync) */
	/* rate limits: "off" or "N/PERIOD [burst B] [by client|address|username] [cluster]" */
	char	*ratelimit_token;
	char	*ratelimit_introspect;
	char	*ratelimit_revoke;
	char	*ratelimit_userinfo;
	char	*ratelimit_login;	/* counts failed logins only */
	/* batch introspection */
	int	 introspect_batch_max;	/* tokens per POST .../introspect/batch */
	/* observability */
	long	 shm_metrics_slots;	/* processes with a metrics slot */
	long	 shm_anomaly_entries;	/* addresses the detector tracks */
	char	*metrics_allow;		/* addresses/CIDRs that may GET /metrics; NULL = any */
	char	*metrics_token_file;	/* file holding the bearer token for /metrics; NULL = none */
	long	 anomaly_window;	/* seconds of the sliding window */
	long	 anomaly_invalid_tokens;	/* per address and window; 0 = off */
	long	 anomaly_client_auth_failures;
	long	 anomaly_login_failures;
	long	 anomaly_suspect_seconds;	/* an alarmed address stays suspect this long */
	char	*anomaly_throttle;	/* rate-limit policy for suspect addresses, or "off" */
	long	 latency_anomaly_factor;	/* p95 above factor x baseline; 0 = off */
	long	 latency_anomaly_floor_ms;	/* and above this */
	long	 latency_anomaly_min_requests;	/* per evaluation window */
	long	 latency_anomaly_interval;	/* seconds between evaluations */
	/* resilience: Sentinel, circuit breaker, retries, replication */
	char	*redis_sentinels;	/* "host:port,..." or NULL (redis_url names the server) */
	char	*redis_master_name;	/* the master's name at the sentinels */
	int	 redis_breaker_failures;	/* failures within the window that open it; 0 = off */
	long	 redis_breaker_window;	/* seconds */
	long	 redis_breaker_cooldown;	/* seconds open before the half-open probe */
	int	 redis_read_retries;	/* extra attempts of an idempotent read */
	int	 redis_wait_replicas;	/* WAIT after must-survive writes; 0 = off */
	long	 redis_wait_timeout;	/* ms, < redis_command_timeout_ms */
	long	 revocation_grace;	/* seconds the L1 may vouch after the mirror lost sync */
	int	 listen_backlog;	/* standalone: pending connections (capped by somaxconn) */
	/* the FastCGI Authorizer role */
	int	 fastcgi_roles;		/* enum config_roles: what this process answers */
	char	*ratelimit_authorizer;	/* rate limit of Authorizer checks */
	/* delayed refusals */
	long	 ratelimit_tarpit_ms;	/* ms a rate-limited request's 429 waits; 0 = at once */
	long	 ratelimit_tarpit_max;	/* answers one process holds back at most */
};

/* fastcgi_roles: the FastCGI roles a process answers (FCGI_ROLE). */
enum config_roles {
	CONFIG_ROLES_BOTH,		/* Responder (the endpoints) and Authorizer */
	CONFIG_ROLES_RESPONDER,		/* the endpoints only */
	CONFIG_ROLES_AUTHORIZER,	/* Authorizer checks only */
};

/* A configuration holding the defaults. Free with config_free. */
struct config *config_new(void);
void	config_free(struct config *);
/*
 * Read a file over the current values. FA_OK, or FA_ERR with *cause
 * "FILE:LINE: KEY: reason" (caller frees).
 */
int	config_load_file(struct config *, const char *path, char **cause);
/*
 * Parse len bytes of configuration text as if read from the file name (which
 * only appears in causes). FA_OK, or FA_ERR with cause as config_load_file.
 */
int	config_load_buffer(struct config *, const char *name, const char *data,
	    size_t len, char **cause);
/* Apply FASTAUTH_<KEY> variables from envp (NULL = environ). FA_OK or FA_ERR with cause. */
int	config_load_env(struct config *, char **envp, char **cause);
/* Set one key from text. FA_OK or FA_ERR with cause "KEY: reason". */
int	config_set(struct config *, const char *key, const char *value, char **cause);
/*
 * The whole sequence programs use: defaults, then the file at path (skipped
 * when it does not exist and must_exist is 0), then FASTAUTH_* variables, then
 * config_validate. NULL with *cause on any error.
 */
struct config *config_load(const char *path, int must_exist, char **cause);
/* Cross-key checks after loading (e.g. issuer is an absolute URL). FA_OK or FA_ERR. */
int	config_validate(const struct config *, char **cause);
/* The i-th known key name, NULL past the end (documentation tests, --help). */
const char *config_key_name(size_t i);
/* Write every key and its current value as a loadable file (secrets omitted). */
void	config_dump(const struct config *, struct buf *);

#endif
