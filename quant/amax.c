/* amax from a histogram: pytorch-quantization 2.x's _compute_amax_entropy, _compute_amax_mse
 * and _compute_amax_percentile, with the reference's float behavior where it decides the
 * chosen bin:
 *   entropy     numpy float64 (pairwise np.sum, correctly rounded divisions) and libm log, as
 *               scipy.stats.entropy / scipy.special.rel_entr compute it;
 *   mse         PyTorch 1.13 CPU float32: fake_tensor_quant of the bin centers, then mean() =
 *               its cascade sum (8-lane AVX2 vectors) divided by the element count;
 *   percentile  numpy float64 cumsum and searchsorted. */
#include "quant/calib.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct q7_amax_params q7_amax_params_default(void)
{
    return (struct q7_amax_params){
        .num_bits = 8, .is_unsigned = 0, .start_bin = 128, .stride = 1, .percentile = 99.99};
}

static enum q7_status check_params(const struct q7_amax_params * p, const char * what)
{
    if (p->num_bits < 1 || p->num_bits > 16 || p->start_bin < 0 || p->stride < 1 ||
        (p->is_unsigned != 0 && p->is_unsigned != 1))
        return q7_error_set(Q7_ERR_ARG, "%s: bad parameters (num_bits %d, start_bin %d, "
                            "stride %d)", what, p->num_bits, p->start_bin, p->stride);
    return Q7_OK;
}

static enum q7_status check_hist(const int64_t * counts, int64_t n_bins, const float * edges,
                                 int64_t n_edges, const char * what)
{
    if (!counts || n_bins <= 0 || (edges == NULL) != (n_edges == 0) || n_edges < 0)
        return q7_error_set(Q7_ERR_ARG, "%s: empty histogram", what);
    int64_t total = 0;
    for (int64_t k = 0; k < n_bins; k++) {
        if (counts[k] < 0)
            return q7_error_set(Q7_ERR_ARG, "%s: negative count in bin %lld", what,
                                (long long)k);
        if (counts[k] > Q7_HIST_MAX_TOTAL - total)
            return q7_error_set(Q7_ERR_LIMIT, "%s: more than 2^53 values counted", what);
        total += counts[k];
    }
    return Q7_OK;
}

/* edges[idx] where the reference indexes its edge array; past its end the reference raises
 * IndexError (only possible with the rare edge-count quirk): take the last edge. */
static float edge_at(const float * edges, int64_t n_edges, int64_t idx, const char * what)
{
    if (idx >= n_edges) {
        q7_log(Q7_LOG_WARN, "%s: bin %lld past the last of %lld edges; using the last edge", what,
               (long long)idx, (long long)n_edges);
        idx = n_edges - 1;
    }
    return edges[idx];
}

/* ======================================================================================== */
/* entropy                                                                                  */
/* ======================================================================================== */

/* numpy's sum of a contiguous float64 array: 0.0 plus, in order, the pairwise sums of its
 * 8192-element buffer chunks (pairwise: 8 accumulators up to 128 elements, halves above). */
enum { NP_BUFSIZE = 8192, NP_PW_BLOCK = 128 };

static double np_pairwise(const double * a, int64_t n)
{
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= NP_PW_BLOCK) {
        double r[8];
        for (int k = 0; k < 8; k++)
            r[k] = a[k];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise(a, n2) + np_pairwise(a + n2, n - n2);
}

static double np_sum(const double * a, int64_t n)
{
    double res = 0.0;
    for (int64_t i = 0; i < n; i += NP_BUFSIZE)
        res += np_pairwise(a + i, n - i < NP_BUFSIZE ? n - i : NP_BUFSIZE);
    return res;
}

/* scipy.special.rel_entr */
static double rel_entr(double x, double y)
{
    if (isnan(x) || isnan(y))
        return NAN;
    if (x > 0.0 && y > 0.0)
        return x * log(x / y);
    if (x == 0.0 && y >= 0.0)
        return 0.0;
    return INFINITY;
}

/* Working state shared by the fast and the exact entropy. b is the histogram after
 * bins[0] = bins[1]; pre[k] = sum b[:k]. */
