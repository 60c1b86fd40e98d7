/* Image decoding to RGB uint8 as OpenCV's imread(IMREAD_COLOR) returns it (see image.h).
 *
 * Layout of this file: format sniffing, a bounded JPEG marker walker (size, components,
 * EXIF block, end-of-image check), the EXIF orientation parser, header probes, the two
 * decoders (TurboJPEG, stb_image) and the orientation transform. */
#include "eval/image.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#ifdef Q7_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

/* JPEG markers (ITU T.81, table B.1). */
enum {
    JPEG_SOI = 0xD8,
    JPEG_EOI = 0xD9,
    JPEG_SOS = 0xDA,
    JPEG_DHT = 0xC4,
    JPEG_DQT = 0xDB,
    JPEG_APP1 = 0xE1,
    JPEG_TEM = 0x01,
    JPEG_RST0 = 0xD0,
    JPEG_RST7 = 0xD7,
};

/* "Exif\0\0" opens the APP1 segment that holds the TIFF-structured EXIF block. */
static const uint8_t EXIF_MAGIC[6] = {'E', 'x', 'i', 'f', 0, 0};
static const uint8_t PNG_MAGIC[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
enum { EXIF_TAG_ORIENTATION = 0x0112, TIFF_TYPE_SHORT = 3, TIFF_TYPE_LONG = 4 };
enum { TIFF_HEADER_SIZE = 8, TIFF_ENTRY_SIZE = 12 };

const char * q7_image_format_name(enum q7_image_format format)
{
    switch (format) {
    case Q7_IMAGE_FORMAT_JPEG: return "jpeg";
    case Q7_IMAGE_FORMAT_PNG: return "png";
    case Q7_IMAGE_FORMAT_BMP: return "bmp";
    case Q7_IMAGE_FORMAT_GIF: return "gif";
    case Q7_IMAGE_FORMAT_TIFF: return "tiff";
    case Q7_IMAGE_FORMAT_WEBP: return "webp";
    case Q7_IMAGE_FORMAT_PNM: return "pnm";
    default: return "unknown";
    }
}

int q7_decoder_available(enum q7_decoder dec)
{
#ifdef Q7_HAVE_TURBOJPEG
    (void)dec;
    return 1;
#else
    return dec != Q7_DECODER_TURBO;
#endif
}

/* Whether JPEGs go through libjpeg-turbo for this choice in this build. */
static int use_turbo(enum q7_decoder dec)
{
#ifdef Q7_HAVE_TURBOJPEG
    return dec == Q7_DECODER_AUTO || dec == Q7_DECODER_TURBO;
#else
    (void)dec;
    return 0;
#endif
}

const char * q7_decoder_name(enum q7_decoder dec)
{
    return use_turbo(dec) ? "libjpeg-turbo" : "stb_image";
}

static enum q7_image_format sniff(const uint8_t * d, size_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == JPEG_SOI && d[2] == 0xFF)
        return Q7_IMAGE_FORMAT_JPEG;
    if (n >= sizeof PNG_MAGIC && memcmp(d, PNG_MAGIC, sizeof PNG_MAGIC) == 0)
        return Q7_IMAGE_FORMAT_PNG;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M')
        return Q7_IMAGE_FORMAT_BMP;
    if (n >= 4 && memcmp(d, "GIF8", 4) == 0)
        return Q7_IMAGE_FORMAT_GIF;
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return Q7_IMAGE_FORMAT_TIFF;
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return Q7_IMAGE_FORMAT_WEBP;
    if (n >= 3 && d[0] == 'P' && (d[1] == '5' || d[1] == '6') &&
        (d[2] == ' ' || d[2] == '\t' || d[2] == '\n' || d[2] == '\r'))
        return Q7_IMAGE_FORMAT_PNM;
    return Q7_IMAGE_FORMAT_UNKNOWN;
}

