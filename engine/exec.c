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

static size_t align_up(size_t x)
{
    return (x + EXEC_ALIGN - 1) & ~(size_t)(EXEC_ALIGN - 1);
}

/* Marks nodes that reach the output. */
static void mark_live(struct q7_exec * e)
{
    struct q7_graph * g = e->g;
    memset(e->live, 0, (size_t)g->n_nodes);
    if (g->output >= 0)
        e->live[g->output] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const struct q7_node * nd = g->nodes[i];
        if (!e->live[i] || nd->dead)
            continue;
        for (int k = 0; k < nd->n_inputs; k++)
            e->live[nd->inputs[k]] = 1;
    }
}

/* A node may write straight into a slice of a concat buffer when it makes a fresh output. */
static int can_alias(const struct q7_node * nd)
{
    return nd->op != Q7_OP_INPUT && nd->op != Q7_OP_DETECT;
}

/* Assigns each live node a root buffer and a channel offset inside it. */
static void assign_roots(struct q7_exec * e)
{
    struct q7_graph * g = e->g;
    int n = g->n_nodes;
    for (int i = 0; i < n; i++) {
        e->slot[i].root = i;
        e->slot[i].ch_off = 0;
        e->slot[i].aliased = 0;
    }
    /* outer concats first, so that an inner concat aliased into an outer one passes the
     * outer buffer on to its own inputs */
    for (int i = n - 1; i >= 0; i--) {
        const struct q7_node * c = g->nodes[i];
        if (!e->live[i] || c->op != Q7_OP_CONCAT)
            continue;
        int64_t off = 0;
        for (int k = 0; k < c->n_inputs; k++) {
            int p = c->inputs[k];
            const struct q7_node * pn = g->nodes[p];
            int dup = 0;
            for (int j = 0; j < c->n_inputs; j++)
                dup += c->inputs[j] == p;
            if (can_alias(pn) && dup == 1 && !e->slot[p].aliased) {
                e->slot[p].root = e->slot[i].root;
                e->slot[p].ch_off = e->slot[i].ch_off + off;
                e->slot[p].aliased = 1;
            }
            off += pn->out.shape[1];
        }
    }
}

/* Greedy placement of buffers (largest first) at the lowest offset free during their life. */
static enum q7_status place_buffers(struct q7_exec * e)
{
    struct q7_graph * g = e->g;
    int n = g->n_nodes;
    /* life of each root: first definition to last use of any node living in it */
    for (int i = 0; i < n; i++) {
        e->buf[i].first = n;
        e->buf[i].last = -1;
        e->buf[i].bytes = 0;
    }
    for (int i = 0; i < n; i++) {
        if (!e->live[i])
            continue;
        int r = e->slot[i].root;
        if (i < e->buf[r].first)
            e->buf[r].first = i;
        if (i > e->buf[r].last)
            e->buf[r].last = i;
        const struct q7_node * nd = g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int rr = e->slot[nd->inputs[k]].root;
            if (i > e->buf[rr].last)
                e->buf[rr].last = i;
        }
    }
    e->naive_bytes = 0;
    int nb = 0;
    for (int i = 0; i < n; i++) {
        if (!e->live[i] || e->slot[i].root != i || g->nodes[i]->op == Q7_OP_DETECT)
            continue;
        size_t bytes = align_up((size_t)q7_tensor_numel(&g->nodes[i]->out) * sizeof(float));
        e->buf[i].bytes = bytes;
        e->order[nb++] = i;
    }
    for (int i = 0; i < n; i++)
        if (e->live[i] && g->nodes[i]->op != Q7_OP_DETECT)
            e->naive_bytes += (size_t)q7_tensor_numel(&g->nodes[i]->out) * sizeof(float);
    /* sort by size, descending (insertion sort: a few hundred buffers) */
    for (int a = 1; a < nb; a++) {
        int v = e->order[a], b = a - 1;
        while (b >= 0 && e->buf[e->order[b]].bytes < e->buf[v].bytes) {
            e->order[b + 1] = e->order[b];
            b--;
        }
        e->order[b + 1] = v;
    }
    size_t peak = 0;
    for (int a = 0; a < nb; a++) {
        struct exec_buffer * bu = &e->buf[e->order[a]];
        size_t off = 0;
        int moved = 1;
        while (moved) { /* first fit among placed buffers whose lives overlap */
            moved = 0;
            for (int c = 0; c < a; c++) {
                const struct exec_buffer * o = &e->buf[e->order[c]];
                int overlap_t = !(o->last < bu->first || bu->last < o->first);
                int overlap_m = off < o->offset + o->bytes && o->offset < off + bu->bytes;
                if (overlap_t && overlap_m) {
                    off = o->offset + o->bytes;
                    moved = 1;
                }
            }
        }
        bu->offset = off;
        if (off + bu->bytes > peak)
            peak = off + bu->bytes;
    }
    if (peak > e->arena_bytes) {
        free(e->arena);
        e->arena = aligned_alloc(EXEC_ALIGN, peak);
        if (!e->arena) {
            e->arena_bytes = 0;
            return q7_error_set(Q7_ERR_OOM, "executor: cannot allocate %zu bytes of activations",
                                peak);
        }
        e->arena_bytes = peak;
    }
    e->peak_bytes = peak;
    return Q7_OK;
}

