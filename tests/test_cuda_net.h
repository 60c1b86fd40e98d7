/* Whole-network CUDA tests; included once by tests/test_cuda.c (kept apart so that each file
 * holds one idea: kernels there, networks here, the benchmark in test_cuda_bench.h). */
#ifndef Q7_TEST_CUDA_NET_H
#define Q7_TEST_CUDA_NET_H

#define MAX_NODES_CMP 4096

static int fopen_ok(const char * path)
{
    FILE * f = path ? fopen(path, "rb") : NULL;
    if (f)
        fclose(f);
    return f != NULL;
}

/* Runs g on a uint8 CHW image (batch 1) on the GPU; returns the malloc'ed output. */
static float * gpu_run_u8(struct q7_graph * g, int fp16, const struct q7_npy * x, int64_t * count)
{
    struct q7_cuda_params cp = q7_cuda_params_default();
    cp.fp16 = fp16;
    struct q7_cuda_exec * e = NULL;
    CHECK_OK(q7_cuda_exec_create(g, &cp, &e));
    if (!e)
        return NULL;
    int64_t rows = 0, no = 0, h = x->shape[1], w = x->shape[2];
    float * out = NULL;
    CHECK_OK(q7_cuda_exec_output_rows(e, 1, h, w, &rows, &no));
    if (rows > 0) {
        out = xmalloc((size_t)(rows * no) * sizeof(float));
        CHECK_OK(q7_cuda_exec_run_u8(e, x->data, 1, h, w, out));
        *count = rows * no;
    }
    q7_cuda_exec_free(e);
    return out;
}

/* Relative L2 of the GPU output against a reference .npy (INFINITY when it cannot run). */
static double raw_error(struct q7_graph * g, int fp16, const struct q7_npy * x,
                        const struct q7_npy * ref)
{
    int64_t n = 0;
    float * out = gpu_run_u8(g, fp16, x, &n);
    double err = INFINITY;
    if (out && n == q7_npy_numel(ref))
        err = q7t_rel_l2(out, ref->data, (size_t)n);
    CHECKF(!out || n == q7_npy_numel(ref), "%lld outputs, reference has %lld", (long long)n,
           (long long)q7_npy_numel(ref));
    free(out);
    return err;
}

/* pt on input, against want_origin and want_fused; FP32 within RAW_TOL, FP16 reported (and,
 * for the fixtures, bounded by 0.5: a broken FP16 path gives errors near 1). worst16: the
 * family's running worst FP16 error (no per-model line, no FP16 bound). */
static void compare_model(const char * label, const char * pt, const char * input,
                          const char * want_origin, const char * want_fused, double * worst16)
{
    struct q7_npy x = {0}, ref[2] = {{0}, {0}};
    struct q7_model * m = NULL;
    CHECK_OK(q7_npy_load(input, &x));
    CHECK_OK(q7_npy_load(want_origin, &ref[0]));
    CHECK_OK(q7_npy_load(want_fused, &ref[1]));
    CHECK_OK(q7_model_load(pt, NULL, &m));
    for (int fused = 0; fused < 2 && m && x.data && ref[fused].data; fused++) {
        if (fused && q7_model_fuse(m) != Q7_OK) {
            CHECKF(0, "%s: fuse failed: %s", pt, q7_error_message());
            break;
        }
        const double e32 = raw_error(m->graph, 0, &x, &ref[fused]);
        const double e16 = raw_error(m->graph, 1, &x, &ref[fused]);
        CHECKF(e32 < RAW_TOL, "%s %s FP32: relative L2 %.3g", label, fused ? "fused" : "origin",
               e32);
        /* FP16 is reported; only the realistic fixtures bound it (random family nets may
         * leave FP16's range) */
        CHECKF(worst16 || e16 < 0.5, "%s %s FP16: relative L2 %.3g", label,
               fused ? "fused" : "origin", e16);
        if (worst16 && e16 > *worst16)
            *worst16 = e16;
        if (!worst16)
            printf("  %-24s %-6s FP32 relative L2 %.2e   FP16 %.2e\n", label,
                   fused ? "fused" : "origin", e32, e16);
    }
    q7_model_free(m);
    q7_npy_free(&x);
    q7_npy_free(&ref[0]);
    q7_npy_free(&ref[1]);
}

