/*
 * httpc.h -- the HTTP/1.1 client side of fastauth-load: a request writer and
 * an incremental response parser (Content-Length, chunked, or until close),
 * bounded in every size, for keep-alive connections driven by epoll.
 */
#ifndef HTTPC_H
#define HTTPC_H

#include <stddef.h>

#include "core/buf.h"

#define HTTPC_LINE_MAX		8192	/* bytes of one status, header or chunk-size line */
#define HTTPC_HEAD_MAX		65536	/* bytes of status line plus headers */
#define HTTPC_HEADERS_MAX	100	/* header fields per response */

enum httpc_rc { HTTPC_MORE, HTTPC_DONE, HTTPC_ERR };

struct httpc_resp {
	int		 state;		/* parser state (httpc.c) */
	int		 status;	/* 100..999 once the status line is read */
	int		 minor;		/* HTTP/1.minor */
	int		 keep_alive;	/* the connection may carry another request */
	int		 chunked;	/* Transfer-Encoding: chunked */
	int		 no_body;	/* 204, 304, 1xx: no body whatever the headers */
	long long	 clen;		/* Content-Length, -1 if none */
	size_t		 chunk_left;	/* bytes of the current chunk still to come */
	size_t		 head_bytes;	/* status line + headers so far */
	int		 nheaders;
	size_t		 body_max;	/* a longer body is an error */
	char		 line[HTTPC_LINE_MAX];
	size_t		 line_len;
	struct buf	 body;		/* the decoded body (NUL-terminated) */
	const char	*err;		/* static text after HTTPC_ERR */
};

/* Ready a parser for a response of at most body_max body bytes. */
void	httpc_resp_init(struct httpc_resp *, size_t body_max);
/* Forget the last response, keep the memory (next response on the connection). */
void	httpc_resp_reset(struct httpc_resp *);
void	httpc_resp_free(struct httpc_resp *);
/*
 * Feed n bytes. HTTPC_DONE when a whole response is in (*used tells how
 * many of the bytes it took; the rest belong to no request of ours),
 * HTTPC_MORE when it wants more, HTTPC_ERR with r->err on a protocol or
 * size error. A 1xx interim response is skipped.
 */
enum httpc_rc httpc_resp_feed(struct httpc_resp *, const char *data, size_t n, size_t *used);
/* The peer closed: HTTPC_DONE if that ends a body read until close, else HTTPC_ERR. */
enum httpc_rc httpc_resp_eof(struct httpc_resp *);

/*
 * Request writer: begin writes the request line and Host, header adds one
 * field, end adds Content-Length (when body is not NULL) and the body.
 */
void	httpc_request_begin(struct buf *, const char *method, const char *host,
	    const char *path);
void	httpc_request_header(struct buf *, const char *name, const char *value);
/* Authorization: Basic base64(id ":" secret). */
void	httpc_request_basic(struct buf *, const char *id, const char *secret);
void	httpc_request_end(struct buf *, const char *body, size_t len);

#endif
