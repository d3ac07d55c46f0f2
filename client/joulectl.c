/*
 * joulectl — the command-line client of jouled.
 *
 * Owns: the command line (global options before or after the command), one HTTP/1.1
 * exchange per request with jouled over its Unix socket (libcurl, URL
 * http://localhost/v1/...), and rendering the JSON answers as aligned tables, key: value
 * lines, or the daemon's own JSON pretty-printed (--json).
 *
 * `watch` is the one command that runs until stopped: it long-polls GET /v1/events (each
 * request bounded like any other) and exits 0 on SIGINT/SIGTERM, checked by libcurl's
 * progress callback at least once a second while a long poll waits.
 *
 * Never: decides what the daemon owns. Ranges, defaults, names and enums (kind, topology,
 * states) are validated by jouled alone; the client only checks that a number is a number.
 * Never retries a request (a submit is made safe to repeat with --idempotency-key), never
 * writes anything but stdout and stderr, never follows redirects.
 *
 * Invariants: every answer is read into a buffer capped at ANSWER_MAX and every input file
 * at INPUT_MAX; every request is bounded in time (connect 5 s, total 60 s); every
 * allocation is checked. A failure is reported once, on stderr, where its cause is known;
 * main() only maps the code to the exit status:
 *   0            ok
 *   ERR_REFUSED  the daemon answered HTTP >= 400                  exit 1
 *   ERR_ANSWER   the answer is not what the contract promises     exit 1
 *   -errno       a local failure (out of memory, stdout write)    exit 1
 *   ERR_USAGE    bad command line or unreadable input file        exit 2
 *   ERR_REACH    cannot connect to / talk with jouled             exit 3
 * Text that came from the daemon is printed with control characters replaced by '?'.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "simulate.h"

#ifndef JOULE_VERSION
#define JOULE_VERSION "0.1.0-dev"
#endif

#define DEFAULT_SOCKET "/run/joule/joule.sock"
#define ANSWER_MAX ((size_t)256 << 20)
#define INPUT_MAX ((size_t)64 << 20)
#define TEXT_MAX ((size_t)16 << 20)
#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS 60000L
#define MAX_POS 4
#define MAX_OPTS 32

enum {
	ERR_USAGE = -1001,
	ERR_REFUSED = -1002,
	ERR_REACH = -1003,
	ERR_ANSWER = -1004,
	ERR_STOPPED = -1005,    /* watch: SIGINT/SIGTERM arrived during a request */
};

enum {
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

enum opt_kind { OPT_FLAG, OPT_STR, OPT_INT, OPT_NUM, OPT_LIST };

/* A command option. `target` is the query parameter of a list command, or the JSON path
 * ("accelerator.models") a submit flag writes; NULL when the option is the client's own. */
struct opt_def {
	const char *name;
	enum opt_kind kind;
	const char *target;
	const char *constant;   /* OPT_FLAG: the string written at target instead of true */
};

struct opt_val {
	bool set;
	const char *str;        /* OPT_STR, OPT_INT, OPT_NUM: the text as given */
	long long num;          /* OPT_INT */
	double real;            /* OPT_NUM */
	const char **list;      /* OPT_LIST: argc slots, n used */
	size_t n;
};

struct ctx;
struct cmd_args;

struct command {
	const char *name;
	int (*run)(struct ctx *c, const struct cmd_args *a);
	const struct opt_def *opts;     /* terminated by a NULL name; NULL for none */
	size_t min_pos, max_pos;
	const char *synopsis;
};

struct cmd_args {
	const struct command *cmd;
	const char *pos[MAX_POS];
	size_t npos;
	struct opt_val val[MAX_OPTS];   /* parallel to cmd->opts */
};

struct ctx {
	const char *socket;
	bool json, help, version;
	bool lines;             /* JSON lines: a refusal's body goes to stdout compact */
	bool interruptible;     /* requests end early (ERR_STOPPED) once stop_signal is set */
	long status;            /* HTTP status of the last answer, 0 if none */
	CURL *curl;
	time_t now;
};

/* Set by SIGINT/SIGTERM while `watch` runs. */
static volatile sig_atomic_t stop_signal;

/* ---- text: growable string with a ceiling and a sticky error ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int err;        /* 0, -ENOMEM or -E2BIG; once set, appends are ignored */
};

static void sb_grow(struct sbuf *b, size_t more)
{
	size_t want, cap;
	char *p;

	if (b->err)
		return;
	if (more >= TEXT_MAX - b->len) {
		b->err = -E2BIG;
		return;
	}
	want = b->len + more + 1;
	if (want <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	sb_grow(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = b->err ? b->err : -EINVAL;
		return;
	}
	sb_grow(b, (size_t)n);
	if (b->err)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Appends `key=value` to a path as a query parameter, both percent-encoded. */
static void sb_query(struct sbuf *b, CURL *curl, const char *key, const char *value)
{
	char *esc;

	if (!value || b->err)
		return;
	sb_add(b, b->p && strchr(b->p, '?') ? "&" : "?");
	sb_add(b, key);
	sb_add(b, "=");
	esc = curl_easy_escape(curl, value, 0);
	if (!esc) {
		b->err = -ENOMEM;
		return;
	}
	sb_add(b, esc);
	curl_free(esc);
}

static void sb_segment(struct sbuf *b, CURL *curl, const char *seg)
{
	char *esc = curl_easy_escape(curl, seg, 0);

	if (!esc) {
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	sb_add(b, esc);
	curl_free(esc);
}

/* A human rendering of any JSON value: null or absent "-", arrays "a,b", objects "k=v,k=v". */
static void sb_json(struct sbuf *b, const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;
	bool first = true;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_NULL:
		sb_add(b, "-");
		break;
	case JSON_STRING:
		sb_add(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		sb_printf(b, "%.15g", json_real_value(v));
		break;
	case JSON_TRUE:
		sb_add(b, "yes");
		break;
	case JSON_FALSE:
		sb_add(b, "no");
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, item) {
			if (!first)
				sb_add(b, ",");
			sb_json(b, item);
			first = false;
		}
		if (first)
			sb_add(b, "-");
		break;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, item) {
			if (!first)
				sb_add(b, ",");
			sb_add(b, key);
			sb_add(b, "=");
			sb_json(b, item);
			first = false;
		}
		if (first)
			sb_add(b, "-");
		break;
	}
}

/* Control characters from the daemon never reach the terminal. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void put_clean(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* ---- tables: cells appended row-major; widths from the data; a sticky error ---- */

struct table {
	size_t ncols;
	const char *const *head;        /* NULL: no header line (key: value blocks) */
	char **cell;
	size_t n, cap;
	int err;
};

static void tbl_take(struct table *t, char *s)
{
	char **p;
	size_t cap;

	if (!s && !t->err)
		t->err = -ENOMEM;
	if (t->err) {
		free(s);
		return;
	}
	if (t->n == t->cap) {
		cap = t->cap ? 2 * t->cap : 64;
		p = realloc(t->cell, cap * sizeof *p);
		if (!p) {
			t->err = -ENOMEM;
			free(s);
			return;
		}
		t->cell = p;
		t->cap = cap;
	}
	sanitize(s);
	t->cell[t->n++] = s;
}

__attribute__((format(printf, 2, 3)))
static void tbl_add(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	tbl_take(t, s);
}

static void tbl_json(struct table *t, const json_t *v)
{
	struct sbuf b = { 0 };

	sb_json(&b, v);
	if (b.err) {
		free(b.p);
		if (!t->err)
			t->err = b.err;
		return;
	}
	tbl_take(t, b.p);
}

static void tbl_field(struct table *t, const json_t *obj, const char *key)
{
	tbl_json(t, json_object_get(obj, key));
}

/* Leaves an empty table behind: freeing twice is harmless. */
static void tbl_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->n = t->cap = 0;
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void print_row(const char *const *cells, size_t ncols, const size_t *width)
{
	for (size_t j = 0; j < ncols; j++) {
		fputs(cells[j], stdout);
		if (j + 1 < ncols)
			printf("%*s", (int)(width[j] - text_width(cells[j]) + 2), "");
	}
	putchar('\n');
}

/* Prints the table and frees it. */
static int tbl_print(struct table *t)
{
	size_t *width = NULL;
	int r = t->err;

	if (r < 0)
		goto fail;
	if (t->n % t->ncols != 0) {
		r = -EINVAL;
		goto fail;
	}
	width = calloc(t->ncols, sizeof *width);
	if (!width) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t j = 0; t->head && j < t->ncols; j++)
		width[j] = text_width(t->head[j]);
	for (size_t i = 0; i < t->n; i++) {
		size_t w = text_width(t->cell[i]);
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
	if (t->head)
		print_row(t->head, t->ncols, width);
	for (size_t i = 0; i < t->n; i += t->ncols)
		print_row((const char *const *)t->cell + i, t->ncols, width);
fail:
	free(width);
	tbl_free(t);
	return r;
}

/* ---- small helpers ---- */

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* strtoll over the whole string: no blanks, no trailing junk, no overflow. */
static bool parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	if (!*s || *s == ' ' || *s == '\t' || *s == '\n')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static bool parse_num(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || *s == ' ' || *s == '\t' || *s == '\n')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v != v || v > 1e300 || v < -1e300)
		return false;
	*out = v;
	return true;
}

/* RFC 3339 ("2026-11-23T20:00:00Z", "…T20:00:00.5+02:00") to a time_t. */
static bool parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, n = 0, oh, om;
	long off = 0;
	char sep;
	const char *p;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &n) != 7 ||
	    n == 0 || (sep != 'T' && sep != 't' && sep != ' '))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 &&
		   strlen(p) >= 6) {
		off = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
		p += 6;
	} else {
		return false;
	}
	if (*p)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = t - off;
	return true;
}

/* "5s", "3m", "2h", "4d" into buf; false when the time is absent or unreadable. */
static bool fmt_age(char *buf, size_t size, const char *when, time_t now)
{
	time_t then;
	long long s;

	if (!when || !parse_rfc3339(when, &then))
		return false;
	s = now > then ? (long long)(now - then) : 0;
	if (s < 60)
		snprintf(buf, size, "%llds", s);
	else if (s < 3600)
		snprintf(buf, size, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, size, "%lldh", s / 3600);
	else
		snprintf(buf, size, "%lldd", s / 86400);
	return true;
}

static void tbl_age(struct table *t, const char *when, time_t now)
{
	char age[32];

	tbl_add(t, "%s", fmt_age(age, sizeof age, when, now) ? age : "-");
}

/* Measured watts, whole ("-" when not measured), with mark appended (e.g. "!"). */
static void tbl_watts(struct table *t, const json_t *v, const char *mark)
{
	if (json_is_number(v))
		tbl_add(t, "%.0f%s", json_number_value(v), mark);
	else
		tbl_add(t, "-");
}

/* A string field cut to at most max characters ("..." marks the cut), "-" when null. */
static void tbl_short(struct table *t, const json_t *obj, const char *key, int max)
{
	const char *s = jstr(obj, key);

	if (!s)
		tbl_add(t, "-");
	else if ((int)strlen(s) > max)
		tbl_add(t, "%.*s...", max - 3, s);
	else
		tbl_add(t, "%s", s);
}

/* Device indexes as ranges: [0,1,2,3,6] → "0-3,6". */
static void tbl_indexes(struct table *t, const json_t *list)
{
	struct sbuf b = { 0 };
	size_t n = json_array_size(list), i = 0;

	if (n == 0) {
		tbl_json(t, NULL);
		return;
	}
	while (i < n) {
		json_t *v = json_array_get(list, i);
		size_t j = i;

		if (i)
			sb_add(&b, ",");
		if (!json_is_integer(v)) {
			sb_json(&b, v);
			i++;
			continue;
		}
		while (j + 1 < n && json_is_integer(json_array_get(list, j + 1)) &&
		       json_integer_value(json_array_get(list, j + 1)) ==
			       json_integer_value(json_array_get(list, j)) + 1)
			j++;
		sb_printf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (j > i)
			sb_printf(&b, "-%" JSON_INTEGER_FORMAT,
				  json_integer_value(json_array_get(list, j)));
		i = j + 1;
	}
	if (b.err) {
		free(b.p);
		if (!t->err)
			t->err = b.err;
		return;
	}
	tbl_take(t, b.p);
}

