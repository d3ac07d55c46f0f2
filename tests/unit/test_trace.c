/*
 * test_trace — the simulator's inputs and outputs (daemon/sim): trace files in JSON lines
 * and CSV (same jobs, round trips, sorting, the built-in catalog, errors that name file,
 * line and column), the synthetic generator (determinism, rate and mix), the Alibaba PAI
 * machine-table import (1,814 GPU machines, 6,742 GPUs, a fleet that imports) and the SVG
 * chart writer (well-formed XML, bounded size, escaped text).
 *
 * The catalog is the daemon's own: a store opened in memory runs the migrations, so the
 * jobs here are checked against exactly the models sql/002_catalog.sql ships.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alibaba.h"
#include "codec.h"
#include "fleet.h"
#include "gen.h"
#include "job.h"
#include "store.h"
#include "svg.h"
#include "trace.h"

/* ---- fixture: the built-in catalog ---- */

static struct fleet cat;
static struct jobs cat_jobs;
static struct store *cat_store;

static void catalog_open(void)
{
	struct err e = {0};

	fleet_init(&cat);
	jobs_init(&cat_jobs);
	ck_assert_msg(store_open(":memory:", NULL, &cat_store, &e) == 0, "store: %s", e.message);
	ck_assert_msg(store_load(cat_store, &cat, &cat_jobs, &e) == 0, "load: %s", e.message);
	ck_assert_uint_ge(cat.nmodels, 13);
}

static void catalog_close(void)
{
	store_close(cat_store);
	jobs_free(&cat_jobs);
	fleet_free(&cat);
}

/* ---- helpers ---- */

static const char *data_path(const char *name)
{
	static char buf[4096];
	const char *dir = getenv("JOULE_TEST_DATA");
	ck_assert_msg(dir != NULL, "JOULE_TEST_DATA is not set (run through meson test)");
	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static json_t *load_ok(const char *name, enum trace_format fmt, const struct fleet *catalog)
{
	struct err e = {0};
	json_t *jobs = NULL;
	int rc = trace_load(data_path(name), fmt, catalog, &jobs, &e);
	ck_assert_msg(rc == 0, "%s: rc %d: [%s] %s", name, rc, e.field, e.message);
	ck_assert_ptr_nonnull(jobs);
	return jobs;
}

/* Read a trace from a string. */
static int read_str(const char *text, const char *name, enum trace_format fmt,
		    const struct fleet *catalog, json_t **out, struct err *e)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	ck_assert_ptr_nonnull(in);
	int rc = trace_read(in, name, fmt, catalog, out, e);
	fclose(in);
	return rc;
}

typedef int (*writer_fn)(FILE *, const json_t *, struct err *);

/* Write with w into memory and read it back. */
static json_t *round_trip(const json_t *jobs, writer_fn w, enum trace_format fmt,
			  const struct fleet *catalog, char **text_out)
{
	char *buf = NULL;
	size_t len = 0;
	struct err e = {0};
	json_t *back = NULL;
	FILE *out = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(out);
	ck_assert_msg(w(out, jobs, &e) == 0, "write: [%s] %s", e.field, e.message);
	fclose(out);
	ck_assert_msg(read_str(buf, "written", fmt, catalog, &back, &e) == 0,
		      "read back: [%s] %s\n%s", e.field, e.message, buf);
	if (text_out)
		*text_out = buf;
	else
		free(buf);
	return back;
}

static void assert_same(const json_t *a, const json_t *b)
{
	if (!json_equal((json_t *)a, (json_t *)b)) {
		char *x = json_dumps(a, JSON_COMPACT), *y = json_dumps(b, JSON_COMPACT);
		ck_abort_msg("differ:\n%s\n%s", x, y);
	}
}

/* ================================================================ format */

START_TEST(jsonl_and_csv_of_the_same_jobs_load_to_identical_json)
{
	json_t *a = load_ok("trace/small.jsonl", TRACE_AUTO, &cat);
	json_t *b = load_ok("trace/small.csv", TRACE_AUTO, &cat);

	ck_assert_uint_eq(json_array_size(a), 5);
	assert_same(a, b);
	json_decref(a);
	json_decref(b);
}
END_TEST

START_TEST(loaded_jobs_are_sorted_by_submit_s_keeping_file_order_for_ties)
{
	static const char *const want[] = {"serve-70b", "embed-910b", "pretrain-70b",
					   "sweep, \"lr\" 3e-4", "any-vendor"};
	json_t *jobs = load_ok("trace/small.jsonl", TRACE_JSONL, NULL);
	size_t i;
	json_t *j;

	json_array_foreach(jobs, i, j) {
		ck_assert_str_eq(json_string_value(json_object_get(j, "name")), want[i]);
		ck_assert(json_is_real(json_object_get(j, "submit_s")));
	}
	ck_assert(json_real_value(json_object_get(json_array_get(jobs, 1), "submit_s")) == 12.5);
	json_decref(jobs);
}
END_TEST

START_TEST(csv_write_then_read_gives_identical_json)
{
	json_t *jobs = load_ok("trace/small.jsonl", TRACE_AUTO, &cat);
	char *text = NULL;
	json_t *back = round_trip(jobs, trace_write_csv, TRACE_CSV, &cat, &text);

	assert_same(jobs, back);
	/* the header names every column, in the documented order */
	ck_assert_msg(strncmp(text, "submit_s,duration_s,name,kind,count,", 36) == 0, "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "\"sweep, \"\"lr\"\" 3e-4\""));
	free(text);
	json_decref(back);
	json_decref(jobs);
}
END_TEST

