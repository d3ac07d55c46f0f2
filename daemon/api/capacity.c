/*
 * api/capacity — GET /v1/capacity: the planners' picture (core/capacity.c computes it; this
 * file validates the query, writes the JSON and keeps the answer cache).
 *
 * Owns: the capacity cache in struct api: the last API_CAPACITY_CACHE answers, keyed by
 * (group_by, depth) and valid only at the api version they were computed at, so a poll
 * between two commits costs a copy (or, with a current If-None-Match, nothing).
 * Never: caches or tags an answer computed while a batch is open (memory is then ahead of
 * what is committed); changes any state; writes past its buffer ceiling.
 *
 * The JSON is written directly (not through jansson): group_by=domain on a 3,000-domain
 * fleet is ~3,000 rows of ~25 numbers, and a tree of json_t for it costs several times the
 * computation itself. Keys and layout are proto/API.md's "capacity" section.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capacity.h"
#include "internal.h"
#include "store.h"

#define CAP_BODY_MAX (64u * 1024 * 1024)   /* ceiling of one answer */

/* A growing output buffer with a ceiling; the first failure sticks (err). */
struct out {
	char *p;
	size_t len, cap;
	int err;
};

static void out_reserve(struct out *o, size_t more)
{
	if (o->err || o->len + more < o->cap)
		return;
	size_t n = o->cap ? o->cap : 4096;
	while (n <= o->len + more && n < CAP_BODY_MAX)
		n *= 2;
	if (n > CAP_BODY_MAX || o->len + more >= n) {
		o->err = -ENOMEM;
		return;
	}
	char *p = realloc(o->p, n);
	if (!p) {
		o->err = -ENOMEM;
		return;
	}
	o->p = p;
	o->cap = n;
}

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	out_reserve(o, 256);
	if (o->err)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		/* longer than the reserve: make room and write again */
		out_reserve(o, n < 0 ? 0 : (size_t)n + 1);
		if (o->err || n < 0) {
			o->err = o->err ? o->err : -EIO;
			return;
		}
		va_start(ap, fmt);
		vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
	}
	o->len += (size_t)n;
}

/* A JSON string (or null for NULL). */
static void put_str(struct out *o, const char *s)
{
	if (!s) {
		put(o, "null");
		return;
	}
	out_reserve(o, 6 * strlen(s) + 3);
	if (o->err)
		return;
	o->p[o->len++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			o->p[o->len++] = '\\';
			o->p[o->len++] = (char)*c;
		} else if (*c < 0x20) {
			o->len += (size_t)snprintf(o->p + o->len, 7, "\\u%04x", *c);
		} else {
			o->p[o->len++] = (char)*c;
		}
	}
	o->p[o->len++] = '"';
	o->p[o->len] = '\0';
}

static void put_time(struct out *o, int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		put(o, "null");
		return;
	}
	put(o, "\"%s\"", buf);
}

static void put_devices(struct out *o, const struct capacity_row *r)
{
	put(o, ",\"devices\":{\"total\":%" PRIu64 ",\"allocated\":%" PRIu64 ",\"free\":%" PRIu64
	       ",\"unhealthy\":%" PRIu64 ",\"draining\":%" PRIu64 "}",
	    r->dev.total, r->dev.allocated, r->dev.free, r->dev.unhealthy, r->dev.draining);
	put(o, ",\"power_limited\":{\"devices\":%" PRIu64 ",\"startable_at_tdp\":%" PRIu64
	       ",\"startable_at_min_cap\":%" PRIu64 "}",
	    r->dev.free - r->startable_tdp, r->startable_tdp, r->startable_min_cap);
}

