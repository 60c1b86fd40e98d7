/* QDQ insertion: fake-INT8 quantizers on the convolutions of a (fused) graph, with
 * pytorch-quantization's names, and calibration of those quantizers. */
#ifndef Q7_QDQ_H
#define Q7_QDQ_H

#include "graph/graph.h"
#include "quant/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

enum q7_qdq_mode {
    /* The seed's placement (quant_modules' default map): every Conv2d gets a per-tensor input
     * quantizer and a per-output-channel weight quantizer; pools, upsample and concat run
     * unquantized. */
    Q7_QDQ_SEED = 0,
    /* TensorRT-friendly placement (NVIDIA's yolov7 QAT rules): as SEED, plus an input
     * quantizer on every max pool (QuantMaxPool2d), and the quantizers that read a concat's
     * inputs share the scale of the quantizer that reads its output, so that TensorRT can
     * fuse the concat without requantizing. */
    Q7_QDQ_TRT,
};

/* The quantizers of one graph; owns them. */
struct q7_qdq {
    int n;
    struct q7_quantizer ** q;  /* all quantizers, in graph order (input, weight, ...) */
    int * leader;              /* per quantizer: index of the one whose amax it shares, or -1 */
    struct q7_graph * g;
    enum q7_qdq_mode mode;
};

/* "seed" or "trt" → mode; Q7_ERR_ARG otherwise. */
enum q7_status q7_qdq_mode_parse(const char * s, enum q7_qdq_mode * out);

/* Attaches quantizers to every conv of `g` (node->in_quant, node->w_quant; TRT also pools)
 * named
 * "<module>._input_quantizer" / "<module>._weight_quantizer" ("model.0.conv._input_quantizer").
 * Quantizers start enabled and uncalibrated (no effect until amax is set). Free with
 * q7_qdq_free, which detaches them. */
enum q7_status q7_qdq_insert(struct q7_graph * g, enum q7_qdq_mode mode, struct q7_qdq ** out);
void q7_qdq_free(struct q7_qdq * qdq);

/* Finds a quantizer by name, or NULL. */
struct q7_quantizer * q7_qdq_find(const struct q7_qdq * qdq, const char * name);

/* Weight quantizers: amax = max |w| per output channel (MaxCalibrator on the weights). */
enum q7_status q7_qdq_calib_weights(struct q7_qdq * qdq);

/* Starts calibration of the input quantizers (histogram + max collectors, data unquantized)
 * or ends it. */
void q7_qdq_set_calibrating(struct q7_qdq * qdq, int calibrating);

/* The calibrating input quantizers of the nodes that read node `id`'s output (convs, and
 * pools in the TRT placement), one at a time in graph order: the first reader at node index
 * `from` or later; returns its node index and sets *q, or -1 when there is none. Walk them
 * with from = id + 1, then the returned index + 1. */
int q7_qdq_next_reader(const struct q7_qdq * qdq, int id, int from, struct q7_quantizer ** q);

/* Feeds the output of node `id` (an NCHW view, all images of the batch) to the input
 * quantizers of every conv that reads it. `scratch` must hold the view's elements when the
 * view is a channel slice (a contiguous copy is made there). */
enum q7_status q7_qdq_collect_node(struct q7_qdq * qdq, int id, const float * data, int64_t n,
                                   int64_t c, int64_t hw, int64_t batch_stride, float * scratch);

/* Sets every input quantizer's amax by `method` from its calibrators (weights keep max). */
enum q7_status q7_qdq_compute_amax(struct q7_qdq * qdq, enum q7_calib_method method,
                                   const struct q7_amax_params * p);

/* The same by name ("max", "entropy", "mse", "percentile", "percentile-99.9"); *seconds
 * (may be NULL) receives the time the amax computation took. */
enum q7_status q7_qdq_compute_amax_named(struct q7_qdq * qdq, const char * method,
                                         double * seconds);

/* Enables (1) or disables (0) all quantizers, or those whose name matches `regex`. */
enum q7_status q7_qdq_set_enabled(struct q7_qdq * qdq, const char * regex, int enabled,
                                  int * n_matched);

#ifdef __cplusplus
}
#endif
#endif
