/* Optimized max pooling and nearest upsampling, parallel over (image, channel) planes.
 *
 * Max pooling is separable (the max of a window is the max over its rows of the max over
 * its columns), so each output row first takes the column-wise max of its kh input rows
 * into a padded row buffer (-inf outside the input, as PyTorch pads) and then slides the kw
 * window along it: kh + kw comparisons per output instead of kh * kw, which is what the
 * 5/9/13 stride-1 SPP pools need. NaN wins like in the reference. Results equal the
 * reference exactly. x and y must not overlap. */
#include "kernels/cpu/cpu_impl.h"

#include <math.h>
#include <string.h>

#define POOL_ROW_MAX 8192          /* padded row buffer on the stack (floats) */
#define PLANE_TASK_MIN (16 * 1024) /* output elements per task, at least */

/* Planes [0, n*c) split into tasks of whole planes. */
struct plane_job {
    int64_t planes, parts;
    void (*body)(void * ctx, int64_t plane);
    void * ctx;
};

static void plane_task(void * ctx, int64_t t, int thread)
{
    const struct plane_job * pj = ctx;
    const int64_t begin = t * pj->planes / pj->parts;
    const int64_t end = (t + 1) * pj->planes / pj->parts;
    for (int64_t i = begin; i < end; i++)
        pj->body(pj->ctx, i);
    (void)thread;
}

static void run_planes(int64_t planes, int64_t plane_elems,
                       void (*body)(void * ctx, int64_t plane), void * ctx)
{
    if (planes <= 0 || plane_elems <= 0)
        return;
    const int64_t min_planes = (PLANE_TASK_MIN + plane_elems - 1) / plane_elems;
    struct plane_job pj = {.planes = planes, .body = body, .ctx = ctx};
    pj.parts = q7_cpu_split(planes, min_planes);
    q7_cpu_parallel(pj.parts, plane_task, &pj);
}

/* ---- max pooling ---- */

struct pool_ctx {
    const struct q7_view * x;
    const struct q7_view * y;
    const struct q7_pool_params * p;
    int64_t span; /* padded row length: (out_w - 1) * stride_w + kw */
};

static inline float max_nan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

/* Window by window, for rows too long for the stack buffer. */
static void pool_plane_direct(const struct pool_ctx * pc, const float * src, float * dst)
{
    const struct q7_pool_params * p = pc->p;
    const int64_t H = pc->x->h, W = pc->x->w;
    for (int64_t oy = 0; oy < pc->y->h; oy++)
        for (int64_t ox = 0; ox < pc->y->w; ox++) {
            float m = -INFINITY;
            for (int64_t ky = 0; ky < p->kh; ky++) {
                const int64_t iy = oy * p->stride_h - p->pad_h + ky;
                if (iy < 0 || iy >= H)
                    continue;
                for (int64_t kx = 0; kx < p->kw; kx++) {
                    const int64_t ix = ox * p->stride_w - p->pad_w + kx;
                    if (ix >= 0 && ix < W)
                        m = max_nan(m, src[iy * W + ix]);
                }
            }
            dst[oy * pc->y->w + ox] = m;
        }
}

