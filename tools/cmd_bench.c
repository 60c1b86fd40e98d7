/* q7 bench: per-layer time, GFLOP/s and share, whole-network images/s and peak memory; with
 * --amax the fake-INT8 network, and with --compare its time over FP32's measured in
 * alternating runs. On CUDA the timed runs take uint8 batches as eval does and run without
 * per-node events; the per-layer times come from separate profiled runs. */
#include "tools/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct layer_time {
    int layer;
    double seconds;
    double flops; /* 2 * MACs of the layer's convs for the whole batch */
    double bytes; /* activations read and written and weights read, at least once each */
};

static int by_time_desc(const void * a, const void * b)
{
    double x = ((const struct layer_time *)a)->seconds, y = ((const struct layer_time *)b)->seconds;
    return (x < y) - (x > y);
}

/* The bench's input: a letterbox-like batch in [0, 1] for the CPU, its bytes for CUDA. */
struct bench_input {
    const float * x;
    const uint8_t * x8;
};

/* Runs one batch on whichever executor is given and stores its wall time (and, on CUDA, the
 * network's GPU time without the transfers in *net_seconds when not NULL). */
static enum q7_status time_run(struct q7_exec * e, struct q7_cuda_exec * ce,
                               const struct bench_input * in, int batch, int size, float * out,
                               double * seconds, double * net_seconds)
{
    double t0 = q7_time_now();
    enum q7_status st = ce ? q7_cuda_exec_run_u8(ce, in->x8, batch, size, size, out)
                           : q7_exec_run(e, in->x, batch, size, size, out);
    *seconds = q7_time_now() - t0;
    if (net_seconds)
        *net_seconds = ce ? q7_cuda_exec_last_net_ms(ce) * 1e-3 : *seconds;
    return st;
}

/* The executor bench times: CPU (reference kernels with `ref`), or CUDA (per-node events with
 * `profile`); its fake quantization is the graph's quantizers as they are now. */
static enum q7_status create_exec(struct q7_graph * g, int cuda, int fp16, int threads, int ref,
                                  int profile, struct q7_exec ** e, struct q7_cuda_exec ** ce)
{
    if (cuda) {
        struct q7_cuda_params cp = q7_cuda_params_default();
        cp.fp16 = fp16;
        cp.profile = profile;
        enum q7_status st = q7_cuda_exec_create(g, &cp, ce);
        return st ? st : q7_cuda_exec_refresh_quant(*ce);
    }
    struct q7_exec_params ep = q7_exec_params_default();
    ep.threads = threads;
    ep.use_ref = ref;
    return q7_exec_create(g, &ep, e);
}

/* Sorts v (small n) and returns its median. */
static double median(double * v, int n)
{
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && v[b - 1] > v[b]; b--) {
            double t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    return v[n / 2];
}

static double conv_flops(const struct q7_node * nd)
{
    const struct q7_conv_params * p = &nd->p.conv;
    return 2.0 * (double)(p->in_ch / p->groups) * p->kh * p->kw *
           (double)q7_tensor_numel(&nd->out);
}

/* Bytes a node must move at least: its inputs and output once each (concat: none, its inputs
 * are written in place) and its weights, activations of act_size bytes. */
static double node_bytes(const struct q7_graph * g, const struct q7_node * nd, size_t act_size)
{
    if (nd->op == Q7_OP_CONCAT || nd->op == Q7_OP_INPUT)
        return 0.0;
    double n = (double)q7_tensor_numel(&nd->out);
    for (int k = 0; k < nd->n_inputs; k++)
        n += (double)q7_tensor_numel(&g->nodes[nd->inputs[k]]->out);
    double w = 0.0;
    for (int r = 0; r < Q7_W_COUNT; r++)
        if (nd->w[r])
            w += (double)q7_tensor_numel(nd->w[r]);
    return (n + w) * (double)act_size;
}

