/* Calibration files: amax tables (single-method and per-method JSON, as ref/amax.json), the
 * histogram list (ref/histograms.json) and the TensorRT calibration cache. Read with cJSON;
 * written by hand so that every float prints as "%.9g" (enough to round-trip float32), and
 * always through q7_file_write_atomic. */
#include "quant/quant.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JSON_FILE ((size_t)1 << 30)
#define DEFAULT_TRT_VERSION 8601
#define TRT_CALIB_ALGO "EntropyCalibration2"

/* ---- a growing text buffer ---- */

struct sbuf {
    char * p;
    size_t len, cap;
    int failed;
};

static void sb_printf(struct sbuf * b, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf * b, const char * fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int k = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (k >= 0 && (size_t)k < room) {
            b->len += (size_t)k;
            return;
        }
        size_t need = b->cap ? b->cap * 2 : 4096;
        if (k >= 0 && need < b->len + (size_t)k + 1)
            need = b->len + (size_t)k + 1;
        char * np = realloc(b->p, need);
        if (!np || k == -1) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = need;
    }
}

/* A JSON string literal (names are ASCII module paths, but escape whatever comes). */
static void sb_json_string(struct sbuf * b, const char * s)
{
    sb_printf(b, "\"");
    for (const unsigned char * c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            sb_printf(b, "\\%c", *c);
        else if (*c < 0x20)
            sb_printf(b, "\\u%04x", *c);
        else
            sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"");
}

static enum q7_status sb_finish(struct sbuf * b, const char * path)
{
    enum q7_status st;
    if (b->failed)
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    else
        st = q7_file_write_atomic(path, b->p, b->len);
    free(b->p);
    return st;
}

static cJSON * load_json(const char * path, enum q7_status * st)
{
    char * text = NULL;
    size_t size = 0;
    *st = q7_file_read_all(path, MAX_JSON_FILE, &text, &size);
    if (*st)
        return NULL;
    cJSON * root = cJSON_ParseWithLength(text, size);
    free(text);
    if (!root)
        *st = q7_error_set(Q7_ERR_FORMAT, "%s: not valid JSON", path);
    return root;
}

/* ---- amax tables ---- */

struct q7_amax_table * q7_amax_table_create(void)
{
    struct q7_amax_table * t = calloc(1, sizeof *t);
    if (!t)
        q7_error_set(Q7_ERR_OOM, "amax table: out of memory");
    return t;
}

void q7_amax_table_free(struct q7_amax_table * t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++) {
        free(t->entries[i].name);
        free(t->entries[i].values);
    }
    free(t->entries);
    free(t);
}

const struct q7_amax_entry * q7_amax_table_find(const struct q7_amax_table * t,
                                                const char * name)
{
    if (!t || !name)
        return NULL;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->entries[i].name, name) == 0)
            return &t->entries[i];
    return NULL;
}

enum q7_status q7_amax_table_set(struct q7_amax_table * t, const char * name,
                                 const float * values, int n, int is_array)
{
    if (!t || !name || !values || n < 1)
        return q7_error_set(Q7_ERR_ARG, "amax table: bad entry");
    float * v = malloc((size_t)n * sizeof *v);
    if (!v)
        return q7_error_set(Q7_ERR_OOM, "amax table: out of memory");
    memcpy(v, values, (size_t)n * sizeof *v);
    struct q7_amax_entry * e = (struct q7_amax_entry *)q7_amax_table_find(t, name);
    if (!e) {
        if (t->n == t->cap) {
            int cap = t->cap ? t->cap * 2 : 64;
            struct q7_amax_entry * ne = realloc(t->entries, (size_t)cap * sizeof *ne);
            if (!ne) {
                free(v);
                return q7_error_set(Q7_ERR_OOM, "amax table: out of memory");
            }
            t->entries = ne;
            t->cap = cap;
        }
        char * nm = strdup(name);
        if (!nm) {
            free(v);
            return q7_error_set(Q7_ERR_OOM, "amax table: out of memory");
        }
        e = &t->entries[t->n++];
        e->name = nm;
        e->values = NULL;
    }
    free(e->values);
    e->values = v;
    e->n = n;
    e->is_array = is_array || n > 1;
    return Q7_OK;
}

