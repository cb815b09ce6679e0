/*
 * dist.h -- the request mix of fastauth-load: "--distribution" text such as
 * "token:30,introspect:60,userinfo:10" parsed into weights per operation.
 */
#ifndef DIST_H
#define DIST_H

#include <stdint.h>

enum dist_op {
	DIST_TOKEN,		/* client_credentials grant */
	DIST_INTROSPECT,	/* RFC 7662 introspection of a live access token */
	DIST_USERINFO,		/* UserInfo with a user's access token */
	DIST_PASSWORD,		/* password grant (Argon2id on the server) */
	DIST_REFRESH,		/* refresh_token grant (rotation) */
	DIST_NOPS
};

#define DIST_SPEC_MAX		256	/* bytes of spec text accepted */
#define DIST_WEIGHT_MAX		1000000

struct dist {
	uint32_t	weight[DIST_NOPS];	/* 0 = not in the mix */
	uint32_t	total;			/* sum of the weights, > 0 */
};

/*
 * Parse spec strictly: comma-separated name:weight items, names from
 * dist_op_name, weights 0 to DIST_WEIGHT_MAX in decimal, each name at most
 * once, no blanks, a positive total. FA_OK, or FA_ERR with *cause set to an
 * allocated message naming the offending item (caller frees).
 */
int		 dist_parse(const char *spec, struct dist *, char **cause);
/* The operation for a uniform random number r. */
enum dist_op	 dist_pick(const struct dist *, uint32_t r);
/* "token", "introspect", ...; NULL for an out-of-range op. */
const char	*dist_op_name(int op);

#endif
