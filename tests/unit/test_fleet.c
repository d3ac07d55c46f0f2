/*
 * test_fleet — import (upsert, all or nothing, references, cycles, budgets), the ledger it
 * computes, subtree counts, node drain/resume, device health, and the free index.
 *
 * The standard fleet (idle loads in brackets):
 *   dc (200000) [5380]
 *   └ hall-a (100000) [5380]
 *     ├ rack-a1 (40000) [3840]
 *     │  ├ a1-n1  host 1500, group g1, 8 × H100             [2060]
 *     │  └ a1-n2  host 1500, group g1, 4 × H100             [1780]
 *     └ rack-a2 (40000) [1540]
 *        └ a2-n1  host 1000, group g2, 4 × MI300X + 2 × H100 [1540]
 *   H100: idle 70, tdp 700, min cap 200; MI300X (amd, rocm): idle 100, tdp 750, min cap 300
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/fleet_builder.h"
#include "power.h"

static void std_doc(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "H100", 70, 700, 200)->fp8_tflops = 1979;
	fb_model_full(b, "MI300X", "amd", "rocm", 192, 2615, 100, 750, 300);
	fb_domain(b, "dc", NULL, 200000);
	fb_domain(b, "hall-a", "dc", 100000);
	fb_domain(b, "rack-a1", "hall-a", 40000);
	fb_domain(b, "rack-a2", "hall-a", 40000);
	fb_node(b, "a1-n1", "rack-a1", "g1", 1500, "H100", 8);
	fb_node(b, "a1-n2", "rack-a1", "g1", 1500, "H100", 4);
	fb_node(b, "a2-n1", "rack-a2", "g2", 1000, "MI300X", 4);
	fb_node_devs(b, "H100", 2);
}

static void std_fleet(struct fleet *f)
{
	struct fleet_builder b;
	struct err e = {0};

	std_doc(&b);
	fleet_init(f);
	ck_assert_msg(fb_import(f, &b, &e) == 0, "import: %s: %s", e.field, e.message);
}

static int64_t reserved(const struct fleet *f, const char *domain)
{
	uint32_t d = fleet_domain_find(f, domain);
	ck_assert_msg(d != FLEET_NONE, "no domain %s", domain);
	return f->domains[d].reserved_w;
}

static uint32_t node(const struct fleet *f, const char *name)
{
	uint32_t n = fleet_node_find(f, name);
	ck_assert_msg(n != FLEET_NONE, "no node %s", name);
	return n;
}

static uint16_t model(const struct fleet *f, const char *name)
{
	uint32_t m = fleet_model_find(f, name);
	ck_assert_msg(m != FLEET_NONE, "no model %s", name);
	return (uint16_t)m;
}

static void assert_consistent(const struct fleet *f)
{
	char msg[256];
	ck_assert_msg(fb_check_fleet(f, msg, sizeof(msg)), "%s", msg);
}

/* What "the fleet is unchanged" compares. */
struct snap {
	uint32_t nmodels, ndomains, nnodes, ndevices, nslots;
	uint64_t epoch;
	int64_t reserved[16], budget[16];
	uint32_t parent[16], node_domain[16];
	enum node_state state[16];
	uint32_t node_ndev[16];
};

static void snap_take(const struct fleet *f, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->nmodels = f->nmodels;
	s->ndomains = f->ndomains;
	s->nnodes = f->nnodes;
	s->ndevices = f->ndevices;
	s->nslots = f->nslots;
	s->epoch = f->epoch;
	for (uint32_t d = 0; d < f->ndomains && d < 16; d++) {
		s->reserved[d] = f->domains[d].reserved_w;
		s->budget[d] = f->domains[d].budget_w;
		s->parent[d] = f->domains[d].parent;
	}
	for (uint32_t n = 0; n < f->nnodes && n < 16; n++) {
		s->node_domain[n] = f->nodes[n].domain;
		s->state[n] = f->nodes[n].state;
		s->node_ndev[n] = f->nodes[n].ndevices;
	}
}

static void snap_assert_same(const struct fleet *f, const struct snap *before)
{
	struct snap now;
	snap_take(f, &now);
	ck_assert_uint_eq(now.nmodels, before->nmodels);
	ck_assert_uint_eq(now.ndomains, before->ndomains);
	ck_assert_uint_eq(now.nnodes, before->nnodes);
	ck_assert_uint_eq(now.ndevices, before->ndevices);
	ck_assert_uint_eq(now.nslots, before->nslots);
	ck_assert_uint_eq(now.epoch, before->epoch);
	for (uint32_t d = 0; d < now.ndomains && d < 16; d++) {
		ck_assert_int_eq(now.reserved[d], before->reserved[d]);
		ck_assert_int_eq(now.budget[d], before->budget[d]);
		ck_assert_uint_eq(now.parent[d], before->parent[d]);
	}
	for (uint32_t n = 0; n < now.nnodes && n < 16; n++) {
		ck_assert_uint_eq(now.node_domain[n], before->node_domain[n]);
		ck_assert_int_eq(now.state[n], before->state[n]);
		ck_assert_uint_eq(now.node_ndev[n], before->node_ndev[n]);
	}
	assert_consistent(f);
}

/* ---- import ---- */

