/*
 * refresh.c -- refresh tokens in Redis: issue, rotate, revoke, look up
 * (layout in refresh.h).
 *
 * It owns the token format, the key names and the rotation rules. Every step
 * that reads and then changes state is one Lua script run by EVAL, so Redis
 * executes it atomically with respect to every other client on every host:
 * two concurrent rotations of one token are serialised, the second sees the
 * first's "rotated" and is treated as a reuse (or as the one grace repeat).
 * A script is never retried: an EVAL without a reply may have run, and
 * running it again would look like a reuse of the token and revoke the family.
 * Scripts check everything before their first write, because Redis does not
 * roll back the writes of a script that fails halfway.
 *
 * The raw token never leaves this file except to the caller: it is hashed
 * (SHA-256 of the whole text, lower-case hex) before any I/O, never logged,
 * and the random bytes behind it are wiped.
 *
 * The scripts build the family and successor key names from the prefix and
 * stored ids, which Redis Cluster would not allow; fastauth runs on a single
 * Redis (with Sentinel for failover), where this is fine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "store/redis_pool.h"
#include "store/refresh.h"

#define REFRESH_PREFIX_LEN	(sizeof REFRESH_TOKEN_PREFIX - 1)
#define REFRESH_RAW_LEN		32	/* random bytes in a token */
#define REFRESH_HASH_HEX	(2 * CRYPTO_HASHLEN)
/* Ten years: far beyond any sane lifetime, far from time_t overflow. */
#define REFRESH_DURATION_MAX	(10L * 366 * 86400)

/*
 * New family and its first token. KEYS: rt:<hash>, rtfam:<fam>, rtfams:<sub>.
 * ARGV: fam, client, sub, scope, now, abs, token TTL, family TTL, prefix.
 * 1, or 0 if a key exists already (a random collision: nothing written).
 * A few random members of the subject's set are dropped if their family has
 * expired: each issue cleans up to three, so dead ids never pile up.
 */
static const char refresh_issue_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 "
	"then return 0 end "
	"redis.call('HSET', KEYS[2], 'client', ARGV[2], 'sub', ARGV[3], 'scope', ARGV[4], "
	"'created', ARGV[5], 'abs', ARGV[6], 'revoked', '0') "
	"redis.call('EXPIRE', KEYS[2], ARGV[8]) "
	"redis.call('HSET', KEYS[1], 'fam', ARGV[1], 'client', ARGV[2], 'sub', ARGV[3], "
	"'scope', ARGV[4], 'iat', ARGV[5], 'abs', ARGV[6], 'state', 'active') "
	"redis.call('EXPIRE', KEYS[1], ARGV[7]) "
	"for _, m in ipairs(redis.call('SRANDMEMBER', KEYS[3], 3)) do "
	"  if redis.call('EXISTS', ARGV[9] .. 'rtfam:' .. m) == 0 then "
	"    redis.call('SREM', KEYS[3], m) end "
	"end "
	"redis.call('SADD', KEYS[3], ARGV[1]) "
	"if redis.call('TTL', KEYS[3]) < tonumber(ARGV[8]) then "
	"  redis.call('EXPIRE', KEYS[3], ARGV[8]) end "
	"return 1";

/*
 * Rotate. KEYS: rt:<presented>, rt:<successor>. ARGV: prefix, client, now,
 * idle, grace, successor hash.
 * Returns {1, fam, sub, scope, abs, created, successor TTL, graced 0/1} on
 * success; {0, reason} when refused; {0, "reuse", fam, sub} when this call
 * revoked the family because a rotated token came back.
 * Order of the checks: a token of another client is refused before anything
 * about its family is looked at or changed, so one client cannot revoke
 * another's family by presenting its token; a family already revoked is
 * refused without a second "reuse", so one incident raises one event.
 */
