/*
 * router.c -- the endpoint table and method checks.
 *
 * Web servers disagree on SCRIPT_NAME and PATH_INFO for a mounted FastCGI
 * application (lighttpd with and without fix-root-scriptname, Apache
 * mod_proxy_fcgi, mod_fcgid), but all pass the path the client asked for. So
 * an endpoint matches when the request path ends with its path at a '/'
 * boundary: "/auth/oauth2/token" and "/oauth2/token" both reach the token
 * endpoint, whatever the mount. The RFC 8414 form
 * "/.well-known/oauth-authorization-server/<issuer path>" is accepted too.
 */
#include <string.h>

#include "core/fastauth.h"
#include "endpoints/ep_discovery.h"
#include "endpoints/ep_health.h"
#include "endpoints/ep_introspect.h"
#include "endpoints/ep_metrics.h"
#include "endpoints/monitor.h"
#include "endpoints/ep_revoke.h"
#include "endpoints/ep_token.h"
#include "endpoints/ep_userinfo.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "http/router.h"

#define ROUTER_GET	0x1	/* GET and HEAD */
#define ROUTER_POST	0x2

typedef void (*router_handler)(struct service_thread *, struct request *, struct response *);

static const struct router_route {
	const char	*path;
	int		 methods;
	router_handler	 handler;
	enum metrics_endpoint ep;
	int		 guarded;	/* suspect addresses throttled (monitor.h) */
} router_routes[] = {
	{ "/oauth2/token",	ROUTER_POST,	ep_token_handle, METRICS_EP_TOKEN, 1 },
	{ "/oauth2/introspect",	ROUTER_POST,	ep_introspect_handle,
	    METRICS_EP_INTROSPECT, 1 },
	{ "/oauth2/revoke",	ROUTER_POST,	ep_revoke_handle, METRICS_EP_REVOKE, 1 },
	{ "/.well-known/oauth-authorization-server", ROUTER_GET, ep_discovery_handle,
	    METRICS_EP_DISCOVERY, 0 },
	{ "/.well-known/openid-configuration", ROUTER_GET, ep_discovery_handle,
	    METRICS_EP_DISCOVERY, 0 },
	{ "/oauth2/userinfo",	ROUTER_GET | ROUTER_POST, ep_userinfo_handle,
	    METRICS_EP_USERINFO, 1 },
	{ "/health",		ROUTER_GET,	ep_health_live, METRICS_EP_HEALTH, 0 },
	{ "/ready",		ROUTER_GET,	ep_health_ready, METRICS_EP_READY, 0 },
	{ "/metrics",		ROUTER_GET,	ep_metrics_handle, METRICS_EP_METRICS, 0 },
	{ "/oauth2/introspect/batch", ROUTER_POST, ep_introspect_batch_handle,
	    METRICS_EP_INTROSPECT, 1 },
};

static const struct router_route *
router_find(const char *path)
{
	size_t plen = strlen(path), i;
	static const char wk[] = "/.well-known/oauth-authorization-server/";

	/* Ignore one trailing slash: "/auth/health/" is "/auth/health". */
	if (plen > 1 && path[plen - 1] == '/')
		plen--;
	for (i = 0; i < sizeof router_routes / sizeof router_routes[0]; i++) {
		const struct router_route *rt = &router_routes[i];
		size_t rlen = strlen(rt->path);

		if (plen >= rlen && memcmp(path + plen - rlen, rt->path, rlen) == 0)
			return rt;
	}
	if (strncmp(path, wk, sizeof wk - 1) == 0)
		return &router_routes[3];
	return NULL;
}

enum metrics_endpoint
router_dispatch(struct service_thread *t, struct request *r, struct response *resp)
{
	const struct router_route *rt = router_find(r->uri_path);
	int m;

	t->remote_addr = r->remote_addr;
	if (rt == NULL) {
		oauth_error(resp, 404, "not_found", "no such endpoint");
		return METRICS_EP_OTHER;
	}
	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
		m = ROUTER_GET;
	else if (strcmp(r->method, "POST") == 0)
		m = ROUTER_POST;
	else
		m = 0;
	if ((rt->methods & m) == 0) {
		response_header(resp, "Allow", rt->methods == ROUTER_POST ? "POST" :
		    rt->methods == ROUTER_GET ? "GET, HEAD" : "GET, HEAD, POST");
		oauth_error(resp, 405, "invalid_request", "method not allowed");
		return rt->ep;
	}
	if (rt->guarded && monitor_throttle(t, resp) != FA_OK)
		return rt->ep;
	rt->handler(t, r, resp);
	return rt->ep;
}
