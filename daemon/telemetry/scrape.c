/*
 * scrape — the exporter scraper: schedule, transfer slots and libcurl-on-libuv glue
 * (contract: scrape.h).
 *
 * Owns: struct scrape and everything hanging off it — the targets (dense array + id map +
 * due-time min-heap + intrusive FIFO ready queue), the transfer pool (max_concurrency
 * slots allocated once), each in-flight slot's easy handle and body buffer, the curluv
 * (curl multi on the loop, daemon/net/curluv.c) and the schedule timer.
 * Never: calls libcurl from inside a libcurl callback (socket, timer, write), calls the user
 * callback from inside an API function or from inside a libcurl call, frees a handle outside
 * its close callback, grows a body past max_body + 1 bytes, starts more than max_concurrency
 * transfers, pops more than DUE_BATCH due targets per wakeup.
 *
 * libcurl on libuv is curluv's (daemon/net/curluv.h): it hands each finished transfer to
 * xfer_finish (result code, HTTP status, body; the user callback), then runs pump.
 *
 * Transfer slot states: FREE (on the free list) → BUSY (easy handle in the multi, t->xfer
 * points back) → FINISHING (easy removed and cleaned up, result handed to the user; the body
 * is still ours) → FREE. Cancel: BUSY → FREE without a callback.
 *
 * Shutdown order (scrape_close): cancel every BUSY slot (curluv_remove, then
 * curl_easy_cleanup), close the curluv and the schedule timer; done fires when both closed.
 */
#include "scrape.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "curluv.h"
#include "hmap.h"

#ifndef JOULE_VERSION
#define JOULE_VERSION "dev"
#endif

#define DUE_BATCH 1024              /* due targets popped per wakeup */
#define BODY_FIRST_CHUNK 16384      /* first body allocation */
#define MAX_BODY_CEILING ((size_t)1 << 30)

enum xfer_state { XFER_FREE, XFER_BUSY, XFER_FINISHING };

struct scrape_target;

struct scrape_xfer {
	struct scrape *s;
	struct scrape_target *t;        /* BUSY: the target; else NULL */
	enum xfer_state state;
	CURL *easy;
	char *buf;                      /* body, NUL-terminated; cap <= max_body + 1 */
	size_t len, cap;
	bool too_big;
	bool no_memory;
	uint64_t started;
	struct scrape_xfer *next_free;
	char errbuf[CURL_ERROR_SIZE];
};

struct scrape_target {
	uint32_t id;
	uint32_t idx;                   /* in s->targets */
	uint32_t heap;                  /* in s->heap */
	uint64_t due;                   /* uv_now() time */
	char *url;
	struct scrape_xfer *xfer;       /* in flight, or NULL */
	bool queued;                    /* on the ready queue */
	struct scrape_target *qprev, *qnext;
};

struct scrape {
	uv_loop_t *loop;
	struct scrape_options opt;
	uint64_t rng;
	scrape_done_cb cb;
	void *ud;

	struct curluv *cu;
	struct curl_slist *headers;
	uv_timer_t sched_timer;
	uint64_t sched_at;              /* when sched_timer fires (uv_now time), UINT64_MAX: idle */
	int handles_open;               /* the schedule timer and the curluv, until closed */

	struct scrape_target **targets; /* dense, ntargets used */
	uint32_t ntargets, cap_targets;
	struct scrape_target **heap;    /* min-heap on due, same members as targets */
	struct hmap ids;                /* id → index in targets */
	struct scrape_target *qhead, *qtail;

	struct scrape_xfer *pool;       /* max_concurrency slots */
	struct scrape_xfer *free_xfers;

	struct scrape_stats st;
	bool closing;
	bool finished;
	void (*done)(void *ud);
	void *done_ud;
};

static void pump(struct scrape *s);
static void on_sched_timer(uv_timer_t *h);

/* ---- small helpers ---------------------------------------------------------------- */

