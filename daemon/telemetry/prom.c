/*
 * prom — Prometheus text exposition format (0.0.4) parser; the contract is in prom.h.
 *
 * Owns: one workspace block per prom_parse call, laid out as
 *   [labels: max_labels × struct prom_label][types: max_types × struct type_ent]
 *   [slots: 2^k ≥ 2 × max_types × uint32][type names: 96 × max_types][scratch: max_line + 1]
 * Never: allocates anything else, reads outside buf[0..len), recurses, keeps state
 * between calls (except the allocation hooks).
 * Invariants: one line is parsed at a time, left to right, each byte looked at a bounded
 * number of times; the scratch is reset per line and what one line writes into it (the
 * metric name, label names and unescaped values, each NUL-terminated) is never longer than
 * the line plus one byte, so it cannot overflow (put() checks anyway). The type table is
 * open addressing with at least twice as many slots as entries, so probes end.
 */
#include "prom.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_LINE ((size_t)64 << 10)
#define DEFAULT_MAX_LABELS 64u
#define DEFAULT_MAX_TYPES 1024u
#define TYPE_NAME_BYTES 96u     /* per table entry, shared */
#define MAX_NUMBER 127u          /* longest value/timestamp token */

static prom_malloc_fn alloc_fn = malloc;
static prom_free_fn dealloc_fn = free;

enum prom_type {
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
	PROM_SUMMARY,
	PROM_UNTYPED,
	PROM_UNKNOWN,
	PROM_INFO,
	PROM_STATESET,
	PROM_GAUGEHISTOGRAM,
	_PROM_TYPE_MAX,
};

static const char *const type_names[_PROM_TYPE_MAX] = {
	[PROM_COUNTER] = "counter",
	[PROM_GAUGE] = "gauge",
	[PROM_HISTOGRAM] = "histogram",
	[PROM_SUMMARY] = "summary",
	[PROM_UNTYPED] = "untyped",
	[PROM_UNKNOWN] = "unknown",
	[PROM_INFO] = "info",
	[PROM_STATESET] = "stateset",
	[PROM_GAUGEHISTOGRAM] = "gaugehistogram",
};

/* Reasons a line is skipped (stats->first_bad_reason). Compared by address. */
static const char R_TOO_LONG[] = "line too long";
static const char R_TOO_MANY_LABELS[] = "too many labels";

struct type_ent {
	uint32_t off;       /* into names */
	uint32_t len;
	uint32_t type;      /* enum prom_type */
};

struct parser {
	struct prom_limits lim;
	struct prom_label *labels;
	struct type_ent *types;
	uint32_t ntypes;
	uint32_t *slots;    /* 0 empty, else index into types + 1 */
	uint32_t slot_mask;
	char *names;
	size_t names_cap;
	size_t names_used;
	char *scratch;
	size_t scratch_cap;
	size_t used;        /* scratch bytes used by the current line */
	char decimal_point;
	struct prom_stats st;
};

/* ---- limits and workspace ---- */

void prom_limits_default(struct prom_limits *l)
{
	l->max_line = DEFAULT_MAX_LINE;
	l->max_labels = DEFAULT_MAX_LABELS;
	l->max_types = DEFAULT_MAX_TYPES;
}

/* Resolve NULL/zero fields to defaults; false when a field is over its ceiling. */
static bool resolve_limits(const struct prom_limits *in, struct prom_limits *out)
{
	prom_limits_default(out);
	if (!in)
		return true;
	if (in->max_line > PROM_MAX_LINE_CEILING || in->max_labels > PROM_MAX_LABELS_CEILING ||
	    in->max_types > PROM_MAX_TYPES_CEILING)
		return false;
	if (in->max_line)
		out->max_line = in->max_line;
	if (in->max_labels)
		out->max_labels = in->max_labels;
	if (in->max_types)
		out->max_types = in->max_types;
	return true;
}

static uint32_t slot_count(uint32_t max_types)
{
	uint32_t n = 2;

	while (n < 2 * max_types)
		n *= 2;
	return n;
}

struct layout {
	size_t labels, types, slots, names, scratch, total;
};

