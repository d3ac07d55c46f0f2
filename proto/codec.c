/*
 * codec — JSON to and from the core's structs (see codec.h).
 *
 * Owns: the wire shape of models, domains, nodes, devices, jobs and the fleet document,
 * and the validation of what clients send (every refusal names its field).
 * Never: mutates the fleet or the job table; keeps references to documents past a call
 * (except codec_fleet_decode's string pointers, documented there).
 */
#include "codec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELDF(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__), (buf))

int codec_parse(const char *body, size_t len, json_t **out, struct err *e)
{
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return err_set(e, ERR_MALFORMED, NULL, "body is not valid JSON: %s at line %d column %d",
			       je.text, je.line, je.column);
	if (!json_is_object(v)) {
		json_decref(v);
		return err_set(e, ERR_MALFORMED, NULL, "body must be a JSON object");
	}
	*out = v;
	return 0;
}

char *codec_dump(json_t *v, size_t *len)
{
	char *s = NULL;
	if (v)
		s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (s && len)
		*len = strlen(s);
	return s;
}

/* Copy src into dst (n bytes) as valid UTF-8: a byte that does not start a well-formed
 * sequence (a request path's raw bytes, a name cut mid-character) becomes '?'. */
static void utf8_clean(char *dst, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;
	while (*s && o + 1 < n) {
		size_t len = *s < 0x80 ? 1 : (*s >> 5) == 6 ? 2 : (*s >> 4) == 14 ? 3
			   : (*s >> 3) == 30 ? 4 : 0;
		bool ok = len > 0 && o + len < n;
		for (size_t k = 1; ok && k < len; k++)
			ok = (s[k] & 0xc0) == 0x80;
		if (ok && len == 2)
			ok = *s >= 0xc2;                               /* no overlong forms */
		if (ok && len == 3)
			ok = !(*s == 0xe0 && s[1] < 0xa0) && !(*s == 0xed && s[1] >= 0xa0);
		if (ok && len == 4)
			ok = *s <= 0xf4 && !(*s == 0xf0 && s[1] < 0x90) && !(*s == 0xf4 && s[1] >= 0x90);
		if (!ok) {
			dst[o++] = '?';
			s++;
			continue;
		}
		memcpy(dst + o, s, len);
		o += len;
		s += len;
	}
	dst[o] = '\0';
}

char *codec_error_body(const struct err *e, size_t *len)
{
	char message[sizeof(e->message)], field[sizeof(e->field)];
	utf8_clean(message, e->message, sizeof(message));
	utf8_clean(field, e->field, sizeof(field));
	json_t *inner = json_pack("{s:s, s:s}", "code", err_code_name(e->code), "message",
				  message);
	if (inner && field[0])
		json_object_set_new(inner, "field", json_string(field));
	return codec_dump(inner ? json_pack("{s:o}", "error", inner) : NULL, len);
}

/* ---------------- small typed getters ---------------- */

static int get_uint(const json_t *obj, const char *key, const char *path, uint64_t min,
		    uint64_t max, bool required, uint64_t *out, struct err *e)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, ERR_INVALID, path, "is required");
		return 1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    (uint64_t)json_integer_value(v) > max)
		return err_set(e, ERR_INVALID, path, "must be an integer between %llu and %llu",
			       (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_int(const json_t *obj, const char *key, const char *path, int64_t min,
		   int64_t max, int64_t *out, struct err *e)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 1;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return err_set(e, ERR_INVALID, path, "must be an integer between %lld and %lld",
			       (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

static int get_real(const json_t *obj, const char *key, const char *path, double min,
		    double max, double *out, struct err *e)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 1;
	if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
		return err_set(e, ERR_INVALID, path, "must be a number between %g and %g", min, max);
	*out = json_number_value(v);
	return 0;
}

static int get_str(const json_t *obj, const char *key, const char *path, size_t maxlen,
		   bool required, const char **out, struct err *e)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, ERR_INVALID, path, "is required");
		return 1;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > maxlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, ERR_INVALID, path, "must be a string of 1-%zu characters", maxlen);
	*out = json_string_value(v);
	return 0;
}

