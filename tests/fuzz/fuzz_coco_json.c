/* libFuzzer harness: COCO json (eval/cocojson.c, eval/cocoeval.c, eval/dataset.c).
 * Input: "<instances json>\0<results json>" (without a NUL both parsers get the whole input).
 * The instances file is parsed, then used as a dataset's labels (q7_dataset_load_coco over a
 * fixed image list); the results are parsed; when both parse, COCOeval runs on them. */
#include "eval/cocoeval.h"
#include "eval/dataset.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_EVAL 2000 /* keeps one evaluation fast; the evaluator's cost is not a finding */

Q7_FUZZ_ENTRY(coco_json)
{
    q7_fuzz_init();
    const uint8_t * nul = memchr(data, 0, size);
    const char * gt_text = (const char *)data;
    size_t gt_len = nul ? (size_t)(nul - data) : size;
    const char * det_text = nul ? (const char *)nul + 1 : (const char *)data;
    size_t det_len = nul ? size - gt_len - 1 : size;

    struct q7_coco_gt * gt = NULL;
    q7_fuzz_note("gt", q7_coco_gt_parse(gt_text, gt_len, "fuzz.json", &gt));
    struct q7_coco_det * dets = NULL;
    size_t n = 0;
    enum q7_status dst = q7_fuzz_note("dets", q7_coco_dets_parse(det_text, det_len,
                                                                "fuzz-dets.json", &dets, &n));
    if (gt && dst == Q7_OK && n <= FUZZ_MAX_EVAL && (size_t)gt->n_anns <= FUZZ_MAX_EVAL &&
        gt->n_images <= FUZZ_MAX_EVAL) {
        double stats[Q7_COCO_STATS];
        q7_fuzz_note("eval", q7_coco_eval(gt, dets, n, NULL, 0, stats));
        int64_t ids[2] = {1, 3};
        q7_coco_eval(gt, dets, n, ids, 2, stats);
        char buf[2048];
        q7_coco_stats_format(stats, buf, sizeof buf);
    }
    free(dets);
    if (gt) {
        static const char list[] = "./a/images/bus.jpg\n./a/images/dog.jpg\n./b/zidane.jpg\n"
                                   "./c/1.png\n";
        char lpath[512], jpath[512];
        q7_fuzz_write("images.txt", list, sizeof list - 1, lpath, sizeof lpath);
        q7_fuzz_write("instances.json", gt_text, gt_len, jpath, sizeof jpath);
        struct q7_dataset_params p = q7_dataset_params_default();
        p.check_images = 0;
        for (int k = 0; k < 2; k++) {
            p.coco91_to_80 = k;
            struct q7_dataset * ds = NULL;
            q7_fuzz_note("dataset", q7_dataset_load_coco(lpath, jpath, &p, &ds));
            q7_dataset_free(ds);
        }
    }
    q7_coco_gt_free(gt);
    return 0;
}
