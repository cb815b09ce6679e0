/*
 * ep_health.c -- liveness and readiness for load balancers and orchestrators.
 * /health says the process answers; /ready says it can do its job: Redis
 * answers a PING on this thread's connection and sealing keys are loaded.
 */
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/json.h"
#include "crypto/keyring.h"
#include "endpoints/ep_health.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "store/redis_pool.h"

static const char ep_health_ok[] = "{\"status\":\"ok\"}";
static const char ep_health_ready_ok[] = "{\"status\":\"ready\"}";

void
ep_health_live(struct service_thread *t, struct request *r, struct response *resp)
{
	response_header(resp, "Cache-Control", "no-store");
	response_json(resp, 200, ep_health_ok, sizeof ep_health_ok - 1);
}

static void
ep_health_not_ready(struct service_thread *t, struct response *resp, const char *why)
{
	struct buf *b = &t->scratch;
	int first = 1;

	buf_reset(b);
	buf_putc(b, '{');
	json_kv_str(b, &first, "status", "unavailable");
	json_kv_str(b, &first, "reason", why);
	buf_putc(b, '}');
	response_header(resp, "Cache-Control", "no-store");
	response_header(resp, "Retry-After", "1");
	response_json(resp, 503, b->data, b->len);
}

void
ep_health_ready(struct service_thread *t, struct request *r, struct response *resp)
{
	redisReply *reply;
	int ok;

	reply = redis_conn_command(t->redis, "PING");
	ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
	if (reply != NULL)
		freeReplyObject(reply);
	if (!ok) {
		ep_health_not_ready(t, resp, "redis unreachable");
		return;
	}
	if (keyring_count(t->svc->keyring) == 0) {
		ep_health_not_ready(t, resp, "no sealing key loaded");
		return;
	}
	response_header(resp, "Cache-Control", "no-store");
	response_json(resp, 200, ep_health_ready_ok, sizeof ep_health_ready_ok - 1);
}
