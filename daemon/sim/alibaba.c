/*
 * alibaba — the PAI v2020 machine table as a fleet document (see alibaba.h).
 *
 * Owns: the five models below and their sources; the machine list while one call runs.
 * Never: reads any file but the one given (the copy the tests use is
 * tests/data/alibaba/pai_machine_spec.csv), writes *fleet_out before success.
 *
 * The models. Sources (NVIDIA datasheets):
 *   P100  https://images.nvidia.com/content/tesla/pdf/nvidia-tesla-p100-PCIe-datasheet.pdf
 *         Tesla P100 PCIe 16 GB: 16 GB HBM2, 732 GB/s, 18.7 TFLOPS FP16, 250 W.
 *   T4    https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf
 *         16 GB GDDR6, 320 GB/s, 65 TFLOPS mixed-precision (FP16/FP32) Tensor, 70 W.
 *   V100, V100M32
 *         https://images.nvidia.com/content/technologies/volta/pdf/tesla-volta-v100-datasheet-letter-fnl-web.pdf
 *         V100 SXM2: 16 or 32 GB HBM2, 900 GB/s, 125 TFLOPS Tensor (FP16), 300 W.
 *   MISC  (the trace's "older GPUs, e.g. K40m/K80/M60"): modelled as one GPU of a Tesla
 *         K80 board, https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-product-literature/Tesla-K80-BoardSpec-07317-001-v05.pdf
 *         (board: 2 GPUs, 24 GB GDDR5, 480 GB/s, 8.73 TFLOPS FP32 with boost, 300 W) → per
 *         GPU 12 GB, 240 GB/s, 4.37 TFLOPS, 150 W. Kepler has no fast FP16: FP32 is used.
 * None of these parts has BF16: bf16_tflops holds the FP16 Tensor rate (P100: packed FP16;
 * MISC: FP32), the figure a job on them would get. No FP8 (fp8_tflops 0).
 * Which board: P100 and T4 machines hold 2 GPUs (PCIe cards, like Alibaba Cloud's gn5 and
 * gn6i instances); V100 and V100M32 machines hold 8 (SXM2 with NVLink, like gn6v / gn6e).
 * Fill rules of sql/002_catalog.sql for the rest:
 *   V100 min_cap_w 150 W and idle_w 57 W: nvidia-smi -q of a Tesla V100-SXM2-32GB with no
 *   process (Min Power Limit 150.00 W, Power Draw 56.58 W),
 *   https://github.com/NVIDIA/nvidia-docker/issues/1076; the 16 GB part by the same-die,
 *   same-board sibling rule.
 *   P100 min_cap_w 125 W: the Zeus traces (NSDI '23, github.com/ml-energy/zeus,
 *   trace/summary_power_p100.csv) ran P100s at power limits 125-250 W; idle_w 10 % of TDP.
 *   T4 and MISC: min_cap_w half of TDP, idle_w 10 % of TDP (no observation found).
 */
#include "alibaba.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { A_P100, A_T4, A_V100, A_V100M32, A_MISC, _A_GPU_MAX, A_CPU = _A_GPU_MAX };

static const struct amodel {
	const char *gpu_type;
	const char *name;
	uint32_t memory_gib, bandwidth_gbs;
	double bf16_tflops;
	uint32_t tdp_w, min_cap_w, idle_w;
	bool nvlink;
} amodels[_A_GPU_MAX] = {
	[A_P100] = {"P100", "P100-PCIe-16GB", 16, 732, 18.7, 250, 125, 25, false},
	[A_T4] = {"T4", "T4-16GB", 16, 320, 65, 70, 35, 7, false},
	[A_V100] = {"V100", "V100-SXM2-16GB", 16, 900, 125, 300, 150, 57, true},
	[A_V100M32] = {"V100M32", "V100-SXM2-32GB", 32, 900, 125, 300, 150, 57, true},
	[A_MISC] = {"MISC", "MISC-K80-12GB", 12, 240, 4.37, 150, 75, 15, false},
};

