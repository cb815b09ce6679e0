/*
 * httpc.c -- HTTP/1.1 request writer and response parser (see httpc.h).
 *
 * The parser works on lines for everything but body bytes: the status line,
 * header fields, chunk-size lines, the CRLF after a chunk and trailer
 * fields. A line longer than HTTPC_LINE_MAX, a head longer than
 * HTTPC_HEAD_MAX or a body longer than body_max is an error: a load tool
 * talks to servers it does not trust to be well-behaved either.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "load/httpc.h"

enum {
	HS_STATUS,		/* want the status line */
	HS_HEADER,		/* want a header line or the empty line */
	HS_BODY_LEN,		/* Content-Length bytes to come */
	HS_BODY_CLOSE,		/* body runs until the peer closes */
	HS_CHUNK_SIZE,		/* want a chunk-size line */
	HS_CHUNK_DATA,		/* chunk_left bytes to come */
	HS_CHUNK_END,		/* want the empty line after chunk data */
	HS_TRAILER,		/* want a trailer line or the empty line */
	HS_DONE
};

void
httpc_resp_init(struct httpc_resp *r, size_t body_max)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body);
	r->body_max = body_max;
	httpc_resp_reset(r);
}

void
httpc_resp_reset(struct httpc_resp *r)
{
	r->state = HS_STATUS;
	r->status = 0;
	r->minor = 1;
	r->keep_alive = 1;
	r->chunked = 0;
	r->no_body = 0;
	r->clen = -1;
	r->chunk_left = 0;
	r->head_bytes = 0;
	r->nheaders = 0;
	r->line_len = 0;
	r->err = NULL;
	buf_reset(&r->body);
}

void
httpc_resp_free(struct httpc_resp *r)
{
	if (r == NULL)
		return;
	buf_free(&r->body);
}

static enum httpc_rc
httpc_fail(struct httpc_resp *r, const char *why)
{
	r->err = why;
	r->keep_alive = 0;
	return HTTPC_ERR;
}

/* Does the comma-separated list v (n bytes) contain token tok (case-insensitive)? */
static int
httpc_has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

static enum httpc_rc
httpc_status_line(struct httpc_resp *r, const char *l, size_t n)
{
	int i, code = 0;

	/* "HTTP/1.x SSS[ reason]" */
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') ||
	    l[8] != ' ')
		return httpc_fail(r, "malformed status line");
	for (i = 9; i < 12; i++) {
		if (l[i] < '0' || l[i] > '9')
			return httpc_fail(r, "malformed status code");
		code = code * 10 + (l[i] - '0');
	}
	if (code < 100 || (n > 12 && l[12] != ' '))
		return httpc_fail(r, "malformed status code");
	r->status = code;
	r->minor = l[7] - '0';
	r->keep_alive = r->minor == 1;
	r->no_body = code < 200 || code == 204 || code == 304;
	r->state = HS_HEADER;
	return HTTPC_MORE;
}

static enum httpc_rc
httpc_header_line(struct httpc_resp *r, const char *l, size_t n)
{
	const char *colon, *v;
	size_t nl, vl, i;
	long long cl;

	if (++r->nheaders > HTTPC_HEADERS_MAX)
		return httpc_fail(r, "too many header fields");
	colon = memchr(l, ':', n);
	if (colon == NULL || colon == l)
		return httpc_fail(r, "malformed header field");
	nl = (size_t)(colon - l);
	for (i = 0; i < nl; i++)
		if (l[i] == ' ' || l[i] == '\t')
			return httpc_fail(r, "blank in a header name");
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (nl == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
		if (vl == 0 || vl > 18)
			return httpc_fail(r, "bad Content-Length");
		cl = 0;
		for (i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return httpc_fail(r, "bad Content-Length");
			cl = cl * 10 + (v[i] - '0');
		}
		if (r->clen != -1 && r->clen != cl)
			return httpc_fail(r, "conflicting Content-Length fields");
		r->clen = cl;
	} else if (nl == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
		if (!httpc_has_token(v, vl, "chunked"))
			return httpc_fail(r, "unsupported Transfer-Encoding");
		r->chunked = 1;
	} else if (nl == 10 && strncasecmp(l, "Connection", 10) == 0) {
		if (httpc_has_token(v, vl, "close"))
			r->keep_alive = 0;
		else if (httpc_has_token(v, vl, "keep-alive"))
			r->keep_alive = 1;
	}
	return HTTPC_MORE;
}

/* The empty line after the headers: decide how the body is delimited. */
static enum httpc_rc
httpc_head_end(struct httpc_resp *r)
{
	if (r->status < 200) {
		/* An interim response (100 Continue): the real one follows. */
		int keep = r->keep_alive;

		httpc_resp_reset(r);
		r->keep_alive = keep;
		return HTTPC_MORE;
	}
	if (r->no_body) {
		r->state = HS_DONE;
		return HTTPC_DONE;
	}
	if (r->chunked) {
		r->state = HS_CHUNK_SIZE;
		return HTTPC_MORE;
	}
	if (r->clen >= 0) {
		if ((unsigned long long)r->clen > r->body_max)
			return httpc_fail(r, "body larger than the limit");
		if (r->clen == 0) {
			r->state = HS_DONE;
			return HTTPC_DONE;
		}
		r->chunk_left = (size_t)r->clen;
		r->state = HS_BODY_LEN;
		return HTTPC_MORE;
	}
	r->keep_alive = 0;
	r->state = HS_BODY_CLOSE;
	return HTTPC_MORE;
}

