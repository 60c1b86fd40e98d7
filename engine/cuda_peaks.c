/* A GPU's peak rates from its attributes (exec_cuda.h): host arithmetic only, built with or
 * without CUDA so that it is tested without a GPU. */
#include "engine/exec_cuda.h"

struct q7_cuda_peaks q7_cuda_peaks_of(int major, int minor, int sms, double sm_clock_khz,
                                      double mem_clock_khz, int bus_bits)
{
    struct q7_cuda_peaks p = {0.0, 0.0, 0.0};
    p.mem_gbs = 2.0 * mem_clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
    /* FLOP per SM per clock: FP16 tensor cores (dense, FP32 accumulate), FP32 lanes x 2 */
    double tc = 0.0, f32 = 0.0;
    const int cc = major * 10 + minor;
    if (cc == 70 || cc == 72 || cc == 75) { /* V100, Xavier, T4 */
        tc = 1024.0;
        f32 = 128.0;
    } else if (cc == 80) { /* A100: 64 FP32 lanes per SM */
        tc = 2048.0;
        f32 = 128.0;
    } else if (cc == 86 || cc == 87 || cc == 89) { /* Ampere GA10x, Ada: 128 FP32 lanes */
        tc = 1024.0;
        f32 = 256.0;
    } else if (cc == 90) { /* H100, H200 */
        tc = 4096.0;
        f32 = 256.0;
    }
    const double per_s = (double)sms * sm_clock_khz * 1e3;
    p.fp16_tflops = tc * per_s / 1e12;
    p.fp32_tflops = f32 * per_s / 1e12;
    return p;
}
