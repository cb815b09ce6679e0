/*
 * fastauthctl.c -- the administration command: KEK and data keys, clients.
 *
 * It works on the same Redis and KEK as the responders, through the same
 * modules (keyring, store), so what it writes is exactly what they read.
 * Secrets it generates go to stdout alone on one line, for scripts; every
 * message goes to stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "endpoints/limits.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "store/breaker.h"
#include "store/redis_pool.h"
#include "store/events.h"
#include "store/refresh.h"
#include "endpoints/monitor.h"
#include "shm/admission.h"
#include "shm/anomaly.h"
#include "shm/metrics.h"
#include "shm/mirror.h"
#include "shm/shm.h"
#include "store/store.h"
#include "store/users.h"
#include "crypto/password.h"
#include "core/audit.h"

#define CTL_DEFAULT_CONF SYSCONFDIR "/fastauth/fastauth.conf"

struct ctl {
	struct config		*cfg;
	struct redis_pool	*pool;
	struct redis_conn	*conn;
	struct keyring		*keyring;
	struct crypto_ctx	*crypto;
	uint8_t			 pepper[CRYPTO_HASHLEN];
	uint8_t			 user_key[CRYPTO_KEYLEN];
};

static void __attribute__((noreturn, format(printf, 1, 2)))
ctl_fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("fastauthctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void
ctl_usage(FILE *f)
{
	fprintf(f,
	    "usage: fastauthctl [-c file] command [args]\n"
	    "  key init                      create the key-encryption key file\n"
	    "  key rotate                    add a sealing key; new tokens use it\n"
	    "  key list                      list the sealing keys\n"
	    "  client add --id ID [--scope \"a b\"] [--grant G]... [--introspect] [--name TEXT]\n"
	    "  client list | show ID | remove ID | rotate-secret ID\n"
	    "  user add NAME | passwd NAME     (password read from standard input)\n"
	    "  user list | show NAME | lock NAME | unlock NAME | remove NAME\n"
	    "  user set-claims NAME KEY=VALUE... | set-claims NAME --json OBJECT\n"
	    "  user revoke-tokens NAME\n"
	    "  shm stats                     shared memory of this host's instance\n"
	    "  cache flush                   empty the L1 cache of every instance\n"
	    "See fastauthctl(8).\n");
}

/* Connect to Redis and load the KEK: what every command but "key init" needs. */
static void
ctl_open(struct ctl *c)
{
	struct redis_pool_params pp;
	struct keyring_params kp;
	uint8_t kek[CRYPTO_KEYLEN];
	char *cause = NULL;

	if (crypto_init(&cause) != FA_OK)
		ctl_fatal("%s", cause);
	if (keyring_kek_load(c->cfg->kek_file, kek, &cause) != FA_OK)
		ctl_fatal("%s", cause);
	service_pool_params(c->cfg, &pp);
	/* One command at a time, by hand: no breaker, no retries. */
	pp.breaker_failures = 0;
	pp.read_retries = 0;
	/* Administrative commands may wait longer than a request would. */
	pp.command_timeout_ms = c->cfg->redis_command_timeout_ms < 5000 ?
	    5000 : c->cfg->redis_command_timeout_ms;
	pp.backoff_min_ms = pp.backoff_max_ms = 1;
	pp.size = 1;
	if ((c->pool = redis_pool_new(&pp, &cause)) == NULL)
		ctl_fatal("%s", cause);
	c->conn = redis_pool_conn(c->pool, 0);
	if (redis_conn_ensure(c->conn) != FA_OK)
		ctl_fatal("cannot reach Redis at %s: %s", c->cfg->redis_url,
		    redis_conn_errstr(c->conn));
	memset(&kp, 0, sizeof kp);
	kp.rotate_after_s = c->cfg->key_rotate_after;
	kp.rotate_after_seals = c->cfg->key_rotate_after_seals;
	kp.token_lifetime_s = c->cfg->access_token_ttl;
	kp.refresh_s = c->cfg->key_refresh_interval;
	c->keyring = keyring_new(kek, &kp);
	c->crypto = crypto_ctx_new();
	service_derive(c->crypto, kek, SERVICE_LABEL_PEPPER, c->pepper);
	service_derive(c->crypto, kek, SERVICE_LABEL_USER_KEY, c->user_key);
	crypto_wipe(kek, sizeof kek);
}

