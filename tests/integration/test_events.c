/*
 * test_events — the job lifecycle and the event log, end to end: GET /v1/events (long
 * poll, types filter, retention, 410, kill -9, SIGTERM), POST /v1/jobs/{id}/status (the
 * launcher's reports and their transitions), --placed-timeout, --demo-finish, and
 * `joulectl watch` / `joulectl report` run as real processes.
 *
 * Long polls are sent on raw connections (td_connect) so a test can submit on another
 * connection while one waits, and time exactly when the answer comes. The uid-switching
 * test needs root (uid 65534, like test_ops); CI runs as root.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/daemon.h"

#define OTHER_UID 65534 /* nobody */
#define OTHER_GID 65534 /* nogroup */

/* ---- fixtures ---- */

/* Start a daemon (extra args NULL-terminated or NULL) with tests/data/fleet.json imported:
 * rack-a (a-n1, a-n2: 8 x H100 each), rack-b (b-n1: 8 x Ascend910B3). */
static void start_with_fleet(struct td_daemon *d, const char *const *extra)
{
	ck_assert_int_eq(td_start_args(d, extra), 0);
	json_t *fleet = td_data_json("fleet.json");
	ck_assert_ptr_nonnull(fleet);
	char *body = json_dumps(fleet, JSON_COMPACT);
	json_decref(fleet);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/fleet", body, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "import: %ld %s", r.status, r.raw);
	td_response_free(&r);
	free(body);
}

/* Submit an H100 job of `workers` x 8 devices; returns its id. */
static long long submit(struct td_daemon *d, const char *name, int workers, int duration_s)
{
	char body[512];
	int n = snprintf(body, sizeof(body),
			 "{\"name\":\"%s\",\"kind\":\"training\",\"workers\":%d,\"devices\":8,"
			 "\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]}",
			 name, workers);
	if (duration_s > 0)
		n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"duration_s\":%d", duration_s);
	snprintf(body + n, sizeof(body) - (size_t)n, "}");
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", "/v1/jobs", body, NULL, &r), 0);
	ck_assert_msg(r.status == 201, "submit: %ld %s", r.status, r.raw);
	long long id = json_integer_value(json_object_get(r.json, "id"));
	td_response_free(&r);
	ck_assert_int_gt(id, 0);
	return id;
}

static json_t *get_job(struct td_daemon *d, long long id)
{
	char p[64];
	snprintf(p, sizeof(p), "/v1/jobs/%lld", id);
	json_t *j = td_get_json(d, p);
	ck_assert_ptr_nonnull(j);
	return j;
}

static const char *job_state(json_t *job)
{
	return json_string_value(json_object_get(job, "state"));
}

/* POST /v1/jobs/{id}/status with body; returns the HTTP status, the answer in *out
 * (NULL: dropped). */
static long report(struct td_daemon *d, long long id, const char *body, json_t **out)
{
	char p[64];
	snprintf(p, sizeof(p), "/v1/jobs/%lld/status", id);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "POST", p, body, NULL, &r), 0);
	long status = r.status;
	if (out)
		*out = json_incref(r.json);
	td_response_free(&r);
	return status;
}

static long long domain_reserved(struct td_daemon *d, const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "/v1/domains/%s", name);
	json_t *j = td_get_json(d, p);
	ck_assert_ptr_nonnull(j);
	long long w = json_integer_value(json_object_get(j, "reserved_w"));
	json_decref(j);
	return w;
}

/* GET /v1/events?QUERY (no wait) that must answer 200; the answer. */
static json_t *events(struct td_daemon *d, const char *query)
{
	char p[512];
	snprintf(p, sizeof(p), "/v1/events%s%s", *query ? "?" : "", query);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(d, "GET", p, NULL, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "GET %s: %ld %s", p, r.status, r.raw);
	json_t *j = json_incref(r.json);
	td_response_free(&r);
	ck_assert_ptr_nonnull(j);
	return j;
}

static long long jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The `next` of the log's current end. */
static long long log_end(struct td_daemon *d)
{
	json_t *e = events(d, "since=0&limit=10000");
	long long next = jint(e, "next");
	json_decref(e);
	return next;
}

/* Index of the first event in list (from `from`) of `type` about job `job` (0: any); -1. */
static int find_event(const json_t *list, size_t from, const char *type, long long job)
{
	for (size_t i = from; i < json_array_size(list); i++) {
		const json_t *e = json_array_get(list, i);
		if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0 &&
		    (job == 0 || jint(e, "job") == job))
			return (int)i;
	}
	return -1;
}

