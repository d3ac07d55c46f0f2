/*
 * test_scrape — the exporter scraper against real loopback HTTP servers on the same loop.
 *
 * Each test runs in its own forked process (Check's default). The server is a small libuv
 * TCP server on 127.0.0.1:0 in the test's loop: it reads one request, picks a behaviour from
 * the path and answers (then closes the connection):
 *   /metrics   the real dcgm-exporter sample from tests/data/telemetry
 *   /ok        "ok\n"               /empty   200 with no body
 *   /500       500 "oops\n"         /redirect  302 to /ok
 *   /garbage   bytes that are not HTTP
 *   /hang      accepts, reads, never answers
 *   /big       Content-Length: 100 MB, then streams zeros
 *   /stream    100 MB of zeros without a length (read until close)
 *   /drip      Content-Length: 60, then one byte per second
 *   /slow      "ok\n" after 40 ms (the concurrency test counts simultaneous connections)
 * A closed port stands for connection refused. A 10 ms uv_timer ticks throughout: it keeps
 * uv_run(UV_RUN_ONCE) returning for the predicates and shows the loop is never blocked.
 * Every test ends with finish(): scrape_close, wait for done, close the server and assert
 * uv_loop_close() == 0.
 */
#include "../../daemon/telemetry/scrape.h"

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#define MAX_RECS 4096
#define MAX_TARGETS 256
#define HUGE_BODY ((uint64_t)100 << 20)
#define CHUNK 65536

enum route { SRV_NONE, SRV_METRICS, SRV_OK, SRV_EMPTY, SRV_500, SRV_REDIRECT, SRV_GARBAGE, SRV_HANG, SRV_BIG,
	     SRV_STREAM, SRV_DRIP, SRV_SLOW, SRV_404, _SRV_MAX };

static const char *const route_path[_SRV_MAX] = {
	[SRV_METRICS] = "/metrics", [SRV_OK] = "/ok", [SRV_EMPTY] = "/empty", [SRV_500] = "/500",
	[SRV_REDIRECT] = "/redirect", [SRV_GARBAGE] = "/garbage", [SRV_HANG] = "/hang", [SRV_BIG] = "/big",
	[SRV_STREAM] = "/stream", [SRV_DRIP] = "/drip", [SRV_SLOW] = "/slow",
};

struct sconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	int handles;
	bool closing;
	char req[4096];
	size_t rlen;
	enum route route;
	uv_write_t w;
	char head[256];
	uint64_t sent, total;
	int drip_left;
	struct sconn *prev, *next;
};

struct rec {
	uint32_t target;
	int rc;
	long status;
	size_t len;
	uint64_t dur, at;
	bool body_is_sample;
	char error[200];
	char body[16];
};

static struct fixture {
	uv_loop_t loop;
	uv_tcp_t listener;
	int port;
	struct sconn *conns;
	int open_conns, max_open, accepted;
	int hits[_SRV_MAX];
	uint64_t stream_sent;

	uv_timer_t tick;
	uint64_t ticks, last_tick, max_gap;

	struct scrape *s;
	struct scrape_options opt;
	uint64_t t0;
	bool close_called, done;
	int done_calls;
	bool result_after_close;
	uint32_t max_in_flight_seen;

	/* hooks run from the result callback */
	uint32_t remove_target;       /* remove it after its remove_after-th result */
	int remove_after;
	bool close_in_callback;

	struct rec recs[MAX_RECS];
	int nrec;
	int per_target[MAX_TARGETS];

	char *sample;
	size_t sample_len;
} F;

static char zeros[CHUNK];

/* ---- the loopback server ----------------------------------------------------------- */

static void sconn_handle_closed(uv_handle_t *h)
{
	struct sconn *c = h->data;
	if (--c->handles == 0)
		free(c);
}

static void sconn_close(struct sconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	F.open_conns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		F.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, sconn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, sconn_handle_closed);
}

static void on_written_close(uv_write_t *w, int status)
{
	sconn_close(w->data);
}

