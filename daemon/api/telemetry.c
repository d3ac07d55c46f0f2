/*
 * api/telemetry — from exporter scrapes to fleet state: measured watts, device health that
 * fails and recovers, node liveness.
 *
 * Owns: the scraper handle, the rules applying a reading (below), device reset.
 * Never: blocks the loop (the scraper is libcurl multi on libuv), marks a node without an
 * exporter down, lets a reading change anything without an event and a store write.
 *
 * Rules, per scrape of node N (times in seconds):
 *  - a failed scrape (transport error, HTTP status other than 200, a page with no samples)
 *    counts; after opt.down_after failures in a row N goes DOWN and its jobs go back to
 *    pending (NODE_DOWN); the next good scrape brings it back UP;
 *  - a good scrape records each device's watts, N's sum and its domains' measured load;
 *    a domain whose measured load crosses its budget raises domain.over_budget (and
 *    domain.under_budget when it comes back), with a warning log line;
 *  - a device whose reading is unhealthy (a new hardware XID, or an NPU health status other
 *    than healthy) becomes degraded or failed with the reason; jobs holding a failed device
 *    get job.device_failed and training gangs go back to pending (DEVICE_FAILED);
 *  - a device not ok returns to ok after opt.recover_after clean scrapes in a row, or by
 *    POST /v1/devices/{node}/{index}/reset (admin).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter.h"
#include "internal.h"
#include "log.h"
#include "place.h"
#include "scrape.h"
#include "store.h"

static void set_error(struct node *n, const char *msg)
{
	char *c = msg ? strdup(msg) : NULL;
	free(n->scrape_error);
	n->scrape_error = c;
}

/* Jobs holding devices of node (each once). */
static uint32_t jobs_on(struct api *a, uint32_t node, uint64_t *out, uint32_t max)
{
	const struct node *n = &a->fleet.nodes[node];
	uint32_t k = 0;
	for (uint32_t i = 0; i < n->ndevices && k < max; i++) {
		uint64_t job = a->fleet.devices[n->first_device + i].job;
		bool seen = job == 0;
		for (uint32_t q = 0; q < k && !seen; q++)
			seen = out[q] == job;
		if (!seen)
			out[k++] = job;
	}
	return k;
}

static void scrape_failed(struct api *a, uint32_t node, const char *why)
{
	struct node *n = &a->fleet.nodes[node];
	n->scrape_fails++;
	set_error(n, why);
	if (n->scrape_fails < a->opt.down_after || n->state == NODE_DOWN)
		return;
	if (!fleet_node_set_down(&a->fleet, node, true))
		return;
	log_warning("node %s is down: %u failed scrapes (%s)", n->name, n->scrape_fails, why);
	api_sync_node(a, node);
	uint64_t jobs[64];
	char reason[160];
	snprintf(reason, sizeof(reason), "NODE_DOWN: node %s stopped answering (%s)", n->name, why);
	for (uint32_t k = jobs_on(a, node, jobs, 64); k-- > 0;) {
		struct job *j = jobs_get(&a->jobs, jobs[k]);
		if (j && job_state_active(j->state))
			api_requeue(a, j, reason);
	}
}

static void device_health(struct api *a, uint32_t dev, enum device_health h, const char *why)
{
	struct device *d = &a->fleet.devices[dev];
	const char *node = a->fleet.nodes[d->node].name;
	free(d->health_reason);
	d->health_reason = h == HEALTH_OK || !why ? NULL : strdup(why);
	d->clean_scrapes = 0;
	fleet_device_set_health(&a->fleet, dev, h);
	char type[32];
	snprintf(type, sizeof(type), "device.%s", fleet_health_name(h));
	api_event(a, type, d->job, node, json_pack("{s:i, s:s}", "index", d->index, "reason",
						   why ? why : ""));
	store_put_device_health(a->store, &a->fleet, dev);
	if (h == HEALTH_OK) {
		log_info("device %s/%u is ok again", node, d->index);
		return;
	}
	log_warning("device %s/%u is %s: %s", node, d->index, fleet_health_name(h), why ? why : "");
	if (h != HEALTH_FAILED || !d->job)
		return;
	struct job *j = jobs_get(&a->jobs, d->job);
	if (!j || !job_state_active(j->state))
		return;
	api_event(a, "job.device_failed", j->id, node, json_pack("{s:i, s:s}", "index", d->index,
							       "reason", why ? why : ""));
	if (!j->req.keep_on_device_failure) {
		char reason[160];
		snprintf(reason, sizeof(reason), "DEVICE_FAILED: %s/%u: %s", node, d->index,
			 why ? why : "failed");
		api_requeue(a, j, reason);
	}
}

