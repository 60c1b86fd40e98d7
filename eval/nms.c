/* yolov7 non_max_suppression (utils/general.py) for one image, reproducing PyTorch's FP32
 * arithmetic and torchvision.ops.nms' CPU kernel:
 *
 *   candidates      obj > conf_thres (compared in float, as torch compares with a scalar)
 *   class conf      cls * obj (float)
 *   box             xywh -> xyxy: cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2 (float)
 *   multi-label     every (box, class) with conf > conf_thres, row-major over (box, class),
 *                   the order of torch's (x[:, 5:] > conf_thres).nonzero()
 *   best class      the first maximal class (torch.max(dim) keeps the first maximum; a NaN
 *                   wins and drops the row), kept when conf > conf_thres
 *   class filter    optional list of classes
 *   max_nms         more than max_nms: the max_nms highest confidences, in descending order
 *                   (torch's argsort(descending=True) is not stable; q7 breaks ties by
 *                   candidate order)
 *   offset          boxes + cls * max_wh in float, unless agnostic
 *   NMS             torchvision nms_kernel_impl: stable sort by score descending; areas
 *                   (x2 - x1) * (y2 - y1); greedy; IoU = inter / (area_i + area_j - inter) in
 *                   float, suppressed when (double)IoU > iou_thres
 *   max_det         the first max_det kept boxes
 *
 * Two speed-ups leave the result unchanged: the greedy loop stops once max_det boxes are kept
 * (later boxes cannot change earlier decisions), and when the offset boxes of different
 * classes occupy disjoint x ranges (always, for boxes narrower than max_wh) the inner loop
 * only visits boxes of the same class, since boxes of other classes then have IoU 0.
 *
 * Float expressions are written one operation at a time, as PyTorch evaluates them; the
 * build uses -std=c11, so GCC does not contract them into FMAs. */
#include "eval/nms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NMS_MAX_NO 1000000 /* sanity bound on values per row (5 + classes) */

struct nms_cand {
    float box[4]; /* x1 y1 x2 y2 */
    float conf;
    float cls;
    int64_t seq; /* candidate order, the tie-breaker of every sort */
};

struct q7_nms_params q7_nms_params_default(void)
{
    struct q7_nms_params p;
    memset(&p, 0, sizeof p);
    p.conf_thres = 0.001f;
    p.iou_thres = 0.65;
    p.classes = NULL;
    p.n_classes = 0;
    p.agnostic = 0;
    p.multi_label = 1;
    p.max_det = 300;
    p.max_wh = 4096.0f;
    p.max_nms = 30000;
    return p;
}

/* std::max / std::min as torchvision's kernel uses them (NaN handling included). */
static float max_f(float a, float b)
{
    return (a < b) ? b : a;
}

static float min_f(float a, float b)
{
    return (b < a) ? b : a;
}

/* Descending confidence, ties by candidate order: a stable descending sort. */
static int cmp_cand_conf_desc(const void * pa, const void * pb)
{
    const struct nms_cand * a = pa;
    const struct nms_cand * b = pb;
    if (a->conf > b->conf)
        return -1;
    if (a->conf < b->conf)
        return 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

struct cand_vec {
    struct nms_cand * v;
    size_t n, cap;
};

static enum q7_status cand_push(struct cand_vec * cv, const struct nms_cand * c)
{
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? cv->cap * 2 : 256;
        size_t bytes;
        if (!q7_size_mul(cap, sizeof *cv->v, &bytes))
            return q7_error_set(Q7_ERR_LIMIT, "nms: too many candidates");
        struct nms_cand * nv = realloc(cv->v, bytes);
        if (!nv)
            return q7_error_set(Q7_ERR_OOM, "nms: out of memory for %zu candidates", cap);
        cv->v = nv;
        cv->cap = cap;
    }
    cv->v[cv->n++] = *c;
    return Q7_OK;
}

static int class_allowed(const struct q7_nms_params * p, float cls)
{
    if (!p->classes)
        return 1;
    for (int k = 0; k < p->n_classes; k++)
        if (cls == (float)p->classes[k])
            return 1;
    return 0;
}