/* ---- raw long polls ---- */

/* Send a GET on a fresh connection and return its fd without reading the answer. */
static int raw_get(struct td_daemon *d, const char *path)
{
	int fd = td_connect(d->sock);
	ck_assert_int_ge(fd, 0);
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	return fd;
}

/* True when the daemon has started to answer on fd. */
static bool raw_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

/* Read one whole answer (Content-Length) within timeout_ms: the status, the body parsed
 * into *body. Closes fd. Returns 0, or -ETIMEDOUT / -EIO. */
static int raw_answer(int fd, int timeout_ms, long *status, json_t **body)
{
	char buf[65536];
	size_t len = 0;
	int64_t end = td_now_ms() + timeout_ms;
	int rc = -ETIMEDOUT;
	while (len < sizeof(buf) - 1) {
		int left = (int)(end - td_now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			rc = -EIO;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		char *head_end = strstr(buf, "\r\n\r\n");
		char *cl = strcasestr(buf, "Content-Length:");
		if (!head_end || !cl)
			continue;
		size_t want = (size_t)strtoul(cl + 15, NULL, 10);
		if (len - (size_t)(head_end + 4 - buf) < want)
			continue;
		*status = strtol(buf + 9, NULL, 10);
		*body = json_loadb(head_end + 4, want, 0, NULL);
		rc = 0;
		break;
	}
	close(fd);
	return rc;
}

/* ---- joulectl as a background process ---- */

/* Start `joulectl argv…` with stdout to DIR/name.out, stderr to DIR/name.err. */
static pid_t ctl_spawn(struct td_daemon *d, const char *name, const char *const *argv)
{
	char out[PATH_MAX], err[PATH_MAX];
	snprintf(out, sizeof(out), "%s/%s.out", d->dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", d->dir, name);
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		const char *args[32] = {getenv("JOULECTL")};
		int n = 1;
		for (; argv[n - 1] && n < 31; n++)
			args[n] = argv[n - 1];
		args[n] = NULL;
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int devnull = open("/dev/null", O_RDONLY);
		if (o < 0 || e < 0 || devnull < 0)
			_exit(120);
		dup2(devnull, 0);
		dup2(o, 1);
		dup2(e, 2);
		setenv("JOULE_SOCKET", d->sock, 1);
		execv(args[0], (char *const *)args);
		_exit(122);
	}
	return pid;
}

/* SIGINT (Ctrl-C) a watcher; its exit code. */
static int ctl_interrupt(pid_t pid)
{
	int status;
	kill(pid, SIGINT);
	ck_assert_int_eq(td_wait_pid(pid, 5000, &status), 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *ctl_output(struct td_daemon *d, const char *name, const char *ext)
{
	char path[PATH_MAX];
	char *text = NULL;
	snprintf(path, sizeof(path), "%s/%s.%s", d->dir, name, ext);
	ck_assert_int_eq(td_read_file(path, &text, NULL), 0);
	return text;
}

/* Wait until DIR/name.out contains needle (up to timeout_ms). */
static bool wait_output(struct td_daemon *d, const char *name, const char *needle, int timeout_ms)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s.out", d->dir, name);
	for (int64_t end = td_now_ms() + timeout_ms; td_now_ms() < end; td_sleep_ms(100)) {
		char *text = NULL;
		if (td_read_file(path, &text, NULL) < 0)
			continue; /* not created yet */
		bool found = strstr(text, needle) != NULL;
		free(text);
		if (found)
			return true;
	}
	return false;
}

/* ---- tests ---- */

START_TEST(watch_shows_a_job_go_from_pending_to_placed_to_running_to_succeeded)
{
	struct td_daemon d = {0};
	const char *extra[] = {"--demo-finish", NULL};
	start_with_fleet(&d, extra);
	const char *json_argv[] = {"watch", "--json", "--since", "0", NULL};
	const char *human_argv[] = {"watch", NULL};
	pid_t json_w = ctl_spawn(&d, "watch-json", json_argv);
	pid_t human_w = ctl_spawn(&d, "watch-human", human_argv);
	td_sleep_ms(500); /* the human watcher starts from the end: after the import */

	long long id = submit(&d, "demo-2s", 1, 2);
	char needle[64];
	snprintf(needle, sizeof(needle), "\"type\":\"job.succeeded\",\"job\":%lld", id);
	ck_assert_msg(wait_output(&d, "watch-json", needle, 8000), "no job.succeeded line");
	td_sleep_ms(300);
	ck_assert_int_eq(ctl_interrupt(json_w), 0);
	ck_assert_int_eq(ctl_interrupt(human_w), 0);

	/* --json: one object per line, every retained event from the start, in order */
	static const char *const want[] = {"job.submitted", "job.placed", "job.running",
					   "job.succeeded"};
	char *out = ctl_output(&d, "watch-json", "out");
	size_t k = 0;
	long long last_seq = 0;
	bool saw_import = false;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		json_error_t jerr;
		json_t *ev = json_loads(line, 0, &jerr);
		ck_assert_msg(ev, "not a JSON line: %s", line);
		ck_assert_int_gt(jint(ev, "seq"), last_seq);
		last_seq = jint(ev, "seq");
		const char *type = json_string_value(json_object_get(ev, "type"));
		saw_import |= strcmp(type, "fleet.imported") == 0;
		if (jint(ev, "job") == id) {
			ck_assert_uint_lt(k, 4);
			ck_assert_str_eq(type, want[k]);
			k++;
		}
		json_decref(ev);
	}
	ck_assert_msg(saw_import, "--since 0 starts at the oldest event");
	ck_assert_uint_eq(k, 4);
	free(out);
	char *err = ctl_output(&d, "watch-json", "err");
	ck_assert_str_eq(err, "");
	free(err);

	/* human lines: "SEQ TIME TYPE job=ID …", only what happened after it started */
	out = ctl_output(&d, "watch-human", "out");
	ck_assert_msg(!strstr(out, "fleet.imported"), "watch without --since starts at the end:\n%s",
		      out);
	char pat[64];
	for (k = 0; k < 4; k++) {
		snprintf(pat, sizeof(pat), " %s job=%lld", want[k], id);
		ck_assert_msg(strstr(out, pat), "no '%s' in:\n%s", pat, out);
	}
	ck_assert_msg(strstr(out, "message=\"demo mode\""), "data as key=value:\n%s", out);
	ck_assert_msg(strstr(out, " nodes=a-n") && strstr(out, "model=H100-SXM5-80GB"),
		      "placement summary:\n%s", out);
	char *first = strtok(out, "\n");
	long long seq;
	char time_s[32], type_s[32];
	ck_assert_int_eq(sscanf(first, "%lld %31s %31s", &seq, time_s, type_s), 3);
	ck_assert_str_eq(type_s, "job.submitted");
	ck_assert_int_eq((int)strlen(time_s), 20); /* 2026-11-23T20:00:00Z */
	free(out);

	json_t *job = get_job(&d, id);
	ck_assert_str_eq(job_state(job), "succeeded");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(job, "finished_at")));
	json_decref(job);
	td_cleanup(&d);
}
END_TEST

