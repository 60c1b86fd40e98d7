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

int q7_conv_fp32_chunk(const struct q7_conv_params * p)
{
    const int cin_g = p->in_ch / p->groups;
    return p->kh == 1 && p->kw == 1 && p->pad_h == 0 && p->pad_w == 0 && p->groups == 1 &&
                   cin_g > 128
               ? 128
               : 0;
}

/* One output's inputs: image n, the group's first input channel c0, output pixel (oy, ox). */
struct conv_at {
    const struct q7_view * x;
    const struct q7_conv_params * p;
    const float * wco; /* the output channel's weights */
    float in_scale;
    int64_t cin_g, chunk, n, c0, oy, ox; /* chunk: q7_conv_fp32_chunk */
};

/* Channel ci of the group at tap (ky, kx): 0 in the padding, else 1 with *v the
 * (fake-quantized) input and *w its weight. */
static int input_at(const struct conv_at * o, int64_t ci, int64_t ky, int64_t kx, float * v,
                    float * w)
{
    const struct q7_conv_params * p = o->p;
    const int64_t iy = o->oy * p->stride_h - p->pad_h + ky * p->dil_h;
    const int64_t ix = o->ox * p->stride_w - p->pad_w + kx * p->dil_w;
    if (iy < 0 || iy >= o->x->h || ix < 0 || ix >= o->x->w)
        return 0;
    *v = *q7_ref_at(o->x, o->n, o->c0 + ci, iy, ix);
    if (o->in_scale != 0.0f)
        *v = q7_fq_apply(*v, o->in_scale);
    *w = o->wco[(ci * p->kh + ky) * p->kw + kx];
    return 1;
}

/* In double, in the order ci, ky, kx, from the bias; rounded to FP32 once. */
static float sum_double(const struct conv_at * o, float bias)
{
    double acc = bias;
    float v, w;
    for (int64_t ci = 0; ci < o->cin_g; ci++)
        for (int64_t ky = 0; ky < o->p->kh; ky++)
            for (int64_t kx = 0; kx < o->p->kw; kx++)
                if (input_at(o, ci, ky, kx, &v, &w))
                    acc += (double)w * (double)v;
    return (float)acc;
}

/* PyTorch's FP32 order (kernels.h, q7_ref_conv2d_fp32). */
static float sum_fp32(const struct conv_at * o, float bias)
{
    const struct q7_conv_params * p = o->p;
    float acc = bias, done = 0.0f, v, w;
    for (int64_t c0 = 0; c0 < o->cin_g; c0 += 8) {
        if (o->chunk && c0 > 0 && c0 % o->chunk == 0) {
            done = c0 == o->chunk ? acc : acc + done;
            acc = 0.0f;
        }
        for (int64_t ky = 0; ky < p->kh; ky++)
            for (int64_t kx = 0; kx < p->kw; kx++)
                for (int64_t ci = c0; ci < c0 + 8 && ci < o->cin_g; ci++)
                    if (input_at(o, ci, ky, kx, &v, &w))
                        acc = fmaf(w, v, acc);
    }
    return o->chunk ? acc + done : acc;
}

static void conv_each(const struct q7_view * x, const float * weight, const float * bias,
                      const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                      const struct q7_view * y, float (*sum)(const struct conv_at *, float))
{
    const int64_t cin_g = p->in_ch / p->groups;
    const int64_t cout_g = p->out_ch / p->groups;
    const float out_scale = extra ? extra->out_scale : 0.0f;
    struct conv_at o = {.x = x, .p = p, .in_scale = extra ? extra->in_scale : 0.0f,
                        .cin_g = cin_g, .chunk = q7_conv_fp32_chunk(p)};
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