struct ent_ctx {
    const int64_t * b;
    const int64_t * pre;
    int64_t n;
    int64_t total;
    int nq;                 /* quantized levels: 1 << (num_bits - 1 + unsigned) */
    double * gsum;          /* nq: new_density_counts */
    int64_t * gcnt;         /* nq: Counter of digitized_space */
    double * nd, * vec;     /* n each */
};

/* One candidate exactly as the reference computes it (divergence of bins[:i]). */
static double entropy_exact(struct ent_ctx * c, int64_t i)
{
    const int64_t * b = c->b;
    const int nq = c->nq;
    const int64_t tail = c->total - c->pre[i];
    /* space = linspace(0, i, nq + 1) holds k * i / nq exactly, so np.digitize(j, space) - 1 is
     * floor(nq * j / i); bins that are zero are left out of the groups (-1). */
    for (int g = 0; g < nq; g++) {
        c->gsum[g] = 0.0;
        c->gcnt[g] = 0;
    }
    for (int64_t j = 0; j < i; j++) {
        if (b[j] == 0)
            continue;
        int64_t g = (int64_t)nq * j / i;
        c->gsum[g] += (double)b[j]; /* exact: integers below 2^53 */
        c->gcnt[g]++;
    }
    for (int g = 0; g < nq; g++)
        if (c->gcnt[g])
            c->gsum[g] = c->gsum[g] / (double)c->gcnt[g];
    for (int64_t j = 0; j < i; j++)
        c->nd[j] = b[j] ? c->gsum[(int64_t)nq * j / i] : 0.0;
    /* scipy.stats.entropy(reference_density, new_density): pk / sum(pk) with the integer sum
     * (the total), qk / np.sum(qk), then np.sum(rel_entr(pk, qk)). */
    const double tot = (double)c->total;
    const double q = np_sum(c->nd, i);
    for (int64_t j = 0; j < i; j++) {
        double ref = (double)(j == i - 1 ? b[j] + tail : b[j]);
        c->vec[j] = rel_entr(ref / tot, c->nd[j] / q);
    }
    return np_sum(c->vec, i);
}

static enum q7_status ent_init(struct ent_ctx * c, const int64_t * counts, int64_t n, int nq,
                               int64_t ** b_out, int64_t ** pre_out)
{
    memset(c, 0, sizeof *c);
    int64_t * b = malloc((size_t)n * sizeof *b);
    int64_t * pre = malloc((size_t)(n + 1) * sizeof *pre);
    c->gsum = malloc((size_t)nq * sizeof *c->gsum);
    c->gcnt = malloc((size_t)nq * sizeof *c->gcnt);
    c->nd = malloc((size_t)n * sizeof *c->nd);
    c->vec = malloc((size_t)n * sizeof *c->vec);
    *b_out = b;
    *pre_out = pre;
    if (!b || !pre || !c->gsum || !c->gcnt || !c->nd || !c->vec)
        return q7_error_set(Q7_ERR_OOM, "entropy: out of memory");
    memcpy(b, counts, (size_t)n * sizeof *b);
    if (n > 1)
        b[0] = b[1];
    pre[0] = 0;
    for (int64_t k = 0; k < n; k++)
        pre[k + 1] = pre[k] + b[k];
    c->b = b;
    c->pre = pre;
    c->n = n;
    c->total = pre[n];
    c->nq = nq;
    return Q7_OK;
}

static void ent_free(struct ent_ctx * c, int64_t * b, int64_t * pre)
{
    free(b);
    free(pre);
    free(c->gsum);
    free(c->gcnt);
    free(c->nd);
    free(c->vec);
}