/* Release everything ctl_open and main made; safe to call twice. */
static void
ctl_close(struct ctl *c)
{
	keyring_free(c->keyring);
	redis_pool_free(c->pool);
	crypto_ctx_free(c->crypto);
	config_free(c->cfg);
	crypto_wipe(c, sizeof *c);
}

/*
 * Tell every instance's cache that a record changed (events.h). The change is
 * in Redis already; if the announcement fails, caches catch up within their
 * TTL, so say so rather than fail.
 */
static void
ctl_announce(struct ctl *c, const char *kind, const char *id)
{
	if (events_publish(c->conn, "%s %s", kind, id) != FA_OK)
		fprintf(stderr, "fastauthctl: warning: could not announce the change "
		    "(%s); cached copies expire within cache_%s_ttl\n",
		    redis_conn_errstr(c->conn), strcmp(kind, "client") == 0 ?
		    "client" : "revocation");
}

static const char *
ctl_store_error(int rc)
{
	switch (rc) {
	case FA_NOTFOUND: return "no such client";
	case FA_UNAVAIL:  return "Redis unreachable or erroring";
	default:	  return "bad or corrupt record";
	}
}

static int
ctl_key(struct ctl *c, int argc, char **argv)
{
	char *cause = NULL;
	uint32_t kid;

	if (argc != 1)
		goto usage;
	if (strcmp(argv[0], "init") == 0) {
		if (crypto_init(&cause) != FA_OK ||
		    keyring_kek_create(c->cfg->kek_file, &cause) != FA_OK)
			ctl_fatal("%s", cause);
		fprintf(stderr, "created %s (mode 0600); copy it to every host, "
		    "it must be the same everywhere\n", c->cfg->kek_file);
		return 0;
	}
	ctl_open(c);
	if (strcmp(argv[0], "rotate") == 0) {
		if (keyring_load(c->keyring, c->conn, &cause) != FA_OK ||
		    keyring_rotate(c->keyring, c->conn, &kid, &cause) != FA_OK)
			ctl_fatal("%s", cause);
		printf("%u\n", kid);
		fprintf(stderr, "new sealing key %u; responders pick it up within "
		    "key_refresh_interval\n", kid);
	} else if (strcmp(argv[0], "list") == 0) {
		struct keyring_info *ki = NULL;
		char when[32];
		struct tm tm;
		int n = 0, i;

		if (keyring_list(c->keyring, c->conn, &ki, &n, &cause) != FA_OK)
			ctl_fatal("%s", cause);
		printf("%-6s %-20s %12s %s\n", "ID", "CREATED", "SEALS", "STATE");
		for (i = 0; i < n; i++) {
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ",
			    gmtime_r(&ki[i].created, &tm));
			printf("%-6u %-20s %12lld %s\n", ki[i].kid, when, ki[i].seals,
			    ki[i].current ? "current" :
			    ki[i].retired_at ? "validating" : "active");
		}
		free(ki);
	} else
		goto usage;
	return 0;
usage:
	ctl_usage(stderr);
	return 1;
}

/* Client ids fastauthctl creates: [A-Za-z0-9._~-]{1,128} (URL- and header-safe). */
static int
ctl_id_valid(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= FA_CLIENT_ID_MAX &&
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._~-") == n;
}

static void
ctl_new_secret(struct ctl *c, struct store_client *rec, char secret[44])
{
	if (oauth_secret_generate(secret) != FA_OK)
		ctl_fatal("no randomness: %s", strerror(errno));
	oauth_secret_mac(c->crypto, c->pepper, secret, rec->secret_mac);
}

