/*
 * exporter — what one node's exporter page says about its devices: measured power and
 * health, from NVIDIA dcgm-exporter or Huawei npu-exporter text.
 *
 * Owns: the mapping rules (series names, labels, units, failed reads, stale samples, XID
 * classes). Never: does I/O, reads a clock (now comes in), changes the fleet (the daemon
 * applies a reading), trusts a value it cannot place on a device.
 *
 * dcgm-exporter: a series belongs to a device by its UUID label when the node's device
 * UUIDs are known, else by its `gpu` label (the device index). Power: DCGM_FI_DEV_POWER_USAGE
 * or the newer DCGM_FI_DEV_POWER_USAGE_INSTANT, in W; with MIG the board power repeats per
 * instance and is counted once per device. Health: DCGM_FI_DEV_XID_ERRORS carries the last
 * XID; see exporter_xid_health for which XIDs degrade or fail a device. Both `Hostname`
 * and `hostname` label spellings are accepted (neither is needed).
 * npu-exporter: a series belongs to a device by its `id` label. Power: npu_chip_info_power
 * (W); health: npu_chip_info_health_status (1 healthy, 0 unhealthy → failed). A value of -1
 * is a failed read and ignored; a sample whose own timestamp is older than now - stale_ms
 * is ignored (the exporter caches readings).
 */
#ifndef JOULE_EXPORTER_H
#define JOULE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPORTER_MAX_DEVICES 64

enum exporter_kind { EXPORTER_UNKNOWN, EXPORTER_DCGM, EXPORTER_NPU };

struct exporter_device {
	bool seen;                  /* some series named this device */
	bool has_power;
	double power_w;
	int health;                 /* -1 unknown, else enum device_health (0 ok, 1 degraded, 2 failed) */
	uint32_t xid;               /* dcgm: the last XID reported (0 = none) */
	char reason[64];            /* why not ok, "" when ok or unknown */
};

struct exporter_reading {
	enum exporter_kind kind;
	struct exporter_device dev[EXPORTER_MAX_DEVICES];
	uint32_t devices_seen;
	uint64_t samples, malformed, unplaced, stale;
};

/*
 * Read one exporter page for a node of ndevices devices. uuids (NULL, or ndevices
 * strings, NULL entries allowed) maps dcgm UUIDs to indexes. Returns 0 (the reading may
 * still be empty: see devices_seen), -ENOMEM, or -EINVAL (ndevices over the maximum).
 */
int exporter_read(const char *body, size_t len, uint32_t ndevices, const char *const *uuids,
		  int64_t now_ms, int64_t stale_ms, struct exporter_reading *out);

/* Health implied by an XID (0 = ok: application-level or none): documented table. */
int exporter_xid_health(uint32_t xid, const char **why);

#endif
