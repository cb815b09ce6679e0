/*
 * test_shm.c -- Check suite for the shared memory segment (shm.c), the rate
 * limiter (ratelimit.c) and the L1 cache (cache.c): creation and attachment
 * within a process, across fork() and by eight processes at once; refusal and
 * replacement of a segment of another version or size; recovery from a
 * creator that dies or stops half-way; GCRA arithmetic against a reference
 * model; eviction in full tables; cache TTL, CLOCK, invalidation, tickets,
 * and concurrent writers and readers in several processes that must never
 * see a torn value.
 *
 * Segments are named "tshm-<pid of main>-<pid>-<n>" and every one left
 * behind, even by a failed test, is unlinked at the end of main.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <wmmintrin.h>
#define TEST_AES4	1
#endif

#include "core/fastauth.h"
#include "shm/admission.h"
#include "shm/shm.h"
#include "shm/ratelimit.h"
#include "shm/cache.h"

#define T0		1000000000ULL	/* a synthetic "now", us */
#define SEC		1000000ULL

static pid_t	main_pid;
static char	inst[SHM_INSTANCE_MAX + 1];
static int	inst_n;

/* A fresh instance name for this test. */
static const char *
inst_new(void)
{
	snprintf(inst, sizeof inst, "tshm-%d-%d-%d", (int)main_pid,
	    (int)getpid(), ++inst_n);
	return inst;
}

static void
params_small(struct shm_params *p, uint32_t rl, uint32_t ce, uint32_t vmax)
{
	shm_params_default(p);	/* the regions these tests do not size */
	p->ratelimit_entries = rl;
	p->cache_entries = ce;
	p->cache_value_max = vmax;
}

static struct shm *
seg_open(const char *name, const struct shm_params *p)
{
	struct shm	*seg = NULL;
	char		*cause = NULL;
	int		 rc;

	rc = shm_open_segment(name, p, &seg, &cause);
	ck_assert_msg(rc == FA_OK, "shm_open_segment: %s", cause ? cause : "?");
	ck_assert_ptr_nonnull(seg);
	return seg;
}

static uint64_t
seg_id(struct shm *seg)
{
	struct shm_stats	st;

	shm_stats(seg, shm_now(), &st);
	return st.segment_id;
}

static void
teardown(void)
{
	char	*cause = NULL;

	if (inst[0] != '\0')
		shm_unlink_segment(inst, &cause);
	free(cause);
	inst[0] = '\0';
	shm_test_hook = NULL;
	shm_test_version = 0;
	shm_test_hashalg = 0;
}

static uint64_t
ms_since(uint64_t start)
{
	return (shm_now() - start) / 1000;
}

/* Children of a test report through their exit status only. */
static int
wait_ok(pid_t pid)
{
	int	status;

	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A pipe the children block on until the parent closes it: a start line. */
static void
barrier_wait(int fd)
{
	char	c;

	while (read(fd, &c, 1) == -1 && errno == EINTR)
		;
}

/* Die or stop half-way through initialising or replacing a segment. */
static void
hook_kill(enum shm_test_point point)
{
	if (point == SHM_TEST_INIT || point == SHM_TEST_DOOM)
		raise(SIGKILL);
}

static void
hook_stop(enum shm_test_point point)
{
	if (point == SHM_TEST_INIT)
		raise(SIGSTOP);
}

/* --- values that check themselves ---------------------------------------- */

static uint64_t
fnv64(const uint8_t *p, size_t n)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	while (n-- > 0)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

/* keyid | seq | len | payload | fnv64 of all before; len in [20, cap]. */
static size_t
val_make(uint8_t *buf, size_t cap, uint32_t keyid, uint32_t seq, unsigned rnd)
{
	uint32_t	len = 20 + rnd % (uint32_t)(cap - 19);
	uint64_t	sum;
	uint32_t	i;

	memcpy(buf, &keyid, 4);
	memcpy(buf + 4, &seq, 4);
	memcpy(buf + 8, &len, 4);
	for (i = 12; i < len - 8; i++)
		buf[i] = (uint8_t)(keyid * 31 + seq * 7 + i);
	sum = fnv64(buf, len - 8);
	memcpy(buf + len - 8, &sum, 8);
	return len;
}

static int
val_check(const uint8_t *buf, size_t len, uint32_t keyid)
{
	uint32_t	k, l;
	uint64_t	sum;

	if (len < 20)
		return 0;
	memcpy(&k, buf, 4);
	memcpy(&l, buf + 8, 4);
	memcpy(&sum, buf + len - 8, 8);
	return k == keyid && l == len && sum == fnv64(buf, len - 8);
}

/* --- segment ------------------------------------------------------------- */

START_TEST(test_hash_vectors)
{
	uint8_t		key[16], msg[64];
	unsigned	i;

	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)i;
	/*
	 * SipHash-1-3 of bytes 0..n-1 under key 0..15, the domain word being
	 * the first 8 bytes; values from a reference implementation that gives
	 * the published vector (0xabac0158050fc4dc) for the empty message.
	 */
	ck_assert(shm_hash(key, 0x0706050403020100ULL, msg + 8, 0) ==
	    0x369095118d299a8eULL);
	ck_assert(shm_hash(key, 0x0706050403020100ULL, msg + 8, 7) ==
	    0xd320d86d2a519956ULL);
	ck_assert(shm_hash(key, 0x0706050403020100ULL, msg + 8, 12) ==
	    0xc0dc2f46a6cce040ULL);
	ck_assert(shm_hash(key, 0x0706050403020100ULL, msg + 8, 56) ==
	    0xf17997ec4b4a6065ULL);
	/* The domain separates: same bytes, other domain, other hash. */
	ck_assert(shm_hash(key, 1, "abc", 3) != shm_hash(key, 2, "abc", 3));
}
END_TEST

/* SipHash-1-3 written plainly, one byte at a time: the reference. */
static uint64_t
siphash13_ref(const uint8_t key[16], const uint8_t *m, size_t n)
{
	uint64_t	k0 = 0, k1 = 0, v0, v1, v2, v3, b;
	size_t		i, j;

	for (i = 0; i < 8; i++) {
		k0 |= (uint64_t)key[i] << (8 * i);
		k1 |= (uint64_t)key[8 + i] << (8 * i);
	}
	v0 = k0 ^ 0x736f6d6570736575ULL;
	v1 = k1 ^ 0x646f72616e646f6dULL;
	v2 = k0 ^ 0x6c7967656e657261ULL;
	v3 = k1 ^ 0x7465646279746573ULL;
#define ROTL(x, c)	(((x) << (c)) | ((x) >> (64 - (c))))
#define ROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)
	for (i = 0; i + 8 <= n; i += 8) {
		for (b = 0, j = 0; j < 8; j++)
			b |= (uint64_t)m[i + j] << (8 * j);
		v3 ^= b;
		ROUND;
		v0 ^= b;
	}
	for (b = (uint64_t)n << 56, j = 0; i + j < n; j++)
		b |= (uint64_t)m[i + j] << (8 * j);
	v3 ^= b;
	ROUND;
	v0 ^= b;
	v2 ^= 0xff;
	ROUND;
	ROUND;
	ROUND;
#undef ROUND
#undef ROTL
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * Every length 0..72 at every alignment, against the plain reference: the
 * tail is read with overlapping word loads, whose edges are the lengths
 * around 1, 4 and 8.
 */
START_TEST(test_hash_lengths)
{
	uint8_t			key[16], buf[8 + 80], msg[8 + 72];
	struct shm_hashstate	st;
	uint64_t		domain = 0x4341000000000003ULL;
	unsigned		seed = 99, i, n, off;

	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)rand_r(&seed);
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand_r(&seed);
	for (i = 0; i < 8; i++)
		msg[i] = (uint8_t)(domain >> (8 * i));
	shm_hash_prepare(&st, SHM_HASH_SIPHASH, key, domain);
	for (n = 0; n <= 72; n++) {
		for (off = 0; off < 8; off++) {
			memcpy(msg + 8, buf + off, n);
			ck_assert_msg(shm_hash(key, domain, buf + off, n) ==
			    siphash13_ref(key, msg, 8 + n), "length %u at +%u",
			    n, off);
			ck_assert(shm_hash_prepared(&st, buf + off, n) ==
			    shm_hash(key, domain, buf + off, n));
		}
	}
}
END_TEST

#ifdef TEST_AES4
/*
 * AES4 written plainly: each block copied into a zeroed 16-byte buffer, the
 * rounds as shm.c's comment states them, from the keys the state holds.
 */
__attribute__((target("aes,sse2")))
static uint64_t
aes4_ref(const struct shm_hashstate *st, const uint8_t *m, size_t n)
{
	uint8_t		 blk[16];
	uint64_t	 x[2], out[2];
	__m128i		 v;
	size_t		 i = 0, take;
	int		 r;

	x[0] = st->v[0] ^ n * st->v[2];
	x[1] = st->v[1] ^ n * st->v[3];
	memcpy(&v, x, 16);
	do {
		take = n - i < 16 ? n - i : 16;
		memset(blk, 0, sizeof blk);
		if (take > 0)
			memcpy(blk, m + i, take);
		i += take;
		v = _mm_xor_si128(v, _mm_loadu_si128((const __m128i *)blk));
		for (r = 0; r < 4; r++)
			v = _mm_aesenc_si128(v, _mm_loadu_si128(
			    (const __m128i *)(const void *)&st->rk[2 * r]));
	} while (i < n);
	memcpy(out, &v, 16);
	return out[0] ^ out[1];
}

/* One aesenc is one AES round: FIPS-197 appendix B, round 1 to round 2. */
__attribute__((target("aes,sse2")))
static int
aes_round_fips197(void)
{
	static const uint8_t in[16] = { 0x19, 0x3d, 0xe3, 0xbe, 0xa0, 0xf4,
	    0xe2, 0x2b, 0x9a, 0xc6, 0x8d, 0x2a, 0xe9, 0xf8, 0x48, 0x08 };
	static const uint8_t rk[16] = { 0xa0, 0xfa, 0xfe, 0x17, 0x88, 0x54,
	    0x2c, 0xb1, 0x23, 0xa3, 0x39, 0x39, 0x2a, 0x6c, 0x76, 0x05 };
	static const uint8_t want[16] = { 0xa4, 0x9c, 0x7f, 0xf2, 0x68, 0x9f,
	    0x35, 0x2b, 0x6b, 0x5b, 0xea, 0x43, 0x02, 0x6a, 0x50, 0x49 };
	uint8_t		out[16];

	_mm_storeu_si128((__m128i *)out, _mm_aesenc_si128(
	    _mm_loadu_si128((const __m128i *)in),
	    _mm_loadu_si128((const __m128i *)rk)));
	return memcmp(out, want, 16) == 0;
}
#endif

