/* yolov7 test.py statistics and utils/metrics.py ap_per_class, in the arithmetic of the
 * reference: PyTorch FP32 for boxes and IoU, NumPy float64 for the curves.
 *
 * Per image (test.py):
 *   correct = zeros(n_pred, 10)
 *   for cls in unique(target classes), ascending:
 *       ti = targets of cls, pi = predictions of cls (ascending indices)
 *       ious, i = box_iou(pred[pi], target[ti]).max(1)       first maximum wins
 *       for j where ious > iouv[0] (ascending):
 *           d = ti[i[j]]; if d not yet detected for this class:
 *               mark d; correct[pi[j]] = ious[j] > iouv; stop when every target is detected
 * ap_per_class: sort by conf descending; per target class: tp/fp cumsums, recall =
 * tpc / (n_l + 1e-16), precision = tpc / (tpc + fpc); p, r at px = linspace(0, 1, 1000) by
 * np.interp on -conf; AP per IoU = trapz of the envelope interpolated at linspace(0, 1, 101)
 * with mrec = [0, recall, recall[-1] + 0.01], mpre = [1, precision, 0]; F1 = 2pr / (p + r +
 * 1e-16); i = argmax of the F1 mean over classes; P, R = p[:, i], r[:, i]. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PX_POINTS 1000  /* ap_per_class' px = linspace(0, 1, 1000) */
#define AP_POINTS 101   /* compute_ap's x = linspace(0, 1, 101) */
#define NP_PW_BLOCK 128 /* NumPy's PW_BLOCKSIZE */

struct q7_metric {
    int nc;
    int images;
    /* predictions of all images, in the order added */
    size_t n_pred, cap_pred;
    float * conf;
    float * pcls;
    uint16_t * correct; /* bit k: correct at iouv[k] */
    /* target classes of all images */
    size_t n_tgt, cap_tgt;
    int * tcls;
    int * images_with; /* per class: images that have a label of the class */
    int * last_image;  /* per class: 1 + the last image that counted in images_with */
};

/* ---------------------------------------------------------------- NumPy helpers */

/* NumPy's pairwise summation (DOUBLE_pairwise_sum), over terms given by a getter. */
typedef double (*np_term_fn)(const void * ctx, size_t i);

static double pairwise(np_term_fn term, const void * ctx, size_t lo, size_t n)
{
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; i++)
            res += term(ctx, lo + i);
        return res;
    }
    if (n <= NP_PW_BLOCK) {
        double r[8];
        size_t i;
        for (int k = 0; k < 8; k++)
            r[k] = term(ctx, lo + k);
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += term(ctx, lo + i + k);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += term(ctx, lo + i);
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(term, ctx, lo, n2) + pairwise(term, ctx, lo + n2, n - n2);
}

struct strided {
    const double * a;
    size_t stride;
};

static double strided_term(const void * ctx, size_t i)
{
    const struct strided * s = ctx;
    return s->a[i * s->stride];
}

double q7_np_sum(const double * a, size_t n, size_t stride)
{
    struct strided s = {a, stride};
    /* add.reduce starts from the identity 0 and adds the pairwise sum */
    return 0.0 + pairwise(strided_term, &s, 0, n);
}

/* binary_search_with_guess' answer for a non-decreasing xp: the last j with xp[j] <= key
 * (callers handle key < xp[0] and key > xp[n - 1]). */
