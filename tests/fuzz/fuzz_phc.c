/*
 * fuzz_phc.c -- libFuzzer target for the Argon2id PHC string parser
 * (crypto/password.c): stored hashes come from Redis, which an attacker with
 * write access to it controls. Whatever the parser accepts must encode back
 * to exactly the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "crypto/password.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct password_phc phc;
	char out[512], *cause = NULL;

	if (password_phc_parse((const char *)data, size, &phc, &cause) == FA_OK) {
		if (password_phc_encode(&phc, out, sizeof out) < 0 ||
		    strlen(out) != size || memcmp(out, data, size) != 0)
			abort();
	}
	free(cause);
	return 0;
}
