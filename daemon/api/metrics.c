/*
 * api/metrics — GET /metrics: Prometheus text exposition (format 0.0.4).
 *
 * Owns: the request, commit, queue and pass histograms and counters (struct api_metrics
 * in internal.h) and their rendering. Never: scans devices one by one (node masks and
 * per-node popcounts), allocates without a ceiling (the page is built in one buffer that
 * grows to at most API_METRICS_MAX bytes; past it the answer is 503).
 * Series (names are a stable contract, documented in proto/API.md):
 *   joule_http_requests_total{route,code}, joule_http_request_duration_seconds{route}
 *   joule_jobs{state}, joule_jobs_active{queue,state}, joule_queue_wait_seconds,
 *   joule_queue_pass_duration_seconds, joule_placement_tries_total
 *   joule_devices{model,vendor,state}  state: free, allocated, unavailable (node not up)
 *   joule_devices_unhealthy{model,vendor,health}
 *   joule_domain_budget_watts / _reserved_watts / _headroom_watts {domain}
 *   joule_store_commit_duration_seconds, joule_store_batch_requests,
 *   joule_store_commits_total, joule_store_commit_failures_total
 *   joule_process_resident_memory_bytes, joule_process_cpu_seconds_total
 *   joule_nodes{state}, joule_telemetry_scrapes_total{result},
 *   joule_domain_measured_watts{domain} (domains with a reading), joule_events_retained,
 *   joule_webhook_deliveries_total{result}, joule_webhook_backlog{url},
 *   joule_webhook_failing{url}
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hook.h"
#include "internal.h"

#define API_METRICS_MAX (64u << 20)

const char *const api_route_names[API_ROUTE_MAX] = {
	[API_ROUTE_UNKNOWN] = "unknown",       [API_ROUTE_HEALTH] = "/v1/health",
	[API_ROUTE_FLEET] = "/v1/fleet",       [API_ROUTE_MODELS] = "/v1/models",
	[API_ROUTE_DOMAINS] = "/v1/domains",   [API_ROUTE_DOMAIN] = "/v1/domains/{name}",
	[API_ROUTE_NODES] = "/v1/nodes",       [API_ROUTE_NODE] = "/v1/nodes/{name}",
	[API_ROUTE_NODE_ACTION] = "/v1/nodes/{name}/{action}",
	[API_ROUTE_DEVICES] = "/v1/devices",   [API_ROUTE_JOBS] = "/v1/jobs",
	[API_ROUTE_JOB] = "/v1/jobs/{id}",     [API_ROUTE_EXPLAIN] = "/v1/jobs/{id}/explain",
	[API_ROUTE_CAPACITY] = "/v1/capacity", [API_ROUTE_METRICS] = "/metrics",
	[API_ROUTE_EVENTS] = "/v1/events",     [API_ROUTE_JOB_STATUS] = "/v1/jobs/{id}/status",
	[API_ROUTE_DEVICE_RESET] = "/v1/devices/{node}/{index}/{action}",
	[API_ROUTE_WEBHOOKS] = "/v1/webhooks",  [API_ROUTE_SIMULATE] = "/v1/simulate",
};

/* Upper bounds in seconds (latency) or counts (batch sizes). */
static const double latency_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
static const double wait_le[] = {1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600};
static const double batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static void hist_observe(struct api_hist *h, const double *le, uint32_t nle, double v)
{
	uint32_t i = 0;
	while (i < nle && v > le[i])
		i++;
	h->counts[i]++;
	h->sum += v;
	h->count++;
}

void api_metrics_request(struct api *a, int route, int status, uint64_t ns)
{
	struct api_metrics *m = &a->metrics;
	if (route < 0 || route >= API_ROUTE_MAX)
		route = API_ROUTE_UNKNOWN;
	if (status >= 100 && status < 600)
		m->requests[route][status - 100]++;
	hist_observe(&m->request_latency[route], latency_le, API_HIST_LATENCY, ns / 1e9);
}

