/* YAML → inert Python objects with PyYAML SafeLoader semantics (see yaml_cfg.h).
 *
 * libyaml's event parser does the syntax; this file builds the tree (an explicit stack, no
 * recursion), resolves plain scalars with the implicit resolvers of PyYAML's
 * resolver.py (bool, float, int, null in YAML 1.1 spelling) and constructs their values as
 * constructor.py does (underscores dropped, 0b / 0x / leading-0 octal / sexagesimal). */
#include "models/yaml_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_ANCHORS 4096
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

struct yframe {
    struct q7_py * obj;  /* LIST or DICT being filled */
    struct q7_py * key;  /* DICT: the key waiting for its value, NULL when none */
    const char * anchor; /* registered when the container ends (no self-reference) */
};

struct yanchor {
    const char * name;
    struct q7_py * obj;
};

struct yloader {
    struct q7_pyheap * h;
    const char * name;
    struct yframe stack[Q7_YAML_MAX_DEPTH];
    int depth;
    size_t nodes;
    struct yanchor * anchors;
    size_t n_anchors, cap_anchors;
    struct q7_py * root;
    int n_docs;
};

/* ---- implicit resolvers (PyYAML resolver.py, YAML 1.1) ------------------------------------ */

static int is_one_of(const char * s, size_t n, const char * const * words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return 1;
    return 0;
}

static const char * const yaml_true_words[] = {"yes",  "Yes", "YES", "true", "True",
                                               "TRUE", "on",  "On",  "ON",   NULL};
static const char * const yaml_false_words[] = {"no",    "No",  "NO",  "false", "False",
                                                "FALSE", "off", "Off", "OFF",   NULL};
static const char * const yaml_null_words[] = {"~", "null", "Null", "NULL", "", NULL};

/* Cursor helpers for the hand-written regular expressions below. */
static size_t span(const char * s, size_t n, size_t i, const char * set)
{
    while (i < n && s[i] && strchr(set, s[i]))
        i++;
    return i;
}

#define DIGITS "0123456789"
#define DIGITS_ "0123456789_"

/* (":" [0-5]?[0-9])+ starting at i; returns the end, or 0 when it does not match once. */
static size_t match_sexagesimal_tail(const char * s, size_t n, size_t i)
{
    size_t start = i;
    while (i < n && s[i] == ':') {
        size_t j = i + 1;
        if (j + 1 < n && s[j] >= '0' && s[j] <= '5' && s[j + 1] >= '0' && s[j + 1] <= '9')
            j += 2;
        else if (j < n && s[j] >= '0' && s[j] <= '9')
            j += 1;
        else
            break;
        i = j;
    }
    return i > start ? i : 0;
}

/* [eE][-+][0-9]+ at i (optional): returns the end (i when absent), or 0 when malformed. */
static size_t match_exponent(const char * s, size_t n, size_t i)
{
    if (i >= n || (s[i] != 'e' && s[i] != 'E'))
        return i;
    if (i + 1 >= n || (s[i + 1] != '-' && s[i + 1] != '+'))
        return 0;
    size_t j = span(s, n, i + 2, DIGITS);
    return j > i + 2 ? j : 0;
}

static int match_int(const char * s, size_t n)
{
    size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        if (i + 1 == n)
            return 1; /* 0 */
        if (s[i + 1] == 'b')
            return i + 2 < n && span(s, n, i + 2, "01_") == n; /* 0b[0-1_]+ */
        if (s[i + 1] == 'x')
            return i + 2 < n && span(s, n, i + 2, "0123456789abcdefABCDEF_") == n;
        return span(s, n, i + 1, "01234567_") == n; /* 0[0-7_]+ */
    }
    if (s[i] < '1' || s[i] > '9')
        return 0;
    size_t j = span(s, n, i + 1, DIGITS_);
    if (j == n)
        return 1;                                /* [1-9][0-9_]* */
    return match_sexagesimal_tail(s, n, j) == n; /* 1:30 */
}

