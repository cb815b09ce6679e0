/*
 * keyring.c -- the data keys that seal tokens, shared by every host through
 * Redis and wrapped by each host's key-encryption key (layout in keyring.h).
 *
 * It owns the KEK file format (64 lower-case hex characters and a newline,
 * mode 0600), the wrapping (AES-256-GCM under the KEK with AAD
 * "fastauth-key:<kid>", so a wrapped key copied to another id does not
 * unwrap), the process's unwrapped copy of every live key, the per-key count
 * of seals not yet added to Redis, and the rotation protocol.
 *
 * Concurrency: request threads call keyring_current and keyring_lookup, which
 * take a read lock on the key array and copy the 32 key bytes out, and count
 * a seal with a relaxed atomic add (no I/O, no write lock). A load builds a
 * new array off-lock and swaps it in under the write lock; loads are
 * serialised by load_mu so the generation remembered always matches the array.
 * keyring_maintain runs in one housekeeping thread per process.
 *
 * Rotation: lock:rotate (SET NX PX 10000 with a random value, released by a
 * compare-and-delete script) ensures one rotating process at a time; the
 * commit is a MULTI/EXEC under WATCH of the lock, so a holder whose lock
 * expired (a stalled process) cannot add a key after another has. A rotation
 * is skipped if the newest key in Redis is no longer the one the caller based
 * its decision on: someone else rotated meanwhile, and that key answers the
 * request. So concurrent rotations, administrative or automatic, add exactly
 * one key.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "store/redis_pool.h"

#define KEYRING_WRAPLEN		(CRYPTO_KEYLEN + CRYPTO_OVERHEAD)
#define KEYRING_WRAPTEXT	B64URL_ENCLEN(KEYRING_WRAPLEN)
#define KEYRING_LOCK_MS		10000	/* lock:rotate expiry; a rotation takes ms */
#define KEYRING_WAIT_MS		2000	/* keyring_rotate waits this long for another rotation */
#define KEYRING_POLL_MS		50
#define KEYRING_RELOAD_MS	1000	/* keyring_reload_for: at most one load per this */
#define KEYRING_SKEW_S		60	/* clock skew between hosts, for deletion */

