/* The CUDA executor: lifecycle, plans, runs (upload, nodes, download), hooks, timings and the
 * device calibration helpers. The op dispatch is backend_cuda.c, the parameters
 * exec_cuda_params.c, single-node runs on host data exec_cuda_node.c. */
#include "engine/exec_cuda_impl.h"
#include "kernels/cuda/copy.cuh"
#include "kernels/cuda/hist.cuh"
#include "kernels/cuda/normalize.cuh"
#include "quant/calib.h"
#include "quant/qdq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 64 /* inputs of one node (concat of many levels) */

struct q7_cuda_params q7_cuda_params_default(void)
{
    struct q7_cuda_params p = {
        .fp16 = 0, .device = 0, .profile = 0, .conv_workspace = 0, .im2col_tiled = 0};
    return p;
}

enum q7_status q7_cuda_available(int * n_devices, char * name, size_t size)
{
    int count = 0;
    if (n_devices)
        *n_devices = 0;
    if (name && size)
        name[0] = '\0';
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count < 1) {
        /* no driver, no device, a driver too old: all mean "no usable GPU here" */
        if (name && size)
            snprintf(name, size, "no CUDA device: %s: %s", cudaGetErrorName(err),
                     cudaGetErrorString(err));
        (void)cudaGetLastError();
        return Q7_OK;
    }
    struct cudaDeviceProp prop;
    enum q7_status st = Q7_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    if (st)
        return st;
    if (n_devices)
        *n_devices = count;
    if (name && size)
        snprintf(name, size, "%s, sm_%d%d, %d SMs, %.0f GiB", prop.name, prop.major, prop.minor,
                 prop.multiProcessorCount, (double)prop.totalGlobalMem / (1u << 30));
    return Q7_OK;
}

enum q7_status q7_cuda_device_peaks(int device, struct q7_cuda_peaks * out)
{
    int major = 0, minor = 0, sms = 0, clock = 0, mem_clock = 0, bus = 0;
    enum q7_status st;
    if ((st = Q7_CUDA_CHECK(
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device))) ||
        (st = Q7_CUDA_CHECK(
             cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device))) ||
        (st = Q7_CUDA_CHECK(
             cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device))) ||
        (st = Q7_CUDA_CHECK(cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, device))) ||
        (st = Q7_CUDA_CHECK(
             cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, device))) ||
        (st = Q7_CUDA_CHECK(
             cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, device))))
        return st;
    *out = q7_cuda_peaks_of(major, minor, sms, clock, mem_clock, bus);
    return Q7_OK;
}

enum q7_status q7_cuda_exec_enter(struct q7_cuda_exec * e)
{
    return Q7_CUDA_CHECK(cudaSetDevice(e->params.device));
}

/* cudaMalloc'ed buffers grow: free the old one, allocate the new size (contents lost). */
static enum q7_status grow_device(void ** p, size_t * cap, size_t bytes, const char * what)
{
    if (bytes <= *cap && *p)
        return Q7_OK;
    if (*p) {
        enum q7_status st = Q7_CUDA_CHECK(cudaFree(*p));
        *p = NULL;
        *cap = 0;
        if (st)
            return st;
    }
    if (bytes == 0)
        return Q7_OK;
    enum q7_status st = Q7_CUDA_CHECK(cudaMalloc(p, bytes));
    if (st) {
        *p = NULL;
        return q7_error_wrap(st, "%s (%zu bytes)", what, bytes);
    }
    *cap = bytes;
    return Q7_OK;
}

static enum q7_status grow_pinned(void ** p, size_t * cap, size_t bytes, const char * what)
{
    if (bytes <= *cap && *p)
        return Q7_OK;
    if (*p) {
        enum q7_status st = Q7_CUDA_CHECK(cudaFreeHost(*p));
        *p = NULL;
        *cap = 0;
        if (st)
            return st;
    }
    enum q7_status st = Q7_CUDA_CHECK(cudaMallocHost(p, bytes ? bytes : 1));
    if (st) {
        *p = NULL;
        return q7_error_wrap(st, "%s (%zu bytes)", what, bytes);
    }
    *cap = bytes;
    return Q7_OK;
}

static enum q7_status grow_host(void ** p, size_t * cap, size_t bytes)
{
    if (bytes <= *cap && *p)
        return Q7_OK;
    void * n = realloc(*p, bytes ? bytes : 1);
    if (!n)
        return q7_error_set(Q7_ERR_OOM, "cuda: out of memory (%zu bytes)", bytes);
    *p = n;
    *cap = bytes;
    return Q7_OK;
}

