/*
 * store.c -- fastauth's data model in Redis: client records and the jti
 * deny-set (layout in store.h).
 *
 * It owns the key names and the record encoding: a client is a hash whose
 * secret is the lower-case hex of HMAC-SHA256(pepper, secret), grants are
 * names, and the jti of a revoked token is the lower-case hex of its 16 bytes
 * ("<p>revoked:<32 hex>"). Everything that reads a record validates it field
 * by field; a record that does not parse is corrupt (FA_ERR), never half used.
 *
 * Failure policy: no reply (Redis down, timeout) and an error reply (the
 * server refusing, e.g. OOM or WRONGTYPE) are both FA_UNAVAIL, so callers
 * fail closed; the error reply is logged since it means something is wrong
 * with the server rather than the network.
 *
 * A client id that could never have been stored (see store_client_put) is
 * reported as FA_NOTFOUND by the readers: such an id comes from a request, and
 * "no such client" is the true answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/redis_pool.h"
#include "store/store.h"

#define STORE_GRANT_ALL	(STORE_GRANT_CLIENT_CREDENTIALS | STORE_GRANT_PASSWORD | \
	STORE_GRANT_REFRESH_TOKEN | STORE_GRANT_AUTHORIZATION_CODE)

static const struct {
	const char	*name;
	unsigned	 bit;
} store_grant_names[] = {
	{ "client_credentials", STORE_GRANT_CLIENT_CREDENTIALS },
	{ "password", STORE_GRANT_PASSWORD },
	{ "refresh_token", STORE_GRANT_REFRESH_TOKEN },
	{ "authorization_code", STORE_GRANT_AUTHORIZATION_CODE },
};
#define STORE_NGRANTS	(sizeof store_grant_names / sizeof store_grant_names[0])

/*
 * Create or overwrite a client atomically: a reader never sees a half-written
 * record, and DEL first so fields of an older layout do not survive a replace.
 * KEYS: client hash, clients set. ARGV: replace (0/1), id, then field values.
 */
static const char store_put_script[] =
	"if ARGV[1] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
	"redis.call('DEL', KEYS[1]) "
	"redis.call('HSET', KEYS[1], 'secret', ARGV[3], 'scope', ARGV[4], "
	"'grants', ARGV[5], 'introspect', ARGV[6], 'created', ARGV[7], 'name', ARGV[8]) "
	"redis.call('SADD', KEYS[2], ARGV[2]) "
	"return 1";

/* KEYS: client hash, clients set. ARGV: id. Returns 1 if the hash existed. */
static const char store_del_script[] =
	"local n = redis.call('DEL', KEYS[1]) "
	"redis.call('SREM', KEYS[2], ARGV[1]) "
	"return n";

/* 1..FA_CLIENT_ID_MAX printable ASCII characters, no space. */
static int
store_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (i >= FA_CLIENT_ID_MAX || id[i] <= ' ' || id[i] > '~')
			return 0;
	return i > 0;
}

int
store_grants_parse(const char *list, unsigned *grants, const char **bad)
{
	static __thread char badname[64];
	const char *p = list, *end;
	size_t len, i;

	*grants = 0;
	if (bad != NULL)
		*bad = NULL;
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			return FA_OK;
		for (end = p; *end != '\0' && *end != ' ' && *end != ','; end++)
			;
		len = (size_t)(end - p);
		for (i = 0; i < STORE_NGRANTS; i++)
			if (strlen(store_grant_names[i].name) == len &&
			    memcmp(store_grant_names[i].name, p, len) == 0)
				break;
		if (i == STORE_NGRANTS) {
			if (bad != NULL) {
				snprintf(badname, sizeof badname, "%.*s", (int)len, p);
				*bad = badname;
			}
			*grants = 0;
			return FA_ERR;
		}
		*grants |= store_grant_names[i].bit;
		p = end;
	}
}

