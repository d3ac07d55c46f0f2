/*
 * fuzz_json — libFuzzer target for the request-body validators of proto/codec.c: the JSON
 * parse (codec_parse), the job submission (codec_job_decode) and the fleet document
 * (codec_fleet_decode, then fleet_import).
 *
 * Owns: one base fleet, imported once from BASE_FLEET below (six catalog models, three
 * domains, three nodes), that job submissions are checked against; it is never changed.
 * Never: keeps state between inputs besides that fleet.
 *
 * Each input is parsed once; when it is a JSON object it is decoded both as a job and as
 * a fleet document (the corpus mixes the two). Checks, besides what ASan/UBSan catch:
 *   - a refusal returns the code it wrote into struct err, with a message; a parse
 *     refusal is ERR_MALFORMED; a decode refusal is ERR_INVALID (or -ENOMEM) and names a
 *     field whose first segment is a key the validator knows or a key of the input (the
 *     one document-level refusal, "too many entries", has no field);
 *   - an accepted job encodes (codec_job_encode), and its encoding, cut back to the
 *     submission keys, decodes again to a job that encodes identically (a fixpoint);
 *   - an accepted fleet document either imports into a copy of the base fleet or is
 *     refused with a field (ERR_INVALID) or ERR_CONFLICT; an imported fleet exports
 *     (codec_fleet_export), and the export decodes and imports into a fresh fleet whose
 *     export is the same.
 * A broken invariant calls abort(), which libFuzzer (and the replay) report as a crash.
 * Built by clang with -fsanitize=fuzzer (run-libfuzzer, README.md), or with replay.c into
 * fuzz_json_replay by gcc, which meson runs over corpus/json/.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec.h"
#include "err.h"
#include "fleet.h"
#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char BASE_FLEET[] =
	"{\"models\":["
	"{\"name\":\"H100-SXM5-80GB\",\"vendor\":\"nvidia\",\"stack\":\"cuda\",\"memory_gib\":80,"
	"\"bandwidth_gbs\":3350,\"bf16_tflops\":989,\"fp8_tflops\":1979,\"tdp_w\":700,"
	"\"min_cap_w\":200,\"idle_w\":70},"
	"{\"name\":\"H200-SXM-141GB\",\"vendor\":\"nvidia\",\"stack\":\"cuda\",\"memory_gib\":141,"
	"\"bandwidth_gbs\":4800,\"bf16_tflops\":989,\"fp8_tflops\":1979,\"tdp_w\":700,"
	"\"min_cap_w\":200,\"idle_w\":70},"
	"{\"name\":\"H20-96GB\",\"vendor\":\"nvidia\",\"stack\":\"cuda\",\"memory_gib\":96,"
	"\"bandwidth_gbs\":4000,\"bf16_tflops\":148,\"fp8_tflops\":296,\"tdp_w\":400,"
	"\"min_cap_w\":200,\"idle_w\":70},"
	"{\"name\":\"Ascend910B3\",\"vendor\":\"huawei\",\"stack\":\"cann\",\"memory_gib\":64,"
	"\"bandwidth_gbs\":1600,\"bf16_tflops\":313,\"fp8_tflops\":0,\"tdp_w\":400,"
	"\"min_cap_w\":200,\"idle_w\":93},"
	"{\"name\":\"Ascend910B2\",\"vendor\":\"huawei\",\"stack\":\"cann\",\"memory_gib\":64,"
	"\"bandwidth_gbs\":1600,\"bf16_tflops\":376,\"fp8_tflops\":0,\"tdp_w\":400,"
	"\"min_cap_w\":200,\"idle_w\":93},"
	"{\"name\":\"Ascend910C\",\"vendor\":\"huawei\",\"stack\":\"cann\",\"memory_gib\":128,"
	"\"bandwidth_gbs\":3200,\"bf16_tflops\":752,\"fp8_tflops\":0,\"tdp_w\":800,"
	"\"min_cap_w\":400,\"idle_w\":174}],"
	"\"domains\":[{\"name\":\"site\",\"parent\":null,\"budget_w\":100000},"
	"{\"name\":\"rack-a\",\"parent\":\"site\",\"budget_w\":40000},"
	"{\"name\":\"rack-b\",\"parent\":\"site\",\"budget_w\":30000}],"
	"\"nodes\":["
	"{\"name\":\"a-n1\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a1\","
	"\"labels\":{\"pool\":\"train\"},\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"a-n2\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a2\","
	"\"devices\":[{\"model\":\"H200-SXM-141GB\",\"count\":8}]},"
	"{\"name\":\"b-n1\",\"domain\":\"rack-b\",\"host_idle_w\":1200,\"group\":\"hccs-b1\","
	"\"devices\":[{\"model\":\"Ascend910B3\",\"count\":8}]}]}";

/* The keys a submission may carry (codec_job_decode's list) and a fleet document's. */
static const char *const JOB_KEYS[] = {"name", "kind", "queue", "priority", "preemptible",
				       "workers", "replicas", "min_replicas", "devices",
				       "per_worker", "per_replica", "accelerator", "power",
				       "topology", "duration_s", "on_device_failure", NULL};