enum q7_status q7_amax_entropy_divergences(const int64_t * counts, int64_t n_bins,
                                           const struct q7_amax_params * p, double * out,
                                           int64_t n_cap, int64_t * n_out)
{
    struct q7_amax_params dp = q7_amax_params_default();
    if (!p)
        p = &dp;
    enum q7_status st = check_params(p, "entropy");
    if (!st)
        st = check_hist(counts, n_bins, NULL, 0, "entropy");
    if (st)
        return st;
    struct ent_ctx c;
    int64_t * b = NULL, * pre = NULL;
    st = ent_init(&c, counts, n_bins, 1 << (p->num_bits - 1 + p->is_unsigned), &b, &pre);
    int64_t k = 0;
    for (int64_t i = p->start_bin; !st && i <= n_bins; i += p->stride, k++)
        if (k < n_cap && out)
            out[k] = i > 0 ? entropy_exact(&c, i) : NAN;
    if (n_out)
        *n_out = k;
    ent_free(&c, b, pre);
    return st;
}

/* The divergence of candidate i from running sums (mathematically the reference's value):
 *   D = (sum_j b'_j log b'_j - sum_g B'_g log(S_g / c_g)) / T + log(Q / T)
 * with b' the reference density (tail added to the last bin), T the total, Q = sum b[:i],
 * and per group g: S_g its sum, c_g its nonzero bins, B'_g its reference mass. Structural
 * NaN (T == 0 or Q == 0: 0/0 in scipy's normalization) and inf (mass in the last bin whose
 * count is 0) are decided exactly. */
static double entropy_fast(const struct ent_ctx * c, const long double * blogb,
                           const int64_t * nz, int64_t i)
{
    const int64_t * b = c->b, * pre = c->pre;
    const int64_t total = c->total, tail = total - pre[i], q = pre[i];
    if (total == 0 || q == 0)
        return NAN;
    if (b[i - 1] == 0 && tail > 0)
        return INFINITY;
    int64_t last = b[i - 1] + tail;
    long double s = blogb[i - 1];
    if (last > 0)
        s += (long double)last * logl((long double)last);
    double cross = 0.0;
    const int nq = c->nq;
    int64_t lo = 0;
    for (int g = 0; g < nq; g++) {
        int64_t hi = ((int64_t)(g + 1) * i + nq - 1) / nq; /* ceil((g + 1) i / nq) */
        int64_t sg = pre[hi] - pre[lo], cg = nz[hi] - nz[lo];
        if (cg > 0) {
            double mass = (double)(g == nq - 1 ? sg + tail : sg);
            cross += mass * log((double)sg / (double)cg);
        }
        lo = hi;
    }
    return (double)((s - (long double)cross) / (long double)total) +
           log((double)q / (double)total);
}

/* Candidates whose fast divergence is this close to the minimum are recomputed exactly; the
 * fast value's error is ~1e-13 (see entropy_fast), the reference's own float error ~1e-15. */
#define ENTROPY_MARGIN_ABS 1e-9
#define ENTROPY_MARGIN_REL 1e-9

