/* cv::resize for 8-bit images (INTER_LINEAR, INTER_AREA), following the structure of
 * OpenCV 4.x hal::resize so that every rounding step happens where OpenCV's does.
 *
 * Floating point: each product is its own statement, so that no compiler fuses a multiply
 * and an add into an FMA (OpenCV's x86-64 baseline build has no FMA). */
#include "eval/resize.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    COEF_BITS = 11,            /* INTER_RESIZE_COEF_BITS */
    COEF_SCALE = 1 << COEF_BITS /* INTER_RESIZE_COEF_SCALE */
};

/* Round to nearest, ties to even, for |v| < 2^22 (cvRound). Adding and subtracting
 * 1.5 * 2^23 leaves the rounded value when float arithmetic is evaluated in float; lrintf
 * is a library call on most builds. */
static inline float round_even(float v)
{
#if FLT_EVAL_METHOD == 0
    const float magic = 12582912.0f;
    return (v + magic) - magic;
#else
    return (float)lrintf(v);
#endif
}

/* OpenCV saturate_cast<uchar>(float): cvRound (half to even) then clamp. */
static inline uint8_t sat_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)round_even(v);
}

/* OpenCV saturate_cast<short>(float). */
static inline int16_t sat_s16(float v)
{
    if (v >= 32767.0f)
        return 32767;
    if (v <= -32768.0f)
        return -32768;
    return (int16_t)round_even(v);
}

/* OpenCV saturate_cast<int>(double): cvRound, half to even. */
static inline int round_int(double v)
{
    if (v >= (double)INT32_MAX)
        return INT32_MAX;
    if (v <= (double)INT32_MIN)
        return INT32_MIN;
    return (int)lrint(v);
}

/* ---- INTER_AREA, integer scale (resizeAreaFast_) ----------------------------------------- */

static enum q7_status resize_area_fast(const uint8_t * src, int sh, int sw, int cn,
                                       uint8_t * dst, int dh, int dw, int isx, int isy)
{
    int area = isx * isy;
    float scale = 1.f / (float)area;
    int srcstep = sw * cn;
    int dwidth = dw * cn, swidth = sw * cn;
    int dwidth1 = (sw / isx) * cn;
    int * ofs = malloc(sizeof(int) * (size_t)(area + dwidth));
    if (!ofs)
        return q7_error_set(Q7_ERR_OOM, "resize: out of memory");
    int * xofs = ofs + area;
    for (int sy = 0, k = 0; sy < isy; sy++)
        for (int sx = 0; sx < isx; sx++)
            ofs[k++] = sy * srcstep + sx * cn;
    for (int dx = 0; dx < dw; dx++)
        for (int k = 0; k < cn; k++)
            xofs[dx * cn + k] = isx * dx * cn + k;
    /* OpenCV's ResizeAreaFastVec: the 2x2 case (1, 3 or 4 channels) sums four pixels and
     * rounds half up, in its SIMD and scalar paths alike. */
    int fast2 = isx == 2 && isy == 2 && (cn == 1 || cn == 3 || cn == 4);

    for (int dy = 0; dy < dh; dy++) {
        uint8_t * D = dst + (size_t)dy * dwidth;
        int sy0 = dy * isy;
        int w = sy0 + isy <= sh ? dwidth1 : 0;
        if (sy0 >= sh) {
            memset(D, 0, (size_t)dwidth);
            continue;
        }
        const uint8_t * S = src + (size_t)sy0 * srcstep;
        int dx = 0;
        if (fast2) {
            const uint8_t * S1 = S + srcstep;
            for (int px = 0; px < w / cn; px++) {
                const uint8_t * a = S + px * 2 * cn, * b = S1 + px * 2 * cn;
                for (int c = 0; c < cn; c++)
                    D[px * cn + c] = (uint8_t)((a[c] + a[c + cn] + b[c] + b[c + cn] + 2) >> 2);
            }
            dx = w;
        }
        for (; dx < w; dx++) {
            const uint8_t * s = S + xofs[dx];
            int64_t sum = 0;
            for (int k = 0; k < area; k++)
                sum += s[ofs[k]];
            float v = (float)sum * scale;
            D[dx] = sat_u8(v);
        }
        /* Columns (or the last rows) whose box leaves the image: average what is there. */
        for (; dx < dwidth; dx++) {
            int64_t sum = 0;
            int count = 0, sx0 = xofs[dx];
            for (int sy = 0; sy < isy && sy0 + sy < sh; sy++) {
                const uint8_t * s = src + (size_t)(sy0 + sy) * srcstep + sx0;
                for (int sx = 0; sx < isx * cn && sx0 + sx < swidth; sx += cn) {
                    sum += s[sx];
                    count++;
                }
            }
            D[dx] = count ? sat_u8((float)sum / (float)count) : 0;
        }
    }
    free(ofs);
    return Q7_OK;
}

