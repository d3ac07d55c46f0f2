/*
 * loadgen — closed-loop HTTP/1.1 load generator for jouled's Unix socket.
 *
 * Owns: N worker threads, each with one blocking keep-alive AF_UNIX connection and exactly
 * one request in flight (closed loop: the next request leaves when the answer is read), a
 * weighted mix of four routes, per-thread latency histograms and status counters that main
 * merges after join. Also a one-shot mode (--call) that sends a single request and prints
 * the answer, so scripts need no curl.
 *
 * Never: shares mutable state between threads except the known-id pool (a mutex) and the
 * request budget / stop flag (atomics); grows any buffer past its ceiling (a response over
 * LG_RESP_MAX is an I/O error, not a realloc); times anything but request send → last byte
 * of the answer, with CLOCK_MONOTONIC.
 *
 * Histogram: log-linear in microseconds; values below 128 µs are exact, above that each
 * power of two is split into 64 buckets (≤ 1.6 % relative error). Fixed size, so memory
 * does not grow with the run length.
 *
 * Capacity: GET --capacity-path (default /v1/capacity) as a polling planner does it: with
 * If-None-Match set to the last ETag this connection saw; 304 answers are counted.
 *
 * Substitution: a show needs a known job id and a cancel needs a job this thread submitted
 * and has not cancelled; when there is none the worker submits instead, counted under
 * "submit" and reported as "substituted".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jobmix.h"

#define LG_MAX_CONNS 1024
#define LG_REQ_MAX 4096                 /* one request: line + headers + body (not --call) */
#define LG_HDR_MAX (64 * 1024)          /* response header block */
#define LG_RESP_MAX (16 * 1024 * 1024)  /* whole response */
#define LG_BUF_INIT (64 * 1024)
#define LG_POOL_MAX 65536               /* known job ids (shared ring) */
#define LG_OWN_MAX 65536                /* ids a worker may still cancel */
#define LG_STATUS_MAX 600
#define LG_CALL_BODY_MAX (256 * 1024 * 1024)

#define LG_HIST_EXACT 128
#define LG_HIST_SUB 64
#define LG_HIST_N (LG_HIST_EXACT + (64 - 7) * LG_HIST_SUB)

enum lg_route { LG_SUBMIT, LG_LIST, LG_SHOW, LG_CANCEL, LG_CAPACITY, _LG_ROUTE_MAX };
static const char *const lg_route_names[_LG_ROUTE_MAX] = {"submit", "list", "show", "cancel",
							  "capacity"};

struct lg_hist {
	uint64_t count, max_us, sum_us;
	uint64_t b[LG_HIST_N];
};

struct lg_opts {
	const char *socket;
	unsigned conns;
	double seconds;
	uint64_t requests;   /* 0: run for seconds */
	unsigned mix[_LG_ROUTE_MAX];
	long pid;
	bool json;
	uint64_t seed;
	unsigned timeout_s;
	const char *label;
	const char *capacity_path;
	bool no_preempt;     /* every submitted training job "preemptible": false */
	/* --call */
	const char *call_method, *call_path, *call_body;
};

struct lg_worker {
	pthread_t thread;
	unsigned idx;
	int fd;
	uint64_t rng;
	char *buf;
	size_t cap, have;
	uint64_t seq;
	uint64_t *own;
	size_t nown;
	/* results */
	struct lg_hist hist[_LG_ROUTE_MAX];
	uint64_t status[LG_STATUS_MAX];
	uint64_t io_errors, reconnects, substituted, created;
	uint64_t not_modified;          /* capacity polls answered 304 */
	char etag[128];                 /* the last ETag a capacity answer carried */
	char last_error[160];
};

static struct lg_opts opts;
static pthread_barrier_t start_barrier;
static atomic_bool stop_flag;
static atomic_uint_fast64_t budget_taken;
static struct timespec deadline;
static atomic_int setup_failed;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pool[LG_POOL_MAX];
static size_t pool_n, pool_next;

/* ---------------- small helpers ---------------- */

