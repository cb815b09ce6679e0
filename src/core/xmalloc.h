/*
 * xmalloc.h -- allocation wrappers that abort on failure (tmux xmalloc.c style),
 * so callers never check for NULL. Everything they return is freed with free().
 */
#ifndef XMALLOC_H
#define XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
/* Grow an array of nmemb elements of size bytes; aborts on overflow. */
void	*xreallocarray(void *, size_t nmemb, size_t size);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* printf into a fresh string. */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
