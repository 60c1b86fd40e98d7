/* Optimized 2-D convolution (contract: kernels.h, specification: ref/ref_conv.c).
 *
 * Default strategy ("packed"): a blocked GEMM per (image, group)
 *     Y[cout_g x P] = W[cout_g x K] * im2col(X)[K x P],  K = cin_g*kh*kw, P = out_h*out_w,
 * BLIS style, with the im2col fused into the packing of B, so no full im2col matrix is ever
 * built:
 *   - W is packed once per call into MR-row slivers (shared by all threads);
 *   - each task takes one tile of NC output pixels of one image and group (plus a range of
 *     output channels when there are fewer tiles than threads), packs its K x NC block of
 *     im2col(X) KC rows at a time into its own slot of the workspace (fake-quantizing as it
 *     reads), and runs the ISA's MR x NR micro-kernel over it, writing straight into y
 *     (row stride P, so a channel slice of a bigger tensor works as is);
 *   - after the last KC block the epilogue (bias + activation) runs over each MR x NC strip
 *     while it is still in L1.
 * Sizes: a KC x MR sliver of W (8 KiB) stays in L1, the KC x NC block of B (<= 192 KiB) in
 * L2.
 *
 * Other strategy ("blas", cpu_conv_blas.c): im2col tiles + OpenBLAS sgemm + epilogue. It is
 * the automatic choice when OpenBLAS is built in and the CPU lacks AVX-512, where OpenBLAS'
 * AVX2 kernels are as good as ours; with AVX-512 ours are about twice as fast as the
 * OpenBLAS 0.3.21 build Debian ships (which picks its AVX2 kernels on AMD Zen 4/5).
 *
 * Accuracy: FP32 accumulation in k order within a KC block, blocks added in order; the
 * activation's exp is a vector polynomial within ~2 ulp of expf on x86 (exactly the
 * reference's on the generic ISA). Input fake-quant is bit-exact with the reference.
 * x and y must not overlap. */
#include "kernels/cpu/cpu_impl.h"

#include <math.h>
#include <string.h>

#include <stdlib.h>
static int64_t envi(const char*n,int64_t d){const char*v=getenv(n);return v?atoll(v):d;}
#define CONV_KC_MAX envi("KC",256)
#define CONV_NC_TARGET envi("NC",192)

/* Blocking of one convolution for one micro-kernel shape. Everything the workspace size
 * depends on, so q7_cpu_conv2d_workspace and q7_cpu_conv2d agree. */
struct conv_geom {
    int64_t batch, groups, cin_g, cout_g, K, P;
    int64_t mr, nr;
    int64_t mblocks;     /* MR blocks per group */
    int64_t kc;          /* rows per packed B block (last may be shorter) */
    int64_t nc;          /* pixels per tile, a multiple of nr */
    int64_t tiles;       /* tiles per image */
    int64_t a_floats;    /* packed W, all groups, rounded up to Q7_CPU_ALIGN */
    int64_t slot_floats; /* one thread's packed B block */
    int64_t slots;
    size_t bytes; /* workspace bytes, alignment slack included */
};

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Returns 0 when the sizes overflow (workspace: SIZE_MAX, so its allocation fails). */
static int conv_geom_init(const struct q7_view * x, const struct q7_conv_params * p,
                          const struct q7_view * y, const struct q7_cpu_ops * ops,
                          struct conv_geom * g)
{
    memset(g, 0, sizeof *g);
    if (p->groups <= 0 || p->kh <= 0 || p->kw <= 0 || y->n <= 0 || y->c <= 0 || y->h <= 0 ||
        y->w <= 0 || x->c <= 0)
        return 0;
    g->batch = y->n;
    g->groups = p->groups;
    g->cin_g = x->c / p->groups;
    g->cout_g = y->c / p->groups;
    g->K = g->cin_g * p->kh * p->kw;
    g->P = y->h * y->w;
    g->mr = ops->mr;
    g->nr = ops->nr;
    g->mblocks = ceil_div(g->cout_g, g->mr);
    const int64_t kblocks = ceil_div(g->K, CONV_KC_MAX);
    g->kc = ceil_div(g->K, kblocks);
    int64_t tiles = ceil_div(g->P, CONV_NC_TARGET);
    g->nc = ceil_div(ceil_div(g->P, tiles), g->nr) * g->nr;
    g->tiles = ceil_div(g->P, g->nc);

