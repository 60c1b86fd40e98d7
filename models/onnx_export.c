/* ONNX export of a q7 graph with protobuf-c (messages from models/onnx.proto). Every message,
 * string and array lives in one arena; the weights are referenced, not copied, until packed. */
#include "models/onnx_export.h"

#include "onnx.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONNX_IR_VERSION 8
#define ONNX_OPSET 13
#define NODE_MAX_ATTRS 8
#define NODE_MAX_INPUTS 64

struct ox {
    struct q7_arena * a;
    Onnx__NodeProto ** nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto ** inits;
    size_t n_inits, cap_inits;
    int tmp;            /* counter for temporary tensor names */
    const char * last;  /* name of the last node: the q7 node it came from */
    int repeat;         /* nodes emitted under that name so far */
    enum q7_status st;  /* first failure (OOM), checked at the end */
};

static void * ox_alloc(struct ox * x, size_t size)
{
    void * p = q7_arena_alloc(x->a, size ? size : 1);
    if (!p && !x->st)
        x->st = Q7_ERR_OOM;
    return p;
}

static char * ox_str(struct ox * x, const char * fmt, ...) __attribute__((format(printf, 2, 3)));
static char * ox_str(struct ox * x, const char * fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char * s = q7_arena_strdup(x->a, buf);
    if (!s && !x->st)
        x->st = Q7_ERR_OOM;
    return s ? s : (char *)"";
}

static int ox_grow(struct ox * x, void *** arr, size_t * n, size_t * cap)
{
    if (*n < *cap)
        return 1;
    size_t nc = *cap ? *cap * 2 : 256;
    void ** na = realloc(*arr, nc * sizeof *na);
    if (!na) {
        x->st = Q7_ERR_OOM;
        return 0;
    }
    *arr = na;
    *cap = nc;
    return 1;
}

/* A node `op` reading `in` (n_in names) and writing `out`. */
static Onnx__NodeProto * ox_node(struct ox * x, const char * op, const char * name,
                                 const char * const * in, int n_in, const char * out)
{
    Onnx__NodeProto * nd = ox_alloc(x, sizeof *nd);
    char ** ins = ox_alloc(x, (size_t)n_in * sizeof *ins);
    char ** outs = ox_alloc(x, sizeof *outs);
    Onnx__AttributeProto ** attrs = ox_alloc(x, NODE_MAX_ATTRS * sizeof *attrs);
    if (!nd || !ins || !outs || !attrs ||
        !ox_grow(x, (void ***)&x->nodes, &x->n_nodes, &x->cap_nodes))
        return NULL;
    Onnx__NodeProto init = ONNX__NODE_PROTO__INIT;
    *nd = init;
    for (int k = 0; k < n_in; k++)
        ins[k] = (char *)in[k];
    outs[0] = (char *)out;
    nd->n_input = (size_t)n_in;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->op_type = (char *)op;
    /* one q7 node may become several ONNX nodes: the first keeps the module name, the others
     * get "/1", "/2"... (ONNX node names must be unique) */
    if (x->last && strcmp(x->last, name) == 0) {
        nd->name = ox_str(x, "%s/%d", name, ++x->repeat);
    } else {
        nd->name = (char *)name;
        x->last = name;
        x->repeat = 0;
    }
    nd->attribute = attrs;
    x->nodes[x->n_nodes++] = nd;
    return nd;
}

static Onnx__AttributeProto * ox_attr(struct ox * x, Onnx__NodeProto * nd, const char * name,
                                      Onnx__AttributeProto__AttributeType type)
{
    if (!nd || nd->n_attribute >= NODE_MAX_ATTRS)
        return NULL;
    Onnx__AttributeProto * a = ox_alloc(x, sizeof *a);
    if (!a)
        return NULL;
    Onnx__AttributeProto init = ONNX__ATTRIBUTE_PROTO__INIT;
    *a = init;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    nd->attribute[nd->n_attribute++] = a;
    return a;
}

static void ox_attr_int(struct ox * x, Onnx__NodeProto * nd, const char * name, int64_t v)
{
    Onnx__AttributeProto * a = ox_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
}

