/*
 * load.h -- what the modules of fastauth-load share: the run's settings
 * (filled by main.c and setup.c, read-only once the threads start), the
 * operations it sends, and the statistics each thread keeps.
 */
#ifndef LOAD_H
#define LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "load/dist.h"
#include "load/hist.h"

enum load_mode { LOAD_MIXED, LOAD_ATTACK };
enum load_attack { ATTACK_NONE, ATTACK_DDOS, ATTACK_STUFFING, ATTACK_GUESSING, ATTACK_REPLAY };
enum load_role { ROLE_LEGIT, ROLE_ATTACK, ROLE_N };

/* Operations: the legitimate ones are enum dist_op (0..DIST_NOPS-1). */
enum load_op {
	OP_DDOS_FLOOD = DIST_NOPS,	/* client_credentials with the attacker's own client */
	OP_DDOS_BADAUTH,	/* client_credentials for an unknown client */
	OP_DDOS_GARBAGE,	/* introspection of garbage with the attacker's client */
	OP_STUFF_LOGIN,		/* password grant, real or made-up user, wrong password */
	OP_GUESS_INTROSPECT,	/* introspection of a forged or mutated token */
	OP_GUESS_USERINFO,	/* UserInfo with a forged bearer token */
	OP_REPLAY_LOGIN,	/* the victim logs in (step 1 of 4) */
	OP_REPLAY_ROTATE,	/* the victim refreshes: RT0 -> RT1 */
	OP_REPLAY_REPLAY,	/* the attacker presents RT0 again */
	OP_REPLAY_AFTER,	/* the victim presents RT1 after the replay */
	OP_N
};

enum load_err {
	ERR_TIMEOUT,		/* no whole response within --timeout */
	ERR_CONNECT,		/* connect(2) failed */
	ERR_CLOSED,		/* the server closed or reset mid-request */
	ERR_PROTOCOL,		/* the response was not valid HTTP (or too large) */
	ERR_UNEXPECTED,		/* a response, but not the expected answer */
	ERR_N
};

#define LOAD_STATUS_MAX	600	/* status codes counted: 0..599 */

struct load_stats {
	uint64_t	requests;		/* answered or failed */
	uint64_t	ok;			/* answered as expected */
	uint64_t	breaches;		/* attack: what the attacker must never get */
	uint64_t	status[LOAD_STATUS_MAX];
	uint64_t	errors[ERR_N];
	struct hist	lat;			/* µs, requests with a response */
};

struct load_user {
	char	*name;
	char	*password;
};

struct load_cfg {
	enum load_mode	 mode;
	enum load_attack attack;
	/* target: http://host:port/base; endpoints base/token ... */
	char		*url;
	char		*host;		/* Host header: host[:port] */
	char		*connect_host;	/* numeric address connected to */
	int		 port;
	char		*path_token, *path_introspect, *path_userinfo;
	int		 clients;	/* legitimate connections */
	int		 attackers;	/* attacker connections */
	int		 threads;
	int		 duration_s;
	int		 warmup_s;
	uint64_t	 max_requests;	/* legitimate; 0 = no limit */
	double		 rate;		/* legitimate requests/s; 0 = closed loop */
	int		 timeout_ms;
	struct dist	 dist;
	char		*dist_text;
	char		*scope;		/* asked for in password grants */
	/* credentials */
	char		*client_id, *client_secret;
	char		*attacker_id, *attacker_secret;
	struct load_user *users;
	size_t		 nusers;
	/* filled by setup: tokens the workload presents */
	char		**cc_tokens;	/* client_credentials tokens (introspection) */
	size_t		 ncc;
	char		**user_tokens;	/* users' access tokens (UserInfo) */
	size_t		 nuser_tokens;
	size_t		 token_len;	/* length of a real access token, for forgeries */
};

/* Names for reports (main.c). "token", ..., "ddos_flood", ...; never NULL. */
const char	*load_op_name(int op);
const char	*load_err_name(int err);
const char	*load_attack_name(enum load_attack);

#endif
