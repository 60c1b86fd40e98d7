/* YOLOv7 module tree → q7 graph.
 *
 * The walker follows what each module's forward() computes in eval mode (models/common.py and
 * models/yolo.py of the yolov7 repository) and emits primitive nodes for it. It reads only
 * data: attributes (`f`, `i`, `type`, `np`, kernel sizes, eps, ...), parameters and buffers. */
#include "models/yolo_graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 256
#define ARGS_MAX_LEN 256
/* FP32 weights a graph may hold: 10x yolov7-e6e. Tensors may share one storage in a pickle,
 * so a small hostile file could otherwise expand to many times its size. */
#define GRAPH_MAX_WEIGHT_BYTES ((size_t)8 << 30)
#define MAX_INPUTS 64

struct builder {
    struct q7_graph * g;
    const char * source;
    int * layer_out;  /* node id of each top-level layer's output */
    int layer;        /* top-level layer being built */
    const struct q7_py * yaml_rows[4096];
    int n_yaml_rows;
    double depth_multiple;
    int shapes_only;
    size_t weight_bytes; /* FP32 weights copied so far */
};

static enum q7_status fail(struct builder * b, const char * name, const char * what)
{
    return q7_error_set(Q7_ERR_FORMAT, "%s: %s: %s", b->source, name, what);
}

static const char * class_name(const struct q7_py * o)
{
    return o && o->kind == Q7_PY_OBJECT ? o->v.object.name : "(not a module)";
}

static int is_tensor(const struct q7_py * o)
{
    return o && o->kind == Q7_PY_TENSOR;
}

static enum q7_status get_int(struct builder * b, const struct q7_py * m, const char * name,
                              const char * attr, int64_t * out)
{
    const struct q7_py * v = q7_py_getattr(m, attr);
    if (!q7_py_as_int(v, out))
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: attribute '%s' is missing or not an integer",
                            b->source, name, attr);
    return Q7_OK;
}

/* kernel_size/stride/padding/dilation: an int or a pair. */
static enum q7_status get_pair(struct builder * b, const struct q7_py * m, const char * name,
                               const char * attr, int64_t dflt, int * a, int * c)
{
    const struct q7_py * v = q7_py_getattr(m, attr);
    int64_t vals[2] = {dflt, dflt};
    if (v && v->kind != Q7_PY_NONE) {
        int n = q7_py_as_ints(v, vals, 2);
        if (n == 1)
            vals[1] = vals[0];
        else if (n != 2)
            return q7_error_set(Q7_ERR_FORMAT, "%s: %s: attribute '%s' is not an int or a pair",
                                b->source, name, attr);
    }
    if (vals[0] < 0 || vals[1] < 0 || vals[0] > 4096 || vals[1] > 4096)
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: attribute '%s' out of range", b->source,
                            name, attr);
    *a = (int)vals[0];
    *c = (int)vals[1];
    return Q7_OK;
}

/* Copies a tensor into the graph as FP32, checking its element count. */
static enum q7_status load_tensor(struct builder * b, const struct q7_py * t, const char * name,
                                  int ndim, const int64_t * shape, struct q7_tensor ** out)
{
    *out = NULL;
    if (!is_tensor(t))
        return q7_error_set(Q7_ERR_FORMAT, "%s: tensor %s is missing", b->source, name);
    const struct q7_py * storage = t->v.tensor.storage;
    int no_data = b->shapes_only && storage && storage->kind == Q7_PY_STORAGE &&
                  !storage->v.storage.data;
    if (!no_data) { /* checked before allocating */
        int64_t want = q7_py_tensor_numel(t);
        if (want < 0 || (size_t)want > (GRAPH_MAX_WEIGHT_BYTES - b->weight_bytes) / sizeof(float))
            return q7_error_set(Q7_ERR_LIMIT, "%s: %s: the model's weights exceed %zu GiB",
                                b->source, name, GRAPH_MAX_WEIGHT_BYTES >> 30);
        b->weight_bytes += (size_t)want * sizeof(float);
    }
    struct q7_tensor * dst = no_data ? q7_graph_new_tensor_shape(b->g, name, ndim, shape)
                                     : q7_graph_new_tensor(b->g, name, ndim, shape);
    if (!dst)
        return q7_error_wrap(Q7_ERR_OOM, "%s: %s", b->source, name);
    int64_t n = q7_tensor_numel(dst);
    if (q7_py_tensor_numel(t) != n)
        return q7_error_set(Q7_ERR_FORMAT, "%s: tensor %s has %lld elements, expected %lld",
                            b->source, name, (long long)q7_py_tensor_numel(t), (long long)n);
    if (no_data) {
        *out = dst;
        return Q7_OK;
    }
    enum q7_status st = q7_py_tensor_to_f32(t, dst->data, n);
    if (st)
        return q7_error_wrap(st, "%s: %s", b->source, name);
    *out = dst;
    return Q7_OK;
}

