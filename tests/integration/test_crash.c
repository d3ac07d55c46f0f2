/*
 * test_crash — jouled under faults: kill -9 at random moments under a submit / cancel /
 * status-report load, a full disk, and a database it cannot write.
 *
 * Owns: its daemons (tests/lib/daemon.h), the load's client processes, and, for the disk
 * tests, a tmpfs mounted in a private mount namespace of the test's own (forked) process,
 * so a failed test leaves no mount behind: the namespace dies with the process.
 * Never: looks at the daemon's memory or code; it judges only what clients were told and
 * what clients can see afterwards, plus SQLite's own `PRAGMA integrity_check` of the file.
 *
 * What "acknowledged" means here: a client records an operation only once it has read the
 * whole 2xx answer. jouled writes such an answer only after the transaction holding the
 * change committed (proto/API.md, Durability), and a read answered while a batch is open
 * waits for that batch too, so every state a client *saw* must survive a kill -9 as well.
 *
 * The disk tests need root with CAP_SYS_ADMIN (mount); without it they print SKIP and pass.
 * JOULE_CRASH_SEED=N replays a crash run's random choices (the seed is printed); the kill
 * moments still depend on timing.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "../lib/daemon.h"

#define CLIENTS 4            /* client processes of the crash load */
#define ROUNDS 12            /* kill -9 rounds */
#define ROUNDS_MIN 4         /* ... at least this many even on a slow machine */
#define BUDGET_MS 38000      /* no new round starts after this much time */
#define LIVE_MAX 96          /* unfinished jobs one client keeps track of */

/* ---- small helpers ------------------------------------------------------------------ */

/* printf into one of a ring of static buffers. */
__attribute__((format(printf, 1, 2)))
static const char *fmt(const char *f, ...)
{
	static char ring[8][1024];
	static unsigned k;
	char *b = ring[k++ % 8];
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(b, sizeof ring[0], f, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < sizeof ring[0], "fmt overflow");
	return b;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A request whose status must be `want`; returns its JSON body (new reference). */
static json_t *req_at(int line, struct td_daemon *d, const char *method, const char *path,
		      const char *body, long want)
{
	struct td_response r;
	int rc = td_http(d, method, path, body, NULL, &r);
	ck_assert_msg(rc == 0, "line %d: %s %s: no HTTP answer (%d)", line, method, path, rc);
	ck_assert_msg(r.status == want, "line %d: %s %s: want %ld, got %ld: %.600s", line,
		      method, path, want, r.status, r.raw);
	ck_assert_msg(r.json != NULL, "line %d: %s %s: body is not JSON: %.600s", line, method,
		      path, r.raw);
	json_t *j = json_incref(r.json);
	td_response_free(&r);
	return j;
}
#define REQ(d, m, p, b, want) req_at(__LINE__, (d), (m), (p), (b), (want))
#define GET(d, p) req_at(__LINE__, (d), "GET", (p), NULL, 200)

static json_int_t geti_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "line %d: \"%s\" is not an integer", line, key);
	return json_integer_value(v);
}
#define GETI(o, k) geti_at(__LINE__, (o), (k))

static const char *gets_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_string(v), "line %d: \"%s\" is not a string", line, key);
	return json_string_value(v);
}
#define GETS(o, k) gets_at(__LINE__, (o), (k))

/* A 503 answer as the daemon gives it when it cannot commit: JSON, code "unavailable", a
 * message that says the database is the cause. */
static void assert_503_unavailable_at(int line, const struct td_response *r, const char *what)
{
	ck_assert_msg(r->status == 503, "line %d: %s: want 503, got %ld: %.400s", line, what,
		      r->status, r->raw);
	json_t *e = json_object_get(r->json, "error");
	ck_assert_msg(json_is_object(e), "line %d: %s: 503 without a JSON error: %.400s", line,
		      what, r->raw);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "unavailable");
	const char *m = json_string_value(json_object_get(e, "message"));
	ck_assert_msg(m && strstr(m, "database"), "line %d: %s: the message does not name the "
		      "database: %.400s", line, what, r->raw);
}
#define ASSERT_503(r, what) assert_503_unavailable_at(__LINE__, (r), (what))

static const char *const state_names[] = {"pending", "placed", "running", "succeeded",
					  "failed", "cancelled"};
enum { ST_PENDING, ST_PLACED, ST_RUNNING, ST_SUCCEEDED, ST_FAILED, ST_CANCELLED, ST_MAX };