static const char *const FLEET_KEYS[] = {"models", "domains", "nodes", NULL};

static struct fleet base;
static bool base_ready;
static bool verbose;          /* FUZZ_VERBOSE set: one line per decode on stderr */

static void require(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
		abort();
	}
}

static int import_text(struct fleet *f, const char *text, struct err *e)
{
	json_t *doc = NULL;
	struct fleet_doc d = {0};
	int rc = codec_parse(text, strlen(text), &doc, e);
	if (rc == 0 && (rc = codec_fleet_decode(doc, &d, e)) == 0)
		rc = fleet_import(f, &d, e);
	codec_fleet_doc_free(&d);
	json_decref(doc);
	return rc;
}

static void base_init(void)
{
	struct err e = {0};
	if (base_ready)
		return;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	fleet_init(&base);
	if (import_text(&base, BASE_FLEET, &e) < 0) {
		fprintf(stderr, "fuzz_json: base fleet: %s (%s)\n", e.message, e.field);
		abort();
	}
	base_ready = true;
}

/* The first segment of a field path: up to the first '.' or '['. */
static size_t top_len(const char *field)
{
	return strcspn(field, ".[");
}

static bool in_list(const char *s, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, s, n) == 0)
			return true;
	return false;
}

/* Some key of doc begins with s[0..n) (a field may cut a long or dotted key). */
static bool key_prefix(const json_t *doc, const char *s, size_t n)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)doc, k, v) {
		if (strncmp(k, s, n) == 0)
			return true;
	}
	return false;
}

/* A decode refusal: the code it returned, a message, and a field rooted in the document. */
static void check_refusal(int rc, const struct err *e, const json_t *doc,
			  const char *const *keys, const char *what)
{
	require(rc < 0 && rc == e->code, "a refusal returns the code it recorded");
	require(e->message[0] != '\0', "a refusal has a message");
	require(memchr(e->field, '\0', sizeof(e->field)) != NULL, "field is terminated");
	if (rc == -ENOMEM)
		return;
	require(rc == ERR_INVALID || rc == ERR_CONFLICT, what);
	if (rc == ERR_CONFLICT)
		return;
	/* an empty member name at the top is named "" (two quotes) */
	if (strcmp(e->field, "\"\"") == 0 && json_object_get(doc, ""))
		return;
	if (!e->field[0]) {
		require(strcmp(e->message, "too many entries") == 0,
			"an invalid document names its field");
		return;
	}
	/* an unknown key is named as it is (cut at 80 bytes), even when it holds '.' or '[' */
	if (key_prefix(doc, e->field, strlen(e->field)))
		return;
	size_t n = top_len(e->field);
	require(n > 0, "a field path starts with a key");
	require(in_list(e->field, n, keys) || key_prefix(doc, e->field, n),
		"a field names a key of the document or of the schema");
}

/* The encoded job cut back to what a submission may say (nulls mean "absent"). */
static json_t *resubmission(const json_t *enc)
{
	json_t *doc = json_object();
	const char *k;
	json_t *v;
	require(doc != NULL, "out of memory");
	json_object_foreach((json_t *)enc, k, v) {
		if (!in_list(k, strlen(k), JOB_KEYS) || json_is_null(v))
			continue;
		if (json_is_object(v)) {
			json_t *sub = json_object();
			const char *sk;
			json_t *sv;
			require(sub != NULL, "out of memory");
			json_object_foreach(v, sk, sv) {
				if (!json_is_null(sv))
					json_object_set(sub, sk, sv);
			}
			json_object_set_new(doc, k, sub);
		} else {
			json_object_set(doc, k, v);
		}
	}
	return doc;
}

