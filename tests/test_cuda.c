/* CUDA backend tests (suite 'cuda').
 *
 * Without a GPU (or in a build without CUDA) only the host-side planning is checked (conv
 * GEMM/workspace plans, the FP16 arena layout) and the test exits 77 ("no CUDA device").
 * With one:
 * - every CUDA kernel against its CPU reference (kernels/ref) through q7_cuda_exec_node_run on
 *   awkward shapes (odd channels, stride 2, 1x1/3x3/5x5, dilation, groups, batch > 1,
 *   channel-slice input and output views, input fake-quant, chunked GEMMs): relative L2 error
 *   < 1e-5 in FP32, < 2e-3 in FP16; cells outside an output slice must survive;
 * - device histograms equal q7_calib_hist_collect's exactly (random data, growth, slices,
 *   many bins, errors), also on every node output of a real network (hook with host copy);
 * - the fixtures end to end (raw_origin / raw_fused: relative L2 < 1e-4 in FP32, FP16 error
 *   reported), the family of configs, per-node agreement with the CPU executor, fake INT8 with
 *   amax.json["mse"] against raw_qdq-mse (< 0.1, the fixture tolerance), batches.
 *
 * `test_cuda kernels` runs the kernel and histogram tests only (for compute-sanitizer);
 * `test_cuda bench <cfg.yaml> [img] [batches] [MiB list]` prints a benchmark table instead
 * (images/s at each batch size in FP32 and FP16, the network's own GPU time and TFLOP/s, FP16
 * again under each conv workspace bound of the list, the 10 slowest nodes): tools/gpu-check.sh
 * runs it. */
#include "engine/cuda_plan.h"
#include "engine/exec_cuda.h"
#include "engine/q7.h"
#include "kernels/cuda/conv_plan.h"
#include "kernels/ref/fake_quant.h"
#include "quant/calib.h"
#include "quant/qdq.h"
#include "quant/quant.h"
#include "tests/test_common.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL_F32 1e-5
#define TOL_F16 2e-3
#define RAW_TOL 1e-4
#define FP16_LAYER_TOL 1e-2 /* FP16 node outputs of the first 10 layers vs FP32 */
#define QDQ_TOL 0.1
#define SENTINEL 1234.0f /* exact in FP16 too: survives the round trip of a slice's neighbours */

static uint64_t g_rng = 0xc0da5eedull;

