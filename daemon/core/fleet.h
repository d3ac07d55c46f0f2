/*
 * fleet — the in-memory picture of the fleet: accelerator models, the power-domain tree,
 * nodes and their devices, and the indexes placement needs.
 *
 * Owns: every model, domain, node and device record and the strings they hold; the name
 * maps; the free-capacity index (per model, nodes bucketed by free healthy devices); each
 * domain's reserved watts (the power ledger, see power.h).
 * Never: does I/O, reads a clock, knows JSON or SQL. Records are never deleted, so an
 * index (uint32_t) into models/domains/nodes/devices stays valid for the fleet's life.
 *
 * Invariants:
 *  - a domain's reserved_w = Σ over nodes below it of host_idle_w + Σ devices
 *    (allocated ? allocation cap : model idle_w), and reserved_w <= budget_w everywhere;
 *  - every node hangs off a domain; domain parents form a forest (no cycles);
 *  - a node slot sits in exactly the bucket free_index[model][slot_free(slot)], where
 *    slot_free counts healthy, unallocated devices of that model on an `up` node (0 when the
 *    node is not up).
 *
 * Node states: up → draining (drain asked while devices are allocated) → drained (the last
 * allocation on it released); up/draining/drained → up on resume; down is set by telemetry.
 */
#ifndef JOULE_FLEET_H
#define JOULE_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "hmap.h"

#define FLEET_MAX_NODE_DEVICES 64
#define FLEET_NAME_MAX 48       /* model names, vendor, stack: bytes incl. NUL */
#define FLEET_NONE UINT32_MAX

struct model {
	char name[FLEET_NAME_MAX];
	char vendor[16];
	char stack[16];
	uint32_t memory_gib;
	uint32_t bandwidth_gbs;
	double bf16_tflops;
	double fp8_tflops;          /* 0 = no FP8 */
	uint32_t tdp_w;
	uint32_t min_cap_w;
	uint32_t idle_w;
};

struct domain {
	char *name;
	uint32_t parent;            /* FLEET_NONE for a root */
	int64_t budget_w;
	int64_t reserved_w;
	uint32_t nodes;             /* in the subtree */
	uint32_t devices;           /* in the subtree */
	double measured_w;          /* Σ over measured nodes below: device watts + host idle */
	int64_t measured_at;        /* last reading below it; 0 = none */
	bool over_budget;           /* measured_w > budget_w at the last reading */
};

enum node_state { NODE_UP, NODE_DRAINING, NODE_DRAINED, NODE_DOWN, _NODE_STATE_MAX };
enum device_health { HEALTH_OK, HEALTH_DEGRADED, HEALTH_FAILED, _HEALTH_MAX };

struct node {
	char *name;
	char *group;                /* "" when none */
	uint32_t group_id;          /* interned group, FLEET_NONE when none */
	char *labels_json;          /* opaque JSON object text, "{}" when none */
	char *exporter_url;         /* "" when none */
	char *agent_url;            /* webhook for this node's events; "" when none */
	uint32_t domain;
	int64_t host_idle_w;
	enum node_state state;
	uint32_t first_device;      /* devices[first_device .. +ndevices) */
	uint32_t ndevices;
	uint32_t first_slot;        /* slots[first_slot .. +nslots): one per model present */
	uint32_t nslots;
	uint64_t alloc_mask;        /* bit i: device index i allocated */
	uint64_t healthy_mask;      /* bit i: device index i healthy (HEALTH_OK) */
	/* telemetry (set by the daemon from the node's exporter; times in seconds) */
	double measured_w;          /* Σ measured device watts at the last good scrape */
	int64_t measured_at;        /* 0 = never measured */
	int64_t scraped_at;         /* last scrape attempt */
	uint32_t scrape_fails;      /* consecutive failed scrapes */
	char *scrape_error;         /* last failure, NULL when the last scrape was good */
};

struct device {
	uint64_t job;               /* 0 = free */
	uint32_t node;
	uint32_t worker;
	uint32_t cap_w;             /* when allocated */
	uint16_t model;
	uint8_t index;
	uint8_t health;             /* enum device_health */
	uint8_t clean_scrapes;      /* good scrapes in a row while not ok (recovery) */
	float measured_w;           /* last reading, NaN when none */
	uint32_t last_xid;          /* the last XID an exporter reported */
	char *health_reason;        /* why not ok; NULL when ok */
	char *uuid;                 /* the exporter's UUID (e.g. "GPU-…"); NULL when unknown */
};

