/* q7 graph IR: construction, shape inference, compaction, counting, printing. */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

#define GRAPH_ARENA_CHUNK ((size_t)4 << 20)

static const size_t g_dtype_sizes[Q7_DTYPE_COUNT] = {
    [Q7_DTYPE_F32] = 4, [Q7_DTYPE_F16] = 2, [Q7_DTYPE_BF16] = 2, [Q7_DTYPE_F64] = 8,
    [Q7_DTYPE_I8] = 1,  [Q7_DTYPE_U8] = 1,  [Q7_DTYPE_I16] = 2,  [Q7_DTYPE_I32] = 4,
    [Q7_DTYPE_I64] = 8, [Q7_DTYPE_BOOL] = 1,
};

static const char * const g_dtype_names[Q7_DTYPE_COUNT] = {
    [Q7_DTYPE_F32] = "float32", [Q7_DTYPE_F16] = "float16", [Q7_DTYPE_BF16] = "bfloat16",
    [Q7_DTYPE_F64] = "float64", [Q7_DTYPE_I8] = "int8",     [Q7_DTYPE_U8] = "uint8",
    [Q7_DTYPE_I16] = "int16",   [Q7_DTYPE_I32] = "int32",   [Q7_DTYPE_I64] = "int64",
    [Q7_DTYPE_BOOL] = "bool",
};

static const char * const g_op_names[Q7_OP_COUNT] = {
    [Q7_OP_INPUT] = "input",          [Q7_OP_CONV2D] = "conv2d",
    [Q7_OP_BATCHNORM] = "batchnorm",  [Q7_OP_ACT] = "act",
    [Q7_OP_MAXPOOL] = "maxpool",      [Q7_OP_UPSAMPLE] = "upsample",
    [Q7_OP_CONCAT] = "concat",        [Q7_OP_ADD] = "add",
    [Q7_OP_IMPLICIT_ADD] = "implicit_add", [Q7_OP_IMPLICIT_MUL] = "implicit_mul",
    [Q7_OP_REORG] = "reorg",          [Q7_OP_DETECT] = "detect",
};

static const char * const g_act_names[Q7_ACT_COUNT] = {
    [Q7_ACT_IDENTITY] = "identity", [Q7_ACT_SILU] = "silu", [Q7_ACT_LEAKY_RELU] = "leaky_relu",
    [Q7_ACT_RELU] = "relu", [Q7_ACT_SIGMOID] = "sigmoid",
};

size_t q7_dtype_size(enum q7_dtype dtype)
{
    return (unsigned)dtype < Q7_DTYPE_COUNT ? g_dtype_sizes[dtype] : 0;
}

const char * q7_dtype_name(enum q7_dtype dtype)
{
    return (unsigned)dtype < Q7_DTYPE_COUNT ? g_dtype_names[dtype] : "unknown";
}

const char * q7_op_name(enum q7_op op)
{
    return (unsigned)op < Q7_OP_COUNT ? g_op_names[op] : "unknown";
}

const char * q7_act_name(enum q7_act act)
{
    return (unsigned)act < Q7_ACT_COUNT ? g_act_names[act] : "unknown";
}

int64_t q7_tensor_numel(const struct q7_tensor * t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

struct q7_graph * q7_graph_create(void)
{
    struct q7_graph * g = calloc(1, sizeof *g);
    if (!g) {
        q7_error_set(Q7_ERR_OOM, "graph: out of memory");
        return NULL;
    }
    g->arena = q7_arena_create(GRAPH_ARENA_CHUNK);
    if (!g->arena) {
        free(g);
        return NULL;
    }
    g->input = -1;
    g->output = -1;
    g->img_size = 640;
    return g;
}

void q7_graph_free(struct q7_graph * g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->layers);
    q7_arena_free(g->arena);
    free(g);
}

