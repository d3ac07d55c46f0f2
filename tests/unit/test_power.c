/*
 * test_power — the power ledger along a domain chain: fits, charge, headroom, alloc delta.
 *
 * The fleet (idle loads in brackets):
 *   dc      budget 100000  [600]
 *   └ hall  budget   1000  [600]      headroom 400: the tight one
 *     ├ rack-a budget 5000 [300]      roomy, under the tight hall
 *     └ rack-b budget  350 [300]      tighter than the hall (headroom 50)
 *   n1 in rack-a, n2 in rack-b: host_idle 100 + 4 × M (idle 50, tdp 500, min cap 100)
 */
#include <check.h>
#include <stdlib.h>

#include "../lib/fleet_builder.h"
#include "power.h"

struct ledger {
	struct fleet f;
	uint32_t dc, hall, rack_a, rack_b;
};

static void ledger_open(struct ledger *l)
{
	struct fleet_builder b;
	struct err e = {0};

	fb_init(&b);
	fb_model(&b, "M", 50, 500, 100);
	fb_domain(&b, "dc", NULL, 100000);
	fb_domain(&b, "hall", "dc", 1000);
	fb_domain(&b, "rack-a", "hall", 5000);
	fb_domain(&b, "rack-b", "hall", 350);
	fb_node(&b, "n1", "rack-a", NULL, 100, "M", 4);
	fb_node(&b, "n2", "rack-b", NULL, 100, "M", 4);
	fleet_init(&l->f);
	ck_assert_msg(fb_import(&l->f, &b, &e) == 0, "import: %s: %s", e.field, e.message);
	l->dc = fleet_domain_find(&l->f, "dc");
	l->hall = fleet_domain_find(&l->f, "hall");
	l->rack_a = fleet_domain_find(&l->f, "rack-a");
	l->rack_b = fleet_domain_find(&l->f, "rack-b");
	ck_assert_uint_ne(l->dc, FLEET_NONE);
	ck_assert_uint_ne(l->hall, FLEET_NONE);
	ck_assert_uint_ne(l->rack_a, FLEET_NONE);
	ck_assert_uint_ne(l->rack_b, FLEET_NONE);
	ck_assert_int_eq(l->f.domains[l->hall].reserved_w, 600);
	ck_assert_int_eq(l->f.domains[l->rack_a].reserved_w, 300);
}

static uint32_t ledger_domain(const struct ledger *l, const char *name)
{
	return fleet_domain_find(&l->f, name);
}

/* ---- power_fits ---- */

static const struct fits_row {
	const char *domain;
	int64_t delta;
	bool fits;
	const char *blocking;   /* when !fits */
} fits_rows[] = {
	{"rack-a", 0, true, NULL},
	{"rack-a", 400, true, NULL},          /* exactly the hall's headroom */
	{"rack-a", 401, false, "hall"},       /* roomy rack, tight hall: blocked at the hall */
	{"rack-a", 4700, false, "hall"},
	{"rack-a", 4701, false, "rack-a"},    /* both over: the lowest is named */
	{"rack-b", 50, true, NULL},
	{"rack-b", 51, false, "rack-b"},      /* the rack is tighter than the hall */
	{"rack-b", 401, false, "rack-b"},
	{"hall", 400, true, NULL},
	{"hall", 401, false, "hall"},
	{"dc", 99400, true, NULL},
	{"dc", 99401, false, "dc"},
	{"rack-a", -1, true, NULL},
	{"rack-b", -1000000, true, NULL},
};
#define NFITS (int)(sizeof(fits_rows) / sizeof(fits_rows[0]))

