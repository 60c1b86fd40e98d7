/* Reference element-wise kernels: activation, n-ary add, ImplicitA / ImplicitM.
 *
 * Aliasing: the output may be the same view as an input (same data and batch_stride; for add,
 * any of the inputs): every output element depends only on the input elements at the same
 * position, which are read before it is written. Partial overlaps are not allowed. */
#include "kernels/kernels.h"
#include "kernels/ref/ref_impl.h"

void q7_ref_act(const struct q7_view * x, struct q7_act_params act, const struct q7_view * y)
{
    for (int64_t n = 0; n < x->n; n++)
        for (int64_t c = 0; c < x->c; c++)
            for (int64_t i = 0; i < x->h; i++)
                for (int64_t j = 0; j < x->w; j++)
                    *q7_ref_at(y, n, c, i, j) = q7_ref_act_apply(*q7_ref_at(x, n, c, i, j), act);
}

/* y = ((x0 + x1) + x2) + ..., left to right in FP32. */
void q7_ref_add(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y)
{
    for (int64_t n = 0; n < y->n; n++)
        for (int64_t c = 0; c < y->c; c++)
            for (int64_t i = 0; i < y->h; i++)
                for (int64_t j = 0; j < y->w; j++) {
                    float s = *q7_ref_at(xs[0], n, c, i, j);
                    for (int k = 1; k < n_inputs; k++)
                        s += *q7_ref_at(xs[k], n, c, i, j);
                    *q7_ref_at(y, n, c, i, j) = s;
                }
}

void q7_ref_implicit_add(const struct q7_view * x, const float * v, const struct q7_view * y)
{
    for (int64_t n = 0; n < x->n; n++)
        for (int64_t c = 0; c < x->c; c++)
            for (int64_t i = 0; i < x->h; i++)
                for (int64_t j = 0; j < x->w; j++)
                    *q7_ref_at(y, n, c, i, j) = *q7_ref_at(x, n, c, i, j) + v[c];
}

void q7_ref_implicit_mul(const struct q7_view * x, const float * v, const struct q7_view * y)
{
    for (int64_t n = 0; n < x->n; n++)
        for (int64_t c = 0; c < x->c; c++)
            for (int64_t i = 0; i < x->h; i++)
                for (int64_t j = 0; j < x->w; j++)
                    *q7_ref_at(y, n, c, i, j) = *q7_ref_at(x, n, c, i, j) * v[c];
}