START_TEST(jsonl_write_then_read_gives_identical_json)
{
	json_t *jobs = load_ok("trace/small.csv", TRACE_AUTO, &cat);
	char *text = NULL;
	json_t *back = round_trip(jobs, trace_write_jsonl, TRACE_JSONL, &cat, &text);

	assert_same(jobs, back);
	/* reals are written short when that reads back exactly */
	ck_assert_ptr_nonnull(strstr(text, "\"min_perf\":0.8}"));
	ck_assert_ptr_null(strstr(text, "0.80000"));
	free(text);
	json_decref(back);
	json_decref(jobs);
}
END_TEST

START_TEST(every_loaded_job_decodes_against_the_builtin_catalog)
{
	json_t *jobs = load_ok("trace/small.csv", TRACE_CSV, NULL);
	size_t i;
	json_t *jo;

	json_array_foreach(jobs, i, jo) {
		struct job *j = job_new();
		struct err e = {0};
		double t = -1;
		ck_assert_ptr_nonnull(j);
		ck_assert_msg(trace_job_decode(jo, &cat, j, &t, &e) == 0, "[%s] %s", e.field,
			      e.message);
		ck_assert(t >= 0);
		ck_assert_int_gt(j->req.duration_s, 0);
		job_free(j);
	}
	/* the inference job in capability mode kept its need and min_replicas */
	struct job *j = job_new();
	double t;
	ck_assert_int_eq(trace_job_decode(json_array_get(jobs, 0), &cat, j, &t, NULL), 0);
	ck_assert(j->req.capability);
	ck_assert_uint_eq(j->req.need.memory_gib, 150);
	ck_assert_uint_eq(j->req.min_count, 2);
	ck_assert(j->req.cap_auto);
	job_free(j);
	json_decref(jobs);
}
END_TEST

START_TEST(the_format_is_chosen_by_extension_or_sniffed_from_the_first_line)
{
	json_t *jobs = NULL;
	struct err e = {0};

	ck_assert_int_eq(trace_format_for_path("a/b.csv"), TRACE_CSV);
	ck_assert_int_eq(trace_format_for_path("b.jsonl"), TRACE_JSONL);
	ck_assert_int_eq(trace_format_for_path("b.json"), TRACE_JSONL);
	ck_assert_int_eq(trace_format_for_path("b.txt"), TRACE_AUTO);
	ck_assert_int_eq(read_str("\n# c\n{\"submit_s\":1,\"name\":\"x\",\"kind\":\"training\","
				  "\"workers\":1,\"devices\":1,\"duration_s\":5}\n",
				  "t", TRACE_AUTO, &cat, &jobs, &e), 0);
	ck_assert_uint_eq(json_array_size(jobs), 1);
	json_decref(jobs);
	ck_assert_int_eq(read_str("submit_s,duration_s,name,kind,count,devices\r\n1,5,x,training,1,1\r\n",
				  "t", TRACE_AUTO, &cat, &jobs, &e), 0);
	ck_assert_uint_eq(json_array_size(jobs), 1);
	json_decref(jobs);
	/* an empty file is an empty trace */
	ck_assert_int_eq(read_str("", "t", TRACE_AUTO, NULL, &jobs, &e), 0);
	ck_assert_uint_eq(json_array_size(jobs), 0);
	json_decref(jobs);
}
END_TEST

START_TEST(csv_columns_may_come_in_any_order_and_optional_ones_may_be_left_out)
{
	json_t *jobs = NULL;
	struct err e = {0};

	ck_assert_int_eq(read_str("kind,count,name,duration_s,submit_s,models\n"
				  "inference,3,a,60,2.0005,L40S\n",
				  "t.csv", TRACE_CSV, &cat, &jobs, &e), ERR_INVALID);
	/* no devices and no need: the codec's rule, reported against the count's job */
	ck_assert_str_eq(e.field, "devices");
	ck_assert_ptr_nonnull(strstr(e.message, "t.csv:2: devices: "));
	ck_assert_int_eq(read_str("kind,count,name,duration_s,submit_s,devices,models\n"
				  "inference,3,a,60,2.0005,1,L40S\n",
				  "t.csv", TRACE_CSV, &cat, &jobs, &e), 0);
	json_t *j = json_array_get(jobs, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "replicas")), 3);
	ck_assert(json_real_value(json_object_get(j, "submit_s")) == 2.001); /* millisecond */
	ck_assert_str_eq(json_string_value(json_array_get(
		json_object_get(json_object_get(j, "accelerator"), "models"), 0)), "L40S");
	json_decref(jobs);
}
END_TEST

START_TEST(null_members_mean_not_given_and_per_worker_of_an_inference_job_is_renamed)
{
	json_t *jobs = NULL;
	struct err e = {0};

	ck_assert_int_eq(read_str("{\"submit_s\":0,\"name\":\"x\",\"kind\":\"inference\",\"replicas\":1,"
				  "\"per_worker\":{\"memory_gib\":40},\"topology\":null,"
				  "\"power\":{\"cap_w\":null},\"duration_s\":9}\n",
				  "t", TRACE_JSONL, &cat, &jobs, &e), 0);
	json_t *j = json_array_get(jobs, 0);
	ck_assert_ptr_null(json_object_get(j, "topology"));
	ck_assert_ptr_null(json_object_get(j, "per_worker"));
	ck_assert_ptr_nonnull(json_object_get(j, "per_replica"));
	ck_assert_uint_eq(json_object_size(json_object_get(j, "power")), 0);
	json_decref(jobs);
}
END_TEST