static int
ctl_client_add(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id",		required_argument, NULL, 'i' },
		{ "scope",	required_argument, NULL, 's' },
		{ "grant",	required_argument, NULL, 'g' },
		{ "introspect",	no_argument,	   NULL, 'I' },
		{ "name",	required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	struct store_client rec;
	const char *id = NULL, *scope = "", *bad;
	char secret[44];
	unsigned g;
	int ch, rc;

	memset(&rec, 0, sizeof rec);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': id = optarg; break;
		case 's': scope = optarg; break;
		case 'g':
			if (store_grants_parse(optarg, &g, &bad) != FA_OK)
				ctl_fatal("unknown grant type '%s' (known: client_credentials, "
				    "password, refresh_token, authorization_code)", bad);
			rec.grants |= g;
			break;
		case 'I': rec.introspect = 1; break;
		case 'n': snprintf(rec.name, sizeof rec.name, "%s", optarg); break;
		default: ctl_fatal("client add: bad option (see fastauthctl(8))");
		}
	}
	if (optind != argc)
		ctl_fatal("client add: unexpected argument '%s'", argv[optind]);
	if (id == NULL)
		ctl_fatal("client add: --id is required");
	if (!ctl_id_valid(id))
		ctl_fatal("client add: --id must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -",
		    FA_CLIENT_ID_MAX);
	if (*scope != '\0' && !oauth_scope_valid(scope))
		ctl_fatal("client add: --scope must be space-separated scope tokens "
		    "(RFC 6749 section 3.3), at most %d bytes", FA_SCOPE_MAX);
	if (rec.grants == 0)
		rec.grants = STORE_GRANT_CLIENT_CREDENTIALS;
	snprintf(rec.id, sizeof rec.id, "%s", id);
	snprintf(rec.scope, sizeof rec.scope, "%s", scope);
	rec.created = time(NULL);

	ctl_open(c);
	ctl_new_secret(c, &rec, secret);
	if ((rc = store_client_put(c->conn, &rec, 0)) != FA_OK) {
		crypto_wipe(secret, sizeof secret);
		if (rc == FA_ERR)
			ctl_fatal("client '%s' already exists (use rotate-secret or remove)", id);
		ctl_fatal("client add: %s", ctl_store_error(rc));
	}
	printf("%s\n", secret);
	fflush(stdout);
	crypto_wipe(secret, sizeof secret);
	/* A request just before may have cached "no such client". */
	ctl_announce(c, "client", id);
	return 0;
}

static int
ctl_client(struct ctl *c, int argc, char **argv)
{
	struct store_client rec;
	char secret[44], grants[128];
	int rc;

	if (argc < 1)
		goto usage;
	if (strcmp(argv[0], "add") == 0)
		return ctl_client_add(c, argc, argv);
	if (strcmp(argv[0], "list") == 0) {
		char **ids = NULL;
		int n = 0, i;

		if (argc != 1)
			goto usage;
		ctl_open(c);
		if ((rc = store_client_list(c->conn, &ids, &n)) != FA_OK)
			ctl_fatal("client list: %s", ctl_store_error(rc));
		for (i = 0; i < n; i++)
			printf("%s\n", ids[i]);
		store_ids_free(ids, n);
		return 0;
	}
	if (argc != 2)
		goto usage;
	ctl_open(c);
	if ((rc = store_client_get(c->conn, argv[1], &rec)) != FA_OK)
		ctl_fatal("client '%s': %s", argv[1], ctl_store_error(rc));
	if (strcmp(argv[0], "show") == 0) {
		char when[32];
		struct tm tm;

		store_grants_format(rec.grants, grants, sizeof grants);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&rec.created, &tm));
		printf("id:         %s\nname:       %s\nscope:      %s\ngrants:     %s\n"
		    "introspect: %s\ncreated:    %s\n", rec.id, rec.name, rec.scope,
		    grants, rec.introspect ? "yes" : "no", when);
	} else if (strcmp(argv[0], "remove") == 0) {
		if ((rc = store_client_del(c->conn, argv[1])) != FA_OK)
			ctl_fatal("client remove: %s", ctl_store_error(rc));
		ctl_announce(c, "client", argv[1]);
		fprintf(stderr, "removed client '%s'; tokens it holds stay valid until "
		    "they expire\n", argv[1]);
	} else if (strcmp(argv[0], "rotate-secret") == 0) {
		ctl_new_secret(c, &rec, secret);
		if ((rc = store_client_put(c->conn, &rec, 1)) != FA_OK) {
			crypto_wipe(secret, sizeof secret);
			ctl_fatal("rotate-secret: %s", ctl_store_error(rc));
		}
		ctl_announce(c, "client", argv[1]);
		printf("%s\n", secret);
		fflush(stdout);
		crypto_wipe(secret, sizeof secret);
	} else
		goto usage;
	return 0;
