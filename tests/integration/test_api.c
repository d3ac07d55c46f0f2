/*
 * test_api — the HTTP contract of proto/API.md, checked against a real jouled.
 *
 * Owns: nothing between tests: every test gets its own daemon in its own temp dir
 * (checked fixtures run in Check's forked child), so tests are independent and a crash
 * is charged to the test that caused it.
 * Never: looks inside the daemon (no SQL, no daemon headers): only what a client sees.
 * Expected numbers are computed from the fixtures and from what the daemon itself reports
 * (model idle watts from GET /v1/models), never copied from the daemon's code.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../lib/daemon.h"

#define H100 "H100-SXM5-80GB"
#define B3 "Ascend910B3"

static struct td_daemon D;

/* ---- helpers ---------------------------------------------------------------------- */

/* printf into one of a ring of static buffers (test bodies stay readable). */
__attribute__((format(printf, 1, 2)))
static const char *fmt(const char *f, ...)
{
	static char ring[8][8192];
	static unsigned k;
	char *b = ring[k++ % 8];
	va_list ap;
	va_start(ap, f);
	int n = vsnprintf(b, sizeof ring[0], f, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < sizeof ring[0], "fmt overflow");
	return b;
}

/* A request whose status must be `want`; returns its JSON body (new reference). */
static json_t *req_at(int line, struct td_daemon *d, const char *method, const char *path,
		      const char *body, const char *const *hdrs, long want)
{
	struct td_response r;
	int rc = td_http(d, method, path, body, hdrs, &r);
	ck_assert_msg(rc == 0, "line %d: %s %s: no HTTP answer (%d)", line, method, path, rc);
	ck_assert_msg(r.status == want, "line %d: %s %s: want %ld, got %ld: %.600s", line,
		      method, path, want, r.status, r.raw);
	ck_assert_msg(r.json != NULL, "line %d: %s %s: body is not JSON: %.600s", line, method,
		      path, r.raw);
	json_t *j = json_incref(r.json);
	td_response_free(&r);
	return j;
}
#define REQ(d, m, p, b, want) req_at(__LINE__, (d), (m), (p), (b), NULL, (want))
#define GET(d, p) req_at(__LINE__, (d), "GET", (p), NULL, NULL, 200)

static json_int_t geti_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "line %d: \"%s\" is not an integer in %s", line, key,
		      o ? "object" : "(null)");
	return json_integer_value(v);
}
#define GETI(o, k) geti_at(__LINE__, (o), (k))

static const char *gets_at(int line, const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_string(v), "line %d: \"%s\" is not a string", line, key);
	return json_string_value(v);
}
#define GETS(o, k) gets_at(__LINE__, (o), (k))

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void assert_json_equal_at(int line, const json_t *a, const json_t *b, const char *what)
{
	if (json_equal((json_t *)a, (json_t *)b))
		return;
	char *sa = dump(a), *sb = dump(b);
	ck_abort_msg("line %d: %s differ:\n  before %.1500s\n  after  %.1500s", line, what, sa, sb);
	free(sa);
	free(sb);
}
#define ASSERT_JSON_EQ(a, b, what) assert_json_equal_at(__LINE__, (a), (b), (what))

static void import_fixture(struct td_daemon *d, const char *name)
{
	json_t *doc = td_data_json(name);
	ck_assert_msg(doc != NULL, "fixture %s", name);
	char *body = dump(doc);
	json_t *r = REQ(d, "POST", "/v1/fleet", body, 200);
	free(body);
	json_decref(r);
	json_decref(doc);
}

static void setup(void)
{
	int r = td_start(&D);
	ck_assert_msg(r == 0, "jouled did not start (%d), log %s", r, D.log);
}

static void setup_fleet(void)
{
	setup();
	import_fixture(&D, "fleet.json");
}

/* Every test ends with a clean SIGTERM: exit 0 (so a sanitizer build's leak or UB report
 * fails the test that caused it) and nothing a sanitizer flagged in the log. */
static void teardown(void)
{
	int st = 0, rc = 0;
	if (D.pid > 0)
		rc = td_stop(&D, &st);
	char *log = NULL;
	bool flagged = false;
	if (D.dir[0] && td_read_file(D.log, &log, NULL) == 0)
		flagged = strstr(log, "runtime error:") || strstr(log, "Sanitizer");
	free(log);
	bool clean = rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !flagged;
	if (clean)
		td_cleanup(&D);   /* else the directory stays for td_sweep to show its log */
	ck_assert_msg(clean, "jouled did not stop cleanly on SIGTERM (status 0x%x%s), log %s", st,
		      flagged ? ", sanitizer report in its log" : "", D.log);
}

/* model name → idle_w, from the daemon's own catalog */
static json_t *model_map(struct td_daemon *d)
{
	json_t *r = GET(d, "/v1/models");
	json_t *models = json_object_get(r, "models");
	ck_assert(json_is_array(models));
	json_t *map = json_object();
	size_t i;
	json_t *m;
	json_array_foreach(models, i, m)
		json_object_set(map, GETS(m, "name"), m);
	json_decref(r);
	return map;
}

static json_int_t model_int(json_t *models, const char *model, const char *key)
{
	json_t *m = json_object_get(models, model);
	ck_assert_msg(m != NULL, "model %s not in the catalog", model);
	return GETI(m, key);
}

/*
 * GET /v1/domains as name → domain, after checking the power invariants on it: parents
 * come before children, reserved_w <= budget_w, headroom_w = budget_w - reserved_w.
 */
static json_t *domains_at(int line, struct td_daemon *d)
{
	json_t *r = GET(d, "/v1/domains");
	json_t *list = json_object_get(r, "domains");
	ck_assert_msg(json_is_array(list), "line %d: no domains array", line);
	json_t *map = json_object();
	size_t i;
	json_t *dom;
	json_array_foreach(list, i, dom) {
		const char *name = GETS(dom, "name");
		json_t *parent = json_object_get(dom, "parent");
		if (parent && !json_is_null(parent)) {
			ck_assert_msg(json_is_string(parent), "line %d: %s parent", line, name);
			ck_assert_msg(json_object_get(map, json_string_value(parent)) != NULL,
				      "line %d: domain %s listed before its parent %s", line, name,
				      json_string_value(parent));
		}
		json_int_t budget = GETI(dom, "budget_w"), reserved = GETI(dom, "reserved_w");
		ck_assert_msg(reserved <= budget, "line %d: domain %s reserved %lld > budget %lld",
			      line, name, (long long)reserved, (long long)budget);
		ck_assert_msg(GETI(dom, "headroom_w") == budget - reserved,
			      "line %d: domain %s headroom %lld != %lld - %lld", line, name,
			      (long long)GETI(dom, "headroom_w"), (long long)budget,
			      (long long)reserved);
		json_object_set(map, name, dom);
	}
	json_decref(r);
	return map;
}
#define DOMAINS(d) domains_at(__LINE__, (d))

static json_int_t reserved_at(int line, struct td_daemon *d, const char *domain)
{
	json_t *m = domains_at(line, d);
	json_t *dom = json_object_get(m, domain);
	ck_assert_msg(dom != NULL, "line %d: no domain %s", line, domain);
	json_int_t v = GETI(dom, "reserved_w");
	json_decref(m);
	return v;
}
#define RESERVED(d, name) reserved_at(__LINE__, (d), (name))

/* Expected idle reservation of every domain in a fleet document: Σ host_idle_w + Σ device
 * idle_w over the nodes below it. name → integer. */
static json_t *expected_idle(json_t *doc, json_t *models)
{
	json_t *want = json_object(), *parent_of = json_object();
	size_t i, k;
	json_t *dom, *node, *dev;
	json_array_foreach(json_object_get(doc, "domains"), i, dom) {
		json_object_set_new(want, GETS(dom, "name"), json_integer(0));
		json_object_set(parent_of, GETS(dom, "name"), json_object_get(dom, "parent"));
	}
	json_array_foreach(json_object_get(doc, "nodes"), i, node) {
		json_int_t w = GETI(node, "host_idle_w");
		json_array_foreach(json_object_get(node, "devices"), k, dev)
			w += GETI(dev, "count") * model_int(models, GETS(dev, "model"), "idle_w");
		for (json_t *p = json_object_get(node, "domain"); p && json_is_string(p);
		     p = json_object_get(parent_of, json_string_value(p))) {
			const char *name = json_string_value(p);
			json_int_t cur = json_integer_value(json_object_get(want, name));
			json_object_set_new(want, name, json_integer(cur + w));
		}
	}
	json_decref(parent_of);
	return want;
}

static const char *train_body(const char *name, int workers, int devices, const char *model,
			      int cap)
{
	if (cap > 0)
		return fmt("{\"name\":\"%s\",\"kind\":\"training\",\"workers\":%d,\"devices\":%d,"
			   "\"accelerator\":{\"models\":[\"%s\"]},\"power\":{\"cap_w\":%d}}",
			   name, workers, devices, model, cap);
	return fmt("{\"name\":\"%s\",\"kind\":\"training\",\"workers\":%d,\"devices\":%d,"
		   "\"accelerator\":{\"models\":[\"%s\"]}}", name, workers, devices, model);
}

/* Submit; status must be 201; returns the job (new reference). */
static json_t *submit_at(int line, struct td_daemon *d, const char *body)
{
	json_t *j = req_at(line, d, "POST", "/v1/jobs", body, NULL, 201);
	ck_assert_msg(json_is_integer(json_object_get(j, "id")), "line %d: job without id", line);
	return j;
}
#define SUBMIT(d, body) submit_at(__LINE__, (d), (body))

static json_t *get_job(struct td_daemon *d, json_int_t id)
{
	return GET(d, fmt("/v1/jobs/%lld", (long long)id));
}

/* Poll GET /v1/jobs/{id} until its state is `state` or ms pass; returns the last job. */
static json_t *wait_state(struct td_daemon *d, json_int_t id, const char *state, int ms)
{
	for (int waited = 0;; waited += 20) {
		json_t *j = get_job(d, id);
		if (strcmp(GETS(j, "state"), state) == 0 || waited >= ms)
			return j;
		json_decref(j);
		td_sleep_ms(20);
	}
}

/* A placed job's placement: `workers` entries, each `devices` device indexes on one node,
 * distinct (node, index) pairs over the whole job. Returns the devices count. */
static void assert_placement_at(int line, json_t *job, int count, int devices)
{
	json_t *pl = json_object_get(job, "placement");
	ck_assert_msg(json_is_array(pl), "line %d: placement is not an array", line);
	ck_assert_msg(json_array_size(pl) == (size_t)count,
		      "line %d: placement has %zu entries, want %d", line, json_array_size(pl),
		      count);
	json_t *seen = json_object();
	size_t i, k;
	json_t *w, *ix;
	json_array_foreach(pl, i, w) {
		ck_assert_msg(GETI(w, "worker") == (json_int_t)i, "line %d: worker %zu numbered %lld",
			      line, i, (long long)GETI(w, "worker"));
		const char *node = GETS(w, "node");
		GETS(w, "model");
		GETI(w, "cap_w");
		json_t *devs = json_object_get(w, "devices");
		ck_assert_msg(json_is_array(devs) && json_array_size(devs) == (size_t)devices,
			      "line %d: worker %zu has %zu devices, want %d", line, i,
			      json_array_size(devs), devices);
		json_array_foreach(devs, k, ix) {
			ck_assert(json_is_integer(ix));
			const char *key = fmt("%s/%lld", node, (long long)json_integer_value(ix));
			ck_assert_msg(!json_object_get(seen, key), "line %d: device %s twice", line,
				      key);
			json_object_set_new(seen, key, json_true());
		}
	}
	json_decref(seen);
}
#define ASSERT_PLACEMENT(job, count, devices) assert_placement_at(__LINE__, (job), (count), (devices))

