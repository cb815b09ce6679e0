/*
 * test_fcgi.c -- Check suite for the FastCGI record layer (http/fcgi.c) and
 * the per-request arena (core/arena.c). A writer thread plays the web
 * server on one end of a socketpair, sending hand-built records; the layer
 * serves the other end; what it answers is read back and decoded record by
 * record.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/fastauth.h"
#include "http/fcgi.h"

#define T_BEGIN		1
#define T_ABORT		2
#define T_END		3
#define T_PARAMS	4
#define T_STDIN		5
#define T_STDOUT	6
#define T_DATA		8
#define T_GETV		9
#define T_GETV_RESULT	10
#define T_UNKNOWN	11

/* --- building the web server's side ---------------------------------------- */

static void
rec(struct buf *b, unsigned type, unsigned id, const void *p, size_t len,
    unsigned pad)
{
	unsigned char h[8] = { 1, (unsigned char)type, (unsigned char)(id >> 8),
	    (unsigned char)id, (unsigned char)(len >> 8), (unsigned char)len,
	    (unsigned char)pad, 0 };
	static const char zeros[256];

	ck_assert_uint_le(len, 65535);
	buf_append(b, h, 8);
	buf_append(b, p, len);
	buf_append(b, zeros, pad);
}

static void
begin(struct buf *b, unsigned id, unsigned role, int keep)
{
	unsigned char body[8] = { (unsigned char)(role >> 8), (unsigned char)role,
	    (unsigned char)(keep ? 1 : 0) };

	rec(b, T_BEGIN, id, body, 8, 0);
}

