/* Picks the micro-kernel table for this machine: AVX-512F, else AVX2 + FMA, else portable C.
 * Chosen once; tests may force another (q7_cpu_isa_force). */
#include "kernels/cpu/cpu_impl.h"

#include <pthread.h>
#include <string.h>

static const struct q7_cpu_ops * g_auto;
static const struct q7_cpu_ops * g_forced;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    const struct q7_cpu_ops * ops = q7_cpu_ops_avx512();
    if (!ops)
        ops = q7_cpu_ops_avx2();
    if (!ops)
        ops = q7_cpu_ops_generic();
    g_auto = ops;
}

const struct q7_cpu_ops * q7_cpu_ops_get(void)
{
    pthread_once(&g_once, detect);
    return g_forced ? g_forced : g_auto;
}

const char * q7_cpu_isa_name(void)
{
    return q7_cpu_ops_get()->name;
}

const char * q7_cpu_conv_name(void)
{
    return q7_cpu_conv_path_get() == Q7_CPU_CONV_BLAS ? "blas" : "packed";
}

int q7_cpu_kernels_select(const char * isa, const char * conv)
{
    static const char * const isas[] = {"generic", "avx2", "avx512"};
    enum q7_cpu_isa want_isa = Q7_CPU_ISA_COUNT;
    enum q7_cpu_conv_path want_conv = Q7_CPU_CONV_AUTO;
    int isa_ok = isa == NULL || strcmp(isa, "auto") == 0;
    for (int k = 0; !isa_ok && k < 3; k++)
        if (strcmp(isa, isas[k]) == 0) {
            want_isa = (enum q7_cpu_isa)k;
            isa_ok = 1;
        }
    int conv_ok = conv == NULL || strcmp(conv, "auto") == 0 || strcmp(conv, "packed") == 0 ||
                  strcmp(conv, "blas") == 0;
    if (conv && strcmp(conv, "packed") == 0)
        want_conv = Q7_CPU_CONV_PACKED;
    else if (conv && strcmp(conv, "blas") == 0)
        want_conv = Q7_CPU_CONV_BLAS;
    if (!isa_ok || !conv_ok)
        return 0;
    const enum q7_cpu_conv_path old_conv = q7_cpu_conv_path_get();
    if (conv && !q7_cpu_conv_path_force(want_conv))
        return 0;
    if (isa && !q7_cpu_isa_force(want_isa)) {
        q7_cpu_conv_path_force(old_conv);
        return 0;
    }
    return 1;
}

int q7_cpu_isa_force(enum q7_cpu_isa isa)
{
    const struct q7_cpu_ops * ops = NULL;
    switch (isa) {
    case Q7_CPU_ISA_GENERIC:
        ops = q7_cpu_ops_generic();
        break;
    case Q7_CPU_ISA_AVX2:
        ops = q7_cpu_ops_avx2();
        break;
    case Q7_CPU_ISA_AVX512:
        ops = q7_cpu_ops_avx512();
        break;
    case Q7_CPU_ISA_COUNT:
    default:
        g_forced = NULL;
        return 1;
    }
    if (!ops)
        return 0;
    g_forced = ops;
    return 1;
}