/* Check an error answer: {"error":{"code","message","field"?}} with the code of its status. */
static const char *status_code_name(long status)
{
	switch (status) {
	case 400: return "malformed";
	case 403: return "permission_denied";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 422: return "invalid_argument";
	case 431: return "headers_too_large";
	case 503: return "unavailable";
	default: return "?";
	}
}

static void assert_error_body_at(int line, const struct td_response *r, const char *what)
{
	ck_assert_msg(r->json != NULL, "line %d: %s: error body is not JSON: %.300s", line, what,
		      r->raw);
	json_t *e = json_object_get(r->json, "error");
	ck_assert_msg(json_is_object(e), "line %d: %s: no \"error\" object: %.300s", line, what,
		      r->raw);
	json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
	ck_assert_msg(json_is_string(code) &&
		      strcmp(json_string_value(code), status_code_name(r->status)) == 0,
		      "line %d: %s: status %ld wants code \"%s\": %.300s", line, what, r->status,
		      status_code_name(r->status), r->raw);
	ck_assert_msg(json_is_string(msg) && json_string_length(msg) > 0,
		      "line %d: %s: empty message: %.300s", line, what, r->raw);
	json_t *field = json_object_get(e, "field");
	ck_assert_msg(!field || json_is_string(field),
		      "line %d: %s: field must be a string or absent: %.300s", line, what, r->raw);
}

/* ---- catalog ---------------------------------------------------------------------- */

START_TEST(health_answers_ok_with_version_and_counts)
{
	struct td_response r;
	ck_assert_int_eq(td_http(&D, "GET", "/v1/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	char ct[128];
	ck_assert_msg(td_response_header(&r, "Content-Type", ct, sizeof ct) == 0 &&
		      strstr(ct, "application/json"), "Content-Type is not application/json");
	ck_assert_str_eq(GETS(r.json, "status"), "ok");
	ck_assert(json_string_length(json_object_get(r.json, "version")) > 0);
	ck_assert(json_is_true(json_object_get(r.json, "leader")));
	ck_assert_int_eq(GETI(r.json, "jobs"), 0);
	ck_assert_int_eq(GETI(r.json, "nodes"), 0);
	ck_assert_int_eq(GETI(r.json, "devices"), 0);
	td_response_free(&r);

	import_fixture(&D, "fleet.json");
	json_t *h = GET(&D, "/v1/health");
	ck_assert_int_eq(GETI(h, "nodes"), 3);
	ck_assert_int_eq(GETI(h, "devices"), 24);
	json_decref(h);
	json_t *j = SUBMIT(&D, train_body("h", 1, 1, H100, 0));
	h = GET(&D, "/v1/health");
	ck_assert_int_eq(GETI(h, "jobs"), 1);
	json_decref(h);
	json_decref(j);
}
END_TEST

static const struct {
	const char *name, *vendor, *stack;
	int memory_gib;     /* 0: not checked (sources disagree) */
	int fp8;            /* 1: fp8_tflops > 0, 0: == 0 */
} required_models[] = {
	{ "A100-SXM4-80GB", "nvidia", "cuda", 80, 0 },
	{ "H100-SXM5-80GB", "nvidia", "cuda", 80, 1 },
	{ "H100-PCIe-80GB", "nvidia", "cuda", 80, 1 },
	{ "H200-SXM-141GB", "nvidia", "cuda", 141, 1 },
	{ "H20-96GB", "nvidia", "cuda", 96, 1 },
	{ "B200-180GB", "nvidia", "cuda", 180, 1 },
	{ "L40S", "nvidia", "cuda", 48, 1 },
	{ "L20", "nvidia", "cuda", 48, 1 },
	{ "Ascend910B2", "huawei", "cann", 64, 0 },
	{ "Ascend910B3", "huawei", "cann", 64, 0 },
	{ "Ascend910B4", "huawei", "cann", 0, 0 },
	{ "Ascend910C", "huawei", "cann", 0, 0 },
	{ "Ascend310P3", "huawei", "cann", 0, 0 },
};

START_TEST(builtin_catalog_lists_the_13_required_models_with_every_field)
{
	json_t *models = model_map(&D);
	for (size_t i = 0; i < sizeof required_models / sizeof required_models[0]; i++) {
		const char *name = required_models[i].name;
		json_t *m = json_object_get(models, name);
		ck_assert_msg(m != NULL, "model %s missing from GET /v1/models", name);
		ck_assert_str_eq(GETS(m, "vendor"), required_models[i].vendor);
		ck_assert_str_eq(GETS(m, "stack"), required_models[i].stack);
		json_int_t mem = GETI(m, "memory_gib");
		ck_assert_msg(mem > 0, "%s memory_gib", name);
		if (required_models[i].memory_gib)
			ck_assert_msg(mem == required_models[i].memory_gib, "%s memory_gib %lld",
				      name, (long long)mem);
		ck_assert_msg(GETI(m, "bandwidth_gbs") >= 0, "%s bandwidth_gbs", name);
		json_t *bf16 = json_object_get(m, "bf16_tflops"), *fp8 = json_object_get(m, "fp8_tflops");
		ck_assert_msg(json_is_number(bf16) && json_number_value(bf16) > 0, "%s bf16", name);
		ck_assert_msg(json_is_number(fp8) && json_number_value(fp8) >= 0, "%s fp8", name);
		ck_assert_msg((json_number_value(fp8) > 0) == (required_models[i].fp8 == 1),
			      "%s fp8_tflops %g", name, json_number_value(fp8));
		json_int_t tdp = GETI(m, "tdp_w"), min = GETI(m, "min_cap_w"), idle = GETI(m, "idle_w");
		ck_assert_msg(0 < min && min <= tdp, "%s: 0 < min_cap_w %lld <= tdp_w %lld", name,
			      (long long)min, (long long)tdp);
		ck_assert_msg(0 <= idle && idle <= tdp, "%s: 0 <= idle_w %lld <= tdp_w", name,
			      (long long)idle);
	}
	json_decref(models);
}
END_TEST

START_TEST(fleet_import_adds_a_custom_model_to_the_catalog)
{
	json_t *doc = td_data_json("fleet-custom-model.json");
	char *body = dump(doc);
	json_t *r = REQ(&D, "POST", "/v1/fleet", body, 200);
	ck_assert_int_eq(GETI(r, "models"), 1);
	ck_assert_int_eq(GETI(r, "domains"), 1);
	ck_assert_int_eq(GETI(r, "nodes"), 1);
	ck_assert_int_eq(GETI(r, "devices"), 4);
	json_decref(r);
	free(body);

	json_t *models = model_map(&D);
	json_t *want = json_array_get(json_object_get(doc, "models"), 0);
	json_t *got = json_object_get(models, "TEST-NPU-1");
	ck_assert_msg(got != NULL, "imported model not listed");
	const char *key;
	json_t *v;
	json_object_foreach(want, key, v) {
		json_t *g = json_object_get(got, key);
		ck_assert_msg(g != NULL, "model field %s missing", key);
		if (json_is_number(v))
			ck_assert_msg(json_number_value(g) == json_number_value(v), "field %s", key);
		else
			ck_assert_msg(json_equal(g, v), "field %s", key);
	}
	/* 300 + 4 × 20 */
	ck_assert_int_eq(RESERVED(&D, "lab"), 380);
	json_t *j = SUBMIT(&D, fmt("{\"name\":\"c\",\"kind\":\"training\",\"workers\":1,\"devices\":2,"
				   "\"accelerator\":{\"models\":[\"TEST-NPU-1\"]},\"power\":{\"cap_w\":100}}"));
	ck_assert_str_eq(GETS(j, "state"), "placed");
	ck_assert_int_eq(RESERVED(&D, "lab"), 380 + 2 * (100 - 20));
	json_decref(j);
	json_decref(models);
	json_decref(doc);
}
END_TEST

/* ---- fleet ------------------------------------------------------------------------ */

/* Per node: model → device count, from an import-shaped node. */
static json_t *device_counts(json_t *node)
{
	json_t *c = json_object();
	size_t i;
	json_t *dev;
	json_array_foreach(json_object_get(node, "devices"), i, dev) {
		const char *m = GETS(dev, "model");
		json_int_t cur = json_integer_value(json_object_get(c, m));
		json_object_set_new(c, m, json_integer(cur + GETI(dev, "count")));
	}
	return c;
}

static json_t *find_named(json_t *list, const char *name)
{
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x)
		if (json_is_string(json_object_get(x, "name")) &&
		    strcmp(json_string_value(json_object_get(x, "name")), name) == 0)
			return x;
	return NULL;
}

/* Every domain and node of the fixture is in the export with the same values. */
static void assert_export_holds(json_t *export, json_t *doc)
{
	size_t i;
	json_t *want;
	ck_assert(json_is_array(json_object_get(export, "models")));
	json_array_foreach(json_object_get(doc, "domains"), i, want) {
		json_t *got = find_named(json_object_get(export, "domains"), GETS(want, "name"));
		ck_assert_msg(got != NULL, "domain %s not exported", GETS(want, "name"));
		ck_assert_int_eq(GETI(got, "budget_w"), GETI(want, "budget_w"));
		json_t *wp = json_object_get(want, "parent"), *gp = json_object_get(got, "parent");
		if (!wp || json_is_null(wp))
			ck_assert_msg(!gp || json_is_null(gp), "root %s has a parent", GETS(want, "name"));
		else
			ck_assert_msg(json_equal(wp, gp), "parent of %s", GETS(want, "name"));
	}
	json_array_foreach(json_object_get(doc, "nodes"), i, want) {
		const char *name = GETS(want, "name");
		json_t *got = find_named(json_object_get(export, "nodes"), name);
		ck_assert_msg(got != NULL, "node %s not exported", name);
		ck_assert_str_eq(GETS(got, "domain"), GETS(want, "domain"));
		ck_assert_int_eq(GETI(got, "host_idle_w"), GETI(want, "host_idle_w"));
		ck_assert_str_eq(GETS(got, "group"), GETS(want, "group"));
		ck_assert_msg(json_equal(json_object_get(got, "labels"), json_object_get(want, "labels")),
			      "labels of %s", name);
		json_t *cw = device_counts(want), *cg = device_counts(got);
		ck_assert_msg(json_equal(cw, cg), "devices of %s", name);
		json_decref(cw);
		json_decref(cg);
	}
}

START_TEST(fleet_import_then_export_round_trips)
{
	json_t *doc = td_data_json("fleet.json");
	char *body = dump(doc);
	json_t *r = REQ(&D, "POST", "/v1/fleet", body, 200);
	ck_assert_int_eq(GETI(r, "models"), 0);
	ck_assert_int_eq(GETI(r, "domains"), 3);
	ck_assert_int_eq(GETI(r, "nodes"), 3);
	ck_assert_int_eq(GETI(r, "devices"), 24);
	json_decref(r);
	free(body);

	json_t *export1 = GET(&D, "/v1/fleet");
	assert_export_holds(export1, doc);

	/* The export imports into a fresh daemon and exports the same document. */
	struct td_daemon d2;
	ck_assert_int_eq(td_start(&d2), 0);
	char *ebody = dump(export1);
	json_decref(REQ(&d2, "POST", "/v1/fleet", ebody, 200));
	json_t *export2 = GET(&d2, "/v1/fleet");
	ASSERT_JSON_EQ(export1, export2, "export of the re-imported export");
	json_t *dom1 = DOMAINS(&D), *dom2 = DOMAINS(&d2);
	ASSERT_JSON_EQ(dom1, dom2, "domains of the re-imported export");

	/* ... and into the daemon it came from, changing nothing. */
	json_decref(REQ(&D, "POST", "/v1/fleet", ebody, 200));
	json_t *export3 = GET(&D, "/v1/fleet");
	ASSERT_JSON_EQ(export1, export3, "export after importing the export");

	free(ebody);
	json_decref(dom1);
	json_decref(dom2);
	json_decref(export1);
	json_decref(export2);
	json_decref(export3);
	json_decref(doc);
	td_cleanup(&d2);
}
END_TEST

START_TEST(fleet_import_twice_is_idempotent)
{
	json_t *export1 = GET(&D, "/v1/fleet");
	json_t *dom1 = DOMAINS(&D);
	json_t *nodes1 = GET(&D, "/v1/nodes");
	import_fixture(&D, "fleet.json");
	json_t *export2 = GET(&D, "/v1/fleet");
	json_t *dom2 = DOMAINS(&D);
	json_t *nodes2 = GET(&D, "/v1/nodes");
	ASSERT_JSON_EQ(export1, export2, "export");
	ASSERT_JSON_EQ(dom1, dom2, "domains");
	ASSERT_JSON_EQ(nodes1, nodes2, "nodes");
	json_t *h = GET(&D, "/v1/health");
	ck_assert_int_eq(GETI(h, "nodes"), 3);
	ck_assert_int_eq(GETI(h, "devices"), 24);
	json_decref(h);
	json_decref(export1);
	json_decref(export2);
	json_decref(dom1);
	json_decref(dom2);
	json_decref(nodes1);
	json_decref(nodes2);
}
END_TEST

START_TEST(domains_reserve_host_and_device_idle_watts)
{
	json_t *doc = td_data_json("fleet.json");
	json_t *models = model_map(&D);
	json_t *want = expected_idle(doc, models);
	json_t *doms = DOMAINS(&D);
	ck_assert_int_eq(json_object_size(doms), 3);
	const char *name;
	json_t *w;
	json_object_foreach(want, name, w) {
		json_t *dom = json_object_get(doms, name);
		ck_assert_msg(dom != NULL, "domain %s not listed", name);
		ck_assert_msg(GETI(dom, "reserved_w") == json_integer_value(w),
			      "domain %s reserved_w %lld, want %lld", name,
			      (long long)GETI(dom, "reserved_w"), (long long)json_integer_value(w));
	}
	ck_assert_int_eq(GETI(json_object_get(doms, "rack-a"), "nodes"), 2);
	ck_assert_int_eq(GETI(json_object_get(doms, "rack-a"), "devices"), 16);
	ck_assert_int_eq(GETI(json_object_get(doms, "site"), "nodes"), 3);
	ck_assert_int_eq(GETI(json_object_get(doms, "site"), "devices"), 24);

	json_t *one = GET(&D, "/v1/domains/rack-b");
	ASSERT_JSON_EQ(one, json_object_get(doms, "rack-b"), "GET /v1/domains/rack-b");
	json_decref(one);
	json_decref(REQ(&D, "GET", "/v1/domains/no-such-rack", NULL, 404));
	json_decref(doms);
	json_decref(want);
	json_decref(models);
	json_decref(doc);
}
END_TEST

START_TEST(nodes_and_devices_views_follow_the_fleet_and_placements)
{
	json_t *r = GET(&D, "/v1/nodes");
	json_t *nodes = json_object_get(r, "nodes");
	ck_assert_int_eq(json_array_size(nodes), 3);
	json_t *n = find_named(nodes, "a-n1");
	ck_assert(n != NULL);
	ck_assert_str_eq(GETS(n, "domain"), "rack-a");
	ck_assert_str_eq(GETS(n, "state"), "up");
	ck_assert_int_eq(GETI(n, "devices_total"), 8);
	ck_assert_int_eq(GETI(n, "devices_free"), 8);
	ck_assert_msg(json_object_get(n, "devices") == NULL, "list answers omit devices");
	json_decref(r);

	r = GET(&D, "/v1/nodes?domain=rack-b");
	ck_assert_int_eq(json_array_size(json_object_get(r, "nodes")), 1);
	json_decref(r);
	r = GET(&D, "/v1/nodes?model=" H100);
	ck_assert_int_eq(json_array_size(json_object_get(r, "nodes")), 2);
	json_decref(r);

	json_t *j = SUBMIT(&D, train_body("v", 1, 3, H100, 500));
	json_t *pl = json_array_get(json_object_get(j, "placement"), 0);
	const char *node = GETS(pl, "node");
	r = GET(&D, fmt("/v1/nodes/%s", node));
	ck_assert_int_eq(GETI(r, "devices_free"), 5);
	json_t *devs = json_object_get(r, "devices");
	ck_assert_int_eq(json_array_size(devs), 8);
	size_t i;
	json_t *dev;
	int held = 0;
	json_array_foreach(devs, i, dev) {
		ck_assert_int_eq(GETI(dev, "index"), (json_int_t)i);
		ck_assert_str_eq(GETS(dev, "model"), H100);
		ck_assert_str_eq(GETS(dev, "health"), "ok");
		json_t *job = json_object_get(dev, "job");
		if (json_is_integer(job)) {
			ck_assert_int_eq(json_integer_value(job), GETI(j, "id"));
			ck_assert_int_eq(GETI(dev, "cap_w"), 500);
			held++;
		}
	}
	ck_assert_int_eq(held, 3);
	json_decref(r);

	r = GET(&D, "/v1/devices?state=allocated");
	ck_assert_int_eq(json_array_size(json_object_get(r, "devices")), 3);
	json_decref(r);
	r = GET(&D, "/v1/devices?state=free");
	ck_assert_int_eq(json_array_size(json_object_get(r, "devices")), 21);
	json_decref(r);
	r = GET(&D, "/v1/devices?vendor=huawei");
	ck_assert_int_eq(json_array_size(json_object_get(r, "devices")), 8);
	json_array_foreach(json_object_get(r, "devices"), i, dev) {
		ck_assert_str_eq(GETS(dev, "vendor"), "huawei");
		ck_assert(json_is_null(json_object_get(dev, "job")));
		ck_assert(json_is_null(json_object_get(dev, "cap_w")));
	}
	json_decref(r);
	r = GET(&D, "/v1/devices?node=a-n2&model=" H100);
	ck_assert_int_eq(json_array_size(json_object_get(r, "devices")), 8);
	json_decref(r);
	json_decref(REQ(&D, "GET", "/v1/nodes/no-such-node", NULL, 404));
	json_decref(j);
}
END_TEST

/* ---- placement -------------------------------------------------------------------- */

START_TEST(training_job_is_placed_and_reserves_cap_minus_idle_until_cancelled)
{
	json_t *models = model_map(&D);
	json_int_t idle = model_int(models, H100, "idle_w");
	json_t *before = DOMAINS(&D);

	json_t *j = SUBMIT(&D, fmt("{\"name\":\"pretrain\",\"kind\":\"training\",\"queue\":\"research\","
				   "\"priority\":5,\"workers\":2,\"devices\":4,"
				   "\"accelerator\":{\"models\":[\"%s\"]},\"power\":{\"cap_w\":600}}", H100));
	json_int_t id = GETI(j, "id");
	ck_assert_int_gt(id, 0);
	ck_assert_str_eq(GETS(j, "state"), "placed");
	json_t *g = get_job(&D, id);
	ck_assert_int_eq(GETI(g, "id"), id);
	ck_assert_str_eq(GETS(g, "name"), "pretrain");
	ck_assert_str_eq(GETS(g, "kind"), "training");
	ck_assert_str_eq(GETS(g, "queue"), "research");
	ck_assert_int_eq(GETI(g, "priority"), 5);
	ck_assert_int_eq(GETI(g, "workers"), 2);
	ck_assert_int_eq(GETI(g, "devices"), 4);
	ck_assert_int_eq(GETI(json_object_get(g, "power"), "cap_w"), 600);
	ck_assert_str_eq(GETS(g, "state"), "placed");
	GETS(g, "submitted_at");
	GETS(g, "placed_at");
	ck_assert(json_is_null(json_object_get(g, "finished_at")));
	ASSERT_PLACEMENT(g, 2, 4);
	ASSERT_JSON_EQ(json_object_get(j, "placement"), json_object_get(g, "placement"),
		       "placement in the 201 and in GET");
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(g, "placement"), i, w) {
		ck_assert_str_eq(GETS(w, "model"), H100);
		ck_assert_int_eq(GETI(w, "cap_w"), 600);
	}

	json_t *after = DOMAINS(&D);
	json_int_t rise = 2 * 4 * (600 - idle);
	ck_assert_int_eq(GETI(json_object_get(after, "rack-a"), "reserved_w"),
			 GETI(json_object_get(before, "rack-a"), "reserved_w") + rise);
	ck_assert_int_eq(GETI(json_object_get(after, "site"), "reserved_w"),
			 GETI(json_object_get(before, "site"), "reserved_w") + rise);
	ck_assert_int_eq(GETI(json_object_get(after, "rack-b"), "reserved_w"),
			 GETI(json_object_get(before, "rack-b"), "reserved_w"));

	json_t *c = REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)id), NULL, 200);
	ck_assert_int_eq(GETI(c, "id"), id);
	ck_assert_str_eq(GETS(c, "state"), "cancelled");
	GETS(c, "finished_at");
	json_t *restored = DOMAINS(&D);
	ASSERT_JSON_EQ(before, restored, "domains after cancel");

	struct td_response r;
	ck_assert_int_eq(td_http(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)id), NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 409);
	assert_error_body_at(__LINE__, &r, "second cancel");
	td_response_free(&r);
	json_t *still = get_job(&D, id);
	ck_assert_str_eq(GETS(still, "state"), "cancelled");

	json_decref(still);
	json_decref(restored);
	json_decref(c);
	json_decref(after);
	json_decref(g);
	json_decref(j);
	json_decref(before);
	json_decref(models);
}
END_TEST

