/*
 * capacity — computes the capacity planners' picture (capacity.h states the rules).
 *
 * Owns: nothing between calls: each call allocates its scratch and its result, and frees
 * the scratch before returning (on every path).
 * Never: reads a device record, changes the fleet or the jobs, allocates on the error path
 * beyond what it frees, leaves *out half-written.
 * Invariant relied on: a node's slots' masks partition its device indexes, and the free
 * index files each slot under popcount(mask & ~alloc_mask & healthy_mask) when its node is
 * up (fleet.h), so slot popcounts and fleet_model_room agree with a device-by-device count.
 */
#include "capacity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "place.h"

const uint32_t capacity_gang_sizes[CAPACITY_GANG_SIZES] = {1, 2, 4, 8};

static const char *const group_names[_CAPACITY_GROUP_MAX] = {"model", "vendor", "domain",
							      "queue"};

const char *capacity_group_name(enum capacity_group g)
{
	return (unsigned)g < _CAPACITY_GROUP_MAX ? group_names[g] : "?";
}

int capacity_group_parse(const char *s, enum capacity_group *out)
{
	for (int g = 0; g < _CAPACITY_GROUP_MAX; g++)
		if (strcmp(s, group_names[g]) == 0) {
			*out = (enum capacity_group)g;
			return 0;
		}
	return ERR_INVALID;
}

void capacity_free(struct capacity *c)
{
	if (!c)
		return;
	free(c->rows);
	c->rows = NULL;
	c->nrows = 0;
}

static uint64_t popc(uint64_t m) { return (uint64_t)__builtin_popcountll(m); }

/* The sequential power walk: of n devices below `dom` each needing `per` more watts, how
 * many fit in what is left of every domain up the chain; takes their watts from it. */
static uint64_t take(const struct fleet *f, int64_t *rem, uint32_t dom, uint64_t n, int64_t per)
{
	if (n == 0 || per <= 0)
		return n;
	int64_t avail = INT64_MAX;
	for (uint32_t d = dom; d != FLEET_NONE; d = f->domains[d].parent)
		if (rem[d] < avail)
			avail = rem[d];
	if (avail <= 0)
		return 0;
	uint64_t k = (uint64_t)(avail / per);
	if (k > n)
		k = n;
	if (k)
		for (uint32_t d = dom; d != FLEET_NONE; d = f->domains[d].parent)
			rem[d] -= (int64_t)k * per;
	return k;
}

static void dev_add(struct capacity_devices *a, const struct capacity_devices *b)
{
	a->total += b->total;
	a->allocated += b->allocated;
	a->free += b->free;
	a->unhealthy += b->unhealthy;
	a->draining += b->draining;
}

static void demand_add(struct capacity_demand *d, const struct job *j, uint32_t devices_here)
{
	const struct job_request *r = &j->req;
	d->jobs++;
	if (r->capability) {
		d->cap_jobs++;
		d->cap_workers += r->count;
		d->cap_memory_gib += (uint64_t)r->count * r->need.memory_gib;
		d->cap_bandwidth_gbs += (uint64_t)r->count * r->need.bandwidth_gbs;
		d->cap_bf16_tflops += (double)r->count * r->need.bf16_tflops;
		d->cap_devices += (uint64_t)r->count * devices_here;
	} else {
		d->devices += (uint64_t)r->count * r->devices;
	}
	if (d->jobs == 1 || j->submitted_at < d->oldest_submitted_at)
		d->oldest_submitted_at = j->submitted_at;
}

/* Merge a shape's demand into a row; devices_here: per worker on the row's model (model
 * rows), applied to the shape's capability workers. */
