/* Activation on the device (kernels/ref q7_ref_act): y = act(x), FP32 math; y may be x. */
#ifndef Q7_CUDA_ACT_CUH
#define Q7_CUDA_ACT_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_act(cudaStream_t s, const struct q7_cuda_view * x, struct q7_act_params act,
                           const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
