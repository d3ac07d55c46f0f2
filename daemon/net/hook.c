/*
 * hook — the webhook dispatcher (contract: hook.h).
 *
 * Owns: struct hook, the endpoints (array, URL map), each endpoint's window (an array of
 * held events in seq order, each with its type and body), one struct hook_xfer per transfer
 * in flight (easy handle, header list), the curluv, the retry and kick timers.
 * Never: calls the user from inside an API function (the kick timer runs pump from the
 * loop), starts a transfer for an endpoint whose next_try is in the future, lets two events
 * with the same non-zero key be in flight to one endpoint, frees a held event whose transfer
 * is in flight (hook_reset detaches it instead).
 *
 * pump (kick timer, retry timer, after every curl wakeup): for each endpoint that may send
 * now — refill if spilled and the window is below half; then scan the window in seq order:
 * an event in flight, or one skipped, blocks its key; the first unblocked queued events
 * start, up to concurrency in flight. Then arm the retry timer for the earliest next_try.
 */
#include "hook.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "curluv.h"
#include "hmap.h"

#ifndef JOULE_VERSION
#define JOULE_VERSION "dev"
#endif

struct hook_xfer;

struct hook_item {
	uint64_t seq, key;
	char type[32];
	char *body;
	size_t len;
	struct hook_xfer *xfer;         /* in flight, or NULL */
};

struct hook_ep {
	char *url;
	bool agent, spilled;
	struct hook_item *items;        /* window, seq order */
	uint32_t nitems;
	uint64_t last_seq;              /* highest seq ever held (refill reads after it) */
	uint64_t backlog;
	uint32_t in_flight, fails;
	uint64_t delivered, failed;
	uint64_t next_try, last_success;  /* uv_now() times */
	char *last_error;
};

struct hook_xfer {
	struct hook *h;
	uint32_t ep;
	uint64_t seq;
	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	struct hook_xfer *prev, *next;  /* h->xfers */
};

struct hook {
	uv_loop_t *loop;
	struct hook_options opt;
	uint64_t rng;
	hook_delivered_cb delivered;
	hook_refill_cb refill;
	void *ud;
	struct curluv *cu;
	uv_timer_t retry, kick;
	struct hook_ep *eps;
	uint32_t neps, caps;
	struct hmap by_url;
	struct hook_xfer *xfers;
	int handles_open;
	bool closing, finished;
	void (*done)(void *ud);
	void *done_ud;
};

static void pump(struct hook *h);
static void on_timer(uv_timer_t *t);

void hook_options_default(struct hook_options *o)
{
	*o = (struct hook_options){
		.concurrency = 4, .max_endpoints = 4096, .connect_timeout_ms = 2000,
		.timeout_ms = 10000, .retry_min_ms = 1000, .retry_max_ms = 300000,
		.window = 1024, .failing_after = 3,
	};
}

