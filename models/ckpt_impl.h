/* Private interfaces between models/zip.c, pickle.c and ckpt.c (never installed). */
#ifndef Q7_CKPT_IMPL_H
#define Q7_CKPT_IMPL_H

#include "models/ckpt.h"

/* CRC-32 (IEEE, as zip uses) of `n` bytes continuing from `crc` (0 to start). */
uint32_t q7_zip_crc32(uint32_t crc, const uint8_t * p, size_t n);

/* What one pickle run produced. `storages` (in the heap) lists every STORAGE object created
 * by BINPERSID, in order, so that a caller that resolves storages later (legacy format)
 * can fill their data. */
struct q7_pickle_out {
    struct q7_py * root;
    size_t consumed;          /* bytes up to and including STOP */
    struct q7_py ** storages;
    size_t n_storages;
};

/* q7_pickle_load that also reports what it consumed; accepts the legacy 6-item persistent
 * id (`legacy` 1: view metadata must be None) besides the zip format's 5-item one. */
enum q7_status q7_pickle_run(const uint8_t * data, size_t size,
                             const struct q7_ckpt_limits * limits, struct q7_pyheap * heap,
                             q7_storage_resolver resolve, void * user, int legacy,
                             struct q7_pickle_out * out);

#endif
