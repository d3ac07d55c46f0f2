/*
 * test_http — the Unix-socket HTTP/1.1 server against a real libuv loop.
 *
 * Each test runs in its own forked process (Check's default). The server runs on a loop in
 * the test's main thread; the client is a plain blocking socket in a second thread that
 * records what it saw in the fixture, which the main thread asserts on after joining it.
 * The client steers the loop only through an async handle (respond to a held request,
 * wait until the server holds N connections, finish); no assertion runs off the main
 * thread and no test sleeps except the two that are about a timeout.
 *
 * The handler picks its behaviour from the path: /hold waits for the client's word,
 * /defer answers on the next loop turn, /stophold stops the server and holds, /allow
 * answers 405 with an Allow header, /twice answers twice (a programming error); anything
 * else is echoed at once as JSON.
 */
#include "../../daemon/http/http.h"   /* also found as "http.h" on meson's path */

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

enum { CMD_RESPOND = 1, CMD_WATCH = 2, CMD_FINISH = 4 };

struct resp {
	int status;               /* -1: no complete response */
	char head[2048];
	char body[8192];
};

struct client {
	int fd;
	size_t len;
	char buf[65536];
};

static struct fixture {
	char dir[64];
	char path[100];   /* fits sun_path */
	uv_loop_t loop;
	struct http_limits lim;
	struct http_server *srv;
	uv_async_t async;
	uv_idle_t watch;
	uv_timer_t defer_timer;
	atomic_int cmds;
	sem_t sem;
	uint32_t want_conns;
	bool stop_called, done_fired, finish_seen;

	/* handler side */
	int requests;
	int in_flight, max_in_flight;
	struct http_conn *held;
	const struct http_request *held_req;
	bool respond_wanted;
	struct http_conn *deferred;
	const struct http_request *deferred_req;

	/* client side, asserted after the thread is joined */
	struct resp r[4];
	bool eof[4];
	int connect_errno;
	bool watch_ok;
	long elapsed_ms;
} F;

/* ---- the server side ---------------------------------------------------------------- */

static char *echo(const struct http_request *q, size_t *len)
{
	char *s = NULL;
	int n = asprintf(&s,
			 "{\"n\":%d,\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\","
			 "\"body_len\":%zu,\"body\":\"%s\",\"idem\":\"%s\",\"inm\":\"%s\","
			 "\"uid\":%ld,\"gid\":%ld,\"pid\":%ld,\"conns\":%u}",
			 F.requests, q->method_name, q->path, q->query, q->body_len,
			 q->body_len < 256 ? q->body : "(long)",
			 q->idempotency_key ? q->idempotency_key : "(none)",
			 q->if_none_match ? q->if_none_match : "(none)", (long)q->uid, (long)q->gid,
			 (long)q->pid, http_server_connections(F.srv));
	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return s;
}

static void respond_echo(struct http_conn *c, const struct http_request *q)
{
	size_t len;
	char *body = echo(q, &len);
	http_conn_respond(c, 200, NULL, body, len);
}

static void on_done(void *ud)
{
	F.done_fired = true;
	if (F.finish_seen) {
		uv_close((uv_handle_t *)&F.async, NULL);
		uv_close((uv_handle_t *)&F.watch, NULL);
		uv_close((uv_handle_t *)&F.defer_timer, NULL);
	}
}

static void on_defer_timer(uv_timer_t *t)
{
	struct http_conn *c = F.deferred;
	F.deferred = NULL;
	F.in_flight--;
	respond_echo(c, F.deferred_req);
}

static void respond_held(void)
{
	struct http_conn *c = F.held;
	F.held = NULL;
	F.respond_wanted = false;
	F.in_flight--;
	respond_echo(c, F.held_req);
}

static void handler(void *ud, struct http_conn *c, const struct http_request *q)
{
	F.requests++;
	if (++F.in_flight > F.max_in_flight)
		F.max_in_flight = F.in_flight;
	if (strcmp(q->path, "/hold") == 0 || strcmp(q->path, "/stophold") == 0) {
		if (strcmp(q->path, "/stophold") == 0) {
			F.stop_called = true;
			http_server_stop(F.srv, on_done, NULL);
		}
		F.held = c;
		F.held_req = q;
		if (F.respond_wanted)
			respond_held();
		return;
	}
	if (strcmp(q->path, "/defer") == 0) {
		F.deferred = c;
		F.deferred_req = q;
		uv_timer_start(&F.defer_timer, on_defer_timer, 0, 0);
		return;
	}
	F.in_flight--;
	if (strcmp(q->path, "/allow") == 0) {
		http_conn_respond(c, 405, "Allow: GET, POST\r\n", strdup("{}"), 2);
		return;
	}
	if (strcmp(q->path, "/twice") == 0) {
		unlink(F.path);   /* the abort below skips teardown */
		rmdir(F.dir);
		http_conn_respond(c, 200, NULL, NULL, 0);
		http_conn_respond(c, 200, NULL, NULL, 0);
		return;
	}
	respond_echo(c, q);
}

