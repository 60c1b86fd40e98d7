/* Evaluation datasets: image lists, folders, YOLO label files and COCO instances files,
 * following yolov7's LoadImagesAndLabels.__init__ / cache_labels (utils/datasets.py).
 *
 * Differences from yolov7, all on input it mishandles:
 *   - list lines are trimmed of surrounding whitespace (yolov7 keeps it and then drops the
 *     line because "jpg " is not an image format), and only a leading "./" is replaced by the
 *     list's folder (yolov7's str.replace replaces every "./" in the line);
 *   - label values must be finite and the class a whole number (yolov7 accepts "inf" as a
 *     class, and 2.5);
 *   - labels.cache files are neither read nor written. */
#include "eval/dataset.h"
#include "eval/cocoeval.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LABEL_MAX_BYTES ((size_t)16 << 20) /* one label file */
#define LABEL_MAX_CLASS 16777216.0f /* 2^24: every class below is an exact float */
#define SEGMENT_MIN_FIELDS 9               /* a row with more than 8 values is a polygon */

static const char * const k_img_formats[] = {"bmp",  "jpg", "jpeg", "png", "tif",
                                             "tiff", "dng", "webp", "mpo"};

struct q7_dataset_params q7_dataset_params_default(void)
{
    struct q7_dataset_params p;
    memset(&p, 0, sizeof p);
    p.nc = 0;
    p.check_images = 1;
    p.coco91_to_80 = 1;
    return p;
}

/* ---------------------------------------------------------------- paths */

/* x.split('.')[-1] */
static const char * path_ext(const char * p)
{
    const char * dot = strrchr(p, '.');
    return dot ? dot + 1 : NULL;
}

static int is_image_path(const char * p)
{
    const char * e = path_ext(p);
    if (!e)
        return 0;
    for (size_t i = 0; i < sizeof k_img_formats / sizeof k_img_formats[0]; i++)
        if (strcasecmp(e, k_img_formats[i]) == 0)
            return 1;
    return 0;
}

static const char * path_base(const char * p)
{
    const char * s = strrchr(p, '/');
    return s ? s + 1 : p;
}

enum q7_status q7_dataset_label_path(const char * image_path, char * buf, size_t cap)
{
    static const char sa[] = "/images/", sb[] = "/labels/";
    const char * ext = path_ext(image_path);
    if (!ext)
        return q7_error_set(Q7_ERR_ARG, "%s: image path has no extension", image_path);
    const size_t stem_len = (size_t)(ext - image_path); /* up to and including the '.' */
    if (stem_len + 4 > cap)
        return q7_error_set(Q7_ERR_LIMIT, "%s: label path too long", image_path);
    memcpy(buf, image_path, stem_len);
    memcpy(buf + stem_len, "txt", 4);
    /* x.replace('/images/', '/labels/', 1): the first occurrence, as yolov7 does */
    char * hit = strstr(buf, sa);
    if (hit && hit < buf + stem_len)
        memcpy(hit, sb, sizeof sb - 1);
    return Q7_OK;
}

/* ---------------------------------------------------------------- path lists */

struct path_list {
    char ** v;
    size_t n, cap;
};

static void path_list_free(struct path_list * l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static enum q7_status path_list_add(struct path_list * l, const char * a, size_t na, const char * b,
                                    size_t nb)
{
    if (l->n >= Q7_DATASET_MAX_IMAGES)
        return q7_error_set(Q7_ERR_LIMIT, "dataset: more than %d images", Q7_DATASET_MAX_IMAGES);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char ** nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
        l->v = nv;
        l->cap = cap;
    }
    char * s = malloc(na + nb + 1);
    if (!s)
        return q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    s[na + nb] = '\0';
    l->v[l->n++] = s;
    return Q7_OK;
}