/* Gathers the candidates of non_max_suppression up to (and including) the class filter. */
static enum q7_status gather(const float * pred, int64_t rows, int no,
                             const struct q7_nms_params * p, struct cand_vec * cv)
{
    const int nc = no - 5;
    const int multi = p->multi_label && nc > 1;
    const float thr = p->conf_thres;
    float * conf = malloc((size_t)nc * sizeof *conf);
    if (!conf)
        return q7_error_set(Q7_ERR_OOM, "nms: out of memory");
    enum q7_status st = Q7_OK;
    int64_t seq = 0;
    for (int64_t r = 0; r < rows && st == Q7_OK; r++) {
        const float * x = pred + r * (int64_t)no;
        const float obj = x[4];
        if (!(obj > thr))
            continue;
        for (int k = 0; k < nc; k++)
            conf[k] = x[5 + k] * obj;
        const float hw = x[2] / 2.0f, hh = x[3] / 2.0f;
        struct nms_cand c;
        c.box[0] = x[0] - hw;
        c.box[1] = x[1] - hh;
        c.box[2] = x[0] + hw;
        c.box[3] = x[1] + hh;
        if (multi) {
            for (int k = 0; k < nc && st == Q7_OK; k++) {
                if (!(conf[k] > thr))
                    continue;
                c.conf = conf[k];
                c.cls = (float)k;
                if (!class_allowed(p, c.cls))
                    continue;
                c.seq = seq++;
                st = cand_push(cv, &c);
            }
        } else {
            float best = conf[0];
            int idx = 0;
            for (int k = 0; k < nc; k++) {
                if (!(conf[k] <= best)) {
                    best = conf[k];
                    idx = k;
                    if (isnan(best))
                        break;
                }
            }
            if (!(best > thr))
                continue;
            c.conf = best;
            c.cls = (float)idx;
            if (!class_allowed(p, c.cls))
                continue;
            c.seq = seq++;
            st = cand_push(cv, &c);
        }
    }
    free(conf);
    return st;
}

/* A group of boxes that can only suppress each other: one class, or everything. */
struct nms_group {
    float cls;
    float lo, hi;        /* extent of the offset x coordinates */
    size_t start, count; /* slice of the member list */
};

static int cmp_group_lo(const void * pa, const void * pb)
{
    const struct nms_group * a = pa;
    const struct nms_group * b = pb;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

static int cmp_float_asc(const void * pa, const void * pb)
{
    const float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

/* Splits the score-ordered boxes into per-class groups when their offset x ranges are
 * pairwise disjoint (boxes of different classes then never overlap), else one group.
 * members: for each group, the positions (in score order) of its boxes, ascending.
 * Returns the number of groups (0 on OOM). */
static size_t make_groups(const struct nms_cand * c, const float (*ob)[4], size_t n,
                          const struct q7_nms_params * p, struct nms_group ** groups_out,
                          size_t * members, size_t * group_of)
{
    int split = !p->agnostic && p->iou_thres >= 0.0;
    for (size_t i = 0; i < n && split; i++)
        for (int k = 0; k < 4; k++)
            if (!isfinite(ob[i][k]))
                split = 0;
    float * classes = NULL;
    size_t ng = 0;
    if (split) {
        classes = malloc(n * sizeof *classes);
        if (!classes)
            return 0;
        for (size_t i = 0; i < n; i++)
            classes[i] = c[i].cls;
        qsort(classes, n, sizeof *classes, cmp_float_asc);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || classes[i] != classes[ng - 1])
                classes[ng++] = classes[i];
    } else {
        ng = 1;
    }
    struct nms_group * g = calloc(ng, sizeof *g);
    if (!g) {
        free(classes);
        return 0;
    }
    for (size_t k = 0; k < ng; k++) {
        g[k].cls = split ? classes[k] : 0.0f;
        g[k].lo = INFINITY;
        g[k].hi = -INFINITY;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (split) {
            size_t lo = 0, hi = ng; /* binary search for the class */
            while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (classes[mid] <= c[i].cls)
                    lo = mid;
                else
                    hi = mid;
            }
            k = lo;
        }
        group_of[i] = k;
        g[k].count++;
        g[k].lo = fminf(g[k].lo, fminf(ob[i][0], ob[i][2]));
        g[k].hi = fmaxf(g[k].hi, fmaxf(ob[i][0], ob[i][2]));
    }
    free(classes);
    if (split && ng > 1) {
        /* Disjoint when, sorted by lower end, each group starts at or after every earlier
         * group's upper end: the intersection width is then <= 0 for any cross pair. */
        struct nms_group * s = malloc(ng * sizeof *s);
        if (!s) {
            free(g);
            return 0;
        }
        memcpy(s, g, ng * sizeof *s);
        qsort(s, ng, sizeof *s, cmp_group_lo);
        float run_hi = s[0].hi;
        for (size_t k = 1; k < ng; k++) {
            if (s[k].lo < run_hi) {
                split = 0;
                break;
            }
            run_hi = fmaxf(run_hi, s[k].hi);
        }
        free(s);
        if (!split) {
            for (size_t i = 0; i < n; i++)
                group_of[i] = 0;
            g[0].count = n;
            ng = 1;
        }
    }
    size_t off = 0;
    for (size_t k = 0; k < ng; k++) {
        g[k].start = off;
        off += g[k].count;
        g[k].count = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct nms_group * gk = &g[group_of[i]];
        members[gk->start + gk->count++] = i;
    }
    *groups_out = g;
    return ng;
}

