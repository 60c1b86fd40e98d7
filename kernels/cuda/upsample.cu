/* Nearest upsampling on the device. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/upsample.cuh"

using namespace q7c;

static __global__ void upsample_kernel(dview x, dview y, int64_t total, int scale)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t ox = i % y.w;
        const int64_t oy = (i / y.w) % y.h;
        const int64_t c = (i / y.hw) % y.c;
        const int64_t b = i / y.chw;
        store(y, offset_at(y, b, c, oy, ox), load(x, offset_at(x, b, c, oy / scale, ox / scale)));
    }
}

enum q7_status q7_cuda_upsample_nearest(cudaStream_t s, const struct q7_cuda_view * x, int scale,
                                        const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    if (scale < 1)
        return q7_error_set(Q7_ERR_ARG, "upsample: scale %d", scale);
    Q7C_LAUNCH(upsample_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y),
               total, scale);
    return Q7_CUDA_LAUNCHED("upsample");
}
