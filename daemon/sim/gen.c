/*
 * gen — synthetic traces (see gen.h; the default mix and its sources: docs/trace-format.md).
 *
 * Owns: a xoshiro256** generator on the stack of each gen_trace call, seeded by splitmix64.
 * Never: reads a clock or global random state, does I/O, writes *jobs_out before success.
 * Invariant: every job draws the same number of random numbers (GEN_DRAWS) whatever its
 * branches, so changing one share or weight leaves the other choices of every job as they
 * were (common random numbers: two mixes compare job for job).
 */
#include "gen.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "trace.h"

#define GEN_DRAWS 12

/* ---------------- PRNG ---------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1), 53 bits. */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---------------- defaults ---------------- */

static void set_shapes(struct gen_kind_mix *k, const struct gen_shape *s, uint32_t n)
{
	memcpy(k->shapes, s, n * sizeof(*s));
	k->nshapes = n;
}

void gen_params_default(struct gen_params *p, uint64_t seed)
{
	/* Training: Helios (all clusters) has median 1 GPU and a mean of 3.716 GPUs per GPU
	 * job; this table has median 1 and mean 3.709. How multi-GPU jobs split into gangs is
	 * an assumption (whole 8-device nodes per worker beyond one node). */
	static const struct gen_shape train[] = {
		{1, 1, 0.611}, {1, 2, 0.12}, {1, 4, 0.10}, {1, 8, 0.12}, {2, 8, 0.03},
		{4, 8, 0.013}, {8, 8, 0.004}, {16, 8, 0.0015}, {32, 8, 0.0004}, {64, 8, 0.0001},
	};
	/* Inference: an assumption (no public trace here gives serving shapes). */
	static const struct gen_shape infer[] = {
		{1, 1, 0.45}, {2, 1, 0.20}, {4, 1, 0.10}, {1, 2, 0.10}, {2, 2, 0.08},
		{4, 2, 0.04}, {2, 4, 0.02}, {2, 8, 0.01},
	};
	struct gen_kind_mix *t = &p->kind[GEN_TRAINING], *i = &p->kind[GEN_INFERENCE];

	memset(p, 0, sizeof(*p));
	p->seed = seed;
	p->jobs = 1000;
	p->span_s = 0;
	p->rate_per_hour = 60;

	t->share = 0.8;
	set_shapes(t, train, sizeof(train) / sizeof(train[0]));
	/* Helios GPU jobs: median run time 206 s, mean 6,652 s; a log-normal with that median
	 * and mean has sigma = sqrt(2 ln(6652 / 206)) = 2.64. */
	t->duration_median_s = 206;
	t->duration_sigma = 2.64;
	t->duration_min_s = 10;
	t->duration_max_s = 14 * 86400;
	t->constraint[GEN_ANY] = 0.35;
	t->constraint[GEN_NVIDIA] = 0.30;
	t->constraint[GEN_HUAWEI] = 0.15;
	t->constraint[GEN_MODEL] = 0.15;
	t->constraint[GEN_CAPABILITY] = 0.05;
	t->models[0] = "H100-SXM5-80GB";
	t->models[1] = "H200-SXM-141GB";
	t->models[2] = "A100-SXM4-80GB";
	t->models[3] = "Ascend910B3";
	t->models[4] = "Ascend910C";
	t->nmodels = 5;
	t->need_gib_per_device_lo = 40;
	t->need_gib_per_device_hi = 80;
	t->priority = 0;
	t->high_priority = 100;
	t->high_priority_share = 0.10;
	t->preemptible_share = 0.5;
	t->cap_auto_share = 0.2;
	t->min_perf = 0.8;
	t->same_rack_share = 0.25;
	t->queue = "research";
	t->name_prefix = "train";

	i->share = 0.2;
	set_shapes(i, infer, sizeof(infer) / sizeof(infer[0]));
	i->duration_median_s = 4 * 3600;
	i->duration_sigma = 1.0;
	i->duration_min_s = 600;
	i->duration_max_s = 7 * 86400;
	i->constraint[GEN_ANY] = 0.30;
	i->constraint[GEN_NVIDIA] = 0.25;
	i->constraint[GEN_HUAWEI] = 0.20;
	i->constraint[GEN_MODEL] = 0.15;
	i->constraint[GEN_CAPABILITY] = 0.10;
	i->models[0] = "H20-96GB";
	i->models[1] = "L40S";
	i->models[2] = "H100-SXM5-80GB";
	i->models[3] = "Ascend910B4";
	i->models[4] = "Ascend910C";
	i->nmodels = 5;
	i->need_gib_per_device_lo = 16;
	i->need_gib_per_device_hi = 80;
	i->priority = 500;
	i->high_priority = 500;
	i->high_priority_share = 0;
	i->preemptible_share = 0;
	i->cap_auto_share = 0;
	i->min_perf = 0.8;
	i->same_rack_share = 0;
	i->queue = "serving";
	i->name_prefix = "infer";
}

