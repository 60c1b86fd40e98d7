/* q7 info: layer table, parameters and GFLOPs of a checkpoint or yaml config. */
#include "tools/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct tensor_list {
    cJSON * arr;
    enum q7_status st;
};

static enum q7_status add_py_tensor(void * user, const char * name, const struct q7_py * t,
                                    int is_buffer)
{
    (void)is_buffer;
    struct tensor_list * tl = user;
    double sum = 0.0, abs_sum = 0.0;
    enum q7_status st = q7_py_tensor_sums(t, &sum, &abs_sum);
    if (st)
        return st;
    cJSON * o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "dtype", q7_dtype_name(t->v.tensor.storage->v.storage.dtype));
    cJSON * shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->v.tensor.ndim; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->v.tensor.shape[d]));
    cJSON_AddNumberToObject(o, "sum", sum);
    cJSON_AddNumberToObject(o, "abs_sum", abs_sum);
    cJSON_AddItemToArray(tl->arr, o);
    return Q7_OK;
}

static void add_graph_tensor(cJSON * arr, const struct q7_tensor * t)
{
    double sum = 0.0, abs_sum = 0.0;
    const float * v = t->data;
    int64_t n = q7_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        sum += v[i];
        abs_sum += fabs((double)v[i]);
    }
    cJSON * o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name ? t->name : "");
    cJSON_AddStringToObject(o, "dtype", q7_dtype_name(t->dtype));
    cJSON * shape = cJSON_AddArrayToObject(o, "shape");
    for (int d = 0; d < t->ndim; d++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
    cJSON_AddNumberToObject(o, "sum", sum);
    cJSON_AddNumberToObject(o, "abs_sum", abs_sum);
    cJSON_AddItemToArray(arr, o);
}

/* Parameters of layer `i` in the (possibly fused) graph; yolov7 keeps IDetect's implicit
 * modules after fuse(), so they stay counted on the detect layer. */
static int64_t layer_params(const struct q7_graph * g, int i, int fused)
{
    if (!fused)
        return g->layers[i].params;
    int64_t total = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const struct q7_node * nd = g->nodes[k];
        if (nd->layer != i)
            continue;
        for (int r = 0; r < Q7_W_COUNT; r++)
            if (nd->w[r] && r != Q7_W_MEAN && r != Q7_W_VAR)
                total += q7_tensor_numel(nd->w[r]);
    }
    if (g->nodes[g->layers[i].out_node]->op == Q7_OP_DETECT)
        total += g->folded_params;
    return total;
}

static void format_from(const struct q7_layer * L, char * buf, size_t size)
{
    if (L->n_from == 1) {
        snprintf(buf, size, "%d", L->from[0]);
        return;
    }
    size_t pos = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < L->n_from && pos < size; k++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%d", k ? ", " : "", L->from[k]);
    if (pos < size)
        snprintf(buf + pos, size - pos, "]");
}

int cmd_info(int argc, char ** argv)
{
    int fused = 0, img = 0, help = 0, graph_dump = 0;
    const char * json = NULL;
    const struct cli_opt opts[] = {
        {"--fused", CLI_FLAG, &fused, "show the model after Conv+BN / RepConv / IDetect fusion"},
        {"--img", CLI_INT, &img, "input size for GFLOPs (default: 640, 1280 for P6 models)"},
        {"--json", CLI_STR, &json, "also write params, GFLOPs, layers and tensors as JSON"},
        {"--graph", CLI_FLAG, &graph_dump, "print every node of the graph"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("info", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || n_pos != 1) {
        cli_usage(help ? stdout : stderr, "info", "<model.pt | cfg.yaml> [options]", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    struct q7_model_params mp = q7_model_params_default();
    mp.shapes_only = !json && !fused; /* a table needs no weights; sums and folds do */
    enum q7_status st = q7_model_load(pos[0], &mp, &m);
    if (st)
        return cli_fail("info", st);
    if (fused && (st = q7_model_fuse(m))) {
        q7_model_free(m);
        return cli_fail("info", st);
    }
    struct q7_graph * g = m->graph;
    int size = img > 0 ? img : g->img_size;
    double gflops = q7_graph_gflops(g, size);
    if (gflops < 0) {
        st = Q7_ERR_ARG;
        q7_model_free(m);
        return cli_fail("info", st);
    }
    int64_t params = 0;
    printf("%3s %18s %3s %10s  %-28s %s\n", "", "from", "n", "params", "module", "arguments");
    for (int i = 0; i < g->n_layers; i++) {
        const struct q7_layer * L = &g->layers[i];
        char from[128];
        format_from(L, from, sizeof from);
        int64_t p = layer_params(g, i, fused);
        params += p;
        printf("%3d %18s %3d %10lld  %-28s %s\n", i, from, L->n, (long long)p, L->type, L->args);
    }
    int convs = 0;
    for (int k = 0; k < g->n_nodes; k++)
        convs += g->nodes[k]->op == Q7_OP_CONV2D && !g->nodes[k]->dead;
    printf("Model Summary: %d layers, %lld parameters, %d convolutions, %.1f GFLOPs at %dx%d%s\n",
           g->n_layers, (long long)params, convs, gflops, size, size, fused ? " (fused)" : "");
    if (graph_dump)
        q7_graph_print(g, stdout);
    int rc = 0;
    if (json) {
        cJSON * root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "source", m->path);
        cJSON_AddBoolToObject(root, "fused", fused);
        cJSON_AddNumberToObject(root, "params", (double)params);
        cJSON_AddNumberToObject(root, "gflops", gflops);
        cJSON_AddNumberToObject(root, "img_size", size);
        cJSON_AddNumberToObject(root, "top_level_layers", g->n_layers);
        cJSON_AddNumberToObject(root, "conv_layers", convs);
        cJSON * layers = cJSON_AddArrayToObject(root, "layers");
        for (int i = 0; i < g->n_layers; i++) {
            const struct q7_layer * L = &g->layers[i];
            cJSON * o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "i", i);
            if (L->n_from == 1) {
                cJSON_AddNumberToObject(o, "from", L->from[0]);
            } else {
                cJSON * f = cJSON_AddArrayToObject(o, "from");
                for (int k = 0; k < L->n_from; k++)
                    cJSON_AddItemToArray(f, cJSON_CreateNumber(L->from[k]));
            }
            cJSON_AddNumberToObject(o, "n", L->n);
            cJSON_AddNumberToObject(o, "params", (double)layer_params(g, i, fused));
            cJSON_AddStringToObject(o, "type", L->type);
            cJSON_AddStringToObject(o, "args", L->args);
            cJSON_AddItemToArray(layers, o);
        }
        cJSON * tensors = cJSON_AddArrayToObject(root, "tensors");
        if (!fused) {
            struct tensor_list tl = {tensors, Q7_OK};
            st = q7_model_state_dict(m, add_py_tensor, &tl);
        } else {
            for (int k = 0; k < g->n_nodes; k++)
                for (int r = 0; r < Q7_W_COUNT; r++)
                    if (g->nodes[k]->w[r])
                        add_graph_tensor(tensors, g->nodes[k]->w[r]);
        }
        if (!st)
            st = cli_write_json(json, root);
        cJSON_Delete(root);
        if (st)
            rc = cli_fail("info", st);
    }
    q7_model_free(m);
    return rc;
}
