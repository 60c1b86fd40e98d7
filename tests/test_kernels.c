/* Unit tests for kernels/: every optimized CPU kernel against its reference on random inputs
 * with awkward shapes (odd channels, batch 1 and 3, channel-sliced input and output views,
 * every ISA this machine has, both conv strategies, 1 and 2 threads), plus direct checks of
 * the reference kernels against small hand-computed cases.
 *
 * Q7_BENCH=1 also times q7_cpu_conv2d on a yolov7-sized layer and prints GFLOP/s. */
#include "graph/base.h"
#include "kernels/cpu/cpu_impl.h"
#include "kernels/kernels.h"
#include "kernels/ref/fake_quant.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SENTINEL 1234.5f /* fills a buffer around an output view; must survive */
#define CONV_RTOL 1e-5   /* |got - want| <= CONV_RTOL * (|want| + rms(want)) */
#define ACT_RTOL 1e-5

static uint64_t g_rng = 0x5eed1234abcdull;

/* ---- views inside bigger buffers ---- */

/* A view of n x c x h x w at channel `c_off` of a buffer with c + c_extra channels per
 * image (a channel slice when c_extra > 0). */
struct tview {
    struct q7_view v;
    float * buf;
    size_t buf_len;
};

static struct tview tview_make(int64_t n, int64_t c, int64_t h, int64_t w, int64_t c_off,
                               int64_t c_extra)
{
    struct tview t;
    const int64_t ctot = c + c_extra;
    t.buf_len = (size_t)(n * ctot * h * w);
    t.buf = malloc((t.buf_len ? t.buf_len : 1) * sizeof(float));
    if (!t.buf) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    t.v.data = t.buf + c_off * h * w;
    t.v.n = n;
    t.v.c = c;
    t.v.h = h;
    t.v.w = w;
    t.v.batch_stride = ctot * h * w;
    return t;
}

static void tview_fill(struct tview * t, float lo, float hi)
{
    for (size_t i = 0; i < t->buf_len; i++)
        t->buf[i] = q7t_rand_uniform(&g_rng, lo, hi);
}

static void tview_fill_value(struct tview * t, float v)
{
    for (size_t i = 0; i < t->buf_len; i++)
        t->buf[i] = v;
}

static float * at(const struct q7_view * v, int64_t n, int64_t c, int64_t y, int64_t x)
{
    return v->data + n * v->batch_stride + (c * v->h + y) * v->w + x;
}

/* 1 when element i of the buffer lies inside the view. */
static int in_view(const struct tview * t, size_t i)
{
    const int64_t off = t->v.data - t->buf;
    const int64_t hw = t->v.h * t->v.w;
    const int64_t r = (int64_t)i % t->v.batch_stride - off;
    return r >= 0 && r < t->v.c * hw;
}

/* Counts sentinel cells outside the view that a kernel overwrote. */
static int check_outside(const char * what, const struct tview * t)
{
    size_t bad = 0;
    for (size_t i = 0; i < t->buf_len; i++)
        if (!in_view(t, i) && t->buf[i] != SENTINEL)
            bad++;
    CHECKF(bad == 0, "%s: %zu values outside the output view were written", what, bad);
    return bad == 0;
}

/* Compares two views of the same shape. rtol < 0: exact (bitwise equal values, NaN equal to
 * NaN). Otherwise |a - b| <= rtol * (|b| + rms(b)). Prints max abs / rel error and the first
 * mismatches with coordinates. Returns the number of mismatches. */
