/*
 * service.h -- what one responder process needs to answer requests: its
 * configuration, the Redis pool, the keyring, the client-secret pepper and the
 * prebuilt discovery document; plus the per-thread context handed to every
 * endpoint. The process owns one struct service; each request thread owns one
 * struct service_thread and never shares it.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <stdint.h>

#include "core/buf.h"
#include "crypto/crypto.h"

struct config;
struct keyring;
struct redis_pool;
struct redis_conn;
struct redis_pool_params;
struct shm;
struct admission;
struct limits;
struct metrics_access;

struct service {
	const struct config	*cfg;		/* not owned */
	struct redis_pool	*pool;		/* slots 0..threads-1 for requests, last for housekeeping */
	struct keyring		*keyring;
	uint8_t			 pepper[CRYPTO_HASHLEN];	/* HMAC key for client secrets */
	uint8_t			 user_key[CRYPTO_KEYLEN];	/* seals user claims at rest */
	char			*discovery;	/* metadata JSON (RFC 8414) */
	char			 discovery_etag[24];	/* quoted strong ETag */
	int			 threads;	/* request threads */
	/*
	 * This instance's segment on this host, and the Argon2 slots in it.
	 * Atomic: the housekeeper swaps in the current segment when another
	 * process replaced it (other sizes); the old mapping is never unmapped,
	 * since a request may still hold pointers into it.
	 */
	struct shm *_Atomic	 shm;
	struct admission *_Atomic admission;
	int			 admission_limit;	/* host-wide Argon2 hashes at once */
	struct limits		*limits;	/* rate-limit policies */
	struct service_housekeeper *hk;		/* background maintenance */
	struct metrics_access	*metrics_access;	/* who may GET /metrics (ep_metrics.h) */
	char			*build_features;	/* libgcrypt's hardware features */
};

struct service_thread {
	struct service		*svc;
	struct crypto_ctx	*crypto;
	struct redis_conn	*redis;
	struct buf		 scratch;	/* JSON building, reused */
	const char		*remote_addr;	/* the current request's client address */
};

/*
 * Set up the service for cfg with nthreads request threads: read the KEK,
 * derive the pepper, make the pool and keyring, build the discovery document.
 * No Redis I/O yet. NULL with *cause on failure. Free with service_free.
 */
struct service *service_new(const struct config *, int nthreads, char **cause);
void	service_free(struct service *);
/*
 * Load keys (creating the first key when Redis has none) and start the
 * housekeeping thread, which keeps retrying if Redis is away now.
 */
void	service_start(struct service *);
/*
 * Pool parameters from the configuration (timeouts, Sentinel, breaker,
 * retries, WAIT), size 1; the strings point into cfg.
 */
void	service_pool_params(const struct config *, struct redis_pool_params *);
/* Stop the housekeeping thread (waits for it). */
void	service_stop(struct service *);
/* Context for request thread i; free with service_thread_free. */
struct service_thread *service_thread_new(struct service *, int i);
void	service_thread_free(struct service_thread *);
/*
 * Keys derived from the KEK, so every host has them without storing them:
 * HMAC-SHA256(KEK, label). The client-secret pepper and the key that seals
 * user claims at rest.
 */
#define SERVICE_LABEL_PEPPER	"fastauth client-secret pepper v1"
#define SERVICE_LABEL_USER_KEY	"fastauth user-data key v1"
void	service_derive(struct crypto_ctx *, const uint8_t kek[CRYPTO_KEYLEN],
	    const char *label, uint8_t out[CRYPTO_HASHLEN]);

#endif
