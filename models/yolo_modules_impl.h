/* Private to the yaml model builder (yolo_cfg.c, yolo_modules.c, yolo_detect.c): constructors
 * of the PyTorch / yolov7 module objects with the exact attributes, parameters and buffers
 * that their Python __init__ creates. Never installed. */
#ifndef Q7_YOLO_MODULES_IMPL_H
#define Q7_YOLO_MODULES_IMPL_H

#include "models/pyobj.h"
#include "models/yaml_cfg.h"

#define Q7_YM_MAX_ARGS 16
#define Q7_YM_MAX_CHANNELS ((int64_t)1 << 20)
#define Q7_YM_MAX_KERNEL 1024
/* Parameter elements of one model that get data (FP32): 4 GiB. Shape-only models may be
 * larger (nothing is allocated) up to Q7_YM_MAX_SHAPE_ELEMS. */
#define Q7_YM_MAX_DATA_ELEMS ((uint64_t)1 << 30)
#define Q7_YM_MAX_SHAPE_ELEMS ((uint64_t)1 << 40)
/* The square input of Model.__init__'s stride probe (s = 256, "2x min stride"). */
#define Q7_YM_STRIDE_PROBE 256
/* Largest side a feature map of the stride probe may reach (any real model stays at 256 or
 * below; upsampling repeated by a hostile config would grow it past int64). */
#define Q7_YM_MAX_PROBE_SIDE ((int64_t)1 << 24)

struct q7_ym_ctx {
    struct q7_pyheap * h;
    int init;                   /* enum q7_cfg_init */
    uint64_t rng;               /* splitmix64 state */
    struct q7_py * empty_tuple; /* the NEWOBJ args of every module */
    uint64_t param_elems;       /* parameter elements created so far */
};

/* A layer's positional arguments after parse_model's rewriting ([c1, c2, n, ...]). */
struct q7_ym_args {
    struct q7_py * v[Q7_YM_MAX_ARGS];
    int n;
};

/* Spatial size of a feature map during the stride probe. */
struct q7_ym_hw {
    int64_t h, w;
};

/* ---- objects and torch leaves (yolo_modules.c) ---- */

/* An nn.Module object in eval mode: state {training: False, _parameters: {}, _buffers: {},
 * _non_persistent_buffers_set: set(), _modules: {}}. NULL on OOM. */
struct q7_py * q7_ym_module(struct q7_ym_ctx * c, const char * module, const char * cls);
/* Sets an attribute (a key of the state dict); `v` NULL means OOM upstream. */
enum q7_status q7_ym_attr(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                          struct q7_py * v);
enum q7_status q7_ym_attr_int(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                              int64_t v);
enum q7_status q7_ym_attr_bool(struct q7_ym_ctx * c, struct q7_py * mod, const char * key, int v);
enum q7_status q7_ym_attr_float(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                                double v);
enum q7_status q7_ym_attr_str(struct q7_ym_ctx * c, struct q7_py * mod, const char * key,
                              const char * v);
/* A tuple of n ints (PyTorch's _pair values). */
enum q7_status q7_ym_attr_ints(struct q7_ym_ctx * c, struct q7_py * mod, const char * key, int n,
                               const int64_t * v);
enum q7_status q7_ym_child(struct q7_ym_ctx * c, struct q7_py * mod, const char * name,
                           struct q7_py * child);
/* A new FP32 tensor: data allocated (zeroed) when with_data, else a storage without data. */
struct q7_py * q7_ym_tensor(struct q7_ym_ctx * c, int ndim, const int64_t * shape, int with_data);
/* The status of the q7_ym_tensor call that just returned NULL (Q7_ERR_LIMIT for a shape past
 * the limits, Q7_ERR_OOM otherwise). */
enum q7_status q7_ym_failed(void);
float * q7_ym_data(struct q7_py * tensor); /* NULL when the tensor has no data */
/* How a new tensor is filled: Q7_CFG_INIT_RANDOM draws UNIFORM (±a) and NORMAL (mean a,
 * std b) from the seeded generator; the other modes put 0 and the mean there. */
enum q7_ym_fill { Q7_YM_FILL_ZERO, Q7_YM_FILL_ONE, Q7_YM_FILL_UNIFORM, Q7_YM_FILL_NORMAL };
/* Registers a parameter (is_param: in _parameters, counted against the size limit) or a
 * buffer of `mod`. Data is allocated unless the model is shape-only (force_data: always). */
