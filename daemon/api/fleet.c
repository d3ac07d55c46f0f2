/*
 * api/fleet — handlers for /v1/fleet, /v1/models, /v1/domains, /v1/nodes, /v1/devices.
 * Never: changes the fleet without putting the same change into the store's batch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store.h"

void api_fleet_get(struct ctx *c)
{
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	api_ok(c, 200, codec_fleet_export(&c->a->fleet));
}

void api_fleet_post(struct ctx *c)
{
	struct api *a = c->a;
	struct fleet_doc doc = {0};
	json_t *body = NULL;
	int64_t *old_budget = NULL;
	int rc;

	if ((rc = api_query_check(c, NULL)) < 0 || (rc = api_require_admin(c, "importing a fleet")) < 0 ||
	    (rc = codec_parse(c->req->body, c->req->body_len, &body, &c->err)) < 0 ||
	    (rc = codec_fleet_decode(body, &doc, &c->err)) < 0)
		goto fail;
	if (!(old_budget = malloc((doc.ndomains + 1) * sizeof(*old_budget)))) {
		rc = err_set(&c->err, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	for (uint32_t i = 0; i < doc.ndomains; i++) {
		uint32_t d = fleet_domain_find(&a->fleet, doc.domains[i].name);
		old_budget[i] = d == FLEET_NONE ? -1 : a->fleet.domains[d].budget_w;
	}
	if ((rc = fleet_import(&a->fleet, &doc, &c->err)) < 0)
		goto fail;
	/* A store failure poisons the batch: the commit fails, memory is reloaded, 503. */
	store_put_fleet(a->store, &a->fleet, &doc);
	for (uint32_t i = 0; i < doc.ndomains; i++) {
		uint32_t d = fleet_domain_find(&a->fleet, doc.domains[i].name);
		if (old_budget[i] != a->fleet.domains[d].budget_w)
			api_event(a, "domain.budget", 0, NULL,
				  json_pack("{s:s, s:o, s:I}", "domain", doc.domains[i].name, "old_w",
					    old_budget[i] < 0 ? json_null() : json_integer(old_budget[i]),
					    "new_w", (json_int_t)a->fleet.domains[d].budget_w));
	}
	for (uint32_t i = 0; i < doc.nnodes; i++)
		api_sync_node(a, fleet_node_find(&a->fleet, doc.nodes[i].name));
	api_telemetry_sync(a); /* new or changed exporter URLs */
	uint64_t ndev = 0;
	for (uint32_t i = 0; i < doc.nnodes; i++)
		for (uint32_t k = 0; k < doc.nodes[i].ndevs; k++)
			ndev += doc.nodes[i].devs[k].count;
	api_event(a, "fleet.imported", 0, NULL,
		  json_pack("{s:I, s:I, s:I, s:I}", "models", (json_int_t)doc.nmodels, "domains",
			    (json_int_t)doc.ndomains, "nodes", (json_int_t)doc.nnodes, "devices",
			    (json_int_t)ndev));
	api_ok(c, 200, json_pack("{s:I, s:I, s:I, s:I}", "models", (json_int_t)doc.nmodels,
				 "domains", (json_int_t)doc.ndomains, "nodes",
				 (json_int_t)doc.nnodes, "devices", (json_int_t)ndev));
	free(old_budget);
	codec_fleet_doc_free(&doc);
	json_decref(body);
	return;
fail:
	free(old_budget);
	codec_fleet_doc_free(&doc);
	json_decref(body);
	api_fail(c, rc);
}

void api_models_get(struct ctx *c)
{
	const struct fleet *f = &c->a->fleet;
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < f->nmodels; i++)
		json_array_append_new(arr, codec_model_encode(&f->models[i]));
	api_ok(c, 200, arr ? json_pack("{s:o}", "models", arr) : NULL);
}

void api_domains_get(struct ctx *c, const char *name)
{
	const struct fleet *f = &c->a->fleet;
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	if (name) {
		uint32_t d = fleet_domain_find(f, name);
		if (d == FLEET_NONE) {
			err_set(&c->err, ERR_NOT_FOUND, NULL, "no domain %s", name);
			return api_fail(c, ERR_NOT_FOUND);
		}
		return api_ok(c, 200, codec_domain_encode(f, d));
	}
	json_t *arr = codec_domains_encode(f);
	api_ok(c, 200, arr ? json_pack("{s:o}", "domains", arr) : NULL);
}

/* Is domain d at or below ancestor? */
static bool under(const struct fleet *f, uint32_t d, uint32_t ancestor)
{
	for (; d != FLEET_NONE; d = f->domains[d].parent)
		if (d == ancestor)
			return true;
	return false;
}

