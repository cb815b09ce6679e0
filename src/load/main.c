/*
 * main.c -- fastauth-load: a load generator for fastauth (and any server
 * answering the same OAuth 2.0 endpoints), with a legitimate mixed workload
 * and attacks run beside it. See fastauth-load(1).
 *
 * This file reads the command line, runs setup, the engine and prints the
 * report (text, or one JSON object with --json). Exit status: 0 the run
 * completed, 1 it could not run or no legitimate request succeeded, 2 bad
 * arguments, 3 an attacker got what it must never get.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "load/dist.h"
#include "load/engine.h"
#include "load/load.h"
#include "load/scenario.h"
#include "load/setup.h"

#define LOAD_DEFAULT_URL	"http://127.0.0.1:8080/auth/oauth2"
#define LOAD_DEFAULT_DIST	"token:30,introspect:60,userinfo:10"
#define LOAD_CONNS_MAX		20000

static volatile sig_atomic_t load_interrupted;

static const char *const load_op_names[OP_N] = {
	"token", "introspect", "userinfo", "password", "refresh",
	"ddos_flood", "ddos_bad_client", "ddos_garbage_token", "stuffing_login",
	"guess_introspect", "guess_userinfo", "replay_login", "replay_rotate",
	"replay_replay", "replay_after",
};
static const char *const load_err_names[ERR_N] = {
	"timeout", "connect", "closed", "protocol", "unexpected_answer",
};
static const char *const load_attack_names[] = {
	"none", "ddos", "credential-stuffing", "token-guessing", "refresh-replay",
};

const char *
load_op_name(int op)
{
	return op >= 0 && op < OP_N ? load_op_names[op] : "?";
}

const char *
load_err_name(int err)
{
	return err >= 0 && err < ERR_N ? load_err_names[err] : "?";
}

const char *
load_attack_name(enum load_attack a)
{
	return load_attack_names[a];
}

static void
load_on_signal(int sig)
{
	(void)sig;
	load_interrupted = 1;
}

static void __attribute__((noreturn))
load_usage(void)
{
	fprintf(stderr,
	    "usage: fastauth-load mixed-workload [options]\n"
	    "       fastauth-load attack-simulation --attack-type TYPE [options]\n"
	    "  --url URL               OAuth base, endpoints URL/token, URL/introspect, URL/userinfo\n"
	    "                          (default " LOAD_DEFAULT_URL ")\n"
	    "  --clients N             legitimate connections (default 10)\n"
	    "  --attackers N           attacker connections (attack-simulation; default = --clients)\n"
	    "  --attack-type TYPE      ddos | credential-stuffing | token-guessing | refresh-replay\n"
	    "  --distribution SPEC     legitimate mix (default \"" LOAD_DEFAULT_DIST "\")\n"
	    "  --duration S            measured seconds (default 10)   --warmup S  (default 0)\n"
	    "  --requests N            stop after N legitimate requests\n"
	    "  --rate R                pace legitimate requests to R/s (default: as fast as answered)\n"
	    "  --threads N             (default 2)     --timeout MS  per request (default 5000)\n"
	    "  --setup --fastauthctl PATH -c CONF [--setup-users N]   create clients and users\n"
	    "  --client-id ID --client-secret S [--attacker-client-id ID --attacker-client-secret S]\n"
	    "  --users FILE            username:password lines   --scope SCOPES\n"
	    "  --json                  one JSON object on stdout\n");
	exit(2);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
load_bad(const char *fmt, ...)
{
	va_list ap;

	fputs("fastauth-load: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (fastauth-load --help for usage)\n", stderr);
	exit(2);
}

/* A whole number in [lo, hi] from an option, or exit 2 naming the option. */
static long long
load_num(const char *opt, const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	if (*s == '\0' || *s == ' ' || *s == '+' || *s == '-')
		load_bad("--%s: \"%s\" is not a whole number from %lld to %lld", opt, s, lo, hi);
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		load_bad("--%s: \"%s\" is not a whole number from %lld to %lld", opt, s, lo, hi);
	return v;
}

