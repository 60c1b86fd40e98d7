/* Space to depth (yolov7 ReOrg) on the device. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/reorg.cuh"

using namespace q7c;

/* Output channel block q = 0..3 (x->c channels each) takes rows dy and columns dx with
 * (dy, dx) = (0,0), (1,0), (0,1), (1,1), as q7_ref_reorg. */
static __global__ void reorg_kernel(dview x, dview y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = i % y.w;
        const int64_t r = (i / y.w) % y.h;
        const int64_t oc = (i / y.hw) % y.c;
        const int64_t b = i / y.chw;
        const int64_t q = oc / x.c, c = oc % x.c;
        const int64_t dy = q & 1, dx = q >> 1;
        store(y, offset_at(y, b, oc, r, j), load(x, offset_at(x, b, c, 2 * r + dy, 2 * j + dx)));
    }
}

enum q7_status q7_cuda_reorg(cudaStream_t s, const struct q7_cuda_view * x,
                             const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(reorg_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y), total);
    return Q7_CUDA_LAUNCHED("reorg");
}
