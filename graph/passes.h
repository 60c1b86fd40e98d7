/* Graph rewrite passes. Each returns a status, counts its rewrites in *n_rewrites (may be
 * NULL) and logs every rewrite at debug level. Outputs before and after agree up to FP32
 * rounding. BN folds are computed in FP32 with PyTorch's formulas so that the fused weights
 * are bit-identical to yolov7's Model.fuse() (what fake-INT8 weight rounding needs). */
#ifndef Q7_PASSES_H
#define Q7_PASSES_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* conv -> batchnorm  =>  conv with W' = W * g / sqrt(var + eps), b' = beta + (b - mean) * g /
 * sqrt(var + eps) (eps from each BN). */
enum q7_status q7_pass_fold_bn(struct q7_graph * g, int * n_rewrites);

/* RepConv: add(conv kxk, conv 1x1, [bn(x)]) on one input => one kxk conv (1x1 kernel padded
 * to kxk, identity BN as a centre tap). Run after q7_pass_fold_bn. The fused conv is named
 * "<layer>.rbr_reparam" like yolov7's fuse_repvgg_block. */
enum q7_status q7_pass_fuse_repconv(struct q7_graph * g, int * n_rewrites);

/* IDetect/IAuxDetect: implicit_add -> conv => conv bias += W . a; conv -> implicit_mul =>
 * W *= m, bias *= m (as IDetect.fuse). */
enum q7_status q7_pass_fold_implicit(struct q7_graph * g, int * n_rewrites);

/* conv -> act  =>  conv with the activation in its epilogue. */
enum q7_status q7_pass_fuse_act(struct q7_graph * g, int * n_rewrites);

/* yolov7's Model.fuse(): fold BN, fuse RepConv, fold implicit layers, then compact. */
enum q7_status q7_pass_fuse_model(struct q7_graph * g, int * n_rewrites);

#ifdef __cplusplus
}
#endif
#endif
