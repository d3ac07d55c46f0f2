/*
 * explain — the funnel, the verdict and the fixes for one job (see explain.h).
 *
 * Owns: nothing beyond the caller's struct explain. Never: leaves a trace in the fleet —
 * dry runs go through place.c (which undoes them); the drain what-if restores node states
 * and the epoch. The funnel uses the placement's own predicate
 * (place_model_fits_request) and power rule (power_fits), node by node, in node order.
 */
#include "explain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "place.h"
#include "power.h"

static struct explain_stage *stage(struct explain *x, const char *name, const char *code,
				   uint32_t nodes_in)
{
	struct explain_stage *s = &x->stages[x->nstages++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->code = code;
	s->nodes_in = nodes_in;
	return s;
}

static void offend(struct explain_stage *s, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void offend(struct explain_stage *s, const char *name, const char *fmt, ...)
{
	if (s->ntop >= EXPLAIN_TOP)
		return;
	for (uint32_t i = 0; i < s->ntop; i++)
		if (strcmp(s->top[i].name, name) == 0)
			return; /* one line per offender (domains repeat across nodes) */
	struct explain_offender *o = &s->top[s->ntop++];
	snprintf(o->name, sizeof(o->name), "%s", name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
	va_end(ap);
}

static void removed(struct explain_stage *s, const struct node *n)
{
	s->nodes_removed++;
	s->devices_removed += n->ndevices;
}

/* Name filters only: the "model" stage (vendor, model list, stack). */
static bool names_match(const struct job_request *r, const struct model *m)
{
	bool ok = r->nmodels == 0;
	for (uint32_t k = 0; k < r->nmodels && !ok; k++)
		ok = strcmp(r->models[k], m->name) == 0;
	if (!ok)
		return false;
	ok = r->nvendors == 0;
	for (uint32_t k = 0; k < r->nvendors && !ok; k++)
		ok = strcmp(r->vendors[k], m->vendor) == 0;
	return ok && (!r->stack[0] || strcmp(r->stack, m->stack) == 0);
}

static uint64_t free_of(const struct fleet *f, const struct node *n, uint16_t model)
{
	for (uint32_t i = 0; i < n->nslots; i++) {
		const struct node_slot *s = &f->slots[n->first_slot + i];
		if (s->model == model)
			return s->mask & ~n->alloc_mask & n->healthy_mask;
	}
	return 0;
}

/* Per node, the allowed model with the most free devices and what one worker needs. */
struct pick {
	bool alive;
	uint16_t model;
	uint32_t devices, cap, free;
	uint32_t key;
};

static void funnel(struct fleet *f, const struct jobs *t, const struct job *j,
		   struct explain *x, struct pick *p)
{
	const struct job_request *r = &j->req;
	uint32_t need = r->min_count ? r->min_count : r->count;
	uint32_t alive = f->nnodes;
	struct explain_stage *s;

	stage(x, "queue", "RESERVED_FOR_HEAD", alive); /* reports x->queue_position */

	s = stage(x, "model", "NO_MODEL_MATCH", alive);
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		bool ok = false;
		for (uint32_t k = 0; k < nd->nslots && !ok; k++)
			ok = names_match(r, &f->models[f->slots[nd->first_slot + k].model]);
		p[n].alive = ok;
		if (!ok) {
			removed(s, nd);
			offend(s, nd->name, "holds %s", nd->nslots ? f->models[f->slots[nd->first_slot].model].name : "no devices");
		}
	}
	alive -= s->nodes_removed;

	s = stage(x, "capability", "NO_MODEL_MATCH", alive);
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (!p[n].alive)
			continue;
		bool ok = false;
		for (uint32_t k = 0; k < nd->nslots; k++) {
			uint16_t m = f->slots[nd->first_slot + k].model;
			uint32_t cap, dev;
			if (!place_model_fits_request(f, r, m, &cap, &dev))
				continue;
			uint32_t fr = (uint32_t)__builtin_popcountll(free_of(f, nd, m));
			if (!ok || fr > p[n].free) {
				p[n].model = m;
				p[n].devices = dev;
				p[n].cap = r->cap_auto ? place_auto_floor(&f->models[m], r->min_perf) : cap;
				p[n].free = fr;
			}
			ok = true;
		}
		if (!ok) {
			p[n].alive = false;
			removed(s, nd);
			const struct model *m = &f->models[f->slots[nd->first_slot].model];
			offend(s, nd->name, "%s: %u GiB, FP8 %s, caps %u-%u W", m->name, m->memory_gib,
			       m->fp8_tflops > 0 ? "yes" : "no", m->min_cap_w, m->tdp_w);
		}
	}
	alive -= s->nodes_removed;

	s = stage(x, "health", "NODE_DRAINING", alive);
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (!p[n].alive)
			continue;
		if (nd->state != NODE_UP) {
			p[n].alive = false;
			removed(s, nd);
			offend(s, nd->name, "%s", fleet_node_state_name(nd->state));
		}
	}
	alive -= s->nodes_removed;

	s = stage(x, "free_devices", "INSUFFICIENT_DEVICES", alive);
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (!p[n].alive || p[n].free >= p[n].devices)
			continue;
		p[n].alive = false;
		removed(s, nd);
		offend(s, nd->name, "%u free %s, a worker needs %u", p[n].free,
		       f->models[p[n].model].name, p[n].devices);
	}
	alive -= s->nodes_removed;

	/* Power, cumulatively: charge each node's share of the gang (greedy, in node order, as
	 * placement fills) to a scratch tally per domain; a node whose first worker would
	 * overrun a domain is removed. */
	s = stage(x, "power", "POWER_BUDGET", alive);
	int64_t best_short = INT64_MAX;
	int64_t *extra = calloc(f->ndomains + 1, sizeof(*extra));
	uint32_t left = need;
	for (uint32_t n = 0; extra && n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (!p[n].alive)
			continue;
		const struct model *m = &f->models[p[n].model];
		int64_t w = power_alloc_delta(m, p[n].devices, p[n].cap);
		uint32_t k, fit = p[n].free / p[n].devices, blocking = FLEET_NONE;
		if (left == 0) {
			/* past one gang's worth: a spare node only needs room for one worker */
			if (!power_fits(f, nd->domain, w, &blocking)) {
				p[n].alive = false;
				removed(s, nd);
				const struct domain *d = &f->domains[blocking];
				offend(s, d->name, "%lld W headroom, a worker needs %lld W at %u W a device",
				       (long long)(d->budget_w - d->reserved_w), (long long)w, p[n].cap);
			}
			continue;
		}
		if (fit > left)
			fit = left;
		for (k = 0; k < fit; k++) {
			uint32_t d;
			for (d = nd->domain; d != FLEET_NONE; d = f->domains[d].parent)
				if (f->domains[d].reserved_w + extra[d] + w > f->domains[d].budget_w)
					break;
			if (d != FLEET_NONE) {
				blocking = d;
				break;
			}
			for (d = nd->domain; d != FLEET_NONE; d = f->domains[d].parent)
				extra[d] += w;
		}
		left -= k;
		if (k > 0 || blocking == FLEET_NONE)
			continue;
		p[n].alive = false;
		removed(s, nd);
		const struct domain *d = &f->domains[blocking];
		int64_t head = d->budget_w - d->reserved_w - extra[blocking], shortfall = w - head;
		offend(s, d->name, "%lld W left after %lld W for this job's other workers; a worker "
		       "needs %lld W at %u W a device", (long long)head, (long long)extra[blocking],
		       (long long)w, p[n].cap);
		if (shortfall > 0 && shortfall < best_short) {
			best_short = shortfall;
			x->power_known = true;
			snprintf(x->power_domain, sizeof(x->power_domain), "%s", d->name);
			x->power_budget_w = d->budget_w;
			x->power_reserved_w = d->reserved_w;
			x->power_need_w = w * need;
			x->power_shortfall_w = w * need - (d->budget_w - d->reserved_w);
		}
	}
	free(extra);
	alive -= s->nodes_removed;

	s = stage(x, "topology", "TOPOLOGY", alive);
	uint64_t room_total = 0;
	if (r->topology == TOPO_SAME_NODE) {
		for (uint32_t n = 0; n < f->nnodes; n++) {
			if (!p[n].alive)
				continue;
			if (p[n].free < (uint64_t)r->count * p[n].devices) {
				p[n].alive = false;
				removed(s, &f->nodes[n]);
				offend(s, f->nodes[n].name, "%u free, the whole job needs %u", p[n].free,
				       r->count * p[n].devices);
			}
		}
	} else if (r->topology == TOPO_SAME_RACK || r->topology == TOPO_SAME_GROUP) {
		/* room per rack (leaf domain) or group: a quadratic-free tally through a map */
		struct hmap room;
		hmap_init_str(&room);
		for (uint32_t n = 0; n < f->nnodes; n++) {
			if (!p[n].alive)
				continue;
			const struct node *nd = &f->nodes[n];
			const char *key = r->topology == TOPO_SAME_RACK ? f->domains[nd->domain].name
									 : nd->group;
			uint32_t v = 0;
			if (!key || !*key)
				key = nd->name;
			hmap_get_str(&room, key, &v);
			hmap_put_str(&room, key, v + p[n].free / p[n].devices);
		}
		uint32_t best = 0;
		for (uint32_t n = 0; n < f->nnodes; n++) {
			if (!p[n].alive)
				continue;
			const struct node *nd = &f->nodes[n];
			const char *key = r->topology == TOPO_SAME_RACK ? f->domains[nd->domain].name
									 : nd->group;
			uint32_t v = 0;
			if (!key || !*key)
				key = nd->name;
			hmap_get_str(&room, key, &v);
			if (v > best)
				best = v;
			if (v < need) {
				p[n].alive = false;
				removed(s, nd);
				offend(s, key, "room for %u of %u workers", v, need);
			}
		}
		hmap_free(&room);
		if (best < need && best > 0)
			snprintf(x->nearest_miss, sizeof(x->nearest_miss),
				 "the best %s has room for %u of %u workers",
				 r->topology == TOPO_SAME_RACK ? "rack" : "group", best, need);
	}
	alive -= s->nodes_removed;

	s = stage(x, "gang", "GANG_INCOMPLETE", alive);
	for (uint32_t n = 0; n < f->nnodes; n++)
		if (p[n].alive)
			room_total += p[n].free / p[n].devices;
	if (room_total < need) {
		for (uint32_t n = 0; n < f->nnodes; n++)
			if (p[n].alive) {
				removed(s, &f->nodes[n]);
				offend(s, f->nodes[n].name, "room for %u workers",
				       p[n].free / p[n].devices);
			}
		if (!x->nearest_miss[0])
			snprintf(x->nearest_miss, sizeof(x->nearest_miss),
				 "the nodes left have room for %llu of %u workers",
				 (unsigned long long)room_total, need);
	}
	if (!x->nearest_miss[0] && x->power_known)
		snprintf(x->nearest_miss, sizeof(x->nearest_miss),
			 "domain %s is %lld W short for one worker", x->power_domain,
			 (long long)x->power_shortfall_w);
}

