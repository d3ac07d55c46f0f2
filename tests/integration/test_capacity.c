/*
 * test_capacity — GET /v1/capacity and the ETag / 304 contract of the GET collections,
 * checked against a real jouled.
 *
 * Owns: nothing between tests: each test gets its own daemon in its own temp dir.
 * Never: looks inside the daemon. Every expected number is recounted here, by brute force,
 * from what any client can read: GET /v1/models (the catalog), /v1/domains (tree, budgets,
 * reserved watts), /v1/nodes and /v1/nodes/{name} (every device: model, health, job; node
 * states) and /v1/jobs?state=pending|placed|running; the "could use" rule and the
 * power-limited walk are re-implemented from their prose in proto/API.md.
 * A recount is trusted only when the capacity ETag is the same before and after it (a 304
 * to If-None-Match), so the two views are of one state.
 * Device failures are injected with POST /v1/devices/{node}/{index}/fail (and undone with
 * /reset), the admin's maintenance switch; the recount reads every device's health.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/daemon.h"

static struct td_daemon D;

/* Two roots; hall-2 is tighter than its racks together and rack-1a / rack-1b / rack-2a cannot
 * run every device at TDP, so the power walk shares headroom up the chain. n1a3 and n2b2 mix
 * two models; n1b2 holds 16 devices. */
static const char fleet_doc[] =
	"{\"domains\":["
	"{\"name\":\"site\",\"parent\":null,\"budget_w\":120000},"
	"{\"name\":\"hall-1\",\"parent\":\"site\",\"budget_w\":60000},"
	"{\"name\":\"rack-1a\",\"parent\":\"hall-1\",\"budget_w\":12000},"
	"{\"name\":\"rack-1b\",\"parent\":\"hall-1\",\"budget_w\":9000},"
	"{\"name\":\"hall-2\",\"parent\":\"site\",\"budget_w\":12000},"
	"{\"name\":\"rack-2a\",\"parent\":\"hall-2\",\"budget_w\":5000},"
	"{\"name\":\"rack-2b\",\"parent\":\"hall-2\",\"budget_w\":20000},"
	"{\"name\":\"lab\",\"parent\":null,\"budget_w\":4000}],"
	"\"nodes\":["
	"{\"name\":\"n1a1\",\"domain\":\"rack-1a\",\"host_idle_w\":1500,\"group\":\"g1\","
	" \"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"n1a2\",\"domain\":\"rack-1a\",\"host_idle_w\":1500,\"group\":\"g2\","
	" \"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"n1a3\",\"domain\":\"rack-1a\",\"host_idle_w\":1500,\"group\":\"g3\","
	" \"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":4},{\"model\":\"H200-SXM-141GB\",\"count\":4}]},"
	"{\"name\":\"n1b1\",\"domain\":\"rack-1b\",\"host_idle_w\":1500,\"group\":\"g4\","
	" \"devices\":[{\"model\":\"H200-SXM-141GB\",\"count\":8}]},"
	"{\"name\":\"n1b2\",\"domain\":\"rack-1b\",\"host_idle_w\":2000,\"group\":\"g5\","
	" \"devices\":[{\"model\":\"H20-96GB\",\"count\":16}]},"
	"{\"name\":\"n2a1\",\"domain\":\"rack-2a\",\"host_idle_w\":1200,\"group\":\"p1\","
	" \"devices\":[{\"model\":\"Ascend910B3\",\"count\":8}]},"
	"{\"name\":\"n2a2\",\"domain\":\"rack-2a\",\"host_idle_w\":1200,\"group\":\"p1\","
	" \"devices\":[{\"model\":\"Ascend910B3\",\"count\":8}]},"
	"{\"name\":\"n2b1\",\"domain\":\"rack-2b\",\"host_idle_w\":1800,\"group\":\"p2\","
	" \"devices\":[{\"model\":\"Ascend910C\",\"count\":8}]},"
	"{\"name\":\"n2b2\",\"domain\":\"rack-2b\",\"host_idle_w\":1800,\"group\":\"p2\","
	" \"devices\":[{\"model\":\"Ascend910C\",\"count\":2},{\"model\":\"H20-96GB\",\"count\":2}]},"
	"{\"name\":\"nlab1\",\"domain\":\"lab\",\"host_idle_w\":800,"
	" \"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":4}]}]}";

/* ---- helpers ---------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2)))
static const char *fmt(const char *f, ...)
{
	static char ring[8][4096];
	static unsigned k;
	char *b = ring[k++ % 8];
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(b, sizeof ring[0], f, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < sizeof ring[0], "fmt overflow");
	return b;
}

/* A request whose status must be `want`; the response is left in *r (caller frees). */
static void call_at(int line, const char *method, const char *path, const char *body,
		    const char *const *hdrs, long want, struct td_response *r)
{
	int rc = td_http(&D, method, path, body, hdrs, r);
	ck_assert_msg(rc == 0, "line %d: %s %s: no HTTP answer (%d)", line, method, path, rc);
	ck_assert_msg(want < 0 || r->status == want, "line %d: %s %s: want %ld, got %ld: %.600s",
		      line, method, path, want, r->status, r->raw);
}

static json_t *req_at(int line, const char *method, const char *path, const char *body,
		      long want)
{
	struct td_response r;
	call_at(line, method, path, body, NULL, want, &r);
	json_t *j = r.json ? json_incref(r.json) : NULL;
	ck_assert_msg(want < 0 || j, "line %d: %s %s: body is not JSON", line, method, path);
	td_response_free(&r);
	return j;
}
#define REQ(m, p, b, want) req_at(__LINE__, (m), (p), (b), (want))
#define GET(p) req_at(__LINE__, "GET", (p), NULL, 200)