/*
 * AES4, where this CPU has it: every length 0..72 at every alignment against
 * the plain version (the last block is read with word loads, whose edges are
 * the lengths around 8 and 16 in a block), and the keys derived per domain.
 */
START_TEST(test_hash_aes4)
{
#ifdef TEST_AES4
	uint8_t			key[16], buf[8 + 80];
	struct shm_hashstate	st, other;
	uint64_t		domain = 0x524c000000000002ULL;
	unsigned		seed = 7, i, n, off;

	if (!shm_hash_supported(SHM_HASH_AES4)) {
		ck_assert_uint_eq(shm_hash_best(), SHM_HASH_SIPHASH);
		return;
	}
	ck_assert_uint_eq(shm_hash_best(), SHM_HASH_AES4);
	ck_assert(aes_round_fips197());
	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)rand_r(&seed);
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand_r(&seed);
	shm_hash_prepare(&st, SHM_HASH_AES4, key, domain);
	ck_assert(st.v[2] & st.v[3] & 1);
	for (n = 0; n <= 72; n++)
		for (off = 0; off < 8; off++)
			ck_assert_msg(shm_hash_prepared(&st, buf + off, n) ==
			    aes4_ref(&st, buf + off, n), "length %u at +%u",
			    n, off);
	/* Another domain, another key: other start and round keys. */
	shm_hash_prepare(&other, SHM_HASH_AES4, key, domain + 1);
	ck_assert(memcmp(st.v, other.v, sizeof st.v) != 0);
	ck_assert(memcmp(st.rk, other.rk, sizeof st.rk) != 0);
	ck_assert(shm_hash_prepared(&st, "abc", 3) !=
	    shm_hash_prepared(&other, "abc", 3));
	key[0] ^= 1;
	shm_hash_prepare(&other, SHM_HASH_AES4, key, domain);
	ck_assert(shm_hash_prepared(&st, "abc", 3) !=
	    shm_hash_prepared(&other, "abc", 3));
#else
	ck_assert_uint_eq(shm_hash_best(), SHM_HASH_SIPHASH);
	ck_assert(!shm_hash_supported(SHM_HASH_AES4));
#endif
}
END_TEST

/*
 * What the length is for, in both hashes: keys that pad to the same blocks
 * ("k", "k\0", "k\0\0", ... and 16 bytes then 17 to 32 with zeros) all hash
 * apart, in bucket and fingerprint; and a plain run of client ids spreads
 * over 8192 buckets about as evenly as chance would (mean 8, and no bucket
 * over 30: a bound a uniform hash exceeds with odds of about 3 in 10^6).
 */
START_TEST(test_hash_spread)
{
	unsigned		 algs[2] = { SHM_HASH_SIPHASH, SHM_HASH_AES4 };
	uint8_t			 key[16], pad[40];
	struct shm_hashstate	 st;
	static uint16_t		 load[8192];
	uint64_t		 h[40];
	char			 id[32];
	unsigned		 a, i, j, max;

	for (i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 37 + 1);
	for (a = 0; a < 2; a++) {
		if (!shm_hash_supported(algs[a]))
			continue;
		shm_hash_prepare(&st, algs[a], key, 0x524c000000000000ULL);
		memset(pad, 0, sizeof pad);
		pad[0] = 'k';
		memset(pad + 1, 'x', 15);
		for (i = 0; i < 33; i++)
			h[i] = shm_hash_prepared(&st, pad, i);
		for (i = 0; i < 33; i++)
			for (j = i + 1; j < 33; j++)
				ck_assert_msg((h[i] & 0x1fff) != (h[j] & 0x1fff) ||
				    (h[i] >> 40) != (h[j] >> 40),
				    "%s: lengths %u and %u meet",
				    shm_hash_name(algs[a]), i, j);
		memset(load, 0, sizeof load);
		for (i = 0; i < 65536; i++) {
			snprintf(id, sizeof id, "client-%u", i);
			load[shm_hash_prepared(&st, id, strlen(id)) & 8191]++;
		}
		for (max = 0, i = 0; i < 8192; i++)
			max = load[i] > max ? load[i] : max;
		ck_assert_msg(max <= 30, "%s: a bucket got %u of 65536",
		    shm_hash_name(algs[a]), max);
	}
}
END_TEST

START_TEST(test_create_attach)
{
	struct shm_params	 p;
	struct shm		*a, *b;
	struct shm_stats	 st;
	char			 out[64];
	size_t			 outlen;
	uint64_t		 now = shm_now();

	shm_params_default(&p);
	params_small(&p, 1024, 256, 128);
	a = seg_open(inst_new(), &p);
	b = seg_open(inst, &p);
	ck_assert(seg_id(a) == seg_id(b));
	ck_assert_int_eq(shm_is_current(a), 1);
	ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT, "k", 1, "v1", 2,
	    10 * SEC, now, NULL), FA_OK);
	ck_assert_int_eq(cache_get(shm_cache(b), CACHE_CLIENT, "k", 1, now, out,
	    sizeof out, &outlen), FA_OK);
	ck_assert_uint_eq(outlen, 2);
	ck_assert(memcmp(out, "v1", 2) == 0);
	shm_stats(b, now, &st);
	ck_assert_uint_eq(st.version, SHM_VERSION);
	ck_assert_int_eq(st.creator_pid, getpid());
	ck_assert_uint_eq(st.ratelimit.entries, 1024);
	ck_assert_uint_eq(st.cache.entries, 256);
	ck_assert_uint_eq(st.cache.used, 1);
	ck_assert_uint_eq(st.cache.value_max, 128);
	ck_assert_int_eq(st.current, 1);
	shm_close(a);
	/* b still works after a detached. */
	ck_assert_int_eq(cache_get(shm_cache(b), CACHE_CLIENT, "k", 1, now, out,
	    sizeof out, &outlen), FA_OK);
	shm_close(b);
	shm_close(NULL);
}
END_TEST

START_TEST(test_fork_attach)
{
	struct shm_params	 p;
	struct shm		*a;
	char			 out[64];
	size_t			 outlen;
	uint64_t		 now = shm_now(), id;
	pid_t			 pid;

	params_small(&p, 1024, 256, 128);
	a = seg_open(inst_new(), &p);
	id = seg_id(a);
	if ((pid = fork()) == 0) {
		struct shm	*b = NULL;
		char		*cause = NULL;
		int		 ok;

		/* The inherited mapping, and a second attachment of our own. */
		ok = cache_put(shm_cache(a), CACHE_CLAIMS, "inherited", 9, "x",
		    1, 10 * SEC, now, NULL) == FA_OK;
		ok = ok && shm_open_segment(inst, &p, &b, &cause) == FA_OK;
		ok = ok && seg_id(b) == id;
		ok = ok && cache_get(shm_cache(b), CACHE_CLAIMS, "inherited", 9,
		    now, out, sizeof out, &outlen) == FA_OK;
		ok = ok && cache_put(shm_cache(b), CACHE_CLAIMS, "own", 3, "yz",
		    2, 10 * SEC, now, NULL) == FA_OK;
		_exit(ok ? 0 : 1);
	}
	ck_assert(wait_ok(pid));
	ck_assert_int_eq(cache_get(shm_cache(a), CACHE_CLAIMS, "inherited", 9,
	    now, out, sizeof out, &outlen), FA_OK);
	ck_assert_int_eq(cache_get(shm_cache(a), CACHE_CLAIMS, "own", 3, now,
	    out, sizeof out, &outlen), FA_OK);
	ck_assert(outlen == 2 && memcmp(out, "yz", 2) == 0);
	shm_close(a);
}
END_TEST

START_TEST(test_mismatch_size)
{
	struct shm_params	 p1, p2;
	struct shm		*a, *b, *c;
	char			 out[64];
	size_t			 outlen;
	uint64_t		 now = shm_now();

	params_small(&p1, 1024, 256, 128);
	params_small(&p2, 1024, 512, 128);
	a = seg_open(inst_new(), &p1);
	ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT, "old", 3, "1", 1,
	    10 * SEC, now, NULL), FA_OK);
	/* Another size: replaced, never misread. */
	b = seg_open(inst, &p2);
	ck_assert(seg_id(a) != seg_id(b));
	ck_assert_int_eq(shm_is_current(a), 0);
	ck_assert_int_eq(shm_is_current(b), 1);
	ck_assert_int_eq(cache_get(shm_cache(b), CACHE_CLIENT, "old", 3, now,
	    out, sizeof out, &outlen), FA_NOTFOUND);
	/* The old one stays whole for the processes still on it. */
	ck_assert_int_eq(cache_get(shm_cache(a), CACHE_CLIENT, "old", 3, now,
	    out, sizeof out, &outlen), FA_OK);
	/* Same size again: attached, not replaced. */
	c = seg_open(inst, &p2);
	ck_assert(seg_id(c) == seg_id(b));
	shm_close(c);
	/* The value size alone differs: replaced too. */
	p2.cache_value_max = 64;
	c = seg_open(inst, &p2);
	ck_assert(seg_id(c) != seg_id(b));
	ck_assert_int_eq(shm_is_current(b), 0);
	shm_close(a);
	shm_close(b);
	shm_close(c);
}
END_TEST

START_TEST(test_mismatch_version)
{
	struct shm_params	 p;
	struct shm		*a, *b;

	params_small(&p, 64, 64, 64);
	shm_test_version = 999;
	a = seg_open(inst_new(), &p);
	shm_test_version = 0;
	b = seg_open(inst, &p);
	ck_assert(seg_id(a) != seg_id(b));
	ck_assert_int_eq(shm_is_current(a), 0);
	shm_close(a);
	/* And back: this version's segment refused by the next version. */
	shm_test_version = SHM_VERSION + 1;
	a = seg_open(inst, &p);
	ck_assert(seg_id(a) != seg_id(b));
	ck_assert_int_eq(shm_is_current(b), 0);
	shm_test_version = 0;
	shm_close(a);
	shm_close(b);
}
END_TEST

/*
 * The hash is the creator's choice, recorded in the header: attachers use it
 * whatever they would have chosen; one they cannot compute makes the segment
 * another layout (replaced by shm_open_segment, refused by tools).
 */
