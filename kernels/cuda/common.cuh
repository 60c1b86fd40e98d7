/* Device-side helpers shared by the CUDA kernels (C++ only; included by the .cu files).
 *
 * Every kernel here is written the simple way first: one thread per output element, a
 * grid-stride loop over 64-bit linear indices, FP32 arithmetic whatever the storage type.
 * The arithmetic that the reference specifies exactly (batchnorm, fake-quant, histogram bins,
 * the detect decode) uses the _rn intrinsics, which the compiler never contracts into fused
 * multiply-adds, so the device computes the same float operations as kernels/ref (the build
 * also passes -fmad=false). */
#ifndef Q7_CUDA_COMMON_CUH
#define Q7_CUDA_COMMON_CUH

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_view.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

/* Kernel launches and dynamic shared memory go through these two macros so that the same
 * kernels also compile as plain C++ for the CPU emulation (kernels/cuda/emu, used by
 * tools/cuda-emulate.sh to test the backend's logic on machines without a GPU). */
#ifdef Q7_CUDA_EMULATE
#include "kernels/cuda/emu/device.h"
#else
#define Q7C_LAUNCH(kernel, blocks, threads, smem, stream, ...)                                     \
    kernel<<<(blocks), (threads), (smem), (stream)>>>(__VA_ARGS__)
#define Q7C_DYNAMIC_SMEM(type, name) extern __shared__ type name[]
#endif

