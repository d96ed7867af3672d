/* Shared by the CUDA backend's files: error checks, the backend's stream and
 * scratch buffer, launch helpers, warp reductions, and the host entry points
 * of the kernels (one per ts_backend op, same signature).
 *
 * Everything runs on one stream (ts_cuda_stream()), so ops are ordered among
 * themselves and asynchronous to the host until sync()/download().
 */
#ifndef TESSERA_CORE_CUDA_COMMON_CUH
#define TESSERA_CORE_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/backend.h"
}
#include "core/log.h"

/* ---- error checks --------------------------------------------------------- */
/* A failing call names our file:line (ts_fatal adds it), the call, and the
 * library's own message. */
#define TS_CUDA_CHECK(call)                                                                 \
    do {                                                                                    \
        cudaError_t ts_cuda_err_ = (call);                                                  \
        if (ts_cuda_err_ != cudaSuccess)                                                    \
            ts_fatal("CUDA: %s failed: %s (%s)", #call, cudaGetErrorString(ts_cuda_err_),   \
                     cudaGetErrorName(ts_cuda_err_));                                       \
    } while (0)

#define TS_CUBLAS_CHECK(call)                                                               \
    do {                                                                                    \
        cublasStatus_t ts_cublas_st_ = (call);                                              \
        if (ts_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                         \
            ts_fatal("cuBLAS: %s failed: %s (%s)", #call, cublasGetStatusName(ts_cublas_st_), \
                     cublasGetStatusString(ts_cublas_st_));                                 \
    } while (0)

/* After every kernel launch: catches bad launch configurations at once
 * (errors inside a kernel surface at the next checked call). */
#define TS_CUDA_LAUNCH_CHECK() TS_CUDA_CHECK(cudaGetLastError())

/* ---- shared state (defined in backend_cuda.cu) ------------------------------ */
/* The backend's one stream; every kernel, copy and cuBLAS call goes on it. */
cudaStream_t ts_cuda_stream(void);
/* A device scratch buffer of at least `bytes`, reused by every op (ops are
 * ordered on the one stream, so one op's scratch is dead before the next
 * op's kernels run). Growing it synchronises the stream first. */
void *ts_cuda_scratch(size_t bytes);

/* ---- launch helpers ----------------------------------------------------------- */
#define TS_CUDA_BLOCK 256          /* threads per block for elementwise kernels */
#define TS_CUDA_MAX_GRID 65536     /* grid-stride loops cover the rest */
#define TS_WARPS_PER_BLOCK 8       /* warp-per-row kernels: 256 threads = 8 rows */

/* Blocks for an elementwise grid-stride kernel over n items (n > 0). */
static inline unsigned ts_cuda_grid(size_t n) {
    size_t g = (n + TS_CUDA_BLOCK - 1) / TS_CUDA_BLOCK;
    return (unsigned)(g < TS_CUDA_MAX_GRID ? g : TS_CUDA_MAX_GRID);
}
/* Blocks for a warp-per-row kernel over `rows` rows (rows > 0). */
static inline unsigned ts_cuda_row_grid(int rows) {
    return (unsigned)(((size_t)rows + TS_WARPS_PER_BLOCK - 1) / TS_WARPS_PER_BLOCK);
}

/* Grid-stride loop over [0, n) with 64-bit indices. */
#define TS_GRID_STRIDE_LOOP(i, n)                                                  \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);        \
         i += (size_t)blockDim.x * gridDim.x)

/* ---- warp reductions ---------------------------------------------------------- */
/* Butterfly (xor) reductions: a fixed order, and every lane ends with the
 * bit-identical result (each step adds the same two values, a+b == b+a). */
static __device__ __forceinline__ float ts_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float ts_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- host entry points (same meaning and arguments as ts_backend) ----------- */
/* kernels_norm.cu */
void ts_cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                             int T, int C, float eps);
void ts_cuda_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                              const float *weight, const float *rstd, int T, int C);
void ts_cuda_modulate_forward(float *out, const float *inp, const float *shift,
                              const float *scale, int B, int T, int C, int ld);
void ts_cuda_modulate_backward(float *dinp, float *dshift, float *dscale, const float *dout,
                               const float *inp, const float *scale, int B, int T, int C, int ld);
void ts_cuda_gated_add_forward(float *x, const float *y, const float *gate, int B, int T, int C,
                               int ld);
void ts_cuda_gated_add_backward(float *dy, float *dgate, const float *dx, const float *y,
                                const float *gate, int B, int T, int C, int ld);
/* kernels_act.cu */
void ts_cuda_silu_forward(float *out, const float *inp, size_t N);
void ts_cuda_silu_backward(float *dinp, const float *dout, const float *inp, size_t N);
void ts_cuda_swiglu_forward(float *out, const float *inp, int T, int H);
void ts_cuda_swiglu_backward(float *dinp, const float *dout, const float *inp, int T, int H);
void ts_cuda_geglu_forward(float *out, const float *inp, int T, int H);
void ts_cuda_geglu_backward(float *dinp, const float *dout, const float *inp, int T, int H);
/* kernels_softmax.cu */
void ts_cuda_softmax_forward(float *out, const float *inp, const uint8_t *mask, int mask_rows,
                             int R, int N, float scale);
void ts_cuda_softmax_backward(float *dinp, const float *dout, const float *out, int R, int N,
                              float scale);
/* kernels_misc.cu */
void ts_cuda_gather_rows(float *out, const float *inp, const int32_t *idx, int n, int C);
void ts_cuda_scatter_add_rows(float *dinp, const float *dout, const int32_t *idx, int n, int C);
void ts_cuda_adamw(float *param, const float *grad, float *m, float *v, size_t N, float lr,
                   float beta1, float beta2, float eps, float weight_decay, int t,
                   float grad_scale);
double ts_cuda_sumsq(const float *x, size_t N);
void ts_cuda_axpby(float *y, float a, const float *x, float b, size_t N);

#endif
