/*
 * api/simulate — POST /v1/simulate: a what-if run from the live fleet and queue, on a
 * private copy, in libuv's thread pool.
 *
 * Owns: each run's copies (fleet, job table, the trace's jobs, scripted events) and its
 * result, from the request until the reply is sent.
 * Never: touches live state after the copy (the copy is made on the loop; the run reads and
 * writes only the copy, so it needs no lock), blocks the loop with the run itself, runs more
 * than API_SIM_MAX at once, runs past its wall-clock bound (the engine polls stop()).
 *
 * Body (every member optional):
 *   "fleet"        a fleet document upserted on the copy (add nodes, domains, budgets)
 *   "remove_nodes" node names taken out of service at t = 0 (their jobs requeued)
 *   "budgets"      [{"domain", "budget_w"}]: budgets as of t = 0
 *   "jobs"         trace jobs (POST /v1/jobs objects with "submit_s"), at most 100,000
 *   "events"       scripted events (docs/trace-format.md)
 *   "until_s"      virtual seconds to simulate, 1 … 31536000 (default 604800)
 *   "sample_s"     sampling interval (default until_s / 500, at least 60)
 *   "resolution_s" the clock's step, 1 … 86400 (default 60; 1 = exactly as the daemon)
 *   "max_wall_ms"  wall-clock bound, 100 … 60000 (default 10000): the report then says
 *                  "stopped": true
 *   "series"       true: include the sampled time series
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "input.h"
#include "internal.h"
#include "place.h"
#include "report.h"
#include "sim.h"

#define API_SIM_MAX 2
#define API_SIM_MAX_JOBS 100000

struct sim_work {
	uv_work_t req;
	struct api *a;
	struct http_conn *conn;
	uint64_t t0;
	struct fleet f;
	struct jobs t;
	struct sim_job *jobs;
	uint32_t njobs;
	struct sim_event *events;
	uint32_t nevents;
	struct sim_options o;
	struct sim_result r;
	struct err e;
	int rc;
	bool series;
	struct timespec deadline;
	atomic_bool cancel;
	struct sim_work *next;        /* a->sims */
};

static bool still_live(const struct job *j)
{
	return j->state == JOB_PENDING || job_state_active(j->state);
}

static bool past_deadline(void *ud)
{
	struct sim_work *w = ud;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return atomic_load(&w->cancel) || now.tv_sec > w->deadline.tv_sec ||
	       (now.tv_sec == w->deadline.tv_sec && now.tv_nsec >= w->deadline.tv_nsec);
}

static void work_free(struct sim_work *w)
{
	sim_input_jobs_free(w->jobs, w->njobs);
	free(w->events);
	sim_result_free(&w->r);
	jobs_free(&w->t);
	fleet_free(&w->f);
	free(w);
}

static void run_in_pool(uv_work_t *req)
{
	struct sim_work *w = req->data;
	w->rc = sim_run(&w->f, &w->t, w->jobs, w->njobs, w->events, w->nevents, &w->o, &w->r, &w->e);
	free(w->jobs);       /* sim_run took the jobs themselves */
	w->jobs = NULL;
	w->njobs = 0;
}

static void reply(struct sim_work *w, int status, char *body, size_t len)
{
	api_metrics_request(w->a, API_ROUTE_SIMULATE, status, uv_hrtime() - w->t0);
	http_conn_respond(w->conn, status, NULL, body, len);
}

static void after_pool(uv_work_t *req, int status)
{
	struct sim_work *w = req->data;
	struct api *a = w->a;
	struct sim_work **p = &a->sims;
	while (*p && *p != w)
		p = &(*p)->next;
	if (*p)
		*p = w->next;
	a->nsims--;
	size_t len = 0;
	char *body = NULL;
	if (status == 0 && w->rc == 0) {
		json_t *o = report_json(&w->f, &w->r, w->series);
		if (o)
			json_object_set_new(o, "start", codec_time(w->o.start));
		body = o ? codec_dump(o, &len) : NULL;
	}
	if (body) {
		reply(w, 200, body, len);
	} else {
		if (w->rc == 0)
			err_set(&w->e, -ENOMEM, NULL, "out of memory");
		body = codec_error_body(&w->e, &len);
		reply(w, 503, body, len);
	}
	work_free(w);
}