static void write_then_close(struct sconn *c, const char *head, const char *body, size_t len)
{
	uv_buf_t b[2];
	int n = 0;

	snprintf(c->head, sizeof(c->head), "%s", head);
	b[n++] = uv_buf_init(c->head, (unsigned)strlen(c->head));
	if (len)
		b[n++] = uv_buf_init((char *)body, (unsigned)len);
	c->w.data = c;
	if (uv_write(&c->w, (uv_stream_t *)&c->tcp, b, n, on_written_close) < 0)
		sconn_close(c);
}

static void on_chunk_written(uv_write_t *w, int status);

static void write_chunk(struct sconn *c)
{
	uv_buf_t b = uv_buf_init(zeros, CHUNK);
	c->w.data = c;
	if (uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written) < 0)
		sconn_close(c);
}

static void on_chunk_written(uv_write_t *w, int status)
{
	struct sconn *c = w->data;

	if (status < 0 || c->closing) {
		sconn_close(c);
		return;
	}
	c->sent += CHUNK;
	if (c->sent > F.stream_sent)
		F.stream_sent = c->sent;
	if (c->sent >= c->total)
		sconn_close(c);
	else
		write_chunk(c);
}

static void on_head_written(uv_write_t *w, int status)
{
	struct sconn *c = w->data;
	if (status < 0 || c->closing)
		sconn_close(c);
	else
		write_chunk(c);
}

static void on_drip_written(uv_write_t *w, int status)
{
	if (status < 0)
		sconn_close(w->data);
}

static void on_drip(uv_timer_t *t)
{
	struct sconn *c = t->data;
	uv_buf_t b = uv_buf_init("x", 1);

	if (c->closing || c->drip_left-- <= 0)
		return;
	c->w.data = c;
	if (uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_drip_written) < 0)
		sconn_close(c);
}

static void on_slow(uv_timer_t *t)
{
	struct sconn *c = t->data;
	write_then_close(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", "ok\n", 3);
}

static void respond(struct sconn *c)
{
	char head[256];
	uv_buf_t b;

	F.hits[c->route]++;
	switch (c->route) {
	case SRV_METRICS:
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", F.sample_len);
		write_then_close(c, head, F.sample, F.sample_len);
		break;
	case SRV_OK:
		write_then_close(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", "ok\n", 3);
		break;
	case SRV_EMPTY:
		write_then_close(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", NULL, 0);
		break;
	case SRV_500:
		write_then_close(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n"
				 "Connection: close\r\n\r\n", "oops\n", 5);
		break;
	case SRV_REDIRECT:
		write_then_close(c, "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n"
				 "Connection: close\r\n\r\n", NULL, 0);
		break;
	case SRV_GARBAGE:
		write_then_close(c, "\x01\x02 this is not HTTP at all\r\n\r\n", NULL, 0);
		break;
	case SRV_HANG:
		break;
	case SRV_BIG:
	case SRV_STREAM:
		if (c->route == SRV_BIG)
			snprintf(c->head, sizeof(c->head), "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n",
				 (unsigned long long)HUGE_BODY);
		else
			snprintf(c->head, sizeof(c->head), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
		c->total = HUGE_BODY;
		b = uv_buf_init(c->head, (unsigned)strlen(c->head));
		c->w.data = c;
		if (uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_head_written) < 0)
			sconn_close(c);
		break;
	case SRV_DRIP:
		snprintf(c->head, sizeof(c->head), "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n");
		b = uv_buf_init(c->head, (unsigned)strlen(c->head));
		c->w.data = c;
		c->drip_left = 60;
		if (uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_drip_written) < 0)
			sconn_close(c);
		else
			uv_timer_start(&c->timer, on_drip, 1000, 1000);
		break;
	case SRV_SLOW:
		uv_timer_start(&c->timer, on_slow, 40, 0);
		break;
	default:
		write_then_close(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
				 NULL, 0);
		break;
	}
}

static void on_srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char discard[4096];
	struct sconn *c = h->data;

	if (c->route == SRV_NONE && c->rlen < sizeof(c->req) - 1)
		*buf = uv_buf_init(c->req + c->rlen, (unsigned)(sizeof(c->req) - 1 - c->rlen));
	else
		*buf = uv_buf_init(discard, sizeof(discard));
}

static void on_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct sconn *c = st->data;

	if (n < 0) {
		sconn_close(c);
		return;
	}
	if (c->route != SRV_NONE || n == 0)
		return;
	c->rlen += (size_t)n;
	c->req[c->rlen] = '\0';
	if (!strstr(c->req, "\r\n\r\n"))
		return;
	c->route = SRV_404;
	for (int r = 1; r < _SRV_MAX; r++) {
		size_t l = route_path[r] ? strlen(route_path[r]) : 0;
		if (l && strncmp(c->req, "GET ", 4) == 0 && strncmp(c->req + 4, route_path[r], l) == 0 &&
		    c->req[4 + l] == ' ')
			c->route = (enum route)r;
	}
	respond(c);
}

