/*
 * test_job — the job table: dense ids, lookups, the pending queue order, state counters,
 * the idempotency index, explicit ids at load time, and every enum's names.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

static struct job *mk(int32_t priority)
{
	struct job *j = job_new();
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(j->id, 0);
	ck_assert_int_eq(j->state, JOB_PENDING);
	ck_assert_ptr_null(j->name);
	ck_assert_ptr_null(j->idem_key);
	ck_assert_ptr_null(j->placement);
	j->name = strdup("job");
	j->owner = strdup("alice");
	j->queue = strdup("default");
	ck_assert(j->name && j->owner && j->queue);
	j->uid = 1000;
	j->priority = priority;
	j->req.kind = JOB_TRAINING;
	j->req.count = 1;
	j->req.devices = 1;
	return j;
}

static struct job *add(struct jobs *t, int32_t priority)
{
	struct job *j = mk(priority);
	ck_assert_int_eq(jobs_add(t, j), 0);
	return j;
}

/* The pending queue as ids, checked for order and membership. */
static void assert_pending(const struct jobs *t, const uint64_t *want, uint32_t n)
{
	char got[512] = "", exp[512] = "";
	for (uint32_t i = 0; i < t->npending; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%llu ",
			 (unsigned long long)t->pending[i]->id);
	for (uint32_t i = 0; i < n; i++)
		snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%llu ",
			 (unsigned long long)want[i]);
	ck_assert_msg(strcmp(got, exp) == 0, "pending [%s], want [%s]", got, exp);
	ck_assert_uint_eq(t->count_by_state[JOB_PENDING], n);
}

/* The table's own invariants: pending sorted, exactly the PENDING jobs, counters right. */
static void assert_table(const struct jobs *t)
{
	uint32_t counts[_JOB_STATE_MAX] = {0};
	uint32_t npend = 0;
	for (uint64_t id = 1; id < t->next_id; id++) {
		struct job *j = jobs_get(t, id);
		if (!j)
			continue;
		ck_assert_uint_eq(j->id, id);
		counts[j->state]++;
		if (j->state == JOB_PENDING)
			npend++;
	}
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		ck_assert_msg(t->count_by_state[s] == counts[s], "count_by_state[%s] %u, want %u",
			      job_state_name((enum job_state)s), t->count_by_state[s], counts[s]);
	ck_assert_uint_eq(t->npending, npend);
	for (uint32_t i = 0; i < t->npending; i++) {
		ck_assert_int_eq(t->pending[i]->state, JOB_PENDING);
		if (i > 0) {
			const struct job *a = t->pending[i - 1], *b = t->pending[i];
			ck_assert_msg(a->priority > b->priority ||
					      (a->priority == b->priority && a->id < b->id),
				      "pending[%u] (%llu, prio %d) before (%llu, prio %d)", i,
				      (unsigned long long)a->id, a->priority,
				      (unsigned long long)b->id, b->priority);
		}
	}
}

/* ---- ids and lookups ---- */

START_TEST(ids_are_dense_from_one)
{
	struct jobs t;

	jobs_init(&t);
	ck_assert_uint_eq(t.next_id, 1);
	for (uint64_t i = 1; i <= 100; i++) {
		struct job *j = add(&t, 0);
		ck_assert_uint_eq(j->id, i);
	}
	ck_assert_uint_eq(t.next_id, 101);
	jobs_free(&t);
}
END_TEST

START_TEST(get_finds_each_job_by_id_and_nothing_else)
{
	struct jobs t;
	struct job *js[5];

	jobs_init(&t);
	ck_assert_ptr_null(jobs_get(&t, 1));
	for (int i = 0; i < 5; i++)
		js[i] = add(&t, i);
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_eq(jobs_get(&t, (uint64_t)i + 1), js[i]);
	ck_assert_ptr_null(jobs_get(&t, 0));
	ck_assert_ptr_null(jobs_get(&t, 6));
	ck_assert_ptr_null(jobs_get(&t, UINT64_MAX));
	jobs_free(&t);
}
END_TEST

