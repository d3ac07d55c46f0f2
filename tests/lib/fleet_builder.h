/*
 * fleet_builder — a test fixture that builds a struct fleet_doc from compact C calls and
 * checks a fleet's invariants from scratch.
 *
 * Owns: fixed-size arrays for one document (models, domains, nodes, device lists) and a
 * string pool for generated names; everything lives inside struct fleet_builder, so a
 * builder on the stack needs no cleanup.
 * Never: allocates, calls Check (callers assert on the results), reaches into the fleet
 * except to read it.
 *
 *   struct fleet_builder b;
 *   fb_init(&b);
 *   fb_model(&b, "H100", 70, 700, 200)->fp8_tflops = 1979;
 *   fb_domain(&b, "hall", NULL, 100000);
 *   fb_domain(&b, "rack", "hall", 40000);
 *   fb_node(&b, "n1", "rack", "g1", 1500, "H100", 8);
 *   fb_node_devs(&b, "A100", 2);          // a second device list on the last node
 *   rc = fb_import(&f, &b, &e);
 *
 * Running out of room in a builder is a bug in the test: it aborts.
 */
#ifndef JOULE_TEST_FLEET_BUILDER_H
#define JOULE_TEST_FLEET_BUILDER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

#define FB_MAX_MODELS 16
#define FB_MAX_DOMAINS 64
#define FB_MAX_NODES 160
#define FB_MAX_DEVS 320
#define FB_POOL 8192

struct fleet_builder {
	struct model models[FB_MAX_MODELS];
	uint32_t nmodels;
	struct fleet_domain_spec domains[FB_MAX_DOMAINS];
	uint32_t ndomains;
	struct fleet_node_spec nodes[FB_MAX_NODES];
	uint32_t nnodes;
	struct fleet_device_spec devs[FB_MAX_DEVS];
	uint32_t ndevs;
	char pool[FB_POOL];
	size_t pool_used;
};

static inline void fb_init(struct fleet_builder *b)
{
	memset(b, 0, sizeof(*b));
}

static inline void fb_room(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fleet_builder: out of room for %s\n", what);
		abort();
	}
}

/* A printf-formatted string that lives as long as the builder. */
static inline const char *fb_str(struct fleet_builder *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline const char *fb_str(struct fleet_builder *b, const char *fmt, ...)
{
	char *s = b->pool + b->pool_used;
	size_t room = sizeof(b->pool) - b->pool_used;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, room, fmt, ap);
	va_end(ap);
	fb_room(n >= 0 && (size_t)n < room, "strings");
	b->pool_used += (size_t)n + 1;
	return s;
}

/* A model with vendor "nvidia", stack "cuda", 80 GiB, no FP8; tweak through the pointer. */
static inline struct model *fb_model(struct fleet_builder *b, const char *name, uint32_t idle_w,
				     uint32_t tdp_w, uint32_t min_cap_w)
{
	fb_room(b->nmodels < FB_MAX_MODELS, "models");
	struct model *m = &b->models[b->nmodels++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->vendor, sizeof(m->vendor), "nvidia");
	snprintf(m->stack, sizeof(m->stack), "cuda");
	m->memory_gib = 80;
	m->bandwidth_gbs = 2000;
	m->bf16_tflops = 500;
	m->fp8_tflops = 0;
	m->idle_w = idle_w;
	m->tdp_w = tdp_w;
	m->min_cap_w = min_cap_w;
	return m;
}

/* A model with every field given. */
static inline struct model *fb_model_full(struct fleet_builder *b, const char *name,
					  const char *vendor, const char *stack,
					  uint32_t memory_gib, double fp8_tflops, uint32_t idle_w,
					  uint32_t tdp_w, uint32_t min_cap_w)
{
	struct model *m = fb_model(b, name, idle_w, tdp_w, min_cap_w);
	snprintf(m->vendor, sizeof(m->vendor), "%s", vendor);
	snprintf(m->stack, sizeof(m->stack), "%s", stack);
	m->memory_gib = memory_gib;
	m->fp8_tflops = fp8_tflops;
	return m;
}

/* parent NULL = a root. */
static inline struct fleet_domain_spec *fb_domain(struct fleet_builder *b, const char *name,
						  const char *parent, int64_t budget_w)
{
	fb_room(b->ndomains < FB_MAX_DOMAINS, "domains");
	struct fleet_domain_spec *d = &b->domains[b->ndomains++];
	d->name = name;
	d->parent = parent;
	d->budget_w = budget_w;
	return d;
}

