/*
 * test_webhooks — event delivery to webhooks end to end: the real jouled POSTs every event
 * of its log to loopback receivers run by this test process, through its outbox, while the
 * receivers answer 200, answer 500, hang, are down (connection refused) and come back on
 * the same port, and while jouled is killed with SIGKILL and restarted. Also: a node's
 * agent_url gets that node's events and those of the jobs placed on it, and no others;
 * retries back off (doubling, jitter, ceiling, nothing sent meanwhile) and a success resets
 * them; a backlog larger than jouled's in-memory window (1,024 events) is paged in from the
 * outbox and delivered whole; no more than --webhook-concurrency POSTs are in flight; a
 * dead endpoint shows in /v1/webhooks, /v1/health, /metrics and joulectl and holds up
 * nothing else; bad --webhook flags stop jouled before it starts.
 *
 * The receivers: one accept thread per listening socket (blocking sockets on
 * 127.0.0.1:port) and one detached thread per connection, which reads HTTP/1.1 requests
 * one after another on a keep-alive connection (Content-Length or chunked bodies,
 * Expect: 100-continue answered) and does what the receiver's mode says: answer 200,
 * answer 500, or hang (read the request, answer nothing, hold the connection until jouled
 * closes it). "Down" is receiver_stop: the listening socket and every open connection are
 * closed, so new connections are refused; receiver_start on the old port brings it back.
 *
 * Every request is recorded with two stamps from one global counter: `got` when the whole
 * request was read and `acked` just before the 2xx answer was written. jouled may send an
 * event about job J only once every earlier event about J was acknowledged, so each earlier
 * event of J must have an `acked` stamp below the later request's `got` stamp — a check
 * with no timing in it.
 *
 * jouled runs with --webhook-timeout 1 and retry delays of 100-400 ms so that every phase
 * takes a second or two.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/daemon.h"

#define H100 "H100-SXM5-80GB"
#define NPU "Ascend910B3"
#define HOOK_PATH "/hook"

/* ---- loopback receivers ---- */

enum mode {
	M_OK,     /* answer 200 */
	M_500,    /* answer 500 */
	M_HANG,   /* read the request, answer nothing, hold the connection */
};

/* One request as the receiver read it. */
struct delivery {
	char method[16];
	char path[64];
	char ctype[64], idem[32], ev_hdr[64], seq_hdr[32];  /* headers, "" when absent */
	json_t *body;            /* the body parsed (NULL when not JSON) */
	long long seq;           /* body.seq, -1 when absent */
	long long job;           /* body.job, 0 when null */
	int status;              /* what the receiver answered: 200, 500, 0 (hung) */
	uint64_t got;            /* stamp: the whole request was read */
	uint64_t acked;          /* stamp: just before the 2xx answer was written; 0 none */
	int64_t at_ms;           /* td_now_ms() when the whole request was read */
};

struct receiver {
	int lfd;
	int port;
	pthread_t thread;
	bool running;
	atomic_bool stop;        /* the listener and its connections close */
	atomic_int mode;         /* enum mode */
	atomic_int conns;        /* connection threads alive */
	atomic_int hung;         /* requests left unanswered (M_HANG) */
	atomic_int hung_closed;  /* of those, connections jouled closed (its timeout) */
	atomic_llong hang_ms_min;/* shortest time from request to jouled's close */
	atomic_int hung_now;     /* requests being held right now */
	atomic_int hung_max;     /* the most ever held at once */
	pthread_mutex_t mu;
	struct delivery *dl;     /* in `got` order */
	size_t n, cap;
};

struct conn {
	struct receiver *r;
	int fd;
};

static atomic_ullong stamps;

static uint64_t stamp(void)
{
	return atomic_fetch_add(&stamps, 1) + 1;
}

static struct receiver *receiver_new(void)
{
	struct receiver *r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	pthread_mutex_init(&r->mu, NULL);
	r->lfd = -1;
	atomic_store(&r->hang_ms_min, INT64_MAX);
	return r;
}

static void set_mode(struct receiver *r, enum mode m)
{
	atomic_store(&r->mode, (int)m);
}

/* Copy header `name`'s value from the header block head (NUL-terminated, CRLF lines)
 * into out; "" when absent. */
static void header(const char *head, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	const char *p = strstr(head, "\r\n");
	while (p && p[2]) {
		p += 2;
		const char *eol = strstr(p, "\r\n");
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = ll - (size_t)(v - p);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= n)
				vl = n - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return;
		}
		p = eol;
	}
}

/* A chunked body starting at p (len bytes): 1 when whole (decoded into out, *used bytes of
 * p), 0 when more is needed, -1 when malformed. out has room for len bytes. */
static int dechunk(const char *p, size_t len, char *out, size_t *outlen, size_t *used)
{
	size_t o = 0, i = 0;
	for (;;) {
		const char *eol = memmem(p + i, len - i, "\r\n", 2);
		if (!eol)
			return 0;
		char *end;
		unsigned long size = strtoul(p + i, &end, 16);
		if (end == p + i)
			return -1;
		i = (size_t)(eol - p) + 2;
		if (size == 0) {
			/* no trailers expected: the final CRLF */
			if (len - i < 2)
				return 0;
			*outlen = o;
			*used = i + 2;
			return 1;
		}
		if (len - i < size + 2)
			return 0;
		memcpy(out + o, p + i, size);
		o += size;
		i += size + 2;
	}
}

/* Wait until the peer closes fd or the receiver stops. True when the peer closed it. */
static bool hold(struct receiver *r, int fd)
{
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) == 1) {
			char buf[512];
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n == 0 || (n < 0 && errno != EINTR))
				return true;
		}
	}
	return false;
}

