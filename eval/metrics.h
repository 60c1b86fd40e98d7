/* yolov7's test.py metric: per image, predictions matched to targets at IoU 0.5:0.95
 * (test.py's loop), then utils/metrics.py ap_per_class (101-point interpolated AP of the
 * precision envelope, recall sentinel recall[-1] + 0.01, P and R at the confidence of the
 * best mean F1), reproduced with PyTorch's FP32 and NumPy's float64 arithmetic.
 *
 * Score ties: NumPy's default argsort (quicksort) does not keep the order of equal scores,
 * so with ties yolov7's numbers depend on its sort; q7 sorts stably (equal confidences keep
 * the order in which images and predictions were added). */
#ifndef Q7_EVAL_METRICS_H
#define Q7_EVAL_METRICS_H

#include "eval/nms.h"
#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_METRIC_NIOU 10 /* IoU thresholds 0.5:0.05:0.95 */
#define Q7_METRIC_MAX_NC 100000

struct q7_metric; /* accumulator of per-image statistics */

struct q7_metric_class {
    int cls;
    int images;      /* images seen (what test.py prints in every class row) */
    int images_with; /* images that have a label of this class */
    int labels;
    double p, r, ap50, ap;
};

struct q7_metric_result {
    int images;                       /* images seen */
    int labels;                       /* labels of all images */
    double p, r, map50, map;          /* mAP@.5 and mAP@.5:.95 */
    int n_classes;                    /* classes that have labels (ap_per_class' unique classes) */
    struct q7_metric_class * classes; /* malloc'ed; q7_metric_result_free */
};

/* Creates an accumulator for classes 0..nc-1. Q7_ERR_ARG when nc is out of 1..Q7_METRIC_MAX_NC. */
enum q7_status q7_metric_create(int nc, struct q7_metric ** out);
void q7_metric_free(struct q7_metric * m);

/* Adds one image: `preds` n_preds x 6 (x1 y1 x2 y2 conf cls, original pixels, NMS order),
 * `labels` n_labels x 5 (cls x1 y1 x2 y2, original pixels). Either may be empty (NULL).
 * Q7_ERR_ARG for a class outside 0..nc-1, a NaN confidence or negative counts. */
enum q7_status q7_metric_add_image(struct q7_metric * m, const float * preds, int n_preds,
                                   const float * labels, int n_labels);

/* Computes the metric over the images added so far. test.py prints zeros (and 0 labels) when
 * no prediction is correct at any IoU; q7 gives zeros too, but the true label count. */
enum q7_status q7_metric_compute(const struct q7_metric * m, struct q7_metric_result * out);
void q7_metric_result_free(struct q7_metric_result * r);

/* test.py's targets in native pixels, computed as the loader and test.py compute them in FP32:
 * normalized labels (cls cx cy w h) -> letterbox pixels xyxy (xywhn2xyxy with the letterbox
 * ratio and pad) -> normalized by the letterboxed shape (xyxy2xywh, / H, / W) -> * (W, H)
 * -> xywh2xyxy -> scale_coords(ratio_pad). `orig_h/w` is the image's size, `input_h/w` its
 * letterboxed (batch) shape, `rp` the loader's ratio_pad ((h / h0, w / w0), (dw, dh)).
 * Writes n x 5 rows cls x1 y1 x2 y2 to `out` (may not alias `labels`). */
void q7_metric_labels_to_native(const float * labels, int n, int orig_h, int orig_w, int input_h,
                                int input_w, const struct q7_ratio_pad * rp, float * out);

/* The IoU of two xyxy boxes as utils/general.py box_iou computes it in FP32. */
float q7_metric_box_iou(const float * a, const float * b);

/* NumPy semantics used by the metrics (exported for the COCO evaluator and tests):
 * np.add.reduce over n doubles `stride` apart (pairwise summation), np.interp (x ascending
 * or not; xp non-decreasing), np.trapz(y, x). */
double q7_np_sum(const double * a, size_t n, size_t stride);
void q7_np_interp(const double * x, size_t nx, const double * xp, const double * fp, size_t nxp,
                  double left, double right, double * out);
double q7_np_trapz(const double * y, const double * x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
