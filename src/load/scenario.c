/*
 * scenario.c -- requests and verdicts of fastauth-load (see scenario.h).
 *
 * Legitimate operations must be answered exactly as a working server
 * answers them (a 200 with the fields a client would use); anything else is
 * an error of the run. Attack operations are never "errors": what they got
 * is counted by status, and the answers an attacker must never get are
 * counted as breaches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "load/dist.h"
#include "load/httpc.h"
#include "load/load.h"
#include "load/scenario.h"

#define SCEN_FORM	"application/x-www-form-urlencoded"

struct scenario {
	const struct load_cfg	*cfg;
	char			*basic_legit;	/* "Basic ..." */
	char			*basic_attacker;
};

static char *
scenario_basic(const char *id, const char *secret)
{
	struct buf b = BUF_INIT;
	char *v;

	httpc_request_basic(&b, id, secret);
	/* "Authorization: Basic xxx\r\n" -> "Basic xxx" */
	v = xstrndup(b.data + 15, b.len - 15 - 2);
	buf_wipe(&b);
	return v;
}

struct scenario *
scenario_new(const struct load_cfg *cfg)
{
	struct scenario *s = xcalloc(1, sizeof *s);

	s->cfg = cfg;
	s->basic_legit = scenario_basic(cfg->client_id, cfg->client_secret);
	s->basic_attacker = scenario_basic(cfg->attacker_id, cfg->attacker_secret);
	return s;
}

void
scenario_free(struct scenario *s)
{
	if (s == NULL)
		return;
	free(s->basic_legit);
	free(s->basic_attacker);
	free(s);
}

void
scenario_conn_free(struct scen_conn *c)
{
	free(c->rt);
	free(c->rt1);
	c->rt = c->rt1 = NULL;
}

uint32_t
scenario_rand(struct scen_conn *c)
{
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

void
scenario_form_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char ch;

	for (; *s != '\0'; s++) {
		ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
		    ch == '*')
			buf_putc(b, (char)ch);
		else if (ch == ' ')
			buf_putc(b, '+');
		else {
			buf_putc(b, '%');
			buf_putc(b, hex[ch >> 4]);
			buf_putc(b, hex[ch & 15]);
		}
	}
}

int
scenario_active_true(const char *body, size_t len)
{
	static const char key[] = "\"active\"";
	const char *p = body, *end = body + len, *k;

	while ((k = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
		p = k + sizeof key - 1;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (p >= end || *p != ':')
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		return end - p >= 4 && memcmp(p, "true", 4) == 0;
	}
	return 0;
}

static int
scenario_has(const char *body, size_t len, const char *needle)
{
	return memmem(body, len, needle, strlen(needle)) != NULL;
}

/* A string member of a JSON object body; allocated, or NULL. */
static char *
scenario_json_str(const char *body, size_t len, const char *key)
{
	json_t *doc, *v;
	char *out = NULL;

	if ((doc = json_loadb(body, len, 0, NULL)) == NULL)
		return NULL;
	if (json_is_object(doc) && (v = json_object_get(doc, key)) != NULL &&
	    json_is_string(v))
		out = xstrdup(json_string_value(v));
	json_decref(doc);
	return out;
}

static void
scenario_post(struct buf *out, const struct load_cfg *cfg, const char *path,
    const char *basic, const struct buf *form)
{
	httpc_request_begin(out, "POST", cfg->host, path);
	if (basic != NULL)
		httpc_request_header(out, "Authorization", basic);
	httpc_request_header(out, "Content-Type", SCEN_FORM);
	httpc_request_end(out, form->data ? form->data : "", form->len);
}

static void
scenario_bearer_get(struct buf *out, const struct load_cfg *cfg, const char *tok)
{
	httpc_request_begin(out, "GET", cfg->host, cfg->path_userinfo);
	buf_printf(out, "Authorization: Bearer %s\r\n", tok);
	httpc_request_end(out, NULL, 0);
}

static void
scenario_login_form(struct buf *f, const struct load_cfg *cfg, const char *user,
    const char *password)
{
	buf_puts(f, "grant_type=password&username=");
	scenario_form_escape(f, user);
	buf_puts(f, "&password=");
	scenario_form_escape(f, password);
	buf_puts(f, "&scope=");
	scenario_form_escape(f, cfg->scope);
}

static void
scenario_refresh_form(struct buf *f, const char *rt)
{
	buf_puts(f, "grant_type=refresh_token&refresh_token=");
	scenario_form_escape(f, rt);
}

/* A made-up token text of about the length of a real one. */
static void
scenario_forge(struct scen_conn *c, const struct load_cfg *cfg, struct buf *t)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = cfg->token_len > 8 ? cfg->token_len - 4 : 80, i;
	const char *real;
	char *m;

	if (cfg->ncc > 0 && scenario_rand(c) % 2 == 0) {
		/* A real token with one character changed. */
		real = cfg->cc_tokens[scenario_rand(c) % cfg->ncc];
		m = xstrdup(real);
		n = strlen(m);
		if (n > 5) {
			i = 4 + scenario_rand(c) % (n - 4);
			m[i] = m[i] == 'A' ? 'B' : 'A';
		}
		buf_puts(t, m);
		free(m);
		return;
	}
	buf_puts(t, "fa1.");
	for (i = 0; i < n; i++)
		buf_putc(t, alpha[scenario_rand(c) % 64]);
}

