/* Sparse multi-head attention over a CSR mask: the attention of the mesh
 * graph transformer (REFERENCE.md, "Mesh model"). Row i of the mask lists
 * the columns (keys) query i may attend to; nothing outside the mask is ever
 * computed, so memory is O(rows * heads) beyond q, k, v and the output.
 *
 *   s_ij = scale * q_i . k_j           (per head, (i, j) in the mask)
 *   P_ij = exp(s_ij - lse_i),  lse_i = log sum_j exp(s_ij)
 *   o_i  = sum_j P_ij v_j
 *
 * Rows are queries, columns keys; heads are contiguous blocks of D channels
 * of a row: q (R, H*D), k and v (C, H*D). A row with no entries gets o = 0
 * and lse = -inf.
 *
 * CPU functions (OpenMP over rows): the backend table has no sparse op yet,
 * so these take host pointers whatever backend the rest of a model uses.
 *
 * Backward is deterministic and race-free without atomics: dq is formed row
 * by row over the mask, dk and dv column by column over its transpose, each
 * recomputing P_ij = exp(s_ij - lse_i) and dS_ij = P_ij (dO_i . v_j - Delta_i),
 * Delta_i = dO_i . o_i. Results do not depend on the thread count.
 *
 * Partials, for sequence parallelism: when the columns of a row are split
 * over ranks, each rank runs ts_gattn_partial_forward over its own columns
 * (a mask of the same rows holding only those columns) and gets, per row and
 * head, the running max m, the sum l = sum_j exp(s_ij - m) and the
 * unnormalized o~ = sum_j exp(s_ij - m) v_j. Partials combine in
 * log-sum-exp form, either pairwise (ts_gattn_merge, associative) or as an
 * all-reduce: MPI_MAX of m, ts_gattn_rescale onto that max, MPI_SUM of
 * (l, o~), then ts_gattn_finish. The backward over a column subset, given
 * the merged o and lse, yields that subset's share of dq (sum over ranks)
 * and the full dk, dv of its columns.
 */
#ifndef TESSERA_MODELS_GRAPH_ATTENTION_H
#define TESSERA_MODELS_GRAPH_ATTENTION_H

#include <stdint.h>

#include "mesh/csr.h"

/* out (R, H*D), lse (R, H) overwritten; q (R, H*D); k, v (C, H*D);
 * mask (R x C). */
void ts_gattn_forward(float *out, float *lse, const float *q, const float *k, const float *v, const ts_csr *mask,
                      int H, int D, float scale);

/* Accumulates (+=) dq (R, H*D), dk (C, H*D), dv (C, H*D) from dout (R, H*D),
 * given the forward's out and lse. mask_t (C x R) is the transpose of mask
 * (same entries, rows ascending within each column). delta (R, H) is
 * scratch, overwritten with Delta_i = dout_i . out_i per head. */
void ts_gattn_backward(float *dq, float *dk, float *dv, float *delta, const float *dout, const float *out,
                       const float *lse, const float *q, const float *k, const float *v, const ts_csr *mask,
                       const ts_csr *mask_t, int H, int D, float scale);

/* Partial forward over the columns in mask: o (R, H*D) unnormalized,
 * m (R, H) max score (-inf for no columns), l (R, H) sum of exp(s - m). */
void ts_gattn_partial_forward(float *o, float *m, float *l, const float *q, const float *k, const float *v,
                              const ts_csr *mask, int H, int D, float scale);
/* (o, m, l) <- their combination with the partial (o2, m2, l2), R rows. */
void ts_gattn_merge(float *o, float *m, float *l, const float *o2, const float *m2, const float *l2, int64_t R, int H,
                    int D);
/* Rescale a partial from its own max m onto m_max >= m (the all-reduced
 * max): o and l times exp(m - m_max). After this, partials add. */
void ts_gattn_rescale(float *o, float *l, const float *m, const float *m_max, int64_t R, int H, int D);
/* out = o / l, lse = m + log l (out = 0, lse = -inf where l = 0). out may
 * alias o. */
void ts_gattn_finish(float *out, float *lse, const float *o, const float *m, const float *l, int64_t R, int H, int D);

/* Forward FLOPs: 4 * nnz * H * D (scores and values; the exponentials are
 * not counted). */
double ts_gattn_flops(const ts_csr *mask, int H, int D);

#endif
