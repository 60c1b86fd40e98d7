/* The unpickler's object-making opcodes: what a checkpoint is allowed to construct.
 *
 * GLOBAL/STACK_GLOBAL push an inert (module, name) pair; NEWOBJ makes an inert instance that
 * BUILD fills with state; REDUCE runs q7's own implementation of a short allow-list of data
 * constructors (OrderedDict, set, tensor and parameter rebuilders, _codecs.encode, numpy
 * scalars) and refuses anything else naming the callable; BINPERSID turns a torch storage id
 * into a storage through the caller's resolver. Nothing is ever executed. */
#include "models/pickle_impl.h"

#include <inttypes.h>
#include <string.h>

static int is_name(const char * s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

enum q7_status q7_up_op_global(struct q7_up * u)
{
    const char * mod, * name;
    size_t mlen, nlen;
    enum q7_status st = q7_up_read_line(u, &mod, &mlen);
    if (st == Q7_OK)
        st = q7_up_read_line(u, &name, &nlen);
    if (st)
        return st;
    if (!is_name(mod, mlen) || !is_name(name, nlen))
        return q7_up_err(u, Q7_ERR_FORMAT, "bad global name");
    char m[Q7_UP_MAX_LINE + 1], n[Q7_UP_MAX_LINE + 1];
    memcpy(m, mod, mlen);
    m[mlen] = '\0';
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    return q7_up_push(u, q7_py_global(u->h, m, n));
}

enum q7_status q7_up_op_stack_global(struct q7_up * u)
{
    struct q7_py * name, * mod;
    enum q7_status st = q7_up_pop(u, &name);
    if (st == Q7_OK)
        st = q7_up_pop(u, &mod);
    if (st)
        return st;
    if (mod->kind != Q7_PY_STR || name->kind != Q7_PY_STR ||
        !is_name(mod->v.str.s, mod->v.str.len) || !is_name(name->v.str.s, name->v.str.len) ||
        strlen(mod->v.str.s) != mod->v.str.len || strlen(name->v.str.s) != name->v.str.len)
        return q7_up_err(u, Q7_ERR_FORMAT, "module and name must be strings");
    return q7_up_push(u, q7_py_global(u->h, mod->v.str.s, name->v.str.s));
}

static int global_is(const struct q7_py * g, const char * module, const char * name)
{
    return strcmp(g->v.global.module, module) == 0 && strcmp(g->v.global.name, name) == 0;
}

static int is_builtins(const char * module)
{
    return strcmp(module, "__builtin__") == 0 || strcmp(module, "builtins") == 0;
}

static int is_tuple_or_list(const struct q7_py * o)
{
    return o && (o->kind == Q7_PY_TUPLE || o->kind == Q7_PY_LIST);
}

static enum q7_status storage_dtype(const char * name, enum q7_dtype * dt)
{
    static const struct {
        const char * name;
        enum q7_dtype dtype;
    } map[] = {
        {"HalfStorage", Q7_DTYPE_F16},   {"FloatStorage", Q7_DTYPE_F32},
        {"DoubleStorage", Q7_DTYPE_F64}, {"BFloat16Storage", Q7_DTYPE_BF16},
        {"LongStorage", Q7_DTYPE_I64},   {"IntStorage", Q7_DTYPE_I32},
        {"ShortStorage", Q7_DTYPE_I16},  {"CharStorage", Q7_DTYPE_I8},
        {"ByteStorage", Q7_DTYPE_U8},    {"BoolStorage", Q7_DTYPE_BOOL},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(name, map[i].name) == 0) {
            *dt = map[i].dtype;
            return Q7_OK;
        }
    }
    return Q7_ERR_UNSUPPORTED;
}

/* torch._utils._rebuild_tensor(_v2)(storage, offset, size, stride[, requires_grad, hooks,
 * metadata]) */
