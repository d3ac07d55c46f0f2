/*
 * trace — job traces in JSON lines and CSV (see trace.h and docs/trace-format.md).
 *
 * Owns: the line reader (one fixed buffer of TRACE_MAX_LINE bytes, so a huge line is an
 * error, never an allocation), the CSV cell splitter, the column table, the row → job
 * mapping and its inverse, the stable sort by submit_s.
 * Never: schedules or reads a clock; keeps a reference to a caller's document; writes an
 * output parameter before success; lets a CSV write succeed for a job that would not read
 * back identical.
 * Invariant: every job this file returns has passed job_check (trace rules), and, with a
 * catalog, codec_job_decode.
 */
#include "trace.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define MAX_DURATION_S ((json_int_t)10 * 365 * 86400)   /* codec's ceiling */
#define NAME_IN_MSG 80                                    /* file name chars in messages */

/* Top-level members a trace job may have: the submit body's, plus submit_s. */
static const char *const job_keys[] = {
	"submit_s", "name", "kind", "queue", "priority", "preemptible", "workers", "replicas",
	"min_replicas", "devices", "per_worker", "per_replica", "accelerator", "power",
	"topology", "duration_s", NULL,
};

/* ---------------- columns ---------------- */

enum col {
	COL_SUBMIT_S, COL_DURATION_S, COL_NAME, COL_KIND, COL_COUNT, COL_MIN_REPLICAS,
	COL_DEVICES, COL_NEED_MEMORY_GIB, COL_NEED_BANDWIDTH_GBS, COL_NEED_BF16_TFLOPS,
	COL_NEED_FP8, COL_MODELS, COL_VENDORS, COL_STACK, COL_MIN_MEMORY_GIB, COL_FP8, COL_CAP_W,
	COL_MIN_PERF, COL_TOPOLOGY, COL_PRIORITY, COL_PREEMPTIBLE, COL_QUEUE, _COL_MAX
};

enum col_type { T_NUMBER, T_INT, T_STRING, T_BOOL, T_LIST, T_CAP };

static const struct column {
	const char *name;
	enum col_type type;
	bool required;
} columns[_COL_MAX] = {
	[COL_SUBMIT_S] = {"submit_s", T_NUMBER, true},
	[COL_DURATION_S] = {"duration_s", T_INT, true},
	[COL_NAME] = {"name", T_STRING, true},
	[COL_KIND] = {"kind", T_STRING, true},
	[COL_COUNT] = {"count", T_INT, true},
	[COL_MIN_REPLICAS] = {"min_replicas", T_INT, false},
	[COL_DEVICES] = {"devices", T_INT, false},
	[COL_NEED_MEMORY_GIB] = {"need_memory_gib", T_INT, false},
	[COL_NEED_BANDWIDTH_GBS] = {"need_bandwidth_gbs", T_INT, false},
	[COL_NEED_BF16_TFLOPS] = {"need_bf16_tflops", T_NUMBER, false},
	[COL_NEED_FP8] = {"need_fp8", T_BOOL, false},
	[COL_MODELS] = {"models", T_LIST, false},
	[COL_VENDORS] = {"vendors", T_LIST, false},
	[COL_STACK] = {"stack", T_STRING, false},
	[COL_MIN_MEMORY_GIB] = {"min_memory_gib", T_INT, false},
	[COL_FP8] = {"fp8", T_BOOL, false},
	[COL_CAP_W] = {"cap_w", T_CAP, false},
	[COL_MIN_PERF] = {"min_perf", T_NUMBER, false},
	[COL_TOPOLOGY] = {"topology", T_STRING, false},
	[COL_PRIORITY] = {"priority", T_INT, false},
	[COL_PREEMPTIBLE] = {"preemptible", T_BOOL, false},
	[COL_QUEUE] = {"queue", T_STRING, false},
};

const char *const trace_csv_columns[_COL_MAX + 1] = {
	"submit_s", "duration_s", "name", "kind", "count", "min_replicas", "devices",
	"need_memory_gib", "need_bandwidth_gbs", "need_bf16_tflops", "need_fp8", "models",
	"vendors", "stack", "min_memory_gib", "fp8", "cap_w", "min_perf", "topology", "priority",
	"preemptible", "queue", NULL,
};

/* JSON path of a job member → the CSV column that carries it (longest prefix first). */
static const struct {
	const char *path;
	const char *column;
} field_columns[] = {
	{"per_worker.memory_gib", "need_memory_gib"}, {"per_replica.memory_gib", "need_memory_gib"},
	{"per_worker.bandwidth_gbs", "need_bandwidth_gbs"},
	{"per_replica.bandwidth_gbs", "need_bandwidth_gbs"},
	{"per_worker.bf16_tflops", "need_bf16_tflops"},
	{"per_replica.bf16_tflops", "need_bf16_tflops"},
	{"per_worker.fp8", "need_fp8"}, {"per_replica.fp8", "need_fp8"},
	{"per_worker", "need_*"}, {"per_replica", "need_*"},
	{"accelerator.vendors", "vendors"}, {"accelerator.models", "models"},
	{"accelerator.stack", "stack"}, {"accelerator.min_memory_gib", "min_memory_gib"},
	{"accelerator.fp8", "fp8"}, {"accelerator", "models"},
	{"power.cap_w", "cap_w"}, {"power.cap", "cap_w"}, {"power.min_perf", "min_perf"},
	{"power", "cap_w"},
	{"workers", "count"}, {"replicas", "count"},
};

