/*
 * scrape — fetches node exporters' /metrics pages (NVIDIA dcgm-exporter, Huawei
 * npu-exporter) on an interval, with libcurl's multi_socket API on the daemon's libuv loop,
 * and hands each body to a callback.
 *
 * Owns: the target table, the due-time heap and the ready queue, a fixed pool of
 * max_concurrency transfer slots (each with its body buffer while in flight), the curl
 * multi handle with one uv_poll_t per socket curl names, one uv_timer_t for curl's timer and
 * one uv_timer_t for the schedule.
 * Never: blocks the loop (name resolution is curl's threaded resolver: see async_dns below),
 * follows a redirect, speaks anything but http/https, lets a body grow past max_body, has
 * more than max_concurrency transfers in flight, calls the callback from inside one of its
 * own API functions (results arrive from loop callbacks only).
 *
 * Schedule: every target has a next-due time on the loop's clock (uv_now). A new target is
 * first due after a random delay in [0, interval) drawn from the seeded generator, so
 * thousands of targets spread over the interval; after that every interval ± jitter
 * (uniform), counted from the previous due time, not from when the scrape ended. A due
 * target joins the FIFO ready queue; a transfer slot takes the queue's head. A target still
 * in flight or still queued when it falls due again is skipped (stats.skipped) — never
 * queued twice. If the loop stalled so long that the next due time is already past, it is
 * counted from now instead (no burst of catch-up scrapes).
 *
 * Each transfer: GET url, no redirects, protocols http and https only, connect timeout,
 * total timeout, a low-speed abort (slower than low_speed_bytes/s for low_speed_time_s),
 * Content-Length over max_body refused at the headers, and a streamed body aborted on the
 * first byte past max_body. Compressed bodies are accepted (max_body counts decoded bytes).
 *
 * Result codes (struct scrape_result.rc):
 *   0             HTTP 200 and the whole body
 *   -EREMOTEIO    an HTTP status other than 200 (http_status holds it; body is what came)
 *   -ETIMEDOUT    connect timeout, total timeout or the low-speed abort
 *   -ECONNREFUSED nothing listens (or the connection failed otherwise)
 *   -EHOSTUNREACH the name did not resolve
 *   -EFBIG        the body is over max_body ("body over N bytes")
 *   -ECONNRESET   the connection broke while sending or receiving
 *   -EPROTO       not HTTP (garbage, HTTP/0.9), TLS failure, anything else curl reports
 *   -ENOMEM       out of memory while starting or receiving
 * error is always set when rc < 0 (curl's own message where it has one).
 *
 * Lifetime: scrape_new → scrape_set_target … → scrape_close(done) → done fires once every
 * handle is closed → scrape_free. The loop must not be closed before done fired. The
 * process may call curl_global_init itself; scrape_new takes (and scrape_free drops) a
 * reference with curl_global_init/curl_global_cleanup either way.
 *
 * Memory: targets (max_targets, each with its URL of at most SCRAPE_URL_MAX bytes), the
 * heap, the transfer pool (max_concurrency slots), a body buffer per transfer in flight (at
 * most max_body + 1 bytes), one poll context per socket (curl keeps at most max_concurrency
 * idle connections: CURLMOPT_MAXCONNECTS).
 */
#ifndef JOULE_SCRAPE_H
#define JOULE_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../core/err.h"

#define SCRAPE_JITTER_AUTO UINT32_MAX   /* jitter_ms: interval_ms / 10 */
#define SCRAPE_URL_MAX 2048             /* longest URL accepted, in bytes */
#define SCRAPE_MAX_CONCURRENCY 4096     /* ceiling for max_concurrency */

struct scrape;

/* A zero field takes its default (jitter_ms: 0 means no jitter; SCRAPE_JITTER_AUTO means
 * interval_ms / 10). jitter_ms may be at most interval_ms / 2. */
