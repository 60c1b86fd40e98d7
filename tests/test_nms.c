/* NMS: golden against yolov7's non_max_suppression + scale_coords on the fixtures' raw head
 * output, plus unit cases (no candidates, agnostic, class filter, best class, max_det,
 * max_nms, scale_coords without ratio_pad). */
#include "eval/nms.h"
#include "models/npy.h"
#include "tests/test_common.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NO_TEST 7 /* 5 + 2 classes for the unit cases */

/* ---------------------------------------------------------------- golden */

static const cJSON * jget(const cJSON * o, const char * key)
{
    const cJSON * it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it) {
        fprintf(stderr, "fixture json: missing key %s\n", key);
        exit(1);
    }
    return it;
}

static double jnum(const cJSON * arr, int i)
{
    return cJSON_GetArrayItem(arr, i)->valuedouble;
}

/* The image that has a raw_origin_<img>.npy in <model>/ref (one per model). */
static int find_raw_image(const char * model, char * img, size_t cap)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/ref", model);
    DIR * d = opendir(q7t_fixture(rel));
    if (!d)
        return 0;
    struct dirent * de;
    int found = 0;
    while (!found && (de = readdir(d)) != NULL) {
        const char * pre = "raw_origin_";
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, pre, strlen(pre)) == 0 && n > strlen(pre) + 4 &&
            strcmp(de->d_name + n - 4, ".npy") == 0) {
            snprintf(img, cap, "%.*s", (int)(n - strlen(pre) - 4), de->d_name + strlen(pre));
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static void golden(const char * model)
{
    char img[128], rel[512];
    if (!find_raw_image(model, img, sizeof img)) {
        printf("SKIP: no %s/ref/raw_origin_*.npy\n", model);
        exit(Q7_TEST_SKIP);
    }
    snprintf(rel, sizeof rel, "%s/ref/table.json", model);
    cJSON * table = q7t_json_load(q7t_fixture(rel));
    const cJSON * meta = jget(table, "meta");
    const cJSON * shape = jget(jget(meta, "shapes"), img);
    const cJSON * hw = jget(shape, "orig_hw");
    const cJSON * rp = jget(shape, "ratio_pad");
    const cJSON *gain = cJSON_GetArrayItem(rp, 0), *pad = cJSON_GetArrayItem(rp, 1);
    struct q7_ratio_pad ratio_pad = {jnum(gain, 0), jnum(gain, 1), jnum(pad, 0), jnum(pad, 1)};
    const int h0 = (int)jnum(hw, 0), w0 = (int)jnum(hw, 1);

    struct q7_npy raw = {0}, input = {0}, ref = {0};
    snprintf(rel, sizeof rel, "%s/ref/raw_origin_%s.npy", model, img);
    q7t_require(q7t_fixture(rel));
    CHECK_OK(q7_npy_load(q7t_fixture(rel), &raw));
    snprintf(rel, sizeof rel, "%s/ref/input_%s.npy", model, img);
    CHECK_OK(q7_npy_load(q7t_fixture(rel), &input));
    snprintf(rel, sizeof rel, "%s/ref/nms_origin_%s.npy", model, img);
    CHECK_OK(q7_npy_load(q7t_fixture(rel), &ref));
    if (q7t_failures) {
        cJSON_Delete(table);
        return;
    }
    CHECK(raw.dtype == Q7_DTYPE_F32 && raw.ndim == 2 && ref.ndim == 2 && ref.shape[1] == 6 &&
          input.ndim == 3);
    const int H = (int)input.shape[1], W = (int)input.shape[2];

    struct q7_nms_params p = q7_nms_params_default();
    p.conf_thres = (float)cJSON_GetObjectItem(meta, "conf_thres")->valuedouble;
    p.iou_thres = cJSON_GetObjectItem(meta, "iou_thres")->valuedouble;
    float * out = NULL;
    int n = 0;
    double t0 = q7_time_now();
    CHECK_OK(q7_nms(raw.data, raw.shape[0], (int)raw.shape[1], &p, &out, &n));
    double t1 = q7_time_now();
    q7_scale_coords(H, W, out, n, Q7_NMS_ROW, h0, w0, &ratio_pad);

    const float * r = ref.data;
    CHECKF(n == (int)ref.shape[0], "%s: %d boxes, reference %lld", model, n,
           (long long)ref.shape[0]);
    double max_box = 0, max_conf = 0;
    int cls_bad = 0, exact = 0;
    const int m = n < (int)ref.shape[0] ? n : (int)ref.shape[0];
    for (int i = 0; i < m; i++) {
        const float *a = out + (size_t)i * 6, *b = r + (size_t)i * 6;
        int same = 1;
        for (int k = 0; k < 4; k++) {
            max_box = fmax(max_box, fabs((double)a[k] - b[k]));
            same &= a[k] == b[k];
        }
        max_conf = fmax(max_conf, fabs((double)a[4] - b[4]));
        same &= a[4] == b[4] && a[5] == b[5];
        exact += same;
        if (a[5] != b[5] && cls_bad++ < 5)
            fprintf(stderr, "%s row %d: class %g, reference %g\n", model, i, (double)a[5],
                    (double)b[5]);
    }
    q7t_compare("nms boxes", out, r, (size_t)m * 6, 1e-4, 0, 5);
    CHECK(cls_bad == 0);
    CHECKF(max_box <= 1e-4 && max_conf <= 1e-4, "%s: max diff box %.3g conf %.3g", model, max_box,
           max_conf);
    printf("%s (%s, %lld x %lld raw): %d boxes, %d rows bit-exact, max |diff| box %.3g conf "
           "%.3g, %.1f ms\n",
           model, img, (long long)raw.shape[0], (long long)raw.shape[1], n, exact, max_box,
           max_conf, (t1 - t0) * 1e3);
    free(out);
    q7_npy_free(&raw);
    q7_npy_free(&input);
    q7_npy_free(&ref);
    cJSON_Delete(table);
}

/* ---------------------------------------------------------------- unit cases */

static void set_row(float * r, float cx, float cy, float w, float h, float obj, float c0, float c1)
{
    r[0] = cx, r[1] = cy, r[2] = w, r[3] = h, r[4] = obj, r[5] = c0, r[6] = c1;
}

static void unit_no_candidates(void)
{
    float pred[2 * NO_TEST];
    set_row(pred, 10, 10, 4, 4, 0.0005f, 0.9f, 0.9f);            /* obj below conf */
    set_row(pred + NO_TEST, 10, 10, 4, 4, 0.5f, 0.001f, 0.001f); /* obj * cls below conf */
    struct q7_nms_params p = q7_nms_params_default();
    float * out = (float *)1;
    int n = -1;
    CHECK_OK(q7_nms(pred, 2, NO_TEST, &p, &out, &n));
    CHECK(n == 0 && out == NULL);
    CHECK_OK(q7_nms(NULL, 0, NO_TEST, &p, &out, &n));
    CHECK(n == 0 && out == NULL);
    CHECK(q7_nms(pred, 2, 5, &p, &out, &n) == Q7_ERR_ARG);
    CHECK(q7_nms(pred, -1, NO_TEST, &p, &out, &n) == Q7_ERR_ARG);
}

/* Two overlapping boxes (IoU 380 / 420 = 0.905) of different classes; a third far away. */
static void fill_overlap(float * pred)
{
    set_row(pred, 50, 50, 20, 20, 1.0f, 0.9f, 0.0f);                 /* class 0, conf .9 */
    set_row(pred + NO_TEST, 51, 50, 20, 20, 1.0f, 0.0f, 0.8f);       /* class 1, conf .8 */
    set_row(pred + 2 * NO_TEST, 200, 200, 10, 10, 1.0f, 0.5f, 0.0f); /* class 0, far */
}

static void unit_agnostic_and_filter(void)
{
    float pred[3 * NO_TEST];
    fill_overlap(pred);
    struct q7_nms_params p = q7_nms_params_default();
    float * out = NULL;
    int n = 0;
    CHECK_OK(q7_nms(pred, 3, NO_TEST, &p, &out, &n));
    CHECK(n == 3); /* class-aware: no suppression across classes */
    if (n == 3)
        CHECK(out[4] == 0.9f && out[5] == 0 && out[6 + 4] == 0.8f && out[6 + 5] == 1 &&
              out[12 + 4] == 0.5f && out[0] == 40.0f && out[2] == 60.0f);
    free(out);
    p.agnostic = 1;
    CHECK_OK(q7_nms(pred, 3, NO_TEST, &p, &out, &n));
    CHECK(n == 2 && out[5] == 0 && out[6 + 4] == 0.5f); /* the class-1 box is suppressed */
    free(out);
    p.agnostic = 0;
    const int keep1[] = {1};
    p.classes = keep1;
    p.n_classes = 1;
    CHECK_OK(q7_nms(pred, 3, NO_TEST, &p, &out, &n));
    CHECK(n == 1 && out[5] == 1.0f);
    free(out);
    /* 0.905 > 0.65 suppresses (above), 0.905 > 0.95 does not */
    p = q7_nms_params_default();
    p.agnostic = 1;
    p.iou_thres = 0.95;
    CHECK_OK(q7_nms(pred, 3, NO_TEST, &p, &out, &n));
    CHECK(n == 3);
    free(out);
}

static void unit_best_class_and_multilabel(void)
{
    float pred[NO_TEST];
    set_row(pred, 30, 30, 10, 10, 0.5f, 0.4f, 0.6f);
    struct q7_nms_params p = q7_nms_params_default();
    float * out = NULL;
    int n = 0;
    CHECK_OK(q7_nms(pred, 1, NO_TEST, &p, &out, &n));
    /* multi-label: both classes, in score order (0.3 for class 1, 0.2 for class 0) */
    CHECK(n == 2 && out[5] == 1 && out[4] == 0.6f * 0.5f && out[6 + 5] == 0 &&
          out[6 + 4] == 0.4f * 0.5f);
    free(out);
    p.multi_label = 0;
    CHECK_OK(q7_nms(pred, 1, NO_TEST, &p, &out, &n));
    CHECK(n == 1 && out[5] == 1 && out[4] == 0.3f);
    free(out);
    /* best class ties: the first maximum (class 0) wins */
    set_row(pred, 30, 30, 10, 10, 0.5f, 0.6f, 0.6f);
    CHECK_OK(q7_nms(pred, 1, NO_TEST, &p, &out, &n));
    CHECK(n == 1 && out[5] == 0);
    free(out);
    /* a NaN class score is the max in torch and drops the row */
    set_row(pred, 30, 30, 10, 10, 0.5f, 0.6f, NAN);
    CHECK_OK(q7_nms(pred, 1, NO_TEST, &p, &out, &n));
    CHECK(n == 0);
    free(out);
}

static void unit_caps(void)
{
    enum { N = 50 };
    float pred[N * NO_TEST];
    for (int i = 0; i < N; i++) /* disjoint boxes, decreasing scores */
        set_row(pred + i * NO_TEST, 20.0f * (float)i + 5, 5, 8, 8, 1.0f, 0.9f - 0.01f * (float)i,
                0.0f);
    struct q7_nms_params p = q7_nms_params_default();
    p.max_det = 7;
    float * out = NULL;
    int n = 0;
    CHECK_OK(q7_nms(pred, N, NO_TEST, &p, &out, &n));
    CHECK(n == 7);
    for (int i = 0; i < n && i < 7; i++)
        CHECK(out[i * 6 + 4] == 0.9f - 0.01f * (float)i);
    free(out);
    /* max_nms: only the 5 best go into NMS */
    p = q7_nms_params_default();
    p.max_nms = 5;
    CHECK_OK(q7_nms(pred, N, NO_TEST, &p, &out, &n));
    CHECK(n == 5 && out[4 * 6 + 4] == 0.9f - 0.04f);
    free(out);
    /* equal scores keep candidate order */
    for (int i = 0; i < N; i++)
        pred[i * NO_TEST + 5] = 0.5f;
    p = q7_nms_params_default();
    CHECK_OK(q7_nms(pred, N, NO_TEST, &p, &out, &n));
    CHECK(n == N);
    int ordered = 1;
    for (int i = 1; i < n; i++)
        ordered &= out[i * 6] > out[(i - 1) * 6];
    CHECK(ordered);
    free(out);
    p.max_det = 0;
    CHECK_OK(q7_nms(pred, N, NO_TEST, &p, &out, &n));
    CHECK(n == 0 && out == NULL);
}

/* Boxes of classes whose offset ranges overlap (boxes wider than max_wh): the general path. */
static void unit_wide_boxes(void)
{
    float pred[2 * NO_TEST];
    set_row(pred, 100, 100, 50, 50, 1.0f, 0.9f, 0.0f);
    set_row(pred + NO_TEST, 100, 100, 50, 50, 1.0f, 0.0f, 0.8f);
    struct q7_nms_params p = q7_nms_params_default();
    p.max_wh = 2.0f; /* class offset smaller than the boxes: they overlap across classes */
    float * out = NULL;
    int n = 0;
    CHECK_OK(q7_nms(pred, 2, NO_TEST, &p, &out, &n));
    CHECK(n == 1); /* offset 2 px on 50 px boxes: IoU 2304 / 2696 = 0.855 > 0.65 */
    free(out);
}

/* The algorithm as written in yolov7 + torchvision, without q7's shortcuts (early stop at
 * max_det, per-class inner loops): O(n^2), multi-label only. */
struct naive_det {
    float box[4], conf, cls;
};

static int naive_nms(const float * pred, int rows, int no, const struct q7_nms_params * p,
                     float * out)
{
    const int nc = no - 5;
    struct naive_det * d = malloc((size_t)rows * nc * sizeof *d + 1);
    int n = 0;
    for (int r = 0; r < rows; r++) {
        const float * x = pred + (size_t)r * no;
        if (!(x[4] > p->conf_thres))
            continue;
        for (int k = 0; k < nc; k++) {
            const float c = x[5 + k] * x[4];
            if (c > p->conf_thres)
                d[n++] = (struct naive_det){
                    {x[0] - x[2] / 2, x[1] - x[3] / 2, x[0] + x[2] / 2, x[1] + x[3] / 2},
                    c,
                    (float)k};
        }
    }
    int * idx = malloc((size_t)n * sizeof *idx + 1);
    for (int i = 0; i < n; i++)
        idx[i] = i;
    for (int i = 1; i < n; i++) { /* stable insertion sort, descending conf */
        int v = idx[i], j = i;
        while (j > 0 && d[idx[j - 1]].conf < d[v].conf) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    if (n > p->max_nms)
        n = p->max_nms;
    unsigned char * sup = calloc((size_t)n + 1, 1);
    int nk = 0;
    for (int a = 0; a < n; a++) {
        const struct naive_det * i = &d[idx[a]];
        if (sup[a])
            continue;
        if (nk < p->max_det)
            memcpy(out + (size_t)nk * 6, i, 6 * sizeof(float));
        nk++;
        const float oi = p->agnostic ? 0.0f : i->cls * p->max_wh;
        const float ib[4] = {i->box[0] + oi, i->box[1] + oi, i->box[2] + oi, i->box[3] + oi};
        const float ia = (ib[2] - ib[0]) * (ib[3] - ib[1]);
        for (int b = a + 1; b < n; b++) {
            if (sup[b])
                continue;
            const struct naive_det * j = &d[idx[b]];
            const float oj = p->agnostic ? 0.0f : j->cls * p->max_wh;
            const float jb[4] = {j->box[0] + oj, j->box[1] + oj, j->box[2] + oj, j->box[3] + oj};
            const float ja = (jb[2] - jb[0]) * (jb[3] - jb[1]);
            const float xx1 = ib[0] < jb[0] ? jb[0] : ib[0], yy1 = ib[1] < jb[1] ? jb[1] : ib[1];
            const float xx2 = jb[2] < ib[2] ? jb[2] : ib[2], yy2 = jb[3] < ib[3] ? jb[3] : ib[3];
            const float w = 0.0f < xx2 - xx1 ? xx2 - xx1 : 0.0f;
            const float h = 0.0f < yy2 - yy1 ? yy2 - yy1 : 0.0f;
            const float inter = w * h;
            if ((double)(inter / (ia + ja - inter)) > p->iou_thres)
                sup[b] = 1;
        }
    }
    free(d);
    free(idx);
    free(sup);
    return nk < p->max_det ? nk : p->max_det;
}

static void unit_random_vs_naive(void)
{
    enum { ROWS = 400, NC = 6, NO = 5 + NC };
    float * pred = malloc(ROWS * NO * sizeof *pred);
    float * a = malloc(ROWS * NC * 6 * sizeof *a);
    uint64_t rng = 12345;
    int mismatches = 0, cases = 0;
    for (int trial = 0; trial < 60; trial++) {
        const float span = trial % 3 == 0 ? 6000.0f : 300.0f; /* some boxes wider than max_wh */
        for (int r = 0; r < ROWS; r++) {
            float * x = pred + r * NO;
            x[0] = q7t_rand_uniform(&rng, 0, 640);
            x[1] = q7t_rand_uniform(&rng, 0, 640);
            x[2] = q7t_rand_uniform(&rng, 1, span);
            x[3] = q7t_rand_uniform(&rng, 1, span);
            x[4] = q7t_rand_uniform(&rng, 0, 1);
            for (int k = 0; k < NC; k++)
                x[5 + k] = q7t_rand_uniform(&rng, 0, 1) * q7t_rand_uniform(&rng, 0, 0.3f);
            if (trial % 4 == 1 && r > 0) /* exact score ties */
                x[4] = pred[(r - 1) * NO + 4];
        }
        struct q7_nms_params p = q7_nms_params_default();
        p.conf_thres = 0.01f;
        p.iou_thres = trial % 5 == 0 ? 0.3 : 0.65;
        p.agnostic = trial % 7 == 3;
        p.max_det = trial % 2 ? 300 : 25;
        p.max_nms = trial % 6 == 5 ? 100 : 30000;
        p.max_wh = trial % 8 == 2 ? 50.0f : 4096.0f;
        float * out = NULL;
        int n = 0;
        CHECK_OK(q7_nms(pred, ROWS, NO, &p, &out, &n));
        const int m = naive_nms(pred, ROWS, NO, &p, a);
        cases++;
        if (n != m || (n && memcmp(out, a, (size_t)n * 6 * sizeof *out) != 0)) {
            if (mismatches++ < 3)
                fprintf(stderr, "random nms trial %d: %d boxes, naive %d\n", trial, n, m);
        }
        free(out);
    }
    CHECKF(mismatches == 0, "%d of %d random cases differ from the naive algorithm", mismatches,
           cases);
    free(pred);
    free(a);
}

static void unit_scale_coords(void)
{
    /* 1280x720 into 640x384 (auto gain 0.5, pad (0, 12)) */
    float b[6] = {100, 112, 200, 212, 0.5f, 0};
    q7_scale_coords(384, 640, b, 1, 6, 720, 1280, NULL);
    CHECK(b[0] == 200 && b[1] == 200 && b[2] == 400 && b[3] == 400);
    float c[4] = {-5, -5, 700, 500};
    q7_scale_coords(384, 640, c, 1, 4, 720, 1280, NULL);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 1280 && c[3] == 720);
}

int main(void)
{
    unit_no_candidates();
    unit_agnostic_and_filter();
    unit_best_class_and_multilabel();
    unit_caps();
    unit_wide_boxes();
    unit_random_vs_naive();
    unit_scale_coords();
    if (!q7t_fixtures()) {
        printf("SKIP: fixtures missing (unit cases: %d checks, %d failed)\n", q7t_checks,
               q7t_failures);
        return q7t_failures ? 1 : Q7_TEST_SKIP;
    }
    golden("yolov7-tiny");
    golden("yolov7");
    return q7t_finish("test_nms");
}
