/*
 * test_hmap — the open-addressing maps: string and u64 keys, replace, delete, growth,
 * tombstones, keys the map must copy, and edge keys (0, UINT64_MAX, "").
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

/* ---- string keys ---- */

START_TEST(str_put_then_get_returns_the_value)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	ck_assert_int_eq(hmap_put_str(&m, "alpha", 1), 0);
	ck_assert_int_eq(hmap_put_str(&m, "beta", 2), 0);
	ck_assert(hmap_get_str(&m, "alpha", &v));
	ck_assert_uint_eq(v, 1);
	ck_assert(hmap_get_str(&m, "beta", &v));
	ck_assert_uint_eq(v, 2);
	ck_assert_uint_eq(m.used, 2);
	hmap_free(&m);
}
END_TEST

START_TEST(str_put_of_an_existing_key_replaces_the_value)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	ck_assert_int_eq(hmap_put_str(&m, "k", 1), 0);
	ck_assert_int_eq(hmap_put_str(&m, "k", 7), 0);
	ck_assert(hmap_get_str(&m, "k", &v));
	ck_assert_uint_eq(v, 7);
	ck_assert_uint_eq(m.used, 1);
	hmap_free(&m);
}
END_TEST

START_TEST(str_delete_removes_only_that_key)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	ck_assert_int_eq(hmap_put_str(&m, "a", 1), 0);
	ck_assert_int_eq(hmap_put_str(&m, "b", 2), 0);
	ck_assert(hmap_del_str(&m, "a"));
	ck_assert(!hmap_get_str(&m, "a", &v));
	ck_assert(hmap_get_str(&m, "b", &v));
	ck_assert_uint_eq(v, 2);
	ck_assert(!hmap_del_str(&m, "a"));
	ck_assert_uint_eq(m.used, 1);
	hmap_free(&m);
}
END_TEST

START_TEST(str_missing_keys_are_not_found_and_leave_value_untouched)
{
	struct hmap m;
	uint32_t v = 12345;

	hmap_init_str(&m);
	/* An empty map (no slots yet) answers too. */
	ck_assert(!hmap_get_str(&m, "nope", &v));
	ck_assert(!hmap_del_str(&m, "nope"));
	ck_assert_int_eq(hmap_put_str(&m, "yes", 1), 0);
	ck_assert(!hmap_get_str(&m, "nope", &v));
	ck_assert(!hmap_get_str(&m, "ye", &v));
	ck_assert(!hmap_get_str(&m, "yess", &v));
	ck_assert_uint_eq(v, 12345);
	hmap_free(&m);
}
END_TEST

START_TEST(str_keys_are_copied_not_borrowed)
{
	struct hmap m;
	uint32_t v = 0;
	char *key = strdup("borrowed");

	ck_assert_ptr_nonnull(key);
	hmap_init_str(&m);
	ck_assert_int_eq(hmap_put_str(&m, key, 42), 0);
	memset(key, 'x', strlen(key));
	free(key);
	ck_assert(hmap_get_str(&m, "borrowed", &v));
	ck_assert_uint_eq(v, 42);
	hmap_free(&m);
}
END_TEST

START_TEST(str_empty_string_is_an_ordinary_key)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	ck_assert(!hmap_get_str(&m, "", &v));
	ck_assert_int_eq(hmap_put_str(&m, "", 9), 0);
	ck_assert(hmap_get_str(&m, "", &v));
	ck_assert_uint_eq(v, 9);
	ck_assert(hmap_del_str(&m, ""));
	ck_assert(!hmap_get_str(&m, "", &v));
	hmap_free(&m);
}
END_TEST

START_TEST(str_map_grows_through_100k_keys_keeping_every_value)
{
	struct hmap m;
	char k[32];
	uint32_t v;

	hmap_init_str(&m);
	for (uint32_t i = 0; i < 100000; i++) {
		snprintf(k, sizeof(k), "node-%u", i);
		ck_assert_int_eq(hmap_put_str(&m, k, i * 3), 0);
	}
	ck_assert_uint_eq(m.used, 100000);
	ck_assert_uint_ge(m.cap, 100000);
	ck_assert_uint_eq(m.cap & (m.cap - 1), 0);      /* power of two */
	ck_assert(m.used * 10 <= m.cap * 7);             /* load factor <= 0.7 */
	for (uint32_t i = 0; i < 100000; i++) {
		snprintf(k, sizeof(k), "node-%u", i);
		v = UINT32_MAX;
		ck_assert_msg(hmap_get_str(&m, k, &v), "%s lost", k);
		ck_assert_uint_eq(v, i * 3);
	}
	ck_assert(!hmap_get_str(&m, "node-100000", &v));
	hmap_free(&m);
}
END_TEST

/* ---- u64 keys ---- */

