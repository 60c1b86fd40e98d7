/* Graph rewrite passes: fold BN, fuse RepConv, fold implicit layers, fuse activations. */
#include "graph/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void count(int * n)
{
    if (n)
        (*n)++;
}

/* The producer of node `nd`'s input k, when it is a conv used only by `nd`. */
static struct q7_node * sole_conv_input(struct q7_graph * g, struct q7_node * nd, int k)
{
    struct q7_node * c = g->nodes[nd->inputs[k]];
    if (c->dead || c->op != Q7_OP_CONV2D || c->p.conv.act.kind != Q7_ACT_IDENTITY ||
        c->in_quant || q7_graph_count_uses(g, c->id) != 1 || c->id == g->output)
        return NULL;
    return c;
}

static enum q7_status ensure_bias(struct q7_graph * g, struct q7_node * conv)
{
    if (conv->w[Q7_W_BIAS])
        return Q7_OK;
    char name[512];
    snprintf(name, sizeof name, "%s.bias", conv->name);
    int64_t c = conv->p.conv.out_ch;
    conv->w[Q7_W_BIAS] = q7_graph_new_tensor(g, name, 1, &c);
    return conv->w[Q7_W_BIAS] ? Q7_OK : Q7_ERR_OOM;
}

/* Scales output channel o of a conv by s[o] and shifts its bias: b' = b * s + t, in FP32
 * as PyTorch's mm(diag(s), W) and mm(diag(s), b) + t (s and t hold FP32 values). */
static void scale_conv(struct q7_node * conv, const double * s, const double * t)
{
    const struct q7_conv_params * p = &conv->p.conv;
    int64_t per = (int64_t)(p->in_ch / p->groups) * p->kh * p->kw;
    float * w = conv->w[Q7_W_WEIGHT]->data;
    float * b = conv->w[Q7_W_BIAS]->data;
    for (int o = 0; o < p->out_ch; o++) {
        float so = (float)s[o];
        for (int64_t k = 0; k < per; k++)
            w[o * per + k] = w[o * per + k] * so;
        b[o] = b[o] * so + (t ? (float)t[o] : 0.0f);
    }
}

/* BN as y = x * s + t per channel, computed in FP32 exactly as yolov7's fuse_conv_and_bn and
 * RepConv.fuse_conv_bn do it in PyTorch (std = sqrt(var + eps), s = gamma / std,
 * t = beta - gamma * mean / std): the fused weights are then bit-identical to the reference's,
 * so per-channel weight fake-quantization rounds the same values (a fold in double differs by
 * an ulp here and there, and a weight that lands on the other side of a rounding boundary
 * moves a whole output channel of a fake-INT8 model). */
static void bn_affine(const struct q7_node * bn, double * s, double * t)
{
    const float * gamma = bn->w[Q7_W_WEIGHT]->data;
    const float * beta = bn->w[Q7_W_BIAS]->data;
    const float * mean = bn->w[Q7_W_MEAN]->data;
    const float * var = bn->w[Q7_W_VAR]->data;
    float eps = (float)bn->p.bn.eps;
    int64_t c = q7_tensor_numel(bn->w[Q7_W_WEIGHT]);
    for (int64_t i = 0; i < c; i++) {
        float std = sqrtf(var[i] + eps);
        s[i] = gamma[i] / std;
        t[i] = beta[i] - gamma[i] * mean[i] / std;
    }
}

enum q7_status q7_pass_fold_bn(struct q7_graph * g, int * n_rewrites)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * bn = g->nodes[i];
        if (bn->dead || bn->op != Q7_OP_BATCHNORM)
            continue;
        struct q7_node * conv = sole_conv_input(g, bn, 0);
        if (!conv)
            continue;
        int64_t c = conv->p.conv.out_ch;
        double * s = malloc((size_t)c * 2 * sizeof *s);
        if (!s || ensure_bias(g, conv) != Q7_OK) {
            free(s);
            return q7_error_set(Q7_ERR_OOM, "fold_bn: out of memory");
        }
        bn_affine(bn, s, s + c);
        scale_conv(conv, s, s + c);
        free(s);
        q7_graph_replace_uses(g, bn->id, conv->id);
        bn->dead = 1;
        count(n_rewrites);
        q7_log(Q7_LOG_DEBUG, "fold_bn: %s folded into %s (eps %g)", bn->name, conv->name,
               bn->p.bn.eps);
    }
    g->fused |= Q7_FUSED_BN;
    return Q7_OK;
}