static int get_bool(const json_t *obj, const char *key, const char *path, bool *out,
		    struct err *e)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 1;
	if (!json_is_boolean(v))
		return err_set(e, ERR_INVALID, path, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

/* Refuse keys not in `allowed` (NULL-terminated); prefix is the object's path. */
static int only_keys(const json_t *obj, const char *const *allowed, const char *prefix,
		     struct err *e)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok && !*key)
			return err_set(e, ERR_INVALID, prefix ? prefix : "\"\"",
				       "an empty member name is not allowed");
		if (!ok) {
			char field[96];
			if (prefix)
				snprintf(field, sizeof(field), "%s.%.60s", prefix, key);
			else
				snprintf(field, sizeof(field), "%.80s", key);
			return err_set(e, ERR_INVALID, field, "unknown field");
		}
	}
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool ident(const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* ---------------- job ---------------- */

static bool vendor_known(const struct fleet *f, const char *v)
{
	for (uint32_t i = 0; i < f->nmodels; i++)
		if (strcmp(f->models[i].vendor, v) == 0)
			return true;
	return false;
}

static bool stack_known(const struct fleet *f, const char *s)
{
	for (uint32_t i = 0; i < f->nmodels; i++)
		if (strcmp(f->models[i].stack, s) == 0)
			return true;
	return false;
}

static int decode_accel(const json_t *a, const struct fleet *f, struct job_request *r,
			struct err *e)
{
	static const char *const keys[] = {"vendors", "models", "stack", "min_memory_gib", "fp8",
					   NULL};
	char field[96];
	const char *s;
	uint64_t u;
	int rc;

	if (!json_is_object(a))
		return err_set(e, ERR_INVALID, "accelerator", "must be an object");
	if ((rc = only_keys(a, keys, "accelerator", e)) < 0)
		return rc;
	const json_t *vs = json_object_get(a, "vendors");
	if (vs && !json_is_null(vs)) {
		if (!json_is_array(vs) || json_array_size(vs) > JOB_MAX_VENDORS)
			return err_set(e, ERR_INVALID, "accelerator.vendors",
				       "must be a list of at most %d vendors", JOB_MAX_VENDORS);
		for (size_t i = 0; i < json_array_size(vs); i++) {
			const json_t *v = json_array_get(vs, i);
			FIELDF(field, "accelerator.vendors[%zu]", i);
			if (!json_is_string(v) || json_string_length(v) >= sizeof(r->vendors[0]))
				return err_set(e, ERR_INVALID, field, "must be a vendor name");
			if (!vendor_known(f, json_string_value(v)))
				return err_set(e, ERR_INVALID, field, "unknown vendor %s",
					       json_string_value(v));
			snprintf(r->vendors[r->nvendors++], sizeof(r->vendors[0]), "%s",
				 json_string_value(v));
		}
	}
	const json_t *ms = json_object_get(a, "models");
	if (ms && !json_is_null(ms)) {
		if (!json_is_array(ms) || json_array_size(ms) > JOB_MAX_MODELS)
			return err_set(e, ERR_INVALID, "accelerator.models",
				       "must be a list of at most %d model names", JOB_MAX_MODELS);
		if (json_array_size(ms) > 0) {
			r->models = calloc(json_array_size(ms), sizeof(*r->models));
			if (!r->models)
				return err_set(e, -ENOMEM, NULL, "out of memory");
		}
		for (size_t i = 0; i < json_array_size(ms); i++) {
			const json_t *v = json_array_get(ms, i);
			FIELDF(field, "accelerator.models[%zu]", i);
			if (!json_is_string(v) || json_string_length(v) >= sizeof(r->models[0]))
				return err_set(e, ERR_INVALID, field, "must be a model name");
			if (fleet_model_find(f, json_string_value(v)) == FLEET_NONE)
				return err_set(e, ERR_INVALID, field, "unknown model %s",
					       json_string_value(v));
			snprintf(r->models[r->nmodels++], sizeof(r->models[0]), "%s",
				 json_string_value(v));
		}
	}
	if ((rc = get_str(a, "stack", "accelerator.stack", sizeof(r->stack) - 1, false, &s, e)) < 0)
		return rc;
	if (rc == 0 && strcmp(s, "any") != 0) {
		if (!stack_known(f, s))
			return err_set(e, ERR_INVALID, "accelerator.stack", "unknown software stack %s", s);
		snprintf(r->stack, sizeof(r->stack), "%s", s);
	}
	if ((rc = get_uint(a, "min_memory_gib", "accelerator.min_memory_gib", 0, 1u << 20, false,
			   &u, e)) < 0)
		return rc;
	if (rc == 0)
		r->min_memory_gib = (uint32_t)u;
	if ((rc = get_bool(a, "fp8", "accelerator.fp8", &r->fp8, e)) < 0)
		return rc;
	return 0;
}

static int decode_need(const json_t *n, const char *path, struct job_request *r, struct err *e)
{
	static const char *const keys[] = {"memory_gib", "bandwidth_gbs", "bf16_tflops", "fp8", NULL};
	char field[64];
	uint64_t u;
	int rc;

	if (!json_is_object(n))
		return err_set(e, ERR_INVALID, path, "must be an object");
	if ((rc = only_keys(n, keys, path, e)) < 0)
		return rc;
	snprintf(field, sizeof(field), "%s.memory_gib", path);
	if ((rc = get_uint(n, "memory_gib", field, 0, 1u << 24, false, &u, e)) < 0)
		return rc;
	if (rc == 0)
		r->need.memory_gib = (uint32_t)u;
	snprintf(field, sizeof(field), "%s.bandwidth_gbs", path);
	if ((rc = get_uint(n, "bandwidth_gbs", field, 0, 1u << 28, false, &u, e)) < 0)
		return rc;
	if (rc == 0)
		r->need.bandwidth_gbs = (uint32_t)u;
	snprintf(field, sizeof(field), "%s.bf16_tflops", path);
	if ((rc = get_real(n, "bf16_tflops", field, 0, 1e8, &r->need.bf16_tflops, e)) < 0)
		return rc;
	snprintf(field, sizeof(field), "%s.fp8", path);
	if ((rc = get_bool(n, "fp8", field, &r->need.fp8, e)) < 0)
		return rc;
	if (!r->need.memory_gib && !r->need.bandwidth_gbs && !(r->need.bf16_tflops > 0))
		return err_set(e, ERR_INVALID, path,
			       "needs at least one of memory_gib, bandwidth_gbs, bf16_tflops");
	r->capability = true;
	return 0;
}

/* power.cap_w must fit [min_cap_w, tdp_w] of at least one model the other filters allow. */
static int check_cap(const struct fleet *f, const struct job_request *r, struct err *e)
{
	char ranges[160] = "";
	size_t used = 0;
	bool any = false;
	for (uint32_t i = 0; i < f->nmodels; i++) {
		const struct model *m = &f->models[i];
		bool in_models = r->nmodels == 0, in_vendors = r->nvendors == 0;
		for (uint32_t k = 0; k < r->nmodels && !in_models; k++)
			in_models = strcmp(r->models[k], m->name) == 0;
		for (uint32_t k = 0; k < r->nvendors && !in_vendors; k++)
			in_vendors = strcmp(r->vendors[k], m->vendor) == 0;
		bool hit = in_models && in_vendors;
		if (!hit || (r->stack[0] && strcmp(r->stack, m->stack) != 0))
			continue;
		any = true;
		if (r->cap_w >= m->min_cap_w && r->cap_w <= m->tdp_w)
			return 0;
		if (used < sizeof(ranges) - 40)
			used += (size_t)snprintf(ranges + used, sizeof(ranges) - used, "%s%s %u-%u W",
						 used ? ", " : "", m->name, m->min_cap_w, m->tdp_w);
	}
	if (!any)
		return 0;
	return err_set(e, ERR_INVALID, "power.cap_w",
		       "%u W is outside the power-limit range of every allowed model (%s)",
		       r->cap_w, ranges);
}

static int dup_str(char **dst, const char *s, struct err *e)
{
	*dst = strdup(s);
	if (!*dst)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	return 0;
}

int codec_job_decode(const json_t *doc, const struct fleet *f, struct job *j, struct err *e)
{
	static const char *const keys[] = {"name", "kind", "queue", "priority", "preemptible",
					   "workers", "replicas", "min_replicas", "devices",
					   "per_worker", "per_replica", "accelerator", "power",
					   "topology", "duration_s", "on_device_failure", NULL};
	struct job_request *r = &j->req;
	const char *s;
	uint64_t u;
	int64_t i64;
	int rc;

	if ((rc = only_keys(doc, keys, NULL, e)) < 0)
		return rc;
	if ((rc = get_str(doc, "name", "name", 127, true, &s, e)) < 0)
		return rc;
	if (!printable(s))
		return err_set(e, ERR_INVALID, "name", "must not contain control characters");
	if ((rc = dup_str(&j->name, s, e)) < 0)
		return rc;
	if ((rc = get_str(doc, "kind", "kind", 16, true, &s, e)) < 0)
		return rc;
	if (job_kind_parse(s, &r->kind) < 0)
		return err_set(e, ERR_INVALID, "kind", "must be training or inference");
	const char *want = r->kind == JOB_TRAINING ? "workers" : "replicas";
	const char *other = r->kind == JOB_TRAINING ? "replicas" : "workers";
	if (json_object_get(doc, other))
		return err_set(e, ERR_INVALID, other, "a %s job gives %s, not %s",
			       job_kind_name(r->kind), want, other);
	if ((rc = get_uint(doc, want, want, 1, JOB_MAX_COUNT, true, &u, e)) < 0)
		return rc;
	r->count = (uint32_t)u;
	r->min_count = r->count;
	if (json_object_get(doc, "min_replicas")) {
		if (r->kind != JOB_INFERENCE)
			return err_set(e, ERR_INVALID, "min_replicas", "only inference jobs have replicas");
		if ((rc = get_uint(doc, "min_replicas", "min_replicas", 1, r->count, true, &u, e)) < 0)
			return rc;
		r->min_count = (uint32_t)u;
	}
	const char *need_key = r->kind == JOB_TRAINING ? "per_worker" : "per_replica";
	const json_t *need = json_object_get(doc, need_key);
	if (!need && json_object_get(doc, "per_worker"))
		need = json_object_get(doc, need_key = "per_worker");
	if (json_object_get(doc, "per_worker") && json_object_get(doc, "per_replica"))
		return err_set(e, ERR_INVALID, "per_replica", "give per_worker or per_replica, not both");
	if (need && !json_is_null(need)) {
		if ((rc = decode_need(need, need_key, r, e)) < 0)
			return rc;
		if (json_object_get(doc, "devices"))
			return err_set(e, ERR_INVALID, "devices", "give devices or %s, not both",
				       need_key);
	} else {
		if ((rc = get_uint(doc, "devices", "devices", 1, JOB_MAX_DEVICES, true, &u, e)) < 0)
			return rc;
		r->devices = (uint32_t)u;
	}
	s = "default";
	if ((rc = get_str(doc, "queue", "queue", 63, false, &s, e)) < 0)
		return rc;
	if (!ident(s))
		return err_set(e, ERR_INVALID, "queue", "must be characters of A-Z a-z 0-9 . _ -");
	if ((rc = dup_str(&j->queue, s, e)) < 0)
		return rc;
	i64 = 0;
	if ((rc = get_int(doc, "priority", "priority", -1000000, 1000000, &i64, e)) < 0)
		return rc;
	j->priority = (int32_t)i64;
	if ((rc = get_bool(doc, "preemptible", "preemptible", &j->preemptible, e)) < 0)
		return rc;
	r->topology = r->kind == JOB_INFERENCE ? TOPO_SPREAD : TOPO_ANY;
	if ((rc = get_str(doc, "topology", "topology", 16, false, &s, e)) < 0)
		return rc;
	if (rc == 0 && job_topology_parse(s, &r->topology) < 0)
		return err_set(e, ERR_INVALID, "topology",
			       "must be any, same_node, same_group, same_rack or spread");
	if ((rc = get_int(doc, "duration_s", "duration_s", 1, (int64_t)10 * 365 * 86400, &i64, e)) < 0)
		return rc;
	if (rc == 0)
		r->duration_s = i64;
	r->keep_on_device_failure = r->kind == JOB_INFERENCE;
	if ((rc = get_str(doc, "on_device_failure", "on_device_failure", 16, false, &s, e)) < 0)
		return rc;
	if (rc == 0 && strcmp(s, "requeue") != 0 && strcmp(s, "keep") != 0)
		return err_set(e, ERR_INVALID, "on_device_failure", "must be requeue or keep");
	if (rc == 0)
		r->keep_on_device_failure = strcmp(s, "keep") == 0;
	const json_t *a = json_object_get(doc, "accelerator");
	if (a && !json_is_null(a) && (rc = decode_accel(a, f, r, e)) < 0)
		return rc;
	const json_t *p = json_object_get(doc, "power");
	if (p && !json_is_null(p)) {
		static const char *const pkeys[] = {"cap_w", "cap", "min_perf", NULL};
		if (!json_is_object(p))
			return err_set(e, ERR_INVALID, "power", "must be an object");
		if ((rc = only_keys(p, pkeys, "power", e)) < 0)
			return rc;
		const json_t *cap = json_object_get(p, "cap");
		if (cap && !json_is_null(cap)) {
			if (!json_is_string(cap) || strcmp(json_string_value(cap), "auto") != 0)
				return err_set(e, ERR_INVALID, "power.cap",
					       "must be \"auto\" (give a number as power.cap_w)");
			if (json_object_get(p, "cap_w"))
				return err_set(e, ERR_INVALID, "power.cap_w",
					       "give cap_w or \"cap\":\"auto\", not both");
			r->cap_auto = true;
			r->min_perf = 0.8;
			if ((rc = get_real(p, "min_perf", "power.min_perf", 0.05, 1.0, &r->min_perf, e)) < 0)
				return rc;
		} else if (json_object_get(p, "min_perf")) {
			return err_set(e, ERR_INVALID, "power.min_perf",
				       "only with \"cap\":\"auto\"");
		}
		if ((rc = get_uint(p, "cap_w", "power.cap_w", 1, 100000, false, &u, e)) < 0)
			return rc;
		if (rc == 0) {
			r->cap_w = (uint32_t)u;
			if ((rc = check_cap(f, r, e)) < 0)
				return rc;
		}
	}
	return 0;
}

/* ---------------- fleet document ---------------- */

void codec_fleet_doc_free(struct fleet_doc *d)
{
	if (!d)
		return;
	free((void *)d->models);
	free((void *)d->domains);
	if (d->nodes)
		for (uint32_t i = 0; i < d->nnodes; i++) {
			for (uint32_t k = 0; d->nodes[i].devs && k < d->nodes[i].ndevs; k++)
				free((void *)d->nodes[i].devs[k].uuids);
			free((void *)d->nodes[i].devs);
			free((void *)d->nodes[i].labels_json);
		}
	free((void *)d->nodes);
	memset(d, 0, sizeof(*d));
}

static int decode_model(const json_t *o, struct model *m, struct err *e)
{
	static const char *const keys[] = {"name", "vendor", "memory_gib", "bandwidth_gbs",
					   "bf16_tflops", "fp8_tflops", "tdp_w", "min_cap_w",
					   "idle_w", "stack", NULL};
	const char *s;
	uint64_t u;
	int rc;

	if (!json_is_object(o))
		return err_set(e, ERR_INVALID, NULL, "must be an object");
	if ((rc = only_keys(o, keys, NULL, e)) < 0)
		return rc;
	memset(m, 0, sizeof(*m));
	if ((rc = get_str(o, "name", "name", sizeof(m->name) - 1, true, &s, e)) < 0)
		return rc;
	snprintf(m->name, sizeof(m->name), "%s", s);
	if ((rc = get_str(o, "vendor", "vendor", sizeof(m->vendor) - 1, true, &s, e)) < 0)
		return rc;
	snprintf(m->vendor, sizeof(m->vendor), "%s", s);
	if ((rc = get_str(o, "stack", "stack", sizeof(m->stack) - 1, true, &s, e)) < 0)
		return rc;
	snprintf(m->stack, sizeof(m->stack), "%s", s);
	if ((rc = get_uint(o, "memory_gib", "memory_gib", 0, 1u << 20, true, &u, e)) < 0)
		return rc;
	m->memory_gib = (uint32_t)u;
	if ((rc = get_uint(o, "bandwidth_gbs", "bandwidth_gbs", 0, 1u << 24, true, &u, e)) < 0)
		return rc;
	m->bandwidth_gbs = (uint32_t)u;
	if ((rc = get_real(o, "bf16_tflops", "bf16_tflops", 0, 1e7, &m->bf16_tflops, e)) < 0)
		return rc;
	if (rc == 1)
		return err_set(e, ERR_INVALID, "bf16_tflops", "is required");
	if ((rc = get_real(o, "fp8_tflops", "fp8_tflops", 0, 1e7, &m->fp8_tflops, e)) < 0)
		return rc;
	if ((rc = get_uint(o, "tdp_w", "tdp_w", 1, 100000, true, &u, e)) < 0)
		return rc;
	m->tdp_w = (uint32_t)u;
	if ((rc = get_uint(o, "min_cap_w", "min_cap_w", 1, 100000, true, &u, e)) < 0)
		return rc;
	m->min_cap_w = (uint32_t)u;
	if ((rc = get_uint(o, "idle_w", "idle_w", 0, 100000, true, &u, e)) < 0)
		return rc;
	m->idle_w = (uint32_t)u;
	return 0;
}

static int decode_domain(const json_t *o, struct fleet_domain_spec *d, struct err *e)
{
	static const char *const keys[] = {"name", "parent", "budget_w", "reserved_w",
					   "headroom_w", "nodes", "devices", "measured_w",
					   "measured_at", "over_budget", NULL};
	uint64_t u;
	int rc;

	if (!json_is_object(o))
		return err_set(e, ERR_INVALID, NULL, "must be an object");
	if ((rc = only_keys(o, keys, NULL, e)) < 0)
		return rc;
	if ((rc = get_str(o, "name", "name", 63, true, &d->name, e)) < 0)
		return rc;
	d->parent = NULL;
	if ((rc = get_str(o, "parent", "parent", 63, false, &d->parent, e)) < 0)
		return rc;
	if ((rc = get_uint(o, "budget_w", "budget_w", 0, 1000000000000ull, true, &u, e)) < 0)
		return rc;
	d->budget_w = (int64_t)u;
	return 0;
}

/* "uuids": one printable string per device, as the node's exporter labels it
 * (dcgm-exporter's UUID label); they must differ from each other. */
static int decode_uuids(const json_t *d, struct fleet_device_spec *ds, const char *field,
			struct err *e)
{
	const json_t *us = json_object_get(d, "uuids");
	char f2[128];
	if (!us)
		return 0;
	if (!json_is_array(us) || json_array_size(us) != ds->count)
		return err_set(e, ERR_INVALID, FIELDF(f2, "%s.uuids", field),
			       "must be a list of %u strings, one per device", ds->count);
	const char **v = calloc(ds->count + 1, sizeof(*v));
	if (!v)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	ds->uuids = v;
	for (uint32_t k = 0; k < ds->count; k++) {
		const json_t *x = json_array_get(us, k);
		const char *str = json_string_value(x);
		bool ok = str && *str && json_string_length(x) <= 63;
		for (const char *c = str; ok && *c; c++)
			ok = *c > ' ' && *c < 0x7f;
		if (!ok)
			return err_set(e, ERR_INVALID, FIELDF(f2, "%s.uuids[%u]", field, k),
				       "must be 1-63 printable characters without spaces");
		for (uint32_t q = 0; q < k; q++)
			if (strcmp(v[q], str) == 0)
				return err_set(e, ERR_INVALID, FIELDF(f2, "%s.uuids[%u]", field, k),
					       "repeats %s", str);
		v[k] = str;
	}
	return 0;
}

static int decode_node(const json_t *o, struct fleet_node_spec *n, struct err *e)
{
	/* Read-only fields of GET answers are accepted so an export imports as it is. */
	static const char *const keys[] = {"name", "domain", "host_idle_w", "group", "labels",
					   "exporter_url", "agent_url", "devices", "state", "devices_total",
					   "devices_free", "models", "measured_w", "measured_at",
					   "scraped_at", "scrape_error", "scrape_failures", NULL};
	char field[64];
	uint64_t u;
	int rc;

	if (!json_is_object(o))
		return err_set(e, ERR_INVALID, NULL, "must be an object");
	if ((rc = only_keys(o, keys, NULL, e)) < 0)
		return rc;
	if ((rc = get_str(o, "name", "name", 63, true, &n->name, e)) < 0)
		return rc;
	if ((rc = get_str(o, "domain", "domain", 63, true, &n->domain, e)) < 0)
		return rc;
	if ((rc = get_uint(o, "host_idle_w", "host_idle_w", 0, 1000000, false, &u, e)) < 0)
		return rc;
	n->host_idle_w = rc == 0 ? (int64_t)u : 0;
	if ((rc = get_str(o, "group", "group", 63, false, &n->group, e)) < 0)
		return rc;
	if ((rc = get_str(o, "exporter_url", "exporter_url", 512, false, &n->exporter_url, e)) < 0)
		return rc;
	if ((rc = get_str(o, "agent_url", "agent_url", 512, false, &n->agent_url, e)) < 0)
		return rc;
	if (rc == 0 && strncmp(n->agent_url, "http://", 7) != 0 &&
	    strncmp(n->agent_url, "https://", 8) != 0)
		return err_set(e, ERR_INVALID, "agent_url", "must be an http:// or https:// URL");
	const json_t *labels = json_object_get(o, "labels");
	if (labels && !json_is_null(labels)) {
		const char *k;
		json_t *v;
		if (!json_is_object(labels) || json_object_size(labels) > 64)
			return err_set(e, ERR_INVALID, "labels",
				       "must be an object of at most 64 string values");
		json_object_foreach((json_t *)labels, k, v) {
			if (!json_is_string(v) || strlen(k) > 63 || json_string_length(v) > 255)
				return err_set(e, ERR_INVALID, FIELDF(field, "labels.%.40s", k),
					       "must be a string of at most 255 characters");
		}
		n->labels_json = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
		if (!n->labels_json)
			return err_set(e, -ENOMEM, NULL, "out of memory");
	}
	const json_t *devs = json_object_get(o, "devices");
	if (!devs || !json_is_array(devs) || json_array_size(devs) > FLEET_MAX_NODE_DEVICES)
		return err_set(e, ERR_INVALID, "devices",
			       "must be a list of {\"model\", \"count\"} (at most %d entries)",
			       FLEET_MAX_NODE_DEVICES);
	struct fleet_device_spec *ds = calloc(json_array_size(devs) + 1, sizeof(*ds));
	if (!ds)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	n->devs = ds;
	for (size_t i = 0; i < json_array_size(devs); i++) {
		static const char *const dkeys[] = {"model", "count", "uuids", NULL};
		const json_t *d = json_array_get(devs, i);
		FIELDF(field, "devices[%zu]", i);
		if (!json_is_object(d))
			return err_set(e, ERR_INVALID, field, "must be an object");
		if ((rc = only_keys(d, dkeys, field, e)) < 0 ||
		    (rc = get_str(d, "model", "model", 47, true, &ds[i].model, e)) < 0 ||
		    (rc = get_uint(d, "count", "count", 1, FLEET_MAX_NODE_DEVICES, false, &u, e)) < 0) {
			if (strncmp(e->field, field, strlen(field)) != 0)
				err_prefix_field(e, field);
			return rc;
		}
		ds[i].count = rc == 0 ? (uint32_t)u : 1;
		n->ndevs++;
		if ((rc = decode_uuids(d, &ds[i], field, e)) < 0)
			return rc;
	}
	return 0;
}

int codec_fleet_decode(const json_t *doc, struct fleet_doc *out, struct err *e)
{
	static const char *const keys[] = {"models", "domains", "nodes", NULL};
	struct fleet_doc d = {0};
	char field[32];
	int rc;

	if ((rc = only_keys(doc, keys, NULL, e)) < 0)
		return rc;
	const json_t *ms = json_object_get(doc, "models"), *ds = json_object_get(doc, "domains"),
		     *ns = json_object_get(doc, "nodes");
	if ((ms && !json_is_array(ms)) || (ds && !json_is_array(ds)) || (ns && !json_is_array(ns)))
		return err_set(e, ERR_INVALID, ms && !json_is_array(ms) ? "models"
					       : ds && !json_is_array(ds) ? "domains" : "nodes",
			       "must be a list");
	size_t nm = json_array_size(ms), nd = json_array_size(ds), nn = json_array_size(ns);
	if (nm > 65000 || nd > 1000000 || nn > 1000000)
		return err_set(e, ERR_INVALID, NULL, "too many entries");
	struct model *models = calloc(nm + 1, sizeof(*models));
	struct fleet_domain_spec *domains = calloc(nd + 1, sizeof(*domains));
	struct fleet_node_spec *nodes = calloc(nn + 1, sizeof(*nodes));
	d.models = models;
	d.domains = domains;
	d.nodes = nodes;
	if (!models || !domains || !nodes) {
		rc = err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < nm; i++, d.nmodels++)
		if ((rc = decode_model(json_array_get(ms, i), &models[i], e)) < 0) {
			err_prefix_field(e, FIELDF(field, "models[%zu]", i));
			goto fail;
		}
	for (size_t i = 0; i < nd; i++, d.ndomains++)
		if ((rc = decode_domain(json_array_get(ds, i), &domains[i], e)) < 0) {
			err_prefix_field(e, FIELDF(field, "domains[%zu]", i));
			goto fail;
		}
	for (size_t i = 0; i < nn; i++) {
		d.nnodes++;
		if ((rc = decode_node(json_array_get(ns, i), &nodes[i], e)) < 0) {
			err_prefix_field(e, FIELDF(field, "nodes[%zu]", i));
			goto fail;
		}
	}
	*out = d;
	return 0;
fail:
	codec_fleet_doc_free(&d);
	return rc;
}

/* ---------------- encoders ---------------- */

json_t *codec_time(int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0 || !gmtime_r(&tt, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *codec_model_encode(const struct model *m)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:s}", "name", m->name,
			 "vendor", m->vendor, "memory_gib", (json_int_t)m->memory_gib,
			 "bandwidth_gbs", (json_int_t)m->bandwidth_gbs, "bf16_tflops",
			 m->bf16_tflops, "fp8_tflops", m->fp8_tflops, "tdp_w",
			 (json_int_t)m->tdp_w, "min_cap_w", (json_int_t)m->min_cap_w, "idle_w",
			 (json_int_t)m->idle_w, "stack", m->stack);
}

