/*
 * report — what a simulation run means to a capacity planner: queue wait and completion
 * time percentiles by kind and queue, utilisation by model and vendor, jobs that never
 * started and why (placement's reason codes), reserved against budget watts per domain,
 * energy and work per kWh, preemptions; as JSON and CSV for machines, a table for humans,
 * and SVG charts (utilisation, queue length, power headroom over time).
 *
 * Owns: the summary statistics and every output encoding of a sim_result.
 * Never: changes the result or the fleet; writes anywhere but the directory it is given.
 * Energy is the integral of the root domains' reserved watts (devices at their caps plus
 * idle watts, as the power ledger counts them); work is BF16 TFLOP delivered:
 * devices × BF16 TFLOPS × the power cap's relative performance × seconds, for jobs that
 * completed.
 */
#ifndef JOULE_SIM_REPORT_H
#define JOULE_SIM_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"
#include "fleet.h"
#include "sim.h"

/* The report as JSON; with_series adds the sampled time series. NULL on ENOMEM. */
json_t *report_json(const struct fleet *f, const struct sim_result *r, bool with_series);

/* The human summary: a few aligned tables. */
int report_table(FILE *out, const struct fleet *f, const struct sim_result *r);

/* Write dir/report.json, timeseries.csv, jobs.csv, utilization.svg, queue.svg and
 * power.svg (dir must exist). 0, or -EIO / -ENOMEM with e naming the file. */
int report_write_dir(const char *dir, const struct fleet *f, const struct sim_result *r,
		     struct err *e);

#endif
