/* Loading a model from a checkpoint or a yaml config. */
#include "engine/model.h"

#include "graph/passes.h"
#include "models/ckpt.h"
#include "models/yaml_cfg.h"
#include "models/yolo_graph.h"

#include <stdlib.h>
#include <string.h>

struct q7_model_params q7_model_params_default(void)
{
    struct q7_model_params p = {.cfg = NULL, .random_init = 1, .seed = 0};
    return p;
}

static int has_suffix(const char * s, const char * suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int is_yaml(const char * path)
{
    return has_suffix(path, ".yaml") || has_suffix(path, ".yml");
}

static enum q7_status load_yaml_model(struct q7_model * m, const char * cfg,
                                      const struct q7_model_params * p)
{
    m->heap = q7_pyheap_create();
    if (!m->heap)
        return Q7_ERR_OOM;
    struct q7_cfg_params cp = q7_cfg_params_default();
    cp.init = p->shapes_only   ? Q7_CFG_INIT_SHAPE
              : p->random_init ? Q7_CFG_INIT_RANDOM
                               : Q7_CFG_INIT_ZERO;
    cp.seed = p->seed;
    struct q7_py * model = NULL;
    enum q7_status st = q7_yolo_model_from_yaml(cfg, &cp, m->heap, &model);
    m->module = model;
    return st;
}

enum q7_status q7_model_load(const char * path, const struct q7_model_params * p,
                             struct q7_model ** out)
{
    *out = NULL;
    struct q7_model_params dp = q7_model_params_default();
    if (!p)
        p = &dp;
    struct q7_model * m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    }
    enum q7_status st;
    if (is_yaml(path)) {
        m->from_yaml = 1;
        st = load_yaml_model(m, path, p);
    } else {
        st = q7_ckpt_load(path, NULL, &m->ckpt);
        if (!st) {
            const struct q7_py * root = q7_ckpt_root(m->ckpt);
            const struct q7_py * sd = q7_py_dict_get(root, "state_dict");
            if (p->cfg && !q7_py_is_class(q7_py_dict_get(root, "model"), "Model")) {
                /* a bare state_dict (or {"state_dict": ...}): structure from the config */
                struct q7_model_params yp = *p;
                yp.random_init = 0;
                if (!(st = load_yaml_model(m, p->cfg, &yp)))
                    st = q7_yolo_model_load_state_dict((struct q7_py *)m->module,
                                                       sd ? sd : root, path);
            } else {
                m->module = q7_yolo_find_model(root, path);
                if (!m->module)
                    st = Q7_ERR_FORMAT;
            }
        }
    }
    if (!st)
        st = q7_yolo_build_graph_ex(m->module, path, m->from_yaml && p->shapes_only, &m->graph);
    if (st) {
        q7_model_free(m);
        return st;
    }
    *out = m;
    return Q7_OK;
}

enum q7_status q7_model_fuse(struct q7_model * m)
{
    int n = 0;
    enum q7_status st = q7_pass_fuse_model(m->graph, &n);
    if (!st)
        st = q7_pass_fuse_act(m->graph, &n);
    if (!st)
        st = q7_graph_compact(m->graph);
    if (!st)
        st = q7_graph_infer_shapes(m->graph, 1, m->graph->img_size, m->graph->img_size);
    return st;
}

void q7_model_free(struct q7_model * m)
{
    if (!m)
        return;
    q7_graph_free(m->graph);
    q7_ckpt_free(m->ckpt);
    q7_pyheap_free(m->heap);
    free(m->path);
    free(m);
}

enum q7_status q7_model_state_dict(const struct q7_model * m,
                                   enum q7_status (*fn)(void * user, const char * name,
                                                        const struct q7_py * tensor,
                                                        int is_buffer),
                                   void * user)
{
    return q7_py_state_dict_walk(m->module, "", fn, user);
}
