/* CPU emulation of the CUDA runtime and cuBLAS calls the q7 CUDA backend makes, for
 * tools/cuda-emulate.sh: "device" memory is host memory, streams and events are bookkeeping,
 * cublasGemmStridedBatchedEx is a column-major GEMM through OpenBLAS (FP16 inputs widened to
 * FP32 first). Linked instead of libcudart and libcublas; the kernels are compiled as C++ with
 * Q7_CUDA_EMULATE (kernels/cuda/emu/device.h). Never part of a real build.
 *
 * Q7_EMU_DEVICES=0 in the environment makes cudaGetDeviceCount report no device. */
#include "graph/base.h"

#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#define EMU_ALIGN 256

struct emu_event {
    double t;
};

static char emu_stream_obj;
static char emu_blas_obj;

static size_t round_up(size_t x)
{
    return (x + EMU_ALIGN - 1) / EMU_ALIGN * EMU_ALIGN;
}

cudaError_t cudaGetDeviceCount(int * count)
{
    const char * env = getenv("Q7_EMU_DEVICES");
    *count = env ? atoi(env) : 1;
    return *count > 0 ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp * prop, int device)
{
    if (device != 0)
        return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    strcpy(prop->name, "q7 CPU emulation");
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->totalGlobalMem = (size_t)8 << 30;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int * value, enum cudaDeviceAttr attr, int device)
{
    if (device != 0)
        return cudaErrorInvalidDevice;
    switch (attr) { /* the emulated device: one SM of an sm_90 at 1 GHz, 1 GHz x 64-bit bus */
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMultiProcessorCount: *value = 1; break;
    case cudaDevAttrClockRate: *value = 1000000; break;
    case cudaDevAttrMemoryClockRate: *value = 1000000; break;
    case cudaDevAttrGlobalMemoryBusWidth: *value = 64; break;
    default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaGetLastError(void)
{
    return cudaSuccess;
}

const char * cudaGetErrorName(cudaError_t error)
{
    return error == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated";
}

const char * cudaGetErrorString(cudaError_t error)
{
    return error == cudaSuccess ? "no error" : "emulated error";
}

cudaError_t cudaMalloc(void ** p, size_t size)
{
    *p = aligned_alloc(EMU_ALIGN, round_up(size ? size : 1));
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void * p)
{
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void ** p, size_t size)
{
    return cudaMalloc(p, size);
}

cudaError_t cudaFreeHost(void * p)
{
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void * dst, const void * src, size_t count, enum cudaMemcpyKind kind)
{
    if (count)
        memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void * dst, const void * src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    return cudaMemcpy(dst, src, count, kind);
}

cudaError_t cudaMemcpy2DAsync(void * dst, size_t dpitch, const void * src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream)
{
    if (width > dpitch || width > spitch)
        return cudaErrorInvalidPitchValue;
    for (size_t r = 0; r < height; r++)
        memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void * p, int value, size_t count, cudaStream_t stream)
{
    memset(p, value, count);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t * stream, unsigned int flags)
{
    *stream = (cudaStream_t)(void *)&emu_stream_obj;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t * event)
{
    struct emu_event * e = calloc(1, sizeof *e);
    *event = (cudaEvent_t)(void *)e;
    return e ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    free(event);
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    ((struct emu_event *)(void *)event)->t = q7_time_now();
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float * ms, cudaEvent_t start, cudaEvent_t end)
{
    *ms = (float)((((struct emu_event *)(void *)end)->t - ((struct emu_event *)(void *)start)->t) *
                  1e3);
    return cudaSuccess;
}

/* ---- cuBLAS ---- */

cublasStatus_t cublasCreate_v2(cublasHandle_t * handle)
{
    *handle = (cublasHandle_t)(void *)&emu_blas_obj;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream)
{
    return CUBLAS_STATUS_SUCCESS;
}

const char * cublasGetStatusName(cublasStatus_t status)
{
    return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_EMULATED";
}

const char * cublasGetStatusString(cublasStatus_t status)
{
    return status == CUBLAS_STATUS_SUCCESS ? "success" : "emulated error";
}

/* A cols x ld matrix of type t as FP32 (a copy for FP16, the data itself for FP32). */
static const float * as_f32(const void * p, cudaDataType t, size_t count, float ** tmp)
{
    *tmp = NULL;
    if (t == CUDA_R_32F)
        return p;
    *tmp = malloc(count * sizeof(float) + 1);
    if (*tmp)
        for (size_t i = 0; i < count; i++)
            (*tmp)[i] = q7_half_to_float(((const uint16_t *)p)[i]);
    return *tmp;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void * alpha, const void * A, cudaDataType Atype,
                                          int lda, long long int strideA, const void * B,
                                          cudaDataType Btype, int ldb, long long int strideB,
                                          const void * beta, void * C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo)
{
    /* what q7 uses, checked as strictly as cuBLAS would: C is FP32, or FP16 with FP16 inputs
     * (accumulated in FP32, rounded to FP16 once) */
    if (transa != CUBLAS_OP_N || transb != CUBLAS_OP_N ||
        (Ctype != CUDA_R_32F && !(Ctype == CUDA_R_16F && Atype == CUDA_R_16F)) ||
        computeType != CUBLAS_COMPUTE_32F || Atype != Btype ||
        (Atype != CUDA_R_32F && Atype != CUDA_R_16F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0 || batchCount < 0 || lda < (m > 1 ? m : 1) ||
        ldb < (k > 1 ? k : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    const size_t es = Atype == CUDA_R_16F ? 2 : 4;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    for (int i = 0; i < batchCount; i++) {
        const uint8_t * ai = (const uint8_t *)A + (size_t)(i * strideA) * es;
        const uint8_t * bi = (const uint8_t *)B + (size_t)(i * strideB) * es;
        const size_t c_count = (size_t)ldc * (size_t)(n - 1) + (size_t)m;
        float *ta, *tb, *tc = NULL;
        const float * fa = as_f32(ai, Atype, (size_t)lda * (size_t)(k - 1) + (size_t)m, &ta);
        const float * fb = as_f32(bi, Btype, (size_t)ldb * (size_t)(n - 1) + (size_t)k, &tb);
        float * ci;
        if (Ctype == CUDA_R_32F) {
            ci = (float *)C + (size_t)(i * strideC);
        } else { /* FP16 C: through an FP32 copy (its old values matter when beta != 0) */
            const uint16_t * c16 = (const uint16_t *)C + (size_t)(i * strideC);
            ci = (float *)as_f32(c16, Ctype, c_count, &tc);
        }
        if (!fa || !fb || !ci) {
            free(ta);
            free(tb);
            free(tc);
            return CUBLAS_STATUS_ALLOC_FAILED;
        }
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, k, a, fa, lda, fb, ldb, b, ci,
                    ldc);
        if (tc) {
            uint16_t * c16 = (uint16_t *)C + (size_t)(i * strideC);
            for (int col = 0; col < n; col++) /* only the m x n matrix: not the gaps of ldc */
                for (int row = 0; row < m; row++)
                    c16[(size_t)col * ldc + row] = q7_float_to_half(tc[(size_t)col * ldc + row]);
        }
        free(ta);
        free(tb);
        free(tc);
    }
    return CUBLAS_STATUS_SUCCESS;
}
