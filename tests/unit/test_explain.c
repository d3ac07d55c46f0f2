/*
 * test_explain — explain: its verdict agrees with placement (FITS_NOW exactly when the job
 * fits, otherwise the code place_try gives), it changes nothing (fleet, jobs, epoch, later
 * placements; the drain what-if included), the funnel's stage counts add up, and every
 * reason code and fix can be produced.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fleet_builder.h"
#include "explain.h"
#include "place.h"
#include "power.h"

/* ---- a world: one fleet, one job table, a clock ---- */

#include "../lib/world.h"

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

/* ---- a snapshot of everything a dry run must leave as it was ---- */

#include "../lib/snapshot.h"

/* ---- random fleets and jobs ---- */

#include "../lib/random_world.h"

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

/* ---- reading an explanation ---- */

static const char *const stage_names[] = {"queue", "model", "capability", "health",
					  "free_devices", "power", "topology", "gang",
					  "reservation"};

/* The funnel against explain.h: stages in their order, each stage's nodes_in what the
 * previous one let through, at most EXPLAIN_TOP offenders. With filters_only, the counts
 * of a trailing "reservation" stage are left to its own test. */
static bool funnel_ok(const struct fleet *f, const struct explain *x, bool filters_only,
		      char *msg, size_t len)
{
	if (x->nstages < 8 || x->nstages > EXPLAIN_MAX_STAGES) {
		snprintf(msg, len, "%u stages", x->nstages);
		return false;
	}
	for (uint32_t k = 0; k < x->nstages; k++) {
		const struct explain_stage *s = &x->stages[k];
		if (!s->name || strcmp(s->name, stage_names[k]) != 0) {
			snprintf(msg, len, "stage %u is \"%s\", expected \"%s\"", k,
				 s->name ? s->name : "(null)", stage_names[k]);
			return false;
		}
		if (s->ntop > EXPLAIN_TOP) {
			snprintf(msg, len, "stage %s: %u offenders", s->name, s->ntop);
			return false;
		}
		if (s->nodes_removed > s->nodes_in) {
			snprintf(msg, len, "stage %s removes %u of %u nodes", s->name,
				 s->nodes_removed, s->nodes_in);
			return false;
		}
		if (filters_only && k >= 8)
			continue;
		uint32_t expect = k == 0 ? f->nnodes
					 : x->stages[k - 1].nodes_in - x->stages[k - 1].nodes_removed;
		if (s->nodes_in != expect) {
			snprintf(msg, len, "stage %s: nodes_in %u, the stage before let %u through",
				 s->name, s->nodes_in, expect);
			return false;
		}
	}
	return true;
}

static void assert_funnel(const struct fleet *f, const struct explain *x, bool filters_only)
{
	char msg[256];
	ck_assert_msg(funnel_ok(f, x, filters_only, msg, sizeof(msg)), "job %llu (%s): %s",
		      (unsigned long long)x->job, x->code, msg);
}

static const struct explain_fix *find_fix(const struct explain *x, const char *code)
{
	for (uint32_t i = 0; i < x->nfixes; i++)
		if (strcmp(x->fixes[i].code, code) == 0)
			return &x->fixes[i];
	return NULL;
}

static void fixes_text(const struct explain *x, char *out, size_t len)
{
	size_t n = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < x->nfixes && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "[%s: %s] ", x->fixes[i].code,
				      x->fixes[i].text);
}

/* Explain j, asserting that nothing changed and the funnel holds together. */
static void explain(struct world *w, const struct job *j, struct explain *x)
{
	struct snap s;
	snap_take(w, &s);
	ck_assert_int_eq(explain_job(&w->f, &w->t, j, w->now, x), 0);
	snap_assert_same(w, &s, "explain_job");
	snap_free(&s);
	ck_assert_uint_eq(x->job, j->id);
	if (j->state == JOB_PENDING)
		assert_funnel(&w->f, x, true);
}

static void assert_code(const struct explain *x, const char *code)
{
	char fx[1024];
	fixes_text(x, fx, sizeof(fx));
	ck_assert_msg(strcmp(x->code, code) == 0, "code %s, want %s (verdict \"%s\"; fixes %s)",
		      x->code, code, x->verdict, fx);
	ck_assert_msg(strncmp(x->verdict, code, strlen(code)) == 0 &&
			      x->verdict[strlen(code)] == ':',
		      "verdict \"%s\" does not start with %s:", x->verdict, code);
}