START_TEST(test_hash_recorded)
{
	struct shm_params	 p;
	struct shm_stats	 st;
	struct ratelimit_policy	 pol_test;
	struct shm		*a, *b;
	char			*cause = NULL;

	/* One request an hour: after one check, the key is limited. */
	ck_assert_int_eq(ratelimit_policy_init(&pol_test, 0, 1, 3600000000ULL,
	    1, &cause), FA_OK);
	params_small(&p, 64, 64, 64);
	a = seg_open(inst_new(), &p);
	shm_stats(a, shm_now(), &st);
	ck_assert_uint_eq(st.hashalg, shm_hash_best());
	shm_close(a);
	shm_unlink_segment(inst, &cause);

	/* A SipHash segment stays SipHash for a process that prefers AES4. */
	shm_test_hashalg = SHM_HASH_SIPHASH;
	a = seg_open(inst_new(), &p);
	shm_test_hashalg = 0;
	b = seg_open(inst, &p);
	ck_assert(seg_id(a) == seg_id(b));
	shm_stats(b, shm_now(), &st);
	ck_assert_uint_eq(st.hashalg, SHM_HASH_SIPHASH);
	ck_assert_int_eq(ratelimit_check(shm_ratelimit(a), &pol_test, "k", 1,
	    1000000, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_peek(shm_ratelimit(b), &pol_test, "k", 1,
	    1000000, NULL), FA_LIMIT);
	shm_close(a);
	shm_close(b);
	shm_unlink_segment(inst, &cause);

	/*
	 * The other way: an AES4 segment met by a process that computes only
	 * SipHash (a CPU without AES) is refused by tools, replaced by servers.
	 */
	if (shm_hash_best() != SHM_HASH_AES4)
		return;
	a = seg_open(inst_new(), &p);
	shm_test_hashalg = SHM_HASH_SIPHASH;
	ck_assert_int_eq(shm_attach_existing(inst, &b, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "aes4, which this CPU cannot"));
	free(cause);
	cause = NULL;
	b = seg_open(inst, &p);
	shm_test_hashalg = 0;
	ck_assert(seg_id(a) != seg_id(b));
	ck_assert_int_eq(shm_is_current(a), 0);
	shm_stats(b, shm_now(), &st);
	ck_assert_uint_eq(st.hashalg, SHM_HASH_SIPHASH);
	shm_close(a);
	shm_close(b);
}
END_TEST

/* Put size bytes of fill under the segment's name, as something else would. */
static void
foreign_file(size_t size, int fill)
{
	char	 name[128], *buf;
	int	 fd;

	snprintf(name, sizeof name, "/fastauth.%s", inst);
	fd = shm_open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	if (size != 0) {
		buf = malloc(size);
		ck_assert_ptr_nonnull(buf);
		memset(buf, fill, size);
		ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
		free(buf);
	}
	close(fd);
}

START_TEST(test_foreign_and_empty)
{
	struct shm_params	 p;
	struct shm		*a;
	uint64_t		 start;
	size_t			 sizes[] = { 0, 100, 8192, 1 << 20 };
	int			 fills[] = { 0x00, 0xab, 0xff, 0x41 };
	unsigned		 i, j;

	params_small(&p, 64, 64, 64);
	inst_new();
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (j = 0; j < sizeof fills / sizeof fills[0]; j++) {
			/*
			 * A creator killed before sizing leaves an empty file;
			 * garbage of any size is refused and replaced.
			 */
			foreign_file(sizes[i], fills[j]);
			start = shm_now();
			a = seg_open(inst, &p);
			ck_assert_msg(ms_since(start) < 2500,
			    "size %zu fill %#x took %llu ms", sizes[i], fills[j],
			    (unsigned long long)ms_since(start));
			ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT,
			    "k", 1, "v", 1, SEC, T0, NULL), FA_OK);
			shm_close(a);
		}
}
END_TEST

START_TEST(test_concurrent_create)
{
	struct ratelimit_policy	 pol;
	struct shm_params	 p;
	char			*cause = NULL;
	uint64_t		 ids[8];
	pid_t			 pids[8];
	int			 round, i, start[2], res[2], allowed;

	params_small(&p, 4096, 1024, 256);
	ck_assert_int_eq(ratelimit_policy_init(&pol, 3, 1, 3600 * SEC, 8,
	    &cause), FA_OK);
	for (round = 0; round < 20; round++) {
		inst_new();
		ck_assert_int_eq(pipe(start), 0);
		ck_assert_int_eq(pipe(res), 0);
		for (i = 0; i < 8; i++) {
			if ((pids[i] = fork()) != 0)
				continue;
			struct shm	*seg = NULL;
			char		 msg[9];
			uint64_t	 id;

			close(start[1]);
			close(res[0]);
			barrier_wait(start[0]);
			if (shm_open_segment(inst, &p, &seg, &cause) != FA_OK)
				_exit(1);
			id = seg_id(seg);
			memcpy(msg, &id, 8);
			/*
			 * One request each on a key allowing 8 in total, at one
			 * instant: a request carrying an older clock than the
			 * key's last update is judged stricter by the skew, and
			 * each process has only one chance here.
			 */
			msg[8] = ratelimit_check(shm_ratelimit(seg), &pol,
			    "shared", 6, T0, NULL) == FA_OK;
			if (write(res[1], msg, sizeof msg) != sizeof msg)
				_exit(2);
			_exit(0);
		}
		close(start[0]);
		close(res[1]);
		close(start[1]);	/* go */
		allowed = 0;
		for (i = 0; i < 8; i++) {
			char	msg[9];

			ck_assert_int_eq(read(res[0], msg, sizeof msg),
			    (ssize_t)sizeof msg);
			memcpy(&ids[i], msg, 8);
			allowed += msg[8];
		}
		close(res[0]);
		for (i = 0; i < 8; i++)
			ck_assert(wait_ok(pids[i]));
		for (i = 1; i < 8; i++)
			ck_assert_msg(ids[i] == ids[0], "round %d: two segments",
			    round);
		ck_assert_int_eq(allowed, 8);
		teardown();
	}
}
END_TEST

START_TEST(test_creator_dies_mid_init)
{
	struct shm_params	 p;
	struct shm		*a;
	uint64_t		 start;
	pid_t			 pid;
	int			 status, reap_first;

	params_small(&p, 1024, 256, 128);
	for (reap_first = 0; reap_first <= 1; reap_first++) {
		inst_new();
		if ((pid = fork()) == 0) {
			struct shm	*seg = NULL;
			char		*cause = NULL;

			shm_test_hook = hook_kill;
			shm_open_segment(inst, &p, &seg, &cause);
			_exit(0);	/* not reached */
		}
		/* Wait until it is dead; reap it or leave a zombie. */
		ck_assert_int_eq(waitid(P_PID, (id_t)pid, &(siginfo_t){0},
		    WEXITED | WNOWAIT), 0);
		if (reap_first)
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		start = shm_now();
		a = seg_open(inst, &p);
		ck_assert_msg(ms_since(start) < 1000, "took %llu ms",
		    (unsigned long long)ms_since(start));
		ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT, "k", 1,
		    "v", 1, SEC, T0, NULL), FA_OK);
		shm_close(a);
		if (!reap_first)
			ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		teardown();
	}
}
END_TEST

START_TEST(test_creator_stops_mid_init)
{
	struct shm_params	 p;
	struct shm		*a;
	uint64_t		 start;
	pid_t			 pid;
	int			 status;

	params_small(&p, 1024, 256, 128);
	inst_new();
	if ((pid = fork()) == 0) {
		struct shm	*seg = NULL;
		char		*cause = NULL, out[8];
		size_t		 outlen;

		shm_test_hook = hook_stop;
		if (shm_open_segment(inst, &p, &seg, &cause) != FA_OK)
			_exit(1);
		/* Resumed: it must have ended up on the parent's segment. */
		_exit(cache_get(shm_cache(seg), CACHE_CLIENT, "parent", 6, T0,
		    out, sizeof out, &outlen) == FA_OK ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(status));
	/* Alive but stuck: after the wait, replaced rather than taken over. */
	start = shm_now();
	a = seg_open(inst, &p);
	ck_assert_uint_ge(ms_since(start), 1900);
	ck_assert_uint_lt(ms_since(start), 4000);
	ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT, "parent", 6, "v",
	    1, SEC, T0, NULL), FA_OK);
	kill(pid, SIGCONT);
	ck_assert(wait_ok(pid));
	shm_close(a);
}
END_TEST