struct q7_node * q7_graph_add_node(struct q7_graph * g, enum q7_op op, const char * name,
                                   int layer, const int * inputs, int n_inputs)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        struct q7_node ** nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            q7_error_set(Q7_ERR_OOM, "graph: out of memory");
            return NULL;
        }
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    struct q7_node * n = q7_arena_alloc(g->arena, sizeof *n);
    if (!n)
        return NULL;
    n->id = g->n_nodes;
    n->op = op;
    n->name = q7_arena_strdup(g->arena, name ? name : "");
    n->layer = layer;
    n->n_inputs = n_inputs;
    if (n_inputs > 0) {
        n->inputs = q7_arena_alloc(g->arena, (size_t)n_inputs * sizeof(int));
        if (!n->inputs || !n->name)
            return NULL;
        for (int i = 0; i < n_inputs; i++) {
            Q7_ASSERT(inputs[i] >= 0 && inputs[i] < n->id);
            n->inputs[i] = inputs[i];
        }
    }
    n->out.dtype = Q7_DTYPE_F32;
    n->out.name = n->name;
    g->nodes[g->n_nodes++] = n;
    return n;
}

static struct q7_tensor * new_tensor(struct q7_graph * g, const char * name, int ndim,
                                     const int64_t * shape, int with_data)
{
    Q7_ASSERT(ndim >= 0 && ndim <= Q7_MAX_DIMS);
    struct q7_tensor * t = q7_arena_alloc(g->arena, sizeof *t);
    if (!t)
        return NULL;
    t->name = name ? q7_arena_strdup(g->arena, name) : NULL;
    t->dtype = Q7_DTYPE_F32;
    t->ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !q7_size_mul(numel, (size_t)shape[i], &numel)) {
            q7_error_set(Q7_ERR_LIMIT, "tensor %s: bad shape", name ? name : "?");
            return NULL;
        }
        t->shape[i] = shape[i];
    }
    size_t bytes;
    if (!q7_size_mul(numel, sizeof(float), &bytes)) {
        q7_error_set(Q7_ERR_LIMIT, "tensor %s: too large", name ? name : "?");
        return NULL;
    }
    if (!with_data)
        return t;
    t->data = q7_arena_alloc(g->arena, bytes);
    return t->data ? t : NULL;
}

struct q7_tensor * q7_graph_new_tensor(struct q7_graph * g, const char * name, int ndim,
                                       const int64_t * shape)
{
    return new_tensor(g, name, ndim, shape, 1);
}

struct q7_tensor * q7_graph_new_tensor_shape(struct q7_graph * g, const char * name, int ndim,
                                             const int64_t * shape)
{
    return new_tensor(g, name, ndim, shape, 0);
}

static void set_shape4(struct q7_tensor * t, int64_t n, int64_t c, int64_t h, int64_t w)
{
    t->ndim = 4;
    t->shape[0] = n;
    t->shape[1] = c;
    t->shape[2] = h;
    t->shape[3] = w;
}

