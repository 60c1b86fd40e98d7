/* Safe PyTorch checkpoint reader: zip container + a protocol-2 pickle subset.
 * No code is ever executed: globals stay inert (class, name); REDUCE is allowed only on a
 * short allow-list of data constructors (OrderedDict, set, _rebuild_tensor_v2,
 * _rebuild_parameter, _codecs.encode, numpy scalars); anything else is an error naming it. */
#ifndef Q7_CKPT_H
#define Q7_CKPT_H

#include "models/pyobj.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds that keep hostile files from exhausting memory or stack. */
struct q7_ckpt_limits {
    size_t max_pickle_bytes;   /* data.pkl size */
    size_t max_objects;        /* objects created while unpickling */
    size_t max_memo;           /* memo entries */
    size_t max_stack;          /* value stack depth */
    size_t max_container_len;  /* items in one list/dict/tuple */
    int max_zip_entries;
};
struct q7_ckpt_limits q7_ckpt_limits_default(void);

struct q7_ckpt;

/* Loads `path` (zip checkpoint; legacy formats where supported). The file stays mapped while
 * the checkpoint lives; storages point into it. Caller frees with q7_ckpt_free. On failure
 * *out is NULL and the message names the file and what is wrong. */
enum q7_status q7_ckpt_load(const char * path, const struct q7_ckpt_limits * limits,
                            struct q7_ckpt ** out);
void q7_ckpt_free(struct q7_ckpt * ckpt);
/* The unpickled root object (a dict for yolov7 checkpoints). */
struct q7_py * q7_ckpt_root(const struct q7_ckpt * ckpt);
struct q7_pyheap * q7_ckpt_heap(const struct q7_ckpt * ckpt);

/* Unpickles `data` into `heap` (no storages resolved: `resolve` maps archive keys to bytes,
 * returning NULL and setting a message when a key is missing). Exposed for tests and fuzzing. */
typedef const uint8_t * (*q7_storage_resolver)(void * user, const char * key, size_t need);
enum q7_status q7_pickle_load(const uint8_t * data, size_t size,
                              const struct q7_ckpt_limits * limits, struct q7_pyheap * heap,
                              q7_storage_resolver resolve, void * user, struct q7_py ** out);

/* Zip container (stored and deflated entries are listed; only stored entries can be read
 * in place, which is what torch.save writes). */
struct q7_zip_entry {
    const char * name;
    uint64_t offset;      /* of the entry's data in the file */
    uint64_t size;        /* uncompressed */
    uint64_t csize;       /* compressed */
    uint32_t crc32;
    int method;           /* 0 stored, 8 deflate */
};
struct q7_zip;
enum q7_status q7_zip_open(const uint8_t * data, size_t size, int max_entries,
                           struct q7_zip ** out);
void q7_zip_free(struct q7_zip * zip);
int q7_zip_count(const struct q7_zip * zip);
const struct q7_zip_entry * q7_zip_entry_at(const struct q7_zip * zip, int i);
const struct q7_zip_entry * q7_zip_find(const struct q7_zip * zip, const char * name);
/* Pointer to a stored entry's bytes (checked against the file and, if verify_crc, its CRC). */
enum q7_status q7_zip_data(const struct q7_zip * zip, const struct q7_zip_entry * e,
                           int verify_crc, const uint8_t ** out);

#ifdef __cplusplus
}
#endif
#endif