static size_t last_le(const double * xp, size_t n, double key)
{
    size_t lo = 0, hi = n; /* first index with xp > key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key >= xp[mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

void q7_np_interp(const double * x, size_t nx, const double * xp, const double * fp, size_t nxp,
                  double left, double right, double * out)
{
    for (size_t i = 0; i < nx; i++) {
        const double v = x[i];
        if (isnan(v)) {
            out[i] = v;
        } else if (v > xp[nxp - 1]) {
            out[i] = right;
        } else if (v < xp[0]) {
            out[i] = left;
        } else {
            const size_t j = last_le(xp, nxp, v);
            if (j == nxp - 1 || xp[j] == v) {
                out[i] = fp[j];
            } else {
                const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
                double r = slope * (v - xp[j]) + fp[j];
                if (isnan(r)) {
                    r = slope * (v - xp[j + 1]) + fp[j + 1];
                    if (isnan(r) && fp[j] == fp[j + 1])
                        r = fp[j];
                }
                out[i] = r;
            }
        }
    }
}

struct trapz_ctx {
    const double *y, *x;
};

static double trapz_term(const void * ctx, size_t i)
{
    const struct trapz_ctx * t = ctx;
    const double d = t->x[i + 1] - t->x[i];
    return d * (t->y[i + 1] + t->y[i]) / 2.0;
}

double q7_np_trapz(const double * y, const double * x, size_t n)
{
    if (n < 2)
        return 0.0;
    struct trapz_ctx t = {y, x};
    return 0.0 + pairwise(trapz_term, &t, 0, n - 1);
}

/* np.linspace(start, stop, num): i * step + start, the last one exactly stop. */
static void np_linspace(double start, double stop, size_t num, double * out)
{
    const double step = (stop - start) / (double)(num - 1);
    for (size_t i = 0; i < num; i++)
        out[i] = (double)i * step + start;
    out[num - 1] = stop;
}

/* ---------------------------------------------------------------- PyTorch FP32 pieces */

/* torch.linspace(0.5, 0.95, 10) in float32: the CPU kernel's scalar path,
 * start + step * i for the first half, end - step * (steps - i - 1) for the rest. */
static void iou_thresholds(float iouv[Q7_METRIC_NIOU])
{
    const float start = 0.5f, end = 0.95f;
    const int steps = Q7_METRIC_NIOU;
    const float step = (end - start) / (float)(steps - 1);
    for (int i = 0; i < steps; i++)
        iouv[i] = i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

/* Elementwise torch.min / torch.max: NaN propagates. */
static float tmin(float a, float b)
{
    return (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b);
}

static float tmax(float a, float b)
{
    return (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b);
}

float q7_metric_box_iou(const float * a, const float * b)
{
    const float area1 = (a[2] - a[0]) * (a[3] - a[1]);
    const float area2 = (b[2] - b[0]) * (b[3] - b[1]);
    float iw = tmin(a[2], b[2]) - tmax(a[0], b[0]);
    float ih = tmin(a[3], b[3]) - tmax(a[1], b[1]);
    if (iw < 0.0f)
        iw = 0.0f;
    if (ih < 0.0f)
        ih = 0.0f;
    const float inter = iw * ih;
    return inter / (area1 + area2 - inter);
}

void q7_metric_labels_to_native(const float * labels, int n, int orig_h, int orig_w, int input_h,
                                int input_w, const struct q7_ratio_pad * rp, float * out)
{
    /* load_image's resized size and letterbox's ratio (scaleup=False) */
    const double h = nearbyint(rp->gain_h * orig_h), w = nearbyint(rp->gain_w * orig_w);
    double r =
        (double)input_h / h < (double)input_w / w ? (double)input_h / h : (double)input_w / w;
    if (r > 1.0)
        r = 1.0;
    const float lw = (float)(r * w), lh = (float)(r * h);
    const float padw = (float)rp->pad_w, padh = (float)rp->pad_h;
    const float fh = (float)input_h, fw = (float)input_w;
    for (int i = 0; i < n; i++) {
        const float * l = labels + (size_t)i * 5;
        float * o = out + (size_t)i * 5;
        /* xywhn2xyxy (numpy, float32) */
        const float x1 = lw * (l[1] - l[3] / 2.0f) + padw;
        const float y1 = lh * (l[2] - l[4] / 2.0f) + padh;
        const float x2 = lw * (l[1] + l[3] / 2.0f) + padw;
        const float y2 = lh * (l[2] + l[4] / 2.0f) + padh;
        /* xyxy2xywh, then / img.shape (numpy, float32) */
        const float cx = ((x1 + x2) / 2.0f) / fw;
        const float cy = ((y1 + y2) / 2.0f) / fh;
        const float bw = (x2 - x1) / fw;
        const float bh = (y2 - y1) / fh;
        /* test.py: * (width, height, width, height), xywh2xyxy (torch, float32) */
        const float px = cx * fw, py = cy * fh, pw = bw * fw, ph = bh * fh;
        o[0] = l[0];
        o[1] = px - pw / 2.0f;
        o[2] = py - ph / 2.0f;
        o[3] = px + pw / 2.0f;
        o[4] = py + ph / 2.0f;
    }
    q7_scale_coords(input_h, input_w, out + 1, n, 5, orig_h, orig_w, rp);
}

/* ---------------------------------------------------------------- accumulator */

enum q7_status q7_metric_create(int nc, struct q7_metric ** out)
{
    if (!out)
        return q7_error_set(Q7_ERR_ARG, "metric: NULL output");
    *out = NULL;
    if (nc < 1 || nc > Q7_METRIC_MAX_NC)
        return q7_error_set(Q7_ERR_ARG, "metric: number of classes %d out of 1..%d", nc,
                            Q7_METRIC_MAX_NC);
    struct q7_metric * m = calloc(1, sizeof *m);
    if (!m || !(m->images_with = calloc((size_t)nc, sizeof *m->images_with)) ||
        !(m->last_image = calloc((size_t)nc, sizeof *m->last_image))) {
        if (m)
            free(m->images_with);
        free(m);
        return q7_error_set(Q7_ERR_OOM, "metric: out of memory");
    }
    m->nc = nc;
    *out = m;
    return Q7_OK;
}

void q7_metric_free(struct q7_metric * m)
{
    if (!m)
        return;
    free(m->conf);
    free(m->pcls);
    free(m->correct);
    free(m->tcls);
    free(m->images_with);
    free(m->last_image);
    free(m);
}

static int grow(void ** p, size_t * cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) {
        if (!q7_size_mul(c, 2, &c))
            return 0;
    }
    size_t bytes;
    if (!q7_size_mul(c, elem, &bytes))
        return 0;
    void * n = realloc(*p, bytes);
    if (!n)
        return 0;
    *p = n;
    *cap = c;
    return 1;
}

struct cls_idx {
    int cls, idx;
};

static int cmp_cls_idx(const void * pa, const void * pb)
{
    const struct cls_idx *a = pa, *b = pb;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* The per-class matching of test.py for one image; writes correct bits per prediction.
 * Labels and predictions are grouped by class (ascending, as torch.unique), keeping their
 * order within a class (the order of nonzero()). */
static enum q7_status match_image(const float * preds, int np_, const float * labels, int nl,
                                  uint16_t * correct)
{
    float iouv[Q7_METRIC_NIOU];
    iou_thresholds(iouv);
    struct cls_idx * tl = malloc((size_t)nl * sizeof *tl);
    struct cls_idx * pl = malloc((size_t)np_ * sizeof *pl);
    float * ious = malloc((size_t)np_ * sizeof *ious);
    int * best = malloc((size_t)np_ * sizeof *best);
    unsigned char * det = calloc((size_t)nl, 1); /* detected_set (per class) */
    if (!tl || !pl || !ious || !best || !det) {
        free(tl), free(pl), free(ious), free(best), free(det);
        return q7_error_set(Q7_ERR_OOM, "metric: out of memory");
    }
    for (int t = 0; t < nl; t++)
        tl[t] = (struct cls_idx){(int)labels[(size_t)t * 5], t};
    for (int p = 0; p < np_; p++)
        pl[p] = (struct cls_idx){(int)preds[(size_t)p * 6 + 5], p};
    qsort(tl, (size_t)nl, sizeof *tl, cmp_cls_idx);
    qsort(pl, (size_t)np_, sizeof *pl, cmp_cls_idx);
    int detected = 0;
    int pc = 0; /* cursor into pl */
    for (int t0 = 0, t1; t0 < nl; t0 = t1) {
        const int cls = tl[t0].cls;
        for (t1 = t0; t1 < nl && tl[t1].cls == cls; t1++)
            ;
        while (pc < np_ && pl[pc].cls < cls)
            pc++;
        int p1 = pc;
        while (p1 < np_ && pl[p1].cls == cls)
            p1++;
        const struct cls_idx *ti = tl + t0, *pi = pl + pc;
        const int nt = t1 - t0, npc = p1 - pc;
        for (int j = 0; j < npc; j++) {
            /* box_iou(...).max(1): the first maximum; a NaN is taken and ends the scan */
            const float * pb = preds + (size_t)pi[j].idx * 6;
            float mx = q7_metric_box_iou(pb, labels + (size_t)ti[0].idx * 5 + 1);
            int arg = 0;
            if (!isnan(mx)) {
                for (int k = 1; k < nt; k++) {
                    const float v = q7_metric_box_iou(pb, labels + (size_t)ti[k].idx * 5 + 1);
                    if (!(v <= mx)) {
                        mx = v;
                        arg = k;
                        if (isnan(v))
                            break;
                    }
                }
            }
            ious[j] = mx;
            best[j] = arg;
        }
        for (int j = 0; j < npc; j++) {
            if (!(ious[j] > iouv[0]))
                continue;
            const int d = ti[best[j]].idx;
            if (det[d])
                continue;
            det[d] = 1;
            detected++;
            uint16_t bits = 0;
            for (int k = 0; k < Q7_METRIC_NIOU; k++)
                if (ious[j] > iouv[k])
                    bits |= (uint16_t)(1u << k);
            correct[pi[j].idx] = bits;
            if (detected == nl)
                break;
        }
        pc = p1;
    }
    free(tl), free(pl), free(ious), free(best), free(det);
    return Q7_OK;
}

enum q7_status q7_metric_add_image(struct q7_metric * m, const float * preds, int n_preds,
                                   const float * labels, int n_labels)
{
    if (!m || n_preds < 0 || n_labels < 0 || (n_preds && !preds) || (n_labels && !labels))
        return q7_error_set(Q7_ERR_ARG, "metric: bad arguments to add_image");
    for (int i = 0; i < n_preds; i++) {
        const float c = preds[(size_t)i * 6 + 5], s = preds[(size_t)i * 6 + 4];
        if (!(c >= 0.0f && c < (float)m->nc && c == floorf(c)))
            return q7_error_set(Q7_ERR_ARG, "metric: prediction %d has class %g, not in 0..%d", i,
                                (double)c, m->nc - 1);
        if (isnan(s))
            return q7_error_set(Q7_ERR_ARG, "metric: prediction %d has a NaN confidence", i);
    }
    for (int i = 0; i < n_labels; i++) {
        const float c = labels[(size_t)i * 5];
        if (!(c >= 0.0f && c < (float)m->nc && c == floorf(c)))
            return q7_error_set(Q7_ERR_ARG, "metric: label %d has class %g, not in 0..%d", i,
                                (double)c, m->nc - 1);
    }
    size_t need_p, need_t;
    if (!q7_size_add(m->n_pred, (size_t)n_preds, &need_p) ||
        !q7_size_add(m->n_tgt, (size_t)n_labels, &need_t))
        return q7_error_set(Q7_ERR_LIMIT, "metric: too many predictions");
    size_t cp = m->cap_pred, cp2 = m->cap_pred, cp3 = m->cap_pred;
    if (!grow((void **)&m->conf, &cp, need_p, sizeof *m->conf) ||
        !grow((void **)&m->pcls, &cp2, need_p, sizeof *m->pcls) ||
        !grow((void **)&m->correct, &cp3, need_p, sizeof *m->correct))
        return q7_error_set(Q7_ERR_OOM, "metric: out of memory for %zu predictions", need_p);
    m->cap_pred = cp;
    if (!grow((void **)&m->tcls, &m->cap_tgt, need_t, sizeof *m->tcls))
        return q7_error_set(Q7_ERR_OOM, "metric: out of memory for %zu labels", need_t);

    uint16_t * correct = m->correct + m->n_pred;
    memset(correct, 0, (size_t)n_preds * sizeof *correct);
    if (n_preds && n_labels) {
        enum q7_status st = match_image(preds, n_preds, labels, n_labels, correct);
        if (st != Q7_OK)
            return st;
    }
    for (int i = 0; i < n_preds; i++) {
        m->conf[m->n_pred + i] = preds[(size_t)i * 6 + 4];
        m->pcls[m->n_pred + i] = preds[(size_t)i * 6 + 5];
    }
    m->n_pred = need_p;
    for (int i = 0; i < n_labels; i++) {
        const int c = (int)labels[(size_t)i * 5];
        if (m->last_image[c] != m->images + 1) { /* first label of class c in this image */
            m->last_image[c] = m->images + 1;
            m->images_with[c]++;
        }
        m->tcls[m->n_tgt + i] = c;
    }
    m->n_tgt = need_t;
    m->images++;
    return Q7_OK;
}

/* ---------------------------------------------------------------- ap_per_class */

/* Stable descending order of confidences (merge sort, no global state). */
static void sort_by_conf(const float * conf, size_t * idx, size_t * tmp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = (conf[idx[b]] > conf[idx[a]]) ? idx[b++] : idx[a++];
            while (a < mid)
                tmp[o++] = idx[a++];
            while (b < hi)
                tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

/* compute_ap for one IoU column. mrec / mpre / y are scratch of n + 2 / n + 2 / 101. */
static double compute_ap(const double * recall, const double * precision, size_t n,
                         const double * x101, double * mrec, double * mpre, double * y)
{
    mrec[0] = 0.0;
    mpre[0] = 1.0;
    for (size_t i = 0; i < n; i++) {
        mrec[i + 1] = recall[i];
        mpre[i + 1] = precision[i];
    }
    mrec[n + 1] = recall[n - 1] + 0.01;
    mpre[n + 1] = 0.0;
    for (size_t i = n + 1; i-- > 0;)
        if (mpre[i + 1] > mpre[i] || isnan(mpre[i + 1]))
            mpre[i] = mpre[i + 1]; /* np.maximum.accumulate from the end */
    q7_np_interp(x101, AP_POINTS, mrec, mpre, n + 2, mpre[0], mpre[n + 1], y);
    return q7_np_trapz(y, x101, AP_POINTS);
}

enum q7_status q7_metric_compute(const struct q7_metric * m, struct q7_metric_result * out)
{
    if (!m || !out)
        return q7_error_set(Q7_ERR_ARG, "metric: NULL argument");
    memset(out, 0, sizeof *out);
    out->images = m->images;
    out->labels = (int)m->n_tgt;

    int any = 0;
    for (size_t i = 0; i < m->n_pred && !any; i++)
        any = m->correct[i] != 0;
    if (!any)
        return Q7_OK; /* test.py: stats[0].any() is False, everything stays 0 */

    /* unique target classes and their label counts */
    int * n_l = calloc((size_t)m->nc, sizeof *n_l);
    if (!n_l)
        return q7_error_set(Q7_ERR_OOM, "metric: out of memory");
    for (size_t i = 0; i < m->n_tgt; i++)
        n_l[m->tcls[i]]++;
    int nu = 0;
    for (int c = 0; c < m->nc; c++)
        nu += n_l[c] > 0;

    const size_t n = m->n_pred;
    size_t rows_bytes;
    enum q7_status st = Q7_OK;
    if (n > SIZE_MAX / (Q7_METRIC_NIOU * sizeof(double)) - 2) {
        free(n_l);
        return q7_error_set(Q7_ERR_LIMIT, "metric: %zu predictions are too many", n);
    }
    size_t * start = calloc((size_t)m->nc + 1, sizeof *start); /* class buckets in sel */
    size_t * order = malloc((n ? n : 1) * sizeof *order);
    size_t * tmp = malloc((n ? n : 1) * sizeof *tmp);
    size_t * sel = malloc((n ? n : 1) * sizeof *sel);
    double * xp = malloc((n ? n : 1) * sizeof *xp);
    double * rec = malloc((n ? n : 1) * Q7_METRIC_NIOU * sizeof *rec);
    double * prec = malloc((n ? n : 1) * Q7_METRIC_NIOU * sizeof *prec);
    double * col_r = malloc((n + 2) * sizeof *col_r);
    double * col_p = malloc((n + 2) * sizeof *col_p);
    double * mrec = malloc((n + 2) * sizeof *mrec);
    double * mpre = malloc((n + 2) * sizeof *mpre);
    double *prow = NULL, *rrow = NULL, *ap = NULL;
    struct q7_metric_class * classes = calloc((size_t)(nu ? nu : 1), sizeof *classes);
    if (q7_size_mul((size_t)nu, PX_POINTS * sizeof(double), &rows_bytes)) {
        prow = calloc(1, rows_bytes ? rows_bytes : 1);
        rrow = calloc(1, rows_bytes ? rows_bytes : 1);
        ap = calloc((size_t)(nu ? nu : 1) * Q7_METRIC_NIOU, sizeof *ap);
    }
    if (!start || !order || !tmp || !sel || !xp || !rec || !prec || !col_r || !col_p || !mrec ||
        !mpre || !prow || !rrow || !ap || !classes) {
        st = q7_error_set(Q7_ERR_OOM, "metric: out of memory for %zu predictions", n);
        goto done;
    }

    double px[PX_POINTS], negpx[PX_POINTS], x101[AP_POINTS], y101[AP_POINTS];
    np_linspace(0.0, 1.0, PX_POINTS, px);
    for (int k = 0; k < PX_POINTS; k++)
        negpx[k] = -px[k];
    np_linspace(0.0, 1.0, AP_POINTS, x101);
    sort_by_conf(m->conf, order, tmp, n);
    /* bucket by class, keeping the confidence order inside each class */
    for (size_t k = 0; k < n; k++)
        start[(int)m->pcls[k] + 1]++;
    for (int c = 0; c < m->nc; c++)
        start[c + 1] += start[c];
    for (size_t k = 0; k < n; k++)
        sel[start[(int)m->pcls[order[k]]]++] = order[k];
    for (int c = m->nc; c > 0; c--) /* start[c] is now the end of class c: shift back */
        start[c] = start[c - 1];
    start[0] = 0;

    int ci = 0;
    for (int c = 0; c < m->nc; c++) {
        if (!n_l[c])
            continue;
        struct q7_metric_class * mc = &classes[ci];
        mc->cls = c;
        mc->images = m->images;
        mc->images_with = m->images_with[c];
        mc->labels = n_l[c];
        const size_t * csel = sel + start[c];
        const size_t np_ = start[c + 1] - start[c];
        if (np_ > 0) {
            int64_t tpc[Q7_METRIC_NIOU] = {0}, fpc[Q7_METRIC_NIOU] = {0};
            const double denom = (double)n_l[c] + 1e-16;
            for (size_t j = 0; j < np_; j++) {
                const uint16_t bits = m->correct[csel[j]];
                for (int t = 0; t < Q7_METRIC_NIOU; t++) {
                    const int tp = (bits >> t) & 1;
                    tpc[t] += tp;
                    fpc[t] += 1 - tp;
                    rec[t * np_ + j] = (double)tpc[t] / denom;
                    prec[t * np_ + j] = (double)tpc[t] / (double)(tpc[t] + fpc[t]);
                }
                xp[j] = -(double)m->conf[csel[j]];
            }
            q7_np_interp(negpx, PX_POINTS, xp, rec, np_, 0.0, rec[np_ - 1],
                         rrow + (size_t)ci * PX_POINTS);
            q7_np_interp(negpx, PX_POINTS, xp, prec, np_, 1.0, prec[np_ - 1],
                         prow + (size_t)ci * PX_POINTS);
            for (int t = 0; t < Q7_METRIC_NIOU; t++) {
                memcpy(col_r, rec + t * np_, np_ * sizeof *col_r);
                memcpy(col_p, prec + t * np_, np_ * sizeof *col_p);
                ap[(size_t)ci * Q7_METRIC_NIOU + t] =
                    compute_ap(col_r, col_p, np_, x101, mrec, mpre, y101);
            }
        }
        ci++;
    }

    /* f1 = 2 p r / (p + r + 1e-16); its mean over classes (axis 0: summed in class order) */
    double f1mean[PX_POINTS];
    for (int k = 0; k < PX_POINTS; k++) {
        double s = 0.0;
        for (int u = 0; u < nu; u++) {
            const double p = prow[(size_t)u * PX_POINTS + k], r = rrow[(size_t)u * PX_POINTS + k];
            s += 2.0 * p * r / (p + r + 1e-16);
        }
        f1mean[k] = s / (double)nu;
    }
    int best = 0;
    for (int k = 1; k < PX_POINTS; k++)
        if (f1mean[k] > f1mean[best])
            best = k;

    double * pv = malloc((size_t)nu * 4 * sizeof *pv);
    if (!pv) {
        st = q7_error_set(Q7_ERR_OOM, "metric: out of memory");
        goto done;
    }
    double *rv = pv + nu, *ap50 = pv + 2 * nu, *apm = pv + 3 * nu;
    for (int u = 0; u < nu; u++) {
        pv[u] = prow[(size_t)u * PX_POINTS + best];
        rv[u] = rrow[(size_t)u * PX_POINTS + best];
        ap50[u] = ap[(size_t)u * Q7_METRIC_NIOU];
        apm[u] = q7_np_sum(ap + (size_t)u * Q7_METRIC_NIOU, Q7_METRIC_NIOU, 1) / Q7_METRIC_NIOU;
        classes[u].p = pv[u];
        classes[u].r = rv[u];
        classes[u].ap50 = ap50[u];
        classes[u].ap = apm[u];
    }
    out->p = q7_np_sum(pv, (size_t)nu, 1) / nu;
    out->r = q7_np_sum(rv, (size_t)nu, 1) / nu;
    out->map50 = q7_np_sum(ap50, (size_t)nu, 1) / nu;
    out->map = q7_np_sum(apm, (size_t)nu, 1) / nu;
    out->n_classes = nu;
    out->classes = classes;
    classes = NULL;
    free(pv);
done:
    free(n_l);
    free(start);
    free(order);
    free(tmp);
    free(sel);
    free(xp);
    free(rec);
    free(prec);
    free(col_r);
    free(col_p);
    free(mrec);
    free(mpre);
    free(prow);
    free(rrow);
    free(ap);
    free(classes);
    return st;
}

void q7_metric_result_free(struct q7_metric_result * r)
{
    if (!r)
        return;
    free(r->classes);
    r->classes = NULL;
    r->n_classes = 0;
}