void api_nodes_get(struct ctx *c, const char *name)
{
	static const char *const allowed[] = {"state", "domain", "model", NULL};
	const struct fleet *f = &c->a->fleet;
	enum node_state st = NODE_UP;
	uint32_t dom = FLEET_NONE, model = FLEET_NONE;
	const char *v;

	if (name) {
		if (api_query_check(c, NULL) < 0)
			return api_fail(c, c->err.code);
		uint32_t n = fleet_node_find(f, name);
		if (n == FLEET_NONE) {
			err_set(&c->err, ERR_NOT_FOUND, NULL, "no node %s", name);
			return api_fail(c, ERR_NOT_FOUND);
		}
		return api_ok(c, 200, codec_node_encode(f, n, true));
	}
	if (api_query_check(c, allowed) < 0)
		return api_fail(c, c->err.code);
	if ((v = api_query(c, "state")) && fleet_node_state_parse(v, &st) < 0) {
		err_set(&c->err, ERR_INVALID, "state", "must be up, draining, drained or down");
		return api_fail(c, ERR_INVALID);
	}
	if ((v = api_query(c, "domain")) && (dom = fleet_domain_find(f, v)) == FLEET_NONE) {
		err_set(&c->err, ERR_INVALID, "domain", "unknown domain %s", v);
		return api_fail(c, ERR_INVALID);
	}
	if ((v = api_query(c, "model")) && (model = fleet_model_find(f, v)) == FLEET_NONE) {
		err_set(&c->err, ERR_INVALID, "model", "unknown model %s", v);
		return api_fail(c, ERR_INVALID);
	}
	json_t *arr = json_array();
	for (uint32_t n = 0; arr && n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		if (api_query(c, "state") && nd->state != st)
			continue;
		if (dom != FLEET_NONE && !under(f, nd->domain, dom))
			continue;
		if (model != FLEET_NONE) {
			bool has = false;
			for (uint32_t k = 0; k < nd->nslots && !has; k++)
				has = f->slots[nd->first_slot + k].model == model;
			if (!has)
				continue;
		}
		if (json_array_append_new(arr, codec_node_encode(f, n, false)) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	api_ok(c, 200, arr ? json_pack("{s:o}", "nodes", arr) : NULL);
}

void api_node_action(struct ctx *c, const char *name, const char *action)
{
	struct api *a = c->a;
	int rc;

	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	if (api_require_admin(c, strcmp(action, "drain") == 0 ? "draining a node" : "resuming a node") < 0)
		return api_fail(c, ERR_FORBIDDEN);
	uint32_t n = fleet_node_find(&a->fleet, name);
	if (n == FLEET_NONE) {
		err_set(&c->err, ERR_NOT_FOUND, NULL, "no node %s", name);
		return api_fail(c, ERR_NOT_FOUND);
	}
	rc = strcmp(action, "drain") == 0 ? fleet_node_drain(&a->fleet, n, &c->err)
					  : fleet_node_resume(&a->fleet, n, &c->err);
	if (rc < 0)
		return api_fail(c, rc);
	api_sync_node(a, n);
	api_ok(c, 200, codec_node_encode(&a->fleet, n, false));
}

void api_devices_get(struct ctx *c)
{
	static const char *const allowed[] = {"model", "vendor", "state", "health", "node", NULL};
	const struct fleet *f = &c->a->fleet;
	uint32_t model = FLEET_NONE, node = FLEET_NONE;
	enum device_health health = HEALTH_OK;
	int want_alloc = -1;
	const char *v, *vendor = api_query(c, "vendor");

	if (api_query_check(c, allowed) < 0)
		return api_fail(c, c->err.code);
	if ((v = api_query(c, "model")) && (model = fleet_model_find(f, v)) == FLEET_NONE) {
		err_set(&c->err, ERR_INVALID, "model", "unknown model %s", v);
		return api_fail(c, ERR_INVALID);
	}
	if ((v = api_query(c, "node")) && (node = fleet_node_find(f, v)) == FLEET_NONE) {
		err_set(&c->err, ERR_INVALID, "node", "unknown node %s", v);
		return api_fail(c, ERR_INVALID);
	}
	if ((v = api_query(c, "health")) && fleet_health_parse(v, &health) < 0) {
		err_set(&c->err, ERR_INVALID, "health", "must be ok, degraded or failed");
		return api_fail(c, ERR_INVALID);
	}
	if ((v = api_query(c, "state"))) {
		if (strcmp(v, "free") == 0)
			want_alloc = 0;
		else if (strcmp(v, "allocated") == 0)
			want_alloc = 1;
		else {
			err_set(&c->err, ERR_INVALID, "state", "must be free or allocated");
			return api_fail(c, ERR_INVALID);
		}
	}
	json_t *arr = json_array();
	uint32_t from = 0, to = f->ndevices;
	if (node != FLEET_NONE) {
		from = f->nodes[node].first_device;
		to = from + f->nodes[node].ndevices;
	}
	for (uint32_t i = from; arr && i < to; i++) {
		const struct device *d = &f->devices[i];
		if (d->node == FLEET_NONE)
			continue;
		if (model != FLEET_NONE && d->model != model)
			continue;
		if (vendor && strcmp(f->models[d->model].vendor, vendor) != 0)
			continue;
		if (api_query(c, "health") && d->health != health)
			continue;
		if (want_alloc >= 0 && (d->job != 0) != (want_alloc == 1))
			continue;
		if (json_array_append_new(arr, codec_device_encode(f, i)) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	api_ok(c, 200, arr ? json_pack("{s:o}", "devices", arr) : NULL);
}