static void on_srv_conn(uv_stream_t *l, int status)
{
	struct sconn *c;

	ck_assert_int_eq(status, 0);
	c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	uv_tcp_init(&F.loop, &c->tcp);
	uv_timer_init(&F.loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->next = F.conns;
	if (F.conns)
		F.conns->prev = c;
	F.conns = c;
	ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	F.accepted++;
	if (++F.open_conns > F.max_open)
		F.max_open = F.open_conns;
	if (F.s) {
		struct scrape_stats st;
		scrape_stats(F.s, &st);
		if (st.in_flight > F.max_in_flight_seen)
			F.max_in_flight_seen = st.in_flight;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_srv_alloc, on_srv_read);
}

static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_now(&F.loop);
	if (F.ticks && now - F.last_tick > F.max_gap)
		F.max_gap = now - F.last_tick;
	F.last_tick = now;
	F.ticks++;
}

static char *load_sample(size_t *len)
{
	const char *dir = getenv("JOULE_TEST_DATA");
	char path[512];
	FILE *f;
	char *p;
	long n;

	ck_assert_msg(dir, "JOULE_TEST_DATA is not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/telemetry/dcgm-exporter-sample.prom", dir);
	f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void setup(void)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	memset(&F, 0, sizeof(F));
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(uv_loop_init(&F.loop), 0);
	uv_tcp_init(&F.loop, &F.listener);
	uv_ip4_addr("127.0.0.1", 0, &a);
	ck_assert_int_eq(uv_tcp_bind(&F.listener, (const struct sockaddr *)&a, 0), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&F.listener, 512, on_srv_conn), 0);
	uv_tcp_getsockname(&F.listener, (struct sockaddr *)&ss, &len);
	F.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_timer_init(&F.loop, &F.tick);
	uv_timer_start(&F.tick, on_tick, 10, 10);
	F.sample = load_sample(&F.sample_len);
	scrape_options_default(&F.opt);
}

static void teardown(void)
{
	free(F.sample);
}

/* ---- scraper side ------------------------------------------------------------------ */

static void url_for(char *buf, size_t n, enum route r)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", F.port, route_path[r]);
}

/* A port nothing listens on: bound once, then closed. */
static int closed_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void on_result(void *ud, uint32_t target, const struct scrape_result *r)
{
	struct scrape_stats st;
	struct rec *c;

	ck_assert_ptr_eq(ud, &F);
	if (F.close_called)
		F.result_after_close = true;
	ck_assert_int_lt(F.nrec, MAX_RECS);
	c = &F.recs[F.nrec++];
	c->target = target;
	c->rc = r->rc;
	c->status = r->http_status;
	c->len = r->len;
	c->dur = r->duration_ms;
	c->at = uv_now(&F.loop) - F.t0;
	ck_assert_ptr_nonnull(r->body);
	ck_assert_int_eq(r->body[r->len], '\0');
	c->body_is_sample = r->len == F.sample_len && memcmp(r->body, F.sample, r->len) == 0;
	snprintf(c->body, sizeof(c->body), "%s", r->body);
	if (r->rc < 0)
		ck_assert_ptr_nonnull(r->error);
	snprintf(c->error, sizeof(c->error), "%s", r->error ? r->error : "");
	if (target < MAX_TARGETS)
		F.per_target[target]++;

	scrape_stats(F.s, &st);
	if (st.in_flight > F.max_in_flight_seen)
		F.max_in_flight_seen = st.in_flight;
	if (F.remove_target == target && F.per_target[target] == F.remove_after)
		ck_assert_int_eq(scrape_set_target(F.s, target, NULL), 0);
	if (F.close_in_callback && !F.close_called) {
		F.close_called = true;
		scrape_close(F.s, NULL, NULL);
	}
}

