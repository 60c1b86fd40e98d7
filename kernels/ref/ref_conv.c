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
 * q7_ref_conv2d_fp32 is the FP32 order PyTorch's CPU convolutions follow (kernels.h), which
 * the optimized kernel reproduces bit for bit.
 *
 * x and y must not overlap. */
#include "kernels/kernels.h"
#include "kernels/ref/fake_quant.h"
#include "kernels/ref/ref_impl.h"

#include <math.h>

/* One output's inputs: image n, the group's first input channel c0, output pixel (oy, ox). */
struct conv_at {
    const struct q7_view * x;
    const struct q7_conv_params * p;
    const float * wco; /* the output channel's weights */
    float in_scale;
    int64_t cin_g, n, c0, oy, ox;
};

/* The (fake-quantized) input of channel ci of the group at tap (ky, kx) times its weight;
 * 0 with *inside = 0 in the padding. */
static double term(const struct conv_at * o, int64_t ci, int64_t ky, int64_t kx, int * inside,
                   float * w)
{
    const struct q7_conv_params * p = o->p;
    const int64_t iy = o->oy * p->stride_h - p->pad_h + ky * p->dil_h;
    const int64_t ix = o->ox * p->stride_w - p->pad_w + kx * p->dil_w;
    *inside = iy >= 0 && iy < o->x->h && ix >= 0 && ix < o->x->w;
    *w = o->wco[(ci * p->kh + ky) * p->kw + kx];
    if (!*inside)
        return 0.0;
    float v = *q7_ref_at(o->x, o->n, o->c0 + ci, iy, ix);
    return o->in_scale != 0.0f ? q7_fq_apply(v, o->in_scale) : v;
}

/* In double, in the order ci, ky, kx, from the bias; rounded to FP32 once. */
static float sum_double(const struct conv_at * o, float bias)
{
    double acc = bias;
    float w;
    int in;
    for (int64_t ci = 0; ci < o->cin_g; ci++)
        for (int64_t ky = 0; ky < o->p->kh; ky++)
            for (int64_t kx = 0; kx < o->p->kw; kx++) {
                const double v = term(o, ci, ky, kx, &in, &w);
                if (in)
                    acc += (double)w * v;
            }
    return (float)acc;
}

/* PyTorch's FP32 order (kernels.h, q7_ref_conv2d_fp32). */
static float sum_fp32(const struct conv_at * o, float bias)
{
    const struct q7_conv_params * p = o->p;
    const int chunked = p->kh == 1 && p->kw == 1 && p->pad_h == 0 && p->pad_w == 0 &&
                        p->groups == 1 && o->cin_g > 128;
    float acc = bias, done = 0.0f, w;
    int in;
    for (int64_t c0 = 0; c0 < o->cin_g; c0 += 8) {
        if (chunked && c0 > 0 && c0 % 128 == 0) {
            done = c0 == 128 ? acc : acc + done;
            acc = 0.0f;
        }
        for (int64_t ky = 0; ky < p->kh; ky++)
            for (int64_t kx = 0; kx < p->kw; kx++)
                for (int64_t ci = c0; ci < c0 + 8 && ci < o->cin_g; ci++) {
                    const float v = (float)term(o, ci, ky, kx, &in, &w);
                    if (in)
                        acc = fmaf(w, v, acc);
                }
    }
    return chunked ? acc + done : acc;
}

static void conv_each(const struct q7_view * x, const float * weight, const float * bias,
                      const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                      const struct q7_view * y, float (*sum)(const struct conv_at *, float))
{
    const int64_t cin_g = p->in_ch / p->groups;
    const int64_t cout_g = p->out_ch / p->groups;
    const float out_scale = extra ? extra->out_scale : 0.0f;
    struct conv_at o = {.x = x, .p = p, .in_scale = extra ? extra->in_scale : 0.0f,
                        .cin_g = cin_g};
    for (o.n = 0; o.n < y->n; o.n++)
        for (int64_t co = 0; co < y->c; co++) {
            o.c0 = co / cout_g * cin_g;
            o.wco = weight + co * cin_g * p->kh * p->kw;
            for (o.oy = 0; o.oy < y->h; o.oy++)
                for (o.ox = 0; o.ox < y->w; o.ox++) {
                    float v = q7_ref_act_apply(sum(&o, bias ? bias[co] : 0.0f), p->act);
                    if (out_scale != 0.0f)
                        v = q7_fq_apply(v, out_scale);
                    *q7_ref_at(y, o.n, co, o.oy, o.ox) = v;
                }
        }
}

void q7_ref_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y)
{
    conv_each(x, weight, bias, p, extra, y, sum_double);
}

void q7_ref_conv2d_fp32(const struct q7_view * x, const float * weight, const float * bias,
                        const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                        const struct q7_view * y)
{
    conv_each(x, weight, bias, p, extra, y, sum_fp32);
}
