/*
 * test_prom — the Prometheus text parser: both real exporter samples (dcgm-exporter,
 * npu-exporter) series by series, escapes, NaN/Inf, timestamps, a table of malformed lines
 * that are skipped and counted, limits, # TYPE tracking, line endings, stopping from the
 * callback, and a 10 MB input parsed in one workspace allocation of a fixed size.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

/* ---- a collector: copies of every sample, for assertions after the parse ---- */

#define MAX_RECS 512
#define MAX_LBL 16

struct rec {
	char name[128];
	uint32_t nlabels;
	char lname[MAX_LBL][64];
	char lval[MAX_LBL][256];
	double value;
	bool has_ts;
	int64_t ts;
	const char *type;
};

struct coll {
	struct rec *r;
	size_t n;           /* recorded (at most MAX_RECS) */
	size_t total;       /* callbacks */
	size_t stop_at;     /* 0: never stop */
	int stop_rc;
};

static void coll_init(struct coll *c)
{
	memset(c, 0, sizeof(*c));
	c->r = calloc(MAX_RECS, sizeof(*c->r));
	ck_assert_ptr_nonnull(c->r);
}

static void coll_free(struct coll *c)
{
	free(c->r);
}

static int collect(const struct prom_sample *s, void *ud)
{
	struct coll *c = ud;

	c->total++;
	if (c->n < MAX_RECS) {
		struct rec *r = &c->r[c->n++];

		ck_assert_uint_eq(strlen(s->name), s->name_len);
		snprintf(r->name, sizeof(r->name), "%s", s->name);
		r->nlabels = s->nlabels;
		for (uint32_t i = 0; i < s->nlabels && i < MAX_LBL; i++) {
			ck_assert_uint_eq(strlen(s->labels[i].value), s->labels[i].value_len);
			snprintf(r->lname[i], sizeof(r->lname[i]), "%s", s->labels[i].name);
			snprintf(r->lval[i], sizeof(r->lval[i]), "%s", s->labels[i].value);
		}
		r->value = s->value;
		r->has_ts = s->has_timestamp;
		r->ts = s->timestamp_ms;
		r->type = s->type;
	}
	return c->stop_at && c->total == c->stop_at ? c->stop_rc : 0;
}

static const char *rec_label(const struct rec *r, const char *name)
{
	for (uint32_t i = 0; i < r->nlabels && i < MAX_LBL; i++) {
		if (strcmp(r->lname[i], name) == 0)
			return r->lval[i];
	}
	return NULL;
}

/* First record named `name` whose label `label` is `value` (label NULL: any). */
static const struct rec *find(const struct coll *c, const char *name, const char *label, const char *value)
{
	for (size_t i = 0; i < c->n; i++) {
		const char *v;

		if (strcmp(c->r[i].name, name) != 0)
			continue;
		if (!label)
			return &c->r[i];
		v = rec_label(&c->r[i], label);
		if (v && strcmp(v, value) == 0)
			return &c->r[i];
	}
	return NULL;
}

static int parse_str(const char *text, const struct prom_limits *lim, struct coll *c, struct prom_stats *st)
{
	return prom_parse(text, strlen(text), lim, collect, c, st);
}

