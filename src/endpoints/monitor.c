/*
 * monitor.c -- from request outcomes to security events and gauges.
 *
 * The per-address counts are host-wide (shared memory), so an attacker
 * spreading requests over the responder processes is counted once. An alarm
 * is an audit event (type, severity, address, client id, username where
 * known; never the token or the password that was tried) and shows in
 * fastauth_security_suspected_addresses. With anomaly_throttle set, requests
 * from an address that raised an alarm within anomaly_suspect_seconds pass
 * that stricter policy too.
 *
 * Latency: every latency_anomaly_interval one process of the host (whoever
 * wins the CAS in anomaly_latency_due) sums the duration histograms of every
 * slot and feeds each endpoint's growth to the detector; an endpoint whose
 * recent p95 is far above its own EWMA baseline raises latency_anomaly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/audit.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "endpoints/limits.h"
#include "endpoints/monitor.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/metrics.h"
#include "shm/shm.h"

void
monitor_params(const struct config *cfg, struct anomaly_params *p)
{
	memset(p, 0, sizeof *p);
	p->window_us = (uint64_t)cfg->anomaly_window * 1000000;
	p->threshold[ANOMALY_INVALID_TOKEN] = (uint32_t)cfg->anomaly_invalid_tokens;
	p->threshold[ANOMALY_CLIENT_AUTH] = (uint32_t)cfg->anomaly_client_auth_failures;
	p->threshold[ANOMALY_LOGIN] = (uint32_t)cfg->anomaly_login_failures;
	p->suspect_us = (uint64_t)cfg->anomaly_suspect_seconds * 1000000;
}

void
monitor_note(struct service_thread *t, enum anomaly_kind kind,
    const char *client_id, const char *username)
{
	const struct config *cfg = t->svc->cfg;
	struct anomaly_params p;
	char count[24], window[24];
	const char *addr = t->remote_addr;

	if (kind == ANOMALY_INVALID_TOKEN)
		metrics_count(METRICS_INVALID_TOKENS, 1);
	if (addr == NULL || *addr == '\0')
		return;
	monitor_params(cfg, &p);
	if (!anomaly_note(shm_anomaly(t->svc->shm), &p, kind, addr, shm_now()))
		return;
	snprintf(count, sizeof count, "%u", p.threshold[kind]);
	snprintf(window, sizeof window, "%ld", cfg->anomaly_window);
	audit_event(kind == ANOMALY_INVALID_TOKEN ? AUDIT_TOKEN_GUESSING_SUSPECTED :
	    AUDIT_CREDENTIAL_STUFFING_SUSPECTED, AUDIT_CRITICAL, addr, client_id,
	    username, AUDIT_FIELDS({ "reason", kind == ANOMALY_INVALID_TOKEN ?
	    "invalid_tokens" : kind == ANOMALY_LOGIN ? "login_failures" :
	    "client_auth_failures" }, { "count", count },
	    { "window_seconds", window }));
	log_warn("%s: address %s crossed %s in %s s",
	    kind == ANOMALY_INVALID_TOKEN ? "token guessing suspected" :
	    "credential stuffing suspected", addr, count, window);
}

int
monitor_throttle(struct service_thread *t, struct response *resp)
{
	struct anomaly_params p;

	if (t->remote_addr == NULL || *t->remote_addr == '\0' ||
	    !limits_enabled(t->svc->limits, LIMITS_SUSPECT))
		return FA_OK;
	monitor_params(t->svc->cfg, &p);
	if (!anomaly_suspect(shm_anomaly(t->svc->shm), &p, t->remote_addr, shm_now()))
		return FA_OK;
	return limits_check(t, LIMITS_SUSPECT, t->remote_addr, resp);
}

/* Evaluate every endpoint's recent latency; one process of the host at a time. */
static void
monitor_latency(struct service *svc)
{
	const struct config *cfg = svc->cfg;
	struct anomaly *a = shm_anomaly(svc->shm);
	struct metrics_snapshot *snap;
	char p95s[24], bases[24];
	struct anomaly_latency l;
	uint64_t p95;
	unsigned ep;

	if (cfg->latency_anomaly_factor == 0 ||
	    !anomaly_latency_due(a, shm_now(),
	    (uint64_t)cfg->latency_anomaly_interval * 1000000))
		return;
	snap = xmalloc(sizeof *snap);
	metrics_snapshot(shm_metrics(svc->shm), snap);
	for (ep = 0; ep < METRICS_EP_COUNT && ep < ANOMALY_ENDPOINTS; ep++) {
		anomaly_latency_get(a, ep, &l);
		if (!anomaly_latency_feed(a, ep, snap->buckets[ep], metrics_bucket_us,
		    METRICS_BUCKETS, (uint64_t)cfg->latency_anomaly_min_requests,
		    (double)cfg->latency_anomaly_factor,
		    (uint64_t)cfg->latency_anomaly_floor_ms * 1000, &p95))
			continue;
		snprintf(p95s, sizeof p95s, "%llu", (unsigned long long)(p95 / 1000));
		snprintf(bases, sizeof bases, "%llu",
		    (unsigned long long)(l.baseline_us / 1000));
		audit_event(AUDIT_LATENCY_ANOMALY, AUDIT_WARNING, NULL, NULL, NULL,
		    AUDIT_FIELDS({ "endpoint", metrics_endpoint_name(ep) },
		    { "p95_ms", p95s }, { "baseline_ms", bases }));
		log_warn("latency anomaly on %s: p95 %s ms, baseline %s ms",
		    metrics_endpoint_name(ep), p95s, bases);
	}
	free(snap);
}

void
monitor_observe(enum audit_type type, enum audit_severity sev)
{
	(void)sev;
	if ((unsigned)type < METRICS_EVENT_TYPES)
		metrics_count(METRICS_EVENTS + type, 1);
}

void
monitor_tick(struct service *svc)
{
	metrics_reap(shm_metrics(svc->shm));
	monitor_latency(svc);
}
