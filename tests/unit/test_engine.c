/*
 * test_engine — the engine on top of first fit: capability mode, "cap":"auto", inference
 * min_count and growth, spread, training locality, backfill behind a reservation,
 * preemption, start estimates, determinism, and a seeded property test that drives random
 * fleets through mixed operations (capability jobs, auto caps, partial inference,
 * priorities, preemption, short passes) and recomputes every invariant after each step.
 *
 * Each test asserts the contract of place.h; where the core disagrees the test fails and
 * names what it expected.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fleet_builder.h"
#include "place.h"
#include "power.h"

/* ---- a world: one fleet, one job table, a clock ---- */

#include "../lib/world.h"

/* A capability-mode job: what one worker needs; the core picks model and device count. */
static struct job *job_need(uint32_t count, uint32_t memory_gib, uint32_t bandwidth_gbs,
			    double bf16_tflops, bool fp8)
{
	struct job *j = job_mk(count, 0, 0, TOPO_ANY);
	j->req.capability = true;
	j->req.need.memory_gib = memory_gib;
	j->req.need.bandwidth_gbs = bandwidth_gbs;
	j->req.need.bf16_tflops = bf16_tflops;
	j->req.need.fp8 = fp8;
	return j;
}

static struct job *job_inference(uint32_t count, uint32_t min_count, uint32_t devices,
				 enum job_topology topo)
{
	struct job *j = job_mk(count, devices, 0, topo);
	j->req.kind = JOB_INFERENCE;
	j->req.min_count = min_count;
	return j;
}

/* Allowed model names, NULL-terminated. */
static void job_models(struct job *j, ...)
{
	va_list ap;
	const char *s;
	uint8_t n = 0;

	free(j->req.models);
	j->req.models = calloc(JOB_MAX_MODELS, sizeof(*j->req.models));
	ck_assert_ptr_nonnull(j->req.models);
	va_start(ap, j);
	while ((s = va_arg(ap, const char *)) != NULL)
		snprintf(j->req.models[n++], sizeof(j->req.models[0]), "%s", s);
	va_end(ap);
	j->req.nmodels = n;
}

static struct job *submit(struct world *w, struct job *j)
{
	j->submitted_at = w->now;
	ck_assert_int_eq(jobs_add(&w->t, j), 0);
	return j;
}

static int try_place(struct world *w, struct job *j)
{
	return place_try(&w->f, &w->t, j, ++w->now);
}

/* Submit and place now; the test needs it placed. */
static struct job *running(struct world *w, struct job *j)
{
	submit(w, j);
	ck_assert_int_eq(try_place(w, j), 0);
	return j;
}

static uint32_t node(const struct fleet *f, const char *name)
{
	uint32_t n = fleet_node_find(f, name);
	ck_assert_msg(n != FLEET_NONE, "no node %s", name);
	return n;
}

static uint32_t dom(const struct fleet *f, const char *name)
{
	uint32_t d = fleet_domain_find(f, name);
	ck_assert_msg(d != FLEET_NONE, "no domain %s", name);
	return d;
}

static uint16_t model(const struct fleet *f, const char *name)
{
	uint32_t m = fleet_model_find(f, name);
	ck_assert_msg(m != FLEET_NONE, "no model %s", name);
	return (uint16_t)m;
}

static uint32_t popc(uint64_t m) { return (uint32_t)__builtin_popcountll(m); }

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Distinct leaf domains (racks) and nodes a job's workers occupy. */
static uint32_t racks_used(const struct fleet *f, const struct job *j)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < j->nplaced; i++) {
		bool seen = false;
		for (uint32_t k = 0; k < i; k++)
			seen |= f->nodes[j->placement[k].node].domain ==
				f->nodes[j->placement[i].node].domain;
		n += !seen;
	}
	return n;
}

static uint32_t nodes_used(const struct job *j)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < j->nplaced; i++) {
		bool seen = false;
		for (uint32_t k = 0; k < i; k++)
			seen |= j->placement[k].node == j->placement[i].node;
		n += !seen;
	}
	return n;
}

/* ---- invariants, shared by the unit tests and the property test ---- */

/* An active job against place.h: the gang complete (or >= min_count for inference), every
 * worker on one allowed model with the device count place_model_fits_request gives, caps
 * inside [min_cap_w, tdp_w] (and >= the auto floor, or the fixed cap), devices owned by
 * (job, worker) at that cap, the topology honoured. */
static bool check_active_job(const struct fleet *f, const struct job *j, char *msg, size_t len)
{
#define JFAIL(...) do { snprintf(msg, len, __VA_ARGS__); return false; } while (0)
	const struct job_request *r = &j->req;
	unsigned long long id = (unsigned long long)j->id;
	uint32_t need = r->min_count ? r->min_count : r->count;

	if (!j->placement)
		JFAIL("job %llu: active without a placement", id);
	if (j->placed_at == 0)
		JFAIL("job %llu: placed_at not set", id);
	if (r->kind == JOB_TRAINING && j->nplaced != r->count)
		JFAIL("job %llu: training gang has %u of %u workers", id, j->nplaced, r->count);
	if (j->nplaced < need || j->nplaced > r->count)
		JFAIL("job %llu: %u workers placed, min_count %u, count %u", id, j->nplaced, need,
		      r->count);
	for (uint32_t w = 0; w < j->nplaced; w++) {
		const struct job_worker *wk = &j->placement[w];
		const struct job_worker *w0 = &j->placement[0];
		if (wk->node >= f->nnodes || wk->model >= f->nmodels)
			JFAIL("job %llu worker %u: node %u / model %u out of range", id, w, wk->node,
			      wk->model);
		const struct node *nd = &f->nodes[wk->node];
		const struct model *m = &f->models[wk->model];
		uint32_t cap0 = 0, dev0 = 0;
		if (!place_model_fits_request(f, r, wk->model, &cap0, &dev0))
			JFAIL("job %llu worker %u: model %s is not allowed by the request", id, w,
			      m->name);
		if (popc(wk->mask) != dev0)
			JFAIL("job %llu worker %u: %u devices of %s, the request gives %u", id, w,
			      popc(wk->mask), m->name, dev0);
		if (wk->model != w0->model || popc(wk->mask) != popc(w0->mask) ||
		    wk->cap_w != w0->cap_w)
			JFAIL("job %llu: worker %u (%s x%u @%u W) differs from worker 0 (%s x%u @%u W)",
			      id, w, m->name, popc(wk->mask), wk->cap_w, f->models[w0->model].name,
			      popc(w0->mask), w0->cap_w);
		if (wk->cap_w < m->min_cap_w || wk->cap_w > m->tdp_w)
			JFAIL("job %llu worker %u: cap %u outside %s's %u-%u W", id, w, wk->cap_w,
			      m->name, m->min_cap_w, m->tdp_w);
		if (!r->cap_auto && wk->cap_w != cap0)
			JFAIL("job %llu worker %u: cap %u, the request gives %u", id, w, wk->cap_w,
			      cap0);
		if (r->cap_auto && (wk->cap_w > cap0 || wk->cap_w < place_auto_floor(m, r->min_perf)))
			JFAIL("job %llu worker %u: auto cap %u outside [floor %u, start %u] (min_perf "
			      "%g)", id, w, wk->cap_w, place_auto_floor(m, r->min_perf), cap0,
			      r->min_perf);
		if (nd->ndevices < 64 && (wk->mask >> nd->ndevices))
			JFAIL("job %llu worker %u: mask %#llx beyond node %s", id, w,
			      (unsigned long long)wk->mask, nd->name);
		for (uint32_t i = 0; i < nd->ndevices; i++) {
			if (!(wk->mask >> i & 1))
				continue;
			const struct device *dv = &f->devices[nd->first_device + i];
			if (dv->model != wk->model)
				JFAIL("job %llu worker %u: device %s/%u is not a %s", id, w, nd->name,
				      i, m->name);
			if (dv->job != j->id || dv->worker != w || dv->cap_w != wk->cap_w)
				JFAIL("job %llu worker %u: device %s/%u holds job %llu worker %u cap %u",
				      id, w, nd->name, i, (unsigned long long)dv->job, dv->worker,
				      dv->cap_w);
		}
		const struct node *n0 = &f->nodes[w0->node];
		if (r->topology == TOPO_SAME_NODE && wk->node != w0->node)
			JFAIL("job %llu same_node: workers on %s and %s", id, nd->name, n0->name);
		if (r->topology == TOPO_SAME_RACK && nd->domain != n0->domain)
			JFAIL("job %llu same_rack: workers under %s and %s", id,
			      f->domains[nd->domain].name, f->domains[n0->domain].name);
		if (r->topology == TOPO_SAME_GROUP && wk->node != w0->node &&
		    (strcmp(nd->group, n0->group) != 0 || nd->group[0] == '\0'))
			JFAIL("job %llu same_group: workers in \"%s\" (%s) and \"%s\" (%s)", id,
			      nd->group, nd->name, n0->group, n0->name);
		for (uint32_t v = 0; v < w; v++)
			if (j->placement[v].node == wk->node && (j->placement[v].mask & wk->mask))
				JFAIL("job %llu: workers %u and %u share a device", id, v, w);
	}
	return true;
#undef JFAIL
}