START_TEST(fits_checks_every_ancestor_and_names_the_lowest_blocking_domain)
{
	const struct fits_row *r = &fits_rows[_i];
	struct ledger l;
	uint32_t blocking = FLEET_NONE;

	ledger_open(&l);
	bool got = power_fits(&l.f, ledger_domain(&l, r->domain), r->delta, &blocking);
	ck_assert_msg(got == r->fits, "%s %+lld: fits %d, want %d", r->domain,
		      (long long)r->delta, got, r->fits);
	if (!r->fits)
		ck_assert_msg(blocking == ledger_domain(&l, r->blocking),
			      "%s %+lld: blocking %u (%s), want %s", r->domain,
			      (long long)r->delta, blocking,
			      blocking < l.f.ndomains ? l.f.domains[blocking].name : "none",
			      r->blocking);
	/* Same answer without a blocking pointer, and asking changes nothing. */
	ck_assert(power_fits(&l.f, ledger_domain(&l, r->domain), r->delta, NULL) == r->fits);
	ck_assert_int_eq(l.f.domains[l.hall].reserved_w, 600);
	fleet_free(&l.f);
}
END_TEST

START_TEST(negative_delta_fits_even_when_a_domain_is_already_over_budget)
{
	struct ledger l;
	uint32_t blocking = FLEET_NONE;

	ledger_open(&l);
	/* power_charge is the raw primitive: push the hall over its budget on purpose. */
	power_charge(&l.f, l.rack_a, 900);
	ck_assert_int_gt(l.f.domains[l.hall].reserved_w, l.f.domains[l.hall].budget_w);
	ck_assert(!power_fits(&l.f, l.rack_a, 0 + 1, &blocking));
	ck_assert(power_fits(&l.f, l.rack_a, -1, &blocking));
	ck_assert(power_fits(&l.f, l.rack_a, -900, NULL));
	fleet_free(&l.f);
}
END_TEST

START_TEST(fits_exactly_at_budget_and_not_one_watt_more)
{
	struct ledger l;

	ledger_open(&l);
	power_charge(&l.f, l.rack_b, 50);       /* rack-b now exactly at budget */
	ck_assert_int_eq(l.f.domains[l.rack_b].reserved_w, l.f.domains[l.rack_b].budget_w);
	ck_assert(power_fits(&l.f, l.rack_b, 0, NULL));
	ck_assert(!power_fits(&l.f, l.rack_b, 1, NULL));
	/* rack-a shares the hall, which now has 350 left. */
	ck_assert(power_fits(&l.f, l.rack_a, 350, NULL));
	ck_assert(!power_fits(&l.f, l.rack_a, 351, NULL));
	fleet_free(&l.f);
}
END_TEST

/* ---- power_charge ---- */

START_TEST(charge_adds_at_the_domain_and_every_ancestor_only)
{
	struct ledger l;

	ledger_open(&l);
	power_charge(&l.f, l.rack_a, 250);
	ck_assert_int_eq(l.f.domains[l.rack_a].reserved_w, 550);
	ck_assert_int_eq(l.f.domains[l.hall].reserved_w, 850);
	ck_assert_int_eq(l.f.domains[l.dc].reserved_w, 850);
	ck_assert_int_eq(l.f.domains[l.rack_b].reserved_w, 300);   /* a sibling: untouched */
	power_charge(&l.f, l.rack_b, 40);
	ck_assert_int_eq(l.f.domains[l.rack_b].reserved_w, 340);
	ck_assert_int_eq(l.f.domains[l.hall].reserved_w, 890);
	ck_assert_int_eq(l.f.domains[l.rack_a].reserved_w, 550);
	power_charge(&l.f, l.rack_a, -250);
	power_charge(&l.f, l.rack_b, -40);
	for (uint32_t d = 0; d < l.f.ndomains; d++)
		ck_assert_int_eq(l.f.domains[d].reserved_w, fb_idle_load(&l.f, d));
	fleet_free(&l.f);
}
END_TEST

START_TEST(charge_at_a_root_touches_only_the_root)
{
	struct ledger l;

	ledger_open(&l);
	power_charge(&l.f, l.dc, 1000);
	ck_assert_int_eq(l.f.domains[l.dc].reserved_w, 1600);
	ck_assert_int_eq(l.f.domains[l.hall].reserved_w, 600);
	ck_assert_int_eq(l.f.domains[l.rack_a].reserved_w, 300);
	fleet_free(&l.f);
}
END_TEST