static enum httpc_rc
httpc_chunk_size(struct httpc_resp *r, const char *l, size_t n)
{
	size_t i, size = 0;
	int d, digits = 0;

	for (i = 0; i < n; i++) {
		if (l[i] >= '0' && l[i] <= '9')
			d = l[i] - '0';
		else if (l[i] >= 'a' && l[i] <= 'f')
			d = l[i] - 'a' + 10;
		else if (l[i] >= 'A' && l[i] <= 'F')
			d = l[i] - 'A' + 10;
		else
			break;
		if (++digits > 15)
			return httpc_fail(r, "chunk size too long");
		size = size * 16 + (size_t)d;
	}
	if (digits == 0 || (i < n && l[i] != ';' && l[i] != ' ' && l[i] != '\t'))
		return httpc_fail(r, "malformed chunk size");
	if (size == 0) {
		r->state = HS_TRAILER;
		return HTTPC_MORE;
	}
	if (size > r->body_max || r->body.len + size > r->body_max)
		return httpc_fail(r, "body larger than the limit");
	r->chunk_left = size;
	r->state = HS_CHUNK_DATA;
	return HTTPC_MORE;
}

/* One complete line (without its line end) in the current state. */
static enum httpc_rc
httpc_line(struct httpc_resp *r, const char *l, size_t n)
{
	switch (r->state) {
	case HS_STATUS:
		return httpc_status_line(r, l, n);
	case HS_HEADER:
		if (n == 0)
			return httpc_head_end(r);
		return httpc_header_line(r, l, n);
	case HS_CHUNK_SIZE:
		return httpc_chunk_size(r, l, n);
	case HS_CHUNK_END:
		if (n != 0)
			return httpc_fail(r, "no line end after chunk data");
		r->state = HS_CHUNK_SIZE;
		return HTTPC_MORE;
	case HS_TRAILER:
		if (n == 0) {
			r->state = HS_DONE;
			return HTTPC_DONE;
		}
		if (++r->nheaders > HTTPC_HEADERS_MAX)
			return httpc_fail(r, "too many trailer fields");
		return HTTPC_MORE;
	}
	return httpc_fail(r, "parser state");
}

enum httpc_rc
httpc_resp_feed(struct httpc_resp *r, const char *data, size_t n, size_t *used)
{
	size_t i = 0, take, ll;
	const char *nl;
	enum httpc_rc rc;
	int in_head;

	*used = 0;
	if (r->state == HS_DONE)
		return HTTPC_DONE;
	if (r->err != NULL)
		return HTTPC_ERR;
	while (i < n) {
		switch (r->state) {
		case HS_BODY_LEN:
		case HS_CHUNK_DATA:
			take = n - i < r->chunk_left ? n - i : r->chunk_left;
			buf_append(&r->body, data + i, take);
			i += take;
			r->chunk_left -= take;
			if (r->chunk_left == 0) {
				if (r->state == HS_BODY_LEN) {
					r->state = HS_DONE;
					*used = i;
					return HTTPC_DONE;
				}
				r->state = HS_CHUNK_END;
			}
			continue;
		case HS_BODY_CLOSE:
			take = n - i;
			if (r->body.len + take > r->body_max)
				return httpc_fail(r, "body larger than the limit");
			buf_append(&r->body, data + i, take);
			i += take;
			continue;
		default:
			break;
		}
		in_head = r->state == HS_STATUS || r->state == HS_HEADER;
		nl = memchr(data + i, '\n', n - i);
		take = nl ? (size_t)(nl - (data + i)) + 1 : n - i;
		if (in_head) {
			r->head_bytes += take;
			if (r->head_bytes > HTTPC_HEAD_MAX)
				return httpc_fail(r, "response head too large");
		}
		if (r->line_len + take > HTTPC_LINE_MAX)
			return httpc_fail(r, "line too long");
		memcpy(r->line + r->line_len, data + i, take);
		r->line_len += take;
		i += take;
		if (nl == NULL)
			break;
		ll = r->line_len - 1;		/* without the LF */
		if (ll > 0 && r->line[ll - 1] == '\r')
			ll--;
		if (memchr(r->line, '\0', ll) != NULL)
			return httpc_fail(r, "NUL byte in the head");
		r->line_len = 0;
		rc = httpc_line(r, r->line, ll);
		if (rc == HTTPC_ERR)
			return rc;
		if (rc == HTTPC_DONE) {
			*used = i;
			return HTTPC_DONE;
		}
	}
	*used = i;
	return HTTPC_MORE;
}

enum httpc_rc
httpc_resp_eof(struct httpc_resp *r)
{
	if (r->state == HS_DONE)
		return HTTPC_DONE;
	if (r->state == HS_BODY_CLOSE && r->line_len == 0) {
		r->state = HS_DONE;
		return HTTPC_DONE;
	}
	return httpc_fail(r, r->state == HS_STATUS && r->line_len == 0 ?
	    "connection closed before a response" : "connection closed mid-response");
}

void
httpc_request_begin(struct buf *b, const char *method, const char *host, const char *path)
{
	buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host);
}

void
httpc_request_header(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, "%s: %s\r\n", name, value);
}

void
httpc_request_basic(struct buf *b, const char *id, const char *secret)
{
	size_t il = strlen(id), sl = strlen(secret), n = il + 1 + sl;
	uint8_t *raw = xmalloc(n);
	char *enc = xmalloc(B64_ENCLEN(n) + 1);

	memcpy(raw, id, il);
	raw[il] = ':';
	memcpy(raw + il + 1, secret, sl);
	b64_encode(raw, n, enc);
	buf_printf(b, "Authorization: Basic %s\r\n", enc);
	explicit_bzero(raw, n);
	free(raw);
	free(enc);
}

void
httpc_request_end(struct buf *b, const char *body, size_t len)
{
	if (body != NULL)
		buf_printf(b, "Content-Length: %zu\r\n\r\n", len);
	else
		buf_puts(b, "\r\n");
	if (body != NULL && len > 0)
		buf_append(b, body, len);
}
