/*
 * place — the placement engine.
 *
 * Owns: the rules that decide which devices a job gets, the scoring among the ways it
 * could be placed, the queue pass (priority, FIFO, backfill behind a reservation,
 * preemption), release, restore, and the dry runs explain uses.
 * Never: does I/O, reads a clock, leaves a gang half-placed, lets reserved watts exceed a
 * budget at any ancestor (every worker is checked with power_fits before fleet_alloc),
 * preempts equal or higher priority.
 *
 * How one try works. For every model the request allows (place_model_fits_request), an
 * *attempt* collects candidate nodes from the free index in best-fit order (fewest free
 * devices first, bounded by PLACE_SCAN_MAX), scores each node (tight fit, power headroom),
 * groups them by rack (or NVLink/HCCS group for same_group), orders the groups (fewest racks
 * for training, spread for inference, the tightest sufficient group for same_rack /
 * same_group), and allocates workers one by one, checking power for each. An attempt that
 * cannot complete is rolled back without touching the epoch. With "cap":"auto" a model
 * blocked by power is retried at lower caps (binary search down to the performance floor).
 * Every model that completed is scored (job score, below), rolled back, and the best is
 * placed again for real. Ties go to the lower model index, then node index: deterministic.
 *
 * Scores (all terms in [0, 1], weights in docs/placement.md):
 *   node  = 0.6 fit + 0.4 headroom, fit = 1 - free_after/devices_on_node,
 *           headroom = min over the node's domains of (budget - reserved - need) / budget
 *   job   = 0.35 efficiency + 0.25 fit + 0.20 headroom + 0.20 locality,
 *           efficiency = per-watt figure / best allowed model's (training: BF16 TFLOPS per W;
 *           inference: bandwidth per W; capability mode: 1 / watts for the need),
 *           locality = 1/racks used (training) or racks used/replicas (inference)
 */
#include "place.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "power.h"

#define PLACE_SCAN_MAX 4096          /* nodes examined per model per attempt */
#define PLACE_PERF_ALPHA 1.27        /* docs/power-model.md: p10 fit, rounded up (pessimistic) */
#define PLACE_PREEMPT_TRIES 8        /* preemption searches per pass */
#define PLACE_VICTIMS_MAX 64
#define PLACE_ESTIMATE_STEPS 512     /* running jobs released when estimating a start */
#define PLACE_GROW_TRIES 64          /* partially placed inference jobs grown per pass */
#define PLACE_RESERVATION_TTL_S 5    /* a head's estimated start is reused this long */

#define W_NODE_FIT 0.6
#define W_NODE_POWER 0.4
#define W_EFF 0.35
#define W_FIT 0.25
#define W_POWER 0.20
#define W_LOC 0.20

/* ---------------- models and caps ---------------- */

double place_perf(const struct model *m, uint32_t cap_w)
{
	if (cap_w >= m->tdp_w)
		return 1.0;
	return pow((double)cap_w / m->tdp_w, PLACE_PERF_ALPHA);
}

uint32_t place_auto_floor(const struct model *m, double min_perf)
{
	if (min_perf <= 0)
		return m->min_cap_w;
	if (min_perf >= 1)
		return m->tdp_w;
	uint32_t c = (uint32_t)ceil(m->tdp_w * pow(min_perf, 1.0 / PLACE_PERF_ALPHA));
	if (c < m->min_cap_w)
		c = m->min_cap_w;
	return c > m->tdp_w ? m->tdp_w : c;
}

static bool in_list(const char *name, const char *list, size_t stride, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++)
		if (strcmp(list + k * stride, name) == 0)
			return true;
	return false;
}

bool place_model_fits_request(const struct fleet *f, const struct job_request *r, uint16_t mi,
			      uint32_t *cap_w, uint32_t *devices)
{
	const struct model *m = &f->models[mi];
	if (r->nmodels && !in_list(m->name, &r->models[0][0], sizeof(r->models[0]), r->nmodels))
		return false;
	if (r->nvendors && !in_list(m->vendor, &r->vendors[0][0], sizeof(r->vendors[0]), r->nvendors))
		return false;
	if (r->stack[0] && strcmp(r->stack, m->stack) != 0)
		return false;
	if (r->min_memory_gib > m->memory_gib)
		return false;
	if ((r->fp8 || (r->capability && r->need.fp8)) && !(m->fp8_tflops > 0))
		return false;
	if (r->cap_w && r->cap_w < m->min_cap_w)
		return false;
	uint32_t n = r->devices;
	if (r->capability) {
		static const uint32_t sizes[] = {1, 2, 4, 8};
		n = 0;
		for (uint32_t k = 0; k < 4 && !n; k++) {
			uint32_t s = sizes[k];
			if ((uint64_t)s * m->memory_gib >= r->need.memory_gib &&
			    (uint64_t)s * m->bandwidth_gbs >= r->need.bandwidth_gbs &&
			    s * m->bf16_tflops >= r->need.bf16_tflops)
				n = s;
		}
		if (!n)
			return false;
	}
	*devices = n;
	*cap_w = r->cap_w && r->cap_w < m->tdp_w ? r->cap_w : m->tdp_w;
	return true;
}

/* ---------------- small helpers ---------------- */

static uint64_t lowest_bits(uint64_t mask, uint32_t n)
{
	uint64_t out = 0;
	while (n-- && mask) {
		uint64_t b = mask & (~mask + 1);
		out |= b;
		mask &= ~b;
	}
	return out;
}

static uint64_t free_mask(const struct fleet *f, uint32_t node, uint16_t model)
{
	const struct node *n = &f->nodes[node];
	for (uint32_t i = 0; i < n->nslots; i++) {
		const struct node_slot *s = &f->slots[n->first_slot + i];
		if (s->model == model)
			return s->mask & ~n->alloc_mask & n->healthy_mask;
	}
	return 0;
}

static uint32_t popc(uint64_t m) { return (uint32_t)__builtin_popcountll(m); }

/* Release without bumping the epoch or finishing a drain: a tentative step undone. */
static void release_quiet(struct fleet *f, uint32_t node, uint64_t mask)
{
	uint64_t epoch = f->epoch;
	enum node_state st = f->nodes[node].state;
	fleet_release(f, node, mask);
	f->nodes[node].state = st;
	f->epoch = epoch;
}

/* Smallest (budget - reserved - extra) / budget over the node's domains. */
static double headroom_frac(const struct fleet *f, uint32_t domain, int64_t extra)
{
	double best = 1.0;
	for (uint32_t d = domain; d != FLEET_NONE; d = f->domains[d].parent) {
		const struct domain *dm = &f->domains[d];
		double h = dm->budget_w > 0 ? (double)(dm->budget_w - dm->reserved_w - extra) / dm->budget_w
					    : 0.0;
		if (h < best)
			best = h;
	}
	return best < 0 ? 0 : best;
}

