/* Nearest upsampling by an integer factor on the device (q7_ref_upsample_nearest). */
#ifndef Q7_CUDA_UPSAMPLE_CUH
#define Q7_CUDA_UPSAMPLE_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_upsample_nearest(cudaStream_t s, const struct q7_cuda_view * x, int scale,
                                        const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