START_TEST(test_replacer_dies_before_unlink)
{
	struct shm_params	 p1, p2;
	struct shm		*a, *b;
	uint64_t		 start;
	pid_t			 pid;
	int			 status;

	params_small(&p1, 1024, 256, 128);
	params_small(&p2, 2048, 256, 128);
	a = seg_open(inst_new(), &p1);
	if ((pid = fork()) == 0) {
		struct shm	*seg = NULL;
		char		*cause = NULL;

		shm_test_hook = hook_kill;
		shm_open_segment(inst, &p2, &seg, &cause);
		_exit(0);	/* not reached */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	/* Marked replaced, name still there, its replacer dead. */
	ck_assert_int_eq(shm_is_current(a), 0);
	start = shm_now();
	b = seg_open(inst, &p2);
	ck_assert_uint_lt(ms_since(start), 1000);
	ck_assert(seg_id(a) != seg_id(b));
	shm_close(a);
	shm_close(b);
}
END_TEST

START_TEST(test_attach_existing)
{
	struct shm_params	 p;
	struct shm		*a, *b = NULL;
	char			*cause = NULL, out[8];
	size_t			 outlen;

	params_small(&p, 1024, 256, 128);
	ck_assert_int_eq(shm_attach_existing(inst_new(), &b, &cause),
	    FA_NOTFOUND);
	ck_assert_ptr_null(b);
	a = seg_open(inst, &p);
	ck_assert_int_eq(cache_put(shm_cache(a), CACHE_CLIENT, "k", 1, "v", 1,
	    SEC, T0, NULL), FA_OK);
	/* A tool with other sizes in its configuration attaches, replaces nothing. */
	ck_assert_int_eq(shm_attach_existing(inst, &b, &cause), FA_OK);
	ck_assert(seg_id(a) == seg_id(b));
	ck_assert_int_eq(cache_get(shm_cache(b), CACHE_CLIENT, "k", 1, T0, out,
	    sizeof out, &outlen), FA_OK);
	{
		struct shm_stats	st;

		shm_stats(b, T0, &st);
		ck_assert_uint_eq(st.cache.entries, 256);
		ck_assert_uint_eq(st.ratelimit.entries, 1024);
	}
	shm_close(b);
	/* Another layout version: refused, left alone. */
	shm_test_version = 7;
	ck_assert_int_eq(shm_attach_existing(inst, &b, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "version"));
	free(cause);
	shm_test_version = 0;
	ck_assert_int_eq(shm_is_current(a), 1);
	shm_close(a);
}
END_TEST

START_TEST(test_unlink)
{
	struct shm_params	 p;
	struct shm		*a, *b;
	char			*cause = NULL;

	params_small(&p, 64, 64, 64);
	a = seg_open(inst_new(), &p);
	ck_assert_int_eq(shm_unlink_segment(inst, &cause), FA_OK);
	ck_assert_int_eq(shm_is_current(a), 0);
	ck_assert_int_eq(shm_unlink_segment(inst, &cause), FA_OK);
	b = seg_open(inst, &p);
	ck_assert(seg_id(a) != seg_id(b));
	ck_assert_int_eq(shm_is_current(b), 1);
	shm_close(a);
	shm_close(b);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct shm_params	 p;
	struct shm		*seg = NULL;
	char			*cause = NULL, longname[SHM_INSTANCE_MAX + 2];
	const char		*bad[] = { "", "a/b", "x y", "..\n" };
	unsigned		 i;

	params_small(&p, 64, 64, 64);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(shm_open_segment(bad[i], &p, &seg, &cause),
		    FA_ERR);
		ck_assert_ptr_nonnull(cause);
		ck_assert_ptr_null(seg);
		free(cause);
		cause = NULL;
	}
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ck_assert_int_eq(shm_open_segment(longname, &p, &seg, &cause), FA_ERR);
	free(cause);
	cause = NULL;
	inst_new();
	params_small(&p, 4, 64, 64);
	ck_assert_int_eq(shm_open_segment(inst, &p, &seg, &cause), FA_ERR);
	ck_assert_ptr_nonnull(strstr(cause, "ratelimit"));
	free(cause);
	cause = NULL;
	params_small(&p, 64, 1U << 25, 64);
	ck_assert_int_eq(shm_open_segment(inst, &p, &seg, &cause), FA_ERR);
	free(cause);
	cause = NULL;
	params_small(&p, 64, 64, 0);
	ck_assert_int_eq(shm_open_segment(inst, &p, &seg, &cause), FA_ERR);
	free(cause);
	cause = NULL;
	params_small(&p, 64, 64, CACHE_VALUE_LIMIT + 1);
	ck_assert_int_eq(shm_open_segment(inst, &p, &seg, &cause), FA_ERR);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(shm_open_segment(inst, NULL, &seg, &cause), FA_ERR);
	free(cause);
	/* Rounding: 9 entries make two buckets of 8. */
	params_small(&p, 9, 17, 1);
	seg = seg_open(inst, &p);
	{
		struct shm_stats	st;

		shm_stats(seg, T0, &st);
		ck_assert_uint_eq(st.ratelimit.entries, 16);
		ck_assert_uint_eq(st.cache.entries, 32);
	}
	shm_close(seg);
}
END_TEST

/* --- rate limiter -------------------------------------------------------- */

static struct shm	*rl_seg;
static struct ratelimit	*rl;

static void
rl_setup_entries(uint32_t entries)
{
	struct shm_params	p;

	params_small(&p, entries, 64, 64);
	rl_seg = seg_open(inst_new(), &p);
	rl = shm_ratelimit(rl_seg);
}

static void
rl_setup(void)
{
	rl_setup_entries(4096);
}

static void
rl_teardown(void)
{
	shm_close(rl_seg);
	rl_seg = NULL;
	teardown();
}

static void
policy(struct ratelimit_policy *pol, unsigned id, uint64_t rate,
    uint64_t period, uint32_t burst)
{
	char	*cause = NULL;

	ck_assert_msg(ratelimit_policy_init(pol, id, rate, period, burst,
	    &cause) == FA_OK, "policy: %s", cause ? cause : "?");
}

START_TEST(test_rl_policy_init)
{
	struct ratelimit_policy	 pol;
	char			*cause = NULL;

	ck_assert_int_eq(ratelimit_policy_init(&pol, RATELIMIT_POLICIES, 1, SEC,
	    1, &cause), FA_ERR);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(ratelimit_policy_init(&pol, 0, 0, SEC, 1, &cause),
	    FA_ERR);
	free(cause);
	cause = NULL;
	ck_assert_int_eq(ratelimit_policy_init(&pol, 0, 1, SEC, 0, &cause),
	    FA_ERR);
	free(cause);
	cause = NULL;
	/* Two million a second: under a microsecond apart. */
	ck_assert_int_eq(ratelimit_policy_init(&pol, 0, 2000000, SEC, 1,
	    &cause), FA_ERR);
	free(cause);
	cause = NULL;
	/* 100 a day with a burst of 1000: ten days ahead. */
	ck_assert_int_eq(ratelimit_policy_init(&pol, 0, 100, 86400 * SEC, 1000,
	    &cause), FA_ERR);
	free(cause);
	cause = NULL;
	policy(&pol, 4, 10, 60 * SEC, 20);
	ck_assert_uint_eq(pol.interval, 6 * SEC);
	ck_assert_uint_eq(pol.horizon, 120 * SEC);
	ck_assert_uint_eq(pol.id, 4);
	ck_assert_uint_eq(pol.burst, 20);
}
END_TEST

/*
 * ratelimit_div (a multiplication by a reciprocal and one correction) gives
 * exactly x / interval: intervals from 1 us to the longest a policy allows,
 * dividends around every multiple where an off-by-one would show, up to the
 * top of 64 bits.
 */
START_TEST(test_rl_div_exact)
{
	static const uint64_t	 ds[] = { 1, 2, 3, 5, 7, 10, 64, 999, 1000,
	    1001, 65535, 65536, 65537, 999999, 1000000, 1000001, 6000000,
	    (1ULL << 32) - 1, 1ULL << 32, (1ULL << 32) + 1, 86400000000ULL,
	    RATELIMIT_HORIZON_MAX - 1, RATELIMIT_HORIZON_MAX };
	struct ratelimit_policy	 pol;
	uint64_t		 d, x, xs[24], k;
	unsigned		 seed = 4242, i, j, r;
	char			*cause = NULL;

	for (i = 0; i < sizeof ds / sizeof ds[0] + 200; i++) {
		if (i < sizeof ds / sizeof ds[0])
			d = ds[i];
		else	/* random intervals, spread over the magnitudes */
			d = 1 + ((((uint64_t)rand_r(&seed) << 31) ^
			    (uint64_t)rand_r(&seed)) >> (rand_r(&seed) % 40)) %
			    RATELIMIT_HORIZON_MAX;
		ck_assert_int_eq(ratelimit_policy_init(&pol, 0, 1, d, 1,
		    &cause), FA_OK);
		ck_assert_uint_eq(pol.interval, d);
		k = RATELIMIT_HORIZON_MAX / d;
		j = 0;
		xs[j++] = 0;
		xs[j++] = 1;
		xs[j++] = d - 1;
		xs[j++] = d;
		xs[j++] = d + 1;
		xs[j++] = k * d - 1;
		xs[j++] = k * d;
		xs[j++] = k * d + 1;
		xs[j++] = RATELIMIT_HORIZON_MAX;
		xs[j++] = (UINT64_MAX / d) * d - 1;
		xs[j++] = (UINT64_MAX / d) * d;
		xs[j++] = UINT64_MAX;
		xs[j++] = UINT64_MAX - 1;
		xs[j++] = 1ULL << 63;
		xs[j++] = (1ULL << 63) - 1;
		while (j < sizeof xs / sizeof xs[0]) {
			r = (unsigned)rand_r(&seed);
			xs[j++] = ((uint64_t)r * d + (uint64_t)rand_r(&seed) %
			    (2 * d + 1)) >> (r % 3 == 0 ? 0 : r % 64);
		}
		for (j = 0; j < sizeof xs / sizeof xs[0]; j++) {
			x = xs[j];
			ck_assert_msg(ratelimit_div(&pol, x) == x / d,
			    "%llu / %llu: %llu", (unsigned long long)x,
			    (unsigned long long)d,
			    (unsigned long long)ratelimit_div(&pol, x));
		}
	}
}
END_TEST

START_TEST(test_rl_burst_and_retry_after)
{
	struct ratelimit_policy	pol;
	struct ratelimit_result	r;
	const uint64_t		T = SEC / 10;
	unsigned		i;

	policy(&pol, 0, 10, SEC, 5);	/* 10/s, burst 5: T = 100 ms */
	for (i = 1; i <= 5; i++) {
		ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0, &r),
		    FA_OK);
		ck_assert_uint_eq(r.remaining, 5 - i);
		ck_assert_uint_eq(r.retry_after, 0);
		ck_assert_uint_eq(r.reset, i * T);
		ck_assert_uint_eq(r.limit, 5);
	}
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0, &r), FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, T);
	ck_assert_uint_eq(r.remaining, 0);
	ck_assert_uint_eq(r.reset, 5 * T);
	/* Limited requests do not push the state further. */
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + T / 2, &r),
	    FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, T / 2);
	ck_assert_uint_eq(r.reset, 5 * T - T / 2);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + T - 1, &r),
	    FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, 1);
	/* Exactly at Retry-After: one more. */
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + T, &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 0);
	ck_assert_uint_eq(r.reset, 5 * T);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + T, &r),
	    FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, T);
	/* Idle for the whole horizon: the whole burst again. */
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2,
		    T0 + 6 * T, &r), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + 6 * T, &r),
	    FA_LIMIT);
	/* Half refilled after 2.5 intervals: two. */
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + 6 * T + 5 * T / 2,
	    &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 1);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + 6 * T + 5 * T / 2,
	    &r), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0 + 6 * T + 5 * T / 2,
	    &r), FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, T / 2);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "c1", 2, T0, NULL), FA_LIMIT);
}
END_TEST

/* A plain GCRA, to compare with the packed, shared one. */
struct gcra_model {
	uint64_t	tat;
	int		set;
};

static int
gcra_model(struct gcra_model *m, const struct ratelimit_policy *pol,
    uint64_t now)
{
	uint64_t	tat = m->set && m->tat > now ? m->tat : now;

	if (tat + pol->interval - now > pol->horizon)
		return FA_LIMIT;
	m->tat = tat + pol->interval;
	m->set = 1;
	return FA_OK;
}

