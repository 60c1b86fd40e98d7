/* Golden end-to-end inference: q7's raw head outputs and layer statistics against the
 * reference stack's (fixtures), unfused and fused, for both fixture models and the family. */
#include "engine/q7.h"
#include "tests/test_common.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RAW_TOL 1e-4

static float * run_u8(struct q7_graph * g, const struct q7_npy * x, int use_ref, int64_t * n_out,
                      q7_exec_hook hook, void * user)
{
    struct q7_exec_params ep = q7_exec_params_default();
    ep.use_ref = use_ref;
    struct q7_exec * e = NULL;
    CHECK_OK(q7_exec_create(g, &ep, &e));
    if (!e)
        return NULL;
    q7_exec_set_hook(e, hook, user);
    int64_t rows = 0, no = 0, h = x->shape[1], w = x->shape[2];
    CHECK_OK(q7_exec_output_rows(e, 1, h, w, &rows, &no));
    float * out = malloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_exec_run_u8(e, x->data, 1, h, w, out));
    *n_out = rows * no;
    size_t arena = q7_exec_arena_bytes(e), naive = q7_exec_naive_bytes(e);
    CHECKF(arena < naive, "planned activations %zu bytes, not below unplanned %zu", arena,
           naive);
    CHECK(q7_exec_peak_bytes(e) >= arena);
    q7_exec_free(e);
    return out;
}

/* Runs `pt` on `input` and compares with `want` (relative L2). Returns the error. */
static double compare_raw(const char * pt, const char * input, const char * want, int fused,
                          int use_ref)
{
    struct q7_npy x = {0}, ref = {0};
    CHECK_OK(q7_npy_load(input, &x));
    CHECK_OK(q7_npy_load(want, &ref));
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(pt, NULL, &m));
    double err = INFINITY;
    if (m && x.data && ref.data && (!fused || q7_model_fuse(m) == Q7_OK)) {
        int64_t n = 0;
        float * out = run_u8(m->graph, &x, use_ref, &n, NULL, NULL);
        CHECKF(out && n == q7_npy_numel(&ref), "%s: %lld outputs, reference has %lld", pt,
               (long long)n, (long long)q7_npy_numel(&ref));
        if (out && n == q7_npy_numel(&ref))
            err = q7t_rel_l2(out, ref.data, (size_t)n);
        free(out);
    }
    CHECKF(err < RAW_TOL, "%s %s: relative L2 %.3g vs %s", pt, fused ? "fused" : "unfused", err,
           want);
    printf("  %-52s %-7s relative L2 %.2e\n", pt, fused ? "fused" : "origin", err);
    q7_model_free(m);
    q7_npy_free(&x);
    q7_npy_free(&ref);
    return err;
}

static void test_fixture(const char * model)
{
    /* the image with a raw output: ref/raw_origin_<img>.npy */
    char dir[512], img[128] = "";
    snprintf(dir, sizeof dir, "%s/ref", q7t_fixture(model));
    DIR * d = opendir(dir);
    if (!d) {
        CHECKF(0, "cannot list %s", dir);
        return;
    }
    struct dirent * de;
    while ((de = readdir(d)))
        if (strncmp(de->d_name, "raw_origin_", 11) == 0)
            snprintf(img, sizeof img, "%.*s", (int)(strlen(de->d_name) - 15), de->d_name + 11);
    closedir(d);
    CHECKF(img[0], "%s: no raw_origin_*.npy", dir);
    char pt[512], in[768], want[768]; /* dir + name: no truncation */
    snprintf(pt, sizeof pt, "%s/model.pt", q7t_fixture(model));
    snprintf(in, sizeof in, "%s/input_%s.npy", dir, img);
    for (int fused = 0; fused < 2; fused++) {
        snprintf(want, sizeof want, "%s/raw_%s_%s.npy", dir, fused ? "fused" : "origin", img);
        compare_raw(pt, in, want, fused, 0);
    }
}

