/*
 * prom — parser for the Prometheus text exposition format, version 0.0.4 (what NVIDIA
 * dcgm-exporter, Huawei npu-exporter and jouled's own /metrics serve).
 *
 * Owns: nothing between calls. One prom_parse call owns one workspace block whose size
 * depends only on the limits (never on the input): scratch for one unescaped line, the
 * label array, and the # TYPE table. It is allocated once at the start of the call and
 * freed before it returns.
 * Never: reads past buf + len (buf need not be NUL-terminated), recurses, does I/O, keeps
 * pointers into buf or into its workspace after returning, treats a bad line as fatal.
 *
 * Streaming, callback-based: prom_parse walks buf line by line and calls cb once per
 * sample line, in input order. Lines end at '\n'; a '\r' before it is dropped (CRLF), and a
 * last line without '\n' counts. Per line:
 *   - blank (only spaces/tabs): ignored;
 *   - "# HELP name text": its name is checked, the text ignored;
 *   - "# TYPE name type": remembered for the family `name` (bounded table; last one wins);
 *     type is one of counter gauge histogram summary untyped (OpenMetrics' unknown info
 *     stateset gaugehistogram are accepted too);
 *   - any other line starting with '#': a comment, ignored;
 *   - name[{label="value",...}] value [timestamp_ms]: a sample. Blanks may separate tokens;
 *     a trailing comma in the label set and an empty set "{}" are allowed. value is a
 *     decimal float or NaN, Inf, +Inf, -Inf (any case, also "Infinity"); timestamp an int64.
 *     Label values are UTF-8 with the escapes \\ \" \n only; a NUL byte, a repeated label
 *     name and the label name "__name__" make the line malformed.
 * A line that breaks these rules is skipped and counted in stats->malformed; a line over
 * lim->max_line bytes is skipped (stats->too_long) without being parsed; a sample with more
 * than lim->max_labels labels is skipped (stats->too_many_labels). None of them stops the
 * parse.
 *
 * A sample's type is the # TYPE seen before it for its name; for histogram and summary
 * families also for name minus "_bucket"/"_sum"/"_count", for counters minus "_total".
 *
 * Numbers: values are converted with strtod after the token was checked against the
 * grammar above; the conversion works under any LC_NUMERIC (the '.' is swapped for the
 * locale's decimal point, as jansson does). A value token longer than 127 bytes is
 * malformed.
 */
#ifndef JOULE_PROM_H
#define JOULE_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_limits {
	size_t max_line;       /* bytes in one line, without its line ending; default 64 KiB,
	                        * at most PROM_MAX_LINE_CEILING */
	uint32_t max_labels;   /* labels per sample; default 64, at most PROM_MAX_LABELS_CEILING */
	uint32_t max_types;    /* # TYPE families remembered; default 1024, at most
	                        * PROM_MAX_TYPES_CEILING; names share 96 × max_types bytes */
};

#define PROM_MAX_LINE_CEILING ((size_t)16 << 20)
#define PROM_MAX_LABELS_CEILING 256u
#define PROM_MAX_TYPES_CEILING 65536u

/* Fill in the defaults above. */
void prom_limits_default(struct prom_limits *l);

/* Bytes prom_parse allocates for these limits (NULL: the defaults); 0 if they are invalid. */
size_t prom_workspace_size(const struct prom_limits *lim);

struct prom_label {
	const char *name;      /* NUL-terminated */
	size_t name_len;
	const char *value;     /* unescaped, NUL-terminated, valid UTF-8 */
	size_t value_len;
};

struct prom_sample {
	const char *name;      /* metric name, NUL-terminated */
	size_t name_len;
	const struct prom_label *labels;   /* in input order */
	uint32_t nlabels;
	double value;          /* NaN and ±Inf as given */
	bool has_timestamp;
	int64_t timestamp_ms;  /* 0 when !has_timestamp */
	const char *type;      /* "counter", "gauge", … from # TYPE (static string), or NULL */
};

/* Called once per sample. Every pointer in *s (names, labels, values) points into the
 * parser's workspace and is valid only during the call. Return 0 to go on; any other value
 * stops the parse, and prom_parse returns it (use values the caller can tell apart from
 * -EINVAL and -ENOMEM, e.g. positive ones). */
typedef int (*prom_sample_cb)(const struct prom_sample *s, void *ud);

struct prom_stats {
	uint64_t lines;            /* every line seen, comments and blank ones included */
	uint64_t samples;          /* delivered to cb (the one that stopped the parse included) */
	uint64_t malformed;        /* skipped: syntax */
	uint64_t too_long;         /* skipped: over lim->max_line */
	uint64_t too_many_labels;  /* skipped: over lim->max_labels */
	uint64_t types_dropped;    /* # TYPE lines not remembered: the table was full */
	uint64_t first_bad_line;   /* 1-based line number of the first skipped line; 0 if none */
	const char *first_bad_reason; /* static text for it ("bad number", …); NULL if none */
};

/* Parse buf[0..len). lim NULL means the defaults; a 0 field means that field's default.
 * Returns 0 when the whole buffer was walked (however many lines were skipped), the
 * callback's nonzero value when it stopped the parse, -EINVAL when a limit is over its
 * ceiling or (buf is NULL and len > 0) or cb is NULL, -ENOMEM when the workspace could not
 * be allocated. stats (may be NULL) is written on 0 and on a callback stop (counting the
 * lines up to and including the one that stopped it), left untouched on -EINVAL/-ENOMEM. */
int prom_parse(const char *buf, size_t len, const struct prom_limits *lim,
	prom_sample_cb cb, void *ud, struct prom_stats *stats);

/* Value of the label `name` in s, or NULL when s has no such label. */
const char *prom_label_get(const struct prom_sample *s, const char *name);

/* Allocation hooks for the workspace (default malloc/free), so tests can count
 * allocations and inject failures — like jansson's json_set_alloc_funcs. Set them before
 * any parse runs; NULL restores the default. Not thread-safe. */
typedef void *(*prom_malloc_fn)(size_t size);
typedef void (*prom_free_fn)(void *ptr);
void prom_set_alloc_funcs(prom_malloc_fn malloc_fn, prom_free_fn free_fn);

#endif
