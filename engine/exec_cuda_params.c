/* The CUDA executor's parameters on the device: one block holding every live node's weights
 * (in the GEMM input type), biases, BatchNorm coefficients and implicit vectors, and the
 * per-conv fake quantization (input scale, per-channel weight amax). */
#include "engine/exec_cuda_impl.h"
#include "kernels/cuda/batchnorm.cuh"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_ALIGN 256

static size_t align_param(size_t x)
{
    return (x + PARAM_ALIGN - 1) & ~(size_t)(PARAM_ALIGN - 1);
}

enum q7_status q7_cuda_conv_weights_host(const float * w, int64_t out_ch, int64_t per_ch,
                                         const float * amax, enum q7_dtype type, void * dst)
{
    size_t n;
    if (!q7_size_mul((size_t)out_ch, (size_t)per_ch, &n))
        return q7_error_set(Q7_ERR_LIMIT, "conv weights: too many");
    const float * src = w;
    float * tmp = NULL;
    if (amax) {
        tmp = type == Q7_DTYPE_F32 ? (float *)dst : malloc(n * sizeof *tmp);
        if (!tmp)
            return q7_error_set(Q7_ERR_OOM, "conv weights: out of memory");
        q7_quant_weights(w, out_ch, per_ch, amax, tmp);
        src = tmp;
    }
    if (type == Q7_DTYPE_F16) {
        uint16_t * h = dst;
        for (size_t i = 0; i < n; i++)
            h[i] = q7_float_to_half(src[i]);
    } else if (src != dst) {
        memcpy(dst, src, n * sizeof(float));
    }
    if (tmp != dst)
        free(tmp);
    return Q7_OK;
}

static int64_t tensor_numel(const struct q7_tensor * t)
{
    return t ? q7_tensor_numel(t) : 0;
}

/* Sizes of node nd's parameter pieces. */
static enum q7_status param_sizes(const struct q7_cuda_exec * e, const struct q7_node * nd,
                                  size_t * w_bytes, size_t * b_bytes)
{
    *w_bytes = *b_bytes = 0;
    const struct q7_tensor * w = nd->w[Q7_W_WEIGHT];
    switch (nd->op) {
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        if (p->groups < 1 || p->in_ch % p->groups || p->out_ch < 1)
            return q7_error_set(Q7_ERR_ARG, "%s: bad conv parameters", nd->name);
        const int64_t per_ch = (int64_t)(p->in_ch / p->groups) * p->kh * p->kw;
        if (!w || !w->data || tensor_numel(w) != (int64_t)p->out_ch * per_ch)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: conv weight missing or misshapen",
                                nd->name);
        *w_bytes = (size_t)tensor_numel(w) * q7_dtype_size(e->gemm_in);
        const struct q7_tensor * b = nd->w[Q7_W_BIAS];
        if (b) {
            if (!b->data || tensor_numel(b) != p->out_ch)
                return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: conv bias missing or misshapen",
                                    nd->name);
            *b_bytes = (size_t)p->out_ch * sizeof(float);
        }
        return Q7_OK;
    }
    case Q7_OP_BATCHNORM: {
        const struct q7_tensor *m = nd->w[Q7_W_MEAN], *v = nd->w[Q7_W_VAR];
        const int64_t c = tensor_numel(m);
        if (!m || !v || !m->data || !v->data || tensor_numel(v) != c ||
            (w && (!w->data || tensor_numel(w) != c)) ||
            (nd->w[Q7_W_BIAS] && (!nd->w[Q7_W_BIAS]->data || tensor_numel(nd->w[Q7_W_BIAS]) != c)))
            return q7_error_set(Q7_ERR_UNSUPPORTED,
                                "%s: batchnorm statistics missing or "
                                "misshapen",
                                nd->name);
        *w_bytes = *b_bytes = (size_t)c * sizeof(float);
        return Q7_OK;
    }
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL:
        if (!w || !w->data)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: implicit vector missing", nd->name);
        *w_bytes = (size_t)tensor_numel(w) * sizeof(float);
        return Q7_OK;
    default:
        return Q7_OK;
    }
}