static size_t compare_views(const char * what, const struct q7_view * got,
                            const struct q7_view * want, double rtol, int verbose)
{
    double sq = 0.0;
    int64_t count = 0;
    for (int64_t n = 0; n < want->n; n++)
        for (int64_t c = 0; c < want->c; c++)
            for (int64_t y = 0; y < want->h; y++)
                for (int64_t x = 0; x < want->w; x++) {
                    const double b = *at(want, n, c, y, x);
                    if (isfinite(b)) {
                        sq += b * b;
                        count++;
                    }
                }
    const double rms = count ? sqrt(sq / (double)count) : 0.0;
    double max_abs = 0.0, max_rel = 0.0;
    size_t bad = 0;
    for (int64_t n = 0; n < want->n; n++)
        for (int64_t c = 0; c < want->c; c++)
            for (int64_t y = 0; y < want->h; y++)
                for (int64_t x = 0; x < want->w; x++) {
                    const float a = *at(got, n, c, y, x), b = *at(want, n, c, y, x);
                    int ok;
                    if (rtol < 0.0) {
                        ok = (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
                    } else if (isnan(b) || isinf(b)) {
                        ok = (isnan(a) && isnan(b)) || a == b;
                    } else {
                        const double d = fabs((double)a - (double)b);
                        const double rel = d / (fabs(b) + rms + 1e-30);
                        if (d > max_abs)
                            max_abs = d;
                        if (rel > max_rel)
                            max_rel = rel;
                        ok = rel <= rtol;
                    }
                    if (!ok) {
                        if (bad < 5)
                            fprintf(stderr, "  %s at (n=%lld, c=%lld, y=%lld, x=%lld): got %.9g, "
                                    "want %.9g\n", what, (long long)n, (long long)c,
                                    (long long)y, (long long)x, a, b);
                        bad++;
                    }
                }
    if (verbose || bad)
        printf("  %-58s max abs %.3g  max rel %.3g%s\n", what, max_abs, max_rel,
               bad ? "  MISMATCH" : "");
    CHECKF(bad == 0, "%s: %zu mismatches", what, bad);
    return bad;
}

/* ---- the configurations every optimized kernel runs in ---- */

struct combo {
    enum q7_cpu_isa isa;
    enum q7_cpu_conv_path path;
    int threads;
};

static const char * isa_name(enum q7_cpu_isa isa)
{
    static const char * names[] = {"generic", "avx2", "avx512"};
    return isa < Q7_CPU_ISA_COUNT ? names[isa] : "auto";
}

/* Every supported ISA x {packed, blas} x {1, 2} threads; blas only once per thread count
 * (its GEMM is OpenBLAS', only the epilogue is ours: run it on the best ISA). */
static int list_combos(struct combo * out, int max)
{
    int n = 0;
    for (int isa = 0; isa < Q7_CPU_ISA_COUNT; isa++) {
        if (!q7_cpu_isa_force((enum q7_cpu_isa)isa))
            continue;
        for (int th = 1; th <= 2 && n < max; th++)
            out[n++] = (struct combo){(enum q7_cpu_isa)isa, Q7_CPU_CONV_PACKED, th};
    }
    q7_cpu_isa_force(Q7_CPU_ISA_COUNT);
    if (q7_cpu_conv_path_force(Q7_CPU_CONV_BLAS)) {
        for (int th = 1; th <= 2 && n < max; th++)
            out[n++] = (struct combo){Q7_CPU_ISA_COUNT, Q7_CPU_CONV_BLAS, th};
    }
    q7_cpu_conv_path_force(Q7_CPU_CONV_AUTO);
    return n;
}

static void combo_apply(const struct combo * cb)
{
    q7_cpu_isa_force(cb->isa);
    q7_cpu_conv_path_force(cb->path);
    q7_cpu_set_threads(cb->threads);
}

static void combo_reset(void)
{
    q7_cpu_isa_force(Q7_CPU_ISA_COUNT);
    q7_cpu_conv_path_force(Q7_CPU_CONV_AUTO);
    q7_cpu_set_threads(0);
}

static struct combo g_combos[16];
static int g_n_combos;

/* ---- convolution ---- */

struct conv_case {
    int n, cin, cout, h, w;
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
    int bias;
    enum q7_act act;
    float amax; /* input fake-quant amax, 0 = off */
    int in_extra, out_extra; /* channels around the views (slices) */
};

static int64_t conv_out(int64_t in, int k, int s, int p, int d)
{
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* A conv case's parameters, output size, random input (a channel slice when in_extra > 0),
 * weights and bias (malloc'ed). */
struct conv_data {
    struct q7_conv_params p;
    int64_t oh, ow;
    struct tview x;
    float * weight, * bias;
};

static struct conv_data conv_data_make(const struct conv_case * cc)
{
    struct conv_data d;
    d.p = (struct q7_conv_params){
        .in_ch = cc->cin, .out_ch = cc->cout, .kh = cc->kh, .kw = cc->kw,
        .stride_h = cc->sh, .stride_w = cc->sw, .pad_h = cc->ph, .pad_w = cc->pw,
        .dil_h = cc->dh, .dil_w = cc->dw, .groups = cc->groups,
        .act = {.kind = cc->act, .slope = 0.1f},
    };
    d.oh = conv_out(cc->h, cc->kh, cc->sh, cc->ph, cc->dh);
    d.ow = conv_out(cc->w, cc->kw, cc->sw, cc->pw, cc->dw);
    d.x = tview_make(cc->n, cc->cin, cc->h, cc->w, cc->in_extra / 2, cc->in_extra);
    tview_fill(&d.x, -2.0f, 2.0f);
    const int64_t wn = (int64_t)cc->cout * (cc->cin / cc->groups) * cc->kh * cc->kw;
    d.weight = malloc((size_t)wn * sizeof(float));
    d.bias = malloc((size_t)cc->cout * sizeof(float));
    for (int64_t i = 0; i < wn; i++)
        d.weight[i] = q7t_rand_uniform(&g_rng, -0.5f, 0.5f);
    for (int i = 0; i < cc->cout; i++)
        d.bias[i] = q7t_rand_uniform(&g_rng, -1.0f, 1.0f);
    return d;
}

static void conv_data_free(struct conv_data * d)
{
    free(d->x.buf);
    free(d->weight);
    free(d->bias);
}

/* The optimized conv against q7_ref_conv2d within CONV_RTOL on every combination, or with
 * fp32_order against q7_ref_conv2d_fp32 bit for bit on the packed ones. */
static void run_conv_case(const struct conv_case * cc, int fp32_order)
{
    struct conv_data d = conv_data_make(cc);
    const struct q7_conv_params p = d.p;
    const int64_t oh = d.oh, ow = d.ow;
    struct tview x = d.x;
    float * weight = d.weight, * bias = d.bias;
    struct q7_conv_extra extra = {.in_scale = q7_fq_scale(cc->amax)};

    struct tview want = tview_make(cc->n, cc->cout, oh, ow, 0, 0);
    (fp32_order ? q7_ref_conv2d_fp32 : q7_ref_conv2d)(&x.v, weight, cc->bias ? bias : NULL, &p,
                                                     &extra, &want.v);

    char what[200];
    for (int i = 0; i < g_n_combos; i++) {
        const struct combo * cb = &g_combos[i];
        if (fp32_order && cb->path != Q7_CPU_CONV_PACKED)
            continue;
        combo_apply(cb);
        struct tview y =
            tview_make(cc->n, cc->cout, oh, ow, cc->out_extra - cc->out_extra / 3, cc->out_extra);
        tview_fill_value(&y, SENTINEL);
        const size_t ws_size = q7_cpu_conv2d_workspace(&x.v, &p, &y.v);
        CHECK(ws_size > 0);
        void * ws = malloc(ws_size ? ws_size : 1);
        q7_cpu_conv2d(&x.v, weight, cc->bias ? bias : NULL, &p, &extra, &y.v, ws);
        snprintf(what, sizeof what, "conv%s n%d %d->%d %dx%d k%dx%d s%d,%d p%d,%d d%d g%d %s%s%s "
                 "[%s %s t%d]", fp32_order ? " order" : "", cc->n, cc->cin, cc->cout, cc->h,
                 cc->w, cc->kh, cc->kw, cc->sh, cc->sw, cc->ph, cc->pw, cc->dh, cc->groups,
                 q7_act_name(cc->act),
                 cc->bias ? "" : " nobias", cc->amax > 0 ? " fq" : "",
                 cb->path == Q7_CPU_CONV_BLAS ? "blas" : "packed", isa_name(cb->isa),
                 cb->threads);
        compare_views(what, &y.v, &want.v, fp32_order ? -1.0 : CONV_RTOL, !fp32_order);
        check_outside(what, &y);
        free(ws);
        free(y.buf);
    }
    combo_reset();
    free(want.buf);
    conv_data_free(&d);
}

/* Awkward shapes for the optimized conv (both tests below). */
static const struct conv_case g_conv_cases[] = {
    /* n cin cout h w  kh kw sh sw ph pw dh dw g  bias act                amax in out */
    {1, 3, 7, 9, 11, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, Q7_ACT_SILU, 0, 0, 0},
    {3, 7, 13, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, Q7_ACT_LEAKY_RELU, 0, 5, 0},
    {1, 13, 33, 15, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, Q7_ACT_RELU, 1.7f, 0, 7},
    {3, 33, 13, 11, 12, 5, 5, 1, 1, 2, 2, 1, 1, 1, 1, Q7_ACT_SIGMOID, 0, 3, 4},
    {1, 6, 10, 12, 13, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1, Q7_ACT_IDENTITY, 0, 0, 0},
    {3, 13, 13, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 13, 1, Q7_ACT_SILU, 1.9f, 2, 3},
    {1, 33, 7, 13, 13, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0, Q7_ACT_IDENTITY, 0, 1, 1},
    {3, 8, 16, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1, 2, 1, Q7_ACT_SILU, 1.5f, 8, 8},
    {1, 64, 24, 23, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_SILU, 0, 0, 5},
    {1, 3, 32, 29, 31, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_SILU, 0, 0, 0},
    {1, 20, 40, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_LEAKY_RELU, 2.0f, 0, 0},
    {3, 7, 9, 8, 11, 1, 3, 2, 1, 0, 1, 1, 1, 1, 1, Q7_ACT_RELU, 0, 1, 2},
    {1, 300, 17, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, Q7_ACT_SIGMOID, 0, 0, 0},
    {3, 12, 15, 6, 5, 5, 5, 2, 2, 2, 2, 2, 2, 3, 0, Q7_ACT_SILU, 0, 4, 0},
    {1, 4, 5, 3, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, Q7_ACT_IDENTITY, 0, 0, 0},
    /* wide stride-2 rows (vector gather), stride 3 */
    {3, 16, 24, 21, 37, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, Q7_ACT_SILU, 2.2f, 0, 3},
    {1, 5, 9, 17, 19, 3, 3, 3, 3, 1, 1, 1, 1, 1, 0, Q7_ACT_RELU, 0, 2, 0},
    /* yolov7-like head layer: several K blocks, 2 tiles, many output-channel blocks */
    {1, 96, 200, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_SILU, 2.5f, 32, 56},
};

static void test_conv_vs_ref(void)
{
    printf("conv: optimized vs reference\n");
    for (size_t i = 0; i < sizeof g_conv_cases / sizeof g_conv_cases[0]; i++)
        run_conv_case(&g_conv_cases[i], 0);
    /* every activation through the epilogue of one conv shape */
    for (int a = 0; a < Q7_ACT_COUNT; a++) {
        struct conv_case cc = {3, 5, 11, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, (enum q7_act)a,
                               0, 2, 3};
        run_conv_case(&cc, 0);
    }
}

/* The packed strategy follows PyTorch's FP32 order (q7_ref_conv2d_fp32) bit for bit: every
 * case above with its exp-based activation taken out (those differ from the reference's expf
 * by design), two more that cross blocks, every ISA and thread count. */
static void test_conv_order(void)
{
    printf("conv: packed vs PyTorch's FP32 order (bit-exact before the activation)\n");
    for (size_t i = 0; i < sizeof g_conv_cases / sizeof g_conv_cases[0]; i++) {
        struct conv_case cc = g_conv_cases[i];
        if (cc.act == Q7_ACT_SILU || cc.act == Q7_ACT_SIGMOID)
            cc.act = Q7_ACT_IDENTITY;
        run_conv_case(&cc, 1);
    }
    const struct conv_case more[] = {
        /* n cin cout h w  kh kw sh sw ph pw dh dw g  bias act                amax in out */
        /* several K blocks (the chain goes on through c), channel blocks with a tail of 5 */
        {1, 101, 200, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_IDENTITY, 2.5f, 32, 56},
        /* a 1x1 of 517 channels: four 128-channel chunks and a tail */
        {2, 517, 19, 9, 10, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, Q7_ACT_IDENTITY, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
        run_conv_case(&more[k], 1);
}

/* The public selector of q7 bench --cpu-isa / --cpu-conv. */
static void test_kernels_select(void)
{
    printf("kernel selection: names, refusals, back to automatic\n");
    const char * isa0 = q7_cpu_isa_name();
    CHECK(q7_cpu_kernels_select("sse9", NULL) == 0);
    CHECK(q7_cpu_kernels_select(NULL, "cudnn") == 0);
    CHECK(strcmp(q7_cpu_isa_name(), isa0) == 0);
    CHECK(q7_cpu_kernels_select("generic", "packed") == 1);
    CHECK(strcmp(q7_cpu_isa_name(), "generic") == 0 && strcmp(q7_cpu_conv_name(), "packed") == 0);
    CHECK(q7_cpu_matches_pytorch() == 0);
    CHECK(q7_cpu_kernels_select("auto", "auto") == 1);
    CHECK(strcmp(q7_cpu_isa_name(), isa0) == 0 && strcmp(q7_cpu_conv_name(), "packed") == 0);
}

/* ---- element-wise ---- */

/* A few inputs where activations are delicate: zeros, ties, the ends of exp's range. */
static const float g_special[] = {0.0f,  -0.0f, 1e-3f, -1e-3f, 0.5f,   -0.5f,  20.0f,
                                  -20.0f, 87.5f, -87.5f, 88.9f, -88.9f, 100.0f, -100.0f};

static void fill_special(struct tview * t)
{
    const size_t ns = sizeof g_special / sizeof g_special[0];
    for (size_t i = 0; i < ns && i < t->buf_len; i++)
        t->buf[i * 7 % t->buf_len] = g_special[i];
}

static void test_act(void)
{
    printf("act: optimized vs reference\n");
    char what[160];
    for (int a = 0; a < Q7_ACT_COUNT; a++) {
        struct q7_act_params act = {(enum q7_act)a, 0.1f};
        struct tview x = tview_make(3, 13, 7, 9, 2, 5);
        tview_fill(&x, -12.0f, 12.0f);
        fill_special(&x);
        struct tview want = tview_make(3, 13, 7, 9, 0, 0);
        q7_ref_act(&x.v, act, &want.v);
        for (int i = 0; i < g_n_combos; i++) {
            if (g_combos[i].path != Q7_CPU_CONV_PACKED)
                continue;
            combo_apply(&g_combos[i]);
            struct tview y = tview_make(3, 13, 7, 9, 1, 3);
            tview_fill_value(&y, SENTINEL);
            q7_cpu_act(&x.v, act, &y.v);
            snprintf(what, sizeof what, "act %s [%s t%d]", q7_act_name(act.kind),
                     isa_name(g_combos[i].isa), g_combos[i].threads);
            compare_views(what, &y.v, &want.v, ACT_RTOL, 1);
            check_outside(what, &y);
            free(y.buf);
            /* in place: y is x itself */
            struct tview z = tview_make(3, 13, 7, 9, 2, 5);
            memcpy(z.buf, x.buf, x.buf_len * sizeof(float));
            q7_cpu_act(&z.v, act, &z.v);
            snprintf(what, sizeof what, "act %s in place [%s t%d]", q7_act_name(act.kind),
                     isa_name(g_combos[i].isa), g_combos[i].threads);
            compare_views(what, &z.v, &want.v, ACT_RTOL, 0);
            free(z.buf);
        }
        combo_reset();
        free(want.buf);
        free(x.buf);
    }
}

static void test_add_copy(void)
{
    printf("add, copy: optimized vs reference (exact)\n");
    char what[160];
    for (int k = 2; k <= 4; k++) {
        struct tview xs[4];
        const struct q7_view * xp[4];
        for (int i = 0; i < k; i++) {
            xs[i] = tview_make(3, 33, 5, 7, i, 2 * i);
            tview_fill(&xs[i], -3.0f, 3.0f);
            xp[i] = &xs[i].v;
        }
        struct tview want = tview_make(3, 33, 5, 7, 0, 0);
        q7_ref_add(xp, k, &want.v);
        for (int th = 1; th <= 2; th++) {
            q7_cpu_set_threads(th);
            struct tview y = tview_make(3, 33, 5, 7, 3, 4);
            tview_fill_value(&y, SENTINEL);
            q7_cpu_add(xp, k, &y.v);
            snprintf(what, sizeof what, "add of %d [t%d]", k, th);
            compare_views(what, &y.v, &want.v, -1.0, 1);
            check_outside(what, &y);
            free(y.buf);
            /* in place on the last input */
            struct tview z = tview_make(3, 33, 5, 7, k - 1, 2 * (k - 1));
            memcpy(z.buf, xs[k - 1].buf, xs[k - 1].buf_len * sizeof(float));
            const struct q7_view * zp[4];
            for (int i = 0; i < k; i++)
                zp[i] = i == k - 1 ? &z.v : xp[i];
            q7_cpu_add(zp, k, &z.v);
            snprintf(what, sizeof what, "add of %d in place [t%d]", k, th);
            compare_views(what, &z.v, &want.v, -1.0, 1);
            free(z.buf);
        }
        free(want.buf);
        for (int i = 0; i < k; i++)
            free(xs[i].buf);
    }
    /* copy between differently sliced views */
    struct tview x = tview_make(3, 7, 9, 10, 3, 6);
    tview_fill(&x, -1.0f, 1.0f);
    for (int th = 1; th <= 2; th++) {
        q7_cpu_set_threads(th);
        struct tview y = tview_make(3, 7, 9, 10, 1, 1);
        tview_fill_value(&y, SENTINEL);
        q7_cpu_copy(&x.v, &y.v);
        snprintf(what, sizeof what, "copy [t%d]", th);
        compare_views(what, &y.v, &x.v, -1.0, 1);
        check_outside(what, &y);
        free(y.buf);
    }
    free(x.buf);
    combo_reset();
}

static void test_batchnorm(void)
{
    printf("batchnorm: optimized vs reference (exact), reference vs textbook formula\n");
    const int C = 13;
    float gamma[13], beta[13], mean[13], var[13];
    for (int c = 0; c < C; c++) {
        gamma[c] = q7t_rand_uniform(&g_rng, 0.5f, 2.0f);
        beta[c] = q7t_rand_uniform(&g_rng, -1.0f, 1.0f);
        mean[c] = q7t_rand_uniform(&g_rng, -1.0f, 1.0f);
        var[c] = q7t_rand_uniform(&g_rng, 0.01f, 3.0f);
    }
    const double eps = 1e-3;
    struct tview x = tview_make(3, C, 6, 11, 2, 3);
    tview_fill(&x, -4.0f, 4.0f);
    struct tview want = tview_make(3, C, 6, 11, 0, 0);
    q7_ref_batchnorm(&x.v, gamma, beta, mean, var, eps, &want.v);

    /* the reference against (x - mean) / sqrt(var + eps) * gamma + beta in double */
    struct tview text = tview_make(3, C, 6, 11, 0, 0);
    for (int64_t n = 0; n < 3; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < 6; i++)
                for (int64_t j = 0; j < 11; j++)
                    *at(&text.v, n, c, i, j) =
                        (float)(((double)*at(&x.v, n, c, i, j) - mean[c]) /
                                    sqrt((double)var[c] + eps) * gamma[c] +
                                beta[c]);
    compare_views("batchnorm ref vs textbook (rtol 1e-6)", &want.v, &text.v, 1e-6, 1);
    free(text.buf);

    char what[120];
    for (int th = 1; th <= 2; th++) {
        q7_cpu_set_threads(th);
        struct tview y = tview_make(3, C, 6, 11, 1, 2);
        tview_fill_value(&y, SENTINEL);
        q7_cpu_batchnorm(&x.v, gamma, beta, mean, var, eps, &y.v);
        snprintf(what, sizeof what, "batchnorm [t%d]", th);
        compare_views(what, &y.v, &want.v, -1.0, 1);
        check_outside(what, &y);
        free(y.buf);
        q7_cpu_batchnorm(&x.v, gamma, beta, mean, var, eps, &x.v); /* in place */
        snprintf(what, sizeof what, "batchnorm in place [t%d]", th);
        compare_views(what, &x.v, &want.v, -1.0, 1);
        q7_ref_batchnorm(&want.v, gamma, beta, mean, var, eps, &want.v); /* follow along */
    }
    combo_reset();
    free(want.buf);
    free(x.buf);
}

/* ---- pooling and upsampling ---- */

static int64_t pool_out(int64_t in, int k, int s, int p, int ceil_mode)
{
    const int64_t num = in + 2 * p - k;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static void test_maxpool(void)
{
    printf("maxpool: optimized vs reference (exact)\n");
    const struct q7_pool_params cases[] = {
        {2, 2, 2, 2, 0, 0, 0},  {3, 3, 2, 2, 1, 1, 0},   {5, 5, 1, 1, 2, 2, 0},
        {9, 9, 1, 1, 4, 4, 0},  {13, 13, 1, 1, 6, 6, 0}, {3, 3, 2, 2, 0, 0, 1},
        {2, 2, 2, 2, 0, 0, 1},  {3, 2, 1, 2, 1, 0, 0},   {1, 1, 2, 2, 0, 0, 0},
    };
    const int sizes[][2] = {{13, 11}, {20, 20}, {7, 9}};
    char what[160];
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct q7_pool_params * p = &cases[ci];
        for (size_t si = 0; si < 3; si++) {
            const int h = sizes[si][0], w = sizes[si][1];
            const int64_t oh = pool_out(h, p->kh, p->stride_h, p->pad_h, p->ceil_mode);
            const int64_t ow = pool_out(w, p->kw, p->stride_w, p->pad_w, p->ceil_mode);
            struct tview x = tview_make(3, 7, h, w, 1, 2);
            tview_fill(&x, -5.0f, -1.0f); /* all negative: a zero pad would win */
            struct tview want = tview_make(3, 7, oh, ow, 0, 0);
            q7_ref_maxpool(&x.v, p, &want.v);
            for (int th = 1; th <= 2; th++) {
                q7_cpu_set_threads(th);
                struct tview y = tview_make(3, 7, oh, ow, 2, 3);
                tview_fill_value(&y, SENTINEL);
                q7_cpu_maxpool(&x.v, p, &y.v);
                snprintf(what, sizeof what, "maxpool %dx%d k%dx%d s%d,%d p%d,%d%s [t%d]", h, w,
                         p->kh, p->kw, p->stride_h, p->stride_w, p->pad_h, p->pad_w,
                         p->ceil_mode ? " ceil" : "", th);
                compare_views(what, &y.v, &want.v, -1.0, si == 0);
                check_outside(what, &y);
                free(y.buf);
            }
            free(want.buf);
            free(x.buf);
        }
    }
    /* NaN wins, as in PyTorch */
    struct tview x = tview_make(1, 1, 4, 4, 0, 0);
    tview_fill(&x, 0.0f, 1.0f);
    x.buf[5] = NAN;
    const struct q7_pool_params p = {3, 3, 1, 1, 1, 1, 0};
    struct tview want = tview_make(1, 1, 4, 4, 0, 0);
    struct tview y = tview_make(1, 1, 4, 4, 0, 0);
    q7_ref_maxpool(&x.v, &p, &want.v);
    q7_cpu_maxpool(&x.v, &p, &y.v);
    CHECK(isnan(want.buf[0]) && isnan(want.buf[10]) && !isnan(want.buf[15]));
    compare_views("maxpool with a NaN", &y.v, &want.v, -1.0, 0);
    free(x.buf);
    free(y.buf);
    free(want.buf);
    combo_reset();
}

static void test_upsample(void)
{
    printf("upsample: optimized vs reference (exact)\n");
    char what[120];
    for (int s = 2; s <= 3; s++) {
        struct tview x = tview_make(3, 7, 5, 6, 2, 2);
        tview_fill(&x, -1.0f, 1.0f);
        struct tview want = tview_make(3, 7, 5 * s, 6 * s, 0, 0);
        q7_ref_upsample_nearest(&x.v, s, &want.v);
        CHECK(*at(&want.v, 2, 6, 5 * s - 1, 6 * s - 1) == *at(&x.v, 2, 6, 4, 5));
        CHECK(*at(&want.v, 1, 3, s, 2 * s - 1) == *at(&x.v, 1, 3, 1, 1));
        for (int th = 1; th <= 2; th++) {
            q7_cpu_set_threads(th);
            struct tview y = tview_make(3, 7, 5 * s, 6 * s, 5, 9);
            tview_fill_value(&y, SENTINEL);
            q7_cpu_upsample_nearest(&x.v, s, &y.v);
            snprintf(what, sizeof what, "upsample x%d [t%d]", s, th);
            compare_views(what, &y.v, &want.v, -1.0, 1);
            check_outside(what, &y);
            free(y.buf);
        }
        free(want.buf);
        free(x.buf);
    }
    combo_reset();
}

/* ---- the reference against hand-computed cases ---- */

static void test_ref_conv_hand(void)
{
    printf("reference conv: hand-computed 3x3 on 4x4\n");
    float xin[16];
    for (int i = 0; i < 16; i++)
        xin[i] = (float)i;
    struct q7_view x = {xin, 1, 1, 4, 4, 16};
    float w1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float b = 0.5f;
    struct q7_conv_params p = {.in_ch = 1, .out_ch = 1, .kh = 3, .kw = 3, .stride_h = 1,
                               .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1,
                               .groups = 1, .act = {Q7_ACT_IDENTITY, 0.0f}};
    float out[16];
    struct q7_view y = {out, 1, 1, 4, 4, 16};
    q7_ref_conv2d(&x, w1, &b, &p, NULL, &y);
    /* box sums of the 3x3 neighbourhood, zero padded */
    CHECK(out[0] == 10.5f);  /* 0+1+4+5 */
    CHECK(out[3] == 18.5f);  /* 2+3+6+7 */
    CHECK(out[5] == 45.5f);  /* 0+1+2+4+5+6+8+9+10 */
    CHECK(out[15] == 50.5f); /* 10+11+14+15 */
    CHECK(out[9] == 81.5f);  /* 4+5+6+8+9+10+12+13+14 */

    /* a kernel that picks the right neighbour: y[i][j] = x[i][j+1], 0 past the edge */
    float shift[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    q7_ref_conv2d(&x, shift, NULL, &p, NULL, &y);
    CHECK(out[0] == 1.0f && out[2] == 3.0f && out[3] == 0.0f && out[14] == 15.0f);

    /* stride 2, no padding: one output, the top-left 3x3 sum */
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 0;
    struct q7_view y1 = {out, 1, 1, 1, 1, 1};
    q7_ref_conv2d(&x, w1, NULL, &p, NULL, &y1);
    CHECK(out[0] == 45.0f);

    /* dilation 2, padding 2: the centre tap and its +-2 neighbours */
    p.stride_h = p.stride_w = 1;
    p.pad_h = p.pad_w = 2;
    p.dil_h = p.dil_w = 2;
    q7_ref_conv2d(&x, w1, NULL, &p, NULL, &y);
    CHECK(out[0] == 0.0f + 2.0f + 8.0f + 10.0f);
    CHECK(out[5] == 5.0f + 7.0f + 13.0f + 15.0f);

    /* SiLU epilogue: x / (1 + exp(-x)) */
    p = (struct q7_conv_params){.in_ch = 1, .out_ch = 1, .kh = 1, .kw = 1, .stride_h = 1,
                                .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1,
                                .act = {Q7_ACT_SILU, 0.0f}};
    float one = 1.0f;
    q7_ref_conv2d(&x, &one, NULL, &p, NULL, &y);
    CHECK(fabsf(out[2] - 2.0f / (1.0f + expf(-2.0f))) == 0.0f);
    CHECK(fabsf(out[1] - 0.7310586f) < 1e-6f);
}

static void test_fake_quant(void)
{
    printf("fake-quant: round half to even, clamp; optimized conv input path bit-exact\n");
    CHECK(q7_fq_apply(2.5f, 1.0f) == 2.0f);
    CHECK(q7_fq_apply(3.5f, 1.0f) == 4.0f);
    CHECK(q7_fq_apply(-2.5f, 1.0f) == -2.0f);
    CHECK(q7_fq_apply(0.5f, 1.0f) == 0.0f);
    CHECK(q7_fq_apply(1.5f, 1.0f) == 2.0f);
    CHECK(q7_fq_apply(1.25f, 2.0f) == 1.0f);   /* 2.5 -> 2 -> 1 */
    CHECK(q7_fq_apply(200.0f, 1.0f) == 127.0f); /* clamp */
    CHECK(q7_fq_apply(-200.0f, 1.0f) == -127.0f);
    CHECK(q7_fq_apply(5.0f, 0.0f) == 0.0f);
    CHECK(q7_fq_scale(127.0f) == 1.0f && q7_fq_scale(0.0f) == 0.0f);
    CHECK(signbit(q7_fq_apply(-0.25f, 1.0f)));

    /* An identity 1x1 conv (weight = I) outputs the fake-quantized input itself; feed it
     * ties, clamps and signed zeros and ask for bit equality with the reference. */
    const int C = 3, H = 5, W = 7;
    struct tview x = tview_make(2, C, H, W, 0, 0);
    const float scale = q7_fq_scale(3.0f); /* 127 / 3 */
    for (size_t i = 0; i < x.buf_len; i++) {
        const int k = (int)(i % 300) - 150;
        x.buf[i] = ((float)k + 0.5f) / scale; /* x*scale ~ k.5: ties (up to rounding) */
    }
    x.buf[0] = -0.1f / scale;
    x.buf[1] = 0.0f;
    x.buf[2] = 1000.0f;
    float eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    struct q7_conv_params p = {.in_ch = C, .out_ch = C, .kh = 1, .kw = 1, .stride_h = 1,
                               .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1,
                               .act = {Q7_ACT_IDENTITY, 0.0f}};
    struct q7_conv_extra extra = {.in_scale = scale};
    struct tview want = tview_make(2, C, H, W, 0, 0);
    q7_ref_conv2d(&x.v, eye, NULL, &p, &extra, &want.v);
    int direct_ok = 1;
    for (size_t i = 0; i < x.buf_len; i++)
        if (want.buf[i] != q7_fq_apply(x.buf[i], scale))
            direct_ok = 0;
    CHECK(direct_ok);
    char what[120];
    for (int i = 0; i < g_n_combos; i++) {
        combo_apply(&g_combos[i]);
        struct tview y = tview_make(2, C, H, W, 0, 0);
        void * ws = malloc(q7_cpu_conv2d_workspace(&x.v, &p, &y.v) + 1);
        q7_cpu_conv2d(&x.v, eye, NULL, &p, &extra, &y.v, ws);
        snprintf(what, sizeof what, "fake-quant identity conv [%s %s t%d]",
                 g_combos[i].path == Q7_CPU_CONV_BLAS ? "blas" : "packed",
                 isa_name(g_combos[i].isa), g_combos[i].threads);
        /* |x| == |q/s| exactly (one product by 1 and exact zero sums); signs of zero may
         * differ through the sum, so compare values. */
        size_t bad = 0;
        for (size_t j = 0; j < y.buf_len; j++)
            if (y.buf[j] != want.buf[j])
                bad++;
        CHECKF(bad == 0, "%s: %zu values differ", what, bad);
        free(ws);
        free(y.buf);
    }
    combo_reset();
    free(want.buf);
    free(x.buf);
}

static void test_ref_layout_hand(void)
{
    printf("reference reorg, concat, implicit add/mul, maxpool padding: hand-computed\n");
    float xin[16];
    for (int i = 0; i < 16; i++)
        xin[i] = (float)i;
    struct q7_view x = {xin, 1, 1, 4, 4, 16};
    float out[16];
    struct q7_view y = {out, 1, 4, 2, 2, 16};
    q7_ref_reorg(&x, &y);
    const float expect[16] = {0, 2, 8, 10,  /* x[::2, ::2] */
                              4, 6, 12, 14, /* x[1::2, ::2] */
                              1, 3, 9, 11,  /* x[::2, 1::2] */
                              5, 7, 13, 15}; /* x[1::2, 1::2] */
    CHECK(memcmp(out, expect, sizeof out) == 0);

    /* concat of 1 + 2 channels, batch 2, into a 3-channel output */
    float a[2 * 1 * 2] = {1, 2, 3, 4}, b[2 * 2 * 2] = {5, 6, 7, 8, 9, 10, 11, 12};
    struct q7_view va = {a, 2, 1, 1, 2, 2}, vb = {b, 2, 2, 1, 2, 4};
    float cat[12];
    struct q7_view vc = {cat, 2, 3, 1, 2, 6};
    const struct q7_view * parts[2] = {&va, &vb};
    q7_ref_concat(parts, 2, &vc);
    const float cat_expect[12] = {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12};
    CHECK(memcmp(cat, cat_expect, sizeof cat) == 0);

    /* implicit add / mul per channel, in place */
    float v2[2] = {10.0f, -1.0f};
    float im[4] = {1, 2, 3, 4};
    struct q7_view vi = {im, 1, 2, 1, 2, 4};
    q7_ref_implicit_add(&vi, v2, &vi);
    CHECK(im[0] == 11.0f && im[1] == 12.0f && im[2] == 2.0f && im[3] == 3.0f);
    q7_ref_implicit_mul(&vi, v2, &vi);
    CHECK(im[0] == 110.0f && im[1] == 120.0f && im[2] == -2.0f && im[3] == -3.0f);

    /* maxpool: a -inf pad never wins over negative inputs */
    float neg[4] = {-4, -3, -2, -1};
    struct q7_view vn = {neg, 1, 1, 2, 2, 4};
    float pooled[4];
    struct q7_view vp = {pooled, 1, 1, 2, 2, 4};
    const struct q7_pool_params pp = {3, 3, 1, 1, 1, 1, 0};
    q7_ref_maxpool(&vn, &pp, &vp);
    CHECK(pooled[0] == -1.0f && pooled[3] == -1.0f);
    const struct q7_pool_params p2 = {2, 2, 2, 2, 1, 1, 0}; /* windows of one real cell */
    q7_ref_maxpool(&vn, &p2, &vp);
    CHECK(pooled[0] == -4.0f && pooled[1] == -3.0f && pooled[2] == -2.0f && pooled[3] == -1.0f);
}

static void test_ref_detect_hand(void)
{
    printf("reference detect decode: known cells, row order, batch\n");
    /* 2 levels, na = 2, no = 6 (1 class), batch 2 */
    struct q7_detect_params p;
    memset(&p, 0, sizeof p);
    p.kind = Q7_DETECT_PLAIN;
    p.nc = 1;
    p.no = 6;
    p.na = 2;
    p.nl = 2;
    p.stride[0] = 8.0f;
    p.stride[1] = 16.0f;
    const float anchors[2][2][2] = {{{10, 13}, {16, 30}}, {{30, 61}, {62, 45}}};
    for (int l = 0; l < 2; l++)
        for (int a = 0; a < 2; a++)
            for (int k = 0; k < 2; k++)
                p.anchor_grid[l][a][k] = anchors[l][a][k];
    const int hs[2] = {2, 1}, ws[2] = {3, 2};
    struct tview lv[2];
    const struct q7_view * xs[2];
    for (int l = 0; l < 2; l++) {
        lv[l] = tview_make(2, 12, hs[l], ws[l], 1, 3); /* channel slices too */
        tview_fill_value(&lv[l], 0.0f);                /* sigmoid(0) = 0.5 */
        xs[l] = &lv[l].v;
    }
    const float v = logf(3.0f); /* sigmoid = 0.75 */
    /* level 0, image 1, anchor 1, cell (y=1, x=2): x and w fields set to v */
    *at(&lv[0].v, 1, 1 * 6 + 0, 1, 2) = v;
    *at(&lv[0].v, 1, 1 * 6 + 2, 1, 2) = v;
    *at(&lv[0].v, 1, 1 * 6 + 5, 1, 2) = -v; /* class: sigmoid = 0.25 */
    /* level 1, image 0, anchor 0, cell (0, 1): h field */
    *at(&lv[1].v, 0, 0 * 6 + 3, 0, 1) = v;
    const int64_t rows = 2 * 2 * 3 + 2 * 1 * 2; /* 16 */
    float * out = malloc(sizeof(float) * 2 * rows * 6);
    q7_ref_detect(xs, &p, out, rows);
    /* image 1, level 0, anchor 1, y 1, x 2: row (1*2 + 1)*3 + 2 = 11 */
    const float * r = out + (1 * rows + 11) * 6;
    CHECK(fabsf(r[0] - (0.75f * 2 - 0.5f + 2) * 8) < 1e-4f); /* 24 */
    CHECK(fabsf(r[1] - (0.5f * 2 - 0.5f + 1) * 8) < 1e-6f);  /* 12 */
    CHECK(fabsf(r[2] - 1.5f * 1.5f * 16) < 1e-4f);           /* 36 */
    CHECK(fabsf(r[3] - 30.0f) < 1e-6f);
    CHECK(r[4] == 0.5f && fabsf(r[5] - 0.25f) < 1e-6f);
    /* image 0, level 1 starts at row 12; anchor 0, y 0, x 1: row 13 */
    r = out + (0 * rows + 13) * 6;
    CHECK(fabsf(r[0] - (0.5f + 1) * 16) < 1e-6f);
    CHECK(fabsf(r[1] - 0.5f * 16) < 1e-6f);
    CHECK(fabsf(r[2] - 30.0f) < 1e-6f);
    CHECK(fabsf(r[3] - 1.5f * 1.5f * 61) < 1e-4f);
    /* image 0, row 0: level 0, anchor 0, cell (0,0) */
    r = out;
    CHECK(r[0] == 4.0f && r[1] == 4.0f && r[2] == 10.0f && r[3] == 13.0f && r[4] == 0.5f);
    /* last row of image 1: level 1, anchor 1, y 0, x 1 */
    r = out + (1 * rows + 15) * 6;
    CHECK(r[0] == 24.0f && r[1] == 8.0f && r[2] == 62.0f && r[3] == 45.0f);
    free(out);
    free(lv[0].buf);
    free(lv[1].buf);
}

/* ---- thread pool ---- */

struct count_ctx {
    int * hits;
    int bad_thread;
};

static void count_task(void * ctx, int64_t t, int thread)
{
    struct count_ctx * c = ctx;
    __atomic_fetch_add(&c->hits[t], 1, __ATOMIC_RELAXED);
    if (thread < 0 || thread >= q7_cpu_threads())
        c->bad_thread = 1;
}

static void test_pool(void)
{
    printf("thread pool: every task once, thread ids in range\n");
    for (int th = 1; th <= 4; th++) {
        q7_cpu_set_threads(th);
        CHECK(q7_cpu_threads() == th);
        for (int64_t n = 0; n <= 37; n += 37 / 4 + 1) {
            int hits[64] = {0};
            struct count_ctx c = {hits, 0};
            q7_cpu_parallel(n, count_task, &c);
            int ok = !c.bad_thread;
            for (int64_t i = 0; i < n; i++)
                ok &= hits[i] == 1;
            CHECKF(ok, "pool threads %d tasks %lld", th, (long long)n);
        }
    }
    /* a forked child gets a working pool of its own (workers do not survive fork) */
    q7_cpu_set_threads(2);
    int hits[64] = {0};
    struct count_ctx c = {hits, 0};
    q7_cpu_parallel(8, count_task, &c); /* parent's workers exist now */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20); /* a hang fails the test instead of stalling it */
        int child_hits[64] = {0};
        struct count_ctx cc = {child_hits, 0};
        q7_cpu_parallel(37, count_task, &cc);
        int ok = !cc.bad_thread;
        for (int i = 0; i < 37; i++)
            ok &= child_hits[i] == 1;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pool after fork: status %d", status);
    q7_cpu_set_threads(0);
    CHECK(q7_cpu_threads() >= 1);
}

/* ---- optional benchmark ---- */

static void bench_conv(const char * label, int cin, int cout, int hw, int k, int stride,
                       enum q7_act act, int n_iter)
{
    struct q7_conv_params p = {.in_ch = cin, .out_ch = cout, .kh = k, .kw = k,
                               .stride_h = stride, .stride_w = stride, .pad_h = k / 2,
                               .pad_w = k / 2, .dil_h = 1, .dil_w = 1, .groups = 1,
                               .act = {act, 0.0f}};
    struct tview x = tview_make(1, cin, hw, hw, 0, 0);
    tview_fill(&x, -1.0f, 1.0f);
    const int64_t ohw = conv_out(hw, k, stride, k / 2, 1);
    struct tview y = tview_make(1, cout, ohw, ohw, 0, 0);
    const size_t wn = (size_t)cout * cin * k * k;
    float * w = malloc(wn * sizeof(float));
    float * b = malloc((size_t)cout * sizeof(float));
    for (size_t i = 0; i < wn; i++)
        w[i] = q7t_rand_uniform(&g_rng, -0.1f, 0.1f);
    for (int i = 0; i < cout; i++)
        b[i] = 0.1f;
    const double flops = 2.0 * cout * cin * k * k * (double)ohw * ohw;
    for (int i = 0; i < g_n_combos; i++) {
        if (g_combos[i].threads != 1)
            continue;
        for (int th = 1; th <= 2; th++) {
            struct combo cb = g_combos[i];
            cb.threads = th == 1 ? 1 : 0;
            combo_apply(&cb);
            void * ws = malloc(q7_cpu_conv2d_workspace(&x.v, &p, &y.v) + 1);
            q7_cpu_conv2d(&x.v, w, b, &p, NULL, &y.v, ws); /* warm up */
            double best = 1e30;
            for (int it = 0; it < n_iter; it++) {
                const double t0 = q7_time_now();
                q7_cpu_conv2d(&x.v, w, b, &p, NULL, &y.v, ws);
                const double dt = q7_time_now() - t0;
                best = dt < best ? dt : best;
            }
            printf("  bench %s [%s %s, %d threads]: %.2f ms, %.1f GFLOP/s\n", label,
                   cb.path == Q7_CPU_CONV_BLAS ? "blas" : "packed", isa_name(cb.isa),
                   q7_cpu_threads(), best * 1e3, flops / best * 1e-9);
            free(ws);
        }
    }
    combo_reset();
    free(w);
    free(b);
    free(x.buf);
    free(y.buf);
}

/* q7_cpu_fake_quant_copy against the scalar specification, on a channel slice and in place,
 * with values on rounding ties and beyond the clamp. */
static void test_fake_quant_copy(void)
{
    uint64_t seed = 11;
    const int64_t n = 3, c = 5, h = 7, w = 9, c_total = 8, hw = h * w;
    float * src = malloc((size_t)(n * c_total * hw) * sizeof(float));
    float * dst = malloc((size_t)(n * c * hw) * sizeof(float));
    const float scale = 127.0f / 2.5f;
    for (int64_t i = 0; i < n * c_total * hw; i++) {
        float v = q7t_rand_uniform(&seed, -3.5f, 3.5f);
        if (i % 7 == 0) /* an exact .5 tie in quantized units */
            v = ((float)(i % 50) - 25.0f + 0.5f) / scale;
        src[i] = v;
    }
    struct q7_view x = {src + 2 * hw, n, c, h, w, c_total * hw};
    struct q7_view y = {dst, n, c, h, w, c * hw};
    q7_cpu_fake_quant_copy(&x, scale, &y);
    int bad = 0;
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < c * hw; i++) {
            float want = q7_fq_apply(x.data[b * x.batch_stride + i], scale);
            bad += memcmp(&want, &dst[b * c * hw + i], sizeof want) != 0;
        }
    CHECKF(bad == 0, "fake_quant_copy: %d values differ from q7_fq_apply", bad);
    q7_cpu_fake_quant_copy(&y, scale, &y); /* in place: idempotent */
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < c * hw; i++) {
            float want = q7_fq_apply(x.data[b * x.batch_stride + i], scale);
            bad += memcmp(&want, &dst[b * c * hw + i], sizeof want) != 0;
        }
    CHECKF(bad == 0, "fake_quant_copy in place: %d values differ", bad);
    /* scale 0 (amax <= 2^-24): zeros, as the reference */
    q7_cpu_fake_quant_copy(&x, 0.0f, &y);
    for (int64_t i = 0; i < n * c * hw; i++)
        bad += dst[i] != 0.0f;
    CHECKF(bad == 0, "fake_quant_copy with scale 0: %d values are not 0", bad);
    free(src);
    free(dst);

    /* Every ISA's vector row kernel, on many tasks of the pool (1 and 3 threads), an odd
     * length (vector tails), ties, clamps, signed zeros, infinities and NaN. */
    const int64_t big = 3 * 16384 + 4099;
    float * a = malloc((size_t)(2 * big) * sizeof(float));
    float * b = malloc((size_t)(2 * big) * sizeof(float));
    for (int64_t i = 0; i < 2 * big; i++) {
        a[i] = q7t_rand_uniform(&seed, -4.0f, 4.0f);
        if (i % 5 == 0)
            a[i] = ((float)(i % 301) - 150.0f + 0.5f) / scale;
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -1e-30f, 1e30f, -0.5f / scale};
    for (size_t k = 0; k < sizeof special / sizeof special[0]; k++)
        a[2 * big - 1 - (int64_t)k * 3] = special[k];
    for (int isa = 0; isa < Q7_CPU_ISA_COUNT; isa++) {
        if (!q7_cpu_isa_force((enum q7_cpu_isa)isa))
            continue;
        for (int t = 1; t <= 3; t += 2) {
            q7_cpu_set_threads(t);
            struct q7_view va = {a, 2, 1, 1, big, big}, vb = {b, 2, 1, 1, big, big};
            q7_cpu_fake_quant_copy(&va, scale, &vb);
            bad = 0;
            for (int64_t i = 0; i < 2 * big; i++) {
                float want = q7_fq_apply(a[i], scale);
                bad += !(isnan(want) && isnan(b[i])) && memcmp(&want, &b[i], sizeof want) != 0;
            }
            CHECKF(bad == 0, "fake_quant_copy of %lld floats, %s, %d threads: %d differ",
                   (long long)(2 * big), q7_cpu_ops_get()->name, t, bad);
        }
    }
    q7_cpu_isa_force(Q7_CPU_ISA_COUNT);
    q7_cpu_set_threads(0);
    free(a);
    free(b);
}

/* The output fake-quant of the conv epilogue (q7_conv_extra.out_scale): for every kernel
 * configuration, bit for bit fq(the same conv without it), on channel-slice outputs; and the
 * reference's the same way. */
static void test_conv_out_quant(void)
{
    printf("conv output fake-quant (epilogue) = fq(conv output), bit for bit\n");
    const struct conv_case cases[] = {
        /* n cin cout h w  kh kw sh sw ph pw dh dw g  bias act                amax in out */
        {1, 7, 13, 10, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, Q7_ACT_SILU, 0, 0, 5},
        {3, 16, 24, 21, 37, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, Q7_ACT_IDENTITY, 1.3f, 0, 3},
        {2, 9, 17, 15, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, Q7_ACT_LEAKY_RELU, 2.0f, 0, 0},
        {1, 300, 20, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, Q7_ACT_RELU, 0, 0, 2},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct conv_case * cc = &cases[ci];
        struct conv_data cd = conv_data_make(cc);
        const struct q7_conv_params p = cd.p;
        const int64_t oh = cd.oh, ow = cd.ow;
        struct tview x = cd.x;
        float * weight = cd.weight, * bias = cd.bias;
        const float * b = cc->bias ? bias : NULL;
        const float out_scale = 127.0f / 1.7f;
        struct q7_conv_extra plain = {.in_scale = q7_fq_scale(cc->amax)};
        struct q7_conv_extra quant = {.in_scale = plain.in_scale, .out_scale = out_scale};
        char what[160];
        for (int i = -1; i < g_n_combos; i++) { /* -1: the reference */
            if (i >= 0)
                combo_apply(&g_combos[i]);
            struct tview y0 = tview_make(cc->n, cc->cout, oh, ow, cc->out_extra / 2, cc->out_extra);
            struct tview y1 = tview_make(cc->n, cc->cout, oh, ow, cc->out_extra / 2, cc->out_extra);
            tview_fill_value(&y0, SENTINEL);
            tview_fill_value(&y1, SENTINEL);
            void * ws = NULL;
            if (i < 0) {
                q7_ref_conv2d(&x.v, weight, b, &p, &plain, &y0.v);
                q7_ref_conv2d(&x.v, weight, b, &p, &quant, &y1.v);
                snprintf(what, sizeof what, "conv out fq case %zu [reference]", ci);
            } else {
                ws = malloc(q7_cpu_conv2d_workspace(&x.v, &p, &y0.v) + 1);
                q7_cpu_conv2d(&x.v, weight, b, &p, &plain, &y0.v, ws);
                q7_cpu_conv2d(&x.v, weight, b, &p, &quant, &y1.v, ws);
                snprintf(what, sizeof what, "conv out fq case %zu [%s %s t%d]", ci,
                         g_combos[i].path == Q7_CPU_CONV_BLAS ? "blas" : "packed",
                         isa_name(g_combos[i].isa), g_combos[i].threads);
            }
            size_t bad = 0, changed = 0;
            for (size_t j = 0; j < y0.buf_len; j++) {
                const float want = in_view(&y0, j) ? q7_fq_apply(y0.buf[j], out_scale) : SENTINEL;
                bad += memcmp(&want, &y1.buf[j], sizeof want) != 0;
                changed += in_view(&y0, j) && y0.buf[j] != y1.buf[j];
            }
            CHECKF(bad == 0, "%s: %zu values differ from fq(conv)", what, bad);
            CHECKF(changed > 0, "%s: the output fake-quant changed nothing", what);
            check_outside(what, &y1);
            free(ws);
            free(y0.buf);
            free(y1.buf);
        }
        combo_reset();
        conv_data_free(&cd);
    }
}

int main(void)
{
    test_fake_quant_copy();
    g_n_combos = list_combos(g_combos, 16);
    printf("kernel configurations under test:");
    for (int i = 0; i < g_n_combos; i++)
        printf(" [%s %s t%d]", g_combos[i].path == Q7_CPU_CONV_BLAS ? "blas" : "packed",
               isa_name(g_combos[i].isa), g_combos[i].threads);
    printf("\nautomatic: %s kernels, %s conv, %d threads\n", q7_cpu_ops_get()->name,
           q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS ? "blas" : "packed", q7_cpu_threads());

    test_pool();
    test_ref_conv_hand();
    test_ref_layout_hand();
    test_ref_detect_hand();
    test_fake_quant();
    test_conv_vs_ref();
    test_conv_order();
    test_kernels_select();
    test_conv_out_quant();
    test_act();
    test_add_copy();
    test_batchnorm();
    test_maxpool();
    test_upsample();

    const char * bench = getenv("Q7_BENCH");
    if (bench && bench[0] == '1') {
        printf("benchmark (best of 5)\n");
        bench_conv("256->256 3x3 80x80 SiLU", 256, 256, 80, 3, 1, Q7_ACT_SILU, 5);
        bench_conv("128->128 1x1 160x160 SiLU", 128, 128, 160, 1, 1, Q7_ACT_SILU, 5);
        bench_conv("128->128 1x1 160x160 no act", 128, 128, 160, 1, 1, Q7_ACT_IDENTITY, 5);
        bench_conv("64->128 3x3 s2 320x320 SiLU", 64, 128, 320, 3, 2, Q7_ACT_SILU, 5);
        bench_conv("3->32 3x3 640x640 SiLU", 3, 32, 640, 3, 1, Q7_ACT_SILU, 5);
        bench_conv("3->32 3x3 640x640 no act", 3, 32, 640, 3, 1, Q7_ACT_IDENTITY, 5);
    }
    return q7t_finish("test_kernels");
}
