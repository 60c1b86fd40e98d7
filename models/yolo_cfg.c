/* yolov7's parse_model and Model.__init__ over a config dict (see yaml_cfg.h): channel and
 * repeat scaling, argument evaluation, `from` bookkeeping and the save list, one module per
 * layer (yolo_modules.c, yolo_detect.c), the stride probe at 256x256 and the Model object. */
#include "models/yolo_modules_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_LAYERS 4096
#define CFG_MAX_FROM 1024 /* inputs of one layer */
#define CFG_MAX_REPEATS 1024
#define CFG_MAX_MULTIPLE 64.0 /* depth_multiple / width_multiple */
#define CFG_COPY_DEPTH 64

enum layer_kind {
    LK_CONV,
    LK_REPCONV,
    LK_DOWNC,
    LK_SPPCSPC,
    LK_MP,
    LK_SP,
    LK_REORG,
    LK_CONCAT,
    LK_SHORTCUT,
    LK_UPSAMPLE,
    LK_MAXPOOL,
    LK_DETECT,
    LK_IDETECT,
    LK_IAUXDETECT
};

static const struct layer_type {
    const char * name;   /* as written in the yaml (eval'd in models/yolo.py) */
    const char * module; /* the class: module and name */
    const char * cls;
    enum layer_kind kind;
} layer_types[] = {
    {"Conv", "models.common", "Conv", LK_CONV},
    {"RepConv", "models.common", "RepConv", LK_REPCONV},
    {"DownC", "models.common", "DownC", LK_DOWNC},
    {"SPPCSPC", "models.common", "SPPCSPC", LK_SPPCSPC},
    {"MP", "models.common", "MP", LK_MP},
    {"SP", "models.common", "SP", LK_SP},
    {"ReOrg", "models.common", "ReOrg", LK_REORG},
    {"Concat", "models.common", "Concat", LK_CONCAT},
    {"Shortcut", "models.common", "Shortcut", LK_SHORTCUT},
    {"nn.Upsample", "torch.nn.modules.upsampling", "Upsample", LK_UPSAMPLE},
    {"nn.MaxPool2d", "torch.nn.modules.pooling", "MaxPool2d", LK_MAXPOOL},
    {"Detect", "models.yolo", "Detect", LK_DETECT},
    {"IDetect", "models.yolo", "IDetect", LK_IDETECT},
    {"IAuxDetect", "models.yolo", "IAuxDetect", LK_IAUXDETECT},
};

static int is_detect(enum layer_kind k)
{
    return k == LK_DETECT || k == LK_IDETECT || k == LK_IAUXDETECT;
}

/* parse_model's first list: c1 = ch[f], c2 = make_divisible(args[0] * gw, 8). */
static int takes_c1_c2(enum layer_kind k)
{
    return k == LK_CONV || k == LK_REPCONV || k == LK_DOWNC || k == LK_SPPCSPC;
}

struct layer_out {
    int64_t c;          /* ch[i] */
    struct q7_ym_hw hw; /* output size in the stride probe */
};

struct builder {
    struct q7_ym_ctx c;
    struct q7_py * d; /* the Model's yaml (our copy) */
    int64_t nc, na, no, ch_in;
    double gd, gw;
    struct q7_py * anchors;
    struct layer_out * out; /* per layer */
    int64_t * save;         /* parse_model's save list, unsorted */
    size_t n_save;
    size_t copied; /* nodes copied (bounds alias expansion) */
};

/* ---- the config dict -------------------------------------------------------------------- */

