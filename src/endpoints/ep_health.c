/*
 * ep_health.c -- liveness and readiness for load balancers and orchestrators.
 * /health says the process answers; /ready says it can do its job: Redis
 * answers a PING on this thread's connection and sealing keys are loaded.
 * Both show the Redis circuit breaker: /ready is 503 while it is open, with
 * Retry-After set to the remaining cool-down.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/json.h"
#include "crypto/keyring.h"
#include "endpoints/ep_health.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "store/breaker.h"
#include "store/redis_pool.h"

static const char ep_health_ok[] = "{\"status\":\"ok\"}";

void
ep_health_live(struct service_thread *t, struct request *r, struct response *resp)
{
	response_header(resp, "Cache-Control", "no-store");
	response_json(resp, 200, ep_health_ok, sizeof ep_health_ok - 1);
}

/* The body of /ready: status, why not (or NULL), and the breaker's state. */
static void
ep_health_ready_answer(struct service_thread *t, struct response *resp, int status,
    const char *why)
{
	struct redis_pool_stats st;
	struct buf *b = &t->scratch;
	char v[24];
	int first = 1;

	redis_pool_stats(t->svc->pool, &st);
	buf_reset(b);
	buf_putc(b, '{');
	json_kv_str(b, &first, "status", status == 200 ? "ready" : "unavailable");
	if (why != NULL)
		json_kv_str(b, &first, "reason", why);
	json_kv_str(b, &first, "redis_breaker", breaker_state_name(st.breaker));
	json_kv_int(b, &first, "redis_breaker_opens", (long long)st.breaker_opens);
	json_kv_int(b, &first, "redis_short_circuits", (long long)st.short_circuits);
	buf_putc(b, '}');
	response_header(resp, "Cache-Control", "no-store");
	if (status != 200) {
		snprintf(v, sizeof v, "%ld", redis_pool_retry_after(t->svc->pool));
		response_header(resp, "Retry-After", v);
	}
	response_json(resp, status, b->data, b->len);
}

void
ep_health_ready(struct service_thread *t, struct request *r, struct response *resp)
{
	redisReply *reply;
	int ok, attempt;

	/*
	 * Through the breaker like any request: refused at once while it is
	 * open, and after the cool-down this PING may be the probe that closes
	 * it -- an instance a load balancer took out of rotation must still be
	 * able to come back with /ready as its only traffic.
	 */
	for (attempt = 0;; attempt++) {
		reply = redis_conn_command(t->redis, "PING");
		if (reply != NULL || !redis_conn_retry(t->redis, attempt))
			break;
	}
	ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
	if (reply != NULL)
		freeReplyObject(reply);
	if (!ok) {
		ep_health_ready_answer(t, resp, 503,
		    redis_pool_breaker_state(t->svc->pool) == BREAKER_OPEN ?
		    "redis circuit breaker open" : "redis unreachable");
		return;
	}
	if (keyring_count(t->svc->keyring) == 0) {
		ep_health_ready_answer(t, resp, 503, "no sealing key loaded");
		return;
	}
	ep_health_ready_answer(t, resp, 200, NULL);
}