/* The whole world from scratch: fleet invariants (ledger == recomputed and <= budget, free
 * index), no device held twice or by a job that does not own it, every active job valid,
 * pending jobs hold nothing, the table's counters. */
static bool check_world(const struct world *w, char *msg, size_t len)
{
	const struct fleet *f = &w->f;
	const struct jobs *t = &w->t;
	bool ok = false;
	uint64_t *owner = calloc(f->ndevices ? f->ndevices : 1, sizeof(*owner));
	uint32_t counts[_JOB_STATE_MAX] = {0};

	if (!owner) {
		snprintf(msg, len, "out of memory");
		return false;
	}
	if (!fb_check_fleet(f, msg, len))
		goto out;
	for (uint64_t id = 1; id < t->next_id; id++) {
		const struct job *j = jobs_get(t, id);
		if (!j)
			continue;
		counts[j->state]++;
		if (j->state == JOB_PENDING && j->nplaced != 0) {
			snprintf(msg, len, "job %llu: pending with %u workers placed",
				 (unsigned long long)id, j->nplaced);
			goto out;
		}
		if (!job_state_active(j->state))
			continue;
		if (!check_active_job(f, j, msg, len))
			goto out;
		for (uint32_t k = 0; k < j->nplaced; k++) {
			const struct node *nd = &f->nodes[j->placement[k].node];
			for (uint32_t i = 0; i < nd->ndevices; i++) {
				if (!(j->placement[k].mask >> i & 1))
					continue;
				uint32_t d = nd->first_device + i;
				if (owner[d]) {
					snprintf(msg, len, "device %s/%u held by jobs %llu and %llu",
						 nd->name, i, (unsigned long long)owner[d],
						 (unsigned long long)id);
					goto out;
				}
				owner[d] = id;
			}
		}
	}
	for (uint32_t d = 0; d < f->ndevices; d++)
		if (f->devices[d].node != FLEET_NONE && f->devices[d].job != owner[d]) {
			snprintf(msg, len, "device %u says job %llu, placements say %llu", d,
				 (unsigned long long)f->devices[d].job, (unsigned long long)owner[d]);
			goto out;
		}
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		if (t->count_by_state[s] != counts[s]) {
			snprintf(msg, len, "count_by_state[%s] %u, recount %u",
				 job_state_name((enum job_state)s), t->count_by_state[s], counts[s]);
			goto out;
		}
	ok = true;
out:
	free(owner);
	return ok;
}

static void assert_world(const struct world *w)
{
	char msg[400];
	ck_assert_msg(check_world(w, msg, sizeof(msg)), "%s", msg);
}

/* ---- a snapshot of everything a dry run must leave as it was ---- */

#include "../lib/snapshot.h"

/* ---- a pass log: every job the callback saw ---- */

struct pass_log {
	uint64_t ids[64];
	int state[64];
	char reason[64][80];    /* the job's reason when the callback fired */
	uint32_t n;
};

static int log_cb(void *ud, struct job *j)
{
	struct pass_log *l = ud;
	if (l->n < 64) {
		l->ids[l->n] = j->id;
		l->state[l->n] = j->state;
		snprintf(l->reason[l->n], sizeof(l->reason[0]), "%s", j->reason ? j->reason : "");
	}
	l->n++;
	return 0;
}

/* The reason job id had when the callback last reported it in state s ("" if never). */
static const char *logged_reason(const struct pass_log *l, uint64_t id, enum job_state s)
{
	const char *r = "";
	for (uint32_t i = 0; i < l->n && i < 64; i++)
		if (l->ids[i] == id && l->state[i] == (int)s)
			r = l->reason[i];
	return r;
}

static bool logged(const struct pass_log *l, uint64_t id, enum job_state s)
{
	for (uint32_t i = 0; i < l->n && i < 64; i++)
		if (l->ids[i] == id && l->state[i] == (int)s)
			return true;
	return false;
}

static int pass(struct world *w, struct pass_log *l)
{
	memset(l, 0, sizeof(*l));
	return place_pass(&w->f, &w->t, ++w->now, 1000, log_cb, l);
}

/* ---- fleets ---- */

/* One rack under a roomy hall, nodes of n H100 each (idle 70, TDP 700, min cap 200). */
static void b_h100(struct fleet_builder *b, const uint32_t *counts, uint32_t n, int64_t rack_w)
{
	fb_init(b);
	fb_model(b, "H100", 70, 700, 200)->fp8_tflops = 1979;
	fb_domain(b, "dc", NULL, 10000000);
	fb_domain(b, "rack", "dc", rack_w);
	for (uint32_t i = 0; i < n; i++)
		fb_node(b, fb_str(b, "n%u", i + 1), "rack", NULL, 500, "H100", counts[i]);
}

/* ---- capability mode ---- */

struct count_row {
	uint32_t memory_gib, bandwidth_gbs;
	double tflops;
	uint32_t devices;       /* 0 = no count of 8 meets it */
};

/* Model "M": 80 GiB, 2000 GB/s, 500 TFLOPS. */
static const struct count_row count_rows[] = {
	{0, 0, 0, 1},           {80, 0, 0, 1},      {81, 0, 0, 2},     {160, 0, 0, 2},
	{161, 0, 0, 4},         {300, 0, 0, 4},     {321, 0, 0, 8},    {640, 0, 0, 8},
	{641, 0, 0, 0},         {0, 2000, 0, 1},    {0, 2001, 0, 2},   {0, 8001, 0, 8},
	{0, 16001, 0, 0},       {0, 0, 500, 1},     {0, 0, 500.5, 2},  {0, 0, 2000.5, 8},
	{0, 0, 4000.5, 0},      {100, 5000, 0, 4},  {100, 0, 1500, 4}, {10, 2100, 600, 2},
};

START_TEST(capability_picks_per_model_the_smallest_count_of_1_2_4_8_meeting_every_need)
{
	const struct count_row *row = &count_rows[_i];
	struct world w;
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "M", 50, 500, 100);
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "n1", "rack", NULL, 100, "M", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_need(1, row->memory_gib, row->bandwidth_gbs, row->tflops,
					    false));
	uint32_t cap = 0, dev = 0;
	bool ok = place_model_fits_request(&w.f, &j->req, 0, &cap, &dev);
	ck_assert_msg(ok == (row->devices != 0), "need %u GiB %u GB/s %g TFLOPS: fits %d",
		      row->memory_gib, row->bandwidth_gbs, row->tflops, ok);
	if (row->devices) {
		ck_assert_uint_eq(dev, row->devices);
		ck_assert_uint_eq(cap, 500);
		ck_assert_int_eq(try_place(&w, j), 0);
		ck_assert_uint_eq(popc(j->placement[0].mask), row->devices);
	} else {
		ck_assert_int_eq(try_place(&w, j), 1);
		ck_assert_msg(starts_with(j->reason, "NO_MODEL_MATCH"), "reason %s", j->reason);
	}
	assert_world(&w);
	world_close(&w);
}
END_TEST

struct watts_row {
	uint32_t small_tdp, small_idle, small_min;
	const char *expect;
	uint32_t expect_devices;
};

