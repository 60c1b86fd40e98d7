/* Safe unpickler for the protocol-2 subset that torch.save writes (plus the common protocol
 * 0/1/4 opcodes of plain data).
 *
 * Nothing is ever executed. GLOBAL/STACK_GLOBAL push an inert (module, name) pair; NEWOBJ
 * makes an inert instance that BUILD fills with state; REDUCE is honoured only for a short
 * allow-list of data constructors (OrderedDict, set, tensor rebuilders, _codecs.encode, numpy
 * scalars), anything else is refused naming the callable. Persistent ids of torch storages
 * are resolved through the caller's resolver.
 *
 * Hostile input: every read is checked against the end of the stream; strings cannot be
 * longer than what is left; stack, marks, memo, objects and container lengths are bounded by
 * q7_ckpt_limits; errors say "pickle: offset N, opcode X: what". */
#include "models/ckpt_impl.h"
#include "models/pyobj_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SMALL_INT_MIN (-1)
#define SMALL_INT_MAX 255 /* BININT1 range: shared objects instead of one per opcode */
#define MAX_LINE 256      /* longest text argument (GLOBAL names, INT, FLOAT lines) */
#define MAX_PROTO 5
/* Heap bytes allowed per permitted object: with max_objects this bounds what containers and
 * string copies (set(list), _codecs.encode of a memoized string, ...) can amplify. */
#define BYTES_PER_OBJECT 256

struct up {
    const uint8_t * data;
    size_t size, pos;
    size_t op_pos; /* offset of the opcode being run */
    uint8_t op;
    const struct q7_ckpt_limits * lim;
    struct q7_pyheap * h;
    size_t objects0, bytes0;
    q7_storage_resolver resolve;
    void * user;
    int legacy;
    struct q7_py ** stack;
    size_t sp, stack_cap;
    size_t * marks;
    size_t n_marks, marks_cap;
    struct q7_py ** memo;
    size_t memo_cap, memo_count;
    struct q7_py * small[SMALL_INT_MAX - SMALL_INT_MIN + 1];
    struct q7_py ** storages;
    size_t n_storages, storages_cap;
    struct q7_py * root; /* what STOP popped */
};

static const char * op_name(uint8_t op)
{
    switch (op) {
    case 0x80: return "PROTO";
    case 0x95: return "FRAME";
    case '.': return "STOP";
    case '(': return "MARK";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'N': return "NONE";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'M': return "BININT2";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'F': return "FLOAT";
    case 'G': return "BINFLOAT";
    case 'X': return "BINUNICODE";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8e: return "BINBYTES8";
    case ')': return "EMPTY_TUPLE";
    case 't': return "TUPLE";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case ']': return "EMPTY_LIST";
    case 'a': return "APPEND";
    case 'e': return "APPENDS";
    case 'l': return "LIST";
    case '}': return "EMPTY_DICT";
    case 'd': return "DICT";
    case 's': return "SETITEM";
    case 'u': return "SETITEMS";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 0x94: return "MEMOIZE";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'j': return "LONG_BINGET";
    case 'c': return "GLOBAL";
    case 0x93: return "STACK_GLOBAL";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'b': return "BUILD";
    case 'R': return "REDUCE";
    case 'Q': return "BINPERSID";
    case 'P': return "PERSID";
    case 'S': return "STRING";
    case 'o': return "OBJ";
    case 'i': return "INST";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown opcode";
    }
}