static void on_watch(uv_idle_t *h)
{
	if (http_server_connections(F.srv) == F.want_conns) {
		uv_idle_stop(h);
		sem_post(&F.sem);
	}
}

static void on_async(uv_async_t *a)
{
	int cmds = atomic_exchange(&F.cmds, 0);

	if (cmds & CMD_RESPOND) {
		if (F.held)
			respond_held();
		else
			F.respond_wanted = true;
	}
	if (cmds & CMD_WATCH)
		uv_idle_start(&F.watch, on_watch);
	if (cmds & CMD_FINISH) {
		F.finish_seen = true;
		F.stop_called = true;
		http_server_stop(F.srv, on_done, NULL);   /* a second call changes nothing */
		if (F.done_fired)
			on_done(NULL);
	}
}

/* ---- the client side (runs in its own thread) ----------------------------------------- */

static void loop_cmd(int cmd)
{
	atomic_fetch_or(&F.cmds, cmd);
	uv_async_send(&F.async);
}

/* Block until the server holds n connections; false after 5 s. */
static bool wait_conns(uint32_t n)
{
	struct timespec ts;

	F.want_conns = n;
	loop_cmd(CMD_WATCH);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	return sem_timedwait(&F.sem, &ts) == 0;
}

static int cl_open(struct client *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};

	c->len = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

static void cl_send(struct client *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void cl_sends(struct client *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Read one complete response into *r (status -1 if the stream ended first). */
static void cl_recv(struct client *c, struct resp *r)
{
	r->status = -1;
	r->head[0] = r->body[0] = '\0';
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end) {
			size_t hl = (size_t)(end - c->buf) + 4, bl = 0;
			char *cl = memmem(c->buf, hl, "Content-Length: ", 16);
			if (cl)
				bl = strtoul(cl + 16, NULL, 10);
			if (c->len >= hl + bl) {
				if (hl >= sizeof(r->head) || bl >= sizeof(r->body))
					return;
				memcpy(r->head, c->buf, hl);
				r->head[hl] = '\0';
				memcpy(r->body, c->buf + hl, bl);
				r->body[bl] = '\0';
				if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
					r->status = -1;
				memmove(c->buf, c->buf + hl + bl, c->len - hl - bl);
				c->len -= hl + bl;
				return;
			}
		}
		if (c->len == sizeof(c->buf))
			return;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0)
			return;
		c->len += (size_t)n;
	}
}

