/*
 * store.h -- fastauth's data model in Redis, for clients and revocation.
 * (Keys live in keyring.c.) Every call takes the caller's connection.
 *
 * Layout under the prefix p:
 *   <p>client:<id>    HASH secret (hex HMAC-SHA256(pepper, secret)), scope,
 *                     grants (space-separated), introspect (0/1), created (s),
 *                     name (free text)
 *   <p>clients        SET of client ids
 *   <p>revoked:<jti>  "1" with EX = the token's remaining lifetime
 * Return codes: FA_OK, FA_NOTFOUND, FA_UNAVAIL (store unreachable or erroring:
 * callers fail closed), FA_ERR (bad argument, corrupt record).
 */
#ifndef STORE_H
#define STORE_H

#include <stdint.h>
#include <time.h>

#include "core/fastauth.h"
#include "crypto/crypto.h"
#include "crypto/token.h"

struct redis_conn;

#define STORE_GRANT_CLIENT_CREDENTIALS	0x01
#define STORE_GRANT_PASSWORD		0x02
#define STORE_GRANT_REFRESH_TOKEN	0x04
#define STORE_GRANT_AUTHORIZATION_CODE	0x08

struct store_client {
	char	 id[FA_CLIENT_ID_MAX + 1];
	uint8_t	 secret_mac[CRYPTO_HASHLEN];	/* HMAC-SHA256(pepper, secret) */
	char	 scope[FA_SCOPE_MAX + 1];	/* allowed scopes, space-separated */
	unsigned grants;			/* STORE_GRANT_* */
	int	 introspect;			/* may call /oauth2/introspect */
	time_t	 created;
	char	 name[128];
};

/* Grant names <-> bits. store_grants_parse: FA_ERR on an unknown name (*bad set, static). */
int	store_grants_parse(const char *list, unsigned *grants, const char **bad);
/* Space-separated names of the bits into out (outcap bytes). */
void	store_grants_format(unsigned grants, char *out, size_t outcap);

int	store_client_get(struct redis_conn *, const char *id, struct store_client *out);
/* Create (fails FA_ERR "exists" unless replace) or overwrite a client. */
int	store_client_put(struct redis_conn *, const struct store_client *, int replace);
int	store_client_del(struct redis_conn *, const char *id);
/* All client ids; *ids is an array of n strings, free with store_ids_free. */
int	store_client_list(struct redis_conn *, char ***ids, int *n);
void	store_ids_free(char **, int n);

/* Deny jti for ttl seconds (at least 1). */
int	store_revoke_jti(struct redis_conn *, const uint8_t jti[TOKEN_JTI_LEN], long ttl);
/* 1 if revoked, 0 if not, FA_UNAVAIL. */
int	store_is_revoked(struct redis_conn *, const uint8_t jti[TOKEN_JTI_LEN]);
/*
 * One round trip for introspection: the calling client's record (skipped when
 * id is NULL; *client_rc stays FA_NOTFOUND), whether jti
 * is revoked and, when subject is not NULL or "", the subject's not-before
 * (<p>nbf:<subject>, see users.h; *nbf 0 when none), pipelined.
 * *client_rc gets FA_OK/FA_NOTFOUND; *revoked 0/1.
 * Returns FA_OK, FA_UNAVAIL, or FA_ERR for a corrupt client record.
 */
int	store_client_and_revoked(struct redis_conn *, const char *id,
	    struct store_client *out, int *client_rc,
	    const uint8_t jti[TOKEN_JTI_LEN], int *revoked,
	    const char *subject, long long *nbf);
/*
 * The revocation state of n access tokens in one round trip: a single MGET of
 * every <p>revoked:<jti> and, for the tokens with a subject, <p>nbf:<subject>.
 * revoked[i] 1 when cl[i]'s jti is deny-listed (else 0); nbf[i] the subject's
 * not-before (0 when none or no subject). FA_OK, or FA_UNAVAIL with every
 * revoked[i] = 1 (unreachable, error reply, or a value that does not parse).
 */
int	store_revoked_many(struct redis_conn *, int n, const struct token_claims *const *cl,
	    int *revoked, long long *nbf);

#endif
