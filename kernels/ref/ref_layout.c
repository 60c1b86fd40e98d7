/* Reference data-movement kernels: nearest upsampling, channel concat, reorg (space to
 * depth). Shapes come from the views; x and y must not overlap, except that a concat input
 * may already sit in its place inside y (copying it onto itself is harmless). */
#include "kernels/kernels.h"
#include "kernels/ref/ref_impl.h"

/* y[c][i][j] = x[c][i / scale][j / scale] (nn.Upsample(scale_factor=s, mode='nearest')). */
void q7_ref_upsample_nearest(const struct q7_view * x, int scale, const struct q7_view * y)
{
    for (int64_t n = 0; n < y->n; n++)
        for (int64_t c = 0; c < y->c; c++)
            for (int64_t i = 0; i < y->h; i++)
                for (int64_t j = 0; j < y->w; j++)
                    *q7_ref_at(y, n, c, i, j) = *q7_ref_at(x, n, c, i / scale, j / scale);
}

void q7_ref_concat(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y)
{
    for (int64_t n = 0; n < y->n; n++) {
        int64_t c0 = 0;
        for (int k = 0; k < n_inputs; k++) {
            const struct q7_view * x = xs[k];
            for (int64_t c = 0; c < x->c; c++)
                for (int64_t i = 0; i < y->h; i++)
                    for (int64_t j = 0; j < y->w; j++)
                        *q7_ref_at(y, n, c0 + c, i, j) = *q7_ref_at(x, n, c, i, j);
            c0 += x->c;
        }
    }
}

/* Block q of the output channels (q = 0..3, each x->c wide) holds x[..., dy::2, dx::2] with
 * (dy, dx) = (0,0), (1,0), (0,1), (1,1): rows step first, as yolov7's ReOrg
 * cat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]). */
void q7_ref_reorg(const struct q7_view * x, const struct q7_view * y)
{
    static const int dys[4] = {0, 1, 0, 1};
    static const int dxs[4] = {0, 0, 1, 1};
    for (int64_t n = 0; n < y->n; n++)
        for (int q = 0; q < 4; q++)
            for (int64_t c = 0; c < x->c; c++)
                for (int64_t i = 0; i < y->h; i++)
                    for (int64_t j = 0; j < y->w; j++)
                        *q7_ref_at(y, n, q * x->c + c, i, j) =
                            *q7_ref_at(x, n, c, 2 * i + dys[q], 2 * j + dxs[q]);
}