static int print_json(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) < 0)
		return -EIO;
	putchar('\n');
	return 0;
}

/* ---- input files ---- */

/* Reads FILE, or stdin for "-", up to INPUT_MAX bytes. *out is NUL-terminated. */
static int read_input(const char *path, char **out, size_t *out_len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	const char *name = strcmp(path, "-") ? path : "stdin";
	struct sbuf b = { 0 };
	char chunk[65536];
	size_t n;
	int r;

	if (!f) {
		fprintf(stderr, "joulectl: %s: %s\n", name, strerror(errno));
		return ERR_USAGE;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (n > INPUT_MAX - b.len) {
			fprintf(stderr, "joulectl: %s: larger than %zu MiB\n", name, INPUT_MAX >> 20);
			r = ERR_USAGE;
			goto fail;
		}
		sb_addn(&b, chunk, n);
		if (b.err) {
			r = b.err;
			goto fail;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "joulectl: %s: %s\n", name, strerror(errno));
		r = ERR_USAGE;
		goto fail;
	}
	if (!b.p) {
		b.p = strdup("");
		if (!b.p) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (f != stdin)
		fclose(f);
	*out = b.p;
	*out_len = b.len;
	return 0;
fail:
	if (f != stdin)
		fclose(f);
	free(b.p);
	return r;
}

/* ---- HTTP ---- */

struct answer_buf {
	char *p;
	size_t len, cap;
	bool too_big, oom;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct answer_buf *b = ud;
	size_t n = size * nmemb, cap;
	char *p;

	if (n > ANSWER_MAX - b->len) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* The daemon said no: "joulectl: <message> (field: <field>)" on stderr; with --json the
 * error body also goes to stdout. */
static int report_refusal(struct ctx *c, long status, const struct answer_buf *b)
{
	json_t *root = b->len ? json_loadb(b->p, b->len, 0, NULL) : NULL;
	json_t *err = json_object_get(root, "error");
	const char *msg = jstr(err, "message"), *field = jstr(err, "field");

	fputs("joulectl: ", stderr);
	if (msg) {
		put_clean(stderr, msg);
		if (field) {
			fputs(" (field: ", stderr);
			put_clean(stderr, field);
			fputc(')', stderr);
		}
	} else {
		fprintf(stderr, "jouled answered HTTP %ld", status);
	}
	fputc('\n', stderr);
	if (c->json) {
		if (root && c->lines) {
			json_dumpf(root, stdout, JSON_COMPACT);
			putchar('\n');
		} else if (root) {
			print_json(root);
		} else if (b->len) {
			fwrite(b->p, 1, b->len, stdout);
		}
	}
	json_decref(root);
	return ERR_REFUSED;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)ud;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return stop_signal ? 1 : 0;
}

#define SETOPT(opt, val) \
	do { \
		if (cc == CURLE_OK) \
			cc = curl_easy_setopt(c->curl, opt, val); \
	} while (0)

/*
 * One request. `path` starts with "/v1/" and is already percent-encoded. `body` (may be
 * NULL) is sent for POST. On 2xx, *out receives the parsed answer (the caller owns it).
 * On any failure the reason has been printed and *out is untouched.
 */
static int http_call(struct ctx *c, const char *method, const char *path, const char *body,
		     size_t body_len, const char *idem_key, json_t **out)
{
	struct answer_buf b = { 0 };
	struct curl_slist *hdr = NULL, *h;
	char *url = NULL, *idem = NULL;
	json_t *root;
	json_error_t jerr;
	long status = 0, oserr = 0;
	CURLcode cc = CURLE_OK;
	int r;

	if (asprintf(&url, "http://localhost%s", path) < 0) {
		url = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if (idem_key && asprintf(&idem, "Idempotency-Key: %s", idem_key) < 0) {
		idem = NULL;
		r = -ENOMEM;
		goto fail;
	}
	const char *lines[] = { "Accept: application/json",
				body ? "Content-Type: application/json" : NULL,
				"Expect:", idem };
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!lines[i])
			continue;
		h = curl_slist_append(hdr, lines[i]);
		if (!h) {
			r = -ENOMEM;
			goto fail;
		}
		hdr = h;
	}

	curl_easy_reset(c->curl);     /* keeps the connection for the next page */
	SETOPT(CURLOPT_UNIX_SOCKET_PATH, c->socket);
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_HTTPHEADER, hdr);
	SETOPT(CURLOPT_USERAGENT, "joulectl/" JOULE_VERSION);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	SETOPT(CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, &b);
	if (c->interruptible) {
		SETOPT(CURLOPT_NOPROGRESS, 0L);
		SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	}
	if (strcmp(method, "POST") == 0) {
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
		SETOPT(CURLOPT_POSTFIELDS, body ? body : "");
	} else if (strcmp(method, "GET") != 0) {
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	}
	if (cc != CURLE_OK) {
		fprintf(stderr, "joulectl: libcurl: %s\n", curl_easy_strerror(cc));
		r = cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		goto fail;
	}

	c->status = 0;
	cc = curl_easy_perform(c->curl);
	if (cc != CURLE_OK) {
		if (cc == CURLE_ABORTED_BY_CALLBACK && stop_signal) {
			r = ERR_STOPPED;
		} else if (b.oom) {
			r = -ENOMEM;
		} else if (b.too_big) {
			fprintf(stderr, "joulectl: the answer from jouled exceeds %zu MiB\n",
				ANSWER_MAX >> 20);
			r = ERR_ANSWER;
		} else {
			curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
			fprintf(stderr, "joulectl: cannot reach jouled at %s: %s", c->socket,
				curl_easy_strerror(cc));
			if (oserr)
				fprintf(stderr, " (%s)", strerror((int)oserr));
			fputc('\n', stderr);
			r = ERR_REACH;
		}
		goto fail;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->status = status;
	if (status >= 400) {
		r = report_refusal(c, status, &b);
		goto fail;
	}
	if (status < 200 || status > 299) {
		fprintf(stderr, "joulectl: unexpected HTTP %ld from jouled\n", status);
		r = ERR_ANSWER;
		goto fail;
	}
	root = json_loadb(b.p ? b.p : "", b.len, 0, &jerr);
	if (!root) {
		fprintf(stderr, "joulectl: unreadable answer from jouled: %s (line %d, column %d)\n",
			jerr.text, jerr.line, jerr.column);
		r = ERR_ANSWER;
		goto fail;
	}
	*out = root;
	r = 0;
fail:
	curl_slist_free_all(hdr);
	free(idem);
	free(url);
	free(b.p);
	return r;
}

#undef SETOPT

static int http_get(struct ctx *c, const struct sbuf *path, json_t **out)
{
	if (path->err)
		return path->err;
	return http_call(c, "GET", path->p, NULL, 0, NULL, out);
}

/* The list under `key` of an answer object, or an ERR_ANSWER report. */
static int answer_list(const json_t *root, const char *key, json_t **out)
{
	json_t *list = json_object_get(root, key);

	if (!json_is_array(list)) {
		fprintf(stderr, "joulectl: the answer from jouled has no \"%s\" list\n", key);
		return ERR_ANSWER;
	}
	*out = list;
	return 0;
}

/* Adds a query parameter for every option with a target that was given. */
static void sb_query_opts(struct sbuf *b, CURL *curl, const struct cmd_args *a)
{
	for (size_t i = 0; a->cmd->opts && a->cmd->opts[i].name; i++)
		if (a->val[i].set && a->cmd->opts[i].target && a->cmd->opts[i].kind != OPT_FLAG)
			sb_query(b, curl, a->cmd->opts[i].target, a->val[i].str);
}

static const struct opt_val *opt(const struct cmd_args *a, const char *name)
{
	for (size_t i = 0; a->cmd->opts && a->cmd->opts[i].name; i++)
		if (strcmp(a->cmd->opts[i].name, name) == 0)
			return &a->val[i];
	return NULL;
}

/* ---- commands ---- */

static int cmd_status(struct ctx *c, const struct cmd_args *a)
{
	static const char *const keys[] = { "status", "version", "leader", "jobs", "nodes", "devices" };
	struct table t = { .ncols = 2 };
	json_t *root = NULL;
	int r;

	r = http_call(c, "GET", "/v1/health", NULL, 0, NULL, &root);
	if (r < 0)
		return r;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		tbl_add(&t, "%s:", keys[i]);
		tbl_field(&t, root, keys[i]);
	}
	tbl_add(&t, "webhooks:");
	json_int_t nw = json_integer_value(json_object_get(root, "webhooks"));
	json_int_t nf = json_integer_value(json_object_get(root, "webhooks_failing"));
	json_int_t nb = json_integer_value(json_object_get(root, "webhook_backlog"));
	if (nf)
		tbl_add(&t, "%" JSON_INTEGER_FORMAT " endpoints, %" JSON_INTEGER_FORMAT " FAILING, "
			"backlog %" JSON_INTEGER_FORMAT " (joulectl webhooks)", nw, nf, nb);
	else
		tbl_add(&t, "%" JSON_INTEGER_FORMAT " endpoints, none failing, backlog %"
			JSON_INTEGER_FORMAT, nw, nb);
	tbl_add(&t, "socket:");
	tbl_add(&t, "%s", c->socket);
	r = tbl_print(&t);
done:
	json_decref(root);
	return r;
}

static int cmd_webhooks(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "URL", "KIND", "BACKLOG", "IN_FLIGHT", "DELIVERED",
					    "FAILED", "FAILING", "LAST_SUCCESS", "LAST_ERROR" };
	struct table t = { .ncols = 9, .head = head };
	json_t *root = NULL, *list, *w;
	size_t i;
	int r;

	(void)a;
	r = http_call(c, "GET", "/v1/webhooks", NULL, 0, NULL, &root);
	if (r < 0)
		return r;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "webhooks", &list);
	if (r < 0)
		goto done;
	json_array_foreach(list, i, w) {
		tbl_field(&t, w, "url");
		tbl_field(&t, w, "kind");
		tbl_field(&t, w, "backlog");
		tbl_field(&t, w, "in_flight");
		tbl_field(&t, w, "delivered");
		tbl_field(&t, w, "failed");
		tbl_add(&t, "%s", json_is_true(json_object_get(w, "failing")) ? "YES" : "no");
		tbl_age(&t, jstr(w, "last_success_at"), c->now);
		tbl_short(&t, w, "last_error", 50);
	}
	r = tbl_print(&t);
done:
	json_decref(root);
	return r;
}

static int cmd_fleet(struct ctx *c, const struct cmd_args *a)
{
	static const char *const counts[] = { "models", "domains", "nodes", "devices" };
	const char *sub = a->pos[0];
	json_t *root = NULL;
	char *body = NULL;
	size_t len = 0;
	int r;

	if (strcmp(sub, "export") == 0) {
		if (a->npos != 1) {
			fprintf(stderr, "joulectl: fleet export takes no argument\n"
					"usage: joulectl %s\n", a->cmd->synopsis);
			return ERR_USAGE;
		}
		r = http_call(c, "GET", "/v1/fleet", NULL, 0, NULL, &root);
		if (r == 0)
			r = print_json(root);
		goto done;
	}
	if (strcmp(sub, "import") != 0 || a->npos != 2) {
		fprintf(stderr, "joulectl: %s\nusage: joulectl %s\n",
			strcmp(sub, "import") ? "fleet: unknown subcommand" : "fleet import: FILE missing",
			a->cmd->synopsis);
		return ERR_USAGE;
	}
	r = read_input(a->pos[1], &body, &len);
	if (r < 0)
		return r;
	r = http_call(c, "POST", "/v1/fleet", body, len, NULL, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	printf("imported:");
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		json_t *v = json_object_get(root, counts[i]);
		if (json_is_integer(v))
			printf("%s %" JSON_INTEGER_FORMAT " %s", i ? "," : "", json_integer_value(v),
			       counts[i]);
		else
			printf("%s - %s", i ? "," : "", counts[i]);
	}
	putchar('\n');
done:
	free(body);
	json_decref(root);
	return r;
}

