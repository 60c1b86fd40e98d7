/* How the CUDA convolution runs one conv: host-side arithmetic only (plain C, built with or
 * without CUDA, tested on machines without a GPU).
 *
 * A conv is a GEMM per image and group. Column-major (cuBLAS) view of row-major NCHW data:
 *
 *     C (M x N, ldc = M) = A (M x K, lda = M) * B (K x N, ldb = K)
 *
 * with M = OH*OW output pixels, N = out_ch/groups, K = in_ch/groups * kh * kw. B is the weight
 * (out_ch, K) row-major, so column co of B is output channel co. C column co is channel co of
 * the output image: a row of OH*OW values, which is exactly an NCHW image (ldc = M), and the
 * images of a batch are C's batch stride, so a channel-slice view of a concat buffer is
 * written in place. A is x itself for a 1x1 stride-1 unpadded conv (direct: lda = H*W = M,
 * the batch stride of x) or an im2col buffer of `chunk` images in the workspace.
 *
 * The workspace is bounded (ws_limit): images are batched while they fit, and when one
 * image's im2col does not, the output pixels are cut into slices of m_slice pixels, each an
 * im2col of that slice (lda = slice length) and a GEMM writing rows [m0, m0 + len) of C
 * (ldc = M). This bounds the memory of large inputs; bounds small enough to keep the buffer in
 * the L2 cache (8 to 64 MiB) measured slower than the 256 MiB default on an H200.
 *
 * The GEMM accumulates in FP32 (CUBLAS_COMPUTE_32F) and writes y's type straight into y when
 * y is FP32 or has the GEMM's input type (FP16 activations: the sum is rounded to FP16 once
 * before bias + activation run in place, which halves the epilogue's traffic), else FP32 into
 * a workspace from which the epilogue writes y. */
#ifndef Q7_CUDA_CONV_PLAN_H
#define Q7_CUDA_CONV_PLAN_H

#include "kernels/cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default workspace bound: the chunk of images is as large as fits under it (at least 1). */
#define Q7_CUDA_CONV_WS_DEFAULT ((size_t)256 << 20)
/* Alignment of the pieces of the workspace (bytes). */
#define Q7_CUDA_WS_ALIGN 256

struct q7_cuda_conv_plan {
    enum q7_dtype gemm_in; /* A and B: Q7_DTYPE_F32 or Q7_DTYPE_F16 (tensor cores) */
    int direct;            /* A is x (no im2col) */
    int out_direct;        /* C is y, in y's type (else an FP32 workspace + epilogue) */
    int64_t oh, ow;
    int64_t m, n, k;              /* per image and group (see above) */
    int64_t m_slice;              /* output pixels per im2col + GEMM (m: no slicing) */
    int im2col_tiled;             /* 1: the shared-memory im2col (set by the caller; 0 here) */
    int64_t k_all;                /* in_ch * kh * kw: rows of the im2col buffer per image */
    int64_t chunk;                /* images per batched GEMM */
    size_t col_offset, col_bytes; /* im2col buffer for a chunk (0 bytes when direct) */
    size_t out_offset, out_bytes; /* FP32 GEMM output for a chunk (0 when out_direct) */
    size_t ws_bytes;              /* workspace the conv needs */
};

/* Plans a conv of x into y. gemm_in: the GEMM input type (F32, or F16 for FP16 mode).
 * fake_quant: the input is fake-quantized (forces im2col, which quantizes as it reads).
 * ws_limit: 0 = Q7_CUDA_CONV_WS_DEFAULT. Errors: Q7_ERR_ARG when the shapes do not fit the
 * parameters (channels, groups, output size), Q7_ERR_LIMIT when a GEMM dimension exceeds
 * cuBLAS's int or a single image's workspace overflows size_t. */
enum q7_status q7_cuda_conv2d_plan(const struct q7_cuda_view * x, const struct q7_cuda_view * y,
                                   const struct q7_conv_params * p, enum q7_dtype gemm_in,
                                   int fake_quant, size_t ws_limit, struct q7_cuda_conv_plan * out);

/* Output size of a conv or pool along one axis, as PyTorch: floor((in + 2*pad - dil*(k-1) - 1)
 * / stride) + 1; -1 when the window does not fit. */
int64_t q7_cuda_conv_out_size(int64_t in, int k, int stride, int pad, int dil);

#ifdef __cplusplus
}
#endif
#endif
