/*
 * form.c -- application/x-www-form-urlencoded bodies (the token, introspection
 * and revocation endpoints).
 *
 * A parsed form is one allocation: the header, the parameter table, a sort
 * scratch table and a decoded copy of the body, which the names and values
 * point into. Decoding never lengthens a string, so each name and value is
 * decoded in place of its own encoded bytes in the copy, the '=' and '&'
 * separators becoming the terminating NULs. The form owns that block; nothing
 * refers to the caller's input after form_parse returns.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/arena.h"
#include "core/xmalloc.h"
#include "http/form.h"

struct form_param {
	const char	*name;		/* NUL-terminated, inside form->mem */
	const char	*value;		/* NUL-terminated, inside form->mem; "" if no '=' */
	size_t		 namelen;	/* strlen(name), for the duplicate sort */
};

struct form {
	int			 count;		/* parameters, <= max_params */
	char			*mem;		/* the decoded copy */
	size_t			 memsize;	/* bytes at mem: body length + 1 */
	int			 in_arena;	/* freed (and wiped) by the arena's reset */
	struct form_param	**order;	/* scratch: params sorted by name */
	struct form_param	 params[];	/* in order of appearance */
};

/* Hex digit value, or -1. */
static int
form_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
form_urldecode(const char *in, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0;
	int hi, lo;

	if (n > INT_MAX)
		return FA_ERR;	/* the length would not fit the return value */
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (n - i < 3 || (hi = form_hexval(p[i + 1])) < 0 ||
			    (lo = form_hexval(p[i + 2])) < 0)
				return FA_ERR;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		/* A NUL, raw or encoded, would silently truncate the C string. */
		if (c == '\0')
			return FA_ERR;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

/*
 * Order by length, then bytes, then position, so equal names end up adjacent
 * with the earlier one first. Sorting, rather than hashing, keeps the cost at
 * O(n log p) whatever names an attacker chooses.
 */
static int
form_cmp(const void *a, const void *b)
{
	const struct form_param *pa = *(struct form_param *const *)a;
	const struct form_param *pb = *(struct form_param *const *)b;
	int r;

	if (pa->namelen != pb->namelen)
		return pa->namelen < pb->namelen ? -1 : 1;
	if ((r = memcmp(pa->name, pb->name, pa->namelen)) != 0)
		return r;
	return pa < pb ? -1 : (pa > pb);
}

/* The first parameter (in order of appearance) whose name came before, or NULL. */
static const struct form_param *
form_find_duplicate(struct form *f)
{
	const struct form_param *dup = NULL;
	int i;

	if (f->count < 2)
		return NULL;
	for (i = 0; i < f->count; i++)
		f->order[i] = &f->params[i];
	qsort(f->order, (size_t)f->count, sizeof f->order[0], form_cmp);
	for (i = 1; i < f->count; i++) {
		const struct form_param *prev = f->order[i - 1], *cur = f->order[i];

		if (cur->namelen == prev->namelen &&
		    memcmp(cur->name, prev->name, cur->namelen) == 0 &&
		    (dup == NULL || cur < dup))
			dup = cur;
	}
	return dup;
}

struct form *
form_parse(const char *body, size_t len, int max_params, enum form_error *err,
    char **dupname)
{
	return form_parse_in(NULL, body, len, max_params, err, dupname);
}

struct form *
form_parse_in(struct arena *arena, const char *body, size_t len, int max_params,
    enum form_error *err, char **dupname)
{
	struct form *f = NULL;
	const struct form_param *dup;
	size_t i, start, count = 0, hdr;
	int r;

	if (dupname != NULL)
		*dupname = NULL;

	/* Count the non-empty segments first: refuse before allocating. */
	for (start = 0; start <= len; start = i + 1) {
		for (i = start; i < len && body[i] != '&'; i++)
			;
		if (i > start)
			count++;
	}
	if (count > (size_t)(max_params < 0 ? 0 : max_params)) {
		*err = FORM_ERR_TOO_MANY;
		return NULL;
	}

	hdr = sizeof *f + count * (sizeof f->params[0] + sizeof f->order[0]);
	f = arena != NULL ? arena_alloc(arena, hdr + len + 1) : xmalloc(hdr + len + 1);
	f->in_arena = arena != NULL;
	f->count = 0;
	f->order = (struct form_param **)(void *)&f->params[count];
	f->mem = (char *)f + hdr;
	f->memsize = len + 1;

	for (start = 0; start <= len; start = i + 1) {
		struct form_param *p;
		const char *eq;
		size_t end, nlen, vlen;

		for (i = start; i < len && body[i] != '&'; i++)
			;
		end = i;
		if (end == start)
			continue;	/* "a=1&&b=2", a trailing '&' */
		eq = memchr(body + start, '=', end - start);
		nlen = (eq != NULL ? (size_t)(eq - body) : end) - start;
		vlen = eq != NULL ? end - start - nlen - 1 : 0;

		p = &f->params[f->count++];
		/* Name decodes into [start, start+nlen], its NUL at most where '=' was. */
		if ((r = form_urldecode(body + start, nlen, f->mem + start)) <= 0)
			goto syntax;	/* bad escape, NUL, or empty name */
		p->name = f->mem + start;
		p->namelen = (size_t)r;
		if (eq != NULL) {
			if (form_urldecode(eq + 1, vlen, f->mem + start + nlen + 1) < 0)
				goto syntax;
			p->value = f->mem + start + nlen + 1;
		} else
			p->value = p->name + p->namelen;	/* the name's NUL: "" */
	}

	if ((dup = form_find_duplicate(f)) != NULL) {
		if (dupname != NULL)
			*dupname = xstrdup(dup->name);
		*err = FORM_ERR_DUPLICATE;
		goto fail;
	}
	*err = FORM_OK;
	return f;

syntax:
	*err = FORM_ERR_SYNTAX;
fail:
	form_free(f);
	return NULL;
}

void
form_free(struct form *f)
{
	if (f == NULL || f->in_arena)
		return;
	/* Bodies carry client secrets, passwords and refresh tokens. */
	explicit_bzero(f->mem, f->memsize);
	free(f);
}

const char *
form_get(const struct form *f, const char *name)
{
	int i;

	/* Linear: forms hold a handful of parameters (max_form_params). */
	for (i = 0; i < f->count; i++)
		if (strcmp(f->params[i].name, name) == 0)
			return f->params[i].value;
	return NULL;
}

int
form_count(const struct form *f)
{
	return f->count;
}

const char *
form_name(const struct form *f, int i)
{
	if (i < 0 || i >= f->count)
		return NULL;
	return f->params[i].name;
}

const char *
form_value(const struct form *f, int i)
{
	if (i < 0 || i >= f->count)
		return NULL;
	return f->params[i].value;
}
