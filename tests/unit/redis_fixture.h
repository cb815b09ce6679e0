/*
 * redis_fixture.h -- a private redis-server for C tests: on a free 127.0.0.1
 * port and a unix socket in its own mkdtemp directory, stopped by PID.
 *
 * The server is $REDIS_SERVER (default "redis-server"). Every server still
 * running when the process that started it exits is stopped (atexit), and a
 * server dies with its parent (PR_SET_PDEATHSIG), so a crashed or killed test
 * leaves none behind.
 */
#ifndef REDIS_FIXTURE_H
#define REDIS_FIXTURE_H

#include <sys/types.h>

struct redis_fixture;

/* Start a server (requirepass password unless NULL) and wait until it answers. NULL on failure (why on stderr). */
struct redis_fixture *redis_fixture_start(const char *password);
/* Stop the server if running and remove its directory. Accepts NULL. */
void	redis_fixture_free(struct redis_fixture *);
/* SIGTERM, SIGKILL after 5 s, reaped with waitpid. 0, or -1 if it was not running. */
int	redis_fixture_stop(struct redis_fixture *);
/* Start again on the same port and socket (stopping it first if running). 0 or -1. */
int	redis_fixture_restart(struct redis_fixture *);
/* SIGSTOP / SIGCONT: the server keeps its sockets but answers nothing. 0 or -1. */
int	redis_fixture_pause(struct redis_fixture *);
int	redis_fixture_resume(struct redis_fixture *);

int	redis_fixture_port(const struct redis_fixture *);
pid_t	redis_fixture_pid(const struct redis_fixture *);
/* The unix socket path. */
const char *redis_fixture_socket(const struct redis_fixture *);
/* "redis://127.0.0.1:<port>" (no password). */
const char *redis_fixture_url(const struct redis_fixture *);
/* The server's temporary directory (its log is redis.log there). */
const char *redis_fixture_dir(const struct redis_fixture *);

#endif