void
store_grants_format(unsigned grants, char *out, size_t outcap)
{
	size_t i, used = 0;
	int n;

	if (outcap == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < STORE_NGRANTS; i++) {
		if ((grants & store_grant_names[i].bit) == 0)
			continue;
		n = snprintf(out + used, outcap - used, "%s%s", used ? " " : "",
		    store_grant_names[i].name);
		if (n < 0 || (size_t)n >= outcap - used) {
			out[used] = '\0';	/* drop a name that does not fit whole */
			return;
		}
		used += (size_t)n;
	}
}

/* Decode an HGETALL reply into out; FA_ERR (logged, naming the field) if corrupt. */
static int
store_client_parse(const char *id, const redisReply *r, struct store_client *out)
{
	enum { F_SECRET = 1, F_SCOPE = 2, F_GRANTS = 4, F_INTROSPECT = 8, F_CREATED = 16 };
	const char *field = "layout", *bad;
	char grants[128];
	unsigned seen = 0;
	long long v;
	size_t i;

	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", id);
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		goto corrupt;
	for (i = 0; i < r->elements; i += 2) {
		const redisReply *k = r->element[i], *val = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
			goto corrupt;
		field = k->str;
		if (strcmp(k->str, "secret") == 0) {
			if (crypto_unhex(val->str, val->len, out->secret_mac,
			    sizeof out->secret_mac) != FA_OK)
				goto corrupt;
			seen |= F_SECRET;
		} else if (strcmp(k->str, "scope") == 0) {
			if (val->len > FA_SCOPE_MAX || memchr(val->str, '\0', val->len))
				goto corrupt;
			memcpy(out->scope, val->str, val->len);
			out->scope[val->len] = '\0';
			seen |= F_SCOPE;
		} else if (strcmp(k->str, "grants") == 0) {
			if (val->len >= sizeof grants)
				goto corrupt;
			memcpy(grants, val->str, val->len);
			grants[val->len] = '\0';
			if (store_grants_parse(grants, &out->grants, &bad) != FA_OK)
				goto corrupt;
			seen |= F_GRANTS;
		} else if (strcmp(k->str, "introspect") == 0) {
			if (val->len != 1 || (val->str[0] != '0' && val->str[0] != '1'))
				goto corrupt;
			out->introspect = val->str[0] == '1';
			seen |= F_INTROSPECT;
		} else if (strcmp(k->str, "created") == 0) {
			if (redis_pool_decimal(val->str, val->len, &v) != FA_OK)
				goto corrupt;
			out->created = (time_t)v;
			seen |= F_CREATED;
		} else if (strcmp(k->str, "name") == 0) {
			if (val->len >= sizeof out->name || memchr(val->str, '\0', val->len))
				goto corrupt;
			memcpy(out->name, val->str, val->len);
			out->name[val->len] = '\0';
		}
		/* Unknown fields are a newer version's: ignore them. */
	}
	if (seen != (F_SECRET | F_SCOPE | F_GRANTS | F_INTROSPECT | F_CREATED)) {
		field = "missing field";
		goto corrupt;
	}
	return FA_OK;

corrupt:
	log_warn("store: client record %s is corrupt (%s)", id, field);
	explicit_bzero(out, sizeof *out);
	return FA_ERR;
}

/* The result of an HGETALL on a client key. */
static int
store_client_result(struct redis_conn *conn, const char *id, const redisReply *r,
    struct store_client *out)
{
	int rc;

	if ((rc = redis_pool_reply_ok(r, "store", "HGETALL client")) != FA_OK)
		return rc;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
		return FA_NOTFOUND;
	return store_client_parse(id, r, out);
}

int
store_client_get(struct redis_conn *conn, const char *id, struct store_client *out)
{
	redisReply *r;
	int rc, attempt;

	if (!store_id_valid(id))
		return FA_NOTFOUND;
	for (attempt = 0;; attempt++) {		/* an idempotent read */
		r = redis_conn_command(conn, "HGETALL %sclient:%s",
		    redis_conn_prefix(conn), id);
		if (r != NULL || !redis_conn_retry(conn, attempt))
			break;
	}
	rc = store_client_result(conn, id, r, out);
	redis_pool_reply_free(r);
	return rc;
}