struct machine {
	char name[64];
	int type;                   /* A_* */
	uint32_t cpu, mem, gpu;
	size_t line;
};

void alibaba_params_default(struct alibaba_params *p)
{
	*p = (struct alibaba_params){
		.site = "pai",
		.machines_per_rack = 8,
		.racks_per_row = 10,
		.rack_budget_fraction = 0.8,
		.rack_budget_w = 0,
		.row_fraction = 1.0,
		.site_fraction = 1.0,
		.host_idle_w = 300,
	};
}

static json_t *model_json(const struct amodel *m)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:s}", "name", m->name,
			 "vendor", "nvidia", "memory_gib", (json_int_t)m->memory_gib,
			 "bandwidth_gbs", (json_int_t)m->bandwidth_gbs, "bf16_tflops",
			 m->bf16_tflops, "fp8_tflops", 0.0, "tdp_w", (json_int_t)m->tdp_w,
			 "min_cap_w", (json_int_t)m->min_cap_w, "idle_w", (json_int_t)m->idle_w,
			 "stack", "cuda");
}

json_t *alibaba_model(const char *gpu_type)
{
	for (int i = 0; gpu_type && i < _A_GPU_MAX; i++)
		if (strcmp(amodels[i].gpu_type, gpu_type) == 0)
			return model_json(&amodels[i]);
	return NULL;
}

/* ---------------- reading ---------------- */