/* "Big": 160 GiB at 1000 W (one device for a 160 GiB need); "Small": 80 GiB (two). */
static const struct watts_row watts_rows[] = {
	{700, 60, 200, "Big", 1},   /* Small needs 1400 W, Big 1000 W */
	{300, 30, 100, "Small", 2}, /* Small needs 600 W */
};

START_TEST(capability_chooses_the_model_with_fewer_watts_for_the_same_need)
{
	const struct watts_row *row = &watts_rows[_i];
	struct world w;
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "Small", row->small_idle, row->small_tdp, row->small_min);
	fb_model(&b, "Big", 100, 1000, 300)->memory_gib = 160;
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "small", "rack", NULL, 100, "Small", 8);
	fb_node(&b, "big", "rack", NULL, 100, "Big", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_need(1, 160, 0, 0, false));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_str_eq(w.f.models[j->placement[0].model].name, row->expect);
	ck_assert_uint_eq(popc(j->placement[0].mask), row->expect_devices);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(a_need_no_count_of_8_meets_on_any_model_stays_pending_with_no_model_match)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_model(&b, "MI300X", 100, 750, 300)->memory_gib = 192;
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "h", "rack", NULL, 100, "H100", 8);
	fb_node(&b, "m", "rack", NULL, 100, "MI300X", 8);
	world_open(&w, &b);
	/* 8 x 192 = 1536 GiB is the most any model offers. */
	struct job *j = submit(&w, job_need(1, 1537, 0, 0, false));
	ck_assert_int_eq(try_place(&w, j), 1);
	ck_assert_msg(starts_with(j->reason, "NO_MODEL_MATCH"), "reason %s", j->reason);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(j->state, JOB_PENDING);
	ck_assert_msg(starts_with(j->reason, "NO_MODEL_MATCH"), "reason %s", j->reason);
	/* One GiB less fits on eight MI300X. */
	struct job *k = submit(&w, job_need(1, 1536, 0, 0, false));
	ck_assert_int_eq(try_place(&w, k), 0);
	ck_assert_uint_eq(k->placement[0].model, model(&w.f, "MI300X"));
	ck_assert_uint_eq(popc(k->placement[0].mask), 8);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(an_fp8_need_excludes_models_without_fp8)
{
	struct world w;
	struct fleet_builder b;

	/* A100 (no FP8) is the cheaper answer to a 40 GiB need; only FP8 forces H100. */
	fb_init(&b);
	fb_model_full(&b, "A100", "nvidia", "cuda", 40, 0, 50, 400, 150);
	fb_model_full(&b, "H100", "nvidia", "cuda", 80, 1979, 70, 700, 200);
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "a", "rack", NULL, 100, "A100", 8);
	fb_node(&b, "h", "rack", NULL, 100, "H100", 8);
	world_open(&w, &b);
	uint32_t cap, dev;
	struct job *plain = submit(&w, job_need(1, 40, 0, 0, false));
	struct job *fp8 = submit(&w, job_need(1, 40, 0, 0, true));
	ck_assert(!place_model_fits_request(&w.f, &fp8->req, model(&w.f, "A100"), &cap, &dev));
	ck_assert(place_model_fits_request(&w.f, &fp8->req, model(&w.f, "H100"), &cap, &dev));
	ck_assert_int_eq(try_place(&w, plain), 0);
	ck_assert_uint_eq(plain->placement[0].model, model(&w.f, "A100"));
	ck_assert_int_eq(try_place(&w, fp8), 0);
	ck_assert_uint_eq(fp8->placement[0].model, model(&w.f, "H100"));
	/* With the H100s full, an FP8 need waits rather than take an A100. */
	struct job *more = submit(&w, job_need(7, 40, 0, 0, true));
	ck_assert_int_eq(try_place(&w, more), 0);
	struct job *late = submit(&w, job_need(1, 40, 0, 0, true));
	ck_assert_int_eq(try_place(&w, late), 1);
	ck_assert_uint_gt(fleet_node_free(&w.f, node(&w.f, "a"), model(&w.f, "A100")), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- cap auto ---- */

/* One node of 8 H100 (host 500 W): idle load 500 + 8 x 70 = 1060 W. A 2 x 4 gang at cap c
 * needs 8 (c - 70) more. Each row picks the highest cap the rack budget allows, relative to
 * the floor of min_perf (so the rows follow the performance model), plus a slack of fewer
 * than 8 W (so cap + 1 still does not fit). */
enum cap_pos { AT_TDP_MINUS_1, AT_FLOOR, AT_FLOOR_PLUS_1, AT_MIDDLE };

struct auto_row {
	double min_perf;
	enum cap_pos pos;
	int64_t slack;
};

static const struct auto_row auto_rows[] = {
	{0.5, AT_TDP_MINUS_1, 0}, {0.5, AT_TDP_MINUS_1, 7}, {0.5, AT_MIDDLE, 0},
	{0.5, AT_MIDDLE, 3},      {0.6, AT_MIDDLE, 5},      {0.3, AT_FLOOR_PLUS_1, 7},
	{0.5, AT_FLOOR, 0},       {0.3, AT_FLOOR, 6},       {0.1, AT_MIDDLE, 1},
};

static const int64_t idle_1x8 = 500 + 8 * 70;

static uint32_t h100_floor(double min_perf)
{
	struct model h;
	memset(&h, 0, sizeof(h));
	h.tdp_w = 700;
	h.min_cap_w = 200;
	h.idle_w = 70;
	return place_auto_floor(&h, min_perf);
}

START_TEST(cap_auto_places_a_gang_refused_at_tdp_at_the_highest_cap_that_fits)
{
	const struct auto_row *row = &auto_rows[_i];
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	uint32_t fl = h100_floor(row->min_perf), cap;

	ck_assert_uint_lt(fl, 699);
	switch (row->pos) {
	case AT_TDP_MINUS_1: cap = 699; break;
	case AT_FLOOR: cap = fl; break;
	case AT_FLOOR_PLUS_1: cap = fl + 1; break;
	default: cap = (fl + 700) / 2; break;
	}
	b_h100(&b, counts, 1, idle_1x8 + 8 * ((int64_t)cap - 70) + row->slack);
	world_open(&w, &b);
	/* At TDP it is refused; at the row's cap it fits; at cap + 1 it does not. */
	struct job *fixed = job_mk(2, 4, 0, TOPO_ANY);
	ck_assert_int_eq(place_would_fit(&w.f, fixed, 0, NULL, NULL), 0);
	fixed->req.cap_w = cap;
	ck_assert_int_eq(place_would_fit(&w.f, fixed, 0, NULL, NULL), 1);
	fixed->req.cap_w = cap + 1;
	ck_assert_int_eq(place_would_fit(&w.f, fixed, 0, NULL, NULL), 0);
	job_free(fixed);

	struct job *j = job_mk(2, 4, 0, TOPO_ANY);
	j->req.cap_auto = true;
	j->req.min_perf = row->min_perf;
	submit(&w, j);
	uint32_t cap_out = 0;
	ck_assert_int_eq(place_would_fit(&w.f, j, 0, NULL, &cap_out), 1);
	ck_assert_uint_eq(cap_out, cap);
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->nplaced, 2);
	for (uint32_t k = 0; k < 2; k++)
		ck_assert_msg(j->placement[k].cap_w == cap, "worker %u at %u W, the highest "
			      "cap that fits is %u W (floor %u W)", k, j->placement[k].cap_w, cap, fl);
	/* Maximal: one more watt on every device would overrun the rack. */
	ck_assert_int_lt(power_headroom(&w.f, dom(&w.f, "rack")), 8);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w,
			 idle_1x8 + 8 * ((int64_t)cap - 70));
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(cap_auto_keeps_tdp_when_it_fits)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;

	b_h100(&b, counts, 1, idle_1x8 + 8 * 630);
	world_open(&w, &b);
	struct job *j = job_mk(2, 4, 0, TOPO_ANY);
	j->req.cap_auto = true;
	j->req.min_perf = 0.5;
	ck_assert_int_eq(try_place(&w, submit(&w, j)), 0);
	ck_assert_uint_eq(j->placement[0].cap_w, 700);
	ck_assert_uint_eq(j->placement[1].cap_w, 700);
	world_close(&w);
}
END_TEST

static const double floor_perfs[] = {0.5, 0.6, 0.75, 0.8, 0.9, 0.95, 1.0};

