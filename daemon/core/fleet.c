/*
 * fleet — models, the power-domain tree, nodes, devices and the free-capacity index.
 *
 * Owns: every fleet record and string, the name maps, the per-(model, free count) bucket
 * lists of node slots, and the bulk recomputation of reserved watts on import.
 * Never: does I/O, reads a clock, decides placements, deletes a record (a node whose
 * device list is replaced orphans its old device and slot records: node = FLEET_NONE).
 *
 * fleet_import works in three phases: validate the document against itself and the fleet
 * (nothing changed), compute every domain's reserved watts as they would be afterwards from
 * scratch (nothing changed), then apply. Only -ENOMEM can interrupt the apply phase; the
 * fleet must then be discarded (the daemon reloads it from the database).
 */
#include "fleet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "power.h"

#define BUCKETS (FLEET_MAX_NODE_DEVICES + 1)
#define NAME_LEN_MAX 63

void fleet_init(struct fleet *f)
{
	memset(f, 0, sizeof(*f));
	f->epoch = 1; /* 0 means "never" in job.tried_epoch */
	hmap_init_str(&f->model_by_name);
	hmap_init_str(&f->domain_by_name);
	hmap_init_str(&f->node_by_name);
	hmap_init_str(&f->group_by_name);
}

void fleet_free(struct fleet *f)
{
	if (!f)
		return;
	for (uint32_t i = 0; i < f->ndomains; i++)
		free(f->domains[i].name);
	for (uint32_t i = 0; i < f->nnodes; i++) {
		free(f->nodes[i].name);
		free(f->nodes[i].group);
		free(f->nodes[i].labels_json);
		free(f->nodes[i].exporter_url);
		free(f->nodes[i].agent_url);
		free(f->nodes[i].scrape_error);
	}
	for (uint32_t i = 0; i < f->ndevices; i++) {
		free(f->devices[i].health_reason);
		free(f->devices[i].uuid);
	}
	free(f->models);
	free(f->domains);
	free(f->nodes);
	free(f->devices);
	free(f->slots);
	free(f->free_head);
	free(f->free_count);
	free(f->room);
	free(f->scratch);
	free(f->roots);
	hmap_free(&f->group_by_name);
	hmap_free(&f->model_by_name);
	hmap_free(&f->domain_by_name);
	hmap_free(&f->node_by_name);
	memset(f, 0, sizeof(*f));
}

/* Grow *arr (element size sz) so that `need` elements fit. */
static int reserve(void **arr, uint32_t *cap, uint32_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	uint32_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *n = realloc(*arr, (size_t)ncap * sz);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static int dup_array(void **dst, const void *src, size_t n, size_t size)
{
	*dst = NULL;
	if (!src || !n)
		return 0;
	*dst = malloc(n * size);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * size);
	return 0;
}

static int dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -ENOMEM : 0;
}

int fleet_clone(struct fleet *d, const struct fleet *s)
{
	size_t buckets = (size_t)s->free_head_models * BUCKETS;
	fleet_init(d);
	d->epoch = s->epoch;
	d->ngroups = s->ngroups;
	d->free_head_models = s->free_head_models;
	if (dup_array((void **)&d->models, s->models, s->nmodels, sizeof(*s->models)) < 0 ||
	    dup_array((void **)&d->domains, s->domains, s->ndomains, sizeof(*s->domains)) < 0 ||
	    dup_array((void **)&d->nodes, s->nodes, s->nnodes, sizeof(*s->nodes)) < 0 ||
	    dup_array((void **)&d->devices, s->devices, s->ndevices, sizeof(*s->devices)) < 0 ||
	    dup_array((void **)&d->slots, s->slots, s->nslots, sizeof(*s->slots)) < 0 ||
	    dup_array((void **)&d->free_head, s->free_head, buckets, sizeof(*s->free_head)) < 0 ||
	    dup_array((void **)&d->free_count, s->free_count, buckets, sizeof(*s->free_count)) < 0 ||
	    dup_array((void **)&d->room, s->room, buckets, sizeof(*s->room)) < 0 ||
	    dup_array((void **)&d->roots, s->roots, s->nroots, sizeof(*s->roots)) < 0 ||
	    dup_array((void **)&d->scratch, s->scratch, s->scratch_cap, sizeof(*s->scratch)) < 0)
		goto nomem;
	/* counts only once the arrays are ours: fleet_free walks them */
	d->nmodels = d->models_cap = s->nmodels;
	d->nslots = d->slots_cap = s->nslots;
	d->nroots = s->nroots;
	d->scratch_cap = s->scratch_cap;
	for (uint32_t i = 0; i < s->ndomains; i++, d->ndomains++) {
		d->domains_cap = d->ndomains + 1;
		if (dup_opt(&d->domains[i].name, s->domains[i].name) < 0)
			goto nomem;
	}
	for (uint32_t i = 0; i < s->nnodes; i++, d->nnodes++) {
		struct node *n = &d->nodes[i];
		const struct node *o = &s->nodes[i];
		d->nodes_cap = d->nnodes + 1;
		n->group = n->labels_json = n->exporter_url = n->agent_url = n->scrape_error = NULL;
		if (dup_opt(&n->name, o->name) < 0 || dup_opt(&n->group, o->group) < 0 ||
		    dup_opt(&n->labels_json, o->labels_json) < 0 ||
		    dup_opt(&n->exporter_url, o->exporter_url) < 0 ||
		    dup_opt(&n->agent_url, o->agent_url) < 0 ||
		    dup_opt(&n->scrape_error, o->scrape_error) < 0)
			goto nomem;
	}
	for (uint32_t i = 0; i < s->ndevices; i++, d->ndevices++) {
		d->devices_cap = d->ndevices + 1;
		d->devices[i].uuid = NULL;
		if (dup_opt(&d->devices[i].health_reason, s->devices[i].health_reason) < 0 ||
		    dup_opt(&d->devices[i].uuid, s->devices[i].uuid) < 0)
			goto nomem;
	}
	for (uint32_t i = 0; i < d->nmodels; i++)
		if (hmap_put_str(&d->model_by_name, d->models[i].name, i) < 0)
			goto nomem;
	for (uint32_t i = 0; i < d->ndomains; i++)
		if (hmap_put_str(&d->domain_by_name, d->domains[i].name, i) < 0)
			goto nomem;
	for (uint32_t i = 0; i < d->nnodes; i++) {
		const struct node *n = &d->nodes[i];
		if (hmap_put_str(&d->node_by_name, n->name, i) < 0 ||
		    (n->group_id != FLEET_NONE &&
		     hmap_put_str(&d->group_by_name, n->group, n->group_id) < 0))
			goto nomem;
	}
	return 0;
nomem:
	fleet_free(d);
	fleet_init(d);
	return -ENOMEM;
}