static uint64_t ts_us(const struct timespec *a, const struct timespec *b)
{
	int64_t ns = (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
	return ns < 0 ? 0 : (uint64_t)(ns + 500) / 1000;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void hist_add(struct lg_hist *h, uint64_t us)
{
	size_t i;
	if (us < LG_HIST_EXACT) {
		i = (size_t)us;
	} else {
		unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 7 */
		uint64_t m = us >> (e - 6);                        /* 64..127 */
		i = LG_HIST_EXACT + (size_t)(e - 7) * LG_HIST_SUB + (size_t)(m - LG_HIST_SUB);
	}
	h->b[i]++;
	h->count++;
	h->sum_us += us;
	if (us > h->max_us)
		h->max_us = us;
}

static void hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
	for (size_t i = 0; i < LG_HIST_N; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

/* The value at quantile q, in ms: the midpoint of the bucket, clamped to the maximum. */
static double hist_quantile_ms(const struct lg_hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t acc = 0;
	for (size_t i = 0; i < LG_HIST_N; i++) {
		if ((acc += h->b[i]) < rank)
			continue;
		double v;
		if (i < LG_HIST_EXACT) {
			v = (double)i;
		} else {
			size_t k = i - LG_HIST_EXACT;
			unsigned shift = (unsigned)(k / LG_HIST_SUB) + 1;
			uint64_t m = (uint64_t)(k % LG_HIST_SUB) + LG_HIST_SUB;
			v = ((double)(m << shift) + (double)((m + 1) << shift) - 1) / 2;
		}
		if (v > (double)h->max_us)
			v = (double)h->max_us;
		return v / 1000.0;
	}
	return (double)h->max_us / 1000.0;
}

static int parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s must be an integer in [%" PRIu64 ", %" PRIu64 "], not '%s'\n",
			what, lo, hi, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* "submit=70,list=10,show=10,cancel=10"; a bare name means weight 1; unnamed routes 0. */
static int parse_mix(const char *spec, unsigned mix[_LG_ROUTE_MAX])
{
	char tmp[256];
	unsigned total = 0;
	if (strlen(spec) >= sizeof(tmp)) {
		fprintf(stderr, "loadgen: --mix too long\n");
		return -EINVAL;
	}
	memcpy(tmp, spec, strlen(spec) + 1);
	memset(mix, 0, sizeof(unsigned) * _LG_ROUTE_MAX);
	char *save = NULL;
	for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t w = 1;
		if (eq) {
			*eq = '\0';
			if (parse_u64(eq + 1, "a --mix weight", 0, 1000000, &w) < 0)
				return -EINVAL;
		}
		int r;
		for (r = 0; r < _LG_ROUTE_MAX; r++)
			if (strcmp(tok, lg_route_names[r]) == 0)
				break;
		if (r == _LG_ROUTE_MAX) {
			fprintf(stderr, "loadgen: unknown route '%s' in --mix (submit, list, show, cancel, "
					"capacity)\n", tok);
			return -EINVAL;
		}
		mix[r] = (unsigned)w;
		total += (unsigned)w;
	}
	if (!total) {
		fprintf(stderr, "loadgen: --mix has no positive weight\n");
		return -EINVAL;
	}
	return 0;
}

/* ---------------- the connection ---------------- */

static int lg_connect(const char *path, unsigned timeout_s, char *errbuf, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(errbuf, errlen, "socket path too long");
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(errbuf, errlen, "socket: %s", strerror(e));
		return -e;
	}
	struct timeval tv = {.tv_sec = timeout_s};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(errbuf, errlen, "connect %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct lg_resp {
	int status;
	bool close;
	const char *etag;             /* the ETag header's value, or NULL */
	size_t etag_len;
	const char *body;
	size_t body_len, total_len;   /* total_len: header + body, to consume afterwards */
};

static int buf_reserve(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	if (need > LG_RESP_MAX + 1)
		return -EMSGSIZE;
	size_t n = *cap ? *cap : LG_BUF_INIT;
	while (n < need)
		n *= 2;
	if (n > LG_RESP_MAX + 1)
		n = LG_RESP_MAX + 1;
	char *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Finds "Name:" at the start of a header line within [h, end); value into *val. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (const char *line = h; line < end;) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = eol;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		line = eol + 1;
	}
	return NULL;
}

/*
 * Reads one whole response into *buf (which may already hold `*have` bytes). On success
 * fills *r with pointers into *buf, valid until the buffer is consumed; bytes past the
 * response stay in the buffer.
 */
static int read_response(int fd, char **buf, size_t *cap, size_t *have, struct lg_resp *r,
			 char *errbuf, size_t errlen)
{
	size_t hdr_end = 0;
	for (;;) {
		if (*have >= 4) {
			char *p = memmem(*buf, *have, "\r\n\r\n", 4);
			if (p) {
				hdr_end = (size_t)(p - *buf) + 4;
				break;
			}
		}
		if (*have >= LG_HDR_MAX) {
			snprintf(errbuf, errlen, "response header block over %d bytes", LG_HDR_MAX);
			return -EMSGSIZE;
		}
		int rc = buf_reserve(buf, cap, *have + 16384 > LG_HDR_MAX ? LG_HDR_MAX + 1 : *have + 16384);
		if (rc < 0) {
			snprintf(errbuf, errlen, "buffer: %s", strerror(-rc));
			return rc;
		}
		ssize_t n = recv(fd, *buf + *have, *cap - *have - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n == 0 ? ECONNRESET : errno;
			snprintf(errbuf, errlen, "%s", n == 0 ? "peer closed the connection"
							      : e == EAGAIN ? "timed out waiting for an answer"
									    : strerror(e));
			return -e;
		}
		*have += (size_t)n;
	}
	const char *h = *buf, *hend = *buf + hdr_end;
	int maj, min, st, off = 0;
	if (sscanf(h, "HTTP/%d.%d %3d%n", &maj, &min, &st, &off) != 3 || off != 12 ||
	    st < 100 || st > 599) {
		snprintf(errbuf, errlen, "bad status line");
		return -EPROTO;
	}
	size_t vl;
	const char *v = find_header(h, hend, "Transfer-Encoding", &vl);
	if (v) {
		snprintf(errbuf, errlen, "chunked responses are not supported");
		return -EPROTO;
	}
	v = find_header(h, hend, "Content-Length", &vl);
	size_t clen = 0;
	if (v) {
		char num[24];
		uint64_t u;
		if (vl == 0 || vl >= sizeof(num)) {
			snprintf(errbuf, errlen, "bad Content-Length");
			return -EPROTO;
		}
		memcpy(num, v, vl);
		num[vl] = '\0';
		if (parse_u64(num, "Content-Length", 0, LG_RESP_MAX, &u) < 0) {
			snprintf(errbuf, errlen, "bad Content-Length");
			return -EPROTO;
		}
		clen = (size_t)u;
	} else if (st >= 200 && st != 204 && st != 304) {
		snprintf(errbuf, errlen, "response without Content-Length");
		return -EPROTO;
	}
	r->etag = find_header(h, hend, "ETag", &r->etag_len);
	v = find_header(h, hend, "Connection", &vl);
	r->close = (v && vl == 5 && strncasecmp(v, "close", 5) == 0) || (maj == 1 && min == 0);
	size_t total = hdr_end + clen;
	int rc = buf_reserve(buf, cap, total + 1);
	if (rc < 0) {
		snprintf(errbuf, errlen, "response of %zu bytes: %s", total, strerror(-rc));
		return rc;
	}
	while (*have < total) {
		ssize_t n = recv(fd, *buf + *have, *cap - *have - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n == 0 ? ECONNRESET : errno;
			snprintf(errbuf, errlen, "%s", n == 0 ? "peer closed mid-body"
							      : e == EAGAIN ? "timed out reading the body"
									    : strerror(e));
			return -e;
		}
		*have += (size_t)n;
	}
	r->status = st;
	r->body = *buf + hdr_end;
	r->body_len = clen;
	r->total_len = total;
	return 0;
}

static void consume(char *buf, size_t *have, size_t n)
{
	memmove(buf, buf + n, *have - n);
	*have -= n;
}

/* The job id from a job answer: the first "id": key (codec_job_encode writes it first). */
static bool body_job_id(const char *body, size_t len, uint64_t *id)
{
	const char *p = memmem(body, len, "\"id\":", 5);
	if (!p)
		return false;
	p += 5;
	const char *end = body + len;
	uint64_t v = 0;
	bool any = false;
	while (p < end && *p == ' ')
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++, any = true) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (any)
		*id = v;
	return any;
}

