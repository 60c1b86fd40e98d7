/* Tensor views of inert Python objects (geometry checked against the storage, conversion to
 * FP32, float64 sums) and the state_dict walk over a pickled nn.Module tree, in PyTorch's
 * order. The objects themselves are in models/pyobj.c. */
#include "models/pyobj.h"
#include "models/pyobj_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t q7_py_tensor_numel(const struct q7_py * tensor)
{
    if (!tensor || tensor->kind != Q7_PY_TENSOR)
        return -1;
    const struct q7_py_tensor * t = &tensor->v.tensor;
    if (t->ndim < 0 || t->ndim > Q7_MAX_DIMS)
        return -1;
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || (t->shape[d] && n > INT64_MAX / t->shape[d]))
            return -1;
        n *= t->shape[d];
    }
    return n;
}

/* Checks the view's geometry against its storage (resolved or not). On success *numel holds
 * the element count and *contig says the view is one contiguous run. */
static enum q7_status tensor_geometry(const struct q7_py * tensor, int64_t * numel, int * contig)
{
    if (!tensor || tensor->kind != Q7_PY_TENSOR)
        return q7_error_set(Q7_ERR_ARG, "tensor: object is not a tensor");
    const struct q7_py_tensor * t = &tensor->v.tensor;
    const struct q7_py * so = t->storage;
    if (!so || so->kind != Q7_PY_STORAGE)
        return q7_error_set(Q7_ERR_FORMAT, "tensor: has no storage");
    const struct q7_py_storage * st = &so->v.storage;
    if ((unsigned)st->dtype >= Q7_DTYPE_COUNT || st->numel < 0)
        return q7_error_set(Q7_ERR_FORMAT, "tensor: storage '%s' is malformed", st->key);
    int64_t n = q7_py_tensor_numel(tensor);
    if (n < 0)
        return q7_error_set(Q7_ERR_FORMAT, "tensor: bad shape or %d dimensions", t->ndim);
    if (t->offset < 0)
        return q7_error_set(Q7_ERR_FORMAT, "tensor: negative storage offset %" PRId64, t->offset);
    /* the last element reached: offset + sum((shape - 1) * stride), overflow-checked */
    uint64_t last = (uint64_t)t->offset;
    int is_contig = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->stride[d] < 0)
            return q7_error_set(Q7_ERR_FORMAT, "tensor: negative stride %" PRId64, t->stride[d]);
        if (t->shape[d] != 1 && t->stride[d] != expect)
            is_contig = 0;
        expect *= t->shape[d] ? t->shape[d] : 1; /* <= numel, cannot overflow */
        if (n == 0)
            continue;
        uint64_t span = (uint64_t)(t->shape[d] - 1);
        if (span && (uint64_t)t->stride[d] > (UINT64_MAX - last) / span)
            return q7_error_set(Q7_ERR_FORMAT, "tensor: strides overflow");
        last += span * (uint64_t)t->stride[d];
    }
    if (n > 0 && last >= (uint64_t)st->numel)
        return q7_error_set(Q7_ERR_FORMAT,
                            "tensor: view reaches element %" PRIu64 " of storage '%s' holding %"
                            PRId64, last, st->key, st->numel);
    *numel = n;
    *contig = is_contig;
    return Q7_OK;
}

enum q7_status q7_py_tensor_check(const struct q7_py * tensor)
{
    int64_t n;
    int contig;
    return tensor_geometry(tensor, &n, &contig);
}

/* tensor_geometry plus a resolved storage, returned in *out. */
static enum q7_status tensor_view(const struct q7_py * tensor, const struct q7_py_storage ** out,
                                  int64_t * numel, int * contig)
{
    enum q7_status s = tensor_geometry(tensor, numel, contig);
    if (s)
        return s;
    const struct q7_py_storage * st = &tensor->v.tensor.storage->v.storage;
    if (!st->data)
        return q7_error_set(Q7_ERR_FORMAT, "tensor: storage '%s' is not resolved", st->key);
    *out = st;
    return Q7_OK;
}

