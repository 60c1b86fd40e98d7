/* Datasets, labels, yolov7's test.py metric and pycocotools COCOeval.
 * Golden: the fixtures' NMS outputs and labels give table.json's origin row (P, R, mAP@.5,
 * mAP@.5:.95 within 1e-6, images and labels exact) and dets_origin.json + instances_val.json
 * give its 12 COCO stats; q7's save_json rows equal dets_origin.json.
 * Unit: NumPy helpers, label files (good and bad), image lists, images without labels or
 * detections, a single class, score ties, category mapping, COCO json errors. Expected
 * values of the hand-made cases come from yolov7's ap_per_class / pycocotools run in Python. */
#include "eval/cocoeval.h"
#include "eval/dataset.h"
#include "eval/metrics.h"
#include "models/npy.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOL 1e-6

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

static int quiet_log_warnings;
static void log_sink(enum q7_log_level level, const char * msg, void * user)
{
    (void)user;
    if (level >= Q7_LOG_WARN)
        quiet_log_warnings++;
    if (getenv("Q7_TEST_VERBOSE"))
        fprintf(stderr, "[log %d] %s\n", (int)level, msg);
}

/* ================================================================ golden */

static double g_max_metric_diff, g_max_coco_diff;

static void golden(const char * model)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/ref/table.json", model);
    cJSON * table = q7t_json_load(q7t_fixture(rel));
    const cJSON * meta = jget(table, "meta");
    const cJSON * origin = jget(jget(table, "table"), "origin");
    const cJSON * images = jget(meta, "images");
    const cJSON * shapes = jget(meta, "shapes");
    const int n_img = cJSON_GetArraySize(images);

    /* the dataset as test.py reads it: data/val.txt */
    snprintf(rel, sizeof rel, "%s/data/val.txt", model);
    q7t_require(q7t_fixture(rel));
    struct q7_dataset * ds = NULL;
    struct q7_dataset_params dp = q7_dataset_params_default();
    dp.nc = 80;
    CHECK_OK(q7_dataset_load(q7t_fixture(rel), &dp, &ds));
    if (!ds) {
        cJSON_Delete(table);
        return;
    }
    int n_labels = 0;
    for (int i = 0; i < ds->n; i++)
        n_labels += ds->items[i].n_labels;
    CHECKF(ds->n == n_img && ds->n_found == n_img && ds->n_missing == 0 && ds->n_corrupt == 0,
           "%s: %d images, %d found, %d missing, %d corrupt", model, ds->n, ds->n_found,
           ds->n_missing, ds->n_corrupt);
    CHECK(n_labels == (int)jget(origin, "labels")->valuedouble);
    CHECK(strstr(ds->items[0].label_path, "/labels/val/") != NULL);

    /* the same labels from the COCO instances file, with its image ids */
    snprintf(rel, sizeof rel, "%s/data/instances_val.json", model);
    char list[512];
    snprintf(list, sizeof list, "%s/data/val.txt", model);
    struct q7_dataset * dc = NULL;
    CHECK_OK(q7_dataset_load_coco(q7t_fixture(list), q7t_fixture(rel), &dp, &dc));
    double max_lab = 0;
    if (dc) {
        CHECK(dc->n == ds->n);
        for (int i = 0; i < dc->n && i < ds->n; i++) {
            const struct q7_dataset_item *a = &ds->items[i], *b = &dc->items[i];
            CHECK(strcmp(a->path, b->path) == 0 && a->n_labels == b->n_labels);
            CHECK(b->has_image_id && b->width > 0 && b->label_path == NULL);
            if (a->n_labels != b->n_labels)
                continue;
            for (int k = 0; k < a->n_labels * Q7_LABEL_COLS; k++)
                max_lab = fmax(max_lab, fabs((double)a->labels[k] - b->labels[k]));
        }
        /* json boxes are rounded to 0.001 px; the txt labels to 1e-6 */
        CHECKF(max_lab < 2e-6, "%s: txt vs json labels differ by %g", model, max_lab);
    }

    struct q7_metric * m = NULL;
    CHECK_OK(q7_metric_create(80, &m));
    struct q7_coco_det * mine = NULL;
    size_t n_mine = 0, cap_mine = 0;
    for (int ii = 0; ii < n_img && m; ii++) {
        const char * name = cJSON_GetArrayItem(images, ii)->valuestring;
        char stem[128];
        snprintf(stem, sizeof stem, "%.*s", (int)(strrchr(name, '.') - name), name);
        const struct q7_dataset_item *it = NULL, *itc = NULL;
        for (int i = 0; i < ds->n; i++)
            if (strcmp(ds->items[i].stem, stem) == 0)
                it = &ds->items[i];
        for (int i = 0; dc && i < dc->n; i++)
            if (strcmp(dc->items[i].stem, stem) == 0)
                itc = &dc->items[i];
        CHECKF(it != NULL, "%s: %s not in the dataset", model, stem);
        if (!it)
            continue;
        const cJSON * sh = jget(shapes, stem);
        const cJSON *hw = jget(sh, "orig_hw"), *rp = jget(sh, "ratio_pad");
        const cJSON *gain = cJSON_GetArrayItem(rp, 0), *pad = cJSON_GetArrayItem(rp, 1);
        const struct q7_ratio_pad ratio_pad = {jnum(gain, 0), jnum(gain, 1), jnum(pad, 0),
                                               jnum(pad, 1)};
        struct q7_npy nms = {0}, input = {0};
        snprintf(rel, sizeof rel, "%s/ref/nms_origin_%s.npy", model, stem);
        q7t_require(q7t_fixture(rel));
        CHECK_OK(q7_npy_load(q7t_fixture(rel), &nms));
        snprintf(rel, sizeof rel, "%s/ref/input_%s.npy", model, stem);
        CHECK_OK(q7_npy_load(q7t_fixture(rel), &input));
        if (!nms.data || !input.data) {
            q7_npy_free(&nms);
            q7_npy_free(&input);
            continue;
        }
        float * lab = malloc(((size_t)it->n_labels + 1) * 5 * sizeof *lab);
        q7_metric_labels_to_native(it->labels, it->n_labels, (int)jnum(hw, 0), (int)jnum(hw, 1),
                                   (int)input.shape[1], (int)input.shape[2], &ratio_pad, lab);
        CHECK_OK(q7_metric_add_image(m, nms.data, (int)nms.shape[0], lab, it->n_labels));
        /* save_json rows */
        if (n_mine + (size_t)nms.shape[0] > cap_mine) {
            cap_mine = (n_mine + (size_t)nms.shape[0]) * 2;
            mine = realloc(mine, cap_mine * sizeof *mine);
        }
        for (int64_t r = 0; r < nms.shape[0]; r++)
            q7_coco_det_from_pred((const float *)nms.data + r * 6, itc ? itc->image_id : -1, 1,
                                  &mine[n_mine++]);
        free(lab);
        q7_npy_free(&nms);
        q7_npy_free(&input);
    }

    struct q7_metric_result res = {0};
    if (m) {
        CHECK_OK(q7_metric_compute(m, &res));
        const double ref[4] = {jget(origin, "P")->valuedouble, jget(origin, "R")->valuedouble,
                               jget(origin, "mAP50")->valuedouble,
                               jget(origin, "mAP50_95")->valuedouble};
        const double got[4] = {res.p, res.r, res.map50, res.map};
        const char * names[4] = {"P", "R", "mAP50", "mAP50_95"};
        double md = 0;
        for (int k = 0; k < 4; k++) {
            const double d = fabs(got[k] - ref[k]);
            md = fmax(md, d);
            CHECKF(d <= TOL, "%s %s: %.12f, reference %.12f", model, names[k], got[k], ref[k]);
        }
        g_max_metric_diff = fmax(g_max_metric_diff, md);
        CHECK(res.images == (int)jget(origin, "images")->valuedouble);
        CHECK(res.labels == (int)jget(origin, "labels")->valuedouble);
        printf("%s test.py metric: images %d labels %d P %.6f R %.6f mAP50 %.6f mAP %.6f "
               "(max |diff| %.3g, %d classes)\n",
               model, res.images, res.labels, res.p, res.r, res.map50, res.map, md, res.n_classes);
    }

    /* COCO: dets_origin.json against instances_val.json */
    snprintf(rel, sizeof rel, "%s/data/instances_val.json", model);
    struct q7_coco_gt * gt = NULL;
    CHECK_OK(q7_coco_gt_load(q7t_fixture(rel), &gt));
    snprintf(rel, sizeof rel, "%s/ref/dets_origin.json", model);
    struct q7_coco_det * dets = NULL;
    size_t nd = 0;
    CHECK_OK(q7_coco_dets_load(q7t_fixture(rel), &dets, &nd));
    if (gt && dets) {
        double stats[Q7_COCO_STATS];
        double t0 = q7_time_now();
        CHECK_OK(q7_coco_eval(gt, dets, nd, NULL, 0, stats));
        double t1 = q7_time_now();
        const cJSON * cs = jget(origin, "coco_stats");
        double md = 0;
        for (int s = 0; s < Q7_COCO_STATS; s++) {
            const double d = fabs(stats[s] - jnum(cs, s));
            md = fmax(md, d);
            CHECKF(d <= TOL, "%s coco stat %d: %.12f, reference %.12f", model, s, stats[s],
                   jnum(cs, s));
        }
        g_max_coco_diff = fmax(g_max_coco_diff, md);
        printf("%s COCO: AP %.6f AP50 %.6f AR100 %.6f (max |diff| %.3g over 12, %zu dets, "
               "%.1f ms)\n",
               model, stats[0], stats[1], stats[8], md, nd, (t1 - t0) * 1e3);
        /* q7's save_json rows are the reference's, value for value (order: meta.images) */
        CHECK(n_mine == nd);
        size_t bad = 0;
        for (size_t i = 0; i < nd && i < n_mine; i++) {
            int found = 0; /* dets_origin.json is in test.py's batch order: search */
            for (size_t j = 0; j < nd && !found; j++)
                found = dets[j].image_id == mine[i].image_id &&
                        dets[j].category_id == mine[i].category_id &&
                        dets[j].score == mine[i].score &&
                        memcmp(dets[j].bbox, mine[i].bbox, sizeof dets[j].bbox) == 0;
            if (!found && bad++ < 3)
                fprintf(stderr,
                        "%s: save_json row %zu (img %lld cat %lld %.3f %.3f %.5f) not "
                        "in dets_origin.json\n",
                        model, i, (long long)mine[i].image_id, (long long)mine[i].category_id,
                        mine[i].bbox[0], mine[i].bbox[1], mine[i].score);
        }
        CHECKF(bad == 0, "%s: %zu save_json rows differ", model, bad);
        /* write, read back, evaluate again */
        char tmp[] = "/tmp/q7_test_dets_XXXXXX";
        int fd = mkstemp(tmp);
        CHECK(fd >= 0);
        if (fd >= 0) {
            close(fd);
            CHECK_OK(q7_coco_dets_write(tmp, mine, n_mine));
            struct q7_coco_det * back = NULL;
            size_t nb = 0;
            CHECK_OK(q7_coco_dets_load(tmp, &back, &nb));
            CHECK(nb == n_mine);
            for (size_t i = 0; i < nb && i < n_mine; i++)
                CHECK(memcmp(&back[i], &mine[i], sizeof *back) == 0);
            double stats2[Q7_COCO_STATS];
            if (back) {
                CHECK_OK(q7_coco_eval(gt, back, nb, NULL, 0, stats2));
                for (int s = 0; s < Q7_COCO_STATS; s++)
                    CHECK(fabs(stats2[s] - jnum(cs, s)) <= TOL);
            }
            free(back);
            unlink(tmp);
        }
    }
    free(mine);
    free(dets);
    q7_coco_gt_free(gt);
    q7_metric_result_free(&res);
    q7_metric_free(m);
    q7_dataset_free(ds);
    q7_dataset_free(dc);
    cJSON_Delete(table);
}

