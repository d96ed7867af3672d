/* The CUDA backend: memory, GEMM (cuBLAS), and the table.
 *
 * One cuBLAS handle and one stream, created on first use. The kernels live in
 * kernels_*.cu; their host entry points are declared in cuda_common.cuh.
 */
#include "core/cuda/cuda_common.cuh"

#include <stdio.h>

/* ---- shared state ------------------------------------------------------------ */

static cudaStream_t g_stream;   /* every op runs on it */
static cublasHandle_t g_cublas; /* bound to g_stream */
static void *g_scratch;         /* see ts_cuda_scratch */
static size_t g_scratch_bytes;

cudaStream_t ts_cuda_stream(void) { return g_stream; }

void *ts_cuda_scratch(size_t bytes) {
    if (bytes > g_scratch_bytes) {
        /* kernels already queued may still use the old buffer */
        TS_CUDA_CHECK(cudaStreamSynchronize(g_stream));
        TS_CUDA_CHECK(cudaFree(g_scratch));
        g_scratch = NULL;
        size_t want = bytes;
        if (want < 2 * g_scratch_bytes) want = 2 * g_scratch_bytes; /* grow geometrically */
        if (want < ((size_t)1 << 20)) want = (size_t)1 << 20;
        TS_CUDA_CHECK(cudaMalloc(&g_scratch, want));
        g_scratch_bytes = want;
    }
    return g_scratch;
}

/* ---- memory ------------------------------------------------------------------ */

/* cudaMalloc aligns to at least 256 bytes. Zeroed on the stream and waited
 * for, so the memory reads as zeros to anyone (any stream) once we return. */
static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1; /* a real, distinct pointer, like the CPU backend */
    TS_CUDA_CHECK(cudaMalloc(&p, bytes));
    TS_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, g_stream));
    TS_CUDA_CHECK(cudaStreamSynchronize(g_stream));
    return p;
}

static void cuda_free(void *p) {
    if (p) TS_CUDA_CHECK(cudaFree(p)); /* cudaFree waits for the device first */
}

/* Waits for the copy: the host buffer may be reused or freed when this
 * returns (as with the CPU backend), even if it happens to be pinned. */
static void cuda_upload(void *dst_dev, const void *src_host, size_t bytes) {
    if (bytes == 0) return;
    TS_CUDA_CHECK(cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice, g_stream));
    TS_CUDA_CHECK(cudaStreamSynchronize(g_stream));
}

/* Complete on return: waits for every op queued before it. */
static void cuda_download(void *dst_host, const void *src_dev, size_t bytes) {
    if (bytes == 0) return;
    TS_CUDA_CHECK(cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, g_stream));
    TS_CUDA_CHECK(cudaStreamSynchronize(g_stream));
}

static void cuda_copy(void *dst_dev, const void *src_dev, size_t bytes) {
    if (bytes == 0) return;
    TS_CUDA_CHECK(cudaMemcpyAsync(dst_dev, src_dev, bytes, cudaMemcpyDeviceToDevice, g_stream));
}

static void cuda_zero(void *p_dev, size_t bytes) {
    if (bytes == 0) return;
    TS_CUDA_CHECK(cudaMemsetAsync(p_dev, 0, bytes, g_stream));
}

static void cuda_sync(void) { TS_CUDA_CHECK(cudaStreamSynchronize(g_stream)); }

/* ---- GEMM -------------------------------------------------------------------- */

/* C_b = beta * C_b over the (M, N) block of each C_b (row stride ldc); beta ==
 * 0 writes zeros (dropping NaNs). Used for K == 0, where cuBLAS might reject
 * the degenerate leading dimensions. */
__global__ void gemm_scale_kernel(float *C, int M, int N, int ldc, int64_t strideC, int batch,
                                  float beta) {
    size_t per = (size_t)M * N, total = per * (size_t)batch;
    TS_GRID_STRIDE_LOOP(e, total) {
        size_t b = e / per, r = e - b * per;
        size_t i = r / N, j = r - i * N;
        float *c = C + (int64_t)b * strideC + i * (size_t)ldc + j;
        *c = beta == 0.0f ? 0.0f : beta * *c;
    }
}

/* Row-major to cuBLAS's column-major: a row-major X with row stride ld is, to
 * cuBLAS, the column-major X^T with the same ld. So compute
 *   C^T = op(B)^T op(A)^T   (column-major, (N, M))
 * i.e. call cuBLAS with A and B swapped and M and N swapped; each trans flag
 * keeps its own matrix. */