void api_metrics_commit(struct api *a, uint64_t ns, uint32_t batch)
{
	hist_observe(&a->metrics.commit_latency, latency_le, API_HIST_LATENCY, ns / 1e9);
	hist_observe(&a->metrics.batch_size, batch_le, API_HIST_BATCH, batch);
}

void api_metrics_placed(struct api *a, int64_t waited_s)
{
	hist_observe(&a->metrics.queue_wait, wait_le, API_HIST_WAIT, waited_s < 0 ? 0 : waited_s);
}

void api_metrics_pass(struct api *a, uint64_t ns, uint32_t tries)
{
	hist_observe(&a->metrics.pass_latency, latency_le, API_HIST_LATENCY, ns / 1e9);
	a->metrics.placement_tries += tries;
}

/* ---------------- rendering ---------------- */

struct page {
	char *buf;
	size_t len, cap;
	bool full;
};

static void put(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct page *p, const char *fmt, ...)
{
	for (;;) {
		if (p->full)
			return;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(p->buf + p->len, p->cap - p->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			p->full = true;
			return;
		}
		if ((size_t)n < p->cap - p->len) {
			p->len += (size_t)n;
			return;
		}
		size_t ncap = p->cap * 2;
		char *nb = ncap <= API_METRICS_MAX ? realloc(p->buf, ncap) : NULL;
		if (!nb) {
			p->full = true;
			return;
		}
		p->buf = nb;
		p->cap = ncap;
	}
}

/* One sample per webhook endpoint: its backlog, or whether it is failing. The URL is a
 * label value: backslash, quote and newline escaped. */
static void webhook_gauges(const struct api *a, struct page *p, bool failing)
{
	for (uint32_t i = 0; i < hook_count(a->hook); i++) {
		struct hook_ep_stats s;
		char url[2 * HOOK_URL_MAX + 1], *o = url;
		hook_stats(a->hook, i, &s);
		for (const char *c = s.url; *c && o < url + sizeof(url) - 3; c++) {
			if (*c == '\\' || *c == '"' || *c == '\n')
				*o++ = '\\';
			*o++ = *c == '\n' ? 'n' : *c;
		}
		*o = '\0';
		put(p, "joule_webhook_%s{url=\"%s\"} %llu\n", failing ? "failing" : "backlog", url,
		    failing ? (unsigned long long)s.failing : (unsigned long long)s.backlog);
	}
}

