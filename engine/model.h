/* A loaded model: the source (checkpoint or yaml config), its module tree and its graph. */
#ifndef Q7_MODEL_H
#define Q7_MODEL_H

#include "graph/graph.h"
#include "models/pyobj.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_model_params {
    const char * cfg;   /* yaml config giving the structure of a bare state_dict
                           checkpoint (root = {name: tensor} or {"state_dict": ...}) */
    int random_init;    /* yaml only: 1 = seeded random weights, 0 = zeros */
    int shapes_only;    /* yaml only: no weight data (info: shapes, params, GFLOPs) */
    uint64_t seed;
};
struct q7_model_params q7_model_params_default(void);

struct q7_ckpt;

struct q7_model {
    char * path;
    int from_yaml;               /* built from a config, not a checkpoint */
    struct q7_ckpt * ckpt;       /* NULL for yaml */
    struct q7_pyheap * heap;     /* yaml: owns the module tree */
    const struct q7_py * module; /* the models.yolo Model object */
    struct q7_graph * graph;     /* unfused until q7_model_fuse */
};

/* Loads a checkpoint (.pt) or a yaml config (.yaml/.yml) and builds its graph. Caller frees. */
enum q7_status q7_model_load(const char * path, const struct q7_model_params * p,
                             struct q7_model ** out);
/* yolov7's Model.fuse() (q7_pass_fuse_model: BN folded, RepConv fused, implicit layers
 * folded), then each activation that follows a conv moved into the conv's epilogue
 * (q7_pass_fuse_act: the same values, one pass over memory less; layer outputs follow). */
enum q7_status q7_model_fuse(struct q7_model * m);
void q7_model_free(struct q7_model * m);

/* Visits the model's state_dict as stored in the file (dtype and values as saved): for a
 * yaml model the FP32 tensors it was built with. */
enum q7_status q7_model_state_dict(const struct q7_model * m,
                                   enum q7_status (*fn)(void * user, const char * name,
                                                        const struct q7_py * tensor,
                                                        int is_buffer),
                                   void * user);

#ifdef __cplusplus
}
#endif
#endif