/* ---------------- attempts ---------------- */

struct cand {
	uint32_t node;
	uint32_t key;        /* leaf domain, or group rank for same_group */
	uint32_t room;       /* workers the node's free devices could hold */
	double score;
};

struct group {
	uint32_t start, end; /* range in the candidate array */
	uint32_t key;
	uint32_t room;
	uint32_t used;       /* replicas of this job already in it (grow, spread) */
};

struct attempt {
	struct fleet *f;
	const struct job *j;
	uint16_t model;
	uint32_t cap_w;
	uint32_t devices;
	uint32_t want;       /* workers to place in this attempt */
	int64_t worker_w;    /* watts one worker adds at the attempt's cap */
	uint32_t fixed_key;  /* growing a same_rack/same_group job: its rack/group; else NONE */
	uint32_t need;       /* fewest that count as success */
	struct job_worker *w;/* want entries */
	uint32_t placed;
	/* diagnostics, kept across models */
	bool power_blocked, enough_devices;
	uint32_t blocking_domain;
	int64_t blocking_need;
	/* scratch */
	struct cand *c;
	uint32_t nc, cc;
	struct group *g;
	uint32_t ng, cg;
};

static void attempt_free(struct attempt *a)
{
	free(a->c);
	free(a->g);
}

static void rollback(struct attempt *a)
{
	while (a->placed > 0) {
		a->placed--;
		release_quiet(a->f, a->w[a->placed].node, a->w[a->placed].mask);
	}
}

/* Put up to `workers` more workers on node while devices and power allow. */
static uint32_t fill_node(struct attempt *a, uint32_t node, uint32_t workers)
{
	struct fleet *f = a->f;
	const struct model *m = &f->models[a->model];
	int64_t need = power_alloc_delta(m, a->devices, a->cap_w);
	uint32_t done = 0;

	while (done < workers && a->placed < a->want) {
		uint64_t fm = free_mask(f, node, a->model);
		if (popc(fm) < a->devices)
			break;
		uint32_t blocking;
		if (!power_fits(f, f->nodes[node].domain, need, &blocking)) {
			a->power_blocked = true;
			a->blocking_domain = blocking;
			a->blocking_need = need;
			break;
		}
		uint64_t take = lowest_bits(fm, a->devices);
		struct job_worker *w = &a->w[a->placed];
		w->mask = take;
		w->node = node;
		w->cap_w = a->cap_w;
		w->model = a->model;
		fleet_alloc(f, node, take, a->j->id, a->j->nplaced + a->placed, a->cap_w);
		a->placed++;
		done++;
	}
	return done;
}

/* Does node already hold a worker of this job (this attempt or placed before)? */
static bool node_used(const struct attempt *a, uint32_t node)
{
	for (uint32_t k = 0; k < a->placed; k++)
		if (a->w[k].node == node)
			return true;
	for (uint32_t k = 0; k < a->j->nplaced; k++)
		if (a->j->placement[k].node == node)
			return true;
	return false;
}

static int cand_push(struct attempt *a, uint32_t node, uint32_t room)
{
	if (a->nc == a->cc) {
		uint32_t ncap = a->cc ? a->cc * 2 : 64;
		struct cand *n = realloc(a->c, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		a->c = n;
		a->cc = ncap;
	}
	a->c[a->nc++] = (struct cand){.node = node, .room = room};
	return 0;
}

enum grouping { GROUP_NONE, GROUP_RACK, GROUP_NVL };

static uint32_t key_of(const struct fleet *f, uint32_t node, enum grouping g)
{
	const struct node *n = &f->nodes[node];
	if (g == GROUP_NVL)
		return n->group_id != FLEET_NONE ? n->group_id : UINT32_MAX - 1 - node; /* alone */
	return n->domain;
}

/*
 * Candidates in best-fit order: nodes with at least `need_free` free devices of the model.
 * Ungrouped: stop once `enough` workers would fit on at least `min_nodes` nodes. Grouped
 * (same_rack / same_group): tally room per rack or group in the fleet's scratch counters
 * and stop once a few groups could each hold the job. Never more than PLACE_SCAN_MAX.
 */
static int collect(struct attempt *a, uint32_t need_free, uint32_t per_worker, uint64_t enough,
		   uint32_t min_nodes, enum grouping grouping, uint32_t *groups_ok, uint64_t *room_out)
{
	struct fleet *f = a->f;
	uint64_t room = 0;
	uint32_t sufficient = 0;
	int rc = 0;
	a->nc = 0;
	for (uint32_t nfree = need_free; nfree <= FLEET_MAX_NODE_DEVICES; nfree++) {
		for (uint32_t s = fleet_bucket_first(f, a->model, nfree); s != FLEET_NONE;
		     s = f->slots[s].next) {
			uint32_t node = f->slots[s].node, r = nfree / per_worker;
			if (a->fixed_key != FLEET_NONE && key_of(f, node, grouping) != a->fixed_key)
				continue;
			if ((rc = cand_push(a, node, r)) < 0)
				goto out;
			a->c[a->nc - 1].key = key_of(f, node, grouping);
			room += r;
			if (grouping != GROUP_NONE) {
				uint32_t k = a->c[a->nc - 1].key, total = r;
				if (k < f->scratch_cap) {
					uint32_t before = f->scratch[k];
					total = f->scratch[k] = before + r;
					if (before >= a->need)
						total = 0; /* already counted */
				}
				/* a rack counts only if its domains can take the whole gang */
				uint32_t blocking = k;
				if (total >= a->need && grouping == GROUP_RACK &&
				    !power_fits(f, k, (int64_t)a->need * a->worker_w, &blocking)) {
					a->power_blocked = true;
					a->blocking_domain = blocking; /* the rack or an ancestor */
					a->blocking_need = a->worker_w;
					total = 0;
				}
				/* a rack was power-checked for the whole gang: the first one will do;
				 * an NVLink group was not, so keep a few to choose from */
				if (total >= a->need &&
				    ++sufficient >= (grouping == GROUP_RACK ? 1u : 4u))
					goto out;
			} else if (enough && room >= enough && a->nc >= min_nodes) {
				goto out;
			}
			if (a->nc >= PLACE_SCAN_MAX)
				goto out;
		}
	}
out:
	if (room_out)
		*room_out = room;
	if (grouping != GROUP_NONE) {
		/* keep only candidates in racks/groups that can hold the job (no sort of the
		 * rest): mark them, clear every counter touched, then compact */
		for (uint32_t i = 0; i < a->nc; i++) {
			uint32_t k = a->c[i].key;
			uint32_t room_k = k < f->scratch_cap ? f->scratch[k] : a->c[i].room;
			a->c[i].score = room_k >= a->need ? 1 : 0;
		}
		for (uint32_t i = 0; i < a->nc; i++)
			if (a->c[i].key < f->scratch_cap)
				f->scratch[a->c[i].key] = 0;
		uint32_t kept = 0;
		for (uint32_t i = 0; i < a->nc; i++)
			if (a->c[i].score > 0)
				a->c[kept++] = a->c[i];
		a->nc = kept;
	}
	if (groups_ok)
		*groups_ok = sufficient;
	return rc;
}

static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

static int group_cmp_most_room(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->used != b->used)
		return a->used < b->used ? -1 : 1;
	if (a->room != b->room)
		return a->room > b->room ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

static int group_cmp_tightest(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->room != b->room)
		return a->room < b->room ? -1 : 1;
	return a->key < b->key ? -1 : a->key > b->key;
}