static const struct explain_fix *assert_fix(const struct explain *x, const char *code)
{
	char fx[1024];
	const struct explain_fix *f = find_fix(x, code);
	fixes_text(x, fx, sizeof(fx));
	ck_assert_msg(f != NULL, "no %s fix for a %s verdict; fixes: %s", code, x->code, fx);
	ck_assert_msg(f->text[0] != '\0', "%s fix without text", code);
	return f;
}

/* The code part of a reason: "CODE: text" → "CODE". */
static void code_of(const char *reason, char *out, size_t len)
{
	size_t n = strcspn(reason, ":");
	snprintf(out, len, "%.*s", (int)n, reason);
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

static const int64_t idle_1x8 = 500 + 8 * 70;

/* ---- the verdict agrees with placement ---- */

/* A random world with some load: jobs placed by passes, nodes drained, devices failed. */
static void random_world(struct world *w, uint32_t seed)
{
	struct fleet_builder b;
	struct err e = {0};

	rng_state = 0xA0761D6478BD642Full * seed + 11;
	random_fleet(&b);
	world_open(w, &b);
	for (uint32_t d = 0; d < w->f.ndevices; d++)
		if (rnd_below(25) == 0)
			fleet_device_set_health(&w->f, d, HEALTH_FAILED);
	for (int step = 0; step < 12; step++) {
		w->now += 1 + rnd_below(300);
		struct job *j = random_job();
		j->submitted_at = w->now;
		ck_assert_int_eq(jobs_add(&w->t, j), 0);
		if (rnd_below(2))
			ck_assert_int_ge(place_pass(&w->f, &w->t, w->now, 4, NULL, NULL), 0);
		if (rnd_below(6) == 0)
			ck_assert_int_eq(fleet_node_drain(&w->f, rnd_below(w->f.nnodes), &e), 0);
	}
}

#define VERDICT_FLEETS 200
#define VERDICT_JOBS 8

START_TEST(explains_verdict_agrees_with_placement_for_random_jobs_in_random_fleets)
{
	unsigned fits = 0, refused = 0;
	unsigned seen[16] = {0};
	static const char *codes[] = {"FITS_NOW", "NO_MODEL_MATCH", "INSUFFICIENT_DEVICES",
				      "POWER_BUDGET", "TOPOLOGY", "GANG_INCOMPLETE"};

	for (uint32_t seed = 1; seed <= VERDICT_FLEETS; seed++) {
		struct world w;
		random_world(&w, seed);
		for (int k = 0; k < VERDICT_JOBS; k++) {
			struct explain x;
			struct job *j = random_job();
			w.now += 1 + rnd_below(100);
			submit(&w, j);
			explain(&w, j, &x);
			int wf = place_would_fit(&w.f, j, 0, NULL, NULL);
			ck_assert_int_ge(wf, 0);
			ck_assert_msg((strcmp(x.code, "FITS_NOW") == 0) == (wf == 1),
				      "seed %u job %llu: explain says %s (%s), place_would_fit %d",
				      seed, (unsigned long long)j->id, x.code, x.verdict, wf);
			int rc = place_try(&w.f, &w.t, j, w.now);
			ck_assert_msg(rc == (wf == 1 ? 0 : 1), "seed %u: would_fit %d, place_try %d",
				      seed, wf, rc);
			for (uint32_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++)
				seen[c] += strcmp(x.code, codes[c]) == 0;
			if (rc == 0) {
				fits++;
				continue;
			}
			refused++;
			char code[32];
			code_of(j->reason, code, sizeof(code));
			ck_assert_msg(strcmp(code, x.code) == 0,
				      "seed %u job %llu: explain says \"%s\", place_try says \"%s\"",
				      seed, (unsigned long long)j->id, x.verdict, j->reason);
		}
		world_close(&w);
	}
	ck_assert_uint_gt(fits, 100);
	ck_assert_uint_gt(refused, 100);
	for (uint32_t c = 0; c < 5; c++)
		ck_assert_msg(seen[c] > 5, "the generator produced %s only %u times", codes[c],
			      seen[c]);
}
END_TEST

/* Jobs already waiting (tried by passes, some reserved behind a head, some preempted) get
 * the same answer as a fresh try; a RESERVED_FOR_HEAD job that fits keeps its reservation
 * verdict; a preempted job keeps its PREEMPTED reason until it runs again, so its verdict
 * is checked against the placement's own diagnosis. */
START_TEST(explains_verdict_agrees_with_placement_for_jobs_already_waiting)
{
	unsigned checked = 0, preempted_seen = 0;

	for (uint32_t seed = 1; seed <= VERDICT_FLEETS; seed++) {
		struct world w;
		random_world(&w, seed);
		for (uint32_t i = 0; i < w.t.npending; i++) {
			struct explain x;
			struct job *j = w.t.pending[i];
			explain(&w, j, &x);
			ck_assert_uint_eq(x.queue_position, i + 1);
			int wf = place_would_fit(&w.f, j, 0, NULL, NULL);
			bool reserved = j->reason && strncmp(j->reason, "RESERVED_FOR_HEAD", 17) == 0;
			if (wf == 1) {
				ck_assert_str_eq(x.code, reserved ? "RESERVED_FOR_HEAD" : "FITS_NOW");
				continue;
			}
			ck_assert_str_ne(x.code, "FITS_NOW");
			checked++;
			bool preempted = j->reason && strncmp(j->reason, "PREEMPTED", 9) == 0;
			char diag[256], code[32];
			ck_assert_int_eq(place_diagnose(&w.f, j, diag, sizeof(diag)), 0);
			/* place_try takes the job out of the queue only if it fits: it does not */
			ck_assert_int_eq(place_try(&w.f, &w.t, j, w.now), 1);
			if (preempted) {
				preempted_seen++;
				ck_assert_msg(strncmp(j->reason, "PREEMPTED", 9) == 0,
					      "a failed try replaced PREEMPTED with \"%s\"", j->reason);
				code_of(diag, code, sizeof(code));
				ck_assert_msg(strcmp(code, x.code) == 0, "seed %u job %llu: explain "
					      "\"%s\", place_diagnose \"%s\"", seed,
					      (unsigned long long)j->id, x.verdict, diag);
				continue;
			}
			code_of(j->reason, code, sizeof(code));
			ck_assert_msg(strcmp(code, x.code) == 0, "seed %u job %llu: explain \"%s\", "
				      "place_try \"%s\"", seed, (unsigned long long)j->id, x.verdict,
				      j->reason);
		}
		world_close(&w);
	}
	ck_assert_uint_gt(checked, 100);
	ck_assert_uint_gt(preempted_seen, 3);
}
END_TEST

/* ---- explain changes nothing ---- */

START_TEST(explain_changes_nothing_even_when_the_drain_what_if_runs)
{
	static const uint32_t counts[] = {8, 8, 8, 4};
	struct world w;
	struct fleet_builder b;
	struct explain x;
	struct err e = {0};

	b_h100(&b, counts, 4, 1000000);
	world_open(&w, &b);
	/* One 8-device node drained and empty, one draining under a running job, one full of
	 * a preemptible low job; n4 half used. */
	struct job *on_n2 = running(&w, job_mk(1, 8, 0, TOPO_ANY));
	struct job *low = job_mk(1, 8, 0, TOPO_ANY);
	low->preemptible = true;
	low->priority = -1;
	low->req.duration_s = 600;
	running(&w, low);
	running(&w, job_mk(1, 2, 0, TOPO_ANY));
	uint32_t a = on_n2->placement[0].node;
	uint32_t free_node = FLEET_NONE;
	for (uint32_t n = 0; n < 3; n++)
		if (w.f.nodes[n].alloc_mask == 0)
			free_node = n;
	ck_assert_uint_ne(free_node, FLEET_NONE);
	ck_assert_int_eq(fleet_node_drain(&w.f, free_node, &e), 0);
	ck_assert_int_eq(fleet_node_drain(&w.f, a, &e), 0);
	ck_assert_int_eq(w.f.nodes[free_node].state, NODE_DRAINED);
	ck_assert_int_eq(w.f.nodes[a].state, NODE_DRAINING);

	/* Every kind of job: fits, fits on the drained node only, needs preemption, needs a
	 * lower cap, never fits, a placed job. */
	struct job *js[6];
	js[0] = submit(&w, job_mk(1, 2, 0, TOPO_ANY));
	js[1] = submit(&w, job_mk(2, 8, 0, TOPO_ANY));
	js[2] = job_mk(1, 8, 0, TOPO_ANY);
	js[2]->priority = 3;
	submit(&w, js[2]);
	js[3] = submit(&w, job_mk(9, 8, 0, TOPO_SAME_NODE));
	js[4] = job_mk(1, 6, 0, TOPO_ANY);
	js[4]->req.cap_auto = true;
	js[4]->req.min_perf = 0.9;
	submit(&w, js[4]);
	js[5] = on_n2;
	for (int i = 0; i < 6; i++)
		explain(&w, js[i], &x);
	/* The same after a pass stamped the waiting jobs. */
	ck_assert_int_ge(place_pass(&w.f, &w.t, ++w.now, 100, NULL, NULL), 0);
	for (int i = 0; i < 6; i++)
		explain(&w, js[i], &x);
	char msg[400];
	ck_assert_msg(fb_check_fleet(&w.f, msg, sizeof(msg)), "%s", msg);
	world_close(&w);
}
END_TEST

/* Explain is a read: running the same operations with explain calls sprinkled in gives
 * the same placements as without them. */
static void explain_script(uint32_t seed, bool with_explain, char *out, size_t len)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};

	rng_state = 0x2545F4914F6CDD1Dull * seed + 5;
	random_fleet(&b);
	world_open(&w, &b);
	for (int step = 0; step < 60; step++) {
		uint32_t roll = rnd_below(100);
		w.now += 1 + rnd_below(300);
		if (roll < 45) {
			struct job *j = random_job();
			j->submitted_at = w.now;
			ck_assert_int_eq(jobs_add(&w.t, j), 0);
		} else if (roll < 75) {
			ck_assert_int_ge(place_pass(&w.f, &w.t, w.now, 1 + rnd_below(5), NULL, NULL), 0);
		} else if (roll < 85 && w.t.nactive > 0) {
			struct job *j = w.t.active[rnd_below(w.t.nactive)];
			ck_assert_int_eq(place_cancel(&w.f, &w.t, j, w.now, &e), 0);
		} else if (roll < 92) {
			ck_assert_int_eq(fleet_node_drain(&w.f, rnd_below(w.f.nnodes), &e), 0);
		} else {
			ck_assert_int_eq(fleet_node_resume(&w.f, rnd_below(w.f.nnodes), &e), 0);
		}
		/* explain every waiting job (no draws: both runs see the same random stream) */
		for (uint32_t i = 0; with_explain && i < w.t.npending; i++) {
			struct explain x;
			ck_assert_int_eq(explain_job(&w.f, &w.t, w.t.pending[i], w.now, &x), 0);
		}
	}
	dump_jobs(&w, out, len);
	world_close(&w);
}

