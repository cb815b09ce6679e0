/*
 * fuzz_fcgi.c -- libFuzzer target for the FastCGI record layer (fcgi.c):
 * the input is what a web server sends on one connection.
 *
 * Per input:
 *  1. fcgi_params_decode on the raw bytes: no read outside them (an exact
 *     heap copy), and every decoded name and value NUL-terminated at its
 *     length, their lengths adding up to at most the input's;
 *  2. the input written into a socket served by the layer as a kept
 *     connection, every request on it served as the worker does (body read
 *     in odd-sized pieces, an answer written, the request finished, the
 *     arena reset) until the layer stops: it must stop (no hang) without a
 *     crash, and never serve more requests than the input has records.
 * A peer thread writes the input and another drains what the layer answers,
 * so neither side can block the other. A broken property calls abort().
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/fastauth.h"
#include "core/xmalloc.h"
#include "http/fcgi.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_fcgi: %s\n", what);
		abort();
	}
}

struct fuzz_peer {
	int		 fd;
	const uint8_t	*data;
	size_t		 size;
};

static void *
fuzz_writer(void *arg)
{
	struct fuzz_peer *p = arg;
	size_t off = 0;
	ssize_t w;

	while (off < p->size) {
		w = send(p->fd, p->data + off, p->size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

static void *
fuzz_drainer(void *arg)
{
	struct fuzz_peer *p = arg;
	char buf[4096];

	while (read(p->fd, buf, sizeof buf) > 0)
		;
	return NULL;
}

static void
fuzz_decode(const uint8_t *data, size_t size)
{
	struct arena a;
	struct fcgi_param *params;
	size_t n, i, total = 0;

	arena_init(&a, 0);
	if (fcgi_params_decode(data, size, &a, &params, &n) == FA_OK) {
		for (i = 0; i < n; i++) {
			fuzz_check(params[i].name[params[i].name_len] == '\0' &&
			    params[i].value[params[i].value_len] == '\0',
			    "decoded string not NUL-terminated at its length");
			total += params[i].name_len + params[i].value_len;
		}
		fuzz_check(total + 2 * n <= size, "decoded more bytes than given");
	} else
		fuzz_check(params == NULL && n == 0, "failed decode left output");
	arena_free(&a);
}

static void
fuzz_serve(const uint8_t *data, size_t size)
{
	struct fuzz_peer peer;
	pthread_t wt, dt;
	struct arena a;
	struct fcgi_conn c;
	char body[7];
	size_t served = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	peer.fd = sv[1];
	peer.data = data;
	peer.size = size;
	arena_init(&a, 0);
	fcgi_conn_init(&c, &a, 2);
	fcgi_conn_attach(&c, sv[0]);
	if (pthread_create(&wt, NULL, fuzz_writer, &peer) != 0 ||
	    pthread_create(&dt, NULL, fuzz_drainer, &peer) != 0)
		abort();
	while (fcgi_conn_fd(&c) >= 0 && fcgi_accept(&c, -1) == 1) {
		const char *m = fcgi_param(&c, "REQUEST_METHOD");

		fuzz_check(++served <= size / 8, "more requests than records");
		if (m != NULL)
			(void)strlen(m);
		if (c.role != FCGI_AUTHORIZER)
			while (fcgi_read(&c, body, sizeof body) > 0)
				;
		(void)fcgi_write(&c, "Status: 200 OK\r\n\r\n", 18);
		fcgi_finish(&c);
		arena_reset(&a);
	}
	fcgi_conn_free(&c);	/* closes our end: the drainer sees EOF */
	pthread_join(wt, NULL);
	pthread_join(dt, NULL);
	close(sv[1]);
	arena_free(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	fuzz_serve(data, size);
	return 0;
}