/* True when the server closed the stream with nothing more to read. */
static bool cl_eof(struct client *c)
{
	char b;

	if (c->len > 0)
		return false;
	ssize_t n = recv(c->fd, &b, 1, 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void cl_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void (*client_script)(void);

static void *client_main(void *arg)
{
	client_script();
	loop_cmd(CMD_FINISH);
	return NULL;
}

/* ---- fixture -------------------------------------------------------------------------- */

static void setup(void)
{
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/joule-http-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/joule.sock", F.dir);
	ck_assert_int_eq(uv_loop_init(&F.loop), 0);
	ck_assert_int_eq(sem_init(&F.sem, 0, 0), 0);
	http_limits_default(&F.lim);
	for (int i = 0; i < 4; i++)
		F.r[i].status = -1;
}

static void teardown(void)
{
	unlink(F.path);
	rmdir(F.dir);
	sem_destroy(&F.sem);
}

static int start(int fd, struct err *e)
{
	return http_server_start(&F.loop, F.path, fd, &F.lim, handler, NULL, &F.srv, e);
}

static void start_ok(void)
{
	struct err e = {0};
	int r = start(-1, &e);
	ck_assert_msg(r == 0, "start: %d %s", r, e.message);
}

/* Run the loop with the client script in a thread until the server is stopped. */
static void run(void (*script)(void))
{
	pthread_t th;

	uv_async_init(&F.loop, &F.async, on_async);
	uv_idle_init(&F.loop, &F.watch);
	uv_timer_init(&F.loop, &F.defer_timer);
	client_script = script;
	ck_assert_int_eq(pthread_create(&th, NULL, client_main, NULL), 0);
	ck_assert_int_eq(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert(F.done_fired);
	ck_assert_int_eq(uv_loop_close(&F.loop), 0);   /* every handle was closed */
	http_server_free(F.srv);
	F.srv = NULL;
}

/* A raw socket bound at F.path; listening when asked. */
static int raw_socket_at_path(bool listening)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"

/* One request on a fresh connection into F.r[i]; then, when the server is expected to
 * close, whether it did (else the client hangs up itself). */
static void one_shot_(int i, const char *req, size_t len, bool expect_close)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_send(&c, req, len);
	cl_recv(&c, &F.r[i]);
	if (expect_close)
		F.eof[i] = cl_eof(&c);
	cl_close(&c);
}

static void one_shot(int i, const char *req, size_t len)
{
	one_shot_(i, req, len, false);
}

static void one_shot_closed(int i, const char *req, size_t len)
{
	one_shot_(i, req, len, true);
}

/* ---- requests ------------------------------------------------------------------------- */

static void script_keep_alive(void)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, GET("/first"));
	cl_recv(&c, &F.r[0]);
	cl_sends(&c, GET("/second"));
	cl_recv(&c, &F.r[1]);
	cl_close(&c);
}

START_TEST(keeps_connection_alive_for_a_second_request)
{
	start_ok();
	run(script_keep_alive);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Connection: keep-alive\r\n"));
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Content-Type: application/json\r\n"));
	ck_assert_int_eq(F.r[1].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"n\":2,"));
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"path\":\"/second\""));
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"conns\":1}"));
}
END_TEST

static void script_connection_close(void)
{
	static const char req[] = "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n" GET("/after");
	one_shot_closed(0, req, sizeof(req) - 1);
}

START_TEST(closes_after_answering_a_connection_close_request)
{
	start_ok();
	run(script_connection_close);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Connection: close\r\n"));
	ck_assert(F.eof[0]);
	ck_assert_int_eq(F.requests, 1);   /* the pipelined /after was never handled */
}
END_TEST

static void script_pipelined(void)
{
	static const char req[] = GET("/defer?i=1") GET("/defer?i=2") GET("/defer?i=3");
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, req);
	for (int i = 0; i < 3; i++)
		cl_recv(&c, &F.r[i]);
	cl_close(&c);
}

START_TEST(answers_pipelined_requests_in_order)
{
	start_ok();
	run(script_pipelined);
	for (int i = 0; i < 3; i++) {
		char want[32];
		snprintf(want, sizeof(want), "\"query\":\"i=%d\"", i + 1);
		ck_assert_int_eq(F.r[i].status, 200);
		ck_assert_msg(strstr(F.r[i].body, want), "response %d: %s", i, F.r[i].body);
	}
	ck_assert_int_eq(F.requests, 3);
	ck_assert_int_eq(F.max_in_flight, 1);
}
END_TEST

static void script_chunked(void)
{
	static const char req[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
	one_shot(0, req, sizeof(req) - 1);
}

START_TEST(reassembles_a_chunked_body)
{
	start_ok();
	run(script_chunked);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"method\":\"POST\""));
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"body_len\":11,\"body\":\"hello world\""));
}
END_TEST

static void script_split_body(void)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, "POST /b HTTP/1.1\r\nContent-Le");
	cl_sends(&c, "ngth: 10\r\n\r\n01234");
	cl_sends(&c, "56789");
	cl_recv(&c, &F.r[0]);
	cl_close(&c);
}

START_TEST(reads_a_content_length_body_sent_in_pieces)
{
	start_ok();
	run(script_split_body);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"body_len\":10,\"body\":\"0123456789\""));
}
END_TEST

static void script_percent(void)
{
	static const char req[] = GET("/v1/nodes/a%2Fb%20c?x=%41&y=1");
	one_shot(0, req, sizeof(req) - 1);
}

START_TEST(percent_decodes_the_path_and_keeps_the_query_raw)
{
	start_ok();
	run(script_percent);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"path\":\"/v1/nodes/a/b c\""));
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"query\":\"x=%41&y=1\""));
}
END_TEST

static const char *const bad_targets[] = {"/a%00b", "/a%zz", "/a%4", "/a%"};