/* Score and sort the candidates (keys were set by collect); build the groups. */
static int arrange(struct attempt *a)
{
	const struct fleet *f = a->f;
	const struct model *m = &f->models[a->model];
	int64_t need = power_alloc_delta(m, a->devices, a->cap_w);

	for (uint32_t i = 0; i < a->nc; i++) {
		struct cand *c = &a->c[i];
		const struct node *n = &f->nodes[c->node];
		uint32_t nfree = popc(free_mask(f, c->node, a->model));
		double fit = 1.0 - (double)(nfree - a->devices) / (n->ndevices ? n->ndevices : 1);
		c->score = W_NODE_FIT * fit + W_NODE_POWER * headroom_frac(f, n->domain, need);
	}
	if (a->nc)
		qsort(a->c, a->nc, sizeof(*a->c), cand_cmp);
	a->ng = 0;
	for (uint32_t i = 0; i < a->nc;) {
		uint32_t end = i, room = 0;
		while (end < a->nc && a->c[end].key == a->c[i].key)
			room += a->c[end++].room;
		if (a->ng == a->cg) {
			uint32_t ncap = a->cg ? a->cg * 2 : 32;
			struct group *g = realloc(a->g, ncap * sizeof(*g));
			if (!g)
				return -ENOMEM;
			a->g = g;
			a->cg = ncap;
		}
		uint32_t used = 0;
		for (uint32_t k = 0; k < a->j->nplaced; k++)
			used += f->nodes[a->j->placement[k].node].domain == a->c[i].key;
		a->g[a->ng++] = (struct group){i, end, a->c[i].key, room, used};
		i = end;
	}
	return 0;
}

/* One attempt for the attempt's model, cap and device count; 0 placed (>= need), 1 not. */
static int run(struct attempt *a)
{
	const struct job_request *r = &a->j->req;
	int rc;

	a->placed = 0;
	a->worker_w = power_alloc_delta(&a->f->models[a->model], a->devices, a->cap_w);
	/* the whole fleet's spare watts bound any placement: no scan when they cannot do */
	int64_t spare = fleet_max_root_headroom(a->f);
	if (a->worker_w > 0 && spare < (int64_t)a->need * a->worker_w) {
		a->enough_devices |= fleet_model_room(a->f, a->model, a->devices) >= a->need;
		if (a->enough_devices && !a->power_blocked) {
			a->power_blocked = true;
			a->blocking_domain = a->f->roots[0];
			for (uint32_t i = 0; i < a->f->nroots; i++) {
				const struct domain *d = &a->f->domains[a->f->roots[i]];
				if (d->budget_w - d->reserved_w == spare)
					a->blocking_domain = a->f->roots[i];
			}
			a->blocking_need = a->worker_w;
		}
		return 1;
	}
	if (r->topology == TOPO_SAME_NODE) {
		/* the whole job (at least its minimum) on one node; a growing job on its node */
		uint64_t total = (uint64_t)a->need * a->devices;
		if (total > FLEET_MAX_NODE_DEVICES)
			return 1;
		a->enough_devices |= fleet_model_room(a->f, a->model, a->devices) >= a->need;
		if (a->j->nplaced > 0) {
			fill_node(a, a->j->placement[0].node, a->want);
			if (a->placed >= a->need)
				return 0;
			rollback(a);
			return 1;
		}
		/* candidates in best-fit order, tried as they come: no scoring sort (the tightest
		 * node that power allows wins; the scan is what finds power further on) */
		if ((rc = collect(a, (uint32_t)total, (uint32_t)total, 0, 0, GROUP_NONE, NULL,
				  NULL)) < 0)
			return rc;
		for (uint32_t i = 0; i < a->nc; i++) {
			fill_node(a, a->c[i].node, a->want);
			if (a->placed >= a->need)
				return 0;
			rollback(a);
		}
		return 1;
	}
	/* ignoring power and topology, is there room at all? (counters: no scan) */
	if (fleet_model_room(a->f, a->model, a->devices) < a->need)
		return 1;
	bool grouped = r->topology == TOPO_SAME_RACK || r->topology == TOPO_SAME_GROUP;
	/* a gang no rack or group could ever hold, even empty: no scan (TOPOLOGY) */
	if (grouped && a->j->nplaced == 0 &&
	    fleet_max_group_room(a->f, a->model, a->devices, r->topology == TOPO_SAME_RACK) < a->need) {
		a->enough_devices = true;
		return 1;
	}
	uint64_t enough = grouped ? 0 : (uint64_t)a->want * 2 + 8;
	uint32_t min_nodes = r->topology == TOPO_SPREAD ? a->want * 4 : 0;
	enum grouping grouping = r->topology == TOPO_SAME_RACK    ? GROUP_RACK
				 : r->topology == TOPO_SAME_GROUP ? GROUP_NVL
								  : GROUP_NONE;
	a->fixed_key = grouping != GROUP_NONE && a->j->nplaced > 0
			       ? key_of(a->f, a->j->placement[0].node, grouping)
			       : FLEET_NONE;
	uint32_t groups_ok = 0;
	uint64_t room = 0;
	if ((rc = collect(a, a->devices, a->devices, enough, min_nodes, grouping, &groups_ok,
			  &room)) < 0)
		return rc;
	if (room < a->need)
		return 1;
	a->enough_devices = true;
	if (grouping != GROUP_NONE && groups_ok == 0) {
		/* no rack or group has the devices, whatever the power: no need to sort */
		return 1;
	}
	if ((rc = arrange(a)) < 0)
		return rc;

	if (grouped) {
		/* the tightest group that can hold the whole gang */
		if (a->ng)
			qsort(a->g, a->ng, sizeof(*a->g), group_cmp_tightest);
		for (uint32_t gi = 0; gi < a->ng; gi++) {
			const struct group *g = &a->g[gi];
			if (g->room < a->need)
				continue;
			for (uint32_t i = g->start; i < g->end && a->placed < a->want; i++)
				fill_node(a, a->c[i].node, UINT32_MAX);
			if (a->placed >= a->need)
				return 0;
			rollback(a);
		}
		return 1;
	}
	/* racks with most room first (fewest racks for a gang; for spread, racks holding the
	 * fewest of this job's replicas first) */
	if (a->ng)
		qsort(a->g, a->ng, sizeof(*a->g), group_cmp_most_room);
	if (r->topology == TOPO_SPREAD) {
		/* round-robin: one per rack, then one per node, then fill */
		for (uint32_t round = 0; round < 2 && a->placed < a->want; round++)
			for (uint32_t gi = 0; gi < a->ng && a->placed < a->want; gi++) {
				const struct group *g = &a->g[gi];
				if (round == 0 && g->used)
					continue;
				for (uint32_t i = g->start; i < g->end && a->placed < a->want; i++) {
					if (node_used(a, a->c[i].node))
						continue;
					if (fill_node(a, a->c[i].node, 1) && round == 0)
						break;
				}
			}
	}
	for (uint32_t gi = 0; gi < a->ng && a->placed < a->want; gi++)
		for (uint32_t i = a->g[gi].start; i < a->g[gi].end && a->placed < a->want; i++)
			fill_node(a, a->c[i].node, UINT32_MAX);
	if (a->placed >= a->need)
		return 0;
	rollback(a);
	return 1;
}

