/*
 * service.c -- the per-process state behind the endpoints, and the
 * housekeeping thread that keeps the keyring current (reload, automatic
 * rotation, retirement) without ever putting that work on a request's path.
 * The housekeeper also takes part in electing the instance's mirror leader
 * (shm/mirror.h); in the leader it runs the subscriber thread that applies
 * invalidations from other instances to the shared cache.
 *
 * The housekeeper uses the pool's last slot; request thread i uses slot i.
 * If Redis is away at start the process still starts: /ready says 503 and the
 * housekeeper keeps trying, so a web server that spawns us is not stuck in a
 * restart loop while Redis comes up.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/keyring.h"
#include "crypto/password.h"
#include "core/audit.h"
#include "endpoints/ep_discovery.h"
#include "endpoints/ep_metrics.h"
#include "endpoints/monitor.h"
#include "endpoints/service.h"
#include "endpoints/limits.h"
#include "endpoints/lookup.h"
#include "shm/admission.h"
#include "shm/cache.h"
#include "shm/metrics.h"
#include "shm/mirror.h"
#include "store/events.h"
#include "shm/shm.h"
#include "store/redis_pool.h"

struct service_housekeeper {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	int		 stop;		/* guarded by lock */
	int		 running;
	/* the mirror subscriber, while this process leads */
	pthread_t	 sub_thread;
	int		 sub_running;
	atomic_int	 sub_stop;
	uint64_t	 mirror_claim;	/* our owner word while we lead, else 0 */
};

void
service_derive(struct crypto_ctx *cc, const uint8_t kek[CRYPTO_KEYLEN],
    const char *label, uint8_t out[CRYPTO_HASHLEN])
{
	crypto_hmac_sha256(cc, kek, CRYPTO_KEYLEN, label, strlen(label), out);
}

/* Attach the instance's segment and make the Argon2 admission view. */
static int
service_attach_shm(struct service *svc, char **cause)
{
	const struct config *cfg = svc->cfg;
	struct shm_params sp;
	struct shm *seg;
	long limit = cfg->argon2_max_concurrent;

	sp.ratelimit_entries = (uint32_t)cfg->shm_ratelimit_entries;
	sp.cache_entries = (uint32_t)cfg->shm_cache_entries;
	sp.cache_value_max = (uint32_t)cfg->shm_cache_value_max;
	sp.metrics_slots = (uint32_t)cfg->shm_metrics_slots;
	sp.anomaly_entries = (uint32_t)cfg->shm_anomaly_entries;
	if (shm_open_segment(cfg->instance, &sp, &seg, cause) != FA_OK)
		return FA_ERR;
	svc->shm = seg;
	if (limit == 0) {
		/* One hash per core: each runs argon2_parallelism lanes. */
		limit = sysconf(_SC_NPROCESSORS_ONLN) / cfg->argon2_parallelism;
		if (limit < 1)
			limit = 1;
	}
	svc->admission = admission_new(shm_admission(seg), (int)limit);
	svc->admission_limit = (int)limit;
	/* Without a slot of its own, this process counts in the retired slot. */
	if (metrics_attach(shm_metrics(seg)) != FA_OK)
		log_warn("every metrics slot is taken (shm_metrics_slots %ld): this "
		    "process counts in the shared retired slot", cfg->shm_metrics_slots);
	metrics_gauge_set(METRICS_G_THREADS, svc->threads);
	/* No more hashes than that run at once: keep no more Argon2 pools. */
	password_pool_limit((unsigned long)limit);
	return FA_OK;
}

/*
 * Another process replaced the segment (it was started with other shm_
 * sizes): follow it, adopting its sizes, so every process of the instance
 * counts in one limiter and one cache again. The old mapping stays: request
 * threads may be using it right now, and this happens once per resize.
 */
