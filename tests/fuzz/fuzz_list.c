/* libFuzzer harness: image list files (eval/dataset.c: q7_dataset_load on a val.txt), without
 * opening the images (check_images 0); label files are looked up where the list points. */
#include "eval/dataset.h"
#include "tests/fuzz/fuzz.h"

Q7_FUZZ_ENTRY(list)
{
    q7_fuzz_init();
    char path[512];
    q7_fuzz_write("val.txt", data, size, path, sizeof path);
    struct q7_dataset_params p = q7_dataset_params_default();
    p.check_images = 0;
    p.nc = 80;
    struct q7_dataset * ds = NULL;
    if (q7_fuzz_note("dataset", q7_dataset_load(path, &p, &ds)) == Q7_OK) {
        size_t acc = 0;
        for (int i = 0; i < ds->n; i++)
            acc += strlen(ds->items[i].path) + strlen(ds->items[i].stem) +
                   (size_t)ds->items[i].n_labels;
        (void)acc;
    }
    q7_dataset_free(ds);
    return 0;
}