static uint64_t rng_next(struct hook *h)
{
	uint64_t z = (h->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void kick(struct hook *h)
{
	if (!h->closing && !uv_is_active((uv_handle_t *)&h->kick))
		uv_timer_start(&h->kick, on_timer, 0, 0);
}

/* ---- transfers ---- */

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
	(void)data;
	(void)ud;
	return size * nmemb;
}

static void xfer_free(struct hook *h, struct hook_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		h->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	curl_slist_free_all(x->headers);
	free(x);
}

static struct hook_item *find_item(struct hook_ep *e, uint64_t seq, uint32_t *at)
{
	uint32_t lo = 0, hi = e->nitems;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (e->items[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < e->nitems && e->items[lo].seq == seq) {
		*at = lo;
		return &e->items[lo];
	}
	return NULL;
}

static void set_error(struct hook_ep *e, const char *msg)
{
	char *m = strdup(msg);
	if (m) {
		free(e->last_error);
		e->last_error = m;
	}
}

static void on_done(void *ud, CURL *easy, CURLcode code)
{
	struct hook *h = ud;
	struct hook_xfer *x = NULL;
	long status = 0;
	char msg[CURL_ERROR_SIZE + 32];

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(easy);
	struct hook_ep *e = &h->eps[x->ep];
	uint32_t at;
	struct hook_item *it = find_item(e, x->seq, &at);
	if (it && it->xfer != x)
		it = NULL;                /* detached by hook_reset and held again */
	if (it)
		it->xfer = NULL;
	assert(e->in_flight > 0);
	e->in_flight--;
	bool ok = code == CURLE_OK && status >= 200 && status < 300;
	if (ok) {
		e->delivered++;
		e->fails = 0;
		e->last_success = uv_now(h->loop);
		free(e->last_error);
		e->last_error = NULL;
		if (it) {
			free(it->body);
			memmove(it, it + 1, (e->nitems - at - 1) * sizeof(*it));
			e->nitems--;
			if (e->backlog)
				e->backlog--;
		}
		h->delivered(h->ud, e->url, x->seq);
	} else {
		e->failed++;
		e->fails++;
		if (code != CURLE_OK)
			snprintf(msg, sizeof(msg), "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
		else
			snprintf(msg, sizeof(msg), "HTTP %ld", status);
		set_error(e, msg);
		uint64_t d = h->opt.retry_min_ms;
		for (uint32_t k = 1; k < e->fails && d < h->opt.retry_max_ms; k++)
			d *= 2;
		if (d > h->opt.retry_max_ms)
			d = h->opt.retry_max_ms;
		d = d / 2 + rng_next(h) % (d / 2 + 1);   /* × [0.5, 1] */
		uint64_t next = uv_now(h->loop) + d;
		if (next > e->next_try)
			e->next_try = next;
	}
	xfer_free(h, x);
}

#define SETOPT(easy, opt, val) \
	do { if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK) goto fail; } while (0)

static int xfer_start(struct hook *h, uint32_t ep, struct hook_item *it)
{
	struct hook_ep *e = &h->eps[ep];
	struct hook_xfer *x = calloc(1, sizeof(*x));
	char line[96];
	if (!x)
		return -ENOMEM;
	x->h = h;
	x->ep = ep;
	x->seq = it->seq;
	x->easy = curl_easy_init();
	if (!x->easy)
		goto fail;
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
	x->headers = l;
	snprintf(line, sizeof(line), "Idempotency-Key: %" PRIu64, it->seq);
	l = l ? curl_slist_append(l, line) : NULL;
	snprintf(line, sizeof(line), "Joule-Seq: %" PRIu64, it->seq);
	l = l ? curl_slist_append(l, line) : NULL;
	snprintf(line, sizeof(line), "Joule-Event: %s", it->type);
	l = l ? curl_slist_append(l, line) : NULL;
	l = l ? curl_slist_append(l, "Expect:") : NULL;   /* no 100-continue round trip */
	if (!l)
		goto fail;
	SETOPT(x->easy, CURLOPT_URL, e->url);
	SETOPT(x->easy, CURLOPT_PRIVATE, (void *)x);
	SETOPT(x->easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opt.connect_timeout_ms);
	SETOPT(x->easy, CURLOPT_TIMEOUT_MS, (long)h->opt.timeout_ms);
	SETOPT(x->easy, CURLOPT_POSTFIELDS, it->body);      /* held until the transfer ends */
	SETOPT(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	SETOPT(x->easy, CURLOPT_HTTPHEADER, x->headers);
	SETOPT(x->easy, CURLOPT_WRITEFUNCTION, discard);
	SETOPT(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(x->easy, CURLOPT_USERAGENT, "jouled/" JOULE_VERSION);
	if (curluv_add(h->cu, x->easy) < 0)
		goto fail;
	x->next = h->xfers;
	if (h->xfers)
		h->xfers->prev = x;
	h->xfers = x;
	it->xfer = x;
	e->in_flight++;
	return 0;
fail:
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x);
	return -EIO;
}

/* ---- the window ---- */

static int hold(struct hook *h, struct hook_ep *e, uint64_t seq, uint64_t key, const char *type,
		const char *body, size_t len)
{
	if (!e->items) {
		e->items = calloc(h->opt.window, sizeof(*e->items));
		if (!e->items)
			return -ENOMEM;
	}
	struct hook_item *it = &e->items[e->nitems];
	it->body = malloc(len + 1);
	if (!it->body)
		return -ENOMEM;
	memcpy(it->body, body, len);
	it->body[len] = '\0';
	it->len = len;
	it->seq = seq;
	it->key = key;
	it->xfer = NULL;
	snprintf(it->type, sizeof(it->type), "%s", type ? type : "");
	e->nitems++;
	e->last_seq = seq;
	return 0;
}

int hook_push(struct hook *h, uint32_t ep, uint64_t seq, uint64_t key, const char *type,
	      const char *body, size_t len)
{
	struct hook_ep *e = &h->eps[ep];
	e->backlog++;
	if (!e->spilled && e->nitems < h->opt.window && seq > e->last_seq &&
	    hold(h, e, seq, key, type, body, len) == 0) {
		kick(h);
		return 0;
	}
	e->spilled = true;   /* the outbox has it: refill pages it in */
	kick(h);
	return 0;
}

int hook_push_loaded(struct hook *h, uint32_t ep, uint64_t seq, uint64_t key, const char *type,
		     const char *body, size_t len)
{
	struct hook_ep *e = &h->eps[ep];
	if (e->nitems >= h->opt.window || seq <= e->last_seq)
		return -ENOSPC;
	return hold(h, e, seq, key, type, body, len);
}

void hook_add_backlog(struct hook *h, uint32_t ep, uint64_t rows)
{
	h->eps[ep].backlog += rows;
	if (rows) {
		h->eps[ep].spilled = true;
		kick(h);
	}
}

void hook_reset(struct hook *h)
{
	for (uint32_t i = 0; i < h->neps; i++) {
		struct hook_ep *e = &h->eps[i];
		for (uint32_t k = 0; k < e->nitems; k++) {
			struct hook_item *it = &e->items[k];
			if (it->xfer) {
				/* curl reads the body while it runs: end the transfer first */
				curluv_remove(h->cu, it->xfer->easy);
				curl_easy_cleanup(it->xfer->easy);
				e->in_flight--;
				xfer_free(h, it->xfer);
			}
			free(it->body);
		}
		e->nitems = 0;
		e->last_seq = 0;
		e->backlog = 0;
		e->spilled = false;
	}
}

/* ---- the pump ---- */

static void pump_ep(struct hook *h, uint32_t ep, uint64_t now)
{
	struct hook_ep *e = &h->eps[ep];
	if (e->spilled && e->nitems < h->opt.window / 2) {
		uint32_t room = h->opt.window - e->nitems;
		int n = h->refill(h->ud, ep, e->url, e->last_seq, room);
		if (n >= 0 && (uint32_t)n < room)
			e->spilled = false;
	}
	if (e->next_try > now || e->in_flight >= h->opt.concurrency)
		return;
	/* keys of events in flight or started this round: a later event with one waits */
	uint64_t blocked[64];
	uint32_t nblocked = 0;
	for (uint32_t i = 0; i < e->nitems && e->in_flight < h->opt.concurrency; i++) {
		struct hook_item *it = &e->items[i];
		bool is_blocked = false;
		for (uint32_t k = 0; it->key && k < nblocked && !is_blocked; k++)
			is_blocked = blocked[k] == it->key;
		if (is_blocked)
			continue;
		if (it->key) {
			if (nblocked == 64)
				break;      /* cannot track more keys this round */
			blocked[nblocked++] = it->key;
		}
		if (!it->xfer && xfer_start(h, ep, it) < 0)
			break;
	}
}

static void pump(struct hook *h)
{
	if (h->closing)
		return;
	uint64_t now = uv_now(h->loop), wake = UINT64_MAX;
	for (uint32_t i = 0; i < h->neps; i++) {
		pump_ep(h, i, now);
		struct hook_ep *e = &h->eps[i];
		if (e->next_try > now && (e->nitems || e->spilled) && e->next_try < wake)
			wake = e->next_try;
	}
	if (wake != UINT64_MAX)
		uv_timer_start(&h->retry, on_timer, wake - now, 0);
	else
		uv_timer_stop(&h->retry);
}

static void on_timer(uv_timer_t *t)
{
	pump(t->data);
}

static void on_after(void *ud)
{
	pump(ud);
}

/* ---- lifetime ---- */

int hook_new(uv_loop_t *loop, const struct hook_options *opt, uint32_t seed,
	     hook_delivered_cb delivered, hook_refill_cb refill, void *ud, struct hook **out)
{
	struct hook_options d;
	hook_options_default(&d);
	struct hook *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->opt = opt ? *opt : d;
#define DEF(f) do { if (!h->opt.f) h->opt.f = d.f; } while (0)
	DEF(concurrency); DEF(max_endpoints); DEF(connect_timeout_ms); DEF(timeout_ms);
	DEF(retry_min_ms); DEF(retry_max_ms); DEF(window); DEF(failing_after);
#undef DEF
	if (h->opt.window < 2)
		h->opt.window = 2;
	h->loop = loop;
	h->rng = ((uint64_t)seed << 32) ^ 0x510e527fade682d1ULL ^ seed;
	h->delivered = delivered;
	h->refill = refill;
	h->ud = ud;
	hmap_init_str(&h->by_url);
	int r = curluv_new(loop, (long)h->opt.concurrency * 4, on_done, on_after, h, &h->cu);
	if (r < 0) {
		hmap_free(&h->by_url);
		free(h);
		return r;
	}
	uv_timer_init(loop, &h->retry);
	uv_timer_init(loop, &h->kick);
	h->retry.data = h->kick.data = h;
	h->handles_open = 3;
	*out = h;
	return 0;
}

int hook_endpoint(struct hook *h, const char *url, bool agent, uint32_t *ep)
{
	uint32_t i;
	if (hmap_get_str(&h->by_url, url, &i)) {
		*ep = i;
		return 0;
	}
	if (strlen(url) > HOOK_URL_MAX ||
	    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return -EINVAL;
	if (h->neps >= h->opt.max_endpoints)
		return -ENOSPC;
	if (h->neps == h->caps) {
		uint32_t nc = h->caps ? h->caps * 2 : 8;
		struct hook_ep *n = realloc(h->eps, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		h->eps = n;
		h->caps = nc;
	}
	struct hook_ep *e = &h->eps[h->neps];
	memset(e, 0, sizeof(*e));
	e->url = strdup(url);
	e->agent = agent;
	if (!e->url || hmap_put_str(&h->by_url, e->url, h->neps) < 0) {
		free(e->url);
		return -ENOMEM;
	}
	*ep = h->neps++;
	return 0;
}

uint32_t hook_count(const struct hook *h)
{
	return h ? h->neps : 0;
}

void hook_stats(const struct hook *h, uint32_t ep, struct hook_ep_stats *o)
{
	const struct hook_ep *e = &h->eps[ep];
	uint64_t now = uv_now(h->loop);
	*o = (struct hook_ep_stats){
		.url = e->url, .agent = e->agent, .failing = e->fails >= h->opt.failing_after,
		.backlog = e->backlog, .in_flight = e->in_flight, .failures_in_row = e->fails,
		.delivered = e->delivered, .failed = e->failed,
		.oldest_seq = e->nitems ? e->items[0].seq : 0,
		.last_success_ms = (int64_t)e->last_success,
		.next_try_ms = e->next_try > now ? (int64_t)e->next_try : 0,
		.last_error = e->last_error,
	};
}

/* The timers' and the curluv's close callbacks: done once all three are closed. */
static void one_closed(void *ud)
{
	struct hook *h = ud;
	if (--h->handles_open == 0) {
		h->finished = true;
		if (h->done)
			h->done(h->done_ud);
	}
}

static void on_closed(uv_handle_t *hd)
{
	one_closed(hd->data);
}

void hook_close(struct hook *h, void (*done)(void *ud), void *ud)
{
	if (!h || h->closing)
		return;
	h->closing = true;
	h->done = done;
	h->done_ud = ud;
	while (h->xfers) {
		struct hook_xfer *x = h->xfers;
		curluv_remove(h->cu, x->easy);
		curl_easy_cleanup(x->easy);
		h->eps[x->ep].in_flight--;
		uint32_t at;
		struct hook_item *it = find_item(&h->eps[x->ep], x->seq, &at);
		if (it && it->xfer == x)
			it->xfer = NULL;
		xfer_free(h, x);
	}
	curluv_close(h->cu, one_closed, h);
	uv_close((uv_handle_t *)&h->retry, on_closed);
	uv_close((uv_handle_t *)&h->kick, on_closed);
}

void hook_free(struct hook *h)
{
	if (!h)
		return;
	assert(h->finished && "hook_free before hook_close's done");
	for (uint32_t i = 0; i < h->neps; i++) {
		for (uint32_t k = 0; k < h->eps[i].nitems; k++)
			free(h->eps[i].items[k].body);
		free(h->eps[i].items);
		free(h->eps[i].url);
		free(h->eps[i].last_error);
	}
	free(h->eps);
	hmap_free(&h->by_url);
	curluv_free(h->cu);
	free(h);
}
