/* N-ary add on the device: y = ((x0 + x1) + x2) + ..., left to right in FP32 (up to
 * Q7_CUDA_ADD_MAX inputs per launch; more are added in further launches onto y). y may be
 * one of the first Q7_CUDA_ADD_MAX inputs (the same view). */
#ifndef Q7_CUDA_ADD_CUH
#define Q7_CUDA_ADD_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_CUDA_ADD_MAX 8
enum q7_status q7_cuda_add(cudaStream_t s, const struct q7_cuda_view * xs, int n_inputs,
                           const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