static enum q7_status copy_obj(struct builder * b, const struct q7_py * o, int depth,
                               struct q7_py ** out)
{
    struct q7_pyheap * h = b->c.h;
    if (depth > CFG_COPY_DEPTH || ++b->copied > Q7_YAML_MAX_NODES)
        return q7_error_set(Q7_ERR_LIMIT, "config is nested too deeply or too large");
    switch (o->kind) {
    case Q7_PY_NONE:
        *out = q7_py_none(h);
        break;
    case Q7_PY_BOOL:
        *out = q7_py_bool(h, (int)o->v.i);
        break;
    case Q7_PY_INT:
        *out = q7_py_int(h, o->v.i);
        break;
    case Q7_PY_FLOAT:
        *out = q7_py_float(h, o->v.f);
        break;
    case Q7_PY_STR:
        *out = q7_py_str(h, o->v.str.s, o->v.str.len);
        break;
    case Q7_PY_LIST:
    case Q7_PY_TUPLE: {
        struct q7_py * l = q7_py_new(h, o->kind);
        if (!l)
            return Q7_ERR_OOM;
        for (size_t i = 0; i < o->v.seq.len; i++) {
            struct q7_py * v = NULL;
            enum q7_status st = copy_obj(b, o->v.seq.items[i], depth + 1, &v);
            if (st || (st = q7_py_append(h, l, v)))
                return st;
        }
        *out = l;
        return Q7_OK;
    }
    case Q7_PY_DICT: {
        struct q7_py * d = q7_py_new(h, Q7_PY_DICT);
        if (!d)
            return Q7_ERR_OOM;
        for (size_t i = 0; i < o->v.dict.len; i++) {
            struct q7_py *k = NULL, *v = NULL;
            enum q7_status st = copy_obj(b, o->v.dict.keys[i], depth + 1, &k);
            if (st || (st = copy_obj(b, o->v.dict.values[i], depth + 1, &v)) ||
                (st = q7_py_dict_set(h, d, k, v)))
                return st;
        }
        *out = d;
        return Q7_OK;
    }
    default: {
        char r[64];
        q7_py_repr(o, r, sizeof r);
        return q7_error_set(Q7_ERR_FORMAT, "config holds %s, not plain data", r);
    }
    }
    return *out ? Q7_OK : Q7_ERR_OOM;
}

static enum q7_status need_number(const struct q7_py * d, const char * key, double lo, double hi,
                                  double * out)
{
    const struct q7_py * v = q7_py_dict_get(d, key);
    if (!v)
        return q7_error_set(Q7_ERR_FORMAT, "config has no '%s'", key);
    if (!q7_py_as_double(v, out) || !(*out >= lo && *out <= hi))
        return q7_error_set(Q7_ERR_FORMAT, "config: '%s' must be a number in [%g, %g]", key, lo,
                            hi);
    return Q7_OK;
}

/* Sets a multiple override unless the yaml already holds that value. */
static enum q7_status override_number(struct builder * b, const char * key, double v)
{
    double cur;
    if (!(v > 0.0))
        return Q7_OK;
    if (q7_py_as_double(q7_py_dict_get(b->d, key), &cur) && cur == v)
        return Q7_OK;
    return q7_py_dict_set_str(b->c.h, b->d, key, q7_py_float(b->c.h, v));
}

/* Model.__init__ before parse_model: ch, the overrides, then parse_model's globals. */
static enum q7_status read_globals(struct builder * b, const struct q7_cfg_params * p)
{
    struct q7_pyheap * h = b->c.h;
    enum q7_status st;
    if (!q7_py_dict_get(b->d, "ch") && (st = q7_py_dict_set_str(h, b->d, "ch", q7_py_int(h, 3))))
        return st;
    if (!q7_py_as_int(q7_py_dict_get(b->d, "ch"), &b->ch_in) || b->ch_in < 1 ||
        b->ch_in > Q7_YM_MAX_CHANNELS)
        return q7_error_set(Q7_ERR_FORMAT, "config: 'ch' must be a positive int");
    if (!q7_py_as_int(q7_py_dict_get(b->d, "nc"), &b->nc))
        return q7_error_set(Q7_ERR_FORMAT, "config: 'nc' must be an int");
    if (p->nc > 0 && p->nc != b->nc) {
        if ((st = q7_py_dict_set_str(h, b->d, "nc", q7_py_int(h, p->nc))))
            return st;
        b->nc = p->nc;
    }
    if (b->nc < 1 || b->nc > 100000)
        return q7_error_set(Q7_ERR_FORMAT, "config: nc = %" PRId64 " is out of range [1, 100000]",
                            b->nc);
    if ((st = override_number(b, "depth_multiple", p->depth_multiple)) ||
        (st = override_number(b, "width_multiple", p->width_multiple)) ||
        (st = need_number(b->d, "depth_multiple", 1e-6, CFG_MAX_MULTIPLE, &b->gd)) ||
        (st = need_number(b->d, "width_multiple", 1e-6, CFG_MAX_MULTIPLE, &b->gw)))
        return st;
    /* na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors */
    b->anchors = q7_py_dict_get(b->d, "anchors");
    if (!b->anchors)
        return q7_error_set(Q7_ERR_FORMAT, "config has no 'anchors'");
    if (b->anchors->kind == Q7_PY_LIST) {
        const struct q7_py * a0 = b->anchors->v.seq.len ? b->anchors->v.seq.items[0] : NULL;
        if (!a0 || (a0->kind != Q7_PY_LIST && a0->kind != Q7_PY_TUPLE))
            return q7_error_set(Q7_ERR_FORMAT, "config: 'anchors' must be a list of lists");
        b->na = (int64_t)a0->v.seq.len / 2;
    } else if (!q7_py_as_int(b->anchors, &b->na)) {
        return q7_error_set(Q7_ERR_FORMAT, "config: 'anchors' must be a list or an int");
    }
    if (b->na < 1 || b->na > 64)
        return q7_error_set(Q7_ERR_FORMAT, "config: %" PRId64 " anchors per level", b->na);
    b->no = b->na * (b->nc + 5);
    return Q7_OK;
}

