/* Inert Python objects: the heap, constructors, containers, lookups, scalar conversions,
 * repr. Tensor views and the state_dict walk are in models/pyobj_tensor.c.
 *
 * Memory: every object and every item array comes from the heap's arena. Small blocks are
 * carved out of 64 KiB slabs with 16-byte alignment (the arena itself aligns to 64 bytes,
 * which would triple the size of a checkpoint's ~500k small objects); item arrays grow by
 * doubling and the old array is simply left in the arena (at most 2x waste). */
#include "models/pyobj.h"
#include "models/pyobj_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYHEAP_SLAB_SIZE ((size_t)64 << 10)
#define PYHEAP_SMALL_MAX ((size_t)4 << 10) /* larger blocks go straight to the arena */
#define PYHEAP_ALIGN 16
#define PY_SEQ_MIN_CAP 4
#define PY_DICT_INDEX_MIN 8    /* a dict gets a hash index once it holds this many items */
#define PY_REPR_DEPTH 4
#define PY_REPR_ITEMS 8

struct q7_pyheap {
    struct q7_arena * arena;
    uint8_t * slab;     /* current slab */
    size_t slab_left;
    size_t n_objects;
    struct q7_py * none_obj;
    struct q7_py * bool_obj[2];
};

struct q7_pyheap * q7_pyheap_create(void)
{
    struct q7_pyheap * h = calloc(1, sizeof *h);
    if (!h) {
        q7_error_set(Q7_ERR_OOM, "pyheap: out of memory");
        return NULL;
    }
    h->arena = q7_arena_create((size_t)1 << 20);
    if (!h->arena) {
        free(h);
        return NULL;
    }
    return h;
}

void q7_pyheap_free(struct q7_pyheap * heap)
{
    if (!heap)
        return;
    q7_arena_free(heap->arena);
    free(heap);
}

struct q7_arena * q7_pyheap_arena(struct q7_pyheap * heap)
{
    return heap->arena;
}

size_t q7_pyheap_object_count(const struct q7_pyheap * heap)
{
    return heap->n_objects;
}

void * q7_pyheap_alloc(struct q7_pyheap * h, size_t size)
{
    size_t need;
    if (!q7_size_add(size, PYHEAP_ALIGN - 1, &need)) {
        q7_error_set(Q7_ERR_OOM, "pyheap: allocation of %zu bytes overflows", size);
        return NULL;
    }
    need &= ~(size_t)(PYHEAP_ALIGN - 1);
    if (need == 0)
        need = PYHEAP_ALIGN;
    if (need > PYHEAP_SMALL_MAX)
        return q7_arena_alloc(h->arena, need);
    if (h->slab_left < need) {
        uint8_t * s = q7_arena_alloc(h->arena, PYHEAP_SLAB_SIZE);
        if (!s)
            return NULL;
        h->slab = s;
        h->slab_left = PYHEAP_SLAB_SIZE;
    }
    void * p = h->slab;
    h->slab += need;
    h->slab_left -= need;
    return p; /* slabs come zeroed from the arena and are never reused */
}

static struct q7_py * py_alloc(struct q7_pyheap * h, enum q7_py_kind kind)
{
    struct q7_py * o = q7_pyheap_alloc(h, sizeof *o);
    if (!o)
        return NULL;
    o->kind = kind;
    h->n_objects++;
    return o;
}

/* ---- constructors ---------------------------------------------------------------------- */

struct q7_py * q7_py_none(struct q7_pyheap * h)
{
    if (!h->none_obj)
        h->none_obj = py_alloc(h, Q7_PY_NONE);
    return h->none_obj;
}

struct q7_py * q7_py_bool(struct q7_pyheap * h, int v)
{
    int b = v != 0;
    if (!h->bool_obj[b]) {
        struct q7_py * o = py_alloc(h, Q7_PY_BOOL);
        if (!o)
            return NULL;
        o->v.i = b;
        h->bool_obj[b] = o;
    }
    return h->bool_obj[b];
}

