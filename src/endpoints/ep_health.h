#ifndef EP_HEALTH_H
#define EP_HEALTH_H

struct request;
struct response;
struct service_thread;

/* GET /health: the process answers. */
void	ep_health_live(struct service_thread *, struct request *, struct response *);
/* GET /ready: Redis answers and keys are loaded, else 503. */
void	ep_health_ready(struct service_thread *, struct request *, struct response *);

#endif