START_TEST(explain_calls_do_not_change_later_placements)
{
	static char a[32768], c[32768];

	for (uint32_t seed = 1; seed <= 60; seed++) {
		explain_script(seed, false, a, sizeof(a));
		explain_script(seed, true, c, sizeof(c));
		ck_assert_msg(strcmp(a, c) == 0, "seed %u: placements differ\nwithout explain: %s\n"
			      "with explain:    %s", seed, a, c);
	}
}
END_TEST

/* ---- the funnel ---- */

START_TEST(funnel_stage_counts_are_consistent_for_random_jobs)
{
	unsigned removed_somewhere = 0;

	for (uint32_t seed = 1; seed <= 120; seed++) {
		struct world w;
		random_world(&w, seed);
		for (int k = 0; k < 6; k++) {
			struct explain x;
			struct job *j = submit(&w, random_job());
			explain(&w, j, &x); /* asserts the funnel */
			for (uint32_t s = 0; s < x.nstages; s++)
				removed_somewhere += x.stages[s].nodes_removed > 0;
		}
		world_close(&w);
	}
	ck_assert_uint_gt(removed_somewhere, 200);
}
END_TEST

START_TEST(funnel_stages_remove_what_they_name)
{
	struct world w;
	struct fleet_builder b;
	struct explain x;
	struct err e = {0};

	/* 6 nodes: a100 (wrong model), d (drained), full (no free H100), pw (rack out of
	 * power), ok1 and ok2 (room for the job). */
	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_model(&b, "A100", 50, 400, 150);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack", "dc", 1000000);
	fb_domain(&b, "tight", "dc", 500 + 8 * 70 + 100);
	fb_node(&b, "a100", "rack", NULL, 500, "A100", 8);
	fb_node(&b, "d", "rack", NULL, 500, "H100", 8);
	fb_node(&b, "full", "rack", NULL, 500, "H100", 4);
	fb_node(&b, "pw", "tight", NULL, 500, "H100", 8);
	fb_node(&b, "ok1", "rack", NULL, 500, "H100", 8);
	fb_node(&b, "ok2", "rack", NULL, 500, "H100", 8);
	world_open(&w, &b);
	ck_assert_int_eq(fleet_node_drain(&w.f, node(&w.f, "d"), &e), 0);
	struct job *filler = job_mk(1, 4, 0, TOPO_ANY);
	job_models(filler, "H100", NULL);
	filler->req.min_memory_gib = 0;
	running(&w, filler);
	ck_assert_uint_eq(filler->placement[0].node, node(&w.f, "full"));
	struct job *j = job_mk(3, 4, 0, TOPO_ANY);
	job_models(j, "H100", NULL);
	submit(&w, j);
	explain(&w, j, &x);
	static const uint32_t removed[] = {0, 1, 0, 1, 1, 1, 0, 0};
	for (uint32_t s = 0; s < 8; s++)
		ck_assert_msg(x.stages[s].nodes_removed == removed[s], "stage %s removed %u, want %u",
			      x.stages[s].name, x.stages[s].nodes_removed, removed[s]);
	ck_assert_str_eq(x.stages[1].top[0].name, "a100");
	ck_assert_str_eq(x.stages[3].top[0].name, "d");
	ck_assert_str_eq(x.stages[4].top[0].name, "full");
	ck_assert_str_eq(x.stages[5].top[0].name, "tight");
	ck_assert_uint_eq(x.stages[1].devices_removed, 8);
	assert_code(&x, "FITS_NOW");
	world_close(&w);
}
END_TEST

