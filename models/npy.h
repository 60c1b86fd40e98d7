/* NumPy .npy reader and writer (format versions 1.0-3.0, C order, little-endian
 * f4/f8/f2/u1/i1/i2/i4/i8/b1). Sizes are checked against the file before allocating. */
#ifndef Q7_NPY_H
#define Q7_NPY_H

#include "graph/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

struct q7_npy {
    enum q7_dtype dtype;
    int ndim;
    int64_t shape[Q7_MAX_DIMS];
    void * data; /* malloc'ed, numel * dtype size bytes */
};

int64_t q7_npy_numel(const struct q7_npy * a);

/* Reads `path`. Fortran order and big-endian data are rejected with Q7_ERR_UNSUPPORTED. */
enum q7_status q7_npy_load(const char * path, struct q7_npy * out);
/* Parses an in-memory .npy (for tests and fuzzing). `what` names it in messages. */
enum q7_status q7_npy_parse(const uint8_t * data, size_t size, const char * what,
                            struct q7_npy * out);
void q7_npy_free(struct q7_npy * a);

/* Writes `data` (numel * dtype size bytes) atomically (temporary name, then rename). */
enum q7_status q7_npy_save(const char * path, enum q7_dtype dtype, int ndim,
                           const int64_t * shape, const void * data);

#ifdef __cplusplus
}
#endif
#endif