START_TEST(inference_replicas_are_placed_each_on_one_node)
{
	json_t *j = SUBMIT(&D, "{\"name\":\"serve\",\"kind\":\"inference\",\"replicas\":3,\"devices\":2,"
			       "\"accelerator\":{\"vendors\":[\"huawei\"]}}");
	ck_assert_str_eq(GETS(j, "state"), "placed");
	ck_assert_int_eq(GETI(j, "replicas"), 3);
	ASSERT_PLACEMENT(j, 3, 2);
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(j, "placement"), i, w) {
		ck_assert_str_eq(GETS(w, "node"), "b-n1");
		ck_assert_str_eq(GETS(w, "model"), B3);
	}
	json_decref(DOMAINS(&D));
	json_decref(j);
}
END_TEST

START_TEST(gang_that_cannot_fit_stays_pending_until_a_cancel_frees_room)
{
	json_t *a = SUBMIT(&D, train_body("a", 1, 8, H100, 0));
	ck_assert_str_eq(GETS(a, "state"), "placed");
	json_t *doms_a = DOMAINS(&D);

	json_t *b = SUBMIT(&D, train_body("gang", 2, 8, H100, 0));
	ck_assert_str_eq(GETS(b, "state"), "pending");
	ck_assert_int_eq(json_array_size(json_object_get(b, "placement")), 0);
	json_int_t bid = GETI(b, "id");
	json_t *bg = get_job(&D, bid);
	ck_assert_str_eq(GETS(bg, "state"), "pending");
	ck_assert(json_is_array(json_object_get(bg, "placement")));
	ck_assert_int_eq(json_array_size(json_object_get(bg, "placement")), 0);
	ck_assert_msg(json_is_string(json_object_get(bg, "reason")), "a pending job says why");
	/* Nothing of the gang is held: the other node stays whole. */
	json_t *doms_b = DOMAINS(&D);
	ASSERT_JSON_EQ(doms_a, doms_b, "domains after a gang that did not fit");
	json_t *free8 = GET(&D, "/v1/devices?state=free&model=" H100);
	ck_assert_int_eq(json_array_size(json_object_get(free8, "devices")), 8);

	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(a, "id")), NULL, 200));
	json_t *placed = wait_state(&D, bid, "placed", 2000);
	ck_assert_str_eq(GETS(placed, "state"), "placed");
	ASSERT_PLACEMENT(placed, 2, 8);
	json_decref(DOMAINS(&D));

	json_decref(placed);
	json_decref(free8);
	json_decref(doms_a);
	json_decref(doms_b);
	json_decref(bg);
	json_decref(b);
	json_decref(a);
}
END_TEST

