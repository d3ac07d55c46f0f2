/*
 * input — a simulation's inputs from JSON (contract: input.h).
 *
 * Owns: nothing past a call (outputs are the caller's).
 * Never: does I/O.
 */
#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "trace.h"

int sim_input_fleet(struct fleet *f, const json_t *doc, struct err *e)
{
	struct fleet_doc d;
	int rc = codec_fleet_decode(doc, &d, e);
	if (rc < 0)
		return rc;
	rc = fleet_import(f, &d, e);
	codec_fleet_doc_free(&d);
	return rc;
}

void sim_input_jobs_free(struct sim_job *jobs, uint32_t n)
{
	for (uint32_t i = 0; jobs && i < n; i++)
		job_free(jobs[i].job);
	free(jobs);
}

int sim_input_jobs(const json_t *trace, const struct fleet *f, struct sim_job **out,
		   uint32_t *n, struct err *e)
{
	size_t len = json_array_size(trace);
	struct sim_job *jobs = calloc(len + 1, sizeof(*jobs));
	uint32_t k = 0;
	int rc;
	if (!jobs)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	for (; k < len; k++) {
		double submit;
		struct job *j = job_new();
		if (!j) {
			rc = err_set(e, -ENOMEM, NULL, "out of memory");
			goto fail;
		}
		jobs[k].job = j;
		if ((rc = trace_job_decode(json_array_get(trace, k), f, j, &submit, e)) < 0) {
			char msg[sizeof(e->message)], field[sizeof(e->field) + 16];
			snprintf(msg, sizeof(msg), "%s", e->message);
			snprintf(field, sizeof(field), "[%u]%s%.80s", k, e->field[0] ? "." : "", e->field);
			err_set(e, rc, field, "trace job %u: %s", k + 1, msg);
			k++;
			goto fail;
		}
		jobs[k].submit_s = (int64_t)submit;
	}
	*out = jobs;
	*n = k;
	return 0;
fail:
	sim_input_jobs_free(jobs, k);
	return rc;
}

int sim_input_events(const json_t *arr, const struct fleet *f, struct sim_event **out,
		     uint32_t *n, struct err *e)
{
	static const char *const names[_SIM_ACTION_MAX] = {"node_down", "node_up", "node_drain",
							     "budget"};
	char field[48];
	if (!json_is_array(arr))
		return err_set(e, ERR_INVALID, "events", "must be a list");
	size_t len = json_array_size(arr);
	struct sim_event *ev = calloc(len + 1, sizeof(*ev));
	if (!ev)
		return err_set(e, -ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < len; i++) {
		const json_t *o = json_array_get(arr, i);
		const char *action = json_string_value(json_object_get(o, "action"));
		const json_t *at = json_object_get(o, "at_s");
		struct sim_event *x = &ev[i];
		snprintf(field, sizeof(field), "events[%zu]", i);
		if (!json_is_number(at) || json_number_value(at) < 0) {
			snprintf(field, sizeof(field), "events[%zu].at_s", i);
			goto bad_at;
		}
		x->at_s = (int64_t)json_number_value(at);
		int a = 0;
		while (a < _SIM_ACTION_MAX && (!action || strcmp(names[a], action) != 0))
			a++;
		if (a == _SIM_ACTION_MAX) {
			free(ev);
			snprintf(field, sizeof(field), "events[%zu].action", i);
			return err_set(e, ERR_INVALID, field,
				       "must be node_down, node_up, node_drain or budget");
		}
		x->action = (enum sim_action)a;
		if (x->action == SIM_BUDGET) {
			const char *dn = json_string_value(json_object_get(o, "domain"));
			const json_t *w = json_object_get(o, "budget_w");
			x->domain = dn ? fleet_domain_find(f, dn) : FLEET_NONE;
			if (x->domain == FLEET_NONE || !json_is_integer(w) || json_integer_value(w) < 0) {
				bool no_domain = x->domain == FLEET_NONE;
				free(ev);
				snprintf(field, sizeof(field), "events[%zu].%s", i,
					 no_domain ? "domain" : "budget_w");
				return err_set(e, ERR_INVALID, field, no_domain
					       ? "must name a domain of the fleet"
					       : "must be a whole number of watts >= 0");
			}
			x->budget_w = json_integer_value(w);
		} else {
			const char *nn = json_string_value(json_object_get(o, "node"));
			x->node = nn ? fleet_node_find(f, nn) : FLEET_NONE;
			if (x->node == FLEET_NONE) {
				free(ev);
				snprintf(field, sizeof(field), "events[%zu].node", i);
				return err_set(e, ERR_INVALID, field, "must name a node of the fleet");
			}
		}
	}
	/* stable by at_s: insertion sort keeps equal times in file order */
	for (size_t i = 1; i < len; i++) {
		struct sim_event x = ev[i];
		size_t j = i;
		while (j > 0 && ev[j - 1].at_s > x.at_s) {
			ev[j] = ev[j - 1];
			j--;
		}
		ev[j] = x;
	}
	*out = ev;
	*n = (uint32_t)len;
	return 0;
bad_at:
	free(ev);
	return err_set(e, ERR_INVALID, field, "must be a number of seconds >= 0");
}