static json_int_t geti_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "line %d: \"%s\" is not an integer", line, key);
	return json_integer_value(v);
}
#define GETI(o, k) geti_at(__LINE__, (o), (k))

static const char *gets_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_string(v), "line %d: \"%s\" is not a string", line, key);
	return json_string_value(v);
}
#define GETS(o, k) gets_at(__LINE__, (o), (k))

static time_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	ck_assert_msg(end && !*end, "not an RFC 3339 UTC time: %s", s);
	return timegm(&tm);
}

static void setup(void)
{
	int r = td_start(&D);
	ck_assert_msg(r == 0, "jouled did not start (%d), log %s", r, D.log);
	json_decref(REQ("POST", "/v1/fleet", fleet_doc, 200));
}

static void teardown(void)
{
	int st = 0, rc = 0;
	if (D.pid > 0)
		rc = td_stop(&D, &st);
	char *log = NULL;
	bool flagged = false;
	if (D.dir[0] && td_read_file(D.log, &log, NULL) == 0)
		flagged = strstr(log, "runtime error:") || strstr(log, "Sanitizer");
	free(log);
	bool clean = rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !flagged;
	if (clean)
		td_cleanup(&D);
	ck_assert_msg(clean, "jouled did not stop cleanly on SIGTERM (status 0x%x%s), log %s", st,
		      flagged ? ", sanitizer report in its log" : "", D.log);
}

/* ---- the world as a client sees it ------------------------------------------------ */

#define MAXM 64
#define MAXD 32
#define MAXN 32
#define MAXJ 1024
#define MAXQ 16

struct w_model {
	char name[48], vendor[16], stack[16];
	long mem, bw, tdp, min_cap, idle;
	double bf16, fp8;
};
struct w_domain {
	char name[64];
	int parent, depth;
	long budget, reserved;
};
struct w_node {
	char name[64];
	int domain;
	bool up;
	int ndev;
	int model[64];
	bool ok[64], alloc[64];
};
struct w_job {
	char queue[64];
	bool pending, cap;
	long count, devices, need_mem, need_bw, cap_w;
	double need_bf16;
	bool need_fp8;
	json_t *accel;
	time_t submitted;
	long held;            /* active jobs: devices in the placement */
};
struct world {
	struct w_model m[MAXM];
	int nm;
	struct w_domain d[MAXD];
	int nd;
	struct w_node n[MAXN];
	int nn;
	struct w_job j[MAXJ];
	int nj;
	json_t *keep;        /* references the accel objects point into */
};

static int model_idx(const struct world *w, const char *name)
{
	for (int i = 0; i < w->nm; i++)
		if (strcmp(w->m[i].name, name) == 0)
			return i;
	ck_abort_msg("unknown model %s", name);
	return -1;
}

static int domain_idx(const struct world *w, const char *name)
{
	for (int i = 0; i < w->nd; i++)
		if (strcmp(w->d[i].name, name) == 0)
			return i;
	ck_abort_msg("unknown domain %s", name);
	return -1;
}

static void load_jobs(struct world *w, const char *state)
{
	json_t *r = GET(fmt("/v1/jobs?state=%s&limit=1000", state)), *job;
	ck_assert_msg(json_is_null(json_object_get(r, "next")), "more than 1000 %s jobs", state);
	size_t i;
	json_array_foreach(json_object_get(r, "jobs"), i, job) {
		ck_assert(w->nj < MAXJ);
		struct w_job *j = &w->j[w->nj++];
		memset(j, 0, sizeof(*j));
		snprintf(j->queue, sizeof(j->queue), "%s", GETS(job, "queue"));
		j->pending = strcmp(state, "pending") == 0;
		bool training = strcmp(GETS(job, "kind"), "training") == 0;
		j->count = GETI(job, training ? "workers" : "replicas");
		json_t *need = json_object_get(job, training ? "per_worker" : "per_replica");
		j->cap = need != NULL;
		if (j->cap) {
			j->need_mem = GETI(need, "memory_gib");
			j->need_bw = GETI(need, "bandwidth_gbs");
			j->need_bf16 = json_number_value(json_object_get(need, "bf16_tflops"));
			j->need_fp8 = json_is_true(json_object_get(need, "fp8"));
		} else {
			j->devices = GETI(job, "devices");
		}
		json_t *cap = json_object_get(json_object_get(job, "power"), "cap_w");
		j->cap_w = json_is_integer(cap) ? json_integer_value(cap) : 0;
		j->accel = json_object_get(job, "accelerator");
		ck_assert(json_is_object(j->accel));
		json_array_append(w->keep, job);
		j->submitted = parse_time(GETS(job, "submitted_at"));
		size_t k;
		json_t *p;
		json_array_foreach(json_object_get(job, "placement"), k, p)
			j->held += (long)json_array_size(json_object_get(p, "devices"));
	}
	json_decref(r);
}

