/*
 * svg — time-series charts as SVG (see svg.h).
 *
 * Owns: the page layout (plot box, legend column on the right), tick choice (1, 2, 5 ×
 * 10^k), the min/max bucket downsampler, XML text escaping.
 * Never: allocates (everything streams to the FILE), reads the points twice in a way that
 * depends on more than their order, writes a raw '<', '&' or control character as text.
 */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "err.h"

#define MARGIN_L 80
#define MARGIN_R 190
#define MARGIN_T 48
#define MARGIN_B 56
#define NTICKS 6

static const char *const palette[SVG_MAX_SERIES] = {
	"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf",
};

struct frame {
	double x0, x1, y0, y1;              /* data range shown */
	double px0, px1, py0, py1;          /* plot box in pixels (py0 is the bottom) */
};

static double px(const struct frame *f, double x)
{
	return f->px0 + (x - f->x0) / (f->x1 - f->x0) * (f->px1 - f->px0);
}

static double py(const struct frame *f, double y)
{
	return f->py0 - (y - f->y0) / (f->y1 - f->y0) * (f->py0 - f->py1);
}

/* v within [lo, hi]; NaN → lo. */
static double clampd(double v, double lo, double hi)
{
	return !(v >= lo) ? lo : v > hi ? hi : v;
}

/* Ticks lo, lo + step, … up to hi: how many (0 when the step is unusable). */
static int nticks(double lo, double hi, double step)
{
	if (!(step > 0) || !isfinite(step) || !isfinite(lo) || !isfinite(hi))
		return 0;
	double n = floor((hi - lo) / step + 1e-6);
	return n >= 0 && n <= 100 ? (int)n + 1 : 0;
}

static void text(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default:
			putc(c < 0x20 || c == 0x7f ? '?' : (int)c, out);
		}
	}
}

