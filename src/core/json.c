/*
 * json.c -- JSON string escaping and key/value emission.
 *
 * Values can come from request input (a client id, a scope), so everything is
 * escaped; valid UTF-8 passes through and any byte that is not part of a valid
 * UTF-8 sequence becomes U+FFFD, so the output is always valid JSON.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

static const char json_hex[] = "0123456789abcdef";

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
	size_t i, len;

	buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = u[i];

		switch (c) {
		case '"':  buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				char esc[6] = { '\\', 'u', '0', '0',
				    json_hex[c >> 4], json_hex[c & 0xf] };
				buf_append(b, esc, sizeof esc);
			} else if (c < 0x80)
				buf_putc(b, (char)c);
			else if ((len = json_utf8_len(u + i, n - i)) > 0) {
				/* Valid UTF-8 (a user's name) passes through as is. */
				buf_append(b, s + i, len);
				i += len - 1;
			} else
				/* Not UTF-8: the replacement character keeps the output JSON. */
				buf_append(b, "\\ufffd", 6);
		}
	}
	buf_putc(b, '"');
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
	json_key(b, first, key);
	buf_printf(b, "%lld", value);
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
