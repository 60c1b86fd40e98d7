/* Shared command-line plumbing for the q7 tool: option tables, messages, JSON output. */
#ifndef Q7_CLI_H
#define Q7_CLI_H

#include "engine/q7.h"
#include "engine/exec_cuda.h"

#include <cjson/cJSON.h>
#include <stdio.h>

enum cli_kind { CLI_FLAG, CLI_INT, CLI_DOUBLE, CLI_STR };

struct cli_opt {
    const char * name; /* "--weights" */
    enum cli_kind kind;
    void * dst;        /* int*, int*, double*, const char** */
    const char * help;
};

/* Parses argv[first..]; unknown options are an error. Positional arguments are returned in
 * *pos (pointers into argv), their count in *n_pos. Returns 0 or prints the problem and 2. */
int cli_parse(const char * cmd, int argc, char ** argv, int first, const struct cli_opt * opts,
              int n_opts, char *** pos, int * n_pos);
void cli_usage(FILE * f, const char * cmd, const char * synopsis, const struct cli_opt * opts,
               int n_opts);

/* Prints "q7 <cmd>: <library message>" and returns 1. */
int cli_fail(const char * cmd, enum q7_status st);

/* Writes a cJSON tree atomically (pretty printed). */
enum q7_status cli_write_json(const char * path, const cJSON * root);

/* Options shared by every command that reads a dataset (eval, calib, table, sens). */
struct cli_eval_opts {
    const char * weights, * data, * coco_json, * decoder, * qdq, * cfg, * device;
    int batch, img, threads, workers, fp16;
    double conf, iou;
};
#define CLI_EVAL_OPTS_DEFAULT                                                                   \
    {.batch = 8, .img = 640, .conf = 0.001, .iou = 0.65, .decoder = NULL}
#define CLI_EVAL_OPTIONS(o)                                                                     \
    {"--weights", CLI_STR, &(o).weights, "checkpoint (.pt)"},                                   \
    {"--cfg", CLI_STR, &(o).cfg, "yaml config for a bare state_dict checkpoint"},              \
    {"--data", CLI_STR, &(o).data, "image list (val.txt), image folder or one image"},          \
    {"--coco-json", CLI_STR, &(o).coco_json, "labels from a COCO instances file (91->80 ids)"}, \
    {"--batch", CLI_INT, &(o).batch, "batch size (default 8)"},                                \
    {"--img", CLI_INT, &(o).img, "image size (default 640)"},                                  \
    {"--conf", CLI_DOUBLE, &(o).conf, "confidence threshold (default 0.001)"},                 \
    {"--iou", CLI_DOUBLE, &(o).iou, "NMS IoU threshold (default 0.65)"},                       \
    {"--decoder", CLI_STR, &(o).decoder, "JPEG decoder: turbo (OpenCV's pixels), stb, auto"},  \
    {"--threads", CLI_INT, &(o).threads, "CPU threads for the network (default: all)"},        \
    {"--workers", CLI_INT, &(o).workers, "image decoding threads (default: all cores)"},        \
    {"--device", CLI_STR, &(o).device, "cpu (default) or cuda"},                              \
    {"--fp16", CLI_FLAG, &(o).fp16, "FP16 activations and tensor-core GEMMs (cuda)"},          \
    {"--qdq", CLI_STR, &(o).qdq, "QDQ placement: seed (default) or trt (pools quantized, "      \
                                 "concat inputs share a scale)"}

int cli_eval_options_ok(const struct cli_eval_opts * o);
/* Loads --weights (with --cfg for a bare state_dict). */
enum q7_status cli_load_model(const struct cli_eval_opts * o, struct q7_model ** m);
enum q7_status cli_parse_decoder(const char * s, enum q7_decoder * out);
enum q7_status cli_load_dataset(const struct cli_eval_opts * o, int nc, struct q7_dataset ** ds,
                                struct q7_coco_gt ** gt);
struct q7_eval_params cli_eval_params(const struct cli_eval_opts * o, enum q7_decoder dec,
                                      const struct q7_coco_gt * gt);
cJSON * cli_eval_json(const struct q7_eval_result * r);
void cli_eval_speed(const struct q7_eval_result * r, const struct cli_eval_opts * o);
/* The network behind a command: CPU executor, or CUDA with --device cuda (cli_net.c). */
struct cli_net {
    int cuda;
    struct q7_graph * g;
    struct q7_exec * cpu;
    struct q7_cuda_exec * gpu;
};
enum q7_status cli_net_create(struct q7_graph * g, const char * device, int fp16, int threads,
                              struct cli_net * net);
void cli_net_free(struct cli_net * net);
struct q7_runner cli_net_runner(struct cli_net * net);
/* After quantizer changes (amax, enable/disable). */
enum q7_status cli_net_refresh(struct cli_net * net);
enum q7_status cli_net_calibrate(struct cli_net * net, struct q7_qdq * qdq,
                                 const struct q7_dataset * calib,
                                 const struct q7_eval_params * params, int max_batches,
                                 double * seconds);
enum q7_status cli_net_apply_method(struct cli_net * net, struct q7_qdq * qdq,
                                    const char * method, double * seconds);

/* The commands. */
int cmd_info(int argc, char ** argv);
int cmd_run(int argc, char ** argv);
int cmd_bench(int argc, char ** argv);
int cmd_export(int argc, char ** argv);
int cmd_eval(int argc, char ** argv);
int cmd_table(int argc, char ** argv);
int cmd_calib(int argc, char ** argv);
int cmd_sens(int argc, char ** argv);
int cmd_detect(int argc, char ** argv);

#endif