uint32_t fleet_model_find(const struct fleet *f, const char *name)
{
	uint32_t v;
	return hmap_get_str(&f->model_by_name, name, &v) ? v : FLEET_NONE;
}

uint32_t fleet_domain_find(const struct fleet *f, const char *name)
{
	uint32_t v;
	return hmap_get_str(&f->domain_by_name, name, &v) ? v : FLEET_NONE;
}

uint32_t fleet_node_find(const struct fleet *f, const char *name)
{
	uint32_t v;
	return hmap_get_str(&f->node_by_name, name, &v) ? v : FLEET_NONE;
}

/* ---------------- free index ---------------- */

static uint32_t slot_free(const struct fleet *f, const struct node_slot *s)
{
	const struct node *n = &f->nodes[s->node];
	if (n->state != NODE_UP)
		return 0;
	return (uint32_t)__builtin_popcountll(s->mask & ~n->alloc_mask & n->healthy_mask);
}

static uint32_t *bucket_head(struct fleet *f, uint16_t model, uint32_t free)
{
	return &f->free_head[(size_t)model * BUCKETS + free];
}

/* A slot enters (sign 1) or leaves (-1) bucket `free` of its model: the room table. */
static void room_move(struct fleet *f, uint16_t model, uint32_t free, int sign)
{
	uint64_t *room = &f->room[(size_t)model * BUCKETS];
	for (uint32_t w = 1; w <= free; w++)
		room[w] += sign > 0 ? free / w : -(uint64_t)(free / w);
}

static void slot_unlink(struct fleet *f, uint32_t si)
{
	struct node_slot *s = &f->slots[si];
	f->free_count[(size_t)s->model * BUCKETS + s->bucket]--;
	room_move(f, s->model, s->bucket, -1);
	if (s->prev != FLEET_NONE)
		f->slots[s->prev].next = s->next;
	else
		*bucket_head(f, s->model, s->bucket) = s->next;
	if (s->next != FLEET_NONE)
		f->slots[s->next].prev = s->prev;
	s->prev = s->next = FLEET_NONE;
}

static void slot_link(struct fleet *f, uint32_t si, uint32_t free)
{
	struct node_slot *s = &f->slots[si];
	uint32_t *head = bucket_head(f, s->model, free);
	f->free_count[(size_t)s->model * BUCKETS + free]++;
	room_move(f, s->model, free, 1);
	s->bucket = (uint8_t)free;
	s->prev = FLEET_NONE;
	s->next = *head;
	if (*head != FLEET_NONE)
		f->slots[*head].prev = si;
	*head = si;
}

static void node_refile(struct fleet *f, uint32_t node)
{
	const struct node *n = &f->nodes[node];
	for (uint32_t i = 0; i < n->nslots; i++) {
		uint32_t si = n->first_slot + i;
		uint32_t free = slot_free(f, &f->slots[si]);
		if (free == f->slots[si].bucket)
			continue;
		slot_unlink(f, si);
		slot_link(f, si, free);
	}
}

uint32_t fleet_bucket_first(const struct fleet *f, uint16_t model, uint32_t free)
{
	if (model >= f->free_head_models || free > FLEET_MAX_NODE_DEVICES)
		return FLEET_NONE;
	return f->free_head[(size_t)model * BUCKETS + free];
}

int fleet_order_save(const struct fleet *f, struct fleet_order *o)
{
	o->nslots = f->nslots;
	o->nheads = f->free_head_models * BUCKETS;
	o->slots = malloc((size_t)o->nslots * sizeof(*o->slots) + 1);
	o->free_head = malloc((size_t)o->nheads * sizeof(*o->free_head) + 1);
	if (!o->slots || !o->free_head) {
		free(o->slots);
		free(o->free_head);
		o->slots = NULL;
		o->free_head = NULL;
		return -ENOMEM;
	}
	if (o->nslots)
		memcpy(o->slots, f->slots, (size_t)o->nslots * sizeof(*o->slots));
	if (o->nheads)
		memcpy(o->free_head, f->free_head, (size_t)o->nheads * sizeof(*o->free_head));
	return 0;
}

void fleet_order_restore(struct fleet *f, struct fleet_order *o)
{
	if (o->slots && o->nslots == f->nslots && o->nheads == f->free_head_models * BUCKETS) {
		memcpy(f->slots, o->slots, (size_t)o->nslots * sizeof(*o->slots));
		memcpy(f->free_head, o->free_head, (size_t)o->nheads * sizeof(*o->free_head));
	}
	free(o->slots);
	free(o->free_head);
	o->slots = NULL;
	o->free_head = NULL;
}