/* Adds a centred kxk copy of the 1x1 conv `small` (weights and bias) into `big`. */
static void add_centred(struct q7_node * big, const struct q7_node * small)
{
    const struct q7_conv_params * p = &big->p.conv;
    int cin_g = p->in_ch / p->groups;
    float * w = big->w[Q7_W_WEIGHT]->data;
    const float * w1 = small->w[Q7_W_WEIGHT]->data;
    int cy = p->kh / 2, cx = p->kw / 2;
    for (int o = 0; o < p->out_ch; o++)
        for (int i = 0; i < cin_g; i++)
            w[((int64_t)(o * cin_g + i) * p->kh + cy) * p->kw + cx] += w1[o * cin_g + i];
    float * b = big->w[Q7_W_BIAS]->data;
    const float * b1 = small->w[Q7_W_BIAS] ? small->w[Q7_W_BIAS]->data : NULL;
    for (int o = 0; b1 && o < p->out_ch; o++)
        b[o] += b1[o];
}

/* Identity BN on x as a centre tap of `big`: channel o reads input channel o. */
static void add_identity(struct q7_node * big, const struct q7_node * bn)
{
    const struct q7_conv_params * p = &big->p.conv;
    int cin_g = p->in_ch / p->groups;
    double s[4096], t[4096];
    bn_affine(bn, s, t);
    float * w = big->w[Q7_W_WEIGHT]->data;
    float * b = big->w[Q7_W_BIAS]->data;
    int cy = p->kh / 2, cx = p->kw / 2;
    for (int o = 0; o < p->out_ch; o++) {
        int i = o % cin_g;
        float * tap = &w[((int64_t)(o * cin_g + i) * p->kh + cy) * p->kw + cx];
        *tap = *tap + (float)s[o];
        b[o] = b[o] + (float)t[o];
    }
}

static int same_geometry(const struct q7_conv_params * a, const struct q7_conv_params * b)
{
    return a->in_ch == b->in_ch && a->out_ch == b->out_ch && a->groups == b->groups &&
           a->stride_h == b->stride_h && a->stride_w == b->stride_w && a->dil_h == 1 &&
           a->dil_w == 1 && b->dil_h == 1 && b->dil_w == 1;
}