START_TEST(cap_auto_never_goes_below_the_floor_and_a_too_high_min_perf_stays_pending)
{
	double min_perf = floor_perfs[_i];
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	uint32_t fl = h100_floor(min_perf);
	ck_assert_uint_ge(fl, 200);
	ck_assert_uint_le(fl, 700);

	/* Budget exactly for the floor: placed at the floor. */
	b_h100(&b, counts, 1, idle_1x8 + 8 * ((int64_t)fl - 70));
	world_open(&w, &b);
	struct job *j = job_mk(2, 4, 0, TOPO_ANY);
	j->req.cap_auto = true;
	j->req.min_perf = min_perf;
	ck_assert_int_eq(try_place(&w, submit(&w, j)), 0);
	ck_assert_uint_eq(j->placement[0].cap_w, fl);
	world_close(&w);

	/* One watt a device short of the floor: pending, for power, nothing held. */
	b_h100(&b, counts, 1, idle_1x8 + 8 * ((int64_t)fl - 70) - 1);
	world_open(&w, &b);
	j = job_mk(2, 4, 0, TOPO_ANY);
	j->req.cap_auto = true;
	j->req.min_perf = min_perf;
	ck_assert_int_eq(try_place(&w, submit(&w, j)), 1);
	ck_assert_int_eq(j->state, JOB_PENDING);
	ck_assert_msg(starts_with(j->reason, "POWER_BUDGET"), "reason %s", j->reason);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle_1x8);
	assert_world(&w);
	world_close(&w);
}
END_TEST

static const struct model perf_models[] = {
	{.name = "H100", .tdp_w = 700, .min_cap_w = 200, .idle_w = 70},
	{.name = "A100", .tdp_w = 400, .min_cap_w = 150, .idle_w = 50},
	{.name = "MI300X", .tdp_w = 750, .min_cap_w = 300, .idle_w = 100},
	{.name = "910B", .tdp_w = 400, .min_cap_w = 250, .idle_w = 80},
	{.name = "L4", .tdp_w = 72, .min_cap_w = 40, .idle_w = 16},
	{.name = "B200", .tdp_w = 1000, .min_cap_w = 1, .idle_w = 140},
	{.name = "odd", .tdp_w = 333, .min_cap_w = 1, .idle_w = 10},
};
#define NPERF_MODELS (sizeof(perf_models) / sizeof(perf_models[0]))

START_TEST(place_perf_and_place_auto_floor_agree)
{
	const struct model *m = &perf_models[_i];

	ck_assert(place_perf(m, m->tdp_w) == 1.0);
	ck_assert(place_perf(m, m->tdp_w + 100) == 1.0);
	for (uint32_t c = 2; c <= m->tdp_w; c++)
		ck_assert_msg(place_perf(m, c) >= place_perf(m, c - 1), "%s: perf not monotonic at %u",
			      m->name, c);
	for (int k = 1; k <= 1000; k++) {
		double mp = k / 1000.0;
		uint32_t fl = place_auto_floor(m, mp);
		ck_assert_msg(place_perf(m, fl) >= mp, "%s min_perf %.3f: floor %u gives perf %.17g",
			      m->name, mp, fl, place_perf(m, fl));
		ck_assert_msg(fl >= m->min_cap_w && fl <= m->tdp_w,
			      "%s min_perf %.3f: floor %u outside %u-%u", m->name, mp, fl,
			      m->min_cap_w, m->tdp_w);
	}
	ck_assert_uint_eq(place_auto_floor(m, 1.0), m->tdp_w);
	ck_assert_uint_eq(place_auto_floor(m, 0.0), m->min_cap_w);
}
END_TEST

/* place.h: "The lowest cap keeping place_perf >= min_perf, never below min_cap_w." */
START_TEST(place_auto_floor_is_the_lowest_cap_meeting_min_perf)
{
	const struct model *m = &perf_models[_i];

	for (int k = 1; k <= 1000; k++) {
		double mp = k / 1000.0;
		uint32_t fl = place_auto_floor(m, mp);
		ck_assert_msg(fl == m->min_cap_w || place_perf(m, fl - 1) < mp,
			      "%s (TDP %u W) min_perf %.3f: floor %u W, but %u W already gives perf "
			      "%.17g",
			      m->name, m->tdp_w, mp, fl, fl - 1, place_perf(m, fl - 1));
	}
}
END_TEST

/* ---- inference min_count ---- */

struct mincount_row {
	uint32_t min_count;
	bool placed;
};

static const struct mincount_row mincount_rows[] = {
	{3, true}, {1, true}, {2, true}, {4, false}, {0, false},
};

START_TEST(inference_with_min_count_runs_with_the_replicas_that_fit_and_grows_later)
{
	const struct mincount_row *row = &mincount_rows[_i];
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *blocker = running(&w, job_mk(1, 5, 0, TOPO_ANY));
	struct job *j = submit(&w, job_inference(5, row->min_count, 1, TOPO_ANY));
	int rc = try_place(&w, j);
	if (!row->placed) {
		ck_assert_int_eq(rc, 1);
		ck_assert_int_eq(j->state, JOB_PENDING);
		ck_assert_uint_eq(j->nplaced, 0);
		ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0x1f);
		assert_world(&w);
		world_close(&w);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(j->state, JOB_PLACED);
	ck_assert_uint_eq(j->nplaced, 3);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0xff);
	assert_world(&w);

	/* Nothing freed: a pass leaves it at 3 and does not report it. */
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_uint_eq(j->nplaced, 3);
	ck_assert(!logged(&log, j->id, JOB_PLACED));

	struct err e = {0};
	ck_assert_int_eq(place_cancel(&w.f, &w.t, blocker, ++w.now, &e), 0);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_uint_eq(j->nplaced, 5);
	ck_assert_int_eq(j->state, JOB_PLACED);
	ck_assert_msg(logged(&log, j->id, JOB_PLACED), "the callback did not fire for the "
		      "grown job");
	ck_assert_uint_eq(popc(w.f.nodes[0].alloc_mask), 5);
	for (uint32_t k = 0; k < 5; k++)
		ck_assert_uint_eq(popc(j->placement[k].mask), 1);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* An inference job grown later keeps its topology: the rule holds for the whole job, not
 * only for the first min_count replicas. r1 (rack-1, group g1) has 4 devices; r2 (rack-2,
 * group g2) has 8, busy at first, then freed. */
static const enum job_topology grow_topos[] = {TOPO_SAME_RACK, TOPO_SAME_GROUP, TOPO_SAME_NODE};

START_TEST(growing_an_inference_job_keeps_its_topology)
{
	enum job_topology topo = grow_topos[_i];
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	struct err e = {0};

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack-1", "dc", 1000000);
	fb_domain(&b, "rack-2", "dc", 1000000);
	fb_node(&b, "r1", "rack-1", "g1", 100, "H100", 4);
	fb_node(&b, "r2", "rack-2", "g2", 100, "H100", 8);
	world_open(&w, &b);
	struct job *busy = running(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_uint_eq(busy->placement[0].node, node(&w.f, "r2"));
	/* 4 of 6 wanted fit on r1: placed with min_count 4 (docs/placement.md: "placed once
	 * at least min_replicas replicas fit"). */
	struct job *j = submit(&w, job_inference(6, 4, 1, topo));
	ck_assert_msg(try_place(&w, j) == 0, "%s job with min_count 4 not placed: %s",
		      job_topology_name(topo), j->reason);
	ck_assert_uint_eq(j->nplaced, 4);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, busy, ++w.now, &e), 0);
	ck_assert_int_ge(pass(&w, &log), 0);
	for (uint32_t k = 0; k < j->nplaced; k++)
		ck_assert_msg(j->placement[k].node == node(&w.f, "r1"),
			      "%s job grew replica %u onto %s", job_topology_name(topo), k,
			      w.f.nodes[j->placement[k].node].name);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- spread ---- */

struct spread_row {
	uint32_t count, racks, nodes;
};

static const struct spread_row spread_rows[] = {
	{2, 2, 2}, {3, 3, 3}, {4, 3, 4}, {6, 3, 6}, {8, 3, 6},
};