static void field_to_column(struct err *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < sizeof(field_columns) / sizeof(field_columns[0]); i++) {
		size_t n = strlen(field_columns[i].path);
		if (strncmp(e->field, field_columns[i].path, n) == 0 &&
		    (e->field[n] == '\0' || e->field[n] == '.' || e->field[n] == '[')) {
			snprintf(e->field, sizeof(e->field), "%s", field_columns[i].column);
			return;
		}
	}
	/* other members (name, kind, devices, topology, …) are named like their column */
}

/* Prefix e->message with "NAME:LINE: FIELD: " (the error path never allocates). */
static int at_line(struct err *e, const char *name, size_t line, int rc)
{
	char msg[sizeof(e->message)];
	int n;

	if (!e)
		return rc;
	if (e->field[0])
		n = snprintf(msg, sizeof(msg), "%.*s:%zu: %s: %s", NAME_IN_MSG, name, line,
			     e->field, e->message);
	else
		n = snprintf(msg, sizeof(msg), "%.*s:%zu: %s", NAME_IN_MSG, name, line, e->message);
	if (n >= 0)
		memcpy(e->message, msg, sizeof(msg));
	return rc;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* ---------------- formats ---------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

enum trace_format trace_format_for_path(const char *path)
{
	if (!path)
		return TRACE_AUTO;
	if (ends_with(path, ".csv") || ends_with(path, ".CSV"))
		return TRACE_CSV;
	if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json") ||
	    ends_with(path, ".JSONL") || ends_with(path, ".JSON"))
		return TRACE_JSONL;
	return TRACE_AUTO;
}

/* ---------------- the trace rules for one job ---------------- */

static json_t *get_nonnull(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return v && !json_is_null(v) ? v : NULL;
}

/* Drop null members of o and of the objects directly inside it. */
static int drop_nulls(json_t *o)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(o, tmp, key, v) {
		if (json_is_null(v)) {
			if (json_object_del(o, key) < 0)
				return -ENOMEM;
		} else if (json_is_object(v)) {
			const char *k2;
			json_t *v2;
			void *tmp2;
			json_object_foreach_safe(v, tmp2, k2, v2)
				if (json_is_null(v2) && json_object_del(v, k2) < 0)
					return -ENOMEM;
		}
	}
	return 0;
}

/*
 * Trace rules and normalisation: members of the submit body only, submit_s a number in
 * [0, TRACE_MAX_SUBMIT_S] (made a real rounded to the millisecond), duration_s an integer
 * in [1, 10 years], name and kind present. *t gets submit_s.
 */
static int job_check(json_t *job, double *t, struct err *e)
{
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(job))
		return err_set(e, ERR_INVALID, NULL, "a job must be a JSON object");
	if ((rc = drop_nulls(job)) < 0)
		return err_set(e, rc, NULL, "out of memory");
	json_object_foreach(job, key, v) {
		bool ok = false;
		for (const char *const *k = job_keys; *k && !ok; k++)
			ok = strcmp(*k, key) == 0;
		if (!ok) {
			char field[sizeof(e->field)];
			snprintf(field, sizeof(field), "%.80s", key);
			return err_set(e, ERR_INVALID, field, "unknown field");
		}
	}
	v = get_nonnull(job, "submit_s");
	if (!v)
		return err_set(e, ERR_INVALID, "submit_s", "is required in a trace");
	double s = json_number_value(v);
	if (!json_is_number(v) || !isfinite(s) || s < 0 || s > TRACE_MAX_SUBMIT_S)
		return err_set(e, ERR_INVALID, "submit_s", "must be a number of seconds between 0 and %g",
			       TRACE_MAX_SUBMIT_S);
	s = round(s * 1000.0) / 1000.0;
	if (json_object_set_new(job, "submit_s", json_real(s)) < 0)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	v = get_nonnull(job, "duration_s");
	if (!v)
		return err_set(e, ERR_INVALID, "duration_s", "is required in a trace");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > MAX_DURATION_S)
		return err_set(e, ERR_INVALID, "duration_s",
			       "must be an integer number of seconds between 1 and %lld",
			       (long long)MAX_DURATION_S);
	v = get_nonnull(job, "name");
	if (!v || !json_is_string(v) || json_string_length(v) == 0)
		return err_set(e, ERR_INVALID, "name", "is required (a string)");
	v = get_nonnull(job, "kind");
	const char *kind = json_string_value(v);
	if (!kind || (strcmp(kind, "training") != 0 && strcmp(kind, "inference") != 0))
		return err_set(e, ERR_INVALID, "kind", "must be training or inference");
	if (strcmp(kind, "inference") == 0 && !json_object_get(job, "per_replica") &&
	    (v = json_object_get(job, "per_worker"))) {
		json_incref(v);
		if (json_object_set_new(job, "per_replica", v) < 0 ||
		    json_object_del(job, "per_worker") < 0)
			return err_set(e, -ENOMEM, NULL, "out of memory");
	}
	*t = s;
	return 0;
}

int trace_job_decode(const json_t *job, const struct fleet *catalog, struct job *j,
		     double *submit_s, struct err *e)
{
	json_t *copy;
	const json_t *v;
	int rc;

	if (!json_is_object(job))
		return err_set(e, ERR_INVALID, NULL, "a job must be a JSON object");
	v = json_object_get(job, "submit_s");
	if (!v || !json_is_number(v) || !(json_number_value(v) >= 0))
		return err_set(e, ERR_INVALID, "submit_s", "must be a number of seconds >= 0");
	copy = json_copy((json_t *)job);
	if (!copy || (json_object_del(copy, "submit_s") < 0)) {
		json_decref(copy);
		return err_set(e, -ENOMEM, NULL, "out of memory");
	}
	rc = codec_job_decode(copy, catalog, j, e);
	json_decref(copy);
	if (rc < 0)
		return rc;
	*submit_s = json_number_value(v);
	return 0;
}