START_TEST(test_rl_against_model)
{
	struct ratelimit_policy	pol[3];
	struct gcra_model	m[3][4];
	struct ratelimit_result	r;
	char			key[8];
	uint64_t		now;
	unsigned		seed = 12345, i, k, pi;
	int			want, got;

	policy(&pol[0], 1, 3, 60 * SEC, 3);
	policy(&pol[1], 2, 1000, SEC, 50);
	policy(&pol[2], 3, 7, 10 * SEC, 1);
	memset(m, 0, sizeof m);
	/* Start just below 2^40 us: the 40-bit field wraps during the run. */
	now = (1ULL << 40) - 30 * SEC;
	for (i = 0; i < 200000; i++) {
		now += rand_r(&seed) % 2000;
		pi = (unsigned)rand_r(&seed) % 3;
		k = (unsigned)rand_r(&seed) % 4;
		snprintf(key, sizeof key, "key%u", k);
		want = gcra_model(&m[pi][k], &pol[pi], now);
		got = ratelimit_check(rl, &pol[pi], key, strlen(key), now, &r);
		ck_assert_msg(got == want, "step %u policy %u key %u: %d != %d",
		    i, pi, k, got, want);
	}
}
END_TEST

START_TEST(test_rl_sustained_rate)
{
	struct ratelimit_policy	pol;
	uint64_t		now = T0;
	unsigned		i, allowed = 0;

	policy(&pol, 0, 100, SEC, 10);	/* T = 10 ms */
	/* At the rate exactly, forever allowed. */
	for (i = 0; i < 1000; i++, now += pol.interval)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "steady", 6, now,
		    NULL), FA_OK);
	/* Twice the rate for 10 s from a fresh key: burst + 10 s worth. */
	now += 10 * SEC;
	for (i = 0; i < 2000; i++, now += pol.interval / 2)
		allowed += ratelimit_check(rl, &pol, "fast", 4, now, NULL) ==
		    FA_OK;
	ck_assert_uint_eq(allowed, 10 + 999);
}
END_TEST

START_TEST(test_rl_peek_and_reset)
{
	struct ratelimit_policy	pol;
	struct ratelimit_result	r;
	unsigned		i;

	policy(&pol, 7, 5, 60 * SEC, 3);
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(ratelimit_peek(rl, &pol, "u", 1, T0, &r), FA_OK);
		ck_assert_uint_eq(r.remaining, 3);
	}
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "u", 1, T0, NULL),
		    FA_OK);
	ck_assert_int_eq(ratelimit_peek(rl, &pol, "u", 1, T0, &r), FA_LIMIT);
	ck_assert_uint_eq(r.retry_after, 12 * SEC);
	ratelimit_reset(rl, &pol, "u", 1);
	ck_assert_int_eq(ratelimit_peek(rl, &pol, "u", 1, T0, &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 3);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "u", 1, T0, NULL), FA_OK);
}
END_TEST

/* Charge first, refund what did not count: a budget that cannot be overrun. */
START_TEST(test_rl_refund)
{
	struct ratelimit_policy	pol;
	struct ratelimit_result	r;
	unsigned		i;

	policy(&pol, 8, 5, 60 * SEC, 3);
	/* Refunding a key with no state, or twice too many, gives nothing extra. */
	ratelimit_refund(rl, &pol, "v", 1, T0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "v", 1, T0, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "v", 1, T0, NULL), FA_LIMIT);
	ratelimit_refund(rl, &pol, "v", 1, T0);
	ck_assert_int_eq(ratelimit_peek(rl, &pol, "v", 1, T0, &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 1);
	for (i = 0; i < 10; i++)
		ratelimit_refund(rl, &pol, "v", 1, T0);
	ck_assert_int_eq(ratelimit_peek(rl, &pol, "v", 1, T0, &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "v", 1, T0, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "v", 1, T0, NULL), FA_LIMIT);
	/* Part way through an interval: the refund moves the TAT back one interval. */
	ratelimit_refund(rl, &pol, "v", 1, T0 + 5 * SEC);
	ck_assert_int_eq(ratelimit_peek(rl, &pol, "v", 1, T0 + 5 * SEC, &r), FA_OK);
	ck_assert_uint_eq(r.remaining, 1);
}
END_TEST

START_TEST(test_rl_keys_and_policies)
{
	struct ratelimit_policy	a, b;
	struct ratelimit_stats	st;
	unsigned		i;

	policy(&a, 1, 1, 60 * SEC, 2);
	policy(&b, 2, 1, 60 * SEC, 2);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(ratelimit_check(rl, &a, "alice", 5, T0, NULL),
		    FA_OK);
		ck_assert_int_eq(ratelimit_check(rl, &a, "bob", 3, T0, NULL),
		    FA_OK);
	}
	ck_assert_int_eq(ratelimit_check(rl, &a, "alice", 5, T0, NULL), FA_LIMIT);
	ck_assert_int_eq(ratelimit_check(rl, &a, "bob", 3, T0, NULL), FA_LIMIT);
	/* Same key, other policy: its own state. */
	ck_assert_int_eq(ratelimit_check(rl, &b, "alice", 5, T0, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &b, "alice", 5, T0, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &b, "alice", 5, T0, NULL), FA_LIMIT);
	/* Keys are bytes: a prefix or an embedded NUL is another key. */
	ck_assert_int_eq(ratelimit_check(rl, &a, "alic", 4, T0, NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &a, "alice\0", 6, T0, NULL), FA_OK);
	ratelimit_stats(rl, T0, &st);
	ck_assert_uint_eq(st.allowed[1], 6);
	ck_assert_uint_eq(st.limited[1], 2);
	ck_assert_uint_eq(st.allowed[2], 2);
	ck_assert_uint_eq(st.limited[2], 1);
	ck_assert_uint_eq(st.allowed[0], 0);
	ck_assert_uint_eq(st.used, 5);
	ck_assert_uint_eq(st.evicted_live, 0);
}
END_TEST

START_TEST(test_rl_table_full)
{
	struct ratelimit_policy	longp, shortp;
	struct ratelimit_stats	st;
	struct ratelimit_result	r;
	char			key[16];
	unsigned		i;

	/* One bucket of 8: every key collides on it. */
	shm_close(rl_seg);
	teardown();
	rl_setup_entries(8);
	policy(&longp, 0, 1, 100 * SEC, 2);
	policy(&shortp, 1, 1, 1000, 1);		/* 1 per ms */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(ratelimit_check(rl, i == 3 ? &shortp : &longp,
		    key, strlen(key), T0 + i, NULL), FA_OK);
	}
	/* k3's state has expired 10 ms later: evicting it loses nothing. */
	ck_assert_int_eq(ratelimit_check(rl, &longp, "k8", 2, T0 + 10000, NULL),
	    FA_OK);
	ratelimit_stats(rl, T0 + 10000, &st);
	ck_assert_uint_eq(st.evicted_live, 0);
	ck_assert_uint_eq(st.used, 8);
	/* Full of live states: the one ending first (k0) goes. */
	ck_assert_int_eq(ratelimit_check(rl, &longp, "k9", 2, T0 + 20000, NULL),
	    FA_OK);
	ratelimit_stats(rl, T0 + 20000, &st);
	ck_assert_uint_eq(st.evicted_live, 1);
	/* The survivors kept their state: one left each, then limited. */
	for (i = 1; i < 8; i++) {
		if (i == 3)
			continue;
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(ratelimit_check(rl, &longp, key, strlen(key),
		    T0 + 30000, &r), FA_OK);
		ck_assert_uint_eq(r.remaining, 0);
		ck_assert_int_eq(ratelimit_check(rl, &longp, key, strlen(key),
		    T0 + 30000, NULL), FA_LIMIT);
	}
	/* The evicted key starts over with its whole burst (fails open). */
	ck_assert_int_eq(ratelimit_check(rl, &longp, "k0", 2, T0 + 40000, &r),
	    FA_OK);
	ck_assert_uint_eq(r.remaining, 1);
}
END_TEST

/*
 * Inside a check about to insert "dup", another "process" frees a slot and
 * inserts "dup" there first: two slots for one key, which must be merged.
 */
static struct ratelimit_policy	dup_pol, dup_fill;
static int			dup_nested;

static void
hook_dup(enum shm_test_point point)
{
	if (point != SHM_TEST_RATELIMIT_INSERT || dup_nested)
		return;
	dup_nested = 1;
	ratelimit_reset(rl, &dup_fill, "f3", 2);
	ck_assert_int_eq(ratelimit_check(rl, &dup_pol, "dup", 3, T0 + 100, NULL),
	    FA_OK);
}

START_TEST(test_rl_duplicate_merged)
{
	struct ratelimit_result	r;
	struct ratelimit_stats	st;
	char			key[8];
	unsigned		i;

	shm_close(rl_seg);
	teardown();
	rl_setup_entries(8);
	policy(&dup_fill, 1, 1, 100 * SEC, 2);
	policy(&dup_pol, 2, 1, 100 * SEC, 5);
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "f%u", i);
		ck_assert_int_eq(ratelimit_check(rl, &dup_fill, key, 2, T0 + i,
		    NULL), FA_OK);
	}
	dup_nested = 0;
	shm_test_hook = hook_dup;
	ck_assert_int_eq(ratelimit_check(rl, &dup_pol, "dup", 3, T0 + 100, &r),
	    FA_OK);
	shm_test_hook = NULL;
	ck_assert_int_eq(dup_nested, 1);
	/* Both requests count: three left of five, in one slot. */
	ck_assert_int_eq(ratelimit_peek(rl, &dup_pol, "dup", 3, T0 + 100, &r),
	    FA_OK);
	ck_assert_uint_eq(r.remaining, 3);
	ratelimit_stats(rl, T0 + 100, &st);
	ck_assert_uint_eq(st.allowed[2], 2);
	ck_assert_uint_eq(st.used, 7);	/* f0 evicted, f3 reset, one "dup" */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &dup_pol, "dup", 3, T0 + 100,
		    NULL), FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &dup_pol, "dup", 3, T0 + 100, NULL),
	    FA_LIMIT);
}
END_TEST

START_TEST(test_rl_flood)
{
	struct ratelimit_policy	pol;
	struct ratelimit_stats	st;
	char			key[32];
	unsigned		i, allowed = 0;

	shm_close(rl_seg);
	teardown();
	rl_setup_entries(8);
	policy(&pol, 0, 1, 60 * SEC, 1);
	/* 20000 distinct keys through 8 slots: never blocks, never fails. */
	for (i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "flood-%u", i);
		allowed += ratelimit_check(rl, &pol, key, strlen(key), T0 + i,
		    NULL) == FA_OK;
	}
	/*
	 * A new key whose 24-bit fingerprint matches a live slot of its bucket
	 * shares that slot's state (ratelimit.c: about 8 / 2^24 per new key), so
	 * it is limited and evicts nothing. Expected ~0.01 such keys here; more
	 * than 3 would mean the hash or the matching is broken.
	 */
	ck_assert_uint_ge(allowed, 20000 - 3);
	ratelimit_stats(rl, T0 + 20000, &st);
	ck_assert_uint_eq(st.entries, 8);
	ck_assert_uint_eq(st.used, 8);
	ck_assert_uint_eq(st.evicted_live, 20000 - 8 - (20000 - allowed));
}
END_TEST

