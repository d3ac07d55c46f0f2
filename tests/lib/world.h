/*
 * world — the scheduling-core suites' common fixture: one fleet and one job table built
 * from a fleet_builder document, and a plain training job to start from.
 * Include after check.h, the core headers and fleet_builder.h. Static inline, so a suite
 * may use only part of it.
 */
#ifndef JOULE_TEST_WORLD_H
#define JOULE_TEST_WORLD_H

struct world {
	struct fleet f;
	struct jobs t;
	int64_t now;
};

static inline void world_open(struct world *w, const struct fleet_builder *b)
{
	struct err e = {0};

	fleet_init(&w->f);
	jobs_init(&w->t);
	w->now = 1000;
	ck_assert_msg(fb_import(&w->f, b, &e) == 0, "import: %s: %s", e.field, e.message);
}

static inline void world_close(struct world *w)
{
	jobs_free(&w->t);
	fleet_free(&w->f);
}

static inline struct job *job_mk(uint32_t count, uint32_t devices, uint32_t cap_w,
			  enum job_topology topo)
{
	struct job *j = job_new();
	ck_assert_ptr_nonnull(j);
	j->name = strdup("job");
	j->queue = strdup("default");
	j->owner = strdup("alice");
	ck_assert(j->name && j->queue && j->owner);
	j->uid = 1000;
	j->req.kind = JOB_TRAINING;
	j->req.topology = topo;
	j->req.count = count;
	j->req.devices = devices;
	j->req.cap_w = cap_w;
	return j;
}

#endif