START_TEST(import_creates_models_domains_nodes_and_devices)
{
	struct fleet f;

	std_fleet(&f);
	ck_assert_uint_eq(f.nmodels, 2);
	ck_assert_uint_eq(f.ndomains, 4);
	ck_assert_uint_eq(f.nnodes, 3);
	ck_assert_uint_eq(f.ndevices, 18);

	uint16_t h100 = model(&f, "H100"), mi = model(&f, "MI300X");
	ck_assert_str_eq(f.models[mi].vendor, "amd");
	ck_assert_str_eq(f.models[mi].stack, "rocm");
	ck_assert_uint_eq(f.models[mi].memory_gib, 192);
	ck_assert_uint_eq(f.models[h100].tdp_w, 700);
	ck_assert_uint_eq(f.models[h100].min_cap_w, 200);
	ck_assert_uint_eq(f.models[h100].idle_w, 70);

	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "dc")].parent, FLEET_NONE);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "rack-a2")].parent,
			  fleet_domain_find(&f, "hall-a"));
	ck_assert_int_eq(f.domains[fleet_domain_find(&f, "rack-a1")].budget_w, 40000);

	uint32_t n = node(&f, "a2-n1");
	const struct node *nd = &f.nodes[n];
	ck_assert_str_eq(nd->name, "a2-n1");
	ck_assert_str_eq(nd->group, "g2");
	ck_assert_uint_eq(nd->domain, fleet_domain_find(&f, "rack-a2"));
	ck_assert_int_eq(nd->host_idle_w, 1000);
	ck_assert_int_eq(nd->state, NODE_UP);
	ck_assert_uint_eq(nd->ndevices, 6);
	ck_assert_uint_eq(nd->nslots, 2);
	ck_assert_uint_eq(nd->alloc_mask, 0);
	ck_assert_uint_eq(nd->healthy_mask, 0x3f);
	/* Indexes follow the device lists in order. */
	for (uint32_t i = 0; i < 6; i++) {
		const struct device *dv = &f.devices[nd->first_device + i];
		ck_assert_uint_eq(dv->index, i);
		ck_assert_uint_eq(dv->node, n);
		ck_assert_uint_eq(dv->model, i < 4 ? mi : h100);
		ck_assert_uint_eq(dv->job, 0);
		ck_assert_uint_eq(dv->health, HEALTH_OK);
	}
	ck_assert_uint_eq(fleet_node_free(&f, n, mi), 4);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 2);
	ck_assert_uint_eq(fleet_node_free(&f, node(&f, "a1-n1"), mi), 0);
	ck_assert_uint_eq(fleet_model_find(&f, "B200"), FLEET_NONE);
	ck_assert_uint_eq(fleet_domain_find(&f, "hall-b"), FLEET_NONE);
	ck_assert_uint_eq(fleet_node_find(&f, "a9-n9"), FLEET_NONE);
	ck_assert_uint_gt(f.epoch, 0);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(import_of_optional_node_fields_gives_the_documented_defaults)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	fb_init(&b);
	fb_model(&b, "M", 10, 100, 50);
	fb_domain(&b, "r", NULL, 1000);
	fb_node(&b, "bare", "r", NULL, 5, "M", 1);
	struct fleet_node_spec *full = fb_node(&b, "full", "r", "grp", 5, "M", 1);
	full->labels_json = "{\"pool\":\"train\"}";
	full->exporter_url = "http://127.0.0.1:9400/metrics";
	fleet_init(&f);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	const struct node *bare = &f.nodes[node(&f, "bare")];
	ck_assert_str_eq(bare->group, "");
	ck_assert_str_eq(bare->labels_json, "{}");
	ck_assert_str_eq(bare->exporter_url, "");
	const struct node *n = &f.nodes[node(&f, "full")];
	ck_assert_str_eq(n->group, "grp");
	ck_assert_str_eq(n->labels_json, "{\"pool\":\"train\"}");
	ck_assert_str_eq(n->exporter_url, "http://127.0.0.1:9400/metrics");
	fleet_free(&f);
}
END_TEST

START_TEST(import_copies_strings_out_of_the_document)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};
	char dname[16] = "rack", nname[16] = "n1", group[16] = "g1", mname[16] = "M";

	fb_init(&b);
	fb_model(&b, mname, 10, 100, 50);
	fb_domain(&b, dname, NULL, 1000);
	fb_node(&b, nname, dname, group, 5, mname, 2);
	fleet_init(&f);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	memset(dname, 'x', sizeof(dname) - 1);
	memset(nname, 'x', sizeof(nname) - 1);
	memset(group, 'x', sizeof(group) - 1);
	memset(mname, 'x', sizeof(mname) - 1);
	uint32_t n = node(&f, "n1");
	ck_assert_str_eq(f.nodes[n].group, "g1");
	ck_assert_str_eq(f.domains[fleet_domain_find(&f, "rack")].name, "rack");
	ck_assert_uint_ne(fleet_model_find(&f, "M"), FLEET_NONE);
	fleet_free(&f);
}
END_TEST

START_TEST(import_of_the_same_document_twice_changes_nothing_but_the_epoch)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};
	struct snap before;

	std_fleet(&f);
	snap_take(&f, &before);
	std_doc(&b);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	ck_assert_uint_gt(f.epoch, before.epoch);
	before.epoch = f.epoch;
	snap_assert_same(&f, &before);
	ck_assert_uint_eq(f.ndevices, 18);
	ck_assert_int_eq(reserved(&f, "dc"), 5380);
	fleet_free(&f);
}
END_TEST

START_TEST(reserved_is_host_idle_plus_device_idle_at_every_ancestor)
{
	struct fleet f;

	std_fleet(&f);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 1500 + 8 * 70 + 1500 + 4 * 70);
	ck_assert_int_eq(reserved(&f, "rack-a2"), 1000 + 4 * 100 + 2 * 70);
	ck_assert_int_eq(reserved(&f, "hall-a"), 5380);
	ck_assert_int_eq(reserved(&f, "dc"), 5380);
	for (uint32_t d = 0; d < f.ndomains; d++)
		ck_assert_int_eq(f.domains[d].reserved_w, fb_idle_load(&f, d));
	fleet_free(&f);
}
END_TEST

static const struct count_row {
	const char *domain;
	uint32_t nodes, devices;
} count_rows[] = {
	{"dc", 3, 18}, {"hall-a", 3, 18}, {"rack-a1", 2, 12}, {"rack-a2", 1, 6},
};

START_TEST(subtree_counts_cover_every_node_and_device_below)
{
	const struct count_row *r = &count_rows[_i];
	struct fleet f;

	std_fleet(&f);
	const struct domain *d = &f.domains[fleet_domain_find(&f, r->domain)];
	ck_assert_uint_eq(d->nodes, r->nodes);
	ck_assert_uint_eq(d->devices, r->devices);
	fleet_free(&f);
}
END_TEST

