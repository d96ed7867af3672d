/* Double-precision reference ops; see ref_ops.h and core/backend.h.
 *
 * Backward ops are derived by hand from the forward formulas (derivations in
 * the comments) and accumulate (+=) into every gradient. */
#include "tests/core/ref_ops.h"

#include <math.h>

/* ---- GEMM ------------------------------------------------------------------ */

/* Element (i, j) of op(X) for X stored row-major with row stride ld. */
static double op_at(const double *X, int ld, int trans, int i, int j)
{
    return trans ? X[(size_t)j * ld + i] : X[(size_t)i * ld + j];
}

void ref_gemm_batched(int transa, int transb, int M, int N, int K, double alpha,
                      const double *A, int lda, int64_t strideA,
                      const double *B, int ldb, int64_t strideB, double beta,
                      double *C, int ldc, int64_t strideC, int batch)
{
    for (int b = 0; b < batch; b++) {
        const double *Ab = A + b * strideA, *Bb = B + b * strideB;
        double *Cb = C + b * strideC;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double acc = 0.0;
                for (int k = 0; k < K; k++)
                    acc += op_at(Ab, lda, transa, i, k) * op_at(Bb, ldb, transb, k, j);
                double *c = &Cb[(size_t)i * ldc + j];
                *c = alpha * acc + (beta == 0.0 ? 0.0 : beta * *c);
            }
    }
}

/* ---- RMSNorm --------------------------------------------------------------- */

void ref_rmsnorm_forward(double *out, double *rstd, const double *inp, const double *weight,
                         int T, int C, double eps)
{
    for (int t = 0; t < T; t++) {
        const double *x = inp + (size_t)t * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++)
            ss += x[c] * x[c];
        double r = 1.0 / sqrt(ss / C + eps);
        rstd[t] = r;
        for (int c = 0; c < C; c++)
            out[(size_t)t * C + c] = x[c] * r * (weight ? weight[c] : 1.0);
    }
}

/* out_c = x_c r w_c with r = (sum_j x_j^2 / C + eps)^(-1/2), so
 * dr/dx_c = -r^3 x_c / C and
 *   dL/dx_c = g_c w_c r - (r^3 x_c / C) sum_j g_j w_j x_j,
 *   dL/dw_c = sum_t g_c x_c r. */
void ref_rmsnorm_backward(double *dinp, double *dweight, const double *dout, const double *inp,
                          const double *weight, const double *rstd, int T, int C)
{
    for (int t = 0; t < T; t++) {
        const double *x = inp + (size_t)t * C, *g = dout + (size_t)t * C;
        double r = rstd[t], dot = 0.0;
        for (int c = 0; c < C; c++)
            dot += g[c] * (weight ? weight[c] : 1.0) * x[c];
        for (int c = 0; c < C; c++) {
            double w = weight ? weight[c] : 1.0;
            dinp[(size_t)t * C + c] += g[c] * w * r - r * r * r * x[c] * dot / C;
            if (weight)
                dweight[c] += g[c] * x[c] * r;
        }
    }
}

/* ---- adaLN modulation and gated add ------------------------------------------ */

void ref_modulate_forward(double *out, const double *inp, const double *shift,
                          const double *scale, int B, int T, int C, int ld)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c;
                out[i] = inp[i] * (1.0 + scale[(size_t)b * ld + c]) + shift[(size_t)b * ld + c];
            }
}

/* d/dinp = 1 + scale, d/dshift = 1, d/dscale = inp (summed over t). */
void ref_modulate_backward(double *dinp, double *dshift, double *dscale, const double *dout,
                           const double *inp, const double *scale, int B, int T, int C, int ld)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c, s = (size_t)b * ld + c;
                dinp[i] += dout[i] * (1.0 + scale[s]);
                dshift[s] += dout[i];
                dscale[s] += dout[i] * inp[i];
            }
}

void ref_gated_add_forward(double *x, const double *y, const double *gate, int B, int T, int C,
                           int ld)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c;
                x[i] += gate[(size_t)b * ld + c] * y[i];
            }
}

/* d/dy = gate, d/dgate = y (summed over t). */
void ref_gated_add_backward(double *dy, double *dgate, const double *dx, const double *y,
                            const double *gate, int B, int T, int C, int ld)
{
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c, g = (size_t)b * ld + c;
                dy[i] += dx[i] * gate[g];
                dgate[g] += dx[i] * y[i];
            }
}

/* ---- activations ------------------------------------------------------------- */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double silu(double x) { return x * sigmoid(x); }
/* silu' = s + x s (1 - s), s = sigmoid(x). */
static double dsilu(double x) { double s = sigmoid(x); return s + x * s * (1.0 - s); }

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
/* gelu' = Phi(x) + x phi(x): 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi). */
static double dgelu(double x)
{
    const double pi = 3.14159265358979323846;
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * pi);
}

