/* Executor internals shared by the executor and its CPU dispatch. Not installed. */
#ifndef Q7_EXEC_IMPL_H
#define Q7_EXEC_IMPL_H

#include "engine/exec.h"
#include "engine/plan.h"

struct q7_exec {
    struct q7_graph * g;
    struct q7_exec_params params;
    struct q7_plan plan;
    double * seconds;
    float ** qweights; /* per conv node: fake-quantized weights, or NULL */
    /* Fake quantization (exec_quant.c), per node: */
    uint8_t * in_on;   /* the node's input quantizer is active (conv, or pool with --qdq trt) */
    float * in_scale;  /* its scale 127/amax; 0 with in_on: amax <= 2^-24, input is zeros */
    uint8_t * in_ready; /* the input arrives quantized with in_scale: nothing to do */
    float * out_scale; /* quantize the node's output where it is produced (conv epilogue, or
                        * the input node), 0 = no; only used while no hook is set */
    float * qin;       /* scratch: a conv input after fake quantization */
    size_t qin_cap;
    uint8_t * arena;
    size_t arena_bytes;
    void * ws;
    size_t ws_bytes;
    q7_exec_hook hook;
    void * hook_user;
};

/* The view of node `id`'s output under the current plan. */
struct q7_view q7_exec_view(const struct q7_exec * e, int id);

/* Runs one node on the CPU (out: the detect output buffer). */
enum q7_status q7_exec_node_cpu(struct q7_exec * e, int id, float * out);

#endif
