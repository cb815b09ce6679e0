/*
 * users.c -- user records and brute-force counters in Redis (layout in users.h).
 *
 * It owns the user key names, the record encoding, the claim rules and the
 * sealing of claims: the compact JSON object is sealed with AES-256-GCM under
 * the caller's data key with the associated data "fastauth-user:<username>:<id>".
 * The username binds the claims to the record's key, so a record or a claims
 * field copied under another username does not open; the id (never reused)
 * binds them to this incarnation of the name, so claims saved from a removed
 * user do not open for a new user of the same name.
 *
 * Every write that touches more than one key, or must not clobber a field
 * changed concurrently, is one Lua script (EVAL): Redis runs it atomically, so
 * there is no read-modify-write window between hosts. Single-field updates
 * are HSETs of that field only (plus "updated"), guarded by the record's
 * existence so an update never resurrects half a removed user.
 *
 * Failure policy (as store.c): no reply and an error reply are FA_UNAVAIL,
 * the latter logged; a record that does not parse is FA_ERR, never half used.
 * Nothing secret is logged: neither password hashes nor claims.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/password.h"
#include "store/redis_pool.h"
#include "store/users.h"

#define USERS_AAD_PREFIX	"fastauth-user:"
/* A sealed claims field: base64url of nonce | ciphertext | tag. */
#define USERS_SEALED_MAX	(USERS_CLAIMS_MAX + CRYPTO_OVERHEAD)
#define USERS_FIELD_MAX		B64URL_ENCLEN(USERS_SEALED_MAX)
/* Input claims text we even parse (whitespace allowed beyond the compact limit). */
#define USERS_CLAIMS_INPUT_MAX	(4 * USERS_CLAIMS_MAX)
/* Longest address used as is in a throttle key. */
#define USERS_ADDR_MAX		64
/* Throttle key component: a valid name, or "#" + 64 hex. */
#define USERS_TKEY_MAX		(1 + 2 * CRYPTO_HASHLEN)
/* Attempts at a fresh id or a stable record before giving up. */
#define USERS_ATTEMPTS		3

/*
 * Read a user and its not-before in one step. KEYS: user hash.
 * ARGV: "<p>nbf:". Returns {} or {HGETALL, nbf or ""}.
 */
static const char users_get_script[] =
	"local h = redis.call('HGETALL', KEYS[1]) "
	"if #h == 0 then return {} end "
	"local id = false "
	"for i = 1, #h, 2 do if h[i] == 'id' then id = h[i + 1] end end "
	"local nbf = false "
	"if id then nbf = redis.call('GET', ARGV[1] .. id) end "
	"return {h, nbf or ''}";

/*
 * The same through the id index. KEYS: uid:<id>, nbf:<id>. ARGV: "<p>user:".
 * Returns {} or {username, HGETALL, nbf or ""}.
 */
static const char users_get_by_id_script[] =
	"local u = redis.call('GET', KEYS[1]) "
	"if not u then return {} end "
	"return {u, redis.call('HGETALL', ARGV[1] .. u), redis.call('GET', KEYS[2]) or ''}";

/*
 * KEYS: user hash, users set, uid:<id>. ARGV: username, id, pw, now.
 * 1 created, 0 the username exists, -1 the id is taken (draw another).
 */
static const char users_create_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
	"if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end "
	"redis.call('HSET', KEYS[1], 'id', ARGV[2], 'pw', ARGV[3], 'locked', '0', "
	"'created', ARGV[4], 'updated', ARGV[4]) "
	"redis.call('SADD', KEYS[2], ARGV[1]) "
	"redis.call('SET', KEYS[3], ARGV[1]) "
	"return 1";

/* KEYS: user hash. ARGV: field, value, now. 1 done, 0 no such user. */
static const char users_set_field_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'updated', ARGV[3]) "
	"return 1";

/* KEYS: user hash. ARGV: old pw, new pw, now. 1 done, 0 no such user, -1 pw changed. */
static const char users_rehash_script[] =
	"local cur = redis.call('HGET', KEYS[1], 'pw') "
	"if not cur then return 0 end "
	"if cur ~= ARGV[1] then return -1 end "
	"redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'updated', ARGV[3]) "
	"return 1";

/*
 * Store claims sealed for the id the caller read: if the user was removed and
 * created again meanwhile (another id), write nothing. KEYS: user hash.
 * ARGV: id, sealed ("" = remove), now. 1 done, 0 no such user, -1 other id.
 */
static const char users_claims_script[] =
	"local id = redis.call('HGET', KEYS[1], 'id') "
	"if not id then return 0 end "
	"if id ~= ARGV[1] then return -1 end "
	"if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'claims') "
	"else redis.call('HSET', KEYS[1], 'claims', ARGV[2]) end "
	"redis.call('HSET', KEYS[1], 'updated', ARGV[3]) "
	"return 1";

/*
 * KEYS: user hash, users set. ARGV: username, prefix, not-before.
 * 1 removed, 0 no such user (a stray name in the set is dropped).
 */