/* glob(p / '**' / '*.*', recursive=True), image formats only (hidden names skipped). */
static enum q7_status scan_dir(const char * dir, int depth, struct path_list * l)
{
    if (depth > Q7_DATASET_MAX_DEPTH)
        return q7_error_set(Q7_ERR_LIMIT, "%s: folders nested deeper than %d", dir,
                            Q7_DATASET_MAX_DEPTH);
    DIR * d = opendir(dir);
    if (!d)
        return q7_error_set(Q7_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    enum q7_status st = Q7_OK;
    struct dirent * de;
    const size_t nd = strlen(dir);
    char * child = NULL;
    while (st == Q7_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        const size_t nn = strlen(de->d_name);
        free(child);
        child = malloc(nd + nn + 2);
        if (!child) {
            st = q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
            break;
        }
        snprintf(child, nd + nn + 2, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(child, &sb) != 0) {
            /* a dangling link: glob lists it and yolov7 reports it as it reads it; so do we
             * (the loader names it once) */
            if (strchr(de->d_name, '.') && is_image_path(de->d_name))
                st = path_list_add(l, child, strlen(child), "", 0);
            continue;
        }
        if (S_ISDIR(sb.st_mode))
            st = scan_dir(child, depth + 1, l);
        else if (strchr(de->d_name, '.') && is_image_path(de->d_name))
            st = path_list_add(l, child, strlen(child), "", 0);
    }
    free(child);
    closedir(d);
    return st;
}

/* A list file: one path per line; "./x" is x in the list file's folder. */
static enum q7_status read_list(const char * path, struct path_list * l)
{
    char * text = NULL;
    size_t len = 0;
    enum q7_status st = q7_file_read_all(path, Q7_DATASET_MAX_LIST_BYTES, &text, &len);
    if (st != Q7_OK)
        return st;
    /* str(Path(path).parent) + os.sep */
    const char * slash = strrchr(path, '/');
    const char * parent = slash ? path : ".";
    size_t np = slash ? (size_t)(slash - path) : 1;
    if (slash && np == 0)
        np = 0; /* "/val.txt": parent "/" */
    size_t line_no = 0;
    for (size_t pos = 0; pos < len && st == Q7_OK;) {
        size_t end = pos;
        while (end < len && text[end] != '\n' && text[end] != '\r')
            end++;
        line_no++;
        size_t a = pos, b = end;
        while (a < b && isspace((unsigned char)text[a]))
            a++;
        while (b > a && isspace((unsigned char)text[b - 1]))
            b--;
        pos = end + 1;
        if (b - a > Q7_DATASET_MAX_LINE) {
            st = q7_error_set(Q7_ERR_LIMIT, "%s: line %zu is longer than %d bytes", path, line_no,
                              Q7_DATASET_MAX_LINE);
            break;
        }
        char line[Q7_DATASET_MAX_LINE + 1];
        memcpy(line, text + a, b - a);
        line[b - a] = '\0';
        if (memchr(line, '\0', b - a) || !is_image_path(line))
            continue; /* yolov7 keeps only image formats (this also drops blank lines) */
        if (strncmp(line, "./", 2) == 0) {
            char pre[Q7_DATASET_MAX_LINE + 2];
            if (np + 1 > sizeof pre) {
                st = q7_error_set(Q7_ERR_LIMIT, "%s: path too long", path);
                break;
            }
            memcpy(pre, parent, np);
            pre[np] = '/';
            st = path_list_add(l, pre, np + 1, line + 2, strlen(line + 2));
        } else {
            st = path_list_add(l, line, strlen(line), "", 0);
        }
    }
    free(text);
    return st;
}

static int cmp_str(const void * a, const void * b)
{
    return strcmp(*(char * const *)a, *(char * const *)b);
}

/* The image paths of a list file, folder or image: sorted, without duplicates. */
static enum q7_status collect_images(const char * path, struct path_list * l)
{
    struct stat sb;
    if (!path || stat(path, &sb) != 0)
        return q7_error_set(Q7_ERR_IO, "%s: does not exist", path ? path : "(null)");
    enum q7_status st;
    if (S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            n--;
        char * root = malloc(n + 1);
        if (!root)
            return q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
        memcpy(root, path, n);
        root[n] = '\0';
        st = scan_dir(root, 0, l);
        free(root);
    } else if (is_image_path(path)) {
        st = path_list_add(l, path, strlen(path), "", 0);
    } else {
        st = read_list(path, l);
    }
    if (st != Q7_OK)
        return st;
    if (l->n == 0)
        return q7_error_set(Q7_ERR_NOT_FOUND, "%s: no images found", path);
    qsort(l->v, l->n, sizeof *l->v, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (k > 0 && strcmp(l->v[i], l->v[k - 1]) == 0)
            free(l->v[i]);
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
    return Q7_OK;
}

/* ---------------------------------------------------------------- labels */

/* Python float() on a token, then np.float32. 0 when the token is not a number. */
static int parse_value(const char * tok, size_t n, float * out)
{
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, tok, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 'x' || buf[i] == 'X' || buf[i] == '(')
            return 0; /* strtod's hex and nan(...) forms, which Python rejects */
    char * end;
    errno = 0;
    const double v = strtod(buf, &end);
    if (end != buf + n)
        return 0;
    *out = (float)v;
    return 1;
}

/* Splits [s, e) on whitespace; returns the field count (stops counting past cap). */
static int split_fields(const char * s, const char * e, const char ** tok, size_t * len, int cap)
{
    int n = 0;
    while (s < e) {
        while (s < e && isspace((unsigned char)*s))
            s++;
        if (s >= e)
            break;
        const char * t = s;
        while (s < e && !isspace((unsigned char)*s))
            s++;
        if (n < cap) {
            tok[n] = t;
            len[n] = (size_t)(s - t);
        }
        n++;
    }
    return n;
}

static int cmp_row(const void * a, const void * b)
{
    return memcmp(a, b, Q7_LABEL_COLS * sizeof(float));
}

#define MAX_FIELDS (Q7_DATASET_MAX_LINE / 2 + 1)

enum q7_status q7_dataset_parse_labels(const char * text, size_t len, const char * what, int nc,
                                       float ** labels, int * n_out)
{
    if (!labels || !n_out || (!text && len))
        return q7_error_set(Q7_ERR_ARG, "labels: NULL argument");
    *labels = NULL;
    *n_out = 0;
    what = what ? what : "labels";
    /* f.read().strip().splitlines() */
    const char *s = text, *e = text + len;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (s == e)
        return Q7_OK;
    if (memchr(s, '\0', (size_t)(e - s)))
        return q7_error_set(Q7_ERR_FORMAT, "%s: contains a NUL byte", what);

    /* first pass: count rows and see whether any row is a polygon */
    int rows = 0, segments = 0;
    for (const char * p = s; p < e;) {
        const char * q = p;
        while (q < e && *q != '\n' && *q != '\r')
            q++;
        if (q - p > Q7_DATASET_MAX_LINE)
            return q7_error_set(Q7_ERR_LIMIT, "%s: line %d is longer than %d bytes", what, rows + 1,
                                Q7_DATASET_MAX_LINE);
        if (++rows > Q7_DATASET_MAX_LABELS)
            return q7_error_set(Q7_ERR_LIMIT, "%s: more than %d labels", what,
                                Q7_DATASET_MAX_LABELS);
        if (split_fields(p, q, NULL, NULL, 0) >= SEGMENT_MIN_FIELDS)
            segments = 1;
        p = (q < e && *q == '\r' && q + 1 < e && q[1] == '\n') ? q + 2 : q + 1;
    }
    float * l = malloc((size_t)rows * Q7_LABEL_COLS * sizeof *l);
    if (!l)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
    enum q7_status st = Q7_OK;
    int r = 0;
    size_t * tl = malloc(MAX_FIELDS * sizeof *tl);
    const char ** tk = malloc(MAX_FIELDS * sizeof *tk);
    if (!tl || !tk) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
        goto done;
    }
    for (const char * p = s; p < e && st == Q7_OK; r++) {
        const char * q = p;
        while (q < e && *q != '\n' && *q != '\r')
            q++;
        const int nf = split_fields(p, q, tk, tl, MAX_FIELDS);
        float * row = l + (size_t)r * Q7_LABEL_COLS;
        p = (q < e && *q == '\r' && q + 1 < e && q[1] == '\n') ? q + 2 : q + 1;
        if (!segments) {
            if (nf != Q7_LABEL_COLS) {
                st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: labels require 5 columns each", what,
                                  r + 1);
                break;
            }
            for (int k = 0; k < Q7_LABEL_COLS && st == Q7_OK; k++)
                if (!parse_value(tk[k], tl[k], &row[k]))
                    st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: '%.*s' is not a number", what,
                                      r + 1, (int)(tl[k] < 40 ? tl[k] : 40), tk[k]);
            continue;
        }
        /* polygon: class x1 y1 x2 y2 ... -> its extent -> xyxy2xywh, in float32 */
        if (nf < 3 || (nf - 1) % 2 != 0) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: a polygon needs x y pairs", what, r + 1);
            break;
        }
        float v[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY}, c;
        if (!parse_value(tk[0], tl[0], &c)) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: bad class", what, r + 1);
            break;
        }
        for (int k = 1; k < nf && st == Q7_OK; k++) {
            float x;
            if (!parse_value(tk[k], tl[k], &x) || isnan(x)) {
                st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: bad coordinate", what, r + 1);
                break;
            }
            const int axis = (k - 1) % 2;
            v[axis] = x < v[axis] ? x : v[axis];
            v[2 + axis] = x > v[2 + axis] ? x : v[2 + axis];
        }
        row[0] = c;
        row[1] = (v[0] + v[2]) / 2.0f;
        row[2] = (v[1] + v[3]) / 2.0f;
        row[3] = v[2] - v[0];
        row[4] = v[3] - v[1];
    }
    /* cache_labels' asserts, plus finiteness, whole classes and nc */
    for (int i = 0; i < rows && st == Q7_OK; i++) {
        const float * row = l + (size_t)i * Q7_LABEL_COLS;
        for (int k = 0; k < Q7_LABEL_COLS && st == Q7_OK; k++) {
            if (!isfinite(row[k]))
                st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: non-finite value", what, i + 1);
            else if (!(row[k] >= 0.0f))
                st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: negative labels", what, i + 1);
            else if (k > 0 && !(row[k] <= 1.0f))
                st = q7_error_set(Q7_ERR_FORMAT,
                                  "%s: line %d: non-normalized or out of bounds coordinate "
                                  "labels",
                                  what, i + 1);
        }
        if (st == Q7_OK && row[0] != floorf(row[0]))
            st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: class %g is not a whole number", what,
                              i + 1, (double)row[0]);
        if (st == Q7_OK && nc > 0 && row[0] >= (float)nc)
            st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: class %g >= nc %d", what, i + 1,
                              (double)row[0], nc);
        /* without nc, still a class that converts to int exactly (the metrics cast it) */
        if (st == Q7_OK && row[0] >= LABEL_MAX_CLASS)
            st = q7_error_set(Q7_ERR_FORMAT, "%s: line %d: class %g is too large", what, i + 1,
                              (double)row[0]);
    }
    if (st == Q7_OK && rows > 1) {
        /* np.unique(l, axis=0) compares rows as bytes */
        float * sorted = malloc((size_t)rows * Q7_LABEL_COLS * sizeof *sorted);
        if (!sorted) {
            st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
            goto done;
        }
        memcpy(sorted, l, (size_t)rows * Q7_LABEL_COLS * sizeof *sorted);
        qsort(sorted, (size_t)rows, Q7_LABEL_COLS * sizeof *sorted, cmp_row);
        for (int i = 1; i < rows && st == Q7_OK; i++)
            if (cmp_row(sorted + (size_t)(i - 1) * Q7_LABEL_COLS,
                        sorted + (size_t)i * Q7_LABEL_COLS) == 0)
                st = q7_error_set(Q7_ERR_FORMAT, "%s: duplicate labels", what);
        free(sorted);
    }
