/*
 * random_world — seeded random fleets and jobs for the engine and explain suites: a
 * xorshift generator, fleets with racks, groups and tight budgets, and job mixes.
 * Include after world.h. Static inline, so a suite may use only part of it.
 */
#ifndef JOULE_TEST_RANDOM_WORLD_H
#define JOULE_TEST_RANDOM_WORLD_H

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static inline uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static const struct {
	const char *name, *vendor, *stack;
	uint32_t memory_gib, bandwidth_gbs;
	double bf16, fp8;
	uint32_t idle, tdp, min_cap;
} catalog[] = {
	{"H100", "nvidia", "cuda", 80, 3350, 989, 1979, 70, 700, 200},
	{"A100", "nvidia", "cuda", 40, 1555, 312, 0, 50, 400, 150},
	{"MI300X", "amd", "rocm", 192, 5300, 1307, 2615, 100, 750, 300},
	{"Ascend-910B", "huawei", "cann", 64, 1600, 320, 0, 80, 400, 250},
};
#define NCATALOG 4

/* A random fleet: 1–2 halls of 1–3 racks of 1–4 nodes, budgets between tight and roomy. */
static inline void random_fleet(struct fleet_builder *b)
{
	struct fleet_domain_spec *dc, *halls[2], *racks[6];
	uint32_t rack_hall[6], nracks = 0, nhalls = 1 + rnd_below(2);
	int64_t idle[6] = {0}, dyn[6] = {0}, hall_idle[2] = {0}, hall_dyn[2] = {0};

	fb_init(b);
	uint32_t nmod = 1 + rnd_below(NCATALOG);
	uint32_t first = rnd_below(NCATALOG);
	for (uint32_t i = 0; i < nmod; i++) {
		uint32_t c = (first + i) % NCATALOG;
		struct model *m = fb_model_full(b, catalog[c].name, catalog[c].vendor,
						catalog[c].stack, catalog[c].memory_gib,
						catalog[c].fp8, catalog[c].idle, catalog[c].tdp,
						catalog[c].min_cap);
		m->bandwidth_gbs = catalog[c].bandwidth_gbs;
		m->bf16_tflops = catalog[c].bf16;
	}
	dc = fb_domain(b, "dc", NULL, 0);
	for (uint32_t h = 0; h < nhalls; h++) {
		halls[h] = fb_domain(b, fb_str(b, "hall-%u", h), "dc", 0);
		uint32_t nr = 1 + rnd_below(3);
		for (uint32_t r = 0; r < nr; r++) {
			rack_hall[nracks] = h;
			racks[nracks] = fb_domain(b, fb_str(b, "rack-%u-%u", h, r), halls[h]->name, 0);
			nracks++;
		}
	}
	for (uint32_t r = 0; r < nracks; r++) {
		uint32_t nn = 1 + rnd_below(4);
		for (uint32_t k = 0; k < nn; k++) {
			int64_t host = 100 + rnd_below(500);
			uint32_t c = (first + rnd_below(nmod)) % NCATALOG;
			uint32_t cnt = 1 + rnd_below(8);
			const char *group = NULL;
			if (rnd_below(4)) {
				uint32_t g = rnd_below(2);
				group = fb_str(b, "g%u-%u", rack_hall[r], g);
			}
			fb_node(b, fb_str(b, "%s-n%u", racks[r]->name, k), racks[r]->name, group, host,
				catalog[c].name, cnt);
			idle[r] += host + cnt * catalog[c].idle;
			dyn[r] += cnt * (catalog[c].tdp - catalog[c].idle);
			if (rnd_below(4) == 0) {
				uint32_t c2 = (first + rnd_below(nmod)) % NCATALOG;
				uint32_t cnt2 = 1 + rnd_below(4);
				fb_node_devs(b, catalog[c2].name, cnt2);
				idle[r] += cnt2 * catalog[c2].idle;
				dyn[r] += cnt2 * (catalog[c2].tdp - catalog[c2].idle);
			}
		}
	}
	int64_t dc_idle = 0, dc_dyn = 0;
	for (uint32_t r = 0; r < nracks; r++) {
		int64_t share = rnd_below(5) == 0 ? 0 : (int64_t)rnd_below(111);
		racks[r]->budget_w = idle[r] + dyn[r] * share / 100;
		hall_idle[rack_hall[r]] += idle[r];
		hall_dyn[rack_hall[r]] += dyn[r];
	}
	for (uint32_t h = 0; h < nhalls; h++) {
		halls[h]->budget_w = hall_idle[h] + hall_dyn[h] * (int64_t)rnd_below(111) / 100;
		dc_idle += hall_idle[h];
		dc_dyn += hall_dyn[h];
	}
	dc->budget_w = dc_idle + dc_dyn * (int64_t)(20 + rnd_below(91)) / 100;
}

/* A random job of every flavour the engine knows. One draw per statement. */
static inline struct job *random_job(void)
{
	static const uint32_t devs[] = {1, 1, 2, 2, 4, 4, 8, 3};
	static const char *names[] = {"H100", "A100", "MI300X", "Ascend-910B", "B200"};
	static const uint32_t mems[] = {16, 40, 80, 100, 150, 300, 700, 2000};
	static const uint32_t bws[] = {0, 0, 1000, 3000, 8000, 30000};
	static const double tfs[] = {0, 0, 300, 1000, 2500, 9000};
	static const double perfs[] = {0.3, 0.5, 0.6, 0.8, 0.9, 1.0};
	static const int64_t durs[] = {0, 30, 300, 3000, 30000};

	uint32_t count = 1 + rnd_below(rnd_below(3) == 0 ? 5 : 2);
	uint32_t ndev = devs[rnd_below(sizeof(devs) / sizeof(devs[0]))];
	enum job_topology topo = (enum job_topology)rnd_below(_TOPO_MAX);
	struct job *j = job_mk(count, ndev, 0, topo);
	uint32_t flavour = rnd_below(10);
	if (flavour < 3) {
		j->req.capability = true;
		j->req.devices = 0;
		j->req.need.memory_gib = mems[rnd_below(8)];
		j->req.need.bandwidth_gbs = bws[rnd_below(6)];
		j->req.need.bf16_tflops = tfs[rnd_below(6)];
		j->req.need.fp8 = rnd_below(5) == 0;
	}
	if (rnd_below(3) == 0) {
		j->req.cap_auto = true;
		j->req.min_perf = perfs[rnd_below(6)];
	} else if (rnd_below(3) == 0) {
		uint32_t c = rnd_below(NCATALOG);
		j->req.cap_w = catalog[c].min_cap + rnd_below(catalog[c].tdp - catalog[c].min_cap + 1);
	}
	if (topo == TOPO_SPREAD || rnd_below(3) == 0) {
		j->req.kind = JOB_INFERENCE;
		j->req.count = 1 + rnd_below(5);
		if (rnd_below(3))
			j->req.min_count = 1 + rnd_below(j->req.count);
	}
	j->priority = (int32_t)rnd_below(5) - 2;
	j->preemptible = rnd_below(2);
	j->req.duration_s = durs[rnd_below(5)];
	if (rnd_below(6) == 0) {
		uint32_t a = rnd_below(5);
		job_models(j, names[a], NULL);
	}
	if (rnd_below(10) == 0)
		j->req.fp8 = true;
	return j;
}

#endif
