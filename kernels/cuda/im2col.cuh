/* im2col on the device, with the conv input's fake quantization applied as it is read.
 * For images n0 .. n0 + count - 1 of x and the slice of output pixels p0 .. p0 + ms - 1,
 * writes col[(i * K + k) * ms + p - p0] (i: image in the chunk, k = (ci * kh + ky) * kw + kx
 * over all in_ch input channels, p = oy * OW + ox over the OH x OW output pixels) =
 * fq(x[n0 + i][ci][iy][ix]), 0 where the window is off the image. The whole image is p0 = 0,
 * ms = OH * OW. in_scale = 127/amax, 0 = no fake quantization. col_dtype: F32 or F16.
 * tiled = 1: the shared-memory variant (each input element read from global memory once for
 * all kh x kw taps, bands of output rows per block) where a band fits in 32 KiB; the per-row
 * kernel otherwise and with tiled = 0. Both write the same values. */
#ifndef Q7_CUDA_IM2COL_CUH
#define Q7_CUDA_IM2COL_CUH

#include "kernels/cuda/cuda_view.h"

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status q7_cuda_im2col(cudaStream_t s, const struct q7_cuda_view * x, int64_t n0,
                              int64_t count, const struct q7_conv_params * p, int64_t oh,
                              int64_t ow, int64_t p0, int64_t ms, float in_scale, void * col,
                              enum q7_dtype col_dtype, int tiled);

#ifdef __cplusplus
}
#endif
#endif
