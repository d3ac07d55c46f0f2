/*
 * test_place — placement: fit, gangs, constraints, power, topology, drained/unhealthy
 * capacity, release/cancel, the queue pass, restore, determinism, and a seeded property
 * test that drives random fleets through random operations and checks every invariant
 * from scratch after each step.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fleet_builder.h"
#include "place.h"
#include "power.h"

/* ---- a world: one fleet, one job table, a clock ---- */

#include "../lib/world.h"

/* Allowed model names, NULL-terminated. */
static void job_models(struct job *j, ...)
{
	va_list ap;
	const char *s;
	uint8_t n = 0;

	free(j->req.models);
	j->req.models = calloc(JOB_MAX_MODELS, sizeof(*j->req.models));
	ck_assert_ptr_nonnull(j->req.models);
	va_start(ap, j);
	while ((s = va_arg(ap, const char *)) != NULL)
		snprintf(j->req.models[n++], sizeof(j->req.models[0]), "%s", s);
	va_end(ap);
	j->req.nmodels = n;
}

static void job_vendors(struct job *j, ...)
{
	va_list ap;
	const char *s;
	uint8_t n = 0;

	va_start(ap, j);
	while ((s = va_arg(ap, const char *)) != NULL)
		snprintf(j->req.vendors[n++], sizeof(j->req.vendors[0]), "%s", s);
	va_end(ap);
	j->req.nvendors = n;
}

static struct job *submit(struct world *w, struct job *j)
{
	j->submitted_at = w->now;
	ck_assert_int_eq(jobs_add(&w->t, j), 0);
	return j;
}

static int try_place(struct world *w, struct job *j)
{
	return place_try(&w->f, &w->t, j, ++w->now);
}

static struct job *restored(struct world *w, uint32_t node_i, uint64_t mask, uint32_t cap_w);

static uint32_t node(const struct fleet *f, const char *name)
{
	uint32_t n = fleet_node_find(f, name);
	ck_assert_msg(n != FLEET_NONE, "no node %s", name);
	return n;
}

static uint32_t dom(const struct fleet *f, const char *name)
{
	uint32_t d = fleet_domain_find(f, name);
	ck_assert_msg(d != FLEET_NONE, "no domain %s", name);
	return d;
}

static uint16_t model(const struct fleet *f, const char *name)
{
	uint32_t m = fleet_model_find(f, name);
	ck_assert_msg(m != FLEET_NONE, "no model %s", name);
	return (uint16_t)m;
}

/* Test-only stand-in for telemetry marking a node down (fleet.h has no setter yet): set
 * the state, then make the fleet refile the node by flipping one device's health away and
 * back (fleet_device_set_health refiles the node on every change). */
static void node_set_down(struct fleet *f, uint32_t n)
{
	uint32_t d = f->nodes[n].first_device;
	enum device_health h = (enum device_health)f->devices[d].health;

	f->nodes[n].state = NODE_DOWN;
	fleet_device_set_health(f, d, h == HEALTH_FAILED ? HEALTH_DEGRADED : HEALTH_FAILED);
	fleet_device_set_health(f, d, h);
}

/* ---- invariant checks, shared by the unit tests and the property test ---- */

/* The cap a job runs model m at, or 0 when the model is not allowed. */
static uint32_t allowed_cap(const struct fleet *f, const struct job_request *r, uint16_t m)
{
	const struct model *md = &f->models[m];
	bool ok = r->nmodels == 0;
	for (uint32_t i = 0; i < r->nmodels; i++)
		if (strcmp(r->models[i], md->name) == 0)
			ok = true;
	if (!ok)
		return 0;
	if (r->nvendors) {
		ok = false;
		for (uint32_t i = 0; i < r->nvendors; i++)
			if (strcmp(r->vendors[i], md->vendor) == 0)
				ok = true;
		if (!ok)
			return 0;
	}
	if (r->stack[0] && strcmp(r->stack, md->stack) != 0)
		return 0;
	if (md->memory_gib < r->min_memory_gib)
		return 0;
	if (r->fp8 && !(md->fp8_tflops > 0))
		return 0;
	/* proto/API.md: the cap is a ceiling; below min_cap_w the model is not used */
	if (r->cap_w && r->cap_w < md->min_cap_w)
		return 0;
	return r->cap_w && r->cap_w < md->tdp_w ? r->cap_w : md->tdp_w;
}

static bool check_placed_job(const struct fleet *f, const struct job *j, char *msg, size_t len)
{
#define JFAIL(...) do { snprintf(msg, len, __VA_ARGS__); return false; } while (0)
	const struct job_request *r = &j->req;
	unsigned long long id = (unsigned long long)j->id;

	if (!j->placement)
		JFAIL("job %llu: placed without a placement", id);
	if (j->nplaced != r->count)
		JFAIL("job %llu: gang incomplete, %u of %u workers", id, j->nplaced, r->count);
	if (j->placed_at == 0)
		JFAIL("job %llu: placed_at not set", id);
	for (uint32_t w = 0; w < j->nplaced; w++) {
		const struct job_worker *wk = &j->placement[w];
		if (wk->node >= f->nnodes)
			JFAIL("job %llu worker %u: node %u out of range", id, w, wk->node);
		const struct node *nd = &f->nodes[wk->node];
		if ((uint32_t)__builtin_popcountll(wk->mask) != r->devices)
			JFAIL("job %llu worker %u: %d devices, wants %u", id, w,
			      __builtin_popcountll(wk->mask), r->devices);
		if (nd->ndevices < 64 && (wk->mask >> nd->ndevices))
			JFAIL("job %llu worker %u: mask %#llx beyond node %s", id, w,
			      (unsigned long long)wk->mask, nd->name);
		if (wk->model != j->placement[0].model)
			JFAIL("job %llu: workers on models %u and %u", id, wk->model,
			      j->placement[0].model);
		uint32_t cap = allowed_cap(f, r, wk->model);
		if (cap == 0)
			JFAIL("job %llu worker %u: model %s (%s/%s, %u GiB, fp8 %g, caps %u–%u W) "
			      "breaks the request (%u models, %u vendors, stack \"%s\", %u GiB, "
			      "fp8 %d, cap %u W)",
			      id, w, f->models[wk->model].name, f->models[wk->model].vendor,
			      f->models[wk->model].stack, f->models[wk->model].memory_gib,
			      f->models[wk->model].fp8_tflops, f->models[wk->model].min_cap_w,
			      f->models[wk->model].tdp_w, r->nmodels, r->nvendors, r->stack,
			      r->min_memory_gib, r->fp8, r->cap_w);
		if (wk->cap_w != cap)
			JFAIL("job %llu worker %u: cap %u, want %u", id, w, wk->cap_w, cap);
		for (uint32_t i = 0; i < nd->ndevices; i++) {
			if (!(wk->mask >> i & 1))
				continue;
			const struct device *dv = &f->devices[nd->first_device + i];
			if (dv->model != wk->model)
				JFAIL("job %llu worker %u: device %s/%u is model %u, worker %u", id,
				      w, nd->name, i, dv->model, wk->model);
			if (dv->job != j->id || dv->worker != w || dv->cap_w != wk->cap_w)
				JFAIL("job %llu worker %u: device %s/%u holds job %llu worker %u "
				      "cap %u",
				      id, w, nd->name, i, (unsigned long long)dv->job, dv->worker,
				      dv->cap_w);
		}
		const struct node *n0 = &f->nodes[j->placement[0].node];
		switch (r->topology) {
		case TOPO_SAME_NODE:
			if (wk->node != j->placement[0].node)
				JFAIL("job %llu same_node: workers on %s and %s", id, nd->name,
				      n0->name);
			break;
		case TOPO_SAME_RACK:
			if (nd->domain != n0->domain)
				JFAIL("job %llu same_rack: workers under %s and %s", id,
				      f->domains[nd->domain].name, f->domains[n0->domain].name);
			break;
		case TOPO_SAME_GROUP:
			/* Nodes without a group share none: two such nodes are two groups. */
			if (wk->node != j->placement[0].node &&
			    (strcmp(nd->group, n0->group) != 0 || nd->group[0] == '\0'))
				JFAIL("job %llu same_group: workers in \"%s\" and \"%s\"", id,
				      nd->group, n0->group);
			break;
		default:
			break;
		}
		for (uint32_t v = 0; v < w; v++)
			if (j->placement[v].node == wk->node && (j->placement[v].mask & wk->mask))
				JFAIL("job %llu: workers %u and %u share a device", id, v, w);
	}
	return true;
#undef JFAIL
}

/*
 * The whole world from scratch: the fleet's own invariants (ledger, index, masks), no
 * device held by two jobs and no device held by a job that does not own it, every placed
 * gang complete and within its constraints, the job table's queue and counters.
 */