/* ---------------- validation ---------------- */

static bool weight_ok(double w)
{
	return isfinite(w) && w >= 0;
}

static bool share_ok(double s)
{
	return isfinite(s) && s >= 0 && s <= 1;
}

static int check_kind(const struct gen_kind_mix *k, int ki, struct err *e)
{
	char f[96];
	double sum = 0;

#define BAD(...) (snprintf(f, sizeof(f), __VA_ARGS__), f)
	if (k->share == 0)
		return 0;               /* never drawn: its other fields do not matter */
	if (k->nshapes == 0 || k->nshapes > GEN_MAX_SHAPES)
		return err_set(e, ERR_INVALID, BAD("kind[%d].shapes", ki),
			       "must hold 1-%d shapes", GEN_MAX_SHAPES);
	for (uint32_t s = 0; s < k->nshapes; s++) {
		const struct gen_shape *sh = &k->shapes[s];
		if (sh->count < 1 || sh->count > JOB_MAX_COUNT)
			return err_set(e, ERR_INVALID, BAD("kind[%d].shapes[%u].count", ki, s),
				       "must be 1-%d", JOB_MAX_COUNT);
		if (sh->devices < 1 || sh->devices > JOB_MAX_DEVICES)
			return err_set(e, ERR_INVALID, BAD("kind[%d].shapes[%u].devices", ki, s),
				       "must be 1-%d", JOB_MAX_DEVICES);
		if (!weight_ok(sh->weight))
			return err_set(e, ERR_INVALID, BAD("kind[%d].shapes[%u].weight", ki, s),
				       "must be a number >= 0");
		sum += sh->weight;
	}
	if (!(sum > 0))
		return err_set(e, ERR_INVALID, BAD("kind[%d].shapes", ki), "weights sum to 0");
	if (!(k->duration_median_s > 0) || !isfinite(k->duration_median_s))
		return err_set(e, ERR_INVALID, BAD("kind[%d].duration_median_s", ki), "must be > 0");
	if (!(k->duration_sigma >= 0) || !isfinite(k->duration_sigma) || k->duration_sigma > 10)
		return err_set(e, ERR_INVALID, BAD("kind[%d].duration_sigma", ki), "must be 0-10");
	if (!(k->duration_min_s >= 1) || !(k->duration_max_s >= k->duration_min_s) ||
	    k->duration_max_s > 10.0 * 365 * 86400)
		return err_set(e, ERR_INVALID, BAD("kind[%d].duration_min_s", ki),
			       "need 1 <= duration_min_s <= duration_max_s <= 10 years");
	sum = 0;
	for (int c = 0; c < _GEN_CONSTRAINT_MAX; c++) {
		if (!weight_ok(k->constraint[c]))
			return err_set(e, ERR_INVALID, BAD("kind[%d].constraint[%d]", ki, c),
				       "must be a number >= 0");
		sum += k->constraint[c];
	}
	if (!(sum > 0))
		return err_set(e, ERR_INVALID, BAD("kind[%d].constraint", ki), "weights sum to 0");
	if (k->constraint[GEN_MODEL] > 0 && (k->nmodels == 0 || k->nmodels > GEN_MAX_MODELS))
		return err_set(e, ERR_INVALID, BAD("kind[%d].models", ki),
			       "must name 1-%d models when constraint[GEN_MODEL] > 0", GEN_MAX_MODELS);
	for (uint32_t m = 0; k->constraint[GEN_MODEL] > 0 && m < k->nmodels; m++)
		if (!k->models[m] || !*k->models[m] || strlen(k->models[m]) > 47)
			return err_set(e, ERR_INVALID, BAD("kind[%d].models[%u]", ki, m),
				       "must be a model name of 1-47 characters");
	if (k->constraint[GEN_CAPABILITY] > 0 &&
	    (!(k->need_gib_per_device_lo >= 1) ||
	     !(k->need_gib_per_device_hi >= k->need_gib_per_device_lo) ||
	     k->need_gib_per_device_hi > 65536))
		return err_set(e, ERR_INVALID, BAD("kind[%d].need_gib_per_device_lo", ki),
			       "need 1 <= need_gib_per_device_lo <= need_gib_per_device_hi <= 65536");
	if (!share_ok(k->high_priority_share) || !share_ok(k->preemptible_share) ||
	    !share_ok(k->cap_auto_share) || !share_ok(k->same_rack_share))
		return err_set(e, ERR_INVALID, BAD("kind[%d]", ki),
			       "every *_share must be between 0 and 1");
	if (k->priority < -1000000 || k->priority > 1000000 || k->high_priority < -1000000 ||
	    k->high_priority > 1000000)
		return err_set(e, ERR_INVALID, BAD("kind[%d].priority", ki),
			       "priorities must lie in -1000000 … 1000000");
	if (k->cap_auto_share > 0 && !(k->min_perf >= 0.05 && k->min_perf <= 1))
		return err_set(e, ERR_INVALID, BAD("kind[%d].min_perf", ki), "must be 0.05-1");
	if (!k->name_prefix || !*k->name_prefix || strlen(k->name_prefix) > 100)
		return err_set(e, ERR_INVALID, BAD("kind[%d].name_prefix", ki),
			       "must be 1-100 characters");
	if (k->queue && (!*k->queue || strlen(k->queue) > 63))
		return err_set(e, ERR_INVALID, BAD("kind[%d].queue", ki), "must be 1-63 characters");
#undef BAD
	return 0;
}

