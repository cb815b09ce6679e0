/*
 * shm.c -- the per-instance shared memory segment: creation by whichever
 * process comes first, attachment by the rest, replacement of a segment of
 * another layout, and the few primitives the regions share (keyed hash, owner
 * words that survive their owner's death, striped counters).
 *
 * Layout, all offsets from the segment base (each process maps it at its own
 * address, so nothing in it is a pointer):
 *
 *	0	header (4 KiB): state word, magic, version, sizes, region
 *		offsets, random hash key, cache generation, Argon2 admission
 *		slots (admission.c), revocation mirror state (mirror.c)
 *	4 KiB	rate limiter region (ratelimit.c)
 *	...	cache region (cache.c), page aligned
 *	...	metrics slots (metrics.c), page aligned
 *	...	anomaly detection table (anomaly.c), page aligned
 *
 * The first 32 bytes of the header -- state, magic, version, header size,
 * total size -- are the same in every layout version, so any version can
 * recognise another and refuse it. The state word moves only by CAS:
 *
 *	0 (zero-filled) -> INIT(me)             whoever wins initialises
 *	INIT(dead)      -> INIT(me)             initialiser died: start again
 *	INIT(me)        -> READY(me)            published, release order
 *	READY(mismatch), INIT(stuck > 2 s),
 *	DOOMED(dead)    -> DOOMED(me)           then unlink the name
 *
 * and only the process holding DOOMED on the inode that the name designates
 * may unlink the name, after checking that it still does: so a name is never
 * unlinked from under a segment another process has just created. Processes
 * still attached to a replaced segment keep a consistent view of it and see
 * shm_is_current() == 0. Anyone may grow the file (posix_fallocate never
 * shrinks it, and reports a full /dev/shm instead of a SIGBUS later), so a
 * creator killed between shm_open and sizing leaves nothing to wait for. A
 * last check that the name still designates our inode catches every race
 * with a concurrent replacement; attaching retries until a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "shm/admission.h"
#include "shm/anomaly.h"
#include "shm/metrics.h"
#include "shm/mirror.h"
#include "shm/shm.h"

#define SHM_MAGIC		0x314d485348545541ULL	/* "AUTHSHM1" little-endian */
#define SHM_HDR_SIZE		4096
#define SHM_ALIGN		4096		/* regions start on a page */
#define SHM_INIT_WAIT_US	(2000 * 1000)	/* a live initialiser gets this long */
#define SHM_DEADLINE_US		(10000 * 1000)	/* attaching gives up after this */
#define SHM_POLL_US		1000

/* Owner word tags for the state word. */
enum {
	SHM_PHASE_INIT = 1,
	SHM_PHASE_READY = 2,
	SHM_PHASE_DOOMED = 3
};

#define SHM_OWNER_PID(w)	((pid_t)(((w) >> 40) & 0x3fffff))
#define SHM_OWNER_MS(w)		((w) & 0xffffffffffULL)

/* Results of one attempt at attaching, besides FA_OK and FA_ERR. */
#define SHM_AGAIN	1

struct shm_header {
	/* Preamble: identical in every layout version. */
	_Atomic uint64_t state;		/* owner word, see the lifecycle above */
	uint64_t	 magic;		/* SHM_MAGIC */
	uint32_t	 version;	/* layout version */
	uint32_t	 header_size;	/* SHM_HDR_SIZE */
	uint64_t	 total_size;	/* bytes of the segment */
	/* Layout version 1. */
	struct shm_params params;	/* as requested, before rounding */
	int32_t		 creator_pid;	/* the process that initialised it */
	uint64_t	 ratelimit_off;	/* bytes from the base */
	uint64_t	 ratelimit_size;
	uint64_t	 cache_off;
	uint64_t	 cache_size;
	uint64_t	 segment_id;	/* random */
	uint64_t	 created;	/* shm_now() at initialisation, us */
	uint8_t		 hashkey[SHM_HASHKEY_LEN];	/* random, never leaves the host */
	/* Read by every cache lookup, written by a flush: its own line. */
	_Atomic uint64_t generation __attribute__((aligned(64)));
	/* Layout version 2: host-wide Argon2 admission (admission.c). */
	struct admission_region admission __attribute__((aligned(64)));
	/* Layout version 3: the revocation mirror's leader and trust (mirror.c). */
	struct mirror_region mirror __attribute__((aligned(64)));
	/* Layout version 4: metrics slots and anomaly table (params too). */
	uint64_t	 metrics_off;
	uint64_t	 metrics_size;
	uint64_t	 anomaly_off;
	uint64_t	 anomaly_size;
	/*
	 * Layout version 5: the limiter and cache regions keep a block of
	 * counters per CPU beside their stripes (shm_count).
	 */
	/* Layout version 6: the tables' hash function (enum shm_hashalg). */
	uint32_t	 hashalg;
};
_Static_assert(sizeof(struct shm_header) <= SHM_HDR_SIZE, "header too big");

