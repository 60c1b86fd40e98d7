/* Zip container reader for PyTorch checkpoints (PKWARE APPNOTE 6.3, the parts torch.save uses).
 *
 * Only the central directory is trusted for sizes: torch's writer sets bit 3 (data
 * descriptor) and leaves sizes and CRCs zero in the local headers. Every offset and size is
 * checked against the file size before it is used; the end-of-central-directory search is
 * bounded by the largest possible comment; entry counts are limited and must fit in the
 * directory's size; duplicate names are refused. Deflated entries are listed but only stored
 * entries can be read in place. */
#include "models/ckpt.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_EOCD_SIZE 22
#define ZIP_MAX_COMMENT 0xffff
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_LOCATOR_SIZE 20
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_EOCD_SIZE 56
#define ZIP_CDIR_SIG 0x02014b50u
#define ZIP_CDIR_SIZE 46
#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_LOCAL_SIZE 30
#define ZIP64_EXTRA_ID 0x0001
#define ZIP_FLAG_ENCRYPTED 0x0001
#define ZIP_METHOD_STORED 0
#define ZIP_METHOD_DEFLATE 8

/* Field offsets used below (APPNOTE 4.3.7, 4.3.12, 4.3.14-16):
 *   end record:      +4 disk, +6 cd disk, +8 entries here, +10 entries, +12 cd size,
 *                    +16 cd offset, +20 comment length
 *   zip64 locator:   +4 disk of zip64 record, +8 its offset, +16 number of disks
 *   zip64 end record: +16 disk, +20 cd disk, +24 entries here, +32 entries, +40 cd size,
 *                    +48 cd offset
 *   central header:  +8 flags, +10 method, +16 crc, +20 csize, +24 size, +28 name length,
 *                    +30 extra length, +32 comment length, +34 disk, +42 local header offset
 *   local header:    +26 name length, +28 extra length */
struct q7_zip {
    const uint8_t * data;
    size_t size;
    int count;
    struct q7_zip_entry * entries;
    uint16_t * flags;       /* general purpose flags per entry */
    char * names;           /* all names, NUL-terminated, back to back */
    int * index;            /* open-addressing hash of names: entry + 1, 0 = empty */
    size_t index_cap;
};

