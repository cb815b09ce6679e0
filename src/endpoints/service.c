/*
 * service.c -- the per-process state behind the endpoints, and the
 * housekeeping thread that keeps the keyring current (reload, automatic
 * rotation, retirement) without ever putting that work on a request's path.
 *
 * The housekeeper uses the pool's last slot; request thread i uses slot i.
 * If Redis is away at start the process still starts: /ready says 503 and the
 * housekeeper keeps trying, so a web server that spawns us is not stuck in a
 * restart loop while Redis comes up.
 */
#include <errno.h>
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
#include "endpoints/ep_discovery.h"
#include "endpoints/service.h"
#include "shm/admission.h"
#include "shm/shm.h"
#include "store/redis_pool.h"

struct service_housekeeper {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	int		 stop;		/* guarded by lock */
	int		 running;
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
	long limit = cfg->argon2_max_concurrent;

	sp.ratelimit_entries = (uint32_t)cfg->shm_ratelimit_entries;
	sp.cache_entries = (uint32_t)cfg->shm_cache_entries;
	sp.cache_value_max = (uint32_t)cfg->shm_cache_value_max;
	if (shm_open_segment(cfg->instance, &sp, &svc->shm, cause) != FA_OK)
		return FA_ERR;
	if (limit == 0) {
		/* One hash per core: each runs argon2_parallelism lanes. */
		limit = sysconf(_SC_NPROCESSORS_ONLN) / cfg->argon2_parallelism;
		if (limit < 1)
			limit = 1;
	}
	svc->admission = admission_new(shm_admission(svc->shm), (int)limit);
	return FA_OK;
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

	memset(&pp, 0, sizeof pp);
	pp.url = cfg->redis_url;
	pp.prefix = cfg->redis_prefix;
	pp.connect_timeout_ms = cfg->redis_connect_timeout_ms;
	pp.command_timeout_ms = cfg->redis_command_timeout_ms;
	pp.backoff_min_ms = cfg->redis_backoff_min_ms;
	pp.backoff_max_ms = cfg->redis_backoff_max_ms;
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
	keyring_free(svc->keyring);
	redis_pool_free(svc->pool);
	free(svc->discovery);
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

static void *
service_housekeeper_main(void *arg)
{
	struct service *svc = arg;
	struct service_housekeeper *hk = svc->hk;
	struct redis_conn *rc = redis_pool_conn(svc->pool, svc->threads);
	struct timespec deadline;
	char *cause = NULL;
	int loaded = keyring_count(svc->keyring) > 0;

	pthread_mutex_lock(&hk->lock);
	while (!hk->stop) {
		pthread_mutex_unlock(&hk->lock);
		if (!loaded)
			loaded = service_load_keys(svc, rc) == FA_OK;
		else if (keyring_maintain(svc->keyring, rc, time(NULL), &cause) != FA_OK) {
			log_debug("key maintenance: %s", cause ? cause : "failed");
			free(cause);
			cause = NULL;
		}
		pthread_mutex_lock(&hk->lock);
		/* Every key_refresh_interval; every second while keys are missing. */
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += loaded ? svc->cfg->key_refresh_interval : 1;
		if (!hk->stop)
			pthread_cond_timedwait(&hk->wake, &hk->lock, &deadline);
	}
	pthread_mutex_unlock(&hk->lock);
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
