/*
 * api — routing, held replies and the once-per-loop-turn queue pass and group commit.
 *
 * Owns: struct api (fleet, jobs, held replies), the route table, the uv_check_t/uv_idle_t.
 * Never: answers a request that changed state before store_commit returned 0; keeps a
 * reply for a connection past the turn it was made in.
 */
#include "hook.h"
#include "internal.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>

#include "place.h"
#include "store.h"

/* ---------------- replies ---------------- */

void api_fail(struct ctx *c, int code)
{
	if (c->err.code == 0)
		err_set(&c->err, code, NULL, "internal error (%d)", code);
	c->status = err_http_status(c->err.code);
	json_decref(c->body);
	c->body = NULL;
}

void api_ok(struct ctx *c, int status, json_t *body)
{
	json_decref(c->body);
	if (!body) {
		err_set(&c->err, -ENOMEM, NULL, "out of memory");
		c->status = 503;
		c->body = NULL;
		return;
	}
	c->status = status;
	c->body = body;
}

static void send_reply(struct api *a, struct http_conn *conn, int route, uint64_t t0, int status,
		       const char *headers, char *body, size_t len)
{
	api_metrics_request(a, route, status, uv_hrtime() - t0);
	http_conn_respond(conn, status, headers && *headers ? headers : NULL, body, len);
}

static char *error_body(int code, const char *field, const char *msg, size_t *len)
{
	struct err e;
	err_set(&e, code, field, "%s", msg);
	return codec_error_body(&e, len);
}

/* ---------------- ETags ---------------- */

/*
 * The strong validator of what a route shows: "<boot>-<version>" (boot tells a restarted
 * daemon's versions apart; version counts commits). Two routes also show what changes
 * without a commit: pending jobs' reasons move with every placement try (the jobs list adds
 * ".t<tries>"), and measured watts and scrape results with every scrape (domains, nodes and
 * devices and capacity add ".s<scrapes>"). Fleet and models depend on committed state alone.
 */
static void etag_format(const struct api *a, int route, char *buf, size_t n)
{
	int k = snprintf(buf, n, "\"%llx-%llu", (unsigned long long)a->boot,
			 (unsigned long long)a->version);
	if (k > 0 && (size_t)k < n && route == API_ROUTE_JOBS)
		k += snprintf(buf + k, n - (size_t)k, ".t%llu",
			      (unsigned long long)a->metrics.placement_tries);
	else if (k > 0 && (size_t)k < n &&
		 (route == API_ROUTE_DOMAINS || route == API_ROUTE_NODES ||
		  route == API_ROUTE_DEVICES || route == API_ROUTE_CAPACITY))
		k += snprintf(buf + k, n - (size_t)k, ".s%llu", (unsigned long long)a->scrapes);
	if (k > 0 && (size_t)k < n)
		snprintf(buf + k, n - (size_t)k, "\"");
}