START_TEST(u64_put_get_replace_delete)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_u64(&m);
	ck_assert_int_eq(hmap_put_u64(&m, 10, 100), 0);
	ck_assert_int_eq(hmap_put_u64(&m, 20, 200), 0);
	ck_assert(hmap_get_u64(&m, 10, &v));
	ck_assert_uint_eq(v, 100);
	ck_assert_int_eq(hmap_put_u64(&m, 10, 101), 0);
	ck_assert(hmap_get_u64(&m, 10, &v));
	ck_assert_uint_eq(v, 101);
	ck_assert_uint_eq(m.used, 2);
	ck_assert(hmap_del_u64(&m, 10));
	ck_assert(!hmap_get_u64(&m, 10, &v));
	ck_assert(!hmap_del_u64(&m, 10));
	ck_assert(hmap_get_u64(&m, 20, &v));
	ck_assert_uint_eq(v, 200);
	ck_assert_uint_eq(m.used, 1);
	hmap_free(&m);
}
END_TEST

/* Keys an implementation might be tempted to use as "empty" or "deleted" markers. */
static const uint64_t edge_keys[] = {0, 1, UINT64_MAX, UINT64_MAX - 1, UINT64_C(1) << 63,
				     UINT32_MAX, (uint64_t)UINT32_MAX + 1};
#define NEDGE (sizeof(edge_keys) / sizeof(edge_keys[0]))

START_TEST(u64_edge_keys_are_ordinary_keys)
{
	struct hmap m;
	uint32_t v = 0;
	uint64_t key = edge_keys[_i];

	hmap_init_u64(&m);
	ck_assert(!hmap_get_u64(&m, key, &v));
	ck_assert_int_eq(hmap_put_u64(&m, key, 77), 0);
	ck_assert(hmap_get_u64(&m, key, &v));
	ck_assert_uint_eq(v, 77);
	ck_assert_uint_eq(m.used, 1);
	/* The other edge keys are still absent. */
	for (size_t i = 0; i < NEDGE; i++)
		if (edge_keys[i] != key)
			ck_assert_msg(!hmap_get_u64(&m, edge_keys[i], &v), "key %llu present",
				      (unsigned long long)edge_keys[i]);
	ck_assert(hmap_del_u64(&m, key));
	ck_assert(!hmap_get_u64(&m, key, &v));
	ck_assert_uint_eq(m.used, 0);
	hmap_free(&m);
}
END_TEST

START_TEST(u64_missing_keys_are_not_found)
{
	struct hmap m;
	uint32_t v = 5;

	hmap_init_u64(&m);
	ck_assert(!hmap_get_u64(&m, 1, &v));
	ck_assert(!hmap_del_u64(&m, 1));
	for (uint64_t k = 0; k < 1000; k += 2)
		ck_assert_int_eq(hmap_put_u64(&m, k, (uint32_t)k), 0);
	for (uint64_t k = 1; k < 1000; k += 2)
		ck_assert(!hmap_get_u64(&m, k, &v));
	ck_assert_uint_eq(v, 5);
	hmap_free(&m);
}
END_TEST

START_TEST(u64_map_grows_through_100k_keys_keeping_every_value)
{
	struct hmap m;
	uint32_t v;

	hmap_init_u64(&m);
	/* Spread and clustered keys alike. */
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t key = (i & 1) ? i * UINT64_C(0x9E3779B97F4A7C15) : i << 12;
		ck_assert_int_eq(hmap_put_u64(&m, key, (uint32_t)i), 0);
	}
	ck_assert_uint_eq(m.used, 100000);
	ck_assert(m.used * 10 <= m.cap * 7);
	ck_assert_uint_eq(m.cap & (m.cap - 1), 0);
	for (uint64_t i = 0; i < 100000; i++) {
		uint64_t key = (i & 1) ? i * UINT64_C(0x9E3779B97F4A7C15) : i << 12;
		v = UINT32_MAX;
		ck_assert_msg(hmap_get_u64(&m, key, &v), "key %llu lost", (unsigned long long)i);
		ck_assert_uint_eq(v, (uint32_t)i);
	}
	hmap_free(&m);
}
END_TEST

/* ---- tombstones ---- */

START_TEST(deleting_half_the_keys_keeps_the_rest_reachable)
{
	struct hmap m;
	uint32_t v;

	hmap_init_u64(&m);
	for (uint64_t k = 0; k < 5000; k++)
		ck_assert_int_eq(hmap_put_u64(&m, k, (uint32_t)k + 1), 0);
	for (uint64_t k = 0; k < 5000; k += 2)
		ck_assert(hmap_del_u64(&m, k));
	ck_assert_uint_eq(m.used, 2500);
	for (uint64_t k = 0; k < 5000; k++) {
		bool present = hmap_get_u64(&m, k, &v);
		ck_assert_msg(present == (k & 1), "key %llu present=%d", (unsigned long long)k,
			      present);
		if (present)
			ck_assert_uint_eq(v, (uint32_t)k + 1);
	}
	hmap_free(&m);
}
END_TEST

