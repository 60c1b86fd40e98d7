/* Module objects of a yaml-built YOLOv7: torch leaves (Conv2d, BatchNorm2d, MaxPool2d,
 * Upsample, activations, containers) and models.common's Conv, RepConv, DownC, SPPCSPC, MP,
 * SP, ReOrg, Concat, Shortcut, with the attributes, parameters and buffers that their Python
 * constructors create (key order included), and the stride probe's size arithmetic. */
#include "models/pyobj_impl.h"
#include "models/yolo_modules_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- objects -------------------------------------------------------------------------- */

static struct q7_py * ordered_dict(struct q7_ym_ctx * c)
{
    return q7_py_new(c->h, Q7_PY_DICT);
}

struct q7_py * q7_ym_module(struct q7_ym_ctx * c, const char * module, const char * cls)
{
    struct q7_py * o = q7_py_object(c->h, module, cls);
    struct q7_py * st = o ? q7_py_new(c->h, Q7_PY_DICT) : NULL;
    if (!st)
        return NULL;
    o->v.object.args = c->empty_tuple;
    o->v.object.state = st;
    struct q7_py * params = ordered_dict(c), * bufs = ordered_dict(c);
    struct q7_py * npbs = q7_py_new(c->h, Q7_PY_SET), * mods = ordered_dict(c);
    if (!params || !bufs || !npbs || !mods ||
        q7_py_dict_set_str(c->h, st, "training", q7_py_bool(c->h, 0)) ||
        q7_py_dict_set_str(c->h, st, "_parameters", params) ||
        q7_py_dict_set_str(c->h, st, "_buffers", bufs) ||
        q7_py_dict_set_str(c->h, st, "_non_persistent_buffers_set", npbs) ||
        q7_py_dict_set_str(c->h, st, "_modules", mods))
        return NULL;
    return o;
}

enum q7_status q7_ym_attr(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                          struct q7_py * v)
{
    if (!v)
        return Q7_ERR_OOM;
    return q7_py_dict_set_str(c->h, mod->v.object.state, key, v);
}

enum q7_status q7_ym_attr_int(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                              int64_t v)
{
    return q7_ym_attr(c, mod, key, q7_py_int(c->h, v));
}

static enum q7_status attr_bool(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                                int v)
{
    return q7_ym_attr(c, mod, key, q7_py_bool(c->h, v));
}

static enum q7_status attr_float(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                                 double v)
{
    return q7_ym_attr(c, mod, key, q7_py_float(c->h, v));
}

static enum q7_status attr_str(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                               const char * v)
{
    return q7_ym_attr(c, mod, key, q7_py_str(c->h, v, strlen(v)));
}

/* A tuple of ints (PyTorch's _pair / _reverse_repeat_tuple values). */
static enum q7_status attr_ints(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                                int n, const int64_t * v)
{
    struct q7_py * t = q7_py_new(c->h, Q7_PY_TUPLE);
    if (!t)
        return Q7_ERR_OOM;
    for (int i = 0; i < n; i++) {
        enum q7_status st = q7_py_append(c->h, t, q7_py_int(c->h, v[i]));
        if (st)
            return st;
    }
    return q7_ym_attr(c, mod, key, t);
}

enum q7_status q7_ym_child(struct q7_ym_ctx * c, struct q7_py * mod, const char * name,
                           struct q7_py * child)
{
    if (!child)
        return Q7_ERR_OOM;
    return q7_py_dict_set_str(c->h, q7_py_getattr(mod, "_modules"), name, child);
}

static struct q7_py * tensor_new(struct q7_ym_ctx * c, enum q7_dtype dt, int ndim,
                                 const int64_t * shape, int with_data)
{
    size_t numel = 1, bytes;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || !q7_size_mul(numel, (size_t)shape[d], &numel)) {
            q7_error_set(Q7_ERR_LIMIT, "tensor shape overflows");
            return NULL;
        }
    if (!q7_size_mul(numel, q7_dtype_size(dt), &bytes) || numel > (size_t)INT64_MAX) {
        q7_error_set(Q7_ERR_LIMIT, "tensor of %zu elements is too large", numel);
        return NULL;
    }
    uint8_t * data = NULL;
    if (with_data && !(data = q7_arena_alloc(q7_pyheap_arena(c->h), bytes ? bytes : 1)))
        return NULL;
    struct q7_py * st = q7_py_storage_new(c->h, dt, "", (int64_t)numel, data);
    struct q7_py * t = st ? q7_pyheap_alloc(c->h, sizeof *t) : NULL;
    if (!t)
        return NULL;
    t->kind = Q7_PY_TENSOR;
    t->v.tensor.storage = st;
    t->v.tensor.ndim = ndim;
    int64_t stride = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        t->v.tensor.shape[d] = shape[d];
        t->v.tensor.stride[d] = stride;
        stride *= shape[d] > 0 ? shape[d] : 1;
    }
    return t;
}

