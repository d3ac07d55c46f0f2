/*
 * power — the ledger arithmetic along a domain chain. Pure, allocation-free.
 * Invariant kept with place.c: reserved_w <= budget_w at every domain after every
 * committed change (a change is checked with power_fits before power_charge).
 */
#include "power.h"

bool power_fits(const struct fleet *f, uint32_t domain, int64_t delta_w, uint32_t *blocking)
{
	if (delta_w <= 0)
		return true;
	for (uint32_t d = domain; d != FLEET_NONE; d = f->domains[d].parent) {
		const struct domain *dm = &f->domains[d];
		if (dm->reserved_w + delta_w > dm->budget_w) {
			if (blocking)
				*blocking = d;
			return false;
		}
	}
	return true;
}

void power_charge(struct fleet *f, uint32_t domain, int64_t delta_w)
{
	for (uint32_t d = domain; d != FLEET_NONE; d = f->domains[d].parent)
		f->domains[d].reserved_w += delta_w;
}

int64_t power_headroom(const struct fleet *f, uint32_t domain)
{
	int64_t best = INT64_MAX;
	for (uint32_t d = domain; d != FLEET_NONE; d = f->domains[d].parent) {
		int64_t h = f->domains[d].budget_w - f->domains[d].reserved_w;
		if (h < best)
			best = h;
	}
	return best;
}

int64_t power_alloc_delta(const struct model *m, uint32_t n, uint32_t cap_w)
{
	return (int64_t)n * ((int64_t)cap_w - (int64_t)m->idle_w);
}
