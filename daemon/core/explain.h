/*
 * explain — why a job is pending, and what would make it fit.
 *
 * Owns: the funnel (how many nodes and devices each filter stage removes, with the top
 * offenders), the verdict, the power picture, the nearest miss and the concrete fixes.
 * Never: changes the fleet or the jobs (every dry run is undone, the epoch restored), does
 * I/O, reads a clock. The verdict comes from place_diagnose, the placement's own code run
 * as a dry run, so explain cannot disagree with placement.
 *
 * Reason codes (stable; docs/placement.md): FITS_NOW, NO_MODEL_MATCH,
 * INSUFFICIENT_DEVICES, TOPOLOGY, POWER_BUDGET, GANG_INCOMPLETE, RESERVED_FOR_HEAD,
 * NODE_DRAINING, NOT_PENDING.
 */
#ifndef JOULE_EXPLAIN_H
#define JOULE_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "job.h"

#define EXPLAIN_TOP 5
#define EXPLAIN_MAX_STAGES 9
#define EXPLAIN_MAX_FIXES 6

struct explain_offender {
	char name[64];
	char detail[96];
};

struct explain_stage {
	const char *name;           /* "queue", "model", "capability", "health", "free_devices",
				       "power", "topology", "gang", "reservation" */
	const char *code;           /* reason code this stage stands for */
	uint32_t nodes_in, nodes_removed, devices_removed;
	struct explain_offender top[EXPLAIN_TOP];
	uint32_t ntop;
};

struct explain_fix {
	const char *code;           /* FITS_AT_CAP, FITS_IF_PREEMPTED, FITS_WHEN_JOB_ENDS,
				       FITS_IF_NODE_RESUMED, NEVER_FITS */
	char text[192];
};

struct explain {
	uint64_t job;
	char code[32];              /* the verdict's reason code */
	char verdict[256];          /* "CODE: text" as placement says it */
	uint32_t queue_position;    /* 1 = next to be tried */
	struct explain_stage stages[EXPLAIN_MAX_STAGES];
	uint32_t nstages;
	bool power_known;           /* the tightest domain met by the nearest candidate */
	char power_domain[64];
	int64_t power_budget_w, power_reserved_w, power_need_w, power_shortfall_w; /* need: the whole job at the floor cap */
	char nearest_miss[192];
	struct explain_fix fixes[EXPLAIN_MAX_FIXES];
	uint32_t nfixes;
	bool start_known;
	int64_t estimated_start;    /* seconds since the epoch */
	uint64_t start_after_job;   /* 0: fits now */
};

/* Explain job j (any state; only PENDING gets a funnel). 0, or -ENOMEM. */
int explain_job(struct fleet *f, const struct jobs *t, const struct job *j, int64_t now,
		struct explain *out);

#endif