static void
service_follow_segment(struct service *svc)
{
	struct service_housekeeper *hk = svc->hk;
	struct shm *seg = NULL;
	char *cause = NULL;
	int rc;

	if (shm_is_current(svc->shm))
		return;
	if (hk->sub_running) {
		atomic_store(&hk->sub_stop, 1);
		pthread_join(hk->sub_thread, NULL);
		hk->sub_running = 0;
	}
	hk->mirror_claim = 0;	/* leadership was of the old segment */
	rc = shm_attach_existing(svc->cfg->instance, &seg, &cause);
	if (rc != FA_OK) {
		log_warn("shared memory segment replaced, and its successor is not "
		    "there yet: %s", cause ? cause : "not found");
		free(cause);
		return;
	}
	svc->admission = admission_new(shm_admission(seg), svc->admission_limit);
	svc->shm = seg;
	/* Counts so far stay in the old segment, with its other processes. */
	metrics_attach(shm_metrics(seg));
	metrics_gauge_set(METRICS_G_THREADS, svc->threads);
	log_info("shared memory segment was replaced by another process: attached "
	    "the new one");
}

void
service_pool_params(const struct config *cfg, struct redis_pool_params *pp)
{
	memset(pp, 0, sizeof *pp);
	pp->url = cfg->redis_url;
	pp->prefix = cfg->redis_prefix;
	pp->connect_timeout_ms = cfg->redis_connect_timeout_ms;
	pp->command_timeout_ms = cfg->redis_command_timeout_ms;
	pp->backoff_min_ms = cfg->redis_backoff_min_ms;
	pp->backoff_max_ms = cfg->redis_backoff_max_ms;
	if (cfg->redis_sentinels != NULL) {
		pp->sentinels = cfg->redis_sentinels;
		pp->master_name = cfg->redis_master_name;
	}
	pp->breaker_failures = cfg->redis_breaker_failures;
	pp->breaker_window_ms = cfg->redis_breaker_window * 1000;
	pp->breaker_cooldown_ms = cfg->redis_breaker_cooldown * 1000;
	pp->read_retries = cfg->redis_read_retries;
	pp->wait_replicas = cfg->redis_wait_replicas;
	pp->wait_timeout_ms = cfg->redis_wait_timeout;
	pp->size = 1;
}

struct service *
service_new(const struct config *cfg, int nthreads, char **cause)
{
	struct service *svc = xcalloc(1, sizeof *svc);
	struct redis_pool_params pp;
	struct keyring_params kp;
	struct crypto_ctx *cc = NULL;
	uint8_t kek[CRYPTO_KEYLEN];
	int have_kek = 0;

	svc->cfg = cfg;
	svc->threads = nthreads;
	if (crypto_init(cause) != FA_OK)
		goto fail;
	if (keyring_kek_load(cfg->kek_file, kek, cause) != FA_OK)
		goto fail;
	have_kek = 1;

	service_pool_params(cfg, &pp);
	pp.size = nthreads + 1;
	if ((svc->pool = redis_pool_new(&pp, cause)) == NULL)
		goto fail;

	memset(&kp, 0, sizeof kp);
	kp.rotate_after_s = cfg->key_rotate_after;
	kp.rotate_after_seals = cfg->key_rotate_after_seals;
	kp.token_lifetime_s = cfg->access_token_ttl;
	kp.refresh_s = cfg->key_refresh_interval;
	svc->keyring = keyring_new(kek, &kp);

	cc = crypto_ctx_new();
	service_derive(cc, kek, SERVICE_LABEL_PEPPER, svc->pepper);
	service_derive(cc, kek, SERVICE_LABEL_USER_KEY, svc->user_key);
	crypto_ctx_free(cc);
	crypto_wipe(kek, sizeof kek);

	svc->discovery = ep_discovery_build(cfg->issuer, svc->discovery_etag);
	if (service_attach_shm(svc, cause) != FA_OK)
		goto fail;
	if ((svc->limits = limits_new(cfg, cause)) == NULL)
		goto fail;
	if ((svc->metrics_access = ep_metrics_access_new(cfg, cause)) == NULL)
		goto fail;
	svc->build_features = crypto_hw_features();
	audit_set_observer(monitor_observe);
	return svc;
fail:
	if (have_kek)
		crypto_wipe(kek, sizeof kek);
	service_free(svc);
	return NULL;
}

