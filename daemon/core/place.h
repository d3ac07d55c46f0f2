/*
 * place — placement: finds devices for a job under every constraint and the power ledger,
 * commits gangs whole, releases them, and runs the queue pass.
 *
 * Owns: the placement rules (see proto/API.md "Placement"), the queue pass order.
 * Never: does I/O or reads a clock (now comes in), persists anything (the caller learns of
 * every change through place_cb and persists it), places a gang partially, lets a
 * domain's reserved watts exceed its budget.
 */
#ifndef JOULE_PLACE_H
#define JOULE_PLACE_H

#include <stdint.h>

#include "fleet.h"
#include "job.h"

/* Called after a job changed state inside a pass; the job is consistent. A non-zero return
 * stops the pass and is returned from it. */
typedef int (*place_cb)(void *ud, struct job *j);

/*
 * Try to place one PENDING job now. On success the job is PLACED (placement filled,
 * devices allocated, watts charged, placed_at = now) and 0 is returned. When it does not
 * fit, returns 1, leaves everything as it was, sets j->tried_epoch and j->reason (a short
 * static-length explanation; -ENOMEM possible). Negative on ENOMEM.
 */
int place_try(struct fleet *f, struct jobs *t, struct job *j, int64_t now);

/* Release a placed/running job's devices and watts (placement kept for history). */
void place_release(struct fleet *f, struct job *j);

/* Re-apply a stored placement at load time (the job is PLACED or RUNNING). Returns 0 or
 * ERR_CONFLICT when a device is already held, a node is unknown, or power would overflow. */
int place_restore(struct fleet *f, struct job *j, struct err *e);

/*
 * Walk the pending queue in order and try each job not yet tried at the current epoch,
 * at most `max_tries` tries. Calls cb for each job placed. Returns the number of tries
 * made (so a caller knows whether work may remain), or a negative error from cb/ENOMEM.
 */
int place_pass(struct fleet *f, struct jobs *t, int64_t now, uint32_t max_tries,
	       place_cb cb, void *ud);

/* Cancel: PENDING/PLACED/RUNNING → CANCELLED, devices released, finished_at = now.
 * ERR_CONFLICT when already finished. */
int place_cancel(struct fleet *f, struct jobs *t, struct job *j, int64_t now, struct err *e);

#endif