static void put_demand(struct out *o, const struct capacity_row *r, bool model_row,
		       int64_t as_of)
{
	const struct capacity_demand *d = &r->dem;
	put(o, ",\"demand\":{\"jobs\":%" PRIu64 ",\"devices\":%" PRIu64
	       ",\"capability\":{\"jobs\":%" PRIu64 ",\"workers\":%" PRIu64
	       ",\"memory_gib\":%" PRIu64 ",\"bandwidth_gbs\":%" PRIu64 ",\"bf16_tflops\":%.15g",
	    d->jobs, d->devices, d->cap_jobs, d->cap_workers, d->cap_memory_gib,
	    d->cap_bandwidth_gbs, d->cap_bf16_tflops);
	if (model_row)
		put(o, ",\"devices\":%" PRIu64, d->cap_devices);
	put(o, "},\"oldest_submitted_at\":");
	if (d->jobs) {
		put_time(o, d->oldest_submitted_at);
		int64_t w = as_of - d->oldest_submitted_at;
		put(o, ",\"oldest_wait_s\":%" PRId64 "}", w > 0 ? w : 0);
	} else {
		put(o, "null,\"oldest_wait_s\":null}");
	}
}

static void put_frag(struct out *o, const struct capacity_row *r)
{
	put(o, ",\"fragmentation\":{\"max_workers\":{");
	for (uint32_t g = 0; g < CAPACITY_GANG_SIZES; g++)
		put(o, "%s\"%u\":%" PRIu64, g ? "," : "", capacity_gang_sizes[g], r->max_workers[g]);
	put(o, "},\"nodes_all_free\":%" PRIu64 "}", r->whole_nodes_free);
}

static void put_power(struct out *o, const struct capacity_row *r, bool domain_row)
{
	put(o, ",\"power\":{\"budget_w\":%" PRId64 ",\"reserved_w\":%" PRId64, r->budget_w,
	    r->reserved_w);
	if (r->measured)
		put(o, ",\"measured_w\":%.0f", r->measured_w);
	else
		put(o, ",\"measured_w\":null");
	put(o, ",\"headroom_w\":%" PRId64, r->headroom_w);
	if (domain_row)
		put(o, ",\"usable_headroom_w\":%" PRId64, r->usable_headroom_w);
	put(o, "}");
}

static void put_active(struct out *o, const struct capacity_row *r)
{
	put(o, ",\"active\":{\"jobs\":%" PRIu64 ",\"devices\":%" PRIu64 "}", r->active_jobs,
	    r->active_devices);
}

static void put_row(struct out *o, const struct fleet *f, const struct capacity *cap,
		    const struct capacity_row *r, int64_t as_of)
{
	put(o, "{\"name\":");
	put_str(o, r->name);
	if (cap->by == CAPACITY_BY_MODEL) {
		put(o, ",\"vendor\":");
		put_str(o, r->vendor);
	}
	if (cap->by == CAPACITY_BY_DOMAIN) {
		put(o, ",\"parent\":");
		put_str(o, r->parent == FLEET_NONE ? NULL : f->domains[r->parent].name);
		put(o, ",\"depth\":%u", r->depth);
	}
	if (r->has_devices)
		put_devices(o, r);
	if (r->has_power)
		put_power(o, r, cap->by == CAPACITY_BY_DOMAIN);
	if (r->has_demand)
		put_demand(o, r, cap->by == CAPACITY_BY_MODEL, as_of);
	if (r->has_frag)
		put_frag(o, r);
	if (r->has_active)
		put_active(o, r);
	put(o, "}");
}

static int render(const struct fleet *f, const struct capacity *cap, int64_t as_of,
		  struct out *o)
{
	put(o, "{\"group_by\":\"%s\",\"depth\":", capacity_group_name(cap->by));
	if (cap->depth >= 0)
		put(o, "%d", (int)cap->depth);
	else
		put(o, "null");
	put(o, ",\"as_of\":");
	put_time(o, as_of);
	put(o, ",\"groups\":[");
	for (uint32_t i = 0; i < cap->nrows && !o->err; i++) {
		if (i)
			put(o, ",");
		put_row(o, f, cap, &cap->rows[i], as_of);
	}
	put(o, "],\"totals\":");
	struct capacity_row tot = cap->totals;
	tot.name = NULL;
	/* totals: the same sections, without a name */
	put(o, "{");
	size_t mark = o->len;
	put_devices(o, &tot);
	put_power(o, &tot, false);
	put_demand(o, &tot, false, as_of);
	put_frag(o, &tot);
	put_active(o, &tot);
	if (!o->err && o->len > mark)
		o->p[mark] = ' '; /* the first section's leading comma */
	put(o, "}}");
	return o->err;
}

