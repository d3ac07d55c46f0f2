/*
 * config — jouled's options: defaults, the INI file (parsed by inih), then command-line
 * flags, which win.
 *
 * Owns: struct config and its strings. Never: opens sockets or databases, exits the
 * process (it returns errors that name the file, line and key, or the flag).
 */
#ifndef JOULE_CONFIG_H
#define JOULE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

#define CONFIG_MAX_WEBHOOKS 8

struct config {
	char socket_path[108];
	char db_path[4096];
	char config_path[4096];     /* "" when none */
	enum log_level log_level;
	uint32_t max_connections;
	uint64_t idle_timeout_s;
	uint64_t max_body_bytes;
	unsigned socket_mode;
	char socket_group[64];      /* "" = the daemon's own group */
	char admin_group[64];       /* "" = only root administers the fleet */
	bool synchronous_full;
	uint32_t events_max;        /* events retained (count) */
	uint64_t events_max_age_s;  /* and age; 0 = no age limit */
	uint64_t placed_timeout_s;  /* 0 = off */
	bool demo_finish;
	uint32_t scrape_interval_s; /* node exporters: every S seconds (default 15) */
	uint32_t scrape_timeout_s;  /* per scrape (default 5) */
	uint32_t scrape_concurrency;/* scrapes in flight at most (default 64) */
	uint32_t down_after;        /* failed scrapes before a node is down (default 3) */
	uint32_t recover_after;     /* clean scrapes before a device is ok again (default 3) */
	char webhooks[CONFIG_MAX_WEBHOOKS][512]; /* global webhook URLs */
	uint32_t nwebhooks;
	uint32_t webhook_timeout_s;     /* a POST at most (default 10) */
	uint32_t webhook_concurrency;   /* per endpoint in flight (default 4) */
	uint32_t webhook_retry_min_ms;  /* first retry delay (default 1000) */
	uint32_t webhook_retry_max_ms;  /* retry delay ceiling (default 300000) */
	bool check_only;            /* --check-config */
	bool help, version;
};

/* Defaults, then the file named by --config (if any), then the flags. Returns 0, or
 * ERR_INVALID with e->message naming the flag or "FILE:LINE: key". */
int config_load(struct config *c, int argc, char **argv, struct err *e);

/* The --help text. */
const char *config_usage(void);

#endif
