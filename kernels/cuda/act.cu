/* Activation on the device. */
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/common.cuh"

using namespace q7c;

static __global__ void act_kernel(dview x, dview y, int64_t total, int kind, float slope)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        store(y, offset_of(y, i), act_apply(load(x, offset_of(x, i)), kind, slope));
}

enum q7_status q7_cuda_act(cudaStream_t s, const struct q7_cuda_view * x, struct q7_act_params act,
                           const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(act_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y), total,
               (int)act.kind, act.slope);
    return Q7_CUDA_LAUNCHED("act");
}
