/* Inert Python objects: what the safe unpickler produces and what the yaml model builder
 * constructs. Nothing here ever runs code: a class is a (module, name) pair, an instance is
 * that pair plus the arguments and the state it was built with.
 *
 * All objects live in one arena (struct q7_pyheap) and are freed with it; objects may be
 * shared and may form cycles (pickle memo), so walkers must bound their depth. */
#ifndef Q7_PYOBJ_H
#define Q7_PYOBJ_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

enum q7_py_kind {
    Q7_PY_NONE = 0,
    Q7_PY_BOOL,
    Q7_PY_INT,
    Q7_PY_FLOAT,
    Q7_PY_STR,
    Q7_PY_BYTES,
    Q7_PY_TUPLE,
    Q7_PY_LIST,
    Q7_PY_DICT,   /* dict and collections.OrderedDict (insertion order kept) */
    Q7_PY_SET,    /* set and frozenset */
    Q7_PY_GLOBAL, /* a class or function named by GLOBAL: never resolved */
    Q7_PY_OBJECT, /* an instance: class + args (NEWOBJ/REDUCE) + state (BUILD) */
    Q7_PY_STORAGE,
    Q7_PY_TENSOR,
    Q7_PY_KIND_COUNT
};

struct q7_py;

struct q7_py_storage {
    enum q7_dtype dtype;
    const char * key;      /* archive key ("0", "12") */
    int64_t numel;
    const uint8_t * data;  /* numel * dtype size bytes, little-endian; NULL until resolved */
};

struct q7_py_tensor {
    struct q7_py * storage; /* a Q7_PY_STORAGE */
    int64_t offset;         /* in elements */
    int ndim;
    int64_t shape[Q7_MAX_DIMS];
    int64_t stride[Q7_MAX_DIMS];
    int requires_grad;
    int is_parameter;       /* built by torch._utils._rebuild_parameter */
};

struct q7_py {
    enum q7_py_kind kind;
    union {
        int64_t i; /* BOOL, INT */
        double f;  /* FLOAT */
        struct {
            const char * s; /* NUL-terminated copy (STR is UTF-8) */
            size_t len;
            uint64_t hash;  /* private: cached dict hash, 0 until computed */
        } str;      /* STR, BYTES */
        struct {
            struct q7_py ** items;
            size_t len, cap;
        } seq;      /* TUPLE, LIST, SET */
        struct {
            struct q7_py ** keys;
            struct q7_py ** values;
            size_t len, cap;
            uint32_t * index;  /* private hash index (slot -> item + 1) once the dict grows:
                                * add and replace items only with q7_py_dict_set */
            size_t index_cap;  /* slots in index (a power of two), 0 while none */
        } dict;     /* DICT */
        struct {
            const char * module;
            const char * name;
        } global;   /* GLOBAL */
        struct {
            const char * module; /* class module ("models.common") */
            const char * name;   /* class name ("Conv") */
            struct q7_py * args;  /* NEWOBJ/REDUCE arguments (a TUPLE) or NULL */
            struct q7_py * state; /* BUILD state (usually a DICT) or NULL */
        } object;   /* OBJECT */
        struct q7_py_storage storage;
        struct q7_py_tensor tensor;
    } v;
};

/* Owns every object made through it. */
struct q7_pyheap;
struct q7_pyheap * q7_pyheap_create(void);
void q7_pyheap_free(struct q7_pyheap * heap);
struct q7_arena * q7_pyheap_arena(struct q7_pyheap * heap);

/* Constructors: NULL on OOM (message set). Strings are copied. */
struct q7_py * q7_py_none(struct q7_pyheap * h);
struct q7_py * q7_py_bool(struct q7_pyheap * h, int v);
struct q7_py * q7_py_int(struct q7_pyheap * h, int64_t v);
struct q7_py * q7_py_float(struct q7_pyheap * h, double v);
struct q7_py * q7_py_str(struct q7_pyheap * h, const char * s, size_t len);
struct q7_py * q7_py_bytes(struct q7_pyheap * h, const void * s, size_t len);
struct q7_py * q7_py_new(struct q7_pyheap * h, enum q7_py_kind kind); /* empty TUPLE/LIST/DICT/SET */
struct q7_py * q7_py_global(struct q7_pyheap * h, const char * module, const char * name);
struct q7_py * q7_py_object(struct q7_pyheap * h, const char * module, const char * name);
/* A contiguous tensor over its own new storage of `dtype`: with `with_data`, zeroed memory
 * from the heap's arena; without, an unresolved storage (shape only, as a yaml config gives).
 * NULL with the message set on a bad shape or OOM. */
