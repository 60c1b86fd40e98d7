/* The CUDA executor: runs a graph on one GPU, FP32 or FP16, with per-conv fake quantization,
 * per-node timings and hooks that see each node's output (calibration, layer dumps).
 *
 * Design (DESIGN.md "engine/"; kernels in kernels/cuda/, one op per .cu/.cuh pair):
 * - Memory: one device arena laid out by engine/plan.h (liveness sharing, concat inputs
 *   written straight into their channel slice of the concat's buffer). Plans are made for one
 *   input size and remade when it changes; the arena and workspaces only grow.
 * - One stream and one cuBLAS handle per executor. A uint8 batch is copied into a pinned host
 *   buffer, uploaded asynchronously as bytes and normalized (/255) on the GPU; the detect
 *   output comes back through a pinned buffer. q7_cuda_exec_submit_u8 returns while the GPU
 *   works (the caller can prepare the next batch), q7_cuda_exec_wait collects the result.
 * - Convolution: cuBLAS GEMMs with FP32 accumulation (1x1 stride-1 convs read x directly,
 *   others go through im2col on the device), bias + activation fused into one epilogue
 *   kernel, outputs written through the plan's views (GEMM ldc and batch strides), so concat
 *   costs nothing.
 * - Precision. fp16 = 0: FP32 everywhere (cuBLAS CUBLAS_COMPUTE_32F, no TF32): matches the CPU
 *   within FP32 rounding. fp16 = 1: activations are stored in FP16 end to end (half the
 *   memory traffic of every element-wise kernel and of im2col), weights are converted to FP16
 *   once, GEMMs run on tensor cores with FP32 accumulation and FP32 output, and the epilogue
 *   (bias, activation) runs in FP32 before rounding to FP16 once. Every non-GEMM kernel
 *   computes in FP32. The tensors that feed the detect node (the head convs / IDetect's
 *   ImplicitM) stay FP32, so the decode (sigmoid, grid, anchors) is FP32 as on the CPU.
 * - Fake quantization (INT8 QDQ simulation): a conv's input is fake-quantized per tensor as
 *   im2col reads it (scale 127/amax); its weights are fake-quantized per output channel once,
 *   on the host, whenever their amax is set, and uploaded (converted to FP16 in FP16 mode).
 *   Switchable per conv with q7_cuda_exec_set_conv_quant or from the graph's quantizers with
 *   q7_cuda_exec_refresh_quant.
 * - Errors: every CUDA and cuBLAS call goes through one checker (kernels/cuda/cuda_check.h):
 *   a failure returns Q7_ERR_CUDA with the call, file:line and CUDA's message.
 *
 * Threads: an executor is used by one thread at a time. Each call makes the executor's device
 * current on the calling thread (cudaSetDevice).
 *
 * Builds without CUDA (no nvcc) link a stub whose functions return Q7_ERR_UNSUPPORTED
 * ("q7 was built without CUDA"), so that tools can always link. */
#ifndef Q7_EXEC_CUDA_H
#define Q7_EXEC_CUDA_H

#include "graph/graph.h"
#include "kernels/cuda/cuda_view.h"
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_calib_hist;
struct q7_qdq;

struct q7_cuda_params {
    int fp16;              /* 1: FP16 activations and tensor-core GEMMs (see above) */
    int device;            /* CUDA device index */
    int profile;           /* 1: time every node with CUDA events (q7_cuda_exec_node_seconds) */
    size_t conv_workspace; /* bound for a conv's im2col + GEMM workspace; 0: 256 MiB. The
                              chunk of images per GEMM shrinks to fit (at least one image). */
    int im2col_tiled;      /* 1: the shared-memory im2col (kernels/cuda/im2col.cuh); 0: the
                              per-row one, the default (measured faster so far) */
};
struct q7_cuda_params q7_cuda_params_default(void);

/* Number of CUDA devices and the first one's name ("NVIDIA H100 80GB HBM3, sm_90, 132 SMs,
 * 79 GiB"). No driver or no device is not an error: Q7_OK with *n_devices = 0 and the reason
 * in `name` ("no CUDA device: cudaErrorNoDevice: ..."). Builds without CUDA: Q7_ERR_UNSUPPORTED,
 * *n_devices = 0. name may be NULL. */
enum q7_status q7_cuda_available(int * n_devices, char * name, size_t size);

/* A GPU's peak rates at its maximum clocks: memory GB/s, dense FP16 tensor-core TFLOP/s (FP32
 * accumulation) and FP32 TFLOP/s (an FMA counts 2); 0 where the architecture is not known. */
