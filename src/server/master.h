/*
 * master.h -- the standalone supervisor: forks the responder processes on a
 * socket it opened, restarts a crashed one, reloads on SIGHUP, drains on
 * SIGTERM. Used by `fastauth --listen` (systemd, Apache mod_proxy_fcgi, nginx).
 */
#ifndef MASTER_H
#define MASTER_H

struct config;

/*
 * Open the listen socket for addr ("unix:/path" or "host:port") with backlog
 * pending connections. Returns the fd or -1 with *cause.
 */
int	master_listen(const char *addr, int backlog, char **cause);
/*
 * Supervise cfg->processes workers on listen_fd until SIGTERM/SIGINT. cfg is
 * taken over (freed on reload and at exit); path and must_exist are used to
 * reload on SIGHUP. Returns the exit status.
 */
int	master_run(struct config *cfg, const char *path, int must_exist, int listen_fd);

#endif