static int64_t pool_out(int64_t in, int k, int s, int p, int ceil_mode)
{
    int64_t num = in + 2 * p - k;
    if (num < 0)
        return 0;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* PyTorch: the last window must start inside the input or left padding */
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static enum q7_status infer_node(struct q7_graph * g, struct q7_node * nd)
{
    const struct q7_tensor * in0 = nd->n_inputs ? &g->nodes[nd->inputs[0]]->out : NULL;
    const int64_t * s = in0 ? in0->shape : NULL;
    switch (nd->op) {
    case Q7_OP_INPUT:
        return Q7_OK;
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        if (s[1] != p->in_ch)
            return q7_error_set(Q7_ERR_ARG, "%s: conv expects %d input channels, gets %lld",
                                nd->name, p->in_ch, (long long)s[1]);
        int64_t oh = (s[2] + 2 * p->pad_h - p->dil_h * (p->kh - 1) - 1) / p->stride_h + 1;
        int64_t ow = (s[3] + 2 * p->pad_w - p->dil_w * (p->kw - 1) - 1) / p->stride_w + 1;
        if (oh <= 0 || ow <= 0)
            return q7_error_set(Q7_ERR_ARG, "%s: input %lldx%lld is too small for the conv",
                                nd->name, (long long)s[2], (long long)s[3]);
        set_shape4(&nd->out, s[0], p->out_ch, oh, ow);
        return Q7_OK;
    }
    case Q7_OP_BATCHNORM:
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL:
        if (nd->w[Q7_W_WEIGHT] && q7_tensor_numel(nd->w[Q7_W_WEIGHT]) != s[1])
            return q7_error_set(Q7_ERR_ARG, "%s: %lld channels, weights for %lld", nd->name,
                                (long long)s[1],
                                (long long)q7_tensor_numel(nd->w[Q7_W_WEIGHT]));
        nd->out = (struct q7_tensor){.name = nd->name, .dtype = Q7_DTYPE_F32};
        set_shape4(&nd->out, s[0], s[1], s[2], s[3]);
        return Q7_OK;
    case Q7_OP_ACT:
        set_shape4(&nd->out, s[0], s[1], s[2], s[3]);
        return Q7_OK;
    case Q7_OP_MAXPOOL: {
        const struct q7_pool_params * p = &nd->p.pool;
        int64_t oh = pool_out(s[2], p->kh, p->stride_h, p->pad_h, p->ceil_mode);
        int64_t ow = pool_out(s[3], p->kw, p->stride_w, p->pad_w, p->ceil_mode);
        if (oh <= 0 || ow <= 0)
            return q7_error_set(Q7_ERR_ARG, "%s: input too small for the pool", nd->name);
        set_shape4(&nd->out, s[0], s[1], oh, ow);
        return Q7_OK;
    }
    case Q7_OP_UPSAMPLE:
        set_shape4(&nd->out, s[0], s[1], s[2] * nd->p.upsample.scale,
                   s[3] * nd->p.upsample.scale);
        return Q7_OK;
    case Q7_OP_CONCAT: {
        int64_t c = 0;
        for (int i = 0; i < nd->n_inputs; i++) {
            const int64_t * si = g->nodes[nd->inputs[i]]->out.shape;
            if (si[0] != s[0] || si[2] != s[2] || si[3] != s[3])
                return q7_error_set(Q7_ERR_ARG,
                                    "%s: concat input %d is %lldx%lld, input 0 is %lldx%lld",
                                    nd->name, i, (long long)si[2], (long long)si[3],
                                    (long long)s[2], (long long)s[3]);
            c += si[1];
        }
        set_shape4(&nd->out, s[0], c, s[2], s[3]);
        return Q7_OK;
    }
    case Q7_OP_ADD:
        for (int i = 1; i < nd->n_inputs; i++) {
            const int64_t * si = g->nodes[nd->inputs[i]]->out.shape;
            if (memcmp(si, s, 4 * sizeof *s) != 0)
                return q7_error_set(Q7_ERR_ARG, "%s: add inputs differ in shape", nd->name);
        }
        set_shape4(&nd->out, s[0], s[1], s[2], s[3]);
        return Q7_OK;
    case Q7_OP_REORG:
        if (s[2] % 2 || s[3] % 2)
            return q7_error_set(Q7_ERR_ARG, "%s: ReOrg needs even height and width", nd->name);
        set_shape4(&nd->out, s[0], s[1] * 4, s[2] / 2, s[3] / 2);
        return Q7_OK;
    case Q7_OP_DETECT: {
        const struct q7_detect_params * p = &nd->p.detect;
        if (nd->n_inputs != p->nl)
            return q7_error_set(Q7_ERR_ARG, "%s: detect has %d inputs for %d levels", nd->name,
                                nd->n_inputs, p->nl);
        int64_t rows = 0;
        for (int i = 0; i < nd->n_inputs; i++) {
            const int64_t * si = g->nodes[nd->inputs[i]]->out.shape;
            if (si[1] != (int64_t)p->na * p->no)
                return q7_error_set(Q7_ERR_ARG, "%s: level %d has %lld channels, not %d",
                                    nd->name, i, (long long)si[1], p->na * p->no);
            rows += (int64_t)p->na * si[2] * si[3];
        }
        nd->out.ndim = 3;
        nd->out.shape[0] = s[0];
        nd->out.shape[1] = rows;
        nd->out.shape[2] = p->no;
        return Q7_OK;
    }
    case Q7_OP_COUNT:
        break;
    }
    return q7_error_set(Q7_ERR_INTERNAL, "%s: unknown op %d", nd->name, (int)nd->op);
}

enum q7_status q7_graph_infer_shapes(struct q7_graph * g, int64_t n, int64_t h, int64_t w)
{
    if (g->input < 0)
        return q7_error_set(Q7_ERR_ARG, "graph has no input");
    if (n <= 0 || h <= 0 || w <= 0)
        return q7_error_set(Q7_ERR_ARG, "input size %lldx%lldx%lld is not positive",
                            (long long)n, (long long)h, (long long)w);
    int stride = g->stride_max > 0 ? g->stride_max : 32;
    if (h % stride || w % stride)
        return q7_error_set(Q7_ERR_ARG, "input %lldx%lld: height and width must be multiples of %d",
                            (long long)h, (long long)w, stride);
    set_shape4(&g->nodes[g->input]->out, n, 3, h, w);
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (nd->dead || nd->op == Q7_OP_INPUT)
            continue;
        enum q7_status st = infer_node(g, nd);
        if (st)
            return st;
    }
    return Q7_OK;
}

