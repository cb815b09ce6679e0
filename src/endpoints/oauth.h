/*
 * oauth.h -- what the OAuth endpoints share: RFC 6749 §5.2 error responses,
 * form-body intake, and client authentication (client_secret_basic and
 * client_secret_post, RFC 6749 §2.3.1).
 */
#ifndef OAUTH_H
#define OAUTH_H

#include "core/fastauth.h"
#include "http/form.h"
#include "store/store.h"

struct request;
struct response;
struct service_thread;

/* Secret length accepted from a client (bytes); longer is invalid_client. */
#define OAUTH_SECRET_MAX 256

/* Answer {"error":code,"error_description":desc} with status (no-store). */
void	oauth_error(struct response *, int status, const char *code, const char *desc);
/*
 * 503 temporarily_unavailable with Retry-After: the store cannot be reached;
 * never guess. Retry-After is the circuit breaker's remaining cool-down
 * (rounded up, at least 1 s) while it is open, else 1.
 */
void	oauth_unavailable(struct service_thread *, struct response *);
/* 401 invalid_client with WWW-Authenticate. */
void	oauth_invalid_client(struct response *, const char *desc);
/* JSON success headers for token-bearing answers: no-store, no-cache. */
void	oauth_nostore(struct response *);

/*
 * Check the content type and parse the form body. Returns the form (free with
 * form_free), or NULL after writing the 400 answer.
 */
struct form *oauth_form(struct service_thread *, struct request *, struct response *);

struct oauth_client_cred {
	char	id[FA_CLIENT_ID_MAX + 1];
	char	secret[OAUTH_SECRET_MAX + 1];
	int	method;		/* 1 = basic, 2 = post */
};

/*
 * Extract client credentials from the Authorization header or the form.
 * FA_OK, or FA_ERR after writing the answer (400 both methods, 401 none or
 * malformed). The secret is wiped by oauth_client_cred_wipe.
 */
int	oauth_client_cred(struct request *, const struct form *, struct response *,
	    struct oauth_client_cred *);
void	oauth_client_cred_wipe(struct oauth_client_cred *);
/*
 * Verify cred against the stored record (rc is the store lookup's result).
 * FA_OK, or FA_DENIED after writing 401 (unknown client and wrong secret
 * cost the same and answer the same), FA_UNAVAIL after writing 503.
 */
int	oauth_client_verify(struct service_thread *, const struct oauth_client_cred *,
	    int rc, const struct store_client *, struct response *);
/* Generate a client secret (base64url of 32 random bytes) into out (44 bytes). */
int	oauth_secret_generate(char out[44]);
/* HMAC-SHA256(pepper, secret). */
void	oauth_secret_mac(struct crypto_ctx *, const uint8_t pepper[CRYPTO_HASHLEN],
	    const char *secret, uint8_t mac[CRYPTO_HASHLEN]);
/* 1 if every scope in want is in have (space-separated lists), else 0. */
int	oauth_scope_subset(const char *want, const char *have);
/* 1 if s is a valid RFC 6749 §3.3 scope list (NQCHAR tokens, single spaces). */
int	oauth_scope_valid(const char *s);


struct token_claims;
/*
 * Open an access token and check its expiry against now. FA_OK (valid),
 * FA_DENIED (malformed, forged, unknown key, expired), FA_UNAVAIL (it names a
 * key newer than this process knows and Redis cannot be asked). No I/O unless
 * the key id is new to this process.
 */
int	oauth_token_open(struct service_thread *, const char *tok, size_t len,
	    long long now, struct token_claims *);

#endif
