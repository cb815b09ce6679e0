/*
 * fcgi.c -- the FastCGI record layer, responder side (see fcgi.h).
 *
 * Records are read whole into one buffer the size of the largest record
 * (8 + 65535 + 255 bytes), usually all of a request in one read(2). The
 * parameters are decoded straight into the request's arena, and the
 * response is gathered behind room for its record header, so a typical
 * answer leaves in one write with its FCGI_END_REQUEST: a request costs an
 * accept, a read or two, a write and a close, and no allocation once the
 * thread's buffers exist.
 *
 * One request at a time per connection (FCGI_MPXS_CONNS is 0): a second
 * FCGI_BEGIN_REQUEST while one is being served is answered with
 * FCGI_CANT_MPX_CONN. Records of other request ids are skipped, which is
 * also how the rest of a body we did not read is passed over on a kept
 * connection. A protocol error (wrong version, a record cut short, a stream
 * out of order) closes the connection: the web server, not a client, speaks
 * this protocol, so there is nobody to send an error to.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/fastauth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "http/fcgi.h"

#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11

#define FCGI_KEEP_CONN		1
#define FCGI_REQUEST_COMPLETE	0
#define FCGI_CANT_MPX_CONN	1
#define FCGI_UNKNOWN_ROLE	3

#define FCGI_HDR	8
#define FCGI_IN_SIZE	(FCGI_HDR + 65535 + 255)	/* the largest record */
#define FCGI_OUT_MAX	16384		/* STDOUT content per record we send */
#define FCGI_TAIL	(3 * FCGI_HDR)	/* empty STDOUT, END_REQUEST and its body */
/* Most of a body left unread that is read through to keep a connection. */
#define FCGI_DRAIN_MAX	(1024 * 1024)
/* A web server that stops mid-request must not hold a thread for ever. */
#define FCGI_IO_TIMEOUT	30

struct fcgi_rec {
	unsigned		 type;
	unsigned		 id;
	const unsigned char	*content;
	size_t			 len;
};

void
fcgi_conn_init(struct fcgi_conn *c, struct arena *arena, unsigned max_conns)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	c->arena = arena;
	c->max_conns = max_conns;
	c->in = xmalloc(FCGI_IN_SIZE);
	c->out = xmalloc(FCGI_HDR + FCGI_OUT_MAX + FCGI_TAIL);
}

/* Forget the request (its parameters die with the arena's reset). */
static void
fcgi_request_clear(struct fcgi_conn *c)
{
	c->id = 0;
	c->role = 0;
	c->keep = 0;
	c->stdin_done = 0;
	c->aborted = 0;
	c->params_too_big = 0;
	c->params = NULL;
	c->nparams = 0;
	c->sin = NULL;
	c->sin_len = 0;
	c->out_len = 0;
	if (c->plen > 0)
		explicit_bzero(c->pstream, c->plen);	/* credentials */
	c->plen = 0;
}

static void
fcgi_close(struct fcgi_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->in_off = c->in_len = 0;
	c->broken = 0;
	fcgi_request_clear(c);
}

void
fcgi_conn_free(struct fcgi_conn *c)
{
	fcgi_close(c);
	if (c->in != NULL)
		explicit_bzero(c->in, FCGI_IN_SIZE);
	free(c->in);
	free(c->out);
	if (c->pstream != NULL)
		explicit_bzero(c->pstream, c->pcap);
	free(c->pstream);
	c->in = c->out = c->pstream = NULL;
	c->pcap = 0;
}

void
fcgi_conn_attach(struct fcgi_conn *c, int fd)
{
	fcgi_close(c);
	c->fd = fd;
}

int
fcgi_conn_fd(const struct fcgi_conn *c)
{
	return c->fd;
}

static int
fcgi_send(struct fcgi_conn *c, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->broken = 1;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
fcgi_header(unsigned char *h, unsigned type, unsigned id, size_t len)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0;
	h[7] = 0;
}