static void on_closed(void *ud)
{
	ck_assert_ptr_eq(ud, &F);
	F.done = true;
	F.done_calls++;
}

static void start(void)
{
	struct err e = {0};
	int r = scrape_new(&F.loop, &F.opt, 42, on_result, &F, &F.s, &e);
	ck_assert_msg(r == 0, "scrape_new: %d %s", r, e.message);
	uv_update_time(&F.loop);
	F.t0 = uv_now(&F.loop);
}

static void add(uint32_t id, enum route r)
{
	char url[128];
	url_for(url, sizeof(url), r);
	ck_assert_int_eq(scrape_set_target(F.s, id, url), 0);
}

/* Run the loop until pred() holds or max_ms passed; returns pred(). */
static bool run_until(bool (*pred)(void), uint64_t max_ms)
{
	uv_update_time(&F.loop);
	uint64_t end = uv_now(&F.loop) + max_ms;
	while (!pred() && uv_now(&F.loop) < end)
		uv_run(&F.loop, UV_RUN_ONCE);
	return pred();
}

static bool never(void) { return false; }
static bool have_one(void) { return F.nrec >= 1; }
static bool is_done(void) { return F.done; }
static bool conns_gone(void) { return F.open_conns == 0; }
static bool hang_accepted(void) { return F.hits[SRV_HANG] >= 1; }

static void run_for(uint64_t ms)
{
	run_until(never, ms);
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);   /* only reached if something leaked: then loop_close fails */
}

