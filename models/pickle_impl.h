/* The unpickler's state and stack, shared by models/pickle.c (the opcode loop, strings,
 * numbers, containers, memo) and models/pickle_objects.c (the opcodes that make objects:
 * GLOBAL, REDUCE's allow-list, NEWOBJ, BUILD, BINPERSID). Private: never installed. */
#ifndef Q7_PICKLE_IMPL_H
#define Q7_PICKLE_IMPL_H

#include "models/ckpt_impl.h"
#include "models/pyobj_impl.h"

#include <stdlib.h>

#define Q7_UP_SMALL_INT_MIN (-1)
#define Q7_UP_SMALL_INT_MAX 255 /* BININT1 range: shared objects instead of one per opcode */
#define Q7_UP_MAX_LINE 256      /* longest text argument (GLOBAL names, INT, FLOAT lines) */

/* One unpickling run over data[0, size). */
struct q7_up {
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
    struct q7_py * small[Q7_UP_SMALL_INT_MAX - Q7_UP_SMALL_INT_MIN + 1];
    struct q7_py ** storages;
    size_t n_storages, storages_cap;
    struct q7_py * root; /* what STOP popped */
};

/* Sets "pickle: offset N, opcode 0xXX NAME: <message>" and returns status. */
enum q7_status q7_up_err(struct q7_up * u, enum q7_status status, const char * fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds the opcode's position in front of a message set further down; returns status. */
enum q7_status q7_up_wrap(struct q7_up * u, enum q7_status status);
/* A newline-terminated argument (protocol 0 text) of at most Q7_UP_MAX_LINE bytes; *len
 * excludes the newline. */
enum q7_status q7_up_read_line(struct q7_up * u, const char ** line, size_t * len);
/* Decodes one UTF-8 sequence of s[0, n) (surrogates allowed, as pickle's 'surrogatepass');
 * returns its length, 0 when malformed. */
size_t q7_up_utf8_next(const uint8_t * s, size_t n, uint32_t * cp);
/* Appends to a sequence / sets a dict key within max_container_len. */
enum q7_status q7_up_seq_add(struct q7_up * u, struct q7_py * seq, struct q7_py * item);
enum q7_status q7_up_dict_add(struct q7_up * u, struct q7_py * d, struct q7_py * k,
                              struct q7_py * v);

/* The object-making opcodes (models/pickle_objects.c). GLOBAL, STACK_GLOBAL: an inert
 * (module, name). REDUCE: the allow-list only. NEWOBJ(_EX): an inert instance. BUILD: state
 * into its __dict__. BINPERSID: a torch storage. */
enum q7_status q7_up_op_global(struct q7_up * u);
enum q7_status q7_up_op_stack_global(struct q7_up * u);
enum q7_status q7_up_op_reduce(struct q7_up * u);
enum q7_status q7_up_op_newobj(struct q7_up * u, int ex);
enum q7_status q7_up_op_build(struct q7_up * u);
enum q7_status q7_up_op_persid(struct q7_up * u);

/* The stack: the items above the innermost mark are the current frame. */
static inline enum q7_status q7_up_push(struct q7_up * u, struct q7_py * o)
{
    if (!o)
        return q7_up_wrap(u, Q7_ERR_OOM);
    if (u->sp == u->stack_cap) {
        if (u->sp >= u->lim->max_stack)
            return q7_up_err(u, Q7_ERR_LIMIT, "stack deeper than %zu", u->lim->max_stack);
        size_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        if (cap > u->lim->max_stack)
            cap = u->lim->max_stack;
        struct q7_py ** s = realloc(u->stack, cap * sizeof *s);
        if (!s)
            return q7_up_err(u, Q7_ERR_OOM, "out of memory for the stack");
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = o;
    return Q7_OK;
}

/* Index of the first item above the innermost mark (0 without marks). */
static inline size_t q7_up_floor(const struct q7_up * u)
{
    return u->n_marks ? u->marks[u->n_marks - 1] : 0;
}

static inline enum q7_status q7_up_pop(struct q7_up * u, struct q7_py ** out)
{
    *out = NULL;
    if (u->sp <= q7_up_floor(u))
        return q7_up_err(u, Q7_ERR_FORMAT, "stack underflow");
    *out = u->stack[--u->sp];
    return Q7_OK;
}

static inline enum q7_status q7_up_peek(struct q7_up * u, struct q7_py ** out)
{
    *out = NULL;
    if (u->sp <= q7_up_floor(u))
        return q7_up_err(u, Q7_ERR_FORMAT, "stack underflow");
    *out = u->stack[u->sp - 1];
    return Q7_OK;
}

#endif
