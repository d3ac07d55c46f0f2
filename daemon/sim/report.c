/*
 * report — summaries and encodings of a simulation run (contract: report.h).
 *
 * Owns: the percentile and utilisation arithmetic, the JSON, CSV, table and SVG outputs.
 * Never: changes the result or the fleet.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

struct pct {
	uint32_t n;
	double p50, p90, p99, mean;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of v (sorted in place). */
static struct pct percentiles(int64_t *v, uint32_t n)
{
	struct pct p = {.n = n};
	if (!n)
		return p;
	qsort(v, n, sizeof(*v), cmp_i64);
	double sum = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += (double)v[i];
	p.mean = sum / n;
#define RANK(q) (double)v[(uint32_t)ceil((q) * n) > 0 ? (uint32_t)ceil((q) * n) - 1 : 0]
	p.p50 = RANK(0.50);
	p.p90 = RANK(0.90);
	p.p99 = RANK(0.99);
#undef RANK
	return p;
}

/* Wait (start - submit) or completion time (end - submit) of the jobs matching kind
 * (-1: any) and queue (-1: any). */
static struct pct job_pct(const struct sim_result *r, bool completion, int kind, int queue,
			  int64_t *buf)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->njobs; i++) {
		const struct sim_record *x = &r->jobs[i];
		if (x->submit < 0 || (kind >= 0 && x->kind != kind) || (queue >= 0 && x->queue != queue))
			continue;
		if (completion ? x->end >= 0 : x->start >= 0)
			buf[n++] = (completion ? x->end : x->start) - x->submit;
	}
	return percentiles(buf, n);
}

static json_t *pct_json(struct pct p)
{
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "jobs", (json_int_t)p.n, "p50", p.p50,
			 "p90", p.p90, "p99", p.p99, "mean", p.mean);
}

static json_t *pct_block(const struct sim_result *r, bool completion, int64_t *buf)
{
	json_t *by_kind = json_object(), *by_queue = json_object();
	for (int k = 0; k < _JOB_KIND_MAX; k++) {
		struct pct p = job_pct(r, completion, k, -1, buf);
		if (p.n)
			json_object_set_new(by_kind, job_kind_name((enum job_kind)k), pct_json(p));
	}
	for (uint32_t q = 0; q < r->nqueues; q++)
		json_object_set_new(by_queue, r->queues[q], pct_json(job_pct(r, completion, -1, (int)q, buf)));
	return json_pack("{s:o, s:o, s:o}", "all", pct_json(job_pct(r, completion, -1, -1, buf)),
			 "by_kind", by_kind, "by_queue", by_queue);
}

/* Mean and peak share of a model's devices allocated over the samples. */
static void model_util(const struct sim_result *r, uint32_t m, double *mean, double *peak)
{
	double sum = 0;
	*peak = 0;
	for (uint32_t s = 0; s < r->nsamples; s++) {
		double u = r->devices_by_model[m] ? (double)r->samples[s].allocated[m] /
							   r->devices_by_model[m] : 0;
		sum += u;
		if (u > *peak)
			*peak = u;
	}
	*mean = r->nsamples ? sum / r->nsamples : 0;
}

struct totals {
	uint32_t completed, running, pending, never_started, cancelled_or_failed;
	double work_tflop;
};

static struct totals totals(const struct sim_result *r)
{
	struct totals t = {0};
	for (uint32_t i = 0; i < r->njobs; i++) {
		const struct sim_record *x = &r->jobs[i];
		if (x->submit < 0)
			continue;
		if (x->state == JOB_SUCCEEDED) {
			t.completed++;
			t.work_tflop += x->work;
		} else if (x->state == JOB_PLACED || x->state == JOB_RUNNING) {
			t.running++;
		} else if (x->state == JOB_PENDING) {
			t.pending++;
			t.never_started += x->start < 0;
		} else {
			t.cancelled_or_failed++;
		}
	}
	return t;
}

/* Jobs still pending at the end, by reason code: {"CODE": n}. */
static json_t *never_started(const struct sim_result *r)
{
	json_t *never = json_object();
	for (uint32_t i = 0; never && i < r->njobs; i++) {
		const struct sim_record *x = &r->jobs[i];
		if (x->submit < 0 || x->state != JOB_PENDING)
			continue;
		const char *code = x->reason[0] ? x->reason : "UNKNOWN";
		json_int_t n = json_integer_value(json_object_get(never, code));
		json_object_set_new(never, code, json_integer(n + 1));
	}
	return never;
}

