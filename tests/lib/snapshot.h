/*
 * snapshot — everything a dry run (explain, estimates, victim searches) must leave as it
 * was: the fleet's records, free index and ledger, and every job. Take one before, compare
 * after. Static inline, so a suite may use only part of it.
 */
#ifndef JOULE_TEST_SNAPSHOT_H
#define JOULE_TEST_SNAPSHOT_H

struct snap {
	uint64_t epoch;
	uint32_t ndomains, nnodes, ndevices, nslots, njobs;
	int64_t *reserved;
	uint64_t *alloc;
	int *state;
	struct device *devs;
	uint8_t *bucket;
	struct job *jobs;       /* shallow copies: compared field by field */
	uint32_t npending, nactive;
};

static inline void snap_take(const struct world *w, struct snap *s)
{
	const struct fleet *f = &w->f;
	memset(s, 0, sizeof(*s));
	s->epoch = f->epoch;
	s->ndomains = f->ndomains;
	s->nnodes = f->nnodes;
	s->ndevices = f->ndevices;
	s->nslots = f->nslots;
	s->njobs = (uint32_t)(w->t.next_id - 1);
	s->reserved = calloc(f->ndomains + 1, sizeof(*s->reserved));
	s->alloc = calloc(f->nnodes + 1, sizeof(*s->alloc));
	s->state = calloc(f->nnodes + 1, sizeof(*s->state));
	s->devs = calloc(f->ndevices + 1, sizeof(*s->devs));
	s->bucket = calloc(f->nslots + 1, sizeof(*s->bucket));
	s->jobs = calloc(s->njobs + 1, sizeof(*s->jobs));
	ck_assert(s->reserved && s->alloc && s->state && s->devs && s->bucket && s->jobs);
	for (uint32_t d = 0; d < f->ndomains; d++)
		s->reserved[d] = f->domains[d].reserved_w;
	for (uint32_t n = 0; n < f->nnodes; n++) {
		s->alloc[n] = f->nodes[n].alloc_mask;
		s->state[n] = f->nodes[n].state;
	}
	memcpy(s->devs, f->devices, f->ndevices * sizeof(*s->devs));
	for (uint32_t i = 0; i < f->nslots; i++)
		s->bucket[i] = f->slots[i].bucket;
	for (uint32_t i = 0; i < s->njobs; i++)
		s->jobs[i] = *jobs_get(&w->t, i + 1);
	s->npending = w->t.npending;
	s->nactive = w->t.nactive;
}

static inline void snap_free(struct snap *s)
{
	free(s->reserved);
	free(s->alloc);
	free(s->state);
	free(s->devs);
	free(s->bucket);
	free(s->jobs);
}

static inline void snap_assert_same(const struct world *w, const struct snap *s, const char *what)
{
	const struct fleet *f = &w->f;
	ck_assert_msg(f->epoch == s->epoch, "%s: epoch %llu, was %llu", what,
		      (unsigned long long)f->epoch, (unsigned long long)s->epoch);
	for (uint32_t d = 0; d < s->ndomains; d++)
		ck_assert_msg(f->domains[d].reserved_w == s->reserved[d],
			      "%s: %s reserved %lld, was %lld", what, f->domains[d].name,
			      (long long)f->domains[d].reserved_w, (long long)s->reserved[d]);
	for (uint32_t n = 0; n < s->nnodes; n++) {
		ck_assert_msg(f->nodes[n].alloc_mask == s->alloc[n], "%s: %s alloc %#llx, was %#llx",
			      what, f->nodes[n].name, (unsigned long long)f->nodes[n].alloc_mask,
			      (unsigned long long)s->alloc[n]);
		ck_assert_msg((int)f->nodes[n].state == s->state[n], "%s: %s state %s, was %s",
			      what, f->nodes[n].name, fleet_node_state_name(f->nodes[n].state),
			      fleet_node_state_name((enum node_state)s->state[n]));
	}
	for (uint32_t d = 0; d < s->ndevices; d++) {
		const struct device *a = &f->devices[d], *b = &s->devs[d];
		ck_assert_msg(a->job == b->job && a->worker == b->worker && a->cap_w == b->cap_w &&
				      a->health == b->health,
			      "%s: device %u now job %llu worker %u cap %u, was %llu/%u/%u", what, d,
			      (unsigned long long)a->job, a->worker, a->cap_w,
			      (unsigned long long)b->job, b->worker, b->cap_w);
	}
	for (uint32_t i = 0; i < s->nslots; i++)
		ck_assert_msg(f->slots[i].bucket == s->bucket[i], "%s: slot %u bucket %u, was %u",
			      what, i, f->slots[i].bucket, s->bucket[i]);
	ck_assert_uint_eq(w->t.next_id - 1, s->njobs);
	for (uint32_t i = 0; i < s->njobs; i++) {
		const struct job *a = jobs_get(&w->t, i + 1), *b = &s->jobs[i];
		ck_assert_msg(a->state == b->state && a->nplaced == b->nplaced &&
				      a->placement == b->placement && a->reason == b->reason &&
				      a->tried_epoch == b->tried_epoch && a->requeues == b->requeues &&
				      a->placed_at == b->placed_at,
			      "%s: job %u changed (state %s→%s, nplaced %u→%u, tried %llu→%llu)",
			      what, i + 1, job_state_name(b->state), job_state_name(a->state),
			      b->nplaced, a->nplaced, (unsigned long long)b->tried_epoch,
			      (unsigned long long)a->tried_epoch);
		for (uint32_t k = 0; k < a->nplaced; k++)
			ck_assert(memcmp(&a->placement[k], &b->placement[k], sizeof(a->placement[k])) == 0);
	}
	ck_assert_uint_eq(w->t.npending, s->npending);
	ck_assert_uint_eq(w->t.nactive, s->nactive);
	char msg[400];
	ck_assert_msg(fb_check_fleet(f, msg, sizeof(msg)), "%s: %s", what, msg);
}

#endif
