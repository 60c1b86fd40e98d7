/* The detection heads of a yaml-built YOLOv7 (models.yolo Detect, IDetect, IAuxDetect) and
 * what Model.__init__ does to the last one: strides from the stride probe, anchors divided by
 * them, check_anchor_order, and the objectness / class bias prior. */
#include "models/yolo_modules_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DETECT_MAX_LEVELS 64
#define DETECT_MAX_ANCHORS 64
#define DETECT_MAX_CLASSES 100000

static const char * const detect_names[] = {"Detect", "IDetect", "IAuxDetect"};

static enum q7_status detect_bad(const char * cls, const char * what)
{
    return q7_error_set(Q7_ERR_FORMAT, "%s: %s", cls, what);
}

/* ImplicitA(channel) (mean 0) or ImplicitM(channel) (mean 1): std 0.02, `implicit` (1,C,1,1). */
static enum q7_status implicit(struct q7_ym_ctx * c, int mult, int64_t ch, struct q7_py ** out)
{
    double mean = mult ? 1.0 : 0.0, stdv = 0.02;
    struct q7_py * m = q7_ym_module(c, "models.common", mult ? "ImplicitM" : "ImplicitA");
    enum q7_status st;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_attr_int(c, m, "channel", ch)) ||
        (st = q7_ym_attr(c, m, "mean", q7_py_float(c->h, mean))) ||
        (st = q7_ym_attr(c, m, "std", q7_py_float(c->h, stdv))))
        return st;
    int64_t shape[4] = {1, ch, 1, 1};
    if ((st = q7_ym_add_tensor(c, m, 1, "implicit", 4, shape, Q7_YM_FILL_NORMAL, mean, stdv, 0)))
        return st;
    *out = m;
    return Q7_OK;
}

/* ModuleList(Conv2d(x, no * na, 1) for x in ch[lo:hi]), or of Implicit layers. */
enum list_kind { LIST_CONV, LIST_IMPLICIT_A, LIST_IMPLICIT_M };

static enum q7_status head_list(struct q7_ym_ctx * c, enum list_kind kind, const int64_t * ch,
                                int lo, int hi, int64_t nout, struct q7_py ** out)
{
    struct q7_py * list = q7_ym_module(c, "torch.nn.modules.container", "ModuleList");
    if (!list)
        return Q7_ERR_OOM;
    for (int i = lo; i < hi; i++) {
        struct q7_py * m = NULL;
        char key[16];
        snprintf(key, sizeof key, "%d", i - lo);
        enum q7_status st;
        if (kind == LIST_CONV)
            st = q7_ym_conv2d(c, ch[i], nout, 1, 1, 0, 1, 1, &m);
        else
            st = implicit(c, kind == LIST_IMPLICIT_M, kind == LIST_IMPLICIT_A ? ch[i] : nout, &m);
        if (st || (st = q7_ym_child(c, list, key, m)))
            return st;
    }
    *out = list;
    return Q7_OK;
}