struct layer_stats {
    const struct q7_graph * g;
    const cJSON * layers;
    int checked, bad;
};

static void stats_hook(void * user, const struct q7_node * nd, const struct q7_view * v)
{
    struct layer_stats * s = user;
    int layer = -1;
    for (int l = 0; l < s->g->n_layers; l++)
        if (s->g->layers[l].out_node == nd->id)
            layer = l;
    if (layer < 0)
        return;
    const cJSON * ref = cJSON_GetArrayItem(s->layers, layer);
    if (!ref)
        return;
    double sum = 0, abs_sum = 0, sq = 0;
    int64_t hw = v->h * v->w;
    for (int64_t c = 0; c < v->c; c++)
        for (int64_t i = 0; i < hw; i++) {
            double x = v->data[c * hw + i];
            sum += x;
            abs_sum += fabs(x);
            sq += x * x;
        }
    double want_abs = cJSON_GetObjectItem(ref, "abs_sum")->valuedouble;
    double want_l2 = cJSON_GetObjectItem(ref, "l2")->valuedouble;
    double want_sum = cJSON_GetObjectItem(ref, "sum")->valuedouble;
    int ok = fabs(abs_sum - want_abs) <= 1e-4 * want_abs &&
             fabs(sqrt(sq) - want_l2) <= 1e-4 * want_l2 &&
             fabs(sum - want_sum) <= 1e-4 * want_abs;
    const cJSON * first = cJSON_GetObjectItem(ref, "first8");
    for (int k = 0; k < 8 && k < cJSON_GetArraySize(first); k++) {
        double want = cJSON_GetArrayItem(first, k)->valuedouble;
        ok &= fabs(v->data[k] - want) <= 1e-4 * (1.0 + fabs(want));
    }
    s->checked++;
    if (!ok) {
        s->bad++;
        fprintf(stderr, "  layer %d: sum %.6g abs_sum %.6g l2 %.6g; want %.6g %.6g %.6g\n",
                layer, sum, abs_sum, sqrt(sq), want_sum, want_abs, want_l2);
    }
}

static void test_layers(const char * model)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ref/layers_origin.json", model);
    cJSON * ref = q7t_json_load(q7t_fixture(path));
    const char * image = cJSON_GetObjectItem(ref, "image")->valuestring;
    char in[512], pt[512];
    snprintf(in, sizeof in, "%s/ref/input_%s.npy", q7t_fixture(model), image);
    snprintf(pt, sizeof pt, "%s/model.pt", q7t_fixture(model));
    struct q7_npy x = {0};
    struct q7_model * m = NULL;
    CHECK_OK(q7_npy_load(in, &x));
    CHECK_OK(q7_model_load(pt, NULL, &m));
    if (m && x.data) {
        struct layer_stats s = {m->graph, cJSON_GetObjectItem(ref, "layers"), 0, 0};
        int64_t n;
        free(run_u8(m->graph, &x, 0, &n, stats_hook, &s));
        CHECKF(s.bad == 0 && s.checked == cJSON_GetArraySize(s.layers),
               "%s: %d of %d layers differ from layers_origin.json", model, s.bad, s.checked);
        printf("  %s: %d layer statistics match layers_origin.json\n", model, s.checked - s.bad);
    }
    q7_model_free(m);
    q7_npy_free(&x);
    cJSON_Delete(ref);
}