static struct explain_fix *fix(struct explain *x, const char *code)
{
	if (x->nfixes >= EXPLAIN_MAX_FIXES)
		return NULL;
	struct explain_fix *fx = &x->fixes[x->nfixes++];
	fx->code = code;
	fx->text[0] = '\0';
	return fx;
}

static int try_lower_cap(struct fleet *f, const struct job *j, struct explain *x)
{
	struct job tmp = *j;
	uint16_t model;
	uint32_t cap;
	tmp.req.cap_auto = true;
	tmp.req.min_perf = 0.0001; /* down to each model's min_cap_w */
	int rc = place_would_fit(f, &tmp, 0, &model, &cap);
	if (rc <= 0)
		return rc;
	struct explain_fix *fx = fix(x, "FITS_AT_CAP");
	if (fx)
		snprintf(fx->text, sizeof(fx->text),
			 "fits now at cap %u W on %s (estimated performance %.0f%%)%s", cap,
			 f->models[model].name, 100 * place_perf(&f->models[model], cap),
			 j->req.cap_auto ? ": lower power.min_perf to allow it" : "");
	return 1;
}

static int try_preempt(struct fleet *f, const struct jobs *t, const struct job *j,
		       struct explain *x)
{
	struct job *v[8];
	bool fits;
	int n = place_find_victims(f, t, j, v, 8, &fits);
	if (n <= 0)
		return n;
	struct explain_fix *fx = fix(x, "FITS_IF_PREEMPTED");
	if (!fx)
		return 1;
	size_t used = (size_t)snprintf(fx->text, sizeof(fx->text), "fits if ");
	for (int i = 0; i < n && used < sizeof(fx->text); i++)
		used += (size_t)snprintf(fx->text + used, sizeof(fx->text) - used,
					 "%sjob %llu (preemptible, priority %d)", i ? ", " : "",
					 (unsigned long long)v[i]->id, v[i]->priority);
	if (used < sizeof(fx->text))
		snprintf(fx->text + used, sizeof(fx->text) - used, " %s preempted",
			 n > 1 ? "are" : "is");
	return 1;
}

