/* libFuzzer harness: the .npy parser (models/npy.c). */
#include "models/npy.h"
#include "tests/fuzz/fuzz.h"

Q7_FUZZ_ENTRY(npy)
{
    q7_fuzz_init();
    struct q7_npy a;
    memset(&a, 0, sizeof a);
    if (q7_fuzz_note("npy", q7_npy_parse(data, size, "fuzz.npy", &a)) == Q7_OK) {
        int64_t n = q7_npy_numel(&a);
        size_t bytes = (size_t)n * q7_dtype_size(a.dtype);
        volatile uint8_t x = 0;
        if (bytes) /* the whole payload must be readable */
            x = ((const uint8_t *)a.data)[0] ^ ((const uint8_t *)a.data)[bytes - 1];
        (void)x;
        q7_npy_free(&a);
    }
    return 0;
}
