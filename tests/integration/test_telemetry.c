/*
 * test_telemetry — exporter scraping end to end: the real jouled scrapes loopback exporters
 * run by this test process and turns their pages into measured watts (node, rack, site),
 * device health (XID failures, unhealthy NPUs, recovery, admin reset) and node liveness
 * (down after failed scrapes, up on the next good one), and keeps answering while
 * exporters hang, drip or flood it.
 *
 * The exporters: one server thread per listening socket (blocking sockets on 127.0.0.1:0)
 * and one detached thread per connection, so a hanging or dripping exporter holds only its
 * own thread. Each URL path has a behaviour the test changes at run time (ex_set): the real
 * dcgm-exporter sample (its XID value replaced at will), the real npu-exporter sample (its
 * sample timestamps restamped to now, so they are not stale; power and one chip's
 * health_status replaced at will), a garbage page, HTTP 500, not HTTP at all, a hang, a
 * 100 MB body without Content-Length, a slow drip. "Refused" is a second server whose
 * listening socket is closed and later reopened on the same port.
 *
 * jouled runs with --scrape-interval 1 --scrape-timeout 1 --down-after 2 --recover-after 2.
 * The reset test needs root (uid 65534 must be refused, like test_ops); CI runs as root.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/daemon.h"

#define OTHER_UID 65534 /* nobody */
#define OTHER_GID 65534 /* nogroup */
#define H100 "H100-SXM5-80GB"
#define NPU "Ascend910B3"
#define DCGM_SAMPLE_W 40.979 /* DCGM_FI_DEV_POWER_USAGE of gpu 0 in the real sample */

static const char *const daemon_args[] = {"--scrape-interval", "1", "--scrape-timeout", "1",
					  "--down-after", "2", "--recover-after", "2", NULL};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- loopback exporters ---- */

enum behaviour {
	B_DCGM,      /* the real dcgm-exporter sample, DCGM_FI_DEV_XID_ERRORS = xid */
	B_NPU,       /* the real npu-exporter sample, restamped; power / bad chip replaced */
	B_GARBAGE,   /* HTTP 200 with a page that is not Prometheus text */
	B_500,       /* HTTP 500 */
	B_NOT_HTTP,  /* bytes that are not an HTTP answer, then close */
	B_HANG,      /* read the request, answer nothing, hold the connection */
	B_HUGE,      /* HTTP 200, no Content-Length, 100 MB of comment lines */
	B_DRIP,      /* HTTP 200 headers, then one byte every 200 ms */
};

struct route {
	char path[32];
	enum behaviour b;
	int xid;           /* B_DCGM */
	double power_w;    /* B_NPU: every chip's npu_chip_info_power; < 0 keeps the sample's */
	int bad_chip;      /* B_NPU: the chip whose health_status is 0; -1 none */
	unsigned hits;
};

#define MAX_ROUTES 16
static pthread_mutex_t routes_mu = PTHREAD_MUTEX_INITIALIZER;
static struct route routes[MAX_ROUTES];
static int nroutes;
static char *dcgm_sample, *npu_sample;
static atomic_int conn_threads;     /* connection threads still running */
static atomic_bool stopping;        /* every connection thread ends soon */

struct server {
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	bool running;
};

/* Set (or add) the behaviour of path. */
static void ex_set(const char *path, enum behaviour b, int xid, double power_w, int bad_chip)
{
	pthread_mutex_lock(&routes_mu);
	int i = 0;
	while (i < nroutes && strcmp(routes[i].path, path) != 0)
		i++;
	ck_assert_int_lt(i, MAX_ROUTES);
	if (i == nroutes) {
		nroutes++;
		snprintf(routes[i].path, sizeof(routes[i].path), "%s", path);
		routes[i].hits = 0;
	}
	routes[i].b = b;
	routes[i].xid = xid;
	routes[i].power_w = power_w;
	routes[i].bad_chip = bad_chip;
	pthread_mutex_unlock(&routes_mu);
}

static void ex_dcgm(const char *path, int xid)
{
	ex_set(path, B_DCGM, xid, -1, -1);
}

static void ex_npu(const char *path, double power_w, int bad_chip)
{
	ex_set(path, B_NPU, 0, power_w, bad_chip);
}

static void ex_fail(const char *path, enum behaviour b)
{
	ex_set(path, b, 0, -1, -1);
}

static unsigned ex_hits(const char *path)
{
	unsigned h = 0;
	pthread_mutex_lock(&routes_mu);
	for (int i = 0; i < nroutes; i++)
		if (strcmp(routes[i].path, path) == 0)
			h = routes[i].hits;
	pthread_mutex_unlock(&routes_mu);
	return h;
}

static int send_page(int fd, int status, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, status == 200 ? "OK" : "Internal Server Error", len);
	return td_send_all(fd, head, (size_t)n) < 0 ? -1 : td_send_all(fd, body, len);
}

/* Wait until the peer closes fd or the test stops; ms at most (< 0: no limit). */
static void hold(int fd, int ms)
{
	int64_t end = td_now_ms() + ms;
	while (!atomic_load(&stopping) && (ms < 0 || td_now_ms() < end)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) == 1) {
			char buf[256];
			if (recv(fd, buf, sizeof(buf), 0) <= 0)
				return;
		}
	}
}

/* The dcgm sample with the XID series' value set to xid. */
static char *dcgm_page(int xid, size_t *len)
{
	size_t cap = strlen(dcgm_sample) + 64;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	size_t o = 0;
	for (const char *l = dcgm_sample; *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		const char *brace = memrchr(l, '}', n);
		if (strncmp(l, "DCGM_FI_DEV_XID_ERRORS{", 23) == 0 && brace) {
			memcpy(out + o, l, (size_t)(brace - l) + 1);
			o += (size_t)(brace - l) + 1;
			o += (size_t)snprintf(out + o, cap - o, " %d\n", xid);
		} else {
			memcpy(out + o, l, n);
			o += n;
			out[o++] = '\n';
		}
		l += n + (e ? 1 : 0);
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* The npu sample with every sample timestamp set to now, npu_chip_info_power set to
 * power_w (when >= 0) and chip bad_chip's npu_chip_info_health_status set to 0. */
static char *npu_page(double power_w, int bad_chip, size_t *len)
{
	size_t cap = strlen(npu_sample) * 2 + 64;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	size_t o = 0;
	long long ts = (long long)wall_ms();
	char bad[32];
	snprintf(bad, sizeof(bad), "id=\"%d\"", bad_chip);
	for (const char *l = npu_sample; *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), l);
		l += n + (e ? 1 : 0);
		char *brace = strrchr(line, '}');
		if (line[0] == '#' || !brace) {
			o += (size_t)snprintf(out + o, cap - o, "%s\n", line);
			continue;
		}
		char value[64] = "", stamp[64] = "";
		int k = sscanf(brace + 1, "%63s %63s", value, stamp);
		brace[1] = '\0';
		if (strncmp(line, "npu_chip_info_power{", 20) == 0 && power_w >= 0)
			snprintf(value, sizeof(value), "%g", power_w);
		if (strncmp(line, "npu_chip_info_health_status{", 28) == 0 && strstr(line, bad))
			snprintf(value, sizeof(value), "0");
		if (k == 2)
			o += (size_t)snprintf(out + o, cap - o, "%s %s %lld\n", line, value, ts);
		else
			o += (size_t)snprintf(out + o, cap - o, "%s %s\n", line, value);
	}
	*len = o;
	return out;
}

