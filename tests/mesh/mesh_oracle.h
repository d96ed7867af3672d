/* Shared by the mesh tests: dense boolean oracles and random small meshes.
 * Random draws come from the counter RNG with stream = the sweep case, so a
 * failing case replays alone (TESSERA_CASE=c). */
#ifndef TESSERA_TESTS_MESH_ORACLE_H
#define TESSERA_TESTS_MESH_ORACLE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "mesh/csr.h"

/* Uniform integer in [lo, hi], element *n of stream c. */
static inline int draw_int(uint64_t c, uint64_t *n, int lo, int hi) {
    ts_rng_key k = ts_rng_key_make(2024, TS_RNG_TEST);
    int v = lo + (int)(ts_rng_uniform1(k, c, (*n)++) * (hi - lo + 1));
    return v > hi ? hi : v;
}

/* Dense n_rows × n_cols 0/1 matrix of a CSR. */
static inline uint8_t *dense_of(const ts_csr *m) {
    uint8_t *d = calloc((size_t)(m->n_rows * m->n_cols) + 1, 1);
    for (int64_t i = 0; i < m->n_rows; i++)
        for (int64_t e = m->rowptr[i]; e < m->rowptr[i + 1]; e++) d[i * m->n_cols + m->col[e]] = 1;
    return d;
}

/* Random triangles over n nodes (distinct corners), n_cells of them. */
static inline int32_t *random_triangles(uint64_t c, uint64_t *k, int n, int n_cells) {
    int32_t *cells = malloc(sizeof(int32_t) * 3 * (size_t)(n_cells ? n_cells : 1));
    for (int t = 0; t < n_cells; t++) {
        int a = draw_int(c, k, 0, n - 1), b, d;
        do b = draw_int(c, k, 0, n - 1); while (b == a);
        do d = draw_int(c, k, 0, n - 1); while (d == a || d == b);
        cells[3 * t] = a, cells[3 * t + 1] = b, cells[3 * t + 2] = d;
    }
    return cells;
}

/* Dense adjacency straight from the cells (every pair of corners), the
 * independent oracle of ts_mesh_edges_from_cells. */
static inline uint8_t *dense_adjacency(int n, const int32_t *cells, int n_cells, int per_cell) {
    uint8_t *a = calloc((size_t)n * n + 1, 1);
    for (int t = 0; t < n_cells; t++)
        for (int x = 0; x < per_cell; x++)
            for (int y = 0; y < per_cell; y++) {
                int u = cells[t * per_cell + x], v = cells[t * per_cell + y];
                if (u != v) a[u * n + v] = 1;
            }
    return a;
}

/* Within k edges, self excluded: (A + I)^k by k boolean products, minus I. */
static inline uint8_t *dense_khop(const uint8_t *adj, int n, int k) {
    uint8_t *r = calloc((size_t)n * n + 1, 1), *t = calloc((size_t)n * n + 1, 1);
    for (int i = 0; i < n; i++) r[i * n + i] = 1;
    for (int s = 0; s < k; s++) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                uint8_t v = 0;
                for (int m = 0; m < n && !v; m++) v = r[i * n + m] && (m == j || adj[m * n + j]);
                t[i * n + j] = v;
            }
        memcpy(r, t, (size_t)n * n);
    }
    for (int i = 0; i < n; i++) r[i * n + i] = 0;
    free(t);
    return r;
}

#endif