static int cmd_models(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "NAME", "VENDOR", "STACK", "MEM_GIB", "BW_GBS", "BF16_TF",
					    "FP8_TF", "TDP_W", "MIN_CAP_W", "IDLE_W" };
	static const char *const keys[] = { "name", "vendor", "stack", "memory_gib", "bandwidth_gbs",
					    "bf16_tflops", "fp8_tflops", "tdp_w", "min_cap_w", "idle_w" };
	struct table t = { .ncols = 10, .head = head };
	json_t *root = NULL, *list, *m;
	size_t i;
	int r;

	r = http_call(c, "GET", "/v1/models", NULL, 0, NULL, &root);
	if (r < 0)
		return r;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "models", &list);
	if (r < 0)
		goto done;
	json_array_foreach(list, i, m)
		for (size_t k = 0; k < t.ncols; k++)
			tbl_field(&t, m, keys[k]);
	r = tbl_print(&t);
done:
	json_decref(root);
	return r;
}

#define NONE SIZE_MAX

/* The domains as a tree: depth-first in the daemon's order among siblings. A parent that
 * is not listed before its child makes the child a root, so the links form a forest. */
static int cmd_domains(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "NAME", "PARENT", "BUDGET_W", "RESERVED_W", "HEADROOM_W",
					    "USE%", "MEASURED_W", "NODES", "DEVICES" };
	struct table t = { .ncols = 9, .head = head };
	json_t *root = NULL, *list, *d, *seen = NULL;
	size_t *mem = NULL, *up, *first, *last, *next, *depth, n, i, top_first = NONE, top_last = NONE;
	int r;

	r = http_call(c, "GET", "/v1/domains", NULL, 0, NULL, &root);
	if (r < 0)
		return r;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "domains", &list);
	if (r < 0)
		goto done;
	n = json_array_size(list);
	mem = calloc(5 * n + 1, sizeof *mem);
	seen = json_object();
	if (!mem || !seen) {
		r = -ENOMEM;
		goto done;
	}
	up = mem;
	first = up + n;
	last = first + n;
	next = last + n;
	depth = next + n;
	json_array_foreach(list, i, d) {
		const char *name = jstr(d, "name"), *parent = jstr(d, "parent");
		json_t *p = parent ? json_object_get(seen, parent) : NULL;

		up[i] = p ? (size_t)json_integer_value(p) : NONE;
		first[i] = last[i] = next[i] = NONE;
		depth[i] = p ? depth[up[i]] + 1 : 0;
		if (up[i] == NONE) {
			if (top_last != NONE)
				next[top_last] = i;
			else
				top_first = i;
			top_last = i;
		} else {
			if (last[up[i]] != NONE)
				next[last[up[i]]] = i;
			else
				first[up[i]] = i;
			last[up[i]] = i;
		}
		if (name && !json_object_get(seen, name) &&
		    json_object_set_new(seen, name, json_integer((json_int_t)i)) < 0) {
			r = -ENOMEM;
			goto done;
		}
	}
	for (i = top_first; i != NONE;) {
		json_t *budget, *reserved;

		d = json_array_get(list, i);
		budget = json_object_get(d, "budget_w");
		reserved = json_object_get(d, "reserved_w");
		tbl_add(&t, "%*s%s", (int)(2 * depth[i]), "", jstr(d, "name") ? jstr(d, "name") : "-");
		tbl_field(&t, d, "parent");
		tbl_json(&t, budget);
		tbl_json(&t, reserved);
		tbl_field(&t, d, "headroom_w");
		if (json_is_number(budget) && json_is_number(reserved) && json_number_value(budget) > 0)
			tbl_add(&t, "%.0f%%", 100.0 * json_number_value(reserved) / json_number_value(budget));
		else
			tbl_add(&t, "-");
		/* '!': the measured draw is over the budget */
		tbl_watts(&t, json_object_get(d, "measured_w"),
			  json_is_true(json_object_get(d, "over_budget")) ? "!" : "");
		tbl_field(&t, d, "nodes");
		tbl_field(&t, d, "devices");
		if (first[i] != NONE) {
			i = first[i];
			continue;
		}
		while (i != NONE && next[i] == NONE)
			i = up[i];
		if (i != NONE)
			i = next[i];
	}
	r = tbl_print(&t);
done:
	json_decref(seen);
	free(mem);
	json_decref(root);
	return r;
}

static int cmd_nodes(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "NAME", "DOMAIN", "STATE", "GROUP", "MODELS", "FREE/TOTAL",
					    "HOST_IDLE_W", "MEASURED_W", "SCRAPED", "ERROR" };
	struct table t = { .ncols = 10, .head = head };
	struct sbuf path = { 0 };
	json_t *root = NULL, *list, *nd;
	size_t i;
	int r;

	sb_add(&path, "/v1/nodes");
	sb_query_opts(&path, c->curl, a);
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "nodes", &list);
	if (r < 0)
		goto done;
	json_array_foreach(list, i, nd) {
		tbl_field(&t, nd, "name");
		tbl_field(&t, nd, "domain");
		tbl_field(&t, nd, "state");
		tbl_field(&t, nd, "group");
		tbl_field(&t, nd, "models");
		tbl_add(&t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(nd, "devices_free")),
			json_integer_value(json_object_get(nd, "devices_total")));
		tbl_field(&t, nd, "host_idle_w");
		tbl_watts(&t, json_object_get(nd, "measured_w"), "");
		tbl_age(&t, jstr(nd, "scraped_at"), c->now);
		tbl_short(&t, nd, "scrape_error", 40);
	}
	r = tbl_print(&t);
done:
	free(path.p);
	json_decref(root);
	return r;
}

static int cmd_node(struct ctx *c, const struct cmd_args *a)
{
	static const char *const keys[] = { "name", "domain", "state", "group", "host_idle_w",
					    "models", "labels", "exporter_url", "measured_w",
					    "scraped_at", "scrape_error", "scrape_failures" };
	static const char *const head[] = { "INDEX", "MODEL", "HEALTH", "JOB", "WORKER", "CAP_W",
					    "MEASURED_W", "REASON" };
	static const char *const dkeys[] = { "index", "model", "health", "job", "worker", "cap_w" };
	struct table kv = { .ncols = 2 }, t = { .ncols = 8, .head = head };
	struct sbuf path = { 0 };
	json_t *root = NULL, *dev;
	size_t i;
	int r;

	sb_add(&path, "/v1/nodes/");
	sb_segment(&path, c->curl, a->pos[0]);
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const char *when = strcmp(keys[k], "scraped_at") == 0 ? jstr(root, keys[k]) : NULL;
		char age[32];

		tbl_add(&kv, "%s:", keys[k]);
		if (when && fmt_age(age, sizeof age, when, c->now))
			tbl_add(&kv, "%s (%s ago)", when, age);
		else
			tbl_field(&kv, root, keys[k]);
		if (k == 4) {
			tbl_add(&kv, "devices:");
			tbl_add(&kv, "%" JSON_INTEGER_FORMAT " free of %" JSON_INTEGER_FORMAT,
				json_integer_value(json_object_get(root, "devices_free")),
				json_integer_value(json_object_get(root, "devices_total")));
		}
	}
	r = tbl_print(&kv);
	if (r < 0)
		goto done;
	json_array_foreach(json_object_get(root, "devices"), i, dev) {
		for (size_t k = 0; k < sizeof dkeys / sizeof dkeys[0]; k++)
			tbl_field(&t, dev, dkeys[k]);
		tbl_watts(&t, json_object_get(dev, "measured_w"), "");
		tbl_field(&t, dev, "health_reason");
	}
	putchar('\n');
	r = tbl_print(&t);
done:
	tbl_free(&kv);
	tbl_free(&t);
	free(path.p);
	json_decref(root);
	return r;
}

static int cmd_devices(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "NODE", "INDEX", "MODEL", "VENDOR", "HEALTH", "JOB",
					    "CAP_W" };
	static const char *const keys[] = { "node", "index", "model", "vendor", "health", "job",
					    "cap_w" };
	struct table t = { .ncols = 7, .head = head };
	struct sbuf path = { 0 };
	json_t *root = NULL, *list, *dev;
	size_t i;
	int r;

	sb_add(&path, "/v1/devices");
	sb_query_opts(&path, c->curl, a);
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "devices", &list);
	if (r < 0)
		goto done;
	json_array_foreach(list, i, dev)
		for (size_t k = 0; k < t.ncols; k++)
			tbl_field(&t, dev, keys[k]);
	r = tbl_print(&t);
done:
	free(path.p);
	json_decref(root);
	return r;
}

/* A number two levels down (obj.a.b) into the table, "-" when absent. */
static void tbl_sub(struct table *t, const json_t *obj, const char *a, const char *b)
{
	tbl_json(t, json_object_get(json_object_get(obj, a), b));
}

/* Demand as "N" devices, "+ Wx?" for capability-mode workers (their count is chosen per
 * model by jouled). */
static void tbl_wanted(struct table *t, const json_t *g)
{
	const json_t *d = json_object_get(g, "demand");
	json_int_t dev = json_integer_value(json_object_get(d, "devices"));
	json_int_t w = json_integer_value(json_object_get(json_object_get(d, "capability"),
							  "workers"));
	if (!d)
		tbl_add(t, "-");
	else if (w)
		tbl_add(t, "%" JSON_INTEGER_FORMAT "+%" JSON_INTEGER_FORMAT "x?", dev, w);
	else
		tbl_add(t, "%" JSON_INTEGER_FORMAT, dev);
}

/* One row of `capacity`; name is the first cell (indented for domains). */
static void capacity_row(struct table *t, const char *by, const json_t *g, const char *name,
			 time_t now)
{
	const json_t *dem = json_object_get(g, "demand");
	const json_t *mw = json_object_get(json_object_get(g, "fragmentation"), "max_workers");

	tbl_add(t, "%s", name);
	if (strcmp(by, "queue") == 0) {
		tbl_sub(t, g, "demand", "jobs");
		tbl_wanted(t, g);
		tbl_age(t, jstr(dem, "oldest_submitted_at"), now);
		tbl_sub(t, g, "active", "jobs");
		tbl_sub(t, g, "active", "devices");
		return;
	}
	tbl_sub(t, g, "devices", "total");
	tbl_sub(t, g, "devices", "allocated");
	tbl_sub(t, g, "devices", "free");
	tbl_sub(t, g, "devices", "unhealthy");
	tbl_sub(t, g, "devices", "draining");
	tbl_sub(t, g, "power_limited", "devices");
	if (strcmp(by, "domain") == 0) {
		tbl_sub(t, g, "power", "budget_w");
		tbl_sub(t, g, "power", "reserved_w");
		tbl_sub(t, g, "power", "headroom_w");
		return;
	}
	tbl_sub(t, g, "demand", "jobs");
	tbl_wanted(t, g);
	tbl_age(t, jstr(dem, "oldest_submitted_at"), now);
	if (mw)
		tbl_add(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
			   "/%" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(mw, "1")),
			json_integer_value(json_object_get(mw, "2")),
			json_integer_value(json_object_get(mw, "4")),
			json_integer_value(json_object_get(mw, "8")));
	else
		tbl_add(t, "-");
	tbl_sub(t, g, "fragmentation", "nodes_all_free");
}

