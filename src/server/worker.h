/*
 * worker.h -- one responder process: T request threads on a FastCGI listen
 * socket, each with its own FastCGI request, crypto context and Redis slot.
 */
#ifndef WORKER_H
#define WORKER_H

struct config;

/*
 * Serve requests on listen_fd until SIGTERM or SIGINT, then stop accepting,
 * let in-flight requests finish (at most drain_timeout_ms) and return the exit
 * status (0 after a clean drain, 1 if the service could not start).
 */
int	worker_run(const struct config *, int listen_fd);

#endif
