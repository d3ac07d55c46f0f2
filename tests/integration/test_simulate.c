/*
 * test_simulate — the what-if simulator against the real daemon: the engine (sim_run, in
 * this process) places a queue exactly as jouled does; POST /v1/simulate starts from the
 * live fleet and queue, reports, and changes nothing; `joulectl simulate` and `joulectl
 * trace` run as real processes on files.
 *
 * The parity test submits one job at a time and waits for each reply, so every job meets
 * exactly one queue pass of its own, as in the simulator with one instant per job. Jobs
 * last 10 to 50 days, all different by whole days: nothing ends during the test, and the
 * few seconds of wall clock between submissions cannot change a backfill decision.
 */
#include <check.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/daemon.h"
#include "codec.h"
#include "input.h"
#include "sim.h"
#include "store.h"

#define DAY 86400

static long long jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* POST a fleet document; it must answer 200. */
static void import_fleet(struct td_daemon *d, const char *doc)
{
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/fleet", doc, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "import: %ld %s", r.status, r.raw);
	td_response_free(&r);
}

/* POST /v1/jobs with job (a JSON object); it must answer 201. The new id. */
static long long submit_json(struct td_daemon *d, const json_t *job)
{
	char *body = json_dumps(job, JSON_COMPACT);
	ck_assert_ptr_nonnull(body);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/jobs", body, NULL, &r), 0);
	ck_assert_msg(r.status == 201, "submit %s: %ld %s", body, r.status, r.raw);
	long long id = jint(r.json, "id");
	td_response_free(&r);
	free(body);
	ck_assert_int_gt(id, 0);
	return id;
}

static long long submit_text(struct td_daemon *d, const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	ck_assert_msg(j != NULL, "bad job text %s", text);
	long long id = submit_json(d, j);
	json_decref(j);
	return id;
}

/* ---------------- 1. the simulator places as the daemon does ---------------- */

/*
 * Two racks under a site, every budget binding: rack-a holds four 8 x H100 nodes (idle
 * 8,240 W; 24,000 W leaves room for 25 of its 32 devices at TDP); rack-b holds H200,
 * Ascend910B3, Ascend910C and L40S nodes (idle 7,540 W; 21,000 W: not all at TDP); the
 * site's 44,000 W is less than idle plus both racks' headroom. Every 8-device node is its
 * own NVLink / HCCS group.
 */
static const char parity_fleet[] =
	"{\"domains\":["
	"{\"name\":\"site\",\"parent\":null,\"budget_w\":44000},"
	"{\"name\":\"rack-a\",\"parent\":\"site\",\"budget_w\":24000},"
	"{\"name\":\"rack-b\",\"parent\":\"site\",\"budget_w\":21000}],"
	"\"nodes\":["
	"{\"name\":\"a-n1\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a1\","
	"\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"a-n2\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a2\","
	"\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"a-n3\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a3\","
	"\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"a-n4\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a4\","
	"\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"b-n1\",\"domain\":\"rack-b\",\"host_idle_w\":1500,\"group\":\"nvl-b1\","
	"\"devices\":[{\"model\":\"H200-SXM-141GB\",\"count\":8}]},"
	"{\"name\":\"b-n2\",\"domain\":\"rack-b\",\"host_idle_w\":1200,\"group\":\"hccs-b2\","
	"\"devices\":[{\"model\":\"Ascend910B3\",\"count\":8}]},"
	"{\"name\":\"b-n3\",\"domain\":\"rack-b\",\"host_idle_w\":1200,\"group\":\"hccs-b3\","
	"\"devices\":[{\"model\":\"Ascend910C\",\"count\":8}]},"
	"{\"name\":\"b-n4\",\"domain\":\"rack-b\",\"host_idle_w\":800,"
	"\"devices\":[{\"model\":\"L40S\",\"count\":4}]}]}";

#define T_(body) "{\"kind\":\"training\"," body "}"
#define I_(body) "{\"kind\":\"inference\"," body "}"
#define H100 "\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}"
#define H200 "\"accelerator\":{\"models\":[\"H200-SXM-141GB\"]}"
#define NV "\"accelerator\":{\"vendors\":[\"nvidia\"],\"stack\":\"cuda\"}"
#define HW "\"accelerator\":{\"vendors\":[\"huawei\"],\"stack\":\"cann\"}"

