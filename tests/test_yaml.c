/* Tests of the yaml reader and the yaml → module tree builder (models/yaml_cfg.c,
 * yolo_cfg.c, yolo_modules.c, yolo_detect.c).
 *
 * Golden: every official config of family/ (15) built at full width has family.json's
 * parameter count and top-level layer count, exactly; built at the narrow width it has the
 * narrow parameter count. Every family checkpoint and the two big fixtures are compared
 * object by object with the tree built from the same config (from the yaml file with the
 * checkpoint's multiples, and from the checkpoint's own yaml dict): classes, attribute keys in
 * order and their values (i, f, type, np, Conv2d/BatchNorm2d/MaxPool2d/Upsample/activation
 * attributes, nc/no/nl/na, anchors and anchor_grid values, stride values, save, names,
 * the yaml dict itself), state_dict names, order and shapes.
 * Unit: PyYAML scalar resolution, limits, parse_model semantics on small configs (depth and
 * width multiples, output layer, anchors as a number, strides), init modes, bad configs
 * (errors naming the file). */
#include "graph/base.h"
#include "models/ckpt.h"
#include "models/pyobj.h"
#include "models/yaml_cfg.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PRINT 20

static int msg_has(const char * what)
{
    return strstr(q7_error_message(), what) != NULL;
}

#define CHECK_FAILS(expr, code, what)                                                              \
    do {                                                                                           \
        q7_error_clear();                                                                          \
        int st__ = (int)(expr);                                                                    \
        CHECKF(st__ == (int)(code) && msg_has(what),                                               \
               "%s: status %d (wanted %d), message '%s' (wanted '%s')", #expr, st__, (int)(code),  \
               q7_error_message(), what);                                                          \
    } while (0)

/* ---- state_dict collection -------------------------------------------------------------- */

struct sd_entry {
    char name[256];
    const struct q7_py * t;
    int is_buffer;
};

struct sd_list {
    struct sd_entry * e;
    size_t n, cap;
};

static enum q7_status sd_collect(void * user, const char * name, const struct q7_py * t,
                                 int is_buffer)
{
    struct sd_list * l = user;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        struct sd_entry * e = realloc(l->e, cap * sizeof *e);
        if (!e)
            return q7_error_set(Q7_ERR_OOM, "test: out of memory");
        l->e = e;
        l->cap = cap;
    }
    snprintf(l->e[l->n].name, sizeof l->e[0].name, "%s", name);
    l->e[l->n].t = t;
    l->e[l->n].is_buffer = is_buffer;
    l->n++;
    return Q7_OK;
}

static int cmp_ptr(const void * a, const void * b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return (x > y) - (x < y);
}

/* Sum of numel of every parameter tensor of the tree, each tensor counted once. */
static int64_t count_params(const struct q7_py * model)
{
    struct sd_list l = {0};
    CHECK_OK(q7_py_state_dict_walk(model, NULL, sd_collect, &l));
    const void ** ptrs = calloc(l.n + 1, sizeof *ptrs);
    size_t np = 0;
    for (size_t i = 0; i < l.n; i++)
        if (!l.e[i].is_buffer)
            ptrs[np++] = l.e[i].t;
    qsort(ptrs, np, sizeof *ptrs, cmp_ptr);
    int64_t total = 0;
    for (size_t i = 0; i < np; i++)
        if (i == 0 || ptrs[i] != ptrs[i - 1])
            total += q7_py_tensor_numel(ptrs[i]);
    free(ptrs);
    free(l.e);
    return total;
}

static size_t top_layers(const struct q7_py * model)
{
    const struct q7_py * mods = q7_py_getattr(q7_py_module_child(model, "model"), "_modules");
    return mods && mods->kind == Q7_PY_DICT ? mods->v.dict.len : 0;
}

/* ---- tree comparison ------------------------------------------------------------------- */

struct cmp {
    const char * label;
    int mismatches;
    int tensors_compared;
    int trained; /* a checkpoint saved by train.py: its Model has nc, gr, class_weights, hyp
                    and the dataset's names; yaml_file only when built from a file; the
                    fixtures' BatchNorm momentum is None */
};