usage:
	ctl_usage(stderr);
	return 1;
}

/* The metrics slots and the anomaly table (what GET /metrics reads). */
static void
ctl_shm_observability(struct ctl *c, struct shm *seg, uint64_t now)
{
	static const char *kinds[ANOMALY_KINDS] = {
		"invalid tokens", "client auth failures", "login failures"
	};
	struct metrics_snapshot *ms = xmalloc(sizeof *ms);
	struct metrics_process procs[64];
	struct anomaly_params ap;
	size_t np, k;
	struct anomaly_stats an;
	uint64_t requests = 0;
	int e, i;

	metrics_snapshot(shm_metrics(seg), ms);
	for (e = 0; e < METRICS_EP_COUNT; e++)
		for (i = 0; i < METRICS_STATUS_COUNT; i++)
			requests += ms->requests[e][i];
	printf("metrics: %u of %u slots live, %llu dead processes folded, %llu "
	    "without a slot; %llu requests counted\n", ms->live, ms->slots,
	    (unsigned long long)ms->retired, (unsigned long long)ms->overflow,
	    (unsigned long long)requests);
	free(ms);
	/* Each process's Redis circuit breaker (issue: state visible here and in /ready). */
	np = metrics_processes(shm_metrics(seg), procs, sizeof procs / sizeof procs[0]);
	for (k = 0; k < np; k++)
		printf("  pid %d: redis circuit %s, %lld of %lld request threads busy, "
		    "%lld redis connections open\n", (int)procs[k].pid,
		    breaker_state_name((enum breaker_state)procs[k].gauges[METRICS_G_CIRCUIT]),
		    (long long)procs[k].gauges[METRICS_G_BUSY],
		    (long long)procs[k].gauges[METRICS_G_THREADS],
		    (long long)procs[k].gauges[METRICS_G_REDIS_OPEN]);
	monitor_params(c->cfg, &ap);
	anomaly_stats(shm_anomaly(seg), &ap, now, &an);
	printf("anomaly detector: %llu of %llu addresses tracked\n",
	    (unsigned long long)an.tracked, (unsigned long long)an.entries);
	for (i = 0; i < ANOMALY_KINDS; i++)
		printf("  %-21s %llu addresses suspected now, %llu alarms raised\n",
		    kinds[i], (unsigned long long)an.suspected[i],
		    (unsigned long long)an.raised[i]);
}