/* ================================================================ errors */

static const struct bad {
	const char *what;
	enum trace_format fmt;
	const char *text;
	int code;
	const char *field;      /* NULL: not checked */
	const char *msg;        /* a substring of the message */
} bads[] = {
	{"an unknown column", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,gpus\n", ERR_INVALID, "gpus", "bad.csv:1: gpus: unknown column"},
	{"a required column missing from the header", TRACE_CSV,
	 "submit_s,name,kind,count,devices\n", ERR_INVALID, "duration_s", "bad.csv:1:"},
	{"a column given twice", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,name\n", ERR_INVALID, "name", "twice"},
	{"a non-integer device count", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n0,5,a,training,1,1\n0,5,b,training,1,eight\n",
	 ERR_INVALID, "devices", "bad.csv:3: devices: must be an integer"},
	{"a wrong number of cells", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n# c\n0,5,a,training,1\n",
	 ERR_INVALID, "", "bad.csv:3: 5 cells, but the header has 6"},
	{"an empty required cell", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n0,5,,training,1,1\n", ERR_INVALID, "name",
	 "bad.csv:2: name: is required"},
	{"an unknown kind", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n0,5,a,serving,1,1\n", ERR_INVALID, "kind",
	 "bad.csv:2: kind:"},
	{"min_perf without cap_w auto", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,cap_w,min_perf\n0,5,a,training,1,1,600,0.8\n",
	 ERR_INVALID, "min_perf", "bad.csv:2: min_perf: only with cap_w auto"},
	{"cap_w neither watts nor auto", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,cap_w\n0,5,a,training,1,1,max\n",
	 ERR_INVALID, "cap_w", "or auto"},
	{"a bool that is not true or false", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,preemptible\n0,5,a,training,1,1,yes\n",
	 ERR_INVALID, "preemptible", "true or false"},
	{"an unterminated quote", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n0,5,\"a,training,1,1\n", ERR_INVALID, "",
	 "bad.csv:2: cell 3: a quoted cell does not end"},
	{"an empty item in a list", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,models\n0,5,a,training,1,1,L40S;;L20\n",
	 ERR_INVALID, "models", "empty item"},
	{"an unknown model (catalog)", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,models\n0,5,a,training,1,1,L40S;H900\n",
	 ERR_INVALID, "models", "bad.csv:2: models: unknown model H900"},
	{"a cap no allowed model takes (catalog)", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,models,cap_w\n0,5,a,training,1,1,L40S,900\n",
	 ERR_INVALID, "cap_w", "bad.csv:2: cap_w:"},
	{"both devices and a need (catalog)", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices,need_memory_gib\n0,5,a,training,1,1,80\n",
	 ERR_INVALID, "devices", "not both"},
	{"a need of nothing (catalog)", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,need_fp8\n0,5,a,training,1,true\n",
	 ERR_INVALID, "need_*", "needs at least one"},
	{"a negative submit time", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n-1,5,a,training,1,1\n", ERR_INVALID,
	 "submit_s", "bad.csv:2: submit_s:"},
	{"a zero duration", TRACE_CSV,
	 "submit_s,duration_s,name,kind,count,devices\n0,0,a,training,1,1\n", ERR_INVALID,
	 "duration_s", "bad.csv:2: duration_s:"},
	{"a line that is not JSON", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"duration_s\":5}\n"
	 "{\"submit_s\":0,\n", ERR_INVALID, "", "bad.jsonl:2: not JSON"},
	{"a line that is not an object", TRACE_JSONL, "\n\n7\n", ERR_INVALID, "",
	 "bad.jsonl:3: a line must hold one JSON object"},
	{"a JSON array", TRACE_AUTO, "  [{\"submit_s\":0}]\n", ERR_INVALID, "", "JSON lines"},
	{"an unknown member", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"gpus\":8,\"duration_s\":5}\n",
	 ERR_INVALID, "gpus", "bad.jsonl:1: gpus: unknown field"},
	{"a missing submit_s", TRACE_JSONL,
	 "{\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"duration_s\":5}\n",
	 ERR_INVALID, "submit_s", "is required in a trace"},
	{"a missing duration_s", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1}\n",
	 ERR_INVALID, "duration_s", "is required in a trace"},
	{"a fractional duration_s", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"duration_s\":5.5}\n",
	 ERR_INVALID, "duration_s", "integer"},
	{"a string submit_s", TRACE_JSONL,
	 "{\"submit_s\":\"0\",\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"duration_s\":5}\n",
	 ERR_INVALID, "submit_s", "must be a number"},
	{"an unknown model in a JSON line (catalog)", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	 "\"accelerator\":{\"models\":[\"H900\"]},\"duration_s\":5}\n",
	 ERR_INVALID, "accelerator.models[0]", "bad.jsonl:1: accelerator.models[0]: unknown model"},
	{"devices out of range (catalog)", TRACE_JSONL,
	 "{\"submit_s\":0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":65,\"duration_s\":5}\n",
	 ERR_INVALID, "devices", "between 1 and 64"},
	{"a duplicate key", TRACE_JSONL,
	 "{\"submit_s\":0,\"submit_s\":1,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"duration_s\":5}\n",
	 ERR_INVALID, "", "bad.jsonl:1: not JSON"},
};

START_TEST(a_bad_trace_is_refused_naming_file_line_and_column)
{
	const struct bad *b = &bads[_i];
	json_t *jobs = NULL;
	struct err e = {0};
	const char *name = b->fmt == TRACE_CSV ? "bad.csv" : "bad.jsonl";
	int rc = read_str(b->text, name, b->fmt, &cat, &jobs, &e);

	ck_assert_msg(rc == b->code, "%s: rc %d, want %d (%s)", b->what, rc, b->code, e.message);
	ck_assert_ptr_null(jobs);
	if (b->field)
		ck_assert_msg(strcmp(e.field, b->field) == 0, "%s: field \"%s\", want \"%s\" (%s)",
			      b->what, e.field, b->field, e.message);
	ck_assert_msg(strstr(e.message, b->msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
		      b->what, e.message, b->msg);
}
END_TEST

START_TEST(lines_over_the_ceiling_and_nul_bytes_are_refused)
{
	size_t n = TRACE_MAX_LINE + 10;
	char *text = malloc(n + 2);
	json_t *jobs = NULL;
	struct err e = {0};

	ck_assert_ptr_nonnull(text);
	memset(text, 'x', n);
	text[n] = '\n';
	text[n + 1] = '\0';
	ck_assert_int_eq(read_str(text, "big.csv", TRACE_CSV, NULL, &jobs, &e), ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(e.message, "big.csv:1: line longer than"));
	free(text);

	static const char nul[] = "submit_s,duration_s,name,kind,count,devices\n0,5,a\0b,training,1,1\n";
	FILE *in = fmemopen((void *)nul, sizeof(nul) - 1, "r");
	ck_assert_int_eq(trace_read(in, "nul.csv", TRACE_CSV, NULL, &jobs, &e), ERR_INVALID);
	fclose(in);
	ck_assert_ptr_nonnull(strstr(e.message, "nul.csv:2: contains a NUL byte"));
	ck_assert_int_eq(trace_load("/nonexistent/trace.csv", TRACE_AUTO, NULL, &jobs, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.message, "/nonexistent/trace.csv"));
}
END_TEST

START_TEST(the_csv_writer_refuses_a_job_without_an_exact_csv_form)
{
	static const struct {
		const char *job, *field;
	} cases[] = {
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
		 "\"accelerator\":{\"vendors\":[]},\"duration_s\":5}", "[1].accelerator.vendors"},
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
		 "\"accelerator\":{\"models\":[\"a;b\"]},\"duration_s\":5}", "[1].accelerator.models"},
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
		 "\"gpus\":1,\"duration_s\":5}", "[1].gpus"},
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"replicas\":1,\"devices\":1,"
		 "\"duration_s\":5}", "[1].replicas"},
		{"{\"submit_s\":0.0,\"name\":\"a\\nb\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
		 "\"duration_s\":5}", "[1].name"},
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
		 "\"power\":{},\"duration_s\":5}", "[1].power"},
		{"{\"submit_s\":0.0,\"name\":\"a\",\"kind\":\"training\",\"workers\":1,\"devices\":1}",
		 "[1].duration_s"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *good = json_loads("{\"submit_s\":0.0,\"name\":\"ok\",\"kind\":\"training\","
					  "\"workers\":1,\"devices\":1,\"duration_s\":5}", 0, NULL);
		json_t *bad = json_loads(cases[i].job, 0, NULL);
		json_t *jobs = json_pack("[o,o]", good, bad);
		struct err e = {0};
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		ck_assert_ptr_nonnull(bad);
		ck_assert_int_eq(trace_write_csv(out, jobs, &e), ERR_INVALID);
		fclose(out);
		ck_assert_msg(strcmp(e.field, cases[i].field) == 0, "case %zu: field %s, want %s (%s)",
			      i, e.field, cases[i].field, e.message);
		ck_assert_ptr_nonnull(strstr(e.message, "no CSV form"));
		/* nothing of the refused job was written: the header and the good row only */
		ck_assert_msg(strstr(buf, "\n0.0,5,ok,training,1,") != NULL, "%s", buf);
		ck_assert_msg(strstr(buf, "\n0.0,5,a") == NULL, "%s", buf);
		free(buf);
		json_decref(jobs);
	}
}
END_TEST

