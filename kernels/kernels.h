/* q7 kernels: one signature per op, implemented by kernels/ref (scalar specification) and
 * kernels/cpu (optimized). Tensors are FP32 NCHW views: element (b, c, y, x) is at
 * data[b * batch_stride + c * h * w + y * w + x], so a view may be a channel slice of a
 * larger buffer (concat written in place). */
#ifndef Q7_KERNELS_H
#define Q7_KERNELS_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_view {
    float * data;
    int64_t n, c, h, w;
    int64_t batch_stride; /* elements between images; c*h*w for a whole tensor */
};

/* Options that modify a convolution: fake quantization of its input (per tensor) applied as
 * the input is read, in_scale = 127/amax, 0 = off; and of its output after bias and
 * activation, out_scale = 127/amax, 0 = off (the executor uses it to quantize a tensor once
 * where it is produced when every conv that reads it quantizes with that scale). Weights are
 * quantized beforehand. */
struct q7_conv_extra {
    float in_scale;
    float out_scale;
};

/* ---- reference kernels (kernels/ref): scalar, obvious, the specification ---- */

/* y = act(conv(x, weight) + bias). weight is (out_ch, in_ch/groups, kh, kw); bias may be NULL. */
void q7_ref_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y);
/* The same convolution with PyTorch's FP32 arithmetic on an x86 CPU (oneDNN's jit:avx2 and
 * jit_1x1:avx2 kernels, which PyTorch 1.13 uses): one fmaf per term, the terms taken in
 * channel blocks of 8, then kernel row, kernel column, then the block's channels; each output
 * starts from the bias, except that an unpadded 1x1 conv of one group with more than 128 input
 * channels sums each further chunk of 128 from 0 and adds it to the result so far. The
 * optimized CPU kernel equals it bit for bit before the activation; an activation and an
 * output fake-quant are applied as in q7_ref_conv2d. */
void q7_ref_conv2d_fp32(const struct q7_view * x, const float * weight, const float * bias,
                        const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                        const struct q7_view * y);
/* Input channels per reduction chunk in that order: 128 for an unpadded 1x1 convolution of one
 * group with more than 128 input channels (oneDNN's 1x1 kernel), else 0 (one chain). */
int q7_conv_fp32_chunk(const struct q7_conv_params * p);
/* y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel (PyTorch eval BatchNorm). */
void q7_ref_batchnorm(const struct q7_view * x, const float * gamma, const float * beta,
                      const float * mean, const float * var, double eps,
                      const struct q7_view * y);
void q7_ref_act(const struct q7_view * x, struct q7_act_params act, const struct q7_view * y);
/* Max pooling with PyTorch's -inf padding (padded cells never win). */
void q7_ref_maxpool(const struct q7_view * x, const struct q7_pool_params * p,
                    const struct q7_view * y);
void q7_ref_upsample_nearest(const struct q7_view * x, int scale, const struct q7_view * y);
/* Copies inputs one after another along channels into y. */
void q7_ref_concat(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y);
/* y = sum of inputs (n_inputs >= 2), accumulated left to right in FP32. */
void q7_ref_add(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y);
/* y = x + v[c] (ImplicitA) / y = x * v[c] (ImplicitM). */
void q7_ref_implicit_add(const struct q7_view * x, const float * v, const struct q7_view * y);
void q7_ref_implicit_mul(const struct q7_view * x, const float * v, const struct q7_view * y);
/* Space to depth: cat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
 * x[..., 1::2, 1::2]) along channels. */
void q7_ref_reorg(const struct q7_view * x, const struct q7_view * y);
/* Detect decode. xs[i] is level i's conv output (N, na*no, H_i, W_i); out is
 * (N, rows, no) contiguous with rows = sum na*H_i*W_i, ordered level, anchor, y, x as
 * yolov7's view/permute. */
void q7_ref_detect(const struct q7_view * const * xs, const struct q7_detect_params * p,
                   float * out, int64_t rows);

/* ---- optimized CPU kernels (kernels/cpu): same contracts ---- */

/* Threads for CPU kernels (0: all cores). */
void q7_cpu_set_threads(int n);
int q7_cpu_threads(void);

/* Benchmarks: the CPU kernels to use from now on. isa: "auto", "generic", "avx2" or "avx512";
 * conv: "auto", "packed" or "blas" (NULL: unchanged). Returns 0, changing nothing, when the
 * machine or the build lacks one. Call before creating executors (workspace sizes depend on
 * the micro-kernel); not thread-safe. */
int q7_cpu_kernels_select(const char * isa, const char * conv);
/* The ISA of the kernels in use ("generic", "avx2", "avx512") and the convolution strategy
 * ("packed", "blas"). */
const char * q7_cpu_isa_name(void);
const char * q7_cpu_conv_name(void);

/* 1 when the CPU kernels in use compute exactly what PyTorch 1.13 computes on an x86 CPU
 * (oneDNN jit:avx2 convolutions, SLEEF's vector exp): the packed convolution strategy on the
 * AVX2 or AVX-512 micro-kernels, in a build with SLEEF. */
int q7_cpu_matches_pytorch(void);

/* Scratch memory needed by q7_cpu_conv2d for this shape (bytes). */
size_t q7_cpu_conv2d_workspace(const struct q7_view * x, const struct q7_conv_params * p,
                               const struct q7_view * y);
void q7_cpu_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y, void * workspace);
void q7_cpu_batchnorm(const struct q7_view * x, const float * gamma, const float * beta,
                      const float * mean, const float * var, double eps,
                      const struct q7_view * y);
void q7_cpu_act(const struct q7_view * x, struct q7_act_params act, const struct q7_view * y);
void q7_cpu_maxpool(const struct q7_view * x, const struct q7_pool_params * p,
                    const struct q7_view * y);
void q7_cpu_upsample_nearest(const struct q7_view * x, int scale, const struct q7_view * y);
void q7_cpu_add(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y);
/* y = fake_quant(x, scale) element-wise (kernels/ref/fake_quant.h, bit-exact); y may be x.
 * scale 0 gives zeros (the reference's rule for amax <= 2^-24). Runs on the thread pool. */
void q7_cpu_fake_quant_copy(const struct q7_view * x, float scale, const struct q7_view * y);
/* Copies x into y (same shape, different strides): concat inputs that could not be placed. */
void q7_cpu_copy(const struct q7_view * x, const struct q7_view * y);

#ifdef __cplusplus
}
#endif
#endif
