/* Host-side layout of the CUDA executor's activations (plain C, built with or without CUDA
 * and tested without a GPU): which plan buffers hold FP16, and each node's device view.
 *
 * The arena is laid out by engine/plan.h in FP32 bytes. An FP16 buffer uses the first half of
 * its FP32 slot with the same element layout: node `id` whose root buffer starts at byte B
 * with channel offset ch_off is at B + ch_off*hw*2 (FP16) or B + ch_off*hw*4 (FP32), batch
 * stride = the root's c*h*w elements either way. Buffers never overlap in FP32, so they don't
 * in FP16. All nodes in one root buffer (a concat and the inputs written into it) share its
 * dtype. */
#ifndef Q7_CUDA_PLAN_H
#define Q7_CUDA_PLAN_H

#include "engine/plan.h"
#include "kernels/cuda/cuda_view.h"

#ifdef __cplusplus
extern "C" {
#endif

/* root_f16[r] for every node id r (only roots of live nodes matter): 0 in FP32 mode; in FP16
 * mode 1, except for buffers holding a direct input of a detect node (FP32 decode). The plan
 * must be made. */
void q7_cuda_plan_dtypes(const struct q7_plan * p, int fp16, uint8_t * root_f16);

/* Node id's output as a device view in an arena at `base` (never dereferenced here). */
struct q7_cuda_view q7_cuda_plan_view(const struct q7_plan * p, void * base,
                                      const uint8_t * root_f16, int id);

#ifdef __cplusplus
}
#endif
#endif