/* Close the scraper, wait for done, close the server; uv_loop_close must succeed. */
static void finish(void)
{
	if (!F.close_called) {
		F.close_called = true;
		scrape_close(F.s, on_closed, &F);
	}
	uv_close((uv_handle_t *)&F.listener, NULL);
	uv_close((uv_handle_t *)&F.tick, NULL);
	while (F.conns)
		sconn_close(F.conns);
	ck_assert_int_eq(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
	int r = uv_loop_close(&F.loop);
	if (r != 0)
		uv_walk(&F.loop, on_walk_close, NULL);
	ck_assert_int_eq(r, 0);
	ck_assert(!F.result_after_close);
	scrape_free(F.s);
	F.s = NULL;
}

/* ---- tcase results: one target per row, its first result -------------------------- */

struct row {
	const char *name;
	enum route route;             /* SRV_NONE: a closed port */
	int rc;
	long status;                  /* -1: any */
	const char *error;            /* substring of the error text, NULL: any */
	uint32_t timeout_ms;
	uint32_t min_ms, max_ms;      /* duration_ms range */
	long len;                     /* -1: any */
	bool sample;
};

static const struct row rows[] = {
	{"dcgm page arrives whole", SRV_METRICS, 0, 200, NULL, 5000, 0, 1000, -1, true},
	{"empty 200 is ok", SRV_EMPTY, 0, 200, NULL, 5000, 0, 1000, 0, false},
	{"500 is a failed result with its status", SRV_500, -EREMOTEIO, 500, "HTTP 500", 5000, 0, 1000, 5, false},
	{"redirect is not followed", SRV_REDIRECT, -EREMOTEIO, 302, "HTTP 302", 5000, 0, 1000, 0, false},
	{"garbage is a protocol error", SRV_GARBAGE, -EPROTO, -1, NULL, 5000, 0, 1000, -1, false},
	{"hang times out within timeout_ms", SRV_HANG, -ETIMEDOUT, 0, "timed out", 500, 490, 560, 0, false},
	{"declared 100 MB is refused at max_body", SRV_BIG, -EFBIG, -1, "body over 8388608 bytes", 5000, 0, 2000, -1, false},
	{"streamed 100 MB is aborted at max_body", SRV_STREAM, -EFBIG, -1, "body over 8388608 bytes", 5000, 0, 3000, -1, false},
	{"slow drip is aborted by the low-speed limit", SRV_DRIP, -ETIMEDOUT, 200, "too slow", 10000, 900, 4000, -1, false},
	{"closed port is connection refused", SRV_NONE, -ECONNREFUSED, 0, NULL, 5000, 0, 1000, 0, false},
};

START_TEST(each_target_gets_the_result_its_server_deserves)
{
	const struct row *w = &rows[_i];
	char url[128];
	struct scrape_stats st;

	F.opt.interval_ms = 200;
	F.opt.jitter_ms = 0;          /* schedule wakeups at +200 ms steps: a result left
				       * undrained on curl's timer path would show up late */
	F.opt.timeout_ms = w->timeout_ms;
	F.opt.low_speed_bytes = 100;
	F.opt.low_speed_time_s = 1;
	start();
	if (w->route == SRV_NONE)
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", closed_port());
	else
		url_for(url, sizeof(url), w->route);
	ck_assert_int_eq(scrape_set_target(F.s, 7, url), 0);
	ck_assert_msg(run_until(have_one, 200 + w->max_ms + 1000), "%s: no result", w->name);

	const struct rec *c = &F.recs[0];
	ck_assert_uint_eq(c->target, 7);
	ck_assert_msg(c->rc == w->rc, "%s: rc %d, want %d (%s)", w->name, c->rc, w->rc, c->error);
	if (w->status >= 0)
		ck_assert_msg(c->status == w->status, "%s: status %ld", w->name, c->status);
	if (w->error)
		ck_assert_msg(strstr(c->error, w->error), "%s: error \"%s\"", w->name, c->error);
	if (w->rc == 0)
		ck_assert_str_eq(c->error, "");
	ck_assert_msg(c->dur >= w->min_ms && c->dur <= w->max_ms, "%s: took %llu ms", w->name,
		      (unsigned long long)c->dur);
	ck_assert_uint_le(c->at, 200 + w->max_ms);
	if (w->len >= 0)
		ck_assert_uint_eq(c->len, (size_t)w->len);
	if (w->sample)
		ck_assert(c->body_is_sample);
	if (w->route == SRV_500)
		ck_assert_str_eq(c->body, "oops\n");

	scrape_stats(F.s, &st);
	ck_assert_uint_eq(w->rc == 0 ? st.ok : st.failed, 1);
	ck_assert_uint_le(st.bytes, F.opt.max_body);
	if (w->route == SRV_STREAM || w->route == SRV_BIG) {
		/* memory and bandwidth stayed bounded: nowhere near the 100 MB offered */
		ck_assert_uint_le(c->len, F.opt.max_body);
		ck_assert_msg(F.stream_sent < ((uint64_t)40 << 20), "server sent %llu bytes",
			      (unsigned long long)F.stream_sent);
	}
	finish();
}
END_TEST

START_TEST(loop_keeps_serving_other_work_while_a_transfer_hangs)
{
	F.opt.interval_ms = 100;
	F.opt.timeout_ms = 800;
	start();
	add(1, SRV_HANG);
	ck_assert(run_until(hang_accepted, 1000));
	uint64_t ticks = F.ticks;
	F.max_gap = 0;
	ck_assert(run_until(have_one, 2000));
	ck_assert_int_eq(F.recs[0].rc, -ETIMEDOUT);
	/* ~75 ticks of 10 ms while curl waited; none late by much */
	ck_assert_uint_ge(F.ticks - ticks, 50);
	ck_assert_uint_le(F.max_gap, 60);
	finish();
}
END_TEST

/* ---- tcase schedule ---------------------------------------------------------------- */

static bool have_nine(void) { return F.nrec >= 9; }

START_TEST(interval_200ms_gives_n_scrapes_in_about_n_intervals)
{
	F.opt.interval_ms = 200;          /* jitter: 20 ms (interval / 10) */
	start();
	add(1, SRV_OK);
	ck_assert(run_until(have_nine, 3000));
	ck_assert_uint_lt(F.recs[0].at, 200 + 100);
	for (int i = 1; i < 9; i++) {
		uint64_t gap = F.recs[i].at - F.recs[i - 1].at;
		ck_assert_msg(gap >= 170 && gap <= 260, "gap %d: %llu ms", i, (unsigned long long)gap);
		ck_assert_int_eq(F.recs[i].rc, 0);
	}
	uint64_t span = F.recs[8].at - F.recs[0].at;    /* 8 intervals */
	ck_assert_msg(span >= 8 * 200 - 100 && span <= 8 * 200 + 150, "8 intervals took %llu ms",
		      (unsigned long long)span);
	finish();
}
END_TEST

static uint32_t spread_n;
static bool all_have_one(void)
{
	for (uint32_t i = 0; i < spread_n; i++)
		if (!F.per_target[i])
			return false;
	return true;
}

START_TEST(first_scrapes_of_many_targets_spread_over_the_interval)
{
	uint64_t first[200] = {0};
	int quarter[4] = {0};

	spread_n = 200;
	F.opt.interval_ms = 800;
	start();
	for (uint32_t i = 0; i < spread_n; i++)
		add(i, SRV_OK);
	ck_assert(run_until(all_have_one, 3000));
	for (int i = 0; i < F.nrec; i++)
		if (F.recs[i].target < spread_n && !first[F.recs[i].target])
			first[F.recs[i].target] = F.recs[i].at + 1;
	for (uint32_t i = 0; i < spread_n; i++) {
		uint64_t at = first[i] - 1;
		ck_assert_msg(at < 800 + 100, "target %u first scraped at %llu ms", i, (unsigned long long)at);
		quarter[at * 4 / 900 < 4 ? at * 4 / 900 : 3]++;
	}
	for (int q = 0; q < 4; q++)
		ck_assert_msg(quarter[q] >= 25 && quarter[q] <= 80, "quarter %d has %d of 200", q, quarter[q]);
	finish();
}
END_TEST

static bool hundred_have_one(void)
{
	spread_n = 100;
	return all_have_one();
}

START_TEST(concurrency_cap_holds_with_100_targets_and_4_slots)
{
	struct scrape_stats st;

	F.opt.interval_ms = 200;
	F.opt.max_concurrency = 4;
	start();
	for (uint32_t i = 0; i < 100; i++)
		add(i, SRV_SLOW);
	ck_assert(run_until(hundred_have_one, 8000));
	ck_assert_int_le(F.max_open, 4);
	ck_assert_int_eq(F.max_open, 4);          /* the cap was used, not just respected */
	ck_assert_uint_le(F.max_in_flight_seen, 4);
	for (int i = 0; i < F.nrec; i++)
		ck_assert_int_eq(F.recs[i].rc, 0);
	scrape_stats(F.s, &st);
	ck_assert_uint_le(st.in_flight, 4);
	ck_assert_uint_gt(st.skipped, 0);        /* demand was 500/s against ~80/s */
	ck_assert_uint_le(st.queued, 100);
	finish();
}
END_TEST

START_TEST(removing_a_target_from_its_callback_stops_its_scrapes)
{
	struct scrape_stats st;

	F.opt.interval_ms = 100;
	F.remove_target = 1;
	F.remove_after = 2;
	start();
	add(1, SRV_OK);
	add(2, SRV_OK);
	run_for(900);
	ck_assert_int_eq(F.per_target[1], 2);
	ck_assert_int_ge(F.per_target[2], 6);
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.targets, 1);
	finish();
}
END_TEST

