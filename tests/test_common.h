/* Small test harness shared by the C tests: checks that count failures and print
 * coordinates, fixture lookup (skip with 77 when missing), JSON and comparison helpers. */
#ifndef Q7_TEST_COMMON_H
#define Q7_TEST_COMMON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define Q7_TEST_SKIP 77

extern int q7t_failures;
extern int q7t_checks;

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        q7t_checks++;                                                                             \
        if (!(cond)) {                                                                            \
            q7t_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);              \
        }                                                                                         \
    } while (0)

#define CHECKF(cond, ...)                                                                         \
    do {                                                                                          \
        q7t_checks++;                                                                             \
        if (!(cond)) {                                                                            \
            q7t_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
        }                                                                                         \
    } while (0)

/* Checks a q7 status is Q7_OK, printing the library's message otherwise. */
#define CHECK_OK(expr)                                                                            \
    do {                                                                                          \
        int st_ = (int)(expr);                                                                    \
        q7t_checks++;                                                                             \
        if (st_ != 0) {                                                                           \
            q7t_failures++;                                                                       \
            fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #expr, st_,        \
                    q7_error_message());                                                          \
        }                                                                                         \
    } while (0)

/* Prints "name: N checks, N failed" and returns the process exit code. */
int q7t_finish(const char * name);

/* $Q7_FIXTURES (set by meson) or ../shared/fixtures; NULL when absent. */
const char * q7t_fixtures(void);
/* Joins the fixtures dir and a relative path into a static buffer (one of 8 rotating). */
const char * q7t_fixture(const char * rel);
/* Exits 77 with a message when `path` does not exist. */
void q7t_require(const char * path);

/* Parses a JSON file; exits 77 when missing, fails the test when malformed. */
cJSON * q7t_json_load(const char * path);

/* Relative L2 error ||a - b|| / ||b|| in double. */
double q7t_rel_l2(const float * a, const float * b, size_t n);
/* Prints up to `max_print` positions where |a - b| > atol + rtol*|b|; returns their count. */
size_t q7t_compare(const char * what, const float * a, const float * b, size_t n, double atol,
                   double rtol, int max_print);

/* Deterministic random numbers for tests. */
uint64_t q7t_rand_u64(uint64_t * state);
float q7t_rand_uniform(uint64_t * state, float lo, float hi);

#endif