/* http://HOST[:PORT]/PATH into cfg; exit 2 on anything else. */
static void
load_parse_url(struct load_cfg *cfg, const char *url)
{
	struct addrinfo hints, *ai = NULL;
	const char *p, *slash, *colon;
	char host[256], addr[INET_ADDRSTRLEN], *path;
	size_t hl, pl;
	int port = 80;

	if (strncmp(url, "http://", 7) != 0)
		load_bad("--url: \"%s\": only http://HOST[:PORT]/PATH is supported", url);
	p = url + 7;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	hl = (size_t)((colon ? colon : slash) - p);
	if (hl == 0 || hl >= sizeof host)
		load_bad("--url: \"%s\": no host", url);
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (colon != NULL) {
		char pbuf[8];

		if ((size_t)(slash - colon - 1) == 0 || (size_t)(slash - colon - 1) >= sizeof pbuf)
			load_bad("--url: \"%s\": bad port", url);
		memcpy(pbuf, colon + 1, (size_t)(slash - colon - 1));
		pbuf[slash - colon - 1] = '\0';
		port = (int)load_num("url port", pbuf, 1, 65535);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL)
		load_bad("--url: cannot resolve \"%s\" to an IPv4 address", host);
	inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, sizeof addr);
	freeaddrinfo(ai);
	path = xstrdup(*slash ? slash : "");
	pl = strlen(path);
	while (pl > 0 && path[pl - 1] == '/')
		path[--pl] = '\0';
	if (strpbrk(path, " \t\r\n?#") != NULL)
		load_bad("--url: the path must not contain blanks, ? or #");
	cfg->url = xstrdup(url);
	cfg->connect_host = xstrdup(addr);
	cfg->port = port;
	cfg->host = colon ? xasprintf("%s:%d", host, port) : xstrdup(host);
	cfg->path_token = xasprintf("%s/token", path);
	cfg->path_introspect = xasprintf("%s/introspect", path);
	cfg->path_userinfo = xasprintf("%s/userinfo", path);
	free(path);
}

/* User plus system CPU time of this process so far, in seconds. */
static double
load_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double
load_ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static json_t *
load_latency_json(const struct hist *h)
{
	return json_pack("{s:f,s:f,s:f,s:f,s:f}",
	    "p50", load_ms(hist_quantile(h, 0.50)), "p95", load_ms(hist_quantile(h, 0.95)),
	    "p99", load_ms(hist_quantile(h, 0.99)), "max", load_ms(h->max),
	    "mean", hist_mean(h) / 1000.0);
}

static void
load_add(struct load_stats *d, const struct load_stats *s)
{
	int k;

	d->requests += s->requests;
	d->ok += s->ok;
	d->breaches += s->breaches;
	for (k = 0; k < LOAD_STATUS_MAX; k++)
		d->status[k] += s->status[k];
	for (k = 0; k < ERR_N; k++)
		d->errors[k] += s->errors[k];
	hist_merge(&d->lat, &s->lat);
}

static json_t *
load_group_json(const struct load_stats *s, double secs, int role)
{
	json_t *o, *st = json_object(), *er = json_object();
	char code[8];
	int k;

	for (k = 0; k < LOAD_STATUS_MAX; k++)
		if (s->status[k] > 0) {
			snprintf(code, sizeof code, "%d", k);
			json_object_set_new(st, code, json_integer((json_int_t)s->status[k]));
		}
	for (k = 0; k < ERR_N; k++)
		if (role == ROLE_LEGIT || k != ERR_UNEXPECTED)
			json_object_set_new(er, load_err_name(k), json_integer((json_int_t)s->errors[k]));
	o = json_pack("{s:I,s:I,s:f,s:f,s:o,s:o,s:o}",
	    "requests", (json_int_t)s->requests,
	    role == ROLE_LEGIT ? "ok" : "answered_as_expected", (json_int_t)s->ok,
	    "requests_per_s", secs > 0 ? (double)s->requests / secs : 0.0,
	    "ok_per_s", secs > 0 ? (double)s->ok / secs : 0.0,
	    "latency_ms", load_latency_json(&s->lat), "status", st, "errors", er);
	if (role == ROLE_LEGIT) {
		json_object_set_new(o, "failed", json_integer((json_int_t)(s->requests - s->ok)));
		json_object_set_new(o, "error_rate", json_real(s->requests ?
		    (double)(s->requests - s->ok) / (double)s->requests : 0.0));
	}
	return o;
}

static const char *
load_success_means(enum load_attack a)
{
	switch (a) {
	case ATTACK_DDOS:
		return "a token for an unknown client, or an active answer for a garbage token";
	case ATTACK_STUFFING:
		return "a token for a wrong password";
	case ATTACK_GUESSING:
		return "active:true for a forged or altered token, or UserInfo for one";
	case ATTACK_REPLAY:
		return "a rotated refresh token honoured again, or its family surviving the replay";
	case ATTACK_NONE:
		break;
	}
	return "";
}