static void over_budget(struct api *a, uint32_t node)
{
	struct fleet *f = &a->fleet;
	for (uint32_t d = f->nodes[node].domain; d != FLEET_NONE; d = f->domains[d].parent) {
		struct domain *dm = &f->domains[d];
		bool over = dm->measured_w > (double)dm->budget_w;
		if (over == dm->over_budget)
			continue;
		dm->over_budget = over;
		api_event(a, over ? "domain.over_budget" : "domain.under_budget", 0, NULL,
			  json_pack("{s:s, s:f, s:I}", "domain", dm->name, "measured_w", dm->measured_w,
				    "budget_w", (json_int_t)dm->budget_w));
		if (over)
			log_warning("domain %s draws %.0f W, over its budget of %lld W", dm->name,
				    dm->measured_w, (long long)dm->budget_w);
	}
}

static void on_scraped(void *ud, uint32_t node, const struct scrape_result *r)
{
	struct api *a = ud;
	struct exporter_reading *rd = a->reading;
	char why[160];
	int64_t now = (int64_t)time(NULL);

	if (node >= a->fleet.nnodes)
		return;
	struct node *n = &a->fleet.nodes[node];
	n->scraped_at = now;
	a->scrapes++;
	if (r->rc < 0 || r->http_status != 200) {
		if (r->rc == 0)
			snprintf(why, sizeof(why), "HTTP %ld", r->http_status);
		else
			snprintf(why, sizeof(why), "%s", r->error ? r->error : "scrape failed");
		a->scrape_failures++;
		return scrape_failed(a, node, why);
	}
	const char *uuids[FLEET_MAX_NODE_DEVICES];
	bool any_uuid = false;
	for (uint32_t k = 0; k < n->ndevices; k++) {
		uuids[k] = a->fleet.devices[n->first_device + k].uuid;
		any_uuid = any_uuid || uuids[k];
	}
	int rc = exporter_read(r->body, r->len, n->ndevices, any_uuid ? uuids : NULL, now * 1000,
			       (int64_t)a->opt.stale_s * 1000, rd);
	if (rc < 0 || rd->devices_seen == 0) {
		if (rc < 0)
			snprintf(why, sizeof(why), "cannot read the page (%d)", rc);
		else
			snprintf(why, sizeof(why), "no device series in the page (%llu samples, "
				 "%llu malformed lines)", (unsigned long long)rd->samples,
				 (unsigned long long)rd->malformed);
		a->scrape_failures++;
		return scrape_failed(a, node, why);
	}
	n->scrape_fails = 0;
	set_error(n, NULL);
	if (fleet_node_set_down(&a->fleet, node, false)) {
		log_info("node %s is up again", n->name);
		api_sync_node(a, node);
	}
	double sum = 0;
	for (uint32_t i = 0; i < n->ndevices; i++) {
		uint32_t dev = n->first_device + i;
		struct device *d = &a->fleet.devices[dev];
		const struct exporter_device *x = &rd->dev[i];
		if (!x->seen)
			continue;
		if (x->has_power) {
			d->measured_w = (float)x->power_w;
			sum += x->power_w;
		}
		/* an XID counts when it is new: the exporter repeats the last one forever */
		int bad = 0;
		const char *reason = x->reason;
		if (rd->kind == EXPORTER_DCGM) {
			if (x->xid && x->xid != d->last_xid)
				bad = exporter_xid_health(x->xid, &reason);
			if (x->xid != d->last_xid) {
				d->last_xid = x->xid; /* remembered across restarts */
				store_put_device_health(a->store, &a->fleet, dev);
			}
		} else if (x->health > 0) {
			bad = x->health;
		}
		if (bad > d->health) {
			device_health(a, dev, (enum device_health)bad, reason);
		} else if (bad == 0 && d->health != HEALTH_OK &&
			   ++d->clean_scrapes >= a->opt.recover_after) {
			device_health(a, dev, HEALTH_OK, "clean scrapes");
		}
	}
	fleet_node_set_measured(&a->fleet, node, sum, now);
	over_budget(a, node);
}

