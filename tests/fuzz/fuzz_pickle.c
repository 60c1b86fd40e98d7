/* libFuzzer harness: the safe unpickler (models/pickle.c, models/pyobj.c) on raw pickle bytes,
 * then what a caller does with the result: repr, find the yolov7 Model, walk its state_dict. */
#include "models/yolo_graph.h"
#include "tests/fuzz/fuzz_pickle_common.h"

Q7_FUZZ_ENTRY(pickle)
{
    q7_fuzz_init();
    struct q7_ckpt_limits lim = q7_fuzz_limits();
    struct q7_pyheap * heap = q7_pyheap_create();
    if (!heap)
        return 0;
    struct q7_py * root = NULL;
    if (q7_fuzz_note("pickle", q7_pickle_load(data, size, &lim, heap, q7_fuzz_resolve, NULL,
                                               &root)) == Q7_OK) {
        char buf[512];
        q7_py_repr(root, buf, sizeof buf);
        const struct q7_py * model = q7_yolo_find_model(root, "fuzz");
        double acc = 0;
        q7_fuzz_note("state_dict", q7_py_state_dict_walk(model ? model : root, "",
                                                          q7_fuzz_visit, &acc));
        if (root && root->kind == Q7_PY_DICT)
            for (size_t i = 0; i < root->v.dict.len; i++)
                q7_py_state_dict_walk(root->v.dict.values[i], "x.", q7_fuzz_visit, &acc);
    }
    q7_pyheap_free(heap);
    return 0;
}
