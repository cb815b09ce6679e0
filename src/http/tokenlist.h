/*
 * tokenlist.h -- the body of a batch introspection request: a JSON array of
 * strings (RFC 8259), parsed strictly, in place and without allocation.
 *
 * Accepted: optional white space, '[', zero or more JSON strings separated by
 * ',', ']', optional white space. Strings must be valid UTF-8 with no raw
 * control characters; escapes are decoded (\uXXXX to UTF-8, surrogate pairs
 * joined). Refused as syntax errors: any other value type, a trailing comma,
 * trailing bytes, a lone surrogate, and "\u0000" (a token is a C string here,
 * and a NUL inside one would let two different strings compare equal).
 */
#ifndef TOKENLIST_H
#define TOKENLIST_H

#include <stddef.h>

struct tokenlist_item {
	const char	*s;	/* NUL-terminated, points into the parsed buffer */
	size_t		 len;	/* bytes before the NUL */
};

enum tokenlist_error {
	TOKENLIST_OK = 0,
	TOKENLIST_ERR_SYNTAX,	/* not a JSON array of strings */
	TOKENLIST_ERR_TOO_MANY,	/* more than max elements */
};

/*
 * Parse len bytes at buf as an array of at most max strings, decoding each
 * string in place (buf is modified; buf[len] need not be NUL). items has room
 * for max entries; *n receives the count. FA_OK, or FA_ERR with *err and, for
 * a syntax error, *where the byte offset at which the parse failed.
 */
int	tokenlist_parse(char *buf, size_t len, struct tokenlist_item *items, int max,
	    int *n, enum tokenlist_error *err, size_t *where);

#endif
