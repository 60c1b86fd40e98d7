/* max |x| reduction and |x| histogram on the device (see hist.cuh). */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/hist.cuh"

#include <float.h>

using namespace q7c;

constexpr int HIST_MAX_BLOCKS = 1024;          /* blocks of the binning kernels */
constexpr int64_t BLOCK_ELEMS_MAX = 1LL << 30; /* per block, so 32-bit shared counters hold */

static __global__ void abs_max_kernel(dview x, int64_t total, unsigned int * result)
{
    __shared__ float s_max[THREADS / 32];
    __shared__ unsigned int s_bad;
    if (threadIdx.x == 0)
        s_bad = 0;
    __syncthreads();
    float m = 0.0f;
    unsigned int bad = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float a = fabsf(load(x, offset_of(x, i)));
        m = a > m ? a : m; /* as q7_hist_abs_max: NaN never wins */
        bad |= !(a <= FLT_MAX);
    }
    for (int d = 16; d > 0; d >>= 1) {
        const float o = __shfl_down_sync(0xffffffffu, m, d);
        m = o > m ? o : m;
    }
    if (bad)
        atomicOr(&s_bad, 1u);
    if ((threadIdx.x & 31) == 0)
        s_max[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float b = 0.0f;
        for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++)
            b = s_max[w] > b ? s_max[w] : b;
        /* non-negative floats order like their bit patterns */
        atomicMax(&result[0], __float_as_uint(b));
        if (s_bad)
            atomicOr(&result[1], 1u);
    }
}

enum q7_status q7_cuda_abs_max(cudaStream_t s, const struct q7_cuda_view * x, unsigned int * result)
{
    enum q7_status st = Q7_CUDA_CHECK(cudaMemsetAsync(result, 0, 2 * sizeof *result, s));
    const int64_t total = numel(x);
    if (st || total == 0)
        return st;
    unsigned blocks = blocks_for(total);
    if (blocks > HIST_MAX_BLOCKS)
        blocks = HIST_MAX_BLOCKS;
    Q7C_LAUNCH(abs_max_kernel, blocks, THREADS, 0, s, make_dview(x), total, result);
    return Q7_CUDA_LAUNCHED("abs_max");
}

/* q7_hist_bin_abs's bin of a = |x|, or -1 when it is not counted. */
static __device__ __forceinline__ int bin_of(float a, float lo, float hi, float span, float fbins,
                                             int bins)
{
    if (!(a >= lo && a <= hi)) /* false for NaN too */
        return -1;
    const float v = __fmul_rn(__fdiv_rn(__fsub_rn(a, lo), span), fbins);
    const int p = __float2int_rz(v);
    return p == bins ? bins - 1 : p;
}

static __global__ void hist_smem_kernel(dview x, int64_t total, float lo, float hi, float span,
                                        float fbins, int bins, unsigned long long * counts)
{
    Q7C_DYNAMIC_SMEM(unsigned int, s_hist);
    for (int b = threadIdx.x; b < bins; b += blockDim.x)
        s_hist[b] = 0;
    __syncthreads();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int p = bin_of(fabsf(load(x, offset_of(x, i))), lo, hi, span, fbins, bins);
        if (p >= 0)
            atomicAdd(&s_hist[p], 1u);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < bins; b += blockDim.x)
        if (s_hist[b])
            atomicAdd(&counts[b], (unsigned long long)s_hist[b]);
}

static __global__ void hist_global_kernel(dview x, int64_t total, float lo, float hi, float span,
                                          float fbins, int bins, unsigned long long * counts)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int p = bin_of(fabsf(load(x, offset_of(x, i))), lo, hi, span, fbins, bins);
        if (p >= 0)
            atomicAdd(&counts[p], 1ull);
    }
}

enum q7_status q7_cuda_hist_bin_abs(cudaStream_t s, const struct q7_cuda_view * x, float lo,
                                    float hi, int64_t n_bins, unsigned long long * counts)
{
    if (n_bins < 1 || n_bins > (1 << 30))
        return q7_error_set(Q7_ERR_ARG, "histogram: %lld bins", (long long)n_bins);
    const int64_t total = numel(x);
    if (total == 0)
        return Q7_OK;
    const float span = hi - lo;        /* as q7_hist_bin_abs: float32 */
    const float fbins = (float)n_bins; /* histc multiplies by the bin count as a float */
    unsigned blocks = blocks_for(total);
    if (blocks > HIST_MAX_BLOCKS)
        blocks = HIST_MAX_BLOCKS;
    if (n_bins <= Q7_CUDA_HIST_SMEM_BINS) {
        const int64_t need = (total + BLOCK_ELEMS_MAX - 1) / BLOCK_ELEMS_MAX;
        if ((int64_t)blocks < need)
            blocks = (unsigned)need;
        const size_t smem = (size_t)n_bins * sizeof(unsigned int);
        Q7C_LAUNCH(hist_smem_kernel, blocks, THREADS, smem, s, make_dview(x), total, lo, hi, span,
                   fbins, (int)n_bins, counts);
    } else {
        Q7C_LAUNCH(hist_global_kernel, blocks, THREADS, 0, s, make_dview(x), total, lo, hi, span,
                   fbins, (int)n_bins, counts);
    }
    return Q7_CUDA_LAUNCHED("hist_bin_abs");
}
