/*
 * test_hostile — hostile and broken clients against a real jouled: slow-loris headers and
 * bodies, a client that pipelines and never reads, a connection flood over the limit,
 * pipelined garbage, a 10 MB body, deeply nested JSON, invalid UTF-8, huge numbers and
 * negative counts.
 *
 * Owns: one daemon per test (checked fixtures, Check's forked child), started with short
 * limits (--idle-timeout 1 or 2 s, --max-connections 16) so that every attack plays out
 * in seconds; and, during the connection-level attacks, a well-behaved client (a thread
 * probing GET /v1/health on its own keep-alive connection every 10 ms) whose every answer
 * is timed.
 * Never: looks inside the daemon: it sees what a client sees, plus the daemon's RSS from
 * /proc/PID/status. No assertion runs off the main thread: the prober records, the test
 * asserts after joining it.
 *
 * What "bounded" means here, generously so that an ASan+UBSan build on two busy cores
 * does not flake: every probe answered 200, none slower than PROBE_MAX_MS (the aim for a
 * healthy daemon is a p99 of about 10 ms; the figure is printed); the daemon's RSS grows
 * by less than RSS_GROWTH_MAX_KB over an attack; every refused request left the state as
 * it was (GET /v1/health, /v1/fleet and /v1/jobs compared before and after).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/daemon.h"

#define PROBE_MAX_MS 1000
#define RSS_GROWTH_MAX_KB (64 * 1024)
#define MAX_CONNS 16
#define MAX_PROBES 200000

static struct td_daemon D;

static const char health_req[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";

/* ---- small helpers ----------------------------------------------------------------- */

