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
#include <time.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "store/redis_pool.h"
#include "store/store.h"

#define CTL_DEFAULT_CONF SYSCONFDIR "/fastauth/fastauth.conf"

struct ctl {
	struct config		*cfg;
	struct redis_pool	*pool;
	struct redis_conn	*conn;
	struct keyring		*keyring;
	struct crypto_ctx	*crypto;
	uint8_t			 pepper[CRYPTO_HASHLEN];
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
	memset(&pp, 0, sizeof pp);
	pp.url = c->cfg->redis_url;
	pp.prefix = c->cfg->redis_prefix;
	pp.connect_timeout_ms = c->cfg->redis_connect_timeout_ms;
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
	service_pepper(c->crypto, kek, c->pepper);
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
		fprintf(stderr, "removed client '%s'; tokens it holds stay valid until "
		    "they expire\n", argv[1]);
	} else if (strcmp(argv[0], "rotate-secret") == 0) {
		ctl_new_secret(c, &rec, secret);
		if ((rc = store_client_put(c->conn, &rec, 1)) != FA_OK) {
			crypto_wipe(secret, sizeof secret);
			ctl_fatal("rotate-secret: %s", ctl_store_error(rc));
		}
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
	else {
		ctl_usage(stderr);
		rc = 1;
	}
	ctl_close(&c);
	return rc;
}