static void script_bad_escapes(void)
{
	for (int i = 0; i < 4; i++) {
		char req[128];
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", bad_targets[i]);
		one_shot_closed(i, req, (size_t)n);
	}
}

START_TEST(answers_400_to_a_bad_percent_escape)
{
	start_ok();
	run(script_bad_escapes);
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(F.r[i].status == 400, "%s: %d", bad_targets[i], F.r[i].status);
		ck_assert_ptr_nonnull(strstr(F.r[i].body, "{\"error\":{\"code\":\"malformed\""));
		ck_assert(F.eof[i]);
	}
	ck_assert_int_eq(F.requests, 0);
}
END_TEST

static void script_garbage(void)
{
	static const char req[] = "HELLO\x01 WORLD\r\n\r\n";
	one_shot_closed(0, req, sizeof(req) - 1);
}

START_TEST(answers_400_to_garbage_and_closes)
{
	start_ok();
	run(script_garbage);
	ck_assert_int_eq(F.r[0].status, 400);
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Connection: close\r\n"));
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "{\"error\":{\"code\":\"malformed\",\"message\":\""));
	ck_assert(F.eof[0]);
	ck_assert_int_eq(F.requests, 0);
}
END_TEST

static void script_headers(void)
{
	static const char req[] = "PUT /h HTTP/1.1\r\nidempotency-KEY: k-42\r\n"
				  "IF-NONE-MATCH: etag-7\r\nX-Other: 1\r\n\r\n";
	one_shot(0, req, sizeof(req) - 1);
	one_shot(1, GET("/none"), sizeof(GET("/none")) - 1);
}

START_TEST(passes_idempotency_key_and_if_none_match_whatever_their_case)
{
	start_ok();
	run(script_headers);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"idem\":\"k-42\",\"inm\":\"etag-7\""));
	ck_assert_int_eq(F.r[1].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"idem\":\"(none)\",\"inm\":\"(none)\""));
}
END_TEST

static void script_allow(void)
{
	one_shot(0, GET("/allow"), sizeof(GET("/allow")) - 1);
}

START_TEST(writes_extra_headers_and_the_content_length)
{
	start_ok();
	run(script_allow);
	ck_assert_int_eq(F.r[0].status, 405);
	ck_assert_str_eq(F.r[0].head, "HTTP/1.1 405 Method Not Allowed\r\n"
				      "Content-Type: application/json\r\nContent-Length: 2\r\n"
				      "Allow: GET, POST\r\nConnection: keep-alive\r\n\r\n");
	ck_assert_str_eq(F.r[0].body, "{}");
}
END_TEST

static void script_peer(void)
{
	one_shot(0, GET("/who"), sizeof(GET("/who")) - 1);
}

START_TEST(reports_the_peer_uid)
{
	char want[128];

	start_ok();
	run(script_peer);
	ck_assert_int_eq(F.r[0].status, 200);
	snprintf(want, sizeof(want), "\"uid\":%ld,\"gid\":%ld,\"pid\":%ld,", (long)getuid(),
		 (long)getgid(), (long)getpid());
	ck_assert_msg(strstr(F.r[0].body, want), "%s not in %s", want, F.r[0].body);
}
END_TEST

static void script_twice(void)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, GET("/twice"));
	cl_recv(&c, &F.r[0]);   /* the process aborts meanwhile */
	cl_close(&c);
}

START_TEST(aborts_on_a_second_answer_to_one_request)
{
	ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));   /* the expected assert */
	start_ok();
	run(script_twice);
}
END_TEST

/* ---- limits --------------------------------------------------------------------------- */

/* A GET whose header block (through the blank line) is exactly n bytes. */
static size_t padded_request(char *buf, size_t n)
{
	static const char pre[] = "GET /big HTTP/1.1\r\nX-Pad: ", post[] = "\r\n\r\n";
	size_t pad = n - (sizeof(pre) - 1) - (sizeof(post) - 1);
	memcpy(buf, pre, sizeof(pre) - 1);
	memset(buf + sizeof(pre) - 1, 'a', pad);
	memcpy(buf + sizeof(pre) - 1 + pad, post, sizeof(post) - 1);
	return n;
}

static void script_big_headers(void)
{
	static char buf[20000];
	one_shot(0, buf, padded_request(buf, 16384));
	one_shot_closed(1, buf, padded_request(buf, 16385));
}

