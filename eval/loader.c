/* Parallel batch loader (see loader.h).
 *
 * Threads: workers claim plan positions in order (one image each) under one mutex, but only
 * from batches inside the window [base, base + queue_depth), base being the oldest batch
 * not yet released. A worker decodes and letterboxes straight into its slot of the batch
 * buffer, then counts the image done; the consumer waits on `ready` until every image of
 * the batch it wants is done. Releasing a batch moves the window and wakes the workers.
 * Nothing spins: waits are condition variables. */
#include "eval/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IMG_PENDING = 0, IMG_OK = 1, IMG_FAILED = -1 };
enum { MAX_THREADS = 256 };
enum { YOLO_MIN_SIDE = 10 }; /* cache_labels(): assert (shape[0] > 9) & (shape[1] > 9) */

struct slot {
    struct q7_batch batch;          /* the public view, filled when handed out */
    struct q7_batch_image * meta;   /* per planned position */
    int * state;                    /* per planned position: IMG_* */
    int done;                       /* images finished, ok or not */
    int handed_out, released;
    enum q7_status alloc_status;    /* Q7_ERR_OOM when the buffers could not be allocated */
};

struct q7_loader {
    struct q7_loader_params p;
    int n_paths;
    char ** paths;
    struct q7_batch_plan plan; /* order[] holds indices into paths */
    struct slot * slots;       /* plan.n_batches */

    pthread_mutex_t mu;
    pthread_cond_t work; /* workers: the window moved, or stop */
    pthread_cond_t ready; /* consumer: a batch finished */
    int next_pos;        /* next plan position a worker claims */
    int base;            /* oldest batch not released */
    int next_batch;      /* next batch q7_loader_next hands out */
    int stop;

    pthread_t * threads;
    int n_threads;
    struct q7_loader_stats stats;
};

struct q7_loader_params q7_loader_params_default(void)
{
    struct q7_loader_params p = {
        .batch = 32,
        .img_size = 640,
        .stride = 32,
        .pad = 0.5,
        .decoder = Q7_DECODER_AUTO,
        .threads = 0,
        .queue_depth = 4,
        .max_pixels = 0,
    };
    return p;
}

const struct q7_batch_plan * q7_loader_plan(const struct q7_loader * ld)
{
    return &ld->plan;
}

static int batch_size_of(const struct q7_loader * ld, int b)
{
    int lo = b * ld->plan.batch, hi = lo + ld->plan.batch;
    return (hi < ld->plan.n ? hi : ld->plan.n) - lo;
}

static size_t image_bytes(const struct q7_loader * ld, int b)
{
    return (size_t)(3 * ld->plan.shape[b][0] * ld->plan.shape[b][1]);
}

/* ---- probing ------------------------------------------------------------------------------ */

struct probe_job {
    struct q7_loader * ld;
    pthread_mutex_t mu;
    int next;
    int64_t (*hw)[2]; /* yolov7's size per path; (0, 0) when the probe failed */
};

static void * probe_main(void * arg)
{
    struct probe_job * job = arg;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        int i = job->next < job->ld->n_paths ? job->next++ : -1;
        pthread_mutex_unlock(&job->mu);
        if (i < 0)
            break;
        const char * path = job->ld->paths[i];
        struct q7_image_info info;
        job->hw[i][0] = job->hw[i][1] = 0;
        if (q7_image_probe_info(path, &info) != Q7_OK) {
            q7_log(Q7_LOG_WARN, "loader: ignoring an image: %s", q7_error_message());
            continue;
        }
        /* yolov7's exif_size(): only orientations 6 and 8 swap width and height. */
        int swap = info.orientation == 6 || info.orientation == 8;
        int64_t h = swap ? info.w : info.h, w = swap ? info.h : info.w;
        /* cache_labels() drops what PIL calls another format and images under 10 pixels */
        if (info.format != Q7_IMAGE_FORMAT_JPEG && info.format != Q7_IMAGE_FORMAT_PNG &&
            info.format != Q7_IMAGE_FORMAT_BMP) {
            q7_log(Q7_LOG_WARN, "loader: ignoring an image: %s: %s is not an image format "
                   "yolov7 accepts", path, q7_image_format_name(info.format));
            continue;
        }
        if (h < YOLO_MIN_SIDE || w < YOLO_MIN_SIDE) {
            q7_log(Q7_LOG_WARN, "loader: ignoring an image: %s: size %lldx%lld is under %d "
                   "pixels", path, (long long)w, (long long)h, YOLO_MIN_SIDE);
            continue;
        }
        job->hw[i][0] = h;
        job->hw[i][1] = w;
    }
    return NULL;
}

