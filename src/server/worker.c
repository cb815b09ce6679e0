/*
 * worker.c -- the request loop of a responder process.
 *
 * The listen socket is non-blocking, and each thread waits for it in its own
 * epoll set with EPOLLEXCLUSIVE (so a connection wakes one thread, not all of
 * them) together with the read end of a wake pipe. fcgi_accept then accepts
 * without blocking; nothing to accept means another thread or process got
 * there first.
 *
 * Each thread owns one FastCGI connection state and one arena; a request's
 * parameters live in the arena, which is wiped and reset after the answer.
 *
 * Draining (SIGTERM): one byte in the wake pipe wakes every thread; from then
 * on a thread finishes its request, keeps accepting only while connections
 * are already queued on the socket (they were accepted by the kernel and
 * would be reset if we closed it under them), and leaves when the queue is
 * empty. Threads are never interrupted by signals mid-request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/audit.h"
#include "core/fastauth.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "endpoints/ep_authorizer.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/fcgi.h"
#include "http/request.h"
#include "http/router.h"
#include "server/tarpit.h"
#include "server/worker.h"
#include "shm/metrics.h"
#include "shm/shm.h"

struct worker_thread {
	pthread_t		 thread;
	int			 started;
	int			 listen_fd;
	int			 wake_fd;	/* read end of the wake pipe */
	atomic_int		 done;		/* 1 once the loop has ended */
	struct service_thread	*st;
	struct tarpit		*tarpit;	/* the process's, or NULL (off) */
	struct fcgi_conn	 conn;
	struct arena		 arena;		/* the current request's */
	struct request		 req;
	struct response		 resp;
};

/* Room for a typical request's FastCGI parameters (lighttpd sends ~2 KB). */
#define WORKER_ARENA_SIZE	(16 * 1024)

static atomic_int worker_stopping;	/* process-wide: set once, on SIGTERM */
static atomic_int worker_live;		/* request threads still in their loop */

/* A refusal to hold back: the tarpit sends it later. 1 when it took the answer. */
static int
worker_tarpit(struct worker_thread *w)
{
	const unsigned char *bytes;
	size_t len;
	int fd;

	if (w->tarpit == NULL || fcgi_detach(&w->conn, &fd, &bytes, &len) != FA_OK)
		return 0;
	(void)tarpit_hold(w->tarpit, fd, bytes, len);	/* sent either way */
	return 1;
}

/*
 * The tail of both paths: the answer is written (to the connection's
 * buffer; see fcgi.c), the thread's request state is cleared. 1 when the
 * answer is a refusal the tarpit may hold back.
 */
static int
worker_done(struct worker_thread *w)
{
	int hold = w->resp.status == 429 && w->resp.tarpit;

	metrics_gauge_add(METRICS_G_BUSY, -1);
	/* The address lives in the arena, wiped after this request. */
	w->st->remote_addr = NULL;
	response_reset(&w->resp);
	return hold;
}

/*
 * An Authorizer request (FCGI_ROLE=AUTHORIZER): no body to read, and a grant
 * goes out bare (status and Variable-* headers only, see ep_authorizer.h).
 */
static int
worker_authorize(struct worker_thread *w)
{
	const struct config *cfg = w->st->svc->cfg;
	uint64_t start = shm_now();

	metrics_gauge_add(METRICS_G_BUSY, 1);
	request_read_params(&w->req, &w->conn);
	/* Who is asking, for the anomaly detector (the router sets it for the endpoints). */
	w->st->remote_addr = w->req.remote_addr;
	if (w->conn.params_too_big)
		oauth_error(&w->resp, 431, "invalid_request",
		    "request header fields too large");
	else if (cfg->fastcgi_roles == CONFIG_ROLES_RESPONDER) {
		log_warn("Authorizer request refused: fastcgi_roles is responder");
		oauth_error(&w->resp, 500, "server_error",
		    "this fastauth does not serve the Authorizer role");
	} else
		ep_authorizer_handle(w->st, &w->req, &w->resp);
	metrics_request(METRICS_EP_AUTHORIZER, w->resp.status, shm_now() - start);
	if (w->resp.status == 200) {
		if (response_send_bare(&w->resp) != FA_OK)
			log_debug("grant not delivered (web server gone)");
	} else {
		response_header(&w->resp, "X-Content-Type-Options", "nosniff");
		if (response_send(&w->resp, 0) != FA_OK)
			log_debug("denial not delivered (web server gone)");
	}
	return worker_done(w);
}

