#ifndef EP_USERINFO_H
#define EP_USERINFO_H

struct request;
struct response;
struct service_thread;

/* GET and POST /oauth2/userinfo (OpenID Connect Core §5.3, RFC 6750 bearer). */
void	ep_userinfo_handle(struct service_thread *, struct request *, struct response *);

#endif
