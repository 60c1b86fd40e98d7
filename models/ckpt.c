/* PyTorch checkpoint loading: the zip format of torch >= 1.6 (what yolov7's train.py writes)
 * and the legacy pickle-stream format of older releases.
 *
 * Zip: `<prefix>/data.pkl` is the pickle, `<prefix>/data/<key>` the raw little-endian bytes of
 * storage <key>; the prefix is the archive's top folder (the file stem for torch.save, or
 * "archive"). Storages are used in place in the mapped file, which lives as long as the
 * checkpoint; every entry read is CRC-checked.
 *
 * Legacy: pickles of the magic number, the protocol version (1001) and sys_info, then the
 * object pickle, then the list of storage keys, then for each key an int64 element count and
 * the raw bytes. */
#include "models/ckpt_impl.h"
#include "models/pyobj_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_MAX_KEY 64                    /* storage keys are short ("0", "1234") */
#define CKPT_MAX_PREFIX 512
#define LEGACY_PROTOCOL_VERSION 1001
#define TAR_MAGIC_OFFSET 257

struct q7_ckpt {
    struct q7_file_map map;
    struct q7_pyheap * heap;
    struct q7_py * root;
};

struct q7_ckpt_limits q7_ckpt_limits_default(void)
{
    struct q7_ckpt_limits l = {
        .max_pickle_bytes = (size_t)1 << 30,
        .max_objects = (size_t)1 << 22,  /* ~0.7 GiB of objects at most; yolov7.pt has ~0.1M */
        .max_memo = (size_t)1 << 22,
        .max_stack = (size_t)1 << 16,    /* torch pickles batch containers by 1000 */
        .max_container_len = (size_t)1 << 22,
        .max_zip_entries = 1 << 20,
    };
    return l;
}

struct q7_py * q7_ckpt_root(const struct q7_ckpt * ckpt)
{
    return ckpt ? ckpt->root : NULL;
}

struct q7_pyheap * q7_ckpt_heap(const struct q7_ckpt * ckpt)
{
    return ckpt ? ckpt->heap : NULL;
}

void q7_ckpt_free(struct q7_ckpt * ckpt)
{
    if (!ckpt)
        return;
    q7_pyheap_free(ckpt->heap);
    q7_file_map_close(&ckpt->map);
    free(ckpt);
}

/* ---- zip format --------------------------------------------------------------------------- */

struct zip_load {
    struct q7_zip * zip;
    char prefix[CKPT_MAX_PREFIX];
    uint8_t * verified; /* per entry: CRC already checked */
};