enum q7_status q7_cuda_exec_reserve_ws(struct q7_cuda_exec * e, size_t bytes)
{
    return grow_device((void **)&e->d_ws, &e->ws_cap, bytes, "conv workspace");
}

enum q7_status q7_cuda_exec_create(struct q7_graph * g, const struct q7_cuda_params * p,
                                   struct q7_cuda_exec ** out)
{
    *out = NULL;
    if (g && (g->output < 0 || g->input < 0))
        return q7_error_set(Q7_ERR_ARG, "cuda executor: graph has no input or output");
    struct q7_cuda_params params = p ? *p : q7_cuda_params_default();
    int count = 0;
    char why[256];
    enum q7_status st = q7_cuda_available(&count, why, sizeof why);
    if (st)
        return st;
    if (count == 0)
        return q7_error_set(Q7_ERR_CUDA, "cuda executor: %s", why);
    if (params.device < 0 || params.device >= count)
        return q7_error_set(Q7_ERR_ARG, "cuda executor: device %d of %d", params.device, count);
    struct q7_cuda_exec * e = calloc(1, sizeof *e);
    if (!e)
        return q7_error_set(Q7_ERR_OOM, "cuda executor: out of memory");
    e->g = g;
    e->params = params;
    e->gemm_in = params.fp16 ? Q7_DTYPE_F16 : Q7_DTYPE_F32;
    e->act_type = e->gemm_in;
    if ((st = q7_cuda_exec_enter(e)) ||
        (st = Q7_CUDA_CHECK(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking))))
        goto fail;
    if ((st = Q7_CUBLAS_CHECK(cublasCreate(&e->blas)))) {
        e->blas = NULL;
        goto fail;
    }
    if ((st = Q7_CUBLAS_CHECK(cublasSetStream(e->blas, e->stream))))
        goto fail;
    for (int k = 0; k < 4; k++)
        if ((st = Q7_CUDA_CHECK(cudaEventCreate(&e->ev_run[k])))) {
            e->ev_run[k] = NULL;
            goto fail;
        }
    if ((st = Q7_CUDA_CHECK(cudaMalloc((void **)&e->d_scratch, 2 * sizeof(unsigned int)))))
        goto fail;
    if (!g) {
        *out = e;
        return Q7_OK;
    }
    const size_t n = (size_t)g->n_nodes;
    if ((st = q7_plan_init(&e->plan, g)))
        goto fail;
    e->root_f16 = calloc(n ? n : 1, 1);
    e->views = calloc(n ? n : 1, sizeof *e->views);
    e->np = calloc(n ? n : 1, sizeof *e->np);
    e->seconds = calloc(n ? n : 1, sizeof *e->seconds);
    if (!e->root_f16 || !e->views || !e->np || !e->seconds) {
        st = q7_error_set(Q7_ERR_OOM, "cuda executor: out of memory");
        goto fail;
    }
    if (params.profile) {
        e->ev = calloc(2 * (n ? n : 1), sizeof *e->ev);
        if (!e->ev) {
            st = q7_error_set(Q7_ERR_OOM, "cuda executor: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < 2 * n; i++)
            if ((st = Q7_CUDA_CHECK(cudaEventCreate(&e->ev[i])))) {
                e->ev[i] = NULL;
                goto fail;
            }
    }
    if ((st = q7_cuda_params_upload(e)))
        goto fail;
    *out = e;
    return Q7_OK;
fail:
    q7_cuda_exec_free(e);
    return st;
}

void q7_cuda_exec_free(struct q7_cuda_exec * e)
{
    if (!e)
        return;
    (void)cudaSetDevice(e->params.device);
    if (e->stream)
        (void)cudaStreamSynchronize(e->stream);
    if (e->ev) {
        for (int i = 0; e->g && i < 2 * e->g->n_nodes; i++)
            if (e->ev[i])
                (void)cudaEventDestroy(e->ev[i]);
        free(e->ev);
    }
    for (int k = 0; k < 4; k++)
        if (e->ev_run[k])
            (void)cudaEventDestroy(e->ev_run[k]);
    if (e->blas)
        (void)cublasDestroy(e->blas);
    (void)cudaFree(e->d_params);
    (void)cudaFree(e->d_arena);
    (void)cudaFree(e->d_ws);
    (void)cudaFree(e->d_stage);
    (void)cudaFree(e->d_out);
    (void)cudaFree(e->d_scratch);
    (void)cudaFree(e->d_counts);
    if (e->h_stage)
        (void)cudaFreeHost(e->h_stage);
    if (e->h_out)
        (void)cudaFreeHost(e->h_out);
    if (e->stream)
        (void)cudaStreamDestroy(e->stream);
    (void)cudaGetLastError();
    if (e->np)
        for (int i = 0; e->g && i < e->g->n_nodes; i++)
            free(e->np[i].w_amax);
    free(e->np);
    free(e->root_f16);
    free(e->views);
    free(e->seconds);
    free(e->h_hook);
    free(e->h_hook16);
    if (e->g)
        q7_plan_free(&e->plan);
    free(e);
}

/* Plans for n x 3 x h x w: views, arena, workspace, staging buffers. */
static enum q7_status plan(struct q7_cuda_exec * e, int64_t n, int64_t h, int64_t w)
{
    if (e->pn == n && e->ph == h && e->pw == w)
        return Q7_OK;
    if (n < 1 || h < 1 || w < 1)
        return q7_error_set(Q7_ERR_ARG, "cuda executor: input %lld x 3 x %lld x %lld", (long long)n,
                            (long long)h, (long long)w);
    struct q7_graph * g = e->g;
    e->pn = 0;
    e->plan.n = 0; /* re-infer shapes: another executor may have changed them */
    enum q7_status st = q7_plan_make(&e->plan, n, h, w);
    if (st)
        return st;
    q7_cuda_plan_dtypes(&e->plan, e->params.fp16, e->root_f16);
    if ((st = grow_device((void **)&e->d_arena, &e->arena_cap, e->plan.arena_bytes,
                          "activation arena")))
        return st;
    size_t ws = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (e->plan.live[i] && g->nodes[i]->op != Q7_OP_DETECT)
            e->views[i] = q7_cuda_plan_view(&e->plan, e->d_arena, e->root_f16, i);
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        if (!e->plan.live[i] || nd->op != Q7_OP_CONV2D)
            continue;
        size_t need = 0;
        if ((st = q7_cuda_node_workspace(e, nd, &e->views[nd->inputs[0]], &e->views[i], &need)))
            return st;
        ws = need > ws ? need : ws;
    }
    if ((st = q7_cuda_exec_reserve_ws(e, ws)))
        return st;
    const struct q7_node * d = g->nodes[g->output];
    if (d->op != Q7_OP_DETECT || d->out.ndim != 3)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "cuda executor: the output is not a detect node");
    e->rows = d->out.shape[1];
    e->no = d->out.shape[2];
    const struct q7_cuda_view * in = &e->views[g->input];
    size_t in_bytes, out_bytes;
    if (!q7_size_mul((size_t)(in->n * in->c * in->h), (size_t)in->w * sizeof(float), &in_bytes) ||
        !q7_size_mul((size_t)(n * e->rows), (size_t)e->no * sizeof(float), &out_bytes))
        return q7_error_set(Q7_ERR_LIMIT, "cuda executor: batch too large");
    if ((st = grow_device((void **)&e->d_stage, &e->stage_cap, in_bytes, "input staging")) ||
        (st = grow_pinned((void **)&e->h_stage, &e->h_stage_cap, in_bytes, "pinned input")) ||
        (st = grow_device((void **)&e->d_out, &e->out_cap, out_bytes, "detect output")) ||
        (st = grow_pinned((void **)&e->h_out, &e->h_out_cap, out_bytes, "pinned output")))
        return st;
    e->pn = n;
    e->ph = h;
    e->pw = w;
    return Q7_OK;
}

