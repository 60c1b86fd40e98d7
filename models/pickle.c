/* Safe unpickler for the protocol-2 subset that torch.save writes (plus the common protocol
 * 0/1/4 opcodes of plain data).
 *
 * Nothing is ever executed. GLOBAL/STACK_GLOBAL push an inert (module, name) pair; NEWOBJ
 * makes an inert instance that BUILD fills with state; REDUCE is honoured only for a short
 * allow-list of data constructors (OrderedDict, set, tensor rebuilders, _codecs.encode, numpy
 * scalars), anything else is refused naming the callable. Persistent ids of torch storages
 * are resolved through the caller's resolver. Those object-making opcodes are in
 * models/pickle_objects.c; this file holds the loop, the stack, memo, strings and numbers.
 *
 * Hostile input: every read is checked against the end of the stream; strings cannot be
 * longer than what is left; stack, marks, memo, objects and container lengths are bounded by
 * q7_ckpt_limits; errors say "pickle: offset N, opcode X: what". */
#include "models/pickle_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROTO 5
/* Heap bytes allowed per permitted object: with max_objects this bounds what containers and
 * string copies (set(list), _codecs.encode of a memoized string, ...) can amplify. */
#define BYTES_PER_OBJECT 256

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
enum q7_status q7_up_err(struct q7_up * u, enum q7_status status, const char * fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum q7_status q7_up_err(struct q7_up * u, enum q7_status status, const char * fmt, ...)
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
enum q7_status q7_up_wrap(struct q7_up * u, enum q7_status status)
{
    q7_error_wrap(status, "pickle: offset %zu, opcode 0x%02x %s", u->op_pos, u->op,
                  op_name(u->op));
    return status;
}

/* ---- reading ---------------------------------------------------------------------------- */

static enum q7_status need(struct q7_up * u, size_t n)
{
    if (n > u->size - u->pos)
        return q7_up_err(u, Q7_ERR_FORMAT, "truncated: needs %zu bytes, %zu left", n,
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
enum q7_status q7_up_read_line(struct q7_up * u, const char ** line, size_t * len)
{
    *line = NULL;
    *len = 0;
    size_t left = u->size - u->pos, scan = left < Q7_UP_MAX_LINE ? left : Q7_UP_MAX_LINE;
    const uint8_t * nl = memchr(u->data + u->pos, '\n', scan);
    if (!nl)
        return q7_up_err(u, Q7_ERR_FORMAT, left < Q7_UP_MAX_LINE ? "truncated: no end of line"
                                                        : "text argument longer than %d bytes",
                      Q7_UP_MAX_LINE);
    *line = (const char *)u->data + u->pos;
    *len = (size_t)(nl - (u->data + u->pos));
    u->pos += *len + 1;
    return Q7_OK;
}

/* ---- objects, stack, marks, memo ---------------------------------------------------------- */

static enum q7_status check_objects(struct q7_up * u)
{
    if (q7_pyheap_object_count(u->h) - u->objects0 > u->lim->max_objects)
        return q7_up_err(u, Q7_ERR_LIMIT, "more than %zu objects", u->lim->max_objects);
    size_t budget;
    if (!q7_size_mul(u->lim->max_objects, BYTES_PER_OBJECT, &budget))
        budget = SIZE_MAX;
    size_t used = q7_arena_used(q7_pyheap_arena(u->h)) - u->bytes0;
    if (used > budget)
        return q7_up_err(u, Q7_ERR_LIMIT, "objects take %zu bytes, more than the %zu allowed "
                         "(%d per object of max_objects)", used, budget, BYTES_PER_OBJECT);
    return Q7_OK;
}

static enum q7_status push_mark(struct q7_up * u)
{
    if (u->n_marks == u->marks_cap) {
        if (u->n_marks >= u->lim->max_stack)
            return q7_up_err(u, Q7_ERR_LIMIT, "marks nested deeper than %zu", u->lim->max_stack);
        size_t cap = u->marks_cap ? u->marks_cap * 2 : 32;
        if (cap > u->lim->max_stack)
            cap = u->lim->max_stack;
        size_t * m = realloc(u->marks, cap * sizeof *m);
        if (!m)
            return q7_up_err(u, Q7_ERR_OOM, "out of memory for marks");
        u->marks = m;
        u->marks_cap = cap;
    }
    u->marks[u->n_marks++] = u->sp;
    return Q7_OK;
}

/* Removes the innermost mark; the items above it are stack[*start .. u->sp). The caller
 * drops them by setting u->sp = *start. */
static enum q7_status pop_mark(struct q7_up * u, size_t * start)
{
    *start = u->sp;
    if (!u->n_marks)
        return q7_up_err(u, Q7_ERR_FORMAT, "no MARK on the stack");
    *start = u->marks[--u->n_marks];
    return Q7_OK;
}

static enum q7_status memo_put(struct q7_up * u, uint64_t idx, struct q7_py * o)
{
    if (idx >= u->lim->max_memo)
        return q7_up_err(u, Q7_ERR_LIMIT, "memo index %" PRIu64 " beyond the limit of %zu", idx,
                         u->lim->max_memo);
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 256;
        while (cap <= idx)
            cap *= 2;
        if (cap > u->lim->max_memo)
            cap = u->lim->max_memo;
        struct q7_py ** m = realloc(u->memo, cap * sizeof *m);
        if (!m)
            return q7_up_err(u, Q7_ERR_OOM, "out of memory for %zu memo entries", cap);
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo_count += u->memo[idx] == NULL;
    u->memo[idx] = o;
    return Q7_OK;
}

static enum q7_status memo_get(struct q7_up * u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx])
        return q7_up_err(u, Q7_ERR_FORMAT, "memo key %" PRIu64 " was never stored", idx);
    return q7_up_push(u, u->memo[idx]);
}

static struct q7_py * make_int(struct q7_up * u, int64_t v)
{
    if (v >= Q7_UP_SMALL_INT_MIN && v <= Q7_UP_SMALL_INT_MAX) {
        struct q7_py ** slot = &u->small[v - Q7_UP_SMALL_INT_MIN];
        if (!*slot)
            *slot = q7_py_int(u->h, v);
        return *slot;
    }
    return q7_py_int(u->h, v);
}

/* A container built from stack[start .. u->sp). */
static enum q7_status make_seq(struct q7_up * u, enum q7_py_kind kind, size_t start,
                               struct q7_py ** out)
{
    *out = NULL;
    size_t n = u->sp - start;
    if (n > u->lim->max_container_len)
        return q7_up_err(u, Q7_ERR_LIMIT, "%zu items, more than the %zu allowed", n,
                         u->lim->max_container_len);
    struct q7_py * o = q7_py_new(u->h, kind);
    if (!o)
        return q7_up_wrap(u, Q7_ERR_OOM);
    if (n) {
        o->v.seq.items = q7_pyheap_alloc(u->h, n * sizeof *o->v.seq.items);
        if (!o->v.seq.items)
            return q7_up_wrap(u, Q7_ERR_OOM);
        memcpy(o->v.seq.items, u->stack + start, n * sizeof *o->v.seq.items);
        o->v.seq.len = o->v.seq.cap = n;
    }
    *out = o;
    return Q7_OK;
}

enum q7_status q7_up_seq_add(struct q7_up * u, struct q7_py * seq, struct q7_py * item)
{
    if (seq->v.seq.len >= u->lim->max_container_len)
        return q7_up_err(u, Q7_ERR_LIMIT, "container longer than %zu items",
                         u->lim->max_container_len);
    enum q7_status st = q7_py_append(u->h, seq, item);
    return st ? q7_up_wrap(u, st) : Q7_OK;
}

enum q7_status q7_up_dict_add(struct q7_up * u, struct q7_py * d, struct q7_py * k,
                               struct q7_py * v)
{
    if (d->v.dict.len >= u->lim->max_container_len)
        return q7_up_err(u, Q7_ERR_LIMIT, "dict longer than %zu items", u->lim->max_container_len);
    enum q7_status st = q7_py_dict_set(u->h, d, k, v);
    return st ? q7_up_wrap(u, st) : Q7_OK;
}

/* ---- strings and numbers ---------------------------------------------------------------- */

/* Decodes one UTF-8 sequence (surrogates allowed, as pickle's 'surrogatepass'); returns its
 * length or 0 when malformed. */
size_t q7_up_utf8_next(const uint8_t * s, size_t n, uint32_t * cp)
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
        size_t k = q7_up_utf8_next(s + i, n - i, &cp);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Reads a length-prefixed string or bytes argument of `lenbytes` (1, 4 or 8) bytes. */
static enum q7_status op_string(struct q7_up * u, int lenbytes, enum q7_py_kind kind)
{
    enum q7_status st = need(u, (size_t)lenbytes);
    if (st)
        return st;
    uint64_t n = rd_le(u->data + u->pos, lenbytes);
    if (lenbytes == 4 && (u->op == 'T') && (n & 0x80000000u))
        return q7_up_err(u, Q7_ERR_FORMAT, "negative string length");
    u->pos += (size_t)lenbytes;
    if (n > u->size - u->pos)
        return q7_up_err(u, Q7_ERR_FORMAT, "string of %" PRIu64 " bytes but only %zu left in the "
                         "stream", n, u->size - u->pos);
    const uint8_t * s = u->data + u->pos;
    u->pos += (size_t)n;
    if (kind == Q7_PY_STR && !utf8_valid(s, (size_t)n)) {
        if (u->op == 'T' || u->op == 'U') /* Python 2 str: keep the raw bytes */
            kind = Q7_PY_BYTES;
        else
            return q7_up_err(u, Q7_ERR_FORMAT, "string is not valid UTF-8");
    }
    return q7_up_push(u, kind == Q7_PY_STR ? q7_py_str(u->h, (const char *)s, (size_t)n)
                                     : q7_py_bytes(u->h, s, (size_t)n));
}

/* LONG1/LONG4: little-endian two's complement of n bytes, which must fit in int64. */
static enum q7_status op_long_bin(struct q7_up * u, int lenbytes)
{
    enum q7_status st = need(u, (size_t)lenbytes);
    if (st)
        return st;
    uint64_t n = rd_le(u->data + u->pos, lenbytes);
    if (lenbytes == 4 && (n & 0x80000000u))
        return q7_up_err(u, Q7_ERR_FORMAT, "negative byte count");
    u->pos += (size_t)lenbytes;
    if (n > u->size - u->pos)
        return q7_up_err(u, Q7_ERR_FORMAT, "integer of %" PRIu64 " bytes but only %zu left", n,
                         u->size - u->pos);
    const uint8_t * p = u->data + u->pos;
    u->pos += (size_t)n;
    if (n == 0)
        return q7_up_push(u, make_int(u, 0));
    int neg = (p[n - 1] & 0x80) != 0;
    /* bytes above the 8th must be pure sign extension */
    for (uint64_t i = 8; i < n; i++)
        if (p[i] != (neg ? 0xff : 0x00))
            return q7_up_err(u, Q7_ERR_LIMIT, "integer of %" PRIu64 " bytes does not fit in 64 "
                             "bits", n);
    int k = n < 8 ? (int)n : 8;
    uint64_t v = rd_le(p, k);
    if (k < 8 && neg)
        v |= ~(uint64_t)0 << (8 * k);
    if (k == 8 && n > 8 && (((v >> 63) & 1) != (uint64_t)neg))
        return q7_up_err(u, Q7_ERR_LIMIT, "integer does not fit in 64 bits");
    return q7_up_push(u, make_int(u, (int64_t)v));
}

/* INT / LONG text forms ("00"/"01" are False/True in protocol 0). */
static enum q7_status op_int_text(struct q7_up * u)
{
    const char * line;
    size_t len;
    enum q7_status st = q7_up_read_line(u, &line, &len);
    if (st)
        return st;
    if (u->op == 'I' && len == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1'))
        return q7_up_push(u, q7_py_bool(u->h, line[1] == '1'));
    if (u->op == 'L' && len && line[len - 1] == 'L')
        len--;
    size_t i = 0;
    int neg = 0;
    if (i < len && (line[i] == '-' || line[i] == '+'))
        neg = line[i++] == '-';
    if (i == len)
        return q7_up_err(u, Q7_ERR_FORMAT, "empty integer");
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (line[i] < '0' || line[i] > '9')
            return q7_up_err(u, Q7_ERR_FORMAT, "bad integer '%.*s'", (int)len, line);
        unsigned d = (unsigned)(line[i] - '0');
        if (v > (lim - d) / 10)
            return q7_up_err(u, Q7_ERR_LIMIT, "integer '%.*s' does not fit in 64 bits", (int)len,
                             line);
        v = v * 10 + d;
    }
    return q7_up_push(u, make_int(u, neg ? (int64_t)(0 - v) : (int64_t)v));
}

static enum q7_status op_float_text(struct q7_up * u)
{
    const char * line;
    size_t len;
    enum q7_status st = q7_up_read_line(u, &line, &len);
    if (st)
        return st;
    char buf[Q7_UP_MAX_LINE + 1];
    memcpy(buf, line, len);
    buf[len] = '\0';
    char * end;
    double v = strtod(buf, &end);
    if (len == 0 || *end != '\0')
        return q7_up_err(u, Q7_ERR_FORMAT, "bad float '%s'", buf);
    return q7_up_push(u, q7_py_float(u->h, v));
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Pops the items above the innermost mark into a container of `kind`. */
static enum q7_status op_collect(struct q7_up * u, enum q7_py_kind kind)
{
    size_t start;
    struct q7_py * o;
    enum q7_status st = pop_mark(u, &start);
    if (st == Q7_OK)
        st = make_seq(u, kind, start, &o);
    if (st)
        return st;
    u->sp = start;
    return q7_up_push(u, o);
}

static enum q7_status op_tuple_n(struct q7_up * u, size_t n)
{
    if (u->sp < q7_up_floor(u) + n)
        return q7_up_err(u, Q7_ERR_FORMAT, "stack underflow");
    struct q7_py * o;
    enum q7_status st = make_seq(u, Q7_PY_TUPLE, u->sp - n, &o);
    if (st)
        return st;
    u->sp -= n;
    return q7_up_push(u, o);
}

/* APPENDS / ADDITEMS / SETITEMS: items above the mark go into the container below it. */
static enum q7_status op_add_items(struct q7_up * u)
{
    size_t start;
    struct q7_py * target;
    enum q7_status st = pop_mark(u, &start);
    if (st)
        return st;
    size_t end = u->sp;
    u->sp = start;
    if ((st = q7_up_peek(u, &target)))
        return st;
    if (u->op == 'u') {
        if (target->kind != Q7_PY_DICT)
            return q7_up_err(u, Q7_ERR_FORMAT, "SETITEMS on something that is not a dict");
        if ((end - start) % 2)
            return q7_up_err(u, Q7_ERR_FORMAT, "odd number of items for a dict");
        for (size_t i = start; i < end; i += 2)
            if ((st = q7_up_dict_add(u, target, u->stack[i], u->stack[i + 1])))
                return st;
        return Q7_OK;
    }
    enum q7_py_kind want = u->op == 'e' ? Q7_PY_LIST : Q7_PY_SET;
    if (target->kind != want)
        return q7_up_err(u, Q7_ERR_FORMAT, "target is not a %s", u->op == 'e' ? "list" : "set");
    for (size_t i = start; i < end; i++)
        if ((st = q7_up_seq_add(u, target, u->stack[i])))
            return st;
    return Q7_OK;
}

static enum q7_status op_dict_marked(struct q7_up * u)
{
    size_t start;
    enum q7_status st = pop_mark(u, &start);
    if (st)
        return st;
    if ((u->sp - start) % 2)
        return q7_up_err(u, Q7_ERR_FORMAT, "odd number of items for a dict");
    struct q7_py * d = q7_py_new(u->h, Q7_PY_DICT);
    if (!d)
        return q7_up_wrap(u, Q7_ERR_OOM);
    for (size_t i = start; i < u->sp; i += 2)
        if ((st = q7_up_dict_add(u, d, u->stack[i], u->stack[i + 1])))
            return st;
    u->sp = start;
    return q7_up_push(u, d);
}

static enum q7_status op_put_get(struct q7_up * u)
{
    uint64_t idx;
    enum q7_status st = Q7_OK;
    int put = u->op == 'p' || u->op == 'q' || u->op == 'r';
    if (u->op == 'p' || u->op == 'g') {
        const char * line;
        size_t len;
        if ((st = q7_up_read_line(u, &line, &len)))
            return st;
        idx = 0;
        if (len == 0 || len > 18)
            return q7_up_err(u, Q7_ERR_FORMAT, "bad memo key");
        for (size_t i = 0; i < len; i++) {
            if (line[i] < '0' || line[i] > '9')
                return q7_up_err(u, Q7_ERR_FORMAT, "bad memo key");
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
    if ((st = q7_up_peek(u, &top)))
        return st;
    return memo_put(u, idx, top);
}

static enum q7_status step(struct q7_up * u, int * stop)
{
    struct q7_py * a, * b, * o;
    enum q7_status st;
    switch (u->op) {
    case 0x80: /* PROTO */
        if ((st = need(u, 1)))
            return st;
        if (u->data[u->pos] > MAX_PROTO)
            return q7_up_err(u, Q7_ERR_UNSUPPORTED, "protocol %d", u->data[u->pos]);
        u->pos++;
        return Q7_OK;
    case 0x95: /* FRAME: a length hint only */
        if ((st = need(u, 8)))
            return st;
        if (rd_le(u->data + u->pos, 8) > u->size - u->pos - 8)
            return q7_up_err(u, Q7_ERR_FORMAT, "frame longer than the stream");
        u->pos += 8;
        return Q7_OK;
    case '.':
        *stop = 1;
        return q7_up_pop(u, &u->root); /* like Python: the top of the innermost frame */
    case '(':
        return push_mark(u);
    case '0':
    case '1': {
        if (u->op == '0' && u->sp > q7_up_floor(u)) {
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
        if ((st = q7_up_peek(u, &a)))
            return st;
        return q7_up_push(u, a);
    case 'N':
        return q7_up_push(u, q7_py_none(u->h));
    case 0x88:
    case 0x89:
        return q7_up_push(u, q7_py_bool(u->h, u->op == 0x88));
    case 'I':
    case 'L':
        return op_int_text(u);
    case 'J':
        if ((st = need(u, 4)))
            return st;
        a = make_int(u, (int32_t)(uint32_t)rd_le(u->data + u->pos, 4));
        u->pos += 4;
        return q7_up_push(u, a);
    case 'K':
    case 'M': {
        int n = u->op == 'K' ? 1 : 2;
        if ((st = need(u, (size_t)n)))
            return st;
        a = make_int(u, (int64_t)rd_le(u->data + u->pos, n));
        u->pos += (size_t)n;
        return q7_up_push(u, a);
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
        return q7_up_push(u, q7_py_float(u->h, v));
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
        return q7_up_push(u, q7_py_new(u->h, Q7_PY_TUPLE));
    case 't':
        return op_collect(u, Q7_PY_TUPLE);
    case 0x85:
    case 0x86:
    case 0x87:
        return op_tuple_n(u, (size_t)(u->op - 0x84));
    case ']':
        return q7_up_push(u, q7_py_new(u->h, Q7_PY_LIST));
    case 'l':
        return op_collect(u, Q7_PY_LIST);
    case 'a':
        if ((st = q7_up_pop(u, &a)) || (st = q7_up_peek(u, &b)))
            return st;
        if (b->kind != Q7_PY_LIST)
            return q7_up_err(u, Q7_ERR_FORMAT, "APPEND to something that is not a list");
        return q7_up_seq_add(u, b, a);
    case 'e':
    case 0x90:
    case 'u':
        return op_add_items(u);
    case '}':
        return q7_up_push(u, q7_py_new(u->h, Q7_PY_DICT));
    case 'd':
        return op_dict_marked(u);
    case 's':
        if ((st = q7_up_pop(u, &a)) || (st = q7_up_pop(u, &b)) || (st = q7_up_peek(u, &o)))
            return st;
        if (o->kind != Q7_PY_DICT)
            return q7_up_err(u, Q7_ERR_FORMAT, "SETITEM on something that is not a dict");
        return q7_up_dict_add(u, o, b, a);
    case 0x8f:
        return q7_up_push(u, q7_py_new(u->h, Q7_PY_SET));
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
        if ((st = q7_up_peek(u, &a)))
            return st;
        return memo_put(u, u->memo_count, a); /* MEMOIZE stores at len(memo) */
    case 'c':
        return q7_up_op_global(u);
    case 0x93:
        return q7_up_op_stack_global(u);
    case 'R':
        return q7_up_op_reduce(u);
    case 0x81:
        return q7_up_op_newobj(u, 0);
    case 0x92:
        return q7_up_op_newobj(u, 1);
    case 'b':
        return q7_up_op_build(u);
    case 'Q':
        return q7_up_op_persid(u);
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
        return q7_up_err(u, Q7_ERR_UNSUPPORTED, "opcode not supported by q7's safe unpickler");
    default:
        return q7_up_err(u, Q7_ERR_FORMAT, "invalid opcode");
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
    struct q7_up * u = calloc(1, sizeof *u);
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