static int key_ok(const char * key)
{
    size_t n = strlen(key);
    if (n == 0 || n > CKPT_MAX_KEY)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static const uint8_t * zip_resolve(void * user, const char * key, size_t need)
{
    struct zip_load * z = user;
    if (!key_ok(key)) {
        q7_error_set(Q7_ERR_FORMAT, "storage key '%.80s' is not a plain name", key);
        return NULL;
    }
    char name[CKPT_MAX_PREFIX + CKPT_MAX_KEY + 16];
    snprintf(name, sizeof name, "%s/data/%s", z->prefix, key);
    const struct q7_zip_entry * e = q7_zip_find(z->zip, name);
    if (!e) {
        q7_error_set(Q7_ERR_FORMAT, "storage '%s': no entry '%s' in the archive", key, name);
        return NULL;
    }
    if (e->method != 0) {
        q7_error_set(Q7_ERR_UNSUPPORTED, "storage '%s': entry '%s' is compressed (method %d); "
                     "q7 reads storages only as torch.save writes them, stored uncompressed",
                     key, name, e->method);
        return NULL;
    }
    if (e->size != need) {
        q7_error_set(Q7_ERR_FORMAT, "storage '%s': entry '%s' holds %" PRIu64 " bytes, the "
                     "pickle says %zu", key, name, e->size, need);
        return NULL;
    }
    int idx = (int)(e - q7_zip_entry_at(z->zip, 0));
    const uint8_t * p;
    if (q7_zip_data(z->zip, e, !z->verified[idx], &p))
        return NULL;
    z->verified[idx] = 1;
    return p;
}

/* Finds `<prefix>/data.pkl`: the prefix is the first entry's top folder, as torch's reader
 * takes it; failing that, any top-level folder holding a data.pkl. */
static const struct q7_zip_entry * find_pickle(struct zip_load * z)
{
    const struct q7_zip_entry * first = q7_zip_entry_at(z->zip, 0);
    char name[CKPT_MAX_PREFIX + 16];
    if (first) {
        const char * slash = strchr(first->name, '/');
        size_t n = slash ? (size_t)(slash - first->name) : 0;
        if (slash && n > 0 && n < CKPT_MAX_PREFIX) {
            memcpy(z->prefix, first->name, n);
            z->prefix[n] = '\0';
            snprintf(name, sizeof name, "%s/data.pkl", z->prefix);
            const struct q7_zip_entry * e = q7_zip_find(z->zip, name);
            if (e)
                return e;
        }
    }
    for (int i = 0; i < q7_zip_count(z->zip); i++) {
        const struct q7_zip_entry * e = q7_zip_entry_at(z->zip, i);
        const char * slash = strchr(e->name, '/');
        size_t n = slash ? (size_t)(slash - e->name) : 0;
        if (slash && n > 0 && n < CKPT_MAX_PREFIX && strcmp(slash + 1, "data.pkl") == 0) {
            memcpy(z->prefix, e->name, n);
            z->prefix[n] = '\0';
            return e;
        }
    }
    return NULL;
}

static enum q7_status load_zip(struct q7_ckpt * ck, const struct q7_ckpt_limits * lim)
{
    struct zip_load z = {0};
    enum q7_status st = q7_zip_open(ck->map.data, ck->map.size, lim->max_zip_entries, &z.zip);
    if (st)
        return st;
    const struct q7_zip_entry * pkl = find_pickle(&z);
    const uint8_t * p = NULL;
    if (!pkl) {
        st = q7_error_set(Q7_ERR_FORMAT, "no <archive>/data.pkl entry: not a PyTorch checkpoint");
        goto done;
    }
    if (pkl->size > lim->max_pickle_bytes) {
        st = q7_error_set(Q7_ERR_LIMIT, "%s is %" PRIu64 " bytes, more than the %zu allowed",
                          pkl->name, pkl->size, lim->max_pickle_bytes);
        goto done;
    }
    z.verified = calloc((size_t)q7_zip_count(z.zip) + 1, 1);
    if (!z.verified) {
        st = q7_error_set(Q7_ERR_OOM, "out of memory");
        goto done;
    }
    if ((st = q7_zip_data(z.zip, pkl, 1, &p)))
        goto done;
    st = q7_pickle_load(p, (size_t)pkl->size, lim, ck->heap, zip_resolve, &z, &ck->root);
    if (st)
        q7_error_wrap(st, "%s", pkl->name);
done:
    free(z.verified);
    q7_zip_free(z.zip);
    return st;
}

/* ---- legacy format ------------------------------------------------------------------------- */

/* pickle.dumps(0x1950a86a20f9469cfc6c, protocol 2..5) after the PROTO byte */
static const uint8_t g_legacy_magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20,
                                         0x6a, 0xa8, 0x50, 0x19, 0x2e};

static int is_legacy(const uint8_t * d, size_t n)
{
    return n >= 2 + sizeof g_legacy_magic && d[0] == 0x80 && d[1] >= 2 &&
           memcmp(d + 2, g_legacy_magic, sizeof g_legacy_magic) == 0;
}

static int storage_cmp(const void * a, const void * b)
{
    const struct q7_py * x = *(const struct q7_py * const *)a;
    const struct q7_py * y = *(const struct q7_py * const *)b;
    return strcmp(x->v.storage.key, y->v.storage.key);
}

/* Fills the storages named in `keys` from the raw records at data[*pos...]. */
static enum q7_status legacy_storages(struct q7_ckpt * ck, const struct q7_py * keys,
                                      struct q7_pickle_out * main, size_t pos)
{
    const uint8_t * d = ck->map.data;
    size_t size = ck->map.size;
    if (!keys || keys->kind != Q7_PY_LIST)
        return q7_error_set(Q7_ERR_FORMAT, "legacy format: storage keys are not a list");
    struct q7_py ** sorted = NULL;
    if (main->n_storages) {
        sorted = malloc(main->n_storages * sizeof *sorted);
        if (!sorted)
            return q7_error_set(Q7_ERR_OOM, "out of memory");
        memcpy(sorted, main->storages, main->n_storages * sizeof *sorted);
        qsort(sorted, main->n_storages, sizeof *sorted, storage_cmp);
    }
    enum q7_status st = Q7_OK;
    for (size_t k = 0; k < keys->v.seq.len && st == Q7_OK; k++) {
        const char * key = q7_py_as_str(keys->v.seq.items[k]);
        if (!key) {
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage key %zu is not a string", k);
            break;
        }
        /* the first storage object with this key (binary search, then step back) */
        size_t lo = 0, hi = main->n_storages;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(sorted[mid]->v.storage.key, key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == main->n_storages || strcmp(sorted[lo]->v.storage.key, key) != 0) {
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage '%s' is not used", key);
            break;
        }
        struct q7_py_storage * s0 = &sorted[lo]->v.storage;
        if (s0->data) {
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage '%s' listed twice", key);
            break;
        }
        if (size - pos < 8) {
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: truncated before storage '%s'", key);
            break;
        }
        int64_t numel;
        memcpy(&numel, d + pos, 8); /* little-endian hosts only (checked by meson's users) */
        pos += 8;
        size_t bytes;
        if (numel != s0->numel || !q7_size_mul((size_t)numel, q7_dtype_size(s0->dtype), &bytes) ||
            bytes > size - pos) {
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage '%s' record of %" PRId64
                              " elements (pickle says %" PRId64 ") does not fit the file", key,
                              numel, s0->numel);
            break;
        }
        for (size_t i = lo; i < main->n_storages; i++) {
            struct q7_py_storage * s = &sorted[i]->v.storage;
            if (strcmp(s->key, key) != 0)
                break;
            if (s->dtype != s0->dtype || s->numel != s0->numel) {
                st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage '%s' used with two "
                                  "types", key);
                break;
            }
            s->data = d + pos;
        }
        pos += bytes;
    }
    for (size_t i = 0; st == Q7_OK && i < main->n_storages; i++)
        if (!main->storages[i]->v.storage.data)
            st = q7_error_set(Q7_ERR_FORMAT, "legacy format: storage '%s' has no data",
                              main->storages[i]->v.storage.key);
    free(sorted);
    return st;
}

