/* CPU dispatch: one switch over ops, optimized kernels where they exist, reference kernels
 * otherwise (or everywhere with use_ref). */
#include "engine/exec_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VIEWS 64

/* Replaces *x by a fake-quantized contiguous copy of it in the executor's scratch. */
static enum q7_status quantized_copy(struct q7_exec * e, const struct q7_node * nd, float scale,
                                     struct q7_view * x)
{
    size_t need = (size_t)(x->n * x->c * x->h * x->w);
    if (need > e->qin_cap) {
        free(e->qin);
        e->qin = malloc(need * sizeof(float));
        e->qin_cap = e->qin ? need : 0;
        if (!e->qin)
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory", nd->name);
    }
    struct q7_view q = *x;
    q.data = e->qin;
    q.batch_stride = q.c * q.h * q.w;
    q7_cpu_fake_quant_copy(x, scale, &q);
    *x = q;
    return Q7_OK;
}

enum q7_status q7_exec_node_cpu(struct q7_exec * e, int id, float * out)
{
    const struct q7_node * nd = e->g->nodes[id];
    int ref = e->params.use_ref;
    struct q7_view y = nd->op == Q7_OP_DETECT ? (struct q7_view){0} : q7_exec_view(e, id);
    struct q7_view xs[MAX_VIEWS];
    const struct q7_view * xp[MAX_VIEWS];
    if (nd->n_inputs > MAX_VIEWS)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: more than %d inputs", nd->name, MAX_VIEWS);
    for (int k = 0; k < nd->n_inputs; k++) {
        xs[k] = q7_exec_view(e, nd->inputs[k]);
        xp[k] = &xs[k];
    }
    const float * w = nd->w[Q7_W_WEIGHT] ? nd->w[Q7_W_WEIGHT]->data : NULL;
    const float * b = nd->w[Q7_W_BIAS] ? nd->w[Q7_W_BIAS]->data : NULL;
    /* Quantization at the source (exec_quant.c) only without a hook, which must see the
     * values the reference computes. */
    const int at_source = e->hook == NULL;
    const int quant_in = e->in_on[id] && !(at_source && e->in_ready[id]);
    switch (nd->op) {
    case Q7_OP_INPUT:
        return Q7_OK;
    case Q7_OP_CONV2D: {
        struct q7_conv_extra extra = {.out_scale = at_source ? e->out_scale[id] : 0.0f};
        if (e->qweights[id])
            w = e->qweights[id];
        /* An input not quantized at its source (exec_quant.c): a 1x1 conv quantizes it as it
         * packs it (each element read once), and so does the reference kernel; a larger
         * optimized kernel would quantize each element once per tap, so it quantizes a
         * contiguous copy first (measured on yolov7, 1 thread: the copy for every conv 1.016x
         * FP32, packing for every conv 1.046x; 1x1 convs alone are faster packing), as does an
         * input whose quantizer zeroes it. Same values bit for bit either way. */
        const int kernel_quant =
            e->in_scale[id] != 0.0f && (ref || nd->p.conv.kh * nd->p.conv.kw == 1);
        if (quant_in && kernel_quant) {
            extra.in_scale = e->in_scale[id];
        } else if (quant_in) {
            enum q7_status st = quantized_copy(e, nd, e->in_scale[id], &xs[0]);
            if (st)
                return st;
        }
        if (ref)
            q7_ref_conv2d(&xs[0], w, b, &nd->p.conv, &extra, &y);
        else
            q7_cpu_conv2d(&xs[0], w, b, &nd->p.conv, &extra, &y, e->ws);
        return Q7_OK;
    }
    case Q7_OP_BATCHNORM: {
        const float * mean = nd->w[Q7_W_MEAN]->data, * var = nd->w[Q7_W_VAR]->data;
        if (ref)
            q7_ref_batchnorm(&xs[0], w, b, mean, var, nd->p.bn.eps, &y);
        else
            q7_cpu_batchnorm(&xs[0], w, b, mean, var, nd->p.bn.eps, &y);
        return Q7_OK;
    }
    case Q7_OP_ACT:
        if (ref)
            q7_ref_act(&xs[0], nd->p.act, &y);
        else
            q7_cpu_act(&xs[0], nd->p.act, &y);
        return Q7_OK;
    case Q7_OP_MAXPOOL:
        if (ref)
            q7_ref_maxpool(&xs[0], &nd->p.pool, &y);
        else
            q7_cpu_maxpool(&xs[0], &nd->p.pool, &y);
        if (quant_in) /* fake-quant commutes with max: apply it to the output, in place */
            q7_cpu_fake_quant_copy(&y, e->in_scale[id], &y);
        return Q7_OK;
    case Q7_OP_UPSAMPLE:
        if (ref)
            q7_ref_upsample_nearest(&xs[0], nd->p.upsample.scale, &y);
        else
            q7_cpu_upsample_nearest(&xs[0], nd->p.upsample.scale, &y);
        return Q7_OK;
    case Q7_OP_CONCAT: {
        /* inputs planned into their slice are already there; copy the others */
        int64_t off = 0;
        for (int k = 0; k < nd->n_inputs; k++) {
            struct q7_view dst = y;
            int64_t hw = y.h * y.w;
            dst.data = y.data + off * hw;
            dst.c = xs[k].c;
            if (xs[k].data != dst.data || xs[k].batch_stride != dst.batch_stride) {
                if (ref)
                    q7_ref_concat(&xp[k], 1, &dst);
                else
                    q7_cpu_copy(&xs[k], &dst);
            }
            off += xs[k].c;
        }
        return Q7_OK;
    }
    case Q7_OP_ADD:
        if (ref)
            q7_ref_add(xp, nd->n_inputs, &y);
        else
            q7_cpu_add(xp, nd->n_inputs, &y);
        return Q7_OK;
    case Q7_OP_IMPLICIT_ADD:
        q7_ref_implicit_add(&xs[0], w, &y);
        return Q7_OK;
    case Q7_OP_IMPLICIT_MUL:
        q7_ref_implicit_mul(&xs[0], w, &y);
        return Q7_OK;
    case Q7_OP_REORG:
        q7_ref_reorg(&xs[0], &y);
        return Q7_OK;
    case Q7_OP_DETECT:
        q7_ref_detect(xp, &nd->p.detect, out, nd->out.shape[1]);
        return Q7_OK;
    case Q7_OP_COUNT:
        break;
    }
    return q7_error_set(Q7_ERR_INTERNAL, "%s: op %s has no CPU kernel", nd->name,
                        q7_op_name(nd->op));
}
