/* Max pooling on the device: one thread per output element. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/maxpool.cuh"

#include <math.h>

using namespace q7c;

struct pool_args {
    int kh, kw, sh, sw, ph, pw;
    float fq_scale;
};

static __global__ void maxpool_kernel(dview x, dview y, int64_t total, pool_args p)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ox = i % y.w;
        const int64_t oy = (i / y.w) % y.h;
        const int64_t c = (i / y.hw) % y.c;
        const int64_t b = i / y.chw;
        float m = -INFINITY;
        for (int ky = 0; ky < p.kh; ky++) {
            const int64_t iy = oy * p.sh - p.ph + ky;
            if (iy < 0 || iy >= x.h)
                continue;
            for (int kx = 0; kx < p.kw; kx++) {
                const int64_t ix = ox * p.sw - p.pw + kx;
                if (ix < 0 || ix >= x.w)
                    continue;
                const float v = load(x, offset_at(x, b, c, iy, ix));
                if (v > m || isnan(v))
                    m = v;
            }
        }
        store(y, offset_at(y, b, c, oy, ox), p.fq_scale != 0.0f ? fake_quant(m, p.fq_scale) : m);
    }
}

enum q7_status q7_cuda_maxpool(cudaStream_t s, const struct q7_cuda_view * x,
                               const struct q7_pool_params * p, float fq_scale,
                               const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    pool_args a = {p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w, fq_scale};
    Q7C_LAUNCH(maxpool_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y),
               total, a);
    return Q7_CUDA_LAUNCHED("maxpool");
}