void q7_graph_replace_uses(struct q7_graph * g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] == from)
                nd->inputs[k] = to;
    }
    for (int l = 0; l < g->n_layers; l++)
        if (g->layers[l].out_node == from)
            g->layers[l].out_node = to;
    if (g->output == from)
        g->output = to;
}

int q7_graph_count_uses(const struct q7_graph * g, int id)
{
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->n_inputs; k++)
            uses += nd->inputs[k] == id;
    }
    return uses;
}

enum q7_status q7_graph_compact(struct q7_graph * g)
{
    int * remap = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *remap);
    if (!remap)
        return q7_error_set(Q7_ERR_OOM, "graph: out of memory");
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (nd->dead) {
            remap[i] = -1;
            continue;
        }
        remap[i] = k;
        nd->id = k;
        for (int j = 0; j < nd->n_inputs; j++) {
            Q7_ASSERT(remap[nd->inputs[j]] >= 0);
            nd->inputs[j] = remap[nd->inputs[j]];
        }
        g->nodes[k++] = nd;
    }
    for (int l = 0; l < g->n_layers; l++)
        if (g->layers[l].out_node >= 0)
            g->layers[l].out_node = remap[g->layers[l].out_node];
    g->input = g->input >= 0 ? remap[g->input] : -1;
    g->output = g->output >= 0 ? remap[g->output] : -1;
    g->n_nodes = k;
    free(remap);
    return Q7_OK;
}

int64_t q7_graph_count_params(const struct q7_graph * g)
{
    int64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->dead)
            continue;
        /* running statistics are buffers, not parameters */
        for (int r = 0; r < Q7_W_COUNT; r++)
            if (nd->w[r] && r != Q7_W_MEAN && r != Q7_W_VAR)
                total += q7_tensor_numel(nd->w[r]);
    }
    return total + g->folded_params;
}

double q7_graph_gflops(struct q7_graph * g, int img)
{
    if (q7_graph_infer_shapes(g, 1, img, img) != Q7_OK)
        return -1.0;
    double macs = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->dead || nd->op != Q7_OP_CONV2D)
            continue;
        const struct q7_conv_params * p = &nd->p.conv;
        double per_out = (double)(p->in_ch / p->groups) * p->kh * p->kw;
        macs += per_out * (double)q7_tensor_numel(&nd->out);
    }
    return 2.0 * macs / 1e9;
}

int q7_graph_find(const struct q7_graph * g, const char * name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i]->dead && strcmp(g->nodes[i]->name, name) == 0)
            return i;
    return -1;
}

void q7_graph_print(const struct q7_graph * g, FILE * f)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->dead)
            continue;
        fprintf(f, "%4d %-13s %-28s (", nd->id, q7_op_name(nd->op), nd->name);
        for (int k = 0; k < nd->n_inputs; k++)
            fprintf(f, "%s%d", k ? "," : "", nd->inputs[k]);
        fprintf(f, ") [");
        for (int d = 0; d < nd->out.ndim; d++)
            fprintf(f, "%s%lld", d ? "x" : "", (long long)nd->out.shape[d]);
        fprintf(f, "]");
        if (nd->op == Q7_OP_CONV2D) {
            const struct q7_conv_params * p = &nd->p.conv;
            fprintf(f, " k%dx%d s%d p%d g%d%s%s%s", p->kh, p->kw, p->stride_h, p->pad_h,
                    p->groups, nd->w[Q7_W_BIAS] ? " bias" : "",
                    p->act.kind ? " +" : "", p->act.kind ? q7_act_name(p->act.kind) : "");
        } else if (nd->op == Q7_OP_ACT) {
            fprintf(f, " %s", q7_act_name(nd->p.act.kind));
        } else if (nd->op == Q7_OP_MAXPOOL) {
            fprintf(f, " k%d s%d p%d", nd->p.pool.kh, nd->p.pool.stride_h, nd->p.pool.pad_h);
        } else if (nd->op == Q7_OP_BATCHNORM) {
            fprintf(f, " eps=%g", nd->p.bn.eps);
        }
        fputc('\n', f);
    }
}