/* ---------------- the request mix ---------------- */

static void pool_add(uint64_t id)
{
	pthread_mutex_lock(&pool_lock);
	pool[pool_next] = id;
	pool_next = (pool_next + 1) % LG_POOL_MAX;
	if (pool_n < LG_POOL_MAX)
		pool_n++;
	pthread_mutex_unlock(&pool_lock);
}

static bool pool_pick(uint64_t *rng, uint64_t *id)
{
	bool ok = false;
	pthread_mutex_lock(&pool_lock);
	if (pool_n) {
		*id = pool[jobmix_rand(rng) % pool_n];
		ok = true;
	}
	pthread_mutex_unlock(&pool_lock);
	return ok;
}

/* A submit body from the shared mix (bench/jobmix.c) into b; its length, or -1. */
static int submit_body(struct lg_worker *w, char *b, size_t n)
{
	char name[48];
	snprintf(name, sizeof(name), "lg-%u-%" PRIu64, w->idx, w->seq);
	return jobmix_body(&w->rng, name, "bench", !opts.no_preempt, b, n);
}

static enum lg_route pick_route(struct lg_worker *w, unsigned total)
{
	unsigned x = (unsigned)(jobmix_rand(&w->rng) % total), acc = 0;
	for (int r = 0; r < _LG_ROUTE_MAX; r++)
		if (x < (acc += opts.mix[r]))
			return (enum lg_route)r;
	return LG_SUBMIT;
}

