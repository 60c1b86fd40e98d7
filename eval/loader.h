/* Parallel batch loader: yolov7's test loader (LoadImagesAndLabels, rect=True) in C.
 *
 * q7_loader_create probes every image's size (in parallel, headers only), plans the
 * rectangular batches (letterbox.h), then worker threads decode, resize and letterbox the
 * images of upcoming batches into a bounded window of queue_depth batches ahead of the
 * consumer. q7_loader_next hands batches out in plan order.
 *
 * Sizes for planning follow yolov7, which measures them with PIL and exif_size(): the
 * stored size, with height and width swapped for EXIF orientations 6 and 8 only. The pixels
 * and (h0, w0) follow OpenCV's imread (all of 2..8 applied).
 *
 * Unreadable images: an image whose header cannot be read is left out of the plan, and so
 * are those yolov7's cache_labels() drops before batching: a format other than JPEG, PNG or
 * BMP (GIF, PGM/PPM; TIFF and WebP q7 cannot decode at all) and a side under 10 pixels. An image that fails later (decode
 * error, truncated data, size limit) is left out of its batch: the batch then holds only
 * the good images, packed in order (n < planned), and lists the failed ones. Either way
 * the failure is logged once at Q7_LOG_WARN with the file and the reason, and counted. */
#ifndef Q7_LOADER_H
#define Q7_LOADER_H

#include "eval/image.h"
#include "eval/letterbox.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_loader_params {
    int batch;          /* images per batch (yolov7 --batch-size) */
    int img_size;       /* long side (640) */
    int stride;         /* model stride (32) */
    double pad;         /* rect padding (0.5 for test.py) */
    enum q7_decoder decoder;
    int threads;        /* decode workers; 0: number of online CPUs */
    int queue_depth;    /* batches decoded ahead, including those the consumer holds (>= 1) */
    int64_t max_pixels; /* per-image limit; 0: Q7_IMAGE_MAX_PIXELS_DEFAULT */
};

/* batch 32, img_size 640, stride 32, pad 0.5, AUTO decoder, threads 0, depth 4, default
 * pixel limit. */
struct q7_loader_params q7_loader_params_default(void);

/* One image of a batch. */
struct q7_batch_image {
    int index;            /* position in the paths given to q7_loader_create */
    int64_t h0, w0;       /* decoded size (after EXIF orientation) */
    int64_t h, w;         /* after load_image's resize */
    double ratio[2];      /* (h / h0, w / w0) } test.py's ratio_pad for scale_coords: */
    double pad[2];        /* (dw, dh)         } shapes[i][1] = (ratio, pad) */
};

struct q7_batch {
    int index;        /* batch number in plan order, 0-based */
    int planned;      /* images the plan put in this batch */
    int n;            /* images held: planned minus failed */
    int64_t h, w;     /* batch shape */
    uint8_t * data;   /* n x 3 x h x w, RGB, uint8 */
    struct q7_batch_image * images; /* n, in batch order */
    int n_failed;
    int * failed;     /* n_failed positions in the paths list of images left out */
};

struct q7_loader_stats {
    int images;          /* paths given */
    int planned;         /* images in the plan (paths minus probe failures) */
    int ok;              /* decoded and letterboxed so far */
    int failed;          /* probe and decode failures so far */
    int batches;         /* batches in the plan */
    double probe_seconds;  /* wall time of the parallel probe */
    double decode_seconds; /* summed over workers */
    double resize_seconds; /* resize + letterbox, summed over workers */
};

struct q7_loader;

/* Starts a loader over n paths (copied). Q7_ERR_ARG for bad params, Q7_ERR_OOM, or
 * Q7_ERR_NOT_FOUND when not a single image could be probed. Free with q7_loader_free. */
enum q7_status q7_loader_create(const char * const * paths, int n,
                                const struct q7_loader_params * p, struct q7_loader ** out);

/* The plan (valid until q7_loader_free). */
const struct q7_batch_plan * q7_loader_plan(const struct q7_loader * ld);

/* Waits for the next batch in plan order and hands it out (*out owned by the loader until
 * q7_loader_release). *out = NULL at the end. Q7_ERR_LIMIT when the consumer already holds
 * queue_depth batches (release one first); Q7_ERR_OOM when a batch buffer could not be
 * allocated. */
enum q7_status q7_loader_next(struct q7_loader * ld, struct q7_batch ** out);
/* Gives a batch back; its memory is freed and the workers may run further ahead. */
void q7_loader_release(struct q7_loader * ld, struct q7_batch * batch);

void q7_loader_stats(struct q7_loader * ld, struct q7_loader_stats * out);

/* Stops the workers (even mid-dataset), joins them and frees everything, including batches
 * not released. Accepts NULL. */
void q7_loader_free(struct q7_loader * ld);

#ifdef __cplusplus
}
#endif
#endif