/* An FCGI_END_REQUEST record (16 bytes) at p. */
static void
fcgi_end_record(unsigned char *p, unsigned id, unsigned status)
{
	fcgi_header(p, FCGI_END_REQUEST, id, 8);
	memset(p + FCGI_HDR, 0, 8);	/* application status 0 */
	p[FCGI_HDR + 4] = (unsigned char)status;
}

static int
fcgi_send_end(struct fcgi_conn *c, unsigned id, unsigned status)
{
	unsigned char rec[2 * FCGI_HDR];

	fcgi_end_record(rec, id, status);
	return fcgi_send(c, rec, sizeof rec);
}

/*
 * Make n bytes available at in[in_off..]. 1 when they are; 0 when the peer
 * closed with nothing buffered; -1 on an error, a timeout or a close in the
 * middle of a record.
 */
static int
fcgi_fill(struct fcgi_conn *c, size_t n)
{
	ssize_t r;

	while (c->in_len - c->in_off < n) {
		if (FCGI_IN_SIZE - c->in_off < n) {
			memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		}
		r = read(c->fd, c->in + c->in_len, FCGI_IN_SIZE - c->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return c->in_len == c->in_off ? 0 : -1;
		c->in_len += (size_t)r;
	}
	return 1;
}

/* The next whole record. 1, 0 when the peer closed between records, -1 error. */
static int
fcgi_next(struct fcgi_conn *c, struct fcgi_rec *rec)
{
	const unsigned char *h;
	size_t clen, total;
	int rc;

	/* Nothing of the previous stdin record is needed any more. */
	c->sin = NULL;
	c->sin_len = 0;
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	if ((rc = fcgi_fill(c, FCGI_HDR)) <= 0)
		return rc;
	h = c->in + c->in_off;
	if (h[0] != FCGI_VERSION_1) {
		log_warn("FastCGI: record of version %u; closing the connection", h[0]);
		return -1;
	}
	clen = (size_t)h[4] << 8 | h[5];
	total = FCGI_HDR + clen + h[6];
	if (fcgi_fill(c, total) <= 0)
		return -1;
	h = c->in + c->in_off;
	rec->type = h[1];
	rec->id = (unsigned)h[2] << 8 | h[3];
	rec->content = h + FCGI_HDR;
	rec->len = clen;
	c->in_off += total;
	return 1;
}

/* One length of a name-value pair. 0, or -1 when it runs past the end. */
static int
fcgi_pair_len(const unsigned char *p, size_t len, size_t *off, size_t *out)
{
	size_t o = *off;

	if (o >= len)
		return -1;
	if ((p[o] & 0x80) == 0) {
		*out = p[o];
		*off = o + 1;
		return 0;
	}
	if (len - o < 4)
		return -1;
	*out = (size_t)(p[o] & 0x7f) << 24 | (size_t)p[o + 1] << 16 |
	    (size_t)p[o + 2] << 8 | p[o + 3];
	*off = o + 4;
	return 0;
}

/* The pair at p[*off..len): 1, 0 at the end, -1 when malformed. */
static int
fcgi_pair(const unsigned char *p, size_t len, size_t *off,
    const unsigned char **name, size_t *nlen, const unsigned char **value,
    size_t *vlen)
{
	if (*off == len)
		return 0;
	if (fcgi_pair_len(p, len, off, nlen) != 0 ||
	    fcgi_pair_len(p, len, off, vlen) != 0)
		return -1;
	if (*nlen > len - *off || *vlen > len - *off - *nlen)
		return -1;
	*name = p + *off;
	*value = *name + *nlen;
	*off += *nlen + *vlen;
	return 1;
}

int
fcgi_params_decode(const unsigned char *p, size_t len, struct arena *arena,
    struct fcgi_param **out, size_t *count)
{
	const unsigned char *name, *value;
	struct fcgi_param *params;
	size_t off = 0, nlen, vlen, n = 0, i;
	char *s;
	int rc;

	*out = NULL;
	*count = 0;
	while ((rc = fcgi_pair(p, len, &off, &name, &nlen, &value, &vlen)) > 0)
		if (++n > FCGI_PARAMS_COUNT_MAX)
			return FA_LIMIT;
	if (rc < 0)
		return FA_ERR;
	if (n == 0)
		return FA_OK;
	params = arena_alloc(arena, n * sizeof *params);
	/* The strings take the stream's bytes less the lengths, plus a NUL each. */
	s = arena_alloc(arena, len + 2 * n);
	for (off = 0, i = 0; i < n; i++) {
		fcgi_pair(p, len, &off, &name, &nlen, &value, &vlen);
		memcpy(s, name, nlen);
		s[nlen] = '\0';
		params[i].name = s;
		params[i].name_len = nlen;
		s += nlen + 1;
		memcpy(s, value, vlen);
		s[vlen] = '\0';
		params[i].value = s;
		params[i].value_len = vlen;
		s += vlen + 1;
	}
	*out = params;
	*count = n;
	return FA_OK;
}

/* Append a pair with short lengths (our own names and values) to p. */
static size_t
fcgi_put_pair(unsigned char *p, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	p[0] = (unsigned char)nl;
	p[1] = (unsigned char)vl;
	memcpy(p + 2, name, nl);
	memcpy(p + 2 + nl, value, vl);
	return 2 + nl + vl;
}

/* A record on request id 0: FCGI_GET_VALUES, or a type we do not know. */
static int
fcgi_management(struct fcgi_conn *c, const struct fcgi_rec *rec)
{
	unsigned char reply[FCGI_HDR + 256];
	const unsigned char *name, *value;
	size_t off = 0, nlen, vlen, len = 0;
	char conns[16];

	if (rec->type != FCGI_GET_VALUES) {
		fcgi_header(reply, FCGI_UNKNOWN_TYPE, 0, 8);
		memset(reply + FCGI_HDR, 0, 8);
		reply[FCGI_HDR] = (unsigned char)rec->type;
		return fcgi_send(c, reply, 2 * FCGI_HDR);
	}
	snprintf(conns, sizeof conns, "%u", c->max_conns);
	/* Each known name once at most, so the reply fits. */
	while (fcgi_pair(rec->content, rec->len, &off, &name, &nlen, &value,
	    &vlen) > 0 && len < 3 * 40) {
		const char *v = NULL, *n = NULL;

		if (nlen == 14 && memcmp(name, "FCGI_MAX_CONNS", 14) == 0)
			n = "FCGI_MAX_CONNS", v = conns;
		else if (nlen == 13 && memcmp(name, "FCGI_MAX_REQS", 13) == 0)
			n = "FCGI_MAX_REQS", v = conns;
		else if (nlen == 15 && memcmp(name, "FCGI_MPXS_CONNS", 15) == 0)
			n = "FCGI_MPXS_CONNS", v = "0";
		if (n != NULL)
			len += fcgi_put_pair(reply + FCGI_HDR + len, n, v);
	}
	fcgi_header(reply, FCGI_GET_VALUES_RESULT, 0, len);
	return fcgi_send(c, reply, FCGI_HDR + len);
}

static void
fcgi_params_append(struct fcgi_conn *c, const unsigned char *p, size_t n)
{
	unsigned char *np;
	size_t cap;

	if (c->params_too_big)
		return;
	if (n > FCGI_PARAMS_BYTES_MAX - c->plen) {
		c->params_too_big = 1;
		return;
	}
	if (c->plen + n > c->pcap) {
		cap = c->pcap ? c->pcap : 4096;
		while (cap < c->plen + n)
			cap *= 2;
		/* Not realloc: the old block holds credentials to wipe. */
		np = xmalloc(cap);
		if (c->pstream != NULL) {
			memcpy(np, c->pstream, c->plen);
			explicit_bzero(c->pstream, c->pcap);
			free(c->pstream);
		}
		c->pstream = np;
		c->pcap = cap;
	}
	memcpy(c->pstream + c->plen, p, n);
	c->plen += n;
}

/* The PARAMS stream ended: decode it. 1 to serve the request, -1 to close. */
static int
fcgi_params_done(struct fcgi_conn *c)
{
	int rc;

	if (c->params_too_big)
		return 1;	/* served with parameters absent: 431 */
	rc = fcgi_params_decode(c->pstream, c->plen, c->arena, &c->params,
	    &c->nparams);
	if (rc == FA_LIMIT) {
		c->params_too_big = 1;
		return 1;
	}
	if (rc != FA_OK) {
		log_warn("FastCGI: malformed parameters; closing the connection");
		return -1;
	}
	return 1;
}

int
fcgi_accept(struct fcgi_conn *c, int listen_fd)
{
	struct timeval tv = { .tv_sec = FCGI_IO_TIMEOUT };
	struct fcgi_rec rec;
	unsigned role;
	int fd, rc;

	if (c->fd < 0) {
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED)
				return 0;
			return -1;
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		c->fd = fd;
		c->in_off = c->in_len = 0;
	}
	fcgi_request_clear(c);
	for (;;) {
		if ((rc = fcgi_next(c, &rec)) <= 0)
			goto close;
		if (rec.id == 0) {
			if (fcgi_management(c, &rec) != 0)
				goto close;
			continue;
		}
		if (rec.type == FCGI_BEGIN_REQUEST) {
			if (c->id != 0 && rec.id != c->id) {
				if (fcgi_send_end(c, rec.id, FCGI_CANT_MPX_CONN) != 0)
					goto close;
				continue;
			}
			if (c->id != 0 || rec.len < 8)
				goto protocol;
			role = (unsigned)rec.content[0] << 8 | rec.content[1];
			if (role < FCGI_RESPONDER || role > FCGI_FILTER) {
				if (fcgi_send_end(c, rec.id, FCGI_UNKNOWN_ROLE) != 0 ||
				    (rec.content[2] & FCGI_KEEP_CONN) == 0)
					goto close;
				continue;
			}
			c->id = rec.id;
			c->role = role;
			c->keep = (rec.content[2] & FCGI_KEEP_CONN) != 0;
			continue;
		}
		if (rec.id != c->id)
			continue;	/* an old request's leftovers, or noise */
		switch (rec.type) {
		case FCGI_PARAMS:
			if (rec.len == 0) {
				if (fcgi_params_done(c) < 0)
					goto close;
				return 1;
			}
			fcgi_params_append(c, rec.content, rec.len);
			break;
		case FCGI_ABORT_REQUEST:
			/* Gone before it started: end it, and wait for the next. */
			if (fcgi_send_end(c, c->id, FCGI_REQUEST_COMPLETE) != 0 ||
			    !c->keep)
				goto close;
			fcgi_request_clear(c);
			break;
		default:
			goto protocol;	/* input before the parameters ended */
		}
	}
protocol:
	log_warn("FastCGI: record of type %u out of order; closing the connection",
	    rec.type);
close:
	fcgi_close(c);
	return 0;
}

