/* Fake quantization, the specification (pytorch-quantization's fake_tensor_quant, 8 bits,
 * signed, narrow range): scale = 127 / amax, q = clamp(round_half_even(x * scale), -127, 127),
 * y = q / scale, all in FP32. */
#ifndef Q7_FAKE_QUANT_H
#define Q7_FAKE_QUANT_H

#include <math.h>

#define Q7_FQ_MAX_BOUND 127.0f

/* 127 / amax in FP32, as PyTorch computes it from an FP32 amax. amax <= 0 gives 0, which
 * q7_fq_apply maps to 0 (pytorch-quantization zeroes channels whose amax is zero). */
static inline float q7_fq_scale(float amax)
{
    return amax > 0.0f ? Q7_FQ_MAX_BOUND / amax : 0.0f;
}

static inline float q7_fq_apply(float x, float scale)
{
    if (scale == 0.0f)
        return 0.0f;
    float q = nearbyintf(x * scale); /* default rounding mode: half to even */
    if (q > Q7_FQ_MAX_BOUND)
        q = Q7_FQ_MAX_BOUND;
    if (q < -Q7_FQ_MAX_BOUND)
        q = -Q7_FQ_MAX_BOUND;
    return q / scale;
}

#endif