static double now_ms_f(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	ck_assert(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* Read from fd until one whole response (headers + Content-Length body) is in *buf
 * (grown as needed) or timeout_ms; returns the response length, 0 on EOF before one
 * whole response, -1 on timeout or error. Bytes past it stay in the buffer. */
struct rbuf {
	char *p;
	size_t len, cap;
};

static long read_one(int fd, struct rbuf *b, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		if (b->len) {
			char *hend = memmem(b->p, b->len, "\r\n\r\n", 4);
			if (hend) {
				size_t head = (size_t)(hend + 4 - b->p), body = 0;
				*hend = '\0';
				const char *cl = strcasestr(b->p, "\r\nContent-Length:");
				if (cl)
					body = strtoul(cl + 17, NULL, 10);
				*hend = '\r';
				if (b->len >= head + body)
					return (long)(head + body);
			}
		}
		int64_t left = end - td_now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (b->cap - b->len < 65536) {
			size_t cap = b->cap ? b->cap * 2 : 131072;
			char *q = realloc(b->p, cap);
			if (!q)
				return -1;
			b->p = q;
			b->cap = cap;
		}
		ssize_t r = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
		if (r == 0)
			return 0;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			return -1;
		b->len += (size_t)r;
		b->p[b->len] = '\0';
	}
}

static void rbuf_consume(struct rbuf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* Wait until the peer closes fd (reading and discarding); true when it did in time. */
static bool wait_closed(int fd, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	char buf[65536];
	for (;;) {
		int64_t left = end - td_now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
}

/* ---- the well-behaved client --------------------------------------------------------- */

static struct prober {
	pthread_t th;
	atomic_bool stop;
	/* results, read after the join */
	atomic_uint ok;             /* answers so far (the main thread watches it) */
	unsigned failed, reconnects;
	double max_ms;
	float *lat;
	char first_error[256];
} P;

static void probe_fail(const char *what, int err)
{
	P.failed++;
	if (!P.first_error[0])
		snprintf(P.first_error, sizeof P.first_error, "%s (%s) after %u answers", what,
			 err ? strerror(err) : "-", atomic_load(&P.ok));
}

static void *prober_main(void *arg)
{
	(void)arg;
	struct rbuf b = { 0 };
	int fd = -1;
	while (!atomic_load(&P.stop)) {
		if (fd < 0) {
			fd = td_connect(D.sock);
			if (fd < 0) {
				probe_fail("connect", -fd);
				td_sleep_ms(10);
				continue;
			}
			P.reconnects++;
			b.len = 0;
		}
		double t0 = now_ms_f();
		if (send(fd, health_req, sizeof health_req - 1, MSG_NOSIGNAL) !=
		    (ssize_t)(sizeof health_req - 1)) {
			probe_fail("send", errno);
			close(fd);
			fd = -1;
			continue;
		}
		long n = read_one(fd, &b, 5000);
		double ms = now_ms_f() - t0;
		if (n <= 0 || strncmp(b.p, "HTTP/1.1 200", 12) != 0) {
			probe_fail(n < 0 ? "no answer within 5 s" : n == 0 ? "closed" : "not 200",
				   0);
			close(fd);
			fd = -1;
			continue;
		}
		rbuf_consume(&b, (size_t)n);
		unsigned k = atomic_load(&P.ok);
		if (k < MAX_PROBES)
			P.lat[k] = (float)ms;
		atomic_store(&P.ok, k + 1);
		if (ms > P.max_ms)
			P.max_ms = ms;
		td_sleep_ms(10);
	}
	if (fd >= 0)
		close(fd);
	free(b.p);
	return NULL;
}

static void prober_start(void)
{
	memset(&P, 0, sizeof P);
	P.lat = calloc(MAX_PROBES, sizeof *P.lat);
	ck_assert(P.lat);
	atomic_store(&P.stop, false);
	ck_assert_int_eq(pthread_create(&P.th, NULL, prober_main, NULL), 0);
	/* its connection is made before the attack starts */
	for (int64_t end = td_now_ms() + 5000; atomic_load(&P.ok) == 0 && td_now_ms() < end;)
		td_sleep_ms(5);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* Stop the prober and assert that it was served throughout. */
static void prober_check(const char *attack)
{
	/* a few more answers after the attack, then stop */
	unsigned seen = atomic_load(&P.ok);
	for (int64_t end = td_now_ms() + 5000; atomic_load(&P.ok) < seen + 3 && td_now_ms() < end;)
		td_sleep_ms(5);
	atomic_store(&P.stop, true);
	ck_assert_int_eq(pthread_join(P.th, NULL), 0);
	unsigned ok = atomic_load(&P.ok), n = ok < MAX_PROBES ? ok : MAX_PROBES;
	qsort(P.lat, n, sizeof *P.lat, cmp_float);
	double p50 = n ? P.lat[n / 2] : 0, p99 = n ? P.lat[n - 1 - n / 100] : 0;
	fprintf(stderr, "test_hostile: %s: well-behaved client: %u answers, p50 %.2f ms, "
		"p99 %.2f ms, max %.2f ms, %u failures\n", attack, ok, p50, p99, P.max_ms,
		P.failed);
	free(P.lat);
	P.lat = NULL;
	ck_assert_msg(P.failed == 0, "%s: the well-behaved client failed %u times, first: %s",
		      attack, P.failed, P.first_error);
	ck_assert_msg(ok >= 4, "%s: the well-behaved client got only %u answers", attack, ok);
	ck_assert_msg(P.max_ms < PROBE_MAX_MS, "%s: an answer took %.1f ms (limit %d ms)",
		      attack, P.max_ms, PROBE_MAX_MS);
	ck_assert_msg(P.reconnects == 1, "%s: the well-behaved client lost its connection",
		      attack);
}

/* ---- the state a refused request must leave alone ------------------------------------ */

static char *state_text(void)
{
	static const char *const paths[] = { "/v1/health", "/v1/fleet", "/v1/jobs",
					     "/v1/domains" };
	json_t *all = json_object();
	ck_assert(all);
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		json_t *j = td_get_json(&D, paths[i]);
		ck_assert_msg(j, "GET %s failed", paths[i]);
		json_object_set_new(all, paths[i], j);
	}
	char *s = json_dumps(all, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(all);
	ck_assert(s);
	return s;
}

#define ASSERT_STATE_SAME(before, what)                                                    \
	do {                                                                               \
		char *after_ = state_text();                                               \
		ck_assert_msg(strcmp((before), after_) == 0, "%s changed the state:\n%.600s\n" \
			      "---- became ----\n%.600s", (what), (before), after_);      \
		free(after_);                                                              \
	} while (0)

/* ---- fixtures ------------------------------------------------------------------------ */

static void start_with(const char *const *args)
{
	int r = td_start_args(&D, args);
	ck_assert_msg(r == 0, "jouled did not start (%d), log %s", r, D.log);
	char path[4096];
	ck_assert_int_eq(td_data_path("fleet.json", path, sizeof path), 0);
	char *doc = NULL;
	ck_assert_int_eq(td_read_file(path, &doc, NULL), 0);
	struct td_response resp;
	ck_assert_int_eq(td_http(&D, "POST", "/v1/fleet", doc, NULL, &resp), 0);
	ck_assert_msg(resp.status == 200, "fleet import: %ld %s", resp.status, resp.raw);
	td_response_free(&resp);
	free(doc);
	const char *job = "{\"name\":\"resident\",\"kind\":\"training\",\"workers\":1,"
			  "\"devices\":4,\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}}";
	ck_assert_int_eq(td_http(&D, "POST", "/v1/jobs", job, NULL, &resp), 0);
	ck_assert_msg(resp.status == 201, "submit: %ld %s", resp.status, resp.raw);
	td_response_free(&resp);
	td_sleep_ms(200);   /* the readiness probe's connections are gone */
}

static void setup(void)
{
	memset(&D, 0, sizeof D);
	start_with((const char *const[]){ "--idle-timeout", "2", "--max-connections", "16",
					  NULL });
}

static void setup_idle_1s(void)
{
	memset(&D, 0, sizeof D);
	start_with((const char *const[]){ "--idle-timeout", "1", NULL });
}

/* Every test ends with a clean SIGTERM: exit 0 (so a sanitizer build's leak or UB report
 * fails the test that caused it) and nothing a sanitizer flagged in the log. */
static void teardown(void)
{
	int st = 0, rc = 0;
	if (D.pid > 0)
		rc = td_stop(&D, &st);
	char *log = NULL;
	bool flagged = false;
	if (D.dir[0] && td_read_file(D.log, &log, NULL) == 0)
		flagged = strstr(log, "runtime error:") || strstr(log, "Sanitizer");
	free(log);
	bool clean = rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !flagged;
	if (clean)
		td_cleanup(&D);   /* else the directory stays for td_sweep to show its log */
	ck_assert_msg(clean, "jouled did not stop cleanly on SIGTERM (status 0x%x%s), log %s", st,
		      flagged ? ", sanitizer report in its log" : "", D.log);
}

static void assert_rss_bounded(long before_kb, const char *what)
{
	long after = rss_kb(D.pid);
	ck_assert_msg(before_kb > 0 && after > 0, "cannot read the daemon's RSS");
	fprintf(stderr, "test_hostile: %s: daemon RSS %ld -> %ld KiB\n", what, before_kb, after);
	ck_assert_msg(after - before_kb < RSS_GROWTH_MAX_KB,
		      "%s: the daemon's RSS grew by %ld KiB (limit %d)", what, after - before_kb,
		      RSS_GROWTH_MAX_KB);
}

/* ---- slow clients ---------------------------------------------------------------------- */

#define LORIS 64

/* Headers (or a body) that trickle in a byte at a time: a whole request must arrive within
 * the idle timeout of its first bytes, so each connection is closed about then even though
 * it never falls silent for that long; the others are served meanwhile. */
START_TEST(slow_loris_connections_are_closed_by_the_idle_timeout)
{
	static const char *const starts[] = {
		"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: a",           /* headers */
		"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"na", /* body */
		"GET /v1/hea",                                                 /* request line */
	};
	long rss0 = rss_kb(D.pid);
	prober_start();
	int fd[LORIS];
	int64_t t0 = td_now_ms();
	for (int k = 0; k < LORIS; k++) {
		fd[k] = td_connect(D.sock);
		ck_assert_int_ge(fd[k], 0);
		const char *s = starts[k % 3];
		ck_assert(send(fd[k], s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s));
	}
	/* a byte per connection every 300 ms (well under the 1 s timeout), for 3 s: the
	 * request's deadline, not the silence, closes them (a closed one fails the send) */
	for (int round = 0; round < 10; round++) {
		td_sleep_ms(300);
		for (int k = 0; k < LORIS; k++)
			(void)send(fd[k], "b", 1, MSG_NOSIGNAL);
	}
	int64_t trickled = td_now_ms();
	for (int k = 0; k < LORIS; k++) {
		ck_assert_msg(wait_closed(fd[k], 200), "slow connection %d still open %lld ms after "
			      "it opened, though it trickled", k, (long long)(td_now_ms() - t0));
		close(fd[k]);
	}
	fprintf(stderr, "test_hostile: slow-loris: %d trickling connections all closed within "
		"%lld ms of opening\n", LORIS, (long long)(trickled - t0));
	prober_check("slow-loris");
	assert_rss_bounded(rss0, "slow-loris");
}
END_TEST

/* A client pipelines requests and never reads: the daemon answers one at a time, stops
 * reading while an answer is stuck, drops the client after the idle timeout, and keeps
 * serving others; its memory does not follow the client's backlog. */
START_TEST(a_client_that_never_reads_is_dropped_and_others_are_served)
{
	static const char req[] = "GET /v1/devices HTTP/1.1\r\nHost: x\r\n\r\n";
	long rss0 = rss_kb(D.pid);
	prober_start();
	int fd = td_connect(D.sock);
	ck_assert_int_ge(fd, 0);
	set_nonblock(fd);
	/* write until the kernel and the daemon stop taking requests (1 s of EAGAIN) */
	size_t sent = 0;
	int64_t last_progress = td_now_ms(), t0 = td_now_ms();
	while (td_now_ms() - last_progress < 1000 && td_now_ms() - t0 < 15000) {
		char batch[sizeof req * 64];
		for (int k = 0; k < 64; k++)
			memcpy(batch + k * (sizeof req - 1), req, sizeof req - 1);
		ssize_t w = send(fd, batch, 64 * (sizeof req - 1), MSG_NOSIGNAL);
		if (w > 0) {
			sent += (size_t)w;
			last_progress = td_now_ms();
		} else if (w < 0 && errno != EAGAIN) {
			break;   /* already dropped */
		} else {
			td_sleep_ms(20);
		}
	}
	fprintf(stderr, "test_hostile: non-reader: %zu bytes (%zu requests) taken before the "
		"daemon stopped reading\n", sent, sent / (sizeof req - 1));
	ck_assert_msg(td_now_ms() - t0 < 15000, "the daemon kept reading for 15 s");
	/* the daemon holds its answer for at most the idle timeout (2 s) */
	td_sleep_ms(3500);
	long rss_during = rss_kb(D.pid);
	ck_assert_msg(wait_closed(fd, 10000), "the non-reading client was never dropped");
	close(fd);
	prober_check("non-reader");
	assert_rss_bounded(rss0, "non-reader");
	ck_assert_msg(rss_during - rss0 < RSS_GROWTH_MAX_KB, "RSS during the attack grew by %ld KiB",
		      rss_during - rss0);
}
END_TEST

/* More connections than --max-connections: the extra ones get 503 JSON and are closed;
 * a client connected before keeps being served; room comes back when they close. */
START_TEST(a_connection_flood_gets_503_and_others_are_still_served)
{
	enum { FLOOD = 200 };
	long rss0 = rss_kb(D.pid);
	prober_start();   /* holds one of the 16 slots */
	int fd[FLOOD];
	for (int k = 0; k < FLOOD; k++) {
		fd[k] = td_connect(D.sock);
		ck_assert_msg(fd[k] >= 0, "connect %d: %s", k, strerror(-fd[k]));
	}
	int accepted = 0, refused = 0;
	for (int k = 0; k < FLOOD; k++) {
		struct rbuf b = { 0 };
		long n = read_one(fd[k], &b, k < MAX_CONNS ? 300 : 2000);
		if (n > 0) {
			ck_assert_msg(strncmp(b.p, "HTTP/1.1 503", 12) == 0 &&
				      strstr(b.p, "\"code\":\"unavailable\"") &&
				      strstr(b.p, "Connection: close"),
				      "connection %d over the limit: %.400s", k, b.p);
			ck_assert_msg(wait_closed(fd[k], 2000), "a refused connection stays open");
			refused++;
		} else {
			accepted++;
		}
		free(b.p);
	}
	fprintf(stderr, "test_hostile: flood: %d connections held, %d refused with 503\n",
		accepted, refused);
	ck_assert_msg(accepted <= MAX_CONNS - 1, "%d held connections beside the prober's",
		      accepted);
	ck_assert_msg(refused >= FLOOD - MAX_CONNS, "only %d refused", refused);
	prober_check("flood");
	for (int k = 0; k < FLOOD; k++)
		close(fd[k]);
	/* room again for new connections */
	bool ok = false;
	for (int64_t end = td_now_ms() + 3000; !ok && td_now_ms() < end;) {
		char *out = NULL;
		ck_assert_int_eq(td_raw(D.sock, health_req, sizeof health_req - 1, 3000, &out, NULL),
				 0);
		ok = strncmp(out, "HTTP/1.1 200", 12) == 0;
		free(out);
		if (!ok)
			td_sleep_ms(50);
	}
	ck_assert_msg(ok, "no room for a new connection after the flood closed");
	assert_rss_bounded(rss0, "flood");
}
END_TEST

/* Garbage after a good request on one connection: the good one is answered, the garbage
 * gets one 400 JSON error and the connection is closed; nothing else changes. */
START_TEST(pipelined_garbage_gets_one_400_and_a_close)
{
	static const char good[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
	char bad[4][600];
	size_t badlen[4];
	/* binary noise, a NUL in the request line, a header without a colon, a bad chunk */
	uint32_t seed = 12345;
	for (size_t i = 0; i < 512; i++) {
		seed = seed * 1103515245u + 12345u;
		bad[0][i] = (char)(seed >> 16);
	}
	bad[0][0] = '\x01';
	badlen[0] = 512;
	static const char b1[] = "GET /v1/he\0alth HTTP/1.1\r\n\r\n";
	memcpy(bad[1], b1, sizeof b1 - 1);
	badlen[1] = sizeof b1 - 1;
	badlen[2] = (size_t)snprintf(bad[2], sizeof bad[2],
				     "GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n");
	badlen[3] = (size_t)snprintf(bad[3], sizeof bad[3],
				     "POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				     "zz\r\n{}\r\n0\r\n\r\n");
	char *before = state_text();
	long rss0 = rss_kb(D.pid);
	prober_start();
	for (int k = 0; k < 4; k++) {
		for (int rep = 0; rep < 25; rep++) {
			char msg[2048];
			size_t len = 0;
			memcpy(msg, good, sizeof good - 1);
			len += sizeof good - 1;
			memcpy(msg + len, bad[k], badlen[k]);
			len += badlen[k];
			memcpy(msg + len, good, sizeof good - 1);   /* never answered */
			len += sizeof good - 1;
			char *out = NULL;
			size_t outlen = 0;
			ck_assert_int_eq(td_raw(D.sock, msg, len, 5000, &out, &outlen), 0);
			const char *first = out, *second = strstr(out + 1, "HTTP/1.1 ");
			ck_assert_msg(strncmp(first, "HTTP/1.1 200", 12) == 0, "garbage %d: %.300s",
				      k, out);
			ck_assert_msg(second && strncmp(second, "HTTP/1.1 400", 12) == 0 &&
				      strstr(second, "Connection: close") &&
				      strstr(second, "{\"error\":{\"code\":\"malformed\""),
				      "garbage %d: want one 400 JSON error: %.600s", k, out);
			ck_assert_msg(!strstr(second + 1, "HTTP/1.1 "),
				      "garbage %d: something followed the 400: %.600s", k, out);
			free(out);
		}
	}
	prober_check("garbage");
	assert_rss_bounded(rss0, "garbage");
	ASSERT_STATE_SAME(before, "pipelined garbage");
	free(before);
}
END_TEST

/* ---- big and bad bodies ---------------------------------------------------------------- */

static char *post_raw(const char *path, const char *body, size_t len, const char *extra)
{
	char head[512];
	int hl = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			  "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
			  path, extra ? extra : "", len);
	ck_assert(hl > 0 && (size_t)hl < sizeof head);
	char *msg = malloc((size_t)hl + len);
	ck_assert(msg);
	memcpy(msg, head, (size_t)hl);
	memcpy(msg + hl, body, len);
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, msg, (size_t)hl + len, 20000, &out, NULL), 0);
	free(msg);
	return out;
}

/* A 10 MB body, announced or chunked: 413 JSON, no buffering, nothing changed. */
START_TEST(a_10_mb_body_is_refused_with_413)
{
	size_t big = 10u << 20;
	char *body = malloc(big);
	ck_assert(body);
	memset(body, ' ', big);
	memcpy(body, "{\"name\":\"", 9);
	char *before = state_text();
	long rss0 = rss_kb(D.pid);
	prober_start();
	for (int rep = 0; rep < 3; rep++) {
		char *out = post_raw("/v1/jobs", body, big, NULL);
		ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0 &&
			      strstr(out, "\"code\":\"payload_too_large\""),
			      "10 MB with Content-Length: %.400s", out);
		free(out);
	}
	/* the same without a Content-Length: 160 chunks of 64 KiB */
	size_t chunk = 65536, n = big / chunk, cap = 256 + n * (chunk + 16);
	char *msg = malloc(cap);
	ck_assert(msg);
	size_t len = (size_t)sprintf(msg, "POST /v1/fleet HTTP/1.1\r\nHost: x\r\n"
				     "Transfer-Encoding: chunked\r\n\r\n");
	for (size_t k = 0; k < n; k++) {
		len += (size_t)sprintf(msg + len, "%zx\r\n", chunk);
		memcpy(msg + len, body + k * chunk, chunk);
		len += chunk;
		memcpy(msg + len, "\r\n", 2);
		len += 2;
	}
	memcpy(msg + len, "0\r\n\r\n", 5);
	len += 5;
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, msg, len, 20000, &out, NULL), 0);
	ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0 &&
		      strstr(out, "\"code\":\"payload_too_large\""), "10 MB chunked: %.400s", out);
	free(out);
	free(msg);
	free(body);
	prober_check("10 MB bodies");
	assert_rss_bounded(rss0, "10 MB bodies");
	ASSERT_STATE_SAME(before, "10 MB bodies");
	free(before);
}
END_TEST