START_TEST(funnel_lists_at_most_five_offenders)
{
	static const uint32_t counts[] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 9, 1000000);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	explain(&w, j, &x);
	ck_assert_uint_eq(x.stages[4].nodes_removed, 9);
	ck_assert_uint_eq(x.stages[4].ntop, EXPLAIN_TOP);
	world_close(&w);
}
END_TEST

/* ---- backfill: a job held behind the head ---- */

/* h1 held by a 1000 s job, h2 half held by a 5000 s job; a head of priority 10 wants a
 * whole node; a 2000 s lower job is held back by its reservation. */
static struct job *reserved_world(struct world *w)
{
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack", "dc", 1000000);
	fb_node(&b, "h1", "rack", NULL, 100, "H100", 8);
	fb_node(&b, "h2", "rack", NULL, 100, "H100", 8);
	world_open(w, &b);
	struct job *s = job_mk(1, 8, 0, TOPO_ANY);
	s->req.duration_s = 1000;
	running(w, s);
	struct job *l = job_mk(1, 4, 0, TOPO_ANY);
	l->req.duration_s = 5000;
	running(w, l);
	struct job *head = job_mk(1, 8, 0, TOPO_ANY);
	head->priority = 10;
	submit(w, head);
	struct job *slow = job_mk(1, 4, 0, TOPO_ANY);
	slow->req.duration_s = 2000;
	submit(w, slow);
	ck_assert_int_ge(place_pass(&w->f, &w->t, ++w->now, 100, NULL, NULL), 0);
	ck_assert_msg(slow->reason && strncmp(slow->reason, "RESERVED_FOR_HEAD", 17) == 0,
		      "setup: reason %s", slow->reason);
	return slow;
}