enum q7_status q7_nms(const float * pred, int64_t rows, int no, const struct q7_nms_params * p,
                      float ** out, int * n_out)
{
    if (!out || !n_out || !p)
        return q7_error_set(Q7_ERR_ARG, "nms: NULL argument");
    *out = NULL;
    *n_out = 0;
    if (rows < 0 || no < 6 || no > NMS_MAX_NO || (rows > 0 && !pred))
        return q7_error_set(Q7_ERR_ARG, "nms: bad prediction shape %lld x %d (need no >= 6)",
                            (long long)rows, no);
    size_t total;
    if (!q7_size_mul((size_t)rows, (size_t)no, &total) || total > (size_t)PTRDIFF_MAX / 4)
        return q7_error_set(Q7_ERR_LIMIT, "nms: %lld x %d predictions are too many",
                            (long long)rows, no);
    if (p->max_det < 0 || p->max_nms < 0 || p->n_classes < 0 || (p->n_classes && !p->classes) ||
        isnan(p->iou_thres) || !isfinite(p->max_wh))
        return q7_error_set(Q7_ERR_ARG, "nms: bad parameters");

    struct cand_vec cv = {0};
    enum q7_status st = gather(pred, rows, no, p, &cv);
    size_t n = cv.n;
    if (st != Q7_OK || n == 0 || p->max_det == 0) {
        free(cv.v);
        return st;
    }
    /* Score order (torchvision sorts stably, descending). When n > max_nms yolov7 first
     * keeps the top max_nms by the same order; sorting once covers both. */
    struct nms_cand * c = cv.v;
    qsort(c, n, sizeof *c, cmp_cand_conf_desc);
    if (n > (size_t)p->max_nms)
        n = (size_t)p->max_nms;

    float(*ob)[4] = malloc(n * sizeof *ob); /* offset boxes */
    float * area = malloc(n * sizeof *area);
    unsigned char * supp = calloc(n ? n : 1, 1);
    size_t * members = malloc(n * sizeof *members);
    size_t * group_of = malloc(n * sizeof *group_of);
    size_t * pos_in_group = malloc(n * sizeof *pos_in_group);
    int64_t * keep =
        malloc((size_t)(p->max_det < (int64_t)n ? p->max_det : (int64_t)n) * sizeof *keep);
    struct nms_group * groups = NULL;
    size_t ng = 0;
    if (!ob || !area || !supp || !members || !group_of || !pos_in_group || !keep) {
        st = q7_error_set(Q7_ERR_OOM, "nms: out of memory for %zu boxes", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const float off = p->agnostic ? c[i].cls * 0.0f : c[i].cls * p->max_wh;
        for (int k = 0; k < 4; k++)
            ob[i][k] = c[i].box[k] + off;
        area[i] = (ob[i][2] - ob[i][0]) * (ob[i][3] - ob[i][1]);
    }
    ng = make_groups(c, (const float(*)[4])ob, n, p, &groups, members, group_of);
    if (ng == 0) {
        st = q7_error_set(Q7_ERR_OOM, "nms: out of memory for %zu boxes", n);
        goto done;
    }
    for (size_t k = 0; k < ng; k++)
        for (size_t m = 0; m < groups[k].count; m++)
            pos_in_group[members[groups[k].start + m]] = m;

    int nk = 0;
    for (size_t i = 0; i < n && nk < p->max_det; i++) {
        if (supp[i])
            continue;
        keep[nk++] = (int64_t)i;
        const float ix1 = ob[i][0], iy1 = ob[i][1], ix2 = ob[i][2], iy2 = ob[i][3];
        const float iarea = area[i];
        const struct nms_group * g = &groups[group_of[i]];
        for (size_t m = pos_in_group[i] + 1; m < g->count; m++) {
            const size_t j = members[g->start + m];
            if (supp[j])
                continue;
            const float xx1 = max_f(ix1, ob[j][0]);
            const float yy1 = max_f(iy1, ob[j][1]);
            const float xx2 = min_f(ix2, ob[j][2]);
            const float yy2 = min_f(iy2, ob[j][3]);
            const float w = max_f(0.0f, xx2 - xx1);
            const float h = max_f(0.0f, yy2 - yy1);
            const float inter = w * h;
            const float ovr = inter / (iarea + area[j] - inter);
            if ((double)ovr > p->iou_thres)
                supp[j] = 1;
        }
    }
    if (nk > 0) {
        float * o = malloc((size_t)nk * Q7_NMS_ROW * sizeof *o);
        if (!o) {
            st = q7_error_set(Q7_ERR_OOM, "nms: out of memory");
            goto done;
        }
        for (int r = 0; r < nk; r++) {
            const struct nms_cand * k = &c[keep[r]];
            float * row = o + (size_t)r * Q7_NMS_ROW;
            memcpy(row, k->box, 4 * sizeof *row);
            row[4] = k->conf;
            row[5] = k->cls;
        }
        *out = o;
        *n_out = nk;
    }
done:
    free(ob);
    free(area);
    free(supp);
    free(members);
    free(group_of);
    free(pos_in_group);
    free(keep);
    free(groups);
    free(cv.v);
    return st;
}

void q7_clip_coords(float * boxes, int64_t n, int stride, int img_h, int img_w)
{
    const float lim[4] = {(float)img_w, (float)img_h, (float)img_w, (float)img_h};
    for (int64_t i = 0; i < n; i++) {
        float * b = boxes + i * stride;
        for (int k = 0; k < 4; k++) {
            /* torch.clamp_(0, lim): NaN stays NaN */
            if (b[k] < 0.0f)
                b[k] = 0.0f;
            else if (b[k] > lim[k])
                b[k] = lim[k];
        }
    }
}

void q7_scale_coords(int img1_h, int img1_w, float * boxes, int64_t n, int stride, int img0_h,
                     int img0_w, const struct q7_ratio_pad * ratio_pad)
{
    double gain, pad_w, pad_h;
    if (!ratio_pad) {
        const double gh = (double)img1_h / img0_h, gw = (double)img1_w / img0_w;
        gain = gh < gw ? gh : gw;
        pad_w = (img1_w - img0_w * gain) / 2;
        pad_h = (img1_h - img0_h * gain) / 2;
    } else {
        gain = ratio_pad->gain_h;
        pad_w = ratio_pad->pad_w;
        pad_h = ratio_pad->pad_h;
    }
    /* PyTorch casts a Python scalar to the tensor's dtype, then computes in float. */
    const float fpw = (float)pad_w, fph = (float)pad_h, fg = (float)gain;
    for (int64_t i = 0; i < n; i++) {
        float * b = boxes + i * stride;
        b[0] = b[0] - fpw;
        b[2] = b[2] - fpw;
        b[1] = b[1] - fph;
        b[3] = b[3] - fph;
        for (int k = 0; k < 4; k++)
            b[k] = b[k] / fg;
    }
    q7_clip_coords(boxes, n, stride, img0_h, img0_w);
}
