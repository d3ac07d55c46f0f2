/*
 * jouled — wiring: configuration, the database, the api, the HTTP listener, signals.
 *
 * Owns: the process's life cycle. Start: config → store (migrations) → api (state loaded
 * from the database) → listener → READY. Stop on SIGTERM/SIGINT: stop accepting, answer the
 * requests in flight, commit the last batch, close every handle, remove the socket file.
 * Never: does work of its own on the loop beyond that wiring.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "build_config.h"
#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "api.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "store.h"

struct daemon {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
	uv_timer_t watchdog;        /* WATCHDOG=1 at half of WATCHDOG_USEC, when asked */
	bool watchdog_on;
	struct http_server *http;
	struct api *api;
	struct store *store;
	struct config cfg;
	bool stopping;
};

/* mkdir -p of the directory holding path (mode 0755); errors surface when it is used. */
static void make_parent(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	char *dir = dirname(buf);
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
	}
	mkdir(dir, 0755);
}

/* A listening socket passed by systemd socket activation (LISTEN_FDS), or -1. */
static int inherited_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid() || strtol(fds, NULL, 10) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 3; /* SD_LISTEN_FDS_START */
}

static void notify(const char *what)
{
#if HAVE_SYSTEMD
	sd_notify(0, what);
#else
	(void)what;
#endif
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	notify("WATCHDOG=1");
}

/* Start pinging the watchdog if systemd asked for it (WatchdogSec=). */
static void watchdog_start(struct daemon *d)
{
#if HAVE_SYSTEMD
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000) {
		uv_timer_init(&d->loop, &d->watchdog);
		uv_timer_start(&d->watchdog, on_watchdog, usec / 2000, usec / 2000);
		d->watchdog_on = true;
		log_info("watchdog: pinging every %llu ms", (unsigned long long)(usec / 2000));
	}
#else
	(void)d;
#endif
}

static void on_http_stopped(void *ud)
{
	struct daemon *d = ud;
	api_flush(d->api);
	api_close(d->api);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	if (d->watchdog_on)
		uv_close((uv_handle_t *)&d->watchdog, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("%s received, stopping", strsignal(signum));
	notify("STOPPING=1");
	api_stop_waiting(d->api); /* long polls answer now: the server waits for them */
	http_server_stop(d->http, on_http_stopped, d);
}

int main(int argc, char **argv)
{
	struct daemon d = {0};
	struct err e = {0};
	int rc, status = 1;

	if (config_load(&d.cfg, argc, argv, &e) < 0) {
		fprintf(stderr, "jouled: %s\n", e.message);
		return 2;
	}
	if (d.cfg.help) {
		fputs(config_usage(), stdout);
		return 0;
	}
	if (d.cfg.version) {
		printf("jouled %s\n", JOULE_VERSION);
		return 0;
	}
	struct api_options ao = {.admin_gid = -1, .events_max = d.cfg.events_max,
				 .events_max_age_s = d.cfg.events_max_age_s,
				 .placed_timeout_s = d.cfg.placed_timeout_s,
				 .demo_finish = d.cfg.demo_finish,
				 .scrape_interval_ms = d.cfg.scrape_interval_s * 1000,
				 .scrape_timeout_ms = d.cfg.scrape_timeout_s * 1000,
				 .scrape_concurrency = d.cfg.scrape_concurrency,
				 .down_after = d.cfg.down_after,
				 .recover_after = d.cfg.recover_after,
				 .nwebhooks = d.cfg.nwebhooks,
				 .webhook_timeout_ms = d.cfg.webhook_timeout_s * 1000,
				 .webhook_concurrency = d.cfg.webhook_concurrency,
				 .webhook_retry_min_ms = d.cfg.webhook_retry_min_ms,
				 .webhook_retry_max_ms = d.cfg.webhook_retry_max_ms};
	for (uint32_t i = 0; i < d.cfg.nwebhooks; i++)
		ao.webhooks[i] = d.cfg.webhooks[i];
	long socket_gid = -1;
	if (d.cfg.admin_group[0] || d.cfg.socket_group[0]) {
		const char *names[2] = {d.cfg.admin_group, d.cfg.socket_group};
		long *out[2] = {&ao.admin_gid, &socket_gid};
		for (int i = 0; i < 2; i++) {
			if (!names[i][0])
				continue;
			struct group *g = getgrnam(names[i]);
			if (!g) {
				fprintf(stderr, "jouled: %s: unknown group '%s'\n",
					i ? "socket_group" : "admin_group", names[i]);
				return 2;
			}
			*out[i] = (long)g->gr_gid;
		}
		snprintf(ao.admin_group, sizeof(ao.admin_group), "%s", d.cfg.admin_group);
	}
	if (d.cfg.check_only) {
		printf("jouled: configuration ok (socket %s, database %s)\n", d.cfg.socket_path,
		       d.cfg.db_path);
		return 0;
	}
	static const enum log_prio prio[] = {LOG_PRIO_ERR, LOG_PRIO_WARNING, LOG_PRIO_INFO,
					     LOG_PRIO_DEBUG};
	log_setup(prio[d.cfg.log_level]);
	signal(SIGPIPE, SIG_IGN);
	make_parent(d.cfg.db_path);
	make_parent(d.cfg.socket_path);

	struct store_options so = {.synchronous_full = d.cfg.synchronous_full};
	if (store_open(d.cfg.db_path, &so, &d.store, &e) < 0) {
		log_err("%s", e.message);
		return 1;
	}
	if (uv_loop_init(&d.loop) < 0) {
		log_err("cannot start the event loop");
		goto out_store;
	}
	if (api_new(&d.loop, d.store, &ao, &d.api, &e) < 0) {
		log_err("cannot load state from %s: %s", d.cfg.db_path, e.message);
		goto out_loop;
	}
	struct http_limits lim;
	http_limits_default(&lim);
	lim.max_connections = d.cfg.max_connections;
	lim.idle_timeout_ms = d.cfg.idle_timeout_s * 1000;
	lim.max_body_bytes = d.cfg.max_body_bytes;
	lim.socket_mode = d.cfg.socket_mode;
	int listen_fd = inherited_fd();
	if (http_server_start(&d.loop, d.cfg.socket_path, listen_fd, &lim, api_handle, d.api, &d.http,
			      &e) < 0) {
		log_err("%s", e.message);
		api_close(d.api);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		goto out_api;
	}
	if (socket_gid >= 0 && listen_fd < 0 && chown(d.cfg.socket_path, (uid_t)-1, (gid_t)socket_gid) < 0)
		log_warning("cannot give %s to group %s: %s", d.cfg.socket_path, d.cfg.socket_group,
			    strerror(errno));
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);

	uint64_t jobs;
	uint32_t nodes, devices;
	api_counts(d.api, &jobs, &nodes, &devices);
	log_info("jouled %s: listening on %s, database %s (%u nodes, %u devices, %llu jobs)",
		 JOULE_VERSION, d.cfg.socket_path, d.cfg.db_path, nodes, devices,
		 (unsigned long long)jobs);
	char ready[160];
	snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving %u nodes, %u devices, %llu jobs",
		 nodes, devices, (unsigned long long)jobs);
	notify(ready);
	watchdog_start(&d);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	status = 0;
	http_server_free(d.http);
out_api:
	api_free(d.api);
out_loop:
	rc = uv_loop_close(&d.loop);
	if (rc != 0) {
		log_err("handles left open at exit: %s", uv_strerror(rc));
		status = 1;
	}
out_store:
	store_close(d.store);
	if (status == 0)
		log_info("stopped");
	return status;
}
