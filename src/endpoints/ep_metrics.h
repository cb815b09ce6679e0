/*
 * ep_metrics.h -- GET /metrics: the host's counters in the Prometheus text
 * exposition format 0.0.4, summed over every responder process's slot in the
 * shared segment; for clients on metrics_allow and/or with the bearer token
 * of metrics_token_file, 403 for anyone else.
 */
#ifndef EP_METRICS_H
#define EP_METRICS_H

struct buf;
struct config;
struct request;
struct response;
struct service;
struct service_thread;
struct metrics_access;

/*
 * Who may scrape, from cfg (reads metrics_token_file). NULL and *cause on a
 * bad list or an unreadable or too short token file. Free with
 * ep_metrics_access_free (accepts NULL).
 */
struct metrics_access *ep_metrics_access_new(const struct config *, char **cause);
void	ep_metrics_access_free(struct metrics_access *);
/*
 * 1 if a request from remote_addr with this Authorization header (may be
 * NULL) may scrape, else 0. The token is compared in constant time.
 */
int	ep_metrics_allowed(const struct metrics_access *, const char *remote_addr,
	    const char *authorization);
/* Append the exposition of every family to b. */
void	ep_metrics_render(struct service *, struct buf *);
void	ep_metrics_handle(struct service_thread *, struct request *, struct response *);

#endif