/* Module names are bounded by NAME_MAX_LEN; a longer one is cut (it only names things). */
static void name_fmt(char * dst, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static void name_fmt(char * dst, const char * fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, NAME_MAX_LEN, fmt, ap);
    va_end(ap);
}

static void join(char * dst, const char * prefix, const char * leaf)
{
    name_fmt(dst, "%s.%s", prefix, leaf);
}

static struct q7_node * add(struct builder * b, enum q7_op op, const char * name, const int * in,
                            int n_in)
{
    struct q7_node * nd = q7_graph_add_node(b->g, op, name, b->layer, in, n_in);
    return nd;
}

static enum q7_status emit_conv2d(struct builder * b, const struct q7_py * m, const char * name,
                                  int x, int * out)
{
    if (!q7_py_is_class(m, "Conv2d"))
        return fail(b, name, "expected a Conv2d");
    int64_t cin, cout, groups;
    enum q7_status st;
    if ((st = get_int(b, m, name, "in_channels", &cin)) ||
        (st = get_int(b, m, name, "out_channels", &cout)) ||
        (st = get_int(b, m, name, "groups", &groups)))
        return st;
    if (cin <= 0 || cout <= 0 || groups <= 0 || cin % groups || cout % groups ||
        cin > (1 << 20) || cout > (1 << 20))
        return fail(b, name, "bad channel or group counts");
    const struct q7_py * pm = q7_py_getattr(m, "padding_mode");
    if (pm && q7_py_as_str(pm) && strcmp(q7_py_as_str(pm), "zeros") != 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: padding_mode '%s' is not supported",
                            b->source, name, q7_py_as_str(pm));
    struct q7_conv_params p = {.in_ch = (int)cin, .out_ch = (int)cout, .groups = (int)groups};
    if ((st = get_pair(b, m, name, "kernel_size", 1, &p.kh, &p.kw)) ||
        (st = get_pair(b, m, name, "stride", 1, &p.stride_h, &p.stride_w)) ||
        (st = get_pair(b, m, name, "padding", 0, &p.pad_h, &p.pad_w)) ||
        (st = get_pair(b, m, name, "dilation", 1, &p.dil_h, &p.dil_w)))
        return st;
    if (p.kh < 1 || p.kw < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dil_h < 1 || p.dil_w < 1)
        return fail(b, name, "kernel, stride and dilation must be positive");
    struct q7_node * nd = add(b, Q7_OP_CONV2D, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.conv = p;
    char tname[NAME_MAX_LEN];
    int64_t wshape[4] = {cout, cin / groups, p.kh, p.kw};
    join(tname, name, "weight");
    if ((st = load_tensor(b, q7_py_module_param(m, "weight"), tname, 4, wshape,
                          &nd->w[Q7_W_WEIGHT])))
        return st;
    const struct q7_py * bias = q7_py_module_param(m, "bias");
    if (is_tensor(bias)) {
        join(tname, name, "bias");
        if ((st = load_tensor(b, bias, tname, 1, &wshape[0], &nd->w[Q7_W_BIAS])))
            return st;
    }
    *out = nd->id;
    return Q7_OK;
}

static enum q7_status emit_bn(struct builder * b, const struct q7_py * m, const char * name, int x,
                              int * out)
{
    if (!q7_py_is_class(m, "BatchNorm2d"))
        return fail(b, name, "expected a BatchNorm2d");
    int64_t c;
    double eps;
    enum q7_status st = get_int(b, m, name, "num_features", &c);
    if (st)
        return st;
    if (!q7_py_as_double(q7_py_getattr(m, "eps"), &eps) || !(eps > 0.0) || eps > 1.0)
        return fail(b, name, "BatchNorm eps is missing or out of range");
    struct q7_node * nd = add(b, Q7_OP_BATCHNORM, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.bn.eps = eps;
    static const char * const leaves[Q7_W_COUNT] = {"weight", "bias", "running_mean",
                                                    "running_var"};
    char tname[NAME_MAX_LEN];
    for (int r = 0; r < Q7_W_COUNT; r++) {
        const struct q7_py * t = r < Q7_W_MEAN ? q7_py_module_param(m, leaves[r])
                                               : q7_py_module_buffer(m, leaves[r]);
        join(tname, name, leaves[r]);
        if ((st = load_tensor(b, t, tname, 1, &c, &nd->w[r])))
            return st;
    }
    *out = nd->id;
    return Q7_OK;
}

/* Activation modules; Identity emits nothing. */
static enum q7_status emit_act(struct builder * b, const struct q7_py * m, const char * name,
                               int x, int * out)
{
    struct q7_act_params a = {Q7_ACT_IDENTITY, 0.0f};
    const char * cls = class_name(m);
    if (!m || m->kind == Q7_PY_NONE || strcmp(cls, "Identity") == 0) {
        *out = x;
        return Q7_OK;
    }
    if (strcmp(cls, "SiLU") == 0) {
        a.kind = Q7_ACT_SILU;
    } else if (strcmp(cls, "LeakyReLU") == 0) {
        double s = 0.01;
        q7_py_as_double(q7_py_getattr(m, "negative_slope"), &s);
        a.kind = Q7_ACT_LEAKY_RELU;
        a.slope = (float)s;
    } else if (strcmp(cls, "ReLU") == 0) {
        a.kind = Q7_ACT_RELU;
    } else if (strcmp(cls, "Sigmoid") == 0) {
        a.kind = Q7_ACT_SIGMOID;
    } else {
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: activation %s is not supported",
                            b->source, name, cls);
    }
    struct q7_node * nd = add(b, Q7_OP_ACT, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.act = a;
    *out = nd->id;
    return Q7_OK;
}

/* models.common.Conv: act(bn(conv(x))), or act(conv(x)) once fused (no bn). */
static enum q7_status emit_conv_module(struct builder * b, const struct q7_py * m,
                                       const char * name, int x, int * out)
{
    if (!q7_py_is_class(m, "Conv"))
        return fail(b, name, "expected a models.common.Conv");
    char child[NAME_MAX_LEN];
    enum q7_status st;
    join(child, name, "conv");
    if ((st = emit_conv2d(b, q7_py_module_child(m, "conv"), child, x, &x)))
        return st;
    const struct q7_py * bn = q7_py_module_child(m, "bn");
    if (bn && bn->kind != Q7_PY_NONE) {
        join(child, name, "bn");
        if ((st = emit_bn(b, bn, child, x, &x)))
            return st;
    }
    join(child, name, "act");
    return emit_act(b, q7_py_module_child(m, "act"), child, x, out);
}

static enum q7_status emit_maxpool(struct builder * b, const struct q7_py * m, const char * name,
                                   int x, int * out)
{
    if (!q7_py_is_class(m, "MaxPool2d"))
        return fail(b, name, "expected a MaxPool2d");
    struct q7_pool_params p = {0};
    int dh, dw;
    enum q7_status st;
    if ((st = get_pair(b, m, name, "kernel_size", 1, &p.kh, &p.kw)) ||
        (st = get_pair(b, m, name, "stride", 0, &p.stride_h, &p.stride_w)) ||
        (st = get_pair(b, m, name, "padding", 0, &p.pad_h, &p.pad_w)) ||
        (st = get_pair(b, m, name, "dilation", 1, &dh, &dw)))
        return st;
    if (p.stride_h == 0) { /* stride=None means stride = kernel_size */
        p.stride_h = p.kh;
        p.stride_w = p.kw;
    }
    if (dh != 1 || dw != 1)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: dilated max pooling is not supported",
                            b->source, name);
    if (p.kh < 1 || p.kw < 1 || p.pad_h * 2 > p.kh || p.pad_w * 2 > p.kw)
        return fail(b, name, "bad pooling kernel or padding");
    int64_t ceil_mode = 0;
    q7_py_as_int(q7_py_getattr(m, "ceil_mode"), &ceil_mode);
    p.ceil_mode = ceil_mode != 0;
    struct q7_node * nd = add(b, Q7_OP_MAXPOOL, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.pool = p;
    *out = nd->id;
    return Q7_OK;
}

static enum q7_status emit_upsample(struct builder * b, const struct q7_py * m, const char * name,
                                    int x, int * out)
{
    const struct q7_py * mode = q7_py_getattr(m, "mode");
    if (mode && q7_py_as_str(mode) && strcmp(q7_py_as_str(mode), "nearest") != 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: upsample mode '%s' is not supported",
                            b->source, name, q7_py_as_str(mode));
    double scale = 0.0;
    const struct q7_py * sf = q7_py_getattr(m, "scale_factor");
    if (!q7_py_as_double(sf, &scale)) {
        int64_t pair[2];
        if (q7_py_as_ints(sf, pair, 2) >= 1)
            scale = (double)pair[0];
    }
    if (scale < 1.0 || scale > 64.0 || scale != floor(scale))
        return q7_error_set(Q7_ERR_UNSUPPORTED,
                            "%s: %s: only integer nearest upsampling by scale_factor is supported",
                            b->source, name);
    struct q7_node * nd = add(b, Q7_OP_UPSAMPLE, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.upsample.scale = (int)scale;
    *out = nd->id;
    return Q7_OK;
}

static enum q7_status emit_concat(struct builder * b, const char * name, const int * xs, int n,
                                  int * out)
{
    struct q7_node * nd = add(b, Q7_OP_CONCAT, name, xs, n);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.concat_axis = 1;
    *out = nd->id;
    return Q7_OK;
}

/* RepConv: act(rbr_dense(x) + rbr_1x1(x) + rbr_identity(x)), or act(rbr_reparam(x)). */
static enum q7_status emit_repconv(struct builder * b, const struct q7_py * m, const char * name,
                                   int x, int * out)
{
    char child[NAME_MAX_LEN];
    enum q7_status st;
    int y;
    const struct q7_py * reparam = q7_py_module_child(m, "rbr_reparam");
    if (reparam && reparam->kind != Q7_PY_NONE) {
        join(child, name, "rbr_reparam");
        if ((st = emit_conv2d(b, reparam, child, x, &y)))
            return st;
    } else {
        int terms[3], n = 0;
        static const char * const branches[2] = {"rbr_dense", "rbr_1x1"};
        for (int k = 0; k < 2; k++) {
            const struct q7_py * seq = q7_py_module_child(m, branches[k]);
            char c0[NAME_MAX_LEN], c1[NAME_MAX_LEN];
            name_fmt(c0, "%s.%s.0", name, branches[k]);
            name_fmt(c1, "%s.%s.1", name, branches[k]);
            if ((st = emit_conv2d(b, q7_py_module_child(seq, "0"), c0, x, &y)) ||
                (st = emit_bn(b, q7_py_module_child(seq, "1"), c1, y, &terms[n++])))
                return st;
        }
        const struct q7_py * id = q7_py_module_child(m, "rbr_identity");
        if (id && id->kind != Q7_PY_NONE) {
            join(child, name, "rbr_identity");
            if ((st = emit_bn(b, id, child, x, &terms[n++])))
                return st;
        }
        struct q7_node * sum = add(b, Q7_OP_ADD, name, terms, n);
        if (!sum)
            return Q7_ERR_OOM;
        y = sum->id;
    }
    join(child, name, "act");
    return emit_act(b, q7_py_module_child(m, "act"), child, y, out);
}

/* Conv submodule by attribute name: `<name>.<leaf>`. */
static enum q7_status sub_conv(struct builder * b, const struct q7_py * m, const char * name,
                               const char * leaf, int x, int * out)
{
    char child[NAME_MAX_LEN];
    join(child, name, leaf);
    const struct q7_py * c = q7_py_module_child(m, leaf);
    if (q7_py_is_class(c, "RepConv"))
        return emit_repconv(b, c, child, x, out);
    return emit_conv_module(b, c, child, x, out);
}

/* SPPCSPC: cv7(cat(cv6(cv5(cat(x1, m(x1)...))), cv2(x))), x1 = cv4(cv3(cv1(x))). */
static enum q7_status emit_sppcspc(struct builder * b, const struct q7_py * m, const char * name,
                                   int x, int * out)
{
    enum q7_status st;
    int x1, y1, y2, cat[MAX_INPUTS];
    if ((st = sub_conv(b, m, name, "cv1", x, &x1)) || (st = sub_conv(b, m, name, "cv3", x1, &x1)) ||
        (st = sub_conv(b, m, name, "cv4", x1, &x1)))
        return st;
    const struct q7_py * pools = q7_py_module_child(m, "m");
    const struct q7_py * mods = q7_py_getattr(pools, "_modules");
    if (!mods || mods->kind != Q7_PY_DICT || mods->v.dict.len + 1 > MAX_INPUTS)
        return fail(b, name, "SPPCSPC has no pool list");
    int n = 0;
    cat[n++] = x1;
    for (size_t k = 0; k < mods->v.dict.len; k++) {
        char child[NAME_MAX_LEN];
        name_fmt(child, "%s.m.%zu", name, k);
        if ((st = emit_maxpool(b, mods->v.dict.values[k], child, x1, &cat[n])))
            return st;
        n++;
    }
    char cname[NAME_MAX_LEN];
    join(cname, name, "cat1");
    if ((st = emit_concat(b, cname, cat, n, &y1)) || (st = sub_conv(b, m, name, "cv5", y1, &y1)) ||
        (st = sub_conv(b, m, name, "cv6", y1, &y1)) || (st = sub_conv(b, m, name, "cv2", x, &y2)))
        return st;
    int pair[2] = {y1, y2};
    join(cname, name, "cat2");
    if ((st = emit_concat(b, cname, pair, 2, &y1)))
        return st;
    return sub_conv(b, m, name, "cv7", y1, out);
}

/* DownC: cat(cv2(cv1(x)), cv3(mp(x))). */
static enum q7_status emit_downc(struct builder * b, const struct q7_py * m, const char * name,
                                 int x, int * out)
{
    enum q7_status st;
    int a, c;
    char child[NAME_MAX_LEN];
    join(child, name, "mp");
    if ((st = sub_conv(b, m, name, "cv1", x, &a)) || (st = sub_conv(b, m, name, "cv2", a, &a)) ||
        (st = emit_maxpool(b, q7_py_module_child(m, "mp"), child, x, &c)) ||
        (st = sub_conv(b, m, name, "cv3", c, &c)))
        return st;
    int pair[2] = {a, c};
    return emit_concat(b, name, pair, 2, out);
}

static const struct q7_py * list_item(const struct q7_py * modlist, size_t i)
{
    const struct q7_py * mods = q7_py_getattr(modlist, "_modules");
    if (!mods || mods->kind != Q7_PY_DICT || i >= mods->v.dict.len)
        return NULL;
    return mods->v.dict.values[i];
}

static enum q7_status emit_implicit(struct builder * b, const struct q7_py * m, const char * name,
                                    enum q7_op op, int x, int64_t ch, int * out)
{
    const char * want = op == Q7_OP_IMPLICIT_ADD ? "ImplicitA" : "ImplicitM";
    if (!q7_py_is_class(m, want))
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: expected %s", b->source, name, want);
    struct q7_node * nd = add(b, op, name, &x, 1);
    if (!nd)
        return Q7_ERR_OOM;
    char tname[NAME_MAX_LEN];
    join(tname, name, "implicit");
    int64_t shape[4] = {1, ch, 1, 1};
    enum q7_status st =
        load_tensor(b, q7_py_module_param(m, "implicit"), tname, 4, shape, &nd->w[Q7_W_WEIGHT]);
    *out = nd->id;
    return st;
}

static enum q7_status emit_detect(struct builder * b, const struct q7_py * m, const char * name,
                                  const int * xs, int n_x, int * out)
{
    const char * cls = class_name(m);
    struct q7_detect_params p = {0};
    p.kind = strcmp(cls, "IDetect") == 0   ? Q7_DETECT_IDETECT
             : strcmp(cls, "IAuxDetect") == 0 ? Q7_DETECT_IAUX
                                              : Q7_DETECT_PLAIN;
    int64_t nc, no, nl, na;
    enum q7_status st;
    if ((st = get_int(b, m, name, "nc", &nc)) || (st = get_int(b, m, name, "no", &no)) ||
        (st = get_int(b, m, name, "nl", &nl)) || (st = get_int(b, m, name, "na", &na)))
        return st;
    if (nc < 1 || nc > 100000 || no != nc + 5 || nl < 1 || nl > Q7_MAX_LEVELS || na < 1 ||
        na > Q7_MAX_ANCHORS)
        return fail(b, name, "bad nc/no/nl/na in the detection head");
    int want_x = p.kind == Q7_DETECT_IAUX ? (int)(2 * nl) : (int)nl;
    if (n_x != want_x)
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s: %s has %d inputs, expected %d", b->source,
                            name, cls, n_x, want_x);
    p.nc = (int)nc;
    p.no = (int)no;
    p.nl = (int)nl;
    p.na = (int)na;
    /* strides: an attribute tensor set by Model.__init__ */
    const struct q7_py * stride = q7_py_getattr(m, "stride");
    float sv[Q7_MAX_LEVELS];
    if (!is_tensor(stride) || q7_py_tensor_numel(stride) != nl ||
        q7_py_tensor_to_f32(stride, sv, nl) != Q7_OK)
        return fail(b, name, "detection head has no stride tensor");
    float ag[Q7_MAX_LEVELS * Q7_MAX_ANCHORS * 2];
    const struct q7_py * agt = q7_py_module_buffer(m, "anchor_grid");
    if (!is_tensor(agt) || q7_py_tensor_numel(agt) != nl * na * 2 ||
        q7_py_tensor_to_f32(agt, ag, nl * na * 2) != Q7_OK)
        return fail(b, name, "detection head has no anchor_grid buffer of nl*na*2 values");
    for (int l = 0; l < p.nl; l++) {
        if (!(sv[l] >= 1.0f && sv[l] <= 1024.0f))
            return fail(b, name, "detection stride out of range");
        p.stride[l] = sv[l];
        for (int a = 0; a < p.na; a++) {
            p.anchor_grid[l][a][0] = ag[(l * p.na + a) * 2];
            p.anchor_grid[l][a][1] = ag[(l * p.na + a) * 2 + 1];
        }
        if ((int)sv[l] > b->g->stride_max)
            b->g->stride_max = (int)sv[l];
    }
    const struct q7_py * convs = q7_py_module_child(m, "m");
    const struct q7_py * ia = q7_py_module_child(m, "ia");
    const struct q7_py * im = q7_py_module_child(m, "im");
    int levels[Q7_MAX_LEVELS];
    char child[NAME_MAX_LEN];
    for (int l = 0; l < p.nl; l++) {
        int x = xs[l];
        const struct q7_py * conv = list_item(convs, (size_t)l);
        int64_t cin;
        if (!conv || get_int(b, conv, name, "in_channels", &cin))
            return fail(b, name, "detection head is missing a level conv");
        if (p.kind != Q7_DETECT_PLAIN && ia && ia->kind != Q7_PY_NONE) {
            name_fmt(child, "%s.ia.%d", name, l);
            if ((st = emit_implicit(b, list_item(ia, (size_t)l), child, Q7_OP_IMPLICIT_ADD, x,
                                    cin, &x)))
                return st;
        }
        name_fmt(child, "%s.m.%d", name, l);
        if ((st = emit_conv2d(b, conv, child, x, &x)))
            return st;
        if (p.kind != Q7_DETECT_PLAIN && im && im->kind != Q7_PY_NONE) {
            name_fmt(child, "%s.im.%d", name, l);
            if ((st = emit_implicit(b, list_item(im, (size_t)l), child, Q7_OP_IMPLICIT_MUL, x,
                                    p.na * p.no, &x)))
                return st;
        }
        levels[l] = x;
    }
    if (p.kind == Q7_DETECT_IAUX) {
        /* auxiliary heads run in eval mode too (their output is discarded); kept as nodes so
         * that parameters and GFLOPs count them as yolov7 does, skipped by the executor */
        const struct q7_py * m2 = q7_py_module_child(m, "m2");
        for (int l = 0; l < p.nl; l++) {
            int y;
            name_fmt(child, "%s.m2.%d", name, l);
            if ((st = emit_conv2d(b, list_item(m2, (size_t)l), child, xs[p.nl + l], &y)))
                return st;
        }
    }
    struct q7_node * nd = add(b, Q7_OP_DETECT, name, levels, p.nl);
    if (!nd)
        return Q7_ERR_OOM;
    nd->p.detect = p;
    b->g->nc = p.nc;
    *out = nd->id;
    return Q7_OK;
}

/* One top-level layer. xs: the resolved inputs (`f`). */
static enum q7_status emit_layer(struct builder * b, const struct q7_py * m, const char * name,
                                 const int * xs, int n_x, int * out)
{
    const char * cls = class_name(m);
    int x = xs[0];
    if (strcmp(cls, "Conv") == 0)
        return emit_conv_module(b, m, name, x, out);
    if (strcmp(cls, "RepConv") == 0)
        return emit_repconv(b, m, name, x, out);
    if (strcmp(cls, "MP") == 0 || strcmp(cls, "SP") == 0) {
        char child[NAME_MAX_LEN];
        join(child, name, "m");
        return emit_maxpool(b, q7_py_module_child(m, "m"), child, x, out);
    }
    if (strcmp(cls, "MaxPool2d") == 0)
        return emit_maxpool(b, m, name, x, out);
    if (strcmp(cls, "Upsample") == 0)
        return emit_upsample(b, m, name, x, out);
    if (strcmp(cls, "Concat") == 0) {
        int64_t d = 1;
        q7_py_as_int(q7_py_getattr(m, "d"), &d);
        if (d != 1)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: concat along dim %lld",
                                b->source, name, (long long)d);
        return emit_concat(b, name, xs, n_x, out);
    }
    if (strcmp(cls, "Shortcut") == 0) {
        if (n_x != 2)
            return fail(b, name, "Shortcut needs two inputs");
        struct q7_node * nd = add(b, Q7_OP_ADD, name, xs, 2);
        if (!nd)
            return Q7_ERR_OOM;
        *out = nd->id;
        return Q7_OK;
    }
    if (strcmp(cls, "ReOrg") == 0) {
        struct q7_node * nd = add(b, Q7_OP_REORG, name, &x, 1);
        if (!nd)
            return Q7_ERR_OOM;
        *out = nd->id;
        return Q7_OK;
    }
    if (strcmp(cls, "SPPCSPC") == 0)
        return emit_sppcspc(b, m, name, x, out);
    if (strcmp(cls, "DownC") == 0)
        return emit_downc(b, m, name, x, out);
    if (strcmp(cls, "Conv2d") == 0)
        return emit_conv2d(b, m, name, x, out);
    if (strcmp(cls, "Detect") == 0 || strcmp(cls, "IDetect") == 0 ||
        strcmp(cls, "IAuxDetect") == 0)
        return emit_detect(b, m, name, xs, n_x, out);
    return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s: module %s is not supported", b->source,
                        name, cls);
}