json_t *report_json(const struct fleet *f, const struct sim_result *r, bool with_series)
{
	int64_t *buf = malloc((r->njobs + 1) * sizeof(*buf));
	json_t *o = NULL;
	if (!buf)
		return NULL;
	struct totals t = totals(r);
	double kwh = r->energy_j / 3.6e6;

	json_t *by_model = json_object(), *by_vendor = json_object();
	double vend_alloc[64] = {0}, vend_peak[64] = {0};
	uint32_t vend_dev[64] = {0};
	const char *vend_name[64];
	uint32_t nvend = 0;
	for (uint32_t m = 0; m < r->nmodels; m++) {
		if (!r->devices_by_model[m])
			continue;
		double mean, peak;
		model_util(r, m, &mean, &peak);
		json_object_set_new(by_model, f->models[m].name,
				    json_pack("{s:I, s:f, s:f}", "devices",
					      (json_int_t)r->devices_by_model[m], "mean", mean, "peak", peak));
		uint32_t v = 0;
		while (v < nvend && strcmp(vend_name[v], f->models[m].vendor) != 0)
			v++;
		if (v == nvend && nvend < 64)
			vend_name[nvend++] = f->models[m].vendor;
		if (v < 64) {
			vend_dev[v] += r->devices_by_model[m];
			vend_alloc[v] += mean * r->devices_by_model[m];
			vend_peak[v] += peak * r->devices_by_model[m];
		}
	}
	for (uint32_t v = 0; v < nvend; v++)
		json_object_set_new(by_vendor, vend_name[v],
				    json_pack("{s:I, s:f}", "devices", (json_int_t)vend_dev[v], "mean",
					      vend_dev[v] ? vend_alloc[v] / vend_dev[v] : 0));

	json_t *never = never_started(r);

	json_t *doms = json_array();
	for (uint32_t k = 0; k < r->ntracked; k++) {
		int64_t peak = 0, min_head = INT64_MAX;
		double sum = 0;
		for (uint32_t s = 0; s < r->nsamples; s++) {
			const struct sim_sample *sm = &r->samples[s];
			sum += (double)sm->reserved_w[k];
			if (sm->reserved_w[k] > peak)
				peak = sm->reserved_w[k];
			if (sm->budget_w[k] - sm->reserved_w[k] < min_head)
				min_head = sm->budget_w[k] - sm->reserved_w[k];
		}
		int64_t budget = f->domains[r->tracked[k]].budget_w;
		json_array_append_new(doms, json_pack("{s:s, s:I, s:f, s:I, s:I, s:f}", "name",
			f->domains[r->tracked[k]].name, "budget_w", (json_int_t)budget,
			"mean_reserved_w", r->nsamples ? sum / r->nsamples : 0.0, "peak_reserved_w",
			(json_int_t)peak, "min_headroom_w",
			(json_int_t)(min_head == INT64_MAX ? budget : min_head), "peak_share",
			budget > 0 ? (double)peak / (double)budget : 0.0));
	}

	o = json_pack("{s:I, s:f, s:I, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:{s:o, s:o},"
		      " s:o, s:o, s:f, s:f, s:f, s:I, s:I, s:I}",
		      "span_s", (json_int_t)r->span_s, "simulated_days", r->span_s / 86400.0,
		      "steps", (json_int_t)r->steps, "stopped", r->stopped,
		      "jobs", "total", (json_int_t)(t.completed + t.running + t.pending +
						    t.cancelled_or_failed),
		      "completed", (json_int_t)t.completed, "running_at_end", (json_int_t)t.running,
		      "pending_at_end", (json_int_t)t.pending, "never_started",
		      (json_int_t)t.never_started, "cancelled_or_failed",
		      (json_int_t)t.cancelled_or_failed,
		      "wait_s", pct_block(r, false, buf), "completion_s", pct_block(r, true, buf),
		      "utilization", "by_model", by_model, "by_vendor", by_vendor,
		      "never_started_reasons", never, "domains", doms,
		      "energy_kwh", kwh, "work_pflop", t.work_tflop / 1000.0,
		      "pflop_per_kwh", kwh > 0 ? t.work_tflop / 1000.0 / kwh : 0.0,
		      "placements", (json_int_t)r->placements, "preemptions",
		      (json_int_t)r->preemptions, "requeues", (json_int_t)r->requeues);
	free(buf);
	if (!o || !with_series)
		return o;
	json_t *ts = json_array(), *pend = json_array(), *run = json_array(),
	       *util = json_object(), *res = json_object();
	for (uint32_t s = 0; s < r->nsamples; s++) {
		json_array_append_new(ts, json_integer(r->samples[s].t));
		json_array_append_new(pend, json_integer(r->samples[s].pending));
		json_array_append_new(run, json_integer(r->samples[s].running));
	}
	for (uint32_t m = 0; m < r->nmodels; m++) {
		if (!r->devices_by_model[m])
			continue;
		json_t *a = json_array();
		for (uint32_t s = 0; s < r->nsamples; s++)
			json_array_append_new(a, json_real((double)r->samples[s].allocated[m] /
							   r->devices_by_model[m]));
		json_object_set_new(util, f->models[m].name, a);
	}
	for (uint32_t k = 0; k < r->ntracked; k++) {
		json_t *a = json_array();
		for (uint32_t s = 0; s < r->nsamples; s++)
			json_array_append_new(a, json_integer(r->samples[s].reserved_w[k]));
		json_object_set_new(res, f->domains[r->tracked[k]].name, a);
	}
	json_object_set_new(o, "series", json_pack("{s:o, s:o, s:o, s:o, s:o}", "t_s", ts,
						   "pending", pend, "running", run, "utilization",
						   util, "reserved_w", res));
	return o;
}