/* A (node, model) pair: the unit the free index files. */
struct node_slot {
	uint64_t mask;              /* device indexes of this model on the node */
	uint32_t node;
	uint32_t prev, next;        /* bucket list links, FLEET_NONE terminated */
	uint16_t model;
	uint8_t bucket;             /* free count it is filed under */
};

struct fleet {
	struct model *models;       uint32_t nmodels, models_cap;
	struct domain *domains;     uint32_t ndomains, domains_cap;
	struct node *nodes;         uint32_t nnodes, nodes_cap;
	struct device *devices;     uint32_t ndevices, devices_cap;
	struct node_slot *slots;    uint32_t nslots, slots_cap;
	/* free_head[model * (FLEET_MAX_NODE_DEVICES + 1) + free] = first slot or FLEET_NONE */
	uint32_t *free_head;        uint32_t free_head_models;
	uint32_t *free_count;       /* nodes in each bucket, same indexing as free_head */
	/* room[model * BUCKETS + w] = Σ over buckets k of free_count × (k / w): workers of w
	 * devices the model's free devices could hold (fleet_model_room in O(1)), kept up as
	 * slots move between buckets */
	uint64_t *room;
	struct hmap model_by_name, domain_by_name, node_by_name, group_by_name;
	uint32_t ngroups;
	uint32_t *roots;            /* domains without a parent */
	uint32_t nroots;
	/* scratch for place.c, one counter per domain or group; all zero between uses */
	uint32_t *scratch;          uint32_t scratch_cap;
	uint64_t epoch;             /* from 1; grows whenever capacity may have grown */
	uint64_t structure;         /* grows with every import: nodes, devices, racks, groups */
	struct fleet_room_memo {    /* fleet_max_group_room's answers for this structure */
		uint64_t structure;     /* 0 = empty */
		uint32_t per_worker, value;
		uint16_t model;
		bool rack;
	} room_memo[32];
};

/* ---- import document (decoded by proto/codec; strings owned by the caller) ---- */
struct fleet_domain_spec {
	const char *name;
	const char *parent;         /* NULL = root */
	int64_t budget_w;
};

struct fleet_device_spec {
	const char *model;
	uint32_t count;
	const char *const *uuids;   /* NULL, or count UUIDs in index order */
};

struct fleet_node_spec {
	const char *name;
	const char *domain;
	const char *group;          /* NULL = none */
	const char *labels_json;    /* NULL = "{}" */
	const char *exporter_url;   /* NULL = none */
	const char *agent_url;      /* NULL = none */
	int64_t host_idle_w;
	const struct fleet_device_spec *devs;
	uint32_t ndevs;
};

struct fleet_doc {
	const struct model *models;              uint32_t nmodels;
	const struct fleet_domain_spec *domains; uint32_t ndomains;
	const struct fleet_node_spec *nodes;     uint32_t nnodes;
};

void fleet_init(struct fleet *f);
void fleet_free(struct fleet *f);

/*
 * Upsert a whole document, all or nothing. Checks names, references (a domain's parent and
 * a node's domain may be defined in the same document, in any order), cycles, that a
 * domain's parent never changes, that a node with allocated devices keeps its devices and
 * domain, and that no domain ends above its budget. On failure returns ERR_INVALID (e->field
 * is a path like "nodes[3].devices[0].model") or ERR_CONFLICT and leaves the fleet as it
 * was. -ENOMEM may strike after changes began: the fleet must then be discarded (the daemon
 * reloads it from the database). Bumps the epoch on success. Replacing a node's device
 * list orphans its old device and slot records (their node becomes FLEET_NONE).
 */
int fleet_import(struct fleet *f, const struct fleet_doc *doc, struct err *e);

/* A deep copy of src into dst (uninitialised): same indexes, allocations, free index and
 * epoch, so a job table cloned alongside refers to it exactly as to src. 0 or -ENOMEM
 * (dst then holds nothing to free). For what-if runs on a private copy. */
