/* AVX-512F micro-kernels: an 8 x 48 GEMM tile (24 accumulators in zmm registers, 3 vector
 * loads of B and 8 broadcasts of A per step) and vectorized activations with masked tails. */
#include "kernels/cpu/cpu_impl.h"
#include "kernels/cpu/cpu_x86_impl.h"

#ifdef Q7_CPU_X86

#define AVX512_MR 8
#define AVX512_NR 48

Q7_TARGET_AVX512 static inline __mmask16 tail_mask(int n)
{
    if (n <= 0)
        return 0;
    if (n >= 16)
        return 0xffff;
    return (__mmask16)((1u << n) - 1u);
}

Q7_TARGET_AVX512 static void gemm_avx512(int64_t kc, const float * a, int64_t lda,
                                         const int32_t * kidx, const float * b, int64_t ldb,
                                         float * c, int64_t ldc, int mr, int nr,
                                         const float * bias, enum q7_gemm_init init)
{
    const float * ar[AVX512_MR];
#pragma GCC unroll 8
    for (int i = 0; i < AVX512_MR; i++)
        ar[i] = a + (i < mr ? i : mr - 1) * lda; /* rows past mr repeat the last one */
    const __mmask16 m0 = tail_mask(nr), m1 = tail_mask(nr - 16), m2 = tail_mask(nr - 32);
    __m512 acc[AVX512_MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < AVX512_MR; i++) {
        if (init == Q7_GEMM_CONTINUE) {
            const float * ci = c + (i < mr ? i : mr - 1) * ldc;
            acc[i][0] = _mm512_maskz_loadu_ps(m0, ci);
            acc[i][1] = _mm512_maskz_loadu_ps(m1, ci + 16);
            acc[i][2] = _mm512_maskz_loadu_ps(m2, ci + 32);
        } else if (init == Q7_GEMM_ADD) {
            acc[i][0] = _mm512_setzero_ps();
            acc[i][1] = acc[i][0];
            acc[i][2] = acc[i][0];
        } else {
            acc[i][0] = _mm512_set1_ps(bias ? bias[i < mr ? i : mr - 1] : 0.0f);
            acc[i][1] = acc[i][0];
            acc[i][2] = acc[i][0];
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = _mm512_loadu_ps(b + 16);
        const __m512 b2 = _mm512_loadu_ps(b + 32);
        const int32_t o = kidx[k];
#pragma GCC unroll 8
        for (int i = 0; i < AVX512_MR; i++) {
            const __m512 ai = _mm512_set1_ps(ar[i][o]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(ai, b2, acc[i][2]);
        }
        b += ldb;
    }
    /* Constant indices after unrolling keep acc in registers. */
#pragma GCC unroll 8
    for (int i = 0; i < AVX512_MR; i++) {
        if (i >= mr)
            break;
        float * ci = c + i * ldc;
        if (init == Q7_GEMM_ADD) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
            acc[i][2] = _mm512_add_ps(acc[i][2], _mm512_maskz_loadu_ps(m2, ci + 32));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
        _mm512_mask_storeu_ps(ci + 32, m2, acc[i][2]);
    }
}

/* exp(x) to ~1 ulp; scalef turns the reduced result into 0 or inf at the ends, so only
 * the clamp that keeps the reduction finite is needed. NaN stays NaN. */
Q7_TARGET_AVX512 static inline __m512 exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x); /* second operand wins on NaN */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(Q7_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(Q7_EXP_C1), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(Q7_EXP_C2), r);
    __m512 p = _mm512_set1_ps(Q7_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(Q7_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(Q7_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(Q7_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(Q7_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(Q7_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* The exp of SiLU and sigmoid: SLEEF's, as PyTorch's vectorized kernels, when built with it. */
Q7_TARGET_AVX512 static inline __m512 act_exp512(__m512 x)
{
#ifdef Q7_HAVE_SLEEF
    return Sleef_expf16_u10avx512f(x);
#else
    return exp512(x);
#endif
}

Q7_TARGET_AVX512 static inline __m512 act512(__m512 v, enum q7_act kind, __m512 slope)
{
    const __m512 zero = _mm512_setzero_ps();
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (kind) {
    case Q7_ACT_SILU:
        return _mm512_div_ps(v, _mm512_add_ps(one, act_exp512(_mm512_sub_ps(zero, v))));
    case Q7_ACT_SIGMOID:
        return _mm512_div_ps(one, _mm512_add_ps(one, act_exp512(_mm512_sub_ps(zero, v))));
    case Q7_ACT_LEAKY_RELU:
        return _mm512_mask_mov_ps(_mm512_mul_ps(v, slope),
                                  _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
    case Q7_ACT_RELU:
        return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), zero);
    case Q7_ACT_IDENTITY:
    default:
        return v;
    }
}

Q7_TARGET_AVX512 static void act_row_avx512(float * dst, const float * src, int64_t n,
                                            const float * bias, struct q7_act_params act)
{
    const __m512 slope = _mm512_set1_ps(act.slope);
    const __m512 vb = _mm512_set1_ps(bias ? *bias : 0.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(src + i);
        if (bias)
            v = _mm512_add_ps(v, vb);
        _mm512_storeu_ps(dst + i, act512(v, act.kind, slope));
    }
    if (i < n) {
        const __mmask16 m = tail_mask((int)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, src + i);
        if (bias)
            v = _mm512_add_ps(v, vb);
        _mm512_mask_storeu_ps(dst + i, m, act512(v, act.kind, slope));
    }
}

/* Clamping before rounding gives the same as after (the bounds are integers); max/min take
 * the bound as first operand so that a NaN passes through as in the reference. roundscale
 * rounds half to even and keeps the sign of zero, like nearbyintf. */
Q7_TARGET_AVX512 static __m512 fq512(__m512 x, __m512 s)
{
    __m512 v = _mm512_mul_ps(x, s);
    v = _mm512_min_ps(_mm512_set1_ps(127.0f), _mm512_max_ps(_mm512_set1_ps(-127.0f), v));
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_div_ps(v, s);
}

Q7_TARGET_AVX512 static void fq_row_avx512(float * d, int64_t n, float scale)
{
    const __m512 s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, fq512(_mm512_loadu_ps(d + i), s));
    if (i < n) {
        const __mmask16 m = tail_mask((int)(n - i));
        _mm512_mask_storeu_ps(d + i, m, fq512(_mm512_maskz_loadu_ps(m, d + i), s));
    }
}

static const struct q7_cpu_ops g_ops_avx512 = {
    .isa = Q7_CPU_ISA_AVX512,
    .name = "avx512",
    .mr = AVX512_MR,
    .nr = AVX512_NR,
    .gemm = gemm_avx512,
    .act_row = act_row_avx512,
    .fq_row = fq_row_avx512,
};

const struct q7_cpu_ops * q7_cpu_ops_avx512(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return &g_ops_avx512;
    return NULL;
}

#else

const struct q7_cpu_ops * q7_cpu_ops_avx512(void)
{
    return NULL;
}

#endif
