/*
 * password.c -- Argon2id password hashing and verification (libargon2), the
 * PHC string codec, the dummy hash for unknown users and the per-thread pool
 * of Argon2 memory.
 *
 * libargon2's one-call API (argon2id_hash_encoded, argon2id_verify) mallocs
 * the block memory on every hash; above glibc's mmap threshold (at most 32 MiB)
 * that is a fresh mapping each time, and a 46 MiB hash then spends about 40%
 * of its time in page faults (DESIGN.md; below it glibc mostly reuses its
 * heap and the gain is small, see bench/bench_password). So we drive
 * argon2_ctx() with an allocate/free callback pair that hands out one
 * pre-faulted mapping per thread, and encode and parse the PHC string
 * ourselves, because the library's encoder and decoder are not exported
 * (nm -D libargon2.so.1).
 *
 * What this file owns:
 * - a thread's pool (struct password_pool): mapped on first use, grown when
 *   the configured parameters grow, wiped and unmapped at thread exit (a
 *   pthread key destructor) or by password_thread_release. A stored hash
 *   costlier than the configuration gets a one-shot mapping instead, so one
 *   legacy hash cannot pin its memory to the thread for good.
 * - the dummy hash (password_dummy), made under a mutex the first time an
 *   unknown user is checked and again when the parameters change.
 * Nothing else is global or mutable but two atomic counters for statistics.
 *
 * Wiping: libargon2 itself wipes the whole block memory before it calls the
 * free callback (FLAG_clear_internal_memory is 1 in the library and not
 * exported), so the pool holds zeros between hashes; we wipe again when a pool
 * is released or replaced, so that no derived block survives in memory we
 * give back. The pool is also kept out of core dumps and zeroed in a forked
 * child (MADV_DONTDUMP, MADV_WIPEONFORK).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <argon2.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/password.h"

#define PASSWORD_PREFIX		"$argon2id$v="
#define PASSWORD_V13		0x13
#define PASSWORD_V10		0x10
/* Argon2 block size and sync points, to predict what libargon2 will ask for. */
#define PASSWORD_BLOCK		1024
#define PASSWORD_SYNC		4

struct password_pool {
	uint8_t		*mem;		/* pre-faulted mapping; NULL until first use */
	size_t		 cap;		/* bytes mapped at mem (page multiple) */
	size_t		 keep;		/* largest request the pool grows to: the
					   configured parameters of the last call */
	int		 busy;		/* 1 while libargon2 holds mem */
	unsigned long	 maps, reuses, oneshots, hashes;	/* see password.h */
};

static pthread_once_t		 password_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t		 password_key;	/* destructor releases the pool */
static __thread struct password_pool *password_tls;
static atomic_ulong		 password_live_pools;
static atomic_size_t		 password_live_bytes;
/*
 * Most pools the process keeps (0 = no limit). Threads beyond it hash in
 * one-shot mappings: pools would otherwise add up to threads x m, while the
 * host's admission limit means only that many hashes can run at once.
 */
static atomic_ulong		 password_pool_max;

static pthread_mutex_t		 password_dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int		made;
	uint32_t	m_kib, t, p;	/* the parameters it was made with */
	char		phc[PASSWORD_PHC_MAX];
} password_dummy;			/* guarded by password_dummy_lock */

static const char password_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char *password_params_why(const struct password_params *);

/* ---- memory ------------------------------------------------------------- */

static size_t
password_page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

/*
 * Bytes libargon2 asks the allocator for with m KiB and p lanes: it rounds m
 * down to a multiple of 4p blocks and up to at least 8p (argon2.c).
 */
static size_t
password_mem_bytes(uint32_t m, uint32_t p)
{
	uint64_t blocks = m;

	if (blocks < 2 * PASSWORD_SYNC * (uint64_t)p)
		blocks = 2 * PASSWORD_SYNC * (uint64_t)p;
	blocks = blocks / (PASSWORD_SYNC * (uint64_t)p) * (PASSWORD_SYNC * (uint64_t)p);
	return (size_t)blocks * PASSWORD_BLOCK;
}

/*
 * A private anonymous mapping of len bytes (page multiple), every page faulted
 * in now (MAP_POPULATE) so that a hash never traps. NULL if the kernel says no.
 */
