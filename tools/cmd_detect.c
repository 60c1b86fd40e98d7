/* q7 detect: detections per image, printed with class names and drawn into image files. */
#include "tools/cli.h"
#include "tools/draw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char * class_name(const struct q7_graph * g, int cls, char * buf, size_t size)
{
    if (g->names && cls >= 0 && cls < g->nc)
        return g->names[cls];
    snprintf(buf, size, "class%d", cls);
    return buf;
}

static enum q7_status detect_one(struct q7_exec * e, const struct q7_graph * g, const char * path,
                                 enum q7_decoder dec, int img_size,
                                 const struct q7_nms_params * np, const char * out_dir,
                                 int * n_found)
{
    struct q7_image img = {0};
    uint8_t * chw = NULL;
    float * raw = NULL, * dets = NULL;
    int n = 0;
    enum q7_status st = q7_image_load(path, dec, 0, &img);
    if (st)
        return st;
    int64_t hw[1][2] = {{img.h, img.w}};
    struct q7_batch_plan plan = {0};
    struct q7_letterbox_geom geom;
    int stride = g->stride_max > 32 ? g->stride_max : 32;
    if ((st = q7_batch_plan((const int64_t(*)[2])hw, 1, 1, img_size, stride, 0.5, &plan)))
        goto done;
    int64_t H = plan.shape[0][0], W = plan.shape[0][1], rows, no;
    chw = malloc((size_t)(3 * H * W));
    if (!chw) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    if ((st = q7_letterbox_image(img.data, img.h, img.w, img_size, H, W, chw, &geom)) ||
        (st = q7_exec_output_rows(e, 1, H, W, &rows, &no)))
        goto done;
    raw = malloc((size_t)(rows * no) * sizeof(float));
    if (!raw) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
        goto done;
    }
    double t0 = q7_time_now();
    if ((st = q7_exec_run_u8(e, chw, 1, H, W, raw)) ||
        (st = q7_nms(raw, rows, (int)no, np, &dets, &n)))
        goto done;
    double ms = (q7_time_now() - t0) * 1e3;
    struct q7_ratio_pad rp = {geom.ratio[0], geom.ratio[1], geom.pad[0], geom.pad[1]};
    q7_scale_coords((int)H, (int)W, dets, n, 6, (int)img.h, (int)img.w, &rp);
    printf("%s: %lldx%lld, %d detection%s (%.1f ms)\n", path, (long long)img.w,
           (long long)img.h, n, n == 1 ? "" : "s", ms);
    for (int k = 0; k < n; k++) {
        const float * d = dets + 6 * k;
        char buf[32];
        const char * name = class_name(g, (int)d[5], buf, sizeof buf);
        printf("  %-16s %.3f  [%7.1f %7.1f %7.1f %7.1f]\n", name, d[4], d[0], d[1], d[2], d[3]);
        if (out_dir) {
            uint8_t color[3];
            draw_color((int)d[5], color);
            draw_rect(&img, (int64_t)d[0], (int64_t)d[1], (int64_t)d[2], (int64_t)d[3], 3, color);
            char label[64];
            snprintf(label, sizeof label, "%s %.2f", name, d[4]);
            draw_label(&img, (int64_t)d[0], (int64_t)d[1], label, color);
        }
    }
    *n_found += n;
    if (out_dir) {
        const char * base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t len = strlen(out_dir) + strlen(base) + 8;
        char * out = malloc(len);
        if (!out) {
            st = q7_error_set(Q7_ERR_OOM, "out of memory");
            goto done;
        }
        snprintf(out, len, "%s/%s", out_dir, base);
        char * dot = strrchr(out, '.');
        int png = dot && (strcmp(dot, ".png") == 0 || strcmp(dot, ".PNG") == 0);
        if (!dot || (!png && strcmp(dot, ".jpg") != 0 && strcmp(dot, ".jpeg") != 0))
            strcat(out, ".jpg");
        st = png ? q7_image_save_png(out, &img) : q7_image_save_jpeg(out, &img, 95, 0);
        free(out);
    }
done:
    q7_batch_plan_free(&plan);
    q7_image_free(&img);
    free(chw);
    free(raw);
    free(dets);
    return st;
}

int cmd_detect(int argc, char ** argv)
{
    const char * weights = NULL, * out_dir = NULL, * decoder = NULL;
    double conf = 0.25, iou = 0.45;
    int img = 640, threads = 0, agnostic = 0, help = 0;
    const struct cli_opt opts[] = {
        {"--weights", CLI_STR, &weights, "checkpoint (.pt)"},
        {"--conf", CLI_DOUBLE, &conf, "confidence threshold (default 0.25, as detect.py)"},
        {"--iou", CLI_DOUBLE, &iou, "NMS IoU threshold (default 0.45)"},
        {"--img", CLI_INT, &img, "image size (default 640)"},
        {"--agnostic", CLI_FLAG, &agnostic, "class-agnostic NMS"},
        {"--decoder", CLI_STR, &decoder, "JPEG decoder: turbo, stb, auto"},
        {"--threads", CLI_INT, &threads, "CPU threads (default: all cores)"},
        {"-o", CLI_STR, &out_dir, "write each image with boxes and labels drawn into DIR"},
        {"--help", CLI_FLAG, &help, "this text"},
    };
    const int n_opts = sizeof opts / sizeof opts[0];
    char ** pos;
    int n_pos;
    if (cli_parse("detect", argc, argv, 2, opts, n_opts, &pos, &n_pos))
        return 2;
    if (help || !weights || n_pos < 1 || img < 32) {
        cli_usage(help ? stdout : stderr, "detect", "--weights W [options] IMAGES...", opts,
                  n_opts);
        return help ? 0 : 2;
    }
    if (out_dir && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "q7 detect: cannot create %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    struct q7_model * m = NULL;
    struct q7_exec * e = NULL;
    enum q7_decoder dec = Q7_DECODER_AUTO;
    enum q7_status st = cli_parse_decoder(decoder, &dec);
    if (st || (st = q7_model_load(weights, NULL, &m)) || (st = q7_model_fuse(m)))
        goto fail;
    struct q7_exec_params xp = q7_exec_params_default();
    xp.threads = threads;
    if ((st = q7_exec_create(m->graph, &xp, &e)))
        goto fail;
    struct q7_nms_params np = q7_nms_params_default();
    np.conf_thres = (float)conf;
    np.iou_thres = iou;
    np.agnostic = agnostic;
    np.multi_label = 0; /* detect.py: best class per box */
    int failed = 0, found = 0;
    for (int i = 0; i < n_pos; i++) {
        if ((st = detect_one(e, m->graph, pos[i], dec, img, &np, out_dir, &found))) {
            fprintf(stderr, "q7 detect: %s\n", q7_error_message());
            failed++;
        }
    }
    if (out_dir)
        printf("%d detections in %d images drawn into %s/\n", found, n_pos - failed, out_dir);
    q7_exec_free(e);
    q7_model_free(m);
    return failed == n_pos ? 1 : 0;
fail:
    q7_exec_free(e);
    q7_model_free(m);
    return cli_fail("detect", st);
}
