/*
 * setup.c -- clients, users and tokens before a run (see setup.h).
 *
 * fastauthctl is run as a child with its stdout (the generated secret) and
 * stderr (its complaint) read back; a password goes to it on stdin, never on
 * its command line. Tokens are fetched one request per connection over a
 * blocking socket with the same request writer and response parser as the
 * run itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "load/httpc.h"
#include "load/load.h"
#include "load/scenario.h"
#include "load/setup.h"

/* Run argv with input on stdin; stdout into out, stderr into err. FA_OK if it exited 0. */
static int
setup_run(char *const argv[], const char *input, struct buf *out, struct buf *err)
{
	int in[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2] = { -1, -1 };
	struct pollfd pfd[2];
	char chunk[4096];
	pid_t pid = -1;
	int status, rc = FA_ERR, open_fds, i;
	ssize_t n;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(o, O_CLOEXEC) == -1 ||
	    pipe2(e, O_CLOEXEC) == -1) {
		buf_printf(err, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) == -1) {
		buf_printf(err, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		if (dup2(in[0], 0) == -1 || dup2(o[1], 1) == -1 || dup2(e[1], 2) == -1)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	close(e[1]);
	in[0] = o[1] = e[1] = -1;
	if (input != NULL && write(in[1], input, strlen(input)) == -1) {
		/* The child's exit status tells. */
	}
	close(in[1]);
	in[1] = -1;
	pfd[0].fd = o[0];
	pfd[1].fd = e[0];
	pfd[0].events = pfd[1].events = POLLIN;
	open_fds = 2;
	while (open_fds > 0) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd == -1 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pfd[i].fd, chunk, sizeof chunk);
			if (n > 0)
				buf_append(i == 0 ? out : err, chunk, (size_t)n);
			else if (n == 0 || errno != EINTR) {
				close(pfd[i].fd);
				if (i == 0)
					o[0] = -1;
				else
					e[0] = -1;
				pfd[i].fd = -1;
				open_fds--;
			}
		}
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	pid = -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = FA_OK;
out:
	for (i = 0; i < 2; i++) {
		if (in[i] != -1)
			close(in[i]);
		if (o[i] != -1)
			close(o[i]);
		if (e[i] != -1)
			close(e[i]);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return rc;
}

/* The one line a fastauthctl command printed, without its newline. */
static char *
setup_one_line(const struct buf *out)
{
	size_t n = out->len;

	if (out->data == NULL)
		return NULL;
	while (n > 0 && (out->data[n - 1] == '\n' || out->data[n - 1] == '\r'))
		n--;
	if (n == 0 || memchr(out->data, '\n', n) != NULL)
		return NULL;
	return xstrndup(out->data, n);
}

static int
setup_ctl(const char *ctl, const char *conf, char **extra, const char *input,
    char **line, char **cause)
{
	char *argv[32];
	struct buf out = BUF_INIT, err = BUF_INIT;
	int n = 0, rc;

	argv[n++] = (char *)ctl;
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)conf;
	while (*extra != NULL && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	rc = setup_run(argv, input, &out, &err);
	if (rc == FA_OK && line != NULL && (*line = setup_one_line(&out)) == NULL)
		rc = FA_ERR;
	if (rc != FA_OK)
		*cause = xasprintf("%s -c %s %s %s failed: %s", ctl, conf, argv[3],
		    argv[4] ? argv[4] : "", err.data ? err.data : "(no message)");
	buf_wipe(&out);
	buf_free(&err);
	return rc;
}

static char *
setup_random_hex(size_t bytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	char *s = xmalloc(2 * bytes + 1);
	size_t i;
	int fd;

	if (bytes > sizeof raw)
		bytes = sizeof raw;
	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) == -1 ||
	    read(fd, raw, bytes) != (ssize_t)bytes) {
		/* Names only need to differ between runs: time and pid do. */
		for (i = 0; i < bytes; i++)
			raw[i] = (unsigned char)(((unsigned)time(NULL) >> (i % 4 * 8)) ^
			    (unsigned)getpid() ^ i * 131);
	}
	if (fd != -1)
		close(fd);
	for (i = 0; i < bytes; i++) {
		s[2 * i] = hex[raw[i] >> 4];
		s[2 * i + 1] = hex[raw[i] & 15];
	}
	s[2 * bytes] = '\0';
	explicit_bzero(raw, sizeof raw);
	return s;
}