/* GET /v1/capacity as a table: one row per group, then the totals. */
static int cmd_capacity(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head_model[] = { "NAME", "TOTAL", "ALLOC", "FREE", "UNHEALTHY",
						  "DRAINING", "PWR_LIMITED", "PENDING", "WANTED",
						  "OLDEST", "GANGS_1/2/4/8", "NODES_FREE" };
	static const char *const head_domain[] = { "NAME", "TOTAL", "ALLOC", "FREE", "UNHEALTHY",
						   "DRAINING", "PWR_LIMITED", "BUDGET_W",
						   "RESERVED_W", "HEADROOM_W" };
	static const char *const head_queue[] = { "QUEUE", "PENDING", "WANTED", "OLDEST",
						  "ACTIVE_JOBS", "ACTIVE_DEVICES" };
	struct table t = { 0 };
	struct sbuf path = { 0 };
	json_t *root = NULL, *list, *g;
	time_t now = time(NULL);
	const char *by;
	size_t i;
	int r;

	sb_add(&path, "/v1/capacity");
	sb_query_opts(&path, c->curl, a);
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = answer_list(root, "groups", &list);
	if (r < 0)
		goto done;
	by = jstr(root, "group_by") ? jstr(root, "group_by") : "model";
	if (strcmp(by, "queue") == 0) {
		t.head = head_queue;
		t.ncols = 6;
	} else if (strcmp(by, "domain") == 0) {
		t.head = head_domain;
		t.ncols = 10;
	} else {
		t.head = head_model;
		t.ncols = 12;
	}
	json_array_foreach(list, i, g) {
		const json_t *dp = json_object_get(g, "depth");
		int depth = json_is_integer(dp) && !json_is_integer(json_object_get(root, "depth"))
				    ? (int)json_integer_value(dp) : 0;
		char *name = NULL;
		if (asprintf(&name, "%*s%s", 2 * (depth < 32 ? depth : 32), "",
			     jstr(g, "name") ? jstr(g, "name") : "-") < 0) {
			r = -ENOMEM;
			goto done;
		}
		capacity_row(&t, by, g, name, now);
		free(name);
	}
	capacity_row(&t, by, json_object_get(root, "totals"), "(total)", now);
	r = tbl_print(&t);
done:
	free(path.p);
	json_decref(root);
	return r;
}

/* drain and resume: the command name is the last path segment. */
static int cmd_node_state(struct ctx *c, const struct cmd_args *a)
{
	struct sbuf path = { 0 };
	json_t *root = NULL;
	int r;

	sb_add(&path, "/v1/nodes/");
	sb_segment(&path, c->curl, a->pos[0]);
	sb_printf(&path, "/%s", a->cmd->name);
	if (path.err) {
		r = path.err;
		goto done;
	}
	r = http_call(c, "POST", path.p, NULL, 0, NULL, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	printf("node ");
	put_clean(stdout, jstr(root, "name") ? jstr(root, "name") : a->pos[0]);
	printf(": ");
	put_clean(stdout, jstr(root, "state") ? jstr(root, "state") : "-");
	putchar('\n');
done:
	free(path.p);
	json_decref(root);
	return r;
}

/* device reset NODE INDEX | device fail NODE INDEX [REASON]:
 * POST /v1/devices/{node}/{index}/reset|fail (admin). */
static int cmd_device(struct ctx *c, const struct cmd_args *a)
{
	struct sbuf path = { 0 };
	json_t *root = NULL;
	long long index;
	int r;

	bool fail = strcmp(a->pos[0], "fail") == 0;
	if ((!fail && strcmp(a->pos[0], "reset") != 0) || a->npos < 3 ||
	    (!fail && a->npos != 3)) {
		fprintf(stderr, "joulectl: %s\nusage: joulectl %s\n",
			!fail && strcmp(a->pos[0], "reset") ? "device: unknown subcommand"
							    : "device: NODE and INDEX needed",
			a->cmd->synopsis);
		return ERR_USAGE;
	}
	if (!parse_int(a->pos[2], &index)) {
		fprintf(stderr, "joulectl: device reset: INDEX must be a number\nusage: joulectl %s\n",
			a->cmd->synopsis);
		return ERR_USAGE;
	}
	sb_add(&path, "/v1/devices/");
	sb_segment(&path, c->curl, a->pos[1]);
	sb_printf(&path, "/%lld/%s", index, fail ? "fail" : "reset");
	if (path.err) {
		r = path.err;
		goto done;
	}
	char *body = NULL;
	if (fail && a->npos == 4) {
		json_t *b = json_pack("{s:s}", "reason", a->pos[3]);
		body = b ? json_dumps(b, JSON_COMPACT) : NULL;
		json_decref(b);
		if (!body) {
			r = ERR_REFUSED;
			goto done;
		}
	}
	r = http_call(c, "POST", path.p, body, body ? strlen(body) : 0, NULL, &root);
	free(body);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	printf("device ");
	put_clean(stdout, jstr(root, "node") ? jstr(root, "node") : a->pos[1]);
	printf("/%lld: ", index);
	put_clean(stdout, jstr(root, "health") ? jstr(root, "health") : "-");
	putchar('\n');
done:
	free(path.p);
	json_decref(root);
	return r;
}

static void tbl_placement(struct table *t, const json_t *job)
{
	json_t *w;
	size_t i;

	json_array_foreach(json_object_get(job, "placement"), i, w) {
		tbl_field(t, w, "worker");
		tbl_field(t, w, "node");
		tbl_field(t, w, "model");
		tbl_indexes(t, json_object_get(w, "devices"));
		tbl_field(t, w, "cap_w");
	}
}

static const char *const placement_head[] = { "WORKER", "NODE", "MODEL", "DEVICES", "CAP_W" };

/* "job ID STATE", the reason if any, and the placement table when placed. */
static int print_job_short(const json_t *job)
{
	struct table t = { .ncols = 5, .head = placement_head };
	struct sbuf b = { 0 };

	sb_add(&b, "job ");
	sb_json(&b, json_object_get(job, "id"));
	sb_add(&b, " ");
	sb_json(&b, json_object_get(job, "state"));
	if (b.err) {
		free(b.p);
		return b.err;
	}
	sanitize(b.p);
	puts(b.p);
	free(b.p);
	if (jstr(job, "reason")) {
		fputs("reason: ", stdout);
		put_clean(stdout, jstr(job, "reason"));
		putchar('\n');
	}
	if (json_array_size(json_object_get(job, "placement")) == 0)
		return 0;
	tbl_placement(&t, job);
	return tbl_print(&t);
}

/* Writes v at a dotted path ("accelerator.models"), creating objects on the way.
 * Steals v, even on failure. */
static int json_set_path(json_t *obj, const char *path, json_t *v)
{
	const char *dot;
	char key[64];
	json_t *child;

	if (!v)
		return -ENOMEM;
	while ((dot = strchr(path, '.'))) {
		size_t len = (size_t)(dot - path);

		if (len >= sizeof key) {
			json_decref(v);
			return -EINVAL;
		}
		memcpy(key, path, len);
		key[len] = '\0';
		child = json_object_get(obj, key);
		if (!json_is_object(child)) {
			if (child && !json_is_null(child)) {
				fprintf(stderr, "joulectl: \"%s\" in the job file is not an object\n", key);
				json_decref(v);
				return ERR_USAGE;
			}
			child = json_object();
			if (json_object_set_new(obj, key, child) < 0) {
				json_decref(v);
				return -ENOMEM;
			}
		}
		obj = child;
		path = dot + 1;
	}
	return json_object_set_new(obj, path, v) < 0 ? -ENOMEM : 0;
}

/*
 * Flags replace what the file says, including its alternatives: --devices drops the
 * file's per_worker/per_replica and a --per-worker-* flag drops its devices; --cap drops
 * "cap":"auto" and --cap-auto drops cap_w. The --per-worker-* flags were written under
 * "per_worker"; an inference job gets them as "per_replica" (merged over the file's).
 */
static int submit_fixups(const struct cmd_args *a, json_t *body)
{
	static const char *const need_flags[] = { "per-worker-memory", "per-worker-bandwidth",
						  "per-worker-tflops", "per-worker-fp8" };
	json_t *power = json_object_get(body, "power"), *need, *old;
	bool by_need = false;
	const char *kind = jstr(body, "kind");

	for (size_t k = 0; k < sizeof need_flags / sizeof need_flags[0]; k++)
		by_need |= opt(a, need_flags[k])->set;
	if (by_need && opt(a, "devices")->set) {
		fprintf(stderr, "joulectl: give --devices or --per-worker-* flags, not both\n"
				"usage: joulectl %s\n", a->cmd->synopsis);
		return ERR_USAGE;
	}
	if (opt(a, "cap")->set && opt(a, "cap-auto")->set) {
		fprintf(stderr, "joulectl: give --cap or --cap-auto, not both\n"
				"usage: joulectl %s\n", a->cmd->synopsis);
		return ERR_USAGE;
	}
	if (opt(a, "devices")->set) {
		json_object_del(body, "per_worker");
		json_object_del(body, "per_replica");
	}
	if (by_need) {
		const char *key = kind && strcmp(kind, "inference") == 0 ? "per_replica" : "per_worker";

		need = json_incref(json_object_get(body, "per_worker"));
		json_object_del(body, "per_worker");
		old = json_object_get(body, "per_replica");
		if (json_is_object(old) && json_object_update_missing(need, old) < 0) {
			json_decref(need);
			return -ENOMEM;
		}
		json_object_del(body, "per_replica");
		json_object_del(body, "devices");
		if (json_object_set_new(body, key, need) < 0)
			return -ENOMEM;
	}
	if (json_is_object(power) && opt(a, "cap-auto")->set)
		json_object_del(power, "cap_w");
	if (json_is_object(power) && opt(a, "cap")->set) {
		json_object_del(power, "cap");
		if (!opt(a, "min-perf")->set)
			json_object_del(power, "min_perf");
	}
	return 0;
}

static int cmd_submit(struct ctx *c, const struct cmd_args *a)
{
	const struct opt_def *defs = a->cmd->opts;
	const struct opt_val *key = opt(a, "idempotency-key");
	json_t *body = NULL, *root = NULL, *v;
	json_error_t jerr;
	char *text = NULL, *out = NULL;
	size_t len;
	bool any = false;
	int r;

	for (size_t i = 0; defs[i].name; i++)
		any |= a->val[i].set && defs[i].target;
	if (a->npos == 0 && !any) {
		fprintf(stderr, "joulectl: submit needs a FILE or flags such as --name, --kind, "
				"--workers, --devices\nusage: joulectl %s\n", a->cmd->synopsis);
		return ERR_USAGE;
	}
	if (key->set && strpbrk(key->str, "\r\n")) {
		fprintf(stderr, "joulectl: --idempotency-key must be one line\n");
		return ERR_USAGE;
	}
	if (a->npos == 1) {
		r = read_input(a->pos[0], &text, &len);
		if (r < 0)
			return r;
		body = json_loadb(text, len, 0, &jerr);
		if (!body || !json_is_object(body)) {
			if (body)
				fprintf(stderr, "joulectl: %s: a job is a JSON object\n", a->pos[0]);
			else
				fprintf(stderr, "joulectl: %s:%d:%d: %s\n",
					strcmp(a->pos[0], "-") ? a->pos[0] : "stdin", jerr.line,
					jerr.column, jerr.text);
			r = ERR_USAGE;
			goto done;
		}
	} else {
		body = json_object();
		if (!body) {
			r = -ENOMEM;
			goto done;
		}
	}
	for (size_t i = 0; defs[i].name; i++) {
		const struct opt_val *ov = &a->val[i];

		if (!ov->set || !defs[i].target)
			continue;
		switch (defs[i].kind) {
		case OPT_FLAG:
			v = defs[i].constant ? json_string(defs[i].constant) : json_true();
			break;
		case OPT_STR:
			v = json_string(ov->str);
			if (!v) {
				fprintf(stderr, "joulectl: --%s: not UTF-8 text\n", defs[i].name);
				r = ERR_USAGE;
				goto done;
			}
			break;
		case OPT_INT:
			v = json_integer(ov->num);
			break;
		case OPT_NUM:
			v = ov->real == (double)(json_int_t)ov->real ? json_integer((json_int_t)ov->real)
								      : json_real(ov->real);
			break;
		case OPT_LIST:
			v = json_array();
			for (size_t k = 0; v && k < ov->n; k++) {
				json_t *s = json_string(ov->list[k]);
				if (!s) {
					fprintf(stderr, "joulectl: --%s: not UTF-8 text\n", defs[i].name);
					json_decref(v);
					r = ERR_USAGE;
					goto done;
				}
				if (json_array_append_new(v, s) < 0) {
					json_decref(v);
					v = NULL;
				}
			}
			break;
		default:
			v = NULL;
			break;
		}
		r = json_set_path(body, defs[i].target, v);
		if (r < 0)
			goto done;
	}
	r = submit_fixups(a, body);
	if (r < 0)
		goto done;
	out = json_dumps(body, JSON_COMPACT);
	if (!out) {
		r = -ENOMEM;
		goto done;
	}
	r = http_call(c, "POST", "/v1/jobs", out, strlen(out), key->set ? key->str : NULL, &root);
	if (r < 0)
		goto done;
	r = c->json ? print_json(root) : print_job_short(root);
done:
	free(out);
	free(text);
	json_decref(body);
	json_decref(root);
	return r;
}

/* MODEL: the placed model, else the allowed ones, else "any". */
static void tbl_job_model(struct table *t, const json_t *job)
{
	const json_t *models = json_object_get(json_object_get(job, "accelerator"), "models");
	const json_t *placed = json_object_get(json_array_get(json_object_get(job, "placement"), 0),
					       "model");

	if (placed)
		tbl_json(t, placed);
	else if (json_array_size(models))
		tbl_json(t, models);
	else
		tbl_add(t, "any");
}

/* NODES: up to three distinct node names, then "+N". */
static void tbl_job_nodes(struct table *t, const json_t *job, json_t *set)
{
	struct sbuf b = { 0 };
	const char *name;
	json_t *w, *unused;
	size_t i, shown = 0;

	json_object_clear(set);
	json_array_foreach(json_object_get(job, "placement"), i, w)
		if ((name = jstr(w, "node")) && json_object_set_new(set, name, json_null()) < 0)
			b.err = -ENOMEM;
	json_object_foreach(set, name, unused) {
		if (shown == 3) {
			sb_printf(&b, ",+%zu", json_object_size(set) - 3);
			break;
		}
		sb_printf(&b, "%s%s", shown++ ? "," : "", name);
	}
	if (!shown)
		sb_add(&b, "-");
	if (b.err) {
		free(b.p);
		if (!t->err)
			t->err = b.err;
		return;
	}
	tbl_take(t, b.p);
}

/* SHAPE: workers (or replicas) x devices; in capability mode the devices per worker of
 * the placement, or "?" while the daemon has not chosen them. */
static void tbl_job_shape(struct table *t, const json_t *job, const json_t *n)
{
	const json_t *dev = json_object_get(job, "devices");
	const json_t *w0 = json_array_get(json_object_get(job, "placement"), 0);

	if (!json_is_integer(n))
		tbl_add(t, "-");
	else if (json_is_integer(dev))
		tbl_add(t, "%" JSON_INTEGER_FORMAT "x%" JSON_INTEGER_FORMAT, json_integer_value(n),
			json_integer_value(dev));
	else if (w0)
		tbl_add(t, "%" JSON_INTEGER_FORMAT "x%zu", json_integer_value(n),
			json_array_size(json_object_get(w0, "devices")));
	else
		tbl_add(t, "%" JSON_INTEGER_FORMAT "x?", json_integer_value(n));
}

/* REASON: the code of a pending job's reason ("CODE: text" → "CODE"), else "-". */
static void tbl_job_reason(struct table *t, const json_t *job)
{
	const char *why = jstr(job, "reason"), *state = jstr(job, "state");

	if (!why || !state || strcmp(state, "pending") != 0)
		tbl_add(t, "-");
	else
		tbl_add(t, "%.*s", (int)(strcspn(why, ":") < 32 ? strcspn(why, ":") : 32), why);
}

static int cmd_jobs(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "ID", "NAME", "KIND", "STATE", "OWNER", "QUEUE", "PRIO",
					    "SHAPE", "MODEL", "NODES", "REASON", "AGE" };
	struct table t = { .ncols = 12, .head = head };
	const struct opt_val *after = opt(a, "after"), *limit = opt(a, "limit");
	bool all = opt(a, "all")->set;
	struct sbuf path = { 0 };
	json_t *page = NULL, *jobs = NULL, *list, *next, *job, *set = NULL, *whole = NULL;
	json_t *cursors = NULL;         /* every cursor followed: a loop is an error, not a hang */
	char cursor[32] = "", lim[32];
	size_t i;
	int r;

	if (after->set)
		snprintf(cursor, sizeof cursor, "%lld", after->num);
	snprintf(lim, sizeof lim, "%lld", limit->num);
	jobs = json_array();
	set = json_object();
	cursors = json_object();
	if (!jobs || !set || !cursors) {
		r = -ENOMEM;
		goto done;
	}
	for (;;) {
		path.len = 0;
		sb_add(&path, "/v1/jobs");
		for (size_t k = 0; a->cmd->opts[k].name; k++)
			if (a->val[k].set && a->cmd->opts[k].kind == OPT_STR)
				sb_query(&path, c->curl, a->cmd->opts[k].target, a->val[k].str);
		sb_query(&path, c->curl, "limit", limit->set ? lim : NULL);
		sb_query(&path, c->curl, "after", cursor[0] ? cursor : NULL);
		json_decref(page);
		page = NULL;
		r = http_get(c, &path, &page);
		if (r < 0)
			goto done;
		r = answer_list(page, "jobs", &list);
		if (r < 0)
			goto done;
		if (json_array_extend(jobs, list) < 0) {
			r = -ENOMEM;
			goto done;
		}
		next = json_object_get(page, "next");
		if (!all || !next || json_is_null(next))
			break;
		if (cursor[0] && json_object_set_new(cursors, cursor, json_null()) < 0) {
			r = -ENOMEM;
			goto done;
		}
		if (json_is_integer(next))
			snprintf(cursor, sizeof cursor, "%" JSON_INTEGER_FORMAT, json_integer_value(next));
		if (!json_is_integer(next) || json_array_size(list) == 0 ||
		    json_object_get(cursors, cursor)) {
			fprintf(stderr, "joulectl: jouled answered a page cursor that does not advance\n");
			r = ERR_ANSWER;
			goto done;
		}
	}
	if (c->json) {
		if (!all) {
			r = print_json(page);
			goto done;
		}
		whole = json_pack("{s:O,s:n}", "jobs", jobs, "next");
		r = whole ? print_json(whole) : -ENOMEM;
		goto done;
	}
	json_array_foreach(jobs, i, job) {
		json_t *n = json_object_get(job, "workers");

		if (!json_is_integer(n))
			n = json_object_get(job, "replicas");
		tbl_field(&t, job, "id");
		tbl_field(&t, job, "name");
		tbl_field(&t, job, "kind");
		tbl_field(&t, job, "state");
		tbl_field(&t, job, "owner");
		tbl_field(&t, job, "queue");
		tbl_field(&t, job, "priority");
		tbl_job_shape(&t, job, n);
		tbl_job_model(&t, job);
		tbl_job_nodes(&t, job, set);
		tbl_job_reason(&t, job);
		tbl_age(&t, jstr(job, "submitted_at"), c->now);
	}
	r = tbl_print(&t);
done:
	tbl_free(&t);
	free(path.p);
	json_decref(whole);
	json_decref(cursors);
	json_decref(set);
	json_decref(jobs);
	json_decref(page);
	return r;
}

