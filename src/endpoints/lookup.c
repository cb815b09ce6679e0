/*
 * lookup.c -- the L1 (shared memory) in front of Redis for the hot reads.
 *
 * Cached values (kind, key -> value):
 *   CLIENT      client id -> 'C' record (encoding below), or 'N' (no such
 *               client, kept cache_negative_ttl)
 *   REVOCATION  jti (16 bytes) -> 'R' (revoked, until the token's exp), or
 *               'V' epoch[8] (not revoked, as of that mirror epoch)
 *               "s:" subject -> 'B' epoch[8] nbf[8] (the subject's not-before)
 * Positive revocations are final and always believed. 'V' and 'B' entries are
 * believed only while the mirror is trusted and in the epoch they were
 * written in (mirror.h): if the subscriber could have missed a message, the
 * cache stops vouching and Redis is asked. Every put takes a ticket before
 * reading Redis, so a value read before an invalidation is never cached after
 * it (cache.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "endpoints/lookup.h"
#include "endpoints/service.h"
#include "shm/cache.h"
#include "shm/mirror.h"
#include "shm/shm.h"
#include "store/store.h"

#define LOOKUP_US	1000000ULL

/* --- client records ------------------------------------------------------ */

/*
 * 'C' mac[32] grants[1] introspect[1] created[8] idlen[1] id scopelen[2] scope
 * namelen[1] name. Returns the length, 0 if it does not fit cap.
 */
static size_t
lookup_client_encode(const struct store_client *c, uint8_t *out, size_t cap)
{
	size_t il = strlen(c->id), sl = strlen(c->scope), nl = strlen(c->name);
	size_t n = 1 + 32 + 1 + 1 + 8 + 1 + il + 2 + sl + 1 + nl, o = 0;
	uint64_t created = (uint64_t)c->created;

	if (n > cap)
		return 0;
	out[o++] = 'C';
	memcpy(out + o, c->secret_mac, 32);
	o += 32;
	out[o++] = (uint8_t)c->grants;
	out[o++] = (uint8_t)(c->introspect != 0);
	memcpy(out + o, &created, 8);
	o += 8;
	out[o++] = (uint8_t)il;
	memcpy(out + o, c->id, il);
	o += il;
	out[o++] = (uint8_t)(sl >> 8);
	out[o++] = (uint8_t)sl;
	memcpy(out + o, c->scope, sl);
	o += sl;
	out[o++] = (uint8_t)nl;
	memcpy(out + o, c->name, nl);
	o += nl;
	return o;
}

static int
lookup_client_decode(const uint8_t *in, size_t n, struct store_client *c)
{
	size_t o = 1, il, sl, nl;
	uint64_t created;

	memset(c, 0, sizeof *c);
	if (n < 1 + 32 + 1 + 1 + 8 + 1 || in[0] != 'C')
		return FA_ERR;
	memcpy(c->secret_mac, in + o, 32);
	o += 32;
	c->grants = in[o++];
	c->introspect = in[o++];
	memcpy(&created, in + o, 8);
	o += 8;
	c->created = (time_t)created;
	il = in[o++];
	if (il > FA_CLIENT_ID_MAX || o + il + 2 > n)
		return FA_ERR;
	memcpy(c->id, in + o, il);
	o += il;
	sl = (size_t)in[o] << 8 | in[o + 1];
	o += 2;
	if (sl > FA_SCOPE_MAX || o + sl + 1 > n)
		return FA_ERR;
	memcpy(c->scope, in + o, sl);
	o += sl;
	nl = in[o++];
	if (nl >= sizeof c->name || o + nl != n)
		return FA_ERR;
	memcpy(c->name, in + o, nl);
	return FA_OK;
}

/* FA_OK/FA_NOTFOUND from the cache, or FA_UNAVAIL meaning "not cached". */
static int
lookup_client_cached(struct service_thread *t, const char *id, struct store_client *out)
{
	struct cache *c = shm_cache(t->svc->shm);
	uint8_t v[1 + 32 + 1 + 1 + 8 + 1 + FA_CLIENT_ID_MAX + 2 + FA_SCOPE_MAX + 1 + 128];
	size_t len, idlen = strlen(id);

	if (idlen == 0 || idlen > CACHE_KEY_MAX ||
	    cache_get(c, CACHE_CLIENT, id, idlen, shm_now(), v, sizeof v, &len) != FA_OK)
		return FA_UNAVAIL;
	if (len == 1 && v[0] == 'N')
		return FA_NOTFOUND;
	if (lookup_client_decode(v, len, out) != FA_OK || strcmp(out->id, id) != 0)
		return FA_UNAVAIL;
	return FA_OK;
}

