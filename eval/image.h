/* Image decoding: any photo q7 evaluates on becomes RGB uint8, HWC, 3 channels, exactly as
 * OpenCV's cv::imread(path, IMREAD_COLOR) would return it (channels swapped to RGB).
 * Formats: JPEG, PNG, BMP, GIF (first frame), binary PGM/PPM, recognised by their magic
 * bytes, not by the file name; anything else is refused (stb_image's looser readers, TGA
 * above all, would take random bytes for an image).
 *
 * What "as OpenCV" means here:
 *  - JPEG through libjpeg-turbo's TurboJPEG API (RGB, default flags: ISLOW IDCT, fancy
 *    upsampling) is bit-exact with OpenCV's libjpeg(-turbo) build. stb_image is close but
 *    not exact (its IDCT and colour conversion round differently).
 *  - Grey images are expanded to three equal channels; PNG alpha is dropped (not blended);
 *    16-bit PNG samples keep their high byte (libpng's png_set_strip_16, as OpenCV does);
 *    CMYK/YCCK JPEGs are converted with OpenCV's integer CMYK->RGB formula.
 *  - The EXIF orientation (1..8) of a JPEG is applied to the pixels (flips / transposes as
 *    OpenCV's ExifTransform). Other formats are returned as stored.
 *  - Differences kept on purpose: a JPEG without an end-of-image marker (truncated file) is
 *    refused, where OpenCV would return the partial image padded with grey (other libjpeg
 *    warnings, such as extraneous bytes, keep the image as OpenCV does); TIFF and WebP are
 *    not decoded (Q7_ERR_UNSUPPORTED).
 *  - Not checked against OpenCV (stb_image's readers): CMYK JPEGs through stb, 16-bit
 *    (565/555) BMPs, PGM/PPM with a maximum value other than 255, GIF.
 *
 * Every entry point checks the header's size against a pixel limit before anything the size
 * of the image is allocated, and parses the EXIF block defensively (offsets and counts are
 * checked against the segment; a lying EXIF block is ignored, never read out of bounds). */
#ifndef Q7_IMAGE_H
#define Q7_IMAGE_H

#include "graph/base.h"

