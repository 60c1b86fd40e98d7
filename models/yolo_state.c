/* Loading a bare state_dict into a module tree built from a yaml config (model.load_state_dict
 * with strict=True): every parameter and persistent buffer of the tree is replaced by the
 * state_dict's tensor of the same name and shape. */
#include "models/yaml_cfg.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define STATE_MAX_DEPTH 32
#define STATE_MAX_NAME 512

struct state_load {
    const struct q7_py * sd;
    const char * source;
    char name[STATE_MAX_NAME];
    size_t used; /* state_dict entries consumed */
};

static int in_set(const struct q7_py * set, const char * key)
{
    for (size_t i = 0; set && set->kind == Q7_PY_SET && i < set->v.seq.len; i++) {
        const char * s = q7_py_as_str(set->v.seq.items[i]);
        if (s && strcmp(s, key) == 0)
            return 1;
    }
    return 0;
}

static void shape_str(const struct q7_py * t, char * buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < t->v.tensor.ndim && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, d ? ", %" PRId64 : "%" PRId64,
                              t->v.tensor.shape[d]);
    if (o < size)
        snprintf(buf + o, size - o, ")");
}

/* Replaces the tensors of one _parameters / _buffers dict. */
static enum q7_status load_dict(struct state_load * L, struct q7_py * dict, size_t len,
                                const struct q7_py * skip)
{
    for (size_t i = 0; dict && dict->kind == Q7_PY_DICT && i < dict->v.dict.len; i++) {
        const char * key = q7_py_as_str(dict->v.dict.keys[i]);
        struct q7_py * mine = dict->v.dict.values[i];
        if (!key || mine->kind == Q7_PY_NONE || in_set(skip, key))
            continue;
        if (mine->kind != Q7_PY_TENSOR)
            return q7_error_set(Q7_ERR_FORMAT, "%s: %s%s is not a tensor", L->source, L->name, key);
        if (len + strlen(key) + 1 > STATE_MAX_NAME)
            return q7_error_set(Q7_ERR_LIMIT, "%s: a state_dict name is too long", L->source);
        strcpy(L->name + len, key);
        struct q7_py * theirs = q7_py_dict_get(L->sd, L->name);
        if (!theirs)
            return q7_error_set(Q7_ERR_NOT_FOUND, "%s: missing key %s in the state_dict", L->source,
                                L->name);
        int same = theirs->kind == Q7_PY_TENSOR && theirs->v.tensor.ndim == mine->v.tensor.ndim;
        for (int d = 0; same && d < mine->v.tensor.ndim; d++)
            same = theirs->v.tensor.shape[d] == mine->v.tensor.shape[d];
        if (!same) {
            char a[128] = "not a tensor", b[128];
            if (theirs->kind == Q7_PY_TENSOR)
                shape_str(theirs, a, sizeof a);
            shape_str(mine, b, sizeof b);
            return q7_error_set(Q7_ERR_FORMAT,
                                "%s: %s has shape %s in the state_dict, the "
                                "model expects %s",
                                L->source, L->name, a, b);
        }
        dict->v.dict.values[i] = theirs; /* keys and order stay */
        L->used++;
        L->name[len] = '\0';
    }
    return Q7_OK;
}

static enum q7_status load_module(struct state_load * L, struct q7_py * m, size_t len, int depth)
{
    if (depth > STATE_MAX_DEPTH)
        return q7_error_set(Q7_ERR_LIMIT, "%s: module tree deeper than %d", L->source,
                            STATE_MAX_DEPTH);
    if (m->kind != Q7_PY_OBJECT)
        return q7_error_set(Q7_ERR_FORMAT, "%s: %s is not a module", L->source, L->name);
    enum q7_status st;
    if ((st = load_dict(L, q7_py_getattr(m, "_parameters"), len, NULL)) ||
        (st = load_dict(L, q7_py_getattr(m, "_buffers"), len,
                        q7_py_getattr(m, "_non_persistent_buffers_set"))))
        return st;
    struct q7_py * mods = q7_py_getattr(m, "_modules");
    for (size_t i = 0; mods && mods->kind == Q7_PY_DICT && i < mods->v.dict.len; i++) {
        const char * key = q7_py_as_str(mods->v.dict.keys[i]);
        struct q7_py * child = mods->v.dict.values[i];
        if (!key || child->kind == Q7_PY_NONE)
            continue;
        size_t klen = strlen(key);
        if (len + klen + 2 > STATE_MAX_NAME)
            return q7_error_set(Q7_ERR_LIMIT, "%s: a state_dict name is too long", L->source);
        memcpy(L->name + len, key, klen);
        L->name[len + klen] = '.';
        L->name[len + klen + 1] = '\0';
        if ((st = load_module(L, child, len + klen + 1, depth + 1)))
            return st;
        L->name[len] = '\0';
    }
    return Q7_OK;
}

/* 1 when the tree has a parameter or buffer called `name` ("model.0.conv.weight"). */
static int has_tensor(const struct q7_py * m, const char * name)
{
    for (int depth = 0; m && depth <= STATE_MAX_DEPTH; depth++) {
        const char * dot = strchr(name, '.');
        if (!dot)
            return q7_py_module_param(m, name) != NULL || q7_py_module_buffer(m, name) != NULL;
        char key[STATE_MAX_NAME];
        size_t n = (size_t)(dot - name);
        if (n >= sizeof key)
            return 0;
        memcpy(key, name, n);
        key[n] = '\0';
        m = q7_py_module_child(m, key);
        name = dot + 1;
    }
    return 0;
}

enum q7_status q7_yolo_model_load_state_dict(struct q7_py * model, const struct q7_py * state_dict,
                                             const char * source)
{
    if (!source)
        source = "state_dict";
    if (!model || !state_dict)
        return q7_error_set(Q7_ERR_ARG, "%s: NULL model or state_dict", source);
    if (state_dict->kind != Q7_PY_DICT)
        return q7_error_set(Q7_ERR_FORMAT, "%s: the state_dict is not a dict", source);
    struct state_load L;
    memset(&L, 0, sizeof L);
    L.sd = state_dict;
    L.source = source;
    enum q7_status st = load_module(&L, model, 0, 0);
    if (st)
        return st;
    if (L.used != state_dict->v.dict.len) { /* strict: name a key the model does not have */
        for (size_t i = 0; i < state_dict->v.dict.len; i++) {
            const char * key = q7_py_as_str(state_dict->v.dict.keys[i]);
            if (!key || !has_tensor(model, key))
                return q7_error_set(Q7_ERR_FORMAT, "%s: unexpected key %s in the state_dict",
                                    source, key ? key : "(not a string)");
        }
        return q7_error_set(Q7_ERR_FORMAT, "%s: the state_dict has %zu entries, the model %zu",
                            source, state_dict->v.dict.len, L.used);
    }
    return Q7_OK;
}
