/* N-ary add on the device, left to right in FP32. */
#include "kernels/cuda/add.cuh"
#include "kernels/cuda/common.cuh"

using namespace q7c;

struct add_args {
    dview x[Q7_CUDA_ADD_MAX];
    int n;
};

static __global__ void add_kernel(add_args a, dview y, int64_t total)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float s = load(a.x[0], offset_of(a.x[0], i));
        for (int k = 1; k < a.n; k++)
            s = __fadd_rn(s, load(a.x[k], offset_of(a.x[k], i)));
        store(y, offset_of(y, i), s);
    }
}

enum q7_status q7_cuda_add(cudaStream_t s, const struct q7_cuda_view * xs, int n_inputs,
                           const struct q7_cuda_view * y)
{
    const int64_t total = numel(y);
    if (total == 0 || n_inputs < 1)
        return Q7_OK;
    /* the first launch adds x0..x7 into y; each further one adds y and the next 7 inputs,
     * which keeps the left-to-right order (y holds the partial sum) */
    int k = 0;
    while (k < n_inputs) {
        add_args a;
        a.n = 0;
        if (k > 0)
            a.x[a.n++] = make_dview(y);
        while (a.n < Q7_CUDA_ADD_MAX && k < n_inputs)
            a.x[a.n++] = make_dview(&xs[k++]);
        Q7C_LAUNCH(add_kernel, blocks_for(total), THREADS, 0, s, a, make_dview(y), total);
        enum q7_status st = Q7_CUDA_LAUNCHED("add");
        if (st)
            return st;
    }
    return Q7_OK;
}
