/*
 * router.h -- maps a request to an endpoint, independent of the prefix the web
 * server mounts fastauth under (/, /auth, /idp/oauth...): the endpoint is found
 * by the end of the path, so no mount prefix needs configuring.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include "shm/metrics.h"

struct request;
struct response;
struct service_thread;

/*
 * Route and run the request, filling the response (404, 405 + Allow
 * included). Returns the endpoint it went to, for metrics.
 */
enum metrics_endpoint router_dispatch(struct service_thread *, struct request *,
	    struct response *);

#endif
