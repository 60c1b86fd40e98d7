/* Benchmark of the evaluator's scoring on a COCO-size synthetic set: test.py's metric
 * (q7_metric_*) and the COCO evaluation (q7_coco_eval) on the same detections.
 *
 *   build/tools/bench_metrics [images] [dets per image] [labels per image] [repeats]
 *   (default 5000 300 7 3: COCO val2017's image count, yolov7's max_det 300)
 *
 * Labels are random boxes of random classes; detections are labels moved by up to 20% of
 * their size (about a third of them) or random boxes, with random scores, so that every IoU
 * threshold matches some and misses some. Prints the median time of each part. */
#include "engine/q7.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static int cmp_double(const void * a, const void * b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char ** argv)
{
    const int n_img = argc > 1 ? atoi(argv[1]) : 5000;
    const int n_det = argc > 2 ? atoi(argv[2]) : 300;
    const int n_lab = argc > 3 ? atoi(argv[3]) : 7;
    const int reps = argc > 4 ? atoi(argv[4]) : 3;
    if (n_img < 1 || n_det < 1 || n_lab < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_metrics [images] [dets per image] [labels per image] "
                        "[repeats]\n");
        return 2;
    }
    const int W = 640, H = 480, NC = 80;
    float * labels = malloc((size_t)n_img * n_lab * 5 * sizeof *labels);
    float * preds = malloc((size_t)n_img * n_det * 6 * sizeof *preds);
    struct q7_coco_gt gt = {0};
    gt.n_images = n_img;
    gt.images = calloc((size_t)n_img, sizeof *gt.images);
    gt.n_anns = n_img * n_lab;
    gt.anns = calloc((size_t)gt.n_anns, sizeof *gt.anns);
    gt.n_cats = NC;
    gt.cat_ids = malloc(NC * sizeof *gt.cat_ids);
    size_t n_dets = (size_t)n_img * n_det;
    struct q7_coco_det * dets = malloc(n_dets * sizeof *dets);
    double * t_metric = malloc((size_t)reps * sizeof(double));
    double * t_coco = malloc((size_t)reps * sizeof(double));
    if (!labels || !preds || !gt.images || !gt.anns || !gt.cat_ids || !dets || !t_metric ||
        !t_coco) {
        fprintf(stderr, "bench_metrics: out of memory\n");
        return 1;
    }
    for (int k = 0; k < NC; k++)
        gt.cat_ids[k] = k + 1;
    for (int i = 0; i < n_img; i++) {
        gt.images[i].id = i + 1;
        gt.images[i].file_name = "";
        float * L = labels + (size_t)i * n_lab * 5;
        for (int j = 0; j < n_lab; j++) {
            float w = (float)(8 + urand() * 300), h = (float)(8 + urand() * 300);
            float x = (float)(urand() * (W - w)), y = (float)(urand() * (H - h));
            int c = (int)(urand() * NC);
            L[j * 5 + 0] = (float)c;
            L[j * 5 + 1] = x;
            L[j * 5 + 2] = y;
            L[j * 5 + 3] = x + w;
            L[j * 5 + 4] = y + h;
            struct q7_coco_ann * a = &gt.anns[(size_t)i * n_lab + j];
            *a = (struct q7_coco_ann){(int64_t)i * n_lab + j + 1, i + 1, c + 1, {x, y, w, h},
                                      (double)w * h, 0};
        }
        float * P = preds + (size_t)i * n_det * 6;
        for (int d = 0; d < n_det; d++) {
            float x1, y1, x2, y2;
            int c;
            if (urand() < 0.35) { /* near a label */
                const float * l = L + (int)(urand() * n_lab) * 5;
                float w = l[3] - l[1], h = l[4] - l[2];
                x1 = l[1] + (float)((urand() - 0.5) * 0.4 * w);
                y1 = l[2] + (float)((urand() - 0.5) * 0.4 * h);
                x2 = l[3] + (float)((urand() - 0.5) * 0.4 * w);
                y2 = l[4] + (float)((urand() - 0.5) * 0.4 * h);
                c = urand() < 0.8 ? (int)l[0] : (int)(urand() * NC);
            } else {
                float w = (float)(4 + urand() * 300), h = (float)(4 + urand() * 300);
                x1 = (float)(urand() * (W - w));
                y1 = (float)(urand() * (H - h));
                x2 = x1 + w;
                y2 = y1 + h;
                c = (int)(urand() * NC);
            }
            P[d * 6 + 0] = x1;
            P[d * 6 + 1] = y1;
            P[d * 6 + 2] = x2 > x1 + 1 ? x2 : x1 + 1;
            P[d * 6 + 3] = y2 > y1 + 1 ? y2 : y1 + 1;
            P[d * 6 + 4] = (float)urand();
            P[d * 6 + 5] = (float)c;
        }
        /* NMS order: confidence descending */
        for (int a = 1; a < n_det; a++)
            for (int b = a; b > 0 && P[(b - 1) * 6 + 4] < P[b * 6 + 4]; b--)
                for (int f = 0; f < 6; f++) {
                    float t = P[(b - 1) * 6 + f];
                    P[(b - 1) * 6 + f] = P[b * 6 + f];
                    P[b * 6 + f] = t;
                }
        for (int d = 0; d < n_det; d++)
            q7_coco_det_from_pred(P + d * 6, i + 1, 0, &dets[(size_t)i * n_det + d]);
    }
    for (size_t j = 0; j < n_dets; j++) /* classes 0..79 -> the ground truth's ids 1..80 */
        dets[j].category_id += 1;

    double map50 = 0, map = 0, stats[Q7_COCO_STATS] = {0};
    for (int r = 0; r < reps; r++) {
        double t0 = q7_time_now();
        struct q7_metric * m = NULL;
        struct q7_metric_result res = {0};
        enum q7_status st = q7_metric_create(NC, &m);
        for (int i = 0; !st && i < n_img; i++)
            st = q7_metric_add_image(m, preds + (size_t)i * n_det * 6, n_det,
                                     labels + (size_t)i * n_lab * 5, n_lab);
        if (!st)
            st = q7_metric_compute(m, &res);
        t_metric[r] = q7_time_now() - t0;
        map50 = res.map50;
        map = res.map;
        q7_metric_result_free(&res);
        q7_metric_free(m);
        if (st) {
            fprintf(stderr, "bench_metrics: %s\n", q7_error_message());
            return 1;
        }
        t0 = q7_time_now();
        if (q7_coco_eval(&gt, dets, n_dets, NULL, 0, stats)) {
            fprintf(stderr, "bench_metrics: %s\n", q7_error_message());
            return 1;
        }
        t_coco[r] = q7_time_now() - t0;
    }
    qsort(t_metric, (size_t)reps, sizeof(double), cmp_double);
    qsort(t_coco, (size_t)reps, sizeof(double), cmp_double);
    printf("bench_metrics: %d images x %d detections (%zu), %d labels each, median of %d\n",
           n_img, n_det, n_dets, n_lab, reps);
    printf("  test.py metric (match + ap_per_class): %8.3f s   mAP@.5 %.4f  mAP@.5:.95 %.4f\n",
           t_metric[reps / 2], map50, map);
    printf("  COCO eval (evaluate+accumulate+summarize): %8.3f s   AP %.4f  AP50 %.4f\n",
           t_coco[reps / 2], stats[0], stats[1]);
    free(labels);
    free(preds);
    free(gt.images);
    free(gt.anns);
    free(gt.cat_ids);
    free(dets);
    free(t_metric);
    free(t_coco);
    return 0;
}
