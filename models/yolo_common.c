/* models.common's modules of a yaml-built YOLOv7 (Conv, RepConv, DownC, SPPCSPC, MP, SP,
 * ReOrg, Concat, Shortcut) and the nn.Upsample / nn.MaxPool2d layers: Python constructor
 * semantics on parse_model's positional args, the objects their __init__ creates, and the
 * stride probe's size arithmetic (PyTorch's output-size formulas). */
#include "models/yolo_modules_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- arguments -------------------------------------------------------------------------- */

static enum q7_status bad_arg(const char * cls, const char * name, const struct q7_py * v,
                              const char * want)
{
    char r[96];
    q7_py_repr(v, r, sizeof r);
    return q7_error_set(Q7_ERR_FORMAT, "%s: argument %s must be %s, not %s", cls, name, want, r);
}

static enum q7_status max_args(const struct q7_ym_args * a, int n, const char * cls)
{
    if (a->n > n)
        return q7_error_set(Q7_ERR_FORMAT, "%s takes at most %d arguments, %d given", cls, n, a->n);
    return Q7_OK;
}

/* An int argument (a bool counts, as in Python), its default when absent. */
static enum q7_status arg_int(const struct q7_ym_args * a, int i, int64_t dflt, const char * cls,
                              const char * name, int64_t * out)
{
    if (i >= a->n) {
        *out = dflt;
        return Q7_OK;
    }
    if (!q7_py_as_int(a->v[i], out))
        return bad_arg(cls, name, a->v[i], "an int");
    return Q7_OK;
}

/* An int or None (padding): *is_none 1 for None or absent. */
static enum q7_status arg_int_or_none(const struct q7_ym_args * a, int i, const char * cls,
                                      const char * name, int64_t * out, int * is_none)
{
    *is_none = i >= a->n || a->v[i]->kind == Q7_PY_NONE;
    if (*is_none)
        return Q7_OK;
    return arg_int(a, i, 0, cls, name, out);
}

static int64_t autopad(int64_t k, int64_t p, int p_none)
{
    return p_none ? k / 2 : p; /* k >= 1 here, so k // 2 == k / 2 */
}

/* Conv's `act`: True → SiLU(), a module → that module, a string (an expression q7 does not
 * evaluate) → unsupported, anything else → Identity(). */