static bool check_world(const struct world *w, char *msg, size_t len)
{
#define WFAIL(...) do { snprintf(msg, len, __VA_ARGS__); return false; } while (0)
	const struct fleet *f = &w->f;
	const struct jobs *t = &w->t;
	bool ok = false;
	uint64_t *owner = calloc(f->ndevices ? f->ndevices : 1, sizeof(*owner));
	uint32_t counts[_JOB_STATE_MAX] = {0}, npend = 0;

	if (!owner)
		WFAIL("out of memory");
	if (!fb_check_fleet(f, msg, len))
		goto out;
	for (uint64_t id = 1; id < t->next_id; id++) {
		const struct job *j = jobs_get(t, id);
		if (!j)
			continue;
		counts[j->state]++;
		if (j->state == JOB_PENDING) {
			npend++;
			if (j->nplaced != 0) {
				snprintf(msg, len, "job %llu: pending with %u workers placed",
					 (unsigned long long)id, j->nplaced);
				goto out;
			}
		}
		if (j->state != JOB_PLACED && j->state != JOB_RUNNING)
			continue;
		if (!check_placed_job(f, j, msg, len))
			goto out;
		for (uint32_t k = 0; k < j->nplaced; k++) {
			const struct node *nd = &f->nodes[j->placement[k].node];
			for (uint32_t i = 0; i < nd->ndevices; i++) {
				if (!(j->placement[k].mask >> i & 1))
					continue;
				uint32_t d = nd->first_device + i;
				if (owner[d]) {
					snprintf(msg, len, "device %s/%u held by jobs %llu and %llu",
						 nd->name, i, (unsigned long long)owner[d],
						 (unsigned long long)id);
					goto out;
				}
				owner[d] = id;
			}
		}
	}
	for (uint32_t n = 0; n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		for (uint32_t i = 0; i < nd->ndevices; i++) {
			uint32_t d = nd->first_device + i;
			if (f->devices[d].job != owner[d]) {
				snprintf(msg, len, "device %s/%u says job %llu, placements say %llu",
					 nd->name, i, (unsigned long long)f->devices[d].job,
					 (unsigned long long)owner[d]);
				goto out;
			}
		}
	}
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		if (t->count_by_state[s] != counts[s]) {
			snprintf(msg, len, "count_by_state[%s] %u, recount %u",
				 job_state_name((enum job_state)s), t->count_by_state[s], counts[s]);
			goto out;
		}
	if (t->npending != npend) {
		snprintf(msg, len, "npending %u, recount %u", t->npending, npend);
		goto out;
	}
	for (uint32_t i = 1; i < t->npending; i++) {
		const struct job *a = t->pending[i - 1], *b = t->pending[i];
		if (!(a->priority > b->priority || (a->priority == b->priority && a->id < b->id))) {
			snprintf(msg, len, "pending queue out of order at %u", i);
			goto out;
		}
	}
	ok = true;
out:
	free(owner);
	return ok;
#undef WFAIL
}

static void assert_world(const struct world *w)
{
	char msg[320];
	ck_assert_msg(check_world(w, msg, sizeof(msg)), "%s", msg);
}

/* What "nothing changed" compares for placement refusals. */
struct fsnap {
	int64_t reserved[32];
	uint64_t alloc[32];
	uint32_t npending, nplaced_jobs;
};

static void fsnap_take(const struct world *w, struct fsnap *s)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t d = 0; d < w->f.ndomains && d < 32; d++)
		s->reserved[d] = w->f.domains[d].reserved_w;
	for (uint32_t n = 0; n < w->f.nnodes && n < 32; n++)
		s->alloc[n] = w->f.nodes[n].alloc_mask;
	s->npending = w->t.npending;
	s->nplaced_jobs = w->t.count_by_state[JOB_PLACED];
}

static void fsnap_assert_same(const struct world *w, const struct fsnap *before)
{
	struct fsnap now;
	fsnap_take(w, &now);
	for (uint32_t d = 0; d < w->f.ndomains && d < 32; d++)
		ck_assert_msg(now.reserved[d] == before->reserved[d], "%s: reserved %lld, was %lld",
			      w->f.domains[d].name, (long long)now.reserved[d],
			      (long long)before->reserved[d]);
	for (uint32_t n = 0; n < w->f.nnodes && n < 32; n++)
		ck_assert_msg(now.alloc[n] == before->alloc[n], "%s: alloc %#llx, was %#llx",
			      w->f.nodes[n].name, (unsigned long long)now.alloc[n],
			      (unsigned long long)before->alloc[n]);
	ck_assert_uint_eq(now.npending, before->npending);
	ck_assert_uint_eq(now.nplaced_jobs, before->nplaced_jobs);
}

static void assert_refused(const struct world *w, const struct job *j)
{
	ck_assert_int_eq(j->state, JOB_PENDING);
	ck_assert_uint_eq(j->nplaced, 0);
	ck_assert_ptr_null(j->placement);
	ck_assert_ptr_nonnull(j->reason);
	ck_assert_uint_ne(j->tried_epoch, 0);   /* stamped; its value: see tried_epoch_is_… */
	ck_assert_int_eq(j->placed_at, 0);
	assert_world(w);
}

/* ---- fleets ---- */

/* One rack, nodes with the given H100 counts, roomy power. */
static void b_h100_nodes(struct fleet_builder *b, const uint32_t *counts, uint32_t n)
{
	fb_init(b);
	fb_model(b, "H100", 70, 700, 200)->fp8_tflops = 1979;
	fb_domain(b, "dc", NULL, 1000000);
	fb_domain(b, "rack", "dc", 1000000);
	for (uint32_t i = 0; i < n; i++)
		fb_node(b, fb_str(b, "n%u", i + 1), "rack", "g1", 500, "H100", counts[i]);
}

/* The constraint catalog: one 8-device node per model. */
static void b_catalog(struct fleet_builder *b)
{
	fb_init(b);
	fb_model_full(b, "H100", "nvidia", "cuda", 80, 1979, 70, 700, 200);
	fb_model_full(b, "A100", "nvidia", "cuda", 40, 0, 50, 400, 150);
	fb_model_full(b, "MI300X", "amd", "rocm", 192, 2615, 100, 750, 300);
	fb_model_full(b, "Ascend-910B", "huawei", "cann", 64, 0, 80, 400, 250);
	fb_domain(b, "dc", NULL, 1000000);
	fb_domain(b, "rack", "dc", 1000000);
	fb_node(b, "h100", "rack", NULL, 500, "H100", 8);
	fb_node(b, "a100", "rack", NULL, 500, "A100", 8);
	fb_node(b, "mi300x", "rack", NULL, 500, "MI300X", 8);
	fb_node(b, "910b", "rack", NULL, 500, "Ascend-910B", 8);
}

/* ---- basic placement ---- */

START_TEST(single_worker_lands_on_a_node_with_enough_free_devices)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {2, 4, 8};

	b_h100_nodes(&b, counts, 3);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 6, 0, TOPO_ANY));
	ck_assert_uint_eq(w.t.npending, 1);
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_int_eq(j->state, JOB_PLACED);
	ck_assert_int_eq(j->placed_at, w.now);
	ck_assert_uint_eq(j->nplaced, 1);
	ck_assert_uint_eq(j->placement[0].node, node(&w.f, "n3"));
	ck_assert_uint_eq(__builtin_popcountll(j->placement[0].mask), 6);
	ck_assert_uint_eq(fleet_node_free(&w.f, node(&w.f, "n3"), 0), 2);
	ck_assert_uint_eq(w.t.npending, 0);
	ck_assert_uint_eq(w.t.count_by_state[JOB_PLACED], 1);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(gang_is_all_or_nothing_when_one_node_short)
{
	struct world w;
	struct fleet_builder b;
	struct fsnap before;
	static const uint32_t counts[] = {4, 4};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(3, 4, 0, TOPO_ANY));
	fsnap_take(&w, &before);
	ck_assert_int_eq(try_place(&w, j), 1);
	assert_refused(&w, j);
	fsnap_assert_same(&w, &before);
	for (uint32_t d = 0; d < w.f.ndevices; d++)
		ck_assert_uint_eq(w.f.devices[d].job, 0);

	/* A third node arrives: the same gang now fits whole. */
	fb_node(&b, "n3", "rack", "g1", 500, "H100", 4);
	struct err e = {0};
	ck_assert_int_eq(fb_import(&w.f, &b, &e), 0);
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->nplaced, 3);
	ck_assert_uint_eq(w.f.nodes[node(&w.f, "n1")].alloc_mask, 0xf);
	ck_assert_uint_eq(w.f.nodes[node(&w.f, "n3")].alloc_mask, 0xf);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(a_refused_try_stamps_tried_epoch_with_the_current_epoch)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {4};

	/* job.h: tried_epoch is "fleet epoch of the last failed placement try". */
	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_uint_eq(j->tried_epoch, 0);
	ck_assert_int_eq(try_place(&w, j), 1);
	ck_assert_uint_eq(j->tried_epoch, w.f.epoch);
	world_close(&w);
}
END_TEST