/* ================================================================ generator */

static json_t *gen_ok(const struct gen_params *p)
{
	struct err e = {0};
	json_t *jobs = NULL;
	ck_assert_msg(gen_trace(p, &jobs, &e) == 0, "[%s] %s", e.field, e.message);
	return jobs;
}

START_TEST(the_same_seed_and_parameters_give_the_identical_trace)
{
	struct gen_params p;
	gen_params_default(&p, 42);
	p.jobs = 3000;
	json_t *a = gen_ok(&p), *b = gen_ok(&p);
	char *sa = json_dumps(a, JSON_COMPACT), *sb = json_dumps(b, JSON_COMPACT);

	ck_assert_uint_eq(json_array_size(a), 3000);
	ck_assert_str_eq(sa, sb);
	gen_params_default(&p, 43);
	p.jobs = 3000;
	json_t *c = gen_ok(&p);
	ck_assert(!json_equal(a, c));
	/* common random numbers: a different inference share leaves arrivals unchanged */
	gen_params_default(&p, 42);
	p.jobs = 3000;
	p.kind[GEN_INFERENCE].share = 0.5;
	json_t *d = gen_ok(&p);
	ck_assert(json_equal(json_object_get(json_array_get(a, 2999), "submit_s"),
			     json_object_get(json_array_get(d, 2999), "submit_s")));
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(d);
}
END_TEST