/* Release lock:rotate only if it still holds our value. KEYS: lock. ARGV: value. */
static const char keyring_unlock_script[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then "
	"return redis.call('DEL', KEYS[1]) end return 0";
/* Add seals to a key that still exists (HINCRBY alone would resurrect a deleted one). */
static const char keyring_flush_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then "
	"return redis.call('HINCRBY', KEYS[1], 'seals', ARGV[1]) end return -1";
/* Delete a key once: only the process whose ZREM succeeds bumps the generation. */
static const char keyring_delete_script[] =
	"if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then "
	"redis.call('DEL', KEYS[2]) redis.call('INCR', KEYS[3]) return 1 end return 0";

struct keyring_key {
	uint32_t	 kid;
	time_t		 created;	/* s since epoch */
	time_t		 retired_at;	/* s since epoch; 0 while it is the newest */
	long long	 seals;		/* all processes' seals, as Redis had it at load */
	_Atomic long long unflushed;	/* this process's seals not yet added to Redis */
	uint8_t		 key[CRYPTO_KEYLEN];
};

struct keyring {
	uint8_t		 kek[CRYPTO_KEYLEN];
	struct keyring_params params;
	pthread_rwlock_t lock;		/* guards keys and nkeys */
	struct keyring_key *keys;	/* sorted by kid; the last one seals */
	int		 nkeys;
	pthread_mutex_t	 load_mu;	/* one load at a time */
	_Atomic long long generation;	/* keys:generation read by the last load */
	_Atomic long long load_at_ms;	/* monotonic ms of the last load attempt */
};

/* A key's record as Redis has it. */
struct keyring_rec {
	uint32_t	 kid;
	time_t		 created;
	long long	 seals;
	time_t		 retired_at;
	char		*wrapped;	/* base64url */
};

static long long
keyring_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
keyring_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ KEK file */

/* Make the new directory entry durable too; best effort. */
static void
keyring_sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd;

	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int
keyring_kek_create(const char *path, char **cause)
{
	uint8_t kek[CRYPTO_KEYLEN];
	char text[2 * CRYPTO_KEYLEN + 2];
	size_t off = 0, len;
	ssize_t n;
	int fd = -1, rc = FA_ERR, made = 0;

	*cause = NULL;
	if (crypto_random(kek, sizeof kek) != FA_OK) {
		*cause = xstrdup("no random bytes for the KEK");
		goto out;
	}
	crypto_hex(kek, sizeof kek, text);
	text[2 * CRYPTO_KEYLEN] = '\n';
	text[2 * CRYPTO_KEYLEN + 1] = '\0';
	len = 2 * CRYPTO_KEYLEN + 1;

	/* O_EXCL: never replace a KEK, every wrapped key in Redis depends on it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	made = 1;
	/* The umask can only take bits away; make it exactly 0600 regardless. */
	if (fchmod(fd, 0600) == -1) {
		*cause = xasprintf("%s: chmod: %s", path, strerror(errno));
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("%s: write: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1) {
		*cause = xasprintf("%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		*cause = xasprintf("%s: close: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	keyring_sync_dir(path);
	rc = FA_OK;
out:
	if (fd != -1)
		close(fd);
	if (rc != FA_OK && made)
		unlink(path);
	explicit_bzero(kek, sizeof kek);
	explicit_bzero(text, sizeof text);
	return rc;
}

int
keyring_kek_load(const char *path, uint8_t kek[CRYPTO_KEYLEN], char **cause)
{
	char text[2 * CRYPTO_KEYLEN + 8];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc = FA_ERR;

	*cause = NULL;
	/*
	 * Symlinks are followed (Kubernetes mounts secrets as symlinks); the
	 * checks below are on the file actually opened.
	 */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return FA_ERR;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("%s: fstat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = xasprintf("%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		*cause = xasprintf("%s: mode %04o lets group or others read the KEK; "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	/* Read one byte more than a valid file has, to notice a longer one. */
	while (len < sizeof text) {
		if ((n = read(fd, text + len, sizeof text - len)) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == 2 * CRYPTO_KEYLEN + 1 && text[2 * CRYPTO_KEYLEN] == '\n')
		len--;
	if (len != 2 * CRYPTO_KEYLEN) {
		*cause = xasprintf("%s: a KEK file holds 64 hex characters and a newline",
		    path);
		goto out;
	}
	if (crypto_unhex(text, 2 * CRYPTO_KEYLEN, kek, CRYPTO_KEYLEN) != FA_OK) {
		*cause = xasprintf("%s: the KEK is not lower-case hex", path);
		explicit_bzero(kek, CRYPTO_KEYLEN);
		goto out;
	}
	rc = FA_OK;
out:
	close(fd);
	explicit_bzero(text, sizeof text);
	return rc;
}

/* --------------------------------------------------------------- the keyring */

struct keyring *
keyring_new(const uint8_t kek[CRYPTO_KEYLEN], const struct keyring_params *params)
{
	struct keyring *kr = xcalloc(1, sizeof *kr);

	memcpy(kr->kek, kek, CRYPTO_KEYLEN);
	kr->params = *params;
	pthread_rwlock_init(&kr->lock, NULL);
	pthread_mutex_init(&kr->load_mu, NULL);
	atomic_init(&kr->generation, -1);	/* no load yet: the first maintain loads */
	atomic_init(&kr->load_at_ms, 0);
	return kr;
}

static void
keyring_keys_free(struct keyring_key *keys, int n)
{
	if (keys == NULL)
		return;
	explicit_bzero(keys, (size_t)n * sizeof *keys);
	free(keys);
}

void
keyring_free(struct keyring *kr)
{
	if (kr == NULL)
		return;
	keyring_keys_free(kr->keys, kr->nkeys);
	pthread_rwlock_destroy(&kr->lock);
	pthread_mutex_destroy(&kr->load_mu);
	explicit_bzero(kr, sizeof *kr);
	free(kr);
}

static void
keyring_aad(uint32_t kid, char *aad, size_t cap)
{
	snprintf(aad, cap, "fastauth-key:%u", kid);
}

/* Decimal of a reply string; FA_OK or FA_ERR. */
static int
keyring_number(const redisReply *r, long long min, long long *v)
{
	char *end;

	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 19 ||
	    r->str[0] < '0' || r->str[0] > '9')
		return FA_ERR;
	errno = 0;
	*v = strtoll(r->str, &end, 10);
	if (errno != 0 || end != r->str + r->len || *v < min)
		return FA_ERR;
	return FA_OK;
}

/* NULL or an error reply: FA_UNAVAIL with a cause; FA_OK otherwise. */
static int
keyring_reply_ok(struct redis_conn *conn, const redisReply *r, const char *what,
    char **cause)
{
	if (r == NULL) {
		*cause = xasprintf("Redis %s: %s", what, redis_conn_errstr(conn));
		return FA_UNAVAIL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("keyring: %s: Redis answered: %.*s", what, (int)r->len, r->str);
		*cause = xasprintf("Redis %s: %.*s", what, (int)r->len, r->str);
		return FA_UNAVAIL;
	}
	return FA_OK;
}

static void
keyring_recs_free(struct keyring_rec *recs, int n)
{
	int i;

	if (recs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(recs[i].wrapped);
	free(recs);
}

/* Parse an HGETALL of key:<kid>; FA_OK, FA_NOTFOUND (deleted meanwhile), FA_ERR. */
static int
keyring_rec_parse(const redisReply *r, struct keyring_rec *rec, char **cause)
{
	const char *field = "layout";
	unsigned seen = 0;
	long long v;
	size_t i;

	if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
		return FA_NOTFOUND;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		goto corrupt;
	for (i = 0; i < r->elements; i += 2) {
		const redisReply *k = r->element[i], *val = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
			goto corrupt;
		field = k->str;
		if (strcmp(k->str, "wrapped") == 0) {
			free(rec->wrapped);
			rec->wrapped = xstrndup(val->str, val->len);
			seen |= 1;
		} else if (strcmp(k->str, "created") == 0) {
			if (keyring_number(val, 0, &v) != FA_OK)
				goto corrupt;
			rec->created = (time_t)v;
			seen |= 2;
		} else if (strcmp(k->str, "seals") == 0) {
			if (keyring_number(val, 0, &v) != FA_OK)
				goto corrupt;
			rec->seals = v;
			seen |= 4;
		} else if (strcmp(k->str, "retired_at") == 0) {
			if (keyring_number(val, 0, &v) != FA_OK)
				goto corrupt;
			rec->retired_at = (time_t)v;
			seen |= 8;
		}
	}
	if (seen == 15)
		return FA_OK;
	field = "missing field";
corrupt:
	*cause = xasprintf("key %u: the record in Redis is corrupt (%s)", rec->kid, field);
	return FA_ERR;
}

/*
 * Every key record as Redis has it, sorted by kid, and the generation read
 * before the list (so a change after the read makes the next maintain load
 * again rather than go unnoticed). Two round trips. *recs freed with
 * keyring_recs_free.
 */
static int
keyring_fetch_once(struct redis_conn *conn, struct keyring_rec **recsp, int *np,
    long long *generation, char **cause)
{
	const char *prefix = redis_conn_prefix(conn);
	redisReply *rgen = NULL, *rlist = NULL, **rkeys = NULL;
	struct keyring_rec *recs = NULL;
	long long v;
	size_t i, n = 0;
	int rc, out_n = 0;

	*recsp = NULL;
	*np = 0;
	if (redis_conn_append(conn, "GET %skeys:generation", prefix) != FA_OK ||
	    redis_conn_append(conn, "ZRANGE %skeys 0 -1", prefix) != FA_OK) {
		*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
		return FA_UNAVAIL;
	}
	rgen = redis_conn_reply(conn);
	rlist = redis_conn_reply(conn);
	if ((rc = keyring_reply_ok(conn, rgen, "GET keys:generation", cause)) != FA_OK ||
	    (rc = keyring_reply_ok(conn, rlist, "ZRANGE keys", cause)) != FA_OK)
		goto out;
	*generation = 0;
	if (rgen->type != REDIS_REPLY_NIL && keyring_number(rgen, 0, generation) != FA_OK) {
		*cause = xstrdup("keys:generation in Redis is not a number");
		rc = FA_ERR;
		goto out;
	}
	if (rlist->type != REDIS_REPLY_ARRAY) {
		*cause = xstrdup("the keys set in Redis has the wrong type");
		rc = FA_ERR;
		goto out;
	}
	n = rlist->elements;
	recs = xcalloc(n + 1, sizeof *recs);
	for (i = 0; i < n; i++) {
		if (keyring_number(rlist->element[i], 1, &v) != FA_OK || v > UINT32_MAX) {
			*cause = xstrdup("the keys set in Redis holds a bad key id");
			rc = FA_ERR;
			goto out;
		}
		recs[i].kid = (uint32_t)v;
	}
	if (n == 0) {
		rc = FA_OK;
		goto out;
	}

	/* Every record in one round trip. */
	for (i = 0; i < n; i++)
		if (redis_conn_append(conn, "HGETALL %skey:%u", prefix, recs[i].kid) != FA_OK) {
			*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
			rc = FA_UNAVAIL;
			goto out;
		}
	rkeys = xcalloc(n, sizeof *rkeys);
	for (i = 0; i < n; i++)		/* read them all, so none stays pending */
		rkeys[i] = redis_conn_reply(conn);
	for (i = 0; i < n; i++) {
		if ((rc = keyring_reply_ok(conn, rkeys[i], "HGETALL key", cause)) != FA_OK)
			goto out;
		recs[out_n].kid = recs[i].kid;
		rc = keyring_rec_parse(rkeys[i], &recs[out_n], cause);
		if (rc == FA_NOTFOUND)	/* deleted between ZRANGE and HGETALL */
			continue;
		if (rc != FA_OK)
			goto out;
		out_n++;
	}
	rc = FA_OK;
out:
	redis_pool_reply_free(rgen);
	redis_pool_reply_free(rlist);
	for (i = 0; rkeys != NULL && i < n; i++)
		redis_pool_reply_free(rkeys[i]);
	free(rkeys);
	if (rc != FA_OK) {
		keyring_recs_free(recs, (int)n);
		return rc;
	}
	/* Entries past out_n may hold a wrapped string of a skipped record. */
	for (i = (size_t)out_n; i < n; i++) {
		free(recs[i].wrapped);
		recs[i].wrapped = NULL;
	}
	*recsp = recs;
	*np = out_n;
	return FA_OK;
}

/* keyring_fetch_once, retried: it only reads. */
static int
keyring_fetch(struct redis_conn *conn, struct keyring_rec **recsp, int *np,
    long long *generation, char **cause)
{
	int rc, attempt;

	for (attempt = 0;; attempt++) {
		rc = keyring_fetch_once(conn, recsp, np, generation, cause);
		if (rc != FA_UNAVAIL || !redis_conn_retry(conn, attempt))
			return rc;
		free(*cause);
		*cause = NULL;
	}
}

static int
keyring_rec_cmp(const void *a, const void *b)
{
	const struct keyring_rec *x = a, *y = b;

	return x->kid < y->kid ? -1 : x->kid > y->kid;
}

/* Unwrap one key; FA_ERR with a cause naming the kid. */
static int
keyring_unwrap(struct keyring *kr, struct crypto_ctx *ctx, const struct keyring_rec *rec,
    uint8_t key[CRYPTO_KEYLEN], char **cause)
{
	uint8_t wrapped[KEYRING_WRAPLEN + 4];
	char aad[32];
	size_t len;
	int rc = FA_ERR;

	if (b64url_decode(rec->wrapped, strlen(rec->wrapped), wrapped, sizeof wrapped,
	    &len) != FA_OK || len != KEYRING_WRAPLEN) {
		*cause = xasprintf("key %u: the wrapped key in Redis is malformed", rec->kid);
		goto out;
	}
	keyring_aad(rec->kid, aad, sizeof aad);
	if (crypto_open(ctx, kr->kek, aad, strlen(aad), wrapped, len, key) != FA_OK) {
		*cause = xasprintf("key %u does not unwrap with this host's KEK "
		    "(a different KEK file than the host that made it?)", rec->kid);
		goto out;
	}
	rc = FA_OK;
out:
	explicit_bzero(wrapped, sizeof wrapped);
	return rc;
}

/* Fetch, unwrap and swap in every key. load_mu held. */
static int
keyring_load_locked(struct keyring *kr, struct redis_conn *conn, char **cause)
{
	struct keyring_rec *recs = NULL;
	struct keyring_key *keys = NULL, *old;
	struct crypto_ctx *ctx = NULL;
	long long generation = 0;
	int i, j, n = 0, nold, rc;

	atomic_store(&kr->load_at_ms, keyring_now_ms());
	if ((rc = keyring_fetch(conn, &recs, &n, &generation, cause)) != FA_OK)
		goto out;
	qsort(recs, (size_t)n, sizeof *recs, keyring_rec_cmp);
	keys = xcalloc((size_t)n + 1, sizeof *keys);
	ctx = crypto_ctx_new();
	for (i = 0; i < n; i++) {
		keys[i].kid = recs[i].kid;
		keys[i].created = recs[i].created;
		keys[i].retired_at = recs[i].retired_at;
		keys[i].seals = recs[i].seals;
		atomic_init(&keys[i].unflushed, 0);
		if ((rc = keyring_unwrap(kr, ctx, &recs[i], keys[i].key, cause)) != FA_OK)
			goto out;
	}

	pthread_rwlock_wrlock(&kr->lock);
	old = kr->keys;
	nold = kr->nkeys;
	/* Seals not yet flushed stay with their key (both arrays sorted by kid). */
	for (i = j = 0; i < nold && j < n; ) {
		if (old[i].kid < keys[j].kid)
			i++;
		else if (old[i].kid > keys[j].kid)
			j++;
		else {
			atomic_store(&keys[j].unflushed, atomic_load(&old[i].unflushed));
			i++;
			j++;
		}
	}
	kr->keys = keys;
	kr->nkeys = n;
	pthread_rwlock_unlock(&kr->lock);
	keyring_keys_free(old, nold);
	keys = NULL;
	atomic_store(&kr->generation, generation);
	rc = FA_OK;
out:
	keyring_keys_free(keys, n);
	keyring_recs_free(recs, n);
	crypto_ctx_free(ctx);
	return rc;
}

int
keyring_load(struct keyring *kr, struct redis_conn *conn, char **cause)
{
	int rc;

	*cause = NULL;
	pthread_mutex_lock(&kr->load_mu);
	rc = keyring_load_locked(kr, conn, cause);
	pthread_mutex_unlock(&kr->load_mu);
	return rc;
}

int
keyring_count(struct keyring *kr)
{
	int n;

	pthread_rwlock_rdlock(&kr->lock);
	n = kr->nkeys;
	pthread_rwlock_unlock(&kr->lock);
	return n;
}

int
keyring_current(struct keyring *kr, uint32_t *kid, uint8_t key[CRYPTO_KEYLEN])
{
	struct keyring_key *k;
	int rc = FA_NOTFOUND;

	pthread_rwlock_rdlock(&kr->lock);
	if (kr->nkeys > 0) {
		k = &kr->keys[kr->nkeys - 1];
		*kid = k->kid;
		memcpy(key, k->key, CRYPTO_KEYLEN);
		atomic_fetch_add_explicit(&k->unflushed, 1, memory_order_relaxed);
		rc = FA_OK;
	}
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

/* Index of kid in the sorted array, or -1. Lock held. */
static int
keyring_find(const struct keyring *kr, uint32_t kid)
{
	int lo = 0, hi = kr->nkeys - 1, mid;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		if (kr->keys[mid].kid == kid)
			return mid;
		if (kr->keys[mid].kid < kid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int
keyring_lookup(struct keyring *kr, uint32_t kid, uint8_t key[CRYPTO_KEYLEN])
{
	int i, rc = FA_NOTFOUND;

	pthread_rwlock_rdlock(&kr->lock);
	if ((i = keyring_find(kr, kid)) != -1) {
		memcpy(key, kr->keys[i].key, CRYPTO_KEYLEN);
		rc = FA_OK;
	}
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

/* 1 if kid is loaded; *newest gets the newest loaded kid (0 if none). */
static int
keyring_known(struct keyring *kr, uint32_t kid, uint32_t *newest)
{
	int known;

	pthread_rwlock_rdlock(&kr->lock);
	known = keyring_find(kr, kid) != -1;
	*newest = kr->nkeys > 0 ? kr->keys[kr->nkeys - 1].kid : 0;
	pthread_rwlock_unlock(&kr->lock);
	return known;
}

int
keyring_reload_for(struct keyring *kr, struct redis_conn *conn, uint32_t kid)
{
	uint32_t newest;
	char *cause = NULL;
	int rc;

	if (keyring_known(kr, kid, &newest))
		return FA_OK;
	/*
	 * An older id we do not have was deleted (or never existed): reloading
	 * would not find it, and a token with a made-up id must not cost more
	 * than one load per second.
	 */
	if (kid < newest ||
	    keyring_now_ms() - atomic_load(&kr->load_at_ms) < KEYRING_RELOAD_MS)
		return FA_NOTFOUND;

	pthread_mutex_lock(&kr->load_mu);
	/* Another thread may have loaded while we waited for the mutex. */
	if (keyring_known(kr, kid, &newest)) {
		rc = FA_OK;
		goto out;
	}
	if (kid < newest ||
	    keyring_now_ms() - atomic_load(&kr->load_at_ms) < KEYRING_RELOAD_MS) {
		rc = FA_NOTFOUND;
		goto out;
	}
	rc = keyring_load_locked(kr, conn, &cause);
	if (rc == FA_UNAVAIL)
		goto out;
	if (rc != FA_OK) {
		log_err("keyring: reload for key %u: %s", kid, cause);
		rc = FA_NOTFOUND;
		goto out;
	}
	rc = keyring_known(kr, kid, &newest) ? FA_OK : FA_NOTFOUND;
out:
	pthread_mutex_unlock(&kr->load_mu);
	free(cause);
	return rc;
}

/* --------------------------------------------------------------- rotation */

/* Best effort: forget a WATCH on a connection we keep using. */
static void
keyring_unwatch(struct redis_conn *conn)
{
	redis_pool_reply_free(redis_conn_command(conn, "UNWATCH"));
}

static void
keyring_unlock(struct redis_conn *conn, const char *token)
{
	const char *prefix = redis_conn_prefix(conn);
	redisReply *r;

	r = redis_conn_command(conn, "EVAL %s 1 %slock:rotate %s",
	    keyring_unlock_script, prefix, token);
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warn("keyring: cannot release the rotation lock (it expires "
		    "in %d s): %s", KEYRING_LOCK_MS / 1000,
		    r == NULL ? redis_conn_errstr(conn) : r->str);
	redis_pool_reply_free(r);
}

/* The newest kid from a ZREVRANGE keys 0 0 reply, 0 if none; -1 if malformed. */
static long long
keyring_newest_of(const redisReply *r)
{
	long long v;

	if (r->type != REDIS_REPLY_ARRAY)
		return -1;
	if (r->elements == 0)
		return 0;
	if (keyring_number(r->element[0], 1, &v) != FA_OK || v > UINT32_MAX)
		return -1;
	return v;
}

/*
 * Try lock:rotate once, reading the newest kid in the same round trip.
 * *taken 0/1, *newest. FA_OK or FA_UNAVAIL/FA_ERR with a cause.
 */
static int
keyring_try_lock(struct redis_conn *conn, const char *token, int *taken,
    uint32_t *newest, char **cause)
{
	const char *prefix = redis_conn_prefix(conn);
	redisReply *rnewest = NULL, *rset = NULL;
	long long v;
	int rc;

	*taken = 0;
	if (redis_conn_append(conn, "ZREVRANGE %skeys 0 0", prefix) != FA_OK ||
	    redis_conn_append(conn, "SET %slock:rotate %s NX PX %d", prefix, token,
	    KEYRING_LOCK_MS) != FA_OK) {
		*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
		return FA_UNAVAIL;
	}
	rnewest = redis_conn_reply(conn);
	rset = redis_conn_reply(conn);
	if ((rc = keyring_reply_ok(conn, rnewest, "ZREVRANGE keys", cause)) != FA_OK ||
	    (rc = keyring_reply_ok(conn, rset, "SET lock:rotate", cause)) != FA_OK)
		goto out;
	*taken = rset->type == REDIS_REPLY_STATUS;
	if ((v = keyring_newest_of(rnewest)) < 0) {
		*cause = xstrdup("the keys set in Redis holds a bad key id");
		rc = FA_ERR;
		goto out;
	}
	*newest = (uint32_t)v;
	rc = FA_OK;
out:
	if (rc != FA_OK && *taken)
		keyring_unlock(conn, token);
	if (rc != FA_OK)
		*taken = 0;
	redis_pool_reply_free(rnewest);
	redis_pool_reply_free(rset);
	return rc;
}

/*
 * With lock:rotate held (value token): add a key unless the newest key is no
 * longer before (someone else rotated; *kid = theirs, returns FA_OK too).
 * The new key is created at now and retires before at now.
 */
static int
keyring_add_locked(struct keyring *kr, struct redis_conn *conn, const char *token,
    uint32_t before, time_t now, uint32_t *kid, char **cause)
{
	const char *prefix = redis_conn_prefix(conn);
	redisReply *r[4] = { NULL, NULL, NULL, NULL }, *rexec = NULL;
	uint8_t key[CRYPTO_KEYLEN], wrapped[KEYRING_WRAPLEN];
	char text[KEYRING_WRAPTEXT + 1], aad[32];
	struct crypto_ctx *ctx = NULL;
	int i, nq, watching = 0, rc = FA_UNAVAIL;
	long long v;

	/*
	 * WATCH the lock: if it expires or changes hands before EXEC, the
	 * transaction is refused, so a stalled holder cannot add a second key.
	 */
	if (redis_conn_append(conn, "WATCH %slock:rotate", prefix) != FA_OK ||
	    redis_conn_append(conn, "GET %slock:rotate", prefix) != FA_OK ||
	    redis_conn_append(conn, "ZREVRANGE %skeys 0 0", prefix) != FA_OK ||
	    redis_conn_append(conn, "HGET %skey:%u wrapped", prefix, before) != FA_OK) {
		*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
		goto out;
	}
	watching = 1;
	for (i = 0; i < 4; i++)
		r[i] = redis_conn_reply(conn);
	for (i = 0; i < 4; i++)
		if ((rc = keyring_reply_ok(conn, r[i], "rotation check", cause)) != FA_OK)
			goto out;
	if (r[1]->type != REDIS_REPLY_STRING || strcmp(r[1]->str, token) != 0) {
		*cause = xstrdup("lost the rotation lock (expired); no key added");
		rc = FA_ERR;
		goto out;
	}
	if ((v = keyring_newest_of(r[2])) < 0) {
		*cause = xstrdup("the keys set in Redis holds a bad key id");
		rc = FA_ERR;
		goto out;
	}
	if ((uint32_t)v != before) {
		*kid = (uint32_t)v;
		rc = FA_OK;
		goto out;
	}
	ctx = crypto_ctx_new();
	/*
	 * A host with the wrong KEK file (fastauthctl on a new machine) must not
	 * add a key that no other host can unwrap: prove ours opens the newest.
	 */
	if (before != 0) {
		struct keyring_rec rec = { .kid = before };

		if (r[3]->type != REDIS_REPLY_STRING) {
			*cause = xasprintf("key %u: no wrapped key in Redis", before);
			rc = FA_ERR;
			goto out;
		}
		rec.wrapped = r[3]->str;
		rc = keyring_unwrap(kr, ctx, &rec, key, cause);
		explicit_bzero(key, sizeof key);
		if (rc != FA_OK)
			goto out;
	}

	rexec = redis_conn_command(conn, "INCR %skey:next_id", prefix);
	if ((rc = keyring_reply_ok(conn, rexec, "INCR key:next_id", cause)) != FA_OK)
		goto out;
	if (rexec->type != REDIS_REPLY_INTEGER || rexec->integer < 1 ||
	    rexec->integer > UINT32_MAX || (uint32_t)rexec->integer <= before) {
		*cause = xstrdup("key:next_id in Redis is out of range or behind the keys");
		rc = FA_ERR;
		goto out;
	}
	*kid = (uint32_t)rexec->integer;
	redis_pool_reply_free(rexec);
	rexec = NULL;

	if (crypto_random(key, sizeof key) != FA_OK) {
		*cause = xstrdup("no random bytes for a new key");
		rc = FA_ERR;
		goto out;
	}
	keyring_aad(*kid, aad, sizeof aad);
	if (crypto_seal(ctx, kr->kek, aad, strlen(aad), key, sizeof key, wrapped) != FA_OK) {
		*cause = xasprintf("key %u: wrapping failed", *kid);
		rc = FA_ERR;
		goto out;
	}
	b64url_encode(wrapped, sizeof wrapped, text);

	/* One transaction: a reader sees the old set or the new one, never half. */
	rc = FA_UNAVAIL;
	if (redis_conn_append(conn, "MULTI") != FA_OK ||
	    redis_conn_append(conn, "HSET %skey:%u wrapped %s created %lld seals 0 "
	    "retired_at 0", prefix, *kid, text, (long long)now) != FA_OK ||
	    redis_conn_append(conn, "ZADD %skeys %u %u", prefix, *kid, *kid) != FA_OK ||
	    (before != 0 && redis_conn_append(conn, "HSET %skey:%u retired_at %lld",
	    prefix, before, (long long)now) != FA_OK) ||
	    redis_conn_append(conn, "INCR %skeys:generation", prefix) != FA_OK ||
	    redis_conn_append(conn, "EXEC") != FA_OK) {
		*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
		goto out;
	}
	watching = 0;	/* EXEC (or a broken connection) ends the WATCH */
	nq = before != 0 ? 5 : 4;	/* MULTI and the queued commands */
	for (i = 0; i < nq; i++) {
		redisReply *q = redis_conn_reply(conn);

		if (rc == FA_UNAVAIL && q != NULL && q->type == REDIS_REPLY_ERROR) {
			log_warn("keyring: rotation: Redis answered: %s", q->str);
			*cause = xasprintf("Redis refused the rotation: %s", q->str);
			rc = FA_ERR;
		}
		redis_pool_reply_free(q);
	}
	rexec = redis_conn_reply(conn);
	if (rc == FA_ERR)
		goto out;
	if ((rc = keyring_reply_ok(conn, rexec, "EXEC", cause)) != FA_OK)
		goto out;
	if (rexec->type != REDIS_REPLY_ARRAY) {
		*cause = xstrdup("lost the rotation lock before the commit; no key added");
		rc = FA_ERR;
		goto out;
	}
	for (i = 0; i < (int)rexec->elements; i++)
		if (rexec->element[i]->type == REDIS_REPLY_ERROR) {
			log_warn("keyring: rotation: Redis answered: %s",
			    rexec->element[i]->str);
			*cause = xasprintf("key %u: Redis refused part of the rotation: %s",
			    *kid, rexec->element[i]->str);
			rc = FA_ERR;
			goto out;
		}
	log_info("keyring: added key %u%s", *kid, before != 0 ? ", retired the previous" : "");
	rc = FA_OK;
out:
	if (watching)
		keyring_unwatch(conn);
	for (i = 0; i < 4; i++)
		redis_pool_reply_free(r[i]);
	redis_pool_reply_free(rexec);
	crypto_ctx_free(ctx);
	explicit_bzero(key, sizeof key);
	explicit_bzero(wrapped, sizeof wrapped);
	explicit_bzero(text, sizeof text);
	return rc;
}

/* A random lock value, so only the holder can release it. */
static int
keyring_lock_token(char token[33], char **cause)
{
	uint8_t raw[16];

	if (crypto_random(raw, sizeof raw) != FA_OK) {
		*cause = xstrdup("no random bytes for the rotation lock");
		return FA_ERR;
	}
	crypto_hex(raw, sizeof raw, token);
	return FA_OK;
}

/* Reload after a rotation; the key exists in Redis even if this fails. */
static int
keyring_reload_after(struct keyring *kr, struct redis_conn *conn, uint32_t kid,
    char **cause)
{
	char *why = NULL;
	int rc;

	if ((rc = keyring_load(kr, conn, &why)) != FA_OK) {
		*cause = xasprintf("key %u is in Redis, but reloading failed: %s", kid, why);
		free(why);
	}
	return rc;
}

int
keyring_rotate(struct keyring *kr, struct redis_conn *conn, uint32_t *kid, char **cause)
{
	char token[33];
	uint32_t before, newest;
	long long deadline;
	int taken, rc;

	*cause = NULL;
	*kid = 0;
	if ((rc = keyring_lock_token(token, cause)) != FA_OK)
		return rc;
	/*
	 * before is the newest key when we were asked: a key another process adds
	 * after that moment (while we wait for the lock) answers the request, so
	 * concurrent rotations add one key, not several.
	 */
	if ((rc = keyring_try_lock(conn, token, &taken, &before, cause)) != FA_OK)
		return rc;
	deadline = keyring_now_ms() + KEYRING_WAIT_MS;
	while (!taken) {
		if (keyring_now_ms() >= deadline) {
			*cause = xasprintf("another process has held the rotation lock "
			    "for over %d ms", KEYRING_WAIT_MS);
			return FA_ERR;
		}
		keyring_sleep_ms(KEYRING_POLL_MS);
		if ((rc = keyring_try_lock(conn, token, &taken, &newest, cause)) != FA_OK)
			return rc;
		if (newest != before) {
			if (taken)
				keyring_unlock(conn, token);
			*kid = newest;
			return keyring_reload_after(kr, conn, newest, cause);
		}
	}
	rc = keyring_add_locked(kr, conn, token, before, time(NULL), kid, cause);
	keyring_unlock(conn, token);
	if (rc != FA_OK)
		return rc;
	return keyring_reload_after(kr, conn, *kid, cause);
}

/* ------------------------------------------------------------ housekeeping */

/* Give back seals whose flush failed, to the key if it is still loaded. */
static void
keyring_unflush(struct keyring *kr, const uint32_t *kids, const long long *deltas, int n)
{
	int i, j;

	pthread_rwlock_rdlock(&kr->lock);
	for (i = 0; i < n; i++)
		if (deltas[i] != 0 && (j = keyring_find(kr, kids[i])) != -1)
			atomic_fetch_add(&kr->keys[j].unflushed, deltas[i]);
	pthread_rwlock_unlock(&kr->lock);
}

/*
 * Add this process's seals to Redis and read the generation, in one round
 * trip. *cur_seals gets the current key's total (-1 if unknown), *generation.
 */
static int
keyring_flush(struct keyring *kr, struct redis_conn *conn, uint32_t *cur_kid,
    long long *cur_seals, long long *generation, char **cause)
{
	const char *prefix = redis_conn_prefix(conn);
	uint32_t *kids = NULL;
	long long *deltas = NULL;
	redisReply **r = NULL;
	int i, n, sent = 0, rc = FA_UNAVAIL;

	pthread_rwlock_rdlock(&kr->lock);
	n = kr->nkeys;
	kids = xcalloc((size_t)n + 1, sizeof *kids);
	deltas = xcalloc((size_t)n + 1, sizeof *deltas);
	for (i = 0; i < n; i++) {
		kids[i] = kr->keys[i].kid;
		deltas[i] = atomic_exchange(&kr->keys[i].unflushed, 0);
	}
	*cur_kid = n > 0 ? kids[n - 1] : 0;
	*cur_seals = n > 0 ? kr->keys[n - 1].seals + deltas[n - 1] : -1;
	pthread_rwlock_unlock(&kr->lock);

	r = xcalloc((size_t)n + 1, sizeof *r);
	/* The current key always, even with nothing to add: we want its total. */
	for (i = 0; i < n; i++) {
		if (deltas[i] == 0 && i != n - 1)
			continue;
		if (redis_conn_append(conn, "EVAL %s 1 %skey:%u %lld",
		    keyring_flush_script, prefix, kids[i], deltas[i]) != FA_OK)
			goto fail;
		sent++;
	}
	if (redis_conn_append(conn, "GET %skeys:generation", prefix) != FA_OK)
		goto fail;
	for (i = 0; i < sent + 1; i++)
		r[i] = redis_conn_reply(conn);
	for (i = 0; i < sent + 1; i++)
		if (r[i] == NULL)
			goto fail;

	*generation = 0;
	if (r[sent]->type != REDIS_REPLY_NIL &&
	    keyring_number(r[sent], 0, generation) != FA_OK) {
		rc = keyring_reply_ok(conn, r[sent], "GET keys:generation", cause);
		if (rc == FA_OK) {
			*cause = xstrdup("keys:generation in Redis is not a number");
			rc = FA_ERR;
		}
		goto out;	/* the seals were added */
	}
	/* The last flush reply is the current key's; an error reply there is logged. */
	if (sent > 0 && r[sent - 1]->type == REDIS_REPLY_INTEGER && r[sent - 1]->integer >= 0)
		*cur_seals = r[sent - 1]->integer;
	for (i = 0; i < sent; i++)
		if (r[i]->type == REDIS_REPLY_ERROR)
			log_warn("keyring: adding seals: Redis answered: %s", r[i]->str);
	rc = FA_OK;
	goto out;

fail:
	/*
	 * Keep the counts for next time. Some may have reached Redis before the
	 * connection broke; counting them twice only rotates a little early.
	 */
	keyring_unflush(kr, kids, deltas, n);
	*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
	rc = FA_UNAVAIL;
out:
	for (i = 0; r != NULL && i < sent + 1; i++)
		redis_pool_reply_free(r[i]);
	free(r);
	free(kids);
	free(deltas);
	return rc;
}

/* Delete keys whose last token has expired; *deleted = how many. */
static int
keyring_expire(struct keyring *kr, struct redis_conn *conn, time_t now, int *deleted,
    char **cause)
{
	const char *prefix = redis_conn_prefix(conn);
	const struct keyring_params *p = &kr->params;
	redisReply **r = NULL;
	uint32_t *kids;
	int i, n = 0, sent = 0, rc = FA_OK;

	*deleted = 0;
	pthread_rwlock_rdlock(&kr->lock);
	kids = xcalloc((size_t)kr->nkeys + 1, sizeof *kids);
	/*
	 * A retired key may still be sealing in a process that has not reloaded
	 * (up to refresh_s), its tokens live token_lifetime_s, and host clocks
	 * differ a little. The newest key has retired_at 0 and is never deleted.
	 */
	for (i = 0; i < kr->nkeys - 1; i++) {
		const struct keyring_key *k = &kr->keys[i];

		if (k->retired_at != 0 && (long long)now >= (long long)k->retired_at +
		    p->token_lifetime_s + p->refresh_s + KEYRING_SKEW_S)
			kids[n++] = k->kid;
	}
	pthread_rwlock_unlock(&kr->lock);
	if (n == 0)
		goto out;

	r = xcalloc((size_t)n, sizeof *r);
	for (i = 0; i < n; i++) {
		if (redis_conn_append(conn, "EVAL %s 3 %skeys %skey:%u %skeys:generation %u",
		    keyring_delete_script, prefix, prefix, kids[i], prefix, kids[i]) != FA_OK) {
			*cause = xasprintf("Redis: %s", redis_conn_errstr(conn));
			rc = FA_UNAVAIL;
			goto out;
		}
		sent++;
	}
	for (i = 0; i < sent; i++)
		r[i] = redis_conn_reply(conn);
	for (i = 0; i < sent; i++) {
		if ((rc = keyring_reply_ok(conn, r[i], "deleting a key", cause)) != FA_OK)
			goto out;
		if (r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer == 1) {
			log_info("keyring: deleted key %u (every token it sealed has expired)",
			    kids[i]);
			(*deleted)++;
		}
	}
out:
	for (i = 0; r != NULL && i < sent; i++)
		redis_pool_reply_free(r[i]);
	free(r);
	free(kids);
	return rc;
}

int
keyring_maintain(struct keyring *kr, struct redis_conn *conn, time_t now, char **cause)
{
	const struct keyring_params *p = &kr->params;
	long long generation, seals;
	uint32_t cur_kid, flushed_kid, newest, kid;
	time_t created = 0;
	char token[33];
	int due, taken, deleted, rc;

	*cause = NULL;
	if ((rc = keyring_flush(kr, conn, &flushed_kid, &seals, &generation, cause)) != FA_OK)
		return rc;
	if (generation != atomic_load(&kr->generation) &&
	    (rc = keyring_load(kr, conn, cause)) != FA_OK)
		return rc;

	pthread_rwlock_rdlock(&kr->lock);
	cur_kid = kr->nkeys > 0 ? kr->keys[kr->nkeys - 1].kid : 0;
	if (cur_kid != 0) {
		created = kr->keys[kr->nkeys - 1].created;
		if (cur_kid != flushed_kid)	/* reloaded onto a newer key */
			seals = kr->keys[kr->nkeys - 1].seals;
	}
	pthread_rwlock_unlock(&kr->lock);

	/* The first key is made by keyring_rotate (fastauthctl or start-up), not here. */
	due = cur_kid != 0 &&
	    ((p->rotate_after_s > 0 && (long long)now - created >= p->rotate_after_s) ||
	    (p->rotate_after_seals > 0 && seals >= p->rotate_after_seals));
	if (due) {
		if ((rc = keyring_lock_token(token, cause)) != FA_OK)
			return rc;
		/* Don't wait: whoever holds the lock is doing this very rotation. */
		if ((rc = keyring_try_lock(conn, token, &taken, &newest, cause)) != FA_OK)
			return rc;
		if (taken) {
			rc = keyring_add_locked(kr, conn, token, cur_kid, now, &kid, cause);
			keyring_unlock(conn, token);
			if (rc != FA_OK)
				return rc;
			if ((rc = keyring_reload_after(kr, conn, kid, cause)) != FA_OK)
				return rc;
		}
	}

	if ((rc = keyring_expire(kr, conn, now, &deleted, cause)) != FA_OK)
		return rc;
	if (deleted > 0)
		return keyring_load(kr, conn, cause);
	return FA_OK;
}

int
keyring_list(struct keyring *kr, struct redis_conn *conn, struct keyring_info **out,
    int *n, char **cause)
{
	struct keyring_rec *recs = NULL;
	struct keyring_info *info;
	long long generation;
	int i, nrecs, rc;

	*cause = NULL;
	*out = NULL;
	*n = 0;
	if ((rc = keyring_fetch(conn, &recs, &nrecs, &generation, cause)) != FA_OK)
		return rc;
	qsort(recs, (size_t)nrecs, sizeof *recs, keyring_rec_cmp);
	info = xcalloc((size_t)nrecs + 1, sizeof *info);
	for (i = 0; i < nrecs; i++) {
		info[i].kid = recs[i].kid;
		info[i].created = recs[i].created;
		info[i].seals = recs[i].seals;
		info[i].retired_at = recs[i].retired_at;
		info[i].current = i == nrecs - 1;
	}
	keyring_recs_free(recs, nrecs);
	*out = info;
	*n = nrecs;
	return FA_OK;
}