const char *
fcgi_param(const struct fcgi_conn *c, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < c->nparams; i++)
		if (c->params[i].name_len == n &&
		    memcmp(c->params[i].name, name, n) == 0)
			return c->params[i].value;
	return NULL;
}

ssize_t
fcgi_read(struct fcgi_conn *c, void *buf, size_t len)
{
	struct fcgi_rec rec;
	size_t n;

	if (c->id == 0 || c->broken || c->aborted)
		return -1;
	while (c->sin_len == 0) {
		if (c->stdin_done)
			return 0;
		if (fcgi_next(c, &rec) <= 0) {
			c->broken = 1;
			return -1;
		}
		if (rec.id == 0) {
			if (fcgi_management(c, &rec) != 0)
				return -1;
			continue;
		}
		if (rec.id != c->id) {
			if (rec.type == FCGI_BEGIN_REQUEST &&
			    fcgi_send_end(c, rec.id, FCGI_CANT_MPX_CONN) != 0)
				return -1;
			continue;
		}
		if (rec.type == FCGI_ABORT_REQUEST) {
			c->aborted = 1;
			return -1;
		}
		if (rec.type != FCGI_STDIN)
			continue;	/* FCGI_DATA of the Filter role */
		if (rec.len == 0)
			c->stdin_done = 1;
		c->sin = rec.content;
		c->sin_len = rec.len;
	}
	n = len < c->sin_len ? len : c->sin_len;
	memcpy(buf, c->sin, n);
	c->sin += n;
	c->sin_len -= n;
	return (ssize_t)n;
}

