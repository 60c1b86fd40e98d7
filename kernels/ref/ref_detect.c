/* Reference Detect / IDetect decode (yolov7 models/yolo.py, eval branch), in FP32:
 *
 *   s  = sigmoid(v) = 1 / (1 + exp(-v))             every value
 *   xy = (s * 2 - 0.5 + grid) * stride[level]       grid = (x, y) of the cell
 *   wh = (s * 2)^2 * anchor_grid[level][anchor]     (w, h) in pixels; ^2 as s2 * s2
 *   other fields: s
 *
 * Level l's input holds field k of anchor a in channel a*no + k. Output rows are ordered
 * level, anchor, y, x (x[i].view(bs, na, no, ny, nx).permute(0, 1, 3, 4, 2)); out is
 * (N, rows, no) contiguous. Rows beyond `rows` are never written. */
#include "kernels/kernels.h"
#include "kernels/ref/ref_impl.h"

void q7_ref_detect(const struct q7_view * const * xs, const struct q7_detect_params * p,
                   float * out, int64_t rows)
{
    const int64_t no = p->no;
    for (int64_t n = 0; n < xs[0]->n; n++) {
        int64_t row = 0;
        for (int l = 0; l < p->nl; l++) {
            const struct q7_view * x = xs[l];
            for (int64_t a = 0; a < p->na; a++)
                for (int64_t gy = 0; gy < x->h; gy++)
                    for (int64_t gx = 0; gx < x->w; gx++, row++) {
                        if (row >= rows)
                            continue;
                        float * o = out + (n * rows + row) * no;
                        for (int64_t k = 0; k < no; k++) {
                            const float s = q7_ref_sigmoid(*q7_ref_at(x, n, a * no + k, gy, gx));
                            float v = s;
                            if (k == 0 || k == 1) {
                                const float grid = (float)(k == 0 ? gx : gy);
                                v = (s * 2.0f - 0.5f + grid) * p->stride[l];
                            } else if (k == 2 || k == 3) {
                                const float s2 = s * 2.0f;
                                v = s2 * s2 * p->anchor_grid[l][a][k - 2];
                            }
                            o[k] = v;
                        }
                    }
        }
    }
}
