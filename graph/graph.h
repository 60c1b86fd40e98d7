/* q7 graph IR: tensors, nodes, graphs, shape inference, printer.
 *
 * A graph is built once from a model (models/) and rewritten by passes (graph/pass_*.c).
 * Nodes are kept in topological order: a node's inputs always have smaller ids. Activation
 * shapes are inferred for one input size (q7_graph_infer_shapes) and recomputed when it
 * changes. Weights are FP32, owned by the graph's arena, and keep their state_dict names. */
#ifndef Q7_GRAPH_H
#define Q7_GRAPH_H

#include "graph/base.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define Q7_MAX_DIMS 8
#define Q7_MAX_LEVELS 8  /* detection levels (P3..P6 use 3 or 4) */
#define Q7_MAX_ANCHORS 8 /* anchors per level */

enum q7_dtype {
    Q7_DTYPE_F32 = 0,
    Q7_DTYPE_F16,
    Q7_DTYPE_BF16,
    Q7_DTYPE_F64,
    Q7_DTYPE_I8,
    Q7_DTYPE_U8,
    Q7_DTYPE_I16,
    Q7_DTYPE_I32,
    Q7_DTYPE_I64,
    Q7_DTYPE_BOOL,
    Q7_DTYPE_COUNT
};

/* Bytes per element. */
size_t q7_dtype_size(enum q7_dtype dtype);
/* PyTorch's name for the dtype ("float16", "int64"), as in ref/weights.json. */
const char * q7_dtype_name(enum q7_dtype dtype);

/* A tensor: NCHW order, int64 shape. `data` is not owned by the tensor (an arena is). */
struct q7_tensor {
    const char * name; /* state_dict name ("model.24.m.0.weight"), or NULL */
    enum q7_dtype dtype;
    int ndim;
    int64_t shape[Q7_MAX_DIMS];
    void * data;
};

int64_t q7_tensor_numel(const struct q7_tensor * t);

enum q7_op {
    Q7_OP_INPUT = 0,
    Q7_OP_CONV2D,
    Q7_OP_BATCHNORM,
    Q7_OP_ACT,
    Q7_OP_MAXPOOL,
    Q7_OP_UPSAMPLE,
    Q7_OP_CONCAT,
    Q7_OP_ADD,
    Q7_OP_IMPLICIT_ADD,
    Q7_OP_IMPLICIT_MUL,
    Q7_OP_REORG,
    Q7_OP_DETECT,
    Q7_OP_COUNT
};

const char * q7_op_name(enum q7_op op);

enum q7_act {
    Q7_ACT_IDENTITY = 0,
    Q7_ACT_SILU,
    Q7_ACT_LEAKY_RELU,
    Q7_ACT_RELU,
    Q7_ACT_SIGMOID,
    Q7_ACT_COUNT
};

const char * q7_act_name(enum q7_act act);

/* An activation with its parameter (LeakyReLU's negative slope). */
struct q7_act_params {
    enum q7_act kind;
    float slope;
};

struct q7_conv_params {
    int in_ch, out_ch;
    int kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dil_h, dil_w;
    int groups;
    struct q7_act_params act; /* fused epilogue activation (identity when none) */
};

struct q7_bn_params {
    double eps; /* from the module: YOLOv7 sets 1e-3, RepConv's inner BNs keep 1e-5 */
};

struct q7_pool_params {
    int kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int ceil_mode;
};

struct q7_upsample_params {
    int scale; /* nearest, integer factor */
};

enum q7_detect_kind { Q7_DETECT_PLAIN = 0, Q7_DETECT_IDETECT, Q7_DETECT_IAUX };

/* Detect/IDetect/IAuxDetect decode (the convs m[i] are ordinary conv nodes feeding it):
 * per level, sigmoid, then xy = (s*2 - 0.5 + grid) * stride, wh = (s*2)^2 * anchor_grid. */
struct q7_detect_params {
    enum q7_detect_kind kind;
    int nc, no, na, nl;
    float stride[Q7_MAX_LEVELS];
    float anchor_grid[Q7_MAX_LEVELS][Q7_MAX_ANCHORS][2]; /* in pixels (w, h) */
};

/* Roles of a node's weights. conv: weight, bias. batchnorm: weight (gamma), bias (beta),
 * running mean, running var. implicit add/mul: weight (the implicit vector, 1xCx1x1). */
enum q7_weight_role { Q7_W_WEIGHT = 0, Q7_W_BIAS, Q7_W_MEAN, Q7_W_VAR, Q7_W_COUNT };

struct q7_quantizer; /* defined by quant/; a graph only carries pointers */

