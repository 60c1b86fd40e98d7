/* q7 public API: one header for the library. Include this; the module headers it pulls in
 * document each object (ownership and return codes above every function).
 *
 *   graph/base.h       status codes, last-error message, logging
 *   graph/graph.h      the graph IR
 *   graph/passes.h     rewrite passes (fold BN, fuse RepConv, fold implicit, fuse act)
 *   models/ckpt.h      safe PyTorch checkpoint reader
 *   models/npy.h       NumPy .npy files
 *   engine/model.h     loading a checkpoint or yaml config into a graph
 *   engine/exec.h      running a graph on a batch
 *   eval/evaluate.h    test.py's loop: loader, NMS, metric, COCO AP (+ dataset, image, nms,
 *                      metrics, cocoeval headers)
 *   quant/qdq.h        QDQ insertion and calibration (+ quant.h quantizers, calib.h methods)
 */
#ifndef Q7_H
#define Q7_H

#define Q7_VERSION_STRING "0.1.0"

#include "graph/base.h"
#include "graph/graph.h"
#include "graph/passes.h"
#include "models/ckpt.h"
#include "models/npy.h"
#include "models/onnx_export.h"
#include "models/yolo_graph.h"
#include "engine/model.h"
#include "engine/exec.h"
#include "eval/evaluate.h"
#include "quant/qdq.h"
#include "eval/calibrate.h"
#include "eval/loader.h"

#endif