static double nice_step(double range)
{
	double raw = range / (NTICKS - 1), p = pow(10.0, floor(log10(raw))), f = raw / p;
	return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

/* Widen [*lo, *hi] to multiples of a nice step; returns the step. */
static double nice_range(double *lo, double *hi)
{
	if (!(*hi > *lo)) {
		double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
		*lo -= d;
		*hi += d;
	}
	double step = nice_step(*hi - *lo);
	*lo = floor(*lo / step + 1e-9) * step;
	*hi = ceil(*hi / step - 1e-9) * step;
	if (!(*hi > *lo))               /* a range lost in the magnitude's rounding */
		*hi = *lo + fmax(fabs(*lo) * 1e-9, 1e-9);
	return step;
}

static void tick_label(char *buf, size_t n, double v, double step)
{
	int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	if (dec > 6)
		dec = 6;
	if (fabs(v) < step * 1e-6)
		v = 0;
	if (fabs(v) >= 1e7)
		snprintf(buf, n, "%.3g", v);
	else
		snprintf(buf, n, "%.*f", dec, v);
}

/* ---- downsampling: emit the points of s, at most SVG_MAX_POINTS ---- */

struct emit {
	FILE *out;
	const struct frame *f;
	size_t n;                   /* points written so far */
	double first_x, last_x;
};

static void emit_point(struct emit *m, const struct svg_point *p)
{
	/* inside the plot box: a value beyond a fixed y range is drawn at its edge */
	double x = clampd(px(m->f, p->x), m->f->px0, m->f->px1);
	double y = clampd(py(m->f, p->y), m->f->py1, m->f->py0);
	fprintf(m->out, "%s%.1f,%.1f", m->n ? " L" : "M", x, y);
	if (!m->n)
		m->first_x = x;
	m->last_x = x;
	m->n++;
}

static bool finite_point(const struct svg_point *p)
{
	return isfinite(p->x) && isfinite(p->y);
}

static void emit_series(struct emit *m, const struct svg_series *s)
{
	if (s->npoints <= SVG_MAX_POINTS) {
		for (size_t i = 0; i < s->npoints; i++)
			if (finite_point(&s->points[i]))
				emit_point(m, &s->points[i]);
		return;
	}
	const size_t nb = SVG_MAX_POINTS / 2;
	double x0 = m->f->x0, w = m->f->x1 - m->f->x0;
	size_t cur = (size_t)-1, lo = 0, hi = 0;
	bool open = false;
	for (size_t i = 0; i <= s->npoints; i++) {
		const struct svg_point *p = i < s->npoints ? &s->points[i] : NULL;
		if (p && !finite_point(p))
			continue;
		size_t b = 0;
		if (p) {
			double r = (p->x - x0) / w * (double)nb;
			b = !(r > 0) ? 0 : r >= (double)(nb - 1) ? nb - 1 : (size_t)r;
		}
		if (open && (!p || b != cur)) {
			/* flush: the bucket's lowest and highest points, in x order */
			size_t a = lo < hi ? lo : hi, z = lo < hi ? hi : lo;
			emit_point(m, &s->points[a]);
			if (z != a)
				emit_point(m, &s->points[z]);
			open = false;
		}
		if (!p)
			break;
		if (!open) {
			cur = b;
			lo = hi = i;
			open = true;
		} else {
			if (p->y < s->points[lo].y)
				lo = i;
			if (p->y > s->points[hi].y)
				hi = i;
		}
	}
}

int svg_chart(FILE *out, const struct svg_chart *c)
{
	unsigned width = c->width ? c->width : 960, height = c->height ? c->height : 480;
	struct frame f;
	double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
	char buf[64];

	if (c->nseries > SVG_MAX_SERIES)
		return ERR_INVALID;
	for (size_t k = 0; k < c->nseries; k++)
		if (c->series[k].npoints && !c->series[k].points)
			return ERR_INVALID;
	if (c->y_fixed && !(c->y_max > c->y_min))
		return ERR_INVALID;
	if (width < 320)
		width = 320;
	if (height < 280)
		height = 280;

	for (size_t k = 0; k < c->nseries; k++)
		for (size_t i = 0; i < c->series[k].npoints; i++) {
			const struct svg_point *p = &c->series[k].points[i];
			if (!finite_point(p))
				continue;
			xmin = fmin(xmin, p->x);
			xmax = fmax(xmax, p->x);
			ymin = fmin(ymin, p->y);
			ymax = fmax(ymax, p->y);
		}
	if (!(xmin <= xmax)) {
		xmin = 0;
		xmax = 1;
	}
	if (!(ymin <= ymax)) {
		ymin = 0;
		ymax = 1;
	}
	if (c->has_ref && isfinite(c->ref_y)) {
		ymin = fmin(ymin, c->ref_y);
		ymax = fmax(ymax, c->ref_y);
	}
	if (ymin > 0)
		ymin = 0;               /* quantities start from zero */
	f.x0 = xmin;
	f.x1 = xmax;
	double xstep = nice_range(&f.x0, &f.x1);
	double ystep;
	if (c->y_fixed) {
		f.y0 = c->y_min;
		f.y1 = c->y_max;
		ystep = nice_step(f.y1 - f.y0);
	} else {
		f.y0 = ymin;
		f.y1 = ymax;
		if (c->has_ref && ymax == c->ref_y)
			f.y1 = ymax + 0.05 * (ymax - f.y0) + (ymax == f.y0); /* room above the ref */
		ystep = nice_range(&f.y0, &f.y1);
	}
	f.px0 = MARGIN_L;
	f.px1 = width - MARGIN_R;
	f.py0 = height - MARGIN_B;
	f.py1 = MARGIN_T;

	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
		     "height=\"%u\" viewBox=\"0 0 %u %u\" font-family=\"sans-serif\" font-size=\"12\">\n",
		width, height, width, height);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#ffffff\"/>\n",
		width, height);
	if (c->title) {
		fprintf(out, "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" "
			     "font-weight=\"bold\">", (f.px0 + f.px1) / 2);
		text(out, c->title);
		fputs("</text>\n", out);
	}

	/* grid and ticks */
	fputs("<g stroke=\"#dddddd\" stroke-width=\"1\">\n", out);
	for (int t = 0, nt = nticks(f.y0, f.y1, ystep); t < nt; t++) {
		double y = py(&f, f.y0 + t * ystep);
		fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", f.px0, y,
			f.px1, y);
	}
	for (int t = 0, nt = nticks(f.x0, f.x1, xstep); t < nt; t++) {
		double x = px(&f, f.x0 + t * xstep);
		fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, f.py0,
			x, f.py1);
	}
	fputs("</g>\n<g fill=\"#333333\">\n", out);
	for (int t = 0, nt = nticks(f.y0, f.y1, ystep); t < nt; t++) {
		double v = f.y0 + t * ystep;
		tick_label(buf, sizeof(buf), v, ystep);
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			f.px0 - 6, py(&f, v) + 4, buf);
	}
	for (int t = 0, nt = nticks(f.x0, f.x1, xstep); t < nt; t++) {
		double v = f.x0 + t * xstep;
		tick_label(buf, sizeof(buf), v, xstep);
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			px(&f, v), f.py0 + 18, buf);
	}
	fputs("</g>\n", out);
	fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
		     "stroke=\"#333333\"/>\n", f.px0, f.py1, f.px1 - f.px0, f.py0 - f.py1);
	if (c->x_label) {
		fprintf(out, "<text x=\"%.1f\" y=\"%u\" text-anchor=\"middle\">",
			(f.px0 + f.px1) / 2, height - 14);
		text(out, c->x_label);
		fputs("</text>\n", out);
	}
	if (c->y_label) {
		double cy = (f.py0 + f.py1) / 2;
		fprintf(out, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
			     "transform=\"rotate(-90 18 %.1f)\">", cy, cy);
		text(out, c->y_label);
		fputs("</text>\n", out);
	}

	/* series: areas first, then lines on top */
	double ybase = clampd(py(&f, f.y0 <= 0 && f.y1 >= 0 ? 0 : f.y0), f.py1, f.py0);
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < c->nseries; k++) {
			const struct svg_series *s = &c->series[k];
			struct emit m = {.out = out, .f = &f};
			if (pass == 0 && !s->area)
				continue;
			fputs("<path d=\"", out);
			emit_series(&m, s);
			if (pass == 0 && m.n)
				fprintf(out, " L%.1f,%.1f L%.1f,%.1f Z", m.last_x, ybase, m.first_x, ybase);
			if (!m.n)
				fputs("M0,0", out);
			if (pass == 0)
				fprintf(out, "\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\"/>\n",
					palette[k]);
			else
				fprintf(out, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" "
					     "stroke-linejoin=\"round\"/>\n", palette[k]);
		}

	if (c->has_ref && isfinite(c->ref_y) && c->ref_y >= f.y0 && c->ref_y <= f.y1) {
		double y = py(&f, c->ref_y);
		fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
			     "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n", f.px0, y, f.px1, y);
		if (c->ref_label) {
			fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d62728\" text-anchor=\"end\" "
				     "stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">",
				f.px1 - 4, y - 5);
			text(out, c->ref_label);
			fputs("</text>\n", out);
		}
	}

	/* legend */
	for (size_t k = 0; k < c->nseries; k++) {
		double y = f.py1 + 8 + 20.0 * (double)k;
		fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"10\" fill=\"%s\"/>\n",
			f.px1 + 16, y, palette[k]);
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", f.px1 + 36, y + 9);
		text(out, c->series[k].name ? c->series[k].name : "");
		fputs("</text>\n", out);
	}
	fputs("</svg>\n", out);
	if (fflush(out) == EOF || ferror(out))
		return -EIO;
	return 0;
}

double svg_time_unit(double span_s, const char **label)
{
	if (span_s <= 72 * 3600.0) {
		if (label)
			*label = "hours";
		return 3600.0;
	}
	if (label)
		*label = "days";
	return 86400.0;
}