static int
ctl_shm(struct ctl *c, int argc, char **argv)
{
	static const char *kinds[CACHE_KINDS] = { "all", "client", "claims", "revocation" };
	struct shm_stats st;
	struct admission_stats as;
	struct admission *adm;
	struct mirror_region *m;
	struct shm *seg = NULL;
	char *cause = NULL;
	uint64_t now, epoch;
	int i, rc;

	if (argc != 1 || strcmp(argv[0], "stats") != 0) {
		ctl_usage(stderr);
		return 1;
	}
	rc = shm_attach_existing(c->cfg->instance, &seg, &cause);
	if (rc == FA_NOTFOUND)
		ctl_fatal("no shared memory segment for instance '%s' (no fastauth "
		    "process has started on this host)", c->cfg->instance);
	if (rc != FA_OK)
		ctl_fatal("%s", cause);
	now = shm_now();
	shm_stats(seg, now, &st);
	printf("segment /fastauth.%s: %llu bytes, layout %u, hash %s, "
	    "created by pid %d\n", c->cfg->instance, (unsigned long long)st.size,
	    st.version, shm_hash_name(st.hashalg), st.creator_pid);
	printf("rate limiter: %llu of %llu slots in use, %llu live states evicted\n",
	    (unsigned long long)st.ratelimit.used, (unsigned long long)st.ratelimit.entries,
	    (unsigned long long)st.ratelimit.evicted_live);
	for (i = 0; i < LIMITS_NCLASS; i++)
		printf("  %-10s allowed %llu, limited %llu\n", limits_name(i),
		    (unsigned long long)st.ratelimit.allowed[i],
		    (unsigned long long)st.ratelimit.limited[i]);
	printf("cache: %llu of %llu slots in use, %llu claimed, values up to %llu bytes\n",
	    (unsigned long long)st.cache.used, (unsigned long long)st.cache.entries,
	    (unsigned long long)st.cache.claimed, (unsigned long long)st.cache.value_max);
	for (i = 1; i < CACHE_KINDS; i++) {
		uint64_t h = st.cache.hits[i], mi = st.cache.misses[i];

		printf("  %-10s hits %llu, misses %llu, hit rate %.1f%%\n", kinds[i],
		    (unsigned long long)h, (unsigned long long)mi,
		    h + mi > 0 ? 100.0 * (double)h / (double)(h + mi) : 0.0);
	}
	printf("  evicted %llu, dropped %llu, recovered %llu, generation %llu\n",
	    (unsigned long long)st.cache.evicted, (unsigned long long)st.cache.dropped,
	    (unsigned long long)st.cache.recovered, (unsigned long long)st.generation);
	adm = admission_new(shm_admission(seg), 1);
	admission_stats(adm, &as);
	admission_free(adm);
	printf("argon2 admission: %d in flight, %lld waiting, %llu admitted, %llu "
	    "rejected, %llu reclaimed\n", as.in_flight, (long long)as.waiting,
	    (unsigned long long)as.admitted, (unsigned long long)as.rejected,
	    (unsigned long long)as.reclaimed);
	m = shm_mirror(seg);
	printf("revocation mirror: %s, epoch %llu, %llu messages applied\n",
	    mirror_trusted(m, now, &epoch) ? "in sync (subscribed)" :
	    "not trusted (Redis is asked)", (unsigned long long)atomic_load(&m->epoch),
	    (unsigned long long)atomic_load(&m->messages));
	ctl_shm_observability(c, seg, now);
	shm_close(seg);
	return 0;
}

static int
ctl_cache(struct ctl *c, int argc, char **argv)
{
	if (argc != 1 || strcmp(argv[0], "flush") != 0) {
		ctl_usage(stderr);
		return 1;
	}
	ctl_open(c);
	/* Every instance's subscriber flushes its segment, this host's included. */
	if (events_publish(c->conn, "flush") != FA_OK)
		ctl_fatal("cache flush: %s", redis_conn_errstr(c->conn));
	fprintf(stderr, "flush announced to every instance\n");
	return 0;
}

/*
 * Read a password from standard input, never from argv (it would show in ps
 * and shell history). On a terminal: prompt twice without echo. Otherwise
 * the first line, without its newline. Caller wipes and frees.
 */
