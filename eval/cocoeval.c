/* pycocotools COCOeval (iouType 'bbox'): evaluate(), accumulate() and summarize(). The JSON side
 * (readers, writer, category table) is in cocojson.c. See cocoeval.h for the rules; the
 * comments below name the pycocotools steps each piece mirrors. */
#include "eval/cocoeval.h"
#include "eval/metrics.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_IOU 10    /* iouThrs = linspace(.5, .95, 10) */
#define R_REC 101   /* recThrs = linspace(0, 1, 101) */
#define A_AREA 4    /* all, small, medium, large */
#define M_DETS 3    /* maxDets 1, 10, 100 */
#define MAX_DET 100 /* maxDets[-1]: the matching is done once with this many */

static const int k_max_dets[M_DETS] = {1, 10, MAX_DET};
static const double k_area_rng[A_AREA][2] = {
    {0.0, 1e5 * 1e5}, {0.0, 32.0 * 32.0}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e5 * 1e5}};
static const char * const k_area_lbl[A_AREA] = {"all", "small", "medium", "large"};

static int cmp_i64(const void * pa, const void * pb)
{
    const int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

/* ================================================================ evaluation */

/* An annotation or detection with its evaluation coordinates. */
struct ev_ref {
    int k, i;     /* category and image index */
    double score; /* detections: sorted by score descending within (k, i); 0 for ground truth */
    size_t idx;   /* index in the source list (file order): keeps equal scores stable */
};

static int cmp_ev_ref(const void * pa, const void * pb)
{
    const struct ev_ref *a = pa, *b = pb;
    if (a->k != b->k)
        return a->k < b->k ? -1 : 1;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Sorts refs as cmp_ev_ref does, in O(n) for the common case: refs arrive in source order
 * (idx ascending), so two stable counting passes (by image, then by category) give (k, i)
 * order with idx ascending within each group; then each group is sorted by score
 * (insertion sort for small groups, qsort with the full comparator for large ones). tmp
 * holds n refs. Returns 0 when out of memory. */
static int sort_refs(struct ev_ref * v, size_t n, int K, int I, struct ev_ref * tmp)
{
    size_t * count = malloc(((size_t)(K > I ? K : I) + 1) * sizeof *count);
    if (!count)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        const int nb = pass == 0 ? I : K;
        struct ev_ref * src = pass == 0 ? v : tmp, * dst = pass == 0 ? tmp : v;
        memset(count, 0, ((size_t)nb + 1) * sizeof *count);
        for (size_t j = 0; j < n; j++)
            count[(pass == 0 ? src[j].i : src[j].k) + 1]++;
        for (int b = 0; b < nb; b++)
            count[b + 1] += count[b];
        for (size_t j = 0; j < n; j++)
            dst[count[pass == 0 ? src[j].i : src[j].k]++] = src[j];
    }
    free(count);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && v[b].k == v[a].k && v[b].i == v[a].i; b++)
            ;
        if (b - a > 32) {
            qsort(v + a, b - a, sizeof *v, cmp_ev_ref);
            continue;
        }
        for (size_t x = a + 1; x < b; x++) /* stable: equal scores keep idx order */
            for (size_t y = x; y > a && cmp_ev_ref(&v[y - 1], &v[y]) > 0; y--) {
                struct ev_ref t = v[y];
                v[y] = v[y - 1];
                v[y - 1] = t;
            }
    }
    return 1;
}

static int find_id(const int64_t * sorted, int n, int64_t id)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (sorted[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < n && sorted[lo] == id) ? lo : -1;
}

/* One evaluated detection of a (category, area) across images, in image order. */
struct ev_det {
    double score;
    int rank;       /* position in its image's score order (for maxDets) */
    uint32_t flags; /* bit t: matched at iouThrs[t]; bit T_IOU + t: ignored */
};

struct ev_list {
    struct ev_det * v;
    size_t n, cap;
    int64_t npig; /* ground truth not ignored */
};

static int ev_push(struct ev_list * l, const struct ev_det * d)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct ev_det * nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return 0;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = *d;
    return 1;
}

