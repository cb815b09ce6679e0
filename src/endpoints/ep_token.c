/*
 * ep_token.c -- the token endpoint (RFC 6749 §3.2): the client_credentials,
 * password (§4.3) and refresh_token (§6) grants.
 *
 * An access token costs one AES-256-GCM seal and nothing in Redis: it carries
 * its own claims. client_credentials costs one Redis round trip (the client
 * record). The password grant checks the brute-force counters before it
 * hashes, takes a host-wide Argon2 slot (a login storm must not take the
 * memory or the cores from the other endpoints), and answers every refusal --
 * unknown user, wrong password, locked account, throttled -- with the same
 * invalid_grant. Refresh tokens rotate on every use in one atomic Redis step;
 * a rotated token presented again revokes its whole family.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/keyring.h"
#include "crypto/token.h"
#include "endpoints/ep_token.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "endpoints/monitor.h"
#include "shm/metrics.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "core/audit.h"
#include "crypto/password.h"
#include "shm/admission.h"
#include "store/refresh.h"
#include "store/store.h"
#include "store/users.h"

static const char *const ep_token_known_grants[] = {
	"authorization_code",
	"urn:ietf:params:oauth:grant-type:device_code",
	"urn:ietf:params:oauth:grant-type:jwt-bearer",
	"urn:ietf:params:oauth:grant-type:token-exchange",
};

/*
 * Issue an access token for claims and write the §5.1 answer, with refresh
 * (a refresh token's text) when not NULL.
 */
static void
ep_token_issue(struct service_thread *t, struct token_claims *claims,
    const char *refresh, struct response *resp)
{
	struct service *svc = t->svc;
	char text[TOKEN_MAX_LEN + 1];
	uint8_t key[CRYPTO_KEYLEN];
	uint32_t kid;
	struct buf *b = &t->scratch;
	int first = 1, n;

	if (keyring_current(svc->keyring, &kid, key) != FA_OK) {
		oauth_unavailable(t, resp);	/* no key loaded yet: Redis never answered */
		return;
	}
	n = token_seal(t->crypto, kid, key, claims, text, sizeof text);
	crypto_wipe(key, sizeof key);
	if (n < 0) {
		oauth_error(resp, 500, "server_error", "could not seal the token");
		return;
	}
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_str(b, &first, "access_token", text);
	json_kv_str(b, &first, "token_type", "Bearer");
	json_kv_int(b, &first, "expires_in", (long long)(claims->exp - claims->iat));
	if (claims->scope[0] != '\0')
		json_kv_str(b, &first, "scope", claims->scope);
	if (refresh != NULL)
		json_kv_str(b, &first, "refresh_token", refresh);
	buf_putc(b, '}');
	oauth_nostore(resp);
	response_json(resp, 200, b->data, b->len);
	crypto_wipe(b->data, b->len);
	crypto_wipe(text, sizeof text);
}

/*
 * Decide the granted scope: the client's whole scope when none is asked for,
 * else the requested list, which must be valid and a subset of the client's.
 * Repeated scope tokens are kept once. FA_OK or FA_ERR after writing 400.
 */
static int
ep_token_scope(const char *asked, const char *allowed, char out[FA_SCOPE_MAX + 1],
    struct response *resp)
{
	const char *p;
	size_t o = 0;