static char *read_data(const char *name, size_t *len)
{
	const char *dir = getenv("JOULE_TEST_DATA");
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	ck_assert_msg(dir != NULL, "JOULE_TEST_DATA is not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/telemetry/%s", dir, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	buf = malloc((size_t)n);   /* exactly its size: ASan sees any read past the end */
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static uint64_t count_newlines(const char *s, size_t n)
{
	uint64_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/* ---- the exporters ---- */

START_TEST(parses_every_series_of_the_dcgm_sample)
{
	struct coll c;
	struct prom_stats st;
	size_t len;
	char *buf = read_data("dcgm-exporter-sample.prom", &len);
	const struct rec *r;

	coll_init(&c);
	ck_assert_int_eq(prom_parse(buf, len, NULL, collect, &c, &st), 0);
	/* 25 default counters, one GPU: one series each. */
	ck_assert_uint_eq(st.samples, 25);
	ck_assert_uint_eq(c.total, 25);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(st.too_long, 0);
	ck_assert_uint_eq(st.too_many_labels, 0);
	ck_assert_uint_eq(st.types_dropped, 0);
	ck_assert_uint_eq(st.first_bad_line, 0);
	ck_assert_ptr_null(st.first_bad_reason);
	ck_assert_uint_eq(st.lines, count_newlines(buf, len));
	ck_assert_uint_eq(st.lines, 87);

	r = find(&c, "DCGM_FI_DEV_POWER_USAGE", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq_tol(r->value, 40.979, 1e-9);
	ck_assert_str_eq(rec_label(r, "UUID"), "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c");
	ck_assert_str_eq(rec_label(r, "gpu"), "0");
	ck_assert_str_eq(rec_label(r, "device"), "nvidia0");
	ck_assert_str_eq(rec_label(r, "modelName"), "NVIDIA RTX 4000 Ada Generation");
	ck_assert_str_eq(rec_label(r, "Hostname"), "lke529760-766837-0a634ab30000");
	ck_assert_str_eq(rec_label(r, "pci_bus_id"), "00000000:00:02.0");
	ck_assert_str_eq(rec_label(r, "DCGM_FI_DRIVER_VERSION"), "580.95.05");
	ck_assert_str_eq(rec_label(r, "pod_uid"), "");
	ck_assert_ptr_null(rec_label(r, "hostname"));
	ck_assert_uint_eq(r->nlabels, 11);
	ck_assert_str_eq(r->lname[0], "gpu");
	ck_assert_str_eq(r->lname[10], "pod_uid");
	ck_assert(!r->has_ts);
	ck_assert_str_eq(r->type, "gauge");

	r = find(&c, "DCGM_FI_DEV_XID_ERRORS", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->nlabels, 13);
	ck_assert_str_eq(rec_label(r, "err_code"), "0");
	ck_assert_str_eq(rec_label(r, "err_msg"), "No Error");
	ck_assert_double_eq(r->value, 0);

	r = find(&c, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 455497156.0);
	ck_assert_str_eq(r->type, "counter");

	r = find(&c, "DCGM_FI_DEV_SM_CLOCK", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 2310);
	ck_assert_ptr_eq(r, &c.r[0]);   /* input order */
	r = find(&c, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq_tol(r->value, 0.004656, 1e-12);
	r = find(&c, "DCGM_FI_PROF_PCIE_RX_BYTES", NULL, NULL);
	ck_assert_ptr_eq(r, &c.r[24]);
	ck_assert_double_eq(r->value, 45987793.0);
	for (size_t i = 0; i < c.n; i++) {
		ck_assert_ptr_nonnull(c.r[i].type);
		ck_assert(!c.r[i].has_ts);
	}
	coll_free(&c);
	free(buf);
}
END_TEST

START_TEST(parses_every_series_of_the_npu_sample_with_millisecond_timestamps)
{
	struct coll c;
	struct prom_stats st;
	size_t len, with_ts = 0, fixture_ts = 0;
	char *buf = read_data("npu-exporter-sample.prom", &len);
	const struct rec *r;

	coll_init(&c);
	ck_assert_int_eq(prom_parse(buf, len, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.samples, 127);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(st.too_long + st.too_many_labels + st.types_dropped, 0);
	ck_assert_uint_eq(st.lines, 193);

	r = find(&c, "machine_npu_nums", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 8);
	ck_assert_uint_eq(r->nlabels, 0);
	ck_assert(!r->has_ts);
	ck_assert_int_eq(r->ts, 0);
	ck_assert_str_eq(r->type, "gauge");
	ck_assert_double_eq(find(&c, "machine_healthy_npu_nums", NULL, NULL)->value, 6);

	r = find(&c, "npu_chip_info_aicore_current_freq", "id", "3");
	ck_assert_ptr_nonnull(r);
	ck_assert_double_eq(r->value, 1000);
	ck_assert(r->has_ts);
	ck_assert_int_eq(r->ts, INT64_C(1723621884682));
	ck_assert_str_eq(rec_label(r, "pcie_bus_info"), "0000:3E:00.0");
	ck_assert_str_eq(rec_label(r, "vdie_id"), "185011D4-21502C18-0464ED94-14CC040A-6E102003");
	ck_assert_str_eq(rec_label(r, "model_name"), "910A-Ascend-V1");
	ck_assert_str_eq(rec_label(r, "pod_name"), "");

	/* Huawei truncated bandwidth_rx after id 0. */
	ck_assert_ptr_nonnull(find(&c, "npu_chip_info_bandwidth_rx", "id", "0"));
	ck_assert_ptr_null(find(&c, "npu_chip_info_bandwidth_rx", "id", "1"));

	r = find(&c, "npu_chip_info_power", "id", "7");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->ts, 1606402000);
	ck_assert_str_eq(rec_label(r, "model_name"), "910Awn-Ascend-V1");

	r = find(&c, "npu_exporter_version_info", NULL, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(rec_label(r, "exporterVersion"), "");
	ck_assert(!r->has_ts);

	for (size_t i = 0; i < c.n; i++) {
		with_ts += c.r[i].has_ts;
		fixture_ts += c.r[i].has_ts && c.r[i].ts == 1606402000;
		ck_assert_str_eq(c.r[i].type, "gauge");
	}
	ck_assert_uint_eq(with_ts, 121);
	ck_assert_uint_eq(fixture_ts, 112);
	coll_free(&c);
	free(buf);
}
END_TEST

START_TEST(a_minus_one_failed_read_is_an_ordinary_value)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"npu_chip_info_power{id=\"0\",model_name=\"Ascend910B3\"} -1 1723621883587\n"
		"npu_chip_info_hbm_used_memory{id=\"0\"} -1\n", NULL, &c, &st), 0);
	ck_assert_uint_eq(st.samples, 2);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_double_eq(c.r[0].value, -1);
	ck_assert_int_eq(c.r[0].ts, INT64_C(1723621883587));
	ck_assert_double_eq(c.r[1].value, -1);
	ck_assert(!c.r[1].has_ts);
	coll_free(&c);
}
END_TEST

/* ---- syntax that must be accepted ---- */

START_TEST(label_values_are_unescaped)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"m{a=\"x\\\\y\",b=\"say \\\"hi\\\"\",c=\"line1\\nline2\",d=\"tab\there\",e=\"\\\\n\"} 1\n",
		NULL, &c, &st), 0);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_str_eq(rec_label(&c.r[0], "a"), "x\\y");
	ck_assert_str_eq(rec_label(&c.r[0], "b"), "say \"hi\"");
	ck_assert_str_eq(rec_label(&c.r[0], "c"), "line1\nline2");
	ck_assert_str_eq(rec_label(&c.r[0], "d"), "tab\there");
	ck_assert_str_eq(rec_label(&c.r[0], "e"), "\\n");
	coll_free(&c);
}
END_TEST