/* Sum of parameter numels of a module tree (each tensor object counted once per path;
 * yolov7 modules never share parameters). */
static int64_t count_params(const struct q7_py * m, int depth)
{
    if (!m || m->kind != Q7_PY_OBJECT || depth > 64)
        return 0;
    int64_t total = 0;
    const struct q7_py * params = q7_py_getattr(m, "_parameters");
    if (params && params->kind == Q7_PY_DICT)
        for (size_t k = 0; k < params->v.dict.len; k++)
            if (is_tensor(params->v.dict.values[k]))
                total += q7_py_tensor_numel(params->v.dict.values[k]);
    const struct q7_py * mods = q7_py_getattr(m, "_modules");
    if (mods && mods->kind == Q7_PY_DICT)
        for (size_t k = 0; k < mods->v.dict.len; k++)
            total += count_params(mods->v.dict.values[k], depth + 1);
    return total;
}

/* Rows of the model's yaml (backbone + head): [from, n, module, args]. */
static void collect_yaml_rows(struct builder * b, const struct q7_py * model)
{
    const struct q7_py * y = q7_py_getattr(model, "yaml");
    b->n_yaml_rows = 0;
    b->depth_multiple = 1.0;
    if (!y || y->kind != Q7_PY_DICT)
        return;
    q7_py_as_double(q7_py_dict_get(y, "depth_multiple"), &b->depth_multiple);
    const char * parts[2] = {"backbone", "head"};
    for (int p = 0; p < 2; p++) {
        const struct q7_py * l = q7_py_dict_get(y, parts[p]);
        if (!l || l->kind != Q7_PY_LIST)
            continue;
        for (size_t i = 0; i < l->v.seq.len && b->n_yaml_rows < 4096; i++)
            b->yaml_rows[b->n_yaml_rows++] = l->v.seq.items[i];
    }
}