/* maskUtils.iou / bbIou for one pair of xywh boxes, in double. */
static double bb_iou(const double * d, const double * g, int crowd)
{
    const double w = fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]);
    if (w <= 0)
        return 0.0;
    const double h = fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]);
    if (h <= 0)
        return 0.0;
    const double i = w * h;
    const double da = d[2] * d[3], ga = g[2] * g[3];
    const double u = crowd ? da : da + ga - i;
    return i / u;
}

struct ev_img {
    const struct q7_coco_ann ** gt;
    int G;
    const struct q7_coco_det ** dt; /* sorted by score, at most MAX_DET */
    size_t * dt_id;                 /* loadRes ids: position in the results list + 1 */
    int D;
    double * ious; /* D x G, gt in file order */
};

/* evaluateImg for one image, category and area range; appends its detections to `out`. */
static int evaluate_img(const struct ev_img * e, int a, const double * iou_thrs,
                        struct ev_list * out, int * gtind, int * gt_ig, int64_t * gtm,
                        int64_t * dtm, int * dt_ig)
{
    const double lo = k_area_rng[a][0], hi = k_area_rng[a][1];
    const int G = e->G, D = e->D;
    /* gt['_ignore'] = ignore (= iscrowd) or area outside the range; ignored ones last */
    int ng = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int g = 0; g < G; g++) {
            const struct q7_coco_ann * ga = e->gt[g];
            const int ig = ga->iscrowd || ga->area < lo || ga->area > hi;
            if (ig == pass)
                gtind[ng++] = g;
        }
    for (int g = 0; g < G; g++) {
        const struct q7_coco_ann * ga = e->gt[gtind[g]];
        gt_ig[g] = ga->iscrowd || ga->area < lo || ga->area > hi;
        out->npig += !gt_ig[g];
    }
    for (int t = 0; t < T_IOU; t++) {
        int64_t * gm = gtm + (size_t)t * G;
        int64_t * dm = dtm + (size_t)t * D;
        int * di = dt_ig + (size_t)t * D;
        memset(gm, 0, (size_t)G * sizeof *gm);
        for (int d = 0; d < D; d++) {
            dm[d] = 0;
            di[d] = 0;
            double iou = iou_thrs[t] < 1 - 1e-10 ? iou_thrs[t] : 1 - 1e-10;
            int m = -1;
            for (int g = 0; g < G; g++) {
                const int crowd = e->gt[gtind[g]]->iscrowd;
                if (gm[g] > 0 && !crowd)
                    continue;
                if (m > -1 && gt_ig[m] == 0 && gt_ig[g] == 1)
                    break;
                const double v = e->ious[(size_t)d * G + gtind[g]];
                if (v < iou)
                    continue;
                iou = v;
                m = g;
            }
            if (m == -1)
                continue;
            di[d] = gt_ig[m];
            dm[d] = e->gt[gtind[m]]->id;
            gm[m] = (int64_t)e->dt_id[d];
        }
    }
    for (int d = 0; d < D; d++) {
        const double area = e->dt[d]->bbox[2] * e->dt[d]->bbox[3];
        const int out_rng = area < lo || area > hi;
        struct ev_det x = {e->dt[d]->score, d, 0};
        for (int t = 0; t < T_IOU; t++) {
            const int64_t m = dtm[(size_t)t * D + d];
            const int ig = dt_ig[(size_t)t * D + d] || (m == 0 && out_rng);
            if (m != 0)
                x.flags |= 1u << t;
            if (ig)
                x.flags |= 1u << (T_IOU + t);
        }
        if (!ev_push(out, &x))
            return 0;
    }
    return 1;
}

