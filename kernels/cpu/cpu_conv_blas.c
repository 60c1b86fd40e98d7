/* Convolution through OpenBLAS (the "blas" strategy of cpu_conv.c):
 *   - 1x1 stride-1 unpadded convs without input fake-quant multiply the input directly
 *     (B = the input's channel planes, ldb = H*W: a channel-sliced view works as is);
 *   - otherwise im2col tiles are written into the workspace, at most
 *     Q7_CONV_BLAS_BUDGET bytes at a time (tiles of output pixels when one image's im2col is
 *     bigger than that), then multiplied;
 *   - the GEMMs write straight into y (ldc = H*W of the output) and the epilogue (bias +
 *     activation) runs over each block right after its GEMM, while it is in cache.
 * All parallelism is the q7 pool's: each task runs a single-threaded sgemm on one block of
 * output channels x pixels (OpenBLAS is set to one thread, see cpu_threads.c). */
#include "kernels/cpu/cpu_impl.h"

#ifdef Q7_HAVE_OPENBLAS

#include <cblas.h>
#include <limits.h>

#define Q7_CONV_BLAS_BUDGET ((int64_t)64 << 20) /* bytes of im2col held at once */
#define BLAS_MIN_COLS 256   /* fewest pixels in a tile / a GEMM block */
#define BLAS_MIN_ROWS 32    /* fewest output channels in a GEMM block */
#define BLAS_IM2COL_ROWS 16 /* im2col rows per packing task */

struct blas_geom {
    int64_t batch, groups, cin_g, cout_g, K, P;
    int64_t nc;          /* pixels per unit */
    int64_t tiles;       /* units per (image, group) */
    int64_t units;       /* batch * groups * tiles */
    int64_t unit_floats; /* K * nc */
    int64_t chunk_units; /* units whose im2col the workspace holds at once */
};

static void blas_geom_init(const struct q7_view * x, const struct q7_conv_params * p,
                           const struct q7_view * y, struct blas_geom * g)
{
    g->batch = y->n;
    g->groups = p->groups;
    g->cin_g = (int64_t)p->in_ch / p->groups;
    g->cout_g = (int64_t)p->out_ch / p->groups;
    g->K = g->cin_g * p->kh * p->kw;
    g->P = y->h * y->w;
    int64_t cols = Q7_CONV_BLAS_BUDGET / (int64_t)sizeof(float) / g->K;
    if (cols < BLAS_MIN_COLS)
        cols = BLAS_MIN_COLS;
    g->nc = min64(g->P, cols);
    g->tiles = ceil_div(g->P, g->nc);
    g->units = g->batch * g->groups * g->tiles;
    g->unit_floats = g->K * g->nc;
    int64_t fit = Q7_CONV_BLAS_BUDGET / (int64_t)sizeof(float) / g->unit_floats;
    g->chunk_units = fit < 1 ? 1 : min64(fit, g->units);
}

/* Sizes OpenBLAS' int arguments can carry. */
static int blas_fits(const struct blas_geom * g)
{
    return g->K <= INT_MAX && g->P <= INT_MAX && g->cout_g <= INT_MAX;
}

/* 0 when the sizes overflow or exceed OpenBLAS' int arguments (the conv then does nothing). */
size_t q7_cpu_conv2d_blas_workspace(const struct q7_view * x, const struct q7_conv_params * p,
                                    const struct q7_view * y)
{
    struct blas_geom g;
    blas_geom_init(x, p, y, &g);
    size_t bytes;
    /* Worst case: the input fake-quant is not known here, so even 1x1 convs get room for a
     * (quantized) copy of their input. */
    if (!blas_fits(&g) || !q7_size_mul((size_t)g.chunk_units, (size_t)g.unit_floats, &bytes) ||
        !q7_size_mul(bytes, sizeof(float), &bytes) || !q7_size_add(bytes, Q7_CPU_ALIGN, &bytes))
        return 0;
    return bytes;
}

struct blas_job {
    const struct q7_view * x;
    const struct q7_view * y;
    const struct q7_conv_params * p;
    const float * weight;
    const float * bias;
    float in_scale, out_scale;
    int direct; /* B is the input itself */
    const struct q7_cpu_ops * ops;
    struct blas_geom g;
    float * cols;   /* im2col of the current chunk */
    int64_t u0;     /* first unit of the chunk */
    int64_t kparts; /* im2col tasks per unit */
    int64_t ms, ns; /* GEMM blocks per unit: output-channel ranges x pixel ranges */
};

struct unit {
    int64_t n, grp, p0, pn;
};

static struct unit unit_of(const struct blas_geom * g, int64_t u)
{
    struct unit r;
    const int64_t tile = u % g->tiles;
    u /= g->tiles;
    r.grp = u % g->groups;
    r.n = u / g->groups;
    r.p0 = tile * g->nc;
    r.pn = min64(g->nc, g->P - r.p0);
    return r;
}