struct q7_py * q7_ym_tensor(struct q7_ym_ctx * c, int ndim, const int64_t * shape, int with_data)
{
    return tensor_new(c, Q7_DTYPE_F32, ndim, shape, with_data);
}

float * q7_ym_data(struct q7_py * tensor)
{
    return q7_py_tensor_data_f32(tensor);
}

/* ---- initialization ------------------------------------------------------------------- */

static uint64_t rng_next(struct q7_ym_ctx * c) /* splitmix64 */
{
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(struct q7_ym_ctx * c) /* [0, 1) with 53 bits */
{
    return (double)(rng_next(c) >> 11) * (1.0 / 9007199254740992.0);
}

static void fill_values(struct q7_ym_ctx * c, float * x, int64_t n, enum q7_ym_fill f, double a,
                        double b)
{
    int random = c->init == Q7_CFG_INIT_RANDOM;
    for (int64_t i = 0; i < n; i++) {
        switch (f) {
        case Q7_YM_FILL_ZERO:
            break;
        case Q7_YM_FILL_ONE:
            x[i] = 1.0f;
            break;
        case Q7_YM_FILL_UNIFORM:
            if (random)
                x[i] = (float)(a * (2.0 * rng_unit(c) - 1.0));
            break;
        case Q7_YM_FILL_NORMAL:
            if (random) { /* Box-Muller */
                double u1 = 1.0 - rng_unit(c), u2 = rng_unit(c);
                x[i] = (float)(a + b * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
            } else {
                x[i] = (float)a;
            }
            break;
        }
    }
}

enum q7_status q7_ym_add_tensor(struct q7_ym_ctx * c, struct q7_py * mod, int is_param,
                                 const char * name, int ndim, const int64_t * shape, enum q7_ym_fill f,
                                 double a, double b, int force_data)
{
    int with_data = force_data || c->init != Q7_CFG_INIT_SHAPE;
    if (is_param) {
        uint64_t n = 1;
        for (int d = 0; d < ndim; d++)
            n *= (uint64_t)shape[d]; /* each dim <= 2^20 and ndim <= 4: no overflow */
        uint64_t limit = with_data ? Q7_YM_MAX_DATA_ELEMS : Q7_YM_MAX_SHAPE_ELEMS;
        c->param_elems += n;
        if (c->param_elems > limit)
            return q7_error_set(Q7_ERR_LIMIT, "the model has more than %" PRIu64
                                " parameters", limit);
    }
    struct q7_py * t = tensor_new(c, Q7_DTYPE_F32, ndim, shape, with_data);
    if (!t)
        return Q7_ERR_OOM;
    t->v.tensor.is_parameter = is_param;
    t->v.tensor.requires_grad = is_param;
    float * x = q7_ym_data(t);
    if (x)
        fill_values(c, x, q7_py_tensor_numel(t), f, a, b);
    return q7_py_dict_set_str(c->h, q7_py_getattr(mod, is_param ? "_parameters" : "_buffers"),
                              name, t);
}

int64_t q7_ym_count_params(const struct q7_py * mod)
{
    int64_t n = 0;
    const struct q7_py * ps = q7_py_getattr(mod, "_parameters");
    for (size_t i = 0; ps && ps->kind == Q7_PY_DICT && i < ps->v.dict.len; i++)
        if (ps->v.dict.values[i]->kind == Q7_PY_TENSOR)
            n += q7_py_tensor_numel(ps->v.dict.values[i]);
    const struct q7_py * ms = q7_py_getattr(mod, "_modules");
    for (size_t i = 0; ms && ms->kind == Q7_PY_DICT && i < ms->v.dict.len; i++)
        n += q7_ym_count_params(ms->v.dict.values[i]); /* trees built here are shallow */
    return n;
}

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
        return q7_error_set(Q7_ERR_FORMAT, "%s takes at most %d arguments, %d given", cls, n,
                            a->n);
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

/* Size checks: channels, kernels, strides, paddings within sane bounds. */
static enum q7_status check_range(const char * cls, const char * name, int64_t v, int64_t lo,
                                  int64_t hi)
{
    if (v < lo || v > hi)
        return q7_error_set(v > hi ? Q7_ERR_LIMIT : Q7_ERR_FORMAT,
                            "%s: %s = %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", cls,
                            name, v, lo, hi);
    return Q7_OK;
}

/* Python-literal numbers of eval'd yaml strings ("2", "-1", "0.5", "1e-3"); 0 when `s` is
 * not one (then it stays a string). */
int q7_ym_parse_number(const char * s, size_t n, struct q7_ym_ctx * c, struct q7_py ** out)
{
    size_t i = 0, digits = 0;
    int is_float = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.') {
        is_float = 1;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '-' || s[j] == '+'))
            j++;
        size_t d0 = j;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == d0)
            return 0;
        is_float = 1;
        i = j;
    }
    if (i != n || n > 63)
        return 0;
    char buf[64];
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (is_float) {
        *out = q7_py_float(c->h, strtod(buf, NULL));
        return 1;
    }
    const char * d = buf + (buf[0] == '-' || buf[0] == '+');
    if (d[0] == '0' && d[1] != '\0')
        return 0; /* "01" is a syntax error in Python 3 */
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno)
        return 0;
    *out = q7_py_int(c->h, (int64_t)v);
    return 1;
}

