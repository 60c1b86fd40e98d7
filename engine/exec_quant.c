/* Fake-quantization state of the executor, derived from the graph's quantizers: per node the
 * input scale of its quantizer, weights fake-quantized once, and where each quantized tensor
 * is quantized.
 *
 * Where: a conv's input quantizer makes fq(x) from a tensor x that other nodes may read
 * too, so in general the conv quantizes x as it reads it (backend_cpu.c: a 1x1 conv while
 * packing it, a larger kernel into a copy first). When every reader of x ends up quantizing
 * it with the same scale s — readers that are convs with scale s, or concat / max pool /
 * nearest upsample / ReOrg nodes (which commute with fq: fq(max(a, b)) = max(fq(a), fq(b))
 * since fq is monotonic; the others only move values) whose own readers all quantize with s
 * — then x itself is quantized where it is produced, in the producing conv's epilogue, and
 * the readers skip their pass. Convs reading an ELAN concat whose parts are also read by
 * other convs quantize it themselves. The values are bit for bit the same either way (fq is
 * idempotent, and quantizing before a commuting op equals quantizing after it).
 * A hook (layer dumps, calibration) must see every node's output as the reference computes
 * it, unquantized: with one set, nothing is quantized at its source (q7_exec_node_cpu). */
#include "engine/exec_impl.h"

#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int commutes_with_fq(enum q7_op op)
{
    return op == Q7_OP_CONCAT || op == Q7_OP_MAXPOOL || op == Q7_OP_UPSAMPLE ||
           op == Q7_OP_REORG;
}

/* What the readers of one tensor need: nothing yet, every one the scale `s`, or unquantized
 * values somewhere (RAW). */
enum need { NEED_NONE = 0, NEED_SCALE, NEED_RAW };

struct req {
    enum need need;
    float s;
};

static void req_merge(struct req * r, enum need need, float s)
{
    if (r->need == NEED_RAW || need == NEED_NONE)
        return;
    if (need == NEED_RAW || (r->need == NEED_SCALE && r->s != s)) {
        r->need = NEED_RAW;
        return;
    }
    r->need = NEED_SCALE;
    r->s = s;
}

/* out_scale and in_ready from the graph and the scales (see the top of the file). */
static enum q7_status plan_sources(struct q7_exec * e)
{
    const struct q7_graph * g = e->g;
    const int n = g->n_nodes;
    memset(e->out_scale, 0, (size_t)n * sizeof *e->out_scale);
    memset(e->in_ready, 0, (size_t)n);
    struct req * req = calloc((size_t)n, sizeof *req);
    float * have = calloc((size_t)n, sizeof *have); /* node output holds fq(., have) */
    if (!req || !have) {
        free(req);
        free(have);
        return q7_error_set(Q7_ERR_OOM, "executor: out of memory");
    }
    /* readers before their inputs: nodes are in topological order */
    for (int c = n - 1; c >= 0; c--) {
        const struct q7_node * nd = g->nodes[c];
        if (!e->plan.live[c])
            continue;
        if (c == g->output)
            req[c].need = NEED_RAW;
        enum need need = NEED_RAW;
        float s = 0.0f;
        if ((nd->op == Q7_OP_CONV2D || nd->op == Q7_OP_MAXPOOL) && e->in_on[c]) {
            if (e->in_scale[c] != 0.0f) { /* scale 0 (zeros) stays with the reader */
                need = NEED_SCALE;
                s = e->in_scale[c];
            }
        } else if (commutes_with_fq(nd->op) && req[c].need == NEED_SCALE) {
            need = NEED_SCALE;
            s = req[c].s;
        }
        for (int k = 0; k < nd->n_inputs; k++)
            req_merge(&req[nd->inputs[k]], need, s);
    }
    for (int i = 0; i < n; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (!e->plan.live[i])
            continue;
        if ((nd->op == Q7_OP_CONV2D || nd->op == Q7_OP_INPUT) && req[i].need == NEED_SCALE) {
            e->out_scale[i] = req[i].s;
            have[i] = req[i].s;
        } else if (nd->op == Q7_OP_MAXPOOL && e->in_on[i] && e->in_scale[i] != 0.0f) {
            have[i] = e->in_scale[i]; /* a pool quantizer quantizes its output (commutes) */
        } else if (commutes_with_fq(nd->op) && nd->n_inputs > 0) {
            float s = have[nd->inputs[0]];
            for (int k = 1; k < nd->n_inputs && s != 0.0f; k++)
                if (have[nd->inputs[k]] != s)
                    s = 0.0f;
            have[i] = s;
        }
        if (e->in_on[i] && e->in_scale[i] != 0.0f && nd->n_inputs == 1 &&
            have[nd->inputs[0]] == e->in_scale[i])
            e->in_ready[i] = 1;
    }
    free(req);
    free(have);
    return Q7_OK;
}

enum q7_status q7_exec_refresh_weights(struct q7_exec * e)
{
    for (int i = 0; i < e->g->n_nodes; i++) {
        const struct q7_node * nd = e->g->nodes[i];
        free(e->qweights[i]);
        e->qweights[i] = NULL;
        int on;
        e->in_scale[i] = q7_quant_input_scale(nd->in_quant, &on);
        e->in_on[i] = (uint8_t)on;
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
    return plan_sources(e);
}

void q7_exec_quant_sources(const struct q7_exec * e, int * n_at_source, int * n_by_reader)
{
    int at_source = 0, by_reader = 0;
    for (int i = 0; i < e->g->n_nodes; i++) {
        if (!e->plan.live[i] || !e->in_on[i])
            continue;
        if (e->in_ready[i])
            at_source++;
        else
            by_reader++;
    }
    *n_at_source = at_source;
    *n_by_reader = by_reader;
}