	if (asked == NULL) {
		snprintf(out, FA_SCOPE_MAX + 1, "%s", allowed);
		return FA_OK;
	}
	if (!oauth_scope_valid(asked)) {
		oauth_error(resp, 400, "invalid_scope", "malformed scope");
		return FA_ERR;
	}
	if (!oauth_scope_subset(asked, allowed)) {
		oauth_error(resp, 400, "invalid_scope",
		    "requested scope exceeds what the client may have");
		return FA_ERR;
	}
	out[0] = '\0';
	for (p = asked; *p != '\0';) {
		size_t len = strcspn(p, " ");
		char tok[FA_SCOPE_MAX + 1];

		memcpy(tok, p, len);
		tok[len] = '\0';
		if (!oauth_scope_subset(tok, out)) {
			if (o > 0)
				out[o++] = ' ';
			memcpy(out + o, tok, len);
			o += len;
			out[o] = '\0';
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	return FA_OK;
}

/* Fill the common claims: jti, times, client, subject, scope. FA_OK or FA_ERR after 500. */
static int
ep_token_claims(struct service_thread *t, const char *client, const char *subject,
    const char *scope, struct token_claims *claims, struct response *resp)
{
	memset(claims, 0, sizeof *claims);
	if (token_new_jti(claims->jti) != FA_OK) {
		oauth_error(resp, 500, "server_error", "no randomness");
		return FA_ERR;
	}
	claims->iat = (uint64_t)time(NULL);
	claims->exp = claims->iat + (uint64_t)t->svc->cfg->access_token_ttl;
	snprintf(claims->client, sizeof claims->client, "%s", client);
	snprintf(claims->subject, sizeof claims->subject, "%s", subject);
	snprintf(claims->scope, sizeof claims->scope, "%s", scope);
	return FA_OK;
}

static void
ep_token_client_credentials(struct service_thread *t, const struct form *f,
    const struct store_client *client, struct response *resp)
{
	struct token_claims claims;
	char scope[FA_SCOPE_MAX + 1];

	if (ep_token_scope(form_get(f, "scope"), client->scope, scope, resp) != FA_OK)
		return;
	if (ep_token_claims(t, client->id, "", scope, &claims, resp) != FA_OK)
		return;
	ep_token_issue(t, &claims, NULL, resp);
}

static long
ep_token_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
ep_token_bad_login(struct response *resp)
{
	oauth_error(resp, 400, "invalid_grant", "invalid username or password");
}

/* Argon2 parameters from the configuration. */
static void
ep_token_pw_params(const struct config *cfg, struct password_params *pp)
{
	memset(pp, 0, sizeof *pp);
	pp->m_kib = (uint32_t)cfg->argon2_memory_kib;
	pp->t = (uint32_t)cfg->argon2_iterations;
	pp->p = (uint32_t)cfg->argon2_parallelism;
	pp->max_len = cfg->password_max_length;
}

static void
ep_token_throttle_params(const struct config *cfg, struct users_throttle_params *tp)
{
	memset(tp, 0, sizeof *tp);
	tp->max_failures = cfg->login_max_failures;
	tp->window_s = cfg->login_failure_window;
	tp->lock_s = cfg->login_lock_seconds;
	tp->delay_base_ms = cfg->login_delay_base_ms;
	tp->delay_max_ms = cfg->login_delay_max_ms;
	tp->max_failures_addr = cfg->login_max_failures_per_address;
}

/* Issue a refresh token for a login when the client may use that grant; NULL if not. */
static int
ep_token_new_refresh(struct service_thread *t, const struct store_client *client,
    const char *sub, const char *scope, char *out, size_t outcap, int *have,
    struct response *resp)
{
	const struct config *cfg = t->svc->cfg;
	struct refresh_params rp = { cfg->refresh_token_idle_ttl,
	    cfg->refresh_token_absolute_ttl, cfg->refresh_token_grace };
	char fam[33];

	*have = 0;
	if ((client->grants & STORE_GRANT_REFRESH_TOKEN) == 0)
		return FA_OK;
	if (refresh_issue(t->redis, &rp, client->id, sub, scope, time(NULL), out,
	    outcap, fam) != FA_OK) {
		oauth_unavailable(t, resp);
		return FA_ERR;
	}
	*have = 1;
	return FA_OK;
}

static void
ep_token_password(struct service_thread *t, struct request *r, const struct form *f,
    const struct store_client *client, struct response *resp)
{
	struct service *svc = t->svc;
	const struct config *cfg = svc->cfg;
	struct users_ctx uc = { t->redis, t->crypto, svc->user_key };
	struct users_throttle_params tp;
	struct password_params pp;
	struct users_user user;
	struct token_claims claims;
	const char *username = form_get(f, "username");
	const char *password = form_get(f, "password"), *login_key;
	char scope[FA_SCOPE_MAX + 1], refresh[REFRESH_TOKEN_SIZE], newphc[USERS_PW_MAX + 1];
	long now_ms = ep_token_now_ms(), delay_ms;
	int locked, rc, found, ok, rehash = 0, now_locked, have_refresh, slot;
	struct admission *adm;
	size_t pwlen;

	memset(&user, 0, sizeof user);
	if (username == NULL || password == NULL || *username == '\0') {
		oauth_error(resp, 400, "invalid_request", "username and password are required");
		return;
	}
	pwlen = strlen(password);
	if (pwlen > cfg->password_max_length) {
		oauth_error(resp, 400, "invalid_request", "password too long");
		return;
	}
	if (ep_token_scope(form_get(f, "scope"), client->scope, scope, resp) != FA_OK)
		return;
	/*
	 * Failed logins of this key (address or username). Every attempt is
	 * charged before its Argon2 run and a success refunded after: peeking
	 * first and charging failures after would let every attempt that
	 * arrives while one request is left through at once.
	 */
	login_key = limits_key(svc->limits, LIMITS_LOGIN, r, client->id, username);
	if (limits_check(t, LIMITS_LOGIN, login_key, resp) != FA_OK)
		return;
	ep_token_throttle_params(cfg, &tp);
	rc = users_login_check(t->redis, &tp, username, r->remote_addr, now_ms,
	    &locked, &delay_ms);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		return;
	}
	if (locked || delay_ms > 0) {
		audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, r->remote_addr, client->id,
		    username, AUDIT_FIELDS({ "reason", locked ? "locked" : "throttled" }));
		monitor_note(t, ANOMALY_LOGIN, client->id, username);
		ep_token_bad_login(resp);
		return;
	}