static void demand_merge(struct capacity_demand *d, const struct capacity_demand *s,
			 uint32_t devices_here)
{
	if (!s->jobs)
		return;
	if (!d->jobs || s->oldest_submitted_at < d->oldest_submitted_at)
		d->oldest_submitted_at = s->oldest_submitted_at;
	d->jobs += s->jobs;
	d->devices += s->devices;
	d->cap_jobs += s->cap_jobs;
	d->cap_workers += s->cap_workers;
	d->cap_memory_gib += s->cap_memory_gib;
	d->cap_bandwidth_gbs += s->cap_bandwidth_gbs;
	d->cap_bf16_tflops += s->cap_bf16_tflops;
	d->cap_devices += s->cap_workers * devices_here;
}

/*
 * Request shapes: pending jobs whose requests place_model_fits_request cannot tell apart
 * (same models, vendors, stack, memory, FP8, cap_w and capability need) share one entry, so
 * the "could use" test runs once per shape and model, not once per job and model.
 */
struct shape {
	uint64_t hash;
	const struct job_request *rep;   /* NULL = empty slot */
	struct capacity_demand dem;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return mix(h, 0xff);
}

static uint64_t shape_hash(const struct job_request *r)
{
	uint64_t h = 0xcbf29ce484222325ull, bf;
	double b = r->capability ? r->need.bf16_tflops : 0;
	memcpy(&bf, &b, sizeof(bf));
	h = mix(h, (uint64_t)r->min_memory_gib << 32 | r->cap_w);
	h = mix(h, (uint64_t)r->fp8 | (uint64_t)r->capability << 1 |
		       (uint64_t)(r->capability && r->need.fp8) << 2);
	if (r->capability)
		h = mix(mix(h, (uint64_t)r->need.memory_gib << 32 | r->need.bandwidth_gbs), bf);
	h = mix_str(h, r->stack);
	for (uint32_t i = 0; i < r->nvendors; i++)
		h = mix_str(h, r->vendors[i]);
	h = mix(h, r->nvendors);
	for (uint32_t i = 0; i < r->nmodels; i++)
		h = mix_str(h, r->models[i]);
	return mix(h, r->nmodels);
}

static bool shape_eq(const struct job_request *a, const struct job_request *b)
{
	if (a->min_memory_gib != b->min_memory_gib || a->cap_w != b->cap_w || a->fp8 != b->fp8 ||
	    a->capability != b->capability || a->nvendors != b->nvendors ||
	    a->nmodels != b->nmodels || strcmp(a->stack, b->stack) != 0)
		return false;
	if (a->capability && (a->need.memory_gib != b->need.memory_gib ||
			      a->need.bandwidth_gbs != b->need.bandwidth_gbs ||
			      a->need.bf16_tflops != b->need.bf16_tflops || a->need.fp8 != b->need.fp8))
		return false;
	for (uint32_t i = 0; i < a->nvendors; i++)
		if (strcmp(a->vendors[i], b->vendors[i]) != 0)
			return false;
	for (uint32_t i = 0; i < a->nmodels; i++)
		if (strcmp(a->models[i], b->models[i]) != 0)
			return false;
	return true;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Scratch of one computation; every pointer NULL or owned. */
struct scratch {
	struct capacity_row *mrow;     /* per model */
	struct capacity_row *vrow;     /* per vendor */
	uint32_t *vid;                 /* model → vendor row */
	uint32_t nvendors;
	uint64_t *vseen;               /* per vendor: last pending index + 1 counted */
	struct capacity_row *drow;     /* per domain (group_by domain) */
	uint32_t *order, *first, *next;/* domain preorder, children lists */
	int64_t *rem;                  /* 2 × ndomains: headroom left at TDP, at min cap */
	struct capacity_row *qrow;     /* per queue (group_by queue) */
	const char **qname;
	uint32_t nqueues;
	struct shape *shapes;          /* open addressing, nshape_slots a power of two */
	uint32_t nshape_slots;
	struct hmap qmap;
	bool qmap_init;
};

static void scratch_free(struct scratch *s)
{
	free(s->mrow);
	free(s->vrow);
	free(s->vid);
	free(s->vseen);
	free(s->drow);
	free(s->order);
	free(s->first);
	free(s->next);
	free(s->rem);
	free(s->qrow);
	free(s->qname);
	free(s->shapes);
	if (s->qmap_init)
		hmap_free(&s->qmap);
}

/* Double the shape table (it stays at most half full). */
static int shapes_grow(struct scratch *s)
{
	uint32_t n = s->nshape_slots * 2;
	struct shape *t;
	if (n < s->nshape_slots || !(t = calloc(n, sizeof(*t))))
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nshape_slots; i++) {
		if (!s->shapes[i].rep)
			continue;
		uint32_t k = (uint32_t)s->shapes[i].hash & (n - 1);
		while (t[k].rep)
			k = (k + 1) & (n - 1);
		t[k] = s->shapes[i];
	}
	free(s->shapes);
	s->shapes = t;
	s->nshape_slots = n;
	return 0;
}

