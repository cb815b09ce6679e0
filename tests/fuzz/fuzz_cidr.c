/*
 * fuzz_cidr.c -- libFuzzer target for address lists (core/cidr.c): the
 * metrics_allow configuration text, and the client address matched against
 * it (REMOTE_ADDR, from the web server). The input is split at the first
 * newline: list text, then an address. An accepted list is within bounds,
 * and a network always matches its own address.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr_list l;
	char *s = xstrndup((const char *)data, size), *addr, *cause = NULL;
	char text[INET6_ADDRSTRLEN];
	size_t i;

	if ((addr = strchr(s, '\n')) != NULL)
		*addr++ = '\0';
	if (cidr_list_parse(s, &l, &cause) == FA_OK) {
		if (l.n > CIDR_LIST_MAX)
			abort();
		for (i = 0; i < l.n; i++) {
			const struct cidr *c = &l.e[i];

			if ((c->family != 4 && c->family != 6) ||
			    c->bits > (c->family == 4 ? 32 : 128))
				abort();
			if (inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr,
			    text, sizeof text) == NULL || !cidr_list_match(&l, text))
				abort();
		}
		if (addr != NULL)
			(void)cidr_list_match(&l, addr);
	} else if (cause == NULL)
		abort();
	free(cause);
	free(s);
	return 0;
}
