/*
 * test_ops — operating jouled: access rules with two real uids, configuration errors,
 * socket activation through an inherited fd (LISTEN_FDS, without systemd), readiness
 * notification (NOTIFY_SOCKET) and journald log priorities.
 *
 * The access tests need root (to run joulectl as another uid, 65534); CI runs as root.
 * Run as another user they fail loudly rather than pass without checking anything.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/daemon.h"
#include "prom.h"

#define OTHER_UID 65534 /* nobody */
#define OTHER_GID 65534 /* nogroup */

/* joulectl as uid/gid 65534: the exit code, its stderr in err (tests/lib/daemon.h). */
static int ctl_as_other(struct td_daemon *d, const char *const *argv, char *err, size_t errlen)
{
	return td_ctl_as(d, OTHER_UID, OTHER_GID, argv, err, errlen);
}

/* Start a daemon whose socket another uid can reach, with a small fleet. */
static void start_shared(struct td_daemon *d, const char *const *extra)
{
	ck_assert_msg(getuid() == 0, "the access tests must run as root (they switch to uid 65534)");
	ck_assert_int_eq(td_make_dir(d), 0);
	ck_assert_int_eq(chmod(d->dir, 0755), 0);
	pid_t pid;
	ck_assert_int_eq(td_spawn(d, extra, NULL, &pid), 0);
	ck_assert_int_eq(td_wait_ready(d, TD_READY_TIMEOUT_MS), 0);
	char path[PATH_MAX];
	ck_assert_int_eq(td_data_path("fleet.json", path, sizeof(path)), 0);
	struct td_run r;
	const char *argv[] = {"fleet", "import", path, NULL};
	ck_assert_int_eq(td_ctl(d, NULL, argv, &r), 0);
	ck_assert_msg(r.code == 0, "import failed: %s", r.err);
	td_run_free(&r);
}

static char *first_node(struct td_daemon *d)
{
	json_t *j = td_get_json(d, "/v1/nodes");
	ck_assert_ptr_nonnull(j);
	char *name = strdup(json_string_value(json_object_get(json_array_get(json_object_get(j, "nodes"), 0), "name")));
	json_decref(j);
	return name;
}

START_TEST(a_user_who_is_not_an_admin_cannot_change_the_fleet)
{
	struct td_daemon d = {0};
	char err[1024], path[PATH_MAX];
	start_shared(&d, NULL);
	char *node = first_node(&d);
	ck_assert_int_eq(td_data_path("fleet.json", path, sizeof(path)), 0);

	const char *drain[] = {"drain", node, NULL};
	ck_assert_int_eq(ctl_as_other(&d, drain, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "needs an admin"), "stderr: %s", err);
	const char *resume[] = {"resume", node, NULL};
	ck_assert_int_eq(ctl_as_other(&d, resume, err, sizeof(err)), 1);
	const char *import[] = {"fleet", "import", path, NULL};
	ck_assert_int_eq(ctl_as_other(&d, import, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "importing a fleet needs an admin"), "stderr: %s", err);
	/* nothing changed: the node is still up */
	char p[256];
	snprintf(p, sizeof(p), "/v1/nodes/%s", node);
	json_t *n = td_get_json(&d, p);
	ck_assert_str_eq(json_string_value(json_object_get(n, "state")), "up");
	json_decref(n);
	/* reading is for everyone */
	const char *nodes[] = {"nodes", NULL};
	ck_assert_int_eq(ctl_as_other(&d, nodes, err, sizeof(err)), 0);
	free(node);
	td_cleanup(&d);
}
END_TEST

