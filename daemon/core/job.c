/*
 * job — the job table (dense by id), the pending queue and the idempotency index.
 * Owns every job it was given. Never places, persists or reads a clock.
 * Invariant: j is in t->pending exactly when j->state == JOB_PENDING, and t->pending is
 * sorted by (priority desc, id asc); count_by_state counts every job in the table.
 */
#include "job.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jobs_init(struct jobs *t)
{
	memset(t, 0, sizeof(*t));
	t->next_id = 1;
	hmap_init_str(&t->by_idem);
}

struct job *job_new(void)
{
	struct job *j = calloc(1, sizeof(*j));
	if (j) {
		j->state = JOB_PENDING;
		j->req.topology = TOPO_ANY;
	}
	return j;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->name);
	free(j->queue);
	free(j->owner);
	free(j->idem_key);
	free(j->reason);
	free(j->req.models);
	free(j->placement);
	free(j);
}

static int clone_str(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -ENOMEM : 0;
}

struct job *job_clone(const struct job *j)
{
	struct job *c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	*c = *j;
	c->name = c->queue = c->owner = c->idem_key = c->reason = NULL;
	c->req.models = NULL;
	c->placement = NULL;
	if (clone_str(&c->name, j->name) < 0 || clone_str(&c->queue, j->queue) < 0 ||
	    clone_str(&c->owner, j->owner) < 0 || clone_str(&c->idem_key, j->idem_key) < 0 ||
	    clone_str(&c->reason, j->reason) < 0)
		goto fail;
	if (j->req.models) {
		size_t n = j->req.nmodels ? j->req.nmodels : 1;   /* owners size it nmodels or more */
		c->req.models = calloc(n, sizeof(*c->req.models));
		if (!c->req.models)
			goto fail;
		memcpy(c->req.models, j->req.models, j->req.nmodels * sizeof(*c->req.models));
	}
	if (j->placement) {
		size_t n = j->req.count ? j->req.count : 1;
		c->placement = malloc(n * sizeof(*c->placement));
		if (!c->placement)
			goto fail;
		memcpy(c->placement, j->placement, n * sizeof(*c->placement));
	}
	return c;
fail:
	job_free(c);
	return NULL;
}

int jobs_clone(struct jobs *dst, const struct jobs *src, bool (*keep)(const struct job *j))
{
	for (uint64_t id = 1; id < src->next_id; id++) {
		const struct job *j = jobs_get(src, id);
		if (!j || (keep && !keep(j)))
			continue;
		struct job *c = job_clone(j);
		if (!c)
			return -ENOMEM;
		int rc = jobs_add(dst, c);
		if (rc < 0) {
			job_free(c);
			return rc;
		}
	}
	if (dst->next_id < src->next_id)
		dst->next_id = src->next_id;
	return 0;
}

void jobs_free(struct jobs *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; i < t->cap; i++)
		job_free(t->by_id[i]);
	free(t->by_id);
	free(t->pending);
	free(t->active);
	hmap_free(&t->by_idem);
	memset(t, 0, sizeof(*t));
}

/* a goes before b in the pending queue */
static bool queue_before(const struct job *a, const struct job *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	return a->id < b->id;
}