START_TEST(parents_and_domains_may_be_defined_later_in_the_same_document)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	fb_init(&b);
	/* Nodes first in spirit: every reference points forward. */
	fb_domain(&b, "rack", "hall", 10000);
	fb_domain(&b, "hall", "dc", 20000);
	fb_domain(&b, "dc", NULL, 30000);
	fb_node(&b, "n1", "rack", NULL, 100, "M", 2);
	fb_model(&b, "M", 10, 100, 50);
	fleet_init(&f);
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "rack")].parent,
			  fleet_domain_find(&f, "hall"));
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "hall")].parent,
			  fleet_domain_find(&f, "dc"));
	ck_assert_int_eq(reserved(&f, "dc"), 120);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "dc")].nodes, 1);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(a_later_document_may_refer_to_what_an_earlier_one_defined)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	std_fleet(&f);
	uint64_t epoch = f.epoch;
	fb_init(&b);
	fb_domain(&b, "rack-a3", "hall-a", 40000);
	fb_node(&b, "a3-n1", "rack-a3", "g3", 800, "MI300X", 8);
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_uint_gt(f.epoch, epoch);
	ck_assert_uint_eq(f.nnodes, 4);
	ck_assert_uint_eq(f.ndevices, 26);
	ck_assert_int_eq(reserved(&f, "rack-a3"), 800 + 8 * 100);
	ck_assert_int_eq(reserved(&f, "hall-a"), 5380 + 1600);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "dc")].devices, 26);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(a_budget_may_change_on_reimport)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	std_fleet(&f);
	std_doc(&b);
	b.domains[2].budget_w = 3840;   /* rack-a1 exactly at its idle load */
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_int_eq(f.domains[fleet_domain_find(&f, "rack-a1")].budget_w, 3840);
	fleet_free(&f);
}
END_TEST

START_TEST(moving_an_idle_node_to_another_domain_moves_its_load)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	std_fleet(&f);
	std_doc(&b);
	b.nodes[1].domain = "rack-a2";  /* a1-n2 moves */
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 2060);
	ck_assert_int_eq(reserved(&f, "rack-a2"), 1540 + 1780);
	ck_assert_int_eq(reserved(&f, "hall-a"), 5380);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "rack-a1")].nodes, 1);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "rack-a2")].devices, 10);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

/* ---- import refusals: each leaves the standard fleet as it was ---- */

struct bad_row {
	const char *what;
	void (*build)(struct fleet_builder *b);
	int code;
	const char *field;          /* exact, or NULL */
	const char *field_prefix;   /* or NULL */
};

static void bad_unknown_parent(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-b", "dc", 1000);
	fb_domain(b, "rack-b1", "hall-b", 1000);
	fb_domain(b, "rack-b2", "hall-z", 1000);
}

static void bad_unknown_model(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200", 100, 1000, 300);
	fb_domain(b, "rack-b1", "hall-a", 10000);
	fb_node(b, "b1-n1", "rack-b1", NULL, 100, "B200", 2);
	fb_node(b, "b1-n2", "rack-b1", NULL, 100, "H200", 2);
}

static void bad_unknown_model_second_list(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "b1-n1", "rack-a1", NULL, 100, "H100", 2);
	fb_node_devs(b, "H100", 1);
	fb_node_devs(b, "nope", 1);
}

static void bad_unknown_node_domain(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "b1-n1", "rack-a1", NULL, 100, "H100", 2);
	fb_node(b, "b1-n2", "rack-zz", NULL, 100, "H100", 2);
}

static void bad_cycle(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "x", "y", 1000);
	fb_domain(b, "y", "z", 1000);
	fb_domain(b, "z", "x", 1000);
}

static void bad_self_parent(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "x", "x", 1000);
}

static void bad_cycle_through_existing(struct fleet_builder *b)
{
	/* A new domain "x" under "y", "y" under "x": both new, one already referenced. */
	fb_init(b);
	fb_domain(b, "ok", "dc", 1000);
	fb_domain(b, "y", "x", 1000);
	fb_domain(b, "x", "y", 1000);
}

static void bad_parent_change(struct fleet_builder *b)
{
	std_doc(b);
	b->domains[3].parent = "dc";    /* rack-a2 was under hall-a */
}

static void bad_root_gets_parent(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-a", "rack-a1", 100000);   /* would also be a cycle */
}

static void bad_idle_over_budget(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "tiny", "hall-a", 1000);
	fb_node(b, "t-n1", "tiny", NULL, 500, "H100", 8);   /* 500 + 560 > 1000 */
}

static void bad_idle_over_ancestor_budget(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-b", "dc", 2000);
	fb_domain(b, "rack-b1", "hall-b", 100000);
	fb_node(b, "b1-n1", "rack-b1", NULL, 1000, "H100", 8);
	fb_node(b, "b1-n2", "rack-b1", NULL, 1000, "H100", 8);
}

static void bad_budget_below_load(struct fleet_builder *b)
{
	std_doc(b);
	b->domains[2].budget_w = 3839;  /* rack-a1 carries 3840 idle */
}

static void bad_65_devices(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "big", "rack-a1", NULL, 100, "H100", 65);
}

static void bad_65_devices_over_two_lists(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "fine", "rack-a1", NULL, 100, "H100", 1);
	fb_node(b, "big", "rack-a1", NULL, 100, "H100", 40);
	fb_node_devs(b, "MI300X", 25);
}

static void bad_dup_domain(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-b", "dc", 1000);
	fb_domain(b, "hall-b", "dc", 2000);
}

static void bad_dup_node(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "b-n1", "rack-a1", NULL, 100, "H100", 1);
	fb_node(b, "b-n1", "rack-a2", NULL, 100, "H100", 1);
}

