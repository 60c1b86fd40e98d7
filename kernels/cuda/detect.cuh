/* Detect / IDetect decode on the device (q7_ref_detect), always in FP32: xs[l] is level l's
 * conv output (FP32 or FP16 storage), out is (N, rows, no) contiguous FP32 in device memory. */
#ifndef Q7_CUDA_DETECT_CUH
#define Q7_CUDA_DETECT_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_detect(cudaStream_t s, const struct q7_cuda_view * xs,
                              const struct q7_detect_params * p, float * out, int64_t rows);

#ifdef __cplusplus
}
#endif
#endif