static void test_fixture(const char * model)
{
    char dir[512], img[128] = "";
    snprintf(dir, sizeof dir, "%s/ref", q7t_fixture(model));
    DIR * d = opendir(dir);
    if (!d) {
        printf("  (%s fixture missing: skipped)\n", model);
        return;
    }
    struct dirent * de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "raw_origin_", 11) == 0)
            snprintf(img, sizeof img, "%.*s", (int)(strlen(de->d_name) - 15), de->d_name + 11);
    closedir(d);
    char pt[512], in[700], wo[700], wf[700];
    snprintf(pt, sizeof pt, "%s/model.pt", q7t_fixture(model));
    snprintf(in, sizeof in, "%s/input_%s.npy", dir, img);
    snprintf(wo, sizeof wo, "%s/raw_origin_%s.npy", dir, img);
    snprintf(wf, sizeof wf, "%s/raw_fused_%s.npy", dir, img);
    if (!img[0] || !fopen_ok(pt) || !fopen_ok(in) || !fopen_ok(wo)) {
        printf("  (%s fixture incomplete: skipped)\n", model);
        return;
    }
    compare_model(model, pt, in, wo, wf, NULL);
}

static void test_family(void)
{
    const char * path = q7t_fixture("family/family.json");
    if (!fopen_ok(path)) {
        printf("  (family fixtures missing: skipped)\n");
        return;
    }
    cJSON * fam = q7t_json_load(path);
    const cJSON * entry;
    int n = 0;
    double worst16 = 0;
    cJSON_ArrayForEach(entry, fam)
    {
        char pt[512], in[512], wo[512], wf[512];
        const char * dir = q7t_fixture("family");
        snprintf(pt, sizeof pt, "%s/%s.pt", dir, entry->string);
        snprintf(in, sizeof in, "%s/%s.input.npy", dir, entry->string);
        snprintf(wo, sizeof wo, "%s/%s.raw_origin.npy", dir, entry->string);
        snprintf(wf, sizeof wf, "%s/%s.raw_fused.npy", dir, entry->string);
        if (!fopen_ok(pt))
            continue;
        compare_model(entry->string, pt, in, wo, wf, &worst16);
        n++;
    }
    printf("  family: %d configs origin + fused, FP32 within %.0e; worst FP16 relative L2 %.2e\n",
           n, RAW_TOL, worst16);
    cJSON_Delete(fam);
}

/* ---- per node against the CPU executor ---- */

struct node_store {
    float * out[MAX_NODES_CMP];
    size_t count[MAX_NODES_CMP];
    double worst;
    double worst10; /* over the nodes of the first 10 top-level layers */
    int worst_node, compared, bad;
    const struct q7_graph * g;
};

static enum q7_status store_hook(void * user, struct q7_cuda_exec * e, const struct q7_node * nd,
                                 const struct q7_cuda_view * dev, const struct q7_view * host)
{
    struct node_store * s = user;
    if (nd->id >= MAX_NODES_CMP || !host)
        return Q7_OK;
    const size_t count = (size_t)(host->n * host->c * host->h * host->w);
    free(s->out[nd->id]);
    s->out[nd->id] = xmalloc(count * sizeof(float));
    memcpy(s->out[nd->id], host->data, count * sizeof(float));
    s->count[nd->id] = count;
    return Q7_OK;
}

static void cmp_hook(void * user, const struct q7_node * nd, const struct q7_view * v)
{
    struct node_store * s = user;
    if (nd->id >= MAX_NODES_CMP || !s->out[nd->id])
        return;
    const int64_t per = v->c * v->h * v->w;
    float * flat = xmalloc((size_t)(v->n * per) * sizeof(float));
    for (int64_t b = 0; b < v->n; b++)
        memcpy(flat + b * per, v->data + b * v->batch_stride, (size_t)per * sizeof(float));
    const double rel = (size_t)(v->n * per) == s->count[nd->id]
                           ? q7t_rel_l2(s->out[nd->id], flat, (size_t)(v->n * per))
                           : INFINITY;
    free(flat);
    s->compared++;
    if (nd->layer >= 0 && nd->layer < 10 && !(rel <= s->worst10))
        s->worst10 = rel;
    if (!(rel <= s->worst)) {
        s->worst = rel;
        s->worst_node = nd->id;
    }
}

