/* Tests of the safe checkpoint reader: inert objects (models/pyobj.c), the zip container,
 * the pickle subset and checkpoint loading.
 *
 * Golden: both fixture checkpoints load, their state_dict walk matches ref/weights.json
 * (names, order-independent set, shapes, dtypes, sums); every family/ checkpoint loads.
 * Hostile: crafted zips and pickles built here in memory (truncation, CRC, code execution
 * attempts, cycles, absurd sizes, deep nesting, bad opcodes) must fail cleanly with a
 * message naming the problem. */
#include "graph/base.h"
#include "models/ckpt.h"
#include "models/ckpt_impl.h"
#include "models/pyobj.h"
#include "tests/test_common.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- byte buffers, pickle and zip builders ------------------------------------------------ */

struct buf {
    uint8_t * p;
    size_t n, cap;
};

static void b_bytes(struct buf * b, const void * s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t * p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "test_ckpt: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void b_u8(struct buf * b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    b_bytes(b, &c, 1);
}

static void b_le(struct buf * b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void b_str(struct buf * b, const char * s)
{
    b_bytes(b, s, strlen(s));
}

/* A string literal that may hold NUL bytes. */
#define B_LIT(b, lit) b_bytes((b), (lit), sizeof(lit) - 1)

static void b_free(struct buf * b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void pk_str(struct buf * b, const char * s)
{
    b_u8(b, 'X');
    b_le(b, strlen(s), 4);
    b_str(b, s);
}

static void pk_int(struct buf * b, int64_t v)
{
    if (v >= 0 && v < 256) {
        b_u8(b, 'K');
        b_u8(b, (unsigned)v);
    } else {
        b_u8(b, 'J');
        b_le(b, (uint64_t)v, 4);
    }
}

static void pk_global(struct buf * b, const char * mod, const char * name)
{
    b_u8(b, 'c');
    b_str(b, mod);
    b_u8(b, '\n');
    b_str(b, name);
    b_u8(b, '\n');
}

static void pk_ints(struct buf * b, int n, const int64_t * v)
{
    b_u8(b, '(');
    for (int i = 0; i < n; i++)
        pk_int(b, v[i]);
    b_u8(b, 't');
}

/* _rebuild_tensor_v2(storage('storage', torch.<cls>, key, 'cpu', numel), offset, size,
 * stride, False, OrderedDict()), wrapped in _rebuild_parameter when is_param. */
static void pk_tensor(struct buf * b, const char * cls, const char * key, int64_t numel,
                      int64_t offset, int ndim, const int64_t * shape, const int64_t * stride,
                      int is_param)
{
    if (is_param)
        pk_global(b, "torch._utils", "_rebuild_parameter");
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    b_u8(b, '(');
    b_u8(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", cls);
    pk_str(b, key);
    pk_str(b, "cpu");
    b_u8(b, 0x8a); /* LONG1: exercises it */
    b_u8(b, 8);
    b_le(b, (uint64_t)numel, 8);
    b_u8(b, 't');
    b_u8(b, 'Q');
    pk_int(b, offset);
    pk_ints(b, ndim, shape);
    pk_ints(b, ndim, stride);
    b_u8(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    b_u8(b, ')');
    b_u8(b, 'R');
    b_u8(b, 't');
    b_u8(b, 'R');
    if (is_param) {
        b_u8(b, 0x88);
        pk_global(b, "collections", "OrderedDict");
        b_u8(b, ')');
        b_u8(b, 'R');
        b_u8(b, 0x87);
        b_u8(b, 'R');
    }
}

struct zent {
    const char * name;
    const void * data;
    size_t size;
    int method;
};

/* A zip as torch writes it (stored entries); zip64 adds the zip64 end records and moves every
 * size and offset into zip64 extra fields. */
static void build_zip(struct buf * z, const struct zent * e, int n, int zip64)
{
    uint64_t * offs = calloc((size_t)n, sizeof *offs);
    for (int i = 0; i < n; i++) {
        offs[i] = z->n;
        size_t nl = strlen(e[i].name);
        b_le(z, 0x04034b50, 4);
        b_le(z, 20, 2);
        b_le(z, 0, 2);
        b_le(z, (uint64_t)e[i].method, 2);
        b_le(z, 0, 4);                              /* time, date */
        b_le(z, 0, 4);                              /* crc (bit 3 style: in central only) */
        b_le(z, 0, 8);                              /* sizes */
        b_le(z, nl, 2);
        b_le(z, 0, 2);
        b_str(z, e[i].name);
        b_bytes(z, e[i].data, e[i].size);
    }
    uint64_t cd = z->n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        uint32_t crc = q7_zip_crc32(0, e[i].data, e[i].size);
        b_le(z, 0x02014b50, 4);
        b_le(z, 45, 2);
        b_le(z, 45, 2);
        b_le(z, 0x0008, 2);
        b_le(z, (uint64_t)e[i].method, 2);
        b_le(z, 0, 4);
        b_le(z, crc, 4);
        b_le(z, zip64 ? 0xffffffffu : e[i].size, 4);
        b_le(z, zip64 ? 0xffffffffu : e[i].size, 4);
        b_le(z, nl, 2);
        b_le(z, zip64 ? 28 : 0, 2);
        b_le(z, 0, 2);
        b_le(z, 0, 2);
        b_le(z, 0, 2);
        b_le(z, 0, 4);
        b_le(z, zip64 ? 0xffffffffu : offs[i], 4);
        b_str(z, e[i].name);
        if (zip64) {
            b_le(z, 1, 2);
            b_le(z, 24, 2);
            b_le(z, e[i].size, 8);
            b_le(z, e[i].size, 8);
            b_le(z, offs[i], 8);
        }
    }
    uint64_t cd_size = z->n - cd;
    if (zip64) {
        uint64_t rec = z->n;
        b_le(z, 0x06064b50, 4);
        b_le(z, 44, 8);
        b_le(z, 45, 2);
        b_le(z, 45, 2);
        b_le(z, 0, 4);
        b_le(z, 0, 4);
        b_le(z, (uint64_t)n, 8);
        b_le(z, (uint64_t)n, 8);
        b_le(z, cd_size, 8);
        b_le(z, cd, 8);
        b_le(z, 0x07064b50, 4);
        b_le(z, 0, 4);
        b_le(z, rec, 8);
        b_le(z, 1, 4);
    }
    b_le(z, 0x06054b50, 4);
    b_le(z, 0, 2);
    b_le(z, 0, 2);
    b_le(z, zip64 ? 0xffff : (uint64_t)n, 2);
    b_le(z, zip64 ? 0xffff : (uint64_t)n, 2);
    b_le(z, zip64 ? 0xffffffffu : cd_size, 4);
    b_le(z, zip64 ? 0xffffffffu : cd, 4);
    b_le(z, 0, 2);
    free(offs);
}

static char g_tmp[64];

static const char * write_tmp(const struct buf * b)
{
    strcpy(g_tmp, "/tmp/q7_test_ckpt_XXXXXX");
    int fd = mkstemp(g_tmp);
    if (fd < 0 || write(fd, b->p, b->n) != (ssize_t)b->n) {
        fprintf(stderr, "test_ckpt: cannot write a temporary file\n");
        exit(1);
    }
    close(fd);
    return g_tmp;
}

/* Loads `b` as a checkpoint file (written to a temporary file); returns the status. */
static enum q7_status load_bytes(const struct buf * b, struct q7_ckpt ** out)
{
    const char * path = write_tmp(b);
    enum q7_status st = q7_ckpt_load(path, NULL, out);
    remove(path);
    return st;
}

static int msg_has(const char * s)
{
    return strstr(q7_error_message(), s) != NULL;
}

/* Expects status != OK and a message containing `what`. */
#define CHECK_FAILS(expr, what)                                                                   \
    do {                                                                                          \
        q7_error_clear();                                                                         \
        int st__ = (int)(expr);                                                                   \
        CHECKF(st__ != 0 && msg_has(what), "%s: status %d, message '%s' (wanted '%s')", #expr,    \
               st__, q7_error_message(), what);                                                   \
    } while (0)

static enum q7_status pickle_bytes(const struct buf * b, struct q7_pyheap * h, struct q7_py ** out)
{
    return q7_pickle_load(b->p, b->n, NULL, h, NULL, NULL, out);
}

/* ---- pyobj ---------------------------------------------------------------------------------- */

static enum q7_status collect_names(void * user, const char * name, const struct q7_py * t,
                                    int is_buffer)
{
    struct buf * b = user;
    (void)t;
    b_str(b, name);
    b_str(b, is_buffer ? "(b) " : " ");
    return Q7_OK;
}

/* A module object with _parameters, _buffers, _modules dicts (returned through the pointers). */
static struct q7_py * make_module(struct q7_pyheap * h, const char * cls, struct q7_py ** params,
                                  struct q7_py ** buffers, struct q7_py ** mods)
{
    struct q7_py * m = q7_py_object(h, "torch.nn", cls);
    m->v.object.state = q7_py_new(h, Q7_PY_DICT);
    *params = q7_py_new(h, Q7_PY_DICT);
    *buffers = q7_py_new(h, Q7_PY_DICT);
    *mods = q7_py_new(h, Q7_PY_DICT);
    q7_py_dict_set_str(h, m->v.object.state, "_parameters", *params);
    q7_py_dict_set_str(h, m->v.object.state, "_buffers", *buffers);
    q7_py_dict_set_str(h, m->v.object.state, "_modules", *mods);
    return m;
}

static void test_pyobj(void)
{
    struct q7_pyheap * h = q7_pyheap_create();
    CHECK(h != NULL);
    struct q7_py * d = q7_py_new(h, Q7_PY_DICT);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_OK(q7_py_dict_set_str(h, d, key, q7_py_int(h, i)));
    }
    CHECK_OK(q7_py_dict_set_str(h, d, "k7", q7_py_int(h, -7))); /* replace keeps position */
    CHECK(d->v.dict.len == 1000);
    int64_t v = 0;
    CHECK(q7_py_as_int(q7_py_dict_get(d, "k7"), &v) && v == -7);
    CHECK(q7_py_as_int(q7_py_dict_get(d, "k999"), &v) && v == 999);
    CHECK(q7_py_dict_get(d, "nope") == NULL);
    CHECK(q7_py_as_str(d->v.dict.keys[7]) && strcmp(q7_py_as_str(d->v.dict.keys[7]), "k7") == 0);
    /* int keys: 1 == 1.0 == True */
    struct q7_py * di = q7_py_new(h, Q7_PY_DICT);
    CHECK_OK(q7_py_dict_set(h, di, q7_py_int(h, 1), q7_py_str(h, "a", 1)));
    CHECK_OK(q7_py_dict_set(h, di, q7_py_float(h, 1.0), q7_py_str(h, "b", 1)));
    CHECK(di->v.dict.len == 1);

    struct q7_py * t = q7_py_new(h, Q7_PY_TUPLE);
    q7_py_append(h, t, q7_py_int(h, 3));
    q7_py_append(h, t, q7_py_int(h, 5));
    int64_t ks[4];
    CHECK(q7_py_as_ints(t, ks, 4) == 2 && ks[0] == 3 && ks[1] == 5);
    CHECK(q7_py_as_ints(q7_py_int(h, 9), ks, 4) == 1 && ks[0] == 9);
    CHECK(q7_py_as_ints(t, ks, 1) == 0);
    double f;
    CHECK(q7_py_as_double(q7_py_int(h, 2), &f) && f == 2.0);
    CHECK(!q7_py_as_double(q7_py_str(h, "x", 1), &f));

    /* tensors: F32 constructor, strided views of every dtype */
    int64_t shape[2] = {2, 3};
    struct q7_py * tf = q7_py_tensor_f32(h, 2, shape);
    float * data = q7_py_tensor_data_f32(tf);
    CHECK(data != NULL && q7_py_tensor_numel(tf) == 6);
    for (int i = 0; i < 6; i++)
        data[i] = (float)i - 2.5f;
    float out[6];
    CHECK_OK(q7_py_tensor_to_f32(tf, out, 6));
    CHECK(out[5] == 2.5f);
    /* transpose view: shape (3, 2), stride (1, 3) */
    tf->v.tensor.shape[0] = 3;
    tf->v.tensor.shape[1] = 2;
    tf->v.tensor.stride[0] = 1;
    tf->v.tensor.stride[1] = 3;
    CHECK_OK(q7_py_tensor_to_f32(tf, out, 6));
    CHECK(out[0] == -2.5f && out[1] == 0.5f && out[2] == -1.5f && out[5] == 2.5f);
    double s, as;
    CHECK_OK(q7_py_tensor_sums(tf, &s, &as));
    CHECK(s == 0.0 && as == 2.5 + 1.5 + 0.5 + 0.5 + 1.5 + 2.5);
    tf->v.tensor.offset = 1; /* now reaches element 6 of 6: outside */
    CHECK_FAILS(q7_py_tensor_to_f32(tf, out, 6), "reaches element 6");
    tf->v.tensor.offset = 0;
    CHECK_FAILS(q7_py_tensor_to_f32(tf, out, 5), "expects");

    static const struct {
        enum q7_dtype dt;
        uint8_t bytes[16];
        float want[2];
    } cases[] = {
        {Q7_DTYPE_F16, {0x00, 0x3c, 0x00, 0xc0}, {1.0f, -2.0f}},
        {Q7_DTYPE_BF16, {0x80, 0x3f, 0x40, 0xc0}, {1.0f, -3.0f}},
        {Q7_DTYPE_F64, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0x10, 0xc0}, {1.0f, -4.0f}},
        {Q7_DTYPE_I64, {5, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
         {5.0f, -2.0f}},
        {Q7_DTYPE_I32, {7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, {7.0f, -1.0f}},
        {Q7_DTYPE_I16, {0x00, 0x01, 0xff, 0xff}, {256.0f, -1.0f}},
        {Q7_DTYPE_I8, {0x7f, 0x80}, {127.0f, -128.0f}},
        {Q7_DTYPE_U8, {0x7f, 0x80}, {127.0f, 128.0f}},
        {Q7_DTYPE_BOOL, {0, 3}, {0.0f, 1.0f}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct q7_py * st = q7_py_new(h, Q7_PY_STORAGE);
        st->v.storage.dtype = cases[c].dt;
        st->v.storage.key = "x";
        st->v.storage.numel = 2;
        st->v.storage.data = cases[c].bytes;
        struct q7_py * tt = q7_py_new(h, Q7_PY_TENSOR);
        tt->v.tensor.storage = st;
        tt->v.tensor.ndim = 1;
        tt->v.tensor.shape[0] = 2;
        tt->v.tensor.stride[0] = 1;
        float o2[2];
        CHECK_OK(q7_py_tensor_to_f32(tt, o2, 2));
        CHECKF(o2[0] == cases[c].want[0] && o2[1] == cases[c].want[1], "%s: %g %g",
               q7_dtype_name(cases[c].dt), o2[0], o2[1]);
        CHECK_OK(q7_py_tensor_sums(tt, &s, &as));
        CHECK(s == (double)cases[c].want[0] + cases[c].want[1]);
        /* a reversed view through stride 0 and offset 1: element 1 twice */
        tt->v.tensor.offset = 1;
        tt->v.tensor.stride[0] = 0;
        CHECK_OK(q7_py_tensor_to_f32(tt, o2, 2));
        CHECK(o2[0] == cases[c].want[1] && o2[1] == cases[c].want[1]);
    }

    /* the state_dict walk: order, None, non-persistent buffers, nested names, prefix */
    struct q7_py * p, * bfs, * mods, * p2, * b2, * m2;
    struct q7_py * root = make_module(h, "Model", &p, &bfs, &mods);
    struct q7_py * child = make_module(h, "Conv2d", &p2, &b2, &m2);
    int64_t one = 1;
    q7_py_dict_set_str(h, p, "w", q7_py_tensor_f32(h, 1, &one));
    q7_py_dict_set_str(h, p, "none", q7_py_none(h));
    q7_py_dict_set_str(h, bfs, "mean", q7_py_tensor_f32(h, 1, &one));
    q7_py_dict_set_str(h, bfs, "tmp", q7_py_tensor_f32(h, 1, &one));
    struct q7_py * np = q7_py_new(h, Q7_PY_SET);
    q7_py_append(h, np, q7_py_str(h, "tmp", 3));
    q7_py_dict_set_str(h, root->v.object.state, "_non_persistent_buffers_set", np);
    q7_py_dict_set_str(h, mods, "0", child);
    q7_py_dict_set_str(h, mods, "skip", q7_py_none(h));
    q7_py_dict_set_str(h, p2, "bias", q7_py_tensor_f32(h, 1, &one));
    q7_py_dict_set_str(h, b2, "n", q7_py_tensor_f32(h, 0, NULL));
    struct buf names = {0};
    CHECK_OK(q7_py_state_dict_walk(root, "model.", collect_names, &names));
    b_u8(&names, 0);
    CHECKF(strcmp((char *)names.p, "model.w model.mean(b) model.0.bias model.0.n(b) ") == 0,
           "walk order: '%s'", (char *)names.p);
    b_free(&names);
    CHECK(q7_py_module_child(root, "0") == child);
    CHECK(q7_py_module_param(child, "bias") != NULL);
    CHECK(q7_py_module_buffer(root, "mean") != NULL);
    CHECK(q7_py_is_class(child, "Conv2d") && !q7_py_is_class(child, "Conv"));
    /* a cycle: the child holds the root */
    q7_py_dict_set_str(h, m2, "up", root);
    CHECK_FAILS(q7_py_state_dict_walk(root, NULL, collect_names, &names), "deeper");
    b_free(&names);
    {
        /* a parameter under a non-string key, a parameter that is not a tensor, a module
         * path longer than names may be */
        struct q7_py * pa, * ba, * ma;
        struct q7_py * bad = make_module(h, "Model", &pa, &ba, &ma);
        q7_py_dict_set(h, pa, q7_py_int(h, 3), q7_py_tensor_f32(h, 1, &one));
        CHECK_FAILS(q7_py_state_dict_walk(bad, NULL, collect_names, &names), "non-string");
        b_free(&names);
        bad = make_module(h, "Model", &pa, &ba, &ma);
        q7_py_dict_set_str(h, pa, "w", q7_py_int(h, 3));
        CHECK_FAILS(q7_py_state_dict_walk(bad, NULL, collect_names, &names), "not a tensor");
        b_free(&names);
        struct q7_py * top = make_module(h, "Model", &pa, &ba, &ma), * cur = top;
        char seg[101];
        memset(seg, 'm', 100);
        seg[100] = '\0';
        for (int depth = 0; depth < 12; depth++) { /* 12 x 101 bytes > 1024 */
            struct q7_py * next = make_module(h, "Sequential", &pa, &ba, &ma);
            q7_py_dict_set_str(h, q7_py_getattr(cur, "_modules"), seg, next);
            cur = next;
        }
        q7_py_dict_set_str(h, pa, "w", q7_py_tensor_f32(h, 1, &one));
        CHECK_FAILS(q7_py_state_dict_walk(top, NULL, collect_names, &names), "name longer");
        b_free(&names);
    }
    char rb[256];
    q7_py_repr(root, rb, sizeof rb);
    CHECK(strstr(rb, "Model") != NULL);
    q7_py_repr(d, rb, sizeof rb);
    CHECK(strlen(rb) < sizeof rb && strstr(rb, "more") != NULL);
    q7_pyheap_free(h);
}

/* Generated by CPython 3 pickle.dumps (numpy 1.24): np.float64(0.5), protocol 2, and
 * {'a': (1, -2.5, 'x\u00e9', b'y\\x00', None, True, [1, 70000, -3, 2**40], {7},
 * frozenset([8])), 'od': OrderedDict(k=1), 'big': 2**63-1, 'neg': -2**63}, protocols 2 and 4. */
static const uint8_t g_np_scalar[] =
    "\x80\x02\x63\x6e\x75\x6d\x70\x79\x2e\x63\x6f\x72\x65\x2e\x6d\x75"
    "\x6c\x74\x69\x61\x72\x72\x61\x79\x0a\x73\x63\x61\x6c\x61\x72\x0a"
    "\x71\x00\x63\x6e\x75\x6d\x70\x79\x0a\x64\x74\x79\x70\x65\x0a\x71"
    "\x01\x58\x02\x00\x00\x00\x66\x38\x71\x02\x89\x88\x87\x71\x03\x52"
    "\x71\x04\x28\x4b\x03\x58\x01\x00\x00\x00\x3c\x71\x05\x4e\x4e\x4e"
    "\x4a\xff\xff\xff\xff\x4a\xff\xff\xff\xff\x4b\x00\x74\x71\x06\x62"
    "\x63\x5f\x63\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a"
    "\x71\x07\x58\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc3\xa0\x3f"
    "\x71\x08\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x09\x86"
    "\x71\x0a\x52\x71\x0b\x86\x71\x0c\x52\x71\x0d\x2e";
static const uint8_t g_py_p2[] =
    "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x28\x4b"
    "\x01\x47\xc0\x04\x00\x00\x00\x00\x00\x00\x58\x03\x00\x00\x00\x78"
    "\xc3\xa9\x71\x02\x63\x5f\x63\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63"
    "\x6f\x64\x65\x0a\x71\x03\x58\x02\x00\x00\x00\x79\x00\x71\x04\x58"
    "\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x05\x86\x71\x06\x52"
    "\x71\x07\x4e\x88\x5d\x71\x08\x28\x4b\x01\x4a\x70\x11\x01\x00\x4a"
    "\xfd\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x65\x63\x5f\x5f"
    "\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x73\x65\x74\x0a\x71\x09"
    "\x5d\x71\x0a\x4b\x07\x61\x85\x71\x0b\x52\x71\x0c\x63\x5f\x5f\x62"
    "\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x66\x72\x6f\x7a\x65\x6e\x73"
    "\x65\x74\x0a\x71\x0d\x5d\x71\x0e\x4b\x08\x61\x85\x71\x0f\x52\x71"
    "\x10\x74\x71\x11\x58\x02\x00\x00\x00\x6f\x64\x71\x12\x63\x63\x6f"
    "\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65"
    "\x64\x44\x69\x63\x74\x0a\x71\x13\x29\x52\x71\x14\x58\x01\x00\x00"
    "\x00\x6b\x71\x15\x4b\x01\x73\x58\x03\x00\x00\x00\x62\x69\x67\x71"
    "\x16\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x58\x03\x00\x00\x00"
    "\x6e\x65\x67\x71\x17\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x75"
    "\x2e";
static const uint8_t g_py_p4[] =
    "\x80\x04\x95\x94\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01"
    "\x61\x94\x28\x4b\x01\x47\xc0\x04\x00\x00\x00\x00\x00\x00\x8c\x03"
    "\x78\xc3\xa9\x94\x43\x02\x79\x00\x94\x4e\x88\x5d\x94\x28\x4b\x01"
    "\x4a\x70\x11\x01\x00\x4a\xfd\xff\xff\xff\x8a\x06\x00\x00\x00\x00"
    "\x00\x01\x65\x8f\x94\x28\x4b\x07\x90\x28\x4b\x08\x91\x94\x74\x94"
    "\x8c\x02\x6f\x64\x94\x8c\x0b\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f"
    "\x6e\x73\x94\x8c\x0b\x4f\x72\x64\x65\x72\x65\x64\x44\x69\x63\x74"
    "\x94\x93\x94\x29\x52\x94\x8c\x01\x6b\x94\x4b\x01\x73\x8c\x03\x62"
    "\x69\x67\x94\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8c\x03\x6e"
    "\x65\x67\x94\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x75\x2e";

/* Pickles written by CPython itself load to the same objects. */
static void test_pickle_python(void)
{
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * r2 = NULL, * r4 = NULL, * r = NULL;
    CHECK_OK(q7_pickle_load(g_py_p2, sizeof g_py_p2 - 1, NULL, h, NULL, NULL, &r2));
    CHECK_OK(q7_pickle_load(g_py_p4, sizeof g_py_p4 - 1, NULL, h, NULL, NULL, &r4));
    char a[512], b[512];
    q7_py_repr(r2, a, sizeof a);
    q7_py_repr(r4, b, sizeof b);
    CHECKF(strcmp(a, b) == 0, "protocol 2 '%s' vs protocol 4 '%s'", a, b);
    const struct q7_py * t = q7_py_dict_get(r4, "a");
    int64_t v;
    CHECK(t && t->kind == Q7_PY_TUPLE && t->v.seq.len == 9);
    if (t && t->v.seq.len == 9) {
        CHECK(q7_py_as_str(t->v.seq.items[2]) && strcmp(q7_py_as_str(t->v.seq.items[2]),
                                                        "x\xc3\xa9") == 0);
        CHECK(t->v.seq.items[3]->kind == Q7_PY_BYTES && t->v.seq.items[3]->v.str.len == 2);
        const struct q7_py * l = t->v.seq.items[6];
        CHECK(l->kind == Q7_PY_LIST && l->v.seq.len == 4 && q7_py_as_int(l->v.seq.items[3], &v) &&
              v == (int64_t)1 << 40);
        CHECK(t->v.seq.items[7]->kind == Q7_PY_SET && t->v.seq.items[8]->kind == Q7_PY_SET);
    }
    CHECK(q7_py_as_int(q7_py_dict_get(q7_py_dict_get(r2, "od"), "k"), &v) && v == 1);
    CHECK(q7_py_as_int(q7_py_dict_get(r2, "big"), &v) && v == INT64_MAX);
    CHECK(q7_py_as_int(q7_py_dict_get(r4, "neg"), &v) && v == INT64_MIN);
    /* numpy.float64(0.5): an inert scalar object holding (dtype, raw bytes) */
    CHECK_OK(q7_pickle_load(g_np_scalar, sizeof g_np_scalar - 1, NULL, h, NULL, NULL, &r));
    CHECK(r && r->kind == Q7_PY_OBJECT && strcmp(r->v.object.name, "scalar") == 0);
    if (r && r->kind == Q7_PY_OBJECT && r->v.object.args && r->v.object.args->v.seq.len == 2) {
        const struct q7_py * raw = r->v.object.args->v.seq.items[1];
        double d = 0;
        CHECK(raw->kind == Q7_PY_BYTES && raw->v.str.len == 8);
        memcpy(&d, raw->v.str.s, 8);
        CHECK(d == 0.5);
        CHECK(q7_py_is_class(r->v.object.args->v.seq.items[0], "dtype"));
    } else {
        CHECK(0);
    }
    q7_pyheap_free(h);
}

/* ---- hostile pickles -------------------------------------------------------------------------- */

static void test_pickle_hostile(void)
{
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * r;
    struct buf b = {0};

    /* code execution attempts: refused, naming the callable */
    b_str(&b, "\x80\x02");
    pk_global(&b, "os", "system");
    pk_str(&b, "touch /tmp/q7_pwned");
    b_str(&b, "\x85R.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "os.system, which q7 refuses to execute");
    CHECK(access("/tmp/q7_pwned", F_OK) != 0);
    b.n = 0;
    b_str(&b, "\x80\x02");
    pk_global(&b, "builtins", "eval");
    pk_str(&b, "1+1");
    b_str(&b, "\x85R.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "builtins.eval");
    b.n = 0; /* STACK_GLOBAL spelling, protocol 4 */
    B_LIT(&b, "\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00");
    pk_str(&b, "posix");
    pk_str(&b, "system");
    b_str(&b, "\x93");
    pk_str(&b, "id");
    b_str(&b, "\x85R.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "posix.system");
    b.n = 0; /* the callable nested in torch's _rebuild_from_type_v2 is checked too */
    b_str(&b, "\x80\x02");
    pk_global(&b, "torch._tensor", "_rebuild_from_type_v2");
    b_u8(&b, '(');
    pk_global(&b, "os", "system");
    pk_global(&b, "torch", "Tensor");
    pk_str(&b, "id");
    b_str(&b, "\x85}tR.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "os.system, which q7 refuses");
    /* NEWOBJ and BUILD never run code: an inert object */
    b.n = 0;
    b_str(&b, "\x80\x02");
    pk_global(&b, "os", "system");
    b_str(&b, ")\x81}");
    pk_str(&b, "a");
    pk_int(&b, 1);
    b_str(&b, "sb.");
    CHECK_OK(pickle_bytes(&b, h, &r));
    CHECK(r && r->kind == Q7_PY_OBJECT && q7_py_getattr(r, "a") != NULL);

    /* cyclic memo: a list that holds itself, a dict that holds itself */
    b.n = 0;
    B_LIT(&b, "\x80\x02]q\x00h\x00" "a}q\x01X\x01\x00\x00\x00kh\x01" "sah\x01" "a.");
    CHECK_OK(pickle_bytes(&b, h, &r));
    CHECK(r && r->kind == Q7_PY_LIST && r->v.seq.len == 3 && r->v.seq.items[0] == r);
    char rb[512];
    q7_py_repr(r, rb, sizeof rb);
    CHECK(strncmp(rb, "[[[", 3) == 0);
    CHECK_FAILS(q7_py_state_dict_walk(r, NULL, collect_names, NULL), "not a module");

    /* absurd sizes */
    b.n = 0;
    b_str(&b, "\x80\x02X");
    b_le(&b, 0x80000000u, 4);
    b_str(&b, "abcdefghijkl.");
    CHECK(b.n == 20);
    CHECK_FAILS(pickle_bytes(&b, h, &r), "only 13 left");
    CHECK(msg_has("offset 2") && msg_has("BINUNICODE"));
    b.n = 0;
    b_str(&b, "\x80\x02\x8d");
    b_le(&b, UINT64_MAX, 8);
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "BINUNICODE8");
    b.n = 0;
    b_str(&b, "\x80\x02\x8b");
    b_le(&b, 0x7fffffff, 4);
    b_str(&b, "\x01.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "LONG4");
    b.n = 0;
    b_str(&b, "\x80\x02\x8b");
    b_le(&b, 16, 4);
    b_le(&b, 1, 8);
    b_le(&b, 1, 8);
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "does not fit in 64 bits");
    b.n = 0; /* LONG1 of 9 bytes that is only sign extension: fine */
    b_str(&b, "\x80\x02\x8a\x09\xfe\xff\xff\xff\xff\xff\xff\xff\xff.");
    CHECK_OK(pickle_bytes(&b, h, &r));
    CHECK(r && r->kind == Q7_PY_INT && r->v.i == -2);
    b.n = 0;
    b_str(&b, "\x80\x02");
    int64_t sh1[1] = {4}, st1[1] = {1};
    pk_tensor(&b, "FloatStorage", "0", (int64_t)1 << 62, 0, 1, sh1, st1, 0);
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "absurd");
    b.n = 0; /* a view larger than its storage */
    b_str(&b, "\x80\x02");
    int64_t sh2[2] = {3, 4}, st2[2] = {4, 1};
    pk_tensor(&b, "HalfStorage", "0", 11, 0, 2, sh2, st2, 0);
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "reaches element 11");
    b.n = 0;
    b_str(&b, "\x80\x02");
    pk_tensor(&b, "ComplexFloatStorage", "0", 1, 0, 1, sh1, st1, 0);
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "ComplexFloatStorage");

    /* deep nesting */
    b.n = 0;
    b_str(&b, "\x80\x02");
    for (int i = 0; i < 100000; i++)
        b_u8(&b, '(');
    b_str(&b, "N.");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "marks nested deeper");
    b.n = 0;
    b_str(&b, "\x80\x02");
    for (int i = 0; i < 100000; i++)
        b_u8(&b, ']');
    for (int i = 0; i < 99999; i++)
        b_u8(&b, 'a');
    b_str(&b, ".");
    CHECK_FAILS(pickle_bytes(&b, h, &r), "stack deeper");
    b.n = 0; /* 100000 nested lists through the memo: loads; walkers stay bounded */
    b_str(&b, "\x80\x02]r");
    b_le(&b, 0, 4);
    b_u8(&b, '0');
    for (uint32_t i = 1; i < 100000; i++) {
        b_u8(&b, 'j'); /* memo[i - 1].append(memo[i] = []) */
        b_le(&b, i - 1, 4);
        b_u8(&b, ']');
        b_u8(&b, 'r');
        b_le(&b, i, 4);
        b_u8(&b, 'a');
        b_u8(&b, '0');
    }
    b_u8(&b, 'j');
    b_le(&b, 0, 4);
    b_u8(&b, '.');
    CHECK_OK(pickle_bytes(&b, h, &r));
    q7_py_repr(r, rb, sizeof rb);
    CHECK(strstr(rb, "...") != NULL);

    /* the caller's limits */
    struct q7_ckpt_limits lim = q7_ckpt_limits_default();
    lim.max_objects = 1000;
    b.n = 0;
    b_str(&b, "\x80\x02(");
    for (int i = 0; i < 1500; i++) {
        b_u8(&b, 'G');
        b_le(&b, (uint64_t)i, 8);
    }
    b_str(&b, "l.");
    CHECK_FAILS(q7_pickle_load(b.p, b.n, &lim, h, NULL, NULL, &r), "more than 1000 objects");
    b.n = 0;
    b_str(&b, "\x80\x02X");
    b_le(&b, 300000, 4);
    for (int i = 0; i < 300000; i++)
        b_u8(&b, 'a');
    b_str(&b, ".");
    CHECK_FAILS(q7_pickle_load(b.p, b.n, &lim, h, NULL, NULL, &r), "bytes, more than");
    lim = q7_ckpt_limits_default();
    lim.max_container_len = 50;
    b.n = 0;
    b_str(&b, "\x80\x02](");
    for (int i = 0; i < 60; i++)
        pk_int(&b, i);
    b_str(&b, "e.");
    CHECK_FAILS(q7_pickle_load(b.p, b.n, &lim, h, NULL, NULL, &r), "longer than 50");
    lim.max_pickle_bytes = 10;
    CHECK_FAILS(q7_pickle_load(b.p, b.n, &lim, h, NULL, NULL, &r), "more than the 10 allowed");
    lim = q7_ckpt_limits_default();
    lim.max_memo = 100;
    b.n = 0;
    B_LIT(&b, "\x80\x02Nr\x64\x00\x00\x00.");
    CHECK_FAILS(q7_pickle_load(b.p, b.n, &lim, h, NULL, NULL, &r), "memo index 100");

    /* malformed streams: bad opcode, truncation, underflow, missing memo, wrong targets */
    static const struct {
        const char * bytes;
        size_t n;
        const char * what;
    } bad[] = {
        {"\x80\x02\xff.", 4, "invalid opcode"},
        {"\x80\x02N", 3, "no STOP"},
        {"\x80\x02.", 3, "stack underflow"},
        {"\x80\x02(.", 4, "stack underflow"},
        {"\x80\x02h\x05.", 5, "memo key 5"},
        {"\x80\x02Na.", 5, "stack underflow"},
        {"\x80\x02K\x01K\x02" "a.", 8, "not a list"},
        {"\x80\x02}(K\x01u.", 8, "odd number"},
        {"\x80\x02K\x01K\x02R.", 8, "not a global"},
        {"\x80\x09N.", 4, "protocol 9"},
        {"\x80\x02" "cos\nsys", 10, "end of line"},
        {"\x80\x02S'abc'\n.", 10, "not supported"},
        {"\x80\x02" "1.", 4, "no MARK"},
        {"\x80\x02J\x01\x02", 5, "truncated"},
        {"\x80\x02" "X\x02\x00\x00\x00\xc3(.", 10, "UTF-8"},
        {"\x80\x02q\x00.", 5, "stack underflow"},
        {"\x80\x02NQ.", 5, "persistent id"},
        {"\x80\x02Nr\xff\xff\xff\xff.", 9, "memo index"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_FAILS(q7_pickle_load((const uint8_t *)bad[i].bytes, bad[i].n, NULL, h, NULL, NULL,
                                   &r), bad[i].what);
        CHECK(r == NULL);
    }

    /* a valid pickle cut at every length, and randomly corrupted: never a crash */
    b.n = 0;
    B_LIT(&b, "\x80\x02}q\x00(");
    pk_str(&b, "w");
    int64_t sh3[2] = {2, 3}, st3[2] = {3, 1};
    pk_tensor(&b, "FloatStorage", "0", 6, 0, 2, sh3, st3, 1);
    pk_str(&b, "s");
    pk_global(&b, "__builtin__", "set");
    b_str(&b, "](K\x01K\x02" "e\x85R");
    pk_str(&b, "b");
    pk_global(&b, "_codecs", "encode");
    pk_str(&b, "\xc3\xbf\x01");
    pk_str(&b, "latin1");
    b_str(&b, "\x86R");
    pk_str(&b, "f");
    B_LIT(&b, "G\x3f\xf8\x00\x00\x00\x00\x00\x00u.");
    CHECK_OK(pickle_bytes(&b, h, &r));
    struct q7_py * w = q7_py_dict_get(r, "w");
    CHECK(w && w->kind == Q7_PY_TENSOR && w->v.tensor.is_parameter && w->v.tensor.ndim == 2 &&
          w->v.tensor.shape[1] == 3 && w->v.tensor.storage->v.storage.dtype == Q7_DTYPE_F32);
    struct q7_py * s = q7_py_dict_get(r, "s"), * by = q7_py_dict_get(r, "b");
    CHECK(s && s->kind == Q7_PY_SET && s->v.seq.len == 2);
    CHECK(by && by->kind == Q7_PY_BYTES && by->v.str.len == 2 && (uint8_t)by->v.str.s[0] == 0xff);
    double fv;
    CHECK(q7_py_as_double(q7_py_dict_get(r, "f"), &fv) && fv == 1.5);
    for (size_t n = 0; n < b.n; n++) {
        q7_error_clear();
        enum q7_status st = q7_pickle_load(b.p, n, NULL, h, NULL, NULL, &r);
        CHECKF(st != Q7_OK && q7_error_message()[0], "prefix %zu of %zu loads", n, b.n);
    }
    uint64_t rng = 42;
    struct buf m = {0};
    for (int it = 0; it < 3000; it++) {
        m.n = 0;
        b_bytes(&m, b.p, b.n);
        int flips = 1 + (int)(q7t_rand_u64(&rng) % 4);
        for (int k = 0; k < flips; k++)
            m.p[q7t_rand_u64(&rng) % m.n] = (uint8_t)q7t_rand_u64(&rng);
        struct q7_pyheap * h2 = q7_pyheap_create();
        if (q7_pickle_load(m.p, m.n, NULL, h2, NULL, NULL, &r) == Q7_OK)
            q7_py_repr(r, rb, sizeof rb);
        q7_pyheap_free(h2);
    }
    b_free(&m);
    b_free(&b);
    q7_pyheap_free(h);
}

/* ---- crafted checkpoints ------------------------------------------------------------------ */

static const float g_w[6] = {1.0f, -2.0f, 3.5f, 0.25f, -8.0f, 6.0f};
static const uint16_t g_hw[4] = {0x3c00, 0xc000, 0x3800, 0x0000}; /* 1, -2, 0.5, 0 */

/* A bare state_dict: OrderedDict{'w': Parameter F32 (2,3), 'h': F16 (2,2) transposed}. */
static void crafted_pickle(struct buf * b)
{
    b_str(b, "\x80\x02");
    pk_global(b, "collections", "OrderedDict");
    b_str(b, ")R(");
    pk_str(b, "w");
    int64_t sh[2] = {2, 3}, st[2] = {3, 1};
    pk_tensor(b, "FloatStorage", "0", 6, 0, 2, sh, st, 1);
    pk_str(b, "h");
    int64_t sh2[2] = {2, 2}, st2[2] = {1, 2};
    pk_tensor(b, "HalfStorage", "1", 4, 0, 2, sh2, st2, 0);
    b_str(b, "u.");
}

static void build_ckpt(struct buf * z, const struct buf * pkl, int zip64, int deflate_storage)
{
    struct zent e[4] = {
        {"t/data.pkl", pkl->p, pkl->n, 0},
        {"t/data/0", g_w, sizeof g_w, deflate_storage ? 8 : 0},
        {"t/data/1", g_hw, sizeof g_hw, 0},
        {"t/version", "3\n", 2, 0},
    };
    build_zip(z, e, 4, zip64);
}

static void check_crafted_root(const struct q7_py * root)
{
    CHECK(root && root->kind == Q7_PY_DICT && root->v.dict.len == 2);
    const struct q7_py * w = q7_py_dict_get(root, "w"), * hh = q7_py_dict_get(root, "h");
    float out[6];
    CHECK(w && w->v.tensor.is_parameter);
    CHECK_OK(q7_py_tensor_to_f32(w, out, 6));
    CHECK(memcmp(out, g_w, sizeof out) == 0);
    CHECK_OK(q7_py_tensor_to_f32(hh, out, 4));
    CHECK(out[0] == 1.0f && out[1] == 0.5f && out[2] == -2.0f && out[3] == 0.0f);
}

static void test_crafted_ckpt(void)
{
    struct buf pkl = {0}, z = {0};
    crafted_pickle(&pkl);
    struct q7_ckpt * ck = NULL;
    for (int zip64 = 0; zip64 < 2; zip64++) {
        z.n = 0;
        build_ckpt(&z, &pkl, zip64, 0);
        CHECK_OK(load_bytes(&z, &ck));
        check_crafted_root(q7_ckpt_root(ck));
        q7_ckpt_free(ck);
        ck = NULL;
    }
    /* zip level: every truncation fails; a wrong CRC is caught */
    z.n = 0;
    build_ckpt(&z, &pkl, 0, 0);
    struct q7_zip * zip = NULL;
    CHECK_OK(q7_zip_open(z.p, z.n, 100, &zip));
    CHECK(q7_zip_count(zip) == 4 && q7_zip_find(zip, "t/version") != NULL);
    const uint8_t * data;
    CHECK_OK(q7_zip_data(zip, q7_zip_find(zip, "t/data/1"), 1, &data));
    q7_zip_free(zip);
    for (size_t n = 0; n < z.n; n++) {
        q7_error_clear();
        enum q7_status st = q7_zip_open(z.p, n, 100, &zip);
        CHECKF(st != Q7_OK && zip == NULL && q7_error_message()[0], "zip prefix %zu loads", n);
    }
    CHECK_FAILS(q7_zip_open(z.p, z.n, 3, &zip), "more than the 3 allowed");
    struct buf bad = {0};
    b_bytes(&bad, z.p, z.n);
    bad.p[60] ^= 0x40; /* inside data.pkl's bytes */
    CHECK_FAILS(load_bytes(&bad, &ck), "CRC-32 mismatch");
    CHECK(ck == NULL && msg_has("/tmp/q7_test_ckpt_"));
    /* an absurd entry count in the end record */
    bad.n = 0;
    b_bytes(&bad, z.p, z.n);
    bad.p[bad.n - 14] = 0xff;
    bad.p[bad.n - 13] = 0x7f;
    bad.p[bad.n - 12] = 0xff;
    bad.p[bad.n - 11] = 0x7f;
    CHECK_FAILS(q7_zip_open(bad.p, bad.n, 1 << 20, &zip), "cannot fit");
    /* a central directory offset beyond the file */
    bad.n = 0;
    b_bytes(&bad, z.p, z.n);
    bad.p[bad.n - 5] = 0x7f;
    CHECK_FAILS(q7_zip_open(bad.p, bad.n, 100, &zip), "outside the file");
    /* duplicate names */
    struct zent dup[2] = {{"a/x", "1", 1, 0}, {"a/x", "2", 1, 0}};
    bad.n = 0;
    build_zip(&bad, dup, 2, 0);
    CHECK_FAILS(q7_zip_open(bad.p, bad.n, 100, &zip), "duplicate entry");
    /* a deflated storage is refused with a clear message */
    bad.n = 0;
    build_ckpt(&bad, &pkl, 0, 1);
    CHECK_FAILS(load_bytes(&bad, &ck), "is compressed");
    /* a storage whose entry is smaller than the pickle says */
    struct buf p2 = {0};
    b_str(&p2, "\x80\x02");
    int64_t sh[1] = {100}, st[1] = {1};
    pk_tensor(&p2, "FloatStorage", "0", 100, 0, 1, sh, st, 0);
    b_str(&p2, ".");
    bad.n = 0;
    build_ckpt(&bad, &p2, 0, 0);
    CHECK_FAILS(load_bytes(&bad, &ck), "the pickle says 400");
    /* a storage key that is a path */
    p2.n = 0;
    b_str(&p2, "\x80\x02");
    pk_tensor(&p2, "FloatStorage", "../0", 6, 0, 1, sh, st, 0);
    b_str(&p2, ".");
    bad.n = 0;
    build_ckpt(&bad, &p2, 0, 0);
    CHECK_FAILS(load_bytes(&bad, &ck), "not a plain name");
    /* not a checkpoint at all */
    bad.n = 0;
    b_str(&bad, "hello, this is not a zip file at all");
    CHECK_FAILS(load_bytes(&bad, &ck), "end of central directory");
    CHECK_FAILS(q7_ckpt_load("/nonexistent/q7.pt", NULL, &ck), "/nonexistent/q7.pt");

    /* legacy format: magic, protocol, sys_info, objects, keys, raw storages */
    bad.n = 0;
    b_str(&bad, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    b_str(&bad, "\x80\x02M\xe9\x03.");
    b_str(&bad, "\x80\x02}(");
    pk_str(&bad, "little_endian");
    b_str(&bad, "\x88u.");
    /* the object pickle: the legacy persistent id has a 6th item (view metadata, None) */
    struct buf lp = {0};
    b_str(&lp, "\x80\x02");
    pk_global(&lp, "collections", "OrderedDict");
    b_str(&lp, ")R(");
    pk_str(&lp, "w");
    pk_global(&lp, "torch._utils", "_rebuild_tensor_v2");
    b_str(&lp, "((");
    pk_str(&lp, "storage");
    pk_global(&lp, "torch", "FloatStorage");
    pk_str(&lp, "k0");
    pk_str(&lp, "cpu");
    pk_int(&lp, 6);
    B_LIT(&lp, "NtQK\x00(K\x06t(K\x01t\x89");
    pk_global(&lp, "collections", "OrderedDict");
    b_str(&lp, ")RtRu.");
    b_bytes(&bad, lp.p, lp.n);
    B_LIT(&bad, "\x80\x02]q\x00");
    pk_str(&bad, "k0");
    b_str(&bad, "a.");
    b_le(&bad, 6, 8);
    b_bytes(&bad, g_w, sizeof g_w);
    CHECK_OK(load_bytes(&bad, &ck));
    if (ck) {
        float out[6];
        const struct q7_py * w = q7_py_dict_get(q7_ckpt_root(ck), "w");
        CHECK_OK(q7_py_tensor_to_f32(w, out, 6));
        CHECK(memcmp(out, g_w, sizeof out) == 0);
        q7_ckpt_free(ck);
        ck = NULL;
    }
    bad.n -= 4; /* truncated raw storage */
    CHECK_FAILS(load_bytes(&bad, &ck), "does not fit the file");
    b_free(&lp);
    b_free(&p2);
    b_free(&bad);
    b_free(&pkl);
    b_free(&z);
}

/* ---- fixtures ------------------------------------------------------------------------------- */

static int g_missing; /* a fixture was missing: skip (77) unless something failed */

/* 1 when `path` exists; otherwise notes the skip (the in-memory tests still count). */
static int have_fixture(const char * path)
{
    if (access(path, R_OK) == 0)
        return 1;
    printf("SKIP: fixture %s is missing\n", path);
    g_missing = 1;
    return 0;
}

struct cmp_ctx {
    cJSON * ref;
    const cJSON * next; /* the entry expected next */
    int count, bad;
    int64_t elems;
    float * scratch;
    size_t scratch_n;
};

static int json_close(double a, double b, double scale)
{
    return fabs(a - b) <= 1e-6 * fabs(b) + 1e-9 * scale;
}

static enum q7_status compare_tensor(void * user, const char * name, const struct q7_py * t,
                                     int is_buffer)
{
    struct cmp_ctx * c = user;
    (void)is_buffer;
    c->count++;
    /* weights.json lists the state_dict in order */
    const char * want = c->next ? c->next->string : "(end of weights.json)";
    if (strcmp(want, name) != 0 && c->bad++ < 10)
        fprintf(stderr, "  tensor %d is %s, state_dict order says %s\n", c->count, name, want);
    if (c->next)
        c->next = c->next->next;
    const cJSON * r = cJSON_GetObjectItemCaseSensitive(c->ref, name);
    if (!r) {
        if (c->bad++ < 10)
            fprintf(stderr, "  %s: not in weights.json\n", name);
        return Q7_OK;
    }
    const cJSON * shape = cJSON_GetObjectItemCaseSensitive(r, "shape");
    const char * dtype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "dtype"));
    double rsum = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "sum"));
    double rabs = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "abs_sum"));
    int ok = cJSON_GetArraySize(shape) == t->v.tensor.ndim;
    for (int d = 0; ok && d < t->v.tensor.ndim; d++)
        ok = (int64_t)cJSON_GetNumberValue(cJSON_GetArrayItem(shape, d)) == t->v.tensor.shape[d];
    const char * dn = q7_dtype_name(t->v.tensor.storage->v.storage.dtype);
    ok = ok && dtype && strcmp(dtype, dn) == 0;
    double sum = 0, abs_sum = 0;
    enum q7_status st = q7_py_tensor_sums(t, &sum, &abs_sum);
    ok = ok && st == Q7_OK && json_close(sum, rsum, rabs) && json_close(abs_sum, rabs, rabs);
    /* the FP32 conversion agrees with the float64 sums (FP16 widens exactly) */
    int64_t n = q7_py_tensor_numel(t);
    if (ok && (size_t)n > c->scratch_n) {
        free(c->scratch);
        c->scratch = malloc((size_t)n * sizeof(float));
        c->scratch_n = c->scratch ? (size_t)n : 0;
    }
    double fsum = 0;
    if (ok && c->scratch && q7_py_tensor_to_f32(t, c->scratch, n) == Q7_OK) {
        for (int64_t i = 0; i < n; i++)
            fsum += c->scratch[i];
        ok = json_close(fsum, rsum, rabs);
    } else {
        ok = 0;
    }
    c->elems += n;
    if (!ok && c->bad++ < 10)
        fprintf(stderr, "  %s: q7 %s sum %.17g abs %.17g (f32 path %.17g), ref %s sum %.17g abs "
                "%.17g: %s\n", name, dn, sum, abs_sum, fsum, dtype ? dtype : "?", rsum, rabs,
                st ? q7_error_message() : "mismatch");
    return Q7_OK;
}