static json_t *watts_or_null(int64_t at, double w)
{
	return at ? json_integer((json_int_t)llround(w)) : json_null();
}

json_t *codec_domain_encode(const struct fleet *f, uint32_t di)
{
	const struct domain *d = &f->domains[di];
	json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I}", "name", d->name, "parent",
			 d->parent == FLEET_NONE ? json_null() : json_string(f->domains[d->parent].name),
			 "budget_w", (json_int_t)d->budget_w, "reserved_w", (json_int_t)d->reserved_w,
			 "headroom_w", (json_int_t)(d->budget_w - d->reserved_w), "nodes",
			 (json_int_t)d->nodes, "devices", (json_int_t)d->devices);
	if (o) {
		json_object_set_new(o, "measured_w", watts_or_null(d->measured_at, d->measured_w));
		json_object_set_new(o, "measured_at", codec_time(d->measured_at));
		json_object_set_new(o, "over_budget", json_boolean(d->over_budget));
	}
	return o;
}

json_t *codec_domains_encode(const struct fleet *f)
{
	json_t *arr = json_array();
	uint32_t *first = malloc((f->ndomains + 1) * sizeof(*first));
	uint32_t *next = malloc((f->ndomains + 1) * sizeof(*next));
	uint32_t *last = malloc((f->ndomains + 1) * sizeof(*last));
	uint32_t *stack = malloc((f->ndomains + 1) * sizeof(*stack));
	uint32_t roots = FLEET_NONE, roots_last = FLEET_NONE, sp = 0;

	if (!arr || !first || !next || !last || !stack)
		goto fail;
	for (uint32_t i = 0; i < f->ndomains; i++)
		first[i] = next[i] = last[i] = FLEET_NONE;
	/* children lists in creation order */
	for (uint32_t i = 0; i < f->ndomains; i++) {
		uint32_t p = f->domains[i].parent;
		uint32_t *head = p == FLEET_NONE ? &roots : &first[p];
		uint32_t *tail = p == FLEET_NONE ? &roots_last : &last[p];
		if (*head == FLEET_NONE)
			*head = i;
		else
			next[*tail] = i;
		*tail = i;
	}
	/* depth-first: push siblings in reverse so the first is visited first */
	for (uint32_t c = roots; c != FLEET_NONE;) {
		uint32_t cnt = 0;
		for (uint32_t k = c; k != FLEET_NONE; k = next[k])
			cnt++;
		for (uint32_t k = c, pos = 0; k != FLEET_NONE; k = next[k], pos++)
			stack[sp + cnt - 1 - pos] = k;
		sp += cnt;
		c = FLEET_NONE;
		while (sp > 0) {
			uint32_t d = stack[--sp];
			if (json_array_append_new(arr, codec_domain_encode(f, d)) < 0)
				goto fail;
			if (first[d] != FLEET_NONE) {
				c = first[d];
				break;
			}
		}
	}
	free(first);
	free(next);
	free(last);
	free(stack);
	return arr;
fail:
	free(first);
	free(next);
	free(last);
	free(stack);
	json_decref(arr);
	return NULL;
}

