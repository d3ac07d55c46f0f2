/*
 * codec — the wire types: JSON (jansson) to and from the core's structs, with validation
 * errors that name the offending field as a path into the document.
 *
 * Owns: the JSON shape of every object in proto/API.md and the submit-time rules.
 * Never: changes fleet or job state, does I/O.
 * Encoders return a new reference (NULL only on out-of-memory); decoders return 0 or a
 * negative code with e filled, and write their outputs only on success.
 */
#ifndef JOULE_CODEC_H
#define JOULE_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "explain.h"
#include "fleet.h"
#include "job.h"

/* Parse a request body: ERR_MALFORMED naming line and column when it is not JSON,
 * ERR_MALFORMED when it is not an object. Nesting is limited by jansson (2048). */
int codec_parse(const char *body, size_t len, json_t **out, struct err *e);

/* The error body {"error":{"code","message","field"}} as a malloc'd string. */
char *codec_error_body(const struct err *e, size_t *len);

/* A json value dumped compactly into a malloc'd string (steals the reference). */
char *codec_dump(json_t *v, size_t *len);

/*
 * Decode a submission into j (a fresh job_new()): name, kind, queue, priority,
 * preemptible and the request. Names of models, vendors and stacks must be known to the
 * catalog in f; power.cap_w must lie in [min_cap_w, tdp_w] of at least one allowed model.
 */
int codec_job_decode(const json_t *doc, const struct fleet *f, struct job *j, struct err *e);

/* Decode a fleet document. out's arrays are allocated; its strings point into doc, which
 * must outlive out. Free with codec_fleet_doc_free. */
int codec_fleet_decode(const json_t *doc, struct fleet_doc *out, struct err *e);
void codec_fleet_doc_free(struct fleet_doc *d);

json_t *codec_model_encode(const struct model *m);
json_t *codec_domain_encode(const struct fleet *f, uint32_t d);
json_t *codec_node_encode(const struct fleet *f, uint32_t n, bool with_devices);
json_t *codec_device_encode(const struct fleet *f, uint32_t d);
json_t *codec_job_encode(const struct fleet *f, const struct job *j);
/* Domains in parent-before-child order (depth-first, siblings by creation). */
json_t *codec_domains_encode(const struct fleet *f);
/* The whole fleet in the POST /v1/fleet shape. */
json_t *codec_fleet_export(const struct fleet *f);

/* GET /v1/jobs/{id}/explain */
json_t *codec_explain_encode(const struct explain *x, int64_t now);

/* RFC 3339 UTC ("2026-11-23T20:00:00Z") or JSON null for 0. */
json_t *codec_time(int64_t t);

#endif