struct scrape_options {
	uint32_t interval_ms;         /* 15000 */
	uint32_t jitter_ms;           /* SCRAPE_JITTER_AUTO */
	uint32_t max_concurrency;     /* 64; at most SCRAPE_MAX_CONCURRENCY */
	uint32_t connect_timeout_ms;  /* 2000 */
	uint32_t timeout_ms;          /* 5000: the whole transfer */
	uint32_t low_speed_bytes;     /* 100: slower than this many bytes/s ... */
	uint32_t low_speed_time_s;    /* 3: ... for this many seconds aborts (-ETIMEDOUT) */
	uint32_t max_targets;         /* 65536 */
	size_t max_body;              /* 8 MiB; at most 1 GiB */
};

/* Fill in the defaults above. */
void scrape_options_default(struct scrape_options *o);

/* One finished scrape. Every pointer is valid only during the callback. */
struct scrape_result {
	int rc;                 /* 0, or negative: see the table above */
	long http_status;       /* 0 when no HTTP response arrived */
	const char *body;       /* NUL-terminated (not counted in len); "" when none */
	size_t len;
	const char *error;      /* text when rc < 0, else NULL */
	uint64_t duration_ms;   /* from the transfer's start (not its due time) to its end */
};

/* Called once per finished scrape, from a loop callback. It may call scrape_set_target
 * (any target, its own too), scrape_stats and scrape_close; not scrape_free. A target that
 * is removed or replaced while in flight gets no callback for that transfer. */
typedef void (*scrape_done_cb)(void *ud, uint32_t target, const struct scrape_result *r);

struct scrape_stats {
	uint64_t ok;            /* results with rc == 0 */
	uint64_t failed;        /* results with rc < 0 */
	uint64_t skipped;       /* due while still in flight or queued */
	uint64_t cancelled;     /* transfers dropped by removal, replacement or close */
	uint64_t bytes;         /* body bytes received, aborted transfers included */
	uint32_t in_flight;     /* transfers running now (<= max_concurrency) */
	uint32_t queued;        /* due targets waiting for a transfer slot */
	uint32_t targets;
	bool async_dns;         /* libcurl resolves names without blocking (CURL_VERSION_ASYNCHDNS);
				 * false means a hostname in a URL blocks the loop while it resolves:
				 * the daemon should warn, or use IP addresses */
};

/*
 * Create a scraper on loop. opt NULL means the defaults. seed drives the first-due delays
 * and the jitter (same seed, same schedule). Returns 0 and *out, or ERR_INVALID (a field of
 * opt is out of range; e->field names it) or -ENOMEM with e filled; nothing is left behind.
 * libcurl without CURL_VERSION_ASYNCHDNS is not an error: see scrape_stats().async_dns.
 */
int scrape_new(uv_loop_t *loop, const struct scrape_options *opt, uint32_t seed,
	       scrape_done_cb cb, void *ud, struct scrape **out, struct err *e);

/*
 * Add, replace or remove (url NULL or "") the target with this id. A new target is first due
 * after a random delay within the interval. Replacing with the same URL changes nothing;
 * with another URL it cancels a transfer in flight for the old one (no callback) and keeps
 * the target's due time. Removing cancels a transfer in flight (no callback); removing an
 * absent target is not an error. Returns 0, ERR_INVALID (not an http(s) URL, or longer than
 * SCRAPE_URL_MAX), ERR_TOO_MANY (max_targets reached), -ENOMEM (nothing changed), or
 * -ECANCELED after scrape_close.
 */
int scrape_set_target(struct scrape *s, uint32_t target, const char *url);

void scrape_stats(const struct scrape *s, struct scrape_stats *out);

/*
 * Stop: cancel every transfer (no callbacks), forget the queue, clean up curl, close every
 * handle; done(ud) is called from the loop once all are closed (never from inside this
 * call). Idempotent; may be called from the done callback.
 */
void scrape_close(struct scrape *s, void (*done)(void *ud), void *ud);

/* Free after done fired (asserts it did). NULL is fine. */
void scrape_free(struct scrape *s);

#endif
