/* Hostile files, tried the way a user would meet them: through the `q7` command ($Q7_BIN, set
 * by meson) where a command reads that kind of file, through the library otherwise.
 *
 * Each case must end with a clear message and a failing status (exit code != 0) where the run
 * cannot go on, never a crash, a sanitizer report, a hang or a huge allocation, and must never
 * execute anything: the pickles below would create a marker file if any code ran.
 *
 *   checkpoints  pickle calling os.system / posix.system / builtins.eval / eval via
 *                STACK_GLOBAL, INST and nested in a dict; truncated (zip and pickle);
 *                bit-flipped (zip bytes and pickle bytes with valid CRCs); a zip bomb
 *                (deflated data.pkl claiming 4 GiB, and a stored entry claiming more than the
 *                file); an npy input claiming a huge shape
 *   images       a 100000x100000 PNG header, a 65500x65500 JPEG header, JPEGs with lying
 *                EXIF blocks (counts, offsets, values, types, a cut-off segment)
 *   labels       NaN, inf, negative, huge, fractional class, wrong column counts
 *   yaml         python tags, an alias bomb, absurd width, deep nesting, upsampling
 *                repeated until the stride probe overflows
 *
 * Cases that need the fixtures (the family checkpoints) are skipped with a note when they are
 * missing; the rest builds its files itself. */
#include "engine/q7.h"
#include "eval/dataset.h"
#include "eval/image.h"
#include "graph/passes.h"
#include "models/ckpt.h"
#include "models/npy.h"
#include "models/yaml_cfg.h"
#include "models/yolo_graph.h"
#include "tests/test_common.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLI_TIMEOUT_S 120     /* one q7 command on a hostile file (ASan builds are slow) */
#define MAX_RSS_GROWTH_MB 512 /* what reading one hostile file may add to the peak RSS */

static char g_dir[512];

