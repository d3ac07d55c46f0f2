/*
 * jobmix — the benchmarks' job mix (contract: jobmix.h).
 * Draws happen in statement order (never several as arguments of one call, whose order C
 * leaves unspecified), so a seed means the same bodies with every compiler.
 */
#include "jobmix.h"

#include <stdio.h>

uint64_t jobmix_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t jobmix_between(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return lo + jobmix_rand(s) % (hi - lo + 1);
}

static int training(uint64_t *s, const char *name, const char *queue, bool allow_preempt,
		    char *b, size_t n)
{
	static const unsigned devs[] = {1, 2, 4, 8, 8};
	char power[48] = "", accel[160];
	const char *topo;
	unsigned workers = jobmix_rand(s) % 8 == 0 ? (unsigned)jobmix_between(s, 2, 4) : 1;
	unsigned devices = devs[jobmix_rand(s) % 5];
	switch (jobmix_rand(s) % 4) {
	case 0:
		snprintf(accel, sizeof(accel), "{\"vendors\":[\"nvidia\"],\"min_memory_gib\":80}");
		snprintf(power, sizeof(power), ",\"power\":{\"cap_w\":%u}",
			 50 * (unsigned)jobmix_between(s, 6, 14));
		break;
	case 1:
		snprintf(accel, sizeof(accel),
			 "{\"models\":[\"H100-SXM5-80GB\",\"H200-SXM-141GB\"],\"fp8\":true}");
		break;
	case 2:
		snprintf(accel, sizeof(accel), "{\"vendors\":[\"huawei\"],\"stack\":\"cann\"}");
		snprintf(power, sizeof(power), ",\"power\":{\"cap_w\":400}");
		break;
	default:
		snprintf(accel, sizeof(accel), "{}");
		break;
	}
	switch (jobmix_rand(s) % 4) {
	case 0: topo = workers * devices <= 8 ? "same_node" : "same_rack"; break;
	case 1: topo = "same_rack"; break;
	case 2: topo = "same_group"; break;
	default: topo = "any"; break;
	}
	if (!queue)
		queue = jobmix_rand(s) % 3 ? "research" : "batch";
	int priority = (int)jobmix_between(s, 0, 200) - 100;
	bool preemptible = jobmix_rand(s) % 2 && allow_preempt;
	unsigned duration = (unsigned)jobmix_between(s, 60, 86400);
	return snprintf(b, n,
			"{\"name\":\"%s\",\"kind\":\"training\",\"queue\":\"%s\",\"priority\":%d,"
			"\"preemptible\":%s,\"workers\":%u,\"devices\":%u,\"accelerator\":%s%s,"
			"\"topology\":\"%s\",\"duration_s\":%u}",
			name, queue, priority, preemptible ? "true" : "false", workers, devices, accel,
			power, topo, duration);
}

static int inference(uint64_t *s, const char *name, char *b, size_t n)
{
	unsigned replicas = (unsigned)jobmix_between(s, 1, 4);
	unsigned devices = (unsigned)jobmix_between(s, 1, 2);
	const char *accel = jobmix_rand(s) % 2 ? "{\"models\":[\"H20-96GB\"]}"
					       : "{\"vendors\":[\"huawei\"],\"min_memory_gib\":64}";
	unsigned priority = (unsigned)jobmix_between(s, 100, 500);
	return snprintf(b, n,
			"{\"name\":\"%s\",\"kind\":\"inference\",\"queue\":\"serve\",\"priority\":%u,"
			"\"replicas\":%u,\"devices\":%u,\"accelerator\":%s,\"topology\":\"spread\"}",
			name, priority, replicas, devices, accel);
}

int jobmix_body(uint64_t *s, const char *name, const char *train_queue, bool allow_preempt,
		char *b, size_t n)
{
	int len = jobmix_rand(s) % 4 != 0 ? training(s, name, train_queue, allow_preempt, b, n)
					  : inference(s, name, b, n);
	return len < 0 || (size_t)len >= n ? -1 : len;
}