static void load_world(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->keep = json_array();
	json_t *r = GET("/v1/models"), *o;
	size_t i;
	json_array_foreach(json_object_get(r, "models"), i, o) {
		ck_assert(w->nm < MAXM);
		struct w_model *m = &w->m[w->nm++];
		snprintf(m->name, sizeof(m->name), "%s", GETS(o, "name"));
		snprintf(m->vendor, sizeof(m->vendor), "%s", GETS(o, "vendor"));
		snprintf(m->stack, sizeof(m->stack), "%s", GETS(o, "stack"));
		m->mem = GETI(o, "memory_gib");
		m->bw = GETI(o, "bandwidth_gbs");
		m->bf16 = json_number_value(json_object_get(o, "bf16_tflops"));
		m->fp8 = json_number_value(json_object_get(o, "fp8_tflops"));
		m->tdp = GETI(o, "tdp_w");
		m->min_cap = GETI(o, "min_cap_w");
		m->idle = GETI(o, "idle_w");
	}
	json_decref(r);
	r = GET("/v1/domains");
	json_array_foreach(json_object_get(r, "domains"), i, o) {
		ck_assert(w->nd < MAXD);
		struct w_domain *d = &w->d[w->nd];
		snprintf(d->name, sizeof(d->name), "%s", GETS(o, "name"));
		json_t *p = json_object_get(o, "parent");
		d->parent = json_is_string(p) ? domain_idx(w, json_string_value(p)) : -1;
		d->depth = d->parent < 0 ? 0 : w->d[d->parent].depth + 1;
		d->budget = GETI(o, "budget_w");
		d->reserved = GETI(o, "reserved_w");
		w->nd++;
	}
	json_decref(r);
	r = GET("/v1/nodes");
	json_array_foreach(json_object_get(r, "nodes"), i, o) {
		ck_assert(w->nn < MAXN);
		struct w_node *n = &w->n[w->nn++];
		snprintf(n->name, sizeof(n->name), "%s", GETS(o, "name"));
		n->domain = domain_idx(w, GETS(o, "domain"));
		n->up = strcmp(GETS(o, "state"), "up") == 0;
		json_t *full = GET(fmt("/v1/nodes/%s", n->name)), *dev;
		size_t k;
		json_array_foreach(json_object_get(full, "devices"), k, dev) {
			json_int_t idx = GETI(dev, "index");
			ck_assert(idx >= 0 && idx < 64);
			n->model[idx] = model_idx(w, GETS(dev, "model"));
			n->ok[idx] = strcmp(GETS(dev, "health"), "ok") == 0;
			n->alloc[idx] = !json_is_null(json_object_get(dev, "job"));
			if (idx + 1 > n->ndev)
				n->ndev = (int)idx + 1;
		}
		json_decref(full);
	}
	json_decref(r);
	load_jobs(w, "pending");
	load_jobs(w, "placed");
	load_jobs(w, "running");
}