static void test_fixture(const char * model)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/model.pt", model);
    const char * path = q7t_fixture(rel);
    if (!have_fixture(path))
        return;
    snprintf(rel, sizeof rel, "%s/ref/weights.json", model);
    if (!have_fixture(q7t_fixture(rel)))
        return;
    cJSON * ref = q7t_json_load(q7t_fixture(rel));
    struct q7_ckpt * ck = NULL;
    double t0 = q7_time_now();
    CHECK_OK(q7_ckpt_load(path, NULL, &ck));
    double t1 = q7_time_now();
    if (!ck) {
        cJSON_Delete(ref);
        return;
    }
    const struct q7_py * root = q7_ckpt_root(ck);
    CHECK(root && root->kind == Q7_PY_DICT);
    const struct q7_py * m = q7_py_dict_get(root, "model");
    CHECK(m && m->kind == Q7_PY_OBJECT && q7_py_is_class(m, "Model") &&
          strcmp(m->v.object.module, "models.yolo") == 0);
    int64_t epoch = 0;
    CHECK(q7_py_as_int(q7_py_dict_get(root, "epoch"), &epoch) && epoch == -1);
    struct cmp_ctx c = {.ref = ref, .next = ref ? ref->child : NULL};
    CHECK_OK(q7_py_state_dict_walk(m, NULL, compare_tensor, &c));
    double t2 = q7_time_now();
    int nref = cJSON_GetArraySize(ref);
    CHECKF(c.bad == 0 && c.count == nref, "%s: %d tensors walked, %d in weights.json, %d bad",
           model, c.count, nref, c.bad);
    char rb[160];
    q7_py_repr(q7_py_module_child(q7_py_module_child(m, "model"), "0"), rb, sizeof rb);
    printf("%s: loaded in %.1f ms (%.1f MiB of objects), %d tensors (%lld values) checked in "
           "%.1f ms, model.0 = %s\n", model, (t1 - t0) * 1e3,
           q7_arena_used(q7_pyheap_arena(q7_ckpt_heap(ck))) / 1048576.0, c.count,
           (long long)c.elems, (t2 - t1) * 1e3, rb);
    free(c.scratch);
    q7_ckpt_free(ck);
    cJSON_Delete(ref);
}

