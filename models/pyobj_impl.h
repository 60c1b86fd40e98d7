/* Private helpers shared by models/pyobj.c, pyobj_tensor.c, pickle.c and ckpt.c (never
 * installed). */
#ifndef Q7_PYOBJ_IMPL_H
#define Q7_PYOBJ_IMPL_H

#include "models/pyobj.h"

/* Zeroed, 16-byte aligned memory owned by the heap. NULL on OOM (message set). */
void * q7_pyheap_alloc(struct q7_pyheap * h, size_t size);
/* Objects created so far (for the unpickler's max_objects limit). */
size_t q7_pyheap_object_count(const struct q7_pyheap * heap);
/* A storage object; `data` may be NULL (unresolved) and is not copied. */
struct q7_py * q7_py_storage_new(struct q7_pyheap * h, enum q7_dtype dtype, const char * key,
                                 int64_t numel, const uint8_t * data);

/* Python's == for dict keys and set members: numbers by value across int/bool/float, str and
 * bytes by content, None equal to None, anything else by identity. */
int q7_py_key_eq(const struct q7_py * a, const struct q7_py * b);

/* Checks a TENSOR's shape, strides and offset against its storage's numel (the storage need
 * not be resolved). Q7_ERR_FORMAT naming the problem. */
enum q7_status q7_py_tensor_check(const struct q7_py * tensor);

#endif