uint64_t fleet_model_room(const struct fleet *f, uint16_t model, uint32_t per_worker)
{
	if (model >= f->free_head_models || per_worker == 0 || per_worker > FLEET_MAX_NODE_DEVICES)
		return 0;
	return f->room[(size_t)model * BUCKETS + per_worker];
}

int64_t fleet_max_root_headroom(const struct fleet *f)
{
	int64_t best = INT64_MIN;
	for (uint32_t i = 0; i < f->nroots; i++) {
		const struct domain *d = &f->domains[f->roots[i]];
		if (d->budget_w - d->reserved_w > best)
			best = d->budget_w - d->reserved_w;
	}
	return best;
}

uint32_t fleet_node_free(const struct fleet *f, uint32_t node, uint16_t model)
{
	const struct node *n = &f->nodes[node];
	for (uint32_t i = 0; i < n->nslots; i++)
		if (f->slots[n->first_slot + i].model == model)
			return slot_free(f, &f->slots[n->first_slot + i]);
	return 0;
}

/* ---------------- allocation primitives ---------------- */

void fleet_alloc(struct fleet *f, uint32_t node, uint64_t mask, uint64_t job, uint32_t worker,
		 uint32_t cap_w)
{
	struct node *n = &f->nodes[node];
	int64_t delta = 0;
	for (uint32_t i = 0; i < n->ndevices; i++) {
		if (!(mask & (1ull << i)))
			continue;
		struct device *d = &f->devices[n->first_device + i];
		d->job = job;
		d->worker = worker;
		d->cap_w = cap_w;
		delta += (int64_t)cap_w - f->models[d->model].idle_w;
	}
	n->alloc_mask |= mask;
	power_charge(f, n->domain, delta);
	node_refile(f, node);
}

void fleet_release(struct fleet *f, uint32_t node, uint64_t mask)
{
	struct node *n = &f->nodes[node];
	int64_t delta = 0;
	mask &= n->alloc_mask;
	for (uint32_t i = 0; i < n->ndevices; i++) {
		if (!(mask & (1ull << i)))
			continue;
		struct device *d = &f->devices[n->first_device + i];
		delta += (int64_t)f->models[d->model].idle_w - d->cap_w;
		d->job = 0;
		d->worker = 0;
		d->cap_w = 0;
	}
	n->alloc_mask &= ~mask;
	if (n->state == NODE_DRAINING && n->alloc_mask == 0)
		n->state = NODE_DRAINED;
	power_charge(f, n->domain, delta);
	node_refile(f, node);
	f->epoch++;
}

/* ---------------- node state ---------------- */

int fleet_node_drain(struct fleet *f, uint32_t node, struct err *e)
{
	struct node *n = &f->nodes[node];
	if (n->state == NODE_DRAINING || n->state == NODE_DRAINED)
		return 0;
	n->state = n->alloc_mask ? NODE_DRAINING : NODE_DRAINED;
	node_refile(f, node);
	return 0;
}

int fleet_node_resume(struct fleet *f, uint32_t node, struct err *e)
{
	struct node *n = &f->nodes[node];
	if (n->state == NODE_DOWN)
		return err_set(e, ERR_CONFLICT, NULL,
			       "node %s is down; it comes back up when its exporter answers", n->name);
	if (n->state == NODE_UP)
		return 0;
	n->state = NODE_UP;
	node_refile(f, node);
	f->epoch++;
	return 0;
}

bool fleet_node_set_down(struct fleet *f, uint32_t node, bool down)
{
	struct node *n = &f->nodes[node];
	if (down && n->state == NODE_UP) {
		n->state = NODE_DOWN;
	} else if (!down && n->state == NODE_DOWN) {
		n->state = NODE_UP;
		f->epoch++;
	} else {
		return false;
	}
	node_refile(f, node);
	return true;
}

void fleet_node_set_measured(struct fleet *f, uint32_t node, double device_w, int64_t now)
{
	struct node *n = &f->nodes[node];
	double before = n->measured_at ? n->measured_w + (double)n->host_idle_w : 0;
	double after = device_w + (double)n->host_idle_w;
	for (uint32_t d = n->domain; d != FLEET_NONE; d = f->domains[d].parent) {
		f->domains[d].measured_w += after - before;
		f->domains[d].measured_at = now;
	}
	n->measured_w = device_w;
	n->measured_at = now;
}

void fleet_device_set_health(struct fleet *f, uint32_t device, enum device_health h)
{
	struct device *d = &f->devices[device];
	if (d->node == FLEET_NONE || d->health == h)
		return;
	struct node *n = &f->nodes[d->node];
	d->health = (uint8_t)h;
	if (h == HEALTH_OK) {
		n->healthy_mask |= 1ull << d->index;
		f->epoch++;
	} else {
		n->healthy_mask &= ~(1ull << d->index);
	}
	node_refile(f, d->node);
}

/* ---------------- names ---------------- */

static const char *const node_state_names[] = {"up", "draining", "drained", "down"};
static const char *const health_names[] = {"ok", "degraded", "failed"};

const char *fleet_node_state_name(enum node_state s)
{
	return (unsigned)s < _NODE_STATE_MAX ? node_state_names[s] : "?";
}

const char *fleet_health_name(enum device_health h)
{
	return (unsigned)h < _HEALTH_MAX ? health_names[h] : "?";
}

int fleet_node_state_parse(const char *s, enum node_state *out)
{
	for (int i = 0; i < _NODE_STATE_MAX; i++)
		if (strcmp(s, node_state_names[i]) == 0) {
			*out = (enum node_state)i;
			return 0;
		}
	return ERR_INVALID;
}

