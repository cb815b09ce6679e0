/*
 * engine.h -- the connections of fastauth-load: --threads threads, each with
 * its own epoll set and share of the keep-alive connections, each
 * connection one request in flight at a time (closed loop, or paced to
 * --rate with latency measured from the intended send time).
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <signal.h>
#include <stdint.h>

#include "load/load.h"
#include "load/scenario.h"

struct engine;

/* cfg and scen must outlive the engine. Caller frees with engine_free. */
struct engine	*engine_new(const struct load_cfg *, struct scenario *);
void		 engine_free(struct engine *);
/*
 * Run for cfg->warmup_s + cfg->duration_s seconds (less if --requests is
 * reached or *interrupted becomes non-zero). FA_OK, or FA_ERR with *cause
 * (allocated) when the threads could not start.
 */
int		 engine_run(struct engine *, volatile sig_atomic_t *interrupted, char **cause);
/* The merged statistics, stats[role][op]; valid after engine_run. */
const struct load_stats *engine_stats(const struct engine *, int role, int op);
/* Microseconds on CLOCK_MONOTONIC. */
uint64_t	 engine_now_us(void);
/* Seconds the measurement window lasted (after the warm-up). */
double		 engine_elapsed(const struct engine *);

#endif
