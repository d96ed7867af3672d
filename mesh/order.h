/* Node orders along space-filling curves, and applying a permutation to
 * per-node arrays, cells and CSRs.
 *
 * A permutation is stored both ways: perm[new] = old (gather: the node that
 * goes to place new) and inv[old] = new (what cells and CSR columns are
 * renumbered with).
 */
#ifndef TESSERA_MESH_ORDER_H
#define TESSERA_MESH_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"

typedef enum {
    TS_CURVE_HILBERT = 0, /* 2-D and 3-D Hilbert curves (Skilling's transform) */
    TS_CURVE_MORTON = 1,  /* Z order: coordinate bits interleaved */
} ts_curve;

/* Grid bits per axis when the caller passes 0: 2^16 cells across the
 * largest side, finer than any mesh we train on; coarser ties fall back on
 * the old index. */
enum { TS_CURVE_BITS_DEFAULT = 16 };

/* Curve index of a lattice point q (dim coordinates, each < 2^bits);
 * dim is 2 or 3 and dim·bits <= 64. On the full 2^bits lattice the Hilbert
 * index visits points one lattice step apart; both curves visit each aligned
 * 2^j-sided block as one run of 2^(dim·j) consecutive indices. */
uint64_t ts_hilbert_index(const uint32_t *q, int dim, int bits);
uint64_t ts_morton_index(const uint32_t *q, int dim, int bits);

/* Order n nodes with positions pos (n × dim floats, dim 2 or 3) along the
 * curve: positions are quantized to a 2^bits lattice over the bounding cube
 * (the bounding box's largest side on every axis, so cells stay square and
 * the curve's locality is the same along every axis), and nodes sorted by
 * (curve index, old index), so equal cells keep their file order and the
 * result is deterministic. bits: 0 = TS_CURVE_BITS_DEFAULT, at most 32 in
 * 2-D and 21 in 3-D. perm (n) gets new → old; inv (n, or NULL) old → new.
 * -1 with a message on a bad argument or a non-finite position. */
int ts_curve_order(const float *pos, int64_t n, int dim, ts_curve curve, int bits, int32_t *perm, int32_t *inv,
                   char *err, size_t err_cap);

/* inv[perm[i]] = i. */
void ts_perm_invert(const int32_t *perm, int64_t n, int32_t *inv);

/* dst row i = src row perm[i], rows of row_bytes bytes: positions
 * (row_bytes = dim · 4), node types, fields (channels · 4). dst != src. */
void ts_permute_rows(const void *src, void *dst, int64_t n, size_t row_bytes, const int32_t *perm);

/* ids[e] = inv[ids[e]] in place: cells (n = n_cells · nodes_per_cell) or any
 * other list of old node ids. Ids must be valid (checked by the reader). */
void ts_renumber_ids(int32_t *ids, size_t n, const int32_t *inv);

/* out = P a Pᵀ for a square a over the nodes: row i of out is row perm[i] of
 * a, with each column c renamed inv[c] (rows re-sorted). */
void ts_csr_permute(const ts_csr *a, const int32_t *perm, const int32_t *inv, ts_csr *out);

#endif
