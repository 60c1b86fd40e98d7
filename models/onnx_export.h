/* ONNX export of a q7 graph (opset 13), optionally with QuantizeLinear/DequantizeLinear pairs
 * (the fake-INT8 model as TensorRT reads it). Written with protobuf-c from models/onnx.proto. */
#ifndef Q7_ONNX_EXPORT_H
#define Q7_ONNX_EXPORT_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Quantization of one conv node for the export: in_amax > 0 puts a per-tensor Q/DQ pair on
 * its input (scale amax / 127, zero point 0, int8); w_amax (n_w = out_ch values) a per-channel
 * pair on its weights. */
struct q7_onnx_quant {
    float in_amax;
    const float * w_amax;
    int n_w;
};

/* Writes `g` (input "images": batch x 3 x h x w FP32 in [0, 1], batch symbolic; output
 * "output": batch x rows x (5 + nc), decoded as the Detect head) to `path`, atomically.
 * `quant` is indexed by node id (NULL: no quantization). Q7_ERR_UNSUPPORTED when q7 was built
 * without protobuf-c. */
enum q7_status q7_onnx_export(struct q7_graph * g, int64_t h, int64_t w,
                              const struct q7_onnx_quant * quant, const char * path);

#ifdef __cplusplus
}
#endif
#endif