/* ---------------- reading ---------------- */

struct entry {
	double t;
	size_t seq;
	json_t *job;
};

struct reader {
	FILE *in;
	const char *name;
	const struct fleet *catalog;
	enum trace_format fmt;
	char *buf;                  /* TRACE_MAX_LINE + 1 bytes */
	size_t len;                 /* of the current line */
	size_t line;                /* 1-based number of the current line */
	int col_of[_COL_MAX];       /* CSV: cell index of each column, -1 = absent */
	size_t ncells;              /* CSV: cells in the header */
	bool have_header;
	struct entry *v;
	size_t n, cap;
};

/* Next line into r->buf (NUL-terminated, no newline, no trailing CR). 1 = a line, 0 = end. */
static int read_line(struct reader *r, struct err *e)
{
	size_t n = 0;
	int c;

	r->line++;
	while ((c = getc_unlocked(r->in)) != EOF && c != '\n') {
		if (c == '\0')
			return at_line(e, r->name, r->line,
				       err_set(e, ERR_INVALID, NULL, "contains a NUL byte"));
		if (n >= TRACE_MAX_LINE)
			return at_line(e, r->name, r->line,
				       err_set(e, ERR_TOO_LARGE, NULL,
					       "line longer than %d bytes", TRACE_MAX_LINE));
		r->buf[n++] = (char)c;
	}
	if (ferror(r->in))
		return err_set(e, -EIO, NULL, "%.*s: read error: %s", NAME_IN_MSG, r->name,
			       strerror(errno ? errno : EIO));
	if (c == EOF && n == 0)
		return 0;
	if (n > 0 && r->buf[n - 1] == '\r')
		n--;
	r->buf[n] = '\0';
	/* a UTF-8 byte-order mark on the first line is not content */
	if (r->line == 1 && n >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) {
		memmove(r->buf, r->buf + 3, n - 2);
		n -= 3;
	}
	r->len = n;
	return 1;
}

static bool skippable(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == '#';
}

/* Check (and with a catalog, decode) one job; then keep it. Takes job's reference. */
static int keep(struct reader *r, json_t *job, struct err *e)
{
	double t = 0;
	int rc;

	if ((rc = job_check(job, &t, e)) < 0)
		goto fail;
	if (r->catalog) {
		struct job *j = job_new();
		double t2;
		if (!j) {
			rc = err_set(e, -ENOMEM, NULL, "out of memory");
			goto fail;
		}
		rc = trace_job_decode(job, r->catalog, j, &t2, e);
		job_free(j);
		if (rc < 0)
			goto fail;
	}
	if (r->n >= TRACE_MAX_JOBS) {
		rc = err_set(e, ERR_TOO_LARGE, NULL, "more than %d jobs in one trace", TRACE_MAX_JOBS);
		goto fail;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		if (cap > TRACE_MAX_JOBS)
			cap = TRACE_MAX_JOBS;
		struct entry *v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			rc = err_set(e, -ENOMEM, NULL, "out of memory");
			goto fail;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n] = (struct entry){.t = t, .seq = r->n, .job = job};
	r->n++;
	return 0;
fail:
	json_decref(job);
	if (r->fmt == TRACE_CSV)
		field_to_column(e);
	return at_line(e, r->name, r->line, rc);
}

static int jsonl_line(struct reader *r, struct err *e)
{
	json_error_t je;
	json_t *job = json_loadb(r->buf, r->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);

	if (!job)
		return at_line(e, r->name, r->line,
			       err_set(e, ERR_INVALID, NULL, "not JSON: %s (column %d)", je.text,
				       je.column));
	if (!json_is_object(job)) {
		json_decref(job);
		return at_line(e, r->name, r->line,
			       err_set(e, ERR_INVALID, NULL, "a line must hold one JSON object"));
	}
	return keep(r, job, e);
}

/* ---- CSV cells ---- */

/*
 * Split r->buf into cells in place (RFC 4180 quoting on one line: "a ""b"", c" is one
 * cell; unquoted cells are trimmed of spaces and tabs). cells[i] point into r->buf.
 */
static int split_cells(struct reader *r, char **cells, size_t max, size_t *ncells,
		       struct err *e)
{
	char *p = r->buf;
	size_t n = 0;

	for (;;) {
		char *out, *start;
		while (*p == ' ' || *p == '\t')
			p++;
		if (n == max)
			return at_line(e, r->name, r->line,
				       err_set(e, ERR_INVALID, NULL, "more than %zu cells", max));
		if (*p == '"') {
			start = out = ++p;
			for (;;) {
				if (*p == '\0')
					return at_line(e, r->name, r->line,
						       err_set(e, ERR_INVALID, NULL,
							       "cell %zu: a quoted cell does not end on this line",
							       n + 1));
				if (*p == '"' && p[1] == '"') {
					*out++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*out++ = *p++;
				}
			}
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != ',' && *p != '\0')
				return at_line(e, r->name, r->line,
					       err_set(e, ERR_INVALID, NULL,
						       "cell %zu: text after the closing quote", n + 1));
		} else {
			start = p;
			while (*p != ',' && *p != '\0') {
				if (*p == '"')
					return at_line(e, r->name, r->line,
						       err_set(e, ERR_INVALID, NULL,
							       "cell %zu: a quote inside an unquoted cell",
							       n + 1));
				p++;
			}
			out = p;
			while (out > start && (out[-1] == ' ' || out[-1] == '\t'))
				out--;
		}
		char sep = *p;
		*out = '\0';
		cells[n++] = start;
		if (sep == '\0')
			break;
		p++;               /* past ',' (out <= p, so the NUL never lands beyond it) */
	}
	*ncells = n;
	return 0;
}

