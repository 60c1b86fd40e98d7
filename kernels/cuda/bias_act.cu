/* The convolution epilogue on the device: bias + activation, FP32 in, FP32 or FP16 out. */
#include "kernels/cuda/bias_act.cuh"
#include "kernels/cuda/common.cuh"

using namespace q7c;

static __global__ void bias_act_kernel(dview src, dview y, int64_t total, const float * bias,
                                       int kind, float slope)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = load(src, offset_of(src, i));
        if (bias)
            v = __fadd_rn(v, bias[(i / y.hw) % y.c]);
        store(y, offset_of(y, i), act_apply(v, kind, slope));
    }
}

enum q7_status q7_cuda_bias_act(cudaStream_t s, const struct q7_cuda_view * src, const float * bias,
                                struct q7_act_params act, const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(bias_act_kernel, blocks_for(total), THREADS, 0, s, make_dview(src), make_dview(y),
               total, bias, (int)act.kind, act.slope);
    return Q7_CUDA_LAUNCHED("bias_act");
}
