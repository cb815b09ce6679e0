/*
 * shm.h -- the per-instance POSIX shared memory segment ("/fastauth.<instance>")
 * that every fastauth process of a host attaches: the rate limiter, the L1
 * cache, the metrics slots and the anomaly table live in it (shm/ratelimit.h,
 * shm/cache.h, shm/metrics.h, shm/anomaly.h).
 *
 * Processes have no common parent, so the segment is created by whichever
 * comes first and attached by the rest; a segment of another layout version or
 * size is replaced, never misread; a process killed at any instruction leaves
 * it usable. Times are microseconds of CLOCK_MONOTONIC (shm_now), which all
 * processes of the host share.
 */
#ifndef SHM_H
#define SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* glibc 2.35+ registers an rseq area per thread (shm_stripe reads it). */
#if defined(__has_include) && defined(__has_builtin) && defined(__GLIBC__)
#if __has_include(<sys/rseq.h>) && __has_builtin(__builtin_thread_pointer)
#include <sys/rseq.h>
#define SHM_HAVE_RSEQ	1
#endif
#endif

#include "shm/cache.h"
#include "shm/ratelimit.h"

#define SHM_INSTANCE_MAX	64	/* bytes of an instance name */
#define SHM_VERSION		6	/* layout version written in the header */

/* Defaults for the configuration keys that size the segment. */
#define SHM_DEFAULT_RATELIMIT_ENTRIES	524288
#define SHM_DEFAULT_CACHE_ENTRIES	16384
#define SHM_DEFAULT_CACHE_VALUE_MAX	512
#define SHM_DEFAULT_METRICS_SLOTS	64
#define SHM_DEFAULT_ANOMALY_ENTRIES	4096

/* Sizes of the regions; all processes of an instance must use the same. */
struct shm_params {
	uint32_t	ratelimit_entries;	/* limiter slots, 8..2^26; rounded up to 8 x 2^k */
	uint32_t	cache_entries;		/* cache slots, 8..2^24; rounded up to 8 x 2^k */
	uint32_t	cache_value_max;	/* bytes of one cached value, 1..65536 */
	uint32_t	metrics_slots;		/* processes with a metrics slot, 1..4096 */
	uint32_t	anomaly_entries;	/* addresses tracked, 16..2^20; rounded up to 4 x 2^k */
};

struct shm;
struct admission_region;
struct mirror_region;

struct shm_stats {
	uint64_t		segment_id;	/* random, fixed at initialisation */
	uint64_t		size;		/* bytes of the segment */
	uint32_t		version;	/* layout version */
	uint32_t		hashalg;	/* the tables' hash (enum shm_hashalg) */
	int32_t			creator_pid;	/* process that initialised it */
	uint64_t		created;	/* shm_now() at initialisation, us */
	uint64_t		generation;	/* cache generation (bumped by a full flush) */
	int			current;	/* 0 once replaced by a segment of other size */
	struct ratelimit_stats	ratelimit;
	struct cache_stats	cache;
};

/* Fill params with the defaults above. */
void	shm_params_default(struct shm_params *);
/*
 * Attach the segment of instance (letters, digits, '-', '_', '.'), creating
 * and initialising it if no process has, or replacing one of another layout
 * version or size. Waits at most a few seconds for another process's
 * initialisation. FA_OK and *out (free with shm_close), or FA_ERR and *cause
 * (caller frees).
 */
int	shm_open_segment(const char *instance, const struct shm_params *,
	    struct shm **out, char **cause);
/*
 * Attach the segment of instance as it is, whatever its sizes, never creating
 * or replacing it: for tools (fastauthctl), whose configuration may differ
 * from the running servers'. FA_OK and *out; FA_NOTFOUND if there is none or
 * it is not initialised; FA_ERR and *cause (another layout version, a size
 * that does not add up, a system error).
 */
int	shm_attach_existing(const char *instance, struct shm **out, char **cause);
/* Detach; the segment stays for the other processes. Accepts NULL. */
void	shm_close(struct shm *);
/*
 * Remove the segment's name and mark it replaced, so attached processes see
 * shm_is_current() == 0. FA_OK (also if there was none) or FA_ERR and *cause.
 */
int	shm_unlink_segment(const char *instance, char **cause);
/*
 * 1 while the segment is the one its name designates; 0 once replaced or
 * unlinked: the caller should shm_close and attach again. One shared load.
 */
int	shm_is_current(struct shm *);
/* The regions' process-local views, owned by the struct shm. */
struct ratelimit *shm_ratelimit(struct shm *);
struct cache	*shm_cache(struct shm *);
struct metrics	*shm_metrics(struct shm *);
struct anomaly	*shm_anomaly(struct shm *);
enum shm_region { SHM_REGION_RATELIMIT, SHM_REGION_CACHE, SHM_REGION_METRICS,
	SHM_REGION_ANOMALY };