/* Every part is a multiple of 8 bytes, so each starts aligned for its type. */
static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void layout_of(const struct prom_limits *l, struct layout *o)
{
	size_t at = 0;

	o->labels = at;
	at += round8((size_t)l->max_labels * sizeof(struct prom_label));
	o->types = at;
	at += round8((size_t)l->max_types * sizeof(struct type_ent));
	o->slots = at;
	at += round8((size_t)slot_count(l->max_types) * sizeof(uint32_t));
	o->names = at;
	at += round8((size_t)l->max_types * TYPE_NAME_BYTES);
	o->scratch = at;
	at += l->max_line + 1;
	o->total = at;
}

size_t prom_workspace_size(const struct prom_limits *lim)
{
	struct prom_limits l;
	struct layout o;

	if (!resolve_limits(lim, &l))
		return 0;
	layout_of(&l, &o);
	return o.total;
}

void prom_set_alloc_funcs(prom_malloc_fn malloc_fn, prom_free_fn free_fn)
{
	alloc_fn = malloc_fn ? malloc_fn : malloc;
	dealloc_fn = free_fn ? free_fn : free;
}

/* ---- character classes (ASCII only: never the locale's) ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static const char *skip_blanks(const char *s, const char *e)
{
	while (s < e && is_blank(*s))
		s++;
	return s;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]*; returns s when there is none. */
static const char *scan_metric_name(const char *s, const char *e)
{
	if (s >= e || !(is_alpha_(*s) || *s == ':'))
		return s;
	s++;
	while (s < e && (is_alpha_(*s) || is_digit(*s) || *s == ':'))
		s++;
	return s;
}

/* [a-zA-Z_][a-zA-Z0-9_]* */
static const char *scan_label_name(const char *s, const char *e)
{
	if (s >= e || !is_alpha_(*s))
		return s;
	s++;
	while (s < e && (is_alpha_(*s) || is_digit(*s)))
		s++;
	return s;
}

static bool ascii_ieq(const char *s, size_t n, const char *lower)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (lower[i] == '\0' || c != lower[i])
			return false;
	}
	return lower[n] == '\0';
}

static bool has_suffix(const char *s, size_t n, const char *suf, size_t sn)
{
	return n > sn && memcmp(s + n - sn, suf, sn) == 0;
}

/* Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* ---- numbers ---- */