static void mismatch(struct cmp * c, const char * path, const char * fmt, ...)
{
    c->mismatches++;
    if (c->mismatches > MAX_PRINT)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  %s: %s: ", c->label, path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int is_hook_key(const char * k)
{
    return k[0] == '_' && strstr(k, "hook") != NULL;
}

static void compare_value(struct cmp * c, const struct q7_py * a, const struct q7_py * b,
                          const char * path, int depth, int values);

static void compare_tensor(struct cmp * c, const struct q7_py * a, const struct q7_py * b,
                           const char * path, int values)
{
    const struct q7_py_tensor *x = &a->v.tensor, *y = &b->v.tensor;
    int same = x->ndim == y->ndim;
    for (int d = 0; same && d < x->ndim; d++)
        same = x->shape[d] == y->shape[d];
    if (!same) {
        char ra[96], rb[96];
        q7_py_repr(a, ra, sizeof ra);
        q7_py_repr(b, rb, sizeof rb);
        mismatch(c, path, "tensor %s, checkpoint %s", ra, rb);
        return;
    }
    if (!values)
        return;
    int64_t n = q7_py_tensor_numel(a);
    float *va = malloc(sizeof(float) * (size_t)(n + 1)),
          *vb = malloc(sizeof(float) * (size_t)(n + 1));
    if (q7_py_tensor_to_f32(a, va, n) || q7_py_tensor_to_f32(b, vb, n)) {
        mismatch(c, path, "values unreadable: %s", q7_error_message());
    } else {
        c->tensors_compared++;
        for (int64_t i = 0; i < n; i++)
            if (fabsf(va[i] - vb[i]) > 1e-6f * fmaxf(1.0f, fabsf(vb[i]))) {
                mismatch(c, path, "value [%lld] %.9g, checkpoint %.9g", (long long)i, va[i], vb[i]);
                break;
            }
    }
    free(va);
    free(vb);
}

/* Attributes that train.py adds to the Model, and Model(path)'s yaml_file. */
static int is_model_extra(const char * k)
{
    static const char * const extra[] = {"nc", "gr", "class_weights", "hyp", "yaml_file", NULL};
    for (int i = 0; extra[i]; i++)
        if (strcmp(k, extra[i]) == 0)
            return 1;
    return 0;
}

/* The keys of an object's state without the hook dicts (q7 does not make them) and, for the
 * Model (depth 0), without the attributes of is_model_extra. */
static size_t state_keys(const struct q7_py * o, const struct q7_py ** keys, size_t max, int depth)
{
    const struct q7_py * st = o->v.object.state;
    size_t n = 0;
    for (size_t i = 0; st && st->kind == Q7_PY_DICT && i < st->v.dict.len && n < max; i++) {
        const char * k = q7_py_as_str(st->v.dict.keys[i]);
        if (k && !is_hook_key(k) && !(depth == 0 && is_model_extra(k)))
            keys[n++] = st->v.dict.keys[i];
    }
    return n;
}

static void compare_object(struct cmp * c, const struct q7_py * a, const struct q7_py * b,
                           const char * path, int depth)
{
    if (strcmp(a->v.object.module, b->v.object.module) != 0 ||
        strcmp(a->v.object.name, b->v.object.name) != 0) {
        mismatch(c, path, "class %s.%s, checkpoint %s.%s", a->v.object.module, a->v.object.name,
                 b->v.object.module, b->v.object.name);
        return;
    }
    const struct q7_py *ka[64], *kb[64];
    size_t na = state_keys(a, ka, 64, depth), nb = state_keys(b, kb, 64, depth);
    if (depth == 0) { /* yaml_file: the same when both have it */
        const char * fa = q7_py_as_str(q7_py_getattr(a, "yaml_file"));
        const char * fb = q7_py_as_str(q7_py_getattr(b, "yaml_file"));
        if (fa && fb && strcmp(fa, fb) != 0)
            mismatch(c, path, "yaml_file '%s', checkpoint '%s'", fa, fb);
    }
    int same = na == nb;
    for (size_t i = 0; same && i < na; i++)
        same = strcmp(q7_py_as_str(ka[i]), q7_py_as_str(kb[i])) == 0;
    if (!same) {
        char la[512] = "", lb[512] = "";
        for (size_t i = 0; i < na; i++)
            snprintf(la + strlen(la), sizeof la - strlen(la), "%s ", q7_py_as_str(ka[i]));
        for (size_t i = 0; i < nb; i++)
            snprintf(lb + strlen(lb), sizeof lb - strlen(lb), "%s ", q7_py_as_str(kb[i]));
        mismatch(c, path, "attributes [%s], checkpoint [%s]", la, lb);
        return;
    }
    for (size_t i = 0; i < na; i++) {
        const char * k = q7_py_as_str(ka[i]);
        const struct q7_py *va = q7_py_getattr(a, k), *vb = q7_py_getattr(b, k);
        char p[1024];
        if (strcmp(k, "_modules") == 0) {
            if (va->kind != Q7_PY_DICT || vb->kind != Q7_PY_DICT ||
                va->v.dict.len != vb->v.dict.len) {
                mismatch(c, path, "_modules: %zu children, checkpoint %zu",
                         va->kind == Q7_PY_DICT ? va->v.dict.len : 0,
                         vb->kind == Q7_PY_DICT ? vb->v.dict.len : 0);
                continue;
            }
            for (size_t j = 0; j < va->v.dict.len; j++) {
                const char * ca = q7_py_as_str(va->v.dict.keys[j]);
                const char * cb = q7_py_as_str(vb->v.dict.keys[j]);
                snprintf(p, sizeof p, "%s.%s", path, cb ? cb : "?");
                if (!ca || !cb || strcmp(ca, cb) != 0) {
                    mismatch(c, p, "child '%s', checkpoint '%s'", ca ? ca : "?", cb ? cb : "?");
                    continue;
                }
                const struct q7_py *ma = va->v.dict.values[j], *mb = vb->v.dict.values[j];
                if (ma->kind != Q7_PY_OBJECT || mb->kind != Q7_PY_OBJECT)
                    compare_value(c, ma, mb, p, depth + 1, 0);
                else if (depth < 32)
                    compare_object(c, ma, mb, p, depth + 1);
            }
        } else if (strcmp(k, "_parameters") == 0 || strcmp(k, "_buffers") == 0) {
            snprintf(p, sizeof p, "%s[%s]", path, k);
            /* values of the buffers that the builder computes (anchors in grid units) */
            int values = strcmp(k, "_buffers") == 0;
            if (va->kind != Q7_PY_DICT || vb->kind != Q7_PY_DICT ||
                va->v.dict.len != vb->v.dict.len) {
                mismatch(c, p, "different entries");
                continue;
            }
            for (size_t j = 0; j < va->v.dict.len; j++) {
                const char * ta = q7_py_as_str(va->v.dict.keys[j]);
                const char * tb = q7_py_as_str(vb->v.dict.keys[j]);
                char q[1100];
                snprintf(q, sizeof q, "%s.%s", p, tb ? tb : "?");
                if (!ta || !tb || strcmp(ta, tb) != 0) {
                    mismatch(c, q, "entry '%s', checkpoint '%s'", ta ? ta : "?", tb ? tb : "?");
                    continue;
                }
                int v = values && (strcmp(ta, "anchors") == 0 || strcmp(ta, "anchor_grid") == 0);
                compare_value(c, va->v.dict.values[j], vb->v.dict.values[j], q, depth + 1, v);
            }
        } else if (c->trained && strcmp(k, "momentum") == 0 && vb->kind == Q7_PY_NONE) {
            /* the fixtures re-estimated BatchNorm statistics with momentum = None (a
             * cumulative average) and saved it so; a fresh Model has 0.03 */
        } else if (depth == 0 && c->trained && strcmp(k, "names") == 0) {
            if (va->kind != Q7_PY_LIST || vb->kind != Q7_PY_LIST || va->v.seq.len != vb->v.seq.len)
                mismatch(c, path, "names: a list of nc names expected");
        } else {
            snprintf(p, sizeof p, "%s:%s", path, k);
            compare_value(c, va, vb, p, depth + 1, 1);
        }
    }
}

static void compare_value(struct cmp * c, const struct q7_py * a, const struct q7_py * b,
                          const char * path, int depth, int values)
{
    char ra[128], rb[128];
    if (a->kind != b->kind) {
        q7_py_repr(a, ra, sizeof ra);
        q7_py_repr(b, rb, sizeof rb);
        mismatch(c, path, "%s, checkpoint %s", ra, rb);
        return;
    }
    int ok = 1;
    switch (a->kind) {
    case Q7_PY_NONE:
        break;
    case Q7_PY_BOOL:
    case Q7_PY_INT:
        ok = a->v.i == b->v.i;
        break;
    case Q7_PY_FLOAT:
        ok = fabs(a->v.f - b->v.f) <= 1e-12 * fmax(1.0, fabs(b->v.f)) ||
             (isnan(a->v.f) && isnan(b->v.f));
        break;
    case Q7_PY_STR:
    case Q7_PY_BYTES:
        ok = a->v.str.len == b->v.str.len && memcmp(a->v.str.s, b->v.str.s, a->v.str.len) == 0;
        break;
    case Q7_PY_LIST:
    case Q7_PY_TUPLE:
        if (a->v.seq.len != b->v.seq.len) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i < a->v.seq.len && depth < 32; i++) {
            char p[1100];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            compare_value(c, a->v.seq.items[i], b->v.seq.items[i], p, depth + 1, values);
        }
        return;
    case Q7_PY_SET:
        ok = a->v.seq.len == b->v.seq.len;
        break;
    case Q7_PY_DICT:
        if (a->v.dict.len != b->v.dict.len) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i < a->v.dict.len && depth < 32; i++) {
            char p[1100];
            q7_py_repr(b->v.dict.keys[i], rb, sizeof rb);
            snprintf(p, sizeof p, "%s{%s}", path, rb);
            compare_value(c, a->v.dict.keys[i], b->v.dict.keys[i], p, depth + 1, values);
            compare_value(c, a->v.dict.values[i], b->v.dict.values[i], p, depth + 1, values);
        }
        return;
    case Q7_PY_OBJECT:
        compare_object(c, a, b, path, depth);
        return;
    case Q7_PY_TENSOR:
        compare_tensor(c, a, b, path, values);
        return;
    default:
        ok = 0;
        break;
    }
    if (!ok) {
        q7_py_repr(a, ra, sizeof ra);
        q7_py_repr(b, rb, sizeof rb);
        mismatch(c, path, "%s, checkpoint %s", ra, rb);
    }
}