	rc = users_get(&uc, username, &user);
	if (rc == FA_UNAVAIL || rc == FA_ERR) {
		if (rc == FA_ERR)
			log_warn("user record '%s' unreadable", username);
		oauth_unavailable(t, resp);
		goto out;
	}
	found = rc == FA_OK;
	ep_token_pw_params(cfg, &pp);
	adm = svc->admission;	/* the same slots for acquire and release */
	if (admission_acquire(adm, cfg->argon2_wait_ms, &slot) != FA_OK) {
		response_header(resp, "Retry-After", "1");
		oauth_error(resp, 503, "temporarily_unavailable",
		    "too many logins in progress; try again");
		goto out;
	}
	/* Unknown users cost one Argon2 run, exactly like a wrong password. */
	if (found)
		rc = password_verify(&pp, user.pw, password, pwlen, &rehash);
	else
		rc = password_verify_dummy(&pp, password, pwlen);
	ok = found && rc == FA_OK && !user.locked;
	if (ok && rehash && password_hash(&pp, password, pwlen, newphc, sizeof newphc) != FA_OK)
		rehash = 0;
	admission_release(adm, slot);

	if (!ok) {
		if (users_login_failed(t->redis, &tp, username, r->remote_addr, now_ms,
		    &now_locked) == FA_OK && now_locked != 0)
			audit_event(AUDIT_ACCOUNT_LOCKED, AUDIT_CRITICAL, r->remote_addr,
			    client->id, username, AUDIT_FIELDS({ "reason",
			    (now_locked & USERS_LOCKED_USER) ? "too_many_failures" :
			    "address_too_many_failures" }));
		audit_event(AUDIT_LOGIN_FAILURE, AUDIT_WARNING, r->remote_addr, client->id,
		    username, AUDIT_FIELDS({ "reason", !found ? "unknown_user" :
		    user.locked ? "disabled" : "bad_password" }));
		monitor_note(t, ANOMALY_LOGIN, client->id, username);
		ep_token_bad_login(resp);
		goto out;
	}
	limits_refund(t, LIMITS_LOGIN, login_key);
	users_login_succeeded(t->redis, username);
	if (rehash && users_rehash_password(&uc, username, user.pw, newphc) == FA_OK)
		log_info("password of '%s' re-hashed with the current parameters", username);
	crypto_wipe(newphc, sizeof newphc);

	if (ep_token_new_refresh(t, client, user.id, scope, refresh, sizeof refresh,
	    &have_refresh, resp) != FA_OK)
		goto out;
	if (ep_token_claims(t, client->id, user.id, scope, &claims, resp) != FA_OK)
		goto out;
	ep_token_issue(t, &claims, have_refresh ? refresh : NULL, resp);
	crypto_wipe(refresh, sizeof refresh);
out:
	users_user_clear(&user);
}