START_TEST(a_job_held_behind_the_head_is_explained_as_reserved_for_head)
{
	struct world w;
	struct explain x;
	struct snap s;

	struct job *slow = reserved_world(&w);
	snap_take(&w, &s);
	ck_assert_int_eq(explain_job(&w.f, &w.t, slow, w.now, &x), 0);
	snap_assert_same(&w, &s, "explain_job");
	snap_free(&s);
	assert_code(&x, "RESERVED_FOR_HEAD");
	ck_assert_str_eq(x.stages[x.nstages - 1].name, "reservation");
	ck_assert_uint_eq(x.queue_position, 2);
	world_close(&w);
}
END_TEST

START_TEST(funnel_stays_consistent_when_the_verdict_is_reserved_for_head)
{
	struct world w;
	struct explain x;

	struct job *slow = reserved_world(&w);
	ck_assert_int_eq(explain_job(&w.f, &w.t, slow, w.now, &x), 0);
	ck_assert_str_eq(x.code, "RESERVED_FOR_HEAD");
	assert_funnel(&w.f, &x, false);
	world_close(&w);
}
END_TEST

/* ---- every reason code and fix can be produced ---- */

START_TEST(fits_now_when_the_job_fits)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(2, 4, 0, TOPO_ANY));
	explain(&w, j, &x);
	assert_code(&x, "FITS_NOW");
	ck_assert_uint_eq(x.queue_position, 1);
	ck_assert(x.start_known);
	ck_assert_int_eq(x.estimated_start, w.now);
	ck_assert_uint_eq(x.start_after_job, 0);
	ck_assert_uint_eq(x.nfixes, 0);
	world_close(&w);
}
END_TEST