static void * xmalloc(size_t bytes)
{
    void * p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- host-side planning (no GPU needed) ---- */

static struct q7_cuda_view cview(int64_t n, int64_t c, int64_t h, int64_t w, enum q7_dtype t)
{
    struct q7_cuda_view v = {(void *)64, t, n, c, h, w, c * h * w};
    return v;
}

/* Peak rates from attributes: the A100's and H100's published numbers come back. */
static void test_peaks(void)
{
    struct q7_cuda_peaks a = q7_cuda_peaks_of(8, 0, 108, 1410000, 1215000, 5120);
    CHECKF(fabs(a.mem_gbs - 1555.2) < 0.1 && fabs(a.fp16_tflops - 311.9) < 0.1 &&
               fabs(a.fp32_tflops - 19.49) < 0.01,
           "A100: %.1f GB/s, %.1f / %.2f TFLOP/s", a.mem_gbs, a.fp16_tflops, a.fp32_tflops);
    struct q7_cuda_peaks h = q7_cuda_peaks_of(9, 0, 132, 1830000, 2619000, 5120);
    CHECKF(fabs(h.mem_gbs - 3352.3) < 0.1 && fabs(h.fp16_tflops - 989.4) < 0.1,
           "H100: %.1f GB/s, %.1f TFLOP/s", h.mem_gbs, h.fp16_tflops);
    struct q7_cuda_peaks u = q7_cuda_peaks_of(12, 0, 100, 2000000, 1000000, 512);
    CHECK(u.fp16_tflops == 0.0 && u.fp32_tflops == 0.0 && u.mem_gbs > 0.0);
}

static void test_conv_plan(void)
{
    struct q7_conv_params p = {.in_ch = 64,
                               .out_ch = 32,
                               .kh = 1,
                               .kw = 1,
                               .stride_h = 1,
                               .stride_w = 1,
                               .dil_h = 1,
                               .dil_w = 1,
                               .groups = 1};
    struct q7_cuda_view x = cview(4, 64, 20, 30, Q7_DTYPE_F32),
                        y = cview(4, 32, 20, 30, Q7_DTYPE_F32);
    struct q7_cuda_conv_plan cp;
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F32, 0, 0, &cp));
    CHECK(cp.direct && cp.out_direct && cp.ws_bytes == 0 && cp.chunk == 4);
    CHECK(cp.m == 600 && cp.n == 32 && cp.k == 64);
    /* input fake-quant forces im2col; an FP16 GEMM writes FP16 y directly, FP32 y too */
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F32, 1, 0, &cp));
    CHECK(!cp.direct && cp.col_bytes == (size_t)4 * 64 * 600 * 4 && cp.out_bytes == 0);
    x.dtype = y.dtype = Q7_DTYPE_F16;
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp));
    CHECK(cp.direct && cp.out_direct && cp.out_bytes == 0 && cp.ws_bytes == 0);
    y.dtype = Q7_DTYPE_F32;
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp));
    CHECK(cp.direct && cp.out_direct && cp.out_bytes == 0);
    /* FP32 activations into an FP16 view (not made by the executor): through the workspace */
    x.dtype = y.dtype = Q7_DTYPE_F16;
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F32, 1, 0, &cp));
    CHECK(!cp.direct && !cp.out_direct && cp.out_bytes == (size_t)4 * 32 * 600 * 4);
    CHECK(cp.out_offset % Q7_CUDA_WS_ALIGN == 0 && cp.ws_bytes >= cp.out_offset + cp.out_bytes);
    /* 3x3 stride 2, groups, chunking under a small limit */
    p = (struct q7_conv_params){.in_ch = 8,
                                .out_ch = 12,
                                .kh = 3,
                                .kw = 3,
                                .stride_h = 2,
                                .stride_w = 2,
                                .pad_h = 1,
                                .pad_w = 1,
                                .dil_h = 1,
                                .dil_w = 1,
                                .groups = 4};
    x = cview(5, 8, 17, 15, Q7_DTYPE_F16);
    y = cview(5, 12, 9, 8, Q7_DTYPE_F16);
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 3 * 8 * 9 * 72 * 2 + 4096, &cp));
    CHECK(!cp.direct && cp.k == 18 && cp.n == 3 && cp.k_all == 72 && cp.m == 72);
    CHECKF(cp.chunk >= 1 && cp.chunk < 5, "chunk %lld", (long long)cp.chunk);
    CHECK(cp.col_bytes == (size_t)cp.chunk * 72 * 72 * 2);
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 1, &cp));
    CHECK(cp.chunk == 1 && cp.m_slice == 8 && cp.col_bytes == (size_t)8 * 72 * 2);
    /* an image that does not fit: slices of output pixels, a multiple of 8 */
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 20 * 72 * 2, &cp));
    CHECK(cp.chunk == 1 && cp.m_slice == 16 && cp.ws_bytes <= 20 * 72 * 2 + Q7_CUDA_WS_ALIGN);
    CHECK_OK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp));
    CHECK(cp.chunk == 5 && cp.m_slice == cp.m);
    /* wrong output size, channels, groups */
    y.h = 10;
    CHECK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp) == Q7_ERR_ARG);
    y.h = 9;
    p.groups = 3;
    CHECK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp) == Q7_ERR_ARG);
    p.groups = 4;
    x.c = 7;
    CHECK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F16, 0, 0, &cp) == Q7_ERR_ARG);
    /* a GEMM dimension past cuBLAS's int */
    p = (struct q7_conv_params){.in_ch = 1,
                                .out_ch = 1,
                                .kh = 1,
                                .kw = 1,
                                .stride_h = 1,
                                .stride_w = 1,
                                .dil_h = 1,
                                .dil_w = 1,
                                .groups = 1};
    x = cview(1, 1, 1 << 16, 1 << 16, Q7_DTYPE_F32);
    y = cview(1, 1, 1 << 16, 1 << 16, Q7_DTYPE_F32);
    CHECK(q7_cuda_conv2d_plan(&x, &y, &p, Q7_DTYPE_F32, 0, 0, &cp) == Q7_ERR_LIMIT);
    CHECK(q7_cuda_conv_out_size(640, 3, 2, 1, 1) == 320 &&
          q7_cuda_conv_out_size(2, 5, 1, 0, 1) < 0);
}

/* The FP16 layout: detect inputs FP32, every other buffer FP16; views of buffers alive at the
 * same time never overlap and stay inside the arena. */
