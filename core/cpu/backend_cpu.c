/* The CPU backend: OpenBLAS for GEMMs, OpenMP for everything else.
 *
 * Reductions over tokens (weight gradients) run over columns in parallel and
 * over tokens in a fixed order, so results do not depend on the thread count.
 */
#include "core/backend.h"
#include "core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef TESSERA_HAVE_CBLAS
#include <cblas.h>
#endif

/* ---- memory ---------------------------------------------------------------- */

static void *cpu_alloc(size_t bytes) {
    size_t rounded = (bytes + 255) / 256 * 256;
    void *p = aligned_alloc(256, rounded ? rounded : 256);
    if (!p) ts_fatal("out of memory allocating %zu bytes", bytes);
    memset(p, 0, rounded ? rounded : 256);
    return p;
}
static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_sync(void) {}

/* ---- GEMM ------------------------------------------------------------------ */

#ifndef TESSERA_HAVE_CBLAS
/* Without a BLAS (the core-only build on a bare GPU machine) a plain blocked
 * GEMM keeps the CPU backend usable as a reference; it is not fast. */
static void gemm_fallback(int transa, int transb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int k = 0; k < K; k++) {
            float a = alpha * (transa ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
            if (!transb) {
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + k];
            }
        }
    }
}
#endif

static void gemm_one(int transa, int transb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef TESSERA_HAVE_CBLAS
    if (beta == 0.0f) /* BLAS multiplies by beta = 0, which keeps NaNs; our contract does not */
        for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    gemm_fallback(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

#ifdef TESSERA_HAVE_CBLAS
/* OpenBLAS built for OpenMP runs single-threaded inside our parallel regions;
 * the pthread build must not be called from several threads at once. */
extern int openblas_get_parallel(void) __attribute__((weak));
static int blas_is_openmp(void) { return openblas_get_parallel && openblas_get_parallel() == 2; }
#endif

static void cpu_gemm_batched(int transa, int transb, int M, int N, int K, float alpha,
                             const float *A, int lda, int64_t strideA, const float *B, int ldb,
                             int64_t strideB, float beta, float *C, int ldc, int64_t strideC,
                             int batch) {
    /* Many small matrices (window attention): one matrix per thread. Few
     * large ones: let the BLAS thread each. */
    int small = (double)M * N * K < 64.0 * 64 * 64 * 4;
    int parallel_batch = batch > 1 && small;
#ifdef TESSERA_HAVE_CBLAS
    parallel_batch = parallel_batch && blas_is_openmp();
#else
    parallel_batch = batch > 1;
#endif
#pragma omp parallel for schedule(static) if (parallel_batch)
    for (int b = 0; b < batch; b++)
        gemm_one(transa, transb, M, N, K, alpha, A + b * strideA, lda, B + b * strideB, ldb, beta,
                 C + b * strideC, ldc);
}

/* ---- column sums over tokens ------------------------------------------------ */

/* out[c] += sum_t a[t,c] * (b ? b[t,c] : 1) * (f ? f[t] : 1): the reduction
 * of every weight-like gradient (RMSNorm weight, adaLN shift/scale/gate).
 * Tokens go in fixed chunks, each summed row by row (vectorised along c),
 * then the chunks in order in double: the same bits for any thread count. */
enum { TOKEN_CHUNK = 64 };

static void column_sums(float *out, const float *a, const float *b, const float *f, int T, int C) {
    int nchunks = (T + TOKEN_CHUNK - 1) / TOKEN_CHUNK;
    float *part = ts_malloc(sizeof(float) * (size_t)nchunks * C); /* (nchunks, C) */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nchunks; k++) {
        float *acc = part + (size_t)k * C;
        for (int c = 0; c < C; c++) acc[c] = 0.0f;
        int end = (k + 1) * TOKEN_CHUNK < T ? (k + 1) * TOKEN_CHUNK : T;
        for (int t = k * TOKEN_CHUNK; t < end; t++) {
            const float *at = a + (size_t)t * C, *bt = b ? b + (size_t)t * C : NULL;
            float ft = f ? f[t] : 1.0f;
            if (bt)
                for (int c = 0; c < C; c++) acc[c] += at[c] * bt[c] * ft;
            else
                for (int c = 0; c < C; c++) acc[c] += at[c] * ft;
        }
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int k = 0; k < nchunks; k++) sum += part[(size_t)k * C + c];
        out[c] += (float)sum;
    }
    free(part);
}

/* ---- RMSNorm --------------------------------------------------------------- */

static void cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                                int T, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        float ss = 0.0f; /* fp32 lanes; C is at most a few thousand */
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
        rstd[t] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * (weight ? weight[c] : 1.0f);
    }
}

