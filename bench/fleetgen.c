/*
 * fleetgen — writes a synthetic fleet document (the POST /v1/fleet import shape) to stdout.
 *
 * Shape: one site > H halls > R rows per hall > racks of K nodes > nodes of D devices.
 * Racks are dealt to rows in contiguous, balanced runs, so every row and hall that exists
 * holds at least one rack; a rack is homogeneous (one model), chosen by a seeded draw from
 * a fixed mix of built-in catalog models, so "models" is left empty.
 *
 * Budget invariant (checked before anything is printed): at every domain,
 *   idle load  <=  budget_w  <  TDP load
 * where idle load = Σ host_idle_w + Σ idle_w and TDP load = Σ host_idle_w + Σ tdp_w over
 * the nodes below it — so the import is accepted with the whole fleet idle, but a rack
 * cannot run all its devices at TDP, and each level above is tighter than the sum of its
 * children.
 *
 * Never: reads anything but its arguments; uses rand() (output is a pure function of the
 * arguments, the same on every machine).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Watts must match the daemon's built-in catalog (sql/002_catalog.sql). */
struct fg_model {
	const char *name;
	const char *prefix;   /* node-name prefix */
	int tdp_w, idle_w;
	int host_idle_w;
	int weight;           /* share of racks, in percent */
	const char *group;    /* "node": NVLink island per node; "rack": one pod per rack */
	const char *pool;
	int port;
};


static bool fg_exporter_urls;   /* --exporter-urls */
static const struct fg_model fg_models[] = {
	{"H200-SXM-141GB", "h200", 700, 70, 1800, 25, "node", "train", 9400},
	{"H100-SXM5-80GB", "h100", 700, 70, 1600, 30, "node", "train", 9400},
	{"H20-96GB", "h20", 400, 70, 1500, 15, "node", "infer", 9400},
	{"Ascend910B3", "910b3", 400, 93, 1400, 15, "rack", "train", 8082},
	{"Ascend910C", "910c", 800, 174, 2000, 15, "rack", "infer", 8082},
};
#define FG_NMODELS (sizeof(fg_models) / sizeof(fg_models[0]))

struct fg_opts {
	unsigned long nodes, devices, halls, rows, rack_nodes;
	unsigned rack_pct, row_pct, hall_pct, site_pct;
	uint64_t seed;
};

/* splitmix64: small, seedable, identical everywhere. */
static uint64_t fg_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* budget = idle + pct% of (ceiling - idle), rounded up to 100 W, never below idle. */
static int64_t fg_budget(int64_t idle, int64_t ceiling, unsigned pct)
{
	int64_t b = idle + (ceiling - idle) * (int64_t)pct / 100;
	b = (b + 99) / 100 * 100;
	return b < idle ? idle : b;
}