START_TEST(a_long_poll_returns_as_soon_as_an_event_commits)
{
	struct td_daemon d = {0};
	start_with_fleet(&d, NULL);
	char path[128];
	snprintf(path, sizeof(path), "/v1/events?since=%lld&wait=10", log_end(&d));
	int fd = raw_get(&d, path);
	td_sleep_ms(500);
	ck_assert_msg(!raw_ready(fd), "a long poll with nothing new answered early");

	int64_t t0 = td_now_ms();
	long long id = submit(&d, "wake-up", 1, 0);
	long status = 0;
	json_t *body = NULL;
	ck_assert_int_eq(raw_answer(fd, 5000, &status, &body), 0);
	int64_t took = td_now_ms() - t0;
	ck_assert_msg(took < 1000, "the long poll answered %lld ms after the submit", (long long)took);
	ck_assert_int_eq(status, 200);
	ck_assert_ptr_nonnull(body);
	json_t *list = json_object_get(body, "events");
	ck_assert_int_ge(find_event(list, 0, "job.submitted", id), 0);
	ck_assert_int_eq(find_event(list, 0, "job.submitted", id), 0);
	/* next is the last event given; following it waits for newer ones only */
	ck_assert_int_eq(jint(body, "next"),
			 jint(json_array_get(list, json_array_size(list) - 1), "seq"));
	json_decref(body);

	/* a poll for what already exists answers at once, whatever its wait */
	t0 = td_now_ms();
	json_t *e = events(&d, "since=0&wait=10");
	ck_assert_int_lt(td_now_ms() - t0, 1000);
	ck_assert_int_gt(json_array_size(json_object_get(e, "events")), 0);
	json_decref(e);
	td_cleanup(&d);
}
END_TEST

