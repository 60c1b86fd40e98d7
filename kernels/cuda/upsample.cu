/* Nearest upsampling on the device: a block row per (image, channel) plane, threads over its
 * output pixels with 32-bit arithmetic (planes below 2^31 pixels: checked). */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/upsample.cuh"

#include <limits.h>

using namespace q7c;

static __global__ void upsample_kernel(dview x, dview y, int scale)
{
    const int ow = (int)y.w, xw = (int)x.w;
    for_each_plane_pixel(y, [&](int64_t b, int64_t c, int i) {
        const int oy = i / ow, ox = i - oy * ow;
        store(y, b * y.bs + c * y.hw + i,
              load(x, b * x.bs + c * x.hw + (int64_t)(oy / scale) * xw + ox / scale));
    });
}

enum q7_status q7_cuda_upsample_nearest(cudaStream_t s, const struct q7_cuda_view * x, int scale,
                                        const struct q7_cuda_view * y)
{
    if (numel(y) == 0)
        return Q7_OK;
    if (scale < 1)
        return q7_error_set(Q7_ERR_ARG, "upsample: scale %d", scale);
    if (y->h * y->w > INT_MAX / 2)
        return q7_error_set(Q7_ERR_LIMIT, "cuda upsample: a %lldx%lld plane exceeds int",
                            (long long)y->h, (long long)y->w);
    const dim3 grid = row_grid(row_blocks(y->h * y->w, 4), y->c, y->n);
    Q7C_LAUNCH(upsample_kernel, grid, THREADS, 0, s, make_dview(x), make_dview(y), scale);
    return Q7_CUDA_LAUNCHED("upsample");
}