/* Record one request and answer it as the mode says; false: close the connection. */
static bool handle(struct receiver *r, int fd, const char *head, const char *body, size_t blen)
{
	struct delivery d = {.seq = -1};
	sscanf(head, "%15s %63s", d.method, d.path);
	header(head, "Content-Type", d.ctype, sizeof(d.ctype));
	header(head, "Idempotency-Key", d.idem, sizeof(d.idem));
	header(head, "Joule-Event", d.ev_hdr, sizeof(d.ev_hdr));
	header(head, "Joule-Seq", d.seq_hdr, sizeof(d.seq_hdr));
	char conn_hdr[32];
	header(head, "Connection", conn_hdr, sizeof(conn_hdr));
	d.body = blen ? json_loadb(body, blen, 0, NULL) : NULL;
	if (json_is_integer(json_object_get(d.body, "seq")))
		d.seq = json_integer_value(json_object_get(d.body, "seq"));
	d.job = json_integer_value(json_object_get(d.body, "job"));
	enum mode m = (enum mode)atomic_load(&r->mode);

	pthread_mutex_lock(&r->mu);
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct delivery *p = realloc(r->dl, cap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&r->mu);
			json_decref(d.body);
			return false;
		}
		r->dl = p;
		r->cap = cap;
	}
	d.got = stamp();
	d.at_ms = td_now_ms();
	if (m == M_OK) {
		d.status = 200;
		d.acked = stamp();
	} else if (m == M_500) {
		d.status = 500;
	}
	r->dl[r->n++] = d;
	pthread_mutex_unlock(&r->mu);

	if (m == M_OK) {
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					 "Content-Length: 3\r\n\r\nok\n";
		if (td_send_all(fd, ok, sizeof(ok) - 1) < 0)
			return false;
	} else if (m == M_500) {
		static const char bad[] = "HTTP/1.1 500 Internal Server Error\r\n"
					  "Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n"
					  "try later\n";
		if (td_send_all(fd, bad, sizeof(bad) - 1) < 0)
			return false;
	} else {
		atomic_fetch_add(&r->hung, 1);
		int now = atomic_fetch_add(&r->hung_now, 1) + 1;
		int max = atomic_load(&r->hung_max);
		while (now > max && !atomic_compare_exchange_weak(&r->hung_max, &max, now))
			;
		int64_t t0 = td_now_ms();
		bool closed = hold(r, fd);
		atomic_fetch_sub(&r->hung_now, 1);
		if (closed) {
			long long took = (long long)(td_now_ms() - t0);
			long long cur = atomic_load(&r->hang_ms_min);
			while (took < cur && !atomic_compare_exchange_weak(&r->hang_ms_min, &cur, took))
				;
			atomic_fetch_add(&r->hung_closed, 1);
		}
		return false;
	}
	return strcasecmp(conn_hdr, "close") != 0;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct receiver *r = c->r;
	int fd = c->fd;
	free(c);
	enum { CAP = 1 << 18 };
	char *buf = malloc(CAP + 1), *body = malloc(CAP);
	size_t len = 0;
	bool continued = false;
	while (buf && body && !atomic_load(&r->stop)) {
		buf[len] = '\0';
		char *eoh = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL;
		if (eoh) {
			size_t hlen = (size_t)(eoh - buf) + 4;
			char te[64], cl[32], expect[64];
			*eoh = '\0'; /* the header block as a string, for a moment */
			header(buf, "Transfer-Encoding", te, sizeof(te));
			header(buf, "Content-Length", cl, sizeof(cl));
			header(buf, "Expect", expect, sizeof(expect));
			size_t blen = 0, used = 0;
			int whole;
			if (strcasestr(te, "chunked")) {
				whole = dechunk(buf + hlen, len - hlen, body, &blen, &used);
			} else {
				blen = cl[0] ? (size_t)strtoul(cl, NULL, 10) : 0;
				whole = blen > CAP ? -1 : len - hlen >= blen;
				used = blen;
				if (whole == 1)
					memcpy(body, buf + hlen, blen);
			}
			if (whole < 0) {
				*eoh = '\r';
				break;
			}
			if (whole == 1) {
				bool keep = handle(r, fd, buf, body, blen);
				*eoh = '\r';
				if (!keep)
					break;
				memmove(buf, buf + hlen + used, len - hlen - used);
				len -= hlen + used;
				continued = false;
				continue;
			}
			*eoh = '\r';
			if (strcasecmp(expect, "100-continue") == 0 && !continued &&
			    atomic_load(&r->mode) != M_HANG) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				if (td_send_all(fd, cont, sizeof(cont) - 1) < 0)
					break;
				continued = true;
			}
		}
		if (len == CAP)
			break; /* a request larger than any event */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		ssize_t n = recv(fd, buf + len, CAP - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	free(buf);
	free(body);
	close(fd);
	atomic_fetch_sub(&r->conns, 1);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct receiver *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = r->lfd, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct conn *c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->r = r;
		c->fd = fd;
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		atomic_fetch_add(&r->conns, 1);
		if (pthread_create(&t, &at, conn_main, c) != 0) {
			atomic_fetch_sub(&r->conns, 1);
			close(fd);
			free(c);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

/* Listen on 127.0.0.1:port (0: any free port) and serve. */
static void receiver_start(struct receiver *r, int port)
{
	ck_assert(!r->running);
	r->lfd = td_listen_loopback(port, &r->port);
	ck_assert_msg(r->lfd >= 0, "bind port %d: %s", port, strerror(-r->lfd));
	atomic_store(&r->stop, false);
	ck_assert_int_eq(pthread_create(&r->thread, NULL, accept_main, r), 0);
	r->running = true;
}

/* Down: close the listener and every connection; new connections are refused. */
static void receiver_stop(struct receiver *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	close(r->lfd);
	r->lfd = -1;
	r->running = false;
	for (int64_t end = td_now_ms() + 5000; atomic_load(&r->conns) > 0 && td_now_ms() < end;)
		td_sleep_ms(10);
	ck_assert_int_eq(atomic_load(&r->conns), 0);
}

static void receiver_free(struct receiver *r)
{
	if (!r)
		return;
	receiver_stop(r);
	for (size_t i = 0; i < r->n; i++)
		json_decref(r->dl[i].body);
	free(r->dl);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void receiver_url(const struct receiver *r, char *buf, size_t n)
{
	snprintf(buf, n, "http://127.0.0.1:%d" HOOK_PATH, r->port);
}

/* A copy of the deliveries so far (bodies shared: they live as long as r); free() it. */
static struct delivery *snapshot(struct receiver *r, size_t *n)
{
	pthread_mutex_lock(&r->mu);
	struct delivery *s = malloc((r->n ? r->n : 1) * sizeof(*s));
	ck_assert_ptr_nonnull(s);
	if (r->n)
		memcpy(s, r->dl, r->n * sizeof(*s));
	*n = r->n;
	pthread_mutex_unlock(&r->mu);
	return s;
}

static size_t requests(struct receiver *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* ---- daemon helpers ---- */

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void import(struct td_daemon *d, json_t *fleet)
{
	char *body = json_dumps(fleet, JSON_COMPACT);
	ck_assert_ptr_nonnull(body);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/fleet", body, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "import: %ld %s", r.status, r.raw);
	td_response_free(&r);
	free(body);
}

/* Submit a job of workers x devices on model; priority, preemptible, duration_s (0: none).
 * Returns its id; *took_ms (may be NULL) how long the answer took. */
static long long submit(struct td_daemon *d, const char *name, const char *model, int devices,
			int priority, bool preemptible, int duration_s, int64_t *took_ms)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":1,\"devices\":%d,"
			 "\"priority\":%d,\"preemptible\":%s,"
			 "\"accelerator\":{\"models\":[\"%s\"]}",
			 name, devices, priority, preemptible ? "true" : "false", model);
	if (duration_s > 0)
		n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"duration_s\":%d", duration_s);
	snprintf(body + n, sizeof(body) - (size_t)n, "}");
	struct td_response r = {0};
	int64_t t0 = td_now_ms();
	ck_assert_int_eq(td_http(d, "POST", "/v1/jobs", body, NULL, &r), 0);
	if (took_ms)
		*took_ms = td_now_ms() - t0;
	ck_assert_msg(r.status == 201, "submit %s: %ld %s", name, r.status, r.raw);
	long long id = jint(r.json, "id");
	td_response_free(&r);
	ck_assert_int_gt(id, 0);
	return id;
}

static json_t *get_job(struct td_daemon *d, long long id)
{
	char p[64];
	snprintf(p, sizeof(p), "/v1/jobs/%lld", id);
	json_t *j = td_get_json(d, p);
	ck_assert_msg(j != NULL, "GET %s failed", p);
	return j;
}

/* The node of a placed job's first worker ("" when none). */
static const char *job_node(const json_t *job)
{
	return jstr(json_array_get(json_object_get(job, "placement"), 0), "node");
}

/* Wait until job id is in state (timeout_ms); the job. */
static json_t *wait_job(struct td_daemon *d, long long id, const char *state, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		json_t *j = get_job(d, id);
		if (strcmp(jstr(j, "state"), state) == 0)
			return j;
		ck_assert_msg(td_now_ms() < end, "job %lld is %s, not %s", id, jstr(j, "state"), state);
		json_decref(j);
		td_sleep_ms(50);
	}
}

/* Placed or running (demo mode runs a placed job after 1 s). */
static bool active(const json_t *job)
{
	return strcmp(jstr(job, "state"), "placed") == 0 || strcmp(jstr(job, "state"), "running") == 0;
}