struct q7_py * q7_py_int(struct q7_pyheap * h, int64_t v)
{
    struct q7_py * o = py_alloc(h, Q7_PY_INT);
    if (o)
        o->v.i = v;
    return o;
}

struct q7_py * q7_py_float(struct q7_pyheap * h, double v)
{
    struct q7_py * o = py_alloc(h, Q7_PY_FLOAT);
    if (o)
        o->v.f = v;
    return o;
}

static struct q7_py * py_strlike(struct q7_pyheap * h, enum q7_py_kind kind, const void * s,
                                 size_t len)
{
    size_t n;
    if (!q7_size_add(len, 1, &n)) {
        q7_error_set(Q7_ERR_OOM, "pyheap: string of %zu bytes is too long", len);
        return NULL;
    }
    struct q7_py * o = py_alloc(h, kind);
    char * copy = o ? q7_pyheap_alloc(h, n) : NULL;
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    o->v.str.s = copy;
    o->v.str.len = len;
    return o;
}

struct q7_py * q7_py_str(struct q7_pyheap * h, const char * s, size_t len)
{
    return py_strlike(h, Q7_PY_STR, s, len);
}

struct q7_py * q7_py_bytes(struct q7_pyheap * h, const void * s, size_t len)
{
    return py_strlike(h, Q7_PY_BYTES, s, len);
}

struct q7_py * q7_py_new(struct q7_pyheap * h, enum q7_py_kind kind)
{
    if ((unsigned)kind >= Q7_PY_KIND_COUNT) {
        q7_error_set(Q7_ERR_ARG, "pyheap: bad object kind %d", (int)kind);
        return NULL;
    }
    if (kind == Q7_PY_NONE)
        return q7_py_none(h);
    return py_alloc(h, kind);
}

static const char * py_strdup(struct q7_pyheap * h, const char * s)
{
    size_t len = strlen(s);
    char * p = q7_pyheap_alloc(h, len + 1);
    if (p)
        memcpy(p, s, len + 1);
    return p;
}

struct q7_py * q7_py_global(struct q7_pyheap * h, const char * module, const char * name)
{
    struct q7_py * o = py_alloc(h, Q7_PY_GLOBAL);
    if (!o)
        return NULL;
    o->v.global.module = py_strdup(h, module);
    o->v.global.name = py_strdup(h, name);
    return o->v.global.module && o->v.global.name ? o : NULL;
}

struct q7_py * q7_py_object(struct q7_pyheap * h, const char * module, const char * name)
{
    struct q7_py * o = py_alloc(h, Q7_PY_OBJECT);
    if (!o)
        return NULL;
    o->v.object.module = py_strdup(h, module);
    o->v.object.name = py_strdup(h, name);
    return o->v.object.module && o->v.object.name ? o : NULL;
}

struct q7_py * q7_py_storage_new(struct q7_pyheap * h, enum q7_dtype dtype, const char * key,
                                 int64_t numel, const uint8_t * data)
{
    struct q7_py * o = py_alloc(h, Q7_PY_STORAGE);
    if (!o)
        return NULL;
    o->v.storage.dtype = dtype;
    o->v.storage.key = py_strdup(h, key ? key : "");
    o->v.storage.numel = numel;
    o->v.storage.data = data;
    return o->v.storage.key ? o : NULL;
}

