/* q7 eval: yolov7's test.py on a dataset: P, R, mAP@.5, mAP@.5:.95 and COCO AP. */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

int cli_eval_options_ok(const struct cli_eval_opts * o)
{
    return o->batch >= 1 && o->img >= 32 && o->conf >= 0 && o->iou > 0 && o->iou <= 1;
}

enum q7_status cli_load_model(const struct cli_eval_opts * o, struct q7_model ** m)
{
    struct q7_model_params mp = q7_model_params_default();
    mp.cfg = o->cfg;
    return q7_model_load(o->weights, &mp, m);
}

enum q7_status cli_load_dataset(const struct cli_eval_opts * o, int nc, struct q7_dataset ** ds,
                                struct q7_coco_gt ** gt)
{
    *ds = NULL;
    *gt = NULL;
    struct q7_dataset_params dp = q7_dataset_params_default();
    dp.nc = nc;
    enum q7_status st;
    if (o->coco_json) {
        if ((st = q7_coco_gt_load(o->coco_json, gt)))
            return st;
        /* images from --data, labels from the COCO file */
        st = q7_dataset_load_coco(o->data, o->coco_json, &dp, ds);
    } else {
        st = q7_dataset_load(o->data, &dp, ds);
    }
    if (st) {
        q7_coco_gt_free(*gt);
        *gt = NULL;
        return st;
    }
    return Q7_OK;
}

enum q7_status cli_parse_decoder(const char * s, enum q7_decoder * out)
{
    if (!s || strcmp(s, "auto") == 0)
        *out = Q7_DECODER_AUTO;
    else if (strcmp(s, "turbo") == 0)
        *out = Q7_DECODER_TURBO;
    else if (strcmp(s, "stb") == 0)
        *out = Q7_DECODER_STB;
    else
        return q7_error_set(Q7_ERR_ARG, "--decoder must be turbo, stb or auto, not '%s'", s);
    return Q7_OK;
}

struct q7_eval_params cli_eval_params(const struct cli_eval_opts * o, enum q7_decoder dec,
                                      const struct q7_coco_gt * gt)
{
    struct q7_eval_params ep = q7_eval_params_default();
    ep.batch = o->batch;
    ep.img_size = o->img;
    ep.nms.conf_thres = (float)o->conf;
    ep.nms.iou_thres = o->iou;
    ep.decoder = dec;
    ep.coco_gt = gt;
    ep.coco91 = gt != NULL;
    ep.threads = o->workers;
    return ep;
}

cJSON * cli_eval_json(const struct q7_eval_result * r)
{
    cJSON * o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "images", r->metric.images);
    cJSON_AddNumberToObject(o, "labels", r->metric.labels);
    cJSON_AddNumberToObject(o, "P", r->metric.p);
    cJSON_AddNumberToObject(o, "R", r->metric.r);
    cJSON_AddNumberToObject(o, "mAP50", r->metric.map50);
    cJSON_AddNumberToObject(o, "mAP50_95", r->metric.map);
    if (r->has_coco) {
        cJSON * cs = cJSON_AddArrayToObject(o, "coco_stats");
        for (int k = 0; k < Q7_COCO_STATS; k++)
            cJSON_AddItemToArray(cs, cJSON_CreateNumber(r->coco_stats[k]));
    }
    cJSON * sp = cJSON_AddObjectToObject(o, "speed_ms");
    cJSON_AddNumberToObject(sp, "preprocess", r->ms_pre);
    cJSON_AddNumberToObject(sp, "inference", r->ms_inf);
    cJSON_AddNumberToObject(sp, "nms", r->ms_nms);
    cJSON_AddNumberToObject(o, "failed_images", r->failed);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

void cli_eval_speed(const struct q7_eval_result * r, const struct cli_eval_opts * o)
{
    printf("Speed: %.1f/%.1f/%.1f ms inference/NMS/total per %dx%d image at batch-size %d\n",
           r->ms_inf, r->ms_nms, r->ms_inf + r->ms_nms, o->img, o->img, o->batch);
}