static void test_layout(const char * pt, int64_t n, int64_t h, int64_t w)
{
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(pt, NULL, &m));
    if (!m)
        return;
    struct q7_graph * g = m->graph;
    struct q7_plan p;
    CHECK_OK(q7_plan_init(&p, g));
    CHECK_OK(q7_plan_make(&p, n, h, w));
    uint8_t * f16 = xmalloc((size_t)g->n_nodes);
    int bad = 0, n_f32 = 0;
    for (int fp16 = 0; fp16 < 2; fp16++) {
        q7_cuda_plan_dtypes(&p, fp16, f16);
        uint8_t * base = (uint8_t *)(uintptr_t)4096;
        for (int i = 0; i < g->n_nodes && fp16; i++) {
            const struct q7_node * nd = g->nodes[i];
            if (!p.live[i] || nd->op != Q7_OP_DETECT)
                continue;
            for (int k = 0; k < nd->n_inputs; k++)
                bad += f16[p.slot[nd->inputs[k]].root] != 0;
        }
        for (int i = 0; i < g->n_nodes; i++) {
            if (!p.live[i] || g->nodes[i]->op == Q7_OP_DETECT)
                continue;
            const int ri = p.slot[i].root;
            n_f32 += fp16 && !f16[ri];
            struct q7_cuda_view a = q7_cuda_plan_view(&p, base, f16, i);
            const size_t es = a.dtype == Q7_DTYPE_F16 ? 2 : 4;
            uint8_t *a0 = a.data,
                    *a1 = a0 + (size_t)((a.n - 1) * a.batch_stride + a.c * a.h * a.w) * es;
            bad += (a.dtype == Q7_DTYPE_F16) != (fp16 && f16[ri]);
            bad += a0 < base || a1 > base + p.arena_bytes;
            for (int j = 0; j < i; j++) {
                if (!p.live[j] || g->nodes[j]->op == Q7_OP_DETECT || p.slot[j].root == ri)
                    continue;
                const struct q7_plan_buffer *bi = &p.buf[ri], *bj = &p.buf[p.slot[j].root];
                if (bi->last < bj->first || bj->last < bi->first)
                    continue; /* never alive together */
                struct q7_cuda_view b = q7_cuda_plan_view(&p, base, f16, j);
                const size_t eb = b.dtype == Q7_DTYPE_F16 ? 2 : 4;
                uint8_t *b0 = b.data,
                        *b1 = b0 + (size_t)((b.n - 1) * b.batch_stride + b.c * b.h * b.w) * eb;
                if (a0 < b1 && b0 < a1) {
                    if (bad++ < 5)
                        fprintf(stderr, "  %s: nodes %d and %d overlap\n", pt, i, j);
                }
            }
        }
    }
    CHECKF(bad == 0, "%s: %d layout errors", pt, bad);
    CHECK(n_f32 > 0);
    if (bad == 0)
        printf("  FP16 layout of %s at %lldx%lldx%lld: %d FP32 detect inputs, no overlaps, arena "
               "%.1f MiB\n",
               strrchr(pt, '/') ? strrchr(pt, '/') + 1 : pt, (long long)n, (long long)h,
               (long long)w, n_f32, p.arena_bytes / 1048576.0);
    free(f16);
    q7_plan_free(&p);
    q7_model_free(m);
}

/* ---- device kernels against the reference ---- */

/* An n x c x h x w view at channel c_off of a buffer with c + c_extra channels per image. */
struct tview {
    struct q7_view v;
    float * buf;
    size_t len;
};

static struct tview tv_make(int64_t n, int64_t c, int64_t h, int64_t w, int64_t c_off,
                            int64_t c_extra)
{
    struct tview t;
    Q7_ASSERT(c_off >= 0 && c_off <= c_extra);
    t.len = (size_t)(n * (c + c_extra) * h * w);
    t.buf = xmalloc(t.len * sizeof(float));
    for (size_t i = 0; i < t.len; i++)
        t.buf[i] = SENTINEL;
    t.v = (struct q7_view){t.buf + c_off * h * w, n, c, h, w, (c + c_extra) * h * w};
    return t;
}

/* Random values rounded to FP16 (so that FP32 and FP16 runs see the same inputs). */
static void tv_fill(struct tview * t, float lo, float hi)
{
    for (size_t i = 0; i < t->len; i++)
        t->buf[i] = q7_half_to_float(q7_float_to_half(q7t_rand_uniform(&g_rng, lo, hi)));
}

static float * at(const struct q7_view * v, int64_t b, int64_t c, int64_t i)
{
    return v->data + b * v->batch_stride + c * v->h * v->w + i;
}

/* Compares the view parts of got and want (same layout); cells of got outside the view must
 * still hold SENTINEL. */
static void tv_check(const char * what, const struct tview * got, const struct tview * want,
                     double tol)
{
    const struct q7_view *g = &got->v, *w = &want->v;
    const int64_t hw = g->h * g->w;
    double num = 0, den = 0, worst = 0;
    int64_t wi = -1;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t i = 0; i < hw; i++) {
                const double a = *at(g, b, c, i), r = *at(w, b, c, i), d = fabs(a - r);
                num += d * d;
                den += r * r;
                if (!(d <= worst)) {
                    worst = d;
                    wi = (b * g->c + c) * hw + i;
                }
            }
    const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    size_t outside = 0;
    for (size_t i = 0; i < got->len; i++) {
        const int64_t r = (int64_t)i % g->batch_stride - (g->data - got->buf);
        if ((r < 0 || r >= g->c * hw) && got->buf[i] != SENTINEL)
            outside++;
    }
    CHECKF(rel < tol && outside == 0,
           "%s: relative L2 %.3g (tol %.1g), worst at (n %lld, c %lld, "
           "y %lld, x %lld) diff %.3g; %zu cells outside the view changed",
           what, rel, tol, (long long)(wi / (g->c * hw)), (long long)(wi / hw % g->c),
           (long long)(wi % hw / g->w), (long long)(wi % g->w), worst, outside);
}