/* Sets "pickle: offset N, opcode 0xXX NAME: <message>" and returns status. */
static enum q7_status up_err(struct up * u, enum q7_status status, const char * fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum q7_status up_err(struct up * u, enum q7_status status, const char * fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    q7_error_set(status, "pickle: offset %zu, opcode 0x%02x %s: %s", u->op_pos, u->op,
                 op_name(u->op), msg);
    return status; /* visibly nonzero to the optimizer: callers' outputs stay unread */
}

/* Adds the opcode's position in front of a message set further down. */
static enum q7_status up_wrap(struct up * u, enum q7_status status)
{
    q7_error_wrap(status, "pickle: offset %zu, opcode 0x%02x %s", u->op_pos, u->op,
                  op_name(u->op));
    return status;
}

/* ---- reading ---------------------------------------------------------------------------- */

static enum q7_status need(struct up * u, size_t n)
{
    if (n > u->size - u->pos)
        return up_err(u, Q7_ERR_FORMAT, "truncated: needs %zu bytes, %zu left", n,
                      u->size - u->pos);
    return Q7_OK;
}

static uint64_t rd_le(const uint8_t * p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A newline-terminated argument (protocol 0 text); *len excludes the newline. */
static enum q7_status read_line(struct up * u, const char ** line, size_t * len)
{
    *line = NULL;
    *len = 0;
    size_t left = u->size - u->pos, scan = left < MAX_LINE ? left : MAX_LINE;
    const uint8_t * nl = memchr(u->data + u->pos, '\n', scan);
    if (!nl)
        return up_err(u, Q7_ERR_FORMAT, left < MAX_LINE ? "truncated: no end of line"
                                                        : "text argument longer than %d bytes",
                      MAX_LINE);
    *line = (const char *)u->data + u->pos;
    *len = (size_t)(nl - (u->data + u->pos));
    u->pos += *len + 1;
    return Q7_OK;
}

/* ---- objects, stack, marks, memo ---------------------------------------------------------- */

static enum q7_status check_objects(struct up * u)
{
    if (q7_pyheap_object_count(u->h) - u->objects0 > u->lim->max_objects)
        return up_err(u, Q7_ERR_LIMIT, "more than %zu objects", u->lim->max_objects);
    size_t budget;
    if (!q7_size_mul(u->lim->max_objects, BYTES_PER_OBJECT, &budget))
        budget = SIZE_MAX;
    size_t used = q7_arena_used(q7_pyheap_arena(u->h)) - u->bytes0;
    if (used > budget)
        return up_err(u, Q7_ERR_LIMIT, "objects take %zu bytes, more than the %zu allowed "
                      "(%d per object of max_objects)", used, budget, BYTES_PER_OBJECT);
    return Q7_OK;
}

static enum q7_status push(struct up * u, struct q7_py * o)
{
    if (!o)
        return up_wrap(u, Q7_ERR_OOM);
    if (u->sp == u->stack_cap) {
        if (u->sp >= u->lim->max_stack)
            return up_err(u, Q7_ERR_LIMIT, "stack deeper than %zu", u->lim->max_stack);
        size_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        if (cap > u->lim->max_stack)
            cap = u->lim->max_stack;
        struct q7_py ** s = realloc(u->stack, cap * sizeof *s);
        if (!s)
            return up_err(u, Q7_ERR_OOM, "out of memory for the stack");
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = o;
    return Q7_OK;
}

/* Index of the first item above the innermost mark (0 without marks). */
static size_t floor_of(const struct up * u)
{
    return u->n_marks ? u->marks[u->n_marks - 1] : 0;
}

static enum q7_status pop(struct up * u, struct q7_py ** out)
{
    *out = NULL;
    if (u->sp <= floor_of(u))
        return up_err(u, Q7_ERR_FORMAT, "stack underflow");
    *out = u->stack[--u->sp];
    return Q7_OK;
}

static enum q7_status peek(struct up * u, struct q7_py ** out)
{
    *out = NULL;
    if (u->sp <= floor_of(u))
        return up_err(u, Q7_ERR_FORMAT, "stack underflow");
    *out = u->stack[u->sp - 1];
    return Q7_OK;
}

static enum q7_status push_mark(struct up * u)
{
    if (u->n_marks == u->marks_cap) {
        if (u->n_marks >= u->lim->max_stack)
            return up_err(u, Q7_ERR_LIMIT, "marks nested deeper than %zu", u->lim->max_stack);
        size_t cap = u->marks_cap ? u->marks_cap * 2 : 32;
        if (cap > u->lim->max_stack)
            cap = u->lim->max_stack;
        size_t * m = realloc(u->marks, cap * sizeof *m);
        if (!m)
            return up_err(u, Q7_ERR_OOM, "out of memory for marks");
        u->marks = m;
        u->marks_cap = cap;
    }
    u->marks[u->n_marks++] = u->sp;
    return Q7_OK;
}

/* Removes the innermost mark; the items above it are stack[*start .. u->sp). The caller
 * drops them by setting u->sp = *start. */
static enum q7_status pop_mark(struct up * u, size_t * start)
{
    *start = u->sp;
    if (!u->n_marks)
        return up_err(u, Q7_ERR_FORMAT, "no MARK on the stack");
    *start = u->marks[--u->n_marks];
    return Q7_OK;
}

static enum q7_status memo_put(struct up * u, uint64_t idx, struct q7_py * o)
{
    if (idx >= u->lim->max_memo)
        return up_err(u, Q7_ERR_LIMIT, "memo index %" PRIu64 " beyond the limit of %zu", idx,
                      u->lim->max_memo);
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 256;
        while (cap <= idx)
            cap *= 2;
        if (cap > u->lim->max_memo)
            cap = u->lim->max_memo;
        struct q7_py ** m = realloc(u->memo, cap * sizeof *m);
        if (!m)
            return up_err(u, Q7_ERR_OOM, "out of memory for %zu memo entries", cap);
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo_count += u->memo[idx] == NULL;
    u->memo[idx] = o;
    return Q7_OK;
}

static enum q7_status memo_get(struct up * u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx])
        return up_err(u, Q7_ERR_FORMAT, "memo key %" PRIu64 " was never stored", idx);
    return push(u, u->memo[idx]);
}

static struct q7_py * make_int(struct up * u, int64_t v)
{
    if (v >= SMALL_INT_MIN && v <= SMALL_INT_MAX) {
        struct q7_py ** slot = &u->small[v - SMALL_INT_MIN];
        if (!*slot)
            *slot = q7_py_int(u->h, v);
        return *slot;
    }
    return q7_py_int(u->h, v);
}

/* A container built from stack[start .. u->sp). */
static enum q7_status make_seq(struct up * u, enum q7_py_kind kind, size_t start,
                               struct q7_py ** out)
{
    *out = NULL;
    size_t n = u->sp - start;
    if (n > u->lim->max_container_len)
        return up_err(u, Q7_ERR_LIMIT, "%zu items, more than the %zu allowed", n,
                      u->lim->max_container_len);
    struct q7_py * o = q7_py_new(u->h, kind);
    if (!o)
        return up_wrap(u, Q7_ERR_OOM);
    if (n) {
        o->v.seq.items = q7_pyheap_alloc(u->h, n * sizeof *o->v.seq.items);
        if (!o->v.seq.items)
            return up_wrap(u, Q7_ERR_OOM);
        memcpy(o->v.seq.items, u->stack + start, n * sizeof *o->v.seq.items);
        o->v.seq.len = o->v.seq.cap = n;
    }
    *out = o;
    return Q7_OK;
}

static enum q7_status seq_add(struct up * u, struct q7_py * seq, struct q7_py * item)
{
    if (seq->v.seq.len >= u->lim->max_container_len)
        return up_err(u, Q7_ERR_LIMIT, "container longer than %zu items",
                      u->lim->max_container_len);
    enum q7_status st = q7_py_append(u->h, seq, item);
    return st ? up_wrap(u, st) : Q7_OK;
}

static enum q7_status dict_add(struct up * u, struct q7_py * d, struct q7_py * k,
                               struct q7_py * v)
{
    if (d->v.dict.len >= u->lim->max_container_len)
        return up_err(u, Q7_ERR_LIMIT, "dict longer than %zu items", u->lim->max_container_len);
    enum q7_status st = q7_py_dict_set(u->h, d, k, v);
    return st ? up_wrap(u, st) : Q7_OK;
}

/* ---- strings and numbers ---------------------------------------------------------------- */

/* Decodes one UTF-8 sequence (surrogates allowed, as pickle's 'surrogatepass'); returns its
 * length or 0 when malformed. */
static size_t utf8_next(const uint8_t * s, size_t n, uint32_t * cp)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0 && c >= 0xc2) {
        len = 2, v = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return len;
}

