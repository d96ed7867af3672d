/* Compressed sparse rows: the one sparse structure of the mesh path. Edge
 * lists, k-hop powers, attention masks and halo maps are all ts_csr.
 *
 * Every ts_csr these functions return owns its arrays (free with
 * ts_csr_free) and keeps the invariants: columns ascending and unique
 * within each row. Functions that read caller data which may be wrong
 * return 0, or -1 with one line in err (err may be NULL). */
#ifndef TESSERA_MESH_CSR_H
#define TESSERA_MESH_CSR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t n_rows, n_cols;
    int64_t *rowptr; /* (n_rows + 1); row i's entries are col[rowptr[i] .. rowptr[i+1]) */
    int32_t *col;    /* (rowptr[n_rows]); ascending and unique within each row */
} ts_csr;

static inline int64_t ts_csr_nnz(const ts_csr *m) { return m->rowptr ? m->rowptr[m->n_rows] : 0; }

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

#endif