START_TEST(removing_a_target_in_flight_cancels_it_without_a_result)
{
	struct scrape_stats st;

	F.opt.interval_ms = 100;
	F.opt.timeout_ms = 3000;
	start();
	add(1, SRV_HANG);
	ck_assert(run_until(hang_accepted, 1000));
	ck_assert_int_eq(scrape_set_target(F.s, 1, ""), 0);
	ck_assert_int_eq(scrape_set_target(F.s, 1, NULL), 0);    /* absent: still fine */
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.in_flight, 0);
	ck_assert_uint_eq(st.cancelled, 1);
	ck_assert_uint_eq(st.targets, 0);
	ck_assert(run_until(conns_gone, 1000));     /* the server saw the connection close */
	run_for(300);
	ck_assert_int_eq(F.nrec, 0);
	ck_assert_int_eq(F.accepted, 1);
	finish();
}
END_TEST

START_TEST(target_in_flight_when_due_again_is_skipped)
{
	struct scrape_stats st;

	F.opt.interval_ms = 150;
	F.opt.jitter_ms = 0;
	F.opt.timeout_ms = 700;
	start();
	add(1, SRV_HANG);
	ck_assert(run_until(have_one, 1500));
	ck_assert_int_eq(F.recs[0].rc, -ETIMEDOUT);
	scrape_stats(F.s, &st);
	ck_assert_uint_ge(st.skipped, 3);          /* due at +150, +300, +450, +600 */
	ck_assert_int_eq(F.hits[SRV_HANG], 1);       /* never two at once for one target */
	finish();
}
END_TEST