/* Append a device list {model, count} to the last node added. */
static inline void fb_node_devs(struct fleet_builder *b, const char *model, uint32_t count)
{
	fb_room(b->nnodes > 0, "a node to add devices to");
	fb_room(b->ndevs < FB_MAX_DEVS, "device lists");
	struct fleet_node_spec *n = &b->nodes[b->nnodes - 1];
	if (n->ndevs == 0)
		n->devs = &b->devs[b->ndevs];
	fb_room(n->devs + n->ndevs == &b->devs[b->ndevs], "contiguous device lists");
	b->devs[b->ndevs].model = model;
	b->devs[b->ndevs].count = count;
	b->devs[b->ndevs].uuids = NULL;
	b->ndevs++;
	n->ndevs++;
}

/* A node in `domain` (group NULL = none) with `count` devices of `model` (NULL = none). */
static inline struct fleet_node_spec *fb_node(struct fleet_builder *b, const char *name,
					      const char *domain, const char *group,
					      int64_t host_idle_w, const char *model, uint32_t count)
{
	fb_room(b->nnodes < FB_MAX_NODES, "nodes");
	struct fleet_node_spec *n = &b->nodes[b->nnodes++];
	memset(n, 0, sizeof(*n));
	n->name = name;
	n->domain = domain;
	n->group = group;
	n->host_idle_w = host_idle_w;
	if (model)
		fb_node_devs(b, model, count);
	return n;
}

static inline struct fleet_doc fb_doc(const struct fleet_builder *b)
{
	struct fleet_doc d = {
		.models = b->models, .nmodels = b->nmodels,
		.domains = b->domains, .ndomains = b->ndomains,
		.nodes = b->nodes, .nnodes = b->nnodes,
	};
	return d;
}

static inline int fb_import(struct fleet *f, const struct fleet_builder *b, struct err *e)
{
	struct fleet_doc d = fb_doc(b);
	return fleet_import(f, &d, e);
}

/* ---- reading a fleet back ---- */

/* True when `anc` is `d` or one of its ancestors. */
static inline bool fb_is_ancestor(const struct fleet *f, uint32_t anc, uint32_t d)
{
	for (uint32_t hops = 0; d != FLEET_NONE && hops <= f->ndomains; hops++) {
		if (d == anc)
			return true;
		d = f->domains[d].parent;
	}
	return false;
}

/* reserved_w of domain d recomputed from the nodes and devices: host_idle_w + Σ devices
 * (allocated ? cap_w : idle_w) over nodes below d. With idle_only, allocations are ignored. */
static inline int64_t fb_reserved_scratch(const struct fleet *f, uint32_t d, bool idle_only)
{
	int64_t sum = 0;
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (!fb_is_ancestor(f, d, nd->domain))
			continue;
		sum += nd->host_idle_w;
		for (uint32_t i = 0; i < nd->ndevices; i++) {
			const struct device *dv = &f->devices[nd->first_device + i];
			if (dv->job && !idle_only)
				sum += dv->cap_w;
			else
				sum += f->models[dv->model].idle_w;
		}
	}
	return sum;
}

static inline int64_t fb_idle_load(const struct fleet *f, uint32_t d)
{
	return fb_reserved_scratch(f, d, true);
}

/* Index of a device by node name and index within the node; FLEET_NONE when absent. */
static inline uint32_t fb_device(const struct fleet *f, const char *node, uint32_t index)
{
	uint32_t n = fleet_node_find(f, node);
	if (n == FLEET_NONE || index >= f->nodes[n].ndevices)
		return FLEET_NONE;
	return f->nodes[n].first_device + index;
}

/* Healthy, unallocated devices of `model` on node n if it is up (the free index's key). */
static inline uint32_t fb_slot_free_scratch(const struct fleet *f, uint32_t n, uint16_t model)
{
	const struct node *nd = &f->nodes[n];
	uint32_t k = 0;
	if (nd->state != NODE_UP)
		return 0;
	for (uint32_t i = 0; i < nd->ndevices; i++) {
		const struct device *dv = &f->devices[nd->first_device + i];
		if (dv->model == model && dv->job == 0 && dv->health == HEALTH_OK)
			k++;
	}
	return k;
}

/* True when node slot s is reachable from bucket (model, free). */
static inline bool fb_in_bucket(const struct fleet *f, uint16_t model, uint32_t free,
				uint32_t s)
{
	uint32_t hops = 0;
	for (uint32_t i = fleet_bucket_first(f, model, free); i != FLEET_NONE;
	     i = f->slots[i].next) {
		if (i == s)
			return true;
		if (++hops > f->nslots)
			return false;
	}
	return false;
}

/* The slot of (node, model), FLEET_NONE when the node has no such device. */
static inline uint32_t fb_slot_of(const struct fleet *f, uint32_t n, uint16_t model)
{
	const struct node *nd = &f->nodes[n];
	for (uint32_t s = nd->first_slot; s < nd->first_slot + nd->nslots; s++)
		if (f->slots[s].model == model)
			return s;
	return FLEET_NONE;
}

/*
 * Every fleet invariant recomputed from scratch: the ledger (reserved_w, <= budget_w),
 * subtree counts, node masks against the devices, the free index (each slot in exactly the
 * bucket of its free count, links consistent), draining nodes still holding work.
 * Returns true, or false with a description in msg.
 */
