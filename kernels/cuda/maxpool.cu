/* Max pooling on the device: a block row per (image, channel) plane, threads over its output
 * pixels with 32-bit arithmetic (planes are far below 2^31 pixels: checked). */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/maxpool.cuh"

#include <limits.h>
#include <math.h>

using namespace q7c;

struct pool_args {
    int kh, kw, sh, sw, ph, pw;
    float fq_scale;
};

static __global__ void maxpool_kernel(dview x, dview y, pool_args p)
{
    const int xh = (int)x.h, xw = (int)x.w, ow = (int)y.w;
    for_each_plane_pixel(y, [&](int64_t b, int64_t c, int i) {
        const int64_t xs = b * x.bs + c * x.hw;
        const int oy = i / ow, ox = i - oy * ow;
        float m = -INFINITY;
        for (int ky = 0; ky < p.kh; ky++) {
            const int iy = oy * p.sh - p.ph + ky;
            if (iy < 0 || iy >= xh)
                continue;
            for (int kx = 0; kx < p.kw; kx++) {
                const int ix = ox * p.sw - p.pw + kx;
                if (ix < 0 || ix >= xw)
                    continue;
                const float v = load(x, xs + (int64_t)iy * xw + ix);
                if (v > m || isnan(v))
                    m = v;
            }
        }
        store(y, b * y.bs + c * y.hw + i, p.fq_scale != 0.0f ? fake_quant(m, p.fq_scale) : m);
    });
}

enum q7_status q7_cuda_maxpool(cudaStream_t s, const struct q7_cuda_view * x,
                               const struct q7_pool_params * p, float fq_scale,
                               const struct q7_cuda_view * y)
{
    if (numel(y) == 0)
        return Q7_OK;
    if (x->h * x->w > INT_MAX / 2 || y->h * y->w > INT_MAX / 2)
        return q7_error_set(Q7_ERR_LIMIT, "cuda maxpool: a %lldx%lld plane exceeds int",
                            (long long)x->h, (long long)x->w);
    pool_args a = {p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w, fq_scale};
    const dim3 grid = row_grid(row_blocks(y->h * y->w, 4), y->c, y->n);
    Q7C_LAUNCH(maxpool_kernel, grid, THREADS, 0, s, make_dview(x), make_dview(y), a);
    return Q7_CUDA_LAUNCHED("maxpool");
}