static int match_float(const char * s, size_t n)
{
    size_t i = (n > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (i >= n)
        return 0;
    if (s[i] == '.') {
        const char * rest = s + i + 1;
        size_t rn = n - i - 1;
        static const char * const inf_words[] = {"inf", "Inf", "INF", NULL};
        static const char * const nan_words[] = {"nan", "NaN", "NAN", NULL};
        if (is_one_of(rest, rn, inf_words))
            return 1; /* [-+]?\.(inf|Inf|INF) */
        if (i == 0 && is_one_of(rest, rn, nan_words))
            return 1; /* \.(nan|NaN|NAN), unsigned */
        if (i != 0 || n < 2 || s[1] < '0' || s[1] > '9')
            return 0; /* \.[0-9][0-9_]*(exp)?, unsigned */
        size_t j = span(s, n, 2, DIGITS_);
        size_t e = match_exponent(s, n, j);
        return e == n;
    }
    if (s[i] < '0' || s[i] > '9')
        return 0;
    size_t j = span(s, n, i + 1, DIGITS_);
    if (j < n && s[j] == '.') { /* [0-9][0-9_]*\.[0-9_]*(exp)? */
        size_t k = span(s, n, j + 1, DIGITS_);
        size_t e = match_exponent(s, n, k);
        return e == n;
    }
    size_t k = match_sexagesimal_tail(s, n, j); /* [0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* */
    if (k == 0 || k >= n || s[k] != '.')
        return 0;
    return span(s, n, k + 1, DIGITS_) == n;
}

/* ---- constructors (PyYAML constructor.py) ------------------------------------------------ */

/* Copies `s` without '_' into buf (NUL-terminated). */
static void strip_underscores(const char * s, size_t n, char * buf)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            buf[o++] = s[i];
    buf[o] = '\0';
}

