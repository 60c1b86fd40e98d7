/* cv::resize for 8-bit interleaved images, bit for bit.
 *
 * Reproduces OpenCV 4.x (modules/imgproc/src/resize.cpp as built for x86-64: its SIMD and
 * scalar paths agree for these cases and IPP is not used for them; an ARM build may fuse the
 * float multiply-adds of the general INTER_AREA path and differ there by a level) for the
 * two interpolations yolov7's loader uses:
 *  - INTER_LINEAR: fixed-point separable bilinear. Coefficients are float weights scaled
 *    by 2048 and rounded (INTER_RESIZE_COEF_BITS = 11); the horizontal pass is exact in
 *    int; the vertical pass is OpenCV's 8-bit formula
 *    ((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2, identical in its SIMD
 *    and scalar paths. Downscaling by exactly 2 in both directions becomes INTER_AREA, as in
 *    OpenCV.
 *  - INTER_AREA: for integer scales the fast box average (2x2 rounds half up, (s + 2) >> 2;
 *    other integer scales multiply by 1/area in float and round half to even); otherwise the
 *    general area resampling with OpenCV's float weight tables (computeResizeAreaTab) and
 *    float accumulation in the same order, rounded half to even. When the image grows in
 *    some direction INTER_AREA is OpenCV's bilinear emulation.
 * A resize to the same size copies. */
#ifndef Q7_RESIZE_H
#define Q7_RESIZE_H

#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are OpenCV's cv::InterpolationFlags. */
enum q7_interp {
    Q7_INTERP_LINEAR = 1,
    Q7_INTERP_AREA = 3,
};

/* Largest side q7_resize_u8 accepts (OpenCV keeps sizes and offsets in int). */
#define Q7_RESIZE_MAX_SIDE ((int64_t)1 << 24)

/* Resizes src (src_h x src_w, cn interleaved channels, rows packed: stride src_w * cn) into
 * dst (dst_h x dst_w, same layout). cn is 1..4; sides 1..Q7_RESIZE_MAX_SIDE; src and dst
 * must not overlap. Q7_ERR_ARG on bad sizes, Q7_ERR_OOM when the small row buffers cannot be
 * allocated. */
enum q7_status q7_resize_u8(const uint8_t * src, int64_t src_h, int64_t src_w, int cn,
                            uint8_t * dst, int64_t dst_h, int64_t dst_w, enum q7_interp interp);

#ifdef __cplusplus
}
#endif
#endif
