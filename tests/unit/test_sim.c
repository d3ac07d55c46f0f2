/*
 * test_sim — the simulator's engine: a virtual clock over the placement core. Jobs end at
 * their duration and free their devices, scripted node and budget events act at their
 * time, runs are deterministic, and what never starts is named by placement's reason code.
 * The catalog is the daemon's own (an in-memory store); fleets are small JSON documents.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "report.h"
#include "sim.h"
#include "store.h"

#define H100 "H100-SXM5-80GB"

/* rack r1 (budget rack_w) holds n1 and n2, 8 H100 each */
static const char fleet_doc[] =
	"{\"domains\":[{\"name\":\"site\",\"budget_w\":1000000},"
	"{\"name\":\"r1\",\"parent\":\"site\",\"budget_w\":%d}],"
	"\"nodes\":[{\"name\":\"n1\",\"domain\":\"r1\",\"host_idle_w\":1000,"
	"\"devices\":[{\"model\":\"" H100 "\",\"count\":8}]},"
	"{\"name\":\"n2\",\"domain\":\"r1\",\"host_idle_w\":1000,"
	"\"devices\":[{\"model\":\"" H100 "\",\"count\":8}]}]}";

struct world {
	struct fleet f;
	struct jobs t;
	struct sim_result r;
};

