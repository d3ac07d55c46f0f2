/*
 * api/events — the event log: every state change of a job, node or domain budget, with a
 * monotonically increasing sequence number, written in the same transaction as the change;
 * GET /v1/events long-polls it.
 *
 * Owns: the ring of retained events (oldest first, bounded by the retention count), the
 * long-poll waiters (each with a timer, bounded in number), retention trimming.
 * Never: lets a waiter see an event before its batch committed (waiters are released only
 * after a successful commit; a failed commit reloads the ring from the database); answers
 * a waiter twice; frees a waiter before its timer's close callback.
 *
 * Waiter states: WAITING (timer armed) → ANSWERED (reply sent, timer closing) → freed in
 * the timer's close callback.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store.h"

#define EVENTS_LIMIT_DEFAULT 1000
#define EVENTS_LIMIT_MAX 10000
#define EVENTS_WAIT_MAX_S 300
#define EVENTS_WAITERS_MAX 4096

struct api_waiter {
	struct api *a;
	struct http_conn *conn;
	uv_timer_t timer;
	uint64_t since, t0;
	uint32_t limit;
	char types[256];            /* "" = all */
	bool answered;
	struct api_waiter *prev, *next;
};

/* ---------------- the ring ---------------- */

static struct api_event *at(const struct api *a, uint32_t i)
{
	return &a->ev[(a->ev_head + i) % a->ev_cap];
}

static void event_clear(struct api_event *e)
{
	free(e->node);
	free(e->data);
	memset(e, 0, sizeof(*e));
}

static int ring_push(struct api *a, uint64_t seq, int64_t ts, const char *type, uint64_t job,
		     const char *node, const char *data)
{
	if (a->ev_n == a->ev_cap) {
		uint32_t ncap = a->ev_cap ? a->ev_cap * 2 : 1024;
		struct api_event *n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (uint32_t i = 0; i < a->ev_n; i++)
			n[i] = *at(a, i);
		free(a->ev);
		a->ev = n;
		a->ev_cap = ncap;
		a->ev_head = 0;
	}
	struct api_event *e = &a->ev[(a->ev_head + a->ev_n) % a->ev_cap];
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->ts = ts;
	snprintf(e->type, sizeof(e->type), "%s", type);
	e->job = job;
	e->node = node ? strdup(node) : NULL;
	e->data = strdup(data ? data : "{}");
	if (!e->data || (node && !e->node)) {
		event_clear(e);
		return -ENOMEM;
	}
	a->ev_n++;
	return 0;
}

static void ring_drop_oldest(struct api *a)
{
	event_clear(at(a, 0));
	a->ev_head = (a->ev_head + 1) % a->ev_cap;
	a->ev_n--;
}

void api_events_clear(struct api *a)
{
	while (a->ev_n)
		ring_drop_oldest(a);
	free(a->ev);
	a->ev = NULL;
	a->ev_cap = a->ev_head = 0;
}

static int load_one(void *ud, uint64_t seq, int64_t ts, const char *type, uint64_t job,
		    const char *node, const char *data)
{
	return ring_push(ud, seq, ts, type, job, node, data);
}

int api_events_load(struct api *a, struct err *e)
{
	uint64_t max_seq = 0;
	api_events_clear(a);
	int rc = store_load_events(a->store, a->opt.events_max, load_one, a, &max_seq, e);
	if (rc < 0)
		return rc;
	a->ev_next_seq = max_seq + 1;
	return 0;
}

static json_t *event_json(const struct api_event *e);

int api_event(struct api *a, const char *type, uint64_t job, const char *node, json_t *data)
{
	char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	json_decref(data);
	int64_t now = (int64_t)time(NULL);
	uint64_t seq = a->ev_next_seq++;
	/* a store failure poisons the batch; the commit then fails and memory is reloaded */
	store_put_event(a->store, seq, now, type, job, node, text ? text : "{}");
	int rc = ring_push(a, seq, now, type, job, node, text ? text : "{}");
	if (api_webhooks_wanted(a, job, node)) {
		/* the webhook body is the event exactly as GET /v1/events shows it */
		struct api_event ev = {.seq = seq, .ts = now, .job = job, .node = (char *)node,
				       .data = text ? text : (char *)"{}"};
		snprintf(ev.type, sizeof(ev.type), "%s", type);
		size_t len;
		char *body = codec_dump(event_json(&ev), &len);
		if (body)
			api_webhooks_event(a, seq, type, job, node, body, len);
		else
			rc = -ENOMEM;
		free(body);
	}
	free(text);
	return rc;
}

/* ---------------- encoding and matching ---------------- */

static bool type_matches(const char *filter, const char *type)
{
	if (!*filter)
		return true;
	for (const char *f = filter; *f;) {
		const char *comma = strchr(f, ',');
		size_t n = comma ? (size_t)(comma - f) : strlen(f);
		if (n && strncmp(f, type, n) == 0 && (type[n] == '\0' || type[n] == '.'))
			return true;
		f += n + (comma ? 1 : 0);
	}
	return false;
}

static json_t *event_json(const struct api_event *e)
{
	json_t *data = json_loads(e->data, 0, NULL);
	return json_pack("{s:I, s:o, s:s, s:o, s:o, s:o}", "seq", (json_int_t)e->seq, "time",
			 codec_time(e->ts), "type", e->type, "job",
			 e->job ? json_integer((json_int_t)e->job) : json_null(), "node",
			 e->node ? json_string(e->node) : json_null(), "data",
			 data ? data : json_object());
}