/* Runs fn(arg) on `count` threads (at least the calling one) and joins them. */
static void run_threads(void * (*fn)(void *), void * arg, int count)
{
    pthread_t tids[MAX_THREADS];
    int started = 0;
    for (int i = 1; i < count && i < MAX_THREADS; i++) {
        if (pthread_create(&tids[started], NULL, fn, arg) != 0)
            break; /* fewer helpers; the calling thread still does all remaining work */
        started++;
    }
    fn(arg);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
}

static enum q7_status probe_and_plan(struct q7_loader * ld)
{
    int n = ld->n_paths;
    struct probe_job job = {.ld = ld, .next = 0};
    job.hw = calloc((size_t)n, sizeof *job.hw);
    int64_t (*good_hw)[2] = calloc((size_t)n, sizeof *good_hw);
    int * good = calloc((size_t)n, sizeof *good);
    enum q7_status st = Q7_OK;
    if (!job.hw || !good_hw || !good) {
        st = q7_error_set(Q7_ERR_OOM, "loader: out of memory for %d image sizes", n);
        goto out;
    }
    pthread_mutex_init(&job.mu, NULL);
    double t0 = q7_time_now();
    run_threads(probe_main, &job, ld->n_threads < n ? ld->n_threads : n);
    ld->stats.probe_seconds = q7_time_now() - t0;
    pthread_mutex_destroy(&job.mu);

    int ng = 0;
    for (int i = 0; i < n; i++) {
        if (job.hw[i][0] > 0) {
            good_hw[ng][0] = job.hw[i][0];
            good_hw[ng][1] = job.hw[i][1];
            good[ng++] = i;
        }
    }
    ld->stats.failed = n - ng;
    if (ng == 0) {
        st = q7_error_set(Q7_ERR_NOT_FOUND, "loader: none of the %d images could be read "
                          "(first: %s)", n, ld->paths[0]);
        goto out;
    }
    st = q7_batch_plan((const int64_t (*)[2])good_hw, ng, ld->p.batch, ld->p.img_size,
                       ld->p.stride, ld->p.pad, &ld->plan);
    if (st != Q7_OK)
        goto out;
    for (int k = 0; k < ng; k++)
        ld->plan.order[k] = good[ld->plan.order[k]];
    ld->stats.planned = ng;
    ld->stats.batches = ld->plan.n_batches;
out:
    free(job.hw);
    free(good_hw);
    free(good);
    return st;
}

/* ---- workers ----------------------------------------------------------------------------- */

/* Allocates the buffers of batch b (called with the mutex held). */
static void slot_alloc(struct q7_loader * ld, int b)
{
    struct slot * s = &ld->slots[b];
    int m = batch_size_of(ld, b);
    size_t bytes;
    if (!q7_size_mul(image_bytes(ld, b), (size_t)m, &bytes)) {
        s->alloc_status = Q7_ERR_OOM;
        return;
    }
    s->batch.data = malloc(bytes);
    s->meta = calloc((size_t)m, sizeof *s->meta);
    s->state = calloc((size_t)m, sizeof *s->state);
    s->batch.images = calloc((size_t)m, sizeof *s->batch.images);
    s->batch.failed = calloc((size_t)m, sizeof *s->batch.failed);
    if (!s->batch.data || !s->meta || !s->state || !s->batch.images || !s->batch.failed)
        s->alloc_status = Q7_ERR_OOM;
}

static void slot_free(struct slot * s)
{
    free(s->batch.data);
    free(s->batch.images);
    free(s->batch.failed);
    free(s->meta);
    free(s->state);
    s->batch.data = NULL;
    s->batch.images = NULL;
    s->batch.failed = NULL;
    s->meta = NULL;
    s->state = NULL;
}

/* Decodes and letterboxes plan position pos into its place in batch b. */
static int process(struct q7_loader * ld, int pos, int b, double * t_dec, double * t_box)
{
    struct slot * s = &ld->slots[b];
    int k = pos - b * ld->plan.batch;
    int idx = ld->plan.order[pos];
    const char * path = ld->paths[idx];
    struct q7_image img;
    double t0 = q7_time_now();
    enum q7_status st = q7_image_load(path, ld->p.decoder, ld->p.max_pixels, &img);
    double t1 = q7_time_now();
    struct q7_letterbox_geom g;
    if (st == Q7_OK) {
        st = q7_letterbox_image(img.data, img.h, img.w, ld->p.img_size, ld->plan.shape[b][0],
                                ld->plan.shape[b][1], s->batch.data + k * image_bytes(ld, b), &g);
        if (st != Q7_OK)
            q7_error_wrap(st, "%s", path);
    }
    double t2 = q7_time_now();
    q7_image_free(&img);
    *t_dec = t1 - t0;
    *t_box = t2 - t1;
    if (st != Q7_OK) {
        q7_log(Q7_LOG_WARN, "loader: image left out of batch %d: %s", b, q7_error_message());
        return IMG_FAILED;
    }
    struct q7_batch_image * m = &s->meta[k];
    m->index = idx;
    m->h0 = g.h0;
    m->w0 = g.w0;
    m->h = g.h;
    m->w = g.w;
    m->ratio[0] = g.ratio[0];
    m->ratio[1] = g.ratio[1];
    m->pad[0] = g.pad[0];
    m->pad[1] = g.pad[1];
    return IMG_OK;
}