int
setup_fastauthctl(struct load_cfg *cfg, const char *ctl, const char *conf, int nusers,
    char **cause)
{
	char *tag = setup_random_hex(4), *id = NULL, *pw, *input, *sub = NULL;
	char *grants[] = { NULL, NULL, NULL, NULL, (char *)"--scope", NULL,
	    (char *)"--grant", (char *)"client_credentials", (char *)"--grant",
	    (char *)"password", (char *)"--grant", (char *)"refresh_token",
	    (char *)"--introspect", (char *)"--name", (char *)"fastauth-load", NULL };
	char *uargs[] = { (char *)"user", (char *)"add", NULL, NULL };
	int i, rc = FA_ERR;

	grants[0] = (char *)"client";
	grants[1] = (char *)"add";
	grants[2] = (char *)"--id";
	grants[5] = cfg->scope;
	for (i = 0; i < 2; i++) {
		id = xasprintf("load-%s-%s", tag, i == 0 ? "app" : "attacker");
		grants[3] = id;
		if (setup_ctl(ctl, conf, grants, NULL, i == 0 ? &cfg->client_secret :
		    &cfg->attacker_secret, cause) != FA_OK) {
			free(id);
			goto out;
		}
		if (i == 0)
			cfg->client_id = id;
		else
			cfg->attacker_id = id;
	}
	cfg->users = xcalloc((size_t)nusers, sizeof *cfg->users);
	for (i = 0; i < nusers; i++) {
		cfg->users[i].name = xasprintf("load-%s-u%d", tag, i);
		pw = setup_random_hex(12);
		cfg->users[i].password = pw;
		cfg->nusers++;
		uargs[2] = cfg->users[i].name;
		input = xasprintf("%s\n", pw);
		rc = setup_ctl(ctl, conf, uargs, input, &sub, cause);
		explicit_bzero(input, strlen(input));
		free(input);
		free(sub);
		sub = NULL;
		if (rc != FA_OK)
			goto out;
	}
	rc = FA_OK;
out:
	free(tag);
	return rc;
}

int
setup_users_file(struct load_cfg *cfg, const char *path, char **cause)
{
	FILE *f;
	char *line = NULL, *colon;
	size_t cap = 0, lineno = 0, n;
	ssize_t len;
	int rc = FA_ERR;

	if ((f = fopen(path, "r")) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return FA_ERR;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if ((colon = strchr(line, ':')) == NULL || colon == line) {
			*cause = xasprintf("%s:%zu: want username:password", path, lineno);
			goto out;
		}
		n = (size_t)(colon - line);
		if (n > SETUP_NAME_MAX || strlen(colon + 1) > SETUP_PASSWORD_MAX ||
		    colon[1] == '\0') {
			*cause = xasprintf("%s:%zu: username of 1 to %d bytes and password "
			    "of 1 to %d bytes wanted", path, lineno, SETUP_NAME_MAX,
			    SETUP_PASSWORD_MAX);
			goto out;
		}
		if (cfg->nusers >= SETUP_USERS_MAX) {
			*cause = xasprintf("%s: more than %d users", path, SETUP_USERS_MAX);
			goto out;
		}
		cfg->users = xreallocarray(cfg->users, cfg->nusers + 1, sizeof *cfg->users);
		cfg->users[cfg->nusers].name = xstrndup(line, n);
		cfg->users[cfg->nusers].password = xstrdup(colon + 1);
		cfg->nusers++;
	}
	if (ferror(f)) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (cfg->nusers == 0) {
		*cause = xasprintf("%s: no users in the file", path);
		goto out;
	}
	rc = FA_OK;
out:
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	return rc;
}

/* One request over a fresh connection; the response's status and body. */
static int
setup_http(const struct load_cfg *cfg, const struct buf *req, int *status,
    struct buf *body, char **cause)
{
	struct sockaddr_in sa;
	struct httpc_resp r;
	struct timeval tv;
	char chunk[8192];
	size_t off = 0, used;
	enum httpc_rc hrc = HTTPC_MORE;
	ssize_t n;
	int fd, rc = FA_ERR;