struct load_report {
	struct load_stats	legit, attack;
	struct load_stats	*per_op;	/* [ROLE_N * OP_N] copies */
	double			 secs;
};

static void
load_collect(const struct engine *e, struct load_report *r)
{
	int role, op;

	r->per_op = xmalloc(ROLE_N * OP_N * sizeof *r->per_op);
	memset(&r->legit, 0, sizeof r->legit);
	memset(&r->attack, 0, sizeof r->attack);
	hist_init(&r->legit.lat);
	hist_init(&r->attack.lat);
	for (role = 0; role < ROLE_N; role++)
		for (op = 0; op < OP_N; op++) {
			r->per_op[role * OP_N + op] = *engine_stats(e, role, op);
			load_add(role == ROLE_LEGIT ? &r->legit : &r->attack,
			    engine_stats(e, role, op));
		}
	r->secs = engine_elapsed(e);
}

static json_t *
load_report_json(const struct load_cfg *cfg, const struct load_report *r)
{
	json_t *doc, *dist = json_object(), *g, *ops;
	const struct load_stats *s;
	int op;

	for (op = 0; op < DIST_NOPS; op++)
		if (cfg->dist.weight[op] > 0)
			json_object_set_new(dist, dist_op_name(op), json_integer(cfg->dist.weight[op]));
	doc = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:o}",
	    "tool", "fastauth-load", "mode",
	    cfg->mode == LOAD_MIXED ? "mixed-workload" : "attack-simulation",
	    "url", cfg->url, "threads", cfg->threads, "clients", cfg->clients,
	    "duration_s", cfg->duration_s, "warmup_s", cfg->warmup_s,
	    "timeout_ms", cfg->timeout_ms, "elapsed_s", r->secs,
	    "attackers", cfg->attackers, "distribution", dist);
	json_object_set_new(doc, "rate", cfg->rate > 0 ? json_real(cfg->rate) : json_null());
	/* What the load generator itself used (it may share the server's cores). */
	json_object_set_new(doc, "load_cpu_s", json_real(load_cpu_seconds()));
	g = load_group_json(&r->legit, r->secs, ROLE_LEGIT);
	ops = json_object();
	for (op = 0; op < DIST_NOPS; op++) {
		s = &r->per_op[ROLE_LEGIT * OP_N + op];
		if (s->requests > 0 || cfg->dist.weight[op] > 0)
			json_object_set_new(ops, dist_op_name(op), load_group_json(s, r->secs, ROLE_LEGIT));
	}
	json_object_set_new(g, "operations", ops);
	json_object_set_new(doc, "legitimate", g);
	if (cfg->mode == LOAD_ATTACK) {
		g = load_group_json(&r->attack, r->secs, ROLE_ATTACK);
		json_object_set_new(g, "type", json_string(load_attack_name(cfg->attack)));
		json_object_set_new(g, "successes", json_integer((json_int_t)r->attack.breaches));
		json_object_set_new(g, "success_means", json_string(load_success_means(cfg->attack)));
		ops = json_object();
		for (op = DIST_NOPS; op < OP_N; op++) {
			s = &r->per_op[ROLE_ATTACK * OP_N + op];
			if (s->requests > 0) {
				json_t *o = load_group_json(s, r->secs, ROLE_ATTACK);

				json_object_set_new(o, "successes", json_integer((json_int_t)s->breaches));
				json_object_set_new(ops, load_op_name(op), o);
			}
		}
		json_object_set_new(g, "operations", ops);
		json_object_set_new(doc, "attack", g);
	}
	return doc;
}

