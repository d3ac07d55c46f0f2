/*
 * sim — the what-if simulator's engine (contract: sim.h).
 *
 * Owns: the end heap (job id, end time, the placed_at it belongs to: a preempted job's old
 * entry no longer matches and is skipped), the list of jobs a pass placed, the records,
 * the samples and the queue-name table.
 * Never: reads a clock or does I/O; calls place_report from inside place_pass's callback
 * (placed jobs are collected and reported running after the pass).
 *
 * One instant: emit the samples due before it (state is constant between instants), add
 * the energy of the interval, end the jobs due, apply the scripted events, add the
 * arrivals, run one place_pass, report the placed jobs running and queue their ends.
 */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "place.h"

struct end {
	int64_t at, placed_at;
	uint64_t id;
};

struct run {
	struct fleet *f;
	struct jobs *t;
	const struct sim_options *o;
	struct sim_result *r;
	int64_t now, sample_s, next_sample;
	struct end *heap;
	uint32_t nheap, capheap;
	uint64_t *placed;               /* ids a pass placed (state or placement changed) */
	uint32_t nplaced, capplaced;
	struct hmap queue_idx;
	uint32_t capsamples, caprec;
	uint32_t checked_samples;       /* samples when stop() was last polled */
	int oom;
};

static int grow(void **p, uint32_t *cap, uint32_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	uint32_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *n = realloc(*p, (size_t)nc * size);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = nc;
	return 0;
}

/* ---- the end heap ---- */

static bool end_before(const struct end *a, const struct end *b)
{
	return a->at < b->at || (a->at == b->at && a->id < b->id);
}

static int heap_push(struct run *R, struct end x)
{
	if (grow((void **)&R->heap, &R->capheap, R->nheap + 1, sizeof(*R->heap)) < 0)
		return -ENOMEM;
	uint32_t i = R->nheap++;
	while (i > 0 && end_before(&x, &R->heap[(i - 1) / 2])) {
		R->heap[i] = R->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	R->heap[i] = x;
	return 0;
}

static struct end heap_pop(struct run *R)
{
	struct end top = R->heap[0], x = R->heap[--R->nheap];
	uint32_t i = 0;
	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= R->nheap)
			break;
		if (c + 1 < R->nheap && end_before(&R->heap[c + 1], &R->heap[c]))
			c++;
		if (!end_before(&R->heap[c], &x))
			break;
		R->heap[i] = R->heap[c];
		i = c;
	}
	if (R->nheap)
		R->heap[i] = x;
	return top;
}

/* ---- records ---- */

static struct sim_record *rec(struct run *R, const struct job *j)
{
	return j->id && j->id <= R->r->njobs ? &R->r->jobs[j->id - 1] : NULL;
}

static int rec_add(struct run *R, const struct job *j, int64_t submit)
{
	struct sim_result *r = R->r;
	if (grow((void **)&r->jobs, &R->caprec, (uint32_t)j->id, sizeof(*r->jobs)) < 0)
		return -ENOMEM;
	while (r->njobs < j->id) {
		struct sim_record *x = &r->jobs[r->njobs++];
		memset(x, 0, sizeof(*x));
		x->id = r->njobs;
		x->submit = x->start = x->end = -1;
		x->model = UINT16_MAX;
	}
	struct sim_record *x = &r->jobs[j->id - 1];
	x->submit = submit;
	x->kind = (uint8_t)j->req.kind;
	x->state = (uint8_t)j->state;
	uint32_t q;
	const char *qn = j->queue ? j->queue : "default";
	if (!hmap_get_str(&R->queue_idx, qn, &q)) {
		char **nq = realloc(r->queues, (r->nqueues + 1) * sizeof(*nq));
		if (!nq)
			return -ENOMEM;
		r->queues = nq;
		if (!(nq[r->nqueues] = strdup(qn)))
			return -ENOMEM;
		q = r->nqueues;
		if (hmap_put_str(&R->queue_idx, nq[q], q) < 0)
			return -ENOMEM;
		r->nqueues++;
	}
	x->queue = (uint16_t)q;
	return 0;
}

/* ---- one run's steps ---- */

static int on_placed(void *ud, struct job *j)
{
	struct run *R = ud;
	if (grow((void **)&R->placed, &R->capplaced, R->nplaced + 1, sizeof(*R->placed)) < 0)
		return -ENOMEM;
	R->placed[R->nplaced++] = j->id;
	return 0;
}

static uint32_t held_devices(const struct job *j)
{
	uint32_t n = 0;
	for (uint32_t w = 0; w < j->nplaced; w++)
		n += (uint32_t)__builtin_popcountll(j->placement[w].mask);
	return n;
}

