/*
 * master.c -- supervisor of the standalone responder processes.
 *
 * The master never serves requests and holds no Redis connection: it opens
 * the socket, forks workers that inherit it, and reacts to signals:
 *   SIGCHLD  a worker died: start another (after a pause if it died young, so
 *            a worker that crashes at start-up does not spin);
 *   SIGHUP   re-read the configuration; if it is valid, start a new set of
 *            workers and ask the old ones to drain; if not, keep running;
 *   SIGTERM  ask every worker to drain, wait (drain_timeout_ms plus a margin),
 *   SIGINT   SIGKILL what is left, remove the socket file, exit 0.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "server/master.h"
#include "server/worker.h"

#define MASTER_MAX_WORKERS 512

struct master_worker {
	pid_t	pid;		/* 0 = free slot */
	int	retiring;	/* asked to drain: don't replace it */
	time_t	started;
};

struct master {
	struct config		*cfg;
	const char		*path;
	int			 must_exist;
	int			 fd;
	struct master_worker	 w[MASTER_MAX_WORKERS];
	int			 stopping;
	time_t			 respawn_after;	/* crash-loop pause */
};

/* A stream socket bound to ai (or to the unix path) and listening; -1 with errno. */
static int
master_bind(int family, const struct sockaddr *sa, socklen_t salen, int backlog)
{
	int fd, on = 1, saved;

	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (family != AF_UNIX)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (bind(fd, sa, salen) != 0 || listen(fd, backlog) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
master_listen_unix(const char *addr, const char *path, int backlog, char **cause)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	if (*path != '/') {
		*cause = xasprintf("listen %s: the socket path must be absolute", addr);
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = xasprintf("listen %s: the socket path is longer than %zu bytes",
		    addr, sizeof sun.sun_path - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	/* A stale socket from a previous run would make bind fail. */
	if (unlink(path) != 0 && errno != ENOENT) {
		*cause = xasprintf("listen %s: unlink: %s", addr, strerror(errno));
		return -1;
	}
	/* The web server's user reaches the socket through its group: 0660. */
	old = umask(0117);
	fd = master_bind(AF_UNIX, (struct sockaddr *)&sun, sizeof sun, backlog);
	umask(old);
	if (fd < 0)
		*cause = xasprintf("listen %s: %s", addr, strerror(errno));
	return fd;
}

/* host:port, [v6-address]:port, or :port for every address. */
static int
master_listen_tcp(const char *addr, int backlog, char **cause)
{
	struct addrinfo hints, *res = NULL, *ai;
	const char *colon = strrchr(addr, ':');
	char *host = NULL;
	size_t hl;
	int fd = -1, err, saved = 0;

	if (colon == NULL || colon[1] == '\0') {
		*cause = xasprintf("listen %s: expected unix:/path or host:port", addr);
		return -1;
	}
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']')
		host = xstrndup(addr + 1, hl - 2);
	else if (hl > 0)
		host = xstrndup(addr, hl);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((err = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		*cause = xasprintf("listen %s: %s", addr, gai_strerror(err));
		goto out;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
		if ((fd = master_bind(ai->ai_family, ai->ai_addr, ai->ai_addrlen,
		    backlog)) < 0)
			saved = errno;
	if (fd < 0)
		*cause = xasprintf("listen %s: %s", addr, strerror(saved));
out:
	if (res != NULL)
		freeaddrinfo(res);
	free(host);
	return fd;
}

int
master_listen(const char *addr, int backlog, char **cause)
{
	/* Connections beyond the backlog are refused by the kernel, not queued. */
	if (strncmp(addr, "unix:", 5) == 0)
		return master_listen_unix(addr, addr + 5, backlog, cause);
	return master_listen_tcp(addr, backlog, cause);
}

static int
master_count(const struct master *m, int retiring)
{
	int i, n = 0;

	for (i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->w[i].pid != 0 && m->w[i].retiring == retiring)
			n++;
	return n;
}

static void
master_spawn(struct master *m)
{
	sigset_t none;
	pid_t pid;
	int i;

	for (i = 0; i < MASTER_MAX_WORKERS && m->w[i].pid != 0; i++)
		;
	if (i == MASTER_MAX_WORKERS)
		return;
	if ((pid = fork()) < 0) {
		log_err("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* The worker sets its own mask; start from a clean one. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGCHLD, SIG_DFL);
		_exit(worker_run(m->cfg, m->fd));
	}
	m->w[i].pid = pid;
	m->w[i].retiring = 0;
	m->w[i].started = time(NULL);
	log_info("worker %ld started", (long)pid);
}

static void
master_reap(struct master *m)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < MASTER_MAX_WORKERS && m->w[i].pid != pid; i++)
			;
		if (i == MASTER_MAX_WORKERS)
			continue;
		if (!m->w[i].retiring && !m->stopping) {
			if (WIFSIGNALED(status))
				log_err("worker %ld killed by signal %d; restarting",
				    (long)pid, WTERMSIG(status));
			else
				log_err("worker %ld exited with %d; restarting",
				    (long)pid, WEXITSTATUS(status));
			if (time(NULL) - m->w[i].started < 2)
				m->respawn_after = time(NULL) + 1;
		}
		m->w[i].pid = 0;
	}
}

static void
master_signal_all(struct master *m, int sig, int only_retiring)
{
	int i;

	for (i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->w[i].pid != 0 && (!only_retiring || m->w[i].retiring))
			kill(m->w[i].pid, sig);
}

static void
master_reload(struct master *m)
{
	struct config *cfg;
	char *cause = NULL;
	int i;

	if ((cfg = config_load(m->path, m->must_exist, &cause)) == NULL) {
		log_err("reload refused, keeping the running configuration: %s", cause);
		free(cause);
		return;
	}
	if ((cfg->listen == NULL) != (m->cfg->listen == NULL) ||
	    (cfg->listen != NULL && strcmp(cfg->listen, m->cfg->listen) != 0))
		log_warn("reload: a new listen address needs a restart; keeping the socket");
	log_open("fastauth", cfg->log_syslog, cfg->log_level);
	config_free(m->cfg);
	m->cfg = cfg;
	for (i = 0; i < MASTER_MAX_WORKERS; i++)
		if (m->w[i].pid != 0)
			m->w[i].retiring = 1;
	master_signal_all(m, SIGTERM, 1);
	log_info("configuration reloaded; replacing workers");
}

static void
master_stop(struct master *m)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	long waited = 0, limit = m->cfg->drain_timeout_ms + 2000;

	m->stopping = 1;
	/*
	 * Refuse new connections before the workers drain: a Unix socket
	 * disappears from the file system at once; a TCP socket closes when the
	 * last worker has served what was already queued and closes its copy.
	 */
	if (m->cfg->listen != NULL && strncmp(m->cfg->listen, "unix:", 5) == 0)
		unlink(m->cfg->listen + 5);
	close(m->fd);
	m->fd = -1;
	master_signal_all(m, SIGTERM, 0);
	while (master_count(m, 0) + master_count(m, 1) > 0) {
		master_reap(m);
		if (waited >= limit) {
			log_warn("workers still running after %ld ms: SIGKILL", limit);
			master_signal_all(m, SIGKILL, 0);
			limit = waited + 5000;
		}
		nanosleep(&ts, NULL);
		waited += 50;
	}
}

int
master_run(struct config *cfg, const char *path, int must_exist, int listen_fd)
{
	struct master *m = xcalloc(1, sizeof *m);
	struct timespec tick = { 0, 200 * 1000 * 1000 };
	siginfo_t si;
	sigset_t set;
	int sig;

	m->cfg = cfg;
	m->path = path;
	m->must_exist = must_exist;
	m->fd = listen_fd;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("master %ld: %d workers", (long)getpid(), cfg->processes);

	for (;;) {
		while (master_count(m, 0) < m->cfg->processes &&
		    time(NULL) >= m->respawn_after)
			master_spawn(m);
		sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGCHLD || sig < 0)
			master_reap(m);
		else if (sig == SIGHUP)
			master_reload(m);
		else if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_info("master stopping: draining workers");
	master_stop(m);
	config_free(m->cfg);
	free(m);
	log_info("master stopped");
	return 0;
}
