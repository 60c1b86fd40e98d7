/* The one checker every CUDA runtime and cuBLAS call goes through: a failure becomes
 * Q7_ERR_CUDA with a message naming the call, the file and line, and CUDA's own error name
 * and text. Each macro evaluates to an enum q7_status (it never returns by itself):
 *
 *     enum q7_status st = Q7_CUDA_CHECK(cudaMalloc(&p, bytes));
 *     if (st)
 *         goto fail;
 *
 * Kernel launches are checked with Q7_CUDA_LAUNCHED("name") right after the launch
 * (cudaGetLastError: bad launch configuration, no kernel image for this GPU, ...); errors
 * that happen while a kernel runs surface at the next synchronizing call, which is checked
 * the same way. */
#ifndef Q7_CUDA_CHECK_H
#define Q7_CUDA_CHECK_H

#include "graph/base.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Q7_OK for cudaSuccess; otherwise clears CUDA's last (non-sticky) error and returns
 * q7_error_set(Q7_ERR_CUDA, "<what>: <cudaErrorName>: <text> (<file>:<line>)"). */
enum q7_status q7_cuda_check(cudaError_t err, const char * what, const char * file, int line);
/* The same for cuBLAS statuses. */
enum q7_status q7_cublas_check(cublasStatus_t st, const char * what, const char * file, int line);

#define Q7_CUDA_CHECK(expr) q7_cuda_check((expr), #expr, __FILE__, __LINE__)
#define Q7_CUBLAS_CHECK(expr) q7_cublas_check((expr), #expr, __FILE__, __LINE__)
#define Q7_CUDA_LAUNCHED(name) q7_cuda_check(cudaGetLastError(), "launch " name, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif
#endif
