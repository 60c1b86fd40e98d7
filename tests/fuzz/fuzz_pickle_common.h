/* Storage resolver shared by the pickle harnesses: every storage key resolves to the same
 * deterministic bytes (up to a bound), so that tensors built from a fuzzed pickle have data
 * (finite and non-finite FP16/FP32 patterns alike) without a zip archive around it. */
#ifndef Q7_FUZZ_PICKLE_COMMON_H
#define Q7_FUZZ_PICKLE_COMMON_H

#include "models/ckpt.h"
#include "tests/fuzz/fuzz.h"

#define Q7_FUZZ_STORAGE_MAX ((size_t)8 << 20)

static inline const uint8_t * q7_fuzz_resolve(void * user, const char * key, size_t need)
{
    static uint8_t * bytes;
    (void)user;
    if (need > Q7_FUZZ_STORAGE_MAX) {
        q7_error_set(Q7_ERR_LIMIT, "storage '%s': %zu bytes (the fuzz harness serves at most "
                     "%zu)", key, need, Q7_FUZZ_STORAGE_MAX);
        return NULL;
    }
    if (!bytes) {
        bytes = malloc(Q7_FUZZ_STORAGE_MAX);
        if (!bytes)
            abort();
        uint32_t s = 12345;
        for (size_t i = 0; i < Q7_FUZZ_STORAGE_MAX; i++) {
            s = s * 1103515245u + 12345u;
            /* mostly small halves/floats around 1, now and then anything */
            bytes[i] = (i & 1) ? (uint8_t)(0x38 + (s >> 29)) : (uint8_t)(s >> 24);
            if ((s >> 8 & 0xFF) == 0)
                bytes[i] = (uint8_t)(s >> 16);
        }
        /* Every storage starts here: make the first values plausible FP32 detection strides
         * and anchors (8, 16, 32, 64), which the graph builder range-checks, so that seeds
         * get past the detection head. */
        static const float head[4] = {8.0f, 16.0f, 32.0f, 64.0f};
        memcpy(bytes, head, sizeof head);
    }
    return bytes;
}

/* Limits small enough that a harness run stays fast, large enough for the seed pickles. */
static inline struct q7_ckpt_limits q7_fuzz_limits(void)
{
    struct q7_ckpt_limits l = q7_ckpt_limits_default();
    l.max_pickle_bytes = (size_t)4 << 20;
    l.max_objects = (size_t)1 << 18;
    l.max_memo = (size_t)1 << 18;
    l.max_stack = (size_t)1 << 14;
    l.max_container_len = (size_t)1 << 16;
    l.max_zip_entries = 4096;
    return l;
}

/* Sums every tensor of a module tree (checks each view against its storage). */
static inline enum q7_status q7_fuzz_visit(void * user, const char * name,
                                           const struct q7_py * tensor, int is_buffer)
{
    double s, a;
    (void)name;
    (void)is_buffer;
    if (q7_py_tensor_sums(tensor, &s, &a) == Q7_OK)
        *(double *)user += s + a;
    return Q7_OK;
}

#endif
