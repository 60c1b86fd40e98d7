/* COCO JSON for evaluation: the instances file reader, the results reader and test.py's
 * results writer (save_json), and yolov7's 80 <-> 91 category table. Declared in
 * eval/cocoeval.h. */
#include "eval/cocoeval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_INT_MAX 9007199254740992.0 /* 2^53: integers a double holds exactly */

/* utils/general.py coco80_to_coco91_class() */
static const int k_coco91[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17,
                                 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36,
                                 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
                                 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73,
                                 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

int q7_coco80_to_91(int cls80)
{
    return (cls80 >= 0 && cls80 < 80) ? k_coco91[cls80] : -1;
}

int q7_coco91_to_80(int64_t cat91)
{
    for (int i = 0; i < 80; i++)
        if (k_coco91[i] == cat91)
            return i;
    return -1;
}

/* ================================================================ JSON reading */

/* 0: ok, 1: missing, 2: wrong type or not an integer */
static int get_int(const cJSON * o, const char * key, int64_t * v)
{
    const cJSON * it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it)
        return 1;
    if (cJSON_IsBool(it)) {
        *v = cJSON_IsTrue(it);
        return 0;
    }
    if (!cJSON_IsNumber(it))
        return 2;
    const double d = it->valuedouble;
    if (!(fabs(d) <= JSON_INT_MAX) || d != floor(d))
        return 2;
    *v = (int64_t)d;
    return 0;
}

static int get_num(const cJSON * o, const char * key, double * v)
{
    const cJSON * it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it)
        return 1;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return 2;
    *v = it->valuedouble;
    return 0;
}

static int get_bbox(const cJSON * o, double bb[4])
{
    const cJSON * it = cJSON_GetObjectItemCaseSensitive(o, "bbox");
    if (!it)
        return 1;
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 4)
        return 2;
    int k = 0;
    const cJSON * e;
    cJSON_ArrayForEach(e, it)
    {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return 2;
        bb[k++] = e->valuedouble;
    }
    return 0;
}

static enum q7_status field_error(int rc, const char * what, const char * arr, int idx,
                                  const char * key)
{
    return q7_error_set(Q7_ERR_FORMAT, "%s: %s[%d].%s is %s", what, arr, idx, key,
                        rc == 1 ? "missing" : "not a valid number");
}

static enum q7_status parse_json(const char * text, size_t len, const char * what, cJSON ** out)
{
    *out = cJSON_ParseWithLength(text, len);
    if (!*out) {
        const char * at = cJSON_GetErrorPtr();
        long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
        return q7_error_set(Q7_ERR_FORMAT, "%s: malformed JSON near byte %ld", what, off);
    }
    return Q7_OK;
}

static int cmp_i64(const void * pa, const void * pb)
{
    const int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

/* Sorts a copy of ids and reports the first duplicate (1) or none (0). -1 on OOM. */
static int find_duplicate(const int64_t * ids, size_t n, int64_t * dup)
{
    if (n < 2)
        return 0;
    int64_t * s = malloc(n * sizeof *s);
    if (!s)
        return -1;
    memcpy(s, ids, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_i64);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++)
        if (s[i] == s[i - 1]) {
            *dup = s[i];
            found = 1;
        }
    free(s);
    return found;
}

static const cJSON * opt_array(const cJSON * root, const char * key, const char * what,
                               enum q7_status * st)
{
    const cJSON * a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (a && !cJSON_IsArray(a)) {
        *st = q7_error_set(Q7_ERR_FORMAT, "%s: \"%s\" is not a list", what, key);
        return NULL;
    }
    return a;
}