/* ---- torch leaves --------------------------------------------------------------------- */

enum q7_status q7_ym_conv2d(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k, int64_t s,
                            int64_t p, int64_t g, int bias, struct q7_py ** out)
{
    enum q7_status st;
    if ((st = check_range("Conv2d", "in_channels", c1, 1, Q7_YM_MAX_CHANNELS)) ||
        (st = check_range("Conv2d", "out_channels", c2, 1, Q7_YM_MAX_CHANNELS)) ||
        (st = check_range("Conv2d", "kernel_size", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = check_range("Conv2d", "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = check_range("Conv2d", "padding", p, 0, Q7_YM_MAX_KERNEL)) ||
        (st = check_range("Conv2d", "groups", g, 1, Q7_YM_MAX_CHANNELS)))
        return st;
    if (c1 % g || c2 % g)
        return q7_error_set(Q7_ERR_FORMAT, "Conv2d: %" PRId64 " and %" PRId64 " channels are "
                            "not divisible by groups = %" PRId64, c1, c2, g);
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.conv", "Conv2d");
    if (!m)
        return Q7_ERR_OOM;
    int64_t kk[2] = {k, k}, ss[2] = {s, s}, pp[2] = {p, p}, one[2] = {1, 1}, zero[2] = {0, 0};
    int64_t rev[4] = {p, p, p, p};
    int64_t wshape[4] = {c2, c1 / g, k, k};
    double bound = 1.0 / sqrt((double)(c1 / g * k * k)); /* kaiming_uniform_(a=sqrt(5)) */
    if ((st = q7_ym_attr_int(c, m, "in_channels", c1)) ||
        (st = q7_ym_attr_int(c, m, "out_channels", c2)) ||
        (st = attr_ints(c, m, "kernel_size", 2, kk)) || (st = attr_ints(c, m, "stride", 2, ss)) ||
        (st = attr_ints(c, m, "padding", 2, pp)) || (st = attr_ints(c, m, "dilation", 2, one)) ||
        (st = attr_bool(c, m, "transposed", 0)) ||
        (st = attr_ints(c, m, "output_padding", 2, zero)) ||
        (st = q7_ym_attr_int(c, m, "groups", g)) || (st = attr_str(c, m, "padding_mode", "zeros")) ||
        (st = attr_ints(c, m, "_reversed_padding_repeated_twice", 4, rev)) ||
        (st = q7_ym_add_tensor(c, m, 1, "weight", 4, wshape, Q7_YM_FILL_UNIFORM, bound, 0, 0)))
        return st;
    if (bias)
        st = q7_ym_add_tensor(c, m, 1, "bias", 1, &c2, Q7_YM_FILL_UNIFORM, bound, 0, 0);
    else
        st = q7_py_dict_set_str(c->h, q7_py_getattr(m, "_parameters"), "bias", q7_py_none(c->h));
    if (st)
        return st;
    *out = m;
    return Q7_OK;
}

/* BatchNorm2d after yolov7's initialize_weights (eps 1e-3, momentum 0.03). */
static enum q7_status batchnorm2d(struct q7_ym_ctx * c, int64_t nf, struct q7_py ** out)
{
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.batchnorm", "BatchNorm2d");
    if (!m)
        return Q7_ERR_OOM;
    enum q7_status st;
    if ((st = q7_ym_attr_int(c, m, "num_features", nf)) ||
        (st = attr_float(c, m, "eps", 1e-3)) || (st = attr_float(c, m, "momentum", 0.03)) ||
        (st = attr_bool(c, m, "affine", 1)) || (st = attr_bool(c, m, "track_running_stats", 1)) ||
        (st = q7_ym_add_tensor(c, m, 1, "weight", 1, &nf, Q7_YM_FILL_ONE, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 1, "bias", 1, &nf, Q7_YM_FILL_ZERO, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 0, "running_mean", 1, &nf, Q7_YM_FILL_ZERO, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 0, "running_var", 1, &nf, Q7_YM_FILL_ONE, 0, 0, 0)))
        return st;
    struct q7_py * nbt = tensor_new(c, Q7_DTYPE_I64, 0, NULL, 1); /* int64 scalar 0 */
    if (!nbt)
        return Q7_ERR_OOM;
    if ((st = q7_py_dict_set_str(c->h, q7_py_getattr(m, "_buffers"), "num_batches_tracked", nbt)))
        return st;
    *out = m;
    return Q7_OK;
}

static enum q7_status maxpool2d(struct q7_ym_ctx * c, int64_t k, int64_t s, int64_t p,
                                struct q7_py ** out)
{
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.pooling", "MaxPool2d");
    enum q7_status st;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_attr_int(c, m, "kernel_size", k)) || (st = q7_ym_attr_int(c, m, "stride", s)) ||
        (st = q7_ym_attr_int(c, m, "padding", p)) || (st = q7_ym_attr_int(c, m, "dilation", 1)) ||
        (st = attr_bool(c, m, "return_indices", 0)) || (st = attr_bool(c, m, "ceil_mode", 0)))
        return st;
    *out = m;
    return Q7_OK;
}

static struct q7_py * activation(struct q7_ym_ctx * c, const char * cls, int inplace,
                                 struct q7_py * slope)
{
    if (strcmp(cls, "Identity") == 0)
        return q7_ym_module(c, "torch.nn.modules.linear", "Identity");
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.activation", cls);
    if (!m)
        return NULL;
    if (slope && q7_ym_attr(c, m, "negative_slope", slope))
        return NULL;
    if (strcmp(cls, "ReLU6") == 0 &&
        (attr_float(c, m, "min_val", 0.0) || attr_float(c, m, "max_val", 6.0)))
        return NULL;
    return attr_bool(c, m, "inplace", inplace) ? NULL : m;
}

enum q7_status q7_ym_eval_activation(struct q7_ym_ctx * c, const char * expr, struct q7_py ** out)
{
    *out = NULL;
    size_t n = strlen(expr);
    while (n && expr[n - 1] == ' ')
        n--;
    while (n && *expr == ' ')
        expr++, n--;
    if (n >= 6 && strncmp(expr, "torch.", 6) == 0)
        expr += 6, n -= 6;
    if (n < 3 || strncmp(expr, "nn.", 3) != 0 || expr[n - 1] != ')')
        return Q7_OK;
    const char * name = expr + 3;
    const char * open = memchr(name, '(', n - 3);
    if (!open)
        return Q7_OK;
    size_t name_len = (size_t)(open - name);
    const char * arg = open + 1;
    size_t arg_len = (size_t)(expr + n - 1 - arg);
    while (arg_len && *arg == ' ')
        arg++, arg_len--;
    while (arg_len && arg[arg_len - 1] == ' ')
        arg_len--;
    static const struct {
        const char * name;
        int inplace; /* after initialize_weights: LeakyReLU, ReLU, ReLU6, Hardswish in place */
    } acts[] = {{"SiLU", 0}, {"LeakyReLU", 1}, {"ReLU", 1}, {"ReLU6", 1}, {"Hardswish", 1},
                {"Identity", 0}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        if (strlen(acts[i].name) != name_len || strncmp(name, acts[i].name, name_len) != 0)
            continue;
        struct q7_py * slope = NULL;
        if (strcmp(acts[i].name, "LeakyReLU") == 0) {
            const char * kw = "negative_slope=";
            if (arg_len > strlen(kw) && strncmp(arg, kw, strlen(kw)) == 0)
                arg += strlen(kw), arg_len -= strlen(kw);
            if (arg_len == 0)
                slope = q7_py_float(c->h, 1e-2);
            else if (!q7_ym_parse_number(arg, arg_len, c, &slope))
                return Q7_OK; /* something else: stays a string */
            if (!slope)
                return Q7_ERR_OOM;
        } else if (arg_len != 0) {
            return Q7_OK;
        }
        *out = activation(c, acts[i].name, acts[i].inplace, slope);
        return *out ? Q7_OK : Q7_ERR_OOM;
    }
    return Q7_OK;
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
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: unsupported activation '%s'", cls,
                            v->v.str.s);
    int silu = !v || (v->kind == Q7_PY_BOOL && v->v.i);
    *out = activation(c, silu ? "SiLU" : "Identity", 0, NULL);
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* ---- the stride probe ------------------------------------------------------------------- */

/* PyTorch's conv / pool output size (pooling_output_shape, floor mode). */
static enum q7_status window(const char * cls, struct q7_ym_hw * hw, int64_t k, int64_t s,
                             int64_t p)
{
    int64_t span_h = hw->h + 2 * p - (k - 1) - 1, span_w = hw->w + 2 * p - (k - 1) - 1;
    if (span_h < 0 || span_w < 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: a %" PRId64 "x%" PRId64 " window does not fit "
                            "its %" PRId64 "x%" PRId64 " input for a %dx%d image", cls, k, k,
                            hw->h, hw->w, Q7_YM_STRIDE_PROBE, Q7_YM_STRIDE_PROBE);
    hw->h = span_h / s + 1;
    hw->w = span_w / s + 1;
    return Q7_OK;
}

static enum q7_status pool_padding(const char * cls, int64_t k, int64_t p)
{
    if (2 * p > k)
        return q7_error_set(Q7_ERR_FORMAT, "%s: padding %" PRId64 " is more than half the "
                            "kernel %" PRId64, cls, p, k);
    return Q7_OK;
}

/* ---- models.common ---------------------------------------------------------------------- */

/* Conv(c1, c2, k, s, p, g, act) with an act module already made. */
static enum q7_status conv_block(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k,
                                 int64_t s, int64_t p, int64_t g, struct q7_py * act,
                                 struct q7_py ** out)
{
    struct q7_py * m = q7_ym_module(c, "models.common", "Conv"), * conv = NULL, * bn = NULL;
    enum q7_status st;
    if (!m || !act)
        return Q7_ERR_OOM;
    if ((st = q7_ym_conv2d(c, c1, c2, k, s, p, g, 0, &conv)) || (st = q7_ym_child(c, m, "conv", conv)) ||
        (st = batchnorm2d(c, c2, &bn)) || (st = q7_ym_child(c, m, "bn", bn)) ||
        (st = q7_ym_child(c, m, "act", act)))
        return st;
    *out = m;
    return Q7_OK;
}

/* Conv(c1, c2, k, 1) with the default act (SiLU), as the composite modules use it. */
static enum q7_status conv_simple(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k,
                                  int64_t s, struct q7_py ** out)
{
    return conv_block(c, c1, c2, k, s, k / 2, 1, activation(c, "SiLU", 0, NULL), out);
}

enum q7_status q7_ym_conv(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                          struct q7_ym_hw * hw, struct q7_py ** out)
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
        (st = check_range("Conv", "k", k, 1, Q7_YM_MAX_KERNEL)) ||
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
        return q7_error_set(Q7_ERR_FORMAT, "RepConv: needs k = 3 and padding 1 (k = %" PRId64
                            ", padding %" PRId64 ")", k, p);
    struct q7_py * m = q7_ym_module(c, "models.common", cls);
    if (!m)
        return Q7_ERR_OOM;
    if ((st = attr_bool(c, m, "deploy", deploy != 0)) || (st = q7_ym_attr_int(c, m, "groups", g)) ||
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
            if ((st = batchnorm2d(c, c1, &id)) || (st = q7_ym_child(c, m, "rbr_identity", id)))
                return st;
        } else if ((st = q7_ym_attr(c, m, "rbr_identity", q7_py_none(c->h)))) {
            return st;
        }
        static const char * const names[2] = {"rbr_dense", "rbr_1x1"};
        for (int b = 0; b < 2; b++) {
            struct q7_py * seq = q7_ym_module(c, "torch.nn.modules.container", "Sequential");
            struct q7_py * conv = NULL, * bn = NULL;
            if (!seq)
                return Q7_ERR_OOM;
            int64_t kb = b == 0 ? 3 : 1, pb = b == 0 ? 1 : 0; /* padding_11 = 1 - 3 // 2 */
            if ((st = q7_ym_conv2d(c, c1, c2, kb, s, pb, g, 0, &conv)) ||
                (st = q7_ym_child(c, seq, "0", conv)) || (st = batchnorm2d(c, c2, &bn)) ||
                (st = q7_ym_child(c, seq, "1", bn)) || (st = q7_ym_child(c, m, names[b], seq)))
                return st;
        }
    }
    *out = m;
    return window(cls, hw, 3, s, 1);
}

