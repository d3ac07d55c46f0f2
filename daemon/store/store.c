/*
 * store — SQLite persistence of the fleet and the jobs (see store.h for the batch protocol).
 *
 * Owns: the connection, prepared statements, migrations, the batch transaction.
 * Never: holds core pointers across calls, decides placements, commits behind the caller's
 * back. Rows are keyed by names (nodes, domains, models) and job ids, never by in-memory
 * indexes, so the database stays valid whatever order memory is rebuilt in.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "place.h"

struct store_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct store_migration store_migrations[];
extern const unsigned store_migrations_count;

enum stmt {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_PUT_MODEL, ST_PUT_DOMAIN, ST_PUT_NODE, ST_DEL_DEVICES, ST_PUT_DEVICE, ST_NODE_STATE,
	ST_PUT_JOB, ST_DEL_PLACEMENT, ST_PUT_PLACEMENT, ST_PUT_EVENT, ST_TRIM_EVENTS, ST_DEVICE_HEALTH,
	ST_PUT_OUTBOX, ST_DEL_OUTBOX, ST_EVENT_MARK,
	_ST_MAX
};

static const char *const stmt_sql[_ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PUT_MODEL] = "INSERT INTO models(name, vendor, stack, memory_gib, bandwidth_gbs, "
			 "bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w) "
			 "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) ON CONFLICT(name) DO UPDATE SET "
			 "vendor=?2, stack=?3, memory_gib=?4, bandwidth_gbs=?5, bf16_tflops=?6, "
			 "fp8_tflops=?7, tdp_w=?8, min_cap_w=?9, idle_w=?10",
	[ST_PUT_DOMAIN] = "INSERT INTO domains(name, parent, budget_w) VALUES (?1,?2,?3) "
			  "ON CONFLICT(name) DO UPDATE SET parent=?2, budget_w=?3",
	[ST_PUT_NODE] = "INSERT INTO nodes(name, domain, host_idle_w, grp, labels, exporter_url, state, "
			"agent_url) VALUES (?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT(name) DO UPDATE SET "
			"domain=?2, host_idle_w=?3, grp=?4, labels=?5, exporter_url=?6, state=?7, "
			"agent_url=?8",
	[ST_DEL_DEVICES] = "DELETE FROM devices WHERE node=?1",
	[ST_PUT_DEVICE] = "INSERT INTO devices(node, idx, model, health, reason, last_xid, uuid) "
			  "VALUES (?1,?2,?3,?4,?5,?6,?7)",
	[ST_NODE_STATE] = "UPDATE nodes SET state=?2 WHERE name=?1",
	[ST_PUT_JOB] = "INSERT OR REPLACE INTO jobs(id, name, kind, state, uid, owner, queue, priority, "
		       "preemptible, count, devices, topology, cap_w, min_memory_gib, fp8, stack, "
		       "vendors, models, duration_s, idem_key, reason, submitted_at, placed_at, "
		       "finished_at, min_count, capability, need_memory_gib, need_bandwidth_gbs, "
		       "need_bf16_tflops, need_fp8, cap_auto, min_perf, requeues, on_device_failure) VALUES "
		       "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,"
		       "?22,?23,?24,?25,?26,?27,?28,?29,?30,?31,?32,?33,?34)",
	[ST_DEL_PLACEMENT] = "DELETE FROM placements WHERE job=?1",
	[ST_PUT_PLACEMENT] = "INSERT INTO placements(job, worker, node, model, mask, cap_w) "
			     "VALUES (?1,?2,?3,?4,?5,?6)",
	[ST_PUT_EVENT] = "INSERT INTO events(seq, ts, type, job, node, data) VALUES (?1,?2,?3,?4,?5,?6)",
	[ST_TRIM_EVENTS] = "DELETE FROM events WHERE seq < ?1",
	[ST_DEVICE_HEALTH] = "UPDATE devices SET health=?3, reason=?4, last_xid=?5 WHERE node=?1 AND idx=?2",
	[ST_PUT_OUTBOX] = "INSERT OR REPLACE INTO webhook_outbox(endpoint, seq, key, type, body) "
			  "VALUES (?1,?2,?3,?4,?5)",
	[ST_DEL_OUTBOX] = "DELETE FROM webhook_outbox WHERE endpoint=?1 AND seq=?2",
	[ST_EVENT_MARK] = "INSERT INTO event_mark(id, below) VALUES (1, ?1) "
			  "ON CONFLICT(id) DO UPDATE SET below = max(below, ?1)",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[_ST_MAX];
	bool in_batch;
	int batch_error;   /* first failure inside the batch, 0 when none */
};