/* The queue, in submission order (names are added: p00, p01, ...; durations below). */
static const char *const parity_jobs[] = {
	T_("\"workers\":2,\"devices\":8," H100 ",\"power\":{\"cap_w\":500},\"topology\":\"same_rack\","
	   "\"preemptible\":true"),
	T_("\"workers\":1,\"devices\":8,\"accelerator\":{\"vendors\":[\"huawei\"],\"stack\":\"cann\","
	   "\"models\":[\"Ascend910C\"]}"),
	I_("\"replicas\":3,\"min_replicas\":2,\"devices\":1,\"accelerator\":{\"models\":[\"L40S\"]},"
	   "\"topology\":\"spread\""),
	T_("\"workers\":1,\"devices\":4," H200 ",\"power\":{\"cap\":\"auto\",\"min_perf\":0.8}"),
	T_("\"workers\":1,\"devices\":8," H100 ",\"preemptible\":true"),
	T_("\"workers\":4,\"devices\":8," H200),                       /* never fits */
	T_("\"workers\":1,\"devices\":2," NV ",\"power\":{\"cap_w\":300}"),
	I_("\"replicas\":4,\"min_replicas\":2,\"devices\":1," HW ",\"topology\":\"spread\""),
	T_("\"workers\":1,\"devices\":1,\"accelerator\":{\"models\":[\"A100-SXM4-80GB\"]}"), /* none */
	T_("\"workers\":1,\"devices\":8," H100 ",\"priority\":100"),   /* preempts */
	T_("\"workers\":2,\"devices\":4," NV ",\"topology\":\"same_group\""),
	I_("\"replicas\":2,\"per_replica\":{\"memory_gib\":120}"),
	T_("\"workers\":1,\"per_worker\":{\"memory_gib\":200}"),
	T_("\"workers\":3,\"devices\":8,\"preemptible\":true"),
	T_("\"workers\":1,\"devices\":4,\"accelerator\":{\"models\":[\"Ascend910B3\"]},"
	   "\"power\":{\"cap_w\":250}"),
	T_("\"workers\":1,\"devices\":8," HW ",\"priority\":50,\"preemptible\":true"),
	I_("\"replicas\":2,\"devices\":2,\"accelerator\":{\"models\":[\"H100-SXM5-80GB\","
	   "\"H200-SXM-141GB\"]},\"power\":{\"cap\":\"auto\",\"min_perf\":0.9},\"topology\":\"spread\""),
	T_("\"workers\":1,\"devices\":2," H100 ",\"topology\":\"same_node\",\"priority\":-10,"
	   "\"preemptible\":true"),
	T_("\"workers\":2,\"devices\":2," NV ",\"topology\":\"same_rack\""),
	T_("\"workers\":1,\"devices\":8," H200 ",\"priority\":200"),   /* cannot preempt */
	T_("\"workers\":1,\"devices\":1"),
	T_("\"workers\":1,\"devices\":4," H100 ",\"power\":{\"cap_w\":400},\"preemptible\":true"),
	T_("\"workers\":4,\"devices\":4," NV ",\"power\":{\"cap\":\"auto\",\"min_perf\":0.5},"
	   "\"preemptible\":true"),
	I_("\"replicas\":1,\"devices\":4,\"accelerator\":{\"models\":[\"Ascend910C\"]}"),
	T_("\"workers\":1,\"devices\":8," H100 ",\"priority\":300"),   /* preempts */
	T_("\"workers\":2,\"devices\":8," H100 ",\"topology\":\"same_rack\",\"priority\":250"), /* head */
	T_("\"workers\":1,\"devices\":3,\"accelerator\":{\"models\":[\"L40S\"]}"),
	T_("\"workers\":1,\"devices\":8,\"accelerator\":{\"fp8\":true,\"min_memory_gib\":100}"),
	I_("\"replicas\":3,\"devices\":1," NV ",\"topology\":\"spread\",\"priority\":500"),
	T_("\"workers\":1,\"devices\":6,\"power\":{\"cap_w\":250}"),
	T_("\"workers\":2,\"devices\":8,\"accelerator\":{\"models\":[\"Ascend910B3\",\"Ascend910C\"]},"
	   "\"topology\":\"same_rack\""),
	T_("\"workers\":1,\"devices\":1,\"accelerator\":{\"models\":[\"Ascend910B3\"]}"),
	T_("\"workers\":1,\"devices\":4," H100 ",\"priority\":100,\"preemptible\":true"),
	T_("\"workers\":1,\"devices\":8,\"priority\":1000"),           /* preempts */
	T_("\"workers\":1,\"devices\":2," HW),
	I_("\"replicas\":8,\"min_replicas\":1,\"devices\":1,\"topology\":\"spread\""),
	T_("\"workers\":1,\"devices\":4," H200 ",\"power\":{\"cap_w\":350}"),
	T_("\"workers\":2,\"devices\":8," H100 ",\"priority\":10,\"preemptible\":true"),
	T_("\"workers\":1,\"devices\":1"),
	T_("\"workers\":1,\"devices\":4,\"accelerator\":{\"vendors\":[\"nvidia\"],\"min_memory_gib\":90}"),
};
#define NPARITY (sizeof(parity_jobs) / sizeof(parity_jobs[0]))

/* Job i as a JSON object: its text, a name, and a duration of 10-50 days (41 is prime, so
 * i * 17 mod 41 differs for every i < 41: no two jobs last within a day of each other). */
static json_t *parity_job(size_t i)
{
	json_t *j = json_loads(parity_jobs[i], 0, NULL);
	ck_assert_msg(j != NULL, "job %zu does not parse", i);
	char name[16];
	snprintf(name, sizeof(name), "p%02zu", i);
	json_object_set_new(j, "name", json_string(name));
	json_object_set_new(j, "duration_s", json_integer((json_int_t)((10 + (i * 17) % 41) * DAY + i * 37)));
	return j;
}

/* "pending", or "active" for placed and running (the simulator's launcher never fails, so
 * its placed jobs are running at once). */
static const char *state_class(const char *state)
{
	if (strcmp(state, "placed") == 0 || strcmp(state, "running") == 0)
		return "active";
	return state;
}

/* The reason's code: what comes before the first ':' (or all of it). */
static void reason_code(const char *reason, char *buf, size_t n)
{
	snprintf(buf, n, "%s", reason ? reason : "-");
	char *colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
}