/* Decimal float, or NaN / [+-]Inf / [+-]Infinity in any case. No hex, no "nan(...)". */
static bool parse_value(const struct parser *p, const char *s, size_t n, double *out)
{
	char tmp[MAX_NUMBER + 1];
	const char *r = s;
	size_t rn = n, i = 0, digits = 0;
	bool sign = false;
	char *end;
	double v;

	if (n == 0 || n > MAX_NUMBER)
		return false;
	if (*r == '+' || *r == '-') {
		sign = true;
		r++;
		rn--;
	}
	if (ascii_ieq(r, rn, "inf") || ascii_ieq(r, rn, "infinity")) {
		*out = *s == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (!sign && ascii_ieq(r, rn, "nan")) {
		*out = NAN;
		return true;
	}
	while (i < rn && is_digit(r[i])) {
		i++;
		digits++;
	}
	if (i < rn && r[i] == '.') {
		i++;
		while (i < rn && is_digit(r[i])) {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return false;
	if (i < rn && (r[i] == 'e' || r[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < rn && (r[i] == '+' || r[i] == '-'))
			i++;
		while (i < rn && is_digit(r[i])) {
			i++;
			exp_digits++;
		}
		if (exp_digits == 0)
			return false;
	}
	if (i != rn)
		return false;
	/* strtod reads the locale's decimal point: hand it that one. */
	for (i = 0; i < n; i++)
		tmp[i] = s[i] == '.' ? p->decimal_point : s[i];
	tmp[n] = '\0';
	v = strtod(tmp, &end);
	if (end != tmp + n || isinf(v))
		return false;   /* isinf: overflow of a finite literal */
	*out = v;
	return true;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t v = 0, lim;

	if (n == 0 || n > MAX_NUMBER)
		return false;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i++;
	}
	if (i == n)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		unsigned d;

		if (!is_digit(s[i]))
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (lim - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg)
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return true;
}

/* ---- the # TYPE table ---- */

static uint32_t hash_name(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* The slot holding name, or the empty slot where it would go. */
static uint32_t *type_slot(struct parser *p, const char *s, size_t n)
{
	uint32_t h = hash_name(s, n) & p->slot_mask;

	for (;;) {
		uint32_t *slot = &p->slots[h];
		const struct type_ent *t;

		if (*slot == 0)
			return slot;
		t = &p->types[*slot - 1];
		if (t->len == n && memcmp(p->names + t->off, s, n) == 0)
			return slot;
		h = (h + 1) & p->slot_mask;
	}
}

static const struct type_ent *type_find(struct parser *p, const char *s, size_t n)
{
	uint32_t *slot;

	if (p->ntypes == 0)
		return NULL;
	slot = type_slot(p, s, n);
	return *slot ? &p->types[*slot - 1] : NULL;
}

static void type_put(struct parser *p, const char *s, size_t n, enum prom_type type)
{
	uint32_t *slot = type_slot(p, s, n);
	struct type_ent *t;

	if (*slot) {
		p->types[*slot - 1].type = type;
		return;
	}
	if (p->ntypes == p->lim.max_types || p->names_cap - p->names_used < n) {
		p->st.types_dropped++;
		return;
	}
	t = &p->types[p->ntypes];
	t->off = (uint32_t)p->names_used;
	t->len = (uint32_t)n;
	t->type = type;
	memcpy(p->names + p->names_used, s, n);
	p->names_used += n;
	*slot = ++p->ntypes;
}

static const char *sample_type(struct parser *p, const char *s, size_t n)
{
	static const struct {
		const char *suffix;
		size_t len;
		uint32_t types;   /* bit per enum prom_type */
	} suffixes[] = {
		{ "_bucket", 7, 1u << PROM_HISTOGRAM | 1u << PROM_GAUGEHISTOGRAM },
		{ "_sum", 4, 1u << PROM_HISTOGRAM | 1u << PROM_SUMMARY },
		{ "_count", 6, 1u << PROM_HISTOGRAM | 1u << PROM_SUMMARY },
		{ "_total", 6, 1u << PROM_COUNTER },
	};
	const struct type_ent *t = type_find(p, s, n);

	if (t)
		return type_names[t->type];
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (!has_suffix(s, n, suffixes[i].suffix, suffixes[i].len))
			continue;
		t = type_find(p, s, n - suffixes[i].len);
		if (t && (suffixes[i].types & 1u << t->type))
			return type_names[t->type];
		return NULL;
	}
	return NULL;
}

/* ---- lines ---- */

/* Copy n bytes into the scratch and NUL-terminate; NULL if it would not fit (cannot
 * happen by the size argument in the file comment). */
static char *put(struct parser *p, const char *s, size_t n)
{
	char *d;

	if (p->scratch_cap - p->used < n + 1)
		return NULL;
	d = p->scratch + p->used;
	memcpy(d, s, n);
	d[n] = '\0';
	p->used += n + 1;
	return d;
}

/* "# ..." — s is just after the '#', e at the end of the trimmed line. */
static const char *parse_comment(struct parser *p, const char *s, const char *e)
{
	const char *word, *name, *name_end;
	bool help;
	size_t i;

	s = skip_blanks(s, e);
	word = s;
	while (s < e && !is_blank(*s))
		s++;
	if (s - word != 4 || (memcmp(word, "HELP", 4) != 0 && memcmp(word, "TYPE", 4) != 0))
		return NULL;   /* a plain comment */
	help = word[0] == 'H';
	s = skip_blanks(s, e);
	if (s == e)
		return NULL;   /* "# HELP" alone: a comment, as in Prometheus' own parser */
	name = s;
	name_end = scan_metric_name(s, e);
	if (name_end == name || (name_end < e && !is_blank(*name_end)))
		return help ? "bad metric name in HELP" : "bad metric name in TYPE";
	if (help)
		return NULL;   /* the docstring is not needed */
	s = skip_blanks(name_end, e);
	if (s == e)
		return "TYPE without a type";
	for (i = 0; i < _PROM_TYPE_MAX; i++) {
		if ((size_t)(e - s) == strlen(type_names[i]) && memcmp(s, type_names[i], (size_t)(e - s)) == 0)
			break;
	}
	if (i == _PROM_TYPE_MAX)
		return "unknown type in TYPE";
	type_put(p, name, (size_t)(name_end - name), (enum prom_type)i);
	return NULL;
}

/* Label set after '{'; *sp is advanced past the '}'. */
static const char *parse_labels(struct parser *p, const char **sp, const char *e, uint32_t *nlabels)
{
	const char *s = *sp;
	uint32_t n = 0;

	for (;;) {
		const char *ln, *ln_end;
		size_t lnl;
		struct prom_label *l;
		char *v;

		s = skip_blanks(s, e);
		if (s == e)
			return "unterminated label set";
		if (*s == '}') {
			s++;
			break;
		}
		ln = s;
		ln_end = scan_label_name(s, e);
		if (ln_end == ln)
			return *s == ',' ? "empty label" : "bad label name";
		lnl = (size_t)(ln_end - ln);
		if (n == p->lim.max_labels)
			return R_TOO_MANY_LABELS;
		if (lnl == 8 && memcmp(ln, "__name__", 8) == 0)
			return "reserved label name __name__";
		for (uint32_t i = 0; i < n; i++) {
			if (p->labels[i].name_len == lnl && memcmp(p->labels[i].name, ln, lnl) == 0)
				return "duplicate label name";
		}
		l = &p->labels[n];
		l->name = put(p, ln, lnl);
		if (!l->name)
			return "line too complex";
		l->name_len = lnl;
		s = skip_blanks(ln_end, e);
		if (s == e || *s != '=')
			return "missing '=' after label name";
		s = skip_blanks(s + 1, e);
		if (s == e || *s != '"')
			return "label value not quoted";
		s++;
		/* Unescape into the scratch; output never outgrows input. */
		v = p->scratch + p->used;
		for (;;) {
			char c;

			if (s == e)
				return "unterminated label value";
			c = *s++;
			if (c == '"')
				break;
			if (c == '\\') {
				if (s == e)
					return "unterminated label value";
				switch (*s++) {
				case '\\': c = '\\'; break;
				case '"': c = '"'; break;
				case 'n': c = '\n'; break;
				default: return "bad escape in label value";
				}
			} else if (c == '\0') {
				return "NUL in label value";
			}
			if (p->used + 1 >= p->scratch_cap)
				return "line too complex";
			p->scratch[p->used++] = c;
		}
		if (p->used >= p->scratch_cap)
			return "line too complex";
		l->value = v;
		l->value_len = (size_t)(p->scratch + p->used - v);
		p->scratch[p->used++] = '\0';
		if (!utf8_valid((const unsigned char *)v, l->value_len))
			return "label value is not UTF-8";
		n++;
		s = skip_blanks(s, e);
		if (s < e && *s == ',') {
			s++;
			continue;
		}
		if (s < e && *s == '}') {
			s++;
			break;
		}
		return s == e ? "unterminated label set" : "expected ',' or '}' after label value";
	}
	*sp = s;
	*nlabels = n;
	return NULL;
}

/* A sample line, trimmed to [s, e), s at a non-blank that is not '#'. */
static const char *parse_sample(struct parser *p, const char *s, const char *e, int *cb_rc,
	prom_sample_cb cb, void *ud)
{
	struct prom_sample sm = { 0 };
	const char *name_end, *tok, *why;

	name_end = scan_metric_name(s, e);
	if (name_end == s) {
		if (is_digit(*s))
			return "metric name starts with a digit";
		return *s == '}' ? "stray '}'" : *s == '{' ? "label set without a metric name" :
			"bad metric name";
	}
	sm.name_len = (size_t)(name_end - s);
	sm.name = put(p, s, sm.name_len);
	if (!sm.name)
		return "line too complex";
	s = name_end;
	if (s < e && !is_blank(*s) && *s != '{')
		return *s == '}' ? "stray '}'" : "bad character in metric name";
	s = skip_blanks(s, e);
	if (s < e && *s == '{') {
		s++;
		why = parse_labels(p, &s, e, &sm.nlabels);
		if (why)
			return why;
		sm.labels = p->labels;
		s = skip_blanks(s, e);
	}
	if (s == e)
		return "missing value";
	tok = s;
	while (s < e && !is_blank(*s))
		s++;
	if (!parse_value(p, tok, (size_t)(s - tok), &sm.value))
		return *tok == '}' ? "stray '}'" : "bad number";
	s = skip_blanks(s, e);
	if (s < e) {
		tok = s;
		while (s < e && !is_blank(*s))
			s++;
		if (!parse_int64(tok, (size_t)(s - tok), &sm.timestamp_ms))
			return "bad timestamp";
		sm.has_timestamp = true;
		if (skip_blanks(s, e) != e)
			return "unexpected text after timestamp";
	}
	sm.type = sample_type(p, sm.name, sm.name_len);
	p->st.samples++;
	*cb_rc = cb(&sm, ud);
	return NULL;
}

/* One line without its ending; returns why it was skipped, or NULL. */
static const char *parse_line(struct parser *p, const char *s, size_t n, int *cb_rc,
	prom_sample_cb cb, void *ud)
{
	const char *e = s + n;

	p->used = 0;
	s = skip_blanks(s, e);
	while (e > s && is_blank(e[-1]))
		e--;
	if (s == e)
		return NULL;
	if (*s == '#')
		return parse_comment(p, s + 1, e);
	return parse_sample(p, s, e, cb_rc, cb, ud);
}

static void note_skipped(struct parser *p, const char *why)
{
	if (why == R_TOO_LONG)
		p->st.too_long++;
	else if (why == R_TOO_MANY_LABELS)
		p->st.too_many_labels++;
	else
		p->st.malformed++;
	if (!p->st.first_bad_reason) {
		p->st.first_bad_line = p->st.lines;
		p->st.first_bad_reason = why;
	}
}

int prom_parse(const char *buf, size_t len, const struct prom_limits *lim,
	prom_sample_cb cb, void *ud, struct prom_stats *stats)
{
	struct parser p = { 0 };
	struct layout o;
	const struct lconv *lc;
	char *ws;
	size_t pos = 0;
	int rc = 0;

	if (!cb || (!buf && len > 0) || !resolve_limits(lim, &p.lim))
		return -EINVAL;
	layout_of(&p.lim, &o);
	ws = alloc_fn(o.total);
	if (!ws)
		return -ENOMEM;
	p.labels = (struct prom_label *)(void *)(ws + o.labels);
	p.types = (struct type_ent *)(void *)(ws + o.types);
	p.slots = (uint32_t *)(void *)(ws + o.slots);
	p.slot_mask = slot_count(p.lim.max_types) - 1;
	memset(p.slots, 0, (size_t)(p.slot_mask + 1) * sizeof(uint32_t));
	p.names = ws + o.names;
	p.names_cap = (size_t)p.lim.max_types * TYPE_NAME_BYTES;
	p.scratch = ws + o.scratch;
	p.scratch_cap = p.lim.max_line + 1;
	lc = localeconv();
	p.decimal_point = lc && lc->decimal_point && lc->decimal_point[0] ? lc->decimal_point[0] : '.';

	while (pos < len && rc == 0) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		const char *why;

		pos += n + (nl ? 1 : 0);
		p.st.lines++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > p.lim.max_line)
			why = R_TOO_LONG;
		else
			why = parse_line(&p, line, n, &rc, cb, ud);
		if (why)
			note_skipped(&p, why);
	}
	dealloc_fn(ws);
	if (stats)
		*stats = p.st;
	return rc;
}

const char *prom_label_get(const struct prom_sample *s, const char *name)
{
	for (uint32_t i = 0; i < s->nlabels; i++) {
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	}
	return NULL;
}
