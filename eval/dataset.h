/* Evaluation datasets: image lists and their labels, found the way yolov7's
 * LoadImagesAndLabels (utils/datasets.py) finds them, or read from a COCO instances file.
 *
 * Image sources (q7_dataset_load):
 *   - a list file (val.txt): one path per line; a line starting with "./" is relative to the
 *     list file's folder, other lines are used as written (yolov7 does the same: absolute
 *     paths, or paths relative to the working directory);
 *   - a folder: every file below it, recursively, whose extension is an image format
 *     (hidden names skipped, as glob does);
 *   - a single image file (its extension is an image format).
 * Only names with an extension in yolov7's img_formats (bmp jpg jpeg png tif tiff dng webp
 * mpo, any case) are kept; the list is sorted (byte order) and duplicates dropped.
 *
 * Labels: yolov7's img2label_paths: the FIRST "/images/" in the path becomes "/labels/" and
 * the extension becomes "txt". A label file holds `class cx cy w h` rows, normalized; a file
 * where any row has more than 8 values holds polygons (`class x1 y1 x2 y2 ...`), turned into
 * boxes by their extent, as yolov7 does. As in yolov7's cache_labels, an image is left out of
 * the dataset ("corrupted", one warning naming the file) when its image file is missing or its
 * label file has a row with the wrong number of values, a value that is not a number, a
 * negative value, a coordinate above 1, or a duplicated row. q7 also rejects non-finite
 * values, a class that is not a whole number, and (when params.nc > 0) a class >= nc. A
 * missing label file means no labels ("missing"), an empty one too ("empty"). */
#ifndef Q7_EVAL_DATASET_H
#define Q7_EVAL_DATASET_H

#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_LABEL_COLS 5                      /* class cx cy w h */
#define Q7_DATASET_MAX_IMAGES 10000000       /* images in one dataset */
#define Q7_DATASET_MAX_LABELS 100000         /* labels in one image */
#define Q7_DATASET_MAX_LINE 4096             /* bytes in one list or label line */
#define Q7_DATASET_MAX_LIST_BYTES (1u << 30) /* size of a list file */
#define Q7_DATASET_MAX_DEPTH 32              /* folder nesting when scanning a folder */

struct q7_dataset_item {
    const char * path;       /* image path as yolov7 forms it */
    const char * label_path; /* its label file (NULL for COCO-json datasets) */
    const char * stem;       /* file name without folder and extension */
    int64_t image_id;        /* test.py's save_json id: int(stem) when the stem is all digits
                                (and fits), the COCO image id for COCO-json datasets */
    int has_image_id;        /* 0: the stem is not numeric (test.py would write the stem) */
    int width, height;       /* from the COCO json; 0 when unknown */
    int n_labels;
    float * labels; /* n_labels x Q7_LABEL_COLS: class cx cy w h, normalized, FP32 */
};

struct q7_dataset {
    int n;
    struct q7_dataset_item * items;
    /* cache_labels' counts: label files found, missing, empty; images left out. */
    int n_found, n_missing, n_empty, n_corrupt;
    struct q7_arena * arena; /* owns items, strings and labels */
};

struct q7_dataset_params {
    int nc;           /* > 0: labels with class >= nc make the image corrupt; 0: no check */
    int check_images; /* 1: leave out images whose file cannot be opened (yolov7 does) */
    int coco91_to_80; /* COCO json: 1 = map category ids 1..90 to 0..79 (coco80_to_coco91
                         inverse; other ids are skipped with a warning); 0 = class is the
                         index of the category id among the file's sorted categories */
};

struct q7_dataset_params q7_dataset_params_default(void);

/* Loads the images of `path` (list file, folder or image) and their YOLO labels.
 * `params` may be NULL (defaults). Warnings (corrupt labels, missing images) go to q7_log.
 * Returns Q7_ERR_IO when `path` cannot be read, Q7_ERR_NOT_FOUND when no image is found,
 * Q7_ERR_LIMIT past the Q7_DATASET_MAX_* bounds, Q7_ERR_OOM. Free with q7_dataset_free. */
enum q7_status q7_dataset_load(const char * path, const struct q7_dataset_params * params,
                               struct q7_dataset ** out);

/* Loads the images of `images` (list file, folder or image) with labels from a COCO
 * instances file: each image is matched by file name (without folder) to the json's images;
 * boxes (x y w h in pixels) become cx cy w h normalized by the json's width and height;
 * iscrowd annotations and boxes with w or h <= 0 are skipped; classes as params->coco91_to_80.
 * Images that the json does not list are left out with one warning. */
enum q7_status q7_dataset_load_coco(const char * images, const char * instances_json,
                                    const struct q7_dataset_params * params,
                                    struct q7_dataset ** out);

void q7_dataset_free(struct q7_dataset * ds);

/* yolov7's img2label_paths for one path; writes into buf (cap bytes). Q7_ERR_LIMIT when it
 * does not fit, Q7_ERR_ARG when the path has no extension. */
enum q7_status q7_dataset_label_path(const char * image_path, char * buf, size_t cap);

/* Parses the text of one label file (yolov7's rules above). On success *labels is malloc'ed
 * (n x Q7_LABEL_COLS, NULL when n == 0). On a bad file returns Q7_ERR_FORMAT with the reason
 * and line in the message (prefixed by `what`). */
enum q7_status q7_dataset_parse_labels(const char * text, size_t len, const char * what, int nc,
                                       float ** labels, int * n);

#ifdef __cplusplus
}
#endif
#endif