static json_t *node_models(const struct fleet *f, const struct node *n)
{
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < n->nslots; i++)
		json_array_append_new(arr, json_string(f->models[f->slots[n->first_slot + i].model].name));
	return arr;
}

/* Devices as run-length {"model","count"} in index order (the import shape). */
static json_t *node_dev_specs(const struct fleet *f, const struct node *n)
{
	json_t *arr = json_array();
	for (uint32_t k = 0; arr && k < n->ndevices;) {
		uint16_t m = f->devices[n->first_device + k].model;
		uint32_t c = 0;
		while (k < n->ndevices && f->devices[n->first_device + k].model == m) {
			c++;
			k++;
		}
		json_t *spec = json_pack("{s:s, s:I}", "model", f->models[m].name, "count",
					 (json_int_t)c);
		bool all = true;   /* a run lists uuids only when every device has one */
		for (uint32_t q = k - c; q < k; q++)
			all = all && f->devices[n->first_device + q].uuid;
		json_t *uu = spec && all ? json_array() : NULL;
		for (uint32_t q = k - c; uu && q < k; q++)
			json_array_append_new(uu, json_string(f->devices[n->first_device + q].uuid));
		if (uu)
			json_object_set_new(spec, "uuids", uu);
		json_array_append_new(arr, spec);
	}
	return arr;
}