START_TEST(answers_431_when_headers_exceed_16_kib)
{
	start_ok();
	run(script_big_headers);
	ck_assert_int_eq(F.r[0].status, 200);   /* exactly the limit passes */
	ck_assert_int_eq(F.r[1].status, 431);
	ck_assert_ptr_nonnull(strstr(F.r[1].head, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	ck_assert_str_eq(F.r[1].body, "{\"error\":{\"code\":\"headers_too_large\","
				      "\"message\":\"request line and headers over 16384 bytes\"}}");
	ck_assert(F.eof[1]);
	ck_assert_int_eq(F.requests, 1);
}
END_TEST

static void script_huge_headers(void)
{
	static char buf[100 * 1024];
	one_shot_closed(0, buf, padded_request(buf, sizeof(buf)));
}

START_TEST(answers_431_when_the_parser_ceiling_comes_first)
{
	F.lim.max_header_bytes = 1024 * 1024;   /* above http_parser's own 80 KiB */
	start_ok();
	run(script_huge_headers);
	ck_assert_int_eq(F.r[0].status, 431);
	ck_assert(F.eof[0]);
	ck_assert_int_eq(F.requests, 0);
}
END_TEST

static void script_oversized_body(void)
{
	static const char req[] = "POST /up HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n";
	one_shot_closed(0, req, sizeof(req) - 1);   /* not one byte of the body is sent */
}

START_TEST(answers_413_before_reading_an_oversized_body)
{
	start_ok();
	run(script_oversized_body);
	ck_assert_int_eq(F.r[0].status, 413);
	ck_assert_str_eq(F.r[0].body, "{\"error\":{\"code\":\"payload_too_large\","
				      "\"message\":\"request body over 1048576 bytes\"}}");
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Connection: close\r\n"));
	ck_assert(F.eof[0]);
	ck_assert_int_eq(F.requests, 0);
}
END_TEST

static void script_oversized_chunks(void)
{
	static const char fits[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "a\r\n0123456789\r\n6\r\n012345\r\n0\r\n\r\n";
	static const char over[] = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "a\r\n0123456789\r\n7\r\n0123456\r\n0\r\n\r\n";
	one_shot(0, fits, sizeof(fits) - 1);
	one_shot_closed(1, over, sizeof(over) - 1);
}

START_TEST(answers_413_when_chunks_add_up_past_the_limit)
{
	F.lim.max_body_bytes = 16;
	start_ok();
	run(script_oversized_chunks);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"body_len\":16,"));
	ck_assert_int_eq(F.r[1].status, 413);
	ck_assert(F.eof[1]);
	ck_assert_int_eq(F.requests, 1);
}
END_TEST

static void script_connection_limit(void)
{
	struct client a, b, c;
	if (cl_open(&a) < 0 || cl_open(&b) < 0)
		return;
	cl_sends(&a, GET("/a"));
	cl_recv(&a, &F.r[0]);
	cl_sends(&b, GET("/b"));
	cl_recv(&b, &F.r[1]);
	if (cl_open(&c) == 0) {
		cl_recv(&c, &F.r[2]);
		F.eof[2] = cl_eof(&c);
		cl_close(&c);
	}
	cl_sends(&a, GET("/a2"));
	cl_recv(&a, &F.r[3]);
	cl_close(&a);
	cl_close(&b);
}

START_TEST(answers_503_above_the_connection_limit)
{
	F.lim.max_connections = 2;
	start_ok();
	run(script_connection_limit);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_int_eq(F.r[1].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"conns\":2}"));
	ck_assert_int_eq(F.r[2].status, 503);
	ck_assert_ptr_nonnull(strstr(F.r[2].body, "{\"error\":{\"code\":\"unavailable\""));
	ck_assert(F.eof[2]);
	ck_assert_int_eq(F.r[3].status, 200);   /* the two counted ones still work */
	ck_assert_ptr_nonnull(strstr(F.r[3].body, "\"conns\":2}"));
}
END_TEST

static void script_idle(void)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	long t0 = now_ms();   /* the server's idle timer starts later than this */
	cl_sends(&c, GET("/x"));
	cl_recv(&c, &F.r[0]);
	F.eof[0] = cl_eof(&c);
	F.elapsed_ms = now_ms() - t0;
	cl_close(&c);
	F.watch_ok = wait_conns(0);
}