static const struct {
	const char *text;
	double value;   /* NAN for NaN */
} numbers[] = {
	{ "NaN", NAN }, { "nan", NAN }, { "+Inf", INFINITY }, { "-Inf", -INFINITY },
	{ "Inf", INFINITY }, { "inf", INFINITY }, { "+Infinity", INFINITY }, { "-INFINITY", -INFINITY },
	{ "0", 0 }, { "-0.5", -0.5 }, { ".5", 0.5 }, { "5.", 5 }, { "+3", 3 },
	{ "1e3", 1000 }, { "1E-3", 0.001 }, { "2.5e+2", 250 }, { "40.979000", 40.979 },
	{ "1e-400", 0 }, { "9007199254740993", 9007199254740992.0 },
	{ "1.7976931348623157e308", 1.7976931348623157e308 },
};
#define NNUMBERS (sizeof(numbers) / sizeof(numbers[0]))

START_TEST(nan_infinities_and_decimal_forms_parse)
{
	struct coll c;
	struct prom_stats st;
	char line[256];

	coll_init(&c);
	snprintf(line, sizeof(line), "m %s\n", numbers[_i].text);
	ck_assert_int_eq(parse_str(line, NULL, &c, &st), 0);
	ck_assert_msg(st.malformed == 0, "'%s' refused: %s", numbers[_i].text, st.first_bad_reason);
	ck_assert_uint_eq(c.n, 1);
	if (isnan(numbers[_i].value)) {
		ck_assert(isnan(c.r[0].value));
	} else if (isinf(numbers[_i].value) || numbers[_i].value == 0) {
		ck_assert(c.r[0].value == numbers[_i].value);   /* ±Inf with its sign; 0 */
	} else {
		ck_assert_double_eq_tol(c.r[0].value, numbers[_i].value,
			fabs(numbers[_i].value) * 1e-15);
	}
	coll_free(&c);
}
END_TEST

START_TEST(timestamps_are_optional_signed_int64_milliseconds)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"a 1 1723621883587\n"
		"b 2\n"
		"c 3 -5\n"
		"d 4 9223372036854775807\n"
		"e 5 -9223372036854775808\n"
		"f{x=\"1\"} NaN 0\n"
		"g 7 +12\n", NULL, &c, &st), 0);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(c.n, 7);
	ck_assert(c.r[0].has_ts);
	ck_assert_int_eq(c.r[0].ts, INT64_C(1723621883587));
	ck_assert(!c.r[1].has_ts);
	ck_assert_int_eq(c.r[1].ts, 0);
	ck_assert_int_eq(c.r[2].ts, -5);
	ck_assert_int_eq(c.r[3].ts, INT64_MAX);
	ck_assert_int_eq(c.r[4].ts, INT64_MIN);
	ck_assert(c.r[5].has_ts);
	ck_assert_int_eq(c.r[5].ts, 0);
	ck_assert(isnan(c.r[5].value));
	ck_assert_int_eq(c.r[6].ts, 12);
	coll_free(&c);
}
END_TEST

START_TEST(trailing_commas_empty_sets_and_blanks_between_tokens_are_accepted)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"a{x=\"1\",} 1\n"
		"b{} 2\n"
		"  c { x = \"1\" ,\ty=\"2\" , } \t 3   4  \n"
		"d{x=\"1\"}5\n"
		"e:sub_total{x=\"caf\xc3\xa9 \xe2\x9c\x93\"} 6\n"
		"_f{emoji=\"\xf0\x9f\x98\x80\"} 7\n", NULL, &c, &st), 0);
	ck_assert_msg(st.malformed == 0, "line %llu: %s", (unsigned long long)st.first_bad_line,
		st.first_bad_reason);
	ck_assert_uint_eq(c.n, 6);
	ck_assert_uint_eq(c.r[0].nlabels, 1);
	ck_assert_uint_eq(c.r[1].nlabels, 0);
	ck_assert_str_eq(c.r[2].name, "c");
	ck_assert_uint_eq(c.r[2].nlabels, 2);
	ck_assert_str_eq(rec_label(&c.r[2], "y"), "2");
	ck_assert_double_eq(c.r[2].value, 3);
	ck_assert_int_eq(c.r[2].ts, 4);
	ck_assert_double_eq(c.r[3].value, 5);
	ck_assert_str_eq(c.r[4].name, "e:sub_total");
	ck_assert_str_eq(rec_label(&c.r[4], "x"), "caf\xc3\xa9 \xe2\x9c\x93");
	ck_assert_str_eq(c.r[5].name, "_f");
	ck_assert_str_eq(rec_label(&c.r[5], "emoji"), "\xf0\x9f\x98\x80");
	coll_free(&c);
}
END_TEST

/* ---- malformed lines: skipped, counted, never fatal ---- */

#define DIGITS16 "0000000000000000"
#define DIGITS128 DIGITS16 DIGITS16 DIGITS16 DIGITS16 DIGITS16 DIGITS16 DIGITS16 DIGITS16

