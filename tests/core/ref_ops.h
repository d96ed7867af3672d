/* Double-precision reference implementations of every op in core/backend.h.
 *
 * An independent oracle for the tests: naive loops written straight from the
 * formulas in backend.h, no blocking, no vectorisation, no shortcuts. Each
 * function takes the same arguments in the same order as its ts_backend entry,
 * with double buffers and double scalars (mask stays uint8_t, idx stays
 * int32_t). Pointers are host pointers.
 *
 * As in the table: forward ops overwrite their outputs; backward ops
 * ACCUMULATE (+=) into every gradient.
 */
#ifndef TESSERA_TESTS_REF_OPS_H
#define TESSERA_TESTS_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

/* C_b = alpha op(A_b) op(B_b) + beta C_b; beta == 0 ignores C's old contents. */
void ref_gemm_batched(int transa, int transb, int M, int N, int K, double alpha,
                      const double *A, int lda, int64_t strideA,
                      const double *B, int ldb, int64_t strideB, double beta,
                      double *C, int ldc, int64_t strideC, int batch);

void ref_rmsnorm_forward(double *out, double *rstd, const double *inp, const double *weight,
                         int T, int C, double eps);
void ref_rmsnorm_backward(double *dinp, double *dweight, const double *dout, const double *inp,
                          const double *weight, const double *rstd, int T, int C);

void ref_modulate_forward(double *out, const double *inp, const double *shift,
                          const double *scale, int B, int T, int C, int ld);
void ref_modulate_backward(double *dinp, double *dshift, double *dscale, const double *dout,
                           const double *inp, const double *scale, int B, int T, int C, int ld);

void ref_gated_add_forward(double *x, const double *y, const double *gate, int B, int T, int C,
                           int ld);
void ref_gated_add_backward(double *dy, double *dgate, const double *dx, const double *y,
                            const double *gate, int B, int T, int C, int ld);

void ref_silu_forward(double *out, const double *inp, size_t N);
void ref_silu_backward(double *dinp, const double *dout, const double *inp, size_t N);

void ref_swiglu_forward(double *out, const double *inp, int T, int H);
void ref_swiglu_backward(double *dinp, const double *dout, const double *inp, int T, int H);
void ref_geglu_forward(double *out, const double *inp, int T, int H);
void ref_geglu_backward(double *dinp, const double *dout, const double *inp, int T, int H);

void ref_softmax_forward(double *out, const double *inp, const uint8_t *mask, int mask_rows,
                         int R, int N, double scale);
void ref_softmax_backward(double *dinp, const double *dout, const double *out, int R, int N,
                          double scale);

void ref_gather_rows(double *out, const double *inp, const int32_t *idx, int n, int C);
void ref_scatter_add_rows(double *dinp, const double *dout, const int32_t *idx, int n, int C);

void ref_adamw(double *param, const double *grad, double *m, double *v, size_t N, double lr,
               double beta1, double beta2, double eps, double weight_decay, int t,
               double grad_scale);
double ref_sumsq(const double *x, size_t N);
void ref_axpby(double *y, double a, const double *x, double b, size_t N);

#endif
