/* Non-maximum suppression and coordinate rescaling, as yolov7's utils/general.py
 * (`non_max_suppression`, `scale_coords`, `clip_coords`) computes them on the CPU in FP32.
 *
 * Box rows produced here are `x1 y1 x2 y2 conf cls` (6 floats). */
#ifndef Q7_EVAL_NMS_H
#define Q7_EVAL_NMS_H

#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_NMS_ROW 6 /* floats per output row: x1 y1 x2 y2 conf cls */

struct q7_nms_params {
    float conf_thres;    /* candidates: obj > conf_thres, then obj*cls > conf_thres (0.001 eval) */
    double iou_thres;    /* suppress IoU > iou_thres (0.65 in test.py's CLI, 0.6 default arg) */
    const int * classes; /* keep only these classes (NULL: all) */
    int n_classes;       /* length of `classes` */
    int agnostic;        /* 1: one NMS over all classes (no class offset) */
    int multi_label;     /* 1: every (box, class) pair above conf_thres (test.py uses 1) */
    int max_det;         /* keep at most this many (300) */
    float max_wh;        /* class offset in pixels (4096) */
    int max_nms;         /* at most this many boxes go into NMS, highest conf first (30000) */
};

/* yolov7's defaults for evaluation: conf 0.001, iou 0.65, multi-label, 300/4096/30000. */
struct q7_nms_params q7_nms_params_default(void);

/* Runs NMS on one image's raw head output `pred` (rows x no floats, no = 5 + nc:
 * cx cy w h obj cls0 cls1 ...). Writes up to params->max_det rows of Q7_NMS_ROW floats to
 * *out (malloc'ed, caller frees; NULL when *n_out is 0), in the order yolov7 returns them
 * (score descending, ties in candidate order).
 * Returns Q7_ERR_ARG for bad sizes or parameters, Q7_ERR_OOM, Q7_ERR_LIMIT when rows * no
 * overflows. */
enum q7_status q7_nms(const float * pred, int64_t rows, int no, const struct q7_nms_params * params,
                      float ** out, int * n_out);

/* scale_coords' ratio_pad: ((gain_h, gain_w), (pad_w, pad_h)). yolov7 only uses gain_h. */
struct q7_ratio_pad {
    double gain_h, gain_w; /* resized / original (h / h0, w / w0) */
    double pad_w, pad_h;   /* letterbox padding (dw, dh) */
};

/* Rescales xyxy boxes (the first 4 floats of each row, `stride` floats apart) from the
 * letterboxed image (img1_h x img1_w) to the original (img0_h x img0_w) and clips them, in FP32
 * as PyTorch does: x -= pad_w, y -= pad_h, all /= gain, clamp to [0, w0] / [0, h0].
 * `ratio_pad` NULL: gain and pad computed from the shapes as yolov7 does. */
void q7_scale_coords(int img1_h, int img1_w, float * boxes, int64_t n, int stride, int img0_h,
                     int img0_w, const struct q7_ratio_pad * ratio_pad);

/* Clamps xyxy boxes to [0, w] x [0, h] (clip_coords). */
void q7_clip_coords(float * boxes, int64_t n, int stride, int img_h, int img_w);

#ifdef __cplusplus
}
#endif
#endif
