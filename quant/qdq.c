/* QDQ insertion and calibration of a graph's quantizers. */
#include "quant/qdq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void q7_qdq_free(struct q7_qdq * qdq)
{
    if (!qdq)
        return;
    if (qdq->g)
        for (int i = 0; i < qdq->g->n_nodes; i++) {
            qdq->g->nodes[i]->in_quant = NULL;
            qdq->g->nodes[i]->w_quant = NULL;
        }
    for (int k = 0; k < qdq->n; k++)
        q7_quant_free(qdq->q[k]);
    free(qdq->q);
    free(qdq->leader);
    free(qdq);
}

static enum q7_status add_quant(struct q7_qdq * qdq, const char * module, const char * suffix,
                                const struct q7_quant_params * p, struct q7_quantizer ** out)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    struct q7_quantizer * q = q7_quant_create(name, p);
    if (!q)
        return Q7_ERR_OOM;
    qdq->q[qdq->n++] = q;
    *out = q;
    return Q7_OK;
}

enum q7_status q7_qdq_mode_parse(const char * s, enum q7_qdq_mode * out)
{
    if (!s || strcmp(s, "seed") == 0)
        *out = Q7_QDQ_SEED;
    else if (strcmp(s, "trt") == 0)
        *out = Q7_QDQ_TRT;
    else
        return q7_error_set(Q7_ERR_ARG, "QDQ placement '%s': use seed or trt", s);
    return Q7_OK;
}

static int quant_index(const struct q7_qdq * qdq, const struct q7_quantizer * q)
{
    for (int k = 0; k < qdq->n; k++)
        if (qdq->q[k] == q)
            return k;
    return -1;
}

/* TRT rule: for each concat, the input quantizers of the nodes reading its inputs follow the
 * input quantizer of the (first) node reading its output. */
static void share_concat_scales(struct q7_qdq * qdq)
{
    struct q7_graph * g = qdq->g;
    for (int c = 0; c < g->n_nodes; c++) {
        const struct q7_node * cat = g->nodes[c];
        if (cat->dead || cat->op != Q7_OP_CONCAT)
            continue;
        int major = -1;
        for (int i = c + 1; i < g->n_nodes && major < 0; i++)
            if (g->nodes[i]->in_quant && g->nodes[i]->inputs[0] == c)
                major = quant_index(qdq, g->nodes[i]->in_quant);
        if (major < 0)
            continue;
        while (qdq->leader[major] >= 0)
            major = qdq->leader[major];
        for (int k = 0; k < cat->n_inputs; k++)
            for (int i = cat->inputs[k] + 1; i < g->n_nodes; i++) {
                const struct q7_node * nd = g->nodes[i];
                if (!nd->in_quant || nd->inputs[0] != cat->inputs[k])
                    continue;
                int sub = quant_index(qdq, nd->in_quant);
                if (sub >= 0 && sub != major && qdq->leader[sub] < 0)
                    qdq->leader[sub] = major;
            }
    }
}

enum q7_status q7_qdq_insert(struct q7_graph * g, enum q7_qdq_mode mode, struct q7_qdq ** out)
{
    *out = NULL;
    if (mode != Q7_QDQ_SEED && mode != Q7_QDQ_TRT)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "QDQ placement %d is not implemented",
                            (int)mode);
    struct q7_qdq * qdq = calloc(1, sizeof *qdq);
    if (!qdq || !(qdq->q = calloc((size_t)(2 * g->n_nodes + 1), sizeof *qdq->q)) ||
        !(qdq->leader = malloc((size_t)(2 * g->n_nodes + 1) * sizeof *qdq->leader))) {
        if (qdq)
            free(qdq->q);
        free(qdq);
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    for (int k = 0; k < 2 * g->n_nodes + 1; k++)
        qdq->leader[k] = -1;
    qdq->g = g;
    qdq->mode = mode;
    struct q7_quant_params pin = q7_quant_params_input(), pw = q7_quant_params_weight();
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (mode == Q7_QDQ_TRT && !nd->dead && nd->op == Q7_OP_MAXPOOL) {
            enum q7_status st = add_quant(qdq, nd->name, "_input_quantizer", &pin, &nd->in_quant);
            if (st) {
                q7_qdq_free(qdq);
                return st;
            }
            continue;
        }
        if (nd->dead || nd->op != Q7_OP_CONV2D)
            continue;
        enum q7_status st;
        if ((st = add_quant(qdq, nd->name, "_input_quantizer", &pin, &nd->in_quant)) ||
            (st = add_quant(qdq, nd->name, "_weight_quantizer", &pw, &nd->w_quant))) {
            q7_qdq_free(qdq);
            return st;
        }
    }
    if (mode == Q7_QDQ_TRT)
        share_concat_scales(qdq);
    q7_log(Q7_LOG_DEBUG, "qdq: %d quantizers", qdq->n);
    *out = qdq;
    return Q7_OK;
}

