/* Replays the fuzz corpus through every libFuzzer harness of tests/fuzz/, built here with
 * -DQ7_FUZZ_REGRESS so that each harness's entry point is q7_fuzz_<name>:
 *
 *   tests/fuzz/corpus/<harness>/     seeds (valid and slightly broken files of each format)
 *   tests/fuzz/regress/<harness>/    every input that once crashed, hung or over-allocated
 *
 * A crash, a sanitizer report (run it in the ASan + UBSan build: CI does) or a leak fails the
 * test; the name of the file being replayed is printed when the process dies. Inputs slower
 * than SLOW_SECONDS are reported (a hang shows up as the meson timeout).
 *
 *   test_fuzz_regress <tests/fuzz dir>                 everything (what meson runs)
 *   test_fuzz_regress <tests/fuzz dir> <harness> FILE...  chosen files through one harness */
#include "graph/base.h"
#include "tests/test_common.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_SANITIZER 1
#endif
#endif
#ifdef HAVE_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

#define SLOW_SECONDS 5.0
#define MAX_INPUT_BYTES ((size_t)4 << 20) /* corpus files are small; a bigger one is a mistake */

typedef int (*fuzz_fn)(const uint8_t * data, size_t size);

#define HARNESSES(X)                                                                              \
    X(amax_json) X(ckpt_graph) X(coco_json) X(exif) X(image_stb) X(image_turbo) X(labels)      \
    X(list) X(npy) X(pickle) X(yaml) X(zip)

#define DECLARE(name) int q7_fuzz_##name(const uint8_t * data, size_t size);
HARNESSES(DECLARE)
#undef DECLARE

static const struct {
    const char * name;
    fuzz_fn fn;
} g_harnesses[] = {
#define ENTRY(name) {#name, q7_fuzz_##name},
    HARNESSES(ENTRY)
#undef ENTRY
};
enum { N_HARNESSES = sizeof g_harnesses / sizeof g_harnesses[0] };

/* The input being replayed, for the death message. */
static char g_current[1024];

static void say_current(void)
{
    if (g_current[0]) {
        static const char msg[] = "\ntest_fuzz_regress: died while replaying ";
        ssize_t r = write(2, msg, sizeof msg - 1);
        r = write(2, g_current, strlen(g_current));
        r = write(2, "\n", 1);
        (void)r;
    }
}

static void on_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int find_harness(const char * name)
{
    for (int i = 0; i < N_HARNESSES; i++)
        if (strcmp(g_harnesses[i].name, name) == 0)
            return i;
    return -1;
}

/* Replays one file; returns 1 when it ran. */
static int replay(int h, const char * path)
{
    char * buf = NULL;
    size_t n = 0;
    enum q7_status st = q7_file_read_all(path, MAX_INPUT_BYTES, &buf, &n);
    CHECKF(st == Q7_OK, "%s: %s", path, q7_error_message());
    if (st != Q7_OK)
        return 0;
    snprintf(g_current, sizeof g_current, "%s (harness %s)", path, g_harnesses[h].name);
    if (getenv("Q7_FUZZ_VERBOSE"))
        fprintf(stderr, "%s\n", path);
    double t0 = q7_time_now();
    g_harnesses[h].fn((const uint8_t *)buf, n);
    double dt = q7_time_now() - t0;
    if (dt > SLOW_SECONDS)
        fprintf(stderr, "test_fuzz_regress: %s took %.1f s (harness %s)\n", path, dt,
                g_harnesses[h].name);
    g_current[0] = '\0';
    free(buf);
    return 1;
}

static int cmp_names(const void * a, const void * b)
{
    return strcmp(*(char * const *)a, *(char * const *)b);
}

/* Replays every regular file of dir (sorted, hidden files skipped); returns the count. */
static int replay_dir(int h, const char * dir)
{
    DIR * d = opendir(dir);
    if (!d)
        return 0;
    char ** names = NULL;
    size_t n = 0, cap = 0;
    struct dirent * e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char ** nn = realloc(names, cap * sizeof *names);
            if (!nn)
                abort();
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n])
            abort();
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            count += replay(h, path);
        free(names[i]);
    }
    free(names);
    return count;
}

/* Every folder under corpus/ and regress/ must name a harness (a typo would skip it). */
static void check_folders(const char * root, const char * sub)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    DIR * d = opendir(dir);
    if (!d)
        return;
    struct dirent * e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            CHECKF(find_harness(e->d_name) >= 0, "%s/%s: no harness of that name", dir,
                   e->d_name);
    closedir(d);
}

int main(int argc, char ** argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <tests/fuzz dir> [harness file...]\n", argv[0]);
        return 2;
    }
    const char * root = argv[1];
#ifdef HAVE_SANITIZER
    __sanitizer_set_death_callback(say_current);
#endif
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGILL, on_signal);

    if (argc >= 3) {
        int h = find_harness(argv[2]);
        if (h < 0) {
            fprintf(stderr, "%s: no harness '%s'\n", argv[0], argv[2]);
            return 2;
        }
        for (int i = 3; i < argc; i++)
            replay(h, argv[i]);
        return q7t_finish("test_fuzz_regress");
    }

    struct stat sb;
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/corpus", root);
    CHECKF(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s: no corpus folder", dir);
    check_folders(root, "corpus");
    check_folders(root, "regress");
    int total = 0;
    for (int h = 0; h < N_HARNESSES; h++) {
        double t0 = q7_time_now();
        snprintf(dir, sizeof dir, "%s/corpus/%s", root, g_harnesses[h].name);
        int nc = replay_dir(h, dir);
        snprintf(dir, sizeof dir, "%s/regress/%s", root, g_harnesses[h].name);
        int nr = replay_dir(h, dir);
        printf("%-12s %4d corpus + %3d regress inputs replayed in %.2f s\n",
               g_harnesses[h].name, nc, nr, q7_time_now() - t0);
        CHECKF(nc > 0, "harness %s has no seeds in %s/corpus/%s", g_harnesses[h].name, root,
               g_harnesses[h].name);
        total += nc + nr;
    }
    printf("%d inputs replayed through %d harnesses\n", total, N_HARNESSES);
    return q7t_finish("test_fuzz_regress");
}
