/* q7 export: the graph as JSON (nodes, parameters) plus its FP32 weights as one binary file,
 * for other tools (tools/bench_torch.py rebuilds the network from it in PyTorch). */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

struct blob {
    FILE * f;
    size_t offset;
};

static cJSON * tensor_json(struct blob * b, const struct q7_tensor * t)
{
    cJSON * o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name ? t->name : "");
    cJSON * shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->ndim; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    size_t n = (size_t)q7_tensor_numel(t);
    cJSON_AddNumberToObject(o, "offset", (double)b->offset);
    cJSON_AddNumberToObject(o, "count", (double)n);
    if (t->data && fwrite(t->data, sizeof(float), n, b->f) != n)
        return NULL;
    b->offset += n * sizeof(float);
    return o;
}

static void add_pair(cJSON * o, const char * key, int a, int b)
{
    cJSON * arr = cJSON_AddArrayToObject(o, key);
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(a));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(b));
}

static void add_act(cJSON * o, struct q7_act_params a)
{
    cJSON_AddStringToObject(o, "act", q7_act_name(a.kind));
    if (a.kind == Q7_ACT_LEAKY_RELU)
        cJSON_AddNumberToObject(o, "slope", a.slope);
}

static cJSON * node_json(struct blob * b, const struct q7_node * nd)
{
    cJSON * o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", nd->id);
    cJSON_AddStringToObject(o, "op", q7_op_name(nd->op));
    cJSON_AddStringToObject(o, "name", nd->name);
    cJSON_AddNumberToObject(o, "layer", nd->layer);
    cJSON * in = cJSON_AddArrayToObject(o, "inputs");
    for (int k = 0; k < nd->n_inputs; k++)
        cJSON_AddItemToArray(in, cJSON_CreateNumber(nd->inputs[k]));
    switch (nd->op) {
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        add_pair(o, "kernel", p->kh, p->kw);
        add_pair(o, "stride", p->stride_h, p->stride_w);
        add_pair(o, "padding", p->pad_h, p->pad_w);
        add_pair(o, "dilation", p->dil_h, p->dil_w);
        cJSON_AddNumberToObject(o, "groups", p->groups);
        add_act(o, p->act);
        break;
    }
    case Q7_OP_BATCHNORM:
        cJSON_AddNumberToObject(o, "eps", nd->p.bn.eps);
        break;
    case Q7_OP_ACT:
        add_act(o, nd->p.act);
        break;
    case Q7_OP_MAXPOOL:
        add_pair(o, "kernel", nd->p.pool.kh, nd->p.pool.kw);
        add_pair(o, "stride", nd->p.pool.stride_h, nd->p.pool.stride_w);
        add_pair(o, "padding", nd->p.pool.pad_h, nd->p.pool.pad_w);
        cJSON_AddBoolToObject(o, "ceil_mode", nd->p.pool.ceil_mode);
        break;
    case Q7_OP_UPSAMPLE:
        cJSON_AddNumberToObject(o, "scale", nd->p.upsample.scale);
        break;
    case Q7_OP_DETECT: {
        const struct q7_detect_params * p = &nd->p.detect;
        cJSON_AddNumberToObject(o, "nc", p->nc);
        cJSON_AddNumberToObject(o, "na", p->na);
        cJSON * st = cJSON_AddArrayToObject(o, "stride");
        cJSON * ag = cJSON_AddArrayToObject(o, "anchor_grid");
        for (int l = 0; l < p->nl; l++) {
            cJSON_AddItemToArray(st, cJSON_CreateNumber(p->stride[l]));
            cJSON * lv = cJSON_CreateArray();
            for (int a = 0; a < p->na; a++) {
                cJSON_AddItemToArray(lv, cJSON_CreateNumber(p->anchor_grid[l][a][0]));
                cJSON_AddItemToArray(lv, cJSON_CreateNumber(p->anchor_grid[l][a][1]));
            }
            cJSON_AddItemToArray(ag, lv);
        }
        break;
    }
    default:
        break;
    }
    static const char * const roles[Q7_W_COUNT] = {"weight", "bias", "running_mean",
                                                   "running_var"};
    cJSON * w = NULL;
    for (int r = 0; r < Q7_W_COUNT; r++) {
        if (!nd->w[r])
            continue;
        if (!w)
            w = cJSON_AddObjectToObject(o, "weights");
        cJSON * t = tensor_json(b, nd->w[r]);
        if (!t) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddItemToObject(w, roles[r], t);
    }
    return o;
}