static void report(struct td_daemon *d, long long id, const char *state)
{
	char p[64], body[64];
	snprintf(p, sizeof(p), "/v1/jobs/%lld/status", id);
	snprintf(body, sizeof(body), "{\"state\":\"%s\"}", state);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", p, body, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "report %lld %s: %ld %s", id, state, r.status, r.raw);
	td_response_free(&r);
}

static void post(struct td_daemon *d, const char *method, const char *path)
{
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, method, path, strcmp(method, "POST") == 0 ? "" : NULL, NULL, &r),
			 0);
	ck_assert_msg(r.status == 200, "%s %s: %ld %s", method, path, r.status, r.raw);
	td_response_free(&r);
}

/* The whole event log (every retained event). */
static json_t *event_log(struct td_daemon *d)
{
	json_t *ans = td_get_json(d, "/v1/events?since=0&limit=10000");
	ck_assert_msg(ans != NULL, "GET /v1/events failed");
	json_t *list = json_incref(json_object_get(ans, "events"));
	json_decref(ans);
	ck_assert(json_is_array(list));
	return list;
}

static const json_t *log_find(const json_t *log, long long seq)
{
	size_t i;
	json_t *e;
	json_array_foreach(log, i, e)
		if (jint(e, "seq") == seq)
			return e;
	return NULL;
}

/* GET /v1/webhooks: the entry of url (a new reference), NULL when absent. */
static json_t *webhook(struct td_daemon *d, const char *url)
{
	json_t *ans = td_get_json(d, "/v1/webhooks");
	ck_assert_msg(ans != NULL, "GET /v1/webhooks failed");
	json_t *w, *found = NULL;
	size_t i;
	json_array_foreach(json_object_get(ans, "webhooks"), i, w)
		if (strcmp(jstr(w, "url"), url) == 0)
			found = json_incref(w);
	json_decref(ans);
	return found;
}

static const char *const webhook_keys[] = {
	"url", "kind", "backlog", "in_flight", "delivered", "failed", "failures_in_row", "failing",
	"last_error", "last_success_at", "next_retry_at", "oldest_seq", NULL,
};

static void assert_webhook_shape(const json_t *w, const char *kind)
{
	for (size_t i = 0; webhook_keys[i]; i++)
		ck_assert_msg(json_object_get(w, webhook_keys[i]), "webhook %s has no '%s'",
			      jstr(w, "url"), webhook_keys[i]);
	ck_assert_str_eq(jstr(w, "kind"), kind);
	ck_assert(json_is_boolean(json_object_get(w, "failing")));
	ck_assert(json_is_integer(json_object_get(w, "backlog")));
}

/* Wait until url's entry has failing == want; the entry. */
static json_t *wait_failing(struct td_daemon *d, const char *url, bool want, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		json_t *w = webhook(d, url);
		ck_assert_msg(w != NULL, "GET /v1/webhooks does not list %s", url);
		if (json_is_true(json_object_get(w, "failing")) == want)
			return w;
		char *text = json_dumps(w, JSON_COMPACT);
		ck_assert_msg(td_now_ms() < end, "webhook never %sfailing: %s", want ? "" : "stopped ",
			      text);
		free(text);
		json_decref(w);
		td_sleep_ms(50);
	}
}

/* Wait until url's backlog and in_flight are 0; the entry. */
static json_t *wait_drained(struct td_daemon *d, const char *url, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		json_t *w = webhook(d, url);
		ck_assert_msg(w != NULL, "GET /v1/webhooks does not list %s", url);
		if (jint(w, "backlog") == 0 && jint(w, "in_flight") == 0 &&
		    json_is_integer(json_object_get(w, "backlog")))
			return w;
		char *text = json_dumps(w, JSON_COMPACT);
		ck_assert_msg(td_now_ms() < end, "backlog never reached 0: %s", text);
		free(text);
		json_decref(w);
		td_sleep_ms(50);
	}
}

static long long health_failing(struct td_daemon *d)
{
	json_t *h = td_get_json(d, "/v1/health");
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(jstr(h, "status"), "ok");
	ck_assert_msg(json_is_integer(json_object_get(h, "webhooks_failing")),
		      "/v1/health has no webhooks_failing");
	long long n = jint(h, "webhooks_failing");
	json_decref(h);
	return n;
}

/* joulectl status has a line that speaks of webhooks and says `failing` are failing. */
static void assert_status_line(struct td_daemon *d, int failing)
{
	struct td_run run;
	const char *argv[] = {"status", NULL};
	ck_assert_int_eq(td_ctl(d, NULL, argv, &run), 0);
	ck_assert_msg(run.code == 0, "joulectl status: %d %s", run.code, run.err);
	char want[16];
	snprintf(want, sizeof(want), "%d", failing);
	bool found = false;
	char *save = NULL;
	for (char *l = strtok_r(run.out, "\n", &save); l && !found; l = strtok_r(NULL, "\n", &save))
		found = strcasestr(l, "webhook") && strcasestr(l, "fail") && strstr(l, want);
	ck_assert_msg(found, "joulectl status has no line on webhooks with %d failing:\n%s",
		      failing, run.out);
	td_run_free(&run);
}

/* The value of the sample of metric `name` whose labels hold `label` (e.g.
 * url="http://…"); -1 when there is none. */
static double metric(struct td_daemon *d, const char *name, const char *label)
{
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	double v = -1;
	size_t nl = strlen(name);
	char *save = NULL;
	for (char *l = strtok_r(r.raw, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, name, nl) != 0 || l[nl] != '{')
			continue;
		char *close = strchr(l, '}');
		if (!close)
			continue;
		*close = '\0';
		if (strstr(l + nl, label))
			v = strtod(close + 1, NULL);
	}
	td_response_free(&r);
	return v;
}

/* ---- what a receiver got, against the log ---- */

/* Whether an endpoint is owed event ev. */
typedef bool (*owed_cb)(const json_t *ev, const void *arg);

static bool owed_all(const json_t *ev, const void *arg)
{
	(void)ev;
	(void)arg;
	return true;
}

/* An agent's share: events about its node, and job events of the jobs placed on it. */
struct agent_share {
	const char *node;
	long long jobs[8];
	int njobs;
};

static bool owed_agent(const json_t *ev, const void *arg)
{
	static const char *const job_types[] = {"job.placed", "job.running", "job.succeeded",
						"job.failed", "job.cancelled", "job.requeued",
						"job.device_failed", NULL};
	const struct agent_share *a = arg;
	if (strcmp(jstr(ev, "node"), a->node) == 0)
		return true;
	long long job = jint(ev, "job");
	for (int i = 0; i < a->njobs; i++)
		if (job == a->jobs[i])
			for (size_t k = 0; job_types[k]; k++)
				if (strcmp(jstr(ev, "type"), job_types[k]) == 0)
					return true;
	return false;
}

/* True when every event of log owed to the endpoint was acknowledged by r. */
static bool all_acked(struct receiver *r, const json_t *log, owed_cb owed, const void *arg,
		      long long *missing)
{
	size_t n;
	struct delivery *s = snapshot(r, &n);
	bool all = true;
	size_t i;
	json_t *e;
	json_array_foreach(log, i, e) {
		if (!owed(e, arg))
			continue;
		bool acked = false;
		for (size_t k = 0; k < n && !acked; k++)
			acked = s[k].seq == jint(e, "seq") && s[k].acked;
		if (!acked) {
			*missing = jint(e, "seq");
			all = false;
			break;
		}
	}
	free(s);
	return all;
}

/* Wait until r acknowledged every event of the log it is owed, with the log unchanged
 * between two looks; the log. */