done:
    free(tl);
    free(tk);
    if (st != Q7_OK) {
        free(l);
        return st;
    }
    *labels = l;
    *n_out = rows;
    return Q7_OK;
}

/* ---------------------------------------------------------------- datasets */

static struct q7_dataset * dataset_new(size_t n)
{
    struct q7_dataset * ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    ds->arena = q7_arena_create(1 << 20);
    size_t bytes;
    if (!ds->arena || !q7_size_mul(n + 1, sizeof *ds->items, &bytes) ||
        !(ds->items = q7_arena_alloc(ds->arena, bytes))) {
        q7_dataset_free(ds);
        return NULL;
    }
    return ds;
}

void q7_dataset_free(struct q7_dataset * ds)
{
    if (!ds)
        return;
    q7_arena_free(ds->arena);
    free(ds);
}

/* Fills path, stem and test.py's image id of an item. */
static enum q7_status item_init(struct q7_dataset * ds, struct q7_dataset_item * it,
                                const char * path)
{
    const char * base = path_base(path);
    const char * dot = strrchr(base, '.');
    const size_t ns = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    it->path = q7_arena_strdup(ds->arena, path);
    it->stem = q7_arena_strndup(ds->arena, base, ns);
    if (!it->path || !it->stem)
        return q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
    /* image_id = int(path.stem) if path.stem.isnumeric() else path.stem */
    int numeric = ns > 0 && ns <= 18;
    for (size_t i = 0; i < ns && numeric; i++)
        numeric = isdigit((unsigned char)it->stem[i]);
    it->has_image_id = numeric;
    it->image_id = numeric ? strtoll(it->stem, NULL, 10) : -1;
    return Q7_OK;
}