enum q7_status q7_pass_fuse_repconv(struct q7_graph * g, int * n_rewrites)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * sum = g->nodes[i];
        if (sum->dead || sum->op != Q7_OP_ADD || sum->n_inputs < 2 || sum->n_inputs > 3)
            continue;
        struct q7_node * big = NULL, * small = NULL, * ident = NULL;
        int ok = 1, x = -1;
        for (int k = 0; k < sum->n_inputs && ok; k++) {
            struct q7_node * in = g->nodes[sum->inputs[k]];
            int src = in->n_inputs == 1 ? in->inputs[0] : -2;
            if (x == -1)
                x = src;
            ok = src == x;
            if (in->op == Q7_OP_BATCHNORM && !ident && q7_graph_count_uses(g, in->id) == 1) {
                ident = in;
            } else if (sole_conv_input(g, sum, k)) {
                const struct q7_conv_params * p = &in->p.conv;
                if (p->kh == 1 && p->kw == 1 && !small && p->pad_h == 0 && p->pad_w == 0)
                    small = in;
                else if (!big && p->kh % 2 == 1 && p->kw % 2 == 1 && p->pad_h == p->kh / 2 &&
                         p->pad_w == p->kw / 2)
                    big = in;
                else
                    ok = 0;
            } else {
                ok = 0;
            }
        }
        if (!ok || !big || !small || !same_geometry(&big->p.conv, &small->p.conv))
            continue;
        if (ident && (big->p.conv.in_ch != big->p.conv.out_ch || big->p.conv.stride_h != 1 ||
                      big->p.conv.stride_w != 1 || big->p.conv.out_ch > 4096))
            continue;
        if (ensure_bias(g, big) != Q7_OK)
            return q7_error_set(Q7_ERR_OOM, "fuse_repconv: out of memory");
        add_centred(big, small);
        if (ident)
            add_identity(big, ident);
        small->dead = 1;
        if (ident)
            ident->dead = 1;
        q7_graph_replace_uses(g, sum->id, big->id);
        sum->dead = 1;
        /* rename like fuse_repvgg_block: <layer>.rbr_reparam */
        char name[512];
        const char * dot = strstr(big->name, ".rbr_dense");
        if (dot) {
            snprintf(name, sizeof name, "%.*s.rbr_reparam", (int)(dot - big->name), big->name);
            big->name = q7_arena_strdup(g->arena, name);
            snprintf(name, sizeof name, "%s.weight", big->name);
            big->w[Q7_W_WEIGHT]->name = q7_arena_strdup(g->arena, name);
            snprintf(name, sizeof name, "%s.bias", big->name);
            big->w[Q7_W_BIAS]->name = q7_arena_strdup(g->arena, name);
            big->out.name = big->name;
        }
        count(n_rewrites);
        q7_log(Q7_LOG_DEBUG, "fuse_repconv: %s + %s%s%s -> %s", big->name, small->name,
               ident ? " + " : "", ident ? ident->name : "", big->name);
    }
    g->fused |= Q7_FUSED_REPCONV;
    return Q7_OK;
}

/* sum over ci, t of w[ci * taps + t] * a[ci], as PyTorch's IDetect.fuse computes it:
 * torch.matmul of the weight and the implicit vector, which Debian's PyTorch hands to
 * OpenBLAS' sgemm. Its level-3 driver cuts the reduction into blocks of at most 320 (a rest
 * between 320 and 640 into two halves rounded up to 16), sums each block from 0 with one FMA
 * per term and adds it to the result so far; the bias is added last, as `bias += matmul`.
 * Checked against PyTorch on both fixtures' heads (K = 128 to 1024): equal bit for bit, where
 * a double-precision sum differs in 85-90% of the channels. */
static float implicit_dot(const float * w, const float * a, int cin_g, int64_t taps)
{
    enum { GEMM_Q = 320, GEMM_UNROLL = 16 };
    const int64_t k_total = (int64_t)cin_g * taps;
    float sum = 0.0f;
    for (int64_t k0 = 0; k0 < k_total;) {
        int64_t len = k_total - k0;
        if (len >= 2 * GEMM_Q)
            len = GEMM_Q;
        else if (len > GEMM_Q)
            len = (len / 2 + GEMM_UNROLL - 1) / GEMM_UNROLL * GEMM_UNROLL;
        float acc = 0.0f;
        for (int64_t k = k0; k < k0 + len; k++)
            acc = fmaf(w[k], a[k / taps], acc);
        sum = k0 == 0 ? acc : sum + acc;
        k0 += len;
    }
    return sum;
}