static const struct {
	const char *line;
	size_t len;         /* 0: strlen */
	const char *why;
} bad_lines[] = {
	{ "m", 0, "missing value" },
	{ "m\t", 0, "missing value" },
	{ "m{a=\"1\"}", 0, "missing value" },
	{ "m abc", 0, "bad number" },
	{ "m 1.2.3", 0, "bad number" },
	{ "m 0x10", 0, "bad number" },
	{ "m -nan", 0, "bad number" },
	{ "m 1e", 0, "bad number" },
	{ "m 1e999", 0, "bad number" },
	{ "m nan(0x1)", 0, "bad number" },
	{ "m{a=\"1} 2", 0, "unterminated label value" },
	{ "m{a=\"1\\", 0, "unterminated label value" },
	{ "m{a=\"\\x\"} 1", 0, "bad escape in label value" },
	{ "m{a=\"\\t\"} 1", 0, "bad escape in label value" },
	{ "1m 2", 0, "metric name starts with a digit" },
	{ "m} 1", 0, "stray '}'" },
	{ "m{a=\"1\"}} 1", 0, "stray '}'" },
	{ "{a=\"1\"} 1", 0, "label set without a metric name" },
	{ "m-x 1", 0, "bad character in metric name" },
	{ "\xc3\xa9 1", 0, "bad metric name" },
	{ "m{a 1", 0, "missing '=' after label name" },
	{ "m{a=1} 2", 0, "label value not quoted" },
	{ "m{1a=\"x\"} 2", 0, "bad label name" },
	{ "m{a:b=\"x\"} 2", 0, "missing '=' after label name" },
	{ "m{,} 1", 0, "empty label" },
	{ "m{a=\"1\" b=\"2\"} 3", 0, "expected ',' or '}' after label value" },
	{ "m{a=\"1\"", 0, "unterminated label set" },
	{ "m{a=\"1\",", 0, "unterminated label set" },
	{ "m{a=\"1\",a=\"2\"} 3", 0, "duplicate label name" },
	{ "m{__name__=\"x\"} 1", 0, "reserved label name __name__" },
	{ "m{a=\"\xff\"} 1", 0, "label value is not UTF-8" },
	{ "m{a=\"\xed\xa0\x80\"} 1", 0, "label value is not UTF-8" },   /* a surrogate */
	{ "m{a=\"\xc0\xaf\"} 1", 0, "label value is not UTF-8" },       /* overlong '/' */
	{ "m{a=\"\xe2\x9c\"} 1", 0, "label value is not UTF-8" },       /* truncated */
	{ "m{a=\"\xe2\x28\xa1\"} 1", 0, "label value is not UTF-8" },   /* bad continuation */
	{ "m{a=\"\xf4\x90\x80\x80\"} 1", 0, "label value is not UTF-8" }, /* above U+10FFFF */
	{ "m 1" DIGITS128, 0, "bad number" },                           /* 129-byte token */
	{ "m 1 1" DIGITS128, 0, "bad timestamp" },
	{ "m{a=\"x\0y\"} 1", 12, "NUL in label value" },
	{ "m 1 abc", 0, "bad timestamp" },
	{ "m 1 1.5", 0, "bad timestamp" },
	{ "m 1 9223372036854775808", 0, "bad timestamp" },
	{ "m 1 -", 0, "bad timestamp" },
	{ "m 1 2 3", 0, "unexpected text after timestamp" },
	{ "# TYPE m", 0, "TYPE without a type" },
	{ "# TYPE m gauges", 0, "unknown type in TYPE" },
	{ "# TYPE m gauge extra", 0, "unknown type in TYPE" },
	{ "# TYPE 1m gauge", 0, "bad metric name in TYPE" },
	{ "# HELP m-x some help", 0, "bad metric name in HELP" },
};
#define NBAD (sizeof(bad_lines) / sizeof(bad_lines[0]))

START_TEST(a_malformed_line_is_skipped_and_counted)
{
	static const char before[] = "# TYPE good_a gauge\ngood_a 1\n";
	static const char after[] = "\ngood_b{x=\"2\"} 2\n";
	size_t n = bad_lines[_i].len ? bad_lines[_i].len : strlen(bad_lines[_i].line);
	size_t total = sizeof(before) - 1 + n + sizeof(after) - 1;
	char *buf = malloc(total);
	struct coll c;
	struct prom_stats st;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, before, sizeof(before) - 1);
	memcpy(buf + sizeof(before) - 1, bad_lines[_i].line, n);
	memcpy(buf + sizeof(before) - 1 + n, after, sizeof(after) - 1);
	coll_init(&c);
	ck_assert_int_eq(prom_parse(buf, total, NULL, collect, &c, &st), 0);
	ck_assert_msg(st.malformed == 1, "line '%s': %llu malformed (%s)", bad_lines[_i].line,
		(unsigned long long)st.malformed, st.first_bad_reason ? st.first_bad_reason : "-");
	ck_assert_uint_eq(st.lines, 4);
	ck_assert_uint_eq(st.samples, 2);
	ck_assert_uint_eq(st.first_bad_line, 3);
	ck_assert_str_eq(st.first_bad_reason, bad_lines[_i].why);
	ck_assert_uint_eq(st.too_long + st.too_many_labels, 0);
	ck_assert_str_eq(c.r[0].name, "good_a");
	ck_assert_str_eq(c.r[0].type, "gauge");   /* a bad TYPE line leaves good_a's alone */
	ck_assert_str_eq(c.r[1].name, "good_b");
	ck_assert_str_eq(rec_label(&c.r[1], "x"), "2");
	coll_free(&c);
	free(buf);
}
END_TEST