	httpc_resp_init(&r, 1024 * 1024);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)cfg->port);
	inet_pton(AF_INET, cfg->connect_host, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		goto out;
	}
	tv.tv_sec = cfg->timeout_ms / 1000;
	tv.tv_usec = (cfg->timeout_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		*cause = xasprintf("connect to %s:%d: %s", cfg->connect_host, cfg->port,
		    strerror(errno));
		goto out;
	}
	while (off < req->len) {
		n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			*cause = xasprintf("sending to %s: %s", cfg->url, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	while (hrc == HTTPC_MORE) {
		n = recv(fd, chunk, sizeof chunk, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			*cause = xasprintf("reading from %s: %s", cfg->url,
			    errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		hrc = n == 0 ? httpc_resp_eof(&r) : httpc_resp_feed(&r, chunk, (size_t)n, &used);
	}
	if (hrc != HTTPC_DONE) {
		*cause = xasprintf("%s: bad response: %s", cfg->url, r.err);
		goto out;
	}
	*status = r.status;
	buf_reset(body);
	buf_append(body, r.body.data ? r.body.data : "", r.body.len);
	rc = FA_OK;
out:
	if (fd != -1)
		close(fd);
	httpc_resp_free(&r);
	return rc;
}

int
setup_probe(const struct load_cfg *cfg, char **cause)
{
	struct sockaddr_in sa;
	int fd, rc = FA_ERR;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)cfg->port);
	inet_pton(AF_INET, cfg->connect_host, &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return FA_ERR;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1)
		*cause = xasprintf("connect to %s:%d (%s): %s", cfg->connect_host, cfg->port,
		    cfg->url, strerror(errno));
	else
		rc = FA_OK;
	close(fd);
	return rc;
}

/* POST form to the token endpoint as the legit client; the access token. */
static int
setup_token(const struct load_cfg *cfg, const struct buf *form, char **token, char **cause)
{
	struct buf req = BUF_INIT, body = BUF_INIT;
	json_t *doc = NULL, *v;
	int status = 0, rc = FA_ERR;

	httpc_request_begin(&req, "POST", cfg->host, cfg->path_token);
	httpc_request_basic(&req, cfg->client_id, cfg->client_secret);
	httpc_request_header(&req, "Content-Type", "application/x-www-form-urlencoded");
	httpc_request_header(&req, "Connection", "close");
	httpc_request_end(&req, form->data, form->len);
	if (setup_http(cfg, &req, &status, &body, cause) != FA_OK)
		goto out;
	if (status != 200 || (doc = json_loadb(body.data ? body.data : "", body.len, 0,
	    NULL)) == NULL || (v = json_object_get(doc, "access_token")) == NULL ||
	    !json_is_string(v)) {
		*cause = xasprintf("POST %s as %s: status %d: %.200s", cfg->path_token,
		    cfg->client_id, status, body.data ? body.data : "");
		goto out;
	}
	*token = xstrdup(json_string_value(v));
	rc = FA_OK;
out:
	json_decref(doc);
	buf_wipe(&req);
	buf_free(&body);
	return rc;
}

int
setup_tokens(struct load_cfg *cfg, size_t ncc, int want_user_tokens, char **cause)
{
	struct buf form = BUF_INIT;
	size_t i, n;
	char *tok;
	int rc = FA_ERR;

	cfg->cc_tokens = xcalloc(ncc + 1, sizeof *cfg->cc_tokens);
	for (i = 0; i < ncc; i++) {
		buf_reset(&form);
		buf_puts(&form, "grant_type=client_credentials");
		if (setup_token(cfg, &form, &tok, cause) != FA_OK)
			goto out;
		cfg->cc_tokens[cfg->ncc++] = tok;
		cfg->token_len = strlen(tok);
	}
	if (want_user_tokens) {
		n = cfg->nusers < 16 ? cfg->nusers : 16;
		cfg->user_tokens = xcalloc(n + 1, sizeof *cfg->user_tokens);
		for (i = 0; i < n; i++) {
			buf_reset(&form);
			buf_puts(&form, "grant_type=password&username=");
			scenario_form_escape(&form, cfg->users[i].name);
			buf_puts(&form, "&password=");
			scenario_form_escape(&form, cfg->users[i].password);
			buf_puts(&form, "&scope=");
			scenario_form_escape(&form, cfg->scope);
			if (setup_token(cfg, &form, &tok, cause) != FA_OK)
				goto out;
			cfg->user_tokens[cfg->nuser_tokens++] = tok;
		}
	}
	rc = FA_OK;
out:
	buf_wipe(&form);
	return rc;
}

static void
setup_free_str(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
setup_free(struct load_cfg *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nusers; i++) {
		free(cfg->users[i].name);
		setup_free_str(&cfg->users[i].password);
	}
	free(cfg->users);
	cfg->users = NULL;
	cfg->nusers = 0;
	for (i = 0; i < cfg->ncc; i++)
		setup_free_str(&cfg->cc_tokens[i]);
	free(cfg->cc_tokens);
	cfg->cc_tokens = NULL;
	for (i = 0; i < cfg->nuser_tokens; i++)
		setup_free_str(&cfg->user_tokens[i]);
	free(cfg->user_tokens);
	cfg->user_tokens = NULL;
}