static const char refresh_rotate_script[] =
	"local now, idle, grace = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]) "
	"local t = redis.call('HMGET', KEYS[1], 'fam', 'client', 'state', 'rotated_at', "
	"'grace_used', 'succ') "
	"if not t[1] then return {0, 'unknown'} end "
	"if t[2] ~= ARGV[2] then return {0, 'client'} end "
	"local fk = ARGV[1] .. 'rtfam:' .. t[1] "
	"local f = redis.call('HMGET', fk, 'client', 'sub', 'scope', 'revoked', 'abs', "
	"'created') "
	"if not f[1] or not f[2] or not f[3] or not f[4] or not f[5] then "
	"  return {0, 'nofamily'} end "
	"if f[4] ~= '0' then return {0, 'revoked'} end "
	"if f[1] ~= ARGV[2] then return {0, 'client'} end "
	"local abs = tonumber(f[5]) "
	"if not abs or now >= abs then return {0, 'expired'} end "
	"if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 'collision'} end "
	"local graced = 0 "
	"if t[3] == 'rotated' then "
	"  local ss = false "
	"  if t[6] then ss = redis.call('HGET', ARGV[1] .. 'rt:' .. t[6], 'state') end "
	"  if grace > 0 and t[5] == '0' and (tonumber(t[4]) or 0) + grace >= now "
	"      and ss == 'active' then "
	"    redis.call('HSET', KEYS[1], 'grace_used', '1') "
	"    graced = 1 "
	"  else "
	"    redis.call('HSET', fk, 'revoked', '1', 'revoked_at', ARGV[3]) "
	"    return {0, 'reuse', t[1], f[2]} "
	"  end "
	"elseif t[3] == 'active' then "
	"  redis.call('HSET', KEYS[1], 'state', 'rotated', 'rotated_at', ARGV[3], "
	"  'grace_used', '0', 'succ', ARGV[6]) "
	"  redis.call('HDEL', KEYS[1], 'sub', 'scope') "
	"  redis.call('EXPIRE', KEYS[1], abs - now) "
	"else "
	"  return {0, 'corrupt'} "
	"end "
	"local ttl = abs - now "
	"if idle > 0 and idle < ttl then ttl = idle end "
	"redis.call('HSET', KEYS[2], 'fam', t[1], 'client', f[1], 'sub', f[2], "
	"'scope', f[3], 'iat', ARGV[3], 'abs', f[5], 'state', 'active') "
	"redis.call('EXPIRE', KEYS[2], ttl) "
	"return {1, t[1], f[2], f[3], f[5], f[6] or '0', tostring(ttl), tostring(graced)}";

/*
 * Revoke the family of a token of client. KEYS: rt:<hash>. ARGV: prefix,
 * client, now. {0} if not client's (or unknown), else {1, fam, sub, newly}.
 * The presented token's record goes too: its family now refuses it anyway.
 */
static const char refresh_revoke_script[] =
	"local t = redis.call('HMGET', KEYS[1], 'fam', 'client') "
	"if not t[1] or t[2] ~= ARGV[2] then return {0} end "
	"local fk = ARGV[1] .. 'rtfam:' .. t[1] "
	"local f = redis.call('HMGET', fk, 'client', 'sub', 'revoked') "
	"if not f[1] or f[1] ~= ARGV[2] then return {0} end "
	"local newly = 0 "
	"if f[3] ~= '1' then "
	"  redis.call('HSET', fk, 'revoked', '1', 'revoked_at', ARGV[3]) newly = 1 end "
	"redis.call('DEL', KEYS[1]) "
	"return {1, t[1], f[2] or '', tostring(newly)}";

/*
 * Revoke every family of a subject. KEYS: rtfams:<sub>. ARGV: prefix, now.
 * Returns how many were newly revoked; expired ids are dropped from the set.
 */
static const char refresh_revoke_subject_script[] =
	"local n = 0 "
	"for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
	"  local fk = ARGV[1] .. 'rtfam:' .. m "
	"  if redis.call('EXISTS', fk) == 1 then "
	"    if redis.call('HGET', fk, 'revoked') ~= '1' then "
	"      redis.call('HSET', fk, 'revoked', '1', 'revoked_at', ARGV[2]) n = n + 1 end "
	"  else redis.call('SREM', KEYS[1], m) end "
	"end "
	"return n";

/*
 * Read only. KEYS: rt:<hash>. ARGV: prefix. {0} if unknown (or its family is
 * gone), else {1, fam, client, state, iat, family client, sub, scope,
 * revoked, abs, created, TTL of the token}.
 */
static const char refresh_lookup_script[] =
	"local t = redis.call('HMGET', KEYS[1], 'fam', 'client', 'state', 'iat') "
	"if not t[1] then return {0} end "
	"local f = redis.call('HMGET', ARGV[1] .. 'rtfam:' .. t[1], 'client', 'sub', "
	"'scope', 'revoked', 'abs', 'created') "
	"if not f[1] then return {0} end "
	"return {1, t[1], t[2] or '', t[3] or '', t[4] or '0', f[1], f[2] or '', "
	"f[3] or '', f[4] or '', f[5] or '', f[6] or '0', "
	"tostring(redis.call('TTL', KEYS[1]))}";