/* ---- one layer ------------------------------------------------------------------------ */

/* Resolves a `from` index of layer i: *src is the layer it reads, or -1 for the image. */
static enum q7_status from_index(int64_t i, int64_t x, int64_t * src)
{
    if (i == 0 && x == -1)
        *src = -1;
    else if (x >= -i && x < i)
        *src = x < 0 ? i + x : x;
    else
        return q7_error_set(Q7_ERR_FORMAT,
                            "'from' index %" PRId64 " is out of range for layer "
                            "%" PRId64 " (valid: -%" PRId64 " to %" PRId64 ")",
                            x, i, i ? i : 1, i ? i - 1 : -1);
    return Q7_OK;
}

static struct layer_out input_of(const struct builder * b, int64_t src)
{
    if (src >= 0)
        return b->out[src];
    struct layer_out img = {b->ch_in, {Q7_YM_STRIDE_PROBE, Q7_YM_STRIDE_PROBE}};
    return img;
}

/* eval() of a string argument, as far as q7 evaluates Python: None, True, False, nc,
 * anchors, na, no, numbers, activation modules; anything else stays the string (a NameError
 * inside parse_model's try). */
static enum q7_status eval_arg(struct builder * b, struct q7_py * v, struct q7_py ** out)
{
    struct q7_pyheap * h = b->c.h;
    *out = v;
    if (v->kind != Q7_PY_STR)
        return Q7_OK;
    const char * s = v->v.str.s;
    if (strcmp(s, "None") == 0)
        *out = q7_py_none(h);
    else if (strcmp(s, "True") == 0 || strcmp(s, "False") == 0)
        *out = q7_py_bool(h, s[0] == 'T');
    else if (strcmp(s, "nc") == 0)
        *out = q7_py_int(h, b->nc);
    else if (strcmp(s, "na") == 0)
        *out = q7_py_int(h, b->na);
    else if (strcmp(s, "no") == 0)
        *out = q7_py_int(h, b->no);
    else if (strcmp(s, "anchors") == 0)
        *out = b->anchors;
    else if (q7_ym_parse_number(s, v->v.str.len, &b->c, out))
        ;
    else {
        struct q7_py * act = NULL;
        enum q7_status st = q7_ym_eval_activation(&b->c, s, &act);
        if (st)
            return st;
        if (act)
            *out = act;
        return Q7_OK;
    }
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* Builds one instance of a single-input module. */
static enum q7_status build_single(struct builder * b, enum layer_kind k,
                                   const struct q7_ym_args * a, struct q7_ym_hw * hw,
                                   struct q7_py ** m)
{
    struct q7_ym_ctx * c = &b->c;
    switch (k) {
    case LK_CONV:
        return q7_ym_conv(c, a, hw, m);
    case LK_REPCONV:
        return q7_ym_repconv(c, a, hw, m);
    case LK_DOWNC:
        return q7_ym_downc(c, a, hw, m);
    case LK_SPPCSPC:
        return q7_ym_sppcspc(c, a, hw, m);
    case LK_MP:
        return q7_ym_mp(c, a, hw, m);
    case LK_SP:
        return q7_ym_sp(c, a, hw, m);
    case LK_REORG:
        return q7_ym_reorg(c, a, hw, m);
    case LK_UPSAMPLE:
        return q7_ym_upsample(c, a, hw, m);
    case LK_MAXPOOL:
        return q7_ym_maxpool(c, a, hw, m);
    default:
        return q7_error_set(Q7_ERR_INTERNAL, "not a single-input module");
    }
}

/* Inputs of a multi-input layer must agree in size (torch.cat, +). */
static enum q7_status same_sizes(const struct builder * b, const int64_t * src, size_t n,
                                 const char * cls, struct q7_ym_hw * hw)
{
    struct layer_out first = input_of(b, src[0]);
    for (size_t j = 1; j < n; j++) {
        struct layer_out o = input_of(b, src[j]);
        if (o.hw.h != first.hw.h || o.hw.w != first.hw.w)
            return q7_error_set(Q7_ERR_FORMAT,
                                "%s: inputs of different sizes for a %dx%d image "
                                "(%" PRId64 "x%" PRId64 " and %" PRId64 "x%" PRId64 ")",
                                cls, Q7_YM_STRIDE_PROBE, Q7_YM_STRIDE_PROBE, first.hw.h, first.hw.w,
                                o.hw.h, o.hw.w);
    }
    *hw = first.hw;
    return Q7_OK;
}

/* parse_model's per-type bookkeeping: the output channels c2 (ch[i]) and the constructor
 * args (c1, c2 and n for CSP-style modules; the input channels for detection heads). A
 * Detect row leaves *c2 as it was (parse_model does not set it there). */
static enum q7_status rewrite_args(struct builder * b, const struct layer_type * t,
                                   const int64_t * src, size_t n_src, struct q7_ym_args * a,
                                   int64_t * n, int64_t * c2)
{
    struct q7_pyheap * h = b->c.h;
    struct layer_out in0 = input_of(b, src[0]);
    enum q7_status st;
    if (takes_c1_c2(t->kind)) {
        /* c1, c2 = ch[f], args[0]; if c2 != no: c2 = make_divisible(c2 * gw, 8) */
        double c2d;
        if (a->n < 1 || !q7_py_as_double(a->v[0], &c2d))
            return q7_error_set(Q7_ERR_FORMAT, "%s needs its output channels as args[0]", t->name);
        struct q7_py * c2v = a->v[0];
        if (c2d != (double)b->no) {
            double scaled = ceil(c2d * b->gw / 8.0) * 8.0;
            if (!(scaled >= 0.0 && scaled <= (double)Q7_YM_MAX_CHANNELS))
                return q7_error_set(Q7_ERR_LIMIT, "%g output channels", scaled);
            c2v = q7_py_int(h, (int64_t)scaled);
        }
        if (!c2v || !q7_py_as_int(c2v, c2))
            return c2v ? q7_error_set(Q7_ERR_FORMAT, "output channels must be an int") : Q7_ERR_OOM;
        /* args = [c1, c2, *args[1:]]; CSP-style modules take n as args[2] */
        int insert_n = t->kind == LK_DOWNC || t->kind == LK_SPPCSPC;
        memmove(&a->v[2 + insert_n], &a->v[1], (size_t)(a->n - 1) * sizeof a->v[0]);
        a->n += 1 + insert_n;
        a->v[0] = q7_py_int(h, in0.c);
        a->v[1] = c2v;
        if (insert_n) {
            a->v[2] = q7_py_int(h, *n);
            *n = 1;
        }
        if (!a->v[0] || (insert_n && !a->v[2]))
            return Q7_ERR_OOM;
    } else if (t->kind == LK_CONCAT) {
        *c2 = 0;
        for (size_t j = 0; j < n_src; j++)
            *c2 += input_of(b, src[j]).c;
    } else if (t->kind == LK_SHORTCUT) {
        *c2 = in0.c;
    } else if (is_detect(t->kind)) {
        /* args.append([ch[x] for x in f]); an int anchors becomes that many per level */
        struct q7_py * chl = q7_py_new(h, Q7_PY_LIST);
        if (!chl)
            return Q7_ERR_OOM;
        for (size_t j = 0; j < n_src; j++)
            if ((st = q7_py_append(h, chl, q7_py_int(h, input_of(b, src[j]).c))))
                return st;
        int64_t na_int;
        if (a->n >= 2 && q7_py_as_int(a->v[1], &na_int)) {
            if (na_int < 1 || na_int > 64)
                return q7_error_set(Q7_ERR_FORMAT, "%" PRId64 " anchors per level", na_int);
            struct q7_py *row0 = q7_py_new(h, Q7_PY_LIST), *rows = q7_py_new(h, Q7_PY_LIST);
            if (!row0 || !rows)
                return Q7_ERR_OOM;
            for (int64_t k = 0; k < 2 * na_int; k++)
                if ((st = q7_py_append(h, row0, q7_py_int(h, k))))
                    return st;
            for (size_t j = 0; j < n_src; j++) /* [list(range(2 * na))] * len(f) */
                if ((st = q7_py_append(h, rows, row0)))
                    return st;
            a->v[1] = rows;
        }
        a->v[a->n++] = chl;
    } else if (t->kind == LK_REORG) {
        *c2 = in0.c * 4;
    } else {
        *c2 = in0.c;
    }

    return Q7_OK;
}

/* m_ = Sequential(*[m(*args) for _ in range(n)]) if n > 1 else m(*args), with the stride
 * probe through it (*hw: its output size). */
static enum q7_status instantiate(struct builder * b, const struct layer_type * t,
                                  const struct q7_ym_args * a, int64_t n, const int64_t * src,
                                  size_t n_src, struct q7_ym_hw * hw, struct q7_py ** out)
{
    int multi = t->kind == LK_CONCAT || t->kind == LK_SHORTCUT || is_detect(t->kind);
    struct q7_py * m = NULL;
    enum q7_status st;
    *hw = input_of(b, src[0]).hw;
    if (multi) {
        if (t->kind == LK_SHORTCUT && n_src < 2)
            return q7_error_set(Q7_ERR_FORMAT, "Shortcut adds two layers");
        if ((st = same_sizes(b, src, t->kind == LK_SHORTCUT ? 2 : (is_detect(t->kind) ? 1 : n_src),
                             t->name, hw)))
            return st;
        if (t->kind == LK_CONCAT)
            st = q7_ym_concat(&b->c, a, &m);
        else if (t->kind == LK_SHORTCUT)
            st = q7_ym_shortcut(&b->c, a, &m);
        else
            st = q7_ym_detect(&b->c,
                              t->kind == LK_DETECT    ? Q7_YM_DETECT
                              : t->kind == LK_IDETECT ? Q7_YM_IDETECT
                                                      : Q7_YM_IAUXDETECT,
                              a, &m);
        if (st)
            return st;
    } else if (n == 1) {
        if ((st = build_single(b, t->kind, a, hw, &m)))
            return st;
    } else {
        m = q7_ym_module(&b->c, "torch.nn.modules.container", "Sequential");
        if (!m)
            return Q7_ERR_OOM;
        for (int64_t r = 0; r < n; r++) {
            struct q7_py * one = NULL;
            char key[24];
            snprintf(key, sizeof key, "%" PRId64, r);
            if ((st = build_single(b, t->kind, a, hw, &one)) ||
                (st = q7_ym_child(&b->c, m, key, one)))
                return st;
        }
    }

    *out = m;
    return Q7_OK;
}

/* One row [from, number, module, args] of backbone + head: parse_model's loop body. The new
 * layer is appended to `seq`; *last_c2 carries parse_model's c2 across iterations (a Detect
 * row does not set it). */
static enum q7_status build_layer(struct builder * b, int64_t i, const struct q7_py * row,
                                  struct q7_py * seq, int64_t * last_c2, struct q7_py ** layer,
                                  enum layer_kind * kind_out, int64_t * src, size_t * n_src)
{
    struct q7_pyheap * h = b->c.h;
    enum q7_status st;
    if ((row->kind != Q7_PY_LIST && row->kind != Q7_PY_TUPLE) || row->v.seq.len != 4)
        return q7_error_set(Q7_ERR_FORMAT, "a layer must be [from, number, module, args]");
    struct q7_py * f = row->v.seq.items[0];
    const struct q7_py *nv = row->v.seq.items[1], *mv = row->v.seq.items[2];
    const struct q7_py * av = row->v.seq.items[3];

