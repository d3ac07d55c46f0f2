/*
 * svg — a small, dependency-free SVG line/area chart of time series, for the simulator's
 * report: a title, axis labels, nice ticks and grid lines, up to SVG_MAX_SERIES named
 * series (a line, or a line over a filled area), an optional horizontal reference line
 * (a budget, 100 %), and a legend.
 *
 * Owns: the layout and the downsampling: a series of more than SVG_MAX_POINTS points is
 * drawn from the lowest and the highest point of each of SVG_MAX_POINTS / 2 equal x
 * buckets, so peaks survive and the file stays small whatever the series' length.
 * Never: allocates, keeps the caller's arrays past the call, reads a clock.
 * The output is a standalone SVG 1.1 document (XML; text escaped, control characters
 * replaced); non-finite points are skipped; with y_fixed, values beyond the range are drawn
 * at its edge.
 */
#ifndef JOULE_SIM_SVG_H
#define JOULE_SIM_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SVG_MAX_SERIES 8
#define SVG_MAX_POINTS 2000

struct svg_point {
	double x, y;
};

struct svg_series {
	const char *name;                /* legend text */
	const struct svg_point *points;  /* in non-decreasing x */
	size_t npoints;
	bool area;                       /* also fill between the line and y = 0 */
};

struct svg_chart {
	const char *title;               /* NULL: none */
	const char *x_label, *y_label;   /* NULL: none */
	const struct svg_series *series;
	size_t nseries;                  /* 0 … SVG_MAX_SERIES */
	bool has_ref;                    /* draw a dashed horizontal line at ref_y */
	double ref_y;
	const char *ref_label;           /* NULL: none */
	bool y_fixed;                    /* use [y_min, y_max] instead of the data's range */
	double y_min, y_max;
	unsigned width, height;          /* pixels; 0: 960 × 480 (at least 320 × 280) */
};

/* Write the chart as a complete SVG document. Returns 0, ERR_INVALID (too many series,
 * a series without points array, y_fixed with y_max <= y_min) or -EIO. */
int svg_chart(FILE *out, const struct svg_chart *c);

/* For an x axis in time: the divisor that turns seconds into hours (span up to 72 h) or
 * days (longer), and its label ("hours" / "days"). */
double svg_time_unit(double span_s, const char **label);

#endif