static int try_resume(struct fleet *f, const struct job *j, struct explain *x)
{
	uint64_t epoch = f->epoch;
	uint32_t *drained = malloc((f->nnodes + 1) * sizeof(*drained)), nd = 0;
	int rc;
	if (!drained)
		return -ENOMEM;
	for (uint32_t n = 0; n < f->nnodes; n++)
		if (f->nodes[n].state == NODE_DRAINING || f->nodes[n].state == NODE_DRAINED) {
			drained[nd++] = n;
			fleet_node_resume(f, n, NULL);
		}
	rc = nd ? place_would_fit(f, j, 0, NULL, NULL) : 0;
	for (uint32_t i = 0; i < nd; i++)
		fleet_node_drain(f, drained[i], NULL);
	f->epoch = epoch;
	if (rc > 0) {
		struct explain_fix *fx = fix(x, "FITS_IF_NODE_RESUMED");
		if (fx) {
			size_t used = (size_t)snprintf(fx->text, sizeof(fx->text), "fits if ");
			for (uint32_t i = 0; i < nd && i < 3 && used < sizeof(fx->text); i++)
				used += (size_t)snprintf(fx->text + used, sizeof(fx->text) - used,
							 "%snode %s", i ? ", " : "",
							 f->nodes[drained[i]].name);
			if (used < sizeof(fx->text))
				snprintf(fx->text + used, sizeof(fx->text) - used, "%s%s return%s from drain",
					 nd > 3 ? " and others" : "", "", nd > 1 ? "" : "s");
		}
	}
	free(drained);
	return rc;
}

