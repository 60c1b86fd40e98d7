/* Shared by the image harnesses: probe, then decode with a pixel bound small enough for
 * fuzzing (a header over it must be refused before anything its size is allocated). */
#ifndef Q7_FUZZ_IMAGE_COMMON_H
#define Q7_FUZZ_IMAGE_COMMON_H

#include "eval/image.h"
#include "tests/fuzz/fuzz.h"

#define Q7_FUZZ_MAX_PIXELS ((int64_t)1 << 22)

static inline void q7_fuzz_image(const uint8_t * data, size_t size, enum q7_decoder dec)
{
    struct q7_image_info info;
    enum q7_status pst = q7_fuzz_note("probe", q7_image_probe_memory(data, size, "fuzz", &info));
    struct q7_image img;
    if (q7_fuzz_note("decode", q7_image_decode_memory(data, size, "fuzz", dec,
                                                         Q7_FUZZ_MAX_PIXELS, &img)) == Q7_OK) {
        /* the decoded size must be what the probe promised, and every byte readable */
        if (pst == Q7_OK) {
            int64_t h, w;
            q7_image_info_oriented_hw(&info, &h, &w);
            if (h != img.h || w != img.w) {
                fprintf(stderr, "probe says %lldx%lld, decode gives %lldx%lld\n", (long long)w,
                        (long long)h, (long long)img.w, (long long)img.h);
                abort();
            }
        }
        volatile uint8_t x = 0;
        size_t n = (size_t)img.h * (size_t)img.w * 3;
        if (n)
            x = img.data[0] ^ img.data[n - 1];
        (void)x;
        q7_image_free(&img);
    }
}

#endif