static int
refresh_params_valid(const struct refresh_params *p)
{
	return p->absolute_s > 0 && p->absolute_s <= REFRESH_DURATION_MAX &&
	    p->idle_s >= 0 && p->idle_s <= REFRESH_DURATION_MAX &&
	    p->grace_s >= 0 && p->grace_s <= REFRESH_DURATION_MAX;
}

/* 1..max printable ASCII characters, space allowed only if space_ok. */
static int
refresh_text_valid(const char *s, size_t max, int space_ok, int empty_ok)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || s[i] < ' ' || s[i] > '~' || (s[i] == ' ' && !space_ok))
			return 0;
	return i > 0 || empty_ok;
}

/*
 * The record key of a token: "<p>rt:" + hex SHA-256 of the text, after
 * checking the text has our exact shape (no I/O for junk). FA_OK or FA_ERR.
 */
static int
refresh_key(struct redis_conn *conn, const char *token, char **key)
{
	uint8_t raw[REFRESH_RAW_LEN + 3], h[CRYPTO_HASHLEN];
	char hex[REFRESH_HASH_HEX + 1];
	size_t n;
	int rc = FA_ERR;

	*key = NULL;
	if (token == NULL || strlen(token) != REFRESH_TOKEN_LEN ||
	    memcmp(token, REFRESH_TOKEN_PREFIX, REFRESH_PREFIX_LEN) != 0)
		return FA_ERR;
	/* Strict decoding: one spelling per token, so one record per token. */
	if (b64url_decode(token + REFRESH_PREFIX_LEN, REFRESH_TOKEN_LEN - REFRESH_PREFIX_LEN,
	    raw, sizeof raw, &n) != FA_OK || n != REFRESH_RAW_LEN)
		goto out;
	crypto_sha256(token, REFRESH_TOKEN_LEN, h);
	crypto_hex(h, sizeof h, hex);
	*key = xasprintf("%srt:%s", redis_conn_prefix(conn), hex);
	rc = FA_OK;
out:
	crypto_wipe(raw, sizeof raw);
	return rc;
}

/*
 * A fresh token into token (REFRESH_TOKEN_SIZE bytes) and its record key
 * (*key) and hash (hex, for the predecessor's "succ"). FA_OK or FA_ERR.
 */
static int
refresh_new_token(struct redis_conn *conn, char token[REFRESH_TOKEN_SIZE], char **key,
    char hex[REFRESH_HASH_HEX + 1])
{
	uint8_t raw[REFRESH_RAW_LEN], h[CRYPTO_HASHLEN];

	*key = NULL;
	/* A secret: straight from getrandom, never the nonce pool. */
	if (crypto_random(raw, sizeof raw) != FA_OK)
		return FA_ERR;
	memcpy(token, REFRESH_TOKEN_PREFIX, REFRESH_PREFIX_LEN);
	b64url_encode(raw, sizeof raw, token + REFRESH_PREFIX_LEN);
	crypto_wipe(raw, sizeof raw);
	crypto_sha256(token, REFRESH_TOKEN_LEN, h);
	crypto_hex(h, sizeof h, hex);
	*key = xasprintf("%srt:%s", redis_conn_prefix(conn), hex);
	return FA_OK;
}

/* Element i of an array reply as a string into out (cap bytes). FA_OK or FA_ERR. */
static int
refresh_str(const redisReply *r, size_t i, char *out, size_t cap)
{
	const redisReply *e;

	if (i >= r->elements)
		return FA_ERR;
	e = r->element[i];
	if (e->type != REDIS_REPLY_STRING || e->len >= cap ||
	    memchr(e->str, '\0', e->len) != NULL)
		return FA_ERR;
	memcpy(out, e->str, e->len);
	out[e->len] = '\0';
	return FA_OK;
}

/* Element i as a decimal (an optional '-', up to 18 digits). FA_OK or FA_ERR. */
static int
refresh_num(const redisReply *r, size_t i, long long *v)
{
	char buf[24], *p;
	int neg;

	if (refresh_str(r, i, buf, sizeof buf) != FA_OK)
		return FA_ERR;
	p = buf;
	if ((neg = *p == '-'))
		p++;
	if (*p == '\0' || strlen(p) > 18)
		return FA_ERR;
	for (*v = 0; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return FA_ERR;
		*v = *v * 10 + (*p - '0');
	}
	if (neg)
		*v = -*v;
	return FA_OK;
}

