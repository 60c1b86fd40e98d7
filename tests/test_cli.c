/* End-to-end tests of the q7 command as a user runs it on the fixtures: every command, its
 * JSON outputs against the reference, and its errors on bad input. */
#include "kernels/kernels.h"
#include "models/npy.h"
#include "tests/test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


static char g_tmp[256];
static const char * g_bin;

/* Runs `q7 <args>`, output to tmp/<name>.log; returns the exit code. */
static int q7(const char * name, const char * args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s >%s/%s.log 2>&1", g_bin, args, g_tmp, name);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char * slurp(const char * name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE * f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char * buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static int log_has(const char * name, const char * needle)
{
    char file[300];
    snprintf(file, sizeof file, "%s.log", name);
    char * s = slurp(file);
    int ok = s && strstr(s, needle);
    if (!ok)
        fprintf(stderr, "  %s.log lacks \"%s\":\n%s\n", name, needle, s ? s : "(none)");
    free(s);
    return ok;
}

static cJSON * tmp_json(const char * name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    struct stat st;
    if (stat(path, &st) != 0) {
        CHECKF(0, "%s was not written", path);
        return NULL;
    }
    return q7t_json_load(path);
}

static double num(const cJSON * o, const char * k)
{
    const cJSON * v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void compare_row(const char * what, const cJSON * got, const cJSON * want, double tol)
{
    const char * keys[4] = {"P", "R", "mAP50", "mAP50_95"};
    for (int k = (tol > 0.01 ? 2 : 0); k < 4; k++) {
        double a = num(got, keys[k]), b = num(want, keys[k]);
        CHECKF(fabs(a - b) <= tol, "%s %s: %.6f, reference %.6f (tolerance %g)", what, keys[k], a,
               b, tol);
    }
}

/* Occurrences of `needle` in tmp/<name>.log. */
static int log_count(const char * name, const char * needle)
{
    char file[300];
    snprintf(file, sizeof file, "%s.log", name);
    char * s = slurp(file);
    int n = 0;
    for (const char * p = s; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(s);
    return n;
}

static void sh(const char * fmt, const char * x, const char * y)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, x, y);
    CHECKF(system(cmd) == 0, "setup failed: %s", cmd);
}

/* An evaluation over a folder as users have them: two good photos with labels, one without a
 * label file, one with a corrupt label file, a file that is not an image, a truncated JPEG
 * and a dangling link. The run goes on with what it can read, names each problem once, and
 * scores the 3 usable images; a truncated checkpoint or a folder with nothing usable fails
 * without touching an existing result file. */
static void test_messy_folder(void)
{
    const char * narrow = q7t_fixture("family/deploy-yolov7-tiny.pt");
    char d[300], a[4096];
    snprintf(d, sizeof d, "%s/messy", g_tmp);
    const char * src = q7t_fixture("yolov7-tiny/data");
    sh("mkdir -p %s/images %s/labels", d, d);
    /* fixture file (below data/) -> name in the messy folder */
    static const char * const copies[][2] = {
        {"images/val/bus.jpg", "images/good1.jpg"},
        {"labels/val/bus.txt", "labels/good1.txt"},
        {"images/val/zidane.jpg", "images/good2.jpg"},
        {"labels/val/zidane.txt", "labels/good2.txt"},
        {"images/val/dog.jpg", "images/nolabel.jpg"},
        {"images/val/image1.jpg", "images/badlabel.jpg"},
    };
    for (size_t i = 0; i < sizeof copies / sizeof copies[0]; i++) {
        snprintf(a, sizeof a, "%s/%s %s/%s", src, copies[i][0], d, copies[i][1]);
        sh("cp %s%s", a, "");
    }
    sh("printf '0 nan 0.5 0.1 0.1\\n' > %s/labels/badlabel.txt%s", d, "");
    sh("printf 'just some text, not a picture' > %s/images/broken.jpg%s", d, "");
    snprintf(a, sizeof a, "%s/images/val/horses.jpg > %s/images/truncated.jpg", src, d);
    sh("head -c 20000 %s", a, "");
    sh("ln -s %s/nowhere.jpg %s/images/gone.jpg", d, d);
    sh("chmod -R u+w %s%s", d, "");

    snprintf(a, sizeof a, "eval --weights %s --data %s/images --img 320 --batch 2 --json %s/m.json",
             narrow, d, g_tmp);
    CHECK(q7("messy", a) == 0);
    static const char * const named[] = {"badlabel.txt", "gone.jpg", "broken.jpg",
                                         "truncated.jpg"};
    for (int i = 0; i < 4; i++)
        CHECKF(log_count("messy", named[i]) == 1, "%s named %d times in messy.log", named[i],
               log_count("messy", named[i]));
    CHECK(log_count("messy", "good1.jpg") == 0 && log_count("messy", "nolabel.jpg") == 0);
    cJSON * j = tmp_json("m.json");
    if (j) {
        CHECKF(num(j, "images") == 3, "messy folder: %g images scored, expected 3",
               num(j, "images"));
        cJSON_Delete(j);
    }
    /* a truncated checkpoint: exit 1, the file name said, m.json untouched */
    char * before = slurp("m.json");
    snprintf(a, sizeof a, "%s > %s/cut.pt", narrow, g_tmp);
    sh("head -c 30000 %s%s", a, "");
    snprintf(a, sizeof a, "eval --weights %s/cut.pt --data %s/images --img 320 --json %s/m.json",
             g_tmp, d, g_tmp);
    CHECK(q7("messy_cut", a) == 1);
    CHECK(log_has("messy_cut", "cut.pt"));
    /* nothing usable: exit 1, m.json untouched */
    char junk[400];
    snprintf(junk, sizeof junk, "%s/junk/images", g_tmp);
    sh("mkdir -p %s%s", junk, "");
    sh("cp %s/images/broken.jpg %s/", d, junk);
    sh("cp %s/images/truncated.jpg %s/", d, junk);
    snprintf(a, sizeof a, "eval --weights %s --data %s --img 320 --json %s/m.json", narrow, junk,
             g_tmp);
    CHECK(q7("messy_none", a) == 1);
    char * after = slurp("m.json");
    CHECK(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);
}

/* ref/amax.json (one method) against q7's, in bins of the reference histogram for inputs and
 * relative for weights; returns the worst input distance in bins. */
static double amax_bins(const cJSON * got, const cJSON * ref, const cJSON * hist, double * w_rel)
{
    double worst = 0;
    const cJSON * r;
    cJSON_ArrayForEach(r, ref)
    {
        const cJSON * g = cJSON_GetObjectItem(got, r->string);
        CHECKF(g != NULL, "%s missing", r->string);
        if (!g)
            continue;
        if (cJSON_IsArray(r)) {
            for (int k = 0; k < cJSON_GetArraySize(r); k++) {
                double a = cJSON_GetArrayItem(g, k) ? cJSON_GetArrayItem(g, k)->valuedouble : -1;
                double b = cJSON_GetArrayItem(r, k)->valuedouble;
                double d = fabs(a - b) / (fabs(b) > 0 ? fabs(b) : 1);
                *w_rel = d > *w_rel ? d : *w_rel;
            }
            continue;
        }
        const cJSON * h = cJSON_GetObjectItem(hist, r->string);
        double bw = h ? num(h, "edge_max") / num(h, "num_bins") : 0;
        CHECKF(bw > 0, "%s: no reference histogram", r->string);
        double d = bw > 0 ? fabs(g->valuedouble - r->valuedouble) / bw : 1e9;
        worst = d > worst ? d : worst;
    }
    return worst;
}

static void test_from_hist(const char * tiny)
{
    char a[2048], path[512];
    snprintf(a, sizeof a, "calib --weights %s/model.pt --from-hist %s/ref/histograms.json "
             "--all-methods -o %s/from_hist.json", tiny, tiny, g_tmp);
    CHECK(q7("from_hist", a) == 0);
    cJSON * got = tmp_json("from_hist.json");
    snprintf(path, sizeof path, "%s/ref/amax.json", tiny);
    cJSON * ref = q7t_json_load(path);
    snprintf(path, sizeof path, "%s/ref/histograms.json", tiny);
    cJSON * hist = q7t_json_load(path);
    CHECK(got && ref && hist && !cJSON_GetObjectItem(got, "max"));
    const char * methods[] = {"entropy", "mse", "percentile-99.9", "percentile-99.99"};
    for (int m = 0; got && ref && hist && m < 4; m++) {
        double w_rel = 0;
        double bins = amax_bins(cJSON_GetObjectItem(got, methods[m]),
                                cJSON_GetObjectItem(ref, methods[m]), hist, &w_rel);
        CHECKF(bins <= 0.5 && w_rel <= 1e-6, "--from-hist %s: inputs %.3f bins, weights %.2e",
               methods[m], bins, w_rel);
        printf("calib --from-hist ref/histograms.json, %-16s: inputs within %.3f bins, weights "
               "%.1e relative\n", methods[m], bins, w_rel);
    }
    cJSON_Delete(got);
    cJSON_Delete(ref);
    cJSON_Delete(hist);
    /* round trip: --save-hist then --from-hist gives the calibration run's amax file byte
     * for byte (the calib block above wrote calib.json and hist.json) */
    snprintf(a, sizeof a, "calib --weights %s/model.pt --from-hist %s/hist.json --method "
             "percentile --percentile 99.9 -o %s/calib_again.json", tiny, g_tmp, g_tmp);
    CHECK(q7("from_hist_again", a) == 0);
    char * once = slurp("calib.json");
    char * again = slurp("calib_again.json");
    CHECKF(once && again && strcmp(once, again) == 0,
           "--save-hist + --from-hist: amax differs from the calibration run's");
    free(once);
    free(again);
    snprintf(a, sizeof a, "calib --weights %s/family/training-yolov7.pt --from-hist "
             "%s/ref/histograms.json -o %s/x.json", q7t_fixtures(), tiny, g_tmp);
    CHECK(q7("from_hist_other", a) == 1);
    CHECK(log_has("from_hist_other", "histograms.json"));
    snprintf(a, sizeof a, "calib --weights %s/model.pt --from-hist %s/ref/histograms.json "
             "--method max -o %s/x.json", tiny, tiny, g_tmp);
    CHECK(q7("from_hist_max", a) == 1);
    CHECK(log_has("from_hist_max", "keeps no max"));
    /* q7's own files keep each quantizer's max |x|: every method, max included, comes back
     * byte for byte from one calibration batch */
    snprintf(a, sizeof a, "calib --weights %s/model.pt --data %s/data/val.txt --batch 2 "
             "--calib-batches 1 --all-methods -o %s/all_once.json --save-hist %s/hist_all.json",
             tiny, tiny, g_tmp, g_tmp);
    CHECK(q7("calib_all", a) == 0);
    snprintf(a, sizeof a, "calib --weights %s/model.pt --from-hist %s/hist_all.json "
             "--all-methods -o %s/all_again.json", tiny, g_tmp, g_tmp);
    CHECK(q7("from_hist_all", a) == 0);
    once = slurp("all_once.json");
    again = slurp("all_again.json");
    CHECKF(once && again && strcmp(once, again) == 0 && strstr(again, "\"max\""),
           "--save-hist + --from-hist --all-methods: amax differs from the calibration run's");
    free(once);
    free(again);
}

/* tools/main-job.sh as the README runs it on a user's own data: paths relative to the caller's
 * directory (not the repository's), table.json and amax.json written there. */
/* run --dump-tensors: every top-level layer's output as float32 NCHW, the same values the
 * statistics of --dump-layers were taken from (their sums in double and element order agree
 * to the 15-17 digits cJSON prints). */
static void test_dump_tensors(const char * tiny)
{
    char a[4096], dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/tensors", g_tmp);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(a, sizeof a, "run --weights %s/model.pt --input %s/ref/input_horses.npy --fused "
             "--dump-layers %s/layers_t.json --dump-tensors %s", tiny, tiny, g_tmp, dir);
    CHECK(q7("run_tensors", a) == 0);
    cJSON * j = tmp_json("layers_t.json");
    const cJSON * layers = cJSON_GetObjectItem(j, "layers"), * l;
    int n = 0;
    cJSON_ArrayForEach(l, layers) {
        snprintf(path, sizeof path, "%s/layer_%d.npy", dir, (int)num(l, "layer"));
        struct q7_npy t = {0};
        if (q7_npy_load(path, &t) != Q7_OK) {
            CHECKF(0, "%s: %s", path, q7_error_message());
            continue;
        }
        const cJSON * shape = cJSON_GetObjectItem(l, "shape");
        int same = t.ndim == 4 && t.dtype == Q7_DTYPE_F32;
        for (int k = 0; same && k < 4; k++)
            same = t.shape[k] == (int64_t)cJSON_GetArrayItem(shape, k)->valuedouble;
        double sum = 0.0;
        for (int64_t i = 0; same && i < q7_npy_numel(&t); i++)
            sum += ((const float *)t.data)[i];
        CHECKF(same && fabs(sum - num(l, "sum")) <= 1e-13 * fabs(sum), "%s: shape or sum "
               "(%.17g) differs from --dump-layers (%.17g)", path, sum, num(l, "sum"));
        q7_npy_free(&t);
        n++;
    }
    CHECK(n == 77);
    cJSON_Delete(j);
    snprintf(a, sizeof a, "run --weights %s/model.pt --input %s/ref/input_horses.npy "
             "--dump-tensors %s/no/such/dir", tiny, tiny, g_tmp);
    CHECK(q7("run_tensors_bad", a) == 1);
    CHECK(log_has("run_tensors_bad", "no/such/dir/layer_0.npy"));
}