static bool str_in(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* The documented "could use" rule; *devs = devices per worker on that model. */
static bool could_use(const struct w_job *j, const struct w_model *m, long *devs)
{
	const json_t *a = j->accel, *models = json_object_get(a, "models"),
		     *vendors = json_object_get(a, "vendors"), *stack = json_object_get(a, "stack");
	if (json_array_size(models) && !str_in(models, m->name))
		return false;
	if (json_array_size(vendors) && !str_in(vendors, m->vendor))
		return false;
	if (json_is_string(stack) && strcmp(json_string_value(stack), "any") != 0 &&
	    strcmp(json_string_value(stack), m->stack) != 0)
		return false;
	if (json_integer_value(json_object_get(a, "min_memory_gib")) > m->mem)
		return false;
	if ((json_is_true(json_object_get(a, "fp8")) || (j->cap && j->need_fp8)) && !(m->fp8 > 0))
		return false;
	if (j->cap_w && j->cap_w < m->min_cap)
		return false;
	*devs = j->devices;
	if (j->cap) {
		static const long sizes[] = {1, 2, 4, 8};
		*devs = 0;
		for (int k = 0; k < 4 && !*devs; k++)
			if (sizes[k] * m->mem >= j->need_mem && sizes[k] * m->bw >= j->need_bw &&
			    (double)sizes[k] * m->bf16 >= j->need_bf16)
				*devs = sizes[k];
		return *devs > 0;
	}
	return true;
}

/* ---- the recount -------------------------------------------------------------------- */

struct exp_row {
	bool used;
	long dev[5];              /* total allocated free unhealthy draining */
	long st_tdp, st_min;
	long jobs, devices, cjobs, cworkers, cmem, cbw, cdevices;
	double cbf16;
	time_t oldest;
	long maxw[4], all_free;
	long budget, reserved, headroom, usable;
	long active_jobs, active_devices;
};

struct recount {
	struct exp_row model[MAXM], vendor[MAXM], domain[MAXD], queue[MAXQ], total;
	char vendors[MAXM][16];
	int nv;
	char queues[MAXQ][64];
	int nq;
};

static void dem_add(struct exp_row *r, const struct w_job *j, long devs_here)
{
	r->jobs++;
	if (j->cap) {
		r->cjobs++;
		r->cworkers += j->count;
		r->cmem += j->count * j->need_mem;
		r->cbw += j->count * j->need_bw;
		r->cbf16 += (double)j->count * j->need_bf16;
		r->cdevices += j->count * devs_here;
	} else {
		r->devices += j->count * j->devices;
	}
	if (r->jobs == 1 || j->submitted < r->oldest)
		r->oldest = j->submitted;
}

static long take(const struct world *w, long *rem, int dom, long n, long per)
{
	if (n == 0 || per <= 0)
		return n;
	long avail = -1;
	for (int d = dom; d >= 0; d = w->d[d].parent)
		if (avail < 0 || rem[d] < avail)
			avail = rem[d];
	long k = avail <= 0 ? 0 : avail / per;
	if (k > n)
		k = n;
	for (int d = dom; d >= 0 && k; d = w->d[d].parent)
		rem[d] -= k * per;
	return k;
}

static int vendor_idx(struct recount *c, const char *v)
{
	for (int i = 0; i < c->nv; i++)
		if (strcmp(c->vendors[i], v) == 0)
			return i;
	snprintf(c->vendors[c->nv], sizeof(c->vendors[0]), "%s", v);
	return c->nv++;
}

static int cmp_q(const void *a, const void *b) { return strcmp(a, b); }

static int queue_idx(struct recount *c, const char *q)
{
	for (int i = 0; i < c->nq; i++)
		if (strcmp(c->queues[i], q) == 0)
			return i;
	ck_abort_msg("queue %s not collected", q);
	return -1;
}

static void recount(const struct world *w, struct recount *c)
{
	long rem_tdp[MAXD], rem_min[MAXD];
	memset(c, 0, sizeof(*c));
	for (int m = 0; m < w->nm; m++)
		vendor_idx(c, w->m[m].vendor);
	for (int d = 0; d < w->nd; d++)
		rem_tdp[d] = rem_min[d] = w->d[d].budget - w->d[d].reserved;
	/* devices, device by device; the power walk by (node, model) in node order, models in
	 * the order they first appear on the node */
	for (int ni = 0; ni < w->nn; ni++) {
		const struct w_node *n = &w->n[ni];
		int order[64], norder = 0;
		for (int i = 0; i < n->ndev; i++) {
			bool seen = false;
			for (int k = 0; k < norder; k++)
				seen |= order[k] == n->model[i];
			if (!seen)
				order[norder++] = n->model[i];
		}
		for (int k = 0; k < norder; k++) {
			int m = order[k];
			long dv[5] = {0};
			for (int i = 0; i < n->ndev; i++) {
				if (n->model[i] != m)
					continue;
				dv[0]++;
				dv[1] += n->alloc[i];
				dv[2] += n->ok[i] && !n->alloc[i] && n->up;
				dv[3] += !n->ok[i];
				dv[4] += n->ok[i] && !n->alloc[i] && !n->up;
			}
			const struct w_model *md = &w->m[m];
			long st = take(w, rem_tdp, n->domain, dv[2], md->tdp - md->idle);
			long sm = take(w, rem_min, n->domain, dv[2], md->min_cap - md->idle);
			struct exp_row *rows[4 + MAXD];
			int nr = 0;
			rows[nr++] = &c->model[m];
			rows[nr++] = &c->vendor[vendor_idx(c, md->vendor)];
			rows[nr++] = &c->total;
			for (int d = n->domain; d >= 0; d = w->d[d].parent)
				rows[nr++] = &c->domain[d];
			for (int r = 0; r < nr; r++) {
				for (int f = 0; f < 5; f++)
					rows[r]->dev[f] += dv[f];
				rows[r]->st_tdp += st;
				rows[r]->st_min += sm;
			}
			for (int g = 0; g < 4; g++)
				c->model[m].maxw[g] += dv[2] / (1L << g);
			if (dv[0] >= 8 && dv[2] == dv[0]) {
				c->model[m].all_free++;
				c->vendor[vendor_idx(c, md->vendor)].all_free++;
				c->total.all_free++;
			}
		}
	}
	for (int m = 0; m < w->nm; m++)
		for (int g = 0; g < 4; g++) {
			struct exp_row *v = &c->vendor[vendor_idx(c, w->m[m].vendor)];
			if (c->model[m].maxw[g] > v->maxw[g])
				v->maxw[g] = c->model[m].maxw[g];
			if (c->model[m].maxw[g] > c->total.maxw[g])
				c->total.maxw[g] = c->model[m].maxw[g];
		}
	for (int d = 0; d < w->nd; d++) {
		struct exp_row *r = &c->domain[d];
		r->budget = w->d[d].budget;
		r->reserved = w->d[d].reserved;
		r->headroom = r->budget - r->reserved;
		r->usable = r->headroom;
		for (int p = w->d[d].parent; p >= 0; p = w->d[p].parent)
			if (w->d[p].budget - w->d[p].reserved < r->usable)
				r->usable = w->d[p].budget - w->d[p].reserved;
		if (w->d[d].parent < 0) {
			c->total.budget += r->budget;
			c->total.reserved += r->reserved;
			c->total.headroom += r->headroom;
		}
	}
	/* queues: every queue with a pending or active job, by name */
	for (int i = 0; i < w->nj; i++) {
		bool seen = false;
		for (int q = 0; q < c->nq; q++)
			seen |= strcmp(c->queues[q], w->j[i].queue) == 0;
		if (!seen) {
			ck_assert(c->nq < MAXQ);
			snprintf(c->queues[c->nq++], sizeof(c->queues[0]), "%s", w->j[i].queue);
		}
	}
	qsort(c->queues, (size_t)c->nq, sizeof(c->queues[0]), cmp_q);
	for (int i = 0; i < w->nj; i++) {
		const struct w_job *j = &w->j[i];
		struct exp_row *q = &c->queue[queue_idx(c, j->queue)];
		if (!j->pending) {
			q->active_jobs++;
			q->active_devices += j->held;
			c->total.active_jobs++;
			c->total.active_devices += j->held;
			continue;
		}
		dem_add(&c->total, j, 0);
		dem_add(q, j, 0);
		bool vseen[MAXM] = {0};
		for (int m = 0; m < w->nm; m++) {
			long devs;
			if (!could_use(j, &w->m[m], &devs))
				continue;
			dem_add(&c->model[m], j, devs);
			int v = vendor_idx(c, w->m[m].vendor);
			if (!vseen[v]) {
				vseen[v] = true;
				dem_add(&c->vendor[v], j, 0);
			}
		}
	}
}

/* ---- comparing an answer with the recount ----------------------------------------- */

#define EQ(o, k, want) eq_at(__LINE__, where, (o), (k), (long)(want))
static void eq_at(int line, const char *where, const json_t *o, const char *key, long want)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "line %d: %s: \"%s\" missing or not an integer", line,
		      where, key);
	ck_assert_msg(json_integer_value(v) == want, "line %d: %s: %s = %lld, recount says %ld",
		      line, where, key, (long long)json_integer_value(v), want);
}

