/* q7 run: raw head output of a network on an already preprocessed .npy input. */
#include "tools/cli.h"

#include "models/npy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


#define DUMP_FIRST 8

struct layer_dump {
    const struct q7_graph * g;
    cJSON * layers;      /* --dump-layers, or NULL */
    const char * dir;    /* --dump-tensors, or NULL */
    enum q7_status err;  /* the first failed write */
    int * layer_of_node; /* node id -> top-level layer whose output it is, or -1 */
};

/* A top-level layer's whole output (every image of the batch) as DIR/layer_<i>.npy, float32
 * N x C x H x W. */
static void dump_tensor(struct layer_dump * d, int layer, const struct q7_view * v)
{
    if (d->err)
        return;
    const int64_t chw = v->c * v->h * v->w;
    /* a channel slice of a larger tensor (a concat input) is gathered first */
    float * buf = NULL;
    if (v->n > 1 && v->batch_stride != chw) {
        buf = malloc((size_t)(v->n * chw) * sizeof(float));
        if (!buf) {
            d->err = q7_error_set(Q7_ERR_OOM, "--dump-tensors: out of memory");
            return;
        }
        for (int64_t i = 0; i < v->n; i++)
            memcpy(buf + i * chw, v->data + i * v->batch_stride, (size_t)chw * sizeof(float));
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/layer_%d.npy", d->dir, layer);
    const int64_t shape[4] = {v->n, v->c, v->h, v->w};
    d->err = q7_npy_save(path, Q7_DTYPE_F32, 4, shape, buf ? buf : v->data);
    free(buf);
}

/* Statistics of image 0 of a top-level layer's output, as ref/layers_origin.json, plus the
 * largest magnitude; and/or the output itself. */
static void dump_hook(void * user, const struct q7_node * nd, const struct q7_view * v)
{
    struct layer_dump * d = user;
    int layer = d->layer_of_node[nd->id];
    if (layer < 0)
        return;
    if (d->dir)
        dump_tensor(d, layer, v);
    if (!d->layers)
        return;
    double sum = 0.0, abs_sum = 0.0, sq = 0.0, abs_max = 0.0;
    int64_t hw = v->h * v->w;
    cJSON * first = cJSON_CreateArray();
    for (int64_t c = 0; c < v->c; c++) {
        const float * p = v->data + c * hw;
        for (int64_t i = 0; i < hw; i++) {
            double x = p[i];
            sum += x;
            abs_sum += fabs(x);
            abs_max = fabs(x) > abs_max ? fabs(x) : abs_max;
            sq += x * x;
            if (c * hw + i < DUMP_FIRST)
                cJSON_AddItemToArray(first, cJSON_CreateNumber(x));
        }
    }
    cJSON * o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "layer", layer);
    cJSON_AddStringToObject(o, "type", d->g->layers[layer].type);
    cJSON * shape = cJSON_AddArrayToObject(o, "shape");
    int64_t dims[4] = {1, v->c, v->h, v->w};
    for (int k = 0; k < 4; k++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)dims[k]));
    cJSON_AddNumberToObject(o, "sum", sum);
    cJSON_AddNumberToObject(o, "abs_sum", abs_sum);
    cJSON_AddNumberToObject(o, "l2", sqrt(sq));
    cJSON_AddNumberToObject(o, "abs_max", abs_max); /* what a max calibrator would see */
    cJSON_AddItemToObject(o, "first8", first);
    cJSON_AddItemToArray(d->layers, o);
}

static enum q7_status dump_hook_cuda(void * user, struct q7_cuda_exec * e,
                                     const struct q7_node * nd, const struct q7_cuda_view * dev,
                                     const struct q7_view * host)
{
    (void)e;
    (void)dev;
    if (host)
        dump_hook(user, nd, host);
    return Q7_OK;
}