static json_t *wait_all_acked(struct td_daemon *d, struct receiver *r, owed_cb owed,
			      const void *arg, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	json_t *prev = NULL;
	for (;;) {
		json_t *log = event_log(d);
		long long missing = 0;
		bool done = all_acked(r, log, owed, arg, &missing) && prev && json_equal(prev, log);
		json_decref(prev);
		if (done)
			return log;
		prev = log;
		ck_assert_msg(td_now_ms() < end, "seq %lld never reached the receiver on port %d "
			      "(%zu requests so far)", missing, r->port, requests(r));
		td_sleep_ms(100);
	}
}

/*
 * Check everything r received against log (the final log) for an endpoint owed what
 * `owed` says: every owed event was acknowledged; every request was a POST to HOOK_PATH
 * whose body is exactly an owed event of the log, with its headers; duplicates are exact
 * repeats; and no event about a job was sent before every earlier owed event about that
 * job was acknowledged (so first receipts of a job's events come in seq order). Returns
 * the number of repeated deliveries.
 */
static size_t check_deliveries(struct receiver *r, const json_t *log, owed_cb owed,
			       const void *arg, const char *who)
{
	size_t n;
	struct delivery *s = snapshot(r, &n);
	size_t repeats = 0, pairs = 0;

	for (size_t i = 0; i < n; i++) {
		const struct delivery *q = &s[i];
		ck_assert_msg(strcmp(q->method, "POST") == 0 && strcmp(q->path, HOOK_PATH) == 0,
			      "%s: request %zu is %s %s", who, i, q->method, q->path);
		ck_assert_msg(q->body && q->seq > 0, "%s: request %zu has no event body", who, i);
		const json_t *ev = log_find(log, q->seq);
		ck_assert_msg(ev != NULL, "%s: got seq %lld, which the log does not hold", who,
			      q->seq);
		ck_assert_msg(owed(ev, arg), "%s: got seq %lld (%s job %lld node %s), not its event",
			      who, q->seq, jstr(ev, "type"), jint(ev, "job"), jstr(ev, "node"));
		if (!json_equal(q->body, ev)) {
			char *a = json_dumps(q->body, JSON_COMPACT | JSON_SORT_KEYS);
			char *b = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
			ck_abort_msg("%s: body of seq %lld differs from the event:\n got %s\nwant %s",
				     who, q->seq, a, b);
		}
		char seq[32];
		snprintf(seq, sizeof(seq), "%lld", q->seq);
		ck_assert_msg(strcmp(q->idem, seq) == 0, "%s: seq %s with Idempotency-Key '%s'", who,
			      seq, q->idem);
		ck_assert_msg(strcmp(q->seq_hdr, seq) == 0, "%s: seq %s with Joule-Seq '%s'", who,
			      seq, q->seq_hdr);
		ck_assert_msg(strcmp(q->ev_hdr, jstr(ev, "type")) == 0,
			      "%s: seq %s (%s) with Joule-Event '%s'", who, seq, jstr(ev, "type"),
			      q->ev_hdr);
		ck_assert_msg(strncasecmp(q->ctype, "application/json", 16) == 0,
			      "%s: seq %s with Content-Type '%s'", who, seq, q->ctype);
		for (size_t k = 0; k < i; k++)
			if (s[k].seq == q->seq) {
				ck_assert_msg(json_equal(s[k].body, q->body),
					      "%s: seq %lld sent twice with different bodies", who,
					      q->seq);
				if (s[k].acked)
					repeats++;
				break;
			}
	}

	/* at least once */
	size_t i;
	json_t *e;
	json_array_foreach(log, i, e) {
		if (!owed(e, arg))
			continue;
		bool acked = false;
		for (size_t k = 0; k < n && !acked; k++)
			acked = s[k].seq == jint(e, "seq") && s[k].acked;
		ck_assert_msg(acked, "%s: seq %lld (%s) was never delivered", who, jint(e, "seq"),
			      jstr(e, "type"));
	}

	/* in order per job: each earlier owed event of the job acknowledged before the send */
	for (size_t k = 0; k < n; k++) {
		if (!s[k].job)
			continue;
		json_array_foreach(log, i, e) {
			if (jint(e, "job") != s[k].job || jint(e, "seq") >= s[k].seq || !owed(e, arg))
				continue;
			bool before = false;
			for (size_t a = 0; a < n && !before; a++)
				before = s[a].seq == jint(e, "seq") && s[a].acked &&
					 s[a].acked < s[k].got;
			ck_assert_msg(before, "%s: job %lld: seq %lld (%s) was sent before seq %lld "
				      "(%s) was acknowledged", who, s[k].job, s[k].seq,
				      jstr(log_find(log, s[k].seq), "type"), jint(e, "seq"),
				      jstr(e, "type"));
			pairs++;
		}
	}
	/* the same, as first receipts: per job, increasing seq */
	for (size_t k = 0; k < n; k++) {
		bool first = true;
		for (size_t a = 0; a < k && first; a++)
			first = s[a].seq != s[k].seq;
		if (!first || !s[k].job)
			continue;
		for (size_t a = 0; a < k; a++)
			ck_assert_msg(s[a].job != s[k].job || s[a].seq < s[k].seq,
				      "%s: job %lld: seq %lld first arrived after seq %lld", who,
				      s[k].job, s[k].seq, s[a].seq);
	}
	fprintf(stderr, "%s: %zu requests, %zu repeats, %zu per-job orderings checked\n", who, n,
		repeats, pairs);
	free(s);
	return repeats;
}

/* ---- daemon start with arguments ---- */

/* After kill -9: start jouled again on the same db and socket with args. */
static void restart_with(struct td_daemon *d, const char *const *args)
{
	ck_assert_int_eq(d->pid, 0);
	ck_assert_int_eq(td_spawn(d, args, NULL, &d->pid), 0);
	ck_assert_int_eq(td_wait_ready(d, TD_READY_TIMEOUT_MS), 0);
}

/* ---- tests ---- */