static void check_row(const json_t *g, const struct exp_row *e, bool dev, bool power,
		      bool demand, bool model_row, bool frag, bool active, time_t as_of,
		      const char *where)
{
	const json_t *o;
	ck_assert_msg(!json_object_get(g, "devices") == !dev, "%s: devices present = %d", where,
		      dev);
	if (dev) {
		o = json_object_get(g, "devices");
		EQ(o, "total", e->dev[0]);
		EQ(o, "allocated", e->dev[1]);
		EQ(o, "free", e->dev[2]);
		EQ(o, "unhealthy", e->dev[3]);
		EQ(o, "draining", e->dev[4]);
		o = json_object_get(g, "power_limited");
		EQ(o, "devices", e->dev[2] - e->st_tdp);
		EQ(o, "startable_at_tdp", e->st_tdp);
		EQ(o, "startable_at_min_cap", e->st_min);
	}
	ck_assert_msg(!json_object_get(g, "power") == !power, "%s: power present", where);
	if (power) {
		o = json_object_get(g, "power");
		EQ(o, "budget_w", e->budget);
		EQ(o, "reserved_w", e->reserved);
		EQ(o, "headroom_w", e->headroom);
		ck_assert_msg(json_is_null(json_object_get(o, "measured_w")), "%s: measured_w", where);
	}
	ck_assert_msg(!json_object_get(g, "demand") == !demand, "%s: demand present", where);
	if (demand) {
		o = json_object_get(g, "demand");
		EQ(o, "jobs", e->jobs);
		EQ(o, "devices", e->devices);
		const json_t *cp = json_object_get(o, "capability");
		EQ(cp, "jobs", e->cjobs);
		EQ(cp, "workers", e->cworkers);
		EQ(cp, "memory_gib", e->cmem);
		EQ(cp, "bandwidth_gbs", e->cbw);
		double bf = json_number_value(json_object_get(cp, "bf16_tflops"));
		double diff = bf > e->cbf16 ? bf - e->cbf16 : e->cbf16 - bf;
		ck_assert_msg(diff <= 1e-6 * (1 + e->cbf16), "%s: bf16 %g != %g", where, bf,
			      e->cbf16);
		if (model_row)
			EQ(cp, "devices", e->cdevices);
		else
			ck_assert_msg(!json_object_get(cp, "devices"), "%s: capability.devices", where);
		if (e->jobs) {
			time_t t = parse_time(GETS(o, "oldest_submitted_at"));
			ck_assert_msg(t == e->oldest, "%s: oldest_submitted_at %ld != %ld", where,
				      (long)t, (long)e->oldest);
			EQ(o, "oldest_wait_s", as_of - e->oldest > 0 ? as_of - e->oldest : 0);
		} else {
			ck_assert_msg(json_is_null(json_object_get(o, "oldest_submitted_at")) &&
					      json_is_null(json_object_get(o, "oldest_wait_s")),
				      "%s: oldest of no job", where);
		}
	}
	ck_assert_msg(!json_object_get(g, "fragmentation") == !frag, "%s: fragmentation", where);
	if (frag) {
		o = json_object_get(g, "fragmentation");
		const json_t *mw = json_object_get(o, "max_workers");
		EQ(mw, "1", e->maxw[0]);
		EQ(mw, "2", e->maxw[1]);
		EQ(mw, "4", e->maxw[2]);
		EQ(mw, "8", e->maxw[3]);
		EQ(o, "nodes_all_free", e->all_free);
	}
	ck_assert_msg(!json_object_get(g, "active") == !active, "%s: active present", where);
	if (active) {
		o = json_object_get(g, "active");
		EQ(o, "jobs", e->active_jobs);
		EQ(o, "devices", e->active_devices);
	}
}

/* GET path, keeping its ETag. */
static json_t *get_tagged(const char *path, char *etag, size_t n)
{
	struct td_response r;
	call_at(__LINE__, "GET", path, NULL, NULL, 200, &r);
	ck_assert_msg(td_response_header(&r, "ETag", etag, n) == 0, "%s: no ETag", path);
	json_t *j = json_incref(r.json);
	td_response_free(&r);
	ck_assert(j);
	return j;
}

/* Is the state still the one `etag` named? */
static bool unchanged(const char *path, const char *etag)
{
	const char *h[] = {fmt("If-None-Match: %s", etag), NULL};
	struct td_response r;
	call_at(__LINE__, "GET", path, NULL, h, -1, &r);
	long st = r.status;
	td_response_free(&r);
	ck_assert_msg(st == 304 || st == 200, "%s: conditional GET answered %ld", path, st);
	return st == 304;
}

