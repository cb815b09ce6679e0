/*
 * cidr.c -- address lists for access control. inet_pton does the address
 * syntax; we add the prefix, the separators and the bounds. An IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
 * client) is matched as the IPv4 address it carries, so "127.0.0.1" allows
 * it whatever the web server's socket family.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"

static const uint8_t cidr_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Address text into family/addr. FA_OK or FA_ERR. */
static int
cidr_addr(const char *s, uint8_t *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = 4;
		return FA_OK;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		if (memcmp(addr, cidr_v4mapped, sizeof cidr_v4mapped) == 0) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			*family = 4;
		} else
			*family = 6;
		return FA_OK;
	}
	return FA_ERR;
}

/* 1 if the first bits of a and b agree. */
static int
cidr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

static int
cidr_entry(const char *tok, struct cidr *c, char **cause)
{
	char text[CIDR_TEXT_MAX + 1], *slash, *end = NULL;
	unsigned max, i;
	long bits;

	snprintf(text, sizeof text, "%s", tok);
	if ((slash = strchr(text, '/')) != NULL)
		*slash++ = '\0';
	if (cidr_addr(text, &c->family, c->addr) != FA_OK) {
		*cause = xasprintf("\"%s\" is not an IP address", text);
		return FA_ERR;
	}
	/* An IPv4-mapped network keeps its IPv6 prefix length: not supported. */
	max = c->family == 4 ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		bits = -1;
		if (*slash >= '0' && *slash <= '9' && strlen(slash) <= 3)
			bits = strtol(slash, &end, 10);
		if (bits < 0 || *end != '\0' || bits > (long)max ||
		    (c->family == 4 && strchr(text, ':') != NULL)) {
			*cause = xasprintf("bad prefix length in \"%s\"", tok);
			return FA_ERR;
		}
	}
	c->bits = (uint8_t)bits;
	for (i = (unsigned)bits; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8))) {
			*cause = xasprintf("\"%s\" has host bits set under its "
			    "/%ld prefix", tok, bits);
			return FA_ERR;
		}
	return FA_OK;
}

int
cidr_list_parse(const char *s, struct cidr_list *l, char **cause)
{
	char tok[CIDR_TEXT_MAX + 1];
	size_t len;

	memset(l, 0, sizeof *l);
	while (*s != '\0') {
		s += strspn(s, " \t,");
		if (*s == '\0')
			break;
		len = strcspn(s, " \t,");
		if (len > CIDR_TEXT_MAX) {
			*cause = xasprintf("an entry is longer than %d bytes",
			    CIDR_TEXT_MAX);
			return FA_ERR;
		}
		if (l->n == CIDR_LIST_MAX) {
			*cause = xasprintf("more than %d entries", CIDR_LIST_MAX);
			return FA_ERR;
		}
		memcpy(tok, s, len);
		tok[len] = '\0';
		if (cidr_entry(tok, &l->e[l->n], cause) != FA_OK)
			return FA_ERR;
		l->n++;
		s += len;
	}
	return FA_OK;
}

int
cidr_list_match(const struct cidr_list *l, const char *text)
{
	uint8_t family, addr[16];
	size_t i;

	if (text == NULL || strlen(text) > CIDR_TEXT_MAX ||
	    cidr_addr(text, &family, addr) != FA_OK)
		return 0;
	for (i = 0; i < l->n; i++)
		if (l->e[i].family == family &&
		    cidr_prefix_eq(addr, l->e[i].addr, l->e[i].bits))
			return 1;
	return 0;
}