START_TEST(closes_idle_connections)
{
	F.lim.idle_timeout_ms = 100;
	start_ok();
	run(script_idle);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert(F.eof[0]);
	ck_assert_int_ge(F.elapsed_ms, 99);   /* not early (ms rounding aside) */
	ck_assert(F.watch_ok);
}
END_TEST

static void script_slow_handler(void)
{
	struct client c;
	struct timespec pause = {.tv_nsec = 250 * 1000000};
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, GET("/hold"));
	nanosleep(&pause, NULL);   /* five idle periods with the request in flight */
	loop_cmd(CMD_RESPOND);
	cl_recv(&c, &F.r[0]);
	F.eof[0] = cl_eof(&c);     /* then the idle timer runs again */
	cl_close(&c);
}

START_TEST(does_not_time_out_a_request_in_flight)
{
	F.lim.idle_timeout_ms = 50;
	start_ok();
	run(script_slow_handler);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].head, "Connection: keep-alive\r\n"));
	ck_assert(F.eof[0]);
}
END_TEST

/* ---- lifecycle ------------------------------------------------------------------------ */

static void script_hang_up(void)
{
	struct client c;
	if (cl_open(&c) < 0)
		return;
	cl_sends(&c, GET("/hold"));
	cl_close(&c);                 /* gone before the answer */
	loop_cmd(CMD_RESPOND);
	F.watch_ok = wait_conns(0);   /* the connection is freed, not kept */
	one_shot(0, GET("/next"), sizeof(GET("/next")) - 1);
}

START_TEST(drops_the_response_of_a_peer_that_hung_up)
{
	start_ok();
	run(script_hang_up);
	ck_assert(F.watch_ok);
	ck_assert_int_eq(F.requests, 2);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"path\":\"/next\""));
	ck_assert_ptr_nonnull(strstr(F.r[0].body, "\"conns\":1}"));
}
END_TEST

static void script_graceful(void)
{
	struct client idle, busy, late;
	struct stat st;

	if (cl_open(&idle) < 0 || cl_open(&busy) < 0)
		return;
	cl_sends(&idle, GET("/x"));
	cl_recv(&idle, &F.r[0]);
	cl_sends(&busy, GET("/stophold"));
	F.eof[0] = cl_eof(&idle);                    /* closed at once, while busy is held */
	F.eof[2] = stat(F.path, &st) < 0 && errno == ENOENT;   /* unlinked */
	F.connect_errno = cl_open(&late);
	cl_close(&late);
	loop_cmd(CMD_RESPOND);
	cl_recv(&busy, &F.r[1]);
	F.eof[1] = cl_eof(&busy);
	cl_close(&idle);
	cl_close(&busy);
}

START_TEST(graceful_stop_answers_the_request_in_flight)
{
	start_ok();
	run(script_graceful);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert(F.eof[0]);
	ck_assert(F.eof[2]);
	ck_assert_int_eq(F.connect_errno, -ENOENT);
	ck_assert_int_eq(F.r[1].status, 200);
	ck_assert_ptr_nonnull(strstr(F.r[1].body, "\"path\":\"/stophold\""));
	ck_assert_ptr_nonnull(strstr(F.r[1].head, "Connection: close\r\n"));
	ck_assert(F.eof[1]);
}
END_TEST

static void script_one_get(void)
{
	one_shot(0, GET("/x"), sizeof(GET("/x")) - 1);
}

START_TEST(replaces_a_stale_socket_file)
{
	close(raw_socket_at_path(false));   /* the file stays, nobody accepts */
	start_ok();
	run(script_one_get);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_int_eq(access(F.path, F_OK), -1);   /* unlinked at stop */
}
END_TEST

START_TEST(refuses_to_replace_a_live_socket)
{
	struct err e = {0};
	char want[256];
	int fd = raw_socket_at_path(true);

	ck_assert_int_eq(start(-1, &e), ERR_CONFLICT);
	ck_assert_int_eq(e.code, ERR_CONFLICT);
	snprintf(want, sizeof(want), "another daemon is listening on %s", F.path);
	ck_assert_str_eq(e.message, want);
	ck_assert_int_eq(access(F.path, F_OK), 0);   /* left alone */
	struct client c;
	ck_assert_int_eq(cl_open(&c), 0);            /* and still live */
	cl_close(&c);
	close(fd);
	ck_assert_int_eq(uv_loop_close(&F.loop), 0);
}
END_TEST

