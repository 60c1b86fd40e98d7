/* libFuzzer harness: image probing and decoding with stb_image (eval/image.c), any format. */
#include "tests/fuzz/fuzz_image_common.h"

Q7_FUZZ_ENTRY(image_stb)
{
    q7_fuzz_init();
    q7_fuzz_image(data, size, Q7_DECODER_STB);
    return 0;
}
