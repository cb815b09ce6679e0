/*
 * buf.h -- a growable byte buffer, used to build responses, JSON and Redis keys.
 * The struct is public so callers can read data/len; data is always NUL-terminated.
 */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;	/* NUL-terminated; NULL until the first append */
	size_t	 len;	/* bytes used, without the NUL */
	size_t	 cap;	/* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

void	buf_init(struct buf *);
/* Release the memory; the buffer may be reused after buf_init. Accepts NULL. */
void	buf_free(struct buf *);
/* Forget the contents but keep the memory (per-request reuse). */
void	buf_reset(struct buf *);
/* Like buf_free, but wipes the bytes first (secrets). */
void	buf_wipe(struct buf *);
void	buf_append(struct buf *, const void *, size_t);
void	buf_puts(struct buf *, const char *);
void	buf_putc(struct buf *, char);
void	buf_printf(struct buf *, const char *, ...) __attribute__((format(printf, 2, 3)));
void	buf_vprintf(struct buf *, const char *, va_list);
/* Make room for n more bytes and return a pointer to them; commit with buf_commit. */
char	*buf_reserve(struct buf *, size_t n);
void	buf_commit(struct buf *, size_t n);

#endif
