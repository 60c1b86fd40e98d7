/* Shared by the libFuzzer harnesses in tests/fuzz/ and their replay in tests/test_fuzz_regress.c.
 *
 * Each harness defines its entry point with Q7_FUZZ_ENTRY(name). Built by tools/fuzz.sh (clang
 * -fsanitize=fuzzer) that is LLVMFuzzerTestOneInput; built into test_fuzz_regress (with
 * -DQ7_FUZZ_REGRESS) it is q7_fuzz_<name>, so that one executable holds every harness and
 * replays tests/fuzz/corpus/<name>/ and tests/fuzz/regress/<name>/ through it.
 *
 * A harness returns 0 whatever the library says about the input: only a crash, a sanitizer
 * report, a hang or an allocation past the fuzzer's limits counts as a finding. */
#ifndef Q7_FUZZ_H
#define Q7_FUZZ_H

#include "graph/base.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef Q7_FUZZ_REGRESS
#define Q7_FUZZ_ENTRY(name) int q7_fuzz_##name(const uint8_t * data, size_t size)
#else
#define Q7_FUZZ_ENTRY(name) int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
#endif

/* Every harness keeps the library quiet (warnings about hostile inputs are expected). */
static inline void q7_fuzz_init(void)
{
    static int done;
    if (!done) {
        q7_log_set_level(Q7_LOG_QUIET);
        done = 1;
    }
}

/* With Q7_FUZZ_VERBOSE set, prints what each stage of a harness said about the input (to see
 * how far seeds get); otherwise nothing. Returns st. */
static inline enum q7_status q7_fuzz_note(const char * stage, enum q7_status st)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("Q7_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "  %-14s %s%s%s\n", stage, q7_status_str(st), st ? ": " : "",
                st ? q7_error_message() : "");
    return st;
}

/* A private folder for harnesses whose reader only takes a path (created once per process,
 * removed at exit with whatever the harnesses wrote into it). */
static char q7_fuzz_dir_buf[256];

static inline void q7_fuzz_dir_cleanup(void)
{
    static const char * const names[] = {"in.bin", "val.txt", "instances.json", "images.txt",
                                         "tiny.jpg"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", q7_fuzz_dir_buf, names[i]);
        unlink(p);
    }
    rmdir(q7_fuzz_dir_buf);
}

static inline const char * q7_fuzz_dir(void)
{
    if (!q7_fuzz_dir_buf[0]) {
        const char * tmp = getenv("TMPDIR");
        snprintf(q7_fuzz_dir_buf, sizeof q7_fuzz_dir_buf, "%s/q7fuzz.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(q7_fuzz_dir_buf)) {
            perror("q7 fuzz: mkdtemp");
            abort();
        }
        atexit(q7_fuzz_dir_cleanup);
    }
    return q7_fuzz_dir_buf;
}

/* Writes `data` to `name` in the private folder, puts its path in `path` (cap bytes) and
 * returns it. Aborts when the disk fails, which is not a finding about q7. Names must be among
 * those q7_fuzz_dir_cleanup removes. (tools/fuzz.sh points TMPDIR at /dev/shm: on a disk this
 * write costs milliseconds per input.) */
static inline const char * q7_fuzz_write(const char * name, const void * data, size_t size,
                                         char * path, size_t cap)
{
    snprintf(path, cap, "%s/%s", q7_fuzz_dir(), name);
    FILE * f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror("q7 fuzz: writing the input");
        abort();
    }
    return path;
}

#endif