int cmd_bench(int argc, char ** argv)
{
    const char * weights = NULL, * cfg = NULL, * json = NULL;
    int batch = 1, threads = 0, img = 0, iters = 5, warmup = 1, unfused = 0, top = 15, help = 0;
    int ref = 0, fp16 = 0, compare = 0;
    const char * device = NULL, * amax = NULL, * method = NULL, * qdq_mode = NULL;
    const char * cpu_isa = NULL, * cpu_conv = NULL;
    const struct cli_opt opts[] = {
        {"--weights", CLI_STR, &weights, "checkpoint (.pt)"},
        {"--cfg", CLI_STR, &cfg, "or a yaml config (seeded random weights)"},
        {"--batch", CLI_INT, &batch, "images per batch (default 1)"},
        {"--img", CLI_INT, &img, "square input size (default: the model's, 640 or 1280)"},
        {"--threads", CLI_INT, &threads, "CPU threads (default: all cores)"},
        {"--iters", CLI_INT, &iters, "timed runs (default 5; the median is reported)"},
        {"--warmup", CLI_INT, &warmup, "untimed runs first (default 1)"},
        {"--unfused", CLI_FLAG, &unfused, "time the model as loaded (default: fused)"},
        {"--top", CLI_INT, &top, "layers shown, slowest first (default 15; 0: all)"},
        {"--ref", CLI_FLAG, &ref, "time the scalar reference kernels"},
        {"--cpu-isa", CLI_STR, &cpu_isa, "CPU micro-kernels: auto (default), avx512, avx2, "
                                         "generic"},
        {"--cpu-conv", CLI_STR, &cpu_conv, "CPU convolution: packed (default; PyTorch's order) "
                                           "or blas (OpenBLAS sgemm)"},
        {"--device", CLI_STR, &device, "cpu (default) or cuda"},
        {"--fp16", CLI_FLAG, &fp16, "FP16 activations and tensor-core GEMMs (cuda)"},
        {"--amax", CLI_STR, &amax, "fake INT8: QDQ on the fused model with this amax table"},
        {"--method", CLI_STR, &method, "the method to take from a per-method --amax file"},
        {"--qdq", CLI_STR, &qdq_mode, "QDQ placement with --amax: seed (default) or trt"},
        {"--compare", CLI_FLAG, &compare, "with --amax: also time FP32, runs alternating, and "
                                          "print the ratio"},
        {"--json", CLI_STR, &json, "write the results as JSON"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("bench", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || (!weights == !cfg) || n_pos || batch < 1 || iters < 1 || warmup < 0 ||
        ((compare || method || qdq_mode) && !amax) || (amax && unfused)) {
        cli_usage(help ? stdout : stderr, "bench", "--weights W | --cfg Y [options]", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    struct q7_exec * e = NULL;
    struct q7_cuda_exec * ce = NULL;
    struct q7_exec * e32 = NULL; /* --compare: the same graph with every quantizer off */
    struct q7_cuda_exec * ce32 = NULL;
    struct q7_cuda_exec * cprof = NULL; /* cuda: the profiled executor for per-layer times */
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * table = NULL;
    float * x = NULL, * out = NULL;
    uint8_t * x8 = NULL;
    double * per_run = NULL, * per_run32 = NULL, * per_net = NULL;
    double * acc = NULL;
    struct layer_time * lt = NULL;
    int rc = 1;
    enum q7_status st = q7_model_load(weights ? weights : cfg, NULL, &m);
    if (st || (!unfused && (st = q7_model_fuse(m))))
        goto done;
    struct q7_graph * g = m->graph;
    enum q7_qdq_mode mode = Q7_QDQ_SEED;
    if (amax && ((qdq_mode && (st = q7_qdq_mode_parse(qdq_mode, &mode))) ||
                 (st = q7_amax_table_load(amax, method, &table)) ||
                 (st = q7_qdq_insert(g, mode, &qdq)) ||
                 (st = q7_amax_table_apply(table, qdq->q, qdq->n, NULL))))
        goto done;
    int size = img > 0 ? img : g->img_size;
    int cuda = device && strcmp(device, "cpu") != 0;
    if (cuda && strcmp(device, "cuda") != 0) {
        st = q7_error_set(Q7_ERR_ARG, "--device must be cpu or cuda");
        goto done;
    }
    if (!cuda && fp16) {
        st = q7_error_set(Q7_ERR_UNSUPPORTED, "--fp16 needs --device cuda");
        goto done;
    }
    if ((cpu_isa || cpu_conv) && !q7_cpu_kernels_select(cpu_isa, cpu_conv)) {
        st = q7_error_set(Q7_ERR_UNSUPPORTED, "--cpu-isa %s / --cpu-conv %s: unknown, or not "
                          "available on this machine or build", cpu_isa ? cpu_isa : "auto",
                          cpu_conv ? cpu_conv : "auto");
        goto done;
    }
    if ((st = create_exec(g, cuda, fp16, threads, ref, 0, &e, &ce)))
        goto done;
    /* --compare: executors keep the quantizer state they were created with, so a second one
     * created with every quantizer off runs the FP32 network */
    if (compare && ((st = q7_qdq_set_enabled(qdq, ".*", 0, NULL)) ||
                    (st = create_exec(g, cuda, fp16, threads, ref, 0, &e32, &ce32)) ||
                    (st = q7_qdq_set_enabled(qdq, ".*", 1, NULL))))
        goto done;
    int64_t rows, no, n_in = (int64_t)batch * 3 * size * size;
    if ((st = cuda ? q7_cuda_exec_output_rows(ce, batch, size, size, &rows, &no)
                   : q7_exec_output_rows(e, batch, size, size, &rows, &no)))
        goto done;
    x = malloc((size_t)n_in * sizeof(float));
    x8 = malloc((size_t)n_in);
    out = malloc((size_t)(batch * rows * no) * sizeof(float));
    per_run = malloc((size_t)iters * sizeof(double));
    per_run32 = malloc((size_t)iters * sizeof(double));
    per_net = malloc((size_t)iters * sizeof(double));
    acc = calloc((size_t)g->n_nodes, sizeof(double));
    lt = calloc((size_t)g->n_layers, sizeof *lt);
    if (!x || !x8 || !out || !per_run || !per_run32 || !per_net || !acc || !lt) {
        st = q7_error_set(Q7_ERR_OOM, "out of memory");
        goto done;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < n_in; i++) { /* a letterbox-like input in [0, 1] */
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x8[i] = (uint8_t)(seed >> 56);
        x[i] = x8[i] / 255.0f;
    }
    const struct bench_input in = {x, x8};
    for (int r = 0; r < warmup; r++) {
        double unused;
        if ((st = time_run(e, ce, &in, batch, size, out, &unused, NULL)) ||
            (compare && (st = time_run(e32, ce32, &in, batch, size, out, &unused, NULL))))
            goto done;
    }
    for (int r = 0; r < iters; r++) {
        /* --compare: FP32 before the measured network in even runs, after it in odd ones */
        double * t32 = &per_run32[r];
        if ((compare && r % 2 == 0 &&
             (st = time_run(e32, ce32, &in, batch, size, out, t32, NULL))) ||
            (st = time_run(e, ce, &in, batch, size, out, &per_run[r], &per_net[r])) ||
            (compare && r % 2 == 1 &&
             (st = time_run(e32, ce32, &in, batch, size, out, t32, NULL))))
            goto done;
        if (!ce) {
            const double * s = q7_exec_node_seconds(e);
            for (int i = 0; i < g->n_nodes; i++)
                acc[i] += s[i];
        }
    }
    double med = median(per_run, iters), med32 = compare ? median(per_run32, iters) : 0.0;
    double med_net = median(per_net, iters);
    if (cuda) { /* per-layer times: events around every node, in runs of their own */
        q7_cuda_exec_free(ce32);
        ce32 = NULL;
        if ((st = create_exec(g, 1, fp16, threads, 0, 1, NULL, &cprof)))
            goto done;
        for (int r = 0; r < iters + 1; r++) {
            double unused;
            if ((st = time_run(NULL, cprof, &in, batch, size, out, &unused, NULL)))
                goto done;
            const double * s = q7_cuda_exec_node_seconds(cprof);
            for (int i = 0; r > 0 && i < g->n_nodes; i++)
                acc[i] += s[i];
        }
    }
    char what[64];
    snprintf(what, sizeof what, "%s%s", unfused ? "unfused" : "fused",
             amax ? (mode == Q7_QDQ_TRT ? ", fake INT8 (qdq trt)" : ", fake INT8") : "");
    double total_flops = 0.0, sum_nodes = 0.0;
    for (int l = 0; l < g->n_layers; l++)
        lt[l].layer = l;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        sum_nodes += acc[i] / iters;
        if (nd->layer < 0 || !(cuda ? q7_cuda_exec_node_live(ce, i) : q7_exec_node_live(e, i)))
            continue;
        lt[nd->layer].seconds += acc[i] / iters;
        lt[nd->layer].bytes += node_bytes(g, nd, fp16 ? 2 : sizeof(float));
        if (nd->op == Q7_OP_CONV2D) {
            lt[nd->layer].flops += conv_flops(nd);
            total_flops += conv_flops(nd);
        }
    }
    if (cuda) {
        printf("q7 bench: %s, %s, batch %d, %dx%d, cuda %s, %d runs (per-layer times with "
               "CUDA events)\n",
               weights ? weights : cfg, what, batch, size, size, fp16 ? "fp16" : "fp32", iters);
    } else {
        char kernels[128] = "reference kernels";
        if (!ref)
            snprintf(kernels, sizeof kernels, "%s kernels, %s conv%s", q7_cpu_isa_name(),
                     q7_cpu_conv_name(),
                     q7_cpu_matches_pytorch() ? " (PyTorch's FP32 arithmetic)" : "");
        printf("q7 bench: %s, %s, batch %d, %dx%d, %d threads, %s, %d runs\n",
               weights ? weights : cfg, what, batch, size, size, q7_cpu_threads(), kernels,
               iters);
    }
    qsort(lt, (size_t)g->n_layers, sizeof *lt, by_time_desc);
    int shown = top > 0 && top < g->n_layers ? top : g->n_layers;
    printf("%5s %-10s %10s %9s %8s %7s\n", "layer", "type", "ms", "GFLOP/s", "GB/s", "share");
    for (int k = 0; k < shown; k++) {
        const struct layer_time * L = &lt[k];
        printf("%5d %-10s %10.3f %9.1f %8.1f %6.1f%%\n", L->layer, g->layers[L->layer].type,
               L->seconds * 1e3, L->seconds > 0 ? L->flops / L->seconds / 1e9 : 0.0,
               L->seconds > 0 ? L->bytes / L->seconds / 1e9 : 0.0,
               sum_nodes > 0 ? 100.0 * L->seconds / sum_nodes : 0.0);
    }
    double ips = batch / med;
    printf("total: %.2f ms per batch (median of %d), %.2f images/s, %.1f GFLOP/s, "
           "%.1f GFLOPs per image, peak activation memory %.1f MiB (%.1f MiB unplanned)\n",
           med * 1e3, iters, ips, total_flops / med / 1e9, total_flops / batch / 1e9,
           (cuda ? q7_cuda_exec_arena_bytes(ce) : q7_exec_peak_bytes(e)) / 1048576.0,
           cuda ? 0.0 : q7_exec_naive_bytes(e) / 1048576.0);
    struct q7_cuda_peaks peak = {0.0, 0.0, 0.0};
    if (cuda) {
        char name[256];
        int n_dev = 0;
        const double tflops = total_flops / med_net / 1e12;
        printf("GPU time of the network alone (CUDA events, without the upload of the uint8 "
               "batch and the download of the raw output): %.2f ms per batch, %.2f images/s, "
               "%.1f TFLOP/s\n",
               med_net * 1e3, batch / med_net, tflops);
        if (!q7_cuda_available(&n_dev, name, sizeof name) && n_dev > 0 &&
            !q7_cuda_device_peaks(0, &peak)) {
            const double top = fp16 ? peak.fp16_tflops : peak.fp32_tflops;
            printf("%s: peaks at the maximum clocks %.0f GB/s memory, %.0f TFLOP/s FP16 tensor "
                   "(dense), %.0f TFLOP/s FP32",
                   name, peak.mem_gbs, peak.fp16_tflops, peak.fp32_tflops);
            if (top > 0)
                printf("; the network reaches %.1f%% of the %s peak", 100.0 * tflops / top,
                       fp16 ? "FP16 tensor" : "FP32");
            printf("\n");
        }
    }
    if (amax && !cuda) {
        int at_source, by_reader;
        q7_exec_quant_sources(e, &at_source, &by_reader);
        printf("fake INT8: %d quantized inputs: %d quantized where produced, %d by their reader\n",
               at_source + by_reader, at_source, by_reader);
    }
    if (compare)
        printf("fake INT8 / FP32: %.3fx (%.2f vs %.2f ms per batch, medians of %d alternating "
               "runs)\n", med / med32, med * 1e3, med32 * 1e3, iters);
    if (json) {
        cJSON * root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", weights ? weights : cfg);
        cJSON_AddStringToObject(root, "device", cuda ? (fp16 ? "cuda-fp16" : "cuda") : "cpu");
        cJSON_AddNumberToObject(root, "batch", batch);
        cJSON_AddNumberToObject(root, "img", size);
        cJSON_AddNumberToObject(root, "threads", q7_cpu_threads());
        cJSON_AddNumberToObject(root, "ms_per_batch", med * 1e3);
        cJSON_AddNumberToObject(root, "images_per_s", ips);
        cJSON_AddBoolToObject(root, "fake_int8", amax != NULL);
        if (cuda) {
            cJSON_AddNumberToObject(root, "net_ms_per_batch", med_net * 1e3);
            cJSON_AddNumberToObject(root, "net_images_per_s", batch / med_net);
            cJSON_AddNumberToObject(root, "peak_mem_gbs", peak.mem_gbs);
            cJSON_AddNumberToObject(root, "peak_fp16_tflops", peak.fp16_tflops);
            cJSON_AddNumberToObject(root, "peak_fp32_tflops", peak.fp32_tflops);
        }
        if (compare) {
            cJSON_AddNumberToObject(root, "fp32_ms_per_batch", med32 * 1e3);
            cJSON_AddNumberToObject(root, "int8_over_fp32", med / med32);
        }
        cJSON_AddNumberToObject(root, "gflops_per_image", total_flops / batch / 1e9);
        cJSON_AddNumberToObject(root, "peak_bytes",
                                (double)(cuda ? q7_cuda_exec_arena_bytes(ce)
                                              : q7_exec_peak_bytes(e)));
        cJSON * layers = cJSON_AddArrayToObject(root, "layers");
        for (int k = 0; k < g->n_layers; k++) {
            cJSON * o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", lt[k].layer);
            cJSON_AddStringToObject(o, "type", g->layers[lt[k].layer].type);
            cJSON_AddNumberToObject(o, "ms", lt[k].seconds * 1e3);
            cJSON_AddNumberToObject(o, "gflop", lt[k].flops / 1e9);
            cJSON_AddNumberToObject(o, "mbytes", lt[k].bytes / 1e6);
            cJSON_AddItemToArray(layers, o);
        }
        st = cli_write_json(json, root);
        cJSON_Delete(root);
        if (st)
            goto done;
    }
    rc = 0;
done:
    if (rc)
        cli_fail("bench", st);
    free(x);
    free(x8);
    free(out);
    free(per_run);
    free(per_run32);
    free(per_net);
    free(acc);
    free(lt);
    q7_exec_free(e);
    q7_cuda_exec_free(ce);
    q7_exec_free(e32);
    q7_cuda_exec_free(ce32);
    q7_cuda_exec_free(cprof);
    q7_qdq_free(qdq);
    q7_amax_table_free(table);
    q7_model_free(m);
    return rc;
}