/* One bad body: its status, a JSON error with its code, and the field when one is at
 * fault; the state is left as it was. */
struct bad_body {
	const char *what, *path, *body;
	long status;
	const char *code, *field;   /* field NULL: none expected */
};

static const struct bad_body bad_bodies[] = {
	{ "invalid UTF-8 in a string", "/v1/jobs",
	  "{\"name\":\"\xff\xfe\",\"kind\":\"training\",\"workers\":1,\"devices\":1}", 400,
	  "malformed", NULL },
	{ "a truncated UTF-8 sequence", "/v1/jobs",
	  "{\"name\":\"ok\xe2\x82\",\"kind\":\"training\",\"workers\":1,\"devices\":1}", 400,
	  "malformed", NULL },
	{ "an overlong UTF-8 encoding", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"\xc0\xaf\",\"budget_w\":1}]}", 400, "malformed", NULL },
	{ "a lone surrogate escape", "/v1/jobs",
	  "{\"name\":\"\\ud800\",\"kind\":\"training\",\"workers\":1,\"devices\":1}", 400,
	  "malformed", NULL },
	{ "an escaped NUL", "/v1/jobs",
	  "{\"name\":\"a\\u0000b\",\"kind\":\"training\",\"workers\":1,\"devices\":1}", 400,
	  "malformed", NULL },
	{ "a negative count", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":-1,\"devices\":8}", 422,
	  "invalid_argument", "workers" },
	{ "negative devices", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"inference\",\"replicas\":2,\"devices\":-8}", 422,
	  "invalid_argument", "devices" },
	{ "a zero count", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"inference\",\"replicas\":0,\"devices\":1}", 422,
	  "invalid_argument", "replicas" },
	{ "an integer too big for 64 bits", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":99999999999999999999999,"
	  "\"devices\":1}", 400, "malformed", NULL },
	{ "INT64_MAX as a priority", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"priority\":9223372036854775807}", 422, "invalid_argument", "priority" },
	{ "INT64_MIN as a duration", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"duration_s\":-9223372036854775808}", 422, "invalid_argument", "duration_s" },
	{ "a real number overflowing a double", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1e999}", 400,
	  "malformed", NULL },
	{ "a real where an integer belongs", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1.5}", 422,
	  "invalid_argument", "devices" },
	{ "a huge power cap", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"power\":{\"cap_w\":4294967296}}", 422, "invalid_argument", "power.cap_w" },
	{ "a min_perf of 1e308", "/v1/jobs",
	  "{\"name\":\"n\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"power\":{\"cap\":\"auto\",\"min_perf\":1e308}}", 422, "invalid_argument",
	  "power.min_perf" },
	{ "a negative budget", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"x\",\"budget_w\":-1}]}", 422, "invalid_argument",
	  "domains[0].budget_w" },
	{ "a budget over 2^63", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"x\",\"budget_w\":18446744073709551615}]}", 400, "malformed",
	  NULL },
	{ "a negative device count", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"n\",\"domain\":\"site\",\"devices\":[{\"model\":"
	  "\"H100-SXM5-80GB\",\"count\":-3}]}]}", 422, "invalid_argument",
	  "nodes[0].devices[0].count" },
	{ "a device count over 64", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"n\",\"domain\":\"site\",\"devices\":[{\"model\":"
	  "\"H100-SXM5-80GB\",\"count\":65}]}]}", 422, "invalid_argument",
	  "nodes[0].devices[0].count" },
	{ "a negative host_idle_w", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"n\",\"domain\":\"site\",\"host_idle_w\":-1,"
	  "\"devices\":[]}]}", 422, "invalid_argument", "nodes[0].host_idle_w" },
	{ "a number as a reported state", "/v1/jobs/1/status", "{\"state\":-1}", 422,
	  "invalid_argument", "state" },
};