START_TEST(the_simulator_places_every_job_exactly_as_the_daemon_does)
{
	/* the daemon: one job at a time, each answered before the next */
	struct td_daemon d = {0};
	ck_assert_int_eq(td_start(&d), 0);
	import_fleet(&d, parity_fleet);
	for (size_t i = 0; i < NPARITY; i++) {
		json_t *j = parity_job(i);
		ck_assert_int_eq(submit_json(&d, j), (long long)i + 1);
		json_decref(j);
	}
	json_t *live[NPARITY];
	for (size_t i = 0; i < NPARITY; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/v1/jobs/%zu", i + 1);
		live[i] = td_get_json(&d, p);
		ck_assert_ptr_nonnull(live[i]);
	}

	/* the simulator: the same fleet document on the built-in catalog, one instant a job */
	struct fleet f;
	struct jobs t;
	struct store *s = NULL;
	struct err e = {0};
	fleet_init(&f);
	jobs_init(&t);
	ck_assert_int_eq(store_open(":memory:", NULL, &s, &e), 0);
	ck_assert_int_eq(store_load(s, &f, &t, &e), 0);
	store_close(s);
	json_t *doc = json_loads(parity_fleet, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_msg(sim_input_fleet(&f, doc, &e) == 0, "fleet: %s", e.message);
	json_decref(doc);
	json_t *trace = json_array();
	for (size_t i = 0; i < NPARITY; i++) {
		json_t *j = parity_job(i);
		json_object_set_new(j, "submit_s", json_integer((json_int_t)i));
		json_array_append_new(trace, j);
	}
	struct sim_job *sj = NULL;
	uint32_t nsj = 0;
	ck_assert_msg(sim_input_jobs(trace, &f, &sj, &nsj, &e) == 0, "jobs: %s (%s)", e.message,
		      e.field);
	json_decref(trace);
	ck_assert_uint_eq(nsj, NPARITY);
	/* stop after the last arrival: the first job to end does so 10 days in */
	struct sim_options o = {.start = 1767225600, .until_s = (int64_t)NPARITY + 5};
	struct sim_result r = {0};
	ck_assert_msg(sim_run(&f, &t, sj, nsj, NULL, 0, &o, &r, &e) == 0, "run: %s", e.message);
	free(sj);
	ck_assert(r.stopped);

	/* job for job: the state class and the whole placement */
	char diff[8192];
	size_t dl = 0;
	unsigned pending = 0, active = 0, requeued = 0, held = 0, power = 0, mismatches = 0;
	diff[0] = '\0';
	for (size_t i = 0; i < NPARITY; i++) {
		const struct job *sim = jobs_get(&t, i + 1);
		ck_assert_ptr_nonnull(sim);
		json_t *enc = codec_job_encode(&f, sim);
		ck_assert_ptr_nonnull(enc);
		const char *ds = state_class(jstr(live[i], "state"));
		const char *ss = state_class(jstr(enc, "state"));
		json_t *dp = json_object_get(live[i], "placement");
		json_t *sp = json_object_get(enc, "placement");
		pending += strcmp(ds, "pending") == 0;
		active += strcmp(ds, "active") == 0;
		requeued += jint(live[i], "requeues") > 0;
		char rc1[64], rc2[64];
		reason_code(jstr(live[i], "reason"), rc1, sizeof(rc1));
		reason_code(jstr(enc, "reason"), rc2, sizeof(rc2));
		held += strcmp(rc1, "RESERVED_FOR_HEAD") == 0;
		power += strcmp(rc1, "POWER_BUDGET") == 0;
		if (strcmp(ds, ss) != 0 || !json_equal(dp, sp) || strcmp(rc1, rc2) != 0 ||
		    jint(live[i], "requeues") != jint(enc, "requeues")) {
			char *a = json_dumps(dp, JSON_COMPACT), *b = json_dumps(sp, JSON_COMPACT);
			if (dl < sizeof(diff))
				dl += (size_t)snprintf(diff + dl, sizeof(diff) - dl,
					"\n job %zu (%s): daemon %s/%lld %s %s | simulator %s/%lld %s %s",
					i + 1, jstr(live[i], "name"), ds, jint(live[i], "requeues"), rc1, a,
					ss, jint(enc, "requeues"), rc2, b);
			free(a);
			free(b);
			mismatches++;
		}
		if (getenv("JOULE_TEST_VERBOSE")) {
			char *a = json_dumps(dp, JSON_COMPACT);
			fprintf(stderr, "job %zu %s %s %lld %s %s\n", i + 1, jstr(live[i], "name"),
				jstr(live[i], "state"), jint(live[i], "requeues"),
				jstr(live[i], "reason") ? jstr(live[i], "reason") : "-", a);
			free(a);
		}
		json_decref(enc);
	}
	ck_assert_msg(mismatches == 0, "%u of %zu jobs differ:%s", mismatches, NPARITY, diff);
	/* and so the power ledgers agree, domain by domain */
	json_t *doms = td_get_json(&d, "/v1/domains");
	ck_assert_ptr_nonnull(doms);
	size_t k;
	json_t *dom;
	ck_assert_uint_eq(json_array_size(json_object_get(doms, "domains")), 3);
	json_array_foreach(json_object_get(doms, "domains"), k, dom) {
		uint32_t x = fleet_domain_find(&f, jstr(dom, "name"));
		ck_assert_uint_ne(x, FLEET_NONE);
		ck_assert_msg(jint(dom, "reserved_w") == f.domains[x].reserved_w,
			      "domain %s: daemon reserves %lld W, simulator %lld W", jstr(dom, "name"),
			      jint(dom, "reserved_w"), (long long)f.domains[x].reserved_w);
	}
	json_decref(doms);
	/* the queue is worth comparing: jobs run, jobs wait for devices, for watts and behind a
	 * reservation (backfill said no), and some were preempted */
	ck_assert_uint_ge(active, 10);
	ck_assert_uint_ge(pending, 10);
	ck_assert_uint_ge(held, 1);
	ck_assert_uint_ge(power, 1);
	ck_assert_uint_ge(requeued, 2);

	sim_result_free(&r);
	jobs_free(&t);
	fleet_free(&f);
	for (size_t i = 0; i < NPARITY; i++)
		json_decref(live[i]);
	td_cleanup(&d);
}
END_TEST

/* ---------------- 2. POST /v1/simulate ---------------- */

/* tests/data/fleet.json: rack-a (a-n1, a-n2: 8 x H100), rack-b (b-n1: 8 x Ascend910B3). */
static void start_with_data_fleet(struct td_daemon *d, const char *const *extra)
{
	ck_assert_int_eq(td_start_args(d, extra), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	char *body = json_dumps(fleet, JSON_COMPACT);
	json_decref(fleet);
	import_fleet(d, body);
	free(body);
}

/* What the daemon shows: GET /v1/jobs, /v1/nodes, /v1/domains, bodies and ETags. */
struct snapshot {
	char *body[3];
	char etag[3][128];
};

static const char *const snap_paths[] = {"/v1/jobs", "/v1/nodes", "/v1/domains"};

static void snap_take(struct td_daemon *d, struct snapshot *s)
{
	for (int k = 0; k < 3; k++) {
		struct td_response r = {0};
		ck_assert_int_eq(td_http(d, "GET", snap_paths[k], NULL, NULL, &r), 0);
		ck_assert_int_eq(r.status, 200);
		s->body[k] = strdup(r.raw);
		s->etag[k][0] = '\0';
		td_response_header(&r, "ETag", s->etag[k], sizeof(s->etag[k]));
		td_response_free(&r);
	}
}

static void snap_free(struct snapshot *s)
{
	for (int k = 0; k < 3; k++)
		free(s->body[k]);
}

static void snap_assert_same(struct td_daemon *d, const struct snapshot *before, const char *after_what)
{
	struct snapshot now;
	snap_take(d, &now);
	for (int k = 0; k < 3; k++) {
		ck_assert_msg(strcmp(before->body[k], now.body[k]) == 0,
			      "GET %s changed after %s:\n%s\n---\n%s", snap_paths[k], after_what,
			      before->body[k], now.body[k]);
		ck_assert_msg(strcmp(before->etag[k], now.etag[k]) == 0,
			      "GET %s ETag %s became %s after %s", snap_paths[k], before->etag[k],
			      now.etag[k], after_what);
	}
	snap_free(&now);
}

/* POST /v1/simulate body; the status, the answer in *out (NULL: dropped). */
static long simulate(struct td_daemon *d, const char *body, json_t **out)
{
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/simulate", body, NULL, &r), 0);
	long status = r.status;
	if (out)
		*out = json_incref(r.json);
	td_response_free(&r);
	return status;
}

/* POST /v1/jobs/{id}/status {"state":"running"}: a launcher's report; it must answer 200. */
static void report_running(struct td_daemon *d, long long id)
{
	char p[64];
	snprintf(p, sizeof(p), "/v1/jobs/%lld/status", id);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", p, "{\"state\":\"running\"}", NULL, &r), 0);
	ck_assert_msg(r.status == 200, "status: %ld %s", r.status, r.raw);
	td_response_free(&r);
}

/* Live: job 1 (1 x 8 H100, 2 h) and job 3 (1 x 4 Ascend, 1.5 h) placed, and reported
 * running when `running`; job 2 (2 x 8 H100, 1 h) pending behind job 1. */
static void live_queue(struct td_daemon *d, bool running)
{
	submit_text(d, T_("\"name\":\"live-a\",\"workers\":1,\"devices\":8," H100
			  ",\"duration_s\":7200"));
	submit_text(d, T_("\"name\":\"live-b\",\"workers\":2,\"devices\":8," H100
			  ",\"duration_s\":3600"));
	submit_text(d, T_("\"name\":\"live-c\",\"workers\":1,\"devices\":4,"
			  "\"accelerator\":{\"models\":[\"Ascend910B3\"]},\"duration_s\":5400"));
	if (running) {
		report_running(d, 1);
		report_running(d, 3);
	}
	json_t *j = td_get_json(d, "/v1/jobs/2");
	ck_assert_str_eq(jstr(j, "state"), "pending");
	json_decref(j);
	j = td_get_json(d, "/v1/jobs/1");
	ck_assert_str_eq(jstr(j, "state"), running ? "running" : "placed");
	json_decref(j);
}

#define EXTRA_JOB(at, name, devs, dur, extra)                                              \
	"{\"submit_s\":" #at ",\"name\":\"" name "\",\"kind\":\"training\",\"workers\":1,"  \
	"\"devices\":" #devs ",\"duration_s\":" #dur extra "}"

static const char what_if[] =
	"{\"jobs\":["
	EXTRA_JOB(0, "x1", 8, 3600, ",\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}") ","
	EXTRA_JOB(60, "x2", 4, 1800, ",\"accelerator\":{\"vendors\":[\"huawei\"]}") ","
	"{\"submit_s\":120,\"name\":\"x3\",\"kind\":\"inference\",\"replicas\":2,\"devices\":1,"
	"\"duration_s\":600},"
	"{\"submit_s\":180,\"name\":\"x4\",\"kind\":\"training\",\"workers\":4,\"devices\":8,"
	"\"duration_s\":900}],"                                   /* 32 devices: never */
	"\"budgets\":[{\"domain\":\"rack-b\",\"budget_w\":25000}],"
	"\"remove_nodes\":[\"a-n2\"],"
	"\"fleet\":{\"domains\":[{\"name\":\"rack-a\",\"parent\":\"site\",\"budget_w\":45000}],"
	"\"nodes\":[{\"name\":\"a-n3\",\"domain\":\"rack-a\",\"host_idle_w\":1500,"
	"\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]}]},"
	"\"until_s\":172800%s}";

START_TEST(simulate_starts_from_the_live_state_reports_and_changes_nothing)
{
	struct td_daemon d = {0};
	start_with_data_fleet(&d, NULL);
	live_queue(&d, true);
	struct snapshot before;
	snap_take(&d, &before);

	char body[4096];
	json_t *rep = NULL;
	snprintf(body, sizeof(body), what_if, "");
	long st = simulate(&d, body, &rep);
	ck_assert_msg(st == 200, "simulate: %ld", st);
	ck_assert_ptr_nonnull(rep);
	const json_t *jobs = json_object_get(rep, "jobs");
	ck_assert_int_eq(jint(jobs, "total"), 3 + 4);      /* live + extra */
	ck_assert_int_eq(jint(jobs, "never_started"), 1);  /* x4 */
	ck_assert_int_eq(jint(jobs, "completed"), 6);      /* everything else, within 2 days */
	ck_assert(json_is_false(json_object_get(rep, "stopped")));
	ck_assert_int_eq(jint(json_object_get(rep, "never_started_reasons"), "INSUFFICIENT_DEVICES"), 1);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(rep, "wait_s"), "all"));
	ck_assert_ptr_nonnull(json_object_get(rep, "start"));
	const json_t *by_model = json_object_get(json_object_get(rep, "utilization"), "by_model");
	const json_t *h100 = json_object_get(by_model, "H100-SXM5-80GB");
	ck_assert_ptr_nonnull(h100);
	/* in service: a-n1 and the new a-n3 (a-n2 removed); the denominator counts nodes as
	 * they were before the t = 0 removals, so 24 today */
	ck_assert_int_ge(jint(h100, "devices"), 16);
	ck_assert(json_number_value(json_object_get(h100, "peak")) > 0);
	ck_assert_ptr_nonnull(json_object_get(by_model, "Ascend910B3"));
	const json_t *doms = json_object_get(rep, "domains");
	ck_assert(json_is_array(doms));
	unsigned seen = 0;
	size_t i;
	json_t *v;
	json_array_foreach(doms, i, v) {
		const char *name = jstr(v, "name");
		if (strcmp(name, "rack-a") == 0)         /* the fleet fragment's budget */
			seen += jint(v, "budget_w") == 45000;
		else if (strcmp(name, "rack-b") == 0)    /* the what-if budget at t = 0 */
			seen += jint(v, "budget_w") == 25000;
		else if (strcmp(name, "site") == 0)
			seen += jint(v, "budget_w") == 100000;
	}
	ck_assert_uint_eq(seen, 3);
	ck_assert(json_is_number(json_object_get(rep, "energy_kwh")));
	ck_assert(json_number_value(json_object_get(rep, "energy_kwh")) > 0);
	ck_assert_ptr_null(json_object_get(rep, "series"));
	json_decref(rep);
	snap_assert_same(&d, &before, "a simulation");

	/* series: true adds the sampled series */
	snprintf(body, sizeof(body), what_if, ",\"series\":true,\"sample_s\":3600");
	ck_assert_int_eq(simulate(&d, body, &rep), 200);
	const json_t *series = json_object_get(rep, "series");
	ck_assert_ptr_nonnull(series);
	size_t nt = json_array_size(json_object_get(series, "t_s"));
	ck_assert_uint_ge(nt, 2);
	ck_assert_uint_eq(json_array_size(json_object_get(series, "pending")), nt);
	ck_assert_uint_eq(json_array_size(json_object_get(series, "running")), nt);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(series, "utilization"), "H100-SXM5-80GB"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(series, "reserved_w"), "rack-a"));
	json_decref(rep);
	snap_assert_same(&d, &before, "a simulation with series");
	snap_free(&before);
	td_cleanup(&d);
}
END_TEST

