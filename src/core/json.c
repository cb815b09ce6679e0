/*
 * json.c -- JSON string escaping and key/value emission.
 *
 * Values can come from request input (a client id, a scope), so everything is
 * escaped, including bytes that are not valid UTF-8 (as \u00XX) so the output
 * is always valid JSON.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

static const char json_hex[] = "0123456789abcdef";

void
json_string(struct buf *b, const char *s, size_t n)
{
	size_t i;

	buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"':  buf_append(b, "\\\"", 2); break;
		case '\\': buf_append(b, "\\\\", 2); break;
		case '\n': buf_append(b, "\\n", 2); break;
		case '\r': buf_append(b, "\\r", 2); break;
		case '\t': buf_append(b, "\\t", 2); break;
		default:
			if (c < 0x20 || c >= 0x7f) {
				char esc[6] = { '\\', 'u', '0', '0',
				    json_hex[c >> 4], json_hex[c & 0xf] };
				buf_append(b, esc, sizeof esc);
			} else
				buf_putc(b, (char)c);
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
	json_string(b, key, strlen(key));
	buf_putc(b, ':');
}

void
json_kv_str(struct buf *b, int *first, const char *key, const char *value)
{
	json_key(b, first, key);
	json_string(b, value, strlen(value));
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