/* Every grouping checked against one recount of one state. */
static void check_all(const char *step_in)
{
	char step[128];
	snprintf(step, sizeof(step), "%s", step_in); /* fmt's ring turns over below */
	static const char *const paths[] = {
		"/v1/capacity", "/v1/capacity?group_by=vendor", "/v1/capacity?group_by=domain",
		"/v1/capacity?group_by=domain&depth=0", "/v1/capacity?group_by=domain&depth=1",
		"/v1/capacity?group_by=domain&depth=2", "/v1/capacity?group_by=queue",
	};
	static struct world w;
	static struct recount c;
	for (int attempt = 0;; attempt++) {
		char etag[128];
		json_t *first = get_tagged(paths[0], etag, sizeof(etag));
		json_decref(first);
		load_world(&w);
		recount(&w, &c);
		json_t *ans[7];
		char tags[7][128];
		for (int p = 0; p < 7; p++)
			ans[p] = get_tagged(paths[p], tags[p], sizeof(tags[p]));
		bool same = unchanged(paths[0], etag);
		for (int p = 0; p < 7; p++)
			same = same && strcmp(tags[p], etag) == 0;
		if (!same) {
			for (int p = 0; p < 7; p++)
				json_decref(ans[p]);
			json_decref(w.keep);
			ck_assert_msg(attempt < 5, "%s: the state kept changing under the recount", step);
			continue;
		}
		for (int p = 0; p < 7; p++) {
			const json_t *a = ans[p], *g;
			const char *by = GETS(a, "group_by");
			time_t as_of = parse_time(GETS(a, "as_of"));
			const json_t *groups = json_object_get(a, "groups");
			int depth = json_is_integer(json_object_get(a, "depth"))
					    ? (int)json_integer_value(json_object_get(a, "depth")) : -1;
			size_t i;
			char where[256];
			if (strcmp(by, "model") == 0) {
				ck_assert_int_eq(json_array_size(groups), w.nm);
				json_array_foreach(groups, i, g) {
					snprintf(where, sizeof(where), "%s: model %s", step, w.m[i].name);
					ck_assert_str_eq(GETS(g, "name"), w.m[i].name);
					ck_assert_str_eq(GETS(g, "vendor"), w.m[i].vendor);
					check_row(g, &c.model[i], true, false, true, true, true, false,
						  as_of, where);
				}
			} else if (strcmp(by, "vendor") == 0) {
				ck_assert_int_eq(json_array_size(groups), c.nv);
				json_array_foreach(groups, i, g) {
					snprintf(where, sizeof(where), "%s: vendor %s", step, c.vendors[i]);
					ck_assert_str_eq(GETS(g, "name"), c.vendors[i]);
					check_row(g, &c.vendor[i], true, false, true, false, true, false,
						  as_of, where);
				}
			} else if (strcmp(by, "domain") == 0) {
				int k = 0;
				for (int d = 0; d < w.nd; d++) {
					if (depth >= 0 && w.d[d].depth != depth)
						continue;
					g = json_array_get(groups, (size_t)k++);
					snprintf(where, sizeof(where), "%s: domain %s (depth %d)", step,
						 w.d[d].name, depth);
					ck_assert_msg(g != NULL, "%s: missing", where);
					ck_assert_str_eq(GETS(g, "name"), w.d[d].name);
					ck_assert_int_eq(GETI(g, "depth"), w.d[d].depth);
					check_row(g, &c.domain[d], true, true, false, false, false,
						  false, as_of, where);
					EQ(json_object_get(g, "power"), "usable_headroom_w",
					   c.domain[d].usable);
				}
				ck_assert_int_eq(json_array_size(groups), k);
			} else {
				ck_assert_str_eq(by, "queue");
				ck_assert_int_eq(json_array_size(groups), c.nq);
				json_array_foreach(groups, i, g) {
					snprintf(where, sizeof(where), "%s: queue %s", step, c.queues[i]);
					ck_assert_str_eq(GETS(g, "name"), c.queues[i]);
					check_row(g, &c.queue[i], false, false, true, false, false, true,
						  as_of, where);
				}
			}
			snprintf(where, sizeof(where), "%s: totals of %s", step, paths[p]);
			check_row(json_object_get(a, "totals"), &c.total, true, true, true, false, true,
				  true, as_of, where);
		}
		for (int p = 0; p < 7; p++)
			json_decref(ans[p]);
		json_decref(w.keep);
		return;
	}
}

/* ---- the random workload ---------------------------------------------------------- */

static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((rng >> 33) % n);
}

static const char *random_job(char *b, size_t n)
{
	static const char *const accel[] = {
		"{}", "{\"vendors\":[\"nvidia\"]}", "{\"vendors\":[\"huawei\"]}",
		"{\"models\":[\"H100-SXM5-80GB\"]}", "{\"models\":[\"H200-SXM-141GB\",\"H20-96GB\"]}",
		"{\"stack\":\"cann\"}", "{\"min_memory_gib\":96}", "{\"fp8\":true}",
		"{\"models\":[\"B200-180GB\"]}",
	};
	static const char *const power[] = {"", ",\"power\":{\"cap_w\":300}",
					    ",\"power\":{\"cap_w\":450}",
					    ",\"power\":{\"cap\":\"auto\",\"min_perf\":0.6}"};
	static const char *const queues[] = {"q-a", "q-b", "q-c"};
	const char *a = accel[rnd(9)], *p = power[rnd(4)], *q = queues[rnd(3)];
	bool training = rnd(3) != 0;
	unsigned count = 1 + rnd(training ? 3 : 3);
	char shape[160];
	if (rnd(4) == 0) {
		static const unsigned mem[] = {64, 100, 150, 300, 600};
		snprintf(shape, sizeof(shape), "\"%s\":{\"memory_gib\":%u%s}",
			 training ? "per_worker" : "per_replica", mem[rnd(5)],
			 rnd(2) ? ",\"bandwidth_gbs\":5000,\"bf16_tflops\":500.5" : "");
	} else {
		static const unsigned devs[] = {1, 2, 4, 8};
		snprintf(shape, sizeof(shape), "\"devices\":%u", training ? devs[rnd(4)] : 1 + rnd(2));
	}
	snprintf(b, n,
		 "{\"name\":\"r\",\"kind\":\"%s\",\"%s\":%u,%s,\"queue\":\"%s\",\"priority\":%u,"
		 "\"accelerator\":%s%s,\"duration_s\":%u}",
		 training ? "training" : "inference", training ? "workers" : "replicas", count, shape,
		 q, rnd(3) * 10, a, p, 60 + rnd(3600));
	return b;
}

static const char *const node_names[] = {"n1a1", "n1a2", "n1a3", "n1b1", "n1b2",
					 "n2a1", "n2a2", "n2b1", "n2b2", "nlab1"};

