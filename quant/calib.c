/* Max and histogram calibrators (pytorch-quantization's MaxCalibrator and
 * HistogramCalibrator with torch_hist=True), plus the float32 bin edges that PyTorch 1.13's
 * CPU kernels produce, reproduced bit for bit. */
#include "quant/calib.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- method names ---- */

static const char * const method_names[Q7_CALIB_METHOD_COUNT] = {"max", "entropy", "mse",
                                                                 "percentile"};
#define DEFAULT_PERCENTILE 99.99

enum q7_status q7_calib_method_parse(const char * s, enum q7_calib_method * method,
                                     double * percentile)
{
    if (!s || !method)
        return q7_error_set(Q7_ERR_ARG, "calibration method: NULL");
    for (int m = 0; m < Q7_CALIB_METHOD_COUNT; m++) {
        size_t len = strlen(method_names[m]);
        if (strncmp(s, method_names[m], len) != 0)
            continue;
        if (s[len] == '\0') {
            *method = (enum q7_calib_method)m;
            if (m == Q7_CALIB_PERCENTILE && percentile)
                *percentile = DEFAULT_PERCENTILE;
            return Q7_OK;
        }
        if (m == Q7_CALIB_PERCENTILE && s[len] == '-') {
            char * end = NULL;
            double p = strtod(s + len + 1, &end);
            if (end == s + len + 1 || *end != '\0' || !(p >= 0.0 && p <= 100.0))
                return q7_error_set(Q7_ERR_ARG, "%s: percentile must be in [0, 100]", s);
            *method = Q7_CALIB_PERCENTILE;
            if (percentile)
                *percentile = p;
            return Q7_OK;
        }
    }
    return q7_error_set(Q7_ERR_ARG,
                        "%s: unknown calibration method (max, entropy, mse, percentile[-p])", s);
}

void q7_calib_method_name(enum q7_calib_method method, double percentile, char * buf,
                          size_t size)
{
    if (!buf || size == 0)
        return;
    if (method < 0 || method >= Q7_CALIB_METHOD_COUNT)
        snprintf(buf, size, "?");
    else if (method == Q7_CALIB_PERCENTILE)
        snprintf(buf, size, "percentile-%g", percentile);
    else
        snprintf(buf, size, "%s", method_names[method]);
}

/* ---- shared scans ---- */

/* max |x| over n values with a flag for NaN/inf; several accumulators so that the compiler
 * vectorizes it. */
float q7_hist_abs_max(const float * x, int64_t n, int * bad)
{
    enum { LANES = 8 };
    float m[LANES] = {0};
    int b[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int l = 0; l < LANES; l++) {
            float a = fabsf(x[i + l]);
            m[l] = a > m[l] ? a : m[l];
            b[l] |= !(a <= FLT_MAX);
        }
    }
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        m[0] = a > m[0] ? a : m[0];
        b[0] |= !(a <= FLT_MAX);
    }
    float r = 0.0f;
    int any = 0;
    for (int l = 0; l < LANES; l++) {
        r = m[l] > r ? m[l] : r;
        any |= b[l];
    }
    if (bad)
        *bad = any;
    return r;
}

/* ---- MaxCalibrator ---- */

struct q7_calib_max {
    int64_t n;   /* 0: nothing collected */
    float * amax;
};

struct q7_calib_max * q7_calib_max_create(void)
{
    struct q7_calib_max * c = calloc(1, sizeof *c);
    if (!c)
        q7_error_set(Q7_ERR_OOM, "max calibrator: out of memory");
    return c;
}

void q7_calib_max_free(struct q7_calib_max * c)
{
    if (!c)
        return;
    free(c->amax);
    free(c);
}

void q7_calib_max_reset(struct q7_calib_max * c)
{
    if (!c)
        return;
    free(c->amax);
    c->amax = NULL;
    c->n = 0;
}