static char *
ctl_read_password(void)
{
	char *a = NULL, *b = NULL;
	size_t cap = 0, cap2 = 0;
	ssize_t n;
	struct termios old, noecho;
	int tty = isatty(STDIN_FILENO);

	if (tty) {
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
		fputs("Password: ", stderr);
	}
	n = getline(&a, &cap, stdin);
	if (tty) {
		fputs("\nAgain: ", stderr);
		if (n >= 0 && getline(&b, &cap2, stdin) < 0) {
			free(b);
			b = NULL;
		}
		fputc('\n', stderr);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	}
	if (n < 0) {
		free(a);
		ctl_fatal("no password on standard input");
	}
	a[strcspn(a, "\r\n")] = '\0';
	if (b != NULL) {
		b[strcspn(b, "\r\n")] = '\0';
		if (strcmp(a, b) != 0) {
			crypto_wipe(a, cap);
			crypto_wipe(b, cap2);
			free(a);
			free(b);
			ctl_fatal("the passwords differ");
		}
		crypto_wipe(b, cap2);
		free(b);
	} else if (tty)
		ctl_fatal("password not confirmed");
	if (*a == '\0')
		ctl_fatal("empty password");
	return a;
}

/* Hash a password read from stdin with the configured Argon2id parameters. */
static void
ctl_hash_password(struct ctl *c, char *phc, size_t phccap)
{
	struct password_params pp;
	char *pw = ctl_read_password();
	size_t len = strlen(pw);
	int rc;

	memset(&pp, 0, sizeof pp);
	pp.m_kib = (uint32_t)c->cfg->argon2_memory_kib;
	pp.t = (uint32_t)c->cfg->argon2_iterations;
	pp.p = (uint32_t)c->cfg->argon2_parallelism;
	pp.max_len = c->cfg->password_max_length;
	rc = password_hash(&pp, pw, len, phc, phccap);
	crypto_wipe(pw, len);
	free(pw);
	if (rc == FA_LIMIT)
		ctl_fatal("password longer than password_max_length (%zu bytes)",
		    c->cfg->password_max_length);
	if (rc != FA_OK)
		ctl_fatal("could not hash the password");
}

static const char *
ctl_user_error(int rc)
{
	switch (rc) {
	case FA_NOTFOUND: return "no such user";
	case FA_DENIED:	  return "the user already exists";
	case FA_UNAVAIL:  return "Redis unreachable or erroring";
	default:	  return "bad or corrupt record";
	}
}

/* Build a claims object from KEY=VALUE arguments: email_verified and true/false become booleans. */
static char *
ctl_claims_from_args(int argc, char **argv)
{
	struct buf b = BUF_INIT;
	int i, first = 1;

	buf_putc(&b, '{');
	for (i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char key[USERS_CLAIM_KEY_MAX + 1];

		if (eq == NULL || eq == argv[i] || (size_t)(eq - argv[i]) > USERS_CLAIM_KEY_MAX)
			ctl_fatal("user set-claims: expected KEY=VALUE, got '%s'", argv[i]);
		memcpy(key, argv[i], (size_t)(eq - argv[i]));
		key[eq - argv[i]] = '\0';
		if (strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "false") == 0)
			json_kv_raw(&b, &first, key, eq + 1);
		else
			json_kv_str(&b, &first, key, eq + 1);
	}
	buf_putc(&b, '}');
	return b.data;
}

/*
 * Make every token of subject id inactive: a not-before one second ahead
 * (token times are whole seconds, so a token issued earlier in this second
 * must die too), its refresh families revoked, every cache told. Then wait
 * for that second to pass, so a login that starts after the command returns
 * is not caught by the not-before.
 */
static int
ctl_revoke_subject(struct ctl *c, const char *id)
{
	time_t nbf = time(NULL) + 1;

	if (users_set_not_before(c->conn, id, nbf) != FA_OK ||
	    refresh_revoke_subject(c->conn, id) != FA_OK)
		return FA_UNAVAIL;
	ctl_announce(c, "subject", id);
	while (time(NULL) < nbf)
		usleep(20 * 1000);
	return FA_OK;
}

