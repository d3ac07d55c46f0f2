/*
 * test_cli — joulectl against a real jouled: every command with and without --json, and
 * the exit codes (0 ok, 1 refused by the daemon, 2 usage, 3 daemon unreachable).
 *
 * Owns: nothing between tests: each test has its own daemon and temp dir (checked fixture).
 * Never: reads the client's source for expectations beyond its documented interface
 * (joulectl --help); table contents are checked loosely (a header row, the names that
 * must appear), JSON output strictly (it is the daemon's answer).
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/wait.h>

#include <jansson.h>

#include "../lib/daemon.h"

#define H100 "H100-SXM5-80GB"

static struct td_daemon D;

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Run joulectl; assert the exit code; the caller frees r. */
static void ctl_at(int line, const char *sock, const char *const *argv, int want,
		   struct td_run *r)
{
	int rc = td_ctl(&D, sock, argv, r);
	ck_assert_msg(rc == 0, "line %d: joulectl did not run (%d)", line, rc);
	char cmd[512] = "";
	for (size_t i = 0; argv[i]; i++) {
		strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
		strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
	}
	ck_assert_msg(r->code == want, "line %d: joulectl%s: exit %d, want %d\nstdout: %.800s\nstderr: %.800s",
		      line, cmd, r->code, want, r->out, r->err);
}
#define CTL(want, r, ...) ctl_at(__LINE__, NULL, ARGS(__VA_ARGS__), (want), (r))
#define CTL_SOCK(sock, want, r, ...) ctl_at(__LINE__, (sock), ARGS(__VA_ARGS__), (want), (r))

static json_t *parse_at(int line, const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	ck_assert_msg(j != NULL, "line %d: --json output does not parse (%d:%d %s): %.800s", line,
		      e.line, e.column, e.text, text);
	return j;
}
#define PARSE(text) parse_at(__LINE__, (text))

/* The first line of a table: upper-case column names, one of them `col`. */
static void assert_header_at(int line, const char *out, const char *col)
{
	const char *eol = strchr(out, '\n');
	ck_assert_msg(eol != NULL, "line %d: no table: %.500s", line, out);
	char first[1024];
	size_t n = (size_t)(eol - out) < sizeof first - 1 ? (size_t)(eol - out) : sizeof first - 1;
	memcpy(first, out, n);
	first[n] = '\0';
	ck_assert_msg(strstr(first, col) != NULL, "line %d: header row \"%s\" lacks %s", line, first,
		      col);
	for (const char *p = first; *p; p++)
		ck_assert_msg(!(*p >= 'a' && *p <= 'z'), "line %d: header row \"%s\" is not a header",
			      line, first);
	ck_assert_msg(eol[1] != '\0', "line %d: a header row and no rows: %.500s", line, out);
}
#define ASSERT_HEADER(out, col) assert_header_at(__LINE__, (out), (col))

static json_int_t submit_api(const char *body)
{
	struct td_response r;
	ck_assert_int_eq(td_http(&D, "POST", "/v1/jobs", body, NULL, &r), 0);
	ck_assert_msg(r.status == 201, "submit: %ld %s", r.status, r.raw);
	json_int_t id = json_integer_value(json_object_get(r.json, "id"));
	td_response_free(&r);
	return id;
}

static void setup(void)
{
	ck_assert_int_eq(td_start(&D), 0);
	char path[4096];
	ck_assert_int_eq(td_data_path("fleet.json", path, sizeof path), 0);
	struct td_run r;
	CTL(0, &r, "fleet", "import", path);
	ck_assert_msg(strstr(r.out, "3 nodes") != NULL, "import summary: %s", r.out);
	td_run_free(&r);
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

/* ---- reading ---------------------------------------------------------------------- */

START_TEST(status_prints_the_health_as_text_and_as_json)
{
	struct td_run r;
	CTL(0, &r, "status");
	ck_assert_msg(strstr(r.out, "status") && strstr(r.out, "ok"), "status: %s", r.out);
	td_run_free(&r);
	CTL(0, &r, "--json", "status");
	json_t *j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 3);
	json_decref(j);
	td_run_free(&r);
}
END_TEST