static enum q7_status act_arg(struct q7_ym_ctx * c, const struct q7_ym_args * a, int i,
                              const char * cls, struct q7_py ** out)
{
    const struct q7_py * v = i < a->n ? a->v[i] : NULL;
    if (v && v->kind == Q7_PY_OBJECT) {
        *out = (struct q7_py *)v;
        return Q7_OK;
    }
    if (v && v->kind == Q7_PY_STR)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: unsupported activation '%s'", cls, v->v.str.s);
    int silu = !v || (v->kind == Q7_PY_BOOL && v->v.i);
    *out = q7_ym_activation(c, silu ? "SiLU" : "Identity", 0, NULL);
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* ---- the stride probe ------------------------------------------------------------------- */

/* PyTorch's conv / pool output size (pooling_output_shape, floor mode). */
static enum q7_status window(const char * cls, struct q7_ym_hw * hw, int64_t k, int64_t s,
                             int64_t p)
{
    int64_t span_h = hw->h + 2 * p - (k - 1) - 1, span_w = hw->w + 2 * p - (k - 1) - 1;
    if (span_h < 0 || span_w < 0)
        return q7_error_set(Q7_ERR_FORMAT,
                            "%s: a %" PRId64 "x%" PRId64 " window does not fit "
                            "its %" PRId64 "x%" PRId64 " input for a %dx%d image",
                            cls, k, k, hw->h, hw->w, Q7_YM_STRIDE_PROBE, Q7_YM_STRIDE_PROBE);
    hw->h = span_h / s + 1;
    hw->w = span_w / s + 1;
    return Q7_OK;
}

static enum q7_status pool_padding(const char * cls, int64_t k, int64_t p)
{
    if (2 * p > k)
        return q7_error_set(Q7_ERR_FORMAT,
                            "%s: padding %" PRId64 " is more than half the "
                            "kernel %" PRId64,
                            cls, p, k);
    return Q7_OK;
}

/* ---- models.common ---------------------------------------------------------------------- */

/* Conv(c1, c2, k, s, p, g, act) with an act module already made. */
static enum q7_status conv_block(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k, int64_t s,
                                 int64_t p, int64_t g, struct q7_py * act, struct q7_py ** out)
{
    struct q7_py *m = q7_ym_module(c, "models.common", "Conv"), *conv = NULL, *bn = NULL;
    enum q7_status st;
    if (!m || !act)
        return Q7_ERR_OOM;
    if ((st = q7_ym_conv2d(c, c1, c2, k, s, p, g, 0, &conv)) ||
        (st = q7_ym_child(c, m, "conv", conv)) || (st = q7_ym_batchnorm2d(c, c2, &bn)) ||
        (st = q7_ym_child(c, m, "bn", bn)) || (st = q7_ym_child(c, m, "act", act)))
        return st;
    *out = m;
    return Q7_OK;
}

/* Conv(c1, c2, k, 1) with the default act (SiLU), as the composite modules use it. */
static enum q7_status conv_simple(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k,
                                  int64_t s, struct q7_py ** out)
{
    return conv_block(c, c1, c2, k, s, k / 2, 1, q7_ym_activation(c, "SiLU", 0, NULL), out);
}

enum q7_status q7_ym_conv(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                          struct q7_py ** out)
{
    int64_t c1, c2, k, s, p = 0, g;
    int p_none;
    struct q7_py * act = NULL;
    enum q7_status st;
    if ((st = max_args(a, 7, "Conv")) || (st = arg_int(a, 0, 0, "Conv", "c1", &c1)) ||
        (st = arg_int(a, 1, 0, "Conv", "c2", &c2)) || (st = arg_int(a, 2, 1, "Conv", "k", &k)) ||
        (st = arg_int(a, 3, 1, "Conv", "s", &s)) ||
        (st = arg_int_or_none(a, 4, "Conv", "p", &p, &p_none)) ||
        (st = arg_int(a, 5, 1, "Conv", "g", &g)) ||
        (st = q7_ym_check_range("Conv", "k", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = act_arg(c, a, 6, "Conv", &act)))
        return st;
    p = autopad(k, p, p_none);
    if ((st = conv_block(c, c1, c2, k, s, p, g, act, out)))
        return st;
    return window("Conv", hw, k, s, p);
}

enum q7_status q7_ym_repconv(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out)
{
    int64_t c1, c2, k, s, p = 0, g, deploy;
    int p_none;
    struct q7_py * act = NULL;
    enum q7_status st;
    const char * cls = "RepConv";
    if ((st = max_args(a, 8, cls)) || (st = arg_int(a, 0, 0, cls, "c1", &c1)) ||
        (st = arg_int(a, 1, 0, cls, "c2", &c2)) || (st = arg_int(a, 2, 3, cls, "k", &k)) ||
        (st = arg_int(a, 3, 1, cls, "s", &s)) ||
        (st = arg_int_or_none(a, 4, cls, "p", &p, &p_none)) ||
        (st = arg_int(a, 5, 1, cls, "g", &g)) || (st = arg_int(a, 7, 0, cls, "deploy", &deploy)))
        return st;
    p = autopad(k, p, p_none);
    if (k != 3 || p != 1) /* RepConv asserts k == 3 and autopad(k, p) == 1 */
        return q7_error_set(
            Q7_ERR_FORMAT,
            "RepConv: needs k = 3 and padding 1 (k = %" PRId64 ", padding %" PRId64 ")", k, p);
    struct q7_py * m = q7_ym_module(c, "models.common", cls);
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_attr_bool(c, m, "deploy", deploy != 0)) ||
        (st = q7_ym_attr_int(c, m, "groups", g)) ||
        (st = q7_ym_attr_int(c, m, "in_channels", c1)) ||
        (st = q7_ym_attr_int(c, m, "out_channels", c2)) || (st = act_arg(c, a, 6, cls, &act)) ||
        (st = q7_ym_child(c, m, "act", act)))
        return st;
    if (deploy) {
        struct q7_py * conv = NULL;
        if ((st = q7_ym_conv2d(c, c1, c2, 3, s, 1, g, 1, &conv)) ||
            (st = q7_ym_child(c, m, "rbr_reparam", conv)))
            return st;
    } else {
        if (c2 == c1 && s == 1) {
            struct q7_py * id = NULL;
            if ((st = q7_ym_batchnorm2d(c, c1, &id)) ||
                (st = q7_ym_child(c, m, "rbr_identity", id)))
                return st;
        } else if ((st = q7_ym_attr(c, m, "rbr_identity", q7_py_none(c->h)))) {
            return st;
        }
        static const char * const names[2] = {"rbr_dense", "rbr_1x1"};
        for (int b = 0; b < 2; b++) {
            struct q7_py * seq = q7_ym_module(c, "torch.nn.modules.container", "Sequential");
            struct q7_py *conv = NULL, *bn = NULL;
            if (!seq)
                return Q7_ERR_OOM;
            int64_t kb = b == 0 ? 3 : 1, pb = b == 0 ? 1 : 0; /* padding_11 = 1 - 3 // 2 */
            if ((st = q7_ym_conv2d(c, c1, c2, kb, s, pb, g, 0, &conv)) ||
                (st = q7_ym_child(c, seq, "0", conv)) || (st = q7_ym_batchnorm2d(c, c2, &bn)) ||
                (st = q7_ym_child(c, seq, "1", bn)) || (st = q7_ym_child(c, m, names[b], seq)))
                return st;
        }
    }
    *out = m;
    return window(cls, hw, 3, s, 1);
}