static enum q7_status gt_fill(const cJSON * root, const char * what, struct q7_coco_gt * gt)
{
    enum q7_status st = Q7_OK;
    const cJSON * imgs = opt_array(root, "images", what, &st);
    const cJSON * anns = st == Q7_OK ? opt_array(root, "annotations", what, &st) : NULL;
    const cJSON * cats = st == Q7_OK ? opt_array(root, "categories", what, &st) : NULL;
    if (st != Q7_OK)
        return st;
    gt->n_images = imgs ? cJSON_GetArraySize(imgs) : 0;
    gt->n_anns = anns ? cJSON_GetArraySize(anns) : 0;
    gt->n_cats = cats ? cJSON_GetArraySize(cats) : 0;
    gt->images = q7_arena_alloc(gt->arena, (size_t)gt->n_images * sizeof *gt->images + 1);
    gt->anns = q7_arena_alloc(gt->arena, (size_t)gt->n_anns * sizeof *gt->anns + 1);
    gt->cat_ids = q7_arena_alloc(gt->arena, (size_t)gt->n_cats * sizeof *gt->cat_ids + 1);
    if (!gt->images || !gt->anns || !gt->cat_ids)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);

    int i = 0, rc;
    const cJSON * e;
    cJSON_ArrayForEach(e, imgs)
    {
        struct q7_coco_image * im = &gt->images[i];
        int64_t v;
        if (!cJSON_IsObject(e))
            return q7_error_set(Q7_ERR_FORMAT, "%s: images[%d] is not an object", what, i);
        if ((rc = get_int(e, "id", &im->id)))
            return field_error(rc, what, "images", i, "id");
        const cJSON * fn = cJSON_GetObjectItemCaseSensitive(e, "file_name");
        im->file_name = q7_arena_strdup(gt->arena, cJSON_IsString(fn) ? fn->valuestring : "");
        if (!im->file_name)
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
        if ((rc = get_int(e, "width", &v)) == 0 && v >= 0 && v <= INT32_MAX)
            im->width = (int)v;
        else if (rc != 1)
            return field_error(2, what, "images", i, "width");
        if ((rc = get_int(e, "height", &v)) == 0 && v >= 0 && v <= INT32_MAX)
            im->height = (int)v;
        else if (rc != 1)
            return field_error(2, what, "images", i, "height");
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(e, anns)
    {
        struct q7_coco_ann * a = &gt->anns[i];
        int64_t crowd = 0;
        if (!cJSON_IsObject(e))
            return q7_error_set(Q7_ERR_FORMAT, "%s: annotations[%d] is not an object", what, i);
        if ((rc = get_int(e, "id", &a->id)))
            return field_error(rc, what, "annotations", i, "id");
        if ((rc = get_int(e, "image_id", &a->image_id)))
            return field_error(rc, what, "annotations", i, "image_id");
        if ((rc = get_int(e, "category_id", &a->category_id)))
            return field_error(rc, what, "annotations", i, "category_id");
        if ((rc = get_bbox(e, a->bbox)))
            return field_error(rc, what, "annotations", i, "bbox");
        if ((rc = get_num(e, "area", &a->area)) == 1)
            a->area = a->bbox[2] * a->bbox[3];
        else if (rc)
            return field_error(rc, what, "annotations", i, "area");
        if ((rc = get_int(e, "iscrowd", &crowd)) == 2)
            return field_error(rc, what, "annotations", i, "iscrowd");
        a->iscrowd = crowd != 0;
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(e, cats)
    {
        if (!cJSON_IsObject(e))
            return q7_error_set(Q7_ERR_FORMAT, "%s: categories[%d] is not an object", what, i);
        if ((rc = get_int(e, "id", &gt->cat_ids[i])))
            return field_error(rc, what, "categories", i, "id");
        i++;
    }

    /* duplicate ids: pycocotools' index dicts would silently keep the last one */
    int64_t dup = 0;
    int64_t * ids = malloc(((size_t)gt->n_images + (size_t)gt->n_anns + 1) * sizeof *ids);
    if (!ids)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
    for (int k = 0; k < gt->n_images; k++)
        ids[k] = gt->images[k].id;
    int d1 = find_duplicate(ids, (size_t)gt->n_images, &dup);
    if (d1 == 1) {
        free(ids);
        return q7_error_set(Q7_ERR_FORMAT, "%s: image id %lld appears twice", what, (long long)dup);
    }
    for (int k = 0; k < gt->n_anns; k++)
        ids[k] = gt->anns[k].id;
    int d2 = d1 < 0 ? -1 : find_duplicate(ids, (size_t)gt->n_anns, &dup);
    free(ids);
    if (d1 < 0 || d2 < 0)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
    if (d2 == 1)
        return q7_error_set(Q7_ERR_FORMAT, "%s: annotation id %lld appears twice", what,
                            (long long)dup);
    return Q7_OK;
}

enum q7_status q7_coco_gt_parse(const char * text, size_t len, const char * what,
                                struct q7_coco_gt ** out)
{
    if (!out || (!text && len))
        return q7_error_set(Q7_ERR_ARG, "coco: NULL argument");
    *out = NULL;
    what = what ? what : "instances json";
    cJSON * root;
    enum q7_status st = parse_json(text ? text : "", len, what, &root);
    if (st != Q7_OK)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return q7_error_set(Q7_ERR_FORMAT, "%s: not a JSON object", what);
    }
    struct q7_coco_gt * gt = calloc(1, sizeof *gt);
    if (!gt || !(gt->arena = q7_arena_create(1 << 20))) {
        free(gt);
        cJSON_Delete(root);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
    }
    st = gt_fill(root, what, gt);
    cJSON_Delete(root);
    if (st != Q7_OK) {
        q7_coco_gt_free(gt);
        return st;
    }
    *out = gt;
    return Q7_OK;
}