/* state_dict names, order and shapes. */
static void compare_state_dicts(struct cmp * c, const struct q7_py * a, const struct q7_py * b)
{
    struct sd_list la = {0}, lb = {0};
    CHECK_OK(q7_py_state_dict_walk(a, NULL, sd_collect, &la));
    CHECK_OK(q7_py_state_dict_walk(b, NULL, sd_collect, &lb));
    if (la.n != lb.n)
        mismatch(c, "state_dict", "%zu entries, checkpoint %zu", la.n, lb.n);
    for (size_t i = 0; i < la.n && i < lb.n; i++) {
        if (strcmp(la.e[i].name, lb.e[i].name) != 0) {
            mismatch(c, "state_dict", "entry %zu is %s, checkpoint %s", i, la.e[i].name,
                     lb.e[i].name);
            break;
        }
        compare_tensor(c, la.e[i].t, lb.e[i].t, la.e[i].name, 0);
    }
    free(la.e);
    free(lb.e);
}

/* ---- 1. family.json: parameter and layer counts ------------------------------------------ */

static void cfg_path(const char * key, char * out, size_t size)
{
    /* "training-yolov7-d6" → family/cfg/training/yolov7-d6.yaml */
    const char * dash = strchr(key, '-');
    char rel[512];
    snprintf(rel, sizeof rel, "family/cfg/%.*s/%s.yaml", (int)(dash - key), key, dash + 1);
    snprintf(out, size, "%s", q7t_fixture(rel));
}

static void test_family_counts(const cJSON * fam)
{
    int n_cfg = 0;
    const cJSON * e;
    cJSON_ArrayForEach(e, fam)
    {
        char path[4096];
        cfg_path(e->string, path, sizeof path);
        q7t_require(path);
        int64_t want_params = (int64_t)cJSON_GetObjectItem(e, "params")->valuedouble;
        size_t want_layers = (size_t)cJSON_GetObjectItem(e, "top_level_layers")->valuedouble;

        struct q7_cfg_params p = q7_cfg_params_default();
        p.init = Q7_CFG_INIT_SHAPE;
        struct q7_pyheap * h = q7_pyheap_create();
        struct q7_py * m = NULL;
        CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &m));
        if (m) {
            int64_t params = count_params(m);
            CHECKF(params == want_params, "%s: %lld params, family.json %lld", e->string,
                   (long long)params, (long long)want_params);
            CHECKF(top_layers(m) == want_layers, "%s: %zu layers, family.json %zu", e->string,
                   top_layers(m), want_layers);
        }
        /* the narrow variant of the checkpoints */
        const cJSON * nar = cJSON_GetObjectItem(e, "narrow");
        if (nar) {
            p.width_multiple = cJSON_GetObjectItem(nar, "width_multiple")->valuedouble;
            int64_t want = (int64_t)cJSON_GetObjectItem(nar, "params")->valuedouble;
            struct q7_py * mn = NULL;
            CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &mn));
            if (mn)
                CHECKF(count_params(mn) == want, "%s narrow: %lld params, family.json %lld",
                       e->string, (long long)count_params(mn), (long long)want);
        }
        q7_pyheap_free(h);
        n_cfg++;
    }
    CHECKF(n_cfg == 15, "family.json lists %d configs, expected 15", n_cfg);
    printf("family: %d configs: params and top-level layers match family.json (full and narrow)\n",
           n_cfg);
}

/* ---- 2. structure against real checkpoints -------------------------------------------- */

/* Builds from the yaml file (with the checkpoint's multiples) and from the checkpoint's own
 * yaml dict, and compares both with the checkpoint's Model. */