static int db_err(struct store *s, struct err *e, const char *what)
{
	int code = sqlite3_errcode(s->db);
	int rc = (code == SQLITE_FULL) ? -ENOSPC : (code == SQLITE_NOMEM) ? -ENOMEM : -EIO;
	return err_set(e, rc, NULL, "database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct store *s, const char *sql, struct err *e)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = err_set(e, -EIO, NULL, "database: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

static int migrate(struct store *s, struct err *e)
{
	sqlite3_stmt *q = NULL;
	int version = 0, rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "reading the schema version");
	if (sqlite3_step(q) == SQLITE_ROW)
		version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (version > (int)store_migrations_count)
		return err_set(e, -EPROTO, NULL, "database schema version %d is newer than this "
			       "jouled knows (%u)", version, store_migrations_count);
	for (unsigned i = (unsigned)version; i < store_migrations_count; i++) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", store_migrations[i].version);
		if ((rc = exec(s, "BEGIN IMMEDIATE", e)) < 0)
			return rc;
		if ((rc = exec(s, store_migrations[i].sql, e)) < 0 || (rc = exec(s, pragma, e)) < 0) {
			exec(s, "ROLLBACK", NULL);
			return rc;
		}
		if ((rc = exec(s, "COMMIT", e)) < 0)
			return rc;
	}
	return 0;
}

int store_open(const char *path, const struct store_options *opt, struct store **out,
	       struct err *e)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = err_set(e, -EIO, NULL, "cannot open database %s: %s", path,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if ((rc = exec(s, "PRAGMA journal_mode=WAL", e)) < 0 ||
	    (rc = exec(s, opt && !opt->synchronous_full ? "PRAGMA synchronous=NORMAL"
						       : "PRAGMA synchronous=FULL", e)) < 0 ||
	    (rc = exec(s, "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536", e)) < 0 ||
	    (rc = migrate(s, e)) < 0)
		goto fail_named;
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		/* SQLite falls back to read-only when it cannot write: refuse, or every
		 * change would be answered 503 */
		rc = err_set(e, -EROFS, NULL, "database %s is read-only (file permissions or a "
			     "read-only file system); jouled needs to write it", path);
		goto fail;
	}
	for (int i = 0; i < _ST_MAX; i++)
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			rc = db_err(s, e, "preparing statements");
			goto fail;
		}
	*out = s;
	return 0;
fail_named:
	if (strstr(e->message, path) == NULL) {
		char msg[sizeof(e->message)];
		snprintf(msg, sizeof(msg), "%s", e->message);
		err_set(e, rc, e->field[0] ? e->field : NULL, "database %s: %s", path,
			strncmp(msg, "database: ", 10) == 0 ? msg + 10 : msg);
	}
fail:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->in_batch)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < _ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

bool store_batch_open(const struct store *s) { return s->in_batch || s->batch_error; }
bool store_is_leader(const struct store *s) { return true; }

/* Run a prepared statement to completion and reset it. */
static int step(struct store *s, sqlite3_stmt *q)
{
	int r = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : -EIO;
}

/* Join the batch; returns non-zero when the batch is poisoned. */
static int batch(struct store *s)
{
	if (s->batch_error)
		return s->batch_error;
	if (!s->in_batch) {
		if (step(s, s->st[ST_BEGIN]) < 0)
			return s->batch_error = -EIO;
		s->in_batch = true;
	}
	return 0;
}

static int fail_batch(struct store *s, int rc)
{
	if (!s->batch_error)
		s->batch_error = rc ? rc : -EIO;
	return s->batch_error;
}

int store_commit(struct store *s, struct err *e)
{
	int rc = 0;
	if (!s->in_batch && !s->batch_error)
		return 0;
	if (s->batch_error) {
		rc = db_err(s, e, "writing the batch");
	} else if (step(s, s->st[ST_COMMIT]) < 0) {
		rc = db_err(s, e, "commit");
	}
	if (rc < 0 && sqlite3_get_autocommit(s->db) == 0)
		step(s, s->st[ST_ROLLBACK]);
	s->in_batch = false;
	s->batch_error = 0;
	return rc;
}