/* A positional job ID: a positive integer, printed back canonically into the path. */
static int job_path(const struct cmd_args *a, struct sbuf *path)
{
	long long id;

	if (!parse_int(a->pos[0], &id) || id < 1) {
		fprintf(stderr, "joulectl: job ID must be a positive integer, not \"%s\"\n"
				"usage: joulectl %s\n", a->pos[0], a->cmd->synopsis);
		return ERR_USAGE;
	}
	sb_printf(path, "/v1/jobs/%lld", id);
	return path->err;
}

static void kv_time(struct table *kv, const char *key, const json_t *job, time_t now)
{
	const char *when = jstr(job, key);
	char age[32];

	tbl_add(kv, "%s:", key);
	if (!when)
		tbl_add(kv, "-");
	else if (fmt_age(age, sizeof age, when, now))
		tbl_add(kv, "%s (%s ago)", when, age);
	else
		tbl_add(kv, "%s", when);
}

static int cmd_job(struct ctx *c, const struct cmd_args *a)
{
	static const char *const keys[] = { "id", "name", "kind", "state", "reason", "requeues",
					    "owner", "uid", "queue", "priority", "preemptible",
					    "workers", "replicas", "min_replicas", "devices",
					    "per_worker", "per_replica" };
	static const char *const optional[] = { "workers", "replicas", "min_replicas",
						"per_worker", "per_replica" };
	static const char *const acc[] = { "vendors", "models", "stack", "min_memory_gib", "fp8" };
	struct table kv = { .ncols = 2 }, t = { .ncols = 5, .head = placement_head };
	struct sbuf path = { 0 };
	json_t *root = NULL, *accel, *power;
	int r;

	r = job_path(a, &path);
	if (r < 0)
		goto done;
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		json_t *v = json_object_get(root, keys[k]);
		bool skip = false;

		for (size_t o = 0; o < sizeof optional / sizeof optional[0]; o++)
			skip |= (!v || json_is_null(v)) && strcmp(keys[k], optional[o]) == 0;
		if (skip)
			continue;
		tbl_add(&kv, "%s:", keys[k]);
		tbl_json(&kv, v);
	}
	accel = json_object_get(root, "accelerator");
	for (size_t k = 0; k < sizeof acc / sizeof acc[0]; k++) {
		tbl_add(&kv, "%s:", acc[k]);
		tbl_field(&kv, accel, acc[k]);
	}
	power = json_object_get(root, "power");
	tbl_add(&kv, "cap_w:");
	if (jstr(power, "cap") && json_is_number(json_object_get(power, "min_perf")))
		tbl_add(&kv, "%s (min_perf %g)", jstr(power, "cap"),
			json_number_value(json_object_get(power, "min_perf")));
	else
		tbl_field(&kv, power, "cap_w");
	tbl_add(&kv, "topology:");
	tbl_field(&kv, root, "topology");
	tbl_add(&kv, "duration_s:");
	tbl_field(&kv, root, "duration_s");
	kv_time(&kv, "submitted_at", root, c->now);
	kv_time(&kv, "placed_at", root, c->now);
	kv_time(&kv, "finished_at", root, c->now);
	r = tbl_print(&kv);
	if (r < 0 || json_array_size(json_object_get(root, "placement")) == 0)
		goto done;
	tbl_placement(&t, root);
	putchar('\n');
	r = tbl_print(&t);
done:
	tbl_free(&kv);
	tbl_free(&t);
	free(path.p);
	json_decref(root);
	return r;
}

/* ---- explain ---- */

#define TOP_WIDTH 96    /* display width of the funnel's TOP cell */

/* "name (detail)" of a stage's top offenders, joined with "; " while they fit in
 * TOP_WIDTH; the first is cut with "..." if alone it is too long; "+N more" for the rest. */
static void tbl_offenders(struct table *t, const json_t *top)
{
	struct sbuf b = { 0 }, one = { 0 };
	size_t n = json_array_size(top), shown = 0;

	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(top, i);
		const char *name = jstr(o, "name"), *detail = jstr(o, "detail");
		char more[32];

		one.len = 0;
		sb_add(&one, name ? name : "?");
		if (detail && *detail)
			sb_printf(&one, " (%s)", detail);
		if (one.err)
			break;
		snprintf(more, sizeof more, "; +%zu more", n - i - 1);
		size_t tail = i + 1 < n ? strlen(more) : 0;
		if (shown && b.len + 2 + one.len + tail > TOP_WIDTH)
			break;
		if (shown)
			sb_add(&b, "; ");
		if (!shown && one.len + tail > TOP_WIDTH) {
			/* cut on a UTF-8 boundary, keep room for "...)" */
			size_t cut = TOP_WIDTH > tail + 4 ? TOP_WIDTH - tail - 4 : 8;
			while (cut > 0 && ((unsigned char)one.p[cut] & 0xc0) == 0x80)
				cut--;
			sb_addn(&b, one.p, cut);
			sb_add(&b, detail && *detail ? "...)" : "...");
		} else {
			sb_add(&b, one.p);
		}
		shown++;
	}
	if (shown < n)
		sb_printf(&b, "; +%zu more", n - shown);
	if (!shown && !one.err)
		sb_add(&b, "-");
	free(one.p);
	if (one.err && !b.err)
		b.err = one.err;
	if (b.err) {
		free(b.p);
		if (!t->err)
			t->err = b.err;
		return;
	}
	tbl_take(t, b.p);
}

