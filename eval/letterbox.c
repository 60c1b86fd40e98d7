/* yolov7's load_image + letterbox geometry and the rect batch plan (see letterbox.h). */
#include "eval/letterbox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- load_image + letterbox -------------------------------------------------------------- */

enum q7_status q7_letterbox_geometry(int64_t h0, int64_t w0, int img_size, int64_t out_h,
                                     int64_t out_w, struct q7_letterbox_geom * g)
{
    memset(g, 0, sizeof *g);
    if (h0 < 1 || w0 < 1 || img_size < 1 || out_h < 1 || out_w < 1)
        return q7_error_set(Q7_ERR_ARG, "letterbox: bad sizes (image %lldx%lld, img_size %d, "
                            "shape %lldx%lld)", (long long)w0, (long long)h0, img_size,
                            (long long)out_w, (long long)out_h);
    g->h0 = h0;
    g->w0 = w0;
    g->out_h = out_h;
    g->out_w = out_w;

    /* load_image */
    double r = (double)img_size / (double)(h0 > w0 ? h0 : w0);
    g->h = h0;
    g->w = w0;
    if (r != 1.0) {
        g->load_resize = 1;
        g->load_interp = r < 1.0 ? Q7_INTERP_AREA : Q7_INTERP_LINEAR;
        g->w = (int64_t)((double)w0 * r); /* int() truncates */
        g->h = (int64_t)((double)h0 * r);
    }
    if (g->h < 1 || g->w < 1)
        return q7_error_set(Q7_ERR_ARG, "letterbox: a %lldx%lld image becomes %lldx%lld at "
                            "img_size %d", (long long)w0, (long long)h0, (long long)g->w,
                            (long long)g->h, img_size);
    g->ratio[0] = (double)g->h / (double)h0;
    g->ratio[1] = (double)g->w / (double)w0;

    /* letterbox(img, (out_h, out_w), auto=False, scaleup=False) */
    double r2 = fmin((double)out_h / (double)g->h, (double)out_w / (double)g->w);
    r2 = fmin(r2, 1.0);
    g->unpad_w = (int64_t)rint((double)g->w * r2); /* Python round: half to even */
    g->unpad_h = (int64_t)rint((double)g->h * r2);
    if (g->unpad_w < 1 || g->unpad_h < 1 || g->unpad_w > out_w || g->unpad_h > out_h)
        return q7_error_set(Q7_ERR_ARG, "letterbox: a %lldx%lld image does not fit %lldx%lld",
                            (long long)g->w, (long long)g->h, (long long)out_w,
                            (long long)out_h);
    double dw = (double)(out_w - g->unpad_w) / 2.0, dh = (double)(out_h - g->unpad_h) / 2.0;
    g->pad[0] = dw;
    g->pad[1] = dh;
    g->top = (int64_t)rint(dh - 0.1);
    g->bottom = (int64_t)rint(dh + 0.1);
    g->left = (int64_t)rint(dw - 0.1);
    g->right = (int64_t)rint(dw + 0.1);
    if (g->top + g->unpad_h + g->bottom != out_h || g->left + g->unpad_w + g->right != out_w)
        return q7_error_set(Q7_ERR_INTERNAL, "letterbox: borders do not add up");
    return Q7_OK;
}

/* Writes the unpadded HWC RGB image into the CHW output with the 114 border. */
static void place_chw(const uint8_t * img, const struct q7_letterbox_geom * g, uint8_t * chw)
{
    size_t plane = (size_t)(g->out_h * g->out_w);
    for (int c = 0; c < 3; c++) {
        uint8_t * P = chw + c * plane;
        for (int64_t y = 0; y < g->out_h; y++) {
            uint8_t * row = P + (size_t)(y * g->out_w);
            int64_t sy = y - g->top;
            if (sy < 0 || sy >= g->unpad_h) {
                memset(row, Q7_LETTERBOX_FILL, (size_t)g->out_w);
                continue;
            }
            memset(row, Q7_LETTERBOX_FILL, (size_t)g->left);
            const uint8_t * s = img + (size_t)(sy * g->unpad_w * 3) + c;
            uint8_t * d = row + g->left;
            for (int64_t x = 0; x < g->unpad_w; x++)
                d[x] = s[x * 3];
            memset(d + g->unpad_w, Q7_LETTERBOX_FILL, (size_t)g->right);
        }
    }
}