static void serve(int fd)
{
	char req[4096];
	size_t len = 0;
	int64_t end = td_now_ms() + 2000;
	while (len < sizeof(req) - 1 && td_now_ms() < end && !atomic_load(&stopping)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	char path[64] = "";
	if (sscanf(req, "GET %63s ", path) != 1)
		return;
	struct route r = {.b = B_500};
	bool found = false;
	pthread_mutex_lock(&routes_mu);
	for (int i = 0; i < nroutes; i++)
		if (strcmp(routes[i].path, path) == 0) {
			routes[i].hits++;
			r = routes[i];
			found = true;
		}
	pthread_mutex_unlock(&routes_mu);
	if (!found) {
		send_page(fd, 500, "no such route\n", 14);
		return;
	}
	char *body;
	size_t blen;
	switch (r.b) {
	case B_DCGM:
		body = dcgm_page(r.xid, &blen);
		send_page(fd, 200, body, blen);
		free(body);
		break;
	case B_NPU:
		body = npu_page(r.power_w, r.bad_chip, &blen);
		send_page(fd, 200, body, blen);
		free(body);
		break;
	case B_GARBAGE: {
		char junk[2048];
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)(i * 7919 % 251 + 1);
		static const char head[] = "<html><body>Bad gateway {{{ \"x\" = = \n";
		memcpy(junk, head, sizeof(head) - 1);
		send_page(fd, 200, junk, sizeof(junk));
		break;
	}
	case B_500:
		send_page(fd, 500, "exporter broke\n", 15);
		break;
	case B_NOT_HTTP: {
		static const char junk[] = "\x16\x03\x01 this is not http at all\r\n\r\n";
		td_send_all(fd, junk, sizeof(junk) - 1);
		break;
	}
	case B_HANG:
		hold(fd, -1);
		break;
	case B_HUGE: {
		static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					   "Connection: close\r\n\r\n";
		if (td_send_all(fd, head, sizeof(head) - 1) < 0)
			break;
		char chunk[65536];
		memset(chunk, '#', sizeof(chunk));
		for (size_t i = 63; i < sizeof(chunk); i += 64)
			chunk[i] = '\n';
		for (size_t sent = 0; sent < 100u << 20 && !atomic_load(&stopping); sent += sizeof(chunk))
			if (td_send_all(fd, chunk, sizeof(chunk)) < 0)
				break;
		break;
	}
	case B_DRIP: {
		static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					   "Connection: close\r\n\r\n# ";
		if (td_send_all(fd, head, sizeof(head) - 1) < 0)
			break;
		while (!atomic_load(&stopping)) {
			hold(fd, 200);
			if (td_send_all(fd, "x", 1) < 0)
				break;
		}
		break;
	}
	}
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	serve(fd);
	shutdown(fd, SHUT_WR);
	close(fd);
	atomic_fetch_sub(&conn_threads, 1);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = {.fd = s->lfd, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		atomic_fetch_add(&conn_threads, 1);
		if (pthread_create(&t, &at, conn_main, (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&conn_threads, 1);
			close(fd);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

/* Listen on 127.0.0.1:port (0: any) and serve the routes. */
static void server_start(struct server *s, int port)
{
	if (!dcgm_sample) {
		char p[PATH_MAX];
		size_t n;
		ck_assert_int_eq(td_data_path("telemetry/dcgm-exporter-sample.prom", p, sizeof(p)), 0);
		ck_assert_int_eq(td_read_file(p, &dcgm_sample, &n), 0);
		ck_assert_int_eq(td_data_path("telemetry/npu-exporter-sample.prom", p, sizeof(p)), 0);
		ck_assert_int_eq(td_read_file(p, &npu_sample, &n), 0);
	}
	s->lfd = td_listen_loopback(port, &s->port);
	ck_assert_msg(s->lfd >= 0, "listen on port %d: %s", port, strerror(-s->lfd));
	atomic_store(&s->stop, false);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, accept_main, s), 0);
	s->running = true;
}

/* Close the listening socket: new connections are refused. */
static void server_stop(struct server *s)
{
	if (!s->running)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	s->running = false;
}

/* After the daemon is gone: stop the servers and wait for every connection thread. */
static void servers_end(struct server *a, struct server *b)
{
	server_stop(a);
	if (b)
		server_stop(b);
	atomic_store(&stopping, true);
	for (int64_t end = td_now_ms() + 5000; atomic_load(&conn_threads) > 0 && td_now_ms() < end;)
		td_sleep_ms(20);
	ck_assert_int_eq(atomic_load(&conn_threads), 0);
	free(dcgm_sample);
	free(npu_sample);
	dcgm_sample = npu_sample = NULL;
}

/* ---- fleet ---- */

struct tnode {
	const char *name, *domain, *model;
	int host_idle_w;
	const struct server *srv;   /* NULL: no exporter_url */
	const char *path;
};

/* Import domains site (1 MW) > rack-g, rack-n (budget rack_n_w, 0: 100 kW) and nodes. */
static void import_fleet(struct td_daemon *d, const struct tnode *nodes, size_t n, long long rack_n_w)
{
	json_t *doc = json_pack("{s:[{s:s, s:n, s:I}, {s:s, s:s, s:I}, {s:s, s:s, s:I}], s:[]}",
				"domains", "name", "site", "parent", "budget_w", (json_int_t)1000000,
				"name", "rack-g", "parent", "site", "budget_w", (json_int_t)100000,
				"name", "rack-n", "parent", "site", "budget_w",
				(json_int_t)(rack_n_w ? rack_n_w : 100000), "nodes");
	ck_assert_ptr_nonnull(doc);
	for (size_t i = 0; i < n; i++) {
		json_t *nd = json_pack("{s:s, s:s, s:I, s:[{s:s, s:i}]}", "name", nodes[i].name,
				       "domain", nodes[i].domain, "host_idle_w",
				       (json_int_t)nodes[i].host_idle_w, "devices", "model",
				       nodes[i].model, "count", 8);
		if (nodes[i].srv) {
			char url[128];
			snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", nodes[i].srv->port,
				 nodes[i].path);
			json_object_set_new(nd, "exporter_url", json_string(url));
		}
		json_array_append_new(json_object_get(doc, "nodes"), nd);
	}
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/fleet", body, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "import: %ld %s", r.status, r.raw);
	td_response_free(&r);
	free(body);
}

static void start(struct td_daemon *d, bool shared)
{
	if (!shared) {
		ck_assert_int_eq(td_start_args(d, daemon_args), 0);
		return;
	}
	ck_assert_msg(getuid() == 0, "the access test must run as root (it switches to uid 65534)");
	ck_assert_int_eq(td_make_dir(d), 0);
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
	pid_t pid;
	ck_assert_int_eq(td_spawn(d, daemon_args, NULL, &pid), 0);
	ck_assert_int_eq(td_wait_ready(d, TD_READY_TIMEOUT_MS), 0);
}

static json_t *get(struct td_daemon *d, const char *fmt, const char *arg)
{
	char p[256];
	snprintf(p, sizeof(p), fmt, arg);
	json_t *j = td_get_json(d, p);
	ck_assert_msg(j != NULL, "GET %s failed", p);
	return j;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static double jnum(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *device_of(json_t *node, int index)
{
	return json_array_get(json_object_get(node, "devices"), (size_t)index);
}

/* Wait until every named node has a measured_at (a good scrape). */
static void wait_measured(struct td_daemon *d, const char *const *names, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (size_t i = 0; names[i]; i++) {
		for (;;) {
			json_t *n = get(d, "/v1/nodes/%s", names[i]);
			bool ok = json_is_string(json_object_get(n, "measured_at"));
			json_decref(n);
			if (ok)
				break;
			ck_assert_msg(td_now_ms() < end, "node %s was never measured", names[i]);
			td_sleep_ms(50);
		}
	}
}

/* Wait until node name is in state; the node. */
static json_t *wait_state(struct td_daemon *d, const char *name, const char *state, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	for (;;) {
		json_t *n = get(d, "/v1/nodes/%s", name);
		if (strcmp(jstr(n, "state"), state) == 0)
			return n;
		ck_assert_msg(td_now_ms() < end, "node %s is %s, not %s (scrape_error %s)", name,
			      jstr(n, "state"), state, jstr(n, "scrape_error"));
		json_decref(n);
		td_sleep_ms(50);
	}
}

/*
 * Wait for an event of type about node (NULL: any) and job (0: any) whose data, as JSON
 * text, holds needle (NULL: any); the event (a new reference).
 */
static json_t *wait_event(struct td_daemon *d, const char *type, const char *node, long long job,
			  const char *needle, int timeout_ms)
{
	int64_t end = td_now_ms() + timeout_ms;
	long long since = 0;
	for (;;) {
		char p[256];
		snprintf(p, sizeof(p), "/v1/events?since=%lld&types=%s&wait=1&limit=10000", since, type);
		json_t *ans = td_get_json(d, p);
		ck_assert_msg(ans != NULL, "GET %s failed", p);
		json_t *e, *found = NULL;
		size_t i;
		json_array_foreach(json_object_get(ans, "events"), i, e) {
			char *data = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
			bool match = strcmp(jstr(e, "type"), type) == 0 &&
				     (!node || strcmp(jstr(e, "node"), node) == 0) &&
				     (!job || json_integer_value(json_object_get(e, "job")) == job) &&
				     (!needle || (data && strstr(data, needle)));
			free(data);
			if (match && !found)
				found = json_incref(e);
		}
		since = json_integer_value(json_object_get(ans, "next"));
		json_decref(ans);
		if (found)
			return found;
		ck_assert_msg(td_now_ms() < end, "no %s event (node %s, job %lld, data with %s)", type,
			      node ? node : "any", job, needle ? needle : "anything");
	}
}

/* Events of type so far whose data holds needle (NULL: any). */
static int count_events(struct td_daemon *d, const char *type, const char *needle)
{
	char p[256];
	snprintf(p, sizeof(p), "/v1/events?types=%s&limit=10000", type);
	json_t *ans = get(d, "%s", p);
	json_t *e;
	size_t i;
	int n = 0;
	json_array_foreach(json_object_get(ans, "events"), i, e) {
		char *data = json_dumps(json_object_get(e, "data"), JSON_COMPACT);
		n += !needle || (data && strstr(data, needle));
		free(data);
	}
	json_decref(ans);
	return n;
}

static long long submit(struct td_daemon *d, const char *name, const char *model, int devices)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":1,\"devices\":%d,"
		 "\"accelerator\":{\"models\":[\"%s\"]}}", name, devices, model);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/jobs", body, NULL, &r), 0);
	ck_assert_msg(r.status == 201, "submit: %ld %s", r.status, r.raw);
	long long id = json_integer_value(json_object_get(r.json, "id"));
	td_response_free(&r);
	return id;
}

static json_t *get_job(struct td_daemon *d, long long id)
{
	char p[64];
	snprintf(p, sizeof(p), "%lld", id);
	return get(d, "/v1/jobs/%s", p);
}

/* The node a placed one-worker job is on ("" when not placed). */
static const char *job_node(json_t *job)
{
	return jstr(json_array_get(json_object_get(job, "placement"), 0), "node");
}

static void near(double got, double want, const char *what)
{
	ck_assert_msg(fabs(got - want) < 0.01, "%s: %.3f W, expected %.3f W", what, got, want);
}

/* ---- tests ----
 * Node and domain measured_w are whole watts (rounded); a device's is the exporter's value. */

START_TEST(measured_power_appears_on_the_node_its_rack_and_its_site)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/g1", 0);
	ex_npu("/n1", 100, -1);
	const struct tnode nodes[] = {
		{"g1", "rack-g", H100, 1500, &s, "/g1"},
		{"n1", "rack-n", NPU, 1200, &s, "/n1"},
		{"x1", "rack-g", H100, 1000, NULL, NULL}, /* no exporter: not measured */
	};
	start(&d, false);
	import_fleet(&d, nodes, 3, 0);
	const char *const measured[] = {"g1", "n1", NULL};
	wait_measured(&d, measured, 5000);

	json_t *g1 = get(&d, "/v1/nodes/%s", "g1");
	near(jnum(g1, "measured_w"), round(DCGM_SAMPLE_W), "g1 measured_w (whole watts)");
	near(jnum(device_of(g1, 0), "measured_w"), DCGM_SAMPLE_W, "g1 device 0");
	ck_assert(json_is_null(json_object_get(device_of(g1, 1), "measured_w"))); /* no series */
	ck_assert(json_is_string(json_object_get(g1, "scraped_at")));
	ck_assert(json_is_null(json_object_get(g1, "scrape_error")));
	ck_assert_int_eq(json_integer_value(json_object_get(g1, "scrape_failures")), 0);
	json_decref(g1);
	json_t *n1 = get(&d, "/v1/nodes/%s", "n1");
	near(jnum(n1, "measured_w"), 800, "n1 measured_w (8 chips x 100 W)");
	for (int i = 0; i < 8; i++)
		ck_assert_str_eq(jstr(device_of(n1, i), "health"), "ok");
	json_decref(n1);
	json_t *devs = get(&d, "/v1/devices?node=%s", "n1");
	json_t *dev;
	size_t i;
	json_array_foreach(json_object_get(devs, "devices"), i, dev) {
		near(jnum(dev, "measured_w"), 100, "n1 device in GET /v1/devices");
		ck_assert(json_is_null(json_object_get(dev, "health_reason")));
	}
	json_decref(devs);
	json_t *x1 = get(&d, "/v1/nodes/%s", "x1");
	ck_assert(json_is_null(json_object_get(x1, "measured_w")));
	ck_assert(json_is_null(json_object_get(x1, "scraped_at")));
	json_decref(x1);

	/* domain = sum of the measured nodes' device watts + their host_idle_w */
	json_t *rg = get(&d, "/v1/domains/%s", "rack-g"), *rn = get(&d, "/v1/domains/%s", "rack-n"),
	       *site = get(&d, "/v1/domains/%s", "site");
	near(jnum(rg, "measured_w"), round(DCGM_SAMPLE_W + 1500), "rack-g");
	near(jnum(rn, "measured_w"), 800 + 1200, "rack-n");
	near(jnum(site, "measured_w"), round(DCGM_SAMPLE_W + 1500 + 800 + 1200), "site");
	ck_assert(json_is_string(json_object_get(site, "measured_at")));
	ck_assert(json_is_false(json_object_get(site, "over_budget")));
	json_decref(rg);
	json_decref(rn);
	json_decref(site);

	/* joulectl shows them */
	struct td_run r;
	const char *nodes_cmd[] = {"nodes", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, nodes_cmd, &r), 0);
	ck_assert_msg(r.code == 0 && strstr(r.out, "MEASURED_W") && strstr(r.out, "SCRAPED") &&
		      strstr(r.out, "ERROR") && strstr(r.out, "800"), "joulectl nodes: %s%s", r.out, r.err);
	td_run_free(&r);
	const char *node_cmd[] = {"node", "g1", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, node_cmd, &r), 0);
	ck_assert_msg(r.code == 0 && strstr(r.out, "measured_w:") && strstr(r.out, "scraped_at:") &&
		      strstr(r.out, "scrape_failures:") && strstr(r.out, "REASON") &&
		      strstr(r.out, "41"), "joulectl node g1: %s%s", r.out, r.err);
	td_run_free(&r);
	const char *dom_cmd[] = {"domains", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, dom_cmd, &r), 0);
	ck_assert_msg(r.code == 0 && strstr(r.out, "MEASURED_W") && strstr(r.out, "2000"),
		      "joulectl domains: %s%s", r.out, r.err);
	td_run_free(&r);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