START_TEST(test_rl_time_forward)
{
	struct ratelimit_policy	pol;
	struct ratelimit_stats	st;
	uint64_t		now = shm_now();
	unsigned		i;

	policy(&pol, 0, 1, 3600 * SEC, 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "k", 1, now, NULL),
		    FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "k", 1, now, NULL), FA_LIMIT);
	/* Exactly 2^40 us later the 40-bit TAT reads the same again... */
	now += 1ULL << 40;
	/* ...but four idle days empty the table: the whole burst is back. */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ratelimit_check(rl, &pol, "k", 1, now, NULL),
		    FA_OK);
	ck_assert_int_eq(ratelimit_check(rl, &pol, "k", 1, now, NULL), FA_LIMIT);
	/* Other keys in flight; two hours on, the hourly sweep empties them. */
	for (i = 0; i < 50; i++) {
		char	key[16];

		snprintf(key, sizeof key, "other%u", i);
		ratelimit_check(rl, &pol, key, strlen(key), now, NULL);
	}
	ratelimit_stats(rl, now, &st);
	ck_assert_uint_eq(st.used, 51);
	now += 4 * 3600 * SEC;
	ck_assert_int_eq(ratelimit_check(rl, &pol, "k", 1, now, NULL), FA_OK);
	ratelimit_stats(rl, now, &st);
	ck_assert_uint_eq(st.used, 1);
}
END_TEST

/* n processes x per requests on one key, all starting together: allowed. */
static unsigned
rl_hammer(const struct shm_params *p, const struct ratelimit_policy *pol,
    const char *key, int n, int per)
{
	pid_t		pids[16];
	int		start[2], res[2], i;
	unsigned	total = 0;

	ck_assert_int_eq(pipe(start), 0);
	ck_assert_int_eq(pipe(res), 0);
	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) != 0)
			continue;
		struct shm	*seg = NULL;
		char		*cause = NULL;
		unsigned	 allowed = 0;
		int		 j;

		close(start[1]);
		close(res[0]);
		if (shm_open_segment(inst, p, &seg, &cause) != FA_OK)
			_exit(1);
		barrier_wait(start[0]);
		for (j = 0; j < per; j++)
			allowed += ratelimit_check(shm_ratelimit(seg), pol, key,
			    strlen(key), shm_now(), NULL) == FA_OK;
		_exit(write(res[1], &allowed, sizeof allowed) ==
		    sizeof allowed ? 0 : 2);
	}
	close(start[0]);
	close(res[1]);
	close(start[1]);
	for (i = 0; i < n; i++) {
		unsigned	a;

		ck_assert_int_eq(read(res[0], &a, sizeof a), (ssize_t)sizeof a);
		total += a;
	}
	close(res[0]);
	for (i = 0; i < n; i++)
		ck_assert(wait_ok(pids[i]));
	return total;
}

START_TEST(test_rl_processes_exact)
{
	struct ratelimit_policy	pol, other;
	struct ratelimit_stats	st;
	struct shm_params	p;
	char			key[32];
	unsigned		i, round;

	params_small(&p, 4096, 64, 64);
	policy(&pol, 5, 1, 1000 * SEC, 50);
	policy(&other, 6, 1, 1000 * SEC, 5);
	for (round = 0; round < 5; round++) {
		snprintf(key, sizeof key, "fresh-%u", round);
		ck_assert_uint_eq(rl_hammer(&p, &pol, key, 6, 200), 50);
	}
	ratelimit_stats(rl, shm_now(), &st);
	ck_assert_uint_eq(st.allowed[5], 5 * 50);
	ck_assert_uint_eq(st.limited[5], 5 * (1200 - 50));

	/* A full bucket: the new key takes a slot by eviction, racing. */
	shm_close(rl_seg);
	teardown();
	rl_setup_entries(8);
	params_small(&p, 8, 64, 64);
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 8; i++) {
			snprintf(key, sizeof key, "filler-%u-%u", round, i);
			ratelimit_check(rl, &other, key, strlen(key), shm_now(),
			    NULL);
		}
		snprintf(key, sizeof key, "evicting-%u", round);
		ck_assert_uint_eq(rl_hammer(&p, &pol, key, 6, 200), 50);
	}
}
END_TEST

static void
count_tick(int sig)
{
	(void)sig;
}

/*
 * The decision counters stay exact when the counting threads are preempted,
 * migrated and signalled mid-count: 6 processes on the host's CPUs (more
 * than there are, here), each taking a timer signal every 100 us -- a signal
 * inside shm_count's rseq section sends it to its abort path -- counting
 * 50,000 allowed and 50,000 limited checks each.
 */
START_TEST(test_rl_counters_exact_preempted)
{
	struct ratelimit_policy	pol;
	struct ratelimit_stats	st;
	struct shm_params	p;
	pid_t			pids[6];
	int			start[2], i;

	params_small(&p, 4096, 64, 64);
	policy(&pol, 7, 1, 1000 * SEC, 1);
	ck_assert_int_eq(pipe(start), 0);
	for (i = 0; i < 6; i++) {
		if ((pids[i] = fork()) != 0)
			continue;
		struct itimerval it = { { 0, 100 }, { 0, 100 } };
		struct sigaction sa;
		struct shm	*seg = NULL;
		char		*cause = NULL, key[32];
		int		 j, bad = 0;

		close(start[1]);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = count_tick;
		sa.sa_flags = SA_RESTART;
		if (sigaction(SIGALRM, &sa, NULL) != 0 ||
		    shm_open_segment(inst, &p, &seg, &cause) != FA_OK)
			_exit(1);
		barrier_wait(start[0]);
		setitimer(ITIMER_REAL, &it, NULL);
		/* Each key once allowed (burst 1), then limited. */
		for (j = 0; j < 50000; j++) {
			snprintf(key, sizeof key, "p%d-%d", i, j);
			bad += ratelimit_check(shm_ratelimit(seg), &pol, key,
			    strlen(key), T0, NULL) != FA_OK;
			bad += ratelimit_check(shm_ratelimit(seg), &pol, key,
			    strlen(key), T0, NULL) != FA_LIMIT;
			/* Keys stop mattering once counted: keep the table clear. */
			ratelimit_reset(shm_ratelimit(seg), &pol, key, strlen(key));
		}
		_exit(bad == 0 ? 0 : 2);
	}
	close(start[0]);
	close(start[1]);
	for (i = 0; i < 6; i++)
		ck_assert(wait_ok(pids[i]));
	ratelimit_stats(rl, shm_now(), &st);
	ck_assert_uint_eq(st.allowed[7], 6 * 50000);
	ck_assert_uint_eq(st.limited[7], 6 * 50000);
	ck_assert_uint_eq(st.evicted_live, 0);
}
END_TEST

/* --- cache --------------------------------------------------------------- */

static struct shm	*c_seg;
static struct cache	*cache;

static void
cache_setup_sized(uint32_t entries, uint32_t vmax)
{
	struct shm_params	p;

	params_small(&p, 64, entries, vmax);
	c_seg = seg_open(inst_new(), &p);
	cache = shm_cache(c_seg);
}

static void
cache_setup(void)
{
	cache_setup_sized(1024, 512);
}

static void
cache_teardown(void)
{
	shm_close(c_seg);
	c_seg = NULL;
	teardown();
}

static int
get_str(enum cache_kind kind, const char *key, uint64_t now, char *out,
    size_t cap)
{
	size_t	outlen = 0;
	int	rc;

	rc = cache_get(cache, kind, key, strlen(key), now, out, cap - 1, &outlen);
	out[rc == FA_OK ? outlen : 0] = '\0';
	return rc;
}

static int
put_str(enum cache_kind kind, const char *key, const char *value, uint64_t ttl,
    uint64_t now)
{
	return cache_put(cache, kind, key, strlen(key), value, strlen(value),
	    ttl, now, NULL);
}

START_TEST(test_cache_put_get)
{
	char	out[600], big[512];
	size_t	outlen;

	ck_assert_int_eq(get_str(CACHE_CLIENT, "svc-a", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(put_str(CACHE_CLIENT, "svc-a", "{\"name\":\"a\"}", SEC,
	    T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "svc-a", T0, out, sizeof out),
	    FA_OK);
	ck_assert_str_eq(out, "{\"name\":\"a\"}");
	/* Too small a buffer: the length, not the value. */
	ck_assert_int_eq(cache_get(cache, CACHE_CLIENT, "svc-a", 5, T0, out, 4,
	    &outlen), FA_LIMIT);
	ck_assert_uint_eq(outlen, 12);
	/* Empty value, longest key, largest value. */
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "empty", "", SEC, T0), FA_OK);
	ck_assert_int_eq(cache_get(cache, CACHE_CLAIMS, "empty", 5, T0, out,
	    sizeof out, &outlen), FA_OK);
	ck_assert_uint_eq(outlen, 0);
	memset(big, 'k', CACHE_KEY_MAX);
	memset(out, 'v', sizeof big);
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, big, CACHE_KEY_MAX, out,
	    512, SEC, T0, NULL), FA_OK);
	memset(out, 0, sizeof out);
	ck_assert_int_eq(cache_get(cache, CACHE_CLIENT, big, CACHE_KEY_MAX, T0,
	    out, sizeof out, &outlen), FA_OK);
	ck_assert_uint_eq(outlen, 512);
	ck_assert(out[0] == 'v' && out[511] == 'v' && out[512] == 0);
	/* A key differing in its last byte is another key. */
	big[CACHE_KEY_MAX - 1] = 'x';
	ck_assert_int_eq(cache_get(cache, CACHE_CLIENT, big, CACHE_KEY_MAX, T0,
	    out, sizeof out, &outlen), FA_NOTFOUND);
}
END_TEST