struct shm_layout {
	uint64_t	ratelimit_off, ratelimit_size;
	uint64_t	cache_off, cache_size;
	uint64_t	metrics_off, metrics_size;
	uint64_t	anomaly_off, anomaly_size;
	uint64_t	total;
};

struct shm {
	char			*name;		/* "/fastauth.<instance>" */
	uint8_t			*base;		/* mapping in this process */
	size_t			 size;
	struct shm_header	*hdr;
	struct ratelimit	*ratelimit;
	struct cache		*cache;
	struct metrics		*metrics;
	struct anomaly		*anomaly;
};

void		(*shm_test_hook)(enum shm_test_point);
uint32_t	 shm_test_version;
unsigned	 shm_test_hashalg;

__thread unsigned	 shm_stripe_cached;
static pid_t		 shm_pid;	/* this process; refreshed after fork */
static long		 shm_clk_tck;
static pthread_once_t	 shm_once = PTHREAD_ONCE_INIT;

static void
shm_atfork_child(void)
{
	shm_pid = getpid();
	shm_stripe_cached = 0;
}

static void
shm_init_once(void)
{
	shm_pid = getpid();
	if ((shm_clk_tck = sysconf(_SC_CLK_TCK)) <= 0)
		shm_clk_tck = 100;
	pthread_atfork(NULL, NULL, shm_atfork_child);
}

static void
shm_hook(enum shm_test_point point)
{
	if (shm_test_hook != NULL)
		shm_test_hook(point);
}

static uint32_t
shm_version(void)
{
	return shm_test_version != 0 ? shm_test_version : SHM_VERSION;
}

uint64_t
shm_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* CLOCK_BOOTTIME in ms: the base of /proc/<pid>/stat starttime. */
static uint64_t
shm_boot_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned
shm_stripe_pick(void)
{
	unsigned	s = (unsigned)gettid() % SHM_STRIPES;

	shm_stripe_cached = s + 1;
	return s;
}

/* --- owner words ---------------------------------------------------------- */

uint64_t
shm_owner_make(unsigned tag)
{
	pthread_once(&shm_once, shm_init_once);
	return ((uint64_t)(tag & 3) << 62) |
	    ((uint64_t)(shm_pid & 0x3fffff) << 40) |
	    (shm_boot_ms() & 0xffffffffffULL);
}

uint64_t
shm_owner_age_ms(uint64_t w)
{
	uint64_t	now = shm_boot_ms() & 0xffffffffffULL, then = SHM_OWNER_MS(w);

	return now > then ? now - then : 0;
}

int
shm_owner_dead(uint64_t w)
{
	pid_t		 pid = SHM_OWNER_PID(w);
	char		 path[64], buf[1024], *p, state;
	unsigned long long ticks;
	uint64_t	 start_ms;
	ssize_t		 n;
	int		 fd, i;

	pthread_once(&shm_once, shm_init_once);
	if (pid <= 0)
		return 1;
	if (pid == shm_pid)
		return 0;
	if (kill(pid, 0) == -1 && errno == ESRCH)
		return 1;
	/* It exists: a zombie, or the pid reused by a younger process? */
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ..." -- comm may hold spaces and parentheses. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return 0;
	p += 2;
	state = *p;
	if (state == 'Z' || state == 'X' || state == 'x')
		return 1;
	/* Field 3 is the state; starttime is field 22. */
	for (i = 3; i < 22; i++) {
		if ((p = strchr(p, ' ')) == NULL)
			return 0;
		p++;
	}
	if (sscanf(p, "%llu", &ticks) != 1)
		return 0;
	start_ms = (uint64_t)ticks * 1000 / (uint64_t)shm_clk_tck;
	/*
	 * starttime is rounded down to a clock tick, so the process that made
	 * the claim never looks younger than it: started after the claim
	 * means the pid was reused.
	 */
	return (start_ms & 0xffffffffffULL) > SHM_OWNER_MS(w);
}

/*
 * --- SipHash-1-3 -----------------------------------------------------------
 *
 * One compression and three finalisation rounds: the variant Rust's and
 * Python's hash tables use against flooding. It keeps the property we need --
 * without the segment's key, nobody can predict or aim hashes -- at half the
 * cost of SipHash-2-4, which was a third of a limiter check (bench_shm).
 */