static enum q7_status rebuild_tensor(struct q7_up * u, const struct q7_py * args,
                                     struct q7_py ** out)
{
    size_t n = args->v.seq.len;
    struct q7_py * const * a = args->v.seq.items;
    if (n < 4 || n > 7)
        return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2 takes 4 to 7 arguments, got %zu", n);
    int64_t offset, rg = 0;
    if (a[0]->kind != Q7_PY_STORAGE || !q7_py_as_int(a[1], &offset) ||
        !is_tuple_or_list(a[2]) || !is_tuple_or_list(a[3]) || (n > 4 && !q7_py_as_int(a[4], &rg)))
        return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: bad arguments (storage, offset, "
                      "size, stride, requires_grad)");
    size_t nd = a[2]->v.seq.len;
    if (nd > Q7_MAX_DIMS || a[3]->v.seq.len != nd)
        return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: %zu dimensions and %zu strides "
                         "(at most %d)", nd, a[3]->v.seq.len, Q7_MAX_DIMS);
    struct q7_py * t = q7_py_new(u->h, Q7_PY_TENSOR);
    if (!t)
        return q7_up_wrap(u, Q7_ERR_OOM);
    t->v.tensor.storage = a[0];
    t->v.tensor.offset = offset;
    t->v.tensor.ndim = (int)nd;
    t->v.tensor.requires_grad = rg != 0;
    for (size_t d = 0; d < nd; d++) {
        if (!q7_py_as_int(a[2]->v.seq.items[d], &t->v.tensor.shape[d]) ||
            !q7_py_as_int(a[3]->v.seq.items[d], &t->v.tensor.stride[d]))
            return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: size and stride must be ints");
    }
    enum q7_status st = q7_py_tensor_check(t);
    if (st)
        return q7_up_wrap(u, st);
    *out = t;
    return Q7_OK;
}

/* torch._utils._rebuild_parameter(data, requires_grad, hooks[, state]) */
static enum q7_status rebuild_parameter(struct q7_up * u, const struct q7_py * args,
                                        struct q7_py ** out)
{
    int64_t rg;
    if (args->v.seq.len < 2 || args->v.seq.len > 4 || args->v.seq.items[0]->kind != Q7_PY_TENSOR ||
        !q7_py_as_int(args->v.seq.items[1], &rg))
        return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_parameter: bad arguments (tensor, "
                      "requires_grad, hooks)");
    struct q7_py * p = q7_py_new(u->h, Q7_PY_TENSOR);
    if (!p)
        return q7_up_wrap(u, Q7_ERR_OOM);
    p->v.tensor = args->v.seq.items[0]->v.tensor;
    p->v.tensor.requires_grad = rg != 0;
    p->v.tensor.is_parameter = 1;
    *out = p;
    return Q7_OK;
}

/* collections.OrderedDict([pairs]) */
static enum q7_status make_dict(struct q7_up * u, const struct q7_py * args, struct q7_py ** out)
{
    struct q7_py * d = q7_py_new(u->h, Q7_PY_DICT);
    if (!d)
        return q7_up_wrap(u, Q7_ERR_OOM);
    if (args->v.seq.len > 1 || (args->v.seq.len == 1 && !is_tuple_or_list(args->v.seq.items[0])))
        return q7_up_err(u, Q7_ERR_FORMAT, "OrderedDict takes one list of pairs");
    const struct q7_py * pairs = args->v.seq.len ? args->v.seq.items[0] : NULL;
    for (size_t i = 0; pairs && i < pairs->v.seq.len; i++) {
        const struct q7_py * kv = pairs->v.seq.items[i];
        if (!is_tuple_or_list(kv) || kv->v.seq.len != 2)
            return q7_up_err(u, Q7_ERR_FORMAT, "OrderedDict item %zu is not a pair", i);
        enum q7_status st = q7_up_dict_add(u, d, kv->v.seq.items[0], kv->v.seq.items[1]);
        if (st)
            return st;
    }
    *out = d;
    return Q7_OK;
}

/* set(iterable) / frozenset(iterable) */
static enum q7_status make_set(struct q7_up * u, const struct q7_py * args, struct q7_py ** out)
{
    struct q7_py * s = q7_py_new(u->h, Q7_PY_SET);
    if (!s)
        return q7_up_wrap(u, Q7_ERR_OOM);
    const struct q7_py * it = args->v.seq.len ? args->v.seq.items[0] : NULL;
    if (args->v.seq.len > 1 || (it && !is_tuple_or_list(it) && it->kind != Q7_PY_SET))
        return q7_up_err(u, Q7_ERR_FORMAT, "set takes one list");
    for (size_t i = 0; it && i < it->v.seq.len; i++) {
        enum q7_status st = q7_up_seq_add(u, s, it->v.seq.items[i]);
        if (st)
            return st;
    }
    *out = s;
    return Q7_OK;
}

