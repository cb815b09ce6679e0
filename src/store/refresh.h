/*
 * refresh.h -- refresh tokens: random, stored under their SHA-256 only,
 * rotated on every use, the whole family revoked when a rotated one comes back.
 *
 * Token text: "far1." + base64url(32 random bytes) (48 characters). Redis
 * never sees it: records are keyed by the lower-case hex SHA-256 of the text.
 *
 * Layout under the prefix p:
 *   <p>rt:<hash>     HASH fam, client, iat (s), abs (absolute expiry, s),
 *                    state "active" | "rotated"; while active also sub and
 *                    scope (the family's), EXPIRE min(idle, abs - now); once
 *                    rotated also rotated_at (s), grace_used (0/1), succ (hash
 *                    of the successor), sub and scope dropped, EXPIRE abs - now
 *                    (kept so that its reuse is recognised)
 *   <p>rtfam:<fam>   HASH client, sub, scope, created (s: the authentication
 *                    the family started from), abs, revoked (0/1), revoked_at;
 *                    EXPIRE abs - now. The family is the authority: a token
 *                    whose family is missing or revoked is dead, whatever its
 *                    own record says.
 *   <p>rtfams:<sub>  SET of family ids of a subject (stale ids are pruned as
 *                    new families are added); EXPIRE the longest family's.
 *
 * Scope: a family keeps the scope it was issued with (RFC 6749 §6); a caller
 * narrowing the scope of one access token checks the requested scope against
 * the grant's scope, and the successor refresh token keeps the original one.
 *
 * Return codes: FA_OK; FA_DENIED (invalid_grant); FA_NOTFOUND (lookups:
 * not a refresh token we know); FA_UNAVAIL (store unreachable or erroring:
 * fail closed); FA_ERR (bad argument).
 */
#ifndef REFRESH_H
#define REFRESH_H

#include <stddef.h>
#include <time.h>

#include "core/fastauth.h"

struct redis_conn;

#define REFRESH_TOKEN_PREFIX	"far1."
#define REFRESH_TOKEN_LEN	48	/* characters of a token */
#define REFRESH_TOKEN_SIZE	(REFRESH_TOKEN_LEN + 1)	/* outcap that always fits */
#define REFRESH_FAM_LEN		32	/* hex characters of a family id */

struct refresh_params {
	long	idle_s;		/* a token unused this long expires; 0 = only abs */
	long	absolute_s;	/* a family ends this long after issue; > 0 */
	long	grace_s;	/* a rotated token may be presented once more this long
				   after its rotation, without revocation; 0 = never */
};

struct refresh_grant {
	char	 fam[REFRESH_FAM_LEN + 1];
	char	 client[FA_CLIENT_ID_MAX + 1];
	char	 sub[FA_SUBJECT_MAX + 1];
	char	 scope[FA_SCOPE_MAX + 1];	/* the family's (original) scope */
	time_t	 abs;				/* the family's absolute expiry, s */
	time_t	 auth_time;			/* when the family was issued, s: compare
						   with the subject's not-before */
	time_t	 iat;				/* when this token was issued, s */
	time_t	 exp;				/* when this token expires (idle or abs), s */
	int	 graced;			/* refresh_rotate: 1 if this was the one
						   repeat allowed by grace_s */
};

/*
 * Start a new family for client and sub with scope: writes the token text
 * (NUL-terminated) to token_out (outcap >= REFRESH_TOKEN_SIZE) and the family
 * id to fam_out. FA_OK, FA_ERR (bad argument or parameters, no randomness),
 * FA_UNAVAIL. The caller wipes token_out when done.
 */
int	refresh_issue(struct redis_conn *, const struct refresh_params *,
	    const char *client, const char *sub, const char *scope, time_t now,
	    char *token_out, size_t outcap, char fam_out[REFRESH_FAM_LEN + 1]);

/*
 * Rotate token for client, atomically (one Lua script, no retry): the token
 * must exist, be active, belong to client, its family exist, not be revoked
 * and not be past abs; it becomes rotated and a successor (same family, sub,
 * scope, abs; idle TTL) is written to new_token (outcap >= REFRESH_TOKEN_SIZE)
 * and the grant to *out. FA_OK.
 *
 * A rotated token presented again: if within grace_s of its rotation, not
 * graced before, and its successor still unused, it is rotated once more
 * (the family branches there: both successors live on) -- FA_OK. Otherwise
 * the family is revoked, *reuse_detected = 1 and out->fam, client, sub say
 * whose (for the security event) -- FA_DENIED.
 *
 * FA_DENIED also (with *reuse_detected = 0) for an unknown, malformed or
 * expired token, another client's token (its family is left alone) and a
 * revoked family. FA_UNAVAIL, FA_ERR (bad parameters). new_token and *out are
 * cleared on failure (except for the reuse fields above).
 *
 * The token is rotated before the caller checks a requested scope: a caller
 * that may refuse afterwards (invalid_scope) should call refresh_lookup first
 * (no state change), or the client loses its token.
 */
int	refresh_rotate(struct redis_conn *, const struct refresh_params *,
	    const char *token, const char *client, time_t now, char *new_token,
	    size_t outcap, struct refresh_grant *out, int *reuse_detected);

/*
 * RFC 7009: if token is a refresh token of client (active or rotated), revoke
 * its family -- FA_OK (also when it was revoked already). FA_NOTFOUND for a
 * token that is unknown, malformed, expired or another client's (then nothing
 * changes; the caller may try it as an access token and answers 200 anyway).
 * FA_UNAVAIL.
 */
int	refresh_revoke(struct redis_conn *, const char *token, const char *client);
/*
 * The same, and on FA_OK *out (if not NULL) names the family, client and
 * subject (for the security event); *newly = 1 (if not NULL) when this call
 * revoked it, 0 when it was revoked already.
 */
int	refresh_revoke_grant(struct redis_conn *, const char *token, const char *client,
	    struct refresh_grant *out, int *newly);
/* Revoke every family of sub. FA_OK (also when there is none), FA_ERR, FA_UNAVAIL. */
int	refresh_revoke_subject(struct redis_conn *, const char *sub);
/*
 * For introspection and pre-checks: FA_OK and *out with *active = 1 when the
 * token could be rotated now (active, family present and not revoked, before
 * abs), 0 otherwise (rotated, revoked); FA_NOTFOUND when unknown, malformed
 * or expired; FA_UNAVAIL, FA_ERR (corrupt record). No state changes.
 */
int	refresh_lookup(struct redis_conn *, const char *token, struct refresh_grant *out,
	    int *active);

#endif