static const char users_remove_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then "
	"  redis.call('SREM', KEYS[2], ARGV[1]) return 0 end "
	"local id = redis.call('HGET', KEYS[1], 'id') "
	"redis.call('DEL', KEYS[1]) "
	"redis.call('SREM', KEYS[2], ARGV[1]) "
	"if id then "
	"  local uk = ARGV[2] .. 'uid:' .. id "
	"  if redis.call('GET', uk) == ARGV[1] then redis.call('DEL', uk) end "
	"  local nk = ARGV[2] .. 'nbf:' .. id "
	"  local cur = tonumber(redis.call('GET', nk) or '0') or 0 "
	"  if cur < tonumber(ARGV[3]) then redis.call('SET', nk, ARGV[3]) end "
	"end "
	"return 1";

/* KEYS: nbf:<id>. ARGV: t. Raise only; 1 if raised. */
static const char users_nbf_script[] =
	"local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0 "
	"if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return 1 end "
	"return 0";

/*
 * Read only. KEYS: lock:u, fail:u, lock:a, fail:a. ARGV: now_ms, delay base,
 * delay cap, has address (0/1). Returns {locked 0/1, ms still to wait}.
 * The wait never exceeds the delay itself, whatever a skewed clock wrote.
 */
static const char users_check_script[] =
	"local now, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) "
	"local locked = 0 "
	"if redis.call('EXISTS', KEYS[1]) == 1 then locked = 1 end "
	"if ARGV[4] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then locked = 1 end "
	"local f = redis.call('HMGET', KEYS[2], 'n', 'last') "
	"local n = tonumber(f[1]) or 0 "
	"local wait = 0 "
	"if n > 0 and base > 0 then "
	"  local d = cap "
	"  if n <= 62 then d = math.min(base * 2 ^ (n - 1), cap) end "
	"  wait = math.min((tonumber(f[2]) or 0) + d - now, d) "
	"  if wait < 0 then wait = 0 end "
	"end "
	"return {locked, math.floor(wait)}";

/*
 * Count one failure. KEYS: lock:u, fail:u, lock:a, fail:a. ARGV: now_ms,
 * window_ms, lock_ms, max_failures, max_failures_addr, has address (0/1).
 * Returns the USERS_LOCKED_* bits of the locks this failure set. A counter
 * that somehow lost its TTL gets one again, so none lives forever.
 */
static const char users_failed_script[] =
	"local res = 0 "
	"local function count(lk, fk, max, bit) "
	"  if redis.call('EXISTS', lk) == 1 then return end "
	"  local n = redis.call('HINCRBY', fk, 'n', 1) "
	"  redis.call('HSET', fk, 'last', ARGV[1]) "
	"  if n == 1 or redis.call('PTTL', fk) < 0 then "
	"    redis.call('PEXPIRE', fk, ARGV[2]) end "
	"  if max > 0 and n >= max then "
	"    redis.call('SET', lk, '1', 'PX', ARGV[3]) "
	"    redis.call('DEL', fk) "
	"    res = res + bit "
	"  end "
	"end "
	"if ARGV[6] == '1' then count(KEYS[3], KEYS[4], tonumber(ARGV[5]), 2) end "
	"count(KEYS[1], KEYS[2], tonumber(ARGV[4]), 1) "
	"return res";

/* Claim names that tokens, ID tokens or introspection answers use themselves. */
static const char *const users_reserved_claims[] = {
	"sub", "iss", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce",
	"acr", "amr", "azp", "at_hash", "c_hash", "s_hash", "sid", "scope",
	"client_id", "cnf", "act", "may_act", "token_type", "active", "username",
};

/* Standard OIDC claims with a fixed JSON type. */
static const struct {
	const char	*name;
	json_type	 type;
} users_typed_claims[] = {
	{ "name", JSON_STRING },
	{ "given_name", JSON_STRING },
	{ "family_name", JSON_STRING },
	{ "email", JSON_STRING },
	{ "email_verified", JSON_TRUE },	/* JSON_TRUE stands for "a boolean" */
};

#define USERS_NELEM(a)	(sizeof (a) / sizeof (a)[0])

/* Run a script expected to answer an integer: FA_OK and *v, or FA_UNAVAIL. */
static int
users_eval_int(struct redis_conn *conn, const char *what, const char *script,
    int nkeys, int argc, const char *const *args, long long *v)
{
	redisReply *r;
	int rc;

	r = redis_conn_eval(conn, script, nkeys, argc, args);
	if ((rc = redis_pool_reply_ok(r, "users", what)) == FA_OK) {
		if (r->type == REDIS_REPLY_INTEGER)
			*v = r->integer;
		else
			rc = FA_UNAVAIL;
	}
	redis_pool_reply_free(r);
	return rc;
}

int
users_name_valid(const char *name)
{
	size_t i;
	char c;

	if (name == NULL)
		return 0;
	for (i = 0; (c = name[i]) != '\0'; i++) {
		if (i >= USERS_NAME_MAX)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
		    c == '+' || c == '-'))
			return 0;
	}
	return i > 0;
}

/* 32 lower-case hex digits: the ids we make. */
static int
users_id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return 0;
	for (i = 0; id[i] != '\0'; i++)
		if (i >= USERS_ID_LEN || !((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == USERS_ID_LEN;
}

/* A subject for the not-before: 1..FA_SUBJECT_MAX printable, no space. */
static int
users_subject_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= FA_SUBJECT_MAX || s[i] <= ' ' || s[i] > '~')
			return 0;
	return i > 0;
}