/* Base address of a region in this process and its size (benchmarks, tools). */
void	*shm_region(struct shm *, enum shm_region, size_t *size);
/* The Argon2 admission slots (shm/admission.h), in the header. */
struct admission_region *shm_admission(struct shm *);
/* The revocation mirror's shared state (shm/mirror.h), in the header. */
struct mirror_region *shm_mirror(struct shm *);
/* The cache generation: all cached entries are stale once it moves. */
uint64_t shm_generation(struct shm *);
/* Bump the generation (fastauthctl cache flush); returns the new value. */
uint64_t shm_generation_bump(struct shm *);
/* Occupancy and counters; scans the tables, so for fastauthctl, not per request. */
void	shm_stats(struct shm *, uint64_t now, struct shm_stats *);
/* CLOCK_MONOTONIC in microseconds: per boot, the same in every process of the host. */
uint64_t shm_now(void);

/* --- shared with ratelimit.c and cache.c --------------------------------- */

#define SHM_HASHKEY_LEN	16

/*
 * SipHash-1-3 under key of the 8-byte domain (little-endian) followed by n
 * bytes: the tables' hash where the CPU has no AES instructions, and what
 * derives the AES4 hash's keys.
 */
uint64_t shm_hash(const uint8_t key[SHM_HASHKEY_LEN], uint64_t domain,
	    const void *, size_t n);

/*
 * The tables' keyed hash (ratelimit.c, cache.c, anomaly.c) is one of two
 * functions, fixed per segment by the process that creates it (shm.c has
 * both): SHM_HASH_AES4 where the CPU has AES instructions, else
 * SHM_HASH_SIPHASH. Either way the key is random per segment, so no client
 * can choose keys that collide.
 */
enum shm_hashalg {
	SHM_HASH_SIPHASH = 1,
	SHM_HASH_AES4 = 2
};
/* The function this process gives a new segment: the fastest it can run. */
unsigned shm_hash_best(void);
/* 1 if this process can compute alg, else 0. */
int	shm_hash_supported(unsigned alg);
/* "siphash-1-3", "aes4" or "unknown": for fastauthctl and benchmarks. */
const char *shm_hash_name(unsigned alg);

/*
 * A hash prepared for one domain (a table and a kind of key) at attach time,
 * so that each lookup only hashes the key: the SipHash state after the
 * domain block, or AES4's keys derived for the domain. alg must be supported.
 */
struct shm_hashstate {
	uint64_t	v[4];		/* SipHash state; AES4 start and length keys */
	uint64_t	rk[8];		/* AES4 round keys */
	unsigned	alg;
};
void	 shm_hash_prepare(struct shm_hashstate *, unsigned alg,
	    const uint8_t key[SHM_HASHKEY_LEN], uint64_t domain);
/* The hash of n bytes; for SHM_HASH_SIPHASH, shm_hash's value. */
uint64_t shm_hash_prepared(const struct shm_hashstate *, const void *, size_t n);

/*
 * Owner words mark who holds a claim, and are what lets another process take
 * a claim over when its holder is dead: 2-bit tag | 22-bit pid | 40-bit
 * CLOCK_BOOTTIME milliseconds at the claim. 0 is "nobody". All processes of an
 * instance must share a pid namespace (they do under one web server).
 */
#define SHM_OWNER_TAG(w)	((unsigned)((w) >> 62))
uint64_t shm_owner_make(unsigned tag);
/* Milliseconds since the claim was made (0 if it is in the future). */
uint64_t shm_owner_age_ms(uint64_t);
/*
 * 1 if the claim's holder is certainly gone: no such pid, a zombie, or a pid
 * reused by a process started after the claim; 0 if it may be alive. Reads
 * /proc: for recovery paths only.
 */
int	shm_owner_dead(uint64_t);

/*
 * Counters are striped so that callers running at the same time increment
 * different cache lines: the stripe of the CPU the caller is running on. Up
 * to SHM_STRIPES CPUs, two callers running at once never share one whatever
 * their pids -- a stripe picked once from the tid, as before, was shared by
 * any two processes whose pids agree mod 16 (some pair among 4 responders in
 * one start out of three), and then every check moved that line between
 * cores. Increments stay atomic, so a thread that migrates between reading
 * its CPU and incrementing costs a shared line for a moment, never a count.
 * The CPU is read from the rseq area glibc (2.35+) registers for the thread
 * and the kernel keeps current: one load. Where there is none (older glibc,
 * rseq disabled, valgrind), a stripe is picked once per thread from its tid.
 */
#define SHM_STRIPES	16
extern __thread unsigned shm_stripe_cached;	/* stripe + 1; 0 = not yet picked */
unsigned shm_stripe_pick(void);
static inline unsigned
shm_stripe(void)
{
	unsigned	s;
#if SHM_HAVE_RSEQ
	if (__rseq_size != 0) {
		const struct rseq *rs = (const struct rseq *)(void *)
		    ((char *)__builtin_thread_pointer() + __rseq_offset);
		int32_t	cpu = (int32_t)__atomic_load_n(&rs->cpu_id,
			    __ATOMIC_RELAXED);

		if (cpu >= 0)
			return (unsigned)cpu % SHM_STRIPES;
	}
#endif
	s = shm_stripe_cached;
	return s != 0 ? s - 1 : shm_stripe_pick();
}