/* The status element (integer 0/1) of a script reply; -1 if malformed. */
static int
refresh_status(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[0]->integer == 1 ? 1 : r->element[0]->integer == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ API */

int
refresh_issue(struct redis_conn *conn, const struct refresh_params *p,
    const char *client, const char *sub, const char *scope, time_t now,
    char *token_out, size_t outcap, char fam_out[REFRESH_FAM_LEN + 1])
{
	const char *prefix = redis_conn_prefix(conn);
	char token[REFRESH_TOKEN_SIZE], hex[REFRESH_HASH_HEX + 1], fam[REFRESH_FAM_LEN + 1];
	char snow[32], sabs[32], sttl[32], sfttl[32];
	char *key = NULL, *famkey = NULL, *subkey = NULL;
	uint8_t famraw[REFRESH_FAM_LEN / 2];
	redisReply *r = NULL;
	long ttl;
	int rc = FA_ERR;

	if (outcap > 0)
		token_out[0] = '\0';
	fam_out[0] = '\0';
	if (!refresh_params_valid(p) || outcap < REFRESH_TOKEN_SIZE || now < 0 ||
	    !refresh_text_valid(client, FA_CLIENT_ID_MAX, 0, 0) ||
	    !refresh_text_valid(sub, FA_SUBJECT_MAX, 0, 0) ||
	    !refresh_text_valid(scope, FA_SCOPE_MAX, 1, 1))
		return FA_ERR;
	if (refresh_new_token(conn, token, &key, hex) != FA_OK)
		goto out;
	/* The family id is an identifier, not a secret. */
	if (crypto_nonce(famraw, sizeof famraw) != FA_OK)
		goto out;
	crypto_hex(famraw, sizeof famraw, fam);
	famkey = xasprintf("%srtfam:%s", prefix, fam);
	subkey = xasprintf("%srtfams:%s", prefix, sub);
	ttl = p->idle_s > 0 && p->idle_s < p->absolute_s ? p->idle_s : p->absolute_s;
	snprintf(snow, sizeof snow, "%lld", (long long)now);
	snprintf(sabs, sizeof sabs, "%lld", (long long)now + p->absolute_s);
	snprintf(sttl, sizeof sttl, "%ld", ttl);
	snprintf(sfttl, sizeof sfttl, "%ld", p->absolute_s);
	r = redis_conn_eval(conn, refresh_issue_script, 3, 12, (const char *[]){ key, famkey,
	    subkey, fam, client, sub, scope, snow, sabs, sttl, sfttl, prefix });
	if ((rc = redis_pool_reply_ok(r, "refresh", "issue")) != FA_OK)
		goto out;
	if (r->type != REDIS_REPLY_INTEGER) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (r->integer != 1) {
		/* 2^-128 odds: a broken random generator, not bad luck. */
		log_err("refresh: a new token or family id collided; check the RNG");
		rc = FA_ERR;
		goto out;
	}
	(void)redis_conn_durable(conn, "refresh token issue");	/* counted; the write stands */
	memcpy(token_out, token, REFRESH_TOKEN_SIZE);
	memcpy(fam_out, fam, sizeof fam);
	rc = FA_OK;
out:
	crypto_wipe(token, sizeof token);
	redis_pool_reply_free(r);
	free(key);
	free(famkey);
	free(subkey);
	return rc;
}

int
refresh_rotate(struct redis_conn *conn, const struct refresh_params *p,
    const char *token, const char *client, time_t now, char *new_token,
    size_t outcap, struct refresh_grant *out, int *reuse_detected)
{
	const char *prefix = redis_conn_prefix(conn);
	char token2[REFRESH_TOKEN_SIZE], hex2[REFRESH_HASH_HEX + 1];
	char snow[32], sidle[32], sgrace[32], reason[16];
	char *key = NULL, *key2 = NULL;
	redisReply *r = NULL;
	long long v;
	int rc = FA_ERR, st;

	memset(out, 0, sizeof *out);
	*reuse_detected = 0;
	if (outcap > 0)
		new_token[0] = '\0';
	if (!refresh_params_valid(p) || outcap < REFRESH_TOKEN_SIZE || now < 0)
		return FA_ERR;
	if (!refresh_text_valid(client, FA_CLIENT_ID_MAX, 0, 0) ||
	    refresh_key(conn, token, &key) != FA_OK)
		return FA_DENIED;
	if (refresh_new_token(conn, token2, &key2, hex2) != FA_OK)
		goto out;
	snprintf(snow, sizeof snow, "%lld", (long long)now);
	snprintf(sidle, sizeof sidle, "%ld", p->idle_s);
	snprintf(sgrace, sizeof sgrace, "%ld", p->grace_s);
	r = redis_conn_eval(conn, refresh_rotate_script, 2, 8, (const char *[]){ key, key2,
	    prefix, client, snow, sidle, sgrace, hex2 });
	if ((rc = redis_pool_reply_ok(r, "refresh", "rotate")) != FA_OK)
		goto out;
	if ((st = refresh_status(r)) < 0) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (st == 0) {
		rc = FA_DENIED;
		if (refresh_str(r, 1, reason, sizeof reason) == FA_OK &&
		    strcmp(reason, "reuse") == 0) {
			*reuse_detected = 1;
			if (refresh_str(r, 2, out->fam, sizeof out->fam) != FA_OK ||
			    refresh_str(r, 3, out->sub, sizeof out->sub) != FA_OK)
				log_warn("refresh: reuse reply without family or subject");
			snprintf(out->client, sizeof out->client, "%s", client);
		} else if (refresh_str(r, 1, reason, sizeof reason) == FA_OK &&
		    (strcmp(reason, "corrupt") == 0 || strcmp(reason, "collision") == 0))
			log_warn("refresh: rotation refused: %s", reason);
		goto out;
	}
	rc = FA_UNAVAIL;	/* a success reply we cannot read: treat as a failure */
	if (refresh_str(r, 1, out->fam, sizeof out->fam) != FA_OK ||
	    refresh_str(r, 2, out->sub, sizeof out->sub) != FA_OK ||
	    refresh_str(r, 3, out->scope, sizeof out->scope) != FA_OK)
		goto fail;
	snprintf(out->client, sizeof out->client, "%s", client);
	if (refresh_num(r, 4, &v) != FA_OK)
		goto fail;
	out->abs = (time_t)v;
	if (refresh_num(r, 5, &v) != FA_OK)
		goto fail;
	out->auth_time = (time_t)v;
	if (refresh_num(r, 6, &v) != FA_OK)
		goto fail;
	out->iat = now;
	out->exp = now + (time_t)v;
	if (refresh_num(r, 7, &v) != FA_OK)
		goto fail;
	out->graced = v == 1;
	/*
	 * The rotation is committed on the master: a WAIT shortfall is logged
	 * and counted, never turned into an error -- the client would retry
	 * with the old token, find it rotated and lose its family.
	 */
	(void)redis_conn_durable(conn, "refresh token rotation");
	memcpy(new_token, token2, REFRESH_TOKEN_SIZE);
	rc = FA_OK;
	goto out;
fail:
	log_warn("refresh: unreadable rotation reply");
	memset(out, 0, sizeof *out);
out:
	crypto_wipe(token2, sizeof token2);
	redis_pool_reply_free(r);
	free(key);
	free(key2);
	return rc;
}

int
refresh_revoke_grant(struct redis_conn *conn, const char *token, const char *client,
    struct refresh_grant *out, int *newly)
{
	char snow[32];
	char *key = NULL;
	redisReply *r = NULL;
	long long v = 0;
	int rc, st;

	if (out != NULL)
		memset(out, 0, sizeof *out);
	if (newly != NULL)
		*newly = 0;
	if (!refresh_text_valid(client, FA_CLIENT_ID_MAX, 0, 0) ||
	    refresh_key(conn, token, &key) != FA_OK)
		return FA_NOTFOUND;
	snprintf(snow, sizeof snow, "%lld", (long long)time(NULL));
	r = redis_conn_eval(conn, refresh_revoke_script, 1, 4, (const char *[]){ key,
	    redis_conn_prefix(conn), client, snow });
	if ((rc = redis_pool_reply_ok(r, "refresh", "revoke")) != FA_OK)
		goto out;
	if ((st = refresh_status(r)) < 0) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (st == 0) {
		rc = FA_NOTFOUND;
		goto out;
	}
	/* Revoked: what follows is only for the event, so a bad field is not fatal. */
	if (out != NULL) {
		if (refresh_str(r, 1, out->fam, sizeof out->fam) != FA_OK ||
		    refresh_str(r, 2, out->sub, sizeof out->sub) != FA_OK)
			log_warn("refresh: unreadable revocation reply");
		snprintf(out->client, sizeof out->client, "%s", client);
	}
	if (newly != NULL && refresh_num(r, 3, &v) == FA_OK)
		*newly = v == 1;
	(void)redis_conn_durable(conn, "refresh token revocation");
	rc = FA_OK;
out:
	redis_pool_reply_free(r);
	free(key);
	return rc;
}

int
refresh_revoke(struct redis_conn *conn, const char *token, const char *client)
{
	return refresh_revoke_grant(conn, token, client, NULL, NULL);
}

int
refresh_revoke_subject(struct redis_conn *conn, const char *sub)
{
	const char *prefix = redis_conn_prefix(conn);
	char *key, snow[32];
	redisReply *r;
	int rc;

	if (!refresh_text_valid(sub, FA_SUBJECT_MAX, 0, 0))
		return FA_ERR;
	key = xasprintf("%srtfams:%s", prefix, sub);
	snprintf(snow, sizeof snow, "%lld", (long long)time(NULL));
	r = redis_conn_eval(conn, refresh_revoke_subject_script, 1, 3,
	    (const char *[]){ key, prefix, snow });
	if ((rc = redis_pool_reply_ok(r, "refresh", "revoke subject")) == FA_OK &&
	    r->type != REDIS_REPLY_INTEGER)
		rc = FA_UNAVAIL;
	if (rc == FA_OK)
		(void)redis_conn_durable(conn, "refresh revocation of a subject");
	redis_pool_reply_free(r);
	free(key);
	return rc;
}

int
refresh_lookup(struct redis_conn *conn, const char *token, struct refresh_grant *out,
    int *active)
{
	char state[16], fclient[FA_CLIENT_ID_MAX + 1], revoked[4];
	char *key = NULL;
	redisReply *r = NULL;
	long long iat, abs, created, ttl;
	time_t now = time(NULL);
	int rc, st, attempt;

	memset(out, 0, sizeof *out);
	*active = 0;
	if (refresh_key(conn, token, &key) != FA_OK)
		return FA_NOTFOUND;
	for (attempt = 0;; attempt++) {		/* a read-only script */
		r = redis_conn_eval(conn, refresh_lookup_script, 1, 2,
		    (const char *[]){ key, redis_conn_prefix(conn) });
		if (r != NULL || !redis_conn_retry(conn, attempt))
			break;
	}
	if ((rc = redis_pool_reply_ok(r, "refresh", "lookup")) != FA_OK)
		goto out;
	if ((st = refresh_status(r)) < 0) {
		rc = FA_UNAVAIL;
		goto out;
	}
	if (st == 0) {
		rc = FA_NOTFOUND;
		goto out;
	}
	rc = FA_ERR;
	if (refresh_str(r, 1, out->fam, sizeof out->fam) != FA_OK ||
	    refresh_str(r, 2, out->client, sizeof out->client) != FA_OK ||
	    refresh_str(r, 3, state, sizeof state) != FA_OK ||
	    refresh_num(r, 4, &iat) != FA_OK ||
	    refresh_str(r, 5, fclient, sizeof fclient) != FA_OK ||
	    refresh_str(r, 6, out->sub, sizeof out->sub) != FA_OK ||
	    refresh_str(r, 7, out->scope, sizeof out->scope) != FA_OK ||
	    refresh_str(r, 8, revoked, sizeof revoked) != FA_OK ||
	    refresh_num(r, 9, &abs) != FA_OK ||
	    refresh_num(r, 10, &created) != FA_OK ||
	    refresh_num(r, 11, &ttl) != FA_OK) {
		log_warn("refresh: token record or family %s is corrupt", out->fam);
		memset(out, 0, sizeof *out);
		goto out;
	}
	out->iat = (time_t)iat;
	out->abs = (time_t)abs;
	out->auth_time = (time_t)created;
	*active = strcmp(state, "active") == 0 && strcmp(revoked, "0") == 0 &&
	    strcmp(fclient, out->client) == 0 && now < out->abs;
	/* TTL is -1 only for a record someone edited; then abs bounds it. */
	if (*active)
		out->exp = ttl >= 0 && now + ttl < out->abs ? now + (time_t)ttl : out->abs;
	rc = FA_OK;
out:
	redis_pool_reply_free(r);
	free(key);
	return rc;
}