enum q7_status q7_calib_max_collect(struct q7_calib_max * c, const float * x,
                                    int64_t n_channels, int64_t per_channel)
{
    if (!c || n_channels <= 0 || per_channel < 0 || (!x && per_channel > 0))
        return q7_error_set(Q7_ERR_ARG, "max calibrator: bad arguments");
    size_t total;
    if (!q7_size_mul((size_t)n_channels, (size_t)per_channel, &total))
        return q7_error_set(Q7_ERR_LIMIT, "max calibrator: tensor too large");
    if (per_channel == 0)
        return Q7_OK;
    if (c->n && c->n != n_channels)
        return q7_error_set(Q7_ERR_ARG, "max calibrator: amax shape changed (%lld -> %lld)",
                            (long long)c->n, (long long)n_channels);
    float * amax = c->amax;
    if (!c->n) {
        amax = malloc((size_t)n_channels * sizeof *amax);
        if (!amax)
            return q7_error_set(Q7_ERR_OOM, "max calibrator: out of memory");
    }
    /* check everything before changing the state */
    float * local = malloc((size_t)n_channels * sizeof *local);
    if (!local) {
        if (amax != c->amax)
            free(amax);
        return q7_error_set(Q7_ERR_OOM, "max calibrator: out of memory");
    }
    for (int64_t ch = 0; ch < n_channels; ch++) {
        int bad = 0;
        local[ch] = q7_hist_abs_max(x + ch * per_channel, per_channel, &bad);
        if (bad) {
            free(local);
            if (amax != c->amax)
                free(amax);
            return q7_error_set(Q7_ERR_ARG, "max calibrator: NaN or inf in channel %lld",
                                (long long)ch);
        }
    }
    if (!c->n) {
        memcpy(amax, local, (size_t)n_channels * sizeof *amax);
        c->amax = amax;
        c->n = n_channels;
    } else {
        for (int64_t ch = 0; ch < n_channels; ch++)
            c->amax[ch] = local[ch] > c->amax[ch] ? local[ch] : c->amax[ch];
    }
    free(local);
    return Q7_OK;
}

const float * q7_calib_max_amax(const struct q7_calib_max * c, int64_t * n)
{
    if (n)
        *n = c ? c->n : 0;
    return c && c->n ? c->amax : NULL;
}

/* ---- PyTorch's float32 edges ---- */

/* PyTorch 1.13 fills range tensors with cpu_serial_kernel_vec: pairs of 8-lane vectors while
 * 16 elements remain, the scalar lambda for the rest. A vector starting at idx0 holds
 * base + k * step (k = 0..7) with base computed once for idx0, so its elements round twice.
 * (Verified on the fixtures: every grown histogram's amax values lie on these edges.) Past
 * 32768 elements PyTorch splits the fill over threads, restarting the vectors at each chunk;
 * that depends on its thread count and is not modeled (histograms that large are rare). */
enum { TORCH_VEC_LANES = 8 };

static int64_t torch_vec_end(int64_t n)
{
    return n / (2 * TORCH_VEC_LANES) * (2 * TORCH_VEC_LANES);
}

/* torch.linspace(start, end, n) in float32: step = (end - start) / (n - 1); the first half
 * counts up from start, the second half down from end; vectors as above (PyTorch 1.13; 2.0
 * dropped the vector path of linspace, pytorch/pytorch#89048, which changes some lanes by an
 * ulp). */
static float torch_linspace_at(float start, float end, int64_t n, int64_t idx)
{
    if (n == 1)
        return start;
    const float step = (end - start) / (float)(n - 1);
    const int64_t half = n / 2;
    if (idx < torch_vec_end(n)) {
        int64_t idx0 = idx - idx % TORCH_VEC_LANES;
        float base = idx0 < half ? start + step * (float)idx0
                                 : end - step * (float)(n - idx0 - 1);
        float k = (float)(idx - idx0);
        return base + k * step;
    }
    return idx < half ? start + step * (float)idx : end - step * (float)(n - idx - 1);
}

void q7_hist_edges_linspace(float end, int64_t n, float * out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = torch_linspace_at(0.0f, end, n, i);
}

/* torch.arange(0, end, step) in float32: computed in double (the CPU accumulate type), each
 * vector's base rounded to float before its lanes add k * step. */
static float torch_arange_at(float step, int64_t n, int64_t idx)
{
    const double st = (double)step;
    if (idx < torch_vec_end(n)) {
        int64_t idx0 = idx - idx % TORCH_VEC_LANES;
        float base = (float)(st * (double)idx0);
        return (float)((double)base + (double)(idx - idx0) * st);
    }
    return (float)(st * (double)idx);
}

float q7_hist_guess_width(float edge_max, int64_t n_bins)
{
    if (!(edge_max > 0.0f) || n_bins < 1 || n_bins > Q7_HIST_MAX_BINS)
        return 0.0f;
    const float w0 = edge_max / (float)n_bins;
    float up = w0, down = w0;
    for (int d = 0; d <= 64; d++) { /* nearest first: w0, then one ulp up, one down, ... */
        if (torch_arange_at(up, n_bins + 1, n_bins) == edge_max)
            return up;
        if (d > 0 && torch_arange_at(down, n_bins + 1, n_bins) == edge_max)
            return down;
        up = nextafterf(up, INFINITY);
        down = nextafterf(down, 0.0f);
    }
    return 0.0f;
}

