#ifndef EP_INTROSPECT_H
#define EP_INTROSPECT_H

struct request;
struct response;
struct service_thread;

/* POST /oauth2/introspect (RFC 7662), for clients allowed to introspect. */
void	ep_introspect_handle(struct service_thread *, struct request *, struct response *);

#endif
