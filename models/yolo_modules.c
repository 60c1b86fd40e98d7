/* Module objects of a yaml-built YOLOv7: nn.Module state, tensors and their seeded init, and
 * the torch leaves (Conv2d, BatchNorm2d, MaxPool2d, activations) with the attributes,
 * parameters and buffers that their Python constructors create, key order included. */
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
    struct q7_py *params = ordered_dict(c), *bufs = ordered_dict(c);
    struct q7_py *npbs = q7_py_new(c->h, Q7_PY_SET), *mods = ordered_dict(c);
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

enum q7_status q7_ym_attr_int(struct q7_ym_ctx * c, struct q7_py * mod, const char * key, int64_t v)
{
    return q7_ym_attr(c, mod, key, q7_py_int(c->h, v));
}

enum q7_status q7_ym_attr_bool(struct q7_ym_ctx * c, struct q7_py * mod, const char * key, int v)
{
    return q7_ym_attr(c, mod, key, q7_py_bool(c->h, v));
}

enum q7_status q7_ym_attr_float(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                                double v)
{
    return q7_ym_attr(c, mod, key, q7_py_float(c->h, v));
}

enum q7_status q7_ym_attr_str(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                              const char * v)
{
    return q7_ym_attr(c, mod, key, q7_py_str(c->h, v, strlen(v)));
}

/* A tuple of ints (PyTorch's _pair / _reverse_repeat_tuple values). */
enum q7_status q7_ym_attr_ints(struct q7_ym_ctx * c, struct q7_py * mod, const char * key, int n,
                               const int64_t * v)
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

struct q7_py * q7_ym_tensor(struct q7_ym_ctx * c, int ndim, const int64_t * shape, int with_data)
{
    q7_error_clear(); /* q7_ym_failed reads the status a failure leaves */
    return q7_py_tensor_new(c->h, Q7_DTYPE_F32, ndim, shape, with_data);
}