static void fuzz_job(const json_t *doc)
{
	struct err e = {0};
	struct job *j = job_new(), *j2 = NULL;
	json_t *enc = NULL, *again = NULL, *enc2 = NULL;
	char *text = NULL;
	int rc;

	if (!j)
		return;
	rc = codec_job_decode(doc, &base, j, &e);
	if (verbose)
		fprintf(stderr, "job: %d %s (%s)\n", rc, rc ? e.message : "accepted", e.field);
	if (rc < 0) {
		check_refusal(rc, &e, doc, JOB_KEYS, "a job refusal is ERR_INVALID");
		require(rc != ERR_CONFLICT, "a job decode never answers conflict");
		goto out;
	}
	require(j->name && *j->name && j->queue && *j->queue, "an accepted job has a name, queue");
	require(j->req.count >= 1 && j->req.min_count >= 1 && j->req.min_count <= j->req.count,
		"1 <= min_count <= count");
	require(j->req.capability || (j->req.devices >= 1 && j->req.devices <= JOB_MAX_DEVICES),
		"devices in range unless in capability mode");
	enc = codec_job_encode(&base, j);
	require(enc != NULL, "an accepted job encodes");
	text = json_dumps(enc, JSON_COMPACT);
	require(text != NULL, "the encoding dumps");
	again = resubmission(enc);
	j2 = job_new();
	if (!j2)
		goto out;
	memset(&e, 0, sizeof(e));
	rc = codec_job_decode(again, &base, j2, &e);
	if (rc < 0)
		fprintf(stderr, "fuzz_json: resubmitting %s: %s (field %s)\n", text, e.message,
			e.field);
	require(rc == 0, "a job's own encoding decodes again");
	enc2 = codec_job_encode(&base, j2);
	require(enc2 != NULL && json_equal(enc, enc2), "decode(encode(job)) encodes the same");
out:
	free(text);
	json_decref(enc);
	json_decref(enc2);
	json_decref(again);
	job_free(j);
	job_free(j2);
}

/* A copy of the base fleet: import its own export into a fresh fleet. */
static int base_copy(struct fleet *f)
{
	struct err e = {0};
	char *text = codec_dump(codec_fleet_export(&base), NULL);
	int rc = -ENOMEM;
	fleet_init(f);
	if (text)
		rc = import_text(f, text, &e);
	free(text);
	return rc;
}

static void fuzz_fleet(const json_t *doc)
{
	struct err e = {0};
	struct fleet_doc d = {0};
	struct fleet f, f2;
	json_t *exp = NULL, *exp2 = NULL;
	char *text = NULL;
	int rc;

	rc = codec_fleet_decode(doc, &d, &e);
	if (verbose)
		fprintf(stderr, "fleet: %d %s (%s)\n", rc, rc ? e.message : "decoded", e.field);
	if (rc < 0) {
		check_refusal(rc, &e, doc, FLEET_KEYS, "a fleet refusal is ERR_INVALID");
		require(d.models == NULL && d.nodes == NULL, "a refused decode writes no output");
		return;
	}
	if (base_copy(&f) < 0) {
		codec_fleet_doc_free(&d);
		return;
	}
	memset(&e, 0, sizeof(e));
	rc = fleet_import(&f, &d, &e);
	if (verbose)
		fprintf(stderr, "import: %d %s (%s)\n", rc, rc ? e.message : "imported", e.field);
	if (rc < 0) {
		check_refusal(rc, &e, doc, FLEET_KEYS, "an import refusal is 422 or 409");
		goto out;
	}
	exp = codec_fleet_export(&f);
	require(exp != NULL, "an imported fleet exports");
	text = json_dumps(exp, JSON_COMPACT);
	require(text != NULL, "the export dumps");
	fleet_init(&f2);
	memset(&e, 0, sizeof(e));
	rc = import_text(&f2, text, &e);
	if (rc < 0 && rc != -ENOMEM)
		fprintf(stderr, "fuzz_json: re-importing %s: %s (field %s)\n", text, e.message,
			e.field);
	require(rc == 0 || rc == -ENOMEM, "an export imports into a fresh fleet");
	if (rc == 0) {
		exp2 = codec_fleet_export(&f2);
		require(exp2 != NULL && json_equal(exp, exp2), "export(import(export)) is the same");
	}
	fleet_free(&f2);
out:
	free(text);
	json_decref(exp);
	json_decref(exp2);
	fleet_free(&f);
	codec_fleet_doc_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = {0};
	json_t *doc = NULL;
	int rc;

	base_init();
	rc = codec_parse((const char *)data, size, &doc, &e);
	if (verbose && rc < 0)
		fprintf(stderr, "parse: %d %s\n", rc, e.message);
	if (rc < 0) {
		require(rc == ERR_MALFORMED && e.code == rc && e.message[0], "a parse refusal is 400");
		require(doc == NULL, "a refused parse writes no output");
		return 0;
	}
	require(json_is_object(doc), "codec_parse gives an object");
	fuzz_job(doc);
	fuzz_fleet(doc);
	json_decref(doc);
	return 0;
}
