/*
 * sim — the what-if simulator: the placement core (place_pass, the same code the daemon
 * runs) driven by a virtual clock over a job trace and scripted fleet events.
 *
 * Owns: the run's event queues (arrivals in submit order, a min-heap of job ends, the
 * scripted events), the time series it samples and the per-job records.
 * Never: does I/O, reads a clock (time is virtual: start + seconds), uses randomness, or
 * touches anything but the fleet and job table it is given (the caller's private copies).
 *
 * A job arrives at start + submit_s and joins the queue; at every instant something happens
 * (arrivals, ends, scripted events) the simulator applies all of it, then runs one queue
 * pass, exactly as the daemon runs a pass after each loop turn. A placed job is reported
 * running at once (a launcher that never fails) and succeeds duration_s later (job
 * requests without one hold JOB_DEFAULT_DURATION_S). Preempted jobs go back to pending
 * and run their whole duration again when placed again.
 */
#ifndef JOULE_SIM_H
#define JOULE_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "fleet.h"
#include "job.h"

#define SIM_MAX_TRACKED_DOMAINS 16     /* domains sampled: the roots, then their children */
#define SIM_MAX_SAMPLES 100000

/* One job of the trace: decoded (job_new + trace_job_decode), not yet in a table. The
 * simulator takes ownership of job. */
struct sim_job {
	struct job *job;
	int64_t submit_s;
};

enum sim_action { SIM_NODE_DOWN, SIM_NODE_UP, SIM_NODE_DRAIN, SIM_BUDGET, _SIM_ACTION_MAX };

/* A scripted change at start + at_s. */
struct sim_event {
	int64_t at_s;
	enum sim_action action;
	uint32_t node;              /* SIM_NODE_*: the node index */
	uint32_t domain;            /* SIM_BUDGET: the domain index */
	int64_t budget_w;           /* SIM_BUDGET */
};

struct sim_options {
	int64_t start;              /* virtual epoch seconds of t = 0 */
	int64_t sample_s;           /* 0: span / 500, at least 60 */
	int64_t until_s;            /* stop here (0: when every job ended or can never start) */
	uint64_t max_steps;         /* instants processed at most (0: no limit) */
	/* > 1: the clock moves in steps of this many seconds, like a scheduler cycle: what
	 * happens within a step (arrivals, ends, events) is applied together at its end.
	 * 0 or 1: every second that has something happening is its own instant (the daemon's
	 * behaviour exactly; the slowest). */
	int64_t resolution_s;
	/* polled every 64 instants (and every 1,024 samples); true stops the run early (the
	 * daemon's wall-clock bound) */
	bool (*stop)(void *ud);
	void *stop_ud;
};

/* What happened to one job. Times are seconds from start; -1 = never. */
struct sim_record {
	uint64_t id;
	int64_t submit, start, end;     /* start: the last placement */
	uint32_t devices;               /* held in the last placement */
	uint16_t model;                 /* of the last placement (UINT16_MAX: never placed) */
	uint16_t queue;                 /* index into sim_result.queues */
	uint8_t kind;                   /* enum job_kind */
	uint8_t state;                  /* enum job_state at the end of the run */
	uint32_t preemptions;
	double work;                    /* TFLOP: devices × BF16 TFLOPS × perf(cap) × seconds */
	char reason[24];                /* still pending at the end: the reason code */
};

struct sim_sample {
	int64_t t;
	uint32_t pending, running;
	uint32_t *allocated;            /* per model: devices allocated */
	int64_t *reserved_w;            /* per tracked domain */
	int64_t *budget_w;              /* per tracked domain */
};

struct sim_result {
	struct sim_record *jobs;        /* by id order */
	uint32_t njobs;
	struct sim_sample *samples;
	uint32_t nsamples;
	uint32_t nmodels;
	uint32_t *devices_by_model;     /* devices of each model in service after t = 0's events */
	uint32_t tracked[SIM_MAX_TRACKED_DOMAINS];
	uint32_t ntracked;
	char **queues;
	uint32_t nqueues;
	int64_t span_s;                 /* virtual time simulated */
	uint64_t steps;                 /* instants processed */
	uint64_t placements, preemptions, requeues;
	double energy_j;                /* Σ over time of the roots' reserved watts */
	bool stopped;                   /* cut short by until_s, max_steps or stop */
};

/*
 * Run jobs (sorted by submit_s; ownership of every job passes to t, even on error) and
 * events (sorted by at_s) on f and t, which may already hold active and pending jobs (a
 * copy of a live daemon's state: active ones end at placed_at + duration). Returns 0 with
 * *out filled (free with sim_result_free), or -ENOMEM / ERR_INVALID (an event names an
 * unknown node or domain) with e filled.
 */
int sim_run(struct fleet *f, struct jobs *t, struct sim_job *jobs, uint32_t njobs,
	    const struct sim_event *events, uint32_t nevents, const struct sim_options *o,
	    struct sim_result *out, struct err *e);
void sim_result_free(struct sim_result *r);

#endif