/* Serve the request; 1 when its answer is a refusal the tarpit may hold. */
static int
worker_handle(struct worker_thread *w)
{
	const struct config *cfg = w->st->svc->cfg;
	enum metrics_endpoint ep = METRICS_EP_OTHER;
	uint64_t start;
	int rc, head;

	if (w->conn.role == FCGI_AUTHORIZER)
		return worker_authorize(w);
	start = shm_now();
	metrics_gauge_add(METRICS_G_BUSY, 1);
	/*
	 * The response is empty here: reset after every send, and at init.
	 * Headers every answer carries go first, so that a streamed answer
	 * (response_stream_begin) has them too.
	 */
	response_header(&w->resp, "X-Content-Type-Options", "nosniff");
	rc = request_read(&w->req, &w->conn, cfg->max_body_size);
	if (rc == FA_OK && (cfg->fastcgi_roles == CONFIG_ROLES_AUTHORIZER ||
	    w->conn.role != FCGI_RESPONDER)) {
		/* An Authorizer-only socket, or the Filter role we do not play. */
		oauth_error(&w->resp, 404, "not_found",
		    "this fastauth does not answer this FastCGI role");
		rc = FA_DENIED;
	}
	if (w->conn.params_too_big)
		oauth_error(&w->resp, 431, "invalid_request",
		    "request header fields too large");
	else if (rc == FA_LIMIT)
		oauth_error(&w->resp, 413, "invalid_request", "request body too large");
	else if (rc == FA_ERR)
		oauth_error(&w->resp, 400, "invalid_request", "incomplete request body");
	else if (rc == FA_OK)
		ep = router_dispatch(w->st, &w->req, &w->resp);
	head = strcmp(w->req.method, "HEAD") == 0;
	/* Counted before the answer leaves: a client that saw it sees it counted. */
	metrics_request(ep, w->resp.status, shm_now() - start);
	if (response_send(&w->resp, head) != FA_OK)
		log_debug("response not delivered (client gone)");
	return worker_done(w);
}

/* Accept (without blocking) and serve one request. */
static void
worker_serve(struct worker_thread *w)
{
	int rc = fcgi_accept(&w->conn, w->listen_fd);

	if (rc == 0)
		return;	/* someone else took it, or the kept connection ended */
	if (rc < 0) {
		log_err("FastCGI accept failed: %s", strerror(errno));
		usleep(100 * 1000);	/* don't spin on a broken socket */
		return;
	}
	if (!worker_handle(w) || !worker_tarpit(w))
		fcgi_finish(&w->conn);
	arena_reset(&w->arena);
}

/*
 * Wait until the kept FastCGI connection (web servers that set FCGI_KEEP_CONN)
 * has a request or the wake pipe fires. 1 = readable, 0 = not.
 */