int
store_client_put(struct redis_conn *conn, const struct store_client *c, int replace)
{
	char hex[2 * CRYPTO_HASHLEN + 1], grants[128], created[32];
	const char *prefix = redis_conn_prefix(conn);
	char *key = NULL, *set = NULL;
	redisReply *r = NULL;
	int rc = FA_ERR;

	if (memchr(c->id, '\0', sizeof c->id) == NULL || !store_id_valid(c->id) ||
	    memchr(c->scope, '\0', sizeof c->scope) == NULL ||
	    memchr(c->name, '\0', sizeof c->name) == NULL ||
	    (c->grants & ~(unsigned)STORE_GRANT_ALL) != 0 || c->created < 0)
		return FA_ERR;

	crypto_hex(c->secret_mac, sizeof c->secret_mac, hex);
	store_grants_format(c->grants, grants, sizeof grants);
	snprintf(created, sizeof created, "%lld", (long long)c->created);
	key = xasprintf("%sclient:%s", prefix, c->id);
	set = xasprintf("%sclients", prefix);
	r = redis_conn_command(conn, "EVAL %s 2 %s %s %s %s %s %s %s %s %s %s",
	    store_put_script, key, set, replace ? "1" : "0", c->id, hex, c->scope,
	    grants, c->introspect ? "1" : "0", created, c->name);
	if ((rc = redis_pool_reply_ok(r, "store", "put client")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_INTEGER) {
		rc = FA_UNAVAIL;
		goto out;
	}
	rc = r->integer == 1 ? FA_OK : FA_ERR;	/* 0: exists and !replace */
out:
	explicit_bzero(hex, sizeof hex);
	redis_pool_reply_free(r);
	free(key);
	free(set);
	return rc;
}

int
store_client_del(struct redis_conn *conn, const char *id)
{
	const char *prefix = redis_conn_prefix(conn);
	redisReply *r;
	int rc;

	if (!store_id_valid(id))
		return FA_NOTFOUND;
	r = redis_conn_command(conn, "EVAL %s 2 %sclient:%s %sclients %s",
	    store_del_script, prefix, id, prefix, id);
	if ((rc = redis_pool_reply_ok(r, "store", "delete client")) == FA_OK) {
		if (r->type != REDIS_REPLY_INTEGER)
			rc = FA_UNAVAIL;
		else
			rc = r->integer > 0 ? FA_OK : FA_NOTFOUND;
	}
	redis_pool_reply_free(r);
	return rc;
}

static int
store_id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
store_client_list(struct redis_conn *conn, char ***ids, int *n)
{
	redisReply *r;
	char **v = NULL;
	size_t i;
	int rc;

	*ids = NULL;
	*n = 0;
	r = redis_conn_command(conn, "SMEMBERS %sclients", redis_conn_prefix(conn));
	if ((rc = redis_pool_reply_ok(r, "store", "list clients")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY) {
		rc = FA_UNAVAIL;
		goto out;
	}
	v = xcalloc(r->elements + 1, sizeof *v);
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING) {
			log_warn("store: the clients set holds a non-string");
			store_ids_free(v, (int)i);
			v = NULL;
			rc = FA_ERR;
			goto out;
		}
		v[i] = xstrndup(r->element[i]->str, r->element[i]->len);
	}
	qsort(v, r->elements, sizeof *v, store_id_cmp);
	*ids = v;
	*n = (int)r->elements;
out:
	redis_pool_reply_free(r);
	return rc;
}