START_TEST(a_worker_is_never_split_across_nodes)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {4, 4};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	struct job *big = submit(&w, job_mk(1, 6, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, big), 1);
	assert_refused(&w, big);
	struct job *two = submit(&w, job_mk(2, 3, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, two), 0);
	ck_assert_uint_ne(two->placement[0].node, two->placement[1].node);
	ck_assert_uint_eq(__builtin_popcountll(two->placement[0].mask), 3);
	ck_assert_uint_eq(__builtin_popcountll(two->placement[1].mask), 3);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(two_workers_may_share_a_node_with_room_for_both)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(2, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->placement[0].node, j->placement[1].node);
	ck_assert_uint_eq(j->placement[0].mask & j->placement[1].mask, 0);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0xff);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(every_worker_of_a_gang_uses_the_same_model)
{
	struct world w;
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_model(&b, "H200", 70, 700, 200);
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "h100", "rack", NULL, 100, "H100", 4);
	fb_node(&b, "h200", "rack", NULL, 100, "H200", 4);
	fb_node(&b, "mixed", "rack", NULL, 100, "H100", 2);
	fb_node_devs(&b, "H200", 2);
	world_open(&w, &b);
	/* 2 × 4 would need one H100 node and one H200 node. */
	struct job *gang = submit(&w, job_mk(2, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, gang), 1);
	assert_refused(&w, gang);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, gang, ++w.now, NULL), 0);
	/* Fill the single-model nodes; 1 × 4 on the mixed node would need two models. */
	struct job *a = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	struct job *c = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, a), 0);
	ck_assert_int_eq(try_place(&w, c), 0);
	struct job *mixed = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, mixed), 1);
	assert_refused(&w, mixed);
	/* 2 × 2 fits on the mixed node only if both workers use one model: they cannot. */
	struct job *pair = submit(&w, job_mk(2, 2, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, pair), 1);
	struct job *one = submit(&w, job_mk(1, 2, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, one), 0);
	ck_assert_uint_eq(one->placement[0].node, node(&w.f, "mixed"));
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- constraints ---- */

struct constraint_row {
	const char *what;
	void (*set)(struct job *j);
	const char *allowed[5];      /* the models it may use, NULL-terminated */
};

static void c_none(struct job *j) { (void)j; }
static void c_models(struct job *j) { job_models(j, "H100", "MI300X", NULL); }
static void c_models_unknown(struct job *j) { job_models(j, "B200", NULL); }
static void c_models_one_unknown(struct job *j) { job_models(j, "B200", "A100", NULL); }
static void c_vendor_nvidia(struct job *j) { job_vendors(j, "nvidia", NULL); }
static void c_vendor_amd_huawei(struct job *j) { job_vendors(j, "amd", "huawei", NULL); }
static void c_stack_cuda(struct job *j) { snprintf(j->req.stack, sizeof(j->req.stack), "cuda"); }
static void c_stack_cann(struct job *j) { snprintf(j->req.stack, sizeof(j->req.stack), "cann"); }
static void c_mem_64(struct job *j) { j->req.min_memory_gib = 64; }
static void c_mem_100(struct job *j) { j->req.min_memory_gib = 100; }
static void c_mem_1000(struct job *j) { j->req.min_memory_gib = 1000; }
static void c_fp8(struct job *j) { j->req.fp8 = true; }
static void c_fp8_nvidia(struct job *j) { j->req.fp8 = true; job_vendors(j, "nvidia", NULL); }
static void c_fp8_a100(struct job *j) { j->req.fp8 = true; job_models(j, "A100", NULL); }
static void c_cap_250(struct job *j) { j->req.cap_w = 250; }
static void c_cap_720(struct job *j) { j->req.cap_w = 720; }
static void c_cap_160(struct job *j) { j->req.cap_w = 160; }
static void c_cap_100(struct job *j) { j->req.cap_w = 100; }
static void c_cap_300_amd(struct job *j) { j->req.cap_w = 300; job_vendors(j, "amd", NULL); }
static void c_everything(struct job *j)
{
	job_models(j, "H100", "A100", "MI300X", NULL);
	job_vendors(j, "nvidia", "amd", NULL);
	snprintf(j->req.stack, sizeof(j->req.stack), "cuda");
	j->req.min_memory_gib = 48;
	j->req.fp8 = true;
	j->req.cap_w = 650;
}

static const struct constraint_row constraint_rows[] = {
	{"no constraint", c_none, {"H100", "A100", "MI300X", "Ascend-910B", NULL}},
	{"models", c_models, {"H100", "MI300X", NULL}},
	{"an unknown model only", c_models_unknown, {NULL}},
	{"an unknown model and a known one", c_models_one_unknown, {"A100", NULL}},
	{"vendor nvidia", c_vendor_nvidia, {"H100", "A100", NULL}},
	{"vendors amd, huawei", c_vendor_amd_huawei, {"MI300X", "Ascend-910B", NULL}},
	{"stack cuda", c_stack_cuda, {"H100", "A100", NULL}},
	{"stack cann", c_stack_cann, {"Ascend-910B", NULL}},
	{"min memory 64", c_mem_64, {"H100", "MI300X", "Ascend-910B", NULL}},
	{"min memory 100", c_mem_100, {"MI300X", NULL}},
	{"min memory 1000", c_mem_1000, {NULL}},
	{"fp8", c_fp8, {"H100", "MI300X", NULL}},
	{"fp8 on nvidia", c_fp8_nvidia, {"H100", NULL}},
	{"fp8 on a model without it", c_fp8_a100, {NULL}},
	{"cap 250 excludes a min cap of 300", c_cap_250, {"H100", "A100", "Ascend-910B", NULL}},
	{"cap 720 is a ceiling: models below it run at their tdp", c_cap_720, {"H100", "A100", "MI300X", "Ascend-910B", NULL}},
	{"cap 160", c_cap_160, {"A100", NULL}},
	{"cap 100 is below every min cap", c_cap_100, {NULL}},
	{"cap 300 on amd: exactly min cap", c_cap_300_amd, {"MI300X", NULL}},
	{"everything at once", c_everything, {"H100", NULL}},
};
#define NCONSTRAINT (int)(sizeof(constraint_rows) / sizeof(constraint_rows[0]))

START_TEST(constraints_admit_exactly_the_allowed_models)
{
	const struct constraint_row *r = &constraint_rows[_i];
	struct world w;
	struct fleet_builder b;
	char used[128] = "", want[128] = "";

	b_catalog(&b);
	world_open(&w, &b);
	/* Keep placing whole-node jobs until one stays pending: the models used are exactly
	 * the ones the constraint admits (first fit cannot hide a wrongly admitted one). */
	bool seen[8] = {false};
	for (int k = 0; k < 5; k++) {
		struct job *j = job_mk(1, 8, 0, TOPO_ANY);
		r->set(j);
		submit(&w, j);
		int rc = try_place(&w, j);
		ck_assert_msg(rc == 0 || rc == 1, "%s: rc %d", r->what, rc);
		if (rc == 1) {
			assert_refused(&w, j);
			break;
		}
		ck_assert_msg(!seen[j->placement[0].model], "%s: model used twice", r->what);
		seen[j->placement[0].model] = true;
		assert_world(&w);
	}
	for (uint32_t m = 0; m < w.f.nmodels; m++)
		if (seen[m])
			snprintf(used + strlen(used), sizeof(used) - strlen(used), "%s ",
				 w.f.models[m].name);
	for (uint32_t m = 0; m < w.f.nmodels; m++)
		for (int a = 0; r->allowed[a]; a++)
			if (strcmp(r->allowed[a], w.f.models[m].name) == 0)
				snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s ",
					 r->allowed[a]);
	ck_assert_msg(strcmp(used, want) == 0, "%s: used [%s], allowed [%s]", r->what, used,
		      want);
	world_close(&w);
}
END_TEST

START_TEST(a_job_wanting_fp8_never_lands_on_a_model_without_it)
{
	struct world w;
	struct fleet_builder b;

	/* The FP8-less model comes first and has the most room. */
	fb_init(&b);
	fb_model(&b, "A100", 50, 400, 150)->fp8_tflops = 0;
	fb_model(&b, "H100", 70, 700, 200)->fp8_tflops = 1979;
	fb_domain(&b, "rack", NULL, 1000000);
	fb_node(&b, "a1", "rack", NULL, 100, "A100", 8);
	fb_node(&b, "a2", "rack", NULL, 100, "A100", 8);
	fb_node(&b, "h1", "rack", NULL, 100, "H100", 2);
	world_open(&w, &b);
	struct job *j = job_mk(1, 2, 0, TOPO_ANY);
	j->req.fp8 = true;
	submit(&w, j);
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->placement[0].model, model(&w.f, "H100"));
	struct job *k = job_mk(1, 1, 0, TOPO_ANY);
	k->req.fp8 = true;
	submit(&w, k);
	ck_assert_int_eq(try_place(&w, k), 1);
	assert_refused(&w, k);
	world_close(&w);
}
END_TEST