/* q7 table on yolov7 (the larger fixture): every row of ref/table.json within the fixture's
 * tolerances (origin and fused 0.002, fake-INT8 mAP 0.05). With q7's PyTorch-exact CPU
 * arithmetic the rows agree to ~1e-5 (the origin row, whose BatchNorm is not PyTorch's
 * sequence of operations) and ~1e-8 (the others); the worst difference is printed. */
static void test_table_yolov7(void)
{
    const char * dir = q7t_fixture("yolov7");
    char a[4096], path[400];
    snprintf(a, sizeof a, "table --weights %s/model.pt --data %s/data/val.txt --batch 2 "
             "--decoder turbo --json %s/table7.json", dir, dir, g_tmp);
    CHECK(q7("table7", a) == 0);
    cJSON * j = tmp_json("table7.json");
    snprintf(path, sizeof path, "%s/ref/table.json", dir);
    cJSON * ref = q7t_json_load(path);
    const cJSON * rows = cJSON_GetObjectItem(j, "table"), * row;
    const char * keys[4] = {"P", "R", "mAP50", "mAP50_95"};
    double worst = 0.0;
    int n = 0;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(ref, "table")) {
        const cJSON * got = cJSON_GetObjectItem(rows, row->string);
        CHECKF(got != NULL, "yolov7 table row %s missing", row->string);
        if (!got)
            continue;
        compare_row(row->string, got, row, strncmp(row->string, "qdq", 3) == 0 ? 0.05 : 0.002);
        for (int k = 0; k < 4; k++)
            worst = fmax(worst, fabs(num(got, keys[k]) - num(row, keys[k])));
        n++;
    }
    CHECK(n == 7);
    printf("  yolov7 table: %d rows, worst difference from ref/table.json %.2g\n", n, worst);
    cJSON_Delete(j);
    cJSON_Delete(ref);
}

