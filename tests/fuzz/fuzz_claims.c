/*
 * fuzz_claims.c -- libFuzzer target for the user-claims validator
 * (store/users.c): claims JSON comes from the administrator's command line,
 * and what it accepts is what UserInfo serves. An accepted object's compact
 * form must validate again to the same text (a fixed point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "store/users.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size), *compact = NULL, *again = NULL;
	char *cause = NULL;

	if (users_claims_validate(s, &compact, &cause) == FA_OK) {
		free(cause);
		cause = NULL;
		if (users_claims_validate(compact, &again, &cause) != FA_OK ||
		    strcmp(compact, again) != 0)
			abort();
	}
	free(again);
	free(compact);
	free(cause);
	free(s);
	return 0;
}