static void row_flags(struct capacity_row *r, bool dev, bool dem, bool frag, bool power,
		      bool active)
{
	r->has_devices = dev;
	r->has_demand = dem;
	r->has_frag = frag;
	r->has_power = power;
	r->has_active = active;
	r->parent = FLEET_NONE;
}

/* Vendors in order of first appearance in the catalog. */
static int vendors_build(const struct fleet *f, struct scratch *s)
{
	s->vid = calloc(f->nmodels + 1, sizeof(*s->vid));
	s->vrow = calloc(f->nmodels + 1, sizeof(*s->vrow));
	s->vseen = calloc(f->nmodels + 1, sizeof(*s->vseen));
	if (!s->vid || !s->vrow || !s->vseen)
		return -ENOMEM;
	for (uint32_t m = 0; m < f->nmodels; m++) {
		uint32_t v;
		for (v = 0; v < s->nvendors; v++)
			if (strcmp(s->vrow[v].name, f->models[m].vendor) == 0)
				break;
		if (v == s->nvendors) {
			row_flags(&s->vrow[v], true, true, true, false, false);
			s->vrow[v].name = f->models[m].vendor;
			s->nvendors++;
		}
		s->vid[m] = v;
	}
	return 0;
}

/* Domain preorder (parents before children, siblings in creation order), depths. */
static int domains_order(const struct fleet *f, struct scratch *s)
{
	uint32_t n = f->ndomains, roots = FLEET_NONE, roots_last = FLEET_NONE, k = 0;
	uint32_t *last = NULL;
	s->order = malloc((n + 1) * sizeof(*s->order));
	s->first = malloc((n + 1) * sizeof(*s->first));
	s->next = malloc((n + 1) * sizeof(*s->next));
	last = malloc((n + 1) * sizeof(*last));
	if (!s->order || !s->first || !s->next || !last) {
		free(last);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		s->first[i] = s->next[i] = last[i] = FLEET_NONE;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t p = f->domains[i].parent;
		uint32_t *head = p == FLEET_NONE ? &roots : &s->first[p];
		uint32_t *tail = p == FLEET_NONE ? &roots_last : &last[p];
		if (*head == FLEET_NONE)
			*head = i;
		else
			s->next[*tail] = i;
		*tail = i;
	}
	free(last);
	for (uint32_t d = roots; d != FLEET_NONE && k < n;) {
		uint32_t p = f->domains[d].parent;
		s->order[k++] = d;
		s->drow[d].depth = p == FLEET_NONE ? 0 : s->drow[p].depth + 1;
		if (s->first[d] != FLEET_NONE) {
			d = s->first[d];
			continue;
		}
		while (d != FLEET_NONE && s->next[d] == FLEET_NONE)
			d = f->domains[d].parent;
		if (d != FLEET_NONE)
			d = s->next[d];
	}
	return (int)k; /* = n: the parents form a forest (fleet.h) */
}