static int check_params(const struct gen_params *p, struct err *e)
{
	int rc;

	if (p->jobs == 0 && !(p->span_s > 0))
		return err_set(e, ERR_INVALID, "jobs", "give a job count, a span, or both");
	if (p->jobs > TRACE_MAX_JOBS)
		return err_set(e, ERR_INVALID, "jobs", "at most %d", TRACE_MAX_JOBS);
	if (!isfinite(p->span_s) || p->span_s < 0 || p->span_s > TRACE_MAX_SUBMIT_S)
		return err_set(e, ERR_INVALID, "span_s", "must be 0-%g seconds", TRACE_MAX_SUBMIT_S);
	if (!isfinite(p->rate_per_hour) || !(p->rate_per_hour > 0) || p->rate_per_hour > 1e9)
		return err_set(e, ERR_INVALID, "rate_per_hour", "must be > 0 (jobs per hour)");
	if (!weight_ok(p->kind[GEN_TRAINING].share) || !weight_ok(p->kind[GEN_INFERENCE].share) ||
	    !(p->kind[GEN_TRAINING].share + p->kind[GEN_INFERENCE].share > 0))
		return err_set(e, ERR_INVALID, "kind", "shares must be >= 0 and not both 0");
	for (int k = 0; k < _GEN_KIND_MAX; k++)
		if ((rc = check_kind(&p->kind[k], k, e)) < 0)
			return rc;
	return 0;
}

/* ---------------- one job ---------------- */

/* Index picked by u in [0, 1) from n relative weights (sum > 0). */
static uint32_t pick(const double *w, uint32_t n, double u)
{
	double sum = 0, acc = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += w[i];
	u *= sum;
	for (uint32_t i = 0; i < n; i++) {
		acc += w[i];
		if (u < acc && w[i] > 0)
			return i;
	}
	for (uint32_t i = n; i-- > 0;)      /* rounding: the last positive weight */
		if (w[i] > 0)
			return i;
	return 0;
}

