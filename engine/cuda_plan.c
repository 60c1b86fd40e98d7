/* Host-side layout of the CUDA executor's activations (see cuda_plan.h). */
#include "engine/cuda_plan.h"

#include <string.h>

void q7_cuda_plan_dtypes(const struct q7_plan * p, int fp16, uint8_t * root_f16)
{
    const struct q7_graph * g = p->g;
    memset(root_f16, fp16 ? 1 : 0, (size_t)g->n_nodes);
    if (!fp16)
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (!p->live[i] || nd->op != Q7_OP_DETECT)
            continue;
        for (int k = 0; k < nd->n_inputs; k++)
            root_f16[p->slot[nd->inputs[k]].root] = 0;
    }
}

struct q7_cuda_view q7_cuda_plan_view(const struct q7_plan * p, void * base,
                                      const uint8_t * root_f16, int id)
{
    const struct q7_node * nd = p->g->nodes[id];
    const struct q7_plan_slot * s = &p->slot[id];
    const struct q7_plan_buffer * b = &p->buf[s->root];
    const struct q7_node * rn = p->g->nodes[s->root];
    const int f16 = root_f16[s->root] != 0;
    const int64_t hw = nd->out.shape[2] * nd->out.shape[3];
    const size_t elem = f16 ? 2 : 4;
    struct q7_cuda_view v = {
        .data = (uint8_t *)base + b->offset + (size_t)(s->ch_off * hw) * elem,
        .dtype = f16 ? Q7_DTYPE_F16 : Q7_DTYPE_F32,
        .n = nd->out.shape[0],
        .c = nd->out.shape[1],
        .h = nd->out.shape[2],
        .w = nd->out.shape[3],
        .batch_stride = rn->out.shape[1] * hw,
    };
    return v;
}
