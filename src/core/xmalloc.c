/*
 * xmalloc.c -- allocation that cannot fail from the caller's point of view.
 *
 * An authorization server that runs out of memory cannot answer correctly, and
 * a NULL check at every call site is where bugs hide: abort here, once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

static void __attribute__((noreturn))
xmalloc_fatal(const char *what, size_t n)
{
	fprintf(stderr, "fastauth: %s(%zu): %s\n", what, n, strerror(errno));
	abort();
}

/* No object can be larger than PTRDIFF_MAX; refuse before the allocator sees it. */
static void
xmalloc_check(const char *what, size_t n)
{
	if (n > PTRDIFF_MAX) {
		errno = ENOMEM;
		xmalloc_fatal(what, n);
	}
}

void *
xmalloc(size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	xmalloc_check("malloc", n);
	if ((p = malloc(n)) == NULL)
		xmalloc_fatal("malloc", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	if (nmemb > PTRDIFF_MAX / size)
		xmalloc_check("calloc", SIZE_MAX);
	if ((p = calloc(nmemb, size)) == NULL)
		xmalloc_fatal("calloc", nmemb * size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void *p;

	if (n == 0)
		n = 1;
	xmalloc_check("realloc", n);
	if ((p = realloc(old, n)) == NULL)
		xmalloc_fatal("realloc", n);
	return p;
}

void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		xmalloc_fatal("reallocarray", SIZE_MAX);
	}
	return xrealloc(old, nmemb * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;
	size_t len = strnlen(s, n);

	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		xmalloc_fatal("vasprintf", 0);
	va_end(ap);
	return s;
}