/* Cache what the store said about id (rc FA_OK or FA_NOTFOUND). */
static void
lookup_client_keep(struct service_thread *t, const char *id, int rc,
    const struct store_client *rec, const struct cache_ticket *tk)
{
	const struct config *cfg = t->svc->cfg;
	struct cache *c = shm_cache(t->svc->shm);
	uint8_t v[1 + 32 + 1 + 1 + 8 + 1 + FA_CLIENT_ID_MAX + 2 + FA_SCOPE_MAX + 1 + 128];
	size_t len, idlen = strlen(id);

	if (idlen == 0 || idlen > CACHE_KEY_MAX)
		return;
	if (rc == FA_NOTFOUND)
		/* An unknown id only briefly: it may be created any moment. */
		cache_put(c, CACHE_CLIENT, id, idlen, "N", 1,
		    (uint64_t)cfg->cache_negative_ttl * LOOKUP_US, shm_now(), tk);
	else if (rc == FA_OK && (len = lookup_client_encode(rec, v, sizeof v)) > 0)
		cache_put(c, CACHE_CLIENT, id, idlen, v, len,
		    (uint64_t)cfg->cache_client_ttl * LOOKUP_US, shm_now(), tk);
}

int
lookup_client(struct service_thread *t, const char *id, struct store_client *out)
{
	struct cache_ticket tk;
	int rc;

	if ((rc = lookup_client_cached(t, id, out)) != FA_UNAVAIL)
		return rc;
	cache_ticket(shm_cache(t->svc->shm), CACHE_CLIENT, &tk);
	rc = store_client_get(t->redis, id, out);
	lookup_client_keep(t, id, rc, out, &tk);
	return rc;
}

/* --- revocation state ---------------------------------------------------- */

/*
 * What the cache says about a token: 1 revoked, 0 valid, -1 don't know.
 * *epoch gets the trusted epoch (0 if the mirror is not trusted now).
 */
static int
lookup_state_cached(struct service_thread *t, const uint8_t jti[TOKEN_JTI_LEN],
    const char *subject, uint64_t iat, uint64_t *epoch)
{
	struct cache *c = shm_cache(t->svc->shm);
	uint64_t now = shm_now(), e, nbf, trusted = 0;
	uint8_t v[32];
	char key[CACHE_KEY_MAX + 1];
	size_t len = 0, klen;
	int jti_ok = 0, got;

	*epoch = 0;
	got = cache_get(c, CACHE_REVOCATION, jti, TOKEN_JTI_LEN, now, v, sizeof v, &len);
	if (got == FA_OK && len == 1 && v[0] == 'R')
		return 1;
	if (!mirror_trusted(shm_mirror(t->svc->shm), now, &trusted)) {
		/*
		 * revocation_grace: entries of the epoch that was in sync until at
		 * most that long ago are still believed; nothing new is cached
		 * under it (*epoch stays 0).
		 */
		if (!mirror_recent(shm_mirror(t->svc->shm), now,
		    (uint64_t)t->svc->cfg->revocation_grace * LOOKUP_US, &trusted))
			return -1;
	} else
		*epoch = trusted;
	if (got == FA_OK && len == 9 && v[0] == 'V') {
		memcpy(&e, v + 1, 8);
		jti_ok = e == trusted;
	}
	if (!jti_ok)
		return -1;
	if (subject[0] == '\0')
		return 0;
	klen = (size_t)snprintf(key, sizeof key, "s:%s", subject);
	if (klen > CACHE_KEY_MAX ||
	    cache_get(c, CACHE_REVOCATION, key, klen, now, v, sizeof v, &len) != FA_OK ||
	    len != 17 || v[0] != 'B')
		return -1;
	memcpy(&e, v + 1, 8);
	memcpy(&nbf, v + 9, 8);
	if (e != trusted)
		return -1;
	return iat < nbf ? 1 : 0;
}

