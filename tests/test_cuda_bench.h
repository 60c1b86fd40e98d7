/* `test_cuda bench`: the GPU benchmark table (images/s per batch and mode, the network's own
 * GPU time, the slowest nodes); included once by tests/test_cuda.c after test_cuda_net.h. */
#ifndef Q7_TEST_CUDA_BENCH_H
#define Q7_TEST_CUDA_BENCH_H

struct node_time {
    int id;
    double s;
};

static int by_time_desc(const void * a, const void * b)
{
    const struct node_time *x = a, *y = b;
    return (x->s < y->s) - (x->s > y->s);
}

/* 2 * multiply-adds of conv node nd at its current output shape. */
static double conv_flops(const struct q7_node * nd)
{
    if (nd->op != Q7_OP_CONV2D)
        return 0.0;
    const struct q7_conv_params * p = &nd->p.conv;
    return 2.0 * (double)q7_tensor_numel(&nd->out) * (p->in_ch / p->groups) * p->kh * p->kw;
}

static void bench_profile(struct q7_graph * g, int fp16, int64_t n, int64_t img, const uint8_t * x)
{
    struct q7_cuda_params cp = q7_cuda_params_default();
    cp.fp16 = fp16;
    cp.profile = 1;
    struct q7_cuda_exec * e = NULL;
    int64_t rows = 0, no = 0;
    if (q7_cuda_exec_create(g, &cp, &e) || q7_cuda_exec_output_rows(e, n, img, img, &rows, &no)) {
        printf("profile: %s\n", q7_error_message());
        q7_cuda_exec_free(e);
        return;
    }
    float * out = xmalloc((size_t)(n * rows * no) * sizeof(float));
    for (int r = 0; r < 3; r++)
        CHECK_OK(q7_cuda_exec_run_u8(e, x, n, img, img, out));
    const double * sec = q7_cuda_exec_node_seconds(e);
    struct node_time * t = xmalloc((size_t)g->n_nodes * sizeof *t);
    double total = 0, conv_total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        t[i] = (struct node_time){i, sec ? sec[i] : 0.0};
        total += t[i].s;
        conv_total += g->nodes[i]->op == Q7_OP_CONV2D ? t[i].s : 0.0;
    }
    qsort(t, (size_t)g->n_nodes, sizeof *t, by_time_desc);
    printf("\n%s, batch %lld, %lldx%lld: nodes %.2f ms (convs %.0f%%), whole run %.2f ms. "
           "Slowest 10 nodes:\n",
           fp16 ? "FP16" : "FP32", (long long)n, (long long)img, (long long)img, total * 1e3,
           total > 0 ? 100.0 * conv_total / total : 0.0, q7_cuda_exec_last_ms(e));
    printf("  %-5s %-26s %-8s %-22s %9s %6s %9s\n", "node", "name", "op", "output", "ms", "%",
           "TFLOP/s");
    for (int k = 0; k < 10 && k < g->n_nodes; k++) {
        const struct q7_node * nd = g->nodes[t[k].id];
        char shape[64];
        snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)nd->out.shape[0],
                 (long long)nd->out.shape[1], (long long)nd->out.shape[2],
                 (long long)nd->out.shape[3]);
        const double f = conv_flops(nd);
        printf("  %-5d %-26.26s %-8s %-22s %9.3f %6.1f %9.1f\n", nd->id, nd->name,
               q7_op_name(nd->op), shape, t[k].s * 1e3, total > 0 ? 100.0 * t[k].s / total : 0.0,
               f > 0 && t[k].s > 0 ? f / t[k].s * 1e-12 : 0.0);
    }
    free(t);
    free(out);
    q7_cuda_exec_free(e);
}

/* One mode's rows of the benchmark table: FP32 or FP16, with a conv workspace bound (MiB,
 * 0: the default), with the tiled im2col or not. */
