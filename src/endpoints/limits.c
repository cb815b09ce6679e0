/*
 * limits.c -- per-endpoint rate limiting.
 *
 * The local check is the shared-memory GCRA (shm/ratelimit.h): no lock, no
 * system call, so a flood is turned away before it costs a Redis round trip.
 * A "cluster" policy then asks Redis, where a server-side GCRA script keyed
 * by <prefix>rl:<class>:<key> counts every host's requests against one
 * budget, on Redis's own clock. If Redis cannot answer, the cluster check
 * lets the request through: the local limit still holds, and availability of
 * the endpoints must not hinge on a limiter.
 *
 * Keys by client id are taken before the client is authenticated, so that
 * a flood with wrong secrets is refused as cheaply as any other: one client
 * id can be exhausted by anyone who knows it, which is why the defaults are
 * generous and "by address" is available.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "endpoints/limits.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"
#include "store/redis_pool.h"

_Static_assert(LIMITS_NCLASS <= METRICS_POLICIES, "metrics count too few policies");

static const char *const limits_names[LIMITS_NCLASS] = {
	"token", "introspect", "revoke", "userinfo", "login", "authorizer", "suspect"
};

struct limits {
	struct ratespec		 spec[LIMITS_NCLASS];
	struct ratelimit_policy	 pol[LIMITS_NCLASS];
};

/* Server-side GCRA: ARGV interval_us, burst. Returns {allowed, retry_after_us}. */
static const char limits_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local interval = tonumber(ARGV[1])\n"
	"local horizon = interval * tonumber(ARGV[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"if tat < now then tat = now end\n"
	"local nt = tat + interval\n"
	"if nt - now > horizon then return {0, nt - now - horizon} end\n"
	"redis.call('SET', KEYS[1], nt, 'PX', math.ceil((nt - now) / 1000) + 1)\n"
	"return {1, 0}\n";

/* Give one request back: ARGV interval_us. */
static const char limits_refund_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"local nt = tat - tonumber(ARGV[1])\n"
	"if nt <= now then redis.call('DEL', KEYS[1]) return 0 end\n"
	"redis.call('SET', KEYS[1], nt, 'PX', math.ceil((nt - now) / 1000) + 1)\n"
	"return 1\n";

struct limits *
limits_new(const struct config *cfg, char **cause)
{
	struct limits *l = xcalloc(1, sizeof *l);
	const char *text[LIMITS_NCLASS] = {
		cfg->ratelimit_token, cfg->ratelimit_introspect, cfg->ratelimit_revoke,
		cfg->ratelimit_userinfo, cfg->ratelimit_login, cfg->ratelimit_authorizer,
		cfg->anomaly_throttle
	};
	char *why = NULL;
	int i;

	for (i = 0; i < LIMITS_NCLASS; i++) {
		if (ratespec_parse(text[i], &l->spec[i], &why) != FA_OK)
			goto fail;
		if (!l->spec[i].enabled)
			continue;
		if (ratelimit_policy_init(&l->pol[i], (unsigned)i, l->spec[i].rate,
		    l->spec[i].period_s * 1000000ULL, l->spec[i].burst, &why) != FA_OK)
			goto fail;
	}
	return l;
fail:
	*cause = i == LIMITS_SUSPECT ? xasprintf("anomaly_throttle: %s", why) :
	    xasprintf("ratelimit_%s: %s", limits_names[i], why);
	free(why);
	free(l);
	return NULL;
}

void
limits_free(struct limits *l)
{
	free(l);
}

const char *
limits_name(enum limits_class cls)
{
	return (unsigned)cls < LIMITS_NCLASS ? limits_names[cls] : "other";
}

int
limits_enabled(const struct limits *l, enum limits_class cls)
{
	return l->spec[cls].enabled;
}

enum ratespec_by
limits_by(const struct limits *l, enum limits_class cls)
{
	return l->spec[cls].by;
}

const char *
limits_key(const struct limits *l, enum limits_class cls, const struct request *r,
    const char *client_id, const char *username)
{
	switch (l->spec[cls].by) {
	case RATESPEC_BY_CLIENT:
		return client_id != NULL ? client_id : r->remote_addr;
	case RATESPEC_BY_USERNAME:
		return username != NULL ? username : r->remote_addr;
	default:
		return r->remote_addr;
	}
}

