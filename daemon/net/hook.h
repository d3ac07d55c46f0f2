/*
 * hook — the webhook dispatcher: POSTs committed events to their endpoints, in order per
 * ordering key, with retries, on the daemon's libuv loop (libcurl multi via curluv).
 *
 * Owns: the endpoint table (URL, state, counters), each endpoint's window of events held in
 * memory (at most window items, each with its body), the transfers in flight, a retry timer
 * and a kick timer.
 * Never: reads the database (events beyond an endpoint's window are paged in through the
 * refill callback), sends an event with key K to an endpoint before every earlier event
 * with key K held for it was acknowledged, has more than concurrency transfers in flight
 * per endpoint, sends to an endpoint that is backing off, calls back from inside one of
 * its own API functions, drops an event (an event leaves only when its endpoint answered
 * 2xx, or by hook_reset, which re-reads the outbox).
 *
 * Delivery: POST url, body = the event JSON, headers Content-Type: application/json,
 * Idempotency-Key: <seq>, Joule-Seq: <seq>, Joule-Event: <type>; any 2xx acknowledges
 * (delivered callback: delete the outbox row). Anything else — another status, a timeout, a
 * refused connection — puts the event back and makes the endpoint wait
 * min(retry_max, retry_min × 2^(failures in a row − 1)) × a uniform factor in [0.5, 1)
 * before it sends anything again. An endpoint is failing after failing_after failures in a
 * row, until a success.
 *
 * Window and backlog: backlog counts every event the outbox holds for the endpoint (held in
 * memory or not). An endpoint whose window filled up is "spilled": newer events are only
 * counted, and once the window drains below half, refill(ud, ep, url, after_seq, room) is
 * called to page in up to room events with seq > after_seq from the outbox (in seq order,
 * via hook_push_loaded); fewer than room means the outbox is caught up.
 *
 * Lifetime: hook_new → hook_endpoint / hook_push … → hook_close(done) → hook_free.
 */
#ifndef JOULE_HOOK_H
#define JOULE_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define HOOK_URL_MAX 512

struct hook;

struct hook_options {
	uint32_t concurrency;         /* per endpoint in flight: 4 */
	uint32_t max_endpoints;       /* 4096 */
	uint32_t connect_timeout_ms;  /* 2000 */
	uint32_t timeout_ms;          /* the whole POST: 10000 */
	uint32_t retry_min_ms;        /* 1000 */
	uint32_t retry_max_ms;        /* 300000 */
	uint32_t window;              /* events held in memory per endpoint: 1024 */
	uint32_t failing_after;       /* failures in a row: 3 */
};
void hook_options_default(struct hook_options *o);

/* An event acknowledged by url: delete its outbox row. */
typedef void (*hook_delivered_cb)(void *ud, const char *url, uint64_t seq);
/* Page in up to room events of ep with seq > after_seq via hook_push_loaded; return how
 * many were pushed, or a negative code (tried again at the next kick). */
typedef int (*hook_refill_cb)(void *ud, uint32_t ep, const char *url, uint64_t after_seq,
			      uint32_t room);

/* A zero option takes its default. 0, or -ENOMEM / -EIO. */
int hook_new(uv_loop_t *loop, const struct hook_options *opt, uint32_t seed,
	     hook_delivered_cb delivered, hook_refill_cb refill, void *ud, struct hook **out);

/* Find or add the endpoint for url (agent: a node's agent_url, else a global webhook).
 * 0 and *ep, or -ENOSPC (max_endpoints) / -ENOMEM / -EINVAL (not http(s), too long). */
int hook_endpoint(struct hook *h, const char *url, bool agent, uint32_t *ep);

/* A committed event for ep (key: 0 = unordered). Counted in the backlog; held in memory
 * unless the endpoint is spilled or its window full. 0 or -ENOMEM (then counted and
 * spilled: refill brings it back). */
int hook_push(struct hook *h, uint32_t ep, uint64_t seq, uint64_t key, const char *type,
	      const char *body, size_t len);
/* From inside refill: an outbox row already counted in the backlog. */
int hook_push_loaded(struct hook *h, uint32_t ep, uint64_t seq, uint64_t key, const char *type,
		     const char *body, size_t len);
/* At start: rows the outbox holds for ep (counted, spilled: refill pages them in). */
void hook_add_backlog(struct hook *h, uint32_t ep, uint64_t rows);
/* After the daemon reloaded its state: forget every held event and zero the backlogs (the
 * caller re-adds them from the outbox with hook_add_backlog). Transfers in flight run on;
 * an acknowledged one still reaches the delivered callback. */
void hook_reset(struct hook *h);

struct hook_ep_stats {
	const char *url;
	bool agent;
	bool failing;
	uint64_t backlog;             /* outbox rows for it */
	uint32_t in_flight;
	uint32_t failures_in_row;
	uint64_t delivered, failed;   /* POSTs acknowledged / not */
	uint64_t oldest_seq;          /* of the events held; 0 when none held */
	int64_t last_success_ms;      /* uv_now() time; 0 = never */
	int64_t next_try_ms;          /* uv_now() time it may send again; 0 = now */
	const char *last_error;       /* NULL after a success / never failed */
};
uint32_t hook_count(const struct hook *h);
void hook_stats(const struct hook *h, uint32_t ep, struct hook_ep_stats *out);

void hook_close(struct hook *h, void (*done)(void *ud), void *ud);
void hook_free(struct hook *h);

#endif