static int
worker_wait_kept(struct worker_thread *w, int timeout)
{
	struct pollfd p[2] = {
		{ .fd = fcgi_conn_fd(&w->conn), .events = POLLIN },
		{ .fd = w->wake_fd, .events = POLLIN },
	};

	if (poll(p, 2, timeout) <= 0)
		return 0;
	return (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

static void *
worker_thread_main(void *arg)
{
	struct worker_thread *w = arg;
	struct epoll_event ev, evs[2];
	int ep, n, i, listen_ready, draining;

	arena_init(&w->arena, WORKER_ARENA_SIZE);
	fcgi_conn_init(&w->conn, &w->arena, (unsigned)w->st->svc->cfg->threads);
	request_init(&w->req);
	w->req.arena = &w->arena;
	response_init(&w->resp);
	w->resp.conn = &w->conn;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		log_err("epoll_create1: %s", strerror(errno));
		goto out;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = w->listen_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->listen_fd, &ev) != 0) {
		log_err("epoll_ctl(listen socket): %s", strerror(errno));
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.fd = w->wake_fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, w->wake_fd, &ev);

	for (;;) {
		draining = atomic_load(&worker_stopping);
		if (fcgi_conn_fd(&w->conn) >= 0) {
			if (worker_wait_kept(w, draining ? 0 : -1))
				worker_serve(w);
			else if (draining)
				fcgi_conn_attach(&w->conn, -1);	/* close the kept connection */
			continue;
		}
		n = epoll_wait(ep, evs, 2, draining ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		listen_ready = 0;
		for (i = 0; i < n; i++)
			if (evs[i].data.fd == w->listen_fd)
				listen_ready = 1;
		if (listen_ready)
			worker_serve(w);
		else if (draining)
			break;	/* nothing queued any more */
	}
out:
	if (ep >= 0)
		close(ep);
	/*
	 * The last thread out closes the socket at once: connections the kernel
	 * queues after that are refused, not accepted and later reset.
	 */
	if (atomic_fetch_sub(&worker_live, 1) == 1 && atomic_load(&worker_stopping))
		close(w->listen_fd);
	fcgi_conn_free(&w->conn);
	arena_free(&w->arena);
	request_free(&w->req);
	response_free(&w->resp);
	atomic_store(&w->done, 1);
	return NULL;
}

static long long
worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wake every thread to drain; wait until all have left or the time is up. */
static int
worker_drain(struct worker_thread *ws, int n, int wake_wr, long timeout_ms)
{
	long long deadline = worker_now_ms() + timeout_ms;
	int i, left;

	atomic_store(&worker_stopping, 1);
	if (write(wake_wr, "x", 1) != 1)
		log_err("wake pipe: %s", strerror(errno));
	for (;;) {
		left = 0;
		for (i = 0; i < n; i++)
			if (ws[i].started && !atomic_load(&ws[i].done))
				left++;
		if (left == 0 || worker_now_ms() >= deadline)
			return left;
		usleep(10 * 1000);
	}
}

int
worker_run(const struct config *cfg, int listen_fd)
{
	struct worker_thread *ws = NULL;
	struct service *svc = NULL;
	struct tarpit *tarpit = NULL;
	sigset_t set;
	char *cause = NULL;
	int i, sig, n = cfg->threads, status = 1, left, wake[2] = { -1, -1 }, fl;

	/* Every thread inherits this mask; only sigwait below takes these. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Shared with every process on this socket; all of them run this loop. */
	if ((fl = fcntl(listen_fd, F_GETFL)) < 0 ||
	    fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		log_err("listen socket: %s", strerror(errno));
		goto out;
	}
	if (pipe2(wake, O_CLOEXEC) != 0) {
		log_err("pipe: %s", strerror(errno));
		goto out;
	}
	if (audit_open(cfg->audit_log, &cause) != FA_OK) {
		log_err("audit log: %s", cause);
		goto out;
	}
	if ((svc = service_new(cfg, n, &cause)) == NULL) {
		log_err("cannot start: %s", cause);
		goto out;
	}
	service_start(svc);
	if (cfg->ratelimit_tarpit_ms > 0)
		tarpit = tarpit_new((unsigned)cfg->ratelimit_tarpit_ms,
		    (unsigned)cfg->ratelimit_tarpit_max);

	ws = xcalloc((size_t)n, sizeof *ws);
	for (i = 0; i < n; i++) {
		int err;

		ws[i].listen_fd = listen_fd;
		ws[i].wake_fd = wake[0];
		ws[i].tarpit = tarpit;
		ws[i].st = service_thread_new(svc, i);
		atomic_fetch_add(&worker_live, 1);
		if ((err = pthread_create(&ws[i].thread, NULL, worker_thread_main, &ws[i])) != 0) {
			log_err("request thread: %s", strerror(err));
			atomic_fetch_sub(&worker_live, 1);
			continue;
		}
		ws[i].started = 1;
	}
	log_info("responder ready: %d threads", n);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* The master (or the web server) replaces us to reload. */
			log_info("SIGHUP ignored by a responder; reload through the master");
			continue;
		}
		break;
	}
	log_info("draining (signal %d)", sig);
	left = worker_drain(ws, n, wake[1], cfg->drain_timeout_ms);
	if (left > 0) {
		/* Threads stuck mid-request own state we can't free safely: just go. */
		log_warn("%d request(s) still running after %ld ms; exiting anyway",
		    left, cfg->drain_timeout_ms);
		status = 0;
		goto out_nofree;
	}
	for (i = 0; i < n; i++) {
		if (ws[i].started)
			pthread_join(ws[i].thread, NULL);
		service_thread_free(ws[i].st);
	}
	status = 0;
out:
	/* Every request thread has left: what the tarpit holds goes out now. */
	tarpit_free(tarpit);
	free(ws);
	service_free(svc);
	audit_close();
	if (wake[0] >= 0) {
		close(wake[0]);
		close(wake[1]);
	}
	free(cause);
	return status;
out_nofree:
	free(cause);
	return status;
}
