/*
 * ceiling.c -- the trivial FastCGI responder fastauth is measured against:
 * what the web server, the FastCGI protocol and libfcgi cost on their own.
 *
 * It is spawned exactly like fastauth (lighttpd bin-path: the listen socket
 * is fd 0), serves requests on --threads threads with FCGX_Accept_r as
 * fastauth does, reads the whole request body, and answers every request
 * with 200 and one fixed JSON object that satisfies each check fastauth-load
 * makes (access_token, active:true, sub), with the headers fastauth sends.
 * No parsing, no crypto, no Redis: anything fastauth spends beyond this is
 * its own.
 *
 * In the FastCGI Authorizer role (FCGI_ROLE=AUTHORIZER) it grants every
 * request: 200 with the Variable-FASTAUTH_* headers fastauth's grant sends
 * (constant values), no token check -- bench/authorizer.sh's trivial
 * authorizer, what the web server's authorizer round trip costs on its own.
 *
 * usage: ceiling [--threads N] [--socket PATH]
 *   --threads  default 4, as fastauth's "threads"
 *   --socket   listen on this Unix socket (created; an existing one is
 *              replaced) instead of fd 0, for a web server that connects
 *              to a running process ("socket" without "bin-path")
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#define CEILING_THREADS_MAX	256

static const char ceiling_body[] =
    "{\"active\":true,\"access_token\":\"ceiling\",\"token_type\":\"Bearer\","
    "\"expires_in\":300,\"scope\":\"read\",\"client_id\":\"ceiling\",\"sub\":\"ceiling\"}";

static int ceiling_listen_fd;	/* set before the threads start, read-only after */

/* The grant of fastauth's Authorizer, with constant claims. */
static void
ceiling_authorize(FCGX_Request *req)
{
	FCGX_FPrintF(req->out,
	    "Status: 200\r\n"
	    "Variable-FASTAUTH_SUB: ceiling\r\n"
	    "Variable-FASTAUTH_CLIENT_ID: ceiling\r\n"
	    "Variable-FASTAUTH_SCOPE: read\r\n"
	    "Variable-FASTAUTH_EXP: 4102444800\r\n\r\n");
	FCGX_Finish_r(req);
}

static void *
ceiling_thread(void *arg)
{
	FCGX_Request req;
	char chunk[4096];
	const char *role;

	(void)arg;
	if (FCGX_InitRequest(&req, ceiling_listen_fd, 0) != 0)
		return NULL;
	while (FCGX_Accept_r(&req) == 0) {
		role = FCGX_GetParam("FCGI_ROLE", req.envp);
		if (role != NULL && strcmp(role, "AUTHORIZER") == 0) {
			ceiling_authorize(&req);
			continue;
		}
		/* Read the body as a real endpoint would. */
		while (FCGX_GetStr(chunk, sizeof chunk, req.in) > 0)
			;
		FCGX_FPrintF(req.out,
		    "Status: 200 OK\r\n"
		    "Content-Type: application/json\r\n"
		    "Cache-Control: no-store\r\n"
		    "Pragma: no-cache\r\n"
		    "X-Content-Type-Options: nosniff\r\n"
		    "Content-Length: %d\r\n\r\n", (int)(sizeof ceiling_body - 1));
		FCGX_PutStr(ceiling_body, (int)(sizeof ceiling_body - 1), req.out);
		FCGX_Finish_r(&req);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t tids[CEILING_THREADS_MAX];
	const char *sock = NULL;
	int n = 4, i;
	char *end;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			n = (int)strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 1 || n > CEILING_THREADS_MAX) {
				fprintf(stderr, "ceiling: --threads wants 1 to %d\n",
				    CEILING_THREADS_MAX);
				return 2;
			}
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else {
			fprintf(stderr, "usage: ceiling [--threads N] [--socket PATH]\n");
			return 2;
		}
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "ceiling: FCGX_Init failed\n");
		return 1;
	}
	/*
	 * libfcgi catches SIGTERM and only sets a flag that a blocked accept
	 * never looks at: restore the default, so that the web server (or a
	 * test) stopping us is obeyed at once.
	 */
	signal(SIGTERM, SIG_DFL);
	if (sock != NULL) {
		unlink(sock);
		ceiling_listen_fd = FCGX_OpenSocket(sock, 128);
		if (ceiling_listen_fd < 0) {
			fprintf(stderr, "ceiling: cannot listen on %s\n", sock);
			return 1;
		}
	}
	for (i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, ceiling_thread, NULL) != 0) {
			fprintf(stderr, "ceiling: pthread_create failed\n");
			return 1;
		}
	for (i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
