/*
 * internal — what the api's files share: the api struct, the request context and the
 * reply helpers. Not for use outside daemon/api/.
 */
#ifndef JOULE_API_INTERNAL_H
#define JOULE_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "api.h"
#include "codec.h"
#include "fleet.h"
#include "hmap.h"
#include "job.h"

#define API_MAX_QUERY 16

enum api_route {
	API_ROUTE_UNKNOWN, API_ROUTE_HEALTH, API_ROUTE_FLEET, API_ROUTE_MODELS, API_ROUTE_DOMAINS,
	API_ROUTE_DOMAIN, API_ROUTE_NODES, API_ROUTE_NODE, API_ROUTE_NODE_ACTION, API_ROUTE_DEVICES,
	API_ROUTE_JOBS, API_ROUTE_JOB, API_ROUTE_EXPLAIN, API_ROUTE_CAPACITY, API_ROUTE_METRICS,
	API_ROUTE_EVENTS, API_ROUTE_JOB_STATUS, API_ROUTE_DEVICE_RESET, API_ROUTE_WEBHOOKS,
	API_ROUTE_SIMULATE,
	API_ROUTE_MAX
};
extern const char *const api_route_names[API_ROUTE_MAX];

#define API_HIST_LATENCY 14
#define API_HIST_WAIT 9
#define API_HIST_BATCH 11
#define API_HIST_SLOTS 15              /* the largest bucket count + 1 (+Inf) */

struct api_hist {
	uint64_t counts[API_HIST_SLOTS];
	double sum;
	uint64_t count;
};

struct api_metrics {
	uint64_t requests[API_ROUTE_MAX][500];   /* [route][status - 100] */
	struct api_hist request_latency[API_ROUTE_MAX];
	struct api_hist commit_latency, batch_size, queue_wait, pass_latency;
	uint64_t placement_tries;
};

struct api_event {
	uint64_t seq;
	int64_t ts;
	char type[32];
	uint64_t job;               /* 0 = none */
	char *node;                 /* NULL = none */
	char *data;                 /* compact JSON object */
};

struct api_waiter;
struct api_hook_row;
struct sim_work;
struct hook;
struct scrape;
struct exporter_reading;

struct held_reply {
	struct http_conn *conn;
	int route;
	uint64_t t0;                /* uv_hrtime() when the request was handed to us */
	uint64_t job;               /* != 0: render this job's state at release time */
	int status;
	char *body;
	size_t len;
	char headers[128];
};

/* One cached GET /v1/capacity answer (capacity.c): valid while version is the api's. */
#define API_CAPACITY_CACHE 8
struct api_capacity_cache {
	uint64_t version;           /* 0 = empty (api versions start at 1) */
	uint64_t scrapes;           /* measured watts move with every scrape */
	int group;                  /* enum capacity_group */
	int32_t depth;              /* -1 = every domain */
	uint64_t used;              /* LRU stamp */
	char *body;                 /* JSON, owned */
	size_t len;
};

struct api {
	uv_loop_t *loop;
	struct store *store;
	struct fleet fleet;
	struct jobs jobs;
	struct api_options opt;
	uv_check_t check;
	uv_idle_t idle;             /* keeps the loop turning while a pass has work left */
	struct held_reply *held;
	uint32_t nheld, held_cap;
	uint64_t passed_epoch;      /* fleet epoch the last complete pass ran at */
	bool pass_more;             /* the last pass stopped at its bound */
	bool pass_needed;           /* a job was submitted since the last pass */
	struct hmap user_names;     /* uid → index in names */
	struct hmap admin_by_uid;   /* uid → 1 admin / 0 not (auth.c's group-list cache) */
	char **names;
	uint32_t nnames;
	uint64_t commits, commit_failures;
	struct api_metrics metrics;
	/* the event log: a ring of retained events, oldest first (events.c) */
	struct api_event *ev;
	uint32_t ev_cap, ev_head, ev_n;
	uint64_t ev_next_seq;
	struct api_waiter *waiters;
	uint32_t nwaiters;
	uint8_t *node_reported;     /* node state last stored and announced, per node */
	uint32_t nreported;
	uv_timer_t tick;            /* 1 s: retention, placed timeout, demo mode */
	struct hook *hook;          /* webhook dispatcher (webhooks.c) */
	struct sim_work *sims;      /* what-if runs in the thread pool (simulate.c) */
	uint32_t nsims;
	struct api_hook_row *hook_pending;   /* this batch's outbox rows, pushed after commit */
	uint32_t nhook_pending, hook_pending_cap;
	uint64_t hook_committed_seq;        /* the last event whose batch committed */
	uint8_t *hook_failing;              /* per endpoint: failing when last logged */
	uint32_t nhook_failing;
	struct scrape *scrape;      /* node exporters (telemetry.c); NULL when off */
	struct exporter_reading *reading;
	uint64_t scrapes, scrape_failures;
	bool closing;
	/* ETags of GET collections: "<boot>-<version>"; version grows (from 1) whenever a
	 * batch commits, a queue pass tried jobs, or memory is reloaded */
	uint64_t version, boot;
	struct api_capacity_cache cap_cache[API_CAPACITY_CACHE];
	uint64_t cap_cache_tick;
};

struct query {
	uint32_t n;
	char key[API_MAX_QUERY][32];
	char val[API_MAX_QUERY][256];
};

