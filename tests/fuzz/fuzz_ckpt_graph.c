/* libFuzzer harness: pickle bytes → safe unpickler → the yolov7 Model in it → the graph
 * builder (models/yolo_graph.c, yolo_modules.c, yolo_detect.c) → the fusion passes. */
#include "graph/passes.h"
#include "models/yolo_graph.h"
#include "tests/fuzz/fuzz_pickle_common.h"

Q7_FUZZ_ENTRY(ckpt_graph)
{
    q7_fuzz_init();
    struct q7_ckpt_limits lim = q7_fuzz_limits();
    struct q7_pyheap * heap = q7_pyheap_create();
    if (!heap)
        return 0;
    struct q7_py * root = NULL;
    if (q7_fuzz_note("pickle", q7_pickle_load(data, size, &lim, heap, q7_fuzz_resolve, NULL,
                                               &root)) == Q7_OK) {
        const struct q7_py * model = q7_yolo_find_model(root, "fuzz");
        struct q7_graph * g = NULL;
        if (model && q7_fuzz_note("graph", q7_yolo_build_graph(model, "fuzz", &g)) == Q7_OK) {
            int n = 0;
            q7_fuzz_note("fuse", q7_pass_fuse_model(g, &n));
        }
        q7_graph_free(g);
    }
    q7_pyheap_free(heap);
    return 0;
}