/* _codecs.encode(str, encoding): how protocol 2 pickles bytes under Python 3 */
static enum q7_status codecs_encode(struct q7_up * u, const struct q7_py * args,
                                    struct q7_py ** out)
{
    const struct q7_py * s = args->v.seq.len ? args->v.seq.items[0] : NULL;
    const char * enc = args->v.seq.len > 1 ? q7_py_as_str(args->v.seq.items[1]) : "utf-8";
    if (!s || s->kind != Q7_PY_STR || !enc || args->v.seq.len > 3)
        return q7_up_err(u, Q7_ERR_FORMAT, "_codecs.encode takes (str, encoding)");
    if (strcmp(enc, "utf-8") == 0 || strcmp(enc, "utf8") == 0) {
        *out = q7_py_bytes(u->h, s->v.str.s, s->v.str.len);
        return *out ? Q7_OK : q7_up_wrap(u, Q7_ERR_OOM);
    }
    if (strcmp(enc, "latin1") != 0 && strcmp(enc, "latin-1") != 0 &&
        strcmp(enc, "iso-8859-1") != 0)
        return q7_up_err(u, Q7_ERR_UNSUPPORTED, "_codecs.encode to '%.40s' is not supported", enc);
    uint8_t * buf = malloc(s->v.str.len + 1);
    if (!buf)
        return q7_up_err(u, Q7_ERR_OOM, "out of memory");
    size_t n = 0;
    const uint8_t * p = (const uint8_t *)s->v.str.s;
    for (size_t i = 0; i < s->v.str.len;) {
        uint32_t cp;
        size_t k = q7_up_utf8_next(p + i, s->v.str.len - i, &cp);
        if (!k || cp > 0xff) {
            free(buf);
            return q7_up_err(u, Q7_ERR_FORMAT, "_codecs.encode: character beyond latin-1");
        }
        buf[n++] = (uint8_t)cp;
        i += k;
    }
    *out = q7_py_bytes(u->h, buf, n);
    free(buf);
    return *out ? Q7_OK : q7_up_wrap(u, Q7_ERR_OOM);
}

/* An inert instance recording the constructor and its arguments (numpy scalars, dtypes,
 * torch.device): nothing is computed from them here. */
static enum q7_status make_inert(struct q7_up * u, const struct q7_py * g, struct q7_py * args,
                                 struct q7_py ** out)
{
    struct q7_py * o = q7_py_object(u->h, g->v.global.module, g->v.global.name);
    if (!o)
        return q7_up_wrap(u, Q7_ERR_OOM);
    o->v.object.args = args;
    *out = o;
    return Q7_OK;
}

static int is_numpy_data(const struct q7_py * g)
{
    const char * m = g->v.global.module, * n = g->v.global.name;
    int multiarray = strcmp(m, "numpy.core.multiarray") == 0 ||
                     strcmp(m, "numpy._core.multiarray") == 0;
    return (multiarray && (strcmp(n, "scalar") == 0 || strcmp(n, "_reconstruct") == 0)) ||
           global_is(g, "numpy", "dtype") || global_is(g, "numpy", "ndarray");
}

/* Runs one allow-listed data constructor `fn(*args)` (q7's own implementation of it);
 * refuses every other callable. `nested` is set inside _rebuild_from_type_v2. */
