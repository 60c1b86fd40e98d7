/* Reference eval-mode BatchNorm, computed the way PyTorch 1.13's CPU kernel does it
 * (batch_norm_cpu_collect_linear_and_constant_terms + the contiguous kernel), all in FP32:
 *
 *   invstd = 1 / sqrt(var[c] + (float)eps)
 *   alpha  = invstd * gamma[c]
 *   beta'  = fma(-mean[c], alpha, beta[c])
 *   y      = fma(x, alpha, beta')
 *
 * The two fused multiply-adds are the compiler's contraction of PyTorch's `beta - mean * alpha`
 * and `x * alpha + beta` in the build the fixtures come from (Debian's python3-torch 1.13: all
 * of a random BatchNorm's outputs equal these, 65-81% equal the unfused forms).
 *
 * which equals (x - mean) / sqrt(var + eps) * gamma + beta up to FP32 rounding (~1e-7
 * relative). gamma or beta may be NULL (affine=False: 1 and 0).
 *
 * x and y may be the same view (in place); otherwise they must not overlap. */
#include "kernels/kernels.h"
#include "kernels/ref/ref_impl.h"

#include <math.h>

void q7_ref_batchnorm(const struct q7_view * x, const float * gamma, const float * beta,
                      const float * mean, const float * var, double eps,
                      const struct q7_view * y)
{
    const int64_t hw = x->h * x->w;
    for (int64_t c = 0; c < x->c; c++) {
        const float invstd = 1.0f / sqrtf(var[c] + (float)eps);
        const float alpha = invstd * (gamma ? gamma[c] : 1.0f);
        const float shift = fmaf(-mean[c], alpha, beta ? beta[c] : 0.0f);
        for (int64_t n = 0; n < x->n; n++) {
            const float * src = q7_ref_at(x, n, c, 0, 0);
            float * dst = q7_ref_at(y, n, c, 0, 0);
            for (int64_t i = 0; i < hw; i++)
                dst[i] = fmaf(src[i], alpha, shift);
        }
    }
}