static void cpu_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                                 const float *weight, const float *rstd, int T, int C) {
    /* With n = x*r: dx = r*(g - n*mean(g*n)), g = dout*w. */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C, *dy = dout + (size_t)t * C;
        float *dx = dinp + (size_t)t * C;
        float r = rstd[t];
        float dot = 0.0f;
        if (weight) {
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += dy[c] * weight[c] * x[c];
        } else {
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += dy[c] * x[c];
        }
        float m = dot * r / (float)C;
        for (int c = 0; c < C; c++) {
            float g = dy[c] * (weight ? weight[c] : 1.0f);
            dx[c] += r * (g - x[c] * r * m);
        }
    }
    if (weight && dweight) column_sums(dweight, dout, inp, rstd, T, C);
}

/* ---- adaLN modulation and gated residual ----------------------------------- */

static void cpu_modulate_forward(float *out, const float *inp, const float *shift,
                                 const float *scale, int B, int T, int C, int ld) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C;
            const float *sh = shift + (size_t)b * ld, *sc = scale + (size_t)b * ld;
            for (int c = 0; c < C; c++) out[o + c] = inp[o + c] * (1.0f + sc[c]) + sh[c];
        }
}

static void cpu_modulate_backward(float *dinp, float *dshift, float *dscale, const float *dout,
                                  const float *inp, const float *scale, int B, int T, int C,
                                  int ld) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C;
            const float *sc = scale + (size_t)b * ld;
            for (int c = 0; c < C; c++) dinp[o + c] += dout[o + c] * (1.0f + sc[c]);
        }
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * T * C;
        column_sums(dshift + (size_t)b * ld, dout + o, NULL, NULL, T, C);
        column_sums(dscale + (size_t)b * ld, dout + o, inp + o, NULL, T, C);
    }
}

static void cpu_gated_add_forward(float *x, const float *y, const float *gate, int B, int T, int C,
                                  int ld) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C;
            const float *g = gate + (size_t)b * ld;
            for (int c = 0; c < C; c++) x[o + c] += g[c] * y[o + c];
        }
}

static void cpu_gated_add_backward(float *dy, float *dgate, const float *dx, const float *y,
                                   const float *gate, int B, int T, int C, int ld) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C;
            const float *g = gate + (size_t)b * ld;
            for (int c = 0; c < C; c++) dy[o + c] += dx[o + c] * g[c];
        }
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * T * C;
        column_sums(dgate + (size_t)b * ld, dx + o, y + o, NULL, T, C);
    }
}

/* ---- activations ----------------------------------------------------------- */

/* exp for loops the compiler can vectorize: glibc's expf is a scalar call.
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and the Cephes minimax
 * polynomial: within 2 ulp of expf over the clamped range (the backend
 * harness bounds it against a double reference). */
static inline float exp_vec(float x) {
    /* Comparisons, not fminf/fmaxf: those keep IEEE NaN rules that block
     * vectorisation. */
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    float t = x * 1.44269504088896341f + 12582912.0f; /* round to nearest via 1.5 * 2^23 */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } two_n = {.i = ((int32_t)n + 127) << 23}; /* 2^n; n in [-126, 128) after the clamp */
    return p * two_n.f;
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + exp_vec(-x)); }

static void cpu_silu_forward(float *out, const float *inp, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) out[i] = inp[i] * sigmoidf(inp[i]);
}

static inline float silu_grad(float x) {
    float s = sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

static void cpu_silu_backward(float *dinp, const float *dout, const float *inp, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) dinp[i] += dout[i] * silu_grad(inp[i]);
}

/* erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), vectorisable. */
static inline float erf_vec(float x) {
    float ax = x < 0.0f ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    float y = 1.0f - poly * exp_vec(-ax * ax);
    return x < 0.0f ? -y : y;
}

static inline float gelu(float x) { return 0.5f * x * (1.0f + erf_vec(x * 0.70710678118654752440f)); }
static inline float gelu_grad(float x) {
    const float inv_sqrt_2pi = 0.39894228040143267794f;
    return 0.5f * (1.0f + erf_vec(x * 0.70710678118654752440f)) + x * inv_sqrt_2pi * exp_vec(-0.5f * x * x);
}

static void cpu_swiglu_forward(float *out, const float *inp, int T, int H) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *a = inp + (size_t)t * 2 * H, *b = a + H;
        float *y = out + (size_t)t * H;
        for (int h = 0; h < H; h++) y[h] = a[h] * sigmoidf(a[h]) * b[h];
    }
}

static void cpu_swiglu_backward(float *dinp, const float *dout, const float *inp, int T, int H) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *a = inp + (size_t)t * 2 * H, *b = a + H, *dy = dout + (size_t)t * H;
        float *da = dinp + (size_t)t * 2 * H, *db = da + H;
        for (int h = 0; h < H; h++) {
            da[h] += dy[h] * b[h] * silu_grad(a[h]);
            db[h] += dy[h] * a[h] * sigmoidf(a[h]);
        }
    }
}

static void cpu_geglu_forward(float *out, const float *inp, int T, int H) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *a = inp + (size_t)t * 2 * H, *b = a + H;
        float *y = out + (size_t)t * H;
        for (int h = 0; h < H; h++) y[h] = gelu(a[h]) * b[h];
    }
}

