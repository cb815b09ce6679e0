/*
 * ratespec.h -- the text form of a rate-limit policy, as written in
 * fastauth.conf:  off | N/PERIOD [burst B] [by client|address|username] [cluster]
 * PERIOD is a number of seconds with an optional s, m or h suffix; burst
 * defaults to N; "by" defaults to client; "cluster" adds a Redis-wide limit
 * across hosts behind the local one.
 */
#ifndef RATESPEC_H
#define RATESPEC_H

#include <stdint.h>

enum ratespec_by { RATESPEC_BY_CLIENT, RATESPEC_BY_ADDRESS, RATESPEC_BY_USERNAME };

struct ratespec {
	int		 enabled;	/* 0 for "off" */
	uint64_t	 rate;		/* requests ... */
	uint64_t	 period_s;	/* ... per this many seconds */
	uint32_t	 burst;		/* requests allowed at once */
	enum ratespec_by by;		/* what the key is */
	int		 cluster;	/* 1: also limit across hosts in Redis */
};

/* Parse s. FA_OK, or FA_ERR and *cause (caller frees). */
int	ratespec_parse(const char *s, struct ratespec *, char **cause);

#endif
