/*
 * redis_fixture.c -- private redis-server processes for the C tests.
 *
 * It owns each server's process, port, temporary directory and log. Servers
 * are listed in a small table so an atexit handler can stop those the exiting
 * process started: Check forks a child per test, and a child must not stop
 * its parent's servers when it exits, hence the owner pid on each entry.
 * Servers also get PR_SET_PDEATHSIG so a test killed by a signal (a Check
 * timeout is SIGKILL) does not leave one running.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/xmalloc.h"
#include "redis_fixture.h"

#define REDIS_FIXTURE_MAX	32
#define REDIS_FIXTURE_WAIT_MS	5000

struct redis_fixture {
	pid_t	 owner;		/* the process that started it; only it stops it */
	pid_t	 pid;		/* the server, or -1 when not running */
	int	 port;
	char	*password;	/* requirepass, or NULL */
	char	 dir[256];	/* mkdtemp */
	char	 sock[300];	/* dir/redis.sock */
	char	 log[300];	/* dir/redis.log */
	char	 url[64];
};

static struct redis_fixture *redis_fixture_all[REDIS_FIXTURE_MAX];
static int redis_fixture_registered;

static void
redis_fixture_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long long
redis_fixture_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
redis_fixture_atexit(void)
{
	int i;

	for (i = 0; i < REDIS_FIXTURE_MAX; i++)
		if (redis_fixture_all[i] != NULL &&
		    redis_fixture_all[i]->owner == getpid())
			redis_fixture_free(redis_fixture_all[i]);
}

static void
redis_fixture_track(struct redis_fixture *fx, int add)
{
	int i;

	if (!redis_fixture_registered) {
		atexit(redis_fixture_atexit);
		redis_fixture_registered = 1;
	}
	for (i = 0; i < REDIS_FIXTURE_MAX; i++) {
		if (add && redis_fixture_all[i] == NULL) {
			redis_fixture_all[i] = fx;
			return;
		}
		if (!add && redis_fixture_all[i] == fx) {
			redis_fixture_all[i] = NULL;
			return;
		}
	}
}

/* A port nothing listens on right now (the kernel's choice for port 0). */
static int
redis_fixture_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Copy the server's log to stderr, to explain a failed start. */
static void
redis_fixture_dump_log(const struct redis_fixture *fx)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if ((fd = open(fx->log, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	fprintf(stderr, "--- %s ---\n", fx->log);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
}

static void
redis_fixture_exec(const struct redis_fixture *fx, pid_t parent)
{
	const char *server = getenv("REDIS_SERVER");
	char port[16];
	const char *argv[32];
	int i = 0, fd;

	if (server == NULL || *server == '\0')
		server = "redis-server";
	/* Die with the test; the check closes the race with an early parent death. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	if ((fd = open(fx->log, O_WRONLY | O_CREAT | O_APPEND, 0600)) != -1) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	snprintf(port, sizeof port, "%d", fx->port);
	argv[i++] = server;
	argv[i++] = "--port";
	argv[i++] = port;
	argv[i++] = "--bind";
	argv[i++] = "127.0.0.1";
	argv[i++] = "--unixsocket";
	argv[i++] = fx->sock;
	argv[i++] = "--unixsocketperm";
	argv[i++] = "700";
	argv[i++] = "--dir";
	argv[i++] = fx->dir;
	argv[i++] = "--save";
	argv[i++] = "";
	argv[i++] = "--appendonly";
	argv[i++] = "no";
	argv[i++] = "--enable-debug-command";
	argv[i++] = "yes";
	argv[i++] = "--daemonize";
	argv[i++] = "no";
	argv[i++] = "--logfile";
	argv[i++] = "";
	if (fx->password != NULL) {
		argv[i++] = "--requirepass";
		argv[i++] = fx->password;
	}
	argv[i] = NULL;
	execvp(server, (char *const *)argv);
	fprintf(stderr, "redis_fixture: exec %s: %s\n", server, strerror(errno));
	_exit(127);
}

/* Any answer to PING (PONG, or NOAUTH with a password) means it is serving. */
static int
redis_fixture_answers(const struct redis_fixture *fx)
{
	struct timeval tv = { 0, 200000 };
	redisContext *c;
	redisReply *r;
	int ok = 0;

	c = redisConnectWithTimeout("127.0.0.1", fx->port, tv);
	if (c == NULL)
		return 0;
	if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK &&
	    (r = redisCommand(c, "PING")) != NULL) {
		ok = r->type == REDIS_REPLY_STATUS ||
		    (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) == 0);
		freeReplyObject(r);
	}
	redisFree(c);
	return ok;
}

/* Fork and exec the server on fx->port and wait for PING. 0 or -1. */
static int
redis_fixture_spawn(struct redis_fixture *fx)
{
	pid_t parent = getpid(), pid;
	long long deadline;
	int status;

	fflush(NULL);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "redis_fixture: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0)
		redis_fixture_exec(fx, parent);
	fx->pid = pid;
	fx->owner = parent;
	deadline = redis_fixture_now_ms() + REDIS_FIXTURE_WAIT_MS;
	while (redis_fixture_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fx->pid = -1;
			return -1;	/* exited: port taken, bad option... */
		}
		if (redis_fixture_answers(fx))
			return 0;
		redis_fixture_sleep_ms(20);
	}
	fprintf(stderr, "redis_fixture: no answer on port %d after %d ms\n", fx->port,
	    REDIS_FIXTURE_WAIT_MS);
	redis_fixture_stop(fx);
	return -1;
}