/* Every node's output on the GPU against the CPU executor's, same random input. */
static void test_vs_cpu(const char * pt, int fuse, int64_t n, int64_t h, int64_t w)
{
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(pt, NULL, &m));
    if (!m || (fuse && q7_model_fuse(m) != Q7_OK))
        goto done;
    const size_t in_count = (size_t)(n * 3 * h * w);
    float * x = xmalloc(in_count * sizeof(float));
    for (size_t i = 0; i < in_count; i++)
        x[i] = q7t_rand_uniform(&g_rng, 0.0f, 1.0f);
    for (int fp16 = 0; fp16 < 2; fp16++) {
        static struct node_store s;
        memset(&s, 0, sizeof s);
        s.g = m->graph;
        s.worst_node = -1;
        struct q7_cuda_params cp = q7_cuda_params_default();
        cp.fp16 = fp16;
        struct q7_cuda_exec * e = NULL;
        struct q7_exec * c = NULL;
        int64_t rows = 0, no = 0;
        CHECK_OK(q7_cuda_exec_create(m->graph, &cp, &e));
        CHECK_OK(q7_exec_create(m->graph, NULL, &c));
        if (e && c && q7_cuda_exec_output_rows(e, n, h, w, &rows, &no) == Q7_OK) {
            float * o1 = xmalloc((size_t)(n * rows * no) * sizeof(float));
            float * o2 = xmalloc((size_t)(n * rows * no) * sizeof(float));
            q7_cuda_exec_set_hook(e, store_hook, &s, 1);
            CHECK_OK(q7_cuda_exec_run(e, x, n, h, w, o1));
            q7_exec_set_hook(c, cmp_hook, &s);
            CHECK_OK(q7_exec_run(c, x, n, h, w, o2));
            const double out_rel = q7t_rel_l2(o1, o2, (size_t)(n * rows * no));
            /* FP16: the first 10 layers within 1e-2 of FP32; deeper ones and the output are
             * reported only (these random nets amplify rounding) */
            const double tol = fp16 ? INFINITY : RAW_TOL;
            CHECKF((fp16 || (s.worst < tol && out_rel < tol)) && s.compared > 0,
                   "%s %s: worst node %d (%s) relative L2 %.3g, output %.3g", pt,
                   fp16 ? "FP16" : "FP32", s.worst_node,
                   s.worst_node >= 0 ? m->graph->nodes[s.worst_node]->name : "-", s.worst, out_rel);
            CHECKF(!fp16 || s.worst10 < FP16_LAYER_TOL,
                   "%s FP16: first 10 layers relative L2 %.3g (tolerance %g)", pt, s.worst10,
                   FP16_LAYER_TOL);
            printf("  %s vs CPU, %s %s: %d nodes, worst %.2e (%s), first 10 layers %.2e, "
                   "output %.2e\n",
                   strrchr(pt, '/') ? strrchr(pt, '/') + 1 : pt, fuse ? "fused" : "origin",
                   fp16 ? "FP16" : "FP32", s.compared, s.worst,
                   s.worst_node >= 0 ? m->graph->nodes[s.worst_node]->name : "-", s.worst10,
                   out_rel);
            free(o1);
            free(o2);
        }
        for (int i = 0; i < MAX_NODES_CMP; i++)
            free(s.out[i]);
        q7_cuda_exec_free(e);
        q7_exec_free(c);
    }
    free(x);
done:
    q7_model_free(m);
}

/* ---- device histograms of real activations ---- */

struct hist_check {
    int nodes, bad;
};