int api_telemetry_sync(struct api *a)
{
	if (!a->scrape)
		return 0;
	int first = 0;
	for (uint32_t n = 0; n < a->fleet.nnodes; n++) {
		struct node *nd = &a->fleet.nodes[n];
		const char *url = nd->exporter_url;
		int rc = scrape_set_target(a->scrape, n, url && *url ? url : NULL);
		if (rc < 0) {
			/* one bad URL must not stop the others being scraped */
			char why[160];
			snprintf(why, sizeof(why), "exporter_url not scraped (%d)", rc);
			set_error(nd, why);
			if (!first)
				first = rc;
		}
	}
	return first;
}

int api_telemetry_start(struct api *a, struct err *e)
{
	struct scrape_options so;
	scrape_options_default(&so);
	if (a->opt.scrape_interval_ms)
		so.interval_ms = a->opt.scrape_interval_ms;
	if (a->opt.scrape_timeout_ms)
		so.timeout_ms = a->opt.scrape_timeout_ms;
	if (a->opt.scrape_concurrency)
		so.max_concurrency = a->opt.scrape_concurrency;
	a->reading = malloc(sizeof(*a->reading));
	if (!a->reading)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	int rc = scrape_new(a->loop, &so, (uint32_t)time(NULL), on_scraped, a, &a->scrape, e);
	if (rc < 0)
		return rc;
	if ((rc = api_telemetry_sync(a)) < 0)
		return err_set(e, rc, NULL, "cannot schedule the node exporters");
	return 0;
}

static void scrape_closed(void *ud)
{
	(void)ud;
}

void api_telemetry_close(struct api *a)
{
	if (a->scrape)
		scrape_close(a->scrape, scrape_closed, a);
}

void api_telemetry_free(struct api *a)
{
	scrape_free(a->scrape);
	a->scrape = NULL;
	free(a->reading);
	a->reading = NULL;
}

/* POST /v1/devices/{node}/{index}/reset, and …/fail {"reason": "…"} (maintenance: the
 * device leaves placement, its training job goes back to pending; it stays failed until a
 * reset, or until its exporter reports clean scrapes) */
void api_device_action(struct ctx *c, const char *node, const char *index, const char *action)
{
	struct api *a = c->a;
	bool fail = strcmp(action, "fail") == 0;
	char reason[128] = "failed by an admin";
	char *end;
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	if (api_require_admin(c, fail ? "failing a device" : "resetting a device") < 0)
		return api_fail(c, ERR_FORBIDDEN);
	if (fail && c->req->body_len > 0) {
		json_t *body = NULL;
		if (codec_parse(c->req->body, c->req->body_len, &body, &c->err) < 0)
			return api_fail(c, c->err.code);
		const json_t *r = json_object_get(body, "reason");
		if (json_object_size(body) != (r ? 1u : 0u) || (r && (!json_is_string(r) ||
		    json_string_length(r) == 0 || json_string_length(r) > 100))) {
			json_decref(body);
			err_set(&c->err, ERR_INVALID, r ? "reason" : NULL,
				"the body is {\"reason\": a string of 1-100 characters}");
			return api_fail(c, ERR_INVALID);
		}
		if (r)
			snprintf(reason, sizeof(reason), "%s", json_string_value(r));
		json_decref(body);
	}
	uint32_t n = fleet_node_find(&a->fleet, node);
	unsigned long i = strtoul(index, &end, 10);
	if (n == FLEET_NONE || *end || !*index || i >= a->fleet.nodes[n].ndevices) {
		err_set(&c->err, ERR_NOT_FOUND, NULL, "no device %s/%s", node, index);
		return api_fail(c, ERR_NOT_FOUND);
	}
	uint32_t dev = a->fleet.nodes[n].first_device + (uint32_t)i;
	if (fail && a->fleet.devices[dev].health != HEALTH_FAILED)
		device_health(a, dev, HEALTH_FAILED, reason);
	else if (!fail && a->fleet.devices[dev].health != HEALTH_OK)
		device_health(a, dev, HEALTH_OK, "reset by an admin");
	api_ok(c, 200, codec_device_encode(&a->fleet, dev));
}
