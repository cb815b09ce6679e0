#ifndef EP_INTROSPECT_H
#define EP_INTROSPECT_H

struct request;
struct response;
struct service_thread;

/* POST /oauth2/introspect (RFC 7662), for clients allowed to introspect. */
void	ep_introspect_handle(struct service_thread *, struct request *, struct response *);
/*
 * POST /oauth2/introspect/batch (an extension): client_secret_basic, a JSON
 * array of at most introspect_batch_max tokens; answers a JSON array of RFC
 * 7662 objects in the same order, streamed; 503 when revocation cannot be
 * checked.
 */
void	ep_introspect_batch_handle(struct service_thread *, struct request *,
	    struct response *);

#endif