struct kctx {
    struct q7_cuda_exec * e;
    int fp16;
    double tol;
    int cases;
};

static struct q7_tensor make_tensor(float * data, int ndim, int64_t d0, int64_t d1, int64_t d2,
                                    int64_t d3)
{
    struct q7_tensor t = {.name = NULL, .dtype = Q7_DTYPE_F32, .ndim = ndim, .data = data};
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.shape[2] = d2;
    t.shape[3] = d3;
    return t;
}

struct conv_case {
    int64_t n, cin, h, w, cout;
    int k, stride, pad, dil, groups;
    enum q7_act act;
    int bias;
    int64_t x_off, x_extra, y_off, y_extra;
    float in_amax; /* 0: no input fake-quant; -1: amax 0 (input quantized to zeros) */
};

static void run_conv(struct kctx * k, const struct conv_case * cc)
{
    struct q7_conv_params p = {.in_ch = (int)cc->cin,
                               .out_ch = (int)cc->cout,
                               .kh = cc->k,
                               .kw = cc->k,
                               .stride_h = cc->stride,
                               .stride_w = cc->stride,
                               .pad_h = cc->pad,
                               .pad_w = cc->pad,
                               .dil_h = cc->dil,
                               .dil_w = cc->dil,
                               .groups = cc->groups,
                               .act = {cc->act, 0.1f}};
    const int64_t oh = q7_cuda_conv_out_size(cc->h, cc->k, cc->stride, cc->pad, cc->dil);
    const int64_t ow = q7_cuda_conv_out_size(cc->w, cc->k, cc->stride, cc->pad, cc->dil);
    struct tview x = tv_make(cc->n, cc->cin, cc->h, cc->w, cc->x_off, cc->x_extra);
    struct tview got = tv_make(cc->n, cc->cout, oh, ow, cc->y_off, cc->y_extra);
    struct tview want = tv_make(cc->n, cc->cout, oh, ow, cc->y_off, cc->y_extra);
    tv_fill(&x, -2.0f, 2.0f);
    const int64_t per = cc->cin / cc->groups * cc->k * cc->k;
    float * wt = xmalloc((size_t)(cc->cout * per) * sizeof(float));
    float * bias = xmalloc((size_t)cc->cout * sizeof(float));
    const float wscale = 1.0f / sqrtf((float)per);
    for (int64_t i = 0; i < cc->cout * per; i++)
        wt[i] = q7t_rand_uniform(&g_rng, -wscale, wscale);
    for (int64_t i = 0; i < cc->cout; i++)
        bias[i] = q7t_rand_uniform(&g_rng, -0.5f, 0.5f);
    struct q7_tensor tw = make_tensor(wt, 4, cc->cout, per / (cc->k * cc->k), cc->k, cc->k);
    struct q7_tensor tb = make_tensor(bias, 1, cc->cout, 0, 0, 0);
    struct q7_node nd = {.op = Q7_OP_CONV2D, .name = "conv", .n_inputs = 1};
    nd.p.conv = p;
    nd.w[Q7_W_WEIGHT] = &tw;
    nd.w[Q7_W_BIAS] = cc->bias ? &tb : NULL;
    struct q7_conv_extra extra = {.in_scale = q7_fq_scale(cc->in_amax)};
    if (cc->in_amax < 0.0f) { /* the reference of a zero-amax quantizer: a conv of zeros */
        struct tview z = tv_make(cc->n, cc->cin, cc->h, cc->w, 0, 0);
        memset(z.buf, 0, z.len * sizeof(float));
        q7_ref_conv2d(&z.v, wt, cc->bias ? bias : NULL, &p, NULL, &want.v);
        free(z.buf);
        extra.in_scale = -1.0f; /* exec_cuda.h: negative = amax <= 2^-24 */
    } else {
        q7_ref_conv2d(&x.v, wt, cc->bias ? bias : NULL, &p, &extra, &want.v);
    }
    const struct q7_view * xs[1] = {&x.v};
    CHECK_OK(q7_cuda_exec_node_run(k->e, &nd, xs, &got.v, &extra, NULL, 0));
    char what[160];
    snprintf(what, sizeof what, "%s conv n%lld %lld->%lld %lldx%lld k%d s%d p%d d%d g%d act %d%s",
             k->fp16 ? "FP16" : "FP32", (long long)cc->n, (long long)cc->cin, (long long)cc->cout,
             (long long)cc->h, (long long)cc->w, cc->k, cc->stride, cc->pad, cc->dil, cc->groups,
             (int)cc->act, cc->in_amax > 0 ? " fq" : cc->in_amax < 0 ? " fq amax 0" : "");
    tv_check(what, &got, &want, k->tol);
    k->cases++;
    free(x.buf);
    free(got.buf);
    free(want.buf);
    free(wt);
    free(bias);
}

