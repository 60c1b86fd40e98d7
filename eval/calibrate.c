/* Calibration of a graph's quantizers over a dataset: weights by max, then one FP32 pass
 * collecting every input quantizer's histogram and max; amax per method afterwards. */
#include "eval/calibrate.h"

#include <stdlib.h>
#include <string.h>

struct calib_hook {
    struct q7_qdq * qdq;
    float * scratch;
    size_t cap;
    enum q7_status st;
};

static void calib_node(void * user, const struct q7_node * nd, const struct q7_view * v)
{
    struct calib_hook * h = user;
    if (h->st)
        return;
    size_t need = (size_t)(v->n * v->c * v->h * v->w);
    if (v->batch_stride != v->c * v->h * v->w && need > h->cap) {
        free(h->scratch);
        h->scratch = malloc(need * sizeof(float));
        h->cap = h->scratch ? need : 0;
        if (!h->scratch) {
            h->st = q7_error_set(Q7_ERR_OOM, "calibration: out of memory");
            return;
        }
    }
    h->st = q7_qdq_collect_node(h->qdq, nd->id, v->data, v->n, v->c, v->h * v->w,
                                v->batch_stride, h->scratch);
}

enum q7_status q7_calibrate_pass(const struct q7_runner * net, struct q7_qdq * qdq,
                                 enum q7_status (*refresh)(void * ctx), void * ctx,
                                 const struct q7_dataset * calib,
                                 const struct q7_eval_params * params, int max_batches,
                                 int * images)
{
    enum q7_status st = q7_qdq_calib_weights(qdq);
    if (st)
        return st;
    /* weights calibrated but inactive during the pass: the seed disables every quantizer
     * with a calibrator while collecting, so the pass is the plain FP32 fused model */
    q7_qdq_set_enabled(qdq, NULL, 0, NULL);
    q7_qdq_set_calibrating(qdq, 1);
    struct q7_eval_params ep = *params;
    ep.coco_gt = NULL;
    ep.skip_metrics = 1;
    ep.max_batches = max_batches;
    struct q7_eval_result r = {0};
    st = refresh(ctx);
    if (!st)
        st = q7_evaluate(net, calib, &ep, &r);
    q7_qdq_set_calibrating(qdq, 0);
    q7_qdq_set_enabled(qdq, NULL, 1, NULL);
    if (images)
        *images = r.images;
    q7_eval_result_free(&r);
    return st;
}

static enum q7_status refresh_cpu(void * ctx)
{
    return q7_exec_refresh_weights(ctx);
}

enum q7_status q7_calibrate(struct q7_exec * e, struct q7_graph * g, struct q7_qdq * qdq,
                            const struct q7_dataset * calib, const struct q7_eval_params * params,
                            int max_batches, double * seconds)
{
    double t0 = q7_time_now();
    struct calib_hook h = {.qdq = qdq};
    struct q7_runner net = q7_runner_cpu(e, g);
    int images = 0;
    q7_exec_set_hook(e, calib_node, &h);
    enum q7_status st =
        q7_calibrate_pass(&net, qdq, refresh_cpu, e, calib, params, max_batches, &images);
    q7_exec_set_hook(e, NULL, NULL);
    if (!st && h.st)
        st = h.st;
    if (!st)
        q7_log(Q7_LOG_INFO, "q7: calibrated %d quantizers on %d images in %.1f s", qdq->n,
               images, q7_time_now() - t0);
    free(h.scratch);
    if (seconds)
        *seconds = q7_time_now() - t0;
    return st;
}

enum q7_status q7_qdq_apply_method(struct q7_exec * e, struct q7_qdq * qdq, const char * method,
                                   double * seconds)
{
    enum q7_status st = q7_qdq_compute_amax_named(qdq, method, seconds);
    return st ? st : q7_exec_refresh_weights(e);
}