enum q7_status q7_pass_fold_implicit(struct q7_graph * g, int * n_rewrites)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (nd->dead)
            continue;
        if (nd->op == Q7_OP_IMPLICIT_ADD) {
            /* the single consumer must be an unpadded conv */
            struct q7_node * conv = NULL;
            int uses = 0;
            for (int j = nd->id + 1; j < g->n_nodes; j++) {
                struct q7_node * c = g->nodes[j];
                for (int k = 0; !c->dead && k < c->n_inputs; k++)
                    if (c->inputs[k] == nd->id) {
                        uses++;
                        conv = c;
                    }
            }
            if (uses != 1 || conv->op != Q7_OP_CONV2D || conv->p.conv.pad_h ||
                conv->p.conv.pad_w || conv->in_quant)
                continue;
            if (ensure_bias(g, conv) != Q7_OK)
                return q7_error_set(Q7_ERR_OOM, "fold_implicit: out of memory");
            const struct q7_conv_params * p = &conv->p.conv;
            int cin_g = p->in_ch / p->groups, cout_g = p->out_ch / p->groups;
            int64_t taps = (int64_t)p->kh * p->kw;
            const float * w = conv->w[Q7_W_WEIGHT]->data;
            const float * a = nd->w[Q7_W_WEIGHT]->data;
            float * b = conv->w[Q7_W_BIAS]->data;
            for (int o = 0; o < p->out_ch; o++)
                b[o] += implicit_dot(w + (int64_t)o * cin_g * taps, a + (o / cout_g) * cin_g,
                                     cin_g, taps);
            g->folded_params += q7_tensor_numel(nd->w[Q7_W_WEIGHT]);
            q7_graph_replace_uses(g, nd->id, nd->inputs[0]);
            nd->dead = 1;
            count(n_rewrites);
            q7_log(Q7_LOG_DEBUG, "fold_implicit: %s folded into the bias of %s", nd->name,
                   conv->name);
        } else if (nd->op == Q7_OP_IMPLICIT_MUL) {
            struct q7_node * conv = sole_conv_input(g, nd, 0);
            if (!conv)
                continue;
            if (ensure_bias(g, conv) != Q7_OK)
                return q7_error_set(Q7_ERR_OOM, "fold_implicit: out of memory");
            int64_t c = conv->p.conv.out_ch;
            double * s = malloc((size_t)c * sizeof *s);
            if (!s)
                return q7_error_set(Q7_ERR_OOM, "fold_implicit: out of memory");
            const float * m = nd->w[Q7_W_WEIGHT]->data;
            for (int64_t k = 0; k < c; k++)
                s[k] = m[k];
            scale_conv(conv, s, NULL);
            free(s);
            g->folded_params += q7_tensor_numel(nd->w[Q7_W_WEIGHT]);
            q7_graph_replace_uses(g, nd->id, conv->id);
            nd->dead = 1;
            count(n_rewrites);
            q7_log(Q7_LOG_DEBUG, "fold_implicit: %s folded into %s", nd->name, conv->name);
        }
    }
    g->fused |= Q7_FUSED_IMPLICIT;
    return Q7_OK;
}

enum q7_status q7_pass_fuse_act(struct q7_graph * g, int * n_rewrites)
{
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * act = g->nodes[i];
        if (act->dead || act->op != Q7_OP_ACT)
            continue;
        struct q7_node * conv = sole_conv_input(g, act, 0);
        if (!conv)
            continue;
        conv->p.conv.act = act->p.act;
        q7_graph_replace_uses(g, act->id, conv->id);
        act->dead = 1;
        count(n_rewrites);
        q7_log(Q7_LOG_DEBUG, "fuse_act: %s into %s", act->name, conv->name);
    }
    g->fused |= Q7_FUSED_ACT;
    return Q7_OK;
}

enum q7_status q7_pass_fuse_model(struct q7_graph * g, int * n_rewrites)
{
    int n_bn = 0, n_rep = 0, n_imp = 0;
    enum q7_status st;
    if ((st = q7_pass_fold_bn(g, &n_bn)) || (st = q7_pass_fuse_repconv(g, &n_rep)) ||
        (st = q7_pass_fold_implicit(g, &n_imp)) || (st = q7_graph_compact(g)))
        return st;
    if (n_rewrites)
        *n_rewrites += n_bn + n_rep + n_imp;
    q7_log(Q7_LOG_DEBUG, "fuse: %d BatchNorms folded, %d RepConvs fused, %d implicit layers folded",
           n_bn, n_rep, n_imp);
    return Q7_OK;
}
