#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int q7t_failures;
int q7t_checks;

int q7t_finish(const char * name)
{
    printf("%s: %d checks, %d failed\n", name, q7t_checks, q7t_failures);
    return q7t_failures ? 1 : 0;
}

const char * q7t_fixtures(void)
{
    static char dir[4096];
    const char * env = getenv("Q7_FIXTURES");
    const char * cands[] = {env, "../shared/fixtures", "../../shared/fixtures",
                            "../../../shared/fixtures"};
    struct stat st;
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (cands[i] && stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(dir, sizeof dir, "%s", cands[i]);
            return dir;
        }
    }
    return NULL;
}

const char * q7t_fixture(const char * rel)
{
    static char bufs[8][4096];
    static int next;
    const char * dir = q7t_fixtures();
    char * b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir ? dir : "../shared/fixtures", rel);
    return b;
}

void q7t_require(const char * path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("SKIP: fixture %s is missing\n", path);
        exit(Q7_TEST_SKIP);
    }
}

cJSON * q7t_json_load(const char * path)
{
    q7t_require(path);
    FILE * f = fopen(path, "rb");
    if (!f) {
        printf("SKIP: cannot open %s\n", path);
        exit(Q7_TEST_SKIP);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char * buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    buf[n] = '\0';
    fclose(f);
    cJSON * j = cJSON_Parse(buf);
    free(buf);
    if (!j) {
        fprintf(stderr, "malformed JSON in %s\n", path);
        exit(1);
    }
    return j;
}

double q7t_rel_l2(const float * a, const float * b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

size_t q7t_compare(const char * what, const float * a, const float * b, size_t n, double atol,
                   double rtol, int max_print)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            if ((int)bad < max_print)
                fprintf(stderr, "  %s[%zu]: got %.9g, want %.9g (diff %.3g)\n", what, i, a[i],
                        b[i], d);
            bad++;
        }
    }
    if (bad)
        fprintf(stderr, "  %s: %zu of %zu values differ\n", what, bad, n);
    return bad;
}

uint64_t q7t_rand_u64(uint64_t * s)
{
    uint64_t x = *s += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

float q7t_rand_uniform(uint64_t * s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((q7t_rand_u64(s) >> 40) * (1.0 / 16777216.0));
}