enum q7_status q7_amax_entropy(const int64_t * counts, int64_t n_bins, const float * edges,
                               int64_t n_edges, const struct q7_amax_params * p, float * amax)
{
    struct q7_amax_params dp = q7_amax_params_default();
    if (!p)
        p = &dp;
    enum q7_status st = check_params(p, "entropy");
    if (!st)
        st = check_hist(counts, n_bins, edges, n_edges, "entropy");
    if (st)
        return st;
    if (!amax || !edges || p->start_bin > n_bins || p->start_bin < 1)
        return q7_error_set(Q7_ERR_ARG, "entropy: no candidate bins (%lld bins, start %d)",
                            (long long)n_bins, p->start_bin);
    const int nq = 1 << (p->num_bits - 1 + p->is_unsigned);
    const int64_t n_cand = (n_bins - p->start_bin) / p->stride + 1;
    struct ent_ctx c;
    int64_t * b = NULL, * pre = NULL;
    st = ent_init(&c, counts, n_bins, nq, &b, &pre);
    long double * blogb = malloc((size_t)(n_bins + 1) * sizeof *blogb);
    int64_t * nz = malloc((size_t)(n_bins + 1) * sizeof *nz);
    double * d = malloc((size_t)n_cand * sizeof *d);
    if (!st && (!blogb || !nz || !d))
        st = q7_error_set(Q7_ERR_OOM, "entropy: out of memory");
    if (st)
        goto done;
    blogb[0] = 0.0L;
    nz[0] = 0;
    for (int64_t k = 0; k < n_bins; k++) {
        blogb[k + 1] = blogb[k] + (b[k] > 0 ? (long double)b[k] * logl((long double)b[k]) : 0.0L);
        nz[k + 1] = nz[k] + (b[k] != 0);
    }

    int64_t last_nan = -1;
    double dmin = INFINITY;
    for (int64_t k = 0; k < n_cand; k++) {
        d[k] = entropy_fast(&c, blogb, nz, p->start_bin + k * p->stride);
        if (isnan(d[k]))
            last_nan = k;
        else if (d[k] < dmin)
            dmin = d[k];
    }
    int64_t best;
    if (last_nan >= 0) {
        /* np.argmin returns the first NaN: of the reversed list, i.e. the last NaN */
        best = last_nan;
    } else if (isinf(dmin)) {
        best = n_cand - 1; /* all inf: the last minimum is the last candidate */
    } else {
        double limit = dmin + ENTROPY_MARGIN_ABS + ENTROPY_MARGIN_REL * fabs(dmin);
        double emin = INFINITY;
        best = -1;
        for (int64_t k = 0; k < n_cand; k++) {
            if (!(d[k] <= limit))
                continue;
            double e = entropy_exact(&c, p->start_bin + k * p->stride);
            if (e <= emin) { /* ties: the last one wins */
                emin = e;
                best = k;
            }
        }
        if (best < 0) {
            st = q7_error_set(Q7_ERR_INTERNAL, "entropy: no exact minimum near %g", dmin);
            goto done;
        }
    }
    *amax = edge_at(edges, n_edges, p->start_bin + best * p->stride, "entropy");
done:
    free(blogb);
    free(nz);
    free(d);
    ent_free(&c, b, pre);
    return st;
}

/* ======================================================================================== */
/* mse                                                                                      */
/* ======================================================================================== */

/* PyTorch 1.13's CPU sum of a contiguous float32 vector (SumKernel.cpp cascade_sum, AVX2):
 * the first n/8*8 values as 8-lane vectors through row_sum (4 interleaved rows summed by
 * multi_row_sum's 4-level cascade, leftover vectors into row 0, rows folded in order), the
 * rest added to a scalar that then takes the 8 lanes in order. Fewer than 8 values: the same
 * row_sum on scalars. */
enum { TORCH_SUM_LANES = 8, TORCH_ILP = 4, TORCH_LEVELS = 4 };

static int64_t ceil_log2(int64_t x)
{
    if (x <= 2)
        return 1;
    uint64_t v = (uint64_t)x - 1;
    int last = 63 - __builtin_clzll(v);
    return last + 1;
}

/* multi_row_sum<acc, nrows = 4> over `size` rows of 4 elements of w lanes each (row r at
 * data + r * 4w); out receives 4 * w partial sums. */
static inline __attribute__((always_inline)) void
torch_multi_row_sum(const float * data, int64_t size, int w, float * out)
{
    float acc[TORCH_LEVELS][TORCH_ILP * TORCH_SUM_LANES];
    const int width = TORCH_ILP * w;
    memset(acc, 0, sizeof acc);
    int64_t power = ceil_log2(size) / TORCH_LEVELS;
    if (power < 4)
        power = 4;
    const int64_t step = (int64_t)1 << power, mask = step - 1;
    int64_t i = 0;
    while (i + step <= size) {
        for (int64_t j = 0; j < step; j++, i++) {
            const float * row = data + i * width;
            for (int k = 0; k < width; k++)
                acc[0][k] += row[k];
        }
        for (int j = 1; j < TORCH_LEVELS; j++) {
            for (int k = 0; k < width; k++) {
                acc[j][k] += acc[j - 1][k];
                acc[j - 1][k] = 0.0f;
            }
            if ((i & (mask << (j * power))) != 0)
                break;
        }
    }
    for (; i < size; i++) {
        const float * row = data + i * width;
        for (int k = 0; k < width; k++)
            acc[0][k] += row[k];
    }
    for (int j = 1; j < TORCH_LEVELS; j++)
        for (int k = 0; k < width; k++)
            acc[0][k] += acc[j][k];
    memcpy(out, acc[0], (size_t)width * sizeof *out);
}