int fleet_health_parse(const char *s, enum device_health *out)
{
	for (int i = 0; i < _HEALTH_MAX; i++)
		if (strcmp(s, health_names[i]) == 0) {
			*out = (enum device_health)i;
			return 0;
		}
	return ERR_INVALID;
}

/* ---------------- import: validation ---------------- */

static bool name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_model(const struct model *m, struct err *e)
{
	if (!name_ok(m->name, FLEET_NAME_MAX - 1))
		return err_set(e, ERR_INVALID, "name",
			       "must be 1-%d characters of A-Z a-z 0-9 . _ -", FLEET_NAME_MAX - 1);
	if (!name_ok(m->vendor, sizeof(m->vendor) - 1))
		return err_set(e, ERR_INVALID, "vendor", "must be 1-15 characters of A-Z a-z 0-9 . _ -");
	if (!name_ok(m->stack, sizeof(m->stack) - 1))
		return err_set(e, ERR_INVALID, "stack", "must be 1-15 characters of A-Z a-z 0-9 . _ -");
	if (m->tdp_w == 0 || m->tdp_w > 100000)
		return err_set(e, ERR_INVALID, "tdp_w", "must be between 1 and 100000");
	if (m->min_cap_w == 0 || m->min_cap_w > m->tdp_w)
		return err_set(e, ERR_INVALID, "min_cap_w", "must be between 1 and tdp_w (%u)", m->tdp_w);
	if (m->idle_w > m->tdp_w)
		return err_set(e, ERR_INVALID, "idle_w", "must not exceed tdp_w (%u)", m->tdp_w);
	if (m->memory_gib > 1u << 20)
		return err_set(e, ERR_INVALID, "memory_gib", "must be at most 1048576");
	if (!(m->bf16_tflops >= 0 && m->bf16_tflops < 1e7))
		return err_set(e, ERR_INVALID, "bf16_tflops", "must be between 0 and 1e7");
	if (!(m->fp8_tflops >= 0 && m->fp8_tflops < 1e7))
		return err_set(e, ERR_INVALID, "fp8_tflops", "must be between 0 and 1e7");
	return 0;
}

static bool model_same(const struct model *a, const struct model *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->vendor, b->vendor) == 0 &&
	       strcmp(a->stack, b->stack) == 0 && a->memory_gib == b->memory_gib &&
	       a->bandwidth_gbs == b->bandwidth_gbs && a->bf16_tflops == b->bf16_tflops &&
	       a->fp8_tflops == b->fp8_tflops && a->tdp_w == b->tdp_w &&
	       a->min_cap_w == b->min_cap_w && a->idle_w == b->idle_w;
}

/* Scratch state of one import; every array is indexed as the fleet will be afterwards. */
struct import {
	const struct fleet_doc *doc;
	uint32_t nmodels, ndomains, nnodes;  /* counts after the import */
	uint32_t *doc_model_idx;             /* doc model i → model index */
	uint32_t *doc_domain_idx;            /* doc domain i → domain index */
	uint32_t *doc_node_idx;              /* doc node i → node index */
	uint32_t *parent;                    /* per domain index: parent after import */
	int64_t *budget;                     /* per domain index */
	int64_t *reserved;                   /* per domain index, recomputed */
	uint32_t *node_doc;                  /* per existing node: doc index or NONE */
	bool *devs_changed;                  /* per doc node */
	const struct model **model_at;       /* per model index: figures after import */
};

static void import_free(struct import *im)
{
	free(im->doc_model_idx);
	free(im->doc_domain_idx);
	free(im->doc_node_idx);
	free(im->parent);
	free(im->budget);
	free(im->reserved);
	free(im->node_doc);
	free(im->devs_changed);
	free(im->model_at);
}

#define FIELDF(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__), (buf))

/* A name in the document or the fleet → index after import, or FLEET_NONE. */
static uint32_t resolve(const struct hmap *fleet_map, const struct hmap *doc_map, const char *name)
{
	uint32_t v;
	if (hmap_get_str(doc_map, name, &v))
		return v;
	if (hmap_get_str(fleet_map, name, &v))
		return v;
	return FLEET_NONE;
}

static int validate_models(const struct fleet *f, struct import *im, struct hmap *names,
			   struct err *e)
{
	const struct fleet_doc *doc = im->doc;
	char field[64];
	for (uint32_t i = 0; i < doc->nmodels; i++) {
		const struct model *m = &doc->models[i];
		int r = check_model(m, e);
		if (r < 0) {
			err_prefix_field(e, FIELDF(field, "models[%u]", i));
			return r;
		}
		if (hmap_get_str(names, m->name, NULL))
			return err_set(e, ERR_INVALID, FIELDF(field, "models[%u].name", i),
				       "model %s appears twice in the document", m->name);
		uint32_t idx = fleet_model_find(f, m->name);
		if (idx == FLEET_NONE) {
			idx = im->nmodels++;
		} else if (!model_same(&f->models[idx], m)) {
			for (uint32_t d = 0; d < f->ndevices; d++)
				if (f->devices[d].node != FLEET_NONE && f->devices[d].model == idx)
					return err_set(e, ERR_CONFLICT, FIELDF(field, "models[%u]", i),
						       "model %s is in use by devices; its figures "
						       "cannot change", m->name);
		}
		if (idx > UINT16_MAX - 1)
			return err_set(e, ERR_INVALID, FIELDF(field, "models[%u]", i),
				       "too many models");
		if (hmap_put_str(names, m->name, idx) < 0)
			return -ENOMEM;
		im->doc_model_idx[i] = idx;
	}
	return 0;
}