    /* module: eval(m) */
    const char * mname = q7_py_as_str(mv);
    if (!mname)
        return q7_error_set(Q7_ERR_FORMAT, "the module must be a name");
    if (strncmp(mname, "torch.nn.", 9) == 0)
        mname += 6;
    const struct layer_type * t = NULL;
    for (size_t k = 0; k < sizeof layer_types / sizeof layer_types[0]; k++)
        if (strcmp(mname, layer_types[k].name) == 0)
            t = &layer_types[k];
    if (!t)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "unknown module '%s'", q7_py_as_str(mv));
    *kind_out = t->kind;

    /* from: an int or a list of ints, each naming an earlier layer */
    int f_is_int = f->kind == Q7_PY_INT || f->kind == Q7_PY_BOOL;
    *n_src = 0;
    if (f_is_int) {
        if ((st = from_index(i, f->v.i, &src[0])))
            return st;
        *n_src = 1;
    } else if (f->kind == Q7_PY_LIST || f->kind == Q7_PY_TUPLE) {
        if (f->v.seq.len < 1 || f->v.seq.len > CFG_MAX_FROM)
            return q7_error_set(Q7_ERR_FORMAT, "'from' lists 1 to %d layers", CFG_MAX_FROM);
        for (size_t j = 0; j < f->v.seq.len; j++) {
            int64_t x;
            if (!q7_py_as_int(f->v.seq.items[j], &x))
                return q7_error_set(Q7_ERR_FORMAT, "'from' must hold ints");
            if ((st = from_index(i, x, &src[j])))
                return st;
        }
        *n_src = f->v.seq.len;
    } else {
        return q7_error_set(Q7_ERR_FORMAT, "'from' must be an int or a list of ints");
    }
    int multi = t->kind == LK_CONCAT || t->kind == LK_SHORTCUT || is_detect(t->kind);
    if (multi == f_is_int)
        return q7_error_set(Q7_ERR_FORMAT, "%s takes %s", t->name,
                            multi ? "a list of layers in 'from'" : "one layer in 'from'");