/* Does an If-None-Match list ("*", or entity tags, W/ allowed: weak comparison) name tag? */
static bool inm_matches(const char *inm, const char *tag)
{
	size_t tl = strlen(tag);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		const char *e = p;
		if (*p == '"') {
			const char *q = strchr(p + 1, '"');
			e = q ? q + 1 : p + strlen(p);
		}
		while (*e && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		if ((size_t)(e - p) == tl && memcmp(p, tag, tl) == 0)
			return true;
		p = e;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

bool api_etag_fresh(const struct ctx *c)
{
	char tag[96];
	if (!c->req->if_none_match || store_batch_open(c->a->store))
		return false;
	etag_format(c->a, c->route, tag, sizeof(tag));
	return inm_matches(c->req->if_none_match, tag);
}

/* A GET collection: its 200 carries an ETag. With no query string there is nothing left to
 * validate, so a current If-None-Match is answered 304 here, before any work; with one, the
 * handler validates it first (and api_handle turns a 200 into the 304). */
static bool not_modified(struct ctx *c)
{
	c->etag = true;
	if (c->q.n == 0 && api_etag_fresh(c)) {
		c->status = 304;
		return true;
	}
	return false;
}

/* ---------------- query strings ---------------- */

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into out (size cap); false on bad escapes or overflow. */
static bool decode_component(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= n)
				return false;
			int h = unhex(s[i + 1]), l = unhex(s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			ch = (char)(h * 16 + l);
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = ch;
	}
	out[o] = '\0';
	return true;
}

static int parse_query(struct ctx *c)
{
	const char *s = c->req->query;
	while (s && *s) {
		const char *amp = strchr(s, '&');
		size_t len = amp ? (size_t)(amp - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		size_t klen = eq ? (size_t)(eq - s) : len;
		if (len > 0) {
			if (c->q.n == API_MAX_QUERY)
				return err_set(&c->err, ERR_MALFORMED, NULL, "too many query parameters");
			if (!decode_component(s, klen, c->q.key[c->q.n], sizeof(c->q.key[0])) ||
			    !decode_component(eq ? eq + 1 : s + len, eq ? len - klen - 1 : 0,
					      c->q.val[c->q.n], sizeof(c->q.val[0])))
				return err_set(&c->err, ERR_MALFORMED, NULL,
					       "query string is malformed or too long");
			c->q.n++;
		}
		s = amp ? amp + 1 : NULL;
	}
	return 0;
}

const char *api_query(const struct ctx *c, const char *key)
{
	for (uint32_t i = 0; i < c->q.n; i++)
		if (strcmp(c->q.key[i], key) == 0)
			return c->q.val[i];
	return NULL;
}

int api_query_check(struct ctx *c, const char *const *allowed)
{
	for (uint32_t i = 0; i < c->q.n; i++) {
		bool ok = false;
		for (const char *const *a = allowed; a && *a && !ok; a++)
			ok = strcmp(*a, c->q.key[i]) == 0;
		if (!ok)
			return err_set(&c->err, ERR_MALFORMED, c->q.key[i], "unknown query parameter");
	}
	return 0;
}

int api_query_uint(struct ctx *c, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = api_query(c, key);
	char *end;
	if (!v)
		return 1;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-' || x < min || x > max)
		return err_set(&c->err, ERR_INVALID, key, "must be an integer between %llu and %llu",
			       (unsigned long long)min, (unsigned long long)max);
	*out = x;
	return 0;
}

/* ---------------- users ---------------- */

const char *api_user_name(struct api *a, uint32_t uid)
{
	static char fallback[16];
	uint32_t idx;
	char key[16];
	snprintf(key, sizeof(key), "%u", uid);
	if (hmap_get_str(&a->user_names, key, &idx))
		return a->names[idx];
	struct passwd pw, *res = NULL;
	char buf[1024];
	const char *name = key;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		name = res->pw_name;
	char *copy = strdup(name);
	char **n = realloc(a->names, (a->nnames + 1) * sizeof(*n));
	if (!copy || !n) {
		free(copy);
		if (n)
			a->names = n;
		snprintf(fallback, sizeof(fallback), "%u", uid);
		return fallback;
	}
	a->names = n;
	a->names[a->nnames] = copy;
	if (hmap_put_str(&a->user_names, key, a->nnames) < 0) {
		free(copy);
		snprintf(fallback, sizeof(fallback), "%u", uid);
		return fallback;
	}
	return a->names[a->nnames++];
}

/* ---------------- persistence glue ---------------- */

int api_sync_node(struct api *a, uint32_t n)
{
	static const char *const ev[] = {"node.up", "node.draining", "node.drained", "node.down"};
	const struct node *nd = &a->fleet.nodes[n];
	if (n >= a->nreported) {
		uint32_t ncap = a->fleet.nnodes + 64;
		uint8_t *r = realloc(a->node_reported, ncap);
		if (!r)
			return -ENOMEM;
		for (uint32_t i = a->nreported; i < ncap; i++)
			r[i] = i < a->fleet.nnodes ? (uint8_t)a->fleet.nodes[i].state : NODE_UP;
		a->node_reported = r;
		a->nreported = ncap;
	}
	if (a->node_reported[n] == nd->state)
		return 0;
	a->node_reported[n] = (uint8_t)nd->state;
	api_event(a, ev[nd->state], 0, nd->name, json_pack("{s:s}", "state",
							    fleet_node_state_name(nd->state)));
	return store_put_node_state(a->store, &a->fleet, n);
}

int api_persist_job(struct api *a, const struct job *j, bool with_placement)
{
	int rc = store_put_job(a->store, &a->fleet, j, with_placement);
	/* node states may have moved (draining → drained on release) */
	for (uint32_t i = 0; rc == 0 && i < j->nplaced; i++)
		rc = api_sync_node(a, j->placement[i].node);
	return rc;
}

void api_requeue(struct api *a, struct job *j, const char *reason)
{
	uint32_t n = j->nplaced;
	uint32_t *nodes = malloc((n + 1) * sizeof(*nodes));
	if (!nodes)
		return; /* stays placed; the next tick tries again */
	for (uint32_t k = 0; k < n; k++)
		nodes[k] = j->placement[k].node;
	if (place_requeue(&a->fleet, &a->jobs, j, reason) == 0) {
		api_event(a, "job.requeued", j->id, NULL,
			  json_pack("{s:s, s:I}", "reason", reason, "requeues", (json_int_t)j->requeues));
		api_persist_job(a, j, true);
		for (uint32_t k = 0; k < n; k++)
			api_sync_node(a, nodes[k]); /* a draining node may have emptied */
	}
	free(nodes);
}

static json_t *placement_summary(const struct api *a, const struct job *j)
{
	json_t *nodes = json_array();
	for (uint32_t i = 0; nodes && i < j->nplaced; i++)
		json_array_append_new(nodes, json_string(a->fleet.nodes[j->placement[i].node].name));
	return json_pack("{s:o, s:s, s:I, s:I}", "nodes", nodes, "model",
			 j->nplaced ? a->fleet.models[j->placement[0].model].name : "", "cap_w",
			 (json_int_t)(j->nplaced ? j->placement[0].cap_w : 0), "workers",
			 (json_int_t)j->nplaced);
}

static int on_placed(void *ud, struct job *j)
{
	struct api *a = ud;
	if (j->state == JOB_PLACED && j->placed_at)
		api_metrics_placed(a, j->placed_at - j->submitted_at);
	if (j->state == JOB_PENDING)
		api_event(a, "job.requeued", j->id, NULL,
			  json_pack("{s:s, s:I}", "reason", j->reason ? j->reason : "",
				    "requeues", (json_int_t)j->requeues));
	else
		api_event(a, "job.placed", j->id, NULL, placement_summary(a, j));
	return api_persist_job(a, j, true);
}

/* ---------------- routing ---------------- */

static void health(struct ctx *c)
{
	struct api *a = c->a;
	uint64_t njobs = a->jobs.next_id - 1;
	json_t *o = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "status", "ok", "version",
			      JOULE_VERSION, "leader", store_is_leader(a->store), "jobs",
			      (json_int_t)njobs, "pending", (json_int_t)a->jobs.npending, "nodes",
			      (json_int_t)a->fleet.nnodes, "devices", (json_int_t)a->fleet.ndevices,
			      "models", (json_int_t)a->fleet.nmodels);
	uint64_t dn, fn, backlog;
	uint32_t failing;
	api_webhooks_totals(a, &dn, &fn, &backlog, &failing);
	json_object_set_new(o, "webhooks", json_integer(hook_count(a->hook)));
	json_object_set_new(o, "webhooks_failing", json_integer(failing));
	json_object_set_new(o, "webhook_backlog", json_integer((json_int_t)backlog));
	api_ok(c, 200, o);
}

static void method_not_allowed(struct ctx *c, const char *allow)
{
	snprintf(c->headers, sizeof(c->headers), "Allow: %s\r\n", allow);
	err_set(&c->err, ERR_METHOD, NULL, "%s is not allowed here; allowed: %s",
		c->req->method_name, allow);
	api_fail(c, ERR_METHOD);
}

/* Split "/v1/a/b/c" into at most 4 segments; false when it does not start with /v1. */
static bool split_path(const char *path, char seg[4][128], int *n)
{
	*n = 0;
	if (strncmp(path, "/v1/", 4) != 0)
		return false;
	const char *s = path + 4;
	while (*s) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		if (len == 0 || len >= 128 || *n == 4)
			return false;
		memcpy(seg[*n], s, len);
		seg[*n][len] = '\0';
		(*n)++;
		s += len;
		if (*s == '/')
			s++;
	}
	return *n > 0;
}