START_TEST(capacity_matches_a_brute_force_recount_after_random_changes)
{
	rng = 0x5eed0000u + (uint64_t)_i * 7919u;
	uint64_t ids[256];
	unsigned nids = 0;
	char body[1024];
	unsigned failed = 0;
	check_all("fresh fleet");
	for (int step = 0; step < 60; step++) {
		unsigned op = rnd(23);
		if (op < 10 || nids == 0) {
			/* 422 when a cap_w suits none of the allowed models: nothing changes */
			struct td_response r;
			call_at(__LINE__, "POST", "/v1/jobs", random_job(body, sizeof(body)), NULL, -1,
				&r);
			ck_assert_msg(r.status == 201 || r.status == 422, "submit: %ld %s", r.status,
				      r.raw);
			if (r.status == 201 && nids < 256)
				ids[nids++] = (uint64_t)GETI(r.json, "id");
			td_response_free(&r);
		} else if (op < 14) {
			json_decref(REQ("DELETE", fmt("/v1/jobs/%llu",
						     (unsigned long long)ids[rnd(nids)]), NULL, -1));
		} else if (op < 16) {
			json_decref(REQ("POST", fmt("/v1/nodes/%s/drain", node_names[rnd(10)]), NULL,
					200));
		} else if (op < 18) {
			json_decref(REQ("POST", fmt("/v1/nodes/%s/resume", node_names[rnd(10)]), NULL,
					-1));
		} else if (op == 20 || op == 21) {
			/* a device fails (its training job goes back to pending) */
			json_t *dv = REQ("POST", fmt("/v1/devices/%s/%u/fail", node_names[rnd(10)], rnd(4)),
					 "{\"reason\":\"test\"}", -1);
			const char *h = dv ? json_string_value(json_object_get(dv, "health")) : NULL;
			failed += h && strcmp(h, "failed") == 0;
			json_decref(dv);
		} else if (op == 22) {
			json_decref(REQ("POST", fmt("/v1/devices/%s/%u/reset", node_names[rnd(10)], rnd(4)),
					NULL, -1));
		} else {
			/* a launcher says a placed job runs (or, sometimes, that it ended) */
			const char *to = rnd(3) ? "running" : "succeeded";
			json_decref(REQ("POST", fmt("/v1/jobs/%llu/status",
						   (unsigned long long)ids[rnd(nids)]),
					fmt("{\"state\":\"%s\"}", to), -1));
		}
		if (step % 6 == 5)
			check_all(fmt("seed %d step %d", _i, step));
	}
	check_all(fmt("seed %d end", _i));
	ck_assert_msg(failed > 0, "seed %d never failed a device: the unhealthy counts went unchecked", _i);
}
END_TEST

/* ---- ETags and 304 ------------------------------------------------------------------ */

static long cond_get(const char *path, const char *inm, char *etag_out, size_t n, size_t *len)
{
	const char *h[] = {inm ? fmt("If-None-Match: %s", inm) : NULL, NULL};
	struct td_response r;
	call_at(__LINE__, "GET", path, NULL, inm ? h : NULL, -1, &r);
	long st = r.status;
	if (etag_out && td_response_header(&r, "ETag", etag_out, n) < 0)
		etag_out[0] = '\0';
	if (len)
		*len = r.len;
	td_response_free(&r);
	return st;
}

START_TEST(every_get_collection_answers_304_until_a_commit_changes_the_state)
{
	static const char *const paths[] = {
		"/v1/fleet", "/v1/models", "/v1/domains", "/v1/nodes", "/v1/nodes?state=up",
		"/v1/devices", "/v1/devices?model=H20-96GB", "/v1/jobs", "/v1/jobs?state=pending",
		"/v1/capacity", "/v1/capacity?group_by=domain&depth=1", "/v1/capacity?group_by=queue",
	};
	const size_t np = sizeof(paths) / sizeof(paths[0]);
	char tag[128], tag2[128], again[128];
	size_t len;

	for (size_t p = 0; p < np; p++) {
		ck_assert_int_eq(cond_get(paths[p], NULL, tag, sizeof(tag), NULL), 200);
		ck_assert_msg(tag[0] == '"' && tag[strlen(tag) - 1] == '"' && strlen(tag) > 2,
			      "%s: strong, quoted ETag: %s", paths[p], tag);
		ck_assert_int_eq(cond_get(paths[p], NULL, again, sizeof(again), NULL), 200);
		ck_assert_str_eq(again, tag);
		ck_assert_int_eq(cond_get(paths[p], tag, again, sizeof(again), &len), 304);
		ck_assert_str_eq(again, tag);
		ck_assert_int_eq(len, 0);
		/* a list of tags, a weak form, and "*" match too; another tag does not */
		ck_assert_int_eq(cond_get(paths[p], fmt("\"x\", W/%s", tag), NULL, 0, NULL), 304);
		ck_assert_int_eq(cond_get(paths[p], "*", NULL, 0, NULL), 304);
		ck_assert_int_eq(cond_get(paths[p], "\"0-0\"", NULL, 0, NULL), 200);
	}
	ck_assert_int_eq(cond_get("/v1/capacity", NULL, tag, sizeof(tag), NULL), 200);
	/* a bad query is refused even with a current tag */
	ck_assert_int_eq(cond_get("/v1/capacity?group_by=rack", tag, NULL, 0, NULL), 422);
	ck_assert_int_eq(cond_get("/v1/capacity?depth=1", tag, NULL, 0, NULL), 422);
	ck_assert_int_eq(cond_get("/v1/capacity?group_by=domain&depth=x", tag, NULL, 0, NULL), 422);
	ck_assert_int_eq(cond_get("/v1/capacity?color=red", tag, NULL, 0, NULL), 400);
	ck_assert_int_eq(cond_get("/v1/jobs?state=nope", tag, NULL, 0, NULL), 422);
	/* reads change nothing: still 304 */
	ck_assert_int_eq(cond_get("/v1/capacity", tag, NULL, 0, NULL), 304);
	/* single resources carry no ETag */
	ck_assert_int_eq(cond_get("/v1/nodes/n1a1", tag, again, sizeof(again), NULL), 200);
	ck_assert_str_eq(again, "");

	/* a change: every collection answers 200 with a new tag, then 304 to that */
	char tags[16][128];
	for (size_t p = 0; p < np; p++)
		ck_assert_int_eq(cond_get(paths[p], NULL, tags[p], sizeof(tags[p]), NULL), 200);
	json_decref(REQ("POST", "/v1/jobs",
			"{\"name\":\"t\",\"kind\":\"training\",\"workers\":1,\"devices\":2}", 201));
	for (size_t p = 0; p < np; p++) {
		ck_assert_int_eq(cond_get(paths[p], tags[p], tag2, sizeof(tag2), NULL), 200);
		ck_assert_str_ne(tag2, tags[p]);
		ck_assert_int_eq(cond_get(paths[p], tag2, NULL, 0, NULL), 304);
	}
	ck_assert_int_eq(cond_get("/v1/capacity", NULL, tag2, sizeof(tag2), NULL), 200);
	json_decref(REQ("POST", "/v1/nodes/n2a1/drain", NULL, 200));
	ck_assert_int_eq(cond_get("/v1/capacity", tag2, again, sizeof(again), NULL), 200);
	ck_assert_str_ne(again, tag2);

	/* a refused change commits nothing: the tag stays */
	json_decref(REQ("POST", "/v1/jobs", "{\"name\":\"t\",\"kind\":\"training\"}", 422));
	ck_assert_int_eq(cond_get("/v1/capacity", again, NULL, 0, NULL), 304);

	/* a restarted daemon never matches an old tag */
	ck_assert_int_eq(cond_get("/v1/models", NULL, again, sizeof(again), NULL), 200);
	int st;
	ck_assert_int_eq(td_stop(&D, &st), 0);
	ck_assert_int_eq(td_restart(&D), 0);
	ck_assert_int_eq(cond_get("/v1/models", again, tag, sizeof(tag), NULL), 200);
	ck_assert_str_ne(tag, again);
}
END_TEST