struct redis_fixture *
redis_fixture_start(const char *password)
{
	const char *tmp = getenv("TMPDIR");
	struct redis_fixture *fx;
	int attempt;

	fx = xcalloc(1, sizeof *fx);
	fx->pid = -1;
	fx->owner = getpid();
	if (password != NULL)
		fx->password = xstrdup(password);
	snprintf(fx->dir, sizeof fx->dir, "%s/fastauth-redis.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		fprintf(stderr, "redis_fixture: mkdtemp %s: %s\n", fx->dir, strerror(errno));
		free(fx->password);
		free(fx);
		return NULL;
	}
	snprintf(fx->sock, sizeof fx->sock, "%s/redis.sock", fx->dir);
	snprintf(fx->log, sizeof fx->log, "%s/redis.log", fx->dir);
	redis_fixture_track(fx, 1);
	/* Another process may take the port between our probe and the server's bind. */
	for (attempt = 0; attempt < 5; attempt++) {
		if ((fx->port = redis_fixture_free_port()) == -1)
			continue;
		snprintf(fx->url, sizeof fx->url, "redis://127.0.0.1:%d", fx->port);
		if (redis_fixture_spawn(fx) == 0)
			return fx;
	}
	redis_fixture_dump_log(fx);
	redis_fixture_free(fx);
	return NULL;
}

int
redis_fixture_stop(struct redis_fixture *fx)
{
	long long deadline;
	int status;

	if (fx == NULL || fx->pid <= 0)
		return -1;
	kill(fx->pid, SIGTERM);
	kill(fx->pid, SIGCONT);		/* a paused server cannot act on SIGTERM */
	deadline = redis_fixture_now_ms() + 5000;
	for (;;) {
		pid_t r = waitpid(fx->pid, &status, WNOHANG);

		if (r == fx->pid || (r == -1 && errno == ECHILD))
			break;
		if (redis_fixture_now_ms() >= deadline) {
			kill(fx->pid, SIGKILL);
			while (waitpid(fx->pid, &status, 0) == -1 && errno == EINTR)
				;
			break;
		}
		redis_fixture_sleep_ms(10);
	}
	fx->pid = -1;
	return 0;
}

int
redis_fixture_restart(struct redis_fixture *fx)
{
	long long deadline;

	redis_fixture_stop(fx);
	/* The port is ours, but give a lingering socket a moment if bind fails. */
	deadline = redis_fixture_now_ms() + 3000;
	while (redis_fixture_spawn(fx) != 0) {
		if (redis_fixture_now_ms() >= deadline) {
			redis_fixture_dump_log(fx);
			return -1;
		}
		redis_fixture_sleep_ms(100);
	}
	return 0;
}

int
redis_fixture_pause(struct redis_fixture *fx)
{
	return fx->pid > 0 ? kill(fx->pid, SIGSTOP) : -1;
}

int
redis_fixture_resume(struct redis_fixture *fx)
{
	return fx->pid > 0 ? kill(fx->pid, SIGCONT) : -1;
}

static void
redis_fixture_rmdir(const char *path)
{
	char file[600];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(file, sizeof file, "%s/%s", path, de->d_name);
		unlink(file);
	}
	closedir(d);
	rmdir(path);
}

void
redis_fixture_free(struct redis_fixture *fx)
{
	if (fx == NULL)
		return;
	redis_fixture_track(fx, 0);
	if (fx->owner == getpid()) {
		redis_fixture_stop(fx);
		redis_fixture_rmdir(fx->dir);
	}
	free(fx->password);
	free(fx);
}

int
redis_fixture_port(const struct redis_fixture *fx)
{
	return fx->port;
}

pid_t
redis_fixture_pid(const struct redis_fixture *fx)
{
	return fx->pid;
}

const char *
redis_fixture_socket(const struct redis_fixture *fx)
{
	return fx->sock;
}

const char *
redis_fixture_url(const struct redis_fixture *fx)
{
	return fx->url;
}

const char *
redis_fixture_dir(const struct redis_fixture *fx)
{
	return fx->dir;
}