/* ================================================================ unit: NumPy */

static void unit_numpy(void)
{
    const double xp[] = {0., 0.1, 0.1, 0.35, 0.5, 0.9}, fp[] = {1., 0.8, 0.6, 0.6, 0.3, 0.1};
    const double x[] = {-0.5, 0.0, 0.05, 0.1, 0.2, 0.35, 0.7, 0.9, 1.5};
    const double want[] = {7.0, 1.0, 0.9, 0.6, 0.6, 0.6, 0.2, 0.1, 9.0}; /* np.interp */
    double got[9];
    q7_np_interp(x, 9, xp, fp, 6, 7.0, 9.0, got);
    for (int i = 0; i < 9; i++)
        CHECKF(got[i] == want[i], "interp[%d] = %.17g, numpy %.17g", i, got[i], want[i]);
    double lx[101], ly[101];
    for (int i = 0; i < 101; i++)
        lx[i] = i * 0.01;
    lx[100] = 1.0;
    q7_np_interp(lx, 101, xp, fp, 6, fp[0], fp[5], ly);
    CHECK(q7_np_trapz(ly, lx, 101) == 0.39649999999999996);
    double a[300];
    for (int i = 0; i < 300; i++)
        a[i] = (i + 1) * 0.1 + sin((double)i);
    /* pairwise, not sequential (which gives ...946) */
    CHECKF(q7_np_sum(a, 300, 1) == 4516.4353455759465, "np.sum %.17g", q7_np_sum(a, 300, 1));
}

