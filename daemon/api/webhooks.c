/*
 * api/webhooks — glue between the event log and the webhook dispatcher (daemon/net/hook.c):
 * which endpoints an event goes to, its outbox rows, and GET /v1/webhooks.
 *
 * Owns: the dispatcher, the list of this batch's outbox rows waiting for their commit.
 * Never: hands the dispatcher an event before its batch committed (rows wait in
 * a->hook_pending; refill reads only seq <= the last committed event), deletes an outbox
 * row before its endpoint acknowledged it.
 *
 * Endpoints of an event: every global webhook (--webhook); the agent_url of the event's
 * node; the agent_url of every node the event's job is placed on (or, for a job just sent
 * back to pending, was placed on). Ordering key: the job id, else the node's name hashed
 * with the top bit set, else 0 (no order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "hook.h"
#include "internal.h"
#include "log.h"
#include "store.h"

struct api_hook_row {
	uint32_t ep;
	uint64_t seq, key;
	char type[32];
	char *body;
	size_t len;
};

static void delivered(void *ud, const char *url, uint64_t seq)
{
	struct api *a = ud;
	store_del_outbox(a->store, url, seq);   /* a failed batch redelivers: at least once */
}

struct refill_ctx {
	struct api *a;
	uint32_t ep;
};

static int refill_row(void *ud, uint64_t seq, uint64_t key, const char *type, const char *body,
		      size_t len)
{
	struct refill_ctx *r = ud;
	int rc = hook_push_loaded(r->a->hook, r->ep, seq, key, type, body, len);
	return rc == -ENOSPC ? 1 : rc;   /* 1 stops: the window is full */
}

static int refill(void *ud, uint32_t ep, const char *url, uint64_t after_seq, uint32_t room)
{
	struct api *a = ud;
	struct refill_ctx r = {a, ep};
	return store_load_outbox(a->store, url, after_seq, a->hook_committed_seq, room, refill_row, &r);
}

static bool is_global(const struct api *a, const char *url)
{
	for (uint32_t i = 0; i < a->opt.nwebhooks; i++)
		if (strcmp(a->opt.webhooks[i], url) == 0)
			return true;
	return false;
}

struct backlog_ctx {
	struct api *a;
	struct hmap agents;          /* the nodes' agent URLs, built once per read */
};

/* An endpoint the outbox names: kind global unless a node names it as its agent (a
 * webhook since removed from the configuration still gets what it was owed). */
static int add_backlog(void *ud, const char *url, uint64_t rows)
{
	struct backlog_ctx *b = ud;
	struct api *a = b->a;
	uint32_t ep;
	bool agent = !is_global(a, url) && hmap_get_str(&b->agents, url, NULL);
	int rc = hook_endpoint(a->hook, url, agent, &ep);
	if (rc < 0) {
		log_warning("webhook %s: %llu undelivered events cannot be sent (%s)", url,
			    (unsigned long long)rows, strerror(-rc));
		return 0;
	}
	hook_add_backlog(a->hook, ep, rows);
	return 0;
}

/* Every endpoint the outbox holds rows for, with its backlog. -ENOMEM / -EIO. */
static int read_outbox(struct api *a)
{
	struct backlog_ctx b = {.a = a};
	int rc = 0;
	hmap_init_str(&b.agents);
	for (uint32_t n = 0; n < a->fleet.nnodes && rc == 0; n++) {
		const char *u = a->fleet.nodes[n].agent_url;
		if (u && *u && !hmap_get_str(&b.agents, u, NULL))
			rc = hmap_put_str(&b.agents, u, n);
	}
	if (rc == 0)
		rc = store_outbox_endpoints(a->store, add_backlog, &b) < 0 ? -EIO : 0;
	hmap_free(&b.agents);
	return rc;
}

int api_webhooks_start(struct api *a, struct err *e)
{
	struct hook_options o;
	hook_options_default(&o);
	if (a->opt.webhook_timeout_ms)
		o.timeout_ms = a->opt.webhook_timeout_ms;
	if (a->opt.webhook_concurrency)
		o.concurrency = a->opt.webhook_concurrency;
	if (a->opt.webhook_retry_min_ms)
		o.retry_min_ms = a->opt.webhook_retry_min_ms;
	if (a->opt.webhook_retry_max_ms)
		o.retry_max_ms = a->opt.webhook_retry_max_ms;
	int rc = hook_new(a->loop, &o, (uint32_t)time(NULL), delivered, refill, a, &a->hook);
	if (rc < 0)
		return err_set(e, rc, NULL, "cannot start the webhook dispatcher");
	for (uint32_t i = 0; i < a->opt.nwebhooks; i++) {
		uint32_t ep;
		if ((rc = hook_endpoint(a->hook, a->opt.webhooks[i], false, &ep)) < 0)
			return err_set(e, rc, "webhook", "webhook %s: not an http(s) URL of at most "
				       "%d bytes", a->opt.webhooks[i], HOOK_URL_MAX);
	}
	a->hook_committed_seq = a->ev_next_seq - 1;
	return (rc = read_outbox(a)) < 0 ? err_set(e, rc, NULL, "cannot read the webhook outbox") : 0;
}

