/*
 * engine.c -- epoll threads and keep-alive connections (see engine.h).
 *
 * Each thread owns its connections outright: no locks on the request path,
 * statistics per thread, merged once at the end. Sockets are edge-triggered
 * for reading and writing, registered once per connection. Time-outs and
 * paced sends are found by a scan of the thread's connections at most every
 * millisecond, which is cheap beside a request and keeps the code free of a
 * timer wheel.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "load/engine.h"
#include "load/httpc.h"
#include "load/load.h"
#include "load/scenario.h"

#define ENGINE_BODY_MAX		(1024 * 1024)	/* response bodies we accept */
#define ENGINE_READ_CHUNK	16384
#define ENGINE_RETRY_US		10000		/* pause after a failed connect */

enum { EC_WAITING, EC_CONNECTING, EC_WRITING, EC_READING };

struct engine_conn {
	struct engine_thread	*th;
	int			 fd;		/* -1 when closed */
	int			 state;
	int			 op;		/* the request in flight */
	struct buf		 req;
	size_t			 off;		/* bytes of req written */
	struct httpc_resp	 resp;
	uint64_t		 t0;		/* latency origin, µs */
	uint64_t		 deadline;	/* µs */
	uint64_t		 next_at;	/* EC_WAITING: when to start, µs */
	struct scen_conn	 sc;
};

struct engine_thread {
	struct engine		*e;
	pthread_t		 tid;
	int			 started;
	int			 ep;
	struct engine_conn	*conns;
	int			 nconns;
	struct load_stats	*stats;		/* [ROLE_N * OP_N] */
};

struct engine {
	const struct load_cfg	*cfg;
	struct scenario		*scen;
	struct engine_thread	*th;
	int			 nth;
	struct sockaddr_in	 addr;
	uint64_t		 interval_us;	/* per legit connection when paced; 0 = closed loop */
	uint64_t		 t_begin, t_measure, t_stop;
	atomic_int		 stop;
	atomic_uint_fast64_t	 legit_done;
	struct load_stats	*merged;	/* [ROLE_N * OP_N] */
};

uint64_t
engine_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct load_stats *
engine_slot(struct load_stats *base, int role, int op)
{
	return &base[role * OP_N + op];
}

static void
engine_stats_init(struct load_stats *s, size_t n)
{
	size_t i;

	memset(s, 0, n * sizeof *s);
	for (i = 0; i < n; i++)
		hist_init(&s[i].lat);
}

struct engine *
engine_new(const struct load_cfg *cfg, struct scenario *scen)
{
	struct engine *e = xcalloc(1, sizeof *e);
	struct engine_thread *th;
	struct engine_conn *c;
	int i, total = cfg->clients + cfg->attackers, t;

	e->cfg = cfg;
	e->scen = scen;
	e->nth = cfg->threads < total ? cfg->threads : total;
	e->addr.sin_family = AF_INET;
	e->addr.sin_port = htons((uint16_t)cfg->port);
	inet_pton(AF_INET, cfg->connect_host, &e->addr.sin_addr);
	if (cfg->rate > 0)
		e->interval_us = (uint64_t)((double)cfg->clients * 1e6 / cfg->rate);
	e->th = xcalloc((size_t)e->nth, sizeof *e->th);
	for (t = 0; t < e->nth; t++) {
		th = &e->th[t];
		th->e = e;
		th->ep = -1;
		th->conns = xcalloc((size_t)(total / e->nth + 1), sizeof *th->conns);
		th->stats = xmalloc(ROLE_N * OP_N * sizeof *th->stats);
		engine_stats_init(th->stats, ROLE_N * OP_N);
	}
	for (i = 0; i < total; i++) {
		th = &e->th[i % e->nth];
		c = &th->conns[th->nconns++];
		c->th = th;
		c->fd = -1;
		c->state = EC_WAITING;
		buf_init(&c->req);
		httpc_resp_init(&c->resp, ENGINE_BODY_MAX);
		c->sc.id = i;
		c->sc.role = i < cfg->clients ? ROLE_LEGIT : ROLE_ATTACK;
		c->sc.rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^
		    (uint64_t)time(NULL) << 20;
		if (c->sc.rng == 0)
			c->sc.rng = 1;
	}
	e->merged = xmalloc(ROLE_N * OP_N * sizeof *e->merged);
	engine_stats_init(e->merged, ROLE_N * OP_N);
	return e;
}

void
engine_free(struct engine *e)
{
	struct engine_conn *c;
	int t, i;

	if (e == NULL)
		return;
	for (t = 0; t < e->nth; t++) {
		for (i = 0; i < e->th[t].nconns; i++) {
			c = &e->th[t].conns[i];
			if (c->fd != -1)
				close(c->fd);
			buf_free(&c->req);
			httpc_resp_free(&c->resp);
			scenario_conn_free(&c->sc);
		}
		if (e->th[t].ep != -1)
			close(e->th[t].ep);
		free(e->th[t].conns);
		free(e->th[t].stats);
	}
	free(e->th);
	free(e->merged);
	free(e);
}

