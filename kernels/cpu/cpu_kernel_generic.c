/* Portable micro-kernels: a 4 x 16 GEMM tile in plain C (the compiler vectorizes the inner
 * loop for whatever the build targets) and activations through the reference formulas, so
 * that this ISA gives exactly the reference's activation values. */
#include "kernels/cpu/cpu_impl.h"
#include "kernels/ref/fake_quant.h"
#include "kernels/ref/ref_impl.h"

#include <math.h>

#define GEN_MR 4
#define GEN_NR 16

/* fmaf: the same single rounding per step as the x86 kernels' FMA instructions (a library
 * call where the build target lacks FMA: slow, but this ISA is the fallback). */
static void gemm_generic(int64_t kc, const float * a, int64_t lda, const int32_t * kidx,
                         const float * b, int64_t ldb, float * c, int64_t ldc, int mr, int nr,
                         const float * bias, enum q7_gemm_init init)
{
    const float * ar[GEN_MR];
    for (int i = 0; i < GEN_MR; i++)
        ar[i] = a + (i < mr ? i : mr - 1) * lda; /* rows past mr repeat the last one */
    float acc[GEN_MR][GEN_NR] = {{0}};
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            acc[i][j] = init == Q7_GEMM_CONTINUE ? c[i * ldc + j]
                        : init == Q7_GEMM_BIAS && bias ? bias[i]
                                                       : 0.0f;
    for (int64_t k = 0; k < kc; k++) {
        for (int i = 0; i < GEN_MR; i++) {
            const float ai = ar[i][kidx[k]];
            for (int j = 0; j < GEN_NR; j++)
                acc[i][j] = fmaf(ai, b[j], acc[i][j]);
        }
        b += ldb;
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] = init == Q7_GEMM_ADD ? acc[i][j] + c[i * ldc + j] : acc[i][j];
}

static void act_row_generic(float * dst, const float * src, int64_t n, const float * bias,
                            struct q7_act_params act)
{
    if (bias) {
        const float b = *bias;
        for (int64_t i = 0; i < n; i++)
            dst[i] = q7_ref_act_apply(src[i] + b, act);
    } else if (act.kind == Q7_ACT_IDENTITY) {
        if (dst != src)
            for (int64_t i = 0; i < n; i++)
                dst[i] = src[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            dst[i] = q7_ref_act_apply(src[i], act);
    }
}

static void fq_row_generic(float * d, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = q7_fq_apply(d[i], scale);
}

static const struct q7_cpu_ops g_ops_generic = {
    .isa = Q7_CPU_ISA_GENERIC,
    .name = "generic",
    .mr = GEN_MR,
    .nr = GEN_NR,
    .gemm = gemm_generic,
    .act_row = act_row_generic,
    .fq_row = fq_row_generic,
};

const struct q7_cpu_ops * q7_cpu_ops_generic(void)
{
    return &g_ops_generic;
}
