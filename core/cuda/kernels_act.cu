/* Activations: SiLU, and the gated units SwiGLU and GeGLU over a fused
 * projection. Elementwise grid-stride kernels, 64-bit indices.
 *
 * Accurate libm calls (expf, erfcf), no fast-math intrinsics, so the error
 * against a double reference stays within a few ulps.
 */
#include "core/cuda/cuda_common.cuh"

/* x / (1 + exp(-x)); exp overflows to inf for x << 0 and the result is -0. */
static __device__ __forceinline__ float siluf_(float x) { return x / (1.0f + expf(-x)); }
/* silu' = s (1 + x (1 - s)), s = sigmoid(x). For x >= 0, 1 - s is taken as
 * e s (e = exp(-x)) rather than by cancellation, which loses most digits of
 * 1 - s as s -> 1 (x ~ 10..17) and x amplifies that; for x < 0, s <= 1/2 and
 * 1 - s is exact enough (e may be inf there, so e s would be NaN). */
static __device__ __forceinline__ float dsiluf_(float x) {
    float e = expf(-x);
    float s = 1.0f / (1.0f + e);
    float one_minus_s = x >= 0.0f ? e * s : 1.0f - s;
    return s * (1.0f + x * one_minus_s);
}

#define TS_SQRT1_2 0.70710678118654752440f       /* 1/sqrt(2) */
#define TS_INV_SQRT_2PI 0.39894228040143267794f  /* 1/sqrt(2 pi) */
/* Phi(x) = 0.5 (1 + erf(x / sqrt 2)) = 0.5 erfc(-x / sqrt 2): the same
 * function, but erfc keeps full relative precision for x << 0, where 1 + erf
 * would cancel. */
static __device__ __forceinline__ float phif_(float x) { return 0.5f * erfcf(-x * TS_SQRT1_2); }
/* exact GELU: 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x) */
static __device__ __forceinline__ float geluf_(float x) { return x * phif_(x); }
/* gelu' = Phi(x) + x phi(x) = 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi) */
static __device__ __forceinline__ float dgeluf_(float x) {
    return phif_(x) + x * expf(-0.5f * x * x) * TS_INV_SQRT_2PI;
}

/* ---- SiLU -------------------------------------------------------------------- */

/* out, inp (N). Safe in place. */
__global__ void silu_forward_kernel(float *out, const float *inp, size_t N) {
    TS_GRID_STRIDE_LOOP(i, N) out[i] = siluf_(inp[i]);
}

/* dinp, dout, inp (N): dinp += dout * silu'(inp). */
__global__ void silu_backward_kernel(float *dinp, const float *dout, const float *inp, size_t N) {
    TS_GRID_STRIDE_LOOP(i, N) dinp[i] += dout[i] * dsiluf_(inp[i]);
}

void ts_cuda_silu_forward(float *out, const float *inp, size_t N) {
    if (N == 0) return;
    silu_forward_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(out, inp, N);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_silu_backward(float *dinp, const float *dout, const float *inp, size_t N) {
    if (N == 0) return;
    silu_backward_kernel<<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(dinp, dout,
                                                                                  inp, N);
    TS_CUDA_LAUNCH_CHECK();
}

/* ---- gated units -------------------------------------------------------------- */
/* inp (T, 2H): a = inp[t, 0:H], b = inp[t, H:2H]; out, dout (T, H); dinp (T, 2H).
 * One thread per (t, h), i = t*H + h over T*H. */

template <bool GELU>
__global__ void glu_forward_kernel(float *out, const float *inp, int H, size_t N /* T*H */) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t t = i / H, h = i - t * H;
        const float *row = inp + t * 2 * (size_t)H;
        float a = row[h], b = row[H + h];
        out[i] = (GELU ? geluf_(a) : siluf_(a)) * b;
    }
}

/* da += dout * act'(a) * b;  db += dout * act(a). */
template <bool GELU>
__global__ void glu_backward_kernel(float *dinp, const float *dout, const float *inp, int H,
                                    size_t N /* T*H */) {
    TS_GRID_STRIDE_LOOP(i, N) {
        size_t t = i / H, h = i - t * H;
        size_t ia = t * 2 * (size_t)H + h, ib = ia + H;
        float a = inp[ia], b = inp[ib], g = dout[i];
        float act = GELU ? geluf_(a) : siluf_(a);
        float dact = GELU ? dgeluf_(a) : dsiluf_(a);
        dinp[ia] += g * dact * b;
        dinp[ib] += g * act;
    }
}

void ts_cuda_swiglu_forward(float *out, const float *inp, int T, int H) {
    if (T <= 0 || H <= 0) return;
    size_t N = (size_t)T * H;
    glu_forward_kernel<false><<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(out, inp,
                                                                                       H, N);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_swiglu_backward(float *dinp, const float *dout, const float *inp, int T, int H) {
    if (T <= 0 || H <= 0) return;
    size_t N = (size_t)T * H;
    glu_backward_kernel<false><<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        dinp, dout, inp, H, N);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_geglu_forward(float *out, const float *inp, int T, int H) {
    if (T <= 0 || H <= 0) return;
    size_t N = (size_t)T * H;
    glu_forward_kernel<true><<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(out, inp,
                                                                                      H, N);
    TS_CUDA_LAUNCH_CHECK();
}

void ts_cuda_geglu_backward(float *dinp, const float *dout, const float *inp, int T, int H) {
    if (T <= 0 || H <= 0) return;
    size_t N = (size_t)T * H;
    glu_backward_kernel<true><<<ts_cuda_grid(N), TS_CUDA_BLOCK, 0, ts_cuda_stream()>>>(
        dinp, dout, inp, H, N);
    TS_CUDA_LAUNCH_CHECK();
}
