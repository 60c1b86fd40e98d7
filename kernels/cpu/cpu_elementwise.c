/* Optimized element-wise kernels: activation, n-ary add, batchnorm, copy.
 *
 * Within one image a view's c*h*w elements are contiguous (channel stride h*w), so every op
 * here works on per-image contiguous ranges, cut into tasks of at least ELEM_TASK_MIN
 * elements for the pool.
 *
 * Aliasing: y may be the same view as x (act, batchnorm, copy) or as any input of add: each
 * output element is computed from the inputs at the same position before it is stored.
 * Partial overlaps are not allowed. Results equal the reference bit for bit except the
 * activation's exp on x86 (SLEEF's expf_u10 as in PyTorch, or without SLEEF q7's vector
 * polynomial, within ~2 ulp of the reference's expf). */
#include "kernels/cpu/cpu_impl.h"

#include <math.h>
#include <string.h>

#define ELEM_TASK_MIN (16 * 1024) /* elements per task, at least */
#define ADD_BLOCK 1024            /* elements summed at a time for 3+ inputs */

/* Per-image contiguous ranges [begin, end) split into tasks. */
struct range_job {
    int64_t per_image; /* elements per image */
    int64_t parts;     /* tasks per image */
    void (*body)(void * ctx, int64_t n, int64_t begin, int64_t end);
    void * ctx;
};

static void range_task(void * ctx, int64_t t, int thread)
{
    const struct range_job * rj = ctx;
    const int64_t n = t / rj->parts, part = t % rj->parts;
    const int64_t begin = part * rj->per_image / rj->parts;
    const int64_t end = (part + 1) * rj->per_image / rj->parts;
    if (end > begin)
        rj->body(rj->ctx, n, begin, end);
    (void)thread;
}

static void run_ranges(int64_t batch, int64_t per_image,
                       void (*body)(void * ctx, int64_t n, int64_t begin, int64_t end),
                       void * ctx)
{
    if (batch <= 0 || per_image <= 0)
        return;
    struct range_job rj = {.per_image = per_image, .body = body, .ctx = ctx};
    int64_t total = q7_cpu_split(batch * per_image, ELEM_TASK_MIN);
    rj.parts = (total + batch - 1) / batch;
    if (rj.parts > per_image)
        rj.parts = per_image;
    q7_cpu_parallel(batch * rj.parts, range_task, &rj);
}

static int64_t numel_image(const struct q7_view * v)
{
    return v->c * v->h * v->w;
}

/* ---- activation ---- */

struct act_ctx {
    const struct q7_view * x;
    const struct q7_view * y;
    struct q7_act_params act;
    q7_cpu_act_row_fn act_row;
};

static void act_body(void * ctx, int64_t n, int64_t begin, int64_t end)
{
    const struct act_ctx * a = ctx;
    a->act_row(a->y->data + n * a->y->batch_stride + begin,
               a->x->data + n * a->x->batch_stride + begin, end - begin, NULL, a->act);
}

void q7_cpu_act(const struct q7_view * x, struct q7_act_params act, const struct q7_view * y)
{
    if (act.kind == Q7_ACT_IDENTITY) {
        q7_cpu_copy(x, y);
        return;
    }
    struct act_ctx a = {.x = x, .y = y, .act = act, .act_row = q7_cpu_ops_get()->act_row};
    run_ranges(x->n, numel_image(x), act_body, &a);
}

/* ---- add ---- */

struct add_ctx {
    const struct q7_view * const * xs;
    int n_inputs;
    const struct q7_view * y;
};

static void add_body(void * ctx, int64_t n, int64_t begin, int64_t end)
{
    const struct add_ctx * a = ctx;
    float * dst = a->y->data + n * a->y->batch_stride;
    const float * x0 = a->xs[0]->data + n * a->xs[0]->batch_stride;
    const float * x1 = a->xs[1]->data + n * a->xs[1]->batch_stride;
    if (a->n_inputs == 2) {
        for (int64_t i = begin; i < end; i++)
            dst[i] = x0[i] + x1[i];
        return;
    }
    /* Sum a block fully before storing it: y may be any of the inputs. */
    float acc[ADD_BLOCK];
    for (int64_t b0 = begin; b0 < end; b0 += ADD_BLOCK) {
        const int64_t m = end - b0 < ADD_BLOCK ? end - b0 : ADD_BLOCK;
        for (int64_t i = 0; i < m; i++)
            acc[i] = x0[b0 + i] + x1[b0 + i];
        for (int k = 2; k < a->n_inputs; k++) {
            const float * xk = a->xs[k]->data + n * a->xs[k]->batch_stride + b0;
            for (int64_t i = 0; i < m; i++)
                acc[i] += xk[i];
        }
        memcpy(dst + b0, acc, (size_t)m * sizeof(float));
    }
}

