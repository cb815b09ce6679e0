/*
 * ep_metrics.c -- the Prometheus endpoint.
 *
 * A scrape sums the metrics slots (shm/metrics.h) and reads the other
 * regions' own counters: the L1 cache's hits and misses, the limiter's and
 * the anomaly table's occupancy, the Argon2 admission slots. Dead processes'
 * slots are folded first, so "live processes" is current. Every family is
 * written with HELP and TYPE even when it has no sample yet.
 *
 * Access: the address must be on metrics_allow (when set) and the request
 * must carry "Authorization: Bearer <token>" matching metrics_token_file
 * (when set); with neither configured nobody may scrape. Tokens are compared
 * as SHA-256 digests with crypto_memeq, so neither their contents nor their
 * length shows in the time taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "core/audit.h"
#include "core/buf.h"
#include "core/cidr.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "endpoints/ep_metrics.h"
#include "endpoints/limits.h"
#include "endpoints/monitor.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "shm/admission.h"
#include "shm/anomaly.h"
#include "shm/cache.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"

#define EP_METRICS_TOKEN_MIN	16	/* bytes: a guessable token is no control */
#define EP_METRICS_TOKEN_MAX	1024
#define EP_METRICS_PROCS_MAX	4096

struct metrics_access {
	int		have_allow;
	struct cidr_list allow;
	int		have_token;
	uint8_t		token_hash[CRYPTO_HASHLEN];
};