static enum q7_status plan(struct q7_exec * e, int64_t n, int64_t h, int64_t w)
{
    if (e->planned && e->plan_n == n && e->plan_h == h && e->plan_w == w)
        return Q7_OK;
    enum q7_status st = q7_graph_infer_shapes(e->g, n, h, w);
    if (st)
        return st;
    assign_roots(e);
    if ((st = place_buffers(e)))
        return st;
    size_t ws = 0;
    for (int i = 0; i < e->g->n_nodes; i++) {
        const struct q7_node * nd = e->g->nodes[i];
        if (!e->live[i] || nd->op != Q7_OP_CONV2D)
            continue;
        struct q7_view x = q7_exec_view(e, nd->inputs[0]);
        struct q7_view y = q7_exec_view(e, i);
        size_t need = q7_cpu_conv2d_workspace(&x, &nd->p.conv, &y);
        if (need > ws)
            ws = need;
    }
    if (ws > e->ws_bytes) {
        free(e->ws);
        e->ws = aligned_alloc(EXEC_ALIGN, align_up(ws));
        if (!e->ws) {
            e->ws_bytes = 0;
            return q7_error_set(Q7_ERR_OOM, "executor: cannot allocate %zu bytes of workspace",
                                ws);
        }
        e->ws_bytes = ws;
    }
    e->planned = 1;
    e->plan_n = n;
    e->plan_h = h;
    e->plan_w = w;
    return Q7_OK;
}

struct q7_view q7_exec_view(const struct q7_exec * e, int id)
{
    const struct q7_node * nd = e->g->nodes[id];
    const struct exec_slot * s = &e->slot[id];
    const struct exec_buffer * b = &e->buf[s->root];
    const struct q7_node * rn = e->g->nodes[s->root];
    int64_t hw = nd->out.shape[2] * nd->out.shape[3];
    struct q7_view v = {
        .data = (float *)(void *)(e->arena + b->offset) + s->ch_off * hw,
        .n = nd->out.shape[0],
        .c = nd->out.shape[1],
        .h = nd->out.shape[2],
        .w = nd->out.shape[3],
        .batch_stride = rn->out.shape[1] * hw,
    };
    return v;
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
    e->live = calloc((size_t)n, 1);
    e->slot = calloc((size_t)n, sizeof *e->slot);
    e->buf = calloc((size_t)n, sizeof *e->buf);
    e->order = calloc((size_t)n, sizeof *e->order);
    e->seconds = calloc((size_t)n, sizeof *e->seconds);
    e->qweights = calloc((size_t)n, sizeof *e->qweights);
    e->in_scale = calloc((size_t)n, sizeof *e->in_scale);
    if (!e->in_scale || !e->live || !e->slot || !e->buf || !e->order || !e->seconds || !e->qweights) {
        q7_exec_free(e);
        return q7_error_set(Q7_ERR_OOM, "executor: out of memory");
    }
    mark_live(e);
    q7_cpu_set_threads(e->params.threads);
    enum q7_status st = q7_exec_refresh_weights(e);
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
    free(e->live);
    free(e->slot);
    free(e->buf);
    free(e->order);
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

static enum q7_status run_planned(struct q7_exec * e, float * out)
{
    struct q7_graph * g = e->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        e->seconds[i] = 0.0;
        if (!e->live[i] || nd->op == Q7_OP_INPUT)
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
    if (e->hook) {
        e->hook(e->hook_user, e->g->nodes[e->g->input], &in);
    }
    return run_planned(e, out);
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
    if (e->hook)
        e->hook(e->hook_user, e->g->nodes[e->g->input], &in);
    return run_planned(e, out);
}

size_t q7_exec_peak_bytes(const struct q7_exec * e)
{
    return e->peak_bytes + e->ws_bytes;
}

size_t q7_exec_naive_bytes(const struct q7_exec * e)
{
    return e->naive_bytes;
}

const double * q7_exec_node_seconds(const struct q7_exec * e)
{
    return e->seconds;
}

int q7_exec_node_live(const struct q7_exec * e, int id)
{
    return id >= 0 && id < e->g->n_nodes && e->live[id];
}