void
store_ids_free(char **ids, int n)
{
	int i;

	if (ids == NULL)
		return;
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int
store_revoke_jti(struct redis_conn *conn, const uint8_t jti[TOKEN_JTI_LEN], long ttl)
{
	char hex[2 * TOKEN_JTI_LEN + 1];
	redisReply *r;
	int rc;

	if (ttl < 1)
		ttl = 1;
	crypto_hex(jti, TOKEN_JTI_LEN, hex);
	r = redis_conn_command(conn, "SET %srevoked:%s 1 EX %ld",
	    redis_conn_prefix(conn), hex, ttl);
	rc = redis_pool_reply_ok(r, "store", "revoke");
	redis_pool_reply_free(r);
	if (rc == FA_OK)
		(void)redis_conn_durable(conn, "revoke");	/* counted; the write stands */
	return rc;
}

/* The result of EXISTS revoked:<jti>: 1, 0 or FA_UNAVAIL. */
static int
store_revoked_result(struct redis_conn *conn, const redisReply *r)
{
	int rc;

	if ((rc = redis_pool_reply_ok(r, "store", "EXISTS revoked")) != FA_OK)
		return rc;
	if (r->type != REDIS_REPLY_INTEGER)
		return FA_UNAVAIL;
	return r->integer > 0;
}

int
store_is_revoked(struct redis_conn *conn, const uint8_t jti[TOKEN_JTI_LEN])
{
	char hex[2 * TOKEN_JTI_LEN + 1];
	redisReply *r;
	int rc;

	crypto_hex(jti, TOKEN_JTI_LEN, hex);
	r = redis_conn_command(conn, "EXISTS %srevoked:%s", redis_conn_prefix(conn), hex);
	rc = store_revoked_result(conn, r);
	redis_pool_reply_free(r);
	return rc;
}

static int
store_client_and_revoked_once(struct redis_conn *conn, const char *id,
    struct store_client *out, int *client_rc,
    const uint8_t jti[TOKEN_JTI_LEN], int *revoked,
    const char *subject, long long *nbf, int *noreply)
{
	const char *prefix = redis_conn_prefix(conn);
	char hex[2 * TOKEN_JTI_LEN + 1];
	redisReply *rclient = NULL, *rrevoked = NULL, *rnbf = NULL;
	int valid, rc, want_nbf = subject != NULL && *subject != '\0';

	/* Fail closed if a caller ignores the return code. */
	*client_rc = FA_NOTFOUND;
	*revoked = 1;
	if (nbf != NULL)
		*nbf = 0;
	/* id NULL: the caller has the client already, only the token state is wanted. */
	valid = id != NULL && store_id_valid(id);
	crypto_hex(jti, TOKEN_JTI_LEN, hex);
	*noreply = 1;
	if (valid && redis_conn_append(conn, "HGETALL %sclient:%s", prefix, id) != FA_OK)
		return FA_UNAVAIL;
	if (redis_conn_append(conn, "EXISTS %srevoked:%s", prefix, hex) != FA_OK)
		return FA_UNAVAIL;
	if (want_nbf && redis_conn_append(conn, "GET %snbf:%s", prefix, subject) != FA_OK)
		return FA_UNAVAIL;
	/* Read every reply even if one is bad, so none is left pending. */
	if (valid)
		rclient = redis_conn_reply(conn);
	rrevoked = redis_conn_reply(conn);
	if (want_nbf)
		rnbf = redis_conn_reply(conn);
	*noreply = (valid && rclient == NULL) || rrevoked == NULL || (want_nbf && rnbf == NULL);

	rc = FA_UNAVAIL;
	if (valid) {
		int crc = store_client_result(conn, id, rclient, out);

		if (crc == FA_UNAVAIL)
			goto out;
		if (crc == FA_ERR) {
			rc = FA_ERR;
			goto out;
		}
		*client_rc = crc;
	}
	if ((rc = store_revoked_result(conn, rrevoked)) < 0)
		goto out;
	*revoked = rc;
	if (want_nbf) {
		/* The subject's not-before (users.h): absent = none. */
		if (rnbf == NULL || (rnbf->type != REDIS_REPLY_NIL &&
		    rnbf->type != REDIS_REPLY_STRING)) {
			*revoked = 1;
			rc = FA_UNAVAIL;
			goto out;
		}
		if (rnbf->type == REDIS_REPLY_STRING && nbf != NULL)
			*nbf = strtoll(rnbf->str, NULL, 10);
	}
	rc = FA_OK;
out:
	redis_pool_reply_free(rclient);
	redis_pool_reply_free(rrevoked);
	redis_pool_reply_free(rnbf);
	return rc;
}

int
store_client_and_revoked(struct redis_conn *conn, const char *id,
    struct store_client *out, int *client_rc,
    const uint8_t jti[TOKEN_JTI_LEN], int *revoked,
    const char *subject, long long *nbf)
{
	int rc, attempt, noreply;

	/* Reads only: a batch that lost its replies may be sent again. */
	for (attempt = 0;; attempt++) {
		rc = store_client_and_revoked_once(conn, id, out, client_rc, jti, revoked,
		    subject, nbf, &noreply);
		if (rc != FA_UNAVAIL || !noreply || !redis_conn_retry(conn, attempt))
			return rc;
	}
}

int
store_revoked_many(struct redis_conn *conn, int n, const struct token_claims *const *cl,
    int *revoked, long long *nbf)
{
	const char *prefix = redis_conn_prefix(conn);
	size_t plen = strlen(prefix), off = 0, cap, *lens = NULL;
	const char **argv = NULL;
	char *keys = NULL;
	redisReply *r = NULL;
	int i, argc = 1, rc = FA_UNAVAIL, nsub = 0;
	long long v;

	for (i = 0; i < n; i++) {
		revoked[i] = 1;		/* fail closed if a caller ignores rc */
		nbf[i] = 0;
		if (cl[i]->subject[0] != '\0')
			nsub++;
	}
	if (n == 0)
		return FA_OK;
	/* One buffer for every key name, so argv can point into it. */
	cap = (size_t)n * (plen + sizeof "revoked:" + 2 * TOKEN_JTI_LEN) +
	    (size_t)nsub * (plen + sizeof "nbf:" + FA_SUBJECT_MAX) + 1;
	keys = xmalloc(cap);
	argv = xcalloc((size_t)(1 + n + nsub), sizeof *argv);
	lens = xcalloc((size_t)(1 + n + nsub), sizeof *lens);
	argv[0] = "MGET";
	lens[0] = 4;
	/* By hand, not snprintf: this loop is most of a batch's Redis cost here. */
	for (i = 0; i < n; i++) {
		char *k = keys + off;

		memcpy(k, prefix, plen);
		memcpy(k + plen, "revoked:", 8);
		crypto_hex(cl[i]->jti, TOKEN_JTI_LEN, k + plen + 8);	/* NUL-terminates */
		argv[argc] = k;
		lens[argc] = plen + 8 + 2 * TOKEN_JTI_LEN;
		off += lens[argc++] + 1;
	}
	for (i = 0; i < n; i++) {
		char *k = keys + off;
		size_t sl;

		if (cl[i]->subject[0] == '\0')
			continue;
		sl = strnlen(cl[i]->subject, FA_SUBJECT_MAX);
		memcpy(k, prefix, plen);
		memcpy(k + plen, "nbf:", 4);
		memcpy(k + plen + 4, cl[i]->subject, sl);
		argv[argc] = k;
		lens[argc] = plen + 4 + sl;
		off += lens[argc++] + 1;
	}
	r = redis_conn_commandargv(conn, argc, argv, lens);
	if (redis_pool_reply_ok(r, "store", "MGET revoked") != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)(argc - 1)) {
		log_warn("store: MGET answered %zu elements for %d keys",
		    r->type == REDIS_REPLY_ARRAY ? r->elements : 0, argc - 1);
		goto out;
	}
	for (i = 0; i < argc - 1; i++) {
		const redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_NIL && e->type != REDIS_REPLY_STRING)
			goto out;
	}
	argc = 1 + n;	/* the first nbf reply */
	for (i = 0; i < n; i++) {
		revoked[i] = r->element[i]->type == REDIS_REPLY_STRING;
		if (cl[i]->subject[0] == '\0')
			continue;
		if (r->element[argc - 1]->type == REDIS_REPLY_STRING) {
			if (redis_pool_decimal(r->element[argc - 1]->str,
			    r->element[argc - 1]->len, &v) != FA_OK) {
				log_warn("store: unreadable not-before of '%s'", cl[i]->subject);
				goto out;
			}
			nbf[i] = v;
		}
		argc++;
	}
	rc = FA_OK;
out:
	if (rc != FA_OK)
		for (i = 0; i < n; i++)
			revoked[i] = 1;
	redis_pool_reply_free(r);
	free(keys);
	free(argv);
	free(lens);
	return rc;
}