/* "2026-11-24T01:00:00Z (in 3h, after job 7)", "now", or why there is no estimate. */
static void tbl_start(struct table *t, const json_t *x, time_t now, bool reserved)
{
	const char *when = jstr(x, "estimated_start");
	const json_t *after = json_object_get(x, "start_after_job");
	time_t then;
	char in[32] = "";

	if (!when) {
		tbl_add(t, "- (no estimate: it does not fit even after the running jobs end)");
		return;
	}
	if (!json_is_integer(after)) {
		tbl_add(t, reserved ? "now by capacity, but held back by the reservation above it"
				    : "now (it fits on the devices and watts free now)");
		return;
	}
	if (parse_rfc3339(when, &then) && then > now) {
		long long s = (long long)(then - now);
		if (s < 3600)
			snprintf(in, sizeof in, "in %lldm, ", s / 60);
		else if (s < 100 * 3600)
			snprintf(in, sizeof in, "in %lldh%02lldm, ", s / 3600, s % 3600 / 60);
		else
			snprintf(in, sizeof in, "in %lldd, ", s / 86400);
	}
	tbl_add(t, "%s (%safter job %" JSON_INTEGER_FORMAT " ends)", when, in,
		json_integer_value(after));
}

static int cmd_explain(struct ctx *c, const struct cmd_args *a)
{
	static const char *const head[] = { "STAGE", "NODES_IN", "REMOVED", "DEVICES_REMOVED",
					    "TOP" };
	struct table kv = { .ncols = 2 }, t = { .ncols = 5, .head = head };
	struct table pw = { .ncols = 2 }, fx = { .ncols = 2 };
	struct sbuf path = { 0 };
	json_t *root = NULL, *stages, *fixes, *power, *v;
	const char *code;
	size_t i;
	int r;

	r = job_path(a, &path);
	if (r < 0)
		goto done;
	sb_add(&path, "/explain");
	r = http_get(c, &path, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	stages = json_object_get(root, "stages");
	fixes = json_object_get(root, "fixes");
	power = json_object_get(root, "power");
	if (!jstr(root, "verdict") || !json_is_array(stages) || !json_is_array(fixes)) {
		fprintf(stderr, "joulectl: the answer from jouled is not an explanation\n");
		r = ERR_ANSWER;
		goto done;
	}
	tbl_add(&kv, "job:");
	tbl_field(&kv, root, "job");
	tbl_add(&kv, "verdict:");
	tbl_field(&kv, root, "verdict");
	code = jstr(root, "code") ? jstr(root, "code") : "";
	if (strcmp(code, "NOT_PENDING") != 0) {
		tbl_add(&kv, "queue position:");
		tbl_field(&kv, root, "queue_position");
		tbl_add(&kv, "estimated start:");
		tbl_start(&kv, root, c->now, strcmp(code, "RESERVED_FOR_HEAD") == 0);
	}
	if ((v = json_object_get(root, "nearest_miss")) && !json_is_null(v)) {
		tbl_add(&kv, "nearest miss:");
		tbl_json(&kv, v);
	}
	r = tbl_print(&kv);
	if (r < 0)
		goto done;

	json_array_foreach(stages, i, v) {
		tbl_field(&t, v, "stage");
		tbl_field(&t, v, "nodes_in");
		tbl_field(&t, v, "nodes_removed");
		tbl_field(&t, v, "devices_removed");
		tbl_offenders(&t, json_object_get(v, "top"));
	}
	if (json_array_size(stages)) {
		putchar('\n');
		r = tbl_print(&t);
		if (r < 0)
			goto done;
	}

	if (json_is_object(power)) {
		static const char *const keys[] = { "budget_w", "reserved_w", "need_w",
						    "shortfall_w" };
		static const char *const labels[] = { "  budget:", "  reserved:",
						      "  need (whole job):", "  shortfall:" };
		tbl_add(&pw, "power domain:");
		tbl_field(&pw, power, "domain");
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			tbl_add(&pw, "%s", labels[k]);
			v = json_object_get(power, keys[k]);
			if (json_is_integer(v))
				tbl_add(&pw, "%" JSON_INTEGER_FORMAT " W", json_integer_value(v));
			else
				tbl_json(&pw, v);
		}
		putchar('\n');
		r = tbl_print(&pw);
		if (r < 0)
			goto done;
	}

	if (json_array_size(fixes)) {
		json_array_foreach(fixes, i, v) {
			tbl_add(&fx, "  %s", jstr(v, "code") ? jstr(v, "code") : "-");
			tbl_field(&fx, v, "text");
		}
		printf("\nFIXES\n");
		r = tbl_print(&fx);
	}
done:
	tbl_free(&kv);
	tbl_free(&t);
	tbl_free(&pw);
	tbl_free(&fx);
	free(path.p);
	json_decref(root);
	return r;
}

static int cmd_cancel(struct ctx *c, const struct cmd_args *a)
{
	struct sbuf path = { 0 };
	json_t *root = NULL;
	int r;

	r = job_path(a, &path);
	if (r < 0)
		goto done;
	r = http_call(c, "DELETE", path.p, NULL, 0, NULL, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	printf("job ");
	put_clean(stdout, path.p + strlen("/v1/jobs/"));
	printf(" cancelled\n");
done:
	free(path.p);
	json_decref(root);
	return r;
}

/* A usage error of a local command: the message, the synopsis, exit status 2. */
static int local_usage(const struct cmd_args *a, const char *msg)
{
	if (msg)
		fprintf(stderr, "joulectl: %s\n", msg);
	fprintf(stderr, "usage: joulectl %s\n", a->cmd->synopsis);
	return ERR_USAGE;
}

static int cmd_simulate(struct ctx *c, const struct cmd_args *a)
{
	const struct opt_val *fleet = opt(a, "fleet"), *trace = opt(a, "trace"),
			     *events = opt(a, "events"), *out = opt(a, "out"),
			     *until = opt(a, "until"), *sample = opt(a, "sample"),
			     *res = opt(a, "resolution");
	if (!fleet->set || !trace->set)
		return local_usage(a, "simulate needs --fleet FILE and --trace FILE");
	if ((until->set && until->num <= 0) || (sample->set && sample->num <= 0) ||
	    (res->set && (res->num < 1 || res->num > 86400)))
		return local_usage(a, "--until and --sample take seconds > 0, --resolution 1-86400");
	struct ctl_sim_args sa = {
		.fleet = fleet->str, .trace = trace->str,
		.events = events->set ? events->str : NULL, .out = out->set ? out->str : NULL,
		.until_s = until->set ? until->num : 0, .sample_s = sample->set ? sample->num : 0,
		.resolution_s = res->set ? res->num : 0,
		.json = c->json,
	};
	return ctl_simulate(&sa);
}

static int cmd_trace(struct ctx *c, const struct cmd_args *a)
{
	const char *sub = a->pos[0];
	const struct opt_val *fmt = opt(a, "format"), *jobs = opt(a, "jobs"),
			     *span = opt(a, "span"), *rate = opt(a, "rate"), *seed = opt(a, "seed"),
			     *share = opt(a, "training-share"), *nv = opt(a, "nvidia-only"),
			     *mpr = opt(a, "machines-per-rack"), *frac = opt(a, "rack-budget-fraction");
	(void)c;
	if (strcmp(sub, "generate") == 0) {
		if (a->npos != 1)
			return local_usage(a, "trace generate takes no file");
		if (fmt->set && strcmp(fmt->str, "csv") != 0 && strcmp(fmt->str, "jsonl") != 0)
			return local_usage(a, "--format is csv or jsonl");
		if ((jobs->set && (jobs->num < 1 || jobs->num > 2000000)) ||
		    (span->set && span->real <= 0) || (rate->set && rate->real <= 0) ||
		    (share->set && (share->real < 0 || share->real > 1)) ||
		    (seed->set && seed->num < 0))
			return local_usage(a, "--jobs 1-2000000, --span and --rate > 0, "
					   "--training-share 0-1, --seed >= 0");
		struct ctl_gen_args g = {
			.seed = seed->set ? (uint64_t)seed->num : 1,
			.jobs = jobs->set ? (uint32_t)jobs->num : (span->set ? 0 : 1000),
			.span_s = span->set ? span->real : 0,
			.rate_per_hour = rate->set ? rate->real : 0,
			.training_share = share->set ? share->real : -1,
			.csv = fmt->set && strcmp(fmt->str, "csv") == 0,
			.nvidia_only = nv->set,
		};
		return ctl_trace_generate(&g);
	}
	if (strcmp(sub, "import-alibaba") == 0) {
		if (a->npos != 2)
			return local_usage(a, "trace import-alibaba needs the machine table FILE");
		if ((mpr->set && (mpr->num < 1 || mpr->num > 1000)) ||
		    (frac->set && (frac->real < 0 || frac->real > 1)))
			return local_usage(a, "--machines-per-rack 1-1000, --rack-budget-fraction 0-1");
		struct ctl_alibaba_args al = {
			.path = a->pos[1],
			.machines_per_rack = mpr->set ? (uint32_t)mpr->num : 0,
			.rack_budget_fraction = frac->set ? frac->real : -1,
		};
		return ctl_trace_import_alibaba(&al);
	}
	fprintf(stderr, "joulectl: unknown trace command '%s'\n", sub);
	return local_usage(a, NULL);
}

static int cmd_report(struct ctx *c, const struct cmd_args *a)
{
	const struct opt_val *msg = opt(a, "message");
	struct sbuf path = { 0 };
	json_t *body = NULL, *root = NULL;
	char *text = NULL;
	int r;

	r = job_path(a, &path);
	if (r < 0)
		goto done;
	sb_add(&path, "/status");
	if (path.err) {
		r = path.err;
		goto done;
	}
	/* the state is the daemon's to validate (422 names the field) */
	json_t *state = json_string(a->pos[1]), *m = msg->set ? json_string(msg->str) : NULL;
	body = json_object();
	if (!state || (msg->set && !m) || !body) {
		json_decref(state);
		json_decref(m);
		fprintf(stderr, "joulectl: the state and --message must be UTF-8 text\n");
		r = body ? ERR_USAGE : -ENOMEM;
		goto done;
	}
	if (json_object_set_new(body, "state", state) < 0 ||
	    (m && json_object_set_new(body, "message", m) < 0)) {
		r = -ENOMEM;
		goto done;
	}
	text = json_dumps(body, JSON_COMPACT);
	if (!text) {
		r = -ENOMEM;
		goto done;
	}
	r = http_call(c, "POST", path.p, text, strlen(text), NULL, &root);
	if (r < 0)
		goto done;
	if (c->json) {
		r = print_json(root);
		goto done;
	}
	r = print_job_short(root);
done:
	free(text);
	json_decref(body);
	json_decref(root);
	free(path.p);
	return r;
}

/* A data value for a `key=value` of a watch line: numbers and words bare, a string with
 * blanks, '=' or quotes (or empty) quoted as JSON, lists joined by ',', objects as JSON. */
static void sb_event_value(struct sbuf *b, const json_t *v)
{
	const char *s;
	char *dump;
	bool plain;

	if (json_is_string(v)) {
		s = json_string_value(v);
		plain = *s != '\0';
		for (const char *p = s; *p && plain; p++)
			plain = *p != ' ' && *p != '=' && *p != '"' && *p != '\\' &&
				(unsigned char)*p >= 0x20 && *p != 0x7f;
		if (plain) {
			sb_add(b, s);
			return;
		}
	} else if (!json_is_object(v)) {
		sb_json(b, v);
		return;
	}
	dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!dump) {
		b->err = b->err ? b->err : -ENOMEM;
		return;
	}
	sb_add(b, dump);
	free(dump);
}

