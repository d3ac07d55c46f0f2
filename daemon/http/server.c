/*
 * server — the HTTP/1.1 listener and its connections on a Unix socket (contract: http.h).
 *
 * Owns: the listening pipe, every struct http_conn (pipe, idle timer, read buffer, parser,
 * the request being assembled, the one response being written) and the JSON bodies of the
 * errors it answers itself (400, 413, 431, 503).
 * Never: interprets a path or a body, reads while a request is in flight, grows a buffer
 * past the ceiling it was given at creation, frees a handle outside its close callback,
 * loops over input without a bound (one read chunk, at most one request per wakeup).
 *
 * Buffers and their ceilings (set from struct http_limits when the connection is made):
 *   rbuf     unparsed input; grows by READ_CHUNK up to max_header + max_body + READ_SLACK.
 *            While reading every byte is parsed at once, so it only holds what arrived after
 *            a complete request in the same read (pipelining) — in practice one chunk.
 *   url, idempotency_key, if_none_match   copies, each at most max_header_bytes.
 *   body     at most max_body_bytes (+1 for the NUL); Content-Length is checked first.
 *   target   the decoded path and raw query, at most the URL's length + 2.
 * The header block is counted from the first byte of a request to the end of its blank
 * line; the parser is never fed more than the bytes still allowed, so a block of exactly
 * max_header_bytes passes and one byte more is a 431.
 *
 * Connection states (c->state):
 *
 *   accept ──► READING ──request complete──► HANDLING ──http_conn_respond──► WRITING
 *                 ▲   (parser paused, reads stopped,          (idle timer runs)  │
 *                 │    idle timer stopped)                                       │
 *                 └────────── written: resume parser, parse buffered bytes ◄─────┘
 *
 *   any state ──► CLOSING: peer EOF/error, idle timeout, write error, Connection: close or
 *   an error answer once written, server stop. Both handles are closed; the struct is freed
 *   in the last close callback once no response is owed (owed: HANDLING) and no write is
 *   pending. A response given to a CLOSING connection is dropped.
 *
 * Above max_connections a connection is accepted only to be answered 503 and closed; it
 * is not counted in http_server_connections(). If even the connection struct cannot be
 * allocated, the connection is accepted into a spare pipe and closed without an answer.
 */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

#define LISTEN_BACKLOG 512
#define READ_CHUNK 16384	/* free space offered to each read */
#define READ_SLACK 4096		/* rbuf ceiling above header + body limits */
#define FIELD_NAME_MAX 32	/* longest header name we look at, plus room */

enum conn_state { CONN_READING, CONN_HANDLING, CONN_WRITING, CONN_CLOSING };

/* A byte string with a ceiling fixed at creation; always NUL-terminated when p != NULL. */
struct sbuf {
	char *p;
	size_t len, cap, max;
};

struct http_conn {
	struct http_server *s;
	struct http_conn *prev, *next;
	uv_pipe_t pipe;
	uv_timer_t timer;
	int handles_open;         /* 2 after init; the struct outlives both */
	enum conn_state state;
	bool reading;             /* uv_read_start is in effect */
	bool owed;                /* the handler owes a response (HANDLING) */
	bool write_pending;       /* wreq is in libuv's hands */
	bool close_after;         /* close once the current response is written */
	bool rejected;            /* over the connection limit: 503 only, not counted */
	uint64_t req_at;          /* uv_now() of the first bytes of the request being read;
				     0 between requests */

	struct ucred cred;
	http_parser parser;

	char *rbuf;               /* unparsed input: [rpos, rlen) */
	size_t rlen, rpos, rcap, rmax;

