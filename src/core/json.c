/*
 * json.c -- JSON string escaping and key/value emission.
 *
 * Values can come from request input (a client id, a scope), so everything is
 * escaped; valid UTF-8 passes through and any byte that is not part of a valid
 * UTF-8 sequence becomes U+FFFD, so the output is always valid JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

static const char json_hex[] = "0123456789abcdef";
#define JSON_ONES	0x0101010101010101ULL
#define JSON_HIGHS	0x8080808080808080ULL
/* 1 for the bytes written as they are: printable ASCII but '"', '\\' and DEL. */
static const unsigned char json_plain[256] = {
	[0x20] = 1, [0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1,
};

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the
 * bytes there are not one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 */
static size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
json_quote(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char *start, *o;
	size_t i, len;

	/*
	 * Room for the worst case (every byte a 6-byte escape) once, then write
	 * in place: a byte at a time through buf_putc was most of the cost of
	 * an introspection answer.
	 */
	start = o = buf_reserve(b, n > (SIZE_MAX - 2) / 6 ? SIZE_MAX : 6 * n + 2);
	*o++ = '"';
	for (i = 0; i < n; i++) {
		unsigned char c;

		/*
		 * Eight bytes at a time while none needs escaping: no byte
		 * below 0x20 or from 0x7f up, no '"', no '\\' (the usual tests
		 * for a zero or a smaller byte in a word; a false alarm only
		 * sends the word through the byte loop).
		 */
		while (n - i >= 8) {
			uint64_t x, bad;

			memcpy(&x, u + i, 8);
			bad = ((x - JSON_ONES * 0x20) | x |
			    ((x ^ JSON_ONES * 0x22) - JSON_ONES) |
			    ((x ^ JSON_ONES * 0x5c) - JSON_ONES) |
			    (x + JSON_ONES)) & JSON_HIGHS;
			if (bad != 0)
				break;
			memcpy(o, u + i, 8);
			o += 8;
			i += 8;
		}
		if (i >= n)
			break;
		c = u[i];
		if (json_plain[c]) {
			*o++ = (char)c;
			continue;
		}
		switch (c) {
		case '"':  *o++ = '\\'; *o++ = '"'; break;
		case '\\': *o++ = '\\'; *o++ = '\\'; break;
		case '\n': *o++ = '\\'; *o++ = 'n'; break;
		case '\r': *o++ = '\\'; *o++ = 'r'; break;
		case '\t': *o++ = '\\'; *o++ = 't'; break;
		default:
			if (c < 0x80) {		/* control characters and DEL */
				memcpy(o, "\\u00", 4);
				o[4] = json_hex[c >> 4];
				o[5] = json_hex[c & 0xf];
				o += 6;
			} else if ((len = json_utf8_len(u + i, n - i)) > 0) {
				/* Valid UTF-8 (a user's name) passes through as is. */
				memcpy(o, s + i, len);
				o += len;
				i += len - 1;
			} else {
				/* Not UTF-8: the replacement character keeps the output JSON. */
				memcpy(o, "\\ufffd", 6);
				o += 6;
			}
		}
	}
	*o++ = '"';
	buf_commit(b, (size_t)(o - start));
}

static void
json_key(struct buf *b, int *first, const char *key)
{
	if (!*first)
		buf_putc(b, ',');
	*first = 0;
	json_quote(b, key, strlen(key));
	buf_putc(b, ':');
}

void
json_kv_str(struct buf *b, int *first, const char *key, const char *value)
{
	json_key(b, first, key);
	json_quote(b, value, strlen(value));
}

void
json_kv_int(struct buf *b, int *first, const char *key, long long value)
{
	char tmp[24], *p = tmp + sizeof tmp;
	unsigned long long v = value < 0 ? 0ULL - (unsigned long long)value :
	    (unsigned long long)value;

	json_key(b, first, key);
	/* By hand: vsnprintf twice (size, then text) cost more than the rest. */
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (value < 0)
		*--p = '-';
	buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void
json_kv_bool(struct buf *b, int *first, const char *key, int value)
{
	json_key(b, first, key);
	buf_puts(b, value ? "true" : "false");
}

void
json_kv_raw(struct buf *b, int *first, const char *key, const char *raw)
{
	json_key(b, first, key);
	buf_puts(b, raw);
}