static void ox_attr_float(struct ox * x, Onnx__NodeProto * nd, const char * name, float v)
{
    Onnx__AttributeProto * a =
        ox_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
}

static void ox_attr_str(struct ox * x, Onnx__NodeProto * nd, const char * name, const char * v)
{
    Onnx__AttributeProto * a =
        ox_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) {
        a->has_s = 1;
        a->s.data = (uint8_t *)v;
        a->s.len = strlen(v);
    }
}

static void ox_attr_ints(struct ox * x, Onnx__NodeProto * nd, const char * name,
                         const int64_t * v, int n)
{
    Onnx__AttributeProto * a = ox_attr(x, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t * vals = ox_alloc(x, (size_t)n * sizeof *vals);
    if (a && vals) {
        memcpy(vals, v, (size_t)n * sizeof *vals);
        a->n_ints = (size_t)n;
        a->ints = vals;
    }
}

/* An initializer holding `bytes` of raw little-endian data (referenced, not copied). */
static const char * ox_init(struct ox * x, const char * name, int dtype, const int64_t * dims,
                            int ndims, const void * data, size_t bytes)
{
    Onnx__TensorProto * t = ox_alloc(x, sizeof *t);
    int64_t * d = ox_alloc(x, (size_t)ndims * sizeof *d);
    if (!t || !d || !ox_grow(x, (void ***)&x->inits, &x->n_inits, &x->cap_inits))
        return "";
    Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
    *t = init;
    memcpy(d, dims, (size_t)ndims * sizeof *d);
    t->n_dims = (size_t)ndims;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = (char *)name;
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)data;
    t->raw_data.len = bytes;
    x->inits[x->n_inits++] = t;
    return name;
}

static const char * ox_weight(struct ox * x, const struct q7_tensor * t)
{
    return ox_init(x, ox_str(x, "%s", t->name), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t->shape,
                   t->ndim, t->data, (size_t)q7_tensor_numel(t) * sizeof(float));
}

/* Constants copied into the arena. */
static const char * ox_const_f32(struct ox * x, const int64_t * dims, int ndims,
                                 const float * v, size_t n)
{
    float * c = ox_alloc(x, n * sizeof *c);
    if (!c)
        return "";
    memcpy(c, v, n * sizeof *c);
    return ox_init(x, ox_str(x, "const_%d", x->tmp++), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                   dims, ndims, c, n * sizeof *c);
}

static const char * ox_const_i64(struct ox * x, const int64_t * v, int n)
{
    int64_t * c = ox_alloc(x, (size_t)n * sizeof *c);
    if (!c)
        return "";
    memcpy(c, v, (size_t)n * sizeof *c);
    int64_t dims[1] = {n};
    return ox_init(x, ox_str(x, "const_%d", x->tmp++), ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
                   dims, 1, c, (size_t)n * sizeof *c);
}

static const char * ox_scalar(struct ox * x, float v)
{
    return ox_const_f32(x, NULL, 0, &v, 1);
}

static const char * ox_tmp(struct ox * x)
{
    return ox_str(x, "tmp_%d", x->tmp++);
}

/* A binary op on two names, returning the output name. */
static const char * ox_bin(struct ox * x, const char * op, const char * a, const char * b,
                           const char * name)
{
    const char * in[2] = {a, b};
    const char * out = ox_tmp(x);
    ox_node(x, op, name, in, 2, out);
    return out;
}

/* Activation applied to `in`, writing `out` (identity: a node-free alias is not possible, so
 * the caller avoids it). */
static void ox_act(struct ox * x, struct q7_act_params act, const char * in, const char * out,
                   const char * name)
{
    const char * one[1] = {in};
    switch (act.kind) {
    case Q7_ACT_SILU: {
        const char * sig = ox_tmp(x);
        ox_node(x, "Sigmoid", name, one, 1, sig);
        const char * two[2] = {in, sig};
        ox_node(x, "Mul", name, two, 2, out);
        break;
    }
    case Q7_ACT_LEAKY_RELU:
        ox_attr_float(x, ox_node(x, "LeakyRelu", name, one, 1, out), "alpha", act.slope);
        break;
    case Q7_ACT_RELU:
        ox_node(x, "Relu", name, one, 1, out);
        break;
    case Q7_ACT_SIGMOID:
        ox_node(x, "Sigmoid", name, one, 1, out);
        break;
    default:
        ox_node(x, "Identity", name, one, 1, out);
        break;
    }
}