struct q7_py * q7_py_tensor_new(struct q7_pyheap * h, enum q7_dtype dtype, int ndim,
                                const int64_t * shape, int with_data)
{
    if (ndim < 0 || ndim > Q7_MAX_DIMS) {
        q7_error_set(Q7_ERR_ARG, "tensor: %d dimensions (at most %d)", ndim, Q7_MAX_DIMS);
        return NULL;
    }
    if ((unsigned)dtype >= Q7_DTYPE_COUNT) {
        q7_error_set(Q7_ERR_ARG, "tensor: bad dtype %d", (int)dtype);
        return NULL;
    }
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            q7_error_set(Q7_ERR_ARG, "tensor: bad shape (dim %d = %" PRId64 ")", d, shape[d]);
            return NULL;
        }
        if (!q7_size_mul(numel, (size_t)shape[d], &numel)) {
            q7_error_set(Q7_ERR_LIMIT, "tensor: shape overflows (dim %d = %" PRId64 ")", d,
                         shape[d]);
            return NULL;
        }
    }
    size_t bytes;
    if (!q7_size_mul(numel, q7_dtype_size(dtype), &bytes) || numel > (size_t)INT64_MAX) {
        q7_error_set(Q7_ERR_LIMIT, "tensor: %zu elements are too many", numel);
        return NULL;
    }
    uint8_t * data = NULL; /* zeroed, 64-byte aligned */
    if (with_data && !(data = q7_arena_alloc(h->arena, bytes ? bytes : 1)))
        return NULL;
    struct q7_py * st = q7_py_storage_new(h, dtype, "", (int64_t)numel, data);
    struct q7_py * t = st ? py_alloc(h, Q7_PY_TENSOR) : NULL;
    if (!t)
        return NULL;
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

struct q7_py * q7_py_tensor_f32(struct q7_pyheap * h, int ndim, const int64_t * shape)
{
    return q7_py_tensor_new(h, Q7_DTYPE_F32, ndim, shape, 1);
}

float * q7_py_tensor_data_f32(struct q7_py * tensor)
{
    if (!tensor || tensor->kind != Q7_PY_TENSOR || !tensor->v.tensor.storage)
        return NULL;
    struct q7_py * st = tensor->v.tensor.storage;
    if (st->kind != Q7_PY_STORAGE || st->v.storage.dtype != Q7_DTYPE_F32 || !st->v.storage.data)
        return NULL;
    return (float *)(uintptr_t)st->v.storage.data + tensor->v.tensor.offset;
}

/* ---- hashing and key equality (dict keys) ----------------------------------------------- */

/* Dict keys compare by value for None, numbers, strings and bytes, and by identity for
 * everything else (tuples included: torch checkpoints key dicts by str and int). That keeps
 * hashing and comparing O(1) per key after a string's hash is cached, so a hostile pickle
 * cannot make dict building quadratic. */
static uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* A per-process seed (the address of a static under ASLR) so that collisions cannot be
 * precomputed; it changes the index layout only, never the dict order. */
static const char g_hash_seed_anchor;

static uint64_t hash_bytes(const char * s, size_t n)
{
    uint64_t x = hash_mix((uint64_t)(uintptr_t)&g_hash_seed_anchor ^ n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        x = hash_mix(x ^ w) + 0x9e3779b97f4a7c15ULL;
    }
    uint64_t tail = 0;
    memcpy(&tail, s + i, n - i);
    x = hash_mix(x ^ tail ^ ((uint64_t)(n - i) << 56));
    return x ? x : 1; /* 0 means "not computed" */
}

static uint64_t py_hash(const struct q7_py * k)
{
    switch (k->kind) {
    case Q7_PY_NONE:
        return 0x9e3779b97f4a7c15ULL;
    case Q7_PY_BOOL:
    case Q7_PY_INT:
        return hash_mix((uint64_t)k->v.i);
    case Q7_PY_FLOAT: {
        /* 1.0 == 1 == True in Python: integral floats hash like ints */
        double f = k->v.f;
        if (f == floor(f) && fabs(f) < 9.2e18)
            return hash_mix((uint64_t)(int64_t)f);
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        return hash_mix(bits ^ 0x5555);
    }
    case Q7_PY_STR:
    case Q7_PY_BYTES:
        if (!k->v.str.hash) /* cached on the object: logically const */
            ((struct q7_py *)(uintptr_t)k)->v.str.hash =
                hash_bytes(k->v.str.s, k->v.str.len) ^ (uint64_t)k->kind;
        return k->v.str.hash;
    default: /* identity */
        return hash_mix((uint64_t)(uintptr_t)k);
    }
}

