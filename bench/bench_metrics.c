/*
 * bench_metrics.c -- the cost of recording a request in the shared-memory
 * metrics slots (metrics_request: status lookup, bucket search, three relaxed
 * atomic adds), against a baseline measured in the same run: one relaxed
 * atomic add to a counter in the same segment, and a limiter check
 * (ratelimit_check), which every request already pays. One JSON object on
 * stdout; figures are operations per second and ratios to the baseline.
 *
 * Threads of one process share its slot (their adds contend on its cache
 * lines); separate processes have slots of their own.
 *
 * usage: bench_metrics [--seconds N]   (per measurement, default 1)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fastauth.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"

#define BM_BATCH	64	/* operations between clock reads */

enum bm_kind { BM_RAW, BM_METRICS, BM_LIMITER };

static struct shm		*bm_seg;
static struct ratelimit_policy	 bm_pol;
static double			 bm_seconds = 1;
static _Atomic uint64_t		*bm_word;	/* the raw counter, in the segment */

static double
bm_run(enum bm_kind kind)
{
	uint64_t start = shm_now(), now = start, n = 0, end = start +
	    (uint64_t)(bm_seconds * 1e6);
	char key[32];
	int i;

	snprintf(key, sizeof key, "client-%d", (int)getpid());
	while (now < end) {
		for (i = 0; i < BM_BATCH; i++) {
			switch (kind) {
			case BM_RAW:
				atomic_fetch_add_explicit(bm_word, 1, memory_order_relaxed);
				break;
			case BM_METRICS:
				metrics_request(METRICS_EP_TOKEN, 200, (uint64_t)(i * 97));
				break;
			case BM_LIMITER:
				ratelimit_check(shm_ratelimit(bm_seg), &bm_pol, key,
				    strlen(key), now, NULL);
				break;
			}
		}
		n += BM_BATCH;
		now = shm_now();
	}
	return (double)n / ((double)(now - start) / 1e6);
}

struct bm_thread {
	pthread_t	t;
	enum bm_kind	kind;
	double		rate;
};

static void *
bm_thread_main(void *arg)
{
	struct bm_thread *bt = arg;

	bt->rate = bm_run(bt->kind);
	return NULL;
}

/* n threads of this process; the sum of their rates. */
static double
bm_threads(enum bm_kind kind, int n)
{
	struct bm_thread bt[2];
	double sum = 0;
	int i;

	for (i = 0; i < n; i++) {
		bt[i].kind = kind;
		pthread_create(&bt[i].t, NULL, bm_thread_main, &bt[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(bt[i].t, NULL);
		sum += bt[i].rate;
	}
	return sum;
}

/* n processes, each with its own slot; the sum of their rates. */
static double
bm_procs(enum bm_kind kind, int n)
{
	double sum = 0, r;
	int fds[2], i;
	pid_t pid;

	if (pipe(fds) != 0)
		return 0;
	for (i = 0; i < n; i++) {
		if ((pid = fork()) == 0) {
			metrics_attach(shm_metrics(bm_seg));
			r = bm_run(kind);
			if (write(fds[1], &r, sizeof r) != sizeof r)
				_exit(1);
			metrics_detach();
			_exit(0);
		}
	}
	for (i = 0; i < n; i++)
		if (read(fds[0], &r, sizeof r) == sizeof r)
			sum += r;
	while (wait(NULL) > 0)
		;
	close(fds[0]);
	close(fds[1]);
	return sum;
}

int
main(int argc, char **argv)
{
	struct shm_params p;
	struct metrics_snapshot *snap;
	char inst[64], *cause = NULL;
	double raw1, met1, lim1, raw2t, met2t, met2p;
	size_t size;

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		bm_seconds = atof(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: bench_metrics [--seconds N]\n");
		return 2;
	}
	snprintf(inst, sizeof inst, "bench-metrics-%d", (int)getpid());
	shm_params_default(&p);
	if (shm_open_segment(inst, &p, &bm_seg, &cause) != FA_OK ||
	    ratelimit_policy_init(&bm_pol, 0, 1000000, 1000000, 1000000,
	    &cause) != FA_OK) {
		fprintf(stderr, "bench_metrics: %s\n", cause);
		shm_close(bm_seg);
		shm_unlink_segment(inst, &cause);
		return 1;
	}
	/* The raw counter: a word of the (otherwise unused) anomaly region. */
	bm_word = shm_region(bm_seg, SHM_REGION_ANOMALY, &size);
	bm_word += size / sizeof *bm_word - 8;
	metrics_attach(shm_metrics(bm_seg));

	raw1 = bm_threads(BM_RAW, 1);
	met1 = bm_threads(BM_METRICS, 1);
	lim1 = bm_threads(BM_LIMITER, 1);
	raw2t = bm_threads(BM_RAW, 2);
	met2t = bm_threads(BM_METRICS, 2);
	met2p = bm_procs(BM_METRICS, 2);

	snap = malloc(sizeof *snap);
	metrics_snapshot(shm_metrics(bm_seg), snap);
	printf("{\"seconds\": %g, "
	    "\"raw_atomic_add_1t\": %.0f, \"metrics_request_1t\": %.0f, "
	    "\"ratelimit_check_1t\": %.0f, "
	    "\"raw_atomic_add_2t_one_word\": %.0f, \"metrics_request_2t_one_slot\": %.0f, "
	    "\"metrics_request_2p_own_slots\": %.0f, "
	    "\"ratio_metrics_to_raw_1t\": %.3f, \"ratio_metrics_to_limiter_1t\": %.3f, "
	    "\"ratio_2t_one_slot_to_1t\": %.3f, \"ratio_2p_own_slots_to_1t\": %.3f, "
	    "\"requests_counted\": %llu}\n", bm_seconds,
	    raw1, met1, lim1, raw2t, met2t, met2p,
	    met1 / raw1, met1 / lim1, met2t / met1, met2p / met1,
	    (unsigned long long)snap->requests[METRICS_EP_TOKEN][0]);
	free(snap);
	metrics_detach();
	shm_close(bm_seg);
	shm_unlink_segment(inst, &cause);
	return 0;
}