START_TEST(every_event_reaches_a_webhook_in_order_per_job_through_failures_and_kill_9)
{
	struct receiver *rx = receiver_new();
	receiver_start(rx, 0);
	char url[64];
	receiver_url(rx, url, sizeof(url));
	const char *const args[] = {"--demo-finish", "--webhook", url, "--webhook-timeout", "1",
				    "--webhook-retry-min-ms", "100", "--webhook-retry-max-ms",
				    "400", NULL};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start_args(&d, args), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	import(&d, fleet);
	json_decref(fleet);

	/* 1. the receiver answers 200 */
	long long a = submit(&d, "a-demo", H100, 8, 0, false, 2, NULL);
	json_decref(wait_all_acked(&d, rx, owed_all, NULL, 10000));
	json_t *w = webhook(&d, url);
	ck_assert_ptr_nonnull(w);
	assert_webhook_shape(w, "global");
	ck_assert(json_is_false(json_object_get(w, "failing")));
	ck_assert_int_gt(jint(w, "delivered"), 0);
	json_decref(w);
	ck_assert_int_eq(health_failing(&d), 0);

	/* 2. it answers 500: after 3 failures in a row the webhook is failing */
	set_mode(rx, M_500);
	long long b = submit(&d, "b-reported", H100, 8, 0, false, 0, NULL);
	w = wait_failing(&d, url, true, 10000);
	ck_assert_msg(json_is_string(json_object_get(w, "last_error")) && *jstr(w, "last_error"),
		      "failing without a last_error");
	ck_assert_int_ge(jint(w, "failures_in_row"), 3);
	ck_assert_int_gt(jint(w, "backlog") + jint(w, "in_flight"), 0);
	ck_assert_int_gt(jint(w, "failed"), 0);
	fprintf(stderr, "while answering 500: last_error \"%s\"\n", jstr(w, "last_error"));
	json_decref(w);
	ck_assert_int_eq(health_failing(&d), 1);
	assert_status_line(&d, 1);
	json_decref(wait_job(&d, b, "running", 5000)); /* demo mode ran it */
	report(&d, b, "succeeded");

	/* 3. it hangs: jouled's 1 s timeout ends each hung POST */
	set_mode(rx, M_HANG);
	long long c = submit(&d, "c-cancelled", NPU, 8, 0, false, 0, NULL);
	char path[64];
	snprintf(path, sizeof(path), "/v1/jobs/%lld", c);
	post(&d, "DELETE", path);
	for (int64_t end = td_now_ms() + 8000; atomic_load(&rx->hung_closed) < 1; td_sleep_ms(50))
		ck_assert_msg(td_now_ms() < end, "no hung POST was given up (%d hung)",
			      atomic_load(&rx->hung));
	long long hang_ms = atomic_load(&rx->hang_ms_min);
	fprintf(stderr, "a hung POST was dropped after %lld ms\n", hang_ms);
	ck_assert_msg(hang_ms >= 500 && hang_ms < 5000, "--webhook-timeout 1: dropped after %lld ms",
		      hang_ms);
	json_decref(wait_job(&d, a, "succeeded", 5000));

	/* 4. it is down (connection refused); preemption and a kill -9 meanwhile */
	receiver_stop(rx);
	long long p1 = submit(&d, "p1-low", H100, 8, 0, true, 0, NULL);
	long long p2 = submit(&d, "p2-low", H100, 8, 0, true, 0, NULL);
	json_t *j1 = get_job(&d, p1), *j2 = get_job(&d, p2);
	ck_assert_msg(active(j1) && active(j2), "the low jobs are %s and %s", jstr(j1, "state"),
		      jstr(j2, "state"));
	json_decref(j1);
	json_decref(j2);
	long long h = submit(&d, "h-high", H100, 8, 100, false, 0, NULL);
	json_t *jh = get_job(&d, h);
	ck_assert_msg(active(jh), "the high job is %s", jstr(jh, "state"));
	json_decref(jh);
	j1 = get_job(&d, p1);
	j2 = get_job(&d, p2);
	ck_assert_msg(strcmp(jstr(j1, "state"), "pending") == 0 ||
		      strcmp(jstr(j2, "state"), "pending") == 0, "nothing was preempted");
	json_decref(j1);
	json_decref(j2);
	long long dj = submit(&d, "d-failed", NPU, 8, 0, false, 0, NULL);
	report(&d, dj, "failed");
	w = wait_failing(&d, url, true, 5000);
	ck_assert_int_gt(jint(w, "backlog"), 0);
	json_decref(w);
	ck_assert_int_eq(td_kill9(&d), 0);
	restart_with(&d, args);
	w = wait_failing(&d, url, true, 5000);
	ck_assert_msg(jint(w, "backlog") > 0, "the backlog did not survive kill -9");
	json_decref(w);
	long long e = submit(&d, "e-demo", NPU, 8, 0, false, 2, NULL);
	td_sleep_ms(500);

	/* 5. back on the same port; kill -9 again while the backlog drains */
	int port = rx->port;
	set_mode(rx, M_OK);
	size_t before = requests(rx);
	receiver_start(rx, port);
	for (int64_t end = td_now_ms() + 8000; requests(rx) == before; td_sleep_ms(5))
		ck_assert_msg(td_now_ms() < end, "nothing was sent after the receiver came back");
	ck_assert_int_eq(td_kill9(&d), 0);
	restart_with(&d, args);
	json_decref(wait_job(&d, e, "succeeded", 10000));
	json_t *log = wait_all_acked(&d, rx, owed_all, NULL, 20000);
	w = wait_drained(&d, url, 5000);
	ck_assert(json_is_false(json_object_get(w, "failing")));
	ck_assert_int_eq(jint(w, "failures_in_row"), 0);
	ck_assert(json_is_string(json_object_get(w, "last_success_at")));
	json_decref(w);
	ck_assert_int_eq(health_failing(&d), 0);

	/* the whole story: every event once at least, exact, in order per job */
	size_t repeats = check_deliveries(rx, log, owed_all, NULL, "global webhook");
	static const char *const must[] = {"job.submitted", "job.placed", "job.running",
					   "job.succeeded", "job.failed", "job.cancelled",
					   "job.requeued", NULL};
	for (size_t k = 0; must[k]; k++) {
		bool seen = false;
		size_t i;
		json_t *ev;
		json_array_foreach(log, i, ev)
			seen |= strcmp(jstr(ev, "type"), must[k]) == 0;
		ck_assert_msg(seen, "the story has no %s event", must[k]);
	}
	fprintf(stderr, "%zu events, %zu requests, %zu repeated deliveries\n", json_array_size(log),
		requests(rx), repeats);
	json_decref(log);
	td_cleanup(&d);
	receiver_free(rx);
}
END_TEST

