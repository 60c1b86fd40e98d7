/* Single nodes on host data (tests, kernel labs): the executor's kernels run on views uploaded
 * from host memory, so that every CUDA kernel can be compared with its CPU reference on
 * awkward shapes (channel slices, odd sizes, batches) without building a graph. */
#include "engine/exec_cuda_impl.h"
#include "kernels/cuda/batchnorm.cuh"

#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 64

/* Device memory of one uploaded view: the span of host memory from the view's first element to
 * its last, so that a channel slice keeps its neighbours. */
struct dev_span {
    void * d;
    struct q7_cuda_view v;
    size_t count; /* elements in the span */
};

static size_t span_of(const struct q7_view * v)
{
    if (v->n < 1 || v->c * v->h * v->w < 1)
        return 0;
    return (size_t)((v->n - 1) * v->batch_stride + v->c * v->h * v->w);
}

static enum q7_status span_upload(struct q7_cuda_exec * e, const struct q7_view * v,
                                  enum q7_dtype type, struct dev_span * s)
{
    memset(s, 0, sizeof *s);
    s->count = span_of(v);
    const size_t es = q7_dtype_size(type);
    void * host = type == Q7_DTYPE_F32 ? (void *)v->data : malloc(s->count * es + 1);
    if (!host)
        return q7_error_set(Q7_ERR_OOM, "cuda node: out of memory");
    if (type == Q7_DTYPE_F16)
        for (size_t i = 0; i < s->count; i++)
            ((uint16_t *)host)[i] = q7_float_to_half(v->data[i]);
    enum q7_status st = Q7_CUDA_CHECK(cudaMalloc(&s->d, s->count * es + 1));
    if (!st && s->count)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(s->d, host, s->count * es, cudaMemcpyHostToDevice, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (host != (void *)v->data)
        free(host);
    s->v = (struct q7_cuda_view){.data = s->d,
                                 .dtype = type,
                                 .n = v->n,
                                 .c = v->c,
                                 .h = v->h,
                                 .w = v->w,
                                 .batch_stride = v->batch_stride};
    return st;
}

static enum q7_status span_download(struct q7_cuda_exec * e, const struct dev_span * s, float * dst)
{
    const size_t es = q7_dtype_size(s->v.dtype);
    void * host = s->v.dtype == Q7_DTYPE_F32 ? (void *)dst : malloc(s->count * es + 1);
    if (!host)
        return q7_error_set(Q7_ERR_OOM, "cuda node: out of memory");
    enum q7_status st = Q7_OK;
    if (s->count)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(host, s->d, s->count * es, cudaMemcpyDeviceToHost, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (!st && s->v.dtype == Q7_DTYPE_F16)
        for (size_t i = 0; i < s->count; i++)
            dst[i] = q7_half_to_float(((uint16_t *)host)[i]);
    if (host != (void *)dst)
        free(host);
    return st;
}

static enum q7_status upload_bytes(struct q7_cuda_exec * e, const void * host, size_t bytes,
                                   void ** d)
{
    enum q7_status st = Q7_CUDA_CHECK(cudaMalloc(d, bytes + 1));
    if (!st && bytes)
        st = Q7_CUDA_CHECK(cudaMemcpyAsync(*d, host, bytes, cudaMemcpyHostToDevice, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    return st;
}

/* Uploads node nd's parameters into up to two device buffers (freed by the caller). */
static enum q7_status node_params(struct q7_cuda_exec * e, const struct q7_node * nd,
                                  struct q7_cuda_node_args * a, void ** d0, void ** d1)
{
    const struct q7_tensor *w = nd->w[Q7_W_WEIGHT], *b = nd->w[Q7_W_BIAS];
    enum q7_status st = Q7_OK;
    switch (nd->op) {
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        if (!w || !w->data || p->groups < 1 || p->in_ch % p->groups)
            return q7_error_set(Q7_ERR_ARG, "cuda node: conv without weights");
        const int64_t per_ch = (int64_t)(p->in_ch / p->groups) * p->kh * p->kw;
        const size_t bytes = (size_t)(p->out_ch * per_ch) * q7_dtype_size(e->gemm_in);
        void * host = malloc(bytes + 1);
        if (!host)
            return q7_error_set(Q7_ERR_OOM, "cuda node: out of memory");
        st = q7_cuda_conv_weights_host(w->data, p->out_ch, per_ch, NULL, e->gemm_in, host);
        if (!st)
            st = upload_bytes(e, host, bytes, d0);
        free(host);
        if (!st && b)
            st = upload_bytes(e, b->data, (size_t)p->out_ch * sizeof(float), d1);
        a->w = *d0;
        a->b = b ? *d1 : NULL;
        return st;
    }
    case Q7_OP_BATCHNORM: {
        const int64_t c = q7_tensor_numel(nd->w[Q7_W_MEAN]);
        float * coef = malloc((size_t)(2 * c + 1) * sizeof *coef);
        if (!coef)
            return q7_error_set(Q7_ERR_OOM, "cuda node: out of memory");
        q7_cuda_bn_coeffs(w ? w->data : NULL, b ? b->data : NULL, nd->w[Q7_W_MEAN]->data,
                          nd->w[Q7_W_VAR]->data, nd->p.bn.eps, c, coef, coef + c);
        st = upload_bytes(e, coef, (size_t)(2 * c) * sizeof *coef, d0);
        free(coef);
        a->alpha = *d0;
        a->shift = st ? NULL : (const float *)*d0 + c;
        return st;
    }
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL:
        st = upload_bytes(e, w->data, (size_t)q7_tensor_numel(w) * sizeof(float), d0);
        a->w = *d0;
        return st;
    default:
        return Q7_OK;
    }
}

enum q7_status q7_cuda_exec_node_run(struct q7_cuda_exec * e, const struct q7_node * nd,
                                     const struct q7_view * const * xs, const struct q7_view * y,
                                     const struct q7_conv_extra * extra, float * detect_out,
                                     int64_t rows)
{
    if (!e || !nd || nd->n_inputs < 1 || nd->n_inputs > MAX_INPUTS ||
        (nd->op == Q7_OP_DETECT ? !detect_out : !y))
        return q7_error_set(Q7_ERR_ARG, "cuda node: bad arguments");
    if (e->in_flight)
        return q7_error_set(Q7_ERR_ARG, "cuda node: a batch is in flight");
    enum q7_status st = q7_cuda_exec_enter(e);
    if (st)
        return st;
    struct dev_span in[MAX_INPUTS], out = {0};
    struct q7_cuda_view dxs[MAX_INPUTS];
    void *d0 = NULL, *d1 = NULL, *dout = NULL;
    int n_up = 0;
    struct q7_cuda_node_args a = {0};
    a.in_scale = extra ? extra->in_scale : 0.0f;
    for (; n_up < nd->n_inputs && !st; n_up++) {
        st = span_upload(e, xs[n_up], e->act_type, &in[n_up]);
        dxs[n_up] = in[n_up].v;
    }
    const int detect = nd->op == Q7_OP_DETECT;
    if (!st && !detect)
        st = span_upload(e, y, e->act_type, &out);
    if (!st && detect) {
        const size_t bytes = (size_t)(xs[0]->n * rows * nd->p.detect.no) * sizeof(float);
        st = Q7_CUDA_CHECK(cudaMalloc(&dout, bytes + 1));
    }
    if (!st)
        st = node_params(e, nd, &a, &d0, &d1);
    size_t ws = 0;
    if (!st && nd->op == Q7_OP_CONV2D)
        st = q7_cuda_node_workspace(e, nd, &dxs[0], &out.v, &ws);
    if (!st)
        st = q7_cuda_exec_reserve_ws(e, ws);
    if (!st)
        st = q7_cuda_node_exec(e, nd, dxs, &out.v, &a, dout, rows);
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (!st && detect)
        st = Q7_CUDA_CHECK(cudaMemcpy(detect_out, dout,
                                      (size_t)(xs[0]->n * rows * nd->p.detect.no) * sizeof(float),
                                      cudaMemcpyDeviceToHost));
    else if (!st)
        st = span_download(e, &out, y->data);
    if (st)
        (void)cudaStreamSynchronize(e->stream);
    for (int k = 0; k < n_up; k++)
        (void)cudaFree(in[k].d);
    (void)cudaFree(out.d);
    (void)cudaFree(dout);
    (void)cudaFree(d0);
    (void)cudaFree(d1);
    return st ? q7_error_wrap(st, "%s", nd->name ? nd->name : q7_op_name(nd->op)) : Q7_OK;
}

enum q7_status q7_cuda_exec_hist_collect_host(struct q7_cuda_exec * e, const struct q7_view * v,
                                              struct q7_calib_hist * h)
{
    if (!e || !v || !h)
        return q7_error_set(Q7_ERR_ARG, "cuda histogram: bad arguments");
    enum q7_status st = q7_cuda_exec_enter(e);
    if (st)
        return st;
    struct dev_span s;
    st = span_upload(e, v, Q7_DTYPE_F32, &s);
    if (!st)
        st = q7_cuda_exec_hist_collect(e, &s.v, h);
    (void)cudaFree(s.d);
    return st;
}