static void im2col_task(void * ctx, int64_t t, int thread)
{
    const struct blas_job * job = ctx;
    const struct blas_geom * g = &job->g;
    const int64_t cu = t / job->kparts, part = t % job->kparts;
    const struct unit un = unit_of(g, job->u0 + cu);
    float * base = job->cols + cu * g->unit_floats;
    const int64_t k_end = min64(g->K, (part + 1) * BLAS_IM2COL_ROWS);
    for (int64_t k = part * BLAS_IM2COL_ROWS; k < k_end; k++)
        q7_cpu_im2col_row(job->x, job->p, job->y->w, job->in_scale, un.n, un.grp, k, un.p0,
                          un.p0 + un.pn, base + k * un.pn);
    (void)thread;
}

static void gemm_task(void * ctx, int64_t t, int thread)
{
    const struct blas_job * job = ctx;
    const struct blas_geom * g = &job->g;
    const int64_t per_unit = job->ms * job->ns;
    const int64_t cu = t / per_unit;
    const int64_t mi = (t % per_unit) / job->ns, ni = t % job->ns;
    const struct unit un = unit_of(g, job->u0 + cu);

    const int64_t m0 = mi * g->cout_g / job->ms, m1 = (mi + 1) * g->cout_g / job->ms;
    const int64_t c0 = ni * un.pn / job->ns, c1 = (ni + 1) * un.pn / job->ns;
    if (m1 <= m0 || c1 <= c0)
        return;
    const float * b;
    int64_t ldb;
    if (job->direct) {
        b = job->x->data + un.n * job->x->batch_stride + un.grp * g->cin_g * g->P + un.p0;
        ldb = g->P;
    } else {
        b = job->cols + cu * g->unit_floats;
        ldb = un.pn;
    }
    const float * a = job->weight + (un.grp * g->cout_g + m0) * g->K;
    float * c = job->y->data + un.n * job->y->batch_stride + (un.grp * g->cout_g + m0) * g->P +
                un.p0 + c0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(m1 - m0), (int)(c1 - c0),
                (int)g->K, 1.0f, a, (int)g->K, b + c0, (int)ldb, 0.0f, c, (int)g->P);
    if (job->bias || job->p->act.kind != Q7_ACT_IDENTITY || job->out_scale != 0.0f) {
        for (int64_t m = m0; m < m1; m++) {
            float * row = c + (m - m0) * g->P;
            const float * bias = job->bias ? job->bias + un.grp * g->cout_g + m : NULL;
            job->ops->act_row(row, row, c1 - c0, bias, job->p->act);
            if (job->out_scale != 0.0f)
                job->ops->fq_row(row, c1 - c0, job->out_scale);
        }
    }
    (void)thread;
}

void q7_cpu_conv2d_blas(const struct q7_view * x, const float * weight, const float * bias,
                        const struct q7_conv_params * p, const struct q7_conv_extra * extra,
                        const struct q7_view * y, void * workspace)
{
    struct blas_job job = {
        .x = x,
        .y = y,
        .p = p,
        .weight = weight,
        .bias = bias,
        .in_scale = extra ? extra->in_scale : 0.0f,
        .out_scale = extra ? extra->out_scale : 0.0f,
        .ops = q7_cpu_ops_get(),
        .cols = q7_cpu_align_ptr(workspace),
    };
    if (q7_cpu_conv2d_blas_workspace(x, p, y) == 0)
        return;
    blas_geom_init(x, p, y, &job.g);
    const struct blas_geom * g = &job.g;
    job.direct = p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                 p->pad_h == 0 && p->pad_w == 0 && job.in_scale == 0.0f;
    job.kparts = ceil_div(g->K, BLAS_IM2COL_ROWS);

    const int64_t threads = q7_cpu_threads();
    for (job.u0 = 0; job.u0 < g->units; job.u0 += g->chunk_units) {
        const int64_t cu = min64(g->chunk_units, g->units - job.u0);
        if (!job.direct)
            q7_cpu_parallel(cu * job.kparts, im2col_task, &job);
        /* About 3 GEMM blocks per thread, none smaller than BLAS_MIN_ROWS x BLAS_MIN_COLS.
         * Split pixels first: every block packs its own copy of its B columns and of its A
         * rows, and B (K x pixels) is usually the bigger one. */
        const int64_t need = ceil_div(3 * threads, cu);
        job.ns = min64(need, g->nc / BLAS_MIN_COLS);
        if (job.ns < 1)
            job.ns = 1;
        job.ms = min64(ceil_div(need, job.ns), g->cout_g / BLAS_MIN_ROWS);
        if (job.ms < 1)
            job.ms = 1;
        q7_cpu_parallel(cu * job.ms * job.ns, gemm_task, &job);
    }
}

#else

/* Built without OpenBLAS: cpu_conv.c never selects this strategy. */
typedef int q7_cpu_conv_blas_absent;

#endif