static void bad_dup_model(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200", 100, 1000, 300);
	fb_model(b, "B200", 100, 900, 300);
}

static void bad_min_cap_zero(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200", 100, 1000, 300);
	fb_model(b, "B300", 100, 1000, 0);
}

static void bad_min_cap_over_tdp(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200", 100, 1000, 1001);
}

static void bad_idle_over_tdp(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200", 1001, 1000, 300);
}

static void bad_model_name(struct fleet_builder *b)
{
	fb_init(b);
	fb_model(b, "B200 SXM", 100, 1000, 300);
}

static void bad_domain_name(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-b", "dc", 1000);
	fb_domain(b, "", "dc", 1000);
}

static void bad_node_name(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "n/1", "rack-a1", NULL, 100, "H100", 1);
}

static void bad_negative_budget(struct fleet_builder *b)
{
	fb_init(b);
	fb_domain(b, "hall-b", "dc", -1);
}

static void bad_zero_count(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "b-n1", "rack-a1", NULL, 100, "H100", 0);
}

static void bad_node_without_domain(struct fleet_builder *b)
{
	fb_init(b);
	fb_node(b, "b-n1", NULL, NULL, 100, "H100", 1);
}

static const struct bad_row bad_rows[] = {
	{"min cap 0", bad_min_cap_zero, ERR_INVALID, "models[1].min_cap_w", NULL},
	{"min cap over tdp", bad_min_cap_over_tdp, ERR_INVALID, "models[0].min_cap_w", NULL},
	{"idle over tdp", bad_idle_over_tdp, ERR_INVALID, "models[0].idle_w", NULL},
	{"model name with a space", bad_model_name, ERR_INVALID, "models[0].name", NULL},
	{"empty domain name", bad_domain_name, ERR_INVALID, "domains[1].name", NULL},
	{"node name with a slash", bad_node_name, ERR_INVALID, "nodes[0].name", NULL},
	{"negative budget", bad_negative_budget, ERR_INVALID, "domains[0].budget_w", NULL},
	{"zero devices in a list", bad_zero_count, ERR_INVALID, NULL, "nodes[0].devices[0]"},
	{"node without a domain", bad_node_without_domain, ERR_INVALID, "nodes[0].domain", NULL},
	{"unknown parent", bad_unknown_parent, ERR_INVALID, "domains[2].parent", NULL},
	{"unknown model", bad_unknown_model, ERR_INVALID, "nodes[1].devices[0].model", NULL},
	{"unknown model in a second list", bad_unknown_model_second_list, ERR_INVALID,
	 "nodes[0].devices[2].model", NULL},
	{"unknown node domain", bad_unknown_node_domain, ERR_INVALID, "nodes[1].domain", NULL},
	{"cycle of three", bad_cycle, ERR_INVALID, NULL, "domains["},
	{"own parent", bad_self_parent, ERR_INVALID, NULL, "domains[0]"},
	{"cycle of two new domains", bad_cycle_through_existing, ERR_INVALID, NULL, "domains["},
	{"parent change", bad_parent_change, ERR_CONFLICT, NULL, NULL},
	{"root given a parent below it", bad_root_gets_parent, 0, NULL, NULL},
	{"idle load over the budget", bad_idle_over_budget, ERR_CONFLICT, NULL, NULL},
	{"idle load over an ancestor's budget", bad_idle_over_ancestor_budget, ERR_CONFLICT, NULL,
	 NULL},
	{"budget lowered below the load", bad_budget_below_load, ERR_CONFLICT, NULL, NULL},
	{"65 devices", bad_65_devices, ERR_INVALID, NULL, "nodes[0]"},
	{"65 devices over two lists", bad_65_devices_over_two_lists, ERR_INVALID, NULL, "nodes[1]"},
	{"duplicate domain", bad_dup_domain, ERR_INVALID, NULL, "domains["},
	{"duplicate node", bad_dup_node, ERR_INVALID, NULL, "nodes["},
	{"duplicate model", bad_dup_model, ERR_INVALID, NULL, "models["},
};
#define NBAD (int)(sizeof(bad_rows) / sizeof(bad_rows[0]))

START_TEST(a_refused_import_names_the_field_and_leaves_the_fleet_unchanged)
{
	const struct bad_row *r = &bad_rows[_i];
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};
	struct snap before;

	std_fleet(&f);
	snap_take(&f, &before);
	r->build(&b);
	int rc = fb_import(&f, &b, &e);
	if (r->code)
		ck_assert_msg(rc == r->code, "%s: rc %d, want %d (%s: %s)", r->what, rc, r->code,
			      e.field, e.message);
	else   /* either refusal is fine, as long as it is a refusal */
		ck_assert_msg(rc == ERR_INVALID || rc == ERR_CONFLICT, "%s: rc %d", r->what, rc);
	ck_assert_int_eq(e.code, rc);
	ck_assert_msg(e.message[0] != '\0', "%s: no message", r->what);
	if (r->field)
		ck_assert_msg(strcmp(e.field, r->field) == 0, "%s: field \"%s\", want \"%s\"",
			      r->what, e.field, r->field);
	if (r->field_prefix)
		ck_assert_msg(strncmp(e.field, r->field_prefix, strlen(r->field_prefix)) == 0,
			      "%s: field \"%s\", want \"%s…\"", r->what, e.field, r->field_prefix);
	snap_assert_same(&f, &before);
	/* Nothing the refused document named exists now. */
	for (uint32_t i = 0; i < b.ndomains; i++)
		ck_assert_msg(fleet_domain_find(&f, b.domains[i].name) == FLEET_NONE ||
				      fleet_domain_find(&f, b.domains[i].name) < before.ndomains,
			      "%s: domain %s appeared", r->what, b.domains[i].name);
	for (uint32_t i = 0; i < b.nnodes; i++)
		ck_assert_msg(fleet_node_find(&f, b.nodes[i].name) == FLEET_NONE ||
				      fleet_node_find(&f, b.nodes[i].name) < before.nnodes,
			      "%s: node %s appeared", r->what, b.nodes[i].name);
	for (uint32_t i = 0; i < b.nmodels; i++)
		ck_assert_msg(fleet_model_find(&f, b.models[i].name) == FLEET_NONE ||
				      fleet_model_find(&f, b.models[i].name) < before.nmodels,
			      "%s: model %s appeared", r->what, b.models[i].name);
	fleet_free(&f);
}
END_TEST

