/* uint8 input batches normalized on the device. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/normalize.cuh"

using namespace q7c;

static __global__ void normalize_kernel(const uint8_t * x, dview y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        store(y, offset_of(y, i), __fdiv_rn((float)x[i], 255.0f));
}

enum q7_status q7_cuda_normalize_u8(cudaStream_t s, const uint8_t * x,
                                    const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(normalize_kernel, blocks_for(total), THREADS, 0, s, x, make_dview(y), total);
    return Q7_CUDA_LAUNCHED("normalize_u8");
}