enum q7_status q7_ym_add_tensor(struct q7_ym_ctx * c, struct q7_py * mod, int is_param,
                                const char * name, int ndim, const int64_t * shape,
                                enum q7_ym_fill f, double a, double b, int force_data);
/* Sum of numel over every parameter of the module tree (what `np` records). */
int64_t q7_ym_count_params(const struct q7_py * mod);

/* A Python number literal of an eval'd yaml string ("2", "-1", "0.5", "1e-3") into *out
 * (INT or FLOAT); 0 when `s` is not one (it then stays a string). *out NULL on OOM. */
int q7_ym_parse_number(const char * s, size_t n, struct q7_ym_ctx * c, struct q7_py ** out);
/* Evaluates an activation expression of a yaml arg ("nn.LeakyReLU(0.1)", "nn.SiLU()", ...)
 * into a module. *out NULL (and Q7_OK) when `expr` is not one. */
enum q7_status q7_ym_eval_activation(struct q7_ym_ctx * c, const char * expr, struct q7_py ** out);

/* ---- models.common, nn.Upsample, nn.MaxPool2d layers (yolo_common.c) ---- */

/* Builders: Python constructor semantics on positional args `a`; single-input ones check
 * and advance *hw through the module (the stride probe). */
enum q7_status q7_ym_conv(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                          struct q7_py ** out);
enum q7_status q7_ym_repconv(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out);
enum q7_status q7_ym_downc(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                           struct q7_py ** out);
enum q7_status q7_ym_sppcspc(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out);
enum q7_status q7_ym_mp(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                        struct q7_py ** out);
enum q7_status q7_ym_sp(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                        struct q7_py ** out);
enum q7_status q7_ym_maxpool(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                             struct q7_ym_hw * hw, struct q7_py ** out);
enum q7_status q7_ym_upsample(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                              struct q7_ym_hw * hw, struct q7_py ** out);
enum q7_status q7_ym_reorg(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_ym_hw * hw,
                           struct q7_py ** out);
/* Multi-input modules: the caller checks the input sizes. */
enum q7_status q7_ym_concat(struct q7_ym_ctx * c, const struct q7_ym_args * a, struct q7_py ** out);
enum q7_status q7_ym_shortcut(struct q7_ym_ctx * c, const struct q7_ym_args * a,
                              struct q7_py ** out);

/* Torch leaves used by the builders above and by the Detect heads. */
enum q7_status q7_ym_conv2d(struct q7_ym_ctx * c, int64_t c1, int64_t c2, int64_t k, int64_t s,
                            int64_t p, int64_t g, int bias, struct q7_py ** out);

/* BatchNorm2d(nf) after yolov7's initialize_weights (eps 1e-3, momentum 0.03). */
enum q7_status q7_ym_batchnorm2d(struct q7_ym_ctx * c, int64_t nf, struct q7_py ** out);
/* MaxPool2d(kernel_size=k, stride=s, padding=p). */
enum q7_status q7_ym_maxpool2d(struct q7_ym_ctx * c, int64_t k, int64_t s, int64_t p,
                               struct q7_py ** out);
/* An activation module: "SiLU", "LeakyReLU" (with `slope`), "ReLU", "ReLU6", "Hardswish",
 * "Identity". NULL on OOM. */
struct q7_py * q7_ym_activation(struct q7_ym_ctx * c, const char * cls, int inplace,
                                struct q7_py * slope);
/* Q7_ERR_FORMAT below lo, Q7_ERR_LIMIT above hi, naming the class and argument. */
enum q7_status q7_ym_check_range(const char * cls, const char * name, int64_t v, int64_t lo,
                                 int64_t hi);

/* ---- Detect heads (yolo_detect.c) ---- */

enum q7_ym_detect_kind { Q7_YM_DETECT = 0, Q7_YM_IDETECT, Q7_YM_IAUXDETECT };

/* Detect(nc, anchors, ch) / IDetect / IAuxDetect as constructed by parse_model. */
enum q7_status q7_ym_detect(struct q7_ym_ctx * c, enum q7_ym_detect_kind kind,
                            const struct q7_ym_args * a, struct q7_py ** out);
/* Model.__init__ on the last layer: stride = probe / width of each of the first nl inputs
 * (`in`, n_in of them), anchors /= stride, check_anchor_order, the bias prior. Sets the
 * `stride` attribute (a float32 tensor) and returns it in *stride_out. */
enum q7_status q7_ym_detect_finish(struct q7_ym_ctx * c, enum q7_ym_detect_kind kind,
                                   struct q7_py * det, const struct q7_ym_hw * in, int n_in,
                                   struct q7_py ** stride_out);

#endif
