/*
 * fuzz_form.c -- libFuzzer target for form.c.
 *
 * Per input:
 *  1. form_parse under a small and a large parameter limit: must not crash;
 *     an accepted form must hold non-empty, unique names, at most the limit,
 *     each found again by form_get, and must survive a round trip: encoded
 *     again (every byte as %XX) and parsed, it gives the same parameters;
 *  2. form_urldecode of the whole input: never longer than the input, no NUL
 *     in what it accepts.
 * A broken property calls abort(), which libFuzzer and the replay driver both
 * report as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "http/form.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_form: %s\n", what);
		abort();
	}
}

/* Append s percent-encoded, every byte as %XX (the most general encoding). */
static void
fuzz_encode(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		buf_printf(b, "%%%02X", (unsigned char)*s);
}

static void
fuzz_parse(const char *data, size_t size, int max)
{
	enum form_error err = (enum form_error)-1;
	struct form *f, *g;
	struct buf b = BUF_INIT;
	char *dup = NULL;
	int i, j, n;

	f = form_parse(data, size, max, &err, &dup);
	if (f == NULL) {
		fuzz_check(err == FORM_ERR_SYNTAX || err == FORM_ERR_DUPLICATE ||
		    err == FORM_ERR_TOO_MANY, "bad error code");
		fuzz_check((err == FORM_ERR_DUPLICATE) == (dup != NULL),
		    "dupname set iff duplicate");
		fuzz_check(dup == NULL || *dup != '\0', "empty dupname");
		free(dup);
		return;
	}
	fuzz_check(err == FORM_OK && dup == NULL, "success with an error");
	n = form_count(f);
	fuzz_check(n >= 0 && n <= max, "count over the limit");
	fuzz_check(form_name(f, n) == NULL && form_value(f, n) == NULL,
	    "parameter past the end");
	for (i = 0; i < n; i++) {
		const char *name = form_name(f, i), *value = form_value(f, i);

		fuzz_check(name != NULL && value != NULL && *name != '\0',
		    "missing or empty name");
		fuzz_check(form_get(f, name) == value, "form_get disagrees");
		for (j = 0; j < i; j++)
			fuzz_check(strcmp(form_name(f, j), name) != 0,
			    "duplicate accepted");
		if (i > 0)
			buf_putc(&b, '&');
		fuzz_encode(&b, name);
		buf_putc(&b, '=');
		fuzz_encode(&b, value);
	}
	g = form_parse(b.data != NULL ? b.data : "", b.len, max, &err, &dup);
	fuzz_check(g != NULL && form_count(g) == n, "round trip refused");
	for (i = 0; i < n; i++)
		fuzz_check(strcmp(form_name(f, i), form_name(g, i)) == 0 &&
		    strcmp(form_value(f, i), form_value(g, i)) == 0,
		    "round trip changed a parameter");
	form_free(g);
	form_free(f);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *out;
	int r;

	fuzz_parse(s, size, 4);
	fuzz_parse(s, size, 1024);

	out = xmalloc(size + 1);
	r = form_urldecode(s, size, out);
	fuzz_check(r == FA_ERR || (r >= 0 && (size_t)r <= size &&
	    strlen(out) == (size_t)r), "urldecode length");
	free(out);
	return 0;
}