/* The token file's first line, without surrounding blanks. FA_OK or FA_ERR and *cause. */
static int
ep_metrics_read_token(const char *path, uint8_t hash[CRYPTO_HASHLEN], char **cause)
{
	char text[EP_METRICS_TOKEN_MAX + 2], *p, *end;
	ssize_t n;
	size_t len = 0;
	int fd, rc = FA_ERR;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		*cause = xasprintf("metrics_token_file %s: %s", path, strerror(errno));
		return FA_ERR;
	}
	while (len < sizeof text - 1 &&
	    (n = read(fd, text + len, sizeof text - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';
	if (len > EP_METRICS_TOKEN_MAX) {
		*cause = xasprintf("metrics_token_file %s: longer than %d bytes",
		    path, EP_METRICS_TOKEN_MAX);
		goto out;
	}
	p = text + strspn(text, " \t\r\n");
	end = p + strcspn(p, "\r\n");
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((size_t)(end - p) < EP_METRICS_TOKEN_MIN) {
		*cause = xasprintf("metrics_token_file %s: the token must be at "
		    "least %d characters", path, EP_METRICS_TOKEN_MIN);
		goto out;
	}
	crypto_sha256(p, (size_t)(end - p), hash);
	rc = FA_OK;
out:
	crypto_wipe(text, sizeof text);
	return rc;
}

struct metrics_access *
ep_metrics_access_new(const struct config *cfg, char **cause)
{
	struct metrics_access *a = xcalloc(1, sizeof *a);

	if (cfg->metrics_allow != NULL) {
		if (cidr_list_parse(cfg->metrics_allow, &a->allow, cause) != FA_OK)
			goto fail;
		a->have_allow = 1;
	}
	if (cfg->metrics_token_file != NULL) {
		if (ep_metrics_read_token(cfg->metrics_token_file, a->token_hash,
		    cause) != FA_OK)
			goto fail;
		a->have_token = 1;
	}
	return a;
fail:
	ep_metrics_access_free(a);
	return NULL;
}

void
ep_metrics_access_free(struct metrics_access *a)
{
	if (a == NULL)
		return;
	crypto_wipe(a, sizeof *a);
	free(a);
}

int
ep_metrics_allowed(const struct metrics_access *a, const char *addr,
    const char *authorization)
{
	uint8_t got[CRYPTO_HASHLEN];
	const char *tok;
	int ok;

	if (!a->have_allow && !a->have_token)
		return 0;
	if (a->have_allow && !cidr_list_match(&a->allow, addr))
		return 0;
	if (!a->have_token)
		return 1;
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return 0;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	crypto_sha256(tok, strnlen(tok, EP_METRICS_TOKEN_MAX + 1), got);
	ok = crypto_memeq(got, a->token_hash, sizeof got);
	crypto_wipe(got, sizeof got);
	return ok;
}

/* --- exposition ------------------------------------------------------------ */

static void
ep_metrics_family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: \, " and newline escaped. */
static void
ep_metrics_label(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(b, '\\');
		if (*v == '\n')
			buf_puts(b, "\\n");
		else
			buf_putc(b, *v);
	}
}

static void
ep_metrics_u64(struct buf *b, const char *name, uint64_t v)
{
	buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
ep_metrics_seconds(struct buf *b, uint64_t us)
{
	buf_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
}

static void
ep_metrics_requests(struct buf *b, const struct metrics_snapshot *s)
{
	uint64_t cum, count;
	unsigned e, i;
	int code;

	ep_metrics_family(b, "fastauth_requests_total", "counter",
	    "Requests answered, by endpoint and HTTP status.");
	for (e = 0; e < METRICS_EP_COUNT; e++)
		for (i = 0; i < METRICS_STATUS_COUNT; i++) {
			if (s->requests[e][i] == 0)
				continue;
			code = metrics_status_code(i);
			buf_printf(b, "fastauth_requests_total{endpoint=\"%s\",status=\"",
			    metrics_endpoint_name(e));
			if (code != 0)
				buf_printf(b, "%d", code);
			else
				buf_puts(b, "other");
			buf_printf(b, "\"} %llu\n", (unsigned long long)s->requests[e][i]);
		}
	ep_metrics_family(b, "fastauth_request_duration_seconds", "histogram",
	    "Time from reading a request to having sent its answer, by endpoint.");
	for (e = 0; e < METRICS_EP_COUNT; e++) {
		for (count = 0, i = 0; i < METRICS_BUCKETS; i++)
			count += s->buckets[e][i];
		if (count == 0)
			continue;
		for (cum = 0, i = 0; i < METRICS_BUCKETS; i++) {
			cum += s->buckets[e][i];
			buf_printf(b, "fastauth_request_duration_seconds_bucket{"
			    "endpoint=\"%s\",le=\"", metrics_endpoint_name(e));
			if (i < METRICS_BUCKETS - 1)
				ep_metrics_seconds(b, metrics_bucket_us[i]);
			else
				buf_puts(b, "+Inf");
			buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
		}
		buf_printf(b, "fastauth_request_duration_seconds_sum{endpoint=\"%s\"} ",
		    metrics_endpoint_name(e));
		ep_metrics_seconds(b, s->dur_sum_us[e]);
		buf_printf(b, "\nfastauth_request_duration_seconds_count{endpoint=\"%s\"} "
		    "%llu\n", metrics_endpoint_name(e), (unsigned long long)count);
	}
}

static void
ep_metrics_tokens(struct buf *b, const struct metrics_snapshot *s)
{
	static const char *grants[METRICS_GRANT_COUNT] = {
		"client_credentials", "password", "refresh_token"
	};
	const uint64_t *c = s->counters;
	int g;

	ep_metrics_family(b, "fastauth_tokens_issued_total", "counter",
	    "Access tokens issued, by grant type.");
	for (g = 0; g < METRICS_GRANT_COUNT; g++)
		buf_printf(b, "fastauth_tokens_issued_total{grant=\"%s\"} %llu\n",
		    grants[g], (unsigned long long)c[METRICS_TOKENS_ISSUED + g]);
	ep_metrics_family(b, "fastauth_tokens_introspected_total", "counter",
	    "Tokens introspected, by answer.");
	buf_printf(b, "fastauth_tokens_introspected_total{result=\"active\"} %llu\n"
	    "fastauth_tokens_introspected_total{result=\"inactive\"} %llu\n",
	    (unsigned long long)c[METRICS_INTROSPECT_ACTIVE],
	    (unsigned long long)c[METRICS_INTROSPECT_INACTIVE]);
	ep_metrics_family(b, "fastauth_tokens_revoked_total", "counter",
	    "Tokens revoked, by kind (a refresh token revokes its family).");
	buf_printf(b, "fastauth_tokens_revoked_total{kind=\"access\"} %llu\n"
	    "fastauth_tokens_revoked_total{kind=\"refresh\"} %llu\n",
	    (unsigned long long)c[METRICS_REVOKED_ACCESS],
	    (unsigned long long)c[METRICS_REVOKED_REFRESH]);
	ep_metrics_family(b, "fastauth_invalid_tokens_total", "counter",
	    "Access tokens presented that were malformed, forged or expired.");
	ep_metrics_u64(b, "fastauth_invalid_tokens_total", c[METRICS_INVALID_TOKENS]);
}

static void
ep_metrics_cache_limiter(struct buf *b, const struct metrics_snapshot *s,
    const struct shm_stats *st)
{
	static const char *kinds[CACHE_KINDS] = { NULL, "client", "claims", "revocation" };
	int k, p;

	ep_metrics_family(b, "fastauth_cache_hits_total", "counter",
	    "L1 (shared memory) cache lookups that found the entry, by kind.");
	for (k = 1; k < CACHE_KINDS; k++)
		buf_printf(b, "fastauth_cache_hits_total{kind=\"%s\"} %llu\n", kinds[k],
		    (unsigned long long)st->cache.hits[k]);
	ep_metrics_family(b, "fastauth_cache_misses_total", "counter",
	    "L1 (shared memory) cache lookups that did not, by kind.");
	for (k = 1; k < CACHE_KINDS; k++)
		buf_printf(b, "fastauth_cache_misses_total{kind=\"%s\"} %llu\n", kinds[k],
		    (unsigned long long)st->cache.misses[k]);
	ep_metrics_family(b, "fastauth_ratelimit_decisions_total", "counter",
	    "Rate-limit decisions, by policy and outcome.");
	for (p = 0; p < LIMITS_NCLASS; p++)
		buf_printf(b, "fastauth_ratelimit_decisions_total{policy=\"%s\","
		    "decision=\"allowed\"} %llu\n"
		    "fastauth_ratelimit_decisions_total{policy=\"%s\","
		    "decision=\"limited\"} %llu\n", limits_name(p),
		    (unsigned long long)s->counters[METRICS_RL_ALLOWED + p],
		    limits_name(p),
		    (unsigned long long)s->counters[METRICS_RL_LIMITED + p]);
	ep_metrics_family(b, "fastauth_ratelimit_evictions_total", "counter",
	    "Live limiter states evicted because the table was full.");
	ep_metrics_u64(b, "fastauth_ratelimit_evictions_total", st->ratelimit.evicted_live);
}

static void
ep_metrics_redis(struct buf *b, struct metrics *m, const struct metrics_snapshot *s)
{
	struct metrics_process *procs;
	int64_t open, busy, in_use = 0, idle = 0;
	size_t n, i;

	procs = xcalloc(EP_METRICS_PROCS_MAX, sizeof *procs);
	n = metrics_processes(m, procs, EP_METRICS_PROCS_MAX);
	/* A request thread holds its own connection for the whole request. */
	for (i = 0; i < n; i++) {
		open = procs[i].gauges[METRICS_G_REDIS_OPEN];
		busy = procs[i].gauges[METRICS_G_BUSY];
		if (open < 0)
			open = 0;
		if (busy < 0)
			busy = 0;
		in_use += busy < open ? busy : open;
		idle += open - (busy < open ? busy : open);
	}
	ep_metrics_family(b, "fastauth_redis_connections", "gauge",
	    "Redis connections open, in use by a request or idle.");
	buf_printf(b, "fastauth_redis_connections{state=\"in_use\"} %lld\n"
	    "fastauth_redis_connections{state=\"idle\"} %lld\n",
	    (long long)in_use, (long long)idle);
	ep_metrics_family(b, "fastauth_redis_errors_total", "counter",
	    "Redis connections that failed, timed out or broke.");
	ep_metrics_u64(b, "fastauth_redis_errors_total", s->counters[METRICS_REDIS_ERRORS]);
	ep_metrics_family(b, "fastauth_redis_reconnects_total", "counter",
	    "Redis connections made again after a failure.");
	ep_metrics_u64(b, "fastauth_redis_reconnects_total",
	    s->counters[METRICS_REDIS_RECONNECTS]);
	ep_metrics_family(b, "fastauth_redis_circuit_state", "gauge",
	    "Redis circuit breaker of each process: 0 closed, 1 open, 2 half-open.");
	for (i = 0; i < n; i++)
		buf_printf(b, "fastauth_redis_circuit_state{pid=\"%d\"} %lld\n",
		    (int)procs[i].pid, (long long)procs[i].gauges[METRICS_G_CIRCUIT]);
	free(procs);
}

static void
ep_metrics_security(struct buf *b, struct service *svc, const struct metrics_snapshot *s)
{
	static const char *kinds[ANOMALY_KINDS] = {
		"invalid_token", "client_auth_failure", "login_failure"
	};
	struct anomaly *a = shm_anomaly(svc->shm);
	struct anomaly_params p;
	struct anomaly_stats as;
	struct anomaly_latency l;
	const char *name;
	unsigned t, e;

	ep_metrics_family(b, "fastauth_security_events_total", "counter",
	    "Security events written to the audit log, by type.");
	for (t = 0; t < AUDIT_TYPE_COUNT; t++)
		if ((name = audit_type_name(t)) != NULL)
			buf_printf(b, "fastauth_security_events_total{type=\"%s\"} %llu\n",
			    name, (unsigned long long)s->counters[METRICS_EVENTS + t]);
	monitor_params(svc->cfg, &p);
	anomaly_stats(a, &p, shm_now(), &as);
	ep_metrics_family(b, "fastauth_security_suspected_addresses", "gauge",
	    "Client addresses that crossed an anomaly threshold in the current or "
	    "previous window, by what they did too often.");
	for (t = 0; t < ANOMALY_KINDS; t++)
		buf_printf(b, "fastauth_security_suspected_addresses{kind=\"%s\"} %llu\n",
		    kinds[t], (unsigned long long)as.suspected[t]);
	ep_metrics_family(b, "fastauth_latency_anomaly", "gauge",
	    "1 while an endpoint's recent p95 latency is far above its baseline.");
	for (e = 0; e < METRICS_EP_COUNT && e < ANOMALY_ENDPOINTS; e++) {
		anomaly_latency_get(a, e, &l);
		buf_printf(b, "fastauth_latency_anomaly{endpoint=\"%s\"} %d\n",
		    metrics_endpoint_name(e), l.anomalous);
	}
	ep_metrics_family(b, "fastauth_latency_p95_baseline_seconds", "gauge",
	    "The baseline (EWMA of earlier windows) of an endpoint's p95 latency.");
	for (e = 0; e < METRICS_EP_COUNT && e < ANOMALY_ENDPOINTS; e++) {
		anomaly_latency_get(a, e, &l);
		if (l.baseline_us == 0)
			continue;
		buf_printf(b, "fastauth_latency_p95_baseline_seconds{endpoint=\"%s\"} ",
		    metrics_endpoint_name(e));
		ep_metrics_seconds(b, l.baseline_us);
		buf_putc(b, '\n');
	}
}

static void
ep_metrics_host(struct buf *b, struct service *svc, const struct metrics_snapshot *s,
    const struct shm_stats *st)
{
	struct admission_stats ad;
	struct anomaly_params p;
	struct anomaly_stats as;

	admission_stats(svc->admission, &ad);
	ep_metrics_family(b, "fastauth_argon2_in_flight", "gauge",
	    "Argon2 password hashes running now, host-wide.");
	ep_metrics_u64(b, "fastauth_argon2_in_flight", (uint64_t)ad.in_flight);
	ep_metrics_family(b, "fastauth_argon2_waiting", "gauge",
	    "Logins waiting for an Argon2 slot now, host-wide.");
	buf_printf(b, "fastauth_argon2_waiting %lld\n", (long long)ad.waiting);
	ep_metrics_family(b, "fastauth_argon2_slots", "gauge",
	    "Argon2 hashes allowed at once (argon2_max_concurrent).");
	ep_metrics_u64(b, "fastauth_argon2_slots", (uint64_t)ad.limit);
	ep_metrics_family(b, "fastauth_argon2_admitted_total", "counter",
	    "Logins that got an Argon2 slot.");
	ep_metrics_u64(b, "fastauth_argon2_admitted_total", ad.admitted);
	ep_metrics_family(b, "fastauth_argon2_rejected_total", "counter",
	    "Logins refused (503) after waiting argon2_wait_ms for a slot.");
	ep_metrics_u64(b, "fastauth_argon2_rejected_total", ad.rejected);

	ep_metrics_family(b, "fastauth_processes", "gauge",
	    "Responder processes of this instance alive on the host.");
	ep_metrics_u64(b, "fastauth_processes", s->live);
	ep_metrics_family(b, "fastauth_processes_retired_total", "counter",
	    "Processes whose counters were folded into the retired slot.");
	ep_metrics_u64(b, "fastauth_processes_retired_total", s->retired);
	ep_metrics_family(b, "fastauth_request_threads", "gauge",
	    "Request threads of the live processes.");
	buf_printf(b, "fastauth_request_threads %lld\n",
	    (long long)s->gauges[METRICS_G_THREADS]);
	ep_metrics_family(b, "fastauth_requests_in_flight", "gauge",
	    "Requests being answered now.");
	buf_printf(b, "fastauth_requests_in_flight %lld\n",
	    (long long)s->gauges[METRICS_G_BUSY]);
	ep_metrics_family(b, "fastauth_tarpit_held", "gauge",
	    "Rate-limit refusals whose answer is being held back (ratelimit_tarpit_ms).");
	buf_printf(b, "fastauth_tarpit_held %lld\n",
	    (long long)s->gauges[METRICS_G_TARPIT]);

	monitor_params(svc->cfg, &p);
	anomaly_stats(shm_anomaly(svc->shm), &p, shm_now(), &as);
	ep_metrics_family(b, "fastauth_shm_capacity", "gauge",
	    "Entries of each shared memory region.");
	buf_printf(b, "fastauth_shm_capacity{region=\"ratelimit\"} %llu\n"
	    "fastauth_shm_capacity{region=\"cache\"} %llu\n"
	    "fastauth_shm_capacity{region=\"metrics\"} %u\n"
	    "fastauth_shm_capacity{region=\"anomaly\"} %llu\n",
	    (unsigned long long)st->ratelimit.entries,
	    (unsigned long long)st->cache.entries, s->slots,
	    (unsigned long long)as.entries);
	ep_metrics_family(b, "fastauth_shm_used", "gauge",
	    "Entries in use in each shared memory region (unexpired, live, tracked).");
	buf_printf(b, "fastauth_shm_used{region=\"ratelimit\"} %llu\n"
	    "fastauth_shm_used{region=\"cache\"} %llu\n"
	    "fastauth_shm_used{region=\"metrics\"} %u\n"
	    "fastauth_shm_used{region=\"anomaly\"} %llu\n",
	    (unsigned long long)st->ratelimit.used,
	    (unsigned long long)st->cache.used, s->live,
	    (unsigned long long)as.tracked);
	ep_metrics_family(b, "fastauth_shm_size_bytes", "gauge",
	    "Size of the shared memory segment.");
	ep_metrics_u64(b, "fastauth_shm_size_bytes", st->size);
	ep_metrics_family(b, "fastauth_metrics_slot_overflows_total", "counter",
	    "Processes that found no free metrics slot (raise shm_metrics_slots).");
	ep_metrics_u64(b, "fastauth_metrics_slot_overflows_total", s->overflow);
}

void
ep_metrics_render(struct service *svc, struct buf *b)
{
	struct shm *seg = svc->shm;
	struct metrics *m = shm_metrics(seg);
	struct metrics_snapshot *s = xmalloc(sizeof *s);
	struct shm_stats st;

	metrics_reap(m);
	metrics_snapshot(m, s);
	shm_stats(seg, shm_now(), &st);

	ep_metrics_family(b, "fastauth_build_info", "gauge",
	    "Version, libgcrypt version and the CPU features libgcrypt uses.");
	buf_puts(b, "fastauth_build_info{version=\"");
	ep_metrics_label(b, PACKAGE_VERSION);
	buf_puts(b, "\",libgcrypt=\"");
	ep_metrics_label(b, crypto_library_version());
	buf_puts(b, "\",hw_features=\"");
	ep_metrics_label(b, svc->build_features != NULL ? svc->build_features : "");
	buf_puts(b, "\"} 1\n");
	ep_metrics_requests(b, s);
	ep_metrics_tokens(b, s);
	ep_metrics_cache_limiter(b, s, &st);
	ep_metrics_redis(b, m, s);
	ep_metrics_security(b, svc, s);
	ep_metrics_host(b, svc, s, &st);
	free(s);
}

void
ep_metrics_handle(struct service_thread *t, struct request *r, struct response *resp)
{
	struct buf *b = &resp->body;

	if (!ep_metrics_allowed(t->svc->metrics_access, r->remote_addr,
	    r->authorization)) {
		oauth_error(resp, 403, "access_denied",
		    "metrics are not available to this client");
		return;
	}
	buf_reset(b);
	ep_metrics_render(t->svc, b);
	resp->status = 200;
	response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	response_header(resp, "Cache-Control", "no-store");
}