START_TEST(an_xid_failure_fails_the_device_requeues_its_job_and_clean_scrapes_bring_it_back)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/g1", 0);
	ex_dcgm("/g2", 0);
	const struct tnode nodes[] = {
		{"g1", "rack-g", H100, 1500, &s, "/g1"},
		{"g2", "rack-g", H100, 1500, &s, "/g2"},
	};
	start(&d, false);
	import_fleet(&d, nodes, 2, 0);
	const char *const measured[] = {"g1", "g2", NULL};
	wait_measured(&d, measured, 5000);
	long long id = submit(&d, "train", H100, 8);
	json_t *job = get_job(&d, id);
	ck_assert_str_eq(jstr(job, "state"), "placed");
	char on[16], other[16];
	snprintf(on, sizeof(on), "%s", job_node(job));
	snprintf(other, sizeof(other), "%s", strcmp(on, "g1") == 0 ? "g2" : "g1");
	json_decref(job);

	/* XID 79 (fallen off the bus) on the GPU the job holds */
	char path[32];
	snprintf(path, sizeof(path), "/%s", on);
	int64_t t0 = td_now_ms();
	ex_dcgm(path, 79);
	json_t *e = wait_event(&d, "device.failed", on, 0, "XID 79", 5000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "index")), 0);
	json_decref(e);
	json_t *n = get(&d, "/v1/nodes/%s", on);
	ck_assert_str_eq(jstr(device_of(n, 0), "health"), "failed");
	ck_assert_msg(strstr(jstr(device_of(n, 0), "health_reason"), "XID 79"), "reason %s",
		      jstr(device_of(n, 0), "health_reason"));
	ck_assert_str_eq(jstr(device_of(n, 1), "health"), "ok");
	json_decref(n);
	json_decref(wait_event(&d, "job.device_failed", NULL, id, "XID 79", 2000));
	e = wait_event(&d, "job.requeued", NULL, id, "DEVICE_FAILED", 2000);
	ck_assert_msg(strncmp(jstr(json_object_get(e, "data"), "reason"), "DEVICE_FAILED:", 14) == 0,
		      "reason %s", jstr(json_object_get(e, "data"), "reason"));
	json_decref(e);
	job = get_job(&d, id);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "requeues")), 1);
	/* the gang went back to pending and was placed again on the healthy node */
	ck_assert_str_eq(jstr(job, "state"), "placed");
	ck_assert_str_eq(job_node(job), other);
	json_decref(job);

	/* the exporter keeps repeating XID 79: not new, so the scrapes are clean; 2 of them
	 * bring the device back */
	e = wait_event(&d, "device.ok", on, 0, "clean scrapes", 6000);
	json_decref(e);
	int64_t took = td_now_ms() - t0;
	ck_assert_msg(took >= 1500, "back to ok after %lld ms: sooner than 2 clean scrapes",
		      (long long)took);
	n = get(&d, "/v1/nodes/%s", on);
	ck_assert_str_eq(jstr(device_of(n, 0), "health"), "ok");
	ck_assert(json_is_null(json_object_get(device_of(n, 0), "health_reason")));
	json_decref(n);

	/* a new XID 94 (contained ECC error) degrades it; no job is touched */
	ex_dcgm(path, 94);
	json_decref(wait_event(&d, "device.degraded", on, 0, "XID 94", 5000));
	n = get(&d, "/v1/nodes/%s", on);
	ck_assert_str_eq(jstr(device_of(n, 0), "health"), "degraded");
	json_decref(n);
	ck_assert_int_eq(count_events(&d, "job.requeued", NULL), 1);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

