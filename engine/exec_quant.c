/* Fake-quantization state of the executor, derived from the graph's quantizers. */
#include "engine/exec_impl.h"

#include <stdlib.h>

enum q7_status q7_exec_refresh_weights(struct q7_exec * e)
{
    for (int i = 0; i < e->g->n_nodes; i++) {
        free(e->qweights[i]);
        e->qweights[i] = NULL;
        e->in_scale[i] = 0.0f;
    }
    return Q7_OK;
}