/*
 * sim.h: the job table "may already hold active and pending jobs (a copy of a live
 * daemon's state: active ones end at placed_at + duration)". A job the daemon placed but
 * no launcher has yet reported running is active too, so it must end as well, and the
 * pending job behind it must then start.
 */
START_TEST(a_live_job_not_yet_reported_running_still_ends_in_the_what_if)
{
	struct td_daemon d = {0};
	start_with_data_fleet(&d, NULL);
	live_queue(&d, false);                 /* live-a and live-c stay "placed" */
	json_t *rep = NULL;
	ck_assert_int_eq(simulate(&d, "{\"until_s\":86400}", &rep), 200);
	const json_t *jobs = json_object_get(rep, "jobs");
	ck_assert_int_eq(jint(jobs, "total"), 3);
	ck_assert_msg(jint(jobs, "completed") == 3 && jint(jobs, "never_started") == 0,
		      "placed live jobs never end: completed %lld, running_at_end %lld, "
		      "never_started %lld, span_s %lld, stopped %s", jint(jobs, "completed"),
		      jint(jobs, "running_at_end"), jint(jobs, "never_started"), jint(rep, "span_s"),
		      json_is_true(json_object_get(rep, "stopped")) ? "true" : "false");
	json_decref(rep);
	td_cleanup(&d);
}
END_TEST

