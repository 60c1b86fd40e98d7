/* Optimized 2-D convolution (contract: kernels.h, specification: ref/ref_conv.c).
 *
 * Default strategy ("packed"): a blocked GEMM per (image, group)
 *     Y[cout_g x P] = W[cout_g x K] * im2col(X)[K x P],  K = cin_g*kh*kw, P = out_h*out_w,
 * with the im2col fused into the packing of B, so no full im2col matrix is ever built:
 *   - each task takes one tile of ~NC output pixels of one image and group (plus a range
 *     of output channels when there are fewer tiles than threads), packs its KC x NC block
 *     of im2col(X) at a time into its own slot of the workspace (fake-quantizing as it
 *     reads; 1x1 stride-1 convs without fake-quant read the input in place instead), and
 *     runs the ISA's MR x NR micro-kernel over it, writing straight into y (row stride P,
 *     so a channel slice of a bigger tensor works as is);
 *   - W is read in place: the micro-kernel broadcasts from MR weight rows (row stride K)
 *     through the table of the reduction order, so nothing is repacked per call;
 *   - after the last KC block the epilogue (activation, then the output's fake-quant when
 *     out_scale != 0; the bias started the sums) runs over each MR x NC strip while it is
 *     still in L1.
 * Sizes: MR rows x KC of W (8 KiB) stay in L1, the KC x NC block of B (~256 KiB) in L2.
 * The workspace is the order table and one B block per thread slot (Q7_CPU_MAX_THREADS slots
 * at most, never more than there are tasks), so its size does not depend on the thread count;
 * slots of threads that do not exist are never touched.
 *
 * Accuracy: each output is one FP32 FMA chain that starts from the bias and takes the terms
 * in PyTorch's CPU order (conv_order below), KC blocks going on from what the previous one
 * stored, so the result equals PyTorch 1.13's (oneDNN jit:avx2) bit for bit; the
 * activation's exp is SLEEF's, as in PyTorch's vectorized SiLU and sigmoid, where q7 is built
 * with SLEEF. Input fake-quant is bit-exact with the reference.
 *
 * Other strategy ("blas", cpu_conv_blas.c, only when forced: tests, `q7 bench --cpu-conv
 * blas`): im2col tiles + OpenBLAS sgemm + epilogue. OpenBLAS' order is its own, so it is not
 * bit-exact with PyTorch, and it is slower: yolov7 with the AVX2 micro-kernels 551-564 ms
 * packed vs 594-627 ms OpenBLAS (2 threads); with AVX-512 about half as fast (the OpenBLAS
 * 0.3.21 build Debian ships picks its AVX2 kernels on AMD Zen 4/5).
 *
 * x and y must not overlap. */
#include "kernels/cpu/cpu_impl.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define CONV_KC_MAX 256    /* rows of a packed B block (depth of one GEMM pass) */
#define CONV_NC_TARGET 256 /* output pixels per tile */
#define CONV_B_PAD 16      /* floats after each packed B row: no power-of-two row stride */
#define CONV_MAX_SIDE ((int64_t)1 << 24) /* larger images are refused (sizes stay in int64) */

/* Blocking of one convolution for one micro-kernel shape. Everything the workspace size
 * depends on, so q7_cpu_conv2d_workspace and q7_cpu_conv2d agree. */
struct conv_geom {
    int64_t batch, groups, cin_g, cout_g, K, P;
    int64_t mr, nr;
    int64_t mblocks;     /* MR blocks per group */
    int64_t kc;          /* rows per packed B block (last may be shorter) */
    int chunked;         /* blocks are oneDNN 1x1 chunks: each sums from 0, then adds */
    int64_t nc;          /* pixels per tile, a multiple of nr */
    int64_t ldb;         /* row stride of a packed B block: nc + CONV_B_PAD */
    int64_t tiles;       /* tiles per image */
    int64_t slot_floats; /* one thread's packed B block */
    int64_t slots;
    size_t kidx_bytes; /* the reduction order (K int32, padded to Q7_CPU_ALIGN) */
    size_t bytes; /* workspace bytes, alignment slack included */
};