/* ---- INTER_AREA, general scale (resizeArea_ with computeResizeAreaTab) ------------------- */

struct decimate_alpha {
    int si, di;
    float alpha;
};

static int area_tab(int ssize, int dsize, int cn, double scale, struct decimate_alpha * tab)
{
    int k = 0;
    for (int dx = 0; dx < dsize; dx++) {
        double fsx1 = dx * scale;
        double fsx2 = fsx1 + scale;
        double cell = fmin(scale, ssize - fsx1);
        int sx1 = (int)ceil(fsx1), sx2 = (int)floor(fsx2);
        if (sx2 > ssize - 1)
            sx2 = ssize - 1;
        if (sx1 > sx2)
            sx1 = sx2;
        if (sx1 - fsx1 > 1e-3) {
            tab[k].di = dx * cn;
            tab[k].si = (sx1 - 1) * cn;
            tab[k++].alpha = (float)((sx1 - fsx1) / cell);
        }
        for (int sx = sx1; sx < sx2; sx++) {
            tab[k].di = dx * cn;
            tab[k].si = sx * cn;
            tab[k++].alpha = (float)(1.0 / cell);
        }
        if (fsx2 - sx2 > 1e-3) {
            tab[k].di = dx * cn;
            tab[k].si = sx2 * cn;
            tab[k++].alpha = (float)(fmin(fmin(fsx2 - sx2, 1.), cell) / cell);
        }
    }
    return k;
}

static void store_row(const float * sum, int n, uint8_t * D)
{
    for (int i = 0; i < n; i++)
        D[i] = sat_u8(sum[i]);
}

/* One source row resampled horizontally: OpenCV adds the weighted pixels of each output
 * column into buf in table order, starting from 0. The entries of one column are
 * consecutive ([xbeg[dx], xbeg[dx + 1])), so a register accumulator gives the same sums. */
static void area_hrow(const uint8_t * S, int cn, int dw, const struct decimate_alpha * xtab,
                      const int * xbeg, float * buf)
{
    if (cn == 3) { /* the common case: three independent sums per column */
        for (int dx = 0; dx < dw; dx++) {
            float a0 = 0.f, a1 = 0.f, a2 = 0.f;
            for (int k = xbeg[dx]; k < xbeg[dx + 1]; k++) {
                const uint8_t * px = S + xtab[k].si;
                float al = xtab[k].alpha;
                float p0 = (float)px[0] * al, p1 = (float)px[1] * al, p2 = (float)px[2] * al;
                a0 = a0 + p0;
                a1 = a1 + p1;
                a2 = a2 + p2;
            }
            buf[dx * 3] = a0;
            buf[dx * 3 + 1] = a1;
            buf[dx * 3 + 2] = a2;
        }
        return;
    }
    for (int dx = 0; dx < dw; dx++)
        for (int c = 0; c < cn; c++) {
            float acc = 0.f;
            for (int k = xbeg[dx]; k < xbeg[dx + 1]; k++) {
                float p = (float)S[xtab[k].si + c] * xtab[k].alpha;
                acc = acc + p;
            }
            buf[dx * cn + c] = acc;
        }
}