static enum q7_status count_tensor(void * user, const char * name, const struct q7_py * t,
                                   int is_buffer)
{
    (void)name;
    (void)is_buffer;
    double s;
    enum q7_status st = q7_py_tensor_sums(t, &s, NULL);
    if (st == Q7_OK)
        ++*(int *)user;
    return st;
}

static int cmp_str(const void * a, const void * b)
{
    return strcmp(*(char * const *)a, *(char * const *)b);
}

static void test_family(void)
{
    const char * dir = q7t_fixture("family");
    DIR * d = have_fixture(dir) ? opendir(dir) : NULL;
    if (!d)
        return;
    char * names[256];
    int n = 0;
    struct dirent * de;
    while ((de = readdir(d)) && n < 256) {
        size_t l = strlen(de->d_name);
        if (l > 3 && strcmp(de->d_name + l - 3, ".pt") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    double t0 = q7_time_now();
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct q7_ckpt * ck = NULL;
        CHECK_OK(q7_ckpt_load(path, NULL, &ck));
        if (ck) {
            const struct q7_py * m = q7_py_dict_get(q7_ckpt_root(ck), "model");
            int count = 0;
            CHECKF(q7_py_is_class(m, "Model"), "%s: no model", names[i]);
            CHECK_OK(q7_py_state_dict_walk(m, NULL, count_tensor, &count));
            CHECKF(count > 50, "%s: %d tensors", names[i], count);
            loaded += count > 50;
        }
        q7_ckpt_free(ck);
        free(names[i]);
    }
    CHECK(n >= 15);
    printf("family/: %d of %d checkpoints loaded and walked in %.1f ms\n", loaded, n,
           (q7_time_now() - t0) * 1e3);
}

/* Prefixes of a real checkpoint: the zip reader must refuse each one. */
static void test_fixture_prefixes(void)
{
    const char * path = q7t_fixture("family/deploy-yolov7-tiny.pt");
    struct q7_file_map map;
    if (!have_fixture(path) || q7_file_map_open(path, &map) != Q7_OK)
        return;
    struct q7_zip * zip = NULL;
    CHECK_OK(q7_zip_open(map.data, map.size, 1 << 20, &zip));
    q7_zip_free(zip);
    int fails = 0, tries = 0;
    for (size_t n = 0; n < map.size; n += n < 4096 ? 1 : 4099, tries++) {
        if (q7_zip_open(map.data, n, 1 << 20, &zip) != Q7_OK)
            fails++;
        else
            q7_zip_free(zip);
    }
    for (size_t cut = 1; cut < 200; cut++, tries++) /* the end records themselves */
        if (q7_zip_open(map.data, map.size - cut, 1 << 20, &zip) != Q7_OK)
            fails++;
        else
            q7_zip_free(zip);
    CHECKF(fails == tries, "%d of %d truncated copies were refused", fails, tries);
    q7_file_map_close(&map);
}

int main(void)
{
    test_pyobj();
    test_pickle_python();
    test_pickle_hostile();
    test_crafted_ckpt();
    test_fixture_prefixes();
    test_fixture("yolov7-tiny");
    test_fixture("yolov7");
    test_family();
    int rc = q7t_finish("test_ckpt");
    return rc == 0 && g_missing ? Q7_TEST_SKIP : rc;
}
