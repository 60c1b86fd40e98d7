/* Copies between views on the device, converting FP32 <-> FP16 as the dtypes say (concat
 * inputs that could not be placed in their slice; float input batches). */
#ifndef Q7_CUDA_COPY_CUH
#define Q7_CUDA_COPY_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x and y have the same n, c, h, w; they must not overlap unless they are the same view. */
enum q7_status q7_cuda_copy(cudaStream_t s, const struct q7_cuda_view * x,
                            const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