/* Queues of pending and active jobs, rows sorted by name. */
static int queues_build(const struct jobs *t, struct scratch *s)
{
	uint32_t cap = t->npending + t->nactive + 1, v;
	hmap_init_str(&s->qmap);
	s->qmap_init = true;
	if (!(s->qname = malloc(cap * sizeof(*s->qname))))
		return -ENOMEM;
	for (uint32_t i = 0; i < t->npending + t->nactive; i++) {
		const struct job *j = i < t->npending ? t->pending[i] : t->active[i - t->npending];
		if (hmap_get_str(&s->qmap, j->queue, &v))
			continue;
		if (hmap_put_str(&s->qmap, j->queue, s->nqueues) < 0)
			return -ENOMEM;
		s->qname[s->nqueues++] = j->queue;
	}
	qsort(s->qname, s->nqueues, sizeof(*s->qname), cmp_str_ptr);
	if (!(s->qrow = calloc(s->nqueues + 1, sizeof(*s->qrow))))
		return -ENOMEM;
	for (uint32_t q = 0; q < s->nqueues; q++) {
		if (hmap_put_str(&s->qmap, s->qname[q], q) < 0) /* replaces: no allocation */
			return -ENOMEM;
		row_flags(&s->qrow[q], false, true, false, false, true);
		s->qrow[q].name = s->qname[q];
	}
	return 0;
}

static uint32_t queue_of(const struct scratch *s, const struct job *j)
{
	uint32_t q = 0;
	hmap_get_str(&s->qmap, j->queue, &q); /* every queue was interned */
	return q;
}