static json_t *labels(const struct node *n)
{
	json_t *l = json_loads(n->labels_json ? n->labels_json : "{}", 0, NULL);
	return l ? l : json_object();
}

json_t *codec_node_encode(const struct fleet *f, uint32_t ni, bool with_devices)
{
	const struct node *n = &f->nodes[ni];
	uint32_t free_devs = 0;
	for (uint32_t i = 0; i < n->nslots; i++)
		free_devs += fleet_node_free(f, ni, f->slots[n->first_slot + i].model);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:I, s:I, s:o}", "name",
			      n->name, "domain", f->domains[n->domain].name, "state",
			      fleet_node_state_name(n->state), "host_idle_w",
			      (json_int_t)n->host_idle_w, "group",
			      n->group && *n->group ? json_string(n->group) : json_null(), "labels",
			      labels(n), "exporter_url",
			      n->exporter_url && *n->exporter_url ? json_string(n->exporter_url)
								  : json_null(),
			      "devices_total", (json_int_t)n->ndevices, "devices_free",
			      (json_int_t)free_devs, "models", node_models(f, n));
	if (o) {
		json_object_set_new(o, "agent_url", n->agent_url && *n->agent_url
							    ? json_string(n->agent_url) : json_null());
		json_object_set_new(o, "measured_w", watts_or_null(n->measured_at, n->measured_w));
		json_object_set_new(o, "measured_at", codec_time(n->measured_at));
		json_object_set_new(o, "scraped_at", codec_time(n->scraped_at));
		json_object_set_new(o, "scrape_error",
				    n->scrape_error ? json_string(n->scrape_error) : json_null());
		json_object_set_new(o, "scrape_failures", json_integer(n->scrape_fails));
	}
	if (!o || !with_devices)
		return o;
	json_t *devs = json_array();
	for (uint32_t k = 0; devs && k < n->ndevices; k++) {
		const struct device *d = &f->devices[n->first_device + k];
		json_array_append_new(devs,
			json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "index", (json_int_t)d->index,
				  "model", f->models[d->model].name, "health",
				  fleet_health_name(d->health), "job",
				  d->job ? json_integer((json_int_t)d->job) : json_null(), "worker",
				  d->job ? json_integer(d->worker) : json_null(), "cap_w",
				  d->job ? json_integer(d->cap_w) : json_null()));
		json_t *last = json_array_get(devs, json_array_size(devs) - 1);
		json_object_set_new(last, "measured_w", isnan(d->measured_w) ? json_null()
								 : json_real(d->measured_w));
		json_object_set_new(last, "health_reason",
				    d->health_reason ? json_string(d->health_reason) : json_null());
		json_object_set_new(last, "uuid", d->uuid ? json_string(d->uuid) : json_null());
	}
	if (!devs || json_object_set_new(o, "devices", devs) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *codec_device_encode(const struct fleet *f, uint32_t di)
{
	const struct device *d = &f->devices[di];
	const struct model *m = &f->models[d->model];
	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "node", f->nodes[d->node].name,
			 "index", (json_int_t)d->index, "model", m->name, "vendor", m->vendor,
			 "health", fleet_health_name(d->health), "job",
			 d->job ? json_integer((json_int_t)d->job) : json_null(), "cap_w",
			 d->job ? json_integer(d->cap_w) : json_null(), "measured_w",
			 isnan(d->measured_w) ? json_null() : json_real(d->measured_w),
			 "health_reason", d->health_reason ? json_string(d->health_reason) : json_null(),
			 "uuid", d->uuid ? json_string(d->uuid) : json_null());
}

