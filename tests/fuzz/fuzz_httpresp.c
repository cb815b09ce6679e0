/*
 * fuzz_httpresp.c -- libFuzzer target for fastauth-load's HTTP response
 * parser (src/load/httpc.c). The first byte chooses how the rest is cut
 * into pieces (as reads from a socket would cut it); the pieces are fed in
 * order, then end of stream. Whatever the cut, the verdict must be the same
 * as feeding everything at once, and a complete response must have a sane
 * status and a body within the limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "load/httpc.h"

#define FUZZ_BODY_MAX	4096

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Feed data in pieces of step bytes (0 = all at once); the final verdict. */
static enum httpc_rc
fuzz_feed(struct httpc_resp *r, const char *data, size_t n, size_t step, size_t *consumed)
{
	enum httpc_rc rc = HTTPC_MORE;
	size_t off = 0, len, used;

	*consumed = 0;
	while (off < n && rc == HTTPC_MORE) {
		len = step == 0 || n - off < step ? n - off : step;
		rc = httpc_resp_feed(r, data + off, len, &used);
		if (used > len)
			abort();
		off += used;
		if (rc == HTTPC_MORE && used != len)
			abort();	/* MORE must take everything it was given */
	}
	if (rc == HTTPC_MORE)
		rc = httpc_resp_eof(r);
	*consumed = off;
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpc_resp a, b;
	enum httpc_rc ra, rb;
	size_t ca, cb, step;

	if (size < 1)
		return 0;
	step = data[0] % 17;
	httpc_resp_init(&a, FUZZ_BODY_MAX);
	httpc_resp_init(&b, FUZZ_BODY_MAX);
	ra = fuzz_feed(&a, (const char *)data + 1, size - 1, 0, &ca);
	rb = fuzz_feed(&b, (const char *)data + 1, size - 1, step, &cb);
	if (ra != rb)
		abort();
	if (ra == HTTPC_DONE) {
		if (ca != cb || a.status != b.status || a.body.len != b.body.len ||
		    (a.body.len > 0 && memcmp(a.body.data, b.body.data, a.body.len) != 0))
			abort();
		if (a.status < 100 || a.status > 999 || a.body.len > FUZZ_BODY_MAX)
			abort();
		if (a.body.data != NULL && a.body.data[a.body.len] != '\0')
			abort();
	} else if (ra == HTTPC_ERR && (a.err == NULL || b.err == NULL))
		abort();
	/* A parser reset for the next response starts clean. */
	httpc_resp_reset(&a);
	if (a.status != 0 || a.body.len != 0)
		abort();
	httpc_resp_free(&a);
	httpc_resp_free(&b);
	return 0;
}