enum q7_status q7_ym_downc(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                           struct q7_ym_hw * hw, struct q7_py ** out)
{
    int64_t c1, c2, n, k;
    enum q7_status st;
    const char * cls = "DownC";
    if ((st = max_args(a, 4, cls)) || (st = arg_int(a, 0, 0, cls, "c1", &c1)) ||
        (st = arg_int(a, 1, 0, cls, "c2", &c2)) || (st = arg_int(a, 2, 1, cls, "n", &n)) ||
        (st = arg_int(a, 3, 2, cls, "k", &k)) || (st = check_range(cls, "k", k, 1, Q7_YM_MAX_KERNEL)))
        return st;
    int64_t half = c2 >= 0 ? c2 / 2 : -((-c2 + 1) / 2); /* Python's c2 // 2 */
    struct q7_py * m = q7_ym_module(c, "models.common", cls), * cv1 = NULL, * cv2 = NULL,
                 * cv3 = NULL, * mp = NULL;
    if (!m)
        return Q7_ERR_OOM;
    /* c_ = int(c1); cv1 = Conv(c1, c_, 1, 1); cv2 = Conv(c_, c2//2, 3, k);
     * cv3 = Conv(c1, c2//2, 1, 1); mp = MaxPool2d(kernel_size=k, stride=k) */
    if ((st = conv_simple(c, c1, c1, 1, 1, &cv1)) || (st = q7_ym_child(c, m, "cv1", cv1)) ||
        (st = conv_simple(c, c1, half, 3, k, &cv2)) || (st = q7_ym_child(c, m, "cv2", cv2)) ||
        (st = conv_simple(c, c1, half, 1, 1, &cv3)) || (st = q7_ym_child(c, m, "cv3", cv3)) ||
        (st = maxpool2d(c, k, k, 0, &mp)) || (st = q7_ym_child(c, m, "mp", mp)))
        return st;
    struct q7_ym_hw conv_hw = *hw, pool_hw = *hw;
    if ((st = window(cls, &conv_hw, 3, k, 1)) || (st = window(cls, &pool_hw, k, k, 0)))
        return st;
    if (conv_hw.h != pool_hw.h || conv_hw.w != pool_hw.w)
        return q7_error_set(Q7_ERR_FORMAT, "DownC: its branches give %" PRId64 "x%" PRId64
                            " and %" PRId64 "x%" PRId64 " from a %" PRId64 "x%" PRId64 " input",
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
        (st = arg_int(a, 3, 0, cls, "shortcut", &shortcut)) || (st = arg_int(a, 4, 1, cls, "g", &g)))
        return st;
    if (a->n > 5 && !q7_py_as_double(a->v[5], &e))
        return bad_arg(cls, "e", a->v[5], "a number");
    if (a->n > 6) {
        const struct q7_py * kv = a->v[6];
        if ((kv->kind != Q7_PY_LIST && kv->kind != Q7_PY_TUPLE) ||
            kv->v.seq.len > Q7_YM_MAX_ARGS)
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
    struct q7_py * m = q7_ym_module(c, "models.common", cls), * cv = NULL;
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
        if ((st = check_range(cls, "k", ks[i], 1, Q7_YM_MAX_KERNEL)) ||
            (st = pool_padding(cls, ks[i], ks[i] / 2)) ||
            (st = maxpool2d(c, ks[i], 1, ks[i] / 2, &mp)) || (st = q7_ym_child(c, pools, key, mp)) ||
            (st = window(cls, &phw, ks[i], 1, ks[i] / 2)))
            return st;
        if (phw.h != hw->h || phw.w != hw->w)
            return q7_error_set(Q7_ERR_FORMAT, "SPPCSPC: pool %" PRId64 " changes the size of "
                                "its input (an even kernel)", ks[i]);
    }
    if ((st = q7_ym_child(c, m, "m", pools)) ||
        (st = conv_simple(c, 4 * h, h, 1, 1, &cv)) || (st = q7_ym_child(c, m, "cv5", cv)) ||
        (st = conv_simple(c, h, h, 3, 1, &cv)) || (st = q7_ym_child(c, m, "cv6", cv)) ||
        (st = conv_simple(c, 2 * h, c2, 1, 1, &cv)) || (st = q7_ym_child(c, m, "cv7", cv)))
        return st;
    *out = m;
    return Q7_OK;
}

