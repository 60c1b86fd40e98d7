/* yolov7's evaluation geometry (utils/datasets.py, LoadImagesAndLabels with rect=True,
 * augment=False): load_image's resize of the long side, letterbox into the batch shape, and
 * the rectangular batch plan.
 *
 *  load_image:  r = img_size / max(h0, w0); if r != 1 resize to (int(w0 * r), int(h0 * r))
 *               with INTER_AREA when r < 1, INTER_LINEAR when r > 1.
 *  letterbox:   new_shape = batch shape (h, w), auto=False, scaleup=False:
 *               r2 = min(new_h / h, new_w / w, 1); new_unpad = (round(w * r2), round(h * r2))
 *               (Python round, half to even); dw, dh = (new_w - unpad_w) / 2,
 *               (new_h - unpad_h) / 2; INTER_LINEAR resize only if the size changes;
 *               top = round(dh - 0.1), bottom = round(dh + 0.1), left/right likewise;
 *               border (114, 114, 114).
 *  test.py:     shapes = (h0, w0), ((h / h0, w / w0), (dw, dh)) with h, w after load_image
 *               (the letterbox ratio is not in it: that is what scale_coords receives).
 *  batches:     images sorted by aspect ratio h / w with numpy's argsort (introsort,
 *               kind='quicksort', reproduced here tie for tie); batch i gets
 *               [maxi, 1] if maxi < 1, [1, 1 / mini] if mini > 1, else [1, 1], then
 *               ceil(shape * img_size / stride + pad) * stride. */
#ifndef Q7_LETTERBOX_H
#define Q7_LETTERBOX_H

#include "eval/resize.h"
#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Border value of the letterbox (all three channels). */
#define Q7_LETTERBOX_FILL 114

/* Everything about one image's trip from decoded size to batch shape. */
struct q7_letterbox_geom {
    int64_t h0, w0;       /* decoded size (after EXIF orientation) */
    int64_t h, w;         /* after load_image's resize */
    int load_resize;      /* 1 when load_image resized (r != 1) */
    enum q7_interp load_interp;
    int64_t out_h, out_w; /* the batch shape */
    int64_t unpad_h, unpad_w; /* after letterbox's own resize (equal to h, w unless shrunk) */
    int64_t top, bottom, left, right;
    double ratio[2]; /* (h / h0, w / w0): test.py's shapes[i][1][0] */
    double pad[2];   /* (dw, dh): test.py's shapes[i][1][1] */
};

/* Computes the geometry above. Q7_ERR_ARG when a size is not positive or an image would
 * shrink to nothing (cv2.resize would raise). */
enum q7_status q7_letterbox_geometry(int64_t h0, int64_t w0, int img_size, int64_t out_h,
                                     int64_t out_w, struct q7_letterbox_geom * g);

/* Runs load_image + letterbox on an RGB HWC image (h0 x w0 x 3) and writes the result as
 * CHW RGB uint8 into chw (3 * out_h * out_w bytes). Fills *g when g is not NULL. Allocates
 * only the intermediate resized images (freed before returning). */
enum q7_status q7_letterbox_image(const uint8_t * rgb, int64_t h0, int64_t w0, int img_size,
                                  int64_t out_h, int64_t out_w, uint8_t * chw,
                                  struct q7_letterbox_geom * g);

/* The rectangular batch plan. Batch b holds the images at positions
 * [b * batch, min(n, (b + 1) * batch)) of `order`. */
struct q7_batch_plan {
    int n;              /* images */
    int batch;          /* batch size */
    int n_batches;
    int * order;        /* n: index (into the caller's list) of the image at each position */
    int64_t (*shape)[2]; /* n_batches: (h, w) every image of the batch is letterboxed into */
};

/* Plans batches for n images of sizes hw[i] = (h, w) (as yolov7 measured them). batch >= 1,
 * img_size >= 1, stride >= 1, pad >= 0. Owns its arrays: q7_batch_plan_free. */
enum q7_status q7_batch_plan(const int64_t (*hw)[2], int n, int batch, int img_size, int stride,
                             double pad, struct q7_batch_plan * out);
void q7_batch_plan_free(struct q7_batch_plan * plan);

/* numpy.argsort(v) (kind='quicksort', the generic introsort of numpy <= 1.24 and of builds
 * without the AVX-512 sort; NaN last): writes the permutation to order[0..n). */
void q7_argsort_numpy(const double * v, int n, int * order);

#ifdef __cplusplus
}
#endif
#endif
