/* q7 calib: calibrate the fused model's quantizers on a dataset and write the amax table
 * (plus histograms, a TensorRT calibration cache and histogram plots on request). */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

#define ALL_METHODS 5

static const char * const g_all_methods[ALL_METHODS] = {"max", "entropy", "mse",
                                                        "percentile-99.9", "percentile-99.99"};

/* Histograms of the input quantizers, in graph order. */
static enum q7_status save_hists(const char * path, const struct q7_qdq * qdq)
{
    const char ** names = malloc((size_t)qdq->n * sizeof *names);
    const struct q7_calib_hist ** hists = malloc((size_t)qdq->n * sizeof *hists);
    float * max = malloc((size_t)qdq->n * sizeof *max);
    int n = 0;
    for (int k = 0; names && hists && max && k < qdq->n; k++)
        if (qdq->q[k]->calib_hist) {
            int64_t nm = 0;
            const float * m = qdq->q[k]->calib_max ? q7_calib_max_amax(qdq->q[k]->calib_max, &nm)
                                                   : NULL;
            max[n] = m && nm == 1 ? m[0] : -1.0f;
            names[n] = qdq->q[k]->name;
            hists[n++] = qdq->q[k]->calib_hist;
        }
    enum q7_status st = names && hists && max ? q7_hist_save_json(path, n, names, hists, max)
                                              : q7_error_set(Q7_ERR_OOM, "out of memory");
    free(names);
    free(hists);
    free(max);
    return st;
}

/* Installs the histograms of `path` (written by --save-hist, or ref/histograms.json) into the
 * input quantizers, as if a calibration pass had collected them, with each run's max |x| where
 * the file kept it (q7's files do; *all_max says whether every quantizer got one). Every input
 * quantizer needs a histogram and every histogram a quantizer: a file from another model is an
 * error. */
static enum q7_status load_hists(const char * path, struct q7_qdq * qdq, int * all_max)
{
    struct q7_hist_list hl;
    enum q7_status st = q7_hist_list_load(path, &hl);
    if (st)
        return st;
    int used = 0;
    *all_max = 1;
    for (int k = 0; k < qdq->n && !st; k++) {
        struct q7_calib_hist * h = qdq->q[k]->calib_hist;
        if (!h)
            continue;
        int i = q7_hist_list_find(&hl, qdq->q[k]->name);
        if (i < 0) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: no histogram for %s (another model?)", path,
                              qdq->q[k]->name);
            break;
        }
        int64_t ne = 0;
        q7_calib_hist_edges(hl.hists[i], &ne);
        st = q7_calib_hist_set(h, q7_calib_hist_counts(hl.hists[i]),
                               q7_calib_hist_num_bins(hl.hists[i]),
                               q7_calib_hist_edge_max(hl.hists[i]),
                               q7_calib_hist_width(hl.hists[i]), ne);
        /* the max calibrator gets the run's max |x| when the file kept it */
        if (!st && qdq->q[k]->calib_max && hl.max[i] >= 0.0f)
            st = q7_calib_max_collect(qdq->q[k]->calib_max, &hl.max[i], 1, 1);
        else if (qdq->q[k]->calib_max)
            *all_max = 0;
        if (st)
            st = q7_error_wrap(st, "%s: %s", path, qdq->q[k]->name);
        used++;
    }
    if (!st && used < hl.n)
        st = q7_error_set(Q7_ERR_FORMAT, "%s: %d of its %d histograms match no input quantizer "
                          "of this model (another model or --qdq placement?)", path, hl.n - used,
                          hl.n);
    q7_hist_list_free(&hl);
    return st;
}