	/* the request being assembled */
	bool in_head;             /* counting header bytes */
	size_t head_bytes;
	bool complete;            /* on_message_complete fired; parser paused */
	int fail_status;          /* set by a parser callback: answer this and close */
	const char *fail_code;
	char fail_message[96];
	bool last_was_value;
	bool expect_continue;     /* "Expect: 100-continue": say 100 before the body */
	char field[FIELD_NAME_MAX];
	size_t field_len;         /* may exceed sizeof(field): then it matches nothing */
	struct sbuf *value;       /* where the current header value goes, or NULL */
	struct sbuf url, idem, inm, body, target;
	struct http_request req;

	/* the response being written */
	uv_write_t wreq;
	char head[160];
	char *extra;              /* copy of extra_headers */
	char *resp_body;          /* free()d after the write unless it is errbody */
	char errbody[320];        /* the server's own error answers: no allocation */
};

struct http_server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	uv_pipe_t spare;          /* accepts and closes a connection we cannot allocate */
	bool spare_busy;
	bool accept_stalled;      /* a connection waits for the spare to be free */
	bool listener_closed;
	struct http_limits lim;
	http_handler_cb cb;
	void *ud;
	char *path;
	bool inherited;
	bool stopping;
	bool finished;            /* every handle closed: done fired */
	void (*done)(void *ud);
	void *done_ud;
	struct http_conn *conns;  /* every connection struct, rejected ones too */
	uint32_t nconns;          /* counted (not rejected) connections */
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers ---------------------------------------------------------------- */

static void sbuf_init(struct sbuf *b, size_t max)
{
	*b = (struct sbuf){.max = max};
}

static void sbuf_free(struct sbuf *b)
{
	free(b->p);
	sbuf_init(b, b->max);
}