#ifdef __cplusplus
extern "C" {
#endif

enum q7_decoder {
    Q7_DECODER_AUTO = 0, /* libjpeg-turbo for JPEGs when built in, else stb_image */
    Q7_DECODER_TURBO,    /* libjpeg-turbo for JPEGs (bit-exact with OpenCV); stb for others */
    Q7_DECODER_STB,      /* stb_image for every format (always built; JPEG not bit-exact) */
};

enum q7_image_format {
    Q7_IMAGE_FORMAT_UNKNOWN = 0,
    Q7_IMAGE_FORMAT_JPEG,
    Q7_IMAGE_FORMAT_PNG,
    Q7_IMAGE_FORMAT_BMP,
    Q7_IMAGE_FORMAT_GIF,
    Q7_IMAGE_FORMAT_PNM,  /* binary PGM / PPM (P5, P6) */
    Q7_IMAGE_FORMAT_TIFF, /* recognised, not decoded */
    Q7_IMAGE_FORMAT_WEBP, /* recognised, not decoded */
};

/* Refuse images whose header claims more pixels than this unless told otherwise. */
#define Q7_IMAGE_MAX_PIXELS_DEFAULT ((int64_t)1 << 28)

/* A decoded image. data is malloc'ed (h * w * 3 bytes, RGB, row-major), freed by
 * q7_image_free. h and w are after the EXIF orientation was applied. */
struct q7_image {
    int64_t h, w;
    uint8_t * data;
};

/* What the header says, without decoding pixels. */
struct q7_image_info {
    enum q7_image_format format;
    int64_t h, w;    /* as stored in the file, before orientation */
    int orientation; /* EXIF orientation 1..8 (1 when absent, invalid or not a JPEG) */
    int channels;    /* components in the file (1 grey, 3 colour, 4 CMYK or with alpha) */
    int progressive; /* JPEG: progressive (SOF2) */
};

/* Rows and columns after orientation, as OpenCV's imread returns them: orientations 5..8
 * transpose the image. */
void q7_image_info_oriented_hw(const struct q7_image_info * info, int64_t * h, int64_t * w);

/* Size of the image at `path` after EXIF orientation (as q7_image_load would return it),
 * reading only the headers. Q7_ERR_IO / Q7_ERR_FORMAT / Q7_ERR_UNSUPPORTED with a message
 * naming the file. */
enum q7_status q7_image_probe(const char * path, int64_t * h, int64_t * w);
/* The same with everything the header says. */
enum q7_status q7_image_probe_info(const char * path, struct q7_image_info * info);
/* Probes bytes in memory; `name` names them in messages. */
enum q7_status q7_image_probe_memory(const uint8_t * data, size_t size, const char * name,
                                     struct q7_image_info * info);

/* Decodes `path` to RGB (see the top of this file). max_pixels <= 0 means
 * Q7_IMAGE_MAX_PIXELS_DEFAULT; a larger header gives Q7_ERR_LIMIT before decoding. Asking
 * for Q7_DECODER_TURBO in a build without libjpeg-turbo gives Q7_ERR_UNSUPPORTED. On error
 * *out is zeroed and the message names the file and what is wrong. */
enum q7_status q7_image_load(const char * path, enum q7_decoder dec, int64_t max_pixels,
                             struct q7_image * out);
/* Decodes bytes in memory (tests, fuzzing); `name` names them in messages. */
enum q7_status q7_image_decode_memory(const uint8_t * data, size_t size, const char * name,
                                      enum q7_decoder dec, int64_t max_pixels,
                                      struct q7_image * out);
/* Frees the pixels and zeroes the struct. Accepts NULL and a zeroed struct. */
void q7_image_free(struct q7_image * img);

/* Applies EXIF orientation `orientation` (1..8; anything else copies) to an h x w image with
 * cn interleaved channels, writing `dst` (h*w*cn bytes, must not alias src). The output is
 * w x h for orientations 5..8 and h x w otherwise. Same operations as OpenCV's
 * ExifTransform: 2 flip x, 3 flip both, 4 flip y, 5 transpose, 6 transpose + flip x (rotate
 * 90 clockwise), 7 transpose + flip both, 8 transpose + flip y (rotate 90 anticlockwise). */
void q7_image_orient(const uint8_t * src, int64_t h, int64_t w, int cn, int orientation,
                     uint8_t * dst);

/* Flags of q7_image_save_jpeg. */
enum {
    Q7_IMAGE_SAVE_GRAY = 1 << 0,        /* store one luma component */
    Q7_IMAGE_SAVE_PROGRESSIVE = 1 << 1, /* progressive (SOF2) instead of baseline */
};

/* Writes img (RGB) as a JPEG of quality 1..100, 4:2:0 colour or grey, atomically. Uses
 * libjpeg-turbo when built in, else stb_image_write, which has no grey or progressive
 * output (those flags then give Q7_ERR_UNSUPPORTED). */
enum q7_status q7_image_save_jpeg(const char * path, const struct q7_image * img, int quality,
                                  int flags);
/* Writes img (RGB) as an 8-bit PNG, atomically (stb_image_write). */
enum q7_status q7_image_save_png(const char * path, const struct q7_image * img);

/* "libjpeg-turbo" or "stb_image": the decoder `dec` uses for JPEGs in this build. */
const char * q7_decoder_name(enum q7_decoder dec);
/* 1 when `dec` can be used in this build (TURBO needs libjpeg-turbo), else 0. */
int q7_decoder_available(enum q7_decoder dec);
/* "jpeg", "png", ... for messages. */
const char * q7_image_format_name(enum q7_image_format format);

#ifdef __cplusplus
}
#endif
#endif