static void cuda_gemm_batched(int transa, int transb, int M, int N, int K, float alpha,
                              const float *A, int lda, int64_t strideA, const float *B, int ldb,
                              int64_t strideB, float beta, float *C, int ldc, int64_t strideC,
                              int batch) {
    if (M < 0 || N < 0 || K < 0 || batch < 0)
        ts_fatal("gemm_batched: negative size (M=%d N=%d K=%d batch=%d)", M, N, K, batch);
    if (M == 0 || N == 0 || batch == 0) return;
    if (K == 0) {
        size_t total = (size_t)M * N * (size_t)batch;
        gemm_scale_kernel<<<ts_cuda_grid(total), TS_CUDA_BLOCK, 0, g_stream>>>(
            C, M, N, ldc, strideC, batch, beta);
        TS_CUDA_LAUNCH_CHECK();
        return;
    }
    /* SGEMM computes in CUBLAS_COMPUTE_32F; with CUBLAS_DEFAULT_MATH (set at
     * init) no TF32 tensor-core downconversion, so results track fp32
     * references. cuBLAS ignores C when beta == 0 (NaNs included). */
    TS_CUBLAS_CHECK(cublasSgemmStridedBatched(
        g_cublas, transb ? CUBLAS_OP_T : CUBLAS_OP_N, transa ? CUBLAS_OP_T : CUBLAS_OP_N,
        N, M, K, &alpha,
        B, ldb, (long long)strideB,
        A, lda, (long long)strideA, &beta,
        C, ldc, (long long)strideC, batch));
}

/* ---- the table --------------------------------------------------------------- */

static ts_backend g_table;
static int g_ready;

static void cuda_init(void) {
    TS_CUDA_CHECK(cudaStreamCreate(&g_stream)); /* blocking: ordered with the legacy default stream */
    TS_CUBLAS_CHECK(cublasCreate(&g_cublas));
    TS_CUBLAS_CHECK(cublasSetStream(g_cublas, g_stream));
    /* Default math: no TF32 (CUBLAS_TF32_TENSOR_OP_MATH would round inputs to
     * 10-bit mantissas); fp32 GEMMs match fp32 references. */
    TS_CUBLAS_CHECK(cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH));

    ts_backend *t = &g_table;
    t->name = "cuda";
    t->kind = TS_BACKEND_CUDA;
    /* memory */
    t->alloc = cuda_alloc;
    t->free = cuda_free;
    t->upload = cuda_upload;
    t->download = cuda_download;
    t->copy = cuda_copy;
    t->zero = cuda_zero;
    t->sync = cuda_sync;
    /* GEMM */
    t->gemm_batched = cuda_gemm_batched;
    /* normalisation and modulation (kernels_norm.cu) */
    t->rmsnorm_forward = ts_cuda_rmsnorm_forward;
    t->rmsnorm_backward = ts_cuda_rmsnorm_backward;
    t->modulate_forward = ts_cuda_modulate_forward;
    t->modulate_backward = ts_cuda_modulate_backward;
    t->gated_add_forward = ts_cuda_gated_add_forward;
    t->gated_add_backward = ts_cuda_gated_add_backward;
    /* activations (kernels_act.cu) */
    t->silu_forward = ts_cuda_silu_forward;
    t->silu_backward = ts_cuda_silu_backward;
    t->swiglu_forward = ts_cuda_swiglu_forward;
    t->swiglu_backward = ts_cuda_swiglu_backward;
    t->geglu_forward = ts_cuda_geglu_forward;
    t->geglu_backward = ts_cuda_geglu_backward;
    /* softmax (kernels_softmax.cu) */
    t->softmax_forward = ts_cuda_softmax_forward;
    t->softmax_backward = ts_cuda_softmax_backward;
    /* token permutation, optimizer, reductions (kernels_misc.cu) */
    t->gather_rows = ts_cuda_gather_rows;
    t->scatter_add_rows = ts_cuda_scatter_add_rows;
    t->adamw = ts_cuda_adamw;
    t->sumsq = ts_cuda_sumsq;
    t->axpby = ts_cuda_axpby;
}

extern "C" const ts_backend *ts_backend_cuda(const char **why) {
    static char reason[256];
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) {
        if (err != cudaSuccess) {
            snprintf(reason, sizeof reason, "no CUDA device found: %s", cudaGetErrorString(err));
            (void)cudaGetLastError(); /* clear it: callers fall back to the CPU */
        } else {
            snprintf(reason, sizeof reason, "no CUDA device found: device count is 0");
        }
        if (why) *why = reason;
        return NULL;
    }
    if (!g_ready) {
        cuda_init();
        g_ready = 1;
    }
    return &g_table;
}