START_TEST(the_capacity_answer_is_cached_between_changes_and_identical_when_polled)
{
	struct td_response a, b;
	call_at(__LINE__, "GET", "/v1/capacity?group_by=domain", NULL, NULL, 200, &a);
	td_sleep_ms(1100);   /* as_of would move if it were recomputed */
	call_at(__LINE__, "GET", "/v1/capacity?group_by=domain", NULL, NULL, 200, &b);
	ck_assert_int_eq(a.len, b.len);
	ck_assert_msg(memcmp(a.raw, b.raw, a.len) == 0, "same ETag, different bodies");
	td_response_free(&a);
	td_response_free(&b);
	json_t *x = GET("/v1/capacity?group_by=domain&depth=0");
	ck_assert_int_eq(json_array_size(json_object_get(x, "groups")), 2); /* site, lab */
	ck_assert_int_eq(GETI(x, "depth"), 0);
	json_decref(x);
	x = GET("/v1/capacity?group_by=domain&depth=9");
	ck_assert_int_eq(json_array_size(json_object_get(x, "groups")), 0);
	json_decref(x);
	json_decref(REQ("PUT", "/v1/capacity", NULL, 405));
}
END_TEST

START_TEST(joulectl_capacity_prints_a_table_or_the_json)
{
	struct td_run r;
	const char *argv1[] = {"capacity", NULL};
	ck_assert_int_eq(td_ctl(&D, NULL, argv1, &r), 0);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	ck_assert_msg(strstr(r.out, "GANGS_1/2/4/8") && strstr(r.out, "H100-SXM5-80GB") &&
			      strstr(r.out, "(total)"),
		      "%s", r.out);
	td_run_free(&r);
	const char *argv2[] = {"capacity", "--group-by", "domain", NULL};
	ck_assert_int_eq(td_ctl(&D, NULL, argv2, &r), 0);
	ck_assert_msg(r.code == 0 && strstr(r.out, "HEADROOM_W") && strstr(r.out, "    rack-2a"),
		      "%s", r.out);
	td_run_free(&r);
	const char *argv3[] = {"--json", "capacity", "--group-by", "queue", NULL};
	ck_assert_int_eq(td_ctl(&D, NULL, argv3, &r), 0);
	json_t *j = json_loads(r.out, 0, NULL);
	ck_assert_msg(j && strcmp(json_string_value(json_object_get(j, "group_by")), "queue") == 0,
		      "%s", r.out);
	json_decref(j);
	td_run_free(&r);
	const char *argv4[] = {"capacity", "--group-by", "rack", NULL};
	ck_assert_int_eq(td_ctl(&D, NULL, argv4, &r), 0);
	ck_assert_int_eq(r.code, 1);
	td_run_free(&r);
}
END_TEST

static Suite *capacity_suite(void)
{
	Suite *s = suite_create("capacity");
	TCase *tc = tcase_create("recount");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, capacity_matches_a_brute_force_recount_after_random_changes, 0, 3);
	suite_add_tcase(s, tc);

	tc = tcase_create("etag");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_get_collection_answers_304_until_a_commit_changes_the_state);
	tcase_add_test(tc, the_capacity_answer_is_cached_between_changes_and_identical_when_polled);
	tcase_add_test(tc, joulectl_capacity_prints_a_table_or_the_json);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(capacity_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