/* Q/DQ pair: per tensor (n == 1) or per channel along axis 0. Returns the dequantized name. */
static const char * ox_qdq(struct ox * x, const char * in, const float * amax, int n,
                           const char * name)
{
    float * scale = ox_alloc(x, (size_t)n * sizeof *scale);
    int8_t * zp = ox_alloc(x, (size_t)n);
    if (!scale || !zp)
        return in;
    for (int k = 0; k < n; k++)
        scale[k] = amax[k] > 0 ? amax[k] / 127.0f : 1.0f;
    int64_t dims[1] = {n};
    const char * s = ox_init(x, ox_str(x, "%s_scale", name), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                             dims, n > 1, scale, (size_t)n * sizeof *scale);
    const char * z = ox_init(x, ox_str(x, "%s_zero_point", name),
                             ONNX__TENSOR_PROTO__DATA_TYPE__INT8, dims, n > 1, zp, (size_t)n);
    const char * qin[3] = {in, s, z};
    const char * q = ox_tmp(x), * dq = ox_tmp(x);
    Onnx__NodeProto * qn = ox_node(x, "QuantizeLinear", ox_str(x, "%s_quantize", name), qin, 3, q);
    const char * dqin[3] = {q, s, z};
    Onnx__NodeProto * dn =
        ox_node(x, "DequantizeLinear", ox_str(x, "%s_dequantize", name), dqin, 3, dq);
    if (n > 1) {
        ox_attr_int(x, qn, "axis", 0);
        ox_attr_int(x, dn, "axis", 0);
    }
    return dq;
}

static const char * ox_slice(struct ox * x, const char * in, int64_t start, int64_t end,
                             int64_t axis, int64_t step, const char * name)
{
    const char * ins[5] = {in, ox_const_i64(x, &start, 1), ox_const_i64(x, &end, 1),
                           ox_const_i64(x, &axis, 1), ox_const_i64(x, &step, 1)};
    const char * out = ox_tmp(x);
    ox_node(x, "Slice", name, ins, 5, out);
    return out;
}

/* yolov7's Detect decode for level l of node nd, returning (batch, na*ny*nx, no). */
static const char * ox_detect_level(struct ox * x, const struct q7_node * nd, int l,
                                    const char * in, int64_t ny, int64_t nx)
{
    const struct q7_detect_params * p = &nd->p.detect;
    const char * name = nd->name;
    int64_t shape5[5] = {-1, p->na, p->no, ny, nx};
    const char * rin[2] = {in, ox_const_i64(x, shape5, 5)};
    const char * r = ox_tmp(x);
    ox_node(x, "Reshape", name, rin, 2, r);
    const char * t = ox_tmp(x);
    const char * tin[1] = {r};
    int64_t perm[5] = {0, 1, 3, 4, 2};
    ox_attr_ints(x, ox_node(x, "Transpose", name, tin, 1, t), "perm", perm, 5);
    const char * s = ox_tmp(x);
    const char * sin[1] = {t};
    ox_node(x, "Sigmoid", name, sin, 1, s);
    /* grid (1, 1, ny, nx, 2) holding (x, y); anchor_grid (1, na, 1, 1, 2) */
    size_t ng = (size_t)(ny * nx * 2);
    float * grid = ox_alloc(x, ng * sizeof *grid);
    if (!grid)
        return "";
    for (int64_t yy = 0; yy < ny; yy++)
        for (int64_t xx = 0; xx < nx; xx++) {
            grid[(yy * nx + xx) * 2] = (float)xx;
            grid[(yy * nx + xx) * 2 + 1] = (float)yy;
        }
    int64_t gdims[5] = {1, 1, ny, nx, 2};
    const char * g = ox_const_f32(x, gdims, 5, grid, ng);
    float ag[Q7_MAX_ANCHORS * 2];
    for (int a = 0; a < p->na; a++) {
        ag[2 * a] = p->anchor_grid[l][a][0];
        ag[2 * a + 1] = p->anchor_grid[l][a][1];
    }
    int64_t adims[5] = {1, p->na, 1, 1, 2};
    const char * anc = ox_const_f32(x, adims, 5, ag, (size_t)p->na * 2);
    const char * two = ox_scalar(x, 2.0f);
    /* xy = (s[..., 0:2] * 2 - 0.5 + grid) * stride */
    const char * xy = ox_slice(x, s, 0, 2, 4, 1, name);
    xy = ox_bin(x, "Mul", xy, two, name);
    xy = ox_bin(x, "Sub", xy, ox_scalar(x, 0.5f), name);
    xy = ox_bin(x, "Add", xy, g, name);
    xy = ox_bin(x, "Mul", xy, ox_scalar(x, p->stride[l]), name);
    /* wh = (s[..., 2:4] * 2) ** 2 * anchor_grid */
    const char * wh = ox_slice(x, s, 2, 4, 4, 1, name);
    wh = ox_bin(x, "Mul", wh, two, name);
    wh = ox_bin(x, "Mul", wh, wh, name);
    wh = ox_bin(x, "Mul", wh, anc, name);
    const char * rest = ox_slice(x, s, 4, p->no, 4, 1, name);
    const char * cin[3] = {xy, wh, rest};
    const char * c = ox_tmp(x);
    ox_attr_int(x, ox_node(x, "Concat", name, cin, 3, c), "axis", -1);
    int64_t shape3[3] = {-1, (int64_t)p->na * ny * nx, p->no};
    const char * fin[2] = {c, ox_const_i64(x, shape3, 3)};
    const char * out = ox_tmp(x);
    ox_node(x, "Reshape", name, fin, 2, out);
    return out;
}

