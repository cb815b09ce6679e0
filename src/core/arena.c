/*
 * arena.c -- per-request bump allocator (see arena.h).
 *
 * Chunks are plain malloc blocks chained newest first. An allocation that
 * does not fit the head chunk gets a new chunk at least twice the head's
 * size (or the allocation's size), so a request that outgrows the arena
 * costs a logarithmic number of mallocs. At reset, a request that needed
 * several chunks leaves behind one chunk the size of their sum, so the same
 * request next time is served from one chunk; that chunk never grows past
 * ARENA_KEEP_MAX, so one huge request does not pin its memory for the life
 * of the thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/xmalloc.h"

#define ARENA_ALIGN	16
#define ARENA_MIN	1024
#define ARENA_KEEP_MAX	(1024 * 1024)

struct arena_chunk {
	struct arena_chunk	*next;
	size_t			 size;	/* bytes of data[] */
	size_t			 used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static struct arena_chunk *
arena_chunk_new(size_t size)
{
	struct arena_chunk *c;

	if (size > SIZE_MAX - sizeof *c)
		abort();
	c = xmalloc(sizeof *c + size);
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

void
arena_init(struct arena *a, size_t size)
{
	a->head = NULL;
	a->chunk_size = size < ARENA_MIN ? ARENA_MIN : size;
	a->used = 0;
	a->chunks = 0;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t off, size;

	if (n > SIZE_MAX - ARENA_ALIGN)
		abort();
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (c == NULL || c->size - c->used < n) {
		size = c == NULL ? a->chunk_size : c->size * 2;
		if (size < n)
			size = n;
		c = arena_chunk_new(size);
		c->next = a->head;
		a->head = c;
		a->chunks++;
	}
	off = c->used;
	c->used += n;
	a->used += n;
	return c->data + off;
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void
arena_reset(struct arena *a)
{
	struct arena_chunk *c, *next;
	size_t want = a->used;

	for (c = a->head; c != NULL; c = c->next)
		explicit_bzero(c->data, c->used);
	if (a->chunks <= 1) {
		if (a->head != NULL)
			a->head->used = 0;
		a->used = 0;
		return;
	}
	/* Several chunks: replace them by one that holds this request. */
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->chunks = 0;
	a->used = 0;
	if (want > ARENA_KEEP_MAX)
		want = ARENA_KEEP_MAX;
	if (want > a->chunk_size)
		a->chunk_size = want;
}

void
arena_free(struct arena *a)
{
	struct arena_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		explicit_bzero(c->data, c->used);
		free(c);
	}
	a->head = NULL;
	a->used = 0;
	a->chunks = 0;
}
