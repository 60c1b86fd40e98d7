/* im2col on the device, one thread per column element, fake-quantizing the input as it is
 * read. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

using namespace q7c;

struct im2col_args {
    int64_t n0, K, M, ow;
    int kh, kw, sh, sw, ph, pw, dh, dw;
    float in_scale;
    int col_f16;
};

static __global__ void im2col_kernel(dview x, im2col_args a, void * col, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t p = i % a.M;
        const int64_t t = i / a.M;
        const int64_t k = t % a.K;
        const int64_t img = t / a.K;
        const int64_t kx = k % a.kw;
        const int64_t ky = (k / a.kw) % a.kh;
        const int64_t ci = k / ((int64_t)a.kw * a.kh);
        const int64_t oy = p / a.ow, ox = p % a.ow;
        const int64_t iy = oy * a.sh - a.ph + ky * a.dh;
        const int64_t ix = ox * a.sw - a.pw + kx * a.dw;
        float v = 0.0f;
        if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) {
            v = load(x, offset_at(x, a.n0 + img, ci, iy, ix));
            if (a.in_scale != 0.0f)
                v = fake_quant(v, a.in_scale);
        }
        if (a.col_f16)
            static_cast<__half *>(col)[i] = __float2half_rn(v);
        else
            static_cast<float *>(col)[i] = v;
    }
}

enum q7_status q7_cuda_im2col(cudaStream_t s, const struct q7_cuda_view * x, int64_t n0,
                              int64_t count, const struct q7_conv_params * p, int64_t oh,
                              int64_t ow, float in_scale, void * col, enum q7_dtype col_dtype)
{
    im2col_args a;
    a.n0 = n0;
    a.K = (int64_t)p->in_ch * p->kh * p->kw;
    a.M = oh * ow;
    a.ow = ow;
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
    const int64_t total = count * a.K * a.M;
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(im2col_kernel, blocks_for(total), THREADS, 0, s, make_dview(x), a, col, total);
    return Q7_CUDA_LAUNCHED("im2col");
}