/* "SEQ TIME TYPE job=ID node=NAME key=value…" (job= and node= only when set). */
static int print_event_line(const json_t *ev)
{
	struct sbuf b = { 0 };
	const json_t *job = json_object_get(ev, "job"), *node = json_object_get(ev, "node");
	const char *key;
	json_t *v;

	sb_json(&b, json_object_get(ev, "seq"));
	sb_add(&b, " ");
	sb_json(&b, json_object_get(ev, "time"));
	sb_add(&b, " ");
	sb_json(&b, json_object_get(ev, "type"));
	if (job && !json_is_null(job)) {
		sb_add(&b, " job=");
		sb_json(&b, job);
	}
	if (node && !json_is_null(node)) {
		sb_add(&b, " node=");
		sb_event_value(&b, node);
	}
	json_object_foreach(json_object_get(ev, "data"), key, v) {
		sb_add(&b, " ");
		sb_add(&b, key);
		sb_add(&b, "=");
		sb_event_value(&b, v);
	}
	if (b.err) {
		free(b.p);
		return b.err;
	}
	sanitize(b.p);
	puts(b.p);
	free(b.p);
	return 0;
}

#define WATCH_WAIT_S 30
#define WATCH_PAGE 1000
#define WATCH_SKIP_PAGE 10000

/* One GET /v1/events; *next is the answer's "next" and *events its list (owned by *root). */
static int events_page(struct ctx *c, uint64_t since, const char *types, unsigned wait,
		       unsigned limit, json_t **root, json_t **events, uint64_t *next)
{
	struct sbuf path = { 0 };
	json_t *n;
	int r;

	sb_printf(&path, "/v1/events?since=%llu&limit=%u", (unsigned long long)since, limit);
	if (wait)
		sb_printf(&path, "&wait=%u", wait);
	if (types)
		sb_query(&path, c->curl, "types", types);
	r = http_get(c, &path, root);
	free(path.p);
	if (r < 0)
		return r;
	n = json_object_get(*root, "next");
	if ((r = answer_list(*root, "events", events)) < 0 || !json_is_integer(n) ||
	    json_integer_value(n) < 0) {
		if (r == 0)
			fprintf(stderr, "joulectl: the answer from jouled has no \"next\" sequence\n");
		json_decref(*root);
		*root = NULL;
		return ERR_ANSWER;
	}
	*next = (uint64_t)json_integer_value(n);
	return 0;
}

static void on_stop(int sig)
{
	stop_signal = sig;
}

static int cmd_watch(struct ctx *c, const struct cmd_args *a)
{
	const struct opt_val *since_o = opt(a, "since"), *types_o = opt(a, "types");
	const char *types = types_o->set ? types_o->str : NULL;
	struct sigaction sa = { 0 };
	uint64_t since = 0, next;
	json_t *root = NULL, *events, *ev;
	size_t i;
	int r;

	if (since_o->set && since_o->num < 0)
	{
		fprintf(stderr, "joulectl: option --since needs a sequence number >= 0, not %s\n"
				"usage: joulectl %s\n", since_o->str, a->cmd->synopsis);
		return ERR_USAGE;
	}
	sa.sa_handler = on_stop;       /* no SA_RESTART: a blocking write returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	c->interruptible = true;
	c->lines = c->json;

	if (since_o->set) {
		since = (uint64_t)since_o->num;
	} else {
		/* from the current end: page through what is retained, without waiting */
		for (;;) {
			r = events_page(c, since, NULL, 0, WATCH_SKIP_PAGE, &root, &events, &next);
			if (r < 0)
				goto done;
			size_t n = json_array_size(events);
			json_decref(root);
			root = NULL;
			since = next;
			if (n < WATCH_SKIP_PAGE || stop_signal)
				break;
		}
	}
	while (!stop_signal) {
		r = events_page(c, since, types, WATCH_WAIT_S, WATCH_PAGE, &root, &events, &next);
		if (r < 0)
			goto done;
		json_array_foreach(events, i, ev) {
			if (c->json) {
				if (json_dumpf(ev, stdout, JSON_COMPACT) < 0 || putchar('\n') == EOF)
					r = -EIO;
			} else {
				r = print_event_line(ev);
			}
			if (r < 0)
				goto done;
		}
		if (fflush(stdout) != 0) {
			r = -EIO;
			goto done;
		}
		json_decref(root);
		root = NULL;
		if (next > since)
			since = next;
	}
	r = 0;
done:
	json_decref(root);
	if (r == ERR_STOPPED || (r < 0 && stop_signal && r != ERR_REFUSED))
		r = 0;
	if (r == ERR_REFUSED && c->status == 410)
		fprintf(stderr, "joulectl: the events after %llu are gone (dropped by retention); "
				"run joulectl watch again without --since to follow from now\n",
			(unsigned long long)since);
	return r;
}

/* ---- command line ---- */