/* Prefix e's field with "prefix" (e.g. "jobs"), keeping its code and message. */
static int prefixed(struct ctx *c, struct err *e, const char *prefix)
{
	char field[sizeof(e->field)];
	if (e->field[0] == '[')      /* "[3].name" → "jobs[3].name" */
		snprintf(field, sizeof(field), "%.16s%.78s", prefix, e->field);
	else
		snprintf(field, sizeof(field), "%.16s%s%.77s", prefix, e->field[0] ? "." : "",
			 e->field);
	memcpy(e->field, field, sizeof(e->field));
	c->err = *e;
	api_fail(c, e->code == -ENOMEM ? -ENOMEM : ERR_INVALID);
	return -1;
}

static int get_int(struct ctx *c, const json_t *body, const char *key, int64_t lo, int64_t hi,
		   int64_t *out)
{
	const json_t *v = json_object_get(body, key);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		err_set(&c->err, ERR_INVALID, key, "must be an integer %lld-%lld", (long long)lo,
			(long long)hi);
		api_fail(c, ERR_INVALID);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

void api_simulate(struct ctx *c)
{
	static const char *const keys[] = {"fleet", "remove_nodes", "budgets", "jobs", "events",
					   "until_s", "sample_s", "resolution_s", "max_wall_ms",
					   "series", NULL};
	struct api *a = c->a;
	json_t *body = NULL;
	struct sim_work *w = NULL;
	int64_t until = 7 * 86400, sample = 0, wall_ms = 10000, resolution = 60;
	struct err e = {0};

	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	if (a->nsims >= API_SIM_MAX) {
		err_set(&c->err, ERR_TOO_MANY, NULL, "%d simulations are running; try again when one "
			"has answered", API_SIM_MAX);
		return api_fail(c, ERR_TOO_MANY);
	}
	if (codec_parse(c->req->body ? c->req->body : "{}", c->req->body_len ? c->req->body_len : 2,
			&body, &c->err) < 0)
		return api_fail(c, c->err.code);
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		bool known = false;
		for (size_t i = 0; keys[i] && !known; i++)
			known = strcmp(keys[i], k) == 0;
		if (!known) {
			err_set(&c->err, ERR_INVALID, k, "unknown member (one of fleet, remove_nodes, "
				"budgets, jobs, events, until_s, sample_s, resolution_s, max_wall_ms, "
				"series)");
			api_fail(c, ERR_INVALID);
			goto out;
		}
	}
	if (get_int(c, body, "until_s", 1, 365 * 86400, &until) < 0 ||
	    get_int(c, body, "sample_s", 1, 365 * 86400, &sample) < 0 ||
	    get_int(c, body, "resolution_s", 1, 86400, &resolution) < 0 ||
	    get_int(c, body, "max_wall_ms", 100, 60000, &wall_ms) < 0)
		goto out;
	const json_t *series = json_object_get(body, "series");
	if (series && !json_is_boolean(series)) {
		err_set(&c->err, ERR_INVALID, "series", "must be true or false");
		api_fail(c, ERR_INVALID);
		goto out;
	}
	const json_t *jobs = json_object_get(body, "jobs"), *rm = json_object_get(body, "remove_nodes"),
		     *budgets = json_object_get(body, "budgets");
	if (budgets && !json_is_array(budgets)) {
		err_set(&c->err, ERR_INVALID, "budgets", "must be a list of {\"domain\", \"budget_w\"}");
		api_fail(c, ERR_INVALID);
		goto out;
	}
	if ((jobs && (!json_is_array(jobs) || json_array_size(jobs) > API_SIM_MAX_JOBS)) ||
	    (rm && !json_is_array(rm))) {
		err_set(&c->err, ERR_INVALID, jobs && !json_is_array(jobs) ? "jobs" : rm ? "remove_nodes" : "jobs",
			"must be a list%s", jobs && json_array_size(jobs) > API_SIM_MAX_JOBS
			? " of at most 100000 jobs" : "");
		api_fail(c, ERR_INVALID);
		goto out;
	}

	/* the private copy: the fleet as it is, the live queue and running jobs */
	if (!(w = calloc(1, sizeof(*w))))
		goto nomem;
	jobs_init(&w->t);
	if (fleet_clone(&w->f, &a->fleet) < 0 || jobs_clone(&w->t, &a->jobs, still_live) < 0)
		goto nomem;
	const json_t *fl = json_object_get(body, "fleet");
	if (fl && sim_input_fleet(&w->f, fl, &e) < 0) {
		prefixed(c, &e, "fleet");
		goto out;
	}
	/* scripted events, then removed nodes as node_down at t = 0 ahead of them */
	const json_t *evs = json_object_get(body, "events");
	struct sim_event *body_ev = NULL;
	uint32_t nbody_ev = 0;
	if (evs && sim_input_events(evs, &w->f, &body_ev, &nbody_ev, &e) < 0) {
		c->err = e;
		api_fail(c, e.code);
		goto out;
	}
	size_t nrm = json_array_size(rm), nbud = json_array_size(budgets);
	w->events = calloc(nrm + nbud + nbody_ev + 1, sizeof(*w->events));
	if (!w->events) {
		free(body_ev);
		goto nomem;
	}
	size_t i;
	json_array_foreach(rm, i, v) {
		uint32_t n = json_is_string(v) ? fleet_node_find(&w->f, json_string_value(v)) : FLEET_NONE;
		if (n == FLEET_NONE) {
			free(body_ev);
			char f2[48];
			snprintf(f2, sizeof(f2), "remove_nodes[%zu]", i);
			err_set(&c->err, ERR_INVALID, f2, "must name a node of the fleet");
			api_fail(c, ERR_INVALID);
			goto out;
		}
		w->events[w->nevents++] = (struct sim_event){.at_s = 0, .action = SIM_NODE_DOWN,
							     .node = n};
	}
	json_array_foreach(budgets, i, v) {
		const char *dn = json_string_value(json_object_get(v, "domain"));
		const json_t *bw = json_object_get(v, "budget_w");
		uint32_t d = dn ? fleet_domain_find(&w->f, dn) : FLEET_NONE;
		if (d == FLEET_NONE || !json_is_integer(bw) || json_integer_value(bw) < 0 ||
		    json_object_size(v) != 2) {
			free(body_ev);
			char f2[48];
			snprintf(f2, sizeof(f2), "budgets[%zu].%s", i, d == FLEET_NONE ? "domain" : "budget_w");
			err_set(&c->err, ERR_INVALID, f2, d == FLEET_NONE ? "must name a domain of the fleet"
				: "must be a whole number of watts >= 0 (and nothing else beside domain)");
			api_fail(c, ERR_INVALID);
			goto out;
		}
		w->events[w->nevents++] = (struct sim_event){.at_s = 0, .action = SIM_BUDGET,
			.domain = d, .budget_w = json_integer_value(bw)};
	}
	if (nbody_ev)
		memcpy(&w->events[w->nevents], body_ev, nbody_ev * sizeof(*body_ev));
	w->nevents += nbody_ev;
	free(body_ev);
	if (jobs && sim_input_jobs(jobs, &w->f, &w->jobs, &w->njobs, &e) < 0) {
		prefixed(c, &e, "jobs");
		goto out;
	}
	w->a = a;
	w->conn = c->conn;
	w->t0 = uv_hrtime();
	w->series = series && json_is_true(series);
	w->o = (struct sim_options){.start = c->now, .sample_s = sample, .until_s = until,
				    .resolution_s = resolution, .stop = past_deadline, .stop_ud = w};
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += wall_ms / 1000;
	w->deadline.tv_nsec += (wall_ms % 1000) * 1000000L;
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	atomic_init(&w->cancel, false);
	w->req.data = w;
	if (uv_queue_work(a->loop, &w->req, run_in_pool, after_pool) < 0)
		goto nomem;
	w->next = a->sims;
	a->sims = w;
	a->nsims++;
	c->deferred = true;
	json_decref(body);
	return;
nomem:
	err_set(&c->err, -ENOMEM, NULL, "out of memory copying the fleet");
	api_fail(c, -ENOMEM);
out:
	if (w)
		work_free(w);
	json_decref(body);
}

void api_simulate_cancel_all(struct api *a)
{
	for (struct sim_work *w = a->sims; w; w = w->next)
		atomic_store(&w->cancel, true);
}