static void
load_text_group(const char *title, const struct load_stats *s, double secs, int role)
{
	int k, any = 0;

	printf("%s: %llu requests, %.1f/s", title, (unsigned long long)s->requests,
	    secs > 0 ? (double)s->requests / secs : 0.0);
	if (role == ROLE_LEGIT)
		printf(", %llu failed (%.2f%%)", (unsigned long long)(s->requests - s->ok),
		    s->requests ? 100.0 * (double)(s->requests - s->ok) / (double)s->requests : 0.0);
	printf("\n  latency ms: p50 %.3f  p95 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
	    load_ms(hist_quantile(&s->lat, 0.50)), load_ms(hist_quantile(&s->lat, 0.95)),
	    load_ms(hist_quantile(&s->lat, 0.99)), load_ms(s->lat.max), hist_mean(&s->lat) / 1000.0);
	printf("  status:");
	for (k = 0; k < LOAD_STATUS_MAX; k++)
		if (s->status[k] > 0) {
			printf(" %d=%llu", k, (unsigned long long)s->status[k]);
			any = 1;
		}
	printf("%s\n  errors:", any ? "" : " none");
	for (k = 0; k < ERR_N; k++)
		if (role == ROLE_LEGIT || k != ERR_UNEXPECTED)
			printf(" %s=%llu", load_err_name(k), (unsigned long long)s->errors[k]);
	printf("\n");
}

static void
load_report_text(const struct load_cfg *cfg, const struct load_report *r)
{
	const struct load_stats *s;
	char title[64];
	int op;

	printf("fastauth-load %s against %s: %d clients", cfg->mode == LOAD_MIXED ?
	    "mixed-workload" : "attack-simulation", cfg->url, cfg->clients);
	if (cfg->mode == LOAD_ATTACK)
		printf(" + %d attackers (%s)", cfg->attackers, load_attack_name(cfg->attack));
	printf(", %d threads, %.2f s measured, distribution %s\n", cfg->threads, r->secs,
	    cfg->dist_text);
	load_text_group("legitimate", &r->legit, r->secs, ROLE_LEGIT);
	for (op = 0; op < DIST_NOPS; op++) {
		s = &r->per_op[ROLE_LEGIT * OP_N + op];
		if (s->requests == 0)
			continue;
		snprintf(title, sizeof title, "  %s", dist_op_name(op));
		load_text_group(title, s, r->secs, ROLE_LEGIT);
	}
	if (cfg->mode == LOAD_ATTACK) {
		load_text_group("attackers", &r->attack, r->secs, ROLE_ATTACK);
		for (op = DIST_NOPS; op < OP_N; op++) {
			s = &r->per_op[ROLE_ATTACK * OP_N + op];
			if (s->requests == 0)
				continue;
			snprintf(title, sizeof title, "  %s", load_op_name(op));
			load_text_group(title, s, r->secs, ROLE_ATTACK);
		}
		printf("attacker successes: %llu (%s)\n", (unsigned long long)r->attack.breaches,
		    load_success_means(cfg->attack));
	}
}

enum {
	O_URL = 256, O_CLIENTS, O_ATTACKERS, O_ATTACK_TYPE, O_DIST, O_DURATION, O_WARMUP,
	O_REQUESTS, O_RATE, O_THREADS, O_TIMEOUT, O_SETUP, O_CTL, O_SETUP_USERS,
	O_CLIENT_ID, O_CLIENT_SECRET, O_ATK_ID, O_ATK_SECRET, O_USERS, O_SCOPE, O_JSON
};

static const struct option load_options[] = {
	{ "url", required_argument, NULL, O_URL },
	{ "clients", required_argument, NULL, O_CLIENTS },
	{ "attackers", required_argument, NULL, O_ATTACKERS },
	{ "attack-type", required_argument, NULL, O_ATTACK_TYPE },
	{ "distribution", required_argument, NULL, O_DIST },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "requests", required_argument, NULL, O_REQUESTS },
	{ "rate", required_argument, NULL, O_RATE },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "setup", no_argument, NULL, O_SETUP },
	{ "fastauthctl", required_argument, NULL, O_CTL },
	{ "setup-users", required_argument, NULL, O_SETUP_USERS },
	{ "config", required_argument, NULL, 'c' },
	{ "client-id", required_argument, NULL, O_CLIENT_ID },
	{ "client-secret", required_argument, NULL, O_CLIENT_SECRET },
	{ "attacker-client-id", required_argument, NULL, O_ATK_ID },
	{ "attacker-client-secret", required_argument, NULL, O_ATK_SECRET },
	{ "users", required_argument, NULL, O_USERS },
	{ "scope", required_argument, NULL, O_SCOPE },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