struct q7_py * q7_py_tensor_new(struct q7_pyheap * h, enum q7_dtype dtype, int ndim,
                                const int64_t * shape, int with_data);
/* q7_py_tensor_new(h, Q7_DTYPE_F32, ndim, shape, 1); fill via q7_py_tensor_data_f32. */
struct q7_py * q7_py_tensor_f32(struct q7_pyheap * h, int ndim, const int64_t * shape);
float * q7_py_tensor_data_f32(struct q7_py * tensor);

/* Appends to a TUPLE/LIST/SET; sets (replaces) a DICT key. Q7_ERR_OOM / Q7_ERR_LIMIT.
 * Dict keys compare by value for None, bool/int/float, str and bytes, by identity otherwise. */
enum q7_status q7_py_append(struct q7_pyheap * h, struct q7_py * seq, struct q7_py * item);
enum q7_status q7_py_dict_set(struct q7_pyheap * h, struct q7_py * dict, struct q7_py * key,
                              struct q7_py * value);
enum q7_status q7_py_dict_set_str(struct q7_pyheap * h, struct q7_py * dict, const char * key,
                                  struct q7_py * value);

/* Lookups: NULL when absent or when `o` is not of the right kind. */
struct q7_py * q7_py_dict_get(const struct q7_py * dict, const char * key);
/* An attribute of an OBJECT: looked up in its BUILD state dict. */
struct q7_py * q7_py_getattr(const struct q7_py * obj, const char * name);
/* For torch modules: obj._modules[name], obj._parameters[name], obj._buffers[name]. */
struct q7_py * q7_py_module_child(const struct q7_py * module, const char * name);
struct q7_py * q7_py_module_param(const struct q7_py * module, const char * name);
struct q7_py * q7_py_module_buffer(const struct q7_py * module, const char * name);
/* 1 when `o` is an OBJECT of class `name` (the module part is not compared). */
int q7_py_is_class(const struct q7_py * o, const char * name);

/* Scalar conversions: 0 when `o` is not a number of that kind, else 1 and *out. INT converts
 * to double; BOOL to int. */
int q7_py_as_int(const struct q7_py * o, int64_t * out);
int q7_py_as_double(const struct q7_py * o, double * out);
/* An int or a tuple/list of ints (kernel_size=3 or (3, 3)): fills up to `n`; returns count. */
int q7_py_as_ints(const struct q7_py * o, int64_t * out, int n);
const char * q7_py_as_str(const struct q7_py * o); /* STR only */

/* Number of elements of a TENSOR, and its values as FP32 (any stored dtype, any strides,
 * widened or narrowed as PyTorch's .float() would). Q7_ERR_FORMAT when the view lies
 * outside its storage or the storage is not resolved. */
int64_t q7_py_tensor_numel(const struct q7_py * tensor);
enum q7_status q7_py_tensor_to_f32(const struct q7_py * tensor, float * out, int64_t n);
/* Sum and sum of |x| in float64 over the stored values. */
enum q7_status q7_py_tensor_sums(const struct q7_py * tensor, double * sum, double * abs_sum);

/* Writes a short repr (bounded depth and length) for messages and `q7 info`. */
void q7_py_repr(const struct q7_py * o, char * buf, size_t size);

/* Visits the tensors of a torch module tree in exactly PyTorch's state_dict order and naming:
 * for each module its _parameters (None skipped), then its _buffers not named in
 * _non_persistent_buffers_set (None skipped), then its _modules in order, names joined with
 * '.' after `prefix` (NULL or "" for none; pass "model." to get "model.0.conv.weight" from a
 * child). `fn` is called with is_buffer 0/1; a nonzero return stops the walk and is returned.
 * Depth is bounded (a cyclic module tree gives Q7_ERR_LIMIT, never a hang); a non-tensor
 * value in _parameters/_buffers is Q7_ERR_FORMAT. */
typedef enum q7_status (*q7_py_tensor_visit_fn)(void * user, const char * name,
                                                const struct q7_py * tensor, int is_buffer);
enum q7_status q7_py_state_dict_walk(const struct q7_py * module, const char * prefix,
                                     q7_py_tensor_visit_fn fn, void * user);

#ifdef __cplusplus
}
#endif
#endif