/* Make room for `extra` more bytes plus the NUL; -E2BIG past the ceiling. */
static int sbuf_reserve(struct sbuf *b, size_t extra)
{
	if (extra > b->max - b->len)
		return -E2BIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int sbuf_append(struct sbuf *b, const char *d, size_t n)
{
	int r = sbuf_reserve(b, n);
	if (r < 0)
		return r;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static const char *sbuf_str(const struct sbuf *b)
{
	return b->p ? b->p : "";
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decode src[0..n) to dst (room for n + 1); -EINVAL on a bad escape or %00. */
static int percent_decode(char *dst, const char *src, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (src[i] != '%') {
			dst[o++] = src[i];
			continue;
		}
		if (n - i < 3)
			return -EINVAL;
		int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		dst[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	dst[o] = '\0';
	return 0;
}

const char *http_status_text(int status)
{
	const char *t = http_status_str((enum http_status)status);
	return t[0] == '<' ? "Unknown" : t;
}

void http_limits_default(struct http_limits *l)
{
	*l = (struct http_limits){
		.max_header_bytes = 16 * 1024,
		.max_body_bytes = 1024 * 1024,
		.max_connections = 1024,
		.idle_timeout_ms = 60000,
		.socket_mode = 0666,
	};
}

uint32_t http_server_connections(const struct http_server *s)
{
	return s->nconns;
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void server_maybe_done(struct http_server *s)
{
	if (!s->stopping || s->finished || !s->listener_closed || s->conns || s->spare_busy)
		return;
	s->finished = true;
	if (s->done)
		s->done(s->done_ud);   /* may free s: touch nothing after */
}

static void request_reset(struct http_conn *c)
{
	sbuf_free(&c->url);
	sbuf_free(&c->idem);
	sbuf_free(&c->inm);
	sbuf_free(&c->body);
	sbuf_free(&c->target);
	c->in_head = true;
	c->head_bytes = 0;
	c->req_at = 0;
	c->complete = false;
	c->last_was_value = false;
	c->field_len = 0;
	c->value = NULL;
	memset(&c->req, 0, sizeof(c->req));
}

static void conn_maybe_free(struct http_conn *c)
{
	if (c->handles_open > 0 || c->owed || c->write_pending)
		return;
	struct http_server *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (!c->rejected)
		s->nconns--;
	request_reset(c);
	free(c->rbuf);
	free(c);
	server_maybe_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	c->handles_open--;
	conn_maybe_free(c);
}

static void conn_close(struct http_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	c->reading = false;
	uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_idle(uv_timer_t *t)
{
	conn_close(t->data);
}

static void idle_restart(struct http_conn *c)
{
	if (c->s->lim.idle_timeout_ms > 0)
		uv_timer_start(&c->timer, on_idle, c->s->lim.idle_timeout_ms, 0);
}

/* Bytes arrived. Between requests the idle timer starts over; within one, it does not:
 * a whole request must arrive within the idle timeout of its first bytes, so a client
 * sending a byte now and then (slow loris) cannot hold a connection for ever. */
static void request_deadline(struct http_conn *c)
{
	uint64_t now = uv_now(c->s->loop), limit = c->s->lim.idle_timeout_ms;
	if (!limit)
		return;
	if (!c->req_at)
		c->req_at = now;
	uint64_t end = c->req_at + limit;
	uv_timer_start(&c->timer, on_idle, end > now ? end - now : 0, 0);
}

/* ---- writing ----------------------------------------------------------------------- */

static void parse_buffered(struct http_conn *c);

static void on_written(uv_write_t *w, int status)
{
	struct http_conn *c = w->data;

	c->write_pending = false;
	if (c->resp_body != c->errbody)
		free(c->resp_body);
	c->resp_body = NULL;
	free(c->extra);
	c->extra = NULL;
	if (c->state == CONN_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	if (status < 0 || c->close_after || c->s->stopping) {
		conn_close(c);
		return;
	}
	c->state = CONN_READING;
	request_reset(c);
	http_parser_pause(&c->parser, 0);
	idle_restart(c);
	parse_buffered(c);   /* at most one request: then it is HANDLING again */
	if (c->state == CONN_READING && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
			c->reading = true;
		else
			conn_close(c);
	}
}

/* Queue the one response of this connection. body is taken over (unless it is errbody). */
static void send_response(struct http_conn *c, int status, const char *extra_headers,
			  char *body, size_t len)
{
	static const char keep[] = "Connection: keep-alive\r\n\r\n";
	static const char close_[] = "Connection: close\r\n\r\n";
	uv_buf_t bufs[4];
	unsigned n = 0;

	assert(!c->write_pending);
	assert(status >= 100 && status <= 999);
	assert(len <= UINT_MAX);
	c->resp_body = body;
	if (extra_headers && *extra_headers) {
		c->extra = strdup(extra_headers);
		if (!c->extra)
			goto fail;
	}
	if (c->s->stopping)
		c->close_after = true;
	/* extra headers that start with their own Content-Type replace the JSON default */
	bool own_type = c->extra && strncasecmp(c->extra, "Content-Type:", 13) == 0;
	/* 204 and 304 carry no body, and no Content-Length or Content-Type for one */
	bool bodiless = status == 204 || status == 304;
	int hl = bodiless ? snprintf(c->head, sizeof(c->head), "HTTP/1.1 %d %s\r\n", status,
				     http_status_text(status))
			  : snprintf(c->head, sizeof(c->head),
				     "HTTP/1.1 %d %s\r\n%sContent-Length: %zu\r\n", status,
				     http_status_text(status),
				     own_type ? "" : "Content-Type: application/json\r\n", len);
	assert(hl > 0 && (size_t)hl < sizeof(c->head));
	bufs[n++] = uv_buf_init(c->head, (unsigned)hl);
	if (c->extra)
		bufs[n++] = uv_buf_init(c->extra, (unsigned)strlen(c->extra));
	if (c->close_after)
		bufs[n++] = uv_buf_init((char *)close_, sizeof(close_) - 1);
	else
		bufs[n++] = uv_buf_init((char *)keep, sizeof(keep) - 1);
	if (len > 0)
		bufs[n++] = uv_buf_init(body, (unsigned)len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->pipe, bufs, n, on_written) < 0)
		goto fail;
	c->write_pending = true;
	c->state = CONN_WRITING;
	idle_restart(c);   /* a peer that does not read its answer is dropped */
	return;
fail:
	if (c->resp_body != c->errbody)
		free(c->resp_body);
	c->resp_body = NULL;
	free(c->extra);
	c->extra = NULL;
	conn_close(c);
}

/* Answer with the server's own JSON error and close once written. */
static void send_error(struct http_conn *c, int status, const char *code, const char *message)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = false;
	}
	int n = snprintf(c->errbody, sizeof(c->errbody),
			 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
	assert(n > 0 && (size_t)n < sizeof(c->errbody));
	c->close_after = true;
	send_response(c, status, NULL, c->errbody, (size_t)n);
}

void http_conn_respond(struct http_conn *c, int status, const char *extra_headers,
		       char *body, size_t len)
{
	assert(c);
	assert(c->owed && "http_conn_respond with no request in flight");
	assert(body || len == 0);
	c->owed = false;
	if (c->state == CONN_CLOSING) {
		free(body);
		conn_maybe_free(c);
		return;
	}
	assert(c->state == CONN_HANDLING);
	send_response(c, status, extra_headers, body, len);
}

/* ---- parsing ----------------------------------------------------------------------- */

/* From a parser callback (or parse_buffered): stop parsing; parse_buffered answers, closes. */
static void fail(struct http_conn *c, int status, int code, const char *message, size_t limit)
{
	if (c->fail_status)
		return;
	c->fail_status = status;
	c->fail_code = err_code_name(code);
	if (limit)
		snprintf(c->fail_message, sizeof(c->fail_message), "%s %zu bytes", message, limit);
	else
		snprintf(c->fail_message, sizeof(c->fail_message), "%s", message);
	if (HTTP_PARSER_ERRNO(&c->parser) == HPE_OK)
		http_parser_pause(&c->parser, 1);
}

static void fail_headers(struct http_conn *c)
{
	fail(c, 431, ERR_HEADERS_TOO_LARGE, "request line and headers over",
	     c->s->lim.max_header_bytes);
}

static void fail_body(struct http_conn *c)
{
	fail(c, 413, ERR_TOO_LARGE, "request body over", c->s->lim.max_body_bytes);
}

static void fail_memory(struct http_conn *c)
{
	fail(c, 503, ERR_UNAVAILABLE, "out of memory", 0);
}

static void fail_append(struct http_conn *c, int r)
{
	if (r == -ENOMEM)
		fail_memory(c);
	else
		fail_headers(c);
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;
	c->in_head = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	int r = sbuf_append(&c->url, at, len);
	if (r < 0)
		fail_append(c, r);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (c->last_was_value || c->field_len == 0) {
		c->field_len = 0;
		c->value = NULL;
	}
	c->last_was_value = false;
	if (c->field_len < sizeof(c->field) && len < sizeof(c->field) - c->field_len)
		memcpy(c->field + c->field_len, at, len);
	c->field_len += len;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (!c->last_was_value) {
		c->last_was_value = true;
		c->value = NULL;
		if (c->field_len < sizeof(c->field)) {
			c->field[c->field_len] = '\0';
			if (strcasecmp(c->field, "Idempotency-Key") == 0)
				c->value = &c->idem;
			else if (strcasecmp(c->field, "If-None-Match") == 0)
				c->value = &c->inm;
			else if (strcasecmp(c->field, "Expect") == 0 && len >= 12 &&
				 strncasecmp(at, "100-continue", 12) == 0)
				c->expect_continue = true;
		}
		if (c->value) {    /* a repeated header: the last one counts */
			sbuf_free(c->value);
			if (sbuf_reserve(c->value, 0) < 0) {
				fail_memory(c);
				return 0;
			}
			c->value->p[0] = '\0';
		}
	}
	if (c->value) {
		int r = sbuf_append(c->value, at, len);
		if (r < 0)
			fail_append(c, r);
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	size_t max = c->s->lim.max_body_bytes;

	c->in_head = false;
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX) {
		if (p->content_length > max) {
			fail_body(c);
			return 0;
		}
		if (p->content_length > 0 && sbuf_reserve(&c->body, (size_t)p->content_length) < 0) {
			fail_memory(c);
			return 0;
		}
	}
	if (c->expect_continue) {
		/* curl waits ~1 s for this before sending a large body; 25 bytes always fit in
		 * an idle socket buffer, and a refusal above was sent instead */
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
		c->expect_continue = false;
		uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	int r = sbuf_append(&c->body, at, len);
	if (r == -E2BIG)
		fail_body(c);
	else if (r < 0)
		fail_memory(c);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	c->complete = true;
	if (!http_should_keep_alive(p))
		c->close_after = true;
	http_parser_pause(p, 1);   /* one request in flight: the rest stays in rbuf */
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Fill c->req from the assembled request; -EINVAL for a bad target, -ENOMEM. */
static int request_build(struct http_conn *c)
{
	struct http_parser_url u;
	const char *url = sbuf_str(&c->url);
	size_t plen = 0, qlen = 0;
	const char *path = NULL, *query = NULL;

	http_parser_url_init(&u);
	if (http_parser_parse_url(url, c->url.len, c->parser.method == HTTP_CONNECT, &u) != 0)
		return -EINVAL;
	if (!(u.field_set & (1 << UF_PATH)))
		return -EINVAL;
	path = url + u.field_data[UF_PATH].off;
	plen = u.field_data[UF_PATH].len;
	if (u.field_set & (1 << UF_QUERY)) {
		query = url + u.field_data[UF_QUERY].off;
		qlen = u.field_data[UF_QUERY].len;
	}
	sbuf_init(&c->target, plen + qlen + 2);
	if (sbuf_reserve(&c->target, plen + qlen + 1) < 0)
		return -ENOMEM;
	char *t = c->target.p;
	if (percent_decode(t, path, plen) < 0)
		return -EINVAL;
	char *q = t + strlen(t) + 1;
	if (qlen)
		memcpy(q, query, qlen);
	q[qlen] = '\0';

	c->req = (struct http_request){
		.method = c->parser.method,
		.method_name = http_method_str((enum http_method)c->parser.method),
		.path = t,
		.query = q,
		.body = sbuf_str(&c->body),
		.body_len = c->body.len,
		.idempotency_key = c->idem.p,
		.if_none_match = c->inm.p,
		.uid = c->cred.uid,
		.gid = c->cred.gid,
		.pid = c->cred.pid,
	};
	return 0;
}

static void dispatch(struct http_conn *c)
{
	int r = request_build(c);
	if (r == -ENOMEM) {
		send_error(c, 503, err_code_name(ERR_UNAVAILABLE), "out of memory");
		return;
	}
	if (r < 0) {
		send_error(c, 400, err_code_name(ERR_MALFORMED), "bad request target");
		return;
	}
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->reading = false;
	}
	uv_timer_stop(&c->timer);
	c->state = CONN_HANDLING;
	c->owed = true;
	c->s->cb(c->s->ud, c, &c->req);
}

/*
 * Feed buffered bytes to the parser until they run out or one request is complete (or an
 * error is answered). Each pass consumes bytes or leaves READING, so this is bounded by
 * the buffer, which is bounded by its ceiling.
 */
static void parse_buffered(struct http_conn *c)
{
	size_t max_head = c->s->lim.max_header_bytes;

	while (c->state == CONN_READING && c->rpos < c->rlen) {
		size_t n = c->rlen - c->rpos;
		if (c->in_head && n > max_head - c->head_bytes)
			n = max_head - c->head_bytes;
		size_t done = http_parser_execute(&c->parser, &parser_settings, c->rbuf + c->rpos, n);
		enum http_errno pe = HTTP_PARSER_ERRNO(&c->parser);
		c->rpos += done;
		if (pe == HPE_HEADER_OVERFLOW)
			fail_headers(c);   /* the parser's own ceiling, when ours is higher */
		else if (c->in_head && pe == HPE_OK && c->head_bytes + done >= max_head)
			fail_headers(c);
		if (c->fail_status) {
			send_error(c, c->fail_status, c->fail_code, c->fail_message);
			break;
		}
		if (c->complete) {
			dispatch(c);
			break;
		}
		if (pe != HPE_OK) {
			send_error(c, 400, err_code_name(ERR_MALFORMED), http_errno_description(pe));
			break;
		}
		if (c->in_head)
			c->head_bytes += done;
		if (done == 0)
			break;   /* cannot happen without an error; never spin */
	}
	if (c->state == CONN_CLOSING)
		return;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
}

/* ---- reading ----------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = h->data;

	if (c->rcap - c->rlen < READ_CHUNK && c->rcap < c->rmax) {
		size_t cap = c->rlen + READ_CHUNK;
		if (cap > c->rmax)
			cap = c->rmax;
		char *p = realloc(c->rbuf, cap);
		if (p) {
			c->rbuf = p;
			c->rcap = cap;
		}
	}
	/* no room: libuv reports UV_ENOBUFS to on_read */
	*buf = uv_buf_init(c->rbuf ? c->rbuf + c->rlen : NULL, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct http_conn *c = stream->data;

	if (nread < 0) {   /* EOF, reset, ENOBUFS: nothing is owed while reading */
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->rlen += (size_t)nread;
	request_deadline(c);
	parse_buffered(c);
}

/* ---- accepting --------------------------------------------------------------------- */

static void on_spare_closed(uv_handle_t *h);

/* Accept the waiting connection into the spare pipe and close it: no memory, no answer. */
static void spare_take(struct http_server *s)
{
	uv_pipe_init(s->loop, &s->spare, 0);
	s->spare.data = s;
	s->spare_busy = true;
	uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->spare);
	uv_close((uv_handle_t *)&s->spare, on_spare_closed);
}

static void on_spare_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;
	s->spare_busy = false;
	if (s->accept_stalled && !s->stopping) {
		s->accept_stalled = false;
		spare_take(s);
		return;
	}
	server_maybe_done(s);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct http_server *s = listener->data;

	if (status < 0 || s->stopping)
		return;
	struct http_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		if (s->spare_busy)
			s->accept_stalled = true;   /* libuv stops accepting until we do */
		else
			spare_take(s);
		return;
	}
	c->s = s;
	c->rejected = s->nconns >= s->lim.max_connections;
	if (!c->rejected)
		s->nconns++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	c->rmax = s->lim.max_header_bytes + s->lim.max_body_bytes + READ_SLACK;
	sbuf_init(&c->url, s->lim.max_header_bytes);
	sbuf_init(&c->idem, s->lim.max_header_bytes);
	sbuf_init(&c->inm, s->lim.max_header_bytes);
	sbuf_init(&c->body, s->lim.max_body_bytes);
	request_reset(c);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_pipe_init(s->loop, &c->pipe, 0);
	uv_timer_init(s->loop, &c->timer);
	c->pipe.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	c->state = CONN_READING;

	uv_os_fd_t fd;
	socklen_t sl = sizeof(c->cred);
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 ||
	    uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &sl) < 0) {
		conn_close(c);   /* no peer credentials: no service */
		return;
	}
	if (c->rejected) {
		send_error(c, 503, err_code_name(ERR_UNAVAILABLE), "too many connections");
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	c->reading = true;
	idle_restart(c);
}

/* ---- listening --------------------------------------------------------------------- */

/* A socket file at path: refuse a live one, unlink a stale one. Nothing there is fine. */
static int clear_stale(const char *path, struct err *e)
{
	struct stat st;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, -errno, "socket", "cannot stat %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return err_set(e, ERR_CONFLICT, "socket", "%s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket", "socket: %s", strerror(errno));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? errno : 0;
	close(fd);
	if (r == 0 || r == EAGAIN || r == EINPROGRESS)
		return err_set(e, ERR_CONFLICT, "socket", "another daemon is listening on %s", path);
	if (r != ECONNREFUSED)
		return err_set(e, -r, "socket", "cannot probe %s: %s", path, strerror(r));
	if (unlink(path) < 0 && errno != ENOENT)
		return err_set(e, -errno, "socket", "cannot remove stale %s: %s", path, strerror(errno));
	return 0;
}

/* Bind and listen on a fresh socket at path with the given mode; returns the fd. */
static int bind_path(const char *path, unsigned mode, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, r;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, -errno, "socket", "socket: %s", strerror(errno));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -EADDRINUSE)
			err_set(e, ERR_CONFLICT, "socket", "another daemon is listening on %s", path);
		else
			err_set(e, r, "socket", "cannot bind %s: %s", path, strerror(-r));
		close(fd);
		return r == -EADDRINUSE ? ERR_CONFLICT : r;
	}
	if (chmod(path, mode) < 0) {
		r = err_set(e, -errno, "socket", "cannot chmod %s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		r = err_set(e, -errno, "socket", "cannot listen on %s: %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	unlink(path);
	close(fd);
	return r;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;
	s->listener_closed = true;
	server_maybe_done(s);
}

/* Only when setting up the pipe failed after uv_pipe_init: the struct goes with it. */
static void on_failed_listener_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;
	free(s->path);
	free(s);
}

int http_server_start(uv_loop_t *loop, const char *path, int fd, const struct http_limits *lim,
		      http_handler_cb cb, void *ud, struct http_server **out, struct err *e)
{
	struct http_server *s = NULL;
	int r, lfd = fd;

	assert(loop && path && lim && cb && out);
	assert(lim->max_header_bytes > 0 && lim->max_body_bytes > 0 && lim->max_connections > 0);
	if (fd < 0 && strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return err_set(e, ERR_INVALID, "socket", "socket path %s is too long", path);
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		r = err_set(e, -ENOMEM, "socket", "out of memory");
		goto fail;
	}
	s->loop = loop;
	s->lim = *lim;
	s->cb = cb;
	s->ud = ud;
	s->inherited = fd >= 0;
	if (fd < 0) {
		r = clear_stale(path, e);
		if (r < 0)
			goto fail;
		lfd = bind_path(path, lim->socket_mode, e);
		if (lfd < 0) {
			r = lfd;
			goto fail;
		}
	}
	uv_pipe_init(loop, &s->listener, 0);
	s->listener.data = s;
	r = uv_pipe_open(&s->listener, lfd);
	if (r < 0) {   /* the pipe did not take lfd over */
		if (!s->inherited)
			close(lfd);
	} else {       /* it did: closing the pipe closes lfd, inherited or not */
		r = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
	}
	if (r < 0) {
		r = err_set(e, r == UV_ENOMEM ? -ENOMEM : -EIO, "socket", "cannot listen on %s: %s",
			    path, uv_strerror(r));
		if (!s->inherited)
			unlink(path);
		uv_close((uv_handle_t *)&s->listener, on_failed_listener_closed);
		return r;
	}
	*out = s;
	return 0;
fail:
	if (s)
		free(s->path);
	free(s);
	return r;
}

void http_server_stop(struct http_server *s, void (*done)(void *ud), void *ud)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	s->done = done;
	s->done_ud = ud;
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
	if (!s->inherited)
		unlink(s->path);
	for (struct http_conn *c = s->conns; c; c = c->next) {
		if (c->owed || c->write_pending)
			c->close_after = true;   /* answered, then closed */
		else
			conn_close(c);
	}
	server_maybe_done(s);
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	assert(s->finished && "http_server_free before done");
	free(s->path);
	free(s);
}