static void * worker_main(void * arg)
{
    struct q7_loader * ld = arg;
    pthread_mutex_lock(&ld->mu);
    while (!ld->stop && ld->next_pos < ld->plan.n) {
        int pos = ld->next_pos, b = pos / ld->plan.batch;
        if (b >= ld->base + ld->p.queue_depth) {
            pthread_cond_wait(&ld->work, &ld->mu);
            continue;
        }
        ld->next_pos++;
        struct slot * s = &ld->slots[b];
        if (pos == b * ld->plan.batch)
            slot_alloc(ld, b);
        int state = IMG_FAILED;
        double t_dec = 0, t_box = 0;
        if (s->alloc_status == Q7_OK) {
            pthread_mutex_unlock(&ld->mu);
            state = process(ld, pos, b, &t_dec, &t_box);
            pthread_mutex_lock(&ld->mu);
        }
        s->state[pos - b * ld->plan.batch] = state;
        ld->stats.decode_seconds += t_dec;
        ld->stats.resize_seconds += t_box;
        if (state == IMG_OK)
            ld->stats.ok++;
        else
            ld->stats.failed++;
        if (++s->done == batch_size_of(ld, b))
            pthread_cond_broadcast(&ld->ready);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

static enum q7_status check_params(const struct q7_loader_params * p)
{
    if (p->batch < 1 || p->img_size < 1 || p->stride < 1 || !(p->pad >= 0) ||
        p->queue_depth < 1 || p->threads < 0 || p->max_pixels < 0)
        return q7_error_set(Q7_ERR_ARG, "loader: bad parameters (batch %d, img_size %d, stride "
                            "%d, queue_depth %d, threads %d)", p->batch, p->img_size, p->stride,
                            p->queue_depth, p->threads);
    if (!q7_decoder_available(p->decoder))
        return q7_error_set(Q7_ERR_UNSUPPORTED, "loader: decoder %d is not in this build",
                            (int)p->decoder);
    return Q7_OK;
}

void q7_loader_free(struct q7_loader * ld)
{
    if (!ld)
        return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->work);
    pthread_cond_broadcast(&ld->ready);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->n_threads; i++)
        pthread_join(ld->threads[i], NULL);
    if (ld->slots)
        for (int b = 0; b < ld->plan.n_batches; b++)
            slot_free(&ld->slots[b]);
    free(ld->slots);
    free(ld->threads);
    if (ld->paths)
        for (int i = 0; i < ld->n_paths; i++)
            free(ld->paths[i]);
    free(ld->paths);
    q7_batch_plan_free(&ld->plan);
    pthread_cond_destroy(&ld->work);
    pthread_cond_destroy(&ld->ready);
    pthread_mutex_destroy(&ld->mu);
    free(ld);
}