START_TEST(a_bad_body_gets_its_status_and_a_json_error_and_changes_nothing)
{
	const struct bad_body *c = &bad_bodies[_i];
	char *before = state_text();
	char *out = post_raw(c->path, c->body, strlen(c->body), NULL);
	char want[16];
	snprintf(want, sizeof want, "HTTP/1.1 %ld", c->status);
	ck_assert_msg(strncmp(out, want, 12) == 0, "%s: want %ld, got: %.500s", c->what,
		      c->status, out);
	const char *body = strstr(out, "\r\n\r\n");
	ck_assert(body);
	json_error_t je;
	json_t *j = json_loads(body + 4, 0, &je);
	ck_assert_msg(j, "%s: the error is not JSON: %.500s", c->what, body + 4);
	json_t *e = json_object_get(j, "error");
	ck_assert_msg(json_is_object(e) && json_is_string(json_object_get(e, "message")),
		      "%s: not an error object: %.500s", c->what, body + 4);
	const char *code = json_string_value(json_object_get(e, "code"));
	ck_assert_msg(code && strcmp(code, c->code) == 0, "%s: code %s, want %s", c->what,
		      code ? code : "(none)", c->code);
	const char *field = json_string_value(json_object_get(e, "field"));
	if (c->field)
		ck_assert_msg(field && strcmp(field, c->field) == 0, "%s: field %s, want %s",
			      c->what, field ? field : "(none)", c->field);
	json_decref(j);
	free(out);
	ASSERT_STATE_SAME(before, c->what);
	free(before);
}
END_TEST