static void world_open(struct world *w, int rack_w)
{
	struct store *s = NULL;
	struct err e = {0};
	char doc[1024];
	fleet_init(&w->f);
	jobs_init(&w->t);
	memset(&w->r, 0, sizeof(w->r));
	ck_assert_int_eq(store_open(":memory:", NULL, &s, &e), 0);
	ck_assert_int_eq(store_load(s, &w->f, &w->t, &e), 0);
	store_close(s);
	snprintf(doc, sizeof(doc), fleet_doc, rack_w);
	json_t *j = json_loads(doc, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_msg(sim_input_fleet(&w->f, j, &e) == 0, "fleet: %s", e.message);
	json_decref(j);
}

static void world_close(struct world *w)
{
	sim_result_free(&w->r);
	jobs_free(&w->t);
	fleet_free(&w->f);
}

/* Run a trace (JSON text of an array) and scripted events (JSON text or NULL). */
static int64_t resolution;   /* the next run's sim_options.resolution_s */

static void run(struct world *w, const char *trace, const char *events, int64_t until)
{
	struct err e = {0};
	struct sim_job *jobs = NULL;
	struct sim_event *ev = NULL;
	uint32_t nj = 0, ne = 0;
	json_t *tr = json_loads(trace, 0, NULL);
	ck_assert_ptr_nonnull(tr);
	ck_assert_msg(sim_input_jobs(tr, &w->f, &jobs, &nj, &e) == 0, "jobs: %s", e.message);
	json_decref(tr);
	if (events) {
		json_t *evj = json_loads(events, 0, NULL);
		ck_assert_ptr_nonnull(evj);
		ck_assert_msg(sim_input_events(evj, &w->f, &ev, &ne, &e) == 0, "events: %s", e.message);
		json_decref(evj);
	}
	struct sim_options o = {.start = 1000000, .sample_s = 60, .until_s = until,
				.resolution_s = resolution};
	resolution = 0;
	ck_assert_msg(sim_run(&w->f, &w->t, jobs, nj, ev, ne, &o, &w->r, &e) == 0, "run: %s",
		      e.message);
	free(jobs);
	free(ev);
}

#define JOB(name, at, devs, dur, extra)                                                    \
	"{\"submit_s\":" #at ",\"name\":\"" name "\",\"kind\":\"training\",\"workers\":1,"  \
	"\"devices\":" #devs ",\"duration_s\":" #dur extra "}"

START_TEST(a_job_that_ends_frees_its_devices_for_the_next_one)
{
	struct world w;
	world_open(&w, 100000);
	/* two 16-device jobs on a 16-device fleet: the second waits for the first */
	run(&w, "[" JOB("a", 0, 8, 100, ",\"workers\":2") "," JOB("b", 10, 8, 50, ",\"workers\":2") "]",
	    NULL, 0);
	ck_assert_int_eq(w.r.njobs, 2);
	ck_assert_int_eq(w.r.jobs[0].start, 0);
	ck_assert_int_eq(w.r.jobs[0].end, 100);
	ck_assert_int_eq(w.r.jobs[1].start, 100);
	ck_assert_int_eq(w.r.jobs[1].end, 150);
	ck_assert_int_eq(w.r.jobs[1].state, JOB_SUCCEEDED);
	ck_assert_int_eq(w.r.span_s, 150);
	ck_assert_int_eq(w.r.jobs[0].devices, 16);
	ck_assert(w.r.jobs[0].work > 0);
	/* energy: the rack's reserved watts integrated; more while a job runs than idle */
	ck_assert(w.r.energy_j > 0);
	world_close(&w);
}
END_TEST

START_TEST(a_power_budget_keeps_a_job_waiting_until_a_scripted_raise)
{
	struct world w;
	/* idle 2 × (1000 + 8 × idle_w) fits; a whole 8 × 700 W node does not */
	world_open(&w, 5000);
	run(&w, "[" JOB("big", 0, 8, 100, "") "]",
	    "[{\"at_s\":500,\"action\":\"budget\",\"domain\":\"r1\",\"budget_w\":100000}]", 0);
	ck_assert_int_eq(w.r.jobs[0].start, 500);
	ck_assert_int_eq(w.r.jobs[0].end, 600);
	world_close(&w);
}
END_TEST

START_TEST(a_scripted_node_loss_requeues_its_job_which_runs_again_elsewhere)
{
	struct world w;
	world_open(&w, 100000);
	run(&w, "[" JOB("a", 0, 8, 1000, "") "]",
	    "[{\"at_s\":100,\"action\":\"node_down\",\"node\":\"n1\"},"
	    "{\"at_s\":100,\"action\":\"node_down\",\"node\":\"n2\"},"
	    "{\"at_s\":200,\"action\":\"node_up\",\"node\":\"n2\"}]", 0);
	/* the whole duration again from the new placement */
	ck_assert_int_eq(w.r.jobs[0].start, 200);
	ck_assert_int_eq(w.r.jobs[0].end, 1200);
	ck_assert_int_eq(w.r.requeues, 1);
	world_close(&w);
}
END_TEST

START_TEST(a_job_that_never_fits_is_reported_with_its_reason_code)
{
	struct world w;
	world_open(&w, 100000);
	run(&w, "[" JOB("huge", 0, 8, 10, ",\"workers\":3") "," JOB("ok", 0, 8, 10, "") "]", NULL, 0);
	ck_assert_int_eq(w.r.jobs[0].state, JOB_PENDING);
	ck_assert_int_eq(w.r.jobs[0].start, -1);
	ck_assert_str_eq(w.r.jobs[0].reason, "INSUFFICIENT_DEVICES");
	ck_assert_int_eq(w.r.jobs[1].state, JOB_SUCCEEDED);
	json_t *rep = report_json(&w.f, &w.r, false);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rep,
		"never_started_reasons"), "INSUFFICIENT_DEVICES")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rep, "jobs"),
							    "completed")), 1);
	json_decref(rep);
	world_close(&w);
}
END_TEST

START_TEST(a_higher_priority_arrival_preempts_and_the_victim_reruns_later)
{
	struct world w;
	world_open(&w, 100000);
	run(&w, "[" JOB("low", 0, 8, 100, ",\"workers\":2,\"preemptible\":true") ","
		JOB("high", 50, 8, 100, ",\"workers\":2,\"priority\":10") "]", NULL, 0);
	ck_assert_int_eq(w.r.preemptions, 1);
	ck_assert_int_eq(w.r.jobs[0].preemptions, 1);
	ck_assert_int_eq(w.r.jobs[1].start, 50);
	ck_assert_int_eq(w.r.jobs[0].start, 150);   /* after high ends */
	ck_assert_int_eq(w.r.jobs[0].end, 250);
	world_close(&w);
}
END_TEST