START_TEST(cap_zero_means_the_models_tdp)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	int64_t idle = w.f.domains[dom(&w.f, "rack")].reserved_w;
	struct job *j = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->placement[0].cap_w, 700);
	for (uint32_t i = 0; i < 4; i++)
		ck_assert_uint_eq(w.f.devices[w.f.nodes[0].first_device + i].cap_w, 700);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle + 4 * (700 - 70));
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(reserved_after_placement_is_idle_plus_devices_times_cap_minus_idle)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {8, 8};
	static const struct {
		uint32_t count, devices, cap;
	} jobs[] = {{1, 3, 500}, {2, 2, 0}, {1, 5, 200}, {1, 2, 333}};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	uint32_t rack = dom(&w.f, "rack"), dc = dom(&w.f, "dc");
	int64_t idle = 2 * 500 + 16 * 70, want = idle;
	ck_assert_int_eq(w.f.domains[rack].reserved_w, idle);
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		struct job *j = submit(&w, job_mk(jobs[i].count, jobs[i].devices, jobs[i].cap,
						   TOPO_ANY));
		ck_assert_int_eq(try_place(&w, j), 0);
		uint32_t cap = jobs[i].cap ? jobs[i].cap : 700;
		want += (int64_t)jobs[i].count * jobs[i].devices * (cap - 70);
		ck_assert_int_eq(w.f.domains[rack].reserved_w, want);
		ck_assert_int_eq(w.f.domains[dc].reserved_w, want);
	}
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- power ---- */

START_TEST(a_job_that_would_push_a_rack_over_budget_stays_pending)
{
	struct world w;
	struct fleet_builder b;
	struct fsnap before;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 1000000);
	/* idle 1000 + 8 × 70 = 1560; 3000 W of headroom. */
	fb_domain(&b, "rack", "dc", 1560 + 3000);
	fb_node(&b, "n1", "rack", NULL, 1000, "H100", 8);
	world_open(&w, &b);
	/* At tdp: 8 × 630 = 5040 > 3000. */
	struct job *hot = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	fsnap_take(&w, &before);
	ck_assert_int_eq(try_place(&w, hot), 1);
	assert_refused(&w, hot);
	fsnap_assert_same(&w, &before);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0);
	/* At 400 W: 8 × 330 = 2640 fits. */
	struct job *cool = submit(&w, job_mk(1, 8, 400, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, cool), 0);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, 1560 + 2640);
	/* 445 W would be 3000 exactly: fits; 446 does not. Cancel and try both. */
	ck_assert_int_eq(place_cancel(&w.f, &w.t, cool, ++w.now, NULL), 0);
	struct job *over = submit(&w, job_mk(1, 8, 446, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, over), 1);
	struct job *exact = submit(&w, job_mk(1, 8, 445, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, exact), 0);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, 1560 + 3000);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(a_roomy_rack_under_a_tight_hall_is_refused)
{
	struct world w;
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "hall", NULL, 1560 + 1000);
	fb_domain(&b, "rack", "hall", 1000000);
	fb_node(&b, "n1", "rack", NULL, 1000, "H100", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 2, 0, TOPO_ANY));   /* 1260 > 1000 */
	ck_assert_int_eq(try_place(&w, j), 1);
	assert_refused(&w, j);
	struct job *k = submit(&w, job_mk(1, 1, 0, TOPO_ANY));   /* 630 fits */
	ck_assert_int_eq(try_place(&w, k), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(first_fit_passes_over_a_node_whose_rack_has_no_power)
{
	struct world w;
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "dc", NULL, 1000000);
	fb_domain(&b, "rack-tight", "dc", 1560 + 100);
	fb_domain(&b, "rack-roomy", "dc", 1000000);
	fb_node(&b, "t1", "rack-tight", NULL, 1000, "H100", 8);
	fb_node(&b, "r1", "rack-roomy", NULL, 1000, "H100", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(j->placement[0].node, node(&w.f, "r1"));
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(a_gang_charges_its_whole_power_before_the_budget_check_passes)
{
	struct world w;
	struct fleet_builder b;
	struct fsnap before;

	/* Each node alone has power for one worker, the shared rack not for two. */
	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "rack", NULL, 2 * 1560 + 5040 + 100);
	fb_node(&b, "n1", "rack", NULL, 1000, "H100", 8);
	fb_node(&b, "n2", "rack", NULL, 1000, "H100", 8);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(2, 8, 0, TOPO_ANY));
	fsnap_take(&w, &before);
	ck_assert_int_eq(try_place(&w, j), 1);
	assert_refused(&w, j);
	fsnap_assert_same(&w, &before);
	world_close(&w);
}
END_TEST

/* ---- topology ---- */

START_TEST(same_node_puts_every_worker_on_one_node)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {2, 2, 8};

	b_h100_nodes(&b, counts, 3);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(3, 2, 0, TOPO_SAME_NODE));
	ck_assert_int_eq(try_place(&w, j), 0);
	for (uint32_t k = 0; k < 3; k++)
		ck_assert_uint_eq(j->placement[k].node, node(&w.f, "n3"));
	struct job *k2 = submit(&w, job_mk(2, 2, 0, TOPO_SAME_NODE));   /* no node has 4 */
	ck_assert_int_eq(try_place(&w, k2), 1);
	assert_refused(&w, k2);
	world_close(&w);
}
END_TEST

static void b_racks_and_groups(struct fleet_builder *b)
{
	/* rack-1: n1 (g1), n2 (g2); rack-2: n3 (g2), n4 (g3); 4 × H100 each. */
	fb_init(b);
	fb_model(b, "H100", 70, 700, 200);
	fb_domain(b, "dc", NULL, 1000000);
	fb_domain(b, "rack-1", "dc", 1000000);
	fb_domain(b, "rack-2", "dc", 1000000);
	fb_node(b, "n1", "rack-1", "g1", 100, "H100", 4);
	fb_node(b, "n2", "rack-1", "g2", 100, "H100", 4);
	fb_node(b, "n3", "rack-2", "g2", 100, "H100", 4);
	fb_node(b, "n4", "rack-2", "g3", 100, "H100", 4);
}

START_TEST(same_rack_keeps_workers_under_one_leaf_domain)
{
	struct world w;
	struct fleet_builder b;

	b_racks_and_groups(&b);
	world_open(&w, &b);
	/* Take n1 so that rack-1 has one node left and a 2-node gang could straddle racks. */
	struct job *a = restored(&w, node(&w.f, "n1"), 0xf, 700);
	ck_assert_int_eq(place_restore(&w.f, a, NULL), 0);
	struct job *j = submit(&w, job_mk(2, 4, 0, TOPO_SAME_RACK));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_eq(w.f.nodes[j->placement[0].node].domain, dom(&w.f, "rack-2"));
	ck_assert_uint_eq(w.f.nodes[j->placement[1].node].domain, dom(&w.f, "rack-2"));
	struct job *k = submit(&w, job_mk(2, 2, 0, TOPO_SAME_RACK));   /* only n2 left: 4 */
	ck_assert_int_eq(try_place(&w, k), 0);
	ck_assert_uint_eq(k->placement[0].node, node(&w.f, "n2"));
	ck_assert_uint_eq(k->placement[1].node, node(&w.f, "n2"));
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(same_rack_refuses_a_gang_no_single_rack_can_hold)
{
	struct world w;
	struct fleet_builder b;

	b_racks_and_groups(&b);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(3, 4, 0, TOPO_SAME_RACK));
	ck_assert_int_eq(try_place(&w, j), 1);
	assert_refused(&w, j);
	struct job *any = submit(&w, job_mk(3, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, any), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(same_group_keeps_workers_within_one_group)
{
	struct world w;
	struct fleet_builder b;

	b_racks_and_groups(&b);
	world_open(&w, &b);
	/* Only g2 (n2 in rack-1, n3 in rack-2) has two nodes. */
	struct job *j = submit(&w, job_mk(2, 4, 0, TOPO_SAME_GROUP));
	ck_assert_int_eq(try_place(&w, j), 0);
	uint32_t n2 = node(&w.f, "n2"), n3 = node(&w.f, "n3");
	ck_assert((j->placement[0].node == n2 && j->placement[1].node == n3) ||
		  (j->placement[0].node == n3 && j->placement[1].node == n2));
	struct job *k = submit(&w, job_mk(2, 4, 0, TOPO_SAME_GROUP));   /* g1, g3: one node each */
	ck_assert_int_eq(try_place(&w, k), 1);
	assert_refused(&w, k);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(spread_puts_replicas_on_distinct_nodes_when_it_can)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {8, 8, 8};

	b_h100_nodes(&b, counts, 3);
	world_open(&w, &b);
	struct job *j = job_mk(3, 1, 0, TOPO_SPREAD);
	j->req.kind = JOB_INFERENCE;
	submit(&w, j);
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_uint_ne(j->placement[0].node, j->placement[1].node);
	ck_assert_uint_ne(j->placement[1].node, j->placement[2].node);
	ck_assert_uint_ne(j->placement[0].node, j->placement[2].node);
	/* Spread prefers, it does not insist: 4 replicas on 3 nodes still fit. */
	struct job *k = job_mk(4, 1, 0, TOPO_SPREAD);
	k->req.kind = JOB_INFERENCE;
	submit(&w, k);
	ck_assert_int_eq(try_place(&w, k), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- capacity that must not be used ---- */

START_TEST(drained_and_down_nodes_and_unhealthy_devices_are_never_used)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8, 8, 8, 8, 8};

	b_h100_nodes(&b, counts, 5);
	world_open(&w, &b);
	ck_assert_int_eq(fleet_node_drain(&w.f, node(&w.f, "n1"), &e), 0);
	node_set_down(&w.f, node(&w.f, "n2"));
	uint32_t n3 = node(&w.f, "n3");
	fleet_device_set_health(&w.f, w.f.nodes[n3].first_device + 0, HEALTH_FAILED);
	fleet_device_set_health(&w.f, w.f.nodes[n3].first_device + 3, HEALTH_DEGRADED);
	fleet_device_set_health(&w.f, w.f.nodes[n3].first_device + 7, HEALTH_FAILED);
	ck_assert_int_eq(fleet_node_drain(&w.f, node(&w.f, "n5"), &e), 0);
	assert_world(&w);

	struct job *whole = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, whole), 0);
	ck_assert_uint_eq(whole->placement[0].node, node(&w.f, "n4"));
	struct job *five = submit(&w, job_mk(1, 5, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, five), 0);
	ck_assert_uint_eq(five->placement[0].node, n3);
	ck_assert_uint_eq(five->placement[0].mask, 0x76);   /* devices 1, 2, 4, 5, 6 */
	struct job *one = submit(&w, job_mk(1, 1, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, one), 1);
	assert_refused(&w, one);
	world_close(&w);
}
END_TEST

