/* A tensor in device memory as the CUDA kernels see it: NCHW, FP32 or FP16 storage, element
 * (b, c, y, x) at data[b * batch_stride + (c * h + y) * w + x] (in elements of its dtype), so
 * that a view may be a channel slice of a larger buffer (concat written in place), exactly
 * like struct q7_view on the host. Plain C: the public API and the host-side planning use it
 * in builds without CUDA too. */
#ifndef Q7_CUDA_VIEW_H
#define Q7_CUDA_VIEW_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_cuda_view {
    void * data;         /* device pointer */
    enum q7_dtype dtype; /* Q7_DTYPE_F32 or Q7_DTYPE_F16 */
    int64_t n, c, h, w;
    int64_t batch_stride; /* elements between images; c*h*w for a whole tensor */
};

#ifdef __cplusplus
}
#endif
#endif