/* A PHC string we may store: parses as Argon2id and fits the field. */
static int
users_phc_valid(const char *phc)
{
	struct password_phc parsed;
	size_t len;
	int rc;

	if (phc == NULL || (len = strlen(phc)) == 0 || len > USERS_PW_MAX)
		return 0;
	rc = password_phc_parse(phc, len, &parsed, NULL);
	crypto_wipe(&parsed, sizeof parsed);
	return rc == FA_OK;
}

/*
 * The throttle key component of s: s itself if ok says so, else "#" and the
 * hex SHA-256 of s ('#' is in neither alphabet, so the two never collide).
 */
static void
users_tkey(const char *s, int ok, char out[USERS_TKEY_MAX + 1])
{
	uint8_t h[CRYPTO_HASHLEN];

	if (ok) {
		snprintf(out, USERS_TKEY_MAX + 1, "%s", s);
		return;
	}
	crypto_sha256(s, strlen(s), h);
	out[0] = '#';
	crypto_hex(h, sizeof h, out + 1);
}

/* An address used as is: 1..USERS_ADDR_MAX printable characters without '#' first. */
static int
users_addr_plain(const char *addr)
{
	size_t i;

	if (addr[0] == '#')
		return 0;
	for (i = 0; addr[i] != '\0'; i++)
		if (i >= USERS_ADDR_MAX || addr[i] <= ' ' || addr[i] > '~')
			return 0;
	return i > 0;
}

/* ---------------------------------------------------------------- claims */