START_TEST(many_jobs_grow_the_table)
{
	struct jobs t;

	jobs_init(&t);
	for (int i = 0; i < 20000; i++)
		add(&t, i % 7);
	ck_assert_uint_eq(t.npending, 20000);
	ck_assert_uint_eq(jobs_get(&t, 20000)->id, 20000);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(an_explicit_id_moves_next_id_past_it)
{
	struct jobs t;

	jobs_init(&t);
	struct job *j = mk(0);
	j->id = 10;
	ck_assert_int_eq(jobs_add(&t, j), 0);
	ck_assert_uint_eq(t.next_id, 11);
	ck_assert_ptr_eq(jobs_get(&t, 10), j);
	ck_assert_ptr_null(jobs_get(&t, 9));
	/* An unused id below next_id is fine too (loading from the store). */
	struct job *k = mk(0);
	k->id = 4;
	ck_assert_int_eq(jobs_add(&t, k), 0);
	ck_assert_uint_eq(t.next_id, 11);
	ck_assert_ptr_eq(jobs_get(&t, 4), k);
	struct job *l = add(&t, 0);
	ck_assert_uint_eq(l->id, 11);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(adding_an_id_in_use_is_a_conflict_and_changes_nothing)
{
	struct jobs t;

	jobs_init(&t);
	add(&t, 0);
	add(&t, 5);
	struct job *dup = mk(9);
	dup->id = 2;
	dup->idem_key = strdup("dup-key");
	ck_assert_int_eq(jobs_add(&t, dup), ERR_CONFLICT);
	ck_assert_uint_eq(t.next_id, 3);
	ck_assert_uint_eq(jobs_get(&t, 2)->priority, 5);
	ck_assert_ptr_null(jobs_find_idem(&t, 1000, "dup-key"));
	uint64_t want[] = {2, 1};
	assert_pending(&t, want, 2);
	assert_table(&t);
	job_free(dup);   /* still ours */
	jobs_free(&t);
}
END_TEST

START_TEST(job_free_accepts_null)
{
	job_free(NULL);
}
END_TEST

START_TEST(a_table_frees_every_job_and_string_it_owns)
{
	struct jobs t;

	/* Leaks show up under ASan in this test's own process. */
	jobs_init(&t);
	for (int i = 0; i < 50; i++) {
		struct job *j = mk(i);
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		j->idem_key = strdup(key);
		j->reason = strdup("waiting");
		j->req.nmodels = 2;
		j->req.models = calloc(2, sizeof(*j->req.models));
		ck_assert_ptr_nonnull(j->req.models);
		snprintf(j->req.models[0], sizeof(j->req.models[0]), "H100");
		snprintf(j->req.models[1], sizeof(j->req.models[1]), "H200");
		j->placement = calloc(1, sizeof(*j->placement));
		j->nplaced = 1;
		ck_assert_int_eq(jobs_add(&t, j), 0);
	}
	jobs_free(&t);
}
END_TEST

/* ---- pending queue ---- */

START_TEST(pending_is_ordered_by_priority_then_id)
{
	struct jobs t;
	static const int32_t prio[] = {0, 10, -5, 10, 0, 1000000, -1000000, 10};

	jobs_init(&t);
	for (size_t i = 0; i < sizeof(prio) / sizeof(prio[0]); i++)
		add(&t, prio[i]);
	uint64_t want[] = {6, 2, 4, 8, 1, 5, 3, 7};
	assert_pending(&t, want, 8);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(leaving_pending_removes_a_job_from_the_queue)
{
	struct jobs t;

	jobs_init(&t);
	for (int i = 0; i < 5; i++)
		add(&t, 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 3), JOB_PLACED), 0);
	ck_assert_int_eq(jobs_get(&t, 3)->state, JOB_PLACED);
	uint64_t want1[] = {1, 2, 4, 5};
	assert_pending(&t, want1, 4);
	ck_assert_uint_eq(t.count_by_state[JOB_PLACED], 1);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 1), JOB_CANCELLED), 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 5), JOB_PLACED), 0);
	uint64_t want2[] = {2, 4};
	assert_pending(&t, want2, 2);
	ck_assert_uint_eq(t.count_by_state[JOB_PLACED], 2);
	ck_assert_uint_eq(t.count_by_state[JOB_CANCELLED], 1);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(returning_to_pending_files_a_job_back_in_order)
{
	struct jobs t;

	jobs_init(&t);
	add(&t, 5);     /* 1 */
	add(&t, 1);     /* 2 */
	add(&t, 5);     /* 3 */
	add(&t, 1);     /* 4 */
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 1), JOB_PLACED), 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 1), JOB_RUNNING), 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 2), JOB_PLACED), 0);
	uint64_t want1[] = {3, 4};
	assert_pending(&t, want1, 2);
	/* Preemption / node loss: back to pending, ahead of later ids of equal priority. */
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 2), JOB_PENDING), 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 1), JOB_PENDING), 0);
	uint64_t want2[] = {1, 3, 2, 4};
	assert_pending(&t, want2, 4);
	ck_assert_uint_eq(t.count_by_state[JOB_RUNNING], 0);
	ck_assert_uint_eq(t.count_by_state[JOB_PLACED], 0);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(setting_the_same_state_twice_counts_once)
{
	struct jobs t;

	jobs_init(&t);
	add(&t, 0);
	add(&t, 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 1), JOB_PENDING), 0);
	uint64_t want[] = {1, 2};
	assert_pending(&t, want, 2);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 2), JOB_RUNNING), 0);
	ck_assert_int_eq(jobs_set_state(&t, jobs_get(&t, 2), JOB_RUNNING), 0);
	ck_assert_uint_eq(t.count_by_state[JOB_RUNNING], 1);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

