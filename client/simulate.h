/*
 * simulate — joulectl's local commands that need no daemon: simulate a fleet and a trace
 * on the placement core, generate a synthetic trace, import the Alibaba machine table.
 *
 * Owns: the in-memory catalog (an SQLite ":memory:" store migrated like a daemon's), the
 * simulated fleet and job table of one run.
 * Never: talks to a daemon. Exit codes as joulectl's: 0 ok, 1 the input was refused,
 * 2 usage, 3 I/O.
 */
#ifndef JOULE_CLIENT_SIMULATE_H
#define JOULE_CLIENT_SIMULATE_H

#include <stdbool.h>
#include <stdint.h>

struct ctl_sim_args {
	const char *fleet, *trace, *events, *out;   /* events, out: NULL = none */
	int64_t until_s, sample_s;                  /* 0 = defaults */
	int64_t resolution_s;                       /* 0 = default (60) */
	bool json;
};
int ctl_simulate(const struct ctl_sim_args *a);

struct ctl_gen_args {
	uint64_t seed;
	uint32_t jobs;          /* 0: until span_s */
	double span_s;
	double rate_per_hour;   /* 0: the default */
	double training_share;  /* < 0: the default */
	bool csv;               /* else JSON lines */
	bool nvidia_only;       /* no Ascend-only jobs (for NVIDIA-only fleets like Alibaba's) */
};
int ctl_trace_generate(const struct ctl_gen_args *a);

struct ctl_alibaba_args {
	const char *path;
	uint32_t machines_per_rack;     /* 0 = default */
	double rack_budget_fraction;    /* < 0 = default */
};
int ctl_trace_import_alibaba(const struct ctl_alibaba_args *a);

#endif