    /* number: n = max(round(n * gd), 1) if n > 1 else n */
    int64_t n;
    if (!q7_py_as_int(nv, &n))
        return q7_error_set(Q7_ERR_FORMAT, "the repeat count must be an int");
    if (n < 1)
        return q7_error_set(Q7_ERR_FORMAT, "repeat count %" PRId64 " (must be at least 1)", n);
    if (n > 1) {
        double r = nearbyint((double)n * b->gd); /* Python's round(): half to even */
        n = r < 1.0 ? 1 : r > CFG_MAX_REPEATS ? CFG_MAX_REPEATS + 1 : (int64_t)r;
    }
    if (n > CFG_MAX_REPEATS)
        return q7_error_set(Q7_ERR_LIMIT, "more than %d repeats", CFG_MAX_REPEATS);
    if (n > 1 && multi)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "repeats of %s", t->name);

    /* args: each string eval'd */
    if (av->kind != Q7_PY_LIST && av->kind != Q7_PY_TUPLE)
        return q7_error_set(Q7_ERR_FORMAT, "args must be a list");
    struct q7_ym_args a = {{NULL}, 0};
    if (av->v.seq.len + 2 > Q7_YM_MAX_ARGS)
        return q7_error_set(Q7_ERR_FORMAT, "more than %d args", Q7_YM_MAX_ARGS - 2);
    for (size_t j = 0; j < av->v.seq.len; j++)
        if ((st = eval_arg(b, av->v.seq.items[j], &a.v[a.n++])))
            return st;

    int64_t c2 = *last_c2;
    struct q7_ym_hw hw;
    struct q7_py * m = NULL;
    if ((st = rewrite_args(b, t, src, *n_src, &a, &n, &c2)) ||
        (st = instantiate(b, t, &a, n, src, *n_src, &hw, &m)))
        return st;

    /* m_.i, m_.f, m_.type, m_.np = i, f, t, np */
    char type[128];
    snprintf(type, sizeof type, "%s.%s", t->module, t->cls);
    if ((st = q7_ym_attr_int(&b->c, m, "i", i)) || (st = q7_ym_attr(&b->c, m, "f", f)) ||
        (st = q7_ym_attr(&b->c, m, "type", q7_py_str(h, type, strlen(type)))) ||
        (st = q7_ym_attr_int(&b->c, m, "np", q7_ym_count_params(m))))
        return st;
    char key[24];
    snprintf(key, sizeof key, "%" PRId64, i);
    if ((st = q7_ym_child(&b->c, seq, key, m)))
        return st;

    /* save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1) */
    for (size_t j = 0; j < *n_src; j++) {
        int64_t x = f_is_int ? f->v.i : f->v.seq.items[j]->v.i;
        if (x != -1)
            b->save[b->n_save++] = src[j]; /* x % i with -i <= x < i */
    }
    b->out[i].c = c2;
    b->out[i].hw = hw;
    *last_c2 = c2;
    *layer = m;
    return Q7_OK;
}