enum q7_status q7_cuda_exec_output_rows(struct q7_cuda_exec * e, int64_t n, int64_t h, int64_t w,
                                        int64_t * rows, int64_t * no)
{
    if (!e || !e->g)
        return q7_error_set(Q7_ERR_ARG, "cuda executor: no graph");
    enum q7_status st = q7_cuda_exec_enter(e);
    if (!st)
        st = plan(e, n, h, w);
    if (st)
        return st;
    *rows = e->rows;
    *no = e->no;
    return Q7_OK;
}

void q7_cuda_exec_set_hook(struct q7_cuda_exec * e, q7_cuda_hook hook, void * user, int want_host)
{
    e->hook = hook;
    e->hook_user = user;
    e->hook_host = want_host;
}

enum q7_status q7_cuda_exec_read(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                 float * host)
{
    const int64_t per = x->c * x->h * x->w;
    if (x->n * per == 0)
        return Q7_OK;
    enum q7_status st = q7_cuda_exec_enter(e);
    if (st)
        return st;
    if (x->dtype == Q7_DTYPE_F32) {
        st = Q7_CUDA_CHECK(cudaMemcpy2DAsync(host, (size_t)per * 4, x->data,
                                             (size_t)x->batch_stride * 4, (size_t)per * 4,
                                             (size_t)x->n, cudaMemcpyDeviceToHost, e->stream));
        if (!st)
            st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
        return st;
    }
    const size_t count = (size_t)(x->n * per);
    if ((st = grow_host((void **)&e->h_hook16, &e->h_hook16_bytes, count * sizeof(uint16_t))))
        return st;
    st = Q7_CUDA_CHECK(cudaMemcpy2DAsync(e->h_hook16, (size_t)per * 2, x->data,
                                         (size_t)x->batch_stride * 2, (size_t)per * 2, (size_t)x->n,
                                         cudaMemcpyDeviceToHost, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (st)
        return st;
    for (size_t i = 0; i < count; i++)
        host[i] = q7_half_to_float(e->h_hook16[i]);
    return Q7_OK;
}

/* Calls the hook on node id's output. */
static enum q7_status call_hook(struct q7_cuda_exec * e, int id)
{
    const struct q7_cuda_view * v = &e->views[id];
    const struct q7_node * nd = e->g->nodes[id];
    enum q7_status st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (st)
        return q7_error_wrap(st, "%s", nd->name);
    if (!e->hook_host)
        return e->hook(e->hook_user, e, nd, v, NULL);
    const size_t count = (size_t)(v->n * v->c * v->h * v->w);
    if ((st = grow_host((void **)&e->h_hook, &e->h_hook_bytes, count * sizeof(float))))
        return st;
    if ((st = q7_cuda_exec_read(e, v, e->h_hook)))
        return q7_error_wrap(st, "%s", nd->name);
    struct q7_view hv = {.data = e->h_hook,
                         .n = v->n,
                         .c = v->c,
                         .h = v->h,
                         .w = v->w,
                         .batch_stride = v->c * v->h * v->w};
    return e->hook(e->hook_user, e, nd, v, &hv);
}

static enum q7_status run_nodes(struct q7_cuda_exec * e)
{
    struct q7_graph * g = e->g;
    struct q7_cuda_view xs[MAX_INPUTS];
    for (int i = 0; i < g->n_nodes; i++) {
        const struct q7_node * nd = g->nodes[i];
        e->seconds[i] = 0.0;
        if (!e->plan.live[i] || nd->op == Q7_OP_INPUT)
            continue;
        if (nd->n_inputs > MAX_INPUTS)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: more than %d inputs", nd->name,
                                MAX_INPUTS);
        for (int k = 0; k < nd->n_inputs; k++)
            xs[k] = e->views[nd->inputs[k]];
        const struct q7_cuda_node_args a = q7_cuda_node_args_of(e, i);
        enum q7_status st = Q7_OK;
        if (e->ev)
            st = Q7_CUDA_CHECK(cudaEventRecord(e->ev[2 * i], e->stream));
        if (!st)
            st = q7_cuda_node_exec(e, nd, xs, &e->views[i], &a, e->d_out, e->rows);
        if (!st && e->ev)
            st = Q7_CUDA_CHECK(cudaEventRecord(e->ev[2 * i + 1], e->stream));
        if (!st && e->hook && nd->op != Q7_OP_DETECT)
            st = call_hook(e, i);
        if (st)
            return q7_error_wrap(st, "%s (%s)", nd->name, q7_op_name(nd->op));
    }
    return Q7_OK;
}

static enum q7_status submit(struct q7_cuda_exec * e, const void * x, int is_u8, int64_t n,
                             int64_t h, int64_t w, float * out)
{
    if (!e || !e->g || !x || !out)
        return q7_error_set(Q7_ERR_ARG, "cuda executor: NULL argument");
    if (e->in_flight)
        return q7_error_set(Q7_ERR_ARG, "cuda executor: a batch is already in flight (wait)");
    enum q7_status st = q7_cuda_exec_enter(e);
    if (!st)
        st = plan(e, n, h, w);
    if (st)
        return st;
    struct q7_graph * g = e->g;
    const struct q7_cuda_view * in = &e->views[g->input];
    const size_t count = (size_t)(in->n * in->c * in->h * in->w);
    const size_t bytes = count * (is_u8 ? 1 : sizeof(float));
    memcpy(e->h_stage, x, bytes);
    st = Q7_CUDA_CHECK(cudaEventRecord(e->ev_run[0], e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(e->d_stage, e->h_stage, bytes, cudaMemcpyHostToDevice, e->stream));
    if (!st && is_u8) {
        st = q7_cuda_normalize_u8(e->stream, e->d_stage, in);
    } else if (!st) {
        struct q7_cuda_view src = *in;
        src.data = e->d_stage;
        src.dtype = Q7_DTYPE_F32;
        src.batch_stride = in->c * in->h * in->w;
        st = q7_cuda_copy(e->stream, &src, in);
    }
    if (!st && e->hook)
        st = call_hook(e, g->input);
    if (!st)
        st = Q7_CUDA_CHECK(cudaEventRecord(e->ev_run[2], e->stream));
    if (!st)
        st = run_nodes(e);
    if (!st)
        st = Q7_CUDA_CHECK(cudaEventRecord(e->ev_run[3], e->stream));
    const size_t out_bytes = (size_t)(n * e->rows * e->no) * sizeof(float);
    if (!st)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(e->h_out, e->d_out, out_bytes, cudaMemcpyDeviceToHost, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaEventRecord(e->ev_run[1], e->stream));
    if (st) {
        (void)cudaStreamSynchronize(e->stream); /* leave nothing queued behind an error */
        (void)cudaGetLastError();
        return st;
    }
    e->in_flight = 1;
    e->user_out = out;
    e->user_out_count = (size_t)(n * e->rows * e->no);
    return Q7_OK;
}

enum q7_status q7_cuda_exec_wait(struct q7_cuda_exec * e)
{
    if (!e || !e->in_flight)
        return Q7_OK;
    e->in_flight = 0;
    enum q7_status st = q7_cuda_exec_enter(e);
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (st)
        return st;
    memcpy(e->user_out, e->h_out, e->user_out_count * sizeof(float));
    float ms = 0.0f;
    if ((st = Q7_CUDA_CHECK(cudaEventElapsedTime(&ms, e->ev_run[0], e->ev_run[1]))))
        return st;
    e->last_ms = ms;
    if ((st = Q7_CUDA_CHECK(cudaEventElapsedTime(&ms, e->ev_run[2], e->ev_run[3]))))
        return st;
    e->last_net_ms = ms;
    if (e->ev)
        for (int i = 0; i < e->g->n_nodes; i++) {
            const struct q7_node * nd = e->g->nodes[i];
            e->seconds[i] = 0.0;
            if (!e->plan.live[i] || nd->op == Q7_OP_INPUT)
                continue;
            if ((st = Q7_CUDA_CHECK(cudaEventElapsedTime(&ms, e->ev[2 * i], e->ev[2 * i + 1]))))
                return st;
            e->seconds[i] = ms * 1e-3;
        }
    return Q7_OK;
}

enum q7_status q7_cuda_exec_submit_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n,
                                      int64_t h, int64_t w, float * out_host)
{
    return submit(e, x, 1, n, h, w, out_host);
}

enum q7_status q7_cuda_exec_run_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n, int64_t h,
                                   int64_t w, float * out_host)
{
    enum q7_status st = submit(e, x, 1, n, h, w, out_host);
    return st ? st : q7_cuda_exec_wait(e);
}