START_TEST(generated_jobs_are_valid_trace_jobs_that_survive_both_encodings)
{
	struct gen_params p;
	gen_params_default(&p, 7);
	p.jobs = 2000;
	json_t *jobs = gen_ok(&p);
	size_t i;
	json_t *jo;
	double last = 0;

	json_array_foreach(jobs, i, jo) {
		struct job *j = job_new();
		struct err e = {0};
		double t;
		ck_assert_msg(trace_job_decode(jo, &cat, j, &t, &e) == 0, "job %zu: [%s] %s", i,
			      e.field, e.message);
		ck_assert(t >= last);
		last = t;
		job_free(j);
	}
	json_t *csv = round_trip(jobs, trace_write_csv, TRACE_CSV, &cat, NULL);
	json_t *jsonl = round_trip(jobs, trace_write_jsonl, TRACE_JSONL, &cat, NULL);
	assert_same(jobs, csv);
	assert_same(jobs, jsonl);
	json_decref(csv);
	json_decref(jsonl);
	json_decref(jobs);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

START_TEST(arrival_rate_and_job_mix_are_roughly_as_asked)
{
	struct gen_params p;
	gen_params_default(&p, 2024);
	p.jobs = 20000;
	p.rate_per_hour = 100;
	json_t *jobs = gen_ok(&p);
	size_t i, n = json_array_size(jobs), ntrain = 0, one = 0, any = 0, preempt = 0, gangs = 0;
	double *dur = malloc(n * sizeof(*dur));
	size_t nd = 0;
	json_t *j;

	ck_assert_ptr_nonnull(dur);
	ck_assert_uint_eq(n, 20000);
	double span_h = json_real_value(json_object_get(json_array_get(jobs, n - 1), "submit_s")) / 3600;
	ck_assert_msg(fabs(span_h - 200) < 10, "20000 jobs at 100/h took %.1f h", span_h);
	json_array_foreach(jobs, i, j) {
		if (strcmp(json_string_value(json_object_get(j, "kind")), "training") != 0)
			continue;
		ntrain++;
		json_int_t w = json_integer_value(json_object_get(j, "workers"));
		json_t *dv = json_object_get(j, "devices");
		if (w == 1 && dv && json_integer_value(dv) == 1)
			one++;
		if (w > 1)
			gangs++;
		if (!json_object_get(j, "accelerator") && dv)
			any++;
		if (json_is_true(json_object_get(j, "preemptible")))
			preempt++;
		dur[nd++] = (double)json_integer_value(json_object_get(j, "duration_s"));
	}
	double share = (double)ntrain / (double)n;
	ck_assert_msg(fabs(share - 0.8) < 0.02, "training share %.3f", share);
	/* 1×1 jobs: 0.611 of shapes, of which the 0.95 not in capability mode carry devices */
	double s1 = (double)one / (double)ntrain;
	ck_assert_msg(fabs(s1 - 0.611 * 0.95) < 0.02, "1x1 share %.3f", s1);
	double sg = (double)gangs / (double)ntrain;
	ck_assert_msg(fabs(sg - 0.049) < 0.01, "gang share %.3f", sg);
	double sa = (double)any / (double)ntrain;
	ck_assert_msg(fabs(sa - 0.35) < 0.02, "unconstrained share %.3f", sa);
	double sp = (double)preempt / (double)ntrain;
	ck_assert_msg(fabs(sp - 0.5) < 0.02, "preemptible share %.3f", sp);
	qsort(dur, nd, sizeof(*dur), cmp_double);
	double med = dur[nd / 2];
	ck_assert_msg(med > 206 * 0.85 && med < 206 * 1.15, "median training duration %.0f s", med);
	ck_assert(dur[0] >= 10 && dur[nd - 1] <= 14 * 86400);
	free(dur);
	json_decref(jobs);
}
END_TEST

START_TEST(a_span_limits_the_trace_by_submit_time)
{
	struct gen_params p;
	gen_params_default(&p, 1);
	p.jobs = 0;
	p.span_s = 86400;
	p.rate_per_hour = 30;
	json_t *jobs = gen_ok(&p);
	size_t n = json_array_size(jobs);

	ck_assert_msg(n > 600 && n < 840, "%zu jobs in a day at 30/h", n);
	ck_assert(json_real_value(json_object_get(json_array_get(jobs, n - 1), "submit_s")) < 86400);
	json_decref(jobs);
}
END_TEST

START_TEST(bad_generator_parameters_are_refused_naming_the_parameter)
{
	struct gen_params p;
	json_t *jobs = NULL;
	struct err e = {0};

	gen_params_default(&p, 1);
	p.jobs = 0;
	ck_assert_int_eq(gen_trace(&p, &jobs, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "jobs");
	gen_params_default(&p, 1);
	p.rate_per_hour = 0;
	ck_assert_int_eq(gen_trace(&p, &jobs, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "rate_per_hour");
	gen_params_default(&p, 1);
	p.kind[GEN_TRAINING].shapes[2].devices = 65;
	ck_assert_int_eq(gen_trace(&p, &jobs, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "kind[0].shapes[2].devices");
	gen_params_default(&p, 1);
	p.kind[GEN_INFERENCE].nmodels = 0;
	ck_assert_int_eq(gen_trace(&p, &jobs, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "kind[1].models");
	gen_params_default(&p, 1);
	p.kind[GEN_INFERENCE].duration_sigma = -1;
	ck_assert_int_eq(gen_trace(&p, &jobs, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "kind[1].duration_sigma");
	ck_assert_ptr_null(jobs);
}
END_TEST

/* ================================================================ alibaba */

static json_t *alibaba_ok(const struct alibaba_params *p)
{
	struct err e = {0};
	json_t *doc = NULL;
	int rc = alibaba_import(data_path("alibaba/pai_machine_spec.csv"), p, &doc, &e);
	ck_assert_msg(rc == 0, "rc %d: [%s] %s", rc, e.field, e.message);
	return doc;
}

START_TEST(the_machine_table_imports_as_1814_nodes_with_6742_gpus)
{
	struct alibaba_params p;
	alibaba_params_default(&p);
	json_t *doc = alibaba_ok(&p);
	struct fleet_doc d;
	struct err e = {0};
	uint64_t gpus = 0;

	ck_assert_msg(codec_fleet_decode(doc, &d, &e) == 0, "[%s] %s", e.field, e.message);
	ck_assert_uint_eq(d.nnodes, 1814);
	ck_assert_uint_eq(d.nmodels, 5);
	for (uint32_t i = 0; i < d.nnodes; i++)
		for (uint32_t k = 0; k < d.nodes[i].ndevs; k++)
			gpus += d.nodes[i].devs[k].count;
	ck_assert_uint_eq(gpus, 6742);
	/* and the document imports into a fleet that has the built-in catalog */
	ck_assert_msg(fleet_import(&cat, &d, &e) == 0, "import: [%s] %s", e.field, e.message);
	ck_assert_uint_eq(cat.nnodes, 1814);
	ck_assert_uint_eq(cat.ndevices, 6742);
	uint32_t m = fleet_model_find(&cat, "V100-SXM2-32GB");
	ck_assert_uint_ne(m, FLEET_NONE);
	ck_assert_uint_eq(cat.models[m].memory_gib, 32);
	ck_assert_uint_eq(cat.models[m].tdp_w, 300);
	codec_fleet_doc_free(&d);
	json_decref(doc);
}
END_TEST

START_TEST(racks_hold_one_gpu_type_and_every_budget_covers_the_idle_load)
{
	struct alibaba_params p;
	alibaba_params_default(&p);
	p.machines_per_rack = 16;
	p.racks_per_row = 4;
	p.rack_budget_fraction = 0.5;
	json_t *doc = alibaba_ok(&p);
	json_t *domains = json_object_get(doc, "domains"), *nodes = json_object_get(doc, "nodes");
	size_t i;
	json_t *n;

	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(domains, 0), "name")), "pai");
	/* P100 798 → 50 racks, T4 497 → 32, V100 104 → 7, V100M32 135 → 9, MISC 280 → 18 */
	ck_assert_uint_eq(json_array_size(domains), 1 + 29 + 116);
	json_t *types = json_object();
	json_array_foreach(nodes, i, n) {
		const char *rack = json_string_value(json_object_get(n, "domain"));
		const char *type = json_string_value(json_object_get(json_object_get(n, "labels"), "gpu_type"));
		json_t *seen = json_object_get(types, rack);
		if (seen)
			ck_assert_str_eq(json_string_value(seen), type);
		else
			json_object_set_new(types, rack, json_string(type));
		if (strncmp(type, "V100", 4) == 0)
			ck_assert_ptr_nonnull(json_object_get(n, "group"));
	}
	json_decref(types);
	struct fleet_doc d;
	struct err e = {0};
	ck_assert_int_eq(codec_fleet_decode(doc, &d, &e), 0);
	ck_assert_msg(fleet_import(&cat, &d, &e) == 0, "import: [%s] %s", e.field, e.message);
	codec_fleet_doc_free(&d);
	json_decref(doc);

	/* a fraction that leaves a rack below its idle draw is refused */
	p.rack_budget_fraction = 0.05;
	ck_assert_int_eq(alibaba_import(data_path("alibaba/pai_machine_spec.csv"), &p, &doc, &e),
			 ERR_INVALID);
	ck_assert_str_eq(e.field, "rack_budget_fraction");
	ck_assert_ptr_nonnull(strstr(e.message, "below its idle load"));
}
END_TEST

START_TEST(a_bad_machine_line_is_refused_naming_file_and_line)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"machine,gpu_type,cap_cpu,cap_mem,cap_gpu\na1,V100,96,512,8\na2,A100,96,512,8\n",
		 "m.csv:3: unknown gpu_type \"A100\""},
		{"a1,V100,96,512,8\na1,T4,96,512,2\n", "m.csv:2: machine a1 repeats line 1"},
		{"a1,V100,96,512\n", "m.csv:1: 4 fields"},
		{"a1,V100,96,512,x\n", "m.csv:1: cap_gpu must be"},
		{"a1,CPU,96,512,2\n", "m.csv:1: a CPU machine with 2 GPUs"},
		{"a b,V100,96,512,8\n", "m.csv:1: machine must be"},
	};
	struct alibaba_params p;
	alibaba_params_default(&p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *in = fmemopen((void *)cases[i].text, strlen(cases[i].text), "r");
		json_t *doc = NULL;
		struct err e = {0};
		ck_assert_int_eq(alibaba_read(in, "m.csv", &p, &doc, &e), ERR_INVALID);
		fclose(in);
		ck_assert_ptr_null(doc);
		ck_assert_msg(strstr(e.message, cases[i].msg) != NULL, "case %zu: %s", i, e.message);
	}
}
END_TEST