/* Stable descending sort of entries by score (np.argsort(-scores, kind='mergesort')). */
static void sort_scores(const struct ev_det * v, size_t * idx, size_t * tmp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t x = lo, y = mid, o = lo;
            while (x < mid && y < hi)
                tmp[o++] = (v[idx[y]].score > v[idx[x]].score) ? idx[y++] : idx[x++];
            while (x < mid)
                tmp[o++] = idx[x++];
            while (y < hi)
                tmp[o++] = idx[y++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

/* accumulate() for one category, every area: precision (m = maxDets 100 only) and recall.
 * The areas' lists hold the same detections in the same order (only the flags differ), so
 * the score order and each maxDets selection are computed once. Recall for maxDets 1 and 10
 * needs only the final counts; for 100 the running counts give the precision envelope, and
 * recall at a position is computed where searchsorted looks (the same double division). */
static int accumulate(const struct ev_list * lists, int k, int K, const double * rec_thrs,
                      double * precision, double * recall)
{
    const size_t n = lists[0].n;
    size_t * order = malloc((n ? n : 1) * sizeof *order);
    size_t * tmp = malloc((n ? n : 1) * sizeof *tmp);
    size_t * sel = malloc((n ? n : 1) * sizeof *sel);
    double * tpv = malloc((n ? n : 1) * sizeof *tpv);
    double * pr = malloc((n ? n : 1) * sizeof *pr);
    if (!order || !tmp || !sel || !tpv || !pr) {
        free(order), free(tmp), free(sel), free(tpv), free(pr);
        return 0;
    }
    sort_scores(lists[0].v, order, tmp, n);
    for (int m = 0; m < M_DETS; m++) {
        size_t nd = 0; /* the first maxDet of each image, in score order */
        for (size_t j = 0; j < n; j++)
            if (lists[0].v[order[j]].rank < k_max_dets[m])
                sel[nd++] = order[j];
        for (int a = 0; a < A_AREA; a++) {
            const struct ev_list * l = &lists[a];
            if (l->npig == 0)
                continue; /* stays -1 */
            const double npig = (double)l->npig;
            if (m != M_DETS - 1) {
                int64_t tp[T_IOU] = {0};
                for (size_t j = 0; j < nd; j++) {
                    const uint32_t f = l->v[sel[j]].flags;
                    const uint32_t hit = f & ~(f >> T_IOU); /* matched and not ignored */
                    for (int t = 0; t < T_IOU; t++)
                        tp[t] += (hit >> t) & 1;
                }
                for (int t = 0; t < T_IOU; t++)
                    recall[(((size_t)t * K + k) * A_AREA + a) * M_DETS + m] =
                        nd ? (double)tp[t] / npig : 0.0;
                continue;
            }
            for (int t = 0; t < T_IOU; t++) {
                double tp = 0.0, fp = 0.0;
                for (size_t j = 0; j < nd; j++) {
                    const uint32_t f = l->v[sel[j]].flags;
                    const int matched = (f >> t) & 1, ignored = (f >> (T_IOU + t)) & 1;
                    tp += matched && !ignored;
                    fp += !matched && !ignored;
                    tpv[j] = tp;
                    pr[j] = tp / (fp + tp + DBL_EPSILON); /* np.spacing(1) */
                }
                recall[(((size_t)t * K + k) * A_AREA + a) * M_DETS + m] = nd ? tp / npig : 0.0;
                for (size_t j = nd; j-- > 1;)
                    if (pr[j] > pr[j - 1])
                        pr[j - 1] = pr[j];
                size_t lo = 0;
                for (int r = 0; r < R_REC; r++) {
                    /* searchsorted(rc, recThrs, side='left'), rc = tp / npig; thresholds
                     * ascend, so lo only grows */
                    size_t hi = nd;
                    while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (tpv[mid] / npig < rec_thrs[r])
                            lo = mid + 1;
                        else
                            hi = mid;
                    }
                    const double q = lo < nd ? pr[lo] : 0.0;
                    precision[(((size_t)a * T_IOU + t) * R_REC + r) * K + k] = q;
                }
            }
        }
    }
    free(order), free(tmp), free(sel), free(tpv), free(pr);
    return 1;
}

/* _summarize: mean of the entries > -1 (NumPy's pairwise sum), -1 when there are none. */
static double mean_valid(const double * v, size_t n, double * scratch)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > -1)
            scratch[c++] = v[i];
    return c ? q7_np_sum(scratch, c, 1) / (double)c : -1.0;
}

