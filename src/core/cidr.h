/*
 * cidr.h -- lists of IP addresses and networks ("127.0.0.1 10.0.0.0/8
 * ::1/128"), parsed once from the configuration and matched against the
 * textual client address a web server passes (REMOTE_ADDR).
 */
#ifndef CIDR_H
#define CIDR_H

#include <stddef.h>
#include <stdint.h>

#define CIDR_LIST_MAX	64	/* entries in one list */
#define CIDR_TEXT_MAX	64	/* bytes of one entry */

struct cidr {
	uint8_t		family;		/* 4 or 6 */
	uint8_t		bits;		/* prefix length: 0..32 or 0..128 */
	uint8_t		addr[16];	/* network, host bits zero */
};

struct cidr_list {
	size_t		n;
	struct cidr	e[CIDR_LIST_MAX];
};

/*
 * Parse entries separated by spaces, tabs or commas: an IPv4 or IPv6 address,
 * optionally /prefix. Host bits set under the prefix are an error (a typo
 * more often than intent). An empty text is an empty list. FA_OK, or FA_ERR
 * and *cause (caller frees).
 */
int	cidr_list_parse(const char *, struct cidr_list *, char **cause);
/*
 * 1 if the address text (IPv4, IPv6, or IPv4-mapped IPv6) lies in one of the
 * list's networks, 0 otherwise (also for text that is not an address).
 */
int	cidr_list_match(const struct cidr_list *, const char *addr);

#endif
