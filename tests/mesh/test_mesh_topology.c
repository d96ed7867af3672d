/* Mesh topology against independent oracles: CSR building, transpose and
 * union against dense boolean matrices; edges of triangulated rectangles
 * against the analytic count; edges of tetrahedral cubes against the
 * geometric predicate of their split; k-hop powers against repeated dense
 * boolean products. Case c draws from the counter RNG with stream c, so a
 * failure replays alone: TESSERA_CASE=c.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/graph.h"
#include "mesh_oracle.h"
#include "tests/cunit_run.h"

enum { CASES = 24 };
static int g_only = -1;
#define FOR_CASES(c) for (int c = 0; c < CASES; c++) if (g_only < 0 || g_only == c)

static void test_csr_basics(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int R = draw_int(c, &k, 1, 30), C = draw_int(c, &k, 1, 30);
        ts_csr m[3];
        uint8_t *d[3];
        for (int s = 0; s < 3; s++) {
            int np = draw_int(c, &k, 0, 3 * R);
            int32_t *row = malloc(sizeof(int32_t) * (np + 1)), *col = malloc(sizeof(int32_t) * (np + 1));
            d[s] = calloc((size_t)R * C, 1);
            for (int e = 0; e < np; e++) {
                row[e] = draw_int(c, &k, 0, R - 1), col[e] = draw_int(c, &k, 0, C - 1);
                d[s][row[e] * C + col[e]] = 1;
            }
            CU_ASSERT_EQUAL_FATAL(ts_csr_from_pairs(R, C, np, row, col, &m[s], err, sizeof err), 0);
            CU_ASSERT_EQUAL(ts_csr_check(&m[s], err, sizeof err), 0);
            uint8_t *got = dense_of(&m[s]);
            CU_ASSERT(memcmp(got, d[s], (size_t)R * C) == 0);
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++) {
                    int64_t e = ts_csr_find(&m[s], i, j);
                    CU_ASSERT_EQUAL(e >= 0, d[s][i * C + j]);
                    if (e >= 0) CU_ASSERT(m[s].col[e] == j && e >= m[s].rowptr[i] && e < m[s].rowptr[i + 1]);
                }
            free(got), free(row), free(col);
        }
        /* transpose: entries swap, and src names the original entry */
        ts_csr t;
        int64_t nnz = ts_csr_nnz(&m[0]);
        int64_t *src = malloc(sizeof(int64_t) * (nnz + 1));
        ts_csr_transpose(&m[0], &t, src);
        CU_ASSERT_EQUAL(ts_csr_check(&t, err, sizeof err), 0);
        CU_ASSERT(t.n_rows == C && t.n_cols == R && ts_csr_nnz(&t) == nnz);
        uint8_t *dt = dense_of(&t), *hit = calloc(nnz + 1, 1);
        for (int i = 0; i < R; i++)
            for (int j = 0; j < C; j++) CU_ASSERT_EQUAL(dt[j * R + i], d[0][i * C + j]);
        for (int j = 0; j < C; j++)
            for (int64_t e = t.rowptr[j]; e < t.rowptr[j + 1]; e++) {
                int64_t o = src[e];
                CU_ASSERT_FATAL(o >= 0 && o < nnz);
                hit[o]++;
                CU_ASSERT(m[0].col[o] == j && o >= m[0].rowptr[t.col[e]] && o < m[0].rowptr[t.col[e] + 1]);
            }
        for (int64_t o = 0; o < nnz; o++) CU_ASSERT_EQUAL(hit[o], 1);
        /* union: entry-wise OR */
        ts_csr u;
        const ts_csr *ms[3] = {&m[0], &m[1], &m[2]};
        ts_csr_union(3, ms, &u);
        CU_ASSERT_EQUAL(ts_csr_check(&u, err, sizeof err), 0);
        uint8_t *du = dense_of(&u);
        for (int x = 0; x < R * C; x++) CU_ASSERT_EQUAL(du[x], d[0][x] | d[1][x] | d[2][x]);
        /* transposing twice gives the matrix back */
        ts_csr tt;
        ts_csr_transpose(&t, &tt, NULL);
        CU_ASSERT(ts_csr_equal(&tt, &m[0]));
        free(dt), free(hit), free(du), free(src);
        ts_csr_free(&t), ts_csr_free(&tt), ts_csr_free(&u);
        for (int s = 0; s < 3; s++) ts_csr_free(&m[s]), free(d[s]);
    }
    int32_t r[2] = {0, 3}, cc[2] = {1, 1};
    ts_csr m;
    err[0] = 0;
    CU_ASSERT_EQUAL(ts_csr_from_pairs(3, 3, 2, r, cc, &m, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pair 1"));
}

/* Symmetric, no self-loops, ascending rows. */
static void assert_undirected(const ts_csr *a) {
    char err[256];
    CU_ASSERT_EQUAL(ts_csr_check(a, err, sizeof err), 0);
    ts_csr t;
    ts_csr_transpose(a, &t, NULL);
    CU_ASSERT(ts_csr_equal(a, &t));
    ts_csr_free(&t);
    for (int64_t i = 0; i < a->n_rows; i++) CU_ASSERT(ts_csr_find(a, i, (int32_t)i) < 0);
}

/* An m × n rectangle of quads, each split by one diagonal (direction drawn
 * at random; it does not change the count): m(n+1) + n(m+1) + mn edges, and
 * every edge joins lattice neighbours (king moves). */
static void test_edges_grid(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int m = draw_int(c, &k, 1, 20), n = draw_int(c, &k, 1, 20), W = n + 1;
        int32_t *cells = malloc(sizeof(int32_t) * 6 * m * n);
        for (int y = 0; y < m; y++)
            for (int x = 0; x < n; x++) {
                int32_t a = y * W + x, b = a + 1, d = a + W, e = d + 1, *t = cells + 6 * (y * n + x);
                if (draw_int(c, &k, 0, 1)) {
                    int32_t v[6] = {a, b, e, a, e, d};
                    memcpy(t, v, sizeof v);
                } else {
                    int32_t v[6] = {a, b, d, b, e, d};
                    memcpy(t, v, sizeof v);
                }
            }
        ts_csr adj;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells((int64_t)(m + 1) * W, 2 * m * n, 3, cells, &adj, err, sizeof err), 0);
        CU_ASSERT_EQUAL(ts_csr_nnz(&adj), 2 * ((int64_t)m * (n + 1) + (int64_t)n * (m + 1) + (int64_t)m * n));
        assert_undirected(&adj);
        for (int64_t i = 0; i < adj.n_rows; i++)
            for (int64_t e = adj.rowptr[i]; e < adj.rowptr[i + 1]; e++) {
                int dx = abs((int)(adj.col[e] % W) - (int)(i % W)), dy = abs((int)(adj.col[e] / W) - (int)(i / W));
                CU_ASSERT(dx <= 1 && dy <= 1);
            }
        ts_csr_free(&adj), free(cells);
    }
}

