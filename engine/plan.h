/* Memory plan of a graph for one input size: which nodes run, where each output lives.
 * Shared by the CPU and CUDA executors (the arena is host or device memory). Every live node
 * gets a view into one arena; concat inputs are placed straight into their slice of the
 * concat's buffer where possible; buffers whose lifetimes do not overlap share memory. */
#ifndef Q7_PLAN_H
#define Q7_PLAN_H

#include "graph/graph.h"
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_plan_slot {
    int root;       /* node whose buffer holds this node's output */
    int64_t ch_off; /* channel offset inside the root buffer */
    int aliased;    /* written in place into a concat's buffer */
};

struct q7_plan_buffer {
    size_t offset, bytes;
    int first, last; /* node ids: defined at first, last read at last */
};

struct q7_plan {
    struct q7_graph * g;
    int n_nodes;
    uint8_t * live;               /* 1: the node contributes to the output */
    struct q7_plan_slot * slot;
    struct q7_plan_buffer * buf;  /* indexed by root node id */
    int * order;
    size_t arena_bytes;           /* bytes the arena needs for this plan */
    size_t naive_bytes;           /* all live activations without sharing */
    int64_t n, h, w;              /* planned input size; n == 0: no plan yet */
};

/* Prepares a plan for `g` (marks live nodes). q7_plan_free releases it. */
enum q7_status q7_plan_init(struct q7_plan * p, struct q7_graph * g);
void q7_plan_free(struct q7_plan * p);
/* Plans for an input of n x 3 x h x w (infers shapes); a no-op when already planned for it. */
enum q7_status q7_plan_make(struct q7_plan * p, int64_t n, int64_t h, int64_t w);
/* Node `id`'s output inside an arena at `base` (FP32 elements). */
struct q7_view q7_plan_view(const struct q7_plan * p, void * base, int id);

#ifdef __cplusplus
}
#endif
#endif