/* ---------------- writes ---------------- */

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static int put_node(struct store *s, const struct fleet *f, uint32_t ni, bool devices)
{
	const struct node *n = &f->nodes[ni];
	sqlite3_stmt *q = s->st[ST_PUT_NODE];
	bind_text(q, 1, n->name);
	bind_text(q, 2, f->domains[n->domain].name);
	sqlite3_bind_int64(q, 3, n->host_idle_w);
	bind_text(q, 4, n->group ? n->group : "");
	bind_text(q, 5, n->labels_json ? n->labels_json : "{}");
	bind_text(q, 6, n->exporter_url ? n->exporter_url : "");
	bind_text(q, 7, fleet_node_state_name(n->state));
	bind_text(q, 8, n->agent_url ? n->agent_url : "");
	if (step(s, q) < 0)
		return -EIO;
	if (!devices)
		return 0;
	q = s->st[ST_DEL_DEVICES];
	bind_text(q, 1, n->name);
	if (step(s, q) < 0)
		return -EIO;
	for (uint32_t k = 0; k < n->ndevices; k++) {
		const struct device *d = &f->devices[n->first_device + k];
		q = s->st[ST_PUT_DEVICE];
		bind_text(q, 1, n->name);
		sqlite3_bind_int(q, 2, d->index);
		bind_text(q, 3, f->models[d->model].name);
		bind_text(q, 4, fleet_health_name(d->health));
		bind_text(q, 5, d->health_reason);
		sqlite3_bind_int64(q, 6, d->last_xid);
		bind_text(q, 7, d->uuid);
		if (step(s, q) < 0)
			return -EIO;
	}
	return 0;
}

int store_put_fleet(struct store *s, const struct fleet *f, const struct fleet_doc *doc)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	for (uint32_t i = 0; i < doc->nmodels; i++) {
		const struct model *m = &f->models[fleet_model_find(f, doc->models[i].name)];
		sqlite3_stmt *q = s->st[ST_PUT_MODEL];
		bind_text(q, 1, m->name);
		bind_text(q, 2, m->vendor);
		bind_text(q, 3, m->stack);
		sqlite3_bind_int64(q, 4, m->memory_gib);
		sqlite3_bind_int64(q, 5, m->bandwidth_gbs);
		sqlite3_bind_double(q, 6, m->bf16_tflops);
		sqlite3_bind_double(q, 7, m->fp8_tflops);
		sqlite3_bind_int64(q, 8, m->tdp_w);
		sqlite3_bind_int64(q, 9, m->min_cap_w);
		sqlite3_bind_int64(q, 10, m->idle_w);
		if (step(s, q) < 0)
			return fail_batch(s, -EIO);
	}
	for (uint32_t i = 0; i < doc->ndomains; i++) {
		const struct domain *d = &f->domains[fleet_domain_find(f, doc->domains[i].name)];
		sqlite3_stmt *q = s->st[ST_PUT_DOMAIN];
		bind_text(q, 1, d->name);
		bind_text(q, 2, d->parent == FLEET_NONE ? NULL : f->domains[d->parent].name);
		sqlite3_bind_int64(q, 3, d->budget_w);
		if (step(s, q) < 0)
			return fail_batch(s, -EIO);
	}
	for (uint32_t i = 0; i < doc->nnodes; i++)
		if (put_node(s, f, fleet_node_find(f, doc->nodes[i].name), true) < 0)
			return fail_batch(s, -EIO);
	return 0;
}

int store_put_device_health(struct store *s, const struct fleet *f, uint32_t device)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	const struct device *d = &f->devices[device];
	sqlite3_stmt *q = s->st[ST_DEVICE_HEALTH];
	bind_text(q, 1, f->nodes[d->node].name);
	sqlite3_bind_int(q, 2, d->index);
	bind_text(q, 3, fleet_health_name(d->health));
	bind_text(q, 4, d->health_reason);
	sqlite3_bind_int64(q, 5, d->last_xid);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

int store_put_node_state(struct store *s, const struct fleet *f, uint32_t node)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	sqlite3_stmt *q = s->st[ST_NODE_STATE];
	bind_text(q, 1, f->nodes[node].name);
	bind_text(q, 2, fleet_node_state_name(f->nodes[node].state));
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

/* "a,b,c" from a list of fixed-size names. */
static void join(char *out, size_t n, const char *names, size_t stride, uint32_t count)
{
	size_t used = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < count && used < n; i++)
		used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "",
					 names + i * stride);
}

