/* q7 base: status codes, the last-error message, logging, arenas, file mapping.
 * Every other module includes this; it includes nothing of q7. */
#ifndef Q7_BASE_H
#define Q7_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum q7_status {
    Q7_OK = 0,
    Q7_ERR_ARG,         /* a caller passed something invalid */
    Q7_ERR_IO,          /* a file could not be opened, read or written */
    Q7_ERR_FORMAT,      /* a file's contents are malformed */
    Q7_ERR_OOM,         /* an allocation failed */
    Q7_ERR_CUDA,        /* a CUDA or cuBLAS call failed */
    Q7_ERR_UNSUPPORTED, /* valid input that q7 does not handle */
    Q7_ERR_LIMIT,       /* input exceeds a safety bound (size, depth, count) */
    Q7_ERR_NOT_FOUND,   /* a named thing (tensor, layer, key) does not exist */
    Q7_ERR_INTERNAL,    /* an internal invariant failed */
    Q7_STATUS_COUNT
};

/* A short constant name for a status ("format error"). Never NULL. */
const char * q7_status_str(enum q7_status status);

/* Records `fmt` as this thread's last error message and returns `status`, so that a failing
 * path reads `return q7_error_set(Q7_ERR_FORMAT, "%s: bad magic", path);`. */
enum q7_status q7_error_set(enum q7_status status, const char * fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum q7_status q7_error_setv(enum q7_status status, const char * fmt, va_list ap);
/* Prefixes the current message with "prefix: " (adding context on the way up). Returns status. */
enum q7_status q7_error_wrap(enum q7_status status, const char * fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* This thread's last error message ("" when none). Valid until the next q7 call on the thread. */
const char * q7_error_message(void);
/* The status that came with that message (Q7_OK when none): for functions that return NULL on
 * failure, so that their callers can pass the right status on. */
enum q7_status q7_error_status(void);
/* Forgets the last message and status. */
void q7_error_clear(void);

/* Logging goes through one callback; the default writes levels >= Q7_LOG_INFO to stderr. */
enum q7_log_level { Q7_LOG_DEBUG = 0, Q7_LOG_INFO, Q7_LOG_WARN, Q7_LOG_ERROR, Q7_LOG_QUIET };
typedef void (*q7_log_fn)(enum q7_log_level level, const char * msg, void * user);
void q7_log_set(q7_log_fn fn, void * user);
void q7_log_set_level(enum q7_log_level min_level);
void q7_log(enum q7_log_level level, const char * fmt, ...) __attribute__((format(printf, 2, 3)));

/* Aborts with file:line on a broken internal invariant (never for bad input). */
#define Q7_ASSERT(cond)                                                                           \
    do {                                                                                          \
        if (!(cond))                                                                              \
            q7_assert_fail(#cond, __FILE__, __LINE__);                                           \
    } while (0)
void q7_assert_fail(const char * cond, const char * file, int line) __attribute__((noreturn));

/* Overflow-checked size arithmetic: return 0 on overflow, else 1 and the result in *out. */
int q7_size_mul(size_t a, size_t b, size_t * out);
int q7_size_add(size_t a, size_t b, size_t * out);

/* Arena: bump allocation in chunks, freed all at once. Owns what it hands out. */
struct q7_arena;
struct q7_arena * q7_arena_create(size_t chunk_size);
void q7_arena_free(struct q7_arena * arena);
/* 64-byte aligned, zeroed. NULL on OOM (message set). */
void * q7_arena_alloc(struct q7_arena * arena, size_t size);
char * q7_arena_strdup(struct q7_arena * arena, const char * s);
char * q7_arena_strndup(struct q7_arena * arena, const char * s, size_t n);
/* Bytes handed out so far (for limits and reports). */
size_t q7_arena_used(const struct q7_arena * arena);

/* A read-only view of a whole file: mmap where possible. */
struct q7_file_map {
    const uint8_t * data;
    size_t size;
    int mapped; /* 1: munmap on free; 0: malloc'ed copy (pipes, empty files) */
};
enum q7_status q7_file_map_open(const char * path, struct q7_file_map * map);
void q7_file_map_close(struct q7_file_map * map);

/* Reads a whole (small) file into a NUL-terminated malloc'ed buffer; refuses files larger
 * than max_size with Q7_ERR_LIMIT. Caller frees. */
enum q7_status q7_file_read_all(const char * path, size_t max_size, char ** out, size_t * size);

/* Writes `size` bytes to `path` through a temporary name and rename(), so that a failure
 * never leaves a partial file in place of a good one. */
enum q7_status q7_file_write_atomic(const char * path, const void * data, size_t size);

/* IEEE half and bfloat16 conversions (round to nearest even on the way down). */
float q7_half_to_float(uint16_t h);
uint16_t q7_float_to_half(float f);
float q7_bf16_to_float(uint16_t h);

/* Monotonic seconds. */
double q7_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