static int validate_domains(const struct fleet *f, struct import *im, struct hmap *names,
			    struct err *e)
{
	const struct fleet_doc *doc = im->doc;
	char field[64];
	for (uint32_t i = 0; i < doc->ndomains; i++) {
		const struct fleet_domain_spec *d = &doc->domains[i];
		if (!name_ok(d->name, NAME_LEN_MAX))
			return err_set(e, ERR_INVALID, FIELDF(field, "domains[%u].name", i),
				       "must be 1-%d characters of A-Z a-z 0-9 . _ -", NAME_LEN_MAX);
		if (d->budget_w < 0 || d->budget_w > (int64_t)1e12)
			return err_set(e, ERR_INVALID, FIELDF(field, "domains[%u].budget_w", i),
				       "must be between 0 and 1e12");
		if (hmap_get_str(names, d->name, NULL))
			return err_set(e, ERR_INVALID, FIELDF(field, "domains[%u].name", i),
				       "domain %s appears twice in the document", d->name);
		uint32_t idx = fleet_domain_find(f, d->name);
		if (idx == FLEET_NONE)
			idx = im->ndomains++;
		if (hmap_put_str(names, d->name, idx) < 0)
			return -ENOMEM;
		im->doc_domain_idx[i] = idx;
	}
	for (uint32_t d = 0; d < f->ndomains; d++) {
		im->parent[d] = f->domains[d].parent;
		im->budget[d] = f->domains[d].budget_w;
	}
	for (uint32_t i = 0; i < doc->ndomains; i++) {
		const struct fleet_domain_spec *d = &doc->domains[i];
		uint32_t idx = im->doc_domain_idx[i], parent = FLEET_NONE;
		if (d->parent) {
			parent = resolve(&f->domain_by_name, names, d->parent);
			if (parent == FLEET_NONE)
				return err_set(e, ERR_INVALID, FIELDF(field, "domains[%u].parent", i),
					       "unknown domain %s", d->parent);
		}
		if (idx < f->ndomains && f->domains[idx].parent != parent)
			return err_set(e, ERR_CONFLICT, FIELDF(field, "domains[%u].parent", i),
				       "domain %s already hangs off %s; a parent never changes",
				       d->name,
				       f->domains[idx].parent == FLEET_NONE
					       ? "nothing (a root)"
					       : f->domains[f->domains[idx].parent].name);
		im->parent[idx] = parent;
		im->budget[idx] = d->budget_w;
	}
	/* Cycles: only new domains can form one; a walk longer than the domain count loops. */
	for (uint32_t i = 0; i < doc->ndomains; i++) {
		uint32_t steps = 0;
		for (uint32_t d = im->doc_domain_idx[i]; d != FLEET_NONE; d = im->parent[d])
			if (++steps > im->ndomains)
				return err_set(e, ERR_INVALID, FIELDF(field, "domains[%u].parent", i),
					       "domain %s is its own ancestor", doc->domains[i].name);
	}
	return 0;
}

static bool devs_equal(const struct fleet *f, const struct node *n, const struct import *im,
		       const struct fleet_node_spec *s, const struct hmap *model_names)
{
	uint32_t at = 0;
	for (uint32_t k = 0; k < s->ndevs; k++) {
		uint32_t m = resolve(&f->model_by_name, model_names, s->devs[k].model);
		for (uint32_t c = 0; c < s->devs[k].count; c++, at++)
			if (at >= n->ndevices || f->devices[n->first_device + at].model != m)
				return false;
	}
	return at == n->ndevices;
}

static int validate_nodes(const struct fleet *f, struct import *im, const struct hmap *model_names,
			  const struct hmap *domain_names, struct hmap *names, struct err *e)
{
	const struct fleet_doc *doc = im->doc;
	char field[80];
	for (uint32_t i = 0; i < doc->nnodes; i++) {
		const struct fleet_node_spec *s = &doc->nodes[i];
		if (!name_ok(s->name, NAME_LEN_MAX))
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].name", i),
				       "must be 1-%d characters of A-Z a-z 0-9 . _ -", NAME_LEN_MAX);
		if (hmap_get_str(names, s->name, NULL))
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].name", i),
				       "node %s appears twice in the document", s->name);
		if (!s->domain || resolve(&f->domain_by_name, domain_names, s->domain) == FLEET_NONE)
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].domain", i),
				       "unknown domain %s", s->domain ? s->domain : "(none)");
		if (s->host_idle_w < 0 || s->host_idle_w > 1000000)
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].host_idle_w", i),
				       "must be between 0 and 1000000");
		if (s->group && (strlen(s->group) > NAME_LEN_MAX || (*s->group && !name_ok(s->group, NAME_LEN_MAX))))
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].group", i),
				       "must be 0-%d characters of A-Z a-z 0-9 . _ -", NAME_LEN_MAX);
		if (s->exporter_url && strlen(s->exporter_url) > 512)
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].exporter_url", i),
				       "must be at most 512 characters");
		if (s->agent_url && strlen(s->agent_url) > 512)
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].agent_url", i),
				       "must be at most 512 characters");
		uint32_t total = 0;
		for (uint32_t k = 0; k < s->ndevs; k++) {
			if (!s->devs[k].model ||
			    resolve(&f->model_by_name, model_names, s->devs[k].model) == FLEET_NONE)
				return err_set(e, ERR_INVALID,
					       FIELDF(field, "nodes[%u].devices[%u].model", i, k),
					       "unknown model %s",
					       s->devs[k].model ? s->devs[k].model : "(none)");
			if (s->devs[k].count < 1 || s->devs[k].count > FLEET_MAX_NODE_DEVICES)
				return err_set(e, ERR_INVALID,
					       FIELDF(field, "nodes[%u].devices[%u].count", i, k),
					       "must be between 1 and %d", FLEET_MAX_NODE_DEVICES);
			total += s->devs[k].count;
		}
		if (total > FLEET_MAX_NODE_DEVICES)
			return err_set(e, ERR_INVALID, FIELDF(field, "nodes[%u].devices", i),
				       "a node holds at most %d devices (this one lists %u)",
				       FLEET_MAX_NODE_DEVICES, total);
		uint32_t idx = fleet_node_find(f, s->name);
		if (idx == FLEET_NONE) {
			idx = im->nnodes++;
			im->devs_changed[i] = true;
		} else {
			const struct node *n = &f->nodes[idx];
			im->node_doc[idx] = i;
			im->devs_changed[i] = !devs_equal(f, n, im, s, model_names);
			uint32_t dom = resolve(&f->domain_by_name, domain_names, s->domain);
			if (n->alloc_mask && im->devs_changed[i])
				return err_set(e, ERR_CONFLICT, FIELDF(field, "nodes[%u].devices", i),
					       "node %s has allocated devices; its device list "
					       "cannot change until they are released", s->name);
			if (n->alloc_mask && dom != n->domain)
				return err_set(e, ERR_CONFLICT, FIELDF(field, "nodes[%u].domain", i),
					       "node %s has allocated devices; it cannot move to "
					       "another domain until they are released", s->name);
		}
		if (hmap_put_str(names, s->name, idx) < 0)
			return -ENOMEM;
		im->doc_node_idx[i] = idx;
	}
	return 0;
}

