/* Space to depth on the device (q7_ref_reorg: yolov7 ReOrg). */
#ifndef Q7_CUDA_REORG_CUH
#define Q7_CUDA_REORG_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_reorg(cudaStream_t s, const struct q7_cuda_view * x,
                             const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
