/* The CUDA / cuBLAS error checker (see cuda_check.h). */
#include "kernels/cuda/cuda_check.h"

#include <string.h>

/* "kernels/cuda/conv2d.cu" rather than the build's "../kernels/cuda/conv2d.cu". */
static const char * short_path(const char * file)
{
    const char * k = strstr(file, "kernels/");
    const char * e = strstr(file, "engine/");
    if (k)
        return k;
    return e ? e : file;
}

enum q7_status q7_cuda_check(cudaError_t err, const char * what, const char * file, int line)
{
    if (err == cudaSuccess)
        return Q7_OK;
    (void)cudaGetLastError(); /* reset a non-sticky error so that later calls start clean */
    return q7_error_set(Q7_ERR_CUDA, "%s: %s: %s (%s:%d)", what, cudaGetErrorName(err),
                        cudaGetErrorString(err), short_path(file), line);
}

enum q7_status q7_cublas_check(cublasStatus_t st, const char * what, const char * file, int line)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return Q7_OK;
    return q7_error_set(Q7_ERR_CUDA, "%s: %s: %s (%s:%d)", what, cublasGetStatusName(st),
                        cublasGetStatusString(st), short_path(file), line);
}
