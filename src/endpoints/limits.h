/*
 * limits.h -- the rate-limit policies of the endpoints: one per endpoint
 * class, checked in the host's shared-memory limiter before any Redis work,
 * optionally followed by a cluster-wide check in Redis; 429 answers with
 * Retry-After and the IETF RateLimit-Policy / RateLimit fields.
 */
#ifndef LIMITS_H
#define LIMITS_H

#include "core/ratespec.h"

struct config;
struct request;
struct response;
struct service_thread;

enum limits_class {
	LIMITS_TOKEN, LIMITS_INTROSPECT, LIMITS_REVOKE, LIMITS_USERINFO,
	LIMITS_LOGIN, LIMITS_AUTHORIZER,
	LIMITS_SUSPECT,		/* addresses the anomaly detector flagged (monitor.h) */
	LIMITS_NCLASS
};

struct limits;

/* Build the policies from cfg. NULL and *cause on a bad policy. */
struct limits *limits_new(const struct config *, char **cause);
void	limits_free(struct limits *);
/* The class's name ("token"), for headers and metric labels. */
const char *limits_name(enum limits_class);
/* 1 if the class has a policy (not "off"). */
int	limits_enabled(const struct limits *, enum limits_class);
/* What the class is keyed by. */
enum ratespec_by limits_by(const struct limits *, enum limits_class);
/*
 * Count one request of key (client id, address or username as limits_by
 * says) in class. FA_OK allowed (or the class is off), FA_LIMIT after
 * writing the 429 answer.
 */
int	limits_check(struct service_thread *, enum limits_class, const char *key,
	    struct response *);
/*
 * Give back one request limits_check counted, for requests that turn out not
 * to count (a login that succeeded): charging before the work and refunding
 * after is what keeps concurrent requests from overrunning the budget.
 */
void	limits_refund(struct service_thread *, enum limits_class, const char *key);
/* The key for class from what the request carries (client id or address). */
const char *limits_key(const struct limits *, enum limits_class, const struct request *,
	    const char *client_id, const char *username);

#endif