int cmd_calib(int argc, char ** argv)
{
    struct cli_eval_opts o = CLI_EVAL_OPTS_DEFAULT;
    const char * method = "entropy", * output = NULL, * save_hist = NULL, * trt = NULL;
    const char * plot = NULL, * plot_out = NULL, * from_hist = NULL;
    double percentile = 0.0;
    int calib_batches = 0, all = 0, help = 0;
    const struct cli_opt opts[] = {
        CLI_EVAL_OPTIONS(o),
        {"--method", CLI_STR, &method, "max, entropy (default), mse, percentile"},
        {"--percentile", CLI_DOUBLE, &percentile, "for --method percentile (default 99.99)"},
        {"--all-methods", CLI_FLAG, &all, "write every method (ref/amax.json layout)"},
        {"--calib-batches", CLI_INT, &calib_batches, "use the first N batches (default: all)"},
        {"-o", CLI_STR, &output, "amax table (JSON)"},
        {"--save-hist", CLI_STR, &save_hist, "every input quantizer's histogram (JSON)"},
        {"--from-hist", CLI_STR, &from_hist,
         "no calibration pass: amax from these histograms (--save-hist output, which keeps "
         "max too, or ref/histograms.json, which does not; --data not needed)"},
        {"--trt-cache", CLI_STR, &trt, "TensorRT calibration cache (text) for the method"},
        {"--plot", CLI_STR, &plot, "quantizer to plot, e.g. model.0.conv._input_quantizer"},
        {"--plot-out", CLI_STR, &plot_out, "SVG file for --plot (default: <quantizer>.svg)"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("calib", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !o.weights || !o.data == !from_hist || !output || n_pos ||
        !cli_eval_options_ok(&o)) {
        cli_usage(help ? stdout : stderr, "calib",
                  "--weights W (--data D | --from-hist H.json) -o amax.json [options]",
                  opts, n_opts);
        return help ? 0 : 2;
    }
    char method_name[64];
    if (percentile > 0 && strcmp(method, "percentile") == 0)
        snprintf(method_name, sizeof method_name, "percentile-%g", percentile);
    else
        snprintf(method_name, sizeof method_name, "%s", method);
    struct q7_model * m = NULL;
    struct cli_net net = {0};
    struct q7_dataset * ds = NULL;
    struct q7_coco_gt * gt = NULL;
    struct q7_qdq * qdq = NULL;
    struct q7_amax_table * tables[ALL_METHODS] = {0};
    enum q7_decoder dec = Q7_DECODER_AUTO;
    enum q7_qdq_mode qmode = Q7_QDQ_SEED;
    int rc = 1;
    enum q7_calib_method cm;
    double pct;
    enum q7_status st = cli_parse_decoder(o.decoder, &dec);
    if (!st)
        st = q7_qdq_mode_parse(o.qdq, &qmode);
    if (st || (st = q7_calib_method_parse(method_name, &cm, &pct)))
        goto done;
    if ((st = cli_load_model(&o, &m)) || (st = q7_model_fuse(m)) ||
        (!from_hist && (st = cli_load_dataset(&o, m->graph->nc, &ds, &gt))))
        goto done;
    /* from saved histograms no network runs: amax comes from the quantizers alone */
    if ((st = q7_qdq_insert(m->graph, qmode, &qdq)) ||
        (!from_hist && (st = cli_net_create(m->graph, o.device, o.fp16, o.threads, &net))))
        goto done;
    struct q7_eval_params ep = cli_eval_params(&o, dec, NULL);
    double secs = 0;
    int have_max = 1;
    if (from_hist) {
        double t0 = q7_time_now();
        if ((st = q7_qdq_calib_weights(qdq)) || (st = load_hists(from_hist, qdq, &have_max)))
            goto done;
        secs = q7_time_now() - t0;
        if (!have_max && cm == Q7_CALIB_MAX && !all) {
            st = q7_error_set(Q7_ERR_ARG, "--from-hist: %s keeps no max |x| (ref/histograms.json "
                              "does not; q7's --save-hist does), so max cannot be computed; use "
                              "entropy, mse or percentile", from_hist);
            goto done;
        }
    } else if ((st = cli_net_calibrate(&net, qdq, ds, &ep, calib_batches, &secs))) {
        goto done;
    }
    /* from a file without max, --all-methods and --plot leave out max (no data for it) */
    const int first = have_max ? 0 : 1;
    int n_out = all ? ALL_METHODS - first : 1;
    const char * names[ALL_METHODS];
    for (int k = 0; k < n_out; k++) {
        names[k] = all ? g_all_methods[k + first] : method_name;
        double amax_s = 0;
        if ((st = from_hist ? q7_qdq_compute_amax_named(qdq, names[k], &amax_s)
                            : cli_net_apply_method(&net, qdq, names[k], &amax_s)) ||
            (st = q7_amax_table_from_quantizers(qdq->q, qdq->n, &tables[k])))
            goto done;
        fprintf(stderr, "q7 calib: %-17s amax of %d quantizers in %.1f ms\n", names[k], qdq->n,
                amax_s * 1e3);
    }
    st = all ? q7_amax_table_save_methods(output, n_out, names,
                                          (const struct q7_amax_table * const *)tables)
             : q7_amax_table_save(output, tables[0]);
    if (st)
        goto done;
    int chosen = 0; /* the cache holds the --method table */
    for (int k = 0; k < n_out; k++)
        if (strcmp(names[k], method_name) == 0)
            chosen = k;
    if (trt && (st = q7_amax_table_write_trt_cache(trt, tables[chosen], 0, NULL, NULL)))
        goto done;
    if (save_hist && (st = save_hists(save_hist, qdq)))
        goto done;
    if (plot) {
        struct q7_quantizer * q = q7_qdq_find(qdq, plot);
        if (!q || !q->calib_hist) {
            st = q7_error_set(Q7_ERR_NOT_FOUND, "--plot: no input quantizer named '%s'", plot);
            goto done;
        }
        char labels[ALL_METHODS][64];
        const char * lp[ALL_METHODS];
        float amax[ALL_METHODS];
        for (int k = first; k < ALL_METHODS; k++) { /* every method, whatever -o holds */
            struct q7_amax_params ap = q7_amax_params_default();
            enum q7_calib_method mk;
            double pk = ap.percentile;
            q7_calib_method_parse(g_all_methods[k], &mk, &pk);
            ap.percentile = pk;
            if ((st = q7_quant_load_calib_amax(q, mk, &ap)))
                goto done;
            amax[k] = q->amax[0];
            snprintf(labels[k], sizeof labels[k], "%s %.4g", g_all_methods[k], amax[k]);
            lp[k] = labels[k];
        }
        char def[600];
        snprintf(def, sizeof def, "%s.svg", plot);
        if ((st = q7_hist_plot_svg(plot_out ? plot_out : def, plot, q->calib_hist,
                                   ALL_METHODS - first, lp + first, amax + first)))
            goto done;
    }
    char source[600];
    if (from_hist)
        snprintf(source, sizeof source, "from %s and the weights", from_hist);
    else
        snprintf(source, sizeof source, "on %d images", ds->n);
    printf("q7 calib: %d quantizers calibrated %s in %.1f s; %s written%s%s%s%s\n", qdq->n,
           source, secs, output, save_hist ? ", " : "", save_hist ? save_hist : "",
           trt ? ", " : "", trt ? trt : "");
    rc = 0;
done:
    if (rc)
        cli_fail("calib", st);
    for (int k = 0; k < ALL_METHODS; k++)
        q7_amax_table_free(tables[k]);
    cli_net_free(&net);
    q7_qdq_free(qdq);
    q7_coco_gt_free(gt);
    q7_dataset_free(ds);
    q7_model_free(m);
    return rc;
}