START_TEST(replacing_the_url_cancels_the_old_transfer_and_scrapes_the_new_one)
{
	char url[128];
	struct scrape_stats st;

	F.opt.interval_ms = 200;
	F.opt.timeout_ms = 3000;
	start();
	add(1, SRV_HANG);
	ck_assert(run_until(hang_accepted, 1000));
	add(1, SRV_HANG);                             /* same URL: nothing changes */
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.in_flight, 1);
	url_for(url, sizeof(url), SRV_OK);
	ck_assert_int_eq(scrape_set_target(F.s, 1, url), 0);
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.in_flight, 0);
	ck_assert_uint_eq(st.cancelled, 1);
	ck_assert_uint_eq(st.targets, 1);
	ck_assert(run_until(have_one, 1000));
	ck_assert_int_eq(F.recs[0].rc, 0);
	ck_assert_str_eq(F.recs[0].body, "ok\n");
	ck_assert_int_eq(F.hits[SRV_OK], 1);
	finish();
}
END_TEST

/* ---- tcase lifecycle --------------------------------------------------------------- */

static bool eight_open(void) { return F.open_conns >= 8 && F.hits[SRV_DRIP] >= 4; }

START_TEST(close_in_the_middle_of_transfers_closes_every_handle)
{
	struct scrape_stats st;

	F.opt.interval_ms = 100;
	F.opt.max_concurrency = 8;
	start();
	for (uint32_t i = 0; i < 4; i++)
		add(i, SRV_HANG);
	for (uint32_t i = 4; i < 8; i++)
		add(i, SRV_DRIP);
	ck_assert(run_until(eight_open, 2000));
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.in_flight, 8);
	F.close_called = true;
	scrape_close(F.s, on_closed, &F);
	scrape_close(F.s, on_closed, &F);            /* idempotent */
	ck_assert(!F.done);                          /* never from inside the call */
	ck_assert_int_eq(scrape_set_target(F.s, 99, "http://127.0.0.1:1/"), -ECANCELED);
	ck_assert(run_until(is_done, 1000));
	ck_assert(run_until(conns_gone, 1000));      /* every transfer's socket was closed */
	scrape_stats(F.s, &st);
	ck_assert_uint_eq(st.in_flight, 0);
	ck_assert_uint_eq(st.cancelled, 8);
	ck_assert_int_eq(F.nrec, 0);
	finish();
	ck_assert_int_eq(F.done_calls, 1);
}
END_TEST

START_TEST(close_from_inside_the_callback_drops_the_other_results)
{
	F.opt.interval_ms = 50;
	F.close_in_callback = true;
	start();
	for (uint32_t i = 0; i < 10; i++)
		add(i, SRV_OK);
	ck_assert(run_until(have_one, 1000));
	run_for(200);
	ck_assert_int_eq(F.nrec, 1);
	finish();
}
END_TEST