enum q7_status q7_letterbox_image(const uint8_t * rgb, int64_t h0, int64_t w0, int img_size,
                                  int64_t out_h, int64_t out_w, uint8_t * chw,
                                  struct q7_letterbox_geom * g_out)
{
    struct q7_letterbox_geom g;
    enum q7_status st = q7_letterbox_geometry(h0, w0, img_size, out_h, out_w, &g);
    if (g_out)
        *g_out = g;
    if (st != Q7_OK)
        return st;
    if (!rgb || !chw)
        return q7_error_set(Q7_ERR_ARG, "letterbox: NULL image");

    uint8_t * loaded = NULL, * boxed = NULL;
    const uint8_t * cur = rgb;
    if (g.h != h0 || g.w != w0) {
        loaded = malloc((size_t)(g.h * g.w * 3));
        if (!loaded)
            return q7_error_set(Q7_ERR_OOM, "letterbox: out of memory");
        st = q7_resize_u8(rgb, h0, w0, 3, loaded, g.h, g.w, g.load_interp);
        if (st != Q7_OK)
            goto out;
        cur = loaded;
    }
    if (g.unpad_h != g.h || g.unpad_w != g.w) {
        boxed = malloc((size_t)(g.unpad_h * g.unpad_w * 3));
        if (!boxed) {
            st = q7_error_set(Q7_ERR_OOM, "letterbox: out of memory");
            goto out;
        }
        st = q7_resize_u8(cur, g.h, g.w, 3, boxed, g.unpad_h, g.unpad_w, Q7_INTERP_LINEAR);
        if (st != Q7_OK)
            goto out;
        cur = boxed;
    }
    place_chw(cur, &g, chw);
out:
    free(loaded);
    free(boxed);
    return st;
}

/* ---- numpy argsort (npysort/quicksort.cpp: aquicksort_ with aheapsort_ fallback) ---------- */

enum { NPY_SMALL_QUICKSORT = 15, NPY_QS_STACK = 128 };

/* numpy's DOUBLE_LT: NaN sorts after everything. */
static inline int npy_less(double a, double b)
{
    return a < b || (b != b && a == a);
}

