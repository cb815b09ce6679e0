/*
 * tokenlist.c -- a strict parser for a JSON array of strings (tokenlist.h).
 *
 * Why not jansson: a batch is up to thousands of short strings, and a general
 * parser allocates a node per element plus a copy of each string; here every
 * string is decoded in place (a decoded string is never longer than its
 * encoding, so the write position never passes the read position) and the
 * caller gets pointers into its own buffer. Nothing is allocated, nothing
 * recurses, and each byte is looked at once.
 */
#include <stdint.h>
#include <string.h>

#include "core/fastauth.h"
#include "http/tokenlist.h"

/* 1 for the bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const unsigned char tokenlist_plain[256] = {
	[0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,
};

struct tokenlist_cursor {
	char	*p;		/* next byte to read */
	char	*end;
};

static void
tokenlist_ws(struct tokenlist_cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' ||
	    *c->p == '\r'))
		c->p++;
}

static int
tokenlist_hex4(const char *p, unsigned *v)
{
	unsigned x = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char ch = p[i];

		x <<= 4;
		if (ch >= '0' && ch <= '9')
			x |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			x |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			x |= (unsigned)(ch - 'A' + 10);
		else
			return FA_ERR;
	}
	*v = x;
	return FA_OK;
}

/* Write code point cp (valid, not a surrogate) as UTF-8 at *w. */
static void
tokenlist_put_utf8(char **w, unsigned cp)
{
	unsigned char *o = (unsigned char *)*w;

	if (cp < 0x80) {
		*o++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*o++ = (unsigned char)(0xc0 | cp >> 6);
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xe0 | cp >> 12);
		*o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (unsigned char)(0xf0 | cp >> 18);
		*o++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*w = (char *)o;
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms,
 * no surrogates, at most U+10FFFF), 0 if there is none before end.
 */
static size_t
tokenlist_utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* One string starting at the opening quote; decoded in place into *item. */
static int
tokenlist_string(struct tokenlist_cursor *c, struct tokenlist_item *item)
{
	char *w, *start;
	unsigned cp, lo;
	size_t n;

	if (c->p >= c->end || *c->p != '"')
		return FA_ERR;
	start = w = ++c->p;
	while (c->p < c->end) {
		unsigned char ch;
		char *run = c->p;

		/*
		 * A run of plain ASCII (a whole token, usually) in a tight loop;
		 * moved only once an escape has put the output behind the input.
		 */
		while (run < c->end && tokenlist_plain[(unsigned char)*run])
			run++;
		if (run != c->p) {
			if (w != c->p)
				memmove(w, c->p, (size_t)(run - c->p));
			w += run - c->p;
			c->p = run;
			continue;
		}
		ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			*w = '\0';	/* w < the quote just read */
			item->s = start;
			item->len = (size_t)(w - start);
			return FA_OK;
		}
		if (ch < 0x20)
			return FA_ERR;
		if (ch >= 0x80) {
			if ((n = tokenlist_utf8_len((unsigned char *)c->p,
			    (unsigned char *)c->end)) == 0)
				return FA_ERR;
			while (n-- > 0)
				*w++ = *c->p++;
			continue;
		}
		if (c->end - c->p < 2)
			return FA_ERR;
		switch (c->p[1]) {
		case '"':  *w++ = '"';  break;
		case '\\': *w++ = '\\'; break;
		case '/':  *w++ = '/';  break;
		case 'b':  *w++ = '\b'; break;
		case 'f':  *w++ = '\f'; break;
		case 'n':  *w++ = '\n'; break;
		case 'r':  *w++ = '\r'; break;
		case 't':  *w++ = '\t'; break;
		case 'u':
			if (c->end - c->p < 6 || tokenlist_hex4(c->p + 2, &cp) != FA_OK)
				return FA_ERR;
			c->p += 6;
			if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
				return FA_ERR;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
				    tokenlist_hex4(c->p + 2, &lo) != FA_OK ||
				    lo < 0xdc00 || lo > 0xdfff)
					return FA_ERR;
				c->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			tokenlist_put_utf8(&w, cp);
			continue;
		default:
			return FA_ERR;
		}
		c->p += 2;
	}
	return FA_ERR;	/* unterminated */
}

int
tokenlist_parse(char *buf, size_t len, struct tokenlist_item *items, int max,
    int *n, enum tokenlist_error *err, size_t *where)
{
	struct tokenlist_cursor c = { buf, buf + len };
	int count = 0;

	*n = 0;
	*err = TOKENLIST_ERR_SYNTAX;
	tokenlist_ws(&c);
	if (c.p >= c.end || *c.p != '[')
		goto bad;
	c.p++;
	tokenlist_ws(&c);
	if (c.p < c.end && *c.p == ']') {
		c.p++;
		goto done;
	}
	for (;;) {
		if (count >= max) {
			*err = TOKENLIST_ERR_TOO_MANY;
			goto bad;
		}
		if (tokenlist_string(&c, &items[count]) != FA_OK)
			goto bad;
		count++;
		tokenlist_ws(&c);
		if (c.p >= c.end)
			goto bad;
		if (*c.p == ']') {
			c.p++;
			break;
		}
		if (*c.p != ',')
			goto bad;
		c.p++;
		tokenlist_ws(&c);
	}
done:
	tokenlist_ws(&c);
	if (c.p != c.end)
		goto bad;
	*n = count;
	*err = TOKENLIST_OK;
	return FA_OK;
bad:
	if (where != NULL)
		*where = (size_t)(c.p - buf);
	return FA_ERR;
}
