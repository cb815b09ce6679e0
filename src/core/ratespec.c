/*
 * ratespec.c -- parser of rate-limit policy text (see ratespec.h). Strict:
 * every word must be known and every number in range, so a typo in the
 * configuration stops start-up instead of silently disabling a limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/ratespec.h"
#include "core/xmalloc.h"

#define RATESPEC_MAX_RATE	100000000ULL
#define RATESPEC_MAX_PERIOD	86400ULL
#define RATESPEC_MAX_BURST	100000000ULL

/* A decimal number in [1, max] ending at a space, '/', a suffix or the end. */
static int
ratespec_number(const char **p, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (**p < '0' || **p > '9')
		return FA_ERR;
	errno = 0;
	v = strtoull(*p, &end, 10);
	if (errno != 0 || v < 1 || v > max)
		return FA_ERR;
	*p = end;
	*out = v;
	return FA_OK;
}

static int
ratespec_word(const char **p, const char *w)
{
	size_t n = strlen(w);

	if (strncmp(*p, w, n) != 0 || ((*p)[n] != ' ' && (*p)[n] != '\0'))
		return 0;
	*p += n;
	return 1;
}

int
ratespec_parse(const char *s, struct ratespec *out, char **cause)
{
	const char *p = s;
	uint64_t v;

	memset(out, 0, sizeof *out);
	if (strcmp(s, "off") == 0)
		return FA_OK;
	if (ratespec_number(&p, RATESPEC_MAX_RATE, &out->rate) != FA_OK || *p++ != '/')
		goto bad;
	if (ratespec_number(&p, RATESPEC_MAX_PERIOD, &v) != FA_OK)
		goto bad;
	if (*p == 'm')
		v *= 60, p++;
	else if (*p == 'h')
		v *= 3600, p++;
	else if (*p == 's')
		p++;
	if (v > RATESPEC_MAX_PERIOD)
		goto bad;
	out->period_s = v;
	out->burst = (uint32_t)(out->rate > RATESPEC_MAX_BURST ? RATESPEC_MAX_BURST : out->rate);
	out->by = RATESPEC_BY_CLIENT;
	while (*p == ' ') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if (ratespec_word(&p, "burst")) {
			while (*p == ' ')
				p++;
			if (ratespec_number(&p, RATESPEC_MAX_BURST, &v) != FA_OK)
				goto bad;
			out->burst = (uint32_t)v;
		} else if (ratespec_word(&p, "by")) {
			while (*p == ' ')
				p++;
			if (ratespec_word(&p, "client"))
				out->by = RATESPEC_BY_CLIENT;
			else if (ratespec_word(&p, "address"))
				out->by = RATESPEC_BY_ADDRESS;
			else if (ratespec_word(&p, "username"))
				out->by = RATESPEC_BY_USERNAME;
			else
				goto bad;
		} else if (ratespec_word(&p, "cluster"))
			out->cluster = 1;
		else
			goto bad;
	}
	if (*p != '\0')
		goto bad;
	out->enabled = 1;
	return FA_OK;
bad:
	*cause = xstrdup("expected \"off\" or \"N/PERIOD [burst B] "
	    "[by client|address|username] [cluster]\", PERIOD in seconds with an "
	    "optional s, m or h (at most 24 h)");
	return FA_ERR;
}