void q7_hist_edges_arange(float step, int64_t n, float * out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = torch_arange_at(step, n, i);
}

/* ---- HistogramCalibrator ---- */

struct q7_calib_hist {
    int64_t init_bins;
    int64_t n_bins; /* 0: empty */
    int64_t * counts;
    int64_t n_edges;
    float * edges;
    float width; /* arange step once grown; 0 while the edges are the first linspace */
};

struct q7_calib_hist * q7_calib_hist_create(int64_t num_bins)
{
    if (num_bins <= 0)
        num_bins = Q7_HIST_DEFAULT_BINS;
    if (num_bins > Q7_HIST_MAX_BINS) {
        q7_error_set(Q7_ERR_LIMIT, "histogram: %lld bins is too many", (long long)num_bins);
        return NULL;
    }
    struct q7_calib_hist * h = calloc(1, sizeof *h);
    if (!h) {
        q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
        return NULL;
    }
    h->init_bins = num_bins;
    return h;
}

void q7_calib_hist_reset(struct q7_calib_hist * h)
{
    if (!h)
        return;
    free(h->counts);
    free(h->edges);
    h->counts = NULL;
    h->edges = NULL;
    h->n_bins = h->n_edges = 0;
    h->width = 0.0f;
}

void q7_calib_hist_free(struct q7_calib_hist * h)
{
    if (!h)
        return;
    q7_calib_hist_reset(h);
    free(h);
}

/* histc's outer edges: its kernel bins against linspace(lo, hi, bins + 1), whose last value
 * is not always hi (when bins + 1 is a multiple of 16 it comes from a vector lane). min == max
 * (only 0 == 0 here: the batch is all zeros) widens to [-1, 1] as torch.histc does. */
static void histc_range(float lo, float hi, int64_t bins, struct q7_hist_plan * p)
{
    if (lo == hi) {
        lo -= 1.0f;
        hi += 1.0f;
    }
    p->lo = torch_linspace_at(lo, hi, bins + 1, 0);
    p->hi = torch_linspace_at(lo, hi, bins + 1, bins);
}

enum q7_status q7_calib_hist_plan(const struct q7_calib_hist * h, float x_max,
                                  struct q7_hist_plan * plan)
{
    if (!h || !plan)
        return q7_error_set(Q7_ERR_ARG, "histogram plan: NULL");
    if (!(x_max >= 0.0f && x_max <= FLT_MAX))
        return q7_error_set(Q7_ERR_ARG, "histogram: batch max %g is not finite", (double)x_max);
    memset(plan, 0, sizeof *plan);
    if (!h->n_bins) {
        plan->first = 1;
        plan->n_bins = h->init_bins;
        plan->n_edges = h->init_bins + 1;
        plan->edge_max = x_max;
        histc_range(0.0f, x_max, plan->n_bins, plan);
        return Q7_OK;
    }
    float last = h->edges[h->n_edges - 1];
    plan->n_bins = h->n_bins;
    plan->n_edges = h->n_edges;
    plan->edge_max = last;
    if (x_max > last) {
        /* width = edges[1] - edges[0]; num_bins = int((x_max / width).ceil()) in float32 */
        float width = h->edges[1] - h->edges[0];
        if (!(width > 0.0f))
            return q7_error_set(Q7_ERR_UNSUPPORTED,
                                "histogram: cannot grow a histogram whose first batch was all "
                                "zeros (bin width 0; pytorch-quantization fails here too)");
        float q = ceilf(x_max / width);
        if (!(q <= (float)Q7_HIST_MAX_BINS))
            return q7_error_set(Q7_ERR_LIMIT,
                                "histogram: growing to max %g with bin width %g needs more than "
                                "%d bins",
                                (double)x_max, (double)width, Q7_HIST_MAX_BINS);
        int64_t bins = (int64_t)q;
        /* arange(0, x_max + width, width): end in float32, length ceil(end / step) in double */
        float end = x_max + width;
        int64_t n_edges = (int64_t)ceil((double)end / (double)width);
        if (bins < h->n_bins || n_edges < 2 || n_edges > (int64_t)Q7_HIST_MAX_BINS + 2)
            return q7_error_set(Q7_ERR_UNSUPPORTED,
                                "histogram: growth to %lld bins / %lld edges from %lld bins is "
                                "inconsistent (float rounding; the reference fails here too)",
                                (long long)bins, (long long)n_edges, (long long)h->n_bins);
        plan->grow = 1;
        plan->width = width;
        plan->n_bins = bins;
        plan->n_edges = n_edges;
        plan->edge_max = torch_arange_at(width, n_edges, n_edges - 1);
    }
    histc_range(0.0f, plan->edge_max, plan->n_bins, plan);
    return Q7_OK;
}

