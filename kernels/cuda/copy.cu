/* View-to-view copies on the device (with FP32 <-> FP16 conversion). */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/copy.cuh"

using namespace q7c;

static __global__ void copy_kernel(dview x, dview y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        store(y, offset_of(y, i), load(x, offset_of(x, i)));
}

enum q7_status q7_cuda_copy(cudaStream_t s, const struct q7_cuda_view * x,
                            const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(copy_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), make_dview(y), total);
    return Q7_CUDA_LAUNCHED("copy");
}
