/* The executor: runs a graph on a batch with buffers planned by liveness.
 *
 * Plans are made for one input size (N, H, W) and remade when the size changes. Every live
 * node gets a view into one arena; concat inputs are written straight into their slice of
 * the concat's buffer where possible; buffers whose lifetimes do not overlap share memory. */
#ifndef Q7_EXEC_H
#define Q7_EXEC_H

#include "graph/graph.h"
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_exec_params {
    int threads;  /* CPU threads for kernels (0: all cores) */
    int use_ref;  /* 1: run the scalar reference kernels (slow; for checking) */
};
struct q7_exec_params q7_exec_params_default(void);

/* Called after each executed node with its output (valid until the next node runs). */
typedef void (*q7_exec_hook)(void * user, const struct q7_node * node,
                             const struct q7_view * out);

struct q7_exec;

/* The graph must outlive the executor and must not change structure while it lives
 * (quantizer settings may change: call q7_exec_refresh_weights after changing amax). */
enum q7_status q7_exec_create(struct q7_graph * g, const struct q7_exec_params * p,
                              struct q7_exec ** out);
void q7_exec_free(struct q7_exec * e);

void q7_exec_set_hook(struct q7_exec * e, q7_exec_hook hook, void * user);

/* Rows of the detect output for an input of n x 3 x h x w (per image). */
enum q7_status q7_exec_output_rows(struct q7_exec * e, int64_t n, int64_t h, int64_t w,
                                   int64_t * rows, int64_t * no);

/* Runs the network on FP32 input (n x 3 x h x w, already normalized to [0, 1]) or on uint8
 * input (divided by 255 as yolov7's test.py does). `out` receives n x rows x no floats. */
enum q7_status q7_exec_run(struct q7_exec * e, const float * x, int64_t n, int64_t h, int64_t w,
                           float * out);
enum q7_status q7_exec_run_u8(struct q7_exec * e, const uint8_t * x, int64_t n, int64_t h,
                              int64_t w, float * out);

/* Re-derives fake-quantized weights from the graph's weight quantizers (after setting amax or
 * enabling/disabling quantizers). */
enum q7_status q7_exec_refresh_weights(struct q7_exec * e);

/* Fake INT8: of the live nodes with an active input quantizer, how many get their input
 * already quantized where it was produced (a conv's epilogue; see exec_quant.c) and how many
 * quantize it themselves (a 1x1 conv while packing it, others into a copy). Without a hook
 * set; a hook turns the former off. */
void q7_exec_quant_sources(const struct q7_exec * e, int * n_at_source, int * n_by_reader);

/* Memory of the current plan: the arena's size, and the sum of all activation buffers
 * without sharing (what a naive executor would hold). */
size_t q7_exec_peak_bytes(const struct q7_exec * e);
/* The activation arena alone (q7_exec_peak_bytes adds the conv workspace). */
size_t q7_exec_arena_bytes(const struct q7_exec * e);
size_t q7_exec_naive_bytes(const struct q7_exec * e);
/* Seconds each node took in the last run (indexed by node id; 0 for skipped nodes). */
const double * q7_exec_node_seconds(const struct q7_exec * e);
/* 1 when node id contributes to the output (the executor skips the others). */
int q7_exec_node_live(const struct q7_exec * e, int id);

#ifdef __cplusplus
}
#endif
#endif
