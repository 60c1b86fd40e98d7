/* q7 base: status codes, the last-error message, logging, arenas, file mapping. */
#define _POSIX_C_SOURCE 200809L
#include "graph/base.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define Q7_ERROR_MAX 1024
#define Q7_ARENA_ALIGN 64

static _Thread_local char g_error[Q7_ERROR_MAX];
static _Thread_local enum q7_status g_status;

static const char * const g_status_names[Q7_STATUS_COUNT] = {
    [Q7_OK] = "ok",
    [Q7_ERR_ARG] = "invalid argument",
    [Q7_ERR_IO] = "I/O error",
    [Q7_ERR_FORMAT] = "format error",
    [Q7_ERR_OOM] = "out of memory",
    [Q7_ERR_CUDA] = "CUDA error",
    [Q7_ERR_UNSUPPORTED] = "unsupported",
    [Q7_ERR_LIMIT] = "limit exceeded",
    [Q7_ERR_NOT_FOUND] = "not found",
    [Q7_ERR_INTERNAL] = "internal error",
};

const char * q7_status_str(enum q7_status status)
{
    if ((int)status < 0 || status >= Q7_STATUS_COUNT)
        return "unknown status";
    return g_status_names[status];
}

enum q7_status q7_error_setv(enum q7_status status, const char * fmt, va_list ap)
{
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    g_status = status;
    return status;
}

