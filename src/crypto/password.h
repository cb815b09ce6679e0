/*
 * password.h -- user passwords: Argon2id (libargon2) in the PHC string format
 * ($argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>), a dummy verification for
 * unknown users, and a per-thread pool of pre-faulted memory for the hashes.
 *
 * Every function is thread-safe. The Argon2 memory of a thread stays mapped
 * between hashes (that is the point of the pool); a thread gives it back when
 * it exits or calls password_thread_release.
 */
#ifndef PASSWORD_H
#define PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define PASSWORD_SALTLEN	16	/* bytes of salt in the hashes we make */
#define PASSWORD_HASHLEN	32	/* bytes of digest in the hashes we make */
#define PASSWORD_SALT_MIN	8	/* a stored hash's salt: bytes, inclusive */
#define PASSWORD_SALT_MAX	64
#define PASSWORD_HASH_MIN	16	/* a stored hash's digest: bytes, inclusive */
#define PASSWORD_HASH_MAX	64
/* Buffer size (with the NUL) that holds any PHC string we make or accept. */
#define PASSWORD_PHC_MAX	256

/*
 * Hard bounds of the parser, whatever the configuration: nothing above them is
 * a PHC string we will even look at (4 GiB of memory, 1024 passes, 255 lanes).
 */
#define PASSWORD_HARD_M_MAX	4194304u	/* KiB */
#define PASSWORD_HARD_T_MAX	1024u
#define PASSWORD_HARD_P_MAX	255u
#define PASSWORD_HARD_LEN_MAX	65536u		/* bytes: the largest max_len */

/* Defaults (DESIGN.md, OWASP 2023 for Argon2id: 19 MiB, 2 passes, 1 lane). */
#define PASSWORD_M_DEFAULT	19456u		/* KiB */
#define PASSWORD_T_DEFAULT	2u
#define PASSWORD_P_DEFAULT	1u
#define PASSWORD_MAX_LEN_DEFAULT 1024u		/* bytes */
/* Default ceilings on a stored hash's cost (what a verify may be asked to spend). */
#define PASSWORD_M_CEIL_DEFAULT	262144u		/* KiB: 256 MiB */
#define PASSWORD_T_CEIL_DEFAULT	16u
#define PASSWORD_P_CEIL_DEFAULT	8u

/*
 * Parameters from the configuration. New hashes use m_kib/t/p; a stored hash
 * with other values still verifies (and asks for a rehash) unless its cost is
 * above a ceiling. Zero in max_len or a ceiling means its default above; a
 * ceiling is never below the parameter it bounds (password_params_check).
 */
struct password_params {
	uint32_t	m_kib;		/* memory, KiB; >= 8 * p */
	uint32_t	t;		/* passes, >= 1 */
	uint32_t	p;		/* lanes (and threads), >= 1 */
	size_t		max_len;	/* longest password accepted, bytes; 0 = default */
	uint32_t	m_ceil_kib;	/* largest m of a stored hash we verify, KiB; 0 = default */
	uint32_t	t_ceil;		/* largest t likewise; 0 = default */
	uint32_t	p_ceil;		/* largest p likewise; 0 = default */
};

#define PASSWORD_PARAMS_DEFAULT {					\
	.m_kib = PASSWORD_M_DEFAULT, .t = PASSWORD_T_DEFAULT,		\
	.p = PASSWORD_P_DEFAULT, .max_len = PASSWORD_MAX_LEN_DEFAULT,	\
	.m_ceil_kib = 0, .t_ceil = 0, .p_ceil = 0 }

/* A parsed PHC string. hash is derived from a password: wipe it after use. */
struct password_phc {
	uint32_t	version;	/* 0x13 (v=19) or 0x10 (v=16) */
	uint32_t	m_kib, t, p;
	uint8_t		salt[PASSWORD_SALT_MAX];
	size_t		saltlen;	/* PASSWORD_SALT_MIN..MAX */
	uint8_t		hash[PASSWORD_HASH_MAX];
	size_t		hashlen;	/* PASSWORD_HASH_MIN..MAX */
};

/* The calling thread's pool, and the process's pools (for tests and metrics). */
struct password_pool_stats {
	size_t		bytes;		/* this thread's pool, bytes; 0 = none mapped */
	unsigned long	maps;		/* pools this thread mapped (first one + growths) */
	unsigned long	reuses;		/* hashes that found the pool big enough */
	unsigned long	oneshots;	/* hashes above the pool's bound: own mapping */
	unsigned long	hashes;		/* Argon2 computations run by this thread */
	unsigned long	live_pools;	/* process-wide: pools mapped now */
	size_t		live_bytes;	/* process-wide: their bytes */
};

/* FA_OK if the parameters are usable, else FA_ERR and *cause (caller frees). */
int	password_params_check(const struct password_params *, char **cause);

/*
 * Hash len bytes of pw under fresh salt into out (outcap bytes, at least
 * PASSWORD_PHC_MAX is always enough) as a NUL-terminated PHC string. FA_OK;
 * FA_LIMIT if len > max_len (nothing is hashed); FA_ERR on bad parameters, a
 * short buffer, no randomness or no memory.
 */
int	password_hash(const struct password_params *, const void *pw, size_t len,
	    char *out, size_t outcap);

/*
 * Check pw against the stored PHC string phc (NUL-terminated). FA_OK if it
 * matches, and then *needs_rehash (if not NULL) is 1 when phc was made with
 * other parameters or format than params ask for now. FA_DENIED on mismatch
 * and on a malformed or over-ceiling phc (logged; the dummy runs instead, so
 * the time taken is that of a mismatch). FA_LIMIT if len > max_len (nothing
 * is hashed). FA_ERR on bad parameters or if Argon2 could get no memory.
 */
int	password_verify(const struct password_params *, const char *phc,
	    const void *pw, size_t len, int *needs_rehash);

/*
 * For an unknown username: spend what a password_verify with a wrong password
 * costs (a dummy hash with params' cost, made once per process and again when
 * params change), then answer FA_DENIED. FA_LIMIT and FA_ERR as for verify.
 */
int	password_verify_dummy(const struct password_params *, const void *pw,
	    size_t len);

/*
 * Parse the first n bytes of s (no NUL needed) as a canonical Argon2id PHC
 * string within the hard bounds. FA_OK and *out, or FA_ERR and *cause (if not
 * NULL; caller frees). Strict: exactly one spelling of each value is accepted,
 * so password_phc_encode of the result gives s back.
 */
int	password_phc_parse(const char *s, size_t n, struct password_phc *out,
	    char **cause);
/* Write phc as a NUL-terminated PHC string into out (outcap bytes). FA_OK or FA_ERR. */
int	password_phc_encode(const struct password_phc *, char *out, size_t outcap);

/*
 * Map and pre-fault the calling thread's pool for params now, so the first
 * login of a worker thread pays no page faults. FA_OK, or FA_ERR (bad
 * parameters, no memory).
 */
int	password_thread_prepare(const struct password_params *);
/* Wipe and unmap the calling thread's pool; the next hash maps a new one. */
void	password_thread_release(void);
void	password_pool_stats(struct password_pool_stats *);
/*
 * Keep at most max pools in the process (0 = one per hashing thread, the
 * default). Set it to the host's admission limit: no more hashes than that
 * run at once, so more pools would only hold memory.
 */
void	password_pool_limit(unsigned long max);

#endif