/* Returns 0 when the sizes overflow. */
static int conv_geom_init(const struct q7_conv_params * p, const struct q7_view * y,
                          const struct q7_cpu_ops * ops, struct conv_geom * g)
{
    memset(g, 0, sizeof *g);
    if (p->groups <= 0 || p->kh <= 0 || p->kw <= 0 || y->n <= 0 || y->c <= 0 || y->h <= 0 ||
        y->w <= 0 || p->in_ch < p->groups || p->out_ch < p->groups)
        return 0;
    g->batch = y->n;
    g->groups = p->groups;
    g->cin_g = (int64_t)p->in_ch / p->groups;
    g->cout_g = (int64_t)p->out_ch / p->groups;
    g->K = g->cin_g * p->kh * p->kw;
    g->P = y->h * y->w;
    g->mr = ops->mr;
    g->nr = ops->nr;
    g->mblocks = ceil_div(g->cout_g, g->mr);
    const int64_t kblocks = ceil_div(g->K, CONV_KC_MAX);
    g->kc = ceil_div(g->K, kblocks);
    /* oneDNN's 1x1 kernel sums its reduction in chunks (the first from the bias, each later
     * one from 0, added to the stored result): one K block per chunk */
    const int chunk = q7_conv_fp32_chunk(p);
    g->chunked = chunk > 0;
    if (g->chunked)
        g->kc = chunk;
    int64_t tiles = ceil_div(g->P, CONV_NC_TARGET);
    g->nc = ceil_div(ceil_div(g->P, tiles), g->nr) * g->nr;
    g->tiles = ceil_div(g->P, g->nc);

    g->ldb = g->nc + CONV_B_PAD;
    g->slot_floats = g->kc * g->ldb;
    size_t max_tasks, bytes;
    if (!q7_size_mul((size_t)g->batch, (size_t)g->groups, &max_tasks) ||
        !q7_size_mul(max_tasks, (size_t)g->tiles, &max_tasks) ||
        !q7_size_mul(max_tasks, (size_t)g->mblocks, &max_tasks))
        return 0;
    g->slots = max_tasks < Q7_CPU_MAX_THREADS ? (int64_t)max_tasks : Q7_CPU_MAX_THREADS;
    g->kidx_bytes = (size_t)ceil_div(g->K * (int64_t)sizeof(int32_t), Q7_CPU_ALIGN) * Q7_CPU_ALIGN;
    if (!q7_size_mul((size_t)g->slot_floats, (size_t)g->slots, &bytes) ||
        !q7_size_mul(bytes, sizeof(float), &bytes) ||
        !q7_size_add(bytes, g->kidx_bytes + Q7_CPU_ALIGN, &bytes))
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
    return Q7_CPU_CONV_PACKED;
}

int q7_cpu_matches_pytorch(void)
{
#ifdef Q7_HAVE_SLEEF
    const enum q7_cpu_isa isa = q7_cpu_ops_get()->isa;
    return q7_cpu_conv_path_get() == Q7_CPU_CONV_PACKED &&
           (isa == Q7_CPU_ISA_AVX2 || isa == Q7_CPU_ISA_AVX512);
#else
    return 0;
#endif
}

/* ---- im2col, shared with the BLAS strategy ---- */

void q7_cpu_fake_quant_row(float * d, int64_t n, float scale)
{
    if (scale == 0.0f)
        memset(d, 0, (size_t)n * sizeof(float));
    else
        q7_cpu_ops_get()->fq_row(d, n, scale);
}

#define FQ_CHUNK 16384 /* floats per task of the copy (64 KiB: stays in L2 between the two) */

struct fq_copy_job {
    const struct q7_view * x, * y;
    float scale;
    int64_t chw, chunks;
};

