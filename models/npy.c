/* NumPy .npy reader and writer. */
#include "models/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 65536

struct npy_descr {
    const char * text;
    enum q7_dtype dtype;
};

static const struct npy_descr g_descrs[] = {
    {"<f4", Q7_DTYPE_F32}, {"<f8", Q7_DTYPE_F64}, {"<f2", Q7_DTYPE_F16},
    {"|u1", Q7_DTYPE_U8},  {"|i1", Q7_DTYPE_I8},  {"<i2", Q7_DTYPE_I16},
    {"<i4", Q7_DTYPE_I32}, {"<i8", Q7_DTYPE_I64}, {"|b1", Q7_DTYPE_BOOL},
};

int64_t q7_npy_numel(const struct q7_npy * a)
{
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    return n;
}

/* Finds the value text after 'key': in a Python dict literal. */
static const char * header_value(const char * hdr, const char * key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char * p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

static enum q7_status parse_header(const char * hdr, const char * what, struct q7_npy * out)
{
    const char * d = header_value(hdr, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy header has no 'descr'", what);
    char descr[16] = {0};
    size_t n = strcspn(d + 1, "'\"");
    if (n >= sizeof descr)
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy dtype descriptor too long", what);
    memcpy(descr, d + 1, n);
    if (descr[0] == '=' && descr[1])
        descr[0] = '<';
    int found = 0;
    for (size_t i = 0; i < sizeof g_descrs / sizeof g_descrs[0]; i++) {
        if (strcmp(descr, g_descrs[i].text) == 0 ||
            (descr[0] == '<' && g_descrs[i].text[0] == '|' &&
             strcmp(descr + 1, g_descrs[i].text + 1) == 0)) {
            out->dtype = g_descrs[i].dtype;
            found = 1;
        }
    }
    if (!found)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: npy dtype '%s' is not supported", what,
                            descr);
    const char * f = header_value(hdr, "fortran_order");
    if (!f)
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy header has no 'fortran_order'", what);
    if (strncmp(f, "True", 4) == 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: Fortran-order npy is not supported",
                            what);
    const char * s = header_value(hdr, "shape");
    if (!s || *s != '(')
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy header has no 'shape'", what);
    s++;
    /* a Python tuple of ints as numpy writes it: (), (3,), (3, 4) or (3, 4,) */
    out->ndim = 0;
    int commas = 0;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ')')
            break;
        if (*s < '0' || *s > '9')
            return q7_error_set(Q7_ERR_FORMAT, "%s: bad npy shape", what);
        if (out->ndim == Q7_MAX_DIMS)
            return q7_error_set(Q7_ERR_LIMIT, "%s: npy has more than %d dimensions", what,
                                Q7_MAX_DIMS);
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            if (v > ((int64_t)1 << 50))
                return q7_error_set(Q7_ERR_LIMIT, "%s: npy dimension too large", what);
            v = v * 10 + (*s++ - '0');
        }
        if (*s == 'L')
            s++;
        out->shape[out->ndim++] = v;
        while (*s == ' ')
            s++;
        if (*s == ',') {
            s++;
            commas++;
        } else if (*s != ')') {
            return q7_error_set(Q7_ERR_FORMAT, "%s: bad npy shape (dimensions must be separated "
                                               "by commas)", what);
        }
    }
    if (out->ndim == 1 && commas == 0) /* (3) is the integer 3 in Python, not a shape */
        return q7_error_set(Q7_ERR_FORMAT, "%s: bad npy shape (a 1-d shape is written (n,))",
                            what);
    return Q7_OK;
}

enum q7_status q7_npy_parse(const uint8_t * data, size_t size, const char * what,
                            struct q7_npy * out)
{
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(data, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return q7_error_set(Q7_ERR_FORMAT, "%s: not a .npy file (bad magic)", what);
    int major = data[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return q7_error_set(Q7_ERR_FORMAT, "%s: truncated npy header", what);
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
               (size_t)data[11] << 24;
        off = 12;
    } else {
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: npy version %d is not supported", what,
                            major);
    }
    if (hlen > NPY_MAX_HEADER || hlen > size - off)
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy header length %zu is beyond the file", what,
                            hlen);
    char * hdr = malloc(hlen + 1);
    if (!hdr)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", what);
    memcpy(hdr, data + off, hlen);
    hdr[hlen] = '\0';
    enum q7_status st = parse_header(hdr, what, out);
    free(hdr);
    if (st)
        return st;
    size_t numel = 1, bytes;
    /* every partial product must fit int64 (q7_npy_numel multiplies in int64; numpy, too,
     * refuses such shapes even when a later dimension is 0) */
    for (int i = 0; i < out->ndim; i++)
        if (!q7_size_mul(numel, (size_t)out->shape[i], &numel) || numel > (size_t)INT64_MAX)
            return q7_error_set(Q7_ERR_LIMIT, "%s: npy shape overflows", what);
    if (!q7_size_mul(numel, q7_dtype_size(out->dtype), &bytes))
        return q7_error_set(Q7_ERR_LIMIT, "%s: npy shape overflows", what);
    size_t avail = size - off - hlen;
    if (bytes > avail)
        return q7_error_set(Q7_ERR_FORMAT, "%s: npy data is %zu bytes, file holds %zu", what,
                            bytes, avail);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory for %zu bytes", what, bytes);
    memcpy(out->data, data + off + hlen, bytes);
    return Q7_OK;
}

enum q7_status q7_npy_load(const char * path, struct q7_npy * out)
{
    memset(out, 0, sizeof *out);
    struct q7_file_map map;
    enum q7_status st = q7_file_map_open(path, &map);
    if (st)
        return st;
    st = q7_npy_parse(map.data, map.size, path, out);
    q7_file_map_close(&map);
    return st;
}

void q7_npy_free(struct q7_npy * a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

enum q7_status q7_npy_save(const char * path, enum q7_dtype dtype, int ndim,
                           const int64_t * shape, const void * data)
{
    const char * descr = NULL;
    for (size_t i = 0; i < sizeof g_descrs / sizeof g_descrs[0]; i++)
        if (g_descrs[i].dtype == dtype)
            descr = g_descrs[i].text;
    if (!descr)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "%s: cannot write dtype %s to npy", path,
                            q7_dtype_name(dtype));
    char shape_txt[256];
    size_t pos = 0;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        pos += (size_t)snprintf(shape_txt + pos, sizeof shape_txt - pos, "%lld, ",
                                (long long)shape[i]);
        numel *= (size_t)shape[i];
    }
    if (ndim > 1)
        pos -= 2; /* (3, 4) rather than (3, 4, ) ; a 1-d shape keeps its comma: (3,) */
    else if (ndim == 1)
        pos -= 1;
    shape_txt[pos] = '\0';
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      descr, shape_txt);
    size_t total = NPY_MAGIC_LEN + 4 + (size_t)hl + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t header_len = padded - NPY_MAGIC_LEN - 4;
    size_t bytes = numel * q7_dtype_size(dtype);
    uint8_t * buf = malloc(padded + bytes);
    if (!buf)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(header_len & 0xff);
    buf[9] = (uint8_t)(header_len >> 8);
    memcpy(buf + 10, hdr, (size_t)hl);
    memset(buf + 10 + hl, ' ', padded - 10 - (size_t)hl);
    buf[padded - 1] = '\n';
    if (bytes)
        memcpy(buf + padded, data, bytes);
    enum q7_status st = q7_file_write_atomic(path, buf, padded + bytes);
    free(buf);
    return st;
}