struct q7_cuda_peaks {
    double mem_gbs;
    double fp16_tflops, fp32_tflops;
};
/* Device `device`'s peak rates, from its attributes (SMs, clocks, bus width). */
enum q7_status q7_cuda_device_peaks(int device, struct q7_cuda_peaks * out);
/* The same from the attributes themselves (engine/cuda_peaks.c, also without CUDA): memory
 * bandwidth with 2 transfers per memory clock over bus_bits; FLOP per SM per clock by
 * architecture (sm_70 .. sm_90; 0 where not known). */
struct q7_cuda_peaks q7_cuda_peaks_of(int major, int minor, int sms, double sm_clock_khz,
                                      double mem_clock_khz, int bus_bits);

struct q7_cuda_exec;

/* Creates an executor for `g` on device p->device (p may be NULL: defaults): stream, cuBLAS
 * handle, weights on the device (FP16 copies in FP16 mode). The graph must outlive the
 * executor and keep its structure; after changing quantizers call q7_cuda_exec_refresh_quant.
 * g == NULL gives a context that only runs single nodes (q7_cuda_exec_node_run). Errors:
 * Q7_ERR_ARG (no input/output), Q7_ERR_UNSUPPORTED (an op without a CUDA kernel, weights
 * without data), Q7_ERR_CUDA, Q7_ERR_OOM. Free with q7_cuda_exec_free (NULL is fine). */
enum q7_status q7_cuda_exec_create(struct q7_graph * g, const struct q7_cuda_params * p,
                                   struct q7_cuda_exec ** out);
void q7_cuda_exec_free(struct q7_cuda_exec * e);

/* Rows and fields of the detect output for an input of n x 3 x h x w (per image); plans (and
 * allocates) for that size. */
enum q7_status q7_cuda_exec_output_rows(struct q7_cuda_exec * e, int64_t n, int64_t h, int64_t w,
                                        int64_t * rows, int64_t * no);

/* Runs the network on a uint8 batch (n x 3 x h x w, RGB, letterboxed: divided by 255 on the
 * GPU) or an FP32 batch (already in [0, 1]). out_host receives n x rows x no floats. Blocks
 * until the result is there. */
enum q7_status q7_cuda_exec_run_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n, int64_t h,
                                   int64_t w, float * out_host);
enum q7_status q7_cuda_exec_run(struct q7_cuda_exec * e, const float * x, int64_t n, int64_t h,
                                int64_t w, float * out_host);

/* The same in two halves: submit copies x into the pinned buffer and queues the upload, every
 * node and the download on the executor's stream, and returns; wait blocks until the batch is
 * done and writes out_host (which must stay valid until then). One batch in flight at a time:
 * submitting again before waiting is Q7_ERR_ARG. With a hook set, submit runs synchronously
 * (the hook sees every node as it finishes). wait with nothing in flight returns Q7_OK. */
enum q7_status q7_cuda_exec_submit_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n,
                                      int64_t h, int64_t w, float * out_host);
enum q7_status q7_cuda_exec_wait(struct q7_cuda_exec * e);

/* ---- fake quantization (the lead's quant integration sets these) ---- */

/* Sets conv node `node_id`'s fake quantization: in_scale = 127/amax of its input quantizer
 * (per tensor; 0 = input not quantized; negative: amax <= 2^-24, the conv sees zeros as in
 * the reference), weight_amax = per-output-channel amax of its weight
 * quantizer (out_ch floats, copied; NULL = weights not quantized). Weights are quantized on
 * the host as q7_quant_weights (8-bit, narrow range, amax <= 2^-24 gives 0) and uploaded now.
 * Q7_ERR_ARG for a node that is not a live conv. */
enum q7_status q7_cuda_exec_set_conv_quant(struct q7_cuda_exec * e, int node_id, float in_scale,
                                           const float * weight_amax);
/* Sets every conv from its graph quantizers (node->in_quant / node->w_quant, as the CPU
 * executor's q7_exec_refresh_weights): input scale q7_quant_input_scale(in_quant), -1 for
 * a quantizer whose amax is <= 2^-24, and the same for max pools (--qdq trt);
 * weights quantized when q7_quant_is_active(w_quant) (per-channel amax, or one amax for all
 * channels). */
enum q7_status q7_cuda_exec_refresh_quant(struct q7_cuda_exec * e);

/* ---- hooks: every node's output (calibration, layer dumps) ---- */