START_TEST(spread_puts_replicas_on_distinct_racks_first_then_distinct_nodes)
{
	const struct spread_row *row = &spread_rows[_i];
	struct world w;
	struct fleet_builder b;

	/* rack-1 has most room and the tightest nodes: first fit would stack it. */
	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack-1", "dc", 1000000);
	fb_domain(&b, "rack-2", "dc", 1000000);
	fb_domain(&b, "rack-3", "dc", 1000000);
	for (int i = 0; i < 4; i++)
		fb_node(&b, fb_str(&b, "a%d", i), "rack-1", NULL, 100, "H100", 2);
	fb_node(&b, "b0", "rack-2", NULL, 100, "H100", 3);
	fb_node(&b, "c0", "rack-3", NULL, 100, "H100", 3);
	world_open(&w, &b);
	struct job *j = submit(&w, job_inference(row->count, 0, 1, TOPO_SPREAD));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->nplaced, row->count);
	ck_assert_msg(racks_used(&w.f, j) == row->racks, "%u replicas on %u racks, want %u",
		      row->count, racks_used(&w.f, j), row->racks);
	ck_assert_msg(nodes_used(j) == row->nodes, "%u replicas on %u nodes, want %u", row->count,
		      nodes_used(j), row->nodes);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- training locality ---- */

struct locality_row {
	uint32_t count, racks;
};

static const struct locality_row locality_rows[] = {{4, 1}, {2, 1}, {5, 2}, {7, 2}, {9, 3}};

