/* uint8 batches to network input on the device: y = (float)x / 255.0f (as yolov7
 * test.py and q7_exec_run_u8), x contiguous n x c x h x w bytes in device memory. */
#ifndef Q7_CUDA_NORMALIZE_CUH
#define Q7_CUDA_NORMALIZE_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_normalize_u8(cudaStream_t s, const uint8_t * x,
                                    const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