void q7_cpu_add(const struct q7_view * const * xs, int n_inputs, const struct q7_view * y)
{
    if (n_inputs < 2) {
        if (n_inputs == 1)
            q7_cpu_copy(xs[0], y);
        return;
    }
    struct add_ctx a = {.xs = xs, .n_inputs = n_inputs, .y = y};
    run_ranges(y->n, numel_image(y), add_body, &a);
}

/* ---- batchnorm ---- */

struct bn_ctx {
    const struct q7_view * x;
    const struct q7_view * y;
    const float * gamma;
    const float * beta;
    const float * mean;
    const float * var;
    float eps;
};

/* dst[j] = fma(src[j], alpha, shift): FMA instructions where the CPU has them, else the
 * library's fmaf (same values, slower). */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void bn_row_fma(float * dst, const float * src,
                                                           int64_t n, float alpha, float shift)
{
    for (int64_t j = 0; j < n; j++)
        dst[j] = __builtin_fmaf(src[j], alpha, shift);
}
#endif

static void bn_row(float * dst, const float * src, int64_t n, float alpha, float shift)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (q7_cpu_ops_get()->isa != Q7_CPU_ISA_GENERIC) {
        bn_row_fma(dst, src, n, alpha, shift);
        return;
    }
#endif
    for (int64_t j = 0; j < n; j++)
        dst[j] = fmaf(src[j], alpha, shift);
}

/* The per-channel terms exactly as q7_ref_batchnorm (PyTorch's CPU kernel) computes them. */
static void bn_body(void * ctx, int64_t n, int64_t begin, int64_t end)
{
    const struct bn_ctx * b = ctx;
    const int64_t hw = b->x->h * b->x->w;
    const float * src = b->x->data + n * b->x->batch_stride;
    float * dst = b->y->data + n * b->y->batch_stride;
    for (int64_t i = begin; i < end;) {
        const int64_t c = i / hw;
        const int64_t stop = (c + 1) * hw < end ? (c + 1) * hw : end;
        const float invstd = 1.0f / sqrtf(b->var[c] + b->eps);
        const float alpha = invstd * (b->gamma ? b->gamma[c] : 1.0f);
        const float shift = fmaf(-b->mean[c], alpha, b->beta ? b->beta[c] : 0.0f);
        bn_row(dst + i, src + i, stop - i, alpha, shift);
        i = stop;
    }
}

void q7_cpu_batchnorm(const struct q7_view * x, const float * gamma, const float * beta,
                      const float * mean, const float * var, double eps,
                      const struct q7_view * y)
{
    struct bn_ctx b = {.x = x,
                       .y = y,
                       .gamma = gamma,
                       .beta = beta,
                       .mean = mean,
                       .var = var,
                       .eps = (float)eps};
    run_ranges(x->n, numel_image(x), bn_body, &b);
}

/* ---- copy ---- */

struct copy_ctx {
    const struct q7_view * x;
    const struct q7_view * y;
};

static void copy_body(void * ctx, int64_t n, int64_t begin, int64_t end)
{
    const struct copy_ctx * c = ctx;
    memcpy(c->y->data + n * c->y->batch_stride + begin,
           c->x->data + n * c->x->batch_stride + begin, (size_t)(end - begin) * sizeof(float));
}

void q7_cpu_copy(const struct q7_view * x, const struct q7_view * y)
{
    if (x->data == y->data && x->batch_stride == y->batch_stride)
        return;
    struct copy_ctx c = {.x = x, .y = y};
    run_ranges(x->n, numel_image(x), copy_body, &c);
}