/* Every domain's reserved watts as they would be after the import, from scratch. */
static void compute_reserved(const struct fleet *f, struct import *im,
			     const struct hmap *domain_names)
{
	const struct fleet_doc *doc = im->doc;
	memset(im->reserved, 0, im->ndomains * sizeof(*im->reserved));
	for (uint32_t ni = 0; ni < f->nnodes; ni++) {
		if (im->node_doc[ni] != FLEET_NONE)
			continue;
		const struct node *n = &f->nodes[ni];
		int64_t c = n->host_idle_w;
		for (uint32_t k = 0; k < n->ndevices; k++) {
			const struct device *d = &f->devices[n->first_device + k];
			c += d->job ? (int64_t)d->cap_w : (int64_t)im->model_at[d->model]->idle_w;
		}
		for (uint32_t d = n->domain; d != FLEET_NONE; d = im->parent[d])
			im->reserved[d] += c;
	}
	for (uint32_t i = 0; i < doc->nnodes; i++) {
		const struct fleet_node_spec *s = &doc->nodes[i];
		uint32_t ni = im->doc_node_idx[i];
		int64_t c = s->host_idle_w;
		if (!im->devs_changed[i]) {
			const struct node *n = &f->nodes[ni];
			for (uint32_t k = 0; k < n->ndevices; k++) {
				const struct device *d = &f->devices[n->first_device + k];
				c += d->job ? (int64_t)d->cap_w
					    : (int64_t)im->model_at[d->model]->idle_w;
			}
		} else {
			for (uint32_t k = 0; k < s->ndevs; k++) {
				uint32_t m = fleet_model_find(f, s->devs[k].model);
				for (uint32_t j = 0; j < doc->nmodels; j++)
					if (strcmp(doc->models[j].name, s->devs[k].model) == 0)
						m = im->doc_model_idx[j];
				c += (int64_t)s->devs[k].count * im->model_at[m]->idle_w;
			}
		}
		uint32_t dom = resolve(&f->domain_by_name, domain_names, s->domain);
		for (uint32_t d = dom; d != FLEET_NONE; d = im->parent[d])
			im->reserved[d] += c;
	}
}

/* ---------------- import: apply ---------------- */