static int
ctl_user(struct ctl *c, int argc, char **argv)
{
	struct users_ctx uc;
	struct users_user u;
	char phc[USERS_PW_MAX + 1], id[USERS_ID_LEN + 1], *cause = NULL, *claims;
	int rc;

	if (argc < 1)
		goto usage;
	memset(&u, 0, sizeof u);
	if (strcmp(argv[0], "list") == 0) {
		char **names = NULL;
		int n = 0, i;

		if (argc != 1)
			goto usage;
		ctl_open(c);
		uc = (struct users_ctx){ c->conn, c->crypto, c->user_key };
		if ((rc = users_list(&uc, &names, &n)) != FA_OK)
			ctl_fatal("user list: %s", ctl_user_error(rc));
		for (i = 0; i < n; i++)
			printf("%s\n", names[i]);
		store_ids_free(names, n);
		return 0;
	}
	if (argc < 2 || (argc > 2 && strcmp(argv[0], "set-claims") != 0))
		goto usage;
	if (!users_name_valid(argv[1]))
		ctl_fatal("'%s' is not a valid username: 1 to %d characters of "
		    "A-Z a-z 0-9 . _ @ + -", argv[1], USERS_NAME_MAX);
	ctl_open(c);
	uc = (struct users_ctx){ c->conn, c->crypto, c->user_key };
	if (strcmp(argv[0], "add") == 0) {
		ctl_hash_password(c, phc, sizeof phc);
		rc = users_create(&uc, argv[1], phc, id);
		crypto_wipe(phc, sizeof phc);
		if (rc != FA_OK)
			ctl_fatal("user add %s: %s", argv[1], ctl_user_error(rc));
		printf("%s\n", id);
		fprintf(stderr, "created user '%s' (subject %s)\n", argv[1], id);
	} else if (strcmp(argv[0], "passwd") == 0) {
		if ((rc = users_get(&uc, argv[1], &u)) != FA_OK)
			ctl_fatal("user passwd %s: %s", argv[1], ctl_user_error(rc));
		ctl_hash_password(c, phc, sizeof phc);
		rc = users_set_password(&uc, argv[1], phc);
		crypto_wipe(phc, sizeof phc);
		if (rc != FA_OK)
			ctl_fatal("user passwd %s: %s", argv[1], ctl_user_error(rc));
		/* A new password ends every session of the old one. */
		if (ctl_revoke_subject(c, u.id) != FA_OK)
			ctl_fatal("user passwd %s: password changed, but revoking the "
			    "old tokens failed: run user revoke-tokens", argv[1]);
		audit_event(AUDIT_PASSWORD_CHANGED, AUDIT_INFO, NULL, NULL, argv[1],
		    AUDIT_FIELDS({ "actor", "fastauthctl" }));
		fprintf(stderr, "password of '%s' changed; its tokens are revoked\n", argv[1]);
	} else if (strcmp(argv[0], "show") == 0) {
		char when[32], upd[32];
		struct tm tm;

		if ((rc = users_get(&uc, argv[1], &u)) != FA_OK)
			ctl_fatal("user show %s: %s", argv[1], ctl_user_error(rc));
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&u.created, &tm));
		strftime(upd, sizeof upd, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&u.updated, &tm));
		printf("username: %s\nsubject:  %s\nlocked:   %s\ncreated:  %s\n"
		    "updated:  %s\nclaims:   %s\n", u.username, u.id,
		    u.locked ? "yes" : "no", when, upd, u.claims_json ? u.claims_json : "{}");
	} else if (strcmp(argv[0], "lock") == 0 || strcmp(argv[0], "unlock") == 0) {
		int lock = argv[0][0] == 'l';

		if ((rc = users_set_locked(&uc, argv[1], lock)) != FA_OK ||
		    (rc = users_get(&uc, argv[1], &u)) != FA_OK)
			ctl_fatal("user %s %s: %s", argv[0], argv[1], ctl_user_error(rc));
		/* A disabled account's tokens stop working everywhere, at once. */
		if (lock && ctl_revoke_subject(c, u.id) != FA_OK)
			ctl_fatal("user lock %s: locked, but revoking its tokens failed: "
			    "run user revoke-tokens", argv[1]);
		if (!lock)
			ctl_announce(c, "subject", u.id);
		if (!lock && users_unlock(c->conn, argv[1]) != FA_OK)
			ctl_fatal("user unlock %s: clearing the failure counters failed", argv[1]);
		audit_event(lock ? AUDIT_ACCOUNT_LOCKED : AUDIT_ACCOUNT_UNLOCKED, AUDIT_INFO,
		    NULL, NULL, argv[1], AUDIT_FIELDS({ "actor", "fastauthctl" }));
		fprintf(stderr, "user '%s' %sed\n", argv[1], argv[0]);
	} else if (strcmp(argv[0], "remove") == 0) {
		if ((rc = users_get(&uc, argv[1], &u)) != FA_OK ||
		    (rc = users_remove(&uc, argv[1])) != FA_OK)
			ctl_fatal("user remove %s: %s", argv[1], ctl_user_error(rc));
		if (ctl_revoke_subject(c, u.id) != FA_OK)
			ctl_fatal("user remove %s: removed, but revoking its refresh "
			    "tokens failed", argv[1]);
		fprintf(stderr, "removed user '%s'; its tokens are revoked\n", argv[1]);
	} else if (strcmp(argv[0], "revoke-tokens") == 0) {
		if ((rc = users_get(&uc, argv[1], &u)) != FA_OK)
			ctl_fatal("user revoke-tokens %s: %s", argv[1], ctl_user_error(rc));
		if (ctl_revoke_subject(c, u.id) != FA_OK)
			ctl_fatal("user revoke-tokens %s: Redis unreachable or erroring", argv[1]);
		audit_event(AUDIT_USER_TOKENS_REVOKED, AUDIT_WARNING, NULL, NULL, argv[1],
		    AUDIT_FIELDS({ "actor", "fastauthctl" }));
		fprintf(stderr, "every token of '%s' is now inactive\n", argv[1]);
	} else if (strcmp(argv[0], "set-claims") == 0) {
		if (argc == 4 && strcmp(argv[2], "--json") == 0)
			claims = xstrdup(argv[3]);
		else
			claims = ctl_claims_from_args(argc - 2, argv + 2);
		rc = users_set_claims(&uc, argv[1], claims, &cause);
		free(claims);
		if (rc != FA_OK)
			ctl_fatal("user set-claims %s: %s", argv[1],
			    cause != NULL ? cause : ctl_user_error(rc));
	} else
		goto usage;
	users_user_clear(&u);
	return 0;