static void
ep_token_refresh(struct service_thread *t, struct request *r, const struct form *f,
    const struct store_client *client, struct response *resp)
{
	struct service *svc = t->svc;
	const struct config *cfg = svc->cfg;
	struct refresh_params rp = { cfg->refresh_token_idle_ttl,
	    cfg->refresh_token_absolute_ttl, cfg->refresh_token_grace };
	struct users_ctx uc = { t->redis, t->crypto, svc->user_key };
	struct refresh_grant grant;
	struct users_user user;
	struct token_claims claims;
	const char *rt = form_get(f, "refresh_token"), *asked = form_get(f, "scope");
	char next[REFRESH_TOKEN_SIZE], scope[FA_SCOPE_MAX + 1];
	int rc, reuse = 0, active;

	memset(&user, 0, sizeof user);
	memset(&grant, 0, sizeof grant);
	if (rt == NULL || *rt == '\0') {
		oauth_error(resp, 400, "invalid_request", "refresh_token is required");
		return;
	}
	/*
	 * A narrowed scope is checked before rotating, so a bad request does
	 * not cost the client its refresh token.
	 */
	if (asked != NULL) {
		rc = refresh_lookup(t->redis, rt, &grant, &active);
		if (rc == FA_UNAVAIL) {
			oauth_unavailable(t, resp);
			return;
		}
		if (rc == FA_OK && active &&
		    ep_token_scope(asked, grant.scope, scope, resp) != FA_OK)
			return;
	}
	rc = refresh_rotate(t->redis, &rp, rt, client->id, time(NULL), next, sizeof next,
	    &grant, &reuse);
	if (rc == FA_UNAVAIL) {
		oauth_unavailable(t, resp);
		return;
	}
	if (rc != FA_OK) {
		if (reuse) {
			audit_event(AUDIT_REFRESH_TOKEN_REUSE, AUDIT_CRITICAL, r->remote_addr,
			    client->id, NULL, AUDIT_FIELDS({ "family_id", grant.fam }));
			audit_event(AUDIT_TOKEN_FAMILY_REVOKED, AUDIT_WARNING, r->remote_addr,
			    client->id, NULL, AUDIT_FIELDS({ "family_id", grant.fam },
			    { "reason", "refresh_token_reuse" }));
		}
		oauth_error(resp, 400, "invalid_grant", "the refresh token is invalid");
		return;
	}
	/* The user must still exist, be enabled and not be revoked wholesale. */
	rc = users_get_by_id(&uc, grant.sub, &user);
	if (rc == FA_UNAVAIL || rc == FA_ERR) {
		oauth_unavailable(t, resp);
		goto out;
	}
	if (rc != FA_OK || user.locked || grant.auth_time < user.not_before) {
		refresh_revoke(t->redis, next, client->id);
		oauth_error(resp, 400, "invalid_grant", "the refresh token is invalid");
		goto out;
	}
	if (asked == NULL)
		snprintf(scope, sizeof scope, "%s", grant.scope);
	else if (ep_token_scope(asked, grant.scope, scope, resp) != FA_OK)
		goto out;
	if (ep_token_claims(t, client->id, grant.sub, scope, &claims, resp) != FA_OK)
		goto out;
	ep_token_issue(t, &claims, next, resp);
out:
	crypto_wipe(next, sizeof next);
	users_user_clear(&user);
}

void
ep_token_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct oauth_client_cred cred;
	struct store_client client;
	struct form *f;
	const char *grant;
	unsigned need;
	size_t i;
	int rc, g;

	memset(&cred, 0, sizeof cred);
	if ((f = oauth_form(t, r, resp)) == NULL)
		return;
	if (oauth_client_cred(r, f, resp, &cred) != FA_OK)
		goto out;
	if (limits_check(t, LIMITS_TOKEN, limits_key(t->svc->limits, LIMITS_TOKEN, r,
	    cred.id, NULL), resp) != FA_OK)
		goto out;
	rc = lookup_client(t, cred.id, &client);
	if ((rc = oauth_client_verify(t, &cred, rc, &client, resp)) != FA_OK) {
		if (rc == FA_DENIED)
			audit_event(AUDIT_CLIENT_AUTH_FAILURE, AUDIT_WARNING, r->remote_addr,
			    cred.id, NULL, AUDIT_FIELDS({ "endpoint", "token" }));
		goto out;
	}

	grant = form_get(f, "grant_type");
	if (grant == NULL || *grant == '\0') {
		oauth_error(resp, 400, "invalid_request", "grant_type is required");
		goto out;
	}
	if (strcmp(grant, "client_credentials") == 0)
		need = STORE_GRANT_CLIENT_CREDENTIALS;
	else if (strcmp(grant, "password") == 0)
		need = STORE_GRANT_PASSWORD;
	else if (strcmp(grant, "refresh_token") == 0)
		need = STORE_GRANT_REFRESH_TOKEN;
	else {
		for (i = 0; i < sizeof ep_token_known_grants / sizeof ep_token_known_grants[0]; i++)
			if (strcmp(grant, ep_token_known_grants[i]) == 0)
				break;
		oauth_error(resp, 400, "unsupported_grant_type",
		    i < sizeof ep_token_known_grants / sizeof ep_token_known_grants[0] ?
		    "this grant type is not enabled on this server" :
		    "unknown grant type");
		goto out;
	}
	if ((client.grants & need) == 0) {
		oauth_error(resp, 400, "unauthorized_client",
		    "the client may not use this grant type");
		goto out;
	}
	switch (need) {
	case STORE_GRANT_CLIENT_CREDENTIALS:
		ep_token_client_credentials(t, f, &client, resp);
		g = METRICS_GRANT_CLIENT_CREDENTIALS;
		break;
	case STORE_GRANT_PASSWORD:
		ep_token_password(t, r, f, &client, resp);
		g = METRICS_GRANT_PASSWORD;
		break;
	default:
		ep_token_refresh(t, r, f, &client, resp);
		g = METRICS_GRANT_REFRESH_TOKEN;
		break;
	}
	if (resp->status == 200)
		metrics_count(METRICS_TOKENS_ISSUED + g, 1);
out:
	oauth_client_cred_wipe(&cred);
	form_free(f);
}