void ref_silu_forward(double *out, const double *inp, size_t N)
{
    for (size_t i = 0; i < N; i++)
        out[i] = silu(inp[i]);
}

void ref_silu_backward(double *dinp, const double *dout, const double *inp, size_t N)
{
    for (size_t i = 0; i < N; i++)
        dinp[i] += dout[i] * dsilu(inp[i]);
}

/* out[t,h] = act(a) * b with a = inp[t,h], b = inp[t,H+h];
 * da += dout * act'(a) * b, db += dout * act(a). */
static void gated_fwd(double (*act)(double), double *out, const double *inp, int T, int H)
{
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const double *row = inp + (size_t)t * 2 * H;
            out[(size_t)t * H + h] = act(row[h]) * row[H + h];
        }
}

static void gated_bwd(double (*act)(double), double (*dact)(double), double *dinp,
                      const double *dout, const double *inp, int T, int H)
{
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const double *row = inp + (size_t)t * 2 * H;
            double g = dout[(size_t)t * H + h], a = row[h], b = row[H + h];
            dinp[(size_t)t * 2 * H + h] += g * dact(a) * b;
            dinp[(size_t)t * 2 * H + H + h] += g * act(a);
        }
}

void ref_swiglu_forward(double *out, const double *inp, int T, int H)
{
    gated_fwd(silu, out, inp, T, H);
}

void ref_swiglu_backward(double *dinp, const double *dout, const double *inp, int T, int H)
{
    gated_bwd(silu, dsilu, dinp, dout, inp, T, H);
}

void ref_geglu_forward(double *out, const double *inp, int T, int H)
{
    gated_fwd(gelu, out, inp, T, H);
}

void ref_geglu_backward(double *dinp, const double *dout, const double *inp, int T, int H)
{
    gated_bwd(gelu, dgelu, dinp, dout, inp, T, H);
}

/* ---- softmax ----------------------------------------------------------------- */

void ref_softmax_forward(double *out, const double *inp, const uint8_t *mask, int mask_rows,
                         int R, int N, double scale)
{
    for (int r = 0; r < R; r++) {
        const double *x = inp + (size_t)r * N;
        const uint8_t *m = mask ? mask + (size_t)(r % mask_rows) * N : NULL;
        double *y = out + (size_t)r * N;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < N; j++)
            if (!m || m[j])
                mx = fmax(mx, scale * x[j]);
        for (int j = 0; j < N; j++) {
            y[j] = (!m || m[j]) ? exp(scale * x[j] - mx) : 0.0;
            sum += y[j];
        }
        for (int j = 0; j < N; j++)
            y[j] = sum > 0.0 ? y[j] / sum : 0.0; /* nothing allowed: all zeros */
    }
}

/* y = softmax(s), s = scale x: dL/ds_j = y_j (g_j - sum_k g_k y_k), times scale.
 * Masked entries have y_j = 0 and get nothing. */
void ref_softmax_backward(double *dinp, const double *dout, const double *out, int R, int N,
                          double scale)
{
    for (int r = 0; r < R; r++) {
        const double *y = out + (size_t)r * N, *g = dout + (size_t)r * N;
        double dot = 0.0;
        for (int k = 0; k < N; k++)
            dot += g[k] * y[k];
        for (int j = 0; j < N; j++)
            dinp[(size_t)r * N + j] += scale * y[j] * (g[j] - dot);
    }
}

/* ---- token permutation --------------------------------------------------------- */

void ref_gather_rows(double *out, const double *inp, const int32_t *idx, int n, int C)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            out[(size_t)i * C + c] = inp[(size_t)idx[i] * C + c];
}

void ref_scatter_add_rows(double *dinp, const double *dout, const int32_t *idx, int n, int C)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            dinp[(size_t)idx[i] * C + c] += dout[(size_t)i * C + c];
}

/* ---- optimizer and reductions -------------------------------------------------- */

void ref_adamw(double *param, const double *grad, double *m, double *v, size_t N, double lr,
               double beta1, double beta2, double eps, double weight_decay, int t,
               double grad_scale)
{
    double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
    for (size_t i = 0; i < N; i++) {
        double g = grad_scale * grad[i];
        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
        param[i] -= lr * ((m[i] / bc1) / (sqrt(v[i] / bc2) + eps) + weight_decay * param[i]);
    }
}

double ref_sumsq(const double *x, size_t N)
{
    double s = 0.0;
    for (size_t i = 0; i < N; i++)
        s += x[i] * x[i];
    return s;
}

/* y = a x + b y */
void ref_axpby(double *y, double a, const double *x, double b, size_t N) {
    for (size_t i = 0; i < N; i++) y[i] = a * x[i] + b * y[i];
}