static uint32_t rd16be(const uint8_t * p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t rd32be(const uint8_t * p) { return (uint32_t)p[0] << 24 | rd16be(p + 1) << 8 | p[3]; }

/* ---- JPEG marker walk ------------------------------------------------------------------ */

struct jpeg_scan {
    int sof_found;
    int precision, ncomp, progressive;
    int64_t h, w;
    const uint8_t * exif; /* TIFF block after "Exif\0\0" in the first such APP1, or NULL */
    size_t exif_size;
    int has_scan; /* an SOS marker was seen */
    int complete; /* an EOI marker ends the stream */
    uint8_t huff_defined[2][4]; /* DHT seen so far: [0 DC / 1 AC][slot] */
    int huff_undefined; /* a scan decodes with a Huffman table no DHT defined before it */
    uint8_t comp_id[4], comp_tq[4]; /* the frame's first 4 components: id, quant table */
    uint8_t quant_defined[4];       /* DQT seen so far */
    int quant_undefined; /* a scan's component uses a quant table no DQT defined before it */
};

/* Marks the quantization tables a DQT segment defines; stops at the first malformed one. */
static void jpeg_dqt_mark(const uint8_t * seg, size_t n, uint8_t defined[4])
{
    size_t p = 0;
    while (p < n) {
        int pq = seg[p] >> 4, tq = seg[p] & 15;
        size_t size = 1 + (pq ? 128 : 64);
        if (pq > 1 || tq > 3 || size > n - p)
            return;
        defined[tq] = 1;
        p += size;
    }
}

/* 1 when the quantization table of every component in the scan of an SOS segment was
 * defined before it (libjpeg refuses the file otherwise; stb_image dequantizes with
 * uninitialized memory). Components the frame does not list are left to the decoders. */
static int jpeg_sos_quant_defined(const uint8_t * seg, size_t n, const struct jpeg_scan * s)
{
    if (n < 1)
        return 1;
    size_t ns = seg[0];
    for (size_t i = 0; i < ns && 1 + 2 * i < n; i++)
        for (int c = 0; c < 4 && c < s->ncomp; c++)
            if (s->comp_id[c] == seg[1 + 2 * i] &&
                (s->comp_tq[c] > 3 || !s->quant_defined[s->comp_tq[c]]))
                return 0;
    return 1;
}

/* Marks the Huffman tables a DHT segment defines; stops at the first malformed table (the
 * decoders reject those themselves). */
static void jpeg_dht_mark(const uint8_t * seg, size_t n, uint8_t defined[2][4])
{
    size_t p = 0;
    while (n - p >= 17) {
        int tc = seg[p] >> 4, th = seg[p] & 15;
        size_t count = 0;
        for (int i = 1; i <= 16; i++)
            count += seg[p + i];
        if (tc > 1 || th > 3 || count > 256 || count > n - p - 17)
            return;
        defined[tc][th] = 1;
        p += 17 + count;
    }
}

/* 1 when every Huffman table the scan of an SOS segment decodes with was defined: each
 * component's DC and AC tables in a sequential scan; in a progressive one the DC table for
 * a first DC scan, none for a DC refinement, the AC table for AC scans (as libjpeg). stb_image
 * decodes with whatever an undefined table's memory holds (uninitialized: wild reads), so such
 * files must not reach it; libjpeg-turbo substitutes the standard tables (motion JPEG). */
static int jpeg_sos_tables_defined(const uint8_t * seg, size_t n, int progressive,
                                   const uint8_t defined[2][4])
{
    if (n < 1)
        return 1;
    size_t ns = seg[0];
    if (n < 1 + 2 * ns + 3)
        return 1; /* malformed: the decoders reject it */
    int ss = seg[1 + 2 * ns], ah = seg[3 + 2 * ns] >> 4;
    int need_dc = !progressive || (ss == 0 && ah == 0);
    int need_ac = !progressive || ss > 0;
    for (size_t i = 0; i < ns; i++) {
        int td = seg[2 + 2 * i] >> 4, ta = seg[2 + 2 * i] & 15;
        if ((need_dc && (td > 3 || !defined[0][td])) || (need_ac && (ta > 3 || !defined[1][ta])))
            return 0;
    }
    return 1;
}

static int is_sof(int m)
{
    /* SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* Skips entropy-coded data starting at pos; returns the position of the 0xFF that starts
 * the next marker, or n when the data ends first. Stuffed 0xFF00 and RSTn are data. */
static size_t skip_entropy(const uint8_t * d, size_t n, size_t pos)
{
    while (pos < n) {
        const uint8_t * ff = memchr(d + pos, 0xFF, n - pos);
        if (!ff)
            return n;
        pos = (size_t)(ff - d);
        if (pos + 1 >= n)
            return n;
        uint8_t b = d[pos + 1];
        if (b == 0x00 || (b >= JPEG_RST0 && b <= JPEG_RST7))
            pos += 2;
        else if (b == 0xFF)
            pos += 1; /* fill byte before a marker */
        else
            return pos;
    }
    return n;
}

/* Walks the marker segments of a JPEG. With to_eoi == 0 it stops at the first SOS (all a
 * probe needs); with to_eoi == 1 it skips the scans and records whether an EOI ends the
 * stream. Every length is checked against the buffer; garbage between segments is skipped
 * as libjpeg does. */
static enum q7_status jpeg_walk(const uint8_t * d, size_t n, const char * name, int to_eoi,
                                struct jpeg_scan * s)
{
    memset(s, 0, sizeof *s);
    if (n < 4 || d[0] != 0xFF || d[1] != JPEG_SOI)
        return q7_error_set(Q7_ERR_FORMAT, "%s: not a JPEG (no SOI marker)", name);
    size_t pos = 2;
    for (;;) {
        while (pos < n && d[pos] != 0xFF)
            pos++;
        while (pos < n && d[pos] == 0xFF)
            pos++;
        if (pos >= n)
            break;
        int m = d[pos++];
        if (m == JPEG_EOI) {
            s->complete = 1;
            break;
        }
        if (m == 0x00 || m == JPEG_TEM || (m >= JPEG_RST0 && m <= JPEG_RST7))
            continue; /* no length field */
        if (n - pos < 2)
            break;
        size_t len = rd16be(d + pos);
        if (len < 2)
            return q7_error_set(Q7_ERR_FORMAT, "%s: JPEG segment 0x%02X has length %zu", name,
                                m, len);
        if (len > n - pos)
            break; /* segment cut off: truncated file */
        const uint8_t * seg = d + pos + 2;
        size_t seglen = len - 2;
        if (is_sof(m) && !s->sof_found) {
            if (seglen < 6)
                return q7_error_set(Q7_ERR_FORMAT, "%s: JPEG frame header too short", name);
            s->sof_found = 1;
            s->precision = seg[0];
            s->h = rd16be(seg + 1);
            s->w = rd16be(seg + 3);
            s->ncomp = seg[5];
            s->progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
            for (int c = 0; c < 4 && c < s->ncomp && 6 + 3 * (size_t)c + 2 < seglen; c++) {
                s->comp_id[c] = seg[6 + 3 * c];
                s->comp_tq[c] = seg[6 + 3 * c + 2];
            }
        } else if (m == JPEG_DQT) {
            jpeg_dqt_mark(seg, seglen, s->quant_defined);
        } else if (m == JPEG_DHT) {
            jpeg_dht_mark(seg, seglen, s->huff_defined);
        } else if (m == JPEG_APP1 && !s->exif && seglen >= sizeof EXIF_MAGIC &&
                   memcmp(seg, EXIF_MAGIC, sizeof EXIF_MAGIC) == 0) {
            s->exif = seg + sizeof EXIF_MAGIC;
            s->exif_size = seglen - sizeof EXIF_MAGIC;
        }
        pos += len;
        if (m == JPEG_SOS) {
            s->has_scan = 1;
            if (!jpeg_sos_tables_defined(seg, seglen, s->progressive, s->huff_defined))
                s->huff_undefined = 1;
            if (!jpeg_sos_quant_defined(seg, seglen, s))
                s->quant_undefined = 1;
            if (!to_eoi)
                break;
            pos = skip_entropy(d, n, pos);
        }
    }
    if (!s->sof_found)
        return q7_error_set(Q7_ERR_FORMAT, "%s: JPEG has no frame header (SOF) before its data",
                            name);
    if (s->h <= 0 || s->w <= 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: JPEG frame size %lldx%lld (height from a "
                            "DNL marker is not supported)", name, (long long)s->w,
                            (long long)s->h);
    return Q7_OK;
}

/* ---- EXIF ------------------------------------------------------------------------------ */

/* The orientation tag of IFD0 in a TIFF-structured EXIF block, 1 when absent or invalid.
 * Only reads inside [t, t + n). Like OpenCV, a SHORT value is read from the entry itself;
 * LONG is accepted too (PIL does); other types are ignored. */
static int exif_orientation(const uint8_t * t, size_t n)
{
    if (!t || n < TIFF_HEADER_SIZE)
        return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 1;
#define RD16(p) (le ? (uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 : rd16be(p))
#define RD32(p) (le ? RD16(p) | RD16((p) + 2) << 16 : rd32be(p))
    if (RD16(t + 2) != 42)
        return 1;
    uint32_t ifd = RD32(t + 4);
    if (ifd < TIFF_HEADER_SIZE || ifd > n || n - ifd < 2)
        return 1;
    size_t count = RD16(t + ifd);
    size_t room = (n - ifd - 2) / TIFF_ENTRY_SIZE;
    if (count > room)
        count = room; /* a lying count: look only at the entries that are there */
    for (size_t i = 0; i < count; i++) {
        const uint8_t * e = t + ifd + 2 + i * TIFF_ENTRY_SIZE;
        if (RD16(e) != EXIF_TAG_ORIENTATION)
            continue;
        uint32_t type = RD16(e + 2), cnt = RD32(e + 4), v;
        if (cnt < 1)
            return 1;
        if (type == TIFF_TYPE_SHORT)
            v = RD16(e + 8);
        else if (type == TIFF_TYPE_LONG)
            v = RD32(e + 8);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
#undef RD16
#undef RD32
    return 1;
}

/* ---- probes ---------------------------------------------------------------------------- */

enum { PNG_IHDR_END = 8 + 8 + 13 };

static enum q7_status png_header(const uint8_t * d, size_t n, const char * name,
                                 struct q7_image_info * info)
{
    static const int channels_of_color_type[7] = {1, 0, 3, 3, 2, 0, 4};
    if (n < PNG_IHDR_END || memcmp(d + 12, "IHDR", 4) != 0 || rd32be(d + 8) < 13)
        return q7_error_set(Q7_ERR_FORMAT, "%s: PNG without a valid IHDR chunk", name);
    info->w = rd32be(d + 16);
    info->h = rd32be(d + 20);
    int color = d[25];
    if (color > 6 || channels_of_color_type[color] == 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: PNG colour type %d is invalid", name, color);
    info->channels = channels_of_color_type[color];
    if (info->w <= 0 || info->h <= 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: PNG size %lldx%lld", name, (long long)info->w,
                            (long long)info->h);
    return Q7_OK;
}

/* Walks the PNG chunks: every length must fit in what is left of the file. stb_image grows
 * its IDAT buffer to a chunk's declared length before reading it, so a lying length in a
 * few bytes would otherwise ask for gigabytes. */
static enum q7_status png_check_chunks(const uint8_t * d, size_t n, const char * name)
{
    size_t pos = sizeof PNG_MAGIC;
    while (pos < n) {
        if (n - pos < 12)
            return q7_error_set(Q7_ERR_FORMAT, "%s: truncated PNG (a chunk header is cut off)",
                                name);
        uint32_t len = rd32be(d + pos);
        if (len > n - pos - 12)
            return q7_error_set(Q7_ERR_FORMAT, "%s: truncated PNG (the chunk at byte %zu "
                                "claims %u bytes, %zu are left)", name, pos, len, n - pos - 12);
        if (memcmp(d + pos + 4, "IEND", 4) == 0)
            return Q7_OK;
        pos += 12 + (size_t)len;
    }
    return q7_error_set(Q7_ERR_FORMAT, "%s: truncated PNG (no IEND chunk)", name);
}

enum q7_status q7_image_probe_memory(const uint8_t * data, size_t size, const char * name,
                                     struct q7_image_info * info)
{
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    if (!name || (!data && size))
        return q7_error_set(Q7_ERR_ARG, "q7_image_probe_memory: NULL argument");
    if (size == 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: empty file", name);
    info->format = sniff(data, size);
    switch (info->format) {
    case Q7_IMAGE_FORMAT_JPEG: {
        struct jpeg_scan s;
        enum q7_status st = jpeg_walk(data, size, name, 0, &s);
        if (st != Q7_OK)
            return st;
        info->h = s.h;
        info->w = s.w;
        info->channels = s.ncomp;
        info->progressive = s.progressive;
        info->orientation = exif_orientation(s.exif, s.exif_size);
        return Q7_OK;
    }
    case Q7_IMAGE_FORMAT_PNG:
        return png_header(data, size, name, info);
    case Q7_IMAGE_FORMAT_TIFF:
    case Q7_IMAGE_FORMAT_WEBP:
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: %s images are not supported (use JPEG, "
                            "PNG or BMP)", name, q7_image_format_name(info->format));
    case Q7_IMAGE_FORMAT_UNKNOWN:
        return q7_error_set(Q7_ERR_FORMAT, "%s: not an image q7 reads (JPEG, PNG, BMP, GIF, "
                            "PGM/PPM)", name);
    default:
        break;
    }
    if (size > INT_MAX)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %zu bytes is too large for stb_image", name, size);
    int w, h, comp;
    if (!stbi_info_from_memory(data, (int)size, &w, &h, &comp))
        return q7_error_set(Q7_ERR_FORMAT, "%s: not an image q7 can read (stb_image: %s)", name,
                            stbi_failure_reason());
    if (w <= 0 || h <= 0) /* stb_image accepts a PNM header with no size ("P6") */
        return q7_error_set(Q7_ERR_FORMAT, "%s: image size %dx%d", name, w, h);
    info->h = h;
    info->w = w;
    info->channels = comp;
    return Q7_OK;
}

enum q7_status q7_image_probe_info(const char * path, struct q7_image_info * info)
{
    struct q7_file_map map;
    enum q7_status st = q7_file_map_open(path, &map);
    if (st != Q7_OK) {
        memset(info, 0, sizeof *info);
        return st;
    }
    st = q7_image_probe_memory(map.data, map.size, path, info);
    q7_file_map_close(&map);
    return st;
}

void q7_image_info_oriented_hw(const struct q7_image_info * info, int64_t * h, int64_t * w)
{
    int swap = info->orientation >= 5 && info->orientation <= 8;
    *h = swap ? info->w : info->h;
    *w = swap ? info->h : info->w;
}

enum q7_status q7_image_probe(const char * path, int64_t * h, int64_t * w)
{
    struct q7_image_info info;
    enum q7_status st = q7_image_probe_info(path, &info);
    if (st != Q7_OK)
        return st;
    q7_image_info_oriented_hw(&info, h, w);
    return Q7_OK;
}

/* ---- orientation ----------------------------------------------------------------------- */

void q7_image_orient(const uint8_t * src, int64_t h, int64_t w, int cn, int orientation,
                     uint8_t * dst)
{
    if (orientation < 2 || orientation > 8) {
        memcpy(dst, src, (size_t)(h * w * cn));
        return;
    }
    int transpose = orientation >= 5;
    int64_t oh = transpose ? w : h, ow = transpose ? h : w;
    /* After the transpose (if any), flip x for 2, 3, 6, 7 and flip y for 3, 4, 7, 8. */
    int flip_x = orientation == 2 || orientation == 3 || orientation == 6 || orientation == 7;
    int flip_y = orientation == 3 || orientation == 4 || orientation == 7 || orientation == 8;
    for (int64_t y = 0; y < oh; y++) {
        int64_t ty = flip_y ? oh - 1 - y : y; /* row in the (transposed) image */
        uint8_t * out = dst + (size_t)(y * ow * cn);
        for (int64_t x = 0; x < ow; x++) {
            int64_t tx = flip_x ? ow - 1 - x : x;
            int64_t sy = transpose ? tx : ty, sx = transpose ? ty : tx;
            const uint8_t * in = src + (size_t)((sy * w + sx) * cn);
            for (int c = 0; c < cn; c++)
                out[x * cn + c] = in[c];
        }
    }
}

/* ---- decoders -------------------------------------------------------------------------- */

#ifdef Q7_HAVE_TURBOJPEG
/* OpenCV's icvCvt_CMYK2BGR_8u_C4C3R, written to RGB. */
static void cmyk_to_rgb(const uint8_t * cmyk, size_t npix, uint8_t * rgb)
{
    for (size_t i = 0; i < npix; i++, cmyk += 4, rgb += 3) {
        int c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
        rgb[0] = (uint8_t)(k - ((255 - c) * k >> 8));
        rgb[1] = (uint8_t)(k - ((255 - m) * k >> 8));
        rgb[2] = (uint8_t)(k - ((255 - y) * k >> 8));
    }
}

/* TurboJPEG with default flags (ISLOW IDCT, fancy upsampling), as OpenCV's libjpeg reads.
 * libjpeg warnings (extraneous bytes, ...) keep the image, as OpenCV does. */
static enum q7_status decode_turbo(const uint8_t * d, size_t n, const char * name, int64_t h,
                                   int64_t w, uint8_t ** out)
{
    enum q7_status st = Q7_OK;
    uint8_t * cmyk = NULL, * rgb = NULL;
    *out = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return q7_error_set(Q7_ERR_OOM, "%s: cannot create a TurboJPEG decompressor", name);
    int tw, th, subsamp, colorspace;
    if (tjDecompressHeader3(tj, d, (unsigned long)n, &tw, &th, &subsamp, &colorspace) != 0) {
        st = q7_error_set(Q7_ERR_FORMAT, "%s: libjpeg-turbo: %s", name, tjGetErrorStr2(tj));
        goto out_destroy;
    }
    if (tw != w || th != h) {
        st = q7_error_set(Q7_ERR_FORMAT, "%s: libjpeg-turbo reads %dx%d, the header said "
                          "%lldx%lld", name, tw, th, (long long)w, (long long)h);
        goto out_destroy;
    }
    int is_cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    rgb = malloc((size_t)(h * w) * 3);
    if (!rgb) {
        st = q7_error_set(Q7_ERR_OOM, "%s: out of memory for a %lldx%lld image", name,
                          (long long)w, (long long)h);
        goto out_destroy;
    }
    uint8_t * target = rgb;
    if (is_cmyk) {
        cmyk = malloc((size_t)(h * w) * 4);
        if (!cmyk) {
            st = q7_error_set(Q7_ERR_OOM, "%s: out of memory for the CMYK buffer", name);
            goto out_destroy;
        }
        target = cmyk;
    }
    if (tjDecompress2(tj, d, (unsigned long)n, target, tw, 0, th, is_cmyk ? TJPF_CMYK : TJPF_RGB,
                      0) != 0) {
        if (tjGetErrorCode(tj) != TJERR_WARNING) {
            st = q7_error_set(Q7_ERR_FORMAT, "%s: libjpeg-turbo: %s", name, tjGetErrorStr2(tj));
            goto out_free;
        }
        q7_log(Q7_LOG_DEBUG, "%s: libjpeg-turbo warning: %s", name, tjGetErrorStr2(tj));
    }
    if (is_cmyk)
        cmyk_to_rgb(cmyk, (size_t)(h * w), rgb);
out_free:
    free(cmyk);
out_destroy:
    tjDestroy(tj);
    if (st == Q7_OK)
        *out = rgb;
    else
        free(rgb);
    return st;
}
#endif

/* stb_image, 3 components requested: grey replicated, alpha dropped, 16-bit -> high byte.
 * Returns stb's malloc'ed buffer (stb uses the C library's malloc/free). */
static enum q7_status decode_stb(const uint8_t * d, size_t n, const char * name, int64_t h,
                                 int64_t w, uint8_t ** rgb)
{
    *rgb = NULL;
    if (n > INT_MAX)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %zu bytes is too large for stb_image", name, n);
    int sw, sh, comp;
    uint8_t * p = stbi_load_from_memory(d, (int)n, &sw, &sh, &comp, 3);
    if (!p)
        return q7_error_set(Q7_ERR_FORMAT, "%s: stb_image cannot decode it: %s", name,
                            stbi_failure_reason());
    if (sw != w || sh != h) {
        stbi_image_free(p);
        return q7_error_set(Q7_ERR_FORMAT, "%s: stb_image reads %dx%d, the header said "
                            "%lldx%lld", name, sw, sh, (long long)w, (long long)h);
    }
    *rgb = p;
    return Q7_OK;
}

void q7_image_free(struct q7_image * img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

enum q7_status q7_image_decode_memory(const uint8_t * data, size_t size, const char * name,
                                      enum q7_decoder dec, int64_t max_pixels,
                                      struct q7_image * out)
{
    memset(out, 0, sizeof *out);
    if (!name || (!data && size))
        return q7_error_set(Q7_ERR_ARG, "q7_image_decode_memory: NULL argument");
    if (!q7_decoder_available(dec))
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: this build has no libjpeg-turbo decoder",
                            name);
    if (max_pixels <= 0)
        max_pixels = Q7_IMAGE_MAX_PIXELS_DEFAULT;

    struct q7_image_info info;
    enum q7_status st = q7_image_probe_memory(data, size, name, &info);
    if (st != Q7_OK)
        return st;
    if (info.h > max_pixels / info.w)
        return q7_error_set(Q7_ERR_LIMIT, "%s: %lldx%lld image has more than %lld pixels, "
                            "refused before decoding", name, (long long)info.w,
                            (long long)info.h, (long long)max_pixels);
    size_t npix, nbytes;
    if (!q7_size_mul((size_t)info.h, (size_t)info.w, &npix) || !q7_size_mul(npix, 3, &nbytes))
        return q7_error_set(Q7_ERR_LIMIT, "%s: image size overflows", name);

    uint8_t * pix = NULL;
    int orientation = 1;
    if (info.format == Q7_IMAGE_FORMAT_JPEG) {
        struct jpeg_scan s;
        st = jpeg_walk(data, size, name, 1, &s);
        if (st != Q7_OK)
            return st;
        if (!s.has_scan)
            return q7_error_set(Q7_ERR_FORMAT, "%s: JPEG without image data (no SOS marker)",
                                name);
        if (!s.complete)
            return q7_error_set(Q7_ERR_FORMAT, "%s: truncated JPEG (the data ends before the "
                                "end-of-image marker)", name);
        orientation = info.orientation;
        if (s.quant_undefined)
            return q7_error_set(Q7_ERR_FORMAT, "%s: a JPEG scan uses a quantization table that "
                                "no DQT segment defines", name);
        if (s.huff_undefined && !use_turbo(dec))
            return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: a JPEG scan uses a Huffman table that "
                                "no DHT segment defines (motion-JPEG style); stb_image cannot "
                                "decode that safely, libjpeg-turbo can", name);
#ifdef Q7_HAVE_TURBOJPEG
        if (use_turbo(dec)) {
            st = decode_turbo(data, size, name, info.h, info.w, &pix);
            if (st != Q7_OK)
                return st;
        }
#endif
    }
    if (info.format == Q7_IMAGE_FORMAT_PNG && (st = png_check_chunks(data, size, name)) != Q7_OK)
        return st;
    if (!pix) {
        st = decode_stb(data, size, name, info.h, info.w, &pix);
        if (st != Q7_OK)
            return st;
    }

    out->h = info.h;
    out->w = info.w;
    out->data = pix;
    if (orientation != 1) {
        uint8_t * rot = malloc(nbytes);
        if (!rot) {
            q7_image_free(out);
            return q7_error_set(Q7_ERR_OOM, "%s: out of memory for %zu bytes", name, nbytes);
        }
        q7_image_orient(pix, info.h, info.w, 3, orientation, rot);
        free(pix);
        out->data = rot;
        q7_image_info_oriented_hw(&info, &out->h, &out->w);
    }
    return Q7_OK;
}

enum q7_status q7_image_load(const char * path, enum q7_decoder dec, int64_t max_pixels,
                             struct q7_image * out)
{
    memset(out, 0, sizeof *out);
    if (!path)
        return q7_error_set(Q7_ERR_ARG, "q7_image_load: NULL path");
    struct q7_file_map map;
    enum q7_status st = q7_file_map_open(path, &map);
    if (st != Q7_OK)
        return st;
    st = q7_image_decode_memory(map.data, map.size, path, dec, max_pixels, out);
    q7_file_map_close(&map);
    return st;
}

/* ---- encoders ---------------------------------------------------------------------------- */

struct membuf {
    uint8_t * p;
    size_t n, cap;
    int oom;
};

static void membuf_put(void * ctx, void * data, int size)
{
    struct membuf * b = ctx;
    if (b->oom || size <= 0)
        return;
    if (b->n + (size_t)size > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + (size_t)size)
            cap *= 2;
        uint8_t * q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

static enum q7_status check_save_args(const char * path, const struct q7_image * img)
{
    if (!path || !img || !img->data || img->h < 1 || img->w < 1 || img->h > INT_MAX / 3 ||
        img->w > INT_MAX / 3 || img->h * img->w > INT_MAX / 3)
        return q7_error_set(Q7_ERR_ARG, "%s: cannot save this image", path ? path : "(null)");
    return Q7_OK;
}

static enum q7_status save_membuf(const char * path, struct membuf * b, int ok)
{
    enum q7_status st;
    if (b->oom || !ok || !b->n)
        st = q7_error_set(b->oom ? Q7_ERR_OOM : Q7_ERR_IO, "%s: stb_image_write failed", path);
    else
        st = q7_file_write_atomic(path, b->p, b->n);
    free(b->p);
    return st;
}

enum q7_status q7_image_save_jpeg(const char * path, const struct q7_image * img, int quality,
                                  int flags)
{
    enum q7_status st = check_save_args(path, img);
    if (st != Q7_OK)
        return st;
    if (quality < 1 || quality > 100)
        return q7_error_set(Q7_ERR_ARG, "%s: JPEG quality %d is not in 1..100", path, quality);
#ifdef Q7_HAVE_TURBOJPEG
    tjhandle tj = tjInitCompress();
    if (!tj)
        return q7_error_set(Q7_ERR_OOM, "%s: cannot create a TurboJPEG compressor", path);
    unsigned char * jpeg = NULL;
    unsigned long size = 0;
    int subsamp = (flags & Q7_IMAGE_SAVE_GRAY) ? TJSAMP_GRAY : TJSAMP_420;
    int tjflags = (flags & Q7_IMAGE_SAVE_PROGRESSIVE) ? TJFLAG_PROGRESSIVE : 0;
    if (tjCompress2(tj, img->data, (int)img->w, 0, (int)img->h, TJPF_RGB, &jpeg, &size, subsamp,
                    quality, tjflags) != 0)
        st = q7_error_set(Q7_ERR_FORMAT, "%s: libjpeg-turbo: %s", path, tjGetErrorStr2(tj));
    else
        st = q7_file_write_atomic(path, jpeg, size);
    tjFree(jpeg);
    tjDestroy(tj);
    return st;
#else
    if (flags & (Q7_IMAGE_SAVE_GRAY | Q7_IMAGE_SAVE_PROGRESSIVE))
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: grey or progressive JPEG output needs "
                            "libjpeg-turbo", path);
    struct membuf b = {0};
    int ok = stbi_write_jpg_to_func(membuf_put, &b, (int)img->w, (int)img->h, 3, img->data,
                                    quality);
    return save_membuf(path, &b, ok);
#endif
}

enum q7_status q7_image_save_png(const char * path, const struct q7_image * img)
{
    enum q7_status st = check_save_args(path, img);
    if (st != Q7_OK)
        return st;
    struct membuf b = {0};
    int ok = stbi_write_png_to_func(membuf_put, &b, (int)img->w, (int)img->h, 3, img->data,
                                    (int)img->w * 3);
    return save_membuf(path, &b, ok);
}
