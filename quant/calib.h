/* Calibrators (max, histogram) and the amax methods computed from a histogram, as
 * pytorch-quantization 2.x's MaxCalibrator, HistogramCalibrator (torch_hist=True) and
 * _compute_amax_{entropy,mse,percentile}, reproduced down to the float32/float64 rounding of
 * the reference stack (PyTorch 1.13 CPU, numpy, scipy) so that the chosen bin is the same.
 *
 * Threading: a calibrator is a plain object with no global state; calls on different
 * calibrators may run concurrently, calls on the same one may not. */
#ifndef Q7_CALIB_H
#define Q7_CALIB_H

#include "graph/base.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- methods ---- */

enum q7_calib_method {
    Q7_CALIB_MAX = 0,    /* MaxCalibrator: amax = max |x| */
    Q7_CALIB_ENTROPY,    /* KL divergence against a 2^(bits-1) level re-binning */
    Q7_CALIB_MSE,        /* fake-quantized bin centers, count-weighted squared error */
    Q7_CALIB_PERCENTILE, /* the edge where the CDF of counts reaches p/100 */
    Q7_CALIB_METHOD_COUNT
};

/* Parses "max", "entropy", "mse", "percentile" (99.99) or "percentile-<p>" (as the keys of
 * ref/amax.json: "percentile-99.9"). *percentile is set for percentile only (may be NULL
 * otherwise). Q7_ERR_ARG with a message for anything else. */
enum q7_status q7_calib_method_parse(const char * s, enum q7_calib_method * method,
                                     double * percentile);
/* Writes the method's name in the same form ("percentile-99.99", "%g" of p) to buf. */
void q7_calib_method_name(enum q7_calib_method method, double percentile, char * buf,
                          size_t size);

/* ---- MaxCalibrator ---- */

/* Running max |x|, per tensor or per channel along axis 0 (weights: (out_ch, per_ch)).
 * Owned by the caller: q7_calib_max_free. NULL on OOM (message set). */
struct q7_calib_max;
struct q7_calib_max * q7_calib_max_create(void);
void q7_calib_max_free(struct q7_calib_max * c);
void q7_calib_max_reset(struct q7_calib_max * c);

/* Collects x viewed as (n_channels, per_channel) row-major; n_channels = 1 for a per-tensor
 * max. The channel count must stay the same across calls ("amax shape changed!" in the
 * reference: Q7_ERR_ARG). NaN or inf in x gives Q7_ERR_ARG (the reference would put them into
 * amax). An empty x (per_channel == 0) is ignored. */
enum q7_status q7_calib_max_collect(struct q7_calib_max * c, const float * x,
                                    int64_t n_channels, int64_t per_channel);
/* The collected amax (*n values), or NULL with *n = 0 when nothing was collected. Valid until
 * the next collect/reset/free. */
const float * q7_calib_max_amax(const struct q7_calib_max * c, int64_t * n);

/* ---- HistogramCalibrator ---- */

#define Q7_HIST_DEFAULT_BINS 2048
/* Refuse to grow a histogram past this many bins (a first batch with a tiny max followed by a
 * huge one would otherwise ask for gigabytes): Q7_ERR_LIMIT. */
#define Q7_HIST_MAX_BINS (1 << 24)
/* At most 2^53 values counted in all (the amax methods sum counts in float64, exactly below
 * that): Q7_ERR_LIMIT past it. */
#define Q7_HIST_MAX_TOTAL ((int64_t)1 << 53)

/* The histogram of |x| as HistogramCalibrator(torch_hist=True) builds it:
 *   first batch:  x_max = max|x|; hist = histc(|x|, bins, 0, x_max);
 *                 edges = linspace(0, x_max, bins + 1)                       (torch, float32)
 *   later batch:  if x_max > edges[-1]:  width = edges[1] - edges[0];
 *                   bins = ceil(x_max / width)                               (float32)
 *                   edges = arange(0, x_max + width, width)    (torch: ceil in double, float32)
 *                 hist_new = histc(|x|, bins, 0, edges[-1]); hist_new[:len(hist)] += hist
 * Counts are exact int64 (PyTorch keeps them in float32, which stops counting past 2^24 in a
 * bin). edges normally hold n_bins + 1 values, but n_bins or n_bins + 2 in rare cases (the
 * reference rounds its arange length and its num_bins differently); the amax methods follow
 * the reference there as far as it does not crash. Owned by the caller: q7_calib_hist_free. */
struct q7_calib_hist;
/* num_bins <= 0 means Q7_HIST_DEFAULT_BINS. NULL on OOM or absurd num_bins (message set). */
struct q7_calib_hist * q7_calib_hist_create(int64_t num_bins);
void q7_calib_hist_free(struct q7_calib_hist * h);
void q7_calib_hist_reset(struct q7_calib_hist * h);