enum q7_status q7_ym_downc(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                           struct q7_py ** out)
{
    int64_t c1, c2, n, k;
    enum q7_status st;
    const char * cls = "DownC";
    if ((st = max_args(a, 4, cls)) || (st = arg_int(a, 0, 0, cls, "c1", &c1)) ||
        (st = arg_int(a, 1, 0, cls, "c2", &c2)) || (st = arg_int(a, 2, 1, cls, "n", &n)) ||
        (st = arg_int(a, 3, 2, cls, "k", &k)) ||
        (st = q7_ym_check_range(cls, "k", k, 1, Q7_YM_MAX_KERNEL)))
        return st;
    int64_t half = c2 >= 0 ? c2 / 2 : -((-c2 + 1) / 2); /* Python's c2 // 2 */
    struct q7_py *m = q7_ym_module(c, "models.common", cls), *cv1 = NULL, *cv2 = NULL, *cv3 = NULL,
                 *mp = NULL;
    if (!m)
        return Q7_ERR_OOM;
    /* c_ = int(c1); cv1 = Conv(c1, c_, 1, 1); cv2 = Conv(c_, c2//2, 3, k);
     * cv3 = Conv(c1, c2//2, 1, 1); mp = MaxPool2d(kernel_size=k, stride=k) */
    if ((st = conv_simple(c, c1, c1, 1, 1, &cv1)) || (st = q7_ym_child(c, m, "cv1", cv1)) ||
        (st = conv_simple(c, c1, half, 3, k, &cv2)) || (st = q7_ym_child(c, m, "cv2", cv2)) ||
        (st = conv_simple(c, c1, half, 1, 1, &cv3)) || (st = q7_ym_child(c, m, "cv3", cv3)) ||
        (st = q7_ym_maxpool2d(c, k, k, 0, &mp)) || (st = q7_ym_child(c, m, "mp", mp)))
        return st;
    struct q7_ym_hw conv_hw = *hw, pool_hw = *hw;
    if ((st = window(cls, &conv_hw, 3, k, 1)) || (st = window(cls, &pool_hw, k, k, 0)))
        return st;
    if (conv_hw.h != pool_hw.h || conv_hw.w != pool_hw.w)
        return q7_error_set(Q7_ERR_FORMAT,
                            "DownC: its branches give %" PRId64 "x%" PRId64 " and %" PRId64
                            "x%" PRId64 " from a %" PRId64 "x%" PRId64 " input",
                            conv_hw.h, conv_hw.w, pool_hw.h, pool_hw.w, hw->h, hw->w);
    *hw = conv_hw;
    *out = m;
    return Q7_OK;
}

