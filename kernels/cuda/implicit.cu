/* ImplicitA / ImplicitM on the device. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/implicit.cuh"

using namespace q7c;

static __global__ void implicit_kernel(dview x, dview y, int64_t total, const float * v, int mul)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = (i / y.hw) % y.c;
        const float a = load(x, offset_of(x, i));
        store(y, offset_of(y, i), mul ? __fmul_rn(a, v[c]) : __fadd_rn(a, v[c]));
    }
}

static enum q7_status launch(cudaStream_t s, const struct q7_cuda_view * x, const float * v,
                             const struct q7_cuda_view * y, int mul)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(implicit_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y),
               total, v, mul);
    return Q7_CUDA_LAUNCHED("implicit");
}

enum q7_status q7_cuda_implicit_add(cudaStream_t s, const struct q7_cuda_view * x, const float * v,
                                    const struct q7_cuda_view * y)
{
    return launch(s, x, v, y, 0);
}

enum q7_status q7_cuda_implicit_mul(cudaStream_t s, const struct q7_cuda_view * x, const float * v,
                                    const struct q7_cuda_view * y)
{
    return launch(s, x, v, y, 1);
}
