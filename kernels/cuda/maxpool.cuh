/* Max pooling on the device, q7_ref_maxpool's semantics (padded cells never win, NaN
 * wins, ceil-mode windows clipped). Output size from y; x and y must not overlap.
 * fq_scale != 0 fake-quantizes the output (a pool input quantizer, --qdq trt: fake-quant
 * commutes with max): 127/amax, negative for amax <= 2^-24 (zeros), 0 = off. */
#ifndef Q7_CUDA_MAXPOOL_CUH
#define Q7_CUDA_MAXPOOL_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_maxpool(cudaStream_t s, const struct q7_cuda_view * x,
                               const struct q7_pool_params * p, float fq_scale,
                               const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
