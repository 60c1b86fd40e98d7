/* YOLOv7 module tree (an unpickled models.yolo.Model, or one built from a yaml config) →
 * q7 graph. Every module type of the official family is handled: Conv, RepConv, MP, SP,
 * SPPCSPC, Concat, Shortcut, ReOrg, DownC, Upsample, MaxPool2d, Detect, IDetect, IAuxDetect. */
#ifndef Q7_YOLO_GRAPH_H
#define Q7_YOLO_GRAPH_H

#include "graph/graph.h"
#include "models/pyobj.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Builds the unfused graph of `model` (a models.yolo Model object). Weights are copied into
 * the graph (widened to FP32). `source` names the file in messages. Caller frees *out. */
enum q7_status q7_yolo_build_graph(const struct q7_py * model, const char * source,
                                   struct q7_graph ** out);

/* The same; with shapes_only, tensors whose storage holds no data (a yaml model built with
 * Q7_CFG_INIT_SHAPE) become graph tensors without data: enough for shapes, parameter counts
 * and GFLOPs, not for running. */
enum q7_status q7_yolo_build_graph_ex(const struct q7_py * model, const char * source,
                                      int shapes_only, struct q7_graph ** out);

/* Finds the Model in a checkpoint root: root itself, root['model'], or root['ema'] when
 * 'model' is None. NULL with a message when there is none (e.g. a bare state_dict). */
const struct q7_py * q7_yolo_find_model(const struct q7_py * root, const char * source);

#ifdef __cplusplus
}
#endif
#endif