static void fq_copy_task(void * ctx, int64_t t, int thread)
{
    const struct fq_copy_job * job = ctx;
    const int64_t b = t / job->chunks, i0 = t % job->chunks * FQ_CHUNK;
    const int64_t len = min64(FQ_CHUNK, job->chw - i0);
    const float * src = job->x->data + b * job->x->batch_stride + i0;
    float * dst = job->y->data + b * job->y->batch_stride + i0;
    if (dst != src)
        memcpy(dst, src, (size_t)len * sizeof(float));
    q7_cpu_fake_quant_row(dst, len, job->scale);
    (void)thread;
}

void q7_cpu_fake_quant_copy(const struct q7_view * x, float scale, const struct q7_view * y)
{
    struct fq_copy_job job = {.x = x, .y = y, .scale = scale, .chw = x->c * x->h * x->w};
    if (x->n <= 0 || job.chw <= 0)
        return;
    job.chunks = ceil_div(job.chw, FQ_CHUNK);
    q7_cpu_parallel(x->n * job.chunks, fq_copy_task, &job);
}

/* Number of t >= 0 with v + t*s < 0, i.e. ceil(-v / s) for v < 0 (s > 0), without a
 * division for the common strides. */
static inline int64_t steps_below(int64_t v, int64_t s)
{
    if (v >= 0)
        return 0;
    if (s == 1)
        return -v;
    if (s == 2)
        return (-v + 1) >> 1;
    return ceil_div(-v, s);
}

/* Writes `len` consecutive pixels of one im2col row, starting at output pixel (oy, ox):
 * the values plane[iy][ix] with iy = oy*sh - ph + ky*dh, ix = ox*sw - pw + kx*dw, zero
 * outside the plane, fake-quantized when in_scale != 0. */
static void im2col_span(const float * plane, const struct q7_conv_params * p, int64_t H,
                        int64_t W, int64_t out_w, int64_t ky, int64_t kx, int64_t oy,
                        int64_t ox, int64_t len, float in_scale, float * d)
{
    const int64_t sw = p->stride_w;
    const int64_t dy = ky * p->dil_h - p->pad_h;
    const int64_t dx = kx * p->dil_w - p->pad_w;
    while (len > 0) {
        const int64_t run = min64(out_w - ox, len);
        const int64_t iy = oy * p->stride_h + dy;
        if (iy < 0 || iy >= H) {
            memset(d, 0, (size_t)run * sizeof(float));
        } else {
            const float * row = plane + iy * W;
            const int64_t ix0 = ox * sw + dx;
            /* t in [t_lo, t_hi) reads inside the row: 0 <= ix0 + t*sw < W */
            int64_t t_lo = min64(steps_below(ix0, sw), run);
            int64_t t_hi = min64(steps_below(ix0 - W, sw), run);
            if (t_hi < t_lo)
                t_hi = t_lo;
            memset(d, 0, (size_t)t_lo * sizeof(float));
            if (t_hi > t_lo) {
                /* src: the first in-row input, dd: where it goes */
                const float * src = row + (ix0 + t_lo * sw);
                float * dd = d + t_lo;
                const int64_t m = t_hi - t_lo;
                if (sw == 1) {
                    memcpy(dd, src, (size_t)m * sizeof(float));
                } else {
                    int64_t t = 0;
#if defined(__SSE2__)
                    /* stride 2: the even elements of 8 consecutive floats, while all 8
                     * are inside the row */
                    if (sw == 2)
                        for (; t + 4 <= m && ix0 + (t_lo + t) * 2 + 8 <= W; t += 4) {
                            const __m128 a = _mm_loadu_ps(src + 2 * t);
                            const __m128 b = _mm_loadu_ps(src + 2 * t + 4);
                            const __m128 even = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
                            _mm_storeu_ps(dd + t, even);
                        }
#endif
                    for (; t < m; t++)
                        dd[t] = src[t * sw];
                }
            }
            memset(d + t_hi, 0, (size_t)(run - t_hi) * sizeof(float));
            if (in_scale != 0.0f)
                q7_cpu_ops_get()->fq_row(d + t_lo, t_hi - t_lo, in_scale);
        }
        d += run;
        len -= run;
        ox = 0;
        oy++;
    }
}

