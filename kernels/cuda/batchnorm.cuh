/* Eval BatchNorm on the device: y = x * alpha[c] + shift[c] (a multiply then an add, as
 * q7_ref_batchnorm), with alpha and shift computed on the host by q7_cuda_bn_coeffs exactly as
 * the reference does. y may be x. */
#ifndef Q7_CUDA_BATCHNORM_CUH
#define Q7_CUDA_BATCHNORM_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Host: alpha = (1 / sqrtf(var + (float)eps)) * gamma, shift = beta - mean * alpha, in FP32
 * (gamma or beta may be NULL: 1 and 0). */
void q7_cuda_bn_coeffs(const float * gamma, const float * beta, const float * mean,
                       const float * var, double eps, int64_t c, float * alpha, float * shift);
/* alpha and shift: device arrays of x->c floats. */
enum q7_status q7_cuda_batchnorm(cudaStream_t s, const struct q7_cuda_view * x, const float * alpha,
                                 const float * shift, const struct q7_cuda_view * y);

#ifdef __cplusplus
}
#endif
#endif
