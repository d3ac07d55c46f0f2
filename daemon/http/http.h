/*
 * http — HTTP/1.1 server on a Unix socket, driven by the daemon's libuv loop.
 *
 * Owns: the listening pipe, every connection (read buffer, parser, write queue, idle timer),
 * the request/size/connection limits and the errors they produce (400, 413, 431, 503).
 * Never: interprets paths or bodies beyond HTTP framing (the handler does), blocks the loop,
 * allocates per read without a ceiling, frees a handle outside its close callback.
 *
 * One request in flight per connection: after a request is complete the connection stops
 * reading (pipelined bytes stay buffered) until the handler's response has been written;
 * then the next buffered request is parsed. A connection the peer closed while its request
 * is in flight stays alive (no reads) until the response is given, which is then dropped.
 *
 * Connection states: READING → HANDLING (handler owns the request) → WRITING → READING …;
 * any state → CLOSING (peer EOF/error, idle timeout, Connection: close, protocol error,
 * server stop) → freed in the close callback once no response is owed.
 */
#ifndef JOULE_HTTP_H
#define JOULE_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "../core/err.h"

struct http_server;
struct http_conn;

struct http_limits {
	size_t max_header_bytes;    /* request line + headers; default 16 KiB → 431 */
	size_t max_body_bytes;      /* default 1 MiB → 413 */
	uint32_t max_connections;   /* default 1024; above it: 503 and close */
	uint64_t idle_timeout_ms;   /* default 60000; 0 = none */
	unsigned socket_mode;       /* chmod of the socket file; default 0666 */
};

/* Fill in the defaults above. */
void http_limits_default(struct http_limits *l);

/* One complete request. Every pointer is valid until http_conn_respond is called for it. */
struct http_request {
	int method;                 /* enum http_method from http_parser.h (HTTP_GET, …) */
	const char *method_name;    /* "GET", … */
	const char *path;           /* percent-decoded path without query, NUL-terminated */
	const char *query;          /* raw query string without '?', "" when none */
	const char *body;           /* NUL-terminated (not counted in body_len); "" when none */
	size_t body_len;
	const char *idempotency_key;/* "Idempotency-Key" header or NULL */
	const char *if_none_match;  /* "If-None-Match" header or NULL */
	uid_t uid;                  /* SO_PEERCRED of the connection */
	gid_t gid;
	pid_t pid;
};

/* The handler must call http_conn_respond exactly once per request, now or later (for
 * example after the group commit). */
typedef void (*http_handler_cb)(void *ud, struct http_conn *c, const struct http_request *req);

/*
 * Listen on `path` (or on the inherited, already listening fd when fd >= 0, as with socket
 * activation: then path is only used for messages and is not unlinked at stop).
 * A stale socket file (nobody accepts on it) is replaced; a live one is refused with
 * ERR_CONFLICT "another daemon is listening on PATH"; a non-socket file at path with
 * ERR_CONFLICT too. Returns 0 and *out, or an error with e filled.
 * The process must ignore SIGPIPE (libuv writes with write(2)): a response to a peer that
 * hung up then fails with EPIPE and is dropped instead of killing the daemon.
 */
int http_server_start(uv_loop_t *loop, const char *path, int fd, const struct http_limits *lim,
		      http_handler_cb cb, void *ud, struct http_server **out, struct err *e);

/*
 * Answer the request in flight on c. `body` (may be NULL when len is 0) is taken over:
 * it is free()d by the server once written or dropped. extra_headers is NULL or lines
 * each ending "\r\n" (e.g. "Allow: GET, POST\r\n"); copied. Content-Type is
 * application/json unless extra_headers begins with its own "Content-Type:" line. Always succeeds from the caller's view (a dead peer drops it).
 */
void http_conn_respond(struct http_conn *c, int status, const char *extra_headers,
		       char *body, size_t len);

/* Number of open connections (for /v1/health and metrics). */
uint32_t http_server_connections(const struct http_server *s);

/*
 * Graceful stop: stop accepting, close idle connections at once, let connections whose
 * request is in flight get their response written, then close them; unlink the socket file
 * (unless inherited); call done(ud) when every handle is closed. Idempotent.
 */
void http_server_stop(struct http_server *s, void (*done)(void *ud), void *ud);

/* Free the server after done fired. NULL is fine. */
void http_server_free(struct http_server *s);

/* Reason phrase for a status code ("OK", "Not Found", …). */
const char *http_status_text(int status);

#endif