static void np_linspace(double start, double stop, int num, double * out)
{
    const double step = (stop - start) / (double)(num - 1);
    for (int i = 0; i < num; i++)
        out[i] = (double)i * step + start;
    out[num - 1] = stop;
}

enum q7_status q7_coco_eval(const struct q7_coco_gt * gt, const struct q7_coco_det * dets,
                            size_t n_dets, const int64_t * img_ids, int n_img_ids,
                            double stats[Q7_COCO_STATS])
{
    if (!gt || !stats || (n_dets && !dets) || n_img_ids < 0 || (n_img_ids && !img_ids))
        return q7_error_set(Q7_ERR_ARG, "cocoeval: bad arguments");
    for (int s = 0; s < Q7_COCO_STATS; s++)
        stats[s] = -1.0;
    enum q7_status st = Q7_OK;
    double iou_thrs[T_IOU], rec_thrs[R_REC];
    np_linspace(0.5, 0.95, T_IOU, iou_thrs);
    np_linspace(0.0, 1.0, R_REC, rec_thrs);

    /* sorted unique image and category ids */
    const int n_img_src = img_ids ? n_img_ids : gt->n_images;
    int64_t * imgs = malloc(((size_t)n_img_src + 1) * sizeof *imgs);
    int64_t * cats = malloc(((size_t)gt->n_cats + 1) * sizeof *cats);
    int64_t * gt_img_sorted = malloc(((size_t)gt->n_images + 1) * sizeof *gt_img_sorted);
    struct ev_ref * gref = malloc(((size_t)gt->n_anns + 1) * sizeof *gref);
    struct ev_ref * dref = malloc((n_dets + 1) * sizeof *dref);
    double *precision = NULL, *recall = NULL, *scratch = NULL;
    struct ev_list lists[A_AREA] = {{0}};
    struct ev_img e = {0};
    int *gtind = NULL, *gt_ig = NULL, *dt_ig = NULL;
    int64_t *gtm = NULL, *dtm = NULL;
    if (!imgs || !cats || !gt_img_sorted || !gref || !dref)
        goto oom;
    for (int i = 0; i < n_img_src; i++)
        imgs[i] = img_ids ? img_ids[i] : gt->images[i].id;
    qsort(imgs, (size_t)n_img_src, sizeof *imgs, cmp_i64);
    int I = 0;
    for (int i = 0; i < n_img_src; i++)
        if (I == 0 || imgs[i] != imgs[I - 1])
            imgs[I++] = imgs[i];
    memcpy(cats, gt->cat_ids, (size_t)gt->n_cats * sizeof *cats);
    qsort(cats, (size_t)gt->n_cats, sizeof *cats, cmp_i64);
    int K = 0;
    for (int k = 0; k < gt->n_cats; k++)
        if (K == 0 || cats[k] != cats[K - 1])
            cats[K++] = cats[k];
    for (int i = 0; i < gt->n_images; i++)
        gt_img_sorted[i] = gt->images[i].id;
    qsort(gt_img_sorted, (size_t)gt->n_images, sizeof *gt_img_sorted, cmp_i64);

    /* loadRes: every result must name a ground-truth image */
    size_t nd_ref = 0, ng_ref = 0;
    for (size_t j = 0; j < n_dets; j++) {
        const struct q7_coco_det * d = &dets[j];
        if (find_id(gt_img_sorted, gt->n_images, d->image_id) < 0) {
            st = q7_error_set(Q7_ERR_FORMAT,
                              "cocoeval: result %zu names image %lld, which the ground truth "
                              "does not have",
                              j, (long long)d->image_id);
            goto done;
        }
        if (!isfinite(d->score) || !isfinite(d->bbox[0]) || !isfinite(d->bbox[1]) ||
            !isfinite(d->bbox[2]) || !isfinite(d->bbox[3])) {
            st = q7_error_set(Q7_ERR_ARG, "cocoeval: result %zu has a non-finite value", j);
            goto done;
        }
        const int i = find_id(imgs, I, d->image_id), k = find_id(cats, K, d->category_id);
        if (i >= 0 && k >= 0)
            dref[nd_ref++] = (struct ev_ref){k, i, d->score, j};
    }
    for (int j = 0; j < gt->n_anns; j++) {
        const int i = find_id(imgs, I, gt->anns[j].image_id);
        const int k = find_id(cats, K, gt->anns[j].category_id);
        if (i >= 0 && k >= 0)
            gref[ng_ref++] = (struct ev_ref){k, i, 0.0, (size_t)j};
    }
    {
        const size_t big = ng_ref > nd_ref ? ng_ref : nd_ref;
        struct ev_ref * tmp = malloc((big + 1) * sizeof *tmp);
        const int ok = tmp && sort_refs(gref, ng_ref, K, I, tmp) &&
                       sort_refs(dref, nd_ref, K, I, tmp);
        free(tmp);
        if (!ok)
            goto oom;
    }

    /* scratch sized for the largest (image, category) group */
    size_t max_g = 0, max_d = 0;
    for (size_t a = 0, b; a < ng_ref; a = b) {
        for (b = a; b < ng_ref && gref[b].k == gref[a].k && gref[b].i == gref[a].i; b++)
            ;
        max_g = b - a > max_g ? b - a : max_g;
    }
    for (size_t a = 0, b; a < nd_ref; a = b) {
        for (b = a; b < nd_ref && dref[b].k == dref[a].k && dref[b].i == dref[a].i; b++)
            ;
        max_d = b - a > max_d ? b - a : max_d;
    }
    const size_t pr_n = (size_t)A_AREA * T_IOU * R_REC * (size_t)K;
    const size_t rc_n = (size_t)T_IOU * (size_t)K * A_AREA * M_DETS;
    precision = malloc((pr_n + 1) * sizeof *precision);
    recall = malloc((rc_n + 1) * sizeof *recall);
    scratch = malloc((pr_n + rc_n + 1) * sizeof *scratch);
    e.gt = malloc((max_g + 1) * sizeof *e.gt);
    e.dt = malloc((max_d + 1) * sizeof *e.dt);
    e.dt_id = malloc((max_d + 1) * sizeof *e.dt_id);
    e.ious = malloc(((max_d < MAX_DET ? max_d : MAX_DET) * max_g + 1) * sizeof *e.ious);
    gtind = malloc((max_g + 1) * sizeof *gtind);
    gt_ig = malloc((max_g + 1) * sizeof *gt_ig);
    gtm = malloc((T_IOU * max_g + 1) * sizeof *gtm);
    dtm = malloc((T_IOU * MAX_DET + 1) * sizeof *dtm);
    dt_ig = malloc((T_IOU * MAX_DET + 1) * sizeof *dt_ig);
    if (!precision || !recall || !scratch || !e.gt || !e.dt || !e.dt_id || !e.ious || !gtind ||
        !gt_ig || !gtm || !dtm || !dt_ig)
        goto oom;
    for (size_t x = 0; x < pr_n; x++)
        precision[x] = -1.0;
    for (size_t x = 0; x < rc_n; x++)
        recall[x] = -1.0;

    size_t ga = 0, da = 0; /* cursors into gref / dref */
    for (int k = 0; k < K; k++) {
        for (int a = 0; a < A_AREA; a++) {
            lists[a].n = 0;
            lists[a].npig = 0;
        }
        for (;;) {
            /* next image (in sorted order) that has ground truth or detections of k */
            int i = -1;
            if (ga < ng_ref && gref[ga].k == k)
                i = gref[ga].i;
            if (da < nd_ref && dref[da].k == k && (i < 0 || dref[da].i < i))
                i = dref[da].i;
            if (i < 0)
                break;
            e.G = 0;
            while (ga < ng_ref && gref[ga].k == k && gref[ga].i == i)
                e.gt[e.G++] = &gt->anns[gref[ga++].idx];
            size_t nd = 0;
            while (da < nd_ref && dref[da].k == k && dref[da].i == i)
                e.dt[nd++] = &dets[dref[da++].idx];
            /* computeIoU / evaluateImg: score order (stable: dref is sorted so), at most
             * maxDets[-1] */
            e.D = nd < MAX_DET ? (int)nd : MAX_DET;
            for (int d = 0; d < e.D; d++) {
                e.dt_id[d] = (size_t)(e.dt[d] - dets) + 1;
                for (int g = 0; g < e.G; g++)
                    e.ious[(size_t)d * e.G + g] =
                        bb_iou(e.dt[d]->bbox, e.gt[g]->bbox, e.gt[g]->iscrowd);
            }
            for (int a = 0; a < A_AREA; a++)
                if (!evaluate_img(&e, a, iou_thrs, &lists[a], gtind, gt_ig, gtm, dtm, dt_ig))
                    goto oom;
        }
        if (!accumulate(lists, k, K, rec_thrs, precision, recall))
            goto oom;
    }

    /* summarize(): AP over (iou, recall, category), AR over (iou, category) */
    const size_t per_a = (size_t)T_IOU * R_REC * K;
    double * sel = scratch + pr_n; /* gathered values, then compacted in mean_valid */
    for (int s = 0; s < 6; s++) {
        const int a = s < 3 ? 0 : s - 2;
        const double * src = precision + (size_t)a * per_a;
        if (s == 0 || s >= 3) {
            stats[s] = mean_valid(src, per_a, scratch);
        } else {
            const double thr = s == 1 ? 0.5 : 0.75; /* np.where(iouThr == p.iouThrs) */
            size_t c = 0;
            for (int t = 0; t < T_IOU; t++)
                if (iou_thrs[t] == thr)
                    for (size_t x = 0; x < (size_t)R_REC * K; x++)
                        sel[c++] = src[(size_t)t * R_REC * K + x];
            stats[s] = mean_valid(sel, c, scratch);
        }
    }
    for (int s = 6; s < 12; s++) {
        const int a = s < 9 ? 0 : s - 8, m = s < 9 ? s - 6 : M_DETS - 1;
        size_t c = 0;
        for (int t = 0; t < T_IOU; t++)
            for (int k = 0; k < K; k++)
                sel[c++] = recall[(((size_t)t * K + k) * A_AREA + a) * M_DETS + m];
        stats[s] = mean_valid(sel, c, scratch);
    }
    goto done;
oom:
    st = q7_error_set(Q7_ERR_OOM, "cocoeval: out of memory");
done:
    free(imgs);
    free(cats);
    free(gt_img_sorted);
    free(gref);
    free(dref);
    free(precision);
    free(recall);
    free(scratch);
    for (int a = 0; a < A_AREA; a++)
        free(lists[a].v);
    free(e.gt);
    free(e.dt);
    free(e.dt_id);
    free(e.ious);
    free(gtind);
    free(gt_ig);
    free(gtm);
    free(dtm);
    free(dt_ig);
    return st;
}

int q7_coco_stats_format(const double stats[Q7_COCO_STATS], char * buf, size_t cap)
{
    static const int ap[12] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    static const char * const iou[12] = {"0.50:0.95", "0.50",      "0.75",      "0.50:0.95",
                                         "0.50:0.95", "0.50:0.95", "0.50:0.95", "0.50:0.95",
                                         "0.50:0.95", "0.50:0.95", "0.50:0.95", "0.50:0.95"};
    static const int area[12] = {0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 2, 3};
    static const int mdet[12] = {100, 100, 100, 100, 100, 100, 1, 10, 100, 100, 100, 100};
    int total = 0;
    for (int s = 0; s < Q7_COCO_STATS; s++) {
        const size_t off = (size_t)total < cap ? (size_t)total : cap;
        int n = snprintf(buf ? buf + off : NULL, buf ? cap - off : 0,
                         " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                         ap[s] ? "Average Precision" : "Average Recall", ap[s] ? "(AP)" : "(AR)",
                         iou[s], k_area_lbl[area[s]], mdet[s], stats[s]);
        if (n < 0)
            return n;
        total += n;
    }
    return total;
}
