/*
 * malloc_count.c -- an LD_PRELOAD shim for bench/run allocations: counts the
 * calls that allocate (malloc, calloc, realloc, the aligned forms) and their
 * bytes, in the glibc allocator underneath. On SIGUSR2 it appends a line
 * "PID ALLOCATIONS BYTES" to the file $MALLOC_COUNT_OUT, so a benchmark can
 * take the counts of a running responder before and after N requests.
 *
 * Built by bench/run with the system compiler (cc -shared -fPIC); not part
 * of any installed program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ullong mc_count, mc_bytes;
static int mc_fd = -1;

static void
mc_add(size_t n)
{
	atomic_fetch_add_explicit(&mc_count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&mc_bytes, n, memory_order_relaxed);
}

void *malloc(size_t n) { mc_add(n); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { mc_add(a * b); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { mc_add(n); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { mc_add(n); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { mc_add(n); return __libc_memalign(a, n); }

int
posix_memalign(void **out, size_t a, size_t n)
{
	void *p;

	mc_add(n);
	if ((p = __libc_memalign(a, n)) == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

/* Decimal of v at the end of buf; returns where it starts. Signal-safe. */
static char *
mc_num(char *end, unsigned long long v)
{
	do
		*--end = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return end;
}

static void
mc_dump(int sig)
{
	char line[96], *p = line + sizeof line;
	int saved = errno;

	(void)sig;
	*--p = '\n';
	p = mc_num(p, atomic_load(&mc_bytes));
	*--p = ' ';
	p = mc_num(p, atomic_load(&mc_count));
	*--p = ' ';
	p = mc_num(p, (unsigned long long)getpid());
	if (mc_fd >= 0)
		(void)!write(mc_fd, p, (size_t)(line + sizeof line - p));
	errno = saved;
}

__attribute__((constructor)) static void
mc_init(void)
{
	const char *out = getenv("MALLOC_COUNT_OUT");
	struct sigaction sa;

	if (out == NULL)
		return;
	mc_fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = mc_dump;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
}
