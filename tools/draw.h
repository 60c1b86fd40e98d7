/* Drawing detections on RGB images (q7 detect). */
#ifndef Q7_DRAW_H
#define Q7_DRAW_H

#include "eval/image.h"

void draw_rect(struct q7_image * img, int64_t x1, int64_t y1, int64_t x2, int64_t y2, int thick,
               const uint8_t rgb[3]);
/* A filled label box whose bottom-left corner is (x, y), text in white capitals. */
void draw_label(struct q7_image * img, int64_t x, int64_t y, const char * text,
                const uint8_t bg[3]);
void draw_color(int cls, uint8_t rgb[3]);

#endif
