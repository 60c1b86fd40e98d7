/* Shared command-line plumbing for the q7 tool: option tables, messages, JSON output. */
#ifndef Q7_CLI_H
#define Q7_CLI_H

#include "engine/q7.h"

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

/* The commands. */
int cmd_info(int argc, char ** argv);
int cmd_run(int argc, char ** argv);
int cmd_bench(int argc, char ** argv);
int cmd_export(int argc, char ** argv);

#endif