/* Bad bodies: refused with the field named, nothing changed. A fragment's domain that
 * leaves out its parent is answered as POST /v1/fleet answers it: 409 conflict. */
static const struct {
	const char *body;
	const char *field;
	long status;
} refusals[] = {
	{"{\"until\":3600}", "until", 422},
	{"{\"jobs\":[" EXTRA_JOB(0, "a", 1, 60, "") "," EXTRA_JOB(0, "b", 1, 60, "") ","
	 EXTRA_JOB(0, "c", 1, 60, "") ","
	 EXTRA_JOB(0, "d", 1, 60, ",\"accelerator\":{\"models\":[\"H900\"]}") "]}",
	 "jobs[3].accelerator.models[0]", 422},
	{"{\"remove_nodes\":[\"nope\"]}", "remove_nodes[0]", 422},
	{"{\"remove_nodes\":[\"a-n1\",\"a-n9\"]}", "remove_nodes[1]", 422},
	{"{\"budgets\":[{\"domain\":\"rack-z\",\"budget_w\":1000}]}", "budgets[0].domain", 422},
	{"{\"budgets\":[{\"domain\":\"rack-a\",\"budget_w\":-1}]}", "budgets[0].budget_w", 422},
	{"{\"fleet\":{\"domains\":[{\"name\":\"rack-a\",\"budget_w\":45000}]}}",
	 "fleet.domains[0].parent", 409},
	{"{\"until_s\":0}", "until_s", 422},
	{"{\"until_s\":31536001}", "until_s", 422},
	{"{\"max_wall_ms\":99}", "max_wall_ms", 422},
	{"{\"series\":1}", "series", 422},
	{"{\"jobs\":[{\"name\":\"no-submit\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	 "\"duration_s\":60}]}", "jobs[0].submit_s", 422},
};

START_TEST(a_bad_body_is_refused_naming_the_field_and_changes_nothing)
{
	struct td_daemon d = {0};
	start_with_data_fleet(&d, NULL);
	live_queue(&d, true);
	struct snapshot before;
	snap_take(&d, &before);
	for (size_t k = 0; k < sizeof(refusals) / sizeof(refusals[0]); k++) {
		json_t *ans = NULL;
		long st = simulate(&d, refusals[k].body, &ans);
		const json_t *err = json_object_get(ans, "error");
		ck_assert_msg(st == refusals[k].status, "%s: %ld %s", refusals[k].body, st,
			      jstr(err, "message"));
		ck_assert_str_eq(jstr(err, "code"), st == 422 ? "invalid_argument" : "conflict");
		ck_assert_msg(jstr(err, "field") && strcmp(jstr(err, "field"), refusals[k].field) == 0,
			      "%s: field %s, want %s", refusals[k].body,
			      jstr(err, "field") ? jstr(err, "field") : "(none)", refusals[k].field);
		json_decref(ans);
	}
	snap_assert_same(&d, &before, "refused simulations");
	snap_free(&before);
	td_cleanup(&d);
}
END_TEST

/*
 * A run that is long on the wall clock but cheap at every instant (so the engine's stop
 * poll, every 256 instants, comes often): `blockers` 3 x 8 H100 gangs that can never start
 * (only 16 H100) are retried at every instant that frees room, and `churn` one-device
 * Ascend jobs arrive a second apart and last a second.
 */
