/* The compute backends: one small table of function pointers per device.
 *
 * Every op has one meaning, written here once; the CPU backend (OpenBLAS +
 * OpenMP) and the CUDA backend (cuBLAS + kernels under core/cuda/) implement
 * it, and tests/core/test_backend.c checks each against an independent
 * double-precision reference (tests/core/ref_ops.c).
 *
 * Conventions (llm.c style):
 * - All tensors are fp32, row-major, contiguous unless a leading dimension or
 *   stride says otherwise. Pointers given to an op live on that backend's
 *   device (host memory for cpu, device memory for cuda).
 * - Shapes are in the signature; a comment gives each buffer's shape.
 * - Forward ops overwrite their outputs.
 * - Backward ops ACCUMULATE (+=) into every gradient they produce, input and
 *   weight gradients alike, so a caller zeroes gradients once per step and
 *   branches of a graph add up without extra copies.
 * - Ops are asynchronous on devices that can be; sync() waits for them.
 */
#ifndef TESSERA_CORE_BACKEND_H
#define TESSERA_CORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TS_BACKEND_CPU = 0, TS_BACKEND_CUDA = 1, TS_BACKEND_COUNT } ts_backend_kind;

typedef struct ts_backend {
    const char *name;                      /* "cpu" or "cuda" */
    ts_backend_kind kind;

    /* ---- memory ------------------------------------------------------- */
    void *(*alloc)(size_t bytes);          /* zero-filled, 256-byte aligned; aborts on failure */
    void (*free)(void *p);
    void (*upload)(void *dst_dev, const void *src_host, size_t bytes);
    void (*download)(void *dst_host, const void *src_dev, size_t bytes);
    void (*copy)(void *dst_dev, const void *src_dev, size_t bytes);
    void (*zero)(void *p_dev, size_t bytes);
    void (*sync)(void);

    /* ---- GEMM ---------------------------------------------------------- */
    /* For b in [0, batch):
     *   C_b = alpha * op(A_b) * op(B_b) + beta * C_b
     * row-major; op(X) = X or X^T (trans != 0). op(A_b) is (M, K), op(B_b)
     * is (K, N), C_b is (M, N). lda/ldb/ldc are the row strides of the
     * matrices as stored; X_b = X + b * strideX. beta == 0 ignores C's old
     * contents (NaN included). */
    void (*gemm_batched)(int transa, int transb, int M, int N, int K, float alpha,
                         const float *A, int lda, int64_t strideA,
                         const float *B, int ldb, int64_t strideB, float beta,
                         float *C, int ldc, int64_t strideC, int batch);

    /* ---- normalisation and modulation --------------------------------- */
    /* out[t,c] = inp[t,c] * rstd[t] * (weight ? weight[c] : 1)
     * rstd[t]  = 1 / sqrt(mean_c inp[t,c]^2 + eps)
     * out, inp (T, C); rstd (T); weight (C) or NULL. */
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight,
                            int T, int C, float eps);
    /* dinp (T, C) += ; dweight (C) += (skipped when weight is NULL). */
    void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp,
                             const float *weight, const float *rstd, int T, int C);

    /* adaLN modulation, B samples of T tokens each:
     *   out[b,t,c] = inp[b,t,c] * (1 + scale[b*ld + c]) + shift[b*ld + c]
     * out, inp (B, T, C); shift, scale: rows of a (B, ld) matrix (ld >= C),
     * so both can point into one (B, 6C) adaLN output. */
    void (*modulate_forward)(float *out, const float *inp, const float *shift, const float *scale,
                             int B, int T, int C, int ld);
    /* dinp (B,T,C) += dout*(1+scale); dshift[b*ld+c] += sum_t dout;
     * dscale[b*ld+c] += sum_t dout*inp. */
    void (*modulate_backward)(float *dinp, float *dshift, float *dscale, const float *dout,
                              const float *inp, const float *scale, int B, int T, int C, int ld);

    /* Gated residual add (adaLN-zero gates): x[b,t,c] += gate[b*ld+c] * y[b,t,c].
     * x, y (B, T, C); gate rows of a (B, ld) matrix. */
    void (*gated_add_forward)(float *x, const float *y, const float *gate, int B, int T, int C, int ld);
    /* dy (B,T,C) += dx * gate; dgate[b*ld+c] += sum_t dx*y. (dx flows on to
     * the residual input unchanged; the caller keeps using it.) */
    void (*gated_add_backward)(float *dy, float *dgate, const float *dx, const float *y,
                               const float *gate, int B, int T, int C, int ld);

    /* ---- activations ---------------------------------------------------- */
    /* SiLU: out[i] = x / (1 + exp(-x)), x = inp[i]; out, inp (N). */
    void (*silu_forward)(float *out, const float *inp, size_t N);
    void (*silu_backward)(float *dinp, const float *dout, const float *inp, size_t N);

    /* Gated units over a fused projection: inp (T, 2H) holds a = inp[t, 0:H]
     * and b = inp[t, H:2H] (W1 h and W3 h of one GEMM); out (T, H).
     *   swiglu: out = SiLU(a) * b
     *   geglu:  out = GELU(a) * b, GELU exact: 0.5 a (1 + erf(a / sqrt 2)) */
    void (*swiglu_forward)(float *out, const float *inp, int T, int H);
    void (*swiglu_backward)(float *dinp, const float *dout, const float *inp, int T, int H);
    void (*geglu_forward)(float *out, const float *inp, int T, int H);
    void (*geglu_backward)(float *dinp, const float *dout, const float *inp, int T, int H);

    /* ---- softmax --------------------------------------------------------- */
    /* Row softmax of R rows of N columns with a scale and an optional mask:
     *   out[r,j] = exp(s_j - max) / sum_{allowed k} exp(s_k - max),
     *   s_j = scale * inp[r,j], over allowed j; out[r,j] = 0 where masked.
     * mask (mask_rows, N) of uint8, 1 = allowed, 0 = masked; row r uses mask
     * row (r % mask_rows), so a (nW*L, L) window mask serves scores laid out
     * (B, heads, nW, L, L). mask NULL: all allowed. A row with nothing
     * allowed is all zeros. */
    void (*softmax_forward)(float *out, const float *inp, const uint8_t *mask, int mask_rows,
                            int R, int N, float scale);
    /* dinp[r,j] += scale * out[r,j] * (dout[r,j] - sum_k dout[r,k] out[r,k]) */
    void (*softmax_backward)(float *dinp, const float *dout, const float *out, int R, int N,
                             float scale);

    /* ---- token permutation ------------------------------------------------ */
    /* Gather rows: out[i, :] = inp[idx[i], :] for i in [0, n); rows of C
     * floats. idx lives on the device. */
    void (*gather_rows)(float *out, const float *inp, const int32_t *idx, int n, int C);
    /* Its backward, a scatter-add: dinp[idx[i], :] += dout[i, :]. idx must
     * not repeat (a permutation or an injection), which keeps it
     * deterministic without atomics. */
    void (*scatter_add_rows)(float *dinp, const float *dout, const int32_t *idx, int n, int C);

    /* ---- optimizer and reductions ---------------------------------------- */
    /* AdamW over N parameters, step t >= 1 (bias correction), gradient
     * multiplied by grad_scale first (clipping):
     *   g = grad_scale * grad
     *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
     *   p -= lr * ( (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + wd * p ) */
    void (*adamw)(float *param, const float *grad, float *m, float *v, size_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int t, float grad_scale);
    /* y = a x + b y over N values (EMA of weights, scaling). */
    void (*axpby)(float *y, float a, const float *x, float b, size_t N);
    /* Sum of squares (accumulated in double), returned to the host. */
    double (*sumsq)(const float *x, size_t N);
} ts_backend;

/* The CPU backend always exists. */
const ts_backend *ts_backend_cpu(void);
/* The CUDA backend, or NULL when tessera was built without CUDA or no GPU is
 * present (the reason goes to *why when why is not NULL). */
const ts_backend *ts_backend_cuda(const char **why);
/* By name ("cpu", "cuda"); NULL with *why set when unavailable. */
const ts_backend *ts_backend_get(const char *name, const char **why);

#endif