/* Variant 0: the rack's budget is tight; variant 1: the rack's parent's budget is. */
START_TEST(job_that_fits_by_count_but_not_by_power_stays_pending)
{
	json_t *models = model_map(&D);
	json_int_t idle = model_int(models, H100, "idle_w"), tdp = model_int(models, H100, "tdp_w");
	json_int_t min = model_int(models, H100, "min_cap_w");
	json_int_t host = 1000;
	json_int_t d = tdp - idle;      /* watts one device at full cap adds */
	json_int_t tight = host + 8 * idle + 3 * d + d / 2;
	json_int_t loose = 10 * tight;
	const char *doc = fmt(
		"{\"domains\":[{\"name\":\"pw-site\",\"budget_w\":%lld},"
		"{\"name\":\"pw-rack\",\"parent\":\"pw-site\",\"budget_w\":%lld}],"
		"\"nodes\":[{\"name\":\"pw-n1\",\"domain\":\"pw-rack\",\"host_idle_w\":%lld,"
		"\"group\":\"g\",\"devices\":[{\"model\":\"%s\",\"count\":8}]}]}",
		(long long)(_i == 0 ? loose : tight), (long long)(_i == 0 ? tight : loose),
		(long long)host, H100);
	const char *dom = _i == 0 ? "pw-rack" : "pw-site";
	json_decref(REQ(&D, "POST", "/v1/fleet", doc, 200));
	json_t *m0 = DOMAINS(&D);
	ck_assert_int_eq(RESERVED(&D, dom), host + 8 * idle);

	json_t *big = SUBMIT(&D, train_body("too-hot", 1, 4, H100, (int)tdp));
	ck_assert_str_eq(GETS(big, "state"), "pending");
	ck_assert_int_eq(json_array_size(json_object_get(big, "placement")), 0);
	json_t *m1 = DOMAINS(&D);
	ASSERT_JSON_EQ(m0, m1, "domains after a job that does not fit under power");

	json_t *three = SUBMIT(&D, train_body("three", 1, 3, H100, (int)tdp));
	ck_assert_str_eq(GETS(three, "state"), "placed");
	ck_assert_int_eq(RESERVED(&D, dom), host + 8 * idle + 3 * d);

	json_t *one = SUBMIT(&D, train_body("one-more", 1, 1, H100, (int)tdp));
	ck_assert_str_eq(GETS(one, "state"), "pending");
	ck_assert_int_eq(RESERVED(&D, dom), host + 8 * idle + 3 * d);

	json_t *low = NULL;
	if (min - idle <= d / 2) {
		low = SUBMIT(&D, train_body("low-cap", 1, 1, H100, (int)min));
		ck_assert_str_eq(GETS(low, "state"), "placed");
		ck_assert_int_eq(RESERVED(&D, dom), host + 8 * idle + 3 * d + (min - idle));
	}
	/* The pending ones are still pending, and nothing went over budget. */
	json_t *bg = get_job(&D, GETI(big, "id")), *og = get_job(&D, GETI(one, "id"));
	ck_assert_str_eq(GETS(bg, "state"), "pending");
	ck_assert_str_eq(GETS(og, "state"), "pending");
	json_decref(DOMAINS(&D));

	json_decref(bg);
	json_decref(og);
	json_decref(low);
	json_decref(one);
	json_decref(three);
	json_decref(big);
	json_decref(m0);
	json_decref(m1);
	json_decref(models);
}
END_TEST

START_TEST(idempotency_key_replay_returns_the_original_job)
{
	const char *body = train_body("idem", 1, 2, H100, 0);
	const char *k1[] = { "Idempotency-Key: key-one", NULL };
	const char *k2[] = { "Idempotency-Key: key-two", NULL };
	json_t *a = req_at(__LINE__, &D, "POST", "/v1/jobs", body, k1, 201);
	json_t *b = req_at(__LINE__, &D, "POST", "/v1/jobs", body, k1, 200);
	ck_assert_int_eq(GETI(a, "id"), GETI(b, "id"));
	ASSERT_JSON_EQ(json_object_get(a, "placement"), json_object_get(b, "placement"),
		       "placement of the replay");
	json_t *list = GET(&D, "/v1/jobs");
	ck_assert_int_eq(json_array_size(json_object_get(list, "jobs")), 1);
	json_t *c = req_at(__LINE__, &D, "POST", "/v1/jobs", body, k2, 201);
	ck_assert_int_ne(GETI(c, "id"), GETI(a, "id"));
	json_t *list2 = GET(&D, "/v1/jobs");
	ck_assert_int_eq(json_array_size(json_object_get(list2, "jobs")), 2);
	json_decref(DOMAINS(&D));
	json_decref(list);
	json_decref(list2);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}
END_TEST

START_TEST(submit_fills_in_the_documented_defaults)
{
	json_t *models = model_map(&D);
	json_t *t = SUBMIT(&D, train_body("defaults", 1, 2, H100, 0));
	ck_assert_str_eq(GETS(t, "queue"), "default");
	ck_assert_int_eq(GETI(t, "priority"), 0);
	ck_assert(json_is_false(json_object_get(t, "preemptible")));
	ck_assert_str_eq(GETS(t, "topology"), "any");
	ck_assert_str_eq(GETS(t, "state"), "placed");
	ck_assert(json_is_null(json_object_get(t, "finished_at")));
	ck_assert_int_eq(GETI(json_array_get(json_object_get(t, "placement"), 0), "cap_w"),
			 model_int(models, H100, "tdp_w"));
	struct passwd *pw = getpwuid(getuid());
	ck_assert_str_eq(GETS(t, "owner"), pw ? pw->pw_name : fmt("%u", (unsigned)getuid()));
	ck_assert_int_eq(GETI(t, "uid"), (json_int_t)getuid());
	json_t *i = SUBMIT(&D, "{\"name\":\"d-inf\",\"kind\":\"inference\",\"replicas\":1,\"devices\":1}");
	ck_assert_str_eq(GETS(i, "topology"), "spread");
	json_decref(i);
	json_decref(t);
	json_decref(models);
}
END_TEST

START_TEST(a_request_no_device_can_satisfy_yet_is_accepted_and_waits_for_the_fleet)
{
	json_t *j = SUBMIT(&D, train_body("wants-b200", 1, 4, "B200-180GB", 0));
	ck_assert_str_eq(GETS(j, "state"), "pending");
	ck_assert_int_eq(json_array_size(json_object_get(j, "placement")), 0);
	json_t *g = get_job(&D, GETI(j, "id"));
	ck_assert_msg(json_is_string(json_object_get(g, "reason")), "a pending job says why");
	json_decref(g);
	/* The fleet grows: the import makes room and the job is placed. */
	json_decref(REQ(&D, "POST", "/v1/fleet",
			"{\"nodes\":[{\"name\":\"c-n1\",\"domain\":\"rack-b\",\"host_idle_w\":1000,"
			"\"group\":\"nvl-c1\",\"devices\":[{\"model\":\"B200-180GB\",\"count\":8}]}]}", 200));
	json_t *p = wait_state(&D, GETI(j, "id"), "placed", 2000);
	ck_assert_str_eq(GETS(p, "state"), "placed");
	ck_assert_str_eq(GETS(json_array_get(json_object_get(p, "placement"), 0), "node"), "c-n1");
	json_decref(DOMAINS(&D));
	json_decref(p);
	json_decref(j);
}
END_TEST

START_TEST(freed_capacity_goes_to_the_highest_priority_then_the_oldest_pending_job)
{
	json_t *x = SUBMIT(&D, train_body("x", 1, 8, H100, 0));
	json_t *y = SUBMIT(&D, train_body("y", 1, 8, H100, 0));
	ck_assert_str_eq(GETS(x, "state"), "placed");
	ck_assert_str_eq(GETS(y, "state"), "placed");
	const char *pb = "{\"name\":\"%s\",\"kind\":\"training\",\"priority\":%d,\"workers\":1,"
			 "\"devices\":8,\"accelerator\":{\"models\":[\"" H100 "\"]}}";
	json_t *low = SUBMIT(&D, fmt(pb, "low", 1));
	json_t *high = SUBMIT(&D, fmt(pb, "high", 10));
	json_t *low2 = SUBMIT(&D, fmt(pb, "low2", 1));
	ck_assert_str_eq(GETS(low, "state"), "pending");
	ck_assert_str_eq(GETS(high, "state"), "pending");
	ck_assert_str_eq(GETS(low2, "state"), "pending");

	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(x, "id")), NULL, 200));
	json_t *h = wait_state(&D, GETI(high, "id"), "placed", 2000);
	ck_assert_str_eq(GETS(h, "state"), "placed");
	json_t *l = get_job(&D, GETI(low, "id")), *l2 = get_job(&D, GETI(low2, "id"));
	ck_assert_str_eq(GETS(l, "state"), "pending");
	ck_assert_str_eq(GETS(l2, "state"), "pending");
	json_decref(l);
	json_decref(l2);

	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(y, "id")), NULL, 200));
	l = wait_state(&D, GETI(low, "id"), "placed", 2000);
	ck_assert_str_eq(GETS(l, "state"), "placed");
	l2 = get_job(&D, GETI(low2, "id"));
	ck_assert_str_eq(GETS(l2, "state"), "pending");
	json_decref(DOMAINS(&D));

	json_decref(l);
	json_decref(l2);
	json_decref(h);
	json_decref(low);
	json_decref(low2);
	json_decref(high);
	json_decref(x);
	json_decref(y);
}
END_TEST

static void cancel(json_t *job)
{
	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(job, "id")), NULL, 200));
}

static const char *topo_body(const char *kind, int count, int devices, const char *topology)
{
	return fmt("{\"name\":\"topo\",\"kind\":\"%s\",\"%s\":%d,\"devices\":%d,\"topology\":\"%s\","
		   "\"accelerator\":{\"models\":[\"" H100 "\"]}}", kind,
		   strcmp(kind, "training") == 0 ? "workers" : "replicas", count, devices, topology);
}

START_TEST(topology_constraints_are_kept)
{
	/* spread: two replicas on two nodes */
	json_t *j = SUBMIT(&D, topo_body("inference", 2, 1, "spread"));
	ck_assert_str_eq(GETS(j, "state"), "placed");
	ASSERT_PLACEMENT(j, 2, 1);
	json_t *pl = json_object_get(j, "placement");
	ck_assert_str_ne(GETS(json_array_get(pl, 0), "node"), GETS(json_array_get(pl, 1), "node"));
	cancel(j);
	json_decref(j);

	/* same_node and same_group (one group a node here): both workers on one node */
	static const char *const same[] = { "same_node", "same_group" };
	for (int k = 0; k < 2; k++) {
		j = SUBMIT(&D, topo_body("training", 2, 4, same[k]));
		ck_assert_str_eq(GETS(j, "state"), "placed");
		ck_assert_str_eq(GETS(j, "topology"), same[k]);
		ASSERT_PLACEMENT(j, 2, 4);
		pl = json_object_get(j, "placement");
		ck_assert_str_eq(GETS(json_array_get(pl, 0), "node"), GETS(json_array_get(pl, 1), "node"));
		cancel(j);
		json_decref(j);
	}
	/* same_node that no node can hold waits, holding nothing */
	json_t *before = DOMAINS(&D);
	j = SUBMIT(&D, topo_body("training", 2, 8, "same_node"));
	ck_assert_str_eq(GETS(j, "state"), "pending");
	json_t *after = DOMAINS(&D);
	ASSERT_JSON_EQ(before, after, "domains after a same_node job that does not fit");
	cancel(j);
	json_decref(j);
	/* same_rack: the whole of rack-a */
	j = SUBMIT(&D, topo_body("training", 2, 8, "same_rack"));
	ck_assert_str_eq(GETS(j, "state"), "placed");
	ASSERT_PLACEMENT(j, 2, 8);
	json_decref(DOMAINS(&D));
	json_decref(j);
	json_decref(before);
	json_decref(after);
}
END_TEST