static int
engine_measuring(struct engine *e, uint64_t t0)
{
	return t0 >= e->t_measure && !atomic_load_explicit(&e->stop, memory_order_relaxed);
}

static void
engine_close(struct engine_conn *c)
{
	if (c->fd != -1) {
		close(c->fd);	/* also leaves the epoll set */
		c->fd = -1;
	}
}

static void engine_start(struct engine_conn *, uint64_t now);

/* The request is over (answered or failed): plan the next one. */
static void
engine_next(struct engine_conn *c, uint64_t now, uint64_t delay)
{
	struct engine *e = c->th->e;

	c->state = EC_WAITING;
	if (c->sc.role == ROLE_LEGIT && e->interval_us > 0) {
		/* Paced: the next send is due one interval after this one was. */
		c->next_at = c->t0 + e->interval_us;
		if (c->next_at < now + delay)
			c->next_at = now + delay;
	} else
		c->next_at = now + delay;
	if (c->next_at <= now)
		engine_start(c, now);
}

static void
engine_fail(struct engine_conn *c, int err, uint64_t now)
{
	struct engine *e = c->th->e;
	struct load_stats *s = engine_slot(c->th->stats, c->sc.role, c->op);

	if (engine_measuring(e, c->t0)) {
		s->requests++;
		s->errors[err]++;
		if (c->sc.role == ROLE_LEGIT)
			atomic_fetch_add_explicit(&e->legit_done, 1, memory_order_relaxed);
	}
	scenario_failed(&c->sc, c->op);
	engine_close(c);
	engine_next(c, now, err == ERR_CONNECT ? ENGINE_RETRY_US : 0);
}

static void
engine_done(struct engine_conn *c, uint64_t now)
{
	struct engine *e = c->th->e;
	struct load_stats *s = engine_slot(c->th->stats, c->sc.role, c->op);
	int ok, breach, status = c->resp.status;

	scenario_judge(e->scen, &c->sc, c->op, status, c->resp.body.data ?
	    c->resp.body.data : "", c->resp.body.len, &ok, &breach);
	if (engine_measuring(e, c->t0)) {
		s->requests++;
		s->status[status < LOAD_STATUS_MAX ? status : 0]++;
		hist_record(&s->lat, now - c->t0);
		if (ok)
			s->ok++;
		else if (c->sc.role == ROLE_LEGIT)
			s->errors[ERR_UNEXPECTED]++;
		if (breach)
			s->breaches++;
		if (c->sc.role == ROLE_LEGIT)
			atomic_fetch_add_explicit(&e->legit_done, 1, memory_order_relaxed);
	}
	if (!c->resp.keep_alive)
		engine_close(c);
	engine_next(c, now, 0);
}

static void
engine_write(struct engine_conn *c, uint64_t now)
{
	ssize_t n;

	while (c->off < c->req.len) {
		n = send(c->fd, c->req.data + c->off, c->req.len - c->off, MSG_NOSIGNAL);
		if (n > 0) {
			c->off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;		/* EPOLLOUT will come */
		engine_fail(c, ERR_CLOSED, now);
		return;
	}
	c->state = EC_READING;
}

static void
engine_read(struct engine_conn *c, uint64_t now)
{
	char chunk[ENGINE_READ_CHUNK];
	enum httpc_rc rc;
	size_t used;
	ssize_t n;

	for (;;) {
		n = recv(c->fd, chunk, sizeof chunk, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			engine_fail(c, ERR_CLOSED, now);
			return;
		}
		if (n == 0) {
			if (httpc_resp_eof(&c->resp) == HTTPC_DONE)
				engine_done(c, now);
			else
				engine_fail(c, c->resp.status ? ERR_PROTOCOL : ERR_CLOSED, now);
			return;
		}
		rc = httpc_resp_feed(&c->resp, chunk, (size_t)n, &used);
		if (rc == HTTPC_ERR || (rc == HTTPC_DONE && used != (size_t)n)) {
			engine_fail(c, ERR_PROTOCOL, now);
			return;
		}
		if (rc == HTTPC_DONE) {
			engine_done(c, now);
			return;
		}
	}
}

static int
engine_connect(struct engine_conn *c)
{
	struct epoll_event ev;
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&c->th->e->addr, sizeof c->th->e->addr) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(c->th->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
}

/* Begin the next request of c (it is EC_WAITING and due). */
static void
engine_start(struct engine_conn *c, uint64_t now)
{
	struct engine *e = c->th->e;

	if (atomic_load_explicit(&e->stop, memory_order_relaxed))
		return;
	buf_reset(&c->req);
	c->off = 0;
	httpc_resp_reset(&c->resp);
	c->op = scenario_next(e->scen, &c->sc, &c->req);
	/* Paced sends count from when they were due (no coordinated omission). */
	c->t0 = c->sc.role == ROLE_LEGIT && e->interval_us > 0 ? c->next_at : now;
	c->deadline = now + (uint64_t)e->cfg->timeout_ms * 1000u;
	if (c->fd == -1) {
		if (engine_connect(c) == -1) {
			engine_fail(c, ERR_CONNECT, now);
			return;
		}
		c->state = EC_CONNECTING;
		return;		/* EPOLLOUT when connected */
	}
	c->state = EC_WRITING;
	engine_write(c, now);
}

static void
engine_event(struct engine_conn *c, uint32_t ev, uint64_t now)
{
	char tmp[256];
	int err = 0;
	socklen_t len = sizeof err;

	switch (c->state) {
	case EC_CONNECTING:
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
			engine_fail(c, ERR_CONNECT, now);
			return;
		}
		c->state = EC_WRITING;
		/* FALLTHROUGH */
	case EC_WRITING:
		engine_write(c, now);
		if (c->state == EC_READING && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			engine_read(c, now);
		return;
	case EC_READING:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			engine_read(c, now);
		return;
	case EC_WAITING:
		/* An idle keep-alive connection the server closed: forget it. */
		if (c->fd != -1 && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
			ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);

			if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR) || n > 0)
				engine_close(c);
		}
		return;
	}
}