static void aheapsort(const double * v, int * tosort, int n)
{
    int * a = tosort - 1; /* 1-based heap indexing, as numpy */
    int i, j, l, tmp;
    for (l = n >> 1; l > 0; --l) {
        tmp = a[l];
        for (i = l, j = l << 1; j <= n;) {
            if (j < n && npy_less(v[a[j]], v[a[j + 1]]))
                j += 1;
            if (npy_less(v[tmp], v[a[j]])) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
    for (; n > 1;) {
        tmp = a[n];
        a[n] = a[1];
        n -= 1;
        for (i = 1, j = 2; j <= n;) {
            if (j < n && npy_less(v[a[j]], v[a[j + 1]]))
                j++;
            if (npy_less(v[tmp], v[a[j]])) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
}

#define ISWAP(a, b)                                                                               \
    do {                                                                                          \
        int t_ = (a);                                                                             \
        (a) = (b);                                                                                \
        (b) = t_;                                                                                 \
    } while (0)

void q7_argsort_numpy(const double * v, int n, int * tosort)
{
    for (int i = 0; i < n; i++)
        tosort[i] = i;
    if (n < 2)
        return;
    int * pl = tosort;
    int * pr = tosort + n - 1;
    int * stack[NPY_QS_STACK];
    int ** sptr = stack;
    int depth[NPY_QS_STACK];
    int * psdepth = depth;
    int cdepth = 0;
    for (unsigned u = (unsigned)n; u >>= 1;)
        cdepth++;
    cdepth *= 2;

    for (;;) {
        if (cdepth < 0) {
            aheapsort(v, pl, (int)(pr - pl + 1));
            goto stack_pop;
        }
        while ((pr - pl) > NPY_SMALL_QUICKSORT) {
            int * pm = pl + ((pr - pl) >> 1);
            if (npy_less(v[*pm], v[*pl]))
                ISWAP(*pm, *pl);
            if (npy_less(v[*pr], v[*pm]))
                ISWAP(*pr, *pm);
            if (npy_less(v[*pm], v[*pl]))
                ISWAP(*pm, *pl);
            double vp = v[*pm];
            int * pi = pl;
            int * pj = pr - 1;
            ISWAP(*pm, *pj);
            for (;;) {
                do
                    ++pi;
                while (npy_less(v[*pi], vp));
                do
                    --pj;
                while (npy_less(vp, v[*pj]));
                if (pi >= pj)
                    break;
                ISWAP(*pi, *pj);
            }
            int * pk = pr - 1;
            ISWAP(*pi, *pk);
            /* push the larger partition */
            if (pi - pl < pr - pi) {
                *sptr++ = pi + 1;
                *sptr++ = pr;
                pr = pi - 1;
            } else {
                *sptr++ = pl;
                *sptr++ = pi - 1;
                pl = pi + 1;
            }
            *psdepth++ = --cdepth;
        }
        /* insertion sort */
        for (int * pi = pl + 1; pi <= pr; ++pi) {
            int vi = *pi;
            double vp = v[vi];
            int * pj = pi;
            int * pk = pi - 1;
            while (pj > pl && npy_less(vp, v[*pk]))
                *pj-- = *pk--;
            *pj = vi;
        }
    stack_pop:
        if (sptr == stack)
            break;
        pr = *(--sptr);
        pl = *(--sptr);
        cdepth = *(--psdepth);
    }
}

#undef ISWAP

/* ---- batch plan -------------------------------------------------------------------------- */

void q7_batch_plan_free(struct q7_batch_plan * plan)
{
    if (!plan)
        return;
    free(plan->order);
    free(plan->shape);
    memset(plan, 0, sizeof *plan);
}

enum q7_status q7_batch_plan(const int64_t (*hw)[2], int n, int batch, int img_size, int stride,
                             double pad, struct q7_batch_plan * out)
{
    memset(out, 0, sizeof *out);
    if ((!hw && n > 0) || n < 0 || batch < 1 || img_size < 1 || stride < 1 || !(pad >= 0))
        return q7_error_set(Q7_ERR_ARG, "batch plan: bad arguments (n %d, batch %d, img_size %d, "
                            "stride %d)", n, batch, img_size, stride);
    for (int i = 0; i < n; i++)
        if (hw[i][0] < 1 || hw[i][1] < 1)
            return q7_error_set(Q7_ERR_ARG, "batch plan: image %d has size %lldx%lld", i,
                                (long long)hw[i][1], (long long)hw[i][0]);
    int nb = n == 0 ? 0 : (n - 1) / batch + 1;
    double * ar = malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->order = malloc(sizeof(int) * (size_t)(n ? n : 1));
    out->shape = malloc(sizeof(*out->shape) * (size_t)(nb ? nb : 1));
    if (!ar || !out->order || !out->shape) {
        free(ar);
        q7_batch_plan_free(out);
        return q7_error_set(Q7_ERR_OOM, "batch plan: out of memory");
    }
    out->n = n;
    out->batch = batch;
    out->n_batches = nb;
    for (int i = 0; i < n; i++)
        ar[i] = (double)hw[i][0] / (double)hw[i][1]; /* s[:, 1] / s[:, 0] with s = wh */
    q7_argsort_numpy(ar, n, out->order);

    for (int b = 0; b < nb; b++) {
        int lo = b * batch, hi = lo + batch < n ? lo + batch : n;
        double mini = ar[out->order[lo]], maxi = mini;
        for (int k = lo + 1; k < hi; k++) {
            double a = ar[out->order[k]];
            mini = fmin(mini, a);
            maxi = fmax(maxi, a);
        }
        double s[2] = {1.0, 1.0};
        if (maxi < 1)
            s[0] = maxi;
        else if (mini > 1)
            s[1] = 1.0 / mini;
        for (int k = 0; k < 2; k++) {
            double x = s[k] * img_size / stride + pad; /* numpy evaluates left to right */
            out->shape[b][k] = (int64_t)ceil(x) * stride;
        }
    }
    free(ar);
    return Q7_OK;
}
