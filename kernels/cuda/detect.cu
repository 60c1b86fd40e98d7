/* Detect / IDetect decode on the device, one thread per output value, in FP32. */
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/detect.cuh"

using namespace q7c;

struct detect_args {
    dview x[Q7_MAX_LEVELS];
    int64_t row0[Q7_MAX_LEVELS + 1]; /* first row of each level; row0[nl] = all rows */
    int nl, na, no;
    float stride[Q7_MAX_LEVELS];
    float anchor[Q7_MAX_LEVELS][Q7_MAX_ANCHORS][2];
    int64_t rows;
};

static __global__ void detect_kernel(detect_args a, float * out, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t k = i % a.no;
        const int64_t row = (i / a.no) % a.rows;
        const int64_t b = i / ((int64_t)a.no * a.rows);
        int l = 0;
        while (l + 1 < a.nl && row >= a.row0[l + 1])
            l++;
        const dview & x = a.x[l];
        const int64_t r = row - a.row0[l];
        const int64_t anc = r / x.hw, cell = r % x.hw;
        const float v = load(x, b * x.bs + (anc * a.no + k) * x.hw + cell);
        const float sg = sigmoid(v);
        float o = sg;
        if (k == 0 || k == 1) {
            const float grid = (float)(k == 0 ? cell % x.w : cell / x.w);
            o = __fmul_rn(__fadd_rn(__fsub_rn(__fmul_rn(sg, 2.0f), 0.5f), grid), a.stride[l]);
        } else if (k == 2 || k == 3) {
            const float s2 = __fmul_rn(sg, 2.0f);
            o = __fmul_rn(__fmul_rn(s2, s2), a.anchor[l][anc][k - 2]);
        }
        out[i] = o;
    }
}

enum q7_status q7_cuda_detect(cudaStream_t s, const struct q7_cuda_view * xs,
                              const struct q7_detect_params * p, float * out, int64_t rows)
{
    if (p->nl < 1 || p->nl > Q7_MAX_LEVELS || p->na < 1 || p->na > Q7_MAX_ANCHORS || p->no < 1)
        return q7_error_set(Q7_ERR_ARG, "detect: %d levels, %d anchors, %d outputs", p->nl, p->na,
                            p->no);
    detect_args a;
    a.nl = p->nl;
    a.na = p->na;
    a.no = p->no;
    a.rows = rows;
    a.row0[0] = 0;
    for (int l = 0; l < p->nl; l++) {
        if (xs[l].c != (int64_t)p->na * p->no || xs[l].n != xs[0].n)
            return q7_error_set(Q7_ERR_ARG, "detect: level %d has %lld channels, want %d", l,
                                (long long)xs[l].c, p->na * p->no);
        a.x[l] = make_dview(&xs[l]);
        a.row0[l + 1] = a.row0[l] + (int64_t)p->na * xs[l].h * xs[l].w;
        a.stride[l] = p->stride[l];
        for (int k = 0; k < p->na; k++) {
            a.anchor[l][k][0] = p->anchor_grid[l][k][0];
            a.anchor[l][k][1] = p->anchor_grid[l][k][1];
        }
    }
    if (rows != a.row0[p->nl])
        return q7_error_set(Q7_ERR_ARG, "detect: %lld rows, the levels make %lld", (long long)rows,
                            (long long)a.row0[p->nl]);
    const int64_t total = xs[0].n * rows * p->no;
    if (total == 0)
        return Q7_OK;
    Q7C_LAUNCH(detect_kernel, blocks_for(total), THREADS, 0, s, a, out, total);
    return Q7_CUDA_LAUNCHED("detect");
}