static const struct {
	const char *cmd, *header, *key, *must_show;
	size_t count;        /* entries in the JSON list */
} lists[] = {
	{ "models", "NAME", "models", H100, 0 },
	{ "domains", "NAME", "domains", "rack-a", 3 },
	{ "nodes", "NAME", "nodes", "a-n2", 3 },
	{ "devices", "NODE", "devices", "b-n1", 24 },
	{ "jobs", "ID", "jobs", "listed", 1 },
};

START_TEST(list_commands_print_a_table_with_a_header_row_or_json)
{
	submit_api("{\"name\":\"listed\",\"kind\":\"training\",\"workers\":1,\"devices\":2}");
	struct td_run r;
	CTL(0, &r, lists[_i].cmd);
	ASSERT_HEADER(r.out, lists[_i].header);
	ck_assert_msg(strstr(r.out, lists[_i].must_show), "%s should show %s: %s", lists[_i].cmd,
		      lists[_i].must_show, r.out);
	td_run_free(&r);

	CTL(0, &r, "--json", lists[_i].cmd);
	json_t *j = PARSE(r.out);
	json_t *list = json_object_get(j, lists[_i].key);
	ck_assert_msg(json_is_array(list), "%s --json: no \"%s\" array", lists[_i].cmd, lists[_i].key);
	if (lists[_i].count)
		ck_assert_int_eq(json_array_size(list), lists[_i].count);
	else
		ck_assert_int_ge(json_array_size(list), 13);
	json_decref(j);
	td_run_free(&r);

	/* Global options may follow the command. */
	CTL(0, &r, lists[_i].cmd, "--json");
	json_decref(PARSE(r.out));
	td_run_free(&r);
}
END_TEST

START_TEST(list_filters_are_passed_to_the_daemon)
{
	struct td_run r;
	CTL(0, &r, "--json", "nodes", "--domain", "rack-b");
	json_t *j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 1);
	json_decref(j);
	td_run_free(&r);
	CTL(0, &r, "--json", "devices", "--vendor", "huawei");
	j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "devices")), 8);
	json_decref(j);
	td_run_free(&r);
	submit_api("{\"name\":\"q1\",\"kind\":\"training\",\"queue\":\"q1\",\"workers\":1,\"devices\":1}");
	submit_api("{\"name\":\"q2\",\"kind\":\"training\",\"queue\":\"q2\",\"workers\":1,\"devices\":1}");
	CTL(0, &r, "--json", "jobs", "--queue", "q2");
	j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "jobs")), 1);
	json_decref(j);
	td_run_free(&r);
}
END_TEST

START_TEST(node_shows_one_node_and_its_devices)
{
	struct td_run r;
	CTL(0, &r, "node", "a-n1");
	ck_assert_msg(strstr(r.out, "a-n1") && strstr(r.out, "INDEX") && strstr(r.out, H100),
		      "node a-n1: %s", r.out);
	td_run_free(&r);
	CTL(0, &r, "--json", "node", "a-n1");
	json_t *j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "a-n1");
	ck_assert_int_eq(json_array_size(json_object_get(j, "devices")), 8);
	json_decref(j);
	td_run_free(&r);
	CTL(1, &r, "node", "no-such-node");
	ck_assert_msg(r.err[0] != '\0', "a refusal says why on stderr");
	td_run_free(&r);
}
END_TEST

START_TEST(job_shows_one_job_and_its_placement)
{
	json_int_t id = submit_api("{\"name\":\"shown\",\"kind\":\"training\",\"workers\":1,\"devices\":4,"
				   "\"accelerator\":{\"models\":[\"" H100 "\"]}}");
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	struct td_run r;
	CTL(0, &r, "job", ids);
	ck_assert_msg(strstr(r.out, "shown") && strstr(r.out, "placed") && strstr(r.out, "NODE"),
		      "job %s: %s", ids, r.out);
	td_run_free(&r);
	CTL(0, &r, "--json", "job", ids);
	json_t *j = PARSE(r.out);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "id")), id);
	ck_assert_int_eq(json_array_size(json_object_get(j, "placement")), 1);
	json_decref(j);
	td_run_free(&r);
}
END_TEST

