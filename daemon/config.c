/*
 * config — defaults < INI file (inih) < flags. Every value is checked where it is read,
 * and a bad one is an error naming its origin; nothing here exits or opens anything.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

static const char usage[] =
	"Usage: jouled [OPTIONS]\n"
	"The joule scheduler daemon: tracks an accelerator fleet under power budgets and\n"
	"places jobs on it. Serves HTTP/1.1 + JSON on a Unix socket.\n"
	"\n"
	"  --socket PATH          Unix socket to listen on (default /run/joule/joule.sock)\n"
	"  --db PATH              SQLite database (default /var/lib/joule/joule.db)\n"
	"  --config FILE          INI configuration file; flags override it\n"
	"  --log-level LEVEL      error, warning, info (default) or debug\n"
	"  --max-connections N    open connections at most (default 1024)\n"
	"  --idle-timeout S       close idle connections after S seconds (default 60; 0 = never)\n"
	"  --max-body BYTES       largest request body (default 1048576)\n"
	"  --socket-mode OCTAL    permissions of the socket file (default 0666)\n"
	"  --socket-group GROUP   group owning the socket file (default: the daemon's)\n"
	"  --admin-group GROUP    members may change the fleet and cancel any job\n"
	"                         (default: only root)\n"
	"  --synchronous normal|full  SQLite durability (default full: nothing acknowledged is\n"
	"                         lost on power failure; normal is for benchmarks only)\n"
	"  --events-max N         events kept for GET /v1/events (default 100000)\n"
	"  --events-max-age S     and for at most S seconds (default 604800; 0 = no limit)\n"
	"  --placed-timeout S     a job placed but not reported running within S seconds\n"
	"                         goes back to pending (default 0: never)\n"
	"  --demo-finish          demo mode: placed jobs run after 1 s and succeed after\n"
	"                         their duration_s (for the quick start and the simulator)\n"
	"  --scrape-interval S    scrape node exporters every S seconds (default 15)\n"
	"  --scrape-timeout S     give a scrape at most S seconds (default 5)\n"
	"  --scrape-concurrency N scrapes in flight at most (default 64)\n"
	"  --down-after N         failed scrapes in a row before a node is down (default 3)\n"
	"  --recover-after N      clean scrapes in a row before a device is ok again (default 3)\n"
	"  --webhook URL          POST every event to URL (http or https; repeat for up to 8)\n"
	"  --webhook-timeout S    give a webhook POST at most S seconds (default 10)\n"
	"  --webhook-concurrency N  POSTs in flight per endpoint at most (default 4)\n"
	"  --webhook-retry-min-ms N  first retry delay after a failed POST (default 1000)\n"
	"  --webhook-retry-max-ms N  retry delays double up to this (default 300000)\n"
	"  --check-config         validate the configuration and exit\n"
	"  --help, --version\n"
	"\n"
	"Configuration file keys (section [jouled]): socket, db, log_level, max_connections,\n"
	"idle_timeout, max_body, socket_mode, socket_group, admin_group, synchronous,\n"
	"events_max, events_max_age, placed_timeout, demo_finish (true/false), scrape_interval,\n"
	"scrape_timeout, scrape_concurrency, down_after, recover_after, webhook (may repeat),\n"
	"webhook_timeout, webhook_concurrency, webhook_retry_min_ms, webhook_retry_max_ms.\n";

const char *config_usage(void) { return usage; }

static bool parse_u64(const char *s, uint64_t min, uint64_t max, int base, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return false;
	unsigned long long v = strtoull(s, &end, base);
	if (*end || errno || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Apply one option by its file key name; origin names it in errors. */
