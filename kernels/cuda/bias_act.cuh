/* The convolution epilogue on the device: y = act(src + bias[c]) with src an FP32 view
 * (the GEMM output: y itself, or a workspace), bias a device array of y->c floats or NULL.
 * src and y have the same shape; they may be the same view. */
#ifndef Q7_CUDA_BIAS_ACT_CUH
#define Q7_CUDA_BIAS_ACT_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_bias_act(cudaStream_t s, const struct q7_cuda_view * src, const float * bias,
                                struct q7_act_params act, const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