void q7_hist_bin_abs(const float * x, int64_t n, const struct q7_hist_plan * plan,
                     int64_t * counts)
{
    enum { BLOCK = 512 };
    const float lo = plan->lo, hi = plan->hi, span = plan->hi - plan->lo;
    const int64_t bins = plan->n_bins;
    /* PyTorch 1.13's histc kernel: (a - lo) / (hi - lo) * bins, in float (the other order
     * differs at bin edges once bins is not a power of two: 78 of 5.4M values of a grown
     * yolov7 histogram) */
    const float fbins = (float)bins;
    int32_t pos[BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
        int m = (int)(n - i0 < BLOCK ? n - i0 : BLOCK);
        /* stage 1 (branch-free so that it vectorizes): the bin of each value, or -1 when it
         * is skipped. v is clamped to [0, bins] before the conversion only to keep NaN and
         * out-of-range values defined; in-range values already lie there. */
        for (int k = 0; k < m; k++) {
            float a = fabsf(x[i0 + k]);
            int in = (a >= lo) & (a <= hi); /* false for NaN */
            float v = (a - lo) / span * fbins;
            v = v > 0.0f ? v : 0.0f;
            v = v < fbins ? v : fbins;
            int32_t p = (int32_t)v;
            p = p == (int32_t)bins ? (int32_t)bins - 1 : p;
            pos[k] = in ? p : -1;
        }
        for (int k = 0; k < m; k++)
            if (pos[k] >= 0)
                counts[pos[k]]++;
    }
}

enum q7_status q7_calib_hist_add(struct q7_calib_hist * h, const struct q7_hist_plan * plan,
                                 const int64_t * counts)
{
    if (!h || !plan || !counts || plan->n_bins <= 0 || plan->n_bins > Q7_HIST_MAX_BINS ||
        plan->n_edges < 2 || plan->n_edges > (int64_t)Q7_HIST_MAX_BINS + 2 ||
        plan->n_bins < h->n_bins || (plan->first != 0) != (h->n_bins == 0) ||
        (!plan->first && !plan->grow && plan->n_bins != h->n_bins))
        return q7_error_set(Q7_ERR_ARG, "histogram add: bad plan");
    int64_t * nc = h->counts;
    float * ne = h->edges;
    if (plan->n_bins != h->n_bins || !nc) {
        nc = calloc((size_t)plan->n_bins, sizeof *nc);
        if (!nc)
            return q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
        if (h->counts)
            memcpy(nc, h->counts, (size_t)h->n_bins * sizeof *nc);
    }
    if (plan->first || plan->grow) {
        ne = malloc((size_t)plan->n_edges * sizeof *ne);
        if (!ne) {
            if (nc != h->counts)
                free(nc);
            return q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
        }
        if (plan->first)
            q7_hist_edges_linspace(plan->edge_max, plan->n_edges, ne);
        else
            q7_hist_edges_arange(plan->width, plan->n_edges, ne);
    }
    int64_t total = 0;
    for (int64_t k = 0; k < h->n_bins; k++)
        total += h->counts[k];
    for (int64_t k = 0; k < plan->n_bins; k++) {
        if (counts[k] < 0 || counts[k] > Q7_HIST_MAX_TOTAL - total) {
            if (nc != h->counts)
                free(nc);
            if (ne != h->edges)
                free(ne);
            return q7_error_set(counts[k] < 0 ? Q7_ERR_ARG : Q7_ERR_LIMIT,
                                "histogram add: bad count or more than 2^53 values");
        }
        total += counts[k];
    }
    for (int64_t k = 0; k < plan->n_bins; k++)
        nc[k] += counts[k];
    if (nc != h->counts)
        free(h->counts);
    if (ne != h->edges)
        free(h->edges);
    h->counts = nc;
    h->edges = ne;
    h->n_bins = plan->n_bins;
    h->n_edges = plan->n_edges;
    if (plan->grow)
        h->width = plan->width;
    return Q7_OK;
}