static const struct opt_def nodes_opts[] = {
	{ "state", OPT_STR, "state", NULL },
	{ "domain", OPT_STR, "domain", NULL },
	{ "model", OPT_STR, "model", NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def devices_opts[] = {
	{ "model", OPT_STR, "model", NULL },
	{ "vendor", OPT_STR, "vendor", NULL },
	{ "state", OPT_STR, "state", NULL },
	{ "health", OPT_STR, "health", NULL },
	{ "node", OPT_STR, "node", NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def jobs_opts[] = {
	{ "state", OPT_STR, "state", NULL },
	{ "owner", OPT_STR, "owner", NULL },
	{ "kind", OPT_STR, "kind", NULL },
	{ "queue", OPT_STR, "queue", NULL },
	{ "limit", OPT_INT, "limit", NULL },
	{ "after", OPT_INT, "after", NULL },
	{ "all", OPT_FLAG, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def submit_opts[] = {
	{ "name", OPT_STR, "name", NULL },
	{ "kind", OPT_STR, "kind", NULL },
	{ "workers", OPT_INT, "workers", NULL },
	{ "replicas", OPT_INT, "replicas", NULL },
	{ "devices", OPT_INT, "devices", NULL },
	{ "queue", OPT_STR, "queue", NULL },
	{ "priority", OPT_INT, "priority", NULL },
	{ "preemptible", OPT_FLAG, "preemptible", NULL },
	{ "model", OPT_LIST, "accelerator.models", NULL },
	{ "vendor", OPT_LIST, "accelerator.vendors", NULL },
	{ "stack", OPT_STR, "accelerator.stack", NULL },
	{ "min-memory", OPT_NUM, "accelerator.min_memory_gib", NULL },
	{ "fp8", OPT_FLAG, "accelerator.fp8", NULL },
	{ "cap", OPT_INT, "power.cap_w", NULL },
	{ "cap-auto", OPT_FLAG, "power.cap", "auto" },
	{ "min-perf", OPT_NUM, "power.min_perf", NULL },
	{ "min-replicas", OPT_INT, "min_replicas", NULL },
	{ "per-worker-memory", OPT_NUM, "per_worker.memory_gib", NULL },
	{ "per-worker-bandwidth", OPT_NUM, "per_worker.bandwidth_gbs", NULL },
	{ "per-worker-tflops", OPT_NUM, "per_worker.bf16_tflops", NULL },
	{ "per-worker-fp8", OPT_FLAG, "per_worker.fp8", NULL },
	{ "topology", OPT_STR, "topology", NULL },
	{ "duration", OPT_INT, "duration_s", NULL },
	{ "idempotency-key", OPT_STR, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def capacity_opts[] = {
	{ "group-by", OPT_STR, "group_by", NULL },
	{ "depth", OPT_INT, "depth", NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def report_opts[] = {
	{ "message", OPT_STR, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def watch_opts[] = {
	{ "since", OPT_INT, NULL, NULL },
	{ "types", OPT_STR, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def simulate_opts[] = {
	{ "fleet", OPT_STR, NULL, NULL },
	{ "trace", OPT_STR, NULL, NULL },
	{ "events", OPT_STR, NULL, NULL },
	{ "out", OPT_STR, NULL, NULL },
	{ "until", OPT_INT, NULL, NULL },
	{ "sample", OPT_INT, NULL, NULL },
	{ "resolution", OPT_INT, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct opt_def trace_opts[] = {
	{ "format", OPT_STR, NULL, NULL },
	{ "jobs", OPT_INT, NULL, NULL },
	{ "span", OPT_NUM, NULL, NULL },
	{ "rate", OPT_NUM, NULL, NULL },
	{ "seed", OPT_INT, NULL, NULL },
	{ "training-share", OPT_NUM, NULL, NULL },
	{ "nvidia-only", OPT_FLAG, NULL, NULL },
	{ "machines-per-rack", OPT_INT, NULL, NULL },
	{ "rack-budget-fraction", OPT_NUM, NULL, NULL },
	{ NULL, OPT_FLAG, NULL, NULL },
};

static const struct command commands[] = {
	{ "status", cmd_status, NULL, 0, 0, "status" },
	{ "fleet", cmd_fleet, NULL, 1, 2, "fleet import FILE|- | fleet export" },
	{ "models", cmd_models, NULL, 0, 0, "models" },
	{ "domains", cmd_domains, NULL, 0, 0, "domains" },
	{ "nodes", cmd_nodes, nodes_opts, 0, 0, "nodes [--state S] [--domain D] [--model M]" },
	{ "node", cmd_node, NULL, 1, 1, "node NAME" },
	{ "devices", cmd_devices, devices_opts, 0, 0,
	  "devices [--model M] [--vendor V] [--state free|allocated] [--health H] [--node N]" },
	{ "capacity", cmd_capacity, capacity_opts, 0, 0,
	  "capacity [--group-by model|vendor|domain|queue] [--depth N]" },
	{ "drain", cmd_node_state, NULL, 1, 1, "drain NODE" },
	{ "resume", cmd_node_state, NULL, 1, 1, "resume NODE" },
	{ "device", cmd_device, NULL, 1, 4, "device reset|fail NODE INDEX [REASON]" },
	{ "submit", cmd_submit, submit_opts, 0, 1,
	  "submit [FILE|-] [--name NAME] [--kind KIND] [--workers N] ... (see joulectl --help)" },
	{ "jobs", cmd_jobs, jobs_opts, 0, 0,
	  "jobs [--state S] [--owner U] [--kind K] [--queue Q] [--limit N] [--after ID] [--all]" },
	{ "job", cmd_job, NULL, 1, 1, "job ID" },
	{ "explain", cmd_explain, NULL, 1, 1, "explain ID" },
	{ "cancel", cmd_cancel, NULL, 1, 1, "cancel ID" },
	{ "report", cmd_report, report_opts, 2, 2,
	  "report ID running|succeeded|failed [--message M]" },
	{ "watch", cmd_watch, watch_opts, 0, 0, "watch [--since SEQ] [--types T[,T...]]" },
	{ "webhooks", cmd_webhooks, NULL, 0, 0, "webhooks" },
	{ "simulate", cmd_simulate, simulate_opts, 0, 0,
	  "simulate --fleet FILE --trace FILE [--events FILE] [--out DIR] [--until S] [--sample S] "
	  "[--resolution S]" },
	{ "trace", cmd_trace, trace_opts, 1, 2,
	  "trace generate [--jobs N] [--span S] [--rate R] [--seed N] [--format csv|jsonl] | "
	  "trace import-alibaba FILE" },
};

static const char help_text[] =
	"usage: joulectl [--socket PATH] [--json] [--help] [--version] COMMAND [ARGS]\n"
	"\n"
	"Talks to jouled, the joule scheduler daemon, over its Unix socket.\n"
	"\n"
	"Global options (before or after the command):\n"
	"  --socket PATH          daemon socket (default: $JOULE_SOCKET, else\n"
	"                         " DEFAULT_SOCKET ")\n"
	"  --json                 print the daemon's JSON answer, pretty, instead of a table\n"
	"                         (watch: one compact JSON object per line)\n"
	"  -h, --help             print this help and exit\n"
	"  --version              print the version and exit\n"
	"\n"
	"Commands:\n"
	"  status                 daemon health: status, version, leader, counts, webhooks\n"
	"  fleet import FILE|-    import a fleet document (models, domains, nodes; all or\n"
	"                         nothing) and print the counts\n"
	"  fleet export           print the fleet document (always JSON)\n"
	"  models                 list accelerator models\n"
	"  domains                power domains as a tree: budget, reserved, headroom, use,\n"
	"                         measured draw (\"!\": over the budget)\n"
	"  nodes [--state S] [--domain D] [--model M]\n"
	"                         list nodes; MEASURED_W is the devices' measured draw,\n"
	"                         SCRAPED the age of the last exporter scrape, ERROR why\n"
	"                         it failed (cut short)\n"
	"  node NAME              one node (measured watts, last scrape) and its devices\n"
	"                         (health, measured watts, why not ok)\n"
	"  devices [--model M] [--vendor V] [--state free|allocated] [--health H] [--node N]\n"
	"                         list devices\n"
	"  capacity [--group-by model|vendor|domain|queue] [--depth N]\n"
	"                         what is free, wanted and power-limited (GET /v1/capacity):\n"
	"                         devices total/allocated/free/unhealthy/draining, free\n"
	"                         devices the power budget stops at TDP, pending jobs and\n"
	"                         the devices they want (N+Wx? = W capability-mode workers),\n"
	"                         the oldest wait, the largest gang at 1/2/4/8 devices per\n"
	"                         worker and whole free nodes; --depth N (domain only) keeps\n"
	"                         one level of the power tree (0 = roots); last row: totals\n"
	"  drain NODE             stop placing jobs on NODE (draining until its jobs end)\n"
	"  resume NODE            put NODE back in service\n"
	"  device reset NODE INDEX\n"
	"                         mark a degraded or failed device ok again at once (admin;\n"
	"                         otherwise clean exporter scrapes bring it back)\n"
	"  device fail NODE INDEX [REASON]\n"
	"                         take a device out of service (admin; maintenance): it leaves\n"
	"                         placement and a training job on it goes back to pending\n"
	"  submit [FILE|-] [FLAGS]\n"
	"                         submit a job; FLAGS override the file's fields or, with\n"
	"                         no FILE, build the whole request; prints \"job ID STATE\"\n"
	"  jobs [--state S] [--owner U] [--kind K] [--queue Q] [--limit N] [--after ID] [--all]\n"
	"                         list jobs: one page of --limit jobs (daemon default 100)\n"
	"                         after job --after; --all follows the pages to the end;\n"
	"                         REASON is the code of a pending job's reason\n"
	"  job ID                 one job and its placement\n"
	"  explain ID             why job ID is pending: the verdict, queue position,\n"
	"                         estimated start, what each filter stage removed (with the\n"
	"                         top offenders), the power shortfall, and the fixes\n"
	"  cancel ID              cancel a job, releasing its devices and watts\n"
	"  report ID running|succeeded|failed [--message M]\n"
	"                         what a launcher tells jouled about job ID: it started\n"
	"                         (placed -> running) or ended (devices and watts are\n"
	"                         released); only the owner or an admin may\n"
	"  watch [--since SEQ] [--types T[,T...]]\n"
	"                         follow the event log (GET /v1/events, long poll) until\n"
	"                         Ctrl-C: one line per event, \"SEQ TIME TYPE job=ID\n"
	"                         node=NAME key=value...\"; with --json one JSON object per\n"
	"                         line. Starts at the current end, or after event SEQ with\n"
	"                         --since (0: everything retained). --types keeps only the\n"
	"                         listed types; \"job\" matches every job.* type. Exits 1\n"
	"                         when events after SEQ were dropped by retention\n"
	"  webhooks               webhook endpoints (global --webhook and nodes' agent_url):\n"
	"                         events not yet acknowledged (BACKLOG), POSTs in flight,\n"
	"                         delivered and failed, FAILING after 3 failures in a row\n"
	"  simulate --fleet FILE --trace FILE [--events FILE] [--out DIR] [--until S]\n"
	"           [--sample S] [--resolution S]\n"
	"                         what-if, locally (no daemon): replay the trace (CSV or JSON\n"
	"                         lines, docs/trace-format.md) on the fleet document with the\n"
	"                         daemon's placement core and a virtual clock; --events\n"
	"                         scripts node_down/node_up/node_drain/budget changes; prints\n"
	"                         queue wait, utilisation, power headroom, energy; --out DIR\n"
	"                         also writes report.json, timeseries.csv, jobs.csv and\n"
	"                         utilization.svg, queue.svg, power.svg; --json the report;\n"
	"                         --resolution: the clock's step (default 60 s; 1 = every\n"
	"                         second, exactly as the daemon would, and slower)\n"
	"  trace generate [--jobs N] [--span S] [--rate JOBS_PER_HOUR] [--seed N]\n"
	"           [--training-share F] [--nvidia-only] [--format csv|jsonl]\n"
	"                         a synthetic trace on stdout (Poisson arrivals, the mix of\n"
	"                         docs/trace-format.md; the same seed gives the same trace)\n"
	"  trace import-alibaba FILE [--machines-per-rack N] [--rack-budget-fraction F]\n"
	"                         the Alibaba PAI machine table as a fleet document on stdout\n"
	"\n"
	"Submit flags:\n"
	"  --name NAME            job name\n"
	"  --kind KIND            training or inference\n"
	"  --workers N            workers (training)\n"
	"  --replicas N           replicas (inference)\n"
	"  --devices N            devices per worker or replica\n"
	"  --min-replicas N       inference: the fewest replicas worth starting (default all)\n"
	"  --per-worker-memory GIB, --per-worker-bandwidth GBS, --per-worker-tflops T,\n"
	"  --per-worker-fp8       capability mode instead of --devices: what one worker\n"
	"                         (training) or replica (inference) needs in memory (GiB),\n"
	"                         bandwidth (GB/s), BF16 TFLOPS and FP8; jouled picks the\n"
	"                         model and the device count (sent as per_worker or\n"
	"                         per_replica by the job's kind; the file's devices is dropped,\n"
	"                         as --devices drops the file's per_worker/per_replica)\n"
	"  --queue Q              queue (default: default)\n"
	"  --priority P           priority (default 0)\n"
	"  --preemptible          the job may be preempted\n"
	"  --model M              allowed model; repeat for more (replaces the file's list)\n"
	"  --vendor V             allowed vendor; repeat for more (replaces the file's list)\n"
	"  --stack S              software stack: cuda, cann, ... or any\n"
	"  --min-memory GIB       least device memory in GiB\n"
	"  --fp8                  needs FP8\n"
	"  --cap W                per-device power cap in watts (power.cap_w; replaces the\n"
	"                         file's \"cap\":\"auto\")\n"
	"  --cap-auto             let jouled choose the highest cap the power budget allows\n"
	"                         (power.cap \"auto\"; replaces the file's cap_w)\n"
	"  --min-perf F           with --cap-auto: the least relative performance to keep,\n"
	"                         0.05-1 (daemon default 0.8)\n"
	"  --topology T           any, same_node, same_group, same_rack or spread\n"
	"  --duration SECONDS     estimated run time\n"
	"  --idempotency-key KEY  sent as Idempotency-Key: a retry with the same key\n"
	"                         returns the original job instead of a second one\n"
	"\n"
	"Exit status: 0 ok; 1 the daemon refused the request (or answered nonsense);\n"
	"2 usage error or unreadable FILE; 3 cannot reach jouled.\n";

static int usage_error(const struct command *cmd, const char *fmt, const char *arg)
{
	fputs("joulectl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: joulectl %s\n", cmd->synopsis);
	else
		fputs("usage: joulectl [--socket PATH] [--json] COMMAND [ARGS] (see joulectl --help)\n",
		      stderr);
	return ERR_USAGE;
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* One option of the command being parsed, `value` from "--opt=value" or NULL. */
static int take_option(int argc, char **argv, int *i, struct cmd_args *a, size_t k,
		       const char *value)
{
	const struct opt_def *d = &a->cmd->opts[k];
	struct opt_val *v = &a->val[k];

	if (d->kind == OPT_FLAG) {
		if (value)
			return usage_error(a->cmd, "option --%s takes no value", d->name);
		v->set = true;
		return 0;
	}
	if (!value) {
		if (*i + 1 >= argc)
			return usage_error(a->cmd, "option --%s needs a value", d->name);
		value = argv[++*i];
	}
	switch (d->kind) {
	case OPT_INT:
		if (!parse_int(value, &v->num))
			return usage_error(a->cmd, "option --%s needs an integer", d->name);
		break;
	case OPT_NUM:
		if (!parse_num(value, &v->real))
			return usage_error(a->cmd, "option --%s needs a number", d->name);
		break;
	case OPT_LIST:
		if (!v->list) {
			v->list = calloc((size_t)argc, sizeof *v->list);
			if (!v->list)
				return -ENOMEM;
		}
		v->list[v->n++] = value;
		break;
	default:
		break;
	}
	v->str = value;
	v->set = true;
	return 0;
}

static int parse_args(int argc, char **argv, struct ctx *c, struct cmd_args *a)
{
	bool only_pos = false;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *value;
		size_t len, k;

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (!a->cmd) {
				a->cmd = find_command(arg);
				if (!a->cmd)
					return usage_error(NULL, "unknown command \"%s\"", arg);
			} else if (a->npos == MAX_POS || a->npos == a->cmd->max_pos) {
				return usage_error(a->cmd, "unexpected argument \"%s\"", arg);
			} else {
				a->pos[a->npos++] = arg;
			}
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			c->help = true;
			return 0;
		}
		if (arg[1] != '-')
			return usage_error(a->cmd, "unknown option \"%s\"", arg);
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		value = eq ? eq + 1 : NULL;
		if (len == 7 && strncmp(name, "version", len) == 0 && !value) {
			c->version = true;
		} else if (len == 4 && strncmp(name, "json", len) == 0 && !value) {
			c->json = true;
		} else if (len == 6 && strncmp(name, "socket", len) == 0) {
			if (!value && i + 1 >= argc)
				return usage_error(a->cmd, "option --socket needs a value", NULL);
			c->socket = value ? value : argv[++i];
			if (!*c->socket)
				return usage_error(a->cmd, "option --socket needs a path", NULL);
		} else {
			for (k = 0; a->cmd && a->cmd->opts && a->cmd->opts[k].name; k++)
				if (strlen(a->cmd->opts[k].name) == len &&
				    strncmp(a->cmd->opts[k].name, name, len) == 0)
					break;
			if (!a->cmd || !a->cmd->opts || !a->cmd->opts[k].name)
				return usage_error(a->cmd, "unknown option \"%s\"", arg);
			r = take_option(argc, argv, &i, a, k, value);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int exit_code(int r)
{
	switch (r) {
	case 0:
		return 0;
	case ERR_USAGE:
		return EXIT_USAGE;
	case ERR_REACH:
		return EXIT_UNREACHABLE;
	case ERR_REFUSED:
	case ERR_ANSWER:
		return EXIT_REFUSED;
	default:
		fprintf(stderr, "joulectl: %s\n", strerror(-r));
		return EXIT_REFUSED;
	}
}

int main(int argc, char **argv)
{
	struct ctx c = { 0 };
	struct cmd_args a = { 0 };
	const char *env = getenv("JOULE_SOCKET");
	bool curl_up = false;
	int r;

	r = parse_args(argc, argv, &c, &a);
	if (r < 0)
		goto done;
	if (c.help) {
		fputs(help_text, stdout);
		goto done;
	}
	if (c.version) {
		printf("joulectl %s (libcurl %s, jansson %s)\n", JOULE_VERSION,
		       curl_version_info(CURLVERSION_NOW)->version, jansson_version_str());
		goto done;
	}
	if (!a.cmd) {
		r = usage_error(NULL, "missing command%s", "");
		goto done;
	}
	if (a.npos < a.cmd->min_pos) {
		r = usage_error(a.cmd, "missing argument%s", "");
		goto done;
	}
	if (!c.socket)
		c.socket = env && *env ? env : DEFAULT_SOCKET;
	c.now = time(NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		r = -ENOMEM;
		goto done;
	}
	curl_up = true;
	c.curl = curl_easy_init();
	if (!c.curl) {
		r = -ENOMEM;
		goto done;
	}
	r = a.cmd->run(&c, &a);
done:
	for (size_t k = 0; k < MAX_OPTS; k++)
		free(a.val[k].list);
	curl_easy_cleanup(c.curl);
	if (curl_up)
		curl_global_cleanup();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "joulectl: writing to stdout: %s\n", strerror(errno ? errno : EIO));
		return r == 0 || r == -EIO ? EXIT_REFUSED : exit_code(r);
	}
	return exit_code(r);
}