static enum q7_status hist_hook(void * user, struct q7_cuda_exec * e, const struct q7_node * nd,
                                const struct q7_cuda_view * dev, const struct q7_view * host)
{
    struct hist_check * hc = user;
    struct q7_calib_hist *a = q7_calib_hist_create(0), *b = q7_calib_hist_create(0);
    const int64_t count = host->n * host->c * host->h * host->w;
    enum q7_status sa = q7_calib_hist_collect(a, host->data, count);
    enum q7_status sb = q7_cuda_exec_hist_collect(e, dev, b);
    float amax = -1.0f;
    int bad = 0;
    enum q7_status sm = q7_cuda_exec_abs_max(e, dev, &amax, &bad);
    int bad_cpu = 0;
    const float want_max = q7_hist_abs_max(host->data, count, &bad_cpu);
    hc->nodes++;
    if (sa != sb || sm || amax != want_max || bad != bad_cpu || !hist_equal(nd->name, b, a)) {
        if (hc->bad++ < 5)
            fprintf(stderr, "  %s: histogram cpu %s / device %s, max %.9g vs %.9g\n", nd->name,
                    q7_status_str(sa), q7_status_str(sb), (double)amax, (double)want_max);
    }
    q7_calib_hist_free(a);
    q7_calib_hist_free(b);
    return Q7_OK;
}

static void test_hist_hook(const char * pt, int64_t n, int64_t h, int64_t w)
{
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(pt, NULL, &m));
    if (!m)
        return;
    struct q7_cuda_exec * e = NULL;
    CHECK_OK(q7_cuda_exec_create(m->graph, NULL, &e));
    int64_t rows = 0, no = 0;
    if (e && q7_cuda_exec_output_rows(e, n, h, w, &rows, &no) == Q7_OK) {
        uint8_t * x = xmalloc((size_t)(n * 3 * h * w));
        for (int64_t i = 0; i < n * 3 * h * w; i++)
            x[i] = (uint8_t)(q7t_rand_u64(&g_rng) & 255);
        float * out = xmalloc((size_t)(n * rows * no) * sizeof(float));
        struct hist_check hc = {0, 0};
        q7_cuda_exec_set_hook(e, hist_hook, &hc, 1);
        CHECK_OK(q7_cuda_exec_run_u8(e, x, n, h, w, out));
        CHECKF(hc.bad == 0 && hc.nodes > 0, "%s: %d of %d node histograms differ", pt, hc.bad,
               hc.nodes);
        printf("  device histograms of %d node outputs equal the CPU's\n", hc.nodes);
        free(x);
        free(out);
    }
    q7_cuda_exec_free(e);
    q7_model_free(m);
}

/* ---- fake INT8 with the fixture's amax (mse) ---- */