    size_t a, all, slots_total, bytes;
    const size_t align_floats = Q7_CPU_ALIGN / sizeof(float);
    if (!q7_size_mul((size_t)(g->groups * g->mblocks * g->mr), (size_t)g->K, &a) ||
        !q7_size_add(a, align_floats - 1, &a))
        return 0;
    a = a / align_floats * align_floats;
    g->a_floats = (int64_t)a;
    g->slot_floats = g->kc * g->nc;
    size_t max_tasks;
    if (!q7_size_mul((size_t)(g->batch * g->groups), (size_t)g->tiles, &max_tasks) ||
        !q7_size_mul(max_tasks, (size_t)g->mblocks, &max_tasks))
        return 0;
    g->slots = max_tasks < Q7_CPU_MAX_THREADS ? (int64_t)max_tasks : Q7_CPU_MAX_THREADS;
    if (!q7_size_mul((size_t)g->slot_floats, (size_t)g->slots, &slots_total) ||
        !q7_size_add(a, slots_total, &all) || !q7_size_mul(all, sizeof(float), &bytes) ||
        !q7_size_add(bytes, Q7_CPU_ALIGN, &bytes))
        return 0;
    g->bytes = bytes;
    return 1;
}

/* ---- strategy selection ---- */

static enum q7_cpu_conv_path g_path_forced = Q7_CPU_CONV_AUTO;

int q7_cpu_conv_path_force(enum q7_cpu_conv_path path)
{
#ifndef Q7_HAVE_OPENBLAS
    if (path == Q7_CPU_CONV_BLAS)
        return 0;
#endif
    g_path_forced = path;
    return 1;
}

enum q7_cpu_conv_path q7_cpu_conv_path_get(void)
{
    if (g_path_forced != Q7_CPU_CONV_AUTO)
        return g_path_forced;
#ifdef Q7_HAVE_OPENBLAS
    if (q7_cpu_ops_get()->isa != Q7_CPU_ISA_AVX512)
        return Q7_CPU_CONV_BLAS;
#endif
    return Q7_CPU_CONV_PACKED;
}

/* ---- im2col, shared with the BLAS strategy ---- */

/* Fake-quantizes in place, bit-exact with q7_fq_apply for in_scale != 0: clamping before
 * rounding gives the same result (the bounds are integers), and for |v| <= 127 adding and
 * subtracting 1.5 * 2^23 rounds half to even like nearbyintf; copysignf keeps nearbyintf's
 * sign of zero. Written so that the compiler vectorizes it. */
static void fake_quant_run(float * d, int64_t n, float scale)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    for (int64_t i = 0; i < n; i++) {
        float v = d[i] * scale;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        float q = (v + magic) - magic;
        q = copysignf(q, v);
        d[i] = q / scale;
    }
}

void q7_cpu_im2col_row(const struct q7_view * x, const struct q7_conv_params * p,
                       int64_t out_w, float in_scale, int64_t n, int64_t g, int64_t k,
                       int64_t p_begin, int64_t p_end, float * dst)
{
    const int64_t taps = (int64_t)p->kh * p->kw;
    const int64_t ci = k / taps, r = k % taps;
    const int64_t ky = r / p->kw, kx = r % p->kw;
    const int64_t cin_g = x->c / p->groups;
    const int64_t H = x->h, W = x->w;
    const int64_t sw = p->stride_w;
    const float * plane = x->data + n * x->batch_stride + (g * cin_g + ci) * H * W;
    int64_t oy = p_begin / out_w, ox = p_begin % out_w;
    float * d = dst;
    for (int64_t pp = p_begin; pp < p_end;) {
        const int64_t run = min64(out_w - ox, p_end - pp);
        const int64_t iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
        if (iy < 0 || iy >= H) {
            memset(d, 0, (size_t)run * sizeof(float));
        } else {
            const float * row = plane + iy * W;
            const int64_t ix0 = ox * sw - p->pad_w + kx * p->dil_w;
            /* t in [t_lo, t_hi) reads inside the row: 0 <= ix0 + t*sw < W */
            int64_t t_lo = ix0 < 0 ? ceil_div(-ix0, sw) : 0;
            int64_t t_hi = ix0 < W ? ceil_div(W - ix0, sw) : 0;
            t_lo = min64(t_lo, run);
            t_hi = min64(t_hi, run);
            if (t_hi < t_lo)
                t_hi = t_lo;
            memset(d, 0, (size_t)t_lo * sizeof(float));
            if (sw == 1) {
                memcpy(d + t_lo, row + ix0 + t_lo, (size_t)(t_hi - t_lo) * sizeof(float));
            } else {
                const float * src = row + ix0;
                for (int64_t t = t_lo; t < t_hi; t++)
                    d[t] = src[t * sw];
            }
            memset(d + t_hi, 0, (size_t)(run - t_hi) * sizeof(float));
            if (in_scale != 0.0f)
                fake_quant_run(d + t_lo, t_hi - t_lo, in_scale);
        }
        d += run;
        pp += run;
        ox = 0;
        oy++;
    }
}

