/*
 * keyring.h -- data keys for sealing tokens, shared by every host through Redis,
 * each wrapped (AES-256-GCM) by the key-encryption key (KEK) file of the host.
 *
 * Redis layout (prefix from configuration, "fastauth:" by default):
 *   <p>key:next_id         INCR counter for key ids (1, 2, ...)
 *   <p>keys                ZSET kid -> kid (score = kid), every key not yet deleted
 *   <p>key:<kid>           HASH wrapped (base64url), created (s), seals (count),
 *                          retired_at (s, 0 while usable for validation)
 *   <p>lock:rotate         SET NX PX, held by the one process rotating
 *   <p>keys:generation     INCR on every change; processes reload when it moves
 * The newest key seals; older keys validate until every token they sealed has
 * expired, then are deleted.
 */
#ifndef KEYRING_H
#define KEYRING_H

#include <stdint.h>
#include <time.h>

#include "crypto/crypto.h"

struct redis_conn;
struct keyring;

struct keyring_params {
	long	rotate_after_s;		/* age at which a new key is added; 0 = never by age */
	long long rotate_after_seals;	/* seals after which a new key is added */
	long	token_lifetime_s;	/* longest access-token lifetime: how long old keys stay */
	long	refresh_s;		/* how often a process re-reads the key list */
};

/* Create a new KEK file (32 random bytes, hex), mode 0600; refuses to overwrite. */
int	keyring_kek_create(const char *path, char **cause);
/* Read the KEK; refuses a file readable by group or others. */
int	keyring_kek_load(const char *path, uint8_t kek[CRYPTO_KEYLEN], char **cause);

/* A keyring bound to the KEK (copied). Free with keyring_free (wipes the keys). */
struct keyring *keyring_new(const uint8_t kek[CRYPTO_KEYLEN], const struct keyring_params *);
void	keyring_free(struct keyring *);
/* (Re)load every key from Redis and unwrap it. FA_OK, FA_UNAVAIL, FA_ERR (bad KEK...). */
int	keyring_load(struct keyring *, struct redis_conn *, char **cause);
/* Number of usable keys loaded. */
int	keyring_count(struct keyring *);
/*
 * The key new tokens are sealed with; counts one seal against it. Thread-safe,
 * no I/O. FA_OK, or FA_NOTFOUND when no key is loaded.
 */
int	keyring_current(struct keyring *, uint32_t *kid, uint8_t key[CRYPTO_KEYLEN]);
/* The key with id kid, for opening. Thread-safe, no I/O. FA_OK or FA_NOTFOUND. */
int	keyring_lookup(struct keyring *, uint32_t kid, uint8_t key[CRYPTO_KEYLEN]);
/*
 * A token named a key id this process has not loaded (another host rotated a
 * moment ago): reload from Redis if kid is newer than every loaded key and the
 * last load is over a second old. FA_OK if kid is now known, FA_NOTFOUND,
 * FA_UNAVAIL.
 */
int	keyring_reload_for(struct keyring *, struct redis_conn *, uint32_t kid);
/*
 * Add a new key now (administrative rotation, or the first key). Takes the
 * rotation lock; FA_OK (*kid set), FA_UNAVAIL, FA_ERR.
 */
int	keyring_rotate(struct keyring *, struct redis_conn *, uint32_t *kid, char **cause);
/*
 * Housekeeping, called every few seconds by one thread per process: adds this
 * process's seal count to Redis, rotates when the current key is too old or has
 * sealed too much (exactly one process across all hosts wins the lock), deletes
 * keys whose tokens have all expired, reloads when the generation moved.
 * FA_OK, FA_UNAVAIL, FA_ERR.
 */
int	keyring_maintain(struct keyring *, struct redis_conn *, time_t now, char **cause);

struct keyring_info {
	uint32_t	kid;
	time_t		created;
	long long	seals;
	time_t		retired_at;	/* 0 = current or validating */
	int		current;
};
/* List keys as Redis has them (for fastauthctl key list); *out freed by caller. */
int	keyring_list(struct keyring *, struct redis_conn *, struct keyring_info **out,
	    int *n, char **cause);

#endif