/* ---- release and cancel ---- */

START_TEST(release_returns_reserved_to_idle_and_frees_the_devices)
{
	struct world w;
	struct fleet_builder b;
	static const uint32_t counts[] = {8, 8};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	int64_t idle = w.f.domains[dom(&w.f, "rack")].reserved_w;
	struct job *j = submit(&w, job_mk(2, 6, 450, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle + 12 * 380);
	ck_assert_int_eq(jobs_set_state(&w.t, j, JOB_RUNNING), 0);
	place_release(&w.f, j);
	ck_assert_int_eq(jobs_set_state(&w.t, j, JOB_SUCCEEDED), 0);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "dc")].reserved_w, idle);
	for (uint32_t d = 0; d < w.f.ndevices; d++)
		ck_assert_uint_eq(w.f.devices[d].job, 0);
	ck_assert_uint_eq(fleet_node_free(&w.f, 0, 0), 8);
	ck_assert_uint_eq(fleet_node_free(&w.f, 1, 0), 8);
	/* The placement stays for history. */
	ck_assert_ptr_nonnull(j->placement);
	ck_assert_uint_eq(j->nplaced, 2);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(release_completes_a_drain)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	ck_assert_int_eq(fleet_node_drain(&w.f, 0, &e), 0);
	ck_assert_int_eq(w.f.nodes[0].state, NODE_DRAINING);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, j, ++w.now, &e), 0);
	ck_assert_int_eq(w.f.nodes[0].state, NODE_DRAINED);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(cancel_of_a_pending_job_takes_it_out_of_the_queue)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(place_cancel(&w.f, &w.t, j, 4242, &e), 0);
	ck_assert_int_eq(j->state, JOB_CANCELLED);
	ck_assert_int_eq(j->finished_at, 4242);
	ck_assert_uint_eq(w.t.npending, 0);
	ck_assert_uint_eq(w.t.count_by_state[JOB_CANCELLED], 1);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(cancel_of_a_placed_or_running_job_releases_everything)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	int64_t idle = w.f.domains[0].reserved_w;
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	if (_i == 1)
		ck_assert_int_eq(jobs_set_state(&w.t, j, JOB_RUNNING), 0);
	ck_assert_int_eq(place_cancel(&w.f, &w.t, j, 5000, &e), 0);
	ck_assert_int_eq(j->state, JOB_CANCELLED);
	ck_assert_int_eq(j->finished_at, 5000);
	ck_assert_int_eq(w.f.domains[0].reserved_w, idle);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0);
	ck_assert_uint_eq(w.t.count_by_state[JOB_PLACED] + w.t.count_by_state[JOB_RUNNING], 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

static const enum job_state finished_states[] = {JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED};

START_TEST(cancel_of_a_finished_job_is_a_conflict)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *j = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, j), 0);
	place_release(&w.f, j);
	ck_assert_int_eq(jobs_set_state(&w.t, j, finished_states[_i]), 0);
	j->finished_at = 777;
	ck_assert_int_eq(place_cancel(&w.f, &w.t, j, 9999, &e), ERR_CONFLICT);
	ck_assert_int_eq(e.code, ERR_CONFLICT);
	ck_assert_int_eq(j->state, finished_states[_i]);
	ck_assert_int_eq(j->finished_at, 777);
	ck_assert_uint_eq(w.t.count_by_state[finished_states[_i]], 1);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- the queue pass ---- */

struct pass_log {
	uint64_t ids[32];
	uint32_t n;
	int fail_at;      /* 1-based call that returns -42; 0 = never */
	const struct world *w;
};

static int pass_cb(void *ud, struct job *j)
{
	struct pass_log *l = ud;
	char msg[320];

	ck_assert_int_eq(j->state, JOB_PLACED);
	ck_assert_uint_eq(j->nplaced, j->req.count);
	ck_assert_msg(check_world(l->w, msg, sizeof(msg)), "inside the pass: %s", msg);
	if (l->n < 32)
		l->ids[l->n] = j->id;
	l->n++;
	return (int)l->n == l->fail_at ? -42 : 0;
}

static int pass(struct world *w, uint32_t max_tries, struct pass_log *l)
{
	memset(l, 0, sizeof(*l));
	l->w = w;
	return place_pass(&w->f, &w->t, ++w->now, max_tries, pass_cb, l);
}

START_TEST(pass_tries_pending_jobs_in_priority_then_fifo_order)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8, 8, 8, 8};
	static const int32_t prio[] = {0, 5, -1, 5};

	b_h100_nodes(&b, counts, 4);
	world_open(&w, &b);
	for (int i = 0; i < 4; i++) {
		struct job *j = job_mk(1, 8, 0, TOPO_ANY);
		j->priority = prio[i];
		submit(&w, j);
	}
	ck_assert_int_eq(pass(&w, 100, &log), 4);
	ck_assert_uint_eq(log.n, 4);
	ck_assert_uint_eq(log.ids[0], 2);
	ck_assert_uint_eq(log.ids[1], 4);
	ck_assert_uint_eq(log.ids[2], 1);
	ck_assert_uint_eq(log.ids[3], 3);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(pass_gives_capacity_to_the_higher_priority_job)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *low = job_mk(1, 8, 0, TOPO_ANY);
	low->priority = 1;
	submit(&w, low);
	struct job *high = job_mk(1, 8, 0, TOPO_ANY);
	high->priority = 9;
	submit(&w, high);
	ck_assert_int_eq(pass(&w, 100, &log), 2);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_uint_eq(log.ids[0], high->id);
	ck_assert_int_eq(low->state, JOB_PENDING);
	ck_assert_uint_ne(low->tried_epoch, 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(pass_places_what_fits_after_a_release)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *first = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	struct job *second = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	struct job *third = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(pass(&w, 100, &log), 3);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_int_eq(first->state, JOB_PLACED);
	/* Nothing changed: a second pass tries nothing. */
	ck_assert_int_eq(pass(&w, 100, &log), 0);
	/* The first job ends (release, then its final state): capacity grew. */
	ck_assert_int_eq(jobs_set_state(&w.t, first, JOB_RUNNING), 0);
	place_release(&w.f, first);
	ck_assert_int_eq(jobs_set_state(&w.t, first, JOB_SUCCEEDED), 0);
	ck_assert_int_ge(pass(&w, 100, &log), 1);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_uint_eq(log.ids[0], second->id);
	/* A cancel also makes room. */
	ck_assert_int_eq(place_cancel(&w.f, &w.t, second, ++w.now, NULL), 0);
	ck_assert_int_ge(pass(&w, 100, &log), 1);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_uint_eq(log.ids[0], third->id);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(pass_honours_max_tries)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8, 8, 8};

	b_h100_nodes(&b, counts, 3);
	world_open(&w, &b);
	for (int i = 0; i < 3; i++)
		submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(pass(&w, 2, &log), 2);
	ck_assert_uint_eq(log.n, 2);
	ck_assert_uint_eq(log.ids[0], 1);
	ck_assert_uint_eq(log.ids[1], 2);
	ck_assert_uint_eq(w.t.npending, 1);
	ck_assert_int_eq(pass(&w, 2, &log), 1);
	ck_assert_uint_eq(log.ids[0], 3);
	ck_assert_int_eq(pass(&w, 2, &log), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(pass_skips_jobs_already_tried_at_the_current_epoch)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	struct err e = {0};
	static const uint32_t counts[] = {4, 4};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	struct job *big = submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	ck_assert_int_eq(try_place(&w, big), 1);
	uint64_t stamp = big->tried_epoch;
	ck_assert_int_eq(pass(&w, 100, &log), 0);
	/* A later job behind it is still tried, the stale one is skipped. */
	struct job *small = submit(&w, job_mk(1, 4, 0, TOPO_ANY));
	ck_assert_int_eq(pass(&w, 100, &log), 1);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_uint_eq(log.ids[0], small->id);
	/* Capacity may have grown (drain + resume bumps the epoch): tried again. */
	ck_assert_int_eq(fleet_node_drain(&w.f, node(&w.f, "n2"), &e), 0);
	ck_assert_int_eq(fleet_node_resume(&w.f, node(&w.f, "n2"), &e), 0);
	ck_assert_int_eq(pass(&w, 100, &log), 1);
	ck_assert_uint_eq(log.n, 0);
	ck_assert_uint_gt(big->tried_epoch, stamp);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(a_callback_error_stops_the_pass_and_is_returned)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8, 8, 8};

	b_h100_nodes(&b, counts, 3);
	world_open(&w, &b);
	for (int i = 0; i < 3; i++)
		submit(&w, job_mk(1, 8, 0, TOPO_ANY));
	memset(&log, 0, sizeof(log));
	log.w = &w;
	log.fail_at = 1;
	ck_assert_int_eq(place_pass(&w.f, &w.t, ++w.now, 100, pass_cb, &log), -42);
	ck_assert_uint_eq(log.n, 1);
	ck_assert_int_eq(jobs_get(&w.t, 1)->state, JOB_PLACED);
	ck_assert_int_eq(jobs_get(&w.t, 2)->state, JOB_PENDING);
	ck_assert_int_eq(jobs_get(&w.t, 3)->state, JOB_PENDING);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(an_empty_queue_makes_no_tries)
{
	struct world w;
	struct fleet_builder b;
	struct pass_log log;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	ck_assert_int_eq(pass(&w, 100, &log), 0);
	ck_assert_uint_eq(log.n, 0);
	world_close(&w);
}
END_TEST

