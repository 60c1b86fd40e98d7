/* Reference 2-D convolution: the specification of q7_cpu_conv2d and the CUDA conv.
 *
 * y[n][co][oy][ox] = act(bias[co] + sum over ci, ky, kx of
 *                        w[co][ci][ky][kx] * fq(x[n][g*cin_g + ci][iy][ix]))
 * with g = co / cout_g, iy = oy*stride_h - pad_h + ky*dil_h (same for x), out-of-range input
 * positions reading 0, and fq the per-tensor input fake-quant (identity when in_scale == 0);
 * then, when out_scale != 0, y = fq(y) with that scale (fake quantization where the tensor
 * is produced).
 *
 * Accumulation: in DOUBLE, in the fixed order ci, ky, kx, starting from the bias, rounded to
 * FP32 once before the activation. This is more accurate than any FP32 summation order, so
 * an optimized kernel's difference from it is that kernel's own rounding error.
 *
 * x and y must not overlap. */
#include "kernels/kernels.h"
#include "kernels/ref/fake_quant.h"
#include "kernels/ref/ref_impl.h"

void q7_ref_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y)
{
    const int64_t cin_g = p->in_ch / p->groups;
    const int64_t cout_g = p->out_ch / p->groups;
    const float in_scale = extra ? extra->in_scale : 0.0f;
    const float out_scale = extra ? extra->out_scale : 0.0f;

    for (int64_t n = 0; n < y->n; n++) {
        for (int64_t co = 0; co < y->c; co++) {
            const int64_t g = co / cout_g;
            const float * wco = weight + co * cin_g * p->kh * p->kw;
            for (int64_t oy = 0; oy < y->h; oy++) {
                for (int64_t ox = 0; ox < y->w; ox++) {
                    double acc = bias ? (double)bias[co] : 0.0;
                    for (int64_t ci = 0; ci < cin_g; ci++) {
                        for (int64_t ky = 0; ky < p->kh; ky++) {
                            const int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                            if (iy < 0 || iy >= x->h)
                                continue;
                            for (int64_t kx = 0; kx < p->kw; kx++) {
                                const int64_t ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                                if (ix < 0 || ix >= x->w)
                                    continue;
                                float v = *q7_ref_at(x, n, g * cin_g + ci, iy, ix);
                                if (in_scale != 0.0f)
                                    v = q7_fq_apply(v, in_scale);
                                acc += (double)wco[(ci * p->kh + ky) * p->kw + kx] * (double)v;
                            }
                        }
                    }
                    float v = q7_ref_act_apply((float)acc, p->act);
                    if (out_scale != 0.0f)
                        v = q7_fq_apply(v, out_scale);
                    *q7_ref_at(y, n, co, oy, ox) = v;
                }
            }
        }
    }
}
