/*
 * request.h -- one HTTP exchange over FastCGI: the request as the web server
 * described it (CGI/1.1 parameters and a bounded body) and the response we
 * build for it. Both are reused by a thread from one request to the next.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include <stddef.h>

#include "core/buf.h"

struct fcgi_conn;

struct request {
	const char	*method;	/* REQUEST_METHOD, "" if absent */
	const char	*uri_path;	/* full path the client asked for, without query */
	const char	*content_type;	/* CONTENT_TYPE or NULL */
	const char	*authorization;	/* HTTP_AUTHORIZATION or NULL */
	const char	*if_none_match;	/* HTTP_IF_NONE_MATCH or NULL */
	const char	*remote_addr;	/* REMOTE_ADDR or "" */
	long long	 content_length; /* -1 when not given */
	struct buf	 body;		/* the body, NUL-terminated; may contain NUL bytes */
	struct buf	 path;		/* scratch for uri_path */
	const struct fcgi_conn *conn;	/* the parameters' owner (the arena holds them) */
	struct arena	*arena;		/* for what lives as long as the request; NULL = heap */
};

struct response {
	int		 status;	/* HTTP status code */
	struct buf	 headers;	/* "Name: value\r\n" lines */
	struct buf	 body;
	/* Streaming (response_stream_*): where to, and whether the head is out. */
	struct fcgi_conn *conn;		/* set by the worker; NULL = cannot stream */
	int		 streamed;	/* 1 after response_stream_begin */
	int		 tarpit;	/* a rate-limit refusal: the answer may be held back */
};

/* Prepare reusable request/response storage. */
void	request_init(struct request *);
void	request_free(struct request *);
void	response_init(struct response *);
void	response_free(struct response *);
void	response_reset(struct response *);

/*
 * Read parameters and body of the accepted FastCGI request. Returns FA_OK,
 * FA_LIMIT when the body is larger than max_body (nothing kept; answer 413),
 * or FA_ERR when the body could not be read (client went away).
 */
int	request_read(struct request *, struct fcgi_conn *, size_t max_body);
/*
 * Only the parameters, no body (the body is left empty): the FastCGI
 * Authorizer role, where the web server keeps the body for the responder
 * and may send no FCGI_STDIN stream at all, so reading it could wait forever.
 */
void	request_read_params(struct request *, const struct fcgi_conn *);
/* A FastCGI parameter by name, NULL when absent. */
const char *request_param(const struct request *, const char *name);

/* Add a header line; name and value must not contain CR or LF. */
void	response_header(struct response *, const char *name, const char *value);
/* Set status and a JSON body (copied), with Content-Type application/json. */
void	response_json(struct response *, int status, const char *json, size_t len);
/* Write status line, headers, Content-Length and body to resp->conn. */
int	response_send(struct response *, int head_only);
/*
 * Write the status line and the headers as they are, nothing else (no
 * Content-Length, no body): an Authorizer's grant, whose headers other than
 * Variable-* Apache would add to the protected response.
 */
int	response_send_bare(struct response *);
/*
 * Streaming, for an answer written as it is produced: send the status line
 * and the headers gathered so far without Content-Length (the web server
 * chunks or closes), then body pieces. response_send does nothing after
 * response_stream_begin. FA_OK, or FA_ERR when the client went away (or
 * resp->conn is NULL).
 */
int	response_stream_begin(struct response *, int status);
int	response_stream_write(struct response *, const char *data, size_t len);
/* The reason phrase of a status code. */
const char *response_reason(int status);

#endif