void
service_free(struct service *svc)
{
	if (svc == NULL)
		return;
	service_stop(svc);
	audit_set_observer(NULL);
	metrics_detach();
	ep_metrics_access_free(svc->metrics_access);
	free(svc->build_features);
	keyring_free(svc->keyring);
	redis_pool_free(svc->pool);
	free(svc->discovery);
	limits_free(svc->limits);
	admission_free(svc->admission);
	shm_close(svc->shm);
	crypto_wipe(svc->pepper, sizeof svc->pepper);
	crypto_wipe(svc->user_key, sizeof svc->user_key);
	free(svc);
}

/* Load the keys; make the first one if Redis has none. Logs why not. */
static int
service_load_keys(struct service *svc, struct redis_conn *rc)
{
	char *cause = NULL;
	uint32_t kid;
	int r;

	if ((r = keyring_load(svc->keyring, rc, &cause)) != FA_OK)
		goto out;
	if (keyring_count(svc->keyring) == 0) {
		if ((r = keyring_rotate(svc->keyring, rc, &kid, &cause)) == FA_OK)
			log_info("Redis had no sealing key; key %u is now in use", kid);
	}
out:
	if (r != FA_OK)
		log_warn("keys not loaded: %s", cause ? cause : "unknown error");
	free(cause);
	return r;
}

/*
 * The mirror subscriber: keeps a subscription to <prefix>events, applies each
 * message to the shared cache, and tells readers (mirror_set_connected,
 * mirror_beat) whether the cache may vouch for revocation state. Runs while
 * this process leads the instance's mirror.
 */
static void *
service_subscriber_main(void *arg)
{
	struct service *svc = arg;
	struct service_housekeeper *hk = svc->hk;
	struct mirror_region *m = shm_mirror(svc->shm);
	struct cache *c = shm_cache(svc->shm);
	struct redis_pool_params pp;
	struct events_sub *sub;
	char msg[EVENTS_MSG_MAX], *cause = NULL;
	int connected = 0, rc;

	service_pool_params(svc->cfg, &pp);
	/* The subscriber paces itself; a breaker would only delay its resubscription. */
	pp.breaker_failures = 0;
	pp.read_retries = 0;
	pp.wait_replicas = 0;
	if ((sub = events_sub_new(&pp, &cause)) == NULL) {
		log_err("mirror subscriber: %s", cause);
		free(cause);
		return NULL;
	}
	while (!atomic_load(&hk->sub_stop) &&
	    atomic_load(&m->owner) == hk->mirror_claim) {
		if (!connected) {
			if (events_sub_connect(sub) != FA_OK) {
				usleep(100 * 1000);
				continue;
			}
			/* Anything cached before now may predate a missed message. */
			mirror_set_connected(m, 1, shm_now());
			connected = 1;
			log_info("revocation mirror subscribed");
		}
		rc = events_sub_next(sub, 100, msg, sizeof msg);
		if (rc == FA_OK) {
			if (lookup_apply_event(c, msg, shm_now()) == FA_OK)
				atomic_fetch_add(&m->messages, 1);
			else
				log_warn("mirror: unknown message ignored");
		} else if (rc == FA_UNAVAIL) {
			mirror_set_connected(m, 0, shm_now());
			connected = 0;
			log_warn("revocation mirror lost its subscription: %s",
			    events_sub_errstr(sub));
			continue;
		}
		mirror_beat(m, shm_now());
	}
	if (connected && atomic_load(&m->owner) == hk->mirror_claim)
		mirror_set_connected(m, 0, shm_now());
	events_sub_free(sub);
	return NULL;
}

/* Lead the mirror if nobody does; start or stop the subscriber accordingly. */
static void
service_mirror_duty(struct service *svc)
{
	struct service_housekeeper *hk = svc->hk;
	int lead = mirror_lead(shm_mirror(svc->shm), shm_now(), &hk->mirror_claim);

	if (hk->sub_running && (!lead || atomic_load(&hk->sub_stop))) {
		atomic_store(&hk->sub_stop, 1);
		pthread_join(hk->sub_thread, NULL);
		hk->sub_running = 0;
	}
	if (lead && !hk->sub_running) {
		atomic_store(&hk->sub_stop, 0);
		if (pthread_create(&hk->sub_thread, NULL, service_subscriber_main, svc) == 0)
			hk->sub_running = 1;
	}
}