static uint16_t rd16(const uint8_t * p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t * p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t * p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* 1 when [off, off + len) lies inside the file. */
static int in_file(const struct q7_zip * z, uint64_t off, uint64_t len)
{
    return off <= z->size && len <= z->size - off;
}

static uint64_t name_hash(const char * s, size_t n)
{
    uint64_t x = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        x = (x ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    return x ^ (x >> 29);
}

/* ---- CRC-32 (IEEE 802.3, reflected, slice-by-8) ------------------------------------------ */

static uint32_t g_crc_table[8][256];
static pthread_once_t g_crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        g_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            g_crc_table[t][i] =
                (g_crc_table[t - 1][i] >> 8) ^ g_crc_table[0][g_crc_table[t - 1][i] & 0xff];
}

uint32_t q7_zip_crc32(uint32_t crc, const uint8_t * p, size_t n)
{
    pthread_once(&g_crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t a = rd32(p) ^ crc, b = rd32(p + 4);
        crc = g_crc_table[7][a & 0xff] ^ g_crc_table[6][(a >> 8) & 0xff] ^
              g_crc_table[5][(a >> 16) & 0xff] ^ g_crc_table[4][a >> 24] ^
              g_crc_table[3][b & 0xff] ^ g_crc_table[2][(b >> 8) & 0xff] ^
              g_crc_table[1][(b >> 16) & 0xff] ^ g_crc_table[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = g_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- directory ------------------------------------------------------------------------ */

struct zip_dir {
    uint64_t count, cdir_size, cdir_offset;
};

/* Finds the end records and the central directory's position, count and size. */
static enum q7_status zip_find_dir(const struct q7_zip * z, struct zip_dir * dir)
{
    if (z->size < ZIP_EOCD_SIZE)
        return q7_error_set(Q7_ERR_FORMAT, "zip: file of %zu bytes is too small to be a zip",
                            z->size);
    /* the end record sits in the last 22 + 65535 bytes (its comment is at most 65535) */
    size_t last = z->size - ZIP_EOCD_SIZE;
    size_t first = last > ZIP_MAX_COMMENT ? last - ZIP_MAX_COMMENT : 0;
    size_t eocd = SIZE_MAX;
    for (size_t p = last + 1; p-- > first;) {
        if (rd32(z->data + p) == ZIP_EOCD_SIG &&
            p + ZIP_EOCD_SIZE + rd16(z->data + p + 20) <= z->size) {
            eocd = p;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return q7_error_set(Q7_ERR_FORMAT, "zip: no end of central directory record "
                                           "(not a zip file, or truncated)");
    const uint8_t * e = z->data + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    dir->count = rd16(e + 10);
    dir->cdir_size = rd32(e + 12);
    dir->cdir_offset = rd32(e + 16);
    if (rd16(e + 8) != rd16(e + 10))
        return q7_error_set(Q7_ERR_FORMAT, "zip: end record counts disagree (%u vs %u)",
                            rd16(e + 8), rd16(e + 10));
    /* zip64: a locator right before the end record points at the zip64 end record */
    if (eocd >= ZIP64_LOCATOR_SIZE && rd32(e - ZIP64_LOCATOR_SIZE) == ZIP64_LOCATOR_SIG) {
        const uint8_t * loc = e - ZIP64_LOCATOR_SIZE;
        uint64_t off = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
        if (!in_file(z, off, ZIP64_EOCD_SIZE) || off + ZIP64_EOCD_SIZE > eocd)
            return q7_error_set(Q7_ERR_FORMAT, "zip: zip64 end record offset %" PRIu64
                                " lies outside the file", off);
        const uint8_t * r = z->data + off;
        if (rd32(r) != ZIP64_EOCD_SIG)
            return q7_error_set(Q7_ERR_FORMAT, "zip: bad zip64 end record signature at %" PRIu64,
                                off);
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
            return q7_error_set(Q7_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
        if (rd64(r + 24) != rd64(r + 32))
            return q7_error_set(Q7_ERR_FORMAT, "zip: zip64 end record counts disagree");
        dir->count = rd64(r + 32);
        dir->cdir_size = rd64(r + 40);
        dir->cdir_offset = rd64(r + 48);
    } else if (dir->count == 0xffff || dir->cdir_size == 0xffffffffu ||
               dir->cdir_offset == 0xffffffffu) {
        return q7_error_set(Q7_ERR_FORMAT, "zip: zip64 values without a zip64 end record");
    }
    if (!in_file(z, dir->cdir_offset, dir->cdir_size) || dir->cdir_offset + dir->cdir_size > eocd)
        return q7_error_set(Q7_ERR_FORMAT, "zip: central directory (offset %" PRIu64 ", %" PRIu64
                            " bytes) lies outside the file of %zu bytes",
                            dir->cdir_offset, dir->cdir_size, z->size);
    return Q7_OK;
}

/* Reads the zip64 extra field of a central header: replaces the values that are 0xffffffff. */
static enum q7_status zip64_extra(const uint8_t * x, size_t n, uint64_t * size, uint64_t * csize,
                                  uint64_t * offset, const char * name)
{
    while (n >= 4) {
        uint16_t id = rd16(x), len = rd16(x + 2);
        if ((size_t)len > n - 4)
            return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': extra field overruns", name);
        if (id == ZIP64_EXTRA_ID) {
            const uint8_t * p = x + 4;
            size_t left = len;
            uint64_t * fields[3] = {size, csize, offset};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xffffffffu)
                    continue;
                if (left < 8)
                    return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': zip64 extra field too short",
                                        name);
                *fields[i] = rd64(p);
                p += 8;
                left -= 8;
            }
            return Q7_OK;
        }
        x += 4 + len;
        n -= 4 + (size_t)len;
    }
    if (*size == 0xffffffffu || *csize == 0xffffffffu || *offset == 0xffffffffu)
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': zip64 sizes without a zip64 extra field",
                            name);
    return Q7_OK;
}

static enum q7_status zip_index_add(struct q7_zip * z, int i)
{
    const char * name = z->entries[i].name;
    size_t n = strlen(name), mask = z->index_cap - 1;
    size_t slot = (size_t)name_hash(name, n) & mask;
    while (z->index[slot]) {
        if (strcmp(z->entries[z->index[slot] - 1].name, name) == 0)
            return q7_error_set(Q7_ERR_FORMAT, "zip: duplicate entry '%s'", name);
        slot = (slot + 1) & mask;
    }
    z->index[slot] = i + 1;
    return Q7_OK;
}

/* Parses central header `i` at *pos, checks its local header, fills the entry. */
static enum q7_status zip_read_entry(struct q7_zip * z, const struct zip_dir * dir, int i,
                                     uint64_t * pos, char ** name_out)
{
    uint64_t end = dir->cdir_offset + dir->cdir_size;
    if (*pos + ZIP_CDIR_SIZE > end || rd32(z->data + *pos) != ZIP_CDIR_SIG)
        return q7_error_set(Q7_ERR_FORMAT, "zip: central header %d at %" PRIu64 " is malformed",
                            i, *pos);
    const uint8_t * h = z->data + *pos;
    uint16_t flags = rd16(h + 8), method = rd16(h + 10);
    size_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
    if (*pos + ZIP_CDIR_SIZE + nlen + xlen + clen > end)
        return q7_error_set(Q7_ERR_FORMAT, "zip: central header %d overruns the directory", i);
    if (rd16(h + 34) != 0)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    const char * nm = (const char *)h + ZIP_CDIR_SIZE;
    if (nlen == 0 || memchr(nm, '\0', nlen))
        return q7_error_set(Q7_ERR_FORMAT, "zip: central header %d has a bad name", i);
    char * name = *name_out;
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    *name_out = name + nlen + 1;
    uint64_t usize = rd32(h + 24), csize = rd32(h + 20), off = rd32(h + 42);
    enum q7_status st = zip64_extra(h + ZIP_CDIR_SIZE + nlen, xlen, &usize, &csize, &off, name);
    if (st)
        return st;
    /* the local header: signature and the same name; its sizes may be zero (bit 3) */
    if (!in_file(z, off, ZIP_LOCAL_SIZE) || rd32(z->data + off) != ZIP_LOCAL_SIG)
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': bad local header at offset %" PRIu64,
                            name, off);
    const uint8_t * l = z->data + off;
    size_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    uint64_t data_off = off + ZIP_LOCAL_SIZE + lnlen + lxlen;
    if (lnlen != nlen || !in_file(z, off + ZIP_LOCAL_SIZE, lnlen) ||
        memcmp(l + ZIP_LOCAL_SIZE, name, nlen) != 0)
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': local header names another file", name);
    if (!in_file(z, data_off, csize))
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': data (offset %" PRIu64 ", %" PRIu64
                            " bytes) lies outside the file of %zu bytes",
                            name, data_off, csize, z->size);
    if (method == ZIP_METHOD_STORED && usize != csize)
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': stored entry with size %" PRIu64
                            " != compressed size %" PRIu64, name, usize, csize);
    struct q7_zip_entry * e = &z->entries[i];
    e->name = name;
    e->offset = data_off;
    e->size = usize;
    e->csize = csize;
    e->crc32 = rd32(h + 16);
    e->method = method;
    z->flags[i] = flags;
    *pos += ZIP_CDIR_SIZE + nlen + xlen + clen;
    return zip_index_add(z, i);
}