#define SAMPLE_UUID "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c" /* gpu 0 in the real sample */

/* Import node g1 (8 H100) whose device 5 has the sample's UUID. */
static void import_uuid_node(struct td_daemon *d, const struct server *s)
{
	char body[1024];
	snprintf(body, sizeof(body),
		 "{\"domains\":[{\"name\":\"site\",\"budget_w\":1000000}],\"nodes\":[{\"name\":\"g1\","
		 "\"domain\":\"site\",\"host_idle_w\":1500,\"exporter_url\":\"http://127.0.0.1:%d/g1\","
		 "\"devices\":[{\"model\":\"%s\",\"count\":8,\"uuids\":[\"GPU-0\",\"GPU-1\",\"GPU-2\","
		 "\"GPU-3\",\"GPU-4\",\"%s\",\"GPU-6\",\"GPU-7\"]}]}]}", s->port, H100, SAMPLE_UUID);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/fleet", body, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "import: %ld %s", r.status, r.raw);
	td_response_free(&r);
}

START_TEST(dcgm_series_map_to_devices_by_uuid_before_the_gpu_index)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/g1", 0);
	start(&d, false);

	/* a uuid list of the wrong length, or with a repeat, is refused naming the field */
	static const char *const bad[][2] = {
		{"[\"GPU-0\"]", "nodes[0].devices[0].uuids"},
		{"[\"A\",\"B\",\"A\",\"C\",\"D\",\"E\",\"F\",\"G\"]", "nodes[0].devices[0].uuids[2]"},
	};
	for (size_t i = 0; i < 2; i++) {
		char body[512];
		snprintf(body, sizeof(body),
			 "{\"domains\":[{\"name\":\"site\",\"budget_w\":1000000}],\"nodes\":[{\"name\":"
			 "\"g1\",\"domain\":\"site\",\"devices\":[{\"model\":\"%s\",\"count\":8,"
			 "\"uuids\":%s}]}]}", H100, bad[i][0]);
		struct td_response r = {0};
		ck_assert_int_eq(td_http(&d, "POST", "/v1/fleet", body, NULL, &r), 0);
		ck_assert_msg(r.status == 422, "bad uuids %s: %ld %s", bad[i][0], r.status, r.raw);
		ck_assert_str_eq(jstr(json_object_get(r.json, "error"), "field"), bad[i][1]);
		td_response_free(&r);
	}

	import_uuid_node(&d, &s);
	const char *const measured[] = {"g1", NULL};
	wait_measured(&d, measured, 5000);
	json_t *g1 = get(&d, "/v1/nodes/%s", "g1");
	/* the sample labels its one GPU gpu="0", UUID=SAMPLE_UUID: the UUID wins */
	near(jnum(device_of(g1, 5), "measured_w"), DCGM_SAMPLE_W, "g1 device 5 (the UUID's)");
	ck_assert(json_is_null(json_object_get(device_of(g1, 0), "measured_w")));
	ck_assert_str_eq(jstr(device_of(g1, 5), "uuid"), SAMPLE_UUID);
	json_decref(g1);

	/* the UUIDs survive a restart and come back in the fleet export */
	ck_assert_int_eq(td_kill9(&d), 0);
	ck_assert_int_eq(td_restart(&d), 0);
	g1 = get(&d, "/v1/nodes/%s", "g1");
	ck_assert_str_eq(jstr(device_of(g1, 5), "uuid"), SAMPLE_UUID);
	json_decref(g1);
	json_t *fleet = get(&d, "%s", "/v1/fleet");
	json_t *uuids = json_object_get(json_array_get(json_object_get(json_array_get(
		json_object_get(fleet, "nodes"), 0), "devices"), 0), "uuids");
	ck_assert_int_eq(json_array_size(uuids), 8);
	ck_assert_str_eq(json_string_value(json_array_get(uuids, 5)), SAMPLE_UUID);
	json_decref(fleet);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