int
main(int argc, char **argv)
{
	struct load_cfg cfg;
	struct load_report rep;
	struct scenario *scen = NULL;
	struct engine *eng = NULL;
	struct sigaction sa;
	const char *url = LOAD_DEFAULT_URL, *ctl = "fastauthctl", *conf = NULL;
	const char *users_file = NULL, *attack_text = NULL, *env;
	char *cause = NULL, *end;
	int ch, setup = 0, setup_users = 10, json = 0, attackers = -1, rc = 1;
	int want_user_tokens, want_cc;
	json_t *doc;

	memset(&cfg, 0, sizeof cfg);
	memset(&rep, 0, sizeof rep);
	cfg.clients = 10;
	cfg.threads = 2;
	cfg.duration_s = 10;
	cfg.timeout_ms = 5000;
	cfg.scope = xstrdup("openid profile email");
	cfg.dist_text = xstrdup(LOAD_DEFAULT_DIST);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		load_usage();
	if (strcmp(argv[1], "mixed-workload") == 0)
		cfg.mode = LOAD_MIXED;
	else if (strcmp(argv[1], "attack-simulation") == 0)
		cfg.mode = LOAD_ATTACK;
	else
		load_bad("unknown mode \"%s\": want mixed-workload or attack-simulation", argv[1]);
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:h", load_options, NULL)) != -1) {
		switch (ch) {
		case O_URL: url = optarg; break;
		case O_CLIENTS: cfg.clients = (int)load_num("clients", optarg, 1, LOAD_CONNS_MAX); break;
		case O_ATTACKERS: attackers = (int)load_num("attackers", optarg, 1, LOAD_CONNS_MAX); break;
		case O_ATTACK_TYPE: attack_text = optarg; break;
		case O_DIST:
			free(cfg.dist_text);
			cfg.dist_text = xstrdup(optarg);
			break;
		case O_DURATION: cfg.duration_s = (int)load_num("duration", optarg, 1, 86400); break;
		case O_WARMUP: cfg.warmup_s = (int)load_num("warmup", optarg, 0, 3600); break;
		case O_REQUESTS:
			cfg.max_requests = (uint64_t)load_num("requests", optarg, 1, 1000000000000LL);
			break;
		case O_RATE:
			errno = 0;
			cfg.rate = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' || !(cfg.rate >= 1) ||
			    cfg.rate > 10000000)
				load_bad("--rate: \"%s\" is not a rate from 1 to 10000000 requests/s", optarg);
			break;
		case O_THREADS: cfg.threads = (int)load_num("threads", optarg, 1, 64); break;
		case O_TIMEOUT: cfg.timeout_ms = (int)load_num("timeout", optarg, 1, 600000); break;
		case O_SETUP: setup = 1; break;
		case O_CTL: ctl = optarg; break;
		case O_SETUP_USERS: setup_users = (int)load_num("setup-users", optarg, 1, 1000); break;
		case 'c': conf = optarg; break;
		case O_CLIENT_ID: cfg.client_id = xstrdup(optarg); break;
		case O_CLIENT_SECRET: cfg.client_secret = xstrdup(optarg); break;
		case O_ATK_ID: cfg.attacker_id = xstrdup(optarg); break;
		case O_ATK_SECRET: cfg.attacker_secret = xstrdup(optarg); break;
		case O_USERS: users_file = optarg; break;
		case O_SCOPE:
			free(cfg.scope);
			cfg.scope = xstrdup(optarg);
			break;
		case O_JSON: json = 1; break;
		case 'h':
		default:
			load_usage();
		}
	}
	if (optind < argc)
		load_bad("unexpected argument \"%s\"", argv[optind]);

	/* --- arguments, checked together ----------------------------------- */
	if (dist_parse(cfg.dist_text, &cfg.dist, &cause) != FA_OK)
		load_bad("--distribution: %s", cause);
	if (cfg.mode == LOAD_ATTACK) {
		if (attack_text == NULL)
			load_bad("attack-simulation needs --attack-type ddos, credential-stuffing, "
			    "token-guessing or refresh-replay");
		for (ch = ATTACK_DDOS; ch <= ATTACK_REPLAY; ch++)
			if (strcmp(attack_text, load_attack_names[ch]) == 0)
				cfg.attack = (enum load_attack)ch;
		if (cfg.attack == ATTACK_NONE)
			load_bad("--attack-type: unknown \"%s\" (want ddos, credential-stuffing, "
			    "token-guessing or refresh-replay)", attack_text);
		cfg.attackers = attackers > 0 ? attackers : cfg.clients;
	} else if (attack_text != NULL || attackers > 0)
		load_bad("--attack-type and --attackers belong to attack-simulation");
	if (setup && (conf == NULL))
		load_bad("--setup needs -c CONF (the fastauth.conf fastauthctl uses)");
	if (!setup && conf != NULL)
		load_bad("-c is only used with --setup");
	if (setup && (cfg.client_id != NULL || users_file != NULL))
		load_bad("--setup creates its own clients and users: drop --client-id and --users");
	if (cfg.client_secret == NULL && (env = getenv("FA_LOAD_CLIENT_SECRET")) != NULL)
		cfg.client_secret = xstrdup(env);
	if (cfg.attacker_id != NULL && cfg.attacker_secret == NULL &&
	    (env = getenv("FA_LOAD_ATTACKER_SECRET")) != NULL)
		cfg.attacker_secret = xstrdup(env);
	if (!setup && (cfg.client_id == NULL || cfg.client_secret == NULL))
		load_bad("give --setup (with --fastauthctl and -c) or --client-id and "
		    "--client-secret (or FA_LOAD_CLIENT_SECRET)");
	if ((cfg.attacker_id == NULL) != (cfg.attacker_secret == NULL) && !setup)
		load_bad("--attacker-client-id and --attacker-client-secret go together");
	if (cfg.clients + cfg.attackers > LOAD_CONNS_MAX)
		load_bad("at most %d connections in all", LOAD_CONNS_MAX);
	load_parse_url(&cfg, url);
	if (users_file != NULL && setup_users_file(&cfg, users_file, &cause) != FA_OK)
		load_bad("--users: %s", cause);
	want_user_tokens = cfg.dist.weight[DIST_USERINFO] > 0;
	if (!setup && cfg.nusers == 0 && (want_user_tokens || cfg.dist.weight[DIST_PASSWORD] > 0 ||
	    cfg.dist.weight[DIST_REFRESH] > 0 || cfg.attack == ATTACK_REPLAY))
		load_bad("userinfo, password and refresh in the mix and the refresh-replay "
		    "attack need users: --users FILE or --setup");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = load_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* --- setup ------------------------------------------------------------ */
	if (setup_probe(&cfg, &cause) != FA_OK) {
		fprintf(stderr, "fastauth-load: %s\n", cause);
		goto out;
	}
	if (setup && setup_fastauthctl(&cfg, ctl, conf, setup_users, &cause) != FA_OK) {
		fprintf(stderr, "fastauth-load: setup: %s\n", cause);
		goto out;
	}
	if (cfg.attacker_id == NULL) {
		/* The attackers present the legitimate client's credentials. */
		cfg.attacker_id = xstrdup(cfg.client_id);
		cfg.attacker_secret = xstrdup(cfg.client_secret);
	}
	want_cc = cfg.dist.weight[DIST_INTROSPECT] > 0 || cfg.attack == ATTACK_GUESSING;
	if (setup_tokens(&cfg, want_cc ? 32 : 0, want_user_tokens, &cause) != FA_OK) {
		fprintf(stderr, "fastauth-load: setup: %s\n", cause);
		goto out;
	}

	/* --- the run ---------------------------------------------------------- */
	scen = scenario_new(&cfg);
	eng = engine_new(&cfg, scen);
	if (engine_run(eng, &load_interrupted, &cause) != FA_OK) {
		fprintf(stderr, "fastauth-load: %s\n", cause);
		goto out;
	}
	load_collect(eng, &rep);
	if (json) {
		doc = load_report_json(&cfg, &rep);
		json_dumpf(doc, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(doc);
	} else
		load_report_text(&cfg, &rep);
	fflush(stdout);
	if (rep.legit.ok == 0) {
		fprintf(stderr, "fastauth-load: no legitimate request succeeded\n");
		rc = 1;
	} else if (rep.attack.breaches > 0) {
		fprintf(stderr, "fastauth-load: attackers succeeded %llu times\n",
		    (unsigned long long)rep.attack.breaches);
		rc = 3;
	} else
		rc = 0;
out:
	engine_free(eng);
	scenario_free(scen);
	free(rep.per_op);
	setup_free(&cfg);
	free(cause);
	free(cfg.url);
	free(cfg.host);
	free(cfg.connect_host);
	free(cfg.path_token);
	free(cfg.path_introspect);
	free(cfg.path_userinfo);
	free(cfg.scope);
	free(cfg.dist_text);
	free(cfg.client_id);
	free(cfg.client_secret);
	free(cfg.attacker_id);
	free(cfg.attacker_secret);
	return rc;
}
