/* The executor: liveness-planned buffers, concat in place, CPU kernel dispatch. */
#include "engine/exec.h"

#include "engine/exec_impl.h"

#include <stdlib.h>
#include <string.h>

#define EXEC_ALIGN 64

struct q7_exec_params q7_exec_params_default(void)
{
    struct q7_exec_params p = {.threads = 0, .use_ref = 0};
    return p;
}

static enum q7_status plan(struct q7_exec * e, int64_t n, int64_t h, int64_t w)
{
    if (e->plan.n == n && e->plan.h == h && e->plan.w == w)
        return Q7_OK;
    enum q7_status st = q7_plan_make(&e->plan, n, h, w);
    if (st)
        return st;
    if (e->plan.arena_bytes > e->arena_bytes) {
        free(e->arena);
        e->arena = aligned_alloc(EXEC_ALIGN, e->plan.arena_bytes);
        if (!e->arena) {
            e->arena_bytes = 0;
            e->plan.n = 0;
            return q7_error_set(Q7_ERR_OOM, "executor: cannot allocate %zu bytes of activations",
                                e->plan.arena_bytes);
        }
        e->arena_bytes = e->plan.arena_bytes;
    }
    size_t ws = 0;
    for (int i = 0; i < e->g->n_nodes; i++) {
        const struct q7_node * nd = e->g->nodes[i];
        if (!e->plan.live[i] || nd->op != Q7_OP_CONV2D)
            continue;
        struct q7_view x = q7_exec_view(e, nd->inputs[0]);
        struct q7_view y = q7_exec_view(e, i);
        size_t need = q7_cpu_conv2d_workspace(&x, &nd->p.conv, &y);
        if (need > ws)
            ws = need;
    }
    if (ws > e->ws_bytes) {
        free(e->ws);
        e->ws = aligned_alloc(EXEC_ALIGN, (ws + EXEC_ALIGN - 1) & ~(size_t)(EXEC_ALIGN - 1));
        if (!e->ws) {
            e->ws_bytes = 0;
            e->plan.n = 0;
            return q7_error_set(Q7_ERR_OOM, "executor: cannot allocate %zu bytes of workspace",
                                ws);
        }
        e->ws_bytes = ws;
    }
    return Q7_OK;
}

struct q7_view q7_exec_view(const struct q7_exec * e, int id)
{
    return q7_plan_view(&e->plan, e->arena, id);
}

enum q7_status q7_exec_create(struct q7_graph * g, const struct q7_exec_params * p,
                              struct q7_exec ** out)
{
    *out = NULL;
    if (g->output < 0 || g->input < 0)
        return q7_error_set(Q7_ERR_ARG, "executor: graph has no input or output");
    struct q7_exec * e = calloc(1, sizeof *e);
    if (!e)
        return q7_error_set(Q7_ERR_OOM, "executor: out of memory");
    e->g = g;
    e->params = p ? *p : q7_exec_params_default();
    int n = g->n_nodes;
    enum q7_status st = q7_plan_init(&e->plan, g);
    if (st) {
        free(e);
        return st;
    }
    e->seconds = calloc((size_t)n, sizeof *e->seconds);
    e->qweights = calloc((size_t)n, sizeof *e->qweights);
    e->in_scale = calloc((size_t)n, sizeof *e->in_scale);
    e->out_scale = calloc((size_t)n, sizeof *e->out_scale);
    e->in_on = calloc((size_t)n, 1);
    e->in_ready = calloc((size_t)n, 1);
    if (!e->in_scale || !e->out_scale || !e->in_on || !e->in_ready || !e->seconds ||
        !e->qweights) {
        q7_exec_free(e);
        return q7_error_set(Q7_ERR_OOM, "executor: out of memory");
    }
    q7_cpu_set_threads(e->params.threads);
    st = q7_exec_refresh_weights(e);
    if (st) {
        q7_exec_free(e);
        return st;
    }
    *out = e;
    return Q7_OK;
}

void q7_exec_free(struct q7_exec * e)
{
    if (!e)
        return;
    if (e->qweights)
        for (int i = 0; i < e->g->n_nodes; i++)
            free(e->qweights[i]);
    free(e->qweights);
    free(e->in_scale);
    free(e->out_scale);
    free(e->in_on);
    free(e->in_ready);
    free(e->qin);
    q7_plan_free(&e->plan);
    free(e->seconds);
    free(e->arena);
    free(e->ws);
    free(e);
}

void q7_exec_set_hook(struct q7_exec * e, q7_exec_hook hook, void * user)
{
    e->hook = hook;
    e->hook_user = user;
}

enum q7_status q7_exec_output_rows(struct q7_exec * e, int64_t n, int64_t h, int64_t w,
                                   int64_t * rows, int64_t * no)
{
    enum q7_status st = plan(e, n, h, w);
    if (st)
        return st;
    const struct q7_node * d = e->g->nodes[e->g->output];
    *rows = d->out.shape[1];
    *no = d->out.shape[2];
    return Q7_OK;
}

/* Runs the nodes after the input (in: the input node's view, filled). */
static enum q7_status run_planned(struct q7_exec * e, const struct q7_view * in, float * out)
{
    struct q7_graph * g = e->g;
    if (e->hook)
        e->hook(e->hook_user, g->nodes[g->input], in);
    else if (e->out_scale[g->input] != 0.0f) /* every reader quantizes it: do it once */
        q7_cpu_fake_quant_copy(in, e->out_scale[g->input], in);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        e->seconds[i] = 0.0;
        if (!e->plan.live[i] || nd->op == Q7_OP_INPUT)
            continue;
        double t0 = q7_time_now();
        enum q7_status st = q7_exec_node_cpu(e, i, out);
        if (st)
            return st;
        e->seconds[i] = q7_time_now() - t0;
        if (e->hook && nd->op != Q7_OP_DETECT) {
            struct q7_view v = q7_exec_view(e, i);
            e->hook(e->hook_user, nd, &v);
        }
    }
    return Q7_OK;
}

enum q7_status q7_exec_run(struct q7_exec * e, const float * x, int64_t n, int64_t h, int64_t w,
                           float * out)
{
    enum q7_status st = plan(e, n, h, w);
    if (st)
        return st;
    struct q7_view in = q7_exec_view(e, e->g->input);
    memcpy(in.data, x, (size_t)(n * 3 * h * w) * sizeof(float));
    return run_planned(e, &in, out);
}

enum q7_status q7_exec_run_u8(struct q7_exec * e, const uint8_t * x, int64_t n, int64_t h,
                              int64_t w, float * out)
{
    enum q7_status st = plan(e, n, h, w);
    if (st)
        return st;
    struct q7_view in = q7_exec_view(e, e->g->input);
    int64_t total = n * 3 * h * w;
    for (int64_t i = 0; i < total; i++)
        in.data[i] = (float)x[i] / 255.0f;
    return run_planned(e, &in, out);
}

size_t q7_exec_peak_bytes(const struct q7_exec * e)
{
    return e->plan.arena_bytes + e->ws_bytes;
}

size_t q7_exec_arena_bytes(const struct q7_exec * e)
{
    return e->plan.arena_bytes;
}

size_t q7_exec_naive_bytes(const struct q7_exec * e)
{
    return e->plan.naive_bytes;
}

const double * q7_exec_node_seconds(const struct q7_exec * e)
{
    return e->seconds;
}

int q7_exec_node_live(const struct q7_exec * e, int id)
{
    return id >= 0 && id < e->g->n_nodes && e->plan.live[id];
}