START_TEST(a_job_that_opts_out_keeps_its_devices_when_one_fails)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/g1", 0);
	const struct tnode nodes[] = {{"g1", "rack-g", H100, 1500, &s, "/g1"}};
	start(&d, false);
	import_fleet(&d, nodes, 1, 0);
	const char *const measured[] = {"g1", NULL};
	wait_measured(&d, measured, 5000);
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"name\":\"elastic\",\"kind\":\"training\",\"workers\":1,\"devices\":8,"
		 "\"on_device_failure\":\"keep\",\"accelerator\":{\"models\":[\"%s\"]}}", H100);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs", body, NULL, &r), 0);
	ck_assert_msg(r.status == 201, "submit: %ld %s", r.status, r.raw);
	long long id = json_integer_value(json_object_get(r.json, "id"));
	ck_assert_str_eq(jstr(r.json, "on_device_failure"), "keep");
	ck_assert_str_eq(jstr(r.json, "state"), "placed");
	td_response_free(&r);

	ex_dcgm("/g1", 79);
	json_decref(wait_event(&d, "job.device_failed", NULL, id, "XID 79", 5000));
	/* the event is out; the job keeps its devices (a training job would be requeued) */
	json_t *job = get_job(&d, id);
	ck_assert_str_eq(jstr(job, "state"), "placed");
	ck_assert_str_eq(job_node(job), "g1");
	ck_assert_int_eq(json_integer_value(json_object_get(job, "requeues")), 0);
	json_decref(job);
	ck_assert_int_eq(count_events(&d, "job.requeued", NULL), 0);

	/* a bad value is refused naming the field */
	ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs",
				 "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
				 "\"on_device_failure\":\"ignore\"}", NULL, &r), 0);
	ck_assert_int_eq(r.status, 422);
	ck_assert_str_eq(jstr(json_object_get(r.json, "error"), "field"), "on_device_failure");
	td_response_free(&r);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