static int json_float(const cJSON * v, float * out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(fabs(d) <= (double)FLT_MAX))
        return 0;
    *out = (float)d;
    return 1;
}

/* One method's object {"name": number | [numbers]} into t. */
static enum q7_status table_from_json(const cJSON * obj, const char * path,
                                      struct q7_amax_table * t)
{
    const cJSON * it;
    cJSON_ArrayForEach(it, obj)
    {
        if (!it->string)
            return q7_error_set(Q7_ERR_FORMAT, "%s: entry without a name", path);
        float one;
        if (json_float(it, &one)) {
            enum q7_status st = q7_amax_table_set(t, it->string, &one, 1, 0);
            if (st)
                return st;
            continue;
        }
        int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0;
        if (n < 1)
            return q7_error_set(Q7_ERR_FORMAT, "%s: %s: amax must be a number or a list of "
                                "numbers", path, it->string);
        float * v = malloc((size_t)n * sizeof *v);
        if (!v)
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        int k = 0;
        const cJSON * x;
        cJSON_ArrayForEach(x, it)
        {
            if (!json_float(x, &v[k])) {
                free(v);
                return q7_error_set(Q7_ERR_FORMAT, "%s: %s[%d]: not a finite number", path,
                                    it->string, k);
            }
            k++;
        }
        enum q7_status st = q7_amax_table_set(t, it->string, v, n, 1);
        free(v);
        if (st)
            return st;
    }
    return Q7_OK;
}

enum q7_status q7_amax_table_load(const char * path, const char * method,
                                  struct q7_amax_table ** out)
{
    if (!path || !out)
        return q7_error_set(Q7_ERR_ARG, "amax table: NULL");
    *out = NULL;
    enum q7_status st;
    cJSON * root = load_json(path, &st);
    if (!root)
        return st;
    const cJSON * obj = root;
    if (!cJSON_IsObject(root)) {
        st = q7_error_set(Q7_ERR_FORMAT, "%s: expected a JSON object", path);
        goto done;
    }
    /* per-method file: its values are objects */
    if (root->child && cJSON_IsObject(root->child)) {
        if (!method) {
            char names[256] = "";
            size_t len = 0;
            const cJSON * it;
            cJSON_ArrayForEach(it, root)
            {
                int k = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                 it->string ? it->string : "?");
                if (k < 0 || (size_t)k >= sizeof names - len)
                    break;
                len += (size_t)k;
            }
            st = q7_error_set(Q7_ERR_ARG, "%s: holds several methods (%s); choose one", path,
                              names);
            goto done;
        }
        obj = cJSON_GetObjectItemCaseSensitive(root, method);
        if (!obj) {
            st = q7_error_set(Q7_ERR_NOT_FOUND, "%s: no method \"%s\"", path, method);
            goto done;
        }
        if (!cJSON_IsObject(obj)) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: \"%s\" is not an object", path, method);
            goto done;
        }
    }
    struct q7_amax_table * t = q7_amax_table_create();
    if (!t) {
        st = Q7_ERR_OOM;
        goto done;
    }
    st = table_from_json(obj, path, t);
    if (st)
        q7_amax_table_free(t);
    else
        *out = t;
done:
    cJSON_Delete(root);
    return st;
}

