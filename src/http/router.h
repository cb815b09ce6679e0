/*
 * router.h -- maps a request to an endpoint, independent of the prefix the web
 * server mounts fastauth under (/, /auth, /idp/oauth...): the endpoint is found
 * by the end of the path, so no mount prefix needs configuring.
 */
#ifndef ROUTER_H
#define ROUTER_H

struct request;
struct response;
struct service_thread;

/* Route and run the request, filling the response (404, 405 + Allow included). */
void	router_dispatch(struct service_thread *, struct request *, struct response *);

#endif
