/*
 * users.h -- user records and the brute-force counters, in Redis.
 *
 * Layout under the prefix p:
 *   <p>user:<username>  HASH id (32 hex, random: the OIDC "sub"), pw (PHC
 *                       string), claims (base64url of the AES-256-GCM sealed
 *                       JSON object; absent when the user has none), locked
 *                       (0/1, set by an administrator), created, updated (s)
 *   <p>users            SET of usernames
 *   <p>uid:<id>         STRING username (sub -> username)
 *   <p>nbf:<id>         STRING unix time (s): tokens of this subject issued
 *                       before it are invalid; never moves backwards, no TTL
 *   <p>fail:u:<name>    HASH n (failures in the window), last (ms of the last
 *                       failure); PEXPIRE window set by the first failure
 *   <p>fail:a:<addr>    the same per client address
 *   <p>lock:u:<name>    "1" with PX = lock duration (too many failures)
 *   <p>lock:a:<addr>    the same per client address
 * <name> in the throttle keys is the username as given when it is a valid
 * username, else "#" and the hex SHA-256 of it (unknown and even impossible
 * usernames are counted like real ones, so throttling tells nothing about
 * which exist); <addr> likewise (printable, up to 64 bytes, else hashed).
 *
 * Usernames: 1..USERS_NAME_MAX bytes of [A-Za-z0-9._@+-], case-sensitive.
 *
 * Return codes: FA_OK; FA_NOTFOUND (no such user; also for a username that
 * could never exist, so a login with "a b" is just an unknown user); FA_UNAVAIL
 * (store unreachable or erroring: fail closed); FA_ERR (bad argument, corrupt
 * record, claims that do not decrypt); FA_DENIED from users_create only: the
 * username is taken.
 */
#ifndef USERS_H
#define USERS_H

#include <stdint.h>
#include <time.h>

#include "crypto/crypto.h"

struct redis_conn;

#define USERS_NAME_MAX		64	/* bytes of a username */
#define USERS_ID_LEN		32	/* hex characters of a user id */
#define USERS_PW_MAX		255	/* bytes of a stored PHC string */
#define USERS_CLAIMS_MAX	4096	/* bytes of the compact claims JSON */
#define USERS_CLAIMS_COUNT	32	/* claims per user */
#define USERS_CLAIM_KEY_MAX	64	/* bytes of a claim name */

/* What every record call needs; nothing here is owned by users.c. */
struct users_ctx {
	struct redis_conn	*conn;
	struct crypto_ctx	*crypto;	/* the calling thread's */
	const uint8_t		*data_key;	/* CRYPTO_KEYLEN bytes: seals the claims */
};

struct users_user {
	char	 username[USERS_NAME_MAX + 1];
	char	 id[USERS_ID_LEN + 1];		/* the OIDC subject */
	char	 pw[USERS_PW_MAX + 1];		/* PHC string */
	int	 locked;			/* 1 = locked by an administrator */
	time_t	 created, updated;		/* s since epoch */
	char	*claims_json;			/* decrypted compact JSON object, NULL if none */
	time_t	 not_before;			/* the subject's nbf (s), 0 = none; read
						   in the same round trip */
};

/* Free claims_json and wipe the whole struct (safe on a zeroed or cleared one). */
void	users_user_clear(struct users_user *);

/* 1 if name is a valid username, else 0. */
int	users_name_valid(const char *name);

/*
 * Read a user (one round trip, with its not-before). FA_OK and *out (clear it
 * with users_user_clear), FA_NOTFOUND, FA_UNAVAIL, FA_ERR (corrupt record, or
 * claims that do not decrypt under data_key for this username and id: a record
 * or a field copied from another user). On failure *out is zeroed.
 */
int	users_get(const struct users_ctx *, const char *username, struct users_user *out);
/* The same by id (the "sub"), through uid:<id>, in one round trip. */
int	users_get_by_id(const struct users_ctx *, const char *id, struct users_user *out);

/*
 * Create a user with a new random id (written to id_out, 33 bytes), unlocked,
 * without claims. pw_phc must parse as an Argon2id PHC string (a guard against
 * storing a plaintext password by mistake). FA_OK, FA_DENIED if the username
 * exists, FA_ERR (bad username or PHC string), FA_UNAVAIL.
 */
int	users_create(const struct users_ctx *, const char *username, const char *pw_phc,
	    char id_out[USERS_ID_LEN + 1]);

/*
 * Replace the password hash (and "updated"), touching no other field. It does
 * not set the not-before: `user passwd` should also call
 * users_set_not_before and refresh_revoke_subject. FA_OK, FA_NOTFOUND,
 * FA_ERR (bad PHC string), FA_UNAVAIL.
 */
int	users_set_password(const struct users_ctx *, const char *username, const char *pw_phc);
/*
 * For the rehash on login: replace the hash only if it is still old_phc (the
 * one just verified), so a `user passwd` that landed meanwhile is not undone
 * by the rehash of the old password. FA_OK, FA_DENIED (the hash changed:
 * nothing written, nothing to do), FA_NOTFOUND, FA_ERR, FA_UNAVAIL.
 */
int	users_rehash_password(const struct users_ctx *, const char *username,
	    const char *old_phc, const char *new_phc);
