/* Calibrating a graph's quantizers on a dataset, and applying an amax method. */
#ifndef Q7_CALIBRATE_H
#define Q7_CALIBRATE_H

#include "engine/exec.h"
#include "eval/evaluate.h"
#include "quant/qdq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU executor as an evaluation runner (e and g must outlive it). */
struct q7_runner q7_runner_cpu(struct q7_exec * e, const struct q7_graph * g);

/* Weights max-calibrated per channel, then one pass of the plain FP32 model over `calib`
 * (batches formed as q7_evaluate forms them with `params`; max_batches > 0: only that many)
 * collecting every input quantizer's histogram and max, as the seed's collect_stats does
 * (every quantizer with a calibrator disabled while collecting). Quantizers are enabled
 * again afterwards; their amax is set by q7_qdq_apply_method. */
enum q7_status q7_calibrate(struct q7_exec * e, struct q7_graph * g, struct q7_qdq * qdq,
                            const struct q7_dataset * calib, const struct q7_eval_params * params,
                            int max_batches, double * seconds);

/* The backend-independent part of q7_calibrate, for executors that feed the quantizers from
 * their own hook (the caller installs it around this call, e.g. the CUDA executor's): weights
 * max-calibrated, every quantizer disabled and collecting, refresh(ctx) so that the network
 * runs in FP32, one pass of `net` over `calib`, quantizers enabled again. *images (may be
 * NULL): images that went through the network. */
enum q7_status q7_calibrate_pass(const struct q7_runner * net, struct q7_qdq * qdq,
                                 enum q7_status (*refresh)(void * ctx), void * ctx,
                                 const struct q7_dataset * calib,
                                 const struct q7_eval_params * params, int max_batches,
                                 int * images);

/* Sets every input quantizer's amax by `method` ("max", "entropy", "mse", "percentile",
 * "percentile-99.9") from the collected statistics and refreshes the executor's
 * fake-quantized weights. *seconds (may be NULL): time of the amax computation. */
enum q7_status q7_qdq_apply_method(struct q7_exec * e, struct q7_qdq * qdq, const char * method,
                                   double * seconds);

#ifdef __cplusplus
}
#endif
#endif
