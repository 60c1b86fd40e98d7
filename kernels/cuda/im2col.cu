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
    int p0, ms, ow, kh, kw, sh, sw, ph, pw, dh, dw;
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

/* The tiled variant (q7_cuda_im2col with tiled = 1): a block per (image, input channel, band
 * of `th` output rows). The input rows the band's windows touch are loaded once into shared
 * memory (fake-quantized there, once per input element), then every kh x kw tap of the band is
 * written from shared memory: the input is read from global memory once instead of kh*kw
 * times. Bands outside the slice [p0, p0 + ms) are skipped. */
struct tile_args {
    int th, rows;     /* output rows per band; input rows loaded per band */
    int band0, bands; /* the bands that meet the slice */
};

template <typename T>
static __global__ void im2col_tiled_kernel(dview x, im2col_args a, tile_args t, T * col,
                                           int64_t count)
{
    Q7C_DYNAMIC_SMEM(float, tile); /* t.rows x W */
    const int xh = (int)x.h, xw = (int)x.w, taps = a.kh * a.kw;
    const int64_t cin = a.K / taps;
    for (int64_t img = blockIdx.z; img < count; img += gridDim.z)
        for (int64_t ci = blockIdx.y; ci < cin; ci += gridDim.y)
            for (int band = t.band0 + (int)blockIdx.x; band < t.band0 + t.bands;
                 band += gridDim.x) {
                const int oy0 = band * t.th, r0 = oy0 * a.sh - a.ph;
                const int64_t src = (a.n0 + img) * x.bs + ci * x.hw;
                __syncthreads(); /* the previous band's readers are done with the tile */
                for (int i = threadIdx.x; i < t.rows * xw; i += blockDim.x) {
                    const int r = i / xw, iy = r0 + r;
                    float v = 0.0f;
                    if (iy >= 0 && iy < xh) {
                        v = load(x, src + (int64_t)iy * xw + (i - r * xw));
                        if (a.in_scale != 0.0f)
                            v = fake_quant(v, a.in_scale);
                    }
                    tile[i] = v;
                }
                __syncthreads();
                int pa = oy0 * a.ow, pb = pa + t.th * a.ow;
                pa = pa > a.p0 ? pa : a.p0;
                pb = pb < a.p0 + a.ms ? pb : a.p0 + a.ms;
                for (int tap = 0; tap < taps; tap++) {
                    const int ky = tap / a.kw, kx = tap - ky * a.kw;
                    const int64_t dst = (img * a.K + ci * taps + tap) * a.ms - a.p0;
                    for (int p = pa + (int)threadIdx.x; p < pb; p += blockDim.x) {
                        const int oy = p / a.ow, ox = p - oy * a.ow;
                        const int rr = (oy - oy0) * a.sh + ky * a.dh; /* < t.rows */
                        const int ix = ox * a.sw + kx * a.dw - a.pw;
                        put(col, dst + p, ix >= 0 && ix < xw ? tile[rr * xw + ix] : 0.0f);
                    }
                }
            }
}

/* Shared memory one band of the tiled kernel needs for `th` output rows. */
static size_t tile_bytes(const im2col_args & a, int64_t w, int th)
{
    return (size_t)((th - 1) * a.sh + (a.kh - 1) * a.dh + 1) * (size_t)w * sizeof(float);
}

/* Bands of up to 8 output rows in at most 32 KiB of shared memory; 0 when one row does not
 * fit (the per-row kernel runs then). */
static int tile_rows(const im2col_args & a, int64_t w)
{
    int th = 8;
    while (th > 0 && tile_bytes(a, w, th) > ((size_t)32 << 10))
        th--;
    return th;
}

template <typename T>
static void launch_tiled(cudaStream_t s, const struct q7_cuda_view * x, const im2col_args & a,
                         int th, void * col, int64_t count)
{
    tile_args t;
    t.th = th;
    t.rows = (th - 1) * a.sh + (a.kh - 1) * a.dh + 1;
    t.band0 = a.p0 / a.ow / th;
    t.bands = (a.p0 + a.ms - 1) / a.ow / th - t.band0 + 1;
    const int64_t cin = a.K / (a.kh * a.kw);
    const dim3 grid = row_grid((unsigned)t.bands, cin, count); /* x: up to 2^31 - 1 */
    Q7C_LAUNCH(im2col_tiled_kernel<T>, grid, THREADS, tile_bytes(a, x->w, th), s, make_dview(x), a,
               t, static_cast<T *>(col), count);
}

template <typename T>
static void launch(cudaStream_t s, const struct q7_cuda_view * x, const im2col_args & a,
                   void * col, int64_t count)
{
    /* FP16 only: the FP32 vector stores measured slower than one float per thread (H200,
     * yolov7's model.1 at batch 8: 1.49 ms against 0.78) */
    const bool vec = sizeof(T) == 2 && a.ms % 8 == 0 && ((uintptr_t)col % 32) == 0;
    /* vec: about 2 groups of 8 per thread; else about 8 pixels */
    const dim3 grid = row_grid(vec ? row_blocks(a.ms / 8, 2) : row_blocks(a.ms, 8), a.K, count);
    void (*kernel)(dview, im2col_args, T *, int64_t) =
        vec ? im2col_kernel<T, true> : im2col_kernel<T, false>;
    Q7C_LAUNCH(kernel, grid, THREADS, 0, s, make_dview(x), a, static_cast<T *>(col), count);
}

enum q7_status q7_cuda_im2col(cudaStream_t s, const struct q7_cuda_view * x, int64_t n0,
                              int64_t count, const struct q7_conv_params * p, int64_t oh,
                              int64_t ow, int64_t p0, int64_t ms, float in_scale, void * col,
                              enum q7_dtype col_dtype, int tiled)
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
    const int th = tiled ? tile_rows(a, x->w) : 0;
    if (th > 0 && col_dtype == Q7_DTYPE_F16)
        launch_tiled<__half>(s, x, a, th, col, count);
    else if (th > 0)
        launch_tiled<float>(s, x, a, th, col, count);
    else if (col_dtype == Q7_DTYPE_F16)
        launch<__half>(s, x, a, col, count);
    else
        launch<float>(s, x, a, col, count);
    return Q7_CUDA_LAUNCHED("im2col");
}