/* ---- the packed strategy ---- */

struct packed_job {
    const struct q7_view * x;
    const struct q7_view * y;
    const struct q7_conv_params * p;
    const float * weight;
    const float * bias;
    float in_scale;
    int need_epilogue;
    const struct q7_cpu_ops * ops;
    struct conv_geom g;
    float * a_packed;
    float * slots;
    int64_t msplit; /* output-channel ranges per tile */
};

/* Task: W rows of block (group, mblock) -> kc-major MR slivers, zero rows past cout_g. */
static void pack_a_task(void * ctx, int64_t t, int thread)
{
    const struct packed_job * job = ctx;
    const struct conv_geom * g = &job->g;
    const int64_t grp = t / g->mblocks, mb = t % g->mblocks;
    float * dst = job->a_packed + t * g->K * g->mr;
    for (int64_t i = 0; i < g->mr; i++) {
        const int64_t row = mb * g->mr + i;
        if (row >= g->cout_g) {
            for (int64_t k = 0; k < g->K; k++)
                dst[k * g->mr + i] = 0.0f;
            continue;
        }
        const float * src = job->weight + (grp * g->cout_g + row) * g->K;
        for (int64_t k = 0; k < g->K; k++)
            dst[k * g->mr + i] = src[k];
    }
    (void)thread;
}

/* Packs im2col rows [k0, k0 + kc) x pixels [p0, p0 + pn) into NR-wide slivers, each kc x NR,
 * zero-padding the last sliver's columns. */
static void pack_b(const struct packed_job * job, int64_t n, int64_t grp, int64_t k0,
                   int64_t kc, int64_t p0, int64_t pn, float * dst)
{
    const struct conv_geom * g = &job->g;
    const int64_t nr = g->nr;
    const int64_t slivers = ceil_div(pn, nr);
    const struct q7_conv_params * p = job->p;
    const int plain = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                      p->pad_h == 0 && p->pad_w == 0 && job->in_scale == 0.0f;
    for (int64_t s = 0; s < slivers; s++) {
        const int64_t pa = p0 + s * nr;
        const int64_t len = min64(nr, p0 + pn - pa);
        float * d = dst + s * kc * nr;
        if (plain) {
            /* 1x1 stride 1: im2col row k is input channel k itself */
            const float * src = job->x->data + n * job->x->batch_stride +
                                (grp * g->cin_g + k0) * g->P + pa;
            for (int64_t kk = 0; kk < kc; kk++, src += g->P, d += nr) {
                memcpy(d, src, (size_t)len * sizeof(float));
                if (len < nr)
                    memset(d + len, 0, (size_t)(nr - len) * sizeof(float));
            }
            continue;
        }
        for (int64_t kk = 0; kk < kc; kk++, d += nr) {
            q7_cpu_im2col_row(job->x, p, job->y->w, job->in_scale, n, grp, k0 + kk, pa,
                              pa + len, d);
            if (len < nr)
                memset(d + len, 0, (size_t)(nr - len) * sizeof(float));
        }
    }
}