enum q7_status q7_ym_failed(void)
{
    enum q7_status st = q7_error_status();
    return st != Q7_OK ? st : q7_error_set(Q7_ERR_OOM, "out of memory");
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
                                const char * name, int ndim, const int64_t * shape,
                                enum q7_ym_fill f, double a, double b, int force_data)
{
    int with_data = force_data || c->init != Q7_CFG_INIT_SHAPE;
    if (is_param) {
        uint64_t n = 1;
        for (int d = 0; d < ndim; d++)
            n *= (uint64_t)shape[d]; /* each dim <= 2^20 and ndim <= 4: no overflow */
        uint64_t limit = with_data ? Q7_YM_MAX_DATA_ELEMS : Q7_YM_MAX_SHAPE_ELEMS;
        c->param_elems += n;
        if (c->param_elems > limit)
            return q7_error_set(Q7_ERR_LIMIT, "the model has more than %" PRIu64 " parameters",
                                limit);
    }
    struct q7_py * t = q7_ym_tensor(c, ndim, shape, with_data);
    if (!t)
        return q7_ym_failed(); /* a shape past the limits is Q7_ERR_LIMIT, not OOM */
    t->v.tensor.is_parameter = is_param;
    t->v.tensor.requires_grad = is_param;
    float * x = q7_ym_data(t);
    if (x)
        fill_values(c, x, q7_py_tensor_numel(t), f, a, b);
    return q7_py_dict_set_str(c->h, q7_py_getattr(mod, is_param ? "_parameters" : "_buffers"), name,
                              t);
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

/* ---- arguments ------------------------------------------------------------------------ */

/* Size checks: channels, kernels, strides, paddings within sane bounds. */
enum q7_status q7_ym_check_range(const char * cls, const char * name, int64_t v, int64_t lo,
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
    if ((st = q7_ym_check_range("Conv2d", "in_channels", c1, 1, Q7_YM_MAX_CHANNELS)) ||
        (st = q7_ym_check_range("Conv2d", "out_channels", c2, 1, Q7_YM_MAX_CHANNELS)) ||
        (st = q7_ym_check_range("Conv2d", "kernel_size", k, 1, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range("Conv2d", "stride", s, 1, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range("Conv2d", "padding", p, 0, Q7_YM_MAX_KERNEL)) ||
        (st = q7_ym_check_range("Conv2d", "groups", g, 1, Q7_YM_MAX_CHANNELS)))
        return st;
    if (c1 % g || c2 % g)
        return q7_error_set(Q7_ERR_FORMAT,
                            "Conv2d: %" PRId64 " and %" PRId64 " channels are "
                            "not divisible by groups = %" PRId64,
                            c1, c2, g);
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.conv", "Conv2d");
    if (!m)
        return Q7_ERR_OOM;
    int64_t kk[2] = {k, k}, ss[2] = {s, s}, pp[2] = {p, p}, one[2] = {1, 1}, zero[2] = {0, 0};
    int64_t rev[4] = {p, p, p, p};
    int64_t wshape[4] = {c2, c1 / g, k, k};
    double bound = 1.0 / sqrt((double)(c1 / g * k * k)); /* kaiming_uniform_(a=sqrt(5)) */
    if ((st = q7_ym_attr_int(c, m, "in_channels", c1)) ||
        (st = q7_ym_attr_int(c, m, "out_channels", c2)) ||
        (st = q7_ym_attr_ints(c, m, "kernel_size", 2, kk)) ||
        (st = q7_ym_attr_ints(c, m, "stride", 2, ss)) ||
        (st = q7_ym_attr_ints(c, m, "padding", 2, pp)) ||
        (st = q7_ym_attr_ints(c, m, "dilation", 2, one)) ||
        (st = q7_ym_attr_bool(c, m, "transposed", 0)) ||
        (st = q7_ym_attr_ints(c, m, "output_padding", 2, zero)) ||
        (st = q7_ym_attr_int(c, m, "groups", g)) ||
        (st = q7_ym_attr_str(c, m, "padding_mode", "zeros")) ||
        (st = q7_ym_attr_ints(c, m, "_reversed_padding_repeated_twice", 4, rev)) ||
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
enum q7_status q7_ym_batchnorm2d(struct q7_ym_ctx * c, int64_t nf, struct q7_py ** out)
{
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.batchnorm", "BatchNorm2d");
    if (!m)
        return Q7_ERR_OOM;
    enum q7_status st;
    if ((st = q7_ym_attr_int(c, m, "num_features", nf)) ||
        (st = q7_ym_attr_float(c, m, "eps", 1e-3)) ||
        (st = q7_ym_attr_float(c, m, "momentum", 0.03)) ||
        (st = q7_ym_attr_bool(c, m, "affine", 1)) ||
        (st = q7_ym_attr_bool(c, m, "track_running_stats", 1)) ||
        (st = q7_ym_add_tensor(c, m, 1, "weight", 1, &nf, Q7_YM_FILL_ONE, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 1, "bias", 1, &nf, Q7_YM_FILL_ZERO, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 0, "running_mean", 1, &nf, Q7_YM_FILL_ZERO, 0, 0, 0)) ||
        (st = q7_ym_add_tensor(c, m, 0, "running_var", 1, &nf, Q7_YM_FILL_ONE, 0, 0, 0)))
        return st;
    struct q7_py * nbt = q7_py_tensor_new(c->h, Q7_DTYPE_I64, 0, NULL, 1); /* int64 scalar 0 */
    if (!nbt)
        return Q7_ERR_OOM;
    if ((st = q7_py_dict_set_str(c->h, q7_py_getattr(m, "_buffers"), "num_batches_tracked", nbt)))
        return st;
    *out = m;
    return Q7_OK;
}

enum q7_status q7_ym_maxpool2d(struct q7_ym_ctx * c, int64_t k, int64_t s, int64_t p,
                               struct q7_py ** out)
{
    struct q7_py * m = q7_ym_module(c, "torch.nn.modules.pooling", "MaxPool2d");
    enum q7_status st;
    if (!m)
        return Q7_ERR_OOM;
    if ((st = q7_ym_attr_int(c, m, "kernel_size", k)) || (st = q7_ym_attr_int(c, m, "stride", s)) ||
        (st = q7_ym_attr_int(c, m, "padding", p)) || (st = q7_ym_attr_int(c, m, "dilation", 1)) ||
        (st = q7_ym_attr_bool(c, m, "return_indices", 0)) ||
        (st = q7_ym_attr_bool(c, m, "ceil_mode", 0)))
        return st;
    *out = m;
    return Q7_OK;
}

struct q7_py * q7_ym_activation(struct q7_ym_ctx * c, const char * cls, int inplace,
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
        (q7_ym_attr_float(c, m, "min_val", 0.0) || q7_ym_attr_float(c, m, "max_val", 6.0)))
        return NULL;
    return q7_ym_attr_bool(c, m, "inplace", inplace) ? NULL : m;
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
    } acts[] = {{"SiLU", 0},  {"LeakyReLU", 1}, {"ReLU", 1},
                {"ReLU6", 1}, {"Hardswish", 1}, {"Identity", 0}};
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
        *out = q7_ym_activation(c, acts[i].name, acts[i].inplace, slope);
        return *out ? Q7_OK : Q7_ERR_OOM;
    }
    return Q7_OK;
}