static void
pair_len(struct buf *b, size_t n)
{
	unsigned char l[4] = { (unsigned char)(0x80 | n >> 24),
	    (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };

	if (n < 128)
		buf_putc(b, (char)n);
	else
		buf_append(b, l, 4);
}

static void
pair(struct buf *b, const char *name, const char *value)
{
	pair_len(b, strlen(name));
	pair_len(b, strlen(value));
	buf_puts(b, name);
	buf_puts(b, value);
}

/* The stream s as records of at most chunk bytes, then the empty record. */
static void
stream(struct buf *b, unsigned type, unsigned id, const struct buf *s, size_t chunk)
{
	size_t off, n;

	for (off = 0; off < s->len; off += n) {
		n = s->len - off < chunk ? s->len - off : chunk;
		rec(b, type, id, s->data + off, n, (unsigned)(off % 7));
	}
	rec(b, type, id, NULL, 0, 0);
}

/* A whole request: begin, params (split every pchunk bytes), stdin body. */
static void
request(struct buf *b, unsigned id, int keep, const char *body, size_t pchunk)
{
	struct buf p = BUF_INIT, in = BUF_INIT;

	begin(b, id, 1, keep);
	pair(&p, "REQUEST_METHOD", "POST");
	pair(&p, "REQUEST_URI", "/auth/oauth2/token?x=1");
	pair(&p, "CONTENT_TYPE", "application/x-www-form-urlencoded");
	pair(&p, "REMOTE_ADDR", "127.0.0.1");
	stream(b, T_PARAMS, id, &p, pchunk);
	buf_puts(&in, body);
	stream(b, T_STDIN, id, &in, 3);
	buf_free(&p);
	buf_free(&in);
}

struct feeder {
	pthread_t	 th;
	int		 fd;
	struct buf	 data;
	int		 close_after;
};

static void *
feeder_main(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;
	ssize_t w;

	while (off < f->data.len) {
		w = send(f->fd, f->data.data + off, f->data.len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;	/* the layer closed on us: fine for error cases */
		off += (size_t)w;
	}
	if (f->close_after)
		shutdown(f->fd, SHUT_WR);
	return NULL;
}

struct pair_fds {
	int		 server, peer;
	struct feeder	 f;
	struct arena	 arena;
	struct fcgi_conn conn;
};

/* A layer attached to one end; what b holds is written into the other. */
static void
setup(struct pair_fds *t, struct buf *b, int close_after)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t->server = sv[0];
	t->peer = sv[1];
	arena_init(&t->arena, 1024);
	fcgi_conn_init(&t->conn, &t->arena, 7);
	fcgi_conn_attach(&t->conn, t->server);
	t->f.fd = t->peer;
	t->f.data = *b;
	t->f.close_after = close_after;
	ck_assert_int_eq(pthread_create(&t->f.th, NULL, feeder_main, &t->f), 0);
}

static void
teardown(struct pair_fds *t)
{
	pthread_join(t->f.th, NULL);
	fcgi_conn_free(&t->conn);
	arena_free(&t->arena);
	close(t->peer);
	buf_free(&t->f.data);
}

/* --- reading the layer's answer -------------------------------------------- */

struct out_rec {
	unsigned	type, id;
	size_t		len;
	unsigned char	content[65536];
};

/* The next record the layer sent; 0 at EOF, or after 2 s of silence. */
static int
read_full(int fd, void *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t off = 0;
	ssize_t r;

	while (off < n) {
		if (poll(&pfd, 1, 2000) != 1)
			return 0;
		r = read(fd, (char *)p + off, n - off);
		if (r <= 0)
			return 0;
		off += (size_t)r;
	}
	return 1;
}

static int
next_out(int fd, struct out_rec *o)
{
	unsigned char h[8], pad[256];

	if (!read_full(fd, h, 8))
		return 0;
	ck_assert_uint_eq(h[0], 1);
	o->type = h[1];
	o->id = (unsigned)h[2] << 8 | h[3];
	o->len = (size_t)h[4] << 8 | h[5];
	ck_assert(read_full(fd, o->content, o->len) || o->len == 0);
	if (h[6] > 0)
		ck_assert(read_full(fd, pad, h[6]));
	return 1;
}

/* STDOUT of request id until its END_REQUEST; returns the protocol status. */
static int
collect(int fd, unsigned id, struct buf *stdout_data, int *stdout_records)
{
	static struct out_rec o;
	int ended_stdout = 0;

	*stdout_records = 0;
	while (next_out(fd, &o)) {
		ck_assert_uint_eq(o.id, id);
		if (o.type == T_STDOUT) {
			ck_assert_msg(!ended_stdout, "STDOUT after its empty record");
			ck_assert_uint_le(o.len, 65535);
			if (o.len == 0)
				ended_stdout = 1;
			else
				(*stdout_records)++;
			buf_append(stdout_data, o.content, o.len);
			continue;
		}
		ck_assert_uint_eq(o.type, T_END);
		ck_assert_uint_eq(o.len, 8);
		ck_assert(ended_stdout);
		return o.content[4];
	}
	ck_abort_msg("no FCGI_END_REQUEST for request %u", id);
	return -1;
}

static int
peer_at_eof(int fd)
{
	char c;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 2000) != 1)
		return 0;
	return read(fd, &c, 1) == 0;
}

/* --- the record layer ------------------------------------------------------ */

