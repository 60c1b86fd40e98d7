/* The convolution epilogue on the device: bias + activation, FP32 or FP16 in (the GEMM's
 * output), FP32 or FP16 out, in place or not. A block row handles one (image, channel) plane,
 * so the bias is read once per row; each thread takes 8 consecutive pixels with vector loads
 * and stores when both views allow (aligned8), else one pixel at a time. Grid-stride loops
 * on all three axes. */
#include "kernels/cuda/bias_act.cuh"
#include "kernels/cuda/common.cuh"

using namespace q7c;

template <bool VEC>
static __global__ void bias_act_kernel(dview src, dview y, const float * bias, int kind,
                                       float slope)
{
    const int64_t step = VEC ? 8 : 1;
    for (int64_t b = blockIdx.z; b < y.n; b += gridDim.z)
        for (int64_t c = blockIdx.y; c < y.c; c += gridDim.y) {
            const float add = bias ? bias[c] : 0.0f;
            const int64_t s0 = b * src.bs + c * src.hw, y0 = b * y.bs + c * y.hw;
            for (int64_t p = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * step; p < y.hw;
                 p += (int64_t)gridDim.x * blockDim.x * step) {
                if (VEC) {
                    float v[8];
                    load8(src, s0 + p, v);
                    for (int j = 0; j < 8; j++)
                        v[j] = act_apply(bias ? __fadd_rn(v[j], add) : v[j], kind, slope);
                    store8(y, y0 + p, v);
                } else {
                    float v = load(src, s0 + p);
                    if (bias)
                        v = __fadd_rn(v, add);
                    store(y, y0 + p, act_apply(v, kind, slope));
                }
            }
        }
}

enum q7_status q7_cuda_bias_act(cudaStream_t s, const struct q7_cuda_view * src, const float * bias,
                                struct q7_act_params act, const struct q7_cuda_view * y)
{
    if (numel(y) == 0)
        return Q7_OK;
    const int64_t hw = y->h * y->w;
    const dview sv = make_dview(src), yv = make_dview(y);
    const bool vec = aligned8(sv) && aligned8(yv);
    /* vec: about 2 groups of 8 per thread; else about 8 pixels */
    const dim3 grid = row_grid(vec ? row_blocks(hw / 8, 2) : row_blocks(hw, 8), y->c, y->n);
    void (*kernel)(dview, dview, const float *, int, float) =
        vec ? bias_act_kernel<true> : bias_act_kernel<false>;
    Q7C_LAUNCH(kernel, grid, THREADS, 0, s, sv, yv, bias, (int)act.kind, act.slope);
    return Q7_CUDA_LAUNCHED("bias_act");
}