START_TEST(no_model_match_when_no_model_is_allowed)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *j = job_mk(1, 1, 0, TOPO_ANY);
	job_models(j, "B200", NULL);
	submit(&w, j);
	explain(&w, j, &x);
	assert_code(&x, "NO_MODEL_MATCH");
	ck_assert_uint_eq(x.stages[1].nodes_removed, 1);
	assert_fix(&x, "NEVER_FITS");
	ck_assert_uint_eq(x.nfixes, 1);
	ck_assert(!x.start_known);
	/* A capability need no count of 8 meets: also NO_MODEL_MATCH, at the capability stage. */
	struct job *k = job_mk(1, 0, 0, TOPO_ANY);
	k->req.capability = true;
	k->req.need.memory_gib = 641;
	submit(&w, k);
	explain(&w, k, &x);
	assert_code(&x, "NO_MODEL_MATCH");
	ck_assert_uint_eq(x.stages[2].nodes_removed, 1);
	world_close(&w);
}
END_TEST

START_TEST(insufficient_devices_when_the_fleet_is_too_small)
{
	static const uint32_t counts[] = {8, 8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(3, 8, 0, TOPO_ANY));
	explain(&w, j, &x);
	assert_code(&x, "INSUFFICIENT_DEVICES");
	assert_fix(&x, "NEVER_FITS");
	ck_assert_uint_eq(x.nfixes, 1);
	ck_assert(x.nearest_miss[0] != '\0');
	world_close(&w);
}
END_TEST

START_TEST(power_budget_names_the_domain_its_budget_and_the_shortfall)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	/* 100 W of headroom; even at the 200 W minimum cap 8 devices need 1040 W. */
	b_h100(&b, counts, 1, idle_1x8 + 100);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	explain(&w, j, &x);
	assert_code(&x, "POWER_BUDGET");
	ck_assert(x.power_known);
	ck_assert_str_eq(x.power_domain, "rack");
	ck_assert_int_eq(x.power_budget_w, idle_1x8 + 100);
	ck_assert_int_eq(x.power_reserved_w, idle_1x8);
	ck_assert_int_gt(x.power_need_w, 0);
	ck_assert_int_gt(x.power_shortfall_w, 0);
	ck_assert_int_eq(x.power_shortfall_w,
			 x.power_need_w - (x.power_budget_w - x.power_reserved_w));
	ck_assert_uint_eq(x.stages[5].nodes_removed, 1);
	ck_assert_ptr_null(find_fix(&x, "FITS_AT_CAP"));
	assert_fix(&x, "NEVER_FITS");
	world_close(&w);
}
END_TEST

START_TEST(topology_when_no_single_rack_can_hold_the_gang)
{
	struct world w;
	struct fleet_builder b;
	struct explain x;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 10000000);
	fb_domain(&b, "rack-1", "dc", 1000000);
	fb_domain(&b, "rack-2", "dc", 1000000);
	fb_node(&b, "a", "rack-1", NULL, 100, "H100", 8);
	fb_node(&b, "b", "rack-2", NULL, 100, "H100", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(2, 8, 0, TOPO_SAME_RACK));
	explain(&w, j, &x);
	assert_code(&x, "TOPOLOGY");
	ck_assert_uint_eq(x.stages[6].nodes_removed, 2);
	ck_assert(x.nearest_miss[0] != '\0');
	assert_fix(&x, "NEVER_FITS");
	world_close(&w);
}
END_TEST

