/* CUDA dispatch: one switch over ops, as backend_cpu.c. Every op of the IR has a kernel. */
#include "engine/exec_cuda_impl.h"
#include "kernels/cuda/act.cuh"
#include "kernels/cuda/add.cuh"
#include "kernels/cuda/batchnorm.cuh"
#include "kernels/cuda/conv2d.cuh"
#include "kernels/cuda/copy.cuh"
#include "kernels/cuda/detect.cuh"
#include "kernels/cuda/implicit.cuh"
#include "kernels/cuda/maxpool.cuh"
#include "kernels/cuda/reorg.cuh"
#include "kernels/cuda/upsample.cuh"

static int same_shape(const struct q7_cuda_view * a, const struct q7_cuda_view * b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

enum q7_status q7_cuda_node_workspace(const struct q7_cuda_exec * e, const struct q7_node * nd,
                                      const struct q7_cuda_view * x, const struct q7_cuda_view * y,
                                      size_t * bytes)
{
    *bytes = 0;
    if (nd->op != Q7_OP_CONV2D)
        return Q7_OK;
    /* with and without input fake-quant (im2col or direct): the chunk sizes differ, so either
     * may need more */
    struct q7_cuda_conv_plan fq, plain;
    enum q7_status st =
        q7_cuda_conv2d_plan(x, y, &nd->p.conv, e->gemm_in, 1, e->params.conv_workspace, &fq);
    if (!st)
        st =
            q7_cuda_conv2d_plan(x, y, &nd->p.conv, e->gemm_in, 0, e->params.conv_workspace, &plain);
    if (st)
        return q7_error_wrap(st, "%s", nd->name);
    *bytes = fq.ws_bytes > plain.ws_bytes ? fq.ws_bytes : plain.ws_bytes;
    return Q7_OK;
}

static enum q7_status conv(struct q7_cuda_exec * e, const struct q7_node * nd,
                           const struct q7_cuda_view * x, const struct q7_cuda_view * y,
                           const struct q7_cuda_node_args * a)
{
    struct q7_cuda_conv_plan cp;
    enum q7_status st = q7_cuda_conv2d_plan(x, y, &nd->p.conv, e->gemm_in, a->in_scale != 0.0f,
                                            e->params.conv_workspace, &cp);
    if (st)
        return st;
    cp.im2col_tiled = e->params.im2col_tiled;
    if (cp.ws_bytes > e->ws_cap)
        return q7_error_set(Q7_ERR_INTERNAL, "conv needs %zu bytes of workspace, %zu planned",
                            cp.ws_bytes, e->ws_cap);
    return q7_cuda_conv2d(e->stream, e->blas, x, a->w, a->b, &nd->p.conv, a->in_scale, y, &cp,
                          e->d_ws);
}

/* Inputs planned into their slice of the concat's buffer are already there; copy the others. */
static enum q7_status concat(struct q7_cuda_exec * e, const struct q7_node * nd,
                             const struct q7_cuda_view * xs, const struct q7_cuda_view * y)
{
    const int64_t hw = y->h * y->w;
    const size_t es = q7_dtype_size(y->dtype);
    int64_t off = 0;
    for (int k = 0; k < nd->n_inputs; k++) {
        struct q7_cuda_view dst = *y;
        dst.data = (uint8_t *)y->data + (size_t)(off * hw) * es;
        dst.c = xs[k].c;
        if (xs[k].n != y->n || xs[k].h != y->h || xs[k].w != y->w || off + xs[k].c > y->c)
            return q7_error_set(Q7_ERR_ARG, "concat input %d does not fit", k);
        if (xs[k].data != dst.data || xs[k].batch_stride != dst.batch_stride ||
            xs[k].dtype != dst.dtype) {
            enum q7_status st = q7_cuda_copy(e->stream, &xs[k], &dst);
            if (st)
                return st;
        }
        off += xs[k].c;
    }
    return off == y->c ? Q7_OK : q7_error_set(Q7_ERR_ARG, "concat inputs do not fill the output");
}

enum q7_status q7_cuda_node_exec(struct q7_cuda_exec * e, const struct q7_node * nd,
                                 const struct q7_cuda_view * xs, const struct q7_cuda_view * y,
                                 const struct q7_cuda_node_args * a, float * out, int64_t rows)
{
    cudaStream_t s = e->stream;
    switch (nd->op) {
    case Q7_OP_INPUT:
        return Q7_OK;
    case Q7_OP_CONV2D:
        return conv(e, nd, &xs[0], y, a);
    case Q7_OP_CONCAT:
        return concat(e, nd, xs, y);
    case Q7_OP_DETECT:
        if (nd->n_inputs != nd->p.detect.nl)
            return q7_error_set(Q7_ERR_ARG, "detect: %d inputs for %d levels", nd->n_inputs,
                                nd->p.detect.nl);
        return q7_cuda_detect(s, xs, &nd->p.detect, out, rows);
    case Q7_OP_MAXPOOL:
        return q7_cuda_maxpool(s, &xs[0], &nd->p.pool, a ? a->in_scale : 0.0f, y);
    case Q7_OP_UPSAMPLE:
        if (xs[0].h * nd->p.upsample.scale != y->h || xs[0].w * nd->p.upsample.scale != y->w)
            return q7_error_set(Q7_ERR_ARG, "upsample: sizes do not fit the scale");
        return q7_cuda_upsample_nearest(s, &xs[0], nd->p.upsample.scale, y);
    case Q7_OP_REORG:
        if (y->c != 4 * xs[0].c || 2 * y->h > xs[0].h || 2 * y->w > xs[0].w)
            return q7_error_set(Q7_ERR_ARG, "reorg: sizes do not fit");
        return q7_cuda_reorg(s, &xs[0], y);
    case Q7_OP_ADD:
        for (int k = 0; k < nd->n_inputs; k++)
            if (!same_shape(&xs[k], y))
                return q7_error_set(Q7_ERR_ARG, "add: input %d has another shape", k);
        return q7_cuda_add(s, xs, nd->n_inputs, y);
    case Q7_OP_BATCHNORM:
    case Q7_OP_ACT:
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL:
        if (!same_shape(&xs[0], y))
            return q7_error_set(Q7_ERR_ARG, "%s: input and output shapes differ",
                                q7_op_name(nd->op));
        if (nd->op == Q7_OP_BATCHNORM)
            return q7_cuda_batchnorm(s, &xs[0], a->alpha, a->shift, y);
        if (nd->op == Q7_OP_ACT)
            return q7_cuda_act(s, &xs[0], nd->p.act, y);
        if (nd->op == Q7_OP_IMPLICIT_ADD)
            return q7_cuda_implicit_add(s, &xs[0], a->w, y);
        return q7_cuda_implicit_mul(s, &xs[0], a->w, y);
    case Q7_OP_COUNT:
        break;
    }
    return q7_error_set(Q7_ERR_UNSUPPORTED, "op %s has no CUDA kernel", q7_op_name(nd->op));
}