int store_put_job(struct store *s, const struct fleet *f, const struct job *j, bool with_placement)
{
	const struct job_request *r = &j->req;
	char vendors[JOB_MAX_VENDORS * 17 + 1], models[JOB_MAX_MODELS * 49 + 1];
	sqlite3_stmt *q = s->st[ST_PUT_JOB];
	int rc;

	if ((rc = batch(s)) < 0)
		return rc;
	join(vendors, sizeof(vendors), &r->vendors[0][0], sizeof(r->vendors[0]), r->nvendors);
	join(models, sizeof(models), r->models ? &r->models[0][0] : "", sizeof(r->models[0]),
	     r->nmodels);
	sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
	bind_text(q, 2, j->name);
	bind_text(q, 3, job_kind_name(r->kind));
	bind_text(q, 4, job_state_name(j->state));
	sqlite3_bind_int64(q, 5, j->uid);
	bind_text(q, 6, j->owner ? j->owner : "");
	bind_text(q, 7, j->queue ? j->queue : "default");
	sqlite3_bind_int(q, 8, j->priority);
	sqlite3_bind_int(q, 9, j->preemptible);
	sqlite3_bind_int64(q, 10, r->count);
	sqlite3_bind_int64(q, 11, r->devices);
	bind_text(q, 12, job_topology_name(r->topology));
	sqlite3_bind_int64(q, 13, r->cap_w);
	sqlite3_bind_int64(q, 14, r->min_memory_gib);
	sqlite3_bind_int(q, 15, r->fp8);
	bind_text(q, 16, r->stack);
	bind_text(q, 17, vendors);
	bind_text(q, 18, models);
	sqlite3_bind_int64(q, 19, r->duration_s);
	bind_text(q, 20, j->idem_key);
	bind_text(q, 21, j->reason);
	sqlite3_bind_int64(q, 22, j->submitted_at);
	sqlite3_bind_int64(q, 23, j->placed_at);
	sqlite3_bind_int64(q, 24, j->finished_at);
	sqlite3_bind_int64(q, 25, r->min_count);
	sqlite3_bind_int(q, 26, r->capability);
	sqlite3_bind_int64(q, 27, r->need.memory_gib);
	sqlite3_bind_int64(q, 28, r->need.bandwidth_gbs);
	sqlite3_bind_double(q, 29, r->need.bf16_tflops);
	sqlite3_bind_int(q, 30, r->need.fp8);
	sqlite3_bind_int(q, 31, r->cap_auto);
	sqlite3_bind_double(q, 32, r->min_perf);
	sqlite3_bind_int64(q, 33, j->requeues);
	bind_text(q, 34, r->keep_on_device_failure ? "keep" : "requeue");
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	if (!with_placement)
		return 0;
	q = s->st[ST_DEL_PLACEMENT];
	sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	for (uint32_t i = 0; i < j->nplaced; i++) {
		const struct job_worker *w = &j->placement[i];
		q = s->st[ST_PUT_PLACEMENT];
		sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
		sqlite3_bind_int64(q, 2, i);
		bind_text(q, 3, f->nodes[w->node].name);
		bind_text(q, 4, f->models[w->model].name);
		sqlite3_bind_int64(q, 5, (sqlite3_int64)w->mask);
		sqlite3_bind_int64(q, 6, w->cap_w);
		if (step(s, q) < 0)
			return fail_batch(s, -EIO);
	}
	return 0;
}

static const char *col_text(sqlite3_stmt *q, int i);

int store_put_event(struct store *s, uint64_t seq, int64_t ts, const char *type, uint64_t job,
		    const char *node, const char *data_json)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	sqlite3_stmt *q = s->st[ST_PUT_EVENT];
	sqlite3_bind_int64(q, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(q, 2, ts);
	bind_text(q, 3, type);
	if (job)
		sqlite3_bind_int64(q, 4, (sqlite3_int64)job);
	else
		sqlite3_bind_null(q, 4);
	bind_text(q, 5, node);
	bind_text(q, 6, data_json ? data_json : "{}");
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

int store_trim_events(struct store *s, uint64_t below)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	sqlite3_stmt *q = s->st[ST_TRIM_EVENTS];
	sqlite3_bind_int64(q, 1, (sqlite3_int64)below);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	q = s->st[ST_EVENT_MARK];
	sqlite3_bind_int64(q, 1, (sqlite3_int64)below);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

int store_load_events(struct store *s, uint32_t max, store_event_cb cb, void *ud,
		      uint64_t *max_seq, struct err *e)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;
	*max_seq = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT seq, ts, type, job, node, data FROM (SELECT * FROM "
			       "events ORDER BY seq DESC LIMIT ?1) ORDER BY seq", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "loading events");
	sqlite3_bind_int64(q, 1, max);
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(q, 0);
		*max_seq = seq;
		rc = cb(ud, seq, sqlite3_column_int64(q, 1), col_text(q, 2),
			(uint64_t)sqlite3_column_int64(q, 3),
			sqlite3_column_type(q, 4) == SQLITE_NULL ? NULL : col_text(q, 4), col_text(q, 5));
	}
	sqlite3_finalize(q);
	if (rc)
		return err_set(e, rc < 0 ? rc : -EIO, NULL, "loading events stopped");
	/* events may all be trimmed: the highest seq ever used still counts */
	if (*max_seq == 0 && sqlite3_prepare_v2(s->db, "SELECT max(coalesce((SELECT max(seq) FROM "
						 "events), 0), coalesce((SELECT below - 1 FROM "
						 "event_mark), 0))", -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			*max_seq = (uint64_t)sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	return 0;
}

/* ---------------- the webhook outbox ---------------- */

int store_put_outbox(struct store *s, const char *endpoint, uint64_t seq, uint64_t key,
		     const char *type, const char *body)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	sqlite3_stmt *q = s->st[ST_PUT_OUTBOX];
	bind_text(q, 1, endpoint);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)key);
	bind_text(q, 4, type);
	bind_text(q, 5, body);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