START_TEST(a_refused_first_import_leaves_an_empty_fleet)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	fb_init(&b);
	fb_model(&b, "M", 10, 100, 50);
	fb_domain(&b, "r", NULL, 1000);
	fb_node(&b, "n1", "r", NULL, 5, "M", 1);
	fb_node(&b, "n2", "nowhere", NULL, 5, "M", 1);
	fleet_init(&f);
	uint64_t epoch = f.epoch;
	ck_assert_int_eq(fb_import(&f, &b, &e), ERR_INVALID);
	ck_assert_str_eq(e.field, "nodes[1].domain");
	ck_assert_uint_eq(f.nmodels, 0);
	ck_assert_uint_eq(f.ndomains, 0);
	ck_assert_uint_eq(f.nnodes, 0);
	ck_assert_uint_eq(f.ndevices, 0);
	ck_assert_uint_eq(f.epoch, epoch);
	ck_assert_uint_eq(fleet_model_find(&f, "M"), FLEET_NONE);
	ck_assert_uint_eq(fleet_domain_find(&f, "r"), FLEET_NONE);
	ck_assert_uint_eq(fleet_node_find(&f, "n1"), FLEET_NONE);
	fleet_free(&f);
}
END_TEST

START_TEST(a_node_with_allocated_devices_keeps_its_devices_and_domain)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};
	struct snap before;

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n2");
	fleet_alloc(&f, n, 0x1, 7, 0, 500);
	snap_take(&f, &before);

	std_doc(&b);
	b.devs[1].count = 5;            /* a1-n2: 4 → 5 H100 */
	ck_assert_int_eq(fb_import(&f, &b, &e), ERR_CONFLICT);
	snap_assert_same(&f, &before);

	std_doc(&b);
	b.nodes[1].domain = "rack-a2";
	ck_assert_int_eq(fb_import(&f, &b, &e), ERR_CONFLICT);
	snap_assert_same(&f, &before);

	/* The same devices and domain are fine while allocated. */
	std_doc(&b);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	ck_assert_uint_eq(f.devices[f.nodes[n].first_device].job, 7);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840 + 430);
	assert_consistent(&f);

	fleet_release(&f, n, 0x1);
	std_doc(&b);
	b.devs[1].count = 5;
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_uint_eq(f.nodes[n].ndevices, 5);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840 + 70);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(a_models_figures_cannot_change_while_devices_use_it)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};
	struct snap before;

	std_fleet(&f);
	snap_take(&f, &before);
	fb_init(&b);
	fb_model(&b, "H100", 90, 700, 200)->fp8_tflops = 1979;   /* idle 70 → 90 */
	ck_assert_int_eq(fb_import(&f, &b, &e), ERR_CONFLICT);
	snap_assert_same(&f, &before);
	ck_assert_uint_eq(f.models[model(&f, "H100")].idle_w, 70);
	fleet_free(&f);
}
END_TEST

START_TEST(an_unused_models_figures_may_change)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	std_fleet(&f);
	fb_init(&b);
	fb_model(&b, "B200", 100, 1000, 300);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	fb_init(&b);
	fb_model(&b, "B200", 120, 1200, 300);
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	ck_assert_uint_eq(f.models[model(&f, "B200")].tdp_w, 1200);
	ck_assert_uint_eq(f.nmodels, 3);
	fleet_free(&f);
}
END_TEST