START_TEST(a_job_added_in_a_non_pending_state_is_counted_but_not_queued)
{
	struct jobs t;
	static const enum job_state states[] = {JOB_PLACED, JOB_RUNNING, JOB_SUCCEEDED,
						JOB_FAILED, JOB_CANCELLED};

	jobs_init(&t);
	add(&t, 0);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		struct job *j = mk(0);
		j->state = states[i];
		ck_assert_int_eq(jobs_add(&t, j), 0);
		ck_assert_uint_eq(t.count_by_state[states[i]], 1);
	}
	uint64_t want[] = {1};
	assert_pending(&t, want, 1);
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

/* Many random state changes keep the queue and counters right. */
START_TEST(random_state_changes_keep_queue_and_counters_consistent)
{
	struct jobs t;
	uint64_t x = 0x9E3779B97F4A7C15ull;

	jobs_init(&t);
	for (int step = 0; step < 3000; step++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (t.next_id < 5 || x % 4 == 0) {
			add(&t, (int32_t)(x % 11) - 5);
		} else {
			struct job *j = jobs_get(&t, 1 + (x >> 8) % (t.next_id - 1));
			ck_assert_int_eq(jobs_set_state(&t, j, (enum job_state)((x >> 20) %
										 _JOB_STATE_MAX)),
					 0);
		}
		if (step % 100 == 0)
			assert_table(&t);
	}
	assert_table(&t);
	jobs_free(&t);
}
END_TEST

/* ---- idempotency ---- */

static struct job *add_idem(struct jobs *t, uint32_t uid, const char *key)
{
	struct job *j = mk(0);
	j->uid = uid;
	j->idem_key = strdup(key);
	ck_assert_int_eq(jobs_add(t, j), 0);
	return j;
}

START_TEST(idempotency_keys_are_found_per_user)
{
	struct jobs t;

	jobs_init(&t);
	struct job *a = add_idem(&t, 1000, "abc");
	struct job *b = add_idem(&t, 1001, "abc");
	struct job *c = add_idem(&t, 1000, "abd");
	add(&t, 0);     /* no key */
	ck_assert_ptr_eq(jobs_find_idem(&t, 1000, "abc"), a);
	ck_assert_ptr_eq(jobs_find_idem(&t, 1001, "abc"), b);
	ck_assert_ptr_eq(jobs_find_idem(&t, 1000, "abd"), c);
	ck_assert_ptr_null(jobs_find_idem(&t, 1001, "abd"));
	ck_assert_ptr_null(jobs_find_idem(&t, 1002, "abc"));
	ck_assert_ptr_null(jobs_find_idem(&t, 1000, "ab"));
	ck_assert_ptr_null(jobs_find_idem(&t, 1000, ""));
	jobs_free(&t);
}
END_TEST