enum q7_status q7_loader_create(const char * const * paths, int n,
                                const struct q7_loader_params * p, struct q7_loader ** out)
{
    *out = NULL;
    if (!paths || n < 1 || !p)
        return q7_error_set(Q7_ERR_ARG, "loader: no images");
    enum q7_status st = check_params(p);
    if (st != Q7_OK)
        return st;
    struct q7_loader * ld = calloc(1, sizeof *ld);
    if (!ld)
        return q7_error_set(Q7_ERR_OOM, "loader: out of memory");
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work, NULL);
    pthread_cond_init(&ld->ready, NULL);
    ld->p = *p;
    int threads = p->threads;
    if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
    }
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    ld->n_threads = threads; /* probe threads; reset below to the workers actually started */
    ld->stats.images = n;

    ld->paths = calloc((size_t)n, sizeof *ld->paths);
    if (!ld->paths) {
        st = q7_error_set(Q7_ERR_OOM, "loader: out of memory");
        goto fail;
    }
    ld->n_paths = n;
    for (int i = 0; i < n; i++) {
        if (!paths[i]) {
            st = q7_error_set(Q7_ERR_ARG, "loader: path %d is NULL", i);
            goto fail;
        }
        ld->paths[i] = strdup(paths[i]);
        if (!ld->paths[i]) {
            st = q7_error_set(Q7_ERR_OOM, "loader: out of memory");
            goto fail;
        }
    }
    st = probe_and_plan(ld);
    if (st != Q7_OK)
        goto fail;

    ld->slots = calloc((size_t)ld->plan.n_batches, sizeof *ld->slots);
    if (threads > ld->plan.n)
        threads = ld->plan.n;
    ld->threads = calloc((size_t)threads, sizeof *ld->threads);
    ld->n_threads = 0;
    if (!ld->slots || !ld->threads) {
        st = q7_error_set(Q7_ERR_OOM, "loader: out of memory");
        goto fail;
    }
    for (int b = 0; b < ld->plan.n_batches; b++) {
        ld->slots[b].batch.index = b;
        ld->slots[b].batch.planned = batch_size_of(ld, b);
        ld->slots[b].batch.h = ld->plan.shape[b][0];
        ld->slots[b].batch.w = ld->plan.shape[b][1];
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&ld->threads[i], NULL, worker_main, ld) != 0) {
            if (i == 0) {
                st = q7_error_set(Q7_ERR_INTERNAL, "loader: cannot start a worker thread");
                goto fail;
            }
            break;
        }
        ld->n_threads++;
    }
    *out = ld;
    return Q7_OK;
fail:
    ld->n_threads = 0;
    q7_loader_free(ld);
    return st;
}

/* Packs the good images of a finished batch to the front and fills its public view. */
static void slot_finish(struct q7_loader * ld, struct slot * s)
{
    struct q7_batch * bt = &s->batch;
    size_t bytes = image_bytes(ld, bt->index);
    int lo = bt->index * ld->plan.batch;
    bt->n = 0;
    bt->n_failed = 0;
    for (int k = 0; k < bt->planned; k++) {
        if (s->state[k] != IMG_OK) {
            bt->failed[bt->n_failed++] = ld->plan.order[lo + k];
            continue;
        }
        if (bt->n != k)
            memmove(bt->data + bt->n * bytes, bt->data + k * bytes, bytes);
        bt->images[bt->n++] = s->meta[k];
    }
}

enum q7_status q7_loader_next(struct q7_loader * ld, struct q7_batch ** out)
{
    *out = NULL;
    if (!ld)
        return q7_error_set(Q7_ERR_ARG, "q7_loader_next: NULL loader");
    pthread_mutex_lock(&ld->mu);
    int b = ld->next_batch;
    if (b >= ld->plan.n_batches) {
        pthread_mutex_unlock(&ld->mu);
        return Q7_OK;
    }
    if (b >= ld->base + ld->p.queue_depth) {
        pthread_mutex_unlock(&ld->mu);
        return q7_error_set(Q7_ERR_LIMIT, "q7_loader_next: %d batches are held; release one "
                            "before asking for more (queue_depth %d)", b - ld->base,
                            ld->p.queue_depth);
    }
    struct slot * s = &ld->slots[b];
    while (s->done < s->batch.planned && !ld->stop)
        pthread_cond_wait(&ld->ready, &ld->mu);
    ld->next_batch++;
    s->handed_out = 1;
    pthread_mutex_unlock(&ld->mu);
    if (s->alloc_status != Q7_OK) {
        q7_loader_release(ld, &s->batch);
        return q7_error_set(Q7_ERR_OOM, "loader: out of memory for batch %d (%dx3x%lldx%lld)", b,
                            s->batch.planned, (long long)s->batch.h, (long long)s->batch.w);
    }
    slot_finish(ld, s); /* the workers are done with this slot */
    *out = &s->batch;
    return Q7_OK;
}

void q7_loader_release(struct q7_loader * ld, struct q7_batch * batch)
{
    if (!ld || !batch || batch->index < 0 || batch->index >= ld->plan.n_batches)
        return;
    pthread_mutex_lock(&ld->mu);
    struct slot * s = &ld->slots[batch->index];
    if (s->handed_out && !s->released) {
        s->released = 1;
        slot_free(s);
        while (ld->base < ld->plan.n_batches && ld->slots[ld->base].released)
            ld->base++;
        pthread_cond_broadcast(&ld->work);
    }
    pthread_mutex_unlock(&ld->mu);
}

void q7_loader_stats(struct q7_loader * ld, struct q7_loader_stats * out)
{
    pthread_mutex_lock(&ld->mu);
    *out = ld->stats;
    pthread_mutex_unlock(&ld->mu);
}