static bool should_stop(void)
{
	if (atomic_load_explicit(&stop_flag, memory_order_relaxed))
		return true;
	if (opts.requests)
		return atomic_fetch_add(&budget_taken, 1) >= opts.requests;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return !ts_before(&now, &deadline);
}

static void *worker_main(void *arg)
{
	struct lg_worker *w = arg;
	char req[LG_REQ_MAX], body[1024];
	unsigned total = 0;
	for (int r = 0; r < _LG_ROUTE_MAX; r++)
		total += opts.mix[r];

	w->fd = lg_connect(opts.socket, opts.timeout_s, w->last_error, sizeof(w->last_error));
	if (w->fd < 0)
		atomic_store(&setup_failed, 1);
	pthread_barrier_wait(&start_barrier);
	if (atomic_load(&setup_failed))
		goto out;

	while (!should_stop()) {
		enum lg_route route = pick_route(w, total);
		uint64_t id = 0;
		int len;
		if (route == LG_SHOW && !pool_pick(&w->rng, &id)) {
			route = LG_SUBMIT;
			w->substituted++;
		}
		if (route == LG_CANCEL) {
			if (w->nown)
				id = w->own[--w->nown];
			else {
				route = LG_SUBMIT;
				w->substituted++;
			}
		}
		switch (route) {
		case LG_SUBMIT: {
			w->seq++;
			int bl = submit_body(w, body, sizeof(body));
			len = bl < 0 ? -1
				     : snprintf(req, sizeof(req),
						"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\n"
						"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
						bl, body);
			break;
		}
		case LG_LIST:
			len = snprintf(req, sizeof(req),
				       "GET /v1/jobs?limit=50 HTTP/1.1\r\nHost: localhost\r\n\r\n");
			break;
		case LG_SHOW:
			len = snprintf(req, sizeof(req),
				       "GET /v1/jobs/%" PRIu64 " HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
			break;
		case LG_CAPACITY:
			len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%s\r\n",
				       opts.capacity_path, w->etag[0] ? "If-None-Match: " : "", w->etag,
				       w->etag[0] ? "\r\n" : "");
			break;
		default:
			len = snprintf(req, sizeof(req),
				       "DELETE /v1/jobs/%" PRIu64 " HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
			break;
		}
		if (len < 0 || (size_t)len >= sizeof(req)) {
			snprintf(w->last_error, sizeof(w->last_error), "request does not fit %d bytes",
				 LG_REQ_MAX);
			w->io_errors++;
			break;
		}

		struct timespec t0, t1;
		struct lg_resp resp;
		char eb[160];
		int rc;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((rc = send_all(w->fd, req, (size_t)len)) < 0) {
			snprintf(eb, sizeof(eb), "send: %s", strerror(-rc));
		} else {
			rc = read_response(w->fd, &w->buf, &w->cap, &w->have, &resp, eb, sizeof(eb));
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc < 0) {
			w->io_errors++;
			memcpy(w->last_error, eb, sizeof(eb));
			goto reconnect;
		}
		hist_add(&w->hist[route], ts_us(&t0, &t1));
		w->status[resp.status]++;
		if (route == LG_SUBMIT && resp.status == 201) {
			w->created++;
			if (body_job_id(resp.body, resp.body_len, &id)) {
				pool_add(id);
				if (w->nown < LG_OWN_MAX)
					w->own[w->nown++] = id;
			}
		}
		if (route == LG_CAPACITY) {
			if (resp.status == 304)
				w->not_modified++;
			if (resp.etag && resp.etag_len < sizeof(w->etag)) {
				memcpy(w->etag, resp.etag, resp.etag_len);
				w->etag[resp.etag_len] = '\0';
			}
		}
		consume(w->buf, &w->have, resp.total_len);
		if (!resp.close)
			continue;
reconnect:
		close(w->fd);
		w->have = 0;
		w->reconnects++;
		w->fd = lg_connect(opts.socket, opts.timeout_s, eb, sizeof(eb));
		if (w->fd < 0) {
			memcpy(w->last_error, eb, sizeof(eb));
			w->io_errors++;
			break;
		}
	}
out:
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	return NULL;
}

/* ---------------- the daemon's /proc figures ---------------- */

struct lg_proc {
	bool ok;
	double cpu_s;
	long vmhwm_kib, vmrss_kib;
};

static int read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t have = 0;
	while (have < n - 1) {
		ssize_t r = read(fd, buf + have, n - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	close(fd);
	buf[have] = '\0';
	return 0;
}

static void proc_read(long pid, struct lg_proc *p)
{
	char path[64], buf[8192];
	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *q = strrchr(buf, ')');
	unsigned long long ut, st;
	if (!q || sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return;
	long hz = sysconf(_SC_CLK_TCK);
	p->cpu_s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	char *h = strstr(buf, "\nVmHWM:"), *r = strstr(buf, "\nVmRSS:");
	if (!h || !r || sscanf(h + 7, "%ld", &p->vmhwm_kib) != 1 ||
	    sscanf(r + 7, "%ld", &p->vmrss_kib) != 1)
		return;
	p->ok = true;
}

/* ---------------- one-shot mode ---------------- */

static int call_once(void)
{
	char eb[160], head[1024];
	char *body = NULL, *buf = NULL;
	size_t blen = 0, cap = 0, have = 0;
	int rc = 1, fd = -1;

	if (opts.call_body) {
		int bfd = open(opts.call_body, O_RDONLY | O_CLOEXEC);
		struct stat sb;
		if (bfd < 0 || fstat(bfd, &sb) < 0) {
			fprintf(stderr, "loadgen: %s: %s\n", opts.call_body, strerror(errno));
			if (bfd >= 0)
				close(bfd);
			return 1;
		}
		if (sb.st_size > LG_CALL_BODY_MAX || !(body = malloc((size_t)sb.st_size + 1))) {
			fprintf(stderr, "loadgen: %s: too large or out of memory\n", opts.call_body);
			close(bfd);
			return 1;
		}
		while (blen < (size_t)sb.st_size) {
			ssize_t n = read(bfd, body + blen, (size_t)sb.st_size - blen);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "loadgen: reading %s: %s\n", opts.call_body,
					n ? strerror(errno) : "short read");
				close(bfd);
				goto out;
			}
			blen += (size_t)n;
		}
		close(bfd);
	}
	int hl = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s"
			  "Content-Length: %zu\r\n\r\n",
			  opts.call_method, opts.call_path,
			  body ? "Content-Type: application/json\r\n" : "", blen);
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		fprintf(stderr, "loadgen: request line too long\n");
		goto out;
	}
	if ((fd = lg_connect(opts.socket, opts.timeout_s, eb, sizeof(eb))) < 0) {
		fprintf(stderr, "loadgen: %s\n", eb);
		goto out;
	}
	struct timespec t0, t1;
	struct lg_resp resp;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int e = send_all(fd, head, (size_t)hl);
	if (!e && blen)
		e = send_all(fd, body, blen);
	/* A server refusing the body (413) may answer and close before reading all of it:
	 * after a failed send, still look for its answer. */
	if (read_response(fd, &buf, &cap, &have, &resp, eb, sizeof(eb)) < 0) {
		if (e < 0)
			fprintf(stderr, "loadgen: send: %s (and no answer: %s)\n", strerror(-e), eb);
		else
			fprintf(stderr, "loadgen: %s\n", eb);
		goto out;
	}
	if (e < 0)
		fprintf(stderr, "loadgen: send: %s after %s; the server answered anyway\n",
			strerror(-e), blen ? "part of the body" : "part of the request");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (fwrite(resp.body, 1, resp.body_len, stdout) != resp.body_len || putchar('\n') == EOF ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "loadgen: write to stdout failed\n");
		goto out;
	}
	fprintf(stderr, "loadgen: %s %s -> %d in %.3f ms\n", opts.call_method, opts.call_path,
		resp.status, (double)ts_us(&t0, &t1) / 1000.0);
	rc = resp.status >= 200 && resp.status < 300 ? 0 : 1;