static void sb_table(struct sbuf * b, const struct q7_amax_table * t, const char * indent)
{
    if (!t->n) {
        sb_printf(b, "{}");
        return;
    }
    sb_printf(b, "{");
    for (int i = 0; i < t->n; i++) {
        const struct q7_amax_entry * e = &t->entries[i];
        sb_printf(b, "%s\n%s  ", i ? "," : "", indent);
        sb_json_string(b, e->name);
        sb_printf(b, ": ");
        if (!e->is_array) {
            sb_printf(b, "%.9g", (double)e->values[0]);
            continue;
        }
        sb_printf(b, "[");
        for (int k = 0; k < e->n; k++)
            sb_printf(b, "%s%.9g", k ? ", " : "", (double)e->values[k]);
        sb_printf(b, "]");
    }
    sb_printf(b, "\n%s}", indent);
}

static enum q7_status check_finite(const struct q7_amax_table * t, const char * path)
{
    for (int i = 0; i < t->n; i++)
        for (int k = 0; k < t->entries[i].n; k++)
            if (!isfinite(t->entries[i].values[k]))
                return q7_error_set(Q7_ERR_ARG, "%s: %s: amax is not finite", path,
                                    t->entries[i].name);
    return Q7_OK;
}

enum q7_status q7_amax_table_save(const char * path, const struct q7_amax_table * t)
{
    if (!path || !t)
        return q7_error_set(Q7_ERR_ARG, "amax table save: NULL");
    enum q7_status st = check_finite(t, path);
    if (st)
        return st;
    struct sbuf b = {0};
    sb_table(&b, t, "");
    sb_printf(&b, "\n");
    return sb_finish(&b, path);
}

enum q7_status q7_amax_table_save_methods(const char * path, int n,
                                          const char * const * methods,
                                          const struct q7_amax_table * const * tables)
{
    if (!path || n < 0 || (n > 0 && (!methods || !tables)))
        return q7_error_set(Q7_ERR_ARG, "amax table save: NULL");
    for (int i = 0; i < n; i++) {
        if (!methods[i] || !tables[i])
            return q7_error_set(Q7_ERR_ARG, "amax table save: NULL method %d", i);
        enum q7_status st = check_finite(tables[i], path);
        if (st)
            return st;
    }
    struct sbuf b = {0};
    sb_printf(&b, "{");
    for (int i = 0; i < n; i++) {
        sb_printf(&b, "%s\n  ", i ? "," : "");
        sb_json_string(&b, methods[i]);
        sb_printf(&b, ": ");
        sb_table(&b, tables[i], "  ");
    }
    sb_printf(&b, "%s}\n", n ? "\n" : "");
    return sb_finish(&b, path);
}

enum q7_status q7_amax_table_from_quantizers(struct q7_quantizer * const * qs, int n,
                                             struct q7_amax_table ** out)
{
    if (!out || (n > 0 && !qs))
        return q7_error_set(Q7_ERR_ARG, "amax table: NULL");
    struct q7_amax_table * t = q7_amax_table_create();
    if (!t)
        return Q7_ERR_OOM;
    for (int i = 0; i < n; i++) {
        const struct q7_quantizer * q = qs[i];
        if (!q || q->n_amax < 1 || !q->amax)
            continue;
        enum q7_status st = q7_amax_table_set(t, q->name, q->amax, q->n_amax, q->axis == 0);
        if (st) {
            q7_amax_table_free(t);
            return st;
        }
    }
    *out = t;
    return Q7_OK;
}

enum q7_status q7_amax_table_apply(const struct q7_amax_table * t, struct q7_quantizer ** qs,
                                   int n, int * n_missing)
{
    if (n_missing)
        *n_missing = 0;
    if (!t || (n > 0 && !qs))
        return q7_error_set(Q7_ERR_ARG, "amax table apply: NULL");
    for (int i = 0; i < n; i++) {
        struct q7_quantizer * q = qs[i];
        if (!q)
            continue;
        const struct q7_amax_entry * e = q7_amax_table_find(t, q->name);
        if (!e) {
            if (n_missing)
                (*n_missing)++;
            continue;
        }
        if (q->axis == -1 && e->n != 1)
            return q7_error_set(Q7_ERR_FORMAT, "%s: %d amax values for a per-tensor quantizer",
                                q->name, e->n);
        enum q7_status st = q7_quant_set_amax(q, e->values, e->n);
        if (st)
            return st;
    }
    return Q7_OK;
}