static const char * tpath(const char * name)
{
    static char bufs[8][1024];
    static int k;
    char * b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static void write_file(const char * path, const void * data, size_t n)
{
    FILE * f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "test_hostile: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static int exists(const char * path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* ---- byte buffers, CRC-32, a small zip writer ---------------------------------------------- */

struct buf {
    uint8_t * p;
    size_t n, cap;
};

static void buf_put(struct buf * b, const void * d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void buf_str(struct buf * b, const char * s) { buf_put(b, s, strlen(s)); }
static void buf_u8(struct buf * b, unsigned v) { uint8_t x = (uint8_t)v; buf_put(b, &x, 1); }
static void buf_le16(struct buf * b, unsigned v) { buf_u8(b, v & 0xFF); buf_u8(b, v >> 8 & 0xFF); }
static void buf_le32(struct buf * b, uint32_t v) { buf_le16(b, v & 0xFFFF); buf_le16(b, v >> 16); }
static void buf_be16(struct buf * b, unsigned v) { buf_u8(b, v >> 8 & 0xFF); buf_u8(b, v & 0xFF); }
static void buf_be32(struct buf * b, uint32_t v) { buf_be16(b, v >> 16); buf_be16(b, v & 0xFFFF); }

static uint32_t crc32_of(const uint8_t * p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

struct zent {
    const char * name;
    const uint8_t * data;
    size_t size;          /* bytes stored */
    int method;           /* 0 stored, 8 deflate */
    uint32_t claimed;     /* uncompressed size written in the headers (0: size) */
};

/* A zip archive of `n` entries as torch.save lays it out (no extra fields, no data descriptor). */
static void zip_build(const struct zent * e, int n, struct buf * out)
{
    uint32_t * offs = calloc((size_t)n, sizeof *offs);
    if (!offs)
        abort();
    for (int i = 0; i < n; i++) {
        offs[i] = (uint32_t)out->n;
        uint32_t usize = e[i].claimed ? e[i].claimed : (uint32_t)e[i].size;
        buf_le32(out, 0x04034b50u);
        buf_le16(out, 20);
        buf_le16(out, 0);
        buf_le16(out, (unsigned)e[i].method);
        buf_le32(out, 0);
        buf_le32(out, crc32_of(e[i].data, e[i].size));
        buf_le32(out, (uint32_t)e[i].size);
        buf_le32(out, usize);
        buf_le16(out, (unsigned)strlen(e[i].name));
        buf_le16(out, 0);
        buf_str(out, e[i].name);
        buf_put(out, e[i].data, e[i].size);
    }
    uint32_t cd = (uint32_t)out->n;
    for (int i = 0; i < n; i++) {
        uint32_t usize = e[i].claimed ? e[i].claimed : (uint32_t)e[i].size;
        buf_le32(out, 0x02014b50u);
        buf_le16(out, 20);
        buf_le16(out, 20);
        buf_le16(out, 0);
        buf_le16(out, (unsigned)e[i].method);
        buf_le32(out, 0);
        buf_le32(out, crc32_of(e[i].data, e[i].size));
        buf_le32(out, (uint32_t)e[i].size);
        buf_le32(out, usize);
        buf_le16(out, (unsigned)strlen(e[i].name));
        buf_le16(out, 0);
        buf_le16(out, 0);
        buf_le16(out, 0);
        buf_le16(out, 0);
        buf_le32(out, 0);
        buf_le32(out, offs[i]);
        buf_str(out, e[i].name);
    }
    uint32_t cd_size = (uint32_t)out->n - cd;
    buf_le32(out, 0x06054b50u);
    buf_le16(out, 0);
    buf_le16(out, 0);
    buf_le16(out, (unsigned)n);
    buf_le16(out, (unsigned)n);
    buf_le32(out, cd_size);
    buf_le32(out, cd);
    buf_le16(out, 0);
    free(offs);
}

/* A checkpoint whose data.pkl is `pkl` (plus a version entry, as torch writes). */
static void write_ckpt(const char * path, const uint8_t * pkl, size_t n)
{
    struct zent e[2] = {{"archive/data.pkl", pkl, n, 0, 0},
                        {"archive/version", (const uint8_t *)"3\n", 2, 0, 0}};
    struct buf b = {0};
    zip_build(e, 2, &b);
    write_file(path, b.p, b.n);
    free(b.p);
}

/* ---- running the q7 command ----------------------------------------------------------------- */

struct cli_result {
    int ran;        /* 0 when Q7_BIN is not set */
    int exit_code;  /* -1 when killed by a signal */
    int signal;
    char err[8192]; /* stderr (start) */
};

static void cli_run(struct cli_result * r, const char * const * args)
{
    memset(r, 0, sizeof *r);
    const char * bin = getenv("Q7_BIN");
    if (!bin || !*bin || access(bin, X_OK) != 0)
        return;
    r->ran = 1;
    const char * errp = tpath("cli.stderr");
    const char * outp = tpath("cli.stdout");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        if (!freopen(errp, "w", stderr) || !freopen(outp, "w", stdout))
            _exit(127);
        char * argv[16];
        int n = 0;
        argv[n++] = (char *)bin;
        for (; args[n - 1] && n < 15; n++)
            argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    int status = 0;
    time_t t0 = time(NULL);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (time(NULL) - t0 > CLI_TIMEOUT_S) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(r->err, sizeof r->err, "(killed after %d s: a hang)", CLI_TIMEOUT_S);
            r->exit_code = -1;
            r->signal = SIGKILL;
            return;
        }
        usleep(10000);
    }
    if (WIFSIGNALED(status)) {
        r->exit_code = -1;
        r->signal = WTERMSIG(status);
    } else {
        r->exit_code = WEXITSTATUS(status);
    }
    FILE * f = fopen(errp, "rb");
    if (f) {
        size_t n = fread(r->err, 1, sizeof r->err - 1, f);
        r->err[n] = '\0';
        fclose(f);
    }
}

static int sanitizer_report(const char * s)
{
    return strstr(s, "Sanitizer") || strstr(s, "runtime error:") ||
           strstr(s, "Segmentation fault");
}

/* Runs q7 with args; expects a failing exit (not a crash) with `want` in its message. */
static void expect_cli_fails(const char * what, const char * want, const char * const * args)
{
    struct cli_result r;
    cli_run(&r, args);
    if (!r.ran)
        return;
    CHECKF(r.signal == 0, "%s: q7 killed by signal %d", what, r.signal);
    CHECKF(r.exit_code != 0 && r.exit_code != 127, "%s: q7 exit code %d", what, r.exit_code);
    CHECKF(!sanitizer_report(r.err), "%s: sanitizer report:\n%s", what, r.err);
    CHECKF(strstr(r.err, "q7 ") != NULL && (!want || strstr(r.err, want) != NULL),
           "%s: message should mention '%s', got: %s", what, want ? want : "", r.err);
    if (getenv("Q7_TEST_VERBOSE"))
        fprintf(stderr, "  %s -> exit %d: %s", what, r.exit_code, r.err);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

struct evil_pickle {
    const char * name;
    const char * want; /* in the message */
    struct buf pkl;
};

static void test_code_execution(void)
{
    char marker[1024];
    snprintf(marker, sizeof marker, "%s", tpath("pwned"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "touch %s", marker);
    char py[1400];
    snprintf(py, sizeof py, "__import__('os').system('touch %s')", marker);
    struct evil_pickle ev[6] = {
        {"os.system", "os.system", {0}},
        {"posix.system", "posix.system", {0}},
        {"builtins.eval", "builtins.eval", {0}},
        {"stack_global", "os.system", {0}},
        {"nested_in_dict", "os.system", {0}},
        {"inst_opcode", NULL, {0}},
    };
    /* GLOBAL module\nname\n, BINUNICODE arg, TUPLE1, REDUCE, STOP (protocol 2) */
    const char * mods[3][2] = {{"os", "system"}, {"posix", "system"}, {"builtins", "eval"}};
    for (int i = 0; i < 3; i++) {
        struct buf * b = &ev[i].pkl;
        const char * arg = i == 2 ? py : cmd;
        buf_str(b, "\x80\x02");
        buf_u8(b, 'c');
        buf_str(b, mods[i][0]);
        buf_u8(b, '\n');
        buf_str(b, mods[i][1]);
        buf_u8(b, '\n');
        buf_u8(b, 'X');
        buf_le32(b, (uint32_t)strlen(arg));
        buf_str(b, arg);
        buf_str(b, "\x85R.");
    }
    { /* protocol 4: SHORT_BINUNICODE "os", "system", STACK_GLOBAL */
        struct buf * b = &ev[3].pkl;
        buf_str(b, "\x80\x04\x8c\x02os\x8c\x06system\x93");
        buf_u8(b, 'X');
        buf_le32(b, (uint32_t)strlen(cmd));
        buf_str(b, cmd);
        buf_str(b, "\x85R.");
    }
    { /* {'model': os.system(cmd)}: EMPTY_DICT, key, evil value, SETITEM */
        struct buf * b = &ev[4].pkl;
        buf_str(b, "\x80\x02}X");
        buf_le32(b, 5);
        buf_str(b, "model");
        buf_str(b, "cos\nsystem\nX");
        buf_le32(b, (uint32_t)strlen(cmd));
        buf_str(b, cmd);
        buf_str(b, "\x85Rs.");
    }
    { /* protocol 0 INST: MARK, arg, INST os system */
        struct buf * b = &ev[5].pkl;
        buf_str(b, "(V");
        buf_str(b, cmd);
        buf_str(b, "\nios\nsystem\n.");
    }
    /* a valid input for `q7 run`, so that the checkpoint is what it refuses */
    static uint8_t px[3 * 32 * 32];
    const int64_t shape[3] = {3, 32, 32};
    char input[1024];
    snprintf(input, sizeof input, "%s", tpath("input.npy"));
    CHECK_OK(q7_npy_save(input, Q7_DTYPE_U8, 3, shape, px));
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "evil_%s.pt", ev[i].name);
        const char * path = tpath(name);
        write_ckpt(path, ev[i].pkl.p, ev[i].pkl.n);
        struct q7_ckpt * ck = NULL;
        enum q7_status st = q7_ckpt_load(path, NULL, &ck);
        CHECKF(st != Q7_OK && ck == NULL, "%s: loaded", name);
        CHECKF(!ev[i].want || strstr(q7_error_message(), ev[i].want), "%s: message: %s", name,
               q7_error_message());
        q7_ckpt_free(ck);
        const char * args[] = {"info", path, NULL};
        expect_cli_fails(name, ev[i].want, args);
        const char * run_args[] = {"run", "--weights", path, "--input", input, "--output",
                                   tpath("out.npy"), NULL};
        expect_cli_fails(name, ev[i].want, run_args);
        /* the bare pickle too */
        struct q7_pyheap * heap = q7_pyheap_create();
        struct q7_py * root = NULL;
        st = q7_pickle_load(ev[i].pkl.p, ev[i].pkl.n, NULL, heap, NULL, NULL, &root);
        CHECKF(st != Q7_OK, "%s: bare pickle loaded", name);
        q7_pyheap_free(heap);
        free(ev[i].pkl.p);
    }
    CHECKF(!exists(marker), "a hostile pickle executed code: %s exists", marker);
}

static void test_zip_bombs(void)
{
    /* a deflated data.pkl claiming 4 GiB (the bytes are a valid deflate stream of zeros) */
    static const uint8_t zeros_deflated[] = {0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2,
                                             0xa0, 0xf7, 0x4f, 0x6d, 0x0e, 0x37, 0xa0, 0x00,
                                             0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    struct zent bomb[1] = {{"archive/data.pkl", zeros_deflated, sizeof zeros_deflated, 8,
                            0xFFFFFFF0u}};
    /* a stored data.pkl whose headers claim more bytes than the file has */
    static const uint8_t pkl[] = "\x80\x02}.";
    struct zent liar[1] = {{"archive/data.pkl", pkl, sizeof pkl - 1, 0, 0x7FFFFFF0u}};
    struct {
        const char * name;
        struct zent * e;
    } cases[2] = {{"zip_bomb.pt", bomb}, {"zip_size_lie.pt", liar}};
    for (int i = 0; i < 2; i++) {
        struct buf b = {0};
        zip_build(cases[i].e, 1, &b);
        const char * path = tpath(cases[i].name);
        write_file(path, b.p, b.n);
        free(b.p);
        long rss0 = peak_rss_mb();
        double t0 = q7_time_now();
        struct q7_ckpt * ck = NULL;
        enum q7_status st = q7_ckpt_load(path, NULL, &ck);
        CHECKF(st != Q7_OK, "%s: loaded", cases[i].name);
        CHECKF(q7_error_message()[0], "%s: no message", cases[i].name);
        CHECKF(q7_time_now() - t0 < 5.0, "%s: took %.1f s", cases[i].name, q7_time_now() - t0);
        CHECKF(peak_rss_mb() - rss0 < MAX_RSS_GROWTH_MB, "%s: peak RSS grew by %ld MB",
               cases[i].name, peak_rss_mb() - rss0);
        q7_ckpt_free(ck);
        const char * args[] = {"info", path, NULL};
        expect_cli_fails(cases[i].name, NULL, args);
    }
}

/* Loads a checkpoint file and, when it loads, builds and fuses its graph: any status is fine,
 * only crashes count (the sanitizers watch). Returns the load status. */
static enum q7_status load_and_build(const char * path)
{
    struct q7_ckpt * ck = NULL;
    enum q7_status st = q7_ckpt_load(path, NULL, &ck);
    if (st == Q7_OK) {
        CHECK(ck != NULL);
        const struct q7_py * m = q7_yolo_find_model(q7_ckpt_root(ck), path);
        struct q7_graph * g = NULL;
        if (m && q7_yolo_build_graph(m, path, &g) == Q7_OK) {
            int n = 0;
            q7_pass_fuse_model(g, &n);
        }
        q7_graph_free(g);
    } else {
        CHECKF(ck == NULL && q7_error_message()[0], "%s: failed without a message", path);
    }
    q7_ckpt_free(ck);
    return st;
}

static uint8_t * read_whole(const char * path, size_t * n)
{
    char * text = NULL;
    if (q7_file_read_all(path, (size_t)64 << 20, &text, n) != Q7_OK)
        return NULL;
    return (uint8_t *)text;
}

static void test_damaged_checkpoints(void)
{
    const char * src = q7t_fixture("family/deploy-yolov7-tiny.pt");
    size_t n = 0;
    uint8_t * orig = src ? read_whole(src, &n) : NULL;
    if (!orig) {
        printf("test_hostile: skipping truncated / bit-flipped checkpoints (no fixture %s)\n",
               src ? src : "family/deploy-yolov7-tiny.pt");
        return;
    }
    const char * path = tpath("damaged.pt");
    CHECK(load_and_build(src) == Q7_OK);

    /* truncated anywhere: the zip directory is at the end, so every cut fails */
    size_t cuts[] = {0, 1, 2, 4, 30, 100, 1000, 4096, n / 4, n / 2, n - 1000, n - 22, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(path, orig, cuts[i]);
        CHECKF(load_and_build(path) != Q7_OK, "checkpoint cut at %zu of %zu bytes loaded",
               cuts[i], n);
    }
    write_file(path, orig, n / 2);
    const char * args[] = {"info", path, NULL};
    expect_cli_fails("truncated checkpoint", NULL, args);

    /* single bit flips anywhere in the file */
    uint64_t seed = 7;
    int loaded = 0;
    uint8_t * copy = malloc(n);
    if (!copy)
        abort();
    for (int k = 0; k < 150; k++) {
        memcpy(copy, orig, n);
        size_t pos = (size_t)(q7t_rand_u64(&seed) % n);
        copy[pos] ^= (uint8_t)(1u << (q7t_rand_u64(&seed) % 8));
        write_file(path, copy, n);
        loaded += load_and_build(path) == Q7_OK;
    }
    printf("test_hostile: 150 bit-flipped checkpoints: %d still loaded (flips in unread "
           "bytes), none crashed\n", loaded);

    /* pickle damage behind valid CRCs: truncated and bit-flipped data.pkl, rezipped */
    struct q7_zip * zip = NULL;
    CHECK_OK(q7_zip_open(orig, n, 1 << 16, &zip));
    if (zip) {
        int ne = q7_zip_count(zip);
        struct zent * e = calloc((size_t)ne, sizeof *e);
        int pk = -1;
        for (int i = 0; i < ne; i++) {
            const struct q7_zip_entry * ze = q7_zip_entry_at(zip, i);
            const uint8_t * d = NULL;
            CHECK_OK(q7_zip_data(zip, ze, 0, &d));
            e[i] = (struct zent){ze->name, d, (size_t)ze->size, 0, 0};
            if (strstr(ze->name, "/data.pkl"))
                pk = i;
        }
        CHECK(pk >= 0);
        const uint8_t * pkl = pk >= 0 ? e[pk].data : NULL;
        size_t pn = pk >= 0 ? e[pk].size : 0;
        uint8_t * bad = malloc(pn + 1);
        int pk_loaded = 0, pk_runs = 0;
        for (int k = 0; pk >= 0 && k < 120; k++) {
            memcpy(bad, pkl, pn);
            size_t len = pn;
            if (k < 20) {
                len = (size_t)(q7t_rand_u64(&seed) % pn); /* truncated pickle */
            } else {
                for (int f = 0; f < 1 + k % 4; f++) {
                    size_t pos = (size_t)(q7t_rand_u64(&seed) % pn);
                    bad[pos] ^= (uint8_t)(1u << (q7t_rand_u64(&seed) % 8));
                }
            }
            e[pk].data = bad;
            e[pk].size = len;
            struct buf b = {0};
            zip_build(e, ne, &b);
            write_file(path, b.p, b.n);
            free(b.p);
            enum q7_status st = load_and_build(path);
            if (k < 20)
                CHECKF(st != Q7_OK, "data.pkl cut at %zu of %zu bytes loaded", len, pn);
            pk_loaded += st == Q7_OK;
            pk_runs++;
        }
        printf("test_hostile: %d damaged data.pkl (valid CRC): %d loaded, none crashed\n",
               pk_runs, pk_loaded);
        free(bad);
        free(e);
        q7_zip_free(zip);
    }
    free(copy);
    free(orig);
}

static void test_npy_input(void)
{
    /* an npy header claiming 2^40 x 2^40 x 3 uint8 with 10 bytes of data */
    struct buf b = {0};
    const char * hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776, "
                       "1099511627776, 3), }";
    size_t hl = strlen(hdr) + 1;
    size_t pad = (64 - (10 + hl) % 64) % 64;
    buf_put(&b, "\x93NUMPY\x01\x00", 8);
    buf_le16(&b, (unsigned)(hl + pad));
    buf_str(&b, hdr);
    for (size_t i = 0; i < pad; i++)
        buf_u8(&b, ' ');
    buf_u8(&b, '\n');
    buf_put(&b, "0123456789", 10);
    const char * path = tpath("huge.npy");
    write_file(path, b.p, b.n);
    struct q7_npy a;
    memset(&a, 0, sizeof a);
    long rss0 = peak_rss_mb();
    CHECK(q7_npy_parse(b.p, b.n, "huge.npy", &a) != Q7_OK);
    CHECK(peak_rss_mb() - rss0 < MAX_RSS_GROWTH_MB);
    q7_npy_free(&a);
    free(b.p);
    const char * w = q7t_fixture("family/deploy-yolov7-tiny.pt");
    if (w && exists(w)) {
        const char * args[] = {"run", "--weights", w, "--input", path, "--output",
                               tpath("out.npy"), NULL};
        expect_cli_fails("huge npy input", "huge.npy", args);
    }
}

/* ---- images ----------------------------------------------------------------------------------- */

static void png_chunk(struct buf * b, const char * type, const uint8_t * d, size_t n)
{
    buf_be32(b, (uint32_t)n);
    size_t at = b->n;
    buf_str(b, type);
    buf_put(b, d, n);
    buf_be32(b, crc32_of(b->p + at, n + 4));
}

static void test_huge_headers(void)
{
    struct buf b = {0};
    buf_put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0};
    uint32_t side = 100000;
    for (int i = 0; i < 2; i++) {
        ihdr[i * 4 + 0] = (uint8_t)(side >> 24);
        ihdr[i * 4 + 1] = (uint8_t)(side >> 16);
        ihdr[i * 4 + 2] = (uint8_t)(side >> 8);
        ihdr[i * 4 + 3] = (uint8_t)side;
    }
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = 2; /* RGB */
    png_chunk(&b, "IHDR", ihdr, sizeof ihdr);
    static const uint8_t idat[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    png_chunk(&b, "IDAT", idat, sizeof idat);
    png_chunk(&b, "IEND", NULL, 0);
    const char * path = tpath("huge.png");
    write_file(path, b.p, b.n);
    free(b.p);

    /* a baseline JPEG frame header of 65500 x 65500 with nothing behind it */
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xDC, 0xFF,
                                  0xDC, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11,
                                  0x01, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F,
                                  0x00, 0x00, 0xFF, 0xD9};
    const char * jpath = tpath("huge.jpg");
    write_file(jpath, jpg, sizeof jpg);

    const char * files[2] = {path, jpath};
    for (int i = 0; i < 2; i++) {
        int64_t h = 0, w = 0;
        CHECK_OK(q7_image_probe(files[i], &h, &w));
        CHECK(h >= 65500 && w >= 65500);
        static const enum q7_decoder decs[3] = {Q7_DECODER_AUTO, Q7_DECODER_STB,
                                                Q7_DECODER_TURBO};
        for (int d = 0; d < 3; d++) {
            if (!q7_decoder_available(decs[d]))
                continue;
            long rss0 = peak_rss_mb();
            struct q7_image img;
            enum q7_status st = q7_image_load(files[i], decs[d], 0, &img);
            CHECKF(st == Q7_ERR_LIMIT, "%s (decoder %d): status %d: %s", files[i], d, st,
                   q7_error_message());
            CHECKF(strstr(q7_error_message(), "pixels") != NULL, "message: %s",
                   q7_error_message());
            CHECK(img.data == NULL);
            CHECK(peak_rss_mb() - rss0 < MAX_RSS_GROWTH_MB);
            q7_image_free(&img);
        }
    }
}

/* A tiny JPEG (h x w) written by q7 itself; returns its bytes. */
static uint8_t * tiny_jpeg(int h, int w, size_t * n)
{
    uint8_t * px = malloc((size_t)h * w * 3);
    for (int i = 0; i < h * w * 3; i++)
        px[i] = (uint8_t)(i * 7);
    struct q7_image img = {.h = h, .w = w, .data = px};
    const char * path = tpath("tiny.jpg");
    CHECK_OK(q7_image_save_jpeg(path, &img, 90, 0));
    free(px);
    return read_whole(path, n);
}

/* The JPEG with an APP1 "Exif" segment holding `tiff` (declared length `seglen`, 0: true). */
static void with_exif(const uint8_t * jpg, size_t n, const uint8_t * tiff, size_t tn,
                      size_t seglen, struct buf * out)
{
    buf_put(out, jpg, 2);
    buf_put(out, "\xFF\xE1", 2);
    buf_be16(out, (unsigned)(seglen ? seglen : 2 + 6 + tn));
    buf_put(out, "Exif\0\0", 6);
    buf_put(out, tiff, tn);
    buf_put(out, jpg + 2, n - 2);
}

/* A little-endian TIFF header, IFD0 at `ifd` with `count` declared and one orientation
 * entry of `type` and value `v`. */
static size_t make_tiff(uint8_t * t, uint32_t ifd, unsigned count, unsigned type, uint32_t v)
{
    struct buf b = {0};
    buf_str(&b, "II");
    buf_le16(&b, 42);
    buf_le32(&b, ifd);
    buf_le16(&b, count);
    buf_le16(&b, 0x112);
    buf_le16(&b, type);
    buf_le32(&b, 1);
    buf_le32(&b, v);
    buf_le32(&b, 0);
    memcpy(t, b.p, b.n);
    size_t n = b.n;
    free(b.p);
    return n;
}

static void test_lying_exif(void)
{
    enum { H = 8, W = 16 };
    size_t n = 0;
    uint8_t * jpg = tiny_jpeg(H, W, &n);
    if (!jpg)
        return;
    struct {
        const char * what;
        uint32_t ifd;
        unsigned count, type;
        uint32_t value;
        int orientation; /* expected */
    } cases[] = {
        {"honest orientation 6", 8, 1, 3, 6, 6},
        {"IFD offset past the block", 0xFFFFFFF0u, 1, 3, 6, 1},
        {"IFD offset inside the header", 2, 1, 3, 6, 1},
        {"65535 entries declared, 1 present", 8, 0xFFFF, 3, 8, 8},
        {"orientation 9", 8, 1, 3, 9, 1},
        {"orientation 0xFFFF", 8, 1, 3, 0xFFFF, 1},
        {"orientation as ASCII", 8, 1, 2, 6, 1},
        {"orientation as LONG 5", 8, 1, 4, 5, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t tiff[64];
        size_t tn = make_tiff(tiff, cases[i].ifd, cases[i].count, cases[i].type, cases[i].value);
        struct buf b = {0};
        with_exif(jpg, n, tiff, tn, 0, &b);
        struct q7_image_info info;
        CHECK_OK(q7_image_probe_memory(b.p, b.n, cases[i].what, &info));
        CHECKF(info.orientation == cases[i].orientation, "%s: orientation %d, expected %d",
               cases[i].what, info.orientation, cases[i].orientation);
        for (int d = 0; d < 3; d++) {
            if (!q7_decoder_available((enum q7_decoder)d))
                continue;
            struct q7_image img;
            enum q7_status st = q7_image_decode_memory(b.p, b.n, cases[i].what,
                                                       (enum q7_decoder)d, 0, &img);
            CHECKF(st == Q7_OK, "%s: %s", cases[i].what, q7_error_message());
            int64_t eh = cases[i].orientation >= 5 ? W : H;
            int64_t ew = cases[i].orientation >= 5 ? H : W;
            CHECKF(st != Q7_OK || (img.h == eh && img.w == ew), "%s: %lldx%lld", cases[i].what,
                   (long long)img.w, (long long)img.h);
            q7_image_free(&img);
        }
        free(b.p);
    }
    /* an APP1 segment whose length runs past the end of the file */
    uint8_t tiff[64];
    size_t tn = make_tiff(tiff, 8, 1, 3, 6);
    struct buf b = {0};
    with_exif(jpg, n, tiff, tn, 0xFFF0, &b);
    const char * path = tpath("cut_exif.jpg");
    write_file(path, b.p, b.n);
    for (int d = 0; d < 3; d++) {
        if (!q7_decoder_available((enum q7_decoder)d))
            continue;
        struct q7_image img;
        enum q7_status st = q7_image_load(path, (enum q7_decoder)d, 0, &img);
        CHECKF(st != Q7_OK && q7_error_message()[0], "cut-off EXIF segment decoded (%d)", d);
        q7_image_free(&img);
    }
    free(b.p);
    free(jpg);
}

/* ---- labels ----------------------------------------------------------------------------------- */

static void test_labels(void)
{
    static const struct {
        const char * text;
        const char * want; /* in the message; NULL: any message naming the file */
    } cases[] = {
        {"0 nan 0.5 0.1 0.1\n", "non-finite"},
        {"0 0.5 0.5 inf 0.1\n", "non-finite"},
        {"0 0.5 0.5 1e400 0.1\n", "non-finite"},
        {"-1 0.5 0.5 0.1 0.1\n", "negative"},
        {"0 -0.5 0.5 0.1 0.1\n", "negative"},
        {"0 0.5 0.5 1e30 0.1\n", NULL},  /* coordinate above 1: yolov7's rule names it */
        {"1e30 0.5 0.5 0.1 0.1\n", NULL}, /* class >= nc */
        {"2.5 0.5 0.5 0.1 0.1\n", NULL},  /* class not a whole number */
        {"0 0.5 0.5 0.1\n", NULL},        /* 4 columns */
        {"0 0.5 0.5 0.1 0.1 0.2\n", NULL}, /* 6 columns */
        {"0 0x1p-2 0.5 0.1 0.1\n", NULL}, /* not a Python float */
        {"0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1 0.1\n", NULL}, /* duplicate row */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float * labels = NULL;
        int nl = 0;
        enum q7_status st = q7_dataset_parse_labels(cases[i].text, strlen(cases[i].text),
                                                    "hostile.txt", 80, &labels, &nl);
        CHECKF(st == Q7_ERR_FORMAT, "label '%.*s' gave status %d", (int)strlen(cases[i].text) - 1,
               cases[i].text, st);
        CHECKF(strstr(q7_error_message(), "hostile.txt") &&
                   (!cases[i].want || strstr(q7_error_message(), cases[i].want)),
               "label '%.*s': message '%s'", (int)strlen(cases[i].text) - 1, cases[i].text,
               q7_error_message());
        CHECK(labels == NULL);
        free(labels);
    }
    /* without a class bound (nc 0) a class must still fit an int exactly */
    {
        static const char huge[] = "1e30 0.5 0.5 0.1 0.1\n";
        float * labels = NULL;
        int nl = 0;
        CHECK(q7_dataset_parse_labels(huge, sizeof huge - 1, "nc0.txt", 0, &labels, &nl) ==
              Q7_ERR_FORMAT);
        CHECKF(strstr(q7_error_message(), "too large") != NULL, "%s", q7_error_message());
        free(labels);
    }
    /* a 1 MB line, a NUL in the middle, nothing but spaces */
    size_t big = 1 << 20;
    char * t = malloc(big);
    memset(t, '1', big);
    float * labels = NULL;
    int nl = 0;
    CHECK(q7_dataset_parse_labels(t, big, "long.txt", 80, &labels, &nl) != Q7_OK);
    free(labels);
    labels = NULL;
    CHECK(q7_dataset_parse_labels("0 0.5\0 0.5 0.1 0.1\n", 19, "nul.txt", 80, &labels, &nl) !=
          Q7_OK);
    free(labels);
    labels = NULL;
    CHECK_OK(q7_dataset_parse_labels("  \n\t\n", 5, "blank.txt", 80, &labels, &nl));
    CHECK(nl == 0);
    free(labels);
    free(t);

    /* a dataset where one label file is hostile: that image is left out, the other kept */
    char d1[1024], d2[1024];
    snprintf(d1, sizeof d1, "%s/ds", g_dir);
    mkdir(d1, 0755);
    snprintf(d1, sizeof d1, "%s/ds/images", g_dir);
    mkdir(d1, 0755);
    snprintf(d2, sizeof d2, "%s/ds/labels", g_dir);
    mkdir(d2, 0755);
    size_t jn = 0;
    uint8_t * jpg = tiny_jpeg(8, 8, &jn);
    write_file(tpath("ds/images/good.jpg"), jpg, jn);
    write_file(tpath("ds/images/evil.jpg"), jpg, jn);
    free(jpg);
    write_file(tpath("ds/labels/good.txt"), "1 0.5 0.5 0.2 0.2\n", 18);
    write_file(tpath("ds/labels/evil.txt"), "1 nan -3 1e999 0.2\n", 19);
    struct q7_dataset * ds = NULL;
    CHECK_OK(q7_dataset_load(tpath("ds/images"), NULL, &ds));
    if (ds) {
        CHECK(ds->n == 1 && ds->n_corrupt == 1);
        CHECK(ds->n == 1 && strstr(ds->items[0].path, "good.jpg") && ds->items[0].n_labels == 1);
    }
    q7_dataset_free(ds);
}

/* ---- yaml ------------------------------------------------------------------------------------- */

static void test_yaml(void)
{
    char marker[1024];
    snprintf(marker, sizeof marker, "%s", tpath("pwned_yaml"));
    char evil[2048];
    snprintf(evil, sizeof evil,
             "nc: !!python/object/apply:os.system ['touch %s']\n"
             "backbone: []\nhead: []\n", marker);
    /* 9 levels of 9 aliases: 387 million leaves if anything expands it */
    struct buf bomb = {0};
    buf_str(&bomb, "a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        char line[256];
        snprintf(line, sizeof line, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                 "*a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        buf_str(&bomb, line);
    }
    buf_str(&bomb, "nc: 80\ndepth_multiple: 1.0\nwidth_multiple: 1.0\nanchors: 3\n"
                   "backbone: [[-1, 1, Conv, [32, 3, 1]]]\nhead: [[-1, 1, Conv, [32, 3, 1]]]\n");
    buf_u8(&bomb, 0);
    static const char wide[] =
        "nc: 80\ndepth_multiple: 1.0\nwidth_multiple: 1.0e+9\nanchors: 3\n"
        "backbone:\n  [[-1, 1, Conv, [64, 3, 1]],\n   [-1, 1, Conv, [64, 3, 2]]]\n"
        "head:\n  [[-1, 1, Conv, [64, 1, 1]]]\n";
    static const char deep_repeat[] =
        "nc: 80\ndepth_multiple: 1.0e+9\nwidth_multiple: 1.0\nanchors: 3\n"
        "backbone:\n  [[-1, 1000000000, Conv, [16, 3, 1]]]\nhead:\n  [[-1, 1, Conv, [16, 1, 1]]]\n";
    /* 64 repeated x2 upsamples: the stride probe would reach 256 * 2^64 pixels a side */
    static const char upsample_tower[] =
        "nc: 4\ndepth_multiple: 1.0\nwidth_multiple: 0.25\nanchors: 3\n"
        "backbone:\n  [[-1, 1, Conv, [32, 3, 2]]]\n"
        "head:\n  [[-1, 64, nn.Upsample, [None, 2, 'nearest']],\n   [-1, 1, Conv, [16, 1, 1]]]\n";
    struct buf deep = {0};
    for (int i = 0; i < 10000; i++)
        buf_u8(&deep, '[');
    buf_u8(&deep, 0);
    struct {
        const char * name;
        const char * text;
    } cases[] = {{"python_tag.yaml", evil},
                 {"alias_bomb.yaml", (const char *)bomb.p},
                 {"wide.yaml", wide},
                 {"repeats.yaml", deep_repeat},
                 {"upsample_tower.yaml", upsample_tower},
                 {"deep.yaml", (const char *)deep.p}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char * path = tpath(cases[i].name);
        write_file(path, cases[i].text, strlen(cases[i].text));
        long rss0 = peak_rss_mb();
        double t0 = q7_time_now();
        struct q7_pyheap * heap = q7_pyheap_create();
        struct q7_cfg_params p = q7_cfg_params_default();
        p.init = Q7_CFG_INIT_SHAPE;
        struct q7_py * model = NULL;
        enum q7_status st = q7_yolo_model_from_yaml(path, &p, heap, &model);
        CHECKF(st != Q7_OK, "%s: built a model", cases[i].name);
        CHECKF(strstr(q7_error_message(), cases[i].name) != NULL, "%s: message '%s'",
               cases[i].name, q7_error_message());
        CHECKF(q7_time_now() - t0 < 10.0, "%s: took %.1f s", cases[i].name, q7_time_now() - t0);
        CHECKF(peak_rss_mb() - rss0 < MAX_RSS_GROWTH_MB, "%s: peak RSS grew by %ld MB",
               cases[i].name, peak_rss_mb() - rss0);
        q7_pyheap_free(heap);
        const char * args[] = {"info", path, NULL};
        expect_cli_fails(cases[i].name, cases[i].name, args);
    }
    CHECKF(!exists(marker), "a yaml tag executed code: %s exists", marker);
    free(bomb.p);
    free(deep.p);
}

static void cleanup_dir(void)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_hostile: could not remove %s\n", g_dir);
}

int main(void)
{
    q7_log_set_level(Q7_LOG_ERROR);
    const char * tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/q7hostile.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!getenv("Q7_BIN"))
        printf("test_hostile: Q7_BIN not set: library checks only\n");

    test_code_execution();
    test_zip_bombs();
    test_damaged_checkpoints();
    test_npy_input();
    test_huge_headers();
    test_lying_exif();
    test_labels();
    test_yaml();

    cleanup_dir();
    return q7t_finish("test_hostile");
}