static uint64_t order_key(uint64_t job, const char *node)
{
	if (job)
		return job;
	if (!node)
		return 0;
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
	for (const char *p = node; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h | (1ULL << 63);
}

static void add_row(struct api *a, const char *url, bool agent, uint64_t seq, uint64_t key,
		    const char *type, const char *body, size_t len)
{
	uint32_t ep;
	int rc = hook_endpoint(a->hook, url, agent, &ep);
	if (rc < 0) {
		log_warning("webhook %s: event %llu not sent (%s)", url, (unsigned long long)seq,
			    rc == -ENOSPC ? "too many endpoints" : strerror(-rc));
		return;
	}
	/* one row per endpoint and event: rows are appended in seq order, so only this
	 * event's own rows (at the end) can repeat the endpoint */
	for (uint32_t i = a->nhook_pending; i-- > 0 && a->hook_pending[i].seq == seq;)
		if (a->hook_pending[i].ep == ep)
			return;
	if (a->nhook_pending == a->hook_pending_cap) {
		uint32_t nc = a->hook_pending_cap ? a->hook_pending_cap * 2 : 64;
		struct api_hook_row *n = realloc(a->hook_pending, nc * sizeof(*n));
		if (!n)
			goto nomem;
		a->hook_pending = n;
		a->hook_pending_cap = nc;
	}
	struct api_hook_row *r = &a->hook_pending[a->nhook_pending];
	r->body = malloc(len + 1);
	if (!r->body)
		goto nomem;
	memcpy(r->body, body, len + 1);
	r->len = len;
	r->ep = ep;
	r->seq = seq;
	r->key = key;
	snprintf(r->type, sizeof(r->type), "%s", type);
	a->nhook_pending++;
	store_put_outbox(a->store, url, seq, key, type, body);
	return;
nomem:
	/* the event itself must not be acknowledged without its outbox row; the dispatcher
	 * reads it back from there (refill reads only committed seqs) */
	store_put_outbox(a->store, url, seq, key, type, body);
	hook_add_backlog(a->hook, ep, 1);
	log_warning("webhook %s: out of memory holding event %llu (the outbox keeps it)", url,
		    (unsigned long long)seq);
}

/* The agent URLs of an event: its node's, and those of the nodes its job holds (or held
 * until it was just sent back). Calls fn for each (repeats possible); returns how many. */
static uint32_t each_agent(struct api *a, uint64_t job, const char *node,
			   void (*fn)(struct api *a, const char *url, void *arg), void *arg)
{
	const struct fleet *f = &a->fleet;
	uint32_t count = 0;
	uint32_t n = node ? fleet_node_find(f, node) : FLEET_NONE;
	if (n != FLEET_NONE && f->nodes[n].agent_url && *f->nodes[n].agent_url) {
		count++;
		if (fn)
			fn(a, f->nodes[n].agent_url, arg);
	}
	const struct job *j = job ? jobs_get(&a->jobs, job) : NULL;
	uint32_t held = !j ? 0 : j->nplaced ? j->nplaced
			   : j->state == JOB_PENDING ? j->last_nplaced : 0;
	for (uint32_t w = 0; j && j->placement && w < held; w++) {
		const struct node *nd = &f->nodes[j->placement[w].node];
		if (nd->agent_url && *nd->agent_url) {
			count++;
			if (fn)
				fn(a, nd->agent_url, arg);
		}
	}
	return count;
}

bool api_webhooks_wanted(struct api *a, uint64_t job, const char *node)
{
	return a->hook && (a->opt.nwebhooks || each_agent(a, job, node, NULL, NULL));
}

struct event_ref {
	uint64_t seq, key;
	const char *type, *body;
	size_t len;
};

static void agent_row(struct api *a, const char *url, void *arg)
{
	const struct event_ref *r = arg;
	add_row(a, url, true, r->seq, r->key, r->type, r->body, r->len);
}

void api_webhooks_event(struct api *a, uint64_t seq, const char *type, uint64_t job,
			const char *node, const char *body, size_t len)
{
	struct event_ref r = {seq, order_key(job, node), type, body, len};
	for (uint32_t i = 0; i < a->opt.nwebhooks; i++)
		add_row(a, a->opt.webhooks[i], false, seq, r.key, type, body, len);
	each_agent(a, job, node, agent_row, &r);
}

void api_webhooks_committed(struct api *a, bool ok)
{
	for (uint32_t i = 0; i < a->nhook_pending; i++) {
		struct api_hook_row *r = &a->hook_pending[i];
		if (ok)
			hook_push(a->hook, r->ep, r->seq, r->key, r->type, r->body, r->len);
		free(r->body);
	}
	a->nhook_pending = 0;
	if (ok)
		a->hook_committed_seq = a->ev_next_seq - 1;
}

void api_webhooks_reload(struct api *a)
{
	if (!a->hook)
		return;
	api_webhooks_committed(a, false);
	hook_reset(a->hook);
	a->hook_committed_seq = a->ev_next_seq - 1;
	if (read_outbox(a) < 0)
		log_warning("cannot read the webhook outbox after a reload");
}

static void hook_closed(void *ud)
{
	(void)ud;
}

void api_webhooks_close(struct api *a)
{
	if (a->hook)
		hook_close(a->hook, hook_closed, a);
}

void api_webhooks_free(struct api *a)
{
	api_webhooks_committed(a, false);
	free(a->hook_pending);
	a->hook_pending = NULL;
	free(a->hook_failing);
	a->hook_failing = NULL;
	a->nhook_failing = 0;
	hook_free(a->hook);
	a->hook = NULL;
}

/* One log line when an endpoint starts failing and one when it delivers again: what an
 * operator needs to hear, without a line per retry. */
void api_webhooks_tick(struct api *a)
{
	uint32_t n = hook_count(a->hook);
	if (n > a->nhook_failing) {
		uint8_t *p = realloc(a->hook_failing, n);
		if (!p)
			return;
		memset(p + a->nhook_failing, 0, n - a->nhook_failing);
		a->hook_failing = p;
		a->nhook_failing = n;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct hook_ep_stats s;
		hook_stats(a->hook, i, &s);
		if (s.failing && !a->hook_failing[i])
			log_warning("webhook %s is failing (%u POSTs in a row: %s); %llu events wait "
				    "in the outbox", s.url, s.failures_in_row,
				    s.last_error ? s.last_error : "?", (unsigned long long)s.backlog);
		else if (!s.failing && a->hook_failing[i])
			log_info("webhook %s delivers again (%llu events wait)", s.url,
				 (unsigned long long)s.backlog);
		a->hook_failing[i] = s.failing;
	}
}

/* uv_now() milliseconds as wall-clock time. */
static json_t *loop_time(const struct api *a, int64_t ms)
{
	if (ms <= 0)
		return json_null();
	int64_t now_ms = (int64_t)uv_now(a->loop);
	return codec_time((int64_t)time(NULL) - (now_ms - ms) / 1000);
}

void api_webhooks_totals(const struct api *a, uint64_t *delivered_n, uint64_t *failed_n,
			 uint64_t *backlog, uint32_t *failing)
{
	*delivered_n = *failed_n = *backlog = 0;
	*failing = 0;
	for (uint32_t i = 0; i < hook_count(a->hook); i++) {
		struct hook_ep_stats s;
		hook_stats(a->hook, i, &s);
		*delivered_n += s.delivered;
		*failed_n += s.failed;
		*backlog += s.backlog;
		*failing += s.failing;
	}
}

/* GET /v1/webhooks */
void api_webhooks_get(struct ctx *c)
{
	struct api *a = c->a;
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < hook_count(a->hook); i++) {
		struct hook_ep_stats s;
		hook_stats(a->hook, i, &s);
		json_array_append_new(arr, json_pack(
			"{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:o, s:o, s:o, s:o}", "url", s.url,
			"kind", s.agent ? "agent" : "global", "backlog", (json_int_t)s.backlog,
			"in_flight", (json_int_t)s.in_flight, "delivered", (json_int_t)s.delivered,
			"failed", (json_int_t)s.failed, "failures_in_row", (json_int_t)s.failures_in_row,
			"failing", s.failing, "last_error",
			s.last_error ? json_string(s.last_error) : json_null(), "last_success_at",
			loop_time(a, s.last_success_ms), "next_retry_at", loop_time(a, s.next_try_ms),
			"oldest_seq", s.oldest_seq ? json_integer((json_int_t)s.oldest_seq) : json_null()));
	}
	api_ok(c, 200, json_pack("{s:o}", "webhooks", arr ? arr : json_array()));
}