/* The HTTP status of method path sent by uid 65534 (a forked child on a raw connection). */
static long status_as_other(struct td_daemon *d, const char *method, const char *path)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		long status = 0;
		if (setgroups(0, NULL) == 0 && setresgid(OTHER_GID, OTHER_GID, OTHER_GID) == 0 &&
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) == 0) {
			char req[512], *out = NULL;
			size_t outlen;
			int n = snprintf(req, sizeof(req),
					 "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
					 "Connection: close\r\n\r\n", method, path);
			if (td_raw(d->sock, req, (size_t)n, 5000, &out, &outlen) == 0 && out)
				sscanf(out, "HTTP/1.1 %ld", &status);
			free(out);
		}
		if (write(pfd[1], &status, sizeof(status)) != sizeof(status))
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	long status = -1;
	ck_assert_int_eq(read(pfd[0], &status, sizeof(status)), sizeof(status));
	close(pfd[0]);
	int ws;
	ck_assert_int_eq(td_wait_pid(pid, 10000, &ws), 0);
	return status;
}

START_TEST(an_admin_reset_returns_a_failed_device_at_once_and_nobody_else_may)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/g1", 0);
	const struct tnode nodes[] = {{"g1", "rack-g", H100, 1500, &s, "/g1"}};
	start(&d, true);
	import_fleet(&d, nodes, 1, 0);
	const char *const measured[] = {"g1", NULL};
	wait_measured(&d, measured, 5000);

	ck_assert_int_eq(status_as_other(&d, "POST", "/v1/devices/g1/0/reset"), 403);
	ex_dcgm("/g1", 79);
	json_decref(wait_event(&d, "device.failed", "g1", 0, "XID 79", 5000));
	/* at once: well before the 2 clean scrapes that would bring it back */
	struct td_run r;
	const char *reset[] = {"device", "reset", "g1", "0", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, reset, &r), 0);
	ck_assert_msg(r.code == 0, "joulectl device reset: %d %s%s", r.code, r.out, r.err);
	td_run_free(&r);
	json_t *e = wait_event(&d, "device.ok", "g1", 0, "reset by an admin", 200);
	json_decref(e);
	json_t *n = get(&d, "/v1/nodes/%s", "g1");
	ck_assert_str_eq(jstr(device_of(n, 0), "health"), "ok");
	json_decref(n);
	ck_assert_int_eq(count_events(&d, "device.ok", "clean scrapes"), 0);
	/* the exporter keeps repeating the XID: not new, the device stays ok */
	unsigned hits = ex_hits("/g1");
	while (ex_hits("/g1") < hits + 2)
		td_sleep_ms(50);
	td_sleep_ms(200);
	n = get(&d, "/v1/nodes/%s", "g1");
	ck_assert_str_eq(jstr(device_of(n, 0), "health"), "ok");
	json_decref(n);
	ck_assert_int_eq(count_events(&d, "device.failed", NULL), 1);
	/* still refused for uid 65534; unknown devices are 404 */
	ck_assert_int_eq(status_as_other(&d, "POST", "/v1/devices/g1/0/reset"), 403);
	const char *missing[] = {"device", "reset", "g1", "8", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, missing, &r), 0);
	ck_assert_int_eq(r.code, 1);
	td_run_free(&r);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

START_TEST(an_unhealthy_npu_is_left_out_of_new_placements)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_npu("/n1", 150, 3);
	const struct tnode nodes[] = {{"n1", "rack-n", NPU, 1200, &s, "/n1"}};
	start(&d, false);
	import_fleet(&d, nodes, 1, 0);
	json_t *e = wait_event(&d, "device.failed", "n1", 0, "NPU health status unhealthy", 5000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(e, "data"), "index")), 3);
	json_decref(e);
	json_t *f = get(&d, "/v1/devices?health=%s", "failed");
	json_t *list = json_object_get(f, "devices");
	ck_assert_int_eq(json_array_size(list), 1);
	ck_assert_str_eq(jstr(json_array_get(list, 0), "node"), "n1");
	ck_assert_msg(strstr(jstr(json_array_get(list, 0), "health_reason"), "unhealthy"), "reason %s",
		      jstr(json_array_get(list, 0), "health_reason"));
	json_decref(f);

	/* seven healthy chips: a 7-chip job gets exactly them */
	long long seven = submit(&d, "seven", NPU, 7);
	json_t *job = get_job(&d, seven);
	ck_assert_str_eq(jstr(job, "state"), "placed");
	json_t *devs = json_object_get(json_array_get(json_object_get(job, "placement"), 0), "devices");
	ck_assert_int_eq(json_array_size(devs), 7);
	json_t *v;
	size_t i;
	json_array_foreach(devs, i, v)
		ck_assert_int_ne(json_integer_value(v), 3);
	json_decref(job);
	/* the failed chip is free but not placeable; it stays failed while the exporter says so */
	long long one = submit(&d, "one", NPU, 1);
	unsigned hits = ex_hits("/n1");
	while (ex_hits("/n1") < hits + 3)
		td_sleep_ms(50);
	job = get_job(&d, one);
	ck_assert_str_eq(jstr(job, "state"), "pending");
	json_decref(job);
	ck_assert_int_eq(count_events(&d, "device.ok", NULL), 0);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

