/* An SVG plot of one calibration histogram: counts on a log scale against |x|, and a labeled
 * vertical line for each method's amax. Plain text output, no dependencies. */
#include "quant/calib.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PLOT_W = 960, PLOT_H = 540, MARGIN_L = 70, MARGIN_R = 30, MARGIN_T = 50, MARGIN_B = 60 };
#define PLOT_X0 ((double)MARGIN_L)
#define PLOT_X1 ((double)(PLOT_W - MARGIN_R))
#define PLOT_Y0 ((double)(PLOT_H - MARGIN_B)) /* bottom */
#define PLOT_Y1 ((double)MARGIN_T)            /* top */
#define N_X_TICKS 8

static const char * const mark_colors[] = {"#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                           "#8c564b", "#e377c2", "#17becf", "#7f7f7f"};
#define N_COLORS ((int)(sizeof mark_colors / sizeof mark_colors[0]))

struct svg {
    char * p;
    size_t len, cap;
    int failed;
};

static void out(struct svg * s, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(struct svg * s, const char * fmt, ...)
{
    if (s->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = s->p ? vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap) : -2;
        va_end(ap);
        if (k >= 0 && (size_t)k < s->cap - s->len) {
            s->len += (size_t)k;
            return;
        }
        size_t need = s->cap ? s->cap * 2 : 65536;
        if (k >= 0 && need < s->len + (size_t)k + 1)
            need = s->len + (size_t)k + 1;
        char * np = k == -1 ? NULL : realloc(s->p, need);
        if (!np) {
            s->failed = 1;
            return;
        }
        s->p = np;
        s->cap = need;
    }
}

static void out_escaped(struct svg * s, const char * text)
{
    for (const char * c = text; c && *c; c++) {
        switch (*c) {
        case '<': out(s, "&lt;"); break;
        case '>': out(s, "&gt;"); break;
        case '&': out(s, "&amp;"); break;
        case '"': out(s, "&quot;"); break;
        default: out(s, "%c", *c); break;
        }
    }
}

enum q7_status q7_hist_plot_svg(const char * path, const char * title,
                                const struct q7_calib_hist * h, int n_marks,
                                const char * const * labels, const float * amax)
{
    const int64_t * counts = q7_calib_hist_counts(h);
    const int64_t nb = q7_calib_hist_num_bins(h);
    const float xmax_f = q7_calib_hist_edge_max(h);
    if (!path || !counts || n_marks < 0 || (n_marks > 0 && (!labels || !amax)))
        return q7_error_set(Q7_ERR_ARG, "histogram plot: nothing to plot");
    double xmax = xmax_f > 0.0f ? (double)xmax_f : 1.0;
    for (int i = 0; i < n_marks; i++)
        if (isfinite(amax[i]) && amax[i] > xmax)
            xmax = amax[i];
    int64_t cmax = 1;
    for (int64_t k = 0; k < nb; k++)
        cmax = counts[k] > cmax ? counts[k] : cmax;
    /* y: log10(count) from 0 (count 1) to the next decade above the largest count */
    int decades = (int)ceil(log10((double)cmax));
    if (decades < 1)
        decades = 1;
    const double sx = (PLOT_X1 - PLOT_X0) / xmax, sy = (PLOT_Y0 - PLOT_Y1) / decades;
    const double bin_w = xmax_f > 0.0f ? (double)xmax_f / (double)nb : xmax / (double)nb;

    struct svg s = {0};
    out(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out(&s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
        PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    out(&s, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    out(&s, "<text x=\"%d\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">", PLOT_W / 2);
    out_escaped(&s, title ? title : "histogram");
    out(&s, "</text>\n");

    /* grid and axes */
    for (int d = 0; d <= decades; d++) {
        double y = PLOT_Y0 - d * sy;
        out(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n",
            PLOT_X0, y, PLOT_X1, y);
        out(&s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", PLOT_X0 - 6,
            y + 4, d);
    }
    for (int t = 0; t <= N_X_TICKS; t++) {
        double v = xmax * t / N_X_TICKS, x = PLOT_X0 + v * sx;
        out(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", x,
            PLOT_Y0, x, PLOT_Y0 + 5);
        out(&s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3g</text>\n", x,
            PLOT_Y0 + 18, v);
    }
    out(&s, "<path d=\"M%.1f %.1f V%.1f H%.1f\" fill=\"none\" stroke=\"#000\"/>\n", PLOT_X0,
        PLOT_Y1, PLOT_Y0, PLOT_X1);
    out(&s, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">|x| (%lld bins, last edge %.6g)"
            "</text>\n",
        (MARGIN_L + PLOT_W - MARGIN_R) / 2, PLOT_H - 18, (long long)nb, (double)xmax_f);
    out(&s, "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">count "
            "(log)</text>\n",
        (MARGIN_T + PLOT_H - MARGIN_B) / 2);

    /* the histogram as a step outline: one column per bin with a count */
    out(&s, "<path fill=\"#1f77b4\" fill-opacity=\"0.35\" stroke=\"#1f77b4\" "
            "stroke-width=\"0.6\" d=\"M%.2f %.1f",
        PLOT_X0, PLOT_Y0);
    for (int64_t k = 0; k < nb; k++) {
        double y = counts[k] > 0 ? PLOT_Y0 - log10((double)counts[k]) * sy : PLOT_Y0;
        out(&s, " V%.2f H%.2f", y, PLOT_X0 + (double)(k + 1) * bin_w * sx);
    }
    out(&s, " V%.1f Z\"/>\n", PLOT_Y0);

    /* one line and label per amax, labels stacked so that close lines stay readable */
    for (int i = 0; i < n_marks; i++) {
        if (!isfinite(amax[i]))
            continue;
        const char * color = mark_colors[i % N_COLORS];
        double x = PLOT_X0 + (double)amax[i] * sx;
        out(&s, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\n",
            x, PLOT_Y1, x, PLOT_Y0, color);
        int right = x > (PLOT_X0 + PLOT_X1) / 2;
        out(&s, "<text x=\"%.2f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"%s\">", x + (right ? -4 : 4),
            PLOT_Y1 + 14 + 15 * i, color, right ? "end" : "start");
        out_escaped(&s, labels[i] ? labels[i] : "");
        out(&s, "</text>\n");
    }
    out(&s, "</svg>\n");
    if (s.failed) {
        free(s.p);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    }
    enum q7_status st = q7_file_write_atomic(path, s.p, s.len);
    free(s.p);
    return st;
}
