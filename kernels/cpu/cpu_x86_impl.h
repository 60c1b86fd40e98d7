/* Private to the x86 micro-kernel files: target attributes and the vector exp shared by the
 * activations. Compiled per function for its ISA (the build itself targets baseline x86-64),
 * and only called after the CPU was checked to support it (cpu_isa.c). */
#ifndef Q7_CPU_X86_IMPL_H
#define Q7_CPU_X86_IMPL_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define Q7_CPU_X86 1
#include <immintrin.h>

#define Q7_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define Q7_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))

/* SLEEF declares its AVX2 and AVX-512 functions only where the compiler targets those ISAs:
 * include it as the micro-kernels are compiled. PyTorch's vectorized exp is Sleef_expf8_u10
 * (AVX2); its AVX-512 twin gives the same values lane for lane (checked on every seventh of
 * the 2^32 floats). */
#ifdef Q7_HAVE_SLEEF
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#include <sleef.h>
#pragma GCC pop_options
#endif

/* exp(x) in FP32 to about 1 ulp (Cody-Waite reduction by ln 2 and the degree-6 minimax
 * polynomial of Cephes' expf); the reference's expf and this differ by at most ~2 ulp. Used
 * for SiLU and sigmoid only in builds without SLEEF. */
#define Q7_EXP_LOG2E 1.44269504088896341f
#define Q7_EXP_C1 0.693359375f     /* ln 2, high part (exact in few bits) */
#define Q7_EXP_C2 -2.12194440e-4f  /* ln 2 - C1 */
#define Q7_EXP_P0 1.9875691500e-4f
#define Q7_EXP_P1 1.3981999507e-3f
#define Q7_EXP_P2 8.3334519073e-3f
#define Q7_EXP_P3 4.1665795894e-2f
#define Q7_EXP_P4 1.6666665459e-1f
#define Q7_EXP_P5 5.0000001201e-1f

#endif
#endif