enum q7_status q7_zip_open(const uint8_t * data, size_t size, int max_entries,
                           struct q7_zip ** out)
{
    *out = NULL;
    if (!data && size)
        return q7_error_set(Q7_ERR_ARG, "zip: NULL data");
    struct q7_zip * z = calloc(1, sizeof *z);
    if (!z)
        return q7_error_set(Q7_ERR_OOM, "zip: out of memory");
    z->data = data;
    z->size = size;
    struct zip_dir dir = {0};
    enum q7_status st = zip_find_dir(z, &dir);
    if (st)
        goto fail;
    /* each central header takes at least 46 bytes: a count that cannot fit is a lie */
    if (dir.count > (uint64_t)(max_entries > 0 ? max_entries : 0)) {
        st = q7_error_set(Q7_ERR_LIMIT, "zip: %" PRIu64 " entries, more than the %d allowed",
                          dir.count, max_entries);
        goto fail;
    }
    if (dir.count > dir.cdir_size / ZIP_CDIR_SIZE) {
        st = q7_error_set(Q7_ERR_FORMAT, "zip: %" PRIu64 " entries cannot fit in a central "
                          "directory of %" PRIu64 " bytes", dir.count, dir.cdir_size);
        goto fail;
    }
    z->count = (int)dir.count;
    z->index_cap = 16;
    while (z->index_cap < dir.count * 2)
        z->index_cap *= 2;
    z->entries = calloc(dir.count ? dir.count : 1, sizeof *z->entries);
    z->flags = calloc(dir.count ? dir.count : 1, sizeof *z->flags);
    z->index = calloc(z->index_cap, sizeof *z->index);
    /* names are at most the directory's size in total */
    z->names = malloc((size_t)dir.cdir_size + 1);
    if (!z->entries || !z->flags || !z->index || !z->names) {
        st = q7_error_set(Q7_ERR_OOM, "zip: out of memory for %d entries", z->count);
        goto fail;
    }
    uint64_t pos = dir.cdir_offset;
    char * names = z->names;
    for (int i = 0; i < z->count; i++) {
        st = zip_read_entry(z, &dir, i, &pos, &names);
        if (st)
            goto fail;
    }
    *out = z;
    return Q7_OK;
fail:
    q7_zip_free(z);
    return st;
}

