/* The convolution epilogue on the device: bias + activation, FP32 in, FP32 or FP16 out. A
 * block row handles one (image, channel) plane, so the bias is read once per row and each
 * thread walks about 8 of the plane's pixels; grid-stride loops on all three axes. */
#include "kernels/cuda/bias_act.cuh"
#include "kernels/cuda/common.cuh"

using namespace q7c;

static __global__ void bias_act_kernel(dview src, dview y, const float * bias, int kind,
                                       float slope)
{
    for (int64_t b = blockIdx.z; b < y.n; b += gridDim.z)
        for (int64_t c = blockIdx.y; c < y.c; c += gridDim.y) {
            const float add = bias ? bias[c] : 0.0f;
            const int64_t s0 = b * src.bs + c * src.hw, y0 = b * y.bs + c * y.hw;
            for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < y.hw;
                 p += (int64_t)gridDim.x * blockDim.x) {
                float v = load(src, s0 + p);
                if (bias)
                    v = __fadd_rn(v, add);
                store(y, y0 + p, act_apply(v, kind, slope));
            }
        }
}

enum q7_status q7_cuda_bias_act(cudaStream_t s, const struct q7_cuda_view * src, const float * bias,
                                struct q7_act_params act, const struct q7_cuda_view * y)
{
    if (numel(y) == 0)
        return Q7_OK;
    const int64_t hw = y->h * y->w;
    const dim3 grid(row_blocks(hw, 8), (unsigned)(y->c < 65535 ? y->c : 65535),
                    (unsigned)(y->n < 65535 ? y->n : 65535));
    Q7C_LAUNCH(bias_act_kernel, grid, THREADS, 0, s, make_dview(src), make_dview(y), bias,
               (int)act.kind, act.slope);
    return Q7_CUDA_LAUNCHED("bias_act");
}