START_TEST(fcgi_request_round_trip)
{
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct pair_fds t;
	char body[64];
	size_t have = 0;
	ssize_t n;
	int nrec;

	/* A pair cut by a record boundary, a body in 3-byte records. */
	request(&b, 1, 0, "grant_type=client_credentials", 5);
	setup(&t, &b, 0);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_uint_eq(t.conn.role, FCGI_RESPONDER);
	ck_assert_str_eq(fcgi_param(&t.conn, "REQUEST_METHOD"), "POST");
	ck_assert_str_eq(fcgi_param(&t.conn, "REQUEST_URI"), "/auth/oauth2/token?x=1");
	ck_assert_str_eq(fcgi_param(&t.conn, "REMOTE_ADDR"), "127.0.0.1");
	ck_assert_ptr_null(fcgi_param(&t.conn, "REQUEST_METHO"));
	ck_assert_ptr_null(fcgi_param(&t.conn, "HTTP_AUTHORIZATION"));
	while ((n = fcgi_read(&t.conn, body + have, 2)) > 0)
		have += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(fcgi_read(&t.conn, body, 2), 0);	/* stays at the end */
	body[have] = '\0';
	ck_assert_str_eq(body, "grant_type=client_credentials");
	ck_assert_int_eq(fcgi_write(&t.conn, "Status: 200 OK\r\n\r\n", 18), 0);
	ck_assert_int_eq(fcgi_write(&t.conn, "{}", 2), 0);
	fcgi_finish(&t.conn);
	ck_assert_int_eq(fcgi_conn_fd(&t.conn), -1);	/* not kept: closed */
	ck_assert_int_eq(collect(t.peer, 1, &got, &nrec), 0);
	ck_assert_uint_eq(got.len, 20);
	ck_assert(memcmp(got.data, "Status: 200 OK\r\n\r\n{}", 20) == 0);
	ck_assert_int_eq(nrec, 1);	/* gathered, not a record per write */
	ck_assert(peer_at_eof(t.peer));
	buf_free(&got);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_long_lengths)
{
	struct buf b = BUF_INIT, p = BUF_INIT, in = BUF_INIT;
	struct pair_fds t;
	char name[200], value[70000];

	memset(name, 'N', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	memset(value, 'v', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	begin(&b, 9, 1, 0);
	pair(&p, name, value);		/* both with 4-byte lengths */
	pair(&p, "", "empty name");
	pair(&p, "EMPTY", "");
	stream(&b, T_PARAMS, 9, &p, 65535);
	stream(&b, T_STDIN, 9, &in, 1);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_uint_eq(strlen(fcgi_param(&t.conn, name)), sizeof value - 1);
	ck_assert_str_eq(fcgi_param(&t.conn, "EMPTY"), "");
	ck_assert_str_eq(fcgi_param(&t.conn, ""), "empty name");
	ck_assert_uint_eq(t.conn.nparams, 3);
	fcgi_finish(&t.conn);
	buf_free(&p);
	buf_free(&in);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_keep_conn_serves_several)
{
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct pair_fds t;
	char body[32];
	int i, nrec;

	/* Apache's proxy_fcgi reuses id 1 on a kept connection. */
	request(&b, 1, 1, "first", 64);
	request(&b, 1, 1, "second", 3);
	setup(&t, &b, 1);
	for (i = 0; i < 2; i++) {
		ssize_t n, have = 0;

		ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
		while ((n = fcgi_read(&t.conn, body + have, sizeof body - 1 - (size_t)have)) > 0)
			have += n;
		body[have] = '\0';
		ck_assert_str_eq(body, i == 0 ? "first" : "second");
		fcgi_write(&t.conn, "ok", 2);
		fcgi_finish(&t.conn);
		ck_assert_int_ge(fcgi_conn_fd(&t.conn), 0);	/* kept */
		buf_reset(&got);
		ck_assert_int_eq(collect(t.peer, 1, &got, &nrec), 0);
		ck_assert_str_eq(got.data, "ok");
		arena_reset(&t.arena);
	}
	/* The web server closes the kept connection: nothing to serve. */
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 0);
	ck_assert_int_eq(fcgi_conn_fd(&t.conn), -1);
	buf_free(&got);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_management_records)
{
	struct buf b = BUF_INIT, q = BUF_INIT;
	struct pair_fds t;
	static struct out_rec o;
	unsigned char junk[8] = { 0 };

	pair(&q, "FCGI_MAX_CONNS", "");
	pair(&q, "FCGI_MPXS_CONNS", "");
	pair(&q, "FCGI_NOT_A_VALUE", "");
	pair(&q, "FCGI_MAX_REQS", "");
	rec(&b, T_GETV, 0, q.data, q.len, 0);
	rec(&b, 99, 0, junk, 8, 0);
	request(&b, 3, 0, "", 100);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert(next_out(t.peer, &o));
	ck_assert_uint_eq(o.type, T_GETV_RESULT);
	ck_assert_uint_eq(o.id, 0);
	ck_assert_uint_eq(o.len, 2 + 14 + 1 + 2 + 15 + 1 + 2 + 13 + 1);
	ck_assert(memcmp(o.content, "\x0e\x01" "FCGI_MAX_CONNS7" "\x0f\x01"
	    "FCGI_MPXS_CONNS0" "\x0d\x01" "FCGI_MAX_REQS7", o.len) == 0);
	ck_assert(next_out(t.peer, &o));
	ck_assert_uint_eq(o.type, T_UNKNOWN);
	ck_assert_uint_eq(o.len, 8);
	ck_assert_uint_eq(o.content[0], 99);
	fcgi_finish(&t.conn);
	buf_free(&q);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_refuses_multiplexing_and_unknown_roles)
{
	struct buf b = BUF_INIT, got = BUF_INIT, p = BUF_INIT;
	struct pair_fds t;
	static struct out_rec o;
	char body[16];
	int nrec;

	begin(&b, 4, 7, 1);		/* no such role: refused, connection kept */
	begin(&b, 1, 1, 0);
	pair(&p, "REQUEST_METHOD", "GET");
	stream(&b, T_PARAMS, 1, &p, 100);
	begin(&b, 2, 1, 0);		/* a second request at once */
	rec(&b, T_STDIN, 1, NULL, 0, 0);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert(next_out(t.peer, &o));
	ck_assert_uint_eq(o.type, T_END);
	ck_assert_uint_eq(o.id, 4);
	ck_assert_uint_eq(o.content[4], 3);	/* FCGI_UNKNOWN_ROLE */
	ck_assert_int_eq(fcgi_read(&t.conn, body, sizeof body), 0);
	ck_assert(next_out(t.peer, &o));
	ck_assert_uint_eq(o.type, T_END);
	ck_assert_uint_eq(o.id, 2);
	ck_assert_uint_eq(o.content[4], 1);	/* FCGI_CANT_MPX_CONN */
	fcgi_finish(&t.conn);
	ck_assert_int_eq(collect(t.peer, 1, &got, &nrec), 0);
	ck_assert_uint_eq(got.len, 0);
	buf_free(&got);
	buf_free(&p);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_abort_during_body)
{
	struct buf b = BUF_INIT, got = BUF_INIT, p = BUF_INIT;
	struct pair_fds t;
	char body[16];
	int nrec;

	begin(&b, 5, 1, 1);
	pair(&p, "REQUEST_METHOD", "POST");
	stream(&b, T_PARAMS, 5, &p, 100);
	rec(&b, T_STDIN, 5, "abc", 3, 0);
	rec(&b, T_ABORT, 5, NULL, 0, 0);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_int_eq(fcgi_read(&t.conn, body, sizeof body), 3);
	ck_assert_int_eq(fcgi_read(&t.conn, body, sizeof body), -1);
	ck_assert(t.conn.aborted);
	fcgi_finish(&t.conn);
	/* The aborted request still gets its FCGI_END_REQUEST, then a close. */
	ck_assert_int_eq(collect(t.peer, 5, &got, &nrec), 0);
	ck_assert_int_eq(fcgi_conn_fd(&t.conn), -1);
	buf_free(&got);
	buf_free(&p);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_abort_before_params_end)
{
	struct buf b = BUF_INIT, got = BUF_INIT, p = BUF_INIT;
	struct pair_fds t;
	static struct out_rec o;
	int nrec;

	begin(&b, 6, 1, 1);
	pair(&p, "REQUEST_METHOD", "POST");
	rec(&b, T_PARAMS, 6, p.data, p.len, 0);
	rec(&b, T_ABORT, 6, NULL, 0, 0);
	request(&b, 8, 0, "next", 100);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_uint_eq(t.conn.id, 8);
	ck_assert(next_out(t.peer, &o));
	ck_assert_uint_eq(o.type, T_END);
	ck_assert_uint_eq(o.id, 6);
	fcgi_finish(&t.conn);
	ck_assert_int_eq(collect(t.peer, 8, &got, &nrec), 0);
	buf_free(&got);
	buf_free(&p);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_large_answer_is_split)
{
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct pair_fds t;
	static char big[100000];
	size_t i;
	int nrec;

	for (i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 23);
	request(&b, 2, 0, "", 100);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_int_eq(fcgi_write(&t.conn, big, 1), 0);
	ck_assert_int_eq(fcgi_write(&t.conn, big + 1, sizeof big - 1), 0);
	fcgi_finish(&t.conn);
	ck_assert_int_eq(collect(t.peer, 2, &got, &nrec), 0);
	ck_assert_uint_eq(got.len, sizeof big);
	ck_assert(memcmp(got.data, big, sizeof big) == 0);
	ck_assert_int_ge(nrec, 2);
	buf_free(&got);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_params_too_big)
{
	struct buf b = BUF_INIT, p = BUF_INIT, in = BUF_INIT;
	struct pair_fds t;
	static char value[60000];
	int i;

	/* More bytes than FCGI_PARAMS_BYTES_MAX, in many records. */
	memset(value, 'x', sizeof value - 1);
	begin(&b, 1, 1, 0);
	for (i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof name, "HTTP_X_%d", i);
		pair(&p, name, value);
	}
	pair(&p, "REQUEST_METHOD", "GET");
	stream(&b, T_PARAMS, 1, &p, 65535);
	stream(&b, T_STDIN, 1, &in, 10);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert(t.conn.params_too_big);
	ck_assert_ptr_null(fcgi_param(&t.conn, "REQUEST_METHOD"));
	fcgi_finish(&t.conn);
	buf_free(&p);
	buf_free(&in);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_params_too_many)
{
	struct buf b = BUF_INIT, p = BUF_INIT, in = BUF_INIT;
	struct pair_fds t;
	int i;

	begin(&b, 1, 1, 0);
	for (i = 0; i < FCGI_PARAMS_COUNT_MAX + 1; i++)
		pair(&p, "A", "b");
	stream(&b, T_PARAMS, 1, &p, 65535);
	stream(&b, T_STDIN, 1, &in, 10);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert(t.conn.params_too_big);
	fcgi_finish(&t.conn);
	buf_free(&p);
	buf_free(&in);
	teardown(&t);
}
END_TEST

