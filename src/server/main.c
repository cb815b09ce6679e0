/*
 * main.c -- the fastauth program: option parsing, configuration, and the
 * choice between the two ways to run.
 *
 *   spawned     the web server (lighttpd bin-path, Apache mod_fcgid) started
 *               us with the FastCGI listen socket on fd 0: serve on it;
 *   standalone  --listen (or the listen key): open the socket and supervise
 *               --processes workers (systemd, mod_proxy_fcgi, nginx).
 *
 * Command-line options are applied as FASTAUTH_* environment variables, so
 * they keep their precedence over the file when the master reloads it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "server/allocator.h"
#include "server/master.h"
#include "server/worker.h"

#define MAIN_DEFAULT_CONF SYSCONFDIR "/fastauth/fastauth.conf"

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: fastauth [-c file] [--check-config] [--listen unix:PATH|HOST:PORT]\n"
	    "                [--processes N] [--threads N] [-V]\n"
	    "Without --listen, fastauth expects the FastCGI listen socket on fd 0\n"
	    "(spawned by lighttpd or Apache mod_fcgid). See fastauth(8).\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	  required_argument, NULL, 'c' },
		{ "check-config", no_argument,	     NULL, 't' },
		{ "listen",	  required_argument, NULL, 'l' },
		{ "processes",	  required_argument, NULL, 'p' },
		{ "threads",	  required_argument, NULL, 'T' },
		{ "version",	  no_argument,	     NULL, 'V' },
		{ "help",	  no_argument,	     NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	struct config *cfg;
	struct stat st;
	char *cause = NULL, alloc[128];
	int ch, check = 0, must_exist = 1, fd;

	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check = 1; break;
		case 'l': setenv("FASTAUTH_LISTEN", optarg, 1); break;
		case 'p': setenv("FASTAUTH_PROCESSES", optarg, 1); break;
		case 'T': setenv("FASTAUTH_THREADS", optarg, 1); break;
		case 'V':
			printf("fastauth %s\n", PACKAGE_VERSION);
			ch = allocator_describe(alloc, sizeof(alloc));
			printf("allocator: %s\n", alloc);
			return ch == 0 ? 0 : 1;
		case 'h': main_usage(stdout); return 0;
		default: main_usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 1;
	}
	if (path == NULL && (path = getenv("FASTAUTH_CONF")) == NULL) {
		path = MAIN_DEFAULT_CONF;
		must_exist = 0;	/* defaults and environment alone are a valid setup */
	}

	if ((cfg = config_load(path, must_exist, &cause)) == NULL) {
		fprintf(stderr, "fastauth: %s\n", cause);
		free(cause);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", path);
		config_free(cfg);
		return 0;
	}
	log_open("fastauth", cfg->log_syslog, cfg->log_level);
	if (allocator_describe(alloc, sizeof(alloc)) == 0)
		log_info("fastauth %s, allocator %s", PACKAGE_VERSION, alloc);
	else
		log_err("fastauth %s, allocator %s", PACKAGE_VERSION, alloc);

	if (cfg->listen != NULL) {
		if ((fd = master_listen(cfg->listen, cfg->listen_backlog, &cause)) < 0) {
			log_err("%s", cause);
			free(cause);
			config_free(cfg);
			return 1;
		}
		return master_run(cfg, path, must_exist, fd);
	}
	if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "fastauth: no FastCGI socket on standard input: "
		    "use --listen, or let the web server spawn fastauth\n");
		config_free(cfg);
		return 1;
	}
	ch = worker_run(cfg, 0);
	config_free(cfg);
	return ch;
}