void q7_cpu_im2col_row(const struct q7_view * x, const struct q7_conv_params * p,
                       int64_t out_w, float in_scale, int64_t n, int64_t g, int64_t k,
                       int64_t p_begin, int64_t p_end, float * dst)
{
    const int64_t taps = (int64_t)p->kh * p->kw;
    const int64_t ci = k / taps, r = k % taps;
    const int64_t cin_g = (int64_t)p->in_ch / p->groups;
    const float * plane = x->data + n * x->batch_stride + (g * cin_g + ci) * x->h * x->w;
    if (p_end > p_begin)
        im2col_span(plane, p, x->h, x->w, out_w, r / p->kw, r % p->kw, p_begin / out_w,
                    p_begin % out_w, p_end - p_begin, in_scale, dst);
}

/* ---- the packed strategy ---- */

/* The order of the reduction: kidx[j] is the index (ci * kh*kw + tap, the weight's own layout
 * within an output channel) of the j-th term. PyTorch 1.13 runs FP32 convolutions on x86
 * through oneDNN's jit:avx2 / jit_1x1:avx2 kernels, which add the terms one FMA at a time:
 * channel blocks of 8, and within a block kernel row, kernel column, then the block's channels
 * (the 1x1 kernel: the channels in order, the same thing). The direct kernel starts from the
 * bias and carries one chain through; the 1x1 kernel sums chunks of 128 channels (the
 * geometry's `chunked`). Following both, q7's outputs equal PyTorch's bit for bit (measured
 * against PyTorch with oneDNN limited to AVX2: tools/refstack). */
static void conv_order(int64_t cin_g, int64_t taps, int32_t * kidx)
{
    int64_t j = 0;
    for (int64_t c0 = 0; c0 < cin_g; c0 += 8) {
        const int64_t c1 = min64(c0 + 8, cin_g);
        for (int64_t t = 0; t < taps; t++)
            for (int64_t c = c0; c < c1; c++)
                kidx[j++] = (int32_t)(c * taps + t);
    }
}

struct packed_job {
    const struct q7_view * x;
    const struct q7_view * y;
    const struct q7_conv_params * p;
    const float * weight;
    const float * bias;
    float in_scale, out_scale;
    int need_epilogue;
    int direct_b; /* 1x1, stride 1, no padding, no fake-quant: B is the input itself */
    const struct q7_cpu_ops * ops;
    struct conv_geom g;
    const int32_t * kidx; /* reduction order (conv_order) */
    float * slots;
    int64_t msplit; /* output-channel ranges per tile */
};

/* Packs im2col rows [k0, k0 + kc) x pixels [p0, p0 + pn) as a row-major block (row stride
 * ldb), zeroing the columns up to the next multiple of NR. One im2col_span call per row: the
 * input is read in long runs. */
