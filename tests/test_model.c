/* Golden tests for models → graph and the fusion passes: parameter counts, layer counts and
 * GFLOPs against ref/info.json and family/family.json; every pass keeps the outputs. */
#include "engine/q7.h"
#include "models/yaml_cfg.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t json_int(const cJSON * o, const char * key)
{
    const cJSON * v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static double json_num(const cJSON * o, const char * key)
{
    const cJSON * v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Fixture models against ref/info.json. */
static void test_info(const char * model)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ref/info.json", model);
    cJSON * info = q7t_json_load(q7t_fixture(path));
    snprintf(path, sizeof path, "%s/model.pt", model);
    const char * pt = q7t_fixture(path);
    for (int fused = 0; fused < 2; fused++) {
        const cJSON * ref = cJSON_GetObjectItemCaseSensitive(info, fused ? "fused" : "unfused");
        struct q7_model * m = NULL;
        CHECK_OK(q7_model_load(pt, NULL, &m));
        if (!m)
            continue;
        if (fused)
            CHECK_OK(q7_model_fuse(m));
        struct q7_graph * g = m->graph;
        int64_t params = q7_graph_count_params(g);
        CHECKF(params == json_int(ref, "params"), "%s fused=%d: params %lld, want %lld", model,
               fused, (long long)params, (long long)json_int(ref, "params"));
        CHECKF(g->n_layers == json_int(ref, "top_level_layers"), "%s: %d layers", model,
               g->n_layers);
        int convs = 0;
        for (int i = 0; i < g->n_nodes; i++)
            convs += g->nodes[i]->op == Q7_OP_CONV2D;
        CHECKF(convs == json_int(ref, "conv_layers"), "%s fused=%d: %d convs, want %lld", model,
               fused, convs, (long long)json_int(ref, "conv_layers"));
        double gf = q7_graph_gflops(g, 640), want = json_num(ref, "gflops_640");
        CHECKF(fabs(gf - want) <= 1e-3 * want + 0.0005, "%s fused=%d: %.4f GFLOPs, want %.3f",
               model, fused, gf, want);
        /* per-layer params and types (unfused: the layer table) */
        const cJSON * layers = cJSON_GetObjectItemCaseSensitive(ref, "layers");
        int i = 0;
        const cJSON * L;
        cJSON_ArrayForEach(L, layers)
        {
            if (i >= g->n_layers)
                break;
            const cJSON * type = cJSON_GetObjectItemCaseSensitive(L, "type");
            CHECKF(cJSON_IsString(type) && strcmp(type->valuestring, g->layers[i].type) == 0,
                   "%s layer %d: type %s", model, i, g->layers[i].type);
            if (!fused)
                CHECKF(g->layers[i].params == json_int(L, "params"),
                       "%s layer %d: %lld params, want %lld", model, i,
                       (long long)g->layers[i].params, (long long)json_int(L, "params"));
            i++;
        }
        q7_model_free(m);
    }
    cJSON_Delete(info);
}

/* Full-size configs (shapes only) and narrow checkpoints against family.json. */
static void test_family(void)
{
    cJSON * fam = q7t_json_load(q7t_fixture("family/family.json"));
    const cJSON * entry;
    cJSON_ArrayForEach(entry, fam)
    {
        const char * key = entry->string; /* "training-yolov7-d6" */
        const char * dash = strchr(key, '-');
        char cfg[512];
        snprintf(cfg, sizeof cfg, "family/cfg/%.*s/%s.yaml", (int)(dash - key), key, dash + 1);
        struct q7_model_params mp = q7_model_params_default();
        mp.shapes_only = 1;
        struct q7_model * m = NULL;
        CHECK_OK(q7_model_load(q7t_fixture(cfg), &mp, &m));
        if (m) {
            int64_t params = 0;
            for (int i = 0; i < m->graph->n_layers; i++)
                params += m->graph->layers[i].params;
            CHECKF(params == json_int(entry, "params"), "%s: params %lld, want %lld", key,
                   (long long)params, (long long)json_int(entry, "params"));
            CHECKF(m->graph->n_layers == json_int(entry, "top_level_layers"), "%s: %d layers",
                   key, m->graph->n_layers);
            int img = (int)json_int(entry, "img_size");
            CHECKF(m->graph->img_size == img, "%s: native size %d, want %d", key,
                   m->graph->img_size, img);
            double gf = q7_graph_gflops(m->graph, img), want = json_num(entry, "gflops");
            CHECKF(fabs(gf - want) <= 1e-3 * want, "%s: %.3f GFLOPs, want %.3f", key, gf, want);
            q7_model_free(m);
        }
        const cJSON * narrow = cJSON_GetObjectItemCaseSensitive(entry, "narrow");
        char pt[512];
        snprintf(pt, sizeof pt, "family/%s", cJSON_GetObjectItem(narrow, "file")->valuestring);
        for (int fused = 0; fused < 2; fused++) {
            m = NULL;
            CHECK_OK(q7_model_load(q7t_fixture(pt), NULL, &m));
            if (!m)
                continue;
            if (fused)
                CHECK_OK(q7_model_fuse(m));
            int64_t want = json_int(narrow, fused ? "params_fused" : "params");
            int64_t got = q7_graph_count_params(m->graph);
            CHECKF(got == want, "%s fused=%d: params %lld, want %lld", pt, fused,
                   (long long)got, (long long)want);
            q7_model_free(m);
        }
    }
    cJSON_Delete(fam);
}

static float * run_graph(struct q7_graph * g, const float * x, int64_t h, int64_t w,
                         int64_t * n_out)
{
    struct q7_exec * e = NULL;
    float * out = NULL;
    int64_t rows = 0, no = 0;
    CHECK_OK(q7_exec_create(g, NULL, &e));
    if (!e)
        return NULL;
    CHECK_OK(q7_exec_output_rows(e, 1, h, w, &rows, &no));
    out = malloc((size_t)(rows * no) * sizeof(float));
    CHECK_OK(q7_exec_run(e, x, 1, h, w, out));
    *n_out = rows * no;
    q7_exec_free(e);
    return out;
}

/* Each pass alone keeps the output (golden: before vs after). */
static void test_passes(const char * pt)
{
    uint64_t seed = 7;
    const int64_t h = 128, w = 192; /* multiples of 64 for P6 models */
    float * x = malloc((size_t)(3 * h * w) * sizeof(float));
    for (int64_t i = 0; i < 3 * h * w; i++)
        x[i] = q7t_rand_uniform(&seed, 0.0f, 1.0f);
    struct q7_model * m = NULL;
    CHECK_OK(q7_model_load(q7t_fixture(pt), NULL, &m));
    if (!m) {
        free(x);
        return;
    }
    int64_t n0 = 0, n1 = 0;
    float * before = run_graph(m->graph, x, h, w, &n0);
    enum q7_status (*passes[4])(struct q7_graph *, int *) = {
        q7_pass_fold_bn, q7_pass_fuse_repconv, q7_pass_fold_implicit, q7_pass_fuse_act};
    const char * names[4] = {"fold_bn", "fuse_repconv", "fold_implicit", "fuse_act"};
    for (int k = 0; k < 4; k++) {
        int n = 0;
        CHECK_OK(passes[k](m->graph, &n));
        CHECK_OK(q7_graph_compact(m->graph));
        float * after = run_graph(m->graph, x, h, w, &n1);
        if (before && after && n0 == n1) {
            double err = q7t_rel_l2(after, before, (size_t)n0);
            CHECKF(err < 1e-5, "%s after %s (%d rewrites): relative L2 %.3g", pt, names[k], n,
                   err);
            printf("  %-40s %-13s %3d rewrites, relative L2 vs before %.2e\n", pt, names[k], n,
                   err);
        }
        free(after);
    }
    free(before);
    free(x);
    q7_model_free(m);
}

static void test_hostile_graphs(void)
{
    /* a Model without its Sequential, a wrong class: clear errors */
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * model = q7_py_object(h, "models.yolo", "Model");
    struct q7_graph * g = NULL;
    CHECK(q7_yolo_build_graph(model, "fake.pt", &g) == Q7_ERR_FORMAT);
    CHECK(strstr(q7_error_message(), "fake.pt") != NULL);
    struct q7_py * root = q7_py_new(h, Q7_PY_DICT);
    CHECK(q7_yolo_find_model(root, "sd.pt") == NULL);
    CHECK(strstr(q7_error_message(), "--cfg") != NULL);
    q7_pyheap_free(h);
}

struct sd_build {
    struct q7_pyheap * heap;
    struct q7_py * dict;
};

static enum q7_status sd_add(void * user, const char * name, const struct q7_py * t,
                             int is_buffer)
{
    (void)is_buffer;
    struct sd_build * b = user;
    return q7_py_dict_set_str(b->heap, b->dict, name, (struct q7_py *)t);
}

/* A bare state_dict (name -> tensor) with the structure from a yaml config, as
 * `q7 run --weights sd.pt --cfg cfg.yaml` loads it: same output as the full checkpoint. */
static void test_state_dict_with_cfg(void)
{
    struct q7_model * full = NULL;
    CHECK_OK(q7_model_load(q7t_fixture("family/training-yolov7.pt"), NULL, &full));
    if (!full)
        return;
    struct sd_build b = {q7_pyheap_create(), NULL};
    b.dict = q7_py_new(b.heap, Q7_PY_DICT);
    CHECK_OK(q7_py_state_dict_walk(full->module, "", sd_add, &b));
    /* the narrow checkpoint's own config: yolov7.yaml at width_multiple 1/16 */
    struct q7_cfg_params cp = q7_cfg_params_default();
    cp.width_multiple = 0.0625;
    struct q7_py * model = NULL;
    CHECK_OK(q7_yolo_model_from_yaml(q7t_fixture("family/cfg/training/yolov7.yaml"), &cp,
                                     b.heap, &model));
    CHECK_OK(q7_yolo_model_load_state_dict(model, b.dict, "state_dict"));
    struct q7_graph * g = NULL;
    CHECK_OK(q7_yolo_build_graph(model, "state_dict", &g));
    if (g) {
        uint64_t seed = 5;
        float x[3 * 64 * 64];
        for (int i = 0; i < 3 * 64 * 64; i++)
            x[i] = q7t_rand_uniform(&seed, 0, 1);
        int64_t n0 = 0, n1 = 0;
        float * a = run_graph(g, x, 64, 64, &n0);
        float * want = run_graph(full->graph, x, 64, 64, &n1);
        CHECK(a && want && n0 == n1 && q7t_compare("state_dict+cfg", a, want, (size_t)n0, 0, 0, 5) == 0);
        free(a);
        free(want);
    }
    /* a state_dict that lacks a tensor is refused with its name */
    struct q7_py * model2 = NULL;
    struct q7_py * partial = q7_py_new(b.heap, Q7_PY_DICT);
    CHECK_OK(q7_yolo_model_from_yaml(q7t_fixture("family/cfg/training/yolov7.yaml"), &cp,
                                     b.heap, &model2));
    CHECK(q7_yolo_model_load_state_dict(model2, partial, "sd.pt") != Q7_OK);
    CHECK(strstr(q7_error_message(), "sd.pt") != NULL);
    q7_graph_free(g);
    q7_pyheap_free(b.heap);
    q7_model_free(full);
}

int main(void)
{
    q7t_require(q7t_fixture("family/family.json"));
    q7_log_set_level(Q7_LOG_WARN);
    test_info("yolov7-tiny");
    test_info("yolov7");
    test_family();
    test_passes("family/training-yolov7.pt");     /* RepConv with identity BN, IDetect */
    test_passes("family/training-yolov7-e6e.pt"); /* IAuxDetect, ReOrg, DownC */
    test_passes("family/deploy-yolov7-tiny.pt");  /* LeakyReLU, Detect */
    test_hostile_graphs();
    test_state_dict_with_cfg();
    return q7t_finish("test_model");
}