static int fg_parse_ulong(const char *s, const char *what, unsigned long lo, unsigned long hi,
			  unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "fleetgen: %s must be an integer in [%lu, %lu], not '%s'\n", what, lo,
			hi, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static void fg_usage(FILE *f)
{
	fprintf(f,
		"Usage: fleetgen [OPTIONS] > fleet.json\n"
		"Writes a synthetic fleet (POST /v1/fleet shape) to stdout.\n\n"
		"  --nodes N        nodes (default 12500)\n"
		"  --devices N      devices per node, 1-64 (default 8)\n"
		"  --halls N        halls under the site (default 4)\n"
		"  --rows N         rows per hall (default 10)\n"
		"  --rack-nodes N   nodes per rack (default 4)\n"
		"  --rack-pct P     rack budget = idle + P%% of (TDP load - idle) (default 60)\n"
		"  --row-pct P      row budget = idle + P%% of (Σ rack budgets - idle) (default 90)\n"
		"  --hall-pct P     likewise for halls over rows (default 90)\n"
		"  --site-pct P     likewise for the site over halls (default 90)\n"
		"  --seed N         model draw seed (default 1)\n"
		"  --exporter-urls  give every node an exporter_url (10.x addresses; jouled scrapes them)\n");
}

struct fg_domain {
	int64_t idle, tdp, budget;
	int used;
};

int main(int argc, char **argv)
{
	struct fg_opts o = {12500, 8, 4, 10, 4, 60, 90, 90, 90, 1};
	static const struct option lopts[] = {
		{"nodes", required_argument, NULL, 'n'},      {"devices", required_argument, NULL, 'd'},
		{"halls", required_argument, NULL, 'H'},      {"rows", required_argument, NULL, 'R'},
		{"rack-nodes", required_argument, NULL, 'k'}, {"rack-pct", required_argument, NULL, '1'},
		{"row-pct", required_argument, NULL, '2'},    {"hall-pct", required_argument, NULL, '3'},
		{"site-pct", required_argument, NULL, '4'},   {"seed", required_argument, NULL, 's'},
		{"exporter-urls", no_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
	};
	struct fg_domain *racks = NULL, *rows = NULL, *halls = NULL;
	uint8_t *rack_model = NULL;
	unsigned long v;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': if (fg_parse_ulong(optarg, "--nodes", 1, 10000000, &o.nodes) < 0) return 2; break;
		case 'd': if (fg_parse_ulong(optarg, "--devices", 1, 64, &o.devices) < 0) return 2; break;
		case 'H': if (fg_parse_ulong(optarg, "--halls", 1, 1000, &o.halls) < 0) return 2; break;
		case 'R': if (fg_parse_ulong(optarg, "--rows", 1, 1000, &o.rows) < 0) return 2; break;
		case 'k': if (fg_parse_ulong(optarg, "--rack-nodes", 1, 1000, &o.rack_nodes) < 0) return 2; break;
		case '1': case '2': case '3': case '4':
			if (fg_parse_ulong(optarg, "a --*-pct option", 0, 99, &v) < 0)
				return 2;
			*(c == '1' ? &o.rack_pct : c == '2' ? &o.row_pct : c == '3' ? &o.hall_pct
							  : &o.site_pct) = (unsigned)v;
			break;
		case 's':
			if (fg_parse_ulong(optarg, "--seed", 0, ULONG_MAX, &v) < 0)
				return 2;
			o.seed = v;
			break;
		case 'x': fg_exporter_urls = true; break;
		case 'h': fg_usage(stdout); return 0;
		default: fg_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fg_usage(stderr);
		return 2;
	}

	unsigned long nracks = (o.nodes + o.rack_nodes - 1) / o.rack_nodes;
	unsigned long nrows = o.halls * o.rows;
	racks = calloc(nracks, sizeof(*racks));
	rack_model = calloc(nracks, 1);
	rows = calloc(nrows, sizeof(*rows));
	halls = calloc(o.halls, sizeof(*halls));
	if (!racks || !rack_model || !rows || !halls) {
		fprintf(stderr, "fleetgen: out of memory\n");
		goto out;
	}

	/* Draw each rack's model, then sum idle and TDP load bottom-up. */
	uint64_t st = o.seed;
	for (unsigned long r = 0; r < nracks; r++) {
		unsigned pick = (unsigned)(fg_rand(&st) % 100), acc = 0, m = 0;
		for (; m < FG_NMODELS - 1; m++)
			if (pick < (acc += (unsigned)fg_models[m].weight))
				break;
		rack_model[r] = (uint8_t)m;
	}
	for (unsigned long i = 0; i < o.nodes; i++) {
		const struct fg_model *m = &fg_models[rack_model[i / o.rack_nodes]];
		struct fg_domain *rk = &racks[i / o.rack_nodes];
		rk->idle += m->host_idle_w + (int64_t)o.devices * m->idle_w;
		rk->tdp += m->host_idle_w + (int64_t)o.devices * m->tdp_w;
	}
#define FG_ROW_OF(r) ((unsigned long)((unsigned long long)(r) * nrows / nracks))
	for (unsigned long r = 0; r < nracks; r++) {
		struct fg_domain *rw = &rows[FG_ROW_OF(r)];
		racks[r].budget = fg_budget(racks[r].idle, racks[r].tdp, o.rack_pct);
		rw->idle += racks[r].idle;
		rw->tdp += racks[r].budget;   /* a row's ceiling is the sum of its racks' budgets */
		rw->used = 1;
	}
	struct fg_domain site = {0, 0, 0, 1};
	for (unsigned long w = 0; w < nrows; w++) {
		if (!rows[w].used)
			continue;
		struct fg_domain *h = &halls[w / o.rows];
		rows[w].budget = fg_budget(rows[w].idle, rows[w].tdp, o.row_pct);
		h->idle += rows[w].idle;
		h->tdp += rows[w].budget;
		h->used = 1;
	}
	for (unsigned long h = 0; h < o.halls; h++) {
		if (!halls[h].used)
			continue;
		halls[h].budget = fg_budget(halls[h].idle, halls[h].tdp, o.hall_pct);
		site.idle += halls[h].idle;
		site.tdp += halls[h].budget;
	}
	site.budget = fg_budget(site.idle, site.tdp, o.site_pct);

	/* The invariant from the header, checked rather than assumed. */
	for (unsigned long r = 0; r < nracks; r++)
		if (racks[r].budget < racks[r].idle || racks[r].budget >= racks[r].tdp) {
			fprintf(stderr, "fleetgen: rack %lu budget %" PRId64 " outside [idle %" PRId64
					", tdp %" PRId64 ")\n",
				r, racks[r].budget, racks[r].idle, racks[r].tdp);
			goto out;
		}

	/* Print. Names: site "site", hall "hall-1", row "row-1-01", rack "rack-1-01-001",
	 * node "<model>-1-01-001-n1". */
	if (printf("{\"models\":[],\n\"domains\":[\n{\"name\":\"site\",\"budget_w\":%" PRId64 "}",
		   site.budget) < 0)
		goto io;
	for (unsigned long h = 0; h < o.halls; h++)
		if (halls[h].used &&
		    printf(",\n{\"name\":\"hall-%lu\",\"parent\":\"site\",\"budget_w\":%" PRId64 "}",
			   h + 1, halls[h].budget) < 0)
			goto io;
	for (unsigned long w = 0; w < nrows; w++)
		if (rows[w].used &&
		    printf(",\n{\"name\":\"row-%lu-%02lu\",\"parent\":\"hall-%lu\",\"budget_w\":%" PRId64
			   "}",
			   w / o.rows + 1, w % o.rows + 1, w / o.rows + 1, rows[w].budget) < 0)
			goto io;
	unsigned long *rack_in_row = calloc(nrows, sizeof(*rack_in_row));
	unsigned long *rack_no = calloc(nracks, sizeof(*rack_no));
	if (!rack_in_row || !rack_no) {
		free(rack_in_row);
		free(rack_no);
		fprintf(stderr, "fleetgen: out of memory\n");
		goto out;
	}
	for (unsigned long r = 0; r < nracks; r++) {
		unsigned long w = FG_ROW_OF(r);
		rack_no[r] = ++rack_in_row[w];
		if (printf(",\n{\"name\":\"rack-%lu-%02lu-%03lu\",\"parent\":\"row-%lu-%02lu\","
			   "\"budget_w\":%" PRId64 "}",
			   w / o.rows + 1, w % o.rows + 1, rack_no[r], w / o.rows + 1, w % o.rows + 1,
			   racks[r].budget) < 0) {
			free(rack_in_row);
			free(rack_no);
			goto io;
		}
	}
	free(rack_in_row);
	if (printf("\n],\n\"nodes\":[") < 0) {
		free(rack_no);
		goto io;
	}
	for (unsigned long i = 0; i < o.nodes; i++) {
		unsigned long r = i / o.rack_nodes, w = FG_ROW_OF(r);
		const struct fg_model *m = &fg_models[rack_model[r]];
		char rack[72], node[128], group[160];
		snprintf(rack, sizeof(rack), "%lu-%02lu-%03lu", w / o.rows + 1, w % o.rows + 1,
			 rack_no[r]);
		snprintf(node, sizeof(node), "%s-%s-n%lu", m->prefix, rack, i % o.rack_nodes + 1);
		if (strcmp(m->group, "node") == 0)
			snprintf(group, sizeof(group), "nvl-%s", node);
		else
			snprintf(group, sizeof(group), "pod-%s", rack);
		/* exporter URLs only on request: the daemon would scrape them (nobody answers) */
		char url[96] = "";
		if (fg_exporter_urls)
			snprintf(url, sizeof(url), "\"exporter_url\":\"http://10.%lu.%lu.%lu:%d/metrics\",",
				 (i >> 16) & 255, (i >> 8) & 255, i & 255, m->port);
		if (printf("%s\n{\"name\":\"%s\",\"domain\":\"rack-%s\",\"host_idle_w\":%d,"
			   "\"group\":\"%s\",\"labels\":{\"pool\":\"%s\"},%s"
			   "\"devices\":[{\"model\":\"%s\",\"count\":%lu}]}",
			   i ? "," : "", node, rack, m->host_idle_w, group, m->pool, url, m->name,
			   o.devices) < 0) {
			free(rack_no);
			goto io;
		}
	}
	free(rack_no);
	if (printf("\n]}\n") < 0 || fflush(stdout) != 0)
		goto io;
	fprintf(stderr,
		"fleetgen: %lu nodes, %lu devices, %lu racks; site idle %" PRId64 " W, budget %" PRId64
		" W\n",
		o.nodes, o.nodes * o.devices, nracks, site.idle, site.budget);
	rc = 0;
	goto out;
io:
	fprintf(stderr, "fleetgen: write to stdout failed: %s\n", strerror(errno));
out:
	free(racks);
	free(rack_model);
	free(rows);
	free(halls);
	return rc;
}