static int at(struct err *e, const char *name, size_t line, int rc)
{
	char msg[sizeof(e->message)];
	if (!e)
		return rc;
	if (snprintf(msg, sizeof(msg), "%.80s:%zu: %s", name, line, e->message) >= 0)
		memcpy(e->message, msg, sizeof(msg));
	return rc;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static bool ident(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* One line → *m; 1 = a machine, 0 = the header line. */
static int parse_line(char *buf, size_t line, struct machine *m, struct err *e)
{
	static const char *const fields[] = {"machine", "gpu_type", "cap_cpu", "cap_mem",
					     "cap_gpu"};
	char *f[5];
	size_t n = 0;

	for (char *p = buf;; p++) {
		if (n == 5)
			return err_set(e, ERR_INVALID, NULL,
				       "more than 5 fields (machine,gpu_type,cap_cpu,cap_mem,cap_gpu)");
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p = '\0';
	}
	if (n != 5)
		return err_set(e, ERR_INVALID, NULL,
			       "%zu fields; want 5 (machine,gpu_type,cap_cpu,cap_mem,cap_gpu)", n);
	if (line == 1 && strcmp(f[0], "machine") == 0)
		return 0;
	size_t len = strlen(f[0]);
	if (len == 0 || len > 63 || !ident(f[0]))
		return err_set(e, ERR_INVALID, fields[0],
			       "machine must be 1-63 characters of A-Z a-z 0-9 . _ -");
	memcpy(m->name, f[0], len + 1);
	m->type = -1;
	if (strcmp(f[1], "CPU") == 0)
		m->type = A_CPU;
	for (int i = 0; i < _A_GPU_MAX && m->type < 0; i++)
		if (strcmp(f[1], amodels[i].gpu_type) == 0)
			m->type = i;
	if (m->type < 0)
		return err_set(e, ERR_INVALID, fields[1],
			       "unknown gpu_type \"%.20s\" (known: P100, T4, V100, V100M32, MISC, CPU)",
			       f[1]);
	if (parse_u32(f[2], 1000000, &m->cpu) < 0)
		return err_set(e, ERR_INVALID, fields[2], "cap_cpu must be an integer 0-1000000");
	if (parse_u32(f[3], 100000000, &m->mem) < 0)
		return err_set(e, ERR_INVALID, fields[3], "cap_mem must be an integer 0-100000000");
	if (parse_u32(f[4], 64, &m->gpu) < 0)
		return err_set(e, ERR_INVALID, fields[4], "cap_gpu must be an integer 0-64");
	if (m->type == A_CPU && m->gpu > 0)
		return err_set(e, ERR_INVALID, fields[4], "a CPU machine with %u GPUs", m->gpu);
	m->line = line;
	return 1;
}

static int cmp_name(const void *a, const void *b)
{
	const struct machine *const *x = a, *const *y = b;
	int c = strcmp((*x)->name, (*y)->name);
	return c ? c : ((*x)->line < (*y)->line ? -1 : 1);
}

static int read_machines(FILE *in, const char *name, struct machine **out, size_t *nout,
			 struct err *e)
{
	char buf[ALIBABA_MAX_LINE + 2];
	struct machine *v = NULL, **byname = NULL;
	size_t n = 0, cap = 0, line = 0;
	int rc;

	while (fgets(buf, sizeof(buf), in)) {
		size_t len = strlen(buf);
		line++;
		if (len && buf[len - 1] == '\n')
			buf[--len] = '\0';
		else if (!feof(in)) {
			rc = at(e, name, line, err_set(e, ERR_TOO_LARGE, NULL,
						      "line longer than %d bytes", ALIBABA_MAX_LINE));
			goto fail;
		}
		if (len && buf[len - 1] == '\r')
			buf[--len] = '\0';
		if (strlen(buf) != len) {
			rc = at(e, name, line, err_set(e, ERR_INVALID, NULL, "contains a NUL byte"));
			goto fail;
		}
		if (len == 0 || buf[0] == '#')
			continue;
		if (n == cap) {
			if (n >= ALIBABA_MAX_MACHINES) {
				rc = at(e, name, line, err_set(e, ERR_TOO_LARGE, NULL,
							      "more than %d machines", ALIBABA_MAX_MACHINES));
				goto fail;
			}
			cap = cap ? cap * 2 : 1024;
			struct machine *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				rc = err_set(e, -ENOMEM, NULL, "out of memory");
				goto fail;
			}
			v = nv;
		}
		if ((rc = parse_line(buf, line, &v[n], e)) < 0) {
			at(e, name, line, rc);
			goto fail;
		}
		n += (size_t)rc;
	}
	if (ferror(in)) {
		rc = err_set(e, -EIO, NULL, "%.80s: read error", name);
		goto fail;
	}
	if (n > 0 && !(byname = malloc(n * sizeof(*byname)))) {
		rc = err_set(e, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		byname[i] = &v[i];
	if (n > 1)
		qsort(byname, n, sizeof(*byname), cmp_name);
	for (size_t i = 1; i < n; i++)
		if (strcmp(byname[i - 1]->name, byname[i]->name) == 0) {
			err_set(e, ERR_INVALID, "machine", "machine %s repeats line %zu",
				byname[i]->name, byname[i - 1]->line);
			rc = at(e, name, byname[i]->line, ERR_INVALID);
			goto fail;
		}
	free(byname);
	*out = v;
	*nout = n;
	return 0;
fail:
	free(byname);
	free(v);
	return rc;
}

/* ---------------- the document ---------------- */

static int check_params(const struct alibaba_params *p, struct err *e)
{
	if (!p->site || !*p->site || strlen(p->site) > 40)
		return err_set(e, ERR_INVALID, "site", "must be 1-40 characters");
	if (p->machines_per_rack < 1 || p->machines_per_rack > 1000)
		return err_set(e, ERR_INVALID, "machines_per_rack", "must be 1-1000");
	if (p->racks_per_row < 1 || p->racks_per_row > 10000)
		return err_set(e, ERR_INVALID, "racks_per_row", "must be 1-10000");
	if (!(p->rack_budget_fraction >= 0 && p->rack_budget_fraction <= 1))
		return err_set(e, ERR_INVALID, "rack_budget_fraction", "must be 0-1");
	if (p->rack_budget_w < 0 || p->rack_budget_w > 100000000)
		return err_set(e, ERR_INVALID, "rack_budget_w", "must be 0-100000000 W");
	if (!(p->row_fraction >= 0 && p->row_fraction <= 1))
		return err_set(e, ERR_INVALID, "row_fraction", "must be 0-1");
	if (!(p->site_fraction >= 0 && p->site_fraction <= 1))
		return err_set(e, ERR_INVALID, "site_fraction", "must be 0-1");
	if (p->host_idle_w < 0 || p->host_idle_w > 100000)
		return err_set(e, ERR_INVALID, "host_idle_w", "must be 0-100000 W");
	return 0;
}

static int add(json_t *arr, json_t *v)
{
	return v ? json_array_append_new(arr, v) : -1;
}

static int budget_below_idle(struct err *e, const char *what, const char *dname,
			     int64_t budget, int64_t idle)
{
	return err_set(e, ERR_INVALID, what, "%s: a budget of %lld W is below its idle load of %lld W",
		       dname, (long long)budget, (long long)idle);
}

static int build(const struct machine *v, size_t n, const struct alibaba_params *p,
		 json_t **out, struct err *e)
{
	json_t *doc = NULL, *models = json_array(), *domains = json_array(), *nodes = json_array();
	json_t *rows = json_array(), *racks = json_array();
	char rack[64] = "", row[64] = "";
	int64_t rack_budget, rack_idle = 0, rack_hosts = 0, rack_tdp = 0;
	int64_t row_sum = 0, row_idle = 0, site_sum = 0, site_idle = 0;
	uint32_t nracks = 0, in_rack = 0;
	bool used[_A_GPU_MAX] = {0};
	int rc = 0;

	if (!models || !domains || !nodes || !rows || !racks)
		goto nomem;
	for (int t = 0; t < _A_GPU_MAX; t++) {
		/* i == n closes the type's last rack: the next type starts a new one */
		for (size_t i = 0; i <= n; i++) {
			bool last = i == n;
			const struct machine *m = last ? NULL : &v[i];
			if (!last && (m->type != t || m->gpu == 0))
				continue;
			/* close the open rack when it is full, at a type's end, or at the end */
			if (rack[0] && (last || in_rack == p->machines_per_rack)) {
				rack_budget = p->rack_budget_w > 0
					? p->rack_budget_w
					: rack_hosts + (int64_t)floor(p->rack_budget_fraction * (double)rack_tdp);
				if (rack_budget < rack_idle) {
					rc = budget_below_idle(e, p->rack_budget_w > 0 ? "rack_budget_w"
										  : "rack_budget_fraction",
								 rack, rack_budget, rack_idle);
					goto fail;
				}
				if (add(racks, json_pack("{s:s, s:s, s:I}", "name", rack, "parent", row,
							 "budget_w", (json_int_t)rack_budget)) < 0)
					goto nomem;
				row_sum += rack_budget;
				row_idle += rack_idle;
				rack[0] = '\0';
				/* close the row when it is full */
				if (nracks % p->racks_per_row == 0) {
					int64_t b = (int64_t)floor(p->row_fraction * (double)row_sum);
					if (b < row_idle) {
						rc = budget_below_idle(e, "row_fraction", row, b, row_idle);
						goto fail;
					}
					if (add(rows, json_pack("{s:s, s:s, s:I}", "name", row, "parent",
								p->site, "budget_w", (json_int_t)b)) < 0)
						goto nomem;
					site_sum += b;
					site_idle += row_idle;
					row_sum = row_idle = 0;
					row[0] = '\0';
				}
			}
			if (last)
				break;
			if (!rack[0]) {
				if (!row[0])
					snprintf(row, sizeof(row), "%s-row%03u", p->site,
						 nracks / p->racks_per_row + 1);
				nracks++;
				snprintf(rack, sizeof(rack), "%s-rack%04u", p->site, nracks);
				in_rack = 0;
				rack_idle = rack_hosts = rack_tdp = 0;
			}
			const struct amodel *am = &amodels[t];
			used[t] = true;
			in_rack++;
			rack_hosts += p->host_idle_w;
			rack_idle += p->host_idle_w + (int64_t)m->gpu * am->idle_w;
			rack_tdp += (int64_t)m->gpu * am->tdp_w;
			char cpu[16], mem[16], group[80];
			snprintf(cpu, sizeof(cpu), "%u", m->cpu);
			snprintf(mem, sizeof(mem), "%u", m->mem);
			snprintf(group, sizeof(group), "nvl-%s", m->name);
			json_t *node = json_pack("{s:s, s:s, s:I, s:{s:s, s:s, s:s}, s:[{s:s, s:I}]}",
						 "name", m->name, "domain", rack, "host_idle_w",
						 (json_int_t)p->host_idle_w, "labels", "gpu_type",
						 am->gpu_type, "cap_cpu", cpu, "cap_mem_gb", mem,
						 "devices", "model", am->name, "count",
						 (json_int_t)m->gpu);
			if (node && am->nvlink && json_object_set_new(node, "group", json_string(group)) < 0) {
				json_decref(node);
				node = NULL;
			}
			if (add(nodes, node) < 0)
				goto nomem;
		}
	}
	/* a last, partly filled row */
	if (row[0]) {
		int64_t b = (int64_t)floor(p->row_fraction * (double)row_sum);
		if (b < row_idle) {
			rc = budget_below_idle(e, "row_fraction", row, b, row_idle);
			goto fail;
		}
		if (add(rows, json_pack("{s:s, s:s, s:I}", "name", row, "parent", p->site,
					"budget_w", (json_int_t)b)) < 0)
			goto nomem;
		site_sum += b;
		site_idle += row_idle;
	}
	int64_t site_budget = (int64_t)floor(p->site_fraction * (double)site_sum);
	if (site_budget < site_idle) {
		rc = budget_below_idle(e, "site_fraction", p->site, site_budget, site_idle);
		goto fail;
	}
	if (add(domains, json_pack("{s:s, s:I}", "name", p->site, "budget_w",
				   (json_int_t)site_budget)) < 0 ||
	    json_array_extend(domains, rows) < 0 || json_array_extend(domains, racks) < 0)
		goto nomem;
	for (int t = 0; t < _A_GPU_MAX; t++)
		if (used[t] && add(models, model_json(&amodels[t])) < 0)
			goto nomem;
	doc = json_pack("{s:O, s:O, s:O}", "models", models, "domains", domains, "nodes", nodes);
	if (!doc)
		goto nomem;
	json_decref(models);
	json_decref(domains);
	json_decref(nodes);
	json_decref(rows);
	json_decref(racks);
	*out = doc;
	return 0;
nomem:
	rc = err_set(e, -ENOMEM, NULL, "out of memory");
fail:
	json_decref(models);
	json_decref(domains);
	json_decref(nodes);
	json_decref(rows);
	json_decref(racks);
	return rc;
}

int alibaba_read(FILE *in, const char *name, const struct alibaba_params *p,
		 json_t **fleet_out, struct err *e)
{
	struct machine *v = NULL;
	size_t n = 0;
	int rc;

	if ((rc = check_params(p, e)) < 0)
		return rc;
	if ((rc = read_machines(in, name ? name : "machines", &v, &n, e)) < 0)
		return rc;
	rc = build(v, n, p, fleet_out, e);
	free(v);
	return rc;
}

int alibaba_import(const char *path, const struct alibaba_params *p, json_t **fleet_out,
		   struct err *e)
{
	bool std = strcmp(path, "-") == 0;
	FILE *in = std ? stdin : fopen(path, "r");
	int rc;

	if (!in) {
		rc = errno ? -errno : -EIO;
		return err_set(e, rc, NULL, "%.160s: %s", path, strerror(-rc));
	}
	rc = alibaba_read(in, std ? "stdin" : path, p, fleet_out, e);
	if (!std)
		fclose(in);
	return rc;
}