#define SHM_ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SHM_SIPROUND do {						\
	v0 += v1; v1 = SHM_ROTL(v1, 13); v1 ^= v0; v0 = SHM_ROTL(v0, 32); \
	v2 += v3; v3 = SHM_ROTL(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = SHM_ROTL(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = SHM_ROTL(v1, 17); v1 ^= v2; v2 = SHM_ROTL(v2, 32); \
} while (0)

static inline uint64_t
shm_le64(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint64_t
shm_le32(const uint8_t *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

/*
 * The last left (0..8; SipHash asks for at most 7) bytes of a message of n,
 * little-endian, zero above: whole-word loads that stay within the message
 * (the 8 bytes ending at its end when there are 8, two 4-byte loads that
 * overlap, or three bytes that may repeat), not one load, shift and or per
 * byte behind a jump table.
 */
static inline uint64_t
shm_tail(const uint8_t *p, size_t left, size_t n)
{
	if (left == 0)
		return 0;
	if (n >= 8)
		return shm_le64(p + left - 8) >> (64 - 8 * left);
	if (left >= 4)
		return shm_le32(p) | shm_le32(p + left - 4) << (8 * (left - 4));
	return (uint64_t)p[0] | (uint64_t)p[left / 2] << (8 * (left / 2)) |
	    (uint64_t)p[left - 1] << (8 * (left - 1));
}

/* The SipHash state after the domain block. */
static void
shm_sip_prepare(uint64_t v[4], const uint8_t key[SHM_HASHKEY_LEN],
    uint64_t domain)
{
	uint64_t	 k0 = shm_le64(key), k1 = shm_le64(key + 8);
	uint64_t	 v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t	 v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t	 v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t	 v3 = k1 ^ 0x7465646279746573ULL;

	v3 ^= domain;
	SHM_SIPROUND;
	v0 ^= domain;
	v[0] = v0;
	v[1] = v1;
	v[2] = v2;
	v[3] = v3;
}

static uint64_t
shm_sip(const uint64_t v[4], const uint8_t *p, size_t n)
{
	const uint8_t	*end = p + (n & ~(size_t)7);
	uint64_t	 v0 = v[0], v1 = v[1], v2 = v[2], v3 = v[3];
	uint64_t	 m, b;

	for (; p != end; p += 8) {
		m = shm_le64(p);
		v3 ^= m;
		SHM_SIPROUND;
		v0 ^= m;
	}
	/* The length counts the domain block too: one message, two calls. */
	b = (uint64_t)(n + 8) << 56 | shm_tail(p, n & 7, n);
	v3 ^= b;
	SHM_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SHM_SIPROUND;
	SHM_SIPROUND;
	SHM_SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t
shm_hash(const uint8_t key[SHM_HASHKEY_LEN], uint64_t domain, const void *data,
    size_t n)
{
	uint64_t	v[4];

	shm_sip_prepare(v, key, domain);
	return shm_sip(v, data, n);
}

/*
 * --- AES4 ------------------------------------------------------------------
 *
 * Where the CPU has AES instructions (x86-64 AES-NI): the key is cut into
 * 16-byte blocks, the last one zero-padded (an empty key is one zero block),
 * and chained as in CBC-MAC, each block going through four AES rounds under
 * four secret round keys:
 *
 *	x = S ^ (n * L)		S, L secret per domain; n the key's length
 *	x = R4(x ^ block)	for each block; R4 = four aesenc rounds
 *	hash = low half ^ high half of x
 *
 * This is the structure of Pelican-MAC (Daemen and Rijmen, 2005), which
 * chains blocks through four unkeyed AES rounds and rests on the proven
 * bound on the expected probability of any four-round AES differential
 * (below 2^-110): without the secret start, no chosen difference between two
 * keys can be made to cancel. Here the rounds are keyed too, and
 * Pelican's final full encryption, which keeps its sent tags from revealing
 * the state, is left out: our hashes never leave the process, and what a
 * client can observe -- whether its keys evict each other from a bucket --
 * is far less than a tag. The length enters the start through a secret
 * multiplier (each half of n * L is n times a secret odd number), so that
 * keys of different lengths start at differences nobody knows; entering
 * plainly, a 17-byte key and a 32-byte key could be built to meet.
 *
 * All keys are derived from the segment's key by SipHash-1-3 in their own
 * domain. A 16-byte key costs four rounds (about 16 cycles of latency)
 * against six SipRounds; the hash was a third of a limiter check.
 */
#define SHM_AES_KDF	0x4145533400000000ULL	/* "AES4": the keys' derivation */

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define SHM_HAVE_AES4	1

static int
shm_cpu_aes(void)
{
	unsigned	a, b, c, d;

	/* CPUID.1:ECX.AES[bit 25], and SSE2 (bit 26 of EDX) for the rest. */
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & (1U << 25)) != 0 && (d & (1U << 26)) != 0;
}

#define SHM_AES_TARGET	__attribute__((target("aes,sse2")))
#define SHM_LOAD128(p)	_mm_loadu_si128((const __m128i *)(const void *)(p))

SHM_AES_TARGET
static inline uint64_t
shm_aes4(const struct shm_hashstate *s, const uint8_t *p, size_t n)
{
	const __m128i	 k0 = SHM_LOAD128(&s->rk[0]), k1 = SHM_LOAD128(&s->rk[2]);
	const __m128i	 k2 = SHM_LOAD128(&s->rk[4]), k3 = SHM_LOAD128(&s->rk[6]);
	__m128i		 x, m;
	size_t		 left = n, done = 0;
	uint64_t	 lo, hi;

	x = _mm_set_epi64x((long long)(s->v[1] ^ n * s->v[3]),
	    (long long)(s->v[0] ^ n * s->v[2]));
	do {
		if (left >= 16) {
			m = SHM_LOAD128(p);
			p += 16;
			left -= 16;
			done += 16;
		} else {
			/* Word loads within the key, as shm_tail. */
			if (left > 8) {
				lo = shm_le64(p);
				hi = shm_tail(p + 8, left - 8, left);
			} else {
				lo = shm_tail(p, left, done + left);
				hi = 0;
			}
			m = _mm_set_epi64x((long long)hi, (long long)lo);
			left = 0;
		}
		x = _mm_xor_si128(x, m);
		x = _mm_aesenc_si128(x, k0);
		x = _mm_aesenc_si128(x, k1);
		x = _mm_aesenc_si128(x, k2);
		x = _mm_aesenc_si128(x, k3);
	} while (left != 0);
	return (uint64_t)_mm_cvtsi128_si64(x) ^
	    (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(x, x));
}
#else
#define SHM_AES_TARGET
#endif

unsigned
shm_hash_best(void)
{
	if (shm_test_hashalg != 0)
		return shm_test_hashalg;
#ifdef SHM_HAVE_AES4
	if (shm_cpu_aes())
		return SHM_HASH_AES4;
#endif
	return SHM_HASH_SIPHASH;
}

int
shm_hash_supported(unsigned alg)
{
	if (shm_test_hashalg != 0)
		return alg == shm_test_hashalg;
	if (alg == SHM_HASH_SIPHASH)
		return 1;
#ifdef SHM_HAVE_AES4
	if (alg == SHM_HASH_AES4)
		return shm_cpu_aes();
#endif
	return 0;
}

const char *
shm_hash_name(unsigned alg)
{
	switch (alg) {
	case SHM_HASH_SIPHASH:
		return "siphash-1-3";
	case SHM_HASH_AES4:
		return "aes4";
	}
	return "unknown";
}

void
shm_hash_prepare(struct shm_hashstate *s, unsigned alg,
    const uint8_t key[SHM_HASHKEY_LEN], uint64_t domain)
{
	uint8_t		in[9];
	uint64_t	w[12];
	unsigned	i;

	memset(s, 0, sizeof *s);
	s->alg = alg;
	if (alg != SHM_HASH_AES4) {
		shm_sip_prepare(s->v, key, domain);
		return;
	}
	/* Twelve words for (domain, i), little-endian, under the KDF domain. */
	for (i = 0; i < 8; i++)
		in[i] = (uint8_t)(domain >> (8 * i));
	for (i = 0; i < 12; i++) {
		in[8] = (uint8_t)i;
		w[i] = shm_hash(key, SHM_AES_KDF, in, sizeof in);
	}
	s->v[0] = w[0];
	s->v[1] = w[1];
	s->v[2] = w[2] | 1;	/* odd: n -> n * L is one-to-one */
	s->v[3] = w[3] | 1;
	memcpy(s->rk, w + 4, sizeof s->rk);
}

SHM_AES_TARGET
uint64_t
shm_hash_prepared(const struct shm_hashstate *s, const void *data, size_t n)
{
#ifdef SHM_HAVE_AES4
	if (s->alg == SHM_HASH_AES4)
		return shm_aes4(s, data, n);
#endif
	return shm_sip(s->v, data, n);
}

/* --- the segment ---------------------------------------------------------- */

void
shm_params_default(struct shm_params *p)
{
	memset(p, 0, sizeof *p);
	p->ratelimit_entries = SHM_DEFAULT_RATELIMIT_ENTRIES;
	p->cache_entries = SHM_DEFAULT_CACHE_ENTRIES;
	p->cache_value_max = SHM_DEFAULT_CACHE_VALUE_MAX;
	p->metrics_slots = SHM_DEFAULT_METRICS_SLOTS;
	p->anomaly_entries = SHM_DEFAULT_ANOMALY_ENTRIES;
}

/* "/fastauth.<instance>" into *name (caller frees). FA_OK or FA_ERR and *cause. */
static int
shm_name(const char *instance, char **name, char **cause)
{
	size_t	len = instance != NULL ? strlen(instance) : 0, i;

	if (len == 0 || len > SHM_INSTANCE_MAX) {
		*cause = xasprintf("instance name must be 1 to %d characters",
		    SHM_INSTANCE_MAX);
		return FA_ERR;
	}
	for (i = 0; i < len; i++) {
		char	c = instance[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
			*cause = xasprintf("instance name \"%s\": only letters, "
			    "digits, '-', '_' and '.' are allowed", instance);
			return FA_ERR;
		}
	}
	*name = xasprintf("/fastauth.%s", instance);
	return FA_OK;
}

static uint64_t
shm_round(uint64_t n, uint64_t to)
{
	return (n + to - 1) / to * to;
}

static int
shm_layout(const struct shm_params *p, struct shm_layout *l, char **cause)
{
	if (p == NULL) {
		*cause = xstrdup("no shared memory parameters");
		return FA_ERR;
	}
	if (ratelimit_region_entries(p->ratelimit_entries) == 0) {
		*cause = xasprintf("ratelimit entries %u out of range (8 to %u)",
		    p->ratelimit_entries, 1U << 26);
		return FA_ERR;
	}
	if (cache_region_entries(p->cache_entries) == 0) {
		*cause = xasprintf("cache entries %u out of range (8 to %u)",
		    p->cache_entries, 1U << 24);
		return FA_ERR;
	}
	if (p->cache_value_max == 0 || p->cache_value_max > CACHE_VALUE_LIMIT) {
		*cause = xasprintf("cache value size %u out of range (1 to %u)",
		    p->cache_value_max, CACHE_VALUE_LIMIT);
		return FA_ERR;
	}
	if (metrics_region_size(p->metrics_slots) == 0) {
		*cause = xasprintf("metrics slots %u out of range (1 to %u)",
		    p->metrics_slots, METRICS_SLOTS_MAX);
		return FA_ERR;
	}
	if (anomaly_region_entries(p->anomaly_entries) == 0) {
		*cause = xasprintf("anomaly entries %u out of range (16 to %u)",
		    p->anomaly_entries, 1U << 20);
		return FA_ERR;
	}
	l->ratelimit_off = SHM_HDR_SIZE;
	l->ratelimit_size = shm_round(ratelimit_region_size(p->ratelimit_entries),
	    SHM_ALIGN);
	l->cache_off = l->ratelimit_off + l->ratelimit_size;
	l->cache_size = shm_round(cache_region_size(p->cache_entries,
	    p->cache_value_max), SHM_ALIGN);
	l->metrics_off = l->cache_off + l->cache_size;
	l->metrics_size = shm_round(metrics_region_size(p->metrics_slots), SHM_ALIGN);
	l->anomaly_off = l->metrics_off + l->metrics_size;
	l->anomaly_size = shm_round(anomaly_region_size(p->anomaly_entries),
	    SHM_ALIGN);
	l->total = l->anomaly_off + l->anomaly_size;
	return FA_OK;
}

/* Does a READY header describe exactly the segment we would have made? */
static int
shm_header_matches(const struct shm_header *h, const struct shm_params *p,
    const struct shm_layout *l)
{
	if (h->magic != SHM_MAGIC || h->version != shm_version() ||
	    h->header_size != SHM_HDR_SIZE || h->total_size != l->total)
		return 0;
	/*
	 * Same version: the rest of the header is ours to read. A hash this
	 * process cannot compute (a segment made on another CPU type, which a
	 * host does not have) is another layout too.
	 */
	return shm_hash_supported(h->hashalg) &&
	    h->params.ratelimit_entries == p->ratelimit_entries &&
	    h->params.cache_entries == p->cache_entries &&
	    h->params.cache_value_max == p->cache_value_max &&
	    h->params.metrics_slots == p->metrics_slots &&
	    h->params.anomaly_entries == p->anomaly_entries &&
	    h->metrics_off == l->metrics_off && h->metrics_size == l->metrics_size &&
	    h->anomaly_off == l->anomaly_off && h->anomaly_size == l->anomaly_size &&
	    h->ratelimit_off == l->ratelimit_off &&
	    h->ratelimit_size == l->ratelimit_size &&
	    h->cache_off == l->cache_off && h->cache_size == l->cache_size;
}

/*
 * Does name still designate the inode st describes? 1 yes, 0 no (unlinked or
 * replaced).
 */
static int
shm_name_is(const char *name, const struct stat *st)
{
	struct stat	now;
	int		fd, same;

	if ((fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)) == -1)
		return 0;
	same = fstat(fd, &now) == 0 && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino;
	close(fd);
	return same;
}

/*
 * Move the state word from expect to DOOMED(me) and, if that worked, unlink
 * the name if it still designates this inode. Only the holder of DOOMED on
 * the inode the name designates unlinks, so no one else can have rebound the
 * name between the check and the unlink.
 */
static void
shm_doom(const char *name, struct shm_header *h, uint64_t expect,
    const struct stat *st)
{
	if (!atomic_compare_exchange_strong(&h->state, &expect,
	    shm_owner_make(SHM_PHASE_DOOMED)))
		return;
	shm_hook(SHM_TEST_DOOM);
	if (shm_name_is(name, st))
		shm_unlink(name);
}

/*
 * Initialise a segment whose state word we hold as INIT(me), then publish
 * it. FA_OK published, SHM_AGAIN someone took INIT from us (we were too
 * slow), FA_ERR and *cause.
 */
static int
shm_initialise(uint8_t *base, const struct shm_params *p,
    const struct shm_layout *l, uint64_t me, char **cause)
{
	struct shm_header	*h = (struct shm_header *)base;
	uint64_t		 expect = me;

	/* A dead initialiser may have left anything but the state word. */
	memset(base + sizeof h->state, 0, l->total - sizeof h->state);
	h->magic = SHM_MAGIC;
	h->version = shm_version();
	h->header_size = SHM_HDR_SIZE;
	h->total_size = l->total;
	h->params = *p;
	h->creator_pid = (int32_t)getpid();
	h->ratelimit_off = l->ratelimit_off;
	h->ratelimit_size = l->ratelimit_size;
	h->cache_off = l->cache_off;
	h->cache_size = l->cache_size;
	h->metrics_off = l->metrics_off;
	h->metrics_size = l->metrics_size;
	h->anomaly_off = l->anomaly_off;
	h->anomaly_size = l->anomaly_size;
	h->created = shm_now();
	h->hashalg = shm_hash_best();
	if (crypto_random(h->hashkey, sizeof h->hashkey) != FA_OK ||
	    crypto_random(&h->segment_id, sizeof h->segment_id) != FA_OK) {
		*cause = xasprintf("getrandom: %s", strerror(errno));
		/* Let another process initialise it rather than wait for us. */
		atomic_compare_exchange_strong(&h->state, &expect, 0);
		return FA_ERR;
	}
	ratelimit_region_init(base + l->ratelimit_off, p->ratelimit_entries);
	shm_hook(SHM_TEST_INIT);
	cache_region_init(base + l->cache_off, p->cache_entries,
	    p->cache_value_max);
	atomic_store_explicit(&h->generation, 1, memory_order_relaxed);
	admission_region_init(&h->admission);
	mirror_region_init(&h->mirror);
	metrics_region_init(base + l->metrics_off, p->metrics_slots);
	anomaly_region_init(base + l->anomaly_off, p->anomaly_entries);
	if (!atomic_compare_exchange_strong_explicit(&h->state, &expect,
	    shm_owner_make(SHM_PHASE_READY), memory_order_release,
	    memory_order_relaxed))
		return SHM_AGAIN;
	return FA_OK;
}

static struct shm *
shm_new(const char *name, uint8_t *base, size_t size)
{
	struct shm		*seg = xcalloc(1, sizeof *seg);
	struct shm_header	*h = (struct shm_header *)base;

	seg->name = xstrdup(name);
	seg->base = base;
	seg->size = size;
	seg->hdr = h;
	seg->ratelimit = ratelimit_view_new(base + h->ratelimit_off, h->hashalg,
	    h->hashkey);
	seg->cache = cache_view_new(base + h->cache_off, h->hashalg, h->hashkey,
	    &h->generation);
	seg->metrics = metrics_view_new(base + h->metrics_off);
	seg->anomaly = anomaly_view_new(base + h->anomaly_off, h->hashalg,
	    h->hashkey);
	return seg;
}

/*
 * One attempt at attaching. FA_OK and *out; SHM_AGAIN when the name moved
 * under us or we must wait for another process; FA_ERR and *cause.
 */
static int
shm_attach_once(const char *name, const struct shm_params *p,
    const struct shm_layout *l, struct shm **out, char **cause)
{
	struct shm_header	*h;
	struct stat		 st;
	uint8_t			*base = MAP_FAILED;
	uint64_t		 w, me, started = 0;
	int			 fd, rc = FA_ERR, err;

	if ((fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		*cause = xasprintf("shm_open %s: %s", name, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("fstat %s: %s", name, strerror(errno));
		goto out;
	}
	if ((uint64_t)st.st_size < l->total && st.st_size >= SHM_HDR_SIZE) {
		/* Smaller than ours: refuse a published one before growing it. */
		base = mmap(NULL, SHM_HDR_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			*cause = xasprintf("mmap %s: %s", name, strerror(errno));
			goto out;
		}
		h = (struct shm_header *)base;
		w = atomic_load_explicit(&h->state, memory_order_acquire);
		if (SHM_OWNER_TAG(w) == SHM_PHASE_READY)
			shm_doom(name, h, w, &st);
		if (SHM_OWNER_TAG(w) == SHM_PHASE_DOOMED && shm_owner_dead(w))
			shm_doom(name, h, w, &st);
		munmap(base, SHM_HDR_SIZE);
		base = MAP_FAILED;
		if (SHM_OWNER_TAG(w) == SHM_PHASE_READY ||
		    SHM_OWNER_TAG(w) == SHM_PHASE_DOOMED) {
			rc = SHM_AGAIN;
			goto out;
		}
	}
	if ((uint64_t)st.st_size < l->total) {
		/* Only ever grows the file: safe whoever else is sizing it. */
		do
			err = posix_fallocate(fd, 0, (off_t)l->total);
		while (err == EINTR);
		/*
		 * No fallocate (not tmpfs): ftruncate, which could shrink the
		 * file under a process sizing it larger at the same instant.
		 */
		if (err == EOPNOTSUPP || err == ENOSYS || err == EINVAL)
			err = ftruncate(fd, (off_t)l->total) == -1 ? errno : 0;
		if (err != 0) {
			*cause = xasprintf("sizing %s to %llu bytes: %s", name,
			    (unsigned long long)l->total, strerror(err));
			goto out;
		}
	}
	base = mmap(NULL, l->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		*cause = xasprintf("mmap %s: %s", name, strerror(errno));
		goto out;
	}
	h = (struct shm_header *)base;

	for (;;) {
		w = atomic_load_explicit(&h->state, memory_order_acquire);
		switch (SHM_OWNER_TAG(w)) {
		case SHM_PHASE_READY:
			if (!shm_header_matches(h, p, l)) {
				shm_doom(name, h, w, &st);
				rc = SHM_AGAIN;
				goto out;
			}
			if (!shm_name_is(name, &st)) {
				rc = SHM_AGAIN;
				goto out;
			}
			*out = shm_new(name, base, l->total);
			base = MAP_FAILED;
			rc = FA_OK;
			goto out;
		case SHM_PHASE_DOOMED:
			if (shm_owner_dead(w))
				shm_doom(name, h, w, &st);
			rc = SHM_AGAIN;
			goto out;
		default:
			/* 0: fresh. INIT, or garbage: owned by someone. */
			if (w != 0 && !shm_owner_dead(w)) {
				if (started == 0)
					started = shm_now();
				else if (shm_now() - started > SHM_INIT_WAIT_US) {
					/* Stuck (stopped?): replace it. */
					shm_doom(name, h, w, &st);
					rc = SHM_AGAIN;
					goto out;
				}
				usleep(SHM_POLL_US);
				continue;
			}
			me = shm_owner_make(SHM_PHASE_INIT);
			if (!atomic_compare_exchange_strong(&h->state, &w, me))
				continue;
			rc = shm_initialise(base, p, l, me, cause);
			if (rc != FA_OK)
				goto out;
			/* Published: loop once more to check the name. */
			break;
		}
	}

out:
	err = errno;
	if (base != MAP_FAILED)
		munmap(base, l->total);
	if (fd != -1)
		close(fd);
	errno = err;
	return rc;
}

int
shm_open_segment(const char *instance, const struct shm_params *p,
    struct shm **out, char **cause)
{
	struct shm_layout	 l;
	char			*name = NULL;
	uint64_t		 deadline;
	int			 rc = FA_ERR;

	*out = NULL;
	pthread_once(&shm_once, shm_init_once);
	if (shm_name(instance, &name, cause) != FA_OK ||
	    shm_layout(p, &l, cause) != FA_OK)
		goto out;
	deadline = shm_now() + SHM_DEADLINE_US;
	for (;;) {
		rc = shm_attach_once(name, p, &l, out, cause);
		if (rc != SHM_AGAIN)
			break;
		if (shm_now() > deadline) {
			*cause = xasprintf("%s: timed out attaching the shared "
			    "memory segment", name);
			rc = FA_ERR;
			break;
		}
		usleep(SHM_POLL_US);
	}
out:
	free(name);
	return rc;
}

int
shm_attach_existing(const char *instance, struct shm **out, char **cause)
{
	struct shm_header	*h;
	struct shm_layout	 l;
	struct stat		 st;
	uint8_t			*base = MAP_FAILED, *full;
	char			*name = NULL;
	uint64_t		 w;
	int			 fd = -1, rc = FA_ERR;

	*out = NULL;
	pthread_once(&shm_once, shm_init_once);
	if (shm_name(instance, &name, cause) != FA_OK)
		goto out;
	if ((fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)) == -1) {
		if (errno == ENOENT)
			rc = FA_NOTFOUND;
		else
			*cause = xasprintf("shm_open %s: %s", name,
			    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("fstat %s: %s", name, strerror(errno));
		goto out;
	}
	if (st.st_size < SHM_HDR_SIZE) {
		rc = FA_NOTFOUND;
		goto out;
	}
	base = mmap(NULL, SHM_HDR_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		*cause = xasprintf("mmap %s: %s", name, strerror(errno));
		goto out;
	}
	h = (struct shm_header *)base;
	w = atomic_load_explicit(&h->state, memory_order_acquire);
	if (SHM_OWNER_TAG(w) != SHM_PHASE_READY) {
		rc = FA_NOTFOUND;
		goto out;
	}
	if (h->magic != SHM_MAGIC || h->version != shm_version() ||
	    h->header_size != SHM_HDR_SIZE) {
		*cause = xasprintf("%s: layout version %u, this program reads "
		    "version %u", name, h->magic == SHM_MAGIC ? h->version : 0,
		    shm_version());
		goto out;
	}
	if (!shm_hash_supported(h->hashalg)) {
		*cause = xasprintf("%s: its tables are hashed with %s, which "
		    "this CPU cannot compute", name, shm_hash_name(h->hashalg));
		goto out;
	}
	/* Its own parameters must lay it out exactly as its header says. */
	if (shm_layout(&h->params, &l, cause) != FA_OK)
		goto out;
	if (!shm_header_matches(h, &h->params, &l) ||
	    (uint64_t)st.st_size < l.total) {
		*cause = xasprintf("%s: header and size do not agree", name);
		goto out;
	}
	full = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (full == MAP_FAILED) {
		*cause = xasprintf("mmap %s: %s", name, strerror(errno));
		goto out;
	}
	*out = shm_new(name, full, l.total);
	rc = FA_OK;
out:
	if (base != MAP_FAILED)
		munmap(base, SHM_HDR_SIZE);
	if (fd != -1)
		close(fd);
	free(name);
	return rc;
}

void
shm_close(struct shm *seg)
{
	if (seg == NULL)
		return;
	ratelimit_view_free(seg->ratelimit);
	cache_view_free(seg->cache);
	metrics_view_free(seg->metrics);
	anomaly_view_free(seg->anomaly);
	munmap(seg->base, seg->size);
	free(seg->name);
	free(seg);
}

int
shm_unlink_segment(const char *instance, char **cause)
{
	struct shm_header	*h;
	struct stat		 st;
	char			*name = NULL;
	void			*base;
	uint64_t		 w;
	int			 fd = -1, rc = FA_ERR;

	if (shm_name(instance, &name, cause) != FA_OK)
		goto out;
	if ((fd = shm_open(name, O_RDWR | O_CLOEXEC, 0)) == -1) {
		if (errno == ENOENT)
			rc = FA_OK;
		else
			*cause = xasprintf("shm_open %s: %s", name,
			    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("fstat %s: %s", name, strerror(errno));
		goto out;
	}
	if (st.st_size < SHM_HDR_SIZE) {
		/* Nothing published there: no state word to claim. */
		if (shm_name_is(name, &st))
			shm_unlink(name);
		rc = FA_OK;
		goto out;
	}
	base = mmap(NULL, SHM_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (base == MAP_FAILED) {
		*cause = xasprintf("mmap %s: %s", name, strerror(errno));
		goto out;
	}
	h = base;
	for (;;) {
		w = atomic_load(&h->state);
		/* Someone alive is removing it already. */
		if (SHM_OWNER_TAG(w) == SHM_PHASE_DOOMED && !shm_owner_dead(w))
			break;
		if (atomic_compare_exchange_strong(&h->state, &w,
		    shm_owner_make(SHM_PHASE_DOOMED))) {
			if (shm_name_is(name, &st))
				shm_unlink(name);
			break;
		}
	}
	munmap(base, SHM_HDR_SIZE);
	rc = FA_OK;
out:
	if (fd != -1)
		close(fd);
	free(name);
	return rc;
}

int
shm_is_current(struct shm *seg)
{
	return SHM_OWNER_TAG(atomic_load_explicit(&seg->hdr->state,
	    memory_order_relaxed)) == SHM_PHASE_READY;
}

struct ratelimit *
shm_ratelimit(struct shm *seg)
{
	return seg->ratelimit;
}

struct cache *
shm_cache(struct shm *seg)
{
	return seg->cache;
}

struct metrics *
shm_metrics(struct shm *seg)
{
	return seg->metrics;
}

struct anomaly *
shm_anomaly(struct shm *seg)
{
	return seg->anomaly;
}

void *
shm_region(struct shm *seg, enum shm_region which, size_t *size)
{
	switch (which) {
	case SHM_REGION_RATELIMIT:
		*size = seg->hdr->ratelimit_size;
		return seg->base + seg->hdr->ratelimit_off;
	case SHM_REGION_CACHE:
		*size = seg->hdr->cache_size;
		return seg->base + seg->hdr->cache_off;
	case SHM_REGION_METRICS:
		*size = seg->hdr->metrics_size;
		return seg->base + seg->hdr->metrics_off;
	case SHM_REGION_ANOMALY:
		*size = seg->hdr->anomaly_size;
		return seg->base + seg->hdr->anomaly_off;
	}
	*size = 0;
	return NULL;
}

struct admission_region *
shm_admission(struct shm *seg)
{
	return &seg->hdr->admission;
}

struct mirror_region *
shm_mirror(struct shm *seg)
{
	return &seg->hdr->mirror;
}

uint64_t
shm_generation(struct shm *seg)
{
	return atomic_load_explicit(&seg->hdr->generation, memory_order_acquire);
}

uint64_t
shm_generation_bump(struct shm *seg)
{
	return atomic_fetch_add(&seg->hdr->generation, 1) + 1;
}

void
shm_stats(struct shm *seg, uint64_t now, struct shm_stats *st)
{
	memset(st, 0, sizeof *st);
	st->segment_id = seg->hdr->segment_id;
	st->size = seg->size;
	st->version = seg->hdr->version;
	st->hashalg = seg->hdr->hashalg;
	st->creator_pid = seg->hdr->creator_pid;
	st->created = seg->hdr->created;
	st->generation = shm_generation(seg);
	st->current = shm_is_current(seg);
	ratelimit_stats(seg->ratelimit, now, &st->ratelimit);
	cache_stats(seg->cache, now, &st->cache);
}
