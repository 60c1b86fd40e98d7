/* The evaluation loop of yolov7's test.py. */
#include "eval/evaluate.h"

#include "eval/loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_WIDTH 30

struct q7_eval_params q7_eval_params_default(void)
{
    struct q7_eval_params p = {0};
    p.batch = 8;
    p.img_size = 640;
    p.pad = 0.5;
    p.nms = q7_nms_params_default();
    p.nms.conf_thres = 0.001f;
    p.nms.iou_thres = 0.65;
    p.nms.multi_label = 1;
    p.decoder = Q7_DECODER_AUTO;
    p.progress = 1;
    return p;
}

struct q7_loader_params q7_eval_loader_params(const struct q7_eval_params * p, int stride)
{
    struct q7_loader_params lp = q7_loader_params_default();
    lp.batch = p->batch;
    lp.img_size = p->img_size;
    lp.stride = stride > 32 ? stride : 32;
    lp.pad = p->pad;
    lp.decoder = p->decoder;
    lp.threads = p->threads;
    return lp;
}

void q7_eval_result_free(struct q7_eval_result * r)
{
    if (!r)
        return;
    q7_metric_result_free(&r->metric);
    free(r->dets);
    memset(r, 0, sizeof *r);
}

static void progress(int done, int total, double t0, int final)
{
    double dt = q7_time_now() - t0;
    double rate = dt > 0 ? done / dt : 0.0;
    double eta = rate > 0 ? (total - done) / rate : 0.0;
    if (isatty(STDERR_FILENO)) {
        int fill = total ? PROGRESS_WIDTH * done / total : PROGRESS_WIDTH;
        char bar[PROGRESS_WIDTH + 1];
        for (int i = 0; i < PROGRESS_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[PROGRESS_WIDTH] = '\0';
        fprintf(stderr, "\r  [%s] %d/%d images, %.1f img/s, ETA %.0f s   %s", bar, done, total,
                rate, eta, final ? "\n" : "");
    } else if (final || (total >= 10 && done % (total / 10 ? total / 10 : 1) == 0)) {
        fprintf(stderr, "  %d/%d images, %.1f img/s, ETA %.0f s\n", done, total, rate, eta);
    }
}

/* The COCO image id of dataset item i: its own (COCO json datasets), the ground truth's entry
 * with the same file name, or i + 1. */
static int64_t image_id_for(const struct q7_dataset * ds, int i, const struct q7_coco_gt * gt)
{
    const struct q7_dataset_item * it = &ds->items[i];
    if (it->width > 0 && it->has_image_id)
        return it->image_id;
    if (gt) {
        const char * base = strrchr(it->path, '/');
        base = base ? base + 1 : it->path;
        for (int k = 0; k < gt->n_images; k++)
            if (strcmp(gt->images[k].file_name, base) == 0)
                return gt->images[k].id;
        if (it->has_image_id)
            return it->image_id;
        return -1;
    }
    return i + 1;
}

enum q7_status q7_coco_gt_from_labels(const struct q7_dataset * ds, const int64_t (*sizes)[2],
                                      int nc, struct q7_coco_gt ** out)
{
    *out = NULL;
    struct q7_coco_gt * gt = calloc(1, sizeof *gt);
    if (!gt || !(gt->arena = q7_arena_create(1 << 20))) {
        free(gt);
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    int n_anns = 0;
    for (int i = 0; i < ds->n; i++)
        n_anns += ds->items[i].n_labels;
    gt->images = q7_arena_alloc(gt->arena, (size_t)(ds->n + 1) * sizeof *gt->images);
    gt->anns = q7_arena_alloc(gt->arena, (size_t)(n_anns + 1) * sizeof *gt->anns);
    gt->cat_ids = q7_arena_alloc(gt->arena, (size_t)(nc + 1) * sizeof *gt->cat_ids);
    if (!gt->images || !gt->anns || !gt->cat_ids) {
        q7_coco_gt_free(gt);
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    for (int c = 0; c < nc; c++)
        gt->cat_ids[c] = c;
    gt->n_cats = nc;
    for (int i = 0; i < ds->n; i++) {
        const struct q7_dataset_item * it = &ds->items[i];
        if (sizes[i][0] <= 0)
            continue; /* an image that could not be read */
        struct q7_coco_image * im = &gt->images[gt->n_images++];
        im->id = image_id_for(ds, i, NULL);
        im->file_name = it->path;
        im->height = (int)sizes[i][0];
        im->width = (int)sizes[i][1];
        for (int k = 0; k < it->n_labels; k++) {
            const float * l = it->labels + k * Q7_LABEL_COLS;
            struct q7_coco_ann * a = &gt->anns[gt->n_anns];
            a->id = gt->n_anns + 1;
            a->image_id = im->id;
            a->category_id = (int64_t)l[0];
            double w = (double)l[3] * im->width, h = (double)l[4] * im->height;
            a->bbox[0] = (double)l[1] * im->width - w / 2;
            a->bbox[1] = (double)l[2] * im->height - h / 2;
            a->bbox[2] = w;
            a->bbox[3] = h;
            a->area = w * h;
            gt->n_anns++;
        }
    }
    *out = gt;
    return Q7_OK;
}

static enum q7_status push_dets(struct q7_eval_result * r, size_t * cap, const float * preds,
                                int n, int64_t image_id, int coco91)
{
    if (r->n_dets + (size_t)n > *cap) {
        size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)n;
        struct q7_coco_det * d = realloc(r->dets, nc * sizeof *d);
        if (!d)
            return q7_error_set(Q7_ERR_OOM, "out of memory for detections");
        r->dets = d;
        *cap = nc;
    }
    for (int k = 0; k < n; k++)
        q7_coco_det_from_pred(preds + 6 * k, image_id, coco91, &r->dets[r->n_dets++]);
    return Q7_OK;
}

/* The loop's state: what scoring a batch reads and accumulates. */
struct eval_loop {
    const struct q7_dataset * ds;
    const struct q7_eval_params * p;
    struct q7_eval_result * out;
    struct q7_metric * metric;
    int64_t (*sizes)[2];
    float * labels;
    size_t labels_cap, det_cap;
    double t_start, t_nms;
    int done, total, batches;
};

/* A batch and the buffer its raw output goes to. */
struct eval_slot {
    struct q7_batch * b;
    float * raw;
    size_t cap;
    int64_t rows, no;
};

/* NMS, scaling back and the metric for every image of a batch whose raw output is in s->raw;
 * then the counters, the batch callback and the progress line. */
static enum q7_status score_batch(struct eval_loop * L, const struct eval_slot * s)
{
    const struct q7_batch * b = s->b;
    const struct q7_eval_params * p = L->p;
    struct q7_eval_result * out = L->out;
    const double t0 = q7_time_now();
    enum q7_status st = Q7_OK;
    for (int k = 0; !st && k < b->n && !p->skip_metrics; k++) {
        const struct q7_batch_image * im = &b->images[k];
        const struct q7_dataset_item * it = &L->ds->items[im->index];
        L->sizes[im->index][0] = im->h0;
        L->sizes[im->index][1] = im->w0;
        float * preds = NULL;
        int n_preds = 0;
        if ((st = q7_nms(s->raw + (size_t)k * s->rows * s->no, s->rows, (int)s->no, &p->nms,
                         &preds, &n_preds)))
            break;
        struct q7_ratio_pad rp = {im->ratio[0], im->ratio[1], im->pad[0], im->pad[1]};
        q7_scale_coords((int)b->h, (int)b->w, preds, n_preds, 6, (int)im->h0, (int)im->w0, &rp);
        if ((size_t)it->n_labels * 5 > L->labels_cap) {
            free(L->labels);
            L->labels_cap = (size_t)it->n_labels * 5;
            L->labels = malloc(L->labels_cap * sizeof *L->labels);
            if (!L->labels) {
                L->labels_cap = 0;
                free(preds);
                st = q7_error_set(Q7_ERR_OOM, "out of memory");
                break;
            }
        }
        q7_metric_labels_to_native(it->labels, it->n_labels, (int)im->h0, (int)im->w0,
                                   (int)b->h, (int)b->w, &rp, L->labels);
        st = q7_metric_add_image(L->metric, preds, n_preds, L->labels, it->n_labels);
        if (!st)
            st = push_dets(out, &L->det_cap, preds, n_preds,
                           image_id_for(L->ds, im->index, p->coco_gt), p->coco91);
        free(preds);
        out->images++;
    }
    if (st)
        return st;
    if (p->skip_metrics)
        out->images += b->n;
    L->t_nms += q7_time_now() - t0;
    out->failed += b->n_failed;
    L->done += b->planned;
    L->batches++;
    if (p->on_batch)
        p->on_batch(p->user, L->batches - 1, 0);
    if (p->progress)
        progress(L->done, L->total, L->t_start, 0);
    return Q7_OK;
}

/* score_batch, then the batch goes back to the loader (whatever the status). */
static enum q7_status score_release(struct eval_loop * L, struct q7_loader * ld,
                                    struct eval_slot * s)
{
    enum q7_status st = score_batch(L, s);
    q7_loader_release(ld, s->b);
    s->b = NULL;
    return st;
}

/* Raw output rows of s->b and a buffer for them. */
static enum q7_status slot_prepare(const struct q7_runner * net, struct eval_slot * s)
{
    const struct q7_batch * b = s->b;
    s->rows = s->no = 0;
    if (b->n == 0)
        return Q7_OK;
    enum q7_status st = net->rows(net->ctx, b->n, b->h, b->w, &s->rows, &s->no);
    if (st)
        return st;
    size_t need = (size_t)(b->n * s->rows * s->no);
    if (need > s->cap) {
        free(s->raw);
        s->raw = malloc(need * sizeof *s->raw);
        s->cap = s->raw ? need : 0;
        if (!s->raw)
            return q7_error_set(Q7_ERR_OOM, "out of memory for the network output");
    }
    return Q7_OK;
}

enum q7_status q7_evaluate(const struct q7_runner * net, const struct q7_dataset * ds,
                           const struct q7_eval_params * p, struct q7_eval_result * out)
{
    memset(out, 0, sizeof *out);
    if (ds->n == 0)
        return q7_error_set(Q7_ERR_ARG, "the dataset has no images");
    const char ** paths = malloc((size_t)ds->n * sizeof *paths);
    int64_t (*sizes)[2] = calloc((size_t)ds->n, sizeof *sizes);
    if (!paths || !sizes) {
        free(paths);
        free(sizes);
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    for (int i = 0; i < ds->n; i++)
        paths[i] = ds->items[i].path;
    struct q7_loader_params lp = q7_eval_loader_params(p, net->stride);
    if (lp.queue_depth < 2)
        lp.queue_depth = 2; /* the pipeline below holds two batches */
    struct q7_loader * ld = NULL;
    struct q7_coco_gt * own_gt = NULL;
    struct eval_loop L = {.ds = ds, .p = p, .out = out, .sizes = sizes, .total = ds->n};
    struct eval_slot slot[2] = {{0}, {0}};
    enum q7_status st = q7_loader_create(paths, ds->n, &lp, &ld);
    if (!st)
        st = q7_metric_create(net->nc, &L.metric);
    /* With submit_u8 + wait (the CUDA runner) the loop is a pipeline: batch i+1 is submitted
     * before batch i is scored, so the NMS and metric of one batch run on the CPU while the
     * GPU computes the next. Results are scored in batch order either way. */
    const int async = net->submit_u8 && net->wait;
    int pending = -1; /* async: the slot whose output is ready but not scored yet */
    double t_pre = 0, t_inf = 0;
    int fetched = 0;
    L.t_start = q7_time_now();
    while (!st) {
        if (p->max_batches > 0 && fetched >= p->max_batches)
            break;
        const int k = pending == 0 ? 1 : 0;
        double t0 = q7_time_now();
        if ((st = q7_loader_next(ld, &slot[k].b)) || !slot[k].b)
            break;
        fetched++;
        double t1 = q7_time_now();
        t_pre += t1 - t0;
        const struct q7_batch * b = slot[k].b;
        if ((st = slot_prepare(net, &slot[k])))
            break;
        if (async && b->n > 0) {
            st = net->submit_u8(net->ctx, b->data, b->n, b->h, b->w, slot[k].raw);
            t_inf += q7_time_now() - t1;
            if (!st && pending >= 0) /* the previous batch, while this one computes */
                st = score_release(&L, ld, &slot[pending]);
            double t2 = q7_time_now();
            enum q7_status sw = net->wait(net->ctx); /* also after an error: nothing in flight */
            t_inf += q7_time_now() - t2;
            if (!st)
                st = sw;
            pending = k;
            continue;
        }
        if (pending >= 0) { /* an empty batch after a submitted one: keep the order */
            st = score_release(&L, ld, &slot[pending]);
            pending = -1;
        }
        double t2 = q7_time_now();
        if (!st && b->n > 0)
            st = net->run_u8(net->ctx, b->data, b->n, b->h, b->w, slot[k].raw);
        t_inf += q7_time_now() - t2;
        if (!st)
            st = score_release(&L, ld, &slot[k]);
    }
    if (!st && pending >= 0)
        st = score_release(&L, ld, &slot[pending]);
    for (int k = 0; k < 2; k++) {
        if (slot[k].b)
            q7_loader_release(ld, slot[k].b);
        free(slot[k].raw);
    }
    const int done = L.done, total = L.total;
    const double t_start = L.t_start, t_nms = L.t_nms;
    struct q7_metric * metric = L.metric;
    if (!st && p->progress)
        progress(done, total, t_start, 1);
    if (!st) {
        struct q7_loader_stats ls;
        q7_loader_stats(ld, &ls);
        out->failed = ls.failed;
        if (out->images == 0)
            st = q7_error_set(Q7_ERR_IO, "no image of the dataset could be read (%d failed)",
                              ls.failed);
    }
    if (!st && !p->skip_metrics)
        st = q7_metric_compute(metric, &out->metric);
    if (!st && p->max_batches <= 0 && !p->skip_metrics) {
        const struct q7_coco_gt * gt = p->coco_gt;
        if (!gt) {
            st = q7_coco_gt_from_labels(ds, (const int64_t(*)[2])sizes, net->nc, &own_gt);
            gt = own_gt;
        }
        if (!st) {
            int64_t * ids = malloc((size_t)ds->n * sizeof *ids);
            int n_ids = 0;
            for (int i = 0; ids && i < ds->n; i++) {
                int64_t id = sizes[i][0] > 0 ? image_id_for(ds, i, p->coco_gt) : -1;
                if (id >= 0)
                    ids[n_ids++] = id;
            }
            st = ids ? q7_coco_eval(gt, out->dets, out->n_dets, ids, n_ids, out->coco_stats)
                     : q7_error_set(Q7_ERR_OOM, "out of memory");
            out->has_coco = !st;
            free(ids);
        }
    }
    int n_img = out->images ? out->images : 1;
    out->ms_pre = 1e3 * t_pre / n_img;
    out->ms_inf = 1e3 * t_inf / n_img;
    out->ms_nms = 1e3 * t_nms / n_img;
    out->seconds = q7_time_now() - t_start;
    q7_coco_gt_free(own_gt);
    q7_loader_free(ld);
    q7_metric_free(metric);
    free(L.labels);
    free(paths);
    free(sizes);
    if (st) {
        q7_eval_result_free(out);
        return st;
    }
    return Q7_OK;
}

void q7_eval_print(FILE * f, const struct q7_eval_result * r, const char * const * names,
                   int verbose)
{
    const struct q7_metric_result * m = &r->metric;
    fprintf(f, "%20s%12s%12s%12s%12s%12s%12s\n", "Class", "Images", "Labels", "P", "R",
            "mAP@.5", "mAP@.5:.95");
    fprintf(f, "%20s%12d%12d%12.3g%12.3g%12.3g%12.3g\n", "all", m->images, m->labels, m->p,
            m->r, m->map50, m->map);
    if (verbose)
        for (int c = 0; c < m->n_classes; c++) {
            const struct q7_metric_class * k = &m->classes[c];
            char name[32];
            if (names)
                snprintf(name, sizeof name, "%.31s", names[k->cls]);
            else
                snprintf(name, sizeof name, "%d", k->cls);
            fprintf(f, "%20s%12d%12d%12.3g%12.3g%12.3g%12.3g\n", name, k->images, k->labels,
                    k->p, k->r, k->ap50, k->ap);
        }
}