/* Magnitude of `digits` in `base` into *out; 0 on overflow beyond 2^63 or a bad digit. */
static int parse_magnitude(const char * digits, int base, uint64_t * out)
{
    uint64_t v = 0;
    if (!*digits)
        return 0;
    for (const char * p = digits; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            return 0;
        if (d >= base || v > (((uint64_t)1 << 63) - (uint64_t)d) / (uint64_t)base)
            return 0;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return 1;
}

static enum q7_status construct_int(struct yloader * L, const char * s, size_t n,
                                    const yaml_mark_t * mark, struct q7_py ** out)
{
    char * buf = malloc(n + 1);
    if (!buf)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", L->name);
    strip_underscores(s, n, buf);
    const char * p = buf;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    uint64_t mag = 0;
    int ok;
    if (strcmp(p, "0") == 0) {
        ok = 1;
    } else if (p[0] == '0' && p[1] == 'b') {
        ok = parse_magnitude(p + 2, 2, &mag);
    } else if (p[0] == '0' && p[1] == 'x') {
        ok = parse_magnitude(p + 2, 16, &mag);
    } else if (p[0] == '0') {
        ok = parse_magnitude(p + 1, 8, &mag) || p[1] == '\0';
    } else if (strchr(p, ':')) {
        /* sexagesimal: the last part counts 1, the one before 60, ... */
        ok = 1;
        char * save = NULL;
        for (char * part = strtok_r((char *)p, ":", &save); part && ok;
             part = strtok_r(NULL, ":", &save)) {
            uint64_t d;
            ok = parse_magnitude(part, 10, &d) && mag <= (((uint64_t)1 << 63) - d) / 60;
            mag = mag * 60 + d;
        }
    } else {
        ok = parse_magnitude(p, 10, &mag);
    }
    free(buf);
    if (!ok || (!neg && mag > (uint64_t)INT64_MAX))
        return q7_error_set(Q7_ERR_LIMIT,
                            "%s:%zu:%zu: integer '%.*s' is malformed or beyond "
                            "64 bits",
                            L->name, mark->line + 1, mark->column + 1, (int)n, s);
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* -2^63 wraps to itself */
    *out = q7_py_int(L->h, v);
    return *out ? Q7_OK : Q7_ERR_OOM;
}

static enum q7_status construct_float(struct yloader * L, const char * s, size_t n,
                                      const yaml_mark_t * mark, struct q7_py ** out)
{
    char * buf = malloc(n + 1);
    if (!buf)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", L->name);
    strip_underscores(s, n, buf);
    for (char * q = buf; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    const char * p = buf;
    double sign = 1.0, v = 0.0;
    int ok = 1;
    if (*p == '-' || *p == '+')
        sign = *p++ == '-' ? -1.0 : 1.0;
    if (strcmp(p, ".inf") == 0) {
        v = INFINITY;
    } else if (strcmp(p, ".nan") == 0) {
        v = NAN;
    } else if (strchr(p, ':')) {
        /* sexagesimal float: parts are floats, the last counts 1, the one before 60, ... */
        double parts[64];
        int np = 0;
        char * save = NULL;
        for (char * part = strtok_r((char *)p, ":", &save); part && ok;
             part = strtok_r(NULL, ":", &save)) {
            char * end;
            if (np == 64) {
                ok = 0;
                break;
            }
            parts[np++] = strtod(part, &end);
            ok = *end == '\0';
        }
        double base = 1.0;
        for (int k = np - 1; k >= 0; k--, base *= 60.0)
            v += parts[k] * base;
    } else {
        char * end;
        errno = 0;
        v = strtod(p, &end);
        ok = *end == '\0' && end != p; /* overflow gives ±inf, as Python's float() does */
    }
    free(buf);
    if (!ok)
        return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: float '%.*s' is malformed", L->name,
                            mark->line + 1, mark->column + 1, (int)n, s);
    *out = q7_py_float(L->h, sign * v);
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* A scalar event → an object, as SafeLoader resolves and constructs it. */
static enum q7_status resolve_scalar(struct yloader * L, const yaml_event_t * ev,
                                     struct q7_py ** out)
{
    const char * s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char * tag = (const char *)ev->data.scalar.tag;
    const yaml_mark_t * mark = &ev->start_mark;
    const char * kind = NULL; /* "str", "int", ... */

    if (tag && strcmp(tag, "!") != 0) {
        size_t pl = strlen(YAML_TAG_PREFIX);
        if (strncmp(tag, YAML_TAG_PREFIX, pl) != 0)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s:%zu:%zu: unsupported tag '%s'", L->name,
                                mark->line + 1, mark->column + 1, tag);
        kind = tag + pl;
    } else if (tag || !ev->data.scalar.plain_implicit ||
               ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        kind = "str"; /* quoted, or the non-specific tag "!" */
    } else if (is_one_of(s, n, yaml_true_words) || is_one_of(s, n, yaml_false_words)) {
        kind = "bool";
    } else if (match_float(s, n)) {
        kind = "float";
    } else if (match_int(s, n)) {
        kind = "int";
    } else if (is_one_of(s, n, yaml_null_words)) {
        kind = "null";
    } else {
        kind = "str";
    }

    if (strcmp(kind, "str") == 0) {
        *out = q7_py_str(L->h, s, n);
    } else if (strcmp(kind, "null") == 0) {
        *out = q7_py_none(L->h);
    } else if (strcmp(kind, "bool") == 0) {
        if (!is_one_of(s, n, yaml_true_words) && !is_one_of(s, n, yaml_false_words))
            return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: '%.*s' is not a bool", L->name,
                                mark->line + 1, mark->column + 1, (int)n, s);
        *out = q7_py_bool(L->h, is_one_of(s, n, yaml_true_words));
    } else if (strcmp(kind, "int") == 0) {
        if (!match_int(s, n))
            return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: '%.*s' is not an int", L->name,
                                mark->line + 1, mark->column + 1, (int)n, s);
        return construct_int(L, s, n, mark, out);
    } else if (strcmp(kind, "float") == 0) {
        /* an explicit !!float also takes ints ("!!float 1" is 1.0 in PyYAML) */
        if (!match_float(s, n) && !match_int(s, n))
            return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: '%.*s' is not a float", L->name,
                                mark->line + 1, mark->column + 1, (int)n, s);
        return construct_float(L, s, n, mark, out);
    } else {
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s:%zu:%zu: unsupported tag '%s'", L->name,
                            mark->line + 1, mark->column + 1, tag ? tag : kind);
    }
    return *out ? Q7_OK : Q7_ERR_OOM;
}

/* ---- tree building ----------------------------------------------------------------------- */