enum q7_status q7_amax_table_write_trt_cache(const char * path, const struct q7_amax_table * t,
                                             int trt_version,
                                             const char * (*tensor_name)(const char * quantizer,
                                                                         void * user),
                                             void * user)
{
    if (!path || !t)
        return q7_error_set(Q7_ERR_ARG, "TensorRT cache: NULL");
    if (trt_version <= 0)
        trt_version = DEFAULT_TRT_VERSION;
    struct sbuf b = {0};
    sb_printf(&b, "TRT-%d-%s\n", trt_version, TRT_CALIB_ALGO);
    for (int i = 0; i < t->n; i++) {
        const struct q7_amax_entry * e = &t->entries[i];
        if (e->n != 1 || e->is_array)
            continue;
        const char * name = tensor_name ? tensor_name(e->name, user) : e->name;
        if (!name)
            continue;
        if (!isfinite(e->values[0]) || e->values[0] < 0.0f) {
            free(b.p);
            return q7_error_set(Q7_ERR_ARG, "%s: %s: amax is not finite and >= 0", path,
                                e->name);
        }
        float scale = e->values[0] / 127.0f;
        uint32_t bits;
        memcpy(&bits, &scale, sizeof bits);
        sb_printf(&b, "%s: %08x\n", name, (unsigned)bits);
    }
    return sb_finish(&b, path);
}

/* ---- histogram lists ---- */

void q7_hist_list_free(struct q7_hist_list * l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        if (l->names)
            free(l->names[i]);
        if (l->hists)
            q7_calib_hist_free(l->hists[i]);
    }
    free(l->names);
    free(l->hists);
    free(l->max);
    memset(l, 0, sizeof *l);
}

int q7_hist_list_find(const struct q7_hist_list * l, const char * name)
{
    if (!l || !name)
        return -1;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

/* A count: a non-negative integer-valued number below 2^53. */
static int json_count(const cJSON * v, int64_t * out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0) || d != floor(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

static enum q7_status hist_from_json(const cJSON * it, const char * path,
                                     struct q7_calib_hist ** out, float * max)
{
    const char * name = it->string;
    const cJSON * jh = cJSON_GetObjectItemCaseSensitive(it, "hist");
    const cJSON * je = cJSON_GetObjectItemCaseSensitive(it, "edge_max");
    const cJSON * jn = cJSON_GetObjectItemCaseSensitive(it, "num_bins");
    const cJSON * jw = cJSON_GetObjectItemCaseSensitive(it, "width");
    const cJSON * jne = cJSON_GetObjectItemCaseSensitive(it, "num_edges");
    int n = cJSON_IsArray(jh) ? cJSON_GetArraySize(jh) : 0;
    float edge_max = 0.0f, width = 0.0f;
    int64_t num_bins = n, n_edges = (int64_t)n + 1;
    if (n < 1 || !json_float(je, &edge_max) || edge_max < 0.0f)
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: needs \"hist\" (counts) and \"edge_max\"",
                            path, name);
    if (n > Q7_HIST_MAX_BINS)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %s: %d bins is too many", path, name, n);
    if (jn && (!json_count(jn, &num_bins) || num_bins != n))
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: num_bins does not match the %d counts",
                            path, name, n);
    if (jw && (!json_float(jw, &width) || width < 0.0f))
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: bad width", path, name);
    if (jne && !json_count(jne, &n_edges))
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: bad num_edges", path, name);
    const cJSON * jm = cJSON_GetObjectItemCaseSensitive(it, "max");
    *max = -1.0f;
    if (jm && (!json_float(jm, max) || *max < 0.0f)) /* json_float: finite only */
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: bad max", path, name);
    if (!jw && n != Q7_HIST_DEFAULT_BINS) { /* grown, as recorded by the reference */
        width = q7_hist_guess_width(edge_max, n);
        n_edges = (int64_t)n + 1;
    }
    int64_t * counts = malloc((size_t)n * sizeof *counts);
    if (!counts)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    int k = 0;
    const cJSON * x;
    cJSON_ArrayForEach(x, jh)
    {
        if (!json_count(x, &counts[k])) {
            free(counts);
            return q7_error_set(Q7_ERR_FORMAT, "%s: %s: hist[%d] is not a count", path, name, k);
        }
        k++;
    }
    struct q7_calib_hist * h = q7_calib_hist_create(n);
    enum q7_status st = h ? q7_calib_hist_set(h, counts, n, edge_max, width, n_edges) : Q7_ERR_OOM;
    free(counts);
    if (st) {
        q7_calib_hist_free(h);
        return q7_error_wrap(st, "%s: %s", path, name);
    }
    *out = h;
    return Q7_OK;
}