static int py_is_number(const struct q7_py * o)
{
    return o->kind == Q7_PY_INT || o->kind == Q7_PY_BOOL || o->kind == Q7_PY_FLOAT;
}

int q7_py_key_eq(const struct q7_py * a, const struct q7_py * b)
{
    if (a == b)
        return 1;
    if (py_is_number(a) && py_is_number(b)) {
        if (a->kind != Q7_PY_FLOAT && b->kind != Q7_PY_FLOAT)
            return a->v.i == b->v.i;
        double x = a->kind == Q7_PY_FLOAT ? a->v.f : (double)a->v.i;
        double y = b->kind == Q7_PY_FLOAT ? b->v.f : (double)b->v.i;
        return x == y;
    }
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case Q7_PY_NONE:
        return 1;
    case Q7_PY_STR:
    case Q7_PY_BYTES:
        return a->v.str.len == b->v.str.len && py_hash(a) == py_hash(b) &&
               memcmp(a->v.str.s, b->v.str.s, a->v.str.len) == 0;
    default:
        return 0;
    }
}

/* ---- containers ---------------------------------------------------------------------- */

static enum q7_status grow_array(struct q7_pyheap * h, struct q7_py *** items, size_t len,
                                 size_t * cap)
{
    if (len < *cap)
        return Q7_OK;
    size_t ncap = *cap ? *cap : PY_SEQ_MIN_CAP, bytes;
    while (ncap <= len)
        if (!q7_size_mul(ncap, 2, &ncap))
            return q7_error_set(Q7_ERR_LIMIT, "container of %zu items is too large", len);
    if (!q7_size_mul(ncap, sizeof(struct q7_py *), &bytes))
        return q7_error_set(Q7_ERR_LIMIT, "container of %zu items is too large", len);
    struct q7_py ** n = q7_pyheap_alloc(h, bytes);
    if (!n)
        return Q7_ERR_OOM;
    if (len)
        memcpy(n, *items, len * sizeof *n);
    *items = n;
    *cap = ncap;
    return Q7_OK;
}

enum q7_status q7_py_append(struct q7_pyheap * h, struct q7_py * seq, struct q7_py * item)
{
    if (!seq || !item)
        return q7_error_set(Q7_ERR_ARG, "append: NULL object");
    if (seq->kind != Q7_PY_TUPLE && seq->kind != Q7_PY_LIST && seq->kind != Q7_PY_SET)
        return q7_error_set(Q7_ERR_ARG, "append: object is not a tuple, list or set");
    enum q7_status st = grow_array(h, &seq->v.seq.items, seq->v.seq.len, &seq->v.seq.cap);
    if (st)
        return st;
    seq->v.seq.items[seq->v.seq.len++] = item;
    return Q7_OK;
}

/* Slot of `key` in the dict's index, or of the empty slot where it would go. */
static size_t dict_index_slot(const struct q7_py * d, const struct q7_py * key, uint64_t hash)
{
    size_t mask = d->v.dict.index_cap - 1, i = (size_t)hash & mask;
    for (;;) {
        uint32_t e = d->v.dict.index[i];
        /* e > len only if someone copied the struct and grew the copy: skip such slots */
        if (e == 0 || (e <= d->v.dict.len && q7_py_key_eq(d->v.dict.keys[e - 1], key)))
            return i;
        i = (i + 1) & mask;
    }
}

static enum q7_status dict_reindex(struct q7_pyheap * h, struct q7_py * d, size_t cap)
{
    size_t bytes;
    if (d->v.dict.len >= UINT32_MAX || !q7_size_mul(cap, sizeof(uint32_t), &bytes))
        return q7_error_set(Q7_ERR_LIMIT, "dict of %zu items is too large", d->v.dict.len);
    uint32_t * idx = q7_pyheap_alloc(h, bytes);
    if (!idx)
        return Q7_ERR_OOM;
    d->v.dict.index = idx;
    d->v.dict.index_cap = cap;
    for (size_t k = 0; k < d->v.dict.len; k++) {
        const struct q7_py * key = d->v.dict.keys[k];
        size_t i = (size_t)py_hash(key) & (cap - 1);
        while (idx[i])
            i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)(k + 1);
    }
    return Q7_OK;
}