static void test_qdq(const char * model, const char * img)
{
    char pt[512], in[512], want[512], amax[512];
    snprintf(pt, sizeof pt, "%s/model.pt", q7t_fixture(model));
    snprintf(in, sizeof in, "%s/ref/input_%s.npy", q7t_fixture(model), img);
    snprintf(want, sizeof want, "%s/ref/raw_qdq-mse_%s.npy", q7t_fixture(model), img);
    snprintf(amax, sizeof amax, "%s/ref/amax.json", q7t_fixture(model));
    if (!fopen_ok(pt) || !fopen_ok(in) || !fopen_ok(want) || !fopen_ok(amax)) {
        printf("  (%s qdq fixture missing: skipped)\n", model);
        return;
    }
    struct q7_npy x = {0}, ref = {0};
    struct q7_model * m = NULL;
    struct q7_amax_table * t = NULL;
    struct q7_cuda_exec * e = NULL;
    CHECK_OK(q7_npy_load(in, &x));
    CHECK_OK(q7_npy_load(want, &ref));
    CHECK_OK(q7_model_load(pt, NULL, &m));
    CHECK_OK(q7_amax_table_load(amax, "mse", &t));
    if (!m || !t || !x.data || !ref.data || q7_model_fuse(m) != Q7_OK)
        goto done;
    struct q7_graph * g = m->graph;
    CHECK_OK(q7_cuda_exec_create(g, NULL, &e));
    if (!e)
        goto done;
    int convs = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (nd->op != Q7_OP_CONV2D || !q7_cuda_exec_node_live(e, i))
            continue;
        char qi[300], qw[300];
        snprintf(qi, sizeof qi, "%s._input_quantizer", nd->name);
        snprintf(qw, sizeof qw, "%s._weight_quantizer", nd->name);
        const struct q7_amax_entry *ai = q7_amax_table_find(t, qi), *aw = q7_amax_table_find(t, qw);
        CHECKF(ai && aw && ai->n == 1 && aw->n == nd->p.conv.out_ch, "%s: amax missing", nd->name);
        if (ai && aw && aw->n == nd->p.conv.out_ch) {
            CHECK_OK(q7_cuda_exec_set_conv_quant(e, i, q7_fq_scale(ai->values[0]), aw->values));
            convs++;
        }
    }
    int64_t rows = 0, no = 0, h = x.shape[1], w = x.shape[2];
    CHECK_OK(q7_cuda_exec_output_rows(e, 1, h, w, &rows, &no));
    float * out = xmalloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_cuda_exec_run_u8(e, x.data, 1, h, w, out));
    const double err =
        rows * no == q7_npy_numel(&ref) ? q7t_rel_l2(out, ref.data, (size_t)(rows * no)) : INFINITY;
    CHECKF(err < QDQ_TOL, "%s qdq-mse: relative L2 %.3g", model, err);
    printf("  %s fake INT8 (mse amax, %d convs) vs raw_qdq-mse: relative L2 %.2e\n", model, convs,
           err);
    /* the same settings through the graph's quantizers (q7_cuda_exec_refresh_quant) */
    struct q7_quantizer ** qs = xmalloc((size_t)(2 * g->n_nodes) * sizeof *qs);
    int nq = 0;
    const struct q7_quant_params pin = q7_quant_params_input(), pw = q7_quant_params_weight();
    for (int i = 0; i < g->n_nodes; i++) {
        struct q7_node * nd = g->nodes[i];
        if (nd->op != Q7_OP_CONV2D || !q7_cuda_exec_node_live(e, i))
            continue;
        CHECK_OK(q7_cuda_exec_set_conv_quant(e, i, 0.0f, NULL));
        char qi[300], qw[300];
        snprintf(qi, sizeof qi, "%s._input_quantizer", nd->name);
        snprintf(qw, sizeof qw, "%s._weight_quantizer", nd->name);
        const struct q7_amax_entry *ai = q7_amax_table_find(t, qi), *aw = q7_amax_table_find(t, qw);
        if (!ai || !aw)
            continue;
        nd->in_quant = qs[nq++] = q7_quant_create(qi, &pin);
        nd->w_quant = qs[nq++] = q7_quant_create(qw, &pw);
        CHECK_OK(q7_quant_set_amax(nd->in_quant, ai->values, 1));
        CHECK_OK(q7_quant_set_amax(nd->w_quant, aw->values, aw->n));
    }
    float * again = xmalloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_cuda_exec_refresh_quant(e));
    CHECK_OK(q7_cuda_exec_run_u8(e, x.data, 1, h, w, again));
    CHECK(memcmp(again, out, (size_t)(rows * no) * sizeof(float)) == 0);
    for (int i = 0; i < g->n_nodes; i++)
        g->nodes[i]->in_quant = g->nodes[i]->w_quant = NULL;
    for (int k = 0; k < nq; k++)
        q7_quant_free(qs[k]);
    free(qs);
    free(again);
    /* switching quantization off gives the fused FP32 result back */
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == Q7_OP_CONV2D && q7_cuda_exec_node_live(e, i))
            CHECK_OK(q7_cuda_exec_set_conv_quant(e, i, 0.0f, NULL));
    float * plain = xmalloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_cuda_exec_run_u8(e, x.data, 1, h, w, plain));
    const double moved = q7t_rel_l2(out, plain, (size_t)(rows * no));
    CHECKF(moved > 1e-4, "quantization had no effect (%.3g)", moved);
    free(out);
    free(plain);
done:
    q7_cuda_exec_free(e);
    q7_amax_table_free(t);
    q7_model_free(m);
    q7_npy_free(&x);
    q7_npy_free(&ref);
}

/* ---- --qdq trt: quantized max pools, against the CPU executor ---- */

