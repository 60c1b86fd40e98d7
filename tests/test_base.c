/* Unit tests for graph/base (status, arena, half floats) and models/npy. */
#include "graph/base.h"
#include "graph/graph.h"
#include "models/npy.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_half(void)
{
    /* every half value round-trips through float */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = q7_half_to_float((uint16_t)h);
        if (isnan(f))
            continue;
        uint16_t back = q7_float_to_half(f);
        CHECKF(back == h, "half 0x%04x -> %g -> 0x%04x", h, f, back);
        if (back != h)
            break;
    }
    CHECK(q7_half_to_float(0x3c00) == 1.0f);
    CHECK(q7_half_to_float(0xc000) == -2.0f);
    CHECK(q7_float_to_half(65520.0f) == 0x7c00);     /* overflow rounds to inf */
    CHECK(q7_float_to_half(1.0f + 1.0f / 2048) == 0x3c00); /* tie to even */
    CHECK(q7_bf16_to_float(0x3f80) == 1.0f);
}

static void test_arena(void)
{
    struct q7_arena * a = q7_arena_create(128);
    CHECK(a != NULL);
    char * s = q7_arena_strdup(a, "hello");
    CHECK(s && strcmp(s, "hello") == 0);
    void * big = q7_arena_alloc(a, 100000);
    CHECK(big != NULL && ((uintptr_t)big % 64) == 0);
    void * small = q7_arena_alloc(a, 3);
    CHECK(small != NULL);
    CHECK(q7_arena_alloc(a, SIZE_MAX - 8) == NULL);
    CHECK(strstr(q7_error_message(), "overflow") != NULL);
    q7_arena_free(a);
    q7_arena_free(NULL);
}

static void test_status(void)
{
    CHECK(strcmp(q7_status_str(Q7_ERR_FORMAT), "format error") == 0);
    CHECK(strcmp(q7_status_str((enum q7_status)99), "unknown status") == 0);
    CHECK(q7_error_set(Q7_ERR_IO, "x.pt: %s", "gone") == Q7_ERR_IO);
    CHECK(strcmp(q7_error_message(), "x.pt: gone") == 0);
    CHECK(q7_error_status() == Q7_ERR_IO);
    q7_error_wrap(Q7_ERR_LIMIT, "loading");
    CHECK(strcmp(q7_error_message(), "loading: x.pt: gone") == 0);
    CHECK(q7_error_status() == Q7_ERR_LIMIT);
    q7_error_clear();
    CHECK(q7_error_status() == Q7_OK && q7_error_message()[0] == '\0');
}

static void test_npy(void)
{
    char path[] = "/tmp/q7_test_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    float v[6] = {1, 2, 3, 4, 5, -6.5f};
    int64_t shape[2] = {2, 3};
    CHECK_OK(q7_npy_save(path, Q7_DTYPE_F32, 2, shape, v));
    struct q7_npy a;
    CHECK_OK(q7_npy_load(path, &a));
    CHECK(a.dtype == Q7_DTYPE_F32 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3);
    CHECK(a.data && memcmp(a.data, v, sizeof v) == 0);
    q7_npy_free(&a);
    int64_t shape1[1] = {4};
    uint8_t u[4] = {1, 2, 3, 255};
    CHECK_OK(q7_npy_save(path, Q7_DTYPE_U8, 1, shape1, u));
    CHECK_OK(q7_npy_load(path, &a));
    CHECK(a.dtype == Q7_DTYPE_U8 && a.ndim == 1 && a.shape[0] == 4);
    q7_npy_free(&a);
    remove(path);

    /* hostile: claims a huge shape in a tiny file */
    const char hdr[] = "\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, "
                       "'shape': (1000000000, 1000000000), }      \n";
    CHECK(q7_npy_parse((const uint8_t *)hdr, sizeof hdr - 1, "evil.npy", &a) != Q7_OK);
    CHECK(strstr(q7_error_message(), "evil.npy") != NULL);
    CHECK(q7_npy_parse((const uint8_t *)"garbage!!!", 10, "g.npy", &a) == Q7_ERR_FORMAT);
    /* the shape is a Python tuple: commas between dimensions, (n,) for one dimension */
    static const struct {
        const char * shape;
        int ok, ndim;
    } shapes[] = {
        {"(2, 3)", 1, 2}, {"(2,3,)", 1, 2}, {"(6,)", 1, 1}, {"( 6 , )", 1, 1}, {"()", 1, 0},
        {"(2 3)", 0, 0},  {"(6)", 0, 0},    {"(,6)", 0, 0}, {"(2,,3)", 0, 0}, {"(2, x)", 0, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char h[128];
        int hl = snprintf(h + 10, sizeof h - 10,
                          "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }",
                          shapes[i].shape);
        while ((10 + hl + 1) % 16)
            h[10 + hl++] = ' ';
        h[10 + hl++] = '\n';
        memcpy(h, "\x93NUMPY\x01\x00", 8);
        h[8] = (char)hl;
        h[9] = 0;
        uint8_t file[128 + 8];
        memcpy(file, h, (size_t)(10 + hl));
        memset(file + 10 + hl, 7, 8); /* 6 bytes of data are enough; 8 more than 1 */
        enum q7_status st = q7_npy_parse(file, (size_t)(10 + hl) + (shapes[i].ndim == 0 ? 1 : 6),
                                         "s.npy", &a);
        CHECKF((st == Q7_OK) == shapes[i].ok && (!shapes[i].ok || a.ndim == shapes[i].ndim),
               "npy shape %s: %s", shapes[i].shape, st ? q7_error_message() : "accepted");
        q7_npy_free(&a);
    }
    /* a fixture, when present */
    const char * fx = q7t_fixtures();
    if (fx) {
        const char * p = q7t_fixture("yolov7-tiny/ref/input_horses.npy");
        if (q7_npy_load(p, &a) == Q7_OK) {
            CHECK(a.dtype == Q7_DTYPE_U8 && a.ndim == 3 && a.shape[0] == 3);
            q7_npy_free(&a);
        }
    }
}

int main(void)
{
    test_half();
    test_arena();
    test_status();
    test_npy();
    return q7t_finish("test_base");
}