/* Time-outs and due sends; returns µs until the next thing due (capped). */
static uint64_t
engine_scan(struct engine_thread *th, uint64_t now)
{
	uint64_t wait = 10000;
	struct engine_conn *c;
	int i;

	for (i = 0; i < th->nconns; i++) {
		c = &th->conns[i];
		if (c->state == EC_WAITING) {
			if (c->next_at <= now)
				engine_start(c, now);
			else if (c->next_at - now < wait)
				wait = c->next_at - now;
		} else if (now >= c->deadline)
			engine_fail(c, ERR_TIMEOUT, now);
	}
	return wait;
}

static void *
engine_thread_main(void *arg)
{
	struct engine_thread *th = arg;
	struct engine *e = th->e;
	struct epoll_event evs[128];
	uint64_t now, next_scan = 0, wait = 0;
	int n, i, ms;

	while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
		ms = (int)((wait + 999) / 1000);
		n = epoll_wait(th->ep, evs, 128, ms);
		now = engine_now_us();
		for (i = 0; i < n; i++)
			engine_event(evs[i].data.ptr, evs[i].events, now);
		if (now >= next_scan || n <= 0) {
			wait = engine_scan(th, now);
			next_scan = now + (wait < 1000 ? wait : 1000);
		} else
			wait = next_scan - now;
	}
	return NULL;
}

int
engine_run(struct engine *e, volatile sig_atomic_t *interrupted, char **cause)
{
	const struct load_cfg *cfg = e->cfg;
	struct engine_thread *th;
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	uint64_t now, interval;
	int t, i, k, rc = FA_ERR;

	*cause = NULL;
	e->t_begin = engine_now_us();
	e->t_measure = e->t_begin + (uint64_t)cfg->warmup_s * 1000000u;
	interval = e->interval_us;
	for (t = 0; t < e->nth; t++) {
		th = &e->th[t];
		if ((th->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
			*cause = xasprintf("epoll_create1: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < th->nconns; i++) {
			k = th->conns[i].sc.id;
			/* Paced connections start spread over one interval. */
			th->conns[i].next_at = e->t_begin + (th->conns[i].sc.role == ROLE_LEGIT &&
			    interval > 0 ? interval * (uint64_t)k / (uint64_t)cfg->clients : 0);
		}
	}
	for (t = 0; t < e->nth; t++) {
		if ((errno = pthread_create(&e->th[t].tid, NULL, engine_thread_main,
		    &e->th[t])) != 0) {
			*cause = xasprintf("pthread_create: %s", strerror(errno));
			atomic_store(&e->stop, 1);
			goto out;
		}
		e->th[t].started = 1;
	}
	for (;;) {
		nanosleep(&tick, NULL);
		now = engine_now_us();
		if (now >= e->t_measure + (uint64_t)cfg->duration_s * 1000000u ||
		    (interrupted != NULL && *interrupted) ||
		    (cfg->max_requests > 0 && atomic_load(&e->legit_done) >= cfg->max_requests))
			break;
	}
	e->t_stop = engine_now_us();
	atomic_store(&e->stop, 1);
	rc = FA_OK;
out:
	for (t = 0; t < e->nth; t++)
		if (e->th[t].started)
			pthread_join(e->th[t].tid, NULL);
	if (rc == FA_OK)
		for (t = 0; t < e->nth; t++)
			for (i = 0; i < ROLE_N * OP_N; i++) {
				struct load_stats *d = &e->merged[i], *s = &e->th[t].stats[i];

				d->requests += s->requests;
				d->ok += s->ok;
				d->breaches += s->breaches;
				for (k = 0; k < LOAD_STATUS_MAX; k++)
					d->status[k] += s->status[k];
				for (k = 0; k < ERR_N; k++)
					d->errors[k] += s->errors[k];
				hist_merge(&d->lat, &s->lat);
			}
	return rc;
}

const struct load_stats *
engine_stats(const struct engine *e, int role, int op)
{
	return &e->merged[role * OP_N + op];
}

double
engine_elapsed(const struct engine *e)
{
	if (e->t_stop <= e->t_measure)
		return 0;
	return (double)(e->t_stop - e->t_measure) / 1e6;
}
