/* Graph topology on ts_csr: building, transposing and combining sparse
 * boolean matrices, mesh edges from cells, and k-hop powers.
 *
 * Conventions: every ts_csr these functions return owns its arrays (free
 * with ts_csr_free) and keeps the invariants of mesh/csr.h: columns ascending
 * and unique within each row. Node ids are int32 (meshes below 2^31 nodes);
 * entry counts are int64. Functions that read caller data which may be wrong
 * (cells from a file, pair lists) return 0, or -1 with one line in err
 * (err may be NULL); misuse by our own code (mismatched shapes) is fatal.
 */
#ifndef TESSERA_MESH_GRAPH_H
#define TESSERA_MESH_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/csr.h"

/* ---- CSR basics (mesh/csr.c) ------------------------------------------------ */

/* Allocate an n_rows × n_cols matrix with room for nnz entries; rowptr is
 * zeroed, so an all-empty matrix needs only rowptr[n_rows] = 0. */
void ts_csr_alloc(ts_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz);
void ts_csr_free(ts_csr *m); /* frees the arrays, leaves an empty 0 × 0 matrix */

/* Sort v[0..n) ascending and drop repeats in place; returns the new length. */
int64_t ts_sort_unique_i32(int32_t *v, int64_t n);

/* The matrix with a 1 at each (row[e], col[e]), e < n_pairs: any order,
 * repeats allowed. -1 if a pair lies outside n_rows × n_cols. */
int ts_csr_from_pairs(int64_t n_rows, int64_t n_cols, int64_t n_pairs, const int32_t *row, const int32_t *col,
                      ts_csr *out, char *err, size_t err_cap);

/* t = aᵀ. src (nnz entries, or NULL): entry e of t is entry src[e] of a, so
 * values stored beside a's entries (attention weights) transpose with
 * t_val[e] = a_val[src[e]]. */
void ts_csr_transpose(const ts_csr *a, ts_csr *t, int64_t *src);

/* out = m[0] ∪ … ∪ m[n-1] (entry-wise OR); all of one shape, n >= 1. */
void ts_csr_union(int n, const ts_csr *const *m, ts_csr *out);

/* Index of entry (i, j) in a->col, or -1 when absent (binary search). */
int64_t ts_csr_find(const ts_csr *a, int64_t i, int32_t j);

/* 1 when a and b have the same shape and entries. */
int ts_csr_equal(const ts_csr *a, const ts_csr *b);

/* 0 when m keeps the invariants of mesh/csr.h (rowptr from 0 and
 * non-decreasing, columns in range, ascending, unique), else -1 and why. */
int ts_csr_check(const ts_csr *m, char *err, size_t err_cap);

/* ---- edges from cells (mesh/edges.c) ---------------------------------------- */

/* The undirected adjacency (symmetric, no self-loops, no repeats) of the
 * simplices in cells (n_cells × nodes_per_cell, row-major; 3 = triangles,
 * 4 = tetrahedra): every pair of nodes of a cell is an edge. -1 when
 * nodes_per_cell is not 3 or 4, or a cell names a node outside
 * [0, n_nodes): the message names the cell index and the node. */
int ts_mesh_edges_from_cells(int64_t n_nodes, int64_t n_cells, int nodes_per_cell, const int32_t *cells,
                             ts_csr *adj, char *err, size_t err_cap);

/* ---- k-hop powers (mesh/khop.c) --------------------------------------------- */

/* out(i, j) = 1 when j ≠ i is reachable from i along at most k entries of
 * the square matrix adj (a breadth-first search of depth k from each row);
 * for a symmetric adj, the nodes within k edges. k >= 1. */
void ts_csr_khop(const ts_csr *adj, int k, ts_csr *out);

#endif