/* Cache a Redis answer about jti (not revoked) and the subject's nbf, in epoch. */
static void
lookup_state_keep(struct service_thread *t, const uint8_t jti[TOKEN_JTI_LEN],
    const char *subject, long long nbf, uint64_t epoch, const struct cache_ticket *tk)
{
	struct cache *c = shm_cache(t->svc->shm);
	uint64_t ttl = (uint64_t)t->svc->cfg->cache_revocation_ttl * LOOKUP_US, n = (uint64_t)nbf;
	uint8_t v[17];
	char key[CACHE_KEY_MAX + 1];
	size_t klen;

	if (epoch == 0)
		return;	/* the mirror cannot vouch: don't pretend later */
	v[0] = 'V';
	memcpy(v + 1, &epoch, 8);
	cache_put(c, CACHE_REVOCATION, jti, TOKEN_JTI_LEN, v, 9, ttl, shm_now(), tk);
	if (subject[0] == '\0')
		return;
	klen = (size_t)snprintf(key, sizeof key, "s:%s", subject);
	if (klen > CACHE_KEY_MAX)
		return;
	v[0] = 'B';
	memcpy(v + 9, &n, 8);
	cache_put(c, CACHE_REVOCATION, key, klen, v, 17, ttl, shm_now(), tk);
}

/* A revoked jti is final: cache it until the token would have expired. */
void
lookup_note_revoked(struct service_thread *t, const uint8_t jti[TOKEN_JTI_LEN])
{
	cache_put(shm_cache(t->svc->shm), CACHE_REVOCATION, jti, TOKEN_JTI_LEN, "R", 1,
	    (uint64_t)t->svc->cfg->access_token_ttl * LOOKUP_US, shm_now(), NULL);
}

int
lookup_introspect(struct service_thread *t, const char *client_id,
    struct store_client *client, int *client_rc, const struct token_claims *cl,
    int *revoked)
{
	struct cache *c = shm_cache(t->svc->shm);
	struct cache_ticket ctk, rtk;
	uint64_t epoch;
	long long nbf = 0;
	int state, rc, crc;

	*revoked = 1;
	crc = lookup_client_cached(t, client_id, client);
	state = cl != NULL ? lookup_state_cached(t, cl->jti, cl->subject, cl->iat, &epoch) : 0;
	if (crc != FA_UNAVAIL && state >= 0) {
		*client_rc = crc;
		*revoked = state;
		return FA_OK;		/* no Redis at all */
	}
	cache_ticket(c, CACHE_CLIENT, &ctk);
	cache_ticket(c, CACHE_REVOCATION, &rtk);
	if (state < 0) {
		rc = store_client_and_revoked(t->redis, crc == FA_UNAVAIL ? client_id : NULL,
		    client, client_rc, cl->jti, revoked, cl->subject, &nbf);
		if (rc != FA_OK)
			return rc;
		if (*revoked)
			lookup_note_revoked(t, cl->jti);
		else
			lookup_state_keep(t, cl->jti, cl->subject, nbf, epoch, &rtk);
		if (!*revoked && cl->subject[0] != '\0' && (long long)cl->iat < nbf)
			*revoked = 1;
		if (crc != FA_UNAVAIL)
			*client_rc = crc;	/* the client came from the cache */
		else
			lookup_client_keep(t, client_id, *client_rc, client, &ctk);
		return FA_OK;
	}
	*revoked = state;
	*client_rc = rc = store_client_get(t->redis, client_id, client);
	if (rc == FA_UNAVAIL || rc == FA_ERR)
		return rc;
	lookup_client_keep(t, client_id, rc, client, &ctk);
	return FA_OK;
}

int
lookup_token_revoked(struct service_thread *t, const uint8_t jti[TOKEN_JTI_LEN],
    const char *subject, uint64_t iat, int *revoked)
{
	struct token_claims cl;
	struct store_client unused;
	struct cache_ticket rtk;
	uint64_t epoch;
	long long nbf = 0;
	int state, rc, crc;

	*revoked = 1;
	if ((state = lookup_state_cached(t, jti, subject, iat, &epoch)) >= 0) {
		*revoked = state;
		return FA_OK;
	}
	memset(&cl, 0, sizeof cl);
	memcpy(cl.jti, jti, TOKEN_JTI_LEN);
	snprintf(cl.subject, sizeof cl.subject, "%s", subject);
	cache_ticket(shm_cache(t->svc->shm), CACHE_REVOCATION, &rtk);
	rc = store_client_and_revoked(t->redis, NULL, &unused, &crc, jti, revoked,
	    subject, &nbf);
	if (rc != FA_OK)
		return FA_UNAVAIL;
	if (*revoked)
		lookup_note_revoked(t, jti);
	else
		lookup_state_keep(t, jti, subject, nbf, epoch, &rtk);
	if (!*revoked && subject[0] != '\0' && (long long)iat < nbf)
		*revoked = 1;
	return FA_OK;
}