static void pack_b(const struct packed_job * job, int64_t n, int64_t grp, int64_t k0,
                   int64_t kc, int64_t p0, int64_t pn, float * dst, int64_t ldb)
{
    const struct conv_geom * g = &job->g;
    const struct q7_conv_params * p = job->p;
    const struct q7_view * x = job->x;
    const int64_t out_w = job->y->w;
    const int64_t pad = ceil_div(pn, g->nr) * g->nr - pn;
    const int64_t hw = x->h * x->w;
    const float * planes = x->data + n * x->batch_stride + grp * g->cin_g * hw;
    const int64_t oy = p0 / out_w, ox = p0 % out_w;
    const int64_t taps = (int64_t)p->kh * p->kw;
    /* Input rows this tile reads, for prefetching the next channel block's while packing
     * one. */
    const int64_t oy_last = (p0 + pn - 1) / out_w;
    int64_t row0 = oy * p->stride_h - p->pad_h;
    int64_t row1 = oy_last * p->stride_h - p->pad_h + (p->kh - 1) * p->dil_h + 1;
    row0 = row0 < 0 ? 0 : row0;
    row1 = row1 > x->h ? x->h : row1;
    for (int64_t kk = 0; kk < kc; kk++, dst += ldb) {
        const int64_t k = job->kidx[k0 + kk];
        const int64_t ci = k / taps, r = k % taps;
        if (r == 0 && ci % 8 == 0 && row1 > row0) {
            const int64_t bytes = (row1 - row0) * x->w * (int64_t)sizeof(float);
            for (int64_t c = ci + 8; c < min64(ci + 16, g->cin_g); c++) {
                const char * next = (const char *)(planes + c * hw + row0 * x->w);
                for (int64_t off = 0; off < bytes; off += 64)
                    __builtin_prefetch(next + off);
            }
        }
        im2col_span(planes + ci * hw, p, x->h, x->w, out_w, r / p->kw, r % p->kw, oy, ox, pn,
                    job->in_scale, dst);
        if (pad)
            memset(dst + pn, 0, (size_t)pad * sizeof(float));
    }
}

/* Direct B: copies the partial last sliver [pa, pa + len) of input rows [k0, k0 + kc) into a
 * kc x NR block, zero-padded. */
