/*
 * jobmix — the benchmarks' job mix: a seeded generator of POST /v1/jobs bodies (three in
 * four training gangs, mostly small, under vendor, model, power-cap and topology
 * constraints; one in four inference replicas), shared by loadgen (what it submits) and
 * jobsdb (what it stores), so both measure the same work.
 * Owns: nothing but its arithmetic; the caller owns the PRNG state.
 * Never: reads a clock or global state (the same state gives the same bodies).
 */
#ifndef JOULE_BENCH_JOBMIX_H
#define JOULE_BENCH_JOBMIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64 */
uint64_t jobmix_rand(uint64_t *s);
/* Uniform in [lo, hi]. */
uint64_t jobmix_between(uint64_t *s, uint64_t lo, uint64_t hi);

/* One body into b (n bytes): name as given; training jobs go to train_queue (NULL: "research"
 * or "batch" at random), preemptible half the time when allow_preempt. Returns its length,
 * or -1 when it does not fit. */
int jobmix_body(uint64_t *s, const char *name, const char *train_queue, bool allow_preempt,
		char *b, size_t n);

#endif
