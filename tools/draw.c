/* Drawing detections on RGB images: rectangles and labels in a built-in 3x5 pixel font. */
#include "tools/draw.h"

#include <ctype.h>
#include <string.h>

#define GLYPH_W 3
#define GLYPH_H 5
#define TEXT_SCALE 3

/* Rows top to bottom, 3 bits each (MSB = left): A-Z, 0-9. */
static const uint16_t g_letters[26] = {
    0x2BED, 0x6BAE, 0x3923, 0x6B6E, 0x79A7, 0x79A4, 0x396B, 0x5BED, 0x7497, 0x126A,
    0x5BAD, 0x4927, 0x5FED, 0x6B6D, 0x2B6A, 0x6BA4, 0x2B73, 0x6BAD, 0x388E, 0x7492,
    0x5B6F, 0x5B6A, 0x5BFD, 0x5AAD, 0x5A92, 0x72A7,
};
static const uint16_t g_digits[10] = {
    0x7B6F, 0x2C97, 0x62A7, 0x628E, 0x5BC9, 0x798E, 0x39EF, 0x7292, 0x7BEF, 0x7BCE,
};

static uint16_t glyph(char ch)
{
    if (isalpha((unsigned char)ch))
        return g_letters[toupper((unsigned char)ch) - 'A'];
    if (isdigit((unsigned char)ch))
        return g_digits[ch - '0'];
    if (ch == '.')
        return 0x0002;
    if (ch == '-' || ch == '_')
        return 0x01C0;
    return 0;
}

static void put(struct q7_image * img, int64_t x, int64_t y, const uint8_t rgb[3])
{
    if (x < 0 || y < 0 || x >= img->w || y >= img->h)
        return;
    memcpy(img->data + (y * img->w + x) * 3, rgb, 3);
}

void draw_rect(struct q7_image * img, int64_t x1, int64_t y1, int64_t x2, int64_t y2, int thick,
               const uint8_t rgb[3])
{
    for (int t = 0; t < thick; t++) {
        for (int64_t x = x1; x <= x2; x++) {
            put(img, x, y1 + t, rgb);
            put(img, x, y2 - t, rgb);
        }
        for (int64_t y = y1; y <= y2; y++) {
            put(img, x1 + t, y, rgb);
            put(img, x2 - t, y, rgb);
        }
    }
}

void draw_label(struct q7_image * img, int64_t x, int64_t y, const char * text,
                const uint8_t bg[3])
{
    static const uint8_t white[3] = {255, 255, 255};
    int64_t n = (int64_t)strlen(text);
    int64_t w = n * (GLYPH_W + 1) * TEXT_SCALE + TEXT_SCALE, h = (GLYPH_H + 2) * TEXT_SCALE;
    if (y - h < 0)
        y = h; /* keep the label inside the image */
    for (int64_t yy = y - h; yy < y; yy++)
        for (int64_t xx = x; xx < x + w; xx++)
            put(img, xx, yy, bg);
    for (int64_t i = 0; i < n; i++) {
        uint16_t gl = glyph(text[i]);
        for (int r = 0; r < GLYPH_H; r++)
            for (int c = 0; c < GLYPH_W; c++) {
                if (!(gl >> ((GLYPH_H - 1 - r) * GLYPH_W + (GLYPH_W - 1 - c)) & 1))
                    continue;
                for (int sy = 0; sy < TEXT_SCALE; sy++)
                    for (int sx = 0; sx < TEXT_SCALE; sx++)
                        put(img, x + TEXT_SCALE + (i * (GLYPH_W + 1) + c) * TEXT_SCALE + sx,
                            y - h + (r + 1) * TEXT_SCALE + sy, white);
            }
    }
}

void draw_color(int cls, uint8_t rgb[3])
{
    /* yolov7's Colors palette order, first entries (hex FF3838 FF9D97 FF701F FFB21D ...) */
    static const uint32_t palette[20] = {
        0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
        0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
        0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
    uint32_t c = palette[(cls < 0 ? 0 : cls) % 20];
    rgb[0] = (uint8_t)(c >> 16);
    rgb[1] = (uint8_t)(c >> 8);
    rgb[2] = (uint8_t)c;
}
