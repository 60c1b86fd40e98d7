/* bench_conv_cuda: where a CUDA convolution's time goes. For yolov7's heaviest conv shapes
 * (batch 8 by default), times q7_cuda_conv2d whole and each of its steps alone with CUDA
 * events: the im2col (per-row and tiled, im2col.cuh), the cuBLAS GEMM as q7 calls it, the
 * bias + activation epilogue, and a GEMM variant (A read transposed, "TN", as an [pixel][k]
 * im2col would give). Built only with
 * CUDA; tools/gpu-check.sh runs it. Device buffers hold zeros: the timings do not depend on the
 * values. Each workspace bound of the list (MiB; 0: the default) gives a table: it sets how
 * many images one im2col + GEMM takes, or how many output pixels when one image does not fit
 * (conv_plan.h); the steps alone are timed for one chunk or slice, times their number.
 *
 *   bench_conv_cuda [batch=8] [reps=20] [workspace MiB list, e.g. 0,32,16] */
#include "kernels/cuda/bias_act.cuh"
#include "kernels/cuda/conv2d.cuh"
#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/im2col.cuh"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shape {
    const char * name;
    int cin, cout, k, stride, hw; /* hw: input height = width */
};

static const struct shape shapes[] = {
    {"model.0  3->32 3x3", 3, 32, 3, 1, 640},   {"model.1  32->64 3x3/2", 32, 64, 3, 2, 640},
    {"model.2  64->64 3x3", 64, 64, 3, 1, 320}, {"model.3  64->128 3x3/2", 64, 128, 3, 2, 320},
    {"model.5  128->64 1x1", 128, 64, 1, 1, 160}, {"model.6  64->64 3x3", 64, 64, 3, 1, 160},
    {"model.102 128->256 3x3", 128, 256, 3, 1, 80}, {"model.103 256->512 3x3", 256, 512, 3, 1, 40},
};

#define CK(call)                                                                                   \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "bench_conv_cuda: %s failed at line %d\n", #call, __LINE__);          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static cudaStream_t s;
static cudaEvent_t ev0, ev1;

/* Milliseconds per call of what the step does, over reps calls after one warm-up. */
#define TIME(ms, reps, step)                                                                       \
    do {                                                                                           \
        step;                                                                                      \
        CK(cudaEventRecord(ev0, s));                                                               \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            step;                                                                                  \
        }                                                                                          \
        CK(cudaEventRecord(ev1, s));                                                               \
        CK(cudaEventSynchronize(ev1));                                                             \
        float f_ = 0;                                                                              \
        CK(cudaEventElapsedTime(&f_, ev0, ev1));                                                   \
        (ms) = f_ / (reps);                                                                        \
    } while (0)