/* splitmix64: small, seedable, good enough to spread due times. */
static uint64_t rng_next(struct scrape *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct scrape *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static uint64_t next_due(struct scrape *s, uint64_t prev, uint64_t now)
{
	uint64_t iv = s->opt.interval_ms, j = s->opt.jitter_ms;
	uint64_t step = iv - j + rng_below(s, 2 * j + 1);
	uint64_t d = prev + step;
	return d > now ? d : now + step;
}

/* Make the schedule timer fire at `at` (uv_now time; now or earlier: next loop turn) unless
 * it already does: pump runs after every socket event and need not touch the timer heap. */
static void sched_arm(struct scrape *s, uint64_t at)
{
	uint64_t now = uv_now(s->loop);

	if (at < now)
		at = now;
	if (at == s->sched_at)
		return;
	s->sched_at = at;
	uv_timer_start(&s->sched_timer, on_sched_timer, at - now, 0);
}

/* ---- due-time heap ---------------------------------------------------------------- */

static void heap_set(struct scrape *s, uint32_t i, struct scrape_target *t)
{
	s->heap[i] = t;
	t->heap = i;
}

static void heap_up(struct scrape *s, uint32_t i)
{
	struct scrape_target *t = s->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (s->heap[p]->due <= t->due)
			break;
		heap_set(s, i, s->heap[p]);
		i = p;
	}
	heap_set(s, i, t);
}

/* n: the heap's size (targets counted in it). */
static void heap_down(struct scrape *s, uint32_t i, uint32_t n)
{
	struct scrape_target *t = s->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		uint64_t best = t->due;
		if (l < n && s->heap[l]->due < best) {
			m = l;
			best = s->heap[l]->due;
		}
		if (l + 1 < n && s->heap[l + 1]->due < best)
			m = l + 1;
		if (m == i)
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, t);
}

/* Remove heap[i] from a heap of n members (n - 1 remain). */
static void heap_remove(struct scrape *s, uint32_t i, uint32_t n)
{
	uint32_t last = n - 1;
	if (i != last) {
		struct scrape_target *m = s->heap[last];
		heap_set(s, i, m);
		heap_up(s, i);
		heap_down(s, m->heap, last);
	}
	s->heap[last] = NULL;
}

/* ---- ready queue ------------------------------------------------------------------ */

static void queue_push(struct scrape *s, struct scrape_target *t)
{
	assert(!t->queued);
	t->queued = true;
	t->qnext = NULL;
	t->qprev = s->qtail;
	if (s->qtail)
		s->qtail->qnext = t;
	else
		s->qhead = t;
	s->qtail = t;
	s->st.queued++;
}

static void queue_unlink(struct scrape *s, struct scrape_target *t)
{
	if (!t->queued)
		return;
	if (t->qprev)
		t->qprev->qnext = t->qnext;
	else
		s->qhead = t->qnext;
	if (t->qnext)
		t->qnext->qprev = t->qprev;
	else
		s->qtail = t->qprev;
	t->qprev = t->qnext = NULL;
	t->queued = false;
	s->st.queued--;
}

/* ---- closing ----------------------------------------------------------------------- */

static void one_closed(struct scrape *s)
{
	assert(s->handles_open > 0);
	if (--s->handles_open == 0 && s->closing) {
		s->finished = true;
		if (s->done)
			s->done(s->done_ud);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	one_closed(h->data);
}

static void on_curluv_closed(void *ud)
{
	one_closed(ud);
}

/* ---- transfers -------------------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct scrape_xfer *x = ud;
	size_t n = size * nmemb, max = x->s->opt.max_body;

	if (n > max - x->len) {
		x->too_big = true;
		return 0;                       /* CURLE_WRITE_ERROR: abort the transfer */
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : BODY_FIRST_CHUNK;
		while (cap < x->len + n + 1)
			cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
		if (cap > max + 1)
			cap = max + 1;
		char *p = realloc(x->buf, cap);
		if (!p) {
			x->no_memory = true;
			return 0;
		}
		x->buf = p;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, n);
	x->len += n;
	x->buf[x->len] = '\0';
	x->s->st.bytes += n;
	return n;
}

