/*
 * job — the job table and the pending queue.
 *
 * Owns: every struct job (and its strings and placement), the id index, the idempotency
 * index, and the pending queue ordered by (priority desc, id asc).
 * Never: decides placements (place.c), does I/O, reads a clock (times come in as
 * arguments, in seconds since the epoch).
 *
 * States: PENDING → PLACED → RUNNING → SUCCEEDED | FAILED | CANCELLED;
 *         PLACED/RUNNING → PENDING on preemption or node loss. A job is in the pending
 *         queue exactly when its state is PENDING.
 * Ids are dense from 1 and never reused.
 */
#ifndef JOULE_JOB_H
#define JOULE_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "hmap.h"

#define JOB_MAX_MODELS 32
#define JOB_MAX_VENDORS 8
#define JOB_MAX_COUNT 4096
#define JOB_MAX_DEVICES 64

enum job_kind { JOB_TRAINING, JOB_INFERENCE, _JOB_KIND_MAX };
enum job_state {
	JOB_PENDING, JOB_PLACED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED,
	_JOB_STATE_MAX
};
enum job_topology {
	TOPO_ANY, TOPO_SAME_NODE, TOPO_SAME_GROUP, TOPO_SAME_RACK, TOPO_SPREAD, _TOPO_MAX
};

/* Capability mode: what one worker/replica needs; the core picks model and count. */
struct job_need {
	uint32_t memory_gib;
	uint32_t bandwidth_gbs;
	double bf16_tflops;
	bool fp8;
};

/* What a job asks for. Model and vendor constraints are names resolved against the
 * catalog at placement time, so a model added later can satisfy an old request. */
struct job_request {
	enum job_kind kind;
	enum job_topology topology;
	uint32_t count;                 /* workers (training) or replicas (inference) */
	uint32_t min_count;             /* inference: placed once this many run; = count else */
	uint32_t devices;               /* per worker/replica; 0 in capability mode */
	bool capability;                /* need is set; devices chosen per model */
	struct job_need need;
	uint32_t cap_w;                 /* 0 = the model's tdp_w */
	bool cap_auto;                  /* lower the cap down to min_perf to fit */
	double min_perf;                /* with cap_auto: 0 < min_perf <= 1 */
	uint32_t min_memory_gib;
	bool fp8;
	uint8_t nvendors, nmodels;
	char stack[16];                 /* "" = any */
	char vendors[JOB_MAX_VENDORS][16];
	char (*models)[48];             /* nmodels names, heap; NULL when none */
	int64_t duration_s;             /* 0 = unknown */
	bool keep_on_device_failure;    /* a failed device does not send the job back to pending */
};

/* One placed worker/replica: devices (bit mask of indexes) on one node, one model. */
struct job_worker {
	uint64_t mask;
	uint32_t node;
	uint32_t cap_w;
	uint16_t model;
};

struct job {
	uint64_t id;
	char *name;
	char *queue;
	char *owner;                    /* user name (or the uid in decimal) */
	char *idem_key;                 /* NULL when none */
	char *reason;                   /* why pending / how it ended; NULL when none */
	uint32_t uid;
	int32_t priority;
	bool preemptible;
	enum job_state state;
	struct job_request req;
	struct job_worker *placement;   /* req.count entries when placed; NULL otherwise */
	uint32_t nplaced;               /* workers placed: entries [0, nplaced) */
	uint32_t last_nplaced;          /* workers held before the last requeue: entries
					   [0, last_nplaced) name them until the next try */
	uint32_t requeues;              /* times sent back to pending (preemption, node loss) */
	uint32_t active_idx;            /* index in jobs.active while PLACED/RUNNING */
	int64_t submitted_at, placed_at, finished_at;   /* 0 = not yet */
	uint64_t tried_epoch;           /* fleet epoch of the last failed placement try; 0 = never */
};

struct jobs {
	struct job **by_id;             /* by_id[id - 1] */
	uint64_t next_id;               /* the id the next job gets */
	uint64_t cap;
	struct job **pending;           /* sorted: priority desc, id asc */
	uint32_t npending, pending_cap;
	struct hmap by_idem;            /* "uid:key" → id - 1 */
	struct job **active;            /* PLACED and RUNNING jobs, unordered */
	uint32_t nactive, active_cap;
	/* place.c's reservation cache: a blocked head's estimated start, reused while it is
	 * younger than PLACE_RESERVATION_TTL_S (two entries: a head that can never start
	 * passes the reservation to the next blocked job, and both are asked every pass) */
	struct job_reservation {
		uint64_t head;          /* 0 = empty */
		int64_t start, at;
		uint64_t after;
		bool valid;
	} res[2];
	uint32_t count_by_state[_JOB_STATE_MAX];
};

void jobs_init(struct jobs *t);
void jobs_free(struct jobs *t);

/* Allocate an empty job with every string NULL and state PENDING; NULL on ENOMEM. */
struct job *job_new(void);
/* Free a job not (or no longer) owned by a table. NULL is fine. */
void job_free(struct job *j);

/*
 * Take ownership of j. If j->id is 0 it gets the next id; else the id must be >= next_id
 * or unused (loading from the store), and next_id moves past it. Files j in the pending
 * queue when PENDING and in the idempotency index when it has a key. Returns 0, or -ENOMEM
 * / ERR_CONFLICT (id in use) leaving the table unchanged and j owned by the caller.
 */
int jobs_add(struct jobs *t, struct job *j);

/* A deep copy of one job (not in any table). NULL on ENOMEM. */
struct job *job_clone(const struct job *j);
/* Copy every job of src whose state passes keep (NULL: all) into dst (initialised, empty),
 * with the same ids; next_id is src's. 0 or -ENOMEM (dst then holds what was copied). */
int jobs_clone(struct jobs *dst, const struct jobs *src, bool (*keep)(const struct job *j));

struct job *jobs_get(const struct jobs *t, uint64_t id);
struct job *jobs_find_idem(const struct jobs *t, uint32_t uid, const char *key);

/* Change a job's state, keeping the pending queue, the active set and the counters right.
 * Returns 0 or -ENOMEM (state unchanged). */
int jobs_set_state(struct jobs *t, struct job *j, enum job_state s);

bool job_state_finished(enum job_state s);
bool job_state_active(enum job_state s);   /* PLACED or RUNNING: holds devices */
/* Estimated end of an active job: placed_at + duration_s (JOB_DEFAULT_DURATION_S when
 * the job gave none). */
int64_t job_estimated_end(const struct job *j);
#define JOB_DEFAULT_DURATION_S 3600
const char *job_state_name(enum job_state s);
const char *job_kind_name(enum job_kind k);
const char *job_topology_name(enum job_topology t);
int job_state_parse(const char *s, enum job_state *out);
int job_kind_parse(const char *s, enum job_kind *out);
int job_topology_parse(const char *s, enum job_topology *out);

#endif
