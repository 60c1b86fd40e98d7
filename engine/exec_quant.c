/* Fake-quantization state of the executor, derived from the graph's quantizers: per conv the
 * input scale the kernels apply as they read, and weights fake-quantized once. */
#include "engine/exec_impl.h"

#include "quant/quant.h"

#include <stdlib.h>

enum q7_status q7_exec_refresh_weights(struct q7_exec * e)
{
    for (int i = 0; i < e->g->n_nodes; i++) {
        const struct q7_node * nd = e->g->nodes[i];
        free(e->qweights[i]);
        e->qweights[i] = NULL;
        e->in_scale[i] = q7_quantizer_active_scale(nd->in_quant);
        if (nd->op != Q7_OP_CONV2D || !q7_quant_is_active(nd->w_quant))
            continue;
        const struct q7_tensor * w = nd->w[Q7_W_WEIGHT];
        int64_t out_ch = w->shape[0], per = q7_tensor_numel(w) / out_ch;
        if (nd->w_quant->n_amax != out_ch)
            return q7_error_set(Q7_ERR_ARG, "%s: %d amax values for %lld output channels",
                                nd->w_quant->name, nd->w_quant->n_amax, (long long)out_ch);
        e->qweights[i] = malloc((size_t)(out_ch * per) * sizeof(float));
        if (!e->qweights[i])
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory", nd->name);
        q7_quant_weights(w->data, out_ch, per, nd->w_quant->amax, e->qweights[i]);
    }
    return Q7_OK;
}
