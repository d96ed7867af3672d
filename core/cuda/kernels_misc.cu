/* Token permutation (gather / scatter-add of rows), AdamW, and the
 * sum of squares.
 */
#include "core/cuda/cuda_common.cuh"

#include <math.h>

/* ---- token permutation ------------------------------------------------------ */

/* out[i, c] = inp[idx[i], c]. out (n, C); inp (rows, C); idx (n) on the device.
 * One thread per output element e = i*C + c (coalesced within a row). */
__global__ void gather_rows_kernel(float *out, const float *inp, const int32_t *idx, int C,
                                   size_t N /* n*C */) {
    TS_GRID_STRIDE_LOOP(e, N) {
        size_t i = e / C, c = e - i * C;
        out[e] = inp[(size_t)idx[i] * C + c];
    }
}

/* dinp[idx[i], c] += dout[i, c]. idx never repeats, so no two threads touch
 * the same element: plain += is race-free and deterministic. */
__global__ void scatter_add_rows_kernel(float *dinp, const float *dout, const int32_t *idx, int C,
                                        size_t N /* n*C */) {
    TS_GRID_STRIDE_LOOP(e, N) {
        size_t i = e / C, c = e - i * C;
        dinp[(size_t)idx[i] * C + c] += dout[e];
    }
}

void ts_cuda_gather_rows(float *out, const float *inp, const int32_t *idx, int n, int C) {
    if (n <= 0 || C <= 0) return;
    size_t N = (size_t)n * C;
    gather_rows_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(out, inp, idx, C,
                                                                               N);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_scatter_add_rows(float *dinp, const float *dout, const int32_t *idx, int n, int C) {
    if (n <= 0 || C <= 0) return;
    size_t N = (size_t)n * C;
    scatter_add_rows_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(dinp, dout,
                                                                                    idx, C, N);
    TS_CUDA_LAUNCH_CHECK();
}

/* ---- AdamW ------------------------------------------------------------------ */

/* param, grad, m, v (N). bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (from the host,
 * computed in double).
 *   g = grad_scale * grad
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * ((m / bc1) / (sqrt(v / bc2) + eps) + wd * p) */
__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t N,
                             float lr, float beta1, float beta2, float eps, float weight_decay,
                             float bc1, float bc2, float grad_scale) {
    TS_GRID_STRIDE_LOOP(i, N) {
        float g = grad_scale * grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = param[i];
        param[i] = p - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * p);
    }
}

void ts_cuda_adamw(float *param, const float *grad, float *m, float *v, size_t N, float lr,
                   float beta1, float beta2, float eps, float weight_decay, int t,
                   float grad_scale) {
    if (N == 0) return;
    if (t < 1) ts_fatal("adamw: step t=%d, must be >= 1", t);
    float bc1 = (float)(1.0 - pow((double)beta1, (double)t));
    float bc2 = (float)(1.0 - pow((double)beta2, (double)t));
    adamw_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        param, grad, m, v, N, lr, beta1, beta2, eps, weight_decay, bc1, bc2, grad_scale);
    TS_CUDA_LAUNCH_CHECK();
}

/* ---- axpby --------------------------------------------------------------------- */

__global__ void axpby_kernel(float *y, float a, const float *x, float b, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a * x[i] + b * y[i];
}

void ts_cuda_axpby(float *y, float a, const float *x, float b, size_t N) {
    if (N == 0) return;
    axpby_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(y, a, x, b, N);
    TS_CUDA_LAUNCH_CHECK();
}

/* ---- sum of squares ------------------------------------------------------------ */
/* Two passes, in double, in a fixed order (no atomics):
 *   1. G blocks (G from N alone); thread k of the grid sums x[i]^2 for
 *      i = k, k + G*256, ...; each block tree-reduces its 256 sums -> part[b].
 *   2. one block sums part[0..G) the same way -> part[G].
 * Then the double goes to the host. */
#define SUMSQ_BLOCK 256  /* power of two: the tree reduction halves it */
#define SUMSQ_MAX_GRID 1024

/* Tree reduction of sh[0..SUMSQ_BLOCK) into sh[0], fixed pairing. */
static __device__ __forceinline__ void block_tree_sum(double *sh) {
    for (int s = SUMSQ_BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
}

/* x (N) -> part (gridDim.x) */
__global__ void sumsq_partial_kernel(double *part, const float *x, size_t N) {
    __shared__ double sh[SUMSQ_BLOCK];
    double acc = 0.0;
    TS_GRID_STRIDE_LOOP(i, N) {
        double xi = (double)x[i];
        acc += xi * xi;
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    block_tree_sum(sh);
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

/* part (G) -> *result; one block. */
__global__ void sumsq_final_kernel(double *result, const double *part, int G) {
    __shared__ double sh[SUMSQ_BLOCK];
    double acc = 0.0;
    for (int i = threadIdx.x; i < G; i += SUMSQ_BLOCK) acc += part[i];
    sh[threadIdx.x] = acc;
    __syncthreads();
    block_tree_sum(sh);
    if (threadIdx.x == 0) *result = sh[0];
}

double ts_cuda_sumsq(const float *x, size_t N) {
    if (N == 0) return 0.0;
    size_t g = (N + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
    const int G = (int)(g < SUMSQ_MAX_GRID ? g : SUMSQ_MAX_GRID);
    double *part = (double *)ts_cuda_scratch((size_t)(G + 1) * sizeof(double)); /* part (G), result (1) */
    cudaStream_t st = ts_cuda_stream();
    sumsq_partial_kernel<<<G, SUMSQ_BLOCK, 0, st>>>(part, x, N);
    TS_CUDA_LAUNCH_CHECK();
    sumsq_final_kernel<<<1, SUMSQ_BLOCK, 0, st>>>(part + G, part, G);
    TS_CUDA_LAUNCH_CHECK();
    double result = 0.0;
    TS_CUDA_CHECK(cudaMemcpyAsync(&result, part + G, sizeof(double), cudaMemcpyDeviceToHost, st));
    TS_CUDA_CHECK(cudaStreamSynchronize(st));
    return result;
}