enum q7_status q7_ym_detect(struct q7_ym_ctx * c, enum q7_ym_detect_kind kind,
                            const struct q7_ym_args * a, struct q7_py ** out)
{
    const char * cls = detect_names[kind];
    enum q7_status st;
    if (a->n > 3)
        return q7_error_set(Q7_ERR_FORMAT,
                            "%s takes at most 3 arguments (nc, anchors, ch), "
                            "%d given",
                            cls, a->n);
    int64_t nc = 80;
    if (a->n > 0 && !q7_py_as_int(a->v[0], &nc))
        return detect_bad(cls, "nc must be an int");
    if (nc < 1 || nc > DETECT_MAX_CLASSES)
        return q7_error_set(Q7_ERR_FORMAT, "%s: nc = %" PRId64 " is out of range [1, %d]", cls, nc,
                            DETECT_MAX_CLASSES);
    const struct q7_py * anchors = a->n > 1 ? a->v[1] : NULL;
    const struct q7_py * chl = a->n > 2 ? a->v[2] : NULL;
    if (!anchors || (anchors->kind != Q7_PY_LIST && anchors->kind != Q7_PY_TUPLE) ||
        anchors->v.seq.len < 1 || anchors->v.seq.len > DETECT_MAX_LEVELS)
        return detect_bad(cls, "anchors must be a list of 1 to 64 levels");
    int64_t nl = (int64_t)anchors->v.seq.len, per_level = -1;
    for (int64_t l = 0; l < nl; l++) {
        const struct q7_py * row = anchors->v.seq.items[l];
        if (row->kind != Q7_PY_LIST && row->kind != Q7_PY_TUPLE)
            return detect_bad(cls, "each anchor level must be a list of numbers");
        if (per_level >= 0 && (int64_t)row->v.seq.len != per_level)
            return detect_bad(cls, "anchor levels of different lengths");
        per_level = (int64_t)row->v.seq.len;
        for (int64_t j = 0; j < per_level; j++) {
            double v;
            if (!q7_py_as_double(row->v.seq.items[j], &v) || !isfinite(v))
                return detect_bad(cls, "anchors must be finite numbers");
        }
    }
    if (per_level < 2 || per_level % 2 || per_level / 2 > DETECT_MAX_ANCHORS)
        return detect_bad(cls, "each anchor level needs 1 to 64 (w, h) pairs");
    int64_t na = per_level / 2, no = nc + 5;
    int64_t want_ch = kind == Q7_YM_IAUXDETECT ? 2 * nl : nl;
    if (!chl || chl->kind != Q7_PY_LIST || (int64_t)chl->v.seq.len != want_ch)
        return q7_error_set(
            Q7_ERR_FORMAT, "%s: %" PRId64 " anchor levels need %" PRId64 " inputs, %zu given", cls,
            nl, want_ch, chl && chl->kind == Q7_PY_LIST ? chl->v.seq.len : (size_t)0);
    int64_t ch[2 * DETECT_MAX_LEVELS];
    for (int64_t i = 0; i < want_ch; i++)
        if (!q7_py_as_int(chl->v.seq.items[i], &ch[i]))
            return detect_bad(cls, "input channels must be ints");

    struct q7_py * m = q7_ym_module(c, "models.yolo", cls);
    if (!m)
        return Q7_ERR_OOM;
    /* self.grid = [torch.zeros(1)] * nl: one tensor, nl times */
    int64_t one = 1;
    struct q7_py * grid = q7_py_new(c->h, Q7_PY_LIST);
    if (!grid)
        return Q7_ERR_OOM;
    struct q7_py * g0 = q7_ym_tensor(c, 1, &one, 1);
    if (!g0)
        return q7_ym_failed();
    for (int64_t l = 0; l < nl; l++)
        if ((st = q7_py_append(c->h, grid, g0)))
            return st;
    if ((st = q7_ym_attr_int(c, m, "nc", nc)) || (st = q7_ym_attr_int(c, m, "no", no)) ||
        (st = q7_ym_attr_int(c, m, "nl", nl)) || (st = q7_ym_attr_int(c, m, "na", na)) ||
        (st = q7_ym_attr(c, m, "grid", grid)))
        return st;

    /* anchors (nl, na, 2) and anchor_grid (nl, 1, na, 1, 1, 2), in pixels for now */
    int64_t ashape[3] = {nl, na, 2}, gshape[6] = {nl, 1, na, 1, 1, 2};
    struct q7_py * at = q7_ym_tensor(c, 3, ashape, 1);
    if (!at)
        return q7_ym_failed();
    struct q7_py * ag = q7_ym_tensor(c, 6, gshape, 1);
    if (!ag)
        return q7_ym_failed();
    float *av = q7_ym_data(at), *gv = q7_ym_data(ag);
    for (int64_t l = 0; l < nl; l++)
        for (int64_t j = 0; j < per_level; j++) {
            double v = 0.0;
            q7_py_as_double(anchors->v.seq.items[l]->v.seq.items[j], &v);
            av[l * per_level + j] = gv[l * per_level + j] = (float)v;
        }
    struct q7_py * bufs = q7_py_getattr(m, "_buffers");
    if ((st = q7_py_dict_set_str(c->h, bufs, "anchors", at)) ||
        (st = q7_py_dict_set_str(c->h, bufs, "anchor_grid", ag)))
        return st;

    struct q7_py * list = NULL;
    if ((st = head_list(c, LIST_CONV, ch, 0, (int)nl, no * na, &list)) ||
        (st = q7_ym_child(c, m, "m", list)))
        return st;
    if (kind == Q7_YM_IAUXDETECT &&
        ((st = head_list(c, LIST_CONV, ch, (int)nl, (int)(2 * nl), no * na, &list)) ||
         (st = q7_ym_child(c, m, "m2", list))))
        return st;
    if (kind != Q7_YM_DETECT &&
        ((st = head_list(c, LIST_IMPLICIT_A, ch, 0, (int)nl, 0, &list)) ||
         (st = q7_ym_child(c, m, "ia", list)) ||
         (st = head_list(c, LIST_IMPLICIT_M, ch, 0, (int)nl, no * na, &list)) ||
         (st = q7_ym_child(c, m, "im", list))))
        return st;
    *out = m;
    return Q7_OK;
}