START_TEST(a_node_agent_gets_its_node_events_and_those_of_jobs_placed_on_it_only)
{
	struct receiver *ra = receiver_new(), *rb = receiver_new();
	receiver_start(ra, 0);
	receiver_start(rb, 0);
	char url_a[64], url_b[64];
	receiver_url(ra, url_a, sizeof(url_a));
	receiver_url(rb, url_b, sizeof(url_b));
	struct td_daemon d = {0};
	const char *const args[] = {"--webhook-retry-min-ms", "100", "--webhook-retry-max-ms", "400",
				    NULL};
	ck_assert_int_eq(td_start_args(&d, args), 0);

	/* tests/data/fleet.json without a-n2: every H100 job lands on a-n1, every NPU job
	 * on b-n1 */
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	json_t *nodes = json_object_get(fleet, "nodes");
	ck_assert_str_eq(jstr(json_array_get(nodes, 1), "name"), "a-n2");
	json_array_remove(nodes, 1);
	json_object_set_new(json_array_get(nodes, 1), "agent_url", json_string("ftp://b-n1/"));
	char *bad = json_dumps(fleet, JSON_COMPACT);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/fleet", bad, NULL, &r), 0);
	ck_assert_msg(r.status == 422 && strstr(jstr(json_object_get(r.json, "error"), "field"),
						"agent_url"),
		      "an ftp agent_url: %ld %s", r.status, r.raw);
	td_response_free(&r);
	free(bad);
	json_object_set_new(json_array_get(nodes, 0), "agent_url", json_string(url_a));
	json_object_set_new(json_array_get(nodes, 1), "agent_url", json_string(url_b));
	import(&d, fleet);
	json_decref(fleet);
	json_t *exp = td_get_json(&d, "/v1/fleet");
	ck_assert_ptr_nonnull(exp);
	size_t i;
	json_t *nd;
	json_array_foreach(json_object_get(exp, "nodes"), i, nd)
		ck_assert_str_eq(jstr(nd, "agent_url"),
				 strcmp(jstr(nd, "name"), "a-n1") == 0 ? url_a : url_b);
	json_decref(exp);

	long long j1 = submit(&d, "j1-low", H100, 8, 0, true, 0, NULL);
	json_t *job = get_job(&d, j1);
	ck_assert_str_eq(job_node(job), "a-n1");
	json_decref(job);
	long long j2 = submit(&d, "j2-npu", NPU, 8, 0, false, 0, NULL);
	job = get_job(&d, j2);
	ck_assert_str_eq(job_node(job), "b-n1");
	json_decref(job);
	report(&d, j2, "running");
	report(&d, j2, "failed");
	long long j3 = submit(&d, "j3-high", H100, 8, 10, false, 0, NULL); /* preempts j1 */
	job = get_job(&d, j3);
	ck_assert_str_eq(jstr(job, "state"), "placed");
	ck_assert_str_eq(job_node(job), "a-n1");
	json_decref(job);
	report(&d, j3, "running");
	report(&d, j3, "succeeded");
	job = wait_job(&d, j1, "placed", 3000); /* back on a-n1 */
	ck_assert_str_eq(job_node(job), "a-n1");
	ck_assert_int_eq(jint(job, "requeues"), 1);
	json_decref(job);
	/* one of its devices fails: device.failed, job.device_failed, job.requeued; the reset
	 * (device.ok) lets it back on */
	struct td_response fr = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/devices/a-n1/0/fail", "{\"reason\":\"maintenance\"}",
				 NULL, &fr), 0);
	ck_assert_msg(fr.status == 200, "fail a-n1/0: %ld %s", fr.status, fr.raw);
	td_response_free(&fr);
	json_decref(wait_job(&d, j1, "pending", 3000));
	post(&d, "POST", "/v1/devices/a-n1/0/reset");
	job = wait_job(&d, j1, "placed", 3000);
	ck_assert_str_eq(job_node(job), "a-n1");
	json_decref(job);
	char path[64];
	snprintf(path, sizeof(path), "/v1/jobs/%lld", j1);
	post(&d, "DELETE", path);
	post(&d, "POST", "/v1/nodes/b-n1/drain");
	post(&d, "POST", "/v1/nodes/b-n1/resume");

	const struct agent_share share_a = {"a-n1", {j1, j3}, 2};
	const struct agent_share share_b = {"b-n1", {j2}, 1};
	json_decref(wait_all_acked(&d, ra, owed_agent, &share_a, 10000));
	json_t *log = wait_all_acked(&d, rb, owed_agent, &share_b, 10000);
	td_sleep_ms(500); /* room for anything that should not come */
	json_decref(log);
	log = event_log(&d);
	check_deliveries(ra, log, owed_agent, &share_a, "agent of a-n1");
	check_deliveries(rb, log, owed_agent, &share_b, "agent of b-n1");
	/* what each must have had, by type */
	const struct {
		struct receiver *const *r;
		const char *type;
		int min;
	} want[] = {
		{&ra, "job.placed", 4}, {&ra, "job.requeued", 2}, {&ra, "job.running", 1},
		{&ra, "job.succeeded", 1}, {&ra, "job.cancelled", 1}, {&ra, "device.failed", 1},
		{&ra, "job.device_failed", 1}, {&ra, "device.ok", 1},
		{&rb, "job.placed", 1}, {&rb, "job.running", 1}, {&rb, "job.failed", 1},
		{&rb, "node.drained", 1}, {&rb, "node.up", 1},
	};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		size_t n;
		struct delivery *s = snapshot(*want[k].r, &n);
		int got = 0;
		for (size_t q = 0; q < n; q++)
			got += s[q].acked && strcmp(jstr(s[q].body, "type"), want[k].type) == 0;
		free(s);
		ck_assert_msg(got >= want[k].min, "agent of %s: %d %s, want %d",
			      *want[k].r == ra ? "a-n1" : "b-n1", got, want[k].type, want[k].min);
	}
	/* both are listed, as agents, with nothing left */
	for (int k = 0; k < 2; k++) {
		json_t *w = wait_drained(&d, k ? url_b : url_a, 3000);
		assert_webhook_shape(w, "agent");
		ck_assert(json_is_false(json_object_get(w, "failing")));
		json_decref(w);
	}
	json_decref(log);
	td_cleanup(&d);
	receiver_free(ra);
	receiver_free(rb);
}
END_TEST

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t sl = sizeof(sa);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

START_TEST(a_dead_webhook_shows_as_failing_with_a_growing_backlog_and_holds_up_nothing_else)
{
	struct receiver *good = receiver_new();
	receiver_start(good, 0);
	char url_good[64], url_dead[64];
	receiver_url(good, url_good, sizeof(url_good));
	snprintf(url_dead, sizeof(url_dead), "http://127.0.0.1:%d" HOOK_PATH, dead_port());
	const char *const args[] = {"--webhook", url_dead, "--webhook", url_good,
				    "--webhook-timeout", "1", "--webhook-retry-min-ms", "100",
				    "--webhook-retry-max-ms", "1000", NULL};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start_args(&d, args), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	import(&d, fleet);
	json_decref(fleet);

	int64_t worst = 0, took;
	char name[32];
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "first-%d", k);
		submit(&d, name, NPU, 1, 0, false, 0, &took);
		worst = took > worst ? took : worst;
	}
	json_t *w = wait_failing(&d, url_dead, true, 10000);
	assert_webhook_shape(w, "global");
	ck_assert_msg(*jstr(w, "last_error"), "failing without a last_error");
	ck_assert_int_eq(jint(w, "delivered"), 0);
	json_decref(w);
	ck_assert_int_eq(health_failing(&d), 1);
	json_t *log = wait_all_acked(&d, good, owed_all, NULL, 10000);
	char label_dead[96], label_good[96];
	snprintf(label_dead, sizeof(label_dead), "url=\"%s\"", url_dead);
	snprintf(label_good, sizeof(label_good), "url=\"%s\"", url_good);
	double b1 = metric(&d, "joule_webhook_backlog", label_dead);
	ck_assert_msg(b1 > 0, "joule_webhook_backlog{url=\"%s\"} is %g", url_dead, b1);
	json_decref(log);

	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "more-%d", k);
		submit(&d, name, NPU, 1, 0, false, 0, &took);
		worst = took > worst ? took : worst;
	}
	log = wait_all_acked(&d, good, owed_all, NULL, 10000);
	double b2 = metric(&d, "joule_webhook_backlog", label_dead);
	ck_assert_msg(b2 > b1, "the dead webhook's backlog did not grow: %g then %g", b1, b2);
	ck_assert_msg(metric(&d, "joule_webhook_backlog", label_good) == 0,
		      "the good webhook's backlog is not 0");
	ck_assert_msg(metric(&d, "joule_webhook_deliveries_total", "result=\"failed\"") > 0,
		      "no failed deliveries counted");
	ck_assert_msg(metric(&d, "joule_webhook_deliveries_total", "result=\"ok\"") >=
		      (double)json_array_size(log), "fewer ok deliveries than events");
	fprintf(stderr, "dead webhook backlog %g then %g; slowest submit %lld ms\n", b1, b2,
		(long long)worst);
	ck_assert_msg(worst < 1000, "a submit took %lld ms while a webhook is dead", (long long)worst);

	/* /v1/webhooks: every event is owed to the dead one, the oldest first */
	long long nlog = (long long)json_array_size(log);
	w = webhook(&d, url_dead);
	ck_assert_ptr_nonnull(w);
	ck_assert(json_is_true(json_object_get(w, "failing")));
	ck_assert_msg(jint(w, "backlog") <= nlog && jint(w, "backlog") + jint(w, "in_flight") >= nlog,
		      "backlog %lld, in flight %lld, %lld events", jint(w, "backlog"),
		      jint(w, "in_flight"), nlog);
	ck_assert_int_eq(jint(w, "oldest_seq"), jint(json_array_get(log, 0), "seq"));
	ck_assert_int_ge(jint(w, "failures_in_row"), 3);
	json_decref(w);
	w = wait_drained(&d, url_good, 3000);
	ck_assert(json_is_false(json_object_get(w, "failing")));
	ck_assert_int_ge(jint(w, "delivered"), nlog);
	json_decref(w);
	check_deliveries(good, log, owed_all, NULL, "good webhook");
	json_decref(log);
	ck_assert_int_eq(health_failing(&d), 1);

	/* joulectl */
	struct td_run run;
	const char *argv[] = {"webhooks", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, argv, &run), 0);
	ck_assert_msg(run.code == 0, "joulectl webhooks: %d %s", run.code, run.err);
	static const char *const cols[] = {"URL", "KIND", "BACKLOG", "FAILING", "LAST_ERROR", NULL};
	for (size_t k = 0; cols[k]; k++)
		ck_assert_msg(strstr(run.out, cols[k]), "joulectl webhooks has no %s:\n%s", cols[k],
			      run.out);
	ck_assert_msg(strstr(run.out, url_dead) && strstr(run.out, url_good),
		      "joulectl webhooks lacks a URL:\n%s", run.out);
	td_run_free(&run);
	assert_status_line(&d, 1);
	/* one warning in the log when it started failing (the 1 s tick notices), not one
	 * per retry */
	char *logtext = NULL;
	size_t loglen = 0;
	const char *warn = NULL;
	for (int k = 0; k < 40 && !warn; k++) {
		free(logtext);
		logtext = NULL;
		ck_assert_int_eq(td_read_file(d.log, &logtext, &loglen), 0);
		warn = strstr(logtext, "is failing");
		if (!warn)
			td_sleep_ms(100);
	}
	ck_assert_msg(warn != NULL, "no 'is failing' warning in the log:\n%s", logtext);
	ck_assert_msg(strstr(warn + 1, "is failing") == NULL, "the failing warning repeats:\n%s",
		      logtext);
	free(logtext);
	td_cleanup(&d);
	receiver_free(good);
}
END_TEST