static Onnx__ValueInfoProto * ox_value(struct ox * x, const char * name, const int64_t * dims,
                                       const char * const * params, int ndims)
{
    Onnx__ValueInfoProto * v = ox_alloc(x, sizeof *v);
    Onnx__TypeProto * t = ox_alloc(x, sizeof *t);
    Onnx__TypeProto__Tensor * tt = ox_alloc(x, sizeof *tt);
    Onnx__TensorShapeProto * sh = ox_alloc(x, sizeof *sh);
    Onnx__TensorShapeProto__Dimension ** dv = ox_alloc(x, (size_t)ndims * sizeof *dv);
    if (!v || !t || !tt || !sh || !dv)
        return NULL;
    Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
    Onnx__TypeProto ti = ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;
    Onnx__TensorShapeProto shi = ONNX__TENSOR_SHAPE_PROTO__INIT;
    *v = vi;
    *t = ti;
    *tt = tti;
    *sh = shi;
    for (int d = 0; d < ndims; d++) {
        Onnx__TensorShapeProto__Dimension * dim = ox_alloc(x, sizeof *dim);
        if (!dim)
            return NULL;
        Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        *dim = di;
        if (params && params[d]) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = (char *)params[d];
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[d];
        }
        dv[d] = dim;
    }
    sh->n_dim = (size_t)ndims;
    sh->dim = dv;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = (char *)name;
    v->type = t;
    return v;
}