static enum q7_status call_allowed(struct q7_up * u, const struct q7_py * fn, struct q7_py * args,
                                   int nested, struct q7_py ** res)
{
    *res = NULL;
    if (fn->kind != Q7_PY_GLOBAL)
        return q7_up_err(u, Q7_ERR_FORMAT, "REDUCE on something that is not a global");
    const char * m = fn->v.global.module, * n = fn->v.global.name;
    if (args->kind != Q7_PY_TUPLE)
        return q7_up_err(u, Q7_ERR_FORMAT, "REDUCE %s.%s: arguments are not a tuple", m, n);
    struct q7_py * const * a = args->v.seq.items;
    if (global_is(fn, "collections", "OrderedDict"))
        return make_dict(u, args, res);
    if (is_builtins(m) && (strcmp(n, "set") == 0 || strcmp(n, "frozenset") == 0))
        return make_set(u, args, res);
    if (global_is(fn, "torch._utils", "_rebuild_tensor_v2") ||
        global_is(fn, "torch._utils", "_rebuild_tensor"))
        return rebuild_tensor(u, args, res);
    if (global_is(fn, "torch._utils", "_rebuild_parameter") ||
        global_is(fn, "torch._utils", "_rebuild_parameter_with_state"))
        return rebuild_parameter(u, args, res);
    if (global_is(fn, "torch._tensor", "_rebuild_from_type_v2") && !nested) {
        /* (func, cls, args, state): what torch >= 1.12 writes for tensors with state; func
         * must itself be allow-listed, cls and state are not used */
        if (args->v.seq.len != 4 || a[2]->kind != Q7_PY_TUPLE)
            return q7_up_err(u, Q7_ERR_FORMAT, "_rebuild_from_type_v2 takes (func, type, args, "
                          "state)");
        return call_allowed(u, a[0], a[2], 1, res);
    }
    if (global_is(fn, "_codecs", "encode"))
        return codecs_encode(u, args, res);
    if (global_is(fn, "torch", "Size") && args->v.seq.len == 1 && is_tuple_or_list(a[0])) {
        struct q7_py * t = q7_py_new(u->h, Q7_PY_TUPLE); /* torch.Size is a tuple */
        if (!t)
            return q7_up_wrap(u, Q7_ERR_OOM);
        for (size_t i = 0; i < a[0]->v.seq.len; i++) {
            enum q7_status st = q7_up_seq_add(u, t, a[0]->v.seq.items[i]);
            if (st)
                return st;
        }
        *res = t;
        return Q7_OK;
    }
    if (is_numpy_data(fn) || global_is(fn, "torch", "device") ||
        global_is(fn, "torch.serialization", "_get_layout"))
        return make_inert(u, fn, args, res);
    if (global_is(fn, "copyreg", "_reconstructor") && args->v.seq.len == 3 &&
        a[0]->kind == Q7_PY_GLOBAL && a[1]->kind == Q7_PY_GLOBAL &&
        is_builtins(a[1]->v.global.module) && strcmp(a[1]->v.global.name, "object") == 0)
        return make_inert(u, a[0], NULL, res); /* object.__new__(cls), protocol 0/1 NEWOBJ */
    return q7_up_err(u, Q7_ERR_UNSUPPORTED, "pickle calls %s.%s, which q7 refuses to execute", m,
                     n);
}

enum q7_status q7_up_op_reduce(struct q7_up * u)
{
    struct q7_py * args, * fn, * res;
    enum q7_status st = q7_up_pop(u, &args);
    if (st == Q7_OK)
        st = q7_up_pop(u, &fn);
    if (st == Q7_OK)
        st = call_allowed(u, fn, args, 0, &res);
    if (st)
        return st;
    return q7_up_push(u, res);
}

enum q7_status q7_up_op_newobj(struct q7_up * u, int ex)
{
    struct q7_py * cls, * args, * kwargs = NULL, * res = NULL;
    enum q7_status st = ex ? q7_up_pop(u, &kwargs) : Q7_OK;
    if (st == Q7_OK)
        st = q7_up_pop(u, &args);
    if (st == Q7_OK)
        st = q7_up_pop(u, &cls);
    if (st)
        return st;
    if (cls->kind != Q7_PY_GLOBAL || args->kind != Q7_PY_TUPLE ||
        (kwargs && kwargs->kind != Q7_PY_DICT))
        return q7_up_err(u, Q7_ERR_FORMAT, "needs a class, an argument tuple%s",
                         ex ? " and a keyword dict" : "");
    if (global_is(cls, "collections", "OrderedDict"))
        st = make_dict(u, args, &res);
    else if (is_builtins(cls->v.global.module) && (strcmp(cls->v.global.name, "set") == 0 ||
                                                   strcmp(cls->v.global.name, "frozenset") == 0))
        st = make_set(u, args, &res);
    else
        st = make_inert(u, cls, args, &res); /* cls.__new__ is not run: no code */
    if (st)
        return st;
    return q7_up_push(u, res);
}

/* Copies the items of dict `src` into `dst`. */
static enum q7_status merge_dict(struct q7_up * u, struct q7_py * dst, const struct q7_py * src)
{
    for (size_t i = 0; i < src->v.dict.len; i++) {
        enum q7_status st = q7_up_dict_add(u, dst, src->v.dict.keys[i], src->v.dict.values[i]);
        if (st)
            return st;
    }
    return Q7_OK;
}

/* BUILD: obj.__dict__.update(state), or (state, slotstate) with both merged. Never calls a
 * __setstate__: for a state that is not a dict the raw state is kept on the object. */