void api_capacity_cache_clear(struct api *a)
{
	for (uint32_t i = 0; i < API_CAPACITY_CACHE; i++) {
		free(a->cap_cache[i].body);
		a->cap_cache[i] = (struct api_capacity_cache){0};
	}
}

static struct api_capacity_cache *cache_find(struct api *a, int group, int32_t depth)
{
	for (uint32_t i = 0; i < API_CAPACITY_CACHE; i++) {
		struct api_capacity_cache *e = &a->cap_cache[i];
		if (e->version == a->version && e->scrapes == a->scrapes && e->group == group &&
		    e->depth == depth && e->body)
			return e;
	}
	return NULL;
}

/* Keep a copy of body; a full cache gives up its least recently used (or stale) entry. */
static void cache_put(struct api *a, int group, int32_t depth, const char *body, size_t len)
{
	struct api_capacity_cache *victim = &a->cap_cache[0];
	for (uint32_t i = 0; i < API_CAPACITY_CACHE; i++) {
		struct api_capacity_cache *e = &a->cap_cache[i];
		if (e->group == group && e->depth == depth) {
			victim = e;
			break;
		}
		if (e->version != a->version || e->scrapes != a->scrapes || e->used < victim->used)
			victim = e;
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return; /* only a cache */
	memcpy(copy, body, len + 1);
	free(victim->body);
	*victim = (struct api_capacity_cache){.version = a->version, .scrapes = a->scrapes,
					      .group = group,
					      .depth = depth, .used = ++a->cap_cache_tick,
					      .body = copy, .len = len};
}

void api_capacity_get(struct ctx *c)
{
	static const char *const allowed[] = {"group_by", "depth", NULL};
	struct api *a = c->a;
	enum capacity_group by = CAPACITY_BY_MODEL;
	uint64_t depth = UINT64_MAX;
	const char *v;
	int rc;

	if (api_query_check(c, allowed) < 0)
		return api_fail(c, c->err.code);
	if ((v = api_query(c, "group_by")) && capacity_group_parse(v, &by) < 0) {
		err_set(&c->err, ERR_INVALID, "group_by", "must be model, vendor, domain or queue");
		return api_fail(c, ERR_INVALID);
	}
	if ((rc = api_query_uint(c, "depth", 0, CAPACITY_MAX_DEPTH, &depth)) < 0)
		return api_fail(c, c->err.code);
	if (rc == 0 && by != CAPACITY_BY_DOMAIN) {
		err_set(&c->err, ERR_INVALID, "depth", "depth needs group_by=domain");
		return api_fail(c, ERR_INVALID);
	}
	int32_t d = depth == UINT64_MAX ? -1 : (int32_t)depth;
	c->etag = true;
	if (api_etag_fresh(c)) {
		c->status = 304;
		return;
	}
	/* committed memory only: with a batch open the answer may show what never commits */
	bool cacheable = !store_batch_open(a->store);
	struct api_capacity_cache *e = cacheable ? cache_find(a, (int)by, d) : NULL;
	char *body = NULL;
	size_t len = 0;
	if (e) {
		if (!(body = malloc(e->len + 1))) {
			err_set(&c->err, -ENOMEM, NULL, "out of memory");
			return api_fail(c, -ENOMEM);
		}
		memcpy(body, e->body, e->len + 1);
		len = e->len;
		e->used = ++a->cap_cache_tick;
	} else {
		struct capacity cap = {0};
		struct out o = {0};
		if ((rc = capacity_compute(&a->fleet, &a->jobs, by, d, &cap)) < 0) {
			err_set(&c->err, rc, NULL, "cannot compute the capacity: out of memory");
			return api_fail(c, rc);
		}
		rc = render(&a->fleet, &cap, c->now, &o);
		capacity_free(&cap);
		if (rc < 0) {
			free(o.p);
			err_set(&c->err, rc, NULL, "cannot write the capacity answer: out of memory");
			return api_fail(c, rc);
		}
		body = o.p;
		len = o.len;
		if (cacheable)
			cache_put(a, (int)by, d, body, len);
	}
	c->text = body;
	c->text_len = len;
	c->status = 200;
}