static void test_family(void)
{
    cJSON * fam = q7t_json_load(q7t_fixture("family/family.json"));
    const cJSON * entry;
    cJSON_ArrayForEach(entry, fam)
    {
        char pt[512], in[512], want[512];
        snprintf(pt, sizeof pt, "%s/%s.pt", q7t_fixture("family"), entry->string);
        snprintf(in, sizeof in, "%s/%s.input.npy", q7t_fixture("family"), entry->string);
        for (int fused = 0; fused < 2; fused++) {
            snprintf(want, sizeof want, "%s/%s.raw_%s.npy", q7t_fixture("family"),
                     entry->string, fused ? "fused" : "origin");
            compare_raw(pt, in, want, fused, 0);
        }
    }
    /* the scalar reference kernels give the same answer on one small model */
    char pt[512], in[512], want[512];
    snprintf(pt, sizeof pt, "%s/training-yolov7.pt", q7t_fixture("family"));
    snprintf(in, sizeof in, "%s/training-yolov7.input.npy", q7t_fixture("family"));
    snprintf(want, sizeof want, "%s/training-yolov7.raw_origin.npy", q7t_fixture("family"));
    compare_raw(pt, in, want, 0, 1);
    cJSON_Delete(fam);
}

/* A batch of two equals two single runs; a bad input size is refused with a message. */
static void test_batch(void)
{
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(q7t_fixture("family/deploy-yolov7-tiny.pt"), NULL, &m));
    if (!m)
        return;
    struct q7_exec * e = NULL;
    CHECK_OK(q7_exec_create(m->graph, NULL, &e));
    const int64_t h = 96, w = 64;
    uint64_t seed = 3;
    float * x = malloc((size_t)(2 * 3 * h * w) * sizeof(float));
    for (int64_t i = 0; i < 2 * 3 * h * w; i++)
        x[i] = q7t_rand_uniform(&seed, 0, 1);
    int64_t rows, no;
    CHECK_OK(q7_exec_output_rows(e, 2, h, w, &rows, &no));
    float * both = malloc((size_t)(2 * rows * no) * sizeof(float));
    float * one = malloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_exec_run(e, x, 2, h, w, both));
    for (int k = 0; k < 2; k++) {
        CHECK_OK(q7_exec_run(e, x + k * 3 * h * w, 1, h, w, one));
        CHECK(q7t_compare("batch", both + k * rows * no, one, (size_t)(rows * no), 1e-5, 1e-5,
                          5) == 0);
    }
    CHECK(q7_exec_run(e, x, 1, 100, 64, one) == Q7_ERR_ARG);
    CHECK(strstr(q7_error_message(), "multiples of 32") != NULL);
    free(x);
    free(both);
    free(one);
    q7_exec_free(e);
    q7_model_free(m);
}

/* ---- the evaluation loop as a pipeline (runners with submit + wait, as CUDA's) ---- */

/* The CPU runner split in two: submit records the batch, wait runs it. Every call is logged:
 * 'S' submit, 'W' wait, 'B' a batch scored (on_batch). */
struct split_runner {
    struct q7_runner cpu;
    const uint8_t * x;
    int64_t n, h, w;
    float * out;
    int in_flight;
    char log[256];
    int n_log;
};

static void split_log(struct split_runner * r, char c)
{
    if (r->n_log < (int)sizeof r->log - 1)
        r->log[r->n_log++] = c;
}

static enum q7_status split_rows(void * ctx, int64_t n, int64_t h, int64_t w, int64_t * rows,
                                 int64_t * no)
{
    struct split_runner * r = ctx;
    return r->cpu.rows(r->cpu.ctx, n, h, w, rows, no);
}

static enum q7_status split_run(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                                float * out)
{
    struct split_runner * r = ctx;
    return r->cpu.run_u8(r->cpu.ctx, x, n, h, w, out);
}

static enum q7_status split_submit(void * ctx, const uint8_t * x, int64_t n, int64_t h,
                                   int64_t w, float * out)
{
    struct split_runner * r = ctx;
    if (r->in_flight)
        return q7_error_set(Q7_ERR_ARG, "submit with a batch in flight");
    split_log(r, 'S');
    r->x = x;
    r->n = n;
    r->h = h;
    r->w = w;
    r->out = out;
    r->in_flight = 1;
    return Q7_OK;
}