enum q7_status q7_error_set(enum q7_status status, const char * fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    q7_error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

enum q7_status q7_error_wrap(enum q7_status status, const char * fmt, ...)
{
    char prefix[Q7_ERROR_MAX];
    char old[Q7_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_error, sizeof old);
    const char * tail = old[0] ? old : q7_status_str(status);
    /* "prefix: tail", cut to the buffer */
    size_t n = strlen(prefix), cap = sizeof g_error - 1;
    n = n < cap ? n : cap;
    memcpy(g_error, prefix, n);
    const char * parts[2] = {": ", tail};
    for (int k = 0; k < 2; k++) {
        size_t m = strlen(parts[k]);
        m = m < cap - n ? m : cap - n;
        memcpy(g_error + n, parts[k], m);
        n += m;
    }
    g_error[n] = '\0';
    g_status = status;
    return status;
}

const char * q7_error_message(void)
{
    return g_error;
}

enum q7_status q7_error_status(void)
{
    return g_status;
}

void q7_error_clear(void)
{
    g_error[0] = '\0';
    g_status = Q7_OK;
}

static void log_default(enum q7_log_level level, const char * msg, void * user)
{
    (void)user;
    static const char * const tags[] = {"debug", "info", "warning", "error"};
    if (level == Q7_LOG_INFO)
        fprintf(stderr, "%s\n", msg);
    else
        fprintf(stderr, "q7 %s: %s\n", tags[level], msg);
}

static q7_log_fn g_log_fn = log_default;
static void * g_log_user;
static enum q7_log_level g_log_min = Q7_LOG_INFO;

void q7_log_set(q7_log_fn fn, void * user)
{
    g_log_fn = fn ? fn : log_default;
    g_log_user = user;
}

void q7_log_set_level(enum q7_log_level min_level)
{
    g_log_min = min_level;
}

void q7_log(enum q7_log_level level, const char * fmt, ...)
{
    if (level < g_log_min || level >= Q7_LOG_QUIET)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g_log_fn(level, msg, g_log_user);
}

void q7_assert_fail(const char * cond, const char * file, int line)
{
    fprintf(stderr, "q7: internal invariant failed: %s (%s:%d)\n", cond, file, line);
    abort();
}

int q7_size_mul(size_t a, size_t b, size_t * out)
{
    return !__builtin_mul_overflow(a, b, out);
}

int q7_size_add(size_t a, size_t b, size_t * out)
{
    return !__builtin_add_overflow(a, b, out);
}

struct arena_chunk {
    struct arena_chunk * next;
    size_t size;
    size_t used;
    uint8_t * base; /* aligned start inside the same allocation */
};

struct q7_arena {
    struct arena_chunk * head;
    size_t chunk_size;
    size_t total;
};

struct q7_arena * q7_arena_create(size_t chunk_size)
{
    struct q7_arena * a = calloc(1, sizeof *a);
    if (!a) {
        q7_error_set(Q7_ERR_OOM, "arena: out of memory");
        return NULL;
    }
    a->chunk_size = chunk_size ? chunk_size : (size_t)1 << 20;
    return a;
}

void q7_arena_free(struct q7_arena * arena)
{
    if (!arena)
        return;
    struct arena_chunk * c = arena->head;
    while (c) {
        struct arena_chunk * next = c->next;
        free(c);
        c = next;
    }
    free(arena);
}

static struct arena_chunk * arena_chunk_new(size_t size)
{
    size_t bytes;
    if (!q7_size_add(size, sizeof(struct arena_chunk) + Q7_ARENA_ALIGN, &bytes))
        return NULL;
    struct arena_chunk * c = malloc(bytes);
    if (!c)
        return NULL;
    uintptr_t p = (uintptr_t)(c + 1);
    p = (p + Q7_ARENA_ALIGN - 1) & ~(uintptr_t)(Q7_ARENA_ALIGN - 1);
    c->base = (uint8_t *)p;
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

void * q7_arena_alloc(struct q7_arena * arena, size_t size)
{
    size_t need;
    if (!q7_size_add(size, Q7_ARENA_ALIGN - 1, &need)) {
        q7_error_set(Q7_ERR_OOM, "arena: allocation of %zu bytes overflows", size);
        return NULL;
    }
    need &= ~(size_t)(Q7_ARENA_ALIGN - 1);
    if (need == 0)
        need = Q7_ARENA_ALIGN;
    struct arena_chunk * c = arena->head;
    if (!c || c->size - c->used < need) {
        size_t csize = need > arena->chunk_size ? need : arena->chunk_size;
        struct arena_chunk * n = arena_chunk_new(csize);
        if (!n) {
            q7_error_set(Q7_ERR_OOM, "arena: out of memory allocating %zu bytes", size);
            return NULL;
        }
        if (need > arena->chunk_size && c) {
            /* a big block: keep the current chunk in front for small allocations */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            arena->head = n;
        }
        c = n;
    }
    void * p = c->base + c->used;
    c->used += need;
    arena->total += need;
    memset(p, 0, need);
    return p;
}

char * q7_arena_strndup(struct q7_arena * arena, const char * s, size_t n)
{
    char * p = q7_arena_alloc(arena, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char * q7_arena_strdup(struct q7_arena * arena, const char * s)
{
    return q7_arena_strndup(arena, s, strlen(s));
}

size_t q7_arena_used(const struct q7_arena * arena)
{
    return arena->total;
}

enum q7_status q7_file_map_open(const char * path, struct q7_file_map * map)
{
    memset(map, 0, sizeof *map);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return q7_error_set(Q7_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return q7_error_set(Q7_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return q7_error_set(Q7_ERR_IO, "%s: is a directory", path);
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        void * p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return q7_error_set(Q7_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        map->data = p;
        map->size = (size_t)st.st_size;
        map->mapped = 1;
        return Q7_OK;
    }
    /* pipes and empty files: read into memory */
    size_t cap = 1 << 16, len = 0;
    uint8_t * buf = malloc(cap);
    if (!buf) {
        close(fd);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            uint8_t * nb = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                close(fd);
                return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return q7_error_set(Q7_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    map->data = buf;
    map->size = len;
    map->mapped = 0;
    return Q7_OK;
}

void q7_file_map_close(struct q7_file_map * map)
{
    if (!map || !map->data) {
        if (map)
            memset(map, 0, sizeof *map);
        return;
    }
    if (map->mapped)
        munmap((void *)map->data, map->size);
    else
        free((void *)map->data);
    memset(map, 0, sizeof *map);
}

enum q7_status q7_file_read_all(const char * path, size_t max_size, char ** out, size_t * size)
{
    *out = NULL;
    struct q7_file_map map;
    enum q7_status st = q7_file_map_open(path, &map);
    if (st)
        return st;
    if (map.size > max_size) {
        size_t n = map.size;
        q7_file_map_close(&map);
        return q7_error_set(Q7_ERR_LIMIT, "%s: file is %zu bytes, more than the %zu allowed",
                            path, n, max_size);
    }
    char * buf = malloc(map.size + 1);
    if (!buf) {
        q7_file_map_close(&map);
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    }
    if (map.size)
        memcpy(buf, map.data, map.size);
    buf[map.size] = '\0';
    if (size)
        *size = map.size;
    q7_file_map_close(&map);
    *out = buf;
    return Q7_OK;
}

enum q7_status q7_file_write_atomic(const char * path, const void * data, size_t size)
{
    size_t n = strlen(path) + 32;
    char * tmp = malloc(n);
    if (!tmp)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE * f = fopen(tmp, "wb");
    if (!f) {
        enum q7_status st =
            q7_error_set(Q7_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fflush(f) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        enum q7_status st = q7_error_set(Q7_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return Q7_OK;
}

float q7_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t q7_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* subnormal half or zero */
        if (absx < 0x33000000u)
            return (uint16_t)sign;
        uint32_t man = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        uint32_t h = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((absx - 0x38000000u) >> 13);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float q7_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

double q7_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