static int apply(struct config *c, const char *key, const char *val, const char *origin,
		 struct err *e)
{
	uint64_t v;
	if (strcmp(key, "socket") == 0) {
		if (!*val || strlen(val) >= sizeof(c->socket_path))
			return err_set(e, ERR_INVALID, key, "%s: socket path must be 1-%zu bytes",
				       origin, sizeof(c->socket_path) - 1);
		snprintf(c->socket_path, sizeof(c->socket_path), "%s", val);
	} else if (strcmp(key, "db") == 0) {
		if (!*val || strlen(val) >= sizeof(c->db_path))
			return err_set(e, ERR_INVALID, key, "%s: database path is empty or too long",
				       origin);
		snprintf(c->db_path, sizeof(c->db_path), "%s", val);
	} else if (strcmp(key, "log_level") == 0) {
		static const char *const names[] = {"error", "warning", "info", "debug"};
		int i;
		for (i = 0; i < 4 && strcmp(val, names[i]) != 0; i++)
			;
		if (i == 4)
			return err_set(e, ERR_INVALID, key, "%s: log level must be error, warning, "
				       "info or debug, not '%s'", origin, val);
		c->log_level = (enum log_level)i;
	} else if (strcmp(key, "max_connections") == 0) {
		if (!parse_u64(val, 1, 1000000, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be an integer 1-1000000", origin);
		c->max_connections = (uint32_t)v;
	} else if (strcmp(key, "idle_timeout") == 0) {
		if (!parse_u64(val, 0, 86400, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be 0-86400 seconds", origin);
		c->idle_timeout_s = v;
	} else if (strcmp(key, "max_body") == 0) {
		if (!parse_u64(val, 1024, 1u << 30, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be 1024-1073741824 bytes", origin);
		c->max_body_bytes = v;
	} else if (strcmp(key, "socket_mode") == 0) {
		if (!parse_u64(val, 0, 0777, 8, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be an octal mode like 0660", origin);
		c->socket_mode = (unsigned)v;
	} else if (strcmp(key, "socket_group") == 0 || strcmp(key, "admin_group") == 0) {
		char *dst = key[0] == 's' ? c->socket_group : c->admin_group;
		if (!*val || strlen(val) >= sizeof(c->admin_group))
			return err_set(e, ERR_INVALID, key, "%s: must be a group name of 1-63 bytes",
				       origin);
		snprintf(dst, sizeof(c->admin_group), "%s", val);
	} else if (strcmp(key, "events_max") == 0) {
		if (!parse_u64(val, 1, 100000000, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be an integer 1-100000000", origin);
		c->events_max = (uint32_t)v;
	} else if (strcmp(key, "events_max_age") == 0 || strcmp(key, "placed_timeout") == 0) {
		if (!parse_u64(val, 0, 10ull * 365 * 86400, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be a number of seconds", origin);
		*(key[0] == 'e' ? &c->events_max_age_s : &c->placed_timeout_s) = v;
	} else if (strcmp(key, "scrape_interval") == 0 || strcmp(key, "scrape_timeout") == 0 ||
		   strcmp(key, "scrape_concurrency") == 0 || strcmp(key, "down_after") == 0 ||
		   strcmp(key, "recover_after") == 0) {
		uint32_t *dst = strcmp(key, "scrape_interval") == 0 ? &c->scrape_interval_s
				: strcmp(key, "scrape_timeout") == 0   ? &c->scrape_timeout_s
				: strcmp(key, "scrape_concurrency") == 0 ? &c->scrape_concurrency
				: strcmp(key, "down_after") == 0       ? &c->down_after
								       : &c->recover_after;
		if (!parse_u64(val, 1, 4096, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be an integer 1-4096", origin);
		*dst = (uint32_t)v;
	} else if (strcmp(key, "webhook") == 0) {
		if ((strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0) ||
		    strlen(val) < 9 || strlen(val) >= sizeof(c->webhooks[0]))
			return err_set(e, ERR_INVALID, key, "%s: must be an http:// or https:// URL of "
				       "at most 511 bytes", origin);
		if (c->nwebhooks == CONFIG_MAX_WEBHOOKS)
			return err_set(e, ERR_INVALID, key, "%s: at most %d webhooks", origin,
				       CONFIG_MAX_WEBHOOKS);
		snprintf(c->webhooks[c->nwebhooks++], sizeof(c->webhooks[0]), "%s", val);
	} else if (strcmp(key, "webhook_timeout") == 0 || strcmp(key, "webhook_concurrency") == 0) {
		if (!parse_u64(val, 1, 3600, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be an integer 1-3600", origin);
		*(key[8] == 't' ? &c->webhook_timeout_s : &c->webhook_concurrency) = (uint32_t)v;
	} else if (strcmp(key, "webhook_retry_min_ms") == 0 ||
		   strcmp(key, "webhook_retry_max_ms") == 0) {
		if (!parse_u64(val, 10, 86400000, 10, &v))
			return err_set(e, ERR_INVALID, key, "%s: must be 10-86400000 milliseconds", origin);
		*(key[15] == 'i' ? &c->webhook_retry_min_ms : &c->webhook_retry_max_ms) = (uint32_t)v;
	} else if (strcmp(key, "demo_finish") == 0) {
		if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0)
			return err_set(e, ERR_INVALID, key, "%s: must be true or false", origin);
		c->demo_finish = strcmp(val, "true") == 0;
	} else if (strcmp(key, "synchronous") == 0) {
		if (strcmp(val, "full") != 0 && strcmp(val, "normal") != 0)
			return err_set(e, ERR_INVALID, key, "%s: must be full or normal", origin);
		c->synchronous_full = strcmp(val, "full") == 0;
	} else {
		return err_set(e, ERR_INVALID, key, "%s: unknown option '%s'", origin, key);
	}
	return 0;
}

struct ini_state {
	struct config *c;
	struct err *e;
	int failed;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	char origin[96];
	if (st->failed)
		return 1;
	if (strcmp(section, "jouled") != 0) {
		err_set(st->e, ERR_INVALID, name, "unknown section [%s] (keys go under [jouled])",
			section);
		st->failed = 1;
		return 0;
	}
	snprintf(origin, sizeof(origin), "key '%s'", name);
	if (apply(st->c, name, value, origin, st->e) < 0) {
		st->failed = 1;
		return 0;
	}
	return 1;
}

int config_load(struct config *c, int argc, char **argv, struct err *e)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"db", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"max-connections", required_argument, NULL, 'm'},
		{"idle-timeout", required_argument, NULL, 'i'},
		{"max-body", required_argument, NULL, 'b'},
		{"socket-mode", required_argument, NULL, 'M'},
		{"synchronous", required_argument, NULL, 'S'},
		{"socket-group", required_argument, NULL, 'g'},
		{"admin-group", required_argument, NULL, 'a'},
		{"events-max", required_argument, NULL, 'E'},
		{"events-max-age", required_argument, NULL, 'A'},
		{"placed-timeout", required_argument, NULL, 'P'},
		{"demo-finish", no_argument, NULL, 'D'},
		{"scrape-interval", required_argument, NULL, 'I'},
		{"scrape-timeout", required_argument, NULL, 'T'},
		{"scrape-concurrency", required_argument, NULL, 'K'},
		{"down-after", required_argument, NULL, 'W'},
		{"recover-after", required_argument, NULL, 'R'},
		{"webhook", required_argument, NULL, 'H'},
		{"webhook-timeout", required_argument, NULL, 'O'},
		{"webhook-concurrency", required_argument, NULL, 'N'},
		{"webhook-retry-min-ms", required_argument, NULL, 'n'},
		{"webhook-retry-max-ms", required_argument, NULL, 'x'},
		{"check-config", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0, 0, 0, 0},
	};
	static const char *const keys[128] = {
		['s'] = "socket", ['d'] = "db", ['l'] = "log_level", ['m'] = "max_connections",
		['i'] = "idle_timeout", ['b'] = "max_body", ['M'] = "socket_mode",
		['S'] = "synchronous", ['g'] = "socket_group", ['a'] = "admin_group",
		['E'] = "events_max", ['A'] = "events_max_age", ['P'] = "placed_timeout",
		['I'] = "scrape_interval", ['T'] = "scrape_timeout", ['K'] = "scrape_concurrency",
		['W'] = "down_after", ['R'] = "recover_after", ['H'] = "webhook",
		['O'] = "webhook_timeout", ['N'] = "webhook_concurrency",
		['n'] = "webhook_retry_min_ms", ['x'] = "webhook_retry_max_ms",
	};
	bool flag_webhooks = false;
	int ch;

	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "/run/joule/joule.sock");
	snprintf(c->db_path, sizeof(c->db_path), "/var/lib/joule/joule.db");
	c->log_level = LOG_LVL_INFO;
	c->max_connections = 1024;
	c->idle_timeout_s = 60;
	c->max_body_bytes = 1 << 20;
	c->socket_mode = 0666;
	c->synchronous_full = true;
	c->events_max = 100000;
	c->events_max_age_s = 7 * 86400;
	c->scrape_interval_s = 15;
	c->scrape_timeout_s = 5;
	c->scrape_concurrency = 64;
	c->down_after = 3;
	c->recover_after = 3;
	c->webhook_timeout_s = 10;
	c->webhook_concurrency = 4;
	c->webhook_retry_min_ms = 1000;
	c->webhook_retry_max_ms = 300000;

	/* First pass: find --config, --help, --version and unknown flags. */
	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (ch == 'c')
			snprintf(c->config_path, sizeof(c->config_path), "%s", optarg);
		else if (ch == 'h')
			c->help = true;
		else if (ch == 'V')
			c->version = true;
		else if (ch == 'C')
			c->check_only = true;
		else if (ch == '?')
			return err_set(e, ERR_INVALID, NULL, "unknown option '%s' (see --help)",
				       argv[optind - 1]);
		else if (ch == ':')
			return err_set(e, ERR_INVALID, NULL, "option '%s' needs a value",
				       argv[optind - 1]);
	}
	if (optind < argc)
		return err_set(e, ERR_INVALID, NULL, "unexpected argument '%s' (see --help)",
			       argv[optind]);
	if (c->help || c->version)
		return 0;
	if (c->config_path[0]) {
		struct ini_state st = {c, e, 0};
		int line = ini_parse(c->config_path, on_ini, &st);
		if (line == -1)
			return err_set(e, ERR_INVALID, NULL, "cannot open configuration file %s: %s",
				       c->config_path, strerror(errno));
		if (line != 0) {
			char msg[sizeof(e->message)];
			if (st.failed)
				snprintf(msg, sizeof(msg), "%s", e->message);
			else
				snprintf(msg, sizeof(msg), "syntax error");
			return err_set(e, ERR_INVALID, st.failed ? e->field : NULL, "%s:%d: %s",
				       c->config_path, line, msg);
		}
	}
	/* Second pass: flags win over the file. */
	optind = 1;
	while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (ch == 'D')
			c->demo_finish = true;
		if (ch == 'H' && !flag_webhooks) {
			c->nwebhooks = 0;   /* --webhook flags replace the file's list */
			flag_webhooks = true;
		}
		if (ch > 0 && ch < 128 && keys[ch]) {
			char origin[64];
			snprintf(origin, sizeof(origin), "--%s", opts[0].name);
			for (const struct option *o = opts; o->name; o++)
				if (o->val == ch)
					snprintf(origin, sizeof(origin), "--%s", o->name);
			int rc = apply(c, keys[ch], optarg, origin, e);
			if (rc < 0)
				return rc;
		}
	}
	if (c->webhook_retry_min_ms > c->webhook_retry_max_ms)
		return err_set(e, ERR_INVALID, "webhook_retry_min_ms", "webhook_retry_min_ms (%u) is "
			       "over webhook_retry_max_ms (%u)", c->webhook_retry_min_ms,
			       c->webhook_retry_max_ms);
	return 0;
}
