/* Window self-attention of the gridded Swin model, forward and backward,
 * over all samples and windows of a rank with a handful of backend ops:
 *
 *   qkv = x Wqkv^T                       one GEMM over all tokens
 *   q, k, v -> (3, B, heads, nW, L, hd)  one gather: window partition, shift
 *                                        and head split in one index
 *   P = softmax(q k^T / sqrt(hd), mask)  batched GEMM + row softmax
 *   O = P v                              batched GEMM
 *   o -> (T, C)                          one gather back to grid order
 *   y = o Wo^T                           one GEMM
 *
 * The residual stream stays in grid order (tokens y * W + x per sample); a
 * shifted layer differs from a plain one only in its gather indices and its
 * latitude mask (models/window.h). Projections are bias-free (REFERENCE.md).
 */
#ifndef TESSERA_MODELS_WINDOW_ATTENTION_H
#define TESSERA_MODELS_WINDOW_ATTENTION_H

#include "core/backend.h"
#include "core/params.h"
#include "models/window.h"

/* What depends only on the shape: built once per layer geometry. */
typedef struct {
    const ts_backend *be;
    ts_win_geom geom;
    int B, C, heads, hd;  /* samples, channels, heads, channels per head */
    int T, nW, L;         /* tokens B*H*W, windows per sample, tokens per window */
    int32_t *qkv_idx;     /* (3*B*heads*nW*L) on the device */
    int32_t *out_idx;     /* (T*heads) on the device */
    uint8_t *mask;        /* (nW*L, L) on the device, NULL without a latitude shift */
} ts_wattn_plan;

/* Activations kept for backward, and backward scratch, from an arena. */
typedef struct {
    float *qkv;   /* (T, 3C), transient */
    float *qkvw;  /* (3, B, heads, nW, L, hd) */
    float *P;     /* (B, heads, nW, L, L) attention probabilities */
    float *ow;    /* (B, heads, nW, L, hd) */
    float *o;     /* (T, C) */
    /* backward scratch (transient) */
    float *d_o;    /* (T, C) */
    float *d_ow;   /* (B, heads, nW, L, hd) */
    float *d_P;    /* (B, heads, nW, L, L) */
    float *d_S;    /* (B, heads, nW, L, L); the forward's raw scores live here too */
    float *d_qkvw; /* (3, B, heads, nW, L, hd) */
    float *d_qkv;  /* (T, 3C) */
} ts_wattn_acts;

/* Returns 0, or -1 with err set (geometry, heads not dividing C). */
/* row_group (g->H) optional: see ts_win_mask (window-parallel blocks). */
int ts_wattn_plan_make(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                       int C, int heads, char *err, size_t cap);
void ts_wattn_plan_free(ts_wattn_plan *p);
/* Takes the buffers from an arena (NULLs while the arena measures). Layers
 * that run one after another can share the transient buffers (qkv and the
 * backward scratch): pass the first layer's acts as `share`, else NULL. */
void ts_wattn_acts_take(ts_wattn_acts *a, ts_arena *arena, const ts_wattn_plan *p, const ts_wattn_acts *share);

/* y (T, C) = attention of x (T, C); Wqkv (3C, C), Wo (C, C), PyTorch [out, in]. */
void ts_wattn_forward(const ts_wattn_plan *p, ts_wattn_acts *a, float *y, const float *x, const float *Wqkv,
                      const float *Wo);
/* Accumulates dx (T, C), dWqkv (3C, C), dWo (C, C) from dy (T, C); needs the
 * activations of the forward call on the same x. */
void ts_wattn_backward(const ts_wattn_plan *p, ts_wattn_acts *a, float *dx, float *dWqkv, float *dWo,
                       const float *dy, const float *x, const float *Wqkv, const float *Wo);

/* Forward FLOPs as REFERENCE.md counts them: 8 T C^2 + 4 T L C. */
double ts_wattn_flops(const ts_wattn_plan *p);

#endif