int capacity_compute(const struct fleet *f, const struct jobs *t, enum capacity_group by,
		     int32_t depth, struct capacity *out)
{
	struct scratch s = {0};
	struct capacity c = {.by = by, .depth = depth};
	struct capacity_row *tot = &c.totals;
	const bool by_domain = by == CAPACITY_BY_DOMAIN;
	int rc = -ENOMEM;

	if ((unsigned)by >= _CAPACITY_GROUP_MAX || depth < -1 || depth > CAPACITY_MAX_DEPTH ||
	    (depth >= 0 && !by_domain))
		return ERR_INVALID;
	row_flags(tot, true, true, true, true, true);
	if (!(s.mrow = calloc(f->nmodels + 1, sizeof(*s.mrow))) ||
	    !(s.rem = malloc((2 * (size_t)f->ndomains + 1) * sizeof(*s.rem))))
		goto fail;
	for (uint32_t m = 0; m < f->nmodels; m++) {
		row_flags(&s.mrow[m], true, true, true, false, false);
		s.mrow[m].name = f->models[m].name;
		s.mrow[m].vendor = f->models[m].vendor;
	}
	if (vendors_build(f, &s) < 0)
		goto fail;
	if (by_domain) {
		if (!(s.drow = calloc(f->ndomains + 1, sizeof(*s.drow))) ||
		    domains_order(f, &s) < 0)
			goto fail;
	}
	if (by == CAPACITY_BY_QUEUE && queues_build(t, &s) < 0)
		goto fail;

	/* ---- devices and the power walk, slot by slot ---- */
	int64_t *rem_tdp = s.rem, *rem_min = s.rem + f->ndomains;
	for (uint32_t d = 0; d < f->ndomains; d++)
		rem_tdp[d] = rem_min[d] = f->domains[d].budget_w - f->domains[d].reserved_w;
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		const bool up = nd->state == NODE_UP;
		for (uint32_t k = 0; k < nd->nslots; k++) {
			const struct node_slot *sl = &f->slots[nd->first_slot + k];
			const struct model *md = &f->models[sl->model];
			struct capacity_row *mr = &s.mrow[sl->model];
			uint64_t idle_ok = sl->mask & ~nd->alloc_mask & nd->healthy_mask;
			struct capacity_devices dv = {
				.total = popc(sl->mask),
				.allocated = popc(sl->mask & nd->alloc_mask),
				.free = up ? popc(idle_ok) : 0,
				.unhealthy = popc(sl->mask & ~nd->healthy_mask),
				.draining = up ? 0 : popc(idle_ok),
			};
			uint64_t st_tdp = take(f, rem_tdp, nd->domain, dv.free,
					       (int64_t)md->tdp_w - md->idle_w);
			uint64_t st_min = take(f, rem_min, nd->domain, dv.free,
					       (int64_t)md->min_cap_w - md->idle_w);
			dev_add(&mr->dev, &dv);
			mr->startable_tdp += st_tdp;
			mr->startable_min_cap += st_min;
			if (dv.total >= CAPACITY_WHOLE_NODE && dv.free == dv.total)
				mr->whole_nodes_free++;
			if (by_domain) {
				struct capacity_row *dr = &s.drow[nd->domain];
				dev_add(&dr->dev, &dv);
				dr->startable_tdp += st_tdp;
				dr->startable_min_cap += st_min;
			}
		}
	}
	for (uint32_t m = 0; m < f->nmodels; m++) {
		struct capacity_row *mr = &s.mrow[m], *vr = &s.vrow[s.vid[m]];
		for (uint32_t g = 0; g < CAPACITY_GANG_SIZES; g++) {
			mr->max_workers[g] = fleet_model_room(f, (uint16_t)m, capacity_gang_sizes[g]);
			if (mr->max_workers[g] > vr->max_workers[g])
				vr->max_workers[g] = mr->max_workers[g];
			if (mr->max_workers[g] > tot->max_workers[g])
				tot->max_workers[g] = mr->max_workers[g];
		}
		dev_add(&vr->dev, &mr->dev);
		dev_add(&tot->dev, &mr->dev);
		vr->startable_tdp += mr->startable_tdp;
		vr->startable_min_cap += mr->startable_min_cap;
		vr->whole_nodes_free += mr->whole_nodes_free;
		tot->startable_tdp += mr->startable_tdp;
		tot->startable_min_cap += mr->startable_min_cap;
		tot->whole_nodes_free += mr->whole_nodes_free;
	}

	/* ---- power: the roots in the totals, every domain for group_by domain ---- */
	for (uint32_t i = 0; i < f->nroots; i++) {
		const struct domain *d = &f->domains[f->roots[i]];
		tot->budget_w += d->budget_w;
		tot->reserved_w += d->reserved_w;
		tot->headroom_w += d->budget_w - d->reserved_w;
		if (d->measured_at) {
			tot->measured = true;
			tot->measured_w += d->measured_w;
		}
	}
	if (by_domain) {
		for (uint32_t i = 0; i < f->ndomains; i++) {
			uint32_t d = s.order[i], p = f->domains[d].parent;
			struct capacity_row *dr = &s.drow[d];
			row_flags(dr, true, false, false, true, false);
			dr->name = f->domains[d].name;
			dr->parent = p;
			dr->budget_w = f->domains[d].budget_w;
			dr->reserved_w = f->domains[d].reserved_w;
			dr->headroom_w = dr->budget_w - dr->reserved_w;
			dr->measured = f->domains[d].measured_at != 0;
			dr->measured_w = f->domains[d].measured_w;
			dr->usable_headroom_w = dr->headroom_w;
			if (p != FLEET_NONE && s.drow[p].usable_headroom_w < dr->usable_headroom_w)
				dr->usable_headroom_w = s.drow[p].usable_headroom_w;
		}
		/* children before parents: each subtree's sums into its parent */
		for (uint32_t i = f->ndomains; i-- > 0;) {
			uint32_t d = s.order[i], p = f->domains[d].parent;
			if (p == FLEET_NONE)
				continue;
			dev_add(&s.drow[p].dev, &s.drow[d].dev);
			s.drow[p].startable_tdp += s.drow[d].startable_tdp;
			s.drow[p].startable_min_cap += s.drow[d].startable_min_cap;
		}
	}

	/* ---- demand: pending jobs ---- */
	const bool per_model = by == CAPACITY_BY_MODEL || by == CAPACITY_BY_VENDOR;
	uint32_t nshapes = 0;
	s.nshape_slots = 256;
	if (!(s.shapes = calloc(s.nshape_slots, sizeof(*s.shapes))))
		goto fail;
	for (uint32_t i = 0; i < t->npending; i++) {
		const struct job *j = t->pending[i];
		if (by == CAPACITY_BY_QUEUE)
			demand_add(&s.qrow[queue_of(&s, j)].dem, j, 0);
		if (2 * (nshapes + 1) > s.nshape_slots && shapes_grow(&s) < 0)
			goto fail;
		uint64_t h = shape_hash(&j->req);
		uint32_t k = (uint32_t)h & (s.nshape_slots - 1);
		while (s.shapes[k].rep &&
		       (s.shapes[k].hash != h || !shape_eq(s.shapes[k].rep, &j->req)))
			k = (k + 1) & (s.nshape_slots - 1);   /* at most half full */
		if (!s.shapes[k].rep) {
			s.shapes[k].hash = h;
			s.shapes[k].rep = &j->req;
			nshapes++;
		}
		demand_add(&s.shapes[k].dem, j, 1);     /* cap_devices = workers, scaled below */
	}
	for (uint32_t k = 0; k < s.nshape_slots; k++) {
		const struct shape *sh = &s.shapes[k];
		if (!sh->rep)
			continue;
		demand_merge(&tot->dem, &sh->dem, 0);
		if (!per_model)
			continue;
		for (uint32_t v = 0; v < s.nvendors; v++)
			s.vseen[v] = 0;
		for (uint32_t m = 0; m < f->nmodels; m++) {
			uint32_t cap_w, devs;
			if (!place_model_fits_request(f, sh->rep, (uint16_t)m, &cap_w, &devs))
				continue;
			demand_merge(&s.mrow[m].dem, &sh->dem, devs);
			if (!s.vseen[s.vid[m]]) {
				s.vseen[s.vid[m]] = 1;
				demand_merge(&s.vrow[s.vid[m]].dem, &sh->dem, 0);
			}
		}
	}

	/* ---- active jobs: what each queue holds ---- */
	for (uint32_t i = 0; i < t->nactive; i++) {
		const struct job *j = t->active[i];
		uint64_t held = 0;
		for (uint32_t w = 0; w < j->nplaced; w++)
			held += popc(j->placement[w].mask);
		tot->active_jobs++;
		tot->active_devices += held;
		if (by == CAPACITY_BY_QUEUE) {
			struct capacity_row *qr = &s.qrow[queue_of(&s, j)];
			qr->active_jobs++;
			qr->active_devices += held;
		}
	}

	/* ---- the rows asked for ---- */
	switch (by) {
	case CAPACITY_BY_MODEL:
		c.rows = s.mrow;
		c.nrows = f->nmodels;
		s.mrow = NULL;
		break;
	case CAPACITY_BY_VENDOR:
		c.rows = s.vrow;
		c.nrows = s.nvendors;
		s.vrow = NULL;
		break;
	case CAPACITY_BY_QUEUE:
		c.rows = s.qrow;
		c.nrows = s.nqueues;
		s.qrow = NULL;
		break;
	case CAPACITY_BY_DOMAIN: {
		uint32_t k = 0;
		if (!(c.rows = malloc((f->ndomains + 1) * sizeof(*c.rows))))
			goto fail;
		for (uint32_t i = 0; i < f->ndomains; i++) {
			const struct capacity_row *dr = &s.drow[s.order[i]];
			if (depth < 0 || dr->depth == (uint32_t)depth)
				c.rows[k++] = *dr;
		}
		c.nrows = k;
		break;
	}
	default:
		break;
	}
	scratch_free(&s);
	*out = c;
	return 0;
fail:
	scratch_free(&s);
	capacity_free(&c);
	return rc;
}