/* Writes node nd's parameters (as param_sizes laid them out) into host memory at w and b. */
static enum q7_status param_fill(const struct q7_cuda_exec * e, const struct q7_node * nd,
                                 const float * amax, uint8_t * w, uint8_t * b)
{
    const struct q7_tensor * wt = nd->w[Q7_W_WEIGHT];
    switch (nd->op) {
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        const int64_t per_ch = (int64_t)(p->in_ch / p->groups) * p->kh * p->kw;
        if (nd->w[Q7_W_BIAS])
            memcpy(b, nd->w[Q7_W_BIAS]->data, (size_t)p->out_ch * sizeof(float));
        return q7_cuda_conv_weights_host(wt->data, p->out_ch, per_ch, amax, e->gemm_in, w);
    }
    case Q7_OP_BATCHNORM: {
        const struct q7_tensor * bt = nd->w[Q7_W_BIAS];
        q7_cuda_bn_coeffs(wt ? wt->data : NULL, bt ? bt->data : NULL, nd->w[Q7_W_MEAN]->data,
                          nd->w[Q7_W_VAR]->data, nd->p.bn.eps, tensor_numel(nd->w[Q7_W_MEAN]),
                          (float *)(void *)w, (float *)(void *)b);
        return Q7_OK;
    }
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL:
        memcpy(w, wt->data, (size_t)tensor_numel(wt) * sizeof(float));
        return Q7_OK;
    default:
        return Q7_OK;
    }
}

enum q7_status q7_cuda_params_upload(struct q7_cuda_exec * e)
{
    struct q7_graph * g = e->g;
    size_t total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_cuda_node_params * np = &e->np[i];
        if (!e->plan.live[i])
            continue;
        enum q7_status st = param_sizes(e, g->nodes[i], &np->w_bytes, &np->b_bytes);
        if (st)
            return st;
        np->w_off = total;
        if (!q7_size_add(total, align_param(np->w_bytes), &total))
            return q7_error_set(Q7_ERR_LIMIT, "cuda: parameters overflow");
        np->b_off = total;
        if (!q7_size_add(total, align_param(np->b_bytes), &total))
            return q7_error_set(Q7_ERR_LIMIT, "cuda: parameters overflow");
    }
    if (total == 0)
        return Q7_OK;
    uint8_t * host = malloc(total);
    if (!host)
        return q7_error_set(Q7_ERR_OOM, "cuda: out of memory staging %zu bytes of weights", total);
    memset(host, 0, total);
    enum q7_status st = Q7_OK;
    for (int i = 0; i < g->n_nodes && !st; i++)
        if (e->plan.live[i])
            st = param_fill(e, g->nodes[i], NULL, host + e->np[i].w_off, host + e->np[i].b_off);
    if (!st)
        st = Q7_CUDA_CHECK(cudaMalloc((void **)&e->d_params, total));
    if (!st) {
        e->params_bytes = total;
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(e->d_params, host, total, cudaMemcpyHostToDevice, e->stream));
    }
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    free(host);
    return st;
}

struct q7_cuda_node_args q7_cuda_node_args_of(const struct q7_cuda_exec * e, int id)
{
    const struct q7_cuda_node_params * np = &e->np[id];
    const struct q7_node * nd = e->g->nodes[id];
    struct q7_cuda_node_args a = {0};
    const uint8_t * w = np->w_bytes ? e->d_params + np->w_off : NULL;
    const float * b = np->b_bytes ? (const float *)(const void *)(e->d_params + np->b_off) : NULL;
    if (nd->op == Q7_OP_BATCHNORM) {
        a.alpha = (const float *)(const void *)w;
        a.shift = b;
    } else {
        a.w = w;
        a.b = b;
    }
    a.in_scale = np->in_scale;
    return a;
}

