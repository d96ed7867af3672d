/* RMSNorm, adaLN modulation and gated residual add.
 *
 * Row ops (rmsnorm) use one warp per row. The parameter gradients that sum
 * over tokens (dweight, dshift, dscale, dgate) use the column sum below: a
 * fixed split of the tokens and a fixed summation order, no atomics, so the
 * result is bit-identical run to run.
 */
#include "core/cuda/cuda_common.cuh"

/* ---- column sums over tokens --------------------------------------------------- */
/*
 * For b < B, c < C:  dst[b*ld + c] += sum_{t < T} f(b, t, c)
 * over (B, T, C) tensors, with f one of:
 */
enum {
    COLSUM_RMS_DW = 0, /* f0 = dout * inp * rstd[t]      (rmsnorm dweight, B == 1) */
    COLSUM_MOD = 1,    /* f0 = dout, f1 = dout * inp     (modulate dshift, dscale) */
    COLSUM_GATE = 2,   /* f0 = dx * y                    (gated_add dgate) */
};

#define CS_X 32          /* columns per block: one warp reads 32 consecutive floats of a row */
#define CS_Y 8           /* token lanes per block; block = (32, 8) = 256 threads */
#define CS_TARGET 1024   /* aim for about this many blocks (from the shapes alone) */
#define CS_MIN_ROWS 64   /* fewest tokens per split */

/* Pass 1. grid (nchunk * B, nsplit), block (CS_X, CS_Y), nchunk = ceil(C/32).
 * Block (b, chunk, s) covers columns chunk*32 .. +32 and tokens
 * [s*rows_per, min(T, (s+1)*rows_per)); thread y takes every CS_Y-th token from
 * t0 + y, then the CS_Y partials are added in order y = 0..CS_Y-1. The block's
 * sum goes to out[b*out_bstride + s*out_sstride + c]: added (+=) when
 * accumulate (nsplit == 1, out is the gradient itself), stored otherwise
 * (out is the partial-sum scratch, finished by colsum_finish_kernel).
 * g, x: (B, T, C); rstd: (B*T), only for COLSUM_RMS_DW. out1 only for COLSUM_MOD.
 * A NULL out0/out1 (a gradient not wanted) is skipped when accumulating. */
template <int MODE>
__global__ void colsum_kernel(float *out0, float *out1, size_t out_bstride, size_t out_sstride,
                              int accumulate, const float *g, const float *x, const float *rstd,
                              int T, int C, int rows_per) {
    __shared__ float sh0[CS_Y][CS_X];
    __shared__ float sh1[CS_Y][CS_X];
    const int nchunk = (C + CS_X - 1) / CS_X;
    const int b = blockIdx.x / nchunk;
    const int c = (blockIdx.x % nchunk) * CS_X + threadIdx.x;
    const int s = blockIdx.y;
    const int t0 = s * rows_per;
    const int t1 = T - t0 < rows_per ? T : t0 + rows_per; /* no int overflow */

    float a0 = 0.0f, a1 = 0.0f;
    if (c < C) {
        for (int t = t0 + (int)threadIdx.y; t < t1; t += CS_Y) {
            size_t row = (size_t)b * T + t;
            size_t i = row * C + c;
            float gv = g[i];
            if (MODE == COLSUM_RMS_DW) {
                a0 += gv * x[i] * rstd[row];
            } else if (MODE == COLSUM_MOD) {
                a0 += gv;
                a1 += gv * x[i];
            } else {
                a0 += gv * x[i];
            }
        }
    }
    sh0[threadIdx.y][threadIdx.x] = a0;
    sh1[threadIdx.y][threadIdx.x] = a1;
    __syncthreads();
    if (threadIdx.y != 0 || c >= C) return;
    float s0 = 0.0f, s1 = 0.0f;
    for (int y = 0; y < CS_Y; y++) {
        s0 += sh0[y][threadIdx.x];
        s1 += sh1[y][threadIdx.x];
    }
    size_t o = (size_t)b * out_bstride + (size_t)s * out_sstride + c;
    if (accumulate) {
        if (out0) out0[o] += s0;
        if (MODE == COLSUM_MOD && out1) out1[o] += s1;
    } else {
        out0[o] = s0;
        if (MODE == COLSUM_MOD) out1[o] = s1;
    }
}

/* Pass 2: dst[b*ld + c] += sum_{s < nsplit} partial[(b*nsplit + s)*C + c], s in
 * order. One thread per (b, c); grid-stride over B*C. */
__global__ void colsum_finish_kernel(float *dst, const float *partial, int B, int C, int ld,
                                     int nsplit) {
    size_t total = (size_t)B * C;
    TS_GRID_STRIDE_LOOP(e, total) {
        size_t b = e / C, c = e - b * C;
        const float *p = partial + b * nsplit * (size_t)C + c;
        float acc = 0.0f;
        for (int s = 0; s < nsplit; s++) acc += p[(size_t)s * C];
        dst[b * ld + c] += acc;
    }
}

