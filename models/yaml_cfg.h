/* YOLOv7 yaml configs: a bounded YAML reader (PyYAML SafeLoader semantics) and the module
 * tree that `models.yolo.Model(cfg)` builds from a config, as inert objects of pyobj.h.
 *
 * The tree has exactly the shape that PyTorch pickles into a yolov7 checkpoint: the same
 * classes ("models.common"/"Conv", "torch.nn.modules.conv"/"Conv2d", ...), the same
 * `_modules` / `_parameters` / `_buffers` dicts with the same keys in the same order (so the
 * state_dict names match `model.24.m.0.weight`), the same attributes (Conv2d kernel_size as a
 * tuple, BatchNorm2d eps 1e-3 from yolov7's initialize_weights, parse_model's i / f / type / np
 * on every top-level layer, Detect's anchors in grid units and anchor_grid in pixels, stride),
 * so that everything that reads a checkpoint's Model reads a built one the same way.
 *
 * Not reproduced: the forward/backward hook dicts of every module (PyTorch recreates missing
 * ones on load and nothing in q7 reads them). Tensors are FP32 (num_batches_tracked int64). */
#ifndef Q7_YAML_CFG_H
#define Q7_YAML_CFG_H

#include "models/pyobj.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds on a yaml file (hostile input never exhausts memory or stack). */
#define Q7_YAML_MAX_BYTES ((size_t)16 << 20) /* file size */
#define Q7_YAML_MAX_DEPTH 64                 /* nested lists / mappings */
#define Q7_YAML_MAX_NODES ((size_t)1 << 20)  /* scalars + containers + aliases */

/* Parses the yaml file `path` (a single document) into objects of `heap`: mappings become
 * DICTs (insertion order kept, a repeated key keeps its first position and its last value),
 * sequences LISTs, and plain scalars resolve as PyYAML's SafeLoader does (YAML 1.1): null/~/
 * empty → NONE, true/yes/on/false/no/off (three casings) → BOOL, ints (decimal, 0x1F, leading-0
 * octal 017, 0b101, sexagesimal 1:30, '_' separators) → INT, floats with a '.' (1.0, .5,
 * 1.0e+3, .inf, .nan) → FLOAT, anything else → STR ("None", "1e3", "1.e3", "0o17" and
 * "nn.LeakyReLU(0.1)" stay strings, as in PyYAML). Differences from PyYAML: timestamps and the
 * merge key "<<" stay strings, ints beyond int64 are Q7_ERR_LIMIT. Quoted scalars are
 * strings; the standard tags !!str/!!int/!!float/!!bool/!!null/!!seq/!!map are honoured, any
 * other tag is Q7_ERR_UNSUPPORTED. Anchors and aliases
 * are supported (an alias shares the anchored object). *root_out is the document's root node
 * (a DICT for model configs; NONE for an empty document).
 * Errors name the file, line and column: Q7_ERR_IO (missing/unreadable), Q7_ERR_FORMAT (invalid
 * yaml, several documents), Q7_ERR_LIMIT (the bounds above, an int beyond int64), Q7_ERR_OOM. */
enum q7_status q7_yaml_load(const char * path, struct q7_pyheap * heap, struct q7_py ** root_out);

/* The same from memory; `name` is used in messages (e.g. the path). */
enum q7_status q7_yaml_parse(const char * text, size_t len, const char * name,
                             struct q7_pyheap * heap, struct q7_py ** root_out);

/* How the parameters of a built model are filled. */
enum q7_cfg_init {
    /* Deterministic: conv weights and biases 0, BatchNorm weight 1 / bias 0 / running mean 0 /
     * running var 1, ImplicitA 0, ImplicitM 1, plus the Detect bias prior of yolov7's
     * Model._initialize_biases (obj += log(8 / (640 / s)^2), cls += log(0.6 / (nc - 0.99))). */
    Q7_CFG_INIT_ZERO = 0,
    /* Seeded random, PyTorch's default init: conv weight and bias uniform in ±1/sqrt(fan_in),
     * ImplicitA normal(0, 0.02), ImplicitM normal(1, 0.02); BatchNorm and the Detect bias
     * prior as for ZERO. Same seed, same config → the same values, bit for bit. */
    Q7_CFG_INIT_RANDOM,
    /* Shapes only: parameters and BatchNorm running statistics get storages without data
     * (numel set, data NULL), for `q7 info cfg.yaml` and parameter counts of large models
     * without allocating them. Detect's anchors / anchor_grid / stride and num_batches_tracked
     * are always filled. */
    Q7_CFG_INIT_SHAPE,
};