enum q7_status q7_cuda_exec_set_conv_quant(struct q7_cuda_exec * e, int node_id, float in_scale,
                                           const float * weight_amax)
{
    if (!e || !e->g || node_id < 0 || node_id >= e->g->n_nodes || !e->plan.live[node_id] ||
        e->g->nodes[node_id]->op != Q7_OP_CONV2D)
        return q7_error_set(Q7_ERR_ARG, "cuda: node %d is not a live conv", node_id);
    if (e->in_flight)
        return q7_error_set(Q7_ERR_ARG, "cuda: set_conv_quant while a batch is in flight");
    if (isnan(in_scale) || in_scale > 3.4e38f)
        return q7_error_set(Q7_ERR_ARG, "cuda: input scale %g", (double)in_scale);
    const struct q7_node * nd = e->g->nodes[node_id];
    struct q7_cuda_node_params * np = &e->np[node_id];
    const int out_ch = nd->p.conv.out_ch;
    np->in_scale = in_scale;
    /* unchanged weights: nothing to upload */
    if (!weight_amax && !np->w_amax)
        return Q7_OK;
    if (weight_amax && np->w_amax &&
        memcmp(weight_amax, np->w_amax, (size_t)out_ch * sizeof(float)) == 0)
        return Q7_OK;
    enum q7_status st = q7_cuda_exec_enter(e);
    if (st)
        return st;
    uint8_t * host = malloc(np->w_bytes);
    float * keep = weight_amax ? malloc((size_t)out_ch * sizeof *keep) : NULL;
    if (!host || (weight_amax && !keep)) {
        free(host);
        free(keep);
        return q7_error_set(Q7_ERR_OOM, "cuda: out of memory");
    }
    const int64_t per_ch =
        (int64_t)(nd->p.conv.in_ch / nd->p.conv.groups) * nd->p.conv.kh * nd->p.conv.kw;
    st = q7_cuda_conv_weights_host(nd->w[Q7_W_WEIGHT]->data, out_ch, per_ch, weight_amax,
                                   e->gemm_in, host);
    if (!st)
        st = Q7_CUDA_CHECK(cudaMemcpyAsync(e->d_params + np->w_off, host, np->w_bytes,
                                           cudaMemcpyHostToDevice, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    free(host);
    if (st) {
        free(keep);
        return q7_error_wrap(st, "%s", nd->name);
    }
    free(np->w_amax);
    np->w_amax = keep;
    if (keep)
        memcpy(keep, weight_amax, (size_t)out_ch * sizeof *keep);
    return Q7_OK;
}

enum q7_status q7_cuda_exec_refresh_quant(struct q7_cuda_exec * e)
{
    if (!e || !e->g)
        return q7_error_set(Q7_ERR_ARG, "cuda: refresh_quant without a graph");
    if (e->in_flight)
        return q7_error_set(Q7_ERR_ARG, "cuda: refresh_quant while a batch is in flight");
    for (int i = 0; i < e->g->n_nodes; i++) {
        const struct q7_node * nd = e->g->nodes[i];
        if (!e->plan.live[i] || (nd->op != Q7_OP_CONV2D && nd->op != Q7_OP_MAXPOOL))
            continue;
        int on;
        float in_scale = q7_quant_input_scale(nd->in_quant, &on);
        if (on && in_scale == 0.0f)
            in_scale = -1.0f; /* amax <= 2^-24: the input quantizes to 0 */
        if (nd->op == Q7_OP_MAXPOOL) { /* --qdq trt: the pool quantizes its output */
            e->np[i].in_scale = in_scale;
            continue;
        }
        const struct q7_quantizer * wq = nd->w_quant;
        const int out_ch = nd->p.conv.out_ch;
        float * amax = NULL;
        if (q7_quant_is_active(wq)) {
            if (wq->n_amax != out_ch && wq->n_amax != 1)
                return q7_error_set(Q7_ERR_ARG, "%s: %d weight amax values for %d channels",
                                    wq->name, wq->n_amax, out_ch);
            amax = malloc((size_t)out_ch * sizeof *amax);
            if (!amax)
                return q7_error_set(Q7_ERR_OOM, "cuda: out of memory");
            for (int c = 0; c < out_ch; c++)
                amax[c] = wq->amax[wq->n_amax == 1 ? 0 : c];
        }
        enum q7_status st = q7_cuda_exec_set_conv_quant(e, i, in_scale, amax);
        free(amax);
        if (st)
            return st;
    }
    return Q7_OK;
}
