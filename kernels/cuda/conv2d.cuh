/* Convolution on the device through cuBLAS (see conv_plan.h for the GEMM layout):
 * im2col (with the input fake-quant) or x directly, one strided-batched GEMM per group and
 * chunk of images with FP32 accumulation (tensor cores for FP16 inputs), then bias +
 * activation in the epilogue kernel. Matches q7_ref_conv2d within FP32 (FP16) rounding. */
#ifndef Q7_CUDA_CONV2D_CUH
#define Q7_CUDA_CONV2D_CUH

#include "kernels/cuda/conv_plan.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* weight: device (out_ch, in_ch/groups * kh * kw) in plan->gemm_in's type (already
 * fake-quantized per output channel when the weights are quantized); bias: device FP32
 * out_ch values or NULL; in_scale: input fake-quant 127/amax, 0 = off (must agree with the
 * plan's fake_quant); ws: device workspace of plan->ws_bytes, aligned to Q7_CUDA_WS_ALIGN.
 * `blas` must already be bound to stream s (cublasSetStream). x and y must not overlap. */
enum q7_status q7_cuda_conv2d(cudaStream_t s, cublasHandle_t blas, const struct q7_cuda_view * x,
                              const void * weight, const float * bias,
                              const struct q7_conv_params * p, float in_scale,
                              const struct q7_cuda_view * y, const struct q7_cuda_conv_plan * plan,
                              void * ws);

#ifdef __cplusplus
}
#endif
#endif