static int
users_claim_key_valid(const char *k)
{
	size_t i;

	for (i = 0; k[i] != '\0'; i++)
		if (i >= USERS_CLAIM_KEY_MAX || !((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return 0;
	return i > 0;
}

int
users_claims_validate(const char *text, char **compact, char **cause)
{
	json_error_t jerr;
	json_t *obj = NULL, *v;
	const char *k;
	char *out = NULL;
	size_t len, i;
	int rc = FA_ERR;

	if (compact != NULL)
		*compact = NULL;
	if (text == NULL) {
		*cause = xstrdup("no claims given");
		return FA_ERR;
	}
	if ((len = strlen(text)) > USERS_CLAIMS_INPUT_MAX) {
		*cause = xasprintf("claims: %zu bytes is too long (at most %d)", len,
		    USERS_CLAIMS_MAX);
		return FA_ERR;
	}
	/* jansson rejects invalid UTF-8 and \u0000 in strings for us. */
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		*cause = xasprintf("claims: not JSON: %s at line %d column %d",
		    jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(obj)) {
		*cause = xstrdup("claims: not a JSON object");
		goto out;
	}
	if (json_object_size(obj) > USERS_CLAIMS_COUNT) {
		*cause = xasprintf("claims: %zu claims, at most %d",
		    json_object_size(obj), USERS_CLAIMS_COUNT);
		goto out;
	}
	json_object_foreach(obj, k, v) {
		if (!users_claim_key_valid(k)) {
			*cause = xasprintf("claims: bad claim name \"%.*s\" (1 to %d "
			    "of a-z 0-9 _)", USERS_CLAIM_KEY_MAX, k, USERS_CLAIM_KEY_MAX);
			goto out;
		}
		for (i = 0; i < USERS_NELEM(users_reserved_claims); i++)
			if (strcmp(k, users_reserved_claims[i]) == 0)
				break;
		if (i < USERS_NELEM(users_reserved_claims)) {
			*cause = xasprintf("claims: \"%s\" is reserved for tokens", k);
			goto out;
		}
		if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
			*cause = xasprintf("claims: \"%s\" must be a string, a number "
			    "or a boolean", k);
			goto out;
		}
		for (i = 0; i < USERS_NELEM(users_typed_claims); i++) {
			if (strcmp(k, users_typed_claims[i].name) != 0)
				continue;
			if (users_typed_claims[i].type == JSON_STRING && !json_is_string(v)) {
				*cause = xasprintf("claims: \"%s\" must be a string", k);
				goto out;
			}
			if (users_typed_claims[i].type == JSON_TRUE && !json_is_boolean(v)) {
				*cause = xasprintf("claims: \"%s\" must be a boolean", k);
				goto out;
			}
		}
	}
	/*
	 * Into our own buffer (json_dumpb says how much it needed), so the text
	 * is ours to wipe and free. 15 digits: 1.1 stays "1.1" (17 would print
	 * 1.1000000000000001).
	 */
	out = xmalloc(USERS_CLAIMS_MAX + 1);
	len = json_dumpb(obj, out, USERS_CLAIMS_MAX, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (len == 0) {
		*cause = xstrdup("claims: cannot serialise");
		goto out;
	}
	if (len > USERS_CLAIMS_MAX) {
		*cause = xasprintf("claims: %zu bytes in compact form, at most %d", len,
		    USERS_CLAIMS_MAX);
		goto out;
	}
	out[len] = '\0';
	if (compact != NULL) {
		*compact = out;
		out = NULL;
	}
	rc = FA_OK;
out:
	if (out != NULL) {
		crypto_wipe(out, USERS_CLAIMS_MAX + 1);
		free(out);
	}
	json_decref(obj);
	return rc;
}

/* "fastauth-user:<username>:<id>" into aad; its length. */
static size_t
users_aad(const char *username, const char *id, char *aad, size_t cap)
{
	int n = snprintf(aad, cap, USERS_AAD_PREFIX "%s:%s", username, id);

	return n < 0 ? 0 : (size_t)n;
}

/* Seal compact claims into a fresh base64url string (caller frees). FA_OK or FA_ERR. */
static int
users_claims_seal(const struct users_ctx *ctx, const char *username, const char *id,
    const char *compact, char **field)
{
	char aad[sizeof USERS_AAD_PREFIX + USERS_NAME_MAX + 1 + USERS_ID_LEN + 1];
	size_t n = strlen(compact), aadlen;
	uint8_t *sealed;
	int rc = FA_ERR;

	*field = NULL;
	aadlen = users_aad(username, id, aad, sizeof aad);
	sealed = xmalloc(n + CRYPTO_OVERHEAD);
	if (crypto_seal(ctx->crypto, ctx->data_key, aad, aadlen, compact, n, sealed) != FA_OK)
		goto out;
	*field = xmalloc(B64URL_ENCLEN(n + CRYPTO_OVERHEAD) + 1);
	b64url_encode(sealed, n + CRYPTO_OVERHEAD, *field);
	rc = FA_OK;
out:
	free(sealed);
	return rc;
}

/* Open a claims field into a fresh NUL-terminated string. FA_OK or FA_ERR. */
static int
users_claims_open(const struct users_ctx *ctx, const char *username, const char *id,
    const char *field, size_t len, char **json)
{
	char aad[sizeof USERS_AAD_PREFIX + USERS_NAME_MAX + 1 + USERS_ID_LEN + 1];
	uint8_t *sealed = NULL;
	char *pt = NULL;
	size_t n = 0, aadlen;
	int rc = FA_ERR;

	*json = NULL;
	if (len > USERS_FIELD_MAX)
		return FA_ERR;
	sealed = xmalloc(B64_DECLEN(len));
	if (b64url_decode(field, len, sealed, B64_DECLEN(len), &n) != FA_OK ||
	    n <= CRYPTO_OVERHEAD)
		goto out;
	aadlen = users_aad(username, id, aad, sizeof aad);
	pt = xmalloc(n - CRYPTO_OVERHEAD + 1);
	if (crypto_open(ctx->crypto, ctx->data_key, aad, aadlen, sealed, n, pt) != FA_OK)
		goto out;
	pt[n - CRYPTO_OVERHEAD] = '\0';
	/* We sealed a C string; an inner NUL means it is not ours. */
	if (strlen(pt) != n - CRYPTO_OVERHEAD)
		goto out;
	*json = pt;
	pt = NULL;
	rc = FA_OK;
out:
	if (pt != NULL) {
		crypto_wipe(pt, n - CRYPTO_OVERHEAD + 1);
		free(pt);
	}
	free(sealed);
	return rc;
}

/* --------------------------------------------------------------- records */

void
users_user_clear(struct users_user *u)
{
	if (u == NULL)
		return;
	if (u->claims_json != NULL) {
		crypto_wipe(u->claims_json, strlen(u->claims_json));
		free(u->claims_json);
	}
	explicit_bzero(u, sizeof *u);
}

/* Copy a reply string of at most cap-1 bytes without NUL into out. FA_OK or FA_ERR. */
static int
users_copy(const redisReply *v, char *out, size_t cap)
{
	if (v->len == 0 || v->len >= cap || memchr(v->str, '\0', v->len) != NULL)
		return FA_ERR;
	memcpy(out, v->str, v->len);
	out[v->len] = '\0';
	return FA_OK;
}

/*
 * Decode an HGETALL reply of username's record (and the nbf reply) into out.
 * FA_ERR (logged, naming the field; never its value) if corrupt or the
 * claims do not open.
 */
static int
users_parse(const struct users_ctx *ctx, const char *username, const redisReply *h,
    const redisReply *nbf, struct users_user *out)
{
	enum { F_ID = 1, F_PW = 2, F_LOCKED = 4, F_CREATED = 8 };
	const redisReply *claims = NULL;
	const char *field = "layout";
	unsigned seen = 0;
	long long v;
	size_t i;

	memset(out, 0, sizeof *out);
	snprintf(out->username, sizeof out->username, "%s", username);
	if (h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
		goto corrupt;
	for (i = 0; i < h->elements; i += 2) {
		const redisReply *k = h->element[i], *val = h->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
			goto corrupt;
		field = k->str;
		if (strcmp(k->str, "id") == 0) {
			if (users_copy(val, out->id, sizeof out->id) != FA_OK ||
			    !users_id_valid(out->id))
				goto corrupt;
			seen |= F_ID;
		} else if (strcmp(k->str, "pw") == 0) {
			if (users_copy(val, out->pw, sizeof out->pw) != FA_OK)
				goto corrupt;
			seen |= F_PW;
		} else if (strcmp(k->str, "locked") == 0) {
			if (val->len != 1 || (val->str[0] != '0' && val->str[0] != '1'))
				goto corrupt;
			out->locked = val->str[0] == '1';
			seen |= F_LOCKED;
		} else if (strcmp(k->str, "created") == 0) {
			if (redis_pool_decimal(val->str, val->len, &v) != FA_OK)
				goto corrupt;
			out->created = (time_t)v;
			seen |= F_CREATED;
		} else if (strcmp(k->str, "updated") == 0) {
			if (redis_pool_decimal(val->str, val->len, &v) != FA_OK)
				goto corrupt;
			out->updated = (time_t)v;
		} else if (strcmp(k->str, "claims") == 0)
			claims = val;
		/* Unknown fields are a newer version's: ignore them. */
	}
	if (seen != (F_ID | F_PW | F_LOCKED | F_CREATED)) {
		field = "missing field";
		goto corrupt;
	}
	if (out->updated == 0)
		out->updated = out->created;
	field = "not-before";
	if (nbf->type == REDIS_REPLY_STRING && nbf->len > 0) {
		if (redis_pool_decimal(nbf->str, nbf->len, &v) != FA_OK)
			goto corrupt;
		out->not_before = (time_t)v;
	} else if (nbf->type != REDIS_REPLY_STRING && nbf->type != REDIS_REPLY_NIL)
		goto corrupt;
	if (claims != NULL && users_claims_open(ctx, username, out->id, claims->str,
	    claims->len, &out->claims_json) != FA_OK) {
		/* Copied from another user, tampered with, or another data key. */
		field = "claims do not decrypt";
		goto corrupt;
	}
	return FA_OK;

corrupt:
	log_warn("users: record of user %s is corrupt (%s)", username, field);
	users_user_clear(out);
	return FA_ERR;
}

int
users_get(const struct users_ctx *ctx, const char *username, struct users_user *out)
{
	const char *prefix = redis_conn_prefix(ctx->conn);
	char *key = NULL, *nbfp = NULL;
	redisReply *r = NULL;
	int rc, attempt;

	memset(out, 0, sizeof *out);
	if (!users_name_valid(username))
		return FA_NOTFOUND;
	key = xasprintf("%suser:%s", prefix, username);
	nbfp = xasprintf("%snbf:", prefix);
	for (attempt = 0;; attempt++) {		/* a read-only script */
		r = redis_conn_eval(ctx->conn, users_get_script, 1, 2,
		    (const char *[]){ key, nbfp });
		if (r != NULL || !redis_conn_retry(ctx->conn, attempt))
			break;
	}
	if ((rc = redis_pool_reply_ok(r, "users", "get user")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (r->elements == 0) {
		rc = FA_NOTFOUND;
		goto out;
	}
	if (r->elements != 2) {
		rc = FA_UNAVAIL;
		goto out;
	}
	rc = users_parse(ctx, username, r->element[0], r->element[1], out);
out:
	redis_pool_reply_free(r);
	free(key);
	free(nbfp);
	return rc;
}

int
users_get_by_id(const struct users_ctx *ctx, const char *id, struct users_user *out)
{
	const char *prefix = redis_conn_prefix(ctx->conn);
	char *uidkey = NULL, *nbfkey = NULL, *userp = NULL;
	char username[USERS_NAME_MAX + 1];
	redisReply *r = NULL;
	int rc, attempt;

	memset(out, 0, sizeof *out);
	if (!users_id_valid(id))
		return FA_NOTFOUND;
	uidkey = xasprintf("%suid:%s", prefix, id);
	nbfkey = xasprintf("%snbf:%s", prefix, id);
	userp = xasprintf("%suser:", prefix);
	for (attempt = 0;; attempt++) {		/* a read-only script */
		r = redis_conn_eval(ctx->conn, users_get_by_id_script, 2, 3,
		    (const char *[]){ uidkey, nbfkey, userp });
		if (r != NULL || !redis_conn_retry(ctx->conn, attempt))
			break;
	}
	if ((rc = redis_pool_reply_ok(r, "users", "get user by id")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (r->elements == 0) {
		rc = FA_NOTFOUND;
		goto out;
	}
	if (r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (users_copy(r->element[0], username, sizeof username) != FA_OK ||
	    !users_name_valid(username)) {
		log_warn("users: uid index of %s is corrupt", id);
		rc = FA_ERR;
		goto out;
	}
	if (r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements == 0) {
		/* Only a manual edit leaves an index without its record. */
		log_warn("users: uid index of %s names a missing user", id);
		rc = FA_NOTFOUND;
		goto out;
	}
	if ((rc = users_parse(ctx, username, r->element[1], r->element[2], out)) != FA_OK)
		goto out;
	if (strcmp(out->id, id) != 0) {
		log_warn("users: uid index of %s names user %s of another id", id, username);
		users_user_clear(out);
		rc = FA_ERR;
	}
out:
	redis_pool_reply_free(r);
	free(uidkey);
	free(nbfkey);
	free(userp);
	return rc;
}

int
users_create(const struct users_ctx *ctx, const char *username, const char *pw_phc,
    char id_out[USERS_ID_LEN + 1])
{
	const char *prefix = redis_conn_prefix(ctx->conn);
	char *key = NULL, *set = NULL, *uidkey = NULL;
	char id[USERS_ID_LEN + 1], now[32];
	uint8_t raw[USERS_ID_LEN / 2];
	long long v = 0;
	int rc = FA_ERR, attempt;

	id_out[0] = '\0';
	if (!users_name_valid(username) || !users_phc_valid(pw_phc))
		return FA_ERR;
	key = xasprintf("%suser:%s", prefix, username);
	set = xasprintf("%susers", prefix);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	/* A 128-bit id repeats only by a broken generator; still, never share one. */
	for (attempt = 0; attempt < USERS_ATTEMPTS; attempt++) {
		if (crypto_random(raw, sizeof raw) != FA_OK) {
			rc = FA_ERR;
			goto out;
		}
		crypto_hex(raw, sizeof raw, id);
		free(uidkey);
		uidkey = xasprintf("%suid:%s", prefix, id);
		rc = users_eval_int(ctx->conn, "create user", users_create_script, 3, 7,
		    (const char *[]){ key, set, uidkey, username, id, pw_phc, now }, &v);
		if (rc != FA_OK || v != -1)
			break;
	}
	if (rc != FA_OK)
		goto out;
	if (v == 1) {
		memcpy(id_out, id, sizeof id);
		rc = FA_OK;
	} else
		rc = v == 0 ? FA_DENIED : FA_ERR;
out:
	free(key);
	free(set);
	free(uidkey);
	return rc;
}

/* HSET one field of an existing user (and updated). */
static int
users_set_field(const struct users_ctx *ctx, const char *username, const char *field,
    const char *value)
{
	char *key, now[32];
	long long v = 0;
	int rc;

	if (!users_name_valid(username))
		return FA_NOTFOUND;
	key = xasprintf("%suser:%s", redis_conn_prefix(ctx->conn), username);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	rc = users_eval_int(ctx->conn, "set user field", users_set_field_script, 1, 4,
	    (const char *[]){ key, field, value, now }, &v);
	free(key);
	if (rc != FA_OK)
		return rc;
	return v == 1 ? FA_OK : FA_NOTFOUND;
}

int
users_set_password(const struct users_ctx *ctx, const char *username, const char *pw_phc)
{
	if (!users_phc_valid(pw_phc))
		return FA_ERR;
	return users_set_field(ctx, username, "pw", pw_phc);
}

int
users_rehash_password(const struct users_ctx *ctx, const char *username,
    const char *old_phc, const char *new_phc)
{
	char *key, now[32];
	long long v = 0;
	int rc;

	if (old_phc == NULL || !users_phc_valid(new_phc))
		return FA_ERR;
	if (!users_name_valid(username))
		return FA_NOTFOUND;
	key = xasprintf("%suser:%s", redis_conn_prefix(ctx->conn), username);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	rc = users_eval_int(ctx->conn, "rehash password", users_rehash_script, 1, 4,
	    (const char *[]){ key, old_phc, new_phc, now }, &v);
	free(key);
	if (rc != FA_OK)
		return rc;
	return v == 1 ? FA_OK : v == 0 ? FA_NOTFOUND : FA_DENIED;
}

int
users_set_locked(const struct users_ctx *ctx, const char *username, int locked)
{
	return users_set_field(ctx, username, "locked", locked ? "1" : "0");
}

int
users_set_claims(const struct users_ctx *ctx, const char *username,
    const char *claims_json, char **cause)
{
	const char *prefix = redis_conn_prefix(ctx->conn);
	char *key = NULL, *compact = NULL, *field = NULL, now[32];
	char id[USERS_ID_LEN + 1];
	redisReply *r = NULL;
	long long v = 0;
	int rc, attempt;

	*cause = NULL;
	if (claims_json != NULL &&
	    users_claims_validate(claims_json, &compact, cause) != FA_OK)
		return FA_ERR;
	if (!users_name_valid(username)) {
		rc = FA_NOTFOUND;
		goto out;
	}
	key = xasprintf("%suser:%s", prefix, username);
	/*
	 * The seal needs the id; the script stores only if the id is still the
	 * one read, and a user re-created in between is simply read again.
	 */
	for (attempt = 0; attempt < USERS_ATTEMPTS; attempt++) {
		redis_pool_reply_free(r);
		r = redis_conn_command(ctx->conn, "HGET %s id", key);
		if ((rc = redis_pool_reply_ok(r, "users", "get user id")) != FA_OK)
			goto out;
		if (r->type == REDIS_REPLY_NIL) {
			rc = FA_NOTFOUND;
			goto out;
		}
		if (r->type != REDIS_REPLY_STRING || users_copy(r, id, sizeof id) != FA_OK ||
		    !users_id_valid(id)) {
			log_warn("users: record of user %s is corrupt (id)", username);
			rc = FA_ERR;
			*cause = xstrdup("the user record is corrupt");
			goto out;
		}
		free(field);
		field = NULL;
		if (compact != NULL && strcmp(compact, "{}") != 0 &&
		    users_claims_seal(ctx, username, id, compact, &field) != FA_OK) {
			rc = FA_ERR;
			*cause = xstrdup("cannot seal the claims");
			goto out;
		}
		snprintf(now, sizeof now, "%lld", (long long)time(NULL));
		rc = users_eval_int(ctx->conn, "set claims", users_claims_script, 1, 4,
		    (const char *[]){ key, id, field != NULL ? field : "", now }, &v);
		if (rc != FA_OK || v != -1)
			break;
	}
	if (rc != FA_OK)
		goto out;
	if (v == 1)
		rc = FA_OK;
	else if (v == 0)
		rc = FA_NOTFOUND;
	else {
		rc = FA_UNAVAIL;	/* re-created USERS_ATTEMPTS times in a row */
		*cause = xstrdup("the user record keeps changing");
	}
out:
	redis_pool_reply_free(r);
	if (compact != NULL) {
		crypto_wipe(compact, strlen(compact));
		free(compact);
	}
	free(field);
	free(key);
	return rc;
}

int
users_remove(const struct users_ctx *ctx, const char *username)
{
	const char *prefix = redis_conn_prefix(ctx->conn);
	char *key, *set, nbf[32];
	long long v = 0;
	int rc;

	if (!users_name_valid(username))
		return FA_NOTFOUND;
	key = xasprintf("%suser:%s", prefix, username);
	set = xasprintf("%susers", prefix);
	/* +1: a token issued earlier in this very second has iat == now. */
	snprintf(nbf, sizeof nbf, "%lld", (long long)time(NULL) + 1);
	rc = users_eval_int(ctx->conn, "remove user", users_remove_script, 2, 5,
	    (const char *[]){ key, set, username, prefix, nbf }, &v);
	free(key);
	free(set);
	if (rc != FA_OK)
		return rc;
	return v == 1 ? FA_OK : FA_NOTFOUND;
}

static int
users_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
users_list(const struct users_ctx *ctx, char ***names, int *n)
{
	redisReply *r;
	char **v = NULL;
	size_t i;
	int rc;

	*names = NULL;
	*n = 0;
	r = redis_conn_command(ctx->conn, "SMEMBERS %susers", redis_conn_prefix(ctx->conn));
	if ((rc = redis_pool_reply_ok(r, "users", "list users")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY) {
		rc = FA_UNAVAIL;
		goto out;
	}
	v = xcalloc(r->elements + 1, sizeof *v);
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING) {
			log_warn("users: the users set holds a non-string");
			while (i > 0)
				free(v[--i]);
			free(v);
			rc = FA_ERR;
			goto out;
		}
		v[i] = xstrndup(r->element[i]->str, r->element[i]->len);
	}
	qsort(v, r->elements, sizeof *v, users_name_cmp);
	*names = v;
	*n = (int)r->elements;
out:
	redis_pool_reply_free(r);
	return rc;
}

int
users_set_not_before(struct redis_conn *conn, const char *id, time_t t)
{
	char *key, val[32];
	long long v = 0;
	int rc;

	if (!users_subject_valid(id) || t < 0)
		return FA_ERR;
	key = xasprintf("%snbf:%s", redis_conn_prefix(conn), id);
	snprintf(val, sizeof val, "%lld", (long long)t);
	rc = users_eval_int(conn, "set not-before", users_nbf_script, 1, 2,
	    (const char *[]){ key, val }, &v);
	if (rc == FA_OK)
		(void)redis_conn_durable(conn, "not-before");	/* a revocation */
	free(key);
	return rc;
}

int
users_get_not_before(struct redis_conn *conn, const char *id, time_t *t)
{
	redisReply *r;
	long long v;
	int rc;

	*t = 0;
	if (!users_subject_valid(id))
		return FA_OK;	/* no such subject can have one */
	r = redis_conn_command(conn, "GET %snbf:%s", redis_conn_prefix(conn), id);
	if ((rc = redis_pool_reply_ok(r, "users", "get not-before")) != FA_OK)
		goto out;
	if (r->type == REDIS_REPLY_NIL)
		goto out;
	if (r->type != REDIS_REPLY_STRING || redis_pool_decimal(r->str, r->len, &v) != FA_OK) {
		log_warn("users: not-before of %s is corrupt", id);
		rc = FA_ERR;
		goto out;
	}
	*t = (time_t)v;
out:
	redis_pool_reply_free(r);
	return rc;
}

/* -------------------------------------------------------------- throttle */

/* Upper bound of any duration we accept: ten years, far from overflow in ms. */
#define USERS_DURATION_MAX	(10L * 366 * 86400)

static int
users_params_valid(const struct users_throttle_params *p)
{
	if (p->window_s <= 0 || p->window_s > USERS_DURATION_MAX ||
	    p->max_failures < 0 || p->max_failures_addr < 0 ||
	    p->delay_base_ms < 0 || p->delay_max_ms < 0 ||
	    p->delay_base_ms > USERS_DURATION_MAX || p->delay_max_ms > USERS_DURATION_MAX ||
	    p->lock_s < 0 || p->lock_s > USERS_DURATION_MAX)
		return 0;
	if ((p->max_failures > 0 || p->max_failures_addr > 0) && p->lock_s == 0)
		return 0;
	return 1;
}

/* The four throttle keys of username and addr (caller frees each). */
struct users_tkeys {
	char	*lock_u, *fail_u, *lock_a, *fail_a;
	int	 has_addr;
};

static void
users_tkeys_make(struct redis_conn *conn, const char *username, const char *addr,
    struct users_tkeys *k)
{
	const char *prefix = redis_conn_prefix(conn);
	char u[USERS_TKEY_MAX + 1], a[USERS_TKEY_MAX + 1];

	users_tkey(username != NULL ? username : "", users_name_valid(username), u);
	k->has_addr = addr != NULL && addr[0] != '\0';
	if (k->has_addr)
		users_tkey(addr, users_addr_plain(addr), a);
	else
		snprintf(a, sizeof a, "-");	/* unused by the scripts */
	k->lock_u = xasprintf("%slock:u:%s", prefix, u);
	k->fail_u = xasprintf("%sfail:u:%s", prefix, u);
	k->lock_a = xasprintf("%slock:a:%s", prefix, a);
	k->fail_a = xasprintf("%sfail:a:%s", prefix, a);
}

static void
users_tkeys_free(struct users_tkeys *k)
{
	free(k->lock_u);
	free(k->fail_u);
	free(k->lock_a);
	free(k->fail_a);
}

int
users_login_check(struct redis_conn *conn, const struct users_throttle_params *p,
    const char *username, const char *addr, long now_ms, int *locked, long *delay_ms)
{
	char now[32], base[32], cap[32];
	struct users_tkeys k;
	redisReply *r = NULL;
	int rc;

	/* Fail closed if a caller ignores the return code. */
	*locked = 1;
	*delay_ms = 0;
	if (!users_params_valid(p))
		return FA_ERR;
	users_tkeys_make(conn, username, addr, &k);
	snprintf(now, sizeof now, "%ld", now_ms);
	snprintf(base, sizeof base, "%ld", p->delay_base_ms);
	snprintf(cap, sizeof cap, "%ld", p->delay_max_ms > p->delay_base_ms ?
	    p->delay_max_ms : p->delay_base_ms);
	r = redis_conn_eval(conn, users_check_script, 4, 8, (const char *[]){ k.lock_u,
	    k.fail_u, k.lock_a, k.fail_a, now, base, cap, k.has_addr ? "1" : "0" });
	if ((rc = redis_pool_reply_ok(r, "users", "login check")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER) {
		rc = FA_UNAVAIL;
		goto out;
	}
	*locked = r->element[0]->integer != 0;
	*delay_ms = (long)r->element[1]->integer;
out:
	redis_pool_reply_free(r);
	users_tkeys_free(&k);
	return rc;
}

int
users_login_failed(struct redis_conn *conn, const struct users_throttle_params *p,
    const char *username, const char *addr, long now_ms, int *now_locked)
{
	char now[32], window[32], lock[32], maxu[16], maxa[16];
	struct users_tkeys k;
	long long v = 0;
	int rc;

	*now_locked = 0;
	if (!users_params_valid(p))
		return FA_ERR;
	users_tkeys_make(conn, username, addr, &k);
	snprintf(now, sizeof now, "%ld", now_ms);
	snprintf(window, sizeof window, "%ld", p->window_s * 1000);
	/* PX 0 is an error; lock_s is 0 only when nothing can lock. */
	snprintf(lock, sizeof lock, "%ld", p->lock_s > 0 ? p->lock_s * 1000 : 1);
	snprintf(maxu, sizeof maxu, "%d", p->max_failures);
	snprintf(maxa, sizeof maxa, "%d", p->max_failures_addr);
	rc = users_eval_int(conn, "login failed", users_failed_script, 4, 10,
	    (const char *[]){ k.lock_u, k.fail_u, k.lock_a, k.fail_a, now, window, lock,
	    maxu, maxa, k.has_addr ? "1" : "0" }, &v);
	if (rc == FA_OK)
		*now_locked = (int)v & (USERS_LOCKED_USER | USERS_LOCKED_ADDR);
	users_tkeys_free(&k);
	return rc;
}

/* DEL the given keys of the username's (or address's) throttle state. */
static int
users_throttle_del(struct redis_conn *conn, const char *what, const char *k1,
    const char *k2)
{
	const char *argv[] = { "DEL", k1, k2 };
	size_t argvlen[] = { 3, strlen(k1), k2 != NULL ? strlen(k2) : 0 };
	redisReply *r;
	int rc;

	r = redis_conn_commandargv(conn, k2 != NULL ? 3 : 2, argv, argvlen);
	rc = redis_pool_reply_ok(r, "users", what);
	redis_pool_reply_free(r);
	return rc;
}

int
users_login_succeeded(struct redis_conn *conn, const char *username)
{
	struct users_tkeys k;
	int rc;

	users_tkeys_make(conn, username, NULL, &k);
	rc = users_throttle_del(conn, "login succeeded", k.fail_u, NULL);
	users_tkeys_free(&k);
	return rc;
}

int
users_unlock(struct redis_conn *conn, const char *username)
{
	struct users_tkeys k;
	int rc;

	users_tkeys_make(conn, username, NULL, &k);
	rc = users_throttle_del(conn, "unlock user", k.lock_u, k.fail_u);
	users_tkeys_free(&k);
	return rc;
}

int
users_unlock_addr(struct redis_conn *conn, const char *addr)
{
	struct users_tkeys k;
	int rc;

	if (addr == NULL || addr[0] == '\0')
		return FA_OK;
	users_tkeys_make(conn, "", addr, &k);
	rc = users_throttle_del(conn, "unlock address", k.lock_a, k.fail_a);
	users_tkeys_free(&k);
	return rc;
}
