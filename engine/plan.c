/* Memory plan: live nodes, concat in place, greedy placement by lifetime. */
#include "engine/plan.h"

#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 64

static size_t align_up(size_t x)
{
    return (x + PLAN_ALIGN - 1) & ~(size_t)(PLAN_ALIGN - 1);
}

/* Marks nodes that reach the output. */
static void mark_live(struct q7_plan * e)
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
static void assign_roots(struct q7_plan * e)
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
static enum q7_status place_buffers(struct q7_plan * e)
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
        struct q7_plan_buffer * bu = &e->buf[e->order[a]];
        size_t off = 0;
        int moved = 1;
        while (moved) { /* first fit among placed buffers whose lives overlap */
            moved = 0;
            for (int c = 0; c < a; c++) {
                const struct q7_plan_buffer * o = &e->buf[e->order[c]];
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
    e->arena_bytes = peak;
    return Q7_OK;
}


enum q7_status q7_plan_init(struct q7_plan * p, struct q7_graph * g)
{
    memset(p, 0, sizeof *p);
    p->g = g;
    p->n_nodes = g->n_nodes;
    size_t n = (size_t)(g->n_nodes ? g->n_nodes : 1);
    p->live = calloc(n, 1);
    p->slot = calloc(n, sizeof *p->slot);
    p->buf = calloc(n, sizeof *p->buf);
    p->order = calloc(n, sizeof *p->order);
    if (!p->live || !p->slot || !p->buf || !p->order) {
        q7_plan_free(p);
        return q7_error_set(Q7_ERR_OOM, "plan: out of memory");
    }
    mark_live(p);
    return Q7_OK;
}

void q7_plan_free(struct q7_plan * p)
{
    if (!p)
        return;
    free(p->live);
    free(p->slot);
    free(p->buf);
    free(p->order);
    memset(p, 0, sizeof *p);
}

enum q7_status q7_plan_make(struct q7_plan * p, int64_t n, int64_t h, int64_t w)
{
    if (p->n == n && p->h == h && p->w == w)
        return Q7_OK;
    if (p->g->n_nodes != p->n_nodes)
        return q7_error_set(Q7_ERR_INTERNAL, "plan: the graph changed under its executor");
    p->n = 0;
    enum q7_status st = q7_graph_infer_shapes(p->g, n, h, w);
    if (st)
        return st;
    assign_roots(p);
    if ((st = place_buffers(p)))
        return st;
    p->n = n;
    p->h = h;
    p->w = w;
    return Q7_OK;
}

struct q7_view q7_plan_view(const struct q7_plan * p, void * base, int id)
{
    const struct q7_node * nd = p->g->nodes[id];
    const struct q7_plan_slot * s = &p->slot[id];
    const struct q7_plan_buffer * b = &p->buf[s->root];
    const struct q7_node * rn = p->g->nodes[s->root];
    int64_t hw = nd->out.shape[2] * nd->out.shape[3];
    struct q7_view v = {
        .data = (float *)(void *)((uint8_t *)base + b->offset) + s->ch_off * hw,
        .n = nd->out.shape[0],
        .c = nd->out.shape[1],
        .h = nd->out.shape[2],
        .w = nd->out.shape[3],
        .batch_stride = rn->out.shape[1] * hw,
    };
    return v;
}