static void xfer_release(struct scrape *s, struct scrape_xfer *x)
{
	free(x->buf);
	x->buf = NULL;
	x->len = x->cap = 0;
	x->too_big = x->no_memory = false;
	x->t = NULL;
	x->errbuf[0] = '\0';
	x->state = XFER_FREE;
	x->next_free = s->free_xfers;
	s->free_xfers = x;
}

/* BUSY → FREE without a callback. Not from inside a libcurl callback. */
static void xfer_cancel(struct scrape *s, struct scrape_xfer *x)
{
	assert(x->state == XFER_BUSY);
	curluv_remove(s->cu, x->easy);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	x->t->xfer = NULL;
	s->st.cancelled++;
	assert(s->st.in_flight > 0);
	s->st.in_flight--;
	xfer_release(s, x);
}

#define SETOPT(easy, opt, val) \
	do { if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK) goto fail; } while (0)

/* Start a transfer for t in a free slot. Returns 0 or -ENOMEM/-EIO (slot left free). */
static int xfer_start(struct scrape *s, struct scrape_target *t)
{
	struct scrape_xfer *x = s->free_xfers;
	const struct scrape_options *o = &s->opt;
	CURL *easy;

	assert(x && !t->xfer);
	easy = curl_easy_init();
	if (!easy)
		return -ENOMEM;
	x->errbuf[0] = '\0';
	SETOPT(easy, CURLOPT_URL, t->url);
	SETOPT(easy, CURLOPT_PRIVATE, (void *)x);
	SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	SETOPT(easy, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	SETOPT(easy, CURLOPT_LOW_SPEED_LIMIT, (long)o->low_speed_bytes);
	SETOPT(easy, CURLOPT_LOW_SPEED_TIME, (long)o->low_speed_time_s);
	SETOPT(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
	SETOPT(easy, CURLOPT_WRITEFUNCTION, on_write);
	SETOPT(easy, CURLOPT_WRITEDATA, (void *)x);
	SETOPT(easy, CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(easy, CURLOPT_HTTPHEADER, s->headers);
	SETOPT(easy, CURLOPT_USERAGENT, "jouled/" JOULE_VERSION);
	/* Accepting gzip is optional: a libcurl without zlib refuses it, which is fine. */
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	if (curluv_add(s->cu, easy) < 0)
		goto fail;

	s->free_xfers = x->next_free;
	x->next_free = NULL;
	x->state = XFER_BUSY;
	x->easy = easy;
	x->t = t;
	x->started = uv_now(s->loop);
	t->xfer = x;
	s->st.in_flight++;
	return 0;
fail:
	curl_easy_cleanup(easy);
	return -EIO;
}

/* curluv's done: BUSY → FINISHING → callback → FREE. */
static void xfer_finish(void *ud, CURL *easy, CURLcode code)
{
	struct scrape *s = ud;
	struct scrape_xfer *x = NULL;
	struct scrape_result r = {0};
	char msg[64];
	long status = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	assert(x && x->state == XFER_BUSY && x->easy == easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	x->easy = NULL;
	x->state = XFER_FINISHING;
	assert(s->st.in_flight > 0);
	s->st.in_flight--;

	struct scrape_target *t = x->t;
	uint32_t id = t->id;
	t->xfer = NULL;

	r.http_status = status;
	r.body = x->buf ? x->buf : "";
	r.len = x->len;
	r.duration_ms = uv_now(s->loop) - x->started;
	if (x->too_big || code == CURLE_FILESIZE_EXCEEDED) {
		r.rc = -EFBIG;
		snprintf(msg, sizeof(msg), "body over %zu bytes", s->opt.max_body);
		r.error = msg;
	} else if (x->no_memory) {
		r.rc = -ENOMEM;
		r.error = "out of memory for the body";
	} else if (code != CURLE_OK) {
		r.rc = curluv_errno(code);
		r.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
	} else if (status != 200) {
		r.rc = -EREMOTEIO;
		snprintf(msg, sizeof(msg), "HTTP %ld", status);
		r.error = msg;
	}
	if (r.rc == 0)
		s->st.ok++;
	else
		s->st.failed++;

	/* The slot stays FINISHING (not counted free) while the user holds the body; the user
	 * may remove t or close s meanwhile, neither touches this slot. */
	s->cb(s->ud, id, &r);
	xfer_release(s, x);
}

/* Report a transfer that could not even start, as a failed result. */
static void start_failed(struct scrape *s, struct scrape_target *t, int rc)
{
	struct scrape_result r = {
		.rc = rc,
		.body = "",
		.error = rc == -ENOMEM ? "out of memory starting the transfer"
				       : "libcurl refused the transfer options",
	};
	s->st.failed++;
	s->cb(s->ud, t->id, &r);
}

/* Move due targets to the ready queue, fill free slots, arm the schedule timer. Runs only
 * from loop callbacks (it may call the user callback through start_failed). */
static void pump(struct scrape *s)
{
	if (s->closing)
		return;

	uint64_t now = uv_now(s->loop);
	uint32_t popped = 0;
	while (s->ntargets && s->heap[0]->due <= now && popped < DUE_BATCH) {
		struct scrape_target *t = s->heap[0];
		if (t->xfer || t->queued)
			s->st.skipped++;
		else
			queue_push(s, t);
		t->due = next_due(s, t->due, now);
		heap_down(s, 0, s->ntargets);
		popped++;
	}
	while (s->qhead && s->free_xfers && !s->closing) {
		struct scrape_target *t = s->qhead;
		queue_unlink(s, t);
		int r = xfer_start(s, t);
		if (r < 0)
			start_failed(s, t, r);   /* t may be gone now */
	}
	if (s->closing)
		return;
	if (popped == DUE_BATCH)
		sched_arm(s, now);
	else if (s->ntargets)
		sched_arm(s, s->heap[0]->due);
	else {
		uv_timer_stop(&s->sched_timer);
		s->sched_at = UINT64_MAX;
	}
}

static void on_curluv_after(void *ud)
{
	pump(ud);
}

static void on_sched_timer(uv_timer_t *h)
{
	struct scrape *s = h->data;

	s->sched_at = UINT64_MAX;
	if (!s->closing)
		pump(s);
}

/* ---- options ---------------------------------------------------------------------- */

void scrape_options_default(struct scrape_options *o)
{
	*o = (struct scrape_options){
		.interval_ms = 15000,
		.jitter_ms = SCRAPE_JITTER_AUTO,
		.max_concurrency = 64,
		.connect_timeout_ms = 2000,
		.timeout_ms = 5000,
		.low_speed_bytes = 100,
		.low_speed_time_s = 3,
		.max_targets = 65536,
		.max_body = (size_t)8 << 20,
	};
}

static int options_check(const struct scrape_options *in, struct scrape_options *o, struct err *e)
{
	struct scrape_options d;

	scrape_options_default(&d);
	*o = in ? *in : d;
#define DEFAULT_IF_ZERO(f) do { if (!o->f) o->f = d.f; } while (0)
	DEFAULT_IF_ZERO(interval_ms);
	DEFAULT_IF_ZERO(max_concurrency);
	DEFAULT_IF_ZERO(connect_timeout_ms);
	DEFAULT_IF_ZERO(timeout_ms);
	DEFAULT_IF_ZERO(low_speed_bytes);
	DEFAULT_IF_ZERO(low_speed_time_s);
	DEFAULT_IF_ZERO(max_targets);
	DEFAULT_IF_ZERO(max_body);
#undef DEFAULT_IF_ZERO
	if (o->jitter_ms == SCRAPE_JITTER_AUTO)
		o->jitter_ms = o->interval_ms / 10;
	if (o->jitter_ms > o->interval_ms / 2)
		return err_set(e, ERR_INVALID, "jitter_ms", "jitter %u ms is over half the interval (%u ms)",
			       o->jitter_ms, o->interval_ms);
	if (o->max_concurrency > SCRAPE_MAX_CONCURRENCY)
		return err_set(e, ERR_INVALID, "max_concurrency", "max_concurrency %u is over %u",
			       o->max_concurrency, SCRAPE_MAX_CONCURRENCY);
	if (o->max_body > MAX_BODY_CEILING)
		return err_set(e, ERR_INVALID, "max_body", "max_body %zu is over %zu bytes",
			       o->max_body, MAX_BODY_CEILING);
	if (o->max_targets > (UINT32_MAX >> 1))
		return err_set(e, ERR_INVALID, "max_targets", "max_targets %u is too large", o->max_targets);
	return 0;
}

/* ---- public API ------------------------------------------------------------------- */

int scrape_new(uv_loop_t *loop, const struct scrape_options *opt, uint32_t seed,
	       scrape_done_cb cb, void *ud, struct scrape **out, struct err *e)
{
	struct scrape_options o;
	struct scrape *s = NULL;
	bool global = false;
	int r;

	assert(loop && cb && out);
	r = options_check(opt, &o, e);
	if (r < 0)
		return r;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		r = err_set(e, -EIO, NULL, "curl_global_init failed");
		goto fail;
	}
	global = true;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->loop = loop;
	s->opt = o;
	s->rng = ((uint64_t)seed << 32) ^ 0x6a09e667f3bcc909ULL ^ seed;
	s->cb = cb;
	s->ud = ud;
	hmap_init_u64(&s->ids);
	s->pool = calloc(o.max_concurrency, sizeof(*s->pool));
	if (!s->pool)
		goto nomem;
	for (uint32_t i = o.max_concurrency; i-- > 0;) {
		s->pool[i].s = s;
		s->pool[i].next_free = s->free_xfers;
		s->free_xfers = &s->pool[i];
	}
	s->headers = curl_slist_append(NULL, "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1");
	if (!s->headers)
		goto nomem;
	if ((r = curluv_new(loop, (long)o.max_concurrency, xfer_finish, on_curluv_after, s,
			    &s->cu)) < 0) {
		if (r == -ENOMEM)
			goto nomem;
		r = err_set(e, -EIO, NULL, "libcurl refused the multi handle options");
		goto fail;
	}

	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	s->st.async_dns = vi && (vi->features & CURL_VERSION_ASYNCHDNS);

	/* Nothing below fails: the handles need closing from here on. */
	uv_timer_init(loop, &s->sched_timer);
	s->sched_timer.data = s;
	s->sched_at = UINT64_MAX;
	s->handles_open = 2;
	*out = s;
	return 0;

nomem:
	r = err_set(e, -ENOMEM, NULL, "out of memory creating the scraper");
fail:
	if (s) {
		curl_slist_free_all(s->headers);
		free(s->pool);
		hmap_free(&s->ids);
		free(s);
	}
	if (global)
		curl_global_cleanup();
	return r;
}

/* ERR_INVALID unless url is an http or https URL with a host, at most SCRAPE_URL_MAX bytes. */
static int url_check(const char *url)
{
	CURLU *u;
	char *scheme = NULL;
	int r = ERR_INVALID;

	if (strnlen(url, SCRAPE_URL_MAX + 1) > SCRAPE_URL_MAX)
		return ERR_INVALID;
	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
		r = 0;
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

static void target_remove(struct scrape *s, uint32_t idx)
{
	struct scrape_target *t = s->targets[idx];
	uint32_t last = s->ntargets - 1;

	if (t->xfer)
		xfer_cancel(s, t->xfer);
	queue_unlink(s, t);
	heap_remove(s, t->heap, s->ntargets);
	hmap_del_u64(&s->ids, t->id);
	if (idx != last) {
		struct scrape_target *m = s->targets[last];
		s->targets[idx] = m;
		m->idx = idx;
		hmap_put_u64(&s->ids, m->id, idx);   /* replaces: never allocates */
	}
	s->targets[last] = NULL;
	s->ntargets--;
	free(t->url);
	free(t);
}

/* Room for one more target in both arrays (doubling, capped at max_targets). */
static int targets_reserve(struct scrape *s)
{
	if (s->ntargets < s->cap_targets)
		return 0;
	uint32_t cap = s->cap_targets ? s->cap_targets * 2 : 64;
	if (cap > s->opt.max_targets)
		cap = s->opt.max_targets;
	struct scrape_target **a = realloc(s->targets, cap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	s->targets = a;
	struct scrape_target **h = realloc(s->heap, cap * sizeof(*h));
	if (!h)
		return -ENOMEM;                /* targets grew, cap_targets did not: harmless */
	s->heap = h;
	s->cap_targets = cap;
	return 0;
}

int scrape_set_target(struct scrape *s, uint32_t target, const char *url)
{
	uint32_t idx;
	bool present;
	int r;

	assert(s);
	if (s->closing)
		return -ECANCELED;
	present = hmap_get_u64(&s->ids, target, &idx);
	if (!url || !*url) {
		if (present)
			target_remove(s, idx);
		return 0;
	}
	r = url_check(url);
	if (r < 0)
		return r;
	if (present) {
		struct scrape_target *t = s->targets[idx];
		if (strcmp(t->url, url) == 0)
			return 0;
		char *copy = strdup(url);
		if (!copy)
			return -ENOMEM;
		if (t->xfer)
			xfer_cancel(s, t->xfer);
		free(t->url);
		t->url = copy;
		return 0;
	}
	if (s->ntargets >= s->opt.max_targets)
		return ERR_TOO_MANY;
	r = targets_reserve(s);
	if (r < 0)
		return r;
	struct scrape_target *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->url = strdup(url);
	if (!t->url || hmap_put_u64(&s->ids, target, s->ntargets) < 0) {
		free(t->url);
		free(t);
		return -ENOMEM;
	}
	uint64_t now = uv_now(s->loop);
	t->id = target;
	t->idx = s->ntargets;
	t->due = now + rng_below(s, s->opt.interval_ms);
	s->targets[s->ntargets] = t;
	s->heap[s->ntargets] = t;
	t->heap = s->ntargets;
	s->ntargets++;
	heap_up(s, t->heap);
	/* Let the schedule look again from the loop (never run the callback from here). */
	if (s->heap[0] == t)
		sched_arm(s, t->due);
	return 0;
}

void scrape_stats(const struct scrape *s, struct scrape_stats *out)
{
	*out = s->st;
	out->targets = s->ntargets;
}

void scrape_close(struct scrape *s, void (*done)(void *ud), void *ud)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	s->done = done;
	s->done_ud = ud;

	for (uint32_t i = 0; i < s->opt.max_concurrency; i++)
		if (s->pool[i].state == XFER_BUSY)
			xfer_cancel(s, &s->pool[i]);
	while (s->qhead)
		queue_unlink(s, s->qhead);
	curluv_close(s->cu, on_curluv_closed, s);
	uv_close((uv_handle_t *)&s->sched_timer, on_handle_closed);
}

void scrape_free(struct scrape *s)
{
	if (!s)
		return;
	assert(s->finished && "scrape_free before scrape_close's done");
	for (uint32_t i = 0; i < s->ntargets; i++) {
		free(s->targets[i]->url);
		free(s->targets[i]);
	}
	free(s->targets);
	free(s->heap);
	hmap_free(&s->ids);
	for (uint32_t i = 0; i < s->opt.max_concurrency; i++)
		assert(s->pool[i].state == XFER_FREE && !s->pool[i].buf);
	free(s->pool);
	curl_slist_free_all(s->headers);
	curluv_free(s->cu);
	free(s);
	curl_global_cleanup();
}
