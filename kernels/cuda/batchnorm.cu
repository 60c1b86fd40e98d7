/* Eval BatchNorm on the device, with the reference's per-channel coefficients and its fused
 * multiply-adds (q7_ref_batchnorm). */
#include "kernels/cuda/batchnorm.cuh"
#include "kernels/cuda/common.cuh"

#include <math.h>

using namespace q7c;

void q7_cuda_bn_coeffs(const float * gamma, const float * beta, const float * mean,
                       const float * var, double eps, int64_t c, float * alpha, float * shift)
{
    for (int64_t k = 0; k < c; k++) {
        const float invstd = 1.0f / sqrtf(var[k] + (float)eps);
        alpha[k] = invstd * (gamma ? gamma[k] : 1.0f);
        shift[k] = fmaf(-mean[k], alpha[k], beta ? beta[k] : 0.0f);
    }
}

static __global__ void bn_kernel(dview x, dview y, int64_t total, const float * alpha,
                                 const float * shift)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t c = (i / y.hw) % y.c;
        const float v = load(x, offset_of(x, i));
        store(y, offset_of(y, i), __fmaf_rn(v, alpha[c], shift[c]));
    }
}

enum q7_status q7_cuda_batchnorm(cudaStream_t s, const struct q7_cuda_view * x, const float * alpha,
                                 const float * shift, const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(bn_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y), total,
               alpha, shift);
    return Q7_CUDA_LAUNCHED("batchnorm");
}