START_TEST(a_long_poll_times_out_with_no_events)
{
	struct td_daemon d = {0};
	start_with_fleet(&d, NULL);
	long long end = log_end(&d);
	char path[128];
	snprintf(path, sizeof(path), "/v1/events?since=%lld&wait=1", end);
	int64_t t0 = td_now_ms();
	json_t *e = events(&d, path + strlen("/v1/events?"));
	int64_t took = td_now_ms() - t0;
	ck_assert_msg(took >= 900 && took < 3000, "wait=1 took %lld ms", (long long)took);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	ck_assert_int_eq(jint(e, "next"), end);
	ck_assert_int_eq(jint(e, "oldest"), 1);
	json_decref(e);

	/* wait=0 (the default) never waits; out-of-range parameters are refused */
	t0 = td_now_ms();
	e = events(&d, "since=100000");
	ck_assert_int_lt(td_now_ms() - t0, 500);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	json_decref(e);
	static const char *const bad[] = {"wait=301", "limit=0", "limit=10001", "since=-1",
					  "wait=x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/v1/events?%s", bad[i]);
		struct td_response r = {0};
		ck_assert_int_eq(td_http(&d, "GET", path, NULL, NULL, &r), 0);
		ck_assert_msg(r.status == 422, "%s: %ld", bad[i], r.status);
		td_response_free(&r);
	}
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "GET", "/v1/events?after=1", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 400);
	td_response_free(&r);
	td_cleanup(&d);
}
END_TEST

static bool all_start_with(const json_t *list, const char *a, const char *b)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *t = json_string_value(json_object_get(e, "type"));
		if (strncmp(t, a, strlen(a)) != 0 && (!b || strncmp(t, b, strlen(b)) != 0))
			return false;
	}
	return true;
}

START_TEST(types_filter_keeps_only_matching_events)
{
	struct td_daemon d = {0};
	start_with_fleet(&d, NULL);
	long long id = submit(&d, "filtered", 1, 0);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/nodes/b-n1/drain", "", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	td_response_free(&r);
	json_t *all = events(&d, "since=0");
	long long end = jint(all, "next");
	size_t nall = json_array_size(json_object_get(all, "events"));
	json_decref(all);

	json_t *e = events(&d, "since=0&types=job");
	json_t *list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 2);
	ck_assert(all_start_with(list, "job.", NULL));
	ck_assert_int_ge(find_event(list, 0, "job.placed", id), 0);
	ck_assert_int_eq(jint(e, "next"), end); /* skipped events count */
	json_decref(e);

	e = events(&d, "since=0&types=node");
	list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "type")),
			 "node.drained");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "node")), "b-n1");
	json_decref(e);

	e = events(&d, "since=0&types=job.placed,domain");
	list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 4); /* 3 domain.budget + job.placed */
	ck_assert(all_start_with(list, "job.placed", "domain."));
	json_decref(e);

	/* a prefix is a whole segment: "jo" and "job.place" match nothing */
	e = events(&d, "since=0&types=jo,job.place");
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	ck_assert_int_eq(jint(e, "next"), end);
	json_decref(e);

	/* limit counts the events given, and next lets the next page go on */
	e = events(&d, "since=0&limit=2");
	list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 2);
	ck_assert_int_eq(jint(e, "next"), jint(json_array_get(list, 1), "seq"));
	json_decref(e);
	ck_assert_uint_eq(nall, 4 + 2 + 1);

	/* a filtered long poll is not woken by other types, and moves next past them */
	char path[128];
	snprintf(path, sizeof(path), "/v1/events?since=%lld&wait=2&types=node.down", end);
	int fd = raw_get(&d, path);
	td_sleep_ms(200);
	long long id2 = submit(&d, "not-a-node-event", 1, 0);
	td_sleep_ms(300);
	ck_assert_msg(!raw_ready(fd), "a poll for node.down woke for a job event");
	long status = 0;
	json_t *body = NULL;
	ck_assert_int_eq(raw_answer(fd, 5000, &status, &body), 0);
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(body, "events")), 0);
	ck_assert_int_gt(jint(body, "next"), end);
	json_decref(body);
	(void)id2;

	/* joulectl watch --types passes the filter */
	const char *argv[] = {"watch", "--since", "0", "--types", "node", NULL};
	pid_t w = ctl_spawn(&d, "watch-types", argv);
	ck_assert(wait_output(&d, "watch-types", "node.drained", 5000));
	ck_assert_int_eq(ctl_interrupt(w), 0);
	char *out = ctl_output(&d, "watch-types", "out");
	ck_assert_msg(!strstr(out, "job.") && !strstr(out, "domain."), "out:\n%s", out);
	ck_assert_msg(strstr(out, "node.drained node=b-n1 state=drained"), "out:\n%s", out);
	free(out);
	td_cleanup(&d);
}
END_TEST