static inline bool fb_check_fleet(const struct fleet *f, char *msg, size_t len)
{
#define FB_FAIL(...) do { snprintf(msg, len, __VA_ARGS__); return false; } while (0)
	for (uint32_t d = 0; d < f->ndomains; d++) {
		const struct domain *dm = &f->domains[d];
		int64_t want = fb_reserved_scratch(f, d, false);
		if (dm->reserved_w != want)
			FB_FAIL("domain %s: reserved_w %lld, recomputed %lld", dm->name,
				(long long)dm->reserved_w, (long long)want);
		if (dm->reserved_w > dm->budget_w)
			FB_FAIL("domain %s: reserved_w %lld over budget_w %lld", dm->name,
				(long long)dm->reserved_w, (long long)dm->budget_w);
		uint32_t nn = 0, nd = 0;
		for (uint32_t n = 0; n < f->nnodes; n++)
			if (fb_is_ancestor(f, d, f->nodes[n].domain)) {
				nn++;
				nd += f->nodes[n].ndevices;
			}
		if (dm->nodes != nn || dm->devices != nd)
			FB_FAIL("domain %s: counts %u nodes %u devices, recomputed %u/%u", dm->name,
				dm->nodes, dm->devices, nn, nd);
	}
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		uint64_t alloc = 0, healthy = 0;
		for (uint32_t i = 0; i < nd->ndevices; i++) {
			const struct device *dv = &f->devices[nd->first_device + i];
			if (dv->node != n || dv->index != i)
				FB_FAIL("node %s device %u: node/index %u/%u", nd->name, i, dv->node,
					dv->index);
			if (dv->job)
				alloc |= UINT64_C(1) << i;
			if (dv->health == HEALTH_OK)
				healthy |= UINT64_C(1) << i;
		}
		if (nd->alloc_mask != alloc)
			FB_FAIL("node %s: alloc_mask %#llx, devices say %#llx", nd->name,
				(unsigned long long)nd->alloc_mask, (unsigned long long)alloc);
		if (nd->healthy_mask != healthy)
			FB_FAIL("node %s: healthy_mask %#llx, devices say %#llx", nd->name,
				(unsigned long long)nd->healthy_mask, (unsigned long long)healthy);
		if (nd->state == NODE_DRAINING && alloc == 0)
			FB_FAIL("node %s: draining with nothing allocated", nd->name);
		for (uint32_t s = nd->first_slot; s < nd->first_slot + nd->nslots; s++) {
			const struct node_slot *sl = &f->slots[s];
			uint32_t want = fb_slot_free_scratch(f, n, sl->model);
			if (sl->node != n)
				FB_FAIL("slot %u: node %u, expected %u", s, sl->node, n);
			if (sl->bucket != want)
				FB_FAIL("node %s model %s: filed under %u, free is %u", nd->name,
					f->models[sl->model].name, sl->bucket, want);
			if (fleet_node_free(f, n, sl->model) != want)
				FB_FAIL("node %s model %s: fleet_node_free %u, free is %u", nd->name,
					f->models[sl->model].name,
					fleet_node_free(f, n, sl->model), want);
		}
	}
	uint32_t seen = 0;
	for (uint32_t m = 0; m < f->nmodels; m++)
		for (uint32_t k = 0; k <= FLEET_MAX_NODE_DEVICES; k++) {
			uint32_t prev = FLEET_NONE, hops = 0;
			for (uint32_t s = fleet_bucket_first(f, (uint16_t)m, k); s != FLEET_NONE;
			     s = f->slots[s].next) {
				if (s >= f->nslots)
					FB_FAIL("bucket %u/%u: slot %u out of range", m, k, s);
				if (++hops > f->nslots)
					FB_FAIL("bucket %u/%u: loop", m, k);
				const struct node_slot *sl = &f->slots[s];
				if (sl->model != m || sl->bucket != k)
					FB_FAIL("bucket %u/%u holds slot %u of model %u bucket %u", m,
						k, s, sl->model, sl->bucket);
				if (sl->node >= f->nnodes)
					FB_FAIL("bucket %u/%u holds orphaned slot %u", m, k, s);
				if (sl->prev != prev)
					FB_FAIL("bucket %u/%u: slot %u prev %u, expected %u", m, k, s,
						sl->prev, prev);
				prev = s;
				seen++;
			}
		}
	/* A node whose device list was replaced leaves orphaned slots (node FLEET_NONE). */
	uint32_t live = 0;
	for (uint32_t s = 0; s < f->nslots; s++)
		if (f->slots[s].node != FLEET_NONE)
			live++;
	if (seen != live)
		FB_FAIL("free index files %u slots, fleet has %u live ones", seen, live);
	return true;
#undef FB_FAIL
}

#endif