/* ---- power_headroom ---- */

static const struct headroom_row {
	const char *domain;
	int64_t charge_rack_a;
	int64_t want;
} headroom_rows[] = {
	{"rack-a", 0, 400},       /* min(4700, 400, 99400) */
	{"rack-b", 0, 50},        /* min(50, 400, 99400) */
	{"hall", 0, 400},
	{"dc", 0, 99400},
	{"rack-a", 380, 20},      /* the hall shrinks for everyone under it */
	{"rack-b", 380, 20},
	{"dc", 380, 99020},
};
#define NHEADROOM (int)(sizeof(headroom_rows) / sizeof(headroom_rows[0]))

START_TEST(headroom_is_the_minimum_over_the_chain)
{
	const struct headroom_row *r = &headroom_rows[_i];
	struct ledger l;

	ledger_open(&l);
	power_charge(&l.f, l.rack_a, r->charge_rack_a);
	ck_assert_int_eq(power_headroom(&l.f, ledger_domain(&l, r->domain)), r->want);
	fleet_free(&l.f);
}
END_TEST

START_TEST(headroom_and_fits_agree)
{
	struct ledger l;

	ledger_open(&l);
	for (uint32_t d = 0; d < l.f.ndomains; d++) {
		int64_t h = power_headroom(&l.f, d);
		ck_assert_msg(power_fits(&l.f, d, h, NULL), "%s: headroom %lld does not fit",
			      l.f.domains[d].name, (long long)h);
		ck_assert_msg(!power_fits(&l.f, d, h + 1, NULL), "%s: headroom+1 fits",
			      l.f.domains[d].name);
	}
	fleet_free(&l.f);
}
END_TEST

/* ---- power_alloc_delta ---- */

static const struct delta_row {
	uint32_t idle, tdp, n, cap;
	int64_t want;
} delta_rows[] = {
	{70, 700, 8, 700, 8 * 630},
	{70, 700, 8, 600, 8 * 530},
	{70, 700, 1, 200, 130},
	{70, 700, 0, 600, 0},
	{70, 700, 4, 70, 0},            /* capped at idle: nothing extra */
	{100, 700, 4, 60, -160},        /* a cap below idle gives watts back (signed) */
	{0, 4000000000u, 64, 4000000000u, INT64_C(64) * 4000000000},   /* no 32-bit overflow */
};
#define NDELTA (int)(sizeof(delta_rows) / sizeof(delta_rows[0]))

START_TEST(alloc_delta_is_n_times_cap_minus_idle)
{
	const struct delta_row *r = &delta_rows[_i];
	struct model m = {.name = "M", .vendor = "v", .stack = "s", .idle_w = r->idle,
			  .tdp_w = r->tdp, .min_cap_w = 1};

	ck_assert_int_eq(power_alloc_delta(&m, r->n, r->cap), r->want);
}
END_TEST

static Suite *power_suite(void)
{
	Suite *s = suite_create("power");
	TCase *tc;

	tc = tcase_create("fits");
	tcase_add_loop_test(tc, fits_checks_every_ancestor_and_names_the_lowest_blocking_domain, 0,
			    NFITS);
	tcase_add_test(tc, negative_delta_fits_even_when_a_domain_is_already_over_budget);
	tcase_add_test(tc, fits_exactly_at_budget_and_not_one_watt_more);
	suite_add_tcase(s, tc);

	tc = tcase_create("charge");
	tcase_add_test(tc, charge_adds_at_the_domain_and_every_ancestor_only);
	tcase_add_test(tc, charge_at_a_root_touches_only_the_root);
	suite_add_tcase(s, tc);

	tc = tcase_create("headroom");
	tcase_add_loop_test(tc, headroom_is_the_minimum_over_the_chain, 0, NHEADROOM);
	tcase_add_test(tc, headroom_and_fits_agree);
	suite_add_tcase(s, tc);

	tc = tcase_create("alloc delta");
	tcase_add_loop_test(tc, alloc_delta_is_n_times_cap_minus_idle, 0, NDELTA);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(power_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