/* docs/placement.md: TOPOLOGY = "devices and power exist, but no single node / rack / group
 * can hold the whole job". Two idle 8-device nodes hold 16 free devices; a same_node 2 x 8
 * job has the devices, not the node. */
START_TEST(topology_when_no_single_node_can_hold_a_same_node_job)
{
	static const uint32_t counts[] = {8, 8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	struct job *k = submit(&w, job_mk(2, 8, 0, TOPO_SAME_NODE));
	explain(&w, k, &x);
	ck_assert_uint_eq(x.stages[6].nodes_removed, 2); /* the funnel blames topology */
	assert_code(&x, "TOPOLOGY");
	world_close(&w);
}
END_TEST

START_TEST(not_pending_for_a_placed_job)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;
	struct err e = {0};

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *j = running(&w, job_mk(1, 8, 0, TOPO_ANY));
	explain(&w, j, &x);
	assert_code(&x, "NOT_PENDING");
	ck_assert_uint_eq(x.nstages, 0);
	ck_assert_uint_eq(x.nfixes, 0);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, j, ++w.now, &e), 0);
	explain(&w, j, &x);
	assert_code(&x, "NOT_PENDING");
	world_close(&w);
}
END_TEST

START_TEST(fits_at_cap_for_a_job_that_fits_at_a_lower_cap)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	/* The rack allows 8 devices at 450 W but not at TDP. */
	b_h100(&b, counts, 1, idle_1x8 + 8 * (450 - 70));
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	explain(&w, j, &x);
	assert_code(&x, "POWER_BUDGET");
	const struct explain_fix *fx = assert_fix(&x, "FITS_AT_CAP");
	unsigned cap = 0;
	const char *at = strstr(fx->text, "cap ");
	ck_assert_msg(at && sscanf(at, "cap %u W", &cap) == 1, "fix text \"%s\"", fx->text);
	ck_assert_uint_eq(cap, 450);
	ck_assert_int_eq(place_would_fit(&w.f, j, cap, NULL, NULL), 1);
	ck_assert_ptr_null(find_fix(&x, "NEVER_FITS"));
	world_close(&w);
}
END_TEST

START_TEST(fits_if_preempted_names_the_victim)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;
	char id[32];

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *low = job_mk(1, 8, 0, TOPO_ANY);
	low->preemptible = true;
	running(&w, low);
	struct job *j = job_mk(1, 8, 0, TOPO_ANY);
	j->priority = 5;
	submit(&w, j);
	explain(&w, j, &x);
	assert_code(&x, "INSUFFICIENT_DEVICES");
	const struct explain_fix *fx = assert_fix(&x, "FITS_IF_PREEMPTED");
	snprintf(id, sizeof(id), "job %llu", (unsigned long long)low->id);
	ck_assert_msg(strstr(fx->text, id), "fix text \"%s\" does not name %s", fx->text, id);
	/* An equal-priority job gets no such fix. */
	struct job *k = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	explain(&w, k, &x);
	ck_assert_ptr_null(find_fix(&x, "FITS_IF_PREEMPTED"));
	world_close(&w);
}
END_TEST