int store_del_outbox(struct store *s, const char *endpoint, uint64_t seq)
{
	int rc;
	if ((rc = batch(s)) < 0)
		return rc;
	sqlite3_stmt *q = s->st[ST_DEL_OUTBOX];
	bind_text(q, 1, endpoint);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)seq);
	if (step(s, q) < 0)
		return fail_batch(s, -EIO);
	return 0;
}

int store_outbox_endpoints(struct store *s, store_outbox_endpoint_cb cb, void *ud)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT endpoint, count(*) FROM webhook_outbox GROUP BY endpoint",
			       -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW)
		rc = cb(ud, col_text(q, 0), (uint64_t)sqlite3_column_int64(q, 1));
	sqlite3_finalize(q);
	return rc;
}

int store_load_outbox(struct store *s, const char *endpoint, uint64_t after_seq,
		      uint64_t upto_seq, uint32_t max, store_outbox_row_cb cb, void *ud)
{
	sqlite3_stmt *q = NULL;
	int rc = 0, n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT seq, key, type, body FROM webhook_outbox WHERE endpoint=?1 "
			       "AND seq > ?2 AND seq <= ?4 ORDER BY seq LIMIT ?3", -1, &q, NULL) != SQLITE_OK)
		return -EIO;
	bind_text(q, 1, endpoint);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)after_seq);
	sqlite3_bind_int64(q, 3, max);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)upto_seq);
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		const unsigned char *body = sqlite3_column_text(q, 3);
		rc = cb(ud, (uint64_t)sqlite3_column_int64(q, 0), (uint64_t)sqlite3_column_int64(q, 1),
			col_text(q, 2), body ? (const char *)body : "{}",
			(size_t)sqlite3_column_bytes(q, 3));
		n++;
	}
	sqlite3_finalize(q);
	return rc < 0 ? rc : n;
}

/* ---------------- load ---------------- */

static char *col_dup(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	return t ? strdup((const char *)t) : NULL;
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	return t ? (const char *)t : "";
}