/* Collects one batch (all n values of the quantizer's input tensor): one pass for max |x|,
 * one for binning. Empty batches are ignored. Errors: Q7_ERR_ARG for NaN or inf in x (the
 * reference fails or silently drops them), Q7_ERR_LIMIT past Q7_HIST_MAX_BINS,
 * Q7_ERR_UNSUPPORTED when a histogram whose batches were all zero would have to grow (its
 * bin width is 0; the reference raises there too), Q7_ERR_OOM. On error h is unchanged. */
enum q7_status q7_calib_hist_collect(struct q7_calib_hist * h, const float * x, int64_t n);

/* The same split in three steps for callers that bin elsewhere (threads, GPU):
 * 1. max |x| of the batch (q7_hist_abs_max), 2. q7_calib_hist_plan: what histc to run,
 * 3. q7_hist_bin_abs (or an equivalent kernel) into a zeroed int64 array of plan.n_bins,
 *    possibly in pieces summed together, 4. q7_calib_hist_add. */
struct q7_hist_plan {
    int64_t n_bins;  /* histc bins */
    float lo, hi;    /* histc's outer edges as its CPU kernel uses them (the ends of its own
                        float32 linspace): x counts when lo <= x <= hi, x == hi in the last bin */
    int first;       /* first batch: edges = linspace(0, edge_max, n_bins + 1) */
    int grow;        /* edges change to arange(0, x_max + width, width) */
    float width;     /* the arange step when grow */
    int64_t n_edges; /* edge count after this batch */
    float edge_max;  /* last edge after this batch */
};
/* max |x| over n values (0 for n == 0); *bad set to 1 if any value is NaN or inf. */
float q7_hist_abs_max(const float * x, int64_t n, int * bad);
/* Plans the batch whose max |x| is batch_amax; h is not modified. Errors as collect. */
enum q7_status q7_calib_hist_plan(const struct q7_calib_hist * h, float batch_amax,
                                  struct q7_hist_plan * plan);
/* torch.histc's CPU rule on |x|, in float32: bin = (int64)((|x| - lo) * n_bins / (hi - lo)),
 * |x| == hi in the last bin, values outside [lo, hi] (and NaN) ignored. Adds into counts. */
void q7_hist_bin_abs(const float * x, int64_t n, const struct q7_hist_plan * plan,
                     int64_t * counts);
/* Applies a plan (made by q7_calib_hist_plan on this h, unchanged since) and adds that
 * batch's counts (plan->n_bins values). Q7_ERR_ARG for a plan that does not fit h. */
enum q7_status q7_calib_hist_add(struct q7_calib_hist * h, const struct q7_hist_plan * plan,
                                 const int64_t * counts);

/* Accessors: NULL / 0 before the first batch. Valid until the next change of h. */
int64_t q7_calib_hist_num_bins(const struct q7_calib_hist * h);
const int64_t * q7_calib_hist_counts(const struct q7_calib_hist * h);
const float * q7_calib_hist_edges(const struct q7_calib_hist * h, int64_t * n_edges);
float q7_calib_hist_edge_max(const struct q7_calib_hist * h);
/* The arange step when the histogram has grown, 0 while its edges are the first linspace. */
float q7_calib_hist_width(const struct q7_calib_hist * h);

/* Replaces the state (loading a saved histogram). width == 0: edges are the reference's
 * linspace(0, edge_max, n_bins + 1) (all that ref/histograms.json records; exact for
 * histograms that never grew, within float rounding otherwise). width > 0: edges are the
 * reference's arange of n_edges values with that step, whose last value must be edge_max
 * (Q7_ERR_FORMAT otherwise). Counts must be >= 0. */
enum q7_status q7_calib_hist_set(struct q7_calib_hist * h, const int64_t * counts,
                                 int64_t n_bins, float edge_max, float width, int64_t n_edges);

/* For a histogram recorded without its step (ref/histograms.json keeps counts and the last
 * edge only) whose bin count is not Q7_HIST_DEFAULT_BINS, so it grew: the step of the
 * reference's arange edges, guessed as the float nearest edge_max / n_bins (searching 64 ulps
 * each way) whose arange of n_bins + 1 values ends exactly at edge_max; 0 when none does
 * (then linspace edges are used). On the fixtures this reproduces the reference's mse amax
 * bit for bit on 88 of 91 grown yolov7 histograms (linspace edges: 70; the rest one ulp
 * off, same bin). q7_hist_list_load applies it. */
float q7_hist_guess_width(float edge_max, int64_t n_bins);

/* The reference's float32 bin edges (PyTorch 1.13 CPU kernels, AVX2 Vectorized<float>):
 * torch.linspace(0, end, n) and torch.arange(0, n * step, step) with n values. */
void q7_hist_edges_linspace(float end, int64_t n, float * out);
void q7_hist_edges_arange(float step, int64_t n, float * out);

/* ---- amax from a histogram ---- */