START_TEST(a_node_whose_exporter_fails_goes_down_and_comes_back_on_the_next_good_scrape)
{
	struct td_daemon d = {0};
	struct server s = {0}, alone = {0};
	server_start(&s, 0);
	server_start(&alone, 0);
	static const struct {
		const char *name;
		enum behaviour b;   /* B_DCGM: the "refused" node, on its own server */
		const char *error;  /* in scrape_error */
	} fails[] = {
		{"f500", B_500, "HTTP 500"},
		{"fhang", B_HANG, ""},
		{"frefused", B_DCGM, ""},
		{"fgarbage", B_GARBAGE, "no device series"},
		{"fjunk", B_NOT_HTTP, ""},
	};
	enum { NF = sizeof(fails) / sizeof(fails[0]) };
	struct tnode nodes[NF + 1];
	char paths[NF][16];
	for (int i = 0; i < NF; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/%s", fails[i].name);
		ex_dcgm(paths[i], 0);
		nodes[i] = (struct tnode){fails[i].name, "rack-g", H100, 1500,
					  fails[i].b == B_DCGM ? &alone : &s, paths[i]};
	}
	nodes[NF] = (struct tnode){"quiet", "rack-n", NPU, 1200, NULL, NULL};
	start(&d, false);
	import_fleet(&d, nodes, NF + 1, 0);
	const char *measured[NF + 1] = {0};
	for (int i = 0; i < NF; i++)
		measured[i] = fails[i].name;
	wait_measured(&d, measured, 5000);
	/* one whole-node training job on each */
	long long jobs[NF];
	char placed_on[NF][16];
	for (int i = 0; i < NF; i++) {
		char name[16];
		snprintf(name, sizeof(name), "j%d", i);
		jobs[i] = submit(&d, name, H100, 8);
		json_t *j = get_job(&d, jobs[i]);
		ck_assert_str_eq(jstr(j, "state"), "placed");
		snprintf(placed_on[i], sizeof(placed_on[i]), "%s", job_node(j));
		json_decref(j);
	}

	for (int i = 0; i < NF; i++) {
		if (fails[i].b == B_DCGM)
			server_stop(&alone);
		else
			ex_fail(paths[i], fails[i].b);
	}
	for (int i = 0; i < NF; i++) {
		json_decref(wait_event(&d, "node.down", fails[i].name, 0, NULL, 8000));
		json_t *n = get(&d, "/v1/nodes/%s", fails[i].name);
		ck_assert_str_eq(jstr(n, "state"), "down");
		ck_assert_msg(json_is_string(json_object_get(n, "scrape_error")) &&
			      strstr(jstr(n, "scrape_error"), fails[i].error),
			      "%s: scrape_error %s", fails[i].name, jstr(n, "scrape_error"));
		ck_assert_int_ge(json_integer_value(json_object_get(n, "scrape_failures")), 2);
		fprintf(stderr, "%s: down, scrape_error \"%s\"\n", fails[i].name,
			jstr(n, "scrape_error"));
		json_decref(n);
	}
	/* every job on them went back to pending, with NODE_DOWN naming its node */
	for (int i = 0; i < NF; i++) {
		char needle[128];
		snprintf(needle, sizeof(needle), "NODE_DOWN: node %s", placed_on[i]);
		json_decref(wait_event(&d, "job.requeued", NULL, jobs[i], needle, 2000));
		json_t *j = get_job(&d, jobs[i]);
		ck_assert_str_eq(jstr(j, "state"), "pending");
		json_decref(j);
	}
	/* a node without exporter_url is never marked down */
	json_t *q = get(&d, "/v1/nodes/%s", "quiet");
	ck_assert_str_eq(jstr(q, "state"), "up");
	ck_assert(json_is_null(json_object_get(q, "scraped_at")));
	ck_assert(json_is_null(json_object_get(q, "scrape_error")));
	ck_assert_int_eq(json_integer_value(json_object_get(q, "scrape_failures")), 0);
	json_decref(q);
	ck_assert_int_eq(count_events(&d, "node.down", NULL), NF);

	/* good pages again: each comes back up on its next scrape, and its job is placed */
	for (int i = 0; i < NF; i++) {
		if (fails[i].b == B_DCGM)
			server_start(&alone, alone.port);
		else
			ex_dcgm(paths[i], 0);
	}
	for (int i = 0; i < NF; i++) {
		json_t *n = wait_state(&d, fails[i].name, "up", 4000);
		ck_assert(json_is_null(json_object_get(n, "scrape_error")));
		ck_assert_int_eq(json_integer_value(json_object_get(n, "scrape_failures")), 0);
		json_decref(n);
		json_decref(wait_event(&d, "node.up", fails[i].name, 0, NULL, 1000));
	}
	for (int64_t end = td_now_ms() + 2000;; td_sleep_ms(50)) {
		int placed = 0;
		for (int i = 0; i < NF; i++) {
			json_t *j = get_job(&d, jobs[i]);
			placed += strcmp(jstr(j, "state"), "placed") == 0;
			json_decref(j);
		}
		if (placed == NF)
			break;
		ck_assert_msg(td_now_ms() < end, "%d of %d jobs placed again", placed, NF);
	}
	q = get(&d, "/v1/nodes/%s", "quiet");
	ck_assert_str_eq(jstr(q, "state"), "up");
	json_decref(q);
	td_cleanup(&d);
	servers_end(&s, &alone);
}
END_TEST

START_TEST(a_domain_drawing_more_than_its_budget_raises_over_budget)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_npu("/n1", 10, -1);
	const struct tnode nodes[] = {{"n1", "rack-n", NPU, 1200, &s, "/n1"}};
	start(&d, false);
	import_fleet(&d, nodes, 1, 0);
	/* the tightest budget an import allows: the reserved load (host + 8 idle chips) */
	json_t *rn = get(&d, "/v1/domains/%s", "rack-n");
	long long budget = json_integer_value(json_object_get(rn, "reserved_w")) + 100;
	json_decref(rn);
	import_fleet(&d, nodes, 1, budget);
	const char *const measured[] = {"n1", NULL};
	wait_measured(&d, measured, 5000);
	rn = get(&d, "/v1/domains/%s", "rack-n");
	near(jnum(rn, "measured_w"), 80 + 1200, "rack-n at 10 W a chip");
	ck_assert(json_is_false(json_object_get(rn, "over_budget")));
	json_decref(rn);

	ex_npu("/n1", 300, -1); /* 2,400 W of chips + 1,200 W host: over the budget */
	json_t *e = wait_event(&d, "domain.over_budget", NULL, 0, "\"rack-n\"", 5000);
	json_t *data = json_object_get(e, "data");
	near(jnum(data, "measured_w"), 3600, "over_budget measured_w");
	ck_assert_int_eq(json_integer_value(json_object_get(data, "budget_w")), budget);
	json_decref(e);
	rn = get(&d, "/v1/domains/%s", "rack-n");
	ck_assert(json_is_true(json_object_get(rn, "over_budget")));
	json_decref(rn);
	json_t *site = get(&d, "/v1/domains/%s", "site");
	ck_assert(json_is_false(json_object_get(site, "over_budget")));
	json_decref(site);
	struct td_run r;
	const char *dom_cmd[] = {"domains", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, dom_cmd, &r), 0);
	ck_assert_msg(r.code == 0 && strstr(r.out, "3600!"), "joulectl domains: %s", r.out);
	td_run_free(&r);
	ck_assert_int_eq(count_events(&d, "domain.over_budget", NULL), 1);

	ex_npu("/n1", 10, -1);
	json_decref(wait_event(&d, "domain.under_budget", NULL, 0, "\"rack-n\"", 5000));
	rn = get(&d, "/v1/domains/%s", "rack-n");
	ck_assert(json_is_false(json_object_get(rn, "over_budget")));
	json_decref(rn);
	char *log;
	size_t len;
	ck_assert_int_eq(td_read_file(d.log, &log, &len), 0);
	ck_assert_msg(strstr(log, "over its budget"), "no warning in the log");
	free(log);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Microseconds thread path (/proc/.../schedstat) has spent runnable but waiting for a CPU:
 * time lost to the machine being busy, not to jouled's own work. 0 when unknown. */