static enum q7_status resize_area(const uint8_t * src, int sh, int sw, int cn, uint8_t * dst,
                                  int dh, int dw, double scale_x, double scale_y)
{
    int dwidth = dw * cn;
    /* Each source column (row) gives at most two entries: OpenCV sizes the table 2 * src. */
    struct decimate_alpha * xtab = malloc(sizeof *xtab * (size_t)(2 * (sw + sh)));
    float * buf = malloc(sizeof(float) * (size_t)dwidth * 2);
    int * xbeg = malloc(sizeof(int) * (size_t)(dw + 1));
    if (!xtab || !buf || !xbeg) {
        free(xtab);
        free(buf);
        free(xbeg);
        return q7_error_set(Q7_ERR_OOM, "resize: out of memory");
    }
    struct decimate_alpha * ytab = xtab + 2 * sw;
    float * sum = buf + dwidth;
    int nx = area_tab(sw, dw, cn, scale_x, xtab);
    int ny = area_tab(sh, dh, 1, scale_y, ytab);
    for (int dx = 0, k = 0; dx <= dw; dx++) {
        while (k < nx && xtab[k].di < dx * cn)
            k++;
        xbeg[dx] = k;
    }

    for (int i = 0; i < dwidth; i++)
        sum[i] = 0.f;
    int prev_dy = ny > 0 ? ytab[0].di : 0, buf_row = -1;
    for (int j = 0; j < ny; j++) {
        float beta = ytab[j].alpha;
        int dy = ytab[j].di;
        if (ytab[j].si != buf_row) { /* a row shared by two output rows is resampled once */
            buf_row = ytab[j].si;
            area_hrow(src + (size_t)buf_row * sw * cn, cn, dw, xtab, xbeg, buf);
        }
        if (dy != prev_dy) {
            store_row(sum, dwidth, dst + (size_t)prev_dy * dwidth);
            for (int i = 0; i < dwidth; i++)
                sum[i] = beta * buf[i];
            prev_dy = dy;
        } else {
            for (int i = 0; i < dwidth; i++) {
                float p = beta * buf[i];
                sum[i] = sum[i] + p;
            }
        }
    }
    store_row(sum, dwidth, dst + (size_t)prev_dy * dwidth);
    free(xtab);
    free(buf);
    free(xbeg);
    return Q7_OK;
}

/* ---- INTER_LINEAR (and INTER_AREA when enlarging): resizeGeneric_ ------------------------ */

/* Source position and weight of output coordinate d, as hal::resize computes them. */
static void linear_coord(int d, double scale, double inv_scale, int area_mode, int * s_out,
                         float * f_out)
{
    int s;
    float f;
    if (!area_mode) {
        f = (float)((d + 0.5) * scale - 0.5);
        s = (int)floorf(f);
        f -= (float)s;
    } else {
        s = (int)floor(d * scale);
        f = (float)((d + 1) - (s + 1) * inv_scale);
        f = f <= 0 ? 0.f : f - floorf(f);
    }
    *s_out = s;
    *f_out = f;
}

static inline int clip_row(int y, int h)
{
    return y >= 0 ? (y < h ? y : h - 1) : 0;
}

static void hresize_row(const uint8_t * S, int * D, int dwidth, int cn, const int * xofs,
                        const int16_t * alpha, int xmax)
{
    int dx = 0;
    for (; dx < xmax; dx++) {
        int sx = xofs[dx];
        D[dx] = S[sx] * alpha[dx * 2] + S[sx + cn] * alpha[dx * 2 + 1];
    }
    for (; dx < dwidth; dx++)
        D[dx] = S[xofs[dx]] * COEF_SCALE;
}

static enum q7_status resize_linear(const uint8_t * src, int sh, int sw, int cn, uint8_t * dst,
                                    int dh, int dw, double scale_x, double scale_y,
                                    double inv_scale_x, double inv_scale_y, int area_mode)
{
    int dwidth = dw * cn;
    size_t bytes = sizeof(int) * (size_t)dwidth           /* xofs */
                   + sizeof(int16_t) * (size_t)dwidth * 2  /* alpha */
                   + sizeof(int) * (size_t)dh              /* yofs */
                   + sizeof(int16_t) * (size_t)dh * 2      /* beta */
                   + sizeof(int) * (size_t)dwidth * 2;     /* two horizontal rows */
    void * mem = malloc(bytes);
    if (!mem)
        return q7_error_set(Q7_ERR_OOM, "resize: out of memory");
    int * xofs = mem;
    int * yofs = xofs + dwidth;
    int * rows = yofs + dh;
    int16_t * alpha = (int16_t *)(rows + 2 * dwidth);
    int16_t * beta = alpha + (size_t)dwidth * 2;

    int xmax = dw;
    for (int dx = 0; dx < dw; dx++) {
        int sx;
        float fx;
        linear_coord(dx, scale_x, inv_scale_x, area_mode, &sx, &fx);
        if (sx < 0)
            fx = 0, sx = 0;
        if (sx + 1 >= sw) {
            if (dx < xmax)
                xmax = dx;
            if (sx >= sw - 1)
                fx = 0, sx = sw - 1;
        }
        int16_t a0 = sat_s16((1.f - fx) * COEF_SCALE), a1 = sat_s16(fx * COEF_SCALE);
        for (int k = 0; k < cn; k++) {
            xofs[dx * cn + k] = sx * cn + k;
            alpha[(dx * cn + k) * 2] = a0;
            alpha[(dx * cn + k) * 2 + 1] = a1;
        }
    }
    for (int dy = 0; dy < dh; dy++) {
        int sy;
        float fy;
        linear_coord(dy, scale_y, inv_scale_y, area_mode, &sy, &fy);
        yofs[dy] = sy;
        beta[dy * 2] = sat_s16((1.f - fy) * COEF_SCALE);
        beta[dy * 2 + 1] = sat_s16(fy * COEF_SCALE);
    }

    int * R0 = rows, * R1 = rows + dwidth;
    int have0 = -1, have1 = -1; /* source rows currently in R0 and R1 */
    for (int dy = 0; dy < dh; dy++) {
        int y0 = clip_row(yofs[dy], sh), y1 = clip_row(yofs[dy] + 1, sh);
        if (y0 != have0) {
            if (y0 == have1) {
                int * t = R0;
                R0 = R1;
                R1 = t;
                have1 = have0;
            } else {
                hresize_row(src + (size_t)y0 * sw * cn, R0, dwidth, cn, xofs, alpha, xmax * cn);
            }
            have0 = y0;
        }
        if (y1 != have1) {
            hresize_row(src + (size_t)y1 * sw * cn, R1, dwidth, cn, xofs, alpha, xmax * cn);
            have1 = y1;
        }
        int b0 = beta[dy * 2], b1 = beta[dy * 2 + 1];
        uint8_t * D = dst + (size_t)dy * dwidth;
        for (int x = 0; x < dwidth; x++)
            D[x] = (uint8_t)((((b0 * (R0[x] >> 4)) >> 16) + ((b1 * (R1[x] >> 4)) >> 16) + 2) >> 2);
    }
    free(mem);
    return Q7_OK;
}