static void pack_b_tail(const struct packed_job * job, int64_t n, int64_t grp, int64_t k0,
                        int64_t kc, int64_t pa, int64_t len, float * dst)
{
    const struct conv_geom * g = &job->g;
    const float * src = job->x->data + n * job->x->batch_stride + (grp * g->cin_g + k0) * g->P +
                        pa;
    for (int64_t kk = 0; kk < kc; kk++, src += g->P, dst += g->nr) {
        memcpy(dst, src, (size_t)len * sizeof(float));
        memset(dst + len, 0, (size_t)(g->nr - len) * sizeof(float));
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
    /* Direct B: full slivers are read from the input in place (row stride = its H*W, which
     * equals P here); only a partial last sliver is copied, zero-padded. */
    const int64_t full = job->direct_b ? pn / g->nr : 0;
    const float * xin = job->x->data + n * job->x->batch_stride + grp * g->cin_g * P + p0;

    for (int64_t k0 = 0; k0 < g->K; k0 += g->kc) {
        const int64_t kc = min64(g->kc, g->K - k0);
        const float * b;
        int64_t ldb;
        if (job->direct_b) {
            if (full < slivers)
                pack_b_tail(job, n, grp, k0, kc, p0 + full * g->nr, pn - full * g->nr, bp);
            b = xin + k0 * P;
            ldb = P;
        } else {
            pack_b(job, n, grp, k0, kc, p0, pn, bp, g->ldb);
            b = bp;
            ldb = g->ldb;
        }
        const int last = k0 + kc == g->K;
        const int32_t * kidx = job->kidx + k0;
        const enum q7_gemm_init init = k0 == 0      ? Q7_GEMM_BIAS
                                       : g->chunked ? Q7_GEMM_ADD
                                                    : Q7_GEMM_CONTINUE;
        for (int64_t mb = mb0; mb < mb1; mb++) {
            const int64_t co = grp * g->cout_g + mb * g->mr;
            const float * a = job->weight + co * g->K;
            const float * bias = job->bias ? job->bias + co : NULL;
            const int mr = (int)min64(g->mr, g->cout_g - mb * g->mr);
            float * c = ybase + mb * g->mr * P;
            for (int64_t s = 0; s < slivers; s++) {
                const int nr = (int)min64(g->nr, pn - s * g->nr);
                if (s < full || !job->direct_b)
                    gemm(kc, a, g->K, kidx, b + s * g->nr, ldb, c + s * g->nr, P, mr, nr, bias,
                         init);
                else
                    gemm(kc, a, g->K, kidx, bp, g->nr, c + s * g->nr, P, mr, nr, bias, init);
            }
            if (last && job->need_epilogue) {
                for (int i = 0; i < mr; i++) {
                    if (job->p->act.kind != Q7_ACT_IDENTITY)
                        job->ops->act_row(c + i * P, c + i * P, pn, NULL, job->p->act);
                    if (job->out_scale != 0.0f)
                        job->ops->fq_row(c + i * P, pn, job->out_scale);
                }
            }
        }
    }
}

static void conv2d_packed(const struct q7_view * x, const float * weight, const float * bias,
                          const struct q7_conv_params * p, float in_scale, float out_scale,
                          const struct q7_view * y, void * workspace)
{
    struct packed_job job = {
        .x = x,
        .y = y,
        .p = p,
        .weight = weight,
        .bias = bias,
        .in_scale = in_scale,
        .out_scale = out_scale,
        .need_epilogue = p->act.kind != Q7_ACT_IDENTITY || out_scale != 0.0f,
        .direct_b = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                    p->pad_h == 0 && p->pad_w == 0 && in_scale == 0.0f,
        .ops = q7_cpu_ops_get(),
    };
    if (!conv_geom_init(p, y, job.ops, &job.g))
        return;
    const struct conv_geom * g = &job.g;
    int32_t * kidx = (int32_t *)q7_cpu_align_ptr(workspace);
    conv_order(g->cin_g, (int64_t)p->kh * p->kw, kidx);
    job.kidx = kidx;
    job.slots = (float *)((char *)kidx + g->kidx_bytes);

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

/* Parameters every strategy relies on (graph shape inference guarantees them; a bad call
 * does nothing rather than read out of bounds). */
static int conv_params_ok(const struct q7_view * x, const struct q7_conv_params * p,
                          const struct q7_view * y)
{
    return p->groups > 0 && p->in_ch > 0 && p->out_ch > 0 && p->in_ch % p->groups == 0 &&
           p->out_ch % p->groups == 0 && x->c == p->in_ch && y->c == p->out_ch &&
           x->n == y->n && p->kh > 0 && p->kw > 0 && p->stride_h > 0 && p->stride_w > 0 &&
           p->dil_h > 0 && p->dil_w > 0 && p->pad_h >= 0 && p->pad_w >= 0 && x->h > 0 &&
           x->w > 0 && x->h <= CONV_MAX_SIDE && x->w <= CONV_MAX_SIDE &&
           y->h <= CONV_MAX_SIDE && y->w <= CONV_MAX_SIDE &&
           p->kh <= CONV_MAX_SIDE && p->kw <= CONV_MAX_SIDE &&
           (int64_t)p->kh * p->kw <= INT32_MAX / (p->in_ch / p->groups);
}

/* 0 also when the call cannot run (invalid parameters, sizes that overflow): q7_cpu_conv2d
 * then returns without touching anything. */
size_t q7_cpu_conv2d_workspace(const struct q7_view * x, const struct q7_conv_params * p,
                               const struct q7_view * y)
{
    if (y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0 || !conv_params_ok(x, p, y))
        return 0;
#ifdef Q7_HAVE_OPENBLAS
    if (q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS)
        return q7_cpu_conv2d_blas_workspace(x, p, y);
#endif
    struct conv_geom g;
    if (!conv_geom_init(p, y, q7_cpu_ops_get(), &g))
        return 0;
    return g.bytes;
}

void q7_cpu_conv2d(const struct q7_view * x, const float * weight, const float * bias,
                   const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                   const struct q7_view * y, void * workspace)
{
    if (y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0 || !conv_params_ok(x, p, y))
        return;
    const float in_scale = extra ? extra->in_scale : 0.0f;
    const float out_scale = extra ? extra->out_scale : 0.0f;
#ifdef Q7_HAVE_OPENBLAS
    if (q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS) {
        q7_cpu_conv2d_blas(x, weight, bias, p, extra, y, workspace);
        return;
    }
#endif
    conv2d_packed(x, weight, bias, p, in_scale, out_scale, y, workspace);
}
