/*
 * monitor.h -- security monitoring of a responder process: feeds the shared
 * anomaly detector (shm/anomaly.h) with invalid tokens, failed client
 * authentications and failed logins per client address, raises the
 * token_guessing_suspected / credential_stuffing_suspected events once per
 * window, throttles suspect addresses with the anomaly_throttle policy, and
 * (from the housekeeper) watches each endpoint's latency against its baseline.
 */
#ifndef MONITOR_H
#define MONITOR_H

#include "core/audit.h"
#include "shm/anomaly.h"

struct config;
struct response;
struct service;
struct service_thread;

/* The detector's parameters from the configuration. */
void	monitor_params(const struct config *, struct anomaly_params *);
/*
 * Count one event of kind from the current request's address (t->remote_addr),
 * and raise the alarm event when the address crosses its threshold.
 * client_id and username may be NULL.
 */
void	monitor_note(struct service_thread *, enum anomaly_kind,
	    const char *client_id, const char *username);
/*
 * For a suspect address when anomaly_throttle is on: count the request in
 * the stricter policy. FA_OK, or FA_LIMIT after writing the 429 answer.
 */
int	monitor_throttle(struct service_thread *, struct response *);
/* audit_set_observer's callback: counts security events by type. */
void	monitor_observe(enum audit_type, enum audit_severity);
/*
 * Periodic duties (housekeeper): fold dead processes' metrics slots and,
 * when due host-wide, evaluate endpoint latencies.
 */
void	monitor_tick(struct service *);

#endif
