/*
 * test_exporter — exporter pages to per-device power and health: the real dcgm-exporter
 * and npu-exporter samples, and variants with XID errors, unhealthy NPUs, failed reads,
 * stale samples, MIG repetition and garbage.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporter.h"

static char *slurp(const char *name, size_t *len)
{
	char path[4096];
	const char *dir = getenv("JOULE_TEST_DATA");
	ck_assert_msg(dir, "JOULE_TEST_DATA is not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/telemetry/%s", dir, name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

static struct exporter_reading r;

START_TEST(reads_power_and_health_from_the_real_dcgm_sample)
{
	size_t len;
	char *body = slurp("dcgm-exporter-sample.prom", &len);
	ck_assert_int_eq(exporter_read(body, len, 8, NULL, 0, 0, &r), 0);
	ck_assert_int_eq(r.kind, EXPORTER_DCGM);
	ck_assert_uint_eq(r.devices_seen, 1);
	ck_assert(r.dev[0].has_power);
	ck_assert_double_eq_tol(r.dev[0].power_w, 40.979, 1e-9);
	ck_assert_int_eq(r.dev[0].health, 0); /* XID 0: no error */
	ck_assert_uint_eq(r.malformed, 0);
	ck_assert(!r.dev[1].seen);
	free(body);
}
END_TEST

START_TEST(places_dcgm_series_by_uuid_before_the_gpu_index)
{
	size_t len;
	char *body = slurp("dcgm-exporter-sample.prom", &len);
	const char *uuids[4] = {NULL, NULL, "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c", NULL};
	ck_assert_int_eq(exporter_read(body, len, 4, uuids, 0, 0, &r), 0);
	ck_assert(!r.dev[0].seen);
	ck_assert(r.dev[2].seen && r.dev[2].has_power);
	free(body);
}
END_TEST

START_TEST(reads_the_npu_sample_and_its_health)
{
	size_t len;
	char *body = slurp("npu-exporter-sample.prom", &len);
	ck_assert_int_eq(exporter_read(body, len, 8, NULL, 0, 0, &r), 0);
	ck_assert_int_eq(r.kind, EXPORTER_NPU);
	ck_assert_uint_eq(r.devices_seen, 8);
	ck_assert_uint_eq(r.malformed, 0);
	/* every NPU reports health 1 (healthy) and 0 W in the sample */
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(r.dev[i].health, 0);
		ck_assert(r.dev[i].has_power);
		ck_assert_double_eq(r.dev[i].power_w, 0);
	}
	free(body);
}
END_TEST

static const struct {
	const char *page;
	uint32_t dev;
	int health;          /* expected */
	double power;        /* < 0: no power */
	const char *reason;  /* substring, or NULL */
} cases[] = {
	{"DCGM_FI_DEV_XID_ERRORS{gpu=\"1\",UUID=\"x\",Hostname=\"h\"} 79\n", 1, 2, -1, "fallen off the bus"},
	{"DCGM_FI_DEV_XID_ERRORS{gpu=\"1\",hostname=\"h\"} 74\n", 1, 1, -1, "NVLink"},
	{"DCGM_FI_DEV_XID_ERRORS{gpu=\"0\"} 13\n", 0, 0, -1, NULL},          /* application */
	{"DCGM_FI_DEV_POWER_USAGE_INSTANT{gpu=\"2\"} 612.5\n", 2, -1, 612.5, NULL},
	/* MIG: the board power repeats per instance and is counted once */
	{"DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",GPU_I_ID=\"1\"} 300\n"
	 "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",GPU_I_ID=\"2\"} 300\n", 0, -1, 300, NULL},
	{"npu_chip_info_health_status{id=\"3\"} 0 1000\n", 3, 2, -1, "unhealthy"},
	{"npu_chip_info_power{id=\"3\"} -1 1000\n", 3, -1, -1, NULL},         /* failed read */
	{"npu_chip_info_power{id=\"3\"} 287 1000\n", 3, -1, 287, NULL},
	{"npu_chip_info_power{id=\"3\"} 287 1\n", 3, -1, -1, NULL},           /* stale */
	{"garbage line\nnpu_chip_info_power{id=\"5\"} 100 1000\n{{{\n", 5, -1, 100, NULL},
	{"DCGM_FI_DEV_POWER_USAGE{gpu=\"99\"} 100\n", 0, -1, -1, NULL},        /* no such device */
};

START_TEST(maps_each_variant_to_its_device)
{
	const char *page = cases[_i].page;
	ck_assert_int_eq(exporter_read(page, strlen(page), 8, NULL, 1000, 500, &r), 0);
	const struct exporter_device *d = &r.dev[cases[_i].dev];
	ck_assert_msg(d->health == cases[_i].health, "case %d: health %d, want %d", _i, d->health,
		      cases[_i].health);
	if (cases[_i].power < 0) {
		ck_assert_msg(!d->has_power, "case %d: power %f", _i, d->power_w);
	} else {
		ck_assert(d->has_power);
		ck_assert_double_eq_tol(d->power_w, cases[_i].power, 1e-9);
	}
	if (cases[_i].reason)
		ck_assert_msg(strstr(d->reason, cases[_i].reason), "case %d: reason '%s'", _i, d->reason);
}
END_TEST

START_TEST(counts_garbage_stale_and_unplaced_series)
{
	const char *page = "garbage\nnpu_chip_info_power{id=\"1\"} 5 1\nnpu_chip_info_power{id=\"70\"} 5 1000\n";
	ck_assert_int_eq(exporter_read(page, strlen(page), 8, NULL, 1000, 500, &r), 0);
	ck_assert_uint_eq(r.malformed, 1);
	ck_assert_uint_eq(r.stale, 1);
	ck_assert_uint_eq(r.unplaced, 1);
	ck_assert_uint_eq(r.devices_seen, 0);
	ck_assert_int_eq(exporter_read(page, strlen(page), 65, NULL, 0, 0, &r), -22);
}
END_TEST

START_TEST(classifies_xids)
{
	const char *why;
	ck_assert_int_eq(exporter_xid_health(48, &why), 2);
	ck_assert_int_eq(exporter_xid_health(94, &why), 1);
	ck_assert_int_eq(exporter_xid_health(31, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(exporter_xid_health(0, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exporter");
	TCase *tc = tcase_create("pages");
	tcase_add_test(tc, reads_power_and_health_from_the_real_dcgm_sample);
	tcase_add_test(tc, places_dcgm_series_by_uuid_before_the_gpu_index);
	tcase_add_test(tc, reads_the_npu_sample_and_its_health);
	tcase_add_loop_test(tc, maps_each_variant_to_its_device, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, counts_garbage_stale_and_unplaced_series);
	tcase_add_test(tc, classifies_xids);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
