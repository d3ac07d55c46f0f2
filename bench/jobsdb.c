/*
 * jobsdb — writes a large joule database the way jouled stores it, for bench/run-restart.
 *
 * Owns: one database file (created or extended through daemon/store's API, so the schema,
 * the migrations and every row are exactly the daemon's), an in-memory fleet and the
 * recent jobs while they go through the core's queue pass.
 * Never: writes SQL of its own; places a job any way but the core's place_pass (the active
 * jobs' placements are real ones: jouled restores them at start with place_restore); uses
 * rand() (splitmix64: the same arguments give the same database).
 *
 * What it writes, in order (ids dense from 1, times spread over --days up to now):
 *   1. the fleet document (bench/fleetgen's shape) through codec_fleet_decode,
 *      fleet_import and store_put_fleet — the path of POST /v1/fleet;
 *   2. the old jobs (all but the last --recent): finished — succeeded 85 %, failed 7 %,
 *      cancelled 8 % (half of those before they were placed) — each with the placement it
 *      ran on (a random node of a model the request allows, kept as its record, as jouled
 *      keeps a finished job's last placement), written and freed one by one;
 *   3. the recent jobs: added pending, then one place_pass over them (the daemon's queue
 *      pass: priority, backfill, power): those placed stay placed, half of them are then
 *      reported running; the rest stay pending with the pass's reason;
 *   4. the newest --events events (job.submitted, job.placed, job.<end>), as jouled keeps
 *      them (its default retention is 100,000).
 * Job bodies follow bench/loadgen's submit mix and are decoded by codec_job_decode, so
 * every request is one the API would accept. Owners are 40 users (uid 2000-2039).
 *
 * Output: a short summary on stdout (counts by state, devices held, file sizes, time).
 * Exit status 0, 1 on a store or core error (message on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "codec.h"
#include "jobmix.h"
#include "fleet.h"
#include "job.h"
#include "place.h"
#include "store.h"

struct jd_opts {
	const char *db, *fleet;
	uint64_t jobs, recent, events, batch, seed;
	int64_t days, now;
	bool sync_full;
};

static double jd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A new job from the mix, as POST /v1/jobs would make it (owner, uid, submitted_at). */
static struct job *jd_job(const struct fleet *f, uint64_t *s, uint64_t id, int64_t submitted,
			  struct err *e)
{
	char body[1024], name[32];
	json_t *doc = NULL;
	struct job *j = job_new();
	char owner[16];
	snprintf(name, sizeof(name), "job-%" PRIu64, id);
	if (!j || jobmix_body(s, name, NULL, true, body, sizeof(body)) < 0) {
		err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	if (codec_parse(body, strlen(body), &doc, e) < 0 || codec_job_decode(doc, f, j, e) < 0)
		goto fail;
	json_decref(doc);
	uint32_t user = (uint32_t)(jobmix_rand(s) % 40);
	snprintf(owner, sizeof(owner), "user%02u", user);
	j->id = id;
	j->uid = 2000 + user;
	j->submitted_at = submitted;
	if (!(j->owner = strdup(owner))) {
		err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	return j;
fail:
	json_decref(doc);
	job_free(j);
	return NULL;
}

/* May a finished job's request have run on model m? (vendors, models, stack, memory) */
static bool jd_allows(const struct fleet *f, const struct job *j, uint32_t m)
{
	const struct job_request *r = &j->req;
	const struct model *md = &f->models[m];
	bool ok = r->nvendors == 0;
	for (uint32_t i = 0; i < r->nvendors && !ok; i++)
		ok = strcmp(r->vendors[i], md->vendor) == 0;
	if (!ok)
		return false;
	ok = r->nmodels == 0;
	for (uint32_t i = 0; i < r->nmodels && !ok; i++)
		ok = strcmp(r->models[i], md->name) == 0;
	return ok && (!r->stack[0] || strcmp(r->stack, md->stack) == 0) &&
	       md->memory_gib >= r->min_memory_gib && (!r->fp8 || md->fp8_tflops > 0);
}

/* The record of where a finished job ran: each worker on a random node of an allowed
 * model (any node when none allows it), devices = the lowest bits. */
static int jd_history(const struct fleet *f, uint64_t *s, struct job *j)
{
	uint32_t count = j->req.count, per = j->req.devices ? j->req.devices : 1;
	if (!(j->placement = calloc(count, sizeof(*j->placement))))
		return -ENOMEM;
	for (uint32_t w = 0; w < count; w++) {
		uint32_t node = 0;
		for (int tries = 0; tries < 16; tries++) {
			node = (uint32_t)(jobmix_rand(s) % f->nnodes);
			if (jd_allows(f, j, f->devices[f->nodes[node].first_device].model))
				break;
		}
		const struct node *nd = &f->nodes[node];
		uint16_t m = (uint16_t)f->devices[nd->first_device].model;
		uint32_t k = per < nd->ndevices ? per : nd->ndevices;
		j->placement[w].node = node;
		j->placement[w].model = m;
		j->placement[w].mask = k >= 64 ? UINT64_MAX : (1ull << k) - 1;
		j->placement[w].cap_w = j->req.cap_w && j->req.cap_w < f->models[m].tdp_w
					? j->req.cap_w : f->models[m].tdp_w;
	}
	j->nplaced = count;
	return 0;
}

static int jd_fleet(struct store *st, struct fleet *f, const char *path, struct err *e)
{
	json_error_t je;
	struct fleet_doc doc = {0};
	json_t *j = json_load_file(path, 0, &je);
	int rc;
	if (!j)
		return err_set(e, -EINVAL, NULL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	if ((rc = codec_fleet_decode(j, &doc, e)) == 0 && (rc = fleet_import(f, &doc, e)) == 0 &&
	    (rc = store_put_fleet(st, f, &doc)) == 0)
		rc = store_commit(st, e);
	codec_fleet_doc_free(&doc);
	json_decref(j);
	return rc;
}

struct jd_events {
	struct store *st;
	uint64_t seq, written, max;
};

static int jd_event(struct jd_events *ev, int64_t ts, const char *type, const struct job *j,
		    json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (!text)
		return -ENOMEM;
	int rc = store_put_event(ev->st, ++ev->seq, ts, type, j->id, NULL, text);
	free(text);
	ev->written++;
	return rc;
}

/* A job's events as jouled writes them: submitted, placed (if it was), and its end. */
static int jd_job_events(struct jd_events *ev, const struct fleet *f, const struct job *j)
{
	int rc = jd_event(ev, j->submitted_at, "job.submitted", j,
			  json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", j->name, "kind",
				    job_kind_name(j->req.kind), "queue", j->queue, "priority",
				    j->priority, "owner", j->owner));
	if (rc == 0 && j->nplaced && j->placed_at) {
		json_t *nodes = json_array();
		for (uint32_t i = 0; nodes && i < j->nplaced; i++)
			json_array_append_new(nodes, json_string(f->nodes[j->placement[i].node].name));
		rc = jd_event(ev, j->placed_at, "job.placed", j,
			      json_pack("{s:o, s:s, s:I, s:I}", "nodes", nodes, "model",
					f->models[j->placement[0].model].name, "cap_w",
					(json_int_t)j->placement[0].cap_w, "workers",
					(json_int_t)j->nplaced));
	}
	if (rc == 0 && j->state == JOB_RUNNING)
		rc = jd_event(ev, j->placed_at, "job.running", j, json_pack("{s:s}", "message", ""));
	if (rc == 0 && job_state_finished(j->state)) {
		char type[32];
		snprintf(type, sizeof(type), "job.%s", job_state_name(j->state));
		rc = jd_event(ev, j->finished_at, type, j, j->state == JOB_CANCELLED
			      ? json_pack("{s:s}", "by", j->owner) : json_pack("{s:s}", "message", ""));
	}
	return rc;
}

static int jd_usage(FILE *out)
{
	fputs("usage: jobsdb --db PATH --fleet FLEET.json [--jobs 1000000] [--recent 20000]\n"
	      "              [--events 100000] [--days 30] [--batch 20000] [--seed 1] [--sync-full]\n"
	      "  --db PATH      database to create or extend (jouled's schema, via daemon/store)\n"
	      "  --fleet FILE   fleet document (bench/fleetgen output) imported first\n"
	      "  --jobs N       jobs in all (ids 1..N)\n"
	      "  --recent N     the newest N jobs go through the queue pass: placed, running or pending\n"
	      "  --events N     newest events written (jouled keeps 100,000 by default)\n"
	      "  --days N       submission times spread over the last N days\n"
	      "  --batch N      jobs per transaction\n"
	      "  --sync-full    synchronous=FULL while writing (default NORMAL: same file, faster)\n",
	      out);
	return 2;
}

static int jd_parse(int argc, char **argv, struct jd_opts *o)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'}, {"fleet", required_argument, NULL, 'f'},
		{"jobs", required_argument, NULL, 'j'}, {"recent", required_argument, NULL, 'r'},
		{"events", required_argument, NULL, 'e'}, {"days", required_argument, NULL, 'D'},
		{"batch", required_argument, NULL, 'b'}, {"seed", required_argument, NULL, 's'},
		{"sync-full", no_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	*o = (struct jd_opts){.jobs = 1000000, .recent = 20000, .events = 100000, .batch = 20000,
			      .seed = 1, .days = 30};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;
		if (optarg) {
			errno = 0;
			v = strtoull(optarg, &end, 10);
		}
		bool num = optarg && *optarg && end && !*end && !errno;
		switch (c) {
		case 'd': o->db = optarg; break;
		case 'f': o->fleet = optarg; break;
		case 'j': if (!num || !v || v > 100000000) return jd_usage(stderr); o->jobs = v; break;
		case 'r': if (!num) return jd_usage(stderr); o->recent = v; break;
		case 'e': if (!num) return jd_usage(stderr); o->events = v; break;
		case 'D': if (!num || !v || v > 3650) return jd_usage(stderr); o->days = (int64_t)v; break;
		case 'b': if (!num || !v) return jd_usage(stderr); o->batch = v; break;
		case 's': if (!num) return jd_usage(stderr); o->seed = v; break;
		case 'S': o->sync_full = true; break;
		case 'h': jd_usage(stdout); exit(0);
		default: return jd_usage(stderr);
		}
	}
	if (!o->db || !o->fleet || optind != argc)
		return jd_usage(stderr);
	if (o->recent > o->jobs)
		o->recent = o->jobs;
	return 0;
}

static long long jd_size(const char *path, const char *suffix)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s%s", path, suffix);
	return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

int main(int argc, char **argv)
{
	struct jd_opts o;
	struct err e = {0};
	struct store *st = NULL;
	struct fleet f;
	struct jobs t;
	uint64_t s, by_state[_JOB_STATE_MAX] = {0};
	int rc;

	if (jd_parse(argc, argv, &o) != 0)
		return 2;
	o.now = (int64_t)time(NULL);
	s = o.seed * 0x2545f4914f6cdd1dull + 1;
	fleet_init(&f);
	jobs_init(&t);
	double t0 = jd_now();
	struct store_options so = {.synchronous_full = o.sync_full};
	if ((rc = store_open(o.db, &so, &st, &e)) < 0 || (rc = store_load(st, &f, &t, &e)) < 0)
		goto fail;
	if (t.next_id != 1) {
		rc = err_set(&e, -EEXIST, NULL, "%s already holds jobs: give a new file", o.db);
		goto fail;
	}
	if ((rc = jd_fleet(st, &f, o.fleet, &e)) < 0)
		goto fail;
	double t_fleet = jd_now();

	/* times: evenly spread over the window, oldest first */
	int64_t span = o.days * 86400, first = o.now - span;
	/* events for the newest jobs, ~1.5 or more each, then trimmed to exactly --events */
	uint64_t old = o.jobs - o.recent, ev_jobs = o.events * 2 / 3;
	uint64_t ev_from = o.jobs > ev_jobs ? o.jobs - ev_jobs : 0;
	struct jd_events ev = {.st = st, .max = o.events};
	for (uint64_t id = 1; id <= old; id++) {
		int64_t sub = first + (int64_t)((double)span * (double)(id - 1) / (double)o.jobs);
		struct job *j = jd_job(&f, &s, id, sub, &e);
		if (!j) {
			rc = e.code ? e.code : -ENOMEM;
			goto fail;
		}
		unsigned roll = (unsigned)(jobmix_rand(&s) % 100);
		j->state = roll < 85 ? JOB_SUCCEEDED : roll < 92 ? JOB_FAILED : JOB_CANCELLED;
		bool ran = j->state != JOB_CANCELLED || jobmix_rand(&s) % 2;
		int64_t dur = j->req.duration_s ? j->req.duration_s : (int64_t)jobmix_between(&s, 300, 7200);
		if (ran) {
			j->placed_at = sub + (int64_t)jobmix_between(&s, 0, 1800);
			j->finished_at = j->placed_at + (j->state == JOB_SUCCEEDED ? dur
							   : (int64_t)jobmix_between(&s, 1, (uint64_t)dur));
			if ((rc = jd_history(&f, &s, j)) < 0) {
				job_free(j);
				err_set(&e, rc, NULL, "out of memory");
				goto fail;
			}
		} else {
			j->finished_at = sub + (int64_t)jobmix_between(&s, 1, 3600);
		}
		if (j->finished_at > o.now)
			j->finished_at = o.now;
		char reason[64];
		if (j->state == JOB_CANCELLED)
			snprintf(reason, sizeof(reason), "cancelled by %s", j->owner);
		else if (j->state == JOB_FAILED)
			snprintf(reason, sizeof(reason), "exit code %u", (unsigned)jobmix_between(&s, 1, 139));
		j->reason = j->state == JOB_SUCCEEDED ? NULL : strdup(reason);
		by_state[j->state]++;
		rc = store_put_job(st, &f, j, ran);
		if (rc == 0 && id > ev_from)
			rc = jd_job_events(&ev, &f, j);
		job_free(j);
		if (rc == 0 && id % o.batch == 0)
			rc = store_commit(st, &e);
		if (rc < 0)
			goto fail;
	}
	if ((rc = store_commit(st, &e)) < 0)
		goto fail;
	double t_old = jd_now();

	/* the recent jobs: pending, then the core's queue pass places what fits */
	for (uint64_t id = old + 1; id <= o.jobs; id++) {
		int64_t sub = first + (int64_t)((double)span * (double)(id - 1) / (double)o.jobs);
		struct job *j = jd_job(&f, &s, id, sub, &e);
		if (!j) {
			rc = e.code ? e.code : -ENOMEM;
			goto fail;
		}
		if ((rc = jobs_add(&t, j)) < 0) {
			job_free(j);
			err_set(&e, rc, NULL, "cannot add job %" PRIu64, id);
			goto fail;
		}
	}
	int tries = place_pass(&f, &t, o.now - 600, UINT32_MAX, NULL, NULL);
	if (tries < 0) {
		rc = err_set(&e, tries, NULL, "queue pass failed");
		goto fail;
	}
	double t_pass = jd_now();
	uint64_t held = 0;
	for (uint64_t id = old + 1; id <= o.jobs; id++) {
		struct job *j = jobs_get(&t, id);
		if (j->state == JOB_PLACED && jobmix_rand(&s) % 2 &&
		    (rc = place_report(&f, &t, j, JOB_RUNNING, o.now - 300, &e)) < 0)
			goto fail;
		if (job_state_active(j->state))
			for (uint32_t w = 0; w < j->nplaced; w++)
				held += (uint64_t)__builtin_popcountll(j->placement[w].mask);
		by_state[j->state]++;
		if ((rc = store_put_job(st, &f, j, true)) < 0 ||
		    (id > ev_from && (rc = jd_job_events(&ev, &f, j)) < 0))
			goto fail;
		if (id % o.batch == 0 && (rc = store_commit(st, &e)) < 0)
			goto fail;
	}
	if ((rc = store_commit(st, &e)) < 0)
		goto fail;
	if (ev.written > o.events && (rc = store_trim_events(st, ev.seq - o.events + 1)) == 0)
		rc = store_commit(st, &e);
	if (rc < 0)
		goto fail;
	double t_end = jd_now();
	store_close(st);
	st = NULL;

	printf("jobsdb: %s: %" PRIu64 " jobs (succeeded %" PRIu64 ", failed %" PRIu64
	       ", cancelled %" PRIu64 ", pending %" PRIu64 ", placed %" PRIu64 ", running %" PRIu64
	       "); %" PRIu64 " of %u devices held; %" PRIu64 " events kept\n",
	       o.db, o.jobs, by_state[JOB_SUCCEEDED], by_state[JOB_FAILED], by_state[JOB_CANCELLED],
	       by_state[JOB_PENDING], by_state[JOB_PLACED], by_state[JOB_RUNNING], held,
	       f.ndevices, ev.written < o.events ? ev.written : o.events);
	printf("jobsdb: fleet %u nodes, %u devices, %u domains; queue pass %d tries\n", f.nnodes,
	       f.ndevices, f.ndomains, tries);
	printf("jobsdb: time: fleet %.1f s, old jobs %.1f s, pass %.1f s, recent jobs %.1f s, "
	       "total %.1f s\n", t_fleet - t0, t_old - t_fleet, t_pass - t_old, t_end - t_pass,
	       t_end - t0);
	printf("jobsdb: file %lld bytes, wal %lld bytes\n", jd_size(o.db, ""), jd_size(o.db, "-wal"));
	jobs_free(&t);
	fleet_free(&f);
	return 0;
fail:
	fprintf(stderr, "jobsdb: %s (%d)\n", e.message[0] ? e.message : "error", rc);
	store_close(st);
	jobs_free(&t);
	fleet_free(&f);
	return 1;
}
