/*
 * place — first-fit placement under every constraint and the power ledger.
 *
 * Owns: the rules deciding which devices a job gets (see proto/API.md "Placement"), the
 * pending-queue pass, release and restore of placements.
 * Never: does I/O, reads a clock, leaves a gang half-placed, lets reserved watts exceed a
 * budget at any ancestor (every worker is checked with power_fits before fleet_alloc).
 *
 * A try works on one model at a time (every worker of a job uses the same model): it
 * collects the nodes whose free healthy devices of that model suffice for one worker (from
 * the free index, no full scan), then allocates workers tentatively, checking power for
 * each; if the gang cannot complete, the tentative allocations are rolled back (without
 * touching the epoch, so a failed try never makes other jobs retry).
 */
#include "place.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "power.h"

struct cand {
	uint32_t node;
	uint32_t key;        /* leaf domain or group rank, for same_rack/same_group */
};

struct attempt {
	struct fleet *f;
	struct job *j;
	uint16_t model;
	uint32_t cap_w;
	struct job_worker *w;  /* req.count entries */
	uint32_t placed;
	/* why the last try failed, for the reason string */
	bool power_blocked;
	uint32_t blocking_domain;
	int64_t blocking_need;
	uint32_t candidates;
	bool enough_devices;   /* some model had the devices, ignoring power and topology */
};

/* Is model m allowed for the request, and at which per-device cap? */
static bool model_allowed(const struct fleet *f, const struct job_request *r, uint16_t mi,
			  uint32_t *cap_w)
{
	const struct model *m = &f->models[mi];
	if (r->nmodels) {
		bool hit = false;
		for (uint32_t k = 0; k < r->nmodels && !hit; k++)
			hit = strcmp(r->models[k], m->name) == 0;
		if (!hit)
			return false;
	}
	if (r->nvendors) {
		bool hit = false;
		for (uint32_t k = 0; k < r->nvendors && !hit; k++)
			hit = strcmp(r->vendors[k], m->vendor) == 0;
		if (!hit)
			return false;
	}
	if (r->stack[0] && strcmp(r->stack, m->stack) != 0)
		return false;
	if (r->min_memory_gib > m->memory_gib)
		return false;
	if (r->fp8 && !(m->fp8_tflops > 0))
		return false;
	if (r->cap_w && r->cap_w < m->min_cap_w)
		return false;
	*cap_w = r->cap_w && r->cap_w < m->tdp_w ? r->cap_w : m->tdp_w;
	return true;
}

/* The lowest `n` set bits of `mask`. */
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

static void release_quiet(struct fleet *f, uint32_t node, uint64_t mask)
{
	uint64_t epoch = f->epoch;
	enum node_state st = f->nodes[node].state;
	fleet_release(f, node, mask);
	f->nodes[node].state = st;
	f->epoch = epoch;
}

static void rollback(struct attempt *a)
{
	while (a->placed > 0) {
		a->placed--;
		release_quiet(a->f, a->w[a->placed].node, a->w[a->placed].mask);
	}
}

/* Put `workers` more workers on node if devices and power allow; returns how many. */
static uint32_t fill_node(struct attempt *a, uint32_t node, uint32_t workers)
{
	struct fleet *f = a->f;
	const struct model *m = &f->models[a->model];
	uint32_t dev = a->j->req.devices, done = 0;
	int64_t need = power_alloc_delta(m, dev, a->cap_w);

	while (done < workers && a->placed < a->j->req.count) {
		uint64_t fm = free_mask(f, node, a->model);
		if ((uint32_t)__builtin_popcountll(fm) < dev)
			break;
		uint32_t blocking;
		if (!power_fits(f, f->nodes[node].domain, need, &blocking)) {
			a->power_blocked = true;
			a->blocking_domain = blocking;
			a->blocking_need = need;
			break;
		}
		uint64_t take = lowest_bits(fm, dev);
		struct job_worker *w = &a->w[a->placed];
		w->mask = take;
		w->node = node;
		w->cap_w = a->cap_w;
		w->model = a->model;
		fleet_alloc(f, node, take, a->j->id, a->placed, a->cap_w);
		a->placed++;
		done++;
	}
	return done;
}