static void pct_row(FILE *out, const char *what, const char *name, struct pct p)
{
	if (!p.n)
		return;
	fprintf(out, "  %-10s %-18s %8u %10.0f %10.0f %10.0f\n", what, name, p.n, p.p50, p.p90,
		p.p99);
}

int report_table(FILE *out, const struct fleet *f, const struct sim_result *r)
{
	int64_t *buf = malloc((r->njobs + 1) * sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	struct totals t = totals(r);
	double kwh = r->energy_j / 3.6e6;
	fprintf(out, "simulated %.2f days in %llu steps%s\n", r->span_s / 86400.0,
		(unsigned long long)r->steps, r->stopped ? " (stopped early)" : "");
	fprintf(out, "jobs: %u completed, %u running at the end, %u pending (%u never started), "
		"%llu preemptions\n", t.completed, t.running, t.pending, t.never_started,
		(unsigned long long)r->preemptions);
	fprintf(out, "energy (reserved): %.1f kWh; work: %.1f PFLOP (BF16); %.2f PFLOP/kWh\n\n",
		kwh, t.work_tflop / 1000, kwh > 0 ? t.work_tflop / 1000 / kwh : 0);
	fprintf(out, "  %-10s %-18s %8s %10s %10s %10s\n", "WAIT_S", "KIND/QUEUE", "JOBS", "P50",
		"P90", "P99");
	pct_row(out, "wait", "all", job_pct(r, false, -1, -1, buf));
	for (int k = 0; k < _JOB_KIND_MAX; k++)
		pct_row(out, "wait", job_kind_name((enum job_kind)k), job_pct(r, false, k, -1, buf));
	for (uint32_t q = 0; q < r->nqueues; q++)
		pct_row(out, "wait", r->queues[q], job_pct(r, false, -1, (int)q, buf));
	for (int k = 0; k < _JOB_KIND_MAX; k++)
		pct_row(out, "completion", job_kind_name((enum job_kind)k), job_pct(r, true, k, -1, buf));
	free(buf);
	fprintf(out, "\n  %-20s %8s %8s %8s\n", "MODEL", "DEVICES", "MEAN", "PEAK");
	for (uint32_t m = 0; m < r->nmodels; m++) {
		if (!r->devices_by_model[m])
			continue;
		double mean, peak;
		model_util(r, m, &mean, &peak);
		fprintf(out, "  %-20s %8u %7.1f%% %7.1f%%\n", f->models[m].name,
			r->devices_by_model[m], 100 * mean, 100 * peak);
	}
	fprintf(out, "\n  %-20s %12s %12s %12s\n", "DOMAIN", "BUDGET_W", "PEAK_RES_W", "MIN_HEAD_W");
	for (uint32_t k = 0; k < r->ntracked; k++) {
		int64_t peak = 0, min_head = INT64_MAX;
		for (uint32_t s = 0; s < r->nsamples; s++) {
			const struct sim_sample *sm = &r->samples[s];
			if (sm->reserved_w[k] > peak)
				peak = sm->reserved_w[k];
			if (sm->budget_w[k] - sm->reserved_w[k] < min_head)
				min_head = sm->budget_w[k] - sm->reserved_w[k];
		}
		fprintf(out, "  %-20s %12lld %12lld %12lld\n", f->domains[r->tracked[k]].name,
			(long long)f->domains[r->tracked[k]].budget_w, (long long)peak,
			(long long)(min_head == INT64_MAX ? 0 : min_head));
	}
	if (t.pending) {
		fprintf(out, "\npending at the end, by reason:\n");
		json_t *never = never_started(r);
		const char *code;
		json_t *v;
		json_object_foreach(never, code, v)
			fprintf(out, "  %-24s %lld\n", code, (long long)json_integer_value(v));
		json_decref(never);
	}
	return ferror(out) ? -EIO : 0;
}

/* ---- files ---- */

static FILE *open_in(const char *dir, const char *name, char *path, size_t n, struct err *e)
{
	snprintf(path, n, "%s/%s", dir, name);
	FILE *fp = fopen(path, "w");
	if (!fp)
		err_set(e, -EIO, NULL, "cannot write %s: %s", path, strerror(errno));
	return fp;
}

static int close_file(FILE *fp, const char *path, struct err *e)
{
	bool bad = ferror(fp) != 0;
	if (fclose(fp) != 0 || bad)
		return err_set(e, -EIO, NULL, "cannot write %s", path);
	return 0;
}

static int write_csvs(const char *dir, const struct fleet *f, const struct sim_result *r,
		      struct err *e)
{
	char path[4096];
	FILE *fp = open_in(dir, "timeseries.csv", path, sizeof(path), e);
	if (!fp)
		return -EIO;
	fprintf(fp, "t_s,pending,running");
	for (uint32_t m = 0; m < r->nmodels; m++)
		if (r->devices_by_model[m])
			fprintf(fp, ",util_%s", f->models[m].name);
	for (uint32_t k = 0; k < r->ntracked; k++)
		fprintf(fp, ",reserved_w_%s,budget_w_%s", f->domains[r->tracked[k]].name,
			f->domains[r->tracked[k]].name);
	fputc('\n', fp);
	for (uint32_t s = 0; s < r->nsamples; s++) {
		const struct sim_sample *sm = &r->samples[s];
		fprintf(fp, "%lld,%u,%u", (long long)sm->t, sm->pending, sm->running);
		for (uint32_t m = 0; m < r->nmodels; m++)
			if (r->devices_by_model[m])
				fprintf(fp, ",%.4f", (double)sm->allocated[m] / r->devices_by_model[m]);
		for (uint32_t k = 0; k < r->ntracked; k++)
			fprintf(fp, ",%lld,%lld", (long long)sm->reserved_w[k], (long long)sm->budget_w[k]);
		fputc('\n', fp);
	}
	if (close_file(fp, path, e) < 0)
		return -EIO;
	if (!(fp = open_in(dir, "jobs.csv", path, sizeof(path), e)))
		return -EIO;
	fprintf(fp, "id,kind,queue,state,submit_s,start_s,end_s,wait_s,model,devices,preemptions,"
		"work_tflop,reason\n");
	for (uint32_t i = 0; i < r->njobs; i++) {
		const struct sim_record *x = &r->jobs[i];
		if (x->submit < 0)
			continue;
		fprintf(fp, "%llu,%s,%s,%s,%lld,%lld,%lld,%lld,%s,%u,%u,%.1f,%s\n",
			(unsigned long long)x->id, job_kind_name((enum job_kind)x->kind),
			r->queues[x->queue], job_state_name((enum job_state)x->state),
			(long long)x->submit, (long long)x->start, (long long)x->end,
			(long long)(x->start >= 0 ? x->start - x->submit : -1),
			x->model < f->nmodels ? f->models[x->model].name : "", x->devices,
			x->preemptions, x->work, x->reason);
	}
	return close_file(fp, path, e);
}

static int write_svg(const char *dir, const char *name, const struct svg_chart *c, struct err *e)
{
	char path[4096];
	FILE *fp = open_in(dir, name, path, sizeof(path), e);
	if (!fp)
		return -EIO;
	int rc = svg_chart(fp, c);
	if (close_file(fp, path, e) < 0 || rc < 0)
		return err_set(e, rc < 0 ? rc : -EIO, NULL, "cannot write %s", path);
	return 0;
}

static int write_charts(const char *dir, const struct fleet *f, const struct sim_result *r,
			struct err *e)
{
	const char *unit;
	double div = svg_time_unit((double)(r->span_s > 0 ? r->span_s : 1), &unit);
	char xlabel[32];
	snprintf(xlabel, sizeof(xlabel), "time (%s)", unit);
	uint32_t n = r->nsamples;
	struct svg_point *pts = calloc((size_t)n * SVG_MAX_SERIES + 1, sizeof(*pts));
	struct svg_series ser[SVG_MAX_SERIES];
	int rc = 0;
	if (!pts)
		return err_set(e, -ENOMEM, NULL, "out of memory");

	/* utilisation by model: the 8 models with the most devices */
	uint32_t pick[SVG_MAX_SERIES], np = 0;
	for (uint32_t m = 0; m < r->nmodels; m++) {
		if (!r->devices_by_model[m])
			continue;
		if (np < SVG_MAX_SERIES) {
			pick[np++] = m;
			continue;
		}
		uint32_t low = 0;
		for (uint32_t k = 1; k < np; k++)
			if (r->devices_by_model[pick[k]] < r->devices_by_model[pick[low]])
				low = k;
		if (r->devices_by_model[m] > r->devices_by_model[pick[low]])
			pick[low] = m;
	}
	for (uint32_t k = 0; k < np; k++) {
		for (uint32_t s = 0; s < n; s++)
			pts[k * n + s] = (struct svg_point){r->samples[s].t / div,
				100.0 * r->samples[s].allocated[pick[k]] / r->devices_by_model[pick[k]]};
		ser[k] = (struct svg_series){f->models[pick[k]].name, &pts[k * n], n, false};
	}
	struct svg_chart c = {.title = "Devices allocated, by model", .x_label = xlabel,
			      .y_label = "% of the model's devices", .series = ser, .nseries = np,
			      .y_fixed = true, .y_min = 0, .y_max = 100};
	if ((rc = write_svg(dir, "utilization.svg", &c, e)) < 0)
		goto out;

	for (uint32_t s = 0; s < n; s++) {
		pts[s] = (struct svg_point){r->samples[s].t / div, r->samples[s].pending};
		pts[n + s] = (struct svg_point){r->samples[s].t / div, r->samples[s].running};
	}
	ser[0] = (struct svg_series){"pending", pts, n, true};
	ser[1] = (struct svg_series){"running", pts + n, n, false};
	c = (struct svg_chart){.title = "Queue", .x_label = xlabel, .y_label = "jobs",
			       .series = ser, .nseries = 2};
	if ((rc = write_svg(dir, "queue.svg", &c, e)) < 0)
		goto out;

	uint32_t nd = r->ntracked < SVG_MAX_SERIES ? r->ntracked : SVG_MAX_SERIES;
	for (uint32_t k = 0; k < nd; k++) {
		for (uint32_t s = 0; s < n; s++) {
			const struct sim_sample *sm = &r->samples[s];
			pts[k * n + s] = (struct svg_point){sm->t / div, sm->budget_w[k] > 0
				? 100.0 * (double)sm->reserved_w[k] / (double)sm->budget_w[k] : 0};
		}
		ser[k] = (struct svg_series){f->domains[r->tracked[k]].name, &pts[k * n], n, false};
	}
	c = (struct svg_chart){.title = "Reserved power, share of the domain's budget",
			       .x_label = xlabel, .y_label = "% of budget", .series = ser,
			       .nseries = nd, .has_ref = true, .ref_y = 100, .ref_label = "budget",
			       .y_fixed = true, .y_min = 0, .y_max = 110};
	rc = write_svg(dir, "power.svg", &c, e);
out:
	free(pts);
	return rc;
}

int report_write_dir(const char *dir, const struct fleet *f, const struct sim_result *r,
		     struct err *e)
{
	char path[4096];
	json_t *o = report_json(f, r, true);
	if (!o)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	snprintf(path, sizeof(path), "%s/report.json", dir);
	int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(o);
	if (rc < 0)
		return err_set(e, -EIO, NULL, "cannot write %s", path);
	if ((rc = write_csvs(dir, f, r, e)) < 0)
		return rc;
	return write_charts(dir, f, r, e);
}
