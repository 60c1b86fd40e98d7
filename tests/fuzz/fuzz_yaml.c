/* libFuzzer harness: yaml text → the bounded YAML reader (models/yaml_cfg.c) → the yolov7
 * Model it describes (models/yolo_cfg.c, shapes only) → the graph builder (shapes only). */
#include "models/yaml_cfg.h"
#include "models/yolo_graph.h"
#include "tests/fuzz/fuzz.h"

Q7_FUZZ_ENTRY(yaml)
{
    q7_fuzz_init();
    struct q7_pyheap * heap = q7_pyheap_create();
    if (!heap)
        return 0;
    struct q7_py * root = NULL;
    if (q7_fuzz_note("yaml", q7_yaml_parse((const char *)data, size, "fuzz.yaml", heap, &root)) ==
            Q7_OK &&
        root->kind == Q7_PY_DICT) {
        struct q7_cfg_params p = q7_cfg_params_default();
        p.init = Q7_CFG_INIT_SHAPE;
        struct q7_py * model = NULL;
        if (q7_fuzz_note("model", q7_yolo_model_from_dict(root, &p, heap, &model)) == Q7_OK) {
            struct q7_graph * g = NULL;
            q7_fuzz_note("graph", q7_yolo_build_graph_ex(model, "fuzz.yaml", 1, &g));
            q7_graph_free(g);
        }
    }
    q7_pyheap_free(heap);
    return 0;
}