/* Run at the model's starting cap; with "auto", search the highest cap that fits. */
static int run_model(struct attempt *a, uint32_t cap_start)
{
	const struct job_request *r = &a->j->req;
	const struct model *m = &a->f->models[a->model];
	int rc;

	a->cap_w = cap_start;
	a->power_blocked = false;
	if ((rc = run(a)) <= 0)
		return rc;
	if (!r->cap_auto || !a->power_blocked)
		return 1;
	uint32_t lo = place_auto_floor(m, r->min_perf);
	if (lo >= cap_start)
		return 1;
	a->cap_w = lo;
	if ((rc = run(a)) != 0)
		return rc;
	rollback(a);
	uint32_t good = lo, hi = cap_start - 1;
	while (good < hi) {
		uint32_t mid = good + (hi - good + 1) / 2;
		a->cap_w = mid;
		if ((rc = run(a)) < 0)
			return rc;
		if (rc == 0) {
			good = mid;
			rollback(a);
		} else {
			hi = mid - 1;
		}
	}
	a->cap_w = good;
	return run(a);
}

/* The winner of an evaluation, with the exact allocation it made (owned, may be NULL). */
struct choice {
	bool found;
	uint16_t model;
	uint32_t cap_w, devices;
	double score;
	struct job_worker *w;
	uint32_t placed;
};

/* The score of the attempt now allocated (before rollback). */
static double job_score(struct attempt *a, double eff)
{
	const struct fleet *f = a->f;
	double fit = 0, power = 1.0;
	uint32_t racks = 0;
	for (uint32_t i = 0; i < a->placed; i++) {
		const struct node *n = &f->nodes[a->w[i].node];
		uint32_t nfree = popc(free_mask(f, a->w[i].node, a->model));
		fit += 1.0 - (double)nfree / (n->ndevices ? n->ndevices : 1);
		double h = headroom_frac(f, n->domain, 0);
		if (h < power)
			power = h;
		bool seen = false;
		for (uint32_t k = 0; k < i && !seen; k++)
			seen = f->nodes[a->w[k].node].domain == n->domain;
		racks += !seen;
	}
	fit /= a->placed ? a->placed : 1;
	double loc = a->j->req.kind == JOB_TRAINING ? 1.0 / (racks ? racks : 1)
						    : (double)racks / (a->placed ? a->placed : 1);
	return W_EFF * eff + W_FIT * fit + W_POWER * power + W_LOC * loc;
}

static double raw_eff(const struct job_request *r, const struct model *m, uint32_t cap,
		      uint32_t devices)
{
	if (r->capability)
		return 1.0 / ((double)devices * cap);
	return r->kind == JOB_TRAINING ? m->bf16_tflops / cap : (double)m->bandwidth_gbs / cap;
}

/*
 * Evaluate every allowed model (or only `only_model`), leaving nothing allocated; fill
 * *best. cap_override > 0 replaces the starting cap. want/need: workers to place / the
 * fewest that count.
 */
static int evaluate(struct attempt *a, uint32_t only_model, uint32_t cap_override,
		    bool any_success, struct choice *best)
{
	const struct fleet *f = a->f;
	struct {
		uint16_t model;
		uint32_t cap, devices, placed;
		double eff, partial;
		struct job_worker *w;
	} ok[64];
	uint32_t nok = 0;
	double best_eff = 0;
	int rc = 0;

	best->found = false;
	best->w = NULL;
	for (uint32_t m = 0; m < f->nmodels; m++) {
		uint32_t cap, devices;
		if (only_model != FLEET_NONE && m != only_model)
			continue;
		if (!place_model_fits_request(f, &a->j->req, (uint16_t)m, &cap, &devices))
			continue;
		if (cap_override) {
			if (cap_override < f->models[m].min_cap_w)
				continue;
			cap = cap_override < f->models[m].tdp_w ? cap_override : f->models[m].tdp_w;
		}
		a->model = (uint16_t)m;
		a->devices = devices;
		if ((rc = run_model(a, cap)) < 0)
			goto out;
		if (rc == 1)
			continue;
		double eff = raw_eff(&a->j->req, &f->models[m], a->cap_w, devices);
		double partial = job_score(a, 0);
		/* keep the exact allocation: a rerun after rollbacks could see the free index in
		 * another order and choose other (equally valid) devices */
		struct job_worker *copy = malloc(a->placed * sizeof(*copy));
		if (copy)
			memcpy(copy, a->w, a->placed * sizeof(*copy));
		uint32_t placed = a->placed;
		rollback(a);
		if (!copy) {
			rc = -ENOMEM;
			goto out;
		}
		if (nok < 64) {
			ok[nok].model = (uint16_t)m;
			ok[nok].cap = a->cap_w;
			ok[nok].devices = devices;
			ok[nok].eff = eff;
			ok[nok].partial = partial;
			ok[nok].w = copy;
			ok[nok].placed = placed;
			nok++;
		} else {
			free(copy);
		}
		if (eff > best_eff)
			best_eff = eff;
		if (any_success)
			break;
	}
	rc = 0;
	for (uint32_t i = 0; i < nok; i++) {
		double s = ok[i].partial + W_EFF * (best_eff > 0 ? ok[i].eff / best_eff : 1.0);
		if (!best->found || s > best->score + 1e-12) {
			best->found = true;
			best->model = ok[i].model;
			best->cap_w = ok[i].cap;
			best->devices = ok[i].devices;
			best->score = s;
			best->w = ok[i].w;
			best->placed = ok[i].placed;
		}
	}
out:
	for (uint32_t i = 0; i < nok; i++)
		if (!best->found || ok[i].w != best->w)
			free(ok[i].w);
	if (rc < 0) {
		best->found = false;
		best->w = NULL;
	}
	return rc;
}