enum q7_status q7_coco_gt_load(const char * path, struct q7_coco_gt ** out)
{
    char * text = NULL;
    size_t len = 0;
    if (!out)
        return q7_error_set(Q7_ERR_ARG, "coco: NULL argument");
    *out = NULL;
    enum q7_status st = q7_file_read_all(path, Q7_COCO_MAX_JSON_BYTES, &text, &len);
    if (st != Q7_OK)
        return st;
    st = q7_coco_gt_parse(text, len, path, out);
    free(text);
    return st;
}

void q7_coco_gt_free(struct q7_coco_gt * gt)
{
    if (!gt)
        return;
    q7_arena_free(gt->arena);
    free(gt);
}

enum q7_status q7_coco_dets_parse(const char * text, size_t len, const char * what,
                                  struct q7_coco_det ** dets, size_t * n)
{
    if (!dets || !n || (!text && len))
        return q7_error_set(Q7_ERR_ARG, "coco: NULL argument");
    *dets = NULL;
    *n = 0;
    what = what ? what : "results json";
    cJSON * root;
    enum q7_status st = parse_json(text ? text : "", len, what, &root);
    if (st != Q7_OK)
        return st;
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return q7_error_set(Q7_ERR_FORMAT, "%s: results must be a JSON list", what);
    }
    const int cnt = cJSON_GetArraySize(root);
    struct q7_coco_det * d = cnt ? calloc((size_t)cnt, sizeof *d) : NULL;
    if (cnt && !d) {
        cJSON_Delete(root);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory for %d results", what, cnt);
    }
    int i = 0, rc = 0;
    const cJSON * e;
    cJSON_ArrayForEach(e, root)
    {
        const char * key = NULL;
        if (!cJSON_IsObject(e)) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: result %d is not an object", what, i);
            break;
        }
        if ((rc = get_int(e, "image_id", &d[i].image_id)))
            key = "image_id";
        else if ((rc = get_int(e, "category_id", &d[i].category_id)))
            key = "category_id";
        else if ((rc = get_bbox(e, d[i].bbox)))
            key = "bbox";
        else if ((rc = get_num(e, "score", &d[i].score)))
            key = "score";
        if (key) {
            st = field_error(rc, what, "results", i, key);
            break;
        }
        i++;
    }
    cJSON_Delete(root);
    if (st != Q7_OK) {
        free(d);
        return st;
    }
    *dets = d;
    *n = (size_t)cnt;
    return Q7_OK;
}

