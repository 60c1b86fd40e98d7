/* Quantizer descriptors (pytorch-quantization's TensorQuantizer as the seed uses it), fake
 * quantization of tensors and weights, and amax tables (JSON, TensorRT calibration cache).
 *
 * A quantizer is malloc'ed by q7_quant_create and freed by q7_quant_free; graph nodes only
 * point to quantizers (node->in_quant, node->w_quant), so whoever creates them (the engine,
 * a tool or a test) keeps the list and frees it after the graph is done with them. */
#ifndef Q7_QUANT_H
#define Q7_QUANT_H

#include "graph/base.h"
#include "quant/calib.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which calibrators a quantizer feeds while calibrating (a bitmask: one calibration pass can
 * collect both, so that every method's amax comes from the same data). */
enum {
    Q7_CALIBRATOR_NONE = 0,
    Q7_CALIBRATOR_MAX = 1,  /* MaxCalibrator: max |x| (per channel for axis 0) */
    Q7_CALIBRATOR_HIST = 2, /* HistogramCalibrator: per tensor only */
};

struct q7_quantizer {
    char * name;      /* "model.0.conv._input_quantizer", owned */
    int num_bits;     /* 8 */
    int is_unsigned;  /* 0 */
    int narrow_range; /* 1: [-127, 127] */
    int axis;         /* -1: per tensor; 0: per output channel (weights) */
    int n_amax;       /* 0: not calibrated; 1 per tensor; out_ch per channel */
    float * amax;     /* n_amax values, owned */
    int enabled;      /* fake-quantize when enabled, not calibrating, and calibrated */
    int calibrating;  /* collect statistics; data passes through unquantized */
    int calibrators;  /* Q7_CALIBRATOR_* bits */
    struct q7_calib_max * calib_max;   /* owned; NULL unless Q7_CALIBRATOR_MAX */
    struct q7_calib_hist * calib_hist; /* owned; NULL unless Q7_CALIBRATOR_HIST */
};

struct q7_quant_params {
    int num_bits, is_unsigned, narrow_range, axis;
    int calibrators;   /* Q7_CALIBRATOR_* bits */
    int64_t num_bins;  /* histogram bins (2048) */
};
/* The seed's descriptors: an input quantizer is per tensor (calibrators: MAX | HIST, so that
 * every method can be computed after one pass); a weight quantizer is per output channel
 * with max calibration (QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL). */
struct q7_quant_params q7_quant_params_input(void);
struct q7_quant_params q7_quant_params_weight(void);

/* Creates an enabled, uncalibrated quantizer. NULL on OOM or bad params (message set). */
struct q7_quantizer * q7_quant_create(const char * name, const struct q7_quant_params * p);
void q7_quant_free(struct q7_quantizer * q);

/* Copies n amax values (1 for per tensor, the channel count for axis 0). Values must be
 * finite and >= 0: Q7_ERR_ARG. */
enum q7_status q7_quant_set_amax(struct q7_quantizer * q, const float * amax, int n);
void q7_quant_clear_amax(struct q7_quantizer * q);
void q7_quant_set_enabled(struct q7_quantizer * q, int enabled);
void q7_quant_set_calibrating(struct q7_quantizer * q, int calibrating);

/* Enables or disables every quantizer whose name equals `regex` or matches it from its start
 * (the seed's quantization_ignore_match: `path in policy or re.match(item, path)`), with
 * POSIX extended regular expressions (no \d: write [0-9]). *n_matched may be NULL.
 * Q7_ERR_ARG for a bad expression. */
enum q7_status q7_quant_set_enabled_matching(struct q7_quantizer ** qs, int n,
                                             const char * regex, int enabled, int * n_matched);

/* The input fake-quant an executor applies for q (struct q7_conv_extra.in_scale): *on = 1
 * for an enabled, calibrated, per-tensor quantizer that is not calibrating, and the result
 * is 127 / amax, or 0 when amax <= 2^-24 (the reference's rule: everything becomes 0).
 * *on = 0 and 0 otherwise (NULL included). `on` may be NULL. */
float q7_quant_input_scale(const struct q7_quantizer * q, int * on);
/* Whether q would change data now (enabled, calibrated, not calibrating). */
int q7_quant_is_active(const struct q7_quantizer * q);

/* y = fake_tensor_quant(x, amax) as the quantizer is set (y may equal x). Per tensor: n
 * values; axis 0: x is (n_amax, n / n_amax). Uses kernels/ref/fake_quant.h for 8-bit signed
 * narrow range; amax <= 2^-24 quantizes to 0 as the reference does. Q7_ERR_ARG when q is not
 * calibrated or n does not split into its channels. Does not look at enabled/calibrating. */