static double work_of(const struct fleet *f, const struct job *j, int64_t seconds)
{
	double w = 0;
	for (uint32_t k = 0; k < j->nplaced; k++) {
		const struct model *m = &f->models[j->placement[k].model];
		w += __builtin_popcountll(j->placement[k].mask) * m->bf16_tflops *
		     place_perf(m, j->placement[k].cap_w);
	}
	return w * (double)seconds;
}

/* After a pass: what each job it touched became. */
static int settle(struct run *R)
{
	for (uint32_t i = 0; i < R->nplaced; i++) {
		struct job *j = jobs_get(R->t, R->placed[i]);
		struct sim_record *x = j ? rec(R, j) : NULL;
		if (!j)
			continue;
		if (j->state == JOB_PENDING) {          /* sent back: preempted */
			R->r->requeues++;
			if (j->reason && strncmp(j->reason, "PREEMPTED", 9) == 0) {
				R->r->preemptions++;
				if (x)
					x->preemptions++;
			}
			continue;
		}
		if (j->state != JOB_PLACED)             /* a running job grew: same end */
			continue;
		struct err e;
		if (place_report(R->f, R->t, j, JOB_RUNNING, R->now, &e) < 0)
			continue;
		R->r->placements++;
		int64_t d = j->req.duration_s > 0 ? j->req.duration_s : JOB_DEFAULT_DURATION_S;
		if (heap_push(R, (struct end){R->now + d, j->placed_at, j->id}) < 0)
			return -ENOMEM;
		if (x) {
			x->start = R->now - R->o->start;
			x->devices = held_devices(j);
			x->model = j->nplaced ? j->placement[0].model : UINT16_MAX;
		}
	}
	R->nplaced = 0;
	return 0;
}

static int sample(struct run *R, int64_t at)
{
	struct sim_result *r = R->r;
	if (r->nsamples >= SIM_MAX_SAMPLES)
		return 0;
	if (grow((void **)&r->samples, &R->capsamples, r->nsamples + 1, sizeof(*r->samples)) < 0)
		return -ENOMEM;
	struct sim_sample *s = &r->samples[r->nsamples];
	memset(s, 0, sizeof(*s));
	s->allocated = calloc(r->nmodels ? r->nmodels : 1, sizeof(*s->allocated));
	s->reserved_w = calloc(SIM_MAX_TRACKED_DOMAINS, sizeof(*s->reserved_w));
	s->budget_w = calloc(SIM_MAX_TRACKED_DOMAINS, sizeof(*s->budget_w));
	if (!s->allocated || !s->reserved_w || !s->budget_w) {
		free(s->allocated);
		free(s->reserved_w);
		free(s->budget_w);
		return -ENOMEM;
	}
	r->nsamples++;
	s->t = at - R->o->start;
	s->pending = R->t->npending;
	s->running = R->t->nactive;
	for (uint32_t a = 0; a < R->t->nactive; a++) {
		const struct job *j = R->t->active[a];
		for (uint32_t w = 0; w < j->nplaced; w++)
			if (j->placement[w].model < r->nmodels)
				s->allocated[j->placement[w].model] +=
					(uint32_t)__builtin_popcountll(j->placement[w].mask);
	}
	for (uint32_t k = 0; k < r->ntracked; k++) {
		s->reserved_w[k] = R->f->domains[r->tracked[k]].reserved_w;
		s->budget_w[k] = R->f->domains[r->tracked[k]].budget_w;
	}
	return 0;
}

/* Move the clock to `to`: samples due before it, and the energy of the interval. */
static int advance(struct run *R, int64_t to)
{
	while (R->next_sample <= to) {
		if (sample(R, R->next_sample) < 0)
			return -ENOMEM;
		R->next_sample += R->sample_s;
	}
	int64_t roots_w = 0;
	for (uint32_t k = 0; k < R->f->nroots; k++)
		roots_w += R->f->domains[R->f->roots[k]].reserved_w;
	R->r->energy_j += (double)roots_w * (double)(to - R->now);
	R->now = to;
	return 0;
}

static void end_due(struct run *R)
{
	while (R->nheap && R->heap[0].at <= R->now) {
		struct end x = heap_pop(R);
		struct job *j = jobs_get(R->t, x.id);
		/* a live copy's job may still be PLACED (no launcher reported it running) */
		if (!j || !job_state_active(j->state) || j->placed_at != x.placed_at)
			continue;                   /* preempted or requeued since */
		struct sim_record *r = rec(R, j);
		if (r)
			r->work += work_of(R->f, j, R->now - j->placed_at);
		struct err e;
		if (place_report(R->f, R->t, j, JOB_SUCCEEDED, R->now, &e) == 0 && r)
			r->end = R->now - R->o->start;
	}
}

