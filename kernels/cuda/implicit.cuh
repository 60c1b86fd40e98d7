/* ImplicitA / ImplicitM on the device: y = x + v[c] / y = x * v[c] (v: device, x->c
 * floats). y may be x. */
#ifndef Q7_CUDA_IMPLICIT_CUH
#define Q7_CUDA_IMPLICIT_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_implicit_add(cudaStream_t s, const struct q7_cuda_view * x, const float * v,
                                    const struct q7_cuda_view * y);
enum q7_status q7_cuda_implicit_mul(cudaStream_t s, const struct q7_cuda_view * x, const float * v,
                                    const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
