/*
 * fuzz_loaddist.c -- libFuzzer target for fastauth-load's --distribution
 * parser (src/load/dist.c). An accepted spec must have a positive total equal
 * to the sum of its weights, each within range, and every draw must land on
 * an operation with a weight; a refused one must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "load/dist.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dist d;
	char *s = xstrndup((const char *)data, size), *cause = NULL;
	uint64_t sum = 0;
	uint32_t r;
	int op;

	if (dist_parse(s, &d, &cause) == FA_OK) {
		if (cause != NULL || d.total == 0)
			abort();
		for (op = 0; op < DIST_NOPS; op++) {
			if (d.weight[op] > DIST_WEIGHT_MAX)
				abort();
			sum += d.weight[op];
		}
		if (sum != d.total)
			abort();
		for (r = 0; r < 64; r++) {
			op = dist_pick(&d, r * 2654435761u);
			if (op < 0 || op >= DIST_NOPS || d.weight[op] == 0)
				abort();
		}
	} else if (cause == NULL || strlen(cause) == 0)
		abort();
	free(cause);
	free(s);
	return 0;
}