static const char *node_state(const char *name)
{
	json_t *n = GET(&D, fmt("/v1/nodes/%s", name));
	const char *s = fmt("%s", GETS(n, "state"));
	json_decref(n);
	return s;
}

START_TEST(drained_node_gets_no_new_jobs_until_resumed)
{
	json_t *n = REQ(&D, "POST", "/v1/nodes/a-n1/drain", NULL, 200);
	ck_assert_str_eq(GETS(n, "name"), "a-n1");
	ck_assert_str_eq(GETS(n, "state"), "drained");
	json_decref(n);
	ck_assert_str_eq(node_state("a-n1"), "drained");

	json_t *j = SUBMIT(&D, train_body("avoid", 1, 8, H100, 0));
	ck_assert_str_eq(GETS(j, "state"), "placed");
	ck_assert_str_eq(GETS(json_array_get(json_object_get(j, "placement"), 0), "node"), "a-n2");

	/* a-n2 holds a job: draining until it is released. */
	n = REQ(&D, "POST", "/v1/nodes/a-n2/drain", NULL, 200);
	ck_assert_str_eq(GETS(n, "state"), "draining");
	json_decref(n);
	json_t *k = SUBMIT(&D, train_body("waits", 1, 1, H100, 0));
	ck_assert_str_eq(GETS(k, "state"), "pending");
	json_t *list = GET(&D, "/v1/nodes?state=draining");
	ck_assert_int_eq(json_array_size(json_object_get(list, "nodes")), 1);
	json_decref(list);

	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(j, "id")), NULL, 200));
	ck_assert_str_eq(node_state("a-n2"), "drained");
	json_t *still = get_job(&D, GETI(k, "id"));
	ck_assert_str_eq(GETS(still, "state"), "pending");

	n = REQ(&D, "POST", "/v1/nodes/a-n1/resume", NULL, 200);
	ck_assert_str_eq(GETS(n, "state"), "up");
	json_decref(n);
	json_t *placed = wait_state(&D, GETI(k, "id"), "placed", 2000);
	ck_assert_str_eq(GETS(placed, "state"), "placed");
	ck_assert_str_eq(GETS(json_array_get(json_object_get(placed, "placement"), 0), "node"), "a-n1");
	json_decref(REQ(&D, "POST", "/v1/nodes/a-n2/resume", NULL, 200));
	ck_assert_str_eq(node_state("a-n2"), "up");
	json_decref(REQ(&D, "POST", "/v1/nodes/no-such-node/drain", NULL, 404));

	json_decref(placed);
	json_decref(still);
	json_decref(k);
	json_decref(j);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------- */

enum { PLAIN, BIG_BODY, BIG_HEADERS };

static const struct bad_case {
	const char *what;
	const char *method, *path, *body;
	int special;
	long status, status_alt;    /* alt 0: none */
	const char *field;          /* NULL: not checked */
	const char *msg_has[2];     /* case-insensitive substrings of the message */
} bad_cases[] = {
	{ "malformed JSON", "POST", "/v1/jobs", "{\"name\": \"x\",\n \"kind\": }", PLAIN,
	  400, 0, NULL, { "line", "col" } },
	{ "body not an object", "POST", "/v1/jobs", "[1, 2, 3]", PLAIN, 400, 422, NULL, { 0 } },
	{ "missing name", "POST", "/v1/jobs",
	  "{\"kind\":\"training\",\"workers\":1,\"devices\":1}", PLAIN, 422, 0, "name", { 0 } },
	{ "devices 0", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":0}", PLAIN,
	  422, 0, "devices", { 0 } },
	{ "devices 65", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":65}", PLAIN,
	  422, 0, "devices", { 0 } },
	{ "unknown model", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"accelerator\":{\"models\":[\"NoSuchGPU-1\"]}}", PLAIN,
	  422, 0, "accelerator.models[0]", { 0 } },
	{ "cap_w out of range", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,"
	  "\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]},\"power\":{\"cap_w\":5000}}", PLAIN,
	  422, 0, "power.cap_w", { 0 } },
	{ "unknown top-level field", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"colour\":\"blue\"}",
	  PLAIN, 422, 0, "colour", { 0 } },
	{ "workers on an inference job", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"inference\",\"replicas\":1,\"workers\":1,\"devices\":1}",
	  PLAIN, 422, 0, "workers", { 0 } },
	{ "kind missing", "POST", "/v1/jobs", "{\"name\":\"x\",\"workers\":1,\"devices\":1}",
	  PLAIN, 422, 0, "kind", { 0 } },
	{ "devices of the wrong type", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":\"8\"}", PLAIN,
	  422, 0, "devices", { 0 } },
	{ "fleet: unknown parent", "POST", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"new-rack\",\"parent\":\"site\",\"budget_w\":1000},"
	  "{\"name\":\"orphan\",\"parent\":\"nowhere\",\"budget_w\":10}]}", PLAIN,
	  422, 0, "domains[1].parent", { 0 } },
	{ "fleet: node with an unknown model", "POST", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"x-n1\",\"domain\":\"rack-a\",\"host_idle_w\":100,"
	  "\"devices\":[{\"model\":\"NoSuchGPU-1\",\"count\":1}]}]}", PLAIN,
	  422, 0, "nodes[0].devices[0].model", { 0 } },
	{ "fleet: budget below the reserved load", "POST", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"rack-a\",\"parent\":\"site\",\"budget_w\":100}]}", PLAIN,
	  409, 0, NULL, { 0 } },
	{ "fleet: a domain's parent changes", "POST", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"other-site\",\"budget_w\":100000},"
	  "{\"name\":\"rack-b\",\"parent\":\"other-site\",\"budget_w\":30000}]}", PLAIN,
	  409, 0, NULL, { 0 } },
	{ "name of 128 characters", "POST", "/v1/jobs",
	  "{\"name\":\"" "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
	  "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" "\","
	  "\"kind\":\"training\",\"workers\":1,\"devices\":1}", PLAIN, 422, 0, "name", { 0 } },
	{ "priority out of range", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"priority\":1000001}",
	  PLAIN, 422, 0, "priority", { 0 } },
	{ "unknown topology", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"topology\":\"nearby\"}",
	  PLAIN, 422, 0, "topology", { 0 } },
	{ "replicas on a training job", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"replicas\":1,\"devices\":1}",
	  PLAIN, 422, 0, "replicas", { 0 } },
	{ "queue with a space", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"queue\":\"a b\"}",
	  PLAIN, 422, 0, "queue", { 0 } },
	{ "accelerator not an object", "POST", "/v1/jobs",
	  "{\"name\":\"x\",\"kind\":\"training\",\"workers\":1,\"devices\":1,\"accelerator\":[]}",
	  PLAIN, 422, 0, "accelerator", { 0 } },
	{ "empty body", "POST", "/v1/jobs", "", PLAIN, 400, 0, NULL, { 0 } },
	{ "fleet: malformed JSON", "POST", "/v1/fleet", "{\"domains\": [", PLAIN, 400, 0, NULL,
	  { "line", "col" } },
	{ "fleet: model with min_cap_w above tdp_w", "POST", "/v1/fleet",
	  "{\"models\":[{\"name\":\"BAD-1\",\"vendor\":\"nvidia\",\"memory_gib\":8,"
	  "\"bandwidth_gbs\":100,\"bf16_tflops\":10,\"fp8_tflops\":0,\"tdp_w\":100,"
	  "\"min_cap_w\":200,\"idle_w\":10,\"stack\":\"cuda\"}]}", PLAIN,
	  422, 0, "models[0].*", { 0 } },
	{ "fleet: negative budget", "POST", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"neg\",\"budget_w\":-1}]}", PLAIN,
	  422, 0, "domains[0].budget_w", { 0 } },
	{ "fleet: node in an unknown domain", "POST", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"x-n1\",\"domain\":\"nowhere\",\"host_idle_w\":100,"
	  "\"devices\":[{\"model\":\"L40S\",\"count\":1}]}]}", PLAIN,
	  422, 0, "nodes[0].domain", { 0 } },
	{ "fleet: 65 devices on a node", "POST", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"x-n1\",\"domain\":\"rack-b\",\"host_idle_w\":100,"
	  "\"devices\":[{\"model\":\"L40S\",\"count\":65}]}]}", PLAIN,
	  422, 0, "nodes[0].devices*", { 0 } },
	{ "fleet: a cycle of domains", "POST", "/v1/fleet",
	  "{\"domains\":[{\"name\":\"c1\",\"parent\":\"c2\",\"budget_w\":1000},"
	  "{\"name\":\"c2\",\"parent\":\"c1\",\"budget_w\":1000}]}", PLAIN,
	  422, 409, NULL, { 0 } },
	{ "fleet: the devices of nodes holding a job change", "POST", "/v1/fleet",
	  "{\"nodes\":[{\"name\":\"a-n1\",\"domain\":\"rack-a\",\"host_idle_w\":1500,"
	  "\"group\":\"nvl-a1\",\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":4}]},"
	  "{\"name\":\"a-n2\",\"domain\":\"rack-a\",\"host_idle_w\":1500,"
	  "\"group\":\"nvl-a2\",\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":4}]}]}",
	  PLAIN, 409, 0, NULL, { 0 } },
	{ "after not a number", "GET", "/v1/jobs?after=abc", NULL, PLAIN, 422, 400, "after", { 0 } },
	{ "unknown route", "GET", "/v1/no-such-thing", NULL, PLAIN, 404, 0, NULL, { 0 } },
	{ "unknown version", "GET", "/v2/health", NULL, PLAIN, 404, 0, NULL, { 0 } },
	{ "wrong method", "PUT", "/v1/jobs", "{}", PLAIN, 405, 0, NULL, { 0 } },
	{ "wrong method on a job", "POST", "/v1/jobs/1", "{}", PLAIN, 405, 0, NULL, { 0 } },
	{ "body over 1 MiB", "POST", "/v1/jobs", NULL, BIG_BODY, 413, 0, NULL, { 0 } },
	{ "headers over 16 KiB", "GET", "/v1/health", NULL, BIG_HEADERS, 431, 0, NULL, { 0 } },
	{ "no such job", "GET", "/v1/jobs/999999", NULL, PLAIN, 404, 0, NULL, { 0 } },
	{ "cancel no such job", "DELETE", "/v1/jobs/999999", NULL, PLAIN, 404, 0, NULL, { 0 } },
	{ "limit 0", "GET", "/v1/jobs?limit=0", NULL, PLAIN, 422, 400, "limit", { 0 } },
	{ "limit 1001", "GET", "/v1/jobs?limit=1001", NULL, PLAIN, 422, 400, "limit", { 0 } },
	{ "unknown state filter", "GET", "/v1/jobs?state=sleeping", NULL, PLAIN, 422, 400,
	  "state", { 0 } },
};

