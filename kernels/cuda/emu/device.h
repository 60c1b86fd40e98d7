/* CPU emulation of the CUDA device features the kernels use (included by common.cuh when
 * Q7_CUDA_EMULATE is defined; never in a real CUDA build). A launch runs the kernel once on
 * the calling thread as block 0, thread 0 of a 1 x 1 grid: every kernel here walks its
 * elements with a grid-stride loop, so that one thread covers them all, and the block-level
 * steps (shared memory, barriers, shuffles, atomics) reduce to their one-thread meaning.
 * This checks the kernels' arithmetic and indexing, not their parallel behaviour. */
#ifndef Q7_CUDA_EMU_DEVICE_H
#define Q7_CUDA_EMU_DEVICE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline

namespace q7c
{

inline uint3 blockIdx, threadIdx;
inline dim3 blockDim, gridDim;
inline void * emu_smem_ptr;

template <typename F> inline void emu_launch(size_t smem, F && run)
{
    blockIdx = uint3{0, 0, 0};
    threadIdx = uint3{0, 0, 0};
    blockDim = dim3(1, 1, 1);
    gridDim = dim3(1, 1, 1);
    emu_smem_ptr = smem ? calloc(1, smem) : nullptr;
    run();
    free(emu_smem_ptr);
    emu_smem_ptr = nullptr;
}

inline float __fmaf_rn(float a, float b, float c)
{
    return fmaf(a, b, c);
}
inline float __fadd_rn(float a, float b)
{
    return a + b;
}
inline float __fsub_rn(float a, float b)
{
    return a - b;
}
inline float __fmul_rn(float a, float b)
{
    return a * b;
}
inline float __fdiv_rn(float a, float b)
{
    return a / b;
}
inline int __float2int_rz(float v)
{
    return (int)v;
}
inline unsigned int __float_as_uint(float f)
{
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __shfl_down_sync(unsigned int, float v, int)
{
    return v; /* one thread: its own value, max(v, v) = v */
}
inline void __syncthreads()
{
}
inline unsigned int atomicAdd(unsigned int * p, unsigned int v)
{
    unsigned int o = *p;
    *p = o + v;
    return o;
}
inline unsigned long long atomicAdd(unsigned long long * p, unsigned long long v)
{
    unsigned long long o = *p;
    *p = o + v;
    return o;
}
inline unsigned int atomicMax(unsigned int * p, unsigned int v)
{
    unsigned int o = *p;
    *p = v > o ? v : o;
    return o;
}
inline unsigned int atomicOr(unsigned int * p, unsigned int v)
{
    unsigned int o = *p;
    *p = o | v;
    return o;
}

} // namespace q7c

#define Q7C_LAUNCH(kernel, blocks, threads, smem, stream, ...)                                     \
    q7c::emu_launch((smem), [&] { kernel(__VA_ARGS__); })
#define Q7C_DYNAMIC_SMEM(type, name) type * name = static_cast<type *>(q7c::emu_smem_ptr)

#endif