START_TEST(test_cache_limits)
{
	char	key[CACHE_KEY_MAX + 1], val[513];
	size_t	outlen;

	memset(key, 'k', sizeof key);
	memset(val, 'v', sizeof val);
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, key, sizeof key, "v", 1,
	    SEC, T0, NULL), FA_LIMIT);
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, key, 0, "v", 1, SEC, T0,
	    NULL), FA_LIMIT);
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, "k", 1, val, 513, SEC, T0,
	    NULL), FA_LIMIT);
	ck_assert_int_eq(cache_put(cache, CACHE_ALL, "k", 1, "v", 1, SEC, T0,
	    NULL), FA_LIMIT);
	ck_assert_int_eq(cache_put(cache, (enum cache_kind)CACHE_KINDS, "k", 1,
	    "v", 1, SEC, T0, NULL), FA_LIMIT);
	ck_assert_int_eq(cache_get(cache, CACHE_CLIENT, key, sizeof key, T0, val,
	    sizeof val, &outlen), FA_NOTFOUND);
	ck_assert_int_eq(cache_get(cache, CACHE_ALL, "k", 1, T0, val, sizeof val,
	    &outlen), FA_NOTFOUND);
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, "k", 1, val, 512, SEC, T0,
	    NULL), FA_OK);
}
END_TEST

/*
 * Keys of every length 1..CACHE_KEY_MAX, at every alignment of the caller's
 * buffer, come back (the key compare reads words, the last one
 * overlapping); a key one byte shorter or longer is another key.
 */
START_TEST(test_cache_key_lengths)
{
	uint8_t		buf[CACHE_KEY_MAX + 8], out[16];
	unsigned	seed = 77, i, n, off;
	size_t		outlen;

	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rand_r(&seed);
	for (n = 1; n <= CACHE_KEY_MAX; n++) {
		off = n % 8;
		ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, buf + off, n,
		    &n, sizeof n, 60 * SEC, T0, NULL), FA_OK);
	}
	/*
	 * Stored: n bytes at buf + n % 8. Any other offset reads other bytes:
	 * among them, a prefix of the key of length n + 1 at that offset.
	 */
	for (n = 1; n <= CACHE_KEY_MAX; n++) {
		for (off = 0; off < 8; off++) {
			ck_assert_msg(cache_get(cache, CACHE_CLIENT, buf + off, n,
			    T0, out, sizeof out, &outlen) ==
			    (off == n % 8 ? FA_OK : FA_NOTFOUND),
			    "length %u at +%u", n, off);
			if (off != n % 8)
				continue;
			ck_assert_uint_eq(outlen, sizeof n);
			ck_assert(memcmp(out, &n, sizeof n) == 0);
		}
	}
}
END_TEST

START_TEST(test_cache_ttl)
{
	char	out[64];

	ck_assert_int_eq(put_str(CACHE_CLAIMS, "sub", "x", 1000, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "sub", T0 + 999, out, sizeof out),
	    FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "sub", T0 + 1000, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "sub", T0 + 5000, out, sizeof out),
	    FA_NOTFOUND);
	/* An enormous TTL does not wrap around into the past. */
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "sub", "y", UINT64_MAX, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "sub", T0 + 1000 * SEC, out,
	    sizeof out), FA_OK);
}
END_TEST

START_TEST(test_cache_overwrite_del)
{
	struct cache_stats	st;
	char			out[64];

	ck_assert_int_eq(put_str(CACHE_CLIENT, "c", "first value", SEC, T0), FA_OK);
	ck_assert_int_eq(put_str(CACHE_CLIENT, "c", "2nd", SEC, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "c", T0, out, sizeof out), FA_OK);
	ck_assert_str_eq(out, "2nd");
	cache_stats(cache, T0, &st);
	ck_assert_uint_eq(st.used, 1);
	ck_assert_int_eq(cache_del(cache, CACHE_CLIENT, "c", 1), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "c", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(cache_del(cache, CACHE_CLIENT, "c", 1), FA_NOTFOUND);
	cache_stats(cache, T0, &st);
	ck_assert_uint_eq(st.used, 0);
	ck_assert_int_eq(put_str(CACHE_CLIENT, "c", "3rd", SEC, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "c", T0, out, sizeof out), FA_OK);
	ck_assert_str_eq(out, "3rd");
}
END_TEST

START_TEST(test_cache_kinds)
{
	char	out[64];

	ck_assert_int_eq(put_str(CACHE_CLIENT, "id", "client", SEC, T0), FA_OK);
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "id", "claims", SEC, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "id", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(put_str(CACHE_REVOCATION, "id", "revoked", SEC, T0),
	    FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "id", T0, out, sizeof out), FA_OK);
	ck_assert_str_eq(out, "client");
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "id", T0, out, sizeof out), FA_OK);
	ck_assert_str_eq(out, "claims");
	ck_assert_int_eq(cache_del(cache, CACHE_CLAIMS, "id", 2), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "id", T0, out, sizeof out), FA_OK);
	/* Flushing one kind leaves the others. */
	cache_flush(cache, CACHE_CLIENT);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "id", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "id", T0, out, sizeof out),
	    FA_OK);
	ck_assert_int_eq(put_str(CACHE_CLIENT, "id", "again", SEC, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "id", T0, out, sizeof out), FA_OK);
	/* Flushing all leaves none. */
	cache_flush(cache, CACHE_ALL);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "id", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "id", T0, out, sizeof out),
	    FA_NOTFOUND);
}
END_TEST

START_TEST(test_cache_ticket)
{
	struct cache_ticket	t, t2;
	char			out[64];

	cache_ticket(cache, CACHE_REVOCATION, &t);
	ck_assert_int_eq(cache_put(cache, CACHE_REVOCATION, "jti1", 4, "live", 4,
	    SEC, T0, &t), FA_OK);
	/* Invalidation of any key of the kind between ticket and put. */
	cache_ticket(cache, CACHE_REVOCATION, &t);
	cache_ticket(cache, CACHE_CLIENT, &t2);
	ck_assert_int_eq(cache_del(cache, CACHE_REVOCATION, "jti1", 4), FA_OK);
	ck_assert_int_eq(cache_put(cache, CACHE_REVOCATION, "jti1", 4, "live", 4,
	    SEC, T0, &t), FA_DENIED);
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "jti1", T0, out, sizeof out),
	    FA_NOTFOUND);
	/* Other kinds are not disturbed. */
	ck_assert_int_eq(cache_put(cache, CACHE_CLIENT, "c", 1, "x", 1, SEC, T0,
	    &t2), FA_OK);
	/* A flush after the ticket. */
	cache_ticket(cache, CACHE_REVOCATION, &t);
	cache_flush(cache, CACHE_ALL);
	ck_assert_int_eq(cache_put(cache, CACHE_REVOCATION, "jti1", 4, "live", 4,
	    SEC, T0, &t), FA_DENIED);
	cache_ticket(cache, CACHE_REVOCATION, &t);
	ck_assert_int_eq(cache_put(cache, CACHE_REVOCATION, "jti1", 4, "revoked",
	    7, SEC, T0, &t), FA_OK);
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "jti1", T0, out, sizeof out),
	    FA_OK);
	ck_assert_str_eq(out, "revoked");
}
END_TEST

/* A cache_del landing while a put of the same kind is under way. */
static void
hook_del(enum shm_test_point point)
{
	if (point == SHM_TEST_CACHE_CLAIMED)
		cache_del(cache, CACHE_REVOCATION, "jti2", 4);
}

START_TEST(test_cache_del_during_put)
{
	char	out[64];

	/* The put's value was read before the deletion: it must not stay. */
	shm_test_hook = hook_del;
	ck_assert_int_eq(put_str(CACHE_REVOCATION, "jti2", "active", SEC, T0),
	    FA_DENIED);
	shm_test_hook = NULL;
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "jti2", T0, out, sizeof out),
	    FA_NOTFOUND);
	/* Also when the key was cached before. */
	ck_assert_int_eq(put_str(CACHE_REVOCATION, "jti2", "active", SEC, T0),
	    FA_OK);
	shm_test_hook = hook_del;
	ck_assert_int_eq(put_str(CACHE_REVOCATION, "jti2", "active", SEC, T0),
	    FA_DENIED);
	shm_test_hook = NULL;
	ck_assert_int_eq(get_str(CACHE_REVOCATION, "jti2", T0, out, sizeof out),
	    FA_NOTFOUND);
}
END_TEST

START_TEST(test_cache_flush_across_processes)
{
	char		out[64];
	uint64_t	gen = shm_generation(c_seg);
	pid_t		pid;

	ck_assert_int_eq(put_str(CACHE_CLIENT, "k1", "v1", 60 * SEC, T0), FA_OK);
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "k2", "v2", 60 * SEC, T0), FA_OK);
	if ((pid = fork()) == 0) {
		struct shm_params	 p;
		struct shm		*seg = NULL;
		char			*cause = NULL;

		params_small(&p, 64, 1024, 512);
		if (shm_open_segment(inst, &p, &seg, &cause) != FA_OK)
			_exit(1);
		cache_flush(shm_cache(seg), CACHE_ALL);
		_exit(0);
	}
	ck_assert(wait_ok(pid));
	ck_assert_uint_eq(shm_generation(c_seg), gen + 1);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "k1", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "k2", T0, out, sizeof out),
	    FA_NOTFOUND);
	ck_assert_int_eq(put_str(CACHE_CLIENT, "k1", "v1b", 60 * SEC, T0), FA_OK);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "k1", T0, out, sizeof out), FA_OK);
	ck_assert_str_eq(out, "v1b");
	/* shm_generation_bump is the same flush. */
	ck_assert_uint_eq(shm_generation_bump(c_seg), gen + 2);
	ck_assert_int_eq(get_str(CACHE_CLIENT, "k1", T0, out, sizeof out),
	    FA_NOTFOUND);
}
END_TEST

START_TEST(test_cache_clock_eviction)
{
	struct cache_stats	st;
	char			key[8], out[64];
	unsigned		i;

	cache_teardown();
	cache_setup_sized(8, 64);	/* one bucket */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(put_str(CACHE_CLIENT, key, key, 60 * SEC, T0),
		    FA_OK);
	}
	/* k0..k3 are used; k4..k7 never read since stored. */
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(get_str(CACHE_CLIENT, key, T0, out, sizeof out),
		    FA_OK);
	}
	for (i = 8; i < 12; i++) {
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(put_str(CACHE_CLIENT, key, key, 60 * SEC, T0),
		    FA_OK);
	}
	for (i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "k%u", i);
		ck_assert_int_eq(get_str(CACHE_CLIENT, key, T0, out, sizeof out),
		    (i >= 4 && i < 8) ? FA_NOTFOUND : FA_OK);
	}
	cache_stats(cache, T0, &st);
	ck_assert_uint_eq(st.evicted, 4);
	ck_assert_uint_eq(st.used, 8);
	/* An expired entry is taken before any valid one. */
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "short", "s", 10, T0), FA_OK);
	cache_stats(cache, T0, &st);
	ck_assert_uint_eq(st.evicted, 5);
	ck_assert_int_eq(put_str(CACHE_CLAIMS, "next", "n", 60 * SEC, T0 + 20),
	    FA_OK);
	cache_stats(cache, T0 + 20, &st);
	ck_assert_uint_eq(st.evicted, 5);
	ck_assert_int_eq(get_str(CACHE_CLAIMS, "next", T0 + 20, out, sizeof out),
	    FA_OK);
}
END_TEST

