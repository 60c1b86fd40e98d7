/* Picks the micro-kernel table for this machine: AVX-512F, else AVX2 + FMA, else portable C.
 * Chosen once; tests may force another (q7_cpu_isa_force). */
#include "kernels/cpu/cpu_impl.h"

#include <pthread.h>

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