static unsigned long long
limits_ceil_s(uint64_t us)
{
	return (unsigned long long)((us + 999999) / 1000000);
}

static void
limits_refuse(struct response *resp, enum limits_class cls, const struct ratespec *sp,
    uint64_t retry_us, uint64_t reset_us, uint32_t remaining)
{
	char v[128];
	unsigned long long retry = limits_ceil_s(retry_us);

	if (retry == 0)
		retry = 1;
	snprintf(v, sizeof v, "%llu", retry);
	response_header(resp, "Retry-After", v);
	snprintf(v, sizeof v, "\"%s\";q=%u;w=%llu", limits_names[cls], sp->burst,
	    (unsigned long long)(sp->period_s * sp->burst / sp->rate > 0 ?
	    sp->period_s * sp->burst / sp->rate : 1));
	response_header(resp, "RateLimit-Policy", v);
	snprintf(v, sizeof v, "\"%s\";r=%u;t=%llu", limits_names[cls], remaining,
	    limits_ceil_s(reset_us) > 0 ? limits_ceil_s(reset_us) : 1);
	response_header(resp, "RateLimit", v);
	oauth_error(resp, 429, "too_many_requests", "rate limit exceeded; retry later");
	resp->tarpit = 1;
}

/* The cluster-wide check in Redis. FA_OK (allowed, or Redis unavailable) or FA_LIMIT. */
static int
limits_cluster(struct service_thread *t, enum limits_class cls, const char *key,
    uint64_t *retry_us)
{
	const struct ratespec *sp = &t->svc->limits->spec[cls];
	unsigned long long interval = sp->period_s * 1000000ULL / sp->rate;
	redisReply *r;
	int rc = FA_OK;

	r = redis_conn_command(t->redis, "EVAL %s 1 %srl:%s:%s %llu %u", limits_lua,
	    redis_conn_prefix(t->redis), limits_names[cls], key,
	    interval > 0 ? interval : 1, sp->burst);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		if (r != NULL && r->type == REDIS_REPLY_ERROR)
			log_warn("cluster rate limit: %s", r->str);
		goto out;
	}
	if (r->element[0]->integer == 0) {
		*retry_us = (uint64_t)r->element[1]->integer;
		rc = FA_LIMIT;
	}
out:
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

int
limits_check(struct service_thread *t, enum limits_class cls, const char *key,
    struct response *resp)
{
	struct limits *l = t->svc->limits;
	struct ratelimit *rl = shm_ratelimit(t->svc->shm);
	struct ratelimit_result res;
	uint64_t retry;
	size_t klen;
	int rc;

	if (!l->spec[cls].enabled || key == NULL)
		return FA_OK;
	klen = strlen(key);
	rc = ratelimit_check(rl, &l->pol[cls], key, klen, shm_now(), &res);
	if (rc == FA_LIMIT) {
		metrics_count(METRICS_RL_LIMITED + cls, 1);
		limits_refuse(resp, cls, &l->spec[cls], res.retry_after, res.reset, 0);
		return FA_LIMIT;
	}
	if (l->spec[cls].cluster &&
	    limits_cluster(t, cls, key, &retry) == FA_LIMIT) {
		metrics_count(METRICS_RL_LIMITED + cls, 1);
		limits_refuse(resp, cls, &l->spec[cls], retry, retry, 0);
		return FA_LIMIT;
	}
	metrics_count(METRICS_RL_ALLOWED + cls, 1);
	return FA_OK;
}

void
limits_refund(struct service_thread *t, enum limits_class cls, const char *key)
{
	struct limits *l = t->svc->limits;
	const struct ratespec *sp = &l->spec[cls];
	unsigned long long interval;
	redisReply *r;

	if (!sp->enabled || key == NULL)
		return;
	ratelimit_refund(shm_ratelimit(t->svc->shm), &l->pol[cls], key,
	    strlen(key), shm_now());
	if (!sp->cluster)
		return;
	/* A refund that does not reach Redis errs on the strict side. */
	interval = sp->period_s * 1000000ULL / sp->rate;
	r = redis_conn_command(t->redis, "EVAL %s 1 %srl:%s:%s %llu",
	    limits_refund_lua, redis_conn_prefix(t->redis), limits_names[cls], key,
	    interval > 0 ? interval : 1);
	if (r != NULL)
		freeReplyObject(r);
}