static json_t *snapshot(void)
{
	json_t *s = json_object();
	json_object_set_new(s, "jobs", GET(&D, "/v1/jobs?limit=1000"));
	json_object_set_new(s, "fleet", GET(&D, "/v1/fleet"));
	json_object_set_new(s, "domains", GET(&D, "/v1/domains"));
	return s;
}

START_TEST(bad_request_gets_its_status_and_error_body_and_changes_nothing)
{
	const struct bad_case *c = &bad_cases[_i];
	/* Some state to keep: one placed job, one pending. */
	json_decref(SUBMIT(&D, train_body("keep-placed", 1, 8, H100, 0)));
	json_decref(SUBMIT(&D, train_body("keep-pending", 3, 8, H100, 0)));
	json_t *before = snapshot();

	struct td_response r;
	int rc;
	if (c->special == BIG_BODY) {
		size_t n = (1u << 20) + 4096;
		char *big = malloc(n + 1);
		ck_assert(big);
		memset(big, ' ', n);
		memcpy(big, "{\"name\":\"", 9);
		memset(big + 9, 'a', n - 9 - 2);
		memcpy(big + n - 2, "\"}", 2);
		big[n] = '\0';
		/* As curl(1) does for big bodies: wait for the server's word before sending
		 * the body, so the early 413 is read rather than lost to a reset connection. */
		const char *hdrs[] = { "Expect: 100-continue", NULL };
		rc = td_http_n(&D, c->method, c->path, big, n, hdrs, &r);
		free(big);
	} else if (c->special == BIG_HEADERS) {
		size_t n = 17 * 1024;
		char *h = malloc(n + 16);
		ck_assert(h);
		strcpy(h, "X-Padding: ");
		memset(h + 11, 'p', n);
		h[11 + n] = '\0';
		const char *hdrs[] = { h, NULL };
		rc = td_http(&D, c->method, c->path, NULL, hdrs, &r);
		free(h);
	} else {
		rc = td_http(&D, c->method, c->path, c->body, NULL, &r);
	}
	ck_assert_msg(rc == 0, "%s: no HTTP answer (%d)", c->what, rc);
	ck_assert_msg(r.status == c->status || (c->status_alt && r.status == c->status_alt),
		      "%s: %s %s: want %ld%s, got %ld: %.500s", c->what, c->method, c->path,
		      c->status, c->status_alt ? " (or the alternative)" : "", r.status, r.raw);
	assert_error_body_at(__LINE__, &r, c->what);
	json_t *e = json_object_get(r.json, "error");
	if (c->field) {
		/* "x*" : any field starting with x */
		json_t *f = json_object_get(e, "field");
		size_t n = strlen(c->field);
		bool prefix = c->field[n - 1] == '*';
		ck_assert_msg(json_is_string(f) &&
			      (prefix ? strncmp(json_string_value(f), c->field, n - 1) == 0
				      : strcmp(json_string_value(f), c->field) == 0),
			      "%s: want field \"%s\": %.500s", c->what, c->field, r.raw);
	}
	const char *msg = json_string_value(json_object_get(e, "message"));
	for (int k = 0; k < 2; k++)
		if (c->msg_has[k])
			ck_assert_msg(strcasestr(msg, c->msg_has[k]) != NULL,
				      "%s: message should mention \"%s\": %s", c->what, c->msg_has[k],
				      msg);
	td_response_free(&r);

	/* Still alive, and nothing changed. */
	json_t *after = snapshot();
	ASSERT_JSON_EQ(before, after, c->what);
	json_decref(before);
	json_decref(after);
}
END_TEST

START_TEST(method_not_allowed_lists_the_allowed_methods)
{
	struct td_response r;
	char allow[256];
	ck_assert_int_eq(td_http(&D, "PUT", "/v1/jobs", "{}", NULL, &r), 0);
	ck_assert_int_eq(r.status, 405);
	ck_assert_msg(td_response_header(&r, "Allow", allow, sizeof allow) == 0, "no Allow header");
	ck_assert_msg(strstr(allow, "GET") && strstr(allow, "POST"), "Allow: %s", allow);
	td_response_free(&r);
	ck_assert_int_eq(td_http(&D, "DELETE", "/v1/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 405);
	ck_assert_msg(td_response_header(&r, "Allow", allow, sizeof allow) == 0, "no Allow header");
	ck_assert_msg(strstr(allow, "GET") && !strstr(allow, "DELETE"), "Allow: %s", allow);
	td_response_free(&r);
}
END_TEST

/* ---- listing ---------------------------------------------------------------------- */

/* 10 jobs of every state, kind and queue the tests filter on. Returns their ids. */
static void make_mixed_jobs(json_int_t ids[10])
{
	const char *bodies[10] = {
		"{\"name\":\"t0\",\"kind\":\"training\",\"queue\":\"alpha\",\"workers\":1,\"devices\":8,"
		"\"accelerator\":{\"models\":[\"" H100 "\"]}}",
		"{\"name\":\"t1\",\"kind\":\"training\",\"queue\":\"alpha\",\"workers\":1,\"devices\":8,"
		"\"accelerator\":{\"models\":[\"" H100 "\"]}}",
		"{\"name\":\"t2\",\"kind\":\"training\",\"queue\":\"alpha\",\"workers\":1,\"devices\":8,"
		"\"accelerator\":{\"models\":[\"" H100 "\"]}}",
		"{\"name\":\"i3\",\"kind\":\"inference\",\"queue\":\"beta\",\"replicas\":2,\"devices\":1,"
		"\"accelerator\":{\"models\":[\"" B3 "\"]}}",
		"{\"name\":\"i4\",\"kind\":\"inference\",\"queue\":\"beta\",\"replicas\":2,\"devices\":1,"
		"\"accelerator\":{\"models\":[\"" B3 "\"]}}",
		"{\"name\":\"i5\",\"kind\":\"inference\",\"queue\":\"beta\",\"replicas\":1,\"devices\":1,"
		"\"accelerator\":{\"models\":[\"" B3 "\"]}}",
		"{\"name\":\"t6\",\"kind\":\"training\",\"queue\":\"beta\",\"workers\":2,\"devices\":8,"
		"\"accelerator\":{\"models\":[\"" H100 "\"]}}",
		"{\"name\":\"t7\",\"kind\":\"training\",\"queue\":\"beta\",\"workers\":1,\"devices\":4,"
		"\"accelerator\":{\"models\":[\"" H100 "\"]}}",
		"{\"name\":\"i8\",\"kind\":\"inference\",\"queue\":\"alpha\",\"replicas\":1,\"devices\":2,"
		"\"accelerator\":{\"models\":[\"" B3 "\"]}}",
		"{\"name\":\"i9\",\"kind\":\"inference\",\"queue\":\"alpha\",\"replicas\":1,\"devices\":1,"
		"\"accelerator\":{\"models\":[\"" B3 "\"]}}",
	};
	for (int i = 0; i < 10; i++) {
		json_t *j = SUBMIT(&D, bodies[i]);
		ids[i] = GETI(j, "id");
		json_decref(j);
	}
	/* t0, t1 placed; t2, t6, t7 pending (no H100 left); cancel i4. */
	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)ids[4]), NULL, 200));
}

/* ids of a list answer, checking that `next` is null (all on one page). */
static json_t *list_ids(const char *query)
{
	json_t *r = GET(&D, fmt("/v1/jobs?limit=1000%s%s", *query ? "&" : "", query));
	json_t *ids = json_array();
	size_t i;
	json_t *j;
	json_array_foreach(json_object_get(r, "jobs"), i, j)
		json_array_append_new(ids, json_integer(GETI(j, "id")));
	ck_assert_msg(json_is_null(json_object_get(r, "next")), "%s: next should be null", query);
	json_decref(r);
	return ids;
}

/* ids of `all` whose key equals value */
static json_t *expect_ids(json_t *all, const char *key, const char *value)
{
	json_t *ids = json_array();
	size_t i;
	json_t *j;
	json_array_foreach(json_object_get(all, "jobs"), i, j) {
		json_t *v = json_object_get(j, key);
		if (json_is_string(v) && strcmp(json_string_value(v), value) == 0)
			json_array_append_new(ids, json_integer(GETI(j, "id")));
	}
	return ids;
}

START_TEST(job_list_filters_by_state_kind_queue_and_owner)
{
	json_int_t ids[10];
	make_mixed_jobs(ids);
	json_t *all = GET(&D, "/v1/jobs?limit=1000");
	ck_assert_int_eq(json_array_size(json_object_get(all, "jobs")), 10);

	const char *me = NULL;
	struct passwd *pw = getpwuid(getuid());
	me = pw ? pw->pw_name : fmt("%u", (unsigned)getuid());
	json_t *first = json_array_get(json_object_get(all, "jobs"), 0);
	ck_assert_str_eq(GETS(first, "owner"), me);
	ck_assert_int_eq(GETI(first, "uid"), (json_int_t)getuid());

	static const struct { const char *key, *value; size_t count; } filters[] = {
		{ "state", "placed", 6 }, { "state", "pending", 3 }, { "state", "cancelled", 1 },
		{ "kind", "training", 5 }, { "kind", "inference", 5 },
		{ "queue", "alpha", 5 }, { "queue", "beta", 5 },
	};
	for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
		json_t *want = expect_ids(all, filters[f].key, filters[f].value);
		json_t *got = list_ids(fmt("%s=%s", filters[f].key, filters[f].value));
		ck_assert_msg(json_array_size(want) == filters[f].count,
			      "%s=%s: the fixture has %zu such jobs, want %zu", filters[f].key,
			      filters[f].value, json_array_size(want), filters[f].count);
		ASSERT_JSON_EQ(want, got, fmt("jobs with %s=%s", filters[f].key, filters[f].value));
		json_decref(want);
		json_decref(got);
	}
	json_t *mine = list_ids(fmt("owner=%s", me));
	ck_assert_int_eq(json_array_size(mine), 10);
	json_t *none = list_ids("owner=no-such-user-xyz");
	ck_assert_int_eq(json_array_size(none), 0);
	json_t *both = list_ids("kind=training&queue=beta");
	ck_assert_int_eq(json_array_size(both), 2);
	ck_assert_int_eq(json_integer_value(json_array_get(both, 0)), ids[6]);
	ck_assert_int_eq(json_integer_value(json_array_get(both, 1)), ids[7]);

	json_decref(both);
	json_decref(mine);
	json_decref(none);
	json_decref(all);
}
END_TEST

/* Follow `next` from page to page; every job exactly once, ids ascending. */
static void walk_pages(const char *filter, int limit, json_t *want)
{
	json_t *seen = json_array();
	char after[64] = "";
	for (int pages = 0;; pages++) {
		ck_assert_msg(pages <= 100, "paging does not end");
		json_t *r = GET(&D, fmt("/v1/jobs?limit=%d%s%s%s", limit, after, *filter ? "&" : "",
					filter));
		json_t *jobs = json_object_get(r, "jobs"), *next = json_object_get(r, "next");
		ck_assert_msg(json_array_size(jobs) <= (size_t)limit, "page over the limit");
		size_t i;
		json_t *j;
		json_array_foreach(jobs, i, j)
			json_array_append_new(seen, json_integer(GETI(j, "id")));
		ck_assert_msg(next != NULL && (json_is_null(next) || json_is_integer(next)),
			      "next must be an id or null");
		if (json_is_null(next)) {
			json_decref(r);
			break;
		}
		ck_assert_msg(json_array_size(jobs) > 0, "an empty page with a next cursor");
		ck_assert_int_eq(json_integer_value(next),
				 GETI(json_array_get(jobs, json_array_size(jobs) - 1), "id"));
		snprintf(after, sizeof after, "&after=%lld", (long long)json_integer_value(next));
		json_decref(r);
	}
	ASSERT_JSON_EQ(want, seen, fmt("ids visited by paging %s limit %d", filter, limit));
	json_decref(seen);
}

