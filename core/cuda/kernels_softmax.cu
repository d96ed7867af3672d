/* Row softmax with a scale and an optional (mask_rows, N) mask, and its
 * backward.
 *
 * One warp per row, 8 rows per 256-thread block; lanes stride the N columns,
 * so any N works (not only multiples of 32), and a row is re-read from L1/L2
 * on each pass rather than held in registers or shared memory. The forward
 * makes three passes (max, sum, write) so that every exponent is taken
 * against the true row max (numerically stable, and no online rescaling
 * error).
 */
#include "core/cuda/cuda_common.cuh"

#include <math.h>

/* out, inp (R, N); mask (mask_rows, N) of uint8 or NULL, row r uses mask row
 * r % mask_rows; 1 = allowed. Masked entries are exactly 0; a row with nothing
 * allowed is all zeros. Safe in place (each lane rewrites only the columns it
 * alone reads, after the reductions). */
__global__ void softmax_forward_kernel(float *out, const float *inp, const uint8_t *mask,
                                       int mask_rows, int R, int N, float scale) {
    const int lane = threadIdx.x % 32;
    const long long r = (long long)blockIdx.x * TS_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (r >= R) return; /* whole warp leaves together */
    const float *x = inp + (size_t)r * N;
    float *y = out + (size_t)r * N;
    const uint8_t *m = mask ? mask + (size_t)(r % mask_rows) * N : NULL;

    /* pass 1: max of s_j = scale * x_j over allowed j */
    float mx = -INFINITY;
    for (int j = lane; j < N; j += 32)
        if (!m || m[j]) mx = fmaxf(mx, scale * x[j]);
    mx = ts_warp_max(mx);
    if (mx == -INFINITY) { /* nothing allowed: all zeros, not NaN */
        for (int j = lane; j < N; j += 32) y[j] = 0.0f;
        return;
    }
    /* pass 2: sum of exp(s_j - max) over allowed j; >= 1 (the max term is 1) */
    float sum = 0.0f;
    for (int j = lane; j < N; j += 32)
        if (!m || m[j]) sum += expf(scale * x[j] - mx);
    sum = ts_warp_sum(sum);
    const float inv = 1.0f / sum;
    /* pass 3: write; masked entries exactly 0 */
    for (int j = lane; j < N; j += 32)
        y[j] = (!m || m[j]) ? expf(scale * x[j] - mx) * inv : 0.0f;
}

/* dinp[r,j] += scale * out[r,j] * (dout[r,j] - sum_k dout[r,k] out[r,k]).
 * dinp, dout, out (R, N). One warp per row. */
__global__ void softmax_backward_kernel(float *dinp, const float *dout, const float *out, int R,
                                        int N, float scale) {
    const int lane = threadIdx.x % 32;
    const long long r = (long long)blockIdx.x * TS_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (r >= R) return;
    const float *g = dout + (size_t)r * N;
    const float *y = out + (size_t)r * N;
    float *d = dinp + (size_t)r * N;

    float dot = 0.0f;
    for (int j = lane; j < N; j += 32) dot += g[j] * y[j];
    dot = ts_warp_sum(dot);
    for (int j = lane; j < N; j += 32) d[j] += scale * y[j] * (g[j] - dot);
}

void ts_cuda_softmax_forward(float *out, const float *inp, const uint8_t *mask, int mask_rows,
                             int R, int N, float scale) {
    if (R <= 0 || N <= 0) return;
    if (mask && mask_rows <= 0) ts_fatal("softmax_forward: mask given with mask_rows=%d", mask_rows);
    softmax_forward_kernel<<<ts_cuda_row_grid(R), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        out, inp, mask, mask_rows, R, N, scale);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_softmax_backward(float *dinp, const float *dout, const float *out, int R, int N,
                              float scale) {
    if (R <= 0 || N <= 0) return;
    softmax_backward_kernel<<<ts_cuda_row_grid(R), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        dinp, dout, out, R, N, scale);
    TS_CUDA_LAUNCH_CHECK();
}