START_TEST(idempotency_keys_cannot_be_confused_by_separators)
{
	struct jobs t;

	/* The index key is "uid:key": uid 1 + key "2:x" must not meet uid 12 + key "x",
	 * nor uid 1 + "2:x" meet uid 12 + ":x"-style splits. */
	jobs_init(&t);
	struct job *a = add_idem(&t, 1, "2:x");
	ck_assert_ptr_null(jobs_find_idem(&t, 12, "x"));
	ck_assert_ptr_null(jobs_find_idem(&t, 12, ":x"));
	struct job *b = add_idem(&t, 12, "x");
	ck_assert_ptr_eq(jobs_find_idem(&t, 1, "2:x"), a);
	ck_assert_ptr_eq(jobs_find_idem(&t, 12, "x"), b);
	jobs_free(&t);
}
END_TEST

START_TEST(long_idempotency_keys_differing_only_at_the_end_are_distinct)
{
	struct jobs t;
	char k1[256], k2[256];

	/* The API allows keys of up to 255 visible characters. */
	memset(k1, 'k', 255);
	k1[255] = '\0';
	memcpy(k2, k1, sizeof(k2));
	k2[254] = 'z';
	jobs_init(&t);
	struct job *a = add_idem(&t, UINT32_MAX, k1);
	ck_assert_ptr_null(jobs_find_idem(&t, UINT32_MAX, k2));
	struct job *b = add_idem(&t, UINT32_MAX, k2);
	ck_assert_ptr_eq(jobs_find_idem(&t, UINT32_MAX, k1), a);
	ck_assert_ptr_eq(jobs_find_idem(&t, UINT32_MAX, k2), b);
	jobs_free(&t);
}
END_TEST

START_TEST(idempotency_survives_leaving_pending)
{
	struct jobs t;

	jobs_init(&t);
	struct job *a = add_idem(&t, 7, "k");
	ck_assert_int_eq(jobs_set_state(&t, a, JOB_PLACED), 0);
	ck_assert_int_eq(jobs_set_state(&t, a, JOB_SUCCEEDED), 0);
	ck_assert_ptr_eq(jobs_find_idem(&t, 7, "k"), a);
	jobs_free(&t);
}
END_TEST

/* ---- names ---- */

static const struct {
	enum job_state s;
	const char *name;
	bool finished;
} state_names[] = {
	{JOB_PENDING, "pending", false},    {JOB_PLACED, "placed", false},
	{JOB_RUNNING, "running", false},    {JOB_SUCCEEDED, "succeeded", true},
	{JOB_FAILED, "failed", true},       {JOB_CANCELLED, "cancelled", true},
};

START_TEST(job_state_names_round_trip)
{
	enum job_state got = _JOB_STATE_MAX;

	ck_assert_str_eq(job_state_name(state_names[_i].s), state_names[_i].name);
	ck_assert_int_eq(job_state_parse(state_names[_i].name, &got), 0);
	ck_assert_int_eq(got, state_names[_i].s);
	ck_assert(job_state_finished(state_names[_i].s) == state_names[_i].finished);
}
END_TEST

static const struct {
	enum job_kind k;
	const char *name;
} kind_names[] = {{JOB_TRAINING, "training"}, {JOB_INFERENCE, "inference"}};

START_TEST(job_kind_names_round_trip)
{
	enum job_kind got = _JOB_KIND_MAX;

	ck_assert_str_eq(job_kind_name(kind_names[_i].k), kind_names[_i].name);
	ck_assert_int_eq(job_kind_parse(kind_names[_i].name, &got), 0);
	ck_assert_int_eq(got, kind_names[_i].k);
}
END_TEST

static const struct {
	enum job_topology t;
	const char *name;
} topo_names[] = {
	{TOPO_ANY, "any"},             {TOPO_SAME_NODE, "same_node"},
	{TOPO_SAME_GROUP, "same_group"}, {TOPO_SAME_RACK, "same_rack"},
	{TOPO_SPREAD, "spread"},
};