static void requeue_on_node(struct run *R, uint32_t node, const char *why)
{
	char reason[128];
	snprintf(reason, sizeof(reason), "%s: node %s", why, R->f->nodes[node].name);
	/* walk from the end: a requeued job leaves the active set by swap-remove */
	for (uint32_t a = R->t->nactive; a-- > 0;) {
		struct job *j = R->t->active[a];
		bool on = false;
		for (uint32_t w = 0; w < j->nplaced && !on; w++)
			on = j->placement[w].node == node;
		if (on && place_requeue(R->f, R->t, j, reason) == 0)
			R->r->requeues++;
	}
}

static void apply_event(struct run *R, const struct sim_event *ev)
{
	struct fleet *f = R->f;
	switch (ev->action) {
	case SIM_NODE_DOWN:
		if (fleet_node_set_down(f, ev->node, true))
			requeue_on_node(R, ev->node, "NODE_DOWN");
		break;
	case SIM_NODE_UP:
		if (f->nodes[ev->node].state == NODE_DOWN)
			fleet_node_set_down(f, ev->node, false);
		else
			fleet_node_resume(f, ev->node, NULL);
		break;
	case SIM_NODE_DRAIN:
		fleet_node_drain(f, ev->node, NULL);
		break;
	case SIM_BUDGET:
		if (ev->budget_w > f->domains[ev->domain].budget_w)
			f->epoch++;                 /* room may have grown */
		f->domains[ev->domain].budget_w = ev->budget_w;
		break;
	default:
		break;
	}
}

/* Diagnose what is still pending: the reason code placement gives. */
static void diagnose_pending(struct run *R)
{
	char buf[256];
	uint32_t budget = 5000;   /* dry runs at most: each can cost a scan */
	for (uint32_t i = 0; i < R->t->npending; i++) {
		struct job *j = R->t->pending[i];
		struct sim_record *x = rec(R, j);
		if (!x)
			continue;
		if (budget == 0) {
			snprintf(x->reason, sizeof(x->reason), "NOT_DIAGNOSED");
			continue;
		}
		budget--;
		buf[0] = '\0';
		int rc = place_diagnose(R->f, j, buf, sizeof(buf));
		if (rc == 1)
			snprintf(x->reason, sizeof(x->reason), "FITS_NOW");
		else
			snprintf(x->reason, sizeof(x->reason), "%.*s", (int)strcspn(buf, ":"), buf);
	}
}

static void track_domains(struct sim_result *r, const struct fleet *f)
{
	for (uint32_t k = 0; k < f->nroots && r->ntracked < SIM_MAX_TRACKED_DOMAINS; k++)
		r->tracked[r->ntracked++] = f->roots[k];
	for (uint32_t d = 0; d < f->ndomains && r->ntracked < SIM_MAX_TRACKED_DOMAINS; d++) {
		uint32_t p = f->domains[d].parent;
		if (p != FLEET_NONE && f->domains[p].parent == FLEET_NONE)
			r->tracked[r->ntracked++] = d;
	}
}

int sim_run(struct fleet *f, struct jobs *t, struct sim_job *jobs, uint32_t njobs,
	    const struct sim_event *events, uint32_t nevents, const struct sim_options *o,
	    struct sim_result *out, struct err *e)
{
	struct sim_result r = {0};
	struct run R = {.f = f, .t = t, .o = o, .r = &r, .now = o->start};
	uint32_t next_job = 0, next_ev = 0;
	int rc = 0;

	hmap_init_str(&R.queue_idx);
	for (uint32_t i = 0; i < nevents; i++)
		if ((events[i].action != SIM_BUDGET && events[i].node >= f->nnodes) ||
		    (events[i].action == SIM_BUDGET && events[i].domain >= f->ndomains)) {
			rc = err_set(e, ERR_INVALID, "events", "event %u names an unknown node or domain", i);
			goto fail;
		}
	/* changes at t = 0 (removed nodes, budgets) are the fleet the run starts from */
	while (next_ev < nevents && events[next_ev].at_s <= 0)
		apply_event(&R, &events[next_ev++]);
	r.nmodels = f->nmodels;
	r.devices_by_model = calloc(f->nmodels ? f->nmodels : 1, sizeof(*r.devices_by_model));
	if (!r.devices_by_model)
		goto nomem;
	for (uint32_t d = 0; d < f->ndevices; d++)   /* in service: on a node that is not down */
		if (f->devices[d].node != FLEET_NONE &&
		    f->nodes[f->devices[d].node].state != NODE_DOWN)
			r.devices_by_model[f->devices[d].model]++;
	track_domains(&r, f);
	/* the jobs already there: records, and the ends of the active ones */
	for (uint64_t id = 1; id < t->next_id; id++) {
		struct job *j = jobs_get(t, id);
		if (!j)
			continue;
		if (rec_add(&R, j, j->submitted_at - o->start) < 0)
			goto nomem;
		if (job_state_active(j->state) &&
		    heap_push(&R, (struct end){job_estimated_end(j), j->placed_at, j->id}) < 0)
			goto nomem;
		if (job_state_active(j->state)) {
			r.jobs[id - 1].start = j->placed_at - o->start;
			r.jobs[id - 1].devices = held_devices(j);
			r.jobs[id - 1].model = j->nplaced ? j->placement[0].model : UINT16_MAX;
		}
	}
	int64_t last_submit = njobs ? jobs[njobs - 1].submit_s : 0;
	R.sample_s = o->sample_s > 0 ? o->sample_s : last_submit / 500;
	if (R.sample_s < 60)
		R.sample_s = 60;
	R.next_sample = o->start;