START_TEST(replacing_an_idle_nodes_device_list_recomputes_everything)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	std_fleet(&f);
	std_doc(&b);
	/* a2-n1: 4 × MI300X + 2 × H100 → 8 × H100. */
	b.devs[2].model = "H100";
	b.devs[2].count = 8;
	b.nodes[2].ndevs = 1;
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	uint32_t n = node(&f, "a2-n1");
	ck_assert_uint_eq(f.nodes[n].ndevices, 8);
	ck_assert_uint_eq(f.nodes[n].nslots, 1);
	ck_assert_uint_eq(fleet_node_free(&f, n, model(&f, "H100")), 8);
	ck_assert_uint_eq(fleet_node_free(&f, n, model(&f, "MI300X")), 0);
	ck_assert_uint_eq(fleet_bucket_first(&f, model(&f, "MI300X"), 4), FLEET_NONE);
	ck_assert_int_eq(reserved(&f, "rack-a2"), 1000 + 8 * 70);
	ck_assert_uint_eq(f.domains[fleet_domain_find(&f, "dc")].devices, 20);
	assert_consistent(&f);
	/* Allocation on the new list works and is undone cleanly. */
	fleet_alloc(&f, n, 0xff, 3, 0, 700);
	ck_assert_int_eq(reserved(&f, "rack-a2"), 1000 + 8 * 700);
	fleet_release(&f, n, 0xff);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(up_to_64_devices_on_a_node_is_fine)
{
	struct fleet f;
	struct fleet_builder b;
	struct err e = {0};

	fb_init(&b);
	fb_model(&b, "M", 1, 100, 50);
	fb_domain(&b, "r", NULL, 100000);
	fb_node(&b, "n", "r", NULL, 0, "M", 60);
	fb_node_devs(&b, "M", 4);
	fleet_init(&f);
	ck_assert_msg(fb_import(&f, &b, &e) == 0, "%s: %s", e.field, e.message);
	uint32_t n = node(&f, "n");
	ck_assert_uint_eq(f.nodes[n].ndevices, 64);
	ck_assert_uint_eq(f.nodes[n].healthy_mask, UINT64_MAX);
	ck_assert_uint_eq(fleet_node_free(&f, n, 0), 64);
	ck_assert(fb_in_bucket(&f, 0, 64, fb_slot_of(&f, n, 0)));
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(an_empty_document_imports_nothing)
{
	struct fleet f;
	struct fleet_doc d = {0};
	struct err e = {0};

	fleet_init(&f);
	ck_assert_int_eq(fleet_import(&f, &d, &e), 0);
	ck_assert_uint_eq(f.nnodes, 0);
	ck_assert_uint_eq(f.ndomains, 0);
	fleet_free(&f);
}
END_TEST

/* ---- allocation primitives ---- */

START_TEST(alloc_marks_devices_and_charges_cap_minus_idle_up_the_chain)
{
	struct fleet f;

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	uint16_t h100 = model(&f, "H100");
	fleet_alloc(&f, n, 0x0f, 42, 3, 600);
	ck_assert_uint_eq(f.nodes[n].alloc_mask, 0x0f);
	for (uint32_t i = 0; i < 8; i++) {
		const struct device *dv = &f.devices[f.nodes[n].first_device + i];
		if (i < 4) {
			ck_assert_uint_eq(dv->job, 42);
			ck_assert_uint_eq(dv->worker, 3);
			ck_assert_uint_eq(dv->cap_w, 600);
		} else {
			ck_assert_uint_eq(dv->job, 0);
		}
	}
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840 + 4 * 530);
	ck_assert_int_eq(reserved(&f, "hall-a"), 5380 + 4 * 530);
	ck_assert_int_eq(reserved(&f, "dc"), 5380 + 4 * 530);
	ck_assert_int_eq(reserved(&f, "rack-a2"), 1540);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 4);
	assert_consistent(&f);

	fleet_release(&f, n, 0x0f);
	ck_assert_uint_eq(f.nodes[n].alloc_mask, 0);
	ck_assert_uint_eq(f.devices[f.nodes[n].first_device].job, 0);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840);
	ck_assert_int_eq(reserved(&f, "dc"), 5380);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 8);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(release_bumps_the_epoch_because_capacity_grew)
{
	struct fleet f;

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	fleet_alloc(&f, n, 0x3, 1, 0, 700);
	uint64_t epoch = f.epoch;
	fleet_release(&f, n, 0x3);
	ck_assert_uint_gt(f.epoch, epoch);
	fleet_free(&f);
}
END_TEST

/* ---- drain and resume ---- */

START_TEST(drain_of_an_idle_node_goes_straight_to_drained)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n2");
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINED);
	ck_assert_uint_eq(fleet_node_free(&f, n, model(&f, "H100")), 0);
	/* Draining again is a no-op. */
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINED);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(drain_with_allocations_waits_for_the_last_release)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	uint16_t h100 = model(&f, "H100");
	fleet_alloc(&f, n, 0x03, 1, 0, 700);
	fleet_alloc(&f, n, 0x30, 2, 0, 700);
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINING);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 0);
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINING);
	assert_consistent(&f);
	fleet_release(&f, n, 0x03);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINING);
	assert_consistent(&f);
	fleet_release(&f, n, 0x30);
	ck_assert_int_eq(f.nodes[n].state, NODE_DRAINED);
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(resume_returns_a_node_to_up_and_bumps_the_epoch)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n2");
	uint16_t h100 = model(&f, "H100");
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	uint64_t epoch = f.epoch;
	ck_assert_int_eq(fleet_node_resume(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_UP);
	ck_assert_uint_gt(f.epoch, epoch);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 4);
	ck_assert(fb_in_bucket(&f, h100, 4, fb_slot_of(&f, n, h100)));
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(resume_of_a_draining_node_keeps_its_allocations)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	uint16_t h100 = model(&f, "H100");
	fleet_alloc(&f, n, 0x07, 9, 0, 700);
	ck_assert_int_eq(fleet_node_drain(&f, n, &e), 0);
	ck_assert_int_eq(fleet_node_resume(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_UP);
	ck_assert_uint_eq(f.nodes[n].alloc_mask, 0x07);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 5);
	fleet_release(&f, n, 0x07);
	ck_assert_int_eq(f.nodes[n].state, NODE_UP);   /* a release does not drain an up node */
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(resume_of_a_down_node_is_a_conflict)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n2");
	/* No setter exists for telemetry's "down" yet: write the state and let a health
	 * change refile the node. */
	f.nodes[n].state = NODE_DOWN;
	fleet_device_set_health(&f, f.nodes[n].first_device, HEALTH_FAILED);
	fleet_device_set_health(&f, f.nodes[n].first_device, HEALTH_OK);
	ck_assert_uint_eq(fleet_node_free(&f, n, model(&f, "H100")), 0);
	assert_consistent(&f);
	uint64_t epoch = f.epoch;
	ck_assert_int_eq(fleet_node_resume(&f, n, &e), ERR_CONFLICT);
	ck_assert_int_eq(e.code, ERR_CONFLICT);
	ck_assert_int_eq(f.nodes[n].state, NODE_DOWN);
	ck_assert_uint_eq(f.epoch, epoch);
	fleet_free(&f);
}
END_TEST

START_TEST(resume_of_an_up_node_is_harmless)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	ck_assert_int_eq(fleet_node_resume(&f, n, &e), 0);
	ck_assert_int_eq(f.nodes[n].state, NODE_UP);
	ck_assert_uint_eq(fleet_node_free(&f, n, model(&f, "H100")), 8);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

/* ---- the free index ---- */