/* Each of these closes the connection without serving a request. */
START_TEST(fcgi_protocol_errors_close)
{
	struct buf b = BUF_INIT, p = BUF_INIT;
	struct pair_fds t;
	int which = _i;
	unsigned char bad[8] = { 2, 1, 0, 1, 0, 8, 0, 0 };

	switch (which) {
	case 0:		/* wrong version */
		buf_append(&b, bad, 8);
		buf_append(&b, "\0\1\0\0\0\0\0\0", 8);
		break;
	case 1:		/* a pair's length runs past the stream */
		begin(&b, 1, 1, 0);
		buf_append(&p, "\x05\x7fNAMEVvalue", 12);
		stream(&b, T_PARAMS, 1, &p, 100);
		break;
	case 2:		/* a record cut short by the close */
		begin(&b, 1, 1, 0);
		buf_append(&b, "\1\4\0\1\0\x64\0\0short", 13);
		break;
	case 3:		/* body before the parameters ended */
		begin(&b, 1, 1, 0);
		rec(&b, T_STDIN, 1, "x", 1, 0);
		break;
	case 4:		/* a begin-request record too short */
		rec(&b, T_BEGIN, 1, "\0\1", 2, 0);
		break;
	case 5:		/* a 4-byte length cut off */
		begin(&b, 1, 1, 0);
		buf_append(&p, "\x81\x00", 2);
		stream(&b, T_PARAMS, 1, &p, 100);
		break;
	case 6:		/* nothing at all */
		break;
	}
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 0);
	ck_assert_int_eq(fcgi_conn_fd(&t.conn), -1);
	ck_assert(peer_at_eof(t.peer));
	buf_free(&p);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_skips_other_ids_and_filter_data)
{
	struct buf b = BUF_INIT, p = BUF_INIT, got = BUF_INIT;
	struct pair_fds t;
	char body[16];
	ssize_t n, have = 0;
	int nrec;

	/* An earlier request's body tail, then a Filter request with data. */
	rec(&b, T_STDIN, 3, "old", 3, 0);
	rec(&b, T_STDIN, 3, NULL, 0, 0);
	begin(&b, 4, 3, 0);
	pair(&p, "REQUEST_METHOD", "GET");
	stream(&b, T_PARAMS, 4, &p, 100);
	rec(&b, T_STDIN, 9, "other", 5, 0);
	rec(&b, T_STDIN, 4, "in", 2, 0);
	rec(&b, T_DATA, 4, "data", 4, 0);
	rec(&b, T_STDIN, 4, NULL, 0, 0);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_uint_eq(t.conn.role, FCGI_FILTER);
	while ((n = fcgi_read(&t.conn, body + have, sizeof body - 1 - (size_t)have)) > 0)
		have += n;
	body[have] = '\0';
	ck_assert_str_eq(body, "in");
	fcgi_finish(&t.conn);
	ck_assert_int_eq(collect(t.peer, 4, &got, &nrec), 0);
	buf_free(&p);
	buf_free(&got);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_kept_conn_drains_unread_body)
{
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct pair_fds t;
	char c;
	int nrec;

	/* A 413 reads the declared length at most, not the end record. */
	request(&b, 1, 1, "a body read only in part", 100);
	request(&b, 1, 1, "", 100);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	ck_assert_int_eq(fcgi_read(&t.conn, &c, 1), 1);
	fcgi_finish(&t.conn);
	ck_assert_int_ge(fcgi_conn_fd(&t.conn), 0);	/* read through, kept */
	ck_assert_int_eq(collect(t.peer, 1, &got, &nrec), 0);
	arena_reset(&t.arena);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);	/* the next one */
	ck_assert_str_eq(fcgi_param(&t.conn, "REQUEST_METHOD"), "POST");
	fcgi_finish(&t.conn);
	buf_free(&got);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_kept_conn_closed_when_body_huge)
{
	struct buf b = BUF_INIT, got = BUF_INIT, p = BUF_INIT, in = BUF_INIT;
	struct pair_fds t;
	static char chunk[65535];
	int i, nrec;

	/* More unread body than is worth reading through: closed instead. */
	begin(&b, 1, 1, 1);
	pair(&p, "REQUEST_METHOD", "POST");
	stream(&b, T_PARAMS, 1, &p, 100);
	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 40; i++)
		buf_append(&in, chunk, sizeof chunk);
	stream(&b, T_STDIN, 1, &in, 65535);
	setup(&t, &b, 1);
	ck_assert_int_eq(fcgi_accept(&t.conn, -1), 1);
	fcgi_finish(&t.conn);
	ck_assert_int_eq(fcgi_conn_fd(&t.conn), -1);
	ck_assert_int_eq(collect(t.peer, 1, &got, &nrec), 0);
	buf_free(&got);
	buf_free(&p);
	buf_free(&in);
	teardown(&t);
}
END_TEST

