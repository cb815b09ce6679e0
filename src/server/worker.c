/*
 * worker.c -- the request loop of a responder process.
 *
 * Threads block in FCGX_Accept_r with FCGI_FAIL_ACCEPT_ON_INTR. To drain, the
 * main thread sets the stop flag and interrupts with SIGUSR1 the threads that
 * are waiting in accept; a thread busy with a request keeps SIGUSR1 blocked so
 * its FastCGI reads and writes are never interrupted, finishes the request,
 * and sees the flag before accepting another. Because a signal can land just
 * before a thread enters accept(), the interruption is repeated until every
 * thread has left.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "endpoints/oauth.h"
#include "endpoints/service.h"
#include "http/request.h"
#include "http/router.h"
#include "server/worker.h"

struct worker_thread {
	pthread_t		 thread;
	int			 started;
	int			 listen_fd;
	atomic_int		 in_accept;	/* 1 while SIGUSR1 may interrupt it */
	atomic_int		 done;		/* 1 once the loop has ended */
	struct service_thread	*st;
	FCGX_Request		 fcgx;
	struct request		 req;
	struct response		 resp;
};

static atomic_int worker_stopping;	/* process-wide: set once, on SIGTERM */

static void
worker_on_usr1(int sig)
{
	(void)sig;	/* only here to interrupt accept() */
}

static void
worker_handle(struct worker_thread *w)
{
	const struct config *cfg = w->st->svc->cfg;
	int rc, head;

	response_reset(&w->resp);
	rc = request_read(&w->req, &w->fcgx, cfg->max_body_size);
	if (rc == FA_LIMIT)
		oauth_error(&w->resp, 413, "invalid_request", "request body too large");
	else if (rc != FA_OK)
		oauth_error(&w->resp, 400, "invalid_request", "incomplete request body");
	else
		router_dispatch(w->st, &w->req, &w->resp);
	response_header(&w->resp, "X-Content-Type-Options", "nosniff");
	head = strcmp(w->req.method, "HEAD") == 0;
	if (response_send(&w->resp, &w->fcgx, head) != FA_OK)
		log_debug("response not delivered (client gone)");
	response_reset(&w->resp);
}

static void *
worker_thread_main(void *arg)
{
	struct worker_thread *w = arg;
	sigset_t usr1;
	int rc;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	FCGX_InitRequest(&w->fcgx, w->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	request_init(&w->req);
	response_init(&w->resp);
	while (!atomic_load(&worker_stopping)) {
		atomic_store(&w->in_accept, 1);
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
		rc = atomic_load(&worker_stopping) ? -1 : FCGX_Accept_r(&w->fcgx);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		atomic_store(&w->in_accept, 0);
		if (rc < 0) {
			if (atomic_load(&worker_stopping))
				break;
			if (rc != -EINTR) {
				log_err("FastCGI accept failed: %s",
				    rc < 0 && rc > -4096 ? strerror(-rc) : "protocol error");
				usleep(100 * 1000);	/* don't spin on a broken socket */
			}
			continue;
		}
		worker_handle(w);
		FCGX_Finish_r(&w->fcgx);
	}
	FCGX_Finish_r(&w->fcgx);
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

/* Interrupt idle threads until all have left their loop or the time is up. */
static int
worker_drain(struct worker_thread *ws, int n, long timeout_ms)
{
	long long deadline = worker_now_ms() + timeout_ms;
	int i, left;

	FCGX_ShutdownPending();
	atomic_store(&worker_stopping, 1);
	for (;;) {
		left = 0;
		for (i = 0; i < n; i++) {
			if (!ws[i].started || atomic_load(&ws[i].done))
				continue;
			left++;
			if (atomic_load(&ws[i].in_accept))
				pthread_kill(ws[i].thread, SIGUSR1);
		}
		if (left == 0 || worker_now_ms() >= deadline)
			return left;
		usleep(20 * 1000);
	}
}

int
worker_run(const struct config *cfg, int listen_fd)
{
	struct worker_thread *ws = NULL;
	struct service *svc = NULL;
	struct sigaction sa;
	sigset_t set;
	char *cause = NULL;
	int i, sig, n = cfg->threads, status = 1, left;

	/* Every thread inherits this mask; only sigwait below takes these. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = worker_on_usr1;	/* no SA_RESTART: accept must return EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (FCGX_Init() != 0) {
		log_err("FCGX_Init failed");
		goto out;
	}
	if ((svc = service_new(cfg, n, &cause)) == NULL) {
		log_err("cannot start: %s", cause);
		goto out;
	}
	service_start(svc);

	ws = xcalloc((size_t)n, sizeof *ws);
	for (i = 0; i < n; i++) {
		int err;

		ws[i].listen_fd = listen_fd;
		ws[i].st = service_thread_new(svc, i);
		if ((err = pthread_create(&ws[i].thread, NULL, worker_thread_main, &ws[i])) != 0) {
			log_err("request thread: %s", strerror(err));
			continue;
		}
		ws[i].started = 1;
	}
	log_info("responder ready: %d threads", n);

	sigdelset(&set, SIGUSR1);
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
	left = worker_drain(ws, n, cfg->drain_timeout_ms);
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
	free(ws);
	service_free(svc);
	free(cause);
	return status;
out_nofree:
	free(cause);
	return status;
}