namespace q7c
{

constexpr int THREADS = 256;            /* threads per block of the element-wise kernels */
constexpr int64_t MAX_BLOCKS = 1 << 16; /* grid cap; the grid-stride loops cover the rest */

/* Blocks for `total` elements (at least 1; callers skip empty launches). */
inline unsigned blocks_for(int64_t total)
{
    int64_t b = (total + THREADS - 1) / THREADS;
    if (b > MAX_BLOCKS)
        b = MAX_BLOCKS;
    return (unsigned)(b < 1 ? 1 : b);
}

/* Blocks along a row of `len` elements when each thread takes about `per_thread` of them:
 * the row kernels (im2col, epilogue) launch one block row per (image, channel or k) and loop,
 * so that a block's setup (its row's indices) is paid for many elements, not one. */
inline unsigned row_blocks(int64_t len, int per_thread)
{
    const int64_t per_block = (int64_t)THREADS * per_thread;
    int64_t b = (len + per_block - 1) / per_block;
    if (b > MAX_BLOCKS)
        b = MAX_BLOCKS;
    return (unsigned)(b < 1 ? 1 : b);
}

/* The grid of a row kernel: x_blocks along each row, one block row per row (y) and per image
 * (z), both capped at the grid's 65535; the kernels' grid-stride loops cover the rest. */
inline dim3 row_grid(unsigned x_blocks, int64_t rows, int64_t images)
{
    return dim3(x_blocks, (unsigned)(rows < 65535 ? rows : 65535),
                (unsigned)(images < 65535 ? images : 65535));
}

/* A view flattened for kernels: linear index i over (n, c*h*w) maps to
 * (i / chw) * bs + i % chw. Passed by value. */
struct dview {
    void * data;
    int f16;
    int64_t n, c, h, w, hw, chw, bs;
};

inline dview make_dview(const struct q7_cuda_view * v)
{
    dview d;
    d.data = v->data;
    d.f16 = v->dtype == Q7_DTYPE_F16;
    d.n = v->n;
    d.c = v->c;
    d.h = v->h;
    d.w = v->w;
    d.hw = v->h * v->w;
    d.chw = v->c * d.hw;
    d.bs = v->batch_stride;
    return d;
}

inline int64_t numel(const struct q7_cuda_view * v)
{
    return v->n * v->c * v->h * v->w;
}

/* Offset (elements) of linear element i of the view. */
__device__ __forceinline__ int64_t offset_of(const dview & v, int64_t i)
{
    if (v.bs == v.chw) /* a whole tensor: no 64-bit division */
        return i;
    const int64_t b = i / v.chw;
    return b * v.bs + (i - b * v.chw);
}

/* Offset of element (b, c, y, x). */
__device__ __forceinline__ int64_t offset_at(const dview & v, int64_t b, int64_t c, int64_t y,
                                             int64_t x)
{
    return b * v.bs + (c * v.h + y) * v.w + x;
}

__device__ __forceinline__ float load(const dview & v, int64_t off)
{
    return v.f16 ? __half2float(static_cast<const __half *>(v.data)[off])
                 : static_cast<const float *>(v.data)[off];
}

__device__ __forceinline__ void store(const dview & v, int64_t off, float x)
{
    if (v.f16)
        static_cast<__half *>(v.data)[off] = __float2half_rn(x);
    else
        static_cast<float *>(v.data)[off] = x;
}

/* Eight consecutive elements from offset off (a multiple of 8 of a 32-byte aligned view: see
 * aligned8) with one 16-byte (FP16) or two (FP32) loads, and the same for stores. */
__device__ __forceinline__ void load8(const dview & v, int64_t off, float * out)
{
    if (v.f16) {
        const uint4 u = *reinterpret_cast<const uint4 *>(static_cast<const __half *>(v.data) + off);
        const unsigned int w[4] = {u.x, u.y, u.z, u.w};
        for (int j = 0; j < 4; j++) {
            const unsigned short lo = (unsigned short)(w[j] & 0xffffu),
                                 hi = (unsigned short)(w[j] >> 16);
            __half a, b;
            memcpy(&a, &lo, 2);
            memcpy(&b, &hi, 2);
            out[2 * j] = __half2float(a);
            out[2 * j + 1] = __half2float(b);
        }
    } else {
        const float4 * p =
            reinterpret_cast<const float4 *>(static_cast<const float *>(v.data) + off);
        const float4 a = p[0], b = p[1];
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
        out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    }
}

/* Eight floats stored at p (32-byte aligned) as two float4, or as eight halves (16-byte
 * aligned) in one uint4. */
__device__ __forceinline__ void store8_to(float * p, const float * x)
{
    float4 * d = reinterpret_cast<float4 *>(p);
    d[0] = make_float4(x[0], x[1], x[2], x[3]);
    d[1] = make_float4(x[4], x[5], x[6], x[7]);
}

__device__ __forceinline__ void store8_to(__half * p, const float * x)
{
    unsigned int w[4];
    for (int j = 0; j < 4; j++) {
        const __half a = __float2half_rn(x[2 * j]), b = __float2half_rn(x[2 * j + 1]);
        unsigned short lo, hi;
        memcpy(&lo, &a, 2);
        memcpy(&hi, &b, 2);
        w[j] = (unsigned int)lo | ((unsigned int)hi << 16);
    }
    *reinterpret_cast<uint4 *>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ void store8(const dview & v, int64_t off, const float * x)
{
    if (v.f16)
        store8_to(static_cast<__half *>(v.data) + off, x);
    else
        store8_to(static_cast<float *>(v.data) + off, x);
}

/* Calls f(b, c, i) for every output pixel i of every (image b, channel c) plane of y: a block
 * row per plane (grid y: channels, z: images), the threads over its pixels; grid-stride loops
 * on all three axes. Planes must be below 2^31 pixels (callers check). */
template <typename F> __device__ __forceinline__ void for_each_plane_pixel(const dview & y, F && f)
{
    const int hw = (int)y.hw;
    for (int64_t b = blockIdx.z; b < y.n; b += gridDim.z)
        for (int64_t c = blockIdx.y; c < y.c; c += gridDim.y)
            for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hw; i += gridDim.x * blockDim.x)
                f(b, c, i);
}

/* 1 when every (image, channel) plane of the view starts 32-byte aligned and holds a multiple
 * of 8 elements, so that load8 / store8 may walk it. */
inline int aligned8(const dview & v)
{
    return (uintptr_t)v.data % 32 == 0 && v.hw % 8 == 0 && v.bs % 8 == 0;
}

/* 1 / (1 + exp(-x)) as kernels/ref (expf: the accurate device expf, not __expf). */
__device__ __forceinline__ float sigmoid(float x)
{
    return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
}

/* kernels/ref/ref_impl.h's q7_ref_act_apply. */
__device__ __forceinline__ float act_apply(float x, int kind, float slope)
{
    switch (kind) {
    case Q7_ACT_SILU:
        return __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
    case Q7_ACT_LEAKY_RELU:
        return x > 0.0f ? x : __fmul_rn(x, slope);
    case Q7_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case Q7_ACT_SIGMOID:
        return sigmoid(x);
    default:
        return x;
    }
}

/* kernels/ref/fake_quant.h's q7_fq_apply for scale > 0: rintf rounds half to even. A
 * negative scale stands for amax <= 2^-24, which the reference quantizes to 0. */
__device__ __forceinline__ float fake_quant(float x, float scale)
{
    if (scale < 0.0f)
        return 0.0f;
    float q = rintf(__fmul_rn(x, scale));
    if (q > 127.0f)
        q = 127.0f;
    if (q < -127.0f)
        q = -127.0f;
    return __fdiv_rn(q, scale);
}

} // namespace q7c

#endif
