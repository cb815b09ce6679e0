/*
 * request.c -- FastCGI request reading and response writing.
 *
 * The body is bounded before it is read: a declared CONTENT_LENGTH over the
 * limit is refused without reading it, and a body that grows past the limit
 * is cut off, so no client can make a responder buffer more than max_body
 * bytes. Everything here works on buffers the calling thread owns and reuses.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fastauth.h"
#include "core/log.h"
#include "http/fcgi.h"
#include "http/request.h"

/* The body is read into its buffer this much at a time. */
#define REQUEST_READ_CHUNK 4096

void
request_init(struct request *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->body);
	buf_init(&r->path);
}

void
request_free(struct request *r)
{
	buf_wipe(&r->body);	/* bodies carry client secrets */
	buf_free(&r->path);
}

void
response_init(struct response *resp)
{
	resp->status = 200;
	resp->conn = NULL;
	resp->streamed = 0;
	resp->tarpit = 0;
	buf_init(&resp->headers);
	buf_init(&resp->body);
}

void
response_free(struct response *resp)
{
	buf_free(&resp->headers);
	buf_wipe(&resp->body);	/* bodies carry access tokens */
}

void
response_reset(struct response *resp)
{
	resp->status = 200;
	resp->streamed = 0;
	resp->tarpit = 0;
	buf_reset(&resp->headers);
	if (resp->body.len > 0)
		explicit_bzero(resp->body.data, resp->body.len);
	buf_reset(&resp->body);
}

const char *
request_param(const struct request *r, const char *name)
{
	return fcgi_param(r->conn, name);
}

static long long
request_parse_length(const char *s)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return LLONG_MAX;	/* unparseable: treat as too large */
	return v;
}

static void
request_set_path(struct request *r)
{
	const char *uri = request_param(r, "REQUEST_URI");
	const char *q;

	buf_reset(&r->path);
	if (uri != NULL && *uri != '\0') {
		q = strchr(uri, '?');
		buf_append(&r->path, uri, q ? (size_t)(q - uri) : strlen(uri));
	} else {
		/* No REQUEST_URI (some mod_fcgid setups): rebuild it. */
		const char *sn = request_param(r, "SCRIPT_NAME");
		const char *pi = request_param(r, "PATH_INFO");

		buf_puts(&r->path, sn ? sn : "");
		buf_puts(&r->path, pi ? pi : "");
	}
	if (r->path.len == 0)
		buf_putc(&r->path, '/');
	r->uri_path = r->path.data;
}

void
request_read_params(struct request *r, const struct fcgi_conn *c)
{
	const char *v;

	r->conn = c;
	v = request_param(r, "REQUEST_METHOD");
	r->method = v ? v : "";
	r->content_type = request_param(r, "CONTENT_TYPE");
	r->authorization = request_param(r, "HTTP_AUTHORIZATION");
	r->if_none_match = request_param(r, "HTTP_IF_NONE_MATCH");
	v = request_param(r, "REMOTE_ADDR");
	r->remote_addr = v ? v : "";
	r->content_length = request_parse_length(request_param(r, "CONTENT_LENGTH"));
	request_set_path(r);
	if (r->body.len > 0)
		explicit_bzero(r->body.data, r->body.len);
	buf_reset(&r->body);
}

int
request_read(struct request *r, struct fcgi_conn *c, size_t max_body)
{
	ssize_t n;

	request_read_params(r, c);
	if (r->body.len > 0)
		explicit_bzero(r->body.data, r->body.len);
	buf_reset(&r->body);

	/* Not read: fcgi_finish reads through what it can of it, and drops it. */
	if (r->content_length > (long long)max_body)
		return FA_LIMIT;
	for (;;) {
		size_t want = max_body + 1 - r->body.len;

		if (want > REQUEST_READ_CHUNK)
			want = REQUEST_READ_CHUNK;
		n = fcgi_read(c, buf_reserve(&r->body, want), want);
		if (n < 0)
			return FA_ERR;	/* the web server broke off or aborted */
		if (n == 0)
			break;
		buf_commit(&r->body, (size_t)n);
		if (r->body.len > max_body) {
			explicit_bzero(r->body.data, r->body.len);
			buf_reset(&r->body);
			return FA_LIMIT;
		}
	}
	if (r->content_length >= 0 && (long long)r->body.len != r->content_length)
		return FA_ERR;	/* truncated: the client went away */
	return FA_OK;
}

void
response_header(struct response *resp, const char *name, const char *value)
{
	buf_puts(&resp->headers, name);
	buf_append(&resp->headers, ": ", 2);
	buf_puts(&resp->headers, value);
	buf_append(&resp->headers, "\r\n", 2);
}

void
response_json(struct response *resp, int status, const char *json, size_t len)
{
	resp->status = status;
	response_header(resp, "Content-Type", "application/json;charset=UTF-8");
	buf_reset(&resp->body);
	buf_append(&resp->body, json, len);
}

const char *
response_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default:  return "Unknown";
	}
}

/*
 * The status line and the headers gathered so far, with Content-Length when
 * with_length (not for a 304), then the blank line.
 */
static int
response_head(struct response *resp, int with_length)
{
	char line[96];
	int n;

	n = snprintf(line, sizeof line, "Status: %d %s\r\n", resp->status,
	    response_reason(resp->status));
	if (resp->conn == NULL || fcgi_write(resp->conn, line, (size_t)n) != 0)
		return FA_ERR;
	if (resp->headers.len > 0 &&
	    fcgi_write(resp->conn, resp->headers.data, resp->headers.len) != 0)
		return FA_ERR;
	if (with_length && resp->status != 304) {
		n = snprintf(line, sizeof line, "Content-Length: %zu\r\n", resp->body.len);
		if (fcgi_write(resp->conn, line, (size_t)n) != 0)
			return FA_ERR;
	}
	if (fcgi_write(resp->conn, "\r\n", 2) != 0)
		return FA_ERR;
	return FA_OK;
}

int
response_send_bare(struct response *resp)
{
	return response_head(resp, 0);
}

int
response_send(struct response *resp, int head_only)
{
	if (resp->streamed)
		return FA_OK;	/* head and body are out already */
	if (response_head(resp, 1) != FA_OK)
		return FA_ERR;
	if (!head_only && resp->status != 304 && resp->body.len > 0 &&
	    fcgi_write(resp->conn, resp->body.data, resp->body.len) != 0)
		return FA_ERR;
	return FA_OK;
}

int
response_stream_begin(struct response *resp, int status)
{
	if (resp->conn == NULL || resp->streamed)
		return FA_ERR;
	resp->status = status;
	resp->streamed = 1;
	return response_head(resp, 0);
}

int
response_stream_write(struct response *resp, const char *data, size_t len)
{
	if (resp->conn == NULL || !resp->streamed)
		return FA_ERR;
	if (len > 0 && fcgi_write(resp->conn, data, len) != 0)
		return FA_ERR;
	return FA_OK;
}