/* ================================================================ unit: metric */

struct img_case {
    const float * preds;
    int np_;
    const float * labels;
    int nl;
};

static void run_metric(const struct img_case * c, int n, int nc, struct q7_metric_result * r)
{
    struct q7_metric * m = NULL;
    CHECK_OK(q7_metric_create(nc, &m));
    for (int i = 0; i < n && m; i++)
        CHECK_OK(q7_metric_add_image(m, c[i].preds, c[i].np_, c[i].labels, c[i].nl));
    memset(r, 0, sizeof *r);
    if (m)
        CHECK_OK(q7_metric_compute(m, r));
    q7_metric_free(m);
}

static void expect4(const struct q7_metric_result * r, const double * w, const char * what)
{
    const double g[4] = {r->p, r->r, r->map50, r->map};
    for (int k = 0; k < 4; k++)
        CHECKF(fabs(g[k] - w[k]) <= 1e-12, "%s[%d]: %.17g, yolov7 %.17g", what, k, g[k], w[k]);
}

static void unit_metric(void)
{
    /* one class; an image without detections, one without labels, a duplicate detection */
    const float p1[] = {12,  11,  49,  52,  0.9f, 0, 100, 98, 148, 160, 0.8f, 0,
                        300, 300, 320, 320, 0.7f, 0, 11,  10, 50,  50,  0.6f, 0};
    const float l1[] = {0, 10, 10, 50, 50, 0, 100, 100, 150, 160};
    const float l2[] = {0, 0, 0, 30, 30};
    const float p3[] = {5, 5, 25, 25, 0.65f, 0};
    const struct img_case a[] = {{p1, 4, l1, 2}, {NULL, 0, l2, 1}, {p3, 1, NULL, 0}};
    struct q7_metric_result r;
    run_metric(a, 3, 3, &r);
    const double wa[4] = {0.9993326264220169, 0.6666666666666666, 0.6676666666666666, 0.55095};
    expect4(&r, wa, "single class");
    CHECK(r.images == 3 && r.labels == 3 && r.n_classes == 1);
    if (r.n_classes == 1)
        CHECK(r.classes[0].cls == 0 && r.classes[0].labels == 3 && r.classes[0].images == 3 &&
              r.classes[0].images_with == 2 && r.classes[0].ap == r.map);
    q7_metric_result_free(&r);

    /* no prediction is correct: test.py prints zeros */
    const float pb[] = {12, 11, 49, 52, 0.9f, 1, 100, 98, 148, 160, 0.8f, 2};
    const struct img_case b[] = {{pb, 2, l1, 2}};
    run_metric(b, 1, 3, &r);
    const double zero[4] = {0, 0, 0, 0};
    expect4(&r, zero, "no TP");
    CHECK(r.n_classes == 0 && r.labels == 2 && r.images == 1);
    q7_metric_result_free(&r);

    /* three classes, one of them never predicted */
    const float pd[] = {10, 10, 50, 50, 0.9f, 0, 60, 60, 90, 90, 0.8f, 1,
                        10, 10, 50, 52, 0.7f, 1, 60, 61, 90, 90, 0.3f, 0};
    const float ld[] = {0, 10, 10, 50, 50, 1, 60, 60, 90, 90, 2, 0, 0, 5, 5};
    const struct img_case d[] = {{pd, 4, ld, 3}};
    run_metric(d, 1, 3, &r);
    const double wd[4] = {0.6384995958969144, 0.6666666666666666, 0.665, 0.6650000000000001};
    expect4(&r, wd, "three classes");
    CHECK(r.n_classes == 3);
    q7_metric_result_free(&r);

    /* score ties: q7 keeps the order of addition (a stable sort); numpy's quicksort may not.
     * TP image first gives AP 0.5, FP image first 0.2525 (yolov7's formulas, stable order). */
    const float pt[] = {10, 10, 50, 50, 0.5f, 0};
    const float lt1[] = {0, 10, 10, 50, 50}, lt2[] = {0, 200, 200, 250, 250};
    const struct img_case c1[] = {{pt, 1, lt1, 1}, {pt, 1, lt2, 1}};
    const struct img_case c2[] = {{pt, 1, lt2, 1}, {pt, 1, lt1, 1}};
    run_metric(c1, 2, 1, &r);
    const double w1[4] = {0.5, 0.5, 0.5, 0.5};
    expect4(&r, w1, "ties, TP first");
    q7_metric_result_free(&r);
    run_metric(c2, 2, 1, &r);
    const double w2[4] = {0.5, 0.5, 0.2525, 0.2525};
    expect4(&r, w2, "ties, FP first");
    q7_metric_result_free(&r);

    /* nothing at all */
    run_metric(NULL, 0, 80, &r);
    CHECK(r.images == 0 && r.labels == 0 && r.map == 0);
    q7_metric_result_free(&r);

    /* bad input */
    struct q7_metric * m = NULL;
    CHECK(q7_metric_create(0, &m) == Q7_ERR_ARG && m == NULL);
    CHECK_OK(q7_metric_create(2, &m));
    const float bad_cls[] = {0, 0, 1, 1, 0.5f, 2};
    const float nan_conf[] = {0, 0, 1, 1, NAN, 0};
    const float bad_lab[] = {-1, 0, 0, 1, 1};
    CHECK(q7_metric_add_image(m, bad_cls, 1, NULL, 0) == Q7_ERR_ARG);
    CHECK(q7_metric_add_image(m, nan_conf, 1, NULL, 0) == Q7_ERR_ARG);
    CHECK(q7_metric_add_image(m, NULL, 0, bad_lab, 1) == Q7_ERR_ARG);
    q7_metric_free(m);
}