static int set_str(char **dst, const char *src)
{
	char *c = strdup(src ? src : "");
	if (!c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

/* A node's device UUIDs as the spec gives them (none given: none kept). */
static int set_uuids(struct fleet *f, const struct node *n, const struct fleet_node_spec *s)
{
	uint32_t at = 0;
	int r;
	for (uint32_t k = 0; k < s->ndevs; k++)
		for (uint32_t c = 0; c < s->devs[k].count && at < n->ndevices; c++, at++) {
			struct device *d = &f->devices[n->first_device + at];
			const char *u = s->devs[k].uuids ? s->devs[k].uuids[c] : NULL;
			if (!u) {
				free(d->uuid);
				d->uuid = NULL;
			} else if ((r = set_str(&d->uuid, u)) < 0) {
				return r;
			}
		}
	return 0;
}

static int apply_node(struct fleet *f, struct import *im, uint32_t i,
		      const struct hmap *model_names, const struct hmap *domain_names)
{
	const struct fleet_node_spec *s = &im->doc->nodes[i];
	uint32_t ni = im->doc_node_idx[i];
	struct node *n;
	int r;

	if (ni == f->nnodes) {
		n = &f->nodes[f->nnodes++];
		memset(n, 0, sizeof(*n));
		n->state = NODE_UP;
		if ((r = set_str(&n->name, s->name)) < 0 ||
		    (r = hmap_put_str(&f->node_by_name, s->name, ni)) < 0)
			return r;
	}
	n = &f->nodes[ni];
	if ((r = set_str(&n->group, s->group)) < 0 ||
	    (r = set_str(&n->labels_json, s->labels_json ? s->labels_json : "{}")) < 0 ||
	    (r = set_str(&n->exporter_url, s->exporter_url)) < 0 ||
	    (r = set_str(&n->agent_url, s->agent_url)) < 0)
		return r;
	n->domain = resolve(&f->domain_by_name, domain_names, s->domain);
	n->host_idle_w = s->host_idle_w;
	n->group_id = FLEET_NONE;
	if (n->group[0]) {
		uint32_t g;
		if (!hmap_get_str(&f->group_by_name, n->group, &g)) {
			g = f->ngroups;
			if ((r = hmap_put_str(&f->group_by_name, n->group, g)) < 0)
				return r;
			f->ngroups++;
		}
		n->group_id = g;
	}
	if (!im->devs_changed[i])
		return set_uuids(f, n, s);

	/* Orphan the old device and slot records, then append the new list. */
	for (uint32_t k = 0; k < n->nslots; k++) {
		slot_unlink(f, n->first_slot + k);
		f->slots[n->first_slot + k].node = FLEET_NONE;
	}
	for (uint32_t k = 0; k < n->ndevices; k++)
		f->devices[n->first_device + k].node = FLEET_NONE;
	uint32_t total = 0;
	for (uint32_t k = 0; k < s->ndevs; k++)
		total += s->devs[k].count;
	if ((r = reserve((void **)&f->devices, &f->devices_cap, f->ndevices + total,
			 sizeof(*f->devices))) < 0 ||
	    (r = reserve((void **)&f->slots, &f->slots_cap, f->nslots + s->ndevs,
			 sizeof(*f->slots))) < 0)
		return r;
	n->first_device = f->ndevices;
	n->ndevices = total;
	n->first_slot = f->nslots;
	n->nslots = 0;
	n->alloc_mask = 0;
	n->healthy_mask = total == 64 ? UINT64_MAX : (1ull << total) - 1;
	uint32_t at = 0;
	for (uint32_t k = 0; k < s->ndevs; k++) {
		uint32_t m = resolve(&f->model_by_name, model_names, s->devs[k].model);
		struct node_slot *slot = NULL;
		for (uint32_t q = 0; q < n->nslots; q++)
			if (f->slots[n->first_slot + q].model == m)
				slot = &f->slots[n->first_slot + q];
		if (!slot) {
			slot = &f->slots[f->nslots++];
			n->nslots++;
			memset(slot, 0, sizeof(*slot));
			slot->node = ni;
			slot->model = (uint16_t)m;
			slot->prev = slot->next = FLEET_NONE;
			slot->bucket = 0;
			slot_link(f, (uint32_t)(slot - f->slots), 0);
		}
		for (uint32_t c = 0; c < s->devs[k].count; c++, at++) {
			struct device *d = &f->devices[f->ndevices++];
			memset(d, 0, sizeof(*d));
			d->node = ni;
			d->model = (uint16_t)m;
			d->index = (uint8_t)at;
			d->health = HEALTH_OK;
			d->measured_w = NAN;
			slot->mask |= 1ull << at;
		}
	}
	return set_uuids(f, n, s);
}

static int apply(struct fleet *f, struct import *im, const struct hmap *model_names,
		 const struct hmap *domain_names)
{
	const struct fleet_doc *doc = im->doc;
	int r;

	if ((r = reserve((void **)&f->models, &f->models_cap, im->nmodels, sizeof(*f->models))) < 0 ||
	    (r = reserve((void **)&f->domains, &f->domains_cap, im->ndomains,
			 sizeof(*f->domains))) < 0 ||
	    (r = reserve((void **)&f->nodes, &f->nodes_cap, im->nnodes, sizeof(*f->nodes))) < 0)
		return r;
	if (im->nmodels > f->free_head_models) {
		uint32_t *h = realloc(f->free_head, (size_t)im->nmodels * BUCKETS * sizeof(*h));
		if (!h)
			return -ENOMEM;
		f->free_head = h;
		uint32_t *cnt = realloc(f->free_count, (size_t)im->nmodels * BUCKETS * sizeof(*cnt));
		if (!cnt)
			return -ENOMEM;
		f->free_count = cnt;
		uint64_t *room = realloc(f->room, (size_t)im->nmodels * BUCKETS * sizeof(*room));
		if (!room)
			return -ENOMEM;
		f->room = room;
		for (size_t k = (size_t)f->free_head_models * BUCKETS; k < (size_t)im->nmodels * BUCKETS; k++) {
			h[k] = FLEET_NONE;
			cnt[k] = 0;
			room[k] = 0;
		}
		f->free_head_models = im->nmodels;
	}
	for (uint32_t i = 0; i < doc->nmodels; i++) {
		uint32_t mi = im->doc_model_idx[i];
		if (mi == f->nmodels) {
			if ((r = hmap_put_str(&f->model_by_name, doc->models[i].name, mi)) < 0)
				return r;
			f->nmodels++;
		}
		f->models[mi] = doc->models[i];
	}
	for (uint32_t i = 0; i < doc->ndomains; i++) {
		uint32_t di = im->doc_domain_idx[i];
		if (di == f->ndomains) {
			struct domain *d = &f->domains[f->ndomains];
			memset(d, 0, sizeof(*d));
			if ((r = set_str(&d->name, doc->domains[i].name)) < 0 ||
			    (r = hmap_put_str(&f->domain_by_name, d->name, di)) < 0)
				return r;
			f->ndomains++;
		}
	}
	for (uint32_t d = 0; d < f->ndomains; d++) {
		f->domains[d].parent = im->parent[d];
		f->domains[d].budget_w = im->budget[d];
		f->domains[d].reserved_w = im->reserved[d];
		f->domains[d].nodes = f->domains[d].devices = 0;
	}
	for (uint32_t i = 0; i < doc->nnodes; i++)
		if ((r = apply_node(f, im, i, model_names, domain_names)) < 0)
			return r;
	for (uint32_t ni = 0; ni < f->nnodes; ni++) {
		const struct node *n = &f->nodes[ni];
		for (uint32_t d = n->domain; d != FLEET_NONE; d = f->domains[d].parent) {
			f->domains[d].nodes++;
			f->domains[d].devices += n->ndevices;
		}
	}
	for (uint32_t i = 0; i < doc->nnodes; i++)
		node_refile(f, im->doc_node_idx[i]);
	uint32_t *roots = malloc((f->ndomains + 1) * sizeof(*roots)), nroots = 0;
	if (!roots)
		return -ENOMEM;
	for (uint32_t d = 0; d < f->ndomains; d++)
		if (f->domains[d].parent == FLEET_NONE)
			roots[nroots++] = d;
	free(f->roots);
	f->roots = roots;
	f->nroots = nroots;
	uint32_t need = (f->ndomains > f->ngroups ? f->ndomains : f->ngroups) + 1;
	if (need > f->scratch_cap) {
		uint32_t *sc = realloc(f->scratch, need * sizeof(*sc));
		if (!sc)
			return -ENOMEM;
		memset(sc, 0, need * sizeof(*sc));
		f->scratch = sc;
		f->scratch_cap = need;
	}
	f->epoch++;
	f->structure++;
	return 0;
}

uint32_t fleet_max_group_room(struct fleet *f, uint16_t model, uint32_t per_worker, bool rack)
{
	struct fleet_room_memo *m = &f->room_memo[(model * 7u + per_worker * 3u + rack) % 32];
	if (m->structure == f->structure && m->model == model && m->per_worker == per_worker &&
	    m->rack == rack)
		return m->value;
	uint32_t best = 0;
	if (per_worker == 0 || model >= f->nmodels)
		return 0;
	/* tally per rack or group in the scratch counters (all zero between uses) */
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		uint32_t have = 0;
		for (uint32_t k = 0; k < nd->nslots; k++)
			if (f->slots[nd->first_slot + k].model == model)
				have = (uint32_t)__builtin_popcountll(f->slots[nd->first_slot + k].mask);
		uint32_t w = have / per_worker;
		if (!w)
			continue;
		uint32_t key = rack ? nd->domain : nd->group_id;
		if (key == FLEET_NONE || key >= f->scratch_cap) {
			best = w > best ? w : best;   /* a node alone */
			continue;
		}
		f->scratch[key] += w;
		best = f->scratch[key] > best ? f->scratch[key] : best;
	}
	for (uint32_t n = 0; n < f->nnodes; n++) {
		uint32_t key = rack ? f->nodes[n].domain : f->nodes[n].group_id;
		if (key != FLEET_NONE && key < f->scratch_cap)
			f->scratch[key] = 0;
	}
	*m = (struct fleet_room_memo){f->structure, per_worker, best, model, rack};
	return best;
}

int fleet_import(struct fleet *f, const struct fleet_doc *doc, struct err *e)
{
	struct import im = {.doc = doc, .nmodels = f->nmodels, .ndomains = f->ndomains,
			    .nnodes = f->nnodes};
	struct hmap model_names, domain_names, node_names;
	uint32_t maxd = f->ndomains + doc->ndomains, maxm = f->nmodels + doc->nmodels;
	int r = -ENOMEM;

	hmap_init_str(&model_names);
	hmap_init_str(&domain_names);
	hmap_init_str(&node_names);
	im.doc_model_idx = calloc(doc->nmodels + 1, sizeof(uint32_t));
	im.doc_domain_idx = calloc(doc->ndomains + 1, sizeof(uint32_t));
	im.doc_node_idx = calloc(doc->nnodes + 1, sizeof(uint32_t));
	im.devs_changed = calloc(doc->nnodes + 1, sizeof(bool));
	im.parent = calloc(maxd + 1, sizeof(uint32_t));
	im.budget = calloc(maxd + 1, sizeof(int64_t));
	im.reserved = calloc(maxd + 1, sizeof(int64_t));
	im.node_doc = malloc((f->nnodes + 1) * sizeof(uint32_t));
	im.model_at = calloc(maxm + 1, sizeof(*im.model_at));
	if (!im.doc_model_idx || !im.doc_domain_idx || !im.doc_node_idx || !im.devs_changed ||
	    !im.parent || !im.budget || !im.reserved || !im.node_doc || !im.model_at) {
		err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < f->nnodes; i++)
		im.node_doc[i] = FLEET_NONE;

	if ((r = validate_models(f, &im, &model_names, e)) < 0 ||
	    (r = validate_domains(f, &im, &domain_names, e)) < 0 ||
	    (r = validate_nodes(f, &im, &model_names, &domain_names, &node_names, e)) < 0)
		goto fail;

	for (uint32_t m = 0; m < f->nmodels; m++)
		im.model_at[m] = &f->models[m];
	for (uint32_t i = 0; i < doc->nmodels; i++)
		im.model_at[im.doc_model_idx[i]] = &doc->models[i];
	compute_reserved(f, &im, &domain_names);
	for (uint32_t d = 0; d < im.ndomains; d++) {
		if (im.reserved[d] <= im.budget[d])
			continue;
		const char *name = d < f->ndomains ? f->domains[d].name : NULL;
		char field[64] = "";
		for (uint32_t i = 0; i < doc->ndomains; i++)
			if (im.doc_domain_idx[i] == d) {
				name = doc->domains[i].name;
				snprintf(field, sizeof(field), "domains[%u].budget_w", i);
			}
		r = err_set(e, ERR_CONFLICT, field[0] ? field : NULL,
			    "domain %s would reserve %lld W over its budget of %lld W",
			    name, (long long)im.reserved[d], (long long)im.budget[d]);
		goto fail;
	}
	if ((r = apply(f, &im, &model_names, &domain_names)) < 0)
		err_set(e, r, NULL, "out of memory while importing");
fail:
	hmap_free(&model_names);
	hmap_free(&domain_names);
	hmap_free(&node_names);
	import_free(&im);
	return r;
}
