/* libFuzzer harness: YOLO label files (eval/dataset.c: q7_dataset_parse_labels) with and
 * without a class bound, and the label-path rule on the same bytes as a path. */
#include "eval/dataset.h"
#include "tests/fuzz/fuzz.h"

Q7_FUZZ_ENTRY(labels)
{
    q7_fuzz_init();
    static const int ncs[2] = {80, 0};
    for (int k = 0; k < 2; k++) {
        float * labels = NULL;
        int n = 0;
        if (q7_fuzz_note("labels", q7_dataset_parse_labels((const char *)data, size, "fuzz.txt",
                                                           ncs[k], &labels, &n)) == Q7_OK) {
            volatile float acc = 0;
            for (int i = 0; i < n * Q7_LABEL_COLS; i++)
                acc += labels[i];
            (void)acc;
        }
        free(labels);
    }
    char path[Q7_DATASET_MAX_LINE + 1];
    size_t n = size < Q7_DATASET_MAX_LINE ? size : Q7_DATASET_MAX_LINE;
    memcpy(path, data, n);
    path[n] = '\0';
    char buf[Q7_DATASET_MAX_LINE + 16];
    q7_dataset_label_path(path, buf, sizeof buf);
    q7_dataset_label_path(path, buf, 8);
    return 0;
}