static int image_readable(const char * path)
{
    FILE * f = fopen(path, "rb");
    if (!f)
        return 0;
    fclose(f);
    return 1;
}

static void log_counts(const char * path, const struct q7_dataset * ds)
{
    q7_log(Q7_LOG_INFO, "%s: %d images; labels %d found, %d missing, %d empty, %d corrupted", path,
           ds->n, ds->n_found, ds->n_missing, ds->n_empty, ds->n_corrupt);
}

enum q7_status q7_dataset_load(const char * path, const struct q7_dataset_params * params,
                               struct q7_dataset ** out)
{
    if (!out)
        return q7_error_set(Q7_ERR_ARG, "dataset: NULL output");
    *out = NULL;
    const struct q7_dataset_params p = params ? *params : q7_dataset_params_default();
    struct path_list l = {0};
    enum q7_status st = collect_images(path, &l);
    if (st != Q7_OK) {
        path_list_free(&l);
        return st;
    }
    struct q7_dataset * ds = dataset_new(l.n);
    if (!ds) {
        path_list_free(&l);
        return q7_error_set(Q7_ERR_OOM, "dataset: out of memory for %zu images", l.n);
    }
    for (size_t i = 0; i < l.n && st == Q7_OK; i++) {
        const char * img = l.v[i];
        char lp[Q7_DATASET_MAX_LINE + 16];
        if (p.check_images && !image_readable(img)) {
            q7_log(Q7_LOG_WARN, "%s: ignoring corrupted image and/or label: cannot open image",
                   img);
            ds->n_corrupt++;
            continue;
        }
        if (q7_dataset_label_path(img, lp, sizeof lp) != Q7_OK) {
            q7_log(Q7_LOG_WARN, "%s: ignoring image: %s", img, q7_error_message());
            ds->n_corrupt++;
            continue;
        }
        struct q7_dataset_item * it = &ds->items[ds->n];
        memset(it, 0, sizeof *it);
        char * text = NULL;
        size_t len = 0;
        struct stat sb;
        float * labels = NULL;
        int nl = 0;
        if (stat(lp, &sb) == 0 && S_ISREG(sb.st_mode)) {
            ds->n_found++;
            enum q7_status ls = q7_file_read_all(lp, LABEL_MAX_BYTES, &text, &len);
            if (ls == Q7_OK)
                ls = q7_dataset_parse_labels(text, len, lp, p.nc, &labels, &nl);
            free(text);
            if (ls == Q7_ERR_OOM) {
                st = ls;
                break;
            }
            if (ls != Q7_OK) {
                q7_log(Q7_LOG_WARN, "%s: ignoring corrupted image and/or label: %s", img,
                       q7_error_message());
                ds->n_corrupt++;
                continue;
            }
            ds->n_empty += nl == 0;
        } else {
            ds->n_missing++;
        }
        if ((st = item_init(ds, it, img)) != Q7_OK) {
            free(labels);
            break;
        }
        it->label_path = q7_arena_strdup(ds->arena, lp);
        if (nl) {
            it->labels = q7_arena_alloc(ds->arena, (size_t)nl * Q7_LABEL_COLS * sizeof(float));
            if (it->labels)
                memcpy(it->labels, labels, (size_t)nl * Q7_LABEL_COLS * sizeof(float));
        }
        free(labels);
        if (!it->label_path || (nl && !it->labels)) {
            st = q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
            break;
        }
        it->n_labels = nl;
        ds->n++;
    }
    path_list_free(&l);
    if (st == Q7_OK && ds->n == 0)
        st = q7_error_set(Q7_ERR_NOT_FOUND, "%s: no usable images", path);
    if (st != Q7_OK) {
        q7_dataset_free(ds);
        return st;
    }
    log_counts(path, ds);
    *out = ds;
    return Q7_OK;
}

