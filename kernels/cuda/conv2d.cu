/* Convolution on the device: im2col + cuBLAS strided-batched GEMMs + bias/activation
 * epilogue, by chunks of images or slices of output pixels (conv_plan.h). Host code only; the
 * kernels are im2col.cu and bias_act.cu. */
#include "kernels/cuda/bias_act.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d.cuh"
#include "kernels/cuda/im2col.cuh"

#include <stdint.h>

static cudaDataType_t cuda_type(enum q7_dtype t)
{
    return t == Q7_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

enum q7_status q7_cuda_conv2d(cudaStream_t s, cublasHandle_t blas, const struct q7_cuda_view * x,
                              const void * weight, const float * bias,
                              const struct q7_conv_params * p, float in_scale,
                              const struct q7_cuda_view * y, const struct q7_cuda_conv_plan * plan,
                              void * ws)
{
    if ((in_scale != 0.0f && plan->direct) || (plan->ws_bytes > 0 && !ws) ||
        (plan->direct && x->dtype != plan->gemm_in) ||
        (plan->out_direct && y->dtype != Q7_DTYPE_F32 && y->dtype != plan->gemm_in))
        return q7_error_set(Q7_ERR_INTERNAL, "cuda conv: plan does not fit the call");
    const size_t in_size = q7_dtype_size(plan->gemm_in);
    const size_t y_size = q7_dtype_size(y->dtype);
    const size_t x_size = q7_dtype_size(x->dtype);
    const cudaDataType_t ab_type = cuda_type(plan->gemm_in);
    const cudaDataType_t c_type = plan->out_direct ? cuda_type(y->dtype) : CUDA_R_32F;
    const size_t c_size = plan->out_direct ? y_size : sizeof(float);
    const float alpha = 1.0f, beta = 0.0f;
    const int m = (int)plan->m, n = (int)plan->n, k = (int)plan->k;
    const int64_t cin_g = p->in_ch / p->groups;
    uint8_t * col = (uint8_t *)ws + plan->col_offset;
    float * gout = (float *)(void *)((uint8_t *)ws + plan->out_offset);
    const int need_epilogue = bias || p->act.kind != Q7_ACT_IDENTITY || !plan->out_direct;

    const int64_t ms_max = plan->m_slice > 0 ? plan->m_slice : plan->m;
    for (int64_t n0 = 0; n0 < x->n; n0 += plan->chunk) {
        const int64_t nb = x->n - n0 < plan->chunk ? x->n - n0 : plan->chunk;
        uint8_t * c_base;
        long long c_stride;
        if (plan->out_direct) {
            c_base = (uint8_t *)y->data + (size_t)(n0 * y->batch_stride) * y_size;
            c_stride = (long long)y->batch_stride;
        } else {
            c_base = (uint8_t *)gout;
            c_stride = (long long)((int64_t)p->out_ch * plan->m);
        }
        /* output pixels [m0, m0 + ms): the whole image unless the plan slices it (then C is
         * y itself: rows m0.. of each channel, ldc = m) */
        for (int64_t m0 = 0; m0 < plan->m; m0 += ms_max) {
            const int64_t ms = plan->m - m0 < ms_max ? plan->m - m0 : ms_max;
            const uint8_t * a_base;
            long long a_stride;
            int lda;
            if (plan->direct) {
                a_base = (const uint8_t *)x->data + (size_t)(n0 * x->batch_stride + m0) * x_size;
                a_stride = (long long)x->batch_stride;
                lda = m;
            } else {
                enum q7_status st = q7_cuda_im2col(s, x, n0, nb, p, plan->oh, plan->ow, m0, ms,
                                                   in_scale, col, plan->gemm_in,
                                                   plan->im2col_tiled);
                if (st)
                    return st;
                a_base = col;
                a_stride = (long long)(plan->k_all * ms);
                lda = (int)ms;
            }
            for (int g = 0; g < p->groups; g++) {
                /* group g: input channels [g*cin_g, ...) are rows [g*k, ...) of the im2col
                 * buffer (channel-major) or channel planes of x; output channels [g*n, ...) */
                const void * a = plan->direct ? a_base + (size_t)(g * cin_g * plan->m) * in_size
                                              : a_base + (size_t)(g * plan->k * ms) * in_size;
                const void * b =
                    (const uint8_t *)weight + (size_t)(g * plan->n * plan->k) * in_size;
                void * c = c_base + (size_t)(g * plan->n * plan->m + m0) * c_size;
                enum q7_status st = Q7_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
                    blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)ms, n, k, &alpha, a, ab_type, lda,
                    a_stride, b, ab_type, k, 0, &beta, c, c_type, m, c_stride, (int)nb,
                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
                if (st)
                    return st;
            }
        }
        if (need_epilogue) {
            struct q7_cuda_view yc = *y;
            yc.data = (uint8_t *)y->data + (size_t)(n0 * y->batch_stride) * y_size;
            yc.n = nb;
            struct q7_cuda_view src = yc;
            if (!plan->out_direct) {
                src.data = gout;
                src.dtype = Q7_DTYPE_F32;
                src.batch_stride = (int64_t)p->out_ch * plan->m;
            }
            enum q7_status st = q7_cuda_bias_act(s, &src, bias, p->act, &yc);
            if (st)
                return st;
        }
    }
    return Q7_OK;
}
