/* Private pieces of the optimized CPU kernels: the thread pool, the per-ISA micro-kernels
 * and the switches the tests use to exercise every path. Not installed. */
#ifndef Q7_CPU_IMPL_H
#define Q7_CPU_IMPL_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Most threads the pool runs (caller included); also the number of per-thread scratch slots
 * a conv workspace provides, so that the workspace size never depends on the thread count. */
#define Q7_CPU_MAX_THREADS 64

/* Alignment of the scratch areas carved out of a caller's workspace. */
#define Q7_CPU_ALIGN 64

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---- thread pool (cpu_threads.c) ---- */

/* A task body: `task` in [0, n_tasks), `thread` in [0, min(q7_cpu_threads(), n_tasks)),
 * distinct among tasks that run at the same time (a per-thread scratch index). */
typedef void (*q7_cpu_task_fn)(void * ctx, int64_t task, int thread);

/* Runs fn for every task on the pool (the caller works too) and returns when all are done.
 * Tasks are handed out in increasing order, dynamically. A call from inside a task, or
 * while another thread's parallel call is running, runs its tasks serially on the calling
 * thread with thread = 0 (still correct: scratch is per call). */
void q7_cpu_parallel(int64_t n_tasks, q7_cpu_task_fn fn, void * ctx);

/* Splits `total` items into tasks of at least `min_items` items, about 4 per thread (for
 * load balance), never more than `total`. Returns the number of tasks (>= 1 when total > 0). */
int64_t q7_cpu_split(int64_t total, int64_t min_items);

/* ---- instruction-set specific kernels (cpu_isa.c, cpu_kernel_*.c) ---- */

enum q7_cpu_isa {
    Q7_CPU_ISA_GENERIC = 0, /* portable C */
    Q7_CPU_ISA_AVX2,        /* x86-64 AVX2 + FMA */
    Q7_CPU_ISA_AVX512,      /* x86-64 AVX-512F */
    Q7_CPU_ISA_COUNT
};

/* How a micro-kernel call starts each output's sum. */
enum q7_gemm_init {
    Q7_GEMM_BIAS = 0, /* from bias[i] (0 when bias is NULL) */
    Q7_GEMM_CONTINUE, /* from what c holds: the chain of an earlier call goes on */
    Q7_GEMM_ADD,      /* from 0, and what c holds is added to the result at the end */
};

/* GEMM micro-kernel: C[mr x nr] = A_panel * B_panel over kc steps, each output one FMA chain
 * in step order, started as `init` says (PyTorch's oneDNN order when the caller orders the
 * steps and picks init so: cpu_conv.c).
 * a: MR weight rows, row i at a + i*lda; step k reads a[i*lda + kidx[k]];
 * b: kc rows of NR floats, row k at b + k*ldb (ldb = NR for a packed, zero-padded sliver;
 *    the input's own row stride when B is read in place): all NR columns are read;
 * c: row-major, row stride ldc; only the top-left mr x nr block is read or written (mr <= MR,
 *    nr <= NR);
 * bias: row i's start value for Q7_GEMM_BIAS (NULL: 0). */
typedef void (*q7_cpu_gemm_fn)(int64_t kc, const float * a, int64_t lda, const int32_t * kidx,
                               const float * b, int64_t ldb, float * c, int64_t ldc, int mr,
                               int nr, const float * bias, enum q7_gemm_init init);

/* dst[i] = act(src[i] + *bias) (no add when bias is NULL) for i < n; dst may equal src. */
typedef void (*q7_cpu_act_row_fn)(float * dst, const float * src, int64_t n, const float * bias,
                                  struct q7_act_params act);

/* d[i] = fq(d[i], scale) for i < n, bit-exact with q7_fq_apply (kernels/ref/fake_quant.h)
 * for scale != 0: clamp(round_half_even(d * scale), -127, 127) / scale, NaN kept, sign of
 * zero kept. */
typedef void (*q7_cpu_fq_row_fn)(float * d, int64_t n, float scale);

struct q7_cpu_ops {
    enum q7_cpu_isa isa;
    const char * name;
    int mr, nr; /* micro-kernel tile */
    q7_cpu_gemm_fn gemm;
    q7_cpu_act_row_fn act_row;
    q7_cpu_fq_row_fn fq_row;
};

/* Kernel table of one ISA; NULL when this build or this machine lacks it. */
const struct q7_cpu_ops * q7_cpu_ops_generic(void);
const struct q7_cpu_ops * q7_cpu_ops_avx2(void);
const struct q7_cpu_ops * q7_cpu_ops_avx512(void);

/* The table in use: the best ISA the machine supports, unless forced. */
const struct q7_cpu_ops * q7_cpu_ops_get(void);

/* Tests and benchmarks: use `isa` from now on (Q7_CPU_ISA_COUNT = back to automatic).
 * Returns 0 when the machine or build lacks it (nothing changes). Not thread-safe: call it
 * between kernel calls, and query q7_cpu_conv2d_workspace after it. */
int q7_cpu_isa_force(enum q7_cpu_isa isa);

/* Convolution strategies (cpu_conv.c). */
enum q7_cpu_conv_path {
    Q7_CPU_CONV_AUTO = 0, /* the packed strategy */
    Q7_CPU_CONV_PACKED,   /* q7's blocked GEMM, im2col fused into the packing of B */
    Q7_CPU_CONV_BLAS,     /* im2col tiles + OpenBLAS sgemm + epilogue pass */
};

/* Tests and benchmarks: forces a strategy; returns 0 when unavailable (BLAS without
 * OpenBLAS). Same rules as q7_cpu_isa_force. */
int q7_cpu_conv_path_force(enum q7_cpu_conv_path path);
/* The strategy q7_cpu_conv2d uses now (never AUTO). */
enum q7_cpu_conv_path q7_cpu_conv_path_get(void);

/* The OpenBLAS strategy (cpu_conv_blas.c); only with Q7_HAVE_OPENBLAS. */
size_t q7_cpu_conv2d_blas_workspace(const struct q7_view * x, const struct q7_conv_params * p,
                                    const struct q7_view * y);
void q7_cpu_conv2d_blas(const struct q7_view * x, const float * weight, const float * bias,
                        const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                        const struct q7_view * y, void * workspace);

/* Fills pixels [p_begin, p_end) of row k of the im2col matrix of image n, group g (the input
 * values the conv multiplies by weight column k), fake-quantized when in_scale != 0, zeros
 * for padding. Shared by the packing of both strategies (cpu_conv.c). */
void q7_cpu_im2col_row(const struct q7_view * x, const struct q7_conv_params * p,
                       int64_t out_w, float in_scale, int64_t n, int64_t g, int64_t k,
                       int64_t p_begin, int64_t p_end, float * dst);

/* Fake-quantizes n floats in place, bit-exact with q7_fq_apply (scale 0: zeros). */
void q7_cpu_fake_quant_row(float * d, int64_t n, float scale);

/* Rounds a workspace pointer up to Q7_CPU_ALIGN. */
static inline float * q7_cpu_align_ptr(void * p)
{
    return (float *)(((uintptr_t)p + (Q7_CPU_ALIGN - 1)) & ~(uintptr_t)(Q7_CPU_ALIGN - 1));
}

#endif