static enum q7_status fill_layer(struct builder * b, const struct q7_py * m, int i,
                                 const int64_t * from, int n_from)
{
    struct q7_layer * L = &b->g->layers[i];
    L->index = i;
    L->n_from = n_from;
    for (int k = 0; k < n_from; k++)
        L->from[k] = (int)from[k];
    int64_t np;
    L->params = q7_py_as_int(q7_py_getattr(m, "np"), &np) ? np : count_params(m, 0);
    const char * type = q7_py_as_str(q7_py_getattr(m, "type"));
    if (!type)
        type = class_name(m);
    const char * dot = strrchr(type, '.');
    L->type = q7_arena_strdup(b->g->arena, dot ? dot + 1 : type);
    L->n = 1;
    char args[ARGS_MAX_LEN] = "";
    if (i < b->n_yaml_rows) {
        const struct q7_py * row = b->yaml_rows[i];
        if (row && row->kind == Q7_PY_LIST && row->v.seq.len == 4) {
            int64_t n = 1;
            if (q7_py_as_int(row->v.seq.items[1], &n) && n > 1) {
                double scaled = round((double)n * b->depth_multiple);
                n = scaled > 1 ? (int64_t)scaled : 1;
            }
            L->n = (int)n;
            q7_py_repr(row->v.seq.items[3], args, sizeof args);
        }
    }
    L->args = q7_arena_strdup(b->g->arena, args);
    return L->type && L->args ? Q7_OK : Q7_ERR_OOM;
}