void q7_zip_free(struct q7_zip * zip)
{
    if (!zip)
        return;
    free(zip->entries);
    free(zip->flags);
    free(zip->names);
    free(zip->index);
    free(zip);
}

int q7_zip_count(const struct q7_zip * zip)
{
    return zip ? zip->count : 0;
}

const struct q7_zip_entry * q7_zip_entry_at(const struct q7_zip * zip, int i)
{
    return zip && i >= 0 && i < zip->count ? &zip->entries[i] : NULL;
}

const struct q7_zip_entry * q7_zip_find(const struct q7_zip * zip, const char * name)
{
    if (!zip || !name || zip->count == 0)
        return NULL;
    size_t mask = zip->index_cap - 1;
    size_t slot = (size_t)name_hash(name, strlen(name)) & mask;
    while (zip->index[slot]) {
        const struct q7_zip_entry * e = &zip->entries[zip->index[slot] - 1];
        if (strcmp(e->name, name) == 0)
            return e;
        slot = (slot + 1) & mask;
    }
    return NULL;
}

enum q7_status q7_zip_data(const struct q7_zip * zip, const struct q7_zip_entry * e,
                           int verify_crc, const uint8_t ** out)
{
    *out = NULL;
    if (!zip || !e || e < zip->entries || e >= zip->entries + zip->count)
        return q7_error_set(Q7_ERR_ARG, "zip: entry does not belong to this archive");
    if (zip->flags[e - zip->entries] & ZIP_FLAG_ENCRYPTED)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "zip: '%s' is encrypted", e->name);
    if (e->method != ZIP_METHOD_STORED)
        return q7_error_set(Q7_ERR_UNSUPPORTED,
                            "zip: '%s' is compressed (method %d%s); only stored entries can be "
                            "read in place, as torch.save writes them", e->name, e->method,
                            e->method == ZIP_METHOD_DEFLATE ? ", deflate" : "");
    if (!in_file(zip, e->offset, e->size)) /* checked at open; kept as a guard */
        return q7_error_set(Q7_ERR_FORMAT, "zip: '%s' lies outside the file", e->name);
    const uint8_t * p = zip->data + e->offset;
    if (verify_crc) {
        uint32_t crc = q7_zip_crc32(0, p, (size_t)e->size);
        if (crc != e->crc32)
            return q7_error_set(Q7_ERR_FORMAT, "zip: '%s': CRC-32 mismatch (stored %08x, "
                                "computed %08x): the file is corrupt", e->name, e->crc32, crc);
    }
    *out = p;
    return Q7_OK;
}