	for (;;) {
		/* the next instant */
		int64_t next = INT64_MAX;
		if (next_job < njobs)
			next = o->start + jobs[next_job].submit_s;
		if (next_ev < nevents && o->start + events[next_ev].at_s < next)
			next = o->start + events[next_ev].at_s;
		if (R.nheap && R.heap[0].at < next)
			next = R.heap[0].at;
		if (next == INT64_MAX)
			break;                  /* nothing will ever change again */
		if (o->resolution_s > 1) {      /* round up to the end of its step */
			int64_t off = next - o->start, rs = o->resolution_s;
			next = o->start + (off + rs - 1) / rs * rs;
		}
		if (o->until_s > 0 && next > o->start + o->until_s) {
			if (advance(&R, o->start + o->until_s) < 0)
				goto nomem;
			r.stopped = true;
			break;
		}
		bool poll = o->stop && ((r.steps & 63) == 63 || r.nsamples > R.checked_samples + 1024);
		if (poll)
			R.checked_samples = r.nsamples;
		if ((o->max_steps && r.steps >= o->max_steps) || (poll && o->stop(o->stop_ud))) {
			r.stopped = true;
			break;
		}
		if (next < R.now)
			next = R.now;
		if (advance(&R, next) < 0)
			goto nomem;
		r.steps++;
		end_due(&R);
		while (next_ev < nevents && o->start + events[next_ev].at_s <= R.now)
			apply_event(&R, &events[next_ev++]);
		while (next_job < njobs && o->start + jobs[next_job].submit_s <= R.now) {
			struct job *j = jobs[next_job].job;
			jobs[next_job].job = NULL;
			next_job++;
			j->id = 0;
			j->state = JOB_PENDING;
			j->submitted_at = R.now;
			if ((rc = jobs_add(t, j)) < 0) {
				job_free(j);
				goto fail_rc;
			}
			if (rec_add(&R, j, R.now - o->start) < 0)
				goto nomem;
		}
		if ((rc = place_pass(f, t, R.now, UINT32_MAX, on_placed, &R)) < 0)
			goto fail_rc;
		if (settle(&R) < 0)
			goto nomem;
	}
	/* a last sample at the end, and what the records say now */
	if (sample(&R, R.now) < 0)
		goto nomem;
	r.span_s = R.now - o->start;
	for (uint32_t i = 0; i < r.njobs; i++) {
		const struct job *j = jobs_get(t, r.jobs[i].id);
		if (j)
			r.jobs[i].state = (uint8_t)j->state;
	}
	diagnose_pending(&R);
	for (uint32_t i = next_job; i < njobs; i++) {   /* not reached: still ours to free */
		job_free(jobs[i].job);
		jobs[i].job = NULL;
	}
	free(R.heap);
	free(R.placed);
	hmap_free(&R.queue_idx);
	*out = r;
	return 0;
nomem:
	rc = err_set(e, -ENOMEM, NULL, "out of memory");
	goto fail;
fail_rc:
	err_set(e, rc, NULL, "the placement core failed (%d)", rc);
fail:
	for (uint32_t i = next_job; i < njobs; i++) {
		job_free(jobs[i].job);
		jobs[i].job = NULL;
	}
	free(R.heap);
	free(R.placed);
	hmap_free(&R.queue_idx);
	sim_result_free(&r);
	return rc;
}

void sim_result_free(struct sim_result *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->nsamples; i++) {
		free(r->samples[i].allocated);
		free(r->samples[i].reserved_w);
		free(r->samples[i].budget_w);
	}
	free(r->samples);
	free(r->jobs);
	free(r->devices_by_model);
	for (uint32_t i = 0; i < r->nqueues; i++)
		free(r->queues[i]);
	free(r->queues);
	memset(r, 0, sizeof(*r));
}