static uint32_t pending_pos(const struct jobs *t, const struct job *j)
{
	uint32_t lo = 0, hi = t->npending;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (queue_before(t->pending[mid], j))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int pending_reserve(struct jobs *t)
{
	if (t->npending < t->pending_cap)
		return 0;
	uint32_t ncap = t->pending_cap ? t->pending_cap * 2 : 64;
	struct job **n = realloc(t->pending, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->pending = n;
	t->pending_cap = ncap;
	return 0;
}

static void pending_insert(struct jobs *t, struct job *j)
{
	uint32_t at = pending_pos(t, j);
	memmove(&t->pending[at + 1], &t->pending[at], (t->npending - at) * sizeof(*t->pending));
	t->pending[at] = j;
	t->npending++;
}

static void pending_remove(struct jobs *t, struct job *j)
{
	uint32_t at = pending_pos(t, j);
	if (at >= t->npending || t->pending[at] != j)
		abort(); /* the invariant is broken: a programming error */
	memmove(&t->pending[at], &t->pending[at + 1], (t->npending - at - 1) * sizeof(*t->pending));
	t->npending--;
}

static int active_reserve(struct jobs *t)
{
	if (t->nactive < t->active_cap)
		return 0;
	uint32_t ncap = t->active_cap ? t->active_cap * 2 : 64;
	struct job **n = realloc(t->active, ncap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	t->active = n;
	t->active_cap = ncap;
	return 0;
}

static void active_insert(struct jobs *t, struct job *j)
{
	j->active_idx = t->nactive;
	t->active[t->nactive++] = j;
}

static void active_remove(struct jobs *t, struct job *j)
{
	uint32_t i = j->active_idx;
	if (i >= t->nactive || t->active[i] != j)
		abort(); /* the invariant is broken: a programming error */
	t->active[i] = t->active[--t->nactive];
	t->active[i]->active_idx = i;
}

static void idem_name(char *buf, size_t n, uint32_t uid, const char *key)
{
	snprintf(buf, n, "%u:%s", uid, key);
}

int jobs_add(struct jobs *t, struct job *j)
{
	char key[320];
	uint64_t id = j->id ? j->id : t->next_id;

	if (id <= t->cap && t->by_id[id - 1])
		return ERR_CONFLICT;
	if (id > t->cap) {
		uint64_t ncap = t->cap ? t->cap : 1024;
		while (ncap < id)
			ncap *= 2;
		struct job **n = realloc(t->by_id, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + t->cap, 0, (ncap - t->cap) * sizeof(*n));
		t->by_id = n;
		t->cap = ncap;
	}
	if (j->state == JOB_PENDING && pending_reserve(t) < 0)
		return -ENOMEM;
	if (job_state_active(j->state) && active_reserve(t) < 0)
		return -ENOMEM;
	if (j->idem_key) {
		idem_name(key, sizeof(key), j->uid, j->idem_key);
		if (hmap_put_str(&t->by_idem, key, (uint32_t)(id - 1)) < 0)
			return -ENOMEM;
	}
	j->id = id;
	t->by_id[id - 1] = j;
	if (id >= t->next_id)
		t->next_id = id + 1;
	if (j->state == JOB_PENDING)
		pending_insert(t, j);
	if (job_state_active(j->state))
		active_insert(t, j);
	t->count_by_state[j->state]++;
	return 0;
}

struct job *jobs_get(const struct jobs *t, uint64_t id)
{
	if (id == 0 || id > t->cap)
		return NULL;
	return t->by_id[id - 1];
}

struct job *jobs_find_idem(const struct jobs *t, uint32_t uid, const char *key)
{
	char k[320];
	uint32_t v;

	idem_name(k, sizeof(k), uid, key);
	if (!hmap_get_str(&t->by_idem, k, &v))
		return NULL;
	return t->by_id[v];
}

int jobs_set_state(struct jobs *t, struct job *j, enum job_state s)
{
	if (j->state == s)
		return 0;
	if (s == JOB_PENDING && pending_reserve(t) < 0)
		return -ENOMEM;
	if (job_state_active(s) && !job_state_active(j->state) && active_reserve(t) < 0)
		return -ENOMEM;
	if (j->state == JOB_PENDING)
		pending_remove(t, j);
	if (job_state_active(j->state) && !job_state_active(s))
		active_remove(t, j);
	else if (job_state_active(s) && !job_state_active(j->state))
		active_insert(t, j);
	t->count_by_state[j->state]--;
	j->state = s;
	t->count_by_state[s]++;
	if (s == JOB_PENDING)
		pending_insert(t, j);
	return 0;
}

bool job_state_finished(enum job_state s)
{
	return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

bool job_state_active(enum job_state s)
{
	return s == JOB_PLACED || s == JOB_RUNNING;
}

int64_t job_estimated_end(const struct job *j)
{
	return j->placed_at + (j->req.duration_s > 0 ? j->req.duration_s : JOB_DEFAULT_DURATION_S);
}

static const char *const state_names[] = {"pending", "placed", "running", "succeeded", "failed",
					  "cancelled"};
static const char *const kind_names[] = {"training", "inference"};
static const char *const topo_names[] = {"any", "same_node", "same_group", "same_rack", "spread"};

const char *job_state_name(enum job_state s)
{
	return (unsigned)s < _JOB_STATE_MAX ? state_names[s] : "?";
}

const char *job_kind_name(enum job_kind k)
{
	return (unsigned)k < _JOB_KIND_MAX ? kind_names[k] : "?";
}

const char *job_topology_name(enum job_topology t)
{
	return (unsigned)t < _TOPO_MAX ? topo_names[t] : "?";
}

static int parse(const char *const *names, int n, const char *s, int *out)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0) {
			*out = i;
			return 0;
		}
	return ERR_INVALID;
}

int job_state_parse(const char *s, enum job_state *out)
{
	int v, r = parse(state_names, _JOB_STATE_MAX, s, &v);
	if (r == 0)
		*out = (enum job_state)v;
	return r;
}

int job_kind_parse(const char *s, enum job_kind *out)
{
	int v, r = parse(kind_names, _JOB_KIND_MAX, s, &v);
	if (r == 0)
		*out = (enum job_kind)v;
	return r;
}

int job_topology_parse(const char *s, enum job_topology *out)
{
	int v, r = parse(topo_names, _TOPO_MAX, s, &v);
	if (r == 0)
		*out = (enum job_topology)v;
	return r;
}