int fleet_clone(struct fleet *dst, const struct fleet *src);

/* Lookups: index or FLEET_NONE. */
uint32_t fleet_model_find(const struct fleet *f, const char *name);
uint32_t fleet_domain_find(const struct fleet *f, const char *name);
uint32_t fleet_node_find(const struct fleet *f, const char *name);

/* Drain: up → draining (allocated devices) or drained; already draining/drained: no-op.
 * Resume: → up, epoch bumped. Both return 0 or ERR_CONFLICT (down nodes cannot resume). */
int fleet_node_drain(struct fleet *f, uint32_t node, struct err *e);
int fleet_node_resume(struct fleet *f, uint32_t node, struct err *e);

/* Set one device's health and refile its node (epoch bumped when it becomes ok). */
void fleet_device_set_health(struct fleet *f, uint32_t device, enum device_health h);

/* Telemetry liveness: down = true moves a node to DOWN (out of placement); false brings a
 * DOWN node back UP (epoch bumped). Other states are left alone. Returns true when the
 * state changed. */
bool fleet_node_set_down(struct fleet *f, uint32_t node, bool down);

/* Record a node's measured device watts (telemetry) and carry the change up its domains
 * (measured_w of a domain = Σ over measured nodes below it of device watts + host idle).
 * O(depth). */
void fleet_node_set_measured(struct fleet *f, uint32_t node, double device_w, int64_t now);

/* The most workers of per_worker devices of `model` one rack (rack: the node's own domain)
 * or one NVLink/HCCS group (a node without a group is its own) could ever hold, all its
 * devices free and healthy: a structural bound for same_rack / same_group gangs, O(nodes)
 * once per import and (model, per_worker, rack), then memoised. */
uint32_t fleet_max_group_room(struct fleet *f, uint16_t model, uint32_t per_worker, bool rack);

/* Free healthy devices of `model` on `node` (0 when the node is not up). */
uint32_t fleet_node_free(const struct fleet *f, uint32_t node, uint16_t model);

/*
 * Allocation primitives used by place.c (the only caller besides tests):
 * fleet_alloc marks the devices in `mask` on `node` as held by (job, worker) at cap_w and
 * charges the power ledger; the caller has checked they are free and that power fits.
 * fleet_release undoes it and, when a draining node becomes empty, moves it to drained.
 */
void fleet_alloc(struct fleet *f, uint32_t node, uint64_t mask, uint64_t job, uint32_t worker,
		 uint32_t cap_w);
void fleet_release(struct fleet *f, uint32_t node, uint64_t mask);

/* The free index's list order, saved and restored around dry runs: a tentative
 * allocation undone leaves the same buckets but relinked in another order, and early-
 * stopping scans would then see other candidates. A snapshot is owned by the caller;
 * restore only onto the same fleet with no records added since. */
struct fleet_order {
	struct node_slot *slots;
	uint32_t *free_head;
	uint32_t nslots, nheads;
};
int fleet_order_save(const struct fleet *f, struct fleet_order *o);     /* 0 or -ENOMEM */
void fleet_order_restore(struct fleet *f, struct fleet_order *o);       /* and frees it */

/* First slot in the bucket (model, free) or FLEET_NONE; next via slots[i].next. */
uint32_t fleet_bucket_first(const struct fleet *f, uint16_t model, uint32_t free);
/* How many workers of `per_worker` devices of the model the free devices could hold,
 * ignoring power: O(FLEET_MAX_NODE_DEVICES), from the bucket counters. */
uint64_t fleet_model_room(const struct fleet *f, uint16_t model, uint32_t per_worker);

/* The most headroom (budget - reserved) of any root domain: no placement anywhere can add
 * more watts than this. O(roots). */
int64_t fleet_max_root_headroom(const struct fleet *f);

/* The leaf domain of a node and its ancestors: walk domains[d].parent to FLEET_NONE. */

const char *fleet_node_state_name(enum node_state s);
const char *fleet_health_name(enum device_health h);
int fleet_node_state_parse(const char *s, enum node_state *out);
int fleet_health_parse(const char *s, enum device_health *out);

#endif