/* row_sum over `size` elements of w lanes each; out receives w lane sums. */
static inline __attribute__((always_inline)) void
torch_row_sum(const float * data, int64_t size, int w, float * out)
{
    float part[TORCH_ILP * TORCH_SUM_LANES];
    const int64_t size_ilp = size / TORCH_ILP;
    torch_multi_row_sum(data, size_ilp, w, part);
    for (int64_t i = size_ilp * TORCH_ILP; i < size; i++)
        for (int l = 0; l < w; l++)
            part[l] += data[i * w + l];
    for (int k = 1; k < TORCH_ILP; k++)
        for (int l = 0; l < w; l++)
            part[l] += part[k * w + l];
    memcpy(out, part, (size_t)w * sizeof *out);
}

static float torch_sum_f32(const float * t, int64_t n)
{
    float lanes[TORCH_SUM_LANES];
    if (n < TORCH_SUM_LANES) {
        torch_row_sum(t, n, 1, lanes);
        return 0.0f + lanes[0];
    }
    const int64_t vec = n / TORCH_SUM_LANES;
    torch_row_sum(t, vec, TORCH_SUM_LANES, lanes);
    float acc = 0.0f;
    for (int64_t k = vec * TORCH_SUM_LANES; k < n; k++)
        acc += t[k];
    for (int l = 0; l < TORCH_SUM_LANES; l++)
        acc += lanes[l];
    return 0.0f + acc;
}

/* 1.5 * 2^23: adding and subtracting it rounds |v| < 2^22 to an integer, half to even, in the
 * default rounding mode (what torch.round does), in a form compilers vectorize. */
#define ROUND_MAGIC 12582912.0f
/* _tensor_quant treats amax <= 2^-24 as zero: everything quantizes to 0. */
#define FQ_AMAX_EPSILON (1.0f / 16777216.0f)

enum q7_status q7_amax_mse(const int64_t * counts, int64_t n_bins, const float * edges,
                           int64_t n_edges, const struct q7_amax_params * p, float * amax)
{
    struct q7_amax_params dp = q7_amax_params_default();
    if (!p)
        p = &dp;
    enum q7_status st = check_params(p, "mse");
    if (!st)
        st = check_hist(counts, n_bins, edges, n_edges, "mse");
    if (st)
        return st;
    if (!amax || n_edges < 2)
        return q7_error_set(Q7_ERR_ARG, "mse: no edges");
    int64_t m = n_edges - 1;
    if (m != n_bins) {
        /* the reference fails here (shape mismatch); use the bins both have */
        q7_log(Q7_LOG_WARN, "mse: %lld edges for %lld bins; using %lld bins", (long long)n_edges,
               (long long)n_bins, (long long)(m < n_bins ? m : n_bins));
        if (n_bins < m)
            m = n_bins;
    }
    if (p->start_bin >= m)
        return q7_error_set(Q7_ERR_ARG, "mse: no candidate bins (%lld bins, start %d)",
                            (long long)m, p->start_bin);
    float * centers = malloc((size_t)m * sizeof *centers);
    float * cnt = malloc((size_t)m * sizeof *cnt);
    float * t = malloc((size_t)m * sizeof *t);
    if (!centers || !cnt || !t) {
        free(centers);
        free(cnt);
        free(t);
        return q7_error_set(Q7_ERR_OOM, "mse: out of memory");
    }
    for (int64_t k = 0; k < m; k++) {
        centers[k] = (edges[k + 1] + edges[k]) / 2.0f;
        cnt[k] = (float)counts[k]; /* torch .float() of the int32 counts */
    }
    const float max_bound = (float)((1 << (p->num_bits - 1 + p->is_unsigned)) - 1);
    const float min_bound = p->is_unsigned ? 0.0f : -max_bound; /* narrow range */
    const float fm = (float)m;
    float best_mse = INFINITY;
    int64_t best = -1;
    for (int64_t i = p->start_bin; i < m; i += p->stride) {
        const float a = centers[i];
        if (a <= FQ_AMAX_EPSILON) {
            for (int64_t k = 0; k < m; k++) {
                float dlt = 0.0f - centers[k];
                t[k] = dlt * dlt * cnt[k];
            }
        } else {
            const float scale = max_bound / a;
            for (int64_t k = 0; k < m; k++) {
                float v = centers[k] * scale;
                v = v < min_bound ? min_bound : v;
                v = v > max_bound ? max_bound : v;
                float q = (v + ROUND_MAGIC) - ROUND_MAGIC;
                float dlt = q / scale - centers[k];
                t[k] = dlt * dlt * cnt[k];
            }
        }
        float mse = torch_sum_f32(t, m) / fm;
        if (mse < best_mse || best < 0) { /* np.argmin: the first minimum */
            best_mse = mse;
            best = i;
        }
    }
    *amax = centers[best];
    free(centers);
    free(cnt);
    free(t);
    return Q7_OK;
}