START_TEST(paging_with_limit_and_after_visits_every_job_once)
{
	json_int_t ids[10];
	make_mixed_jobs(ids);
	json_t *all = json_array();
	for (int i = 0; i < 10; i++) {
		if (i)
			ck_assert_int_gt(ids[i], ids[i - 1]);
		json_array_append_new(all, json_integer(ids[i]));
	}
	walk_pages("", 1, all);
	walk_pages("", 3, all);
	walk_pages("", 10, all);
	walk_pages("", 100, all);
	json_t *placed = list_ids("state=placed");
	walk_pages("state=placed", 4, placed);
	json_t *r = GET(&D, fmt("/v1/jobs?after=%lld", (long long)ids[9]));
	ck_assert_int_eq(json_array_size(json_object_get(r, "jobs")), 0);
	ck_assert(json_is_null(json_object_get(r, "next")));
	json_decref(r);
	r = GET(&D, "/v1/jobs");
	ck_assert_int_eq(json_array_size(json_object_get(r, "jobs")), 10);
	json_decref(r);
	json_decref(placed);
	json_decref(all);
}
END_TEST

/* ---- lifecycle -------------------------------------------------------------------- */

static json_t *state_of_everything(void)
{
	json_t *s = json_object();
	json_object_set_new(s, "fleet", GET(&D, "/v1/fleet"));
	json_object_set_new(s, "domains", GET(&D, "/v1/domains"));
	json_object_set_new(s, "nodes", GET(&D, "/v1/nodes"));
	json_object_set_new(s, "devices", GET(&D, "/v1/devices"));
	return s;
}

static void assert_same_jobs(json_t *jobs_before)
{
	size_t i;
	json_t *b;
	json_array_foreach(jobs_before, i, b) {
		json_int_t id = GETI(b, "id");
		json_t *a = get_job(&D, id);
		ck_assert_int_eq(GETI(a, "id"), id);
		ck_assert_msg(strcmp(GETS(a, "state"), GETS(b, "state")) == 0,
			      "job %lld was %s, is %s after restart", (long long)id, GETS(b, "state"),
			      GETS(a, "state"));
		ASSERT_JSON_EQ(json_object_get(b, "placement"), json_object_get(a, "placement"),
			       fmt("placement of job %lld after restart", (long long)id));
		ck_assert_str_eq(GETS(a, "name"), GETS(b, "name"));
		json_decref(a);
	}
}

START_TEST(acknowledged_jobs_survive_kill_9_and_restart)
{
	json_t *acked = json_array();
	json_array_append_new(acked, SUBMIT(&D, train_body("p1", 1, 8, H100, 650)));
	json_array_append_new(acked, SUBMIT(&D, "{\"name\":\"p2\",\"kind\":\"inference\",\"replicas\":2,"
						"\"devices\":1,\"accelerator\":{\"models\":[\"" B3 "\"]}}"));
	json_array_append_new(acked, SUBMIT(&D, train_body("q", 2, 8, H100, 0)));
	json_t *c = SUBMIT(&D, train_body("c", 1, 2, H100, 0));
	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)GETI(c, "id")), NULL, 200));
	json_decref(c);
	json_t *last = SUBMIT(&D, train_body("last", 1, 4, H100, 300));
	json_int_t last_id = GETI(last, "id");
	json_array_append_new(acked, last);
	/* Killed right after the last 201: no time for anything unacknowledged to settle. */
	ck_assert_int_eq(td_kill9(&D), 0);

	/* Every job as its 201 said, plus the cancel as its 200 said. */
	ck_assert_int_eq(td_restart(&D), 0);
	json_t *all = GET(&D, "/v1/jobs?limit=1000");
	ck_assert_int_eq(json_array_size(json_object_get(all, "jobs")), 5);
	assert_same_jobs(acked);
	json_t *cg = get_job(&D, GETI(json_array_get(acked, 2), "id") + 1);
	ck_assert_str_eq(GETS(cg, "state"), "cancelled");
	json_decref(cg);

	/* Now the whole picture survives a second kill -9 and a clean restart. */
	json_t *jobs = json_incref(json_object_get(all, "jobs"));
	json_t *before = state_of_everything();
	ck_assert_int_eq(td_kill9(&D), 0);
	ck_assert_int_eq(td_restart(&D), 0);
	json_t *after = state_of_everything();
	ASSERT_JSON_EQ(json_object_get(before, "fleet"), json_object_get(after, "fleet"), "fleet export");
	ASSERT_JSON_EQ(json_object_get(before, "domains"), json_object_get(after, "domains"),
		       "domains (reserved_w)");
	ASSERT_JSON_EQ(json_object_get(before, "nodes"), json_object_get(after, "nodes"), "nodes");
	ASSERT_JSON_EQ(json_object_get(before, "devices"), json_object_get(after, "devices"), "devices");
	assert_same_jobs(jobs);
	json_decref(after);

	int st;
	ck_assert_int_eq(td_stop(&D, &st), 0);
	ck_assert_int_eq(td_restart(&D), 0);
	after = state_of_everything();
	ASSERT_JSON_EQ(before, after, "everything after SIGTERM and restart");
	assert_same_jobs(jobs);
	json_decref(DOMAINS(&D));

	/* Ids are never reused. */
	json_t *n = SUBMIT(&D, train_body("new", 1, 1, B3, 0));
	ck_assert_int_gt(GETI(n, "id"), last_id);
	json_decref(n);

	json_decref(after);
	json_decref(before);
	json_decref(jobs);
	json_decref(all);
	json_decref(acked);
}
END_TEST

START_TEST(concurrent_acknowledged_submits_all_survive_kill_9)
{
	enum { CLIENTS = 8, EACH = 10 };
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t kids[CLIENTS];
	for (int c = 0; c < CLIENTS; c++) {
		fflush(NULL);
		kids[c] = fork();
		ck_assert_int_ge(kids[c], 0);
		if (kids[c] == 0) {
			/* A client of its own: its own connection, no assertions, _exit. */
			close(pfd[0]);
			struct td_daemon mine = D;
			mine.curl = NULL;
			for (int k = 0; k < EACH; k++) {
				char body[256];
				snprintf(body, sizeof body,
					 "{\"name\":\"c%d-%d\",\"kind\":\"training\",\"workers\":1,\"devices\":1}",
					 c, k);
				struct td_response r;
				if (td_http(&mine, "POST", "/v1/jobs", body, NULL, &r) == 0 && r.status == 201) {
					int64_t id = json_integer_value(json_object_get(r.json, "id"));
					if (write(pfd[1], &id, sizeof id) != sizeof id)
						_exit(2);
				}
				td_response_free(&r);
			}
			_exit(0);
		}
	}
	close(pfd[1]);
	json_t *acked = json_object();
	int64_t id;
	while (read(pfd[0], &id, sizeof id) == sizeof id)
		json_object_set_new(acked, fmt("%lld", (long long)id), json_true());
	close(pfd[0]);
	for (int c = 0; c < CLIENTS; c++) {
		int st;
		waitpid(kids[c], &st, 0);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client %d failed", c);
	}
	ck_assert_int_eq(json_object_size(acked), CLIENTS * EACH);

	ck_assert_int_eq(td_kill9(&D), 0);
	ck_assert_int_eq(td_restart(&D), 0);
	json_t *all = GET(&D, "/v1/jobs?limit=1000");
	json_t *jobs = json_object_get(all, "jobs");
	ck_assert_int_eq(json_array_size(jobs), CLIENTS * EACH);
	size_t i;
	json_t *j;
	size_t placed = 0;
	json_array_foreach(jobs, i, j) {
		ck_assert_msg(json_object_get(acked, fmt("%lld", (long long)GETI(j, "id"))),
			      "job %lld was never acknowledged", (long long)GETI(j, "id"));
		if (strcmp(GETS(j, "state"), "placed") == 0)
			placed++;
	}
	/* 24 devices, one a job: the first 24 placed, the rest waiting; devices agree. */
	ck_assert_int_eq(placed, 24);
	json_t *alloc = GET(&D, "/v1/devices?state=allocated");
	ck_assert_int_eq(json_array_size(json_object_get(alloc, "devices")), placed);
	json_decref(DOMAINS(&D));
	json_decref(alloc);
	json_decref(all);
	json_decref(acked);
}
END_TEST

START_TEST(a_job_is_cancelled_only_by_its_owner_or_root)
{
	if (getuid() != 0)
		return;     /* needs root to act as another user */
	ck_assert_int_eq(chmod(D.dir, 0711), 0);
	json_t *mine = SUBMIT(&D, train_body("roots", 1, 1, H100, 0));
	json_int_t root_job = GETI(mine, "id");
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(9);
		struct td_daemon other = D;
		other.curl = NULL;
		struct td_response r;
		char path[64];
		snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)root_job);
		if (td_http(&other, "DELETE", path, NULL, NULL, &r) < 0 || r.status != 403)
			_exit(10);
		const char *code =
			json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
		if (!code || strcmp(code, "permission_denied") != 0)
			_exit(11);
		td_response_free(&r);
		/* Its own job it may cancel; a second one it leaves for root. */
		for (int k = 0; k < 2; k++) {
			if (td_http(&other, "POST", "/v1/jobs",
				    "{\"name\":\"nobodys\",\"kind\":\"training\",\"workers\":1,\"devices\":1}",
				    NULL, &r) < 0 || r.status != 201)
				_exit(12);
			int64_t id = json_integer_value(json_object_get(r.json, "id"));
			if (json_integer_value(json_object_get(r.json, "uid")) != 65534)
				_exit(13);
			td_response_free(&r);
			if (k == 0) {
				snprintf(path, sizeof path, "/v1/jobs/%lld", (long long)id);
				if (td_http(&other, "DELETE", path, NULL, NULL, &r) < 0 || r.status != 200)
					_exit(14);
				td_response_free(&r);
			} else if (write(pfd[1], &id, sizeof id) != sizeof id) {
				_exit(15);
			}
		}
		_exit(0);
	}
	close(pfd[1]);
	int64_t theirs = 0;
	ck_assert_int_eq(read(pfd[0], &theirs, sizeof theirs), sizeof theirs);
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the other user's client failed at step %d (10: cancel of root's job was not 403, "
		      "11: code not permission_denied, 12-14: own submit/cancel)", WEXITSTATUS(st));
	json_t *still = get_job(&D, root_job);
	ck_assert_str_eq(GETS(still, "state"), "placed");
	json_t *t = get_job(&D, theirs);
	ck_assert_str_ne(GETS(t, "owner"), "root");
	json_decref(REQ(&D, "DELETE", fmt("/v1/jobs/%lld", (long long)theirs), NULL, 200));
	json_decref(t);
	json_decref(still);
	json_decref(mine);
}
END_TEST