static int csv_header(struct reader *r, struct err *e)
{
	char *cells[_COL_MAX + 8];
	size_t n;
	int rc;

	for (int c = 0; c < _COL_MAX; c++)
		r->col_of[c] = -1;
	if ((rc = split_cells(r, cells, sizeof(cells) / sizeof(cells[0]), &n, e)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int c = 0;
		while (c < _COL_MAX && strcmp(columns[c].name, cells[i]) != 0)
			c++;
		if (c == _COL_MAX) {
			char field[sizeof(e->field)];
			snprintf(field, sizeof(field), "%.80s", cells[i]);
			err_set(e, ERR_INVALID, field, "unknown column (docs/trace-format.md lists them)");
			return at_line(e, r->name, r->line, ERR_INVALID);
		}
		if (r->col_of[c] >= 0) {
			err_set(e, ERR_INVALID, columns[c].name, "column given twice");
			return at_line(e, r->name, r->line, ERR_INVALID);
		}
		r->col_of[c] = (int)i;
	}
	for (int c = 0; c < _COL_MAX; c++)
		if (columns[c].required && r->col_of[c] < 0) {
			err_set(e, ERR_INVALID, columns[c].name, "the header lacks this required column");
			return at_line(e, r->name, r->line, ERR_INVALID);
		}
	r->ncells = n;
	r->have_header = true;
	return 0;
}

static bool integer_text(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* One non-empty cell → a JSON value (new reference) or NULL with e filled. */
static json_t *cell_value(enum col c, const char *s, struct err *e)
{
	const char *cname = columns[c].name;
	char *end;

	if (columns[c].type == T_CAP && strcmp(s, "auto") == 0)
		return json_string("auto");
	switch (columns[c].type) {
	case T_CAP:             /* else an integer number of watts */
	case T_INT: {
		if (!integer_text(s))
			goto not_int;
		errno = 0;
		long long x = strtoll(s, &end, 10);
		if (errno || *end)
			goto not_int;
		json_t *v = json_integer((json_int_t)x);
		if (!v)
			err_set(e, -ENOMEM, NULL, "out of memory");
		return v;
	not_int:
		err_set(e, ERR_INVALID, cname, columns[c].type == T_CAP
			? "must be an integer number of watts or auto, not \"%.40s\""
			: "must be an integer, not \"%.40s\"", s);
		return NULL;
	}
	case T_NUMBER: {
		json_t *v;
		if (integer_text(s)) {
			errno = 0;
			long long x = strtoll(s, &end, 10);
			if (errno || *end)
				goto not_number;
			v = json_integer((json_int_t)x);
		} else {
			errno = 0;
			double d = strtod(s, &end);
			if (end == s || *end || errno || !isfinite(d))
				goto not_number;
			v = json_real(d);
		}
		if (!v)
			err_set(e, -ENOMEM, NULL, "out of memory");
		return v;
	not_number:
		err_set(e, ERR_INVALID, cname, "must be a number, not \"%.40s\"", s);
		return NULL;
	}
	case T_BOOL:
		if (strcmp(s, "true") == 0)
			return json_true();
		if (strcmp(s, "false") == 0)
			return json_false();
		err_set(e, ERR_INVALID, cname, "must be true or false, not \"%.40s\"", s);
		return NULL;
	case T_STRING: {
		json_t *v = json_string(s);
		if (!v)
			err_set(e, ERR_INVALID, cname, "must be UTF-8 text");
		return v;
	}
	case T_LIST: {
		json_t *arr = json_array();
		const char *p = s;
		if (!arr) {
			err_set(e, -ENOMEM, NULL, "out of memory");
			return NULL;
		}
		for (;;) {
			const char *q = strchr(p, ';');
			size_t len = q ? (size_t)(q - p) : strlen(p);
			while (len && (*p == ' ' || *p == '\t')) {
				p++;
				len--;
			}
			while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
				len--;
			if (len == 0) {
				json_decref(arr);
				err_set(e, ERR_INVALID, cname, "an empty item in the ';'-separated list");
				return NULL;
			}
			json_t *item = json_stringn(p, len);
			if (!item || json_array_append_new(arr, item) < 0) {
				json_decref(arr);
				err_set(e, ERR_INVALID, cname, "must be UTF-8 text");
				return NULL;
			}
			if (!q)
				break;
			p = q + 1;
		}
		return arr;
	}
	}
	err_set(e, ERR_INVALID, cname, "bad column type");
	return NULL;
}

static int set_if(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set(o, key, v) : 0;
}

/* Build the job object of one row from its parsed cells (NULL = not given). */
static json_t *row_job(json_t *const *val, struct err *e)
{
	json_t *job = json_object(), *need = NULL, *accel = NULL, *power = NULL;
	const char *kind = json_string_value(val[COL_KIND]);
	bool training = kind && strcmp(kind, "training") == 0;
	int rc = 0;

	if (!job)
		goto nomem;
	if (kind && !training && strcmp(kind, "inference") != 0) {
		err_set(e, ERR_INVALID, "kind", "must be training or inference");
		goto fail;
	}
	rc |= set_if(job, "submit_s", val[COL_SUBMIT_S]);
	rc |= set_if(job, "name", val[COL_NAME]);
	rc |= set_if(job, "kind", val[COL_KIND]);
	rc |= set_if(job, "queue", val[COL_QUEUE]);
	rc |= set_if(job, "priority", val[COL_PRIORITY]);
	rc |= set_if(job, "preemptible", val[COL_PREEMPTIBLE]);
	rc |= set_if(job, training ? "workers" : "replicas", val[COL_COUNT]);
	rc |= set_if(job, "min_replicas", val[COL_MIN_REPLICAS]);
	rc |= set_if(job, "devices", val[COL_DEVICES]);
	if (val[COL_NEED_MEMORY_GIB] || val[COL_NEED_BANDWIDTH_GBS] || val[COL_NEED_BF16_TFLOPS] ||
	    val[COL_NEED_FP8]) {
		if (!(need = json_object()))
			goto nomem;
		rc |= set_if(need, "memory_gib", val[COL_NEED_MEMORY_GIB]);
		rc |= set_if(need, "bandwidth_gbs", val[COL_NEED_BANDWIDTH_GBS]);
		rc |= set_if(need, "bf16_tflops", val[COL_NEED_BF16_TFLOPS]);
		rc |= set_if(need, "fp8", val[COL_NEED_FP8]);
		rc |= json_object_set(job, training ? "per_worker" : "per_replica", need);
	}
	if (val[COL_VENDORS] || val[COL_MODELS] || val[COL_STACK] || val[COL_MIN_MEMORY_GIB] ||
	    val[COL_FP8]) {
		if (!(accel = json_object()))
			goto nomem;
		rc |= set_if(accel, "vendors", val[COL_VENDORS]);
		rc |= set_if(accel, "models", val[COL_MODELS]);
		rc |= set_if(accel, "stack", val[COL_STACK]);
		rc |= set_if(accel, "min_memory_gib", val[COL_MIN_MEMORY_GIB]);
		rc |= set_if(accel, "fp8", val[COL_FP8]);
		rc |= json_object_set(job, "accelerator", accel);
	}
	bool cap_auto = json_is_string(val[COL_CAP_W]);
	if (val[COL_MIN_PERF] && !cap_auto) {
		err_set(e, ERR_INVALID, "min_perf", "only with cap_w auto");
		goto fail;
	}
	if (val[COL_CAP_W]) {
		if (!(power = json_object()))
			goto nomem;
		if (cap_auto) {
			rc |= json_object_set(power, "cap", val[COL_CAP_W]);
			rc |= set_if(power, "min_perf", val[COL_MIN_PERF]);
		} else {
			rc |= json_object_set(power, "cap_w", val[COL_CAP_W]);
		}
		rc |= json_object_set(job, "power", power);
	}
	rc |= set_if(job, "topology", val[COL_TOPOLOGY]);
	rc |= set_if(job, "duration_s", val[COL_DURATION_S]);
	if (rc)
		goto nomem;
	json_decref(need);
	json_decref(accel);
	json_decref(power);
	return job;
nomem:
	err_set(e, -ENOMEM, NULL, "out of memory");
fail:
	json_decref(need);
	json_decref(accel);
	json_decref(power);
	json_decref(job);
	return NULL;
}

static int csv_line(struct reader *r, struct err *e)
{
	char *cells[_COL_MAX + 8];
	json_t *val[_COL_MAX] = {0};
	json_t *job = NULL;
	size_t n;
	int rc;

	if (!r->have_header)
		return csv_header(r, e);
	if ((rc = split_cells(r, cells, sizeof(cells) / sizeof(cells[0]), &n, e)) < 0)
		return rc;
	if (n != r->ncells)
		return at_line(e, r->name, r->line,
			       err_set(e, ERR_INVALID, NULL, "%zu cells, but the header has %zu", n,
				       r->ncells));
	for (int c = 0; c < _COL_MAX; c++) {
		if (r->col_of[c] < 0 || cells[r->col_of[c]][0] == '\0') {
			if (columns[c].required) {
				rc = err_set(e, ERR_INVALID, columns[c].name, "is required");
				goto fail;
			}
			continue;
		}
		if (!(val[c] = cell_value((enum col)c, cells[r->col_of[c]], e))) {
			rc = e ? e->code : ERR_INVALID;
			goto fail;
		}
	}
	if (!(job = row_job(val, e))) {
		rc = e ? e->code : ERR_INVALID;
		goto fail;
	}
	for (int c = 0; c < _COL_MAX; c++)
		json_decref(val[c]);
	return keep(r, job, e);
fail:
	for (int c = 0; c < _COL_MAX; c++)
		json_decref(val[c]);
	return at_line(e, r->name, r->line, rc);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int trace_read(FILE *in, const char *name, enum trace_format fmt, const struct fleet *catalog,
	       json_t **jobs_out, struct err *e)
{
	struct reader r = {.in = in, .name = name ? name : "trace", .catalog = catalog,
			   .fmt = fmt};
	json_t *arr = NULL;
	int rc;

	if ((unsigned)fmt >= _TRACE_FORMAT_MAX)
		return err_set(e, ERR_INVALID, NULL, "unknown trace format");
	if (!(r.buf = malloc(TRACE_MAX_LINE + 1))) {
		rc = err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	flockfile(in);
	while ((rc = read_line(&r, e)) > 0) {
		if (skippable(r.buf))
			continue;
		const char *p = r.buf + strspn(r.buf, " \t");
		if (r.n == 0 && !r.have_header && *p == '[' && r.fmt != TRACE_CSV) {
			rc = at_line(e, r.name, r.line,
				     err_set(e, ERR_INVALID, NULL,
					     "a JSON array: a trace holds one job object per line (JSON lines)"));
			break;
		}
		if (r.fmt == TRACE_AUTO)
			r.fmt = *p == '{' ? TRACE_JSONL : TRACE_CSV;
		if ((rc = r.fmt == TRACE_CSV ? csv_line(&r, e) : jsonl_line(&r, e)) < 0)
			break;
	}
	funlockfile(in);
	if (rc < 0)
		goto fail;
	if (r.n > 1)
		qsort(r.v, r.n, sizeof(*r.v), cmp_entry);
	if (!(arr = json_array())) {
		rc = err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < r.n; i++) {
		if (json_array_append(arr, r.v[i].job) < 0) {
			rc = err_set(e, -ENOMEM, NULL, "out of memory");
			goto fail;
		}
	}
	for (size_t i = 0; i < r.n; i++)
		json_decref(r.v[i].job);
	free(r.v);
	free(r.buf);
	*jobs_out = arr;
	return 0;
fail:
	json_decref(arr);
	for (size_t i = 0; i < r.n; i++)
		json_decref(r.v[i].job);
	free(r.v);
	free(r.buf);
	return rc;
}

int trace_load(const char *path, enum trace_format fmt, const struct fleet *catalog,
	       json_t **jobs_out, struct err *e)
{
	bool std = strcmp(path, "-") == 0;
	FILE *in = std ? stdin : fopen(path, "r");
	int rc;

	if (!in) {
		rc = errno ? -errno : -EIO;
		return err_set(e, rc, NULL, "%.*s: %s", NAME_IN_MSG * 2, path, strerror(-rc));
	}
	if (fmt == TRACE_AUTO)
		fmt = trace_format_for_path(path);
	rc = trace_read(in, std ? "stdin" : path, fmt, catalog, jobs_out, e);
	if (!std)
		fclose(in);
	return rc;
}

/* ---------------- writing ---------------- */

/* The shortest of %.15g / %.16g / %.17g that reads back exactly, always with '.' or 'e'
 * so that it reads back as a real, never an integer. */
static void fmt_real(char *buf, size_t size, double x)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	if (!strpbrk(buf, ".eEnN")) {
		size_t n = strlen(buf);
		if (n + 2 < size)
			memcpy(buf + n, ".0", 3);
	}
}

static bool real_exact15(const json_t *v)
{
	char buf[40];
	size_t i;
	const char *k;
	json_t *x;

	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
		return strtod(buf, NULL) == json_real_value(v);
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			if (!real_exact15(x))
				return false;
	} else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x)
			if (!real_exact15(x))
				return false;
	}
	return true;
}

