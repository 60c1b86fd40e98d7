/* Private helpers shared by the reference kernels (and by the generic CPU kernels, which must
 * give the same numbers): scalar activations in FP32, exactly as the specification states. */
#ifndef Q7_REF_IMPL_H
#define Q7_REF_IMPL_H

#include "kernels/kernels.h"

#include <math.h>

/* Logistic sigmoid, 1 / (1 + exp(-x)) in FP32. */
static inline float q7_ref_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* One activation applied to one FP32 value:
 *   identity: x
 *   SiLU:     x / (1 + exp(-x))              (x * sigmoid(x), written as PyTorch divides)
 *   LeakyReLU x > 0 ? x : x * slope
 *   ReLU:     x < 0 ? 0 : x                  (NaN passes through, as torch.relu)
 *   Sigmoid:  1 / (1 + exp(-x)) */
static inline float q7_ref_act_apply(float x, struct q7_act_params act)
{
    switch (act.kind) {
    case Q7_ACT_SILU:
        return x / (1.0f + expf(-x));
    case Q7_ACT_LEAKY_RELU:
        return x > 0.0f ? x : x * act.slope;
    case Q7_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case Q7_ACT_SIGMOID:
        return q7_ref_sigmoid(x);
    case Q7_ACT_IDENTITY:
    default:
        return x;
    }
}

/* Address of element (b, c, y, x) of a view. */
static inline float * q7_ref_at(const struct q7_view * v, int64_t b, int64_t c, int64_t y,
                                int64_t x)
{
    return v->data + b * v->batch_stride + (c * v->h + y) * v->w + x;
}

#endif
