/* AVX2 + FMA micro-kernels: a 6 x 16 GEMM tile (12 accumulators in ymm registers) and
 * vectorized activations. */
#include "kernels/cpu/cpu_impl.h"
#include "kernels/cpu/cpu_x86_impl.h"

#ifdef Q7_CPU_X86

#include <string.h>

#define AVX2_MR 6
#define AVX2_NR 16

Q7_TARGET_AVX2 static void gemm_avx2(int64_t kc, const float * a, int64_t lda,
                                     const int32_t * kidx, const float * b, int64_t ldb,
                                     float * c, int64_t ldc, int mr, int nr, const float * bias,
                                     enum q7_gemm_init init)
{
    const float * ar[AVX2_MR];
#pragma GCC unroll 6
    for (int i = 0; i < AVX2_MR; i++)
        ar[i] = a + (i < mr ? i : mr - 1) * lda; /* rows past mr repeat the last one */
    const int full = mr == AVX2_MR && nr == AVX2_NR;
    /* c of a partial tile goes through a zero-padded copy: only mr x nr of it is touched */
    float tile[AVX2_MR][AVX2_NR];
    if (init != Q7_GEMM_BIAS && !full) {
        memset(tile, 0, sizeof tile);
        for (int i = 0; i < mr; i++)
            memcpy(tile[i], c + i * ldc, (size_t)nr * sizeof(float));
    }
    __m256 acc[AVX2_MR][2];
    if (init == Q7_GEMM_CONTINUE) {
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            const float * ci = full ? c + i * ldc : tile[i];
            acc[i][0] = _mm256_loadu_ps(ci);
            acc[i][1] = _mm256_loadu_ps(ci + 8);
        }
    } else if (init == Q7_GEMM_ADD) {
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            acc[i][0] = _mm256_setzero_ps();
            acc[i][1] = _mm256_setzero_ps();
        }
    } else {
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            acc[i][0] = _mm256_set1_ps(bias ? bias[i < mr ? i : mr - 1] : 0.0f);
            acc[i][1] = acc[i][0];
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        const int32_t o = kidx[k];
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(ar[i] + o);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        b += ldb;
    }
    if (init == Q7_GEMM_ADD) {
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            const float * ci = full ? c + i * ldc : tile[i];
            acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
            acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
        }
    }
    if (full) {
#pragma GCC unroll 6
        for (int i = 0; i < AVX2_MR; i++) {
            _mm256_storeu_ps(c + i * ldc, acc[i][0]);
            _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
        }
        return;
    }
#pragma GCC unroll 6
    for (int i = 0; i < AVX2_MR; i++) {
        _mm256_storeu_ps(tile[i], acc[i][0]);
        _mm256_storeu_ps(tile[i] + 8, acc[i][1]);
    }
    for (int i = 0; i < mr; i++)
        memcpy(c + i * ldc, tile[i], (size_t)nr * sizeof(float));
}

/* exp(x); |x| beyond ~87 is clamped (exp(-87) or exp(88) instead of 0 or inf), which
 * changes sigmoid and SiLU by less than 1e-37. NaN stays NaN. */
Q7_TARGET_AVX2 static inline __m256 exp256(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x); /* second operand wins on NaN */
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(Q7_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(Q7_EXP_C1), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(Q7_EXP_C2), r);
    __m256 p = _mm256_set1_ps(Q7_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(Q7_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(Q7_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(Q7_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(Q7_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(Q7_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* The exp of SiLU and sigmoid: SLEEF's, as PyTorch's vectorized kernels, when built with it. */
Q7_TARGET_AVX2 static inline __m256 act_exp256(__m256 x)
{
#ifdef Q7_HAVE_SLEEF
    return Sleef_expf8_u10avx2(x);
#else
    return exp256(x);
#endif
}

Q7_TARGET_AVX2 static inline __m256 act256(__m256 v, enum q7_act kind, __m256 slope)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (kind) {
    case Q7_ACT_SILU:
        return _mm256_div_ps(v, _mm256_add_ps(one, act_exp256(_mm256_sub_ps(zero, v))));
    case Q7_ACT_SIGMOID:
        return _mm256_div_ps(one, _mm256_add_ps(one, act_exp256(_mm256_sub_ps(zero, v))));
    case Q7_ACT_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
    case Q7_ACT_RELU:
        return _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case Q7_ACT_IDENTITY:
    default:
        return v;
    }
}

Q7_TARGET_AVX2 static void act_row_avx2(float * dst, const float * src, int64_t n,
                                        const float * bias, struct q7_act_params act)
{
    const __m256 slope = _mm256_set1_ps(act.slope);
    const __m256 vb = _mm256_set1_ps(bias ? *bias : 0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        if (bias)
            v = _mm256_add_ps(v, vb);
        _mm256_storeu_ps(dst + i, act256(v, act.kind, slope));
    }
    if (i < n) {
        float tmp[8] = {0};
        memcpy(tmp, src + i, (size_t)(n - i) * sizeof(float));
        __m256 v = _mm256_loadu_ps(tmp);
        if (bias)
            v = _mm256_add_ps(v, vb);
        _mm256_storeu_ps(tmp, act256(v, act.kind, slope));
        memcpy(dst + i, tmp, (size_t)(n - i) * sizeof(float));
    }
}

/* As fq_row_avx512 (cpu_kernel_avx512.c). */
Q7_TARGET_AVX2 static __m256 fq256(__m256 x, __m256 s)
{
    __m256 v = _mm256_mul_ps(x, s);
    v = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), v));
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_div_ps(v, s);
}

Q7_TARGET_AVX2 static void fq_row_avx2(float * d, int64_t n, float scale)
{
    const __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, fq256(_mm256_loadu_ps(d + i), s));
    if (i < n) {
        float tmp[8] = {0};
        memcpy(tmp, d + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(tmp, fq256(_mm256_loadu_ps(tmp), s));
        memcpy(d + i, tmp, (size_t)(n - i) * sizeof(float));
    }
}

static const struct q7_cpu_ops g_ops_avx2 = {
    .isa = Q7_CPU_ISA_AVX2,
    .name = "avx2",
    .mr = AVX2_MR,
    .nr = AVX2_NR,
    .gemm = gemm_avx2,
    .act_row = act_row_avx2,
    .fq_row = fq_row_avx2,
};

const struct q7_cpu_ops * q7_cpu_ops_avx2(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &g_ops_avx2;
    return NULL;
}

#else

const struct q7_cpu_ops * q7_cpu_ops_avx2(void)
{
    return NULL;
}

#endif