/* ---- changing ----------------------------------------------------------------------- */

START_TEST(submit_from_a_file_or_flags_then_cancel)
{
	char path[4096];
	ck_assert_int_eq(td_data_path("jobs/train-1x4-h100.json", path, sizeof path), 0);
	struct td_run r;
	CTL(0, &r, "submit", path);
	long long id = 0;
	char state[32] = "";
	ck_assert_msg(sscanf(r.out, "job %lld %31s", &id, state) == 2, "submit said: %s", r.out);
	ck_assert_str_eq(state, "placed");
	ck_assert_msg(strstr(r.out, "NODE"), "submit shows the placement: %s", r.out);
	td_run_free(&r);

	ck_assert_int_eq(td_data_path("jobs/infer-2x1-ascend.json", path, sizeof path), 0);
	CTL(0, &r, "--json", "submit", path);
	json_t *j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "placed");
	ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "inference");
	ck_assert_int_eq(json_array_size(json_object_get(j, "placement")), 2);
	json_decref(j);
	td_run_free(&r);

	CTL(0, &r, "--json", "submit", "--name", "flags", "--kind", "training", "--workers", "1",
	    "--devices", "2", "--model", H100, "--cap", "500", "--queue", "cli");
	j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "flags");
	ck_assert_str_eq(json_string_value(json_object_get(j, "queue")), "cli");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "power"), "cap_w")), 500);
	json_decref(j);
	td_run_free(&r);

	char ids[32];
	snprintf(ids, sizeof ids, "%lld", id);
	CTL(0, &r, "cancel", ids);
	ck_assert_msg(strstr(r.out, "cancelled"), "cancel said: %s", r.out);
	td_run_free(&r);
	CTL(1, &r, "cancel", ids);
	ck_assert_msg(r.err[0] != '\0', "a refused cancel says why on stderr");
	td_run_free(&r);
	CTL(1, &r, "cancel", "999999");
	ck_assert_msg(r.err[0] != '\0', "cancel of an unknown job says why on stderr");
	td_run_free(&r);
	CTL(0, &r, "--json", "jobs", "--state", "cancelled");
	j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "jobs")), 1);
	json_decref(j);
	td_run_free(&r);
}
END_TEST

START_TEST(submit_with_the_same_idempotency_key_gives_the_same_job)
{
	struct td_run r;
	long long a = 0, b = 0;
	char s[32];
	CTL(0, &r, "submit", "--name", "idem", "--kind", "training", "--workers", "1", "--devices", "1",
	    "--idempotency-key", "cli-key-1");
	ck_assert_int_eq(sscanf(r.out, "job %lld %31s", &a, s), 2);
	td_run_free(&r);
	CTL(0, &r, "submit", "--name", "idem", "--kind", "training", "--workers", "1", "--devices", "1",
	    "--idempotency-key", "cli-key-1");
	ck_assert_int_eq(sscanf(r.out, "job %lld %31s", &b, s), 2);
	td_run_free(&r);
	ck_assert_int_eq(a, b);
}
END_TEST

START_TEST(a_refused_submit_exits_1_with_the_reason_on_stderr)
{
	char path[4096];
	ck_assert_int_eq(td_data_path("jobs/bad-devices-0.json", path, sizeof path), 0);
	struct td_run r;
	CTL(1, &r, "submit", path);
	ck_assert_msg(strstr(r.err, "devices"), "stderr should name the field: %s", r.err);
	td_run_free(&r);
}
END_TEST