usage:
	ctl_usage(stderr);
	return 1;
}

int
main(int argc, char **argv)
{
	struct ctl c;
	const char *path = NULL;
	char *cause = NULL;
	int must_exist = 1, i = 1, rc;

	memset(&c, 0, sizeof c);
	log_open("fastauthctl", 0, LOG_LEVEL_WARN);
	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			ctl_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("fastauthctl %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			ctl_usage(stderr);
			return 1;
		}
	}
	if (i >= argc) {
		ctl_usage(stderr);
		return 1;
	}
	if (path == NULL && (path = getenv("FASTAUTH_CONF")) == NULL) {
		path = CTL_DEFAULT_CONF;
		must_exist = 0;
	}
	if ((c.cfg = config_load(path, must_exist, &cause)) == NULL)
		ctl_fatal("%s", cause);
	if (strcmp(argv[i], "key") == 0)
		rc = ctl_key(&c, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "client") == 0)
		rc = ctl_client(&c, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "shm") == 0)
		rc = ctl_shm(&c, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "cache") == 0)
		rc = ctl_cache(&c, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "user") == 0) {
		char *acause = NULL;

		if (audit_open(c.cfg->audit_log, &acause) != FA_OK) {
			fprintf(stderr, "fastauthctl: audit log: %s\n", acause);
			free(acause);
		}
		rc = ctl_user(&c, argc - i - 1, argv + i + 1);
		audit_close();
	}
	else {
		ctl_usage(stderr);
		rc = 1;
	}
	ctl_close(&c);
	return rc;
}