enum q7_status q7_ym_sppcspc(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out)
{
    int64_t c1, c2, n, shortcut, g;
    double e = 0.5;
    int64_t ks[Q7_YM_MAX_ARGS] = {5, 9, 13};
    int nk = 3;
    enum q7_status st;
    const char * cls = "SPPCSPC";
    if ((st = max_args(a, 7, cls)) || (st = arg_int(a, 0, 0, cls, "c1", &c1)) ||
        (st = arg_int(a, 1, 0, cls, "c2", &c2)) || (st = arg_int(a, 2, 1, cls, "n", &n)) ||
        (st = arg_int(a, 3, 0, cls, "shortcut", &shortcut)) ||
        (st = arg_int(a, 4, 1, cls, "g", &g)))
        return st;
    if (a->n > 5 && !q7_py_as_double(a->v[5], &e))
        return bad_arg(cls, "e", a->v[5], "a number");
    if (a->n > 6) {
        const struct q7_py * kv = a->v[6];
        if ((kv->kind != Q7_PY_LIST && kv->kind != Q7_PY_TUPLE) || kv->v.seq.len > Q7_YM_MAX_ARGS)
            return bad_arg(cls, "k", kv, "a list of at most 16 ints");
        nk = (int)kv->v.seq.len;
        for (int i = 0; i < nk; i++)
            if (!q7_py_as_int(kv->v.seq.items[i], &ks[i]))
                return bad_arg(cls, "k", kv, "a list of ints");
    }
    double cd = 2.0 * (double)c2 * e;
    if (!(fabs(cd) < 2.0 * (double)Q7_YM_MAX_CHANNELS))
        return q7_error_set(Q7_ERR_LIMIT, "SPPCSPC: hidden channels 2 * c2 * e = %g", cd);
    int64_t h = (int64_t)cd; /* int() truncates */
    struct q7_py *m = q7_ym_module(c, "models.common", cls), *cv = NULL;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = conv_simple(c, c1, h, 1, 1, &cv)) || (st = q7_ym_child(c, m, "cv1", cv)) ||
        (st = conv_simple(c, c1, h, 1, 1, &cv)) || (st = q7_ym_child(c, m, "cv2", cv)) ||
        (st = conv_simple(c, h, h, 3, 1, &cv)) || (st = q7_ym_child(c, m, "cv3", cv)) ||
        (st = conv_simple(c, h, h, 1, 1, &cv)) || (st = q7_ym_child(c, m, "cv4", cv)))
        return st;
    struct q7_py * pools = q7_ym_module(c, "torch.nn.modules.container", "ModuleList");
    if (!pools)
        return Q7_ERR_OOM;
    for (int i = 0; i < nk; i++) {
        struct q7_py * mp = NULL;
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        struct q7_ym_hw phw = *hw;
        if ((st = q7_ym_check_range(cls, "k", ks[i], 1, Q7_YM_MAX_KERNEL)) ||
            (st = pool_padding(cls, ks[i], ks[i] / 2)) ||
            (st = q7_ym_maxpool2d(c, ks[i], 1, ks[i] / 2, &mp)) ||
            (st = q7_ym_child(c, pools, key, mp)) || (st = window(cls, &phw, ks[i], 1, ks[i] / 2)))
            return st;
        if (phw.h != hw->h || phw.w != hw->w)
            return q7_error_set(Q7_ERR_FORMAT,
                                "SPPCSPC: pool %" PRId64 " changes the size of "
                                "its input (an even kernel)",
                                ks[i]);
    }
    if ((st = q7_ym_child(c, m, "m", pools)) || (st = conv_simple(c, 4 * h, h, 1, 1, &cv)) ||
        (st = q7_ym_child(c, m, "cv5", cv)) || (st = conv_simple(c, h, h, 3, 1, &cv)) ||
        (st = q7_ym_child(c, m, "cv6", cv)) || (st = conv_simple(c, 2 * h, c2, 1, 1, &cv)) ||
        (st = q7_ym_child(c, m, "cv7", cv)))
        return st;
    *out = m;
    return Q7_OK;
}