START_TEST(many_malformed_lines_never_stop_the_parse)
{
	struct coll c;
	struct prom_stats st;
	size_t cap = NBAD * 64 + 64, at = 0;
	char *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < NBAD; i++) {
		size_t n = bad_lines[i].len ? bad_lines[i].len : strlen(bad_lines[i].line);

		ck_assert_uint_lt(at + n + 1, cap);
		memcpy(buf + at, bad_lines[i].line, n);
		at += n;
		buf[at++] = '\n';
	}
	at += (size_t)snprintf(buf + at, cap - at, "last 1\n");
	coll_init(&c);
	ck_assert_int_eq(prom_parse(buf, at, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.malformed, NBAD);
	ck_assert_uint_eq(st.lines, NBAD + 1);
	ck_assert_uint_eq(st.samples, 1);
	ck_assert_uint_eq(st.first_bad_line, 1);
	ck_assert_str_eq(st.first_bad_reason, "missing value");
	ck_assert_str_eq(c.r[0].name, "last");
	coll_free(&c);
	free(buf);
}
END_TEST

START_TEST(comments_help_and_blank_lines_are_not_samples)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"# a plain comment { } \" \\ 1 2 3\n"
		"#\n"
		"# HELP\n"
		"# HELP m Help with \\\\ and \\n escapes and \"quotes\".\n"
		"#HELP m no space after the hash\n"
		"\n"
		"   \t \n"
		"# EOF\n"
		"m 1\n", NULL, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 9);
	ck_assert_uint_eq(st.samples, 1);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_ptr_null(c.r[0].type);
	coll_free(&c);
}
END_TEST

/* ---- # TYPE ---- */

START_TEST(type_is_remembered_per_family_including_histogram_and_summary_suffixes)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"early 0\n"
		"# TYPE early gauge\n"
		"# TYPE req counter\n"
		"# TYPE lat histogram\n"
		"# TYPE rpc summary\n"
		"# TYPE g gauge\n"
		"# TYPE ops counter\n"
		"req 1\n"
		"lat_bucket{le=\"0.1\"} 2\n"
		"lat_bucket{le=\"+Inf\"} 3\n"
		"lat_sum 4\n"
		"lat_count 5\n"
		"rpc{quantile=\"0.5\"} 6\n"
		"rpc_sum 7\n"
		"rpc_count 8\n"
		"g_bucket 9\n"
		"g_total 10\n"
		"ops_total 11\n"
		"other 12\n"
		"early 13\n", NULL, &c, &st), 0);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(c.n, 14);
	ck_assert_ptr_null(c.r[0].type);    /* a sample before its TYPE has none */
	ck_assert_str_eq(c.r[1].type, "counter");
	for (int i = 2; i <= 5; i++)
		ck_assert_str_eq(c.r[i].type, "histogram");
	ck_assert_double_eq(c.r[3].value, 3);
	ck_assert_str_eq(rec_label(&c.r[3], "le"), "+Inf");
	for (int i = 6; i <= 8; i++)
		ck_assert_str_eq(c.r[i].type, "summary");
	ck_assert_ptr_null(c.r[9].type);    /* a gauge has no _bucket series */
	ck_assert_ptr_null(c.r[10].type);   /* nor a _total one */
	ck_assert_str_eq(c.r[11].type, "counter");
	ck_assert_ptr_null(c.r[12].type);
	ck_assert_str_eq(c.r[13].type, "gauge");
	coll_free(&c);
}
END_TEST

START_TEST(the_last_type_line_for_a_family_wins)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"# TYPE m counter\nm 1\n# TYPE m untyped\nm 2\n# TYPE m  \t gauge \nm 3\n", NULL, &c, &st), 0);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_str_eq(c.r[0].type, "counter");
	ck_assert_str_eq(c.r[1].type, "untyped");
	ck_assert_str_eq(c.r[2].type, "gauge");
	coll_free(&c);
}
END_TEST

START_TEST(a_full_type_table_drops_new_families_and_keeps_the_old_ones)
{
	struct prom_limits lim = { .max_types = 2 };
	struct coll c;
	struct prom_stats st;
	char text[1024], longname[200];

	/* 2 entries and 2 × 96 bytes of names: the third family, or a 150-byte name after a
	 * 100-byte one, does not fit. */
	memset(longname, 'n', 150);
	longname[150] = '\0';
	snprintf(text, sizeof(text),
		"# TYPE a counter\n# TYPE b gauge\n# TYPE c gauge\n# TYPE a gauge\na 1\nb 2\nc 3\n");
	coll_init(&c);
	ck_assert_int_eq(parse_str(text, &lim, &c, &st), 0);
	ck_assert_uint_eq(st.types_dropped, 1);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_str_eq(c.r[0].type, "gauge");   /* updating a known family still works */
	ck_assert_str_eq(c.r[1].type, "gauge");
	ck_assert_ptr_null(c.r[2].type);
	coll_free(&c);

	snprintf(text, sizeof(text), "# TYPE %.100s gauge\n# TYPE %s gauge\n%.100s 1\n%s 2\n",
		longname, longname, longname, longname);
	coll_init(&c);
	ck_assert_int_eq(parse_str(text, &lim, &c, &st), 0);
	ck_assert_uint_eq(st.types_dropped, 1);
	ck_assert_str_eq(c.r[0].type, "gauge");
	ck_assert_ptr_null(c.r[1].type);
	coll_free(&c);
}
END_TEST

/* ---- line endings ---- */