static int
fcgi_flush(struct fcgi_conn *c)
{
	if (c->out_len == 0)
		return 0;
	fcgi_header(c->out, FCGI_STDOUT, c->id, c->out_len);
	if (fcgi_send(c, c->out, FCGI_HDR + c->out_len) != 0)
		return -1;
	c->out_len = 0;
	return 0;
}

int
fcgi_write(struct fcgi_conn *c, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n;

	if (c->id == 0 || c->broken)
		return -1;
	while (len > 0) {
		if (c->out_len == FCGI_OUT_MAX && fcgi_flush(c) != 0)
			return -1;
		n = FCGI_OUT_MAX - c->out_len;
		if (n > len)
			n = len;
		memcpy(c->out + FCGI_HDR + c->out_len, p, n);
		c->out_len += n;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Complete the answer in place: its STDOUT header if content is waiting, the
 * empty STDOUT record and FCGI_END_REQUEST after it. The bytes to send.
 */
static const unsigned char *
fcgi_tail(struct fcgi_conn *c, size_t *len)
{
	unsigned char *start = c->out, *tail = c->out + FCGI_HDR + c->out_len;

	if (c->out_len > 0)
		fcgi_header(c->out, FCGI_STDOUT, c->id, c->out_len);
	else
		start = tail;
	fcgi_header(tail, FCGI_STDOUT, c->id, 0);
	fcgi_end_record(tail + FCGI_HDR, c->id, FCGI_REQUEST_COMPLETE);
	*len = (size_t)(tail + FCGI_TAIL - start);
	return start;
}

/* Read and drop the rest of the body, at most FCGI_DRAIN_MAX bytes. */
static void
fcgi_drain(struct fcgi_conn *c)
{
	unsigned char scratch[4096];
	size_t total = 0;
	ssize_t n;

	while (total <= FCGI_DRAIN_MAX &&
	    (n = fcgi_read(c, scratch, sizeof scratch)) > 0)
		total += (size_t)n;
}

/*
 * Before the end goes out, now or later: read what is left of the body, up
 * to a bound (a 413 stops at the declared length, before the empty
 * FCGI_STDIN record). A web server still writing it to a connection we
 * closed gets EPIPE and answers 503 instead of our answer, and a kept
 * connection must be in step before it is reused. An Authorizer request has
 * no body to wait for.
 */
static void
fcgi_end_body(struct fcgi_conn *c)
{
	if (!c->broken && !c->stdin_done && c->role != FCGI_AUTHORIZER)
		fcgi_drain(c);
}

void
fcgi_finish(struct fcgi_conn *c)
{
	const unsigned char *p;
	size_t len;
	int keep;

	if (c->id == 0)
		return;
	fcgi_end_body(c);
	if (!c->broken) {
		/* The rest of the answer, its end and FCGI_END_REQUEST in one write. */
		p = fcgi_tail(c, &len);
		(void)fcgi_send(c, p, len);
	}
	/* Keep it only when in step: the whole body read, or none expected. */
	keep = c->keep && !c->broken &&
	    (c->stdin_done || c->role == FCGI_AUTHORIZER);
	if (keep)
		fcgi_request_clear(c);
	else
		fcgi_close(c);
}

int
fcgi_detach(struct fcgi_conn *c, int *fd, const unsigned char **bytes, size_t *len)
{
	if (c->id == 0 || c->fd < 0)
		return FA_ERR;
	fcgi_end_body(c);
	if (c->broken)
		return FA_ERR;
	*bytes = fcgi_tail(c, len);
	*fd = c->fd;
	/* Whatever else the connection brings is not ours to read any more. */
	c->fd = -1;
	c->in_off = c->in_len = 0;
	fcgi_request_clear(c);
	return FA_OK;
}