/* ---- dispatch (hal::resize) -------------------------------------------------------------- */

enum q7_status q7_resize_u8(const uint8_t * src, int64_t src_h, int64_t src_w, int cn,
                            uint8_t * dst, int64_t dst_h, int64_t dst_w, enum q7_interp interp)
{
    if (!src || !dst || cn < 1 || cn > 4)
        return q7_error_set(Q7_ERR_ARG, "resize: bad arguments (cn %d)", cn);
    if (src_h < 1 || src_w < 1 || dst_h < 1 || dst_w < 1 || src_h > Q7_RESIZE_MAX_SIDE ||
        src_w > Q7_RESIZE_MAX_SIDE || dst_h > Q7_RESIZE_MAX_SIDE || dst_w > Q7_RESIZE_MAX_SIDE)
        return q7_error_set(Q7_ERR_ARG, "resize: cannot resize %lldx%lld to %lldx%lld",
                            (long long)src_w, (long long)src_h, (long long)dst_w,
                            (long long)dst_h);
    if (interp != Q7_INTERP_LINEAR && interp != Q7_INTERP_AREA)
        return q7_error_set(Q7_ERR_ARG, "resize: unknown interpolation %d", (int)interp);
    /* OpenCV indexes with int: keep every element offset inside int. */
    if (src_h * src_w * cn > INT32_MAX || dst_h * dst_w * cn > INT32_MAX)
        return q7_error_set(Q7_ERR_ARG, "resize: %lldx%lld to %lldx%lld is too large",
                            (long long)src_w, (long long)src_h, (long long)dst_w,
                            (long long)dst_h);
    int sh = (int)src_h, sw = (int)src_w, dh = (int)dst_h, dw = (int)dst_w;
    if (sh == dh && sw == dw) {
        memcpy(dst, src, (size_t)sh * sw * cn);
        return Q7_OK;
    }
    double inv_scale_x = (double)dw / sw, inv_scale_y = (double)dh / sh;
    double scale_x = 1. / inv_scale_x, scale_y = 1. / inv_scale_y;
    int iscale_x = round_int(scale_x), iscale_y = round_int(scale_y);
    int is_area_fast = fabs(scale_x - iscale_x) < DBL_EPSILON &&
                       fabs(scale_y - iscale_y) < DBL_EPSILON;
    /* OpenCV: a linear downscale by exactly 2 is the (fast) area average. */
    if (interp == Q7_INTERP_LINEAR && is_area_fast && iscale_x == 2 && iscale_y == 2)
        interp = Q7_INTERP_AREA;
    if (interp == Q7_INTERP_AREA && scale_x >= 1 && scale_y >= 1) {
        if (is_area_fast)
            return resize_area_fast(src, sh, sw, cn, dst, dh, dw, iscale_x, iscale_y);
        return resize_area(src, sh, sw, cn, dst, dh, dw, scale_x, scale_y);
    }
    return resize_linear(src, sh, sw, cn, dst, dh, dw, scale_x, scale_y, inv_scale_x,
                         inv_scale_y, interp == Q7_INTERP_AREA);
}
