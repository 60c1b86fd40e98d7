/* q7 table: the seed's experiment in one command: origin, fused, and one fake-INT8 row per
 * amax method, calibrating once and deriving every method from the same histograms. */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

#define MAX_METHODS 16

static void print_row(const char * name, const struct q7_eval_result * r, double seconds)
{
    const struct q7_metric_result * m = &r->metric;
    printf("%-20s%8d%8d%10.4f%10.4f%10.4f%12.4f%10.1f\n", name, m->images, m->labels, m->p,
           m->r, m->map50, m->map, seconds);
    fflush(stdout);
}

static void json_row(cJSON * table, const char * name, const struct q7_eval_result * r,
                     double seconds)
{
    cJSON * o = cli_eval_json(r);
    cJSON_AddNumberToObject(o, "row_seconds", seconds);
    cJSON_AddItemToObject(table, name, o);
}

int cmd_table(int argc, char ** argv)
{
    struct cli_eval_opts o = CLI_EVAL_OPTS_DEFAULT;
    const char * calib_data = NULL, * methods = "max,entropy,mse,percentile-99.9,percentile-99.99";
    const char * json = NULL, * save_amax = NULL, * disable = NULL;
    int calib_batches = 0, help = 0;
    const struct cli_opt opts[] = {
        CLI_EVAL_OPTIONS(o),
        {"--calib-data", CLI_STR, &calib_data, "calibration images (default: --data)"},
        {"--calib-batches", CLI_INT, &calib_batches, "calibrate on the first N batches (default: all)"},
        {"--methods", CLI_STR, &methods, "amax methods, comma separated (default: max,entropy,"
                                          "mse,percentile-99.9,percentile-99.99)"},
        {"--quant-disable", CLI_STR, &disable, "keep quantizers matching this regex in FP32"},
        {"--save-amax", CLI_STR, &save_amax, "write every method's amax (ref/amax.json layout)"},
        {"--json", CLI_STR, &json, "write the table (ref/table.json layout)"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("table", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !o.weights || !o.data || n_pos || !cli_eval_options_ok(&o)) {
        cli_usage(help ? stdout : stderr, "table", "--weights W --data D [options]", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    char method_buf[512];
    const char * method[MAX_METHODS];
    int n_methods = 0;
    snprintf(method_buf, sizeof method_buf, "%s", methods);
    for (char * tok = strtok(method_buf, ","); tok && n_methods < MAX_METHODS;
         tok = strtok(NULL, ","))
        method[n_methods++] = tok;

    struct q7_model * m = NULL;
    struct cli_net net = {0};
    struct q7_dataset * ds = NULL, * cds = NULL;
    struct q7_coco_gt * gt = NULL;
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * tables[MAX_METHODS] = {0};
    cJSON * root = cJSON_CreateObject(), * table = cJSON_AddObjectToObject(root, "table");
    enum q7_decoder dec = Q7_DECODER_AUTO;
    enum q7_qdq_mode qmode = Q7_QDQ_SEED;
    int rc = 1;
    enum q7_status st = cli_parse_decoder(o.decoder, &dec);
    if (!st)
        st = q7_qdq_mode_parse(o.qdq, &qmode);
    if (st || (st = cli_load_model(&o, &m)))
        goto done;
    for (int k = 0; k < n_methods; k++) { /* refuse bad names before hours of work */
        enum q7_calib_method cm;
        double pct;
        if ((st = q7_calib_method_parse(method[k], &cm, &pct)))
            goto done;
    }
    if ((st = cli_load_dataset(&o, m->graph->nc, &ds, &gt)))
        goto done;
    if (calib_data) {
        struct cli_eval_opts co = o;
        co.data = calib_data;
        co.coco_json = NULL;
        struct q7_coco_gt * unused = NULL;
        if ((st = cli_load_dataset(&co, m->graph->nc, &cds, &unused)))
            goto done;
    }
    struct q7_eval_params ep = cli_eval_params(&o, dec, gt);
    fprintf(stderr, "q7 table: %s on %s (%s%s, decoder %s, batch %d, img %d), calibration on %s\n",
            o.weights, o.data, o.device ? o.device : "cpu", o.fp16 ? " fp16" : "",
            q7_decoder_name(dec), o.batch, o.img,
            calib_data ? calib_data : o.data);
    cJSON * meta = cJSON_AddObjectToObject(root, "meta");
    cJSON_AddStringToObject(meta, "weights", o.weights);
    cJSON_AddStringToObject(meta, "data", o.data);
    cJSON_AddNumberToObject(meta, "batch", o.batch);
    cJSON_AddNumberToObject(meta, "img_size", o.img);
    cJSON_AddNumberToObject(meta, "conf_thres", o.conf);
    cJSON_AddNumberToObject(meta, "iou_thres", o.iou);
    cJSON_AddStringToObject(meta, "decoder", q7_decoder_name(dec));
    cJSON_AddStringToObject(meta, "device", o.device ? o.device : "cpu");
    cJSON_AddBoolToObject(meta, "fp16", o.fp16);
    printf("%-20s%8s%8s%10s%10s%10s%12s%10s\n", "", "Images", "Labels", "P", "R", "mAP@.5",
           "mAP@.5:.95", "time(s)");
    for (int pass = 0; pass < 2; pass++) { /* origin, then fused */
        if (pass == 1 && (st = q7_model_fuse(m)))
            goto done;
        cli_net_free(&net);
        if ((st = cli_net_create(m->graph, o.device, o.fp16, o.threads, &net)))
            goto done;
        struct q7_runner runner = cli_net_runner(&net);
        struct q7_eval_result r = {0};
        double t0 = q7_time_now();
        if ((st = q7_evaluate(&runner, ds, &ep, &r)))
            goto done;
        const char * name = pass ? "fused" : "origin";
        print_row(name, &r, q7_time_now() - t0);
        json_row(table, name, &r, q7_time_now() - t0);
        q7_eval_result_free(&r);
    }
    /* QDQ on the fused graph; the executor reads quantizers at refresh time */
    double calib_s = 0.0;
    if ((st = q7_qdq_insert(m->graph, qmode, &qdq)) ||
        (st = cli_net_calibrate(&net, qdq, cds ? cds : ds, &ep, calib_batches, &calib_s)))
        goto done;
    cJSON_AddNumberToObject(meta, "calibration_seconds", calib_s);
    for (int k = 0; k < n_methods; k++) {
        double amax_s = 0.0, t0 = q7_time_now();
        if ((st = cli_net_apply_method(&net, qdq, method[k], &amax_s)))
            goto done;
        if (disable) {
            int n = 0;
            if ((st = q7_qdq_set_enabled(qdq, disable, 0, &n)) || (st = cli_net_refresh(&net)))
                goto done;
        }
        if ((st = q7_amax_table_from_quantizers(qdq->q, qdq->n, &tables[k])))
            goto done;
        struct q7_runner runner = cli_net_runner(&net);
        struct q7_eval_result r = {0};
        if ((st = q7_evaluate(&runner, ds, &ep, &r)))
            goto done;
        char name[64];
        snprintf(name, sizeof name, "qdq-%s", method[k]);
        print_row(name, &r, q7_time_now() - t0);
        json_row(table, name, &r, q7_time_now() - t0);
        cJSON_AddNumberToObject(cJSON_GetObjectItem(table, name), "amax_ms", amax_s * 1e3);
        q7_eval_result_free(&r);
        if (disable)
            q7_qdq_set_enabled(qdq, NULL, 1, NULL);
    }
    printf("calibration: %.1f s for %d quantizers (histograms collected once for all methods)\n",
           calib_s, qdq->n);
    if (save_amax &&
        (st = q7_amax_table_save_methods(save_amax, n_methods, method,
                                         (const struct q7_amax_table * const *)tables)))
        goto done;
    if (json && (st = cli_write_json(json, root)))
        goto done;
    rc = 0;
done:
    if (rc)
        cli_fail("table", st);
    for (int k = 0; k < MAX_METHODS; k++)
        q7_amax_table_free(tables[k]);
    cJSON_Delete(root);
    cli_net_free(&net);
    q7_qdq_free(qdq);
    q7_coco_gt_free(gt);
    q7_dataset_free(ds);
    q7_dataset_free(cds);
    q7_model_free(m);
    return rc;
}