START_TEST(a_training_gang_with_topology_any_lands_in_the_fewest_racks_possible)
{
	const struct locality_row *row = &locality_rows[_i];
	struct world w;
	struct fleet_builder b;

	/* Racks declared smallest first; the big rack's nodes are the looser fit. */
	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack-b", "dc", 1000000);
	fb_domain(&b, "rack-c", "dc", 1000000);
	fb_domain(&b, "rack-a", "dc", 1000000);
	for (int i = 0; i < 3; i++)
		fb_node(&b, fb_str(&b, "b%d", i), "rack-b", NULL, 100, "H100", 8);
	for (int i = 0; i < 2; i++)
		fb_node(&b, fb_str(&b, "c%d", i), "rack-c", NULL, 100, "H100", 8);
	for (int i = 0; i < 2; i++)
		fb_node(&b, fb_str(&b, "a%d", i), "rack-a", NULL, 100, "H100", 16);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(row->count, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_msg(racks_used(&w.f, j) == row->racks, "%u x 8 on %u racks, fewest is %u",
		      row->count, racks_used(&w.f, j), row->racks);
	if (row->racks == 1 && row->count > 3)
		ck_assert_uint_eq(w.f.nodes[j->placement[0].node].domain, dom(&w.f, "rack-a"));
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- backfill ---- */

/* Two 8 x H100 nodes and one 8 x A100 node. r_short holds one H100 node until now0 + 1000,
 * r_long 4 devices of the other until now0 + 5000, both not preemptible. */
struct backfill {
	struct world w;
	struct job *r_short, *r_long, *head;
	int64_t start;          /* the head's estimated start */
};

static void backfill_open(struct backfill *bf)
{
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_model(&b, "A100", 50, 400, 150);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack", "dc", 1000000);
	fb_node(&b, "h1", "rack", NULL, 100, "H100", 8);
	fb_node(&b, "h2", "rack", NULL, 100, "H100", 8);
	fb_node(&b, "a1", "rack", NULL, 100, "A100", 8);
	world_open(&bf->w, &b);
	bf->r_short = job_mk(1, 8, 0, TOPO_ANY);
	job_models(bf->r_short, "H100", NULL);
	bf->r_short->req.duration_s = 1000;
	running(&bf->w, bf->r_short);
	bf->r_long = job_mk(1, 4, 0, TOPO_ANY);
	job_models(bf->r_long, "H100", NULL);
	bf->r_long->req.duration_s = 5000;
	running(&bf->w, bf->r_long);
	bf->head = job_mk(1, 8, 0, TOPO_ANY);
	job_models(bf->head, "H100", NULL);
	bf->head->priority = 10;
	bf->head->req.duration_s = 100;
	submit(&bf->w, bf->head);
	bf->start = bf->r_short->placed_at + 1000;
}

static struct job *lower(struct backfill *bf, const char *model_name, int64_t duration)
{
	struct job *j = job_mk(1, 4, 0, TOPO_ANY);
	job_models(j, model_name, NULL);
	j->req.duration_s = duration;
	return submit(&bf->w, j);
}

START_TEST(a_blocked_head_gets_a_reservation_that_holds_back_a_longer_lower_job)
{
	struct backfill bf;
	struct pass_log log;

	backfill_open(&bf);
	struct job *slow = lower(&bf, "H100", 2000);
	ck_assert_int_eq(place_would_fit(&bf.w.f, slow, 0, NULL, NULL), 1);
	ck_assert_int_ge(pass(&bf.w, &log), 0);
	ck_assert_int_eq(bf.head->state, JOB_PENDING);
	ck_assert_int_eq(slow->state, JOB_PENDING);
	ck_assert_uint_eq(slow->nplaced, 0);
	ck_assert_msg(starts_with(slow->reason, "RESERVED_FOR_HEAD"), "reason %s", slow->reason);
	int64_t start;
	uint64_t after;
	ck_assert_int_eq(place_estimate_start(&bf.w.f, &bf.w.t, bf.head, bf.w.now, &start, &after),
			 1);
	ck_assert_int_eq(start, bf.start);
	ck_assert_uint_eq(after, bf.r_short->id);
	assert_world(&bf.w);
	world_close(&bf.w);
}
END_TEST

START_TEST(a_lower_job_with_the_default_duration_also_waits_behind_the_head)
{
	struct backfill bf;
	struct pass_log log;

	backfill_open(&bf);
	struct job *unknown = lower(&bf, "H100", 0); /* JOB_DEFAULT_DURATION_S > 1000 s */
	ck_assert_int_ge(pass(&bf.w, &log), 0);
	ck_assert_int_eq(unknown->state, JOB_PENDING);
	ck_assert_msg(starts_with(unknown->reason, "RESERVED_FOR_HEAD"), "reason %s",
		      unknown->reason);
	world_close(&bf.w);
}
END_TEST

START_TEST(a_short_lower_job_that_ends_before_the_heads_start_runs)
{
	struct backfill bf;
	struct pass_log log;

	backfill_open(&bf);
	struct job *slow = lower(&bf, "H100", 2000);
	/* Ends exactly at the head's estimated start (the pass runs at now + 1):
	 * docs/placement.md, "now + duration <= estimated start of the head". */
	struct job *quick = lower(&bf, "H100", bf.start - (bf.w.now + 1));
	ck_assert_int_ge(pass(&bf.w, &log), 0);
	ck_assert_int_eq(slow->state, JOB_PENDING);
	ck_assert_int_eq(quick->state, JOB_PLACED);
	ck_assert(logged(&log, quick->id, JOB_PLACED));
	ck_assert_int_eq(bf.head->state, JOB_PENDING);
	assert_world(&bf.w);
	world_close(&bf.w);
}
END_TEST

START_TEST(a_lower_job_on_models_the_head_cannot_use_runs_regardless)
{
	struct backfill bf;
	struct pass_log log;

	backfill_open(&bf);
	struct job *slow = lower(&bf, "H100", 2000);
	struct job *other = lower(&bf, "A100", 1000000);
	ck_assert_int_ge(pass(&bf.w, &log), 0);
	ck_assert_int_eq(slow->state, JOB_PENDING);
	ck_assert_int_eq(other->state, JOB_PLACED);
	ck_assert_uint_eq(other->placement[0].model, model(&bf.w.f, "A100"));
	assert_world(&bf.w);
	world_close(&bf.w);
}
END_TEST

/* ---- preemption ---- */

static struct job *victim(struct world *w, uint32_t devices, int32_t prio, bool preemptible,
			  uint32_t cap_w)
{
	struct job *j = job_mk(1, devices, cap_w, TOPO_ANY);
	j->priority = prio;
	j->preemptible = preemptible;
	return running(w, j);
}

START_TEST(a_high_job_preempts_a_preemptible_lower_job)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *v = victim(&w, 8, 0, true, 700);
	struct job *h = job_mk(1, 8, 400, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(h->state, JOB_PLACED);
	ck_assert_int_eq(v->state, JOB_PENDING);
	char by[64];
	snprintf(by, sizeof(by), "PREEMPTED: by job %llu", (unsigned long long)h->id);
	ck_assert_msg(starts_with(logged_reason(&log, v->id, JOB_PENDING), by),
		      "victim reported with reason \"%s\"", logged_reason(&log, v->id, JOB_PENDING));
	ck_assert_uint_eq(v->requeues, 1);
	ck_assert_uint_eq(v->nplaced, 0);
	ck_assert(logged(&log, v->id, JOB_PENDING));
	ck_assert(logged(&log, h->id, JOB_PLACED));
	for (uint32_t d = 0; d < w.f.ndevices; d++)
		ck_assert_uint_eq(w.f.devices[d].job, h->id);
	/* The victim's 700 W are gone: only h's 400 W caps remain charged. */
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle_1x8 + 8 * (400 - 70));
	ck_assert_int_eq(w.f.domains[dom(&w.f, "dc")].reserved_w, idle_1x8 + 8 * (400 - 70));
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* The victim's reason is what explains its wait: the same pass must not replace it with
 * a placement failure (the retry it makes at once cannot succeed: h holds the devices). */
START_TEST(a_preempted_job_still_says_preempted_after_the_pass)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *v = victim(&w, 8, 0, true, 700);
	struct job *h = job_mk(1, 8, 400, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(v->state, JOB_PENDING);
	ck_assert_msg(starts_with(v->reason, "PREEMPTED"), "after the pass the victim's reason is "
		      "\"%s\"", v->reason);
	world_close(&w);
}
END_TEST

struct shield_row {
	int32_t prio;
	bool preemptible;
};

static const struct shield_row shield_rows[] = {{5, true}, {9, true}, {0, false}, {4, false}};

START_TEST(preemption_never_takes_equal_or_higher_priority_or_non_preemptible_jobs)
{
	const struct shield_row *row = &shield_rows[_i];
	static const uint32_t counts[] = {8, 2};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	struct job *v = victim(&w, 8, row->prio, row->preemptible, 0);
	/* A low, preemptible bystander whose 2 devices cannot help makes the pass search. */
	struct job *by = victim(&w, 2, -5, true, 0);
	struct job *h = job_mk(1, 8, 0, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	struct job *out[4];
	bool fits = true;
	ck_assert_int_eq(place_find_victims(&w.f, &w.t, h, out, 4, &fits), 0);
	ck_assert(!fits);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(v->state, JOB_PLACED);
	ck_assert_uint_eq(v->requeues, 0);
	ck_assert_int_eq(by->state, JOB_PLACED);
	ck_assert_int_eq(h->state, JOB_PENDING);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(preemption_takes_one_big_victim_rather_than_two_small)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *s1 = victim(&w, 2, 0, true, 0);
	struct job *s2 = victim(&w, 2, 0, true, 0);
	struct job *big = victim(&w, 4, 0, true, 0);
	struct job *h = job_mk(1, 4, 0, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	struct job *out[4];
	bool fits = false;
	ck_assert_int_eq(place_find_victims(&w.f, &w.t, h, out, 4, &fits), 1);
	ck_assert(fits);
	ck_assert_uint_eq(out[0]->id, big->id);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(h->state, JOB_PLACED);
	ck_assert_int_eq(big->state, JOB_PENDING);
	ck_assert_int_eq(s1->state, JOB_PLACED);
	ck_assert_int_eq(s2->state, JOB_PLACED);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(preemption_takes_the_lowest_priority_victim_first)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct pass_log log;

	/* hi (priority 2, 4 devices) alone would do; lo (priority 1, 2 devices) plus the 2 free
	 * devices also does, and lo has the lower priority. */
	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *hi = victim(&w, 4, 2, true, 0);
	struct job *lo = victim(&w, 2, 1, true, 0);
	struct job *h = job_mk(1, 4, 0, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	struct job *out[4];
	bool fits = false;
	ck_assert_int_eq(place_find_victims(&w.f, &w.t, h, out, 4, &fits), 1);
	ck_assert(fits);
	ck_assert_uint_eq(out[0]->id, lo->id);
	ck_assert_int_ge(pass(&w, &log), 0);
	ck_assert_int_eq(h->state, JOB_PLACED);
	ck_assert_int_eq(lo->state, JOB_PENDING);
	ck_assert_int_eq(hi->state, JOB_PLACED);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(find_victims_changes_nothing)
{
	static const uint32_t counts[] = {8, 8};
	struct world w;
	struct fleet_builder b;
	struct snap s;
	struct err e = {0};

	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	victim(&w, 8, 0, true, 600);
	struct job *d = victim(&w, 4, 1, true, 500);
	victim(&w, 2, 1, true, 0);
	/* d's node drains: releasing d in a search must not finish the drain. */
	ck_assert_int_eq(fleet_node_drain(&w.f, d->placement[0].node, &e), 0);
	struct job *h = job_mk(2, 8, 0, TOPO_ANY);
	h->priority = 5;
	submit(&w, h);
	struct job *small = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	small->priority = 3;
	struct job *never = submit(&w, job_mk(3, 8, 0, TOPO_ANY));
	never->priority = 9;

	struct job *out[8];
	bool fits;
	struct job *ask[] = {h, small, never};
	for (int i = 0; i < 3; i++) {
		snap_take(&w, &s);
		int n = place_find_victims(&w.f, &w.t, ask[i], out, 8, &fits);
		ck_assert_int_ge(n, 0);
		ck_assert(fits == (n > 0));
		snap_assert_same(&w, &s, "place_find_victims");
		snap_free(&s);
	}
	world_close(&w);
}
END_TEST

/* ---- start estimates ---- */

/* One 8 x H100 node: a (4 devices) ends at 1001 + 500, c (4 devices) at 1002 + 100. */
static void estimate_open(struct world *w, struct job **a, struct job **c)
{
	static const uint32_t counts[] = {8};
	struct fleet_builder b;

	b_h100(&b, counts, 1, 1000000);
	world_open(w, &b);
	*a = job_mk(1, 4, 0, TOPO_ANY);
	(*a)->req.duration_s = 500;
	running(w, *a);
	*c = job_mk(1, 4, 0, TOPO_ANY);
	(*c)->req.duration_s = 100;
	running(w, *c);
}

START_TEST(estimate_start_is_now_when_the_job_fits)
{
	struct world w;
	struct job *a, *c;
	struct err e = {0};
	int64_t start = -1;
	uint64_t after = 99;

	estimate_open(&w, &a, &c);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, c, ++w.now, &e), 0);
	struct job *q = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q, w.now, &start, &after), 1);
	ck_assert_int_eq(start, w.now);
	ck_assert_uint_eq(after, 0);
	world_close(&w);
}
END_TEST

START_TEST(estimate_start_is_the_end_of_the_job_whose_release_makes_room)
{
	struct world w;
	struct job *a, *c;
	int64_t start;
	uint64_t after;

	estimate_open(&w, &a, &c);
	ck_assert_int_eq(c->placed_at + 100, job_estimated_end(c));
	struct job *q4 = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q4, w.now, &start, &after), 1);
	ck_assert_int_eq(start, c->placed_at + 100);
	ck_assert_uint_eq(after, c->id);
	/* The whole node needs both ended: a's end, the later one. */
	struct job *q8 = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q8, w.now, &start, &after), 1);
	ck_assert_int_eq(start, a->placed_at + 500);
	ck_assert_uint_eq(after, a->id);
	/* An overdue job's end is in the past: the estimate is now. */
	w.now = a->placed_at + 10000;
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q8, w.now, &start, &after), 1);
	ck_assert_int_eq(start, w.now);
	ck_assert_uint_eq(after, a->id);
	world_close(&w);
}
END_TEST

START_TEST(estimate_start_uses_the_default_duration_when_none_is_given)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	int64_t start;
	uint64_t after;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *a = running(&w, job_mk(1, 8, 0, TOPO_ANY));
	struct job *q = submit(&w, job_mk(1, 1, 0, TOPO_ANY));
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q, w.now, &start, &after), 1);
	ck_assert_int_eq(start, a->placed_at + JOB_DEFAULT_DURATION_S);
	ck_assert_uint_eq(after, a->id);
	world_close(&w);
}
END_TEST