int cmd_run(int argc, char ** argv)
{
    const char * weights = NULL, * input = NULL, * output = NULL, * dump = NULL, * cfg = NULL;
    const char * device = NULL, * amax = NULL, * method = NULL, * tensors = NULL;
    int fused = 0, threads = 0, ref = 0, help = 0, fp16 = 0;
    const struct cli_opt opts[] = {
        {"--weights", CLI_STR, &weights, "checkpoint (.pt) or yaml config"},
        {"--cfg", CLI_STR, &cfg, "yaml config for a bare state_dict checkpoint"},
        {"--input", CLI_STR, &input, "preprocessed input .npy: uint8 CHW or NCHW (RGB, "
                                     "letterboxed), or float32 already divided by 255"},
        {"--output", CLI_STR, &output, "raw head output .npy (rows x 85, or N x rows x 85)"},
        {"--fused", CLI_FLAG, &fused, "fuse Conv+BN, RepConv and IDetect first"},
        {"--dump-layers", CLI_STR, &dump, "per top-level layer statistics of image 0 (JSON)"},
        {"--dump-tensors", CLI_STR, &tensors, "write every top-level layer's output into this "
                                              "(existing) folder: layer_<i>.npy, float32 NCHW"},
        {"--threads", CLI_INT, &threads, "CPU threads (default: all cores)"},
        {"--ref", CLI_FLAG, &ref, "use the scalar reference kernels (slow)"},
        {"--amax", CLI_STR, &amax, "fake INT8: QDQ on the fused model with this amax table"},
        {"--method", CLI_STR, &method, "the method to take from a per-method --amax file"},
        {"--device", CLI_STR, &device, "cpu (default) or cuda"},
        {"--fp16", CLI_FLAG, &fp16, "FP16 activations and tensor-core GEMMs (cuda)"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("run", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !weights || !input || n_pos) {
        cli_usage(help ? stdout : stderr, "run",
                  "--weights W --input X.npy [--output Y.npy] [options]", opts, n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    struct q7_exec * e = NULL;
    struct cli_net net = {0};
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * table = NULL;
    struct q7_npy x = {0};
    float * out = NULL;
    int * layer_of_node = NULL;
    cJSON * dump_root = NULL;
    int rc = 1;
    enum q7_status st = q7_npy_load(input, &x);
    if (st)
        goto done;
    int batched = x.ndim == 4;
    if ((x.ndim != 3 && x.ndim != 4) || x.shape[batched] != 3 ||
        (x.dtype != Q7_DTYPE_U8 && x.dtype != Q7_DTYPE_F32)) {
        st = q7_error_set(Q7_ERR_ARG, "%s: expected a uint8 or float32 array of shape 3xHxW or "
                                      "Nx3xHxW", input);
        goto done;
    }
    int64_t n = batched ? x.shape[0] : 1, h = x.shape[batched + 1], w = x.shape[batched + 2];
    struct q7_model_params mp = q7_model_params_default();
    mp.cfg = cfg;
    if ((st = q7_model_load(weights, &mp, &m)) || ((fused || amax) && (st = q7_model_fuse(m))))
        goto done;
    if (amax && ((st = q7_amax_table_load(amax, method, &table)) ||
                 (st = q7_qdq_insert(m->graph, Q7_QDQ_SEED, &qdq)) ||
                 (st = q7_amax_table_apply(table, qdq->q, qdq->n, NULL))))
        goto done;
    if (device && strcmp(device, "cpu") != 0) {
        if ((st = cli_net_create(m->graph, device, fp16, threads, &net)) ||
            (st = cli_net_refresh(&net)))
            goto done;
    } else {
        struct q7_exec_params ep = q7_exec_params_default();
        ep.threads = threads;
        ep.use_ref = ref;
        if ((st = q7_exec_create(m->graph, &ep, &e)))
            goto done;
    }
    int64_t rows, no;
    if ((st = e ? q7_exec_output_rows(e, n, h, w, &rows, &no)
                : q7_cuda_exec_output_rows(net.gpu, n, h, w, &rows, &no)))
        goto done;
    out = malloc((size_t)(n * rows * no) * sizeof(float));
    if (!out) {
        st = q7_error_set(Q7_ERR_OOM, "out of memory for the output");
        goto done;
    }
    struct layer_dump ld = {0};
    if (dump || tensors) {
        layer_of_node = malloc((size_t)m->graph->n_nodes * sizeof(int));
        if (!layer_of_node) {
            st = q7_error_set(Q7_ERR_OOM, "out of memory");
            goto done;
        }
        for (int i = 0; i < m->graph->n_nodes; i++)
            layer_of_node[i] = -1;
        for (int l = 0; l < m->graph->n_layers; l++) {
            int id = m->graph->layers[l].out_node;
            if (m->graph->nodes[id]->op != Q7_OP_DETECT)
                layer_of_node[id] = l;
        }
        if (dump) {
            dump_root = cJSON_CreateObject();
            cJSON_AddStringToObject(dump_root, "input", input);
            ld.layers = cJSON_AddArrayToObject(dump_root, "layers");
        }
        ld.g = m->graph;
        ld.dir = tensors;
        ld.layer_of_node = layer_of_node;
        if (e)
            q7_exec_set_hook(e, dump_hook, &ld);
        else
            q7_cuda_exec_set_hook(net.gpu, dump_hook_cuda, &ld, 1);
    }
    double t0 = q7_time_now();
    if (e)
        st = x.dtype == Q7_DTYPE_U8 ? q7_exec_run_u8(e, x.data, n, h, w, out)
                                    : q7_exec_run(e, x.data, n, h, w, out);
    else
        st = x.dtype == Q7_DTYPE_U8 ? q7_cuda_exec_run_u8(net.gpu, x.data, n, h, w, out)
                                    : q7_cuda_exec_run(net.gpu, x.data, n, h, w, out);
    double dt = q7_time_now() - t0;
    if (!st)
        st = ld.err;
    if (st)
        goto done;
    fprintf(stderr, "q7 run: %lld image%s %lldx%lld in %.1f ms, output %lld x %lld per image, "
                    "activations %.1f MiB (%.1f MiB unplanned)\n",
            (long long)n, n == 1 ? "" : "s", (long long)h, (long long)w, dt * 1e3,
            (long long)rows, (long long)no,
            (e ? q7_exec_peak_bytes(e) : q7_cuda_exec_arena_bytes(net.gpu)) / 1048576.0,
            e ? q7_exec_naive_bytes(e) / 1048576.0 : 0.0);
    if (output) {
        int64_t shape[3] = {n, rows, no};
        if ((st = batched ? q7_npy_save(output, Q7_DTYPE_F32, 3, shape, out)
                          : q7_npy_save(output, Q7_DTYPE_F32, 2, shape + 1, out)))
            goto done;
    }
    if (dump && (st = cli_write_json(dump, dump_root)))
        goto done;
    rc = 0;
done:
    if (rc)
        cli_fail("run", st);
    cJSON_Delete(dump_root);
    free(layer_of_node);
    free(out);
    q7_npy_free(&x);
    q7_exec_free(e);
    cli_net_free(&net);
    q7_qdq_free(qdq);
    q7_amax_table_free(table);
    q7_model_free(m);
    return rc;
}