/* ---------------------------------------------------------------- COCO json */

struct name_ref {
    const char * name;
    int idx;
};

static int cmp_name_ref(const void * pa, const void * pb)
{
    const struct name_ref *a = pa, *b = pb;
    const int c = strcmp(a->name, b->name);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

struct ann_ref {
    int64_t image_id;
    int idx;
};

static int cmp_ann_ref(const void * pa, const void * pb)
{
    const struct ann_ref *a = pa, *b = pb;
    if (a->image_id != b->image_id)
        return a->image_id < b->image_id ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_i64(const void * pa, const void * pb)
{
    const int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

/* Class of a category id: coco91_to_80, or its rank among the sorted category ids. */
static int category_class(const int64_t * cats, int nk, int coco91, int64_t id)
{
    if (coco91)
        return q7_coco91_to_80(id);
    int lo = 0, hi = nk;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cats[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < nk && cats[lo] == id) ? lo : -1;
}

static enum q7_status coco_fill(struct q7_dataset * ds, const struct path_list * l,
                                const struct q7_coco_gt * gt, const struct q7_dataset_params * p,
                                const char * json)
{
    enum q7_status st = Q7_OK;
    struct name_ref * names = malloc(((size_t)gt->n_images + 1) * sizeof *names);
    struct ann_ref * anns = malloc(((size_t)gt->n_anns + 1) * sizeof *anns);
    int64_t * cats = malloc(((size_t)gt->n_cats + 1) * sizeof *cats);
    if (!names || !anns || !cats) {
        st = q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
        goto done;
    }
    for (int i = 0; i < gt->n_images; i++)
        names[i] = (struct name_ref){path_base(gt->images[i].file_name), i};
    qsort(names, (size_t)gt->n_images, sizeof *names, cmp_name_ref);
    for (int i = 0; i < gt->n_anns; i++)
        anns[i] = (struct ann_ref){gt->anns[i].image_id, i};
    qsort(anns, (size_t)gt->n_anns, sizeof *anns, cmp_ann_ref);
    memcpy(cats, gt->cat_ids, (size_t)gt->n_cats * sizeof *cats);
    qsort(cats, (size_t)gt->n_cats, sizeof *cats, cmp_i64);
    int nk = 0;
    for (int k = 0; k < gt->n_cats; k++)
        if (nk == 0 || cats[k] != cats[nk - 1])
            cats[nk++] = cats[k];

    int not_listed = 0, unmapped = 0;
    for (size_t i = 0; i < l->n && st == Q7_OK; i++) {
        const char * img = l->v[i];
        struct name_ref key = {path_base(img), -1};
        struct name_ref * hit = NULL;
        size_t lo = 0, hi = (size_t)gt->n_images; /* first entry >= key (lowest idx) */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_name_ref(&names[mid], &key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < (size_t)gt->n_images && strcmp(names[lo].name, key.name) == 0)
            hit = &names[lo];
        if (!hit) {
            not_listed++;
            continue;
        }
        if (p->check_images && !image_readable(img)) {
            q7_log(Q7_LOG_WARN, "%s: ignoring image: cannot open it", img);
            ds->n_corrupt++;
            continue;
        }
        const struct q7_coco_image * ci = &gt->images[hit->idx];
        if (ci->width <= 0 || ci->height <= 0) {
            q7_log(Q7_LOG_WARN, "%s: ignoring image: %s gives no width and height", img, json);
            ds->n_corrupt++;
            continue;
        }
        /* annotations of this image, in file order */
        size_t a0 = 0, a1 = (size_t)gt->n_anns;
        while (a0 < a1) {
            size_t mid = a0 + (a1 - a0) / 2;
            if (anns[mid].image_id < ci->id)
                a0 = mid + 1;
            else
                a1 = mid;
        }
        size_t aend = a0;
        while (aend < (size_t)gt->n_anns && anns[aend].image_id == ci->id)
            aend++;
        const size_t na = aend - a0;
        if (na > Q7_DATASET_MAX_LABELS) {
            q7_log(Q7_LOG_WARN, "%s: ignoring image: more than %d annotations", img,
                   Q7_DATASET_MAX_LABELS);
            ds->n_corrupt++;
            continue;
        }
        struct q7_dataset_item * it = &ds->items[ds->n];
        memset(it, 0, sizeof *it);
        if ((st = item_init(ds, it, img)) != Q7_OK)
            break;
        it->image_id = ci->id;
        it->has_image_id = 1;
        it->width = ci->width;
        it->height = ci->height;
        it->labels = q7_arena_alloc(ds->arena, (na + 1) * Q7_LABEL_COLS * sizeof(float));
        if (!it->labels) {
            st = q7_error_set(Q7_ERR_OOM, "dataset: out of memory");
            break;
        }
        const double W = ci->width, H = ci->height;
        for (size_t a = a0; a < aend; a++) {
            const struct q7_coco_ann * an = &gt->anns[anns[a].idx];
            const double * b = an->bbox;
            if (an->iscrowd || b[2] <= 0 || b[3] <= 0)
                continue;
            const int cls = category_class(cats, nk, p->coco91_to_80, an->category_id);
            if (cls < 0 || (p->nc > 0 && cls >= p->nc)) {
                unmapped++;
                continue;
            }
            float * row = it->labels + (size_t)it->n_labels * Q7_LABEL_COLS;
            row[0] = (float)cls;
            row[1] = (float)((b[0] + b[2] / 2) / W);
            row[2] = (float)((b[1] + b[3] / 2) / H);
            row[3] = (float)(b[2] / W);
            row[4] = (float)(b[3] / H);
            it->n_labels++;
        }
        if (it->n_labels)
            ds->n_found++;
        else
            ds->n_missing++;
        ds->n++;
    }
    if (not_listed)
        q7_log(Q7_LOG_WARN, "%s: %d images are not listed in %s and were left out", json,
               not_listed, json);
    if (unmapped)
        q7_log(Q7_LOG_WARN, "%s: %d annotations have a category without a class; skipped", json,
               unmapped);
done:
    free(names);
    free(anns);
    free(cats);
    return st;
}

enum q7_status q7_dataset_load_coco(const char * images, const char * instances_json,
                                    const struct q7_dataset_params * params,
                                    struct q7_dataset ** out)
{
    if (!out || !instances_json)
        return q7_error_set(Q7_ERR_ARG, "dataset: NULL argument");
    *out = NULL;
    const struct q7_dataset_params p = params ? *params : q7_dataset_params_default();
    struct path_list l = {0};
    struct q7_coco_gt * gt = NULL;
    struct q7_dataset * ds = NULL;
    enum q7_status st = collect_images(images, &l);
    if (st == Q7_OK)
        st = q7_coco_gt_load(instances_json, &gt);
    if (st == Q7_OK && !(ds = dataset_new(l.n)))
        st = q7_error_set(Q7_ERR_OOM, "dataset: out of memory for %zu images", l.n);
    if (st == Q7_OK)
        st = coco_fill(ds, &l, gt, &p, instances_json);
    if (st == Q7_OK && ds->n == 0)
        st = q7_error_set(Q7_ERR_NOT_FOUND, "%s: none of the images of %s is listed", images,
                          instances_json);
    path_list_free(&l);
    q7_coco_gt_free(gt);
    if (st != Q7_OK) {
        q7_dataset_free(ds);
        return st;
    }
    log_counts(images, ds);
    *out = ds;
    return Q7_OK;
}