/* Index of the first retained event with seq > since (binary search; seqs increase). */
static uint32_t first_after(const struct api *a, uint64_t since)
{
	uint32_t lo = 0, hi = a->ev_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (at(a, mid)->seq <= since)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* {"events":[…], "next": SEQ, "oldest": SEQ}; *count = events included. */
static json_t *page(const struct api *a, uint64_t since, const char *types, uint32_t limit,
		    uint32_t *count)
{
	json_t *arr = json_array();
	uint64_t next = since;
	*count = 0;
	for (uint32_t i = first_after(a, since); arr && i < a->ev_n && *count < limit; i++) {
		const struct api_event *e = at(a, i);
		next = e->seq;
		if (!type_matches(types, e->type))
			continue;
		json_array_append_new(arr, event_json(e));
		(*count)++;
	}
	if (!arr)
		return NULL;
	return json_pack("{s:o, s:I, s:I}", "events", arr, "next", (json_int_t)next, "oldest",
			 (json_int_t)(a->ev_n ? at(a, 0)->seq : a->ev_next_seq));
}

/* ---------------- waiters ---------------- */

static void waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

static void waiter_answer(struct api_waiter *w, json_t *body)
{
	struct api *a = w->a;
	size_t len = 0;
	char *text = codec_dump(body, &len);
	w->answered = true;
	if (w->prev)
		w->prev->next = w->next;
	else
		a->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	a->nwaiters--;
	uv_timer_stop(&w->timer);
	if (text) {
		api_metrics_request(a, API_ROUTE_EVENTS, 200, uv_hrtime() - w->t0);
		http_conn_respond(w->conn, 200, NULL, text, len);
	} else {
		struct err e;
		err_set(&e, -ENOMEM, NULL, "out of memory");
		text = codec_error_body(&e, &len);
		api_metrics_request(a, API_ROUTE_EVENTS, 503, uv_hrtime() - w->t0);
		http_conn_respond(w->conn, 503, NULL, text, len);
	}
	uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_timeout(uv_timer_t *t)
{
	struct api_waiter *w = t->data;
	uint32_t n;
	if (!w->answered)
		waiter_answer(w, page(w->a, w->since, w->types, w->limit, &n));
}

void api_events_wake(struct api *a)
{
	struct api_waiter *w = a->waiters;
	while (w) {
		struct api_waiter *next = w->next;
		uint32_t n;
		json_t *body = page(a, w->since, w->types, w->limit, &n);
		if (n > 0 || !body)
			waiter_answer(w, body);
		else
			json_decref(body);
		w = next;
	}
}

void api_events_release_all(struct api *a)
{
	while (a->waiters) {
		uint32_t n;
		struct api_waiter *w = a->waiters;
		waiter_answer(w, page(a, w->since, w->types, w->limit, &n));
	}
}

/* ---------------- GET /v1/events ---------------- */

void api_events_get(struct ctx *c, struct http_conn *conn)
{
	static const char *const allowed[] = {"since", "wait", "types", "limit", NULL};
	struct api *a = c->a;
	uint64_t since = 0, wait = 0, limit = EVENTS_LIMIT_DEFAULT;
	const char *types = api_query(c, "types");

	if (api_query_check(c, allowed) < 0 ||
	    api_query_uint(c, "since", 0, UINT64_MAX >> 1, &since) < 0 ||
	    api_query_uint(c, "wait", 0, EVENTS_WAIT_MAX_S, &wait) < 0 ||
	    api_query_uint(c, "limit", 1, EVENTS_LIMIT_MAX, &limit) < 0)
		return api_fail(c, c->err.code);
	if (types && strlen(types) >= sizeof(((struct api_waiter *)0)->types)) {
		err_set(&c->err, ERR_INVALID, "types", "must be at most 255 characters");
		return api_fail(c, ERR_INVALID);
	}
	uint64_t oldest = a->ev_n ? at(a, 0)->seq : a->ev_next_seq;
	if (since > 0 && since + 1 < oldest) {
		err_set(&c->err, ERR_GONE, "since",
			"events up to %llu were dropped by retention (the oldest kept is %llu); "
			"resync from the collections, then follow from \"next\" of a fresh "
			"GET /v1/events", (unsigned long long)(oldest - 1), (unsigned long long)oldest);
		return api_fail(c, ERR_GONE);
	}
	uint32_t n;
	json_t *body = page(a, since, types ? types : "", (uint32_t)limit, &n);
	if (n > 0 || wait == 0 || !body || a->closing)
		return api_ok(c, 200, body);
	json_decref(body);
	if (a->nwaiters >= EVENTS_WAITERS_MAX) {
		err_set(&c->err, ERR_TOO_MANY, NULL, "too many clients waiting for events (%d)",
			EVENTS_WAITERS_MAX);
		return api_fail(c, ERR_TOO_MANY);
	}
	struct api_waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		err_set(&c->err, -ENOMEM, NULL, "out of memory");
		return api_fail(c, -ENOMEM);
	}
	w->a = a;
	w->conn = conn;
	w->since = since;
	w->limit = (uint32_t)limit;
	w->t0 = uv_hrtime();
	snprintf(w->types, sizeof(w->types), "%s", types ? types : "");
	uv_timer_init(a->loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, waiter_timeout, wait * 1000, 0);
	w->next = a->waiters;
	if (a->waiters)
		a->waiters->prev = w;
	a->waiters = w;
	a->nwaiters++;
	c->deferred = true;
}

/* ---------------- retention ---------------- */

void api_events_trim(struct api *a, int64_t now)
{
	uint64_t below = 0;
	while (a->ev_n > a->opt.events_max ||
	       (a->ev_n && a->opt.events_max_age_s &&
		at(a, 0)->ts < now - (int64_t)a->opt.events_max_age_s)) {
		below = at(a, 0)->seq + 1;
		ring_drop_oldest(a);
	}
	if (below)
		store_trim_events(a->store, below);
}