static void test_convs(struct kctx * k)
{
    static const struct conv_case cases[] = {
        /* n  cin  h   w  cout k s p d g  act                 bias xo xe yo ye amax */
        {2, 5, 9, 11, 7, 1, 1, 0, 1, 1, Q7_ACT_IDENTITY, 0, 2, 3, 1, 4, 0}, /* direct */
        {3, 7, 10, 9, 13, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 0, 0, 0, 0, 0},
        {2, 16, 17, 15, 32, 3, 2, 1, 1, 1, Q7_ACT_LEAKY_RELU, 1, 2, 3, 5, 6, 0},
        {1, 3, 12, 12, 8, 5, 1, 2, 1, 1, Q7_ACT_RELU, 1, 0, 0, 0, 0, 0},
        {2, 8, 11, 13, 12, 3, 1, 1, 1, 4, Q7_ACT_SIGMOID, 1, 0, 1, 0, 0, 0}, /* groups */
        {2, 6, 9, 9, 6, 3, 2, 1, 1, 6, Q7_ACT_SILU, 1, 0, 0, 0, 0, 0},       /* depthwise */
        {1, 4, 15, 14, 5, 3, 1, 2, 2, 1, Q7_ACT_IDENTITY, 1, 0, 0, 0, 0, 0}, /* dilation */
        {3, 9, 13, 7, 10, 1, 2, 0, 1, 1, Q7_ACT_SILU, 1, 0, 0, 0, 0, 0},     /* 1x1 stride 2 */
        {2, 7, 10, 9, 13, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 1, 1, 0, 0, 1.7f},  /* fake-quant */
        {2, 5, 9, 11, 7, 1, 1, 0, 1, 1, Q7_ACT_IDENTITY, 1, 0, 0, 0, 0, 2.5f},
        {2, 7, 10, 9, 13, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 1, 1, 0, 0, -1.0f}, /* amax 0 */
        {2, 64, 40, 40, 64, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 0, 0, 16, 32, 0}, /* tensor cores */
        {1, 128, 20, 20, 256, 1, 1, 0, 1, 1, Q7_ACT_SILU, 1, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_conv(k, &cases[i]);
}

/* The pool input quantizer of --qdq trt for run_simple / ref_pool: 0 = none, < 0: amax 0. */
static float g_pool_fq;

/* One element-wise-like node on (n, c, h, w) with slices, against the reference. */
static void run_simple(struct kctx * k, struct q7_node * nd, int n_in, int64_t n, int64_t c,
                       int64_t h, int64_t w, int64_t oc, int64_t oh, int64_t ow,
                       void (*ref)(const struct q7_node *, const struct q7_view * const *, int,
                                   const struct q7_view *))
{
    struct tview xs[12];
    const struct q7_view * xp[12];
    for (int i = 0; i < n_in; i++) {
        xs[i] = tv_make(n, c, h, w, i % 2, i % 2 + i % 3);
        tv_fill(&xs[i], -4.0f, 4.0f);
        xp[i] = &xs[i].v;
    }
    struct tview got = tv_make(n, oc, oh, ow, 1, 2), want = tv_make(n, oc, oh, ow, 1, 2);
    ref(nd, xp, n_in, &want.v);
    nd->n_inputs = n_in;
    const struct q7_conv_extra extra = {.in_scale = g_pool_fq};
    CHECK_OK(q7_cuda_exec_node_run(k->e, nd, xp, &got.v, g_pool_fq != 0.0f ? &extra : NULL,
                                   NULL, 0));
    char what[96];
    snprintf(what, sizeof what, "%s %s n%lld c%lld %lldx%lld%s", k->fp16 ? "FP16" : "FP32",
             q7_op_name(nd->op), (long long)n, (long long)c, (long long)h, (long long)w,
             g_pool_fq > 0.0f ? " fq" : g_pool_fq < 0.0f ? " fq amax 0" : "");
    tv_check(what, &got, &want, k->tol);
    k->cases++;
    for (int i = 0; i < n_in; i++)
        free(xs[i].buf);
    free(got.buf);
    free(want.buf);
}

static void ref_act(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                    const struct q7_view * y)
{
    q7_ref_act(xs[0], nd->p.act, y);
}
static void ref_bn(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                   const struct q7_view * y)
{
    q7_ref_batchnorm(xs[0], nd->w[Q7_W_WEIGHT]->data, nd->w[Q7_W_BIAS]->data,
                     nd->w[Q7_W_MEAN]->data, nd->w[Q7_W_VAR]->data, nd->p.bn.eps, y);
}
static void ref_pool(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                     const struct q7_view * y)
{
    q7_ref_maxpool(xs[0], &nd->p.pool, y);
    if (g_pool_fq != 0.0f) /* fake-quant commutes with max: the output's */
        for (int64_t b = 0; b < y->n; b++)
            for (int64_t i = 0; i < y->c * y->h * y->w; i++) {
                float * v = y->data + b * y->batch_stride + i;
                *v = g_pool_fq < 0.0f ? 0.0f : q7_fq_apply(*v, g_pool_fq);
            }
}
static void ref_up(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                   const struct q7_view * y)
{
    q7_ref_upsample_nearest(xs[0], nd->p.upsample.scale, y);
}
static void ref_reorg(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                      const struct q7_view * y)
{
    q7_ref_reorg(xs[0], y);
}
static void ref_concat(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                       const struct q7_view * y)
{
    q7_ref_concat(xs, n, y);
}
static void ref_add(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                    const struct q7_view * y)
{
    q7_ref_add(xs, n, y);
}
static void ref_implicit(const struct q7_node * nd, const struct q7_view * const * xs, int n,
                         const struct q7_view * y)
{
    if (nd->op == Q7_OP_IMPLICIT_ADD)
        q7_ref_implicit_add(xs[0], nd->w[Q7_W_WEIGHT]->data, y);
    else
        q7_ref_implicit_mul(xs[0], nd->w[Q7_W_WEIGHT]->data, y);
}

static void test_simple_ops(struct kctx * k)
{
    struct q7_node nd = {.name = "op"};
    for (int a = 0; a < Q7_ACT_COUNT; a++) {
        nd.op = Q7_OP_ACT;
        nd.p.act = (struct q7_act_params){(enum q7_act)a, 0.1f};
        run_simple(k, &nd, 1, 2, 5, 7, 9, 5, 7, 9, ref_act);
    }
    /* batchnorm with the reference's coefficient arithmetic */
    float v[4][13];
    for (int i = 0; i < 13; i++) {
        v[0][i] = q7t_rand_uniform(&g_rng, 0.5f, 1.5f);
        v[1][i] = q7t_rand_uniform(&g_rng, -0.5f, 0.5f);
        v[2][i] = q7t_rand_uniform(&g_rng, -1.0f, 1.0f);
        v[3][i] = q7t_rand_uniform(&g_rng, 0.1f, 2.0f);
    }
    struct q7_tensor bt[4];
    for (int r = 0; r < 4; r++) {
        bt[r] = make_tensor(v[r], 1, 13, 0, 0, 0);
        nd.w[r] = &bt[r];
    }
    nd.op = Q7_OP_BATCHNORM;
    nd.p.bn.eps = 1e-3;
    run_simple(k, &nd, 1, 3, 13, 6, 5, 13, 6, 5, ref_bn);
    nd.op = Q7_OP_IMPLICIT_ADD;
    run_simple(k, &nd, 1, 2, 13, 4, 7, 13, 4, 7, ref_implicit);
    nd.op = Q7_OP_IMPLICIT_MUL;
    run_simple(k, &nd, 1, 2, 13, 4, 7, 13, 4, 7, ref_implicit);
    memset(nd.w, 0, sizeof nd.w);
    /* pools: SPP's stride-1 windows, stride 2, ceil mode */
    static const struct q7_pool_params pools[] = {{5, 5, 1, 1, 2, 2, 0},
                                                  {13, 13, 1, 1, 6, 6, 0},
                                                  {2, 2, 2, 2, 0, 0, 0},
                                                  {3, 3, 2, 2, 0, 0, 1}};
    static const int64_t pool_out[][2] = {{11, 10}, {11, 10}, {5, 5}, {5, 5}};
    for (int i = 0; i < 4; i++) {
        nd.op = Q7_OP_MAXPOOL;
        nd.p.pool = pools[i];
        run_simple(k, &nd, 1, 2, 7, 11, 10, 7, pool_out[i][0], pool_out[i][1], ref_pool);
    }
    /* a pool input quantizer (--qdq trt), and one with amax 0 */
    for (int i = 0; i < 2; i++) {
        g_pool_fq = i == 0 ? 127.0f / 2.5f : -1.0f;
        nd.p.pool = pools[0];
        run_simple(k, &nd, 1, 2, 7, 11, 10, 7, pool_out[0][0], pool_out[0][1], ref_pool);
    }
    g_pool_fq = 0.0f;
    nd.op = Q7_OP_UPSAMPLE;
    nd.p.upsample.scale = 2;
    run_simple(k, &nd, 1, 3, 5, 7, 6, 5, 14, 12, ref_up);
    nd.op = Q7_OP_REORG;
    run_simple(k, &nd, 1, 2, 3, 10, 8, 12, 5, 4, ref_reorg);
    nd.op = Q7_OP_CONCAT;
    run_simple(k, &nd, 3, 2, 4, 6, 5, 12, 6, 5, ref_concat);
    nd.op = Q7_OP_ADD;
    run_simple(k, &nd, 2, 2, 9, 5, 7, 9, 5, 7, ref_add);
    run_simple(k, &nd, 11, 1, 3, 4, 5, 3, 4, 5, ref_add); /* more than one launch's inputs */
}

static void test_detect(struct kctx * k)
{
    struct q7_detect_params p = {.kind = Q7_DETECT_IDETECT, .nc = 2, .no = 7, .na = 3, .nl = 3};
    static const int64_t hs[3] = {8, 4, 2}, ws[3] = {10, 5, 3};
    struct tview xs[3];
    const struct q7_view * xp[3];
    int64_t rows = 0;
    for (int l = 0; l < 3; l++) {
        p.stride[l] = (float)(8 << l);
        for (int a = 0; a < 3; a++) {
            p.anchor_grid[l][a][0] = 10.0f * (l + 1) + a;
            p.anchor_grid[l][a][1] = 13.0f * (l + 1) - a;
        }
        xs[l] = tv_make(2, 21, hs[l], ws[l], l % 2, 1);
        tv_fill(&xs[l], -5.0f, 5.0f);
        xp[l] = &xs[l].v;
        rows += 3 * hs[l] * ws[l];
    }
    const size_t count = (size_t)(2 * rows * 7);
    float *got = xmalloc(count * sizeof(float)), *want = xmalloc(count * sizeof(float));
    q7_ref_detect(xp, &p, want, rows);
    struct q7_node nd = {.op = Q7_OP_DETECT, .name = "detect", .n_inputs = 3};
    nd.p.detect = p;
    CHECK_OK(q7_cuda_exec_node_run(k->e, &nd, xp, NULL, NULL, got, rows));
    const double rel = q7t_rel_l2(got, want, count);
    CHECKF(rel < k->tol, "%s detect: relative L2 %.3g", k->fp16 ? "FP16" : "FP32", rel);
    k->cases++;
    for (int l = 0; l < 3; l++)
        free(xs[l].buf);
    free(got);
    free(want);
}

static void test_kernels(int fp16)
{
    struct q7_cuda_params cp = q7_cuda_params_default();
    cp.fp16 = fp16;
    struct kctx k = {NULL, fp16, fp16 ? TOL_F16 : TOL_F32, 0};
    CHECK_OK(q7_cuda_exec_create(NULL, &cp, &k.e));
    if (!k.e)
        return;
    test_convs(&k);
    test_simple_ops(&k);
    test_detect(&k);
    q7_cuda_exec_free(k.e);
    for (int tiled = 0; tiled < 2; tiled++) {
        cp.im2col_tiled = tiled;
        if (tiled) { /* every conv case again through the shared-memory im2col */
            cp.conv_workspace = 0;
            CHECK_OK(q7_cuda_exec_create(NULL, &cp, &k.e));
            if (k.e) {
                test_convs(&k);
                q7_cuda_exec_free(k.e);
            }
        }
        /* a tiny workspace: one image per GEMM batch, slices of 8 output pixels (11
         * vectorized slices and a last one of 2; tiled: bands cut by the slices), also with
         * input fake-quant */
        cp.conv_workspace = 1;
        CHECK_OK(q7_cuda_exec_create(NULL, &cp, &k.e));
        if (k.e) {
            const struct conv_case c = {3, 7, 10, 9, 13, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 1, 2, 1, 2,
                                        0};
            run_conv(&k, &c);
            const struct conv_case q = {2, 7, 10, 9, 13, 3, 2, 1, 1, 1, Q7_ACT_SILU, 1, 1, 1, 0, 0,
                                        1.7f};
            run_conv(&k, &q);
            q7_cuda_exec_free(k.e);
        }
        /* slices of 96 (FP16) or 48 (FP32) pixels of a 40x40 image, into a channel slice */
        cp.conv_workspace = (size_t)96 * 64 * 9 * 2;
        CHECK_OK(q7_cuda_exec_create(NULL, &cp, &k.e));
        if (k.e) {
            const struct conv_case c = {2, 64, 40, 40, 64, 3, 1, 1, 1, 1, Q7_ACT_SILU, 1, 0, 0,
                                        16, 32, 0};
            run_conv(&k, &c);
            q7_cuda_exec_free(k.e);
        }
    }
    printf("  %s kernels: %d cases against kernels/ref\n", fp16 ? "FP16" : "FP32", k.cases);
}

/* ---- histograms ---- */

static int hist_equal(const char * what, const struct q7_calib_hist * a,
                      const struct q7_calib_hist * b)
{
    int64_t na = q7_calib_hist_num_bins(a), nb = q7_calib_hist_num_bins(b), ea = 0, eb = 0;
    const int64_t *ca = q7_calib_hist_counts(a), *cb = q7_calib_hist_counts(b);
    const float *fa = q7_calib_hist_edges(a, &ea), *fb = q7_calib_hist_edges(b, &eb);
    int ok =
        na == nb && ea == eb &&
        (na == 0 || (memcmp(ca, cb, (size_t)na * 8) == 0 && memcmp(fa, fb, (size_t)ea * 4) == 0));
    if (!ok) {
        fprintf(stderr, "  %s: %lld vs %lld bins, %lld vs %lld edges\n", what, (long long)na,
                (long long)nb, (long long)ea, (long long)eb);
        for (int64_t i = 0, shown = 0; i < na && i < nb && shown < 5; i++)
            if (ca[i] != cb[i]) {
                fprintf(stderr, "    bin %lld: device %lld, cpu %lld\n", (long long)i,
                        (long long)ca[i], (long long)cb[i]);
                shown++;
            }
    }
    return ok;
}

/* Feeds the same batches to a CPU and a device histogram; returns 1 when they agree. */
static void hist_case(struct q7_cuda_exec * e, const char * what, int64_t bins, int n_batches,
                      const float * amp, int64_t n, int64_t c, int64_t hw, int64_t c_extra)
{
    struct q7_calib_hist *hc = q7_calib_hist_create(bins), *hd = q7_calib_hist_create(bins);
    for (int b = 0; b < n_batches; b++) {
        struct tview t = tv_make(n, c, 1, hw, c_extra ? 1 : 0, c_extra);
        for (size_t i = 0; i < t.len; i++)
            t.buf[i] = amp[b] * q7t_rand_uniform(&g_rng, -1.0f, 1.0f) *
                       q7t_rand_uniform(&g_rng, 0.0f, 1.0f);
        if (t.len > 4) { /* the max itself, and its negation: the last bin */
            t.v.data[0] = amp[b];
            t.v.data[1] = -amp[b];
        }
        /* the CPU collects a contiguous copy of the view */
        float * flat = xmalloc((size_t)(n * c * hw) * sizeof(float));
        for (int64_t k = 0; k < n; k++)
            memcpy(flat + k * c * hw, t.v.data + k * t.v.batch_stride,
                   (size_t)(c * hw) * sizeof(float));
        enum q7_status sc = q7_calib_hist_collect(hc, flat, n * c * hw);
        enum q7_status sd = q7_cuda_exec_hist_collect_host(e, &t.v, hd);
        CHECKF(sc == sd, "%s batch %d: cpu %s, device %s (%s)", what, b, q7_status_str(sc),
               q7_status_str(sd), q7_error_message());
        free(flat);
        free(t.buf);
    }
    CHECKF(hist_equal(what, hd, hc), "%s: device histogram differs", what);
    q7_calib_hist_free(hc);
    q7_calib_hist_free(hd);
}

static void test_hist(void)
{
    struct q7_cuda_exec * e = NULL;
    CHECK_OK(q7_cuda_exec_create(NULL, NULL, &e));
    if (!e)
        return;
    const float grow[4] = {1.0f, 3.7f, 0.5f, 11.25f};
    hist_case(e, "grow", 0, 4, grow, 3, 17, 101, 2);
    const float one[1] = {0.731f};
    hist_case(e, "big", 0, 1, one, 2, 64, 80 * 80, 0);
    hist_case(e, "single", 0, 1, one, 1, 1, 1, 0);
    hist_case(e, "global atomics", 20000, 3, grow, 2, 5, 999, 3);
    const float zero[2] = {0.0f, 1.0f}; /* all zeros, then growth: both refuse */
    hist_case(e, "zeros", 0, 2, zero, 1, 4, 50, 0);
    /* NaN and inf are refused as on the CPU */
    struct q7_calib_hist * h = q7_calib_hist_create(0);
    float bad[3] = {1.0f, NAN, 2.0f};
    struct q7_view v = {bad, 1, 1, 1, 3, 3};
    CHECK(q7_cuda_exec_hist_collect_host(e, &v, h) == Q7_ERR_ARG);
    bad[1] = INFINITY;
    CHECK(q7_cuda_exec_hist_collect_host(e, &v, h) == Q7_ERR_ARG);
    CHECK(q7_calib_hist_num_bins(h) == 0);
    q7_calib_hist_free(h);
    q7_cuda_exec_free(e);
    printf("  device histograms equal q7_calib_hist_collect's\n");
}

#include "tests/test_cuda_net.h"
#include "tests/test_cuda_bench.h"

int main(int argc, char ** argv)
{
    q7_log_set_level(Q7_LOG_WARN);
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return cuda_bench(argc - 2, argv + 2);
    test_conv_plan();
    test_peaks();
    const char * fam = q7t_fixture("family/deploy-yolov7-tiny.pt");
    if (fam && fopen_ok(fam)) {
        test_layout(fam, 2, 96, 64);
        const char * v7 = q7t_fixture("family/training-yolov7.pt");
        if (fopen_ok(v7))
            test_layout(v7, 1, 64, 128);
    } else {
        printf("  (family fixtures missing: layout test skipped)\n");
    }
    int n_dev = 0;
    char name[256];
    enum q7_status st = q7_cuda_available(&n_dev, name, sizeof name);
    if (st || n_dev == 0) {
        printf("%s\n", st ? q7_error_message() : name);
        q7t_finish("test_cuda (host-side planning only)");
        return q7t_failures ? 1 : Q7_TEST_SKIP;
    }
    printf("  device: %s (%d)\n", name, n_dev);
    test_kernels(0);
    test_kernels(1);
    test_hist();
    if (!(argc > 1 && strcmp(argv[1], "kernels") == 0))
        test_networks();
    return q7t_finish("test_cuda");
}