static int state_index(const char *s)
{
	for (int i = 0; s && i < ST_MAX; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

/* Progress of a job: pending 0 < placed 1 < running 2 < finished 3. No job here is
 * preemptible and nothing requeues, so a job's rank never goes down. */
static int rank_of(int st) { return st >= ST_SUCCEEDED ? 3 : st; }

static void import_fleet(struct td_daemon *d)
{
	json_t *doc = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(doc);
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(REQ(d, "POST", "/v1/fleet", body, 200));
	free(body);
	json_decref(doc);
}

/* SQLite's own verdict on the file (a reader beside the daemon is fine in WAL mode), and
 * the number of job rows it holds. */
static void assert_db_intact(const char *path, json_int_t want_jobs)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	ck_assert_msg(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK,
		      "open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	const char *v = (const char *)sqlite3_column_text(q, 0);
	ck_assert_msg(v && strcmp(v, "ok") == 0, "integrity_check of %s: %s", path, v ? v : "?");
	sqlite3_finalize(q);
	if (want_jobs >= 0) {
		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM jobs", -1, &q, NULL),
				 SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int64(q, 0), want_jobs);
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
}

/* ---- what clients can see, and whether it adds up ----------------------------------- */

struct view {
	json_t *jobs;      /* object: id (decimal) → job */
	json_t *devices;   /* array, GET /v1/devices */
	json_t *nodes;     /* array, GET /v1/nodes */
	json_t *domains;   /* array, GET /v1/domains */
	json_t *models;    /* object: name → model */
	json_t *events;    /* array: every retained event, oldest first */
	json_int_t njobs;  /* GET /v1/health's count */
};

static void view_free(struct view *v)
{
	json_decref(v->jobs);
	json_decref(v->devices);
	json_decref(v->nodes);
	json_decref(v->domains);
	json_decref(v->models);
	json_decref(v->events);
	memset(v, 0, sizeof(*v));
}

static void view_fetch(struct td_daemon *d, struct view *v)
{
	memset(v, 0, sizeof(*v));
	json_t *h = GET(d, "/v1/health");
	v->njobs = GETI(h, "jobs");
	json_decref(h);

	v->jobs = json_object();
	json_int_t after = 0;
	for (;;) {
		json_t *page = GET(d, after ? fmt("/v1/jobs?limit=1000&after=%lld", (long long)after)
					    : "/v1/jobs?limit=1000");
		size_t i;
		json_t *j;
		json_array_foreach(json_object_get(page, "jobs"), i, j)
			json_object_set(v->jobs, fmt("%lld", (long long)GETI(j, "id")), j);
		json_t *next = json_object_get(page, "next");
		after = json_is_integer(next) ? json_integer_value(next) : 0;
		json_decref(page);
		if (!after)
			break;
	}
	json_t *o = GET(d, "/v1/devices");
	v->devices = json_incref(json_object_get(o, "devices"));
	json_decref(o);
	o = GET(d, "/v1/nodes");
	v->nodes = json_incref(json_object_get(o, "nodes"));
	json_decref(o);
	o = GET(d, "/v1/domains");
	v->domains = json_incref(json_object_get(o, "domains"));
	json_decref(o);
	o = GET(d, "/v1/models");
	v->models = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(o, "models"), i, m)
		json_object_set(v->models, GETS(m, "name"), m);
	json_decref(o);

	v->events = json_array();
	json_int_t since = 0;
	for (;;) {
		o = GET(d, fmt("/v1/events?since=%lld&limit=10000", (long long)since));
		json_t *evs = json_object_get(o, "events");
		json_array_extend(v->events, evs);
		json_int_t next = GETI(o, "next");
		size_t n = json_array_size(evs);
		json_decref(o);
		if (n == 0 || next == since)
			break;
		since = next;
	}
}

static json_t *view_job(const struct view *v, json_int_t id)
{
	return json_object_get(v->jobs, fmt("%lld", (long long)id));
}

/*
 * The whole picture adds up, recomputed from scratch from the jobs' placements:
 * ids are dense; every placed/running job holds a whole placement and pending ones none;
 * the devices named by placements are exactly the allocated devices (same job, cap and
 * model), no device twice; each node's free count follows; every domain's reserved watts
 * are Σ host idle + Σ devices (allocated ? the placement's cap : the model's idle watts)
 * over the nodes below it, within budget; and the event log holds exactly one
 * job.submitted per job and exactly one end event per finished job (an event is written
 * in the transaction of its change, so a half-applied change shows here).
 */
static void assert_consistent(const struct view *v)
{
	ck_assert_int_eq((json_int_t)json_object_size(v->jobs), v->njobs);
	json_t *alloc = json_object();         /* "node/index" → {job, cap_w, model} */
	json_t *ev_count = json_object();      /* "id/type" → count */
	size_t i;
	json_t *e;
	json_array_foreach(v->events, i, e) {
		json_t *job = json_object_get(e, "job");
		const char *type = GETS(e, "type");
		ck_assert_msg(strcmp(type, "job.requeued") != 0, "unexpected requeue of job %lld",
			      (long long)json_integer_value(job));
		if (!json_is_integer(job))
			continue;
		const char *key = fmt("%lld/%s", (long long)json_integer_value(job), type);
		json_object_set_new(ev_count, key, json_integer(
			json_integer_value(json_object_get(ev_count, key)) + 1));
	}
	for (json_int_t id = 1; id <= v->njobs; id++) {
		json_t *j = view_job(v, id);
		ck_assert_msg(j != NULL, "job %lld is missing: ids must be dense", (long long)id);
		int st = state_index(GETS(j, "state"));
		ck_assert_msg(st >= 0, "job %lld: unknown state", (long long)id);
		ck_assert_int_eq(GETI(j, "requeues"), 0);
		json_t *pl = json_object_get(j, "placement");
		ck_assert(json_is_array(pl));
		bool training = strcmp(GETS(j, "kind"), "training") == 0;
		json_int_t count = GETI(j, training ? "workers" : "replicas");
		json_int_t min = training ? count : GETI(j, "min_replicas");
		json_int_t per = json_is_integer(json_object_get(j, "devices")) ? GETI(j, "devices") : 0;
		json_int_t ev = json_integer_value(json_object_get(ev_count,
			fmt("%lld/job.submitted", (long long)id)));
		ck_assert_msg(ev == 1, "job %lld has %lld job.submitted events", (long long)id,
			      (long long)ev);
		if (st >= ST_SUCCEEDED) {
			ev = json_integer_value(json_object_get(ev_count,
				fmt("%lld/job.%s", (long long)id, state_names[st])));
			ck_assert_msg(ev == 1, "%s job %lld has %lld job.%s events", state_names[st],
				      (long long)id, (long long)ev, state_names[st]);
			ck_assert_msg(json_is_string(json_object_get(j, "finished_at")),
				      "finished job %lld has no finished_at", (long long)id);
		}
		if (st == ST_PENDING) {
			ck_assert_msg(json_array_size(pl) == 0, "pending job %lld has a placement",
				      (long long)id);
			continue;
		}
		if (st == ST_PLACED || st == ST_RUNNING) {
			ck_assert_msg((json_int_t)json_array_size(pl) >= min &&
				      (json_int_t)json_array_size(pl) <= count,
				      "%s job %lld has %zu of %lld workers placed", state_names[st],
				      (long long)id, json_array_size(pl), (long long)count);
			ck_assert_msg(json_integer_value(json_object_get(ev_count,
				fmt("%lld/job.placed", (long long)id))) >= 1,
				"%s job %lld has no job.placed event", state_names[st], (long long)id);
		}
		size_t w;
		json_t *wk;
		json_array_foreach(pl, w, wk) {
			json_t *devs = json_object_get(wk, "devices");
			ck_assert_msg(json_array_size(devs) > 0, "job %lld worker %zu holds no device",
				      (long long)id, w);
			if (per)
				ck_assert_int_eq((json_int_t)json_array_size(devs), per);
			if (st != ST_PLACED && st != ST_RUNNING)
				continue;
			size_t k;
			json_t *dx;
			json_array_foreach(devs, k, dx) {
				const char *key = fmt("%s/%lld", GETS(wk, "node"),
						      (long long)json_integer_value(dx));
				json_t *other = json_object_get(alloc, key);
				ck_assert_msg(!other, "device %s is held by job %lld and job %lld", key,
					      (long long)id, (long long)GETI(other ? other : wk, "job"));
				json_object_set_new(alloc, key, json_pack("{s:I, s:I, s:s}", "job",
					id, "cap_w", GETI(wk, "cap_w"), "model", GETS(wk, "model")));
			}
		}
	}

	/* devices agree with the placements */
	json_t *node_alloc = json_object();    /* node → allocated devices */
	json_t *node_reserved = json_object(); /* node → watts of its devices */
	size_t matched = 0;
	json_array_foreach(v->devices, i, e) {
		const char *node = GETS(e, "node");
		const char *key = fmt("%s/%lld", node, (long long)GETI(e, "index"));
		json_t *a = json_object_get(alloc, key);
		json_t *job = json_object_get(e, "job");
		json_int_t watts;
		if (a) {
			ck_assert_msg(json_is_integer(job) && json_integer_value(job) == GETI(a, "job"),
				      "device %s: placement says job %lld, the device says %s", key,
				      (long long)GETI(a, "job"), json_is_integer(job) ? "another" : "free");
			ck_assert_msg(json_is_integer(json_object_get(e, "cap_w")) &&
				      GETI(e, "cap_w") == GETI(a, "cap_w"),
				      "device %s: cap differs from its placement's %lld W", key,
				      (long long)GETI(a, "cap_w"));
			ck_assert_str_eq(GETS(e, "model"), GETS(a, "model"));
			watts = GETI(a, "cap_w");
			matched++;
			json_object_set_new(node_alloc, node, json_integer(
				json_integer_value(json_object_get(node_alloc, node)) + 1));
		} else {
			ck_assert_msg(json_is_null(job), "device %s is allocated to job %lld, which "
				      "no active placement names", key, (long long)json_integer_value(job));
			json_t *m = json_object_get(v->models, GETS(e, "model"));
			ck_assert_ptr_nonnull(m);
			watts = GETI(m, "idle_w");
		}
		json_object_set_new(node_reserved, node, json_integer(
			json_integer_value(json_object_get(node_reserved, node)) + watts));
	}
	ck_assert_msg(matched == json_object_size(alloc), "placements name %zu devices, %zu "
		      "devices exist and are allocated to them", json_object_size(alloc), matched);

	/* domains: the ledger recomputed up the tree */
	json_t *parent = json_object(), *reserved = json_object();
	json_array_foreach(v->domains, i, e) {
		json_t *p = json_object_get(e, "parent");
		json_object_set(parent, GETS(e, "name"), p);
	}
	json_array_foreach(v->nodes, i, e) {
		const char *name = GETS(e, "name");
		json_int_t held = json_integer_value(json_object_get(node_alloc, name));
		ck_assert_msg(GETI(e, "devices_free") == GETI(e, "devices_total") - held,
			      "node %s: %lld free of %lld, but placements hold %lld", name,
			      (long long)GETI(e, "devices_free"), (long long)GETI(e, "devices_total"),
			      (long long)held);
		json_int_t w = GETI(e, "host_idle_w") +
			       json_integer_value(json_object_get(node_reserved, name));
		for (json_t *dn = json_object_get(e, "domain"); json_is_string(dn);
		     dn = json_object_get(parent, json_string_value(dn))) {
			const char *dname = json_string_value(dn);
			json_object_set_new(reserved, dname, json_integer(
				json_integer_value(json_object_get(reserved, dname)) + w));
		}
	}
	json_array_foreach(v->domains, i, e) {
		const char *name = GETS(e, "name");
		json_int_t want = json_integer_value(json_object_get(reserved, name));
		ck_assert_msg(GETI(e, "reserved_w") == want, "domain %s reports %lld W reserved; "
			      "its nodes and placements add up to %lld W", name,
			      (long long)GETI(e, "reserved_w"), (long long)want);
		ck_assert_int_le(GETI(e, "reserved_w"), GETI(e, "budget_w"));
		ck_assert_int_eq(GETI(e, "headroom_w"), GETI(e, "budget_w") - GETI(e, "reserved_w"));
	}
	json_decref(parent);
	json_decref(reserved);
	json_decref(node_alloc);
	json_decref(node_reserved);
	json_decref(ev_count);
	json_decref(alloc);
}

/* ---- the crash load: client processes and what they were told --------------------- */

enum rec_op {
	REC_SENT,          /* about to send submit (round, child, k) */
	REC_SUBMITTED,     /* 201 (or 200 replay): id, state */
	REC_SEEN,          /* GET /v1/jobs/{id} answered: id, state */
	REC_CANCELLED,     /* DELETE answered 200 */
	REC_RUNNING,       /* status running answered 200 */
	REC_SUCCEEDED,     /* status succeeded answered 200 */
	REC_FAILED,        /* status failed answered 200 */
	REC_ODD,           /* an answer nobody expected: status, id, k = the op tried */
};

/* One record on the pipe: small enough that each write is atomic. */
struct rec {
	uint8_t op, state;
	uint16_t round, child, pad;
	uint32_t k;
	int32_t status;
	int64_t id;
};

static uint64_t crash_seed;

static void job_name(char *buf, size_t n, unsigned round, unsigned child, unsigned k)
{
	snprintf(buf, n, "crash-r%u-c%u-k%u", round, child, k);
}

/* Every second submit carries an Idempotency-Key (its name), so the parent can retry the
 * ones in flight at the kill and expect exactly one job. */
static bool keyed(unsigned k) { return k % 2 == 0; }

/* The body of submit (round, child, k): a pure function of the seed, so the parent can
 * send it again. Fleet: 2 nodes x 8 H100, 1 node x 8 Ascend910B3; nothing preemptible. */
static void job_body(char *buf, size_t n, unsigned round, unsigned child, unsigned k)
{
	uint64_t s = crash_seed ^ ((uint64_t)round << 40) ^ ((uint64_t)child << 32) ^ k;
	uint64_t r = splitmix(&s);
	char name[64];
	job_name(name, sizeof(name), round, child, k);
	static const int devs[] = {1, 2, 4, 8};
	int prio = (int)(r >> 8) % 3 * 10;
	int dur = 600 + (int)((r >> 16) % 3000);
	unsigned kind = (unsigned)(r % 20);
	if (kind < 10) {
		int workers = (r >> 24) % 5 == 0 ? 2 : 1;
		int d = devs[(r >> 28) % 4];
		char power[48] = "";
		if ((r >> 32) % 3 == 0)
			snprintf(power, sizeof(power), ",\"power\":{\"cap_w\":%d}",
				 300 + (int)((r >> 36) % 9) * 50);
		snprintf(buf, n, "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":%d,\"devices\":%d,"
			 "\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}%s,\"priority\":%d,"
			 "\"duration_s\":%d}", name, workers, d, power, prio, dur);
	} else if (kind < 14) {
		snprintf(buf, n, "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":1,\"devices\":%d,"
			 "\"priority\":%d}", name, devs[(r >> 24) % 3], prio);
	} else if (kind < 18) {
		int replicas = 1 + (int)((r >> 24) % 3);
		snprintf(buf, n, "{\"name\":\"%s\",\"kind\":\"inference\",\"replicas\":%d,"
			 "\"min_replicas\":1,\"devices\":%d%s,\"duration_s\":%d}", name, replicas,
			 1 + (int)((r >> 28) % 2),
			 (r >> 30) % 2 ? ",\"accelerator\":{\"models\":[\"Ascend910B3\"]}" : "", dur);
	} else {
		snprintf(buf, n, "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":1,"
			 "\"per_worker\":{\"memory_gib\":%d},\"priority\":%d}", name,
			 60 + (int)((r >> 24) % 5) * 40, prio);
	}
}

static void put(int fd, struct rec r)
{
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(3);
}

/* One client: its own connection, no assertions; ends (_exit) at the first request that
 * gets no HTTP answer (the daemon is gone) or at the deadline. */
static void client_main(const struct td_daemon *d0, int fd, unsigned round, unsigned child,
			const int64_t *mine, size_t nmine, int64_t deadline)
{
	struct td_daemon d = *d0;
	d.curl = NULL;
	struct { int64_t id; int state; } live[LIVE_MAX];
	size_t n = 0;
	for (size_t i = 0; i < nmine && n < LIVE_MAX; i++) {
		live[n].id = mine[i];
		live[n++].state = -1;   /* unknown until read */
	}
	uint64_t s = crash_seed ^ ((uint64_t)round << 48) ^ ((uint64_t)child << 16) ^ 0x5eed;
	unsigned k = 0;
	char body[1024], path[64], hdr[128];
	struct td_response r;

	while (td_now_ms() < deadline) {
		uint64_t x = splitmix(&s);
		if (n == 0 || (n < LIVE_MAX && (int)(x % 100) < (n < 4 ? 60 : 20))) {
			job_body(body, sizeof(body), round, child, k);
			char name[64];
			job_name(name, sizeof(name), round, child, k);
			snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", name);
			const char *hdrs[] = {hdr, NULL};
			put(fd, (struct rec){.op = REC_SENT, .round = (uint16_t)round,
					     .child = (uint16_t)child, .k = k});
			if (td_http(&d, "POST", "/v1/jobs", body, keyed(k) ? hdrs : NULL, &r) < 0)
				_exit(0);
			int st = state_index(json_string_value(json_object_get(r.json, "state")));
			if ((r.status == 201 || r.status == 200) && st >= 0) {
				int64_t id = json_integer_value(json_object_get(r.json, "id"));
				put(fd, (struct rec){.op = REC_SUBMITTED, .state = (uint8_t)st,
						     .round = (uint16_t)round, .child = (uint16_t)child,
						     .k = k, .id = id});
				if (rank_of(st) < 3) {
					live[n].id = id;
					live[n++].state = st;
				}
			} else {
				put(fd, (struct rec){.op = REC_ODD, .k = REC_SUBMITTED,
						     .status = (int32_t)r.status});
			}
			td_response_free(&r);
			k++;
			continue;
		}
		/* half the time look for a placed or running job first: they are the few that
		 * status reports apply to, while pending ones pile up behind a full fleet */
		size_t i = (size_t)(x >> 8) % n;
		for (size_t t = 0; (x >> 40) % 2 && t < n; t++) {
			size_t c = (i + t) % n;
			if (live[c].state == ST_PLACED || live[c].state == ST_RUNNING) {
				i = c;
				break;
			}
		}
		snprintf(path, sizeof(path), "/v1/jobs/%" PRId64, live[i].id);
		if (td_http(&d, "GET", path, NULL, NULL, &r) < 0)
			_exit(0);
		int st = state_index(json_string_value(json_object_get(r.json, "state")));
		if (r.status != 200 || st < 0) {
			put(fd, (struct rec){.op = REC_ODD, .k = REC_SEEN, .status = (int32_t)r.status,
					     .id = live[i].id});
			td_response_free(&r);
			continue;
		}
		td_response_free(&r);
		put(fd, (struct rec){.op = REC_SEEN, .state = (uint8_t)st, .id = live[i].id});
		live[i].state = st;
		int roll = (int)((x >> 20) % 100);
		enum rec_op op = REC_SENT;      /* nothing */
		if (st == ST_PENDING && roll < 50)
			op = REC_CANCELLED;
		else if (st == ST_PLACED)
			op = roll < 35 ? REC_RUNNING : roll < 60 ? REC_SUCCEEDED : roll < 70 ? REC_FAILED
			   : roll < 85 ? REC_CANCELLED : REC_SENT;
		else if (st == ST_RUNNING)
			op = roll < 40 ? REC_SUCCEEDED : roll < 60 ? REC_FAILED
			   : roll < 80 ? REC_CANCELLED : REC_SENT;
		if (op != REC_SENT) {
			int rc;
			if (op == REC_CANCELLED) {
				rc = td_http(&d, "DELETE", path, NULL, NULL, &r);
			} else {
				char spath[80];
				snprintf(spath, sizeof(spath), "%s/status", path);
				snprintf(body, sizeof(body), "{\"state\":\"%s\",\"message\":\"crash load\"}",
					 op == REC_RUNNING ? "running" : op == REC_SUCCEEDED ? "succeeded"
					 : "failed");
				rc = td_http(&d, "POST", spath, body, NULL, &r);
			}
			if (rc < 0)
				_exit(0);
			if (r.status == 200) {
				put(fd, (struct rec){.op = (uint8_t)op, .id = live[i].id});
				st = op == REC_CANCELLED ? ST_CANCELLED : op == REC_RUNNING ? ST_RUNNING
				   : op == REC_SUCCEEDED ? ST_SUCCEEDED : ST_FAILED;
				live[i].state = st;
			} else {
				put(fd, (struct rec){.op = REC_ODD, .k = op, .status = (int32_t)r.status,
						     .id = live[i].id});
			}
			td_response_free(&r);
		}
		if (rank_of(live[i].state) == 3)
			live[i] = live[--n];
	}
	_exit(0);
}

/* What the clients were told, over every round so far. */
struct expect_job {
	bool known;          /* some client heard of this job */
	char name[64];       /* "" = no acknowledged submit */
	int min_rank;        /* the least progress a client saw */
	int final;           /* the end a client was told (ST_*), -1 = none */
};

struct expect {
	struct expect_job *by_id;   /* by_id[id] */
	size_t cap;
	json_t *sent;               /* name → {"acked": id or 0} */
	unsigned acks[8];           /* by op */
	unsigned odd;
};

static struct expect_job *expect_job(struct expect *x, int64_t id)
{
	ck_assert_int_gt(id, 0);
	if ((size_t)id >= x->cap) {
		size_t ncap = ((size_t)id + 1) * 2;
		struct expect_job *p = realloc(x->by_id, ncap * sizeof(*p));
		ck_assert_ptr_nonnull(p);
		for (size_t i = x->cap; i < ncap; i++)
			p[i] = (struct expect_job){.final = -1};
		x->by_id = p;
		x->cap = ncap;
	}
	return &x->by_id[id];
}

static void expect_final(struct expect_job *e, int64_t id, int st)
{
	ck_assert_msg(e->final < 0 || e->final == st, "job %lld: clients were told both %s and %s",
		      (long long)id, state_names[e->final], state_names[st]);
	e->final = st;
	e->min_rank = 3;
}

static void expect_take(struct expect *x, const struct rec *r)
{
	char name[64];
	if (r->op < 8)
		x->acks[r->op]++;
	if (r->id > 0 && r->op != REC_ODD)
		expect_job(x, r->id)->known = true;
	switch (r->op) {
	case REC_SENT:
		job_name(name, sizeof(name), r->round, r->child, r->k);
		json_object_set_new(x->sent, name, json_pack("{s:I}", "acked", (json_int_t)0));
		break;
	case REC_SUBMITTED: {
		job_name(name, sizeof(name), r->round, r->child, r->k);
		struct expect_job *e = expect_job(x, r->id);
		ck_assert_msg(!e->name[0] || strcmp(e->name, name) == 0,
			      "job %lld acknowledged as both %s and %s", (long long)r->id, e->name, name);
		snprintf(e->name, sizeof(e->name), "%s", name);
		if (rank_of(r->state) > e->min_rank)
			e->min_rank = rank_of(r->state);
		json_object_set_new(x->sent, name, json_pack("{s:I}", "acked", (json_int_t)r->id));
		break;
	}
	case REC_SEEN: {
		struct expect_job *e = expect_job(x, r->id);
		if (r->state >= ST_SUCCEEDED)
			expect_final(e, r->id, r->state);
		else if (rank_of(r->state) > e->min_rank)
			e->min_rank = rank_of(r->state);
		break;
	}
	case REC_RUNNING: {
		struct expect_job *e = expect_job(x, r->id);
		if (e->min_rank < 2)
			e->min_rank = 2;
		break;
	}
	case REC_CANCELLED:
	case REC_SUCCEEDED:
	case REC_FAILED:
		expect_final(expect_job(x, r->id), r->id, r->op == REC_CANCELLED ? ST_CANCELLED
					: r->op == REC_SUCCEEDED ? ST_SUCCEEDED : ST_FAILED);
		break;
	default:
		x->odd++;
		fprintf(stderr, "test_crash: unexpected answer %d to op %u on job %lld\n",
			(int)r->status, r->k, (long long)r->id);
		break;
	}
}

/* Every acknowledgement holds in v; every job in v was sent by a client, once. */
static void assert_acknowledged(const struct expect *x, const struct view *v)
{
	for (size_t id = 1; id < x->cap; id++) {
		const struct expect_job *e = &x->by_id[id];
		if (!e->known)
			continue;
		json_t *j = view_job(v, (json_int_t)id);
		ck_assert_msg(j != NULL, "acknowledged job %zu (%s) is lost", id, e->name);
		if (e->name[0])
			ck_assert_msg(strcmp(GETS(j, "name"), e->name) == 0, "job %zu is %s, but "
				      "its 201 was for %s", id, GETS(j, "name"), e->name);
		int st = state_index(GETS(j, "state"));
		ck_assert_msg(rank_of(st) >= e->min_rank, "job %zu is %s, older than a client was "
			      "told (rank %d)", id, state_names[st], e->min_rank);
		if (e->final >= 0)
			ck_assert_msg(st == e->final, "job %zu is %s, but a client was told %s", id,
				      state_names[st], state_names[e->final]);
	}
	json_t *names = json_object();
	const char *key;
	json_t *j;
	json_object_foreach(v->jobs, key, j) {
		const char *name = GETS(j, "name");
		ck_assert_msg(json_object_get(x->sent, name) != NULL, "job %s (%s) was never sent",
			      key, name);
		ck_assert_msg(json_object_get(names, name) == NULL, "two jobs are named %s", name);
		json_object_set_new(names, name, json_true());
	}
	json_decref(names);
}

/* After a restart: send again every keyed submit that was in flight at the kill. Its job
 * committed (200, the original) or did not (201, new) — either way exactly one exists. */
static unsigned retry_in_flight(struct td_daemon *d, struct expect *x, const struct view *v,
				unsigned round, unsigned *committed)
{
	json_t *by_name = json_object();
	const char *key;
	json_t *j;
	unsigned retried = 0;
	json_object_foreach(v->jobs, key, j)
		json_object_set(by_name, GETS(j, "name"), j);
	json_object_foreach(x->sent, key, j) {
		unsigned r, c, k;
		if (json_integer_value(json_object_get(j, "acked")) != 0 ||
		    sscanf(key, "crash-r%u-c%u-k%u", &r, &c, &k) != 3 || r != round || !keyed(k))
			continue;
		char body[1024], hdr[128];
		job_body(body, sizeof(body), r, c, k);
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
		const char *hdrs[] = {hdr, NULL};
		struct td_response resp;
		ck_assert_int_eq(td_http(d, "POST", "/v1/jobs", body, hdrs, &resp), 0);
		json_t *before = json_object_get(by_name, key);
		if (before) {
			ck_assert_msg(resp.status == 200, "retry of %s, which committed as job %lld: "
				      "want 200, got %ld", key, (long long)GETI(before, "id"), resp.status);
			ck_assert_int_eq(GETI(resp.json, "id"), GETI(before, "id"));
			(*committed)++;
		} else {
			ck_assert_msg(resp.status == 201, "retry of %s, which did not commit: want "
				      "201, got %ld: %.300s", key, resp.status, resp.raw);
		}
		struct rec rr = {.op = REC_SUBMITTED, .round = (uint16_t)r, .child = (uint16_t)c,
				 .k = k, .id = GETI(resp.json, "id"),
				 .state = (uint8_t)state_index(GETS(resp.json, "state"))};
		td_response_free(&resp);
		expect_take(x, &rr);
		retried++;
	}
	json_decref(by_name);
	return retried;
}

/* One round: clients load the daemon, it is killed at a random moment, clients stop. */
static void crash_round(struct td_daemon *d, struct expect *x, const struct view *prev,
			unsigned round, uint64_t *rng)
{
	/* unfinished jobs are dealt to the clients by id */
	int64_t *mine[CLIENTS];
	size_t nmine[CLIENTS] = {0};
	for (int c = 0; c < CLIENTS; c++) {
		mine[c] = calloc(json_object_size(prev->jobs) + 1, sizeof(int64_t));
		ck_assert_ptr_nonnull(mine[c]);
	}
	const char *key;
	json_t *j;
	json_object_foreach(prev->jobs, key, j) {
		if (rank_of(state_index(GETS(j, "state"))) == 3)
			continue;
		json_int_t id = GETI(j, "id");
		mine[id % CLIENTS][nmine[id % CLIENTS]++] = id;
	}
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	int64_t t0 = td_now_ms(), kill_at = t0 + 60 + (int64_t)(splitmix(rng) % 840);
	pid_t kids[CLIENTS];
	for (unsigned c = 0; c < CLIENTS; c++) {
		fflush(NULL);
		kids[c] = fork();
		ck_assert_int_ge(kids[c], 0);
		if (kids[c] == 0) {
			close(pfd[0]);
			/* td_http reports failed transfers on stderr: keep it out of the test log */
			int lf = open(fmt("%s/client-%u.log", d->dir, c), O_WRONLY | O_CREAT | O_APPEND,
				      0644);
			if (lf >= 0)
				dup2(lf, 2);
			client_main(d, pfd[1], round, c, mine[c], nmine[c], t0 + 20000);
		}
	}
	close(pfd[1]);
	for (int c = 0; c < CLIENTS; c++)
		free(mine[c]);

	unsigned char buf[sizeof(struct rec) * 256];
	size_t have = 0;
	bool killed = false, eof = false;
	int64_t give_up = kill_at + 15000;
	while (!eof) {
		int64_t now = td_now_ms();
		ck_assert_msg(now < give_up, "clients did not stop after the daemon was killed");
		if (!killed && now >= kill_at) {
			ck_assert_int_eq(td_kill9(d), 0);
			killed = true;
		}
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int wait = killed ? 100 : (int)(kill_at - now);
		if (poll(&p, 1, wait > 0 ? wait : 0) <= 0)
			continue;
		ssize_t got = read(pfd[0], buf + have, sizeof(buf) - have);
		if (got < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(got, 0);
		if (got == 0) {
			eof = true;
			if (!killed) {  /* every client ended by itself: kill now anyway */
				ck_assert_int_eq(td_kill9(d), 0);
				killed = true;
			}
		}
		have += (size_t)got;
		size_t whole = have / sizeof(struct rec) * sizeof(struct rec);
		for (size_t off = 0; off < whole; off += sizeof(struct rec)) {
			struct rec r;
			memcpy(&r, buf + off, sizeof(r));
			expect_take(x, &r);
		}
		memmove(buf, buf + whole, have - whole);
		have -= whole;
	}
	close(pfd[0]);
	for (unsigned c = 0; c < CLIENTS; c++) {
		int st = 0;
		if (td_wait_pid(kids[c], 5000, &st) == -ETIMEDOUT) {
			kill(kids[c], SIGKILL);
			waitpid(kids[c], &st, 0);
		}
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %u ended with status "
			      "0x%x", c, st);
	}
	ck_assert_msg(x->odd == 0, "%u answers nobody expected (see above)", x->odd);
	fprintf(stderr, "test_crash: round %u: killed after %lld ms\n", round,
		(long long)(kill_at - t0));
}

START_TEST(acknowledged_work_survives_kill_9_at_random_moments_and_the_ledger_adds_up)
{
	struct td_daemon d;
	const char *seed_env = getenv("JOULE_CRASH_SEED");
	crash_seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 0)
					   : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	fprintf(stderr, "test_crash: JOULE_CRASH_SEED=%" PRIu64 "\n", crash_seed);
	uint64_t rng = crash_seed;

	ck_assert_int_eq(td_start(&d), 0);
	import_fleet(&d);
	struct expect x = {.sent = json_object()};
	struct view v;
	view_fetch(&d, &v);
	int64_t t0 = td_now_ms();
	unsigned rounds = 0, retried = 0, committed = 0;
	for (unsigned round = 1; round <= ROUNDS; round++) {
		if (round > ROUNDS_MIN && td_now_ms() - t0 > BUDGET_MS)
			break;
		crash_round(&d, &x, &v, round, &rng);
		view_free(&v);
		ck_assert_int_eq(td_restart(&d), 0);
		view_fetch(&d, &v);
		assert_acknowledged(&x, &v);
		assert_consistent(&v);
		assert_db_intact(d.db, v.njobs);   /* beside the live daemon: a WAL reader */
		unsigned n = retry_in_flight(&d, &x, &v, round, &committed);
		retried += n;
		if (n) {
			view_free(&v);
			view_fetch(&d, &v);
			assert_acknowledged(&x, &v);
			assert_consistent(&v);
		}
		rounds++;
	}
	fprintf(stderr, "test_crash: %u rounds in %lld ms; acknowledged %u submits (%u sent), %u "
		"cancels, %u running, %u succeeded, %u failed, %u reads; %u keyed submits in flight at "
		"a kill retried (%u had committed unanswered); %zu jobs at the end\n", rounds,
		(long long)(td_now_ms() - t0), x.acks[REC_SUBMITTED], x.acks[REC_SENT],
		x.acks[REC_CANCELLED], x.acks[REC_RUNNING], x.acks[REC_SUCCEEDED], x.acks[REC_FAILED],
		x.acks[REC_SEEN], retried, committed, json_object_size(v.jobs));
	ck_assert_int_ge(rounds, ROUNDS_MIN);
	/* the load did what it says: every kind of change was acknowledged at least once */
	for (int op = REC_SUBMITTED; op <= REC_FAILED; op++)
		ck_assert_msg(x.acks[op] > 0, "the load never got an acknowledged op %d", op);

	/* A clean stop keeps exactly the same picture; the file is sound. */
	int st;
	ck_assert_int_eq(td_stop(&d, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: status 0x%x", st);
	assert_db_intact(d.db, v.njobs);
	ck_assert_int_eq(td_restart(&d), 0);
	struct view after;
	view_fetch(&d, &after);
	assert_acknowledged(&x, &after);
	assert_consistent(&after);
	const char *key;
	json_t *j;
	json_object_foreach(v.jobs, key, j) {
		json_t *k = json_object_get(after.jobs, key);
		ck_assert_ptr_nonnull(k);
		ck_assert_str_eq(GETS(k, "state"), GETS(j, "state"));
		ck_assert_msg(json_equal(json_object_get(k, "placement"), json_object_get(j, "placement")),
			      "job %s: placement moved across a clean restart", key);
	}
	view_free(&after);
	view_free(&v);
	json_decref(x.sent);
	free(x.by_id);
	td_cleanup(&d);
}
END_TEST

/* ---- disks: a full one and a read-only one ------------------------------------------ */

/* A tmpfs at dir, in a mount namespace private to this test's process (and the daemons it
 * starts). -errno when this process may not mount (not root, no CAP_SYS_ADMIN). */
static int mount_tmpfs(const char *dir, const char *opts)
{
	static bool private_ns;
	if (!private_ns) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			return -errno;
		private_ns = true;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return mount("tmpfs", dir, "tmpfs", 0, opts) < 0 ? -errno : 0;
}

static void skip(const char *test, int err)
{
	fprintf(stderr, "SKIP %s: cannot mount a tmpfs (%s); this test needs root with "
		"CAP_SYS_ADMIN\n", test, strerror(-err));
}

/* Fill the file system holding dir/filler until ENOSPC, then give back `leave` bytes. */
static void fill_disk(const char *filler, off_t leave)
{
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	static char block[65536];
	off_t size = 0;
	for (size_t chunk = sizeof(block); chunk >= 512; chunk /= 2)
		for (;;) {
			ssize_t w = write(fd, block, chunk);
			if (w <= 0) {
				ck_assert_msg(w < 0 && errno == ENOSPC, "filling: %s", strerror(errno));
				break;
			}
			size += w;
		}
	if (leave)
		ck_assert_int_eq(ftruncate(fd, size > leave ? size - leave : 0), 0);
	close(fd);
}

static json_int_t submit_one(struct td_daemon *d, const char *name)
{
	json_t *j = REQ(d, "POST", "/v1/jobs", fmt("{\"name\":\"%s\",\"kind\":\"training\","
			"\"workers\":1,\"devices\":1,\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}}",
			name), 201);
	json_int_t id = GETI(j, "id");
	json_decref(j);
	return id;
}

/* Every acknowledged job (id → expected state, in acked) is there in that state. */
static void assert_jobs_are(struct td_daemon *d, json_t *acked)
{
	struct view v;
	view_fetch(d, &v);
	const char *key;
	json_t *st;
	json_object_foreach(acked, key, st) {
		json_t *j = json_object_get(v.jobs, key);
		ck_assert_msg(j != NULL, "acknowledged job %s is lost", key);
		ck_assert_msg(strcmp(GETS(j, "state"), json_string_value(st)) == 0,
			      "job %s is %s, acknowledged %s", key, GETS(j, "state"),
			      json_string_value(st));
	}
	assert_consistent(&v);
	view_free(&v);
}

START_TEST(a_full_disk_refuses_writes_with_503_keeps_reads_and_loses_nothing_acknowledged)
{
	struct td_daemon d;
	char disk[PATH_MAX], filler[PATH_MAX];
	ck_assert_int_eq(td_make_dir(&d), 0);
	ck_assert_int_lt(snprintf(disk, sizeof(disk), "%s/disk", d.dir), (int)sizeof(disk));
	ck_assert_int_lt(snprintf(filler, sizeof(filler), "%s/filler", disk), (int)sizeof(filler));
	int rc = mount_tmpfs(disk, "size=4m,mode=0700");
	if (rc < 0) {
		skip("a_full_disk_refuses_writes", rc);
		td_cleanup(&d);
		return;
	}
	ck_assert_int_lt(snprintf(d.db, sizeof(d.db), "%s/joule.db", disk), (int)sizeof(d.db));
	ck_assert_int_eq(td_spawn(&d, NULL, NULL, &d.pid), 0);
	ck_assert_int_eq(td_wait_ready(&d, TD_READY_TIMEOUT_MS), 0);
	import_fleet(&d);

	json_t *acked = json_object();          /* id → state */
	json_int_t first = 0;
	for (int i = 0; i < 6; i++) {
		json_int_t id = submit_one(&d, fmt("before-%d", i));
		first = first ? first : id;
		json_object_set_new(acked, fmt("%lld", (long long)id), json_string("placed"));
	}
	json_decref(REQ(&d, "POST", fmt("/v1/jobs/%lld/status", (long long)first),
			"{\"state\":\"running\"}", 200));
	json_object_set_new(acked, fmt("%lld", (long long)first), json_string("running"));

	/* Fill the disk but for a little room: a few more submits commit, then one cannot. */
	fill_disk(filler, 96 * 1024);
	struct td_response r;
	int refused_at = -1;
	for (int i = 0; i < 400 && refused_at < 0; i++) {
		ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs", fmt("{\"name\":\"fill-%d\","
				 "\"kind\":\"training\",\"workers\":1,\"devices\":1,\"accelerator\":"
				 "{\"models\":[\"Ascend910B3\"]}}", i), NULL, &r), 0);
		if (r.status == 201) {
			json_object_set_new(acked, fmt("%lld", (long long)GETI(r.json, "id")),
					    json_string(GETS(r.json, "state")));
		} else {
			ASSERT_503(&r, "submit on a full disk");
			refused_at = i;
		}
		td_response_free(&r);
	}
	ck_assert_msg(refused_at >= 0, "400 submits committed on a full 4 MiB disk");
	fprintf(stderr, "test_crash: full disk: %d submits committed after filling, then 503\n",
		refused_at);

	/* Writes of every kind are refused and change nothing; reads go on. */
	ck_assert_int_eq(td_http(&d, "DELETE", fmt("/v1/jobs/%lld", (long long)first), NULL, NULL,
				 &r), 0);
	ASSERT_503(&r, "cancel on a full disk");
	td_response_free(&r);
	ck_assert_int_eq(td_http(&d, "POST", fmt("/v1/jobs/%lld/status", (long long)first),
				 "{\"state\":\"succeeded\"}", NULL, &r), 0);
	ASSERT_503(&r, "status report on a full disk");
	td_response_free(&r);
	assert_jobs_are(&d, acked);
	json_t *list = GET(&d, "/v1/jobs?limit=1000");
	size_t i;
	json_t *j;
	json_array_foreach(json_object_get(list, "jobs"), i, j)
		ck_assert_msg(strcmp(GETS(j, "name"), fmt("fill-%d", refused_at)) != 0,
			      "the refused submit is visible as job %lld", (long long)GETI(j, "id"));
	json_decref(list);
	td_sleep_ms(1200);   /* a tick or two on the full disk */
	ck_assert_int_eq(waitpid(d.pid, NULL, WNOHANG), 0);
	json_decref(GET(&d, "/v1/health"));

	/* kill -9 and restart while the disk is still full: it comes back and serves reads */
	ck_assert_int_eq(td_kill9(&d), 0);
	ck_assert_int_eq(td_restart(&d), 0);
	assert_jobs_are(&d, acked);
	ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs", "{\"name\":\"still-full\",\"kind\":"
				 "\"training\",\"workers\":1,\"devices\":1}", NULL, &r), 0);
	ASSERT_503(&r, "submit on a full disk after a restart");
	td_response_free(&r);

	/* Room again: writes succeed at once. */
	ck_assert_int_eq(unlink(filler), 0);
	json_int_t id = submit_one(&d, "after-room");
	json_object_set_new(acked, fmt("%lld", (long long)id), json_string("placed"));
	json_decref(REQ(&d, "DELETE", fmt("/v1/jobs/%lld", (long long)id), NULL, 200));
	json_object_set_new(acked, fmt("%lld", (long long)id), json_string("cancelled"));
	json_decref(REQ(&d, "POST", fmt("/v1/jobs/%lld/status", (long long)first),
			"{\"state\":\"succeeded\"}", 200));
	json_object_set_new(acked, fmt("%lld", (long long)first), json_string("succeeded"));

	/* A clean stop, a sound file, and the same jobs after a restart. */
	int st;
	ck_assert_int_eq(td_stop(&d, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM: status 0x%x", st);
	assert_db_intact(d.db, -1);
	ck_assert_int_eq(td_restart(&d), 0);
	assert_jobs_are(&d, acked);
	ck_assert_int_eq(td_stop(&d, &st), 0);
	json_decref(acked);
	umount2(disk, MNT_DETACH);
	td_cleanup(&d);
}
END_TEST

/* CPU time (utime + stime, in clock ticks) of a process. */
static long cpu_ticks(pid_t pid)
{
	char *text = NULL;
	long ut = -1, stime = -1;
	if (td_read_file(fmt("/proc/%d/stat", (int)pid), &text, NULL) < 0)
		return -1;
	const char *p = strrchr(text, ')');   /* the command name may hold spaces */
	if (p)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &stime);
	free(text);
	return ut < 0 ? -1 : ut + stime;
}

