/*
 * alibaba — the Alibaba PAI GPU cluster trace v2020 machine table
 * (pai_machine_spec.csv: machine,gpu_type,cap_cpu,cap_mem,cap_gpu) as a POST /v1/fleet
 * document, with the accelerator models the built-in catalog lacks.
 *
 * Owns: the gpu_type → model mapping and those models' figures (public datasheets, see
 * alibaba.c and docs/trace-format.md), and the power tree the table does not have: a site,
 * rows of racks_per_row racks, racks of machines_per_rack machines, each rack holding one
 * gpu_type (types in the order P100, T4, V100, V100M32, MISC; machines in file order).
 * Never: reads anything but the file it is given, touches a fleet (the caller imports the
 * document), writes *fleet_out before success.
 *
 * Budgets: rack = Σ host_idle_w + rack_budget_fraction × Σ device tdp_w of its machines
 * (or rack_budget_w when > 0); row = row_fraction × Σ its racks; site = site_fraction ×
 * Σ rows. A budget below the idle load under it (hosts + device idle_w) is refused, so
 * the document always imports.
 */
#ifndef JOULE_SIM_ALIBABA_H
#define JOULE_SIM_ALIBABA_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "err.h"

#define ALIBABA_MAX_LINE 1024
#define ALIBABA_MAX_MACHINES 1000000

struct alibaba_params {
	const char *site;             /* root domain name (1-40 chars) */
	uint32_t machines_per_rack;   /* 1-1000 */
	uint32_t racks_per_row;       /* 1-10000 */
	double rack_budget_fraction;  /* 0-1 of the rack's device TDP sum, above host idle */
	int64_t rack_budget_w;        /* > 0: every rack gets exactly this budget instead */
	double row_fraction;          /* 0-1 */
	double site_fraction;         /* 0-1 */
	int64_t host_idle_w;          /* per machine, 0-100000 */
};

/* site "pai", 8 machines a rack, 10 racks a row, fraction 0.8, rack_budget_w 0, row and
 * site fractions 1, host_idle_w 300 (an assumption: the table has no host power). */
void alibaba_params_default(struct alibaba_params *p);

/*
 * Read the machine table (path "-" = stdin; an optional header line "machine,…" is
 * skipped) and build {"models":[…],"domains":[…],"nodes":[…]}: one node per machine with
 * cap_gpu > 0, named by its machine id, with cap_gpu devices of its type's model, labels
 * {"gpu_type","cap_cpu","cap_mem_gb"} and, for the 8-GPU NVLink V100 boxes, group
 * "nvl-<machine>". models holds the models of the types present. Returns 0, ERR_INVALID
 * (message "FILE:LINE: …"; an unknown gpu_type, a repeated machine, a bad number, a budget
 * below idle), ERR_TOO_LARGE, -ENOENT/-EIO/-ENOMEM.
 */
int alibaba_import(const char *path, const struct alibaba_params *p, json_t **fleet_out,
		   struct err *e);
int alibaba_read(FILE *in, const char *name, const struct alibaba_params *p,
		 json_t **fleet_out, struct err *e);

/* The model entry (POST /v1/fleet "models" shape) used for a gpu_type, as a new
 * reference; NULL for an unknown type or "CPU". */
json_t *alibaba_model(const char *gpu_type);

#endif