static int attempt_init(struct attempt *a, struct fleet *f, const struct job *j, uint32_t want,
			uint32_t need)
{
	memset(a, 0, sizeof(*a));
	a->f = f;
	a->j = j;
	a->want = want;
	a->need = need;
	a->fixed_key = FLEET_NONE;
	a->w = calloc(want ? want : 1, sizeof(*a->w));
	return a->w ? 0 : -ENOMEM;
}

/* ---------------- reasons ---------------- */

static int set_reason(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_reason(struct job *j, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (j->reason && strcmp(j->reason, buf) == 0)
		return 0;
	char *c = strdup(buf);
	if (!c)
		return -ENOMEM;
	free(j->reason);
	j->reason = c;
	return 0;
}

static void failure_text(const struct fleet *f, const struct job *j, const struct attempt *a,
			 bool any_model, char *buf, size_t n)
{
	const struct job_request *r = &j->req;
	uint32_t need = r->min_count ? r->min_count : r->count;
	if (!any_model) {
		snprintf(buf, n, "NO_MODEL_MATCH: no model in the catalog matches the request");
	} else if (!a->enough_devices) {
		if (r->capability)
			snprintf(buf, n, "INSUFFICIENT_DEVICES: not enough free devices for %u "
				 "workers of any allowed model", need);
		else
			snprintf(buf, n, "INSUFFICIENT_DEVICES: needs %u x %u free devices of an "
				 "allowed model", need, r->devices);
	} else if (a->power_blocked) {
		const struct domain *d = &f->domains[a->blocking_domain];
		snprintf(buf, n, "POWER_BUDGET: domain %s has %lld W of headroom; a worker needs "
			 "%lld W, the job %lld W", d->name, (long long)(d->budget_w - d->reserved_w),
			 (long long)a->blocking_need, (long long)a->blocking_need * need);
	} else if (r->topology == TOPO_SAME_NODE || r->topology == TOPO_SAME_RACK ||
		   r->topology == TOPO_SAME_GROUP) {
		snprintf(buf, n, "TOPOLOGY: no single %s can hold the whole job",
			 r->topology == TOPO_SAME_NODE   ? "node"
			 : r->topology == TOPO_SAME_RACK ? "rack"
							 : "group");
	} else {
		snprintf(buf, n, "GANG_INCOMPLETE: free devices are too scattered for %u workers",
			 need);
	}
}

static bool any_model_allowed(const struct fleet *f, const struct job *j)
{
	for (uint32_t m = 0; m < f->nmodels; m++) {
		uint32_t cap, dev;
		if (place_model_fits_request(f, &j->req, (uint16_t)m, &cap, &dev))
			return true;
	}
	return false;
}

/* ---------------- commit ---------------- */

/* Apply the evaluated winner's exact allocation and record it in the job. The state is
 * what it was when the winner was found (everything since was rolled back), so every
 * device is free and every domain has the watts; a violation is a bug (-EIO). */
static int commit(struct fleet *f, struct jobs *t, struct job *j, const struct choice *c,
		  int64_t now, bool grow)
{
	int rc;
	for (uint32_t i = 0; i < c->placed; i++) {
		const struct job_worker *w = &c->w[i];
		if (w->mask & f->nodes[w->node].alloc_mask ||
		    !power_fits(f, f->nodes[w->node].domain,
				power_alloc_delta(&f->models[w->model], popc(w->mask), w->cap_w), NULL)) {
			while (i-- > 0)
				release_quiet(f, c->w[i].node, c->w[i].mask);
			return -EIO;
		}
		fleet_alloc(f, w->node, w->mask, j->id, j->nplaced + i, w->cap_w);
	}
	if (!j->placement)
		j->placement = calloc(j->req.count, sizeof(*j->placement));
	if (!j->placement || (!grow && (rc = jobs_set_state(t, j, JOB_PLACED)) < 0)) {
		for (uint32_t i = 0; i < c->placed; i++)
			release_quiet(f, c->w[i].node, c->w[i].mask);
		return -ENOMEM;
	}
	memcpy(j->placement + j->nplaced, c->w, c->placed * sizeof(*c->w));
	j->nplaced += c->placed;
	if (!grow) {
		j->placed_at = now;
		free(j->reason);
		j->reason = NULL;
	}
	return 0;
}

static bool sticky_reason(const char *r)
{
	static const char *const codes[] = {"PREEMPTED", "PLACED_TIMEOUT", "DEVICE_FAILED",
					    "NODE_DOWN"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strncmp(r, codes[i], strlen(codes[i])) == 0)
			return true;
	return false;
}

int place_try(struct fleet *f, struct jobs *t, struct job *j, int64_t now)
{
	struct attempt a;
	struct choice c;
	char why[256];
	int rc;

	if (j->state != JOB_PENDING)
		return ERR_CONFLICT;
	uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
	if ((rc = attempt_init(&a, f, j, j->req.count, need)) < 0)
		return rc;
	j->nplaced = 0;
	j->last_nplaced = 0;
	if ((rc = evaluate(&a, FLEET_NONE, 0, false, &c)) < 0)
		goto out;
	if (c.found) {
		rc = commit(f, t, j, &c, now, false);
		free(c.w);
		goto out;
	}
	j->tried_epoch = f->epoch;
	failure_text(f, j, &a, any_model_allowed(f, j), why, sizeof(why));
	/* a job sent back (preempted, timed out, device failed, node down) keeps saying why
	 * until it runs again; explain has the live diagnosis */
	rc = j->reason && j->requeues && !j->placed_at && sticky_reason(j->reason)
		     ? 0
		     : set_reason(j, "%s", why);
	rc = rc < 0 ? rc : 1;
out:
	free(a.w);
	attempt_free(&a);
	return rc;
}

static int would_fit(struct fleet *f, const struct job *j, uint32_t cap_override,
		     uint16_t *model_out, uint32_t *cap_out);

int place_would_fit(struct fleet *f, const struct job *j, uint32_t cap_override,
		    uint16_t *model_out, uint32_t *cap_out)
{
	struct fleet_order order;
	if (fleet_order_save(f, &order) < 0)
		return -ENOMEM;
	int rc = would_fit(f, j, cap_override, model_out, cap_out);
	fleet_order_restore(f, &order);
	return rc;
}

static int would_fit(struct fleet *f, const struct job *j, uint32_t cap_override,
		     uint16_t *model_out, uint32_t *cap_out)
{
	struct attempt a;
	struct choice c;
	uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
	int rc;

	if ((rc = attempt_init(&a, f, j, j->req.count, need)) < 0)
		return rc;
	rc = evaluate(&a, FLEET_NONE, cap_override, false, &c);
	free(c.w);
	free(a.w);
	attempt_free(&a);
	if (rc < 0)
		return rc;
	if (c.found && model_out)
		*model_out = c.model;
	if (c.found && cap_out)
		*cap_out = c.cap_w;
	return c.found ? 1 : 0;
}

static int diagnose(struct fleet *f, const struct job *j, char *buf, size_t n);

int place_diagnose(struct fleet *f, const struct job *j, char *buf, size_t n)
{
	struct fleet_order order;
	if (fleet_order_save(f, &order) < 0)
		return -ENOMEM;
	int rc = diagnose(f, j, buf, n);
	fleet_order_restore(f, &order);
	return rc;
}

static int diagnose(struct fleet *f, const struct job *j, char *buf, size_t n)
{
	struct attempt a;
	struct choice c;
	uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
	int rc;
	if ((rc = attempt_init(&a, f, j, j->req.count, need)) < 0)
		return rc;
	rc = evaluate(&a, FLEET_NONE, 0, false, &c);
	free(c.w);
	if (rc == 0 && !c.found)
		failure_text(f, j, &a, any_model_allowed(f, j), buf, n);
	free(a.w);
	attempt_free(&a);
	return rc < 0 ? rc : c.found;
}

/* Quick check used inside searches: any model, first success. */
static int fits_quick(struct fleet *f, const struct job *j)
{
	struct attempt a;
	struct choice c;
	uint32_t need = j->req.min_count ? j->req.min_count : j->req.count;
	int rc;
	if ((rc = attempt_init(&a, f, j, j->req.count, need)) < 0)
		return rc;
	rc = evaluate(&a, FLEET_NONE, 0, true, &c);
	free(c.w);
	free(a.w);
	attempt_free(&a);
	return rc < 0 ? rc : c.found;
}

/* ---------------- release, restore, requeue, cancel ---------------- */

void place_release(struct fleet *f, struct job *j)
{
	if (!job_state_active(j->state))
		return;
	for (uint32_t i = 0; i < j->nplaced; i++)
		fleet_release(f, j->placement[i].node, j->placement[i].mask);
}

/* Tentatively release / re-take an active job's devices (searches undo what they do). */
static void unhold(struct fleet *f, const struct job *j)
{
	for (uint32_t i = 0; i < j->nplaced; i++)
		release_quiet(f, j->placement[i].node, j->placement[i].mask);
}

static void rehold(struct fleet *f, const struct job *j)
{
	for (uint32_t i = 0; i < j->nplaced; i++)
		fleet_alloc(f, j->placement[i].node, j->placement[i].mask, j->id, i,
			    j->placement[i].cap_w);
}

int place_restore(struct fleet *f, struct job *j, struct err *e)
{
	uint32_t i;
	for (i = 0; i < j->nplaced; i++) {
		const struct job_worker *w = &j->placement[i];
		if (w->node >= f->nnodes) {
			err_set(e, ERR_CONFLICT, NULL, "job %llu: unknown node", (unsigned long long)j->id);
			goto fail;
		}
		const struct node *n = &f->nodes[w->node];
		uint64_t own = n->ndevices == 64 ? UINT64_MAX : (1ull << n->ndevices) - 1;
		if ((w->mask & ~own) || (w->mask & n->alloc_mask) || w->mask == 0) {
			err_set(e, ERR_CONFLICT, NULL, "job %llu worker %u: devices on %s are "
				"unknown or already held", (unsigned long long)j->id, i, n->name);
			goto fail;
		}
		for (uint32_t k = 0; k < n->ndevices; k++)
			if ((w->mask & (1ull << k)) && f->devices[n->first_device + k].model != w->model) {
				err_set(e, ERR_CONFLICT, NULL, "job %llu worker %u: device %u on %s "
					"is not a %s", (unsigned long long)j->id, i, k, n->name,
					f->models[w->model].name);
				goto fail;
			}
		int64_t need = power_alloc_delta(&f->models[w->model], popc(w->mask), w->cap_w);
		if (!power_fits(f, n->domain, need, NULL)) {
			err_set(e, ERR_CONFLICT, NULL, "job %llu worker %u: power budget exceeded",
				(unsigned long long)j->id, i);
			goto fail;
		}
		fleet_alloc(f, w->node, w->mask, j->id, i, w->cap_w);
	}
	return 0;
fail:
	while (i-- > 0)
		release_quiet(f, j->placement[i].node, j->placement[i].mask);
	return ERR_CONFLICT;
}

int place_requeue(struct fleet *f, struct jobs *t, struct job *j, const char *reason)
{
	if (!job_state_active(j->state))
		return 0;
	char *r = strdup(reason);
	if (!r)
		return -ENOMEM;
	place_release(f, j);
	int rc = jobs_set_state(t, j, JOB_PENDING);
	if (rc < 0) {
		rehold(f, j); /* unchanged */
		free(r);
		return rc;
	}
	j->last_nplaced = j->nplaced;
	j->nplaced = 0;
	j->placed_at = 0;
	j->tried_epoch = 0;
	j->requeues++;
	free(j->reason);
	j->reason = r;
	return 0;
}

int place_cancel(struct fleet *f, struct jobs *t, struct job *j, int64_t now, struct err *e)
{
	if (job_state_finished(j->state))
		return err_set(e, ERR_CONFLICT, NULL, "job %llu is already %s",
			       (unsigned long long)j->id, job_state_name(j->state));
	place_release(f, j);
	int rc = jobs_set_state(t, j, JOB_CANCELLED);
	if (rc < 0)
		return err_set(e, rc, NULL, "out of memory");
	j->finished_at = now;
	return 0;
}

int place_report(struct fleet *f, struct jobs *t, struct job *j, enum job_state to, int64_t now,
		 struct err *e)
{
	if (to != JOB_RUNNING && to != JOB_SUCCEEDED && to != JOB_FAILED)
		return err_set(e, ERR_INVALID, "state", "must be running, succeeded or failed");
	bool ok = (j->state == JOB_PLACED && to != JOB_PLACED) ||
		  (j->state == JOB_RUNNING && to != JOB_RUNNING);
	if (!ok)
		return err_set(e, ERR_CONFLICT, "state", "job %llu is %s; it cannot become %s",
			       (unsigned long long)j->id, job_state_name(j->state), job_state_name(to));
	if (to != JOB_RUNNING)
		place_release(f, j);
	int rc = jobs_set_state(t, j, to);
	if (rc < 0) {
		if (to != JOB_RUNNING)
			rehold(f, j);
		return err_set(e, rc, NULL, "out of memory");
	}
	if (to != JOB_RUNNING)
		j->finished_at = now;
	return 0;
}

/* ---------------- estimates and victims ---------------- */

static int by_end(const void *x, const void *y)
{
	const struct job *a = *(struct job *const *)x, *b = *(struct job *const *)y;
	int64_t ea = job_estimated_end(a), eb = job_estimated_end(b);
	if (ea != eb)
		return ea < eb ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

static int estimate_start(struct fleet *f, const struct jobs *t, const struct job *j,
			  int64_t now, int64_t *start, uint64_t *after_job);

int place_estimate_start(struct fleet *f, const struct jobs *t, const struct job *j,
			 int64_t now, int64_t *start, uint64_t *after_job)
{
	struct fleet_order order;
	if (fleet_order_save(f, &order) < 0)
		return -ENOMEM;
	int rc = estimate_start(f, t, j, now, start, after_job);
	fleet_order_restore(f, &order);
	return rc;
}

static int estimate_start(struct fleet *f, const struct jobs *t, const struct job *j,
			  int64_t now, int64_t *start, uint64_t *after_job)
{
	int rc = fits_quick(f, j);
	if (rc != 0) {
		if (rc > 0) {
			*start = now;
			*after_job = 0;
		}
		return rc;
	}
	uint32_t n = t->nactive < PLACE_ESTIMATE_STEPS ? t->nactive : PLACE_ESTIMATE_STEPS;
	struct job **order = malloc((t->nactive + 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	if (t->nactive) {
		memcpy(order, t->active, t->nactive * sizeof(*order));
		qsort(order, t->nactive, sizeof(*order), by_end);
	}
	uint32_t released = 0;
	rc = 0;
	for (uint32_t i = 0; i < n; i++) {
		unhold(f, order[i]);
		released++;
		if (i + 1 < n && job_estimated_end(order[i + 1]) == job_estimated_end(order[i]))
			continue;
		int fit = fits_quick(f, j);
		if (fit < 0) {
			rc = fit;
			break;
		}
		if (fit) {
			int64_t end = job_estimated_end(order[i]);
			*start = end > now ? end : now;
			*after_job = order[i]->id;
			rc = 1;
			break;
		}
	}
	while (released-- > 0)
		rehold(f, order[released]);
	free(order);
	return rc;
}

static uint32_t held_devices(const struct job *j)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < j->nplaced; i++)
		n += popc(j->placement[i].mask);
	return n;
}

struct victim_key {
	struct job *j;
	int32_t priority;
	uint32_t devices;
};

static int victim_order(const void *x, const void *y)
{
	const struct victim_key *a = x, *b = y;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	if (a->devices != b->devices)
		return a->devices > b->devices ? -1 : 1;
	return a->j->id > b->j->id ? -1 : a->j->id < b->j->id;
}

/* Could freeing victim's devices help `want`? Only if they are of a model `want` may use. */
static bool may_help(const struct fleet *f, const struct job *victim, const struct job *want)
{
	for (uint32_t i = 0; i < victim->nplaced; i++) {
		uint32_t cap, dev;
		if (place_model_fits_request(f, &want->req, victim->placement[i].model, &cap, &dev))
			return true;
	}
	return false;
}

static int find_victims(struct fleet *f, const struct jobs *t, const struct job *j,
			struct job **out, uint32_t max, bool *fits);

int place_find_victims(struct fleet *f, const struct jobs *t, const struct job *j,
		       struct job **out, uint32_t max, bool *fits)
{
	struct fleet_order order;
	*fits = false;
	if (fleet_order_save(f, &order) < 0)
		return -ENOMEM;
	int rc = find_victims(f, t, j, out, max, fits);
	fleet_order_restore(f, &order);
	return rc;
}

static int find_victims(struct fleet *f, const struct jobs *t, const struct job *j,
			struct job **out, uint32_t max, bool *fits)
{
	struct job **cands = malloc((t->nactive + 1) * sizeof(*cands));
	struct victim_key *keys = malloc((t->nactive + 1) * sizeof(*keys));
	bool *kept = NULL;
	uint32_t nc = 0, released = 0, nv = 0;
	int rc = 0;

	*fits = false;
	if (!cands || !keys) {
		free(cands);
		free(keys);
		return -ENOMEM;
	}
	/* only jobs whose devices the preemptor could use: freeing others cannot make it fit
	 * (the power they would free is shared only within their racks: a documented limit) */
	for (uint32_t i = 0; i < t->nactive; i++) {
		struct job *v = t->active[i];
		if (v->preemptible && v->priority < j->priority && may_help(f, v, j))
			keys[nc++] = (struct victim_key){v, v->priority, held_devices(v)};
	}
	if (nc)
		qsort(keys, nc, sizeof(*keys), victim_order);
	if (nc > PLACE_VICTIMS_MAX)
		nc = PLACE_VICTIMS_MAX;
	for (uint32_t i = 0; i < nc; i++)
		cands[i] = keys[i].j;
	free(keys);
	kept = calloc(nc + 1, sizeof(*kept));
	if (!kept) {
		rc = -ENOMEM;
		goto out;
	}
	/* would even all of them make room? one check instead of one per victim when not */
	for (uint32_t i = 0; i < nc; i++)
		unhold(f, cands[i]);
	int all = nc ? fits_quick(f, j) : 0;
	for (uint32_t i = nc; i-- > 0;)
		rehold(f, cands[i]);
	if (all <= 0) {
		rc = all;
		goto out;
	}
	for (uint32_t i = 0; i < nc && !*fits; i++) {
		unhold(f, cands[i]);
		released++;
		int fit = fits_quick(f, j);
		if (fit < 0) {
			rc = fit;
			goto restore;
		}
		*fits = fit == 1;
	}
	if (!*fits)
		goto restore;
	/* prune: give back every victim the job can do without (first chosen first) */
	for (uint32_t i = 0; i < released; i++) {
		rehold(f, cands[i]);
		int fit = fits_quick(f, j);
		if (fit < 0) {
			rc = fit;
			unhold(f, cands[i]);
			goto restore;
		}
		if (fit)
			kept[i] = true;
		else
			unhold(f, cands[i]);
	}
	for (uint32_t i = 0; i < released; i++)
		if (!kept[i] && nv < max)
			out[nv++] = cands[i];
	rc = (int)nv;
restore:
	for (uint32_t i = released; i-- > 0;)
		if (!kept[i])
			rehold(f, cands[i]);
	if (rc <= 0)
		*fits = false;
out:
	free(kept);
	free(cands);
	return rc;
}

/* ---------------- the pass ---------------- */

/* Could a and b ever want devices of the same model? (Backfill only holds back a job that
 * could take the head's devices; the power two models share through a rack is not
 * modelled here, a documented limit.) */
static bool shares_models(const struct fleet *f, const struct job *a, const struct job *b)
{
	for (uint32_t m = 0; m < f->nmodels; m++) {
		uint32_t cap, dev;
		if (place_model_fits_request(f, &a->req, (uint16_t)m, &cap, &dev) &&
		    place_model_fits_request(f, &b->req, (uint16_t)m, &cap, &dev))
			return true;
	}
	return false;
}

static int preempt_for(struct fleet *f, struct jobs *t, struct job *j, int64_t now, place_cb cb,
		       void *ud)
{
	struct job *victims[PLACE_VICTIMS_MAX];
	bool fits;
	char reason[128];
	int n = place_find_victims(f, t, j, victims, PLACE_VICTIMS_MAX, &fits);
	if (n <= 0)
		return n;
	snprintf(reason, sizeof(reason), "PREEMPTED: by job %llu (priority %d)",
		 (unsigned long long)j->id, j->priority);
	for (int i = 0; i < n; i++) {
		int rc = place_requeue(f, t, victims[i], reason);
		if (rc < 0)
			return rc;
		if (cb && (rc = cb(ud, victims[i])) != 0)
			return rc;
	}
	int rc = place_try(f, t, j, now);
	return rc < 0 ? rc : rc == 0;
}

static int grow(struct fleet *f, struct jobs *t, struct job *j, int64_t now)
{
	struct attempt a;
	struct choice c = {.found = true};
	int rc;
	if (j->nplaced == 0 || j->nplaced >= j->req.count)
		return 1;
	if ((rc = attempt_init(&a, f, j, j->req.count - j->nplaced, 1)) < 0)
		return rc;
	c.model = j->placement[0].model;
	c.cap_w = j->placement[0].cap_w;
	c.devices = popc(j->placement[0].mask);
	a.model = c.model;
	a.devices = c.devices;
	a.cap_w = c.cap_w;
	rc = run(&a);
	if (rc == 0) {
		/* keep this allocation: copy it into the choice, undo, apply it exactly */
		c.w = a.w;
		c.placed = a.placed;
		struct job_worker *keep = malloc(a.placed * sizeof(*keep));
		if (!keep) {
			rollback(&a);
			rc = -ENOMEM;
		} else {
			memcpy(keep, a.w, a.placed * sizeof(*keep));
			rollback(&a);
			c.w = keep;
			rc = commit(f, t, j, &c, now, true);
			free(keep);
		}
	}
	free(a.w);
	attempt_free(&a);
	return rc;
}

int place_pass(struct fleet *f, struct jobs *t, int64_t now, uint32_t max_tries, place_cb cb,
	       void *ud)
{
	uint32_t tries = 0, i = 0, preempt_left = PLACE_PREEMPT_TRIES;
	struct job *head = NULL;       /* the highest job still blocked */
	bool res_known = false, res_valid = false;
	int64_t res_start = 0;
	uint64_t res_after = 0;
	int32_t min_victim_prio = INT32_MAX;
	uint32_t estimates = 0;
	int rc;

	for (uint32_t k = 0; k < t->nactive; k++)
		if (t->active[k]->preemptible && t->active[k]->priority < min_victim_prio)
			min_victim_prio = t->active[k]->priority;

	while (i < t->npending && tries < max_tries) {
		struct job *j = t->pending[i];
		if (j->tried_epoch == f->epoch) {
			if (!head)
				head = j;
			i++;
			continue;
		}
		tries++;
		if (head && shares_models(f, head, j)) {
			if (!res_known) {
				res_known = true;
				struct job_reservation *c = &t->res[estimates ? 1 : 0];
				if (c->head == head->id && now - c->at < PLACE_RESERVATION_TTL_S &&
				    now >= c->at) {
					/* the same question, asked moments ago: capacity that changed
					 * since moves the answer by less than the TTL, and the head
					 * itself is retried first whenever the epoch moved */
					rc = c->valid;
					res_start = c->start;
					res_after = c->after;
				} else {
					rc = place_estimate_start(f, t, head, now, &res_start, &res_after);
					if (rc < 0)
						return rc;
					*c = (struct job_reservation){head->id, res_start, now, res_after,
								      rc == 1};
				}
				res_valid = rc == 1;
				/* a head that can never start holds nobody back; the next blocked
				 * job may take the reservation instead (bounded: two estimates) */
				if (!res_valid && ++estimates < 2) {
					head = NULL;
					res_known = false;
				}
			}
			int64_t dur = j->req.duration_s > 0 ? j->req.duration_s : JOB_DEFAULT_DURATION_S;
			/* held back only if it would fit now: otherwise its own reason stands */
			if (res_valid && head && now + dur > res_start &&
			    (rc = place_would_fit(f, j, 0, NULL, NULL)) != 0) {
				if (rc < 0)
					return rc;
				j->tried_epoch = f->epoch;
				if ((rc = set_reason(j, "RESERVED_FOR_HEAD: waiting behind job %llu, "
						     "estimated to start in %lld s",
						     (unsigned long long)head->id,
						     (long long)(res_start - now))) < 0)
					return rc;
				i++;
				continue;
			}
		}
		rc = place_try(f, t, j, now);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			if (cb && (rc = cb(ud, j)) != 0)
				return rc;
			continue; /* j left the queue: pending[i] is the next job */
		}
		if (j->priority > min_victim_prio && preempt_left > 0) {
			preempt_left--;
			rc = preempt_for(f, t, j, now, cb, ud);
			if (rc < 0)
				return rc;
			if (rc == 1) {
				if (cb && (rc = cb(ud, j)) != 0)
					return rc;
				/* victims re-entered the queue and the epoch moved: start over */
				i = 0;
				head = NULL;
				res_known = false;
				continue;
			}
		}
		if (!head)
			head = j;
		i++;
	}
	/* grow inference jobs placed below their replica count */
	uint32_t grown = 0;
	for (uint32_t k = 0; k < t->nactive && grown < PLACE_GROW_TRIES; k++) {
		struct job *j = t->active[k];
		if (j->nplaced >= j->req.count || j->tried_epoch == f->epoch)
			continue;
		grown++;
		uint32_t before = j->nplaced;
		if ((rc = grow(f, t, j, now)) < 0)
			return rc;
		if (j->nplaced > before && cb && (rc = cb(ud, j)) != 0)
			return rc;
		if (j->nplaced < j->req.count)
			j->tried_epoch = f->epoch;
	}
	return (int)tries;
}