/* MP(k=2) and SP(k=3, s=1): one MaxPool2d called `m`. */
static enum q7_status pool_module(struct q7_ym_ctx * c, const char * cls, int64_t k, int64_t s,
                                  int64_t p, struct q7_ym_hw * hw, struct q7_py ** out)
{
    enum q7_status st;
    struct q7_py *m = q7_ym_module(c, "models.common", cls), *mp = NULL;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_check_range(cls, "k", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range(cls, "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = pool_padding(cls, k, p)) || (st = q7_ym_maxpool2d(c, k, s, p, &mp)) ||
        (st = q7_ym_child(c, m, "m", mp)))
        return st;
    *out = m;
    return window(cls, hw, k, s, p);
}

enum q7_status q7_ym_mp(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                        struct q7_py ** out)
{
    int64_t k;
    enum q7_status st;
    if ((st = max_args(a, 1, "MP")) || (st = arg_int(a, 0, 2, "MP", "k", &k)))
        return st;
    return pool_module(c, "MP", k, k, 0, hw, out);
}

enum q7_status q7_ym_sp(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                        struct q7_py ** out)
{
    int64_t k, s;
    enum q7_status st;
    if ((st = max_args(a, 2, "SP")) || (st = arg_int(a, 0, 3, "SP", "k", &k)) ||
        (st = arg_int(a, 1, 1, "SP", "s", &s)))
        return st;
    return pool_module(c, "SP", k, s, k >= 0 ? k / 2 : 0, hw, out);
}

/* nn.MaxPool2d(kernel_size, stride=None, padding=0) as a layer of its own. */
enum q7_status q7_ym_maxpool(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out)
{
    int64_t k, s, p;
    int s_none;
    enum q7_status st;
    const char * cls = "MaxPool2d";
    if ((st = max_args(a, 3, cls)) || a->n < 1)
        return st ? st : q7_error_set(Q7_ERR_FORMAT, "MaxPool2d: kernel_size is missing");
    if ((st = arg_int(a, 0, 0, cls, "kernel_size", &k)) ||
        (st = arg_int_or_none(a, 1, cls, "stride", &s, &s_none)) ||
        (st = arg_int(a, 2, 0, cls, "padding", &p)))
        return st;
    if (s_none)
        s = k;
    if ((st = q7_ym_check_range(cls, "kernel_size", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range(cls, "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range(cls, "padding", p, 0, Q7_YM_MAX_KERNEL)) ||
        (st = pool_padding(cls, k, p)) || (st = q7_ym_maxpool2d(c, k, s, p, out)))
        return st;
    return window(cls, hw, k, s, p);
}

/* nn.Upsample(size=None, scale_factor=None, mode='nearest'). */
enum q7_status q7_ym_upsample(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                              struct q7_ym_hw * hw, struct q7_py ** out)
{
    enum q7_status st;
    const char * cls = "Upsample";
    if ((st = max_args(a, 5, cls)))
        return st;
    const struct q7_py * size = a->n > 0 ? a->v[0] : NULL;
    const struct q7_py * sf = a->n > 1 ? a->v[1] : NULL;
    const struct q7_py * mode = a->n > 2 ? a->v[2] : NULL;
    int64_t size_v = 0;
    double sf_v = 0.0;
    int has_size = size && size->kind != Q7_PY_NONE, has_sf = 0;
    if (has_size && (!q7_py_as_int(size, &size_v) || size_v < 1 || size_v > Q7_YM_MAX_CHANNELS))
        return bad_arg(cls, "size", size, "a positive int or None");
    if (sf && sf->kind != Q7_PY_NONE) {
        if (!q7_py_as_double(sf, &sf_v) || !(sf_v >= 0.0) || sf_v > 1024.0)
            return bad_arg(cls, "scale_factor", sf, "a number in [0, 1024] or None");
        has_sf = sf_v != 0.0; /* float(scale_factor) if scale_factor else None */
    }
    if (mode && mode->kind != Q7_PY_STR)
        return bad_arg(cls, "mode", mode, "a string");
    if (has_size == has_sf)
        return q7_error_set(Q7_ERR_FORMAT, "Upsample: exactly one of size and scale_factor "
                                           "must be given");
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.upsampling", cls);
    if (!m)
        return Q7_ERR_OOM;
    for (int i = 3; i < a->n; i++)
        if (a->v[i]->kind != Q7_PY_NONE && a->v[i]->kind != Q7_PY_BOOL)
            return bad_arg(cls, i == 3 ? "align_corners" : "recompute_scale_factor", a->v[i],
                           "a bool or None");
    if ((st = q7_ym_attr_str(c, m, "name", cls)) ||
        (st = q7_ym_attr(c, m, "size", has_size ? q7_py_int(c->h, size_v) : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "scale_factor",
                         has_sf ? q7_py_float(c->h, sf_v) : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "mode",
                         mode ? (struct q7_py *)mode : q7_py_str(c->h, "nearest", 7))) ||
        (st = q7_ym_attr(c, m, "align_corners", a->n > 3 ? a->v[3] : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "recompute_scale_factor", a->n > 4 ? a->v[4] : q7_py_none(c->h))))
        return st;
    if (has_size) {
        hw->h = hw->w = size_v;
    } else {
        /* repeated upsampling grows the probe geometrically: bound it before the cast */
        const double h = floor((double)hw->h * sf_v), w = floor((double)hw->w * sf_v);
        if (h < 1.0 || w < 1.0)
            return q7_error_set(Q7_ERR_FORMAT, "Upsample: scale %g gives an empty output", sf_v);
        if (h > Q7_YM_MAX_PROBE_SIDE || w > Q7_YM_MAX_PROBE_SIDE)
            return q7_error_set(Q7_ERR_LIMIT, "Upsample: the %dx%d stride probe grows past "
                                "%lld pixels a side (upsampling repeated too often)",
                                Q7_YM_STRIDE_PROBE, Q7_YM_STRIDE_PROBE,
                                (long long)Q7_YM_MAX_PROBE_SIDE);
        hw->h = (int64_t)h;
        hw->w = (int64_t)w;
    }
    *out = m;
    return Q7_OK;
}

enum q7_status q7_ym_reorg(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                           struct q7_py ** out)
{
    enum q7_status st = max_args(a, 0, "ReOrg");
    if (st)
        return st;
    /* cat of x[..., ::2, ::2], x[..., 1::2, ::2], ...: the four halves match only when even */
    if (hw->h % 2 || hw->w % 2)
        return q7_error_set(Q7_ERR_FORMAT, "ReOrg: a %" PRId64 "x%" PRId64 " input is not even",
                            hw->h, hw->w);
    hw->h /= 2;
    hw->w /= 2;
    *out = q7_ym_module(c, "models.common", "ReOrg");
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* Concat(dimension=1) and Shortcut(dimension=0): an attribute `d`. */
static enum q7_status dim_module(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                                 const char * cls, int64_t dflt, struct q7_py ** out)
{
    int64_t d;
    enum q7_status st;
    if ((st = max_args(a, 1, cls)) || (st = arg_int(a, 0, dflt, cls, "dimension", &d)))
        return st;
    struct q7_py * m = q7_ym_module(c, "models.common", cls);
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_attr(c, m, "d", a->n > 0 ? a->v[0] : q7_py_int(c->h, d))))
        return st;
    *out = m;
    return Q7_OK;
}

enum q7_status q7_ym_concat(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_py ** out)
{
    return dim_module(c, a, "Concat", 1, out);
}

enum q7_status q7_ym_shortcut(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                              struct q7_py ** out)
{
    return dim_module(c, a, "Shortcut", 0, out);
}