/* Position of `key` in the dict, or -1. */
static ptrdiff_t dict_find(const struct q7_py * d, const struct q7_py * key)
{
    if (d->v.dict.index_cap) {
        uint32_t e = d->v.dict.index[dict_index_slot(d, key, py_hash(key))];
        return e && e <= d->v.dict.len ? (ptrdiff_t)e - 1 : -1;
    }
    for (size_t i = 0; i < d->v.dict.len; i++)
        if (q7_py_key_eq(d->v.dict.keys[i], key))
            return (ptrdiff_t)i;
    return -1;
}

enum q7_status q7_py_dict_set(struct q7_pyheap * h, struct q7_py * dict, struct q7_py * key,
                              struct q7_py * value)
{
    if (!dict || !key || !value)
        return q7_error_set(Q7_ERR_ARG, "dict set: NULL object");
    if (dict->kind != Q7_PY_DICT)
        return q7_error_set(Q7_ERR_ARG, "dict set: object is not a dict");
    ptrdiff_t at = dict_find(dict, key);
    if (at >= 0) {
        dict->v.dict.values[at] = value; /* Python keeps the first key object and position */
        return Q7_OK;
    }
    size_t len = dict->v.dict.len, cap = dict->v.dict.cap;
    enum q7_status st = grow_array(h, &dict->v.dict.keys, len, &cap);
    if (st == Q7_OK && cap != dict->v.dict.cap) {
        size_t vcap = dict->v.dict.cap;
        st = grow_array(h, &dict->v.dict.values, len, &vcap);
    }
    if (st)
        return st;
    dict->v.dict.cap = cap;
    dict->v.dict.keys[len] = key;
    dict->v.dict.values[len] = value;
    dict->v.dict.len = len + 1;
    /* keep the index under half full; build it once the dict is no longer tiny */
    if (dict->v.dict.len >= PY_DICT_INDEX_MIN && dict->v.dict.len * 2 > dict->v.dict.index_cap) {
        size_t icap = 16;
        while (icap < dict->v.dict.len * 4)
            icap *= 2;
        return dict_reindex(h, dict, icap);
    }
    if (dict->v.dict.index_cap) {
        size_t slot = dict_index_slot(dict, key, py_hash(key));
        dict->v.dict.index[slot] = (uint32_t)dict->v.dict.len;
    }
    return Q7_OK;
}

enum q7_status q7_py_dict_set_str(struct q7_pyheap * h, struct q7_py * dict, const char * key,
                                  struct q7_py * value)
{
    struct q7_py * k = q7_py_str(h, key, strlen(key));
    if (!k)
        return Q7_ERR_OOM;
    return q7_py_dict_set(h, dict, k, value);
}

/* ---- lookups --------------------------------------------------------------------------- */

struct q7_py * q7_py_dict_get(const struct q7_py * dict, const char * key)
{
    if (!dict || dict->kind != Q7_PY_DICT || !key)
        return NULL;
    struct q7_py k = {.kind = Q7_PY_STR};
    k.v.str.s = key;
    k.v.str.len = strlen(key);
    ptrdiff_t at = dict_find(dict, &k);
    return at >= 0 ? dict->v.dict.values[at] : NULL;
}

struct q7_py * q7_py_getattr(const struct q7_py * obj, const char * name)
{
    if (!obj || obj->kind != Q7_PY_OBJECT || !obj->v.object.state)
        return NULL;
    const struct q7_py * st = obj->v.object.state;
    if (st->kind == Q7_PY_DICT)
        return q7_py_dict_get(st, name);
    /* a (state, slotstate) pair that was not merged (BUILD merges dicts, see pickle.c) */
    if (st->kind == Q7_PY_TUPLE && st->v.seq.len == 2) {
        struct q7_py * v = q7_py_dict_get(st->v.seq.items[0], name);
        return v ? v : q7_py_dict_get(st->v.seq.items[1], name);
    }
    return NULL;
}