START_TEST(the_same_inputs_give_the_same_run)
{
	struct world a, b;
	static const char trace[] = "[" JOB("a", 0, 4, 300, "") "," JOB("b", 5, 4, 200, "") ","
		JOB("c", 5, 8, 100, ",\"workers\":2") "," JOB("d", 60, 2, 30, "") "]";
	world_open(&a, 20000);
	world_open(&b, 20000);
	run(&a, trace, NULL, 0);
	run(&b, trace, NULL, 0);
	ck_assert_int_eq(a.r.njobs, b.r.njobs);
	ck_assert_int_eq(a.r.nsamples, b.r.nsamples);
	ck_assert_int_eq(memcmp(a.r.jobs, b.r.jobs, a.r.njobs * sizeof(*a.r.jobs)), 0);
	ck_assert(a.r.energy_j == b.r.energy_j);
	world_close(&a);
	world_close(&b);
}
END_TEST

START_TEST(until_stops_the_clock_and_says_so)
{
	struct world w;
	world_open(&w, 100000);
	run(&w, "[" JOB("a", 0, 8, 1000, "") "," JOB("b", 5000, 8, 10, "") "]", NULL, 500);
	ck_assert(w.r.stopped);
	ck_assert_int_eq(w.r.span_s, 500);
	ck_assert_int_eq(w.r.jobs[0].state, JOB_RUNNING);
	ck_assert_int_eq(w.r.njobs, 1);   /* b never arrived */
	/* samples every 60 s from 0, and one at the end */
	ck_assert_int_eq(w.r.nsamples, 10);
	ck_assert_int_eq(w.r.samples[1].allocated[fleet_model_find(&w.f, H100)], 8);
	world_close(&w);
}
END_TEST

START_TEST(a_coarser_clock_applies_a_step_s_happenings_together_at_its_end)
{
	struct world w;
	world_open(&w, 100000);
	resolution = 60;
	run(&w, "[" JOB("a", 5, 8, 100, "") "," JOB("b", 50, 8, 30, "") "]", NULL, 0);
	ck_assert_int_eq(w.r.jobs[0].start, 60);    /* arrived at 5 s, placed at the step's end */
	ck_assert_int_eq(w.r.jobs[1].start, 60);
	ck_assert_int_eq(w.r.jobs[1].end, 120);     /* ended at 90 s: seen at 120 s */
	ck_assert_int_eq(w.r.jobs[0].end, 180);     /* 160 s → 180 s */
	ck_assert_int_eq(w.r.steps, 3);
	world_close(&w);
}
END_TEST

START_TEST(an_event_naming_an_unknown_node_is_refused_with_its_field)
{
	struct world w;
	struct err e = {0};
	struct sim_event *ev = NULL;
	uint32_t n = 0;
	world_open(&w, 100000);
	json_t *j = json_loads("[{\"at_s\":1,\"action\":\"node_down\",\"node\":\"nope\"}]", 0, NULL);
	ck_assert_int_eq(sim_input_events(j, &w.f, &ev, &n, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "events[0].node");
	json_decref(j);
	j = json_loads("[{\"at_s\":1,\"action\":\"explode\"}]", 0, NULL);
	ck_assert_int_eq(sim_input_events(j, &w.f, &ev, &n, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "events[0].action");
	json_decref(j);
	world_close(&w);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("sim");
	TCase *tc = tcase_create("engine");
	tcase_add_test(tc, a_job_that_ends_frees_its_devices_for_the_next_one);
	tcase_add_test(tc, a_power_budget_keeps_a_job_waiting_until_a_scripted_raise);
	tcase_add_test(tc, a_scripted_node_loss_requeues_its_job_which_runs_again_elsewhere);
	tcase_add_test(tc, a_job_that_never_fits_is_reported_with_its_reason_code);
	tcase_add_test(tc, a_higher_priority_arrival_preempts_and_the_victim_reruns_later);
	tcase_add_test(tc, the_same_inputs_give_the_same_run);
	tcase_add_test(tc, until_stops_the_clock_and_says_so);
	tcase_add_test(tc, a_coarser_clock_applies_a_step_s_happenings_together_at_its_end);
	tcase_add_test(tc, an_event_naming_an_unknown_node_is_refused_with_its_field);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