static char *long_run_body(unsigned blockers, unsigned churn, int max_wall_ms)
{
	size_t cap = 128 + (size_t)(blockers + churn) * 160, n = 0;
	char *b = malloc(cap);
	ck_assert_ptr_nonnull(b);
	n += (size_t)snprintf(b + n, cap - n, "{\"max_wall_ms\":%d,\"until_s\":31536000,\"jobs\":[",
			      max_wall_ms);
	for (unsigned i = 0; i < blockers; i++)
		n += (size_t)snprintf(b + n, cap - n, "%s{\"submit_s\":0,\"name\":\"blk%u\","
				      "\"kind\":\"training\",\"workers\":3,\"devices\":8,"
				      "\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]},"
				      "\"duration_s\":60}", i ? "," : "", i);
	for (unsigned i = 0; i < churn; i++)
		n += (size_t)snprintf(b + n, cap - n, ",{\"submit_s\":%u,\"name\":\"c%u\","
				      "\"kind\":\"training\",\"workers\":1,\"devices\":1,"
				      "\"accelerator\":{\"models\":[\"Ascend910B3\"]},"
				      "\"duration_s\":1}", i * 2, i);
	snprintf(b + n, cap - n, "]}");
	return b;
}

START_TEST(max_wall_ms_bounds_a_long_run_which_then_says_stopped)
{
	struct td_daemon d = {0};
	const char *extra[] = {"--max-body", "8388608", NULL};
	start_with_data_fleet(&d, extra);
	live_queue(&d, true);
	struct snapshot before;
	snap_take(&d, &before);
	char *body = long_run_body(200, 20000, 200);
	json_t *rep = NULL;
	int64_t t0 = td_now_ms();
	long st = simulate(&d, body, &rep);
	int64_t took = td_now_ms() - t0;
	ck_assert_msg(st == 200, "simulate: %ld", st);
	ck_assert_msg(json_is_true(json_object_get(rep, "stopped")), "not stopped: span %lld s",
		      jint(rep, "span_s"));
	ck_assert_int_lt(jint(rep, "span_s"), 40000);   /* well short of the last arrival */
	ck_assert_msg(took < 1500, "a 200 ms run answered after %lld ms", (long long)took);
	fprintf(stderr, "max_wall_ms 200: answered in %lld ms, %lld steps\n", (long long)took,
		jint(rep, "steps"));
	json_decref(rep);
	free(body);
	snap_assert_same(&d, &before, "a stopped simulation");
	snap_free(&before);
	td_cleanup(&d);
}
END_TEST

/* Send a request on a fresh raw connection without waiting for the answer. */
static int raw_post(struct td_daemon *d, const char *path, const char *body)
{
	int fd = td_connect(d->sock);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(body);
	char head[256];
	int hn = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: localhost\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", path, len);
	ck_assert_int_eq(write(fd, head, (size_t)hn), hn);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, body + off, len - off);
		ck_assert_int_gt(w, 0);
		off += (size_t)w;
	}
	return fd;
}

/* Read one answer's status from fd within timeout_ms (the body is drained); closes fd. */
static long raw_status(int fd, int timeout_ms, char **body_out)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	long status = 0;
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		int left = (int)(end - td_now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		if (len + 1 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		char *he = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
		if (he && cl && len - (size_t)(he + 4 - buf) >= strtoul(cl + 15, NULL, 10)) {
			status = strtol(buf + 9, NULL, 10);
			if (body_out)
				*body_out = strdup(he + 4);
			break;
		}
	}
	free(buf);
	close(fd);
	return status;
}

START_TEST(a_third_concurrent_run_is_refused_with_429)
{
	struct td_daemon d = {0};
	const char *extra[] = {"--max-body", "8388608", NULL};
	start_with_data_fleet(&d, extra);
	struct snapshot before;
	snap_take(&d, &before);
	char *body = long_run_body(200, 20000, 3000);
	int fd1 = raw_post(&d, "/v1/simulate", body), fd2 = raw_post(&d, "/v1/simulate", body);
	/* a cheap probe: 429 comes before the body is even parsed, else it is a 422 */
	long probe = 0;
	for (int64_t end = td_now_ms() + 2500; td_now_ms() < end && probe != 429; td_sleep_ms(20)) {
		json_t *ans = NULL;
		probe = simulate(&d, "{\"until_s\":0}", &ans);
		if (probe == 429)
			ck_assert_str_eq(jstr(json_object_get(ans, "error"), "code"), "too_many_requests");
		json_decref(ans);
	}
	ck_assert_int_eq(probe, 429);
	char *a1 = NULL, *a2 = NULL;
	ck_assert_int_eq(raw_status(fd1, 10000, &a1), 200);
	ck_assert_int_eq(raw_status(fd2, 10000, &a2), 200);
	json_t *r1 = json_loads(a1, 0, NULL), *r2 = json_loads(a2, 0, NULL);
	ck_assert(json_is_true(json_object_get(r1, "stopped")));
	ck_assert(json_is_true(json_object_get(r2, "stopped")));
	json_decref(r1);
	json_decref(r2);
	free(a1);
	free(a2);
	/* both answered: runs are accepted again */
	ck_assert_int_eq(simulate(&d, "{\"until_s\":60}", NULL), 200);
	free(body);
	snap_assert_same(&d, &before, "concurrent simulations");
	snap_free(&before);
	td_cleanup(&d);
}
END_TEST

/* ---------------- 3. joulectl simulate / trace ---------------- */

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

static char *read_text(const char *path)
{
	char *text = NULL;
	ck_assert_msg(td_read_file(path, &text, NULL) == 0, "cannot read %s", path);
	return text;
}

