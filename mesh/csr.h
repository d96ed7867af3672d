/* Compressed sparse rows: the one sparse structure of the mesh path. Edge
 * lists, k-hop powers, attention masks and halo maps are all ts_csr. */
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

#endif