static void packed_task(void * ctx, int64_t t, int thread)
{
    const struct packed_job * job = ctx;
    const struct conv_geom * g = &job->g;
    const int64_t r = t % job->msplit;
    t /= job->msplit;
    const int64_t tile = t % g->tiles;
    t /= g->tiles;
    const int64_t grp = t % g->groups;
    const int64_t n = t / g->groups;

    const int64_t mb0 = r * g->mblocks / job->msplit;
    const int64_t mb1 = (r + 1) * g->mblocks / job->msplit;
    const int64_t p0 = tile * g->nc;
    const int64_t pn = min64(g->nc, g->P - p0);
    const int64_t slivers = ceil_div(pn, g->nr);
    const int64_t P = g->P;
    float * bp = job->slots + (int64_t)thread * g->slot_floats;
    float * ybase = job->y->data + n * job->y->batch_stride + grp * g->cout_g * P + p0;
    const q7_cpu_gemm_fn gemm = job->ops->gemm;

    for (int64_t k0 = 0; k0 < g->K; k0 += g->kc) {
        const int64_t kc = min64(g->kc, g->K - k0);
        pack_b(job, n, grp, k0, kc, p0, pn, bp);
        const int last = k0 + kc == g->K;
        for (int64_t mb = mb0; mb < mb1; mb++) {
            const float * a = job->a_packed + ((grp * g->mblocks + mb) * g->K + k0) * g->mr;
            const int mr = (int)min64(g->mr, g->cout_g - mb * g->mr);
            float * c = ybase + mb * g->mr * P;
            for (int64_t s = 0; s < slivers; s++)
                gemm(kc, a, bp + s * kc * g->nr, c + s * g->nr, P, mr,
                     (int)min64(g->nr, pn - s * g->nr), k0 > 0);
            if (last && job->need_epilogue) {
                const int64_t co = grp * g->cout_g + mb * g->mr;
                for (int i = 0; i < mr; i++)
                    job->ops->act_row(c + i * P, c + i * P, pn,
                                      job->bias ? job->bias + co + i : NULL, job->p->act);
            }
        }
    }
}

static void conv2d_packed(const struct q7_view * x, const float * weight, const float * bias,
                          const struct q7_conv_params * p, float in_scale,
                          const struct q7_view * y, void * workspace)
{
    struct packed_job job = {
        .x = x,
        .y = y,
        .p = p,
        .weight = weight,
        .bias = bias,
        .in_scale = in_scale,
        .need_epilogue = bias != NULL || p->act.kind != Q7_ACT_IDENTITY,
        .ops = q7_cpu_ops_get(),
    };
    if (!conv_geom_init(x, p, y, job.ops, &job.g))
        return;
    const struct conv_geom * g = &job.g;
    job.a_packed = q7_cpu_align_ptr(workspace);
    job.slots = job.a_packed + g->a_floats;

    q7_cpu_parallel(g->groups * g->mblocks, pack_a_task, &job);

    /* Enough tasks for every thread: split output channels when tiles are few. Each split
     * packs the tile's B again, so keep at least two MR blocks per split. */
    const int64_t threads = q7_cpu_threads();
    const int64_t base = g->batch * g->groups * g->tiles;
    const int64_t target = 3 * threads;
    job.msplit = 1;
    if (threads > 1 && base < target) {
        job.msplit = min64(ceil_div(target, base), g->mblocks / 2);
        if (job.msplit < 1)
            job.msplit = 1;
    }
    q7_cpu_parallel(base * job.msplit, packed_task, &job);
}

/* ---- public entry points ---- */

size_t q7_cpu_conv2d_workspace(const struct q7_view * x, const struct q7_conv_params * p,
                               const struct q7_view * y)
{
#ifdef Q7_HAVE_OPENBLAS
    if (q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS)
        return q7_cpu_conv2d_blas_workspace(x, p, y);
#endif
    struct conv_geom g;
    if (y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0)
        return 0;
    if (!conv_geom_init(x, p, y, q7_cpu_ops_get(), &g))
        return SIZE_MAX;
    return g.bytes;
}

void q7_cpu_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y, void * workspace)
{
    if (y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0)
        return;
    const float in_scale = extra ? extra->in_scale : 0.0f;
#ifdef Q7_HAVE_OPENBLAS
    if (q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS) {
        q7_cpu_conv2d_blas(x, weight, bias, p, extra, y, workspace);
        return;
    }
#endif
    conv2d_packed(x, weight, bias, p, in_scale, y, workspace);
}
