/*
 * gen — a synthetic job trace from a seed and a workload description: Poisson arrivals,
 * a training/inference mix, per kind a weighted table of shapes (workers × devices), a
 * clamped log-normal duration, a weighted choice of accelerator constraint, priority and
 * preemptible shares. The defaults and their sources are in docs/trace-format.md.
 *
 * Owns: its PRNG (xoshiro256**, seeded through splitmix64 from params->seed; no global
 * state, no clock), the default mix.
 * Never: reads a clock, calls rand(), does I/O, keeps state between calls.
 * Contract: the same params (seed included) give the identical array on every call.
 */
#ifndef JOULE_SIM_GEN_H
#define JOULE_SIM_GEN_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define GEN_MAX_SHAPES 16
#define GEN_MAX_MODELS 16

/* Helios (SC '21), all four clusters: 1,580,464 GPU jobs on 6,220 GPUs over ~181 days. */
#define GEN_HELIOS_JOBS_PER_GPU_HOUR 0.0585

enum gen_kind { GEN_TRAINING, GEN_INFERENCE, _GEN_KIND_MAX };

/* What a job's accelerator request says. */
enum gen_constraint {
	GEN_ANY,            /* no accelerator member */
	GEN_NVIDIA,         /* "accelerator": {"vendors": ["nvidia"], "stack": "cuda"} */
	GEN_HUAWEI,         /* "accelerator": {"vendors": ["huawei"], "stack": "cann"} */
	GEN_MODEL,          /* "accelerator": {"models": [one of models[], uniformly]} */
	GEN_CAPABILITY,     /* per_worker / per_replica memory need instead of devices */
	_GEN_CONSTRAINT_MAX
};

struct gen_shape {
	uint32_t count;     /* workers (training) or replicas (inference), 1-4096 */
	uint32_t devices;   /* per worker/replica, 1-64 */
	double weight;      /* relative, >= 0 */
};

struct gen_kind_mix {
	double share;                          /* relative weight of this kind, >= 0 */
	struct gen_shape shapes[GEN_MAX_SHAPES];
	uint32_t nshapes;
	double duration_median_s;              /* log-normal median, > 0 */
	double duration_sigma;                 /* log-normal sigma (of ln seconds), >= 0 */
	double duration_min_s, duration_max_s; /* clamp, 1 <= min <= max */
	double constraint[_GEN_CONSTRAINT_MAX];/* relative weights */
	const char *models[GEN_MAX_MODELS];    /* for GEN_MODEL; needed when its weight > 0 */
	uint32_t nmodels;
	/* GEN_CAPABILITY: memory_gib = devices × U(lo, hi), rounded up to a multiple of 8 */
	double need_gib_per_device_lo, need_gib_per_device_hi;
	double high_priority_share;            /* this share gets high_priority, the rest priority */
	int32_t priority, high_priority;
	double preemptible_share;
	double cap_auto_share;                 /* "power": {"cap": "auto", "min_perf": min_perf} */
	double min_perf;
	double same_rack_share;                /* of jobs with count > 1 (training only) */
	const char *queue;                     /* NULL: no queue member ("default") */
	const char *name_prefix;               /* names are PREFIX-NNNNNN (job index) */
};

struct gen_params {
	uint64_t seed;
	uint32_t jobs;           /* stop after this many; 0 = no count limit */
	double span_s;           /* stop before this submit time; 0 = no time limit */
	double rate_per_hour;    /* mean arrivals per hour (exponential inter-arrival times) */
	struct gen_kind_mix kind[_GEN_KIND_MAX];
};

/* The default mix (docs/trace-format.md gives each figure's source) with the given seed,
 * jobs = 1000, span_s = 0 and rate_per_hour = 60. */
void gen_params_default(struct gen_params *p, uint64_t seed);

/*
 * Generate a trace: a new JSON array of job objects in the trace_load shape (submit_s a
 * real in whole milliseconds, non-decreasing; duration_s an integer), every one valid
 * against the built-in catalog when the models named are in it. At least one of jobs and
 * span_s must be set; at most TRACE_MAX_JOBS jobs. Returns 0, ERR_INVALID (e->field names
 * the parameter, e.g. "kind[0].shapes[2].devices"), or -ENOMEM.
 */
int gen_trace(const struct gen_params *p, json_t **jobs_out, struct err *e);

#endif