static const char *const ro_cases[] = {
	"a database path on a read-only file system (no database yet)",
	"a cleanly closed database on a read-only file system",
	"a database left by kill -9 (with its -wal and -shm) on a read-only file system",
};

/*
 * A database jouled cannot write. Acceptable: refuse to start, exit non-zero, with a
 * message that names the file; or start, serve reads of everything stored, and answer
 * every write 503 (JSON, naming the database) without spinning. Either way nothing stored
 * is lost: with the file system writable again, a restart shows every acknowledged job.
 */
START_TEST(a_database_it_cannot_write_is_refused_at_start_naming_the_file_or_writes_get_503)
{
	const char *what = ro_cases[_i];
	struct td_daemon d;
	char disk[PATH_MAX];
	ck_assert_int_eq(td_make_dir(&d), 0);
	ck_assert_int_lt(snprintf(disk, sizeof(disk), "%s/ro", d.dir), (int)sizeof(disk));
	int rc = mount_tmpfs(disk, "size=8m,mode=0700");
	if (rc < 0) {
		skip("a_database_it_cannot_write", rc);
		td_cleanup(&d);
		return;
	}
	ck_assert_int_lt(snprintf(d.db, sizeof(d.db), "%s/joule.db", disk), (int)sizeof(d.db));
	json_t *acked = json_object();
	if (_i > 0) {
		ck_assert_int_eq(td_spawn(&d, NULL, NULL, &d.pid), 0);
		ck_assert_int_eq(td_wait_ready(&d, TD_READY_TIMEOUT_MS), 0);
		import_fleet(&d);
		for (int k = 0; k < 4; k++)
			json_object_set_new(acked, fmt("%lld", (long long)submit_one(&d, fmt("ro-%d", k))),
					    json_string("placed"));
		if (_i == 1) {
			int st;
			ck_assert_int_eq(td_stop(&d, &st), 0);
			ck_assert(access(fmt("%s-wal", d.db), F_OK) < 0);
		} else {
			ck_assert_int_eq(td_kill9(&d), 0);
			ck_assert_int_eq(access(fmt("%s-wal", d.db), F_OK), 0);
		}
	}
	ck_assert_int_eq(mount(NULL, disk, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);

	char *log = NULL;
	size_t log_before = 0;
	if (td_read_file(d.log, &log, &log_before) == 0)
		free(log);
	ck_assert_int_eq(td_spawn(&d, NULL, NULL, &d.pid), 0);
	int st = 0;
	bool exited = false;
	for (int64_t end = td_now_ms() + TD_READY_TIMEOUT_MS; td_now_ms() < end;) {
		if (waitpid(d.pid, &st, WNOHANG) == d.pid) {
			exited = true;
			d.pid = 0;
			break;
		}
		int fd = td_connect(d.sock);   /* quietly, before td_http would complain */
		if (fd >= 0) {
			close(fd);
			json_t *h = td_get_json(&d, "/v1/health");
			json_decref(h);
			if (h)
				break;
		}
		td_sleep_ms(50);
	}
	ck_assert_int_eq(td_read_file(d.log, &log, NULL), 0);
	const char *said = log + log_before;
	if (exited) {
		fprintf(stderr, "test_crash: %s: jouled refused to start (status 0x%x): %s", what, st,
			said);
		ck_assert_msg(!WIFSIGNALED(st), "%s: jouled died of signal %d: %s", what,
			      WTERMSIG(st), said);
		ck_assert_msg(WEXITSTATUS(st) != 0, "%s: jouled exited 0", what);
		ck_assert_msg(strstr(said, d.db) != NULL, "%s: jouled refused to start, but its "
			      "message does not name %s: %s", what, d.db, said);
	} else {
		ck_assert_msg(_i > 0, "%s: jouled started with no database at all", what);
		fprintf(stderr, "test_crash: %s: jouled started and serves reads\n", what);
		assert_jobs_are(&d, acked);
		struct td_response r;
		ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs", "{\"name\":\"ro-new\",\"kind\":"
					 "\"training\",\"workers\":1,\"devices\":1}", NULL, &r), 0);
		ASSERT_503(&r, "submit to a read-only database");
		td_response_free(&r);
		const char *any;
		json_t *v;
		json_object_foreach(acked, any, v)
			break;
		ck_assert_int_eq(td_http(&d, "DELETE", fmt("/v1/jobs/%s", any), NULL, NULL, &r), 0);
		ASSERT_503(&r, "cancel in a read-only database");
		td_response_free(&r);
		assert_jobs_are(&d, acked);
		/* not spinning on the failed writes: well under half a core over a second */
		long c0 = cpu_ticks(d.pid);
		td_sleep_ms(1000);
		long c1 = cpu_ticks(d.pid);
		ck_assert_msg(c0 >= 0 && c1 - c0 < sysconf(_SC_CLK_TCK) / 2,
			      "%s: jouled used %ld ticks of CPU in one idle second", what, c1 - c0);
		ck_assert_int_eq(td_stop(&d, &st), 0);
	}
	free(log);

	/* writable again: everything acknowledged is there */
	ck_assert_int_eq(mount(NULL, disk, NULL, MS_REMOUNT, NULL), 0);
	ck_assert_int_eq(td_spawn(&d, NULL, NULL, &d.pid), 0);
	ck_assert_int_eq(td_wait_ready(&d, TD_READY_TIMEOUT_MS), 0);
	assert_jobs_are(&d, acked);
	ck_assert_int_eq(td_stop(&d, &st), 0);
	json_decref(acked);
	umount2(disk, MNT_DETACH);
	td_cleanup(&d);
}
END_TEST

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("kill_9");
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, acknowledged_work_survives_kill_9_at_random_moments_and_the_ledger_adds_up);
	suite_add_tcase(s, tc);

	tc = tcase_create("disk");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, a_full_disk_refuses_writes_with_503_keeps_reads_and_loses_nothing_acknowledged);
	tcase_add_loop_test(tc, a_database_it_cannot_write_is_refused_at_start_naming_the_file_or_writes_get_503,
			    0, (int)(sizeof(ro_cases) / sizeof(ro_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(crash_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