/* dst0[b*ld + c] += sum_t f0, dst1[b*ld + c] += sum_t f1 (dst1 for COLSUM_MOD).
 * The split depends on the shapes only, so results do not depend on the GPU. */
static void colsum(int mode, float *dst0, float *dst1, int ld, const float *g, const float *x,
                   const float *rstd, int B, int T, int C) {
    if (B <= 0 || T <= 0 || C <= 0 || (!dst0 && !dst1)) return;
    const int nchunk = (C + CS_X - 1) / CS_X;
    const long long colblocks = (long long)nchunk * B;
    if (colblocks > 0x7fffffffLL) ts_fatal("colsum: B*C too large (B=%d C=%d)", B, C);
    long long nsplit = (CS_TARGET + colblocks - 1) / colblocks;
    long long max_split = (T + CS_MIN_ROWS - 1) / CS_MIN_ROWS;
    if (nsplit > max_split) nsplit = max_split;
    if (nsplit < 1) nsplit = 1;
    const int rows_per = (int)((T + nsplit - 1) / nsplit);
    nsplit = (T + rows_per - 1) / rows_per; /* no empty splits */

    dim3 grid((unsigned)colblocks, (unsigned)nsplit), block(CS_X, CS_Y);
    cudaStream_t st = ts_cuda_stream();
    float *o0, *o1;
    size_t bstride, sstride;
    int accumulate;
    size_t part = (size_t)B * nsplit * C; /* floats per partial-sum array */
    if (nsplit == 1) { /* one split: add straight into the gradients */
        o0 = dst0;
        o1 = dst1;
        bstride = (size_t)ld;
        sstride = 0;
        accumulate = 1;
    } else {           /* partials (B, nsplit, C) [x2 for COLSUM_MOD] in scratch */
        o0 = (float *)ts_cuda_scratch(2 * part * sizeof(float));
        o1 = o0 + part;
        bstride = (size_t)nsplit * C;
        sstride = (size_t)C;
        accumulate = 0;
    }
    switch (mode) {
    case COLSUM_RMS_DW:
        colsum_kernel<COLSUM_RMS_DW><<<grid, block, 0, st>>>(o0, o1, bstride, sstride, accumulate,
                                                              g, x, rstd, T, C, rows_per);
        break;
    case COLSUM_MOD:
        colsum_kernel<COLSUM_MOD><<<grid, block, 0, st>>>(o0, o1, bstride, sstride, accumulate, g,
                                                           x, rstd, T, C, rows_per);
        break;
    default:
        colsum_kernel<COLSUM_GATE><<<grid, block, 0, st>>>(o0, o1, bstride, sstride, accumulate,
                                                            g, x, rstd, T, C, rows_per);
        break;
    }
    TS_CUDA_LAUNCH_CHECK();
    if (nsplit == 1) return;
    size_t total = (size_t)B * C;
    if (dst0) {
        colsum_finish_kernel<<<ts_cuda_grid(total), TS_CUDA_BLOCK, 0, st>>>(dst0, o0, B, C, ld,
                                                                           (int)nsplit);
        TS_CUDA_LAUNCH_CHECK();
    }
    if (mode == COLSUM_MOD && dst1) {
        colsum_finish_kernel<<<ts_cuda_grid(total), TS_CUDA_BLOCK, 0, st>>>(dst1, o1, B, C, ld,
                                                                           (int)nsplit);
        TS_CUDA_LAUNCH_CHECK();
    }
}

/* ---- RMSNorm ------------------------------------------------------------------- */

/* One warp per row t; lanes stride the C columns.
 * out, inp (T, C); rstd (T); weight (C) or NULL. */
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp,
                                       const float *weight, int T, int C, float eps) {
    const int lane = threadIdx.x % 32;
    const long long t = (long long)blockIdx.x * TS_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (t >= T) return; /* whole warp leaves together */
    const float *x = inp + (size_t)t * C;
    float *o = out + (size_t)t * C;

    float ss = 0.0f;
    for (int c = lane; c < C; c += 32) ss += x[c] * x[c];
    ss = ts_warp_sum(ss);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (lane == 0) rstd[t] = r;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * r * (weight ? weight[c] : 1.0f);
}

/* out_c = x_c r w_c, r = (sum_j x_j^2 / C + eps)^(-1/2):
 *   dinp_c += g_c w_c r - (r^3 x_c / C) sum_j g_j w_j x_j.
 * One warp per row. dinp, dout, inp (T, C); rstd (T); weight (C) or NULL. */
