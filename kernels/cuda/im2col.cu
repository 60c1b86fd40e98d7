/* im2col on the device, fake-quantizing the input as it is read. A block row handles one
 * (image, k) row of the column buffer: k's channel and kernel tap are worked out once per
 * row, and the threads walk the slice's output pixels with 32-bit arithmetic (the plan bounds
 * M by INT_MAX), in FP16 8 consecutive pixels per thread with one vector store when the slice
 * allows, else one. (One pixel per thread and block row made millions of tiny blocks: 4 ms for
 * yolov7's model.2 at batch 8 on an H100, against 0.5 ms for its GEMM.) Grid-stride loops on
 * all three grid axes cover any size. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

#include <limits.h>
#include <stdint.h>
#include <string.h>

using namespace q7c;

struct im2col_args {
    int64_t n0, K;
    int M, p0, ms, ow, kh, kw, sh, sw, ph, pw, dh, dw;
    float in_scale;
};

/* The value of column element (image row base src, pixel p) for tap (y0, x0). */
__device__ __forceinline__ float im2col_value(const dview & x, const im2col_args & a, int64_t src,
                                              int p, int y0, int x0)
{
    const int oy = p / a.ow, ox = p - oy * a.ow;
    const int iy = oy * a.sh + y0, ix = ox * a.sw + x0;
    float v = 0.0f;
    if (iy >= 0 && iy < (int)x.h && ix >= 0 && ix < (int)x.w) {
        v = load(x, src + (int64_t)iy * x.w + ix);
        if (a.in_scale != 0.0f)
            v = fake_quant(v, a.in_scale);
    }
    return v;
}

__device__ __forceinline__ void put(float * col, int64_t i, float v)
{
    col[i] = v;
}

__device__ __forceinline__ void put(__half * col, int64_t i, float v)
{
    col[i] = __float2half_rn(v);
}

/* VEC: each thread takes 8 consecutive pixels of the slice (ms % 8 == 0), else one. */
template <typename T, bool VEC>
static __global__ void im2col_kernel(dview x, im2col_args a, T * col, int64_t count)
{
    const int step = VEC ? 8 : 1;
    for (int64_t img = blockIdx.z; img < count; img += gridDim.z)
        for (int64_t k = blockIdx.y; k < a.K; k += gridDim.y) {
            const int kk = (int)(k % (a.kw * a.kh)); /* kh * kw is an int (conv params) */
            const int kx = kk % a.kw, ky = kk / a.kw;
            const int64_t ci = k / (a.kw * a.kh);
            const int64_t src = (a.n0 + img) * x.bs + ci * x.hw;
            const int64_t dst = (img * a.K + k) * a.ms;
            const int y0 = ky * a.dh - a.ph, x0 = kx * a.dw - a.pw;
            for (int j = (blockIdx.x * blockDim.x + threadIdx.x) * step; j < a.ms;
                 j += gridDim.x * blockDim.x * step) {
                if (VEC) {
                    float v[8];
                    for (int t = 0; t < 8; t++)
                        v[t] = im2col_value(x, a, src, a.p0 + j + t, y0, x0);
                    store8_to(col + dst + j, v); /* ms % 8 == 0: aligned */
                } else {
                    put(col, dst + j, im2col_value(x, a, src, a.p0 + j, y0, x0));
                }
            }
        }
}

template <typename T>
static void launch(cudaStream_t s, const struct q7_cuda_view * x, const im2col_args & a,
                   void * col, int64_t count)
{
    /* FP16 only: the FP32 vector stores measured slower than one float per thread (H200,
     * yolov7's model.1 at batch 8: 1.49 ms against 0.78) */
    const bool vec = sizeof(T) == 2 && a.ms % 8 == 0 && ((uintptr_t)col % 32) == 0;
    /* vec: about 2 groups of 8 per thread; else about 8 pixels */
    const dim3 grid(vec ? row_blocks(a.ms / 8, 2) : row_blocks(a.ms, 8),
                    (unsigned)(a.K < 65535 ? a.K : 65535),
                    (unsigned)(count < 65535 ? count : 65535));
    void (*kernel)(dview, im2col_args, T *, int64_t) =
        vec ? im2col_kernel<T, true> : im2col_kernel<T, false>;
    Q7C_LAUNCH(kernel, grid, THREADS, 0, s, make_dview(x), a, static_cast<T *>(col), count);
}

enum q7_status q7_cuda_im2col(cudaStream_t s, const struct q7_cuda_view * x, int64_t n0,
                              int64_t count, const struct q7_conv_params * p, int64_t oh,
                              int64_t ow, int64_t p0, int64_t ms, float in_scale, void * col,
                              enum q7_dtype col_dtype)
{
    im2col_args a;
    a.n0 = n0;
    a.K = (int64_t)p->in_ch * p->kh * p->kw;
    if (oh * ow > INT_MAX || x->h > INT_MAX / 2 || x->w > INT_MAX / 2)
        return q7_error_set(Q7_ERR_LIMIT, "cuda im2col: %lldx%lld output exceeds int",
                            (long long)oh, (long long)ow);
    if (p0 < 0 || ms < 0 || p0 + ms > oh * ow)
        return q7_error_set(Q7_ERR_ARG, "cuda im2col: pixels %lld + %lld of %lld", (long long)p0,
                            (long long)ms, (long long)(oh * ow));
    a.M = (int)(oh * ow);
    a.p0 = (int)p0;
    a.ms = (int)ms;
    a.ow = (int)ow;
    a.kh = p->kh;
    a.kw = p->kw;
    a.sh = p->stride_h;
    a.sw = p->stride_w;
    a.ph = p->pad_h;
    a.pw = p->pad_w;
    a.dh = p->dil_h;
    a.dw = p->dil_w;
    a.in_scale = in_scale;
    if (count == 0 || a.K == 0 || a.ms == 0)
        return Q7_OK;
    if (col_dtype == Q7_DTYPE_F16)
        launch<__half>(s, x, a, col, count);
    else
        launch<float>(s, x, a, col, count);
    return Q7_CUDA_LAUNCHED("im2col");
}