static struct td_run ctl(struct td_daemon *d, const char *const *argv)
{
	struct td_run r;
	ck_assert_int_eq(td_ctl(d, "", argv, &r), 0);
	return r;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/*
 * A structural XML check: one root element named root, every tag closed in order, nothing
 * but white space outside it (after an optional declaration and comments), attributes
 * quoted, '&' only in the five predefined entities or character references, no '<' in
 * text. Returns NULL when well formed, else what is wrong.
 */
static const char *xml_check(const char *s, const char *root)
{
	static char why[160];
	char stack[64][32];
	int depth = 0;
	bool seen_root = false;
	while (*s) {
		if (*s != '<') {
			if (depth == 0 && !strchr(" \t\r\n", *s))
				return "text outside the root element";
			if (*s == '&') {
				static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
				bool ok = false;
				for (size_t k = 0; k < 6 && !ok; k++)
					ok = strncmp(s, ents[k], strlen(ents[k])) == 0;
				if (!ok || !strchr(s, ';'))
					return "a bare '&'";
			}
			s++;
			continue;
		}
		if (strncmp(s, "<?", 2) == 0) {
			const char *e = strstr(s, "?>");
			if (!e || seen_root)
				return "a bad processing instruction";
			s = e + 2;
			continue;
		}
		if (strncmp(s, "<!--", 4) == 0) {
			const char *e = strstr(s + 4, "-->");
			if (!e)
				return "an unclosed comment";
			s = e + 3;
			continue;
		}
		bool closing = s[1] == '/';
		const char *p = s + 1 + closing;
		size_t nl = strcspn(p, " \t\r\n/>");
		if (nl == 0 || nl >= sizeof(stack[0]))
			return "a bad tag name";
		char name[32];
		memcpy(name, p, nl);
		name[nl] = '\0';
		p += nl;
		/* attributes: name="value" or name='value' */
		char q = 0;
		for (; *p && (q || *p != '>'); p++) {
			if (q) {
				if (*p == q)
					q = 0;
				else if (*p == '<')
					return "'<' in an attribute value";
			} else if (*p == '"' || *p == '\'') {
				if (p[-1] != '=')
					return "a quote not after '='";
				q = *p;
			} else if (*p == '=' && p[1] != '"' && p[1] != '\'') {
				return "an unquoted attribute value";
			}
		}
		if (!*p)
			return "an unclosed tag";
		bool self = p[-1] == '/';
		if (closing) {
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
				snprintf(why, sizeof(why), "</%s> closes <%s>", name,
					 depth ? stack[depth - 1] : "(nothing)");
				return why;
			}
			depth--;
		} else {
			if (depth == 0) {
				if (seen_root)
					return "a second root element";
				if (strcmp(name, root) != 0)
					return "the root is not the expected element";
				seen_root = true;
			}
			if (!self) {
				if (depth == 64)
					return "too deep";
				snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
			}
		}
		s = p + 1;
	}
	if (depth)
		return "an element left open";
	return seen_root ? NULL : "no root element";
}

START_TEST(trace_generate_is_deterministic_and_csv_reads_back_the_same_jobs)
{
	struct td_daemon d = {0};
	ck_assert_int_eq(td_make_dir(&d), 0);
	const char *gen[] = {"trace", "generate", "--jobs", "300", "--seed", "5", NULL};
	const char *gen_csv[] = {"trace", "generate", "--jobs", "300", "--seed", "5",
				 "--format", "csv", NULL};
	const char *gen_other[] = {"trace", "generate", "--jobs", "300", "--seed", "6", NULL};
	struct td_run a = ctl(&d, gen), b = ctl(&d, gen), c = ctl(&d, gen_csv), o = ctl(&d, gen_other);
	ck_assert_msg(a.code == 0, "generate: %d %s", a.code, a.err);
	ck_assert_int_eq(b.code, 0);
	ck_assert_int_eq(c.code, 0);
	ck_assert_str_eq(a.out, b.out);
	ck_assert_str_ne(a.out, o.out);
	ck_assert_uint_eq(count_lines(a.out), 300);
	ck_assert_uint_eq(count_lines(c.out), 301);          /* the header, then a row a job */
	ck_assert(strncmp(c.out, "submit_s,", 9) == 0);

	/* both encodings simulate to the same report */
	char jl[PATH_MAX], csv[PATH_MAX], fleet[PATH_MAX];
	snprintf(jl, sizeof(jl), "%s/t.jsonl", d.dir);
	snprintf(csv, sizeof(csv), "%s/t.csv", d.dir);
	write_file(jl, a.out);
	write_file(csv, c.out);
	ck_assert_int_eq(td_data_path("fleet.json", fleet, sizeof(fleet)), 0);
	const char *sj[] = {"--json", "simulate", "--fleet", fleet, "--trace", jl, NULL};
	const char *sc[] = {"--json", "simulate", "--fleet", fleet, "--trace", csv, NULL};
	struct td_run rj = ctl(&d, sj), rc = ctl(&d, sc);
	ck_assert_msg(rj.code == 0, "simulate jsonl: %d %s", rj.code, rj.err);
	ck_assert_msg(rc.code == 0, "simulate csv: %d %s", rc.code, rc.err);
	json_t *pj = json_loads(rj.out, 0, NULL), *pc = json_loads(rc.out, 0, NULL);
	ck_assert_ptr_nonnull(pj);
	ck_assert_ptr_nonnull(pc);
	ck_assert_int_eq(jint(json_object_get(pj, "jobs"), "total"), 300);
	json_object_del(pj, "wall_s");
	json_object_del(pc, "wall_s");
	ck_assert_msg(json_equal(pj, pc), "the CSV trace simulates differently from the JSON lines");
	json_decref(pj);
	json_decref(pc);
	td_run_free(&a);
	td_run_free(&b);
	td_run_free(&c);
	td_run_free(&o);
	td_run_free(&rj);
	td_run_free(&rc);
	td_cleanup(&d);
}
END_TEST