/* Greedy over candidates [from, to): spread places one worker per node per round. */
static bool fill_range(struct attempt *a, const struct cand *c, uint32_t from, uint32_t to)
{
	bool spread = a->j->req.topology == TOPO_SPREAD;
	if (spread) {
		for (uint32_t i = from; i < to && a->placed < a->j->req.count; i++)
			fill_node(a, c[i].node, 1);
	}
	for (uint32_t i = from; i < to && a->placed < a->j->req.count; i++)
		fill_node(a, c[i].node, UINT32_MAX);
	return a->placed == a->j->req.count;
}

static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->node < b->node ? -1 : a->node > b->node;
}

/* Collect nodes with at least `need` free devices of the model, in index order. */
static int collect(const struct fleet *f, uint16_t model, uint32_t need, struct cand **out,
		   uint32_t *n)
{
	uint32_t cap = 0, cnt = 0;
	struct cand *c = NULL;
	for (uint32_t nfree = need; nfree <= FLEET_MAX_NODE_DEVICES; nfree++) {
		for (uint32_t s = fleet_bucket_first(f, model, nfree); s != FLEET_NONE;
		     s = f->slots[s].next) {
			if (cnt == cap) {
				uint32_t ncap = cap ? cap * 2 : 64;
				struct cand *nc = realloc(c, ncap * sizeof(*nc));
				if (!nc) {
					free(c);
					return -ENOMEM;
				}
				c = nc;
				cap = ncap;
			}
			c[cnt].node = f->slots[s].node;
			c[cnt].key = 0;
			cnt++;
		}
	}
	*out = c;
	*n = cnt;
	return 0;
}

/* Rank of a node's group name, so equal groups sort together. */
static uint32_t group_rank(const struct fleet *f, struct hmap *ranks, uint32_t node, uint32_t *next)
{
	const char *g = f->nodes[node].group;
	uint32_t v;
	if (!g || !*g)
		return UINT32_MAX - node; /* no group: a group of its own */
	if (hmap_get_str(ranks, g, &v))
		return v;
	if (hmap_put_str(ranks, g, *next) < 0)
		return UINT32_MAX - node;
	return (*next)++;
}

static int try_model(struct attempt *a)
{
	struct fleet *f = a->f;
	const struct job_request *r = &a->j->req;
	struct cand *c = NULL;
	uint32_t n = 0;
	int rc;

	a->placed = 0;
	if (r->topology == TOPO_SAME_NODE) {
		uint64_t total = (uint64_t)r->count * r->devices;
		if (total > FLEET_MAX_NODE_DEVICES)
			return 1;
		if ((rc = collect(f, a->model, (uint32_t)total, &c, &n)) < 0)
			return rc;
		a->candidates += n;
		a->enough_devices |= n > 0;
		for (uint32_t i = 0; i < n; i++) {
			fill_node(a, c[i].node, r->count);
			if (a->placed == r->count)
				break;
			rollback(a);
		}
		free(c);
		return a->placed == r->count ? 0 : 1;
	}
	if ((rc = collect(f, a->model, r->devices, &c, &n)) < 0)
		return rc;
	a->candidates += n;
	/* Not enough devices even ignoring power and topology: no need to try. */
	uint64_t room = 0;
	for (uint32_t i = 0; i < n && room < r->count; i++)
		room += (uint32_t)__builtin_popcountll(free_mask(f, c[i].node, a->model)) / r->devices;
	if (room < r->count) {
		free(c);
		return 1;
	}
	a->enough_devices = true;
	if (r->topology == TOPO_SAME_RACK || r->topology == TOPO_SAME_GROUP) {
		struct hmap ranks;
		uint32_t next = 0;
		hmap_init_str(&ranks);
		for (uint32_t i = 0; i < n; i++)
			c[i].key = r->topology == TOPO_SAME_RACK
					   ? f->nodes[c[i].node].domain
					   : group_rank(f, &ranks, c[i].node, &next);
		hmap_free(&ranks);
		qsort(c, n, sizeof(*c), cand_cmp);
		for (uint32_t i = 0; i < n;) {
			uint32_t end = i;
			while (end < n && c[end].key == c[i].key)
				end++;
			if (fill_range(a, c, i, end))
				break;
			rollback(a);
			i = end;
		}
	} else {
		if (!fill_range(a, c, 0, n))
			rollback(a);
	}
	free(c);
	return a->placed == r->count ? 0 : 1;
}

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

