/* q7 sens: per-layer quantization sensitivity, on the CPU or CUDA. Each conv's quantizers are
 * enabled alone (or disabled alone) and the network output is compared with the FP32 fused
 * model on the calibration images: SQNR and cosine similarity, optionally mAP; sorted most
 * harmful first. */
#include "tools/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sens_row {
    int node;
    double sqnr_db, cosine, map50, map;
};

static int by_sqnr(const void * a, const void * b)
{
    double x = ((const struct sens_row *)a)->sqnr_db, y = ((const struct sens_row *)b)->sqnr_db;
    return (x > y) - (x < y);
}

/* The raw outputs of every calibration batch (FP32 reference or quantized). */
struct batches {
    int n;
    uint8_t ** x;
    int64_t * shape; /* n x (N, H, W) */
    float ** ref;
    int64_t * count;
};

static void batches_free(struct batches * b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->x[i]);
        free(b->ref[i]);
    }
    free(b->x);
    free(b->shape);
    free(b->ref);
    free(b->count);
}

static enum q7_status collect_batches(const struct q7_dataset * ds,
                                      const struct q7_eval_params * ep, int stride,
                                      int max_batches, struct batches * out)
{
    memset(out, 0, sizeof *out);
    const char ** paths = malloc((size_t)ds->n * sizeof *paths);
    if (!paths)
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    for (int i = 0; i < ds->n; i++)
        paths[i] = ds->items[i].path;
    struct q7_loader_params lp = q7_eval_loader_params(ep, stride);
    struct q7_loader * ld = NULL;
    enum q7_status st = q7_loader_create(paths, ds->n, &lp, &ld);
    int cap = 0;
    if (!st) {
        cap = q7_loader_plan(ld)->n_batches;
        if (max_batches > 0 && max_batches < cap)
            cap = max_batches;
        out->x = calloc((size_t)cap, sizeof *out->x);
        out->ref = calloc((size_t)cap, sizeof *out->ref);
        out->shape = calloc((size_t)cap * 3, sizeof *out->shape);
        out->count = calloc((size_t)cap, sizeof *out->count);
        if (!out->x || !out->ref || !out->shape || !out->count)
            st = q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    while (!st && out->n < cap) {
        struct q7_batch * b = NULL;
        if ((st = q7_loader_next(ld, &b)) || !b)
            break;
        if (b->n > 0) {
            size_t bytes = (size_t)(b->n * 3 * b->h * b->w);
            out->x[out->n] = malloc(bytes);
            if (!out->x[out->n]) {
                st = q7_error_set(Q7_ERR_OOM, "out of memory");
            } else {
                memcpy(out->x[out->n], b->data, bytes);
                out->shape[3 * out->n] = b->n;
                out->shape[3 * out->n + 1] = b->h;
                out->shape[3 * out->n + 2] = b->w;
                out->n++;
            }
        }
        q7_loader_release(ld, b);
    }
    q7_loader_free(ld);
    free(paths);
    return st;
}

/* Runs every batch; with `ref` NULL stores the outputs as the reference, else accumulates
 * the signal and noise energies and the cosine against it. */
static enum q7_status run_all(const struct q7_runner * net, struct batches * b, int store,
                              double * sqnr, double * cosine)
{
    double sig = 0, noise = 0, dot = 0, nq = 0;
    for (int i = 0; i < b->n; i++) {
        int64_t n = b->shape[3 * i], h = b->shape[3 * i + 1], w = b->shape[3 * i + 2], rows, no;
        enum q7_status st = net->rows(net->ctx, n, h, w, &rows, &no);
        if (st)
            return st;
        int64_t count = n * rows * no;
        float * out = malloc((size_t)count * sizeof(float));
        if (!out)
            return q7_error_set(Q7_ERR_OOM, "out of memory");
        if ((st = net->run_u8(net->ctx, b->x[i], n, h, w, out))) {
            free(out);
            return st;
        }
        if (store) {
            free(b->ref[i]);
            b->ref[i] = out;
            b->count[i] = count;
            continue;
        }
        const float * r = b->ref[i];
        for (int64_t k = 0; k < count; k++) {
            double d = (double)out[k] - r[k];
            sig += (double)r[k] * r[k];
            noise += d * d;
            dot += (double)out[k] * r[k];
            nq += (double)out[k] * out[k];
        }
        free(out);
    }
    if (!store) {
        *sqnr = noise > 0 ? 10.0 * log10(sig / noise) : INFINITY;
        *cosine = sig > 0 && nq > 0 ? dot / sqrt(sig * nq) : 1.0;
    }
    return Q7_OK;
}

int cmd_sens(int argc, char ** argv)
{
    struct cli_eval_opts o = CLI_EVAL_OPTS_DEFAULT;
    const char * method = "mse", * json = NULL, * amax = NULL;
    int batches = 2, except = 0, with_map = 0, help = 0, top = 20;
    const struct cli_opt opts[] = {
        CLI_EVAL_OPTIONS(o),
        {"--method", CLI_STR, &method, "amax method after calibration (default mse)"},
        {"--amax", CLI_STR, &amax, "use this amax table instead of calibrating"},
        {"--calib-batches", CLI_INT, &batches, "batches of --data used (default 2; 0: all)"},
        {"--except", CLI_FLAG, &except, "disable one conv's quantizers at a time (all others "
                                        "on) instead of enabling one at a time"},
        {"--map", CLI_FLAG, &with_map, "also evaluate mAP on --data for every layer (slow)"},
        {"--top", CLI_INT, &top, "rows shown (default 20; 0: all)"},
        {"--json", CLI_STR, &json, "write every row as JSON"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("sens", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !o.weights || !o.data || n_pos || !cli_eval_options_ok(&o)) {
        cli_usage(help ? stdout : stderr, "sens", "--weights W --data D [options]", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    struct cli_net cn = {0};
    struct q7_dataset * ds = NULL;
    struct q7_coco_gt * gt = NULL;
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * table = NULL;
    struct batches b = {0};
    struct sens_row * rows = NULL;
    enum q7_decoder dec = Q7_DECODER_AUTO;
    enum q7_qdq_mode qmode = Q7_QDQ_SEED;
    int rc = 1, n_rows = 0;
    enum q7_status st = cli_parse_decoder(o.decoder, &dec);
    if (!st)
        st = q7_qdq_mode_parse(o.qdq, &qmode);
    if (st || (st = cli_load_model(&o, &m)) || (st = q7_model_fuse(m)) ||
        (st = cli_load_dataset(&o, m->graph->nc, &ds, &gt)))
        goto done;
    struct q7_graph * g = m->graph;
    struct q7_eval_params ep = cli_eval_params(&o, dec, gt);
    ep.progress = 0;
    /* quantizers first (all off while the FP32 reference runs), then the network */
    if ((st = q7_qdq_insert(g, qmode, &qdq)) || (st = q7_qdq_set_enabled(qdq, NULL, 0, NULL)) ||
        (st = cli_net_create(g, o.device, o.fp16, o.threads, &cn)))
        goto done;
    struct q7_runner net = cli_net_runner(&cn);
    if ((st = collect_batches(ds, &ep, g->stride_max, batches, &b)) ||
        (st = run_all(&net, &b, 1, NULL, NULL)) || (st = q7_qdq_set_enabled(qdq, NULL, 1, NULL)))
        goto done;
    if (amax) {
        if ((st = q7_amax_table_load(amax, method, &table)) ||
            (st = q7_amax_table_apply(table, qdq->q, qdq->n, NULL)))
            goto done;
    } else if ((st = cli_net_calibrate(&cn, qdq, ds, &ep, batches, NULL)) ||
               (st = cli_net_apply_method(&cn, qdq, method, NULL))) {
        goto done;
    }
    rows = calloc((size_t)g->n_nodes, sizeof *rows);
    if (!rows) {
        st = q7_error_set(Q7_ERR_OOM, "out of memory");
        goto done;
    }
    double all_sqnr = 0, all_cos = 0;
    q7_qdq_set_enabled(qdq, NULL, 1, NULL);
    if ((st = cli_net_refresh(&cn)) || (st = run_all(&net, &b, 0, &all_sqnr, &all_cos)))
        goto done;
    fprintf(stderr, "q7 sens: %d convs, %s amax, %d batches; all quantized: SQNR %.2f dB, "
                    "cosine %.6f\n",
            qdq->n / 2, amax ? amax : method, b.n, all_sqnr, all_cos);
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (!nd->in_quant || nd->op != Q7_OP_CONV2D)
            continue;
        q7_qdq_set_enabled(qdq, NULL, except, NULL);
        q7_quant_set_enabled(nd->in_quant, !except);
        q7_quant_set_enabled(nd->w_quant, !except);
        struct sens_row * r = &rows[n_rows++];
        r->node = i;
        r->map50 = r->map = -1;
        if ((st = cli_net_refresh(&cn)) || (st = run_all(&net, &b, 0, &r->sqnr_db, &r->cosine)))
            goto done;
        if (with_map) {
            struct q7_eval_result er = {0};
            if ((st = q7_evaluate(&net, ds, &ep, &er)))
                goto done;
            r->map50 = er.metric.map50;
            r->map = er.metric.map;
            q7_eval_result_free(&er);
        }
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "\r  %d/%d convs", n_rows, qdq->n / 2);
    }
    fprintf(stderr, "\n");
    /* --except: the layer whose removal helps most has the highest SQNR: most harmful last */
    qsort(rows, (size_t)n_rows, sizeof *rows, by_sqnr);
    printf("%-4s %-36s %10s %10s%s\n", "rank", except ? "conv kept in FP32" : "conv quantized alone",
           "SQNR(dB)", "cosine", with_map ? "    mAP@.5  mAP@.5:.95" : "");
    int shown = top > 0 && top < n_rows ? top : n_rows;
    for (int k = 0; k < shown; k++) {
        const struct sens_row * r = except ? &rows[n_rows - 1 - k] : &rows[k];
        printf("%-4d %-36s %10.2f %10.6f", k + 1, g->nodes[r->node]->name, r->sqnr_db, r->cosine);
        if (with_map)
            printf("  %9.4f %11.4f", r->map50, r->map);
        printf("\n");
    }
    if (json) {
        cJSON * root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "mode", except ? "disable-one" : "enable-one");
        cJSON_AddNumberToObject(root, "all_quantized_sqnr_db", all_sqnr);
        cJSON_AddNumberToObject(root, "all_quantized_cosine", all_cos);
        cJSON * arr = cJSON_AddArrayToObject(root, "layers");
        for (int k = 0; k < n_rows; k++) {
            cJSON * x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "conv", g->nodes[rows[k].node]->name);
            cJSON_AddNumberToObject(x, "layer", g->nodes[rows[k].node]->layer);
            cJSON_AddNumberToObject(x, "sqnr_db", rows[k].sqnr_db);
            cJSON_AddNumberToObject(x, "cosine", rows[k].cosine);
            if (with_map) {
                cJSON_AddNumberToObject(x, "mAP50", rows[k].map50);
                cJSON_AddNumberToObject(x, "mAP50_95", rows[k].map);
            }
            cJSON_AddItemToArray(arr, x);
        }
        st = cli_write_json(json, root);
        cJSON_Delete(root);
        if (st)
            goto done;
    }
    rc = 0;
done:
    if (rc)
        cli_fail("sens", st);
    free(rows);
    batches_free(&b);
    q7_amax_table_free(table);
    cli_net_free(&cn);
    q7_qdq_free(qdq);
    q7_coco_gt_free(gt);
    q7_dataset_free(ds);
    q7_model_free(m);
    return rc;
}
