/* libFuzzer harness: the calibration json files of quant/amax_json.c — amax tables (single or
 * per method, as ref/amax.json) and histogram lists (as ref/histograms.json) — and the amax
 * methods (quant/amax.c) on every histogram loaded from hostile counts and edges. */
#include "quant/calib.h"
#include "quant/quant.h"
#include "tests/fuzz/fuzz.h"

/* The amax methods are O(bins) to O(bins^2 / stride): larger histograms would spend the
 * fuzzer's time in the entropy sweep (tested on 2048 bins by test_quant), not in the parser. */
#define FUZZ_MAX_BINS 512

Q7_FUZZ_ENTRY(amax_json)
{
    q7_fuzz_init();
    char path[512];
    q7_fuzz_write("in.bin", data, size, path, sizeof path);
    static const char * const methods[3] = {NULL, "mse", "percentile-99.99"};
    for (int k = 0; k < 3; k++) {
        struct q7_amax_table * t = NULL;
        if (q7_fuzz_note("amax", q7_amax_table_load(path, methods[k], &t)) == Q7_OK && t->n > 0)
            q7_amax_table_find(t, t->entries[t->n - 1].name);
        q7_amax_table_free(t);
    }
    struct q7_hist_list hl;
    memset(&hl, 0, sizeof hl);
    if (q7_fuzz_note("hist", q7_hist_list_load(path, &hl)) == Q7_OK) {
        struct q7_amax_params ap = q7_amax_params_default();
        for (int i = 0; i < hl.n && i < 4; i++) {
            float amax;
            if (q7_calib_hist_num_bins(hl.hists[i]) > FUZZ_MAX_BINS)
                continue;
            q7_hist_list_find(&hl, hl.names[i]);
            q7_fuzz_note("entropy", q7_amax_from_hist(hl.hists[i], Q7_CALIB_ENTROPY, &ap, &amax));
            q7_amax_from_hist(hl.hists[i], Q7_CALIB_MSE, &ap, &amax);
            ap.percentile = 99.9;
            q7_amax_from_hist(hl.hists[i], Q7_CALIB_PERCENTILE, &ap, &amax);
        }
        q7_hist_list_free(&hl);
    }
    return 0;
}