static void test_main_job(const char * tiny)
{
    const char * src = getenv("Q7_SOURCE_ROOT");
    if (!src) {
        printf("  main-job.sh: skipped (Q7_SOURCE_ROOT is not set)\n");
        return;
    }
    char d[300], cmd[8192];
    snprintf(d, sizeof d, "%s/mainjob", g_tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cd %s && ln -sfn %s fx && Q7=%s %s/tools/main-job.sh "
             "fx/model.pt fx/data/val.txt --batch 2 --methods mse >%s/main_job.log 2>&1", d, d,
             tiny, g_bin, src, g_tmp);
    int rc = system(cmd);
    CHECKF(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "main-job.sh failed: see %s/main_job.log",
           g_tmp);
    CHECK(log_has("main_job", "qdq-mse"));
    char path[400];
    struct stat st;
    snprintf(path, sizeof path, "%s/amax.json", d);
    CHECKF(stat(path, &st) == 0 && st.st_size > 0, "%s was not written", path);
    snprintf(path, sizeof path, "%s/table.json", d);
    if (stat(path, &st) != 0) {
        CHECKF(0, "%s was not written", path);
        return;
    }
    cJSON * j = q7t_json_load(path);
    snprintf(path, sizeof path, "%s/ref/table.json", tiny);
    cJSON * ref = q7t_json_load(path);
    const cJSON * rows = cJSON_GetObjectItem(j, "table");
    const cJSON * want = cJSON_GetObjectItem(ref, "table");
    CHECK(cJSON_GetArraySize(rows) == 3);
    const cJSON * origin = cJSON_GetObjectItem(rows, "origin");
    CHECK(origin != NULL);
    if (origin)
        compare_row("main-job origin", origin, cJSON_GetObjectItem(want, "origin"), 0.002);
    cJSON_Delete(j);
    cJSON_Delete(ref);
}