/* ======================================================================================== */
/* percentile                                                                               */
/* ======================================================================================== */

enum q7_status q7_amax_percentile(const int64_t * counts, int64_t n_bins, const float * edges,
                                  int64_t n_edges, double percentile, float * amax)
{
    enum q7_status st = check_hist(counts, n_bins, edges, n_edges, "percentile");
    if (st)
        return st;
    if (!amax || n_edges < 1)
        return q7_error_set(Q7_ERR_ARG, "percentile: no edges");
    if (!(percentile >= 0.0 && percentile <= 100.0))
        return q7_error_set(Q7_ERR_ARG, "percentile %g: must be in [0, 100]", percentile);
    int64_t total = 0;
    for (int64_t k = 0; k < n_bins; k++)
        total += counts[k];
    /* cdf = np.cumsum(hist / total) (sequential float64); idx = np.searchsorted(cdf, p / 100)
     * = the first idx with cdf[idx] >= p / 100 (cdf never decreases), n_bins if none. An
     * empty histogram gives NaN everywhere, which numpy sorts last: idx 0. */
    const double target = percentile / 100.0;
    int64_t idx = 0;
    if (total > 0) {
        const double tot = (double)total;
        double cdf = 0.0;
        for (idx = 0; idx < n_bins; idx++) {
            cdf += (double)counts[idx] / tot;
            if (cdf >= target)
                break;
        }
    }
    *amax = edge_at(edges, n_edges, idx, "percentile");
    return Q7_OK;
}

/* ======================================================================================== */

enum q7_status q7_amax_from_hist(const struct q7_calib_hist * h, enum q7_calib_method method,
                                 const struct q7_amax_params * p, float * amax)
{
    struct q7_amax_params dp = q7_amax_params_default();
    if (!p)
        p = &dp;
    int64_t n_edges = 0;
    const float * edges = q7_calib_hist_edges(h, &n_edges);
    const int64_t * counts = q7_calib_hist_counts(h);
    int64_t n_bins = q7_calib_hist_num_bins(h);
    if (!counts)
        return q7_error_set(Q7_ERR_ARG, "amax: the histogram has no data");
    switch (method) {
    case Q7_CALIB_ENTROPY:
        return q7_amax_entropy(counts, n_bins, edges, n_edges, p, amax);
    case Q7_CALIB_MSE:
        return q7_amax_mse(counts, n_bins, edges, n_edges, p, amax);
    case Q7_CALIB_PERCENTILE:
        return q7_amax_percentile(counts, n_bins, edges, n_edges, p->percentile, amax);
    default:
        return q7_error_set(Q7_ERR_ARG, "amax: method %d does not use a histogram", (int)method);
    }
}

enum q7_status q7_amax_max(const struct q7_calib_max * c, float * out, int64_t cap,
                           int64_t * n_out)
{
    int64_t n = 0;
    const float * a = q7_calib_max_amax(c, &n);
    if (!a)
        return q7_error_set(Q7_ERR_ARG, "amax: the max calibrator has collected nothing");
    if (out && cap > 0)
        memcpy(out, a, (size_t)(n < cap ? n : cap) * sizeof *out);
    if (n_out)
        *n_out = n;
    return Q7_OK;
}