static void route(struct ctx *c)
{
	const int m = c->req->method;
	char seg[4][128];
	int n;

	if (parse_query(c) < 0) {
		api_fail(c, c->err.code);
		return;
	}
	if (strcmp(c->req->path, "/metrics") == 0) {
		c->route = API_ROUTE_METRICS;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return api_metrics_get(c);
	}
	if (!split_path(c->req->path, seg, &n))
		goto not_found;
	if (n == 1 && strcmp(seg[0], "health") == 0) {
		c->route = API_ROUTE_HEALTH;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return health(c);
	}
	if (n == 1 && strcmp(seg[0], "fleet") == 0) {
		c->route = API_ROUTE_FLEET;
		if (m == HTTP_GET)
			return not_modified(c) ? (void)0 : api_fleet_get(c);
		if (m == HTTP_POST)
			return api_fleet_post(c);
		return method_not_allowed(c, "GET, POST");
	}
	if (n == 1 && strcmp(seg[0], "models") == 0) {
		c->route = API_ROUTE_MODELS;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return not_modified(c) ? (void)0 : api_models_get(c);
	}
	if (n <= 2 && strcmp(seg[0], "domains") == 0) {
		c->route = n == 2 ? API_ROUTE_DOMAIN : API_ROUTE_DOMAINS;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		if (n == 1 && not_modified(c))
			return;
		return api_domains_get(c, n == 2 ? seg[1] : NULL);
	}
	if (n <= 2 && strcmp(seg[0], "nodes") == 0) {
		c->route = n == 2 ? API_ROUTE_NODE : API_ROUTE_NODES;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		if (n == 1 && not_modified(c))
			return;
		return api_nodes_get(c, n == 2 ? seg[1] : NULL);
	}
	if (n == 3 && strcmp(seg[0], "nodes") == 0 &&
	    (strcmp(seg[2], "drain") == 0 || strcmp(seg[2], "resume") == 0)) {
		c->route = API_ROUTE_NODE_ACTION;
		if (m != HTTP_POST)
			return method_not_allowed(c, "POST");
		return api_node_action(c, seg[1], seg[2]);
	}
	if (n == 4 && strcmp(seg[0], "devices") == 0 &&
	    (strcmp(seg[3], "reset") == 0 || strcmp(seg[3], "fail") == 0)) {
		c->route = API_ROUTE_DEVICE_RESET;
		if (m != HTTP_POST)
			return method_not_allowed(c, "POST");
		return api_device_action(c, seg[1], seg[2], seg[3]);
	}
	if (n == 1 && strcmp(seg[0], "devices") == 0) {
		c->route = API_ROUTE_DEVICES;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return not_modified(c) ? (void)0 : api_devices_get(c);
	}
	if (n == 1 && strcmp(seg[0], "simulate") == 0) {
		c->route = API_ROUTE_SIMULATE;
		if (m != HTTP_POST)
			return method_not_allowed(c, "POST");
		return api_simulate(c);
	}
	if (n == 1 && strcmp(seg[0], "webhooks") == 0) {
		c->route = API_ROUTE_WEBHOOKS;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return api_webhooks_get(c);
	}
	if (n == 1 && strcmp(seg[0], "capacity") == 0) {
		c->route = API_ROUTE_CAPACITY;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return not_modified(c) ? (void)0 : api_capacity_get(c);
	}
	if (n == 1 && strcmp(seg[0], "jobs") == 0) {
		c->route = API_ROUTE_JOBS;
		if (m == HTTP_GET)
			return not_modified(c) ? (void)0 : api_jobs_get(c, NULL);
		if (m == HTTP_POST)
			return api_jobs_post(c);
		return method_not_allowed(c, "GET, POST");
	}
	if (n == 1 && strcmp(seg[0], "events") == 0) {
		c->route = API_ROUTE_EVENTS;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return api_events_get(c, c->conn);
	}
	if (n == 3 && strcmp(seg[0], "jobs") == 0 && strcmp(seg[2], "status") == 0) {
		c->route = API_ROUTE_JOB_STATUS;
		if (m != HTTP_POST)
			return method_not_allowed(c, "POST");
		return api_jobs_status(c, seg[1]);
	}
	if (n == 3 && strcmp(seg[0], "jobs") == 0 && strcmp(seg[2], "explain") == 0) {
		c->route = API_ROUTE_EXPLAIN;
		if (m != HTTP_GET)
			return method_not_allowed(c, "GET");
		return api_jobs_explain(c, seg[1]);
	}
	if (n == 2 && strcmp(seg[0], "jobs") == 0) {
		c->route = API_ROUTE_JOB;
		if (m == HTTP_GET)
			return api_jobs_get(c, seg[1]);
		if (m == HTTP_DELETE)
			return api_jobs_delete(c, seg[1]);
		return method_not_allowed(c, "GET, DELETE");
	}
not_found:
	err_set(&c->err, ERR_NOT_FOUND, NULL, "no route %s %s", c->req->method_name, c->req->path);
	api_fail(c, ERR_NOT_FOUND);
}