START_TEST(crlf_input_parses_like_lf)
{
	size_t len, n = 0;
	char *lf = read_data("dcgm-exporter-sample.prom", &len);
	char *crlf = malloc(len * 2);
	struct coll a, b;
	struct prom_stats sa, sb;

	ck_assert_ptr_nonnull(crlf);
	for (size_t i = 0; i < len; i++) {
		if (lf[i] == '\n')
			crlf[n++] = '\r';
		crlf[n++] = lf[i];
	}
	coll_init(&a);
	coll_init(&b);
	ck_assert_int_eq(prom_parse(lf, len, NULL, collect, &a, &sa), 0);
	ck_assert_int_eq(prom_parse(crlf, n, NULL, collect, &b, &sb), 0);
	ck_assert_uint_eq(sb.malformed, 0);
	ck_assert_uint_eq(sb.samples, 25);
	ck_assert_uint_eq(sb.lines, sa.lines);
	for (size_t i = 0; i < a.n; i++) {
		ck_assert_str_eq(a.r[i].name, b.r[i].name);
		ck_assert_double_eq(a.r[i].value, b.r[i].value);
		ck_assert_uint_eq(a.r[i].nlabels, b.r[i].nlabels);
		ck_assert_str_eq(rec_label(&b.r[i], "pod_uid"), "");
		ck_assert_str_eq(a.r[i].type, b.r[i].type);
	}
	coll_free(&a);
	coll_free(&b);
	free(crlf);
	free(lf);
}
END_TEST

START_TEST(a_last_line_without_newline_is_parsed)
{
	static const char *const inputs[] = { "a 1\nb 2", "a 1\nb 2 1700000000000", "a 1\nb 2\r",
		"a 1\nb{x=\"y\"} 2  " };
	struct coll c;
	struct prom_stats st;

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		size_t n = strlen(inputs[i]);
		char *buf = malloc(n);   /* no NUL after it */

		ck_assert_ptr_nonnull(buf);
		memcpy(buf, inputs[i], n);
		coll_init(&c);
		ck_assert_int_eq(prom_parse(buf, n, NULL, collect, &c, &st), 0);
		ck_assert_uint_eq(st.lines, 2);
		ck_assert_uint_eq(st.samples, 2);
		ck_assert_uint_eq(st.malformed, 0);
		ck_assert_double_eq(c.r[1].value, 2);
		coll_free(&c);
		free(buf);
	}
}
END_TEST

