/* libFuzzer harness: image probing and decoding with libjpeg-turbo for JPEGs (eval/image.c);
 * in a build without it, the AUTO decoder (stb_image). */
#include "tests/fuzz/fuzz_image_common.h"

Q7_FUZZ_ENTRY(image_turbo)
{
    q7_fuzz_init();
    q7_fuzz_image(data, size,
                  q7_decoder_available(Q7_DECODER_TURBO) ? Q7_DECODER_TURBO : Q7_DECODER_AUTO);
    return 0;
}
