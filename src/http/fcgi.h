/*
 * fcgi.h -- the FastCGI protocol (FastCGI Specification 1.0), responder side:
 * one connection from the web server, one request on it at a time.
 *
 * A responder thread owns one struct fcgi_conn and reuses it: fcgi_accept
 * takes the next request (accepting a new connection, or reading the next
 * request of a connection the web server keeps open), the request is served
 * through fcgi_param / fcgi_read / fcgi_write, and fcgi_finish ends it. The
 * parameters live in the caller's per-request arena until it is reset, after
 * fcgi_finish.
 */
#ifndef FCGI_H
#define FCGI_H

#include <stddef.h>
#include <sys/types.h>

struct arena;

/* FCGI_ROLE values of the begin-request record. */
#define FCGI_RESPONDER	1
#define FCGI_AUTHORIZER	2
#define FCGI_FILTER	3

/* Limits on what the web server may send with one request. */
#define FCGI_PARAMS_BYTES_MAX	(1024 * 1024)	/* the encoded PARAMS stream */
#define FCGI_PARAMS_COUNT_MAX	4096

struct fcgi_param {
	const char	*name;		/* NUL-terminated, in the arena */
	size_t		 name_len;
	const char	*value;		/* NUL-terminated, in the arena */
	size_t		 value_len;
};

struct fcgi_conn {
	int			 fd;		/* -1 when no connection */
	unsigned		 max_conns;	/* what FCGI_GET_VALUES answers */
	struct arena		*arena;
	/* The request being served. */
	unsigned		 id;		/* 0 when none */
	unsigned		 role;
	int			 keep;		/* FCGI_KEEP_CONN: the web server keeps fd */
	int			 stdin_done;	/* the empty FCGI_STDIN record came */
	int			 aborted;	/* FCGI_ABORT_REQUEST came */
	int			 broken;	/* I/O or protocol error: close after */
	int			 params_too_big;
	struct fcgi_param	*params;
	size_t			 nparams;
	/* Input: whole records are read into in[]; stdin content is served from it. */
	unsigned char		*in;
	size_t			 in_off, in_len;
	const unsigned char	*sin;		/* unread content of the current FCGI_STDIN record */
	size_t			 sin_len;
	/* The PARAMS stream, gathered across records until its empty record. */
	unsigned char		*pstream;
	size_t			 plen, pcap;
	/* Output: STDOUT content waiting behind room for its record header. */
	unsigned char		*out;
	size_t			 out_len;
};

/*
 * Prepare c for the thread that owns it; parameters will be allocated in
 * arena; max_conns is what a FCGI_GET_VALUES query is told.
 */
void	fcgi_conn_init(struct fcgi_conn *c, struct arena *arena, unsigned max_conns);
/* Close the connection and free the buffers. */
void	fcgi_conn_free(struct fcgi_conn *c);
/*
 * Serve fd (a connected socket, owned from now on) as if accepted: for
 * tests and fuzzing. Closes the previous connection.
 */
void	fcgi_conn_attach(struct fcgi_conn *c, int fd);
/*
 * The next request: from the kept connection if there is one, else from a
 * connection accepted on listen_fd (non-blocking). 1 when a request's
 * parameters are in; 0 when there is none now (no connection queued, or the
 * kept connection ended); -1 when accept failed (errno says why).
 */
int	fcgi_accept(struct fcgi_conn *c, int listen_fd);
/* The connection to poll for the next request, -1 when there is none. */
int	fcgi_conn_fd(const struct fcgi_conn *c);
/* A parameter of the current request by name, NULL when absent. */
const char *fcgi_param(const struct fcgi_conn *c, const char *name);
/*
 * Up to len bytes of the request body (FCGI_STDIN). The count read, 0 at
 * its end, -1 when the connection broke or the request was aborted.
 */
ssize_t	fcgi_read(struct fcgi_conn *c, void *buf, size_t len);
/* Append to the response (FCGI_STDOUT). 0, or -1 when the connection broke. */
int	fcgi_write(struct fcgi_conn *c, const void *data, size_t len);
/*
 * End the request: flush the response, send FCGI_END_REQUEST, and close the
 * connection unless the web server keeps it (and it is still in step).
 */
void	fcgi_finish(struct fcgi_conn *c);
/*
 * End the request without sending its end: the rest of the answer with its
 * FCGI_END_REQUEST as *bytes (*len of them, valid until the next call on c)
 * and the connection *fd they go to are the caller's from now on, to send
 * and close (a delayed answer). FA_OK, or FA_ERR when the connection broke
 * (fcgi_finish it instead).
 */
int	fcgi_detach(struct fcgi_conn *c, int *fd, const unsigned char **bytes,
	    size_t *len);
/*
 * Decode a PARAMS stream (name-value pairs) into an array in arena. FA_OK;
 * FA_ERR when a length runs past the end; FA_LIMIT past FCGI_PARAMS_COUNT_MAX.
 */
int	fcgi_params_decode(const unsigned char *p, size_t len, struct arena *arena,
	    struct fcgi_param **out, size_t *count);

#endif