static enum q7_status load_legacy(struct q7_ckpt * ck, const struct q7_ckpt_limits * lim)
{
    const uint8_t * d = ck->map.data;
    size_t size = ck->map.size, pos = 2 + sizeof g_legacy_magic;
    struct q7_pickle_out ver, info, main, keys;
    enum q7_status st = q7_pickle_run(d + pos, size - pos, lim, ck->heap, NULL, NULL, 1, &ver);
    if (st)
        return q7_error_wrap(st, "legacy format: protocol version");
    pos += ver.consumed;
    int64_t v;
    if (!q7_py_as_int(ver.root, &v) || v != LEGACY_PROTOCOL_VERSION)
        return q7_error_set(Q7_ERR_UNSUPPORTED, "legacy format: protocol version is not %d",
                            LEGACY_PROTOCOL_VERSION);
    if ((st = q7_pickle_run(d + pos, size - pos, lim, ck->heap, NULL, NULL, 1, &info)))
        return q7_error_wrap(st, "legacy format: sys_info");
    pos += info.consumed;
    const struct q7_py * le = q7_py_dict_get(info.root, "little_endian");
    if (info.root->kind != Q7_PY_DICT || (le && le->kind == Q7_PY_BOOL && !le->v.i))
        return q7_error_set(Q7_ERR_UNSUPPORTED, "legacy format: big-endian checkpoint");
    if ((st = q7_pickle_run(d + pos, size - pos, lim, ck->heap, NULL, NULL, 1, &main)))
        return q7_error_wrap(st, "legacy format: object pickle");
    pos += main.consumed;
    if ((st = q7_pickle_run(d + pos, size - pos, lim, ck->heap, NULL, NULL, 1, &keys)))
        return q7_error_wrap(st, "legacy format: storage keys");
    pos += keys.consumed;
    if ((st = legacy_storages(ck, keys.root, &main, pos)))
        return st;
    ck->root = main.root;
    return Q7_OK;
}

/* ---- entry point -------------------------------------------------------------------------- */

enum q7_status q7_ckpt_load(const char * path, const struct q7_ckpt_limits * limits,
                            struct q7_ckpt ** out)
{
    if (!out)
        return q7_error_set(Q7_ERR_ARG, "checkpoint: NULL output");
    *out = NULL;
    if (!path)
        return q7_error_set(Q7_ERR_ARG, "checkpoint: NULL path");
    struct q7_ckpt_limits deflim = q7_ckpt_limits_default();
    if (!limits)
        limits = &deflim;
    struct q7_ckpt * ck = calloc(1, sizeof *ck);
    if (!ck)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    enum q7_status st = q7_file_map_open(path, &ck->map);
    if (st) {
        free(ck);
        return st; /* the message names the file already */
    }
    ck->heap = q7_pyheap_create();
    if (!ck->heap) {
        st = Q7_ERR_OOM;
    } else if (is_legacy(ck->map.data, ck->map.size)) {
        st = load_legacy(ck, limits);
    } else if (ck->map.size > TAR_MAGIC_OFFSET + 5 &&
               memcmp(ck->map.data + TAR_MAGIC_OFFSET, "ustar", 5) == 0) {
        st = q7_error_set(Q7_ERR_UNSUPPORTED, "tar-based checkpoint (torch < 0.4): re-save it "
                          "with a recent torch.save");
    } else {
        st = load_zip(ck, limits);
    }
    if (st) {
        q7_error_wrap(st, "%s", path);
        q7_ckpt_free(ck);
        return st;
    }
    *out = ck;
    return Q7_OK;
}