enum q7_status q7_hist_list_load(const char * path, struct q7_hist_list * out)
{
    if (!path || !out)
        return q7_error_set(Q7_ERR_ARG, "histograms: NULL");
    memset(out, 0, sizeof *out);
    enum q7_status st;
    cJSON * root = load_json(path, &st);
    if (!root)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return q7_error_set(Q7_ERR_FORMAT, "%s: expected a JSON object", path);
    }
    int n = cJSON_GetArraySize(root);
    out->names = calloc((size_t)(n ? n : 1), sizeof *out->names);
    out->hists = calloc((size_t)(n ? n : 1), sizeof *out->hists);
    out->max = calloc((size_t)(n ? n : 1), sizeof *out->max);
    if (!out->names || !out->hists || !out->max) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    const cJSON * it;
    cJSON_ArrayForEach(it, root)
    {
        if (!it->string || !cJSON_IsObject(it)) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: entry %d is not a named object", path, out->n);
            goto done;
        }
        struct q7_calib_hist * h = NULL;
        st = hist_from_json(it, path, &h, &out->max[out->n]);
        if (st)
            goto done;
        out->names[out->n] = strdup(it->string);
        out->hists[out->n] = h;
        out->n++;
        if (!out->names[out->n - 1]) {
            st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    if (st)
        q7_hist_list_free(out);
    return st;
}

enum q7_status q7_hist_save_json(const char * path, int n, const char * const * names,
                                 const struct q7_calib_hist * const * hists, const float * max)
{
    if (!path || n < 0 || (n > 0 && (!names || !hists)))
        return q7_error_set(Q7_ERR_ARG, "histograms save: NULL");
    struct sbuf b = {0};
    sb_printf(&b, "{");
    int written = 0;
    for (int i = 0; i < n; i++) {
        const int64_t * c = q7_calib_hist_counts(hists[i]);
        int64_t nb = q7_calib_hist_num_bins(hists[i]), ne = 0;
        q7_calib_hist_edges(hists[i], &ne);
        if (!c || !names[i])
            continue;
        sb_printf(&b, "%s\n", written++ ? "," : "");
        sb_json_string(&b, names[i]);
        sb_printf(&b, ": {\"hist\": [");
        for (int64_t k = 0; k < nb; k++)
            sb_printf(&b, "%s%lld", k ? ", " : "", (long long)c[k]);
        sb_printf(&b, "], \"edge_max\": %.9g, \"num_bins\": %lld",
                  (double)q7_calib_hist_edge_max(hists[i]), (long long)nb);
        float w = q7_calib_hist_width(hists[i]);
        if (w > 0.0f)
            sb_printf(&b, ", \"width\": %.9g, \"num_edges\": %lld", (double)w, (long long)ne);
        if (max && max[i] >= 0.0f && !isinf(max[i]))
            sb_printf(&b, ", \"max\": %.9g", (double)max[i]);
        sb_printf(&b, "}");
    }
    sb_printf(&b, "%s}\n", written ? "\n" : "");
    return sb_finish(&b, path);
}
