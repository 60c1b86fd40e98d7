/* CUDA executor internals shared by exec_cuda.c (lifecycle, plans, runs, hooks),
 * exec_cuda_params.c (weights on the device, fake quantization) and backend_cuda.c (the op
 * dispatch). Not installed; needs the CUDA toolkit's headers. */
#ifndef Q7_EXEC_CUDA_IMPL_H
#define Q7_EXEC_CUDA_IMPL_H

#include "engine/cuda_plan.h"
#include "engine/exec_cuda.h"
#include "engine/plan.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/cuda_check.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

/* A node's parameters on the device. */
struct q7_cuda_node_args {
    const void * w;      /* conv: weights in the GEMM input type; implicit: the vector */
    const float * b;     /* conv: bias (NULL: none) */
    const float * alpha; /* batchnorm: x * alpha[c] + shift[c] */
    const float * shift;
    float in_scale; /* conv, max pool: input fake-quant 127/amax, 0 = off, < 0: zeros */
};

/* Where a node's parameters live in the executor's parameter block. */
struct q7_cuda_node_params {
    size_t w_off, w_bytes; /* conv weights / implicit vector / bn alpha */
    size_t b_off, b_bytes; /* conv bias / bn shift */
    float in_scale;
    float * w_amax; /* host copy of the weight amax in use (out_ch), NULL: none */
};

struct q7_cuda_exec {
    struct q7_graph * g; /* NULL: single-node context */
    struct q7_cuda_params params;
    enum q7_dtype gemm_in; /* F32, or F16 in FP16 mode */
    enum q7_dtype act_type;
    cudaStream_t stream;
    cublasHandle_t blas;

    /* plan */
    struct q7_plan plan;
    int64_t pn, ph, pw;          /* size the views below were made for; pn == 0: none */
    uint8_t * root_f16;          /* per node id */
    struct q7_cuda_view * views; /* per node id (live, non-detect nodes) */
    int64_t rows, no;            /* detect output per image */

    /* device memory */
    uint8_t * d_params; /* weights, biases, bn coefficients, implicit vectors */
    size_t params_bytes;
    struct q7_cuda_node_params * np; /* per node id */
    uint8_t * d_arena;
    size_t arena_cap;
    uint8_t * d_ws; /* conv workspace */
    size_t ws_cap;
    uint8_t * d_stage;             /* uploaded batch (bytes or FP32) */
    uint8_t * h_stage;             /* pinned */
    size_t stage_cap, h_stage_cap; /* bytes */
    float * d_out;                 /* detect output */
    float * h_out;                 /* pinned */
    size_t out_cap, h_out_cap;     /* bytes */
    unsigned int * d_scratch;      /* abs-max results (2 words) */
    unsigned long long * d_counts; /* histogram counts */
    size_t counts_bytes;

    /* timings */
    cudaEvent_t * ev;      /* profile: start/end per node (2 * n_nodes) */
    cudaEvent_t ev_run[4]; /* whole run: before the upload, after the download; the network
                            * alone: after the input is normalized, before the download */
    double * seconds;
    double last_ms, last_net_ms;

    /* hook */
    q7_cuda_hook hook;
    void * hook_user;
    int hook_host;
    float * h_hook;      /* FP32 host copy of a node's output */
    uint16_t * h_hook16; /* FP16 staging for it */
    size_t h_hook_bytes, h_hook16_bytes;

    /* a submitted batch */
    int in_flight;
    float * user_out;
    size_t user_out_count;
};

/* Makes the executor's device current on this thread. */
enum q7_status q7_cuda_exec_enter(struct q7_cuda_exec * e);

/* Grows the conv workspace to at least `bytes`. */
enum q7_status q7_cuda_exec_reserve_ws(struct q7_cuda_exec * e, size_t bytes);

/* Runs one node on the executor's stream: xs[k] the inputs' views, y the output's (unused for
 * detect), a the node's device parameters, out/rows the detect output (device). */
enum q7_status q7_cuda_node_exec(struct q7_cuda_exec * e, const struct q7_node * nd,
                                 const struct q7_cuda_view * xs, const struct q7_cuda_view * y,
                                 const struct q7_cuda_node_args * a, float * out, int64_t rows);

/* Workspace bytes node nd needs for input x and output y (0 for ops without one). Conv plans
 * assume input fake-quant on (im2col), which needs the most, so that switching quantization on
 * never needs a new allocation. */
enum q7_status q7_cuda_node_workspace(const struct q7_cuda_exec * e, const struct q7_node * nd,
                                      const struct q7_cuda_view * x, const struct q7_cuda_view * y,
                                      size_t * bytes);

/* ---- parameters (exec_cuda_params.c) ---- */

/* Lays out and uploads every live node's parameters (weights converted to the GEMM type). */
enum q7_status q7_cuda_params_upload(struct q7_cuda_exec * e);
/* The device parameters of node id for q7_cuda_node_exec. */
struct q7_cuda_node_args q7_cuda_node_args_of(const struct q7_cuda_exec * e, int id);
/* Host: conv weights (out_ch x per_ch) fake-quantized with amax (NULL: as they are) and
 * converted to `type` (F32 or F16) into dst. */
enum q7_status q7_cuda_conv_weights_host(const float * w, int64_t out_ch, int64_t per_ch,
                                         const float * amax, enum q7_dtype type, void * dst);

#endif