START_TEST(events_survive_kill_9_and_seq_keeps_increasing)
{
	struct td_daemon d = {0};
	start_with_fleet(&d, NULL);
	long long id = submit(&d, "durable", 1, 0);
	json_t *before = events(&d, "since=0");
	long long end = jint(before, "next");
	ck_assert_int_gt(end, 0);

	ck_assert_int_eq(td_kill9(&d), 0);
	ck_assert_int_eq(td_restart(&d), 0);
	json_t *after = events(&d, "since=0");
	ck_assert_msg(json_equal(json_object_get(before, "events"), json_object_get(after, "events")),
		      "the log changed across kill -9");
	ck_assert_int_eq(jint(after, "next"), end);
	json_decref(before);
	json_decref(after);

	/* a follower resumes where it was; new events continue the sequence */
	long long id2 = submit(&d, "after-restart", 1, 0);
	char q[64];
	snprintf(q, sizeof(q), "since=%lld", end);
	json_t *e = events(&d, q);
	json_t *list = json_object_get(e, "events");
	ck_assert_int_eq(jint(json_array_get(list, 0), "seq"), end + 1);
	ck_assert_int_eq(find_event(list, 0, "job.submitted", id2), 0);
	ck_assert_int_lt(find_event(list, 0, "job.submitted", id), 0);
	json_decref(e);
	td_cleanup(&d);
}
END_TEST

START_TEST(retention_drops_old_events_and_answers_410)
{
	struct td_daemon d = {0};
	const char *extra[] = {"--events-max", "5", NULL};
	start_with_fleet(&d, extra); /* 4 events */
	submit(&d, "r1", 1, 0);      /* + submitted, placed */
	submit(&d, "r2", 1, 0);
	submit(&d, "r3", 1, 0);      /* pending: rack-a holds two */
	long long end = log_end(&d);
	ck_assert_int_ge(end, 9);
	json_t *e = NULL;
	for (int i = 0; i < 30; i++, td_sleep_ms(100)) { /* trimmed once a second */
		json_decref(e);
		e = events(&d, "since=0");
		if (json_array_size(json_object_get(e, "events")) <= 5)
			break;
	}
	json_t *list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 5);
	long long oldest = jint(e, "oldest");
	ck_assert_int_eq(oldest, end - 4);
	ck_assert_int_eq(jint(json_array_get(list, 0), "seq"), oldest);
	json_decref(e);

	/* since = oldest - 1 lost nothing; one below it did */
	char q[64];
	snprintf(q, sizeof(q), "since=%lld", oldest - 1);
	e = events(&d, q);
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 5);
	json_decref(e);
	char p[128];
	snprintf(p, sizeof(p), "/v1/events?since=%lld&wait=5", oldest - 2);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "GET", p, NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 410);
	json_t *err = json_object_get(r.json, "error");
	ck_assert_str_eq(json_string_value(json_object_get(err, "code")), "gone");
	ck_assert_str_eq(json_string_value(json_object_get(err, "field")), "since");
	td_response_free(&r);

	/* joulectl watch says so and exits 1 */
	struct td_run run;
	const char *argv[] = {"watch", "--since", "1", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, argv, &run), 0);
	ck_assert_int_eq(run.code, 1);
	ck_assert_msg(strstr(run.err, "dropped by retention"), "stderr: %s", run.err);
	td_run_free(&run);

	/* the trimmed log is what the database keeps */
	ck_assert_int_eq(td_kill9(&d), 0);
	ck_assert_int_eq(td_restart(&d), 0);
	e = events(&d, "since=0");
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 5);
	ck_assert_int_eq(jint(e, "oldest"), oldest);
	json_decref(e);
	td_cleanup(&d);

	/* and by age */
	struct td_daemon d2 = {0};
	const char *aged[] = {"--events-max-age", "1", NULL};
	start_with_fleet(&d2, aged);
	long long end2 = log_end(&d2);
	e = NULL;
	for (int i = 0; i < 50; i++, td_sleep_ms(100)) {
		json_decref(e);
		e = events(&d2, "since=0");
		if (json_array_size(json_object_get(e, "events")) == 0)
			break;
	}
	ck_assert_int_eq(json_array_size(json_object_get(e, "events")), 0);
	ck_assert_int_eq(jint(e, "oldest"), end2 + 1);
	json_decref(e);
	/* a restart with every event dropped numbers on from there: a seq is never reused
	 * (webhook receivers deduplicate by it) */
	ck_assert_int_eq(td_kill9(&d2), 0);
	ck_assert_int_eq(td_restart(&d2), 0);
	submit(&d2, "after", 1, 0);
	e = events(&d2, "since=0");
	ck_assert_int_ge(json_array_size(json_object_get(e, "events")), 1);
	ck_assert_int_gt(jint(json_array_get(json_object_get(e, "events"), 0), "seq"), end2);
	json_decref(e);
	td_cleanup(&d2);
}
END_TEST