static json_t *placement_encode(const struct fleet *f, const struct job *j)
{
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < j->nplaced; i++) {
		const struct job_worker *w = &j->placement[i];
		json_t *devs = json_array();
		for (uint32_t k = 0; devs && k < 64; k++)
			if (w->mask & (1ull << k))
				json_array_append_new(devs, json_integer(k));
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:o, s:I}", "worker",
						     (json_int_t)i, "node", f->nodes[w->node].name,
						     "model", f->models[w->model].name, "devices",
						     devs, "cap_w", (json_int_t)w->cap_w));
	}
	return arr;
}

json_t *codec_job_encode(const struct fleet *f, const struct job *j)
{
	const struct job_request *r = &j->req;
	json_t *vendors = json_array(), *models = json_array();
	for (uint32_t i = 0; vendors && i < r->nvendors; i++)
		json_array_append_new(vendors, json_string(r->vendors[i]));
	for (uint32_t i = 0; models && i < r->nmodels; i++)
		json_array_append_new(models, json_string(r->models[i]));
	json_t *accel = json_pack("{s:o, s:o, s:o, s:I, s:b}", "vendors", vendors, "models",
				  models, "stack", r->stack[0] ? json_string(r->stack) : json_null(),
				  "min_memory_gib", (json_int_t)r->min_memory_gib, "fp8", r->fp8);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:b, s:I, s:o, s:o, s:s}",
			      "id", (json_int_t)j->id, "name", j->name, "kind",
			      job_kind_name(r->kind), "state", job_state_name(j->state), "owner",
			      j->owner ? j->owner : "", "uid", (json_int_t)j->uid, "queue",
			      j->queue ? j->queue : "default", "priority", (json_int_t)j->priority,
			      "preemptible", j->preemptible, "devices", (json_int_t)r->devices,
			      "accelerator", accel, "power",
			      json_pack("{s:o}", "cap_w",
					r->cap_w ? json_integer(r->cap_w) : json_null()),
			      "topology", job_topology_name(r->topology));
	if (!o)
		return NULL;
	json_object_set_new(o, r->kind == JOB_TRAINING ? "workers" : "replicas",
			    json_integer(r->count));
	if (r->kind == JOB_INFERENCE)
		json_object_set_new(o, "min_replicas", json_integer(r->min_count ? r->min_count : r->count));
	if (r->capability) {
		json_object_set_new(o, "devices", json_null());
		json_object_set_new(o, r->kind == JOB_TRAINING ? "per_worker" : "per_replica",
				    json_pack("{s:I, s:I, s:f, s:b}", "memory_gib",
					      (json_int_t)r->need.memory_gib, "bandwidth_gbs",
					      (json_int_t)r->need.bandwidth_gbs, "bf16_tflops",
					      r->need.bf16_tflops, "fp8", r->need.fp8));
	}
	if (r->cap_auto)
		json_object_set_new(o, "power", json_pack("{s:s, s:f, s:n}", "cap", "auto", "min_perf",
							  r->min_perf, "cap_w"));
	json_object_set_new(o, "requeues", json_integer(j->requeues));
	json_object_set_new(o, "on_device_failure",
			    json_string(r->keep_on_device_failure ? "keep" : "requeue"));
	json_object_set_new(o, "duration_s",
			    r->duration_s ? json_integer(r->duration_s) : json_null());
	json_object_set_new(o, "submitted_at", codec_time(j->submitted_at));
	json_object_set_new(o, "placed_at", codec_time(j->placed_at));
	json_object_set_new(o, "finished_at", codec_time(j->finished_at));
	json_object_set_new(o, "reason", j->reason ? json_string(j->reason) : json_null());
	json_t *pl = placement_encode(f, j);
	if (!pl || json_object_set_new(o, "placement", pl) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *codec_fleet_export(const struct fleet *f)
{
	json_t *models = json_array(), *nodes = json_array();
	json_t *domains = json_array(), *full = codec_domains_encode(f);
	size_t i;
	json_t *d;

	for (uint32_t m = 0; models && m < f->nmodels; m++)
		json_array_append_new(models, codec_model_encode(&f->models[m]));
	json_array_foreach(full, i, d) {
		json_array_append_new(domains, json_pack("{s:O, s:O, s:O}", "name",
							 json_object_get(d, "name"), "parent",
							 json_object_get(d, "parent"), "budget_w",
							 json_object_get(d, "budget_w")));
	}
	json_decref(full);
	for (uint32_t n = 0; nodes && n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		json_array_append_new(nodes, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o}",
			"name", nd->name, "domain", f->domains[nd->domain].name, "host_idle_w",
			(json_int_t)nd->host_idle_w, "group",
			nd->group && *nd->group ? json_string(nd->group) : json_null(), "labels",
			labels(nd), "exporter_url",
			nd->exporter_url && *nd->exporter_url ? json_string(nd->exporter_url) : json_null(),
			"devices", node_dev_specs(f, nd)));
		if (nd->agent_url && *nd->agent_url)
			json_object_set_new(json_array_get(nodes, json_array_size(nodes) - 1),
					    "agent_url", json_string(nd->agent_url));
	}
	return json_pack("{s:o, s:o, s:o}", "models", models, "domains", domains, "nodes", nodes);
}