/* Wait until r has had n requests (timeout_ms). */
static void wait_requests(struct receiver *r, size_t n, int timeout_ms)
{
	for (int64_t end = td_now_ms() + timeout_ms; requests(r) < n; td_sleep_ms(5))
		ck_assert_msg(td_now_ms() < end, "%zu requests, want %zu", requests(r), n);
}

/* The gaps between requests from..from+ngaps of r, each against the nominal delay
 * min_ms * 2^k capped at max_ms: at least half of it (jitter 0.5-1.0; nothing is sent
 * while backing off), at most all of it plus slack for a busy machine. */
static void assert_backoff(struct receiver *r, size_t from, int ngaps, int min_ms, int max_ms)
{
	size_t n;
	struct delivery *s = snapshot(r, &n);
	ck_assert_uint_ge(n, from + (size_t)ngaps + 1);
	char line[256];
	int o = 0;
	for (int k = 0; k < ngaps; k++) {
		long long nominal = (long long)min_ms << k;
		if (nominal > max_ms)
			nominal = max_ms;
		long long gap = s[from + (size_t)k + 1].at_ms - s[from + (size_t)k].at_ms;
		o += snprintf(line + o, sizeof(line) - (size_t)o, " %lld/%lld", gap, nominal);
		ck_assert_msg(gap >= nominal / 2 - 5, "retry %d came %lld ms after the failure, "
			      "before half of its %lld ms delay", k + 1, gap, nominal);
		ck_assert_msg(gap <= nominal + 500, "retry %d came %lld ms after the failure, "
			      "well after its %lld ms delay", k + 1, gap, nominal);
		ck_assert_msg(s[from + (size_t)k + 1].seq == s[from].seq,
			      "seq %lld was sent while seq %lld of the same job was failing",
			      s[from + (size_t)k + 1].seq, s[from].seq);
	}
	fprintf(stderr, "retry gaps (ms, got/nominal):%s\n", line);
	free(s);
}

START_TEST(retries_back_off_doubling_from_the_minimum_to_the_ceiling_and_a_success_resets_them)
{
	struct receiver *rx = receiver_new();
	receiver_start(rx, 0);
	char url[64];
	receiver_url(rx, url, sizeof(url));
	const char *const args[] = {"--webhook", url, "--webhook-retry-min-ms", "200",
				    "--webhook-retry-max-ms", "1600", NULL};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start_args(&d, args), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	import(&d, fleet);
	json_decref(fleet);
	json_decref(wait_all_acked(&d, rx, owed_all, NULL, 10000));
	json_decref(wait_drained(&d, url, 3000));

	/* one job's events only: job.submitted is retried alone, job.placed waits for it */
	set_mode(rx, M_500);
	size_t base = requests(rx);
	submit(&d, "retried", H100, 8, 0, false, 0, NULL);
	wait_requests(rx, base + 2, 5000);
	json_t *w = webhook(&d, url);
	ck_assert_ptr_nonnull(w);
	if (requests(rx) == base + 2) { /* no third failure yet */
		ck_assert_int_le(jint(w, "failures_in_row"), 2);
		ck_assert_msg(json_is_false(json_object_get(w, "failing")),
			      "failing after %lld failures", jint(w, "failures_in_row"));
	}
	json_decref(w);
	wait_requests(rx, base + 3, 5000);
	json_decref(wait_failing(&d, url, true, 1000));
	ck_assert_int_eq(health_failing(&d), 1);
	wait_requests(rx, base + 6, 10000);
	assert_backoff(rx, base, 5, 200, 1600);

	/* a success ends it: failing no more, and the next failure starts from the minimum */
	set_mode(rx, M_OK);
	w = wait_drained(&d, url, 5000);
	ck_assert(json_is_false(json_object_get(w, "failing")));
	ck_assert_int_eq(jint(w, "failures_in_row"), 0);
	json_decref(w);
	ck_assert_int_eq(health_failing(&d), 0);
	set_mode(rx, M_500);
	base = requests(rx);
	submit(&d, "retried-again", H100, 8, 0, false, 0, NULL);
	wait_requests(rx, base + 3, 5000);
	assert_backoff(rx, base, 2, 200, 1600);
	td_cleanup(&d);
	receiver_free(rx);
}
END_TEST

START_TEST(a_backlog_larger_than_the_memory_window_is_delivered_whole_across_kill_9)
{
	/* jouled holds at most 1,024 events per endpoint in memory and pages the rest in from
	 * its outbox: 1,760 events while the receiver is down go through that path, both
	 * before and after the kill -9 in the middle of the delivery */
	struct receiver *rx = receiver_new();
	receiver_start(rx, 0);
	char url[64];
	receiver_url(rx, url, sizeof(url));
	const char *const args[] = {"--webhook", url, "--webhook-retry-min-ms", "100",
				    "--webhook-retry-max-ms", "400", NULL};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start_args(&d, args), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	import(&d, fleet);
	json_decref(fleet);
	json_decref(wait_all_acked(&d, rx, owed_all, NULL, 10000));
	int port = rx->port;
	receiver_stop(rx);

	/* jobs that never fit (3 whole H100 nodes of 2): one event each; every tenth is
	 * cancelled too (a second event of the same job) */
	int64_t t0 = td_now_ms();
	char body[256], path[64];
	for (int k = 0; k < 1600; k++) {
		if (k == 700) {
			ck_assert_int_eq(td_kill9(&d), 0);
			restart_with(&d, args);
		}
		snprintf(body, sizeof(body), "{\"name\":\"bulk-%d\",\"kind\":\"training\",\"workers\":3,"
			 "\"devices\":8,\"accelerator\":{\"models\":[\"" H100 "\"]}}", k);
		struct td_response r = {0};
		ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs", body, NULL, &r), 0);
		ck_assert_msg(r.status == 201, "submit %d: %ld %s", k, r.status, r.raw);
		long long id = jint(r.json, "id");
		td_response_free(&r);
		if (k % 10 == 0) {
			snprintf(path, sizeof(path), "/v1/jobs/%lld", id);
			post(&d, "DELETE", path);
		}
	}
	fprintf(stderr, "1,600 submits and 160 cancels in %lld ms\n", (long long)(td_now_ms() - t0));
	json_t *w = wait_failing(&d, url, true, 5000);
	ck_assert_msg(jint(w, "backlog") + jint(w, "in_flight") > 1024, "backlog %lld",
		      jint(w, "backlog"));
	json_decref(w);

	/* back, and kill -9 again once it has had a few hundred */
	set_mode(rx, M_OK);
	receiver_start(rx, port);
	t0 = td_now_ms();
	for (int64_t end = td_now_ms() + 10000; requests(rx) < 300; td_sleep_ms(2))
		ck_assert_msg(td_now_ms() < end, "only %zu requests after the receiver came back",
			      requests(rx));
	ck_assert_int_eq(td_kill9(&d), 0);
	fprintf(stderr, "kill -9 after %zu requests\n", requests(rx));
	restart_with(&d, args);
	json_t *log = wait_all_acked(&d, rx, owed_all, NULL, 40000);
	fprintf(stderr, "%zu events delivered in %lld ms after the receiver came back\n",
		json_array_size(log), (long long)(td_now_ms() - t0));
	ck_assert_uint_gt(json_array_size(log), 1760);
	json_decref(wait_drained(&d, url, 5000));
	check_deliveries(rx, log, owed_all, NULL, "webhook after a long outage");
	json_decref(log);
	td_cleanup(&d);
	receiver_free(rx);
}
END_TEST

