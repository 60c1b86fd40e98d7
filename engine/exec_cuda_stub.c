/* The CUDA executor's API in builds without CUDA (no nvcc): every function fails with
 * Q7_ERR_UNSUPPORTED so that tools and tests link and can say why. */
#include "engine/exec_cuda.h"

#define NO_CUDA "q7 was built without CUDA"

struct q7_cuda_params q7_cuda_params_default(void)
{
    struct q7_cuda_params p = {
        .fp16 = 0, .device = 0, .profile = 0, .conv_workspace = 0, .im2col_tiled = 0};
    return p;
}

enum q7_status q7_cuda_available(int * n_devices, char * name, size_t size)
{
    if (n_devices)
        *n_devices = 0;
    if (name && size)
        name[0] = '\0';
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_device_peaks(int device, struct q7_cuda_peaks * out)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_create(struct q7_graph * g, const struct q7_cuda_params * p,
                                   struct q7_cuda_exec ** out)
{
    *out = NULL;
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

void q7_cuda_exec_free(struct q7_cuda_exec * e)
{
}

enum q7_status q7_cuda_exec_output_rows(struct q7_cuda_exec * e, int64_t n, int64_t h, int64_t w,
                                        int64_t * rows, int64_t * no)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_run_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n, int64_t h,
                                   int64_t w, float * out_host)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_run(struct q7_cuda_exec * e, const float * x, int64_t n, int64_t h,
                                int64_t w, float * out_host)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_submit_u8(struct q7_cuda_exec * e, const uint8_t * x, int64_t n,
                                      int64_t h, int64_t w, float * out_host)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_wait(struct q7_cuda_exec * e)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_set_conv_quant(struct q7_cuda_exec * e, int node_id, float in_scale,
                                           const float * weight_amax)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_refresh_quant(struct q7_cuda_exec * e)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

void q7_cuda_exec_set_hook(struct q7_cuda_exec * e, q7_cuda_hook hook, void * user, int want_host)
{
}

enum q7_status q7_cuda_exec_abs_max(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                    float * amax, int * bad)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_hist_collect(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                         struct q7_calib_hist * h)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_read(struct q7_cuda_exec * e, const struct q7_cuda_view * x,
                                 float * host)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_qdq_collect(struct q7_cuda_exec * e, struct q7_qdq * qdq, int id,
                                        const struct q7_cuda_view * x)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

const double * q7_cuda_exec_node_seconds(const struct q7_cuda_exec * e)
{
    return NULL;
}

double q7_cuda_exec_last_ms(const struct q7_cuda_exec * e)
{
    return 0.0;
}

double q7_cuda_exec_last_net_ms(const struct q7_cuda_exec * e)
{
    return 0.0;
}

size_t q7_cuda_exec_arena_bytes(const struct q7_cuda_exec * e)
{
    return 0;
}

size_t q7_cuda_exec_workspace_bytes(const struct q7_cuda_exec * e)
{
    return 0;
}

size_t q7_cuda_exec_weight_bytes(const struct q7_cuda_exec * e)
{
    return 0;
}

int q7_cuda_exec_node_live(const struct q7_cuda_exec * e, int id)
{
    return 0;
}

enum q7_status q7_cuda_exec_node_run(struct q7_cuda_exec * e, const struct q7_node * nd,
                                     const struct q7_view * const * xs, const struct q7_view * y,
                                     const struct q7_conv_extra * extra, float * detect_out,
                                     int64_t rows)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}

enum q7_status q7_cuda_exec_hist_collect_host(struct q7_cuda_exec * e, const struct q7_view * v,
                                              struct q7_calib_hist * h)
{
    return q7_error_set(Q7_ERR_UNSUPPORTED, NO_CUDA);
}
