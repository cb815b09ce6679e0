#ifndef EP_TOKEN_H
#define EP_TOKEN_H

struct request;
struct response;
struct service_thread;

/* POST /oauth2/token (RFC 6749 §4.4 client_credentials; §5.1/§5.2 answers). */
void	ep_token_handle(struct service_thread *, struct request *, struct response *);

#endif