START_TEST(an_owner_may_cancel_their_job_but_not_another_users)
{
	struct td_daemon d = {0};
	char err[1024];
	start_shared(&d, NULL);
	/* root's job */
	struct td_response r = {0};
	ck_assert_int_eq(td_http(&d, "POST", "/v1/jobs",
				 "{\"name\":\"root-job\",\"kind\":\"training\",\"workers\":1,\"devices\":1}",
				 NULL, &r), 0);
	ck_assert_int_eq(r.status, 201);
	char rootjob[32];
	snprintf(rootjob, sizeof(rootjob), "%lld", json_integer_value(json_object_get(r.json, "id")));
	td_response_free(&r);
	/* nobody's job, submitted as nobody */
	const char *submit[] = {"submit", "--name", "mine", "--kind", "training", "--workers", "1",
				"--devices", "1", NULL};
	ck_assert_int_eq(ctl_as_other(&d, submit, err, sizeof(err)), 0);
	json_t *jobs = td_get_json(&d, "/v1/jobs?owner=nobody");
	ck_assert_ptr_nonnull(jobs);
	ck_assert_int_eq(json_array_size(json_object_get(jobs, "jobs")), 1);
	char mine[32];
	snprintf(mine, sizeof(mine), "%lld",
		 json_integer_value(json_object_get(json_array_get(json_object_get(jobs, "jobs"), 0), "id")));
	json_decref(jobs);

	const char *cancel_root[] = {"cancel", rootjob, NULL};
	ck_assert_int_eq(ctl_as_other(&d, cancel_root, err, sizeof(err)), 1);
	ck_assert_msg(strstr(err, "only its owner or an admin"), "stderr: %s", err);
	const char *cancel_mine[] = {"cancel", mine, NULL};
	ck_assert_int_eq(ctl_as_other(&d, cancel_mine, err, sizeof(err)), 0);
	char p[64];
	snprintf(p, sizeof(p), "/v1/jobs/%s", rootjob);
	json_t *j = td_get_json(&d, p);
	ck_assert_str_ne(json_string_value(json_object_get(j, "state")), "cancelled");
	json_decref(j);
	td_cleanup(&d);
}
END_TEST

START_TEST(a_member_of_the_admin_group_may_change_the_fleet)
{
	struct td_daemon d = {0};
	char err[1024];
	struct group *g = getgrgid(OTHER_GID);
	ck_assert_ptr_nonnull(g);
	const char *extra[] = {"--admin-group", g->gr_name, NULL};
	start_shared(&d, extra);
	char *node = first_node(&d);
	const char *drain[] = {"drain", node, NULL};
	ck_assert_msg(ctl_as_other(&d, drain, err, sizeof(err)) == 0, "stderr: %s", err);
	const char *resume[] = {"resume", node, NULL};
	ck_assert_msg(ctl_as_other(&d, resume, err, sizeof(err)) == 0, "stderr: %s", err);
	free(node);
	td_cleanup(&d);
}
END_TEST