int place_try(struct fleet *f, struct jobs *t, struct job *j, int64_t now)
{
	struct attempt a = {.f = f, .j = j};
	bool any_model = false;
	int rc;

	if (j->state != JOB_PENDING)
		return ERR_CONFLICT;
	a.w = calloc(j->req.count, sizeof(*a.w));
	if (!a.w)
		return -ENOMEM;
	for (uint32_t m = 0; m < f->nmodels; m++) {
		if (!model_allowed(f, &j->req, (uint16_t)m, &a.cap_w))
			continue;
		any_model = true;
		a.model = (uint16_t)m;
		rc = try_model(&a);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			if ((rc = jobs_set_state(t, j, JOB_PLACED)) < 0) {
				rollback(&a);
				goto fail;
			}
			free(j->placement);
			j->placement = a.w;
			j->nplaced = a.placed;
			j->placed_at = now;
			free(j->reason);
			j->reason = NULL;
			return 0;
		}
	}
	free(a.w);
	j->tried_epoch = f->epoch;
	if (!any_model)
		rc = set_reason(j, "no model in the catalog matches the request");
	else if (!a.enough_devices)
		rc = set_reason(j, "not enough free devices: needs %u x %u of an allowed model",
				j->req.count, j->req.devices);
	else if (a.power_blocked)
		rc = set_reason(j, "power: domain %s has %lld W of headroom, a worker needs %lld W",
				f->domains[a.blocking_domain].name,
				(long long)(f->domains[a.blocking_domain].budget_w -
					    f->domains[a.blocking_domain].reserved_w),
				(long long)a.blocking_need);
	else if (j->req.topology == TOPO_SAME_NODE || j->req.topology == TOPO_SAME_RACK ||
		 j->req.topology == TOPO_SAME_GROUP)
		rc = set_reason(j, "topology %s: no single %s has %u x %u free devices",
				job_topology_name(j->req.topology),
				j->req.topology == TOPO_SAME_NODE    ? "node"
				: j->req.topology == TOPO_SAME_RACK ? "rack"
								    : "group",
				j->req.count, j->req.devices);
	else
		rc = set_reason(j, "not enough free devices: needs %u x %u of an allowed model",
				j->req.count, j->req.devices);
	return rc < 0 ? rc : 1;
fail:
	free(a.w);
	return rc;
}

void place_release(struct fleet *f, struct job *j)
{
	if (j->state != JOB_PLACED && j->state != JOB_RUNNING)
		return;
	for (uint32_t i = 0; i < j->nplaced; i++)
		fleet_release(f, j->placement[i].node, j->placement[i].mask);
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
		int64_t need = power_alloc_delta(&f->models[w->model],
						 (uint32_t)__builtin_popcountll(w->mask), w->cap_w);
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

int place_pass(struct fleet *f, struct jobs *t, int64_t now, uint32_t max_tries, place_cb cb,
	       void *ud)
{
	uint32_t tries = 0, i = 0;
	while (i < t->npending && tries < max_tries) {
		struct job *j = t->pending[i];
		if (j->tried_epoch == f->epoch) {
			i++;
			continue;
		}
		tries++;
		int rc = place_try(f, t, j, now);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			i++;
			continue;
		}
		if (cb && (rc = cb(ud, j)) != 0)
			return rc;
	}
	return (int)tries;
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