enum q7_status q7_up_op_build(struct q7_up * u)
{
    struct q7_py * state, * obj;
    enum q7_status st = q7_up_pop(u, &state);
    if (st == Q7_OK)
        st = q7_up_peek(u, &obj);
    if (st)
        return st;
    if (obj->kind != Q7_PY_OBJECT) {
        /* tensors, parameters and dicts (OrderedDict) carry no state q7 needs */
        if (obj->kind == Q7_PY_TENSOR || obj->kind == Q7_PY_DICT || state->kind == Q7_PY_NONE)
            return Q7_OK;
        return q7_up_err(u, Q7_ERR_FORMAT, "BUILD on an object of kind %d", (int)obj->kind);
    }
    const struct q7_py * parts[2] = {state, NULL};
    if (state->kind == Q7_PY_TUPLE && state->v.seq.len == 2) {
        parts[0] = state->v.seq.items[0];
        parts[1] = state->v.seq.items[1];
    }
    int dicts = 1;
    for (int i = 0; i < 2; i++)
        if (parts[i] && parts[i]->kind != Q7_PY_DICT && parts[i]->kind != Q7_PY_NONE)
            dicts = 0;
    struct q7_py * cur = obj->v.object.state;
    if (!dicts || (cur && cur->kind != Q7_PY_DICT)) {
        obj->v.object.state = state; /* opaque state (a custom __setstate__) */
        return Q7_OK;
    }
    if (!cur) {
        cur = q7_py_new(u->h, Q7_PY_DICT);
        if (!cur)
            return q7_up_wrap(u, Q7_ERR_OOM);
        obj->v.object.state = cur;
    }
    for (int i = 0; i < 2; i++) {
        if (parts[i] && parts[i]->kind == Q7_PY_DICT && (st = merge_dict(u, cur, parts[i])))
            return st;
    }
    return Q7_OK;
}

/* BINPERSID ('storage', torch.<T>Storage, key, location, numel[, view_metadata]) */
enum q7_status q7_up_op_persid(struct q7_up * u)
{
    struct q7_py * pid;
    enum q7_status st = q7_up_pop(u, &pid);
    if (st)
        return st;
    const char * what = "('storage', <storage class>, key, location, numel)";
    if (pid->kind != Q7_PY_TUPLE || pid->v.seq.len < 5 || pid->v.seq.len > (u->legacy ? 6 : 5))
        return q7_up_err(u, Q7_ERR_FORMAT, "persistent id is not %s", what);
    struct q7_py * const * a = pid->v.seq.items;
    const char * tag = q7_py_as_str(a[0]), * key = q7_py_as_str(a[2]);
    int64_t numel;
    if (!tag || strcmp(tag, "storage") != 0 || a[1]->kind != Q7_PY_GLOBAL || !key ||
        !q7_py_as_int(a[4], &numel))
        return q7_up_err(u, Q7_ERR_FORMAT, "persistent id is not %s", what);
    if (pid->v.seq.len == 6 && a[5]->kind != Q7_PY_NONE)
        return q7_up_err(u, Q7_ERR_UNSUPPORTED, "storage '%s' is a view (legacy format): not "
                         "supported", key);
    enum q7_dtype dt;
    if (strcmp(a[1]->v.global.module, "torch") != 0 || storage_dtype(a[1]->v.global.name, &dt))
        return q7_up_err(u, Q7_ERR_UNSUPPORTED, "storage class %s.%s is not supported",
                         a[1]->v.global.module, a[1]->v.global.name);
    size_t bytes;
    if (numel < 0 || !q7_size_mul((size_t)numel, q7_dtype_size(dt), &bytes) ||
        bytes > (size_t)INT64_MAX)
        return q7_up_err(u, Q7_ERR_LIMIT, "storage '%s' of %" PRId64 " elements is absurd", key,
                         numel);
    const uint8_t * data = NULL;
    if (u->resolve) {
        data = u->resolve(u->user, key, bytes);
        if (!data)
            return q7_up_wrap(u, Q7_ERR_FORMAT);
    }
    struct q7_py * s = q7_py_storage_new(u->h, dt, key, numel, data);
    if (!s)
        return q7_up_wrap(u, Q7_ERR_OOM);
    if (u->n_storages == u->storages_cap) {
        size_t cap = u->storages_cap ? u->storages_cap * 2 : 64;
        struct q7_py ** arr = q7_pyheap_alloc(u->h, cap * sizeof *arr);
        if (!arr)
            return q7_up_wrap(u, Q7_ERR_OOM);
        if (u->n_storages)
            memcpy(arr, u->storages, u->n_storages * sizeof *arr);
        u->storages = arr;
        u->storages_cap = cap;
    }
    u->storages[u->n_storages++] = s;
    return q7_up_push(u, s);
}
