/*
 * scenario.h -- what each connection of fastauth-load sends next and how
 * its answer is judged: the legitimate operations of the --distribution mix
 * and the four attacks. Knows HTTP only as request text and (status, body).
 */
#ifndef SCENARIO_H
#define SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "load/load.h"

struct scenario;

/* Per-connection state; zero it, then set id, role and rng. */
struct scen_conn {
	int		 id;		/* connection number, 0.. */
	enum load_role	 role;
	uint64_t	 rng;		/* xorshift state, never 0 */
	char		*rt;		/* legit: current refresh token; replay: RT0 */
	char		*rt1;		/* replay: the rotated token */
	int		 step;		/* replay: next step (0 = log in) */
	size_t		 user;		/* replay: the victim */
};

/* Precompute what every request shares (Basic headers, paths). Caller frees. */
struct scenario	*scenario_new(const struct load_cfg *);
void		 scenario_free(struct scenario *);
/* Write the next request of c into out (appended); returns its enum load_op. */
int		 scenario_next(struct scenario *, struct scen_conn *, struct buf *out);
/*
 * Judge the answer to op: *ok = it is what the operation expects; *breach =
 * an attacker got what it must never get (a login with a wrong password, an
 * active forged token, a replayed refresh token honoured).
 */
void		 scenario_judge(struct scenario *, struct scen_conn *, int op, int status,
		    const char *body, size_t len, int *ok, int *breach);
/* op got no answer (timeout, reset): forget multi-step state. */
void		 scenario_failed(struct scen_conn *, int op);
void		 scenario_conn_free(struct scen_conn *);
/* A uniform 32-bit random number from c's generator. */
uint32_t	 scenario_rand(struct scen_conn *);
/* Does this JSON body say "active": true? (Tolerates blanks; for tests.) */
int		 scenario_active_true(const char *body, size_t len);
/* Append s form-urlencoded (RFC 1866 / WHATWG application/x-www-form-urlencoded). */
void		 scenario_form_escape(struct buf *, const char *s);

#endif