/* What a handler sees. */
struct ctx {
	struct api *a;
	const struct http_request *req;
	struct query q;
	int64_t now;
	/* the reply, filled by the handler */
	int status;
	json_t *body;
	struct err err;             /* used when status is 0 and err.code != 0 */
	uint64_t render_job;        /* reply with this job as it is after the commit */
	int route;                  /* enum api_route, for metrics */
	struct http_conn *conn;
	bool deferred;              /* the handler answers later (long poll) */
	char *text;                 /* a non-JSON body (metrics), taken over; with its own
				       Content-Type in headers */
	size_t text_len;
	char headers[128];
	bool etag;                  /* a GET collection: answer 200 with an ETag, or 304 */
};

/* ETags (api.c): true when the request's If-None-Match names the current state's tag
 * and no batch is open (memory is then exactly the committed version). */
bool api_etag_fresh(const struct ctx *c);
/* Drop every cached capacity answer (api_free, reload). */
void api_capacity_cache_clear(struct api *a);

/* Set the reply from an error record (err must be filled). */
void api_fail(struct ctx *c, int code);
/* Set a JSON reply (steals body). */
void api_ok(struct ctx *c, int status, json_t *body);

/* Query helpers: value or NULL; a parameter not in allowed (NULL-terminated) is a 400. */
const char *api_query(const struct ctx *c, const char *key);
int api_query_check(struct ctx *c, const char *const *allowed);
/* Parse a query integer in [min, max] (absent: *out untouched, returns 1). */
int api_query_uint(struct ctx *c, const char *key, uint64_t min, uint64_t max, uint64_t *out);

/* The user name for a uid ("uid" in decimal when unknown); never NULL (static fallback). */
const char *api_user_name(struct api *a, uint32_t uid);

/* Events (events.c). api_event steals data (may be NULL) and joins the open batch. */
int api_event(struct api *a, const char *type, uint64_t job, const char *node, json_t *data);
int api_events_load(struct api *a, struct err *e);
void api_events_clear(struct api *a);
void api_events_wake(struct api *a);          /* after a commit */
void api_events_release_all(struct api *a);
void api_events_trim(struct api *a, int64_t now);
void api_events_get(struct ctx *c, struct http_conn *conn);
/* Send an active job back to pending: event, store, and every node it held re-synced. */
void api_requeue(struct api *a, struct job *j, const char *reason);
/* Store and announce a node whose state differs from what was last stored. */
int api_sync_node(struct api *a, uint32_t node);
/* Announce and persist a job's change (events for placed / requeued). */
void api_jobs_status(struct ctx *c, const char *id);

/* Telemetry (telemetry.c). */
int api_webhooks_start(struct api *a, struct err *e);
bool api_webhooks_wanted(struct api *a, uint64_t job, const char *node);
void api_webhooks_event(struct api *a, uint64_t seq, const char *type, uint64_t job,
			const char *node, const char *body, size_t len);
void api_webhooks_committed(struct api *a, bool ok);   /* after every commit attempt */
void api_webhooks_reload(struct api *a);               /* after memory was reloaded */
void api_webhooks_close(struct api *a);
void api_webhooks_free(struct api *a);
void api_webhooks_totals(const struct api *a, uint64_t *delivered, uint64_t *failed,
			 uint64_t *backlog, uint32_t *failing);
void api_webhooks_get(struct ctx *c);
void api_webhooks_tick(struct api *a);   /* once a second: log endpoints turning failing/ok */
void api_simulate(struct ctx *c);
void api_simulate_cancel_all(struct api *a);   /* at shutdown: runs stop at their next poll */
int api_telemetry_start(struct api *a, struct err *e);
int api_telemetry_sync(struct api *a);        /* after the fleet changed */
void api_telemetry_close(struct api *a);
void api_telemetry_free(struct api *a);
void api_device_action(struct ctx *c, const char *node, const char *index, const char *action);

/* Metrics (metrics.c). */
void api_metrics_request(struct api *a, int route, int status, uint64_t ns);
void api_metrics_commit(struct api *a, uint64_t ns, uint32_t batch);
void api_metrics_placed(struct api *a, int64_t waited_s);
void api_metrics_pass(struct api *a, uint64_t ns, uint32_t tries);
void api_metrics_get(struct ctx *c);

/* Access (auth.c): root or the admin group. api_require_admin fills c->err (403). */
bool api_is_admin(struct api *a, uid_t uid, gid_t gid);
int api_require_admin(struct ctx *c, const char *what);

/* Persist every state change a placement or release made (job + its nodes). */
int api_persist_job(struct api *a, const struct job *j, bool with_placement);

/* Resource handlers (fleet.c, jobs.c). */
void api_fleet_get(struct ctx *c);
void api_fleet_post(struct ctx *c);
void api_models_get(struct ctx *c);
void api_domains_get(struct ctx *c, const char *name);
void api_nodes_get(struct ctx *c, const char *name);
void api_node_action(struct ctx *c, const char *name, const char *action);
void api_devices_get(struct ctx *c);
void api_jobs_get(struct ctx *c, const char *id);
void api_jobs_post(struct ctx *c);
void api_jobs_delete(struct ctx *c, const char *id);
void api_jobs_explain(struct ctx *c, const char *id);
void api_capacity_get(struct ctx *c);          /* capacity.c */

#endif
