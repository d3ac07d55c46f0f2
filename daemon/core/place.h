/*
 * place — the placement engine: finds devices for a job under every constraint and the
 * power ledger, scores the alternatives, commits gangs whole, releases them, and runs the
 * queue pass (priority, FIFO, backfill behind a reservation, preemption).
 *
 * Owns: the placement rules and the scoring (see docs/placement.md, which gives the
 * weights), the queue policy, the performance-vs-power-cap model used by "cap":"auto".
 * Never: does I/O or reads a clock (now comes in), persists anything (the caller learns of
 * every change through place_cb), places a gang partially, lets a domain's reserved watts
 * exceed its budget, preempts a job of equal or higher priority or one not preemptible.
 * Deterministic: the same fleet, jobs and calls give the same placements.
 */
#ifndef JOULE_PLACE_H
#define JOULE_PLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "job.h"

/* Called after a job changed state or placement inside the engine (placed, grown,
 * preempted back to pending); the job is consistent. A non-zero return stops the pass and
 * is returned from it. */
typedef int (*place_cb)(void *ud, struct job *j);

/* Performance-vs-cap model (docs/power-model.md): relative performance at cap c on a
 * device of TDP t is min(1, (c/t)^PLACE_PERF_ALPHA). */
double place_perf(const struct model *m, uint32_t cap_w);
/* The lowest cap keeping place_perf >= min_perf, never below min_cap_w. */
uint32_t place_auto_floor(const struct model *m, double min_perf);

/*
 * Is model m usable for the request, and how? Writes the starting per-device cap (the fixed
 * cap, clamped to tdp_w; tdp_w for none or auto) and the devices per worker (the request's
 * count, or in capability mode the smallest of 1, 2, 4, 8 meeting every need). Shared by
 * placement and explain so that they cannot disagree.
 */
bool place_model_fits_request(const struct fleet *f, const struct job_request *r, uint16_t m,
			      uint32_t *cap_w, uint32_t *devices);

/*
 * Try to place one PENDING job now (no preemption, no reservation: see place_pass). On
 * success the job is PLACED (placement filled, devices allocated, watts charged, placed_at
 * = now) and 0 is returned. When it does not fit, returns 1, leaves the fleet as it was,
 * sets j->tried_epoch and j->reason. Negative on ENOMEM.
 */
int place_try(struct fleet *f, struct jobs *t, struct job *j, int64_t now);

/* Dry run: would the job fit now (devices and watts as they are)? Nothing changes. With
 * cap_override > 0 the per-device cap is that (explain's "fits at cap N W"). Returns 1
 * fits, 0 does not, negative on ENOMEM. model_out and cap_out (may be NULL) tell how. */
int place_would_fit(struct fleet *f, const struct job *j, uint32_t cap_override,
		    uint16_t *model_out, uint32_t *cap_out);

/* Dry run with the placement's own diagnosis: 1 when the job fits now; 0 with buf set to
 * the reason placement would give ("CODE: text", the codes of docs/placement.md);
 * negative on ENOMEM. Nothing changes. */
int place_diagnose(struct fleet *f, const struct job *j, char *buf, size_t n);

/* Release a placed/running job's devices and watts (placement kept for history). */
void place_release(struct fleet *f, struct job *j);

/* Re-apply a stored placement at load time (the job is PLACED or RUNNING). Returns 0 or
 * ERR_CONFLICT when a device is already held, a node is unknown, or power would overflow. */
int place_restore(struct fleet *f, struct job *j, struct err *e);

/* When could job j start, if running jobs end at their estimated times? Returns 1 and
 * *start (>= now) and *after_job (the job whose end makes room, 0 when it fits now), or 0
 * when it would not fit even after every running job ended, or negative on ENOMEM.
 * Nothing changes. */
int place_estimate_start(struct fleet *f, const struct jobs *t, const struct job *j,
			 int64_t now, int64_t *start, uint64_t *after_job);

/* Which active jobs would job j have to preempt to fit now? Only preemptible jobs of
 * strictly lower priority, fewest and lowest-priority first. Returns the number of victims
 * written to out (at most max) with *fits = true, or 0 with *fits = false. Nothing changes. */
int place_find_victims(struct fleet *f, const struct jobs *t, const struct job *j,
		       struct job **out, uint32_t max, bool *fits);

/*
 * The queue pass: walk the pending queue in order (priority desc, id asc) and try each job
 * not yet tried at the current epoch, at most max_tries tries. A job that does not fit may
 * preempt (see place_find_victims); the highest job still blocked gets a reservation at its
 * estimated start, and a lower job may then start only if it ends (by duration_s, or the
 * default) before that. Inference jobs placed below their replica count grow as capacity
 * allows. cb fires for every job whose state or placement changed. Returns the number of
 * tries made, or a negative error from cb / ENOMEM.
 */
int place_pass(struct fleet *f, struct jobs *t, int64_t now, uint32_t max_tries,
	       place_cb cb, void *ud);

/* Cancel: PENDING/PLACED/RUNNING → CANCELLED, devices released, finished_at = now.
 * ERR_CONFLICT when already finished. */
int place_cancel(struct fleet *f, struct jobs *t, struct job *j, int64_t now, struct err *e);

/* A launcher's report: PLACED → RUNNING, PLACED/RUNNING → SUCCEEDED | FAILED (devices and
 * watts released, finished_at = now). ERR_CONFLICT for any other transition (nothing
 * changes); ERR_INVALID when `to` is not one of those three states. */
int place_report(struct fleet *f, struct jobs *t, struct job *j, enum job_state to, int64_t now,
		 struct err *e);

/* Send an active job back to PENDING (preemption, node loss): devices released, requeues
 * counted, reason set. -ENOMEM possible. */
int place_requeue(struct fleet *f, struct jobs *t, struct job *j, const char *reason);

#endif