static void cpu_geglu_backward(float *dinp, const float *dout, const float *inp, int T, int H) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *a = inp + (size_t)t * 2 * H, *b = a + H, *dy = dout + (size_t)t * H;
        float *da = dinp + (size_t)t * 2 * H, *db = da + H;
        for (int h = 0; h < H; h++) {
            da[h] += dy[h] * b[h] * gelu_grad(a[h]);
            db[h] += dy[h] * gelu(a[h]);
        }
    }
}

/* ---- softmax ----------------------------------------------------------------- */

static void cpu_softmax_forward(float *out, const float *inp, const uint8_t *mask, int mask_rows,
                                int R, int N, float scale) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * N;
        float *y = out + (size_t)r * N;
        const uint8_t *m = mask ? mask + (size_t)(r % mask_rows) * N : NULL;
        /* Masked entries take -inf, so one branch-free pass serves both. */
        float mx = -INFINITY;
        if (m) {
#pragma omp simd reduction(max : mx)
            for (int j = 0; j < N; j++) {
                y[j] = m[j] ? scale * x[j] : -INFINITY;
                mx = y[j] > mx ? y[j] : mx;
            }
        } else {
#pragma omp simd reduction(max : mx)
            for (int j = 0; j < N; j++) {
                y[j] = scale * x[j];
                mx = y[j] > mx ? y[j] : mx;
            }
        }
        if (mx == -INFINITY) { /* nothing allowed */
            memset(y, 0, sizeof(float) * (size_t)N);
            continue;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < N; j++) {
            y[j] = y[j] == -INFINITY ? 0.0f : exp_vec(y[j] - mx);
            sum += y[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < N; j++) y[j] *= inv;
    }
}

static void cpu_softmax_backward(float *dinp, const float *dout, const float *out, int R, int N,
                                 float scale) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < R; r++) {
        const float *dy = dout + (size_t)r * N, *y = out + (size_t)r * N;
        float *dx = dinp + (size_t)r * N;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < N; j++) dot += dy[j] * y[j];
        for (int j = 0; j < N; j++) dx[j] += scale * y[j] * (dy[j] - dot);
    }
}

/* ---- token permutation ----------------------------------------------------- */

static void cpu_gather_rows(float *out, const float *inp, const int32_t *idx, int n, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * C, inp + (size_t)idx[i] * C, sizeof(float) * (size_t)C);
}

static void cpu_scatter_add_rows(float *dinp, const float *dout, const int32_t *idx, int n, int C) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *d = dinp + (size_t)idx[i] * C;
        const float *s = dout + (size_t)i * C;
        for (int c = 0; c < C; c++) d[c] += s[c];
    }
}

/* ---- optimizer and reductions ---------------------------------------------- */

static void cpu_adamw(float *param, const float *grad, float *m, float *v, size_t N, float lr,
                      float beta1, float beta2, float eps, float weight_decay, int t,
                      float grad_scale) {
    float bc1 = (float)(1.0 - pow(beta1, t)), bc2 = (float)(1.0 - pow(beta2, t));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) {
        float g = grad_scale * grad[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        param[i] -= lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * param[i]);
    }
}

static void cpu_axpby(float *y, float a, const float *x, float b, size_t N) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < N; i++) y[i] = a * x[i] + b * y[i];
}

static double cpu_sumsq(const float *x, size_t N) {
    /* Fixed-size chunks summed in order: the same bits for any thread count. */
    enum { CHUNK = 4096 };
    size_t nchunks = (N + CHUNK - 1) / CHUNK;
    double *part = ts_calloc(nchunks ? nchunks : 1, sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < nchunks; k++) {
        size_t end = (k + 1) * CHUNK < N ? (k + 1) * CHUNK : N;
        double s = 0.0;
        for (size_t i = k * CHUNK; i < end; i++) s += (double)x[i] * x[i];
        part[k] = s;
    }
    double total = 0.0;
    for (size_t k = 0; k < nchunks; k++) total += part[k];
    free(part);
    return total;
}

static const ts_backend CPU_BACKEND = {
    .name = "cpu",
    .kind = TS_BACKEND_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .gemm_batched = cpu_gemm_batched,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .modulate_forward = cpu_modulate_forward,
    .modulate_backward = cpu_modulate_backward,
    .gated_add_forward = cpu_gated_add_forward,
    .gated_add_backward = cpu_gated_add_backward,
    .silu_forward = cpu_silu_forward,
    .silu_backward = cpu_silu_backward,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .geglu_forward = cpu_geglu_forward,
    .geglu_backward = cpu_geglu_backward,
    .softmax_forward = cpu_softmax_forward,
    .softmax_backward = cpu_softmax_backward,
    .gather_rows = cpu_gather_rows,
    .scatter_add_rows = cpu_scatter_add_rows,
    .adamw = cpu_adamw,
    .axpby = cpu_axpby,
    .sumsq = cpu_sumsq,
};

const ts_backend *ts_backend_cpu(void) { return &CPU_BACKEND; }