enum q7_status q7_calib_hist_collect(struct q7_calib_hist * h, const float * x, int64_t n)
{
    if (!h || n < 0 || (!x && n > 0))
        return q7_error_set(Q7_ERR_ARG, "histogram collect: bad arguments");
    if (n == 0)
        return Q7_OK;
    int bad = 0;
    float x_max = q7_hist_abs_max(x, n, &bad);
    if (bad)
        return q7_error_set(Q7_ERR_ARG, "histogram: NaN or inf in the batch");
    struct q7_hist_plan plan;
    enum q7_status st = q7_calib_hist_plan(h, x_max, &plan);
    if (st)
        return st;
    int64_t * batch = calloc((size_t)plan.n_bins, sizeof *batch);
    if (!batch)
        return q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
    q7_hist_bin_abs(x, n, &plan, batch);
    st = q7_calib_hist_add(h, &plan, batch);
    free(batch);
    return st;
}

int64_t q7_calib_hist_num_bins(const struct q7_calib_hist * h)
{
    return h ? h->n_bins : 0;
}

const int64_t * q7_calib_hist_counts(const struct q7_calib_hist * h)
{
    return h && h->n_bins ? h->counts : NULL;
}

const float * q7_calib_hist_edges(const struct q7_calib_hist * h, int64_t * n_edges)
{
    if (n_edges)
        *n_edges = h && h->n_bins ? h->n_edges : 0;
    return h && h->n_bins ? h->edges : NULL;
}

float q7_calib_hist_edge_max(const struct q7_calib_hist * h)
{
    return h && h->n_bins ? h->edges[h->n_edges - 1] : 0.0f;
}

float q7_calib_hist_width(const struct q7_calib_hist * h)
{
    return h ? h->width : 0.0f;
}

enum q7_status q7_calib_hist_set(struct q7_calib_hist * h, const int64_t * counts,
                                 int64_t n_bins, float edge_max, float width, int64_t n_edges)
{
    if (!h || !counts || n_bins <= 0)
        return q7_error_set(Q7_ERR_ARG, "histogram set: bad arguments");
    if (n_bins > Q7_HIST_MAX_BINS)
        return q7_error_set(Q7_ERR_LIMIT, "histogram: %lld bins is too many", (long long)n_bins);
    if (!(edge_max >= 0.0f && edge_max <= FLT_MAX) || !(width >= 0.0f && width <= FLT_MAX))
        return q7_error_set(Q7_ERR_FORMAT, "histogram: bad edge_max %g or width %g",
                            (double)edge_max, (double)width);
    if (width == 0.0f)
        n_edges = n_bins + 1;
    if (n_edges < n_bins || n_edges > n_bins + 2 || n_edges < 2)
        return q7_error_set(Q7_ERR_FORMAT, "histogram: %lld edges for %lld bins",
                            (long long)n_edges, (long long)n_bins);
    int64_t total = 0;
    for (int64_t k = 0; k < n_bins; k++) {
        if (counts[k] < 0)
            return q7_error_set(Q7_ERR_FORMAT, "histogram: negative count in bin %lld",
                                (long long)k);
        if (counts[k] > Q7_HIST_MAX_TOTAL - total)
            return q7_error_set(Q7_ERR_LIMIT, "histogram: more than 2^53 values counted");
        total += counts[k];
    }
    int64_t * nc = malloc((size_t)n_bins * sizeof *nc);
    float * ne = malloc((size_t)n_edges * sizeof *ne);
    if (!nc || !ne) {
        free(nc);
        free(ne);
        return q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
    }
    memcpy(nc, counts, (size_t)n_bins * sizeof *nc);
    if (width == 0.0f) {
        q7_hist_edges_linspace(edge_max, n_edges, ne);
    } else {
        q7_hist_edges_arange(width, n_edges, ne);
        float end = ne[n_edges - 1];
        if (end != edge_max) {
            free(nc);
            free(ne);
            return q7_error_set(Q7_ERR_FORMAT,
                                "histogram: arange of %lld edges with step %.9g ends at %.9g, "
                                "not edge_max %.9g",
                                (long long)n_edges, (double)width, (double)end, (double)edge_max);
        }
    }
    q7_calib_hist_reset(h);
    h->counts = nc;
    h->edges = ne;
    h->n_bins = n_bins;
    h->n_edges = n_edges;
    h->width = width;
    return Q7_OK;
}