out:
	if (fd >= 0)
		close(fd);
	free(body);
	free(buf);
	return rc;
}

/* ---------------- main ---------------- */

static volatile sig_atomic_t caught_signal;

/* Stop the run; main prints what it has, then dies of the same signal so a calling shell
 * sees the interrupt (bash continues a script whose child exited normally on SIGINT). */
static void on_signal(int sig)
{
	caught_signal = sig;
	atomic_store(&stop_flag, true);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: loadgen --socket PATH [OPTIONS]\n"
		"       loadgen --socket PATH --call METHOD PATH [--body FILE]\n"
		"Closed-loop load on jouled's HTTP API over a Unix socket; prints one summary.\n\n"
		"  --socket PATH        the daemon's socket (required)\n"
		"  --connections N      concurrent keep-alive connections, one thread each (default 1)\n"
		"  --seconds S          run time (default 5)\n"
		"  --requests N         stop after N requests in total instead\n"
		"  --mix SPEC           route weights (default submit=70,list=10,show=10,cancel=10)\n"
		"  --pid PID            report that process's CPU time and peak RSS (the daemon)\n"
		"  --json               print one JSON line instead of the table\n"
		"  --label TEXT         copied into the JSON line\n"
		"  --seed N             request stream seed (default 1)\n"
		"  --timeout S          per-request socket timeout (default 30)\n"
		"  --capacity-path P    what the capacity route polls (default /v1/capacity), with\n"
		"                       If-None-Match: the last ETag its connection saw\n"
		"  --no-preemptible     submit no preemptible job (a fill that settles: no\n"
		"                       preemption cascades re-running the queue pass)\n"
		"  --call METHOD PATH   send one request, print the answer body; exit 0 on 2xx\n"
		"  --body FILE          request body for --call\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"socket", required_argument, NULL, 'S'},  {"connections", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 't'}, {"requests", required_argument, NULL, 'n'},
		{"mix", required_argument, NULL, 'm'},     {"pid", required_argument, NULL, 'p'},
		{"json", no_argument, NULL, 'j'},          {"seed", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 'T'}, {"call", required_argument, NULL, 'C'},
		{"body", required_argument, NULL, 'b'},    {"label", required_argument, NULL, 'l'},
		{"capacity-path", required_argument, NULL, 'P'},
		{"no-preemptible", no_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	struct lg_worker *ws = NULL;
	uint64_t u;
	int c, rc = 1;

	opts.conns = 1;
	opts.seconds = 5;
	opts.seed = 1;
	opts.timeout_s = 30;
	opts.capacity_path = "/v1/capacity";
	if (parse_mix("submit=70,list=10,show=10,cancel=10", opts.mix) < 0)
		return 2;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'S': opts.socket = optarg; break;
		case 'c':
			if (parse_u64(optarg, "--connections", 1, LG_MAX_CONNS, &u) < 0)
				return 2;
			opts.conns = (unsigned)u;
			break;
		case 't': {
			char *end;
			errno = 0;
			opts.seconds = strtod(optarg, &end);
			if (!*optarg || *end || errno || !(opts.seconds > 0) || opts.seconds > 86400) {
				fprintf(stderr, "loadgen: --seconds must be in (0, 86400]\n");
				return 2;
			}
			break;
		}
		case 'n':
			if (parse_u64(optarg, "--requests", 1, UINT64_MAX / 2, &opts.requests) < 0)
				return 2;
			break;
		case 'm':
			if (parse_mix(optarg, opts.mix) < 0)
				return 2;
			break;
		case 'p':
			if (parse_u64(optarg, "--pid", 1, INT_MAX, &u) < 0)
				return 2;
			opts.pid = (long)u;
			break;
		case 'j': opts.json = true; break;
		case 'l': opts.label = optarg; break;
		case 's':
			if (parse_u64(optarg, "--seed", 0, UINT64_MAX, &opts.seed) < 0)
				return 2;
			break;
		case 'T':
			if (parse_u64(optarg, "--timeout", 1, 3600, &u) < 0)
				return 2;
			opts.timeout_s = (unsigned)u;
			break;
		case 'C':
			if (optind >= argc) {
				fprintf(stderr, "loadgen: --call needs METHOD PATH\n");
				return 2;
			}
			opts.call_method = optarg;
			opts.call_path = argv[optind++];
			break;
		case 'b': opts.call_body = optarg; break;
		case 'N': opts.no_preempt = true; break;
		case 'P':
			if (optarg[0] != '/' || strlen(optarg) > 1024 || strpbrk(optarg, " \r\n")) {
				fprintf(stderr, "loadgen: --capacity-path must be a path of at most 1024 "
						"bytes without spaces\n");
				return 2;
			}
			opts.capacity_path = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !opts.socket) {
		usage(stderr);
		return 2;
	}
	if (opts.call_method)
		return call_once();
	if (opts.label && strpbrk(opts.label, "\"\\")) {
		fprintf(stderr, "loadgen: --label may not contain quotes or backslashes\n");
		return 2;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		perror("loadgen: sigaction");
		return 1;
	}
	if (!(ws = calloc(opts.conns, sizeof(*ws)))) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	int e = pthread_barrier_init(&start_barrier, NULL, opts.conns + 1);
	if (e) {
		fprintf(stderr, "loadgen: pthread_barrier_init: %s\n", strerror(e));
		free(ws);
		return 1;
	}
	unsigned started = 0;
	for (unsigned i = 0; i < opts.conns; i++) {
		struct lg_worker *w = &ws[i];
		w->idx = i;
		w->fd = -1;
		w->rng = opts.seed * 1000003u + i + 1;
		if (!(w->own = malloc(LG_OWN_MAX * sizeof(*w->own)))) {
			fprintf(stderr, "loadgen: out of memory\n");
			goto fail_start;
		}
		if ((e = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			fprintf(stderr, "loadgen: pthread_create: %s\n", strerror(e));
			goto fail_start;
		}
		started++;
	}

	struct lg_proc p0, p1;
	struct timespec t0, t1;
	struct rusage ru;
	if (opts.pid)
		proc_read(opts.pid, &p0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long long ns = (long long)(opts.seconds * 1e9);
	deadline.tv_sec = t0.tv_sec + (time_t)(ns / 1000000000);
	deadline.tv_nsec = t0.tv_nsec + (long)(ns % 1000000000);
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_barrier_wait(&start_barrier);
	clock_gettime(CLOCK_MONOTONIC, &t0);   /* every connection is open: the run starts */
	for (unsigned i = 0; i < started; i++)
		pthread_join(ws[i].thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (opts.pid)
		proc_read(opts.pid, &p1);
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		memset(&ru, 0, sizeof(ru));

	if (atomic_load(&setup_failed)) {
		for (unsigned i = 0; i < started; i++)
			if (ws[i].last_error[0]) {
				fprintf(stderr, "loadgen: connection %u: %s\n", i, ws[i].last_error);
				break;
			}
		goto out;
	}

	/* Merge. */
	static struct lg_hist all, route[_LG_ROUTE_MAX];
	static uint64_t status[LG_STATUS_MAX];
	uint64_t io_errors = 0, reconnects = 0, substituted = 0, created = 0, not_modified = 0;
	const char *an_error = NULL;
	for (unsigned i = 0; i < started; i++) {
		struct lg_worker *w = &ws[i];
		for (int r = 0; r < _LG_ROUTE_MAX; r++) {
			hist_merge(&route[r], &w->hist[r]);
			hist_merge(&all, &w->hist[r]);
		}
		for (int s = 0; s < LG_STATUS_MAX; s++)
			status[s] += w->status[s];
		io_errors += w->io_errors;
		reconnects += w->reconnects;
		substituted += w->substituted;
		created += w->created;
		not_modified += w->not_modified;
		if (w->io_errors && !an_error)
			an_error = w->last_error;
	}
	double secs = (double)ts_us(&t0, &t1) / 1e6;
	if (secs <= 0)
		secs = 1e-6;
	double self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			  (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	bool have_proc = opts.pid && p0.ok && p1.ok;
	uint64_t non2xx = 0;
	for (int s = 0; s < LG_STATUS_MAX; s++)
		if ((s < 200 || s > 299) && s != 304)   /* 304: a poll's "not modified" */
			non2xx += status[s];

	if (opts.json) {
		printf("{\"label\":\"%s\",\"connections\":%u,\"seconds\":%.3f,\"requests\":%" PRIu64
		       ",\"rps\":%.1f,\"submits_201\":%" PRIu64 ",\"submits_per_s\":%.1f,"
		       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
		       "\"mean_ms\":%.3f,\"non2xx\":%" PRIu64 ",\"io_errors\":%" PRIu64
		       ",\"reconnects\":%" PRIu64
		       ",\"substituted\":%" PRIu64 ",\"loadgen_cpu_s\":%.2f"
		       ",\"capacity_304\":%" PRIu64 ",\"capacity_304_pct\":%.2f",
		       opts.label ? opts.label : "", opts.conns, secs, all.count,
		       (double)all.count / secs, created, (double)created / secs,
		       hist_quantile_ms(&all, 0.50), hist_quantile_ms(&all, 0.99),
		       hist_quantile_ms(&all, 0.999), (double)all.max_us / 1000.0,
		       all.count ? (double)all.sum_us / (double)all.count / 1000.0 : 0.0, non2xx,
		       io_errors, reconnects, substituted, self_cpu, not_modified,
		       route[LG_CAPACITY].count
			       ? 100.0 * (double)not_modified / (double)route[LG_CAPACITY].count : 0.0);
		if (have_proc)
			printf(",\"daemon_cpu_s\":%.2f,\"daemon_cpu_pct\":%.1f,\"daemon_vmhwm_kib\":%ld,"
			       "\"daemon_vmrss_kib\":%ld",
			       p1.cpu_s - p0.cpu_s, (p1.cpu_s - p0.cpu_s) / secs * 100, p1.vmhwm_kib,
			       p1.vmrss_kib);
		printf(",\"status\":{");
		bool first = true;
		for (int s = 0; s < LG_STATUS_MAX; s++)
			if (status[s]) {
				printf("%s\"%d\":%" PRIu64, first ? "" : ",", s, status[s]);
				first = false;
			}
		printf("},\"routes\":{");
		first = true;
		for (int r = 0; r < _LG_ROUTE_MAX; r++) {
			if (!route[r].count)
				continue;
			printf("%s\"%s\":{\"count\":%" PRIu64 ",\"r_p50_ms\":%.3f,\"r_p99_ms\":%.3f,"
			       "\"r_max_ms\":%.3f}",
			       first ? "" : ",", lg_route_names[r], route[r].count,
			       hist_quantile_ms(&route[r], 0.50), hist_quantile_ms(&route[r], 0.99),
			       (double)route[r].max_us / 1000.0);
			first = false;
		}
		printf("}}\n");
	} else {
		printf("loadgen: %u connection%s, %.2f s, mix submit=%u list=%u show=%u cancel=%u "
		       "capacity=%u\n",
		       opts.conns, opts.conns == 1 ? "" : "s", secs, opts.mix[LG_SUBMIT],
		       opts.mix[LG_LIST], opts.mix[LG_SHOW], opts.mix[LG_CANCEL], opts.mix[LG_CAPACITY]);
		printf("  requests    %" PRIu64 " (%.1f/s)\n", all.count, (double)all.count / secs);
		printf("  submits 201 %" PRIu64 " (%.1f/s)\n", created, (double)created / secs);
		printf("  latency ms  p50 %.3f  p99 %.3f  p999 %.3f  max %.3f  mean %.3f\n",
		       hist_quantile_ms(&all, 0.50), hist_quantile_ms(&all, 0.99),
		       hist_quantile_ms(&all, 0.999), (double)all.max_us / 1000.0,
		       all.count ? (double)all.sum_us / (double)all.count / 1000.0 : 0.0);
		printf("  %-8s %10s %10s %10s %10s\n", "route", "count", "p50 ms", "p99 ms", "max ms");
		for (int r = 0; r < _LG_ROUTE_MAX; r++)
			printf("  %-8s %10" PRIu64 " %10.3f %10.3f %10.3f\n", lg_route_names[r],
			       route[r].count, hist_quantile_ms(&route[r], 0.50),
			       hist_quantile_ms(&route[r], 0.99), (double)route[r].max_us / 1000.0);
		printf("  status     ");
		for (int s = 0; s < LG_STATUS_MAX; s++)
			if (status[s])
				printf(" %d:%" PRIu64, s, status[s]);
		printf("\n");
		printf("  non-2xx     %" PRIu64 "\n", non2xx);
		if (route[LG_CAPACITY].count)
			printf("  capacity    %" PRIu64 " of %" PRIu64 " polls answered 304 (%.2f%%)\n",
			       not_modified, route[LG_CAPACITY].count,
			       100.0 * (double)not_modified / (double)route[LG_CAPACITY].count);
		printf("  io errors   %" PRIu64 " (reconnects %" PRIu64 ")%s%s\n", io_errors,
		       reconnects, an_error ? "  last: " : "", an_error ? an_error : "");
		if (substituted)
			printf("  substituted %" PRIu64 " show/cancel -> submit (no id to use yet)\n",
			       substituted);
		printf("  loadgen cpu %.2f s\n", self_cpu);
		if (have_proc)
			printf("  daemon      cpu %.2f s (%.0f%% of one core), VmHWM %ld KiB, VmRSS %ld KiB\n",
			       p1.cpu_s - p0.cpu_s, (p1.cpu_s - p0.cpu_s) / secs * 100, p1.vmhwm_kib,
			       p1.vmrss_kib);
		else if (opts.pid)
			printf("  daemon      /proc/%ld unreadable (gone?)\n", opts.pid);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "loadgen: write to stdout failed\n");
		goto out;
	}
	rc = io_errors ? 3 : 0;
	goto out;

fail_start:
	/* Threads already started wait at a barrier that can no longer fill: nothing to
	 * report yet, so leave without joining them. */
	fprintf(stderr, "loadgen: start-up failed\n");
	exit(1);
out:
	for (unsigned i = 0; i < opts.conns; i++) {
		free(ws[i].own);
		free(ws[i].buf);
	}
	free(ws);
	pthread_barrier_destroy(&start_barrier);
	if (caught_signal) {
		signal(caught_signal, SIG_DFL);
		raise(caught_signal);
	}
	return rc;
}