static enum q7_status count_node(struct yloader * L, const yaml_mark_t * mark)
{
    if (++L->nodes > Q7_YAML_MAX_NODES)
        return q7_error_set(Q7_ERR_LIMIT, "%s:%zu: more than %zu yaml nodes", L->name,
                            mark->line + 1, Q7_YAML_MAX_NODES);
    return Q7_OK;
}

/* Puts a finished node where it belongs: the root, a list item, a key or a value. */
static enum q7_status attach(struct yloader * L, struct q7_py * node, const yaml_mark_t * mark)
{
    if (L->depth == 0) {
        L->root = node;
        return Q7_OK;
    }
    struct yframe * f = &L->stack[L->depth - 1];
    if (f->obj->kind == Q7_PY_LIST)
        return q7_py_append(L->h, f->obj, node);
    if (!f->key) {
        if (node->kind == Q7_PY_LIST || node->kind == Q7_PY_DICT)
            return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: a list or mapping as a mapping key",
                                L->name, mark->line + 1, mark->column + 1);
        f->key = node;
        return Q7_OK;
    }
    struct q7_py * key = f->key;
    f->key = NULL;
    return q7_py_dict_set(L->h, f->obj, key, node);
}

static enum q7_status add_anchor(struct yloader * L, const char * name, struct q7_py * obj,
                                 const yaml_mark_t * mark)
{
    if (!name)
        return Q7_OK;
    for (size_t i = 0; i < L->n_anchors; i++)
        if (strcmp(L->anchors[i].name, name) == 0) {
            L->anchors[i].obj = obj; /* a redefined anchor: later aliases see the new node */
            return Q7_OK;
        }
    if (L->n_anchors == YAML_MAX_ANCHORS)
        return q7_error_set(Q7_ERR_LIMIT, "%s:%zu: more than %d anchors", L->name, mark->line + 1,
                            YAML_MAX_ANCHORS);
    if (L->n_anchors == L->cap_anchors) {
        size_t cap = L->cap_anchors ? L->cap_anchors * 2 : 16;
        struct yanchor * a = realloc(L->anchors, cap * sizeof *a);
        if (!a)
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory", L->name);
        L->anchors = a;
        L->cap_anchors = cap;
    }
    const char * copy = q7_arena_strdup(q7_pyheap_arena(L->h), name);
    if (!copy)
        return Q7_ERR_OOM;
    L->anchors[L->n_anchors].name = copy;
    L->anchors[L->n_anchors].obj = obj;
    L->n_anchors++;
    return Q7_OK;
}

static enum q7_status open_container(struct yloader * L, enum q7_py_kind kind, const char * tag,
                                     const char * anchor, const yaml_mark_t * mark)
{
    const char * want = kind == Q7_PY_LIST ? YAML_TAG_PREFIX "seq" : YAML_TAG_PREFIX "map";
    if (tag && strcmp(tag, "!") != 0 && strcmp(tag, want) != 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s:%zu:%zu: unsupported tag '%s'", L->name,
                            mark->line + 1, mark->column + 1, tag);
    if (L->depth == Q7_YAML_MAX_DEPTH)
        return q7_error_set(Q7_ERR_LIMIT, "%s:%zu:%zu: nested deeper than %d levels", L->name,
                            mark->line + 1, mark->column + 1, Q7_YAML_MAX_DEPTH);
    struct q7_py * obj = q7_py_new(L->h, kind);
    if (!obj)
        return Q7_ERR_OOM;
    const char * a = NULL;
    if (anchor && !(a = q7_arena_strdup(q7_pyheap_arena(L->h), anchor)))
        return Q7_ERR_OOM;
    L->stack[L->depth].obj = obj;
    L->stack[L->depth].key = NULL;
    L->stack[L->depth].anchor = a;
    L->depth++;
    return Q7_OK;
}

static enum q7_status close_container(struct yloader * L, const yaml_mark_t * mark)
{
    Q7_ASSERT(L->depth > 0);
    struct yframe f = L->stack[--L->depth];
    enum q7_status st = add_anchor(L, f.anchor, f.obj, mark);
    return st ? st : attach(L, f.obj, mark);
}

