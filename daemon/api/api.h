/*
 * api — the daemon minus main(): in-memory state (fleet, jobs), the route table, the
 * resource handlers, the queue pass and the group commit.
 *
 * Owns: the fleet and job table, the store handle it was given, the replies held until
 * their batch commits, the uv_check_t that commits once per loop turn.
 * Never: writes a reply to a changing request before its transaction committed; blocks
 * on the network; runs an unbounded queue pass in one loop turn.
 *
 * Per loop turn: handlers apply commands to memory and to the store's batch and hold their
 * replies; the check callback runs a bounded queue pass (its placements join the batch),
 * commits, then releases every held reply — or, when the commit failed, answers them 503
 * and rebuilds memory from the database, so memory never shows what was not stored.
 */
#ifndef JOULE_API_H
#define JOULE_API_H

#include <stdint.h>

#include <uv.h>

#include "err.h"
#include "http.h"
#include "store.h"

struct api;

struct api_options {
	uint32_t pass_max_tries;    /* placement tries per loop turn; default 64 */
	long admin_gid;             /* members may change the fleet; -1 = root only */
	char admin_group[64];       /* its name, for messages */
	uint32_t events_max;        /* events retained; default 100000 */
	uint64_t events_max_age_s;  /* and for at most this long; default 7 days; 0 = forever */
	uint64_t placed_timeout_s;  /* placed but not running this long: back to pending; 0 = off */
	bool demo_finish;           /* demo mode: placed jobs run after 1 s and succeed after
				       their duration_s */
	uint32_t scrape_interval_ms, scrape_timeout_ms, scrape_concurrency; /* 0 = defaults */
	uint32_t down_after;        /* failed scrapes in a row before a node is down; 3 */
	uint32_t recover_after;     /* clean scrapes in a row before a device is ok; 3 */
	uint32_t stale_s;           /* exporter samples older than this are ignored; 120 */
	bool no_telemetry;          /* do not scrape (tests, simulation) */
	const char *webhooks[8];    /* global webhook URLs (http/https) */
	uint32_t nwebhooks;
	uint32_t webhook_timeout_ms, webhook_concurrency;   /* 0 = defaults (10 s, 4) */
	uint32_t webhook_retry_min_ms, webhook_retry_max_ms; /* 0 = defaults (1 s, 300 s) */
};

/* Load state from the store (which the api then uses, not owns) and start the commit
 * check handle on loop. */
int api_new(uv_loop_t *loop, struct store *store, const struct api_options *opt,
	    struct api **out, struct err *e);
/* The http_handler_cb: pass the api as ud. */
void api_handle(void *ud, struct http_conn *c, const struct http_request *req);
/* Answer every long-poll waiter now (before stopping the HTTP server). */
void api_stop_waiting(struct api *a);

/* Commit what is pending and answer every held reply (used at shutdown). */
void api_flush(struct api *a);
/* Stop and close the api's handles; run the loop until they are closed, then api_free. */
void api_close(struct api *a);
void api_free(struct api *a);

/* Counts for the start-up log line. */
void api_counts(const struct api *a, uint64_t *jobs, uint32_t *nodes, uint32_t *devices);

#endif