struct q7_amax_params {
    int num_bits;      /* 8 */
    int is_unsigned;   /* 0: entropy re-bins into 1 << (num_bits - 1 + unsigned) levels */
    int start_bin;     /* 128: first candidate of entropy and mse */
    int stride;        /* 1 */
    double percentile; /* 99.99 (compute_amax's default) */
};
struct q7_amax_params q7_amax_params_default(void);

/* All take counts (n_bins values >= 0) and the histogram's edges (n_edges values, normally
 * n_bins + 1; see q7_calib_hist). Errors: Q7_ERR_ARG for bad parameters or no candidate
 * (fewer bins than start_bin), Q7_ERR_OOM.
 *
 * entropy: _compute_amax_entropy: bins[0] = bins[1]; for i in start_bin..n_bins (step
 *   stride), KL(reference || 128-level re-binning of bins[:i]) with scipy.stats.entropy;
 *   the last minimum wins; amax = edges[i]. Fast: every candidate from running sums, then
 *   the reference's exact float64 computation (numpy pairwise sums, libm log) on the
 *   candidates near the minimum only.
 * mse: _compute_amax_mse: centers = (edges[1:] + edges[:-1]) / 2 and, per candidate center
 *   from start_bin, mean((fake_quant(centers) - centers)^2 * counts) in float32 with
 *   PyTorch's CPU summation order; the first minimum wins; amax = that center.
 * percentile: _compute_amax_percentile: cdf = cumsum(counts / total) in float64,
 *   idx = searchsorted(cdf, p / 100); amax = edges[idx]. */
enum q7_status q7_amax_entropy(const int64_t * counts, int64_t n_bins, const float * edges,
                               int64_t n_edges, const struct q7_amax_params * p, float * amax);
enum q7_status q7_amax_mse(const int64_t * counts, int64_t n_bins, const float * edges,
                           int64_t n_edges, const struct q7_amax_params * p, float * amax);
enum q7_status q7_amax_percentile(const int64_t * counts, int64_t n_bins, const float * edges,
                                  int64_t n_edges, double percentile, float * amax);

/* The reference's divergence of every entropy candidate (out[k] for candidate
 * start_bin + k * stride; *n_out of them, at most n_cap), computed the slow exact way.
 * For plots and tests: O(n_bins^2). */
enum q7_status q7_amax_entropy_divergences(const int64_t * counts, int64_t n_bins,
                                           const struct q7_amax_params * p, double * out,
                                           int64_t n_cap, int64_t * n_out);

/* amax of a histogram calibrator by method (entropy, mse or percentile with p->percentile;
 * Q7_ERR_ARG for max or an empty histogram). p may be NULL (defaults). */
enum q7_status q7_amax_from_hist(const struct q7_calib_hist * h, enum q7_calib_method method,
                                 const struct q7_amax_params * p, float * amax);
/* amax of a max calibrator: copies min(n, cap) values to out, *n_out = n. Q7_ERR_ARG when it
 * has collected nothing. */
enum q7_status q7_amax_max(const struct q7_calib_max * c, float * out, int64_t cap,
                           int64_t * n_out);

/* ---- files ---- */

/* A list of named histograms, as ref/histograms.json holds them:
 *   {"<quantizer name>": {"hist": [counts], "edge_max": float, "num_bins": int}, ...}
 * q7 adds "width" and "num_edges" for a histogram that has grown, so that its edges (and
 * every amax) reload bit for bit; files without them load with linspace edges. */
struct q7_hist_list {
    int n;
    char ** names;
    struct q7_calib_hist ** hists;
    float * max; /* per entry: the calibration's max |x| ("max", written by q7), -1 if absent */
};
/* Loads every entry; the caller frees with q7_hist_list_free. Errors: Q7_ERR_IO,
 * Q7_ERR_FORMAT (with the entry name), Q7_ERR_LIMIT (file > 1 GiB or too many bins). */
enum q7_status q7_hist_list_load(const char * path, struct q7_hist_list * out);
void q7_hist_list_free(struct q7_hist_list * l);
/* Index of `name`, or -1. */
int q7_hist_list_find(const struct q7_hist_list * l, const char * name);
/* Writes n histograms atomically (q7_file_write_atomic). Histograms with no data are
 * skipped. max (may be NULL) holds each quantizer's max |x| from its MaxCalibrator, written
 * as "max" where >= 0: with it a reloaded list gives the max method too, which a histogram
 * alone cannot (its last edge is not the maximum once it has grown). */
enum q7_status q7_hist_save_json(const char * path, int n, const char * const * names,
                                 const struct q7_calib_hist * const * hists, const float * max);

/* An SVG plot of one histogram: counts on a log scale against |x|, one labeled vertical line
 * per amax (labels[i] at amax[i], e.g. "entropy 4.48"), title on top. Written atomically. */
enum q7_status q7_hist_plot_svg(const char * path, const char * title,
                                const struct q7_calib_hist * h, int n_marks,
                                const char * const * labels, const float * amax);

#ifdef __cplusplus
}
#endif
#endif
