/*
 * power — the power ledger: watts reserved against each domain's budget, along the chain
 * from a node's leaf domain up to its root.
 *
 * Owns: the rule "reserved never exceeds budget at any ancestor" and the arithmetic of it.
 * Never: decides where work goes (place.c does), reads telemetry, allocates.
 * The numbers live in struct domain (fleet.h); this module is the only writer of
 * domain.reserved_w besides fleet_import's bulk recomputation.
 */
#ifndef JOULE_POWER_H
#define JOULE_POWER_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"

/* True when delta_w more watts at `domain` keeps every ancestor within budget. When false
 * and `blocking` is not NULL, *blocking is the lowest domain that would go over. A negative
 * delta always fits. */
bool power_fits(const struct fleet *f, uint32_t domain, int64_t delta_w, uint32_t *blocking);

/* Add delta_w (may be negative) to reserved_w of `domain` and every ancestor. */
void power_charge(struct fleet *f, uint32_t domain, int64_t delta_w);

/* Smallest (budget - reserved) over `domain` and its ancestors. */
int64_t power_headroom(const struct fleet *f, uint32_t domain);

/* Extra watts for allocating n devices of model m at cap_w (cap_w - idle_w each). */
int64_t power_alloc_delta(const struct model *m, uint32_t n, uint32_t cap_w);

#endif
