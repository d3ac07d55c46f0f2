/*
 * trace — the simulator's job trace: a list of jobs in the POST /v1/jobs shape, each with
 * "submit_s" (seconds from the trace's start), read from and written to two encodings,
 * JSON lines and CSV (docs/trace-format.md).
 *
 * Owns: both encodings, their size ceilings, the CSV columns and their mapping to the job
 * object, and the trace-level rules (submit_s >= 0, duration_s >= 1, job fields only).
 * Never: schedules, reads a clock, keeps state between calls. The job rules themselves are
 * codec_job_decode's: given a catalog, every job is checked by it, line by line.
 *
 * A loaded trace is a JSON array of job objects sorted by submit_s (stable: equal times keep
 * file order). In each object submit_s is a real rounded to the millisecond; members whose
 * value is null are dropped (null means "not given", as in the API); an inference job's
 * "per_worker" is renamed "per_replica". Nothing else is rewritten, so the object minus
 * submit_s is a valid POST /v1/jobs body (trace_job_decode does exactly that).
 *
 * Errors name the place: e->message starts "FILE:LINE: " and e->field holds the CSV column
 * (CSV) or the JSON path (JSON lines), e.g. "need_memory_gib" or "accelerator.models[1]".
 * Outputs are written only on success.
 */
#ifndef JOULE_SIM_TRACE_H
#define JOULE_SIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "fleet.h"
#include "job.h"

#define TRACE_MAX_LINE 65536          /* bytes in one line, newline excluded */
#define TRACE_MAX_JOBS 2000000        /* jobs in one trace */
#define TRACE_MAX_SUBMIT_S 3.2e10     /* ~1,000 years: keeps millisecond rounding exact */

enum trace_format { TRACE_AUTO, TRACE_JSONL, TRACE_CSV, _TRACE_FORMAT_MAX };

/* The format a path's extension names: .csv → CSV; .jsonl, .ndjson, .json → JSON lines;
 * anything else → TRACE_AUTO (the reader sniffs the first line: '{' means JSON lines). */
enum trace_format trace_format_for_path(const char *path);

/*
 * Read a trace from a file (path "-" = stdin). catalog NULL: trace rules only; else every
 * job must also pass codec_job_decode against it (models, vendors, stacks, caps), and a
 * refusal names the file and line. *jobs_out gets a new array (caller json_decref's it).
 * Returns 0, ERR_INVALID (a bad line, column or field), ERR_TOO_LARGE (a line or the job
 * count over its ceiling), -ENOENT/-EIO/-ENOMEM (e says which file).
 */
int trace_load(const char *path, enum trace_format fmt, const struct fleet *catalog,
	       json_t **jobs_out, struct err *e);

/* The same from an open stream; name is used in messages only. */
int trace_read(FILE *in, const char *name, enum trace_format fmt, const struct fleet *catalog,
	       json_t **jobs_out, struct err *e);

/*
 * Check one job object of a loaded trace (or of a generator) and decode it: *submit_s gets
 * its submit time, j (a fresh job_new()) the decoded job — codec_job_decode on the object
 * without "submit_s". Returns 0 or ERR_INVALID / -ENOMEM with e filled (e->field a JSON path).
 */
int trace_job_decode(const json_t *job, const struct fleet *catalog, struct job *j,
		     double *submit_s, struct err *e);

/*
 * Write jobs (an array as trace_load returns) as JSON lines, one compact object a line,
 * in array order. Reals are written with the fewest digits (15, else 17) that read back
 * exactly. Returns 0, ERR_INVALID (not an array of objects), or -EIO.
 */
int trace_write_jsonl(FILE *out, const json_t *jobs, struct err *e);

/*
 * Write jobs as CSV: the header line, then one row a job, every column of
 * docs/trace-format.md in its order. A job that has no exact CSV form (an unknown member,
 * an empty list or object, a string with a control character, a list item holding ';')
 * is refused with ERR_INVALID naming "[index].field", before anything is written for that
 * job; so a successful write reads back (trace_read) into the identical JSON.
 */
int trace_write_csv(FILE *out, const json_t *jobs, struct err *e);

/* The CSV columns in header order, NULL-terminated (for usage texts and tests). */
extern const char *const trace_csv_columns[];

#endif