START_TEST(sigterm_exits_0_and_removes_the_socket)
{
	struct stat st;
	ck_assert_int_eq(stat(D.sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	int status = -1;
	ck_assert_int_eq(td_stop(&D, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "jouled after SIGTERM: status 0x%x (log %s)", status, D.log);
	ck_assert_msg(stat(D.sock, &st) < 0 && errno == ENOENT, "socket file left behind");
}
END_TEST

START_TEST(second_daemon_on_a_live_socket_refuses_to_start)
{
	char db2[256], log2[256];
	snprintf(db2, sizeof db2, "%s/second.db", D.dir);
	snprintf(log2, sizeof log2, "%s/second.log", D.dir);
	/* Same socket, its own db: only the socket is in the way. */
	struct td_daemon other = D;
	other.curl = NULL;
	snprintf(other.db, sizeof other.db, "%s", db2);
	pid_t pid;
	ck_assert_int_eq(td_spawn(&other, NULL, log2, &pid), 0);
	int status = 0;
	int rc = td_wait_pid(pid, 10000, &status);
	if (rc == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ck_assert_msg(rc == 0, "a second daemon on a live socket kept running");
	ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
		      "a second daemon on a live socket exited 0");
	char *log = NULL;
	ck_assert_int_eq(td_read_file(log2, &log, NULL), 0);
	ck_assert_msg(strcasestr(log, "another daemon") || strstr(log, D.sock),
		      "the refusal should say why (another daemon on %s): %s", D.sock, log);
	free(log);
	/* The first daemon and its socket are untouched. */
	struct stat st;
	ck_assert_msg(stat(D.sock, &st) == 0, "the second daemon removed the live socket");
	json_decref(GET(&D, "/v1/health"));
}
END_TEST

START_TEST(stale_socket_left_by_kill_9_is_replaced_on_restart)
{
	struct stat st;
	ck_assert_int_eq(td_kill9(&D), 0);
	ck_assert_msg(stat(D.sock, &st) == 0, "kill -9 should leave the socket file behind");
	ck_assert_int_eq(td_restart(&D), 0);
	json_t *h = GET(&D, "/v1/health");
	ck_assert_str_eq(GETS(h, "status"), "ok");
	json_decref(h);
}
END_TEST

/* ---- http ------------------------------------------------------------------------- */

START_TEST(two_requests_share_one_keep_alive_connection)
{
	struct td_response r;
	ck_assert_int_eq(td_http(&D, "GET", "/v1/health", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.connects, 1);
	td_response_free(&r);
	ck_assert_int_eq(td_http(&D, "GET", "/v1/models", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(r.connects == 0, "the second request opened a new connection");
	td_response_free(&r);
	/* An error answer keeps the connection too. */
	ck_assert_int_eq(td_http(&D, "GET", "/v1/jobs/424242", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 404);
	td_response_free(&r);
	ck_assert_int_eq(td_http(&D, "POST", "/v1/jobs", "{\"name\":\"x\"}", NULL, &r), 0);
	ck_assert_int_eq(r.status, 422);
	ck_assert_msg(r.connects == 0, "a connection was not kept after an error");
	td_response_free(&r);
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_order)
{
	const char req[] =
		"GET /v1/no-such-thing HTTP/1.1\r\nHost: x\r\n\r\n"
		"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, req, sizeof req - 1, 5000, &out, NULL), 0);
	const char *a = strstr(out, "HTTP/1.1 404");
	const char *b = strstr(out, "HTTP/1.1 200");
	ck_assert_msg(a && b && a < b, "want a 404 then a 200, got: %.800s", out);
	ck_assert_msg(strstr(b, "\"ok\""), "the health answer: %.800s", b);
	free(out);
}
END_TEST

START_TEST(content_length_over_the_limit_is_refused_before_the_body)
{
	const char req[] = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			   "Content-Length: 2000000\r\n\r\n{\"name\":";
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, req, sizeof req - 1, 5000, &out, NULL), 0);
	ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0, "want 413 at once, got: %.500s", out);
	ck_assert_msg(strstr(out, "payload_too_large"), "error code: %.500s", out);
	free(out);
	json_decref(GET(&D, "/v1/health"));
}
END_TEST

/* ---- limits ----------------------------------------------------------------------- */

static void setup_none(void)
{
	memset(&D, 0, sizeof D);
}

/* Read one whole response (headers + Content-Length body) from fd; malloc'd text. */
static char *read_response(int fd, int timeout_ms)
{
	size_t cap = 65536, len = 0;
	char *buf = calloc(1, cap);
	ck_assert(buf);
	for (int waited = 0; waited < timeout_ms;) {
		char *end = strstr(buf, "\r\n\r\n");
		if (end) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
			if (len >= (size_t)(end + 4 - buf) + body)
				break;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0) {
			waited += 50;
			continue;
		}
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return buf;
}

static const char health_req[] = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";

START_TEST(a_connection_over_the_limit_gets_503_and_is_closed)
{
	ck_assert_int_eq(td_start_args(&D, (const char *const[]){ "--max-connections", "2", NULL }), 0);
	td_sleep_ms(200);   /* let the daemon see the readiness probe's connections close */
	int fd[2];
	for (int k = 0; k < 2; k++) {
		fd[k] = td_connect(D.sock);
		ck_assert_int_ge(fd[k], 0);
		ck_assert(send(fd[k], health_req, sizeof health_req - 1, MSG_NOSIGNAL) > 0);
		char *resp = read_response(fd[k], 3000);
		ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "connection %d: %.300s", k, resp);
		free(resp);
	}
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, health_req, sizeof health_req - 1, 3000, &out, NULL), 0);
	ck_assert_msg(strncmp(out, "HTTP/1.1 503", 12) == 0 && strstr(out, "unavailable"),
		      "the third connection: %.500s", out);
	free(out);
	/* One closes: there is room again. */
	close(fd[0]);
	bool ok = false;
	for (int waited = 0; waited < 2000 && !ok; waited += 50) {
		ck_assert_int_eq(td_raw(D.sock, health_req, sizeof health_req - 1, 3000, &out, NULL), 0);
		ok = strncmp(out, "HTTP/1.1 200", 12) == 0;
		free(out);
		if (!ok)
			td_sleep_ms(50);
	}
	ck_assert_msg(ok, "no room after a connection closed");
	close(fd[1]);
}
END_TEST

START_TEST(an_idle_connection_is_closed_after_the_idle_timeout)
{
	ck_assert_int_eq(td_start_args(&D, (const char *const[]){ "--idle-timeout", "1", NULL }), 0);
	int fd = td_connect(D.sock);
	ck_assert_int_ge(fd, 0);
	/* A served request first: keep-alive, then idle. */
	ck_assert(send(fd, health_req, sizeof health_req - 1, MSG_NOSIGNAL) > 0);
	char *resp = read_response(fd, 3000);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.300s", resp);
	free(resp);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert_msg(poll(&p, 1, 5000) == 1, "still open 5 s after a 1 s idle timeout");
	char c;
	ck_assert_int_eq(recv(fd, &c, 1, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(s > 0.5, "closed after %.2f s, before the idle timeout", s);
	close(fd);
}
END_TEST

START_TEST(a_chunked_body_is_accepted_and_counted_against_the_limit)
{
	ck_assert_int_eq(td_start(&D), 0);
	import_fixture(&D, "fleet.json");
	/* A small chunked submit works. */
	const char *job = train_body("chunked", 1, 1, H100, 0);
	char small[2048];
	size_t half = strlen(job) / 2;
	int n = snprintf(small, sizeof small,
			 "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			 "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
			 half, (int)half, job, strlen(job) - half, job + half);
	ck_assert(n > 0 && (size_t)n < sizeof small);
	char *out = NULL;
	ck_assert_int_eq(td_raw(D.sock, small, (size_t)n, 5000, &out, NULL), 0);
	ck_assert_msg(strncmp(out, "HTTP/1.1 201", 12) == 0, "chunked submit: %.500s", out);
	free(out);

	/* 17 chunks of 64 KiB: over 1 MiB without any Content-Length. */
	json_t *before = snapshot();
	const char head[] = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n";
	size_t chunk = 65536, nchunks = 17;
	size_t cap = sizeof head + nchunks * (chunk + 16) + 16;
	char *big = malloc(cap);
	ck_assert(big);
	size_t len = 0;
	memcpy(big, head, sizeof head - 1);
	len = sizeof head - 1;
	for (size_t k = 0; k < nchunks; k++) {
		len += (size_t)sprintf(big + len, "%zx\r\n", chunk);
		memset(big + len, k == 0 ? '[' : ' ', chunk);
		len += chunk;
		memcpy(big + len, "\r\n", 2);
		len += 2;
	}
	memcpy(big + len, "0\r\n\r\n", 5);
	len += 5;
	ck_assert_int_eq(td_raw(D.sock, big, len, 10000, &out, NULL), 0);
	free(big);
	ck_assert_msg(strncmp(out, "HTTP/1.1 413", 12) == 0 && strstr(out, "payload_too_large"),
		      "an over-limit chunked body: %.500s", out);
	free(out);
	json_t *after = snapshot();
	ASSERT_JSON_EQ(before, after, "state after an over-limit chunked body");
	json_decref(before);
	json_decref(after);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------ */

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc;

	tc = tcase_create("catalog");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, health_answers_ok_with_version_and_counts);
	tcase_add_test(tc, builtin_catalog_lists_the_13_required_models_with_every_field);
	tcase_add_test(tc, fleet_import_adds_a_custom_model_to_the_catalog);
	tcase_add_test(tc, fleet_import_then_export_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("fleet");
	tcase_add_checked_fixture(tc, setup_fleet, teardown);
	tcase_add_test(tc, fleet_import_twice_is_idempotent);
	tcase_add_test(tc, domains_reserve_host_and_device_idle_watts);
	tcase_add_test(tc, nodes_and_devices_views_follow_the_fleet_and_placements);
	suite_add_tcase(s, tc);

	tc = tcase_create("placement");
	tcase_add_checked_fixture(tc, setup_fleet, teardown);
	tcase_add_test(tc, training_job_is_placed_and_reserves_cap_minus_idle_until_cancelled);
	tcase_add_test(tc, inference_replicas_are_placed_each_on_one_node);
	tcase_add_test(tc, gang_that_cannot_fit_stays_pending_until_a_cancel_frees_room);
	tcase_add_test(tc, idempotency_key_replay_returns_the_original_job);
	tcase_add_test(tc, drained_node_gets_no_new_jobs_until_resumed);
	tcase_add_test(tc, submit_fills_in_the_documented_defaults);
	tcase_add_test(tc, a_request_no_device_can_satisfy_yet_is_accepted_and_waits_for_the_fleet);
	tcase_add_test(tc, freed_capacity_goes_to_the_highest_priority_then_the_oldest_pending_job);
	tcase_add_test(tc, topology_constraints_are_kept);
	suite_add_tcase(s, tc);

	tc = tcase_create("power");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, job_that_fits_by_count_but_not_by_power_stays_pending, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup_fleet, teardown);
	tcase_add_loop_test(tc, bad_request_gets_its_status_and_error_body_and_changes_nothing, 0,
			    (int)(sizeof bad_cases / sizeof bad_cases[0]));
	tcase_add_test(tc, method_not_allowed_lists_the_allowed_methods);
	tcase_add_test(tc, content_length_over_the_limit_is_refused_before_the_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("listing");
	tcase_add_checked_fixture(tc, setup_fleet, teardown);
	tcase_add_test(tc, job_list_filters_by_state_kind_queue_and_owner);
	tcase_add_test(tc, paging_with_limit_and_after_visits_every_job_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup_fleet, teardown);
	tcase_add_test(tc, acknowledged_jobs_survive_kill_9_and_restart);
	tcase_add_test(tc, concurrent_acknowledged_submits_all_survive_kill_9);
	tcase_add_test(tc, a_job_is_cancelled_only_by_its_owner_or_root);
	tcase_add_test(tc, sigterm_exits_0_and_removes_the_socket);
	tcase_add_test(tc, second_daemon_on_a_live_socket_refuses_to_start);
	tcase_add_test(tc, stale_socket_left_by_kill_9_is_replaced_on_restart);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup_none, teardown);
	tcase_add_test(tc, a_connection_over_the_limit_gets_503_and_is_closed);
	tcase_add_test(tc, an_idle_connection_is_closed_after_the_idle_timeout);
	tcase_add_test(tc, a_chunked_body_is_accepted_and_counted_against_the_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, two_requests_share_one_keep_alive_connection);
	tcase_add_test(tc, pipelined_requests_are_answered_in_order);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(api_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