static void bench_mode(struct q7_graph * g, int fp16, size_t ws_mib, int tiled, const int64_t * bs,
                       int nb, const uint8_t * x, int64_t img, double gflop)
{
    char mode[48];
    snprintf(mode, sizeof mode, "%s%s%s", fp16 ? "FP16" : "FP32", tiled ? ", tiled im2col" : "",
             ws_mib ? ", ws " : "");
    if (ws_mib)
        snprintf(mode + strlen(mode), sizeof mode - strlen(mode), "%zu MiB", ws_mib);
    struct q7_cuda_params cp = q7_cuda_params_default();
    cp.fp16 = fp16;
    cp.conv_workspace = ws_mib << 20;
    cp.im2col_tiled = tiled;
    struct q7_cuda_exec * e = NULL;
    if (q7_cuda_exec_create(g, &cp, &e)) {
        printf("| %s | create failed: %s |\n", mode, q7_error_message());
        return;
    }
    for (int k = 0; k < nb; k++) {
        int64_t rows = 0, no = 0;
        if (q7_cuda_exec_output_rows(e, bs[k], img, img, &rows, &no)) {
            printf("| %s | %lld | failed: %s |\n", mode, (long long)bs[k],
                   q7_error_message());
            continue;
        }
        float * out = xmalloc((size_t)(bs[k] * rows * no) * sizeof(float));
        enum q7_status st = Q7_OK;
        for (int r = 0; r < 3 && !st; r++)
            st = q7_cuda_exec_run_u8(e, x, bs[k], img, img, out);
        int runs = 0;
        double gpu_ms = 0, net_ms = 0, t0 = q7_time_now(), t1 = t0;
        while (!st && (runs < 5 || t1 - t0 < 1.5) && runs < 200) {
            st = q7_cuda_exec_run_u8(e, x, bs[k], img, img, out);
            gpu_ms += q7_cuda_exec_last_ms(e);
            net_ms += q7_cuda_exec_last_net_ms(e);
            runs++;
            t1 = q7_time_now();
        }
        if (st) {
            printf("| %s | %lld | failed: %s |\n", mode, (long long)bs[k],
                   q7_error_message());
        } else {
            const double per = (t1 - t0) / runs;
            printf("| %s | %lld | %.1f | %.2f | %.2f | %.2f | %.1f | %.2f |\n", mode,
                   (long long)bs[k], bs[k] / per, per * 1e3, gpu_ms / runs, net_ms / runs,
                   bs[k] / (net_ms / runs) * 1e3, gflop * bs[k] / (net_ms / runs));
        }
        fflush(stdout);
        free(out);
    }
    printf("%s memory: arena %.0f MiB, conv workspace %.0f MiB, weights %.0f MiB\n",
           mode, q7_cuda_exec_arena_bytes(e) / 1048576.0,
           q7_cuda_exec_workspace_bytes(e) / 1048576.0,
           q7_cuda_exec_weight_bytes(e) / 1048576.0);
    q7_cuda_exec_free(e);
}

/* test_cuda bench <cfg.yaml> [img] [batches, e.g. 1,8,32] [FP16 workspace bounds, MiB] */
static int cuda_bench(int argc, char ** argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: test_cuda bench <cfg.yaml|model.pt> [img=640] [batches=1,8,32] "
                        "[workspace MiB list]\n");
        return 2;
    }
    const int64_t img = argc > 1 ? atoll(argv[1]) : 640;
    const char * batches = argc > 2 ? argv[2] : "1,8,32";
    const char * ws_list = argc > 3 ? argv[3] : NULL;
    int n_dev = 0;
    char name[256];
    if (q7_cuda_available(&n_dev, name, sizeof name) || n_dev == 0) {
        printf("%s\n", n_dev ? q7_error_message() : name);
        return Q7_TEST_SKIP;
    }
    struct q7_model_params mp = q7_model_params_default();
    mp.random_init = 1;
    struct q7_model * m = NULL;
    if (q7_model_load(argv[0], &mp, &m) || q7_model_fuse(m)) {
        fprintf(stderr, "%s: %s\n", argv[0], q7_error_message());
        q7_model_free(m);
        return 1;
    }
    struct q7_graph * g = m->graph;
    const double gflop = q7_graph_gflops(g, (int)img);
    int64_t bs[8], nb = 0, bmax = 1;
    for (const char * s = batches; *s && nb < 8;) {
        bs[nb] = atoll(s);
        bmax = bs[nb] > bmax ? bs[nb] : bmax;
        nb += bs[nb] > 0;
        s = strchr(s, ',') ? strchr(s, ',') + 1 : s + strlen(s);
    }
    uint8_t * x = xmalloc((size_t)(bmax * 3 * img * img));
    for (int64_t i = 0; i < bmax * 3 * img * img; i++)
        x[i] = (uint8_t)(q7t_rand_u64(&g_rng) & 255);
    printf("%s on %s: %lldx%lld, %.1f GFLOP per image (2 x MACs), fused, random weights\n\n",
           argv[0], name, (long long)img, (long long)img, gflop);
    printf("| mode | batch | images/s | ms/batch (wall) | ms/batch (GPU) | network ms (GPU) | "
           "network images/s | network TFLOP/s |\n");
    printf("|------|------:|---------:|----------------:|---------------:|---------:|---------:|"
           "--------:|\n");
    for (int fp16 = 0; fp16 < 2; fp16++)
        bench_mode(g, fp16, 0, 0, bs, (int)nb, x, img, gflop);
    for (int fp16 = 0; fp16 < 2; fp16++) /* the shared-memory im2col, not the default yet */
        bench_mode(g, fp16, 0, 1, bs, (int)nb, x, img, gflop);
    for (const char * w = ws_list; w && *w;) { /* FP16 under other workspace bounds */
        const size_t mib = (size_t)strtoull(w, NULL, 10);
        if (mib)
            bench_mode(g, 1, mib, 0, bs, (int)nb, x, img, gflop);
        w = strchr(w, ',') ? strchr(w, ',') + 1 : w + strlen(w);
    }
    const int64_t pb = bmax < 8 ? bmax : 8;
    bench_profile(g, 0, pb, img, x);
    bench_profile(g, 1, pb, img, x);
    free(x);
    q7_model_free(m);
    return 0;
}


#endif
