/* libFuzzer harness: the zip reader (models/zip.c) on raw bytes — every entry looked up and
 * read with its CRC checked — then the same bytes as a checkpoint file (models/ckpt.c: zip
 * or legacy format, storages resolved, state_dict walked). */
#include "models/yolo_graph.h"
#include "tests/fuzz/fuzz_pickle_common.h"

Q7_FUZZ_ENTRY(zip)
{
    q7_fuzz_init();
    struct q7_zip * zip = NULL;
    if (q7_fuzz_note("zip", q7_zip_open(data, size, 4096, &zip)) == Q7_OK) {
        uint32_t acc = 0;
        for (int i = 0; i < q7_zip_count(zip); i++) {
            const struct q7_zip_entry * e = q7_zip_entry_at(zip, i);
            const struct q7_zip_entry * f = q7_zip_find(zip, e->name);
            const uint8_t * p = NULL;
            if (f && f->method == 0 && q7_zip_data(zip, f, 1, &p) == Q7_OK && f->size)
                acc += p[0] + p[f->size - 1];
        }
        (void)acc;
        q7_zip_free(zip);
    }

    char path[512];
    q7_fuzz_write("in.bin", data, size, path, sizeof path);
    struct q7_ckpt_limits lim = q7_fuzz_limits();
    struct q7_ckpt * ck = NULL;
    if (q7_fuzz_note("ckpt", q7_ckpt_load(path, &lim, &ck)) == Q7_OK) {
        const struct q7_py * model = q7_yolo_find_model(q7_ckpt_root(ck), path);
        double acc = 0;
        q7_fuzz_note("state_dict", q7_py_state_dict_walk(model ? model : q7_ckpt_root(ck), "",
                                                          q7_fuzz_visit, &acc));
    }
    q7_ckpt_free(ck);
    return 0;
}
