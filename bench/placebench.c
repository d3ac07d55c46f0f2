/*
 * placebench — times the placement engine (daemon/core) on a realistic, in-memory fleet.
 *
 * Owns: a synthetic fleet built through fleet_import (site > halls > rows > racks > nodes,
 * one model per rack, NVLink group per NVIDIA node, one pod per Ascend rack, budgets below
 * the TDP load at every level), a seeded job mix added with jobs_add, and five timed
 * phases: the queue pass over the whole queue, place_try one job at a time on a second
 * identical build (per-decision latency), explain_job on random pending jobs, churn
 * (cancel a share of the placed jobs, pass again), and the final picture (RSS, allocation,
 * hot domains). The one-at-a-time run also files each try's time by class (topology x
 * power mode x outcome) and counts the failed tries whose job the root's headroom alone
 * rules out (see pb_floor_need). Prints a short report and, with --json, one JSON line.
 *
 * Never: links anything but the core (no daemon, no SQLite, no JSON library); uses rand()
 * (splitmix64: the same arguments give the same fleet, jobs and placements everywhere);
 * times anything but the call under test (CLOCK_MONOTONIC around it).
 *
 * Invariants checked at the end (exit status 1 when one fails): no domain has reserved_w >
 * budget_w; reserved_w equals the ledger recomputed from the nodes and devices; every
 * placed job holds at least min_count workers, and every device it names is held by it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "explain.h"
#include "fleet.h"
#include "job.h"
#include "place.h"
#include "power.h"

#define PB_NOW 1790000000           /* fixed "now" (2026-09-21): the core reads no clock */
#define PB_MAX_LEVELS 8

/* ---------------- catalog (sql/002_catalog.sql, copied) ---------------- */

/* name, vendor, stack, memory_gib, bandwidth_gbs, bf16, fp8, tdp_w, min_cap_w, idle_w */
static const struct model pb_models[] = {
	{"H200-SXM-141GB", "nvidia", "cuda", 141, 4800, 989, 1979, 700, 200, 70},
	{"H100-SXM5-80GB", "nvidia", "cuda", 80, 3350, 989, 1979, 700, 200, 70},
	{"H20-96GB", "nvidia", "cuda", 96, 4000, 148, 296, 400, 200, 70},
	{"Ascend910B3", "huawei", "cann", 64, 1600, 313, 0, 400, 200, 93},
	{"Ascend910C", "huawei", "cann", 128, 3200, 752, 0, 800, 400, 174},
};
#define PB_NMODELS (sizeof(pb_models) / sizeof(pb_models[0]))

/* Per model: share of racks (%), host idle watts, node-name prefix, pool label, whether a
 * node is its own group (NVLink island) or the rack is one (Ascend pod). Same mix and host
 * watts as fleetgen. */
static const struct {
	unsigned weight;
	int64_t host_idle_w;
	const char *prefix, *pool;
	bool group_per_node;
} pb_rack_mix[PB_NMODELS] = {
	{25, 1800, "h200", "train", true},
	{30, 1600, "h100", "train", true},
	{15, 1500, "h20", "infer", true},
	{15, 1400, "910b3", "train", false},
	{15, 2000, "910c", "infer", false},
};

struct pb_opts {
	uint32_t nodes, devices, halls, rows, rack_nodes;
	uint32_t rack_pct, upper_pct;
	uint32_t jobs, explains, churn_pct, churn_rounds;
	uint64_t seed;
	bool json, latency;
};

/* ---------------- small helpers ---------------- */

static uint64_t pb_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t pb_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(pb_rand(s) % n);
}

/* Index drawn from integer weights. */
static uint32_t pb_pick(uint64_t *s, const unsigned *w, uint32_t n)
{
	unsigned total = 0, acc = 0;
	for (uint32_t i = 0; i < n; i++)
		total += w[i];
	unsigned x = (unsigned)(pb_rand(s) % total);
	for (uint32_t i = 0; i < n; i++)
		if (x < (acc += w[i]))
			return i;
	return n - 1;
}

