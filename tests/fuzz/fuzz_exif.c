/* libFuzzer harness: the EXIF parser of eval/image.c. The input is the TIFF block of an EXIF
 * APP1 segment ("II*\0..."): it is put into a small valid JPEG (made once with
 * q7_image_save_jpeg), which is then probed and decoded with every decoder, so that a lying
 * block reaches both the orientation parser and the pixel transform. */
#include "tests/fuzz/fuzz_image_common.h"

#define EXIF_MAX_PAYLOAD (65535 - 2 - 6) /* an APP1 length field holds 16 bits */

static uint8_t * g_jpeg;
static size_t g_jpeg_size;

static void make_jpeg(void)
{
    enum { H = 9, W = 14 };
    uint8_t px[H * W * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 37 + (i / 3) * 11);
    struct q7_image img = {.h = H, .w = W, .data = px};
    char path[512];
    q7_fuzz_write("tiny.jpg", "", 0, path, sizeof path);
    if (q7_image_save_jpeg(path, &img, 90, 0) != Q7_OK) {
        fprintf(stderr, "fuzz_exif: %s\n", q7_error_message());
        abort();
    }
    FILE * f = fopen(path, "rb");
    g_jpeg = malloc(1 << 16);
    if (!f || !g_jpeg)
        abort();
    g_jpeg_size = fread(g_jpeg, 1, 1 << 16, f);
    fclose(f);
    if (g_jpeg_size < 4 || g_jpeg_size == 1 << 16)
        abort();
}

Q7_FUZZ_ENTRY(exif)
{
    q7_fuzz_init();
    if (!g_jpeg)
        make_jpeg();
    size_t n = size < EXIF_MAX_PAYLOAD ? size : EXIF_MAX_PAYLOAD;
    size_t total = g_jpeg_size + 2 + 2 + 6 + n;
    uint8_t * buf = malloc(total);
    if (!buf)
        return 0;
    size_t seg = 2 + 6 + n;
    buf[0] = 0xFF;
    buf[1] = 0xD8; /* SOI */
    buf[2] = 0xFF;
    buf[3] = 0xE1; /* APP1 */
    buf[4] = (uint8_t)(seg >> 8);
    buf[5] = (uint8_t)seg;
    memcpy(buf + 6, "Exif\0\0", 6);
    memcpy(buf + 12, data, n);
    memcpy(buf + 12 + n, g_jpeg + 2, g_jpeg_size - 2); /* the JPEG after its SOI */
    q7_fuzz_image(buf, total, Q7_DECODER_STB);
    if (q7_decoder_available(Q7_DECODER_TURBO))
        q7_fuzz_image(buf, total, Q7_DECODER_TURBO);
    free(buf);
    return 0;
}