static void pool_plane(void * ctx, int64_t plane)
{
    const struct pool_ctx * pc = ctx;
    const struct q7_pool_params * p = pc->p;
    const int64_t n = plane / pc->y->c, c = plane % pc->y->c;
    const int64_t H = pc->x->h, W = pc->x->w, OW = pc->y->w;
    const float * src = pc->x->data + n * pc->x->batch_stride + c * H * W;
    float * dst = pc->y->data + n * pc->y->batch_stride + c * pc->y->h * OW;
    if (pc->span > POOL_ROW_MAX) {
        pool_plane_direct(pc, src, dst);
        return;
    }
    /* row[j] holds input column j - pad_w (j in [0, span)); outside the input: -inf */
    float row[POOL_ROW_MAX];
    const int64_t lo = p->pad_w < pc->span ? p->pad_w : pc->span; /* first input column */
    int64_t hi = p->pad_w + W < pc->span ? p->pad_w + W : pc->span;
    if (hi < lo)
        hi = lo;
    for (int64_t j = 0; j < lo; j++)
        row[j] = -INFINITY;
    for (int64_t j = hi; j < pc->span; j++)
        row[j] = -INFINITY;
    for (int64_t oy = 0; oy < pc->y->h; oy++) {
        int64_t y0 = oy * p->stride_h - p->pad_h, y1 = y0 + p->kh;
        y0 = y0 < 0 ? 0 : y0;
        y1 = y1 > H ? H : y1;
        float * r = row + lo;
        const int64_t len = hi - lo;
        if (y0 >= y1) {
            for (int64_t j = 0; j < len; j++)
                r[j] = -INFINITY;
        } else {
            memcpy(r, src + y0 * W, (size_t)len * sizeof(float));
            for (int64_t iy = y0 + 1; iy < y1; iy++) {
                const float * s = src + iy * W;
                for (int64_t j = 0; j < len; j++)
                    r[j] = max_nan(r[j], s[j]);
            }
        }
        float * out = dst + oy * OW;
        const int64_t sw = p->stride_w;
        if (sw == 1) {
            memcpy(out, row, (size_t)OW * sizeof(float));
            for (int64_t kx = 1; kx < p->kw; kx++)
                for (int64_t ox = 0; ox < OW; ox++)
                    out[ox] = max_nan(out[ox], row[ox + kx]);
        } else {
            for (int64_t ox = 0; ox < OW; ox++) {
                const float * w = row + ox * sw;
                float m = w[0];
                for (int64_t kx = 1; kx < p->kw; kx++)
                    m = max_nan(m, w[kx]);
                out[ox] = m;
            }
        }
    }
}

void q7_cpu_maxpool(const struct q7_view * x, const struct q7_pool_params * p,
                    const struct q7_view * y)
{
    if (y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0 || p->kh <= 0 || p->kw <= 0)
        return;
    struct pool_ctx pc = {.x = x, .y = y, .p = p};
    pc.span = (y->w - 1) * p->stride_w + p->kw;
    run_planes(y->n * y->c, y->h * y->w, pool_plane, &pc);
}

/* ---- nearest upsampling ---- */

struct upsample_ctx {
    const struct q7_view * x;
    const struct q7_view * y;
    int64_t scale;
};

/* Each input row is widened once into the first of its output rows, then copied. */
static void upsample_plane(void * ctx, int64_t plane)
{
    const struct upsample_ctx * u = ctx;
    const int64_t n = plane / u->y->c, c = plane % u->y->c;
    const int64_t W = u->x->w, OH = u->y->h, OW = u->y->w, s = u->scale;
    const float * src = u->x->data + n * u->x->batch_stride + c * u->x->h * W;
    float * dst = u->y->data + n * u->y->batch_stride + c * OH * OW;
    for (int64_t oy = 0; oy < OH; oy++) {
        float * out = dst + oy * OW;
        if (oy % s != 0) {
            memcpy(out, out - OW, (size_t)OW * sizeof(float));
            continue;
        }
        const float * in = src + (oy / s) * W;
        if (s == 2) {
            for (int64_t ox = 0; ox < OW; ox++)
                out[ox] = in[ox >> 1];
        } else {
            for (int64_t ox = 0; ox < OW; ox++)
                out[ox] = in[ox / s];
        }
    }
}

void q7_cpu_upsample_nearest(const struct q7_view * x, int scale, const struct q7_view * y)
{
    if (scale <= 0 || y->n <= 0 || y->c <= 0 || y->h <= 0 || y->w <= 0)
        return;
    struct upsample_ctx u = {.x = x, .y = y, .scale = scale};
    run_planes(y->n * y->c, y->h * y->w, upsample_plane, &u);
}