static int hold(struct api *a, struct http_conn *conn, int status, const char *headers,
		char *body, size_t len, uint64_t job, int route, uint64_t t0)
{
	if (a->nheld == a->held_cap) {
		uint32_t ncap = a->held_cap ? a->held_cap * 2 : 64;
		struct held_reply *h = realloc(a->held, ncap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		a->held = h;
		a->held_cap = ncap;
	}
	struct held_reply *h = &a->held[a->nheld++];
	h->conn = conn;
	h->route = route;
	h->t0 = t0;
	h->job = job;
	h->status = status;
	h->body = body;
	h->len = len;
	snprintf(h->headers, sizeof(h->headers), "%s", headers ? headers : "");
	return 0;
}

void api_handle(void *ud, struct http_conn *conn, const struct http_request *req)
{
	struct api *a = ud;
	struct ctx c = {.a = a, .req = req, .now = (int64_t)time(NULL), .conn = conn};
	uint64_t t0 = uv_hrtime();
	char *body = NULL;
	size_t len = 0;

	route(&c);
	if (c.deferred)
		return; /* a long poll: answered when events arrive or its timer fires */
	if (c.text) {
		body = c.text;
		len = c.text_len;
	} else if (c.body) {
		body = codec_dump(c.body, &len);
		c.body = NULL;
		if (!body) {
			c.status = 503;
			err_set(&c.err, -ENOMEM, NULL, "out of memory");
		}
	}
	if (c.status == 0 || c.status >= 400) {
		free(body);
		if (c.err.code == 0)
			err_set(&c.err, -EIO, NULL, "internal error");
		c.status = err_http_status(c.err.code);
		body = codec_error_body(&c.err, &len);
	}
	/* A GET collection answered from committed memory carries the state's ETag; one the
	 * client already holds gets 304 and no body. */
	if (c.etag && (c.status == 200 || c.status == 304) && !store_batch_open(a->store)) {
		char tag[96];
		size_t hl = strlen(c.headers);
		if (c.status == 200 && api_etag_fresh(&c)) {
			free(body);
			body = NULL;
			len = 0;
			c.status = 304;
		}
		etag_format(a, c.route, tag, sizeof(tag));
		snprintf(c.headers + hl, sizeof(c.headers) - hl, "ETag: %s\r\n", tag);
	}
	/* While a batch is open every reply waits for its commit: it may show that batch. */
	if (store_batch_open(a->store) &&
	    hold(a, conn, c.status, c.headers, body, len, c.status < 400 ? c.render_job : 0,
		 c.route, t0) == 0)
		return;
	if (store_batch_open(a->store)) {
		/* could not hold: refuse rather than acknowledge before the commit */
		free(body);
		body = error_body(ERR_UNAVAILABLE, NULL, "out of memory", &len);
		c.status = 503;
	}
	send_reply(a, conn, c.route, t0, c.status, c.headers, body, len);
}

/* ---------------- the loop turn: pass, commit, release ---------------- */

static int reload(struct api *a, struct err *e)
{
	fleet_free(&a->fleet);
	jobs_free(&a->jobs);
	fleet_init(&a->fleet);
	jobs_init(&a->jobs);
	a->passed_epoch = UINT64_MAX;
	a->version++;               /* memory is rebuilt: no earlier ETag may match */
	api_capacity_cache_clear(a);
	int rc = store_load(a->store, &a->fleet, &a->jobs, e);
	if (rc == 0)
		rc = api_events_load(a, e);
	if (rc == 0)
		rc = api_telemetry_sync(a); /* node indexes may have moved */
	if (rc == 0)
		api_webhooks_reload(a);
	free(a->node_reported);
	a->node_reported = NULL;
	a->nreported = 0;
	return rc;
}

static void commit_and_release(struct api *a)
{
	struct err e = {0};
	uint64_t t0 = uv_hrtime();
	bool had_batch = store_batch_open(a->store);
	int rc = store_commit(a->store, &e);
	if (had_batch)
		api_metrics_commit(a, uv_hrtime() - t0, a->nheld);

	if (rc == 0) {
		a->commits++;
		if (had_batch)
			a->version++;   /* the committed state moved: new ETags */
	} else {
		a->commit_failures++;
		fprintf(stderr, "jouled: commit failed, reloading state: %s\n", e.message);
		struct err le = {0};
		if (reload(a, &le) < 0) {
			fprintf(stderr, "jouled: cannot reload state after a failed commit: %s\n",
				le.message);
			abort(); /* memory no longer matches anything durable */
		}
	}
	char why[sizeof(e.message) + 64];
	if (rc < 0)   /* "database or disk is full", "attempt to write a readonly database" */
		snprintf(why, sizeof(why), "the database could not commit (%.200s); nothing was "
			 "changed", e.message);
	for (uint32_t i = 0; i < a->nheld; i++) {
		struct held_reply *h = &a->held[i];
		if (rc < 0) {
			free(h->body);
			h->body = error_body(ERR_UNAVAILABLE, NULL, why, &h->len);
			h->status = 503;
			h->headers[0] = '\0';
		} else if (h->job) {
			const struct job *j = jobs_get(&a->jobs, h->job);
			char *b = j ? codec_dump(codec_job_encode(&a->fleet, j), &h->len) : NULL;
			if (b) {
				free(h->body);
				h->body = b;
			}
		}
		send_reply(a, h->conn, h->route, h->t0, h->status, h->headers, h->body, h->len);
	}
	a->nheld = 0;
	if (rc == 0)
		api_events_wake(a);
	if (rc == 0 && a->hook)
		api_webhooks_committed(a, true);
}

static void run_pass(struct api *a)
{
	if (a->passed_epoch == a->fleet.epoch && !a->pass_more && !a->pass_needed)
		return;
	a->pass_needed = false;
	uint64_t epoch = a->fleet.epoch, t0 = uv_hrtime();
	int tries = place_pass(&a->fleet, &a->jobs, (int64_t)time(NULL), a->opt.pass_max_tries,
			       on_placed, a);
	if (tries >= 0)
		api_metrics_pass(a, uv_hrtime() - t0, (uint32_t)tries);
	if (tries < 0) {
		fprintf(stderr, "jouled: queue pass failed (%d)\n", tries);
		a->pass_more = true;
		return;
	}
	a->pass_more = (uint32_t)tries >= a->opt.pass_max_tries;
	if (!a->pass_more)
		a->passed_epoch = epoch;
}

static void on_idle(uv_idle_t *h) { (void)h; }

static void on_check(uv_check_t *h)
{
	struct api *a = h->data;
	run_pass(a);
	if (store_batch_open(a->store) || a->nheld)
		commit_and_release(a);
	if (a->pass_more && !uv_is_active((uv_handle_t *)&a->idle))
		uv_idle_start(&a->idle, on_idle);
	else if (!a->pass_more && uv_is_active((uv_handle_t *)&a->idle))
		uv_idle_stop(&a->idle);
}

void api_flush(struct api *a)
{
	on_check(&a->check);
}

void api_stop_waiting(struct api *a)
{
	a->closing = true;
	api_events_release_all(a);
}

/* Once a second: retention, the placed-but-never-running timeout, demo mode. Changes join
 * a batch that this loop turn's check commits. Active jobs are walked from the end, so a
 * job leaving the set (swap-remove) never skips one. */
static void on_tick(uv_timer_t *t)
{
	struct api *a = t->data;
	int64_t now = (int64_t)time(NULL);
	struct err e = {0};
	char reason[96];

	api_events_trim(a, now);
	api_webhooks_tick(a);
	if (!a->opt.demo_finish && !a->opt.placed_timeout_s)
		return; /* nothing below applies: no walk over the active jobs */
	for (uint32_t i = a->jobs.nactive; i-- > 0;) {
		struct job *j = a->jobs.active[i];
		if (a->opt.demo_finish) {
			enum job_state to = JOB_PENDING;
			if (j->state == JOB_PLACED && now - j->placed_at >= 1)
				to = JOB_RUNNING;
			else if (j->state == JOB_RUNNING && j->req.duration_s > 0 &&
				 now >= j->placed_at + j->req.duration_s)
				to = JOB_SUCCEEDED;
			if (to != JOB_PENDING && place_report(&a->fleet, &a->jobs, j, to, now, &e) == 0) {
				api_event(a, to == JOB_RUNNING ? "job.running" : "job.succeeded", j->id,
					  NULL, json_pack("{s:s}", "message", "demo mode"));
				api_persist_job(a, j, false);
			}
			continue;
		}
		if (a->opt.placed_timeout_s && j->state == JOB_PLACED &&
		    now - j->placed_at > (int64_t)a->opt.placed_timeout_s) {
			snprintf(reason, sizeof(reason), "PLACED_TIMEOUT: not reported running within %llu s",
				 (unsigned long long)a->opt.placed_timeout_s);
			api_requeue(a, j, reason);
		}
	}
}

/* ---------------- life cycle ---------------- */

int api_new(uv_loop_t *loop, struct store *store, const struct api_options *opt,
	    struct api **out, struct err *e)
{
	struct api *a = calloc(1, sizeof(*a));
	int rc;
	if (!a)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	a->loop = loop;
	a->store = store;
	a->opt.admin_gid = -1;
	if (opt)
		a->opt = *opt;
	a->opt.pass_max_tries = opt && opt->pass_max_tries ? opt->pass_max_tries : 64;
	if (!a->opt.events_max)
		a->opt.events_max = 100000;
	if (!a->opt.down_after)
		a->opt.down_after = 3;
	if (!a->opt.recover_after)
		a->opt.recover_after = 3;
	if (!a->opt.stale_s)
		a->opt.stale_s = 120;
	if (!opt)
		a->opt.events_max_age_s = 7 * 86400; /* callers without options: the defaults */
	a->passed_epoch = UINT64_MAX;
	a->version = 1;
	a->boot = (uint64_t)time(NULL) << 20 ^ (uv_hrtime() & 0xfffff);
	fleet_init(&a->fleet);
	jobs_init(&a->jobs);
	hmap_init_str(&a->user_names);
	hmap_init_u64(&a->admin_by_uid);
	if ((rc = store_load(store, &a->fleet, &a->jobs, e)) < 0)
		goto fail;
	if ((rc = api_events_load(a, e)) < 0)
		goto fail;
	/* the dispatcher always runs: nodes may name agent URLs at any import */
	if ((rc = api_webhooks_start(a, e)) < 0) {
		a->hook = NULL;   /* the process exits: its handles are not worth closing */
		goto fail;
	}
	uv_check_init(loop, &a->check);
	uv_idle_init(loop, &a->idle);
	uv_timer_init(loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, on_tick, 1000, 1000);
	struct err te = {0};
	if (!a->opt.no_telemetry && api_telemetry_start(a, &te) < 0)
		fprintf(stderr, "jouled: telemetry is off: %s\n", te.message); /* serve anyway */
	a->check.data = a;
	a->idle.data = a;
	uv_check_start(&a->check, on_check);
	/* a first pass at start-up: capacity may have changed while we were down */
	uv_idle_start(&a->idle, on_idle);
	a->pass_more = true;
	*out = a;
	return 0;
fail:
	fleet_free(&a->fleet);
	jobs_free(&a->jobs);
	api_events_clear(a);
	hmap_free(&a->user_names);
	hmap_free(&a->admin_by_uid);
	free(a);
	return rc;
}

void api_close(struct api *a)
{
	a->closing = true;
	uv_check_stop(&a->check);
	uv_idle_stop(&a->idle);
	uv_close((uv_handle_t *)&a->check, NULL);
	uv_close((uv_handle_t *)&a->idle, NULL);
	uv_timer_stop(&a->tick);
	uv_close((uv_handle_t *)&a->tick, NULL);
	api_telemetry_close(a);
	api_webhooks_close(a);
	api_simulate_cancel_all(a);
}

void api_free(struct api *a)
{
	if (!a)
		return;
	for (uint32_t i = 0; i < a->nheld; i++)
		free(a->held[i].body);
	free(a->held);
	api_capacity_cache_clear(a);
	fleet_free(&a->fleet);
	jobs_free(&a->jobs);
	api_events_clear(a);
	api_telemetry_free(a);
	api_webhooks_free(a);
	free(a->node_reported);
	hmap_free(&a->user_names);
	hmap_free(&a->admin_by_uid);
	for (uint32_t i = 0; i < a->nnames; i++)
		free(a->names[i]);
	free(a->names);
	free(a);
}

void api_counts(const struct api *a, uint64_t *jobs, uint32_t *nodes, uint32_t *devices)
{
	*jobs = a->jobs.next_id - 1;
	*nodes = a->fleet.nnodes;
	*devices = a->fleet.ndevices;
}