START_TEST(job_topology_names_round_trip)
{
	enum job_topology got = _TOPO_MAX;

	ck_assert_str_eq(job_topology_name(topo_names[_i].t), topo_names[_i].name);
	ck_assert_int_eq(job_topology_parse(topo_names[_i].name, &got), 0);
	ck_assert_int_eq(got, topo_names[_i].t);
}
END_TEST

START_TEST(every_enum_value_has_a_name_table_entry)
{
	ck_assert_int_eq(sizeof(state_names) / sizeof(state_names[0]), _JOB_STATE_MAX);
	ck_assert_int_eq(sizeof(kind_names) / sizeof(kind_names[0]), _JOB_KIND_MAX);
	ck_assert_int_eq(sizeof(topo_names) / sizeof(topo_names[0]), _TOPO_MAX);
}
END_TEST

START_TEST(unknown_names_do_not_parse_and_leave_the_output_alone)
{
	enum job_state s = JOB_RUNNING;
	enum job_kind k = JOB_INFERENCE;
	enum job_topology tp = TOPO_SPREAD;

	static const char *bad[] = {"", "PENDING", "pending ", "pend", "pendingx", "same-node",
				    "Training", "none"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(job_state_parse(bad[i], &s) != 0, "state \"%s\" parsed", bad[i]);
		ck_assert_msg(job_kind_parse(bad[i], &k) != 0, "kind \"%s\" parsed", bad[i]);
		ck_assert_msg(job_topology_parse(bad[i], &tp) != 0, "topology \"%s\" parsed",
			      bad[i]);
	}
	ck_assert_int_eq(s, JOB_RUNNING);
	ck_assert_int_eq(k, JOB_INFERENCE);
	ck_assert_int_eq(tp, TOPO_SPREAD);
}
END_TEST

static Suite *job_suite(void)
{
	Suite *s = suite_create("job");
	TCase *tc;

	tc = tcase_create("table");
	tcase_add_test(tc, ids_are_dense_from_one);
	tcase_add_test(tc, get_finds_each_job_by_id_and_nothing_else);
	tcase_add_test(tc, many_jobs_grow_the_table);
	tcase_add_test(tc, an_explicit_id_moves_next_id_past_it);
	tcase_add_test(tc, adding_an_id_in_use_is_a_conflict_and_changes_nothing);
	tcase_add_test(tc, job_free_accepts_null);
	tcase_add_test(tc, a_table_frees_every_job_and_string_it_owns);
	suite_add_tcase(s, tc);

	tc = tcase_create("pending queue");
	tcase_add_test(tc, pending_is_ordered_by_priority_then_id);
	tcase_add_test(tc, leaving_pending_removes_a_job_from_the_queue);
	tcase_add_test(tc, returning_to_pending_files_a_job_back_in_order);
	tcase_add_test(tc, setting_the_same_state_twice_counts_once);
	tcase_add_test(tc, a_job_added_in_a_non_pending_state_is_counted_but_not_queued);
	tcase_add_test(tc, random_state_changes_keep_queue_and_counters_consistent);
	suite_add_tcase(s, tc);

	tc = tcase_create("idempotency");
	tcase_add_test(tc, idempotency_keys_are_found_per_user);
	tcase_add_test(tc, idempotency_keys_cannot_be_confused_by_separators);
	tcase_add_test(tc, long_idempotency_keys_differing_only_at_the_end_are_distinct);
	tcase_add_test(tc, idempotency_survives_leaving_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, job_state_names_round_trip, 0,
			    (int)(sizeof(state_names) / sizeof(state_names[0])));
	tcase_add_loop_test(tc, job_kind_names_round_trip, 0,
			    (int)(sizeof(kind_names) / sizeof(kind_names[0])));
	tcase_add_loop_test(tc, job_topology_names_round_trip, 0,
			    (int)(sizeof(topo_names) / sizeof(topo_names[0])));
	tcase_add_test(tc, every_enum_value_has_a_name_table_entry);
	tcase_add_test(tc, unknown_names_do_not_parse_and_leave_the_output_alone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(job_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
