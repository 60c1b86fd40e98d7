/* COCO bounding-box evaluation with pycocotools' COCOeval semantics (iouType 'bbox'), the
 * COCO instances file reader and the results writer of yolov7's test.py (save_json).
 *
 * Evaluation follows pycocotools exactly: images = sorted unique ids (all ground-truth images,
 * or the ids given), categories = sorted unique category ids of the ground truth; per image and
 * category the detections are sorted by score (stable, as mergesort) and cut to 100; IoU of
 * xywh boxes in double as maskUtils.iou (a crowd box's union is the detection's area);
 * per area range (all, small < 32^2, medium, large > 96^2, on the annotation's `area`) ground
 * truth that is crowd or outside the range is ignored; greedy matching per IoU threshold
 * (linspace(.5, .95, 10)) in score order, best IoU >= threshold, ignored ground truth only
 * when no regular one matched; unmatched detections outside the range are ignored;
 * accumulate() with the precision envelope read at 101 recall thresholds
 * (searchsorted left) for maxDets 1, 10, 100 (matching done once at 100), and summarize()'s 12
 * numbers, -1 where nothing was counted. */
#ifndef Q7_EVAL_COCOEVAL_H
#define Q7_EVAL_COCOEVAL_H

#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_COCO_STATS 12
#define Q7_COCO_MAX_JSON_BYTES ((size_t)1 << 31)

struct q7_coco_image {
    int64_t id;
    const char * file_name; /* "" when absent */
    int width, height;      /* 0 when absent */
};

struct q7_coco_ann {
    int64_t id;
    int64_t image_id;
    int64_t category_id;
    double bbox[4]; /* x y w h, pixels */
    double area;    /* the file's `area` (bbox w * h when absent) */
    int iscrowd;
};

/* A COCO instances file (images, annotations, categories), in file order. */
struct q7_coco_gt {
    int n_images;
    struct q7_coco_image * images;
    int n_anns;
    struct q7_coco_ann * anns;
    int n_cats;
    int64_t * cat_ids;       /* as listed */
    struct q7_arena * arena; /* owns everything above */
};

/* Reads / parses an instances file. Q7_ERR_FORMAT (with the key and index) for a missing or
 * mistyped field or duplicate image or annotation ids (pycocotools would keep only the last);
 * Q7_ERR_LIMIT for files over Q7_COCO_MAX_JSON_BYTES. Free with q7_coco_gt_free. */
enum q7_status q7_coco_gt_load(const char * path, struct q7_coco_gt ** out);
enum q7_status q7_coco_gt_parse(const char * text, size_t len, const char * what,
                                struct q7_coco_gt ** out);
void q7_coco_gt_free(struct q7_coco_gt * gt);

/* One detection in COCO results format. */
struct q7_coco_det {
    int64_t image_id;
    int64_t category_id;
    double bbox[4]; /* x y w h, pixels */
    double score;
};

/* Reads / parses a results file (a JSON list of {image_id, category_id, bbox, score}).
 * *dets is malloc'ed (NULL when empty); caller frees. */
enum q7_status q7_coco_dets_load(const char * path, struct q7_coco_det ** dets, size_t * n);
enum q7_status q7_coco_dets_parse(const char * text, size_t len, const char * what,
                                  struct q7_coco_det ** dets, size_t * n);

/* test.py's save_json row for one prediction `pred` (x1 y1 x2 y2 conf cls in original
 * pixels, FP32): bbox = xyxy2xywh then xy -= wh / 2 in float64 (as the fixtures'
 * dets_origin.json; test.py's float32 tensors move ~1% of the values by 0.001), each rounded
 * to 3 decimals as Python's round(); score = round(conf, 5); category = coco80_to_coco91[cls]
 * when coco91, else cls. */
void q7_coco_det_from_pred(const float * pred, int64_t image_id, int coco91,
                           struct q7_coco_det * out);

/* Writes detections as a COCO results JSON list, atomically. */
enum q7_status q7_coco_dets_write(const char * path, const struct q7_coco_det * dets, size_t n);

/* Runs evaluate(), accumulate() and summarize() and writes the 12 stats (AP, AP50, AP75,
 * APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl). `img_ids` (n_img_ids) restricts the images
 * as params.imgIds does; NULL: all ground-truth images. Detections whose category the ground
 * truth does not list are dropped (as pycocotools); a detection naming an image the ground
 * truth does not have is an error (loadRes asserts), as is a non-finite box or score. */
enum q7_status q7_coco_eval(const struct q7_coco_gt * gt, const struct q7_coco_det * dets,
                            size_t n_dets, const int64_t * img_ids, int n_img_ids,
                            double stats[Q7_COCO_STATS]);

/* The 12 summary lines as pycocotools prints them (" Average Precision  (AP) @[ IoU=...").
 * Returns the length written (snprintf semantics). */
int q7_coco_stats_format(const double stats[Q7_COCO_STATS], char * buf, size_t cap);

/* yolov7's coco80_to_coco91_class(): category id (1..90) of class 0..79; -1 out of range. */
int q7_coco80_to_91(int cls80);
/* The inverse: class 0..79 of a COCO category id, -1 for ids without a class. */
int q7_coco91_to_80(int64_t cat91);

#ifdef __cplusplus
}
#endif
#endif