/* Load the fleet rows into a document and import it (the same path as POST /v1/fleet). */
static int load_fleet(struct store *s, struct fleet *f, struct err *e)
{
	sqlite3_stmt *q = NULL;
	struct model *models = NULL;
	struct fleet_domain_spec *domains = NULL;
	struct fleet_node_spec *nodes = NULL;
	struct fleet_device_spec *devs = NULL;
	char **strs = NULL;
	size_t nstrs = 0, cstrs = 0;
	uint32_t nm = 0, nd = 0, nn = 0, ndev = 0, cm = 0, cd = 0, cn = 0, cdev = 0;
	int rc = -ENOMEM;

#define GROW(arr, n, c)                                                                      \
	do {                                                                                 \
		if ((n) == (c)) {                                                            \
			uint32_t nc_ = (c) ? (c) * 2 : 64;                                   \
			void *p_ = realloc((arr), nc_ * sizeof(*(arr)));                     \
			if (!p_)                                                             \
				goto nomem;                                                  \
			(arr) = p_;                                                          \
			(c) = nc_;                                                           \
		}                                                                            \
	} while (0)
#define KEEP(dst, q, i)                                                                      \
	do {                                                                                 \
		if (nstrs == cstrs) {                                                        \
			size_t nc_ = cstrs ? cstrs * 2 : 256;                                \
			char **p_ = realloc(strs, nc_ * sizeof(*strs));                      \
			if (!p_)                                                             \
				goto nomem;                                                  \
			strs = p_;                                                           \
			cstrs = nc_;                                                         \
		}                                                                            \
		if (sqlite3_column_type((q), (i)) == SQLITE_NULL) {                          \
			(dst) = NULL;                                                        \
		} else {                                                                     \
			if (!(strs[nstrs] = col_dup((q), (i))))                              \
				goto nomem;                                                  \
			(dst) = strs[nstrs++];                                               \
		}                                                                            \
	} while (0)

	if (sqlite3_prepare_v2(s->db, "SELECT name, vendor, stack, memory_gib, bandwidth_gbs, "
			       "bf16_tflops, fp8_tflops, tdp_w, min_cap_w, idle_w FROM models "
			       "ORDER BY rowid", -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	while (sqlite3_step(q) == SQLITE_ROW) {
		GROW(models, nm, cm);
		struct model *m = &models[nm++];
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", col_text(q, 0));
		snprintf(m->vendor, sizeof(m->vendor), "%s", col_text(q, 1));
		snprintf(m->stack, sizeof(m->stack), "%s", col_text(q, 2));
		m->memory_gib = (uint32_t)sqlite3_column_int64(q, 3);
		m->bandwidth_gbs = (uint32_t)sqlite3_column_int64(q, 4);
		m->bf16_tflops = sqlite3_column_double(q, 5);
		m->fp8_tflops = sqlite3_column_double(q, 6);
		m->tdp_w = (uint32_t)sqlite3_column_int64(q, 7);
		m->min_cap_w = (uint32_t)sqlite3_column_int64(q, 8);
		m->idle_w = (uint32_t)sqlite3_column_int64(q, 9);
	}
	sqlite3_finalize(q);
	if (sqlite3_prepare_v2(s->db, "SELECT name, parent, budget_w FROM domains ORDER BY rowid",
			       -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	while (sqlite3_step(q) == SQLITE_ROW) {
		GROW(domains, nd, cd);
		struct fleet_domain_spec *d = &domains[nd];
		KEEP(d->name, q, 0);
		KEEP(d->parent, q, 1);
		d->budget_w = sqlite3_column_int64(q, 2);
		nd++;
	}
	sqlite3_finalize(q);
	/* devices first, grouped by node in index order; nodes then point into the array */
	if (sqlite3_prepare_v2(s->db, "SELECT n.name, n.domain, n.host_idle_w, n.grp, n.labels, "
			       "n.exporter_url, d.model, n.agent_url FROM nodes n LEFT JOIN devices d "
			       "ON d.node = n.name ORDER BY n.rowid, d.idx",
			       -1, &q, NULL) != SQLITE_OK)
		goto dberr;
	uint32_t *first_dev = NULL, cfd = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *name = col_text(q, 0);
		if (nn == 0 || strcmp(nodes[nn - 1].name, name) != 0) {
			GROW(nodes, nn, cn);
			if (nn == cfd) {
				uint32_t nc = cfd ? cfd * 2 : 64;
				uint32_t *p = realloc(first_dev, nc * sizeof(*p));
				if (!p) {
					free(first_dev);
					goto nomem;
				}
				first_dev = p;
				cfd = nc;
			}
			struct fleet_node_spec *n = &nodes[nn];
			memset(n, 0, sizeof(*n));
			KEEP(n->name, q, 0);
			KEEP(n->domain, q, 1);
			n->host_idle_w = sqlite3_column_int64(q, 2);
			KEEP(n->group, q, 3);
			KEEP(n->labels_json, q, 4);
			KEEP(n->exporter_url, q, 5);
			KEEP(n->agent_url, q, 7);
			first_dev[nn] = ndev;
			nn++;
		}
		if (sqlite3_column_type(q, 6) == SQLITE_NULL)
			continue;
		/* consecutive devices of one model make one {model, count} run */
		if (nodes[nn - 1].ndevs > 0 && strcmp(devs[ndev - 1].model, col_text(q, 6)) == 0) {
			devs[ndev - 1].count++;
		} else {
			GROW(devs, ndev, cdev);
			KEEP(devs[ndev].model, q, 6);
			devs[ndev].count = 1;
			devs[ndev].uuids = NULL;   /* load_states sets them */
			ndev++;
			nodes[nn - 1].ndevs++;
		}
	}
	sqlite3_finalize(q);
	q = NULL;
	for (uint32_t i = 0; i < nn; i++)
		nodes[i].devs = devs + first_dev[i];
	free(first_dev);
	struct fleet_doc doc = {models, nm, domains, nd, nodes, nn};
	rc = fleet_import(f, &doc, e);
	if (rc < 0)
		err_prefix_field(e, "stored fleet");
	goto out;
dberr:
	rc = db_err(s, e, "loading the fleet");
	goto out;
nomem:
	rc = err_set(e, -ENOMEM, NULL, "out of memory loading the fleet");
out:
	sqlite3_finalize(q);
	for (size_t i = 0; i < nstrs; i++)
		free(strs[i]);
	free(strs);
	free(models);
	free(domains);
	free(nodes);
	free(devs);
	return rc;
#undef GROW
#undef KEEP
}

/* Split "a,b" into fixed-size name slots; returns the count. */
static uint32_t split(const char *s, char *out, size_t stride, uint32_t max)
{
	uint32_t n = 0;
	while (*s && n < max) {
		const char *c = strchr(s, ',');
		size_t len = c ? (size_t)(c - s) : strlen(s);
		if (len >= stride)
			len = stride - 1;
		memcpy(out + n * stride, s, len);
		out[n * stride + len] = '\0';
		n++;
		s += len + (c ? 1 : 0);
		if (!c)
			break;
	}
	return n;
}

static int load_jobs(struct store *s, struct fleet *f, struct jobs *t, struct err *e)
{
	sqlite3_stmt *q = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT id, name, kind, state, uid, owner, queue, priority, "
			       "preemptible, count, devices, topology, cap_w, min_memory_gib, fp8, "
			       "stack, vendors, models, duration_s, idem_key, reason, submitted_at, "
			       "placed_at, finished_at, min_count, capability, need_memory_gib, "
			       "need_bandwidth_gbs, need_bf16_tflops, need_fp8, cap_auto, min_perf, "
			       "requeues, on_device_failure FROM jobs ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "loading jobs");
	while (sqlite3_step(q) == SQLITE_ROW) {
		struct job *j = job_new();
		if (!j)
			goto nomem;
		struct job_request *r = &j->req;
		j->id = (uint64_t)sqlite3_column_int64(q, 0);
		j->name = col_dup(q, 1);
		if (job_kind_parse(col_text(q, 2), &r->kind) < 0 ||
		    job_state_parse(col_text(q, 3), &j->state) < 0 ||
		    job_topology_parse(col_text(q, 11), &r->topology) < 0) {
			job_free(j);
			sqlite3_finalize(q);
			return err_set(e, -EPROTO, NULL, "job %lld has an unknown kind, state or "
				       "topology", (long long)sqlite3_column_int64(q, 0));
		}
		j->uid = (uint32_t)sqlite3_column_int64(q, 4);
		j->owner = col_dup(q, 5);
		j->queue = col_dup(q, 6);
		j->priority = sqlite3_column_int(q, 7);
		j->preemptible = sqlite3_column_int(q, 8) != 0;
		r->count = (uint32_t)sqlite3_column_int64(q, 9);
		r->devices = (uint32_t)sqlite3_column_int64(q, 10);
		r->cap_w = (uint32_t)sqlite3_column_int64(q, 12);
		r->min_memory_gib = (uint32_t)sqlite3_column_int64(q, 13);
		r->fp8 = sqlite3_column_int(q, 14) != 0;
		snprintf(r->stack, sizeof(r->stack), "%s", col_text(q, 15));
		r->nvendors = (uint8_t)split(col_text(q, 16), &r->vendors[0][0], sizeof(r->vendors[0]),
					     JOB_MAX_VENDORS);
		const char *ms = col_text(q, 17);
		if (*ms) {
			/* sized to the list: a million stored jobs must not hold 32 names each */
			uint32_t nm = 1;
			for (const char *c = ms; *c; c++)
				nm += *c == ',';
			if (nm > JOB_MAX_MODELS)
				nm = JOB_MAX_MODELS;
			r->models = calloc(nm, sizeof(*r->models));
			if (!r->models) {
				job_free(j);
				goto nomem;
			}
			r->nmodels = (uint8_t)split(ms, &r->models[0][0], sizeof(r->models[0]), nm);
		}
		r->duration_s = sqlite3_column_int64(q, 18);
		j->idem_key = sqlite3_column_type(q, 19) == SQLITE_NULL ? NULL : col_dup(q, 19);
		j->reason = sqlite3_column_type(q, 20) == SQLITE_NULL ? NULL : col_dup(q, 20);
		j->submitted_at = sqlite3_column_int64(q, 21);
		j->placed_at = sqlite3_column_int64(q, 22);
		j->finished_at = sqlite3_column_int64(q, 23);
		r->min_count = (uint32_t)sqlite3_column_int64(q, 24);
		r->capability = sqlite3_column_int(q, 25) != 0;
		r->need.memory_gib = (uint32_t)sqlite3_column_int64(q, 26);
		r->need.bandwidth_gbs = (uint32_t)sqlite3_column_int64(q, 27);
		r->need.bf16_tflops = sqlite3_column_double(q, 28);
		r->need.fp8 = sqlite3_column_int(q, 29) != 0;
		r->cap_auto = sqlite3_column_int(q, 30) != 0;
		r->min_perf = sqlite3_column_double(q, 31);
		j->requeues = (uint32_t)sqlite3_column_int64(q, 32);
		r->keep_on_device_failure = strcmp(col_text(q, 33), "keep") == 0;
		if (!r->min_count)
			r->min_count = r->count;
		if (!j->name || !j->owner || !j->queue) {
			job_free(j);
			goto nomem;
		}
		if ((rc = jobs_add(t, j)) < 0) {
			job_free(j);
			sqlite3_finalize(q);
			return err_set(e, rc, NULL, "job %llu cannot be loaded",
				       (unsigned long long)j->id);
		}
	}
	sqlite3_finalize(q);

	/* placements: history for every job, devices held again for placed/running ones */
	if (sqlite3_prepare_v2(s->db, "SELECT job, worker, node, model, mask, cap_w FROM placements "
			       "ORDER BY job, worker", -1, &q, NULL) != SQLITE_OK)
		return db_err(s, e, "loading placements");
	while (sqlite3_step(q) == SQLITE_ROW) {
		struct job *j = jobs_get(t, (uint64_t)sqlite3_column_int64(q, 0));
		uint32_t w = (uint32_t)sqlite3_column_int64(q, 1);
		uint32_t node = fleet_node_find(f, col_text(q, 2));
		uint32_t model = fleet_model_find(f, col_text(q, 3));
		if (!j || w >= j->req.count || node == FLEET_NONE || model == FLEET_NONE) {
			sqlite3_finalize(q);
			return err_set(e, -EPROTO, NULL, "placement of job %lld names an unknown "
				       "job, worker, node or model", (long long)sqlite3_column_int64(q, 0));
		}
		if (!j->placement) {
			j->placement = calloc(j->req.count, sizeof(*j->placement));
			if (!j->placement)
				goto nomem;
		}
		j->placement[w].node = node;
		j->placement[w].model = (uint16_t)model;
		j->placement[w].mask = (uint64_t)sqlite3_column_int64(q, 4);
		j->placement[w].cap_w = (uint32_t)sqlite3_column_int64(q, 5);
		if (w + 1 > j->nplaced)
			j->nplaced = w + 1;
	}
	sqlite3_finalize(q);
	q = NULL;
	for (uint64_t id = 1; id < t->next_id; id++) {
		struct job *j = jobs_get(t, id);
		if (!j || (j->state != JOB_PLACED && j->state != JOB_RUNNING))
			continue;
		if ((rc = place_restore(f, j, e)) < 0)
			return rc;
	}
	return 0;
nomem:
	sqlite3_finalize(q);
	return err_set(e, -ENOMEM, NULL, "out of memory loading jobs");
}

static int load_states(struct store *s, struct fleet *f, struct err *e)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT node, idx, health, reason, last_xid, uuid FROM devices "
			       "WHERE health != 'ok' OR last_xid != 0 OR uuid IS NOT NULL", -1, &q,
			       NULL) != SQLITE_OK)
		return db_err(s, e, "loading device health");
	while (sqlite3_step(q) == SQLITE_ROW) {
		uint32_t n = fleet_node_find(f, col_text(q, 0));
		uint32_t idx = (uint32_t)sqlite3_column_int(q, 1);
		enum device_health h;
		if (n == FLEET_NONE || idx >= f->nodes[n].ndevices ||
		    fleet_health_parse(col_text(q, 2), &h) < 0)
			continue;
		struct device *d = &f->devices[f->nodes[n].first_device + idx];
		if (sqlite3_column_type(q, 5) != SQLITE_NULL) {
			free(d->uuid);
			d->uuid = col_dup(q, 5);
		}
		if (h != HEALTH_OK)
			fleet_device_set_health(f, f->nodes[n].first_device + idx, h);
		d->last_xid = (uint32_t)sqlite3_column_int64(q, 4);
		free(d->health_reason);
		d->health_reason = sqlite3_column_type(q, 3) == SQLITE_NULL ? NULL : col_dup(q, 3);
	}
	sqlite3_finalize(q);
	if (sqlite3_prepare_v2(s->db, "SELECT name, state FROM nodes WHERE state != 'up'", -1, &q,
			       NULL) != SQLITE_OK)
		return db_err(s, e, "loading node states");
	while (sqlite3_step(q) == SQLITE_ROW) {
		uint32_t n = fleet_node_find(f, col_text(q, 0));
		const char *st = col_text(q, 1);
		if (n != FLEET_NONE && (strcmp(st, "draining") == 0 || strcmp(st, "drained") == 0))
			fleet_node_drain(f, n, NULL);
	}
	sqlite3_finalize(q);
	return 0;
}

int store_load(struct store *s, struct fleet *f, struct jobs *t, struct err *e)
{
	int rc;
	if ((rc = load_fleet(s, f, e)) < 0 || (rc = load_jobs(s, f, t, e)) < 0 ||
	    (rc = load_states(s, f, e)) < 0)
		return rc;
	return 0;
}
