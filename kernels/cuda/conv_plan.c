/* Host-side planning of the CUDA convolution (see conv_plan.h). */
#include "kernels/cuda/conv_plan.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

static size_t align_ws(size_t x)
{
    return (x + Q7_CUDA_WS_ALIGN - 1) & ~(size_t)(Q7_CUDA_WS_ALIGN - 1);
}

int64_t q7_cuda_conv_out_size(int64_t in, int k, int stride, int pad, int dil)
{
    if (k < 1 || stride < 1 || pad < 0 || dil < 1)
        return -1;
    int64_t span = in + 2 * (int64_t)pad - (int64_t)dil * (k - 1) - 1;
    if (span < 0)
        return -1;
    return span / stride + 1;
}

enum q7_status q7_cuda_conv2d_plan(const struct q7_cuda_view * x, const struct q7_cuda_view * y,
                                   const struct q7_conv_params * p, enum q7_dtype gemm_in,
                                   int fake_quant, size_t ws_limit, struct q7_cuda_conv_plan * out)
{
    memset(out, 0, sizeof *out);
    if (gemm_in != Q7_DTYPE_F32 && gemm_in != Q7_DTYPE_F16)
        return q7_error_set(Q7_ERR_ARG, "cuda conv: GEMM input type %s", q7_dtype_name(gemm_in));
    if (p->groups < 1 || p->in_ch % p->groups || p->out_ch % p->groups)
        return q7_error_set(Q7_ERR_ARG, "cuda conv: %d groups do not divide %d -> %d channels",
                            p->groups, p->in_ch, p->out_ch);
    if (x->c != p->in_ch || y->c != p->out_ch || x->n != y->n)
        return q7_error_set(Q7_ERR_ARG,
                            "cuda conv: views %lldx%lld -> %lldx%lld do not fit %d -> %d channels",
                            (long long)x->n, (long long)x->c, (long long)y->n, (long long)y->c,
                            p->in_ch, p->out_ch);
    const int64_t oh = q7_cuda_conv_out_size(x->h, p->kh, p->stride_h, p->pad_h, p->dil_h);
    const int64_t ow = q7_cuda_conv_out_size(x->w, p->kw, p->stride_w, p->pad_w, p->dil_w);
    if (oh < 1 || ow < 1 || oh != y->h || ow != y->w)
        return q7_error_set(Q7_ERR_ARG, "cuda conv: output %lldx%lld, parameters give %lldx%lld",
                            (long long)y->h, (long long)y->w, (long long)oh, (long long)ow);
    if (x->batch_stride < x->c * x->h * x->w || y->batch_stride < y->c * y->h * y->w)
        return q7_error_set(Q7_ERR_ARG, "cuda conv: batch stride smaller than an image");
    out->gemm_in = gemm_in;
    out->oh = oh;
    out->ow = ow;
    out->m = oh * ow;
    out->n = p->out_ch / p->groups;
    out->k = (int64_t)(p->in_ch / p->groups) * p->kh * p->kw;
    out->k_all = (int64_t)p->in_ch * p->kh * p->kw;
    if (out->m > INT_MAX || out->n > INT_MAX || out->k > INT_MAX)
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: GEMM %lld x %lld x %lld exceeds cuBLAS's int",
                            (long long)out->m, (long long)out->n, (long long)out->k);
    out->direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                  p->pad_h == 0 && p->pad_w == 0 && !fake_quant && x->dtype == gemm_in;
    out->out_direct = y->dtype == Q7_DTYPE_F32 || y->dtype == gemm_in;

    /* bytes per image of each workspace piece */
    size_t col_img = 0, out_img = 0, tmp;
    const size_t in_size = q7_dtype_size(gemm_in);
    if (!out->direct && (!q7_size_mul((size_t)out->k_all, (size_t)out->m, &tmp) ||
                         !q7_size_mul(tmp, in_size, &col_img)))
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: im2col buffer overflows");
    if (!out->out_direct && (!q7_size_mul((size_t)p->out_ch, (size_t)out->m, &tmp) ||
                             !q7_size_mul(tmp, sizeof(float), &out_img)))
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: GEMM output buffer overflows");
    const size_t per_img = align_ws(col_img) + align_ws(out_img);
    if (ws_limit == 0)
        ws_limit = Q7_CUDA_CONV_WS_DEFAULT;
    out->m_slice = out->m;
    if (!out->direct && out->out_direct && per_img > ws_limit) {
        /* one image's im2col does not fit: slices of output pixels, a multiple of 8 (the
         * vectorized im2col), at least 8 */
        const size_t per_px = (size_t)out->k_all * in_size;
        int64_t ms = (int64_t)(ws_limit / per_px) / 8 * 8;
        if (ms < 8)
            ms = 8;
        if (ms < out->m) {
            out->m_slice = ms;
            col_img = (size_t)ms * per_px; /* no overflow: at most col_img */
        }
    }
    const size_t per_chunk_img = align_ws(col_img) + align_ws(out_img);
    int64_t chunk = x->n < 1 ? 1 : x->n;
    if (per_chunk_img > 0 && (size_t)chunk > ws_limit / per_chunk_img)
        chunk = (int64_t)(ws_limit / per_chunk_img);
    if (chunk < 1)
        chunk = 1;
    if (chunk > INT_MAX)
        chunk = INT_MAX;
    out->chunk = chunk;
    if (!q7_size_mul(col_img, (size_t)chunk, &out->col_bytes) ||
        !q7_size_mul(out_img, (size_t)chunk, &out->out_bytes))
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: workspace overflows");
    if (out->col_bytes > SIZE_MAX / 4 || out->out_bytes > SIZE_MAX / 4)
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: workspace overflows");
    out->col_offset = 0;
    out->out_offset = align_ws(out->col_bytes);
    if (!q7_size_add(out->out_offset, align_ws(out->out_bytes), &out->ws_bytes))
        return q7_error_set(Q7_ERR_LIMIT, "cuda conv: workspace overflows");
    return Q7_OK;
}
