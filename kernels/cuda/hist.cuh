/* Histogram calibration on the device: max |x| and the histogram of |x| that
 * quant/calib.h plans (q7_calib_hist_plan), binned by exactly q7_hist_bin_abs's rule in
 * float32, so that the counts equal the CPU's bit for bit on the same FP32 (or FP16) data:
 *
 *   bin = (int32)(((|x| - lo) * (float)n_bins) / (hi - lo)),  |x| == hi in the last bin,
 *   values outside [lo, hi] and NaN ignored.
 *
 * The flow (engine/exec_cuda.c q7_cuda_exec_hist_collect): q7_cuda_abs_max -> host
 * q7_calib_hist_plan -> q7_cuda_hist_bin_abs into zeroed counts -> host q7_calib_hist_add. */
#ifndef Q7_CUDA_HIST_CUH
#define Q7_CUDA_HIST_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bins up to this many use a per-block shared-memory histogram (32-bit counters, flushed to
 * the global 64-bit counts with one atomic per non-empty bin); more use global atomics. */
#define Q7_CUDA_HIST_SMEM_BINS 8192

/* result[0] = the bits of max |x| (a non-negative float; 0 for an empty view), result[1] =
 * 1 when any value is NaN or inf. result: 2 device uint32 that this call zeroes first. */
enum q7_status q7_cuda_abs_max(cudaStream_t s, const struct q7_cuda_view * x,
                               unsigned int * result);
/* Adds the bins of |x| into counts (n_bins device uint64, zeroed by the caller). lo, hi:
 * q7_hist_plan's outer edges; the span hi - lo is computed in float32 as on the host. */
enum q7_status q7_cuda_hist_bin_abs(cudaStream_t s, const struct q7_cuda_view * x, float lo,
                                    float hi, int64_t n_bins, unsigned long long * counts);

#ifdef __cplusplus
}
#endif
#endif
