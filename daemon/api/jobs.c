/*
 * api/jobs — handlers for /v1/jobs: submit (with Idempotency-Key), list, show, cancel.
 * Never: changes a job without putting the change into the store's batch; lets anyone
 * but the owner or root cancel a job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "explain.h"
#include "place.h"
#include "store.h"

#define LIST_SCAN_MAX 200000   /* jobs examined per list request, whatever the filters */

static struct job *find_job(struct ctx *c, const char *id)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(id, &end, 10);
	struct job *j = NULL;
	if (*id && !*end && !errno && *id != '-')
		j = jobs_get(&c->a->jobs, v);
	if (!j)
		err_set(&c->err, ERR_NOT_FOUND, NULL, "no job %s", id);
	return j;
}

static bool key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 255)
		return false;
	for (; *k; k++)
		if ((unsigned char)*k < 0x21 || (unsigned char)*k > 0x7e)
			return false;
	return true;
}

void api_jobs_post(struct ctx *c)
{
	struct api *a = c->a;
	const char *key = c->req->idempotency_key;
	json_t *body = NULL;
	struct job *j = NULL;
	int rc;

	if ((rc = api_query_check(c, NULL)) < 0)
		goto fail;
	if (key) {
		if (!key_ok(key)) {
			rc = err_set(&c->err, ERR_INVALID, "Idempotency-Key",
				     "must be 1-255 visible ASCII characters");
			goto fail;
		}
		struct job *orig = jobs_find_idem(&a->jobs, (uint32_t)c->req->uid, key);
		if (orig)
			return api_ok(c, 200, codec_job_encode(&a->fleet, orig));
	}
	if ((rc = codec_parse(c->req->body, c->req->body_len, &body, &c->err)) < 0)
		goto fail;
	if (!(j = job_new())) {
		rc = err_set(&c->err, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	if ((rc = codec_job_decode(body, &a->fleet, j, &c->err)) < 0)
		goto fail;
	j->uid = (uint32_t)c->req->uid;
	j->submitted_at = c->now;
	if (!(j->owner = strdup(api_user_name(a, j->uid))) || (key && !(j->idem_key = strdup(key)))) {
		rc = err_set(&c->err, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	if ((rc = jobs_add(&a->jobs, j)) < 0) {
		err_set(&c->err, rc, NULL, "cannot add the job");
		goto fail;
	}
	json_decref(body);
	/* The queue pass of this loop turn places it (before the commit), honouring
	 * priority, reservations and preemption; the reply shows the job after that. */
	a->pass_needed = true;
	api_event(a, "job.submitted", j->id, NULL,
		  json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", j->name, "kind",
			    job_kind_name(j->req.kind), "queue", j->queue, "priority", j->priority,
			    "owner", j->owner));
	api_persist_job(a, j, false);
	c->render_job = j->id;
	api_ok(c, 201, codec_job_encode(&a->fleet, j));
	return;
fail:
	job_free(j);
	json_decref(body);
	api_fail(c, rc);
}

static bool match(struct ctx *c, const struct job *j, int state, int kind, const char *owner,
		  const char *queue)
{
	if (state >= 0 && (int)j->state != state)
		return false;
	if (kind >= 0 && (int)j->req.kind != kind)
		return false;
	if (queue && strcmp(j->queue, queue) != 0)
		return false;
	if (owner) {
		char uid[16];
		snprintf(uid, sizeof(uid), "%u", j->uid);
		if (strcmp(j->owner, owner) != 0 && strcmp(uid, owner) != 0)
			return false;
	}
	return true;
}

static void list(struct ctx *c)
{
	static const char *const allowed[] = {"state", "owner", "kind", "queue", "limit", "after",
					      NULL};
	const struct jobs *t = &c->a->jobs;
	uint64_t limit = 100, after = 0;
	int state = -1, kind = -1;
	const char *v;

	if (api_query_check(c, allowed) < 0 ||
	    api_query_uint(c, "limit", 1, 1000, &limit) < 0 ||
	    api_query_uint(c, "after", 0, UINT64_MAX >> 1, &after) < 0)
		return api_fail(c, c->err.code);
	if ((v = api_query(c, "state"))) {
		enum job_state s;
		if (job_state_parse(v, &s) < 0) {
			err_set(&c->err, ERR_INVALID, "state",
				"must be pending, placed, running, succeeded, failed or cancelled");
			return api_fail(c, ERR_INVALID);
		}
		state = (int)s;
	}
	if ((v = api_query(c, "kind"))) {
		enum job_kind k;
		if (job_kind_parse(v, &k) < 0) {
			err_set(&c->err, ERR_INVALID, "kind", "must be training or inference");
			return api_fail(c, ERR_INVALID);
		}
		kind = (int)k;
	}
	const char *owner = api_query(c, "owner"), *queue = api_query(c, "queue");
	json_t *arr = json_array();
	uint64_t id = after + 1, scanned = 0, last = 0;
	bool more = false;
	for (; arr && id < t->next_id && scanned < LIST_SCAN_MAX; id++, scanned++) {
		const struct job *j = jobs_get(t, id);
		if (!j || !match(c, j, state, kind, owner, queue))
			continue;
		if (json_array_size(arr) == limit) {
			more = true;
			break;
		}
		if (json_array_append_new(arr, codec_job_encode(&c->a->fleet, j)) < 0) {
			json_decref(arr);
			arr = NULL;
		}
		last = id;
	}
	/* the scan bound stopped us: the client continues from where we looked */
	if (!more && scanned == LIST_SCAN_MAX && id < t->next_id) {
		more = true;
		last = id - 1;
	}
	if (!arr)
		return api_ok(c, 200, NULL);
	api_ok(c, 200, json_pack("{s:o, s:o}", "jobs", arr, "next",
				 more ? json_integer((json_int_t)last) : json_null()));
}

void api_jobs_get(struct ctx *c, const char *id)
{
	if (!id)
		return list(c);
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	struct job *j = find_job(c, id);
	if (!j)
		return api_fail(c, ERR_NOT_FOUND);
	api_ok(c, 200, codec_job_encode(&c->a->fleet, j));
}

void api_jobs_delete(struct ctx *c, const char *id)
{
	struct api *a = c->a;
	int rc;

	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	struct job *j = find_job(c, id);
	if (!j)
		return api_fail(c, ERR_NOT_FOUND);
	if (c->req->uid != j->uid && !api_is_admin(a, c->req->uid, c->req->gid)) {
		err_set(&c->err, ERR_FORBIDDEN, NULL,
			"job %llu belongs to %s; only its owner or an admin may cancel it",
			(unsigned long long)j->id, j->owner);
		return api_fail(c, ERR_FORBIDDEN);
	}
	if ((rc = place_cancel(&a->fleet, &a->jobs, j, c->now, &c->err)) < 0)
		return api_fail(c, rc);
	char reason[96];
	snprintf(reason, sizeof(reason), "cancelled by %s", api_user_name(a, (uint32_t)c->req->uid));
	api_event(a, "job.cancelled", j->id, NULL, json_pack("{s:s}", "by",
							  api_user_name(a, (uint32_t)c->req->uid)));
	char *r = strdup(reason);
	if (r) {
		free(j->reason);
		j->reason = r;
	}
	api_persist_job(a, j, false);
	api_ok(c, 200, codec_job_encode(&a->fleet, j));
}

void api_jobs_explain(struct ctx *c, const char *id)
{
	struct explain *x;
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	struct job *j = find_job(c, id);
	if (!j)
		return api_fail(c, ERR_NOT_FOUND);
	if (!(x = malloc(sizeof(*x))) || explain_job(&c->a->fleet, &c->a->jobs, j, c->now, x) < 0) {
		free(x);
		err_set(&c->err, -ENOMEM, NULL, "out of memory");
		return api_fail(c, -ENOMEM);
	}
	api_ok(c, 200, codec_explain_encode(x, c->now));
	free(x);
}

/* POST /v1/jobs/{id}/status {"state":"running"|"succeeded"|"failed","message":"…"} */
void api_jobs_status(struct ctx *c, const char *id)
{
	static const char *const keys[] = {"state", "message", NULL};
	struct api *a = c->a;
	json_t *body = NULL;
	enum job_state to;
	int rc;

	if ((rc = api_query_check(c, NULL)) < 0)
		goto fail;
	struct job *j = find_job(c, id);
	if (!j) {
		rc = ERR_NOT_FOUND;
		goto fail;
	}
	if (c->req->uid != j->uid && !api_is_admin(a, c->req->uid, c->req->gid)) {
		rc = err_set(&c->err, ERR_FORBIDDEN, NULL,
			     "job %llu belongs to %s; only its owner or an admin may report its state",
			     (unsigned long long)j->id, j->owner);
		goto fail;
	}
	if ((rc = codec_parse(c->req->body, c->req->body_len, &body, &c->err)) < 0)
		goto fail;
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		bool ok = false;
		for (const char *const *p = keys; *p && !ok; p++)
			ok = strcmp(*p, k) == 0;
		if (!ok) {
			rc = err_set(&c->err, ERR_INVALID, k, "unknown field");
			goto fail;
		}
	}
	const json_t *st = json_object_get(body, "state"), *msg = json_object_get(body, "message");
	if (!json_is_string(st) || job_state_parse(json_string_value(st), &to) < 0 ||
	    (to != JOB_RUNNING && to != JOB_SUCCEEDED && to != JOB_FAILED)) {
		rc = err_set(&c->err, ERR_INVALID, "state", "must be running, succeeded or failed");
		goto fail;
	}
	if (msg && !json_is_null(msg) && (!json_is_string(msg) || json_string_length(msg) > 1024)) {
		rc = err_set(&c->err, ERR_INVALID, "message", "must be a string of at most 1024 characters");
		goto fail;
	}
	if ((rc = place_report(&a->fleet, &a->jobs, j, to, c->now, &c->err)) < 0)
		goto fail;
	if (msg && json_is_string(msg)) {
		char *r = strdup(json_string_value(msg));
		if (r) {
			free(j->reason);
			j->reason = r;
		}
	}
	char type[32];
	snprintf(type, sizeof(type), "job.%s", job_state_name(to));
	api_event(a, type, j->id, NULL, json_pack("{s:s}", "message",
						 msg && json_is_string(msg) ? json_string_value(msg) : ""));
	api_persist_job(a, j, false);
	json_decref(body);
	api_ok(c, 200, codec_job_encode(&a->fleet, j));
	return;
fail:
	json_decref(body);
	api_fail(c, rc);
}
