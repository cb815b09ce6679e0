#ifndef EP_REVOKE_H
#define EP_REVOKE_H

struct request;
struct response;
struct service_thread;

/* POST /oauth2/revoke (RFC 7009): deny-lists the token's jti in Redis. */
void	ep_revoke_handle(struct service_thread *, struct request *, struct response *);

#endif
