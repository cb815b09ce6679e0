/*
 * tarpit.c -- delayed answers (see tarpit.h).
 *
 * Every answer waits the same delay, so the held answers are due in the
 * order they came: a FIFO list under one mutex, and one thread that sleeps
 * until the head is due, sends it and closes its connection. The send never
 * blocks (MSG_DONTWAIT): an answer is a few hundred bytes into an empty
 * socket buffer, and a peer that went away is just closed. A full tarpit
 * answers at once, so its size bounds the descriptors it holds, not the
 * requests served.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "shm/metrics.h"
#include "server/tarpit.h"

struct tarpit_entry {
	struct tarpit_entry	*next;
	int			 fd;
	uint64_t		 due_ms;
	size_t			 len;
	unsigned char		 bytes[];
};

struct tarpit {
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	pthread_t		 thread;
	int			 started;
	int			 stopping;
	unsigned		 delay_ms;
	unsigned		 max;
	unsigned		 held;
	struct tarpit_entry	*head, *tail;
};

static uint64_t
tarpit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
tarpit_send(int fd, const unsigned char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* gone, or not reading: nothing more to do */
		p += w;
		len -= (size_t)w;
	}
	close(fd);
}

static void *
tarpit_main(void *arg)
{
	struct tarpit *tp = arg;
	struct tarpit_entry *e;
	struct timespec ts;
	uint64_t now;

	pthread_mutex_lock(&tp->mu);
	for (;;) {
		while (tp->head == NULL && !tp->stopping)
			pthread_cond_wait(&tp->cv, &tp->mu);
		if (tp->head == NULL)
			break;	/* stopping, and nothing left */
		now = tarpit_now_ms();
		if (!tp->stopping && tp->head->due_ms > now) {
			ts.tv_sec = (time_t)(tp->head->due_ms / 1000);
			ts.tv_nsec = (long)(tp->head->due_ms % 1000) * 1000000;
			pthread_cond_timedwait(&tp->cv, &tp->mu, &ts);
			continue;
		}
		e = tp->head;
		if ((tp->head = e->next) == NULL)
			tp->tail = NULL;
		tp->held--;
		metrics_gauge_add(METRICS_G_TARPIT, -1);
		pthread_mutex_unlock(&tp->mu);
		tarpit_send(e->fd, e->bytes, e->len);
		free(e);
		pthread_mutex_lock(&tp->mu);
	}
	pthread_mutex_unlock(&tp->mu);
	return NULL;
}

struct tarpit *
tarpit_new(unsigned delay_ms, unsigned max)
{
	struct tarpit *tp = xcalloc(1, sizeof *tp);
	pthread_condattr_t ca;
	int err;

	tp->delay_ms = delay_ms;
	tp->max = max;
	pthread_mutex_init(&tp->mu, NULL);
	/* Deadlines on the monotonic clock: a clock step does not stall answers. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tp->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((err = pthread_create(&tp->thread, NULL, tarpit_main, tp)) != 0) {
		/* Without its thread, every answer goes out at once (FA_LIMIT). */
		log_err("tarpit thread: %s; refused requests are answered at once",
		    strerror(err));
		tp->max = 0;
	} else
		tp->started = 1;
	return tp;
}

void
tarpit_free(struct tarpit *tp)
{
	if (tp == NULL)
		return;
	pthread_mutex_lock(&tp->mu);
	tp->stopping = 1;
	pthread_cond_signal(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	if (tp->started)
		pthread_join(tp->thread, NULL);
	pthread_cond_destroy(&tp->cv);
	pthread_mutex_destroy(&tp->mu);
	free(tp);
}

int
tarpit_hold(struct tarpit *tp, int fd, const void *bytes, size_t len)
{
	struct tarpit_entry *e;
	int wake;

	/* Allocated outside the lock: the full tarpit is the rare case. */
	e = xmalloc(sizeof *e + len);
	e->next = NULL;
	e->fd = fd;
	e->len = len;
	memcpy(e->bytes, bytes, len);
	pthread_mutex_lock(&tp->mu);
	if (tp->held >= tp->max || tp->stopping) {
		pthread_mutex_unlock(&tp->mu);
		tarpit_send(fd, e->bytes, len);
		free(e);
		return FA_LIMIT;
	}
	e->due_ms = tarpit_now_ms() + tp->delay_ms;
	wake = tp->head == NULL;
	if (tp->tail != NULL)
		tp->tail->next = e;
	else
		tp->head = e;
	tp->tail = e;
	tp->held++;
	metrics_gauge_add(METRICS_G_TARPIT, 1);
	if (wake)
		pthread_cond_signal(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	return FA_OK;
}
