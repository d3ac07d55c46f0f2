/*
 * store — durable state in SQLite (WAL, synchronous=FULL by default), applied as whole
 * commands by a single writer, batched into one transaction per loop turn (group commit).
 *
 * Owns: the database connection, its prepared statements, the schema migrations (embedded
 * from sql/ at build time) and the open batch transaction.
 * Never: decides anything (the core does), is called from more than one thread, lets a
 * caller see a commit as done before SQLite said so.
 *
 * Batch protocol: every store_put_* joins the batch (BEGIN IMMEDIATE on the first one).
 * store_commit ends it: 0 = durable; negative = nothing of the batch is stored (rolled
 * back) and the caller must rebuild memory with store_load. A put that fails poisons the
 * batch: later puts are skipped and the commit fails.
 */
#ifndef JOULE_STORE_H
#define JOULE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "fleet.h"
#include "job.h"

struct store;

struct store_options {
	bool synchronous_full;      /* true (default): FULL; false: NORMAL (benchmarks only) */
};

/* Open (creating if needed) and migrate. Returns 0 and *out, or an error with e filled. */
int store_open(const char *path, const struct store_options *opt, struct store **out,
	       struct err *e);
/* Roll back an open batch and close. NULL is fine. */
void store_close(struct store *s);

/* Rebuild an empty fleet and job table from the database. */
int store_load(struct store *s, struct fleet *f, struct jobs *t, struct err *e);

/* Upsert every model, domain and node named in doc, with the values f now holds for them
 * (call after a successful fleet_import of doc). */
int store_put_fleet(struct store *s, const struct fleet *f, const struct fleet_doc *doc);
/* One device's health (telemetry or a reset). */
int store_put_device_health(struct store *s, const struct fleet *f, uint32_t device);
/* A node's state. */
int store_put_node_state(struct store *s, const struct fleet *f, uint32_t node);
/* Insert or update a job's row; with_placement also rewrites its placement rows. */
int store_put_job(struct store *s, const struct fleet *f, const struct job *j, bool with_placement);

/* Append one event (seq chosen by the caller, increasing); job 0 and node NULL = none. */
int store_put_event(struct store *s, uint64_t seq, int64_t ts, const char *type, uint64_t job,
		    const char *node, const char *data_json);
/* Delete events with seq < below (retention). */
int store_trim_events(struct store *s, uint64_t below);
/* The newest `max` events in increasing seq, one callback each (strings valid during the
 * call); a non-zero return stops. Also *max_seq = the highest seq stored (0 when none). */
typedef int (*store_event_cb)(void *ud, uint64_t seq, int64_t ts, const char *type, uint64_t job,
			      const char *node, const char *data_json);
int store_load_events(struct store *s, uint32_t max, store_event_cb cb, void *ud,
		      uint64_t *max_seq, struct err *e);

/* The webhook outbox: one row per (endpoint URL, event seq) still to be delivered. Put
 * joins the batch (call it in the same turn as the event's store_put_event); del joins
 * the batch too (a delivery acknowledged by the endpoint). */
int store_put_outbox(struct store *s, const char *endpoint, uint64_t seq, uint64_t key,
		     const char *type, const char *body);
int store_del_outbox(struct store *s, const char *endpoint, uint64_t seq);
/* Every endpoint with rows, with their count; a non-zero return stops (and is returned). */
typedef int (*store_outbox_endpoint_cb)(void *ud, const char *endpoint, uint64_t rows);
int store_outbox_endpoints(struct store *s, store_outbox_endpoint_cb cb, void *ud);
/* Up to max rows of endpoint with after_seq < seq <= upto_seq, in seq order (an open batch
 * is visible: bound upto_seq by the last committed event). Returns the rows read, or a
 * negative code (a callback's, or -EIO). */
typedef int (*store_outbox_row_cb)(void *ud, uint64_t seq, uint64_t key, const char *type,
				   const char *body, size_t len);
int store_load_outbox(struct store *s, const char *endpoint, uint64_t after_seq,
		      uint64_t upto_seq, uint32_t max, store_outbox_row_cb cb, void *ud);

/* Commit the batch if one is open (0 when none). */
int store_commit(struct store *s, struct err *e);
bool store_batch_open(const struct store *s);
/* Embedded SQLite is always the leader; a replicated engine may answer otherwise. */
bool store_is_leader(const struct store *s);

#endif