/* Set the administrative lock flag (0/1). FA_OK, FA_NOTFOUND, FA_UNAVAIL. */
int	users_set_locked(const struct users_ctx *, const char *username, int locked);
/*
 * Validate, seal and store the claims (a JSON object; NULL or "{}" removes
 * them), touching no other field. Rules: at most USERS_CLAIMS_COUNT keys of
 * [a-z0-9_]{1,64}, not a reserved token/introspection name (sub, iss, aud,
 * exp, ...); values strings, numbers or booleans (no null, array, object);
 * name, given_name, family_name, email must be strings and email_verified a
 * boolean; the compact form at most USERS_CLAIMS_MAX bytes. The compact form
 * is what users_get returns (key order kept, reals with 15 significant
 * digits). FA_OK, FA_NOTFOUND, FA_UNAVAIL, FA_ERR with *cause (caller frees)
 * when invalid.
 */
int	users_set_claims(const struct users_ctx *, const char *username,
	    const char *claims_json, char **cause);
/*
 * Validate claims as users_set_claims would (no I/O). FA_OK and, if compact is
 * not NULL, *compact (caller frees); FA_ERR and *cause (caller frees).
 */
int	users_claims_validate(const char *claims_json, char **compact, char **cause);
/*
 * Remove the user, its uid index and its name from the set, and raise its
 * not-before to now + 1 (so a token issued in this very second dies too), in
 * one atomic step. The subject's refresh families are not touched here (call
 * refresh_revoke_subject too). FA_OK, FA_NOTFOUND, FA_UNAVAIL.
 */
int	users_remove(const struct users_ctx *, const char *username);
/* All usernames, sorted (strcmp); free *names with store_ids_free. FA_OK, FA_UNAVAIL, FA_ERR. */
int	users_list(const struct users_ctx *, char ***names, int *n);

/*
 * Raise the subject's not-before to t (never lowers it: hosts with skewed
 * clocks cannot undo a revocation). FA_OK, FA_ERR (bad id), FA_UNAVAIL.
 */
int	users_set_not_before(struct redis_conn *, const char *id, time_t t);
/* *t = the subject's not-before, 0 when none. FA_OK, FA_UNAVAIL, FA_ERR (corrupt). */
int	users_get_not_before(struct redis_conn *, const char *id, time_t *t);

/* Brute-force throttling (keys above), shared by every host through Redis. */
struct users_throttle_params {
	int	max_failures;		/* per username before a lock; 0 = never lock */
	long	window_s;		/* failures are counted over this, from the first; > 0 */
	long	lock_s;			/* lock duration (user and address); > 0 if locking */
	long	delay_base_ms;		/* delay after the first failure; 0 = no delay */
	long	delay_max_ms;		/* cap of the doubling delay */
	int	max_failures_addr;	/* per address before its lock; 0 = no limit */
};

/* users_login_failed's *now_locked bits. */
#define USERS_LOCKED_USER	0x01	/* this failure locked the username */
#define USERS_LOCKED_ADDR	0x02	/* this failure locked the address */

/*
 * Before verifying a password (one round trip, read only): *locked = 1 when
 * the username or the address (addr may be NULL or "") is locked;
 * *delay_ms = how long (ms) until the username's progressive delay has passed
 * since its last failure, 0 when an attempt may go ahead. The delay after n
 * failures in the window is min(delay_base_ms * 2^(n-1), delay_max_ms). The
 * caller answers exactly as for a wrong password, without hashing, when
 * *locked or *delay_ms > 0 (and does not call users_login_failed for that
 * refusal). now_ms: wall clock, ms since the epoch (shared by all hosts).
 * FA_OK, FA_ERR (bad params), FA_UNAVAIL (then *locked = 1: fail closed).
 */
int	users_login_check(struct redis_conn *, const struct users_throttle_params *,
	    const char *username, const char *addr, long now_ms, int *locked,
	    long *delay_ms);
/*
 * A password was checked and was wrong (or the user is unknown): one atomic
 * script counts it against the username and the address, records its time,
 * and locks a username that reaches max_failures (and an address that
 * reaches max_failures_addr) for lock_s, restarting its count. Failures of a
 * username already locked are not counted against it (the lock is not
 * extended by an attacker). *now_locked = USERS_LOCKED_* bits of the locks
 * this very failure caused (0 for none), so one security event is raised per
 * lock. FA_OK, FA_ERR (bad params), FA_UNAVAIL.
 */
int	users_login_failed(struct redis_conn *, const struct users_throttle_params *,
	    const char *username, const char *addr, long now_ms, int *now_locked);
/* A good password: clear the username's failure count (not the address's). FA_OK, FA_UNAVAIL. */
int	users_login_succeeded(struct redis_conn *, const char *username);
/*
 * Clear the username's lock and failure count (fastauthctl user unlock; the
 * administrative flag is users_set_locked). FA_OK, FA_UNAVAIL.
 */
int	users_unlock(struct redis_conn *, const char *username);
/* Clear an address's lock and failure count. FA_OK, FA_UNAVAIL. */
int	users_unlock_addr(struct redis_conn *, const char *addr);

#endif