START_TEST(reinserting_a_deleted_key_reuses_its_tombstone)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		ck_assert_int_eq(hmap_put_str(&m, k, (uint32_t)i), 0);
	}
	size_t cap = m.cap;
	ck_assert(hmap_del_str(&m, "k7"));
	ck_assert_uint_eq(m.tomb, 1);
	ck_assert_uint_eq(m.used, 19);
	ck_assert_int_eq(hmap_put_str(&m, "k7", 700), 0);
	ck_assert_uint_eq(m.tomb, 0);
	ck_assert_uint_eq(m.used, 20);
	ck_assert_uint_eq(m.cap, cap);
	ck_assert(hmap_get_str(&m, "k7", &v));
	ck_assert_uint_eq(v, 700);
	hmap_free(&m);
}
END_TEST

START_TEST(churn_of_distinct_keys_does_not_grow_the_table)
{
	struct hmap m;
	uint32_t v;

	/* 100k insert/delete pairs of never-repeated keys with 8 live at a time: tombstones
	 * must be reused or swept, not accumulate until the table doubles forever. */
	hmap_init_u64(&m);
	for (uint64_t k = 0; k < 100000; k++) {
		ck_assert_int_eq(hmap_put_u64(&m, k, (uint32_t)k), 0);
		if (k >= 8)
			ck_assert(hmap_del_u64(&m, k - 8));
	}
	ck_assert_uint_eq(m.used, 8);
	ck_assert_uint_le(m.cap, 1024);
	ck_assert(m.used + m.tomb < m.cap);   /* some slot is empty: lookups terminate */
	for (uint64_t k = 100000 - 8; k < 100000; k++) {
		ck_assert(hmap_get_u64(&m, k, &v));
		ck_assert_uint_eq(v, (uint32_t)k);
	}
	ck_assert(!hmap_get_u64(&m, 5, &v));
	hmap_free(&m);
}
END_TEST

START_TEST(str_churn_of_distinct_keys_does_not_grow_the_table)
{
	struct hmap m;
	char k[32];
	uint32_t v;

	hmap_init_str(&m);
	for (uint32_t i = 0; i < 50000; i++) {
		snprintf(k, sizeof(k), "job-%u", i);
		ck_assert_int_eq(hmap_put_str(&m, k, i), 0);
		if (i >= 4) {
			snprintf(k, sizeof(k), "job-%u", i - 4);
			ck_assert(hmap_del_str(&m, k));
		}
	}
	ck_assert_uint_eq(m.used, 4);
	ck_assert_uint_le(m.cap, 1024);
	ck_assert(!hmap_get_str(&m, "job-0", &v));
	ck_assert(hmap_get_str(&m, "job-49999", &v));
	ck_assert_uint_eq(v, 49999);
	hmap_free(&m);
}
END_TEST

START_TEST(free_of_an_empty_map_is_fine_and_leaves_it_reusable)
{
	struct hmap m;
	uint32_t v = 0;

	hmap_init_str(&m);
	ck_assert_uint_eq(m.cap, 0);
	ck_assert_uint_eq(m.used, 0);
	hmap_free(&m);
	hmap_init_u64(&m);
	ck_assert_int_eq(hmap_put_u64(&m, 3, 4), 0);
	hmap_free(&m);
	hmap_init_u64(&m);
	ck_assert(!hmap_get_u64(&m, 3, &v));
	hmap_free(&m);
}
END_TEST

static Suite *hmap_suite(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc;

	tc = tcase_create("string keys");
	tcase_add_test(tc, str_put_then_get_returns_the_value);
	tcase_add_test(tc, str_put_of_an_existing_key_replaces_the_value);
	tcase_add_test(tc, str_delete_removes_only_that_key);
	tcase_add_test(tc, str_missing_keys_are_not_found_and_leave_value_untouched);
	tcase_add_test(tc, str_keys_are_copied_not_borrowed);
	tcase_add_test(tc, str_empty_string_is_an_ordinary_key);
	tcase_add_test(tc, str_map_grows_through_100k_keys_keeping_every_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("u64 keys");
	tcase_add_test(tc, u64_put_get_replace_delete);
	tcase_add_loop_test(tc, u64_edge_keys_are_ordinary_keys, 0, (int)NEDGE);
	tcase_add_test(tc, u64_missing_keys_are_not_found);
	tcase_add_test(tc, u64_map_grows_through_100k_keys_keeping_every_value);
	suite_add_tcase(s, tc);

	tc = tcase_create("tombstones");
	tcase_add_test(tc, deleting_half_the_keys_keeps_the_rest_reachable);
	tcase_add_test(tc, reinserting_a_deleted_key_reuses_its_tombstone);
	tcase_add_test(tc, churn_of_distinct_keys_does_not_grow_the_table);
	tcase_add_test(tc, str_churn_of_distinct_keys_does_not_grow_the_table);
	tcase_add_test(tc, free_of_an_empty_map_is_fine_and_leaves_it_reusable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hmap_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
