/*
 * fuzz_prom — libFuzzer target for the Prometheus text parser (daemon/telemetry/prom.c).
 *
 * Owns: nothing; each input is parsed three times: with the default limits, with tight
 * limits (short lines, 2 labels, 2 TYPE entries), and with a callback that stops at the
 * middle sample. Never: keeps state between inputs.
 * Checks, besides what ASan/UBSan catch: every delivered sample is well-formed (names
 * NUL-terminated at their length, valid name characters, no more labels than the limit,
 * prom_label_get finds each label), the line count equals the number of line endings
 * (plus a last unterminated line), the per-kind skip counts never exceed the lines, and a
 * stopping callback's value is returned after exactly that many samples. A broken
 * invariant calls abort(), which libFuzzer (and the replay) report as a crash.
 * Built by clang with -fsanitize=fuzzer (README.md), or with replay.c into
 * fuzz_prom_replay by gcc, which meson runs over corpus/prom/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_RC 7

struct ctx {
	uint64_t n;
	uint64_t stop_at;     /* 0: never stop */
	uint32_t max_labels;
};

static void require(bool ok)
{
	if (!ok)
		abort();
}

static bool name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		(!first && c >= '0' && c <= '9') || (colon && c == ':');
}

static int on_sample(const struct prom_sample *s, void *ud)
{
	struct ctx *c = ud;

	require(s->name && s->name_len > 0 && strlen(s->name) == s->name_len);
	for (size_t i = 0; i < s->name_len; i++)
		require(name_char(s->name[i], i == 0, true));
	require(s->nlabels <= c->max_labels);
	require(s->nlabels == 0 || s->labels);
	require(s->has_timestamp || s->timestamp_ms == 0);
	for (uint32_t i = 0; i < s->nlabels; i++) {
		const struct prom_label *l = &s->labels[i];

		require(l->name && strlen(l->name) == l->name_len && l->name_len > 0);
		for (size_t j = 0; j < l->name_len; j++)
			require(name_char(l->name[j], j == 0, false));
		require(l->value && strlen(l->value) == l->value_len);
		require(prom_label_get(s, l->name) == l->value);   /* names are unique */
	}
	c->n++;
	return c->n == c->stop_at ? STOP_RC : 0;
}

static uint64_t count_lines(const uint8_t *data, size_t size)
{
	uint64_t n = 0;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n + (size > 0 && data[size - 1] != '\n');
}

static void check_stats(const struct prom_stats *st, uint64_t lines, uint64_t delivered)
{
	require(st->lines == lines);
	require(st->samples == delivered);
	require(st->samples + st->malformed + st->too_long + st->too_many_labels <= st->lines);
	require((st->first_bad_line == 0) == (st->first_bad_reason == NULL));
	require(st->first_bad_line <= st->lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct prom_limits tight = { .max_line = 64, .max_labels = 2, .max_types = 2 };
	struct prom_limits def;
	struct prom_stats st;
	struct ctx c;
	uint64_t lines = count_lines(data, size), all;
	int rc;

	prom_limits_default(&def);
	c = (struct ctx){ .max_labels = def.max_labels };
	rc = prom_parse(buf, size, NULL, on_sample, &c, &st);
	require(rc == 0);
	check_stats(&st, lines, c.n);
	all = c.n;

	c = (struct ctx){ .max_labels = tight.max_labels };
	rc = prom_parse(buf, size, &tight, on_sample, &c, &st);
	require(rc == 0);
	check_stats(&st, lines, c.n);

	if (all > 0) {
		c = (struct ctx){ .max_labels = def.max_labels, .stop_at = (all + 1) / 2 };
		rc = prom_parse(buf, size, NULL, on_sample, &c, &st);
		require(rc == STOP_RC);
		require(st.samples == c.stop_at && c.n == c.stop_at);
		require(st.lines <= lines);
	}
	return 0;
}