static json_t *accel(const char *vendor, const char *stack, const char *model)
{
	json_t *a = json_object();
	if (!a)
		return NULL;
	if ((vendor && json_object_set_new(a, "vendors", json_pack("[s]", vendor)) < 0) ||
	    (stack && json_object_set_new(a, "stack", json_string(stack)) < 0) ||
	    (model && json_object_set_new(a, "models", json_pack("[s]", model)) < 0)) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *make_job(const struct gen_params *p, uint32_t index, double t, const double *u)
{
	enum gen_kind kind = p->kind[GEN_TRAINING].share > 0 && p->kind[GEN_INFERENCE].share > 0
		? (u[1] * (p->kind[0].share + p->kind[1].share) < p->kind[0].share ? GEN_TRAINING
										: GEN_INFERENCE)
		: p->kind[GEN_TRAINING].share > 0 ? GEN_TRAINING : GEN_INFERENCE;
	const struct gen_kind_mix *k = &p->kind[kind];
	double w[GEN_MAX_SHAPES];
	for (uint32_t i = 0; i < k->nshapes; i++)
		w[i] = k->shapes[i].weight;
	const struct gen_shape *sh = &k->shapes[pick(w, k->nshapes, u[2])];
	bool training = kind == GEN_TRAINING;
	char name[128];
	json_t *job = json_object(), *a = NULL;
	int rc = 0;

	if (!job)
		return NULL;
	/* duration: log-normal by Box-Muller (u[3], u[4]), clamped, whole seconds */
	double z = sqrt(-2.0 * log(1.0 - u[3])) * cos(2.0 * M_PI * u[4]);
	double d = exp(log(k->duration_median_s) + k->duration_sigma * z);
	if (!(d >= k->duration_min_s))
		d = k->duration_min_s;
	if (d > k->duration_max_s)
		d = k->duration_max_s;
	json_int_t duration = (json_int_t)llround(d);
	if (duration < 1)
		duration = 1;

	snprintf(name, sizeof(name), "%s-%06u", k->name_prefix, index);
	rc |= json_object_set_new(job, "submit_s", json_real(t));
	rc |= json_object_set_new(job, "name", json_string(name));
	rc |= json_object_set_new(job, "kind", json_string(training ? "training" : "inference"));
	if (k->queue)
		rc |= json_object_set_new(job, "queue", json_string(k->queue));
	int32_t prio = u[8] < k->high_priority_share ? k->high_priority : k->priority;
	if (prio != 0)
		rc |= json_object_set_new(job, "priority", json_integer(prio));
	if (u[9] < k->preemptible_share)
		rc |= json_object_set_new(job, "preemptible", json_true());
	rc |= json_object_set_new(job, training ? "workers" : "replicas", json_integer(sh->count));

	enum gen_constraint c = (enum gen_constraint)pick(k->constraint, _GEN_CONSTRAINT_MAX, u[5]);
	if (c == GEN_CAPABILITY) {
		double lo = k->need_gib_per_device_lo, hi = k->need_gib_per_device_hi;
		double gib = sh->devices * (lo + (hi - lo) * u[7]);
		json_int_t need = ((json_int_t)ceil(gib / 8.0)) * 8;
		rc |= json_object_set_new(job, training ? "per_worker" : "per_replica",
					  json_pack("{s:I}", "memory_gib", need));
	} else {
		rc |= json_object_set_new(job, "devices", json_integer(sh->devices));
	}
	if (c == GEN_NVIDIA)
		a = accel("nvidia", "cuda", NULL);
	else if (c == GEN_HUAWEI)
		a = accel("huawei", "cann", NULL);
	else if (c == GEN_MODEL)
		a = accel(NULL, NULL, k->models[(uint32_t)(u[6] * k->nmodels) % k->nmodels]);
	if (c == GEN_NVIDIA || c == GEN_HUAWEI || c == GEN_MODEL)
		rc |= a ? json_object_set_new(job, "accelerator", a) : -1;
	if (u[10] < k->cap_auto_share)
		rc |= json_object_set_new(job, "power",
					  json_pack("{s:s, s:f}", "cap", "auto", "min_perf",
						    k->min_perf));
	if (training && sh->count > 1 && u[11] < k->same_rack_share)
		rc |= json_object_set_new(job, "topology", json_string("same_rack"));
	rc |= json_object_set_new(job, "duration_s", json_integer(duration));
	if (rc) {
		json_decref(job);
		return NULL;
	}
	return job;
}

int gen_trace(const struct gen_params *p, json_t **jobs_out, struct err *e)
{
	struct rng r;
	json_t *arr = NULL;
	double t = 0, mean_gap_s;
	int rc;

	if ((rc = check_params(p, e)) < 0)
		return rc;
	rng_seed(&r, p->seed);
	mean_gap_s = 3600.0 / p->rate_per_hour;
	if (!(arr = json_array()))
		goto nomem;
	for (uint32_t n = 0;; n++) {
		double u[GEN_DRAWS];
		for (int i = 0; i < GEN_DRAWS; i++)
			u[i] = rng_unit(&r);
		if (p->jobs && n >= p->jobs)
			break;
		t += -log(1.0 - u[0]) * mean_gap_s;
		double ms = round(t * 1000.0) / 1000.0;
		if (p->span_s > 0 && ms >= p->span_s)
			break;
		if (ms > TRACE_MAX_SUBMIT_S) {
			rc = err_set(e, ERR_INVALID, "rate_per_hour",
				     "arrivals run past %g s: raise the rate or lower jobs",
				     TRACE_MAX_SUBMIT_S);
			goto fail;
		}
		if (n >= TRACE_MAX_JOBS) {
			rc = err_set(e, ERR_TOO_LARGE, "span_s",
				     "the span at this rate gives more than %d jobs", TRACE_MAX_JOBS);
			goto fail;
		}
		json_t *job = make_job(p, n, ms, u);
		if (!job || json_array_append_new(arr, job) < 0)
			goto nomem;
	}
	*jobs_out = arr;
	return 0;
nomem:
	rc = err_set(e, -ENOMEM, NULL, "out of memory");
fail:
	json_decref(arr);
	return rc;
}