START_TEST(estimate_start_is_unknown_when_the_job_could_never_fit)
{
	struct world w;
	struct job *a, *c;
	int64_t start = 7;
	uint64_t after = 7;

	estimate_open(&w, &a, &c);
	struct job *q = submit(&w, job_mk(2, 8, 0, TOPO_ANY));
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, q, w.now, &start, &after), 0);
	struct job *nm = job_mk(1, 1, 0, TOPO_ANY);
	job_models(nm, "B200", NULL);
	submit(&w, nm);
	ck_assert_int_eq(place_estimate_start(&w.f, &w.t, nm, w.now, &start, &after), 0);
	world_close(&w);
}
END_TEST

START_TEST(estimate_start_changes_nothing)
{
	struct world w;
	struct job *a, *c;
	struct snap s;
	struct err e = {0};
	int64_t start;
	uint64_t after;

	estimate_open(&w, &a, &c);
	/* c's node drains: releasing c in the estimate must not finish the drain. */
	ck_assert_int_eq(fleet_node_drain(&w.f, 0, &e), 0);
	ck_assert_int_eq(fleet_node_resume(&w.f, 0, &e), 0);
	ck_assert_int_eq(fleet_node_drain(&w.f, 0, &e), 0);
	ck_assert_int_eq(w.f.nodes[0].state, NODE_DRAINING);
	struct job *qs[] = {
		submit(&w, job_mk(1, 4, 0, TOPO_ANY)),
		submit(&w, job_mk(1, 8, 0, TOPO_ANY)),
		submit(&w, job_mk(2, 8, 0, TOPO_ANY)),
	};
	for (int i = 0; i < 3; i++) {
		snap_take(&w, &s);
		ck_assert_int_ge(place_estimate_start(&w.f, &w.t, qs[i], w.now, &start, &after), 0);
		snap_assert_same(&w, &s, "place_estimate_start");
		snap_free(&s);
	}
	ck_assert_int_eq(fleet_node_resume(&w.f, 0, &e), 0);
	for (int i = 0; i < 3; i++) {
		snap_take(&w, &s);
		ck_assert_int_ge(place_estimate_start(&w.f, &w.t, qs[i], w.now, &start, &after), 0);
		snap_assert_same(&w, &s, "place_estimate_start");
		snap_free(&s);
	}
	world_close(&w);
}
END_TEST

/* ---- random fleets and jobs (shared by determinism and the property test) ---- */

#include "../lib/random_world.h"

/* ---- determinism ---- */

static void dump_jobs(const struct world *w, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (uint64_t id = 1; id < w->t.next_id && n < len; id++) {
		const struct job *j = jobs_get(&w->t, id);
		n += (size_t)snprintf(out + n, len - n, "%llu:%s:%u:%u", (unsigned long long)id,
				      job_state_name(j->state), j->nplaced, j->requeues);
		for (uint32_t k = 0; k < j->nplaced && n < len; k++)
			n += (size_t)snprintf(out + n, len - n, " %u/%#llx/%u/%u",
					      j->placement[k].node,
					      (unsigned long long)j->placement[k].mask,
					      j->placement[k].model, j->placement[k].cap_w);
		if (n < len)
			n += (size_t)snprintf(out + n, len - n, "; ");
	}
}

/* A mixed scenario from a seed: submissions, tries, passes, cancels, ends, drains. */
static void mixed_script(uint32_t seed, struct world *w, char *out, size_t len)
{
	struct fleet_builder b;
	struct err e = {0};

	rng_state = 0xD1B54A32D192ED03ull * seed + 7;
	random_fleet(&b);
	world_open(w, &b);
	for (int step = 0; step < 80; step++) {
		uint32_t roll = rnd_below(100);
		w->now += 1 + rnd_below(600);
		if (roll < 40) {
			struct job *j = random_job();
			j->submitted_at = w->now;
			ck_assert_int_eq(jobs_add(&w->t, j), 0);
		} else if (roll < 70) {
			ck_assert_int_ge(place_pass(&w->f, &w->t, w->now, 1 + rnd_below(6), NULL, NULL),
					 0);
		} else if (roll < 80 && w->t.next_id > 1) {
			struct job *j = jobs_get(&w->t, 1 + rnd_below((uint32_t)w->t.next_id - 1));
			if (!job_state_finished(j->state))
				ck_assert_int_eq(place_cancel(&w->f, &w->t, j, w->now, &e), 0);
		} else if (roll < 90 && w->t.nactive > 0) {
			struct job *j = w->t.active[rnd_below(w->t.nactive)];
			place_release(&w->f, j);
			j->finished_at = w->now;
			ck_assert_int_eq(jobs_set_state(&w->t, j, JOB_SUCCEEDED), 0);
		} else if (roll < 95) {
			ck_assert_int_eq(fleet_node_drain(&w->f, rnd_below(w->f.nnodes), &e), 0);
		} else {
			ck_assert_int_eq(fleet_node_resume(&w->f, rnd_below(w->f.nnodes), &e), 0);
		}
	}
	dump_jobs(w, out, len);
}

START_TEST(the_same_seed_gives_identical_placements_across_two_runs)
{
	static char a[32768], c[32768];
	unsigned placed = 0;

	for (uint32_t seed = 1; seed <= 40; seed++) {
		struct world w1, w2;
		mixed_script(seed, &w1, a, sizeof(a));
		mixed_script(seed, &w2, c, sizeof(c));
		ck_assert_msg(strcmp(a, c) == 0, "seed %u differs:\n%s\n%s", seed, a, c);
		placed += w1.t.count_by_state[JOB_PLACED] + w1.t.count_by_state[JOB_SUCCEEDED];
		world_close(&w1);
		world_close(&w2);
	}
	ck_assert_uint_gt(placed, 100);
}
END_TEST

/* ---- the property test ---- */

struct prop {
	struct world w;
	uint32_t preemptions, grown;
};

/* Every change the pass reports: a victim goes back pending only for a strictly higher
 * priority preemptor and only when preemptible; a placed job holds >= min_count. */
static int prop_cb(void *ud, struct job *j)
{
	struct prop *p = ud;
	char msg[400];

	if (j->state == JOB_PENDING) {
		unsigned long long by = 0;
		int prio = 0;
		ck_assert_msg(j->reason && sscanf(j->reason, "PREEMPTED: by job %llu (priority %d)",
						  &by, &prio) == 2,
			      "job %llu back to pending with reason %s", (unsigned long long)j->id,
			      j->reason);
		const struct job *pre = jobs_get(&p->w.t, by);
		ck_assert_ptr_nonnull(pre);
		ck_assert_msg(pre->priority > j->priority && prio == pre->priority,
			      "job %llu (priority %d) preempted by job %llu (priority %d)",
			      (unsigned long long)j->id, j->priority, by, pre->priority);
		ck_assert_msg(j->preemptible, "non-preemptible job %llu preempted",
			      (unsigned long long)j->id);
		ck_assert_uint_eq(j->nplaced, 0);
		p->preemptions++;
		return 0;
	}
	ck_assert_msg(job_state_active(j->state), "callback for a %s job",
		      job_state_name(j->state));
	ck_assert_msg(check_active_job(&p->w.f, j, msg, sizeof(msg)), "in the pass: %s", msg);
	if (j->placed_at < p->w.now)
		p->grown++; /* reported again later: it grew */
	return 0;
}

#define PROP_FLEETS 300
#define PROP_STEPS 80