/* joulectl as uid/gid 65534: the exit code, its stderr in err (tests/lib/daemon.h). */
static int ctl_as_other(struct td_daemon *d, const char *const *argv, char *err, size_t errlen)
{
	return td_ctl_as(d, OTHER_UID, OTHER_GID, argv, err, errlen);
}

static void expect_refusal(struct td_daemon *d, long long id, const char *body, long want,
			   const char *field)
{
	json_t *a = NULL;
	long st = report(d, id, body, &a);
	ck_assert_msg(st == want, "%s: HTTP %ld, want %ld", body, st, want);
	json_t *err = json_object_get(a, "error");
	ck_assert_ptr_nonnull(err);
	if (field)
		ck_assert_str_eq(json_string_value(json_object_get(err, "field")), field);
	json_decref(a);
}

START_TEST(status_transitions)
{
	struct td_daemon d = {0};
	ck_assert_msg(getuid() == 0, "this test must run as root (it switches to uid 65534)");
	ck_assert_int_eq(td_make_dir(&d), 0);
	ck_assert_int_eq(chmod(d.dir, 0755), 0);
	pid_t pid;
	ck_assert_int_eq(td_spawn(&d, NULL, NULL, &pid), 0);
	ck_assert_int_eq(td_wait_ready(&d, TD_READY_TIMEOUT_MS), 0);
	json_t *fleet = td_data_json("fleet.json");
	char *fb = json_dumps(fleet, JSON_COMPACT);
	json_decref(fleet);
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/fleet", fb, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	td_response_free(&r);
	free(fb);

	long long idle_w = domain_reserved(&d, "rack-a");
	long long a = submit(&d, "reported", 1, 0);
	long long busy_w = domain_reserved(&d, "rack-a");
	ck_assert_int_gt(busy_w, idle_w);
	long long since = log_end(&d);

	/* placed → running → succeeded */
	json_t *job = NULL;
	ck_assert_int_eq(report(&d, a, "{\"state\":\"running\",\"message\":\"started on a-n1\"}", &job),
			 200);
	ck_assert_str_eq(job_state(job), "running");
	json_decref(job);
	expect_refusal(&d, a, "{\"state\":\"running\"}", 409, "state");
	ck_assert_int_eq(domain_reserved(&d, "rack-a"), busy_w); /* running still holds it */
	ck_assert_int_eq(report(&d, a, "{\"state\":\"succeeded\",\"message\":null}", &job), 200);
	ck_assert_str_eq(job_state(job), "succeeded");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(job, "finished_at")));
	json_decref(job);
	expect_refusal(&d, a, "{\"state\":\"failed\"}", 409, "state");
	expect_refusal(&d, a, "{\"state\":\"running\"}", 409, "state");
	/* devices and watts are back */
	ck_assert_int_eq(domain_reserved(&d, "rack-a"), idle_w);
	json_t *free_dev = td_get_json(&d, "/v1/devices?state=allocated");
	ck_assert_int_eq(json_array_size(json_object_get(free_dev, "devices")), 0);
	json_decref(free_dev);

	/* the log has both reports, with their messages */
	char q[64];
	snprintf(q, sizeof(q), "since=%lld&types=job", since);
	json_t *e = events(&d, q);
	json_t *list = json_object_get(e, "events");
	ck_assert_int_eq(json_array_size(list), 2);
	int i = find_event(list, 0, "job.running", a);
	ck_assert_int_eq(i, 0);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(list, 0), "data"), "message")),
			 "started on a-n1");
	ck_assert_int_eq(find_event(list, 1, "job.succeeded", a), 1);
	json_decref(e);

	/* bad bodies */
	long long b = submit(&d, "second", 1, 0);
	expect_refusal(&d, b, "{\"state\":\"exploded\"}", 422, "state");
	expect_refusal(&d, b, "{\"state\":\"pending\"}", 422, "state");
	expect_refusal(&d, b, "{\"state\":\"cancelled\"}", 422, "state");
	expect_refusal(&d, b, "{}", 422, "state");
	expect_refusal(&d, b, "{\"state\":\"running\",\"exit_code\":0}", 422, "exit_code");
	expect_refusal(&d, b, "{\"state\":\"running\",\"message\":7}", 422, "message");
	expect_refusal(&d, b, "not json", 400, NULL);
	expect_refusal(&d, 9999, "{\"state\":\"running\"}", 404, NULL);

	/* another uid may not report on root's job */
	char err[1024], ids[32];
	snprintf(ids, sizeof(ids), "%lld", b);
	const char *other[] = {"report", ids, "failed", "--message", "not mine", NULL};
	ck_assert_int_eq(ctl_as_other(&d, other, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "only its owner or an admin"), "stderr: %s", err);
	job = get_job(&d, b);
	ck_assert_str_eq(job_state(job), "placed");
	json_decref(job);

	/* placed → failed directly, through joulectl report */
	struct td_run run;
	const char *fail_argv[] = {"report", ids, "failed", "--message", "image pull failed", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, fail_argv, &run), 0);
	ck_assert_msg(run.code == 0, "stderr: %s", run.err);
	ck_assert_msg(strstr(run.out, "failed"), "out: %s", run.out);
	td_run_free(&run);
	job = get_job(&d, b);
	ck_assert_str_eq(job_state(job), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(job, "reason")), "image pull failed");
	json_decref(job);
	ck_assert_int_eq(domain_reserved(&d, "rack-a"), idle_w);

	/* a pending job cannot be reported; a cancelled one neither; joulectl shows the 409 */
	long long c = submit(&d, "too-big", 3, 0); /* 3 x 8 H100: only 2 nodes */
	job = get_job(&d, c);
	ck_assert_str_eq(job_state(job), "pending");
	json_decref(job);
	expect_refusal(&d, c, "{\"state\":\"running\"}", 409, "state");
	snprintf(ids, sizeof(ids), "%lld", c);
	const char *run_argv[] = {"report", ids, "running", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, run_argv, &run), 0);
	ck_assert_int_eq(run.code, 1);
	ck_assert_msg(strstr(run.err, "cannot become running"), "stderr: %s", run.err);
	td_run_free(&run);
	const char *bad_argv[] = {"report", ids, "running", "extra", NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, bad_argv, &run), 0);
	ck_assert_int_eq(run.code, 2);
	td_run_free(&run);
	td_cleanup(&d);
}
END_TEST