struct q7_py * q7_py_module_child(const struct q7_py * module, const char * name)
{
    return q7_py_dict_get(q7_py_getattr(module, "_modules"), name);
}

struct q7_py * q7_py_module_param(const struct q7_py * module, const char * name)
{
    return q7_py_dict_get(q7_py_getattr(module, "_parameters"), name);
}

struct q7_py * q7_py_module_buffer(const struct q7_py * module, const char * name)
{
    return q7_py_dict_get(q7_py_getattr(module, "_buffers"), name);
}

int q7_py_is_class(const struct q7_py * o, const char * name)
{
    return o && o->kind == Q7_PY_OBJECT && name && o->v.object.name &&
           strcmp(o->v.object.name, name) == 0;
}

/* ---- scalar conversions ---------------------------------------------------------------- */

int q7_py_as_int(const struct q7_py * o, int64_t * out)
{
    if (!o || (o->kind != Q7_PY_INT && o->kind != Q7_PY_BOOL))
        return 0;
    *out = o->v.i;
    return 1;
}

int q7_py_as_double(const struct q7_py * o, double * out)
{
    if (!o)
        return 0;
    if (o->kind == Q7_PY_FLOAT)
        *out = o->v.f;
    else if (o->kind == Q7_PY_INT || o->kind == Q7_PY_BOOL)
        *out = (double)o->v.i;
    else
        return 0;
    return 1;
}

/* Returns how many ints were written: 1 for a plain int, the length for a tuple/list of ints
 * of at most `n` items, 0 otherwise (not ints, or more items than `n`). */
int q7_py_as_ints(const struct q7_py * o, int64_t * out, int n)
{
    if (!o || n <= 0)
        return 0;
    if (o->kind == Q7_PY_INT || o->kind == Q7_PY_BOOL) {
        out[0] = o->v.i;
        return 1;
    }
    if (o->kind != Q7_PY_TUPLE && o->kind != Q7_PY_LIST)
        return 0;
    if (o->v.seq.len > (size_t)n)
        return 0;
    for (size_t i = 0; i < o->v.seq.len; i++)
        if (!q7_py_as_int(o->v.seq.items[i], &out[i]))
            return 0;
    return (int)o->v.seq.len;
}

const char * q7_py_as_str(const struct q7_py * o)
{
    return o && o->kind == Q7_PY_STR ? o->v.str.s : NULL;
}

/* ---- repr ------------------------------------------------------------------------------ */

struct repr_buf {
    char * p;
    size_t left; /* bytes left including the NUL */
};