/* Called after each executed node (the input node included, the detect node not) with its
 * output on the device (dev: valid until the next node runs; FP16 storage in FP16 mode) and,
 * when the hook was set with want_host, a contiguous FP32 host copy (host: n x c x h x w with
 * batch_stride c*h*w, valid during the call; NULL otherwise). Use dev's shape, not
 * node->out.shape (another executor may have re-inferred the graph's shapes). A status other
 * than Q7_OK stops the run and is returned by it. */
typedef enum q7_status (*q7_cuda_hook)(void * user, struct q7_cuda_exec * e,
                                       const struct q7_node * node, const struct q7_cuda_view * dev,
                                       const struct q7_view * host);
/* NULL hook removes it. A hook makes every run synchronous, node by node. */
void q7_cuda_exec_set_hook(struct q7_cuda_exec * e, q7_cuda_hook hook, void * user, int want_host);

/* Device helpers for hooks (they run on the executor's stream and wait for the result):
 * abs_max: max |x| of a device view (*bad = 1 when it holds NaN or inf; may be NULL).
 * hist_collect: q7_calib_hist_collect on a device view: the max on the device, the plan on the
 *   host (q7_calib_hist_plan), the binning on the device (q7_hist_bin_abs's rule, shared-
 *   memory atomics), q7_calib_hist_add on the host: the same counts and edges as the CPU
 *   collect on the same values. Errors as q7_calib_hist_collect (NaN/inf: Q7_ERR_ARG).
 *   A MaxCalibrator is fed the same way with the scalar: q7_calib_max_collect(c, &amax, 1, 1).
 * read: a contiguous FP32 host copy of a device view (n*c*h*w floats). */
enum q7_status q7_cuda_exec_abs_max(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                    float * amax, int * bad);
enum q7_status q7_cuda_exec_hist_collect(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                         struct q7_calib_hist * h);
enum q7_status q7_cuda_exec_read(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                 float * host);
/* Calibration on the device: feeds node `id`'s output (x, a device view from a hook) to the
 * calibrating input quantizers that read it, as q7_qdq_collect_node does with a host copy:
 * max |x| computed once on the device for their max calibrators, each histogram binned on the
 * device (hist_collect). The same counts, edges and amax as the host path on the same values;
 * nothing but the histogram counts comes back to the host. */
enum q7_status q7_cuda_exec_qdq_collect(struct q7_cuda_exec * e, struct q7_qdq * qdq, int id,
                                        const struct q7_cuda_view * x);

/* ---- timings and memory ---- */

/* Seconds each node took on the GPU in the last run (CUDA events; indexed by node id, 0 for
 * skipped nodes), when created with profile = 1; NULL otherwise. */
const double * q7_cuda_exec_node_seconds(const struct q7_cuda_exec * e);
/* GPU milliseconds of the last run from the upload to the download (events). */
double q7_cuda_exec_last_ms(const struct q7_cuda_exec * e);
/* GPU milliseconds of the last run's network alone: from the normalized input on the device
 * to the raw output on the device, without the upload and download (events). */
double q7_cuda_exec_last_net_ms(const struct q7_cuda_exec * e);
/* Device bytes: activations arena of the current plan, conv workspace, weights. */
size_t q7_cuda_exec_arena_bytes(const struct q7_cuda_exec * e);
size_t q7_cuda_exec_workspace_bytes(const struct q7_cuda_exec * e);
size_t q7_cuda_exec_weight_bytes(const struct q7_cuda_exec * e);
/* 1 when node id contributes to the output. */
int q7_cuda_exec_node_live(const struct q7_cuda_exec * e, int id);

/* ---- single nodes on host data (tests, kernel labs) ---- */

/* Runs node `nd` (its op, parameters and weights; inputs[] ignored) on the device on host
 * views, with the same kernels as the executor: uploads the host memory spanned by each input
 * view and by y (so that a channel-slice view keeps its neighbours), runs, and downloads y's
 * span. In FP16 mode inputs and y are stored as FP16 on the device (converted on the way) and
 * weights as in the executor. extra->in_scale fake-quantizes a conv's input (extra may be
 * NULL); weights are used as given. Detect: y is ignored and detect_out receives
 * (n, rows, no) floats. */
enum q7_status q7_cuda_exec_node_run(struct q7_cuda_exec * e, const struct q7_node * nd,
                                     const struct q7_view * const * xs, const struct q7_view * y,
                                     const struct q7_conv_extra * extra, float * detect_out,
                                     int64_t rows);
/* q7_cuda_exec_hist_collect on a host view (uploaded first, as FP32 whatever the mode). */
enum q7_status q7_cuda_exec_hist_collect_host(struct q7_cuda_exec * e, const struct q7_view * v,
                                              struct q7_calib_hist * h);

#ifdef __cplusplus
}
#endif
#endif