/* ---- restore ---- */

static struct job *restored(struct world *w, uint32_t node_i, uint64_t mask, uint32_t cap_w)
{
	struct job *j = job_mk(1, (uint32_t)__builtin_popcountll(mask), cap_w, TOPO_ANY);
	j->state = JOB_PLACED;
	j->placed_at = 500;
	j->placement = calloc(1, sizeof(*j->placement));
	ck_assert_ptr_nonnull(j->placement);
	j->placement[0].node = node_i;
	j->placement[0].mask = mask;
	j->placement[0].model = 0;
	j->placement[0].cap_w = cap_w;
	j->nplaced = 1;
	submit(w, j);
	return j;
}

START_TEST(restore_reapplies_a_stored_placement)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	static const uint32_t counts[] = {8, 8};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	int64_t idle = w.f.domains[dom(&w.f, "rack")].reserved_w;
	struct job *j = restored(&w, 1, 0x0f, 600);
	ck_assert_int_eq(place_restore(&w.f, j, &e), 0);
	ck_assert_uint_eq(w.f.nodes[1].alloc_mask, 0x0f);
	ck_assert_uint_eq(w.f.devices[w.f.nodes[1].first_device + 2].job, j->id);
	ck_assert_uint_eq(w.f.devices[w.f.nodes[1].first_device + 2].cap_w, 600);
	ck_assert_int_eq(w.f.domains[dom(&w.f, "rack")].reserved_w, idle + 4 * 530);
	ck_assert_uint_eq(fleet_node_free(&w.f, 1, 0), 4);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(restore_refuses_a_double_allocation)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	struct fsnap before;
	static const uint32_t counts[] = {8};

	b_h100_nodes(&b, counts, 1);
	world_open(&w, &b);
	struct job *a = restored(&w, 0, 0x0f, 600);
	ck_assert_int_eq(place_restore(&w.f, a, &e), 0);
	struct job *c = restored(&w, 0, 0x18, 600);   /* device 3 is a's */
	fsnap_take(&w, &before);
	ck_assert_int_eq(place_restore(&w.f, c, &e), ERR_CONFLICT);
	ck_assert_int_eq(e.code, ERR_CONFLICT);
	fsnap_assert_same(&w, &before);
	ck_assert_uint_eq(w.f.devices[3].job, a->id);
	ck_assert_uint_eq(w.f.devices[4].job, 0);
	/* Job c is not really placed: mark it failed so the world check agrees. */
	ck_assert_int_eq(jobs_set_state(&w.t, c, JOB_FAILED), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(restore_refuses_a_gang_whose_second_worker_collides)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	struct fsnap before;
	static const uint32_t counts[] = {8, 8};

	b_h100_nodes(&b, counts, 2);
	world_open(&w, &b);
	struct job *a = restored(&w, 1, 0x01, 700);
	ck_assert_int_eq(place_restore(&w.f, a, &e), 0);
	struct job *g = job_mk(2, 2, 700, TOPO_ANY);
	g->state = JOB_PLACED;
	g->placed_at = 500;
	g->placement = calloc(2, sizeof(*g->placement));
	ck_assert_ptr_nonnull(g->placement);
	g->placement[0] = (struct job_worker){.node = 0, .mask = 0x3, .model = 0, .cap_w = 700};
	g->placement[1] = (struct job_worker){.node = 1, .mask = 0x3, .model = 0, .cap_w = 700};
	g->nplaced = 2;
	submit(&w, g);
	fsnap_take(&w, &before);
	ck_assert_int_eq(place_restore(&w.f, g, &e), ERR_CONFLICT);
	/* Nothing of the refused gang stays behind, not even its first worker. */
	fsnap_assert_same(&w, &before);
	ck_assert_uint_eq(w.f.nodes[0].alloc_mask, 0);
	ck_assert_int_eq(jobs_set_state(&w.t, g, JOB_FAILED), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

START_TEST(restore_refuses_an_unknown_node_and_a_power_overflow)
{
	struct world w;
	struct fleet_builder b;
	struct err e = {0};
	struct fsnap before;

	fb_init(&b);
	fb_model(&b, "H100", 70, 700, 200);
	fb_domain(&b, "rack", NULL, 1560 + 1000);
	fb_node(&b, "n1", "rack", NULL, 1000, "H100", 8);
	world_open(&w, &b);
	struct job *ghost = restored(&w, 7, 0x1, 700);
	struct job *hot = restored(&w, 0, 0xff, 700);   /* 5040 W over 1000 of headroom */
	fsnap_take(&w, &before);
	ck_assert_int_eq(place_restore(&w.f, ghost, &e), ERR_CONFLICT);
	fsnap_assert_same(&w, &before);
	ck_assert_int_eq(place_restore(&w.f, hot, &e), ERR_CONFLICT);
	fsnap_assert_same(&w, &before);
	ck_assert_int_eq(jobs_set_state(&w.t, ghost, JOB_FAILED), 0);
	ck_assert_int_eq(jobs_set_state(&w.t, hot, JOB_FAILED), 0);
	assert_world(&w);
	world_close(&w);
}
END_TEST

/* ---- determinism ---- */

static void script(struct world *w, char *out, size_t len)
{
	struct err e = {0};
	static const struct {
		uint32_t count, devices, cap;
		enum job_topology topo;
		int32_t prio;
	} js[] = {
		{2, 2, 0, TOPO_ANY, 0},       {1, 3, 500, TOPO_SAME_NODE, 3},
		{3, 1, 0, TOPO_SPREAD, 1},    {2, 4, 400, TOPO_SAME_RACK, 0},
		{1, 8, 0, TOPO_ANY, -1},      {2, 2, 300, TOPO_SAME_GROUP, 2},
		{4, 2, 0, TOPO_ANY, 0},       {1, 1, 250, TOPO_ANY, 5},
	};
	struct pass_log log;

	for (size_t i = 0; i < sizeof(js) / sizeof(js[0]); i++) {
		struct job *j = job_mk(js[i].count, js[i].devices, js[i].cap, js[i].topo);
		j->priority = js[i].prio;
		submit(w, j);
		if (i % 3 == 2)
			pass(w, 100, &log);
	}
	pass(w, 100, &log);
	place_cancel(&w->f, &w->t, jobs_get(&w->t, 2), ++w->now, &e);
	fleet_node_drain(&w->f, 1, &e);
	pass(w, 100, &log);
	fleet_node_resume(&w->f, 1, &e);
	pass(w, 100, &log);
	out[0] = '\0';
	for (uint64_t id = 1; id < w->t.next_id; id++) {
		const struct job *j = jobs_get(&w->t, id);
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%llu:%s", (unsigned long long)id,
			 job_state_name(j->state));
		for (uint32_t k = 0; k < j->nplaced; k++) {
			n = strlen(out);
			snprintf(out + n, len - n, " %u/%#llx/%u/%u", j->placement[k].node,
				 (unsigned long long)j->placement[k].mask, j->placement[k].model,
				 j->placement[k].cap_w);
		}
		n = strlen(out);
		snprintf(out + n, len - n, "; ");
	}
}

START_TEST(the_same_operations_on_two_fresh_fleets_give_identical_placements)
{
	struct world w1, w2;
	struct fleet_builder b;
	char a[4096], c[4096];

	b_racks_and_groups(&b);
	fb_node(&b, "n5", "rack-1", "g1", 100, "H100", 8);
	world_open(&w1, &b);
	script(&w1, a, sizeof(a));
	assert_world(&w1);
	world_open(&w2, &b);
	script(&w2, c, sizeof(c));
	ck_assert_str_eq(a, c);
	ck_assert_msg(strstr(a, "placed") != NULL, "the script placed nothing: %s", a);
	world_close(&w1);
	world_close(&w2);
}
END_TEST

/* ---- the property test ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static const struct {
	const char *name, *vendor, *stack;
	uint32_t memory_gib;
	double fp8;
	uint32_t idle, tdp, min_cap;
} catalog[] = {
	{"H100", "nvidia", "cuda", 80, 1979, 70, 700, 200},
	{"A100", "nvidia", "cuda", 40, 0, 50, 400, 150},
	{"MI300X", "amd", "rocm", 192, 2615, 100, 750, 300},
	{"Ascend-910B", "huawei", "cann", 64, 0, 80, 400, 250},
};
#define NCATALOG 4

struct rack_info {
	const char *name;
	uint32_t hall;
	int64_t idle, dyn;
};

/* A random fleet: 1–2 halls of 1–3 racks of 1–4 nodes, budgets between tight and roomy. */
static void random_fleet(struct fleet_builder *b)
{
	struct fleet_domain_spec *dc, *halls[2];
	struct rack_info racks[6];
	uint32_t nracks = 0, nhalls = 1 + rnd_below(2);
	int64_t hall_idle[2] = {0}, hall_dyn[2] = {0};

	fb_init(b);
	uint32_t nmod = 1 + rnd_below(NCATALOG);
	uint32_t first = rnd_below(NCATALOG);
	for (uint32_t i = 0; i < nmod; i++) {
		uint32_t c = (first + i) % NCATALOG;
		fb_model_full(b, catalog[c].name, catalog[c].vendor, catalog[c].stack,
			      catalog[c].memory_gib, catalog[c].fp8, catalog[c].idle, catalog[c].tdp,
			      catalog[c].min_cap);
	}
	dc = fb_domain(b, "dc", NULL, 0);
	for (uint32_t h = 0; h < nhalls; h++) {
		halls[h] = fb_domain(b, fb_str(b, "hall-%u", h), "dc", 0);
		uint32_t nr = 1 + rnd_below(3);
		for (uint32_t r = 0; r < nr; r++) {
			racks[nracks].name = fb_str(b, "rack-%u-%u", h, r);
			racks[nracks].hall = h;
			racks[nracks].idle = racks[nracks].dyn = 0;
			nracks++;
		}
	}
	struct fleet_domain_spec *rack_spec[6];
	for (uint32_t r = 0; r < nracks; r++)
		rack_spec[r] = fb_domain(b, racks[r].name, halls[racks[r].hall]->name, 0);
	for (uint32_t r = 0; r < nracks; r++) {
		uint32_t nn = 1 + rnd_below(4);
		for (uint32_t k = 0; k < nn; k++) {
			int64_t host = 100 + rnd_below(500);
			uint32_t c = (first + rnd_below(nmod)) % NCATALOG;
			uint32_t cnt = 1 + rnd_below(8);
			const char *group = NULL;
			if (rnd_below(4)) {
				uint32_t g = rnd_below(2);
				group = fb_str(b, "g%u-%u", racks[r].hall, g);
			}
			fb_node(b, fb_str(b, "%s-n%u", racks[r].name, k), racks[r].name, group,
				host, catalog[c].name, cnt);
			racks[r].idle += host + cnt * catalog[c].idle;
			racks[r].dyn += cnt * (catalog[c].tdp - catalog[c].idle);
			if (rnd_below(4) == 0) {
				uint32_t c2 = (first + rnd_below(nmod)) % NCATALOG;
				uint32_t cnt2 = 1 + rnd_below(4);
				fb_node_devs(b, catalog[c2].name, cnt2);
				racks[r].idle += cnt2 * catalog[c2].idle;
				racks[r].dyn += cnt2 * (catalog[c2].tdp - catalog[c2].idle);
			}
		}
	}
	/* Budgets: idle + a random share (0–110%) of the dynamic range; some exactly idle. */
	int64_t dc_idle = 0, dc_dyn = 0;
	for (uint32_t r = 0; r < nracks; r++) {
		int64_t share = rnd_below(5) == 0 ? 0 : (int64_t)rnd_below(111);
		rack_spec[r]->budget_w = racks[r].idle + racks[r].dyn * share / 100;
		hall_idle[racks[r].hall] += racks[r].idle;
		hall_dyn[racks[r].hall] += racks[r].dyn;
	}
	for (uint32_t h = 0; h < nhalls; h++) {
		halls[h]->budget_w = hall_idle[h] + hall_dyn[h] * (int64_t)rnd_below(111) / 100;
		dc_idle += hall_idle[h];
		dc_dyn += hall_dyn[h];
	}
	dc->budget_w = dc_idle + dc_dyn * (int64_t)(20 + rnd_below(91)) / 100;
}

static struct job *random_job(void)
{
	static const uint32_t devs[] = {1, 1, 2, 2, 4, 4, 8, 3, 6};
	static const char *names[] = {"H100", "A100", "MI300X", "Ascend-910B", "B200"};
	static const char *vendors[] = {"nvidia", "amd", "huawei", "intel"};
	static const char *stacks[] = {"cuda", "rocm", "cann"};
	static const uint32_t mems[] = {0, 48, 80, 128};

	/* One draw per statement: argument evaluation order is unspecified. */
	uint32_t count = 1 + rnd_below(rnd_below(4) == 0 ? 4 : 2);
	uint32_t ndev = devs[rnd_below(sizeof(devs) / sizeof(devs[0]))];
	/* Caps: mostly tdp, else inside some catalog model's range, now and then anywhere. */
	uint32_t cap = 0, pick = rnd_below(10);
	if (pick >= 5 && pick < 9) {
		uint32_t c = rnd_below(NCATALOG);
		cap = catalog[c].min_cap + rnd_below(catalog[c].tdp - catalog[c].min_cap + 1);
	} else if (pick == 9) {
		cap = 100 + rnd_below(700);
	}
	enum job_topology topo = (enum job_topology)rnd_below(_TOPO_MAX);
	struct job *j = job_mk(count, ndev, cap, topo);
	j->priority = (int32_t)rnd_below(5) - 2;
	if (j->req.topology == TOPO_SPREAD)
		j->req.kind = JOB_INFERENCE;
	if (rnd_below(5) == 0) {
		uint32_t a = rnd_below(5);
		uint32_t c = rnd_below(5);
		if (rnd_below(2))
			job_models(j, names[a], NULL);
		else
			job_models(j, names[a], names[c], NULL);
	}
	if (rnd_below(7) == 0)
		job_vendors(j, vendors[rnd_below(4)], NULL);
	if (rnd_below(10) == 0)
		snprintf(j->req.stack, sizeof(j->req.stack), "%s", stacks[rnd_below(3)]);
	if (rnd_below(8) == 0)
		j->req.min_memory_gib = mems[rnd_below(4)];
	if (rnd_below(7) == 0)
		j->req.fp8 = true;
	return j;
}

static int prop_cb(void *ud, struct job *j)
{
	const struct world *w = ud;
	return (j->state == JOB_PLACED && j->placed_at == w->now &&
		j->nplaced == j->req.count) ? 0 : -77;
}

/* Jobs placed at this step sit on up nodes and healthy devices. */
static bool check_fresh(const struct world *w, char *msg, size_t len)
{
	for (uint64_t id = 1; id < w->t.next_id; id++) {
		const struct job *j = jobs_get(&w->t, id);
		if (!j || j->state != JOB_PLACED || j->placed_at != w->now)
			continue;
		for (uint32_t k = 0; k < j->nplaced; k++) {
			const struct node *nd = &w->f.nodes[j->placement[k].node];
			if (nd->state != NODE_UP) {
				snprintf(msg, len, "job %llu placed on %s node %s",
					 (unsigned long long)id, fleet_node_state_name(nd->state),
					 nd->name);
				return false;
			}
			if ((j->placement[k].mask & nd->healthy_mask) != j->placement[k].mask) {
				snprintf(msg, len, "job %llu placed on unhealthy devices of %s",
					 (unsigned long long)id, nd->name);
				return false;
			}
		}
	}
	return true;
}

#define PROP_FLEETS 300
#define PROP_STEPS 60

START_TEST(random_fleets_and_operations_keep_every_invariant)
{
	struct fleet_builder b;
	char msg[320];
	unsigned placed_total = 0, refused_total = 0;

	for (uint32_t seed = 1; seed <= PROP_FLEETS; seed++) {
		struct world w;
		struct err e = {0};
		const char *op = "import";

		rng_state = 0x9E3779B97F4A7C15ull * seed + 1;
		random_fleet(&b);
		fleet_init(&w.f);
		jobs_init(&w.t);
		w.now = 1000;
		int rc = fb_import(&w.f, &b, &e);
		ck_assert_msg(rc == 0, "seed %u: import %d %s: %s", seed, rc, e.field, e.message);
		/* A few devices start unhealthy. */
		for (uint32_t d = 0; d < w.f.ndevices; d++)
			if (rnd_below(20) == 0)
				fleet_device_set_health(&w.f, d, (enum device_health)(1 + rnd_below(2)));
		ck_assert_msg(check_world(&w, msg, sizeof(msg)), "seed %u after import: %s", seed,
			      msg);

		for (int step = 0; step < PROP_STEPS; step++) {
			uint32_t roll = rnd_below(100);
			w.now++;
			if (roll < 35) {
				op = "submit";
				struct job *j = random_job();
				j->submitted_at = w.now;
				ck_assert_int_eq(jobs_add(&w.t, j), 0);
				if (rnd_below(2)) {
					op = "submit+try";
					rc = place_try(&w.f, &w.t, j, w.now);
					ck_assert_msg(rc == 0 || rc == 1, "seed %u step %d: try %d",
						      seed, step, rc);
					if (rc == 0)
						placed_total++;
					else
						refused_total++;

					if (rc == 1)
						ck_assert_msg(j->state == JOB_PENDING && j->nplaced == 0 &&
								      j->tried_epoch != 0,
							      "seed %u step %d: refused job changed",
							      seed, step);
				}
			} else if (roll < 55) {
				op = "pass";
				rc = place_pass(&w.f, &w.t, w.now, 1 + rnd_below(10), prop_cb, &w);
				ck_assert_msg(rc >= 0, "seed %u step %d: pass %d", seed, step, rc);
			} else if (roll < 65 && w.t.next_id > 1) {
				op = "cancel";
				struct job *j = jobs_get(&w.t, 1 + rnd_below((uint32_t)w.t.next_id - 1));
				bool fin = job_state_finished(j->state);
				rc = place_cancel(&w.f, &w.t, j, w.now, &e);
				ck_assert_msg(rc == (fin ? ERR_CONFLICT : 0),
					      "seed %u step %d: cancel of %s job: %d", seed, step,
					      job_state_name(j->state), rc);
				if (!fin)
					ck_assert_msg(j->state == JOB_CANCELLED && j->finished_at == w.now,
						      "seed %u step %d: cancel left %s", seed, step,
						      job_state_name(j->state));
			} else if (roll < 75 && w.t.next_id > 1) {
				op = "run/finish";
				struct job *j = jobs_get(&w.t, 1 + rnd_below((uint32_t)w.t.next_id - 1));
				if (j->state == JOB_PLACED) {
					ck_assert_int_eq(jobs_set_state(&w.t, j, JOB_RUNNING), 0);
				} else if (j->state == JOB_RUNNING) {
					place_release(&w.f, j);
					j->finished_at = w.now;
					ck_assert_int_eq(jobs_set_state(&w.t, j, rnd_below(2)
										 ? JOB_SUCCEEDED
										 : JOB_FAILED),
							 0);
				}
			} else if (roll < 85) {
				op = "drain";
				ck_assert_int_eq(fleet_node_drain(&w.f, rnd_below(w.f.nnodes), &e), 0);
			} else if (roll < 94) {
				op = "resume";
				ck_assert_int_eq(fleet_node_resume(&w.f, rnd_below(w.f.nnodes), &e), 0);
			} else {
				op = "health";
				fleet_device_set_health(&w.f, rnd_below(w.f.ndevices),
							(enum device_health)(rnd_below(4) ? 0
											 : 1 + rnd_below(2)));
			}
			ck_assert_msg(check_world(&w, msg, sizeof(msg)), "seed %u step %d (%s): %s",
				      seed, step, op, msg);
			ck_assert_msg(check_fresh(&w, msg, sizeof(msg)), "seed %u step %d (%s): %s",
				      seed, step, op, msg);
		}
		/* Cancel everything: the ledger returns to the idle load everywhere. */
		for (uint64_t id = 1; id < w.t.next_id; id++) {
			struct job *j = jobs_get(&w.t, id);
			if (!job_state_finished(j->state))
				ck_assert_int_eq(place_cancel(&w.f, &w.t, j, ++w.now, &e), 0);
		}
		for (uint32_t d = 0; d < w.f.ndomains; d++)
			ck_assert_msg(w.f.domains[d].reserved_w == fb_idle_load(&w.f, d),
				      "seed %u: %s holds %lld after cancelling all, idle is %lld", seed,
				      w.f.domains[d].name, (long long)w.f.domains[d].reserved_w,
				      (long long)fb_idle_load(&w.f, d));
		ck_assert_msg(check_world(&w, msg, sizeof(msg)), "seed %u at the end: %s", seed, msg);
		world_close(&w);
	}
	/* The generator must exercise both outcomes, or the test proves little. */
	ck_assert_uint_gt(placed_total, 100);
	ck_assert_uint_gt(refused_total, 100);
}
END_TEST

static Suite *place_suite(void)
{
	Suite *s = suite_create("place");
	TCase *tc;

	tc = tcase_create("placement");
	tcase_add_test(tc, single_worker_lands_on_a_node_with_enough_free_devices);
	tcase_add_test(tc, gang_is_all_or_nothing_when_one_node_short);
	tcase_add_test(tc, a_refused_try_stamps_tried_epoch_with_the_current_epoch);
	tcase_add_test(tc, a_worker_is_never_split_across_nodes);
	tcase_add_test(tc, two_workers_may_share_a_node_with_room_for_both);
	tcase_add_test(tc, every_worker_of_a_gang_uses_the_same_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("constraints");
	tcase_add_loop_test(tc, constraints_admit_exactly_the_allowed_models, 0, NCONSTRAINT);
	tcase_add_test(tc, a_job_wanting_fp8_never_lands_on_a_model_without_it);
	tcase_add_test(tc, cap_zero_means_the_models_tdp);
	suite_add_tcase(s, tc);

	tc = tcase_create("power");
	tcase_add_test(tc, reserved_after_placement_is_idle_plus_devices_times_cap_minus_idle);
	tcase_add_test(tc, a_job_that_would_push_a_rack_over_budget_stays_pending);
	tcase_add_test(tc, a_roomy_rack_under_a_tight_hall_is_refused);
	tcase_add_test(tc, first_fit_passes_over_a_node_whose_rack_has_no_power);
	tcase_add_test(tc, a_gang_charges_its_whole_power_before_the_budget_check_passes);
	suite_add_tcase(s, tc);

	tc = tcase_create("topology");
	tcase_add_test(tc, same_node_puts_every_worker_on_one_node);
	tcase_add_test(tc, same_rack_keeps_workers_under_one_leaf_domain);
	tcase_add_test(tc, same_rack_refuses_a_gang_no_single_rack_can_hold);
	tcase_add_test(tc, same_group_keeps_workers_within_one_group);
	tcase_add_test(tc, spread_puts_replicas_on_distinct_nodes_when_it_can);
	suite_add_tcase(s, tc);

	tc = tcase_create("unusable capacity");
	tcase_add_test(tc, drained_and_down_nodes_and_unhealthy_devices_are_never_used);
	suite_add_tcase(s, tc);

	tc = tcase_create("release and cancel");
	tcase_add_test(tc, release_returns_reserved_to_idle_and_frees_the_devices);
	tcase_add_test(tc, release_completes_a_drain);
	tcase_add_test(tc, cancel_of_a_pending_job_takes_it_out_of_the_queue);
	tcase_add_loop_test(tc, cancel_of_a_placed_or_running_job_releases_everything, 0, 2);
	tcase_add_loop_test(tc, cancel_of_a_finished_job_is_a_conflict, 0,
			    (int)(sizeof(finished_states) / sizeof(finished_states[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("queue pass");
	tcase_add_test(tc, pass_tries_pending_jobs_in_priority_then_fifo_order);
	tcase_add_test(tc, pass_gives_capacity_to_the_higher_priority_job);
	tcase_add_test(tc, pass_places_what_fits_after_a_release);
	tcase_add_test(tc, pass_honours_max_tries);
	tcase_add_test(tc, pass_skips_jobs_already_tried_at_the_current_epoch);
	tcase_add_test(tc, a_callback_error_stops_the_pass_and_is_returned);
	tcase_add_test(tc, an_empty_queue_makes_no_tries);
	suite_add_tcase(s, tc);

	tc = tcase_create("restore");
	tcase_add_test(tc, restore_reapplies_a_stored_placement);
	tcase_add_test(tc, restore_refuses_a_double_allocation);
	tcase_add_test(tc, restore_refuses_a_gang_whose_second_worker_collides);
	tcase_add_test(tc, restore_refuses_an_unknown_node_and_a_power_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("determinism");
	tcase_add_test(tc, the_same_operations_on_two_fresh_fleets_give_identical_placements);
	suite_add_tcase(s, tc);

	tc = tcase_create("property");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, random_fleets_and_operations_keep_every_invariant);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(place_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
