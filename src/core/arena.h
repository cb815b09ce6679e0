/*
 * arena.h -- a per-request bump allocator. A responder thread owns one arena;
 * what a request needs for its lifetime (the FastCGI parameters, the path)
 * is carved from it, and arena_reset after the answer wipes and releases it
 * all at once: no malloc or free per request once the arena has grown to the
 * size of a typical request.
 */
#ifndef ARENA_H
#define ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk	*head;		/* newest chunk first */
	size_t			 chunk_size;	/* size of the chunk kept across resets */
	size_t			 used;		/* bytes handed out since the last reset */
	size_t			 chunks;	/* chunks allocated since the last reset */
};

/* An empty arena whose first chunk will hold size bytes. */
void	arena_init(struct arena *, size_t size);
/* Wipe and free everything; the arena may be reused after arena_init. */
void	arena_free(struct arena *);
/*
 * n bytes aligned for any type, valid until the next arena_reset. Aborts when
 * memory is exhausted, like xmalloc. The arena owns the memory.
 */
void	*arena_alloc(struct arena *, size_t n);
/* A NUL-terminated copy of s[0..len) in the arena. */
char	*arena_strndup(struct arena *, const char *s, size_t len);
/*
 * End of a request: wipe every byte handed out (parameters carry credentials)
 * and keep one chunk, grown to what this request needed (up to a cap), so
 * the next request of that size fits without allocating.
 */
void	arena_reset(struct arena *);

#endif
