/*
 * buf.c -- growable NUL-terminated byte buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
buf_wipe(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

char *
buf_reserve(struct buf *b, size_t n)
{
	size_t need = b->len + n + 1;

	if (need < n)
		need = (size_t)-1;	/* xrealloc will abort */
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		/* Doubling past SIZE_MAX/2 would wrap to 0 and never end. */
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	char *dst = buf_reserve(b, n);

	if (n > 0)
		memcpy(dst, p, n);
	buf_commit(b, n);
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	if (b->len + 2 <= b->cap) {	/* the common case: room already */
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return;
	}
	buf_append(b, &c, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	vsnprintf(buf_reserve(b, (size_t)n), (size_t)n + 1, fmt, ap);
	buf_commit(b, (size_t)n);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}