START_TEST(fcgi_accept_from_listen_socket)
{
	struct buf b = BUF_INIT, got = BUF_INIT;
	struct sockaddr_un sun;
	struct arena a;
	struct fcgi_conn c;
	char path[] = "/tmp/test_fcgi_XXXXXX";
	char sock[160];
	int lfd, cfd, nrec;

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(sock, sizeof sock, "%s/s", path);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	arena_init(&a, 0);
	fcgi_conn_init(&c, &a, 1);
	ck_assert_int_eq(fcgi_accept(&c, lfd), 0);	/* nothing queued */
	cfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sun, sizeof sun), 0);
	request(&b, 1, 0, "", 100);
	ck_assert_int_eq(write(cfd, b.data, b.len), (ssize_t)b.len);
	ck_assert_int_eq(fcgi_accept(&c, lfd), 1);
	ck_assert_str_eq(fcgi_param(&c, "REQUEST_METHOD"), "POST");
	fcgi_finish(&c);
	ck_assert_int_eq(collect(cfd, 1, &got, &nrec), 0);
	ck_assert_int_eq(fcgi_write(&c, "late", 4), -1);	/* no request */
	fcgi_conn_free(&c);
	arena_free(&a);
	close(cfd);
	close(lfd);
	unlink(sock);
	rmdir(path);
	buf_free(&b);
	buf_free(&got);
}
END_TEST

