/* q7: one command for inference, evaluation and quantization of YOLOv7 models. */
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char * name;
    int (*fn)(int argc, char ** argv);
    const char * what;
};

static const struct command g_commands[] = {
    {"info", cmd_info, "layer table, parameters and GFLOPs of a checkpoint or yaml config"},
    {"run", cmd_run, "raw head output of a network on a preprocessed .npy input"},
    {"detect", cmd_detect, "detections per image, printed and drawn into image files"},
    {"eval", cmd_eval, "yolov7 test.py on a dataset: P, R, mAP@.5, mAP@.5:.95, COCO AP"},
    {"calib", cmd_calib, "calibrate quantizers on a dataset, write the amax table"},
    {"table", cmd_table, "the mAP table: origin, fused, one fake-INT8 row per amax method"},
    {"sens", cmd_sens, "per-layer quantization sensitivity (SQNR, cosine, optional mAP)"},
    {"bench", cmd_bench, "per-layer time, GFLOP/s, images/s and peak memory"},
    {"export", cmd_export, "ONNX (optionally with Q/DQ pairs), or q7's graph JSON + FP32 weights"},
};

static void usage(FILE * f)
{
    fprintf(f, "usage: q7 <command> [options]   (q7 <command> --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        fprintf(f, "  %-8s %s\n", g_commands[i].name, g_commands[i].what);
}

int main(int argc, char ** argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("q7 %s\n", Q7_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        if (strcmp(argv[1], g_commands[i].name) == 0)
            return g_commands[i].fn(argc, argv);
    fprintf(stderr, "q7: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