START_TEST(random_fleets_and_mixed_operations_keep_every_invariant)
{
	struct fleet_builder b;
	char msg[400];
	unsigned placed = 0, refused = 0, preemptions = 0, grown = 0, capability = 0, autos = 0;

	for (uint32_t seed = 1; seed <= PROP_FLEETS; seed++) {
		struct prop p;
		struct world *w = &p.w;
		struct err e = {0};
		const char *op = "import";

		memset(&p, 0, sizeof(p));
		rng_state = 0x9E3779B97F4A7C15ull * seed + 3;
		random_fleet(&b);
		world_open(w, &b);
		for (uint32_t d = 0; d < w->f.ndevices; d++)
			if (rnd_below(25) == 0)
				fleet_device_set_health(&w->f, d, HEALTH_FAILED);
		for (int step = 0; step < PROP_STEPS; step++) {
			uint32_t roll = rnd_below(100);
			int rc;
			w->now += 1 + rnd_below(400);
			if (roll < 35) {
				op = "submit";
				struct job *j = random_job();
				j->submitted_at = w->now;
				ck_assert_int_eq(jobs_add(&w->t, j), 0);
				if (rnd_below(2)) {
					op = "submit+try";
					rc = place_try(&w->f, &w->t, j, w->now);
					ck_assert_msg(rc == 0 || rc == 1, "seed %u step %d: try %d", seed,
						      step, rc);
					if (rc == 0) {
						placed++;
						capability += j->req.capability;
						autos += j->req.cap_auto;
						ck_assert_msg(check_active_job(&w->f, j, msg, sizeof(msg)),
							      "seed %u step %d: %s", seed, step, msg);
					} else {
						refused++;
						ck_assert(j->state == JOB_PENDING && j->nplaced == 0 &&
							  j->reason != NULL);
					}
				}
			} else if (roll < 60) {
				op = "pass";
				rc = place_pass(&w->f, &w->t, w->now, 1 + rnd_below(4), prop_cb, &p);
				ck_assert_msg(rc >= 0, "seed %u step %d: pass %d", seed, step, rc);
			} else if (roll < 68 && w->t.next_id > 1) {
				op = "cancel";
				struct job *j = jobs_get(&w->t, 1 + rnd_below((uint32_t)w->t.next_id - 1));
				if (!job_state_finished(j->state))
					ck_assert_int_eq(place_cancel(&w->f, &w->t, j, w->now, &e), 0);
			} else if (roll < 80 && w->t.nactive > 0) {
				op = "run/finish";
				struct job *j = w->t.active[rnd_below(w->t.nactive)];
				if (j->state == JOB_PLACED) {
					ck_assert_int_eq(jobs_set_state(&w->t, j, JOB_RUNNING), 0);
				} else {
					place_release(&w->f, j);
					j->finished_at = w->now;
					ck_assert_int_eq(jobs_set_state(&w->t, j, JOB_SUCCEEDED), 0);
				}
			} else if (roll < 86) {
				op = "drain";
				ck_assert_int_eq(fleet_node_drain(&w->f, rnd_below(w->f.nnodes), &e), 0);
			} else if (roll < 93) {
				op = "resume";
				ck_assert_int_eq(fleet_node_resume(&w->f, rnd_below(w->f.nnodes), &e), 0);
			} else {
				op = "health";
				fleet_device_set_health(&w->f, rnd_below(w->f.ndevices),
							rnd_below(3) ? HEALTH_OK : HEALTH_FAILED);
			}
			ck_assert_msg(check_world(w, msg, sizeof(msg)), "seed %u step %d (%s): %s",
				      seed, step, op, msg);
		}
		for (uint64_t id = 1; id < w->t.next_id; id++) {
			struct job *j = jobs_get(&w->t, id);
			if (!job_state_finished(j->state))
				ck_assert_int_eq(place_cancel(&w->f, &w->t, j, ++w->now, &e), 0);
		}
		for (uint32_t d = 0; d < w->f.ndomains; d++)
			ck_assert_msg(w->f.domains[d].reserved_w == fb_idle_load(&w->f, d),
				      "seed %u: %s holds %lld after cancelling all, idle is %lld", seed,
				      w->f.domains[d].name, (long long)w->f.domains[d].reserved_w,
				      (long long)fb_idle_load(&w->f, d));
		preemptions += p.preemptions;
		grown += p.grown;
		world_close(w);
	}
	/* The generator must reach every feature, or the test proves little. */
	ck_assert_uint_gt(placed, 200);
	ck_assert_uint_gt(refused, 200);
	ck_assert_uint_gt(preemptions, 20);
	ck_assert_uint_gt(grown, 5);
	ck_assert_uint_gt(capability, 30);
	ck_assert_uint_gt(autos, 30);
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc;

	tc = tcase_create("capability");
	tcase_add_loop_test(tc, capability_picks_per_model_the_smallest_count_of_1_2_4_8_meeting_every_need,
			    0, (int)(sizeof(count_rows) / sizeof(count_rows[0])));
	tcase_add_loop_test(tc, capability_chooses_the_model_with_fewer_watts_for_the_same_need, 0,
			    (int)(sizeof(watts_rows) / sizeof(watts_rows[0])));
	tcase_add_test(tc, a_need_no_count_of_8_meets_on_any_model_stays_pending_with_no_model_match);
	tcase_add_test(tc, an_fp8_need_excludes_models_without_fp8);
	suite_add_tcase(s, tc);

	tc = tcase_create("cap auto");
	tcase_add_loop_test(tc, cap_auto_places_a_gang_refused_at_tdp_at_the_highest_cap_that_fits,
			    0, (int)(sizeof(auto_rows) / sizeof(auto_rows[0])));
	tcase_add_test(tc, cap_auto_keeps_tdp_when_it_fits);
	tcase_add_loop_test(tc, cap_auto_never_goes_below_the_floor_and_a_too_high_min_perf_stays_pending,
			    0, (int)(sizeof(floor_perfs) / sizeof(floor_perfs[0])));
	tcase_add_loop_test(tc, place_perf_and_place_auto_floor_agree, 0, (int)NPERF_MODELS);
	tcase_add_loop_test(tc, place_auto_floor_is_the_lowest_cap_meeting_min_perf, 0,
			    (int)NPERF_MODELS);
	suite_add_tcase(s, tc);

	tc = tcase_create("inference");
	tcase_add_loop_test(tc, inference_with_min_count_runs_with_the_replicas_that_fit_and_grows_later,
			    0, (int)(sizeof(mincount_rows) / sizeof(mincount_rows[0])));
	tcase_add_loop_test(tc, growing_an_inference_job_keeps_its_topology, 0,
			    (int)(sizeof(grow_topos) / sizeof(grow_topos[0])));
	tcase_add_loop_test(tc, spread_puts_replicas_on_distinct_racks_first_then_distinct_nodes, 0,
			    (int)(sizeof(spread_rows) / sizeof(spread_rows[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("locality");
	tcase_add_loop_test(tc, a_training_gang_with_topology_any_lands_in_the_fewest_racks_possible,
			    0, (int)(sizeof(locality_rows) / sizeof(locality_rows[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("backfill");
	tcase_add_test(tc, a_blocked_head_gets_a_reservation_that_holds_back_a_longer_lower_job);
	tcase_add_test(tc, a_lower_job_with_the_default_duration_also_waits_behind_the_head);
	tcase_add_test(tc, a_short_lower_job_that_ends_before_the_heads_start_runs);
	tcase_add_test(tc, a_lower_job_on_models_the_head_cannot_use_runs_regardless);
	suite_add_tcase(s, tc);

	tc = tcase_create("preemption");
	tcase_add_test(tc, a_high_job_preempts_a_preemptible_lower_job);
	tcase_add_test(tc, a_preempted_job_still_says_preempted_after_the_pass);
	tcase_add_loop_test(tc, preemption_never_takes_equal_or_higher_priority_or_non_preemptible_jobs,
			    0, (int)(sizeof(shield_rows) / sizeof(shield_rows[0])));
	tcase_add_test(tc, preemption_takes_one_big_victim_rather_than_two_small);
	tcase_add_test(tc, preemption_takes_the_lowest_priority_victim_first);
	tcase_add_test(tc, find_victims_changes_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("estimate");
	tcase_add_test(tc, estimate_start_is_now_when_the_job_fits);
	tcase_add_test(tc, estimate_start_is_the_end_of_the_job_whose_release_makes_room);
	tcase_add_test(tc, estimate_start_uses_the_default_duration_when_none_is_given);
	tcase_add_test(tc, estimate_start_is_unknown_when_the_job_could_never_fit);
	tcase_add_test(tc, estimate_start_changes_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("determinism");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, the_same_seed_gives_identical_placements_across_two_runs);
	suite_add_tcase(s, tc);

	tc = tcase_create("property");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, random_fleets_and_mixed_operations_keep_every_invariant);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(engine_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
