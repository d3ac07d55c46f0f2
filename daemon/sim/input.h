/*
 * input — a simulation's inputs from their JSON forms: a fleet document into a fleet that
 * already holds the catalog, trace jobs into sim_jobs, scripted events into sim_events.
 *
 * Owns: the scripted-event document ({"at_s", "action", "node" | "domain", "budget_w"}).
 * Never: does I/O, runs anything; outputs are written only on success.
 */
#ifndef JOULE_SIM_INPUT_H
#define JOULE_SIM_INPUT_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "fleet.h"
#include "sim.h"

/* Import a POST /v1/fleet document into f (all or nothing; e->field names the path). */
int sim_input_fleet(struct fleet *f, const json_t *doc, struct err *e);

/* Decode a loaded trace (trace_load's array) against f: *out gets njobs decoded jobs with
 * their submit times in whole seconds (owned by the caller until sim_run takes them; free
 * with sim_input_jobs_free on error paths). A refusal's field is "[index].path". */
int sim_input_jobs(const json_t *trace, const struct fleet *f, struct sim_job **out,
		   uint32_t *n, struct err *e);
void sim_input_jobs_free(struct sim_job *jobs, uint32_t n);

/* Decode scripted events: an array of {"at_s": seconds >= 0, "action": "node_down" |
 * "node_up" | "node_drain" | "budget", "node": name (node_*), "domain": name and
 * "budget_w": watts (budget)}, sorted here by at_s (stable). */
int sim_input_events(const json_t *arr, const struct fleet *f, struct sim_event **out,
		     uint32_t *n, struct err *e);

#endif