int
lookup_revoked_batch(struct service_thread *t, int n, const struct token_claims *const *cl,
    int *revoked)
{
	const struct token_claims **ask = NULL;
	struct cache_ticket rtk;
	uint64_t *epoch = NULL;
	long long *nbf = NULL;
	int *idx = NULL, *rv = NULL, i, nask = 0, rc = FA_OK;

	if (n <= 0)
		return FA_OK;
	epoch = xcalloc((size_t)n, sizeof *epoch);
	idx = xcalloc((size_t)n, sizeof *idx);
	for (i = 0; i < n; i++) {
		int state = lookup_state_cached(t, cl[i]->jti, cl[i]->subject, cl[i]->iat,
		    &epoch[i]);

		revoked[i] = 1;
		if (state >= 0)
			revoked[i] = state;
		else
			idx[nask++] = i;
	}
	if (nask == 0)
		goto out;
	ask = xcalloc((size_t)nask, sizeof *ask);
	rv = xcalloc((size_t)nask, sizeof *rv);
	nbf = xcalloc((size_t)nask, sizeof *nbf);
	for (i = 0; i < nask; i++)
		ask[i] = cl[idx[i]];
	/* One ticket before the one read covers every put that follows it. */
	cache_ticket(shm_cache(t->svc->shm), CACHE_REVOCATION, &rtk);
	if ((rc = store_revoked_many(t->redis, nask, ask, rv, nbf)) != FA_OK) {
		rc = FA_UNAVAIL;
		goto out;
	}
	for (i = 0; i < nask; i++) {
		const struct token_claims *c = ask[i];

		if (rv[i])
			lookup_note_revoked(t, c->jti);
		else
			lookup_state_keep(t, c->jti, c->subject, nbf[i], epoch[idx[i]], &rtk);
		if (!rv[i] && c->subject[0] != '\0' && (long long)c->iat < nbf[i])
			rv[i] = 1;
		revoked[idx[i]] = rv[i];
	}
out:
	if (rc != FA_OK)
		for (i = 0; i < n; i++)
			revoked[i] = 1;
	free(ask);
	free(rv);
	free(nbf);
	free(idx);
	free(epoch);
	return rc;
}

/* --- invalidation -------------------------------------------------------- */

int
lookup_apply_event(struct cache *c, const char *msg, uint64_t now)
{
	uint8_t jti[TOKEN_JTI_LEN];
	char key[CACHE_KEY_MAX + 1];
	long long exp;
	const char *arg;
	size_t n;

	if (strncmp(msg, "revoke ", 7) == 0) {
		arg = msg + 7;
		if (strlen(arg) < 2 * TOKEN_JTI_LEN || (arg[2 * TOKEN_JTI_LEN] != ' ' &&
		    arg[2 * TOKEN_JTI_LEN] != '\0') ||
		    crypto_unhex(arg, 2 * TOKEN_JTI_LEN, jti, TOKEN_JTI_LEN) != FA_OK)
			return FA_ERR;
		exp = strtoll(arg + 2 * TOKEN_JTI_LEN, NULL, 10);
		/* Drop first: a put can lose to a busy slot, a delete cannot. */
		cache_del(c, CACHE_REVOCATION, jti, TOKEN_JTI_LEN);
		if (exp > time(NULL))
			cache_put(c, CACHE_REVOCATION, jti, TOKEN_JTI_LEN, "R", 1,
			    (uint64_t)(exp - time(NULL)) * LOOKUP_US, now, NULL);
		return FA_OK;
	}
	if (strncmp(msg, "client ", 7) == 0) {
		arg = msg + 7;
		if ((n = strlen(arg)) > 0 && n <= CACHE_KEY_MAX)
			cache_del(c, CACHE_CLIENT, arg, n);
		return FA_OK;
	}
	if (strncmp(msg, "subject ", 8) == 0) {
		n = (size_t)snprintf(key, sizeof key, "s:%s", msg + 8);
		if (n <= CACHE_KEY_MAX)
			cache_del(c, CACHE_REVOCATION, key, n);
		if ((n = strlen(msg + 8)) > 0 && n <= CACHE_KEY_MAX)
			cache_del(c, CACHE_CLAIMS, msg + 8, n);
		return FA_OK;
	}
	if (strcmp(msg, "flush") == 0) {
		cache_flush(c, CACHE_ALL);
		return FA_OK;
	}
	return FA_ERR;
}