struct q7_node {
    int id;
    enum q7_op op;
    const char * name;       /* module path: "model.0.conv", "model.77.m.0", "input" */
    int layer;               /* top-level layer (model.<layer>); -1 for the input */
    int n_inputs;
    int * inputs;            /* node ids, each < id */
    struct q7_tensor out;    /* F32 activation; shape from q7_graph_infer_shapes, data NULL */
    union {
        struct q7_conv_params conv;
        struct q7_bn_params bn;
        struct q7_act_params act;
        struct q7_pool_params pool;
        struct q7_upsample_params upsample;
        struct q7_detect_params detect;
        int concat_axis;
    } p;
    struct q7_tensor * w[Q7_W_COUNT];   /* weights by role, NULL where absent */
    struct q7_quantizer * in_quant;     /* conv: input quantizer (NULL: none) */
    struct q7_quantizer * w_quant;      /* conv: weight quantizer (NULL: none) */
    int dead;                           /* removed by a pass; dropped by q7_graph_compact */
};

/* A top-level layer as yolov7's model summary shows it. */
#define Q7_MAX_FROM 16
struct q7_layer {
    int index;
    int n_from;
    int from[Q7_MAX_FROM]; /* -1 = previous layer, as in the yaml */
    int n;                 /* repeats (after depth_multiple) */
    int64_t params;        /* parameters of the module (not buffers) */
    const char * type;     /* "Conv", "models.common.Conv" stripped to the class name */
    const char * args;     /* the module's arguments as text ("[3, 32, 3, 1]") */
    int out_node;          /* node id whose output is this layer's output */
};

struct q7_graph {
    struct q7_arena * arena;
    int n_nodes, cap_nodes;
    struct q7_node ** nodes;
    int input;         /* node id of the image input */
    int output;        /* node id of the detect node */
    int n_layers;
    struct q7_layer * layers;
    int img_size;      /* native size: 640, or 1280 for P6 models */
    int nc;            /* number of classes */
    const char ** names; /* class names (nc), or NULL */
    const char * source; /* file it was built from */
    int stride_max;    /* largest detect stride (input H and W must be multiples) */
    int fused;         /* bitmask of Q7_FUSED_* passes applied */
    int64_t folded_params; /* parameters folded away that yolov7's fused model still holds
                              (IDetect's ImplicitA/M stay as modules after fuse()) */
};

enum { Q7_FUSED_BN = 1, Q7_FUSED_REPCONV = 2, Q7_FUSED_IMPLICIT = 4, Q7_FUSED_ACT = 8 };

/* Creates an empty graph. NULL on OOM (message set). Free with q7_graph_free. */
struct q7_graph * q7_graph_create(void);
void q7_graph_free(struct q7_graph * g);

/* Appends a node; `inputs` (n_inputs ids) are copied. Returns the new node or NULL on OOM.
 * `name` is copied into the arena. */
struct q7_node * q7_graph_add_node(struct q7_graph * g, enum q7_op op, const char * name,
                                   int layer, const int * inputs, int n_inputs);

/* Allocates a named F32 tensor of the given shape in the graph's arena (zeroed). */
struct q7_tensor * q7_graph_new_tensor(struct q7_graph * g, const char * name, int ndim,
                                       const int64_t * shape);

/* The same without data (shape-only graphs: info on configs too large to materialize). */
struct q7_tensor * q7_graph_new_tensor_shape(struct q7_graph * g, const char * name, int ndim,
                                             const int64_t * shape);

/* Infers every node's output shape for an input of n x 3 x h x w. Q7_ERR_ARG names the first
 * node whose inputs do not fit (channels, spatial sizes). */
enum q7_status q7_graph_infer_shapes(struct q7_graph * g, int64_t n, int64_t h, int64_t w);

/* Redirects every use of node `from` to node `to` (ids). */
void q7_graph_replace_uses(struct q7_graph * g, int from, int to);

/* Number of nodes that read node `id`'s output. */
int q7_graph_count_uses(const struct q7_graph * g, int id);

/* Drops dead nodes and nodes that cannot reach the output, renumbering ids. */
enum q7_status q7_graph_compact(struct q7_graph * g);

/* Parameters (weights and biases, plus BN gamma/beta and implicit vectors; not running
 * statistics) and 2 x multiply-adds of all convolutions for a square input of `img` pixels. */
int64_t q7_graph_count_params(const struct q7_graph * g);
double q7_graph_gflops(struct q7_graph * g, int img);

/* Prints one line per node: id, op, name, inputs, shape, parameters. */
void q7_graph_print(const struct q7_graph * g, FILE * f);

/* Finds a node by module name; -1 when absent. */
int q7_graph_find(const struct q7_graph * g, const char * name);

#ifdef __cplusplus
}
#endif
#endif