/* Emits one q7 node; names[id] receives its output tensor name. */
static enum q7_status emit(struct ox * x, const struct q7_graph * g, const struct q7_node * nd,
                           const char ** names, const struct q7_onnx_quant * quant)
{
    const char * in[NODE_MAX_INPUTS];
    if (nd->n_inputs > NODE_MAX_INPUTS)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: too many inputs for export", nd->name);
    for (int k = 0; k < nd->n_inputs; k++)
        in[k] = names[nd->inputs[k]];
    const char * out = nd->id == g->output ? "output" : ox_str(x, "t%d", nd->id);
    const char * name = nd->name;
    names[nd->id] = out;
    switch (nd->op) {
    case Q7_OP_CONV2D: {
        const struct q7_conv_params * p = &nd->p.conv;
        const struct q7_onnx_quant * q = quant ? &quant[nd->id] : NULL;
        const char * xin = in[0];
        if (q && q->in_amax > 0)
            xin = ox_qdq(x, xin, &q->in_amax, 1, ox_str(x, "%s._input_quantizer", name));
        const char * w = ox_weight(x, nd->w[Q7_W_WEIGHT]);
        if (q && q->w_amax && q->n_w == p->out_ch)
            w = ox_qdq(x, w, q->w_amax, q->n_w, ox_str(x, "%s._weight_quantizer", name));
        const char * cin[3] = {xin, w, nd->w[Q7_W_BIAS] ? ox_weight(x, nd->w[Q7_W_BIAS]) : ""};
        const char * cout = p->act.kind == Q7_ACT_IDENTITY ? out : ox_tmp(x);
        Onnx__NodeProto * c = ox_node(x, "Conv", name, cin, nd->w[Q7_W_BIAS] ? 3 : 2, cout);
        int64_t k[2] = {p->kh, p->kw}, s[2] = {p->stride_h, p->stride_w},
                d[2] = {p->dil_h, p->dil_w}, pads[4] = {p->pad_h, p->pad_w, p->pad_h, p->pad_w};
        ox_attr_ints(x, c, "kernel_shape", k, 2);
        ox_attr_ints(x, c, "strides", s, 2);
        ox_attr_ints(x, c, "dilations", d, 2);
        ox_attr_ints(x, c, "pads", pads, 4);
        ox_attr_int(x, c, "group", p->groups);
        if (p->act.kind != Q7_ACT_IDENTITY)
            ox_act(x, p->act, cout, out, name);
        return Q7_OK;
    }
    case Q7_OP_BATCHNORM: {
        const char * bin[5] = {in[0], ox_weight(x, nd->w[Q7_W_WEIGHT]),
                               ox_weight(x, nd->w[Q7_W_BIAS]), ox_weight(x, nd->w[Q7_W_MEAN]),
                               ox_weight(x, nd->w[Q7_W_VAR])};
        ox_attr_float(x, ox_node(x, "BatchNormalization", name, bin, 5, out), "epsilon",
                      (float)nd->p.bn.eps);
        return Q7_OK;
    }
    case Q7_OP_ACT:
        ox_act(x, nd->p.act, in[0], out, name);
        return Q7_OK;
    case Q7_OP_MAXPOOL: {
        const struct q7_pool_params * p = &nd->p.pool;
        Onnx__NodeProto * m = ox_node(x, "MaxPool", name, in, 1, out);
        int64_t k[2] = {p->kh, p->kw}, s[2] = {p->stride_h, p->stride_w},
                pads[4] = {p->pad_h, p->pad_w, p->pad_h, p->pad_w};
        ox_attr_ints(x, m, "kernel_shape", k, 2);
        ox_attr_ints(x, m, "strides", s, 2);
        ox_attr_ints(x, m, "pads", pads, 4);
        ox_attr_int(x, m, "ceil_mode", p->ceil_mode);
        return Q7_OK;
    }
    case Q7_OP_UPSAMPLE: {
        float sc[4] = {1, 1, (float)nd->p.upsample.scale, (float)nd->p.upsample.scale};
        int64_t dims[1] = {4};
        const char * rin[3] = {in[0], "", ox_const_f32(x, dims, 1, sc, 4)};
        Onnx__NodeProto * r = ox_node(x, "Resize", name, rin, 3, out);
        ox_attr_str(x, r, "mode", "nearest");
        ox_attr_str(x, r, "coordinate_transformation_mode", "asymmetric");
        ox_attr_str(x, r, "nearest_mode", "floor");
        return Q7_OK;
    }
    case Q7_OP_CONCAT:
        ox_attr_int(x, ox_node(x, "Concat", name, in, nd->n_inputs, out), "axis", 1);
        return Q7_OK;
    case Q7_OP_ADD:
        ox_node(x, "Sum", name, in, nd->n_inputs, out);
        return Q7_OK;
    case Q7_OP_IMPLICIT_ADD:
    case Q7_OP_IMPLICIT_MUL: {
        const char * bin[2] = {in[0], ox_weight(x, nd->w[Q7_W_WEIGHT])};
        ox_node(x, nd->op == Q7_OP_IMPLICIT_ADD ? "Add" : "Mul", name, bin, 2, out);
        return Q7_OK;
    }
    case Q7_OP_REORG: {
        /* cat(x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]) */
        static const int offs[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
        const char * parts[4];
        for (int k = 0; k < 4; k++) {
            const char * rows = ox_slice(x, in[0], offs[k][0], INT64_MAX, 2, 2, name);
            parts[k] = ox_slice(x, rows, offs[k][1], INT64_MAX, 3, 2, name);
        }
        ox_attr_int(x, ox_node(x, "Concat", name, parts, 4, out), "axis", 1);
        return Q7_OK;
    }
    case Q7_OP_DETECT: {
        const char * lv[Q7_MAX_LEVELS];
        for (int l = 0; l < nd->p.detect.nl; l++) {
            const struct q7_tensor * t = &g->nodes[nd->inputs[l]]->out;
            lv[l] = ox_detect_level(x, nd, l, in[l], t->shape[2], t->shape[3]);
        }
        ox_attr_int(x, ox_node(x, "Concat", name, lv, nd->p.detect.nl, out), "axis", 1);
        return Q7_OK;
    }
    case Q7_OP_INPUT:
    case Q7_OP_COUNT:
        break;
    }
    return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: op %s cannot be exported", nd->name,
                        q7_op_name(nd->op));
}