const struct q7_py * q7_yolo_find_model(const struct q7_py * root, const char * source)
{
    if (q7_py_is_class(root, "Model"))
        return root;
    const char * keys[2] = {"model", "ema"};
    for (int k = 0; k < 2; k++) {
        const struct q7_py * m = q7_py_dict_get(root, keys[k]);
        if (q7_py_is_class(m, "Model"))
            return m;
    }
    q7_error_set(Q7_ERR_FORMAT,
                 "%s: no models.yolo.Model object in the checkpoint (a bare state_dict needs "
                 "--cfg)",
                 source);
    return NULL;
}

enum q7_status q7_yolo_build_graph(const struct q7_py * model, const char * source,
                                   struct q7_graph ** out)
{
    return q7_yolo_build_graph_ex(model, source, 0, out);
}

enum q7_status q7_yolo_build_graph_ex(const struct q7_py * model, const char * source,
                                      int shapes_only, struct q7_graph ** out)
{
    *out = NULL;
    struct builder b = {.source = source ? source : "model", .shapes_only = shapes_only};
    const struct q7_py * seq = q7_py_module_child(model, "model");
    const struct q7_py * mods = q7_py_getattr(seq, "_modules");
    if (!q7_py_is_class(model, "Model") || !mods || mods->kind != Q7_PY_DICT ||
        mods->v.dict.len == 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: not a yolov7 Model (no model Sequential)",
                            b.source);
    int n_layers = (int)mods->v.dict.len;
    if (n_layers > 4096)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %d layers is more than q7 accepts", b.source,
                            n_layers);
    b.g = q7_graph_create();
    if (!b.g)
        return Q7_ERR_OOM;
    b.g->source = q7_arena_strdup(b.g->arena, b.source);
    b.layer_out = malloc((size_t)n_layers * sizeof(int));
    b.g->layers = calloc((size_t)n_layers, sizeof *b.g->layers);
    enum q7_status st = Q7_OK;
    if (!b.layer_out || !b.g->layers) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", b.source);
        goto fail;
    }
    b.g->n_layers = n_layers;
    collect_yaml_rows(&b, model);
    b.layer = -1;
    struct q7_node * input = add(&b, Q7_OP_INPUT, "input", NULL, 0);
    if (!input) {
        st = Q7_ERR_OOM;
        goto fail;
    }
    b.g->input = input->id;
    int detect = -1;
    for (int i = 0; i < n_layers; i++) {
        const struct q7_py * m = mods->v.dict.values[i];
        char name[NAME_MAX_LEN];
        name_fmt(name, "model.%d", i);
        b.layer = i;
        int64_t from[Q7_MAX_FROM];
        const struct q7_py * f = q7_py_getattr(m, "f");
        int n_from = q7_py_as_ints(f, from, Q7_MAX_FROM);
        if (n_from < 1) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: %s: attribute 'f' (inputs) missing or too long",
                              b.source, name);
            goto fail;
        }
        int xs[Q7_MAX_FROM];
        for (int k = 0; k < n_from; k++) {
            /* -1 is the previous layer (the image for layer 0); other negatives index
             * back from the current layer, as Python's y[j] does */
            int64_t j = from[k] < 0 ? i + from[k] : from[k];
            if (!(j == -1 && i == 0) && (j < 0 || j >= i)) {
                st = q7_error_set(Q7_ERR_FORMAT, "%s: %s: input index %lld out of range",
                                  b.source, name, (long long)from[k]);
                goto fail;
            }
            xs[k] = j < 0 ? b.g->input : b.layer_out[j];
        }
        if ((st = emit_layer(&b, m, name, xs, n_from, &b.layer_out[i])) ||
            (st = fill_layer(&b, m, i, from, n_from)))
            goto fail;
        b.g->layers[i].out_node = b.layer_out[i];
        if (b.g->nodes[b.layer_out[i]]->op == Q7_OP_DETECT)
            detect = b.layer_out[i];
    }
    if (detect < 0) {
        st = q7_error_set(Q7_ERR_FORMAT, "%s: the model has no detection head", b.source);
        goto fail;
    }
    b.g->output = detect;
    b.g->img_size = b.g->stride_max >= 64 ? 1280 : 640;
    const struct q7_py * names = q7_py_getattr(model, "names");
    if (names && (names->kind == Q7_PY_LIST || names->kind == Q7_PY_TUPLE) &&
        names->v.seq.len == (size_t)b.g->nc) {
        b.g->names = q7_arena_alloc(b.g->arena, (size_t)b.g->nc * sizeof(char *));
        for (int k = 0; b.g->names && k < b.g->nc; k++) {
            const char * s = q7_py_as_str(names->v.seq.items[k]);
            b.g->names[k] = q7_arena_strdup(b.g->arena, s ? s : "?");
        }
    }
    if ((st = q7_graph_infer_shapes(b.g, 1, b.g->img_size, b.g->img_size)))
        goto fail;
    free(b.layer_out);
    *out = b.g;
    return Q7_OK;
fail:
    free(b.layer_out);
    q7_graph_free(b.g);
    if (st == Q7_ERR_OOM && !q7_error_message()[0])
        q7_error_set(st, "%s: out of memory", b.source);
    return st;
}