/*
 * Exact counters without a locked instruction. A region keeps, beside its
 * SHM_STRIPES shared stripes, one block of counters per CPU for the first
 * SHM_CPUS CPUs. On x86-64 with rseq, shm_count adds 1 to this CPU's block
 * with a plain add inside an rseq critical section: the kernel sends the
 * thread to the abort path if it is preempted, migrated or signalled before
 * the add, so only threads running on that very CPU ever write its block,
 * one instruction at a time, and no count is lost -- without the lock
 * prefix, which cost the limiter a tenth of a check (bench_shm: a locked add
 * waits for the CAS before it and holds back the next check's loads). A
 * process killed anywhere has counted its request or not, as with an atomic
 * add. Everywhere else (no rseq, valgrind, another architecture, a CPU
 * number >= SHM_CPUS, an aborted section), the add is atomic on a shared
 * stripe, which per-CPU adds never touch. Readers add up both sets.
 */
#define SHM_CPUS	64
#if SHM_HAVE_RSEQ && defined(__x86_64__) && defined(RSEQ_SIG)
#define SHM_HAVE_PERCPU	1
#define SHM_STR_(x)	#x
#define SHM_STR(x)	SHM_STR_(x)
/* 1 if *c was incremented on CPU cpu, 0 if the section aborted. */
static inline int
shm_rseq_inc(struct rseq *rs, uint64_t *c, uint32_t cpu)
{
	__asm__ __volatile__ goto (
		/* The critical section's descriptor: [1, 2), abort at 4. */
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3:\n\t"
		".long 0, 0\n\t"
		".quad 1f, 2f - 1f, 4f\n\t"
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %[cs]\n\t"
		"1:\n\t"
		"cmpl %[cpu], %[cur]\n\t"
		"jnz 4f\n\t"
		"addq $1, %[v]\n\t"
		"2:\n\t"
		/* The kernel checks the signature in the 4 bytes before 4. */
		".pushsection __rseq_failure, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long " SHM_STR(RSEQ_SIG) "\n\t"
		"4:\n\t"
		"jmp %l[aborted]\n\t"
		".popsection\n\t"
		:
		: [cs] "m" (rs->rseq_cs), [cpu] "r" (cpu), [cur] "m" (rs->cpu_id),
		  [v] "m" (*c)
		: "memory", "cc", "rax"
		: aborted);
	return 1;
aborted:
	return 0;
}
#endif

/*
 * Add 1 to the counter at byte offset off of a counter block: this CPU's
 * own among percpu (SHM_CPUS blocks of stride bytes), else atomically the
 * shared stripe's among shared (SHM_STRIPES blocks of stride bytes).
 */
static inline void
shm_count(void *percpu, void *shared, size_t stride, size_t off)
{
	unsigned	s;
#if SHM_HAVE_PERCPU
	if (__rseq_size != 0) {
		struct rseq	*rs = (struct rseq *)(void *)
				    ((char *)__builtin_thread_pointer() + __rseq_offset);
		uint32_t	 cpu = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);

		if (cpu < SHM_CPUS && shm_rseq_inc(rs, (uint64_t *)(void *)
		    ((char *)percpu + cpu * stride + off), cpu))
			return;
	}
#else
	(void)percpu;
#endif
	s = shm_stripe();
	atomic_fetch_add_explicit((_Atomic uint64_t *)(void *)
	    ((char *)shared + s * stride + off), 1, memory_order_relaxed);
}

/* Spin-wait hint for the bounded retry loops. */
static inline void
shm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Test hooks, NULL in production: called at points where a test wants a
 * process to die or stop (raise(SIGKILL), raise(SIGSTOP)).
 */
enum shm_test_point {
	SHM_TEST_INIT,		/* half-way through initialising a segment */
	SHM_TEST_DOOM,		/* segment marked replaced, name not yet unlinked */
	SHM_TEST_RATELIMIT_INSERT, /* limiter chose a slot for a new key, before CAS */
	SHM_TEST_CACHE_CLAIMED,	/* cache writer holds a claim, nothing written yet */
	SHM_TEST_CACHE_WRITE	/* cache writer holds a claim, entry half-written */
};
extern void	(*shm_test_hook)(enum shm_test_point);
/* Non-zero: the layout version to write and expect instead of SHM_VERSION. */
extern uint32_t	shm_test_version;
/*
 * Non-zero: this process computes only this hash, as on a CPU that has no
 * other: new segments get it, segments of another are foreign.
 */
extern unsigned	shm_test_hashalg;

#endif