enum q7_status q7_onnx_export(struct q7_graph * g, int64_t h, int64_t w,
                              const struct q7_onnx_quant * quant, const char * path)
{
    enum q7_status st = q7_graph_infer_shapes(g, 1, h, w);
    if (st)
        return st;
    struct ox x = {.a = q7_arena_create(1 << 20)};
    const char ** names = calloc((size_t)g->n_nodes, sizeof *names);
    uint8_t * buf = NULL;
    if (!x.a || !names) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    /* live nodes only: those that reach the output */
    uint8_t * live = ox_alloc(&x, (size_t)g->n_nodes);
    if (!live) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    live[g->output] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--)
        for (int k = 0; live[i] && k < g->nodes[i]->n_inputs; k++)
            live[g->nodes[i]->inputs[k]] = 1;
    names[g->input] = "images";
    for (int i = 0; i < g->n_nodes && !st; i++)
        if (live[i] && g->nodes[i]->op != Q7_OP_INPUT)
            st = emit(&x, g, g->nodes[i], names, quant);
    if (st)
        goto done;
    const struct q7_node * det = g->nodes[g->output];
    int64_t in_dims[4] = {1, 3, h, w}, out_dims[3] = {1, det->out.shape[1], det->out.shape[2]};
    const char * batch[4] = {"batch", NULL, NULL, NULL};
    Onnx__ValueInfoProto * vin = ox_value(&x, "images", in_dims, batch, 4);
    Onnx__ValueInfoProto * vout = ox_value(&x, "output", out_dims, batch, 3);
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto * opsets[1] = {&opset};
    Onnx__ValueInfoProto * ins[1] = {vin}, * outs[1] = {vout};
    if (x.st || !vin || !vout) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    opset.domain = "";
    opset.has_version = 1;
    opset.version = ONNX_OPSET;
    graph.name = "q7";
    graph.n_node = x.n_nodes;
    graph.node = x.nodes;
    graph.n_initializer = x.n_inits;
    graph.initializer = x.inits;
    graph.n_input = 1;
    graph.input = ins;
    graph.n_output = 1;
    graph.output = outs;
    model.has_ir_version = 1;
    model.ir_version = ONNX_IR_VERSION;
    model.producer_name = "q7";
    model.producer_version = "0.1.0";
    model.graph = &graph;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    size_t size = onnx__model_proto__get_packed_size(&model);
    buf = malloc(size ? size : 1);
    if (!buf) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory for %zu bytes", path, size);
        goto done;
    }
    onnx__model_proto__pack(&model, buf);
    st = q7_file_write_atomic(path, buf, size);
    if (!st)
        q7_log(Q7_LOG_INFO, "q7: %s: %zu ONNX nodes, %zu initializers, %.1f MiB", path,
               x.n_nodes, x.n_inits, size / 1048576.0);
done:
    free(buf);
    free(x.nodes);
    free(x.inits);
    free(names);
    q7_arena_free(x.a);
    return st;
}
