/* Quantizer descriptors: creation, amax, enable/disable by regular expression, fake
 * quantization (kernels/ref/fake_quant.h is the specification), calibration hooks. */
#include "quant/quant.h"

#include "kernels/ref/fake_quant.h"

#include <float.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

/* _tensor_quant treats amax <= 2^-24 as zero: the whole tensor (channel) quantizes to 0. */
#define AMAX_EPSILON (1.0f / 16777216.0f)

struct q7_quant_params q7_quant_params_input(void)
{
    return (struct q7_quant_params){.num_bits = 8,
                                    .is_unsigned = 0,
                                    .narrow_range = 1,
                                    .axis = -1,
                                    .calibrators = Q7_CALIBRATOR_MAX | Q7_CALIBRATOR_HIST,
                                    .num_bins = Q7_HIST_DEFAULT_BINS};
}

struct q7_quant_params q7_quant_params_weight(void)
{
    return (struct q7_quant_params){.num_bits = 8,
                                    .is_unsigned = 0,
                                    .narrow_range = 1,
                                    .axis = 0,
                                    .calibrators = Q7_CALIBRATOR_MAX,
                                    .num_bins = Q7_HIST_DEFAULT_BINS};
}

struct q7_quantizer * q7_quant_create(const char * name, const struct q7_quant_params * p)
{
    if (!name || !p || p->num_bits < 1 || p->num_bits > 16 || (p->axis != -1 && p->axis != 0) ||
        (p->calibrators & ~(Q7_CALIBRATOR_MAX | Q7_CALIBRATOR_HIST)) ||
        (p->axis == 0 && (p->calibrators & Q7_CALIBRATOR_HIST))) {
        q7_error_set(Q7_ERR_ARG, "%s: bad quantizer parameters (histograms are per tensor only)",
                     name ? name : "quantizer");
        return NULL;
    }
    struct q7_quantizer * q = calloc(1, sizeof *q);
    if (!q)
        goto oom;
    q->name = strdup(name);
    if (!q->name)
        goto oom;
    q->num_bits = p->num_bits;
    q->is_unsigned = p->is_unsigned != 0;
    q->narrow_range = p->narrow_range != 0;
    q->axis = p->axis;
    q->enabled = 1;
    q->calibrators = p->calibrators;
    if (p->calibrators & Q7_CALIBRATOR_MAX) {
        q->calib_max = q7_calib_max_create();
        if (!q->calib_max)
            goto oom;
    }
    if (p->calibrators & Q7_CALIBRATOR_HIST) {
        q->calib_hist = q7_calib_hist_create(p->num_bins);
        if (!q->calib_hist) {
            q7_quant_free(q);
            return NULL; /* message set (limit or OOM) */
        }
    }
    return q;
oom:
    q7_quant_free(q);
    q7_error_set(Q7_ERR_OOM, "%s: out of memory", name);
    return NULL;
}

void q7_quant_free(struct q7_quantizer * q)
{
    if (!q)
        return;
    free(q->name);
    free(q->amax);
    q7_calib_max_free(q->calib_max);
    q7_calib_hist_free(q->calib_hist);
    free(q);
}

enum q7_status q7_quant_set_amax(struct q7_quantizer * q, const float * amax, int n)
{
    if (!q || !amax || n < 1)
        return q7_error_set(Q7_ERR_ARG, "%s: bad amax", q ? q->name : "quantizer");
    if (q->axis == -1 && n != 1)
        return q7_error_set(Q7_ERR_ARG, "%s: per-tensor quantizer given %d amax values", q->name,
                            n);
    for (int i = 0; i < n; i++)
        if (!(amax[i] >= 0.0f && amax[i] <= FLT_MAX))
            return q7_error_set(Q7_ERR_ARG, "%s: amax[%d] = %g is not finite and >= 0", q->name,
                                i, (double)amax[i]);
    float * v = malloc((size_t)n * sizeof *v);
    if (!v)
        return q7_error_set(Q7_ERR_OOM, "%s: out of memory", q->name);
    memcpy(v, amax, (size_t)n * sizeof *v);
    free(q->amax);
    q->amax = v;
    q->n_amax = n;
    return Q7_OK;
}

void q7_quant_clear_amax(struct q7_quantizer * q)
{
    if (!q)
        return;
    free(q->amax);
    q->amax = NULL;
    q->n_amax = 0;
}

void q7_quant_set_enabled(struct q7_quantizer * q, int enabled)
{
    if (q)
        q->enabled = enabled != 0;
}

void q7_quant_set_calibrating(struct q7_quantizer * q, int calibrating)
{
    if (q)
        q->calibrating = calibrating != 0;
}

enum q7_status q7_quant_set_enabled_matching(struct q7_quantizer ** qs, int n,
                                             const char * regex, int enabled, int * n_matched)
{
    if (n_matched)
        *n_matched = 0;
    if (!regex || (n > 0 && !qs))
        return q7_error_set(Q7_ERR_ARG, "quantizer match: NULL");
    regex_t re;
    int rc = regcomp(&re, regex, REG_EXTENDED);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &re, msg, sizeof msg);
        return q7_error_set(Q7_ERR_ARG, "%s: bad regular expression: %s", regex, msg);
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (!qs[i] || !qs[i]->name)
            continue;
        regmatch_t m;
        /* re.match: a match that starts at the beginning (POSIX finds the leftmost match, so
         * one exists at 0 exactly when the leftmost starts there) */
        int hit = strcmp(qs[i]->name, regex) == 0 ||
                  (regexec(&re, qs[i]->name, 1, &m, 0) == 0 && m.rm_so == 0);
        if (hit) {
            qs[i]->enabled = enabled != 0;
            count++;
        }
    }
    regfree(&re);
    if (n_matched)
        *n_matched = count;
    return Q7_OK;
}