json_t *codec_explain_encode(const struct explain *x, int64_t now)
{
	json_t *stages = json_array(), *fixes = json_array();
	for (uint32_t i = 0; stages && i < x->nstages; i++) {
		const struct explain_stage *s = &x->stages[i];
		json_t *top = json_array();
		for (uint32_t k = 0; top && k < s->ntop; k++)
			json_array_append_new(top, json_pack("{s:s, s:s}", "name", s->top[k].name,
							     "detail", s->top[k].detail));
		json_array_append_new(stages, json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "stage",
			s->name, "code", s->code, "nodes_in", (json_int_t)s->nodes_in,
			"nodes_removed", (json_int_t)s->nodes_removed, "devices_removed",
			(json_int_t)s->devices_removed, "top", top));
	}
	for (uint32_t i = 0; fixes && i < x->nfixes; i++)
		json_array_append_new(fixes, json_pack("{s:s, s:s}", "code", x->fixes[i].code,
						       "text", x->fixes[i].text));
	json_t *power = x->power_known
		? json_pack("{s:s, s:I, s:I, s:I, s:I}", "domain", x->power_domain, "budget_w",
			    (json_int_t)x->power_budget_w, "reserved_w", (json_int_t)x->power_reserved_w,
			    "need_w", (json_int_t)x->power_need_w, "shortfall_w",
			    (json_int_t)x->power_shortfall_w)
		: json_null();
	json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "job",
		(json_int_t)x->job, "code", x->code, "verdict", x->verdict, "queue_position",
		x->queue_position ? json_integer(x->queue_position) : json_null(), "stages", stages,
		"power", power, "nearest_miss",
		x->nearest_miss[0] ? json_string(x->nearest_miss) : json_null(), "fixes", fixes,
		"estimated_start", x->start_known ? codec_time(x->estimated_start > now
							       ? x->estimated_start : now)
						  : json_null(),
		"start_after_job", x->start_after_job ? json_integer((json_int_t)x->start_after_job)
						      : json_null());
	return o;
}