static void repr_put(struct repr_buf * b, const char * fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void repr_put(struct repr_buf * b, const char * fmt, ...)
{
    if (b->left <= 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p, b->left, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t w = (size_t)n < b->left - 1 ? (size_t)n : b->left - 1;
    b->p += w;
    b->left -= w;
}

static void repr_str(struct repr_buf * b, const struct q7_py * o)
{
    const size_t max_chars = 48;
    repr_put(b, "%s'", o->kind == Q7_PY_BYTES ? "b" : "");
    for (size_t i = 0; i < o->v.str.len && i < max_chars; i++) {
        unsigned char c = (unsigned char)o->v.str.s[i];
        if (c == '\'' || c == '\\')
            repr_put(b, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            repr_put(b, "%c", c);
        else if (o->kind == Q7_PY_STR && c >= 0x80)
            repr_put(b, "%c", c); /* UTF-8 passes through */
        else
            repr_put(b, "\\x%02x", c);
    }
    repr_put(b, "%s'", o->v.str.len > max_chars ? "..." : "");
}

static void repr_rec(struct repr_buf * b, const struct q7_py * o, int depth)
{
    if (!o) {
        repr_put(b, "NULL");
        return;
    }
    if (b->left <= 1)
        return;
    switch (o->kind) {
    case Q7_PY_NONE:
        repr_put(b, "None");
        return;
    case Q7_PY_BOOL:
        repr_put(b, "%s", o->v.i ? "True" : "False");
        return;
    case Q7_PY_INT:
        repr_put(b, "%" PRId64, o->v.i);
        return;
    case Q7_PY_FLOAT:
        repr_put(b, "%.17g", o->v.f);
        return;
    case Q7_PY_STR:
    case Q7_PY_BYTES:
        repr_str(b, o);
        return;
    case Q7_PY_GLOBAL:
        repr_put(b, "<global %s.%s>", o->v.global.module, o->v.global.name);
        return;
    case Q7_PY_OBJECT:
        repr_put(b, "<%s.%s object>", o->v.object.module, o->v.object.name);
        return;
    case Q7_PY_STORAGE:
        repr_put(b, "<storage %s key='%s' numel=%" PRId64 ">", q7_dtype_name(o->v.storage.dtype),
                 o->v.storage.key, o->v.storage.numel);
        return;
    case Q7_PY_TENSOR: {
        const struct q7_py * st = o->v.tensor.storage;
        repr_put(b, "%s(%s, [", o->v.tensor.is_parameter ? "Parameter" : "tensor",
                 st && st->kind == Q7_PY_STORAGE ? q7_dtype_name(st->v.storage.dtype) : "?");
        for (int d = 0; d < o->v.tensor.ndim && d < Q7_MAX_DIMS; d++)
            repr_put(b, "%s%" PRId64, d ? ", " : "", o->v.tensor.shape[d]);
        repr_put(b, "])");
        return;
    }
    case Q7_PY_TUPLE:
    case Q7_PY_LIST:
    case Q7_PY_SET: {
        const char * open = o->kind == Q7_PY_TUPLE ? "(" : o->kind == Q7_PY_LIST ? "[" : "{";
        const char * close = o->kind == Q7_PY_TUPLE ? ")" : o->kind == Q7_PY_LIST ? "]" : "}";
        if (o->kind == Q7_PY_SET && o->v.seq.len == 0) {
            repr_put(b, "set()");
            return;
        }
        repr_put(b, "%s", open);
        if (depth >= PY_REPR_DEPTH && o->v.seq.len) {
            repr_put(b, "...%s", close);
            return;
        }
        for (size_t i = 0; i < o->v.seq.len; i++) {
            if (i == PY_REPR_ITEMS) {
                repr_put(b, ", ... %zu more", o->v.seq.len - i);
                break;
            }
            if (i)
                repr_put(b, ", ");
            repr_rec(b, o->v.seq.items[i], depth + 1);
        }
        repr_put(b, "%s%s", o->kind == Q7_PY_TUPLE && o->v.seq.len == 1 ? "," : "", close);
        return;
    }
    case Q7_PY_DICT:
        repr_put(b, "{");
        if (depth >= PY_REPR_DEPTH && o->v.dict.len) {
            repr_put(b, "...}");
            return;
        }
        for (size_t i = 0; i < o->v.dict.len; i++) {
            if (i == PY_REPR_ITEMS) {
                repr_put(b, ", ... %zu more", o->v.dict.len - i);
                break;
            }
            if (i)
                repr_put(b, ", ");
            repr_rec(b, o->v.dict.keys[i], depth + 1);
            repr_put(b, ": ");
            repr_rec(b, o->v.dict.values[i], depth + 1);
        }
        repr_put(b, "}");
        return;
    default:
        repr_put(b, "<kind %d>", (int)o->kind);
        return;
    }
}

void q7_py_repr(const struct q7_py * o, char * buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    struct repr_buf b = {buf, size};
    repr_rec(&b, o, 0);
    if (b.left <= 1 && size > 4)
        memcpy(buf + size - 4, "...", 4); /* mark the cut */
}