static int
scenario_next_legit(struct scenario *s, struct scen_conn *c, struct buf *out)
{
	const struct load_cfg *cfg = s->cfg;
	struct buf f = BUF_INIT;
	const struct load_user *u;
	int op = dist_pick(&cfg->dist, scenario_rand(c));

	if (op == DIST_REFRESH && c->rt == NULL)
		op = DIST_PASSWORD;	/* a refresh token comes from a login */
	switch (op) {
	case DIST_TOKEN:
		buf_puts(&f, "grant_type=client_credentials");
		scenario_post(out, cfg, cfg->path_token, s->basic_legit, &f);
		break;
	case DIST_INTROSPECT:
		buf_puts(&f, "token=");
		scenario_form_escape(&f, cfg->cc_tokens[scenario_rand(c) % cfg->ncc]);
		scenario_post(out, cfg, cfg->path_introspect, s->basic_legit, &f);
		break;
	case DIST_USERINFO:
		scenario_bearer_get(out, cfg,
		    cfg->user_tokens[scenario_rand(c) % cfg->nuser_tokens]);
		break;
	case DIST_PASSWORD:
		u = &cfg->users[(size_t)c->id % cfg->nusers];
		scenario_login_form(&f, cfg, u->name, u->password);
		scenario_post(out, cfg, cfg->path_token, s->basic_legit, &f);
		break;
	case DIST_REFRESH:
		scenario_refresh_form(&f, c->rt);
		scenario_post(out, cfg, cfg->path_token, s->basic_legit, &f);
		break;
	}
	buf_wipe(&f);
	return op;
}

static int
scenario_next_attack(struct scenario *s, struct scen_conn *c, struct buf *out)
{
	const struct load_cfg *cfg = s->cfg;
	struct buf f = BUF_INIT, t = BUF_INIT;
	char name[64], pw[64], *basic;
	int op = OP_DDOS_FLOOD;
	uint32_t r = scenario_rand(c);

	switch (cfg->attack) {
	case ATTACK_DDOS:
		op = OP_DDOS_FLOOD + (int)(r % 3);
		if (op == OP_DDOS_FLOOD) {
			buf_puts(&f, "grant_type=client_credentials");
			scenario_post(out, cfg, cfg->path_token, s->basic_attacker, &f);
		} else if (op == OP_DDOS_BADAUTH) {
			snprintf(name, sizeof name, "no-such-client-%u", scenario_rand(c) % 100000);
			snprintf(pw, sizeof pw, "guess-%08x", scenario_rand(c));
			basic = scenario_basic(name, pw);
			buf_puts(&f, "grant_type=client_credentials");
			scenario_post(out, cfg, cfg->path_token, basic, &f);
			free(basic);
		} else {
			buf_printf(&f, "token=garbage-%08x%08x", scenario_rand(c), scenario_rand(c));
			scenario_post(out, cfg, cfg->path_introspect, s->basic_attacker, &f);
		}
		break;
	case ATTACK_STUFFING:
		op = OP_STUFF_LOGIN;
		if (cfg->nusers > 0 && r % 2 == 0)
			snprintf(name, sizeof name, "%s", cfg->users[scenario_rand(c) % cfg->nusers].name);
		else
			snprintf(name, sizeof name, "user%u@example.org", scenario_rand(c) % 1000000);
		snprintf(pw, sizeof pw, "Leaked-%08x!", scenario_rand(c));
		scenario_login_form(&f, cfg, name, pw);
		scenario_post(out, cfg, cfg->path_token, s->basic_attacker, &f);
		break;
	case ATTACK_GUESSING:
		scenario_forge(c, cfg, &t);
		if (r % 4 == 0) {
			op = OP_GUESS_USERINFO;
			scenario_bearer_get(out, cfg, t.data);
		} else {
			op = OP_GUESS_INTROSPECT;
			buf_puts(&f, "token=");
			scenario_form_escape(&f, t.data);
			scenario_post(out, cfg, cfg->path_introspect, s->basic_attacker, &f);
		}
		break;
	case ATTACK_REPLAY:
		if (c->step == 0 || (c->step == 1 && c->rt == NULL) ||
		    (c->step == 3 && c->rt1 == NULL))
			c->step = 0;
		switch (c->step) {
		case 0:
			op = OP_REPLAY_LOGIN;
			c->user = scenario_rand(c) % cfg->nusers;
			scenario_login_form(&f, cfg, cfg->users[c->user].name,
			    cfg->users[c->user].password);
			break;
		case 1:
			op = OP_REPLAY_ROTATE;
			scenario_refresh_form(&f, c->rt);
			break;
		case 2:
			op = OP_REPLAY_REPLAY;
			scenario_refresh_form(&f, c->rt);
			break;
		default:
			op = OP_REPLAY_AFTER;
			scenario_refresh_form(&f, c->rt1);
			break;
		}
		/* The victim's client: the stolen token is presented as it. */
		scenario_post(out, cfg, cfg->path_token, s->basic_attacker, &f);
		break;
	case ATTACK_NONE:
		break;
	}
	buf_wipe(&f);
	buf_free(&t);
	return op;
}

