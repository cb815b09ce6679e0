/*
 * dist.c -- parse and draw from a --distribution spec (see dist.h).
 *
 * The parser is strict on purpose: a mistyped name or a weight like "3O"
 * must stop the run with a message, not silently measure another mix.
 */
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "load/dist.h"

static const char *const dist_names[DIST_NOPS] = {
	"token", "introspect", "userinfo", "password", "refresh",
};

const char *
dist_op_name(int op)
{
	if (op < 0 || op >= DIST_NOPS)
		return NULL;
	return dist_names[op];
}

/* A printable copy of at most 40 bytes of s (n bytes), for messages. */
static char *
dist_show(const char *s, size_t n)
{
	char *out;
	size_t i;

	if (n > 40)
		n = 40;
	out = xstrndup(s, n);
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	return out;
}

static int
dist_fail(char **cause, const char *what, const char *item, size_t n)
{
	char *shown = dist_show(item, n);

	*cause = xasprintf("distribution item \"%s\": %s", shown, what);
	free(shown);
	return FA_ERR;
}

int
dist_parse(const char *spec, struct dist *d, char **cause)
{
	const char *p, *end, *colon, *item;
	int seen[DIST_NOPS] = { 0 };
	size_t len, n, i;
	uint64_t w;
	int op;

	memset(d, 0, sizeof *d);
	*cause = NULL;
	len = strlen(spec);
	if (len == 0) {
		*cause = xstrdup("distribution is empty (want e.g. \"token:30,introspect:60,userinfo:10\")");
		return FA_ERR;
	}
	if (len > DIST_SPEC_MAX) {
		*cause = xasprintf("distribution is longer than %d bytes", DIST_SPEC_MAX);
		return FA_ERR;
	}
	for (p = spec; p <= spec + len; p = end + 1) {
		item = p;
		end = strchr(p, ',');
		if (end == NULL)
			end = spec + len;
		n = (size_t)(end - item);
		if (n == 0)
			return dist_fail(cause, "empty item (stray comma?)", item, n);
		for (i = 0; i < n; i++)
			if (item[i] == ' ' || item[i] == '\t' || item[i] == '\n')
				return dist_fail(cause, "blanks are not allowed", item, n);
		colon = memchr(item, ':', n);
		if (colon == NULL)
			return dist_fail(cause, "want NAME:WEIGHT", item, n);
		for (op = 0; op < DIST_NOPS; op++)
			if (strlen(dist_names[op]) == (size_t)(colon - item) &&
			    memcmp(dist_names[op], item, (size_t)(colon - item)) == 0)
				break;
		if (op == DIST_NOPS)
			return dist_fail(cause, "unknown operation (known: token, "
			    "introspect, userinfo, password, refresh)", item, n);
		if (seen[op])
			return dist_fail(cause, "operation given twice", item, n);
		seen[op] = 1;
		if (colon + 1 == end)
			return dist_fail(cause, "weight missing", item, n);
		w = 0;
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9')
				return dist_fail(cause, "weight is not a whole number", item, n);
			w = w * 10 + (uint64_t)(*p - '0');
			if (w > DIST_WEIGHT_MAX)
				return dist_fail(cause, "weight above 1000000", item, n);
		}
		d->weight[op] = (uint32_t)w;
		d->total += (uint32_t)w;
		if (end == spec + len)
			break;
	}
	if (d->total == 0) {
		*cause = xstrdup("distribution: every weight is 0");
		return FA_ERR;
	}
	return FA_OK;
}

enum dist_op
dist_pick(const struct dist *d, uint32_t r)
{
	uint32_t x = r % d->total;
	int op;

	for (op = 0; op < DIST_NOPS - 1; op++) {
		if (x < d->weight[op])
			return (enum dist_op)op;
		x -= d->weight[op];
	}
	return (enum dist_op)op;
}
