/*
 * allocator: which malloc implementation fastauth runs on (configure
 * --with-allocator), checked at run time rather than taken on trust.
 */
#ifndef FA_SERVER_ALLOCATOR_H
#define FA_SERVER_ALLOCATOR_H

#include <stddef.h>

/*
 * Writes "NAME VERSION" into buf (caller's, len bytes), e.g. "jemalloc
 * 5.3.0-0-g54eaed1", and returns 0 when a block from malloc(3) is owned by
 * that allocator, -1 when it is not (a link-order mistake: the name is then
 * followed by " (NOT serving malloc)").
 */
int	allocator_describe(char *buf, size_t len);

#endif
