/* The evaluation loop of yolov7's test.py: letterboxed batches → network → NMS → scale back →
 * test.py's metric and COCO AP. The network is any runner (CPU executor, CUDA executor). */
#ifndef Q7_EVALUATE_H
#define Q7_EVALUATE_H

#include "eval/cocoeval.h"
#include "eval/dataset.h"
#include "eval/image.h"
#include "eval/loader.h"
#include "eval/metrics.h"
#include "eval/nms.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A network that maps uint8 batches (n x 3 x h x w, RGB) to raw head outputs. */
struct q7_runner {
    void * ctx;
    enum q7_status (*rows)(void * ctx, int64_t n, int64_t h, int64_t w, int64_t * rows,
                           int64_t * no);
    enum q7_status (*run_u8)(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                             float * out);
    /* Optional (NULL: run_u8 only): run_u8 in two halves, one batch in flight; submit returns
     * once x is copied and the batch queued, wait blocks until out holds the result. The loop
     * then scores the previous batch while the next one runs. */
    enum q7_status (*submit_u8)(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                                float * out);
    enum q7_status (*wait)(void * ctx);
    int stride; /* the model's largest stride (batch shapes are multiples of max(32, stride)) */
    int nc;
};

struct q7_eval_params {
    int batch;               /* 8 as the README's table; test.py's default is 32 */
    int img_size;            /* 640 */
    double pad;              /* 0.5 (test.py's rect batches) */
    struct q7_nms_params nms;/* conf 0.001, iou 0.65, multi-label */
    enum q7_decoder decoder;
    int threads;             /* image decode workers (0: cores) */
    int progress;            /* 1: a progress bar (TTY) or lines on stderr */
    const struct q7_coco_gt * coco_gt; /* COCO ground truth (NULL: built from the labels) */
    int coco91;              /* detections' category ids via coco80_to_coco91 (COCO data) */
    int max_batches;         /* > 0: stop after this many batches (calibration subsets) */
    int skip_metrics;        /* 1: run the network only (calibration passes) */
    /* Called for every batch after the network ran (calibration hooks are on the runner). */
    void (*on_batch)(void * user, int batch_index, int n_batches);
    void * user;
};
struct q7_eval_params q7_eval_params_default(void);

struct q7_eval_result {
    struct q7_metric_result metric; /* P, R, mAP@.5, mAP@.5:.95, per class */
    double coco_stats[Q7_COCO_STATS];
    int has_coco;
    int images;           /* images evaluated */
    int failed;           /* images that could not be read (left out, reported once each) */
    double ms_pre, ms_inf, ms_nms; /* per image: load+letterbox wait, network, NMS+metric */
    double seconds;       /* wall time */
    struct q7_coco_det * dets; /* all detections in COCO results form (n_dets), malloc'ed */
    size_t n_dets;
};

/* The loader settings q7_evaluate uses: batches as test.py forms them for a model whose
 * largest stride is `stride` (at least 32). */
struct q7_loader_params q7_eval_loader_params(const struct q7_eval_params * p, int stride);

/* Runs the loop over every image of `ds`. The result is freed with q7_eval_result_free. */
enum q7_status q7_evaluate(const struct q7_runner * net, const struct q7_dataset * ds,
                           const struct q7_eval_params * p, struct q7_eval_result * out);
void q7_eval_result_free(struct q7_eval_result * r);

/* Builds COCO ground truth from the dataset's YOLO labels: image ids 1..n in dataset order
 * (or the COCO ids a COCO-json dataset carries), boxes in pixels of each image's size
 * (`sizes`: n x (h, w)), categories 0..nc-1. */
enum q7_status q7_coco_gt_from_labels(const struct q7_dataset * ds, const int64_t (*sizes)[2],
                                      int nc, struct q7_coco_gt ** out);

/* test.py's summary table header and row ("all  7  50  0.776 ..."), to `f`. */
void q7_eval_print(FILE * f, const struct q7_eval_result * r, const char * const * names,
                   int verbose);

#ifdef __cplusplus
}
#endif
#endif