enum q7_status q7_cuda_exec_run(struct q7_cuda_exec * e, const float * x, int64_t n, int64_t h,
                                int64_t w, float * out_host)
{
    enum q7_status st = submit(e, x, 0, n, h, w, out_host);
    return st ? st : q7_cuda_exec_wait(e);
}

/* ---- device calibration helpers ---- */

enum q7_status q7_cuda_exec_abs_max(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                    float * amax, int * bad)
{
    unsigned int res[2] = {0, 0};
    enum q7_status st = q7_cuda_exec_enter(e);
    if (!st)
        st = q7_cuda_abs_max(e->stream, x, e->d_scratch);
    if (!st)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(res, e->d_scratch, sizeof res, cudaMemcpyDeviceToHost, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (st)
        return st;
    memcpy(amax, &res[0], sizeof *amax);
    if (bad)
        *bad = res[1] != 0;
    return Q7_OK;
}

/* max |x| of a non-empty device view; NaN or inf is Q7_ERR_ARG, as on the CPU. */
static enum q7_status finite_abs_max(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                     float * amax)
{
    int bad = 0;
    enum q7_status st = q7_cuda_exec_abs_max(e, x, amax, &bad);
    if (!st && bad)
        st = q7_error_set(Q7_ERR_ARG, "histogram: NaN or inf in the batch");
    return st;
}

/* The binning half of q7_cuda_exec_hist_collect, x's max |x| already known. */
static enum q7_status hist_collect_max(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                       struct q7_calib_hist * h, float amax)
{
    struct q7_hist_plan hp;
    enum q7_status st;
    if ((st = q7_calib_hist_plan(h, amax, &hp)))
        return st;
    size_t bytes = (size_t)hp.n_bins * sizeof(unsigned long long);
    if ((st = grow_device((void **)&e->d_counts, &e->counts_bytes, bytes, "histogram counts")))
        return st;
    int64_t * counts = malloc(bytes);
    if (!counts)
        return q7_error_set(Q7_ERR_OOM, "histogram: out of memory");
    st = Q7_CUDA_CHECK(cudaMemsetAsync(e->d_counts, 0, bytes, e->stream));
    if (!st)
        st = q7_cuda_hist_bin_abs(e->stream, x, hp.lo, hp.hi, hp.n_bins, e->d_counts);
    if (!st)
        st = Q7_CUDA_CHECK(
            cudaMemcpyAsync(counts, e->d_counts, bytes, cudaMemcpyDeviceToHost, e->stream));
    if (!st)
        st = Q7_CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (!st)
        st = q7_calib_hist_add(h, &hp, counts);
    free(counts);
    return st;
}

enum q7_status q7_cuda_exec_hist_collect(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                         struct q7_calib_hist * h)
{
    if (!e || !x || !h)
        return q7_error_set(Q7_ERR_ARG, "histogram collect: bad arguments");
    if (x->n * x->c * x->h * x->w == 0)
        return Q7_OK;
    float amax = 0.0f;
    enum q7_status st = finite_abs_max(e, x, &amax);
    return st ? st : hist_collect_max(e, x, h, amax);
}

enum q7_status q7_cuda_exec_qdq_collect(struct q7_cuda_exec * e, struct q7_qdq * qdq, int id,
                                        const struct q7_cuda_view * x)
{
    if (!e || !qdq || !x || id < 0 || id >= qdq->g->n_nodes)
        return q7_error_set(Q7_ERR_ARG, "device calibration: bad arguments");
    struct q7_quantizer * q = NULL;
    int i = q7_qdq_next_reader(qdq, id, id + 1, &q);
    if (i < 0 || x->n * x->c * x->h * x->w == 0)
        return Q7_OK;
    float amax = 0.0f; /* one max for every reader: their calibrators see the same tensor */
    enum q7_status st = finite_abs_max(e, x, &amax);
    for (; i >= 0 && !st; i = q7_qdq_next_reader(qdq, id, i + 1, &q)) {
        /* q7_quant_collect's order: the max calibrator (of the whole tensor, as
         * q7_qdq_collect_node feeds it), then the histogram */
        if (q->calib_max)
            st = q7_calib_max_collect(q->calib_max, &amax, 1, 1);
        if (!st && q->calib_hist)
            st = hist_collect_max(e, x, q->calib_hist, amax);
        if (st)
            st = q7_error_wrap(st, "%s", q->name);
    }
    return st;
}

/* ---- timings and memory ---- */

const double * q7_cuda_exec_node_seconds(const struct q7_cuda_exec * e)
{
    return e && e->ev ? e->seconds : NULL;
}

double q7_cuda_exec_last_ms(const struct q7_cuda_exec * e)
{
    return e ? e->last_ms : 0.0;
}

double q7_cuda_exec_last_net_ms(const struct q7_cuda_exec * e)
{
    return e ? e->last_net_ms : 0.0;
}

size_t q7_cuda_exec_arena_bytes(const struct q7_cuda_exec * e)
{
    return e ? e->arena_cap : 0;
}

size_t q7_cuda_exec_workspace_bytes(const struct q7_cuda_exec * e)
{
    return e ? e->ws_cap : 0;
}

size_t q7_cuda_exec_weight_bytes(const struct q7_cuda_exec * e)
{
    return e ? e->params_bytes : 0;
}

int q7_cuda_exec_node_live(const struct q7_cuda_exec * e, int id)
{
    return e && e->g && id >= 0 && id < e->g->n_nodes && e->plan.live[id];
}
