/*
 * simulate — joulectl simulate / trace generate / trace import-alibaba (contract:
 * simulate.h).
 *
 * Owns: one run's catalog store, fleet, job table and result.
 * Never: talks to a daemon; reads any file but the ones named on the command line.
 */
#include "simulate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "alibaba.h"
#include "gen.h"
#include "input.h"
#include "report.h"
#include "sim.h"
#include "store.h"
#include "trace.h"

static int fail(const struct err *e, int code)
{
	if (e->field[0])
		fprintf(stderr, "joulectl: %s (field %s)\n", e->message, e->field);
	else
		fprintf(stderr, "joulectl: %s\n", e->message);
	return code;
}

/* A fleet holding the built-in catalog: a daemon's database, in memory. */
static int catalog(struct fleet *f, struct jobs *t, struct err *e)
{
	struct store *s = NULL;
	int rc = store_open(":memory:", NULL, &s, e);
	if (rc == 0)
		rc = store_load(s, f, t, e);
	store_close(s);
	return rc;
}

int ctl_simulate(const struct ctl_sim_args *a)
{
	struct fleet f;
	struct jobs t;
	struct err e = {0};
	json_t *doc = NULL, *trace = NULL, *evdoc = NULL;
	struct sim_job *jobs = NULL;
	struct sim_event *events = NULL;
	uint32_t njobs = 0, nevents = 0;
	struct sim_result r = {0};
	int code = 1;

	fleet_init(&f);
	jobs_init(&t);
	if (catalog(&f, &t, &e) < 0) {
		code = fail(&e, 3);
		goto out;
	}
	json_error_t je;
	if (!(doc = json_load_file(a->fleet, JSON_REJECT_DUPLICATES, &je))) {
		fprintf(stderr, "joulectl: %s:%d: %s\n", a->fleet, je.line, je.text);
		goto out;
	}
	if (sim_input_fleet(&f, doc, &e) < 0) {
		fprintf(stderr, "joulectl: %s: ", a->fleet);
		code = fail(&e, 1);
		goto out;
	}
	if (trace_load(a->trace, TRACE_AUTO, &f, &trace, &e) < 0 ||
	    sim_input_jobs(trace, &f, &jobs, &njobs, &e) < 0) {
		code = fail(&e, 1);
		goto out;
	}
	json_decref(trace);
	trace = NULL;
	if (a->events) {
		if (!(evdoc = json_load_file(a->events, JSON_REJECT_DUPLICATES, &je))) {
			fprintf(stderr, "joulectl: %s:%d: %s\n", a->events, je.line, je.text);
			goto out;
		}
		if (sim_input_events(evdoc, &f, &events, &nevents, &e) < 0) {
			fprintf(stderr, "joulectl: %s: ", a->events);
			code = fail(&e, 1);
			goto out;
		}
	}
	/* virtual time starts at a fixed instant: the same inputs give the same report */
	struct sim_options o = {.start = 1767225600 /* 2026-01-01T00:00:00Z */,
				.sample_s = a->sample_s, .until_s = a->until_s,
				.resolution_s = a->resolution_s ? a->resolution_s : 60};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = sim_run(&f, &t, jobs, njobs, events, nevents, &o, &r, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(jobs);       /* sim_run took the jobs themselves */
	jobs = NULL;
	njobs = 0;
	if (rc < 0) {
		code = fail(&e, 1);
		goto out;
	}
	double wall = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (a->out) {
		if (mkdir(a->out, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "joulectl: cannot create %s: %s\n", a->out, strerror(errno));
			code = 3;
			goto out;
		}
		if (report_write_dir(a->out, &f, &r, &e) < 0) {
			code = fail(&e, 3);
			goto out;
		}
	}
	if (a->json) {
		json_t *rep = report_json(&f, &r, false);
		json_object_set_new(rep, "wall_s", json_real(wall));
		json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(rep);
	} else {
		report_table(stdout, &f, &r);
		printf("\nwall time %.2f s (%.1f simulated days per second)%s%s\n", wall,
		       wall > 0 ? r.span_s / 86400.0 / wall : 0, a->out ? "; report in " : "",
		       a->out ? a->out : "");
	}
	code = 0;
out:
	sim_result_free(&r);
	sim_input_jobs_free(jobs, njobs);
	free(events);
	json_decref(doc);
	json_decref(trace);
	json_decref(evdoc);
	jobs_free(&t);
	fleet_free(&f);
	return code;
}

int ctl_trace_generate(const struct ctl_gen_args *a)
{
	struct gen_params p;
	struct err e = {0};
	json_t *jobs = NULL;
	gen_params_default(&p, a->seed);
	p.jobs = a->jobs;
	p.span_s = a->span_s;
	if (a->rate_per_hour > 0)
		p.rate_per_hour = a->rate_per_hour;
	if (a->training_share >= 0) {
		p.kind[GEN_TRAINING].share = a->training_share;
		p.kind[GEN_INFERENCE].share = 1 - a->training_share;
	}
	if (a->nvidia_only)
		for (int k = 0; k < _GEN_KIND_MAX; k++) {
			p.kind[k].constraint[GEN_NVIDIA] += p.kind[k].constraint[GEN_HUAWEI] +
							     p.kind[k].constraint[GEN_MODEL];
			p.kind[k].constraint[GEN_HUAWEI] = 0;
			p.kind[k].constraint[GEN_MODEL] = 0;
		}
	if (gen_trace(&p, &jobs, &e) < 0)
		return fail(&e, 1);
	int rc = a->csv ? trace_write_csv(stdout, jobs, &e) : trace_write_jsonl(stdout, jobs, &e);
	json_decref(jobs);
	return rc < 0 ? fail(&e, 3) : 0;
}

int ctl_trace_import_alibaba(const struct ctl_alibaba_args *a)
{
	struct alibaba_params p;
	struct err e = {0};
	json_t *doc = NULL;
	alibaba_params_default(&p);
	if (a->machines_per_rack)
		p.machines_per_rack = a->machines_per_rack;
	if (a->rack_budget_fraction >= 0)
		p.rack_budget_fraction = a->rack_budget_fraction;
	if (alibaba_import(a->path, &p, &doc, &e) < 0)
		return fail(&e, 1);
	json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(doc);
	return 0;
}