static void compare_checkpoint(const char * ckpt_path, const char * yaml_path, const char * label,
                               int trained)
{
    q7t_require(ckpt_path);
    q7t_require(yaml_path);
    struct q7_ckpt * ck = NULL;
    CHECK_OK(q7_ckpt_load(ckpt_path, NULL, &ck));
    if (!ck)
        return;
    const struct q7_py * theirs = q7_py_dict_get(q7_ckpt_root(ck), "model");
    const struct q7_py * ty = q7_py_getattr(theirs, "yaml");
    CHECKF(theirs && ty, "%s: no model or model.yaml", ckpt_path);
    if (!theirs || !ty) {
        q7_ckpt_free(ck);
        return;
    }
    struct q7_cfg_params p = q7_cfg_params_default();
    CHECK(q7_py_as_double(q7_py_dict_get(ty, "width_multiple"), &p.width_multiple));
    CHECK(q7_py_as_double(q7_py_dict_get(ty, "depth_multiple"), &p.depth_multiple));

    struct q7_pyheap * h = q7_pyheap_create();
    for (int from_dict = 0; from_dict < 2; from_dict++) {
        struct q7_py * ours = NULL;
        if (from_dict)
            CHECK_OK(q7_yolo_model_from_dict(ty, NULL, h, &ours));
        else
            CHECK_OK(q7_yolo_model_from_yaml(yaml_path, &p, h, &ours));
        if (!ours)
            continue;
        char lab[256];
        snprintf(lab, sizeof lab, "%s (%s)", label, from_dict ? "its yaml dict" : "cfg file");
        struct cmp c = {lab, 0, 0, trained};
        compare_object(&c, ours, theirs, "model", 0);
        const char * yf = q7_py_as_str(q7_py_getattr(ours, "yaml_file"));
        const char * base = strrchr(yaml_path, '/');
        CHECKF(from_dict ? !yf : yf && strcmp(yf, base + 1) == 0, "%s: yaml_file %s", lab,
               yf ? yf : "absent");
        compare_state_dicts(&c, ours, theirs);
        CHECKF(c.mismatches == 0, "%s: %d mismatches with the checkpoint", lab, c.mismatches);
        CHECKF(c.tensors_compared >= 3, "%s: only %d tensors compared by value", lab,
               c.tensors_compared);
        CHECK(count_params(ours) == count_params(theirs));
    }
    q7_pyheap_free(h);
    q7_ckpt_free(ck);
}

static void test_family_checkpoints(const cJSON * fam)
{
    int n = 0;
    const cJSON * e;
    cJSON_ArrayForEach(e, fam)
    {
        const cJSON * nar = cJSON_GetObjectItem(e, "narrow");
        const cJSON * file = nar ? cJSON_GetObjectItem(nar, "file") : NULL;
        if (!file)
            continue;
        char rel[512], yaml_path[4096];
        snprintf(rel, sizeof rel, "family/%s", file->valuestring);
        cfg_path(e->string, yaml_path, sizeof yaml_path);
        compare_checkpoint(q7t_fixture(rel), yaml_path, e->string, 0);
        n++;
    }
    compare_checkpoint(q7t_fixture("yolov7-tiny/model.pt"),
                       q7t_fixture("family/cfg/training/yolov7-tiny.yaml"), "yolov7-tiny/model.pt",
                       1);
    compare_checkpoint(q7t_fixture("yolov7/model.pt"),
                       q7t_fixture("family/cfg/training/yolov7.yaml"), "yolov7/model.pt", 1);
    printf("structure: %d family checkpoints + 2 fixtures compared with the built trees\n", n);
}

/* ---- load_state_dict: a bare state_dict + cfg --------------------------------------------- */

static void test_load_state_dict(const char * ckpt_path)
{
    q7t_require(ckpt_path);
    struct q7_ckpt * ck = NULL;
    CHECK_OK(q7_ckpt_load(ckpt_path, NULL, &ck));
    if (!ck)
        return;
    const struct q7_py * theirs = q7_py_dict_get(q7_ckpt_root(ck), "model");
    struct sd_list lt = {0};
    CHECK_OK(q7_py_state_dict_walk(theirs, NULL, sd_collect, &lt));
    struct q7_pyheap * h = q7_pyheap_create();
    /* the state_dict as a dict of name → tensor, and broken variants of it */
    struct q7_py *sd = q7_py_new(h, Q7_PY_DICT), *missing = q7_py_new(h, Q7_PY_DICT);
    struct q7_py *extra = q7_py_new(h, Q7_PY_DICT), *shape = q7_py_new(h, Q7_PY_DICT);
    for (size_t i = 0; i < lt.n; i++) {
        struct q7_py * t = (struct q7_py *)lt.e[i].t;
        CHECK_OK(q7_py_dict_set_str(h, sd, lt.e[i].name, t));
        CHECK_OK(q7_py_dict_set_str(h, extra, lt.e[i].name, t));
        if (i + 1 < lt.n)
            CHECK_OK(q7_py_dict_set_str(h, missing, lt.e[i].name, t));
        CHECK_OK(
            q7_py_dict_set_str(h, shape, lt.e[i].name, (struct q7_py *)lt.e[i == 0 ? 1 : i].t));
    }
    CHECK_OK(q7_py_dict_set_str(h, extra, "model.1.conv.extra", (struct q7_py *)lt.e[0].t));

    struct q7_cfg_params p = q7_cfg_params_default();
    p.init = Q7_CFG_INIT_SHAPE;
    struct q7_py * ours = NULL;
    CHECK_OK(q7_yolo_model_from_dict(q7_py_getattr(theirs, "yaml"), &p, h, &ours));
    if (ours) {
        CHECK_FAILS(q7_yolo_model_load_state_dict(ours, missing, "sd.pt"), Q7_ERR_NOT_FOUND,
                    lt.e[lt.n - 1].name);
        CHECK_FAILS(q7_yolo_model_load_state_dict(ours, extra, "sd.pt"), Q7_ERR_FORMAT,
                    "unexpected key model.1.conv.extra");
        char want[300];
        snprintf(want, sizeof want, "sd.pt: %s has shape", lt.e[0].name);
        CHECK_FAILS(q7_yolo_model_load_state_dict(ours, shape, "sd.pt"), Q7_ERR_FORMAT, want);
        CHECK_OK(q7_yolo_model_load_state_dict(ours, sd, "sd.pt"));
        struct sd_list lo = {0};
        CHECK_OK(q7_py_state_dict_walk(ours, NULL, sd_collect, &lo));
        int same = lo.n == lt.n;
        for (size_t i = 0; same && i < lo.n; i++)
            same = strcmp(lo.e[i].name, lt.e[i].name) == 0 && lo.e[i].t == lt.e[i].t;
        CHECKF(same, "%s: the loaded state_dict differs", ckpt_path);
        free(lo.e);
    }
    free(lt.e);
    q7_pyheap_free(h);
    q7_ckpt_free(ck);
}

/* ---- 3. the yaml reader ------------------------------------------------------------------ */

static const struct q7_py * parse_value(struct q7_pyheap * h, const char * scalar)
{
    char text[256];
    snprintf(text, sizeof text, "v: %s\n", scalar);
    struct q7_py * root = NULL;
    CHECK_OK(q7_yaml_parse(text, strlen(text), "scalar", h, &root));
    return q7_py_dict_get(root, "v");
}