static void *
service_housekeeper_main(void *arg)
{
	struct service *svc = arg;
	struct service_housekeeper *hk = svc->hk;
	struct redis_conn *rc = redis_pool_conn(svc->pool, svc->threads);
	struct timespec deadline;
	char *cause = NULL;
	int loaded = keyring_count(svc->keyring) > 0;
	time_t last_keys = 0, last_sweep = time(NULL), now;

	pthread_mutex_lock(&hk->lock);
	while (!hk->stop) {
		pthread_mutex_unlock(&hk->lock);
		now = time(NULL);
		service_follow_segment(svc);
		service_mirror_duty(svc);
		if (!loaded) {
			loaded = service_load_keys(svc, rc) == FA_OK;
			last_keys = now;
		} else if (now - last_keys >= svc->cfg->key_refresh_interval) {
			last_keys = now;
			if (keyring_maintain(svc->keyring, rc, now, &cause) != FA_OK) {
				log_debug("key maintenance: %s", cause ? cause : "failed");
				free(cause);
				cause = NULL;
			}
		}
		monitor_tick(svc);
		/* The breaker's state for /metrics and shm stats (open -> half-open is a matter of time). */
		metrics_redis_circuit(redis_pool_breaker_state(svc->pool));
		if (now - last_sweep >= 10) {
			/* Claims left by writers that were killed mid-write. */
			cache_sweep(shm_cache(svc->shm));
			last_sweep = now;
		}
		pthread_mutex_lock(&hk->lock);
		/* A short tick: mirror leadership moves within a second of a death. */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 250 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if (!hk->stop)
			pthread_cond_timedwait(&hk->wake, &hk->lock, &deadline);
	}
	pthread_mutex_unlock(&hk->lock);
	if (hk->sub_running) {
		atomic_store(&hk->sub_stop, 1);
		pthread_join(hk->sub_thread, NULL);
		hk->sub_running = 0;
	}
	/* Step down so another process takes over at once. */
	if (hk->mirror_claim != 0) {
		uint64_t mine = hk->mirror_claim;

		atomic_compare_exchange_strong(&shm_mirror(svc->shm)->owner, &mine, 0);
	}
	return NULL;
}

void
service_start(struct service *svc)
{
	struct service_housekeeper *hk;
	int err;

	service_load_keys(svc, redis_pool_conn(svc->pool, svc->threads));
	hk = xcalloc(1, sizeof *hk);
	pthread_mutex_init(&hk->lock, NULL);
	pthread_cond_init(&hk->wake, NULL);
	svc->hk = hk;
	if ((err = pthread_create(&hk->thread, NULL, service_housekeeper_main, svc)) != 0)
		log_err("housekeeping thread: %s", strerror(err));
	else
		hk->running = 1;
}

void
service_stop(struct service *svc)
{
	struct service_housekeeper *hk = svc->hk;

	if (hk == NULL)
		return;
	pthread_mutex_lock(&hk->lock);
	hk->stop = 1;
	pthread_cond_signal(&hk->wake);
	pthread_mutex_unlock(&hk->lock);
	if (hk->running)
		pthread_join(hk->thread, NULL);
	pthread_mutex_destroy(&hk->lock);
	pthread_cond_destroy(&hk->wake);
	free(hk);
	svc->hk = NULL;
}

struct service_thread *
service_thread_new(struct service *svc, int i)
{
	struct service_thread *t = xcalloc(1, sizeof *t);

	t->svc = svc;
	t->crypto = crypto_ctx_new();
	t->redis = redis_pool_conn(svc->pool, i);
	buf_init(&t->scratch);
	return t;
}

void
service_thread_free(struct service_thread *t)
{
	if (t == NULL)
		return;
	crypto_ctx_free(t->crypto);
	buf_wipe(&t->scratch);
	free(t);
}