/* A K×K×K block of unit cubes as tetrahedra, checked against the predicate
 * of the split rather than against the cells:
 *   six (Kuhn): tets 000 → e_s0 → e_s0+e_s1 → 111 for each axis order s;
 *     u–v is an edge iff v − u is a non-zero 0/1 vector or its negative.
 *   five: the tet of the four corners with even coordinate sum, and the
 *     tet at each odd corner with its three cube neighbours; u–v is an edge
 *     iff they are one step apart, or two unit steps apart with u even. */
static void test_edges_tets(void) {
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    char err[256];
    for (int K = 1; K <= 4; K++)
        for (int five = 0; five <= 1; five++) {
            const int V = K + 1, n = V * V * V, per = five ? 5 : 6, n_cells = per * K * K * K;
            int32_t *cells = malloc(sizeof(int32_t) * 4 * n_cells), *t = cells;
#define ID(x, y, z) ((int32_t)(((z) * V + (y)) * V + (x)))
            for (int z = 0; z < K; z++)
                for (int y = 0; y < K; y++)
                    for (int x = 0; x < K; x++) {
                        if (!five) {
                            for (int p = 0; p < 6; p++) {
                                int q[3] = {x, y, z};
                                *t++ = ID(q[0], q[1], q[2]);
                                for (int s = 0; s < 3; s++) q[perms[p][s]]++, *t++ = ID(q[0], q[1], q[2]);
                            }
                            continue;
                        }
                        for (int corner = 0; corner < 8; corner++) {
                            int cx = x + (corner & 1), cy = y + (corner >> 1 & 1), cz = z + (corner >> 2);
                            if ((cx + cy + cz) % 2 == 0) *t++ = ID(cx, cy, cz); /* the central tet */
                        }
                        for (int corner = 0; corner < 8; corner++) {
                            int cx = x + (corner & 1), cy = y + (corner >> 1 & 1), cz = z + (corner >> 2);
                            if ((cx + cy + cz) % 2 == 0) continue;
                            *t++ = ID(cx, cy, cz);
                            *t++ = ID(x + 1 - (corner & 1), cy, cz);
                            *t++ = ID(cx, y + 1 - (corner >> 1 & 1), cz);
                            *t++ = ID(cx, cy, z + 1 - (corner >> 2));
                        }
                    }
            CU_ASSERT_EQUAL_FATAL(t - cells, 4 * n_cells);
            ts_csr adj;
            CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(n, n_cells, 4, cells, &adj, err, sizeof err), 0);
            assert_undirected(&adj);
            uint8_t *d = dense_of(&adj);
            int64_t count = 0;
            for (int u = 0; u < n; u++)
                for (int v = 0; v < n; v++) {
                    int du[3] = {v % V - u % V, v / V % V - u / V % V, v / (V * V) - u / (V * V)};
                    int pos = 0, neg = 0, big = 0, steps = 0;
                    for (int a = 0; a < 3; a++)
                        pos += du[a] == 1, neg += du[a] == -1, big += abs(du[a]) > 1, steps += abs(du[a]);
                    int par = (u % V + u / V % V + u / (V * V)) % 2 == 0, edge;
                    if (!five) edge = !big && steps > 0 && (pos == 0 || neg == 0);
                    else edge = !big && (steps == 1 || (steps == 2 && par));
                    CU_ASSERT_EQUAL(d[u * n + v], edge);
                    count += edge;
                }
            /* and the analytic count for the six-tet split: lattice edges,
             * one diagonal per face, one per cube */
            if (!five) CU_ASSERT_EQUAL(count, 2 * (3 * K * V * V + 3 * K * K * V + K * K * K));
            CU_ASSERT_EQUAL(ts_csr_nnz(&adj), count);
            free(d), free(cells), ts_csr_free(&adj);
#undef ID
        }
}