static void test_qdq_trt(const char * model, const char * img)
{
    char pt[512], in[512], amax[512];
    snprintf(pt, sizeof pt, "%s/model.pt", q7t_fixture(model));
    snprintf(in, sizeof in, "%s/ref/input_%s.npy", q7t_fixture(model), img);
    snprintf(amax, sizeof amax, "%s/ref/amax.json", q7t_fixture(model));
    if (!fopen_ok(pt) || !fopen_ok(in) || !fopen_ok(amax)) {
        printf("  (%s trt fixture missing: skipped)\n", model);
        return;
    }
    struct q7_npy x = {0};
    struct q7_model * m = NULL;
    struct q7_amax_table * t = NULL;
    struct q7_qdq * qdq = NULL;
    struct q7_exec * c = NULL;
    struct q7_cuda_exec * e = NULL;
    float *cpu = NULL, *gpu = NULL, *nopool = NULL;
    CHECK_OK(q7_npy_load(in, &x));
    CHECK_OK(q7_model_load(pt, NULL, &m));
    CHECK_OK(q7_amax_table_load(amax, "mse", &t));
    if (!m || !t || !x.data || q7_model_fuse(m) != Q7_OK)
        goto done;
    /* the convs' amax from the fixture, every pool quantizer 3.0 */
    CHECK_OK(q7_qdq_insert(m->graph, Q7_QDQ_TRT, &qdq));
    if (!qdq)
        goto done;
    CHECK_OK(q7_amax_table_apply(t, qdq->q, qdq->n, NULL));
    int pools = 0;
    const float three = 3.0f;
    for (int i = 0; i < m->graph->n_nodes; i++) {
        struct q7_node * nd = m->graph->nodes[i];
        if (nd->op == Q7_OP_MAXPOOL && nd->in_quant) {
            CHECK_OK(q7_quant_set_amax(nd->in_quant, &three, 1));
            pools++;
        }
    }
    CHECK_OK(q7_exec_create(m->graph, NULL, &c));
    CHECK_OK(q7_cuda_exec_create(m->graph, NULL, &e));
    if (!c || !e)
        goto done;
    CHECK_OK(q7_cuda_exec_refresh_quant(e));
    int64_t rows = 0, no = 0, h = x.shape[1], w = x.shape[2];
    CHECK_OK(q7_exec_output_rows(c, 1, h, w, &rows, &no));
    cpu = xmalloc((size_t)(rows * no) * sizeof(float));
    gpu = xmalloc((size_t)(rows * no) * sizeof(float));
    nopool = xmalloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_exec_run_u8(c, x.data, 1, h, w, cpu));
    CHECK_OK(q7_cuda_exec_run_u8(e, x.data, 1, h, w, gpu));
    const double err = q7t_rel_l2(gpu, cpu, (size_t)(rows * no));
    CHECKF(pools > 0 && err < QDQ_TOL, "%s trt: CUDA vs CPU relative L2 %.3g (%d pools)", model,
           err, pools);
    /* the pools' quantizers matter: off, the output moves */
    for (int i = 0; i < m->graph->n_nodes; i++)
        if (m->graph->nodes[i]->op == Q7_OP_MAXPOOL && m->graph->nodes[i]->in_quant)
            q7_quant_set_enabled(m->graph->nodes[i]->in_quant, 0);
    CHECK_OK(q7_cuda_exec_refresh_quant(e));
    CHECK_OK(q7_cuda_exec_run_u8(e, x.data, 1, h, w, nopool));
    const double moved = q7t_rel_l2(gpu, nopool, (size_t)(rows * no));
    CHECKF(moved > 1e-4, "%s trt: the pool quantizers had no effect (%.3g)", model, moved);
    printf("  %s --qdq trt (%d quantized pools): CUDA vs CPU relative L2 %.2e\n", model, pools,
           err);
done:
    free(cpu);
    free(gpu);
    free(nopool);
    q7_cuda_exec_free(e);
    q7_exec_free(c);
    q7_qdq_free(qdq);
    q7_amax_table_free(t);
    q7_model_free(m);
    q7_npy_free(&x);
}

/* ---- batches, async submit, errors ---- */