struct q7_quantizer * q7_qdq_find(const struct q7_qdq * qdq, const char * name)
{
    for (int k = 0; k < qdq->n; k++)
        if (strcmp(qdq->q[k]->name, name) == 0)
            return qdq->q[k];
    return NULL;
}

enum q7_status q7_qdq_calib_weights(struct q7_qdq * qdq)
{
    struct q7_graph * g = qdq->g;
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (!nd->w_quant || nd->op != Q7_OP_CONV2D)
            continue;
        const struct q7_tensor * w = nd->w[Q7_W_WEIGHT];
        int64_t out_ch = w->shape[0], per = q7_tensor_numel(w) / out_ch;
        struct q7_quantizer * q = nd->w_quant;
        q7_quant_set_calibrating(q, 1);
        enum q7_status st = q7_quant_collect(q, w->data, out_ch, per);
        q7_quant_set_calibrating(q, 0);
        if (st || (st = q7_quant_load_calib_amax(q, Q7_CALIB_MAX, NULL)))
            return q7_error_wrap(st, "%s", q->name);
    }
    return Q7_OK;
}

void q7_qdq_set_calibrating(struct q7_qdq * qdq, int calibrating)
{
    for (int i = 0; i < qdq->g->n_nodes; i++)
        if (qdq->g->nodes[i]->in_quant)
            q7_quant_set_calibrating(qdq->g->nodes[i]->in_quant, calibrating);
}

int q7_qdq_next_reader(const struct q7_qdq * qdq, int id, int from, struct q7_quantizer ** q)
{
    const struct q7_graph * g = qdq->g;
    for (int i = from > id ? from : id + 1; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->in_quant && nd->in_quant->calibrating && nd->n_inputs >= 1 &&
            nd->inputs[0] == id) {
            *q = nd->in_quant;
            return i;
        }
    }
    return -1;
}

enum q7_status q7_qdq_collect_node(struct q7_qdq * qdq, int id, const float * data, int64_t n,
                                   int64_t c, int64_t hw, int64_t batch_stride, float * scratch)
{
    const float * x = data;
    int copied = 0;
    struct q7_quantizer * q = NULL;
    for (int i = q7_qdq_next_reader(qdq, id, id + 1, &q); i >= 0;
         i = q7_qdq_next_reader(qdq, id, i + 1, &q)) {
        if (batch_stride != c * hw && !copied) { /* a channel slice: make it contiguous */
            for (int64_t b = 0; b < n; b++)
                memcpy(scratch + b * c * hw, data + b * batch_stride,
                       (size_t)(c * hw) * sizeof(float));
            x = scratch;
            copied = 1;
        }
        enum q7_status st = q7_quant_collect(q, x, 1, n * c * hw);
        if (st)
            return q7_error_wrap(st, "%s", q->name);
    }
    return Q7_OK;
}

enum q7_status q7_qdq_compute_amax(struct q7_qdq * qdq, enum q7_calib_method method,
                                   const struct q7_amax_params * p)
{
    for (int i = 0; i < qdq->g->n_nodes; i++) {
        struct q7_quantizer * q = qdq->g->nodes[i]->in_quant;
        if (!q)
            continue;
        enum q7_status st = q7_quant_load_calib_amax(q, method, p);
        if (st)
            return q7_error_wrap(st, "%s", q->name);
    }
    /* shared scales (TRT placement): followers take their leader's amax */
    for (int k = 0; k < qdq->n; k++) {
        int l = qdq->leader[k];
        if (l >= 0 && qdq->q[l]->n_amax == 1) {
            enum q7_status st = q7_quant_set_amax(qdq->q[k], qdq->q[l]->amax, 1);
            if (st)
                return st;
        }
    }
    return Q7_OK;
}

enum q7_status q7_qdq_compute_amax_named(struct q7_qdq * qdq, const char * method,
                                         double * seconds)
{
    double t0 = q7_time_now();
    enum q7_calib_method m;
    struct q7_amax_params ap = q7_amax_params_default();
    double pct = ap.percentile;
    enum q7_status st = q7_calib_method_parse(method, &m, &pct);
    if (st)
        return st;
    ap.percentile = pct;
    st = q7_qdq_compute_amax(qdq, m, &ap);
    if (seconds)
        *seconds = q7_time_now() - t0;
    return st;
}

enum q7_status q7_qdq_set_enabled(struct q7_qdq * qdq, const char * regex, int enabled,
                                  int * n_matched)
{
    if (!regex) {
        for (int k = 0; k < qdq->n; k++)
            q7_quant_set_enabled(qdq->q[k], enabled);
        if (n_matched)
            *n_matched = qdq->n;
        return Q7_OK;
    }
    return q7_quant_set_enabled_matching(qdq->q, qdq->n, regex, enabled, n_matched);
}