/* ---- the model ------------------------------------------------------------------------- */

static int cmp_i64(const void * x, const void * y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static enum q7_status section(const struct q7_py * d, const char * key, const struct q7_py ** out)
{
    *out = q7_py_dict_get(d, key);
    if (!*out || (*out)->kind != Q7_PY_LIST)
        return q7_error_set(Q7_ERR_FORMAT, "config: '%s' must be a list of layers", key);
    return Q7_OK;
}

static enum q7_status build_model(struct builder * b, const char * yaml_file,
                                  struct q7_py ** model_out)
{
    struct q7_pyheap * h = b->c.h;
    const struct q7_py *bb, *hd;
    enum q7_status st;
    if ((st = section(b->d, "backbone", &bb)) || (st = section(b->d, "head", &hd)))
        return st;
    size_t n_layers = bb->v.seq.len + hd->v.seq.len, n_from = 0;
    if (n_layers < 1 || n_layers > CFG_MAX_LAYERS)
        return q7_error_set(Q7_ERR_FORMAT, "config: %zu layers (1 to %d)", n_layers,
                            CFG_MAX_LAYERS);
    for (size_t i = 0; i < n_layers; i++) {
        const struct q7_py * row =
            i < bb->v.seq.len ? bb->v.seq.items[i] : hd->v.seq.items[i - bb->v.seq.len];
        const struct q7_py * f =
            (row->kind == Q7_PY_LIST || row->kind == Q7_PY_TUPLE) && row->v.seq.len > 0
                ? row->v.seq.items[0]
                : NULL;
        n_from += f && (f->kind == Q7_PY_LIST || f->kind == Q7_PY_TUPLE) ? f->v.seq.len : 1;
    }
    b->out = calloc(n_layers, sizeof *b->out);
    b->save = calloc(n_from + 1, sizeof *b->save);
    int64_t * src = calloc(CFG_MAX_FROM, sizeof *src);
    if (!b->out || !b->save || !src) {
        free(src);
        return q7_error_set(Q7_ERR_OOM, "out of memory");
    }
    struct q7_py * seq = q7_ym_module(&b->c, "torch.nn.modules.container", "Sequential");
    struct q7_py * last = NULL;
    enum layer_kind last_kind = LK_CONV;
    size_t last_n_src = 0;
    int64_t c2 = b->ch_in;
    st = seq ? Q7_OK : Q7_ERR_OOM;
    for (size_t i = 0; st == Q7_OK && i < n_layers; i++) {
        int in_bb = i < bb->v.seq.len;
        const struct q7_py * row = in_bb ? bb->v.seq.items[i] : hd->v.seq.items[i - bb->v.seq.len];
        st = build_layer(b, (int64_t)i, row, seq, &c2, &last, &last_kind, src, &last_n_src);
        if (st) {
            const struct q7_py * mv =
                (row->kind == Q7_PY_LIST && row->v.seq.len == 4) ? row->v.seq.items[2] : NULL;
            q7_error_wrap(st, "%s[%zu] (layer %zu%s%s)", in_bb ? "backbone" : "head",
                          in_bb ? i : i - bb->v.seq.len, i, q7_py_as_str(mv) ? ", " : "",
                          q7_py_as_str(mv) ? q7_py_as_str(mv) : "");
        }
    }
    if (st) {
        free(src);
        return st;
    }

    /* Model.__init__: the strides of the last layer when it is a detection head */
    struct q7_py * stride = NULL;
    if (is_detect(last_kind)) {
        struct q7_ym_hw in[128];
        int64_t nl = 0;
        q7_py_as_int(q7_py_getattr(last, "nl"), &nl);
        for (size_t j = 0; j < last_n_src && j < 128; j++)
            in[j] = input_of(b, src[j]).hw;
        st = q7_ym_detect_finish(&b->c,
                                 last_kind == LK_DETECT    ? Q7_YM_DETECT
                                 : last_kind == LK_IDETECT ? Q7_YM_IDETECT
                                                           : Q7_YM_IAUXDETECT,
                                 last, in, (int)last_n_src, &stride);
    }
    free(src);
    if (st)
        return st;

    struct q7_py * model = q7_ym_module(&b->c, "models.yolo", "Model");
    struct q7_py *save = q7_py_new(h, Q7_PY_LIST), *names = q7_py_new(h, Q7_PY_LIST);
    if (!model || !save || !names)
        return Q7_ERR_OOM;
    qsort(b->save, b->n_save, sizeof *b->save, cmp_i64);
    for (size_t j = 0; j < b->n_save; j++)
        if ((st = q7_py_append(h, save, q7_py_int(h, b->save[j]))))
            return st;
    for (int64_t k = 0; k < b->nc; k++) {
        char name[24];
        int len = snprintf(name, sizeof name, "%" PRId64, k);
        if ((st = q7_py_append(h, names, q7_py_str(h, name, (size_t)len))))
            return st;
    }
    if ((st = q7_ym_child(&b->c, model, "model", seq)) ||
        (st = q7_ym_attr(&b->c, model, "traced", q7_py_bool(h, 0))) ||
        (yaml_file && (st = q7_ym_attr(&b->c, model, "yaml_file",
                                       q7_py_str(h, yaml_file, strlen(yaml_file))))) ||
        (st = q7_ym_attr(&b->c, model, "yaml", b->d)) ||
        (st = q7_ym_attr(&b->c, model, "save", save)) ||
        (st = q7_ym_attr(&b->c, model, "names", names)) ||
        (stride && (st = q7_ym_attr(&b->c, model, "stride", stride))))
        return st;
    *model_out = model;
    return Q7_OK;
}

struct q7_cfg_params q7_cfg_params_default(void)
{
    struct q7_cfg_params p;
    memset(&p, 0, sizeof p);
    p.init = Q7_CFG_INIT_ZERO;
    return p;
}

/* Model(cfg): `yaml_file` is Path(cfg).name when cfg was a file, else NULL. */
static enum q7_status model_from_dict(const struct q7_py * yaml_dict,
                                      const struct q7_cfg_params * p, struct q7_pyheap * heap,
                                      const char * yaml_file, struct q7_py ** model_out)
{
    if (model_out)
        *model_out = NULL;
    if (!yaml_dict || !heap || !model_out)
        return q7_error_set(Q7_ERR_ARG, "yolo model from dict: NULL argument");
    struct q7_cfg_params dp = q7_cfg_params_default();
    if (!p)
        p = &dp;
    if (p->init < Q7_CFG_INIT_ZERO || p->init > Q7_CFG_INIT_SHAPE || p->nc < 0 ||
        !(p->width_multiple >= 0.0 && p->width_multiple <= CFG_MAX_MULTIPLE) ||
        !(p->depth_multiple >= 0.0 && p->depth_multiple <= CFG_MAX_MULTIPLE))
        return q7_error_set(Q7_ERR_ARG, "yolo model from dict: bad parameters");
    if (yaml_dict->kind != Q7_PY_DICT)
        return q7_error_set(Q7_ERR_FORMAT, "config is not a mapping");

    struct builder b;
    memset(&b, 0, sizeof b);
    b.c.h = heap;
    b.c.init = p->init;
    b.c.rng = p->seed;
    b.c.empty_tuple = q7_py_new(heap, Q7_PY_TUPLE);
    enum q7_status st = b.c.empty_tuple ? Q7_OK : Q7_ERR_OOM;
    if (st == Q7_OK)
        st = copy_obj(&b, yaml_dict, 0, &b.d);
    if (st == Q7_OK)
        st = read_globals(&b, p);
    if (st == Q7_OK)
        st = build_model(&b, yaml_file, model_out);
    free(b.out);
    free(b.save);
    return st;
}

enum q7_status q7_yolo_model_from_dict(const struct q7_py * yaml_dict,
                                       const struct q7_cfg_params * p, struct q7_pyheap * heap,
                                       struct q7_py ** model_out)
{
    return model_from_dict(yaml_dict, p, heap, NULL, model_out);
}

enum q7_status q7_yolo_model_from_yaml(const char * path, const struct q7_cfg_params * p,
                                       struct q7_pyheap * heap, struct q7_py ** model_out)
{
    if (model_out)
        *model_out = NULL;
    struct q7_py * d = NULL;
    enum q7_status st = q7_yaml_load(path, heap, &d);
    if (st)
        return st;
    const char * base = strrchr(path, '/');
    st = model_from_dict(d, p, heap, base ? base + 1 : path, model_out);
    return st ? q7_error_wrap(st, "%s", path) : Q7_OK;
}