/* ================================================================ unit: labels, lists */

static void write_file(const char * path, const char * text)
{
    FILE * f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void unit_labels(void)
{
    float * l = NULL;
    int n = -1;
    const char good[] = "  0 0.5 0.5 0.2 0.2\r\n3 0.1 0.2 0.3 0.4\n\n";
    CHECK_OK(q7_dataset_parse_labels(good, strlen(good), "good", 80, &l, &n));
    CHECK(n == 2 && l && l[5] == 3.0f && l[9] == 0.4f);
    free(l);
    CHECK_OK(q7_dataset_parse_labels("\n \n", 3, "empty", 80, &l, &n));
    CHECK(n == 0 && l == NULL);
    /* polygon rows: the extent, xyxy2xywh in float32 */
    const char poly[] = "2 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n1 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4 0.3 "
                        "0.3\n";
    CHECK_OK(q7_dataset_parse_labels(poly, strlen(poly), "poly", 80, &l, &n));
    CHECK(n == 2 && l && l[0] == 2 && l[1] == (0.1f + 0.5f) / 2 && l[3] == 0.5f - 0.1f &&
          l[6] == (0.2f + 0.4f) / 2);
    free(l);
    const char * bad[] = {
        "0 0.5 0.5 0.2\n",                          /* 4 columns */
        "0 0.5 0.5 0.2 0.2 0.1\n",                  /* 6 columns */
        "0 0.5 abc 0.2 0.2\n",                      /* not a number */
        "0 0.5 0.5 0.2 nan\n",                      /* NaN */
        "0 0.5 0.5 inf 0.2\n",                      /* inf */
        "0 -0.1 0.5 0.2 0.2\n",                     /* negative */
        "-1 0.1 0.5 0.2 0.2\n",                     /* negative class */
        "0 1.5 0.5 0.2 0.2\n",                      /* above 1 */
        "1.5 0.5 0.5 0.2 0.2\n",                    /* class not whole */
        "80 0.5 0.5 0.2 0.2\n",                     /* class >= nc */
        "0 0.5 0.5 0.2 0.2\n\n1 0.5 0.5 0.2 0.2\n", /* blank line inside */
        "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",   /* duplicate */
        "0 0x1p-1 0.5 0.2 0.2\n",                   /* hex float: Python's float() refuses it */
        "2 0.1 0.2 0.5 0.2 0.5 0.6 0.1\n",          /* polygon with an odd count */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum q7_status st = q7_dataset_parse_labels(bad[i], strlen(bad[i]), "bad", 80, &l, &n);
        CHECKF(st == Q7_ERR_FORMAT && l == NULL, "bad label case %zu gave %d", i, (int)st);
    }
    char buf[64];
    CHECK_OK(q7_dataset_label_path("/d/images/a/images/x.JPG", buf, sizeof buf));
    CHECK(strcmp(buf, "/d/labels/a/images/x.txt") == 0);
    CHECK(q7_dataset_label_path("/d/images/x.jpg", buf, 8) == Q7_ERR_LIMIT);
}

static void unit_dataset_files(void)
{
    char root[] = "/tmp/q7_test_ds_XXXXXX";
    if (!mkdtemp(root)) {
        CHECK(0);
        return;
    }
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/images", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/labels", root);
    mkdir(p, 0755);
    const char * imgs[] = {"123.jpg", "b.png", "c.jpg", "d.jpg", "e.bmp"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/images/%s", root, imgs[i]);
        write_file(p, "x");
    }
    snprintf(p, sizeof p, "%s/images/notes.txt", root);
    write_file(p, "not an image");
    snprintf(p, sizeof p, "%s/labels/123.txt", root);
    write_file(p, "1 0.5 0.5 0.1 0.1\n");
    snprintf(p, sizeof p, "%s/labels/b.txt", root);
    write_file(p, ""); /* empty */
    snprintf(p, sizeof p, "%s/labels/c.txt", root);
    write_file(p, "1 0.5 0.5 0.1\n"); /* corrupt: the image is left out */
    /* d and e have no label file (missing); e is in the list twice */
    snprintf(p, sizeof p, "%s/val.txt", root);
    snprintf(q, sizeof q,
             "./images/e.bmp\n./images/d.jpg\n./images/c.jpg\n  ./images/b.png  \r\n"
             "./images/123.jpg\n./images/e.bmp\n./images/gone.jpg\n%s/images/notes.txt\n",
             root);
    write_file(p, q);
    struct q7_dataset * ds = NULL;
    quiet_log_warnings = 0;
    CHECK_OK(q7_dataset_load(p, NULL, &ds));
    if (ds) {
        CHECKF(ds->n == 4 && ds->n_found == 3 && ds->n_missing == 2 && ds->n_empty == 1 &&
                   ds->n_corrupt == 2,
               "n %d found %d missing %d empty %d corrupt %d", ds->n, ds->n_found, ds->n_missing,
               ds->n_empty, ds->n_corrupt);
        CHECK(quiet_log_warnings == 2); /* c.jpg's labels, gone.jpg */
        if (ds->n == 4) {
            CHECK(strstr(ds->items[0].path, "/images/123.jpg") && ds->items[0].has_image_id &&
                  ds->items[0].image_id == 123 && ds->items[0].n_labels == 1 &&
                  ds->items[0].labels[0] == 1.0f);
            CHECK(strcmp(ds->items[1].stem, "b") == 0 && !ds->items[1].has_image_id &&
                  ds->items[1].n_labels == 0);
            CHECK(strstr(ds->items[2].path, "/d.jpg") && ds->items[2].n_labels == 0);
            CHECK(strstr(ds->items[3].path, "/e.bmp") != NULL);
        }
        q7_dataset_free(ds);
    }
    /* a folder (recursive, images only) and a single image */
    snprintf(p, sizeof p, "%s/images", root);
    ds = NULL;
    CHECK_OK(q7_dataset_load(p, NULL, &ds));
    CHECK(ds && ds->n == 4);
    q7_dataset_free(ds);
    snprintf(p, sizeof p, "%s/images/123.jpg", root);
    ds = NULL;
    CHECK_OK(q7_dataset_load(p, NULL, &ds));
    CHECK(ds && ds->n == 1 && ds->items[0].n_labels == 1);
    q7_dataset_free(ds);
    snprintf(p, sizeof p, "%s/nothing.txt", root);
    ds = NULL;
    CHECK(q7_dataset_load(p, NULL, &ds) == Q7_ERR_IO && ds == NULL);

    /* COCO json: category ids mapped 91 -> 80, crowd and empty boxes skipped */
    snprintf(p, sizeof p, "%s/inst.json", root);
    write_file(p, "{\"images\": [{\"id\": 7, \"file_name\": \"sub/123.jpg\", \"width\": 200, "
                  "\"height\": 100}, {\"id\": 8, \"file_name\": \"d.jpg\", \"width\": 10, "
                  "\"height\": 10}],"
                  "\"annotations\": ["
                  "{\"id\": 1, \"image_id\": 7, \"category_id\": 90, \"bbox\": [10, 20, 40, 30],"
                  " \"area\": 1200, \"iscrowd\": 0},"
                  "{\"id\": 2, \"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 10, 10],"
                  " \"area\": 100, \"iscrowd\": 1},"
                  "{\"id\": 3, \"image_id\": 7, \"category_id\": 12, \"bbox\": [0, 0, 10, 10]},"
                  "{\"id\": 4, \"image_id\": 7, \"category_id\": 13, \"bbox\": [0, 0, 0, 10]},"
                  "{\"id\": 5, \"image_id\": 7, \"category_id\": 13, \"bbox\": [5, 5, 10, 10]}],"
                  "\"categories\": [{\"id\": 1}, {\"id\": 12}, {\"id\": 13}, {\"id\": 90}]}");
    snprintf(q, sizeof q, "%s/images", root);
    ds = NULL;
    CHECK_OK(q7_dataset_load_coco(q, p, NULL, &ds));
    if (ds) {
        CHECK(ds->n == 2);
        const struct q7_dataset_item * it = &ds->items[0];
        CHECK(it->image_id == 7 && it->width == 200 && it->n_labels == 2);
        if (it->n_labels == 2)
            CHECK(it->labels[0] == 79.0f && it->labels[1] == 0.15f && it->labels[2] == 0.35f &&
                  it->labels[3] == 0.2f && it->labels[4] == 0.3f && it->labels[5] == 11.0f);
        CHECK(ds->items[1].image_id == 8 && ds->items[1].n_labels == 0);
        q7_dataset_free(ds);
    }
    struct q7_dataset_params dp = q7_dataset_params_default();
    dp.coco91_to_80 = 0; /* class = rank of the category id: 1, 12, 13, 90 -> 0..3 */
    ds = NULL;
    CHECK_OK(q7_dataset_load_coco(q, p, &dp, &ds));
    if (ds && ds->n == 2 && ds->items[0].n_labels == 3)
        CHECK(ds->items[0].labels[0] == 3.0f && ds->items[0].labels[5] == 1.0f &&
              ds->items[0].labels[10] == 2.0f);
    else
        CHECK(0);
    q7_dataset_free(ds);

    const char * files[] = {"images/123.jpg", "images/b.png",     "images/c.jpg",   "images/d.jpg",
                            "images/e.bmp",   "images/notes.txt", "labels/123.txt", "labels/b.txt",
                            "labels/c.txt",   "val.txt",          "inst.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/images", root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/labels", root);
    rmdir(p);
    rmdir(root);
}

/* ================================================================ unit: COCO */

static void unit_coco(void)
{
    /* yolov7's coco80_to_coco91_class and its inverse */
    CHECK(q7_coco80_to_91(0) == 1 && q7_coco80_to_91(11) == 13 && q7_coco80_to_91(79) == 90);
    CHECK(q7_coco80_to_91(80) == -1 && q7_coco80_to_91(-1) == -1);
    int round_trip = 1;
    for (int c = 0; c < 80; c++)
        round_trip &= q7_coco91_to_80(q7_coco80_to_91(c)) == c;
    CHECK(round_trip);
    CHECK(q7_coco91_to_80(12) == -1 && q7_coco91_to_80(0) == -1 && q7_coco91_to_80(91) == -1);

    /* save_json: bbox x y w h rounded to 3 decimals, score to 5, category via coco91 */
    const float pred[6] = {10.12345f, 20.5f, 30.0f, 40.25f, 0.123456789f, 11};
    struct q7_coco_det d;
    q7_coco_det_from_pred(pred, 42, 1, &d);
    CHECK(d.image_id == 42 && d.category_id == 13 && d.bbox[0] == 10.123 && d.bbox[1] == 20.5 &&
          d.bbox[2] == 19.877 && d.bbox[3] == 19.75 && d.score == 0.12346);
    q7_coco_det_from_pred(pred, 42, 0, &d);
    CHECK(d.category_id == 11);

    /* a small case checked against pycocotools 2.0: a crowd region, a small and a large
     * object, a duplicate detection, a detection of an unlisted category */
    const char gt_json[] =
        "{\"images\": [{\"id\": 1}, {\"id\": 2}], \"categories\": [{\"id\": 1}, {\"id\": 2}],"
        "\"annotations\": ["
        "{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10, 10, 20, 20], "
        "\"area\": 400, \"iscrowd\": 0},"
        "{\"id\": 2, \"image_id\": 1, \"category_id\": 1, \"bbox\": [100, 100, 120, 120], "
        "\"area\": 14400, \"iscrowd\": 0},"
        "{\"id\": 3, \"image_id\": 1, \"category_id\": 1, \"bbox\": [300, 300, 100, 100], "
        "\"area\": 10000, \"iscrowd\": 1},"
        "{\"id\": 4, \"image_id\": 2, \"category_id\": 2, \"bbox\": [50, 50, 60, 40], "
        "\"area\": 2400, \"iscrowd\": 0}]}";
    const struct q7_coco_det dets[] = {
        {1, 1, {11, 10, 20, 21}, 0.9},   {1, 1, {102, 98, 118, 125}, 0.8},
        {1, 1, {11, 11, 19, 19}, 0.7},   {1, 1, {320, 320, 30, 30}, 0.6},
        {1, 1, {500, 500, 10, 10}, 0.5}, {2, 2, {52, 50, 60, 38}, 0.4},
        {2, 1, {52, 50, 60, 38}, 0.3},   {2, 3, {52, 50, 60, 38}, 0.95},
    };
    const double want[12] = {0.8333333333333333,
                             1.0,
                             1.0,
                             0.85,
                             0.7999999999999999,
                             0.8999999999999999,
                             0.6,
                             0.85,
                             0.85,
                             0.9,
                             0.8,
                             0.9};
    const double want2[12] = {0.7999999999999999,
                              0.9999999999999999,
                              0.9999999999999999,
                              -1.0,
                              0.7999999999999999,
                              -1.0,
                              0.8,
                              0.8,
                              0.8,
                              -1.0,
                              0.8,
                              -1.0};
    struct q7_coco_gt * gt = NULL;
    CHECK_OK(q7_coco_gt_parse(gt_json, strlen(gt_json), "gt", &gt));
    if (gt) {
        double s[12];
        CHECK_OK(q7_coco_eval(gt, dets, sizeof dets / sizeof dets[0], NULL, 0, s));
        for (int k = 0; k < 12; k++)
            CHECKF(fabs(s[k] - want[k]) <= 1e-12, "coco stat %d: %.17g, pycocotools %.17g", k, s[k],
                   want[k]);
        /* restricted to image 2; an image id that is not in the ground truth is an error */
        const int64_t only2[] = {2};
        CHECK_OK(q7_coco_eval(gt, dets, sizeof dets / sizeof dets[0], only2, 1, s));
        for (int k = 0; k < 12; k++)
            CHECKF(fabs(s[k] - want2[k]) <= 1e-12,
                   "coco stat %d (image 2): %.17g, pycocotools "
                   "%.17g",
                   k, s[k], want2[k]);
        const struct q7_coco_det stray = {9, 1, {0, 0, 1, 1}, 0.5};
        CHECK(q7_coco_eval(gt, &stray, 1, NULL, 0, s) == Q7_ERR_FORMAT);
        /* no detections: AP 0 where there is ground truth */
        CHECK_OK(q7_coco_eval(gt, NULL, 0, NULL, 0, s));
        CHECK(s[0] == 0.0 && s[8] == 0.0);
        char txt[2048];
        int len = q7_coco_stats_format(s, txt, sizeof txt);
        CHECK(len > 0 && strstr(txt, " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all "
                                     "| maxDets=100 ] = 0.000\n") == txt);
        q7_coco_gt_free(gt);
    }
    const char * bad[] = {
        "[1, 2]",
        "{\"images\": [{\"file_name\": \"a.jpg\"}]}",
        "{\"images\": [{\"id\": 1}, {\"id\": 1}]}",
        "{\"images\": [{\"id\": 1}], \"annotations\": [{\"id\": 1, \"image_id\": 1, "
        "\"category_id\": 1, \"bbox\": [1, 2, 3]}]}",
        "{\"images\": [{\"id\": 1.5}]}",
        "{\"images\": ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gt = NULL;
        enum q7_status st = q7_coco_gt_parse(bad[i], strlen(bad[i]), "bad", &gt);
        CHECKF(st == Q7_ERR_FORMAT && gt == NULL, "bad coco json %zu gave %d", i, (int)st);
    }
    struct q7_coco_det * rd = NULL;
    size_t nr = 0;
    const char res_bad[] = "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1, 2, 3, 4]}]";
    CHECK(q7_coco_dets_parse(res_bad, strlen(res_bad), "res", &rd, &nr) == Q7_ERR_FORMAT);
    CHECK(rd == NULL && nr == 0);
}

/* With distinct scores the COCO stats cannot depend on the order of the results list: shuffled
 * results give the same 12 numbers (the grouping sort of cocoeval.c: counting passes, small
 * groups by insertion, a 60-detection group by qsort). */
static void unit_coco_order(void)
{
    uint64_t rng = 77;
    struct q7_coco_gt gt = {0};
    struct q7_coco_image imgs[20];
    struct q7_coco_ann anns[20 * 6];
    int64_t cats[5] = {3, 1, 7, 2, 9};
    gt.images = imgs;
    gt.anns = anns;
    gt.cat_ids = cats;
    gt.n_cats = 5;
    for (int i = 0; i < 20; i++) {
        imgs[gt.n_images++] = (struct q7_coco_image){100 - i * 3, "", 0, 0};
        for (int j = 0; j < 6; j++) {
            double w = 5 + 150 * q7t_rand_uniform(&rng, 0, 1);
            double h = 5 + 150 * q7t_rand_uniform(&rng, 0, 1);
            double x = 300 * q7t_rand_uniform(&rng, 0, 1), y = 300 * q7t_rand_uniform(&rng, 0, 1);
            anns[gt.n_anns] = (struct q7_coco_ann){gt.n_anns + 1, 100 - i * 3,
                                                   cats[(int)(q7t_rand_uniform(&rng, 0, 5)) % 5],
                                                   {x, y, w, h}, w * h, j == 5 && i % 4 == 0};
            gt.n_anns++;
        }
    }
    enum { ND = 900 };
    struct q7_coco_det * d = malloc(ND * sizeof *d);
    for (int k = 0; k < ND; k++) {
        const int pick = (int)q7t_rand_uniform(&rng, 0, (float)gt.n_anns) % gt.n_anns;
        const struct q7_coco_ann * a = &anns[pick];
        const int big = k < 60; /* one (image, category) group of 60 */
        d[k].image_id = big ? 100 : a->image_id;
        d[k].category_id = big ? 3 : a->category_id;
        for (int c = 0; c < 4; c++)
            d[k].bbox[c] = a->bbox[c] * (0.8 + 0.4 * q7t_rand_uniform(&rng, 0, 1));
        d[k].score = (double)(k * 7919 % ND) / ND + 1e-4; /* distinct */
    }
    double s1[Q7_COCO_STATS], s2[Q7_COCO_STATS];
    CHECK_OK(q7_coco_eval(&gt, d, ND, NULL, 0, s1));
    for (int k = ND - 1; k > 0; k--) { /* Fisher-Yates */
        int r = (int)q7t_rand_uniform(&rng, 0, (float)(k + 1)) % (k + 1);
        struct q7_coco_det t = d[k];
        d[k] = d[r];
        d[r] = t;
    }
    CHECK_OK(q7_coco_eval(&gt, d, ND, NULL, 0, s2));
    CHECK(memcmp(s1, s2, sizeof s1) == 0 && s1[0] > 0.0 && s1[0] < 1.0);
    free(d);
}

int main(void)
{
    q7_log_set(log_sink, NULL);
    unit_coco_order();
    unit_numpy();
    unit_metric();
    unit_labels();
    unit_dataset_files();
    unit_coco();
    if (!q7t_fixtures()) {
        printf("SKIP: fixtures missing (unit cases: %d checks, %d failed)\n", q7t_checks,
               q7t_failures);
        return q7t_failures ? 1 : Q7_TEST_SKIP;
    }
    golden("yolov7-tiny");
    golden("yolov7");
    printf("max |diff| vs table.json: test.py metric %.3g, COCO stats %.3g\n", g_max_metric_diff,
           g_max_coco_diff);
    return q7t_finish("test_metrics");
}