/* ================================================================ svg */

/* A small XML well-formedness check: balanced tags, quoted attributes, no stray '<' or
 * '&' in text. Enough for what svg.c writes. */
static bool xml_well_formed(const char *s, char *why, size_t whylen)
{
	char stack[32][32];
	int depth = 0, roots = 0;

	if (strncmp(s, "<?xml ", 6) == 0)
		s = strstr(s, "?>") + 2;
	while (*s) {
		if (*s == '&') {
			if (strncmp(s, "&amp;", 5) && strncmp(s, "&lt;", 4) && strncmp(s, "&gt;", 4) &&
			    strncmp(s, "&quot;", 6) && strncmp(s, "&apos;", 6))
				return snprintf(why, whylen, "bad entity at %.20s", s), false;
			s++;
			continue;
		}
		if (*s != '<') {
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t' && *s != '\r')
				return snprintf(why, whylen, "control character"), false;
			s++;
			continue;
		}
		bool closing = s[1] == '/';
		const char *p = s + 1 + closing;
		size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:");
		if (n == 0 || n >= 32)
			return snprintf(why, whylen, "bad tag at %.20s", s), false;
		char name[32];
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;
		bool self = false;
		for (;;) {                      /* attributes */
			while (*p == ' ' || *p == '\n')
				p++;
			if (*p == '>') {
				p++;
				break;
			}
			if (p[0] == '/' && p[1] == '>') {
				self = true;
				p += 2;
				break;
			}
			size_t an = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:");
			if (closing || an == 0 || p[an] != '=' || p[an + 1] != '"')
				return snprintf(why, whylen, "bad attribute at %.30s", p), false;
			const char *end = strchr(p + an + 2, '"');
			if (!end)
				return snprintf(why, whylen, "unterminated attribute"), false;
			for (const char *q = p + an + 2; q < end; q++)
				if (*q == '<' || (*q == '&' && strncmp(q, "&amp;", 5) && strncmp(q, "&quot;", 6)))
					return snprintf(why, whylen, "raw < or & in an attribute"), false;
			p = end + 1;
		}
		if (closing) {
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
				return snprintf(why, whylen, "</%s> closes nothing open", name), false;
			depth--;
		} else if (!self) {
			if (depth == 0)
				roots++;
			if (depth == 32)
				return snprintf(why, whylen, "too deep"), false;
			snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
		} else if (depth == 0) {
			roots++;
		}
		s = p;
	}
	if (depth)
		return snprintf(why, whylen, "<%s> never closed", stack[depth - 1]), false;
	if (roots != 1)
		return snprintf(why, whylen, "%d root elements", roots), false;
	return true;
}