START_TEST(nothing_after_len_is_read)
{
	/* The bytes after len would complete the line; the parser must not see them. */
	static const char text[] = "a 1\nm{a=\"x\"} 2\n";
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(prom_parse(text, 10, NULL, collect, &c, &st), 0);   /* "a 1\nm{a=\"x" */
	ck_assert_uint_eq(st.lines, 2);
	ck_assert_uint_eq(st.samples, 1);
	ck_assert_str_eq(st.first_bad_reason, "unterminated label value");
	ck_assert_int_eq(prom_parse(text, 3, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.samples, 1);
	ck_assert_int_eq(prom_parse(text, 2, NULL, collect, &c, &st), 0);   /* "a " */
	ck_assert_str_eq(st.first_bad_reason, "missing value");
	coll_free(&c);
}
END_TEST

START_TEST(empty_input_has_no_lines)
{
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(prom_parse(NULL, 0, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 0);
	ck_assert_int_eq(prom_parse("", 0, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 0);
	ck_assert_int_eq(prom_parse("\n", 1, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 1);
	ck_assert_int_eq(prom_parse("\r\n\n", 3, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 2);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(c.total, 0);
	coll_free(&c);
}
END_TEST

/* ---- limits ---- */

static char *sample_line_of(size_t n)
{
	/* "m{a=\"xxx…\"} 1" of exactly n bytes (n >= 13) */
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memcpy(s, "m{a=\"", 5);
	memset(s + 5, 'x', n - 10);
	memcpy(s + n - 5, "\"} 1", 4);
	s[n - 1] = '\n';
	s[n] = '\0';
	return s;   /* n - 1 bytes of line, then '\n' */
}

START_TEST(a_line_over_max_line_is_skipped_and_counted)
{
	struct prom_limits lim = { .max_line = 100 };
	struct coll c;
	struct prom_stats st;
	char *exact = sample_line_of(101), *over = sample_line_of(102);
	char buf[512];

	ck_assert_uint_eq(strlen(exact), 101);   /* 100 + '\n' */
	snprintf(buf, sizeof(buf), "%s%s%.*s\r\nok 1\n", exact, over, 100, exact);
	coll_init(&c);
	ck_assert_int_eq(parse_str(buf, &lim, &c, &st), 0);
	ck_assert_uint_eq(st.lines, 4);
	ck_assert_uint_eq(st.samples, 3);   /* 100 bytes fit; so do 100 + CRLF */
	ck_assert_uint_eq(st.too_long, 1);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(st.first_bad_line, 2);
	ck_assert_str_eq(st.first_bad_reason, "line too long");
	ck_assert_uint_eq(strlen(rec_label(&c.r[0], "a")), 91);
	ck_assert_str_eq(c.r[2].name, "ok");
	coll_free(&c);
	free(exact);
	free(over);
}
END_TEST

START_TEST(a_one_megabyte_line_with_default_limits_is_skipped)
{
	size_t big = (size_t)1 << 20;
	char *buf = malloc(big + 16);
	struct coll c;
	struct prom_stats st;
	size_t n;

	ck_assert_ptr_nonnull(buf);
	memset(buf, 'a', big);   /* one huge metric name, no value */
	n = big + (size_t)sprintf(buf + big, "\nb 2\nc 3");
	coll_init(&c);
	ck_assert_int_eq(prom_parse(buf, n, NULL, collect, &c, &st), 0);
	ck_assert_uint_eq(st.too_long, 1);
	ck_assert_uint_eq(st.samples, 2);
	ck_assert_str_eq(c.r[0].name, "b");
	coll_free(&c);
	free(buf);
}
END_TEST

START_TEST(more_labels_than_max_labels_skip_the_line)
{
	struct prom_limits lim = { .max_labels = 3 };
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	ck_assert_int_eq(parse_str(
		"three{a=\"1\",b=\"2\",c=\"3\"} 1\n"
		"four{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 2\n"
		"three_again{a=\"1\",b=\"2\",c=\"3\",} 3\n", &lim, &c, &st), 0);
	ck_assert_uint_eq(st.samples, 2);
	ck_assert_uint_eq(st.too_many_labels, 1);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(st.first_bad_line, 2);
	ck_assert_str_eq(st.first_bad_reason, "too many labels");
	ck_assert_str_eq(c.r[1].name, "three_again");
	ck_assert_uint_eq(c.r[1].nlabels, 3);
	coll_free(&c);
}
END_TEST

START_TEST(limits_over_their_ceilings_and_bad_arguments_are_refused)
{
	struct prom_limits over_line = { .max_line = PROM_MAX_LINE_CEILING + 1 };
	struct prom_limits over_labels = { .max_labels = PROM_MAX_LABELS_CEILING + 1 };
	struct prom_limits over_types = { .max_types = PROM_MAX_TYPES_CEILING + 1 };
	struct prom_limits zero = { 0 }, def;
	struct prom_stats st = { .lines = 77 };
	struct coll c;

	coll_init(&c);
	ck_assert_int_eq(parse_str("m 1\n", &over_line, &c, &st), -EINVAL);
	ck_assert_int_eq(parse_str("m 1\n", &over_labels, &c, &st), -EINVAL);
	ck_assert_int_eq(parse_str("m 1\n", &over_types, &c, &st), -EINVAL);
	ck_assert_int_eq(prom_parse("m 1\n", 4, NULL, NULL, NULL, &st), -EINVAL);
	ck_assert_int_eq(prom_parse(NULL, 4, NULL, collect, &c, &st), -EINVAL);
	ck_assert_uint_eq(st.lines, 77);   /* untouched on failure */
	ck_assert_uint_eq(c.total, 0);
	ck_assert_uint_eq(prom_workspace_size(&over_line), 0);
	/* Zero fields are the defaults; the ceilings themselves are allowed. */
	prom_limits_default(&def);
	ck_assert_uint_eq(prom_workspace_size(&zero), prom_workspace_size(NULL));
	ck_assert_uint_eq(prom_workspace_size(&def), prom_workspace_size(NULL));
	ck_assert_int_eq(parse_str("m{a=\"1\"} 1\n", &(struct prom_limits){ .max_line = PROM_MAX_LINE_CEILING,
		.max_labels = PROM_MAX_LABELS_CEILING, .max_types = PROM_MAX_TYPES_CEILING }, &c, &st), 0);
	ck_assert_uint_eq(st.samples, 1);
	coll_free(&c);
}
END_TEST

/* ---- the callback ---- */

START_TEST(a_nonzero_callback_return_stops_the_parse_and_is_returned)
{
	static const char text[] = "a 1\nb 2\n# c\nc 3\nd 4\ne 5\n";
	struct coll c;
	struct prom_stats st;

	coll_init(&c);
	c.stop_at = 3;
	c.stop_rc = 42;
	ck_assert_int_eq(parse_str(text, NULL, &c, &st), 42);
	ck_assert_uint_eq(c.total, 3);
	ck_assert_uint_eq(st.samples, 3);
	ck_assert_uint_eq(st.lines, 4);
	ck_assert_str_eq(c.r[2].name, "c");

	coll_free(&c);
	coll_init(&c);
	c.stop_at = 1;
	c.stop_rc = -5;
	ck_assert_int_eq(parse_str(text, NULL, &c, &st), -5);
	ck_assert_uint_eq(c.total, 1);
	ck_assert_uint_eq(st.lines, 1);
	coll_free(&c);
}
END_TEST

struct label_probe {
	int seen;
};

static int probe_labels(const struct prom_sample *s, void *ud)
{
	struct label_probe *p = ud;

	if (strcmp(s->name, "DCGM_FI_DEV_POWER_USAGE") != 0)
		return 0;
	p->seen++;
	ck_assert_str_eq(prom_label_get(s, "UUID"), "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c");
	ck_assert_str_eq(prom_label_get(s, "gpu"), "0");          /* the first */
	ck_assert_str_eq(prom_label_get(s, "pod_uid"), "");       /* the last, empty */
	ck_assert_ptr_null(prom_label_get(s, "hostname"));        /* exact, case-sensitive */
	ck_assert_ptr_null(prom_label_get(s, "UUI"));
	ck_assert_ptr_null(prom_label_get(s, ""));
	return 0;
}

START_TEST(label_get_finds_a_label_by_exact_name)
{
	size_t len;
	char *buf = read_data("dcgm-exporter-sample.prom", &len);
	struct label_probe p = { 0 };
	struct prom_sample none = { .name = "m", .name_len = 1 };

	ck_assert_int_eq(prom_parse(buf, len, NULL, probe_labels, &p, NULL), 0);
	ck_assert_int_eq(p.seen, 1);
	ck_assert_ptr_null(prom_label_get(&none, "a"));
	free(buf);
}
END_TEST

/* ---- memory ---- */

static struct {
	size_t allocs, frees, last_size, live;
	size_t fail_at;   /* 1-based; 0: never */
} heap;

static void *counting_malloc(size_t n)
{
	void *p;

	heap.allocs++;
	if (heap.fail_at && heap.allocs == heap.fail_at)
		return NULL;
	p = malloc(n);
	if (p) {
		heap.last_size = n;
		heap.live++;
	}
	return p;
}

static void counting_free(void *p)
{
	if (p) {
		heap.frees++;
		heap.live--;
	}
	free(p);
}

static int count_only(const struct prom_sample *s, void *ud)
{
	uint64_t *n = ud;

	(*n)++;
	return 0;
}

START_TEST(a_ten_megabyte_input_parses_in_one_fixed_size_allocation)
{
	/* 10 MB of distinct families, far more than the TYPE table holds. */
	size_t cap = (size_t)11 << 20, at = 0, families = 0, tiny_size;
	char *buf = malloc(cap);
	struct prom_stats st;
	uint64_t n = 0;

	ck_assert_ptr_nonnull(buf);
	while (at < (size_t)10 << 20) {
		at += (size_t)snprintf(buf + at, cap - at,
			"# HELP fam_%zu synthetic\n# TYPE fam_%zu gauge\n"
			"fam_%zu{gpu=\"%zu\",UUID=\"GPU-%08zx\",modelName=\"H200\"} %zu.5 1723621883587\n",
			families, families, families, families % 8, families, families);
		families++;
	}
	prom_set_alloc_funcs(counting_malloc, counting_free);

	ck_assert_int_eq(prom_parse("m 1\n", 4, NULL, count_only, &n, &st), 0);
	ck_assert_uint_eq(heap.allocs, 1);
	tiny_size = heap.last_size;
	ck_assert_uint_eq(tiny_size, prom_workspace_size(NULL));

	memset(&heap, 0, sizeof(heap));
	n = 0;
	ck_assert_int_eq(prom_parse(buf, at, NULL, count_only, &n, &st), 0);
	ck_assert_uint_eq(heap.allocs, 1);
	ck_assert_uint_eq(heap.frees, 1);
	ck_assert_uint_eq(heap.live, 0);
	ck_assert_uint_eq(heap.last_size, tiny_size);   /* not proportional to the input */
	ck_assert_uint_lt(tiny_size, 256 * 1024);
	ck_assert_uint_eq(n, families);
	ck_assert_uint_eq(st.samples, families);
	ck_assert_uint_eq(st.lines, 3 * families);
	ck_assert_uint_eq(st.malformed, 0);
	ck_assert_uint_eq(st.types_dropped, families - 1024);
	prom_set_alloc_funcs(NULL, NULL);
	free(buf);
}
END_TEST

START_TEST(a_failed_allocation_returns_enomem_and_calls_nothing)
{
	struct prom_stats st = { .lines = 9 };
	uint64_t n = 0;

	memset(&heap, 0, sizeof(heap));
	heap.fail_at = 1;
	prom_set_alloc_funcs(counting_malloc, counting_free);
	ck_assert_int_eq(prom_parse("m 1\n", 4, NULL, count_only, &n, &st), -ENOMEM);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(st.lines, 9);
	ck_assert_uint_eq(heap.live, 0);
	ck_assert_int_eq(prom_parse("m 1\n", 4, NULL, count_only, &n, &st), 0);   /* the next one works */
	ck_assert_uint_eq(n, 1);
	prom_set_alloc_funcs(NULL, NULL);
}
END_TEST

static Suite *prom_suite(void)
{
	Suite *s = suite_create("prom");
	TCase *tc;

	tc = tcase_create("exporters");
	tcase_add_test(tc, parses_every_series_of_the_dcgm_sample);
	tcase_add_test(tc, parses_every_series_of_the_npu_sample_with_millisecond_timestamps);
	tcase_add_test(tc, a_minus_one_failed_read_is_an_ordinary_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("syntax");
	tcase_add_test(tc, label_values_are_unescaped);
	tcase_add_loop_test(tc, nan_infinities_and_decimal_forms_parse, 0, (int)NNUMBERS);
	tcase_add_test(tc, timestamps_are_optional_signed_int64_milliseconds);
	tcase_add_test(tc, trailing_commas_empty_sets_and_blanks_between_tokens_are_accepted);
	tcase_add_test(tc, comments_help_and_blank_lines_are_not_samples);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed lines");
	tcase_add_loop_test(tc, a_malformed_line_is_skipped_and_counted, 0, (int)NBAD);
	tcase_add_test(tc, many_malformed_lines_never_stop_the_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("types");
	tcase_add_test(tc, type_is_remembered_per_family_including_histogram_and_summary_suffixes);
	tcase_add_test(tc, the_last_type_line_for_a_family_wins);
	tcase_add_test(tc, a_full_type_table_drops_new_families_and_keeps_the_old_ones);
	suite_add_tcase(s, tc);

	tc = tcase_create("line endings");
	tcase_add_test(tc, crlf_input_parses_like_lf);
	tcase_add_test(tc, a_last_line_without_newline_is_parsed);
	tcase_add_test(tc, nothing_after_len_is_read);
	tcase_add_test(tc, empty_input_has_no_lines);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, a_line_over_max_line_is_skipped_and_counted);
	tcase_add_test(tc, a_one_megabyte_line_with_default_limits_is_skipped);
	tcase_add_test(tc, more_labels_than_max_labels_skip_the_line);
	tcase_add_test(tc, limits_over_their_ceilings_and_bad_arguments_are_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("callback");
	tcase_add_test(tc, a_nonzero_callback_return_stops_the_parse_and_is_returned);
	tcase_add_test(tc, label_get_finds_a_label_by_exact_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_ten_megabyte_input_parses_in_one_fixed_size_allocation);
	tcase_add_test(tc, a_failed_allocation_returns_enomem_and_calls_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(prom_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