START_TEST(placed_timeout_requeues_a_job_never_reported_running)
{
	struct td_daemon d = {0};
	const char *extra[] = {"--placed-timeout", "1", NULL};
	start_with_fleet(&d, extra);
	long long quiet = submit(&d, "never-reported", 1, 0);
	long long good = submit(&d, "reported-in-time", 1, 0);
	ck_assert_int_eq(report(&d, good, "{\"state\":\"running\"}", NULL), 200);
	/* both H100 nodes drained: once requeued, the quiet job has nowhere to go */
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/nodes/a-n1/drain", "", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	td_response_free(&r);
	ck_assert_int_eq(td_http(&d, "POST", "/v1/nodes/a-n2/drain", "", NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	td_response_free(&r);

	json_t *job = NULL;
	for (int i = 0; i < 50; i++, td_sleep_ms(100)) { /* > 1 s, checked once a second */
		json_decref(job);
		job = get_job(&d, quiet);
		if (strcmp(job_state(job), "pending") == 0)
			break;
	}
	ck_assert_str_eq(job_state(job), "pending");
	ck_assert_int_eq(jint(job, "requeues"), 1);
	ck_assert_int_eq(json_array_size(json_object_get(job, "placement")), 0);
	/* the job keeps saying why it went back until it runs again */
	const char *why = json_string_value(json_object_get(job, "reason"));
	ck_assert_msg(why && strncmp(why, "PLACED_TIMEOUT", 14) == 0, "reason: %s", why);
	json_decref(job);

	json_t *e = events(&d, "since=0&types=job.requeued");
	json_t *list = json_object_get(e, "events");
	int i = find_event(list, 0, "job.requeued", quiet);
	ck_assert_int_ge(i, 0);
	json_t *data = json_object_get(json_array_get(list, (size_t)i), "data");
	const char *reason = json_string_value(json_object_get(data, "reason"));
	ck_assert_msg(reason && strncmp(reason, "PLACED_TIMEOUT", 14) == 0, "reason: %s", reason);
	ck_assert_int_eq(jint(data, "requeues"), 1);
	ck_assert_int_lt(find_event(list, 0, "job.requeued", good), 0);
	json_decref(e);

	/* the job reported running keeps its devices; the node it freed is now drained */
	job = get_job(&d, good);
	ck_assert_str_eq(job_state(job), "running");
	json_decref(job);
	json_t *n = td_get_json(&d, "/v1/nodes?state=drained");
	ck_assert_int_eq(json_array_size(json_object_get(n, "nodes")), 1);
	json_decref(n);
	n = td_get_json(&d, "/v1/nodes?state=draining");
	ck_assert_int_eq(json_array_size(json_object_get(n, "nodes")), 1);
	json_decref(n);
	td_cleanup(&d);
}
END_TEST

START_TEST(sigterm_answers_waiting_long_polls)
{
	struct td_daemon d = {0};
	start_with_fleet(&d, NULL);
	long long end = log_end(&d);
	char path[128];
	snprintf(path, sizeof(path), "/v1/events?since=%lld&wait=60", end);
	int fd1 = raw_get(&d, path);
	snprintf(path, sizeof(path), "/v1/events?since=%lld&wait=300&types=job", end);
	int fd2 = raw_get(&d, path);
	td_sleep_ms(300);
	ck_assert(!raw_ready(fd1) && !raw_ready(fd2));

	int64_t t0 = td_now_ms();
	pid_t pid = d.pid;
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	long status = 0;
	json_t *body = NULL;
	ck_assert_int_eq(raw_answer(fd1, 3000, &status, &body), 0);
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(json_array_size(json_object_get(body, "events")), 0);
	ck_assert_int_eq(jint(body, "next"), end);
	json_decref(body);
	body = NULL;
	ck_assert_int_eq(raw_answer(fd2, 3000, &status, &body), 0);
	ck_assert_int_eq(status, 200);
	json_decref(body);

	int st;
	ck_assert_int_eq(td_wait_pid(pid, 3000, &st), 0);
	d.pid = 0;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status %d", st);
	ck_assert_int_lt(td_now_ms() - t0, 3000);
	td_cleanup(&d);
}
END_TEST

static Suite *events_suite(void)
{
	Suite *s = suite_create("events");
	TCase *watch = tcase_create("watch");
	tcase_set_timeout(watch, 60);
	tcase_add_test(watch, watch_shows_a_job_go_from_pending_to_placed_to_running_to_succeeded);
	suite_add_tcase(s, watch);
	TCase *poll_tc = tcase_create("long_poll");
	tcase_set_timeout(poll_tc, 60);
	tcase_add_test(poll_tc, a_long_poll_returns_as_soon_as_an_event_commits);
	tcase_add_test(poll_tc, a_long_poll_times_out_with_no_events);
	tcase_add_test(poll_tc, types_filter_keeps_only_matching_events);
	tcase_add_test(poll_tc, sigterm_answers_waiting_long_polls);
	suite_add_tcase(s, poll_tc);
	TCase *log = tcase_create("log");
	tcase_set_timeout(log, 60);
	tcase_add_test(log, events_survive_kill_9_and_seq_keeps_increasing);
	tcase_add_test(log, retention_drops_old_events_and_answers_410);
	suite_add_tcase(s, log);
	TCase *life = tcase_create("lifecycle");
	tcase_set_timeout(life, 60);
	tcase_add_test(life, status_transitions);
	tcase_add_test(life, placed_timeout_requeues_a_job_never_reported_running);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(events_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