START_TEST(drain_and_resume_change_the_node_state)
{
	struct td_run r;
	CTL(0, &r, "drain", "a-n1");
	ck_assert_msg(strstr(r.out, "a-n1") && strstr(r.out, "drained"), "drain said: %s", r.out);
	td_run_free(&r);
	CTL(0, &r, "--json", "nodes", "--state", "drained");
	json_t *j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 1);
	json_decref(j);
	td_run_free(&r);
	CTL(0, &r, "--json", "resume", "a-n1");
	j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "up");
	json_decref(j);
	td_run_free(&r);
	CTL(0, &r, "--json", "drain", "b-n1");
	j = PARSE(r.out);
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "drained");
	json_decref(j);
	td_run_free(&r);
	CTL(0, &r, "resume", "b-n1");
	ck_assert_msg(strstr(r.out, "up"), "resume said: %s", r.out);
	td_run_free(&r);
	CTL(1, &r, "drain", "no-such-node");
	td_run_free(&r);
}
END_TEST

START_TEST(fleet_export_prints_the_fleet_document)
{
	struct td_run r;
	CTL(0, &r, "fleet", "export");
	json_t *j = PARSE(r.out);
	ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 3);
	ck_assert_int_eq(json_array_size(json_object_get(j, "domains")), 3);
	json_decref(j);
	td_run_free(&r);
}
END_TEST

/* ---- exit codes ----------------------------------------------------------------------- */

START_TEST(usage_errors_exit_2)
{
	struct td_run r;
	CTL(2, &r, "no-such-command");
	ck_assert_msg(r.err[0] != '\0', "usage errors go to stderr");
	td_run_free(&r);
	CTL(2, &r, "job", "not-a-number");
	td_run_free(&r);
	CTL(2, &r, "job");
	td_run_free(&r);
	CTL(2, &r, "jobs", "--no-such-option");
	td_run_free(&r);
	CTL(2, &r, "submit", "/nonexistent/job.json");
	td_run_free(&r);
	ctl_at(__LINE__, NULL, (const char *const[]){ NULL }, 2, &r);   /* no command */
	td_run_free(&r);
	CTL(0, &r, "--help");
	ck_assert_msg(strstr(r.out, "usage"), "--help: %s", r.out);
	td_run_free(&r);
	CTL(0, &r, "--version");
	ck_assert_msg(r.out[0] != '\0', "--version prints the version");
	td_run_free(&r);
}
END_TEST

START_TEST(an_unreachable_daemon_exits_3)
{
	struct td_run r;
	CTL(3, &r, "--socket", "/nonexistent", "status");
	ck_assert_msg(strstr(r.err, "/nonexistent"), "stderr should name the socket: %s", r.err);
	td_run_free(&r);
	CTL_SOCK("/nonexistent", 3, &r, "jobs");
	td_run_free(&r);
	CTL_SOCK("", 3, &r, "--socket", "/nonexistent", "models");
	td_run_free(&r);
	/* A stopped daemon is unreachable too. */
	int st;
	ck_assert_int_eq(td_stop(&D, &st), 0);
	CTL(3, &r, "status");
	td_run_free(&r);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("read");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, status_prints_the_health_as_text_and_as_json);
	tcase_add_loop_test(tc, list_commands_print_a_table_with_a_header_row_or_json, 0,
			    (int)(sizeof lists / sizeof lists[0]));
	tcase_add_test(tc, list_filters_are_passed_to_the_daemon);
	tcase_add_test(tc, node_shows_one_node_and_its_devices);
	tcase_add_test(tc, job_shows_one_job_and_its_placement);
	tcase_add_test(tc, fleet_export_prints_the_fleet_document);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, submit_from_a_file_or_flags_then_cancel);
	tcase_add_test(tc, submit_with_the_same_idempotency_key_gives_the_same_job);
	tcase_add_test(tc, a_refused_submit_exits_1_with_the_reason_on_stderr);
	tcase_add_test(tc, drain_and_resume_change_the_node_state);
	suite_add_tcase(s, tc);

	tc = tcase_create("exit_codes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, usage_errors_exit_2);
	tcase_add_test(tc, an_unreachable_daemon_exits_3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	td_init();
	SRunner *sr = srunner_create(cli_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	td_sweep();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