START_TEST(buckets_list_nodes_by_their_free_count)
{
	struct fleet f;

	std_fleet(&f);
	uint16_t h100 = model(&f, "H100"), mi = model(&f, "MI300X");
	uint32_t n1 = node(&f, "a1-n1"), n2 = node(&f, "a1-n2"), n3 = node(&f, "a2-n1");
	ck_assert(fb_in_bucket(&f, h100, 8, fb_slot_of(&f, n1, h100)));
	ck_assert(fb_in_bucket(&f, h100, 4, fb_slot_of(&f, n2, h100)));
	ck_assert(fb_in_bucket(&f, h100, 2, fb_slot_of(&f, n3, h100)));
	ck_assert(fb_in_bucket(&f, mi, 4, fb_slot_of(&f, n3, mi)));
	ck_assert_uint_eq(fb_slot_of(&f, n1, mi), FLEET_NONE);
	ck_assert_uint_eq(fleet_bucket_first(&f, h100, 3), FLEET_NONE);
	ck_assert_uint_eq(fleet_bucket_first(&f, mi, 8), FLEET_NONE);
	ck_assert_uint_eq(fleet_bucket_first(&f, h100, 0), FLEET_NONE);
	ck_assert_uint_eq(f.slots[fleet_bucket_first(&f, h100, 8)].node, n1);

	/* Allocating refiles the slot. */
	fleet_alloc(&f, n1, 0x7, 5, 0, 700);
	ck_assert(!fb_in_bucket(&f, h100, 8, fb_slot_of(&f, n1, h100)));
	ck_assert(fb_in_bucket(&f, h100, 5, fb_slot_of(&f, n1, h100)));
	ck_assert_uint_eq(fleet_bucket_first(&f, h100, 8), FLEET_NONE);
	fleet_alloc(&f, n2, 0xf, 6, 0, 700);
	ck_assert(fb_in_bucket(&f, h100, 0, fb_slot_of(&f, n2, h100)));
	assert_consistent(&f);
	fleet_release(&f, n1, 0x7);
	fleet_release(&f, n2, 0xf);
	ck_assert(fb_in_bucket(&f, h100, 8, fb_slot_of(&f, n1, h100)));
	ck_assert(fb_in_bucket(&f, h100, 4, fb_slot_of(&f, n2, h100)));
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(two_nodes_with_the_same_free_count_share_a_bucket)
{
	struct fleet f;
	struct err e = {0};
	struct fleet_builder b;

	fb_init(&b);
	fb_model(&b, "M", 10, 100, 50);
	fb_domain(&b, "r", NULL, 100000);
	fb_node(&b, "x", "r", NULL, 0, "M", 4);
	fb_node(&b, "y", "r", NULL, 0, "M", 4);
	fb_node(&b, "z", "r", NULL, 0, "M", 4);
	fleet_init(&f);
	ck_assert_int_eq(fb_import(&f, &b, &e), 0);
	for (uint32_t n = 0; n < 3; n++)
		ck_assert(fb_in_bucket(&f, 0, 4, fb_slot_of(&f, n, 0)));
	/* Take the middle one out of the list and put it back. */
	uint32_t y = node(&f, "y");
	fleet_alloc(&f, y, 0x1, 1, 0, 100);
	ck_assert(!fb_in_bucket(&f, 0, 4, fb_slot_of(&f, y, 0)));
	ck_assert(fb_in_bucket(&f, 0, 4, fb_slot_of(&f, node(&f, "x"), 0)));
	ck_assert(fb_in_bucket(&f, 0, 4, fb_slot_of(&f, node(&f, "z"), 0)));
	assert_consistent(&f);
	fleet_release(&f, y, 0x1);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(a_drained_node_leaves_the_free_index)
{
	struct fleet f;
	struct err e = {0};

	std_fleet(&f);
	uint16_t h100 = model(&f, "H100"), mi = model(&f, "MI300X");
	uint32_t n3 = node(&f, "a2-n1");
	ck_assert_int_eq(fleet_node_drain(&f, n3, &e), 0);
	ck_assert(!fb_in_bucket(&f, h100, 2, fb_slot_of(&f, n3, h100)));
	ck_assert(!fb_in_bucket(&f, mi, 4, fb_slot_of(&f, n3, mi)));
	ck_assert_uint_eq(fleet_bucket_first(&f, mi, 4), FLEET_NONE);
	ck_assert_uint_eq(fleet_node_free(&f, n3, mi), 0);
	/* Filed under zero free, as the invariant says. */
	ck_assert(fb_in_bucket(&f, mi, 0, fb_slot_of(&f, n3, mi)));
	assert_consistent(&f);
	ck_assert_int_eq(fleet_node_resume(&f, n3, &e), 0);
	ck_assert(fb_in_bucket(&f, mi, 4, fb_slot_of(&f, n3, mi)));
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

/* ---- health ---- */

static const enum device_health bad_health[] = {HEALTH_DEGRADED, HEALTH_FAILED};

START_TEST(an_unhealthy_device_is_not_free)
{
	struct fleet f;

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n1");
	uint16_t h100 = model(&f, "H100");
	uint32_t dev = f.nodes[n].first_device + 5;
	fleet_device_set_health(&f, dev, bad_health[_i]);
	ck_assert_uint_eq(f.devices[dev].health, bad_health[_i]);
	ck_assert_uint_eq(f.nodes[n].healthy_mask, 0xff & ~0x20u);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 7);
	ck_assert(fb_in_bucket(&f, h100, 7, fb_slot_of(&f, n, h100)));
	/* Still counted in the idle load: it is powered. */
	ck_assert_int_eq(reserved(&f, "rack-a1"), 3840);
	assert_consistent(&f);

	uint64_t epoch = f.epoch;
	fleet_device_set_health(&f, dev, HEALTH_OK);
	ck_assert_uint_gt(f.epoch, epoch);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 8);
	ck_assert(fb_in_bucket(&f, h100, 8, fb_slot_of(&f, n, h100)));
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

START_TEST(an_allocated_device_failing_stays_held_and_is_not_free_after_release)
{
	struct fleet f;

	std_fleet(&f);
	uint32_t n = node(&f, "a1-n2");
	uint16_t h100 = model(&f, "H100");
	fleet_alloc(&f, n, 0x3, 4, 0, 700);
	fleet_device_set_health(&f, f.nodes[n].first_device + 1, HEALTH_FAILED);
	ck_assert_uint_eq(f.devices[f.nodes[n].first_device + 1].job, 4);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 2);
	assert_consistent(&f);
	fleet_release(&f, n, 0x3);
	ck_assert_uint_eq(fleet_node_free(&f, n, h100), 3);
	assert_consistent(&f);
	fleet_free(&f);
}
END_TEST

/* ---- names ---- */

static const struct {
	enum node_state s;
	const char *name;
} node_state_names[] = {
	{NODE_UP, "up"}, {NODE_DRAINING, "draining"}, {NODE_DRAINED, "drained"},
	{NODE_DOWN, "down"},
};

START_TEST(node_state_names_round_trip)
{
	enum node_state got = _NODE_STATE_MAX;

	ck_assert_str_eq(fleet_node_state_name(node_state_names[_i].s), node_state_names[_i].name);
	ck_assert_int_eq(fleet_node_state_parse(node_state_names[_i].name, &got), 0);
	ck_assert_int_eq(got, node_state_names[_i].s);
}
END_TEST

START_TEST(health_names_round_trip)
{
	enum device_health h = (enum device_health)_i, got = _HEALTH_MAX;
	const char *name = fleet_health_name(h);

	ck_assert_ptr_nonnull(name);
	ck_assert_int_eq(fleet_health_parse(name, &got), 0);
	ck_assert_int_eq(got, h);
	for (int other = 0; other < _HEALTH_MAX; other++)
		if (other != _i)
			ck_assert_str_ne(name, fleet_health_name((enum device_health)other));
	if (h == HEALTH_OK)
		ck_assert_str_eq(name, "ok");
}
END_TEST

START_TEST(unknown_names_do_not_parse_and_leave_the_output_alone)
{
	enum node_state s = NODE_DRAINED;
	enum device_health h = HEALTH_DEGRADED;

	ck_assert_int_ne(fleet_node_state_parse("sideways", &s), 0);
	ck_assert_int_ne(fleet_node_state_parse("", &s), 0);
	ck_assert_int_ne(fleet_node_state_parse("UP", &s), 0);
	ck_assert_int_eq(s, NODE_DRAINED);
	ck_assert_int_ne(fleet_health_parse("fine", &h), 0);
	ck_assert_int_ne(fleet_health_parse("ok ", &h), 0);
	ck_assert_int_eq(h, HEALTH_DEGRADED);
}
END_TEST

static Suite *fleet_suite(void)
{
	Suite *s = suite_create("fleet");
	TCase *tc;

	tc = tcase_create("import");
	tcase_add_test(tc, import_creates_models_domains_nodes_and_devices);
	tcase_add_test(tc, import_of_optional_node_fields_gives_the_documented_defaults);
	tcase_add_test(tc, import_copies_strings_out_of_the_document);
	tcase_add_test(tc, import_of_the_same_document_twice_changes_nothing_but_the_epoch);
	tcase_add_test(tc, reserved_is_host_idle_plus_device_idle_at_every_ancestor);
	tcase_add_loop_test(tc, subtree_counts_cover_every_node_and_device_below, 0,
			    (int)(sizeof(count_rows) / sizeof(count_rows[0])));
	tcase_add_test(tc, parents_and_domains_may_be_defined_later_in_the_same_document);
	tcase_add_test(tc, a_later_document_may_refer_to_what_an_earlier_one_defined);
	tcase_add_test(tc, a_budget_may_change_on_reimport);
	tcase_add_test(tc, moving_an_idle_node_to_another_domain_moves_its_load);
	tcase_add_test(tc, an_unused_models_figures_may_change);
	tcase_add_test(tc, replacing_an_idle_nodes_device_list_recomputes_everything);
	tcase_add_test(tc, up_to_64_devices_on_a_node_is_fine);
	tcase_add_test(tc, an_empty_document_imports_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("import refusals");
	tcase_add_loop_test(tc, a_refused_import_names_the_field_and_leaves_the_fleet_unchanged, 0,
			    NBAD);
	tcase_add_test(tc, a_refused_first_import_leaves_an_empty_fleet);
	tcase_add_test(tc, a_node_with_allocated_devices_keeps_its_devices_and_domain);
	tcase_add_test(tc, a_models_figures_cannot_change_while_devices_use_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("allocation");
	tcase_add_test(tc, alloc_marks_devices_and_charges_cap_minus_idle_up_the_chain);
	tcase_add_test(tc, release_bumps_the_epoch_because_capacity_grew);
	suite_add_tcase(s, tc);

	tc = tcase_create("drain and resume");
	tcase_add_test(tc, drain_of_an_idle_node_goes_straight_to_drained);
	tcase_add_test(tc, drain_with_allocations_waits_for_the_last_release);
	tcase_add_test(tc, resume_returns_a_node_to_up_and_bumps_the_epoch);
	tcase_add_test(tc, resume_of_a_draining_node_keeps_its_allocations);
	tcase_add_test(tc, resume_of_a_down_node_is_a_conflict);
	tcase_add_test(tc, resume_of_an_up_node_is_harmless);
	suite_add_tcase(s, tc);

	tc = tcase_create("free index");
	tcase_add_test(tc, buckets_list_nodes_by_their_free_count);
	tcase_add_test(tc, two_nodes_with_the_same_free_count_share_a_bucket);
	tcase_add_test(tc, a_drained_node_leaves_the_free_index);
	suite_add_tcase(s, tc);

	tc = tcase_create("health");
	tcase_add_loop_test(tc, an_unhealthy_device_is_not_free, 0,
			    (int)(sizeof(bad_health) / sizeof(bad_health[0])));
	tcase_add_test(tc, an_allocated_device_failing_stays_held_and_is_not_free_after_release);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, node_state_names_round_trip, 0,
			    (int)(sizeof(node_state_names) / sizeof(node_state_names[0])));
	tcase_add_loop_test(tc, health_names_round_trip, 0, _HEALTH_MAX);
	tcase_add_test(tc, unknown_names_do_not_parse_and_leave_the_output_alone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fleet_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