/* MP(k=2) and SP(k=3, s=1): one MaxPool2d called `m`. */
static enum q7_status pool_module(struct q7_ym_ctx * c, const char * cls, int64_t k, int64_t s,
                                  int64_t p, struct q7_ym_hw * hw, struct q7_py ** out)
{
    enum q7_status st;
    struct q7_py * m = q7_ym_module(c, "models.common", cls), * mp = NULL;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = check_range(cls, "k", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = check_range(cls, "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = pool_padding(cls, k, p)) || (st = maxpool2d(c, k, s, p, &mp)) ||
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
    if ((st = check_range(cls, "kernel_size", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = check_range(cls, "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = check_range(cls, "padding", p, 0, Q7_YM_MAX_KERNEL)) ||
        (st = pool_padding(cls, k, p)) || (st = maxpool2d(c, k, s, p, out)))
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
    if ((st = attr_str(c, m, "name", cls)) ||
        (st = q7_ym_attr(c, m, "size", has_size ? q7_py_int(c->h, size_v) : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "scale_factor",
                         has_sf ? q7_py_float(c->h, sf_v) : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "mode", mode ? (struct q7_py *)mode
                                            : q7_py_str(c->h, "nearest", 7))) ||
        (st = q7_ym_attr(c, m, "align_corners", a->n > 3 ? a->v[3] : q7_py_none(c->h))) ||
        (st = q7_ym_attr(c, m, "recompute_scale_factor", a->n > 4 ? a->v[4] : q7_py_none(c->h))))
        return st;
    if (has_size) {
        hw->h = hw->w = size_v;
    } else {
        hw->h = (int64_t)floor((double)hw->h * sf_v);
        hw->w = (int64_t)floor((double)hw->w * sf_v);
        if (hw->h < 1 || hw->w < 1)
            return q7_error_set(Q7_ERR_FORMAT, "Upsample: scale %g gives an empty output", sf_v);
    }
    *out = m;
    return Q7_OK;
}

enum q7_status q7_ym_reorg(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                           struct q7_ym_hw * hw, struct q7_py ** out)
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

enum q7_status q7_ym_concat(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                            struct q7_py ** out)
{
    return dim_module(c, a, "Concat", 1, out);
}

enum q7_status q7_ym_shortcut(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                              struct q7_py ** out)
{
    return dim_module(c, a, "Shortcut", 0, out);
}