static int has_suffix(const char * s, const char * suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ONNX: the (fused) graph, with Q/DQ pairs where an amax table gives them. */
static enum q7_status export_onnx(struct q7_model * m, int img, const char * amax,
                                  const char * method, const char * output)
{
    struct q7_graph * g = m->graph;
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * table = NULL;
    struct q7_onnx_quant * quant = NULL;
    enum q7_status st = Q7_OK;
    if (amax) {
        int missing = 0;
        quant = calloc((size_t)g->n_nodes, sizeof *quant);
        if (!quant)
            return q7_error_set(Q7_ERR_OOM, "out of memory");
        if ((st = q7_amax_table_load(amax, method, &table)) ||
            (st = q7_qdq_insert(g, Q7_QDQ_SEED, &qdq)) ||
            (st = q7_amax_table_apply(table, qdq->q, qdq->n, &missing)))
            goto done;
        for (int i = 0; i < g->n_nodes; i++) {
            const struct q7_node * nd = g->nodes[i];
            if (q7_quant_is_active(nd->in_quant))
                quant[i].in_amax = nd->in_quant->amax[0];
            if (q7_quant_is_active(nd->w_quant)) {
                quant[i].w_amax = nd->w_quant->amax;
                quant[i].n_w = nd->w_quant->n_amax;
            }
        }
    }
    int size = img > 0 ? img : g->img_size;
    st = q7_onnx_export(g, size, size, quant, output);
    if (!st)
        printf("q7 export: %s (ONNX opset 13, %dx%d input, batch dynamic%s)\n", output, size, size,
               amax ? ", QuantizeLinear/DequantizeLinear from the amax table" : "");
done:
    free(quant);
    q7_amax_table_free(table);
    q7_qdq_free(qdq);
    return st;
}

int cmd_export(int argc, char ** argv)
{
    const char * weights = NULL, * output = NULL, * amax = NULL, * method = NULL;
    int fused = 0, help = 0, img = 0;
    const struct cli_opt opts[] = {
        {"--weights", CLI_STR, &weights, "checkpoint (.pt) or yaml config"},
        {"--fused", CLI_FLAG, &fused, "export the fused graph (Conv+BN, RepConv, IDetect)"},
        {"-o", CLI_STR, &output, "model.onnx (ONNX), or graph.json (q7's JSON + .bin weights)"},
        {"--img", CLI_INT, &img, "ONNX input size (default: the model's, 640 or 1280)"},
        {"--amax", CLI_STR, &amax, "ONNX: fake INT8 as Q/DQ pairs from this amax table (fused)"},
        {"--method", CLI_STR, &method, "the method to take from a per-method --amax file"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("export", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !weights || !output || n_pos) {
        cli_usage(help ? stdout : stderr, "export",
                  "--weights W -o model.onnx|graph.json [options]", opts, n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    enum q7_status st = q7_model_load(weights, NULL, &m);
    if (st || ((fused || amax) && (st = q7_model_fuse(m))))
        goto fail;
    if (has_suffix(output, ".onnx")) {
        if ((st = export_onnx(m, img, amax, method, output)))
            goto fail;
        q7_model_free(m);
        return 0;
    }
    size_t n = strlen(output);
    char * bin = malloc(n + 5), * tmp = malloc(n + 9);
    if (!bin || !tmp) {
        free(bin);
        free(tmp);
        st = q7_error_set(Q7_ERR_OOM, "out of memory");
        goto fail;
    }
    snprintf(bin, n + 5, "%s.bin", output);
    snprintf(tmp, n + 9, "%s.bin.tmp", output);
    struct blob b = {fopen(tmp, "wb"), 0};
    if (!b.f) {
        st = q7_error_set(Q7_ERR_IO, "%s: cannot create", tmp);
        free(bin);
        free(tmp);
        goto fail;
    }
    struct q7_graph * g = m->graph;
    cJSON * root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "q7-graph-1");
    cJSON_AddStringToObject(root, "source", weights);
    const char * slash = strrchr(bin, '/');
    cJSON_AddStringToObject(root, "weights_file", slash ? slash + 1 : bin);
    cJSON_AddNumberToObject(root, "input", g->input);
    cJSON_AddNumberToObject(root, "output", g->output);
    cJSON_AddNumberToObject(root, "img_size", g->img_size);
    cJSON * nodes = cJSON_AddArrayToObject(root, "nodes");
    for (int i = 0; i < g->n_nodes && !st; i++) {
        cJSON * o = node_json(&b, g->nodes[i]);
        if (!o)
            st = q7_error_set(Q7_ERR_IO, "%s: write failed", tmp);
        else
            cJSON_AddItemToArray(nodes, o);
    }
    if (fclose(b.f) != 0 && !st)
        st = q7_error_set(Q7_ERR_IO, "%s: write failed", tmp);
    if (!st && rename(tmp, bin) != 0)
        st = q7_error_set(Q7_ERR_IO, "%s: cannot rename to %s", tmp, bin);
    if (!st)
        st = cli_write_json(output, root);
    if (st)
        remove(tmp);
    else
        printf("q7 export: %d nodes to %s, %.1f MiB of weights to %s\n", g->n_nodes, output,
               (double)b.offset / 1048576.0, bin);
    cJSON_Delete(root);
    free(bin);
    free(tmp);
    if (st)
        goto fail;
    q7_model_free(m);
    return 0;
fail:
    q7_model_free(m);
    return cli_fail("export", st);
}