/* A label value with \, " and newline escaped (names here are identifiers, so short). */
static const char *esc(const char *s, char *out, size_t n)
{
	size_t o = 0;
	for (; *s && o + 3 < n; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
	return out;
}

static void hist(struct page *p, const char *name, const char *labels, const struct api_hist *h,
		 const double *le, uint32_t nle)
{
	uint64_t cum = 0;
	for (uint32_t i = 0; i < nle; i++) {
		cum += h->counts[i];
		put(p, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", le[i],
		    (unsigned long long)cum);
	}
	cum += h->counts[nle];
	put(p, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
	    (unsigned long long)cum);
	put(p, "%s_sum%s%s%s %.9g\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
	put(p, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)h->count);
}

static void render(struct api *a, struct page *p)
{
	const struct api_metrics *m = &a->metrics;
	const struct fleet *f = &a->fleet;
	char e1[256], e2[256], labels[512];

	put(p, "# HELP joule_http_requests_total HTTP requests answered, by route template and status.\n"
	       "# TYPE joule_http_requests_total counter\n");
	for (int r = 0; r < API_ROUTE_MAX; r++)
		for (int s = 0; s < 500; s++)
			if (m->requests[r][s])
				put(p, "joule_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
				    api_route_names[r], s + 100, (unsigned long long)m->requests[r][s]);
	put(p, "# HELP joule_http_request_duration_seconds Time from a complete request to its "
	       "answer (including the wait for the group commit).\n"
	       "# TYPE joule_http_request_duration_seconds histogram\n");
	for (int r = 0; r < API_ROUTE_MAX; r++)
		if (m->request_latency[r].count) {
			snprintf(labels, sizeof(labels), "route=\"%s\"", api_route_names[r]);
			hist(p, "joule_http_request_duration_seconds", labels, &m->request_latency[r],
			     latency_le, API_HIST_LATENCY);
		}

	put(p, "# HELP joule_jobs Jobs by state.\n# TYPE joule_jobs gauge\n");
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		put(p, "joule_jobs{state=\"%s\"} %u\n", job_state_name((enum job_state)s),
		    a->jobs.count_by_state[s]);
	/* queue x state for unfinished jobs: pending queue and active set, no full scan */
	put(p, "# HELP joule_jobs_active Unfinished jobs by queue and state.\n"
	       "# TYPE joule_jobs_active gauge\n");
	struct hmap seen;
	hmap_init_str(&seen);
	uint32_t *counts = calloc((size_t)(a->jobs.npending + a->jobs.nactive + 1) * 3, sizeof(*counts));
	char **names = calloc(a->jobs.npending + a->jobs.nactive + 1, sizeof(*names));
	uint32_t nq = 0;
	for (uint32_t i = 0; counts && names && i < a->jobs.npending + a->jobs.nactive; i++) {
		const struct job *j = i < a->jobs.npending ? a->jobs.pending[i]
							 : a->jobs.active[i - a->jobs.npending];
		uint32_t q;
		if (!hmap_get_str(&seen, j->queue, &q)) {
			q = nq;
			if (hmap_put_str(&seen, j->queue, q) < 0)
				continue;
			names[nq++] = j->queue;
		}
		counts[q * 3 + (j->state == JOB_PENDING ? 0 : j->state == JOB_PLACED ? 1 : 2)]++;
	}
	for (uint32_t q = 0; counts && names && q < nq; q++)
		for (int k = 0; k < 3; k++)
			put(p, "joule_jobs_active{queue=\"%s\",state=\"%s\"} %u\n",
			    esc(names[q], e1, sizeof(e1)), k == 0 ? "pending" : k == 1 ? "placed" : "running",
			    counts[q * 3 + k]);
	free(counts);
	free(names);
	hmap_free(&seen);
	put(p, "# HELP joule_queue_wait_seconds Time from submission to placement.\n"
	       "# TYPE joule_queue_wait_seconds histogram\n");
	hist(p, "joule_queue_wait_seconds", "", &m->queue_wait, wait_le, API_HIST_WAIT);
	put(p, "# HELP joule_queue_pass_duration_seconds One bounded queue pass (placement "
	       "decisions of a loop turn).\n# TYPE joule_queue_pass_duration_seconds histogram\n");
	hist(p, "joule_queue_pass_duration_seconds", "", &m->pass_latency, latency_le, API_HIST_LATENCY);
	put(p, "# HELP joule_placement_tries_total Placement decisions made by queue passes.\n"
	       "# TYPE joule_placement_tries_total counter\njoule_placement_tries_total %llu\n",
	    (unsigned long long)m->placement_tries);

	/* devices by model: free / allocated / unavailable, and health, from node masks */
	uint64_t *dc = calloc((size_t)f->nmodels * 5 + 1, sizeof(*dc));
	for (uint32_t n = 0; dc && n < f->nnodes; n++) {
		const struct node *nd = &f->nodes[n];
		for (uint32_t k = 0; k < nd->nslots; k++) {
			const struct node_slot *s = &f->slots[nd->first_slot + k];
			if (s->node == FLEET_NONE)
				continue;
			uint64_t *c = &dc[(size_t)s->model * 5];
			uint64_t alloc = s->mask & nd->alloc_mask, idle = s->mask & ~nd->alloc_mask;
			c[1] += (uint64_t)__builtin_popcountll(alloc);
			if (nd->state == NODE_UP)
				c[0] += (uint64_t)__builtin_popcountll(idle & nd->healthy_mask);
			else
				c[2] += (uint64_t)__builtin_popcountll(idle & nd->healthy_mask);
			c[2] += (uint64_t)__builtin_popcountll(idle & ~nd->healthy_mask);
		}
		for (uint32_t k = 0; k < nd->ndevices; k++) {
			const struct device *d = &f->devices[nd->first_device + k];
			if (d->health != HEALTH_OK)
				dc[(size_t)d->model * 5 + 3 + (d->health == HEALTH_FAILED)]++;
		}
	}
	put(p, "# HELP joule_devices Devices by model and state (free: healthy, unallocated, node "
	       "up; unavailable: unallocated on a node not up, or unhealthy).\n"
	       "# TYPE joule_devices gauge\n");
	for (uint32_t i = 0; dc && i < f->nmodels; i++)
		for (int k = 0; k < 3; k++)
			put(p, "joule_devices{model=\"%s\",vendor=\"%s\",state=\"%s\"} %llu\n",
			    f->models[i].name, f->models[i].vendor,
			    k == 0 ? "free" : k == 1 ? "allocated" : "unavailable",
			    (unsigned long long)dc[(size_t)i * 5 + k]);
	put(p, "# HELP joule_devices_unhealthy Devices whose health is not ok.\n"
	       "# TYPE joule_devices_unhealthy gauge\n");
	for (uint32_t i = 0; dc && i < f->nmodels; i++)
		for (int k = 0; k < 2; k++)
			put(p, "joule_devices_unhealthy{model=\"%s\",vendor=\"%s\",health=\"%s\"} %llu\n",
			    f->models[i].name, f->models[i].vendor, k ? "failed" : "degraded",
			    (unsigned long long)dc[(size_t)i * 5 + 3 + k]);
	free(dc);

	static const char *const watt_names[3] = {"budget", "reserved", "headroom"};
	for (int k = 0; k < 3; k++) {
		put(p, "# HELP joule_domain_%s_watts Power domain %s (W).\n"
		       "# TYPE joule_domain_%s_watts gauge\n", watt_names[k], watt_names[k], watt_names[k]);
		for (uint32_t d = 0; d < f->ndomains; d++) {
			const struct domain *dm = &f->domains[d];
			long long v = k == 0 ? dm->budget_w : k == 1 ? dm->reserved_w
								   : dm->budget_w - dm->reserved_w;
			put(p, "joule_domain_%s_watts{domain=\"%s\"} %lld\n", watt_names[k],
			    esc(dm->name, e2, sizeof(e2)), v);
		}
	}

	put(p, "# HELP joule_domain_measured_watts Measured draw below a domain: device watts from "
	       "exporters plus host idle watts of measured nodes.\n"
	       "# TYPE joule_domain_measured_watts gauge\n");
	for (uint32_t d = 0; d < f->ndomains; d++)
		if (f->domains[d].measured_at)
			put(p, "joule_domain_measured_watts{domain=\"%s\"} %.1f\n",
			    esc(f->domains[d].name, e2, sizeof(e2)), f->domains[d].measured_w);
	uint32_t by_state[_NODE_STATE_MAX] = {0};
	for (uint32_t n = 0; n < f->nnodes; n++)
		by_state[f->nodes[n].state]++;
	put(p, "# HELP joule_nodes Nodes by state.\n# TYPE joule_nodes gauge\n");
	for (int st = 0; st < _NODE_STATE_MAX; st++)
		put(p, "joule_nodes{state=\"%s\"} %u\n", fleet_node_state_name((enum node_state)st),
		    by_state[st]);
	put(p, "# HELP joule_telemetry_scrapes_total Exporter scrapes by result.\n"
	       "# TYPE joule_telemetry_scrapes_total counter\n"
	       "joule_telemetry_scrapes_total{result=\"ok\"} %llu\n"
	       "joule_telemetry_scrapes_total{result=\"failed\"} %llu\n",
	    (unsigned long long)(a->scrapes - a->scrape_failures),
	    (unsigned long long)a->scrape_failures);
	uint64_t dn, fn, backlog;
	uint32_t failing;
	api_webhooks_totals(a, &dn, &fn, &backlog, &failing);
	put(p, "# HELP joule_webhook_deliveries_total Webhook POSTs by result (ok: answered 2xx).\n"
	       "# TYPE joule_webhook_deliveries_total counter\n"
	       "joule_webhook_deliveries_total{result=\"ok\"} %llu\n"
	       "joule_webhook_deliveries_total{result=\"failed\"} %llu\n",
	    (unsigned long long)dn, (unsigned long long)fn);
	put(p, "# HELP joule_webhook_backlog Events in the outbox not yet acknowledged, by endpoint.\n"
	       "# TYPE joule_webhook_backlog gauge\n");
	webhook_gauges(a, p, false);
	put(p, "# HELP joule_webhook_failing 1 while an endpoint has failed 3 times in a row.\n"
	       "# TYPE joule_webhook_failing gauge\n");
	webhook_gauges(a, p, true);
	put(p, "# HELP joule_events_retained Events kept for GET /v1/events.\n"
	       "# TYPE joule_events_retained gauge\njoule_events_retained %u\n", a->ev_n);

	put(p, "# HELP joule_store_commit_duration_seconds SQLite group commits (one fsync each).\n"
	       "# TYPE joule_store_commit_duration_seconds histogram\n");
	hist(p, "joule_store_commit_duration_seconds", "", &m->commit_latency, latency_le,
	     API_HIST_LATENCY);
	put(p, "# HELP joule_store_batch_requests Requests answered per group commit.\n"
	       "# TYPE joule_store_batch_requests histogram\n");
	hist(p, "joule_store_batch_requests", "", &m->batch_size, batch_le, API_HIST_BATCH);
	put(p, "# HELP joule_store_commits_total Committed batches.\n# TYPE joule_store_commits_total "
	       "counter\njoule_store_commits_total %llu\n", (unsigned long long)a->commits);
	put(p, "# HELP joule_store_commit_failures_total Batches the database refused (memory "
	       "was rebuilt from it).\n# TYPE joule_store_commit_failures_total counter\n"
	       "joule_store_commit_failures_total %llu\n", (unsigned long long)a->commit_failures);

	long pages = 0, rss = 0;
	FILE *fp = fopen("/proc/self/statm", "r");
	if (fp) {
		if (fscanf(fp, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(fp);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	put(p, "# HELP joule_process_resident_memory_bytes Resident memory.\n"
	       "# TYPE joule_process_resident_memory_bytes gauge\n"
	       "joule_process_resident_memory_bytes %lld\n",
	    (long long)rss * sysconf(_SC_PAGESIZE));
	put(p, "# HELP joule_process_cpu_seconds_total User and system CPU time.\n"
	       "# TYPE joule_process_cpu_seconds_total counter\njoule_process_cpu_seconds_total %.3f\n",
	    ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
}

void api_metrics_get(struct ctx *c)
{
	struct page p = {.cap = 64 * 1024};
	if (api_query_check(c, NULL) < 0)
		return api_fail(c, c->err.code);
	p.buf = malloc(p.cap);
	if (!p.buf) {
		err_set(&c->err, -ENOMEM, NULL, "out of memory");
		return api_fail(c, -ENOMEM);
	}
	render(c->a, &p);
	if (p.full) {
		free(p.buf);
		err_set(&c->err, ERR_UNAVAILABLE, NULL, "the metrics page is over its size limit");
		return api_fail(c, ERR_UNAVAILABLE);
	}
	c->status = 200;
	c->text = p.buf;
	c->text_len = p.len;
	snprintf(c->headers, sizeof(c->headers), "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
}
