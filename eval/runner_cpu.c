/* The CPU executor as an evaluation runner. */
#include "eval/evaluate.h"

#include "engine/exec.h"

static enum q7_status cpu_rows(void * ctx, int64_t n, int64_t h, int64_t w, int64_t * rows,
                               int64_t * no)
{
    return q7_exec_output_rows(ctx, n, h, w, rows, no);
}

static enum q7_status cpu_run(void * ctx, const uint8_t * x, int64_t n, int64_t h, int64_t w,
                              float * out)
{
    return q7_exec_run_u8(ctx, x, n, h, w, out);
}

struct q7_runner q7_runner_cpu(struct q7_exec * e, const struct q7_graph * g)
{
    struct q7_runner r = {.ctx = e, .rows = cpu_rows, .run_u8 = cpu_run,
                          .stride = g->stride_max, .nc = g->nc};
    return r;
}