START_TEST(fits_if_node_resumed_names_the_drained_node)
{
	static const uint32_t counts[] = {8, 8};
	struct world w;
	struct fleet_builder b;
	struct explain x;
	struct err e = {0};

	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	ck_assert_int_eq(fleet_node_drain(&w.f, node(&w.f, "n1"), &e), 0);
	struct job *busy = running(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_uint_eq(busy->placement[0].node, node(&w.f, "n2"));
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	explain(&w, j, &x);
	ck_assert_str_ne(x.code, "FITS_NOW");
	const struct explain_fix *fx = assert_fix(&x, "FITS_IF_NODE_RESUMED");
	ck_assert_msg(strstr(fx->text, "n1"), "fix text \"%s\"", fx->text);
	ck_assert_int_eq(w.f.nodes[node(&w.f, "n1")].state, NODE_DRAINED);
	ck_assert_uint_eq(x.stages[3].nodes_removed, 1);
	world_close(&w);
}
END_TEST

START_TEST(fits_when_job_ends_gives_the_end_of_the_running_job)
{
	static const uint32_t counts[] = {8};
	struct world w;
	struct fleet_builder b;
	struct explain x;

	b_h100(&b, counts, 1, 1000000);
	world_open(&w, &b);
	struct job *r = job_mk(1, 6, 0, TOPO_ANY);
	r->req.duration_s = 500;
	running(&w, r);
	struct job *j = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	w.now += 20;
	explain(&w, j, &x);
	assert_code(&x, "INSUFFICIENT_DEVICES");
	assert_fix(&x, "FITS_WHEN_JOB_ENDS");
	ck_assert(x.start_known);
	ck_assert_int_eq(x.estimated_start, r->placed_at + 500);
	ck_assert_uint_eq(x.start_after_job, r->id);
	ck_assert_ptr_null(find_fix(&x, "NEVER_FITS"));
	world_close(&w);
}
END_TEST

START_TEST(never_fits_when_nothing_would_help)
{
	static const uint32_t counts[] = {8, 8};
	struct world w;
	struct fleet_builder b;
	struct explain x;
	struct err e = {0};

	/* Even with the drained node back, the running job ended and every cap lowered, a
	 * 3 x 8 gang does not fit 16 devices. */
	b_h100(&b, counts, 2, 1000000);
	world_open(&w, &b);
	ck_assert_int_eq(fleet_node_drain(&w.f, 0, &e), 0);
	struct job *r = job_mk(1, 8, 0, TOPO_ANY);
	r->preemptible = true;
	running(&w, r);
	struct job *j = job_mk(3, 8, 0, TOPO_ANY);
	j->priority = 9;
	submit(&w, j);
	explain(&w, j, &x);
	ck_assert_str_ne(x.code, "FITS_NOW");
	ck_assert_uint_eq(x.nfixes, 1);
	assert_fix(&x, "NEVER_FITS");
	ck_assert(!x.start_known);
	world_close(&w);
}
END_TEST

static Suite *explain_suite(void)
{
	Suite *s = suite_create("explain");
	TCase *tc;

	tc = tcase_create("verdict");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, explains_verdict_agrees_with_placement_for_random_jobs_in_random_fleets);
	tcase_add_test(tc, explains_verdict_agrees_with_placement_for_jobs_already_waiting);
	suite_add_tcase(s, tc);

	tc = tcase_create("read only");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, explain_changes_nothing_even_when_the_drain_what_if_runs);
	tcase_add_test(tc, explain_calls_do_not_change_later_placements);
	suite_add_tcase(s, tc);

	tc = tcase_create("funnel");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, funnel_stage_counts_are_consistent_for_random_jobs);
	tcase_add_test(tc, funnel_stages_remove_what_they_name);
	tcase_add_test(tc, funnel_lists_at_most_five_offenders);
	tcase_add_test(tc, funnel_stays_consistent_when_the_verdict_is_reserved_for_head);
	suite_add_tcase(s, tc);

	tc = tcase_create("codes");
	tcase_add_test(tc, fits_now_when_the_job_fits);
	tcase_add_test(tc, no_model_match_when_no_model_is_allowed);
	tcase_add_test(tc, insufficient_devices_when_the_fleet_is_too_small);
	tcase_add_test(tc, power_budget_names_the_domain_its_budget_and_the_shortfall);
	tcase_add_test(tc, topology_when_no_single_rack_can_hold_the_gang);
	tcase_add_test(tc, topology_when_no_single_node_can_hold_a_same_node_job);
	tcase_add_test(tc, not_pending_for_a_placed_job);
	tcase_add_test(tc, a_job_held_behind_the_head_is_explained_as_reserved_for_head);
	suite_add_tcase(s, tc);

	tc = tcase_create("fixes");
	tcase_add_test(tc, fits_at_cap_for_a_job_that_fits_at_a_lower_cap);
	tcase_add_test(tc, fits_if_preempted_names_the_victim);
	tcase_add_test(tc, fits_if_node_resumed_names_the_drained_node);
	tcase_add_test(tc, fits_when_job_ends_gives_the_end_of_the_running_job);
	tcase_add_test(tc, never_fits_when_nothing_would_help);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(explain_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