struct q7_cfg_params {
    double width_multiple; /* > 0: overrides the yaml's width_multiple; 0: the yaml's */
    double depth_multiple; /* > 0: overrides depth_multiple; 0: the yaml's */
    int nc;                /* > 0: overrides nc (as Model(cfg, nc=...) does); 0: the yaml's */
    int init;              /* enum q7_cfg_init */
    uint64_t seed;         /* for Q7_CFG_INIT_RANDOM */
};
/* All zero: everything from the yaml, Q7_CFG_INIT_ZERO, seed 0. */
struct q7_cfg_params q7_cfg_params_default(void);

/* Builds the "models.yolo"/"Model" object that `Model(cfg)` constructs from the config dict
 * `yaml_dict` (as loaded by q7_yaml_load, or a checkpoint's Model.yaml): parse_model's
 * semantics exactly (depth_multiple on repeats: n = max(round(n * gd), 1) if n > 1; channels
 * make_divisible(c2 * gw, 8) except the output layer; string args evaluated: None, True, False,
 * nc, anchors, numbers, nn.LeakyReLU(x) / nn.SiLU() / nn.ReLU() / nn.ReLU6() / nn.Hardswish()
 * / nn.Identity(), others kept as strings; `ch` bookkeeping of Concat, Shortcut, ReOrg, Detect;
 * anchors given as lists or as a number per level), then Model.__init__: Detect strides from
 * the cumulative stride of each Detect input at a 256x256 input (8, 16, 32 [, 64] for the
 * official configs), anchors divided by them, check_anchor_order, the bias prior, and yolov7's
 * initialize_weights (BatchNorm eps 1e-3, momentum 0.03; LeakyReLU/ReLU inplace). All modules
 * are in eval mode (training False).
 *
 * The dict is deep-copied into `heap` (the caller's dict is never modified) and becomes the
 * Model's `yaml` attribute, with `ch` added (default 3) and the overrides of `p` applied
 * (NULL `p`: defaults). Module types: Conv, RepConv, DownC, SPPCSPC, MP, SP, ReOrg, Concat,
 * Shortcut, nn.Upsample, nn.MaxPool2d, Detect, IDetect, IAuxDetect.
 * Errors (message names the layer, e.g. "head[3] (layer 54, Conv): ..."): Q7_ERR_FORMAT for a
 * malformed config (missing keys, wrong types, a `from` index out of range, a repeat < 1,
 * inputs of different sizes at 256x256), Q7_ERR_UNSUPPORTED for an unknown module or
 * activation, Q7_ERR_LIMIT for absurd sizes, Q7_ERR_OOM. *model_out is NULL on failure; the
 * objects made so far stay in `heap` until it is freed. Stricter than Python where Python
 * builds a model that cannot run: a repeat < 1, a `from` index that forward() would reject,
 * a Detect with another number of inputs than anchor levels (IAuxDetect: twice as many; its
 * strides come from the first nl inputs, Python's [:4] for the official nl = 4). */
enum q7_status q7_yolo_model_from_dict(const struct q7_py * yaml_dict,
                                       const struct q7_cfg_params * p, struct q7_pyheap * heap,
                                       struct q7_py ** model_out);

/* q7_yaml_load + q7_yolo_model_from_dict, and like Model('path/x.yaml') the Model also gets
 * the attribute yaml_file = 'x.yaml' (before `yaml`). Messages start with the path. */
enum q7_status q7_yolo_model_from_yaml(const char * path, const struct q7_cfg_params * p,
                                       struct q7_pyheap * heap, struct q7_py ** model_out);

/* model.load_state_dict(state_dict, strict=True) for a built Model (a bare state_dict + its
 * cfg): every parameter and persistent buffer of `model` is replaced by the tensor of the same
 * name ("model.0.conv.weight") in `state_dict` (a DICT of name → TENSOR, e.g. from a
 * checkpoint), which must have the same shape (any dtype). Tensors are shared, not copied:
 * keep the state_dict's heap alive as long as the model. Q7_ERR_NOT_FOUND names a missing key,
 * Q7_ERR_FORMAT an unexpected key or a shape mismatch; `source` (the file) starts the
 * message. On error the model may be partly loaded. */
enum q7_status q7_yolo_model_load_state_dict(struct q7_py * model, const struct q7_py * state_dict,
                                             const char * source);

#ifdef __cplusplus
}
#endif
#endif