START_TEST(refuses_a_path_that_is_not_a_socket)
{
	struct err e = {0};
	FILE *f = fopen(F.path, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(start(-1, &e), ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(e.message, "is not a socket"));
	ck_assert_int_eq(access(F.path, F_OK), 0);
	ck_assert_int_eq(uv_loop_close(&F.loop), 0);
}
END_TEST

START_TEST(sets_the_socket_mode)
{
	struct stat st;

	F.lim.socket_mode = 0600;
	start_ok();
	ck_assert_int_eq(stat(F.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	run(script_one_get);
	ck_assert_int_eq(F.r[0].status, 200);
}
END_TEST

START_TEST(serves_an_inherited_socket_and_leaves_its_file)
{
	struct err e = {0};
	int fd = raw_socket_at_path(true);

	ck_assert_int_eq(start(fd, &e), 0);
	run(script_one_get);
	ck_assert_int_eq(F.r[0].status, 200);
	ck_assert_int_eq(access(F.path, F_OK), 0);
}
END_TEST

/* ---- pure helpers --------------------------------------------------------------------- */

START_TEST(fills_the_documented_default_limits)
{
	struct http_limits l;
	http_limits_default(&l);
	ck_assert_uint_eq(l.max_header_bytes, 16384);
	ck_assert_uint_eq(l.max_body_bytes, 1048576);
	ck_assert_uint_eq(l.max_connections, 1024);
	ck_assert_uint_eq(l.idle_timeout_ms, 60000);
	ck_assert_uint_eq(l.socket_mode, 0666);
}
END_TEST

START_TEST(names_status_codes)
{
	static const struct {
		int status;
		const char *text;
	} cases[] = {
		{200, "OK"}, {201, "Created"}, {304, "Not Modified"}, {404, "Not Found"},
		{405, "Method Not Allowed"}, {409, "Conflict"}, {413, "Payload Too Large"},
		{422, "Unprocessable Entity"}, {431, "Request Header Fields Too Large"},
		{503, "Service Unavailable"}, {299, "Unknown"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(http_status_text(cases[i].status), cases[i].text);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *t;

	t = tcase_create("requests");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, keeps_connection_alive_for_a_second_request);
	tcase_add_test(t, closes_after_answering_a_connection_close_request);
	tcase_add_test(t, answers_pipelined_requests_in_order);
	tcase_add_test(t, reassembles_a_chunked_body);
	tcase_add_test(t, reads_a_content_length_body_sent_in_pieces);
	tcase_add_test(t, percent_decodes_the_path_and_keeps_the_query_raw);
	tcase_add_test(t, answers_400_to_a_bad_percent_escape);
	tcase_add_test(t, answers_400_to_garbage_and_closes);
	tcase_add_test(t, passes_idempotency_key_and_if_none_match_whatever_their_case);
	tcase_add_test(t, writes_extra_headers_and_the_content_length);
	tcase_add_test(t, reports_the_peer_uid);
	tcase_add_test_raise_signal(t, aborts_on_a_second_answer_to_one_request, SIGABRT);
	suite_add_tcase(s, t);

	t = tcase_create("limits");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, answers_431_when_headers_exceed_16_kib);
	tcase_add_test(t, answers_431_when_the_parser_ceiling_comes_first);
	tcase_add_test(t, answers_413_before_reading_an_oversized_body);
	tcase_add_test(t, answers_413_when_chunks_add_up_past_the_limit);
	tcase_add_test(t, answers_503_above_the_connection_limit);
	tcase_add_test(t, closes_idle_connections);
	tcase_add_test(t, does_not_time_out_a_request_in_flight);
	suite_add_tcase(s, t);

	t = tcase_create("lifecycle");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, drops_the_response_of_a_peer_that_hung_up);
	tcase_add_test(t, graceful_stop_answers_the_request_in_flight);
	tcase_add_test(t, replaces_a_stale_socket_file);
	tcase_add_test(t, refuses_to_replace_a_live_socket);
	tcase_add_test(t, refuses_a_path_that_is_not_a_socket);
	tcase_add_test(t, sets_the_socket_mode);
	tcase_add_test(t, serves_an_inherited_socket_and_leaves_its_file);
	suite_add_tcase(s, t);

	t = tcase_create("helpers");
	tcase_add_test(t, fills_the_documented_default_limits);
	tcase_add_test(t, names_status_codes);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	signal(SIGPIPE, SIG_IGN);   /* as the daemon does: libuv writes with write(2) */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0;
}