__global__ void rmsnorm_backward_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *weight, const float *rstd, int T,
                                             int C) {
    const int lane = threadIdx.x % 32;
    const long long t = (long long)blockIdx.x * TS_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (t >= T) return;
    const float *x = inp + (size_t)t * C;
    const float *g = dout + (size_t)t * C;
    float *d = dinp + (size_t)t * C;

    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) dot += g[c] * (weight ? weight[c] : 1.0f) * x[c];
    dot = ts_warp_sum(dot);
    const float r = rstd[t];
    const float coef = r * r * r * (dot / (float)C);
    for (int c = lane; c < C; c += 32) {
        float w = weight ? weight[c] : 1.0f;
        d[c] += g[c] * w * r - coef * x[c];
    }
}

void ts_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                             int T, int C, float eps) {
    if (T <= 0 || C <= 0) return;
    rmsnorm_forward_kernel<<<ts_cuda_row_grid(T), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        out, rstd, inp, weight, T, C, eps);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                              const float *weight, const float *rstd, int T, int C) {
    if (T <= 0 || C <= 0) return;
    rmsnorm_backward_dinp_kernel<<<ts_cuda_row_grid(T), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        dinp, dout, inp, weight, rstd, T, C);
    TS_CUDA_LAUNCH_CHECK();
    /* dweight[c] += sum_t dout[t,c] inp[t,c] rstd[t]; skipped without a weight */
    if (weight && dweight) colsum(COLSUM_RMS_DW, dweight, NULL, C, dout, inp, rstd, 1, T, C);
}

/* ---- adaLN modulation and gated add --------------------------------------------- */

/* Flat index i into a (B, T, C) tensor -> index of its (b, c) entry in a
 * (B, ld) matrix. */
static __device__ __forceinline__ size_t bc_index(size_t i, int T, int C, int ld) {
    size_t row = i / C;               /* b*T + t */
    size_t c = i - row * C;
    return (row / T) * (size_t)ld + c;
}

/* out[i] = inp[i] * (1 + scale[p]) + shift[p], p = b*ld + c.
 * out, inp (B, T, C); shift, scale rows of (B, ld). Safe in place. */
__global__ void modulate_forward_kernel(float *out, const float *inp, const float *shift,
                                        const float *scale, size_t N, int T, int C, int ld) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t p = bc_index(i, T, C, ld);
        out[i] = inp[i] * (1.0f + scale[p]) + shift[p];
    }
}

/* dinp[i] += dout[i] * (1 + scale[p]). */
__global__ void modulate_backward_dinp_kernel(float *dinp, const float *dout, const float *scale,
                                              size_t N, int T, int C, int ld) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t p = bc_index(i, T, C, ld);
        dinp[i] += dout[i] * (1.0f + scale[p]);
    }
}

/* x[i] += gate[p] * y[i]. x, y (B, T, C); gate rows of (B, ld). */
__global__ void gated_add_forward_kernel(float *x, const float *y, const float *gate, size_t N,
                                         int T, int C, int ld) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t p = bc_index(i, T, C, ld);
        x[i] += gate[p] * y[i];
    }
}

/* dy[i] += dx[i] * gate[p]. */
__global__ void gated_add_backward_dy_kernel(float *dy, const float *dx, const float *gate,
                                             size_t N, int T, int C, int ld) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t p = bc_index(i, T, C, ld);
        dy[i] += dx[i] * gate[p];
    }
}

void ts_cuda_modulate_forward(float *out, const float *inp, const float *shift,
                              const float *scale, int B, int T, int C, int ld) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    size_t N = (size_t)B * T * C;
    modulate_forward_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        out, inp, shift, scale, N, T, C, ld);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_modulate_backward(float *dinp, float *dshift, float *dscale, const float *dout,
                               const float *inp, const float *scale, int B, int T, int C,
                               int ld) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    size_t N = (size_t)B * T * C;
    if (dinp) {
        modulate_backward_dinp_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
            dinp, dout, scale, N, T, C, ld);
        TS_CUDA_LAUNCH_CHECK();
    }
    /* dshift[b*ld+c] += sum_t dout; dscale[b*ld+c] += sum_t dout*inp */
    colsum(COLSUM_MOD, dshift, dscale, ld, dout, inp, NULL, B, T, C);
}

void ts_cuda_gated_add_forward(float *x, const float *y, const float *gate, int B, int T, int C,
                               int ld) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    size_t N = (size_t)B * T * C;
    gated_add_forward_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        x, y, gate, N, T, C, ld);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_gated_add_backward(float *dy, float *dgate, const float *dx, const float *y,
                                const float *gate, int B, int T, int C, int ld) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    size_t N = (size_t)B * T * C;
    if (dy) {
        gated_add_backward_dy_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
            dy, dx, gate, N, T, C, ld);
        TS_CUDA_LAUNCH_CHECK();
    }
    /* dgate[b*ld+c] += sum_t dx*y */
    colsum(COLSUM_GATE, dgate, NULL, ld, dx, y, NULL, B, T, C);
}