/* --- fcgi_params_decode ------------------------------------------------------ */

START_TEST(params_decode_edges)
{
	struct arena a;
	struct fcgi_param *p;
	size_t n;

	arena_init(&a, 0);
	ck_assert_int_eq(fcgi_params_decode((const unsigned char *)"", 0, &a, &p, &n), FA_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(fcgi_params_decode((const unsigned char *)"\x01\x01" "ab", 4,
	    &a, &p, &n), FA_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(p[0].name, "a");
	ck_assert_str_eq(p[0].value, "b");
	/* Lengths over the end, in 1- and 4-byte forms, and a cut length. */
	ck_assert_int_eq(fcgi_params_decode((const unsigned char *)"\x01\x02" "ab", 4,
	    &a, &p, &n), FA_ERR);
	ck_assert_int_eq(fcgi_params_decode((const unsigned char *)
	    "\x01\xff\xff\xff\xff" "ab", 7, &a, &p, &n), FA_ERR);
	ck_assert_int_eq(fcgi_params_decode((const unsigned char *)"\x01", 1,
	    &a, &p, &n), FA_ERR);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(n, 0);
	arena_free(&a);
}
END_TEST

/* --- the arena ---------------------------------------------------------------- */

START_TEST(arena_alignment_and_growth)
{
	struct arena a;
	unsigned char *p, *first;
	size_t i;

	arena_init(&a, 1024);
	first = arena_alloc(&a, 1);
	for (i = 1; i < 200; i++) {
		p = arena_alloc(&a, i);
		ck_assert_uint_eq((uintptr_t)p % 16, 0);
		memset(p, 0xa5, i);
	}
	ck_assert_uint_gt(a.chunks, 1);
	arena_reset(&a);
	/* The next request of that size fits one chunk. */
	for (i = 0; i < 200; i++)
		arena_alloc(&a, i);
	ck_assert_uint_eq(a.chunks, 1);
	arena_reset(&a);
	arena_reset(&a);
	/* One chunk is reused in place, and comes back wiped. */
	p = arena_alloc(&a, 64);
	for (i = 0; i < 64; i++)
		ck_assert_uint_eq(p[i], 0);
	ck_assert_ptr_nonnull(first);
	ck_assert_str_eq(arena_strndup(&a, "secret!", 6), "secret");
	arena_free(&a);
	/* Usable again after arena_init, and an allocation bigger than a chunk. */
	arena_init(&a, 0);
	p = arena_alloc(&a, 5 * 1024 * 1024);
	memset(p, 1, 5 * 1024 * 1024);
	arena_reset(&a);
	ck_assert_uint_le(a.chunk_size, 1024 * 1024);
	arena_free(&a);
}
END_TEST

static Suite *
fcgi_suite(void)
{
	Suite *s = suite_create("fcgi");
	TCase *tc = tcase_create("records");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fcgi_request_round_trip);
	tcase_add_test(tc, fcgi_long_lengths);
	tcase_add_test(tc, fcgi_keep_conn_serves_several);
	tcase_add_test(tc, fcgi_management_records);
	tcase_add_test(tc, fcgi_refuses_multiplexing_and_unknown_roles);
	tcase_add_test(tc, fcgi_abort_during_body);
	tcase_add_test(tc, fcgi_abort_before_params_end);
	tcase_add_test(tc, fcgi_large_answer_is_split);
	tcase_add_test(tc, fcgi_params_too_big);
	tcase_add_test(tc, fcgi_params_too_many);
	tcase_add_loop_test(tc, fcgi_protocol_errors_close, 0, 7);
	tcase_add_test(tc, fcgi_skips_other_ids_and_filter_data);
	tcase_add_test(tc, fcgi_kept_conn_drains_unread_body);
	tcase_add_test(tc, fcgi_kept_conn_closed_when_body_huge);
	tcase_add_test(tc, fcgi_accept_from_listen_socket);
	tcase_add_test(tc, params_decode_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("arena");
	tcase_add_test(tc, arena_alignment_and_growth);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fcgi_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