static uint64_t pb_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long pb_maxrss_kib(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int pb_cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

struct pb_dist {
	uint32_t n;
	double p50_ms, p99_ms, max_ms, mean_ms, total_s;
};

/* Nearest-rank percentiles of ns samples (sorts v). */
static struct pb_dist pb_dist(uint64_t *v, uint32_t n)
{
	struct pb_dist d = {.n = n};
	if (!n)
		return d;
	qsort(v, n, sizeof(*v), pb_cmp_u64);
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += v[i];
	uint32_t i50 = (uint32_t)((n * 50ull + 99) / 100), i99 = (uint32_t)((n * 99ull + 99) / 100);
	d.p50_ms = v[(i50 ? i50 : 1) - 1] / 1e6;
	d.p99_ms = v[(i99 ? i99 : 1) - 1] / 1e6;
	d.max_ms = v[n - 1] / 1e6;
	d.mean_ms = sum / 1e6 / n;
	d.total_s = sum / 1e9;
	return d;
}

/* A bump arena for the import document's strings (the fleet copies them). */
struct pb_arena {
	char *buf;
	size_t used, cap;
};

static const char *pb_strf(struct pb_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *pb_strf(struct pb_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(a->buf + a->used, a->cap - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= a->cap - a->used)
		return NULL;
	const char *s = a->buf + a->used;
	a->used += (size_t)n + 1;
	return s;
}

/* ---------------- the fleet ---------------- */

/* Budget = pct % of `load`, rounded up to 100 W, never below idle. */
static int64_t pb_budget(int64_t idle, int64_t load, uint32_t pct)
{
	int64_t b = (load * pct / 100 + 99) / 100 * 100;
	return b < idle ? idle : b;
}

/*
 * Build the fleet: racks of o->rack_nodes nodes dealt to halls*rows rows in contiguous
 * balanced runs; rack budget = rack_pct % of its TDP load (hosts + devices at TDP), each
 * level above = upper_pct % of the sum of its children's budgets.
 */
static int pb_build_fleet(struct fleet *f, const struct pb_opts *o, struct err *e)
{
	uint32_t nracks = (o->nodes + o->rack_nodes - 1) / o->rack_nodes;
	uint32_t nrows = o->halls * o->rows;
	uint32_t ndom = 1 + o->halls + nrows + nracks;
	struct fleet_domain_spec *doms = calloc(ndom, sizeof(*doms));
	struct fleet_node_spec *nodes = calloc(o->nodes, sizeof(*nodes));
	struct fleet_device_spec *devs = calloc(PB_NMODELS, sizeof(*devs));
	uint8_t *rack_model = calloc(nracks, 1);
	int64_t *idle = calloc(ndom, sizeof(*idle)), *load = calloc(ndom, sizeof(*load));
	struct pb_arena ar = {.cap = (size_t)ndom * 32 + (size_t)o->nodes * 192};
	uint64_t st = o->seed ^ 0xf1ee7ull;
	int rc = -ENOMEM;

	ar.buf = malloc(ar.cap);
	if (!doms || !nodes || !devs || !rack_model || !idle || !load || !ar.buf)
		goto fail;
	for (uint32_t m = 0; m < PB_NMODELS; m++)
		devs[m] = (struct fleet_device_spec){.model = pb_models[m].name, .count = o->devices};
	unsigned w[PB_NMODELS];
	for (uint32_t m = 0; m < PB_NMODELS; m++)
		w[m] = pb_rack_mix[m].weight;
	for (uint32_t r = 0; r < nracks; r++)
		rack_model[r] = (uint8_t)pb_pick(&st, w, PB_NMODELS);

	/* domain k: 0 site, 1..halls, then rows, then racks */
	uint32_t row0 = 1 + o->halls, rack0 = row0 + nrows;
	doms[0] = (struct fleet_domain_spec){"site", NULL, 0};
	for (uint32_t h = 0; h < o->halls; h++)
		doms[1 + h] = (struct fleet_domain_spec){pb_strf(&ar, "hall-%u", h + 1), "site", 0};
	for (uint32_t rw = 0; rw < nrows; rw++)
		doms[row0 + rw] = (struct fleet_domain_spec){
			pb_strf(&ar, "row-%u-%02u", rw / o->rows + 1, rw % o->rows + 1),
			doms[1 + rw / o->rows].name, 0};
	for (uint32_t r = 0; r < nracks; r++) {
		uint32_t rw = (uint32_t)((uint64_t)r * nrows / nracks);
		doms[rack0 + r] = (struct fleet_domain_spec){
			pb_strf(&ar, "rack-%u-%02u-%04u", rw / o->rows + 1, rw % o->rows + 1, r),
			doms[row0 + rw].name, 0};
	}
	for (uint32_t i = 0; i < o->nodes; i++) {
		uint32_t r = i / o->rack_nodes, m = rack_model[r];
		const struct model *md = &pb_models[m];
		const char *rack = doms[rack0 + r].name + 5;
		const char *name = pb_strf(&ar, "%s-%s-n%u", pb_rack_mix[m].prefix, rack,
					   i % o->rack_nodes + 1);
		const char *group = name && pb_rack_mix[m].group_per_node ? pb_strf(&ar, "nvl-%s", name)
									   : pb_strf(&ar, "pod-%s", rack);
		nodes[i] = (struct fleet_node_spec){
			.name = name,
			.domain = doms[rack0 + r].name,
			.group = group,
			.labels_json = pb_strf(&ar, "{\"pool\":\"%s\"}", pb_rack_mix[m].pool),
			.exporter_url = pb_strf(&ar, "http://10.%u.%u.%u:9400/metrics", (i >> 16) & 255,
						(i >> 8) & 255, i & 255),
			.host_idle_w = pb_rack_mix[m].host_idle_w,
			.devs = &devs[m],
			.ndevs = 1,
		};
		if (!name || !group || !nodes[i].labels_json || !nodes[i].exporter_url)
			goto fail;
		idle[rack0 + r] += pb_rack_mix[m].host_idle_w + (int64_t)o->devices * md->idle_w;
		load[rack0 + r] += pb_rack_mix[m].host_idle_w + (int64_t)o->devices * md->tdp_w;
	}
	/* budgets bottom-up: racks from TDP load, then each parent from its children */
	for (uint32_t r = 0; r < nracks; r++) {
		uint32_t d = rack0 + r, rw = row0 + (uint32_t)((uint64_t)r * nrows / nracks);
		doms[d].budget_w = pb_budget(idle[d], load[d], o->rack_pct);
		idle[rw] += idle[d];
		load[rw] += doms[d].budget_w;
	}
	for (uint32_t rw = 0; rw < nrows; rw++) {
		uint32_t d = row0 + rw, h = 1 + rw / o->rows;
		doms[d].budget_w = pb_budget(idle[d], load[d], o->upper_pct);
		idle[h] += idle[d];
		load[h] += doms[d].budget_w;
	}
	for (uint32_t h = 1; h <= o->halls; h++) {
		doms[h].budget_w = pb_budget(idle[h], load[h], o->upper_pct);
		idle[0] += idle[h];
		load[0] += doms[h].budget_w;
	}
	doms[0].budget_w = pb_budget(idle[0], load[0], o->upper_pct);
	for (uint32_t d = 0; d < ndom; d++)
		if (!doms[d].name)
			goto fail;
	/* rows with no rack (tiny fleets) would be empty domains: harmless, keep them */
	struct fleet_doc doc = {pb_models, PB_NMODELS, doms, ndom, nodes, o->nodes};
	rc = fleet_import(f, &doc, e);
fail:
	if (rc == -ENOMEM && e->message[0] == 0)
		err_set(e, -ENOMEM, NULL, "out of memory building the fleet document");
	free(doms);
	free(nodes);
	free(devs);
	free(rack_model);
	free(idle);
	free(load);
	free(ar.buf);
	return rc;
}

/* ---------------- the jobs ---------------- */

struct pb_mix {
	uint32_t training, inference, capability, topo[_TOPO_MAX], vendor, models, cap_w, cap_auto,
		preemptible;
};

/* Like the codec's check_cap: cap_w must be inside [min_cap_w, tdp_w] of an allowed model. */
static bool pb_cap_ok(const struct job_request *r, uint32_t cap_w)
{
	for (uint32_t m = 0; m < PB_NMODELS; m++) {
		const struct model *md = &pb_models[m];
		bool ok = r->nmodels == 0 && r->nvendors == 0;
		for (uint32_t k = 0; k < r->nmodels && !ok; k++)
			ok = strcmp(r->models[k], md->name) == 0;
		for (uint32_t k = 0; k < r->nvendors && !ok; k++)
			ok = strcmp(r->vendors[k], md->vendor) == 0;
		if (ok && cap_w >= md->min_cap_w && cap_w <= md->tdp_w)
			return true;
	}
	return false;
}

/* One job drawn from the mix; NULL on ENOMEM. */
static struct job *pb_make_job(uint64_t *st, uint32_t i, uint32_t njobs, struct pb_mix *mix)
{
	static const unsigned kind_w[] = {70, 30};
	static const uint32_t shape_workers[] = {1, 1, 2, 4, 8, 16};
	static const uint32_t shape_devices[] = {1, 8, 8, 8, 8, 8};
	static const unsigned shape_w[] = {20, 25, 20, 15, 12, 8};
	static const int32_t prio[] = {0, 10, 50, 100};
	static const unsigned prio_w[] = {60, 25, 10, 5};
	static const int64_t durs[] = {0, 900, 1800, 3600, 7200, 14400, 28800, 86400};
	static const unsigned dur_w[] = {10, 10, 15, 20, 15, 12, 10, 8};
	static const uint32_t mems[] = {80, 160, 320, 640};
	static const uint32_t caps[] = {400, 450, 500, 550, 600};
	struct job *j = job_new();
	char name[32];
	if (!j)
		return NULL;
	struct job_request *r = &j->req;

	snprintf(name, sizeof(name), "pb-%u", i + 1);
	if (!(j->name = strdup(name)) || !(j->owner = strdup("bench")) ||
	    !(j->queue = strdup(i % 4 ? "default" : "research")))
		goto fail;
	j->uid = 1000 + i % 50;
	j->submitted_at = PB_NOW - (int64_t)(njobs - i);
	j->priority = prio[pb_pick(st, prio_w, 4)];
	j->preemptible = pb_below(st, 100) < (j->priority <= 10 ? 40u : 5u);
	mix->preemptible += j->preemptible;
	r->duration_s = durs[pb_pick(st, dur_w, 8)];
	r->kind = pb_pick(st, kind_w, 2) == 0 ? JOB_TRAINING : JOB_INFERENCE;

	uint32_t total = 0;         /* devices, when known */
	if (r->kind == JOB_TRAINING) {
		mix->training++;
		uint32_t s = pb_pick(st, shape_w, 6);
		r->count = r->min_count = shape_workers[s];
		if (pb_below(st, 100) < 12) {
			r->capability = true;
			r->need.memory_gib = mems[pb_below(st, 4)];
			if (pb_below(st, 2))
				r->need.bf16_tflops = 300.0 * (1 + pb_below(st, 8));
			r->need.fp8 = pb_below(st, 100) < 20;
		} else {
			r->devices = shape_devices[s];
			total = r->count * r->devices;
		}
		r->topology = TOPO_ANY;
		if ((total && total <= 32) || (!total && r->count <= 4)) {
			uint32_t x = pb_below(st, 100);
			r->topology = x < 50 ? TOPO_ANY : x < 75 ? TOPO_SAME_RACK : TOPO_SAME_GROUP;
		}
	} else {
		mix->inference++;
		r->count = 1 + pb_below(st, 8);
		r->min_count = 1 + pb_below(st, r->count);
		r->topology = TOPO_SPREAD;
		if (pb_below(st, 100) < 10) {
			r->capability = true;
			r->need.memory_gib = mems[pb_below(st, 2)];
			r->need.bandwidth_gbs = 4000 * (1 + pb_below(st, 2));
		} else {
			r->devices = 1 + pb_below(st, 2);
		}
	}
	mix->capability += r->capability;
	mix->topo[r->topology]++;

	/* accelerator constraints */
	uint32_t x = pb_below(st, 100);
	if (x < 20) {
		snprintf(r->vendors[r->nvendors++], sizeof(r->vendors[0]), "nvidia");
		mix->vendor++;
	} else if (x < 35) {
		snprintf(r->vendors[r->nvendors++], sizeof(r->vendors[0]), "huawei");
		mix->vendor++;
	} else if (x < 45) {
		uint32_t n = 1 + pb_below(st, 2), a = pb_below(st, PB_NMODELS);
		if (!(r->models = calloc(n, sizeof(*r->models))))
			goto fail;
		for (uint32_t k = 0; k < n; k++)
			snprintf(r->models[r->nmodels++], sizeof(r->models[0]), "%s",
				 pb_models[(a + k) % PB_NMODELS].name);
		mix->models++;
	} else if (x < 50) {
		r->min_memory_gib = 96;
	} else if (x < 53 && !r->capability) {
		r->fp8 = true;
	}

	/* power */
	x = pb_below(st, 100);
	if (x < 15) {
		uint32_t c = caps[pb_below(st, 5)];
		r->cap_w = pb_cap_ok(r, c) ? c : 400; /* 400 W is inside every model's range */
		mix->cap_w++;
	} else if (x < 35) {
		r->cap_auto = true;
		r->min_perf = 0.8;
		mix->cap_auto++;
	}
	return j;
fail:
	job_free(j);
	return NULL;
}

static int pb_build_jobs(struct jobs *t, const struct pb_opts *o, struct pb_mix *mix)
{
	uint64_t st = o->seed ^ 0x10b5ull;
	memset(mix, 0, sizeof(*mix));
	for (uint32_t i = 0; i < o->jobs; i++) {
		struct job *j = pb_make_job(&st, i, o->jobs, mix);
		if (!j)
			return -ENOMEM;
		int rc = jobs_add(t, j);
		if (rc < 0) {
			job_free(j);
			return rc;
		}
	}
	return 0;
}

/* ---------------- the picture and the invariants ---------------- */

struct pb_state {
	uint32_t pending, active, cancelled;
	uint64_t alloc_devices;
	uint32_t hot[PB_MAX_LEVELS];   /* domains at > 95 % of budget, by depth */
	uint32_t per_level[PB_MAX_LEVELS];
	uint32_t hot_total;
	uint32_t reserved_for_head;    /* pending jobs whose reason is RESERVED_FOR_HEAD */
	uint32_t reason_power, reason_devices, reason_topology, reason_other;
};

static uint32_t pb_depth(const struct fleet *f, uint32_t d)
{
	uint32_t n = 0;
	while (f->domains[d].parent != FLEET_NONE && n < PB_MAX_LEVELS - 1) {
		d = f->domains[d].parent;
		n++;
	}
	return n;
}

static void pb_snapshot(const struct fleet *f, const struct jobs *t, struct pb_state *s)
{
	memset(s, 0, sizeof(*s));
	s->pending = t->npending;
	s->active = t->nactive;
	s->cancelled = t->count_by_state[JOB_CANCELLED];
	for (uint32_t n = 0; n < f->nnodes; n++)
		s->alloc_devices += (uint32_t)__builtin_popcountll(f->nodes[n].alloc_mask);
	for (uint32_t d = 0; d < f->ndomains; d++) {
		const struct domain *dm = &f->domains[d];
		uint32_t k = pb_depth(f, d);
		s->per_level[k]++;
		if (dm->reserved_w * 100 > dm->budget_w * 95) {
			s->hot[k]++;
			s->hot_total++;
		}
	}
	for (uint32_t i = 0; i < t->npending; i++) {
		const char *r = t->pending[i]->reason ? t->pending[i]->reason : "";
		if (strncmp(r, "RESERVED_FOR_HEAD", 17) == 0)
			s->reserved_for_head++;
		else if (strncmp(r, "POWER_BUDGET", 12) == 0)
			s->reason_power++;
		else if (strncmp(r, "INSUFFICIENT_DEVICES", 20) == 0)
			s->reason_devices++;
		else if (strncmp(r, "TOPOLOGY", 8) == 0)
			s->reason_topology++;
		else
			s->reason_other++;
	}
}

/* Returns the number of violations (each printed to stderr, the first few only). */
static uint32_t pb_check(const struct fleet *f, const struct jobs *t)
{
	uint32_t bad = 0;
	int64_t *ledger = calloc(f->ndomains + 1, sizeof(*ledger));
	if (!ledger) {
		fprintf(stderr, "placebench: out of memory checking invariants\n");
		return 1;
	}
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		int64_t w = nd->host_idle_w;
		for (uint32_t k = 0; k < nd->ndevices; k++) {
			const struct device *dv = &f->devices[nd->first_device + k];
			w += dv->job ? dv->cap_w : f->models[dv->model].idle_w;
		}
		for (uint32_t d = nd->domain; d != FLEET_NONE; d = f->domains[d].parent)
			ledger[d] += w;
	}
	for (uint32_t d = 0; d < f->ndomains; d++) {
		const struct domain *dm = &f->domains[d];
		if (dm->reserved_w > dm->budget_w && bad++ < 10)
			fprintf(stderr, "INVARIANT: domain %s reserved %" PRId64 " W > budget %" PRId64
					" W\n", dm->name, dm->reserved_w, dm->budget_w);
		if (dm->reserved_w != ledger[d] && bad++ < 10)
			fprintf(stderr, "INVARIANT: domain %s reserved %" PRId64 " W, recomputed %" PRId64
					" W\n", dm->name, dm->reserved_w, ledger[d]);
	}
	free(ledger);
	uint64_t held = 0, alloc = 0;
	for (uint32_t i = 0; i < t->nactive; i++) {
		const struct job *j = t->active[i];
		uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
		if (j->nplaced < need && bad++ < 10)
			fprintf(stderr, "INVARIANT: job %" PRIu64 " placed with %u of min %u workers\n",
				j->id, j->nplaced, need);
		for (uint32_t w = 0; w < j->nplaced; w++) {
			const struct job_worker *wk = &j->placement[w];
			const struct node *nd = &f->nodes[wk->node];
			held += (uint32_t)__builtin_popcountll(wk->mask);
			for (uint32_t k = 0; k < nd->ndevices; k++)
				if ((wk->mask >> k & 1) && f->devices[nd->first_device + k].job != j->id &&
				    bad++ < 10)
					fprintf(stderr, "INVARIANT: job %" PRIu64 " worker %u: device %u on %s "
							"is not held by it\n", j->id, w, k, nd->name);
		}
	}
	for (uint32_t n = 0; n < f->nnodes; n++)
		alloc += (uint32_t)__builtin_popcountll(f->nodes[n].alloc_mask);
	if (held != alloc && bad++ < 10)
		fprintf(stderr, "INVARIANT: active jobs hold %" PRIu64 " devices, fleet has %" PRIu64
				" allocated\n", held, alloc);
	return bad;
}

/* ---------------- main ---------------- */

static void pb_usage(FILE *out)
{
	fprintf(out,
		"Usage: placebench [OPTIONS]\n"
		"Times the placement engine (core only) on an in-memory fleet and job queue.\n\n"
		"  --nodes N          nodes (default 12500)\n"
		"  --devices N        devices per node, 1-64 (default 8)\n"
		"  --halls N          halls (default 4)\n"
		"  --rows N           rows per hall (default 10)\n"
		"  --rack-nodes N     nodes per rack (default 4)\n"
		"  --rack-pct P       rack budget = P%% of its TDP load (default 85)\n"
		"  --upper-pct P      row/hall/site budget = P%% of Σ children's budgets (default 95)\n"
		"  --jobs N           pending jobs (default 20000)\n"
		"  --explain N        explain_job calls on random pending jobs (default 1000)\n"
		"  --churn-pct P      share of placed jobs cancelled per churn round (default 10)\n"
		"  --churn-rounds N   churn rounds (default 3)\n"
		"  --no-latency       skip the second build timed one place_try at a time\n"
		"  --seed N           fleet and job seed (default 1)\n"
		"  --json             also print one JSON line\n");
}

static int pb_uint(const char *s, const char *what, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "placebench: --%s must be an integer in [%" PRIu64 ", %" PRIu64
				"], not '%s'\n", what, lo, hi, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int pb_setup(struct fleet *f, struct jobs *t, const struct pb_opts *o, struct pb_mix *mix,
		    double *import_ms, double *jobs_ms)
{
	struct err e = {0};
	uint64_t t0 = pb_ns();
	int rc = pb_build_fleet(f, o, &e);
	uint64_t t1 = pb_ns();
	if (rc < 0) {
		fprintf(stderr, "placebench: fleet_import: %s%s%s (%d)\n", e.message,
			e.field[0] ? " at " : "", e.field, rc);
		return rc;
	}
	rc = pb_build_jobs(t, o, mix);
	uint64_t t2 = pb_ns();
	if (rc < 0) {
		fprintf(stderr, "placebench: building jobs: %s\n", strerror(-rc));
		return rc;
	}
	if (import_ms)
		*import_ms = (t1 - t0) / 1e6;
	if (jobs_ms)
		*jobs_ms = (t2 - t1) / 1e6;
	return 0;
}

/* Where the per-try time goes: by topology x power mode (none / cap_w / auto) x outcome. */
struct pb_class {
	uint32_t n;
	uint64_t ns, max_ns;
};
#define PB_CLASS(topo, pmode, ok) (((topo) * 3 + (pmode)) * 2 + (ok))
#define PB_NCLASS (_TOPO_MAX * 3 * 2)

static const char *const pb_topo_names[_TOPO_MAX] = {"any", "same_node", "same_group",
						       "same_rack", "spread"};
static const char *const pb_pmode_names[3] = {"tdp", "cap_w", "auto"};

static int pb_class_cmp(const void *x, const void *y, void *arg)
{
	const struct pb_class *c = arg;
	uint64_t a = c[*(const uint32_t *)x].ns, b = c[*(const uint32_t *)y].ns;
	return a > b ? -1 : a < b;
}

/* Watts the whole minimum gang of j needs at the least, over every model it allows (caps at
 * their floor with cap auto); INT64_MAX when no model is allowed. Every watt passes through
 * the root, so a root with less headroom than this cannot take the job, wherever it goes. */
static int64_t pb_floor_need(const struct fleet *f, const struct job *j)
{
	int64_t best = INT64_MAX;
	uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
	for (uint32_t m = 0; m < f->nmodels; m++) {
		uint32_t cap, devices;
		const struct model *md = &f->models[m];
		if (!place_model_fits_request(f, &j->req, (uint16_t)m, &cap, &devices))
			continue;
		if (j->req.cap_auto)
			cap = place_auto_floor(md, j->req.min_perf);
		int64_t w = (int64_t)need * power_alloc_delta(md, devices, cap);
		if (w < best)
			best = w;
	}
	return best;
}

struct pb_churn {
	uint32_t cancelled, placed_before, placed_after, tries;
	double cancel_ms, pass_ms;
};

int main(int argc, char **argv)
{
	struct pb_opts o = {12500, 8, 4, 10, 4, 85, 95, 20000, 1000, 10, 3, 1, false, true};
	static const struct option lopts[] = {
		{"nodes", required_argument, NULL, 'n'},      {"devices", required_argument, NULL, 'd'},
		{"halls", required_argument, NULL, 'H'},      {"rows", required_argument, NULL, 'R'},
		{"rack-nodes", required_argument, NULL, 'k'}, {"rack-pct", required_argument, NULL, '1'},
		{"upper-pct", required_argument, NULL, '2'},  {"jobs", required_argument, NULL, 'j'},
		{"explain", required_argument, NULL, 'x'},    {"churn-pct", required_argument, NULL, 'c'},
		{"churn-rounds", required_argument, NULL, 'C'},
		{"no-latency", no_argument, NULL, 'L'},       {"seed", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'J'},             {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct fleet f;
	struct jobs t;
	struct pb_mix mix;
	struct pb_state s_pass, s_end;
	struct pb_churn *churn = NULL;
	uint64_t *lat = NULL, *lat_ok = NULL, *lat_fail = NULL, *xlat = NULL;
	struct job **snap = NULL;
	uint64_t v;
	int c, rc, status = 2;
	bool live = false;

	int li = 0;
	while ((c = getopt_long(argc, argv, "h", lopts, &li)) != -1) {
		uint32_t *dst = NULL;
		uint64_t lo = 1, hi = 10000000;
		switch (c) {
		case 'n': dst = &o.nodes; break;
		case 'd': dst = &o.devices; hi = FLEET_MAX_NODE_DEVICES; break;
		case 'H': dst = &o.halls; hi = 1000; break;
		case 'R': dst = &o.rows; hi = 1000; break;
		case 'k': dst = &o.rack_nodes; hi = 1000; break;
		case '1': dst = &o.rack_pct; hi = 100; break;
		case '2': dst = &o.upper_pct; hi = 100; break;
		case 'j': dst = &o.jobs; lo = 0; break;
		case 'x': dst = &o.explains; lo = 0; break;
		case 'c': dst = &o.churn_pct; lo = 0; hi = 100; break;
		case 'C': dst = &o.churn_rounds; lo = 0; hi = 1000; break;
		case 'L': o.latency = false; continue;
		case 'J': o.json = true; continue;
		case 's':
			if (pb_uint(optarg, "seed", 0, UINT64_MAX, &o.seed) < 0)
				return 2;
			continue;
		case 'h': pb_usage(stdout); return 0;
		default: pb_usage(stderr); return 2;
		}
		if (pb_uint(optarg, lopts[li].name, lo, hi, &v) < 0)
			return 2;
		*dst = (uint32_t)v;
	}
	if (optind != argc) {
		pb_usage(stderr);
		return 2;
	}

	/* ---- run 1: the queue pass, explain, churn ---- */
	double import_ms, jobs_ms;
	fleet_init(&f);
	jobs_init(&t);
	live = true;
	if (pb_setup(&f, &t, &o, &mix, &import_ms, &jobs_ms) < 0)
		goto out;
	long rss_built = pb_maxrss_kib();
	uint32_t queued = t.npending;
	uint64_t t0 = pb_ns();
	int tries = place_pass(&f, &t, PB_NOW, UINT32_MAX, NULL, NULL);
	uint64_t t1 = pb_ns();
	if (tries < 0) {
		fprintf(stderr, "placebench: place_pass: %d\n", tries);
		goto out;
	}
	double pass_s = (t1 - t0) / 1e9;
	uint32_t placed = t.nactive;
	uint64_t requeues = 0;
	for (uint64_t id = 1; id < t.next_id; id++)
		requeues += jobs_get(&t, id)->requeues;
	pb_snapshot(&f, &t, &s_pass);
	/* the head of the queue after the pass, and whether a reservation could be set for it */
	struct job *head = t.npending ? t.pending[0] : NULL;
	char head_text[320] = "none";
	if (head) {
		int64_t hstart = 0;
		uint64_t hafter = 0;
		int hrc = place_estimate_start(&f, &t, head, PB_NOW, &hstart, &hafter);
		snprintf(head_text, sizeof(head_text),
			 "job %" PRIu64 " prio %d %s %ux%u%s %s%s%s; estimated start: %s%lld s "
			 "(after job %" PRIu64 "); reason: %.120s",
			 head->id, head->priority, job_kind_name(head->req.kind), head->req.count,
			 head->req.devices, head->req.capability ? " (capability)" : "",
			 job_topology_name(head->req.topology), head->req.cap_auto ? " cap auto" : "",
			 head->req.nvendors ? " vendor-bound" : "", hrc == 1 ? "+" : "none ",
			 hrc == 1 ? (long long)(hstart - PB_NOW) : 0LL, hafter,
			 head->reason ? head->reason : "");
	}
	const struct domain *root = &f.domains[0];
	int64_t root_budget = root->budget_w, root_reserved = root->reserved_w;

	/* explain on random pending jobs (distinct, partial Fisher-Yates over a copy) */
	uint64_t st = o.seed ^ 0xe4417ull;
	uint32_t nx = o.explains < t.npending ? o.explains : t.npending;
	uint32_t xcodes[16] = {0};
	struct pb_class xcls[_TOPO_MAX] = {{0}};
	static const char *const xnames[] = {"FITS_NOW", "NO_MODEL_MATCH", "INSUFFICIENT_DEVICES",
					     "TOPOLOGY", "POWER_BUDGET", "GANG_INCOMPLETE",
					     "RESERVED_FOR_HEAD", "NODE_DRAINING", "other"};
	enum { PB_NX = sizeof(xnames) / sizeof(xnames[0]) };
	snap = malloc((t.npending + 1) * sizeof(*snap));
	xlat = malloc((nx + 1) * sizeof(*xlat));
	if (!snap || !xlat)
		goto nomem;
	memcpy(snap, t.pending, t.npending * sizeof(*snap));
	uint64_t epoch_before = f.epoch;
	for (uint32_t i = 0; i < nx; i++) {
		uint32_t k = i + pb_below(&st, t.npending - i);
		struct job *tmp = snap[i];
		snap[i] = snap[k];
		snap[k] = tmp;
		struct explain x;
		uint64_t a = pb_ns();
		rc = explain_job(&f, &t, snap[i], PB_NOW, &x);
		xlat[i] = pb_ns() - a;
		struct pb_class *xk = &xcls[snap[i]->req.topology];
		xk->n++;
		xk->ns += xlat[i];
		xk->max_ns = xlat[i] > xk->max_ns ? xlat[i] : xk->max_ns;
		if (rc < 0) {
			fprintf(stderr, "placebench: explain_job: %d\n", rc);
			goto out;
		}
		uint32_t ci = PB_NX - 1;
		for (uint32_t q = 0; q + 1 < PB_NX; q++)
			if (strcmp(x.code, xnames[q]) == 0)
				ci = q;
		xcodes[ci]++;
	}
	if (f.epoch != epoch_before)
		fprintf(stderr, "placebench: warning: explain_job moved the fleet epoch\n");
	struct pb_dist xd = pb_dist(xlat, nx);

	/* churn: cancel a share of the active jobs at random, pass again */
	churn = calloc(o.churn_rounds + 1, sizeof(*churn));
	if (!churn)
		goto nomem;
	for (uint32_t r = 0; r < o.churn_rounds; r++) {
		struct pb_churn *ch = &churn[r];
		uint32_t na = t.nactive, ncancel = (uint32_t)((uint64_t)na * o.churn_pct / 100);
		struct job **act = malloc((na + 1) * sizeof(*act));
		if (!act)
			goto nomem;
		memcpy(act, t.active, na * sizeof(*act));
		for (uint32_t i = 0; i < ncancel; i++) {
			uint32_t k = i + pb_below(&st, na - i);
			struct job *tmp = act[i];
			act[i] = act[k];
			act[k] = tmp;
		}
		uint64_t a = pb_ns();
		for (uint32_t i = 0; i < ncancel; i++) {
			struct err e;
			if ((rc = place_cancel(&f, &t, act[i], PB_NOW, &e)) < 0) {
				free(act);
				fprintf(stderr, "placebench: place_cancel: %s\n", e.message);
				goto out;
			}
		}
		uint64_t b = pb_ns();
		free(act);
		ch->cancelled = ncancel;
		ch->placed_before = t.nactive;
		int n = place_pass(&f, &t, PB_NOW, UINT32_MAX, NULL, NULL);
		uint64_t d = pb_ns();
		if (n < 0) {
			fprintf(stderr, "placebench: place_pass (churn): %d\n", n);
			goto out;
		}
		ch->tries = (uint32_t)n;
		ch->placed_after = t.nactive;
		ch->cancel_ms = (b - a) / 1e6;
		ch->pass_ms = (d - b) / 1e6;
	}
	pb_snapshot(&f, &t, &s_end);
	uint32_t bad = pb_check(&f, &t);
	uint32_t ndomains = f.ndomains, nnodes = f.nnodes, ndevices = f.ndevices;
	jobs_free(&t);
	fleet_free(&f);
	live = false;

	/* ---- run 2: same fleet, same jobs, place_try one job at a time in queue order ---- */
	struct pb_dist ld = {0}, ld_ok = {0}, ld_fail = {0};
	uint32_t lat_placed = 0;
	struct pb_class cls[PB_NCLASS] = {{0}};
	uint32_t cls_order[PB_NCLASS];
	uint64_t cls_total = 0;
	uint32_t futile = 0;            /* failed tries the root's headroom alone rules out */
	uint64_t futile_ns = 0;
	if (o.latency) {
		struct pb_mix mix2;
		fleet_init(&f);
		jobs_init(&t);
		live = true;
		if (pb_setup(&f, &t, &o, &mix2, NULL, NULL) < 0)
			goto out;
		uint32_t n = t.npending, nok = 0, nfail = 0;
		free(snap);
		snap = malloc((n + 1) * sizeof(*snap));
		lat = malloc((n + 1) * sizeof(*lat));
		lat_ok = malloc((n + 1) * sizeof(*lat_ok));
		lat_fail = malloc((n + 1) * sizeof(*lat_fail));
		if (!snap || !lat || !lat_ok || !lat_fail)
			goto nomem;
		memcpy(snap, t.pending, n * sizeof(*snap));
		for (uint32_t i = 0; i < n; i++) {
			int64_t root_room = power_headroom(&f, 0);
			int64_t floor_need = pb_floor_need(&f, snap[i]);
			bool hopeless = floor_need != INT64_MAX && floor_need > root_room;
			uint64_t a = pb_ns();
			rc = place_try(&f, &t, snap[i], PB_NOW);
			uint64_t d = pb_ns() - a;
			if (rc < 0) {
				fprintf(stderr, "placebench: place_try: %d\n", rc);
				goto out;
			}
			lat[i] = d;
			const struct job_request *rq = &snap[i]->req;
			struct pb_class *k = &cls[PB_CLASS(rq->topology, rq->cap_auto ? 2 : rq->cap_w ? 1 : 0,
							  rc == 0)];
			k->n++;
			k->ns += d;
			k->max_ns = d > k->max_ns ? d : k->max_ns;
			cls_total += d;
			if (hopeless && rc == 0) {
				fprintf(stderr, "placebench: job %" PRIu64 " placed past a full root\n",
					snap[i]->id);
				bad++;
			}
			if (hopeless) {
				futile++;
				futile_ns += d;
			}
			if (rc == 0)
				lat_ok[nok++] = d;
			else
				lat_fail[nfail++] = d;
		}
		lat_placed = nok;
		bad += pb_check(&f, &t);
		ld = pb_dist(lat, n);
		ld_ok = pb_dist(lat_ok, nok);
		ld_fail = pb_dist(lat_fail, nfail);
		jobs_free(&t);
		fleet_free(&f);
		live = false;
	}
	long rss_peak = pb_maxrss_kib();

	/* ---- report ---- */
	double place_rate = pass_s > 0 ? placed / pass_s : 0;
	double dec_rate = pass_s > 0 ? tries / pass_s : 0;
	double search_rate = pass_s > 0 ? (tries - s_pass.reserved_for_head) / pass_s : 0;
	printf("placebench: %u nodes x %u devices = %u devices, %u domains, %u models; %u jobs, "
	       "seed %" PRIu64 "\n",
	       nnodes, o.devices, ndevices, ndomains, (unsigned)PB_NMODELS, o.jobs, o.seed);
	printf("  mix: %u training / %u inference; capability %u, cap_w %u, cap auto %u, vendor %u, "
	       "models %u, preemptible %u; topology any %u same_rack %u same_group %u spread %u\n",
	       mix.training, mix.inference, mix.capability, mix.cap_w, mix.cap_auto, mix.vendor,
	       mix.models, mix.preemptible, mix.topo[TOPO_ANY], mix.topo[TOPO_SAME_RACK],
	       mix.topo[TOPO_SAME_GROUP], mix.topo[TOPO_SPREAD]);
	printf("  build: fleet_import %.1f ms, %u jobs_add %.1f ms; max RSS after build %ld KiB\n",
	       import_ms, o.jobs, jobs_ms, rss_built);
	printf("pass:    %u queued, %d tries (%u of them RESERVED_FOR_HEAD, no search), %u placed, "
	       "%" PRIu64 " preempted, in %.3f s\n",
	       queued, tries, s_pass.reserved_for_head, placed, requeues, pass_s);
	printf("         %.0f placements/s, %.0f decisions/s (%.0f/s counting searches only)\n",
	       place_rate, dec_rate, search_rate);
	printf("         pending after: %u (RESERVED_FOR_HEAD %u, POWER_BUDGET %u, "
	       "INSUFFICIENT_DEVICES %u, TOPOLOGY %u, other %u)\n",
	       s_pass.pending, s_pass.reserved_for_head, s_pass.reason_power, s_pass.reason_devices,
	       s_pass.reason_topology, s_pass.reason_other);
	printf("         devices allocated %.1f %%; domains > 95 %% of budget: %u "
	       "(site %u/%u, hall %u/%u, row %u/%u, rack %u/%u)\n",
	       100.0 * s_pass.alloc_devices / (ndevices ? ndevices : 1), s_pass.hot_total,
	       s_pass.hot[0], s_pass.per_level[0], s_pass.hot[1], s_pass.per_level[1],
	       s_pass.hot[2], s_pass.per_level[2], s_pass.hot[3], s_pass.per_level[3]);
	for (uint32_t q = 0; q < PB_NCLASS; q++)
		cls_order[q] = q;
	qsort_r(cls_order, PB_NCLASS, sizeof(*cls_order), pb_class_cmp, cls);
	printf("         site: reserved %" PRId64 " of %" PRId64 " W (headroom %" PRId64 " W)\n",
	       root_reserved, root_budget, root_budget - root_reserved);
	printf("         queue head after the pass: %s\n", head_text);
	if (o.latency)
		printf("try:     place_try one at a time, %u tries, %u placed, %.3f s: %.0f decisions/s; "
		       "ms p50 %.3f p99 %.3f max %.3f (placed: p50 %.3f p99 %.3f max %.3f; "
		       "not placed: p50 %.3f p99 %.3f max %.3f)\n",
		       ld.n, lat_placed, ld.total_s, ld.total_s > 0 ? ld.n / ld.total_s : 0, ld.p50_ms,
		       ld.p99_ms, ld.max_ms, ld_ok.p50_ms, ld_ok.p99_ms, ld_ok.max_ms, ld_fail.p50_ms,
		       ld_fail.p99_ms, ld_fail.max_ms);
	if (o.latency) {
		printf("         try time by class (topology/power/outcome: tries, share of time, "
		       "mean ms, max ms):\n");
		for (uint32_t q = 0; q < PB_NCLASS && q < 16; q++) {
			const struct pb_class *k = &cls[cls_order[q]];
			uint32_t id = cls_order[q];
			if (!k->n)
				break;
			printf("           %-10s %-5s %-6s %6u  %5.1f %%  %7.3f  %7.3f\n",
			       pb_topo_names[id / 6], pb_pmode_names[id / 2 % 3],
			       id % 2 ? "placed" : "failed", k->n, 100.0 * k->ns / (cls_total ? cls_total : 1),
			       k->ns / 1e6 / k->n, k->max_ns / 1e6);
		}
	}
	if (o.latency)
		printf("         %u failed tries (%.1f %% of try time) were for jobs whose minimum gang "
		       "at floor caps needs more watts than the site had left\n",
		       futile, 100.0 * futile_ns / (cls_total ? cls_total : 1));
	printf("explain: %u random pending jobs: ms p50 %.3f p99 %.3f max %.3f mean %.3f; verdicts",
	       nx, xd.p50_ms, xd.p99_ms, xd.max_ms, xd.mean_ms);
	for (uint32_t q = 0; q < PB_NX; q++)
		if (xcodes[q])
			printf(" %s %u", xnames[q], xcodes[q]);
	printf("\n         explain by topology (n, mean ms, max ms):");
	for (uint32_t q = 0; q < _TOPO_MAX; q++)
		if (xcls[q].n)
			printf(" %s %u %.3f %.3f;", pb_topo_names[q], xcls[q].n, xcls[q].ns / 1e6 / xcls[q].n,
			       xcls[q].max_ns / 1e6);
	printf("\n");
	for (uint32_t r = 0; r < o.churn_rounds; r++)
		printf("churn %u: cancelled %u of %u placed in %.1f ms; pass %.3f s, %u tries, "
		       "%u placed, %u active after\n",
		       r + 1, churn[r].cancelled, churn[r].placed_before + churn[r].cancelled,
		       churn[r].cancel_ms, churn[r].pass_ms / 1e3, churn[r].tries,
		       churn[r].placed_after - churn[r].placed_before, churn[r].placed_after);
	printf("end:     %u pending, %u active, %u cancelled; devices allocated %.1f %%; "
	       "domains > 95 %% of budget: %u (site %u, hall %u, row %u, rack %u)\n",
	       s_end.pending, s_end.active, s_end.cancelled,
	       100.0 * s_end.alloc_devices / (ndevices ? ndevices : 1), s_end.hot_total, s_end.hot[0],
	       s_end.hot[1], s_end.hot[2], s_end.hot[3]);
	printf("         peak RSS %ld KiB; invariants %s\n", rss_peak,
	       bad ? "VIOLATED" : "hold");

	if (o.json) {
		printf("{\"nodes\":%u,\"devices\":%u,\"domains\":%u,\"jobs\":%u,\"seed\":%" PRIu64
		       ",\"import_ms\":%.3f,\"pass\":{\"queued\":%u,\"tries\":%d,\"reserved_for_head\":%u,"
		       "\"placed\":%u,\"preempted\":%" PRIu64 ",\"seconds\":%.6f,\"placements_per_s\":%.1f,"
		       "\"decisions_per_s\":%.1f,\"searches_per_s\":%.1f,\"alloc_frac\":%.4f,"
		       "\"hot_domains\":%u}",
		       nnodes, ndevices, ndomains, o.jobs, o.seed, import_ms, queued, tries,
		       s_pass.reserved_for_head, placed, requeues, pass_s, place_rate, dec_rate,
		       search_rate, (double)s_pass.alloc_devices / (ndevices ? ndevices : 1),
		       s_pass.hot_total);
		if (o.latency)
			printf(",\"try\":{\"n\":%u,\"placed\":%u,\"seconds\":%.6f,\"p50_ms\":%.4f,"
			       "\"p99_ms\":%.4f,\"max_ms\":%.4f,\"placed_p99_ms\":%.4f,"
			       "\"failed_p99_ms\":%.4f,\"root_futile\":%u,\"root_futile_share\":%.4f}",
			       ld.n, lat_placed, ld.total_s, ld.p50_ms, ld.p99_ms, ld.max_ms, ld_ok.p99_ms,
			       ld_fail.p99_ms, futile, (double)futile_ns / (cls_total ? cls_total : 1));
		printf(",\"explain\":{\"n\":%u,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}", nx,
		       xd.p50_ms, xd.p99_ms, xd.max_ms);
		printf(",\"churn\":[");
		for (uint32_t r = 0; r < o.churn_rounds; r++)
			printf("%s{\"cancelled\":%u,\"pass_s\":%.6f,\"tries\":%u,\"placed\":%u}",
			       r ? "," : "", churn[r].cancelled, churn[r].pass_ms / 1e3, churn[r].tries,
			       churn[r].placed_after - churn[r].placed_before);
		printf("],\"end\":{\"pending\":%u,\"active\":%u,\"alloc_frac\":%.4f,\"hot_domains\":%u},"
		       "\"peak_rss_kib\":%ld,\"invariants_ok\":%s}\n",
		       s_end.pending, s_end.active,
		       (double)s_end.alloc_devices / (ndevices ? ndevices : 1), s_end.hot_total,
		       rss_peak, bad ? "false" : "true");
	}
	status = bad ? 1 : 0;
	goto out;
nomem:
	fprintf(stderr, "placebench: out of memory\n");
out:
	if (live) {
		jobs_free(&t);
		fleet_free(&f);
	}
	free(churn);
	free(snap);
	free(xlat);
	free(lat);
	free(lat_ok);
	free(lat_fail);
	return status;
}