START_TEST(test_cache_counters)
{
	struct cache_stats	st;
	char			out[64];
	unsigned		i;

	for (i = 0; i < 3; i++)
		put_str(CACHE_CLIENT, "a", "1", SEC, T0);
	for (i = 0; i < 5; i++)
		get_str(CACHE_CLIENT, "a", T0, out, sizeof out);
	for (i = 0; i < 7; i++)
		get_str(CACHE_CLIENT, "b", T0, out, sizeof out);
	get_str(CACHE_REVOCATION, "a", T0, out, sizeof out);
	cache_stats(cache, T0, &st);
	ck_assert_uint_eq(st.puts[CACHE_CLIENT], 3);
	ck_assert_uint_eq(st.hits[CACHE_CLIENT], 5);
	ck_assert_uint_eq(st.misses[CACHE_CLIENT], 7);
	ck_assert_uint_eq(st.misses[CACHE_REVOCATION], 1);
	ck_assert_uint_eq(st.hits[CACHE_REVOCATION], 0);
	ck_assert_uint_eq(st.claimed, 0);
	ck_assert_uint_eq(st.dropped, 0);
}
END_TEST

/*
 * Writers and readers in several processes on a small table, so that keys
 * are overwritten and evicted under the readers all the time. Every value
 * carries its key and a checksum: a torn read cannot pass unnoticed.
 */
START_TEST(test_cache_concurrent_processes)
{
	struct cache_stats	st;
	pid_t			pids[4];
	int			start[2], i;

	cache_teardown();
	cache_setup_sized(64, 256);
	ck_assert_int_eq(pipe(start), 0);
	for (i = 0; i < 4; i++) {
		if ((pids[i] = fork()) != 0)
			continue;
		struct shm_params	 p;
		struct shm		*seg = NULL;
		char			*cause = NULL, key[16];
		uint8_t			 buf[256];
		size_t			 len;
		uint64_t		 until, n = 0, hits = 0;
		unsigned		 seed = (unsigned)getpid(), k, seq = 0;
		int			 rc;

		close(start[1]);
		params_small(&p, 64, 64, 256);
		if (shm_open_segment(inst, &p, &seg, &cause) != FA_OK)
			_exit(1);
		barrier_wait(start[0]);
		until = shm_now() + 1500 * 1000;
		while (shm_now() < until) {
			for (n = 0; n < 256; n++) {
				k = (unsigned)rand_r(&seed) % 200;
				snprintf(key, sizeof key, "key-%u", k);
				if (rand_r(&seed) % 2) {
					len = val_make(buf, sizeof buf, k, seq++,
					    (unsigned)rand_r(&seed));
					rc = cache_put(shm_cache(seg),
					    CACHE_CLIENT, key, strlen(key), buf,
					    len, 60 * SEC, shm_now(), NULL);
					if (rc != FA_OK && rc != FA_DENIED)
						_exit(2);
					continue;
				}
				rc = cache_get(shm_cache(seg), CACHE_CLIENT, key,
				    strlen(key), shm_now(), buf, sizeof buf, &len);
				if (rc == FA_OK) {
					if (!val_check(buf, len, k))
						_exit(3);	/* torn */
					hits++;
				} else if (rc != FA_NOTFOUND)
					_exit(4);
			}
		}
		_exit(hits > 0 ? 0 : 5);
	}
	close(start[0]);
	close(start[1]);
	for (i = 0; i < 4; i++)
		ck_assert_msg(wait_ok(pids[i]), "worker %d failed", i);
	cache_stats(cache, shm_now(), &st);
	ck_assert_uint_gt(st.hits[CACHE_CLIENT], 1000);
	ck_assert_uint_gt(st.puts[CACHE_CLIENT], 1000);
	ck_assert_uint_gt(st.evicted, 100);
	ck_assert_uint_eq(st.claimed, 0);
}
END_TEST


/* --- Argon2 admission ----------------------------------------------------- */

/* Slots are host-wide: a second view (another process) sees the same ones. */
START_TEST(test_admission_limit)
{
	struct shm_params	 p;
	struct shm		*seg, *seg2;
	struct admission	*a, *b;
	struct admission_stats	 st;
	pid_t			 pid;
	int			 status, sa, sb;

	params_small(&p, 64, 64, 64);
	seg = seg_open(inst_new(), &p);
	seg2 = seg_open(inst, &p);
	a = admission_new(shm_admission(seg), 2);
	b = admission_new(shm_admission(seg2), 2);
	ck_assert_int_eq(admission_acquire(a, 0, &sa), FA_OK);
	/* A child process takes the second slot. */
	pid = fork();
	if (pid == 0) {
		int rc = admission_acquire(b, 0, &sb);

		_exit(rc == FA_OK ? 0 : 1);	/* exits holding it: a "crash" */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	admission_stats(a, &st);
	ck_assert_int_eq(st.in_flight, 2);
	/* Full: a non-reclaiming first pass fails, then the dead child's slot is taken back. */
	ck_assert_int_eq(admission_acquire(b, 100, &sb), FA_OK);
	ck_assert_int_ne(sa, sb);
	admission_stats(a, &st);
	ck_assert_uint_ge(st.reclaimed, 1);
	ck_assert_int_eq(st.in_flight, 2);
	admission_release(b, sb);
	admission_stats(a, &st);
	ck_assert_int_eq(st.in_flight, 1);
	admission_release(a, sa);
	admission_stats(a, &st);
	ck_assert_int_eq(st.in_flight, 0);
	ck_assert_int_eq(st.waiting, 0);
	admission_free(a);
	admission_free(b);
	shm_close(seg2);
	shm_close(seg);
}
END_TEST

/* When every slot is held by a live process, a waiter gives up after its wait. */
START_TEST(test_admission_timeout)
{
	struct shm_params	 p;
	struct shm		*seg;
	struct admission	*a;
	struct admission_stats	 st;
	int			 fds[2], status, slot;
	pid_t			 pid;
	char			 c;

	params_small(&p, 64, 64, 64);
	seg = seg_open(inst_new(), &p);
	a = admission_new(shm_admission(seg), 1);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		if (admission_acquire(a, 0, &slot) != FA_OK)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();	/* alive, holding the slot */
		_exit(0);
	}
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	ck_assert_int_eq(admission_acquire(a, 30, &slot), FA_LIMIT);
	ck_assert_int_eq(slot, -1);
	admission_stats(a, &st);
	ck_assert_uint_eq(st.rejected, 1);
	ck_assert_int_eq(st.in_flight, 1);
	/* Killed holding it: the slot comes back. */
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(admission_acquire(a, 200, &slot), FA_OK);
	admission_release(a, slot);
	ck_assert_int_eq(admission_acquire(NULL, 0, &slot), FA_OK);	/* no segment: admit */
	ck_assert_int_eq(slot, -1);
	admission_free(a);
	shm_close(seg);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

static Suite *
shm_suite(void)
{
	Suite	*s = suite_create("shm");
	TCase	*tc;

	tc = tcase_create("segment");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_hash_vectors);
	tcase_add_test(tc, test_hash_lengths);
	tcase_add_test(tc, test_hash_aes4);
	tcase_add_test(tc, test_hash_spread);
	tcase_add_test(tc, test_create_attach);
	tcase_add_test(tc, test_fork_attach);
	tcase_add_test(tc, test_mismatch_size);
	tcase_add_test(tc, test_mismatch_version);
	tcase_add_test(tc, test_hash_recorded);
	tcase_add_test(tc, test_foreign_and_empty);
	tcase_add_test(tc, test_concurrent_create);
	tcase_add_test(tc, test_creator_dies_mid_init);
	tcase_add_test(tc, test_creator_stops_mid_init);
	tcase_add_test(tc, test_replacer_dies_before_unlink);
	tcase_add_test(tc, test_attach_existing);
	tcase_add_test(tc, test_unlink);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("ratelimit");
	tcase_add_checked_fixture(tc, rl_setup, rl_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_rl_policy_init);
	tcase_add_test(tc, test_rl_div_exact);
	tcase_add_test(tc, test_rl_burst_and_retry_after);
	tcase_add_test(tc, test_rl_against_model);
	tcase_add_test(tc, test_rl_sustained_rate);
	tcase_add_test(tc, test_rl_peek_and_reset);
	tcase_add_test(tc, test_rl_refund);
	tcase_add_test(tc, test_rl_keys_and_policies);
	tcase_add_test(tc, test_rl_table_full);
	tcase_add_test(tc, test_rl_duplicate_merged);
	tcase_add_test(tc, test_rl_flood);
	tcase_add_test(tc, test_rl_time_forward);
	tcase_add_test(tc, test_rl_processes_exact);
	tcase_add_test(tc, test_rl_counters_exact_preempted);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_checked_fixture(tc, cache_setup, cache_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_cache_put_get);
	tcase_add_test(tc, test_cache_limits);
	tcase_add_test(tc, test_cache_key_lengths);
	tcase_add_test(tc, test_cache_ttl);
	tcase_add_test(tc, test_cache_overwrite_del);
	tcase_add_test(tc, test_cache_kinds);
	tcase_add_test(tc, test_cache_ticket);
	tcase_add_test(tc, test_cache_del_during_put);
	tcase_add_test(tc, test_cache_flush_across_processes);
	tcase_add_test(tc, test_cache_clock_eviction);
	tcase_add_test(tc, test_cache_counters);
	tcase_add_test(tc, test_cache_concurrent_processes);
	suite_add_tcase(s, tc);

	tc = tcase_create("admission");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_admission_limit);
	tcase_add_test(tc, test_admission_timeout);
	suite_add_tcase(s, tc);
	return s;
}

/* Unlink every segment this run named, even those of failed tests. */
static void
cleanup_segments(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 prefix[64], name[300];

	snprintf(prefix, sizeof prefix, "fastauth.tshm-%d-", (int)main_pid);
	if ((d = opendir("/dev/shm")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(name, sizeof name, "/%s", de->d_name);
		shm_unlink(name);
	}
	closedir(d);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	main_pid = getpid();
	sr = srunner_create(shm_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (getpid() == main_pid)
		cleanup_segments();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
