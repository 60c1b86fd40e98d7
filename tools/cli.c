/* Shared command-line plumbing for the q7 tool. */
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_parse(const char * cmd, int argc, char ** argv, int first, const struct cli_opt * opts,
              int n_opts, char *** pos, int * n_pos)
{
    static char * positional[4096];
    *n_pos = 0;
    *pos = positional;
    for (int i = first; i < argc; i++) {
        const char * a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (*n_pos >= 4096) {
                fprintf(stderr, "q7 %s: too many arguments\n", cmd);
                return 2;
            }
            positional[(*n_pos)++] = argv[i];
            continue;
        }
        const char * eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct cli_opt * o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, a, len) == 0)
                o = &opts[k];
        if (!o) {
            fprintf(stderr, "q7 %s: unknown option %s (see q7 %s --help)\n", cmd, a, cmd);
            return 2;
        }
        if (o->kind == CLI_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        const char * val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            fprintf(stderr, "q7 %s: %s needs a value\n", cmd, o->name);
            return 2;
        }
        char * end = NULL;
        errno = 0;
        if (o->kind == CLI_INT) {
            long v = strtol(val, &end, 10);
            if (errno || *end || end == val || v < -2147483647L || v > 2147483647L) {
                fprintf(stderr, "q7 %s: %s expects an integer, got '%s'\n", cmd, o->name, val);
                return 2;
            }
            *(int *)o->dst = (int)v;
        } else if (o->kind == CLI_DOUBLE) {
            double v = strtod(val, &end);
            if (errno || *end || end == val) {
                fprintf(stderr, "q7 %s: %s expects a number, got '%s'\n", cmd, o->name, val);
                return 2;
            }
            *(double *)o->dst = v;
        } else {
            *(const char **)o->dst = val;
        }
    }
    return 0;
}

void cli_usage(FILE * f, const char * cmd, const char * synopsis, const struct cli_opt * opts,
               int n_opts)
{
    fprintf(f, "usage: q7 %s %s\n\noptions:\n", cmd, synopsis);
    for (int k = 0; k < n_opts; k++) {
        const char * arg = opts[k].kind == CLI_FLAG     ? ""
                           : opts[k].kind == CLI_INT    ? " N"
                           : opts[k].kind == CLI_DOUBLE ? " X"
                                                        : " VALUE";
        char left[64];
        snprintf(left, sizeof left, "%s%s", opts[k].name, arg);
        fprintf(f, "  %-22s %s\n", left, opts[k].help);
    }
}

int cli_fail(const char * cmd, enum q7_status st)
{
    const char * msg = q7_error_message();
    fprintf(stderr, "q7 %s: %s\n", cmd, msg[0] ? msg : q7_status_str(st));
    return 1;
}

enum q7_status cli_write_json(const char * path, const cJSON * root)
{
    char * text = cJSON_Print(root);
    if (!text)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory formatting JSON", path);
    size_t n = strlen(text);
    text[n] = '\n';
    enum q7_status st = q7_file_write_atomic(path, text, n + 1);
    free(text);
    return st;
}
