/*
 * fuzz_ratespec.c -- libFuzzer target for the rate-limit policy parser
 * (core/ratespec.c) and for the invalidation messages the mirror applies
 * (endpoints/lookup.c's grammar is exercised by the integration tests; this
 * covers the configuration text). An accepted policy must be in range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/ratespec.h"
#include "core/xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ratespec rs;
	char *s = xstrndup((const char *)data, size), *cause = NULL;

	if (ratespec_parse(s, &rs, &cause) == FA_OK) {
		if (rs.enabled && (rs.rate < 1 || rs.period_s < 1 || rs.period_s > 86400 ||
		    rs.burst < 1 || rs.by > RATESPEC_BY_USERNAME))
			abort();
		if (!rs.enabled && strcmp(s, "off") != 0)
			abort();
	} else if (cause == NULL)
		abort();
	free(cause);
	free(s);
	return 0;
}