static void test_batch(const char * pt)
{
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(pt, NULL, &m));
    if (!m)
        return;
    struct q7_cuda_exec * e = NULL;
    CHECK_OK(q7_cuda_exec_create(m->graph, NULL, &e));
    const int64_t h = 96, w = 64, n = 3, img = 3 * h * w;
    uint8_t * x = xmalloc((size_t)(n * img));
    for (int64_t i = 0; i < n * img; i++)
        x[i] = (uint8_t)(q7t_rand_u64(&g_rng) & 255);
    int64_t rows = 0, no = 0, rows_cpu = 0, no_cpu = 0;
    struct q7_exec * c = NULL;
    CHECK_OK(q7_exec_create(m->graph, NULL, &c));
    if (e && c && q7_cuda_exec_output_rows(e, n, h, w, &rows, &no) == Q7_OK &&
        q7_exec_output_rows(c, n, h, w, &rows_cpu, &no_cpu) == Q7_OK) {
        CHECK(rows == rows_cpu && no == no_cpu);
        float * all = xmalloc((size_t)(n * rows * no) * sizeof(float));
        float * one = xmalloc((size_t)(rows * no) * sizeof(float));
        float * cpu = xmalloc((size_t)(n * rows * no) * sizeof(float));
        CHECK_OK(q7_cuda_exec_submit_u8(e, x, n, h, w, all));
        CHECK(q7_cuda_exec_submit_u8(e, x, n, h, w, all) == Q7_ERR_ARG); /* one in flight */
        CHECK_OK(q7_cuda_exec_wait(e));
        CHECK_OK(q7_cuda_exec_wait(e));
        CHECK_OK(q7_exec_run_u8(c, x, n, h, w, cpu));
        const double rel = q7t_rel_l2(all, cpu, (size_t)(n * rows * no));
        CHECKF(rel < RAW_TOL, "batch of %lld vs CPU: relative L2 %.3g", (long long)n, rel);
        for (int64_t k = 0; k < n; k++) {
            CHECK_OK(q7_cuda_exec_run_u8(e, x + k * img, 1, h, w, one));
            CHECK(q7t_compare("batch", all + k * rows * no, one, (size_t)(rows * no), 1e-5, 1e-5,
                              5) == 0);
        }
        CHECK(q7_cuda_exec_run_u8(e, x, 1, 100, 64, one) != Q7_OK);
        printf("  batch of %lld = %lld single runs; vs CPU relative L2 %.2e; arena %.1f MiB, "
               "workspace %.1f MiB, weights %.1f MiB\n",
               (long long)n, (long long)n, rel, q7_cuda_exec_arena_bytes(e) / 1048576.0,
               q7_cuda_exec_workspace_bytes(e) / 1048576.0,
               q7_cuda_exec_weight_bytes(e) / 1048576.0);
        free(all);
        free(one);
        free(cpu);
    }
    free(x);
    q7_exec_free(c);
    q7_cuda_exec_free(e);
    q7_model_free(m);
}

/* ---- calibration on the device against the host path ---- */

struct calib_pair {
    struct q7_qdq *dev, *host; /* two QDQ sets on two loads of the same model: same node ids */
};

static enum q7_status calib_pair_hook(void * user, struct q7_cuda_exec * e,
                                      const struct q7_node * nd, const struct q7_cuda_view * dev,
                                      const struct q7_view * host)
{
    struct calib_pair * c = user;
    enum q7_status st = q7_cuda_exec_qdq_collect(e, c->dev, nd->id, dev);
    return st ? st
              : q7_qdq_collect_node(c->host, nd->id, host->data, host->n, host->c,
                                    host->h * host->w, host->batch_stride, NULL);
}

/* q7_cuda_exec_qdq_collect (max and histograms on the device) against q7_qdq_collect_node on
 * host copies of the same node outputs, over two batches (histogram growth), both placements,
 * FP32 and FP16: every calibrator and every method's amax bit-identical. */
