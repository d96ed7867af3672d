/* Mesh edges from cells: every pair of nodes of a simplex is an edge. */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "mesh/graph.h"

int ts_mesh_edges_from_cells(int64_t n_nodes, int64_t n_cells, int nodes_per_cell, const int32_t *cells,
                             ts_csr *adj, char *err, size_t err_cap) {
    const int k = nodes_per_cell;
    if (k != 3 && k != 4) {
        if (err) snprintf(err, err_cap, "cells have %d nodes; expected 3 (triangles) or 4 (tetrahedra)", k);
        return -1;
    }
    if (n_nodes < 0 || n_nodes > INT32_MAX || n_cells < 0) {
        return TS_FAIL(err, err_cap, "bad mesh size: %lld nodes, %lld cells", (long long)n_nodes, (long long)n_cells);
    }
    /* Check every cell before allocating, so the error names the first bad
     * cell whatever its size. */
    for (int64_t c = 0; c < n_cells; c++)
        for (int a = 0; a < k; a++) {
            int32_t v = cells[c * k + a];
            if (v < 0 || v >= n_nodes) {
                return TS_FAIL(err, err_cap, "cell %lld names node %d, outside [0, %lld)", (long long)c, (int)v,
                             (long long)n_nodes);
            }
        }
    /* Both directions of each pair; the shared edges of neighbouring cells
     * and degenerate cells (a node named twice) are removed by the dedup
     * and the self-loop test. */
    const int64_t cap = n_cells * k * (k - 1);
    int32_t *row = ts_malloc(sizeof(int32_t) * (size_t)cap), *col = ts_malloc(sizeof(int32_t) * (size_t)cap);
    int64_t n = 0;
    for (int64_t c = 0; c < n_cells; c++) {
        const int32_t *v = cells + c * k;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++) {
                if (v[a] == v[b]) continue;
                row[n] = v[a], col[n++] = v[b];
                row[n] = v[b], col[n++] = v[a];
            }
    }
    int rc = ts_csr_from_pairs(n_nodes, n_nodes, n, row, col, adj, err, err_cap);
    free(row), free(col);
    return rc;
}
