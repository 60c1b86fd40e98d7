/* Reference max pooling, PyTorch semantics: padded cells are -inf (they never win), the
 * window is clipped to the input, a NaN in the window wins (as max_pool2d's
 * `val > max || isnan(val)`). The output size is y's; with ceil_mode the last window may run
 * past the right/bottom edge and is clipped like the padding. A window with no input cell
 * (impossible with PyTorch's size rules) gives -inf. x and y must not overlap. */
#include "kernels/kernels.h"
#include "kernels/ref/ref_impl.h"

#include <math.h>

void q7_ref_maxpool(const struct q7_view * x, const struct q7_pool_params * p,
                    const struct q7_view * y)
{
    for (int64_t n = 0; n < y->n; n++)
        for (int64_t c = 0; c < y->c; c++)
            for (int64_t oy = 0; oy < y->h; oy++)
                for (int64_t ox = 0; ox < y->w; ox++) {
                    float m = -INFINITY;
                    for (int64_t ky = 0; ky < p->kh; ky++) {
                        const int64_t iy = oy * p->stride_h - p->pad_h + ky;
                        if (iy < 0 || iy >= x->h)
                            continue;
                        for (int64_t kx = 0; kx < p->kw; kx++) {
                            const int64_t ix = ox * p->stride_w - p->pad_w + kx;
                            if (ix < 0 || ix >= x->w)
                                continue;
                            const float v = *q7_ref_at(x, n, c, iy, ix);
                            if (v > m || isnan(v))
                                m = v;
                        }
                    }
                    *q7_ref_at(y, n, c, oy, ox) = m;
                }
}