static void test_yaml_scalars(void)
{
    struct q7_pyheap * h = q7_pyheap_create();
    /* expected values from PyYAML 6.0's safe_load */
    static const struct {
        const char * text;
        enum q7_py_kind kind;
        double v;
    } cases[] = {
        {"None", Q7_PY_STR, 0},
        {"null", Q7_PY_NONE, 0},
        {"~", Q7_PY_NONE, 0},
        {"", Q7_PY_NONE, 0},
        {"1e3", Q7_PY_STR, 0},
        {"1.0e+3", Q7_PY_FLOAT, 1000},
        {"1.e3", Q7_PY_STR, 0},
        {"0x1F", Q7_PY_INT, 31},
        {"017", Q7_PY_INT, 15},
        {"09", Q7_PY_STR, 0},
        {"0b101", Q7_PY_INT, 5},
        {"1:30", Q7_PY_INT, 90},
        {"1:30.5", Q7_PY_FLOAT, 90.5},
        {"yes", Q7_PY_BOOL, 1},
        {"On", Q7_PY_BOOL, 1},
        {"OFF", Q7_PY_BOOL, 0},
        {"y", Q7_PY_STR, 0},
        {".inf", Q7_PY_FLOAT, INFINITY},
        {"-.inf", Q7_PY_FLOAT, -INFINITY},
        {"-.5", Q7_PY_STR, 0},
        {".5", Q7_PY_FLOAT, 0.5},
        {"+1", Q7_PY_INT, 1},
        {"-0", Q7_PY_INT, 0},
        {"1_000", Q7_PY_INT, 1000},
        {"0.1", Q7_PY_FLOAT, 0.1},
        {"1.", Q7_PY_FLOAT, 1},
        {"+.5", Q7_PY_STR, 0},
        {"0o17", Q7_PY_STR, 0},
        {"1e-3", Q7_PY_STR, 0},
        {"-1:30", Q7_PY_INT, -90},
        {"TRUE", Q7_PY_BOOL, 1},
        {"tRUE", Q7_PY_STR, 0},
        {"NaN", Q7_PY_STR, 0},
        {"1__0.5", Q7_PY_FLOAT, 10.5},
        {"0_8", Q7_PY_STR, 0},
        {"00", Q7_PY_INT, 0},
        {"0.", Q7_PY_FLOAT, 0},
        {"+0x_1", Q7_PY_INT, 1},
        {"190:20:30", Q7_PY_INT, 685230},
        {"1:60", Q7_PY_STR, 0},
        {"0:00", Q7_PY_STR, 0},
        {"-01", Q7_PY_INT, -1},
        {"._5", Q7_PY_STR, 0},
        {"1_.5e+3", Q7_PY_FLOAT, 1500},
        {"-0b11", Q7_PY_INT, -3},
        {"'1'", Q7_PY_STR, 0},
        {"\"null\"", Q7_PY_STR, 0},
        {"!!float 1", Q7_PY_FLOAT, 1},
        {"!!str 1", Q7_PY_STR, 0},
        {"!!int \"12\"", Q7_PY_INT, 12},
        {"9223372036854775807", Q7_PY_INT, 9223372036854775807.0},
        {"-9223372036854775808", Q7_PY_INT, -9223372036854775808.0},
        {"nn.LeakyReLU(0.1)", Q7_PY_STR, 0},
        {"nearest", Q7_PY_STR, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct q7_py * v = parse_value(h, cases[i].text);
        if (!v) {
            CHECKF(0, "'%s' did not parse", cases[i].text);
            continue;
        }
        CHECKF(v->kind == cases[i].kind, "'%s': kind %d, PyYAML %d", cases[i].text, v->kind,
               cases[i].kind);
        double x;
        if (v->kind == cases[i].kind && q7_py_as_double(v, &x))
            CHECKF(x == cases[i].v, "'%s': %.17g, PyYAML %.17g", cases[i].text, x, cases[i].v);
    }
    const struct q7_py * nan = parse_value(h, ".nan");
    CHECK(nan && nan->kind == Q7_PY_FLOAT && isnan(nan->v.f));
    const struct q7_py * s = parse_value(h, "\"a b\"");
    CHECK(s && s->kind == Q7_PY_STR && strcmp(s->v.str.s, "a b") == 0);

    /* structure: order, a repeated key (last value, first position), aliases, empty */
    const char * doc = "b: 1\na: [1, [2, 3], {x: y}]\nb: 2\nc: &k [4, 5]\nd: *k\n";
    struct q7_py * root = NULL;
    CHECK_OK(q7_yaml_parse(doc, strlen(doc), "doc", h, &root));
    CHECK(root && root->kind == Q7_PY_DICT && root->v.dict.len == 4);
    if (root && root->kind == Q7_PY_DICT && root->v.dict.len == 4) {
        CHECK(strcmp(q7_py_as_str(root->v.dict.keys[0]), "b") == 0);
        CHECK(root->v.dict.values[0]->v.i == 2);
        const struct q7_py * a = q7_py_dict_get(root, "a");
        CHECK(a->kind == Q7_PY_LIST && a->v.seq.len == 3 && a->v.seq.items[2]->kind == Q7_PY_DICT);
        CHECK(q7_py_dict_get(root, "c") == q7_py_dict_get(root, "d"));
    }
    CHECK_OK(q7_yaml_parse("", 0, "empty", h, &root));
    CHECK(root && root->kind == Q7_PY_NONE);

    /* errors and limits */
    CHECK_FAILS(q7_yaml_parse("a: [1, 2\n", 9, "unclosed.yaml", h, &root), Q7_ERR_FORMAT,
                "unclosed.yaml:");
    CHECK_FAILS(q7_yaml_parse("a: 1\n---\nb: 2\n", 14, "two.yaml", h, &root), Q7_ERR_FORMAT,
                "single document");
    CHECK_FAILS(q7_yaml_parse("a: *nope\n", 9, "alias.yaml", h, &root), Q7_ERR_FORMAT, "alias");
    CHECK_FAILS(q7_yaml_parse("a: &x [1, *x]\n", 14, "rec.yaml", h, &root), Q7_ERR_FORMAT, "alias");
    CHECK_FAILS(q7_yaml_parse("a: !!python/object:os.system x\n", 31, "tag.yaml", h, &root),
                Q7_ERR_UNSUPPORTED, "tag");
    CHECK_FAILS(q7_yaml_parse("a: 99999999999999999999\n", 24, "big.yaml", h, &root), Q7_ERR_LIMIT,
                "big.yaml:1:");
    CHECK_FAILS(q7_yaml_parse("[a, b]: 1\n", 10, "key.yaml", h, &root), Q7_ERR_FORMAT, "key");
    size_t deep = 100000;
    char * text = malloc(2 * deep + 1);
    memset(text, '[', deep);
    memset(text + deep, ']', deep);
    text[2 * deep] = '\0';
    CHECK_FAILS(q7_yaml_parse(text, 2 * deep, "deep.yaml", h, &root), Q7_ERR_LIMIT, "deep");
    free(text);
    /* many nodes (a billion-laughs style alias blow-up stays shared, then the copy is bounded) */
    size_t items = Q7_YAML_MAX_NODES + 10;
    text = malloc(3 * items + 8);
    size_t o = 0;
    text[o++] = '[';
    for (size_t i = 0; i < items; i++) {
        text[o++] = '1';
        text[o++] = ',';
    }
    text[o++] = ']';
    CHECK_FAILS(q7_yaml_parse(text, o, "wide.yaml", h, &root), Q7_ERR_LIMIT, "nodes");
    free(text);
    q7_pyheap_free(h);
}

/* ---- 4. parse_model semantics on small configs ------------------------------------------ */

static char tmpdir[256];

static const char * write_cfg(const char * name, const char * text)
{
    static char path[8][512];
    static int next;
    char * p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    FILE * f = fopen(p, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
    fclose(f);
    return p;
}

/* A tiny valid config: {HEAD} is replaced by `head`. */
static const char * mini_cfg(char * buf, size_t size, const char * globals, const char * backbone,
                             const char * head)
{
    snprintf(buf, size,
             "nc: 2\n%s\nanchors:\n  - [10,13, 16,30, 33,23]\n  - [30,61, 62,45, 59,119]\n"
             "backbone:\n  [%s]\nhead:\n  [%s]\n",
             globals, backbone, head);
    return buf;
}

static const struct q7_py * layer(const struct q7_py * model, const char * i)
{
    return q7_py_module_child(q7_py_module_child(model, "model"), i);
}

static float first_value(const struct q7_py * t, int64_t i)
{
    float v[512];
    int64_t n = q7_py_tensor_numel(t);
    if (n > 512 || i >= n || q7_py_tensor_to_f32(t, v, n))
        return NAN;
    return v[i];
}

static void test_parse_model(void)
{
    char buf[4096];
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * m = NULL;
    const char * g1 = "depth_multiple: 0.5\nwidth_multiple: 0.5";
    const char * path = write_cfg(
        "mini.yaml", mini_cfg(buf, sizeof buf, g1,
                              "[-1, 1, Conv, [16, 3, 2]],\n   [-1, 5, Conv, [32, 3, 1, None, 1, "
                              "'nn.LeakyReLU(0.2)']],\n"
                              "   [-1, 1, Conv, [21, 1, 1]],\n   [-2, 1, Conv, [32, 3, 2]]",
                              "[[2, 3], 1, Detect, [nc, anchors]]"));
    CHECK_OK(q7_yolo_model_from_yaml(path, NULL, h, &m));
    if (m) {
        /* width: 16 * 0.5 → 8; depth: round(5 * 0.5) = round(2.5) = 2 (half to even) */
        const struct q7_py *l0 = layer(m, "0"), *l1 = layer(m, "1"), *l2 = layer(m, "2");
        int64_t v;
        CHECK(q7_py_as_int(q7_py_getattr(q7_py_module_child(l0, "conv"), "out_channels"), &v) &&
              v == 8);
        CHECK(q7_py_is_class(l1, "Sequential") && q7_py_getattr(l1, "_modules")->v.dict.len == 2);
        CHECK(strcmp(q7_py_as_str(q7_py_getattr(l1, "type")), "models.common.Conv") == 0);
        const struct q7_py * act = q7_py_module_child(q7_py_module_child(l1, "0"), "act");
        double slope;
        CHECK(q7_py_is_class(act, "LeakyReLU") &&
              q7_py_as_double(q7_py_getattr(act, "negative_slope"), &slope) && slope == 0.2);
        CHECK(q7_py_getattr(act, "inplace")->v.i == 1);
        /* the output layer (c2 == no = 3 * 7 = 21) keeps its width */
        CHECK(q7_py_as_int(q7_py_getattr(q7_py_module_child(l2, "conv"), "out_channels"), &v) &&
              v == 21);
        /* strides: layer 2 is at 1/2 → 2; layer 3 (from layer 1, stride 2) at 1/4 → 4 */
        const struct q7_py * det = layer(m, "4");
        const struct q7_py * s = q7_py_getattr(det, "stride");
        CHECK(s && first_value(s, 0) == 2.0f && first_value(s, 1) == 4.0f);
        CHECK(s == q7_py_getattr(m, "stride"));
        const struct q7_py * an = q7_py_module_buffer(det, "anchors");
        CHECK(an && first_value(an, 0) == 5.0f && first_value(an, 6) == 7.5f);
        CHECK(first_value(q7_py_module_buffer(det, "anchor_grid"), 0) == 10.0f);
        /* the bias prior (ZERO init): obj log(8 / (640 / 2)^2), cls log(0.6 / (2 - 0.99)) */
        const struct q7_py * b0 =
            q7_py_module_param(q7_py_module_child(q7_py_module_child(det, "m"), "0"), "bias");
        float t = 640.0f / 2.0f;
        CHECK(first_value(b0, 4) == (float)log((double)(8.0f / (t * t))));
        CHECK(first_value(b0, 5) == (float)log(0.6 / (2 - 0.99)));
        CHECK(first_value(b0, 0) == 0.0f);
        /* save list, names, yaml with ch added */
        const struct q7_py * save = q7_py_getattr(m, "save");
        CHECK(save && save->v.seq.len == 3 && save->v.seq.items[0]->v.i == 1 &&
              save->v.seq.items[1]->v.i == 2 && save->v.seq.items[2]->v.i == 3);
        const struct q7_py * names = q7_py_getattr(m, "names");
        CHECK(names && names->v.seq.len == 2 &&
              strcmp(q7_py_as_str(names->v.seq.items[1]), "1") == 0);
        const struct q7_py * y = q7_py_getattr(m, "yaml");
        CHECK(y && q7_py_dict_get(y, "ch") && q7_py_dict_get(y, "ch")->v.i == 3);
        CHECK(strcmp(q7_py_as_str(y->v.dict.keys[y->v.dict.len - 1]), "ch") == 0);
    }

    /* RepConv with an identity branch (c1 == c2, s == 1) and in deploy form; nn.MaxPool2d */
    path =
        write_cfg("rep.yaml", mini_cfg(buf, sizeof buf, "depth_multiple: 1.0\nwidth_multiple: 1.0",
                                       "[-1, 1, Conv, [16, 3, 2]], [-1, 1, RepConv, [16, 3, 1]],\n"
                                       "   [-1, 1, RepConv, [16, 3, 2, None, 1, True, True]],\n"
                                       "   [-1, 1, nn.MaxPool2d, [3, 2, 1]]",
                                       "[[2, 3], 1, Detect, [nc, anchors]]"));
    CHECK_OK(q7_yolo_model_from_yaml(path, NULL, h, &m));
    if (m) {
        static const char * const want[] = {"model.1.rbr_identity.weight",
                                            "model.1.rbr_identity.bias",
                                            "model.1.rbr_identity.running_mean",
                                            "model.1.rbr_identity.running_var",
                                            "model.1.rbr_identity.num_batches_tracked",
                                            "model.1.rbr_dense.0.weight",
                                            "model.1.rbr_dense.1.weight",
                                            "model.1.rbr_dense.1.bias",
                                            "model.1.rbr_dense.1.running_mean",
                                            "model.1.rbr_dense.1.running_var",
                                            "model.1.rbr_dense.1.num_batches_tracked",
                                            "model.1.rbr_1x1.0.weight",
                                            "model.1.rbr_1x1.1.weight",
                                            "model.1.rbr_1x1.1.bias",
                                            "model.1.rbr_1x1.1.running_mean",
                                            "model.1.rbr_1x1.1.running_var",
                                            "model.1.rbr_1x1.1.num_batches_tracked",
                                            "model.2.rbr_reparam.weight",
                                            "model.2.rbr_reparam.bias",
                                            "model.4.anchors"};
        struct sd_list l = {0};
        CHECK_OK(q7_py_state_dict_walk(m, NULL, sd_collect, &l));
        size_t k = 0;
        for (size_t i = 0; i < l.n && k < sizeof want / sizeof want[0]; i++)
            if (strncmp(l.e[i].name, "model.0.", 8) != 0 && strcmp(l.e[i].name, want[k]) == 0)
                k++;
        CHECKF(k == sizeof want / sizeof want[0], "RepConv state_dict: %zu of %zu names in order",
               k, sizeof want / sizeof want[0]);
        free(l.e);
        CHECK(q7_py_getattr(layer(m, "1"), "rbr_identity") == NULL); /* a module, not an attr */
        CHECK(q7_py_getattr(layer(m, "2"), "deploy")->v.i == 1);
        /* strides: 256 → 128 (Conv s2) → 128 → 64 (RepConv s2) → 32 (MaxPool 3/2/1) */
        const struct q7_py * st = q7_py_getattr(layer(m, "4"), "stride");
        CHECK(st && first_value(st, 0) == 4.0f && first_value(st, 1) == 8.0f);
        const struct q7_py * mp = layer(m, "3");
        CHECK(strcmp(q7_py_as_str(q7_py_getattr(mp, "type")),
                     "torch.nn.modules.pooling.MaxPool2d") == 0);
    }

    /* overrides: nc, width, depth; anchors as a number */
    struct q7_cfg_params p = q7_cfg_params_default();
    p.nc = 5;
    p.width_multiple = 1.0;
    p.depth_multiple = 1.0;
    path = write_cfg("num.yaml", "nc: 2\ndepth_multiple: 0.33\nwidth_multiple: 0.25\nanchors: 2\n"
                                 "backbone: [[-1, 3, Conv, [16, 3, 2]]]\n"
                                 "head: [[[-1], 1, IDetect, [nc, anchors]]]\n");
    CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &m));
    if (m) {
        const struct q7_py * y = q7_py_getattr(m, "yaml");
        double wm;
        CHECK(q7_py_dict_get(y, "nc")->v.i == 5 &&
              q7_py_as_double(q7_py_dict_get(y, "width_multiple"), &wm) && wm == 1.0);
        const struct q7_py * l0 = layer(m, "0");
        CHECK(q7_py_is_class(l0, "Sequential") && q7_py_getattr(l0, "_modules")->v.dict.len == 3);
        const struct q7_py * det = layer(m, "1");
        int64_t na = 0, no = 0;
        CHECK(q7_py_as_int(q7_py_getattr(det, "na"), &na) && na == 2);
        CHECK(q7_py_as_int(q7_py_getattr(det, "no"), &no) && no == 10);
        /* anchors [list(range(4))]: 0, 1, 2, 3 px; the stride after 3 convs s2 is 8 */
        const struct q7_py * an = q7_py_module_buffer(det, "anchors");
        CHECK(first_value(an, 3) == 3.0f / 8.0f);
        const struct q7_py * im = q7_py_module_child(q7_py_module_child(det, "im"), "0");
        CHECK(first_value(q7_py_module_param(im, "implicit"), 7) == 1.0f);
        CHECK(count_params(m) == q7_py_getattr(l0, "np")->v.i + q7_py_getattr(det, "np")->v.i);
    }

    /* seeded random init: reproducible, within PyTorch's bounds, seed-dependent */
    p = q7_cfg_params_default();
    p.init = Q7_CFG_INIT_RANDOM;
    p.seed = 7;
    struct q7_py *r1 = NULL, *r2 = NULL, *r3 = NULL;
    path =
        write_cfg("rnd.yaml", mini_cfg(buf, sizeof buf, "depth_multiple: 1.0\nwidth_multiple: 1.0",
                                       "[-1, 1, Conv, [16, 3, 2]], [-1, 1, Conv, [16, 3, 2]]",
                                       "[[0, 1], 1, IDetect, [nc, anchors]]"));
    CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &r1));
    CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &r2));
    p.seed = 8;
    CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &r3));
    if (r1 && r2 && r3) {
        const struct q7_py * w1 =
            q7_py_module_param(q7_py_module_child(layer(r1, "1"), "conv"), "weight");
        const struct q7_py * w2 =
            q7_py_module_param(q7_py_module_child(layer(r2, "1"), "conv"), "weight");
        const struct q7_py * w3 =
            q7_py_module_param(q7_py_module_child(layer(r3, "1"), "conv"), "weight");
        int64_t n = q7_py_tensor_numel(w1);
        float * a = malloc(sizeof(float) * (size_t)n * 3);
        CHECK_OK(q7_py_tensor_to_f32(w1, a, n));
        CHECK_OK(q7_py_tensor_to_f32(w2, a + n, n));
        CHECK_OK(q7_py_tensor_to_f32(w3, a + 2 * n, n));
        CHECK(memcmp(a, a + n, sizeof(float) * (size_t)n) == 0);
        CHECK(memcmp(a, a + 2 * n, sizeof(float) * (size_t)n) != 0);
        float bound = 1.0f / sqrtf(16 * 9), mx = 0;
        for (int64_t i = 0; i < n; i++)
            mx = fmaxf(mx, fabsf(a[i]));
        CHECKF(mx <= bound && mx > 0.9f * bound, "max |w| %g, bound %g", mx, bound);
        free(a);
        const struct q7_py * bn = q7_py_module_child(layer(r1, "1"), "bn");
        CHECK(first_value(q7_py_module_param(bn, "weight"), 3) == 1.0f);
        CHECK(first_value(q7_py_module_buffer(bn, "running_var"), 3) == 1.0f);
        const struct q7_py * ia = q7_py_module_child(q7_py_module_child(layer(r1, "2"), "ia"), "0");
        float v = first_value(q7_py_module_param(ia, "implicit"), 0);
        CHECK(v != 0.0f && fabsf(v) < 0.2f);
    }
    /* shape-only: no data, same structure */
    p.init = Q7_CFG_INIT_SHAPE;
    CHECK_OK(q7_yolo_model_from_yaml(path, &p, h, &r3));
    if (r3 && r1) {
        const struct q7_py * w =
            q7_py_module_param(q7_py_module_child(layer(r3, "1"), "conv"), "weight");
        CHECK(w && w->v.tensor.storage->v.storage.data == NULL &&
              q7_py_tensor_numel(w) == 16 * 16 * 9);
        CHECK(count_params(r3) == count_params(r1));
        struct cmp c = {"shape vs random", 0, 0, 0};
        compare_state_dicts(&c, r3, r1);
        CHECK(c.mismatches == 0);
    }
    q7_pyheap_free(h);
}