static char *chart(const struct svg_chart *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(svg_chart(out, c), 0);
	fclose(out);
	return buf;
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (; (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

START_TEST(a_chart_is_well_formed_svg_with_a_legend_and_a_reference_line)
{
	enum { N = 500 };
	static struct svg_point a[N], b[N];
	for (int i = 0; i < N; i++) {
		a[i] = (struct svg_point){i * 600.0 / 3600, 50 + 40 * sin(i / 30.0)};
		b[i] = (struct svg_point){i * 600.0 / 3600, 30 + 10 * cos(i / 20.0)};
	}
	b[7].y = NAN;
	const char *unit;
	double div = svg_time_unit(48 * 3600.0, &unit);
	ck_assert(div == 3600 && strcmp(unit, "hours") == 0);
	ck_assert(svg_time_unit(30 * 86400.0, &unit) == 86400 && strcmp(unit, "days") == 0);
	struct svg_series s[] = {{"reserved <W> & \"cap\"", a, N, true}, {"measured", b, N, false}};
	struct svg_chart c = {.title = "Power of row-a1 & friends", .x_label = "time (hours)",
			      .y_label = "% of budget", .series = s, .nseries = 2, .has_ref = true,
			      .ref_y = 100, .ref_label = "budget"};
	char *svg = chart(&c), why[128] = "";

	ck_assert_msg(xml_well_formed(svg, why, sizeof(why)), "%s\n%s", why, svg);
	ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	ck_assert_ptr_nonnull(strstr(svg, "reserved &lt;W&gt; &amp; &quot;cap&quot;"));
	ck_assert_ptr_nonnull(strstr(svg, "stroke-dasharray"));       /* the budget line */
	ck_assert_ptr_nonnull(strstr(svg, ">budget</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">100</text>"));             /* a y tick at the budget */
	ck_assert_uint_eq(count(svg, "<path "), 3);                   /* one area, two lines */
	ck_assert_ptr_null(strstr(svg, "nan"));

	/* and python's XML parser agrees, where python is installed */
	char path[] = "/tmp/test_trace_svg_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, svg, strlen(svg)), (ssize_t)strlen(svg));
	close(fd);
	if (system("command -v python3 >/dev/null 2>&1") == 0) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
			 "python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' %s",
			 path);
		ck_assert_int_eq(system(cmd), 0);
	}
	unlink(path);
	free(svg);
}
END_TEST

START_TEST(a_long_series_is_drawn_from_at_most_2000_points_keeping_its_peaks)
{
	enum { N = 1000000 };
	struct svg_point *p = malloc(N * sizeof(*p));
	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < N; i++)
		p[i] = (struct svg_point){(double)i, (double)(i % 97)};
	p[123457].y = 1000;                                           /* one spike */
	struct svg_series s = {"load", p, N, false};
	struct svg_chart c = {.series = &s, .nseries = 1, .y_label = "W"};
	char *svg = chart(&c), why[128] = "";

	ck_assert_msg(xml_well_formed(svg, why, sizeof(why)), "%s", why);
	const char *path = strstr(svg, "<path d=\"");
	ck_assert_ptr_nonnull(path);
	size_t pts = count(path, " L") + 1;
	ck_assert_msg(pts <= SVG_MAX_POINTS && pts > SVG_MAX_POINTS / 2, "%zu points", pts);
	ck_assert_ptr_nonnull(strstr(svg, ">1000</text>"));            /* the spike set the axis */
	ck_assert_msg(strlen(svg) < 100000, "%zu bytes", strlen(svg));
	free(svg);
	free(p);
}
END_TEST

START_TEST(a_chart_without_points_is_still_a_valid_document)
{
	struct svg_series s = {"nothing", NULL, 0, true};
	struct svg_chart c = {.title = "empty", .series = &s, .nseries = 1};
	char *svg = chart(&c), why[128] = "";
	ck_assert_msg(xml_well_formed(svg, why, sizeof(why)), "%s", why);
	free(svg);

	struct svg_chart none = {0};
	svg = chart(&none);
	ck_assert_msg(xml_well_formed(svg, why, sizeof(why)), "%s", why);
	free(svg);

	struct svg_series many[SVG_MAX_SERIES + 1] = {{0}};
	struct svg_chart too_many = {.series = many, .nseries = SVG_MAX_SERIES + 1};
	FILE *out = fopen("/dev/null", "w");
	ck_assert_int_eq(svg_chart(out, &too_many), ERR_INVALID);
	fclose(out);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_checked_fixture(tc, catalog_open, catalog_close);
	tcase_add_test(tc, jsonl_and_csv_of_the_same_jobs_load_to_identical_json);
	tcase_add_test(tc, loaded_jobs_are_sorted_by_submit_s_keeping_file_order_for_ties);
	tcase_add_test(tc, csv_write_then_read_gives_identical_json);
	tcase_add_test(tc, jsonl_write_then_read_gives_identical_json);
	tcase_add_test(tc, every_loaded_job_decodes_against_the_builtin_catalog);
	tcase_add_test(tc, the_format_is_chosen_by_extension_or_sniffed_from_the_first_line);
	tcase_add_test(tc, csv_columns_may_come_in_any_order_and_optional_ones_may_be_left_out);
	tcase_add_test(tc, null_members_mean_not_given_and_per_worker_of_an_inference_job_is_renamed);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, catalog_open, catalog_close);
	tcase_add_loop_test(tc, a_bad_trace_is_refused_naming_file_line_and_column, 0,
			    (int)(sizeof(bads) / sizeof(bads[0])));
	tcase_add_test(tc, lines_over_the_ceiling_and_nul_bytes_are_refused);
	tcase_add_test(tc, the_csv_writer_refuses_a_job_without_an_exact_csv_form);
	suite_add_tcase(s, tc);

	tc = tcase_create("generator");
	tcase_add_checked_fixture(tc, catalog_open, catalog_close);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, the_same_seed_and_parameters_give_the_identical_trace);
	tcase_add_test(tc, generated_jobs_are_valid_trace_jobs_that_survive_both_encodings);
	tcase_add_test(tc, arrival_rate_and_job_mix_are_roughly_as_asked);
	tcase_add_test(tc, a_span_limits_the_trace_by_submit_time);
	tcase_add_test(tc, bad_generator_parameters_are_refused_naming_the_parameter);
	suite_add_tcase(s, tc);

	tc = tcase_create("alibaba");
	tcase_add_checked_fixture(tc, catalog_open, catalog_close);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, the_machine_table_imports_as_1814_nodes_with_6742_gpus);
	tcase_add_test(tc, racks_hold_one_gpu_type_and_every_budget_covers_the_idle_load);
	tcase_add_test(tc, a_bad_machine_line_is_refused_naming_file_and_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("svg");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_chart_is_well_formed_svg_with_a_legend_and_a_reference_line);
	tcase_add_test(tc, a_long_series_is_drawn_from_at_most_2000_points_keeping_its_peaks);
	tcase_add_test(tc, a_chart_without_points_is_still_a_valid_document);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