/* Model._initialize_biases on one output conv: b = bias.view(na, no);
 * b[:, 4] += log(8 / (640 / s) ** 2); b[:, 5:] += log(0.6 / (nc - 0.99)). The first term is
 * computed in float32 as PyTorch does on the 0-dim stride tensor; the additions are float32. */
static void bias_prior(struct q7_py * conv, int64_t na, int64_t no, int64_t nc, float s)
{
    float * b = q7_ym_data(q7_py_module_param(conv, "bias"));
    if (!b)
        return;
    float t = 640.0f / s;
    float q = 8.0f / (t * t);
    float obj = (float)log((double)q), cls = (float)log(0.6 / ((double)nc - 0.99));
    for (int64_t j = 0; j < na; j++) {
        b[j * no + 4] += obj;
        for (int64_t k = 5; k < no; k++)
            b[j * no + k] += cls;
    }
}

enum q7_status q7_ym_detect_finish(struct q7_ym_ctx * c, enum q7_ym_detect_kind kind,
                                   struct q7_py * det, const struct q7_ym_hw * in, int n_in,
                                   struct q7_py ** stride_out)
{
    int64_t nl = 0, na = 0, nc = 0, no = 0;
    q7_py_as_int(q7_py_getattr(det, "nl"), &nl);
    q7_py_as_int(q7_py_getattr(det, "na"), &na);
    q7_py_as_int(q7_py_getattr(det, "nc"), &nc);
    q7_py_as_int(q7_py_getattr(det, "no"), &no);
    Q7_ASSERT(nl >= 1 && nl <= n_in);
    struct q7_py * stride = q7_ym_tensor(c, 1, &nl, 1);
    if (!stride)
        return q7_ym_failed();
    float * s = q7_ym_data(stride);
    /* m.stride = tensor([256 / x.shape[-2] for x in forward(zeros(1, ch, 256, 256))]): the
     * width of each output (bs, na, ny, nx, no); IAuxDetect takes the first nl */
    for (int64_t l = 0; l < nl; l++)
        s[l] = (float)((double)Q7_YM_STRIDE_PROBE / (double)in[l].w);

    float * a = q7_ym_data(q7_py_module_buffer(det, "anchors"));
    float * g = q7_ym_data(q7_py_module_buffer(det, "anchor_grid"));
    for (int64_t l = 0; l < nl; l++) /* m.anchors /= m.stride.view(-1, 1, 1) */
        for (int64_t j = 0; j < 2 * na; j++)
            a[l * 2 * na + j] /= s[l];

    /* check_anchor_order: anchor areas (anchor_grid.prod(-1)) must grow with the stride */
    float da =
        g[(nl - 1) * 2 * na + 2 * (na - 1)] * g[(nl - 1) * 2 * na + 2 * (na - 1) + 1] - g[0] * g[1];
    float ds = s[nl - 1] - s[0];
    int sign_a = (da > 0) - (da < 0), sign_s = (ds > 0) - (ds < 0);
    if (sign_a != sign_s) { /* m.anchors[:] = m.anchors.flip(0), the same for anchor_grid */
        for (int64_t l = 0; l < nl / 2; l++)
            for (int64_t j = 0; j < 2 * na; j++) {
                int64_t x = l * 2 * na + j, y = (nl - 1 - l) * 2 * na + j;
                float t = a[x];
                a[x] = a[y];
                a[y] = t;
                t = g[x];
                g[x] = g[y];
                g[y] = t;
            }
    }
    enum q7_status st = q7_ym_attr(c, det, "stride", stride);
    if (st)
        return st;

    static const char * const lists[2] = {"m", "m2"};
    for (int k = 0; k < (kind == Q7_YM_IAUXDETECT ? 2 : 1); k++) {
        const struct q7_py * mods = q7_py_getattr(q7_py_module_child(det, lists[k]), "_modules");
        for (int64_t l = 0; mods && l < nl && (size_t)l < mods->v.dict.len; l++)
            bias_prior(mods->v.dict.values[l], na, no, nc, s[l]);
    }
    *stride_out = stride;
    return Q7_OK;
}
