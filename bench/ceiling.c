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
 * usage: ceiling [--threads N]   (default 4, as fastauth's "threads")
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#define CEILING_THREADS_MAX	256

static const char ceiling_body[] =
    "{\"active\":true,\"access_token\":\"ceiling\",\"token_type\":\"Bearer\","
    "\"expires_in\":300,\"scope\":\"read\",\"client_id\":\"ceiling\",\"sub\":\"ceiling\"}";

static void *
ceiling_thread(void *arg)
{
	FCGX_Request req;
	char chunk[4096];

	(void)arg;
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		return NULL;
	while (FCGX_Accept_r(&req) == 0) {
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
		} else {
			fprintf(stderr, "usage: ceiling [--threads N]\n");
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
	for (i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, ceiling_thread, NULL) != 0) {
			fprintf(stderr, "ceiling: pthread_create failed\n");
			return 1;
		}
	for (i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