enum q7_status q7_coco_dets_load(const char * path, struct q7_coco_det ** dets, size_t * n)
{
    char * text = NULL;
    size_t len = 0;
    if (!dets || !n)
        return q7_error_set(Q7_ERR_ARG, "coco: NULL argument");
    *dets = NULL;
    *n = 0;
    enum q7_status st = q7_file_read_all(path, Q7_COCO_MAX_JSON_BYTES, &text, &len);
    if (st != Q7_OK)
        return st;
    st = q7_coco_dets_parse(text, len, path, dets, n);
    free(text);
    return st;
}

/* ================================================================ results writer */

/* Python's round(x, nd): the correctly rounded decimal (ties to even on the exact binary
 * value, as glibc's printf and Python's dtoa both do), read back. */
static double py_round(double x, int nd)
{
    char buf[400];
    if (!isfinite(x) || fabs(x) >= 1e300)
        return x;
    snprintf(buf, sizeof buf, "%.*f", nd, x);
    return strtod(buf, NULL);
}

void q7_coco_det_from_pred(const float * pred, int64_t image_id, int coco91,
                           struct q7_coco_det * out)
{
    /* xyxy2xywh, then box[:, :2] -= box[:, 2:] / 2, in float64: the fixtures' save_json rows
     * are computed so (test.py itself does it on float32 tensors, which moves about 1% of the
     * rounded values by 0.001 px; the COCO stats of the fixtures do not change). */
    const double x1 = pred[0], y1 = pred[1], x2 = pred[2], y2 = pred[3];
    const double cx = (x1 + x2) / 2.0, cy = (y1 + y2) / 2.0;
    const double w = x2 - x1, h = y2 - y1;
    const double x = cx - w / 2.0, y = cy - h / 2.0;
    const int cls = (int)pred[5];
    out->image_id = image_id;
    out->category_id = coco91 ? q7_coco80_to_91(cls) : cls;
    out->bbox[0] = py_round(x, 3);
    out->bbox[1] = py_round(y, 3);
    out->bbox[2] = py_round(w, 3);
    out->bbox[3] = py_round(h, 3);
    out->score = py_round((double)pred[4], 5);
}

/* Shortest "%.*g" that reads back to the same double (what Python's repr prints). */
static void fmt_double(char * buf, size_t cap, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

struct strbuf {
    char * s;
    size_t len, cap;
};

static int sb_append(struct strbuf * b, const char * s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1)
            if (!q7_size_mul(cap, 2, &cap))
                return 0;
        char * ns = realloc(b->s, cap);
        if (!ns)
            return 0;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 1;
}

enum q7_status q7_coco_dets_write(const char * path, const struct q7_coco_det * dets, size_t n)
{
    if (!path || (n && !dets))
        return q7_error_set(Q7_ERR_ARG, "coco: NULL argument");
    struct strbuf b = {0};
    int ok = sb_append(&b, "[", 1);
    for (size_t i = 0; i < n && ok; i++) {
        const struct q7_coco_det * d = &dets[i];
        for (int k = 0; k < 4; k++)
            if (!isfinite(d->bbox[k]))
                ok = 0;
        if (!ok || !isfinite(d->score)) {
            free(b.s);
            return q7_error_set(Q7_ERR_ARG, "%s: detection %zu has a non-finite value", path, i);
        }
        char num[5][40], line[400];
        for (int k = 0; k < 4; k++)
            fmt_double(num[k], sizeof num[k], d->bbox[k]);
        fmt_double(num[4], sizeof num[4], d->score);
        int len = snprintf(line, sizeof line,
                           "%s{\"image_id\": %lld, \"category_id\": %lld, \"bbox\": [%s, %s, %s, "
                           "%s], \"score\": %s}",
                           i ? ", " : "", (long long)d->image_id, (long long)d->category_id, num[0],
                           num[1], num[2], num[3], num[4]);
        ok = len > 0 && (size_t)len < sizeof line && sb_append(&b, line, (size_t)len);
    }
    ok = ok && sb_append(&b, "]\n", 2);
    if (!ok) {
        free(b.s);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory writing %zu detections", path, n);
    }
    enum q7_status st = q7_file_write_atomic(path, b.s, b.len);
    free(b.s);
    return st;
}
