/*
 * exporter — maps dcgm-exporter / npu-exporter samples to devices (see exporter.h).
 * Pure: the Prometheus text is parsed by prom.c; nothing here allocates but prom_parse's
 * bounded workspace.
 */
#include "exporter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

struct ctx {
	struct exporter_reading *r;
	uint32_t ndevices;
	const char *const *uuids;
	int64_t now_ms, stale_ms;
};

/*
 * XIDs that speak of the hardware (NVIDIA's XID catalogue): 48 double-bit ECC, 63/64 row
 * remapping (pending / failed), 74 NVLink, 79 fallen off the bus, 92 high single-bit ECC
 * rate, 94/95 contained / uncontained ECC, 119/120 GSP errors. Others (13, 31, 43, 45, …)
 * are the application's own faults and leave the device alone.
 */
int exporter_xid_health(uint32_t xid, const char **why)
{
	static const struct {
		uint32_t xid;
		int health;
		const char *why;
	} table[] = {
		{48, 2, "XID 48: double-bit ECC error"},
		{63, 1, "XID 63: row remapping pending"},
		{64, 2, "XID 64: row remapping failed"},
		{74, 1, "XID 74: NVLink error"},
		{79, 2, "XID 79: fallen off the bus"},
		{92, 1, "XID 92: high single-bit ECC rate"},
		{94, 1, "XID 94: contained ECC error"},
		{95, 2, "XID 95: uncontained ECC error"},
		{119, 2, "XID 119: GSP RPC timeout"},
		{120, 2, "XID 120: GSP error"},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].xid == xid) {
			if (why)
				*why = table[i].why;
			return table[i].health;
		}
	if (why)
		*why = NULL;
	return 0;
}

static bool parse_index(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	if (!s || !*s)
		return false;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v >= max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static void worse(struct exporter_device *d, int health, const char *why)
{
	if (health > d->health) {
		d->health = health;
		snprintf(d->reason, sizeof(d->reason), "%s", why ? why : "unhealthy");
	} else if (d->health < 0) {
		d->health = health;
	}
}

static int on_sample(const struct prom_sample *s, void *ud)
{
	struct ctx *c = ud;
	struct exporter_reading *r = c->r;
	bool dcgm = strncmp(s->name, "DCGM_FI_", 8) == 0;
	bool npu = strncmp(s->name, "npu_chip_info_", 14) == 0;
	uint32_t idx;

	r->samples++;
	if (!dcgm && !npu)
		return 0;
	if (r->kind == EXPORTER_UNKNOWN)
		r->kind = dcgm ? EXPORTER_DCGM : EXPORTER_NPU;
	if (dcgm) {
		const char *uuid = prom_label_get(s, "UUID");
		bool placed = false;
		for (uint32_t i = 0; c->uuids && uuid && i < c->ndevices && !placed; i++)
			if (c->uuids[i] && strcmp(c->uuids[i], uuid) == 0) {
				idx = i;
				placed = true;
			}
		if (!placed && !parse_index(prom_label_get(s, "gpu"), c->ndevices, &idx)) {
			r->unplaced++;
			return 0;
		}
	} else {
		if (!parse_index(prom_label_get(s, "id"), c->ndevices, &idx)) {
			r->unplaced++;
			return 0;
		}
		if (s->has_timestamp && c->stale_ms > 0 && s->timestamp_ms < c->now_ms - c->stale_ms) {
			r->stale++;
			return 0;
		}
		if (s->value == -1) /* a failed read */
			return 0;
	}
	struct exporter_device *d = &r->dev[idx];
	if (!d->seen) {
		d->seen = true;
		d->health = -1;
		r->devices_seen++;
	}
	if (!isfinite(s->value))
		return 0;
	if (strcmp(s->name, "DCGM_FI_DEV_POWER_USAGE") == 0 ||
	    strcmp(s->name, "DCGM_FI_DEV_POWER_USAGE_INSTANT") == 0 ||
	    strcmp(s->name, "npu_chip_info_power") == 0) {
		/* MIG repeats the board's power per instance: once per device */
		if (s->value >= 0) {
			d->has_power = true;
			d->power_w = s->value;
		}
	} else if (strcmp(s->name, "DCGM_FI_DEV_XID_ERRORS") == 0) {
		const char *why;
		d->xid = s->value > 0 ? (uint32_t)s->value : 0;
		int h = exporter_xid_health(d->xid, &why);
		worse(d, h, why);
	} else if (strcmp(s->name, "npu_chip_info_health_status") == 0) {
		worse(d, s->value == 1 ? 0 : 2, "NPU health status unhealthy");
	}
	return 0;
}

int exporter_read(const char *body, size_t len, uint32_t ndevices, const char *const *uuids,
		  int64_t now_ms, int64_t stale_ms, struct exporter_reading *out)
{
	struct exporter_reading *r = out;
	struct prom_stats st;
	if (ndevices > EXPORTER_MAX_DEVICES)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	for (uint32_t i = 0; i < EXPORTER_MAX_DEVICES; i++)
		r->dev[i].health = -1;
	struct ctx c = {r, ndevices, uuids, now_ms, stale_ms};
	int rc = prom_parse(body, len, NULL, on_sample, &c, &st);
	if (rc < 0)
		return rc;
	r->malformed = st.malformed + st.too_long + st.too_many_labels;
	return 0;
}