static void run_shape(cublasHandle_t blas, const struct shape * sh, int n, int fp16, int reps,
                      size_t ws_limit)
{
    const enum q7_dtype t = fp16 ? Q7_DTYPE_F16 : Q7_DTYPE_F32;
    const size_t es = fp16 ? 2 : 4;
    const int pad = sh->k / 2;
    const int oh = (sh->hw + 2 * pad - sh->k) / sh->stride + 1;
    struct q7_conv_params p = {sh->cin, sh->cout, sh->k, sh->k, sh->stride, sh->stride, pad, pad,
                               1, 1, 1, {Q7_ACT_SILU, 0.0f}};
    void *x, *y, *w, *ws, *bias;
    CK(cudaMalloc(&x, (size_t)n * sh->cin * sh->hw * sh->hw * es));
    CK(cudaMalloc(&y, (size_t)n * sh->cout * oh * oh * es));
    CK(cudaMalloc(&w, (size_t)sh->cout * sh->cin * sh->k * sh->k * es));
    CK(cudaMalloc(&bias, (size_t)sh->cout * 4));
    const struct q7_cuda_view xv = {x, t, n, sh->cin, sh->hw, sh->hw,
                                    (int64_t)sh->cin * sh->hw * sh->hw};
    const struct q7_cuda_view yv = {y, t, n, sh->cout, oh, oh, (int64_t)sh->cout * oh * oh};
    struct q7_cuda_conv_plan pl;
    CK(q7_cuda_conv2d_plan(&xv, &yv, &p, t, 0, ws_limit, &pl));
    CK(cudaMalloc(&ws, pl.ws_bytes ? pl.ws_bytes : 256));
    CK(cudaMemsetAsync(x, 0, (size_t)n * sh->cin * sh->hw * sh->hw * es, s));
    CK(cudaMemsetAsync(w, 0, (size_t)sh->cout * sh->cin * sh->k * sh->k * es, s));
    CK(cudaMemsetAsync(bias, 0, (size_t)sh->cout * 4, s));
    const int m = (int)pl.m, nn = (int)pl.n, k = (int)pl.k, nb = (int)pl.chunk;
    const int ms = (int)pl.m_slice, slices = (m + ms - 1) / ms;
    const cudaDataType_t ab = fp16 ? CUDA_R_16F : CUDA_R_32F;
    const float one = 1.0f, zero = 0.0f;
    void * col = (char *)ws + pl.col_offset;
    void * gout = (char *)ws + pl.out_offset;
    void * a = pl.direct ? x : col;
    const long long a_stride = pl.direct ? (long long)xv.batch_stride : (long long)k * ms;
    const int lda = pl.direct ? m : ms;
    void * c = pl.out_direct ? y : gout;
    const cudaDataType_t ct = pl.out_direct && fp16 ? CUDA_R_16F : CUDA_R_32F;
    const long long c_stride = (long long)nn * m;
    double full, full_tiled, im2col = 0, im2col_tiled = 0, gemm, gemm_tn, epi = 0;
    const int chunks = (int)((n + nb - 1) / nb) * slices;
    TIME(full, reps, CK(q7_cuda_conv2d(s, blas, &xv, w, bias, &p, 0.0f, &yv, &pl, ws)));
    struct q7_cuda_conv_plan pt = pl;
    pt.im2col_tiled = 1;
    TIME(full_tiled, reps, CK(q7_cuda_conv2d(s, blas, &xv, w, bias, &p, 0.0f, &yv, &pt, ws)));
    if (!pl.direct) {
        TIME(im2col, reps, CK(q7_cuda_im2col(s, &xv, 0, nb, &p, oh, oh, 0, ms, 0.0f, col, t, 0)));
        TIME(im2col_tiled, reps,
             CK(q7_cuda_im2col(s, &xv, 0, nb, &p, oh, oh, 0, ms, 0.0f, col, t, 1)));
    }
    TIME(gemm, reps,
         CK(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, ms, nn, k, &one, a, ab, lda,
                                       a_stride, w, ab, k, 0, &zero, c, ct, m, c_stride, nb,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)));
    TIME(gemm_tn, reps,
         CK(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, ms, nn, k, &one, a, ab, k,
                                       a_stride, w, ab, k, 0, &zero, c, ct, m, c_stride, nb,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)));
    {
        struct q7_cuda_view src = yv;
        src.n = nb;
        struct q7_cuda_view dst = src;
        if (!pl.out_direct) {
            src.data = gout;
            src.dtype = Q7_DTYPE_F32;
        }
        TIME(epi, reps, CK(q7_cuda_bias_act(s, &src, (const float *)bias, p.act, &dst)));
        epi /= slices; /* once per chunk of images */
    }
    const double flop = 2.0 * m * nn * (double)k * n;
    printf("| %-24s | %s | %4d | %6d | %7.3f | %7.3f | %7.3f | %7.3f | %7.3f | %7.3f | %7.3f | "
           "%6.1f |\n",
           sh->name, fp16 ? "FP16" : "FP32", nb, ms, full, full_tiled, im2col * chunks,
           im2col_tiled * chunks, gemm * chunks, gemm_tn * chunks, epi * chunks,
           flop / full * 1e-9);
    fflush(stdout);
    cudaFree(x);
    cudaFree(y);
    cudaFree(w);
    cudaFree(ws);
    cudaFree(bias);
}

int main(int argc, char ** argv)
{
    const int n = argc > 1 ? atoi(argv[1]) : 8;
    const int reps = argc > 2 ? atoi(argv[2]) : 20;
    const char * ws_list = argc > 3 ? argv[3] : "0";
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("bench_conv_cuda: no CUDA device\n");
        return 77;
    }
    cublasHandle_t blas;
    CK(cudaStreamCreate(&s));
    CK(cudaEventCreate(&ev0));
    CK(cudaEventCreate(&ev1));
    CK(cublasCreate(&blas));
    CK(cublasSetStream(blas, s));
    for (const char * w = ws_list; *w;) {
        const size_t mib = (size_t)strtoull(w, NULL, 10);
        printf("\nbatch %d, workspace bound %s%zu MiB, ms per batch (steps alone: times the "
               "chunks and slices a batch needs), SiLU, %d reps\n",
               n, mib ? "" : "default ", mib ? mib : (size_t)(Q7_CUDA_CONV_WS_DEFAULT >> 20), reps);
        printf("| conv | type | images | pixels | q7 conv | q7 conv, tiled im2col | im2col | "
               "tiled im2col | GEMM | GEMM TN | epilogue | TFLOP/s |\n"
               "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (int fp16 = 1; fp16 >= 0; fp16--)
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                run_shape(blas, &shapes[i], n, fp16, reps, mib << 20);
        w = strchr(w, ',') ? strchr(w, ',') + 1 : w + strlen(w);
    }
    cublasDestroy(blas);
    return 0;
}