int
scenario_next(struct scenario *s, struct scen_conn *c, struct buf *out)
{
	if (c->role == ROLE_LEGIT)
		return scenario_next_legit(s, c, out);
	return scenario_next_attack(s, c, out);
}

static void
scenario_take(char **slot, char *v)
{
	if (*slot != NULL)
		explicit_bzero(*slot, strlen(*slot));
	free(*slot);
	*slot = v;
}

void
scenario_failed(struct scen_conn *c, int op)
{
	if (op == DIST_REFRESH)
		scenario_take(&c->rt, NULL);
	if (op >= OP_REPLAY_LOGIN && op <= OP_REPLAY_AFTER)
		c->step = 0;
}

void
scenario_judge(struct scenario *s, struct scen_conn *c, int op, int status,
    const char *body, size_t len, int *ok, int *breach)
{
	char *rt;

	(void)s;
	*ok = 0;
	*breach = 0;
	switch (op) {
	case DIST_TOKEN:
		*ok = status == 200 && scenario_has(body, len, "\"access_token\"");
		break;
	case DIST_INTROSPECT:
		*ok = status == 200 && scenario_active_true(body, len);
		break;
	case DIST_USERINFO:
		*ok = status == 200 && scenario_has(body, len, "\"sub\"");
		break;
	case DIST_PASSWORD:
	case DIST_REFRESH:
		*ok = status == 200 && scenario_has(body, len, "\"access_token\"");
		rt = *ok ? scenario_json_str(body, len, "refresh_token") : NULL;
		scenario_take(&c->rt, rt);
		break;
	case OP_DDOS_FLOOD:
	case OP_DDOS_BADAUTH:
	case OP_DDOS_GARBAGE:
		/* A flood has nothing to win but service: what it got is in the statuses. */
		*ok = 1;
		*breach = op == OP_DDOS_BADAUTH && status == 200;
		if (op == OP_DDOS_GARBAGE && status == 200 && scenario_active_true(body, len))
			*breach = 1;
		break;
	case OP_STUFF_LOGIN:
		*breach = status == 200 || scenario_has(body, len, "\"access_token\"");
		*ok = !*breach;
		break;
	case OP_GUESS_INTROSPECT:
		*breach = status == 200 && scenario_active_true(body, len);
		*ok = !*breach;
		break;
	case OP_GUESS_USERINFO:
		*breach = status == 200;
		*ok = !*breach;
		break;
	case OP_REPLAY_LOGIN:
		rt = status == 200 ? scenario_json_str(body, len, "refresh_token") : NULL;
		*ok = rt != NULL;
		scenario_take(&c->rt, rt);
		scenario_take(&c->rt1, NULL);
		c->step = *ok ? 1 : 0;
		break;
	case OP_REPLAY_ROTATE:
		rt = status == 200 ? scenario_json_str(body, len, "refresh_token") : NULL;
		*ok = rt != NULL;
		scenario_take(&c->rt1, rt);
		c->step = *ok ? 2 : 0;
		break;
	case OP_REPLAY_REPLAY:
		/* RFC 9700 4.14.2: a rotated refresh token must not work again. */
		*breach = status == 200;
		*ok = status == 400 && scenario_has(body, len, "invalid_grant");
		c->step = 3;
		break;
	case OP_REPLAY_AFTER:
		/* ... and its reuse must have revoked the family, RT1 included. */
		*breach = status == 200;
		*ok = status == 400 && scenario_has(body, len, "invalid_grant");
		c->step = 0;
		break;
	}
}