START_TEST(simulate_runs_the_alibaba_fleet_and_writes_every_report_file)
{
	struct td_daemon d = {0};
	ck_assert_int_eq(td_make_dir(&d), 0);
	char table[PATH_MAX], fleet[PATH_MAX], trace[PATH_MAX], out[PATH_MAX], p[PATH_MAX + 32];
	ck_assert_int_eq(td_data_path("alibaba/pai_machine_spec.csv", table, sizeof(table)), 0);
	snprintf(fleet, sizeof(fleet), "%s/pai.json", d.dir);
	snprintf(trace, sizeof(trace), "%s/nv.jsonl", d.dir);
	snprintf(out, sizeof(out), "%s/report", d.dir);
	const char *imp[] = {"trace", "import-alibaba", table, NULL};
	const char *gen[] = {"trace", "generate", "--jobs", "300", "--seed", "5", "--nvidia-only", NULL};
	struct td_run ri = ctl(&d, imp), rg = ctl(&d, gen);
	ck_assert_msg(ri.code == 0, "import-alibaba: %d %s", ri.code, ri.err);
	ck_assert_int_eq(rg.code, 0);
	json_t *doc = json_loads(ri.out, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "nodes")), 1814);
	json_decref(doc);
	write_file(fleet, ri.out);
	write_file(trace, rg.out);

	const char *sim[] = {"simulate", "--fleet", fleet, "--trace", trace, "--out", out, NULL};
	struct td_run rs = ctl(&d, sim);
	ck_assert_msg(rs.code == 0, "simulate: %d %s", rs.code, rs.err);
	ck_assert_msg(strstr(rs.out, "report in") != NULL, "table: %s", rs.out);

	snprintf(p, sizeof(p), "%s/report.json", out);
	json_error_t je;
	json_t *rep = json_load_file(p, 0, &je);
	ck_assert_msg(rep != NULL, "report.json: %s", je.text);
	ck_assert_int_eq(jint(json_object_get(rep, "jobs"), "total"), 300);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(rep, "utilization"),
							      "by_model"), "V100-SXM2-16GB"));
	json_decref(rep);

	static const char *const csvs[] = {"timeseries.csv", "jobs.csv"};
	for (size_t k = 0; k < 2; k++) {
		snprintf(p, sizeof(p), "%s/%s", out, csvs[k]);
		char *text = read_text(p);
		size_t lines = count_lines(text);
		ck_assert_msg(lines >= 3, "%s: %zu lines", csvs[k], lines);
		/* every row has as many cells as the header (no quoted commas in these files) */
		size_t cols = 0;
		for (const char *s = text; *s && *s != '\n'; s++)
			cols += *s == ',';
		ck_assert_msg(cols >= 2 && strchr("abcdefghijklmnopqrstuvwxyz", text[0]),
			      "%s: header %.80s", csvs[k], text);
		size_t row = 0;
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), row++) {
			size_t n = 0;
			for (const char *s = line; *s; s++)
				n += *s == ',';
			ck_assert_msg(n == cols || strchr(line, '"'), "%s row %zu: %zu commas, header %zu",
				      csvs[k], row, n, cols);
		}
		if (k == 1)
			ck_assert_uint_eq(row, 301);          /* the header and the 300 jobs */
		free(text);
	}
	static const char *const svgs[] = {"utilization.svg", "queue.svg", "power.svg"};
	for (size_t k = 0; k < 3; k++) {
		snprintf(p, sizeof(p), "%s/%s", out, svgs[k]);
		char *text = read_text(p);
		const char *why = xml_check(text, "svg");
		ck_assert_msg(why == NULL, "%s is not well formed: %s", svgs[k], why);
		ck_assert_ptr_nonnull(strstr(text, "xmlns=\"http://www.w3.org/2000/svg\""));
		free(text);
	}

	/* --json prints the report */
	const char *simj[] = {"--json", "simulate", "--fleet", fleet, "--trace", trace, NULL};
	struct td_run rj = ctl(&d, simj);
	ck_assert_int_eq(rj.code, 0);
	json_t *pj = json_loads(rj.out, 0, NULL);
	ck_assert_ptr_nonnull(pj);
	ck_assert_int_eq(jint(json_object_get(pj, "jobs"), "total"), 300);
	ck_assert_ptr_nonnull(json_object_get(pj, "energy_kwh"));
	json_decref(pj);
	td_run_free(&ri);
	td_run_free(&rg);
	td_run_free(&rs);
	td_run_free(&rj);
	td_cleanup(&d);
}
END_TEST

START_TEST(simulate_names_the_bad_line_and_wants_its_fleet)
{
	struct td_daemon d = {0};
	ck_assert_int_eq(td_make_dir(&d), 0);
	char bad[PATH_MAX], fleet[PATH_MAX];
	snprintf(bad, sizeof(bad), "%s/bad.csv", d.dir);
	write_file(bad, "submit_s,duration_s,name,kind,count,devices\n"
			"0,3600,a,training,1,8\n"
			"5,3600,b,training,1,many\n");
	ck_assert_int_eq(td_data_path("fleet.json", fleet, sizeof(fleet)), 0);
	const char *sim[] = {"simulate", "--fleet", fleet, "--trace", bad, NULL};
	struct td_run r = ctl(&d, sim);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "bad.csv:3:") != NULL, "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "devices") != NULL, "stderr: %s", r.err);
	td_run_free(&r);

	const char *nofleet[] = {"simulate", "--trace", bad, NULL};
	r = ctl(&d, nofleet);
	ck_assert_int_eq(r.code, 2);
	ck_assert_msg(strstr(r.err, "--fleet") != NULL, "stderr: %s", r.err);
	td_run_free(&r);
	td_cleanup(&d);
}
END_TEST

static Suite *simulate_suite(void)
{
	Suite *s = suite_create("simulate");
	TCase *parity = tcase_create("parity");
	tcase_add_test(parity, the_simulator_places_every_job_exactly_as_the_daemon_does);
	tcase_set_timeout(parity, 60);
	suite_add_tcase(s, parity);
	TCase *api = tcase_create("api");
	tcase_add_test(api, simulate_starts_from_the_live_state_reports_and_changes_nothing);
	tcase_add_test(api, a_live_job_not_yet_reported_running_still_ends_in_the_what_if);
	tcase_add_test(api, a_bad_body_is_refused_naming_the_field_and_changes_nothing);
	tcase_add_test(api, max_wall_ms_bounds_a_long_run_which_then_says_stopped);
	tcase_add_test(api, a_third_concurrent_run_is_refused_with_429);
	tcase_set_timeout(api, 60);
	suite_add_tcase(s, api);
	TCase *cli = tcase_create("cli");
	tcase_add_test(cli, trace_generate_is_deterministic_and_csv_reads_back_the_same_jobs);
	tcase_add_test(cli, simulate_runs_the_alibaba_fleet_and_writes_every_report_file);
	tcase_add_test(cli, simulate_names_the_bad_line_and_wants_its_fleet);
	tcase_set_timeout(cli, 60);
	suite_add_tcase(s, cli);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(simulate_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