static float load_f32(enum q7_dtype dt, const uint8_t * base, uint64_t i)
{
    switch (dt) {
    case Q7_DTYPE_F32: { float v; memcpy(&v, base + i * 4, 4); return v; }
    case Q7_DTYPE_F16: { uint16_t v; memcpy(&v, base + i * 2, 2); return q7_half_to_float(v); }
    case Q7_DTYPE_BF16: { uint16_t v; memcpy(&v, base + i * 2, 2); return q7_bf16_to_float(v); }
    case Q7_DTYPE_F64: { double v; memcpy(&v, base + i * 8, 8); return (float)v; }
    case Q7_DTYPE_I64: { int64_t v; memcpy(&v, base + i * 8, 8); return (float)v; }
    case Q7_DTYPE_I32: { int32_t v; memcpy(&v, base + i * 4, 4); return (float)v; }
    case Q7_DTYPE_I16: { int16_t v; memcpy(&v, base + i * 2, 2); return (float)v; }
    case Q7_DTYPE_I8: return (float)(int8_t)base[i];
    case Q7_DTYPE_U8: return (float)base[i];
    case Q7_DTYPE_BOOL: return base[i] ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

static double load_f64(enum q7_dtype dt, const uint8_t * base, uint64_t i)
{
    switch (dt) {
    case Q7_DTYPE_F64: { double v; memcpy(&v, base + i * 8, 8); return v; }
    case Q7_DTYPE_I64: { int64_t v; memcpy(&v, base + i * 8, 8); return (double)v; }
    case Q7_DTYPE_I32: { int32_t v; memcpy(&v, base + i * 4, 4); return (double)v; }
    default: return (double)load_f32(dt, base, i); /* exact for the narrower types */
    }
}

/* Storage index of the next element: advances the odometer `idx` over `t`'s shape. */
static uint64_t view_next(const struct q7_py_tensor * t, int64_t * idx, uint64_t pos)
{
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (++idx[d] < t->shape[d])
            return pos + (uint64_t)t->stride[d];
        pos -= (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
        idx[d] = 0;
    }
    return pos;
}

enum q7_status q7_py_tensor_to_f32(const struct q7_py * tensor, float * out, int64_t n)
{
    const struct q7_py_storage * st = NULL;
    int64_t numel;
    int contig;
    enum q7_status s = tensor_view(tensor, &st, &numel, &contig);
    if (s)
        return s;
    if (n != numel)
        return q7_error_set(Q7_ERR_ARG, "tensor: %" PRId64 " elements, caller expects %" PRId64,
                            numel, n);
    const struct q7_py_tensor * t = &tensor->v.tensor;
    uint64_t pos = (uint64_t)t->offset;
    if (contig && st->dtype == Q7_DTYPE_F32) {
        memcpy(out, st->data + pos * 4, (size_t)numel * 4);
        return Q7_OK;
    }
    int64_t idx[Q7_MAX_DIMS] = {0};
    for (int64_t i = 0; i < numel; i++) {
        out[i] = load_f32(st->dtype, st->data, pos);
        pos = contig ? pos + 1 : view_next(t, idx, pos);
    }
    return Q7_OK;
}

enum q7_status q7_py_tensor_sums(const struct q7_py * tensor, double * sum, double * abs_sum)
{
    const struct q7_py_storage * st = NULL;
    int64_t numel;
    int contig;
    enum q7_status s = tensor_view(tensor, &st, &numel, &contig);
    if (s)
        return s;
    const struct q7_py_tensor * t = &tensor->v.tensor;
    uint64_t pos = (uint64_t)t->offset;
    int64_t idx[Q7_MAX_DIMS] = {0};
    double acc = 0.0, acc_abs = 0.0;
    for (int64_t i = 0; i < numel; i++) {
        double v = load_f64(st->dtype, st->data, pos);
        acc += v;
        acc_abs += fabs(v);
        pos = contig ? pos + 1 : view_next(t, idx, pos);
    }
    if (sum)
        *sum = acc;
    if (abs_sum)
        *abs_sum = acc_abs;
    return Q7_OK;
}

/* ---- state_dict walk --------------------------------------------------------------------- */

#define WALK_MAX_DEPTH 128
#define WALK_MAX_NAME 1024
#define WALK_MAX_VISITS ((size_t)1 << 24) /* dict items looked at: bounds shared-subtree blowup */

struct walk_ctx {
    q7_py_tensor_visit_fn fn;
    void * user;
    size_t visits;
    char name[WALK_MAX_NAME];
};

/* Counts one dict entry against WALK_MAX_VISITS and checks that its key is a name. */
static enum q7_status walk_visit(struct walk_ctx * w, const struct q7_py * key)
{
    if (++w->visits > WALK_MAX_VISITS)
        return q7_error_set(Q7_ERR_LIMIT, "state_dict: more than %zu entries visited",
                            WALK_MAX_VISITS);
    if (key->kind != Q7_PY_STR)
        return q7_error_set(Q7_ERR_FORMAT, "state_dict: module '%s' has a non-string name",
                            w->name);
    return Q7_OK;
}

/* Appends `key` (and a '.' when `dot`) at name[len]; *out is the new length.
 * name[0..len) is always the current module's prefix, ending in '.' unless empty. */
static enum q7_status walk_name(struct walk_ctx * w, size_t len, const char * key, int dot,
                                size_t * out)
{
    size_t k = strlen(key), need = len + k + (size_t)(dot != 0);
    if (need >= WALK_MAX_NAME)
        return q7_error_set(Q7_ERR_LIMIT, "state_dict: name longer than %d bytes",
                            WALK_MAX_NAME);
    memcpy(w->name + len, key, k);
    if (dot)
        w->name[len + k] = '.';
    w->name[need] = '\0';
    *out = need;
    return Q7_OK;
}

/* Membership in _non_persistent_buffers_set; each comparison counts as a visit. */
static int walk_is_non_persistent(struct walk_ctx * w, const struct q7_py * set,
                                  const struct q7_py * key)
{
    if (!set || (set->kind != Q7_PY_SET && set->kind != Q7_PY_LIST && set->kind != Q7_PY_TUPLE))
        return 0;
    w->visits += set->v.seq.len;
    for (size_t i = 0; i < set->v.seq.len && w->visits <= WALK_MAX_VISITS; i++)
        if (q7_py_key_eq(set->v.seq.items[i], key))
            return 1;
    return 0;
}

static enum q7_status walk_tensors(struct walk_ctx * w, const struct q7_py * dict, size_t len,
                                   const struct q7_py * skip, int is_buffer)
{
    if (!dict || dict->kind == Q7_PY_NONE)
        return Q7_OK;
    if (dict->kind != Q7_PY_DICT)
        return q7_error_set(Q7_ERR_FORMAT, "state_dict: %s of module '%s' is not a dict",
                            is_buffer ? "_buffers" : "_parameters", w->name);
    for (size_t i = 0; i < dict->v.dict.len; i++) {
        const struct q7_py * k = dict->v.dict.keys[i], * v = dict->v.dict.values[i];
        enum q7_status st = walk_visit(w, k);
        if (st)
            return st;
        if (v->kind == Q7_PY_NONE || (is_buffer && walk_is_non_persistent(w, skip, k)))
            continue;
        size_t n = 0;
        if ((st = walk_name(w, len, k->v.str.s, 0, &n)))
            return st;
        if (v->kind != Q7_PY_TENSOR)
            return q7_error_set(Q7_ERR_FORMAT, "state_dict: '%s' is not a tensor", w->name);
        st = w->fn(w->user, w->name, v, is_buffer);
        w->name[len] = '\0';
        if (st)
            return st;
    }
    return Q7_OK;
}

static enum q7_status walk_module(struct walk_ctx * w, const struct q7_py * m, size_t len,
                                  int depth)
{
    if (depth > WALK_MAX_DEPTH)
        return q7_error_set(Q7_ERR_LIMIT, "state_dict: modules nested deeper than %d (a cycle?)",
                            WALK_MAX_DEPTH);
    if (!m || m->kind != Q7_PY_OBJECT)
        return q7_error_set(Q7_ERR_FORMAT, "state_dict: '%s' is not a module object", w->name);
    enum q7_status st = walk_tensors(w, q7_py_getattr(m, "_parameters"), len, NULL, 0);
    if (st)
        return st;
    st = walk_tensors(w, q7_py_getattr(m, "_buffers"), len,
                      q7_py_getattr(m, "_non_persistent_buffers_set"), 1);
    if (st)
        return st;
    const struct q7_py * mods = q7_py_getattr(m, "_modules");
    if (!mods || mods->kind == Q7_PY_NONE)
        return Q7_OK;
    if (mods->kind != Q7_PY_DICT)
        return q7_error_set(Q7_ERR_FORMAT, "state_dict: _modules of '%s' is not a dict", w->name);
    for (size_t i = 0; i < mods->v.dict.len; i++) {
        const struct q7_py * k = mods->v.dict.keys[i], * v = mods->v.dict.values[i];
        if ((st = walk_visit(w, k)))
            return st;
        if (v->kind == Q7_PY_NONE)
            continue;
        size_t n = 0;
        if ((st = walk_name(w, len, k->v.str.s, 1, &n)))
            return st;
        st = walk_module(w, v, n, depth + 1);
        w->name[len] = '\0';
        if (st)
            return st;
    }
    return Q7_OK;
}

enum q7_status q7_py_state_dict_walk(const struct q7_py * module, const char * prefix,
                                     q7_py_tensor_visit_fn fn, void * user)
{
    if (!module || !fn)
        return q7_error_set(Q7_ERR_ARG, "state_dict: NULL module or callback");
    struct walk_ctx * w = malloc(sizeof *w);
    if (!w)
        return q7_error_set(Q7_ERR_OOM, "state_dict: out of memory");
    w->fn = fn;
    w->user = user;
    w->visits = 0;
    w->name[0] = '\0';
    /* the prefix is literal (PyTorch's state_dict(prefix=...)): it carries its own dot */
    size_t len = prefix ? strlen(prefix) : 0;
    enum q7_status st;
    if (len >= WALK_MAX_NAME) {
        st = q7_error_set(Q7_ERR_LIMIT, "state_dict: prefix longer than %d bytes", WALK_MAX_NAME);
    } else {
        if (len)
            memcpy(w->name, prefix, len + 1);
        st = walk_module(w, module, len, 0);
    }
    free(w);
    return st;
}