static void test_qdq_calib(const char * pt, int64_t n, int64_t h, int64_t w)
{
    for (int mode = 0; mode < 2; mode++)
        for (int fp16 = 0; fp16 < 2; fp16++) {
            struct q7_model *ma = NULL, *mb = NULL;
            struct calib_pair c = {NULL, NULL};
            struct q7_cuda_exec * e = NULL;
            const enum q7_qdq_mode qm = mode ? Q7_QDQ_TRT : Q7_QDQ_SEED;
            CHECK_OK(q7_model_load(pt, NULL, &ma));
            CHECK_OK(q7_model_load(pt, NULL, &mb));
            if (!ma || !mb || q7_model_fuse(ma) || q7_model_fuse(mb) ||
                q7_qdq_insert(ma->graph, qm, &c.dev) || q7_qdq_insert(mb->graph, qm, &c.host)) {
                CHECKF(0, "%s: load, fuse or QDQ failed: %s", pt, q7_error_message());
                goto next;
            }
            for (int k = 0; k < 2; k++) {
                struct q7_qdq * q = k ? c.host : c.dev;
                q7_qdq_set_enabled(q, NULL, 0, NULL);
                q7_qdq_set_calibrating(q, 1);
            }
            struct q7_cuda_params cp = q7_cuda_params_default();
            cp.fp16 = fp16;
            CHECK_OK(q7_cuda_exec_create(ma->graph, &cp, &e));
            int64_t rows = 0, no = 0;
            if (!e || q7_cuda_exec_refresh_quant(e) ||
                q7_cuda_exec_output_rows(e, n, h, w, &rows, &no))
                goto next;
            uint8_t * x = xmalloc((size_t)(n * 3 * h * w));
            float * out = xmalloc((size_t)(n * rows * no) * sizeof(float));
            q7_cuda_exec_set_hook(e, calib_pair_hook, &c, 1);
            for (int batch = 0; batch < 2; batch++) { /* the second brighter: the ranges grow */
                for (int64_t i = 0; i < n * 3 * h * w; i++)
                    x[i] = (uint8_t)((q7t_rand_u64(&g_rng) & 127) + 128 * batch);
                CHECK_OK(q7_cuda_exec_run_u8(e, x, n, h, w, out));
            }
            int calibrated = 0, differ = 0;
            for (int k = 0; k < c.dev->n; k++) {
                const struct q7_quantizer *a = c.dev->q[k], *b = c.host->q[k];
                if (!a->calib_hist)
                    continue;
                int64_t na = 0, nb = 0;
                const float *xa = q7_calib_max_amax(a->calib_max, &na),
                            *xb = q7_calib_max_amax(b->calib_max, &nb);
                calibrated += q7_calib_hist_num_bins(b->calib_hist) > 0;
                if (strcmp(a->name, b->name) || na != nb || (na && *xa != *xb) ||
                    !hist_equal(a->name, a->calib_hist, b->calib_hist))
                    differ++;
            }
            const char * methods[] = {"entropy", "mse", "percentile-99.99", "max"};
            for (int mth = 0; mth < 4; mth++) {
                CHECK_OK(q7_qdq_compute_amax_named(c.dev, methods[mth], NULL));
                CHECK_OK(q7_qdq_compute_amax_named(c.host, methods[mth], NULL));
                for (int k = 0; k < c.dev->n; k++)
                    if (c.dev->q[k]->n_amax != c.host->q[k]->n_amax ||
                        (c.dev->q[k]->n_amax > 0 &&
                         memcmp(c.dev->q[k]->amax, c.host->q[k]->amax,
                                (size_t)c.dev->q[k]->n_amax * sizeof(float)) != 0))
                        differ++;
            }
            CHECKF(differ == 0 && calibrated > 0,
                   "%s %s %s: %d mismatches between device and host (calibrators, and amax by "
                   "4 methods) over %d input quantizers",
                   pt, mode ? "trt" : "seed", fp16 ? "FP16" : "FP32", differ, calibrated);
            if (differ == 0)
                printf("  device calibration (%s, %s): %d input quantizers, calibrators and 4 "
                       "methods' amax equal the host path's\n",
                       mode ? "trt" : "seed", fp16 ? "FP16" : "FP32", calibrated);
            free(x);
            free(out);
        next:
            q7_cuda_exec_free(e);
            q7_qdq_free(c.dev);
            q7_qdq_free(c.host);
            q7_model_free(ma);
            q7_model_free(mb);
        }
}

static void test_networks(void)
{
    const char * tiny = q7t_fixture("family/deploy-yolov7-tiny.pt");
    const char * v7 = q7t_fixture("family/training-yolov7.pt");
    if (fopen_ok(tiny)) {
        test_batch(tiny);
        test_hist_hook(tiny, 2, 96, 128);
        test_qdq_calib(tiny, 2, 64, 96);
        test_vs_cpu(tiny, 0, 2, 64, 96);
    }
    if (fopen_ok(v7)) {
        test_vs_cpu(v7, 0, 1, 128, 96);
        test_vs_cpu(v7, 1, 1, 128, 96);
    }
    test_family();
    test_fixture("yolov7-tiny");
    test_fixture("yolov7");
    test_qdq("yolov7-tiny", "horses");
    test_qdq("yolov7", "horses");
    test_qdq_trt("yolov7-tiny", "horses");
}

#endif
