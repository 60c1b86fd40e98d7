/* im2col on the device, fake-quantizing the input as it is read. A block row handles one
 * (image, k) row of the column buffer: k's channel and kernel tap are worked out once per
 * row, and each thread walks about 8 output pixels with 32-bit arithmetic (the plan bounds M
 * by INT_MAX), so the only per-element division is p / OW. (One pixel per thread made the
 * launch millions of tiny blocks: 4 ms for yolov7's model.2 at batch 8 on an H100, against
 * 0.5 ms for its GEMM.) Grid-stride loops on all three grid axes cover any size. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

#include <limits.h>

using namespace q7c;

struct im2col_args {
    int64_t n0, K;
    int M, ow, kh, kw, sh, sw, ph, pw, dh, dw;
    float in_scale;
    int col_f16;
};

static __global__ void im2col_kernel(dview x, im2col_args a, void * col, int64_t count)
{
    const int xh = (int)x.h, xw = (int)x.w;
    for (int64_t img = blockIdx.z; img < count; img += gridDim.z)
        for (int64_t k = blockIdx.y; k < a.K; k += gridDim.y) {
            const int kk = (int)(k % (a.kw * a.kh)); /* kh * kw is an int (conv params) */
            const int kx = kk % a.kw, ky = kk / a.kw;
            const int64_t ci = k / (a.kw * a.kh);
            const int64_t src = (a.n0 + img) * x.bs + ci * x.hw;
            const int64_t dst = (img * a.K + k) * a.M;
            const int y0 = ky * a.dh - a.ph, x0 = kx * a.dw - a.pw;
            for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < a.M;
                 p += gridDim.x * blockDim.x) {
                const int oy = p / a.ow, ox = p - oy * a.ow;
                const int iy = oy * a.sh + y0, ix = ox * a.sw + x0;
                float v = 0.0f;
                if (iy >= 0 && iy < xh && ix >= 0 && ix < xw) {
                    v = load(x, src + (int64_t)iy * xw + ix);
                    if (a.in_scale != 0.0f)
                        v = fake_quant(v, a.in_scale);
                }
                if (a.col_f16)
                    static_cast<__half *>(col)[dst + p] = __float2half_rn(v);
                else
                    static_cast<float *>(col)[dst + p] = v;
            }
        }
}

enum q7_status q7_cuda_im2col(cudaStream_t s, const struct q7_cuda_view * x, int64_t n0,
                              int64_t count, const struct q7_conv_params * p, int64_t oh,
                              int64_t ow, float in_scale, void * col, enum q7_dtype col_dtype)
{
    im2col_args a;
    a.n0 = n0;
    a.K = (int64_t)p->in_ch * p->kh * p->kw;
    if (oh * ow > INT_MAX || x->h > INT_MAX / 2 || x->w > INT_MAX / 2)
        return q7_error_set(Q7_ERR_LIMIT, "cuda im2col: %lldx%lld output exceeds int",
                            (long long)oh, (long long)ow);
    a.M = (int)(oh * ow);
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
    a.col_f16 = col_dtype == Q7_DTYPE_F16;
    if (count == 0 || a.K == 0 || a.M == 0)
        return Q7_OK;
    const dim3 grid(row_blocks(a.M, 8), (unsigned)(a.K < 65535 ? a.K : 65535),
                    (unsigned)(count < 65535 ? count : 65535));
    Q7C_LAUNCH(im2col_kernel, grid, THREADS, 0, s, make_dview(x), a, col, count);
    return Q7_CUDA_LAUNCHED("im2col");
}
