/*
 * tarpit.h -- answers held back: a request refused by the rate limiter gets
 * its 429 after a delay, without a request thread waiting for it. A client
 * that sends as fast as it is answered (a credential-stuffing or flooding
 * loop on N connections) is slowed to N requests per delay, and stops
 * taking the threads and cores the other clients need.
 *
 * One tarpit per responder process, with one thread of its own.
 */
#ifndef TARPIT_H
#define TARPIT_H

#include <stddef.h>

struct tarpit;

/* A tarpit that sends each answer delay_ms after it came, holding at most max. */
struct tarpit *tarpit_new(unsigned delay_ms, unsigned max);
/* Send everything still held at once, stop the thread, free. Accepts NULL. */
void	tarpit_free(struct tarpit *);
/*
 * Take fd (a connection) and a copy of the len bytes to send on it before
 * closing it. FA_OK when held; FA_LIMIT when the tarpit is full and they
 * were sent and fd closed at once. Either way fd is no longer the caller's.
 */
int	tarpit_hold(struct tarpit *, int fd, const void *bytes, size_t len);

#endif
