/*
 * fuzz_tokenlist.c -- libFuzzer target for tokenlist.c (batch introspection
 * bodies).
 *
 * Per input, parsed under a small and a large element limit:
 *  1. no crash, no read or write outside the buffer (the parse runs on an
 *     exact-size heap copy, so ASan sees any overrun);
 *  2. an accepted array: at most the limit, each string inside the buffer,
 *     NUL-terminated at len with no NUL before it; encoded again (every
 *     ASCII byte as \u00XX) and parsed, it gives the same strings;
 *  3. jansson as a second opinion: whenever it reads the input as an array
 *     of strings without NUL, within the limit, tokenlist agrees on every
 *     string; whenever tokenlist accepts, jansson accepts too.
 * A broken property calls abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "http/tokenlist.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_tokenlist: %s\n", what);
		abort();
	}
}

/* The input as jansson sees it: the array's strings, or n = -1. */
static json_t *
fuzz_jansson(const uint8_t *data, size_t size, int *n)
{
	json_error_t je;
	json_t *doc = json_loadb((const char *)data, size, 0, &je);
	size_t i;

	*n = -1;
	if (doc == NULL || !json_is_array(doc))
		return doc;
	for (i = 0; i < json_array_size(doc); i++) {
		json_t *e = json_array_get(doc, i);

		if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
			return doc;
	}
	*n = (int)json_array_size(doc);
	return doc;
}

static void
fuzz_parse(const uint8_t *data, size_t size, int max)
{
	struct tokenlist_item *items = xcalloc((size_t)max, sizeof *items);
	struct tokenlist_item *again = xcalloc((size_t)max, sizeof *again);
	enum tokenlist_error err;
	struct buf b = BUF_INIT;
	char *copy = xmalloc(size > 0 ? size : 1);
	json_t *doc;
	size_t where = 0, k;
	int n = -1, m = -1, jn, i, rc;

	memcpy(copy, data, size);
	rc = tokenlist_parse(copy, size, items, max, &n, &err, &where);
	doc = fuzz_jansson(data, size, &jn);
	if (rc != FA_OK) {
		fuzz_check(err == TOKENLIST_ERR_SYNTAX || err == TOKENLIST_ERR_TOO_MANY,
		    "bad error code");
		fuzz_check(where <= size, "error offset past the end");
		fuzz_check(jn < 0 || jn > max || err == TOKENLIST_ERR_TOO_MANY,
		    "refused what jansson reads as an array of strings");
		goto out;
	}
	fuzz_check(err == TOKENLIST_OK && n >= 0 && n <= max, "count");
	fuzz_check(jn == n, "jansson disagrees on the count");
	buf_putc(&b, '[');
	for (i = 0; i < n; i++) {
		const char *s = items[i].s;

		fuzz_check(s >= copy && s + items[i].len < copy + size, "string outside");
		fuzz_check(s[items[i].len] == '\0' && strlen(s) == items[i].len,
		    "length or NUL");
		fuzz_check(strcmp(s, json_string_value(json_array_get(doc, (size_t)i))) == 0,
		    "jansson disagrees on a string");
		if (i > 0)
			buf_putc(&b, ',');
		buf_putc(&b, '"');
		for (k = 0; k < items[i].len; k++) {
			unsigned char ch = (unsigned char)s[k];

			if (ch < 0x80)
				buf_printf(&b, "\\u%04X", ch);
			else
				buf_putc(&b, (char)ch);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, ']');
	fuzz_check(tokenlist_parse(b.data, b.len, again, max, &m, &err, NULL) == FA_OK &&
	    m == n, "round trip refused");
	for (i = 0; i < n; i++)
		fuzz_check(again[i].len == items[i].len &&
		    memcmp(again[i].s, items[i].s, items[i].len) == 0,
		    "round trip changed a string");
out:
	json_decref(doc);
	buf_free(&b);
	free(copy);
	free(items);
	free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size, 4);
	fuzz_parse(data, size, 1000);
	return 0;
}