static int utf8_valid(const uint8_t * s, size_t n)
{
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_next(s + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Reads a length-prefixed string or bytes argument of `lenbytes` (1, 4 or 8) bytes. */
static enum q7_status op_string(struct up * u, int lenbytes, enum q7_py_kind kind)
{
    enum q7_status st = need(u, (size_t)lenbytes);
    if (st)
        return st;
    uint64_t n = rd_le(u->data + u->pos, lenbytes);
    if (lenbytes == 4 && (u->op == 'T') && (n & 0x80000000u))
        return up_err(u, Q7_ERR_FORMAT, "negative string length");
    u->pos += (size_t)lenbytes;
    if (n > u->size - u->pos)
        return up_err(u, Q7_ERR_FORMAT, "string of %" PRIu64 " bytes but only %zu left in the "
                      "stream", n, u->size - u->pos);
    const uint8_t * s = u->data + u->pos;
    u->pos += (size_t)n;
    if (kind == Q7_PY_STR && !utf8_valid(s, (size_t)n)) {
        if (u->op == 'T' || u->op == 'U') /* Python 2 str: keep the raw bytes */
            kind = Q7_PY_BYTES;
        else
            return up_err(u, Q7_ERR_FORMAT, "string is not valid UTF-8");
    }
    return push(u, kind == Q7_PY_STR ? q7_py_str(u->h, (const char *)s, (size_t)n)
                                     : q7_py_bytes(u->h, s, (size_t)n));
}

/* LONG1/LONG4: little-endian two's complement of n bytes, which must fit in int64. */
static enum q7_status op_long_bin(struct up * u, int lenbytes)
{
    enum q7_status st = need(u, (size_t)lenbytes);
    if (st)
        return st;
    uint64_t n = rd_le(u->data + u->pos, lenbytes);
    if (lenbytes == 4 && (n & 0x80000000u))
        return up_err(u, Q7_ERR_FORMAT, "negative byte count");
    u->pos += (size_t)lenbytes;
    if (n > u->size - u->pos)
        return up_err(u, Q7_ERR_FORMAT, "integer of %" PRIu64 " bytes but only %zu left", n,
                      u->size - u->pos);
    const uint8_t * p = u->data + u->pos;
    u->pos += (size_t)n;
    if (n == 0)
        return push(u, make_int(u, 0));
    int neg = (p[n - 1] & 0x80) != 0;
    /* bytes above the 8th must be pure sign extension */
    for (uint64_t i = 8; i < n; i++)
        if (p[i] != (neg ? 0xff : 0x00))
            return up_err(u, Q7_ERR_LIMIT, "integer of %" PRIu64 " bytes does not fit in 64 "
                          "bits", n);
    int k = n < 8 ? (int)n : 8;
    uint64_t v = rd_le(p, k);
    if (k < 8 && neg)
        v |= ~(uint64_t)0 << (8 * k);
    if (k == 8 && n > 8 && (((v >> 63) & 1) != (uint64_t)neg))
        return up_err(u, Q7_ERR_LIMIT, "integer does not fit in 64 bits");
    return push(u, make_int(u, (int64_t)v));
}

/* INT / LONG text forms ("00"/"01" are False/True in protocol 0). */
static enum q7_status op_int_text(struct up * u)
{
    const char * line;
    size_t len;
    enum q7_status st = read_line(u, &line, &len);
    if (st)
        return st;
    if (u->op == 'I' && len == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1'))
        return push(u, q7_py_bool(u->h, line[1] == '1'));
    if (u->op == 'L' && len && line[len - 1] == 'L')
        len--;
    size_t i = 0;
    int neg = 0;
    if (i < len && (line[i] == '-' || line[i] == '+'))
        neg = line[i++] == '-';
    if (i == len)
        return up_err(u, Q7_ERR_FORMAT, "empty integer");
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (line[i] < '0' || line[i] > '9')
            return up_err(u, Q7_ERR_FORMAT, "bad integer '%.*s'", (int)len, line);
        unsigned d = (unsigned)(line[i] - '0');
        if (v > (lim - d) / 10)
            return up_err(u, Q7_ERR_LIMIT, "integer '%.*s' does not fit in 64 bits", (int)len,
                          line);
        v = v * 10 + d;
    }
    return push(u, make_int(u, neg ? (int64_t)(0 - v) : (int64_t)v));
}

static enum q7_status op_float_text(struct up * u)
{
    const char * line;
    size_t len;
    enum q7_status st = read_line(u, &line, &len);
    if (st)
        return st;
    char buf[MAX_LINE + 1];
    memcpy(buf, line, len);
    buf[len] = '\0';
    char * end;
    double v = strtod(buf, &end);
    if (len == 0 || *end != '\0')
        return up_err(u, Q7_ERR_FORMAT, "bad float '%s'", buf);
    return push(u, q7_py_float(u->h, v));
}

/* ---- globals, REDUCE allow-list, NEWOBJ, BUILD ----------------------------------------- */

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

static enum q7_status op_global(struct up * u)
{
    const char * mod, * name;
    size_t mlen, nlen;
    enum q7_status st = read_line(u, &mod, &mlen);
    if (st == Q7_OK)
        st = read_line(u, &name, &nlen);
    if (st)
        return st;
    if (!is_name(mod, mlen) || !is_name(name, nlen))
        return up_err(u, Q7_ERR_FORMAT, "bad global name");
    char m[MAX_LINE + 1], n[MAX_LINE + 1];
    memcpy(m, mod, mlen);
    m[mlen] = '\0';
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    return push(u, q7_py_global(u->h, m, n));
}

static enum q7_status op_stack_global(struct up * u)
{
    struct q7_py * name, * mod;
    enum q7_status st = pop(u, &name);
    if (st == Q7_OK)
        st = pop(u, &mod);
    if (st)
        return st;
    if (mod->kind != Q7_PY_STR || name->kind != Q7_PY_STR ||
        !is_name(mod->v.str.s, mod->v.str.len) || !is_name(name->v.str.s, name->v.str.len) ||
        strlen(mod->v.str.s) != mod->v.str.len || strlen(name->v.str.s) != name->v.str.len)
        return up_err(u, Q7_ERR_FORMAT, "module and name must be strings");
    return push(u, q7_py_global(u->h, mod->v.str.s, name->v.str.s));
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
static enum q7_status rebuild_tensor(struct up * u, const struct q7_py * args, struct q7_py ** out)
{
    size_t n = args->v.seq.len;
    struct q7_py * const * a = args->v.seq.items;
    if (n < 4 || n > 7)
        return up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2 takes 4 to 7 arguments, got %zu", n);
    int64_t offset, rg = 0;
    if (a[0]->kind != Q7_PY_STORAGE || !q7_py_as_int(a[1], &offset) ||
        !is_tuple_or_list(a[2]) || !is_tuple_or_list(a[3]) || (n > 4 && !q7_py_as_int(a[4], &rg)))
        return up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: bad arguments (storage, offset, "
                      "size, stride, requires_grad)");
    size_t nd = a[2]->v.seq.len;
    if (nd > Q7_MAX_DIMS || a[3]->v.seq.len != nd)
        return up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: %zu dimensions and %zu strides "
                      "(at most %d)", nd, a[3]->v.seq.len, Q7_MAX_DIMS);
    struct q7_py * t = q7_py_new(u->h, Q7_PY_TENSOR);
    if (!t)
        return up_wrap(u, Q7_ERR_OOM);
    t->v.tensor.storage = a[0];
    t->v.tensor.offset = offset;
    t->v.tensor.ndim = (int)nd;
    t->v.tensor.requires_grad = rg != 0;
    for (size_t d = 0; d < nd; d++) {
        if (!q7_py_as_int(a[2]->v.seq.items[d], &t->v.tensor.shape[d]) ||
            !q7_py_as_int(a[3]->v.seq.items[d], &t->v.tensor.stride[d]))
            return up_err(u, Q7_ERR_FORMAT, "_rebuild_tensor_v2: size and stride must be ints");
    }
    enum q7_status st = q7_py_tensor_check(t);
    if (st)
        return up_wrap(u, st);
    *out = t;
    return Q7_OK;
}

/* torch._utils._rebuild_parameter(data, requires_grad, hooks[, state]) */
static enum q7_status rebuild_parameter(struct up * u, const struct q7_py * args,
                                        struct q7_py ** out)
{
    int64_t rg;
    if (args->v.seq.len < 2 || args->v.seq.len > 4 || args->v.seq.items[0]->kind != Q7_PY_TENSOR ||
        !q7_py_as_int(args->v.seq.items[1], &rg))
        return up_err(u, Q7_ERR_FORMAT, "_rebuild_parameter: bad arguments (tensor, "
                      "requires_grad, hooks)");
    struct q7_py * p = q7_py_new(u->h, Q7_PY_TENSOR);
    if (!p)
        return up_wrap(u, Q7_ERR_OOM);
    p->v.tensor = args->v.seq.items[0]->v.tensor;
    p->v.tensor.requires_grad = rg != 0;
    p->v.tensor.is_parameter = 1;
    *out = p;
    return Q7_OK;
}

/* collections.OrderedDict([pairs]) */
static enum q7_status make_dict(struct up * u, const struct q7_py * args, struct q7_py ** out)
{
    struct q7_py * d = q7_py_new(u->h, Q7_PY_DICT);
    if (!d)
        return up_wrap(u, Q7_ERR_OOM);
    if (args->v.seq.len > 1 || (args->v.seq.len == 1 && !is_tuple_or_list(args->v.seq.items[0])))
        return up_err(u, Q7_ERR_FORMAT, "OrderedDict takes one list of pairs");
    const struct q7_py * pairs = args->v.seq.len ? args->v.seq.items[0] : NULL;
    for (size_t i = 0; pairs && i < pairs->v.seq.len; i++) {
        const struct q7_py * kv = pairs->v.seq.items[i];
        if (!is_tuple_or_list(kv) || kv->v.seq.len != 2)
            return up_err(u, Q7_ERR_FORMAT, "OrderedDict item %zu is not a pair", i);
        enum q7_status st = dict_add(u, d, kv->v.seq.items[0], kv->v.seq.items[1]);
        if (st)
            return st;
    }
    *out = d;
    return Q7_OK;
}

/* set(iterable) / frozenset(iterable) */
static enum q7_status make_set(struct up * u, const struct q7_py * args, struct q7_py ** out)
{
    struct q7_py * s = q7_py_new(u->h, Q7_PY_SET);
    if (!s)
        return up_wrap(u, Q7_ERR_OOM);
    const struct q7_py * it = args->v.seq.len ? args->v.seq.items[0] : NULL;
    if (args->v.seq.len > 1 || (it && !is_tuple_or_list(it) && it->kind != Q7_PY_SET))
        return up_err(u, Q7_ERR_FORMAT, "set takes one list");
    for (size_t i = 0; it && i < it->v.seq.len; i++) {
        enum q7_status st = seq_add(u, s, it->v.seq.items[i]);
        if (st)
            return st;
    }
    *out = s;
    return Q7_OK;
}

/* _codecs.encode(str, encoding): how protocol 2 pickles bytes under Python 3 */
static enum q7_status codecs_encode(struct up * u, const struct q7_py * args, struct q7_py ** out)
{
    const struct q7_py * s = args->v.seq.len ? args->v.seq.items[0] : NULL;
    const char * enc = args->v.seq.len > 1 ? q7_py_as_str(args->v.seq.items[1]) : "utf-8";
    if (!s || s->kind != Q7_PY_STR || !enc || args->v.seq.len > 3)
        return up_err(u, Q7_ERR_FORMAT, "_codecs.encode takes (str, encoding)");
    if (strcmp(enc, "utf-8") == 0 || strcmp(enc, "utf8") == 0) {
        *out = q7_py_bytes(u->h, s->v.str.s, s->v.str.len);
        return *out ? Q7_OK : up_wrap(u, Q7_ERR_OOM);
    }
    if (strcmp(enc, "latin1") != 0 && strcmp(enc, "latin-1") != 0 &&
        strcmp(enc, "iso-8859-1") != 0)
        return up_err(u, Q7_ERR_UNSUPPORTED, "_codecs.encode to '%.40s' is not supported", enc);
    uint8_t * buf = malloc(s->v.str.len + 1);
    if (!buf)
        return up_err(u, Q7_ERR_OOM, "out of memory");
    size_t n = 0;
    const uint8_t * p = (const uint8_t *)s->v.str.s;
    for (size_t i = 0; i < s->v.str.len;) {
        uint32_t cp;
        size_t k = utf8_next(p + i, s->v.str.len - i, &cp);
        if (!k || cp > 0xff) {
            free(buf);
            return up_err(u, Q7_ERR_FORMAT, "_codecs.encode: character beyond latin-1");
        }
        buf[n++] = (uint8_t)cp;
        i += k;
    }
    *out = q7_py_bytes(u->h, buf, n);
    free(buf);
    return *out ? Q7_OK : up_wrap(u, Q7_ERR_OOM);
}

/* An inert instance recording the constructor and its arguments (numpy scalars, dtypes,
 * torch.device): nothing is computed from them here. */
static enum q7_status make_inert(struct up * u, const struct q7_py * g, struct q7_py * args,
                                 struct q7_py ** out)
{
    struct q7_py * o = q7_py_object(u->h, g->v.global.module, g->v.global.name);
    if (!o)
        return up_wrap(u, Q7_ERR_OOM);
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
static enum q7_status call_allowed(struct up * u, const struct q7_py * fn, struct q7_py * args,
                                   int nested, struct q7_py ** res)
{
    *res = NULL;
    if (fn->kind != Q7_PY_GLOBAL)
        return up_err(u, Q7_ERR_FORMAT, "REDUCE on something that is not a global");
    const char * m = fn->v.global.module, * n = fn->v.global.name;
    if (args->kind != Q7_PY_TUPLE)
        return up_err(u, Q7_ERR_FORMAT, "REDUCE %s.%s: arguments are not a tuple", m, n);
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
            return up_err(u, Q7_ERR_FORMAT, "_rebuild_from_type_v2 takes (func, type, args, "
                          "state)");
        return call_allowed(u, a[0], a[2], 1, res);
    }
    if (global_is(fn, "_codecs", "encode"))
        return codecs_encode(u, args, res);
    if (global_is(fn, "torch", "Size") && args->v.seq.len == 1 && is_tuple_or_list(a[0])) {
        struct q7_py * t = q7_py_new(u->h, Q7_PY_TUPLE); /* torch.Size is a tuple */
        if (!t)
            return up_wrap(u, Q7_ERR_OOM);
        for (size_t i = 0; i < a[0]->v.seq.len; i++) {
            enum q7_status st = seq_add(u, t, a[0]->v.seq.items[i]);
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
    return up_err(u, Q7_ERR_UNSUPPORTED, "pickle calls %s.%s, which q7 refuses to execute", m,
                  n);
}

static enum q7_status op_reduce(struct up * u)
{
    struct q7_py * args, * fn, * res;
    enum q7_status st = pop(u, &args);
    if (st == Q7_OK)
        st = pop(u, &fn);
    if (st == Q7_OK)
        st = call_allowed(u, fn, args, 0, &res);
    if (st)
        return st;
    return push(u, res);
}

static enum q7_status op_newobj(struct up * u, int ex)
{
    struct q7_py * cls, * args, * kwargs = NULL, * res = NULL;
    enum q7_status st = ex ? pop(u, &kwargs) : Q7_OK;
    if (st == Q7_OK)
        st = pop(u, &args);
    if (st == Q7_OK)
        st = pop(u, &cls);
    if (st)
        return st;
    if (cls->kind != Q7_PY_GLOBAL || args->kind != Q7_PY_TUPLE ||
        (kwargs && kwargs->kind != Q7_PY_DICT))
        return up_err(u, Q7_ERR_FORMAT, "needs a class, an argument tuple%s",
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
    return push(u, res);
}

/* Copies the items of dict `src` into `dst`. */
static enum q7_status merge_dict(struct up * u, struct q7_py * dst, const struct q7_py * src)
{
    for (size_t i = 0; i < src->v.dict.len; i++) {
        enum q7_status st = dict_add(u, dst, src->v.dict.keys[i], src->v.dict.values[i]);
        if (st)
            return st;
    }
    return Q7_OK;
}

/* BUILD: obj.__dict__.update(state), or (state, slotstate) with both merged. Never calls a
 * __setstate__: for a state that is not a dict the raw state is kept on the object. */
static enum q7_status op_build(struct up * u)
{
    struct q7_py * state, * obj;
    enum q7_status st = pop(u, &state);
    if (st == Q7_OK)
        st = peek(u, &obj);
    if (st)
        return st;
    if (obj->kind != Q7_PY_OBJECT) {
        /* tensors, parameters and dicts (OrderedDict) carry no state q7 needs */
        if (obj->kind == Q7_PY_TENSOR || obj->kind == Q7_PY_DICT || state->kind == Q7_PY_NONE)
            return Q7_OK;
        return up_err(u, Q7_ERR_FORMAT, "BUILD on an object of kind %d", (int)obj->kind);
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
            return up_wrap(u, Q7_ERR_OOM);
        obj->v.object.state = cur;
    }
    for (int i = 0; i < 2; i++) {
        if (parts[i] && parts[i]->kind == Q7_PY_DICT && (st = merge_dict(u, cur, parts[i])))
            return st;
    }
    return Q7_OK;
}

/* BINPERSID ('storage', torch.<T>Storage, key, location, numel[, view_metadata]) */
static enum q7_status op_persid(struct up * u)
{
    struct q7_py * pid;
    enum q7_status st = pop(u, &pid);
    if (st)
        return st;
    const char * what = "('storage', <storage class>, key, location, numel)";
    if (pid->kind != Q7_PY_TUPLE || pid->v.seq.len < 5 || pid->v.seq.len > (u->legacy ? 6 : 5))
        return up_err(u, Q7_ERR_FORMAT, "persistent id is not %s", what);
    struct q7_py * const * a = pid->v.seq.items;
    const char * tag = q7_py_as_str(a[0]), * key = q7_py_as_str(a[2]);
    int64_t numel;
    if (!tag || strcmp(tag, "storage") != 0 || a[1]->kind != Q7_PY_GLOBAL || !key ||
        !q7_py_as_int(a[4], &numel))
        return up_err(u, Q7_ERR_FORMAT, "persistent id is not %s", what);
    if (pid->v.seq.len == 6 && a[5]->kind != Q7_PY_NONE)
        return up_err(u, Q7_ERR_UNSUPPORTED, "storage '%s' is a view (legacy format): not "
                      "supported", key);
    enum q7_dtype dt;
    if (strcmp(a[1]->v.global.module, "torch") != 0 || storage_dtype(a[1]->v.global.name, &dt))
        return up_err(u, Q7_ERR_UNSUPPORTED, "storage class %s.%s is not supported",
                      a[1]->v.global.module, a[1]->v.global.name);
    size_t bytes;
    if (numel < 0 || !q7_size_mul((size_t)numel, q7_dtype_size(dt), &bytes) ||
        bytes > (size_t)INT64_MAX)
        return up_err(u, Q7_ERR_LIMIT, "storage '%s' of %" PRId64 " elements is absurd", key,
                      numel);
    const uint8_t * data = NULL;
    if (u->resolve) {
        data = u->resolve(u->user, key, bytes);
        if (!data)
            return up_wrap(u, Q7_ERR_FORMAT);
    }
    struct q7_py * s = q7_py_storage_new(u->h, dt, key, numel, data);
    if (!s)
        return up_wrap(u, Q7_ERR_OOM);
    if (u->n_storages == u->storages_cap) {
        size_t cap = u->storages_cap ? u->storages_cap * 2 : 64;
        struct q7_py ** arr = q7_pyheap_alloc(u->h, cap * sizeof *arr);
        if (!arr)
            return up_wrap(u, Q7_ERR_OOM);
        if (u->n_storages)
            memcpy(arr, u->storages, u->n_storages * sizeof *arr);
        u->storages = arr;
        u->storages_cap = cap;
    }
    u->storages[u->n_storages++] = s;
    return push(u, s);
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Pops the items above the innermost mark into a container of `kind`. */
static enum q7_status op_collect(struct up * u, enum q7_py_kind kind)
{
    size_t start;
    struct q7_py * o;
    enum q7_status st = pop_mark(u, &start);
    if (st == Q7_OK)
        st = make_seq(u, kind, start, &o);
    if (st)
        return st;
    u->sp = start;
    return push(u, o);
}

static enum q7_status op_tuple_n(struct up * u, size_t n)
{
    if (u->sp < floor_of(u) + n)
        return up_err(u, Q7_ERR_FORMAT, "stack underflow");
    struct q7_py * o;
    enum q7_status st = make_seq(u, Q7_PY_TUPLE, u->sp - n, &o);
    if (st)
        return st;
    u->sp -= n;
    return push(u, o);
}

/* APPENDS / ADDITEMS / SETITEMS: items above the mark go into the container below it. */
static enum q7_status op_add_items(struct up * u)
{
    size_t start;
    struct q7_py * target;
    enum q7_status st = pop_mark(u, &start);
    if (st)
        return st;
    size_t end = u->sp;
    u->sp = start;
    if ((st = peek(u, &target)))
        return st;
    if (u->op == 'u') {
        if (target->kind != Q7_PY_DICT)
            return up_err(u, Q7_ERR_FORMAT, "SETITEMS on something that is not a dict");
        if ((end - start) % 2)
            return up_err(u, Q7_ERR_FORMAT, "odd number of items for a dict");
        for (size_t i = start; i < end; i += 2)
            if ((st = dict_add(u, target, u->stack[i], u->stack[i + 1])))
                return st;
        return Q7_OK;
    }
    enum q7_py_kind want = u->op == 'e' ? Q7_PY_LIST : Q7_PY_SET;
    if (target->kind != want)
        return up_err(u, Q7_ERR_FORMAT, "target is not a %s", u->op == 'e' ? "list" : "set");
    for (size_t i = start; i < end; i++)
        if ((st = seq_add(u, target, u->stack[i])))
            return st;
    return Q7_OK;
}

static enum q7_status op_dict_marked(struct up * u)
{
    size_t start;
    enum q7_status st = pop_mark(u, &start);
    if (st)
        return st;
    if ((u->sp - start) % 2)
        return up_err(u, Q7_ERR_FORMAT, "odd number of items for a dict");
    struct q7_py * d = q7_py_new(u->h, Q7_PY_DICT);
    if (!d)
        return up_wrap(u, Q7_ERR_OOM);
    for (size_t i = start; i < u->sp; i += 2)
        if ((st = dict_add(u, d, u->stack[i], u->stack[i + 1])))
            return st;
    u->sp = start;
    return push(u, d);
}

static enum q7_status op_put_get(struct up * u)
{
    uint64_t idx;
    enum q7_status st = Q7_OK;
    int put = u->op == 'p' || u->op == 'q' || u->op == 'r';
    if (u->op == 'p' || u->op == 'g') {
        const char * line;
        size_t len;
        if ((st = read_line(u, &line, &len)))
            return st;
        idx = 0;
        if (len == 0 || len > 18)
            return up_err(u, Q7_ERR_FORMAT, "bad memo key");
        for (size_t i = 0; i < len; i++) {
            if (line[i] < '0' || line[i] > '9')
                return up_err(u, Q7_ERR_FORMAT, "bad memo key");
            idx = idx * 10 + (uint64_t)(line[i] - '0');
        }
    } else {
        int n = u->op == 'q' || u->op == 'h' ? 1 : 4;
        if ((st = need(u, (size_t)n)))
            return st;
        idx = rd_le(u->data + u->pos, n);
        u->pos += (size_t)n;
    }
    if (!put)
        return memo_get(u, idx);
    struct q7_py * top;
    if ((st = peek(u, &top)))
        return st;
    return memo_put(u, idx, top);
}

static enum q7_status step(struct up * u, int * stop)
{
    struct q7_py * a, * b, * o;
    enum q7_status st;
    switch (u->op) {
    case 0x80: /* PROTO */
        if ((st = need(u, 1)))
            return st;
        if (u->data[u->pos] > MAX_PROTO)
            return up_err(u, Q7_ERR_UNSUPPORTED, "protocol %d", u->data[u->pos]);
        u->pos++;
        return Q7_OK;
    case 0x95: /* FRAME: a length hint only */
        if ((st = need(u, 8)))
            return st;
        if (rd_le(u->data + u->pos, 8) > u->size - u->pos - 8)
            return up_err(u, Q7_ERR_FORMAT, "frame longer than the stream");
        u->pos += 8;
        return Q7_OK;
    case '.':
        *stop = 1;
        return pop(u, &u->root); /* like Python: the top of the innermost frame */
    case '(':
        return push_mark(u);
    case '0':
    case '1': {
        if (u->op == '0' && u->sp > floor_of(u)) {
            u->sp--;
            return Q7_OK;
        }
        /* POP_MARK, or Python's POP on an empty frame: drop the mark and what is above it */
        size_t start;
        if ((st = pop_mark(u, &start)))
            return st;
        u->sp = start;
        return Q7_OK;
    }
    case '2':
        if ((st = peek(u, &a)))
            return st;
        return push(u, a);
    case 'N':
        return push(u, q7_py_none(u->h));
    case 0x88:
    case 0x89:
        return push(u, q7_py_bool(u->h, u->op == 0x88));
    case 'I':
    case 'L':
        return op_int_text(u);
    case 'J':
        if ((st = need(u, 4)))
            return st;
        a = make_int(u, (int32_t)(uint32_t)rd_le(u->data + u->pos, 4));
        u->pos += 4;
        return push(u, a);
    case 'K':
    case 'M': {
        int n = u->op == 'K' ? 1 : 2;
        if ((st = need(u, (size_t)n)))
            return st;
        a = make_int(u, (int64_t)rd_le(u->data + u->pos, n));
        u->pos += (size_t)n;
        return push(u, a);
    }
    case 0x8a:
        return op_long_bin(u, 1);
    case 0x8b:
        return op_long_bin(u, 4);
    case 'F':
        return op_float_text(u);
    case 'G': {
        if ((st = need(u, 8)))
            return st;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits = (bits << 8) | u->data[u->pos + (size_t)i]; /* big-endian */
        u->pos += 8;
        double v;
        memcpy(&v, &bits, sizeof v);
        return push(u, q7_py_float(u->h, v));
    }
    case 'X':
    case 'T':
        return op_string(u, 4, Q7_PY_STR);
    case 0x8c:
    case 'U':
        return op_string(u, 1, Q7_PY_STR);
    case 0x8d:
        return op_string(u, 8, Q7_PY_STR);
    case 'B':
        return op_string(u, 4, Q7_PY_BYTES);
    case 'C':
        return op_string(u, 1, Q7_PY_BYTES);
    case 0x8e:
        return op_string(u, 8, Q7_PY_BYTES);
    case ')':
        return push(u, q7_py_new(u->h, Q7_PY_TUPLE));
    case 't':
        return op_collect(u, Q7_PY_TUPLE);
    case 0x85:
    case 0x86:
    case 0x87:
        return op_tuple_n(u, (size_t)(u->op - 0x84));
    case ']':
        return push(u, q7_py_new(u->h, Q7_PY_LIST));
    case 'l':
        return op_collect(u, Q7_PY_LIST);
    case 'a':
        if ((st = pop(u, &a)) || (st = peek(u, &b)))
            return st;
        if (b->kind != Q7_PY_LIST)
            return up_err(u, Q7_ERR_FORMAT, "APPEND to something that is not a list");
        return seq_add(u, b, a);
    case 'e':
    case 0x90:
    case 'u':
        return op_add_items(u);
    case '}':
        return push(u, q7_py_new(u->h, Q7_PY_DICT));
    case 'd':
        return op_dict_marked(u);
    case 's':
        if ((st = pop(u, &a)) || (st = pop(u, &b)) || (st = peek(u, &o)))
            return st;
        if (o->kind != Q7_PY_DICT)
            return up_err(u, Q7_ERR_FORMAT, "SETITEM on something that is not a dict");
        return dict_add(u, o, b, a);
    case 0x8f:
        return push(u, q7_py_new(u->h, Q7_PY_SET));
    case 0x91:
        return op_collect(u, Q7_PY_SET);
    case 'p':
    case 'q':
    case 'r':
    case 'g':
    case 'h':
    case 'j':
        return op_put_get(u);
    case 0x94:
        if ((st = peek(u, &a)))
            return st;
        return memo_put(u, u->memo_count, a); /* MEMOIZE stores at len(memo) */
    case 'c':
        return op_global(u);
    case 0x93:
        return op_stack_global(u);
    case 'R':
        return op_reduce(u);
    case 0x81:
        return op_newobj(u, 0);
    case 0x92:
        return op_newobj(u, 1);
    case 'b':
        return op_build(u);
    case 'Q':
        return op_persid(u);
    case 'P':
    case 'S':
    case 'o':
    case 'i':
    case 0x82:
    case 0x83:
    case 0x84:
    case 0x96:
    case 0x97:
    case 0x98:
        return up_err(u, Q7_ERR_UNSUPPORTED, "opcode not supported by q7's safe unpickler");
    default:
        return up_err(u, Q7_ERR_FORMAT, "invalid opcode");
    }
}

enum q7_status q7_pickle_run(const uint8_t * data, size_t size,
                             const struct q7_ckpt_limits * limits, struct q7_pyheap * heap,
                             q7_storage_resolver resolve, void * user, int legacy,
                             struct q7_pickle_out * out)
{
    memset(out, 0, sizeof *out);
    struct q7_ckpt_limits deflim = q7_ckpt_limits_default();
    if (!limits)
        limits = &deflim;
    if (!heap || (!data && size))
        return q7_error_set(Q7_ERR_ARG, "pickle: NULL heap or data");
    if (size > limits->max_pickle_bytes)
        return q7_error_set(Q7_ERR_LIMIT, "pickle: %zu bytes, more than the %zu allowed", size,
                            limits->max_pickle_bytes);
    struct up * u = calloc(1, sizeof *u);
    if (!u)
        return q7_error_set(Q7_ERR_OOM, "pickle: out of memory");
    u->data = data;
    u->size = size;
    u->lim = limits;
    u->h = heap;
    u->objects0 = q7_pyheap_object_count(heap);
    u->bytes0 = q7_arena_used(q7_pyheap_arena(heap));
    u->resolve = resolve;
    u->user = user;
    u->legacy = legacy;
    enum q7_status st = Q7_OK;
    int stop = 0;
    while (!stop) {
        u->op_pos = u->pos;
        if (u->pos >= u->size) {
            u->op = 0;
            st = q7_error_set(Q7_ERR_FORMAT, "pickle: truncated at offset %zu: no STOP opcode",
                              u->pos);
            break;
        }
        u->op = u->data[u->pos++];
        if ((st = step(u, &stop)) || (st = check_objects(u)))
            break;
    }
    if (st == Q7_OK) {
        out->root = u->root;
        out->consumed = u->pos;
        out->storages = u->storages;
        out->n_storages = u->n_storages;
    }
    free(u->stack);
    free(u->marks);
    free(u->memo);
    free(u);
    return st;
}

enum q7_status q7_pickle_load(const uint8_t * data, size_t size,
                              const struct q7_ckpt_limits * limits, struct q7_pyheap * heap,
                              q7_storage_resolver resolve, void * user, struct q7_py ** out)
{
    struct q7_pickle_out res;
    *out = NULL;
    enum q7_status st = q7_pickle_run(data, size, limits, heap, resolve, user, 0, &res);
    if (st == Q7_OK)
        *out = res.root;
    return st;
}