int main(void)
{
    g_bin = getenv("Q7_BIN");
    if (!g_bin) {
        printf("SKIP: Q7_BIN is not set (run through meson test)\n");
        return Q7_TEST_SKIP;
    }
    const char * tiny = q7t_fixture("yolov7-tiny");
    q7t_require(tiny);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/q7_test_cli_XXXXXX");
    if (!mkdtemp(g_tmp))
        return 1;
    char a[4096];

    /* info: the summary line and JSON */
    snprintf(a, sizeof a, "info %s/model.pt --json %s/info.json", tiny, g_tmp);
    CHECK(q7("info", a) == 0);
    CHECK(log_has("info", "Model Summary: 78 layers, 6228762 parameters"));
    cJSON * j = tmp_json("info.json");
    if (j) {
        CHECK(num(j, "params") == 6228762);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")) == 344);
        cJSON_Delete(j);
    }
    snprintf(a, sizeof a, "info %s/family/cfg/training/yolov7-e6e.yaml", q7t_fixtures());
    CHECK(q7("info_cfg", a) == 0);
    CHECK(log_has("info_cfg", "266 layers, 166408884 parameters"));

    /* run: the raw output of the fixture input */
    snprintf(a, sizeof a, "run --weights %s/model.pt --input %s/ref/input_horses.npy --output "
             "%s/raw.npy --fused --dump-layers %s/layers.json", tiny, tiny, g_tmp, g_tmp);
    CHECK(q7("run", a) == 0);
    j = tmp_json("layers.json");
    if (j) {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "layers")) == 77);
        /* max |x| lies between the RMS and the L2 norm */
        const cJSON * l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItem(j, "layers")) {
            const cJSON * shape = cJSON_GetObjectItem(l, "shape");
            double n = 1, l2 = num(l, "l2"), mx = num(l, "abs_max");
            for (int k = 0; k < cJSON_GetArraySize(shape); k++)
                n *= cJSON_GetArrayItem(shape, k)->valuedouble;
            CHECKF(mx > 0 && mx <= l2 * (1 + 1e-9) && mx >= l2 / sqrt(n) * (1 - 1e-9),
                   "layer %g: abs_max %g, l2 %g, %g elements", num(l, "layer"), mx, l2, n);
        }
        cJSON_Delete(j);
    }

    /* eval: the origin row within the end-to-end tolerance, with COCO stats */
    snprintf(a, sizeof a, "eval --weights %s/model.pt --data %s/data/val.txt --batch 2 --json "
             "%s/eval.json --save-json %s/dets.json --decoder turbo", tiny, tiny, g_tmp, g_tmp);
    CHECK(q7("eval", a) == 0);
    CHECK(log_has("eval", "mAP@.5:.95"));
    snprintf(a, sizeof a, "%s/ref/table.json", tiny);
    cJSON * ref = q7t_json_load(a);
    const cJSON * table = cJSON_GetObjectItem(ref, "table");
    j = tmp_json("eval.json");
    if (j) {
        compare_row("eval origin", j, cJSON_GetObjectItem(table, "origin"), 0.002);
        const cJSON * cs = cJSON_GetObjectItem(j, "coco_stats");
        const cJSON * rcs = cJSON_GetObjectItem(cJSON_GetObjectItem(table, "origin"),
                                                "coco_stats");
        CHECK(cJSON_GetArraySize(cs) == 12);
        for (int k = 0; k < 12 && k < cJSON_GetArraySize(cs); k++)
            CHECK(fabs(cJSON_GetArrayItem(cs, k)->valuedouble -
                       cJSON_GetArrayItem(rcs, k)->valuedouble) <= 0.002);
        cJSON_Delete(j);
    }
    j = tmp_json("dets.json");
    CHECK(j && cJSON_IsArray(j) && cJSON_GetArraySize(j) > 0);
    cJSON_Delete(j);

    /* eval with the reference's mse amax: the fake-INT8 row within 0.05 */
    snprintf(a, sizeof a, "eval --weights %s/model.pt --data %s/data/val.txt --batch 2 --amax "
             "%s/ref/amax.json --method mse --json %s/eval_q.json", tiny, tiny, tiny, g_tmp);
    CHECK(q7("eval_q", a) == 0);
    j = tmp_json("eval_q.json");
    if (j) {
        compare_row("eval --amax mse", j, cJSON_GetObjectItem(table, "qdq-mse"), 0.05);
        cJSON_Delete(j);
    }

    /* table: every row against ref/table.json */
    snprintf(a, sizeof a, "table --weights %s/model.pt --data %s/data/val.txt --batch 2 --json "
             "%s/table.json --save-amax %s/amax.json", tiny, tiny, g_tmp, g_tmp);
    CHECK(q7("table", a) == 0);
    j = tmp_json("table.json");
    if (j) {
        const cJSON * rows = cJSON_GetObjectItem(j, "table");
        const cJSON * row;
        int n = 0;
        cJSON_ArrayForEach(row, table)
        {
            const cJSON * got = cJSON_GetObjectItem(rows, row->string);
            CHECKF(got != NULL, "table row %s missing", row->string);
            if (got)
                compare_row(row->string, got, row,
                            strncmp(row->string, "qdq", 3) == 0 ? 0.05 : 0.002);
            n++;
        }
        CHECK(n == 7);
        cJSON_Delete(j);
    }
    j = tmp_json("amax.json");
    CHECK(j && cJSON_GetObjectItem(j, "entropy") && cJSON_GetObjectItem(j, "percentile-99.99"));
    cJSON_Delete(j);

    /* calib: amax table, histograms, TensorRT cache, plot */
    snprintf(a, sizeof a, "calib --weights %s/model.pt --data %s/data/val.txt --batch 2 "
             "--method percentile --percentile 99.9 -o %s/calib.json --save-hist %s/hist.json "
             "--trt-cache %s/trt.cache --plot model.2.conv._input_quantizer --plot-out "
             "%s/plot.svg", tiny, tiny, g_tmp, g_tmp, g_tmp, g_tmp);
    CHECK(q7("calib", a) == 0);
    j = tmp_json("calib.json");
    CHECK(j && cJSON_GetArraySize(j) == 116);
    cJSON_Delete(j);
    char * cache = slurp("trt.cache");
    CHECK(cache && strncmp(cache, "TRT-", 4) == 0 && strstr(cache, "model.0.conv"));
    free(cache);
    char * svg = slurp("plot.svg");
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "entropy"));
    free(svg);

    /* calib --from-hist: the reference's own histograms give its amax (same bin), without a
     * calibration pass; a file of another model is refused by name */
    test_from_hist(tiny);

    /* sens, detect, bench, export */
    snprintf(a, sizeof a, "sens --weights %s/model.pt --data %s/data/val.txt --batch 2 "
             "--calib-batches 1 --top 3 --json %s/sens.json", tiny, tiny, g_tmp);
    CHECK(q7("sens", a) == 0);
    j = tmp_json("sens.json");
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "layers")) == 58);
    cJSON_Delete(j);
    snprintf(a, sizeof a, "detect --weights %s/model.pt --conf 0.01 -o %s/det "
             "%s/data/images/val/zidane.jpg", tiny, g_tmp, tiny);
    CHECK(q7("detect", a) == 0);
    CHECK(log_has("detect", "detections"));
    char det[512];
    snprintf(det, sizeof det, "%s/det/zidane.jpg", g_tmp);
    struct stat sb;
    CHECK(stat(det, &sb) == 0 && sb.st_size > 1000);
    snprintf(a, sizeof a, "bench --weights %s/model.pt --img 320 --iters 1 --json %s/bench.json",
             tiny, g_tmp);
    CHECK(q7("bench", a) == 0);
    CHECK(log_has("bench", "images/s"));
    /* the header says when the kernels in use do PyTorch's arithmetic (same library here) */
    CHECK((log_count("bench", "(PyTorch's FP32 arithmetic)") > 0) == q7_cpu_matches_pytorch());
    /* other CPU kernels on request (the portable ones never claim PyTorch's arithmetic); an
     * unknown one is refused */
    snprintf(a, sizeof a, "bench --weights %s/model.pt --img 64 --iters 1 --cpu-isa generic",
             tiny);
    CHECK(q7("bench_generic", a) == 0);
    CHECK(log_has("bench_generic", "generic kernels, packed conv, "));
    snprintf(a, sizeof a, "bench --weights %s/model.pt --img 64 --iters 1 --cpu-isa sse9", tiny);
    CHECK(q7("bench_bad_isa", a) == 1);
    CHECK(log_has("bench_bad_isa", "--cpu-isa sse9"));
    snprintf(a, sizeof a, "export --weights %s/model.pt --fused -o %s/graph.json", tiny, g_tmp);
    CHECK(q7("export", a) == 0);
    j = tmp_json("graph.json");
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "nodes")) > 50);
    cJSON_Delete(j);

    /* ONNX export, FP32 and with Q/DQ pairs from an amax table */
    snprintf(a, sizeof a, "export --weights %s/model.pt --fused -o %s/model.onnx --img 320", tiny,
             g_tmp);
    int onnx_rc = q7("onnx", a);
    if (onnx_rc == 0) {
        snprintf(det, sizeof det, "%s/model.onnx", g_tmp);
        CHECK(stat(det, &sb) == 0 && sb.st_size > 20000000);
        snprintf(a, sizeof a, "export --weights %s/model.pt -o %s/qdq.onnx --amax "
                 "%s/ref/amax.json --method mse", tiny, g_tmp, tiny);
        CHECK(q7("onnx_qdq", a) == 0);
        char * q = slurp("qdq.onnx");
        CHECK(q && memmem(q, 1 << 20, "QuantizeLinear", 14) != NULL);
        free(q);
    } else {
        CHECK(log_has("onnx", "without protobuf-c"));
    }
    /* q7 run with an amax table: the fake-INT8 raw output */
    snprintf(a, sizeof a, "run --weights %s/model.pt --amax %s/ref/amax.json --method mse "
             "--input %s/ref/input_horses.npy --output %s/rawq.npy", tiny, tiny, tiny, g_tmp);
    CHECK(q7("run_q", a) == 0);

    test_messy_folder();
    test_main_job(tiny);
    test_dump_tensors(tiny);
    test_table_yolov7();

    /* bad input: clear messages, nonzero exits, nothing written */
    CHECK(q7("bad_cmd", "frobnicate") == 2);
    snprintf(a, sizeof a, "info %s/nope.pt", g_tmp);
    CHECK(q7("bad_file", a) == 1);
    CHECK(log_has("bad_file", "nope.pt"));
    snprintf(a, sizeof a, "run --weights %s/model.pt --input %s/data/val.txt", tiny, tiny);
    CHECK(q7("bad_npy", a) == 1);
    CHECK(log_has("bad_npy", "val.txt"));
    snprintf(a, sizeof a, "eval --weights %s/model.pt --data %s/data/val.txt --batch 0", tiny,
             tiny);
    CHECK(q7("bad_batch", a) == 2);
    snprintf(a, sizeof a, "table --weights %s/model.pt --data %s/data/val.txt --methods foo",
             tiny, tiny);
    CHECK(q7("bad_method", a) == 1);
    CHECK(log_has("bad_method", "foo"));

    cJSON_Delete(ref);
    snprintf(a, sizeof a, "rm -rf %s", g_tmp);
    if (system(a) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    return q7t_finish("test_cli");
}