/* Run $JOULED with args and wait; exit code, stderr into err. */
static int jouled_once(struct td_daemon *d, const char *const *argv, char *err, size_t errlen,
		       char *out, size_t outlen)
{
	char errpath[PATH_MAX], outpath[PATH_MAX];
	snprintf(errpath, sizeof(errpath), "%s/once.err", d->dir);
	snprintf(outpath, sizeof(outpath), "%s/once.out", d->dir);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *args[32] = {getenv("JOULED")};
		int n = 1;
		for (; argv[n - 1] && n < 31; n++)
			args[n] = argv[n - 1];
		args[n] = NULL;
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (e < 0 || o < 0)
			_exit(120);
		dup2(o, 1);
		dup2(e, 2);
		execv(args[0], (char *const *)args);
		_exit(122);
	}
	int status;
	if (td_wait_pid(pid, 30000, &status) < 0)
		return -ETIMEDOUT;
	char *text;
	size_t len;
	err[0] = out[0] = '\0';
	if (td_read_file(errpath, &text, &len) == 0) {
		snprintf(err, errlen, "%s", text);
		free(text);
	}
	if (td_read_file(outpath, &text, &len) == 0) {
		snprintf(out, outlen, "%s", text);
		free(text);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static const struct {
	const char *text;
	const char *want;     /* substring of the error */
} bad_configs[] = {
	{"[jouled]\nsocket = /tmp/x.sock\nfoo = 1\n", ":3: key 'foo': unknown option 'foo'"},
	{"[jouled]\nmax_connections = lots\n", ":2: key 'max_connections': must be an integer"},
	{"[jouled]\nlog_level = chatty\n", ":2: key 'log_level': log level must be"},
	{"[jouled]\nsocket_mode = 999\n", ":2: key 'socket_mode'"},
	{"[jouled]\nsynchronous = sometimes\n", ":2: key 'synchronous'"},
	{"[other]\nsocket = /x\n", ":2: unknown section [other]"},
	{"[jouled]\nthis line has no equals sign\n", ":2: syntax error"},
	{"[jouled]\nadmin_group = \n", ":2: key 'admin_group'"},
};

START_TEST(a_bad_configuration_names_the_file_line_and_key)
{
	struct td_daemon d = {0};
	char path[PATH_MAX], err[1024], out[1024];
	ck_assert_int_eq(td_make_dir(&d), 0);
	snprintf(path, sizeof(path), "%s/jouled.conf", d.dir);
	write_file(path, bad_configs[_i].text);
	const char *argv[] = {"--config", path, "--check-config", NULL};
	int code = jouled_once(&d, argv, err, sizeof(err), out, sizeof(out));
	ck_assert_int_eq(code, 2);
	ck_assert_msg(strstr(err, path) && strstr(err, bad_configs[_i].want),
		      "config %d: stderr '%s' lacks '%s'", _i, err, bad_configs[_i].want);
	td_cleanup(&d);
}
END_TEST

START_TEST(flags_win_over_the_configuration_file)
{
	struct td_daemon d = {0};
	char path[PATH_MAX], err[1024], out[1024];
	ck_assert_int_eq(td_make_dir(&d), 0);
	snprintf(path, sizeof(path), "%s/jouled.conf", d.dir);
	write_file(path, "[jouled]\nsocket = /tmp/from-file.sock\ndb = /tmp/from-file.db\n");
	const char *argv[] = {"--config", path, "--socket", "/tmp/from-flag.sock", "--check-config", NULL};
	ck_assert_int_eq(jouled_once(&d, argv, err, sizeof(err), out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "socket /tmp/from-flag.sock") && strstr(out, "database /tmp/from-file.db"),
		      "stdout: %s", out);
	const char *missing[] = {"--config", "/nonexistent/jouled.conf", "--check-config", NULL};
	ck_assert_int_eq(jouled_once(&d, missing, err, sizeof(err), out, sizeof(out)), 2);
	ck_assert_msg(strstr(err, "cannot open configuration file"), "stderr: %s", err);
	const char *unknown[] = {"--frobnicate", NULL};
	ck_assert_int_eq(jouled_once(&d, unknown, err, sizeof(err), out, sizeof(out)), 2);
	td_cleanup(&d);
}
END_TEST

START_TEST(serves_a_socket_inherited_through_listen_fds)
{
	struct td_daemon d = {0};
	ck_assert_int_eq(td_make_dir(&d), 0);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	ck_assert_uint_lt(strlen(d.sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char pidbuf[16];
		if (fd != 3) {
			dup2(fd, 3);
			close(fd);
		}
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "1", 1);
		int log = open(d.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(log, 2);
		execl(getenv("JOULED"), "jouled", "--socket", d.sock, "--db", d.db, (char *)NULL);
		_exit(122);
	}
	close(fd);
	d.pid = pid;
	ck_assert_int_eq(td_wait_ready(&d, TD_READY_TIMEOUT_MS), 0);
	json_t *h = td_get_json(&d, "/v1/health");
	ck_assert_str_eq(json_string_value(json_object_get(h, "status")), "ok");
	json_decref(h);
	int status;
	ck_assert_int_eq(td_stop(&d, &status), 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the socket belongs to whoever passed it: jouled leaves the file alone */
	struct stat st;
	ck_assert_int_eq(stat(d.sock, &st), 0);
	td_cleanup(&d);
}
END_TEST

START_TEST(tells_the_service_manager_it_is_ready_and_stopping)
{
	struct td_daemon d = {0};
	char path[PATH_MAX], buf[512];
	ck_assert_int_eq(td_make_dir(&d), 0);
	snprintf(path, sizeof(path), "%s/notify", d.dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", path, 1);
	pid_t pid;
	int rc = td_spawn(&d, NULL, NULL, &pid);
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(rc, 0);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, "READY=1") && strstr(buf, "STATUS=serving"), "got: %s", buf);
	/* READY means it answers */
	ck_assert_int_eq(td_wait_ready(&d, 1000), 0);
	ck_assert_int_gt(pid, 0);
	kill(pid, SIGTERM);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "STOPPING=1");
	close(fd);
	td_cleanup(&d);
}
END_TEST

START_TEST(logs_carry_the_syslog_priority_when_journald_reads_them)
{
	struct td_daemon d = {0};
	setenv("JOURNAL_STREAM", "8:1234", 1);
	int rc = td_start(&d);
	unsetenv("JOURNAL_STREAM");
	ck_assert_int_eq(rc, 0);
	int status;
	ck_assert_int_eq(td_stop(&d, &status), 0);
	char *log;
	size_t len;
	ck_assert_int_eq(td_read_file(d.log, &log, &len), 0);
	ck_assert_msg(strstr(log, "<6>jouled ") && strstr(log, "<6>stopped"), "log: %s", log);
	free(log);
	td_cleanup(&d);
}
END_TEST

struct seen {
	uint64_t samples;
	bool requests, jobs, devices, watts, commits, rss;
};

static int on_metric(const struct prom_sample *s, void *ud)
{
	struct seen *w = ud;
	w->samples++;
	w->requests |= strcmp(s->name, "joule_http_requests_total") == 0;
	w->jobs |= strcmp(s->name, "joule_jobs") == 0 && s->type && strcmp(s->type, "gauge") == 0;
	w->devices |= strcmp(s->name, "joule_devices") == 0 && prom_label_get(s, "model");
	w->watts |= strcmp(s->name, "joule_domain_reserved_watts") == 0 && s->value > 0;
	w->commits |= strcmp(s->name, "joule_store_commit_duration_seconds_count") == 0 && s->value > 0;
	w->rss |= strcmp(s->name, "joule_process_resident_memory_bytes") == 0 && s->value > 0;
	return 0;
}

START_TEST(metrics_are_valid_prometheus_text)
{
	struct td_daemon d = {0};
	struct td_response r = {0};
	struct prom_stats st;
	struct seen w = {0};
	char path[PATH_MAX];
	ck_assert_int_eq(td_start(&d), 0);
	ck_assert_int_eq(td_data_path("fleet.json", path, sizeof(path)), 0);
	struct td_run run;
	const char *argv[] = {"fleet", "import", path, NULL};
	ck_assert_int_eq(td_ctl(&d, NULL, argv, &run), 0);
	td_run_free(&run);
	ck_assert_int_eq(td_http(&d, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	char type[128];
	ck_assert_int_eq(td_response_header(&r, "Content-Type", type, sizeof(type)), 0);
	ck_assert_msg(strstr(type, "text/plain") && strstr(type, "0.0.4"), "type %s", type);
	ck_assert_int_eq(prom_parse(r.raw, r.len, NULL, on_metric, &w, &st), 0);
	ck_assert_msg(st.malformed == 0 && st.too_long == 0,
		      "malformed line %llu: %s", (unsigned long long)st.first_bad_line,
		      st.first_bad_reason ? st.first_bad_reason : "");
	ck_assert(w.requests && w.jobs && w.devices && w.watts && w.commits && w.rss);
	td_response_free(&r);
	td_cleanup(&d);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *access = tcase_create("access");
	tcase_set_timeout(access, 60);
	tcase_add_test(access, a_user_who_is_not_an_admin_cannot_change_the_fleet);
	tcase_add_test(access, an_owner_may_cancel_their_job_but_not_another_users);
	tcase_add_test(access, a_member_of_the_admin_group_may_change_the_fleet);
	suite_add_tcase(s, access);
	TCase *config = tcase_create("config");
	tcase_add_loop_test(config, a_bad_configuration_names_the_file_line_and_key, 0,
			    (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
	tcase_add_test(config, flags_win_over_the_configuration_file);
	suite_add_tcase(s, config);
	TCase *sd = tcase_create("service_manager");
	tcase_set_timeout(sd, 60);
	tcase_add_test(sd, serves_a_socket_inherited_through_listen_fds);
	tcase_add_test(sd, tells_the_service_manager_it_is_ready_and_stopping);
	tcase_add_test(sd, logs_carry_the_syslog_priority_when_journald_reads_them);
	tcase_add_test(sd, metrics_are_valid_prometheus_text);
	suite_add_tcase(s, sd);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(ops_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
