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

#ifdef TESSERA_HAVE_MPI
#include <mpi.h>
typedef MPI_Comm ts_wattn_comm;
#else
typedef int ts_wattn_comm; /* the core-only build has no sequence parallelism */
#endif

/* Sequence parallelism (Ulysses): the H x W grid of a layer splits into
 * `size` bands of H / size whole rows, rank r of comm holding band r of
 * every sample as its tokens (B * H/size * W, in grid order). Projections
 * work on a rank's own tokens; attention trades them in an all-to-all for
 * all tokens of the grid with heads / size of the heads, attends window by
 * window, and trades back. A shift moves no data: it only changes which of
 * the gathered tokens form a window.
 *
 * Under window parallelism the grid is the rank's block; a shifted layer
 * (roll_sy, roll_sx > 0) then rolls the gathered q, k and v of its heads by
 * the shift across wp_comm (parallel/roll.h), attends over the rolled
 * block with row_group's mask, and rolls the output back before trading
 * it home. */
typedef struct {
    ts_wattn_comm comm;
    int size, rank;
    ts_wattn_comm wp_comm; /* the WP_y x WP_x communicator, when roll_sy or roll_sx > 0 */
    int roll_sy, roll_sx;
} ts_wattn_sp;

/* What depends only on the shape: built once per layer geometry. */
typedef struct {
    const ts_backend *be;
    ts_win_geom geom;
    int B, C, heads, hd;  /* samples, channels, heads attended here (all / sp), channels per head */
    int T, nW, L;         /* this rank's tokens (B*H*W / sp), windows per sample, tokens per window */
    int32_t *qkv_idx;     /* (3*B*heads*nW*L) on the device */
    int32_t *out_idx;     /* (B*H*W*heads) on the device */
    uint8_t *mask;        /* (nW*L, L) on the device, NULL without a latitude shift */
    /* sequence parallelism (sp.size > 1) */
    ts_wattn_sp sp;
    int32_t *pack_idx;   /* (T*3*heads*sp) own qkv rows -> blocks by destination rank, device */
    int32_t *unpack_idx; /* (T*heads*sp) received output rows -> own tokens' rows, device */
    float *host[2];      /* (3*T*C) host staging when the backend is not the CPU */
    size_t sp_bytes;     /* bytes sent to other ranks since the plan was made */
    /* the roll of a shifted layer under WP x SP (roll != NULL) */
    void *roll;       /* two ts_roll_plan: q, k, v (3 heads hd channels) and the output (heads hd) */
    int32_t *to_grid; /* (B*H*W*3*heads) received q, k, v rows -> grid order, device */
    int32_t *to_recv; /* (B*H*W*heads) grid-ordered output rows -> the order of the trade home, device */
    size_t roll_bytes, roll_bytes_expected; /* strip bytes sent, and the analytic count */
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
    /* sequence parallelism: the two sides of an all-to-all (transient) */
    float *sp_a, *sp_b; /* (3 T C) each */
} ts_wattn_acts;

/* Returns 0, or -1 with err set (geometry, heads not dividing C). */
/* row_group (g->H) optional: see ts_win_mask (window-parallel blocks). */
int ts_wattn_plan_make(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                       int C, int heads, char *err, size_t cap);
/* The same with sequence parallelism over sp (NULL or sp->size 1: none):
 * g is the whole grid the bands split, heads all the heads; sp->size must
 * divide heads and g->H (one line in err otherwise). Collective over
 * sp->comm in forward and backward. */
int ts_wattn_plan_make_sp(ts_wattn_plan *p, const ts_backend *be, const ts_win_geom *g, const uint8_t *row_group, int B,
                          int C, int heads, const ts_wattn_sp *sp, char *err, size_t cap);
/* Bytes one forward (or one backward) sends to other ranks: the analytic
 * count of both all-to-alls, 4 T C (sp - 1) / sp floats. */
size_t ts_wattn_sp_bytes_per_pass(const ts_wattn_plan *p);
void ts_wattn_plan_free(ts_wattn_plan *p);
/* Takes the buffers from an arena (NULLs while the arena measures). Layers
 * that run one after another can share the transient buffers (qkv and the
 * backward scratch): pass the first layer's acts as `share`, else NULL. */
void ts_wattn_acts_take(ts_wattn_acts *a, ts_arena *arena, const ts_wattn_plan *p, const ts_wattn_acts *share);

/* y (T, C) = attention of x (T, C); Wqkv (3C, C), Wo (C, C), PyTorch [out, in]. */
void ts_wattn_forward(ts_wattn_plan *p, ts_wattn_acts *a, float *y, const float *x, const float *Wqkv, const float *Wo);
/* Accumulates dx (T, C), dWqkv (3C, C), dWo (C, C) from dy (T, C); needs the
 * activations of the forward call on the same x. */
void ts_wattn_backward(ts_wattn_plan *p, ts_wattn_acts *a, float *dx, float *dWqkv, float *dWo, const float *dy,
                       const float *x, const float *Wqkv, const float *Wo);

/* Forward FLOPs of this rank as REFERENCE.md counts them: 8 T C^2 + 4 T L C. */
double ts_wattn_flops(const ts_wattn_plan *p);

#endif