static void duration_text(char *buf, size_t n, int64_t s)
{
	if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lld min", (long long)(s / 60));
	else
		snprintf(buf, n, "%.1f h", s / 3600.0);
}

static int explain(struct fleet *f, const struct jobs *t, const struct job *j, int64_t now,
		   struct explain *x);

int explain_job(struct fleet *f, const struct jobs *t, const struct job *j, int64_t now,
		struct explain *x)
{
	struct fleet_order order; /* the drain what-if relinks nodes: put the order back */
	if (fleet_order_save(f, &order) < 0)
		return -ENOMEM;
	int rc = explain(f, t, j, now, x);
	fleet_order_restore(f, &order);
	return rc;
}

static int explain(struct fleet *f, const struct jobs *t, const struct job *j, int64_t now,
		   struct explain *x)
{
	struct pick *p = NULL;
	int rc;

	memset(x, 0, sizeof(*x));
	x->job = j->id;
	if (j->state != JOB_PENDING) {
		snprintf(x->code, sizeof(x->code), "NOT_PENDING");
		snprintf(x->verdict, sizeof(x->verdict), "NOT_PENDING: job is %s",
			 job_state_name(j->state));
		return 0;
	}
	for (uint32_t i = 0; i < t->npending; i++)
		if (t->pending[i] == j)
			x->queue_position = i + 1;
	p = calloc(f->nnodes + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	funnel(f, t, j, x, p);
	free(p);

	rc = place_diagnose(f, j, x->verdict, sizeof(x->verdict));
	if (rc < 0)
		return rc;
	bool fits = rc == 1;
	if (fits) {
		if (j->reason && strncmp(j->reason, "RESERVED_FOR_HEAD", 17) == 0)
			snprintf(x->verdict, sizeof(x->verdict), "%s", j->reason);
		else
			snprintf(x->verdict, sizeof(x->verdict),
				 "FITS_NOW: the next queue pass places it");
	}
	size_t cl = strcspn(x->verdict, ":");
	snprintf(x->code, sizeof(x->code), "%.*s", (int)(cl < sizeof(x->code) ? cl : sizeof(x->code) - 1),
		 x->verdict);
	if (strcmp(x->code, "RESERVED_FOR_HEAD") == 0) {
		const struct explain_stage *last = &x->stages[x->nstages - 1];
		struct explain_stage *s = stage(x, "reservation", "RESERVED_FOR_HEAD",
						last->nodes_in - last->nodes_removed);
		offend(s, "queue", "%s", j->reason + 19);
	}

	int64_t start;
	uint64_t after;
	if ((rc = place_estimate_start(f, t, j, now, &start, &after)) < 0)
		return rc;
	if (rc == 1) {
		x->start_known = true;
		x->estimated_start = start;
		x->start_after_job = after;
	}
	if (fits)
		return 0;
	if ((rc = try_lower_cap(f, j, x)) < 0 || (rc = try_preempt(f, t, j, x)) < 0 ||
	    (rc = try_resume(f, j, x)) < 0)
		return rc;
	if (x->start_known && x->start_after_job) {
		struct explain_fix *fx = fix(x, "FITS_WHEN_JOB_ENDS");
		char d[32];
		duration_text(d, sizeof(d), x->estimated_start - now);
		if (fx)
			snprintf(fx->text, sizeof(fx->text), "fits in ~%s when job %llu ends", d,
				 (unsigned long long)x->start_after_job);
	}
	if (x->nfixes == 0) {
		struct explain_fix *fx = fix(x, "NEVER_FITS");
		if (fx)
			snprintf(fx->text, sizeof(fx->text),
				 "never fits on this fleet, even with every running job ended: %.120s",
				 x->verdict);
	}
	return 0;
}