int cmd_eval(int argc, char ** argv)
{
    struct cli_eval_opts o = CLI_EVAL_OPTS_DEFAULT;
    const char * json = NULL, * save_json = NULL, * amax = NULL, * method = NULL;
    const char * disable = NULL;
    int fused = 0, verbose = 0, help = 0;
    const struct cli_opt opts[] = {
        CLI_EVAL_OPTIONS(o),
        {"--fused", CLI_FLAG, &fused, "fuse Conv+BN, RepConv and IDetect first (model.fuse())"},
        {"--verbose", CLI_FLAG, &verbose, "per-class rows"},
        {"--amax", CLI_STR, &amax, "fake-INT8: QDQ on the fused model with this amax table"},
        {"--method", CLI_STR, &method, "the method to take from a per-method --amax file"},
        {"--quant-disable", CLI_STR, &disable, "with --amax: keep quantizers matching this "
                                               "regex in FP32"},
        {"--json", CLI_STR, &json, "write images, labels, P, R, mAP50, mAP50_95, coco_stats, "
                                   "speed_ms as JSON"},
        {"--save-json", CLI_STR, &save_json, "write detections in COCO results format"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("eval", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !o.weights || !o.data || n_pos || !cli_eval_options_ok(&o)) {
        cli_usage(help ? stdout : stderr, "eval", "--weights W --data D [options]", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    struct q7_model * m = NULL;
    struct cli_net net = {0};
    struct q7_dataset * ds = NULL;
    struct q7_coco_gt * gt = NULL;
    struct q7_eval_result r = {0};
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * table = NULL;
    enum q7_decoder dec = Q7_DECODER_AUTO;
    enum q7_qdq_mode qmode = Q7_QDQ_SEED;
    int rc = 1;
    enum q7_status st = cli_parse_decoder(o.decoder, &dec);
    if (!st)
        st = q7_qdq_mode_parse(o.qdq, &qmode);
    if (st || (st = cli_load_model(&o, &m)) ||
        ((fused || amax) && (st = q7_model_fuse(m))))
        goto done;
    if (amax) {
        int missing = 0, n = 0;
        if ((st = q7_amax_table_load(amax, method, &table)) ||
            (st = q7_qdq_insert(m->graph, qmode, &qdq)) ||
            (st = q7_amax_table_apply(table, qdq->q, qdq->n, &missing)) ||
            (disable && (st = q7_qdq_set_enabled(qdq, disable, 0, &n))))
            goto done;
        if (missing)
            fprintf(stderr, "q7 eval: %d quantizers have no amax in %s and stay in FP32\n",
                    missing, amax);
        if (disable)
            fprintf(stderr, "q7 eval: %d quantizers matching '%s' disabled\n", n, disable);
    }
    if ((st = cli_load_dataset(&o, m->graph->nc, &ds, &gt)))
        goto done;
    if ((st = cli_net_create(m->graph, o.device, o.fp16, o.threads, &net)) ||
        (st = cli_net_refresh(&net)))
        goto done;
    struct q7_runner runner = cli_net_runner(&net);
    struct q7_eval_params ep = cli_eval_params(&o, dec, gt);
    fprintf(stderr, "q7 eval: %s%s on %s (%s%s), decoder %s, batch %d, img %d, conf %g, iou %g\n",
            o.weights, amax ? " (fused, fake INT8)" : fused ? " (fused)" : "", o.data,
            net.cuda ? "cuda" : "cpu", o.fp16 ? ", fp16" : "", q7_decoder_name(dec), o.batch, o.img,
            o.conf, o.iou);
    if ((st = q7_evaluate(&runner, ds, &ep, &r)))
        goto done;
    q7_eval_print(stdout, &r, (const char * const *)m->graph->names, verbose);
    cli_eval_speed(&r, &o);
    if (r.has_coco) {
        char buf[2048];
        q7_coco_stats_format(r.coco_stats, buf, sizeof buf);
        printf("%s\n", buf);
    }
    if (r.failed)
        fprintf(stderr, "q7 eval: %d image%s could not be read (named above)\n", r.failed,
                r.failed == 1 ? "" : "s");
    if (json) {
        cJSON * root = cli_eval_json(&r);
        st = cli_write_json(json, root);
        cJSON_Delete(root);
        if (st)
            goto done;
    }
    if (save_json && (st = q7_coco_dets_write(save_json, r.dets, r.n_dets)))
        goto done;
    rc = 0;
done:
    if (rc)
        cli_fail("eval", st);
    q7_eval_result_free(&r);
    cli_net_free(&net);
    q7_qdq_free(qdq);
    q7_amax_table_free(table);
    q7_coco_gt_free(gt);
    q7_dataset_free(ds);
    q7_model_free(m);
    return rc;
}
