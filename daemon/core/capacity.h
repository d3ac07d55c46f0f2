/*
 * capacity — the capacity planners' picture: what is free, what is wanted, where the
 * watts are; grouped by model, vendor, power domain or queue, with fleet-wide totals.
 *
 * Owns: the counting rules (docs/planners.md and proto/API.md give them in prose) and the
 * result record, whose arrays it allocates and capacity_free releases.
 * Never: does I/O, reads a clock (now comes in), knows JSON, changes the fleet or the jobs,
 * walks the device array: every device count comes from a node slot's mask (popcounts of
 * mask & alloc_mask & healthy_mask), gang room from the free index's bucket counters
 * (fleet_model_room). Cost: O(slots × depth + pending jobs × models + active workers for
 * group_by=queue + domains), whatever the number of devices.
 *
 * Counting rules:
 *  - devices: total; allocated (held by a job, whatever its health); free (healthy,
 *    unallocated, node up — exactly what the free index counts); unhealthy (health != ok,
 *    allocated or not: may overlap allocated); draining (healthy, unallocated, node not up:
 *    draining, drained or down). total = allocated + free + draining + unhealthy
 *    − unhealthy_allocated.
 *  - demand: PENDING jobs only. A fixed-count job asks count × devices; a capability-mode
 *    job asks count × its per-worker need (memory, bandwidth, bf16), summed. A job counts
 *    toward every model it *could use*: place_model_fits_request says yes (models, vendors,
 *    stack, memory, FP8, cap_w not below min_cap_w, a capability need met by 1–8 devices),
 *    whether or not such devices exist or are free; toward a vendor when it could use any of
 *    its models; toward its queue; and once in the totals.
 *  - fragmentation (per model): fleet_model_room for 1, 2, 4 and 8 devices per worker (the
 *    largest gang placeable now, ignoring power and topology), and the nodes holding at least
 *    8 devices of the model with every one of them free.
 *  - power-limited: nodes are visited in fleet order; each free device of model m is
 *    "startable at TDP" when, after the devices counted before it, every domain from its
 *    node's leaf to the root still has tdp_w − idle_w of headroom left, which it then takes
 *    (devices below one domain share its headroom). A second, independent walk does the same
 *    at min_cap_w − idle_w. power_limited = free − startable at TDP. Greedy in node order,
 *    so a feasible set of simultaneous starts, not the largest one across mixed models.
 */
#ifndef JOULE_CAPACITY_H
#define JOULE_CAPACITY_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "job.h"

enum capacity_group {
	CAPACITY_BY_MODEL, CAPACITY_BY_VENDOR, CAPACITY_BY_DOMAIN, CAPACITY_BY_QUEUE,
	_CAPACITY_GROUP_MAX
};

#define CAPACITY_GANG_SIZES 4          /* 1, 2, 4, 8 devices per worker */
#define CAPACITY_WHOLE_NODE 8          /* "all 8 devices free" */
#define CAPACITY_MAX_DEPTH 1024        /* depth filter ceiling (a tree is never deeper) */

extern const uint32_t capacity_gang_sizes[CAPACITY_GANG_SIZES];

struct capacity_devices {
	uint64_t total, allocated, free, unhealthy, draining;
};

struct capacity_demand {
	uint64_t jobs;                 /* pending jobs */
	uint64_t devices;              /* Σ count × devices of fixed-count jobs */
	uint64_t cap_jobs;             /* capability-mode jobs */
	uint64_t cap_workers;          /* Σ count of those */
	uint64_t cap_memory_gib;       /* Σ count × need.memory_gib */
	uint64_t cap_bandwidth_gbs;    /* Σ count × need.bandwidth_gbs */
	double cap_bf16_tflops;        /* Σ count × need.bf16_tflops */
	uint64_t cap_devices;          /* model rows only: Σ count × devices this model takes */
	int64_t oldest_submitted_at;   /* 0 = no pending job */
};

struct capacity_row {
	const char *name;              /* model, vendor, domain or queue name: points into the
					  fleet or a job, valid while they are unchanged */
	const char *vendor;            /* model rows */
	uint32_t parent;               /* domain rows: parent's index in the fleet, FLEET_NONE */
	uint32_t depth;                /* domain rows: 0 = root */
	bool has_devices;              /* model, vendor, domain rows and totals */
	bool has_demand;               /* model, vendor, queue rows and totals */
	bool has_frag;                 /* model, vendor rows and totals */
	bool has_power;                /* domain rows and totals */
	bool has_active;               /* queue rows and totals */
	struct capacity_devices dev;
	uint64_t startable_tdp, startable_min_cap;
	struct capacity_demand dem;
	uint64_t max_workers[CAPACITY_GANG_SIZES];
	uint64_t whole_nodes_free;
	int64_t budget_w, reserved_w, headroom_w;
	int64_t usable_headroom_w;     /* domain rows: least headroom of it and its ancestors */
	bool measured;                 /* domain rows and totals: telemetry has a reading below */
	double measured_w;             /* then: device watts + host idle of measured nodes */
	uint64_t active_jobs, active_devices;   /* placed/running jobs and the devices they hold */
};

struct capacity {
	enum capacity_group by;
	int32_t depth;                 /* domain filter, -1 = every domain */
	struct capacity_row *rows;     /* model: catalog order; vendor: first appearance in the
					  catalog; domain: parents before children (depth first,
					  siblings in creation order); queue: by name */
	uint32_t nrows;
	struct capacity_row totals;    /* the whole fleet; each pending job once; power over the
					  roots; max_workers the best model; whole_nodes_free Σ */
};

/*
 * Compute the picture for one grouping. depth (>= 0) keeps only domains at that depth
 * (group_by domain only; -1 = all). Returns 0 and fills *out, or -ENOMEM with *out
 * untouched, or ERR_INVALID for a bad grouping or depth.
 */
int capacity_compute(const struct fleet *f, const struct jobs *t, enum capacity_group by,
		     int32_t depth, struct capacity *out);
/* Release what capacity_compute allocated; NULL and a zeroed record are fine. */
void capacity_free(struct capacity *c);

const char *capacity_group_name(enum capacity_group g);
int capacity_group_parse(const char *s, enum capacity_group *out);

#endif