START_TEST(rejects_bad_options_and_urls)
{
	struct scrape_options o;
	struct scrape *s = NULL;
	struct err e = {0};
	char url[SCRAPE_URL_MAX + 64];

	scrape_options_default(&o);
	o.interval_ms = 200;                       /* jitter stays auto: 20 ms */
	ck_assert_int_eq(scrape_new(&F.loop, &o, 1, on_result, &F, &s, &e), 0);
	scrape_close(s, NULL, NULL);
	uv_run(&F.loop, UV_RUN_NOWAIT);
	scrape_free(s);
	s = NULL;

	o.jitter_ms = 101;
	ck_assert_int_eq(scrape_new(&F.loop, &o, 1, on_result, &F, &s, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "jitter_ms");
	ck_assert_ptr_null(s);
	o.jitter_ms = 0;
	o.max_concurrency = SCRAPE_MAX_CONCURRENCY + 1;
	ck_assert_int_eq(scrape_new(&F.loop, &o, 1, on_result, &F, &s, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "max_concurrency");

	F.opt.max_targets = 2;
	start();
	ck_assert_int_eq(scrape_set_target(F.s, 1, "ftp://127.0.0.1/metrics"), ERR_INVALID);
	ck_assert_int_eq(scrape_set_target(F.s, 1, "not a url"), ERR_INVALID);
	ck_assert_int_eq(scrape_set_target(F.s, 1, "http://"), ERR_INVALID);
	ck_assert_int_eq(scrape_set_target(F.s, 1, "file:///etc/passwd"), ERR_INVALID);
	memset(url, 'a', sizeof(url));
	memcpy(url, "http://h/", 9);
	url[sizeof(url) - 1] = '\0';
	ck_assert_int_eq(scrape_set_target(F.s, 1, url), ERR_INVALID);
	ck_assert_int_eq(scrape_set_target(F.s, 1, "http://127.0.0.1:9/a"), 0);
	ck_assert_int_eq(scrape_set_target(F.s, 2, "HTTPS://127.0.0.1:9/b"), 0);
	ck_assert_int_eq(scrape_set_target(F.s, 3, "http://127.0.0.1:9/c"), ERR_TOO_MANY);
	ck_assert_int_eq(scrape_set_target(F.s, 2, "http://127.0.0.1:9/d"), 0);  /* replace */
	finish();
}
END_TEST

START_TEST(reports_whether_libcurl_resolves_names_asynchronously)
{
	struct scrape_stats st;
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

	start();
	scrape_stats(F.s, &st);
	ck_assert(st.async_dns == !!(vi->features & CURL_VERSION_ASYNCHDNS));
	finish();
}
END_TEST

START_TEST(free_before_done_aborts)
{
	start();
	scrape_close(F.s, NULL, NULL);
	scrape_free(F.s);
}
END_TEST

static Suite *scrape_suite(void)
{
	Suite *s = suite_create("scrape");
	TCase *t;

	t = tcase_create("results");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_loop_test(t, each_target_gets_the_result_its_server_deserves, 0,
			    (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(t, loop_keeps_serving_other_work_while_a_transfer_hangs);
	suite_add_tcase(s, t);

	t = tcase_create("schedule");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, interval_200ms_gives_n_scrapes_in_about_n_intervals);
	tcase_add_test(t, first_scrapes_of_many_targets_spread_over_the_interval);
	tcase_add_test(t, concurrency_cap_holds_with_100_targets_and_4_slots);
	tcase_add_test(t, removing_a_target_from_its_callback_stops_its_scrapes);
	tcase_add_test(t, removing_a_target_in_flight_cancels_it_without_a_result);
	tcase_add_test(t, target_in_flight_when_due_again_is_skipped);
	tcase_add_test(t, replacing_the_url_cancels_the_old_transfer_and_scrapes_the_new_one);
	suite_add_tcase(s, t);

	t = tcase_create("lifecycle");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 20);
	tcase_add_test(t, close_in_the_middle_of_transfers_closes_every_handle);
	tcase_add_test(t, close_from_inside_the_callback_drops_the_other_results);
	tcase_add_test(t, rejects_bad_options_and_urls);
	tcase_add_test(t, reports_whether_libcurl_resolves_names_asynchronously);
	tcase_add_test_raise_signal(t, free_before_done_aborts, SIGABRT);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(scrape_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