START_TEST(no_more_than_webhook_concurrency_posts_are_in_flight_to_one_endpoint)
{
	struct receiver *rx = receiver_new();
	set_mode(rx, M_HANG);
	receiver_start(rx, 0);
	char url[64];
	receiver_url(rx, url, sizeof(url));
	const char *const args[] = {"--webhook", url, "--webhook-concurrency", "2",
				    "--webhook-timeout", "2", "--webhook-retry-min-ms", "100",
				    "--webhook-retry-max-ms", "400", NULL};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start_args(&d, args), 0);
	/* four events about no job (free to go together) and three jobs' */
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	import(&d, fleet);
	json_decref(fleet);
	for (int k = 0; k < 3; k++)
		submit(&d, k ? "other" : "one", NPU, 1, 0, false, 0, NULL);
	for (int64_t end = td_now_ms() + 5000; atomic_load(&rx->hung_closed) < 1; td_sleep_ms(20)) {
		json_t *w = webhook(&d, url);
		ck_assert_ptr_nonnull(w);
		ck_assert_int_le(jint(w, "in_flight"), 2);
		json_decref(w);
		ck_assert_msg(td_now_ms() < end, "no POST timed out");
	}
	td_sleep_ms(1000); /* the retries, held again */
	int most = atomic_load(&rx->hung_max);
	fprintf(stderr, "at most %d POSTs held at once (concurrency 2)\n", most);
	ck_assert_int_le(most, 2);
	ck_assert_int_ge(most, 1);

	set_mode(rx, M_OK);
	json_t *log = wait_all_acked(&d, rx, owed_all, NULL, 15000);
	json_decref(wait_drained(&d, url, 5000));
	check_deliveries(rx, log, owed_all, NULL, "webhook with concurrency 2");
	json_decref(log);
	td_cleanup(&d);
	receiver_free(rx);
}
END_TEST

/* Run jouled (on d's socket and db) with args; its exit code, or -ETIMEDOUT when it was
 * still running after 10 s (then killed); stderr into err. */
static int jouled_exit(struct td_daemon *d, const char *const *argv, char *err, size_t errlen)
{
	char errpath[PATH_MAX];
	snprintf(errpath, sizeof(errpath), "%s/once.err", d->dir);
	const char *args[64] = {getenv("JOULED"), "--socket", d->sock, "--db", d->db};
	size_t n = 5;
	for (size_t i = 0; argv[i] && n < 63; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (e < 0)
			_exit(120);
		dup2(e, 1);
		dup2(e, 2);
		execv(args[0], (char *const *)args);
		_exit(122);
	}
	int status;
	if (td_wait_pid(pid, 10000, &status) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -ETIMEDOUT;
	}
	char *text;
	size_t len;
	err[0] = '\0';
	if (td_read_file(errpath, &text, &len) == 0) {
		snprintf(err, errlen, "%s", text);
		free(text);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(a_bad_webhook_flag_stops_jouled_with_a_message_naming_it)
{
	static const char *const bad[][4] = {
		{"--webhook", "ftp://x", NULL},
		{"--webhook", "not a url", NULL},
		{"--webhook", "127.0.0.1:8080/hook", NULL},
		{"--webhook", "", NULL},
	};
	struct td_daemon d = {0};
	ck_assert_int_eq(td_make_dir(&d), 0);
	char err[2048];
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		int code = jouled_exit(&d, bad[k], err, sizeof(err));
		ck_assert_msg(code > 0 && code < 128, "--webhook '%s': exit %d (stderr %s)", bad[k][1],
			      code, err);
		ck_assert_msg(strstr(err, "--webhook"), "--webhook '%s': stderr does not name the "
			      "option: %s", bad[k][1], err);
	}
	/* at most 8 */
	const char *nine[20];
	char urls[9][48];
	for (int k = 0; k < 9; k++) {
		snprintf(urls[k], sizeof(urls[k]), "http://127.0.0.1:%d/hook", 9000 + k);
		nine[2 * k] = "--webhook";
		nine[2 * k + 1] = urls[k];
	}
	nine[18] = NULL;
	int code = jouled_exit(&d, nine, err, sizeof(err));
	ck_assert_msg(code > 0 && code < 128, "nine --webhook: exit %d (stderr %s)", code, err);
	ck_assert_msg(strstr(err, "webhook"), "nine --webhook: stderr %s", err);
	td_cleanup(&d);

	/* http and https are both fine (nothing needs to answer to start) */
	const char *const ok[] = {"--webhook", "http://127.0.0.1:1/a", "--webhook",
				  "https://127.0.0.1:1/b", "--webhook-timeout", "3",
				  "--webhook-concurrency", "2", "--webhook-retry-min-ms", "50",
				  "--webhook-retry-max-ms", "5000", NULL};
	ck_assert_int_eq(td_start_args(&d, ok), 0);
	json_t *w = webhook(&d, "https://127.0.0.1:1/b");
	ck_assert_ptr_nonnull(w);
	assert_webhook_shape(w, "global");
	json_decref(w);
	td_cleanup(&d);
}
END_TEST

static Suite *webhooks_suite(void)
{
	Suite *s = suite_create("webhooks");
	TCase *delivery = tcase_create("delivery");
	tcase_set_timeout(delivery, 60);
	tcase_add_test(delivery,
		       every_event_reaches_a_webhook_in_order_per_job_through_failures_and_kill_9);
	tcase_add_test(delivery, a_node_agent_gets_its_node_events_and_those_of_jobs_placed_on_it_only);
	tcase_add_test(delivery,
		       retries_back_off_doubling_from_the_minimum_to_the_ceiling_and_a_success_resets_them);
	suite_add_tcase(s, delivery);
	TCase *outage = tcase_create("outage");
	tcase_set_timeout(outage, 90);
	tcase_add_test(outage, a_backlog_larger_than_the_memory_window_is_delivered_whole_across_kill_9);
	suite_add_tcase(s, outage);
	TCase *ops = tcase_create("operations");
	tcase_set_timeout(ops, 60);
	tcase_add_test(ops, a_dead_webhook_shows_as_failing_with_a_growing_backlog_and_holds_up_nothing_else);
	tcase_add_test(ops, a_bad_webhook_flag_stops_jouled_with_a_message_naming_it);
	tcase_add_test(ops, no_more_than_webhook_concurrency_posts_are_in_flight_to_one_endpoint);
	suite_add_tcase(s, ops);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(webhooks_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
