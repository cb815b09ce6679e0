#ifndef EP_DISCOVERY_H
#define EP_DISCOVERY_H

struct request;
struct response;
struct service_thread;

/* Build the RFC 8414 metadata for issuer; caller frees. etag gets a quoted strong tag. */
char	*ep_discovery_build(const char *issuer, char etag[24]);
/* GET /.well-known/oauth-authorization-server, cacheable, with ETag/304. */
void	ep_discovery_handle(struct service_thread *, struct request *, struct response *);

#endif