static uint8_t *
password_map(size_t len)
{
	void *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Derived blocks have no business in a core file or a forked child. */
	(void)madvise(p, len, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
	(void)madvise(p, len, MADV_WIPEONFORK);
#endif
	return p;
}

static void
password_unmap(uint8_t *mem, size_t len)
{
	if (mem == NULL)
		return;
	explicit_bzero(mem, len);
	munmap(mem, len);
}

static void
password_pool_free(void *arg)
{
	struct password_pool *pool = arg;

	if (pool == NULL)
		return;
	if (pool->mem != NULL) {
		password_unmap(pool->mem, pool->cap);
		atomic_fetch_sub(&password_live_pools, 1);
		atomic_fetch_sub(&password_live_bytes, pool->cap);
	}
	free(pool);
}

/* The key's destructor, at thread exit: the pool of the exiting thread. */
static void
password_pool_exit(void *arg)
{
	if (arg == password_tls)
		password_tls = NULL;	/* in case a later destructor hashes */
	password_pool_free(arg);
}

static void
password_key_init(void)
{
	if (pthread_key_create(&password_key, password_pool_exit) != 0)
		abort();	/* only on PTHREAD_KEYS_MAX exhaustion: a bug */
}

/* The calling thread's pool, created empty on first use. Never NULL. */
static struct password_pool *
password_pool_get(void)
{
	if (password_tls == NULL) {
		pthread_once(&password_key_once, password_key_init);
		password_tls = xcalloc(1, sizeof *password_tls);
		/* The key only exists to run the destructor at thread exit. */
		if (pthread_setspecific(password_key, password_tls) != 0)
			abort();
	}
	return password_tls;
}

/*
 * Replace the pool's mapping with one of at least bytes. FA_OK, or FA_ERR with
 * the pool left empty (the old mapping is gone either way: it was too small).
 */
static int
password_pool_grow(struct password_pool *pool, size_t bytes)
{
	size_t len = password_page_round(bytes);
	unsigned long max = atomic_load(&password_pool_max), live;

	if (pool->mem != NULL) {
		password_unmap(pool->mem, pool->cap);
		atomic_fetch_sub(&password_live_pools, 1);
		atomic_fetch_sub(&password_live_bytes, pool->cap);
		pool->mem = NULL;
		pool->cap = 0;
	}
	/* Claim a place under the process's limit before mapping. */
	live = atomic_load(&password_live_pools);
	do {
		if (max != 0 && live >= max)
			return FA_LIMIT;
	} while (!atomic_compare_exchange_weak(&password_live_pools, &live, live + 1));
	if ((pool->mem = password_map(len)) == NULL) {
		atomic_fetch_sub(&password_live_pools, 1);
		return FA_ERR;
	}
	pool->cap = len;
	pool->maps++;
	atomic_fetch_add(&password_live_bytes, len);
	return FA_OK;
}

void
password_pool_limit(unsigned long max)
{
	atomic_store(&password_pool_max, max);
}

/*
 * libargon2's allocate callback: the pool's memory if it is (or may grow to
 * be) big enough, else a one-shot mapping. libargon2 ignores the return value
 * and tests *memory for NULL.
 */
static int
password_alloc_cb(uint8_t **memory, size_t bytes)
{
	struct password_pool *pool = password_pool_get();
	int rc;

	*memory = NULL;
	if (!pool->busy && bytes <= pool->cap) {
		pool->reuses++;
	} else if (!pool->busy && bytes <= pool->keep &&
	    (rc = password_pool_grow(pool, bytes)) != FA_LIMIT) {
		if (rc != FA_OK)
			return ARGON2_MEMORY_ALLOCATION_ERROR;
	} else {
		pool->oneshots++;
		*memory = password_map(password_page_round(bytes));
		return *memory == NULL ? ARGON2_MEMORY_ALLOCATION_ERROR : ARGON2_OK;
	}
	pool->busy = 1;
	*memory = pool->mem;
	return ARGON2_OK;
}

/* libargon2's free callback; the library has wiped memory already. */
static void
password_free_cb(uint8_t *memory, size_t bytes)
{
	struct password_pool *pool = password_tls;

	if (pool != NULL && pool->busy && memory == pool->mem) {
		pool->busy = 0;
		return;
	}
	password_unmap(memory, password_page_round(bytes));
}

int
password_thread_prepare(const struct password_params *pp)
{
	struct password_pool	*pool;
	size_t			 bytes;

	if (password_params_why(pp) != NULL)
		return FA_ERR;
	pool = password_pool_get();
	bytes = password_mem_bytes(pp->m_kib, pp->p);
	pool->keep = bytes;
	if (pool->cap >= bytes)
		return FA_OK;
	/* Over the process's pool limit this thread just hashes one-shot. */
	return password_pool_grow(pool, bytes) == FA_ERR ? FA_ERR : FA_OK;
}

void
password_thread_release(void)
{
	pthread_once(&password_key_once, password_key_init);
	if (password_tls == NULL)
		return;
	password_pool_free(password_tls);
	password_tls = NULL;
	(void)pthread_setspecific(password_key, NULL);
}

void
password_pool_stats(struct password_pool_stats *st)
{
	const struct password_pool *pool = password_tls;

	memset(st, 0, sizeof *st);
	if (pool != NULL) {
		st->bytes = pool->cap;
		st->maps = pool->maps;
		st->reuses = pool->reuses;
		st->oneshots = pool->oneshots;
		st->hashes = pool->hashes;
	}
	st->live_pools = atomic_load(&password_live_pools);
	st->live_bytes = atomic_load(&password_live_bytes);
}

/* ---- parameters --------------------------------------------------------- */

static size_t
password_max_len(const struct password_params *pp)
{
	return pp->max_len != 0 ? pp->max_len : PASSWORD_MAX_LEN_DEFAULT;
}

static uint32_t
password_ceil(uint32_t v, uint32_t def)
{
	return v != 0 ? v : def;
}

/* NULL if usable, else why not (a static string). */
static const char *
password_params_why(const struct password_params *pp)
{
	if (pp->p < 1 || pp->p > PASSWORD_HARD_P_MAX)
		return "p (lanes) must be 1 to 255";
	if (pp->t < 1 || pp->t > PASSWORD_HARD_T_MAX)
		return "t (passes) must be 1 to 1024";
	if (pp->m_kib < 8 * pp->p || pp->m_kib > PASSWORD_HARD_M_MAX)
		return "m must be at least 8 KiB per lane and at most 4 GiB";
	if (password_max_len(pp) > PASSWORD_HARD_LEN_MAX)
		return "maximum password length must be at most 65536 bytes";
	if (pp->m_kib > password_ceil(pp->m_ceil_kib, PASSWORD_M_CEIL_DEFAULT) ||
	    pp->t > password_ceil(pp->t_ceil, PASSWORD_T_CEIL_DEFAULT) ||
	    pp->p > password_ceil(pp->p_ceil, PASSWORD_P_CEIL_DEFAULT))
		return "m, t or p is above its ceiling for stored hashes";
	if (password_ceil(pp->m_ceil_kib, PASSWORD_M_CEIL_DEFAULT) > PASSWORD_HARD_M_MAX ||
	    password_ceil(pp->t_ceil, PASSWORD_T_CEIL_DEFAULT) > PASSWORD_HARD_T_MAX ||
	    password_ceil(pp->p_ceil, PASSWORD_P_CEIL_DEFAULT) > PASSWORD_HARD_P_MAX)
		return "a ceiling is above the hard bound (4 GiB, 1024 passes, 255 lanes)";
	return NULL;
}

int
password_params_check(const struct password_params *pp, char **cause)
{
	const char *why = password_params_why(pp);

	if (why == NULL)
		return FA_OK;
	if (cause != NULL)
		*cause = xasprintf("password parameters: %s", why);
	return FA_ERR;
}

/* ---- PHC string codec --------------------------------------------------- */

/* Unpadded standard base64 of n bytes into out; returns the length written. */
static size_t
password_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = password_b64[v >> 18];
		out[o++] = password_b64[(v >> 12) & 63];
		out[o++] = password_b64[(v >> 6) & 63];
		out[o++] = password_b64[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = password_b64[v >> 18];
		out[o++] = password_b64[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = password_b64[v >> 18];
		out[o++] = password_b64[(v >> 12) & 63];
		out[o++] = password_b64[(v >> 6) & 63];
	}
	return o;
}

static int
password_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode n characters of unpadded standard base64 into out (outcap bytes).
 * Canonical only: no padding, no stray characters, zero unused trailing bits.
 * FA_OK and *outlen, or FA_ERR.
 */
static int
password_b64_decode(const char *in, size_t n, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0, v;

	if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > outcap)
		return FA_ERR;
	for (i = 0; i < n; i++) {
		if ((v = password_b64_value(in[i])) < 0)
			return FA_ERR;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return FA_ERR;
	*outlen = o;
	return FA_OK;
}

/* A cursor over the string being parsed; no NUL needed. */
struct password_cur {
	const char	*s;
	size_t		 left;
};

static int
password_lit(struct password_cur *c, const char *lit)
{
	size_t n = strlen(lit);

	if (c->left < n || memcmp(c->s, lit, n) != 0)
		return 0;
	c->s += n;
	c->left -= n;
	return 1;
}

/*
 * A decimal without sign, spaces or leading zeros, in [lo, hi]. 1 and *v, or 0.
 * Ten digits at most, so the accumulator never overflows.
 */
static int
password_num(struct password_cur *c, uint32_t lo, uint32_t hi, uint32_t *v)
{
	uint64_t acc = 0;
	size_t i;

	for (i = 0; i < c->left && i < 11 && c->s[i] >= '0' && c->s[i] <= '9'; i++)
		acc = acc * 10 + (uint64_t)(c->s[i] - '0');
	if (i == 0 || i > 10 || (c->s[0] == '0'))
		return 0;
	if (acc < lo || acc > hi)
		return 0;
	*v = (uint32_t)acc;
	c->s += i;
	c->left -= i;
	return 1;
}

/* Length of the field up to the next '$' or the end. */
static size_t
password_field(const struct password_cur *c)
{
	const char *d = memchr(c->s, '$', c->left);

	return d != NULL ? (size_t)(d - c->s) : c->left;
}

static const char *
password_phc_why(const char *s, size_t n, struct password_phc *out)
{
	struct password_cur c = { s, n };
	size_t len;

	memset(out, 0, sizeof *out);
	if (n >= PASSWORD_PHC_MAX)
		return "too long";
	if (!password_lit(&c, "$argon2id$"))
		return "not an Argon2id PHC string";
	if (!password_lit(&c, "v="))
		return "no version";
	if (password_lit(&c, "19"))
		out->version = PASSWORD_V13;
	else if (password_lit(&c, "16"))
		out->version = PASSWORD_V10;
	else
		return "unknown version";
	if (!password_lit(&c, "$m=") ||
	    !password_num(&c, 1, PASSWORD_HARD_M_MAX, &out->m_kib))
		return "bad or absurd m";
	if (!password_lit(&c, ",t=") ||
	    !password_num(&c, 1, PASSWORD_HARD_T_MAX, &out->t))
		return "bad or absurd t";
	if (!password_lit(&c, ",p=") ||
	    !password_num(&c, 1, PASSWORD_HARD_P_MAX, &out->p))
		return "bad or absurd p";
	if (out->m_kib < 8 * out->p)
		return "m below 8 KiB per lane";
	if (!password_lit(&c, "$"))
		return "extra parameters";
	len = password_field(&c);
	if (password_b64_decode(c.s, len, out->salt, sizeof out->salt,
	    &out->saltlen) != FA_OK || out->saltlen < PASSWORD_SALT_MIN)
		return "bad salt";
	c.s += len;
	c.left -= len;
	if (!password_lit(&c, "$"))
		return "no hash";
	len = password_field(&c);
	if (len != c.left)
		return "trailing fields";
	if (password_b64_decode(c.s, len, out->hash, sizeof out->hash,
	    &out->hashlen) != FA_OK || out->hashlen < PASSWORD_HASH_MIN) {
		crypto_wipe(out->hash, sizeof out->hash);
		return "bad hash";
	}
	return NULL;
}

int
password_phc_parse(const char *s, size_t n, struct password_phc *out,
    char **cause)
{
	const char *why = password_phc_why(s, n, out);

	if (why == NULL)
		return FA_OK;
	crypto_wipe(out, sizeof *out);
	if (cause != NULL)
		*cause = xasprintf("PHC string: %s", why);
	return FA_ERR;
}

/*
 * Write the "$argon2id$v=..$m=..,t=..,p=..$" head of phc into head (96 bytes).
 * Its length, or 0 if phc is not something we would encode.
 */
static size_t
password_phc_head(const struct password_phc *phc, char head[96])
{
	int hl;

	if ((phc->version != PASSWORD_V13 && phc->version != PASSWORD_V10) ||
	    phc->saltlen < PASSWORD_SALT_MIN || phc->saltlen > PASSWORD_SALT_MAX ||
	    phc->hashlen < PASSWORD_HASH_MIN || phc->hashlen > PASSWORD_HASH_MAX)
		return 0;
	hl = snprintf(head, 96, "$argon2id$v=%u$m=%u,t=%u,p=%u$",
	    phc->version == PASSWORD_V13 ? 19u : 16u, phc->m_kib, phc->t, phc->p);
	if (hl < 0 || hl >= 96)
		return 0;
	return (size_t)hl;
}

int
password_phc_encode(const struct password_phc *phc, char *out, size_t outcap)
{
	char	head[96];
	size_t	hl, o;

	if ((hl = password_phc_head(phc, head)) == 0)
		return FA_ERR;
	/* head, salt, '$', hash and the NUL */
	if (hl + (phc->saltlen * 4 + 2) / 3 + 1 + (phc->hashlen * 4 + 2) / 3 + 1 >
	    outcap)
		return FA_ERR;
	memcpy(out, head, hl);
	o = hl;
	o += password_b64_encode(phc->salt, phc->saltlen, out + o);
	out[o++] = '$';
	o += password_b64_encode(phc->hash, phc->hashlen, out + o);
	out[o] = '\0';
	return FA_OK;
}

/* ---- hashing ------------------------------------------------------------ */

/*
 * Argon2id of pw under the salt and cost in phc into out (phc->hashlen bytes),
 * with memory from the thread's pool, which may grow to what pp asks for.
 * FA_OK or FA_ERR (no memory).
 */
static int
password_argon2(const struct password_params *pp, const struct password_phc *phc,
    const void *pw, size_t len, uint8_t *out)
{
	struct password_pool	*pool = password_pool_get();
	argon2_context		 ctx;
	int			 rc;

	pool->keep = password_mem_bytes(pp->m_kib, pp->p);
	memset(&ctx, 0, sizeof ctx);
	ctx.out = out;
	ctx.outlen = (uint32_t)phc->hashlen;
	/* libargon2 does not write pwd unless ARGON2_FLAG_CLEAR_PASSWORD is set. */
	ctx.pwd = (uint8_t *)(uintptr_t)pw;
	ctx.pwdlen = (uint32_t)len;
	ctx.salt = (uint8_t *)(uintptr_t)phc->salt;
	ctx.saltlen = (uint32_t)phc->saltlen;
	ctx.t_cost = phc->t;
	ctx.m_cost = phc->m_kib;
	ctx.lanes = phc->p;
	/* Lanes run on their own threads, as in every other implementation. */
	ctx.threads = phc->p;
	ctx.version = phc->version;
	ctx.allocate_cbk = password_alloc_cb;
	ctx.free_cbk = password_free_cb;
	ctx.flags = ARGON2_DEFAULT_FLAGS;
	pool->hashes++;
	rc = argon2_ctx(&ctx, Argon2_id);
	if (rc != ARGON2_OK) {
		log_err("password: argon2: %s", argon2_error_message(rc));
		crypto_wipe(out, phc->hashlen);
		return FA_ERR;
	}
	return FA_OK;
}

int
password_hash(const struct password_params *pp, const void *pw, size_t len,
    char *out, size_t outcap)
{
	struct password_phc	phc;
	int			rc = FA_ERR;

	memset(&phc, 0, sizeof phc);
	if (len > password_max_len(pp))
		return FA_LIMIT;
	if (password_params_why(pp) != NULL)
		return FA_ERR;
	phc.version = PASSWORD_V13;
	phc.m_kib = pp->m_kib;
	phc.t = pp->t;
	phc.p = pp->p;
	phc.saltlen = PASSWORD_SALTLEN;
	phc.hashlen = PASSWORD_HASHLEN;
	/* Checked before hashing so that a short buffer costs no hash. */
	if (password_phc_encode(&phc, out, outcap) != FA_OK)
		goto out;
	if (crypto_random(phc.salt, phc.saltlen) != FA_OK)
		goto out;
	if (password_argon2(pp, &phc, pw, len, phc.hash) != FA_OK)
		goto out;
	rc = password_phc_encode(&phc, out, outcap);
out:
	crypto_wipe(&phc, sizeof phc);
	return rc;
}

/*
 * Verify pw against the n-byte PHC string s. With dummy set, s is the dummy
 * and a parse failure cannot recurse. See password_verify for the results.
 */
static int
password_check(const struct password_params *pp, const char *s, size_t n,
    const void *pw, size_t len, int *needs_rehash, int dummy)
{
	struct password_phc	 phc;
	uint8_t			 digest[PASSWORD_HASH_MAX];
	const char		*why;
	int			 rc = FA_DENIED;

	if (needs_rehash != NULL)
		*needs_rehash = 0;
	if (len > password_max_len(pp))
		return FA_LIMIT;
	if (password_params_why(pp) != NULL)
		return FA_ERR;
	if ((why = password_phc_why(s, n, &phc)) == NULL &&
	    (phc.m_kib > password_ceil(pp->m_ceil_kib, PASSWORD_M_CEIL_DEFAULT) ||
	    phc.t > password_ceil(pp->t_ceil, PASSWORD_T_CEIL_DEFAULT) ||
	    phc.p > password_ceil(pp->p_ceil, PASSWORD_P_CEIL_DEFAULT)))
		why = "cost above the configured ceiling";
	if (why != NULL) {
		crypto_wipe(&phc, sizeof phc);
		if (dummy)
			return FA_ERR;
		log_warn("password: stored hash refused (%s); checking the dummy "
		    "instead", why);
		rc = password_verify_dummy(pp, pw, len);
		return rc == FA_OK ? FA_DENIED : rc;
	}
	if (password_argon2(pp, &phc, pw, len, digest) != FA_OK) {
		rc = FA_ERR;
		goto out;
	}
	if (!crypto_memeq(digest, phc.hash, phc.hashlen))
		goto out;
	rc = FA_OK;
	if (needs_rehash != NULL)
		*needs_rehash = phc.version != PASSWORD_V13 ||
		    phc.m_kib != pp->m_kib || phc.t != pp->t || phc.p != pp->p ||
		    phc.saltlen != PASSWORD_SALTLEN || phc.hashlen != PASSWORD_HASHLEN;
out:
	crypto_wipe(digest, sizeof digest);
	crypto_wipe(&phc, sizeof phc);
	return rc;
}

int
password_verify(const struct password_params *pp, const char *phc,
    const void *pw, size_t len, int *needs_rehash)
{
	return password_check(pp, phc, strnlen(phc, PASSWORD_PHC_MAX), pw, len,
	    needs_rehash, 0);
}

/*
 * Copy the dummy for pp's cost into phc (PASSWORD_PHC_MAX bytes), making it
 * first if needed. Its digest is random rather than the hash of anything:
 * no password matches it but by a 2^-256 chance, which the caller rules out
 * anyway, and making it costs no Argon2 run. FA_OK or FA_ERR (no randomness).
 */
static int
password_dummy_get(const struct password_params *pp, char *phc)
{
	struct password_phc	d;
	int			rc = FA_OK;

	pthread_mutex_lock(&password_dummy_lock);
	if (!password_dummy.made || password_dummy.m_kib != pp->m_kib ||
	    password_dummy.t != pp->t || password_dummy.p != pp->p) {
		memset(&d, 0, sizeof d);
		d.version = PASSWORD_V13;
		d.m_kib = pp->m_kib;
		d.t = pp->t;
		d.p = pp->p;
		d.saltlen = PASSWORD_SALTLEN;
		d.hashlen = PASSWORD_HASHLEN;
		if (crypto_random(d.salt, d.saltlen) != FA_OK ||
		    crypto_random(d.hash, d.hashlen) != FA_OK ||
		    password_phc_encode(&d, password_dummy.phc,
		    sizeof password_dummy.phc) != FA_OK) {
			password_dummy.made = 0;
			rc = FA_ERR;
			goto out;
		}
		password_dummy.m_kib = pp->m_kib;
		password_dummy.t = pp->t;
		password_dummy.p = pp->p;
		password_dummy.made = 1;
	}
	memcpy(phc, password_dummy.phc, PASSWORD_PHC_MAX);
out:
	pthread_mutex_unlock(&password_dummy_lock);
	return rc;
}

int
password_verify_dummy(const struct password_params *pp, const void *pw,
    size_t len)
{
	char	phc[PASSWORD_PHC_MAX];
	int	rc;

	if (len > password_max_len(pp))
		return FA_LIMIT;
	if (password_params_why(pp) != NULL ||
	    password_dummy_get(pp, phc) != FA_OK)
		return FA_ERR;
	/* The same path as a real verify: parse, hash, compare. */
	rc = password_check(pp, phc, strlen(phc), pw, len, NULL, 1);
	return rc == FA_OK ? FA_DENIED : rc;
}