int q7_quant_is_active(const struct q7_quantizer * q)
{
    return q && q->enabled && !q->calibrating && q->n_amax > 0 && q->amax;
}

/* ---- fake quantization ---- */

/* The reference's scale with its epsilon rule (0: everything becomes 0). */
static float fq_scale(float amax, float max_bound)
{
    return amax <= AMAX_EPSILON ? 0.0f : max_bound / amax;
}

float q7_quant_input_scale(const struct q7_quantizer * q, int * on)
{
    const int active = q7_quant_is_active(q) && q->axis == -1 && q->n_amax == 1;
    if (on)
        *on = active;
    return active ? fq_scale(q->amax[0], Q7_FQ_MAX_BOUND) : 0.0f;
}

static int is_spec_format(const struct q7_quantizer * q)
{
    return q->num_bits == 8 && !q->is_unsigned && q->narrow_range;
}

/* General bounds (unsigned, other widths, full range), same float operations as
 * _tensor_quant: clamp(round(x * scale), min, max) / scale. */
static void fq_general(const struct q7_quantizer * q, const float * x, float * y, int64_t n,
                       float amax)
{
    const float max_bound = (float)((1 << (q->num_bits - 1 + q->is_unsigned)) - 1);
    const float min_bound = q->is_unsigned ? 0.0f : q->narrow_range ? -max_bound : -max_bound - 1;
    const float scale = fq_scale(amax, max_bound);
    for (int64_t i = 0; i < n; i++) {
        if (scale == 0.0f) {
            y[i] = 0.0f;
            continue;
        }
        float v = nearbyintf(x[i] * scale);
        v = v < min_bound ? min_bound : v > max_bound ? max_bound : v;
        y[i] = v / scale;
    }
}

static void fq_spec(const float * x, float * y, int64_t n, float amax)
{
    const float scale = fq_scale(amax, Q7_FQ_MAX_BOUND);
    for (int64_t i = 0; i < n; i++)
        y[i] = q7_fq_apply(x[i], scale);
}

enum q7_status q7_quant_fake(const struct q7_quantizer * q, const float * x, float * y,
                             int64_t n)
{
    if (!q || (!x && n > 0) || (!y && n > 0) || n < 0)
        return q7_error_set(Q7_ERR_ARG, "fake quant: bad arguments");
    if (q->n_amax <= 0 || !q->amax)
        return q7_error_set(Q7_ERR_ARG, "%s: not calibrated", q->name);
    int64_t ch = q->n_amax;
    if (n % ch != 0)
        return q7_error_set(Q7_ERR_ARG, "%s: %lld values do not split into %lld channels",
                            q->name, (long long)n, (long long)ch);
    int64_t per = n / ch;
    for (int64_t c = 0; c < ch; c++) {
        if (is_spec_format(q))
            fq_spec(x + c * per, y + c * per, per, q->amax[c]);
        else
            fq_general(q, x + c * per, y + c * per, per, q->amax[c]);
    }
    return Q7_OK;
}

void q7_quant_weights(const float * w, int64_t out_ch, int64_t per_ch, const float * amax,
                      float * out)
{
    for (int64_t c = 0; c < out_ch; c++)
        fq_spec(w + c * per_ch, out + c * per_ch, per_ch, amax[c]);
}

/* ---- calibration ---- */

enum q7_status q7_quant_collect(struct q7_quantizer * q, const float * x, int64_t n_channels,
                                int64_t per_channel)
{
    if (!q || n_channels < 1 || per_channel < 0)
        return q7_error_set(Q7_ERR_ARG, "collect: bad arguments");
    if (!q->calibrating)
        return Q7_OK;
    size_t total;
    if (!q7_size_mul((size_t)n_channels, (size_t)per_channel, &total))
        return q7_error_set(Q7_ERR_LIMIT, "%s: tensor too large", q->name);
    enum q7_status st = Q7_OK;
    if (q->calib_max) {
        if (q->axis == 0)
            st = q7_calib_max_collect(q->calib_max, x, n_channels, per_channel);
        else
            st = q7_calib_max_collect(q->calib_max, x, 1, (int64_t)total);
    }
    if (!st && q->calib_hist)
        st = q7_calib_hist_collect(q->calib_hist, x, (int64_t)total);
    return st ? q7_error_wrap(st, "%s", q->name) : Q7_OK;
}

enum q7_status q7_quant_load_calib_amax(struct q7_quantizer * q, enum q7_calib_method method,
                                        const struct q7_amax_params * p)
{
    if (!q)
        return q7_error_set(Q7_ERR_ARG, "load amax: NULL");
    int use_max = method == Q7_CALIB_MAX || (q->calib_max && !q->calib_hist);
    if (use_max) {
        int64_t n = 0;
        const float * a = q7_calib_max_amax(q->calib_max, &n);
        if (!a)
            return q7_error_set(Q7_ERR_ARG, "%s: no max calibration data", q->name);
        if (n > INT32_MAX)
            return q7_error_set(Q7_ERR_LIMIT, "%s: too many channels", q->name);
        return q7_quant_set_amax(q, a, (int)n);
    }
    if (!q->calib_hist || !q7_calib_hist_num_bins(q->calib_hist))
        return q7_error_set(Q7_ERR_ARG, "%s: no histogram collected", q->name);
    struct q7_amax_params dp = q7_amax_params_default();
    if (!p) {
        dp.num_bits = q->num_bits;
        dp.is_unsigned = q->is_unsigned;
        p = &dp;
    }
    float amax = 0.0f;
    enum q7_status st = q7_amax_from_hist(q->calib_hist, method, p, &amax);
    if (st)
        return q7_error_wrap(st, "%s", q->name);
    return q7_quant_set_amax(q, &amax, 1);
}
