/* The network behind a command: the CPU executor or, with --device cuda, the CUDA one. */
#include "tools/cli.h"

#include "engine/exec_cuda.h"

#include <stdlib.h>
#include <string.h>

static enum q7_status cuda_rows(void * ctx, int64_t n, int64_t h, int64_t w, int64_t * rows,
                                int64_t * no)
{
    return q7_cuda_exec_output_rows(ctx, n, h, w, rows, no);
}

static enum q7_status cuda_run(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                               float * out)
{
    return q7_cuda_exec_run_u8(ctx, x, n, h, w, out);
}

static enum q7_status cuda_submit(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                                  float * out)
{
    return q7_cuda_exec_submit_u8(ctx, x, n, h, w, out);
}

static enum q7_status cuda_wait(void * ctx)
{
    return q7_cuda_exec_wait(ctx);
}

enum q7_status cli_net_create(struct q7_graph * g, const char * device, int fp16, int threads,
                              struct cli_net * net)
{
    memset(net, 0, sizeof *net);
    net->g = g;
    if (!device || strcmp(device, "cpu") == 0) {
        if (fp16)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "--fp16 needs --device cuda");
        struct q7_exec_params xp = q7_exec_params_default();
        xp.threads = threads;
        return q7_exec_create(g, &xp, &net->cpu);
    }
    if (strcmp(device, "cuda") != 0)
        return q7_error_set(Q7_ERR_ARG, "--device must be cpu or cuda, not '%s'", device);
    struct q7_cuda_params cp = q7_cuda_params_default();
    cp.fp16 = fp16;
    net->cuda = 1;
    return q7_cuda_exec_create(g, &cp, &net->gpu);
}

void cli_net_free(struct cli_net * net)
{
    q7_exec_free(net->cpu);
    q7_cuda_exec_free(net->gpu);
    memset(net, 0, sizeof *net);
}

struct q7_runner cli_net_runner(struct cli_net * net)
{
    if (!net->cuda)
        return q7_runner_cpu(net->cpu, net->g);
    struct q7_runner r = {.ctx = net->gpu, .rows = cuda_rows, .run_u8 = cuda_run,
                          .submit_u8 = cuda_submit, .wait = cuda_wait,
                          .stride = net->g->stride_max, .nc = net->g->nc};
    return r;
}

enum q7_status cli_net_refresh(struct cli_net * net)
{
    return net->cuda ? q7_cuda_exec_refresh_quant(net->gpu) : q7_exec_refresh_weights(net->cpu);
}

/* CUDA calibration: every node's output feeds the quantizers that read it on the device (max
 * and histograms there, q7_cuda_exec_qdq_collect: the CPU calibrator's counts on the same
 * values); only the histogram counts come back to the host. */
static enum q7_status cuda_calib_hook(void * user, struct q7_cuda_exec * e,
                                      const struct q7_node * node,
                                      const struct q7_cuda_view * dev, const struct q7_view * host)
{
    (void)host;
    return q7_cuda_exec_qdq_collect(e, user, node->id, dev);
}

static enum q7_status refresh_cuda(void * ctx)
{
    return q7_cuda_exec_refresh_quant(ctx);
}

enum q7_status cli_net_calibrate(struct cli_net * net, struct q7_qdq * qdq,
                                 const struct q7_dataset * calib,
                                 const struct q7_eval_params * params, int max_batches,
                                 double * seconds)
{
    if (!net->cuda)
        return q7_calibrate(net->cpu, net->g, qdq, calib, params, max_batches, seconds);
    double t0 = q7_time_now();
    struct q7_runner r = cli_net_runner(net);
    int images = 0;
    q7_cuda_exec_set_hook(net->gpu, cuda_calib_hook, qdq, 0);
    enum q7_status st =
        q7_calibrate_pass(&r, qdq, refresh_cuda, net->gpu, calib, params, max_batches, &images);
    q7_cuda_exec_set_hook(net->gpu, NULL, NULL, 0);
    if (!st)
        q7_log(Q7_LOG_INFO, "q7: calibrated %d quantizers on %d images in %.1f s (histograms on "
               "the GPU)", qdq->n, images, q7_time_now() - t0);
    if (seconds)
        *seconds = q7_time_now() - t0;
    return st;
}

enum q7_status cli_net_apply_method(struct cli_net * net, struct q7_qdq * qdq,
                                    const char * method, double * seconds)
{
    enum q7_status st = q7_qdq_compute_amax_named(qdq, method, seconds);
    return st ? st : cli_net_refresh(net);
}