static enum q7_status split_wait(void * ctx)
{
    struct split_runner * r = ctx;
    split_log(r, 'W');
    if (!r->in_flight)
        return Q7_OK;
    r->in_flight = 0;
    return r->cpu.run_u8(r->cpu.ctx, r->x, r->n, r->h, r->w, r->out);
}

static void split_on_batch(void * user, int index, int n)
{
    (void)index;
    (void)n;
    split_log(user, 'B');
}

/* The same evaluation through run_u8 and through submit + wait: equal results, and each batch
 * scored only after the next one was submitted (the overlap the pipeline is for). */
static void test_eval_pipeline(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data/val.txt", q7t_fixture("yolov7-tiny"));
    struct q7_model * m = NULL;
    struct q7_dataset * ds = NULL;
    struct q7_exec * e = NULL;
    FILE * f = fopen(path, "r");
    if (!f) {
        printf("  (yolov7-tiny photos missing: pipeline test skipped)\n");
        return;
    }
    fclose(f);
    CHECK_OK(q7_model_load(q7t_fixture("yolov7-tiny/model.pt"), NULL, &m));
    CHECK_OK(q7_dataset_load(path, NULL, &ds));
    if (m)
        CHECK_OK(q7_exec_create(m->graph, NULL, &e));
    if (!m || !ds || !e)
        goto done;
    struct q7_eval_params ep = q7_eval_params_default();
    ep.batch = 2; /* 7 photos: 4 batches */
    ep.img_size = 320;
    ep.progress = 0;
    struct q7_eval_result a, b;
    struct split_runner sr = {.cpu = q7_runner_cpu(e, m->graph)};
    struct q7_runner split = {.ctx = &sr, .rows = split_rows, .run_u8 = split_run,
                              .submit_u8 = split_submit, .wait = split_wait,
                              .stride = sr.cpu.stride, .nc = sr.cpu.nc};
    CHECK_OK(q7_evaluate(&sr.cpu, ds, &ep, &a));
    ep.on_batch = split_on_batch;
    ep.user = &sr;
    CHECK_OK(q7_evaluate(&split, ds, &ep, &b));
    sr.log[sr.n_log] = '\0';
    CHECK(a.images == 7 && b.images == 7 && a.n_dets == b.n_dets);
    CHECK(a.metric.map50 == b.metric.map50 && a.metric.map == b.metric.map &&
          a.metric.p == b.metric.p && a.metric.r == b.metric.r &&
          memcmp(a.coco_stats, b.coco_stats, sizeof a.coco_stats) == 0);
    for (size_t i = 0; i < a.n_dets && i < b.n_dets; i++)
        if (memcmp(&a.dets[i], &b.dets[i], sizeof a.dets[i]) != 0) {
            CHECKF(0, "detection %zu differs", i);
            break;
        }
    CHECKF(strcmp(sr.log, "SWSBWSBWSBWB") == 0, "pipeline order %s", sr.log);
    q7_eval_result_free(&b);
    /* a calibration-style subset: stops after 2 batches, both scored */
    sr.n_log = 0;
    ep.max_batches = 2;
    CHECK_OK(q7_evaluate(&split, ds, &ep, &b));
    sr.log[sr.n_log] = '\0';
    CHECKF(strcmp(sr.log, "SWSBWB") == 0 && b.images == 4, "max_batches: %s, %d images",
           sr.log, b.images);
    printf("  evaluation pipeline (submit + wait): same detections and metric as run_u8, "
           "batches scored while the next one runs\n");
    q7_eval_result_free(&a);
    q7_eval_result_free(&b);
done:
    q7_exec_free(e);
    q7_dataset_free(ds);
    q7_model_free(m);
}

int main(void)
{
    q7t_require(q7t_fixture("family/family.json"));
    q7_log_set_level(Q7_LOG_WARN);
    test_batch();
    test_eval_pipeline();
    test_family();
    test_fixture("yolov7-tiny");
    test_fixture("yolov7");
    test_layers("yolov7-tiny");
    test_layers("yolov7");
    return q7t_finish("test_run");
}