/* JSON nested past jansson's limit (2048) is a 400 naming line and column; nesting
 * within the limit parses and is refused for its shape (422), without a crash either
 * way — 1 MiB of '[' is the worst a body can hold. */
START_TEST(deeply_nested_json_is_refused_with_a_json_error)
{
	static const struct {
		size_t depth;
		long status;
	} cases[] = { { 1000, 422 }, { 2047, 422 }, { 5000, 400 }, { (1u << 20) - 16, 400 } };
	char *before = state_text();
	long rss0 = rss_kb(D.pid);
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		size_t d = cases[k].depth, len = 0;
		char *body = malloc(2 * d + 64);
		ck_assert(body);
		len += (size_t)sprintf(body, "{\"name\":");
		bool closed = cases[k].status == 422;
		memset(body + len, '[', d);
		len += d;
		if (closed) {
			memset(body + len, ']', d);
			len += d;
			len += (size_t)sprintf(body + len, ",\"kind\":\"training\"}");
		}
		char *out = post_raw("/v1/jobs", body, len, NULL);
		char want[16];
		snprintf(want, sizeof want, "HTTP/1.1 %ld", cases[k].status);
		ck_assert_msg(strncmp(out, want, 12) == 0, "depth %zu: want %ld, got %.400s", d,
			      cases[k].status, out);
		if (cases[k].status == 400)
			ck_assert_msg(strstr(out, "\"code\":\"malformed\"") && strstr(out, "column"),
				      "depth %zu: %.400s", d, out);
		else
			ck_assert_msg(strstr(out, "\"field\":\"name\""), "depth %zu: %.400s", d, out);
		free(out);
		free(body);
	}
	assert_rss_bounded(rss0, "nesting");
	ASSERT_STATE_SAME(before, "deeply nested JSON");
	free(before);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------- */

static Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("slow");
	tcase_add_checked_fixture(tc, setup_idle_1s, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, slow_loris_connections_are_closed_by_the_idle_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("connections");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_client_that_never_reads_is_dropped_and_others_are_served);
	tcase_add_test(tc, a_connection_flood_gets_503_and_others_are_still_served);
	tcase_add_test(tc, pipelined_garbage_gets_one_400_and_a_close);
	suite_add_tcase(s, tc);

	tc = tcase_create("bodies");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_10_mb_body_is_refused_with_413);
	tcase_add_loop_test(tc, a_bad_body_gets_its_status_and_a_json_error_and_changes_nothing, 0,
			    (int)(sizeof bad_bodies / sizeof bad_bodies[0]));
	tcase_add_test(tc, deeply_nested_json_is_refused_with_a_json_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(hostile_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