enum q7_status q7_quant_fake(const struct q7_quantizer * q, const float * x, float * y,
                             int64_t n);
/* Per-output-channel fake quantization of conv weights (out_ch, per_ch) with amax[out_ch]
 * (8-bit signed narrow range). out may equal w. */
void q7_quant_weights(const float * w, int64_t out_ch, int64_t per_ch, const float * amax,
                      float * out);

/* While calibrating: feeds x, viewed as (n_channels, per_channel), to the quantizer's
 * calibrators (per tensor: the whole x; axis 0: per channel max). No-op when not
 * calibrating. Errors from the calibrators. */
enum q7_status q7_quant_collect(struct q7_quantizer * q, const float * x, int64_t n_channels,
                                int64_t per_channel);
/* Sets amax from the calibrators, as TensorQuantizer.load_calib_amax: a quantizer with a max
 * calibrator and no histogram (weights) takes max whatever the method; otherwise max takes
 * the max calibrator and entropy/mse/percentile the histogram (p may be NULL: defaults;
 * p->percentile for percentile). Q7_ERR_ARG when the needed calibrator is missing or
 * empty. */
enum q7_status q7_quant_load_calib_amax(struct q7_quantizer * q, enum q7_calib_method method,
                                        const struct q7_amax_params * p);

/* ---- amax tables ---- */

struct q7_amax_entry {
    char * name;
    int n;          /* 1: per tensor; > 1: per channel (written as an array) */
    int is_array;   /* written as an array even when n == 1 */
    float * values;
};
struct q7_amax_table {
    int n, cap;
    struct q7_amax_entry * entries;
};

struct q7_amax_table * q7_amax_table_create(void);
void q7_amax_table_free(struct q7_amax_table * t);
/* Adds or replaces `name`. is_array: write as a list even for one value. */
enum q7_status q7_amax_table_set(struct q7_amax_table * t, const char * name,
                                 const float * values, int n, int is_array);
/* The entry named `name`, or NULL. */
const struct q7_amax_entry * q7_amax_table_find(const struct q7_amax_table * t,
                                                const char * name);

/* Loads an amax table: either a single table {"name": amax | [amax, ...], ...} or the per-
 * method file of ref/amax.json {"max": {...}, "entropy": {...}, ...}, from which `method`
 * ("mse", "percentile-99.99") is taken. method may be NULL for a single table; for a
 * per-method file it is required (Q7_ERR_ARG listing the methods there), and Q7_ERR_NOT_FOUND
 * when absent. A single table loads whatever method is asked. *out is freed by the caller. */
enum q7_status q7_amax_table_load(const char * path, const char * method,
                                  struct q7_amax_table ** out);
/* Writes one table, atomically, values as "%.9g" (round-trips float32). */
enum q7_status q7_amax_table_save(const char * path, const struct q7_amax_table * t);
/* Writes the per-method layout of ref/amax.json: {"<methods[i]>": table i, ...}. */
enum q7_status q7_amax_table_save_methods(const char * path, int n,
                                          const char * const * methods,
                                          const struct q7_amax_table * const * tables);
/* A table of the quantizers' current amax (uncalibrated ones left out; weight quantizers as
 * arrays). */
enum q7_status q7_amax_table_from_quantizers(struct q7_quantizer * const * qs, int n,
                                             struct q7_amax_table ** out);
/* Sets each quantizer's amax from the table entry of its name; quantizers without an entry
 * are left alone and counted in *n_missing (may be NULL). Q7_ERR_FORMAT when an entry's
 * value count does not fit the quantizer (1 for per tensor; any count for axis 0). */
enum q7_status q7_amax_table_apply(const struct q7_amax_table * t, struct q7_quantizer ** qs,
                                   int n, int * n_missing);

/* Writes a TensorRT calibration cache: "TRT-<trt_version>-EntropyCalibration2" then one
 * "<tensor>: <8 hex digits>" line per per-tensor entry, the hex being the big-endian bits of
 * the float32 scale amax / 127. trt_version 0 means 8601. tensor_name maps a quantizer name
 * to the network tensor it quantizes (NULL return: skip the entry); NULL uses the quantizer
 * names. Per-channel entries are skipped (TensorRT calibrates activations only). */
enum q7_status q7_amax_table_write_trt_cache(const char * path, const struct q7_amax_table * t,
                                             int trt_version,
                                             const char * (*tensor_name)(const char * quantizer,
                                                                         void * user),
                                             void * user);

#ifdef __cplusplus
}
#endif
#endif