static int64_t runqueue_wait_us(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long long run = 0, wait = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return (int64_t)(wait / 1000);
}

START_TEST(the_daemon_answers_within_100ms_while_exporters_hang_drip_and_flood)
{
	struct td_daemon d = {0};
	struct server s = {0};
	server_start(&s, 0);
	ex_dcgm("/good", 0);
	ex_fail("/hang", B_HANG);
	ex_fail("/drip", B_DRIP);
	ex_fail("/huge", B_HUGE);
	const struct tnode nodes[] = {
		{"good", "rack-g", H100, 1500, &s, "/good"},
		{"hang", "rack-g", H100, 1500, &s, "/hang"},
		{"drip", "rack-g", H100, 1500, &s, "/drip"},
		{"huge", "rack-g", H100, 1500, &s, "/huge"},
	};
	start(&d, false);
	import_fleet(&d, nodes, 4, 0);
	/* jouled's loop is its main thread; this test's requests come from this thread */
	char dpath[64], spath[64];
	snprintf(dpath, sizeof(dpath), "/proc/%d/schedstat", (int)d.pid);
	snprintf(spath, sizeof(spath), "/proc/self/task/%d/schedstat", (int)gettid());
	/* GET /v1/health every 10 ms for 4 s (4 scrape rounds) */
	enum { MAX = 1000 };
	static int64_t lat_us[MAX];
	int n = 0, slow = 0, excused = 0;
	double worst_ms = 0;
	for (int64_t end = td_now_ms() + 4000; td_now_ms() < end && n < MAX; n++) {
		struct td_response r = {0};
		int64_t w0 = runqueue_wait_us(dpath) + runqueue_wait_us(spath);
		int64_t a = now_us();
		ck_assert_int_eq(td_http(&d, "GET", "/v1/health", NULL, NULL, &r), 0);
		int64_t b = now_us();
		int64_t starved = runqueue_wait_us(dpath) + runqueue_wait_us(spath) - w0;
		ck_assert_int_eq(r.status, 200);
		td_response_free(&r);
		lat_us[n] = b - a;
		if (lat_us[n] >= 100000) {
			/* jouled is at fault unless waiting for a CPU (other processes on this
			 * machine) explains the excess */
			if (lat_us[n] - starved < 100000)
				excused++;
			else
				slow++;
			fprintf(stderr, "slow GET /v1/health: %.1f ms, of which %.1f ms waiting for a CPU\n",
				lat_us[n] / 1000.0, starved / 1000.0);
			if (lat_us[n] / 1000.0 > worst_ms)
				worst_ms = lat_us[n] / 1000.0;
		}
		td_sleep_ms(10);
	}
	qsort(lat_us, (size_t)n, sizeof(lat_us[0]), cmp_i64);
	fprintf(stderr, "GET /v1/health while exporters hang, drip and flood: %d requests, "
		"p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d over 100 ms only for want of a CPU); "
		"scrapes: hang %u, drip %u, huge %u\n", n,
		lat_us[n / 2] / 1000.0, lat_us[n * 99 / 100] / 1000.0, lat_us[n - 1] / 1000.0,
		excused, ex_hits("/hang"), ex_hits("/drip"), ex_hits("/huge"));
	ck_assert_int_ge(n, 100);
	ck_assert_msg(slow == 0, "%d GET /v1/health took 100 ms or more (worst %.1f ms)", slow,
		      worst_ms);
	ck_assert_msg(excused <= n / 20, "the machine was too busy to measure (%d excused)", excused);
	ck_assert_uint_ge(ex_hits("/hang"), 2);
	ck_assert_uint_ge(ex_hits("/drip"), 2);
	ck_assert_uint_ge(ex_hits("/huge"), 2);
	/* they all failed and went down; the good one is measured and up */
	static const char *const bad[][2] = {{"hang", "timed out"}, {"drip", "timed out"},
					     {"huge", "body over"}};
	for (size_t i = 0; i < 3; i++) {
		json_t *nd = wait_state(&d, bad[i][0], "down", 3000);
		ck_assert_msg(strstr(jstr(nd, "scrape_error"), bad[i][1]), "%s: scrape_error %s",
			      bad[i][0], jstr(nd, "scrape_error"));
		json_decref(nd);
	}
	json_t *g = get(&d, "/v1/nodes/%s", "good");
	ck_assert_str_eq(jstr(g, "state"), "up");
	near(jnum(g, "measured_w"), round(DCGM_SAMPLE_W), "good measured_w");
	json_decref(g);
	td_cleanup(&d);
	servers_end(&s, NULL);
}
END_TEST

static Suite *telemetry_suite(void)
{
	Suite *s = suite_create("telemetry");
	TCase *power = tcase_create("power");
	tcase_set_timeout(power, 30);
	tcase_add_test(power, measured_power_appears_on_the_node_its_rack_and_its_site);
	tcase_add_test(power, a_domain_drawing_more_than_its_budget_raises_over_budget);
	suite_add_tcase(s, power);
	TCase *health = tcase_create("health");
	tcase_set_timeout(health, 30);
	tcase_add_test(health, an_xid_failure_fails_the_device_requeues_its_job_and_clean_scrapes_bring_it_back);
	tcase_add_test(health, an_admin_reset_returns_a_failed_device_at_once_and_nobody_else_may);
	tcase_add_test(health, an_unhealthy_npu_is_left_out_of_new_placements);
	tcase_add_test(health, dcgm_series_map_to_devices_by_uuid_before_the_gpu_index);
	tcase_add_test(health, a_job_that_opts_out_keeps_its_devices_when_one_fails);
	suite_add_tcase(s, health);
	TCase *live = tcase_create("liveness");
	tcase_set_timeout(live, 40);
	tcase_add_test(live, a_node_whose_exporter_fails_goes_down_and_comes_back_on_the_next_good_scrape);
	tcase_add_test(live, the_daemon_answers_within_100ms_while_exporters_hang_drip_and_flood);
	suite_add_tcase(s, live);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(telemetry_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