static void test_edges_errors(void) {
    char err[256];
    int32_t cells[12] = {0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 0};
    ts_csr adj;
    for (int bad = 0; bad < 2; bad++) {
        cells[10] = bad ? -1 : 5; /* cell 3 names a node outside [0, 5) */
        err[0] = 0;
        CU_ASSERT_EQUAL(ts_mesh_edges_from_cells(5, 4, 3, cells, &adj, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "cell 3"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad ? "node -1" : "node 5"));
    }
    cells[10] = 4;
    CU_ASSERT_EQUAL(ts_mesh_edges_from_cells(5, 4, 3, cells, &adj, err, sizeof err), 0);
    ts_csr_free(&adj);
    CU_ASSERT_EQUAL(ts_mesh_edges_from_cells(5, 2, 5, cells, &adj, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected 3"));
}

/* Random small meshes (random triangles, some nodes isolated): the k-hop
 * matrix equals (A + I)^k − I by dense boolean products, for k = 1..4. */
static void test_khop(void) {
    char err[256];
    FOR_CASES(c) {
        uint64_t k = 0;
        int n = draw_int(c, &k, 4, 40), n_cells = draw_int(c, &k, 0, n);
        int32_t *cells = random_triangles(c, &k, n, n_cells);
        ts_csr adj;
        CU_ASSERT_EQUAL_FATAL(ts_mesh_edges_from_cells(n, n_cells, 3, cells, &adj, err, sizeof err), 0);
        uint8_t *A = dense_adjacency(n, cells, n_cells, 3), *got = dense_of(&adj);
        CU_ASSERT(memcmp(A, got, (size_t)n * n) == 0);
        free(got);
        for (int hops = 1; hops <= 4; hops++) {
            ts_csr p;
            ts_csr_khop(&adj, hops, &p);
            CU_ASSERT_EQUAL(ts_csr_check(&p, err, sizeof err), 0);
            uint8_t *want = dense_khop(A, n, hops), *have = dense_of(&p);
            CU_ASSERT(memcmp(want, have, (size_t)n * n) == 0);
            free(want), free(have), ts_csr_free(&p);
        }
        free(A), free(cells), ts_csr_free(&adj);
    }
}

int main(void) {
    const char *only = getenv("TESSERA_CASE");
    if (only) g_only = atoi(only);
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("mesh topology", NULL, NULL);
    if (!s || !CU_add_test(s, "csr: from pairs, find, transpose, union against dense", test_csr_basics) ||
        !CU_add_test(s, "edges: triangulated rectangle, analytic count", test_edges_grid) ||
        !CU_add_test(s, "edges: tetrahedral cubes against the split's predicate", test_edges_tets) ||
        !CU_add_test(s, "edges: out-of-range node is an error naming the cell", test_edges_errors) ||
        !CU_add_test(s, "k-hop against dense boolean products", test_khop))
        return 2;
    return ts_cunit_run();
}