int trace_write_jsonl(FILE *out, const json_t *jobs, struct err *e)
{
	size_t i;
	json_t *job;

	if (!json_is_array(jobs))
		return err_set(e, ERR_INVALID, NULL, "jobs must be a JSON array");
	json_array_foreach(jobs, i, job) {
		char field[24];
		if (!json_is_object(job))
			return err_set(e, ERR_INVALID, (snprintf(field, sizeof(field), "[%zu]", i), field),
				       "must be a job object");
		size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(real_exact15(job) ? 15 : 17);
		char *s = json_dumps(job, flags);
		if (!s)
			return err_set(e, -ENOMEM, NULL, "out of memory");
		int w = fputs(s, out);
		free(s);
		if (w == EOF || putc('\n', out) == EOF)
			return err_set(e, -EIO, NULL, "write error: %s", strerror(errno ? errno : EIO));
	}
	if (fflush(out) == EOF || ferror(out))
		return err_set(e, -EIO, NULL, "write error: %s", strerror(errno ? errno : EIO));
	return 0;
}

/* A growing row buffer with a fixed ceiling (TRACE_MAX_LINE). */
struct row {
	char buf[TRACE_MAX_LINE + 2];
	size_t len;
	bool full;
};

static void row_put(struct row *w, const char *s, size_t n)
{
	if (w->full || w->len + n > TRACE_MAX_LINE) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

/* Append a cell (quoted when it holds ',', '"', or edge spaces) after a comma if needed. */
static void row_cell(struct row *w, bool first, const char *s)
{
	size_t n = strlen(s);
	bool quote = strpbrk(s, ",\"") != NULL ||
		     (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'));
	if (!first)
		row_put(w, ",", 1);
	if (!quote) {
		row_put(w, s, n);
		return;
	}
	row_put(w, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			row_put(w, "\"", 1);
		row_put(w, p, 1);
	}
	row_put(w, "\"", 1);
}

struct cells {
	char text[_COL_MAX][TRACE_MAX_LINE / 8];
	bool set[_COL_MAX];
};

static int no_form(struct err *e, size_t i, const char *path, const char *why)
{
	char field[sizeof(e->field)];
	snprintf(field, sizeof(field), "[%zu].%.60s", i, path);
	return err_set(e, ERR_INVALID, field, "has no CSV form: %s", why);
}

static int put_text(struct cells *c, enum col col, const char *s, size_t i, const char *path,
		    struct err *e)
{
	if (!s)
		return no_form(e, i, path, "must be a string");
	if (!*s)
		return no_form(e, i, path, "an empty string");
	if (has_control(s))
		return no_form(e, i, path, "holds a control character");
	if (strlen(s) >= sizeof(c->text[0]))
		return no_form(e, i, path, "too long");
	snprintf(c->text[col], sizeof(c->text[0]), "%s", s);
	c->set[col] = true;
	return 0;
}

static int put_int(struct cells *c, enum col col, const json_t *v, size_t i, const char *path,
		   struct err *e)
{
	if (!json_is_integer(v))
		return no_form(e, i, path, "must be an integer");
	snprintf(c->text[col], sizeof(c->text[0]), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	c->set[col] = true;
	return 0;
}

static int put_number(struct cells *c, enum col col, const json_t *v, size_t i,
		      const char *path, struct err *e)
{
	if (json_is_integer(v))
		return put_int(c, col, v, i, path, e);
	if (!json_is_real(v) || !isfinite(json_real_value(v)))
		return no_form(e, i, path, "must be a number");
	fmt_real(c->text[col], sizeof(c->text[0]), json_real_value(v));
	c->set[col] = true;
	return 0;
}

static int put_bool(struct cells *c, enum col col, const json_t *v, size_t i, const char *path,
		    struct err *e)
{
	if (!json_is_boolean(v))
		return no_form(e, i, path, "must be true or false");
	snprintf(c->text[col], sizeof(c->text[0]), "%s", json_is_true(v) ? "true" : "false");
	c->set[col] = true;
	return 0;
}

static int put_list(struct cells *c, enum col col, const json_t *v, size_t i, const char *path,
		    struct err *e)
{
	size_t k, used = 0;
	json_t *x;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return no_form(e, i, path, "must be a non-empty list of names");
	json_array_foreach(v, k, x) {
		const char *s = json_string_value(x);
		if (!s || !*s || has_control(s) || strchr(s, ';') || s[0] == ' ' || s[0] == '\t' ||
		    s[strlen(s) - 1] == ' ' || s[strlen(s) - 1] == '\t')
			return no_form(e, i, path,
				       "items must be names without ';', control characters or edge spaces");
		size_t n = strlen(s);
		if (used + n + 2 >= sizeof(c->text[0]))
			return no_form(e, i, path, "too long");
		if (k)
			c->text[col][used++] = ';';
		memcpy(c->text[col] + used, s, n + 1);
		used += n;
	}
	c->set[col] = true;
	return 0;
}

/* Keys of o must be in allowed; o must not be empty. */
static int only(const json_t *o, const char *const *allowed, size_t i, const char *path,
		struct err *e)
{
	const char *key;
	json_t *v;

	if (!json_is_object(o) || json_object_size(o) == 0)
		return no_form(e, i, path, "must be a non-empty object");
	json_object_foreach((json_t *)o, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok) {
			char p[64];
			snprintf(p, sizeof(p), "%s.%.40s", path, key);
			return no_form(e, i, p, "an unknown member");
		}
	}
	return 0;
}

static int job_cells(const json_t *job, size_t i, struct cells *c, struct err *e)
{
	static const char *const need_keys[] = {"memory_gib", "bandwidth_gbs", "bf16_tflops",
						"fp8", NULL};
	static const char *const accel_keys[] = {"vendors", "models", "stack", "min_memory_gib",
						 "fp8", NULL};
	const char *key;
	json_t *v;
	int rc;

	memset(c->set, 0, sizeof(c->set));
	if (!json_is_object(job))
		return no_form(e, i, "", "must be a job object");
	const char *kind = json_string_value(json_object_get(job, "kind"));
	if (!kind || (strcmp(kind, "training") != 0 && strcmp(kind, "inference") != 0))
		return no_form(e, i, "kind", "must be training or inference");
	bool training = strcmp(kind, "training") == 0;
	json_object_foreach((json_t *)job, key, v) {
		rc = 0;
		if (json_is_null(v))
			return no_form(e, i, key, "null (leave the member out)");
		if (strcmp(key, "submit_s") == 0) {
			if (!json_is_number(v) || !(json_number_value(v) >= 0))
				return no_form(e, i, key, "must be a number >= 0");
			fmt_real(c->text[COL_SUBMIT_S], sizeof(c->text[0]), json_number_value(v));
			c->set[COL_SUBMIT_S] = true;
		} else if (strcmp(key, "duration_s") == 0) {
			rc = put_int(c, COL_DURATION_S, v, i, key, e);
		} else if (strcmp(key, "name") == 0) {
			rc = put_text(c, COL_NAME, json_string_value(v), i, key, e);
		} else if (strcmp(key, "kind") == 0) {
			rc = put_text(c, COL_KIND, kind, i, key, e);
		} else if (strcmp(key, training ? "workers" : "replicas") == 0) {
			rc = put_int(c, COL_COUNT, v, i, key, e);
		} else if (strcmp(key, "min_replicas") == 0) {
			rc = put_int(c, COL_MIN_REPLICAS, v, i, key, e);
		} else if (strcmp(key, "devices") == 0) {
			rc = put_int(c, COL_DEVICES, v, i, key, e);
		} else if (strcmp(key, training ? "per_worker" : "per_replica") == 0) {
			json_t *x;
			if ((rc = only(v, need_keys, i, key, e)) < 0)
				return rc;
			if ((x = json_object_get(v, "memory_gib")) &&
			    (rc = put_int(c, COL_NEED_MEMORY_GIB, x, i, "need.memory_gib", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "bandwidth_gbs")) &&
			    (rc = put_int(c, COL_NEED_BANDWIDTH_GBS, x, i, "need.bandwidth_gbs", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "bf16_tflops")) &&
			    (rc = put_number(c, COL_NEED_BF16_TFLOPS, x, i, "need.bf16_tflops", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "fp8")) &&
			    (rc = put_bool(c, COL_NEED_FP8, x, i, "need.fp8", e)) < 0)
				return rc;
		} else if (strcmp(key, "accelerator") == 0) {
			json_t *x;
			if ((rc = only(v, accel_keys, i, key, e)) < 0)
				return rc;
			if ((x = json_object_get(v, "vendors")) &&
			    (rc = put_list(c, COL_VENDORS, x, i, "accelerator.vendors", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "models")) &&
			    (rc = put_list(c, COL_MODELS, x, i, "accelerator.models", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "stack")) &&
			    (rc = put_text(c, COL_STACK, json_string_value(x), i, "accelerator.stack",
					   e)) < 0)
				return rc;
			if ((x = json_object_get(v, "min_memory_gib")) &&
			    (rc = put_int(c, COL_MIN_MEMORY_GIB, x, i, "accelerator.min_memory_gib", e)) < 0)
				return rc;
			if ((x = json_object_get(v, "fp8")) &&
			    (rc = put_bool(c, COL_FP8, x, i, "accelerator.fp8", e)) < 0)
				return rc;
		} else if (strcmp(key, "power") == 0) {
			json_t *cap = json_object_get(v, "cap"), *cap_w = json_object_get(v, "cap_w"),
			       *mp = json_object_get(v, "min_perf");
			static const char *const auto_keys[] = {"cap", "min_perf", NULL};
			static const char *const fixed_keys[] = {"cap_w", NULL};
			if ((rc = only(v, cap ? auto_keys : fixed_keys, i, key, e)) < 0)
				return rc;
			if (cap) {
				if (!json_is_string(cap) || strcmp(json_string_value(cap), "auto") != 0)
					return no_form(e, i, "power.cap", "must be \"auto\"");
				snprintf(c->text[COL_CAP_W], sizeof(c->text[0]), "auto");
				c->set[COL_CAP_W] = true;
				if (mp && (rc = put_number(c, COL_MIN_PERF, mp, i, "power.min_perf", e)) < 0)
					return rc;
			} else if ((rc = put_int(c, COL_CAP_W, cap_w, i, "power.cap_w", e)) < 0) {
				return rc;
			}
		} else if (strcmp(key, "topology") == 0) {
			rc = put_text(c, COL_TOPOLOGY, json_string_value(v), i, key, e);
		} else if (strcmp(key, "priority") == 0) {
			rc = put_int(c, COL_PRIORITY, v, i, key, e);
		} else if (strcmp(key, "preemptible") == 0) {
			rc = put_bool(c, COL_PREEMPTIBLE, v, i, key, e);
		} else if (strcmp(key, "queue") == 0) {
			rc = put_text(c, COL_QUEUE, json_string_value(v), i, key, e);
		} else {
			return no_form(e, i, key, training ? "not a member of a training job"
					     : "not a member of an inference job");
		}
		if (rc < 0)
			return rc;
	}
	for (int col = 0; col < _COL_MAX; col++)
		if (columns[col].required && !c->set[col])
			return no_form(e, i, col == COL_COUNT ? (training ? "workers" : "replicas")
							     : columns[col].name,
				       "is required");
	return 0;
}

int trace_write_csv(FILE *out, const json_t *jobs, struct err *e)
{
	struct cells *c = NULL;
	struct row *w = NULL;
	size_t i;
	json_t *job;
	int rc = 0;

	if (!json_is_array(jobs))
		return err_set(e, ERR_INVALID, NULL, "jobs must be a JSON array");
	c = malloc(sizeof(*c));
	w = malloc(sizeof(*w));
	if (!c || !w) {
		rc = err_set(e, -ENOMEM, NULL, "out of memory");
		goto out;
	}
	w->len = 0;
	w->full = false;
	for (int col = 0; col < _COL_MAX; col++)
		row_cell(w, col == 0, columns[col].name);
	row_put(w, "\n", 1);
	if (fwrite(w->buf, 1, w->len, out) != w->len)
		goto io;
	json_array_foreach(jobs, i, job) {
		if ((rc = job_cells(job, i, c, e)) < 0)
			goto out;
		w->len = 0;
		w->full = false;
		for (int col = 0; col < _COL_MAX; col++)
			row_cell(w, col == 0, c->set[col] ? c->text[col] : "");
		if (w->full) {
			char field[24];
			snprintf(field, sizeof(field), "[%zu]", i);
			rc = err_set(e, ERR_TOO_LARGE, field, "the row is longer than %d bytes",
				     TRACE_MAX_LINE);
			goto out;
		}
		row_put(w, "\n", 1);
		if (fwrite(w->buf, 1, w->len, out) != w->len)
			goto io;
	}
	if (fflush(out) == EOF || ferror(out))
		goto io;
	goto out;
io:
	rc = err_set(e, -EIO, NULL, "write error: %s", strerror(errno ? errno : EIO));
out:
	free(c);
	free(w);
	return rc;
}
