#include "core/profile.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

static const ts_backend *g_inner;
static ts_backend g_table;
static ts_profile_entry g_entries[TS_PROFILE_OPS];

enum {
    P_GEMM, P_RMS_F, P_RMS_B, P_MOD_F, P_MOD_B, P_GATE_F, P_GATE_B, P_SILU_F, P_SILU_B, P_SWIGLU_F, P_SWIGLU_B,
    P_GEGLU_F, P_GEGLU_B, P_SOFTMAX_F, P_SOFTMAX_B, P_GATHER, P_SCATTER, P_ADAMW, P_AXPBY, P_SUMSQ, P_COPY, P_ZERO,
    P_UPLOAD, P_DOWNLOAD, P_COUNT
};
static const char *const NAMES[P_COUNT] = {
    "gemm_batched", "rmsnorm_forward", "rmsnorm_backward", "modulate_forward", "modulate_backward",
    "gated_add_forward", "gated_add_backward", "silu_forward", "silu_backward", "swiglu_forward", "swiglu_backward",
    "geglu_forward", "geglu_backward", "softmax_forward", "softmax_backward", "gather_rows", "scatter_add_rows",
    "adamw", "axpby", "sumsq", "copy", "zero", "upload", "download"};

static double g_t0;
static void begin(void) {
    g_inner->sync();
    g_t0 = ts_now();
}
static void end(int op) {
    g_inner->sync();
    g_entries[op].calls++;
    g_entries[op].seconds += ts_now() - g_t0;
}

#define WRAP(op, field, params, args)                                                                        \
    static void p_##field params {                                                                           \
        begin();                                                                                             \
        g_inner->field args;                                                                                 \
        end(op);                                                                                             \
    }

WRAP(P_GEMM, gemm_batched,
     (int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, int64_t sA, const float *B, int ldb,
      int64_t sB, float beta, float *C, int ldc, int64_t sC, int batch),
     (ta, tb, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch))
WRAP(P_RMS_F, rmsnorm_forward, (float *o, float *r, const float *i, const float *w, int T, int C, float e),
     (o, r, i, w, T, C, e))
WRAP(P_RMS_B, rmsnorm_backward,
     (float *di, float *dw, const float *d, const float *i, const float *w, const float *r, int T, int C),
     (di, dw, d, i, w, r, T, C))
WRAP(P_MOD_F, modulate_forward,
     (float *o, const float *i, const float *sh, const float *sc, int B, int T, int C, int ld), (o, i, sh, sc, B, T, C, ld))
WRAP(P_MOD_B, modulate_backward,
     (float *di, float *ds, float *dc, const float *d, const float *i, const float *sc, int B, int T, int C, int ld),
     (di, ds, dc, d, i, sc, B, T, C, ld))
WRAP(P_GATE_F, gated_add_forward, (float *x, const float *y, const float *g, int B, int T, int C, int ld),
     (x, y, g, B, T, C, ld))
WRAP(P_GATE_B, gated_add_backward,
     (float *dy, float *dg, const float *dx, const float *y, const float *g, int B, int T, int C, int ld),
     (dy, dg, dx, y, g, B, T, C, ld))
WRAP(P_SILU_F, silu_forward, (float *o, const float *i, size_t N), (o, i, N))
WRAP(P_SILU_B, silu_backward, (float *di, const float *d, const float *i, size_t N), (di, d, i, N))
WRAP(P_SWIGLU_F, swiglu_forward, (float *o, const float *i, int T, int H), (o, i, T, H))
WRAP(P_SWIGLU_B, swiglu_backward, (float *di, const float *d, const float *i, int T, int H), (di, d, i, T, H))
WRAP(P_GEGLU_F, geglu_forward, (float *o, const float *i, int T, int H), (o, i, T, H))
WRAP(P_GEGLU_B, geglu_backward, (float *di, const float *d, const float *i, int T, int H), (di, d, i, T, H))
WRAP(P_SOFTMAX_F, softmax_forward, (float *o, const float *i, const uint8_t *m, int mr, int R, int N, float s),
     (o, i, m, mr, R, N, s))
WRAP(P_SOFTMAX_B, softmax_backward, (float *di, const float *d, const float *o, int R, int N, float s),
     (di, d, o, R, N, s))
WRAP(P_GATHER, gather_rows, (float *o, const float *i, const int32_t *idx, int n, int C), (o, i, idx, n, C))
WRAP(P_SCATTER, scatter_add_rows, (float *d, const float *s, const int32_t *idx, int n, int C), (d, s, idx, n, C))
WRAP(P_ADAMW, adamw,
     (float *p, const float *g, float *m, float *v, size_t N, float lr, float b1, float b2, float e, float wd, int t,
      float gs),
     (p, g, m, v, N, lr, b1, b2, e, wd, t, gs))
WRAP(P_AXPBY, axpby, (float *y, float a, const float *x, float b, size_t N), (y, a, x, b, N))
WRAP(P_COPY, copy, (void *d, const void *s, size_t n), (d, s, n))
WRAP(P_ZERO, zero, (void *p, size_t n), (p, n))
WRAP(P_UPLOAD, upload, (void *d, const void *s, size_t n), (d, s, n))
WRAP(P_DOWNLOAD, download, (void *d, const void *s, size_t n), (d, s, n))

static double p_sumsq(const float *x, size_t N) {
    begin();
    double r = g_inner->sumsq(x, N);
    end(P_SUMSQ);
    return r;
}

const ts_backend *ts_profile_backend(const ts_backend *inner) {
    g_inner = inner;
    g_table = *inner; /* memory management and sync pass straight through */
    g_table.name = inner->name;
    g_table.gemm_batched = p_gemm_batched, g_table.rmsnorm_forward = p_rmsnorm_forward;
    g_table.rmsnorm_backward = p_rmsnorm_backward, g_table.modulate_forward = p_modulate_forward;
    g_table.modulate_backward = p_modulate_backward, g_table.gated_add_forward = p_gated_add_forward;
    g_table.gated_add_backward = p_gated_add_backward, g_table.silu_forward = p_silu_forward;
    g_table.silu_backward = p_silu_backward, g_table.swiglu_forward = p_swiglu_forward;
    g_table.swiglu_backward = p_swiglu_backward, g_table.geglu_forward = p_geglu_forward;
    g_table.geglu_backward = p_geglu_backward, g_table.softmax_forward = p_softmax_forward;
    g_table.softmax_backward = p_softmax_backward, g_table.gather_rows = p_gather_rows;
    g_table.scatter_add_rows = p_scatter_add_rows, g_table.adamw = p_adamw, g_table.axpby = p_axpby;
    g_table.sumsq = p_sumsq, g_table.copy = p_copy, g_table.zero = p_zero, g_table.upload = p_upload;
    g_table.download = p_download;
    ts_profile_reset();
    return &g_table;
}

void ts_profile_reset(void) {
    for (int i = 0; i < P_COUNT; i++) g_entries[i] = (ts_profile_entry){NAMES[i], 0, 0.0};
}

static int by_time(const void *a, const void *b) {
    double x = ((const ts_profile_entry *)a)->seconds, y = ((const ts_profile_entry *)b)->seconds;
    return (x < y) - (x > y);
}

int ts_profile_entries(ts_profile_entry *out, int cap) {
    int n = 0;
    for (int i = 0; i < P_COUNT && n < cap; i++)
        if (g_entries[i].calls) out[n++] = g_entries[i];
    qsort(out, (size_t)n, sizeof *out, by_time);
    return n;
}