static enum q7_status on_event(struct yloader * L, const yaml_event_t * ev)
{
    const yaml_mark_t * mark = &ev->start_mark;
    enum q7_status st;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++L->n_docs > 1)
            return q7_error_set(Q7_ERR_FORMAT,
                                "%s:%zu: expected a single document, found "
                                "another one",
                                L->name, mark->line + 1);
        return Q7_OK;
    case YAML_SCALAR_EVENT: {
        struct q7_py * v = NULL;
        if ((st = count_node(L, mark)) || (st = resolve_scalar(L, ev, &v)) ||
            (st = add_anchor(L, (const char *)ev->data.scalar.anchor, v, mark)))
            return st;
        return attach(L, v, mark);
    }
    case YAML_ALIAS_EVENT: {
        if ((st = count_node(L, mark)))
            return st;
        const char * name = (const char *)ev->data.alias.anchor;
        for (size_t i = 0; i < L->n_anchors; i++)
            if (strcmp(L->anchors[i].name, name) == 0)
                return attach(L, L->anchors[i].obj, mark);
        return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: alias '*%s' names no finished anchor",
                            L->name, mark->line + 1, mark->column + 1, name);
    }
    case YAML_SEQUENCE_START_EVENT:
        if ((st = count_node(L, mark)))
            return st;
        return open_container(L, Q7_PY_LIST, (const char *)ev->data.sequence_start.tag,
                              (const char *)ev->data.sequence_start.anchor, mark);
    case YAML_MAPPING_START_EVENT:
        if ((st = count_node(L, mark)))
            return st;
        return open_container(L, Q7_PY_DICT, (const char *)ev->data.mapping_start.tag,
                              (const char *)ev->data.mapping_start.anchor, mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return close_container(L, mark);
    default:
        return Q7_OK;
    }
}

static enum q7_status parser_error(const struct yloader * L, const yaml_parser_t * p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory parsing yaml", L->name);
    if (p->error == YAML_READER_ERROR)
        return q7_error_set(Q7_ERR_FORMAT, "%s: invalid yaml at byte %zu: %s", L->name,
                            p->problem_offset, p->problem ? p->problem : "reader error");
    const char * problem = p->problem ? p->problem : "syntax error";
    if (p->context)
        return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: invalid yaml: %s (%s, line %zu)", L->name,
                            p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                            p->context, p->context_mark.line + 1);
    return q7_error_set(Q7_ERR_FORMAT, "%s:%zu:%zu: invalid yaml: %s", L->name,
                        p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

enum q7_status q7_yaml_parse(const char * text, size_t len, const char * name,
                             struct q7_pyheap * heap, struct q7_py ** root_out)
{
    if (root_out)
        *root_out = NULL;
    if (!text || !heap || !root_out)
        return q7_error_set(Q7_ERR_ARG, "yaml parse: NULL argument");
    if (!name)
        name = "<yaml>";
    if (len > Q7_YAML_MAX_BYTES)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %zu bytes of yaml (at most %zu)", name, len,
                            Q7_YAML_MAX_BYTES);
    struct yloader L;
    memset(&L, 0, sizeof L);
    L.h = heap;
    L.name = name;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return q7_error_set(Q7_ERR_OOM, "%s: cannot initialize the yaml parser", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    enum q7_status st = Q7_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = parser_error(&L, &parser);
            break;
        }
        int done = ev.type == YAML_STREAM_END_EVENT;
        st = on_event(&L, &ev);
        yaml_event_delete(&ev);
        if (st || done)
            break;
    }
    yaml_parser_delete(&parser);
    free(L.anchors);
    if (st)
        return st;
    if (!L.root && !(L.root = q7_py_none(heap))) /* an empty stream is None, as in PyYAML */
        return Q7_ERR_OOM;
    *root_out = L.root;
    return Q7_OK;
}

enum q7_status q7_yaml_load(const char * path, struct q7_pyheap * heap, struct q7_py ** root_out)
{
    if (root_out)
        *root_out = NULL;
    if (!path)
        return q7_error_set(Q7_ERR_ARG, "yaml load: NULL path");
    char * text = NULL;
    size_t size = 0;
    enum q7_status st = q7_file_read_all(path, Q7_YAML_MAX_BYTES, &text, &size);
    if (st)
        return st; /* the message names the file */
    st = q7_yaml_parse(text, size, path, heap, root_out);
    free(text);
    return st;
}