/* ---- 5. bad configs ---------------------------------------------------------------------- */

static void expect_bad(const char * name, const char * text, enum q7_status code, const char * what)
{
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * m = (struct q7_py *)1;
    const char * path = write_cfg(name, text);
    q7_error_clear();
    enum q7_status st = q7_yolo_model_from_yaml(path, NULL, h, &m);
    CHECKF(st == code && m == NULL && msg_has(path) && msg_has(what),
           "%s: status %d (wanted %d), message '%s' (wanted the path and '%s')", name, st, code,
           q7_error_message(), what);
    q7_pyheap_free(h);
}

static void test_bad_configs(void)
{
    char buf[4096];
    const char * g = "depth_multiple: 1.0\nwidth_multiple: 1.0";
    struct q7_pyheap * h = q7_pyheap_create();
    struct q7_py * m = NULL;
    CHECK_FAILS(q7_yolo_model_from_yaml("/nonexistent/q7/cfg.yaml", NULL, h, &m), Q7_ERR_IO,
                "/nonexistent/q7/cfg.yaml");
    q7_pyheap_free(h);

    expect_bad("invalid.yaml", "nc: 80\nbackbone: [[-1, 1, Conv, [32, 3, 2]]\n  head: ]\n",
               Q7_ERR_FORMAT, "invalid yaml");
    expect_bad("unknown.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2]], [-1, 1, Foo, [3]]",
                        "[[0, 1], 1, Detect, [nc, anchors]]"),
               Q7_ERR_UNSUPPORTED, "backbone[1] (layer 1, Foo): unknown module 'Foo'");
    expect_bad("negative.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, -1, Conv, [16, 3, 2]], [-1, 1, Conv, [16, 3, 2]]",
                        "[[0, 1], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "repeat count -1");
    expect_bad("from.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2]], [5, 1, Conv, [16, 3, 2]]",
                        "[[0, 1], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "'from' index 5 is out of range for layer 1");
    expect_bad("from2.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2]], [-1, 1, Conv, [16, 3, 2]]",
                        "[[0, -4], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "'from' index -4 is out of range");
    expect_bad("from0.yaml",
               mini_cfg(buf, sizeof buf, g, "[0, 1, Conv, [16, 3, 2]]",
                        "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "'from' index 0 is out of range for layer 0");
    expect_bad("levels.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2]]",
                        "[[0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "2 anchor levels need 2 inputs, 1 given");
    expect_bad("concat.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2]], [-1, 1, Concat, [1]]",
                        "[[0, 1], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "Concat takes a list of layers");
    expect_bad(
        "sizes.yaml",
        mini_cfg(buf, sizeof buf, g,
                 "[-1, 1, Conv, [16, 3, 2]], [-1, 1, Conv, [16, 3, 2]], [[0, 1], 1, Concat, [1]]",
                 "[[0, 1], 1, Detect, [nc, anchors]]"),
        Q7_ERR_FORMAT, "inputs of different sizes");
    expect_bad("act.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 3, 2, None, 1, 'nn.GELU()']]",
                        "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_UNSUPPORTED, "unsupported activation 'nn.GELU()'");
    expect_bad("args.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, x, 2]]",
                        "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "argument k must be an int");
    expect_bad("huge.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [100000000, 3, 2]]",
                        "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_LIMIT, "output channels");
    expect_bad("row.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv]", "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "[from, number, module, args]");
    expect_bad("nonc.yaml",
               "depth_multiple: 1.0\nwidth_multiple: 1.0\nanchors: 3\nbackbone: []\nhead: []\n",
               Q7_ERR_FORMAT, "'nc'");
    expect_bad("list.yaml", "- 1\n- 2\n", Q7_ERR_FORMAT, "not a mapping");
    expect_bad("tiny.yaml",
               mini_cfg(buf, sizeof buf, g, "[-1, 1, Conv, [16, 300, 1, 0]]",
                        "[[0, 0], 1, Detect, [nc, anchors]]"),
               Q7_ERR_FORMAT, "window does not fit");
}

int main(void)
{
    test_yaml_scalars();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/q7_test_yaml_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    test_parse_model();
    test_bad_configs();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);

    cJSON * fam = q7t_json_load(q7t_fixture("family/family.json"));
    test_family_counts(fam);
    test_family_checkpoints(fam);
    test_load_state_dict(q7t_fixture("family/training-yolov7-e6e.pt"));
    test_load_state_dict(q7t_fixture("yolov7/model.pt"));
    cJSON_Delete(fam);
    return q7t_finish("test_yaml");
}
